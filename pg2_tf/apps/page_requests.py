"""The pictures and poses of pg2-app's requests and answers, as plain values (no HTTP here).

PNG data URLs in and out, keypoints from a request's JSON, the standing pose a photo gets without
the estimator, and the people a photo of several offers to choose from. Bad input raises
:class:`RequestError`, which the page's routes answer with its HTTP status and one line.

Rule: plain values in, plain values out; nothing here loads the model or TensorFlow.
"""

import base64
import binascii
import dataclasses
import io

import numpy as np
from PIL import Image

from pg2_tf.core import pose
from pg2_tf.core.errors import DataError
from pg2_tf.people import finder

# A standing person facing the camera in a 128x64 frame, (row, col), COCO-18 order: the pose a
# photo gets when no estimator is installed, and where a re-added joint appears.
_STANDING_128x64 = (
    (20, 32), (30, 32), (30, 22), (50, 20), (70, 18), (30, 42), (50, 44), (70, 46), (70, 26),
    (95, 26), (120, 26), (70, 38), (95, 38), (120, 38), (18, 30), (18, 34), (19, 28), (19, 36),
)  # fmt: skip

# The photo sent back for choosing a person is at most this wide or high (the page shows it
# small; the outlines are in the photo's own pixels).
CHOOSER_SIZE = 800


