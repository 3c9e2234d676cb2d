"""The command line: the original's flags, test mode output, clear errors, and the run scripts."""

import json
import os
import shutil
import subprocess
import sys

import helpers
import numpy as np
import pytest
from helpers import ENV, PROJECT_ROOT, loaded_tensorflow, run_counting_imports, run_main
from PIL import Image

from pg2_tf.core import hardware
from pg2_tf.records import annotations


@pytest.fixture(scope="module")
def market_test_data(tmp_path_factory, market_tf1_dir):
    data_dir = tmp_path_factory.mktemp("data")
    shutil.copytree(market_tf1_dir / "test_data", data_dir / "Market_test_data")
    return data_dir


def _max_grey_difference(result_dir, expected_dir):
    worst = 0
    expected = sorted(os.listdir(expected_dir))
    assert sorted(os.listdir(result_dir / "G")) == expected
    for name in expected:
        ours = np.asarray(Image.open(result_dir / "G" / name), np.int16)
        theirs = np.asarray(Image.open(expected_dir / name), np.int16)
        worst = max(worst, int(np.abs(ours - theirs).max()))
    return worst


@pytest.fixture(scope="module")
def market_test_result(tmp_path_factory, market_test_data, market_tf1_dir):
    """test_result/ of test mode on the 24 fixture records (batch 5: a partial last batch)."""
    model_dir = tmp_path_factory.mktemp("market_test")
    result = run_main(
        "--dataset=Market_test_data",
        f"--data_dir={market_test_data}",
        "--is_train=False",
        "--model=1",
        "--img_H=128",
        "--img_W=64",
        "--conv_hidden_num=8",
        "--batch_size=5",
        f"--model_dir={model_dir}",
        f"--pretrained_path={market_tf1_dir / 'tf1_checkpoint' / 'model.ckpt-12800'}",
    )
    assert result.returncode == 0, result.stderr
    assert "wrote 24 test results" in result.stdout
    return model_dir / "test_result"


def _picture(path):
    return np.asarray(Image.open(path))


def test_test_mode_reproduces_the_original_test_images(market_test_result, market_tf1_dir):
    worst = _max_grey_difference(market_test_result, market_tf1_dir / "expected_test_result" / "G")
    print(f"test mode parity: max grey-level difference {worst} over 24 images")
    assert worst <= 1
    for folder in ("G1", "DiffMap"):
        assert len(os.listdir(market_test_result / folder)) == 24


def test_test_mode_x_and_x_target_are_the_pixels_the_original_decoded(
    market_test_result, reference_outputs
):
    for folder, key in (("x", "x_uint8"), ("x_target", "x_target_uint8")):
        names = sorted(os.listdir(market_test_result / folder))
        assert len(names) == 24
        written = np.stack([_picture(market_test_result / folder / n) for n in names])
        np.testing.assert_array_equal(written, reference_outputs[key])


def test_test_mode_folders_equal_the_original_encoding_of_every_record(
    market_test_result, market_tf1_dir
):
    record_file = market_tf1_dir / "test_data" / "Market1501_test_00000-of-00001.tfrecord"
    examples = helpers.read_examples(record_file)
    for index, example in enumerate(examples):
        expected = helpers.original_pictures(example, 128, 64)
        for folder in helpers.FOLDERS:
            written = _picture(market_test_result / folder / f"{index:05d}.png")
            np.testing.assert_array_equal(written, expected[folder], err_msg=f"{folder} {index}")
        for side, folder in ((0, "x"), (1, "x_target")):
            np.testing.assert_array_equal(expected[folder], helpers.decoded_pixels(example, side))


def test_test_mode_leaves_the_target_keypoints_beside_the_images(
    market_test_result, market_tf1_dir
):
    record_file = market_tf1_dir / "test_data" / "Market1501_test_00000-of-00001.tfrecord"
    examples = helpers.read_examples(record_file)
    written = annotations.read_annotations(str(market_test_result / "pose_target-annotation.csv"))
    assert sorted(written) == [f"{i:05d}.png" for i in range(24)]
    for index, example in enumerate(examples):
        expected = helpers.target_keypoints(example)
        np.testing.assert_array_equal(written[f"{index:05d}.png"], expected)
    assert (written["00000.png"] == -1).any()  # a joint the pose detector missed stays -1


