"""After loading the ORIGINAL graph's checkpoint, our networks and losses give the original's numbers.

Reference: tests/fixtures/market_tf1 (the original TF1 graph at 128x64, conv_hidden_num 8, z_num 64,
D dim 8; its outputs on 24 records as one batch). Tolerances from shared/README.md: 1e-4 absolute
on G1/G2, 1e-4 relative on losses and D logits.
"""

import numpy as np
import pytest

from pg2_tf.networks import losses, models, tf1_checkpoint

HIDDEN, Z_NUM, D_DIM = 8, 64, 8


def _report(name, ours, theirs):
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    abs_err = np.abs(ours - theirs).max()
    print(f"parity {name}: max abs err {abs_err:.3g}, scale {np.abs(theirs).max():.3g}")
    return abs_err


@pytest.fixture(scope="module")
def market_outputs(market_tf1_dir, reference_outputs):
    g1, g2, d = models.build(1, 128, 64, HIDDEN, Z_NUM, D_DIM)
    tf1_checkpoint.load(market_tf1_dir / "tf1_checkpoint", g1, g2, d)
    ref = reference_outputs
    x = ref["x_uint8"].astype(np.float32) / 127.5 - 1
    x_target = ref["x_target_uint8"].astype(np.float32) / 127.5 - 1
    pose_target = ref["pose_target_01"].astype(np.float32) * 2 - 1
    mask_target = ref["mask_target"].astype(np.float32)
    g1_out = g1([x, pose_target])
    g2_out = g1_out + g2([g1_out, x])
    logits = d(losses.discriminator_batch(1, x, x_target, g1_out, g2_out))
    l1_loss2 = losses.masked_l1_loss(g2_out, x_target, mask_target)
    g_gan, d_loss, g2_g1 = losses.gan_losses(1, logits)
    return {
        "G1": g1_out.numpy(),
        "G2": g2_out.numpy(),
        "D_logits": logits.numpy(),
        "g_loss1": losses.masked_l1_loss(g1_out, x_target, mask_target),
        "PoseMaskLoss1": losses.pose_mask_loss(g1_out, x_target, mask_target),
        "PoseMaskLoss2": losses.pose_mask_loss(g2_out, x_target, mask_target),
        "L1Loss2": l1_loss2,
        "g_loss2": losses.generator2_loss(1, g_gan, l1_loss2),
        "d_loss": d_loss,
        "g2_g1_loss": g2_g1,
    }


@pytest.mark.parametrize("image", ["G1", "G2"])
def test_generator_outputs_match_original_graph(market_outputs, reference_outputs, image):
    assert _report(image, market_outputs[image], reference_outputs[image]) < 1e-4


def test_discriminator_logits_match_original_graph(market_outputs, reference_outputs):
    theirs = reference_outputs["D_logits"]
    _report("D_logits", market_outputs["D_logits"], theirs)
    # Relative to the logits' scale: single logits near 0 make a per-element ratio meaningless.
    np.testing.assert_allclose(
        market_outputs["D_logits"], theirs, rtol=1e-4, atol=1e-4 * np.abs(theirs).max()
    )


@pytest.mark.parametrize(
    "loss",
    [
        "g_loss1",
        "PoseMaskLoss1",
        "PoseMaskLoss2",
        "L1Loss2",
        "g_loss2",
        "d_loss",
        "g2_g1_loss",
    ],
)
def test_losses_match_original_graph(market_outputs, reference_outputs, loss):
    ours, theirs = float(market_outputs[loss]), float(reference_outputs[loss])
    print(f"parity {loss}: ours {ours:.8g} original {theirs:.8g} rel {abs(ours / theirs - 1):.3g}")
    assert ours == pytest.approx(theirs, rel=1e-4)


def test_saved_test_images_match_original_within_one_grey_level(market_outputs, market_tf1_dir):
    from PIL import Image

    ours = np.clip((market_outputs["G2"] + 1) * 127.5, 0, 255).astype(np.uint8)
    worst = 0
    for index in range(ours.shape[0]):
        expected = np.asarray(
            Image.open(market_tf1_dir / f"expected_test_result/G/{index:05d}.png")
        )
        worst = max(worst, int(np.abs(ours[index].astype(int) - expected.astype(int)).max()))
    print(f"parity G png: max grey-level difference {worst}")
    assert worst <= 1
