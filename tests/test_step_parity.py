"""Training with the original stage-2 schedule is the original's training, step for step: from
the original's checkpoint, fed the same batches as the original graph, the port ends each step
with the original's weights, Adam moments and losses (issue 21). How far the fused schedule
departs: ``python -m benchmarks.step_parity tests/fixtures/market_tf1`` (docs/performance.md)."""

from benchmarks import step_parity


def test_the_original_schedule_matches_the_original_graph_step_for_step(market_tf1_dir):
    # 3 stage-1 steps, then 3 stage-2 steps (two batches each: G2's run, then D's), batch 4.
    compared = step_parity.compare(str(market_tf1_dir), schedules=("original",))
    rows = compared["original"]["per_step"]
    print("original schedule vs original graph, largest:", compared["original"]["largest"])
    assert len(rows) == 6
    assert step_parity.over_tolerance(rows) == []
    # Every quantity was compared, in both stages.
    assert {"g2_adam_m", "d_adam_v", "d_bn_cancelled_biases", "loss_d_loss"} <= set(rows[-1])
    assert {"g1_weights", "g1_adam_v", "loss_g_loss1"} <= set(rows[0])
