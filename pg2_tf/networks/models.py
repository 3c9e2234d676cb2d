"""The three PG2 networks as Keras 3 models: G1 (pose generator), G2 (refinement), D (DCGAN).

Everything is NHWC in the [-1, 1] image scale of the original; inputs and outputs are float32:

    g1, g2, d = build(model=1, img_H=128, img_W=64)
    coarse = g1([x, pose_target])           # G1: (N, H, W, 3)
    diff_map = g2([coarse, x])              # (N, H, W, 3)
    refined = coarse + diff_map             # G2
    logits = d(images)                      # (N,)

Layer names follow the original TF1 variable names (``Conv``, ``Conv_1``, ... in the order the
original graph created them; ``Discriminator.BN2``, ...), so that :mod:`pg2_tf.networks.tf1_checkpoint` can
map one onto the other by name. No layer here reads files or flags.

Mixed precision: under a Keras global policy such as ``mixed_bfloat16`` or ``mixed_float16`` (set
before :func:`build`), the convolutions compute in the 16-bit type while every variable stays
float32 (so checkpoints are the same as float32 runs'). The layers that produce the models'
outputs (G1's and G2's last conv, D's ``Discriminator.Output``) compute in float32, so images and
logits, and the losses computed from them, are float32 whatever the policy.

Rule: layer names are the original's; no layer reads files or flags.
"""

import math

import keras
import tensorflow as tf
from keras import layers, ops

from pg2_tf.core import datasets
from pg2_tf.core.configs import repeat_num_for

# The smallest feature map of G1's encoder and of D has this many rows, whatever the image size.
BOTTLENECK_ROWS = 8

# Dtype policy of the layers whose outputs leave a model (images, logits): float32 always.
OUTPUT_DTYPE = "float32"


def _tf_conv(
    filters: int, kernel_size: int, name: str, strides: int = 1, activation="relu", dtype=None
):
    """A tf-slim ``conv2d``: SAME padding, with bias, glorot-uniform (Xavier) kernel, zero bias.

    ``dtype``: a Keras dtype policy for this layer (None: the global policy).
    """
    return layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        activation=activation,
        name=name,
        dtype=dtype,
    )


def _track(model, layer):
    """Makes ``layer`` an attribute of ``model`` (named like the layer) and returns it.

    tf.train.Checkpoint follows attributes only, not layers kept in Python lists, so every layer
    held in a list below is also registered here; checkpoints then read ``g1/Conv_7/...``.
    """
    setattr(model, layer.name.replace(".", "_"), layer)
    return layer


class NearestUpsampling(layers.Layer):
    """Doubles the height and width by repeating pixels: the original's
    ``tf.image.resize_nearest_neighbor`` op (one kernel each way; Keras' UpSampling2D builds it
    from repeat/tile ops, slower on large maps). (N, H, W, C) -> (N, 2H, 2W, C), same dtype."""

    def call(self, inputs):
        return _upsample_nearest_2x(inputs)

    def compute_output_shape(self, input_shape):
        n, height, width, channels = input_shape
        return (
            n,
            None if height is None else 2 * height,
            None if width is None else 2 * width,
            channels,
        )


@tf.custom_gradient
def _upsample_nearest_2x(images):
    """resize_nearest_neighbor to twice the size, with its exact gradient, the sum of each 2x2
    block, written as 4 x its 2x2 average pool: XLA has no kernel for
    ResizeNearestNeighborGrad, and a reshape + reduce_sum took 18x as long as the pool (which
    gives the same values: the division by 4 is exact)."""
    height, width = images.shape[1], images.shape[2]
    upsampled = tf.raw_ops.ResizeNearestNeighbor(
        images=images, size=(2 * height, 2 * width), align_corners=False, half_pixel_centers=False
    )

    def gradient(upstream):
        return tf.nn.avg_pool2d(upstream, 2, 2, "VALID") * tf.cast(4, upstream.dtype)

    return upsampled, gradient


class _SlimConvs:
    """Makes a model's tf-slim convs, named as tf-slim did in creation order: Conv, Conv_1, ..."""

    def __init__(self, model):
        self.model = model
        self.count = 0

    def __call__(self, filters, kernel_size, strides=1, activation="relu", dtype=None):
        name = "Conv" if self.count == 0 else f"Conv_{self.count}"
        self.count += 1
        return _track(self.model, _tf_conv(filters, kernel_size, name, strides, activation, dtype))


