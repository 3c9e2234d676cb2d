"""PG2 records of Market-1501 or DeepFashion from the datasets' official releases alone.

Usage::

    python -m data_prep.from_release --dataset=market|deepfashion --release=DIR
        --split=train|test --out=OUT [--pairs=CSV] [--workers=N] [--min_joints=4]
        [--roi10_mask] [--records_per_shard=N] [--quiet]

``--release``: the unzipped ``Market-1501-v15.09.15`` folder, or the DeepFashion In-shop Clothes
Retrieval folder holding ``img/`` and ``Eval/list_eval_partition.txt`` (:mod:`data_prep.release`).

Writes into OUT:

* ``Market_<split>_data/`` or ``DF_<split>_data/``: the records, ``p_pairs``/``n_pairs``/
  ``pn_pairs_num_<split>.p`` and ``tf_record_pair_num.txt``, written by ``convert_market.py`` /
  ``convert_DF.py`` from the original raw layout that this command writes under ``OUT/raw``
  (the images as the release has them, the mirrored ``train_flip`` copies for train, and the
  poses as one-person OpenPose pickles). Pairs are the original's: every two images of one
  identity (Market: of one person, whatever the cameras, in both orders, the original's
  'same_diff_cam' mode; DeepFashion: of one item id), shuffled as the original; train also has
  the mirrored copies' records. With ``--pairs=CSV`` (Pose-Transfer's ``from,to`` lists, e.g.
  ``market-pairs-train.csv``, ``fasion-resize-pairs-test.csv``) exactly those pairs, in that
  order, through the same converter code (no mirrored copies, no shuffle).
* ``<market|deepfashion>-annotation-<split>.csv``: every image's keypoints in Pose-Transfer's
  format (``name:keypoints_y:keypoints_x``, -1 missing; :mod:`pg2_tf.records.annotations`), under
  Pose-Transfer's names; DeepFashion's in its 256 x 176 frame (40 columns cut on each side).
* ``skipped_<split>.txt``: every image not used, ``path: reason``.
* ``keypoints_<split>.jsonl``: the keypoint cache (:mod:`data_prep.keypoint_cache`).

Keypoints: BlazePose (:mod:`pg2_tf.people.blazepose`) on each image in ``--workers`` processes, cached
as they come, so a killed run resumes where it stopped. Filtering, as the original's
``PoseFiltered`` data: an image is used when a person is found in it with at least
``--min_joints`` (4) of the 18 joints, the minimum the OpenPose code that made the original's
pickles required of a person (its subsets drop people with fewer than 4 parts); images without a
person are left out, and so are their pairs.

Bad input stops with one line and exit status 2 (a folder that is not the release, an unreadable
image, a failed write, OUT in use by another run); what was done is kept and the same command
resumes.

Rule: it writes the original's raw layout and converts it with the project's converter; no
record format of its own.
"""

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from data_prep import common, keypoint_cache, raw_layout, release  # noqa: E402
from pg2_tf.core import atomic, datasets, pose, pose_files  # noqa: E402
from pg2_tf.core.errors import ConfigError, DataError, first_line  # noqa: E402

MIN_JOINTS = 4
JPEG_QUALITY = 95
# Pose-Transfer's DeepFashion images: the 256 x 256 In-shop images without 40 columns a side.
ANNOTATION_CROP_COLUMNS = {"deepfashion": (40, 176)}


def annotation_file_name(dataset: str, split: str) -> str:
    """The name of the annotation CSV written into OUT, as Pose-Transfer names its files.

    Args:
        dataset: ``market`` or ``deepfashion``.
        split: train or test.

    Returns:
        ``<dataset>-annotation-<split>.csv``.
    """
    return f"{dataset}-annotation-{split}.csv"


# ---- the run ----------------------------------------------------------------------------------


