"""Pose geometry of PG2: keypoints, sparse/dense pose maps and body masks.

Rule: numpy only, no TensorFlow and no file formats (those are :mod:`pg2_tf.core.pose_files`).

Conventions used throughout:

* A pose is ``keypoints_rc``: float array ``[18, 2]`` of (row, col) pixel coordinates in the 18-joint
  COCO/OpenPose order of :data:`KEYPOINT_NAMES`. A joint that was not detected has both coordinates
  equal to :data:`MISSING` (-1); a joint is treated as missing as soon as either coordinate is -1.
  Coordinates are kept exactly as the pose detector gave them; every drawing function truncates
  them toward zero (Python ``int()``), as the original converters did.
* A pose map has 18 channels, one per joint: a solid disc of ``radius`` pixels around each present
  joint. The records store it sparsely (``indices_r4_k``/``values_r4_k``/``shape``) with the flat
  index ``row * W * 18 + col * 18 + joint``; the model sees it densely with values in {-1, +1}.
* A body mask is a uint8 ``[H, W]`` image in {0, 1}: discs along the limbs, closed with a 5x5
  square (dilation then erosion).

The functions reproduce the original TF1 converters (``datasets/convert_market.py`` and
``datasets/convert_DF.py`` of Pose-Guided-Person-Image-Generation) pixel for pixel, including the
order of the sparse indices.
"""

import numpy as np

NUM_KEYPOINTS = 18
MISSING = -1

KEYPOINT_NAMES = (
    "nose",
    "neck",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
    "right_eye",
    "left_eye",
    "right_ear",
    "left_ear",
)

# Joint pairs (0-based) whose segments make up the body mask, in the original's order.
MASK_LIMBS = (
    (1, 2),
    (1, 5),
    (2, 3),
    (3, 4),
    (5, 6),
    (6, 7),
    (1, 8),
    (8, 9),
    (9, 10),
    (1, 11),
    (11, 12),
    (12, 13),
    (1, 0),
    (0, 14),
    (14, 16),
    (0, 15),
    (15, 17),
    (1, 16),
    (1, 17),
    (8, 11),
    (11, 5),
    (8, 2),
    (16, 17),
)

# The skeleton OpenPose draws (its 17 limbs): the first 17 pairs of MASK_LIMBS.
SKELETON_LIMBS = MASK_LIMBS[:17]

# For a horizontally mirrored image: which joint index each joint becomes (right <-> left).
MIRROR_PERMUTATION = (0, 1, 5, 6, 7, 2, 3, 4, 11, 12, 13, 8, 9, 10, 15, 14, 17, 16)

# Size of the square closing the body mask.
_MASK_CLOSING_SIZE = 5


def missing_joints(keypoints_rc: np.ndarray) -> np.ndarray:
    """Which joints are missing.

    Args:
        keypoints_rc: float ``[18, 2]`` (row, col), -1 for a missing joint.

    Returns:
        bool ``[18]``, True where the row or the column is -1.
    """
    keypoints_rc = check_keypoints(keypoints_rc)
    return np.any(keypoints_rc == MISSING, axis=1)


def joints_outside(keypoints_rc: np.ndarray, height: int, width: int) -> np.ndarray:
    """Which present joints lie outside a ``height`` x ``width`` image.

    Args:
        keypoints_rc: float ``[18, 2]`` (row, col), -1 for missing joints (never "outside").
        height: image height in pixels.
        width: image width in pixels.

    Returns:
        bool ``[18]``: True for a present joint whose pixel (truncated coordinate, as the pose
        maps draw it) is not inside the image.
    """
    keypoints_rc = check_keypoints(keypoints_rc)
    pixel = np.trunc(keypoints_rc)
    inside = (pixel >= 0).all(axis=1) & (pixel[:, 0] < height) & (pixel[:, 1] < width)
    return ~missing_joints(keypoints_rc) & ~inside


def mirror_keypoints(keypoints_rc: np.ndarray, img_W: int) -> np.ndarray:
    """The pose of the horizontally mirrored image.

    Args:
        keypoints_rc: float ``[18, 2]`` (row, col), -1 for missing joints.
        img_W: image width in pixels.

    Returns:
        float64 ``[18, 2]``: col -> img_W - 1 - col, and left/right joints exchanged (a pose
        detector run on the mirrored image sees the person's right side on its left).
    """
    keypoints_rc = check_keypoints(keypoints_rc)
    mirrored = keypoints_rc.copy()
    present = ~missing_joints(keypoints_rc)
    mirrored[present, 1] = img_W - 1 - keypoints_rc[present, 1]
    return mirrored[list(MIRROR_PERMUTATION)]


