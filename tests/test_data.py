"""pg2_tf.records.reader reads the original tf-records exactly as the original did and reports bad input."""

import pickle
import re
import shutil

import numpy as np
import pytest
import tensorflow as tf

from benchmarks.input_pipeline import make_pair_example
from pg2_tf.core import datasets
from pg2_tf.core.errors import DataError
from pg2_tf.records import damage, decoder, reader

MARKET_H, MARKET_W = 128, 64
RECORD_NAME = "Market1501_test_00000-of-00001.tfrecord"
FIXTURE_PAIRS = 24


@pytest.fixture(scope="module")
def fixture_records(market_tf1_dir):
    """The 24 serialized records of the fixture file, in file order."""
    path = market_tf1_dir / "test_data" / RECORD_NAME
    return [bytes(record) for record in tf.data.TFRecordDataset(str(path)).as_numpy_iterator()]


def _write(path, records):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in records:
            writer.write(record)
    return str(path)


def _without_feature(record, key):
    example = tf.train.Example.FromString(record)
    del example.features.feature[key]
    return example.SerializeToString()


def _with_feature_bytes(record, key, value):
    example = tf.train.Example.FromString(record)
    example.features.feature[key].bytes_list.value[:] = [value]
    return example.SerializeToString()


def _record_starts(records):
    """Byte offset of every record in a TFRecord file holding ``records`` (12 + len + 4 each)."""
    starts, offset = [], 0
    for record in records:
        starts.append(offset)
        offset += 12 + len(record) + 4
    return starts


def _read_all(folder, *, is_train=False, batch_size=5, steps=None, split="test"):
    files = reader.record_files(str(folder), split, "market")
    dataset = reader.make_dataset(
        str(folder),
        split,
        kind="market",
        img_H=MARKET_H,
        img_W=MARKET_W,
        batch_size=batch_size,
        is_train=is_train,
        seed=3,
    )
    batches = []
    for batch in reader.iterate(dataset, files=files, img_H=MARKET_H, img_W=MARKET_W):
        batches.append({key: value.numpy() for key, value in batch.items()})
        if steps is not None and len(batches) == steps:
            break
    return batches


def _concat(batches):
    return {key: np.concatenate([batch[key] for batch in batches]) for key in decoder.ELEMENT_KEYS}


def _record_numbers(pairs, reference_outputs):
    """For each example of ``pairs``, the index of the fixture record with the same (x, x_target)."""
    reference = np.concatenate(
        [
            reference_outputs[key].reshape(FIXTURE_PAIRS, -1)
            for key in ("x_uint8", "x_target_uint8")
        ],
        axis=1,
    )
    examples = np.concatenate(
        [
            np.rint(pairs[key] * 127.5 + 127.5).reshape(len(pairs[key]), -1)
            for key in ("x", "x_target")
        ],
        axis=1,
    ).astype(np.uint8)
    return [int(np.flatnonzero((reference == example).all(axis=1))[0]) for example in examples]


@pytest.fixture
def market_copy(tmp_path, market_tf1_dir):
    """A writable copy of the fixture's test_data folder."""
    folder = tmp_path / "market"
    shutil.copytree(market_tf1_dir / "test_data", folder)
    return folder


def _one_line_data_error(excinfo):
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def _read_error(folder):
    """The message, one line, of the DataError reading every batch of ``folder`` raises."""
    with pytest.raises(DataError) as excinfo:
        _read_all(folder)
    return _one_line_data_error(excinfo)


# ---------------------------------------------------------------------------------------------
# Values


@pytest.fixture(scope="module")
def test_mode_batches(market_tf1_dir):
    return _read_all(market_tf1_dir / "test_data", batch_size=5)


def test_test_mode_batches_every_record_once_keeping_the_partial_last_batch(test_mode_batches):
    assert [len(batch["x"]) for batch in test_mode_batches] == [5, 5, 5, 5, 4]


