"""data_prep/convert_market.py writes the records the original TF1 converter wrote."""

import pickle
import random
import shutil

import numpy as np
import pytest
from helpers import MARKET_RAW

from data_prep import common, convert_market, shards
from data_prep.read_records import read_records, records_by_pair
from data_prep.synthetic import make_synthetic_raw
from pg2_tf.core.errors import ConfigError, DataError

EXPECTED = MARKET_RAW / "expected_records"
RAW_NAME = "Market1501_img_pose_attr_seg"


@pytest.fixture(scope="module")
def raw_copy(tmp_path_factory):
    """A writable copy of the fixture's raw layout (the converter writes beside it)."""
    root = tmp_path_factory.mktemp("market_raw")
    shutil.copytree(MARKET_RAW / RAW_NAME, root / RAW_NAME)
    return root / RAW_NAME


@pytest.fixture(scope="module")
def converted(raw_copy):
    return convert_market.convert(raw_copy, "test_samples", workers=1, show_progress=False)


@pytest.fixture(scope="module")
def expected_records():
    return records_by_pair(EXPECTED)


def _load(path):
    with open(path, "rb") as f:
        return pickle.load(f, encoding="latin1")


def test_output_goes_where_the_original_put_it(converted, raw_copy):
    assert converted == raw_copy / "Market_test_samples_data"
    assert (converted / "Market1501_test_00000-of-00001.tfrecord").is_file()


def test_every_feature_of_every_pair_equals_the_original_record(converted, expected_records):
    written = records_by_pair(converted)
    assert sorted(written) == sorted(expected_records)
    for pair, expected in expected_records.items():
        assert sorted(written[pair]) == sorted(expected), pair
        for key, values in expected.items():
            assert written[pair][key] == values, (pair, key)


def test_records_keep_the_original_order(converted):
    written = [(r["image_name_0"][0], r["image_name_1"][0]) for r in read_records(converted)]
    expected = [(r["image_name_0"][0], r["image_name_1"][0]) for r in read_records(EXPECTED)]
    assert written == expected


def test_image_raw_is_the_jpeg_file_unchanged(converted, raw_copy):
    for record in read_records(converted):
        for k in "01":
            name = record[f"image_name_{k}"][0].decode()
            file_bytes = (raw_copy / "bounding_box_test_samples" / name).read_bytes()
            assert record[f"image_raw_{k}"] == [file_bytes]


def test_pair_pickles_and_counts_equal_the_original(converted):
    for name in ("p_pairs_test.p", "n_pairs_test.p", "pn_pairs_num_test.p"):
        assert _load(converted / name) == _load(EXPECTED / name), name
    assert _load(converted / "pn_pairs_num_test.p") == 8
    assert (converted / "tf_record_pair_num.txt").read_text() == "cnt:8"
    assert (converted / "p_pairs_test.p").read_bytes()[:2] == b"\x80\x02"  # Python 2 readable


def test_python2_shuffle_follows_python27_random_shuffle():
    # random.seed(0) gives 0.844..., 0.757..., 0.420..., 0.258...: j = int(r * (i + 1)) for i = 4..1
    items = [0, 1, 2, 3, 4]
    common.python2_shuffle(items, random.Random(0))
    assert items == [2, 0, 1, 3, 4]


def test_pairs_are_same_identity_both_ways_and_negatives_every_2000th():
    names = [f"{index // 3:04d}_c1s1_{index:06d}_00.jpg" for index in range(4003)]
    positive, negative = common.same_identity_pairs(names, convert_market.market_identity)
    assert positive[:4] == [names[0:2], names[1::-1], [names[0], names[2]], [names[2], names[0]]]
    assert len(positive) == 1334 * 6  # 1334 identities of 3 images (6 ordered pairs), one of 1
    assert negative[0] == [names[0], names[2000]] and negative[1] == [names[0], names[4000]]
    assert all(int(pair[1][-13:-7]) % 2000 == 0 for pair in negative)