def convert(
    dataset: str,
    release_dir: Path,
    split: str,
    out_dir: Path,
    pairs_csv: Path | None = None,
    workers: int | None = None,
    min_joints: int = MIN_JOINTS,
    with_roi10_mask: bool = False,
    records_per_shard: int = 1000,
    show_progress: bool = True,
    make_estimate=None,
    log=print,
    records: bool = True,
) -> Path:
    """Writes OUT (see the module docstring).

    Args:
        dataset: ``market`` or ``deepfashion``.
        release_dir: the unzipped release (:mod:`data_prep.release`).
        split: train or test.
        out_dir: OUT.
        pairs_csv: a Pose-Transfer pairs list to convert, or None for every same-person pair.
        workers: worker processes, or None for every core.
        min_joints: images with fewer detected joints (of 18) are skipped.
        with_roi10_mask: DeepFashion: write the region masks.
        records_per_shard: records a ``.tfrecord`` file.
        show_progress: show a progress bar.
        make_estimate: picklable factory of the per-image function (default :class:`data_prep.keypoint_cache.BlazePose`;
            tests pass a fake one).
        log: receives the summary and warning lines.
        records: False (``--annotations_only``): keypoints, annotation CSV and skipped list only.

    Returns:
        The records folder.

    Raises:
        ConfigError: unknown dataset/split, bad numbers, OUT in use or holding another run.
        DataError: not a release, an unreadable image, a failed write, missing model files.
    """
    if dataset not in release.DATASETS:
        raise ConfigError(
            f"--dataset must be one of {', '.join(release.DATASETS)}, not {dataset!r}"
        )
    if split not in release.SPLITS:
        raise ConfigError(f"--split must be one of {', '.join(release.SPLITS)}, not {split!r}")
    if not 1 <= min_joints <= pose.NUM_KEYPOINTS:
        raise ConfigError(f"--min_joints must be 1 to 18, got {min_joints}")
    workers = common.default_workers(workers)
    release_dir, out_dir = Path(release_dir), Path(out_dir)
    images, skipped = release.list_images(dataset, release_dir, split)
    if pairs_csv is None:
        # Query images only serve pair lists that name them (PG2's test is bounding_box_test).
        query = [image for image in images if image.folder == "query"]
        skipped += [release.Skipped(i.path, "query image, used only with --pairs") for i in query]
        images = [image for image in images if image.folder != "query"]
    pairs = _read_pairs(pairs_csv) if pairs_csv is not None else None
    if make_estimate is None:
        from pg2_tf.people import blazepose

        blazepose.KeypointEstimator()  # the model files are there, before any work starts
        make_estimate = keypoint_cache.BlazePose(threads=1 if workers > 1 else None)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(
            f"cannot make --out={out_dir} ({error.strerror}); choose another folder"
        ) from None

    from pg2_tf.core import folder_lock

    with folder_lock.FolderLock(str(out_dir), "--out", "from_release run"):
        cache = keypoint_cache.KeypointCache(
            out_dir / f"keypoints_{split}.jsonl", {"dataset": dataset, "split": split}
        ).open()
        try:
            tasks = [
                (i.path, str(release_dir / i.path)) for i in images if i.path not in cache.rows
            ]
            done = len(images) - len(tasks)
            started = time.perf_counter()
            unreadable = keypoint_cache.estimate_all(
                cache, tasks, len(tasks), make_estimate, min(workers, max(1, len(tasks))),
                show_progress, done, cacheable=_cacheable,
            )  # fmt: skip
            seconds = time.perf_counter() - started
            if tasks:
                rate = len(tasks) / seconds
                log(f"keypoints of {len(tasks)} images in {seconds:.1f} s ({rate:.2f} images/s)")
        finally:
            cache.close()
        if unreadable:
            path, reason = unreadable[0]
            raise DataError(
                f"{len(unreadable)} image(s) of the release cannot be read, e.g. {path}: {reason};"
                " download it again (or delete it) and run the same command again (the keypoints"
                f" of the other {len(cache.rows)} images are kept in {cache.path})"
            )
        kept, skipped_pose = _filter(images, cache.rows, min_joints)
        skipped += skipped_pose
        _write_lines(
            out_dir / f"skipped_{split}.txt",
            sorted(f"{item.path}: {item.reason}" for item in skipped),
        )
        _write_annotations(
            dataset, out_dir / annotation_file_name(dataset, split), images, cache.rows
        )
        if not records:
            log(
                f"{len(kept)} of {len(kept) + len(skipped)} images usable; annotations in {out_dir}"
            )
            return out_dir / datasets.by_kind(dataset).data_folder(split)
        if not kept:
            raise DataError(
                f"no image of {release_dir} ({split}) has a person with {min_joints} joints; see "
                f"{out_dir / f'skipped_{split}.txt'}"
            )
        raw_dir = _write_raw_layout(dataset, split, out_dir / "raw", release_dir, kept, cache.rows)
        data_dir = out_dir / datasets.by_kind(dataset).data_folder(split)
        options = dict(
            workers=workers, records_per_shard=records_per_shard, show_progress=show_progress
        )
        try:
            if pairs is None:
                _convert_original_pairs(dataset, raw_dir, split, data_dir, with_roi10_mask, options)
            else:
                _convert_listed_pairs(
                    dataset, raw_dir, split, data_dir, kept, pairs, with_roi10_mask, options, log
                )
        except Exception as error:
            if not _is_write_error(error):
                raise
            raise DataError(
                f"writing the records into {data_dir} failed ({first_line(error)}): free space"
                " and run the same command again (finished shards and keypoints are kept)"
            ) from None
    count = (data_dir / "tf_record_pair_num.txt").read_text()
    log(
        f"{len(kept)} of {len(kept) + len(skipped)} images used ({len(skipped)} skipped, listed in "
        f"{out_dir / f'skipped_{split}.txt'}); records {count} in {data_dir}"
    )
    return data_dir


