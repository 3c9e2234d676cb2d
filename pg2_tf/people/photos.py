"""A user's photo as the models need it: decoding any photo file, and cropping it to the person.

:func:`load_photo` / :func:`decode_photo` turn whatever a user has (a phone JPEG with an EXIF
rotation, a 16-bit or grey PNG, a palette GIF, an RGBA PNG) into uint8 RGB the way an image viewer
shows it. Anything that is not a readable image, or one over Pillow's decompression-bomb limit,
becomes a :class:`~pg2_tf.core.errors.DataError` naming the file.

:func:`person_crop` cuts the person's box out of a photo at a model's aspect ratio and returns the
:class:`Crop` that carries keypoints between the photo and the crop; :func:`person_in_model_frame`
does that for a person the estimator found. :func:`fit_to_model` scales and pads a whole image to
the model's size instead (:func:`restore_input_size` undoes it), and :func:`load_keypoints` reads a
target pose from a keypoint file (OpenPose JSON or annotation CSV). No TensorFlow here: Pillow and
numpy only, so the web app and the keypoint estimator load fast.
"""

import dataclasses
import io
import os
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from pg2_tf.core import pose, pose_files
from pg2_tf.core.errors import ConfigError, DataError
from pg2_tf.records import annotations

_WHITE = (255, 255, 255)


def load_photo(path_or_file) -> np.ndarray:
    """Reads a photo file as a viewer shows it.

    EXIF orientation is applied (the photo comes out upright); 16-bit images are scaled to 8 bits
    (65535 -> 255), palette and grey images become RGB, and transparency is composited on white.

    Args:
      path_or_file: a path, or a binary file object (named by its ``name`` in messages).

    Returns:
      uint8 RGB [H, W, 3] in [0, 255].

    Raises:
      DataError: naming the file when it does not exist, is not an image Pillow can read, is
        truncated, or is over Pillow's decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``).
    """
    if isinstance(path_or_file, (str, os.PathLike)):
        name = os.fspath(path_or_file)
        if not os.path.isfile(name):
            raise DataError(f"photo {name} does not exist")
    else:
        name = getattr(path_or_file, "name", "photo")
    return _decode(path_or_file, name)


def decode_photo(data: bytes, name: str = "upload") -> np.ndarray:
    """The bytes of a photo file (e.g. a web upload), decoded as :func:`load_photo` does.

    Args:
      data: the file's bytes.
      name: names the photo in the error message.

    Returns:
      uint8 RGB [H, W, 3] in [0, 255].
    """
    return _decode(io.BytesIO(data), name)


