"""A small synthetic PG2 dataset, written in the ORIGINAL raw layout (no download needed).

The people of :mod:`data_prep.synthetic_people` (figures with their 18 COCO/OpenPose keypoints
known exactly), laid out as a dataset. Images and OpenPose-format pose pickles (Python 2 protocol:
``all_peaks`` with the true candidate first plus occasional distractor peaks, ``subsets`` with the
person's row first) are laid out as the original zips, so the converters run on them unchanged:

* ``kind="market"``: ``<out>/Market1501_img_pose_attr_seg/bounding_box_<set>/PPPP_cCs1_FFFFFF_00.jpg``
  (128 x 64) and ``Market-1501_PoseFiltered/{all_peaks_dic,subsets_dic}_Market-1501_<set>.p``;
  with ``junk_test_files=True`` the ``test`` folder starts with 6617 empty files, as the real one
  starts with its junk detections (the converter skips that many; without them the synthetic
  records are made with ``junk_detections=0``).
* ``kind="deepfashion"``: ``<out>/DF_img_pose/filted_up_<set>/IIIII_V.jpg`` (256 x 256) and
  ``PoseFiltered/{all_peaks_dic,subsets_dic}_DeepFashion[_Flip].p``.

Train comes with its mirrored copy (``*_train_flip``), as the original data.

Rule: everything is a deterministic function of the arguments (seeded numpy generators), and a
set already written with the same arguments is kept as it is. Example::

    from data_prep.synthetic import make_synthetic_records
    data_path = make_synthetic_records("/tmp/pg2_data", "market", "train", identities=4)
    # -> /tmp/pg2_data/Market_train_data: Market1501_train_00000-of-00001.tfrecord, pn_pairs_num_train.p

Command line::

    python -m data_prep.synthetic --kind market|deepfashion --out DIR --identities N
        [--test_identities N] [--images_per_identity M] [--splits train,test] [--seed S]
        [--convert] [--junk_test_files] [--seen_people] [--shared_background] [--workers N]

``python -m pg2_tf.demo`` runs it with ``--seen_people --shared_background --convert``.
"""

import argparse
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from data_prep import common, raw_layout, synthetic_people
from pg2_tf.core import atomic, datasets, pose
from pg2_tf.core.errors import ConfigError

KINDS = datasets.KINDS
SPLITS = ("train", "test", "test_samples", "test_seq")
_SPLIT_INDEX = {split: index for index, split in enumerate(SPLITS)}


def image_names(
    kind: str, image_set: str, identities: int, images_per_identity: int
) -> list[list[str]]:
    """The image file names of a set (different identities and frames per set).

    Args:
        kind: "market" or "deepfashion" (the naming scheme).
        image_set: "train", "test", "test_samples" or "test_seq".
        identities: people in the set.
        images_per_identity: photos of each.

    Returns:
        Names ``[identity][image]``, as the original dataset names its files.
    """
    first_identity = {"train": 1, "test": 1001, "test_samples": 2001, "test_seq": 3001}
    layout = datasets.by_kind(kind)
    names = []
    for person in range(identities):
        identity = first_identity[image_set] + person
        names.append(
            [
                layout.raw_image_name(
                    identity, index + 1, identity * 100 + index, 1 + (identity + index) % 6
                )
                for index in range(images_per_identity)
            ]
        )
    return names


@dataclass(frozen=True)
class SyntheticSpec:
    """Everything that determines the generated files."""

    kind: str
    identities: int
    images_per_identity: int
    split: str
    seed: int
    junk_test_files: bool = False
    seen_people: bool = False
    shared_background: bool = False


