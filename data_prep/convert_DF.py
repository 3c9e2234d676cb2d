"""Converts the raw DeepFashion data of PG2 into pair tf-records equal to the original converter's.

Usage (as the original ``datasets/run_convert_DF.sh``)::

    python data_prep/convert_DF.py <raw_dir> train|test|test_samples|test_seq [--out DIR]
        [--workers N] [--records_per_shard N] [--no_flip] [--no_roi10_mask] [--quiet]

``<raw_dir>`` is the unzipped ``DF_img_pose`` folder (or the folder holding it):

* ``filted_up_{train,train_flip,test,test_samples,test_seq}/*.jpg``: 256 x 256 images named
  ``<identity>_<anything>.jpg`` (the identity is the text before the first '_');
* ``PoseFiltered/{all_peaks_dic,subsets_dic}_DeepFashion.p`` (every split) and
  ``..._DeepFashion_Flip.p`` (the mirrored train images): OpenPose results, Python 2 pickles.

The output folder (default ``<raw_dir>/DF_<split>_data``) receives
``DeepFashion_<train|test>_<i>-of-<n>.tfrecord``, ``p_pairs_<tag>.p``, ``n_pairs_<tag>.p``,
``pn_pairs_num_<tag>.p`` (tag: train, train_flip, test) and ``tf_record_pair_num.txt``.

What the original does and this keeps:

* Pairs: every two images of one identity in both orders (test_seq: every ordered pair, an
  image with itself included); train also converts ``filted_up_train_flip`` (written first).
* Order: train and test are shuffled by ``random.seed(0)`` + Python 2's shuffle, reproduced
  exactly; test_samples and test_seq keep the generated order.
* Keypoints: the FIRST candidate of every joint, whatever person it belongs to (the original
  computes the best person's joints and then returns all peaks).
* ``roi10_mask_k``: 10 x 256 x 256 region masks, about 1.3 MB per record (DeepFashion train is
  then hundreds of GB); the original filled missing regions with unseeded random copies, here
  seeded by the image name. ``--no_roi10_mask`` leaves the two features out (PG2 never reads
  them).
* A pair is skipped when an image has no pose; where the original crashed on an image (no person
  in its subsets, no visible region for the masks), its pairs are skipped too and counted.
"""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data_prep import common, converter
from pg2_tf.core import datasets
from pg2_tf.core.errors import ConfigError

RAW_FOLDER = datasets.DEEPFASHION.raw_folder
SPLITS = ("train", "test", "test_samples", "test_seq")
_FIX = "unzip DF_img_pose.zip of the original PG2 release there"


def deepfashion_identity(name: str) -> str:
    """Identity of a DeepFashion image name.

    Args:
        name: a raw image name (``<identity>_<anything>.jpg``).

    Returns:
        The text before the first ``_``.
    """
    return datasets.DEEPFASHION.identity_of(name)


def deepfashion_camera(name: str) -> int:
    """The camera of a DeepFashion image: there is none.

    Args:
        name: a raw image name (unused).

    Returns:
        -1, always.
    """
    return -1


def convert(
    raw_dir: Path,
    split: str,
    out_dir: Path | None = None,
    workers: int | None = None,
    records_per_shard: int = 1000,
    flip: bool = True,
    with_roi10_mask: bool = True,
    show_progress: bool = True,
    junk_detections: int = datasets.DEEPFASHION.junk_test_detections,
) -> Path:
    """Converts one split (see the module docstring).

    Args:
        raw_dir: the unzipped ``DF_img_pose`` folder (or the folder holding it).
        split: train, test, test_samples or test_seq.
        out_dir: the output folder, or None for ``<raw_dir>/DF_<split>_data``.
        workers: worker processes, or None for every core.
        records_per_shard: records a ``.tfrecord`` file.
        flip: train: also the mirrored copies (``filted_up_train_flip``).
        with_roi10_mask: write ``roi10_mask_0/1`` (~1.3 MB a record).
        show_progress: show a progress bar.
        junk_detections: sorted files of ``filted_up_test`` to skip (the release has none; the
            converters of both datasets take the same arguments, :func:`data_prep.common.converter_of`).

    Returns:
        The output folder.

    Raises:
        ConfigError: unknown split, bad worker/shard numbers, foreign shards in ``out_dir``.
        DataError: a missing folder or pickle, a pickle that is not a pose dictionary, an
            unreadable image.
    """
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    workers = common.default_workers(workers)
    raw_dir = converter.resolve_raw_dir(
        datasets.DEEPFASHION, raw_dir, "DeepFashion raw folder", _FIX
    )
    if junk_detections < 0:
        raise ConfigError(f"junk_detections must be 0 or more, got {junk_detections}")
    out_dir, parts = converter.split_parts(
        datasets.DEEPFASHION,
        raw_dir,
        split,
        out_dir,
        junk_detections,
        flip,
        deepfashion_identity,
        _FIX,
    )

    converter.convert_pairs(
        datasets.DEEPFASHION,
        out_dir,
        split.split("_")[0],
        parts,
        deepfashion_identity,
        deepfashion_camera,
        _FIX,
        with_roi10_mask=with_roi10_mask,
        workers=workers,
        records_per_shard=records_per_shard,
        show_progress=show_progress,
    )
    return out_dir


def main(argv: list[str] | None = None) -> None:
    """``python data_prep/convert_DF.py``: one DeepFashion split converted, its folder printed.

    Args:
        argv: command-line arguments without the program name (None: ``sys.argv[1:]``).
    """
    parser = common.raw_converter_parser(
        __doc__.split("\n\n")[0], RAW_FOLDER, SPLITS, "<raw_dir>/DF_<split>_data"
    )
    common.add_writer_args(parser, "leave out roi10_mask_0/1 (~1.3 MB a record)")
    args = parser.parse_args(argv)
    out_dir = convert(
        args.raw_dir,
        args.split,
        args.out,
        args.workers,
        args.records_per_shard,
        flip=not args.no_flip,
        with_roi10_mask=not args.no_roi10_mask,
        show_progress=not args.quiet,
    )
    common.print_written(out_dir)


if __name__ == "__main__":
    common.run_cli(main)
