"""Builds PG2 pair records from the CSV keypoint annotations of later work (Pose-Transfer,
Deformable GAN) instead of OpenPose pickles.

Usage::

    python data_prep/from_annotations.py --dataset market|deepfashion
        --annotations market-annotation-train.csv --pairs market-pairs-train.csv
        --images DIR --split train|test --out DIR
        [--workers N] [--records_per_shard N] [--no_roi10_mask] [--quiet]

Input formats:

* annotations: ':'-separated with the header ``name:keypoints_y:keypoints_x``; each keypoint
  column is a JSON list of 18 integers in the COCO/OpenPose joint order of PG2, -1 for a missing
  joint (e.g. ``0002_c1s1_000451_03.jpg:[27, 31, ...]:[34, 34, ...]``).
* pairs: ','-separated with the columns ``from`` and ``to`` (other columns are ignored); image
  ``from`` becomes image 0 (the condition), ``to`` image 1 (the target), in file order.

Records have every feature of the original converters' records (see
:mod:`data_prep.record_features`), with these differences, because a CSV carries no OpenPose
detail: ``pose_subs_k`` is a one-person row built from the keypoints (peak ids 0.. in joint order,
-1 for missing joints, score and count = number of joints); no mirrored copies and no shuffle (the
pairs file decides the order); ``n_pairs_<split>.p`` is empty and ``pn_pairs_num_<split>.p`` is
the number of pairs in the file.

Market-1501 images (128 x 64) are stored byte for byte. The DeepFashion sets of those works
("fasion-resize-*", 256 x 176, the 256 x 256 In-shop images with 40 columns cut on each side) are
mapped back to the 256 x 256 frame of the PG2 DeepFashion model: each image is padded to 256
columns by repeating its edge columns (40 on each side; the background of those images is flat
studio light, so the repeat continues it) and re-encoded as JPEG (quality 95); keypoint columns
move right by the left padding. Images already 256 wide are stored unchanged.

Rule: the records are built by the converters' own features (:mod:`data_prep.record_features`)
and writer (:mod:`data_prep.shards`); no record format of its own.
"""

import argparse
import csv
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from PIL import Image

from data_prep import common
from data_prep.record_features import (
    ImageEntry,
    ImageFolder,
    PairRecord,
    RecordBuilder,
    entry_problem,
)
from data_prep.shards import write_records
from pg2_tf.core import datasets, pose, pose_files
from pg2_tf.core.errors import ConfigError, DataError
from pg2_tf.records import annotations

DATASETS = datasets.KINDS


def read_annotations(path: Path) -> dict[str, np.ndarray]:
    """Reads a ``name:keypoints_y:keypoints_x`` file (:func:`pg2_tf.records.annotations.read_annotations`).

    Args:
        path: the annotation ``.csv``.

    Returns:
        image name -> float64 [18, 2] (row, col), -1 for missing joints (a joint with one
        coordinate -1 is missing as a whole).

    Raises:
        DataError: missing file, wrong header, a row without 18 finite pairs.
    """
    keypoints = annotations.read_annotations(str(path))
    for keypoints_rc in keypoints.values():
        keypoints_rc[pose.missing_joints(keypoints_rc)] = pose.MISSING
    return keypoints


