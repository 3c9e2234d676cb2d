"""Soak test of resuming: kill -9 a small training at random moments, rerun it, and check.

    python -m benchmarks.soak_resume [--kills 30] [--max_step 80] [--out /tmp/pg2_soak]

Trains a tiny PG2 (conv_hidden_num 8, d_dim 8, batch 2) on the fixture records with a
checkpoint after every step, twice: once straight through, once killed with SIGKILL ``--kills``
times at a random moment after it has resumed (each kill followed by a rerun of the same command).
Checks, for every rerun: it resumes from the newest complete checkpoint on disk at the moment of
the kill (the step it claims), that checkpoint reads back intact, and the input pipeline's
position of that step is restored; and at the end: the killed run's final weights (Adam moments
and step included) equal the straight run's. Prints the figures (kills, resumes verified, steps
lost per kill, max weight difference) and exits 1 if any check failed.
"""

import argparse
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

from pg2_tf.networks import checkpoints
from pg2_tf.training.run_folder import complete_checkpoints, step_of

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE_RECORDS = os.path.join(PROJECT_ROOT, "tests", "fixtures", "market_tf1", "test_data")
_RESUMED = re.compile(r"resumed from (\S+) at step (\d+)")
_STARTED = re.compile(r"resumed from \S+ at step \d+|new model; starting at step 0")


def _data_dir(out: str) -> str:
    data_dir = os.path.join(out, "data")
    if not os.path.isdir(os.path.join(data_dir, "Market_train_data")):
        shutil.copytree(FIXTURE_RECORDS, os.path.join(data_dir, "Market_train_data"))
    return data_dir


def tiny_training_command(data_dir, model_dir, *flags: str) -> list[str]:
    """The command training the tiny PG2 (width 8, batch 2) on ``data_dir``'s Market_train_data.

    Args:
        data_dir: the folder holding ``Market_train_data`` (records of the test split).
        model_dir: the run's ``--model_dir``.
        *flags: the other flags of ``pg2_tf.main`` (the schedule, saving, logging).

    Returns:
        ``[python, "-m", "pg2_tf.main", ...]``, to run in the project root.
    """
    return [
        sys.executable,
        "-m",
        "pg2_tf.main",
        "--dataset=Market_train_data",
        f"--data_dir={data_dir}",
        "--split=test",
        f"--model_dir={model_dir}",
        "--conv_hidden_num=8",
        "--d_dim=8",
        "--batch_size=2",
        *flags,
    ]


def command(data_dir: str, model_dir: str, max_step: int) -> list[str]:
    """The training command of the soak (saves after every step)."""
    return tiny_training_command(
        data_dir,
        model_dir,
        "--stage1_steps=10",
        f"--max_step={max_step}",
        "--log_step=5",
        "--save_step=1",
        "--max_to_keep=3",
        "--progress_bar=false",
    )


def _env():
    # Deterministic kernels, so that a resumed run can equal the straight one bit for bit.
    return dict(
        os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_DETERMINISTIC_OPS="1", PYTHONUNBUFFERED="1"
    )


def _newest_intact(model_dir: str):
    for prefix in complete_checkpoints(model_dir):
        if checkpoints.damage(prefix) is None:
            return prefix
    return None


