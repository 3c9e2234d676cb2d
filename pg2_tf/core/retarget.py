"""Retargeting a pose: the source person's bone lengths with the target pose's joint angles.

PG2 draws whatever skeleton it is given, so a pose taken from another person carries that
person's limb lengths, height and shoulder width. :func:`retarget_sequence` keeps the SOURCE
person's body: every bone of :data:`BONES` (a tree rooted at the hip centre, the midpoint of the
two hips) gets the source's length and the target's direction; the tree is placed with its root
at the target's hip centre (its neck without two hips, else its first joint), in the model's
frame.
One scale serves the whole sequence: 1 (the source's own size in its crop) unless some frame's
skeleton would leave the frame, then the largest scale that keeps every frame inside.

The source is measured in its photo, where a limb that points at the camera looks short. So a
limb (upper arm, forearm, thigh, shank) takes the longer of its right and left lengths, and a
limb still shorter than :data:`FORESHORTENED` of its typical length counts as not measured. A
bone missing in the source (a joint hidden or outside the photo) or not measured takes its
length from the source's torso (shoulder centre to hip centre) and
:data:`PROPORTIONS_OF_HEIGHT`, typical
segment lengths as fractions of body height from Drillis & Contini (1966), "Body segment
parameters", Report 1166-03, New York University, as reprinted in D. A. Winter, "Biomechanics
and Motor Control of Human Movement" (4th ed., 2009), Fig. 4.1. The face (nose, eyes, ears) is
not in that table: its lengths are our estimates from the same figure's head height (0.130 H,
chin to crown) and a head breadth of about 0.09 H. A source without both shoulders and both
hips cannot be measured and is refused.

Rule: numpy only, pose geometry on the ``keypoints_rc`` convention of :mod:`pg2_tf.core.pose`.
"""

import numpy as np

from pg2_tf.core.errors import DataError
from pg2_tf.core.pose import MISSING, NUM_KEYPOINTS, check_keypoints

# --proportions: the source person's bone lengths, or the target's keypoints as given.
PROPORTIONS_CHOICES = ("source", "target")
HIP_CENTRE = NUM_KEYPOINTS  # a virtual joint: the midpoint of the two hips (8 and 11)
NECK, RIGHT_SHOULDER, LEFT_SHOULDER, RIGHT_HIP, LEFT_HIP = 1, 2, 5, 8, 11
# What a source needs to be measured: both shoulders and both hips.
MEASURED_JOINTS = (RIGHT_SHOULDER, LEFT_SHOULDER, RIGHT_HIP, LEFT_HIP)

# (parent, child) in the order a tree walk from the hip centre meets them.
BONES = (
    (HIP_CENTRE, RIGHT_HIP),
    (HIP_CENTRE, LEFT_HIP),
    (HIP_CENTRE, NECK),
    (RIGHT_HIP, 9),
    (9, 10),
    (LEFT_HIP, 12),
    (12, 13),
    (NECK, RIGHT_SHOULDER),
    (RIGHT_SHOULDER, 3),
    (3, 4),
    (NECK, LEFT_SHOULDER),
    (LEFT_SHOULDER, 6),
    (6, 7),
    (NECK, 0),
    (0, 14),
    (14, 16),
    (0, 15),
    (15, 17),
)

# Typical bone lengths as fractions of body height H (module docstring: Drillis & Contini 1966
# via Winter 2009, Fig. 4.1; the face's are estimates). Keyed by the bone's child joint.
PROPORTIONS_OF_HEIGHT = {
    RIGHT_HIP: 0.191 / 2,  # hip width 0.191 H, halved
    LEFT_HIP: 0.191 / 2,
    NECK: 0.818 - 0.530,  # shoulder height 0.818 H - hip height 0.530 H
    9: 0.530 - 0.285,  # thigh: hip - knee height (0.285 H)
    10: 0.285 - 0.039,  # shank: knee - ankle height (0.039 H)
    12: 0.530 - 0.285,
    13: 0.285 - 0.039,
    RIGHT_SHOULDER: 0.259 / 2,  # shoulder width 0.259 H, halved
    LEFT_SHOULDER: 0.259 / 2,
    3: 0.186,  # upper arm
    4: 0.146,  # forearm
    6: 0.186,
    7: 0.146,
    0: 0.09,  # neck (shoulder centre) to nose: estimate, shoulder 0.818 H to nose ~0.91 H
    14: 0.03,  # nose to eye: estimate
    15: 0.03,
    16: 0.035,  # eye to ear: estimate, half the head breadth less half the eyes' spacing
    17: 0.035,
}
TORSO_OF_HEIGHT = PROPORTIONS_OF_HEIGHT[NECK]
# The limbs, right and left (keyed by the bone's child joint): upper arm, forearm, thigh, shank.
LIMB_PAIRS = ((3, 6), (4, 7), (9, 12), (10, 13))
# A limb measured shorter than this fraction of its typical length is taken as pointing at the
# camera (a sitting person's thighs measure 0.3-0.5 of it in the photos of docs/photos.md).
FORESHORTENED = 0.6


