"""Synthetic people: person-like figures with their 18 COCO/OpenPose keypoints known exactly.

An ellipse head, a polygon torso and thick limbs, whose clothes and skin colours identify the
person, in varied poses and viewpoints on varied backgrounds; and the OpenPose-format result
(peaks and person rows, with occasional distractor peaks) a detector would give for them.

Rule: everything is a deterministic function of the arguments and the numpy generator passed in;
nothing here writes files (:mod:`data_prep.synthetic` lays the people out as a dataset).
"""

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from pg2_tf.core import pose, pose_files

# Image left is the person's right side when the person faces the camera.
_FRONT_SKELETON = {
    "nose": (0.075, 0.0),
    "neck": (0.16, 0.0),
    "right_shoulder": (0.18, -0.105),
    "left_shoulder": (0.18, 0.105),
    "right_hip": (0.5, -0.065),
    "left_hip": (0.5, 0.065),
    "right_eye": (0.058, -0.022),
    "left_eye": (0.058, 0.022),
    "right_ear": (0.068, -0.048),
    "left_ear": (0.068, 0.048),
}
_UPPER_ARM, _FOREARM, _THIGH, _SHIN = 0.16, 0.14, 0.24, 0.23
_SKIN_TONES = ((241, 194, 167), (224, 172, 105), (198, 134, 66), (141, 85, 36), (92, 58, 35))


@dataclass(frozen=True)
class Appearance:
    """Colours (RGB 0..255) that identify a person."""

    skin: tuple
    hair: tuple
    shirt: tuple
    trousers: tuple
    shoes: tuple


def identity_appearance(identity: int, seed: int) -> Appearance:
    """The deterministic look of a person.

    Args:
        identity: the person's number.
        seed: the dataset's seed.

    Returns:
        The person's :class:`Appearance` (RGB colours 0..255).
    """
    rng = np.random.default_rng([seed, 7919, identity])

    def colour(low=20, high=235):
        return tuple(int(v) for v in rng.integers(low, high, size=3))

    return Appearance(
        skin=_SKIN_TONES[int(rng.integers(len(_SKIN_TONES)))],
        hair=colour(10, 120),
        shirt=colour(),
        trousers=colour(10, 200),
        shoes=colour(0, 80),
    )


def random_keypoints(rng: np.random.Generator, img_H: int, img_W: int) -> np.ndarray:
    """A plausible standing/walking person filling most of the image.

    Args:
        rng: the generator every random choice is drawn from.
        img_H, img_W: the image size in pixels.

    Returns:
        float64 [18, 2] (row, col), integer-valued like OpenPose peaks, -1 for joints hidden by
        the viewpoint (back: face; side views: the far eye and ear) or outside the image.
    """
    figure = img_H * rng.uniform(0.82, 0.95)
    top = rng.uniform(0.01, 0.99 - figure / img_H) * img_H
    axis = img_W / 2 + rng.uniform(-0.08, 0.08) * img_W
    view = rng.choice(["front", "front", "back", "right", "left"])
    width_scale = {"front": 1.0, "back": -1.0, "right": 0.35, "left": -0.35}[view]
    width_scale *= min(1.0, 0.55 * img_W / (0.21 * figure)) * rng.uniform(0.85, 1.1)

    joints = {}
    for name, (row, col) in _FRONT_SKELETON.items():
        joints[name] = np.array([top + row * figure, axis + col * figure * width_scale])
    side_sign = 1 if width_scale >= 0 else -1
    for side, sign in (("right", -1), ("left", 1)):
        outward = sign * side_sign
        upper = math.radians(rng.uniform(-5, 40))
        lower = upper + math.radians(rng.uniform(-40, 50))
        elbow = joints[f"{side}_shoulder"] + figure * _UPPER_ARM * np.array(
            [math.cos(upper), outward * math.sin(upper) * abs(width_scale) ** 0.5]
        )
        joints[f"{side}_elbow"] = elbow
        joints[f"{side}_wrist"] = elbow + figure * _FOREARM * np.array(
            [math.cos(lower), outward * math.sin(lower) * abs(width_scale) ** 0.5]
        )
        thigh = math.radians(rng.uniform(-12, 18))
        shin = thigh + math.radians(rng.uniform(-12, 8))
        knee = joints[f"{side}_hip"] + figure * _THIGH * np.array(
            [math.cos(thigh), outward * math.sin(thigh)]
        )
        joints[f"{side}_knee"] = knee
        joints[f"{side}_ankle"] = knee + figure * _SHIN * np.array(
            [math.cos(shin), outward * math.sin(shin)]
        )

    keypoints_rc = np.full((pose.NUM_KEYPOINTS, 2), -1.0)
    for name, position in joints.items():
        keypoints_rc[pose.KEYPOINT_NAMES.index(name)] = np.round(position)
    hidden = {
        "front": [],
        "back": ["nose", "right_eye", "left_eye"],
        "right": ["left_eye", "left_ear"],
        "left": ["right_eye", "right_ear"],
    }[view]
    for name in hidden:
        keypoints_rc[pose.KEYPOINT_NAMES.index(name)] = -1
    outside = (
        (keypoints_rc[:, 0] < 0)
        | (keypoints_rc[:, 0] > img_H - 1)
        | (keypoints_rc[:, 1] < 0)
        | (keypoints_rc[:, 1] > img_W - 1)
    )
    keypoints_rc[outside] = -1
    return keypoints_rc


