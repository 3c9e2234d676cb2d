"""Generating a person image in a new pose with an exported SavedModel (see :mod:`pg2_tf.export`).

    python -m pg2_tf.generate --saved_model=exported/market --image=person.jpg \
        --keypoints=target_pose.json --out=out.png

``--keypoints`` gives the TARGET pose, in the pixel coordinates of ``--image``:

* an OpenPose JSON file (``*.json``): ``people[0].pose_keypoints_2d`` (or the older
  ``pose_keypoints``), x, y, confidence triples; confidence 0 is a missing joint. 18 joints are
  OpenPose's COCO model, 25 its BODY_25 (MidHip and feet dropped), 17 MS COCO's keypoints (neck =
  mean of the shoulders); values must be finite numbers;
* a Pose-Transfer annotation CSV (``*.csv``, ``name:keypoints_y:keypoints_x`` with lists of 18
  integers, -1 missing), row chosen with ``--keypoints_row=<name>`` (optional when it has one row).

An image of another size than the model's is scaled, keeping its aspect ratio, until it fits the
model's size exactly in one dimension, then centred and padded to the model's size by repeating its
edge pixels (a plain border, close to the backgrounds the model was trained on); the keypoints get
the same scale and offset. The output is the model's size, or with ``--restore_size`` the padding is
cropped away and the result resized back to the input image's size. Joints outside the image are
left out with a warning naming them; a pose with no joint inside it is refused.

``--pose_from=PHOTO`` takes the target pose from another person's photo instead: BlazePose
(:mod:`pg2_tf.keypoints`) finds the person in both photos, each photo is cropped to its person's
box at the model's aspect ratio (:func:`pg2_tf.photos.person_crop`), and the target keypoints are
carried into the model's frame; the output is the model's size. A photo without a person is
refused in one line naming it.
"""

import dataclasses
import json
import os
import sys

import numpy as np
from absl import flags
from PIL import Image

from pg2_tf import cli, photos, pose
from pg2_tf.errors import CheckpointError, ConfigError, DataError

NUM_KEYPOINTS = 18
MISSING = -1.0
KEYPOINTS_SIGNATURE = "from_keypoints"
OUTPUT_NAMES = ("G1", "G2", "diff_map")


# ---- keypoint files ----------------------------------------------------------------------------


class NoPersonInKeypoints(DataError):
    """An OpenPose JSON file whose 'people' list is empty (OpenPose found nobody in the frame)."""


