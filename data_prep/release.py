"""The images of an official Market-1501 or DeepFashion In-shop release, listed per split.

* Market-1501 (``Market-1501-v15.09.15/``): ``bounding_box_train/`` (train), ``bounding_box_test/``
  (test) and ``query/`` (test, only for ``--pairs`` lists that name query images); names
  ``PPPP_cCsS_FFFFFF_NN.jpg`` with identity ``PPPP`` (``-1``: junk detections, ``0000``:
  distractors, both left out by name as the original left out the first 6617 sorted test files,
  which are exactly those), camera ``C``. Other files (the release's ``Thumbs.db``) are ignored.
* DeepFashion In-shop Clothes Retrieval: ``img/<WOMEN|MEN>/<category>/id_XXXXXXXX/NN_K_view.jpg``
  and ``Eval/list_eval_partition.txt`` (``image_name item_id evaluation_status``; train is
  ``train``, test is ``query`` + ``gallery``, PG2's split). The identity is the item id.

Every image gets the name it has in the original raw layout (Market: its own name; DeepFashion:
``<item id without '_'>_<gender>_<category>_<file>``, identity first as ``convert_DF`` reads it)
and the name Pose-Transfer's annotation and pair files use (Market: its own name; DeepFashion:
``fashion<gender><category><item id without '_'><NN>_<K><view>.jpg``).
"""

import dataclasses
import os
import re
from collections.abc import Iterator
from pathlib import Path

from pg2_tf.core import datasets
from pg2_tf.core.errors import DataError

DATASETS = datasets.KINDS
SPLITS = ("train", "test")
MARKET_FOLDERS = {"train": ("bounding_box_train",), "test": ("bounding_box_test", "query")}
MARKET_NAME = re.compile(r"^(-1|\d{4})_c(\d)s(\d)_(\d{6})_(\d{2})\.jpg$")
JUNK_IDENTITIES = ("-1", "0000")
PARTITION_FILE = os.path.join("Eval", "list_eval_partition.txt")
DEEPFASHION_STATUS = {"train": ("train",), "test": ("query", "gallery")}
_DEEPFASHION_PATH = re.compile(r"^img/(WOMEN|MEN)/([^/]+)/(id_\d+)/([^/]+\.jpg)$")


@dataclasses.dataclass(frozen=True)
class ReleaseImage:
    """One image of a release."""

    path: str  # relative to the release folder, '/'-separated
    raw_name: str  # its file name in the original raw layout (identity first)
    annotation_name: str  # its name in Pose-Transfer's annotation / pair files
    identity: str
    folder: str  # Market: bounding_box_train, bounding_box_test or query; DeepFashion: img


@dataclasses.dataclass(frozen=True)
class Skipped:
    """An image of the release that is not used, and why."""

    path: str
    reason: str


def not_a_release(dataset: str, release: Path, what: str) -> DataError:
    """The one-line error for a folder that is not the release ``dataset`` names.

    Args:
        dataset: ``market`` or ``deepfashion``.
        release: the folder given.
        what: what is wrong with it.

    Returns:
        The DataError (the caller raises it), saying which folder to give.
    """
    if dataset == "market":
        fix = "give --release the unzipped Market-1501-v15.09.15 folder"
    else:
        fix = (
            "give --release the In-shop Clothes Retrieval folder holding img/ (unzipped img.zip) "
            f"and {PARTITION_FILE}"
        )
    return DataError(f"{release} is not a {dataset} release: {what}; {fix}")


def list_images(
    dataset: str, release: Path, split: str
) -> tuple[list[ReleaseImage], list[Skipped]]:
    """Every image of a split of a release, and the files left out by name.

    Args:
        dataset: ``market`` or ``deepfashion``.
        release: the unzipped release folder.
        split: train or test.

    Returns:
        ``(images, skipped)``: :class:`ReleaseImage` sorted by raw name; :class:`Skipped` files.

    Raises:
        DataError: ``release`` is not that release (folder or partition list missing, no file
            name that parses).
    """
    release = Path(release)
    if not release.is_dir():
        raise not_a_release(dataset, release, "no such folder")
    if dataset == "market":
        images, skipped = _market(release, split)
    else:
        images, skipped = _deepfashion(release, split)
    images.sort(key=lambda image: image.raw_name)
    return images, skipped


def _market(release: Path, split: str):
    images, skipped, seen = [], [], set()
    for index, folder in enumerate(MARKET_FOLDERS[split]):
        directory = release / folder
        if not directory.is_dir():
            if index == 0:
                raise not_a_release("market", release, f"{folder}/ is missing")
            continue  # query/ is optional
        parsed = 0
        for name in sorted(os.listdir(directory)):
            path = f"{folder}/{name}"
            if not name.lower().endswith(".jpg"):
                continue  # Thumbs.db and the like
            match = MARKET_NAME.match(name)
            if not match:
                skipped.append(Skipped(path, "name is not PPPP_cCsS_FFFFFF_NN.jpg"))
                continue
            parsed += 1
            identity = match.group(1)
            if identity in JUNK_IDENTITIES:
                kind = "junk detection" if identity == "-1" else "distractor"
                skipped.append(Skipped(path, f"{kind} (identity {identity}), left out by name"))
                continue
            if name in seen:
                skipped.append(Skipped(path, "same name as an image of bounding_box_test/"))
                continue
            seen.add(name)
            images.append(ReleaseImage(path, name, name, identity, folder))
        if index == 0 and not parsed:
            raise not_a_release(
                "market", release, f"no file of {folder}/ is named PPPP_cCsS_FFFFFF_NN.jpg"
            )
    return images, skipped


def read_partition(release: Path) -> Iterator[tuple[str, str, str]]:
    """The rows of DeepFashion's ``Eval/list_eval_partition.txt``.

    Args:
        release: the In-shop Clothes Retrieval folder.

    Yields:
        ``(image path, item id, status)``: ``img/...``, ``id_...``, train, query or gallery.

    Raises:
        DataError: the file is missing, unreadable or holds no such row.
    """
    path = release / PARTITION_FILE
    if not path.is_file():
        raise not_a_release("deepfashion", release, f"{PARTITION_FILE} is missing")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read {path} ({error}); download it again") from None
    rows = 0
    for line in lines:
        fields = line.split()
        if len(fields) != 3 or not fields[0].startswith("img/"):
            continue  # the count and header lines
        rows += 1
        yield fields[0], fields[1], fields[2]
    if not rows:
        raise not_a_release(
            "deepfashion", release, f"{path} has no 'img/... id_... train|query|gallery' row"
        )


def _deepfashion(release: Path, split: str):
    if not (release / "img").is_dir():
        raise not_a_release("deepfashion", release, "img/ is missing")
    images, skipped = [], []
    for path, item, status in read_partition(release):
        if status not in DEEPFASHION_STATUS[split]:
            continue
        match = _DEEPFASHION_PATH.match(path)
        if not match:
            skipped.append(Skipped(path, "path is not img/<WOMEN|MEN>/<category>/id_N/<file>.jpg"))
            continue
        gender, category, item_folder, file_name = match.groups()
        item_id = item.replace("_", "")
        raw_name = f"{item_id}_{gender}_{category}_{file_name}"
        head, _, tail = file_name.partition("_")
        annotation_name = (
            f"fashion{gender}{category}{item_folder.replace('_', '')}{head}_{tail.replace('_', '')}"
        )
        images.append(ReleaseImage(path, raw_name, annotation_name, item_id, "img"))
    return images, skipped
