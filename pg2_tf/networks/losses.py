"""PG2's losses, exactly as the original graph computes them (pure functions of tensors).

Images are (N, H, W, 3) in [-1, 1] scale, masks (N, H, W, 1) in {0, 1}, logits (N,).
SCE below is the mean sigmoid cross-entropy with logits.

Rule: pure functions of tensors, no variables; the numbers are the original graph's.
"""

import tensorflow as tf

from pg2_tf.core import datasets


def sigmoid_cross_entropy(logits, label: float):
    """Mean sigmoid cross-entropy of logits against a constant label.

    Args:
        logits: float tensor, any shape.
        label: 0.0 or 1.0.

    Returns:
        Scalar tensor of ``logits``' dtype, >= 0.
    """
    labels = tf.fill(tf.shape(logits), tf.cast(label, logits.dtype))
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))


def pose_mask_loss(generated, x_target, mask_target):
    """The L1 error inside the target body mask: ``mean(|generated - x_target| * mask_target)``.

    Args:
        generated: float ``(N, H, W, 3)``, [-1, 1] scale.
        x_target: float ``(N, H, W, 3)`` in [-1, 1].
        mask_target: float ``(N, H, W, 1)`` in {0, 1}.

    Returns:
        Scalar float tensor in [0, 2].
    """
    return tf.reduce_mean(tf.abs(generated - x_target) * mask_target)


def masked_l1_loss(generated, x_target, mask_target):
    """``mean|generated - x_target| + pose_mask_loss``: g_loss1 for G1, L1Loss2 for G2.

    Args:
        generated, x_target, mask_target: as :func:`pose_mask_loss`.

    Returns:
        Scalar float tensor in [0, 4].
    """
    return tf.reduce_mean(tf.abs(generated - x_target)) + pose_mask_loss(
        generated, x_target, mask_target
    )


def split_logits(model: int, logits):
    """Splits D's logits on the batch the trainer built with :func:`discriminator_batch`.

    Args:
        model: ``--model``, 1 (Market-1501) or 11 (DeepFashion).
        logits: float ``(4N,)`` (Market) or ``(3N,)`` (DeepFashion).

    Returns:
        dict of ``(N,)`` logits: ``pos`` (x_target), ``neg_x`` (x), ``neg_g2`` and, for Market,
        ``neg_g1``.
    """
    if datasets.by_model(model).discriminator_sees_g1:
        pos, neg_x, neg_g1, neg_g2 = tf.split(logits, 4)
        return {"pos": pos, "neg_x": neg_x, "neg_g1": neg_g1, "neg_g2": neg_g2}
    pos, neg_g2, neg_x = tf.split(logits, 3)
    return {"pos": pos, "neg_g2": neg_g2, "neg_x": neg_x}


def discriminator_batch(model: int, x, x_target, g1, g2):
    """The images D sees in one call, along the batch axis.

    Args:
        model: ``--model``, 1 (Market-1501) or 11 (DeepFashion).
        x: float ``(N, H, W, 3)`` in [-1, 1], the source images.
        x_target: float ``(N, H, W, 3)`` in [-1, 1], the target images.
        g1: float ``(N, H, W, 3)``, G1's output.
        g2: float ``(N, H, W, 3)``, G2's output.

    Returns:
        Market ``concat[x_target, x, G1, G2]`` ``(4N, H, W, 3)``; DeepFashion
        ``concat[x_target, G2, x]`` ``(3N, H, W, 3)``.
    """
    return tf.concat(discriminator_batches(model, x, x_target, g1, g2), axis=0)


def discriminator_batches(model: int, x, x_target, g1, g2):
    """:func:`discriminator_batch` as a list of batches, G2 in a batch of its own.

    G2's images are the only ones whose gradient G2's update needs. ``Discriminator`` takes the
    list as that one batch.

    Args:
        model, x, x_target, g1, g2: as :func:`discriminator_batch`.

    Returns:
        Market ``[concat[x_target, x, G1], G2]``; DeepFashion ``[x_target, G2, x]``.
    """
    if datasets.by_model(model).discriminator_sees_g1:
        return [tf.concat([x_target, x, g1], axis=0), g2]
    return [x_target, g2, x]


def gan_losses(model: int, logits):
    """The adversarial terms on D's logits of :func:`discriminator_batch`.

    Market:      g = SCE(neg_g2, 1); d = .25 SCE(neg_x, 0) + .25 SCE(neg_g2, 0) + .5 SCE(pos, 1);
                 g2_g1 = SCE(neg_g2 - neg_g1, 1).
    DeepFashion: neg = concat[neg_g2, neg_x]; g = SCE(neg, 1); d = (SCE(neg, 0) + SCE(pos, 1)) / 2.

    Args:
        model: ``--model``, 1 (Market-1501) or 11 (DeepFashion).
        logits: float ``(4N,)`` (Market) or ``(3N,)`` (DeepFashion).

    Returns:
        ``(g_gan_loss, d_loss, g2_g1_loss)``, scalar tensors >= 0; g2_g1_loss (Market only, logged
        only) is None for DeepFashion.
    """
    parts = split_logits(model, logits)
    if datasets.by_model(model).discriminator_sees_g1:
        g_gan = sigmoid_cross_entropy(parts["neg_g2"], 1.0)
        d_loss = (
            0.25 * sigmoid_cross_entropy(parts["neg_x"], 0.0)
            + 0.25 * sigmoid_cross_entropy(parts["neg_g2"], 0.0)
            + 0.5 * sigmoid_cross_entropy(parts["pos"], 1.0)
        )
        g2_g1 = sigmoid_cross_entropy(parts["neg_g2"] - parts["neg_g1"], 1.0)
        return g_gan, d_loss, g2_g1
    negatives = tf.concat([parts["neg_g2"], parts["neg_x"]], axis=0)
    g_gan = sigmoid_cross_entropy(negatives, 1.0)
    d_loss = (sigmoid_cross_entropy(negatives, 0.0) + sigmoid_cross_entropy(parts["pos"], 1.0)) / 2
    return g_gan, d_loss, None


def generator2_loss(model: int, g_gan_loss, l1_loss2):
    """G2's loss, ``g_loss2 = g_gan_loss + w * L1Loss2``.

    Args:
        model: ``--model``, 1 (Market-1501, w = 10) or 11 (DeepFashion, w = 50).
        g_gan_loss: scalar tensor (:func:`gan_losses`).
        l1_loss2: scalar tensor (:func:`masked_l1_loss` of G2).

    Returns:
        Scalar tensor.
    """
    return g_gan_loss + datasets.by_model(model).l1_weight * l1_loss2