def load_keypoints(path, row_name: str | None = None) -> np.ndarray:
    """Reads one pose from an OpenPose JSON file or a Pose-Transfer annotation CSV.

    Args:
        path: ``*.json`` (OpenPose ``people[0].pose_keypoints_2d``: x, y, confidence triples of
            the COCO-18 or BODY_25 model, or MS COCO's 17 keypoints; the format is told by the
            count, see :func:`pg2_tf.pose.keypoints_from_triples`) or ``*.csv``
            (``name:keypoints_y:keypoints_x``, COCO-18).
        row_name: the CSV row's name (its first field); None takes the only row of a one-row CSV.

    Returns:
        float64 [18, 2]: (row, col) pixel coordinates, -1 for missing joints.

    Raises:
        DataError: missing/unreadable file, unknown type, no person, an unknown joint count, a
            value that is not a finite number, no such row.
        ConfigError: row_name given for a JSON file, or missing for a CSV with several rows.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(f"keypoint file {path} does not exist (--keypoints)")
    extension = os.path.splitext(path)[1].lower()
    if extension == ".json":
        if row_name is not None:
            raise ConfigError("--keypoints_row only applies to .csv annotation files")
        return _keypoints_from_openpose_json(path)
    if extension == ".csv":
        return _keypoints_from_annotation_csv(path, row_name)
    raise DataError(
        f"keypoint file {path} is neither .json (OpenPose) nor .csv (name:keypoints_y:keypoints_x)"
    )


def _keypoints_from_openpose_json(path: str) -> np.ndarray:
    try:
        with open(path, encoding="utf-8") as f:
            document = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise DataError(f"{path} is not a readable JSON file: {error}") from None
    people = document.get("people") if isinstance(document, dict) else None
    if not isinstance(people, list):
        raise DataError(f"{path} is not an OpenPose result: it has no 'people' list")
    if not people:
        raise NoPersonInKeypoints(f"{path}: OpenPose found no person ('people' is empty)")
    person = people[0]
    if not isinstance(person, dict):
        raise DataError(f"{path}: people[0] must be an object holding pose_keypoints_2d")
    key = "pose_keypoints_2d" if "pose_keypoints_2d" in person else "pose_keypoints"
    values = person.get(key)
    if not isinstance(values, list) or len(values) % 3:
        raise DataError(
            f"{path}: people[0].pose_keypoints_2d must be a list of x, y, confidence triples"
        )
    for index, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise DataError(
                f"{path}: people[0].{key}[{index}] is {value!r}, not a number (x, y, confidence "
                "triples of numbers)"
            )
    triples = np.asarray(values, np.float64).reshape(-1, 3)
    _check_finite(path, triples, f"people[0].{key}")
    try:
        return pose.keypoints_from_triples(triples)
    except ValueError as error:
        raise DataError(
            f"{path} has {error}; OpenPose --model_pose COCO or BODY_25 and MS COCO keypoint "
            "results are read"
        ) from None


def _check_finite(path: str, values: np.ndarray, where: str) -> None:
    bad = np.flatnonzero(~np.isfinite(values.reshape(-1)))
    if bad.size:
        raise DataError(
            f"{path}: {where} holds {values.reshape(-1)[bad[0]]} at position {bad[0]} "
            f"({bad.size} value(s) not finite): every coordinate must be a finite number"
        )


def _keypoints_from_annotation_csv(path: str, row_name: str | None) -> np.ndarray:
    try:
        with open(path, encoding="utf-8") as f:
            lines = [line.strip() for line in f if line.strip()]
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path} is not a readable text file: {error}") from None
    if lines and lines[0].replace(" ", "") == "name:keypoints_y:keypoints_x":
        lines = lines[1:]
    rows = {}
    for number, line in enumerate(lines, start=1):
        fields = line.split(":")
        if len(fields) != 3:
            raise DataError(
                f"{path} line {number}: expected 'name: [rows]: [cols]' (name:keypoints_y:"
                "keypoints_x, the Pose-Transfer annotation format)"
            )
        rows[fields[0].strip()] = (number, fields[1], fields[2])
    if row_name is None:
        if len(rows) != 1:
            raise ConfigError(
                f"{path} has {len(rows)} rows: choose one with --keypoints_row=<name>"
            )
        row_name = next(iter(rows))
    if row_name not in rows:
        examples = ", ".join(list(rows)[:3])
        raise DataError(f"{path} has no row named {row_name!r} (--keypoints_row); e.g. {examples}")
    number, rows_text, cols_text = rows[row_name]
    try:
        row_values, col_values = json.loads(rows_text), json.loads(cols_text)
    except ValueError:
        raise DataError(f"{path} row {row_name!r}: keypoints are not lists of numbers") from None
    if len(row_values) != NUM_KEYPOINTS or len(col_values) != NUM_KEYPOINTS:
        raise DataError(
            f"{path} row {row_name!r} has {len(row_values)} rows and {len(col_values)} columns, "
            f"PG2 needs {NUM_KEYPOINTS} keypoints (COCO-18 order)"
        )
    try:
        keypoints_rc = np.stack([row_values, col_values], axis=1).astype(np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{path} row {row_name!r}: keypoints are not lists of numbers") from None
    _check_finite(path, keypoints_rc, f"row {row_name!r}")
    keypoints_rc[np.any(keypoints_rc == MISSING, axis=1)] = MISSING
    return keypoints_rc


def keep_joints_inside(keypoints_rc, height: int, width: int, source: str, warn) -> np.ndarray:
    """Drops (marks missing) the joints outside a ``height`` x ``width`` image.

    Args:
        keypoints_rc: float ``[18, 2]`` (row, col), -1 missing, in the image's pixels.
        source: names the keypoints in messages (a file, or ``--pose_from=PHOTO``).
        warn: receives one line naming the dropped joints, when some are dropped.

    Returns:
        float64 ``[18, 2]``, the joints outside set to -1.

    Raises:
        DataError: no joint is present, or every present joint is outside the image.
    """
    keypoints_rc = np.array(keypoints_rc, np.float64)
    present = ~pose.missing_joints(keypoints_rc)
    if not present.any():
        raise DataError(f"{source}: every joint is missing (confidence 0): there is no pose")
    outside = pose.joints_outside(keypoints_rc, height, width)
    if outside[present].all():
        raise DataError(
            f"{source}: all {int(present.sum())} joints lie outside the {height}x{width} image; "
            "keypoints must be in the pixel coordinates of --image"
        )
    if outside.any():
        names = ", ".join(pose.KEYPOINT_NAMES[joint] for joint in np.flatnonzero(outside))
        warn(f"{source}: {names} outside the {height}x{width} image, left out")
        keypoints_rc[outside] = MISSING
    return keypoints_rc


# ---- images ------------------------------------------------------------------------------------


def load_image(path) -> np.ndarray:
    """Reads a photo as uint8 [H, W, 3] RGB, upright and 8-bit (see :func:`photos.load_photo`).

    Raises DataError when it is missing or not an image."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(f"image {path} does not exist (--image)")
    return photos.load_photo(path)


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
    missing = np.any(keypoints_rc == MISSING, axis=1)
    factors = np.array([scaled_h / h, scaled_w / w])
    centers = (np.trunc(keypoints_rc) + 0.5) * factors - 0.5
    moved = np.floor(centers + 0.5) + np.array([top, left])
    moved[missing] = MISSING
    placement = Placement((h, w), (scaled_h, scaled_w), (top, left), (img_H, img_W))
    return image, moved.astype(np.float32), placement