def _decode(source, name: str) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            # Between 1x and 2x MAX_IMAGE_PIXELS Pillow only warns; refuse those too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as image:
                image.load()
                return _to_rgb(_upright(image))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise DataError(
            f"{name} is too large to decode safely ({error}); resize it below "
            f"{Image.MAX_IMAGE_PIXELS} pixels"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DataError(f"{name} is not an image file Pillow can read ({error})") from None


def _upright(image: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, KeyError, TypeError):
        return image  # a damaged EXIF block: show the pixels as stored, like most viewers


def _to_rgb(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode.startswith("I;16") or mode == "I":
        # 16-bit grey (PNG, TIFF): Pillow's convert("RGB") clips at 255, i.e. all white.
        values = np.asarray(image, dtype=np.float64)
        if mode == "I" and values.max(initial=0) <= 255:
            scale = 1.0  # an 8-bit image stored as 32-bit integers
        else:
            scale = 255.0 / 65535.0
        grey = np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "F":
        values = np.asarray(image, dtype=np.float64)
        scale = 255.0 if values.max(initial=0) <= 1.0 else 1.0
        grey = np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    elif mode in ("LA", "PA", "La"):
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "RGBa"):
        background = Image.new("RGB", image.size, _WHITE)
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        image = background
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def video_frames(path, flag: str = "--video", default_fps: float = 10.0):
    """The frames of a video file (anything ffmpeg reads, through imageio).

    Args:
      path: the video file.
      flag: the flag it came from, for messages.
      default_fps: the frame rate when the file has none.

    Returns:
      ``(frames, total, fps)``: an iterator of ``(name, uint8 [H, W, 3])`` named ``"<path> frame
      <i>"`` (decoded as read), the frame count from the duration (None: unknown), the rate.

    Raises:
      DataError: naming ``flag``: no such file, a folder, unreadable, or cut short (an AVI).
    """
    import imageio.v3 as iio

    path = os.fspath(path)
    if os.path.isdir(path) or not os.path.exists(path):
        what = "is a folder" if os.path.isdir(path) else "does not exist"
        raise DataError(f"{flag}={path} {what}; give a video file")
    try:
        meta = iio.immeta(path, plugin="FFMPEG")
    except Exception as error:  # imageio raises many kinds for a file ffmpeg cannot read
        raise DataError(
            f"{flag}={path} is not a video ffmpeg can read, or is cut short (no frame could be "
            f"read: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"
        ) from None
    fps = float(meta.get("fps") or default_fps)
    duration = meta.get("duration")
    total = round(duration * fps) if duration else None
    announced = _avi_frames(path)
    if announced and total and total < announced:
        raise DataError(
            f"{flag}={path} is cut short: {total} of the {announced} frames its header announces "
            "could be read; copy the whole file again, or cut it to the frames read"
        )
    frames = iio.imiter(path, plugin="FFMPEG")
    return ((f"{path} frame {index}", frame) for index, frame in enumerate(frames)), total, fps


def _avi_frames(path) -> int | None:
    """The frame count an AVI file's main header (``avih``: dwTotalFrames) announces."""
    with open(path, "rb") as handle:
        head = handle.read(256)
    start = head.find(b"avih")
    if head[:4] != b"RIFF" or head[8:12] != b"AVI " or start < 0 or len(head) < start + 28:
        return None
    return int.from_bytes(head[start + 24 : start + 28], "little") or None


@dataclasses.dataclass(frozen=True)
class Crop:
    """Maps photo pixel coordinates to the pixel coordinates of a crop resized for a model.

    Pixel centres are at integer coordinates in both frames; crop pixel ``j`` covers photo columns
    ``x0 + j / scale`` to ``x0 + (j + 1) / scale``.
    """

    x0: float  # left edge of the crop box in the photo (may be outside the photo)
    y0: float  # top edge
    scale: float  # model pixels per photo pixel
    out_H: int
    out_W: int

    def to_crop_rc(self, keypoints_rc) -> np.ndarray:
        """Photo (row, col) [N, 2] -> crop (row, col) float64 [N, 2]; -1 (missing) stays -1, and
        a joint that falls outside the crop becomes -1."""
        keypoints_rc = np.asarray(keypoints_rc, dtype=np.float64)
        missing = np.any(keypoints_rc < 0, axis=-1)
        rows = (keypoints_rc[..., 0] + 0.5 - self.y0) * self.scale - 0.5
        cols = (keypoints_rc[..., 1] + 0.5 - self.x0) * self.scale - 0.5
        outside = (rows < -0.5) | (rows >= self.out_H - 0.5) | (cols < -0.5)
        outside |= cols >= self.out_W - 0.5
        out = np.stack([rows, cols], axis=-1)
        out[missing | outside] = -1.0
        return out

    def to_photo_rc(self, keypoints_rc) -> np.ndarray:
        """Crop (row, col) [N, 2] -> photo (row, col) float64 [N, 2]; -1 (missing) stays -1."""
        keypoints_rc = np.asarray(keypoints_rc, dtype=np.float64)
        missing = np.any(keypoints_rc < 0, axis=-1)
        rows = (keypoints_rc[..., 0] + 0.5) / self.scale + self.y0 - 0.5
        cols = (keypoints_rc[..., 1] + 0.5) / self.scale + self.x0 - 0.5
        out = np.stack([rows, cols], axis=-1)
        out[missing] = -1.0
        return out


def person_crop(image, box_xyxy, out_H: int, out_W: int, margin: float = 0.1):
    """Crops a photo to a person's box at a model's aspect ratio and resizes it to the model.

    Args:
      image: uint8 [H, W, 3] photo.
      box_xyxy: (x0, y0, x1, y1) the person's box in photo pixels (edges; may leave the photo).
      out_H, out_W: the model's image size, e.g. 128x64 (Market, 1:2) or 256x256 (DeepFashion).
      margin: the box grows by this fraction of its width/height on each side.

    Returns:
      (crop, transform): uint8 [out_H, out_W, 3], and the :class:`Crop` from photo to crop pixels.
      The box is grown (never shrunk) to out_H:out_W around its centre; where it leaves the photo
      the photo's edge pixels are repeated.
    """
    image = np.asarray(image)
    x0, y0, x1, y1 = (float(v) for v in box_xyxy)
    if not (x1 > x0 and y1 > y0):
        raise DataError(f"person box {box_xyxy} is empty")
    width, height = (x1 - x0) * (1 + 2 * margin), (y1 - y0) * (1 + 2 * margin)
    centre_x, centre_y = (x0 + x1) / 2, (y0 + y1) / 2
    if height / width > out_H / out_W:
        width = height * out_W / out_H
    else:
        height = width * out_H / out_W
    left, top = centre_x - width / 2, centre_y - height / 2
    transform = Crop(x0=left, y0=top, scale=out_W / width, out_H=out_H, out_W=out_W)

    photo_h, photo_w = image.shape[:2]
    pad_left = max(0, int(np.ceil(-left)) + 1)
    pad_top = max(0, int(np.ceil(-top)) + 1)
    pad_right = max(0, int(np.ceil(left + width - photo_w)) + 1)
    pad_bottom = max(0, int(np.ceil(top + height - photo_h)) + 1)
    padded = np.pad(
        image[:, :, :3], ((pad_top, pad_bottom), (pad_left, pad_right), (0, 0)), mode="edge"
    )
    box = (left + pad_left, top + pad_top, left + pad_left + width, top + pad_top + height)
    crop = Image.fromarray(padded).resize((out_W, out_H), Image.Resampling.BILINEAR, box=box)
    return np.asarray(crop, dtype=np.uint8), transform


# ---- keypoint files ----------------------------------------------------------------------------


def load_keypoints(path, row_name: str | None = None) -> np.ndarray:
    """Reads one pose from an OpenPose JSON file or a Pose-Transfer annotation CSV.

    Args:
        path: ``*.json`` (:func:`pg2_tf.core.pose_files.read_openpose_json`: COCO-18, BODY_25 or
            MS COCO's 17 keypoints) or ``*.csv``
            (:func:`pg2_tf.records.annotations.read_annotations`: the header
            ``name:keypoints_y:keypoints_x``, COCO-18; a name listed twice keeps its first row).
        row_name: the CSV row's name (its first field); None takes the only row of a one-row CSV.

    Returns:
        float64 [18, 2]: (row, col) pixel coordinates, -1 for missing joints.

    Raises:
        DataError: missing/unreadable file, unknown type, no person
            (:class:`pg2_tf.core.pose_files.NoPersonInKeypoints`), an unknown joint count, a value
            that is not a finite number, no such row.
        ConfigError: row_name given for a JSON file, or missing for a CSV with several rows.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(f"keypoint file {path} does not exist (--keypoints)")
    extension = os.path.splitext(path)[1].lower()
    if extension == ".json":
        if row_name is not None:
            raise ConfigError("--keypoints_row only applies to .csv annotation files")
        return pose_files.read_openpose_json(path)
    if extension != ".csv":
        raise DataError(
            f"keypoint file {path} is neither .json (OpenPose) nor .csv ({annotations.HEADER})"
        )
    rows = annotations.read_annotations(path)
    if row_name is None:
        if len(rows) != 1:
            raise ConfigError(
                f"{path} has {len(rows)} rows: choose one with --keypoints_row=<name>"
            )
        row_name = next(iter(rows))
    if row_name not in rows:
        examples = ", ".join(list(rows)[:3])
        raise DataError(f"{path} has no row named {row_name!r} (--keypoints_row); e.g. {examples}")
    keypoints_rc = rows[row_name].copy()
    keypoints_rc[pose.missing_joints(keypoints_rc)] = pose.MISSING
    return keypoints_rc


# ---- a whole image in the model's frame --------------------------------------------------------


def load_image(path) -> np.ndarray:
    """Reads ``--image`` as :func:`load_photo` does.

    Args:
      path: the photo file.

    Returns:
      uint8 RGB [H, W, 3] in [0, 255], upright and 8-bit.

    Raises:
      DataError: it is missing (naming ``--image``) or not an image.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(f"image {path} does not exist (--image)")
    return load_photo(path)


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where an input image lies inside the model's frame after :func:`fit_to_model`."""

    input_size: tuple  # (h, w) of the input image
    scaled_size: tuple  # (h, w) after scaling
    offset: tuple  # (top, left) padding
    model_size: tuple  # (H, W)

    def describe(self) -> str:
        """One line saying what was done to the image."""
        (h, w), (sh, sw), (H, W) = self.input_size, self.scaled_size, self.model_size
        if self.input_size == self.model_size:
            return f"image is {h}x{w}, the model's size: used as is"
        top, left = self.offset
        text = f"image {h}x{w}"
        if self.scaled_size != self.input_size:
            text += f" resized to {sh}x{sw} (aspect kept)"
        if self.scaled_size != self.model_size:
            bottom, right = H - sh - top, W - sw - left
            text += (
                f", padded to {H}x{W} (top {top}, bottom {bottom}, left {left}, right {right}) "
                "by repeating its edge pixels"
            )
        return text + "; keypoints moved the same way"


def fit_to_model(
    image: np.ndarray, keypoints_rc: np.ndarray, img_H: int, img_W: int
) -> tuple[np.ndarray, np.ndarray, Placement]:
    """Scales (aspect kept) and pads an image to the model's size; moves the keypoints along.

    Args:
        image: uint8 [h, w, 3].
        keypoints_rc: [18, 2] (row, col) in the image's pixels, -1 missing.
        img_H, img_W: the model's size.

    Returns:
        ``(image, keypoints, placement)``: uint8 [img_H, img_W, 3]; float32 [18, 2] in the model
        frame (-1 kept for missing joints); the :class:`Placement`. A joint marks the pixel
        trunc(coordinate), as the original converters read it; that pixel's centre is mapped
        and the new joint is the pixel it lands in (so scale 1 is a pure integer shift).
    """
    h, w = image.shape[:2]
    scale = min(img_H / h, img_W / w)
    scaled_h = min(img_H, max(1, round(h * scale)))
    scaled_w = min(img_W, max(1, round(w * scale)))
    if (scaled_h, scaled_w) != (h, w):
        image = np.asarray(
            Image.fromarray(image).resize((scaled_w, scaled_h), Image.Resampling.BICUBIC)
        )
    top, left = (img_H - scaled_h) // 2, (img_W - scaled_w) // 2
    image = np.pad(
        image,
        ((top, img_H - scaled_h - top), (left, img_W - scaled_w - left), (0, 0)),
        mode="edge",
    )

    keypoints_rc = np.asarray(keypoints_rc, np.float64)
    missing = np.any(keypoints_rc == pose.MISSING, axis=1)
    factors = np.array([scaled_h / h, scaled_w / w])
    centers = (np.trunc(keypoints_rc) + 0.5) * factors - 0.5
    moved = np.floor(centers + 0.5) + np.array([top, left])
    moved[missing] = pose.MISSING
    placement = Placement((h, w), (scaled_h, scaled_w), (top, left), (img_H, img_W))
    return image, moved.astype(np.float32), placement


def restore_input_size(image: np.ndarray, placement: Placement) -> np.ndarray:
    """Undoes :func:`fit_to_model` on a model output: the padding cropped off, the input's size.

    Args:
      image: uint8 [img_H, img_W, 3], in the model's frame.
      placement: the :class:`Placement` :func:`fit_to_model` returned for the input.

    Returns:
      uint8 [h, w, 3] at the input image's size (bicubic when it was scaled).
    """
    (top, left), (scaled_h, scaled_w) = placement.offset, placement.scaled_size
    cropped = image[top : top + scaled_h, left : left + scaled_w]
    h, w = placement.input_size
    if (scaled_h, scaled_w) == (h, w):
        return np.ascontiguousarray(cropped)
    return np.asarray(Image.fromarray(cropped).resize((w, h), Image.Resampling.BICUBIC))


# ---- a photo's person in the model's frame -----------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PersonInFrame:
    """A photo's person brought into the model's frame by :func:`person_in_model_frame`."""

    image: np.ndarray  # uint8 [img_H, img_W, 3]: the photo cropped to the person's box
    keypoints_rc: np.ndarray  # float32 [18, 2] (row, col) in the crop, -1 missing
    crop: Crop  # maps photo pixels to the crop's


def person_in_model_frame(photo, person, img_H: int, img_W: int) -> PersonInFrame:
    """Crops a photo to its person at the model's size and carries the keypoints along.

    Args:
        photo: uint8 [h, w, 3] RGB (any size, a full scene is fine).
        person: the :class:`pg2_tf.people.blazepose.PersonKeypoints` the estimator found in it.
        img_H, img_W: the model's size; the crop has its aspect ratio (Market 1:2, DeepFashion 1:1).

    Returns:
        :class:`PersonInFrame`: the crop (:func:`person_crop` of the person's box) and the
        person's keypoints in it (joints outside the crop missing).
    """
    image, crop = person_crop(photo, person.box_xyxy, img_H, img_W)
    keypoints_rc = crop.to_crop_rc(person.keypoints_rc()).astype(np.float32)
    return PersonInFrame(image, keypoints_rc, crop)


def find_person(path, estimator):
    """Loads a photo and finds its person.

    Args:
      path: the photo file.
      estimator: called as ``estimator(photo, name=path)`` -> PersonKeypoints (a
        :class:`pg2_tf.people.blazepose.KeypointEstimator` or a
        :class:`pg2_tf.people.finder.PersonPicker`).

    Returns:
      ``(photo, person)``: uint8 RGB [h, w, 3] and the person's PersonKeypoints.

    Raises:
      DataError: an unreadable photo, or NoPersonFound (naming the photo).
    """
    photo = load_photo(path)
    return photo, estimator(photo, name=os.fspath(path))