def make_synthetic_raw(
    out_dir,
    kind: str = "market",
    identities: int = 4,
    images_per_identity: int = 3,
    splits=("train", "test"),
    seed: int = 0,
    junk_test_files: bool = False,
    seen_people: bool = False,
    shared_background: bool = False,
) -> Path:
    """Writes the raw layout (module docstring) under ``out_dir``.

    Args:
        out_dir: the output folder.
        kind: "market" (128 x 64) or "deepfashion" (256 x 256).
        identities: people in each set (at least 1).
        images_per_identity: photos of each person (at least 2, to make pairs).
        splits: image sets among train (with its mirrored train_flip), test, test_samples and
            (DeepFashion) test_seq; a set already written with the same arguments is kept.
        seed: the seed of every random choice.
        junk_test_files: Market test starts with the real set's 6617 (empty) junk files.
        seen_people: the test-type sets show train's people (those of the same index and
            ``seed``) in new poses, instead of people of their own.
        shared_background: each person has one background in all their photos (by default each
            photo has its own, so the two images of a pair have unrelated backgrounds).

    Returns:
        The raw folder, ``<out_dir>/<Market1501_img_pose_attr_seg|DF_img_pose>``.

    Raises:
        ConfigError: unknown kind/split, fewer than 1 identity or 2 images per identity.
    """
    if kind not in KINDS:
        raise ConfigError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    layout = datasets.by_kind(kind)
    splits = tuple(splits)
    unknown = [split for split in splits if split not in SPLITS or split not in layout.image_sets]
    if unknown:
        raise ConfigError(f"unknown split(s) {unknown} for {kind}")
    if identities < 1 or images_per_identity < 2:
        raise ConfigError("need at least 1 identity and 2 images per identity to make pairs")
    raw_dir = Path(out_dir) / layout.raw_folder
    (raw_dir / layout.pose_folder).mkdir(parents=True, exist_ok=True)
    for split in splits:
        junk = _with_junk(layout, split, junk_test_files)
        spec = SyntheticSpec(
            kind, identities, images_per_identity, split, seed, junk, seen_people, shared_background
        )
        marker = raw_dir / f".synthetic_{split}.json"
        if marker.is_file() and marker.read_text() == json.dumps(asdict(spec)):
            continue
        _write_split(raw_dir, layout, spec)
        atomic.write_text(marker, json.dumps(asdict(spec)))
    return raw_dir


def _write_split(raw_dir: Path, layout: datasets.Dataset, spec: "SyntheticSpec") -> None:
    split = spec.split
    people = image_names(layout.kind, split, spec.identities, spec.images_per_identity)
    sets = raw_layout.prepare_image_sets(raw_dir, layout, split)
    if spec.junk_test_files:  # the real set's junk detections, skipped by the converter
        for index in range(layout.junk_test_detections):
            junk_name = layout.raw_image_name(0, 1, index)
            (raw_dir / layout.image_folder(split) / junk_name).touch()
    for person, names in enumerate(people):
        # seen_people: the person of train with this index (same seed), in new poses.
        look = person + 1000 * _SPLIT_INDEX["train" if spec.seen_people else split]
        appearance = synthetic_people.identity_appearance(look, spec.seed)
        background = None
        if spec.shared_background:
            background_rng = np.random.default_rng([spec.seed, 104729, look])
            background = synthetic_people.random_background(
                background_rng, layout.img_H, layout.img_W
            )
        for index, name in enumerate(names):
            rng = np.random.default_rng([spec.seed, _SPLIT_INDEX[split], person, index])
            keypoints_rc = synthetic_people.random_keypoints(rng, layout.img_H, layout.img_W)
            pixels = synthetic_people.render_person(
                keypoints_rc, appearance, rng, layout.img_H, layout.img_W, background
            )
            raw_layout.save_jpeg(pixels, raw_dir / layout.image_folder(split) / name)
            sets[split][name] = synthetic_people.openpose_result(keypoints_rc, rng)
            if split == "train":
                mirrored = pose.mirror_keypoints(keypoints_rc, layout.img_W)
                raw_layout.save_jpeg(
                    pixels[:, ::-1], raw_dir / layout.image_folder("train_flip") / name
                )
                sets["train_flip"][name] = synthetic_people.openpose_result(mirrored, rng)
    for image_set, results in sets.items():
        raw_layout.add_to_pickles(
            raw_dir / layout.pose_folder, layout.pickle_names(image_set), results
        )


def _with_junk(layout: datasets.Dataset, split: str, junk_test_files: bool) -> bool:
    """Whether the set starts with empty junk files (a test set of a dataset that has them)."""
    return junk_test_files and split == "test" and layout.junk_test_detections > 0