def restore_input_size(image: np.ndarray, placement: Placement) -> np.ndarray:
    """Crops the padding off a model-size output and resizes it to the input image's size."""
    (top, left), (scaled_h, scaled_w) = placement.offset, placement.scaled_size
    cropped = image[top : top + scaled_h, left : left + scaled_w]
    h, w = placement.input_size
    if (scaled_h, scaled_w) == (h, w):
        return np.ascontiguousarray(cropped)
    return np.asarray(Image.fromarray(cropped).resize((w, h), Image.Resampling.BICUBIC))


# ---- the model ---------------------------------------------------------------------------------


def check_saved_model(saved_model) -> None:
    """Raises CheckpointError unless saved_model is a folder holding ``saved_model.pb``."""
    saved_model = os.fspath(saved_model)
    if not os.path.isfile(os.path.join(saved_model, "saved_model.pb")):
        raise CheckpointError(
            f"no SavedModel at {saved_model} (no saved_model.pb; --saved_model): export one with "
            "pg2-export --pretrained_path=<checkpoint> --export_dir=<folder>"
        )


def load_export(saved_model):
    """Loads a pg2_tf export; returns (the loaded SavedModel, (img_H, img_W) of its inputs).

    Raises CheckpointError when there is no SavedModel or it has no ``from_keypoints`` signature.
    """
    import tensorflow as tf

    check_saved_model(saved_model)
    loaded = tf.saved_model.load(os.fspath(saved_model))
    if KEYPOINTS_SIGNATURE not in loaded.signatures:
        raise CheckpointError(
            f"{saved_model} has no '{KEYPOINTS_SIGNATURE}' signature: it is not a pg2_tf export "
            "(export it with pg2-export)"
        )
    inputs = loaded.signatures[KEYPOINTS_SIGNATURE].structured_input_signature[1]
    _, img_H, img_W, _ = inputs["image"].shape
    return loaded, (int(img_H), int(img_W))


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


