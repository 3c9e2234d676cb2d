"""Image geometry of the BlazePose pipeline, as MediaPipe computes it: anchors, warps, box overlap.

:func:`ssd_anchors` are the person detector's anchor centres; :func:`warp_rect` resamples a rotated
square of a photo to a model's input exactly as MediaPipe's ImageToTensor (OpenCV's
``warpPerspective``) does; :func:`box_iou` is the overlap that non-maximum suppression and the
people finder compare. Rule: numpy only, no models and no I/O; the numbers are MediaPipe's own,
bit for bit where the models are sensitive to them.
"""

import functools

import numpy as np

# The person detector's input side: the photo letterboxed (or a window zoomed) to 224x224.
DETECTOR_SIZE = 224


@functools.cache
def ssd_anchors() -> np.ndarray:
    """The person detector's anchor centres, as MediaPipe's SsdAnchorsCalculator makes them.

    For pose_detection: 224x224, strides 8, 16, 32, 32, 32, two anchors per layer and location,
    layers of equal stride merged. Made once and kept.

    Returns:
      float32 [2254, 2]: the anchors' centres (x, y) in [0, 1] of the detector's input.
    """
    strides = (8, 16, 32, 32, 32)
    centres = []
    layer = 0
    while layer < len(strides):
        same = [s for s in strides[layer:] if s == strides[layer]]
        per_location = 2 * len(same)  # aspect ratio 1 + the interpolated scale, per layer
        size = int(np.ceil(DETECTOR_SIZE / strides[layer]))
        grid = (np.arange(size) + 0.5) / size
        ys, xs = np.meshgrid(grid, grid, indexing="ij")
        location = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(location, per_location, axis=0))
        layer += len(same)
    return np.concatenate(centres).astype(np.float32)


def warp_rect(image, centre_xy, size_wh, rotation, out_size: int, replicate: bool) -> np.ndarray:
    """A rotated rectangle of the photo resampled to out_size x out_size, as MediaPipe does it.

    MediaPipe's ImageToTensor on CPU maps the rectangle's corners (``cv::boxPoints``) to the
    output's corners 0 and out_size and resamples with OpenCV's ``warpPerspective`` (bilinear).
    This reproduces OpenCV's arithmetic: float32 corners, source positions rounded to 1/32 pixel,
    15-bit fixed-point weights, the result rounded to uint8; the BlazePose models are sensitive
    enough to sub-level differences that a plain float bilinear moves landmarks by pixels.

    Args:
      image: uint8 [H, W, C] (C = 3 for the models).
      centre_xy: the rectangle's centre (x, y) in photo pixels.
      size_wh: its (width, height) in photo pixels.
      rotation: radians; turns the rectangle clockwise in the image.
      out_size: the output's side in pixels.
      replicate: outside the photo, its edge pixels repeated (True) or black (False).

    Returns:
      float32 [out_size, out_size, C] with integer values in [0, 255].
    """
    image = np.asarray(image)
    height, width = image.shape[:2]
    f32 = np.float32
    cx, cy = f32(centre_xy[0]), f32(centre_xy[1])
    w, h = f32(size_wh[0]), f32(size_wh[1])
    angle = float(f32(f32(rotation) * f32(180.0)) / f32(np.pi)) * np.pi / 180.0
    b, a = f32(np.cos(angle)) * f32(0.5), f32(np.sin(angle)) * f32(0.5)
    p0 = (cx - a * h - b * w, cy + b * h - a * w)
    p1 = (cx + a * h - b * w, cy - b * h - a * w)
    p2 = (f32(2) * cx - p0[0], f32(2) * cy - p0[1])
    p3 = (f32(2) * cx - p1[0], f32(2) * cy - p1[1])
    source = np.array([p0, p1, p2, p3], np.float64)
    target = np.array([[0, out_size], [0, 0], [out_size, 0], [out_size, out_size]], np.float64)
    inverse = np.linalg.inv(_perspective_matrix(source, target))

    grid_y, grid_x = np.mgrid[0:out_size, 0:out_size].astype(np.float64)
    denominator = inverse[2, 0] * grid_x + inverse[2, 1] * grid_y + inverse[2, 2]
    scale = np.where(denominator != 0, _SUBPIXELS / np.where(denominator != 0, denominator, 1), 0)
    fixed_x = np.rint((inverse[0, 0] * grid_x + inverse[0, 1] * grid_y + inverse[0, 2]) * scale)
    fixed_y = np.rint((inverse[1, 0] * grid_x + inverse[1, 1] * grid_y + inverse[1, 2]) * scale)
    fixed_x, fixed_y = fixed_x.astype(np.int64), fixed_y.astype(np.int64)
    x0, y0 = fixed_x >> 5, fixed_y >> 5
    fx, fy = (fixed_x & 31).astype(np.int32), (fixed_y & 31).astype(np.int32)
    # Weights (32 - fx) * (32 - fy) * 32 etc.: exact 15-bit fixed point summing to 32768.
    weights = [
        (_SUBPIXELS - fx) * (_SUBPIXELS - fy) * 32,
        fx * (_SUBPIXELS - fy) * 32,
        (_SUBPIXELS - fx) * fy * 32,
        fx * fy * 32,
    ]
    flat = np.ascontiguousarray(image).reshape(-1, image.shape[2])
    total = np.full(fx.shape + (image.shape[2],), 1 << 14, np.int32)
    for weight, (dy, dx) in zip(weights, ((0, 0), (0, 1), (1, 0), (1, 1)), strict=True):
        xs, ys = x0 + dx, y0 + dy
        if not replicate:  # black outside the photo
            weight = weight * ((xs >= 0) & (xs < width) & (ys >= 0) & (ys < height))
        index = np.clip(ys, 0, height - 1) * width + np.clip(xs, 0, width - 1)
        total += np.take(flat, index, axis=0).astype(np.int32) * weight[..., None]
    return (total >> 15).astype(np.float32)


_SUBPIXELS = 32  # OpenCV's INTER_TAB_SIZE


def _perspective_matrix(source, target) -> np.ndarray:
    """The 3x3 homography taking the 4 source points to the 4 target points (as
    ``cv::getPerspectiveTransform``)."""
    system = np.zeros((8, 8))
    rhs = np.zeros(8)
    for i, ((x, y), (u, v)) in enumerate(zip(source, target, strict=True)):
        system[i] = (x, y, 1, 0, 0, 0, -x * u, -y * u)
        system[i + 4] = (0, 0, 0, x, y, 1, -x * v, -y * v)
        rhs[i], rhs[i + 4] = u, v
    return np.append(np.linalg.solve(system, rhs), 1.0).reshape(3, 3)


def box_iou(box, boxes) -> np.ndarray:
    """Intersection over union of one box with each of several boxes.

    Args:
      box: [4] (x0, y0, x1, y1).
      boxes: [N, 4] (x0, y0, x1, y1), in the same units.

    Returns:
      float64 [N] in [0, 1]; 0 where the union is empty.
    """
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    intersection = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = (box[2] - box[0]) * (box[3] - box[1]) + areas - intersection
    return np.where(union > 0, intersection / np.maximum(union, 1e-12), 0.0)
