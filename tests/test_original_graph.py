"""The benchmarks' baseline is the original graph: rebuilt in tf.compat.v1, it loads the original
checkpoint and reproduces the original's outputs (so speed ratios compare like with like)."""

import json
import os
import subprocess
import sys

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_rebuilt_original_graph_reproduces_the_original_outputs(market_tf1_dir):
    # A fresh process: TF1 graph mode (eager execution disabled) cannot share one with the port.
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.original_graph", f"--verify={market_tf1_dir}"],
        cwd=PROJECT_ROOT,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    differences = json.loads(result.stdout.strip().splitlines()[-1])["max_abs_difference"]
    print("rebuilt original graph vs the original's outputs:", differences)
    assert differences["G1"] < 1e-4 and differences["G2"] < 1e-4  # [-1, 1] image scale
    assert differences["D_logits"] < 1e-4
    for loss in ("g_loss1", "g_loss2", "d_loss", "L1Loss2"):
        assert differences[loss] < 1e-5
