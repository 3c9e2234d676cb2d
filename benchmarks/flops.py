"""FLOP counts for :mod:`benchmarks.run`: 2 FLOPs per multiply-add of each convolution and matmul
op of a traced graph, forward and backward (everything else in these networks is elementwise or
tiny). tests/test_benchmarks.py checks the counts against hand-computed ones.
"""

# Ops whose FLOPs are counted (everything else in these networks is elementwise or tiny).
_CONV_OPS = {"Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter"}
_MATMUL_OPS = {"MatMul", "BatchMatMulV2"}


def _op_flops(op) -> float:
    """FLOPs (2 per multiply-add) of one conv/matmul op of a traced graph (0 for other ops)."""
    import numpy as np

    def shape(tensor):
        return [int(d) if d is not None else 1 for d in tensor.shape]

    # All three conv ops do the forward conv's multiply-adds: one per (output element, kernel
    # tap, input channel), i.e. size of the output map (N, Ho, Wo, Cout) x kh x kw x Cin. The
    # input gradient must be counted from the OUTPUT gradient's size, not its own: a stride-s
    # conv's input is s^2 times larger than its output, and only 1/s^2 of the taps meet it.
    if op.type == "Conv2D":  # inputs: images, kernel (kh, kw, cin, cout)
        return 2.0 * np.prod(shape(op.outputs[0])) * np.prod(shape(op.inputs[1])[:3])
    if op.type == "Conv2DBackpropInput":  # inputs: input shape, kernel, output gradient
        return 2.0 * np.prod(shape(op.inputs[2])) * np.prod(shape(op.inputs[1])[:3])
    if op.type == "Conv2DBackpropFilter":  # inputs: images, kernel shape, output gradient
        return 2.0 * np.prod(shape(op.inputs[2])) * np.prod(shape(op.outputs[0])[:3])
    if op.type in _MATMUL_OPS:
        a, b = shape(op.inputs[0]), shape(op.inputs[1])
        out = shape(op.outputs[0])
        inner = (
            a[-1] if not op.get_attr("transpose_a" if op.type == "MatMul" else "adj_x") else a[-2]
        )
        del b
        return 2.0 * np.prod(out) * inner
    return 0.0


def count_graph_flops(graph) -> float:
    """FLOPs of the convs/matmuls that the graph's outputs and state updates depend on.

    Walks back from the function's outputs and from every stateful op (variable updates), so
    gradient ops that nothing uses (e.g. the input gradient of the first conv) are not counted,
    as TensorFlow prunes them before running.
    """
    sinks = [t.op for t in graph.outputs] + [op for op in graph.get_operations() if op._is_stateful]
    return count_flops_of(sinks)


def count_flops_of(sinks) -> float:
    """FLOPs of the convs/matmuls that the ops ``sinks`` depend on (each op counted once)."""
    seen, stack, total = set(), list(sinks), 0.0
    while stack:
        op = stack.pop()
        if op.name in seen:
            continue
        seen.add(op.name)
        total += _op_flops(op)
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
    return total


def count_step_flops(trainer, batch_size) -> dict:
    """GFLOP of one replica's stage-1 step, stage-2 step and G1+G2 inference at ``batch_size``."""
    import tensorflow as tf

    from pg2_tf.records import reader

    config = trainer.config
    spec = reader.element_spec(config.img_H, config.img_W, batch_size)

    def traced(fn, *specs):
        return tf.function(fn).get_concrete_function(*specs).graph

    image = tf.TensorSpec([batch_size, config.img_H, config.img_W, 3])
    pose = tf.TensorSpec([batch_size, config.img_H, config.img_W, 18])
    if config.stage2_schedule == "original":
        stage2 = traced(trainer.stage2_original_step, spec, spec)
    else:
        stage2 = traced(trainer.stage2_step, spec)
    return {
        "stage1": count_graph_flops(traced(trainer.stage1_step, spec)) / 1e9,
        "stage2": count_graph_flops(stage2) / 1e9,
        "inference": count_graph_flops(traced(trainer.generate, image, pose)) / 1e9,
    }


def original_graph_flops(original) -> dict:
    """GFLOP per call of :class:`benchmarks.original_graph.OriginalGraph`'s steps, counted as the
    port's: a stage-2 step is its two session runs (each recomputes G1, G2 and D)."""

    def gflop(*fetches):
        return count_flops_of([getattr(fetch, "op", fetch) for fetch in fetches]) / 1e9

    return {
        "stage1": gflop(original.g_optim1),
        "stage2": gflop(original.g_optim2) + gflop(original.d_optim),
        "inference": gflop(*original.test_outputs),
    }


def forward_flops_per_sample(model_number, img_H, img_W, hidden) -> dict:
    """Forward GFLOP of G1, G2 and D for one sample (D: one image) of the given size."""
    import tensorflow as tf

    from pg2_tf.networks import models

    g1, g2, d = models.build(model_number, img_H, img_W, hidden, 64, 64)
    image = tf.TensorSpec([1, img_H, img_W, 3])
    pose = tf.TensorSpec([1, img_H, img_W, 18])

    def flops(fn, *specs):
        return count_graph_flops(tf.function(fn).get_concrete_function(*specs).graph) / 1e9

    return {
        "G1": flops(lambda x, p: g1([x, p]), image, pose),
        "G2": flops(lambda a, b: g2([a, b]), image, image),
        "D": flops(lambda x: d(x), image),
        "parameters_M": sum(int(v.shape.num_elements()) for m in (g1, g2, d) for v in m.weights)
        / 1e6,
    }
