"""Every console script answers --help with what it does and its own flags, nothing else."""

import importlib
import os
import subprocess
import sys

import pytest
from helpers import console_scripts

# Each command's flags a user looks for first (the rest are listed beside them).
EXPECTED_FLAGS = {
    "pg2-main": ("--model_dir", "--is_train", "--mixed_precision"),
    "pg2-export": ("--pretrained_path", "--export_dir"),
    "pg2-generate": ("--saved_model", "--keypoints", "--precision"),
    "pg2-animate": ("--saved_model", "--poses", "--precision"),
    "pg2-score": ("--result_dir", "--protocol"),
    "pg2-keypoints": ("--image", "--fetch_model"),
    "pg2-app": ("--saved_model", "--port", "--precision"),
}


def test_every_console_script_is_covered():
    assert sorted(console_scripts()) == sorted(EXPECTED_FLAGS)


@pytest.mark.parametrize("name", sorted(EXPECTED_FLAGS))
def test_help_starts_with_what_the_command_does_and_lists_its_flags(name):
    script = os.path.join(os.path.dirname(sys.executable), name)
    if not os.path.exists(script):
        pytest.skip(f"{name} is not installed (pip install -e . installs it)")
    module = console_scripts()[name].split(":")[0]
    first_line = importlib.import_module(module).__doc__.splitlines()[0]
    result = subprocess.run(
        [script, "--help"], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 1, result.stderr  # absl's status after --help
    assert result.stdout.startswith(first_line), result.stdout[:300]
    listed = result.stdout.split("\nflags:\n", 1)[1]
    for flag in EXPECTED_FLAGS[name]:
        assert f"  {flag}:" in listed or f"  --[no]{flag[2:]}:" in listed, (flag, listed)
    assert "--verbosity" not in listed  # absl's own flags stay in --helpfull
    assert "Traceback" not in result.stderr


# TensorFlow's C++ start-up lines: glog-style "I0000 00:00:..." lines and absl's notice.
TF_BANNER = ("cpu_feature_guard", "oneDNN custom operations", "absl::InitializeLog")
RECORDS = os.path.join(os.path.dirname(__file__), "fixtures", "market_tf1", "test_data")


def test_commands_start_without_tensorflows_banner():
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, "-m", "data_prep.read_records", RECORDS],
        capture_output=True, text=True, timeout=120, check=False, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "records" in result.stdout
    assert not [line for line in TF_BANNER if line in result.stderr], result.stderr


def test_a_users_own_tensorflow_log_level_is_kept():
    # pg2_tf only sets a default; checked without loading TensorFlow (seconds saved).
    script = "import os, data_prep; print(os.environ['TF_CPP_MIN_LOG_LEVEL'])"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="0")
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    assert result.stdout.strip() == "0"
