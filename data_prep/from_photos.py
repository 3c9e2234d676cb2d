"""PG2 records from a folder of your own photos, one sub-folder per person.

Usage::

    python -m data_prep.from_photos --photos DIR --out OUT --dataset market|deepfashion
        --split train|test [--person largest|N|x,y] [--workers N] [--records_per_shard N] [--quiet]

``DIR/<person>/<photo>`` (any photo Pillow reads: JPEG, PNG, ...; any size, a full scene is
fine). For every photo the person's 18 keypoints are estimated with :mod:`pg2_tf.people.blazepose`
(BlazePose; ``python -m pg2_tf.keypoints --fetch_model`` once), the photo is cropped to the person's
box at the model's size (Market 128 x 64, DeepFashion 256 x 256; :func:`pg2_tf.people.photos.person_crop`)
and the keypoints are carried into the crop. The crops and their poses are written in the
ORIGINAL raw layout under ``OUT/raw`` (images named ``PPPP_c1s1_NNNNNN_00.jpg`` for Market,
``PPPPP_N.jpg`` for DeepFashion, the pose as one-person OpenPose pickles; train also gets the
mirrored ``train_flip`` set, as the original), and then converted by the project's own
converter (:mod:`data_prep.convert_market` / :mod:`data_prep.convert_DF`): the records, pairs
(every ordered pair of photos of one person, shuffled as the original) and pickles are exactly
those the original pipeline makes of such a raw folder. ``OUT/persons_<split>.txt`` maps each
person number to its sub-folder.

``--person`` chooses the person of each photo (``largest``, the default; an index as
``pg2-keypoints`` lists them, largest first; or ``x,y``, the person nearest that pixel). A photo
where no person is found (or ``--person`` picks nobody), or that cannot be read, is listed
(``OUT/skipped_<split>.txt`` and a warning) and skipped; it is not fatal.

Rule: it writes the original's raw layout and converts it with the project's converter; no
record format of its own.
"""

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from data_prep import (
    common,
    raw_layout,
)
from pg2_tf.core import datasets, pose, pose_files
from pg2_tf.core.errors import ConfigError, DataError
from pg2_tf.people import photos

DATASETS = datasets.KINDS
SPLITS = ("train", "test")
PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
JPEG_QUALITY = 95


def image_name(dataset: str, person: int, index: int, camera: int = 1) -> str:
    """The raw file name of one photo of a person, as the converters read them.

    Args:
        dataset: ``market`` or ``deepfashion``.
        person: the person's number, from 1.
        index: the photo's index, from 0.
        camera: Market's camera digit, 1-9.

    Returns:
        Market ``PPPP_cCs1_NNNNNN_00.jpg`` (identity = first 4 characters); DeepFashion
        ``PPPPP_N.jpg`` (identity = text before '_').
    """
    return datasets.by_kind(dataset).raw_image_name(
        person, index + 1, person * 1000 + index, camera
    )


def add_crop(raw_dir: Path, layout, sets: dict, split: str, name: str, crop, keypoints_rc):
    """Writes one model-size crop and its pose into the raw layout being built (and, for
    train, the mirrored copy into ``train_flip``, as the original's data has it).

    Args:
        sets: from :func:`data_prep.raw_layout.prepare_image_sets`; receives the OpenPose results.
        crop: uint8 [H, W, 3] at the layout's size; keypoints_rc: float [18, 2] in it, -1 missing.
    """
    # OpenPose gave whole pixels; so do the records.
    keypoints_rc = np.round(np.asarray(keypoints_rc, np.float64))
    raw_layout.save_jpeg(crop, raw_dir / layout.image_folder(split) / name, JPEG_QUALITY)
    sets[split][name] = pose_files.openpose_from_keypoints(keypoints_rc)
    if split == "train":
        mirrored = pose.mirror_keypoints(keypoints_rc, layout.img_W)
        raw_layout.save_jpeg(
            crop[:, ::-1], raw_dir / layout.image_folder("train_flip") / name, JPEG_QUALITY
        )
        sets["train_flip"][name] = pose_files.openpose_from_keypoints(mirrored)


