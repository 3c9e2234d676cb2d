"""The conversion pipeline shared by convert_market.py and convert_DF.py.

raw split (image folder + OpenPose pickles) -> pair lists (original order, pickles written like the
original) -> per-image pose entries -> :class:`PairRecord` list -> resumable shards.

Rule: the dataset-specific parts come from :class:`pg2_tf.core.datasets.Dataset`; the records
stay byte-equal to the original converters'.
"""

import random
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data_prep import common
from data_prep.record_features import (
    ImageEntry,
    ImageFolder,
    PairRecord,
    RecordBuilder,
    entry_problem,
)
from data_prep.shards import write_records
from pg2_tf.core import datasets, pose_files


@dataclass(frozen=True)
class SplitSource:
    """Where one set of images and their OpenPose results live."""

    folder: Path
    peaks_path: Path
    subsets_path: Path
    skip_first: int = 0  # sorted directory entries to drop (Market's junk test detections)


def resolve_raw_dir(spec: datasets.Dataset, raw_dir: Path, what: str, fix: str) -> Path:
    """The folder of a raw layout: ``raw_dir`` or its ``spec.raw_folder`` sub-folder.

    Args:
        spec: the dataset whose raw layout is read.
        raw_dir: the folder given on the command line.
        what: names the folder in the message when it is missing (``"Market raw folder"``).
        fix: what to do, appended to that message.

    Returns:
        ``raw_dir / spec.raw_folder`` when that exists and ``raw_dir`` holds no
        ``spec.pose_folder``, else ``raw_dir``.

    Raises:
        DataError: the folder does not exist.
    """
    raw_dir = Path(raw_dir)
    if (raw_dir / spec.raw_folder).is_dir() and not (raw_dir / spec.pose_folder).is_dir():
        raw_dir = raw_dir / spec.raw_folder
    return common.require_dir(raw_dir, what, fix)


def split_source(
    spec: datasets.Dataset, raw_dir: Path, image_set: str, junk_detections: int = 0
) -> SplitSource:
    """The images and OpenPose pickles of one image set of a raw layout.

    Args:
        spec: the dataset whose raw layout is read.
        raw_dir: the raw layout's folder (:func:`resolve_raw_dir`).
        image_set: one of ``spec.image_sets()`` (train, train_flip, test, test_samples, ...).
        junk_detections: sorted directory entries of the ``test`` folder to skip (Market's 6617
            junk detections); ignored for the other image sets.

    Returns:
        The :class:`SplitSource` (paths only; nothing is read).
    """
    peaks_name, subsets_name = spec.pickle_names(image_set)
    pose_dir = raw_dir / spec.pose_folder
    return SplitSource(
        raw_dir / spec.image_folder(image_set),
        pose_dir / peaks_name,
        pose_dir / subsets_name,
        junk_detections if image_set == "test" else 0,
    )


def split_parts(
    spec: datasets.Dataset,
    raw_dir: Path,
    split: str,
    out_dir: Path | None,
    junk_detections: int,
    flip: bool,
    identity: Callable[[str], str],
    fix: str,
) -> tuple[Path, list[tuple[str, SplitSource, list[list[str]]]]]:
    """The pairs of one split in the original converters' order, their pickles written.

    The main split's pairs are generated first, then (train with ``flip``) the mirrored images'
    from the same ``random.seed(0)`` generator; train and test pairs are shuffled as Python 2
    did, test_samples and test_seq keep the generated order (test_seq: every ordered pair).

    Args:
        spec: the dataset whose raw layout is read.
        raw_dir: the raw layout's folder (:func:`resolve_raw_dir`).
        split: train, test, test_samples or (DeepFashion) test_seq.
        out_dir: the output folder, or None for ``raw_dir / spec.data_folder(split)``; created.
        junk_detections: see :func:`split_source`.
        flip: with train, also the mirrored images (``train_flip``).
        identity: image name -> person identity.
        fix: what to do, appended to messages about missing files.

    Returns:
        ``(out_dir, parts)``: parts as :func:`convert_pairs` takes them, the mirrored images'
        ``("flip", source, pairs)`` first (they are written first), then ``("main", ...)``.

    Raises:
        DataError: a missing image folder or pickle.
    """
    source = split_source(spec, raw_dir, split, junk_detections)
    flip_source = split_source(spec, raw_dir, "train_flip") if split == "train" and flip else None
    for checked in (source, flip_source):
        if checked is not None:
            common.require_dir(checked.folder, "image folder", fix)
    out_dir = Path(out_dir) if out_dir else raw_dir / spec.data_folder(split)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(common.ORIGINAL_RANDOM_SEED)

    pairs = generate_pairs(
        source, identity, out_dir, split.split("_")[0], rng, fix, every_pair=split == "test_seq"
    )
    if split in ("train", "test"):
        common.python2_shuffle(pairs, rng)
    parts = [("main", source, pairs)]
    if flip_source is not None:
        flip_pairs = generate_pairs(flip_source, identity, out_dir, "train_flip", rng, fix)
        common.python2_shuffle(flip_pairs, rng)
        parts.insert(0, ("flip", flip_source, flip_pairs))
    return out_dir, parts


