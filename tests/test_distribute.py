"""Training under tf.distribute: two replicas update the weights as one device would.

Each mode of tests/replicas_worker.py runs in its own process, because the two logical CPU
devices must be set up before TensorFlow starts.
"""

import json
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(PROJECT_ROOT, "tests", "replicas_worker.py")
# Float32 sums in another order (per replica, then across replicas) move the Adam updates by
# about 1e-7; lr 1e-3 for 5 steps moves the weights by up to 5e-3.
ATOL = 2e-6


@pytest.fixture(scope="module")
def trained(tmp_path_factory, market_tf1_dir):
    """{mode: {"stage1": weights, "final": weights}} for the worker's three modes."""
    out_dir = tmp_path_factory.mktemp("replicas")
    records = str(market_tf1_dir / "test_data")
    env = dict(os.environ, PYTHONPATH=PROJECT_ROOT, CUDA_VISIBLE_DEVICES="")

    def start(mode):
        return subprocess.Popen(
            [sys.executable, WORKER, mode, records, str(out_dir)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def finish(mode, run):
        _, stderr = run.communicate(timeout=300)
        assert run.returncode == 0, stderr[-3000:]
        results[mode] = {}
        for name in ("stage1", "final"):
            with np.load(out_dir / f"{mode}_{name}.npz") as npz:
                results[mode][name] = {key: npz[key] for key in npz.files}

    results = {}
    finish("one_device", start("one_device"))  # writes init.npz, which the others start from
    # The other two only read init.npz: run them side by side, one per core.
    runs = {mode: start(mode) for mode in ("two_replicas", "ghost_batches")}
    for mode, run in runs.items():
        finish(mode, run)
    return results


def _max_difference(a, b, network=None):
    keys = [k for k in a if network is None or k.split("/")[0] == network]
    assert keys and set(a) == set(b)
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in keys)


def test_two_replicas_train_stage1_like_one_device_on_the_global_batch(trained):
    difference = _max_difference(trained["two_replicas"]["stage1"], trained["one_device"]["stage1"])
    print(f"stage 1, two replicas vs one device: max |weight difference| {difference:.2e}")
    assert difference < ATOL


def _relative_difference(a, b, start, network):
    """sum |a - b| / sum |a - start| over ``network``'s weights: how far apart two runs ended,
    relative to how far training moved them.

    Stage 2 is compared this way, not by the largest difference: the conv biases in front of D's
    batch norm have a true gradient of 0 (BN removes any constant), so theirs is round-off noise
    that Adam (epsilon 1e-8) turns into +-lr steps whose sign depends on the summation order;
    a little of that reaches G2 through D. Those elements differ by up to 4e-3 while the rest
    agree to float precision.
    """
    keys = [k for k in a if k.split("/")[0] == network]
    moved = sum(float(np.abs(a[k] - start[k]).sum()) for k in keys)
    return sum(float(np.abs(a[k] - b[k]).sum()) for k in keys) / moved


STAGE2_NETWORKS = ("UAEnoFC", "Discriminator")  # G2 and D: the networks stage 2 trains


def test_two_replicas_train_stage2_like_one_device_with_batch_statistics_per_half(trained):
    start = trained["one_device"]["stage1"]
    two, ghost = trained["two_replicas"]["final"], trained["ghost_batches"]["final"]
    for network in STAGE2_NETWORKS:
        difference = _relative_difference(two, ghost, start, network)
        print(f"stage 2 {network}, two replicas vs per-half BN on one device: {difference:.1e}")
        assert difference < 1e-2


def test_d_batch_statistics_are_per_replica_so_stage2_differs_from_the_global_batch(trained):
    start = trained["one_device"]["stage1"]
    two, one = trained["two_replicas"]["final"], trained["one_device"]["final"]
    # G1 is frozen in stage 2.
    assert _max_difference(two, one, "Pose_AE") < ATOL
    # D normalises each replica's own triplet, which changes D's outputs and so both D's and
    # G2's gradients: the documented difference from one device on the whole batch.
    for network in STAGE2_NETWORKS:
        difference = _relative_difference(two, one, start, network)
        print(f"stage 2 {network}, two replicas vs one device on the whole batch: {difference:.2f}")
        assert difference > 0.1


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("localhost", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def _run(command, timeout):
    """Runs ``command`` in the project root with TF_CPP_MIN_LOG_LEVEL=2; returns the
    CompletedProcess (stdout and stderr as text)."""
    return subprocess.run(
        command,
        cwd=PROJECT_ROOT,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _main_command(model_dir, data_dir, max_step, distribute):
    return [
        sys.executable,
        "-m",
        "pg2_tf.main",
        "--dataset=Market_test_data",
        f"--data_dir={data_dir}",
        "--split=test",
        "--conv_hidden_num=8",
        "--d_dim=8",
        "--batch_size=4",
        f"--max_step={max_step}",
        "--stage1_steps=2",
        "--log_step=1",
        f"--model_dir={model_dir}",
        f"--distribute={distribute}",
        "--progress_bar=False",
    ]


def test_two_workers_train_and_the_chief_writes_a_checkpoint_one_device_resumes(
    tmp_path, market_tf1_dir
):
    data_dir = tmp_path / "data"
    shutil.copytree(market_tf1_dir / "test_data", data_dir / "Market_test_data")
    model_dir = tmp_path / "model"
    cluster = {"worker": [f"localhost:{port}" for port in _free_ports(2)]}
    workers = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        env = dict(os.environ, TF_CONFIG=tf_config, TF_CPP_MIN_LOG_LEVEL="2")
        workers.append(
            subprocess.Popen(
                _main_command(model_dir, data_dir, 3, "multi_worker"),
                cwd=PROJECT_ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = [worker.communicate(timeout=300) for worker in workers]
    for worker, (stdout, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr[-3000:]
        assert "stopped (max_step) at step 3" in stdout
    assert "with 2 replicas" in outputs[0][1]  # one replica per worker
    # Only the chief (worker 0) wrote model_dir; its checkpoint has the single-device format.
    assert sorted(p.name for p in model_dir.glob("model.ckpt-*.index")) == ["model.ckpt-3.index"]
    resumed = _run(_main_command(model_dir, data_dir, 4, "none"), timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "model.ckpt-3 at step 3" in resumed.stderr
    assert "stopped (max_step) at step 4" in resumed.stdout


def test_a_global_batch_that_does_not_split_over_the_replicas_is_refused(tmp_path):
    script = f"""
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from pg2_tf.core.configs import TrainConfig
from pg2_tf.core.errors import ConfigError
from pg2_tf.training import steps
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
try:
    steps.Trainer(TrainConfig(conv_hidden_num=8, d_dim=8, batch_size=3,
                              model_dir={str(tmp_path)!r}), strategy)
except ConfigError as error:
    print(error)
"""
    result = _run([sys.executable, "-c", script], timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "--batch_size=3 (the global batch) must be a multiple of the 2 replicas" in result.stdout