def test_resuming_rewrites_only_missing_shards(raw_copy, tmp_path):
    out = tmp_path / "out"
    convert_market.convert(raw_copy, "test_samples", out, 1, 3, show_progress=False)
    shard_paths = sorted(out.glob("Market1501_test_*-of-00003.tfrecord"))
    assert len(shard_paths) == 3
    contents = [path.read_bytes() for path in shard_paths]
    kept_mtime = shard_paths[0].stat().st_mtime_ns
    shard_paths[1].unlink()
    (out / f".{shard_paths[1].name}.partial").write_bytes(b"truncated by a killed run")

    convert_market.convert(raw_copy, "test_samples", out, 1, 3, show_progress=False)
    assert [path.read_bytes() for path in shard_paths] == contents
    assert shard_paths[0].stat().st_mtime_ns == kept_mtime
    assert not list(out.glob(".*.partial"))


def test_finished_shards_of_another_shard_size_are_refused(raw_copy, tmp_path):
    convert_market.convert(raw_copy, "test_samples", tmp_path, 1, 3, show_progress=False)
    with pytest.raises(ConfigError, match="another conversion"):
        convert_market.convert(raw_copy, "test_samples", tmp_path, 1, 4, show_progress=False)


def test_worker_processes_write_the_same_bytes_as_one_process(raw_copy, tmp_path, monkeypatch):
    serial = convert_market.convert(
        raw_copy,
        "test_samples",
        tmp_path / "a",
        workers=1,
        records_per_shard=5,
        show_progress=False,
    )
    monkeypatch.setattr(shards, "SERIAL_LIMIT", 0)
    monkeypatch.setattr(shards, "CHUNK_SIZE", 3)
    parallel = convert_market.convert(
        raw_copy,
        "test_samples",
        tmp_path / "b",
        workers=2,
        records_per_shard=5,
        show_progress=False,
    )
    for name in (
        "Market1501_test_00000-of-00002.tfrecord",
        "Market1501_test_00001-of-00002.tfrecord",
    ):
        assert (serial / name).read_bytes() == (parallel / name).read_bytes()


