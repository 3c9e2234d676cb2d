"""Converts the raw Market-1501 data of PG2 into pair tf-records equal to the original converter's.

Usage (as the original ``datasets/run_convert_market.sh``)::

    python data_prep/convert_market.py <raw_dir> train|test|test_samples [--out DIR]
        [--workers N] [--records_per_shard N] [--no_flip] [--junk_detections N] [--quiet]

``<raw_dir>`` is the unzipped ``Market1501_img_pose_attr_seg`` folder (or the folder holding it):

* ``bounding_box_{train,train_flip,test,test_samples}/*.jpg``: person images (128 x 64);
* ``Market-1501_PoseFiltered/{all_peaks_dic,subsets_dic}_Market-1501_<set>.p``: OpenPose results
  (Python 2 pickles) for <set> = train, train_Flip, test_clean, test_samples;
* optionally ``Market-1501_Attribute/market_attribute.mat`` and ``.../word2vec/*_att_wordvec_dim*.mat``
  (attribute features; written empty without them).

The output folder (default ``<raw_dir>/Market_<split>_data``) receives
``Market1501_<train|test>_<i>-of-<n>.tfrecord``, ``p_pairs_<tag>.p``, ``n_pairs_<tag>.p``,
``pn_pairs_num_<tag>.p`` (tag: train, train_flip, test) and ``tf_record_pair_num.txt``.

What the original does and this keeps:

* Pairs ('same_diff_cam'): every two images of one identity, in both orders; the first 6617 files
  of the sorted ``bounding_box_test`` are junk detections and skipped (with the ``test_clean``
  poses); train also converts the mirrored copies (``bounding_box_train_flip``, written first).
* Order: train and test pairs are shuffled by ``random.seed(0)`` + Python 2's shuffle, reproduced
  exactly; test_samples keeps the generated order. Test stops after 12800 records.
* Identities ``id_k`` count from 0 in order of first appearance in the (shuffled) pair list.
* A pair is skipped when an image has no pose. Where the original crashed on an image (no person
  row in its subsets), its pairs are skipped too and counted in the summary.

Rule: the records are byte-equal to the original converter's; the shared steps are
:mod:`data_prep.converter`'s.
"""

import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data_prep import common, converter
from pg2_tf.core import datasets
from pg2_tf.core.errors import ConfigError, DataError

RAW_FOLDER = datasets.MARKET.raw_folder
ATTRIBUTE_FOLDER = "Market-1501_Attribute"
SPLITS = ("train", "test", "test_samples")
JUNK_TEST_DETECTIONS = datasets.MARKET.junk_test_detections
TEST_RECORD_LIMIT = 12800
_FIX = "unzip Market1501_img_pose_attr_seg.zip of the original PG2 release there"


def market_identity(name: str) -> str:
    """Person identity of a Market image name.

    Args:
        name: a raw image name (``PPPP_cCs1_NNNNNN_00.jpg``).

    Returns:
        Its first 4 characters.
    """
    return datasets.MARKET.identity_of(name)


def market_camera(name: str) -> int:
    """Camera number of a Market image name.

    Args:
        name: a raw image name (``PPPP_cCs1_NNNNNN_00.jpg``).

    Returns:
        Its 7th character as an int, 1 to 6.

    Raises:
        DataError: not a Market-1501 name.
    """
    camera = datasets.MARKET.camera_of(name)
    if camera < 0:
        raise DataError(
            f"image name {name!r} is not a Market-1501 name (PPPP_cC...); rename the file"
        )
    return camera


