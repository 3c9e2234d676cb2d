"""Turning network tensors into the pictures the original wrote (numpy + Pillow, no TensorFlow).

Encodings, as in the original trainer's test():
- generated images (G, G1, DiffMap): clip((v + 1) * 127.5, 0, 255) then truncation to uint8
  (``astype``, not rounding);
- input images (x, x_target): ``v * 127.5 + 127.5`` in float32, truncated, the inverse of the
  reader's ``(pixel - 127.5) / 127.5``: it gives back every decoded JPEG value 0..255 exactly,
  where ``(v + 1) * 127.5`` would lose one grey level for 95 of the 256 values;
- pose maps (-1/+1, 18 channels): (max over channels + 1) * 127.5, truncated to uint8;
- masks (0/1): mask * 255.
"""

import math

import numpy as np
from PIL import Image

from pg2_tf.core import atomic


def to_uint8_image(values) -> np.ndarray:
    """Generated images in the [-1, 1] scale as the original wrote them.

    Args:
        values: float array ``(..., H, W, 3)``, [-1, 1] scale (values outside are clipped).

    Returns:
        uint8 array of the same shape: ``clip((v + 1) * 127.5, 0, 255)`` truncated; NaN -> 0.
    """
    scaled = np.nan_to_num((np.asarray(values, np.float32) + 1.0) * 127.5, nan=0.0)
    return np.clip(scaled, 0, 255).astype(np.uint8)


def input_to_uint8(values) -> np.ndarray:
    """Reader-normalised images back to the uint8 pixels they came from.

    The original's test: ``unprocess_image(x, 127.5, 127.5) = x * 127.5 + 127.5`` in float32,
    then ``astype(uint8)``. For ``x = (p - 127.5) / 127.5`` (float32) this returns ``p`` exactly
    for every p in 0..255.

    Args:
        values: float array ``(..., H, W, 3)`` in [-1, 1] (values outside are clipped).

    Returns:
        uint8 array of the same shape, 0..255; NaN -> 0.
    """
    half = np.float32(127.5)
    restored = np.nan_to_num(np.asarray(values, np.float32) * half + half, nan=0.0)
    return np.clip(restored, 0, 255).astype(np.uint8)


def pose_to_uint8(pose) -> np.ndarray:
    """Pose maps as one grey picture.

    Args:
        pose: float array ``(..., H, W, 18)`` in {-1, +1}.

    Returns:
        uint8 ``(..., H, W)``: 255 on any keypoint disc, 0 elsewhere (NaN counts as -1).
    """
    values = np.nan_to_num(np.asarray(pose, np.float32), nan=-1.0)
    return ((np.max(values, axis=-1) + 1.0) * 127.5).astype(np.uint8)


def mask_to_uint8(mask) -> np.ndarray:
    """Body masks as one grey picture.

    Args:
        mask: float array ``(..., H, W, 1)`` in {0, 1}.

    Returns:
        uint8 ``(..., H, W)`` in {0, 255} (NaN -> 0).
    """
    return (np.nan_to_num(np.asarray(mask, np.float32)[..., 0], nan=0.0) * 255).astype(np.uint8)


def save_png(array: np.ndarray, path: str) -> None:
    """Writes an image as PNG, whole or not at all (:mod:`pg2_tf.core.atomic`).

    Args:
        array: uint8 ``(H, W)`` (grey) or ``(H, W, 3)`` (RGB).
        path: the ``.png`` file; its folder must exist.

    Raises:
        OSError: the file cannot be written.
    """
    with atomic.replacing(path) as temporary:
        Image.fromarray(array).save(temporary, format="PNG")


def grid(images: np.ndarray, columns: int = 8, padding: int = 2) -> np.ndarray:
    """Tiles images into one picture, like the original's sample grids.

    Args:
        images: uint8 ``(N, H, W)`` or ``(N, H, W, C)``.
        columns: at most this many images a row.
        padding: black pixels around and between the images.

    Returns:
        uint8 ``(rows * (H + padding) + padding, min(columns, N) * (W + padding) + padding[, C])``,
        rows = ceil(N / columns); 2-D when the images have one channel or none.
    """
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    count, height, width, channels = images.shape
    columns = min(columns, count)
    rows = math.ceil(count / columns)
    canvas = np.zeros(
        (rows * (height + padding) + padding, columns * (width + padding) + padding, channels),
        np.uint8,
    )
    for index, image in enumerate(images):
        top = padding + (index // columns) * (height + padding)
        left = padding + (index % columns) * (width + padding)
        canvas[top : top + height, left : left + width] = image
    return canvas[..., 0] if channels == 1 else canvas
