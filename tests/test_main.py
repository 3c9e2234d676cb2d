"""The command line: the original's flags, test mode output, clear errors, and the run scripts."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")


def run_main(*flags, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "pg2_tf.main", *flags],
        cwd=PROJECT_ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


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


def test_test_mode_reproduces_the_original_test_images(tmp_path, market_test_data, market_tf1_dir):
    result = run_main(
        "--dataset=Market_test_data",
        f"--data_dir={market_test_data}",
        "--is_train=False",
        "--model=1",
        "--img_H=128",
        "--img_W=64",
        "--conv_hidden_num=8",
        "--batch_size=5",
        f"--model_dir={tmp_path}",
        f"--pretrained_path={market_tf1_dir / 'tf1_checkpoint' / 'model.ckpt-12800'}",
    )
    assert result.returncode == 0, result.stderr
    assert "wrote 24 test results" in result.stdout
    result_dir = tmp_path / "test_result"
    worst = _max_grey_difference(result_dir, market_tf1_dir / "expected_test_result" / "G")
    print(f"test mode parity: max grey-level difference {worst} over 24 images")
    assert worst <= 1
    for folder in ("x", "x_target", "pose", "pose_target", "mask", "mask_target", "G1", "DiffMap"):
        assert len(os.listdir(result_dir / folder)) == 24
    mask = np.asarray(Image.open(result_dir / "mask_target" / "00000.png"))
    assert set(np.unique(mask)) <= {0, 255}


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
    assert "mixed precision: mixed_bfloat16" in result.stderr
    worst = _max_grey_difference(
        tmp_path / "test_result", market_tf1_dir / "expected_test_result" / "G"
    )
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
def test_nonsense_flags_get_one_clear_line(flags, message, tmp_path):
    result = run_main(*flags, f"--model_dir={tmp_path}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_an_export_dir_holding_other_files_is_refused_before_training(tmp_path, market_test_data):
    export_dir = tmp_path / "export"
    export_dir.mkdir()
    (export_dir / "saved_model.pb").write_bytes(b"previous export")
    (export_dir / "notes.txt").write_text("keep me")
    result = run_main(
        "--dataset=Market_test_data",
        f"--data_dir={market_test_data}",
        "--split=test",
        f"--model_dir={tmp_path / 'model'}",
        f"--export_dir={export_dir}",
        "--conv_hidden_num=8",
        "--max_step=2",
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
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
    assert scores.startswith("Image number: 24\nssim: 0.11577")
    assert (tmp_path / "test_result" / "score_mask.txt").exists()
    assert "24 images, rgb (score.py)" in result.stdout
    assert "24 images, masked by mask/ (score_mask.py)" in result.stdout
    assert "inception-2015-12-05.tgz" in result.stderr  # says how to get IS/FID


@pytest.mark.parametrize(
    "script", ["run_market_train.sh", "run_DF_train.sh", "run_market_test.sh", "run_DF_test.sh"]
)
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
    assert ".zip" in result.stderr and "data_prep" in result.stderr


def test_run_scripts_require_a_model_dir():
    result = subprocess.run(
        ["bash", "run_market_train.sh"], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 2 and "usage: run_market_train.sh MODEL_DIR" in result.stderr