def _with_hip_centre(keypoints_rc: np.ndarray) -> np.ndarray:
    """[19, 2]: the pose plus the hip centre (NaN where missing)."""
    points = np.where(np.any(keypoints_rc == MISSING, axis=-1, keepdims=True), np.nan, keypoints_rc)
    hip_centre = (points[..., RIGHT_HIP, :] + points[..., LEFT_HIP, :]) / 2
    return np.concatenate([points, hip_centre[..., None, :]], axis=-2)


def source_bone_lengths(source_rc, flag: str = "--image") -> np.ndarray:
    """The length of every bone of :data:`BONES` in the source person, measured or estimated.

    Args:
        source_rc: float ``[18, 2]`` (row, col) pixels, -1 missing: the source person.
        flag: the flag naming the source photo, for the error message.

    Returns:
        float64 ``[19]`` indexed by the bone's child joint (index 18, the hip centre, unused:
        0): the measured length in pixels where both joints are present (for a limb, the longer
        of right and left), else, and for a limb shorter than ``FORESHORTENED`` of its typical
        length, ``PROPORTIONS_OF_HEIGHT[child] * torso / TORSO_OF_HEIGHT`` with ``torso`` the
        source's shoulder centre to hip centre distance.

    Raises:
        DataError: the source lacks a shoulder or a hip (one line naming ``flag``).
    """
    source_rc = check_keypoints(source_rc)
    points = _with_hip_centre(source_rc)
    missing = [j for j in MEASURED_JOINTS if np.isnan(points[j]).any()]
    if missing:
        raise DataError(
            f"{flag}: the person's shoulders and hips must be visible to measure their body "
            f"({len(missing)} of the 4 are not found); choose a photo showing the whole torso, "
            f"or give --proportions=target"
        )
    shoulder_centre = (points[RIGHT_SHOULDER] + points[LEFT_SHOULDER]) / 2
    height = np.linalg.norm(shoulder_centre - points[HIP_CENTRE]) / TORSO_OF_HEIGHT
    lengths = np.zeros(NUM_KEYPOINTS + 1)
    for parent, child in BONES:
        lengths[child] = np.linalg.norm(points[child] - points[parent])  # NaN: not measured
    for right, left in LIMB_PAIRS:  # a limb turned towards the camera looks short
        lengths[[right, left]] = np.fmax(lengths[right], lengths[left])
        for child in (right, left):
            if lengths[child] < FORESHORTENED * PROPORTIONS_OF_HEIGHT[child] * height:
                lengths[child] = np.nan
    for _, child in BONES:
        if not np.isfinite(lengths[child]):
            lengths[child] = PROPORTIONS_OF_HEIGHT[child] * height
    return lengths


def _unit_skeletons(targets_rc: np.ndarray, lengths: np.ndarray):
    """Per frame: the root's position [T, 2] and every joint's offset from it at scale 1
    [T, 19, 2] (NaN for joints missing in the target)."""
    points = _with_hip_centre(targets_rc)
    frames = len(points)
    present = ~np.isnan(points).any(axis=-1)  # [T, 19]
    # The root: the hip centre, else the neck, else the first joint the frame has.
    root = np.where(present[:, HIP_CENTRE], HIP_CENTRE, np.where(present[:, NECK], NECK, 0))
    root = np.where(present[np.arange(frames), root], root, np.argmax(present, axis=1))
    neighbours = {joint: [] for joint in range(NUM_KEYPOINTS + 1)}
    for parent, child in BONES:
        neighbours[parent].append((child, lengths[child]))
        neighbours[child].append((parent, lengths[child]))
    offsets = np.full(points.shape, np.nan)
    roots = np.full((frames, 2), np.nan)
    rooted = present[:, HIP_CENTRE]
    roots[rooted], offsets[rooted] = _hip_rooted(points[rooted], present[rooted], lengths)
    for t in np.flatnonzero(~rooted):  # rare: the walk from another root
        start = int(root[t])
        if not present[t, start]:
            continue
        roots[t] = points[t, start]
        offsets[t, start] = 0.0
        # Walk the tree from the root; a joint missing in the target passes its distance on, so a
        # present joint hangs from its nearest present ancestor by the sum of the bones between.
        stack = [(start, start, 0.0)]  # (joint, nearest present ancestor, distance to it)
        seen = {start}
        while stack:
            joint, anchor, distance = stack.pop()
            for other, length in neighbours[joint]:
                if other in seen:
                    continue
                seen.add(other)
                if present[t, other]:
                    direction = points[t, other] - points[t, anchor]
                    norm = np.linalg.norm(direction)
                    unit = direction / norm if norm > 0 else np.zeros(2)
                    offsets[t, other] = offsets[t, anchor] + unit * (distance + length)
                    stack.append((other, other, 0.0))
                else:
                    stack.append((other, anchor, distance + length))
    return roots, offsets