def _cacheable(reason: str | None) -> bool:
    """Unreadable files are not cached: a rerun after the fix tries them again."""
    return not (reason or "").startswith(keypoint_cache.UNREADABLE)


def _is_write_error(error: Exception) -> bool:
    """A failed file write: OSError, or TensorFlow's error from the record writer (full disk)."""
    if isinstance(error, OSError):
        return True
    import tensorflow as tf  # already loaded by the record writer when it raised

    return isinstance(error, tf.errors.OpError)


def _filter(images, rows, min_joints):
    kept, skipped = [], []
    for image in images:
        keypoints_rc, reason = rows[image.path]
        if keypoints_rc is None:
            skipped.append(release.Skipped(image.path, reason or "no keypoints"))
            continue
        joints = int((~pose.missing_joints(keypoints_rc)).sum())
        if joints < min_joints:
            skipped.append(
                release.Skipped(
                    image.path, f"too few joints ({joints} of 18, --min_joints={min_joints})"
                )
            )
        else:
            kept.append(image)
    return kept, skipped


def _write_lines(path: Path, lines) -> None:
    try:
        atomic.write_text(path, "".join(f"{line}\n" for line in lines))
    except OSError as error:
        raise DataError(
            f"writing {path} failed ({error.strerror}); free space and run again"
        ) from None


def _write_annotations(dataset, path: Path, images, rows) -> None:
    from pg2_tf.records import annotations

    crop = ANNOTATION_CROP_COLUMNS.get(dataset)
    poses = []
    for image in images:
        keypoints_rc = rows[image.path][0]
        keypoints_rc = (
            np.full((pose.NUM_KEYPOINTS, 2), -1.0) if keypoints_rc is None else keypoints_rc.copy()
        )
        if crop is not None:
            present = ~pose.missing_joints(keypoints_rc)
            keypoints_rc[present, 1] -= crop[0]
            outside = present & ((keypoints_rc[:, 1] < 0) | (keypoints_rc[:, 1] >= crop[1]))
            keypoints_rc[outside] = pose.MISSING
        poses.append((image.annotation_name, keypoints_rc))
    try:
        annotations.write_annotations(str(path), poses)
    except OSError as error:
        raise DataError(
            f"writing {path} failed ({error.strerror}); free space and run again"
        ) from None


def _write_raw_layout(dataset, split, raw_root: Path, release_dir: Path, kept, rows) -> Path:
    """The original raw layout of the kept images (and train's mirrored copies); its folder."""
    layout = datasets.by_kind(dataset)
    raw_dir = raw_root / layout.raw_folder
    try:
        sets = raw_layout.prepare_image_sets(raw_dir, layout, split)
        for image in kept:
            keypoints_rc = rows[image.path][0]
            target = raw_dir / layout.image_folder(split) / image.raw_name
            pixels, keypoints_rc = _place(release_dir / image.path, target, keypoints_rc, layout)
            sets[split][image.raw_name] = pose_files.openpose_from_keypoints(keypoints_rc)
            if split == "train":
                if pixels is None:
                    from pg2_tf.people import photos

                    pixels = photos.load_photo(target)
                mirrored = pose.mirror_keypoints(keypoints_rc, layout.img_W)
                flip_path = raw_dir / layout.image_folder("train_flip") / image.raw_name
                raw_layout.save_jpeg(pixels[:, ::-1], flip_path, JPEG_QUALITY)
                sets["train_flip"][image.raw_name] = pose_files.openpose_from_keypoints(mirrored)
        for image_set, results in sets.items():
            raw_layout.add_to_pickles(
                raw_dir / layout.pose_folder, layout.pickle_names(image_set), results
            )
    except OSError as error:
        raise DataError(
            f"writing the raw layout under {raw_dir} failed ({error.strerror or error}): free "
            "space and run the same command again (the keypoints are kept)"
        ) from None
    return raw_dir


