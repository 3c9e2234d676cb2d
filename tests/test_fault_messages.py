"""The smaller faults of issue 11: each is one line naming the file, key or flag to fix."""

import pickle

import numpy as np
import pytest
import tensorflow as tf
from helpers import record_batches
from PIL import Image

from pg2_tf.core import datasets
from pg2_tf.core.errors import CheckpointError, DataError
from pg2_tf.networks import checkpoints, models
from pg2_tf.records import reader
from pg2_tf.scoring import result_folders

RECORD_NAME = "Market1501_test_00000-of-00001.tfrecord"


def test_a_later_record_missing_a_pose_key_names_the_key_not_a_length_mismatch(
    tmp_path, market_tf1_dir
):
    source = market_tf1_dir / "test_data" / RECORD_NAME
    records = [bytes(r) for r in tf.data.TFRecordDataset(str(source)).as_numpy_iterator()]
    example = tf.train.Example.FromString(records[9])
    del example.features.feature["indices_r4_1"]
    records[9] = example.SerializeToString()
    path = tmp_path / RECORD_NAME
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in records:
            writer.write(record)
    dataset = record_batches(tmp_path, "market", 4)
    with pytest.raises(DataError) as caught:
        list(reader.iterate(dataset, files=[str(path)], img_H=128, img_W=64))
    assert str(caught.value).startswith(f"{path}: record 9 has no feature 'indices_r4_1'")


def test_scoring_images_of_different_sizes_names_the_file(tmp_path):
    for folder, size in (("G", (16, 8)), ("x_target", (16, 16))):
        (tmp_path / folder).mkdir()
        Image.fromarray(np.zeros(size, np.uint8)).save(tmp_path / folder / "00007.png")
    with pytest.raises(DataError) as caught:
        result_folders.load(str(tmp_path))
    assert str(caught.value) == (
        f"{tmp_path}/{{G,x_target}}/00007.png differ in size (G/ 16x8, x_target/ 16x16); all "
        "must come from the same test run"
    )


def test_the_pair_count_reports_steps_per_epoch_and_refuses_fewer_pairs_than_a_batch(tmp_path):
    (tmp_path / "pn_pairs_num_train.p").write_bytes(pickle.dumps(24, protocol=2))
    assert (
        reader.epoch_note(str(tmp_path), "train", 4)
        == f"24 pairs in {tmp_path} (train): 6 steps per epoch"
    )
    with pytest.raises(DataError, match=r"holds 24 pairs, fewer than one batch of --batch_size=32"):
        reader.epoch_note(str(tmp_path), "train", 32)
    assert reader.epoch_note(str(tmp_path), "test", 4).startswith("pair count unknown (")


def test_a_deepfashion_checkpoint_given_market_flags_says_model_11(tmp_path):
    deepfashion = models.build(datasets.DEEPFASHION.model, 256, 256, 8, 64, 8)[:2]
    prefix = tf.train.Checkpoint(g1=deepfashion[0], g2=deepfashion[1]).write(str(tmp_path / "c-1"))
    market = models.build(datasets.MARKET.model, 128, 64, 8, 64, 8)[:2]
    with pytest.raises(
        CheckpointError, match=r"6 resolutions, i.e. --model=11 --img_H=256 --img_W=256"
    ):
        checkpoints.load_generators(prefix, *market)
