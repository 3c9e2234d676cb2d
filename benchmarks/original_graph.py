"""The ORIGINAL PG2 graph, rebuilt in TF1 graph mode (tf.compat.v1): the baseline of
``benchmarks.run --same_run_original``.

    python -m benchmarks.original_graph --verify tests/fixtures/market_tf1

Issue 7 measured the original graph through tf.compat.v1 + tf-slim; this module rebuilds that
graph so the comparison can be made in the same run, on the same machine: the same variables
(named as the original's, so an original checkpoint loads into it with a plain
``tf.compat.v1.train.Saver``), the same ops (tf-slim's conv = Conv2D + BiasAdd + ReLU; tflib's
D in NCHW with fused batch norm; nearest-neighbour resize), the same losses, three
``tf.compat.v1.train.AdamOptimizer`` s, and the original's schedule: a stage-1 step is one
session run of ``g_optim1``; a stage-2 step is two session runs, ``g_optim2`` then ``d_optim``,
each computing G1, G2 and D anew (trainer.py); inference is one run of G1 and G2.

``--verify`` loads the original's checkpoint from a fixture folder (``tf1_checkpoint/``,
``reference_outputs.npz``, written by the original graph) and prints, as one JSON line, the
largest differences of G1, G2, D's logits and the losses from the original's outputs, which
shows that what benchmarks.run times is the original graph.
"""

import argparse
import json
import math
import os
import sys

# ---- the networks, as the original graph built them --------------------------------------------


class _SlimScope:
    """tf-slim's conv2d / fully_connected inside one generator scope, named in creation order
    (Conv, Conv_1, ...; fully_connected, fully_connected_1) as tf-slim named them."""

    def __init__(self, tf):
        self.tf = tf
        self.counts = {}

    def _name(self, kind):
        count = self.counts.get(kind, 0)
        self.counts[kind] = count + 1
        return kind if count == 0 else f"{kind}_{count}"

    def conv(self, inputs, filters, kernel_size, stride=1, relu=True):
        tf = self.tf
        with tf.compat.v1.variable_scope(self._name("Conv")):
            weights = tf.compat.v1.get_variable(
                "weights",
                [kernel_size, kernel_size, int(inputs.shape[-1]), filters],
                initializer=tf.compat.v1.glorot_uniform_initializer(),
            )
            biases = tf.compat.v1.get_variable(
                "biases", [filters], initializer=tf.compat.v1.zeros_initializer()
            )
            outputs = tf.nn.bias_add(
                tf.nn.conv2d(inputs, weights, [1, stride, stride, 1], "SAME"), biases
            )
            return tf.nn.relu(outputs) if relu else outputs

    def dense(self, inputs, units):
        tf = self.tf
        with tf.compat.v1.variable_scope(self._name("fully_connected")):
            weights = tf.compat.v1.get_variable(
                "weights",
                [int(inputs.shape[-1]), units],
                initializer=tf.compat.v1.glorot_uniform_initializer(),
            )
            biases = tf.compat.v1.get_variable(
                "biases", [units], initializer=tf.compat.v1.zeros_initializer()
            )
            return tf.nn.bias_add(tf.matmul(inputs, weights), biases)


def _upsample(tf, images):
    height, width = int(images.shape[1]), int(images.shape[2])
    return tf.compat.v1.image.resize_nearest_neighbor(images, (2 * height, 2 * width))


def _encoder(slim, h, hidden, repeat_num, residual):
    """The encoder of both generators: blocks of two 3x3 convs of ``hidden * (idx + 1)`` channels
    (``h + block(h)`` when ``residual``, G1), each but the last followed by a stride-2 conv (G1:
    widened to the next block's channels). Returns ``(h, every block's output)``."""
    skips = []
    for idx in range(repeat_num):
        channels = hidden * (idx + 1)
        block = slim.conv(slim.conv(h, channels, 3), channels, 3)
        h = h + block if residual else block
        skips.append(h)
        if idx < repeat_num - 1:
            h = slim.conv(h, hidden * (idx + 2) if residual else channels, 3, stride=2)
    return h, skips


