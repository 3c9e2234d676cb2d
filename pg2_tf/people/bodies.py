"""Bodies without faces: OpenCV's HOG people detector, for people BlazePose's detector misses.

BlazePose's detector finds a person by their face (it was trained on face and upper body), so a
person seen from behind or in profile is often not found. The landmark model itself reads a body
from any side; it needs only a region of interest. This module gives two things, both with the
HOG + linear SVM people detector of Dalal and Triggs (2005) as OpenCV ships it (its weights are
inside the ``opencv-python-headless`` wheel; nothing is downloaded):

* :func:`body_boxes`: every upright person in a photo, as boxes (the scene candidates of
  :func:`pg2_tf.people.finder.find_people`);
* :func:`body_score`: the detector's best score about one box, a body-shape check that needs no
  face. The landmark model's presence alone accepts some textures as people (a kerb with
  bollards: presence 0.998); a candidate the face detector did not propose must also score at
  least :data:`pg2_tf.people.regions.MIN_BODY_SCORE` here. Measured in docs/performance.md
  ("Keypoints: people from any side").

The detector's window is 64 x 128 pixels with the person about 96 pixels tall in it (INRIA
person, the data it was trained on), so a person shorter than about 100 pixels is found only on an
enlarged photo (:data:`MIN_PERSON_HEIGHT`).

Rule: numpy, OpenCV and ``pg2_tf.core`` only; no model of ``pg2_tf.people`` is run here.
"""

import functools

import numpy as np

HOG_WINDOW_WH = (64, 128)
# The part of the window's height the person fills (INRIA person: 96 of 128 pixels).
PERSON_IN_WINDOW = 0.75
# People down to this height (photo pixels) are looked for by body_boxes: the photo is enlarged
# so that they fill the window (a photo is enlarged 1.2 times for 80 px).
MIN_PERSON_HEIGHT = 80
# Pyramid step between the detector's scales (1.1 found 58 of 66 moving people on 16 vtest frames,
# 1.2 found 56 in a third of the time), and its window stride (pixels).
SCALE_STEP = 1.2
WINDOW_STRIDE = (8, 8)
# body_boxes keeps windows from this score (more than the boundary: fewer false boxes to check);
# in a portrait, where the people left to find are large, from PORTRAIT_BOX_SCORE (a false
# window beside skimage's astronaut scores 1.24).
MIN_BOX_SCORE = 0.3
PORTRAIT_BOX_SCORE = 1.5


@functools.cache
def _detector():
    import cv2

    cv2.setNumThreads(max(1, min(4, len(_cores()))))
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    return hog


def _cores():
    import os

    return os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count())


def _grey(image_rgb) -> np.ndarray:
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(image_rgb, np.uint8), cv2.COLOR_RGB2GRAY)


def body_boxes(image_rgb, min_height: float = MIN_PERSON_HEIGHT, min_score=MIN_BOX_SCORE) -> list:
    """Every upright person the HOG detector finds in a photo.

    Args:
      image_rgb: uint8 [H, W, 3].
      min_height: the smallest person looked for, in photo pixels (the photo is enlarged when
        this is below the detector's person height, 96 pixels, and reduced when above it).
      min_score: the least SVM score of a box kept.

    Returns:
      list of ``(box_xyxy float64 [4], score)``: the person's box (the detector's window without
      its margins) in photo pixels and the SVM's score (> ``min_score``), highest
      first, overlapping windows merged by non-maximum suppression.
    """
    import cv2

    image = _grey(image_rgb)
    zoom = HOG_WINDOW_WH[1] * PERSON_IN_WINDOW / float(min_height)
    if zoom != 1.0:
        size = (round(image.shape[1] * zoom), round(image.shape[0] * zoom))
        image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    if min(image.shape) < HOG_WINDOW_WH[0] or image.shape[0] < HOG_WINDOW_WH[1]:
        return []
    rects, weights = _detector().detectMultiScale(
        image, hitThreshold=min_score, winStride=WINDOW_STRIDE, scale=SCALE_STEP
    )
    if len(rects) == 0:
        return []
    rects = np.asarray(rects, np.float64) / zoom
    scores = np.ravel(weights).astype(np.float64)
    boxes = []
    for x, y, w, h in rects:
        margin = h * (1 - PERSON_IN_WINDOW) / 2
        boxes.append((x + w * 0.2, y + margin, x + w * 0.8, y + h - margin))
    keep = cv2.dnn.NMSBoxes(
        [(b[0], b[1], b[2] - b[0], b[3] - b[1]) for b in boxes], scores.tolist(), 0.0, 0.4
    )
    keep = sorted(np.ravel(keep).tolist(), key=lambda i: -scores[i])
    return [(np.array(boxes[i]), float(scores[i])) for i in keep]


def body_score(image_rgb, box_xyxy) -> float:
    """The HOG detector's best score of windows about one person box: how much it looks like an
    upright body.

    The box of a person's landmarks fits the window only roughly (a bowed head, a stride), so
    the window is tried at 3 sizes (0.85, 1, 1.15 x) and 3 x 3 shifts (6 % of the height down or
    up, 10 % across) and the best is kept: pedestrians in dark clothes scored -2.7 on their
    landmarks' box and 0.7 to 3.3 at best, background read as a person -1.3 and -0.9 at best.

    Args:
      image_rgb: uint8 [H, W, 3].
      box_xyxy: the person, head to feet, in photo pixels (x0, y0, x1, y1); may leave the photo
        (its edge pixels are repeated).

    Returns:
      The SVM's best score; above 0 (the SVM's boundary) for a body (typically 0.5 to 4),
      below for background (typically -1 to -4).
    """
    x0, y0, x1, y1 = (float(v) for v in box_xyxy)
    height = max(y1 - y0, 1.0)
    centre = ((x0 + x1) / 2, (y0 + y1) / 2)
    grey = _grey(image_rgb)
    best = -100.0
    for size in (0.85, 1.0, 1.15):
        for down in (-0.06, 0.0, 0.06):
            for across in (-0.1, 0.0, 0.1):
                shifted = (centre[0] + across * height, centre[1] + down * height)
                best = max(best, _window_score(grey, shifted, height * size))
    return best


def _window_score(grey, centre_xy, person_height: float) -> float:
    """The SVM's score of the 64 x 128 window holding a person of this height at this centre."""
    import cv2

    scale = HOG_WINDOW_WH[1] * PERSON_IN_WINDOW / person_height
    # Photo -> window: scale about the centre, the centre to the window's middle.
    matrix = np.array(
        [
            [scale, 0, HOG_WINDOW_WH[0] / 2 - scale * centre_xy[0]],
            [0, scale, HOG_WINDOW_WH[1] / 2 - scale * centre_xy[1]],
        ]
    )
    window = cv2.warpAffine(
        grey, matrix, HOG_WINDOW_WH, flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE
    )
    _, weights = _detector().detect(window, hitThreshold=-100.0)
    return float(np.max(weights)) if len(weights) else -100.0
