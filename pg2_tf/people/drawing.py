"""Drawing people on a photo: each person's skeleton, and a numbered label above them.

What ``pg2-keypoints --draw`` writes (the index beside each person is the one ``--person`` takes).
Rule: Pillow and matplotlib's colour map only, imported when drawing; the people come from
:mod:`pg2_tf.people.blazepose` or :mod:`pg2_tf.people.finder` and are only read.
"""

import numpy as np

from pg2_tf.core import pose


def draw_keypoints(image_rgb, person, label: str | None = None) -> np.ndarray:
    """The photo with one person's skeleton drawn on it.

    Args:
      image_rgb: uint8 [H, W, 3].
      person: a :class:`pg2_tf.people.blazepose.PersonKeypoints` in the photo's pixels.
      label: text in a box above the person's joints, or None for none.

    Returns:
      uint8 [H, W, 3]: a new picture (the photo is not changed).
    """
    return draw_people(image_rgb, [person], [label] if label is not None else None)


def draw_people(image_rgb, people, labels=None) -> np.ndarray:
    """The photo with each person's skeleton drawn, limbs coloured, joints as white dots.

    Lines are in proportion to each person (small people get thin lines).

    Args:
      image_rgb: uint8 [H, W, 3].
      people: :class:`pg2_tf.people.blazepose.PersonKeypoints` in the photo's pixels.
      labels: None, or per person a text (e.g. the index) drawn in a box above their joints
        (None for none).

    Returns:
      uint8 [H, W, 3]: a new picture (the photo is not changed).
    """
    from matplotlib import colormaps
    from PIL import Image, ImageDraw, ImageFont

    picture = Image.fromarray(np.asarray(image_rgb, dtype=np.uint8))
    draw = ImageDraw.Draw(picture)
    colours = (
        colormaps["hsv"](np.linspace(0, 1, len(pose.SKELETON_LIMBS), endpoint=False))[:, :3] * 255
    )
    for number, person in enumerate(people):
        joints = person.keypoints_xyc
        present = joints[:, 2] > 0
        if present.any():
            extent = np.ptp(joints[present, :2], axis=0).max()
        else:
            extent = max(person.box_xyxy[2] - person.box_xyxy[0], 1.0)
        # Lines in proportion to the person (small people get thin lines), within 1..size/200.
        width = int(np.clip(round(extent / 60), 1, max(2, round(max(picture.size) / 200))))
        for (a, b), colour in zip(pose.SKELETON_LIMBS, colours, strict=True):
            if joints[a, 2] > 0 and joints[b, 2] > 0:
                fill = tuple(int(c) for c in colour)
                draw.line([tuple(joints[a, :2]), tuple(joints[b, :2])], fill=fill, width=width)
        radius = 1.5 * width
        for x, y, confidence in joints:
            if confidence > 0:
                draw.ellipse(
                    [x - radius, y - radius, x + radius, y + radius],
                    fill=(255, 255, 255),
                    outline=(0, 0, 0),
                )
        if labels is None or labels[number] is None or not present.any():
            continue
        size = int(np.clip(max(picture.size) / 40, 12, 40))
        font = ImageFont.load_default(size=size)
        text = str(labels[number])
        x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
        # Centred above the person's joints, inside the picture.
        left = (joints[present, 0].min() + joints[present, 0].max() - (x1 - x0)) / 2
        left = float(np.clip(left, 3, max(3, picture.size[0] - (x1 - x0) - 3)))
        top = float(max(2.0, joints[present, 1].min() - (y1 - y0) - 8))
        x0, y0, x1, y1 = draw.textbbox((left, top), text, font=font)
        draw.rectangle([x0 - 3, y0 - 2, x1 + 3, y1 + 2], fill=(255, 255, 0), outline=(0, 0, 0))
        draw.text((left, top), text, fill=(0, 0, 0), font=font)
    return np.asarray(picture)