def _hip_rooted(points, present, lengths):
    """:func:`_unit_skeletons` for frames with both hips, all frames at once: :data:`BONES`
    lists every parent before its children, so each joint's nearest present ancestor and the
    length of bones down to it are known when it is reached."""
    frames = np.arange(len(points))
    offsets = np.full(points.shape, np.nan)
    offsets[:, HIP_CENTRE] = 0.0
    anchor = np.full((len(points), NUM_KEYPOINTS + 1), HIP_CENTRE)
    pending = np.zeros((len(points), NUM_KEYPOINTS + 1))  # bone length since the anchor
    for parent, child in BONES:
        anchor[:, child] = np.where(present[:, parent], parent, anchor[:, parent])
        pending[:, child] = np.where(present[:, parent], 0.0, pending[:, parent]) + lengths[child]
        direction = points[:, child] - points[frames, anchor[:, child]]
        norm = np.linalg.norm(direction, axis=-1, keepdims=True)
        unit = np.divide(direction, norm, out=np.zeros_like(direction), where=norm > 0)
        placed = offsets[frames, anchor[:, child]] + unit * pending[:, child, None]
        offsets[:, child] = np.where(present[:, child, None], placed, np.nan)
    return points[:, HIP_CENTRE], offsets


def fitting_scale(roots, offsets, img_H: int, img_W: int) -> float:
    """The largest scale <= 1 at which every frame's skeleton stays inside the frame.

    Args:
        roots: float ``[T, 2]`` (row, col) of each frame's root (NaN: an empty frame).
        offsets: float ``[T, J, 2]`` each joint's offset from the root at scale 1 (NaN missing).
        img_H, img_W: the model's size.

    Returns:
        float in (0, 1]: 1 when the skeletons fit as they are.
    """
    high = np.array([img_H - 1, img_W - 1], np.float64)
    roots = np.clip(roots, 0, high)[:, None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        room = np.where(offsets > 0, (high - roots) / offsets, roots / -offsets)
    room = room[np.isfinite(room) & (offsets != 0)]
    return float(min(1.0, room.min())) if room.size else 1.0


def retarget_sequence(source_rc, targets_rc, img_H: int, img_W: int, flag: str = "--image"):
    """The target poses drawn with the source person's body, all at one scale.

    Args:
        source_rc: float ``[18, 2]`` (row, col), -1 missing: the source person in the model's
            frame (both shoulders and both hips needed).
        targets_rc: float ``[T, 18, 2]`` or ``[18, 2]`` (row, col), -1 missing: the target
            poses in the model's frame.
        img_H, img_W: the model's size.
        flag: the flag naming the source, for the error message.

    Returns:
        ``(poses, scale)``: float32 like ``targets_rc`` (row, col; rounded to 3 decimals, as OpenPose
        JSON is written), -1 exactly where the target's
        joint is missing; each bone ``scale * source length`` long in the target bone's
        direction (a joint whose parent is missing in the target hangs from its nearest present
        ancestor, in that direction, by the bones between), rooted at the target's hip centre
        (its neck without two hips, else its first joint); ``scale`` (float in (0, 1]) is one for all frames.

    Raises:
        DataError: the source lacks a shoulder or a hip (naming ``flag``).
    """
    targets_rc = np.asarray(targets_rc, np.float64)
    single = targets_rc.ndim == 2
    targets_rc = targets_rc.reshape(-1, NUM_KEYPOINTS, 2)
    lengths = source_bone_lengths(source_rc, flag)
    roots, offsets = _unit_skeletons(targets_rc, lengths)
    scale = fitting_scale(roots, offsets[:, :NUM_KEYPOINTS], img_H, img_W)
    poses = roots[:, None, :] + scale * offsets[:, :NUM_KEYPOINTS]
    poses = np.where(np.isnan(poses).any(axis=-1, keepdims=True), float(MISSING), poses)
    # Rounded as OpenPose JSON keeps them (pose_files.openpose_document): a pose written with
    # --save_all and read back is the pose the model was given.
    poses = np.round(poses, 3).astype(np.float32)
    return (poses[0] if single else poses), scale
