"""Generating a person image in a new pose with an exported SavedModel (see :mod:`pg2_tf.export`).

    python -m pg2_tf.generate --saved_model=exported/market --image=person.jpg \
        --keypoints=target_pose.json --out=out.png

``--keypoints`` gives the TARGET pose, in the pixel coordinates of ``--image``:

* an OpenPose JSON file (``*.json``): ``people[0].pose_keypoints_2d`` (or the older
  ``pose_keypoints``) of the COCO-18 body model, x, y, confidence triples; confidence 0 is a missing
  joint;
* a Pose-Transfer annotation CSV (``*.csv``, ``name:keypoints_y:keypoints_x`` with lists of 18
  integers, -1 missing), row chosen with ``--keypoints_row=<name>`` (optional when it has one row).

An image of another size than the model's is scaled, keeping its aspect ratio, until it fits the
model's size exactly in one dimension, then centred and padded to the model's size by repeating its
edge pixels (a plain border, close to the backgrounds the model was trained on); the keypoints get
the same scale and offset. The output is the model's size, or with ``--restore_size`` the padding is
cropped away and the result resized back to the input image's size.
"""

import dataclasses
import json
import os

import numpy as np
from absl import flags, logging
from PIL import Image

from pg2_tf import cli, photos
from pg2_tf.errors import CheckpointError, ConfigError, DataError

NUM_KEYPOINTS = 18
MISSING = -1.0
KEYPOINTS_SIGNATURE = "from_keypoints"
OUTPUT_NAMES = ("G1", "G2", "diff_map")


# ---- keypoint files ----------------------------------------------------------------------------


def load_keypoints(path, row_name: str | None = None) -> np.ndarray:
    """Reads one pose from an OpenPose JSON file or a Pose-Transfer annotation CSV.

    Args:
        path: ``*.json`` (OpenPose, COCO-18) or ``*.csv`` (``name:keypoints_y:keypoints_x``).
        row_name: the CSV row's name (its first field); None takes the only row of a one-row CSV.

    Returns:
        float64 [18, 2]: (row, col) pixel coordinates, -1 for missing joints.

    Raises:
        DataError: missing/unreadable file, unknown type, no person, not 18 keypoints, no such row.
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
        raise DataError(f"{path}: OpenPose found no person ('people' is empty)")
    person = people[0]
    values = person.get("pose_keypoints_2d", person.get("pose_keypoints"))
    if not isinstance(values, list) or len(values) % 3:
        raise DataError(
            f"{path}: people[0].pose_keypoints_2d must be a list of x, y, confidence triples"
        )
    count = len(values) // 3
    if count != NUM_KEYPOINTS:
        raise DataError(
            f"{path} has {count} keypoints, PG2 needs the {NUM_KEYPOINTS} of OpenPose's COCO "
            "body model (BODY_25 has 25): run OpenPose with --model_pose COCO"
        )
    triples = np.asarray(values, np.float64).reshape(NUM_KEYPOINTS, 3)
    keypoints_rc = triples[:, [1, 0]].copy()  # (x, y) -> (row, col)
    keypoints_rc[triples[:, 2] <= 0] = MISSING
    return keypoints_rc


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
    keypoints_rc = np.stack([row_values, col_values], axis=1).astype(np.float64)
    keypoints_rc[np.any(keypoints_rc == MISSING, axis=1)] = MISSING
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


def generate(
    saved_model,
    image_path,
    keypoints_path,
    out_path,
    *,
    keypoints_row: str | None = None,
    save_all: bool = False,
    restore_size: bool = False,
    log=print,
) -> dict:
    """Generates the person of ``image_path`` in the pose of ``keypoints_path``; writes images.

    Args:
        saved_model: a folder written by :func:`pg2_tf.export.export_saved_model`.
        image_path: the person (any size, any format Pillow reads).
        keypoints_path, keypoints_row: the target pose (see :func:`load_keypoints`), in the
            image's pixel coordinates.
        out_path: where G2 is written (.png, or another image extension). With ``save_all``, G1 and diff_map go beside it as
            ``<stem>_G1.png`` and ``<stem>_diff_map.png``.
        restore_size: crop the padding and resize outputs back to the input image's size.
        log: receives one line saying how the image was fitted to the model.

    Returns:
        ``{output name: path written}``.

    Raises:
        DataError / ConfigError / CheckpointError with a one-line message on bad input.
    """
    check_saved_model(saved_model)
    out_path = os.fspath(out_path)
    stem, extension = os.path.splitext(out_path)
    if extension.lower() not in Image.registered_extensions():
        raise ConfigError(f"--out={out_path} needs an image file extension such as .png")
    image = load_image(image_path)
    keypoints_rc = load_keypoints(keypoints_path, keypoints_row)
    loaded, (img_H, img_W) = load_export(saved_model)
    model_image, model_keypoints, placement = fit_to_model(image, keypoints_rc, img_H, img_W)
    log(placement.describe())
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
         "Target pose: OpenPose JSON (COCO-18) or annotation CSV (name:keypoints_y:keypoints_x), "
         "in the pixel coordinates of --image."),
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
    if len(argv) > 1:
        raise ConfigError(f"unexpected arguments {argv[1:]}: every option is a --flag")
    flag_values = flags.FLAGS
    if not flag_values["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
    for required in ("saved_model", "image", "keypoints", "out"):
        if not flag_values[required].value:
            raise ConfigError(f"--{required} is required")
    paths = generate(
        flag_values.saved_model,
        flag_values.image,
        flag_values.keypoints,
        flag_values.out,
        keypoints_row=flag_values.keypoints_row,
        save_all=flag_values.save_all,
        restore_size=flag_values.restore_size,
    )
    for name, path in paths.items():
        print(f"wrote {name} to {path}")


def run() -> None:
    """Console entry point ``pg2-generate``."""
    define_flags()
    cli.run_main(main)


if __name__ == "__main__":
    run()
