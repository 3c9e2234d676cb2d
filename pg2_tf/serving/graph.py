"""The TensorFlow ops a pg2_tf SavedModel runs: pose maps drawn in the graph, G1 + G2, uint8 outputs.

Rule: plain TensorFlow ops only (they end up in the SavedModel, which needs nothing but
TensorFlow to run); :mod:`pg2_tf.serving.export_lib` writes them into an export, and
:mod:`pg2_tf.serving.rebuild` traces them again on rebuilt models. Importing this module imports
TensorFlow: modules a command imports before its flags are checked import it lazily.
"""

import tensorflow as tf

from pg2_tf.core.pose import MISSING, NUM_KEYPOINTS

POSE_RADIUS = 4


def render_pose_maps(keypoints_rc, img_H: int, img_W: int, radius: int = POSE_RADIUS):
    """Draws pose maps in TensorFlow, pixel for pixel as :func:`pg2_tf.core.pose.render_pose_map`.

    Args:
        keypoints_rc: float32 [N, 18, 2], (row, col) in pixels; a joint whose row or column is -1
            is missing. Coordinates are truncated toward zero (Python ``int()``), as the original
            converters did; joints outside the image draw only the part of their disc inside it.
        img_H: height of the map in pixels.
        img_W: width of the map in pixels.
        radius: disc radius in pixels (4 for the model's input).

    Returns:
        float32 [N, img_H, img_W, 18] in {-1, +1}: +1 on the disc (d_row^2 + d_col^2 <= radius^2)
        of every present joint, in its own channel; -1 elsewhere.
    """
    keypoints_rc = tf.convert_to_tensor(keypoints_rc, tf.float32)
    missing = tf.reduce_any(tf.equal(keypoints_rc, MISSING), axis=-1)
    finite = tf.reduce_all(tf.math.is_finite(keypoints_rc), axis=-1)
    drawn = tf.logical_and(tf.logical_not(missing), finite)
    # Clipping before the integer cast keeps far-away joints far away without int32 overflow.
    margin = float(radius + 2)
    limit = float(max(img_H, img_W)) + margin
    centers = tf.cast(tf.clip_by_value(keypoints_rc, -margin, limit), tf.int32)  # toward zero
    centers = tf.where(tf.math.is_finite(keypoints_rc), centers, 0)
    d_row = tf.range(img_H)[None, None, :, None] - centers[:, :, 0, None, None]  # [N, 18, H, 1]
    d_col = tf.range(img_W)[None, None, None, :] - centers[:, :, 1, None, None]  # [N, 18, 1, W]
    on_disc = tf.logical_and(
        d_row * d_row + d_col * d_col <= radius * radius, drawn[..., None, None]
    )
    pose = tf.where(on_disc, 1.0, -1.0)  # [N, 18, H, W]
    return tf.transpose(pose, (0, 2, 3, 1))


def to_uint8_images(values):
    """Encodes [-1, 1]-scale images as the original test mode's ``G/%05d.png``.

    Args:
        values: float tensor of any shape, nominally in [-1, 1].

    Returns:
        uint8 tensor of the same shape: clip((v + 1) * 127.5, 0, 255), then truncation
        (``astype(uint8)``, not rounding).
    """
    scaled = tf.clip_by_value((tf.cast(values, tf.float32) + 1.0) * 127.5, 0.0, 255.0)
    return tf.cast(scaled, tf.uint8)  # float -> integer casts truncate


def generate_outputs(g1, g2, image, pose_target):
    """The graph of both signatures: G1, then G2's refinement, encoded as uint8 images.

    Args:
        g1: a built :class:`pg2_tf.networks.models.PoseGenerator`.
        g2: a built :class:`pg2_tf.networks.models.RefineGenerator`.
        image: uint8 [N, H, W, 3], the source person (0..255).
        pose_target: float32 [N, H, W, 18] in {-1, +1}, the target pose map.

    Returns:
        ``{"G1", "G2", "diff_map"}``: uint8 [N, H, W, 3] each (:func:`to_uint8_images`).
    """
    x = tf.cast(image, tf.float32) / 127.5 - 1.0
    coarse = g1([x, pose_target])
    diff_map = g2([coarse, x])
    return {
        "G1": to_uint8_images(coarse),
        "G2": to_uint8_images(coarse + diff_map),
        "diff_map": to_uint8_images(diff_map),
    }


def keypoints_function(g1, g2, img_H: int, img_W: int, batch=None):
    """A tf.function like the export's ``from_keypoints`` signature, traced on given models.

    Args:
        g1: a built :class:`pg2_tf.networks.models.PoseGenerator`.
        g2: a built :class:`pg2_tf.networks.models.RefineGenerator`.
        img_H: image height of the inputs and outputs.
        img_W: image width of the inputs and outputs.
        batch: a fixed batch size, or None for any.

    Returns:
        A tf.function of ``image`` uint8 [N, img_H, img_W, 3] and ``keypoints`` float32
        [N, 18, 2] ((row, col) pixels, -1 missing), returning what :func:`generate_outputs`
        returns (same inputs, outputs and encoding as the export's signature).
    """

    @tf.function(
        input_signature=[
            tf.TensorSpec([batch, img_H, img_W, 3], tf.uint8),
            tf.TensorSpec([batch, NUM_KEYPOINTS, 2], tf.float32),
        ]
    )
    def from_keypoints(image, keypoints):
        pose_target = render_pose_maps(keypoints, img_H, img_W)
        return generate_outputs(g1, g2, image, pose_target)

    return from_keypoints