def test_images_equal_the_originals_decoded_jpegs_scaled_as_the_original(
    test_mode_batches, reference_outputs
):
    pairs = _concat(test_mode_batches)
    for key, reference in (("x", "x_uint8"), ("x_target", "x_target_uint8")):
        pixels = reference_outputs[reference].astype(np.float32)
        np.testing.assert_array_equal(pairs[key], (pixels - np.float32(127.5)) / np.float32(127.5))
        np.testing.assert_array_equal(np.rint(pairs[key] * 127.5 + 127.5), pixels)


def test_poses_equal_the_originals_dense_poses_mapped_to_plus_minus_one(
    test_mode_batches, reference_outputs
):
    pairs = _concat(test_mode_batches)
    np.testing.assert_array_equal(pairs["pose"], reference_outputs["pose_01"] * 2.0 - 1.0)
    np.testing.assert_array_equal(
        pairs["pose_target"], reference_outputs["pose_target_01"] * 2.0 - 1
    )


def test_masks_equal_the_originals(test_mode_batches, reference_outputs):
    pairs = _concat(test_mode_batches)
    np.testing.assert_array_equal(pairs["mask"], reference_outputs["mask"])
    np.testing.assert_array_equal(pairs["mask_target"], reference_outputs["mask_target"])


def test_elements_are_float32_with_the_documented_shapes(test_mode_batches):
    first = test_mode_batches[0]
    channels = {"x": 3, "x_target": 3, "pose": 18, "pose_target": 18, "mask": 1, "mask_target": 1}
    for key in decoder.ELEMENT_KEYS:
        assert first[key].dtype == np.float32
        assert first[key].shape == (5, MARKET_H, MARKET_W, channels[key])


# ---------------------------------------------------------------------------------------------
# Training mode


@pytest.fixture(scope="module")
def training_batches(market_tf1_dir):
    return _read_all(market_tf1_dir / "test_data", is_train=True, batch_size=5, steps=12)


def test_training_mode_batches_are_always_full_and_statically_shaped(
    market_tf1_dir, training_batches
):
    assert all(len(batch["x"]) == 5 for batch in training_batches)
    dataset = reader.make_dataset(
        str(market_tf1_dir / "test_data"),
        "test",
        kind="market",
        img_H=MARKET_H,
        img_W=MARKET_W,
        batch_size=5,
        is_train=True,
    )
    assert dataset.element_spec["x"].shape.as_list() == [5, MARKET_H, MARKET_W, 3]


def test_training_mode_repeats_reading_every_record_once_per_pass(
    training_batches, reference_outputs
):
    numbers = _record_numbers(_concat(training_batches), reference_outputs)
    assert len(numbers) == 60
    assert sorted(numbers[:FIXTURE_PAIRS]) == list(range(FIXTURE_PAIRS))
    assert sorted(numbers[FIXTURE_PAIRS : 2 * FIXTURE_PAIRS]) == list(range(FIXTURE_PAIRS))
    assert numbers[:FIXTURE_PAIRS] != numbers[FIXTURE_PAIRS : 2 * FIXTURE_PAIRS]


def test_training_mode_shuffles_and_a_seed_makes_the_order_reproducible(
    market_tf1_dir, training_batches, reference_outputs
):
    numbers = _record_numbers(_concat(training_batches), reference_outputs)
    assert numbers[:FIXTURE_PAIRS] != list(range(FIXTURE_PAIRS))
    again = _read_all(market_tf1_dir / "test_data", is_train=True, batch_size=5, steps=12)
    assert _record_numbers(_concat(again), reference_outputs) == numbers


def test_training_mode_keeps_x_and_its_pose_from_the_same_record(
    training_batches, reference_outputs
):
    pairs = _concat(training_batches)
    numbers = _record_numbers(pairs, reference_outputs)
    np.testing.assert_array_equal(pairs["pose"], reference_outputs["pose_01"][numbers] * 2.0 - 1)
    np.testing.assert_array_equal(pairs["mask_target"], reference_outputs["mask_target"][numbers])


# ---------------------------------------------------------------------------------------------
# Names, files, pair counts


def test_record_prefix_of_each_kind():
    assert [reader.record_prefix(kind) for kind in datasets.KINDS] == ["Market1501", "DeepFashion"]