def _start_run(data_dir, model_dir, max_step, log_path) -> subprocess.Popen:
    """Starts one training run of the soak, its output (stdout and stderr) to ``log_path``."""
    with open(log_path, "w") as log:
        return subprocess.Popen(
            command(data_dir, model_dir, max_step),
            cwd=PROJECT_ROOT,
            env=_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _wait_for(log_path, pattern, process, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(log_path) as handle:
            match = pattern.search(handle.read())
        if match or process.poll() is not None:
            return match
        time.sleep(0.2)
    return None


def soak(out: str, kills: int, max_step: int, seed: int = 0, max_delay: float = 6.0) -> dict:
    """Runs the soak in ``out``; returns the figures (see the module doc)."""
    import numpy as np
    import tensorflow as tf

    rng = random.Random(seed)
    os.makedirs(out, exist_ok=True)
    data_dir = _data_dir(out)
    straight_dir, killed_dir = os.path.join(out, "straight"), os.path.join(out, "killed")
    for folder in (straight_dir, killed_dir):
        shutil.rmtree(folder, ignore_errors=True)
    # The straight run goes on beside the killed ones (deterministic kernels: the same bits
    # whatever runs beside it), and is waited for before the comparison.
    straight_log = os.path.join(out, "straight.log")
    straight = _start_run(data_dir, straight_dir, max_step, straight_log)

    try:
        figures = {"kills": 0, "resumes_verified": 0, "steps_lost": [], "problems": []}
        expected_resume = None  # the newest intact checkpoint on disk at the last kill
        for attempt in range(kills + 1):
            log_path = os.path.join(out, f"killed_{attempt:02d}.log")
            process = _start_run(data_dir, killed_dir, max_step, log_path)
            started = _wait_for(log_path, _STARTED, process)
            text = open(log_path).read()
            resumed = _RESUMED.search(text)
            if expected_resume is not None:
                claimed = resumed.group(1) if resumed else "none"
                if os.path.basename(claimed) == os.path.basename(expected_resume):
                    figures["resumes_verified"] += 1
                    figures["steps_lost"].append(
                        max(step_of(expected_resume) if resumed else 0, 0)
                        - (int(resumed.group(2)) if resumed else 0)
                    )
                else:
                    figures["problems"].append(
                        f"run {attempt}: {claimed}, expected {expected_resume}"
                    )
            if attempt == kills:
                process.wait()
                break
            if started is None or process.poll() is not None:
                process.wait()
                figures["problems"].append(f"run {attempt} ended before it could be killed")
                break
            # Kill while training: after this run has written a checkpoint of its own.
            first = int(resumed.group(2)) if resumed else 0
            while process.poll() is None and not any(
                step_of(p) > first for p in complete_checkpoints(killed_dir)
            ):
                time.sleep(0.1)
            time.sleep(rng.uniform(0, max_delay))
            if process.poll() is not None:
                figures["problems"].append(f"run {attempt} finished before it could be killed")
                break
            process.send_signal(signal.SIGKILL)
            process.wait()
            figures["kills"] += 1
            expected_resume = _newest_intact(killed_dir)
            if expected_resume is None:
                expected_resume = "none"
            position = expected_resume.replace("model.ckpt-", "input_pipeline/input_pipeline.ckpt-")
            if expected_resume != "none" and not os.path.exists(position + ".index"):
                figures["problems"].append(
                    f"kill {attempt}: no pipeline position beside {position}"
                )
        final_log = open(log_path).read()
        if process.returncode != 0:
            figures["problems"].append(f"the last rerun exited {process.returncode}: {log_path}")
        pipeline_restores = final_log.count("input pipeline resumed at the batch after step")
        figures["final_run_restored_pipeline"] = bool(pipeline_restores)

    except BaseException:  # never leave the straight run behind
        straight.kill()
        raise
    if straight.wait():
        raise RuntimeError(f"the straight run failed: see {straight_log}")

    def weights(model_dir):
        reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(model_dir))
        names = [n for n in reader.get_variable_to_shape_map() if "save_counter" not in n]
        return {n: reader.get_tensor(n) for n in names if "/.ATTRIBUTES/" in n}

    a, b = weights(straight_dir), weights(killed_dir)
    if a.keys() != b.keys():
        figures["problems"].append("the two final checkpoints hold different variables")
        figures["max_weight_difference"] = float("nan")
    else:
        figures["max_weight_difference"] = max(
            float(np.max(np.abs(np.asarray(a[k], np.float64) - np.asarray(b[k], np.float64))))
            for k in a
            if np.asarray(a[k]).size
        )
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--max_step", type=int, default=80)
    parser.add_argument("--max_delay", type=float, default=6.0, help="seconds after resuming")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="/tmp/pg2_soak_resume")
    args = parser.parse_args()
    started = time.monotonic()
    figures = soak(args.out, args.kills, args.max_step, args.seed, args.max_delay)
    lost = figures["steps_lost"]
    print(f"kills: {figures['kills']}, resumes verified: {figures['resumes_verified']}")
    if lost:
        print(
            f"steps lost per kill (newest checkpoint at the kill - resumed step): max {max(lost)}"
        )
    print(f"max weight difference vs the straight run: {figures['max_weight_difference']:.3g}")
    for problem in figures["problems"]:
        print(f"PROBLEM: {problem}")
    print(f"({time.monotonic() - started:.0f} s)")
    sys.exit(1 if figures["problems"] or figures["max_weight_difference"] != 0 else 0)


if __name__ == "__main__":
    main()