def render_person(
    keypoints_rc: np.ndarray,
    appearance: Appearance,
    rng: np.random.Generator,
    img_H: int,
    img_W: int,
    background: np.ndarray | None = None,
) -> np.ndarray:
    """Draws the figure of a person in a pose.

    Args:
        keypoints_rc: float [18, 2] (row, col) in pixels, -1 for missing joints.
        appearance: the person's colours.
        rng: the generator of the pixel noise (and of the background when none is given).
        img_H, img_W: the image size in pixels.
        background: uint8 [img_H, img_W, 3]; by default a random one drawn from ``rng``.

    Returns:
        uint8 [img_H, img_W, 3].
    """
    if background is None:
        background = random_background(rng, img_H, img_W)
    image = Image.fromarray(background)
    draw = ImageDraw.Draw(image)
    scale = img_H / 128
    present = ~pose.missing_joints(keypoints_rc)

    def point(name):
        joint = pose.KEYPOINT_NAMES.index(name)
        return (
            (float(keypoints_rc[joint, 1]), float(keypoints_rc[joint, 0]))
            if present[joint]
            else None
        )

    def limb(name_a, name_b, colour, width):
        a, b = point(name_a), point(name_b)
        if a and b:
            draw.line([a, b], fill=colour, width=max(1, round(width * scale)))
            radius = width * scale / 2
            for x, y in (a, b):
                draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=colour)

    for side in ("right", "left"):
        limb(f"{side}_hip", f"{side}_knee", appearance.trousers, 7)
        limb(f"{side}_knee", f"{side}_ankle", appearance.trousers, 6)
        ankle = point(f"{side}_ankle")
        if ankle:
            x, y = ankle
            draw.ellipse(
                [x - 4 * scale, y - 1.5 * scale, x + 4 * scale, y + 2.5 * scale],
                fill=appearance.shoes,
            )
    torso = [point(n) for n in ("right_shoulder", "left_shoulder", "left_hip", "right_hip")]
    if all(torso):
        draw.polygon(torso, fill=appearance.shirt)
    for side in ("right", "left"):
        limb(f"{side}_shoulder", f"{side}_elbow", appearance.shirt, 5)
        limb(f"{side}_elbow", f"{side}_wrist", appearance.skin, 4)
    limb("neck", "right_shoulder", appearance.shirt, 6)
    limb("neck", "left_shoulder", appearance.shirt, 6)
    neck, nose = point("neck"), point("nose")
    ears = [p for p in (point("right_ear"), point("left_ear")) if p]
    hips = [p for p in (point("right_hip"), point("left_hip")) if p]
    if neck:
        torso_length = np.mean([p[1] for p in hips]) - neck[1] if hips else 0.3 * img_H
        radius_y = 0.23 * torso_length
        radius_x = 0.75 * radius_y
        if nose:
            head_x, head_y = nose
        elif ears:
            head_x, head_y = np.mean([p[0] for p in ears]), np.mean([p[1] for p in ears])
        else:
            head_x, head_y = neck[0], neck[1] - 1.1 * radius_y
        box = [head_x - radius_x, head_y - radius_y, head_x + radius_x, head_y + radius_y]
        draw.ellipse(box, fill=appearance.skin)
        # Hair: the top of the head from the front, all of it from the back.
        draw.chord(box, 180 if nose else 0, 360, fill=appearance.hair)
    pixels = np.asarray(image).astype(np.int16)
    pixels += rng.integers(-6, 7, size=pixels.shape, dtype=np.int16)
    return np.clip(pixels, 0, 255).astype(np.uint8)