def test_record_files_are_the_sorted_matches_of_the_original_pattern(tmp_path):
    for name in [
        "Market1501_train_00001-of-00002.tfrecord",
        "Market1501_train_00000-of-00002.tfrecord",
        "Market1501_test_00000-of-00001.tfrecord",
        "DeepFashion_train_00000-of-00001.tfrecord",
    ]:
        (tmp_path / name).write_bytes(b"")
    assert reader.record_files(str(tmp_path), "train", "market") == [
        str(tmp_path / "Market1501_train_00000-of-00002.tfrecord"),
        str(tmp_path / "Market1501_train_00001-of-00002.tfrecord"),
    ]


def test_a_missing_data_folder_is_a_data_error_naming_it(tmp_path):
    with pytest.raises(DataError, match="does_not_exist does not exist") as excinfo:
        reader.record_files(str(tmp_path / "does_not_exist"), "train", "market")
    _one_line_data_error(excinfo)


def test_a_folder_without_matching_records_is_a_data_error_naming_the_pattern(tmp_path):
    (tmp_path / "DeepFashion_train_00000-of-00001.tfrecord").write_bytes(b"")
    with pytest.raises(DataError, match=r"no Market1501_train_\*\.tfrecord files in") as excinfo:
        reader.record_files(str(tmp_path), "train", "market")
    _one_line_data_error(excinfo)


def test_num_pairs_reads_the_original_python2_pickle(market_tf1_dir):
    assert reader.num_pairs(str(market_tf1_dir / "test_data"), "test") == FIXTURE_PAIRS


def test_num_pairs_reads_a_python3_pickle(tmp_path):
    (tmp_path / "pn_pairs_num_train.p").write_bytes(pickle.dumps(263632, protocol=4))
    assert reader.num_pairs(str(tmp_path), "train") == 263632


def test_num_pairs_of_a_pickle_holding_no_int_is_a_data_error(tmp_path):
    (tmp_path / "pn_pairs_num_train.p").write_bytes(pickle.dumps("24", protocol=2))
    with pytest.raises(
        DataError, match=r"pn_pairs_num_train\.p holds a str, not the int"
    ) as excinfo:
        reader.num_pairs(str(tmp_path), "train")
    _one_line_data_error(excinfo)


def test_num_pairs_refuses_to_unpickle_arbitrary_objects(tmp_path):
    (tmp_path / "pn_pairs_num_train.p").write_bytes(pickle.dumps(shutil.copy))
    with pytest.raises(DataError, match=r"is not a pickled pair count \(a pickled shutil\.copy\)"):
        reader.num_pairs(str(tmp_path), "train")


def test_a_missing_pair_count_pickle_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match=r"pn_pairs_num_test\.p is missing"):
        reader.num_pairs(str(tmp_path), "test")


# ---------------------------------------------------------------------------------------------
# Bad records


def test_records_of_another_image_size_fail_up_front_naming_the_flags_they_need(tmp_path):
    example = make_pair_example(np.random.default_rng(0), 256, 256)
    path = _write(tmp_path / RECORD_NAME, [example.SerializeToString()])
    with pytest.raises(DataError) as excinfo:
        reader.make_dataset(
            str(tmp_path), "test", kind="market", img_H=128, img_W=64, batch_size=4, is_train=True
        )
    message = _one_line_data_error(excinfo)
    assert message.startswith(f"{path}: record 0 holds 256x256 images")
    assert "--model=11 --img_H=256 --img_W=256" in message


def test_a_first_record_lacking_a_feature_fails_up_front_naming_key_and_file(
    tmp_path, fixture_records
):
    records = [_without_feature(fixture_records[0], "image_raw_1")] + fixture_records[1:]
    path = _write(tmp_path / RECORD_NAME, records)
    with pytest.raises(DataError, match=f"^{path}: record 0 has no feature 'image_raw_1'"):
        reader.make_dataset(
            str(tmp_path), "test", kind="market", img_H=128, img_W=64, batch_size=4, is_train=False
        )