def load_attributes(
    raw_dir: Path, split: str, junk_detections: int = JUNK_TEST_DETECTIONS
) -> dict[str, dict[str, list]]:
    """Market attribute features per identity (empty when the attribute folder is absent).

    As the original: identities are numbered in order of the split's sorted image list (for
    test_samples too, although its attributes come from the test part); ``attrs`` holds the
    numeric fields of ``market_attribute.mat`` (train or test part) in file order, and
    ``attrs_w2v<n>`` the concatenated word vectors of ``word2vec/<part>_att_wordvec_dim<n>.mat``.

    Args:
        raw_dir: the raw folder holding ``Market-1501_Attribute``.
        split: train, test or test_samples.
        junk_detections: sorted entries of ``bounding_box_test`` to skip.

    Returns:
        ``{identity: {"attrs": [int ...], "attrs_w2v<n>": [float ...], ...}}``; {} without the
        attribute folder.

    Raises:
        DataError: the folder does not hold the attribute files the original read.
    """
    attribute_dir = raw_dir / ATTRIBUTE_FOLDER
    onehot_path = attribute_dir / "market_attribute.mat"
    word2vec_dir = attribute_dir / "word2vec"
    if not onehot_path.is_file() and not word2vec_dir.is_dir():
        return {}
    import scipy.io  # only needed with attribute files

    source = converter.split_source(datasets.MARKET, raw_dir, split, junk_detections)
    identities = []
    for name in common.image_file_list(source.folder, skip_first=source.skip_first):
        if market_identity(name) not in identities:
            identities.append(market_identity(name))
    part = "train" if split == "train" else "test"
    columns: dict[str, list[list]] = {}
    try:
        if onehot_path.is_file():
            table = scipy.io.loadmat(onehot_path)["market_attribute"][part][0][0]
            rows = [table[field][0][0][0] for field in table.dtype.names]
            # Later releases add 'image_index' (identity names), which the original could not
            # have written as int64: only numeric fields are attributes.
            rows = [row for row in rows if np.issubdtype(row.dtype, np.number)]
            columns["attrs"] = [
                [int(row[index]) for row in rows] for index in range(len(identities))
            ]
        for size in (25, 50, 100, 150):
            path = word2vec_dir / f"{part}_att_wordvec_dim{size}.mat"
            if path.is_file():
                vectors = scipy.io.loadmat(path)[f"{part}_att"]
                columns[f"attrs_w2v{size}"] = [
                    sum((vectors[0][i][index].tolist() for i in range(vectors[0].shape[0])), [])
                    for index in range(len(identities))
                ]
    except (KeyError, IndexError, ValueError, TypeError) as error:
        raise DataError(
            f"{attribute_dir} does not hold the Market-1501 attribute files the original read"
            f" ({error!r}); remove the folder to convert without attributes"
        ) from error
    return {
        identity: {key: values[index] for key, values in columns.items()}
        for index, identity in enumerate(identities)
    }


def convert(
    raw_dir: Path,
    split: str,
    out_dir: Path | None = None,
    workers: int | None = None,
    records_per_shard: int = 1000,
    flip: bool = True,
    show_progress: bool = True,
    junk_detections: int = JUNK_TEST_DETECTIONS,
    with_roi10_mask: bool = False,
) -> Path:
    """Converts one split (see the module docstring).

    Args:
        raw_dir: the unzipped ``Market1501_img_pose_attr_seg`` folder (or the folder holding it).
        split: train, test or test_samples.
        out_dir: the output folder, or None for ``<raw_dir>/Market_<split>_data``.
        workers: worker processes, or None for every core.
        records_per_shard: records a ``.tfrecord`` file.
        flip: train: also the mirrored copies (``bounding_box_train_flip``).
        show_progress: show a progress bar.
        junk_detections: how many sorted entries of ``bounding_box_test`` to skip (the real
            data's 6617; 0 for a test folder without them, such as the synthetic one).
        with_roi10_mask: ignored (Market records have no roi10 masks); the converters of both
            datasets take the same arguments (:func:`data_prep.common.converter_of`).

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
    raw_dir = converter.resolve_raw_dir(datasets.MARKET, raw_dir, "Market raw folder", _FIX)
    if junk_detections < 0:
        raise ConfigError(f"--junk_detections must be 0 or more, got {junk_detections}")
    out_dir, parts = converter.split_parts(
        datasets.MARKET, raw_dir, split, out_dir, junk_detections, flip, market_identity, _FIX
    )

    attributes = load_attributes(raw_dir, split, junk_detections)
    converter.convert_pairs(
        datasets.MARKET,
        out_dir,
        split.split("_")[0],
        parts,
        market_identity,
        market_camera,
        _FIX,
        record_limit=TEST_RECORD_LIMIT if split == "test" else None,
        attributes_of=lambda name: attributes.get(market_identity(name), {}),
        workers=workers,
        records_per_shard=records_per_shard,
        show_progress=show_progress,
    )
    return out_dir


def main(argv: list[str] | None = None) -> None:
    """The command line: parses ``argv`` and converts one split, printing where the records went.

    Args:
        argv: the arguments after the program name, or None for ``sys.argv[1:]``.
    """
    parser = common.raw_converter_parser(
        __doc__.split("\n\n")[0], RAW_FOLDER, SPLITS, "<raw_dir>/Market_<split>_data"
    )
    parser.add_argument(
        "--junk_detections",
        type=int,
        default=JUNK_TEST_DETECTIONS,
        help="test: sorted files of bounding_box_test to skip (the real data's junk detections)",
    )
    common.add_writer_args(parser)
    args = parser.parse_args(argv)
    out_dir = convert(
        args.raw_dir,
        args.split,
        args.out,
        args.workers,
        args.records_per_shard,
        flip=not args.no_flip,
        show_progress=not args.quiet,
        junk_detections=args.junk_detections,
    )
    common.print_written(out_dir)


if __name__ == "__main__":
    common.run_cli(main)
