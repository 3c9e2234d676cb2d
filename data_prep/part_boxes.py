"""Body part boxes and DeepFashion's region masks, as the original converters computed them.

The 37 parts (:data:`PART_JOINTS`) are body regions, limbs, the whole body and single joints;
their boxes are the records' ``part_bbox_k``/``part_vis_k``; DeepFashion's ten region masks
(``roi10_mask_k``) are drawn from them.

Rule: numpy only, pixel for pixel the original's ``get_part_bbox37`` (Market), ``get_part_bbox``
and ``get_roi_mask`` (DeepFashion), including where they crashed (:func:`region_mask_problem`).
"""

import numpy as np

from pg2_tf.core import pose

# Part boxes: the joints of each of the 37 parts (body regions, limbs, whole body, single joints).
PART_JOINTS = (
    (0, 1, 2, 5, 14, 15, 16, 17),
    (2, 3, 4, 5, 6, 7, 8, 11),
    (8, 9, 10, 11, 12, 13),
    (5, 6, 7),
    (2, 3, 4),
    (11, 12, 13),
    (8, 9, 10),
    (2, 5, 8, 11),
    (5, 6),
    (6, 7),
    (2, 3),
    (3, 4),
    (11, 12),
    (12, 13),
    (8, 9),
    (9, 10),
    tuple(range(18)),
    *((joint,) for joint in range(18)),
    (2, 3, 4, 8, 9, 10),
    (5, 6, 7, 11, 12, 13),
)


def _padded_box(rows, cols, pad, last_row, last_col) -> list:
    """The box ``[y1, x1, y2, x2]`` around the points, widened by ``pad`` and clamped to the
    frame (0..last_row x 0..last_col)."""
    return [
        max(0, min(rows) - pad),
        max(0, min(cols) - pad),
        min(last_row, max(rows) + pad),
        min(last_col, max(cols) + pad),
    ]


def part_boxes_market(keypoints_rc: np.ndarray, radius: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Market part boxes (original ``get_part_bbox37``, radius 6 for both images).

    Args:
        keypoints_rc: float [18, 2] (row, col) in the 128 x 64 image, -1 missing.
        radius: the margin around a part of several joints.

    Returns:
        ``(boxes, visible)``: int64 [37, 4] (y1, x1, y2, x2) clamped to 0..127 x 0..63, widened by
        ``radius`` (10 for a single joint); [0, 0, 1, 1] for an invisible part. int64 [37] in {0, 1}.
    """
    present = ~pose.missing_joints(keypoints_rc)
    boxes, visible = [], []
    for joints in PART_JOINTS:
        points = [keypoints_rc[j] for j in joints if present[j]]
        if not points:
            boxes.append([0, 0, 1, 1])
            visible.append(0)
            continue
        visible.append(1)
        margin = radius if len(points) > 1 else 10
        rows, cols = [p[0] for p in points], [p[1] for p in points]
        boxes.append(_padded_box(rows, cols, margin, 127, 63))
    return np.array(boxes).astype(np.int64), np.array(visible, np.int64)


def part_boxes_deepfashion(keypoints_rc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeepFashion part boxes (original ``get_part_bbox``, 256 x 256 frame).

    Margins are 10 (20 for a single joint) when both lower legs are visible ("whole body"), else
    20 (40); the nose is moved up by 10 (whole body) or 25 first.

    Args:
        keypoints_rc: float [18, 2] (row, col) in the 256 x 256 image, -1 missing.

    Returns:
        ``(boxes, visible)``: int64 [37, 4] (y1, x1, y2, x2) clamped to 0..255; int64 [37] in {0, 1}.
    """
    present = ~pose.missing_joints(keypoints_rc)
    visible = [int(any(present[j] for j in joints)) for joints in PART_JOINTS]
    whole_body = bool(visible[13] and visible[15])
    margin, single_margin = (10, 20) if whole_body else (20, 40)
    boxes = []
    for joints in PART_JOINTS:
        rows, cols = [], []
        for joint in joints:
            if not present[joint]:
                continue
            row, col = keypoints_rc[joint]
            if joint == 0:
                row = max(0, row - (10 if whole_body else 25))
            rows.append(row)
            cols.append(col)
        if not rows:
            boxes.append([0, 0, 1, 1])
            continue
        pad = margin if len(rows) > 1 else single_margin
        boxes.append(_padded_box(rows, cols, pad, 255, 255))
    return np.array(boxes).astype(np.int64), np.array(visible, np.int64)


def roi10_mask(boxes: np.ndarray, visible: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """DeepFashion region masks (original ``get_roi_mask``): 5 small and 5 large regions.

    Each region mask is 1 outside and 0 inside its box (256 x 256 frame). When fewer than 5 regions
    of a group are visible, copies of visible ones (drawn uniformly by ``rng``; the original used
    the unseeded numpy generator) fill the group.

    Args:
        boxes: int64 [37, 4] from :func:`part_boxes_deepfashion`.
        visible: int64 [37] in {0, 1}, from the same.
        rng: draws the copies.

    Returns:
        uint8 [256, 256, 10] in {0, 1}.

    Raises:
        ValueError: no region of a group is visible (the original crashed there).
    """
    whole_body, groups = _roi_groups(visible)
    masks = []
    for group in groups:
        group_masks = []
        for parts in group:
            y1, x1, y2, x2 = 255, 255, 0, 0
            valid = False
            for part in parts:
                if not visible[part]:
                    continue
                valid = True
                py1, px1, py2, px2 = (int(v) for v in boxes[part])
                if part == 0:
                    py1 = max(0, py1 - (10 if whole_body else 20))
                elif part in (2, 3, 4, 5, 6, 35, 36):
                    py2 = min(255, py2 + 20)
                if not whole_body:
                    py1, px1 = max(0, py1 - 5), max(0, px1 - 5)
                    py2, px2 = min(255, py2 + 5), min(255, px2 + 5)
                y1, x1, y2, x2 = min(y1, py1), min(x1, px1), max(y2, py2), max(x2, px2)
            if valid:
                mask = np.ones((256, 256), np.uint8)
                mask[y1:y2, x1:x2] = 0
                group_masks.append(mask)
        if not group_masks:
            raise ValueError("no visible body region for the region masks")
        while len(group_masks) < 5:
            group_masks.append(group_masks[int(rng.integers(len(group_masks)))])
        masks.extend(group_masks)
    return np.stack(masks, axis=-1)


def _roi_groups(visible) -> tuple[bool, tuple]:
    whole_body = bool(visible[13] and visible[15])
    if whole_body:
        return True, (((0,), (3,), (4,), (5,), (6,)), ((1,), (2,), (35,), (36,), (0, 1)))
    return False, (((0,), (3,), (4,), (3,), (4,)), ((1,), (35,), (36,), (35,), (36,)))


def region_mask_problem(keypoints_rc: np.ndarray) -> str | None:
    """Why DeepFashion's region masks cannot be drawn for a pose (the original crashed there).

    Args:
        keypoints_rc: float [18, 2] (row, col) in the 256 x 256 image, -1 missing.

    Returns:
        ``"no visible body region for the region masks"`` when a group of regions has no
        visible part, else None.
    """
    _, visible = part_boxes_deepfashion(keypoints_rc)
    _, groups = _roi_groups(visible)
    for group in groups:
        if not any(visible[part] for parts in group for part in parts):
            return "no visible body region for the region masks"
    return None