def test_a_later_record_lacking_a_feature_fails_naming_key_file_and_record(
    tmp_path, fixture_records
):
    records = list(fixture_records)
    records[13] = _without_feature(records[13], "pose_mask_r4_1")
    path = _write(tmp_path / RECORD_NAME, records)
    assert _read_error(tmp_path).startswith(f"{path}: record 13 has no feature 'pose_mask_r4_1'")


def test_a_truncated_file_fails_naming_the_file_and_the_cut_record(market_copy, fixture_records):
    path = market_copy / RECORD_NAME
    cut_at = path.stat().st_size // 2
    path.write_bytes(path.read_bytes()[:cut_at])
    cut_record = max(i for i, start in enumerate(_record_starts(fixture_records)) if start < cut_at)
    assert _read_error(market_copy).startswith(f"{path}: record {cut_record} is truncated")


def test_flipped_bytes_fail_naming_the_file_and_the_record_holding_them(
    market_copy, fixture_records
):
    path = market_copy / RECORD_NAME
    damaged = 7
    content = bytearray(path.read_bytes())
    content[_record_starts(fixture_records)[damaged] + 12 + 1000] ^= 0xFF
    path.write_bytes(bytes(content))
    assert _read_error(market_copy).startswith(f"{path}: record {damaged} fails its checksum")


def test_a_corrupted_length_header_fails_naming_the_record(market_copy, fixture_records):
    path = market_copy / RECORD_NAME
    content = bytearray(path.read_bytes())
    content[_record_starts(fixture_records)[20]] ^= 0x01
    path.write_bytes(bytes(content))
    with pytest.raises(DataError, match=f"^{path}: record 20 has a corrupted length header"):
        _read_all(market_copy)


def test_in_training_mode_the_damaged_one_of_several_files_is_named(market_copy, fixture_records):
    good = market_copy / "Market1501_test_00000-of-00002.tfrecord"
    (market_copy / RECORD_NAME).rename(good)
    damaged = market_copy / "Market1501_test_00001-of-00002.tfrecord"
    content = bytearray(good.read_bytes())
    content[_record_starts(fixture_records)[5] + 12 + 500] ^= 0xFF
    damaged.write_bytes(bytes(content))
    with pytest.raises(DataError, match=f"^{damaged}: record 5 fails its checksum"):
        _read_all(market_copy, is_train=True, steps=50)


def test_an_undecodable_jpeg_in_a_sound_file_fails_naming_the_record(tmp_path, fixture_records):
    records = list(fixture_records)
    records[9] = _with_feature_bytes(records[9], "image_raw_1", b"\xff\xd8\xff\xe0 not a jpeg")
    path = _write(tmp_path / RECORD_NAME, records)
    assert _read_error(tmp_path).startswith(f"{path}: record 9 cannot be decoded")


def test_explain_read_error_locates_a_truncated_record_from_tensorflows_offset(
    market_copy, fixture_records
):
    path = market_copy / RECORD_NAME
    starts = _record_starts(fixture_records)
    path.write_bytes(path.read_bytes()[: starts[3] + 20])
    with pytest.raises(tf.errors.DataLossError) as excinfo:
        list(tf.data.TFRecordDataset(str(path)))
    error = damage.explain_read_error(excinfo.value, [str(path)])
    assert isinstance(error, DataError)
    assert str(error).startswith(f"{path}: record 3 is truncated")


def test_a_bad_record_is_reported_with_its_path_verbatim(tmp_path, fixture_records):
    folder = tmp_path / "it's ünïcode"
    folder.mkdir()
    records = list(fixture_records)
    records[2] = _without_feature(records[2], "image_raw_0")
    path = _write(folder / RECORD_NAME, records)
    with pytest.raises(
        DataError, match="^" + re.escape(f"{path}: record 2 has no feature 'image_raw_0'")
    ):
        _read_all(folder)


def test_the_converters_records_yield_as_many_pairs_as_its_pair_count(market_raw_dir):
    folder = market_raw_dir / "expected_records"
    batches = _read_all(folder, batch_size=3)
    assert sum(len(batch["x"]) for batch in batches) == reader.num_pairs(str(folder), "test") == 8