def save_pose_sets(raw_dir: Path, layout, sets: dict) -> None:
    """Writes the OpenPose pickles of the image sets built with :func:`add_crop`.

    Args:
        raw_dir: the raw layout's folder.
        layout: the dataset (:class:`pg2_tf.core.datasets.Dataset`): pose folder, pickle names.
        sets: image set -> {image name: (all_peaks, subsets)}; merged into existing pickles.
    """
    for image_set, results in sets.items():
        # Merged, not replaced: DeepFashion's train and test share one pair of pickles.
        raw_layout.add_to_pickles(
            raw_dir / layout.pose_folder, layout.pickle_names(image_set), results
        )


def convert_raw(raw_dir: Path, out_dir: Path, dataset: str, split: str, workers=None,
                records_per_shard: int = 1000, show_progress: bool = True) -> str:  # fmt: skip
    """Converts a raw folder written here with the project's converter (Market: no junk detections).

    Args:
        raw_dir: the raw layout's folder.
        out_dir: the records' folder.
        dataset: ``market`` or ``deepfashion``.
        split: train or test.
        workers: worker processes, or None for every core.
        records_per_shard: records a ``.tfrecord`` file.
        show_progress: show a progress bar.

    Returns:
        The ``tf_record_pair_num.txt`` line (``cnt:<records>``).
    """
    options = dict(workers=common.default_workers(workers), show_progress=show_progress)
    common.converter_of(datasets.by_kind(dataset)).convert(
        raw_dir, split, out_dir, records_per_shard=records_per_shard, junk_detections=0, **options
    )
    return (Path(out_dir) / "tf_record_pair_num.txt").read_text()


def person_folders(photos: Path) -> list[tuple[str, list[Path]]]:
    """Every person sub-folder of a photo folder.

    Args:
        photos: the folder, one sub-folder per person.

    Returns:
        ``(sub-folder name, sorted photo paths)`` of every sub-folder holding photos, sorted.

    Raises:
        DataError: no such folder, or no sub-folder with photos.
    """
    photos = common.require_dir(
        Path(photos), "photo folder", "give --photos a folder with one sub-folder per person"
    )
    people = []
    for folder in sorted(path for path in photos.iterdir() if path.is_dir()):
        files = sorted(path for path in folder.iterdir() if path.suffix.lower() in PHOTO_EXTENSIONS)
        if files:
            people.append((folder.name, files))
    if not people:
        raise DataError(
            f"{photos} has no sub-folder with photos ({', '.join(PHOTO_EXTENSIONS)}): put each "
            "person's photos in a sub-folder of their own"
        )
    return people


def write_raw_layout(
    people, raw_root: Path, dataset: str, split: str, estimator, log=print, choice=None
) -> tuple[Path, list[str]]:
    """Crops every photo to its person and writes the original raw layout of ``split``.

    Args:
        people: from :func:`person_folders`.
        raw_root: folder that receives ``Market1501_img_pose_attr_seg`` or ``DF_img_pose``.
        estimator: a :class:`pg2_tf.people.blazepose.KeypointEstimator`.
        log: receives one line per skipped photo.
        choice: which person of each photo (:class:`pg2_tf.people.finder.PersonChoice`; default the
            largest); a photo where it picks nobody is skipped and listed.

    Returns:
        ``(raw_dir, skipped)``: the raw folder for the converter, and ``"path: reason"`` lines of
        the photos left out.
    """
    from pg2_tf.people import finder as people_module

    picker = people_module.PersonPicker(estimator, choice, one_person=True)
    layout = datasets.by_kind(dataset)
    raw_dir = raw_root / layout.raw_folder
    sets = raw_layout.prepare_image_sets(raw_dir, layout, split)
    skipped = []
    for person, (_, files) in enumerate(people, start=1):
        for index, path in enumerate(files):
            try:
                framed = photos.person_in_model_frame(
                    *photos.find_person(path, picker), layout.img_H, layout.img_W
                )
            except DataError as error:  # unreadable photo, or no person in it
                skipped.append(f"{path}: {error}")
                log(f"skipped {path}: {error}")
                continue
            name = image_name(dataset, person, index)
            add_crop(raw_dir, layout, sets, split, name, framed.image, framed.keypoints_rc)
    save_pose_sets(raw_dir, layout, sets)
    return raw_dir, skipped