def random_background(rng: np.random.Generator, img_H: int, img_W: int) -> np.ndarray:
    """A vertical colour gradient with up to three random rectangles.

    Args:
        rng: the generator every random choice is drawn from.
        img_H, img_W: the image size in pixels.

    Returns:
        uint8 [img_H, img_W, 3].
    """
    top, bottom = rng.integers(30, 240, size=(2, 3))
    rows = np.linspace(0.0, 1.0, img_H)[:, None, None]
    pixels = (top * (1 - rows) + bottom * rows) * np.ones((1, img_W, 1))
    for _ in range(int(rng.integers(0, 4))):
        y0, x0 = rng.integers(0, img_H), rng.integers(0, img_W)
        y1, x1 = y0 + rng.integers(5, img_H // 2), x0 + rng.integers(5, img_W // 2)
        pixels[y0:y1, x0:x1] = rng.integers(20, 240, size=3)
    return pixels.astype(np.uint8)


def openpose_result(
    keypoints_rc: np.ndarray, rng: np.random.Generator
) -> tuple[list[list[tuple]], np.ndarray]:
    """OpenPose-format peaks/subsets of a person: the true peak first for every joint, then
    sometimes a distractor peak that belongs to a weaker second person (or to no one).

    Both keypoint selection rules of the converters recover ``keypoints_rc`` exactly.

    Args:
        keypoints_rc: float [18, 2] (row, col) in pixels, -1 for missing joints.
        rng: the generator of the scores and distractors.

    Returns:
        ``(all_peaks, subsets)``: per joint a list of ``(x, y, score, peak_id)``, and float
        [persons, 20] person rows (peak ids per joint, score, joint count), the person first.
    """
    all_peaks, person = pose_files.openpose_from_keypoints(keypoints_rc)
    scored_peaks = []
    person_score = 0.0
    for candidates in all_peaks:
        joint_peaks = []
        for x, y, _, peak_id in candidates:
            score = float(rng.uniform(0.45, 0.97))
            joint_peaks.append((x, y, score, peak_id))
            person_score += score
        scored_peaks.append(joint_peaks)
    next_id = int(person[0, -1])
    other = np.full(pose.NUM_KEYPOINTS + 2, -1.0)
    for joint, joint_peaks in enumerate(scored_peaks):
        if joint_peaks and rng.random() < 0.15:
            x, y = joint_peaks[0][0], joint_peaks[0][1]
            joint_peaks.append((x // 2, y // 2, float(rng.uniform(0.1, 0.4)), next_id))
            other[joint] = next_id
            next_id += 1
    person[0, -2] = person_score + float(rng.uniform(0.5, 2.0))
    subsets = person
    if (other[: pose.NUM_KEYPOINTS] >= 0).sum() >= 2:
        other[-1] = (other[: pose.NUM_KEYPOINTS] >= 0).sum()
        other[-2] = 0.5 * other[-1]
        subsets = np.vstack([person, other[None]])
    return scored_peaks, subsets