class RequestError(DataError):
    """Bad input in a request; ``status`` is the HTTP status it is answered with."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


def png_data_url(image: np.ndarray) -> str:
    """Encodes a picture as a lossless PNG data URL.

    Args:
        image: uint8 ``[H, W]`` or ``[H, W, 3]``, 0-255.

    Returns:
        ``data:image/png;base64,...``; decoding it gives ``image`` back exactly.
    """
    buffer = io.BytesIO()
    # zlib level 1: a 256x256 output in 7 ms against 52 ms at Pillow's default 6, for 18 % more
    # bytes, which a local page does not feel (3 images an answer: 135 ms of DeepFashion's ~1 s).
    Image.fromarray(np.asarray(image, np.uint8)).save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def image_from_data_url(url, img_H: int, img_W: int) -> np.ndarray:
    """The model-size source image a request carries.

    Args:
        url: the request's ``image`` (any JSON value); a PNG data URL of the model's size is
            accepted.
        img_H, img_W: the model's size in pixels.

    Returns:
        uint8 ``[img_H, img_W, 3]``, 0-255 (RGB).

    Raises:
        RequestError: (422) ``url`` is not a PNG data URL of exactly img_H x img_W pixels.
    """
    prefix = "data:image/png;base64,"
    if not isinstance(url, str) or not url.startswith(prefix):
        raise RequestError("'image' must be a PNG data URL (data:image/png;base64,...)")
    unreadable = RequestError("'image' is not a readable PNG: upload the photo again")
    try:
        png = base64.b64decode(url[len(prefix) :], validate=True)
        with Image.open(io.BytesIO(png)) as picture:
            if picture.format != "PNG":
                raise unreadable
            width, height = picture.size
            if (height, width) != (img_H, img_W):  # checked before decoding the pixels
                raise RequestError(
                    f"'image' is {height}x{width} pixels, the model takes {img_H}x{img_W}: "
                    "upload the photo again"
                )
            return np.asarray(picture.convert("RGB"))
    except (binascii.Error, OSError, ValueError, Image.DecompressionBombError):
        raise unreadable from None


def keypoints_from_request(value, field: str = "keypoints") -> np.ndarray:
    """The target pose a request carries.

    Args:
        value: the request's ``keypoints`` (any JSON value): 18 ``[row, col]`` pairs of Python
            numbers (not booleans or strings), ``[-1, -1]`` for a missing joint.
        field: the request's field, for the message (``keypoints`` or ``source_keypoints``).

    Returns:
        float32 ``[18, 2]`` (row, col) in the model frame's pixels; a joint with a -1 row or
        column becomes ``[-1, -1]`` (missing).

    Raises:
        RequestError: (422) anything else, or numbers that are not finite.
    """

    def is_pair(item) -> bool:
        return (
            isinstance(item, list)
            and len(item) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in item)
        )

    try:  # Python numbers only: not booleans, strings or nested lists
        pairs = isinstance(value, list) and len(value) == pose.NUM_KEYPOINTS
        keypoints = np.asarray(value, np.float64) if pairs and all(map(is_pair, value)) else None
    except OverflowError:  # an integer beyond float64
        keypoints = np.full((pose.NUM_KEYPOINTS, 2), np.inf)
    if keypoints is None:
        raise RequestError(f"'{field}' must be {pose.NUM_KEYPOINTS} [row, col] pairs")
    if not np.all(np.isfinite(keypoints)):
        raise RequestError(f"'{field}' must be finite numbers ([-1, -1] for a missing joint)")
    keypoints[pose.missing_joints(keypoints)] = pose.MISSING
    return keypoints.astype(np.float32)


@dataclasses.dataclass(frozen=True)
class GenerationOptions:
    """How a generation request wants its answer (issue 32's options)."""

    proportions: str = "target"  # "source": the source person's bone lengths; "target": as given
    background: str = "generated"  # "source": the source photo's background kept
    source_keypoints: np.ndarray | None = None  # float32 [18, 2]: the source person's own pose


def generation_options(document: dict) -> GenerationOptions:
    """The options of a generation request.

    Args:
        document: the request's JSON object; ``proportions`` (``target``, default, or
            ``source``), ``background`` (``generated``, default, or ``source``) and
            ``source_keypoints`` (as ``keypoints``; needed by either ``source``).

    Returns:
        :class:`GenerationOptions`.

    Raises:
        RequestError: (422) an unknown value, or ``source_keypoints`` missing or malformed where
            it is needed.
    """
    proportions = document.get("proportions", "target")
    background = document.get("background", "generated")
    if proportions not in ("source", "target"):
        raise RequestError('\'proportions\' must be "source" or "target"')
    if background not in ("generated", "source"):
        raise RequestError('\'background\' must be "generated" or "source"')
    source_keypoints = None
    if "source" in (proportions, background):
        source_keypoints = keypoints_from_request(
            document.get("source_keypoints"), "source_keypoints"
        )
    return GenerationOptions(proportions, background, source_keypoints)


def standing_pose(img_H: int, img_W: int) -> np.ndarray:
    """A standing person facing the camera, filling the height of the model's frame.

    Args:
        img_H, img_W: the model's size in pixels (the template is drawn for 128x64 and scaled by
            ``img_H / 128``, centred in the width).

    Returns:
        float32 ``[18, 2]`` (row, col), whole pixels inside the ``img_H x img_W`` frame.
    """
    template = np.asarray(_STANDING_128x64, np.float64)
    scale = img_H / 128
    rows = template[:, 0] * scale
    cols = img_W / 2 + (template[:, 1] - 32) * scale
    return np.floor(np.stack([rows, cols], axis=1)).astype(np.float32)


def keypoints_json(keypoints_rc) -> list:
    """Keypoints as the page's JSON holds them.

    Args:
        keypoints_rc: ``[18, 2]`` (row, col) numbers, -1 missing.

    Returns:
        18 ``[row, col]`` lists of Python floats.
    """
    return [[float(row), float(col)] for row, col in np.asarray(keypoints_rc)]


def people_to_choose(photo: np.ndarray, found) -> dict:
    """What the page needs to let the user pick one of several people in a photo.

    Args:
        photo: the uploaded photo, uint8 ``[H, W, 3]``.
        found: the people of the photo as :func:`pg2_tf.people.finder.find_people` lists them
            (largest first).

    Returns:
        ``{"people": [{"index", "box": [x0, y0, x1, y1]}], "photo": JPEG data URL (at most
        :data:`CHOOSER_SIZE` pixels wide or high), "width": W, "height": H}``; each box (the
        joints' box grown by a tenth, a fifth at the top) is in the photo's own pixels, clipped to
        ``[0, W] x [0, H]``, rounded to 0.1.
    """
    height, width = photo.shape[:2]
    listed = []
    for index, person in enumerate(found):
        x0, y0, x1, y1 = finder.joints_box(person)
        grow_x, grow_y = 0.1 * (x1 - x0) + 2, 0.1 * (y1 - y0) + 2
        # The top joints are the eyes and ears: the head reaches higher.
        box = [max(0.0, x0 - grow_x), max(0.0, y0 - 2 * grow_y)]
        box += [min(float(width), x1 + grow_x), min(float(height), y1 + grow_y)]
        listed.append({"index": index, "box": [round(v, 1) for v in box]})
    picture = Image.fromarray(photo)
    picture.thumbnail((CHOOSER_SIZE, CHOOSER_SIZE))
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=85)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return {
        "people": listed,
        "photo": f"data:image/jpeg;base64,{data}",
        "width": width,
        "height": height,
    }
