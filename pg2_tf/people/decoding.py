"""Decoding BlazePose's raw outputs as MediaPipe's calculators do: detections, regions, landmarks.

:func:`decode_detections` is TensorsToDetections plus weighted non-maximum suppression,
:meth:`Detection.roi` is pose_detection_to_roi, :func:`decode_landmarks` is
tensors_to_pose_landmarks with :func:`refine_with_heatmap` (RefineLandmarksFromHeatmap). Rule:
numpy only, no interpreters and no I/O (:mod:`pg2_tf.people.blazepose` runs the models); the
numbers are MediaPipe 0.10.21's.
"""

import dataclasses

import numpy as np

from pg2_tf.people import geometry

MIN_DETECTION_SCORE = 0.5
MIN_PRESENCE_SCORE = 0.5
LANDMARK_SIZE = 256  # the landmark model's input side
_NUM_LANDMARKS = 39  # 33 pose landmarks + 6 auxiliary ones
_AUX_END = 35  # auxiliary landmarks 33 and 34: the hips centre and the full-body point
_ROI_SCALE = 1.25
_NMS_IOU = 0.3
# 9 (the calculator's default): the graph in the repository says 7, but mediapipe 0.10.21's own
# landmarks are reproduced exactly with 9 and only to 0.2 heatmap cells with 7.
_HEATMAP_KERNEL = 9
_HEATMAP_MIN_CONFIDENCE = 0.5


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -100.0, 100.0)))


def decode_detections(raw_boxes, raw_scores, min_score: float = MIN_DETECTION_SCORE) -> list:
    """The detector's output -> people, as MediaPipe's TensorsToDetections + weighted NMS.

    Args:
      raw_boxes: [2254, 12] (box x, y, w, h, then 4 keypoints x, y) relative to the anchors.
      raw_scores: [2254] logits.
      min_score: anchors scoring below this are dropped (MediaPipe's legacy solution: 0.5).

    Returns:
      A list of (box_xyxy [4], keypoints_xy [4, 2], score), all in [0, 1] of the 224x224
      input, highest score first: one per weighted-NMS cluster (the best remaining anchor and
      every remaining anchor overlapping it by IoU > 0.3, averaged by score; the cluster's score
      is its best anchor's). Empty when no anchor reaches ``min_score``. The first one is the
      person MediaPipe's single-person graph takes.
    """
    scores = _sigmoid(np.clip(raw_scores.astype(np.float64), -100, 100))
    keep = np.flatnonzero(scores >= min_score)
    if keep.size == 0:
        return []
    anchors = geometry.ssd_anchors()[keep].astype(np.float64)
    raw = raw_boxes[keep].astype(np.float64) / geometry.DETECTOR_SIZE
    centre = raw[:, :2] + anchors
    half = raw[:, 2:4] / 2
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    keypoints = raw[:, 4:].reshape(-1, 4, 2) + anchors[:, None, :]
    scores = scores[keep]
    remaining = np.argsort(-scores, kind="stable")
    found = []
    while remaining.size:
        overlapping = geometry.box_iou(boxes[remaining[0]], boxes[remaining]) > _NMS_IOU
        cluster = remaining[overlapping]
        weights = scores[cluster] / scores[cluster].sum()
        box = (boxes[cluster] * weights[:, None]).sum(axis=0)
        points = (keypoints[cluster] * weights[:, None, None]).sum(axis=0)
        found.append((box, points, float(scores[remaining[0]])))
        remaining = remaining[~overlapping]
    return found


def refine_with_heatmap(landmarks_xy, heatmap) -> np.ndarray:
    """MediaPipe's RefineLandmarksFromHeatmap: each landmark moves to the sigmoid-weighted mean of
    the 9x9 heatmap cells around it when their maximum reaches 0.5.

    Args:
      landmarks_xy: [39, 2] x, y normalised to [0, 1] of the landmark model's crop.
      heatmap: [64, 64, 39] logits.

    Returns:
      float64 [39, 2]: the refined landmarks, normalised as given.
    """
    size_h, size_w = heatmap.shape[:2]
    out = np.array(landmarks_xy, dtype=np.float64)
    offset = (_HEATMAP_KERNEL - 1) // 2
    for index, (x, y) in enumerate(out):
        col, row = int(x * size_w), int(y * size_h)  # C++ float -> int truncates toward zero
        # MediaPipe tests the column against the height here, not the row; kept for equal results.
        if col < 0 or col >= size_w or row < 0 or col >= size_h:
            continue
        rows = slice(max(0, row - offset), min(size_h, row + offset + 1))
        cols = slice(max(0, col - offset), min(size_w, col + offset + 1))
        confidence = _sigmoid(heatmap[rows, cols, index].astype(np.float64))
        total = confidence.sum()
        if confidence.size == 0 or total <= 0 or confidence.max() < _HEATMAP_MIN_CONFIDENCE:
            continue
        grid_r, grid_c = np.mgrid[rows, cols]
        out[index] = (
            (grid_c * confidence).sum() / size_w / total,
            (grid_r * confidence).sum() / size_h / total,
        )
    return out


