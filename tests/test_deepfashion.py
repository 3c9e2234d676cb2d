"""The DeepFashion configuration end to end: original-format checkpoint -> run_DF_test.sh, and
both training stages on DeepFashion records (synthetic data in the original raw layout)."""

import json
import os
import subprocess
import sys

import helpers
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from data_prep.synthetic import make_synthetic_records
from pg2_tf.core import configs, images
from pg2_tf.networks import models, tf1_checkpoint
from pg2_tf.records import annotations
from pg2_tf.training import loop

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = dict(conv_hidden_num=8, z_num=64, d_dim=8)


def write_tf1_checkpoint(prefix, g1, g2, d):
    """Saves the models under the ORIGINAL variable names with TF1's own Saver."""
    values = {name: v.numpy() for name, v in tf1_checkpoint.name_map(g1, g2, d).items()}
    graph = tf.Graph()
    with graph.as_default():
        variables = {
            name: tf.compat.v1.Variable(value, name=name.replace(".", "_"))
            for name, value in values.items()
        }
        saver = tf.compat.v1.train.Saver(var_list=variables)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            return saver.save(session, prefix)


@pytest.fixture(scope="module")
def df_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("df")
    make_synthetic_records(root, "deepfashion", "test", identities=1, images_per_identity=3)
    make_synthetic_records(root, "deepfashion", "train", identities=1, images_per_identity=2)
    return root


def test_run_df_test_script_with_an_original_format_checkpoint(tmp_path, df_root):
    g1, g2, d = models.build(11, 256, 256, **SMALL)
    for variable in g1.weights + g2.weights:  # make every weight matter, biases included
        variable.assign(tf.random.normal(variable.shape, stddev=0.05, seed=len(variable.path)))
    prefix = write_tf1_checkpoint(str(tmp_path / "tf1" / "model.ckpt-80000"), g1, g2, d)

    model_dir = tmp_path / "model"
    result = subprocess.run(
        ["bash", "run_DF_test.sh", str(model_dir), "--conv_hidden_num=8", "--batch_size=2"],
        cwd=PROJECT_ROOT,
        env=dict(
            os.environ,
            DATA_DIR=str(df_root),
            PYTHON=sys.executable,
            PRETRAINED_PATH=prefix,
            TF_CPP_MIN_LOG_LEVEL="3",
        ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert (model_dir / "test_result" / "score_rgb.txt").exists()
    patn = json.loads((model_dir / "test_result" / "score_patn.json").read_text())
    assert patn["dataset"] == "deepfashion" and patn["num_images"] == 6
    assert patn["mask_SSIM"] is None  # getMetrics_fashion computes no masked scores

    dataset = helpers.record_batches(df_root / "DF_test_data", "deepfashion", 64)
    batch = next(iter(dataset))
    coarse = g1([batch["x"], batch["pose_target"]])
    expected = images.to_uint8_image(coarse + g2([coarse, batch["x"]]))
    written = sorted(os.listdir(model_dir / "test_result" / "G"))
    assert len(written) == expected.shape[0] == 6
    worst = max(
        int(np.abs(np.asarray(Image.open(model_dir / "test_result" / "G" / name), int) - e).max())
        for name, e in zip(written, expected.astype(int), strict=True)
    )
    print(f"DeepFashion test script vs Keras models: max grey-level difference {worst}")
    assert worst <= 1
    (record_file,) = sorted((df_root / "DF_test_data").glob("DeepFashion_test_*.tfrecord"))
    poses = annotations.read_annotations(
        str(model_dir / "test_result" / annotations.TARGET_ANNOTATIONS)
    )
    for index, example in enumerate(helpers.read_examples(record_file)):
        np.testing.assert_array_equal(poses[f"{index:05d}.png"], helpers.target_keypoints(example))
        expected = helpers.original_pictures(example, 256, 256)
        for folder in helpers.FOLDERS:
            written = np.asarray(
                Image.open(model_dir / "test_result" / folder / f"{index:05d}.png")
            )
            np.testing.assert_array_equal(written, expected[folder], err_msg=f"{folder} {index}")
        for side, folder in ((0, "x"), (1, "x_target")):
            written = np.asarray(
                Image.open(model_dir / "test_result" / folder / f"{index:05d}.png")
            )
            np.testing.assert_array_equal(written, helpers.decoded_pixels(example, side))


def test_both_training_stages_run_on_deepfashion_records(tmp_path, df_root):
    config = helpers.tiny_config(
        tmp_path,
        str(df_root / "DF_train_data"),
        "deepfashion",
        split="train",
        batch_size=2,
        max_step=3,
        stage1_steps=1,
        log_step=1,
        save_model_secs=configs.TrainConfig.save_model_secs,  # the default, not tiny_config's 0
    )
    result = loop.train(config)
    assert result.step == 3
    # DeepFashion's GAN losses: no g2_g1_loss (Market only).
    assert set(result.last_losses) >= {"g_loss2", "d_loss", "L1Loss2"}
    assert "g2_g1_loss" not in result.last_losses
    assert all(np.isfinite(v) for v in result.last_losses.values())