def read_pairs(path: Path) -> list[list[str]]:
    """Reads the ``from``/``to`` columns of a pairs file, in file order.

    Args:
        path: the pairs ``.csv`` (a header naming ``from`` and ``to``).

    Returns:
        ``[from, to]`` image names, one pair a row.

    Raises:
        DataError: missing file or columns.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"pairs file {path} is missing; pass --pairs <csv>")
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    header = [column.strip() for column in rows[0]] if rows else []
    if "from" not in header or "to" not in header:
        raise DataError(f"{path} has no 'from' and 'to' columns; pass a pairs file (from,to)")
    source, target = header.index("from"), header.index("to")
    return [[row[source], row[target]] for row in rows[1:] if row]


def convert(
    dataset: str,
    annotations: Path,
    pairs_csv: Path,
    images: Path,
    split: str,
    out_dir: Path,
    workers: int | None = None,
    records_per_shard: int = 1000,
    with_roi10_mask: bool = True,
    show_progress: bool = True,
) -> Path:
    """Writes the records of the pairs file (see the module docstring).

    Args:
        dataset: ``market`` or ``deepfashion``.
        annotations: the annotation ``.csv`` (:func:`read_annotations`).
        pairs_csv: the pairs ``.csv`` (:func:`read_pairs`).
        images: the folder of the images.
        split: the records' split name (train, test, ...).
        out_dir: the output folder (created).
        workers: worker processes, or None for every core.
        records_per_shard: records a ``.tfrecord`` file.
        with_roi10_mask: DeepFashion: write the region masks.
        show_progress: show a progress bar.

    Returns:
        ``out_dir``.

    Raises:
        ConfigError: unknown dataset, bad worker/shard numbers, foreign shards in ``out_dir``.
        DataError: missing or malformed files, unreadable images.
    """
    if dataset not in DATASETS:
        raise ConfigError(f"--dataset must be one of {', '.join(DATASETS)}, not {dataset!r}")
    if not split or "/" in split:
        raise ConfigError(f"--split must be a plain name such as train or test, not {split!r}")
    spec = datasets.by_kind(dataset)
    workers = common.default_workers(workers)
    images = common.require_dir(images, "image folder", "pass --images <folder of the images>")
    keypoints = read_annotations(annotations)
    pairs = read_pairs(pairs_csv)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    names = {name for pair in pairs for name in pair if name in keypoints}
    pad_columns = None
    if spec.patn_width != spec.img_W and names:
        pad_columns = _padding(spec, images / sorted(names)[0])
    entries, problems = {}, {}
    for name in sorted(names):
        keypoints_rc = keypoints[name].copy()
        if pad_columns:
            keypoints_rc[~pose.missing_joints(keypoints_rc), 1] += pad_columns[0]
        _, person = pose_files.openpose_from_keypoints(keypoints_rc)
        entry = ImageEntry(keypoints_rc=keypoints_rc, pose_subs=person[0])
        problem = entry_problem(spec, entry, with_roi10_mask)
        if problem:
            problems[name] = problem
        else:
            entries[name] = entry

    identity, camera = spec.identity_of, spec.camera_of
    ids = common.identity_map(pairs, identity)
    records = [
        PairRecord.of_pair("main", name_0, name_1, ids, identity, camera)
        for name_0, name_1 in pairs
        if name_0 in entries and name_1 in entries
    ]
    common.dump_pickle(pairs, out_dir / f"p_pairs_{split}.p")
    common.dump_pickle([], out_dir / f"n_pairs_{split}.p")
    common.dump_pickle(len(pairs), out_dir / f"pn_pairs_num_{split}.p")
    builder = RecordBuilder(
        spec, {"main": ImageFolder(str(images), entries, pad_columns)}, with_roi10_mask
    )
    write_records(
        out_dir,
        spec.record_prefix,
        split,
        records,
        builder,
        records_per_shard,
        workers,
        show_progress,
    )
    (out_dir / "tf_record_pair_num.txt").write_text(f"cnt:{len(records)}")
    left_out = len(pairs) - len(records)
    if left_out:
        print(
            f"warning: left out {left_out} of {len(pairs)} pairs whose images have no annotation"
            f" or no usable pose ({len(problems)} images unusable)",
            file=sys.stderr,
        )
    return out_dir


def _padding(spec: datasets.Dataset, sample_image: Path) -> tuple[int, int] | None:
    """Columns to add left/right so the images are ``spec.img_W`` wide (None when they are):
    Pose-Transfer's DeepFashion images are 176 wide, the PG2 model's 256."""
    try:
        with Image.open(sample_image) as image:
            width = image.width
    except OSError as error:
        raise DataError(f"cannot read image {sample_image} ({error}); check --images") from error
    if width == spec.img_W:
        return None
    if width > spec.img_W:
        raise DataError(
            f"image {sample_image} is {width} columns wide, more than the {spec.img_W} of the"
            f" {spec.title} model; resize the images to {spec.img_H} x {spec.patn_width} or"
            f" {spec.img_H} x {spec.img_W}"
        )
    left = (spec.img_W - width) // 2
    return left, spec.img_W - width - left


def main(argv: list[str] | None = None) -> None:
    """The command line: parses ``argv`` and writes the records, printing where they went.

    Args:
        argv: the arguments after the program name, or None for ``sys.argv[1:]``.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=DATASETS, required=True)
    parser.add_argument(
        "--annotations", type=Path, required=True, help="name:keypoints_y:keypoints_x csv"
    )
    parser.add_argument("--pairs", type=Path, required=True, help="from,to csv")
    parser.add_argument("--images", type=Path, required=True, help="folder of the images")
    parser.add_argument("--split", required=True, help="train or test (names the output files)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    common.add_writer_args(parser, "deepfashion: leave out roi10_mask_0/1")
    args = parser.parse_args(argv)
    out_dir = convert(
        args.dataset,
        args.annotations,
        args.pairs,
        args.images,
        args.split,
        args.out,
        args.workers,
        args.records_per_shard,
        with_roi10_mask=not args.no_roi10_mask,
        show_progress=not args.quiet,
    )
    common.print_written(out_dir)


if __name__ == "__main__":
    common.run_cli(main)