def convert(
    photos: Path,
    out_dir: Path,
    dataset: str,
    split: str,
    workers: int | None = None,
    records_per_shard: int = 1000,
    show_progress: bool = True,
    estimator=None,
    log=print,
    person: str = "largest",
) -> Path:
    """Writes the records of a folder of photos (see the module docstring).

    Args:
        photos: the folder, one sub-folder per person.
        out_dir: the output folder (created).
        dataset: ``market`` or ``deepfashion``.
        split: train or test.
        workers: worker processes, or None for every core.
        records_per_shard: records a ``.tfrecord`` file.
        show_progress: show a progress bar.
        estimator: the pose estimator (default: a new
            :class:`pg2_tf.people.blazepose.KeypointEstimator`).
        log: receives one line per skipped photo and a summary line.
        person: which person of each photo: ``largest``, an index as pg2-keypoints lists them
            or ``x,y`` (:func:`pg2_tf.people.finder.parse_person`); a photo where it picks nobody
            (an index beyond the people found, a point far from everyone) is skipped and listed.

    Returns:
        ``out_dir``.

    Raises:
        ConfigError: unknown dataset or split.
        DataError: no photo folder, no person sub-folder, no photo with a person, model files
            missing (the line says how to fetch them).
    """
    if dataset not in DATASETS:
        raise ConfigError(f"--dataset must be one of {', '.join(DATASETS)}, not {dataset!r}")
    if split not in SPLITS:
        raise ConfigError(f"--split must be one of {', '.join(SPLITS)}, not {split!r}")
    from pg2_tf.people import finder as people_module

    choice = people_module.parse_person(person, "--person")
    people = person_folders(photos)
    if estimator is None:
        from pg2_tf.people import blazepose

        estimator = blazepose.KeypointEstimator()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    raw_dir, skipped = write_raw_layout(
        people, out_dir / "raw", dataset, split, estimator, log, choice
    )
    (out_dir / f"skipped_{split}.txt").write_text("".join(f"{line}\n" for line in skipped))
    (out_dir / f"persons_{split}.txt").write_text(
        "".join(f"{number} {name}\n" for number, (name, _) in enumerate(people, start=1))
    )
    total = sum(len(files) for _, files in people)
    if len(skipped) == total:
        raise DataError(f"no person was found in any of the {total} photos of {photos}")
    records = convert_raw(
        raw_dir, out_dir, dataset, split, workers, records_per_shard, show_progress
    )
    log(
        f"{total - len(skipped)} of {total} photos of {len(people)} persons used "
        f"({len(skipped)} skipped, listed in {out_dir / f'skipped_{split}.txt'}); records {records}"
    )
    return out_dir


def layout_parser(description: str) -> argparse.ArgumentParser:
    """The command line every converter that writes its own raw layout shares.

    Used by this one and from_video.py, before their own input and the writer's options.

    Args:
        description: the parser's description.

    Returns:
        The parser with --out, --dataset and --split.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--dataset", choices=DATASETS, required=True)
    parser.add_argument("--split", choices=SPLITS, required=True)
    return parser


def main(argv: list[str] | None = None) -> None:
    """The command line: parses ``argv`` and writes the records, printing where they went.

    Args:
        argv: the arguments after the program name, or None for ``sys.argv[1:]``.
    """
    parser = layout_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, required=True, help="one sub-folder per person")
    common.add_writer_args(parser)
    parser.add_argument(
        "--person",
        default="largest",
        help="which person of each photo: largest (default), an index as pg2-keypoints lists "
        "them (largest first), or x,y (the person nearest that pixel)",
    )
    args = parser.parse_args(argv)
    convert(
        args.photos,
        args.out,
        args.dataset,
        args.split,
        args.workers,
        args.records_per_shard,
        show_progress=not args.quiet,
        log=lambda line: print(line, file=sys.stderr),
        person=args.person,
    )


if __name__ == "__main__":
    common.run_cli(main)