def _encoder(conv, hidden: int, repeat_num: int, widen: bool):
    """The encoder layers G1 and G2 share, created in the original's order (names Conv_k follow).

    Block ``idx`` holds two 3x3 convs of ``hidden * (idx + 1)`` channels; after every block but the
    last, a stride-2 3x3 conv halves the map: widened to the next block's channels (``widen``,
    G1) or keeping the block's (G2).

    Returns ``(blocks, downsamplers)``: ``repeat_num`` pairs of convs, ``repeat_num - 1`` convs.
    """
    blocks, downsamplers = [], []
    for idx in range(repeat_num):
        channels = hidden * (idx + 1)
        blocks.append([conv(channels, 3), conv(channels, 3)])
        if idx < repeat_num - 1:
            downsamplers.append(conv(hidden * (idx + 2) if widen else channels, 3, strides=2))
    return blocks, downsamplers


def _encode(h, blocks, downsamplers, residual: bool):
    """Runs the encoder: each block (``h + block(h)`` when ``residual``, G1; else ``block(h)``,
    G2), then its downsampler. Returns ``(h, outputs)``: the bottleneck map and every block's
    output, first block first (the U-Net's skips)."""
    outputs = []
    for idx, (conv_a, conv_b) in enumerate(blocks):
        h = h + conv_b(conv_a(h)) if residual else conv_b(conv_a(h))
        outputs.append(h)
        if idx < len(downsamplers):
            h = downsamplers[idx](h)
    return h, outputs


def _with_arguments(config: dict, layer, names) -> dict:
    """A layer's ``get_config()``: its parent's ``config`` plus the constructor arguments ``names``,
    kept as attributes of the same names."""
    return {**config, **{name: getattr(layer, name) for name in names}}