def generator1(tf, x, pose_target, hidden, z_num, repeat_num):
    """G1 (scope Pose_AE/G): residual U-Net with the fully connected bottleneck."""
    with tf.compat.v1.variable_scope("Pose_AE/G", reuse=tf.compat.v1.AUTO_REUSE):
        slim = _SlimScope(tf)
        h = slim.conv(tf.concat([x, pose_target], -1), hidden, 3)
        h, skips = _encoder(slim, h, hidden, repeat_num, residual=True)
        rows, cols = int(h.shape[1]), int(h.shape[2])
        z = slim.dense(tf.reshape(h, [-1, rows * cols * int(h.shape[3])]), z_num)
        h = tf.reshape(slim.dense(z, rows * cols * hidden), [-1, rows, cols, hidden])
        for idx in range(repeat_num):
            h = tf.concat([h, skips[-1 - idx]], -1)
            channels = int(h.shape[-1])
            h = h + slim.conv(slim.conv(h, channels, 3), channels, 3)
            if idx < repeat_num - 1:
                h = slim.conv(_upsample(tf, h), hidden * (repeat_num - idx - 1), 1)
        return slim.conv(h, 3, 3, relu=False)


def generator2(tf, g1_output, x, hidden, repeat_num, skip_first_block):
    """G2 (scope UAEnoFC/G): fully convolutional U-Net giving the difference map."""
    with tf.compat.v1.variable_scope("UAEnoFC/G", reuse=tf.compat.v1.AUTO_REUSE):
        slim = _SlimScope(tf)
        h = slim.conv(tf.concat([g1_output, x], -1), hidden, 3)
        h, skips = _encoder(slim, h, hidden, repeat_num, residual=False)
        if not skip_first_block:
            skips = skips[1:]
        for idx in range(repeat_num):
            if idx < len(skips):
                h = tf.concat([h, skips[-1 - idx]], -1)
            h = slim.conv(slim.conv(h, hidden, 3), hidden, 3)
            if idx < repeat_num - 1:
                h = _upsample(tf, h)
        return slim.conv(h, 3, 3, relu=False)


