"""Real pedestrian crops, Market-style, from OpenCV's sample video vtest.avi.

Every moving person of every ``every``-th frame, cut by background subtraction against the
video's empty street (``foreground_boxes`` and the median background of
tests/fixtures/any_side/make_fixture.py: no person detector is involved, so the crops do not
favour the people any detector finds), at 1.1 x the blob's height and Market's 1:2 aspect. Used by
``python -m benchmarks.from_release --real=pedestrians`` and ``benchmarks.keypoints``.

Needs Debian's ``opencv-doc`` (``/usr/share/doc/opencv-doc/examples/data/vtest.avi``).
"""

import functools
import importlib.util
import sys
from pathlib import Path

import numpy as np

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
FIXTURE_MAKER = (
    Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "any_side" / "make_fixture.py"
)


@functools.cache
def _maker():
    spec = importlib.util.spec_from_file_location("any_side_fixture", FIXTURE_MAKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def frames() -> tuple:
    """Every frame of vtest.avi: uint8 [576, 768, 3] each (read once, kept)."""
    import imageio.v3 as iio

    if not VTEST.is_file():
        sys.exit(f"{VTEST} is missing: apt-get install opencv-doc")
    return tuple(iio.imiter(VTEST, plugin="FFMPEG"))


def foreground_boxes(frame, empty) -> list:
    """The moving people of one frame: ``(x, y, w, h)`` boxes (make_fixture.py's)."""
    return _maker().foreground_boxes(frame, empty)


def empty_street() -> np.ndarray:
    """uint8 [576, 768, 3]: the per-pixel median of every 25th frame (nobody in it)."""
    return _maker().empty_street(frames())


def pedestrian_crops(every: int = 10, img_H: int = 128, img_W: int = 64) -> list:
    """Crops of every moving person of every ``every``-th frame.

    Args:
      every: frame step.
      img_H, img_W: the crop size (Market: 128 x 64).

    Returns:
      list of ``(frame index, box_xywh, uint8 [img_H, img_W, 3])``.
    """
    empty = empty_street()
    crops = []
    for index in range(0, len(frames()), every):
        frame = frames()[index]
        for x, y, w, h in foreground_boxes(frame, empty):
            if y <= 1 or x <= 1 or y + h >= frame.shape[0] - 1 or x + w >= frame.shape[1] - 1:
                continue  # cut by the frame's edge
            crop = _maker().market_crop(frame, (x, y, w, h), img_H, img_W)
            crops.append((index, (x, y, w, h), crop))
    return crops