@pytest.fixture(scope="module")
def synthetic_raw(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic_market")
    return make_synthetic_raw(root, "market", 3, 3, splits=("train", "test"), junk_test_files=True)


def test_train_writes_the_mirrored_pairs_first_with_their_own_ids(synthetic_raw, tmp_path):
    out = convert_market.convert(synthetic_raw, "train", tmp_path, 1, show_progress=False)
    records = read_records(out)
    assert len(records) == 2 * 3 * 3 * 2  # (flip + original) x 3 identities x 3*2 ordered pairs
    flip_folder = synthetic_raw / "bounding_box_train_flip"
    for record in records[:18]:
        name = record["image_name_0"][0].decode()
        assert record["image_raw_0"] == [(flip_folder / name).read_bytes()]
    first_ids = [records[0]["id_0"][0], records[18]["id_0"][0]]
    assert first_ids == [0, 0]  # each part numbers identities from 0 in its own pair order
    for tag in ("train", "train_flip"):
        assert _load(out / f"pn_pairs_num_{tag}.p") == 18
    assert {r["cam_0"][0] for r in records} <= set(range(1, 7))


def test_test_split_skips_the_6617_junk_files_and_stops_at_the_limit(
    synthetic_raw, tmp_path, monkeypatch
):
    out = convert_market.convert(synthetic_raw, "test", tmp_path / "all", 1, show_progress=False)
    names = {r["image_name_0"][0].decode() for r in read_records(out)}
    assert len(names) == 9 and not any(name.startswith("0000_") for name in names)
    monkeypatch.setattr(convert_market, "TEST_RECORD_LIMIT", 5)
    out = convert_market.convert(synthetic_raw, "test", tmp_path / "cut", 1, show_progress=False)
    assert len(read_records(out)) == 5
    assert (out / "tf_record_pair_num.txt").read_text() == "cnt:5"
    assert _load(out / "pn_pairs_num_test.p") == 18  # the pair count, as the original


def test_missing_image_folder_is_a_data_error_naming_it(tmp_path):
    (tmp_path / "Market-1501_PoseFiltered").mkdir()
    with pytest.raises(DataError, match="bounding_box_test_samples is missing"):
        convert_market.convert(tmp_path, "test_samples", show_progress=False)


@pytest.fixture
def samples_copy(raw_copy, tmp_path):
    """A copy of the test_samples images and pose dictionaries at ``tmp_path/RAW_NAME``, for a
    test to spoil; returns that folder."""
    raw = tmp_path / RAW_NAME
    shutil.copytree(raw_copy / "bounding_box_test_samples", raw / "bounding_box_test_samples")
    shutil.copytree(raw_copy / "Market-1501_PoseFiltered", raw / "Market-1501_PoseFiltered")
    return raw


def test_a_pickle_that_is_not_a_pose_dictionary_is_a_data_error(samples_copy, tmp_path):
    peaks = samples_copy / "Market-1501_PoseFiltered/all_peaks_dic_Market-1501_test_samples.p"
    with open(peaks, "wb") as f:
        pickle.dump({"0002_c1s1_001000_00.jpg": "not peaks"}, f, protocol=2)
    with pytest.raises(DataError, match="not an OpenPose pose dictionary"):
        convert_market.convert(tmp_path, "test_samples", show_progress=False)


def test_an_unreadable_image_is_a_data_error_naming_it(samples_copy):
    raw = samples_copy
    (raw / "bounding_box_test_samples/0003_c1s1_001002_00.jpg").write_bytes(b"\xff\xd8 broken")
    with pytest.raises(DataError, match="0003_c1s1_001002_00.jpg is not a readable"):
        convert_market.convert(raw, "test_samples", show_progress=False)
    assert not list((raw / "Market_test_samples_data").glob("*.tfrecord"))


def test_command_line_reports_user_errors_on_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        common.run_cli(lambda: convert_market.main([str(tmp_path / "absent"), "test_samples"]))
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("error: Market raw folder")


def test_attribute_files_fill_the_attribute_features(synthetic_raw, tmp_path):
    """market_attribute.mat / word2vec .mat in the layout of the Market-1501_Attribute release."""
    scipy_io = pytest.importorskip("scipy.io")
    raw = tmp_path / RAW_NAME
    shutil.copytree(synthetic_raw, raw)
    attribute_dir = raw / "Market-1501_Attribute"
    (attribute_dir / "word2vec").mkdir(parents=True)
    onehot = {
        "age": np.array([[1, 2, 3]], np.uint8),
        "backpack": np.array([[2, 1, 2]], np.uint8),
        "image_index": np.array([["0001", "0002", "0003"]], dtype=object),
    }
    scipy_io.savemat(
        attribute_dir / "market_attribute.mat",
        {"market_attribute": {"train": onehot, "test": onehot}},
    )
    vectors = np.empty((1, 2), dtype=object)  # 2 attributes, a 3 x 25 matrix (identity rows) each
    vectors[0, 0] = np.arange(75, dtype=np.float64).reshape(3, 25)
    vectors[0, 1] = -np.arange(75, dtype=np.float64).reshape(3, 25)
    scipy_io.savemat(
        attribute_dir / "word2vec" / "train_att_wordvec_dim25.mat", {"train_att": vectors}
    )

    out = convert_market.convert(raw, "train", tmp_path / "out", 1, flip=False, show_progress=False)
    for record in read_records(out):
        identity = int(record["image_name_0"][0][:4]) - 1  # 0001.. -> row 0..
        assert record["attrs_0"] == [
            int(onehot["age"][0, identity]),
            int(onehot["backpack"][0, identity]),
        ]
        expected = list(range(25 * identity, 25 * identity + 25))
        assert record["attrs_w2v25_0"] == expected + [-v for v in expected]
        assert record["attrs_w2v50_0"] == []