def test_test_mode_in_mixed_precision_stays_close_to_the_original_images(
    tmp_path, market_test_data, market_tf1_dir
):
    result = run_main(
        "--dataset=Market_test_data",
        f"--data_dir={market_test_data}",
        "--is_train=False",
        "--conv_hidden_num=8",
        "--batch_size=8",
        "--mixed_precision",
        f"--model_dir={tmp_path}",
        f"--pretrained_path={market_tf1_dir / 'tf1_checkpoint' / 'model.ckpt-12800'}",
    )
    assert result.returncode == 0, result.stderr
    worst = _max_grey_difference(
        tmp_path / "test_result", market_tf1_dir / "expected_test_result" / "G"
    )
    if not hardware.bfloat16_support().native:  # float32, said in one line
        assert "computing in float32" in result.stderr
        assert "mixed precision: float32" in result.stderr
        assert worst <= 1
        return
    assert "mixed precision: mixed_bfloat16" in result.stderr
    print(f"bfloat16 test mode: max grey-level difference {worst} over 24 images")
    assert 0 < worst <= 8  # bfloat16 keeps 8 mantissa bits: a few grey levels, never 0 everywhere


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--dataset=CelebA"], "--dataset='CelebA' names neither Market-1501 nor DeepFashion"),
        (["--img_H=100"], "--img_H=100 must be a power of two"),
        (["--img_W=60"], "--img_W=60 must be a positive multiple of 16"),
        (["--dataset=DF_train_data"], "use --model=11 --img_H=256 --img_W=256"),
        (["--model=3"], "--model=3: use 1 (Market-1501) or 11 (DeepFashion)"),
        (["--conv_hidden_num=0"], "--conv_hidden_num=0 must be a positive integer"),
        (["--is_train=False"], "--is_train=False needs --pretrained_path"),
        (["--D_arch=resnet101"], "PG2 used only 'DCGAN'"),
        (["--inter_op_threads=-1"], "--inter_op_threads=-1 must be >= 0"),
        (["--intra_op_threads=-2"], "--intra_op_threads=-2 must be >= 0"),
        (["--is_train=False", "--distribute=mirrored"], "--distribute=mirrored is for training"),
        (["--start_step=50", "--max_step=10"], "--start_step=50 is not below --max_step=10"),
        (["--start_step=-5"], "--start_step=-5 must be >= 0"),
    ],
)
def test_nonsense_flags_are_refused_naming_the_flag(flags, message, tmp_path):
    # The validation itself, in this process; the tests below run the command (its exit status
    # and one line, before TensorFlow loads).
    from absl.testing import flagsaver

    from pg2_tf import flags as pg2_flags
    from pg2_tf.core.errors import ConfigError

    with flagsaver.flagsaver():
        pg2_flags.FLAGS(["pg2_tf.main", *flags, f"--model_dir={tmp_path}"])
        with pytest.raises(ConfigError) as error:
            pg2_flags.validate(pg2_flags.FLAGS)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_a_nonsense_flag_on_the_command_line_is_one_error_line_and_exit_2(tmp_path):
    result = run_main("--img_H=100", f"--model_dir={tmp_path}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: --img_H=100 must be a power of two >= 32 (128 or 256)"
    )
    assert "Traceback" not in result.stderr


def test_a_nonsense_flag_is_refused_before_tensorflow_loads():
    result, imported = run_counting_imports("pg2_tf.main", "--z_num=0")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == "error: --z_num=0 must be a positive integer"
    assert "pg2_tf.flags" in imported
    assert not loaded_tensorflow(imported)


def test_an_export_dir_holding_other_files_is_refused_before_training(tmp_path, market_test_data):
    export_dir = tmp_path / "export"
    export_dir.mkdir()
    (export_dir / "saved_model.pb").write_bytes(b"previous export")
    (export_dir / "notes.txt").write_text("keep me")
    error = helpers.main_error(
        "--dataset=Market_test_data",
        f"--data_dir={market_test_data}",
        "--split=test",
        f"--model_dir={tmp_path / 'model'}",
        f"--export_dir={export_dir}",
        "--conv_hidden_num=8",
        "--max_step=2",
    )
    assert error == (
        f"error: --export_dir={export_dir} holds a previous export and also notes.txt, which an "
        "export does not write and replacing the folder would delete: move them out or choose "
        "another --export_dir"
    )
    assert not (tmp_path / "model").exists() or not list((tmp_path / "model").glob("model.ckpt*"))
    assert (export_dir / "notes.txt").read_text() == "keep me"