def discriminator(tf, images, dim, data_format):
    """tflib's DCGAN discriminator, in NCHW as the original ran it (NHWC where the CPU build has
    no NCHW convolution); returns logits (N,)."""
    nchw = data_format == "NCHW"
    h = tf.transpose(images, [0, 3, 1, 2]) if nchw else images
    num_convs = int(math.log2(int(images.shape[1]) // 8))
    limit = 0.02 * math.sqrt(3.0)  # tflib's uniform initialiser of stddev 0.02
    uniform = tf.compat.v1.random_uniform_initializer(-limit, limit)
    with tf.compat.v1.variable_scope("", reuse=tf.compat.v1.AUTO_REUSE):
        for idx in range(num_convs):
            name = f"Discriminator.{idx + 1}"
            channels_in = int(h.shape[1] if nchw else h.shape[-1])
            channels = dim * min(2**idx, 8)
            with tf.compat.v1.variable_scope(name):
                filters = tf.compat.v1.get_variable(
                    f"{name}.Filters", [5, 5, channels_in, channels], initializer=uniform
                )
                biases = tf.compat.v1.get_variable(
                    f"{name}.Biases", [channels], initializer=tf.compat.v1.zeros_initializer()
                )
            strides = [1, 1, 2, 2] if nchw else [1, 2, 2, 1]
            h = tf.nn.conv2d(h, filters, strides, "SAME", data_format=data_format)
            h = tf.nn.bias_add(h, biases, data_format=data_format)
            if idx > 0:
                bn = f"Discriminator.BN{idx + 1}"
                scale = tf.compat.v1.get_variable(
                    f"{bn}.scale", [channels], initializer=tf.ones_initializer()
                )
                offset = tf.compat.v1.get_variable(
                    f"{bn}.offset", [channels], initializer=tf.zeros_initializer()
                )
                for stat, init in (("moving_mean", 0.0), ("moving_variance", 1.0)):
                    tf.compat.v1.get_variable(
                        f"{bn}.{stat}",
                        [channels],
                        initializer=tf.constant_initializer(init),
                        trainable=False,
                    )
                h, _, _ = tf.compat.v1.nn.fused_batch_norm(
                    h, scale, offset, epsilon=1e-5, data_format=data_format, is_training=True
                )
            h = tf.maximum(0.2 * h, h)
        if not nchw:
            h = tf.transpose(h, [0, 3, 1, 2])
        flat = tf.reshape(h, [-1, int(h.shape[1]) * int(h.shape[2]) * int(h.shape[3])])
        with tf.compat.v1.variable_scope("Discriminator.Output"):
            weights = tf.compat.v1.get_variable(
                "Discriminator.Output.W", [int(flat.shape[1]), 1], initializer=uniform
            )
            bias = tf.compat.v1.get_variable(
                "Discriminator.Output.b", [1], initializer=tf.compat.v1.zeros_initializer()
            )
        return tf.reshape(tf.matmul(flat, weights) + bias, [-1])


class OriginalGraph:
    """The original training/testing graph for one configuration, in its own tf.Graph.

    ``batch``: the training batch, a dict of float32 arrays (N, H, W, C) as pg2_tf.records.reader yields
    (x, x_target in [-1, 1]; pose_target in {-1, 1}; mask_target in {0, 1}); ``test_batch``: x
    and pose_target for inference. Both are the defaults of the graph's inputs (no input
    queue), as the port's benchmark batches are; each training run may instead be fed a batch
    of the same shape (``stage1_step(batch)``, ``stage2_step(g2_batch, d_batch)``), which is
    what the original's input queue did: one batch per session run. ``model``: 1 (Market) or
    11 (DeepFashion). ``graph_optimizations=False`` turns Grappler off (quicker to start, for
    short runs that compare numbers, not times).
    """

    def __init__(
        self,
        model,
        hidden,
        batch,
        test_batch,
        inter_op_threads=0,
        d_dim=64,
        seed=0,
        graph_optimizations=True,
    ):
        import tensorflow as tf

        from pg2_tf.networks import losses

        self.graph = tf.Graph()
        img_H = batch["x"].shape[1]
        repeat_num = int(math.log2(img_H)) - 2
        with self.graph.as_default():
            tf.compat.v1.set_random_seed(seed)
            self.inputs = {
                key: tf.compat.v1.placeholder_with_default(
                    tf.constant(batch[key]), batch[key].shape, name=key
                )
                for key in self.INPUT_KEYS
            }
            x, x_target = self.inputs["x"], self.inputs["x_target"]
            mask_target, pose_target = self.inputs["mask_target"], self.inputs["pose_target"]
            self.g1 = generator1(tf, x, pose_target, hidden, 64, repeat_num)
            self.diff_map = generator2(tf, self.g1, x, hidden, repeat_num - 2, model == 11)
            self.g2 = self.g1 + self.diff_map
            data_format = "NCHW" if _nchw_conv_works(tf) else "NHWC"
            self.d_logits = discriminator(
                tf,
                losses.discriminator_batch(model, x, x_target, self.g1, self.g2),
                d_dim,
                data_format,
            )
            self.data_format = data_format
            g_gan, self.d_loss, self.g2_g1_loss = losses.gan_losses(model, self.d_logits)
            self.g_loss1 = losses.masked_l1_loss(self.g1, x_target, mask_target)
            self.l1_loss2 = losses.masked_l1_loss(self.g2, x_target, mask_target)
            self.g_loss2 = losses.generator2_loss(model, g_gan, self.l1_loss2)
            variables = tf.compat.v1.global_variables()
            g1_vars = [v for v in variables if v.name.startswith("Pose_AE/")]
            g2_vars = [v for v in variables if v.name.startswith("UAEnoFC/")]
            d_vars = [v for v in tf.compat.v1.trainable_variables() if "Discriminator" in v.name]
            self.model_variables = (
                g1_vars + g2_vars + [v for v in variables if "Discriminator" in v.name]
            )

            def adam():
                return tf.compat.v1.train.AdamOptimizer(2e-5, beta1=0.5)

            self.g_optim1 = adam().minimize(self.g_loss1, var_list=g1_vars)
            self.g_optim2 = adam().minimize(self.g_loss2, var_list=g2_vars)
            self.d_optim = adam().minimize(self.d_loss, var_list=d_vars)
            test_x, test_pose = tf.constant(test_batch["x"]), tf.constant(test_batch["pose_target"])
            test_g1 = generator1(tf, test_x, test_pose, hidden, 64, repeat_num)
            self.test_outputs = [
                test_g1,
                test_g1 + generator2(tf, test_g1, test_x, hidden, repeat_num - 2, model == 11),
            ]
            config = tf.compat.v1.ConfigProto()
            config.inter_op_parallelism_threads = inter_op_threads or 0
            if not graph_optimizations:  # faster to start; what is timed keeps Grappler on
                config.graph_options.rewrite_options.disable_meta_optimizer = True
            self.session = tf.compat.v1.Session(graph=self.graph, config=config)
            self.session.run(tf.compat.v1.global_variables_initializer())

    INPUT_KEYS = ("x", "x_target", "pose_target", "mask_target")

    def _feed(self, batch):
        return None if batch is None else {self.inputs[k]: batch[k] for k in self.INPUT_KEYS}

    def stage1_step(self, batch=None) -> dict:
        """One session run of ``g_optim1`` (on ``batch`` if given); returns its g_loss1."""
        return self.session.run(
            {"train": self.g_optim1, "g_loss1": self.g_loss1}, self._feed(batch)
        )

    def stage2_step(self, g2_batch=None, d_batch=None) -> dict:
        """The original's stage-2 step: a session run of ``g_optim2`` (on ``g2_batch``), then
        one of ``d_optim`` (on ``d_batch``), each computing G1, G2 and D anew. Returns the
        losses of the G2 run (as computed before its update) and d_loss of the D run."""
        fetches = {"g_loss1": self.g_loss1, "g_loss2": self.g_loss2, "L1Loss2": self.l1_loss2}
        if self.g2_g1_loss is not None:
            fetches["g2_g1_loss"] = self.g2_g1_loss
        result = self.session.run({"train": self.g_optim2, **fetches}, self._feed(g2_batch))
        result.update(
            self.session.run({"train": self.d_optim, "d_loss": self.d_loss}, self._feed(d_batch))
        )
        return result

    def restore(self, checkpoint_prefix) -> None:
        """Every variable of the graph (weights, Adam slots and beta powers) from an original
        training checkpoint, as the original's ``--ckpt_path`` did."""
        import tensorflow as tf

        with self.graph.as_default():
            tf.compat.v1.train.Saver().restore(self.session, checkpoint_prefix)

    def variables_by_name(self) -> dict:
        """{TF1 name (without ":0"): value} of every variable of the graph."""
        with self.graph.as_default():
            import tensorflow as tf

            variables = tf.compat.v1.global_variables()
        values = self.session.run(variables)
        return {v.op.name: value for v, value in zip(variables, values, strict=True)}

    def inference(self):
        self.session.run(self.test_outputs)


def _nchw_conv_works(tf) -> bool:
    """Whether this TensorFlow build runs NCHW convolutions on the CPU (oneDNN builds do)."""
    with tf.Graph().as_default():
        images = tf.zeros([1, 3, 8, 8])
        conv = tf.nn.conv2d(
            images, tf.zeros([3, 3, 3, 4]), [1, 1, 1, 1], "SAME", data_format="NCHW"
        )
        try:
            with tf.compat.v1.Session() as session:
                session.run(conv)
            return True
        except tf.errors.OpError:
            return False


# ---- verification against the original's outputs ----------------------------------------------


def verify(fixture_dir) -> dict:
    """Loads the original checkpoint of ``fixture_dir`` into the rebuilt graph and returns the
    largest differences from the original's ``reference_outputs.npz`` (Market, hidden 8)."""
    import numpy as np
    import tensorflow as tf

    with np.load(os.path.join(fixture_dir, "reference_outputs.npz")) as npz:
        reference = {key: npz[key] for key in npz.files}
    for key in ("x_uint8", "x_target_uint8", "pose_target_01", "mask_target"):
        reference[key] = reference[key].astype(np.float32)  # uint8 arithmetic would wrap
    batch = {
        "x": reference["x_uint8"] / 127.5 - 1,
        "x_target": reference["x_target_uint8"] / 127.5 - 1,
        "pose_target": reference["pose_target_01"] * 2 - 1,
        "mask_target": reference["mask_target"],
    }
    checkpoint = tf.train.latest_checkpoint(os.path.join(fixture_dir, "tf1_checkpoint"))
    shapes = dict(tf.train.list_variables(checkpoint))
    hidden = shapes["Pose_AE/G/Conv/weights"][-1]
    d_dim = shapes["Discriminator.1/Discriminator.1.Filters"][-1]
    graph = OriginalGraph(1, hidden, batch, batch, d_dim=d_dim)
    with graph.graph.as_default():
        tf.compat.v1.train.Saver(graph.model_variables).restore(graph.session, checkpoint)
    fetched = graph.session.run(
        {
            "G1": graph.g1,
            "G2": graph.g2,
            "D_logits": graph.d_logits,
            "g_loss1": graph.g_loss1,
            "g_loss2": graph.g_loss2,
            "d_loss": graph.d_loss,
            "L1Loss2": graph.l1_loss2,
        }
    )
    return {key: float(np.max(np.abs(value - reference[key]))) for key, value in fetched.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--verify", required=True, help="fixture folder: tf1_checkpoint/, reference_outputs.npz"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    differences = verify(args.verify)
    print(json.dumps({"verify": args.verify, "max_abs_difference": differences}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
