"""The benchmarks' baseline is the original graph: rebuilt in tf.compat.v1, it loads the original
checkpoint and reproduces the original's outputs (so speed ratios compare like with like)."""

from benchmarks import original_graph


def test_rebuilt_original_graph_reproduces_the_original_outputs(market_tf1_dir):
    differences = original_graph.verify(str(market_tf1_dir))
    print("rebuilt original graph vs the original's outputs:", differences)
    assert differences["G1"] < 1e-4 and differences["G2"] < 1e-4  # [-1, 1] image scale
    assert differences["D_logits"] < 1e-4
    for loss in ("g_loss1", "g_loss2", "d_loss", "L1Loss2"):
        assert differences[loss] < 1e-5
