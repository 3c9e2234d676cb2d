"""Architecture facts of G1, G2 and D that the original fixes, beyond the parity fixture."""

import numpy as np
import pytest
import tensorflow as tf

from pg2_tf.networks import checkpoints, losses, models

SMALL = dict(conv_hidden_num=8, z_num=16, d_dim=8)


@pytest.mark.parametrize("model, img_H, img_W", [(1, 128, 64), (11, 256, 256)])
def test_generators_keep_image_size_and_discriminator_gives_one_logit(model, img_H, img_W):
    g1, g2, d = models.build(model, img_H, img_W, **SMALL)
    x = tf.random.uniform((2, img_H, img_W, 3), -1, 1)
    pose_target = tf.where(tf.random.uniform((2, img_H, img_W, 18)) > 0.9, 1.0, -1.0)
    coarse = g1([x, pose_target])
    diff_map = g2([coarse, x])
    assert coarse.shape == diff_map.shape == (2, img_H, img_W, 3)
    assert d(tf.concat([x, coarse], 0)).shape == (4,)


def test_deepfashion_discriminator_has_the_extra_strided_conv():
    *_, market_d = models.build(1, 128, 64, **SMALL)
    *_, df_d = models.build(11, 256, 256, **SMALL)
    assert [c.name for c in market_d.convs][-1] == "Discriminator.4"
    assert [c.name for c in df_d.convs][-1] == "Discriminator.5"
    assert df_d.convs[-1].filters == df_d.convs[-2].filters == 8 * SMALL["d_dim"]


def test_refine_generator_skip_variants_differ_only_in_first_block_link():
    after2noise = models.RefineGenerator(8, repeat_num=3, skip_first_block=False)
    afternoise = models.RefineGenerator(8, repeat_num=3, skip_first_block=True)
    inputs = [tf.zeros((1, 32, 16, 3)), tf.zeros((1, 32, 16, 3))]
    after2noise(inputs), afternoise(inputs)
    # Last decoder block: After2Noise sees 8 channels (no link), AfterNoise 8 + 8 (link).
    assert after2noise.get_layer("Conv_13").kernel.shape[2] == 8
    assert afternoise.get_layer("Conv_13").kernel.shape[2] == 16


def test_discriminator_normalises_with_batch_statistics_even_at_inference():
    *_, d = models.build(1, 128, 64, **SMALL)
    images = tf.random.uniform((4, 128, 64, 3), -1, 1)
    alone = d(images[:2])
    with_others = d(images)[:2]
    # The same two images score differently next to other images: BN uses the batch's moments.
    assert np.abs(alone.numpy() - with_others.numpy()).max() > 1e-4
    np.testing.assert_allclose(d(images, training=False), d(images, training=True), rtol=1e-6)


def test_discriminator_flattens_in_channel_major_order():
    *_, d = models.build(1, 128, 64, **SMALL)
    # Put the weight of one NCHW position (channel 1, row 0, col 0) to 1, everything else 0.
    flat_size = d.output_layer.kernel.shape[0]
    channels, rows, cols = 8 * SMALL["d_dim"], 8, 4
    assert flat_size == channels * rows * cols
    weights = np.zeros((flat_size, 1), np.float32)
    weights[1 * rows * cols + 0 * cols + 0] = 1.0
    d.output_layer.kernel.assign(weights)
    d.output_layer.bias.assign([0.0])
    images = tf.random.uniform((3, 128, 64, 3), -1, 1)
    features = images
    for conv, norm in zip(d.convs, d.norms, strict=True):
        features = conv(features)
        features = norm(features) if norm is not None else features
        features = d.activation(features)
    np.testing.assert_allclose(d(images), features[:, 0, 0, 1], rtol=1e-5, atol=1e-6)


def test_nearest_upsampling_repeats_pixels():
    g1, *_ = models.build(1, 128, 64, **SMALL)
    upsample = g1.upsamplers[0][0]
    grid = tf.reshape(tf.range(4, dtype=tf.float32), (1, 2, 2, 1))
    np.testing.assert_array_equal(
        upsample(grid)[0, :, :, 0], [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]
    )


def test_nearest_upsampling_gradient_sums_each_2x2_block_as_tensorflow_does():
    upsample = models.NearestUpsampling()
    images = tf.random.stateless_normal((2, 4, 3, 5), seed=(1, 2))
    upstream = tf.random.stateless_normal((2, 8, 6, 5), seed=(3, 4))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(images)
        ours = upsample(images)
        theirs = tf.compat.v1.image.resize_nearest_neighbor(images, (8, 6))
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_allclose(
        tape.gradient(ours, images, upstream),
        tape.gradient(theirs, images, upstream),  # TF's ResizeNearestNeighborGrad
        atol=1e-6,
    )


def test_our_checkpoint_restores_every_generator_and_discriminator_variable(tmp_path):
    g1, g2, d = models.build(1, 128, 64, **SMALL)
    prefix = tf.train.Checkpoint(g1=g1, g2=g2, d=d).save(str(tmp_path / "model.ckpt"))
    saved = {name for name, _ in tf.train.list_variables(prefix) if "VARIABLE_VALUE" in name}
    assert len(saved) == sum(len(m.weights) for m in (g1, g2, d)) + 1  # + save_counter
    fresh_g1, fresh_g2, _ = models.build(1, 128, 64, **SMALL)
    checkpoints.load_generators(prefix, fresh_g1, fresh_g2)
    for original, restored in ((g1, fresh_g1), (g2, fresh_g2)):
        for a, b in zip(original.weights, restored.weights, strict=True):
            np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_config_round_trip_rebuilds_the_same_architecture():
    g1, g2, d = models.build(11, 256, 256, **SMALL)
    for network in (g1, g2, d):
        clone = type(network).from_config(network.get_config())
        assert clone.get_config() == network.get_config()


@pytest.mark.parametrize("model", [1, 11])
def test_discriminator_takes_the_triplet_as_its_batches_with_the_same_logits(model):
    *_, d = models.build(model, 128, 64, **SMALL)
    x, x_target, g1, g2 = (tf.random.uniform((2, 128, 64, 3), -1, 1, seed=i) for i in range(4))
    batches = losses.discriminator_batches(model, x, x_target, g1, g2)
    assert batches[-1 if model == 1 else 1] is g2  # G2's images alone: only they need gradients
    # The original's triplets: Market [x_target, x, G1, G2], DeepFashion [x_target, G2, x].
    triplet = [x_target, x, g1, g2] if model == 1 else [x_target, g2, x]
    np.testing.assert_allclose(d(batches), d(tf.concat(triplet, axis=0)), atol=1e-6)