def _place(source: Path, target: Path, keypoints_rc, layout):
    """Puts a release image into the raw layout: the same file when it has the model's size
    (a hard link, else a copy), else scaled and padded to it (keypoints moved along).

    Returns ``(pixels or None, keypoints_rc in the model frame)``."""
    from PIL import Image

    with Image.open(source) as image:
        size = (image.height, image.width)
    if size == (layout.img_H, layout.img_W):
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)
        return None, keypoints_rc
    from pg2_tf.people import photos

    pixels, moved, _ = photos.fit_to_model(
        photos.load_photo(source), keypoints_rc, layout.img_H, layout.img_W
    )
    raw_layout.save_jpeg(pixels, target, JPEG_QUALITY)
    return pixels, moved.astype(np.float64)


def _convert_original_pairs(dataset, raw_dir, split, data_dir, with_roi10_mask, options) -> None:
    common.converter_of(datasets.by_kind(dataset)).convert(
        raw_dir, split, data_dir, junk_detections=0, with_roi10_mask=with_roi10_mask, **options
    )


def _read_pairs(path: Path) -> list[list[str]]:
    from data_prep import from_annotations

    return from_annotations.read_pairs(Path(path))


def _convert_listed_pairs(
    dataset, raw_dir, split, data_dir, kept, pairs, with_roi10_mask, options, log
) -> None:
    """The pairs of a Pose-Transfer list, through the converters' shared pipeline."""
    from data_prep import converter

    raw_name = {image.annotation_name: image.raw_name for image in kept}
    listed = [[raw_name.get(a), raw_name.get(b)] for a, b in pairs]
    usable = [pair for pair in listed if None not in pair]
    if len(usable) < len(pairs):
        log(
            f"warning: {len(pairs) - len(usable)} of {len(pairs)} listed pairs name an image that "
            "is not in this split of the release or was skipped; they are left out"
        )
    spec = datasets.by_kind(dataset)
    source = converter.split_source(spec, raw_dir, split)
    data_dir.mkdir(parents=True, exist_ok=True)
    common.dump_pickle(usable, data_dir / f"p_pairs_{split}.p")
    common.dump_pickle([], data_dir / f"n_pairs_{split}.p")
    common.dump_pickle(len(usable), data_dir / f"pn_pairs_num_{split}.p")
    converter.convert_pairs(
        spec, data_dir, split, [("main", source, usable)], spec.identity_of, spec.camera_of,
        "run data_prep.from_release again", with_roi10_mask=with_roi10_mask, **options,
    )  # fmt: skip


def main(argv: list[str] | None = None, make_estimate=None) -> None:
    """The command line: parses ``argv`` and writes OUT.

    Args:
        argv: the arguments after the program name, or None for ``sys.argv[1:]``.
        make_estimate: as :func:`convert` (tests pass a fake one), or None.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=release.DATASETS, required=True)
    parser.add_argument("--release", type=Path, required=True, help="the unzipped release")
    parser.add_argument("--split", choices=release.SPLITS, required=True)
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--pairs", type=Path, help="Pose-Transfer pair list (from,to csv)")
    parser.add_argument("--workers", type=int, help="processes (default: every core)")
    parser.add_argument("--min_joints", type=int, default=MIN_JOINTS, help="joints a person needs")
    parser.add_argument(
        "--roi10_mask",
        action="store_true",
        help="deepfashion: also roi10_mask_k (~1.3 MB a record)",
    )
    parser.add_argument("--records_per_shard", type=int, default=1000)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--annotations_only", action="store_true", help="keypoints and the CSV, no records"
    )
    args = parser.parse_args(argv)
    convert(
        args.dataset, args.release, args.split, args.out, args.pairs, args.workers,
        args.min_joints, args.roi10_mask, args.records_per_shard, show_progress=not args.quiet,
        make_estimate=make_estimate, log=lambda line: print(line, file=sys.stderr),
        records=not args.annotations_only,
    )  # fmt: skip


if __name__ == "__main__":
    common.run_cli(main)