@dataclasses.dataclass(frozen=True)
class Detection:
    """One person as the detector sees them, in photo pixels."""

    box_xyxy: np.ndarray  # float64 [4]: the detector's box (about the head and upper body)
    keypoints_xy: np.ndarray  # float64 [4, 2]: hips centre, full-body circle point, shoulders
    # centre, upper-body circle point
    score: float  # in [0.5, 1]

    def roi(self):
        """(centre_xy, side, rotation): the landmark model's square, as MediaPipe's
        pose_detection_to_roi: centred on the hips, side 2 x |full-body point - hips| x 1.25,
        turned so that hips -> full-body point points up (rotation in radians, clockwise)."""
        return roi_of_points(self.keypoints_xy[0], self.keypoints_xy[1])


def roi_of_points(hips_xy, full_body_xy):
    """The landmark model's square around a body, from its hips centre and full-body point.

    MediaPipe computes it so from a detection (pose_detection_to_roi) and, in video mode, from
    the previous frame's two auxiliary landmarks (pose_landmarks_to_roi): the same alignment
    points, scale 1.25, square.

    Args:
      hips_xy: float [2], the hips centre in photo pixels.
      full_body_xy: float [2], the point on the circle round the whole body, above the head.

    Returns:
      ``(centre_xy float64 [2], side, rotation)``: the square's centre (the hips), its side in
      pixels (2 x |full body - hips| x 1.25) and its rotation in radians in [-pi, pi), clockwise,
      that turns hips -> full-body point upright.
    """
    hips = np.asarray(hips_xy, np.float64)
    full_body = np.asarray(full_body_xy, np.float64)
    rotation = np.pi / 2 - np.arctan2(-(full_body[1] - hips[1]), full_body[0] - hips[0])
    rotation = rotation - 2 * np.pi * np.floor((rotation + np.pi) / (2 * np.pi))
    side = 2 * np.hypot(*(full_body - hips)) * _ROI_SCALE
    return hips, float(side), float(rotation)


def decode_landmarks(outputs, roi):
    """The landmark model's outputs on one region of interest, in photo pixels.

    Args:
      outputs: the model's outputs by name: ``landmarks`` [1, 195], ``presence`` [1, 1] and
        ``heatmap`` [1, 64, 64, 39] (logits).
      roi: the ``(centre_xy, side, rotation)`` the crop was taken from (:meth:`Detection.roi`).

    Returns:
      ``(landmarks, presence, next_roi)``: float64 [33, 3] x, y in photo pixels and visibility
      in [0, 1]; the pose presence in (0.5, 1]; and the region of interest of the two auxiliary
      landmarks (:func:`roi_of_points`), where MediaPipe's video mode looks in the next frame.
      None when the presence is not above :data:`MIN_PRESENCE_SCORE`.
    """
    centre, side, rotation = roi
    presence = float(outputs["presence"].reshape(-1)[0])
    if presence <= MIN_PRESENCE_SCORE:
        return None
    raw = outputs["landmarks"].reshape(_NUM_LANDMARKS, 5).astype(np.float64)
    normalised = refine_with_heatmap(raw[:, :2] / LANDMARK_SIZE, outputs["heatmap"][0])
    local = (normalised[:_AUX_END] - 0.5) * side
    cos, sin = np.cos(rotation), np.sin(rotation)
    x = centre[0] + local[:, 0] * cos - local[:, 1] * sin
    y = centre[1] + local[:, 0] * sin + local[:, 1] * cos
    landmarks = np.stack([x[:33], y[:33], _sigmoid(raw[:33, 3])], axis=1)
    next_roi = roi_of_points((x[33], y[33]), (x[34], y[34]))
    return landmarks, presence, next_roi