@dataclasses.dataclass(frozen=True)
class PersonInFrame:
    """A photo's person brought into the model's frame by :func:`person_in_model_frame`."""

    image: np.ndarray  # uint8 [img_H, img_W, 3]: the photo cropped to the person's box
    keypoints_rc: np.ndarray  # float32 [18, 2] (row, col) in the crop, -1 missing
    crop: object  # the pg2_tf.photos.Crop that maps photo pixels to the crop's


def person_in_model_frame(photo, person, img_H: int, img_W: int) -> PersonInFrame:
    """Crops a photo to its person at the model's size and carries the keypoints along.

    Args:
        photo: uint8 [h, w, 3] RGB (any size, a full scene is fine).
        person: the :class:`pg2_tf.keypoints.PersonKeypoints` the estimator found in it.
        img_H, img_W: the model's size; the crop has its aspect ratio (Market 1:2, DeepFashion 1:1).

    Returns:
        :class:`PersonInFrame`: the crop (:func:`pg2_tf.photos.person_crop` of the person's box)
        and the person's keypoints in it (joints outside the crop missing).
    """
    image, crop = photos.person_crop(photo, person.box_xyxy, img_H, img_W)
    keypoints_rc = crop.to_crop_rc(person.keypoints_rc()).astype(np.float32)
    return PersonInFrame(image, keypoints_rc, crop)


def find_person(path, estimator):
    """Loads a photo and finds its person; returns ``(photo uint8 [h, w, 3], PersonKeypoints)``.

    Raises DataError for an unreadable photo and NoPersonFound (a DataError naming the photo).
    """
    photo = photos.load_photo(path)
    return photo, estimator(photo, name=os.fspath(path))


def generate(
    saved_model,
    image_path,
    keypoints_path,
    out_path,
    *,
    pose_from=None,
    keypoints_row: str | None = None,
    save_all: bool = False,
    restore_size: bool = False,
    estimator=None,
    log=print,
    warn=_warn,
) -> dict:
    """Generates the person of ``image_path`` in the pose of ``keypoints_path``; writes images.

    Args:
        saved_model: a folder written by :func:`pg2_tf.export.export_saved_model`.
        image_path: the person (any size, any format Pillow reads).
        keypoints_path, keypoints_row: the target pose (see :func:`load_keypoints`), in the
            image's pixel coordinates; joints outside the image are left out with a warning.
            None when ``pose_from`` gives the pose.
        out_path: where G2 is written (.png, or another image extension). With ``save_all``, G1
            and diff_map go beside it as ``<stem>_G1.png`` and ``<stem>_diff_map.png``.
        pose_from: instead of keypoints, a photo of someone in the target pose. Then both photos
            are cropped to their person (:func:`person_in_model_frame`, the pose estimator of
            :mod:`pg2_tf.keypoints`) and the outputs are the model's size.
        restore_size: crop the padding and resize outputs back to the input image's size
            (``--keypoints`` only).
        estimator: the pose estimator for ``pose_from`` (default: a new KeypointEstimator).
        log: receives one line saying how the image was fitted to the model.
        warn: receives one line naming joints left out.

    Returns:
        ``{output name: path written}``.

    Raises:
        DataError / ConfigError / CheckpointError with a one-line message on bad input
        (NoPersonFound, a DataError, for a photo without a person).
    """
    check_saved_model(saved_model)
    out_path = os.fspath(out_path)
    stem, extension = os.path.splitext(out_path)
    if extension.lower() not in Image.registered_extensions():
        raise ConfigError(f"--out={out_path} needs an image file extension such as .png")
    if (keypoints_path is None) == (pose_from is None):
        raise ConfigError("give the target pose with one of --keypoints and --pose_from")
    if pose_from is not None and (restore_size or keypoints_row):
        raise ConfigError(
            "--restore_size and --keypoints_row apply to --keypoints, not --pose_from"
        )
    placement = None
    if pose_from is None:
        image = load_image(image_path)
        keypoints_rc = keep_joints_inside(
            load_keypoints(keypoints_path, keypoints_row),
            *image.shape[:2],
            os.fspath(keypoints_path),
            warn,
        )
        loaded, (img_H, img_W) = load_export(saved_model)
        model_image, model_keypoints, placement = fit_to_model(image, keypoints_rc, img_H, img_W)
        log(placement.describe())
    else:
        if estimator is None:
            from pg2_tf import keypoints

            estimator = keypoints.KeypointEstimator()
        # Both people are found before the model is loaded: a photo without one fails fast.
        source_photo, source_person = find_person(image_path, estimator)
        target_photo, target_person = find_person(pose_from, estimator)
        loaded, (img_H, img_W) = load_export(saved_model)
        model_image = person_in_model_frame(source_photo, source_person, img_H, img_W).image
        target = person_in_model_frame(target_photo, target_person, img_H, img_W)
        source_name = f"--pose_from={os.fspath(pose_from)}"
        model_keypoints = keep_joints_inside(target.keypoints_rc, img_H, img_W, source_name, warn)
        model_keypoints = model_keypoints.astype(np.float32)
        log(
            f"person of {os.fspath(image_path)} and pose of {os.fspath(pose_from)} each cropped "
            f"to their box at {img_H}x{img_W}"
        )
    outputs = loaded.signatures[KEYPOINTS_SIGNATURE](
        image=model_image[None], keypoints=model_keypoints[None]
    )

    paths = {"G2": out_path}
    if save_all:
        paths.update({name: f"{stem}_{name}{extension}" for name in ("G1", "diff_map")})
    parent = os.path.dirname(os.path.abspath(out_path))
    os.makedirs(parent, exist_ok=True)
    for name, path in paths.items():
        picture = outputs[name].numpy()[0]
        if restore_size:
            picture = restore_input_size(picture, placement)
        Image.fromarray(picture).save(path)
    return paths