def generate_pairs(
    source: SplitSource,
    identity: Callable[[str], str],
    out_dir: Path,
    pickle_tag: str,
    rng: random.Random,
    fix: str,
    every_pair: bool = False,
) -> list[list[str]]:
    """Positive pairs of a split, saved like the original ``_get_train_all_pn_pairs``.

    Writes ``p_pairs_<tag>.p`` (generation order), ``n_pairs_<tag>.p`` (negatives shuffled with
    ``rng`` and cut to the number of positives) and ``pn_pairs_num_<tag>.p`` (their total).

    Args:
        source: the image folder (and its junk entries to skip).
        identity: image name -> person identity.
        out_dir: where the pickles go.
        pickle_tag: their tag (train, train_flip, test, ...).
        rng: the converter's generator (seeded 0), advanced by the negatives' shuffle.
        fix: what to do, appended to messages about a missing folder.
        every_pair: (DeepFashion test_seq) all ordered pairs (i, j), i == j included.

    Returns:
        The positive pairs ``[name_0, name_1]``, in generation order (a new list).
    """
    folder = common.require_dir(source.folder, "image folder", fix)
    filelist = common.image_file_list(folder, skip_first=source.skip_first)
    if every_pair:
        positive = [[name_i, name_j] for name_i in filelist for name_j in filelist]
        negative = []
    else:
        positive, negative = common.same_identity_pairs(filelist, identity)
    common.python2_shuffle(negative, rng)
    negative = negative[: len(positive)]
    common.dump_pickle(positive, out_dir / f"p_pairs_{pickle_tag}.p")
    common.dump_pickle(negative, out_dir / f"n_pairs_{pickle_tag}.p")
    common.dump_pickle(len(positive) + len(negative), out_dir / f"pn_pairs_num_{pickle_tag}.p")
    return list(positive)


def load_entries(
    spec: datasets.Dataset,
    source: SplitSource,
    names: set[str],
    fix: str,
    attributes_of: Callable[[str], dict] | None = None,
    with_roi10_mask: bool = True,
) -> tuple[dict[str, ImageEntry], dict[str, str]]:
    """Pose entries of ``names``.

    Args:
        spec: the dataset (its keypoint selection rule).
        source: where the images' OpenPose pickles are.
        names: the image names to look up.
        fix: what to do, appended to messages about missing or malformed pickles.
        attributes_of: image name -> attribute features, or None for none.
        with_roi10_mask: whether the records get region masks (DeepFashion: an image without a
            visible region is then a problem).

    Returns:
        ``(entries, problems)``: entries of usable images; image name -> reason for images that
        have a pose but where the original converter crashed. Names missing from the peaks
        pickle are in neither (the original skipped their pairs).
    """
    all_peaks, subsets = common.load_pose_dictionaries(source.peaks_path, source.subsets_path, fix)
    entries, problems = {}, {}
    for name in sorted(names):
        if name not in all_peaks:
            continue
        person_rows = np.asarray(subsets.get(name, []), np.float64)
        if name not in subsets or len(person_rows) == 0:
            problems[name] = "no person row in the subsets pickle"
            continue
        try:
            keypoints_rc = pose_files.keypoints_from_openpose(
                all_peaks[name], person_rows, spec.selection
            )
        except ValueError as error:
            problems[name] = str(error)
            continue
        entry = ImageEntry(
            keypoints_rc=keypoints_rc,
            pose_subs=person_rows[0],
            attributes=attributes_of(name) if attributes_of else {},
        )
        problem = entry_problem(spec, entry, with_roi10_mask)
        if problem:
            problems[name] = problem
            continue
        entries[name] = entry
    return entries, problems


def convert_pairs(
    spec: datasets.Dataset,
    out_dir: Path,
    split_tag: str,
    parts: Sequence[tuple[str, SplitSource, list[list[str]]]],
    identity: Callable[[str], str],
    camera: Callable[[str], int],
    fix: str,
    record_limit: int | None = None,
    attributes_of: Callable[[str], dict] | None = None,
    with_roi10_mask: bool = True,
    workers: int = 1,
    records_per_shard: int = 1000,
    show_progress: bool = True,
) -> int:
    """Writes the records of ``parts``, in that order.

    Identities are numbered per part in order of first appearance in its pairs (the original's
    ``id_map`` / ``id_map_flip``). Pairs with an image without usable pose are skipped. Writes
    ``tf_record_pair_num.txt`` ('cnt:<records>').

    Args:
        spec: the dataset.
        out_dir: the output folder.
        split_tag: train or test (the shards' names).
        parts: ``(folder key, source, ordered pairs)``, e.g. from :func:`split_parts`.
        identity: image name -> person identity.
        camera: image name -> camera number (-1 for none).
        fix: what to do, appended to messages about missing files.
        record_limit: stop after this many records, or None.
        attributes_of: image name -> attribute features, or None.
        with_roi10_mask: write DeepFashion's region masks.
        workers: worker processes.
        records_per_shard: records a ``.tfrecord`` file.
        show_progress: show a progress bar.

    Returns:
        The number of records written.
    """
    folders, records, problems = {}, [], {}
    for folder_key, source, pairs in parts:
        names = {name for pair in pairs for name in pair}
        entries, part_problems = load_entries(
            spec, source, names, fix, attributes_of, with_roi10_mask
        )
        problems.update(part_problems)
        folders[folder_key] = ImageFolder(str(source.folder), entries)
        ids = common.identity_map(pairs, identity)
        for name_0, name_1 in pairs:
            if record_limit is not None and len(records) == record_limit:
                break
            if name_0 in entries and name_1 in entries:
                records.append(
                    PairRecord.of_pair(folder_key, name_0, name_1, ids, identity, camera)
                )
    builder = RecordBuilder(spec, folders, with_roi10_mask)
    write_records(
        out_dir,
        spec.record_prefix,
        split_tag,
        records,
        builder,
        records_per_shard,
        workers,
        show_progress,
    )
    (Path(out_dir) / "tf_record_pair_num.txt").write_text(f"cnt:{len(records)}")
    if problems:
        example_name, example_reason = next(iter(problems.items()))
        print(
            f"warning: left out {len(problems)} images (and their pairs) that the original"
            f" converter could not handle, e.g. {example_name}: {example_reason}",
            file=sys.stderr,
        )
    return len(records)