def make_synthetic_records(
    out_dir,
    kind: str = "market",
    split: str = "train",
    identities: int = 4,
    images_per_identity: int = 3,
    seed: int = 0,
    workers: int = 1,
    with_roi10_mask: bool = False,
    show_progress: bool = False,
    junk_test_files: bool = False,
    seen_people: bool = False,
    shared_background: bool = False,
) -> Path:
    """Generates the raw set of ``split`` and converts it with the original-equivalent converter.

    Args:
        out_dir: folder for the raw layout and the records.
        kind: "market" (128 x 64) or "deepfashion" (256 x 256).
        split: "train" (records of the mirrored copies first, then the originals), "test",
            "test_samples" or (deepfashion) "test_seq"; the record files are named
            ``<Market1501|DeepFashion>_<train|test>_*.tfrecord``.
        identities, images_per_identity: each identity gives images_per_identity *
            (images_per_identity - 1) pairs (twice that for train, with the mirrored copies).
        with_roi10_mask: deepfashion only: also write the 1.3 MB/record roi10_mask features.
        junk_test_files: market test only: write the 6617 junk files and let the converter skip
            them, as with the real data (slower: 6617 files).
        seen_people, shared_background: as in :func:`make_synthetic_raw` (defaults: off).

    Returns:
        the data folder ``<out_dir>/<Market|DF>_<split>_data`` holding the shards,
        ``pn_pairs_num_<train|test>.p`` and the pair pickles.
    """
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    layout = datasets.by_kind(kind)
    junk = _with_junk(layout, split, junk_test_files)
    raw_dir = make_synthetic_raw(
        out_dir,
        kind,
        identities,
        images_per_identity,
        (split,),
        seed,
        junk_test_files=junk,
        seen_people=seen_people,
        shared_background=shared_background,
    )
    data_dir = Path(out_dir) / layout.data_folder(split)
    spec = asdict(
        SyntheticSpec(
            kind, identities, images_per_identity, split, seed, junk, seen_people, shared_background
        )
    )
    spec["with_roi10_mask"] = with_roi10_mask
    marker = data_dir / ".synthetic.json"
    if marker.is_file() and marker.read_text() == json.dumps(spec):
        return data_dir
    if data_dir.exists():  # records of other parameters
        shutil.rmtree(data_dir)
    common.converter_of(layout).convert(
        raw_dir,
        split,
        data_dir,
        workers=workers,
        with_roi10_mask=with_roi10_mask,
        show_progress=show_progress,
        junk_detections=layout.junk_test_detections if junk else 0,
    )
    atomic.write_text(marker, json.dumps(spec))
    return data_dir


def main(argv: list[str] | None = None) -> None:
    """The command line (module docstring): writes the raw layout, and the records with
    ``--convert``, printing one line per folder made.

    Args:
        argv: the arguments (default: the process's).
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", choices=KINDS, default="market")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--identities", type=int, default=4)
    parser.add_argument(
        "--test_identities",
        type=int,
        default=None,
        help="people in the sets other than train (default: --identities)",
    )
    parser.add_argument("--images_per_identity", type=int, default=3)
    parser.add_argument("--splits", default="train,test", help="comma-separated image sets")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--convert", action="store_true", help="also write the tf-records")
    parser.add_argument(
        "--junk_test_files",
        action="store_true",
        help="market test: start with 6617 empty junk files, as the real bounding_box_test",
    )
    parser.add_argument(
        "--seen_people",
        action="store_true",
        help="the sets other than train show train's people (same index and --seed) in new poses",
    )
    parser.add_argument(
        "--shared_background",
        action="store_true",
        help="each person has one background in all their photos (default: one per photo)",
    )
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    splits = tuple(split for split in args.splits.split(",") if split)
    people = dict(seen_people=args.seen_people, shared_background=args.shared_background)

    def identities_of(split):
        return (
            args.identities
            if split == "train" or not args.test_identities
            else args.test_identities
        )

    groups = {}  # identities -> the splits that have that many people, in order
    for split in splits:
        groups.setdefault(identities_of(split), []).append(split)
    groups = groups or {args.identities: []}  # no splits: the empty raw folder, as asked
    for identities, group in groups.items():
        raw_dir = make_synthetic_raw(
            args.out,
            args.kind,
            identities,
            args.images_per_identity,
            tuple(group),
            args.seed,
            junk_test_files=args.junk_test_files,
            **people,
        )
    print(f"raw {args.kind} data: {raw_dir}", flush=True)
    if args.convert:
        for split in splits:
            data_path = make_synthetic_records(
                args.out,
                args.kind,
                split,
                identities_of(split),
                args.images_per_identity,
                args.seed,
                args.workers,
                junk_test_files=args.junk_test_files,
                **people,
            )
            print(f"{split} records: {data_path}", flush=True)


if __name__ == "__main__":
    common.run_cli(main)