# ---- command line ------------------------------------------------------------------------------


def define_flags(flag_values=flags.FLAGS) -> None:
    """Defines the generate flags (skipping any already defined by another module)."""
    definitions = (
        (flags.DEFINE_string, "saved_model", None, "SavedModel folder written by pg2-export."),
        (flags.DEFINE_string, "image", None, "The person image (any size; scaled and padded)."),
        (flags.DEFINE_string, "keypoints", None,
         "Target pose: OpenPose JSON (COCO-18, BODY_25 or MS COCO's 17 keypoints) or annotation "
         "CSV (name:keypoints_y:keypoints_x), in the pixel coordinates of --image."),
        (flags.DEFINE_string, "pose_from", None,
         "Target pose taken from another person's photo (instead of --keypoints): both photos "
         "are cropped to their person at the model's aspect ratio; needs the pose model files "
         "(python -m pg2_tf.keypoints --fetch_model)."),
        (flags.DEFINE_string, "keypoints_row", None, "Row name of a CSV --keypoints file."),
        (flags.DEFINE_string, "out", None, "Output PNG for G2."),
        (flags.DEFINE_bool, "save_all", False, "Also write <out>_G1.png and <out>_diff_map.png."),
        (flags.DEFINE_bool, "restore_size", False,
         "Crop the padding and resize outputs back to the input image's size (default: the "
         "model's size)."),
    )  # fmt: skip
    cli.define_missing_flags(definitions, flag_values)


def main(argv) -> None:
    """Runs generation from the command-line flags."""
    cli.start_command(argv)
    flag_values = flags.FLAGS
    for required in ("saved_model", "image", "out"):
        if not flag_values[required].value:
            raise ConfigError(f"--{required} is required")
    if not flag_values.keypoints and not flag_values.pose_from:
        raise ConfigError("--keypoints (a JSON/CSV file) or --pose_from (a photo) is required")
    paths = generate(
        flag_values.saved_model,
        flag_values.image,
        flag_values.keypoints or None,
        flag_values.out,
        pose_from=flag_values.pose_from or None,
        keypoints_row=flag_values.keypoints_row,
        save_all=flag_values.save_all,
        restore_size=flag_values.restore_size,
    )
    for name, path in paths.items():
        print(f"wrote {name} to {path}")


def run() -> None:
    """Console entry point ``pg2-generate``."""
    cli.console_entry(define_flags, main)


if __name__ == "__main__":
    run()
