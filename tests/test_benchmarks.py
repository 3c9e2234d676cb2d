"""benchmarks.flops' FLOP counter: 2 FLOPs per multiply-add of each convolution op, forward and
both backward ops, checked against counts worked out by hand."""

import pytest
import tensorflow as tf

from benchmarks import flops, measure


def _conv_training_graph(stride):
    """The graph of a loss's gradients w.r.t. a conv's input and kernel: images (2, 8, 6, 3),
    kernel 3x3, 3 -> 4 channels, SAME padding."""
    images = tf.TensorSpec([2, 8, 6, 3])
    kernel = tf.TensorSpec([3, 3, 3, 4])

    def step(images, kernel):
        with tf.GradientTape() as tape:
            tape.watch([images, kernel])
            outputs = tf.nn.conv2d(images, kernel, stride, "SAME")
            loss = tf.reduce_sum(outputs * outputs)
        return tape.gradient(loss, [images, kernel])

    return tf.function(step).get_concrete_function(images, kernel).graph


def _flops_by_op_type(graph):
    return {
        op.type: flops._op_flops(op)
        for op in graph.get_operations()
        if op.type in ("Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter")
    }


# Multiply-adds of the forward conv = output elements x kernel taps x input channels:
# stride 1: output (2, 8, 6, 4) = 384 elements x 3*3*3 = 10,368 multiply-adds.
# stride 2: output (2, 4, 3, 4) = 96 elements x 27 = 2,592 multiply-adds (not 10,368: the
# input gradient of a strided conv is as large as the input, but each of its elements meets
# only the taps that a strided output reaches).
@pytest.mark.parametrize(("stride", "multiply_adds"), [(1, 10_368), (2, 2_592)])
def test_each_conv_op_counts_the_forward_convs_multiply_adds_twice(stride, multiply_adds):
    counted = _flops_by_op_type(_conv_training_graph(stride))
    assert counted == {
        "Conv2D": 2 * multiply_adds,
        "Conv2DBackpropInput": 2 * multiply_adds,
        "Conv2DBackpropFilter": 2 * multiply_adds,
    }


def test_graph_total_counts_what_the_outputs_need_only():
    graph = _conv_training_graph(2)
    assert flops.count_graph_flops(graph) == 3 * 2 * 2_592

    def kernel_gradient_only(images, kernel):
        with tf.GradientTape() as tape:
            tape.watch(kernel)
            outputs = tf.nn.conv2d(images, kernel, 2, "SAME")
            loss = tf.reduce_sum(outputs * outputs)
        return tape.gradient(loss, kernel)

    pruned = (
        tf.function(kernel_gradient_only)
        .get_concrete_function(tf.TensorSpec([2, 8, 6, 3]), tf.TensorSpec([3, 3, 3, 4]))
        .graph
    )
    assert flops.count_graph_flops(pruned) == 2 * 2 * 2_592  # no input gradient


def test_matmul_counts_two_flops_per_multiply_add():
    graph = (
        tf.function(lambda a, b: tf.matmul(a, b, transpose_a=True))
        .get_concrete_function(tf.TensorSpec([5, 3]), tf.TensorSpec([5, 7]))
        .graph
    )
    assert flops.count_graph_flops(graph) == 2 * 3 * 7 * 5


def test_limit_conv_counts_its_forward_and_training_flops():
    calls = measure.limit_calls("float32")
    # 3x3 conv, 128 -> 128 channels, 16 x 64 x 32 outputs: 16*64*32*128 outputs x 9*128 taps.
    multiply_adds = 16 * 64 * 32 * 128 * 9 * 128
    assert calls["forward"][1] == pytest.approx(2 * multiply_adds / 1e9)
    assert calls["training"][1] == pytest.approx(3 * 2 * multiply_adds / 1e9)


def test_profile_table_counts_each_op_of_the_profiled_calls():
    kernel = tf.random.uniform([3, 3, 3, 4])
    images = tf.random.uniform([2, 8, 6, 3])
    conv = tf.function(lambda: tf.nn.conv2d(images, kernel, 1, "SAME"))
    conv()
    rows = measure.profile_ops(lambda: conv().numpy(), calls=3)
    conv_rows = [row for row in rows if "Conv2D" in row["op"]]
    assert len(conv_rows) == 1 and conv_rows[0]["count_per_call"] == 1
    assert sum(row["share"] for row in rows) == pytest.approx(1.0)