def disc_offsets(radius: int) -> np.ndarray:
    """Pixel offsets of a solid disc, in the original's drawing order.

    Args:
        radius: disc radius in pixels (>= 0).

    Returns:
        int64 ``[M, 2]`` (d_row, d_col) with d_row^2 + d_col^2 <= radius^2, rows then columns
        ascending from -radius to radius.
    """
    steps = np.arange(-radius, radius + 1)
    d_row, d_col = np.meshgrid(steps, steps, indexing="ij")
    inside = d_row**2 + d_col**2 <= radius**2
    return np.stack([d_row[inside], d_col[inside]], axis=1).astype(np.int64)


def sparse_pose_indices(
    keypoints_rc: np.ndarray, img_H: int, img_W: int, radius: int = 4
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sparse pose map of the records (``indices_r4_k``, ``values_r4_k``, ``shape``).

    Args:
        keypoints_rc: float ``[18, 2]`` (row, col), -1 for missing joints; truncated toward zero.
        img_H: image height in pixels.
        img_W: image width in pixels.
        radius: disc radius (4 for the model's pose input; DeepFashion records also hold 8).

    Returns:
        ``(indices, values, dense_shape)``:
        indices int64 ``[N]``, flat ``row * img_W * 18 + col * 18 + joint`` of every disc pixel
        inside the image, joint by joint, each disc row-major (the original's order, no
        duplicates); values float32 ``[N]``, all 1.0; dense_shape int64 ``[1]`` = [H * W * 18].
    """
    keypoints_rc = check_keypoints(keypoints_rc)
    offsets = disc_offsets(radius)
    missing = missing_joints(keypoints_rc)
    chunks = []
    for joint in range(NUM_KEYPOINTS):
        if missing[joint]:
            continue
        center = np.trunc(keypoints_rc[joint]).astype(np.int64)
        rows = center[0] + offsets[:, 0]
        cols = center[1] + offsets[:, 1]
        inside = (rows >= 0) & (rows < img_H) & (cols >= 0) & (cols < img_W)
        chunks.append(rows[inside] * img_W * NUM_KEYPOINTS + cols[inside] * NUM_KEYPOINTS + joint)
    indices = np.concatenate(chunks) if chunks else np.zeros(0, np.int64)
    values = np.ones(indices.shape, np.float32)
    dense_shape = np.array([img_H * img_W * NUM_KEYPOINTS], np.int64)
    return indices.astype(np.int64), values, dense_shape


def dense_pose_from_sparse(indices: np.ndarray, img_H: int, img_W: int) -> np.ndarray:
    """Densifies record pose indices the way the model reads them.

    Args:
        indices: int ``[N]`` flat indices (see :func:`sparse_pose_indices`).
        img_H: image height in pixels.
        img_W: image width in pixels.

    Returns:
        float32 ``[img_H, img_W, 18]``: +1 at the indices, -1 elsewhere.
    """
    dense = np.full(img_H * img_W * NUM_KEYPOINTS, -1.0, np.float32)
    dense[np.asarray(indices, np.int64)] = 1.0
    return dense.reshape(img_H, img_W, NUM_KEYPOINTS)


def render_pose_map(
    keypoints_rc: np.ndarray, img_H: int, img_W: int, radius: int = 4
) -> np.ndarray:
    """The dense pose map the model takes as input.

    Args:
        keypoints_rc: float ``[18, 2]`` (row, col), -1 for missing joints.
        img_H: image height in pixels.
        img_W: image width in pixels.
        radius: disc radius in pixels.

    Returns:
        float32 ``[img_H, img_W, 18]`` in {-1, +1}: +1 on the disc of each present joint (in its
        own channel), -1 elsewhere. Equals densify(sparse_pose_indices(...)) * 2 - 1.
    """
    indices, _, _ = sparse_pose_indices(keypoints_rc, img_H, img_W, radius)
    return dense_pose_from_sparse(indices, img_H, img_W)


def pose_mask(keypoints_rc: np.ndarray, img_H: int, img_W: int, radius: int = 4) -> np.ndarray:
    """The body mask of the records (``pose_mask_r4_k``), as the original ``_getPoseMask``.

    For every limb of :data:`MASK_LIMBS` whose two joints are present: a disc of ``radius`` at both
    joints and at ``int(length / radius) - 1`` evenly spaced points between them (none when that is
    below 1); then a 5x5 square dilation followed by a 5x5 square erosion (the skimage grey
    morphology the original used; at the image border it equals max/min over the part of the
    window inside the image).

    Args:
        keypoints_rc: float ``[18, 2]`` (row, col), -1 for missing joints.
        img_H: image height in pixels.
        img_W: image width in pixels.
        radius: disc radius and sampling step along the limbs (4; Market records also hold 7,
            DeepFashion records 8).

    Returns:
        uint8 ``[img_H, img_W]`` in {0, 1}.
    """
    keypoints_rc = check_keypoints(keypoints_rc)
    missing = missing_joints(keypoints_rc)
    centers = []
    for joint_0, joint_1 in MASK_LIMBS:
        if missing[joint_0] or missing[joint_1]:
            continue
        # Python floats/ints in the same expression order as the original, for equal rounding.
        r0, c0 = (float(value) for value in keypoints_rc[joint_0])
        r1, c1 = (float(value) for value in keypoints_rc[joint_1])
        centers.append((r0, c0))
        centers.append((r1, c1))
        distance = np.sqrt((r0 - r1) ** 2 + (c0 - c1) ** 2)
        sample_count = int(distance / radius)
        for step in range(1, sample_count):
            centers.append(
                (r0 + (r1 - r0) * step / sample_count, c0 + (c1 - c0) * step / sample_count)
            )

    mask = np.zeros((img_H, img_W), np.uint8)
    if centers:
        center_rc = np.trunc(np.array(centers)).astype(np.int64)
        offsets = disc_offsets(radius)
        rows = (center_rc[:, None, 0] + offsets[None, :, 0]).ravel()
        cols = (center_rc[:, None, 1] + offsets[None, :, 1]).ravel()
        inside = (rows >= 0) & (rows < img_H) & (cols >= 0) & (cols < img_W)
        mask[rows[inside], cols[inside]] = 1
    mask = _square_filter(mask, _MASK_CLOSING_SIZE, np.maximum, pad_value=0)
    return _square_filter(mask, _MASK_CLOSING_SIZE, np.minimum, pad_value=1)


def _square_filter(image: np.ndarray, size: int, reduce, pad_value: int) -> np.ndarray:
    """Max or min over a centred size x size window, borders limited to the image."""
    half = size // 2
    padded = np.pad(image, half, constant_values=pad_value)
    height, width = image.shape
    rows_reduced = padded[:, 0:width]
    for shift in range(1, size):
        rows_reduced = reduce(rows_reduced, padded[:, shift : shift + width])
    result = rows_reduced[0:height]
    for shift in range(1, size):
        result = reduce(result, rows_reduced[shift : shift + height])
    return result


def check_keypoints(keypoints_rc) -> np.ndarray:
    """A pose as a float64 array, after checking its shape.

    Args:
        keypoints_rc: array-like ``[18, 2]`` (row, col) pixels, -1 for missing joints.

    Returns:
        float64 ``[18, 2]``, the same values.

    Raises:
        ValueError: the shape is not ``[18, 2]``.
    """
    keypoints_rc = np.asarray(keypoints_rc, dtype=np.float64)
    if keypoints_rc.shape != (NUM_KEYPOINTS, 2):
        raise ValueError(f"keypoints must have shape [18, 2] (row, col), got {keypoints_rc.shape}")
    return keypoints_rc


# A person is upright when their torso (hips centre -> shoulders centre) is within this angle of
# pointing straight up, in degrees.
UPRIGHT_TORSO_DEGREES = 45.0


def torso_angle(keypoints_rc: np.ndarray) -> float | None:
    """How far a person's torso leans from upright.

    Args:
      keypoints_rc: float [18, 2] (row, col), missing joints -1.

    Returns:
      The angle in degrees, in [0, 180], between the hips-centre -> shoulders-centre vector and
      straight up (0: standing, 90: lying, 180: upside down); None when both shoulders or both
      hips are missing.
    """
    keypoints_rc = np.asarray(keypoints_rc, np.float64)
    present = ~missing_joints(keypoints_rc)
    shoulders = [j for j in (2, 5) if present[j]]
    hips = [j for j in (8, 11) if present[j]]
    if not shoulders or not hips:
        return None
    up = keypoints_rc[hips].mean(axis=0) - keypoints_rc[shoulders].mean(axis=0)  # rows grow down
    length = float(np.hypot(*up))
    if length == 0:
        return None
    return float(np.degrees(np.arccos(np.clip(up[0] / length, -1.0, 1.0))))


def is_upright(keypoints_rc: np.ndarray) -> bool:
    """Whether a person stands or walks upright (PG2's people do), within
    :data:`UPRIGHT_TORSO_DEGREES`.

    Args:
      keypoints_rc: float [18, 2] (row, col), missing joints -1.

    Returns:
      True when :func:`torso_angle` is at most :data:`UPRIGHT_TORSO_DEGREES`, or unknown (no
      shoulder or no hip).
    """
    angle = torso_angle(keypoints_rc)
    return angle is None or angle <= UPRIGHT_TORSO_DEGREES