class PoseGenerator(keras.Model):
    """G1: a residual U-Net with a fully connected bottleneck (original scope ``Pose_AE/G``).

    Input: ``[x, pose_target]``, x (N, H, W, 3) in [-1, 1], pose_target (N, H, W, 18) in {-1, +1}.
    Output: the coarse image G1, (N, H, W, 3) float32, [-1, 1] scale (not clipped; no output
    activation).
    """

    def __init__(
        self, img_H=128, img_W=64, conv_hidden_num=128, z_num=64, repeat_num=None, **kwargs
    ):
        super().__init__(**kwargs)
        self.img_H, self.img_W = img_H, img_W
        self.conv_hidden_num = hidden = conv_hidden_num
        self.z_num = z_num
        self.repeat_num = repeat_num = repeat_num or repeat_num_for(img_H)
        downsampling = 2 ** (repeat_num - 1)
        if img_H % downsampling or img_W % downsampling:
            raise ValueError(
                f"img_H={img_H}, img_W={img_W} must be multiples of {downsampling} for "
                f"{repeat_num} encoder blocks"
            )
        self.bottleneck_shape = (img_H // downsampling, img_W // downsampling)
        conv = _SlimConvs(self)

        self.input_conv = conv(hidden, 3)
        self.encoder_blocks, self.downsamplers = _encoder(conv, hidden, repeat_num, widen=True)

        self.flatten = layers.Flatten()
        self.to_z = layers.Dense(z_num, name="fully_connected")
        rows, cols = self.bottleneck_shape
        self.from_z = layers.Dense(rows * cols * hidden, name="fully_connected_1")
        self.unflatten = layers.Reshape((rows, cols, hidden))

        self.decoder_blocks, self.upsamplers = [], []
        channels = hidden
        for idx in range(repeat_num):
            channels += hidden * (repeat_num - idx)  # concatenated skip of encoder block -1-idx
            self.decoder_blocks.append([conv(channels, 3), conv(channels, 3)])
            if idx < repeat_num - 1:
                channels = hidden * (repeat_num - idx - 1)
                self.upsamplers.append(
                    [
                        NearestUpsampling(),
                        conv(channels, 1),
                    ]
                )
        self.output_conv = conv(3, 3, activation=None, dtype=OUTPUT_DTYPE)

    def call(self, inputs):
        x, pose_target = inputs
        h = self.input_conv(ops.concatenate([x, pose_target], axis=-1))
        h, skips = _encode(h, self.encoder_blocks, self.downsamplers, residual=True)

        z = self.to_z(self.flatten(h))
        h = self.unflatten(self.from_z(z))

        for idx, (conv_a, conv_b) in enumerate(self.decoder_blocks):
            h = ops.concatenate([h, skips[-1 - idx]], axis=-1)
            h = h + conv_b(conv_a(h))
            if idx < self.repeat_num - 1:
                upsample, conv_1x1 = self.upsamplers[idx]
                h = conv_1x1(upsample(h))
        return self.output_conv(h)

    def get_config(self):
        names = ("img_H", "img_W", "conv_hidden_num", "z_num", "repeat_num")
        return _with_arguments(super().get_config(), self, names)


class RefineGenerator(keras.Model):
    """G2: a fully convolutional U-Net predicting the difference map (original scope ``UAEnoFC/G``).

    Input: ``[g1_output, x]``, both (N, H, W, 3) in [-1, 1] scale. Output: diff_map (N, H, W, 3)
    float32; the refined image is ``g1_output + diff_map``.

    ``skip_first_block`` selects the original's two variants: Market's "After2Noise" links only
    encoder blocks after the first (False), DeepFashion's "AfterNoise" links every block (True).
    PG2 used no noise (noise_dim=0), so there is none here.
    """

    def __init__(self, conv_hidden_num=128, repeat_num=3, skip_first_block=False, **kwargs):
        super().__init__(**kwargs)
        self.conv_hidden_num = hidden = conv_hidden_num
        self.repeat_num = repeat_num
        self.skip_first_block = skip_first_block
        conv = _SlimConvs(self)

        self.input_conv = conv(hidden, 3)
        self.encoder_blocks, self.downsamplers = _encoder(conv, hidden, repeat_num, widen=False)

        self.decoder_blocks = [[conv(hidden, 3), conv(hidden, 3)] for _ in range(repeat_num)]
        self.upsample = NearestUpsampling()
        self.output_conv = conv(3, 3, activation=None, dtype=OUTPUT_DTYPE)

    def call(self, inputs):
        g1_output, x = inputs
        h = self.input_conv(ops.concatenate([g1_output, x], axis=-1))

        h, skips = _encode(h, self.encoder_blocks, self.downsamplers, residual=False)
        if not self.skip_first_block:
            skips = skips[1:]

        for idx, (conv_a, conv_b) in enumerate(self.decoder_blocks):
            if idx < len(skips):
                h = ops.concatenate([h, skips[-1 - idx]], axis=-1)
            h = conv_b(conv_a(h))
            if idx < self.repeat_num - 1:
                h = self.upsample(h)
        return self.output_conv(h)

    def get_config(self):
        names = ("conv_hidden_num", "repeat_num", "skip_first_block")
        return _with_arguments(super().get_config(), self, names)


class BatchStatsNormalization(layers.Layer):
    """Batch normalisation that ALWAYS normalises with the statistics of the batch it is given.

    The original D (tflib fused batch norm, is_training left unset) does this at training and test
    time alike. ``moving_mean``/``moving_variance`` exist only so that original checkpoints
    round-trip; they are never read or updated, as in the original.
    Input (N, H, W, C); output same shape and dtype.
    """

    def __init__(self, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def build(self, input_shape):
        channels = input_shape[-1]
        self.scale = self.add_weight(name="scale", shape=(channels,), initializer="ones")
        self.offset = self.add_weight(name="offset", shape=(channels,), initializer="zeros")
        self.moving_mean = self.add_weight(
            name="moving_mean", shape=(channels,), initializer="zeros", trainable=False
        )
        self.moving_variance = self.add_weight(
            name="moving_variance", shape=(channels,), initializer="ones", trainable=False
        )

    def call(self, inputs):
        # The original's own op (fused, training mode), statistics in float32 under mixed precision.
        normalized, _, _ = tf.compat.v1.nn.fused_batch_norm(
            inputs,
            ops.cast(self.scale, "float32"),
            ops.cast(self.offset, "float32"),
            epsilon=self.epsilon,
            data_format="NHWC",
            is_training=True,
        )
        return normalized

    def get_config(self):
        return _with_arguments(super().get_config(), self, ("epsilon",))


class ChannelMajorDense(layers.Dense):
    """A Dense layer on maps (N, rows, cols, C) whose kernel (rows * cols * C, units) is laid
    out for the maps flattened channel-major (NCHW), as tflib's DCGAN flattened them.

    Output (N, units). The kernel's rows are reordered to the maps' own (NHWC) order rather
    than transposing the maps: the same products, without a transpose of the activations
    (and two of their gradients) in every training step.
    """

    def build(self, input_shape):
        n, rows, cols, channels = input_shape
        super().build((n, rows * cols * channels))
        self.input_spec = None  # Dense's would demand a flat input

    def call(self, maps):
        rows, cols, channels = maps.shape[1], maps.shape[2], maps.shape[3]
        kernel = ops.reshape(self.kernel, (channels, rows, cols, self.units))
        kernel = ops.reshape(ops.transpose(kernel, (1, 2, 0, 3)), (-1, self.units))
        outputs = ops.matmul(ops.reshape(maps, (-1, rows * cols * channels)), kernel)
        return outputs + self.bias

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units)


class Discriminator(keras.Model):
    """D: the DCGAN discriminator of wgan_gp (5x5 stride-2 convs, LeakyReLU 0.2, batch-stat BN).

    Input: images (N, H, W, 3) in [-1, 1] scale, or a list of such batches taken as their
    concatenation; the trainer passes the whole triplet at once (as the list of
    ``losses.discriminator_batches``), so BN statistics are shared by real and fake samples as
    in the original. Output: logits (N,) float32.

    The number of strided convs makes the last map BOTTLENECK_ROWS high: 4 for 128x64 (Market),
    5 for 256x256 (DeepFashion, the extra conv keeps 8*dim channels).
    """

    def __init__(self, img_H=128, img_W=64, dim=64, **kwargs):
        super().__init__(**kwargs)
        self.img_H, self.img_W, self.dim = img_H, img_W, dim
        num_convs = int(math.log2(img_H // BOTTLENECK_ROWS))
        if img_H != BOTTLENECK_ROWS * 2**num_convs or img_W % 2**num_convs:
            raise ValueError("Discriminator needs img_H = 8 * 2^k and img_W divisible by 2^k")
        self.convs, self.norms = [], []
        for idx in range(num_convs):
            channels = dim * min(2**idx, 8)
            self.convs.append(
                _track(
                    self,
                    layers.Conv2D(
                        channels,
                        5,
                        strides=2,
                        padding="same",
                        name=f"Discriminator.{idx + 1}",
                        kernel_initializer=_uniform_with_stddev(0.02),
                    ),
                )
            )
            self.norms.append(
                None
                if idx == 0
                else _track(self, BatchStatsNormalization(name=f"Discriminator.BN{idx + 1}"))
            )
        self.activation = layers.LeakyReLU(negative_slope=0.2)
        self.output_layer = ChannelMajorDense(
            1,
            name="Discriminator.Output",
            kernel_initializer=_uniform_with_stddev(0.02),
            dtype=OUTPUT_DTYPE,
        )

    def call(self, images):
        """``images``: one batch (N, H, W, 3), or a list of batches that D sees as one batch
        (their concatenation, in order: BN statistics are over all of them). Each batch of a
        list goes through the first conv on its own, so a gradient with respect to one batch
        computes no input gradient for the others."""
        if isinstance(images, (list, tuple)):
            h = ops.concatenate([self.convs[0](batch) for batch in images], axis=0)
        else:
            h = self.convs[0](images)
        for idx, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            if idx:
                h = conv(h)
            if norm is not None:
                h = norm(h)
            h = self.activation(h)
        return ops.reshape(self.output_layer(h), (-1,))

    def get_config(self):
        return _with_arguments(super().get_config(), self, ("img_H", "img_W", "dim"))


def _uniform_with_stddev(stddev: float):
    """tflib's initialiser under ``set_weights_stdev``: uniform with this standard deviation."""
    limit = stddev * math.sqrt(3.0)
    return keras.initializers.RandomUniform(-limit, limit)


def build(model, img_H, img_W, conv_hidden_num=128, z_num=64, d_dim=64):
    """Builds the three networks of a configuration, weights created.

    The networks are built on float32 inputs of the given size, so they can be loaded from a
    checkpoint at once.

    Args:
        model: ``--model``, 1 (Market-1501) or 11 (DeepFashion).
        img_H: image height in pixels (a multiple of 2^(repeat_num - 1); 128 or 256).
        img_W: image width in pixels (64 or 256).
        conv_hidden_num: the generators' base channel count.
        z_num: the size of G1's fully connected bottleneck.
        d_dim: D's base channel count.

    Returns:
        ``(g1, g2, d)``: :class:`PoseGenerator`, :class:`RefineGenerator`, :class:`Discriminator`.

    Raises:
        ConfigError: an unknown model.
        ValueError: an impossible size.
    """
    dataset = datasets.by_model(model)
    repeat_num = repeat_num_for(img_H)
    g1 = PoseGenerator(img_H, img_W, conv_hidden_num, z_num, repeat_num, name="Pose_AE")
    g2 = RefineGenerator(
        conv_hidden_num,
        repeat_num - 2,
        skip_first_block=dataset.g2_skip_first_block,
        name="UAEnoFC",
    )
    d = Discriminator(img_H, img_W, d_dim, name="Discriminator")
    image_shape = (1, img_H, img_W, 3)
    coarse = g1([ops.zeros(image_shape), ops.zeros((1, img_H, img_W, 18))])
    g2([coarse, ops.zeros(image_shape)])
    d(ops.zeros((2,) + image_shape[1:]))
    return g1, g2, d