def test_missing_data_folder_names_it(tmp_path):
    result = run_main("--dataset=Market_train_data", f"--data_dir={tmp_path}")
    assert result.returncode == 2
    assert f"{tmp_path}/Market_train_data does not exist" in result.stderr


def test_original_style_boolean_flags_are_accepted(tmp_path, market_test_data, market_tf1_dir):
    result = run_main(
        "--dataset=Market_test_data",
        f"--data_dir={market_test_data}",
        "--is_train=false",
        "--use_gpu=True",
        "--conv_hidden_num=8",
        f"--model_dir={tmp_path}",
        f"--pretrained_path={market_tf1_dir / 'tf1_checkpoint'}",
        "--batch_size=24",
    )
    assert result.returncode == 0, result.stderr


def test_run_market_test_script_tests_and_scores(tmp_path, market_test_data, market_tf1_dir):
    env = dict(
        ENV,
        DATA_DIR=str(market_test_data),
        PYTHON=sys.executable,
        PRETRAINED_PATH=str(market_tf1_dir / "tf1_checkpoint" / "model.ckpt-12800"),
    )
    env.pop("PG2_INCEPTION_GRAPH", None)
    result = subprocess.run(
        ["bash", "run_market_test.sh", str(tmp_path), "--conv_hidden_num=8", "--batch_size=8"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    scores = (tmp_path / "test_result" / "score_rgb.txt").read_text()
    assert scores.startswith("Image number: 24\nssim: 0.11688")
    assert (tmp_path / "test_result" / "score_mask.txt").exists()
    assert "24 images, rgb (score.py)" in result.stdout
    assert "24 images, masked by mask/ (score_mask.py)" in result.stdout
    patn = json.loads((tmp_path / "test_result" / "score_patn.json").read_text())
    assert patn["protocol"] == "patn" and patn["num_images"] == 24
    assert patn["SSIM"] == pytest.approx(0.14649, abs=5e-6) and patn["mask_SSIM"] is not None
    assert "inception-2015-12-05.tgz" in result.stderr  # says how to get IS/FID


# The zip and the folder inside it, as the original scripts name them (their download blocks:
# the training zips hold ..._Mask_sparse_..., the test zips ..._Mask_test_sparse_...).
ORIGINAL_ARCHIVES = {
    "run_market_train.sh": (
        "Market_train_data.zip",
        "data4tf_GAN_attr_pose_onlyPosPair_128x64PoseRCV_Mask_sparse_Attr_partBbox7_maskR4R6",
        "Market_train_data",
    ),
    "run_DF_train.sh": (
        "DF_train_data.zip",
        "data4tf_GAN_attr_pose_onlyPosPair_256x256PoseRCV_Mask_sparse_partBbox37_maskR4R8_roi10Complete",
        "DF_train_data",
    ),
    "run_market_test.sh": (
        "Market_test_data.zip",
        "data4tf_GAN_attr_pose_onlyPosPair_128x64PoseRCV_Mask_test_sparse_Attr_partBbox7_maskR4R6",
        "Market_test_data",
    ),
    "run_DF_test.sh": (
        "DF_test_data.zip",
        "data4tf_GAN_attr_pose_onlyPosPair_256x256PoseRCV_Mask_test_sparse_partBbox37_maskR4R8_roi10Complete",
        "DF_test_data",
    ),
}


@pytest.mark.parametrize("script", sorted(ORIGINAL_ARCHIVES))
def test_run_scripts_say_what_to_download_when_data_is_missing(script, tmp_path):
    result = subprocess.run(
        ["bash", script, str(tmp_path / "model")],
        cwd=PROJECT_ROOT,
        env=dict(ENV, DATA_DIR=str(tmp_path), PYTHON=sys.executable),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "does not exist (nothing is downloaded by this script)" in result.stderr
    assert "data_prep" in result.stderr
    zip_name, folder, dataset = ORIGINAL_ARCHIVES[script]
    assert f"NIPS17_PG2/data/{zip_name}," in result.stderr
    assert f"rename {folder} to {dataset};" in result.stderr


def test_run_scripts_require_a_model_dir():
    result = subprocess.run(
        ["bash", "run_market_train.sh"], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 2 and "usage: run_market_train.sh MODEL_DIR" in result.stderr
