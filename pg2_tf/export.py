"""Exporting trained generators as a self-contained TensorFlow SavedModel (for TF Serving).

    python -m pg2_tf.export --pretrained_path=<checkpoint> --model=1 --img_H=128 --img_W=64 \\
        --conv_hidden_num=128 --export_dir=exported/market

The checkpoint is either an ORIGINAL TF1 PG2 checkpoint (variables ``Pose_AE/G/...``) or one of
ours (an object-graph ``tf.train.Checkpoint(g1=..., g2=..., ...)`` written by the trainer); a
directory holding a ``checkpoint`` state file stands for its latest checkpoint.

The SavedModel needs nothing but TensorFlow to run (no pg2_tf, no Keras). Signatures, for a model
of size H x W (``N`` is any batch size):

* ``serving_default``: ``image`` uint8 [N, H, W, 3] and ``pose_target`` float32 [N, H, W, 18]
  ({-1, +1} pose map) -> ``G1``, ``G2``, ``diff_map`` uint8 [N, H, W, 3].
* ``from_keypoints``: ``image`` uint8 [N, H, W, 3] and ``keypoints`` float32 [N, 18, 2]
  ((row, col) in pixels, -1 for a missing joint) -> the same three outputs; the pose map is drawn
  inside the graph exactly as :func:`pg2_tf.core.pose.render_pose_map` draws it.

Outputs are encoded as the original test mode saved them: clip((v + 1) * 127.5, 0, 255), then
truncation to uint8. ``assets/pg2_metadata.json`` records the configuration (model, img_H, img_W,
conv_hidden_num, z_num); :func:`read_metadata` reads it.

Writing is atomic: the SavedModel is written to a temporary folder beside ``export_dir`` and renamed
at the end. An existing ``export_dir`` that holds a SavedModel (or nothing) is replaced only once the
new export is complete; any other existing path is refused.
"""

import json
import os
import shutil
import uuid

import tensorflow as tf
from absl import flags

from pg2_tf import cli
from pg2_tf.core import configs, datasets
from pg2_tf.core.errors import ConfigError
from pg2_tf.core.pose import MISSING, NUM_KEYPOINTS
from pg2_tf.networks import checkpoints, models
from pg2_tf.serving.contract import (
    KEYPOINTS_SIGNATURE,
    METADATA_FILE,
    OUTPUT_NAMES,
    SERVING_SIGNATURE,
)

POSE_RADIUS = 4
# What export_saved_model writes at the top of a SavedModel folder.
EXPORT_ENTRIES = frozenset({"saved_model.pb", "fingerprint.pb", "variables", "assets"})


# ---- graph pieces (plain TensorFlow ops: they end up in the SavedModel) ----------------------


def render_pose_maps(keypoints_rc, img_H: int, img_W: int, radius: int = POSE_RADIUS):
    """Draws pose maps in TensorFlow, pixel for pixel as :func:`pg2_tf.core.pose.render_pose_map`.

    Args:
        keypoints_rc: float32 [N, 18, 2], (row, col) in pixels; a joint whose row or column is -1
            is missing. Coordinates are truncated toward zero (Python ``int()``), as the original
            converters did; joints outside the image draw only the part of their disc inside it.
        img_H, img_W: size of the map.
        radius: disc radius in pixels (4 for the model's input).

    Returns:
        float32 [N, img_H, img_W, 18] in {-1, +1}: +1 on the disc (d_row^2 + d_col^2 <= radius^2)
        of every present joint, in its own channel; -1 elsewhere.
    """
    keypoints_rc = tf.convert_to_tensor(keypoints_rc, tf.float32)
    missing = tf.reduce_any(tf.equal(keypoints_rc, MISSING), axis=-1)
    finite = tf.reduce_all(tf.math.is_finite(keypoints_rc), axis=-1)
    drawn = tf.logical_and(tf.logical_not(missing), finite)
    # Clipping before the integer cast keeps far-away joints far away without int32 overflow.
    margin = float(radius + 2)
    limit = float(max(img_H, img_W)) + margin
    centers = tf.cast(tf.clip_by_value(keypoints_rc, -margin, limit), tf.int32)  # toward zero
    centers = tf.where(tf.math.is_finite(keypoints_rc), centers, 0)
    d_row = tf.range(img_H)[None, None, :, None] - centers[:, :, 0, None, None]  # [N, 18, H, 1]
    d_col = tf.range(img_W)[None, None, None, :] - centers[:, :, 1, None, None]  # [N, 18, 1, W]
    on_disc = tf.logical_and(
        d_row * d_row + d_col * d_col <= radius * radius, drawn[..., None, None]
    )
    pose = tf.where(on_disc, 1.0, -1.0)  # [N, 18, H, W]
    return tf.transpose(pose, (0, 2, 3, 1))


def to_uint8_images(values):
    """[-1, 1]-scale float images -> uint8: clip((v + 1) * 127.5, 0, 255), then truncation.

    The encoding of the original test mode's ``G/%05d.png`` (``astype(uint8)``, not rounding).
    Any shape; float32 in, uint8 out.
    """
    scaled = tf.clip_by_value((tf.cast(values, tf.float32) + 1.0) * 127.5, 0.0, 255.0)
    return tf.cast(scaled, tf.uint8)  # float -> integer casts truncate


def generate_outputs(g1, g2, image, pose_target):
    """uint8 images [N, H, W, 3] + pose maps [N, H, W, 18] -> {"G1", "G2", "diff_map"} uint8
    [N, H, W, 3] (:func:`to_uint8_images`): the graph of both signatures."""
    x = tf.cast(image, tf.float32) / 127.5 - 1.0
    coarse = g1([x, pose_target])
    diff_map = g2([coarse, x])
    return {
        "G1": to_uint8_images(coarse),
        "G2": to_uint8_images(coarse + diff_map),
        "diff_map": to_uint8_images(diff_map),
    }


# ---- export ------------------------------------------------------------------------------------


def model_number(g2) -> int:
    """1 (Market-1501) or 11 (DeepFashion), from G2's variant (skip links on every block: 11)."""
    for dataset in datasets.ALL:
        if dataset.g2_skip_first_block == g2.skip_first_block:
            return dataset.model
    raise ValueError("no dataset has this G2 variant")


def export_saved_model(g1, g2, export_dir, img_H: int, img_W: int) -> str:
    """Writes built generators as a SavedModel with the signatures of the module doc.

    Args:
        g1, g2: built :class:`pg2_tf.networks.models.PoseGenerator` / :class:`RefineGenerator` (weights
            loaded), for images of img_H x img_W.
        export_dir: the SavedModel folder to create (or to replace, when it holds a SavedModel or
            is empty). Parent folders are created.
        img_H, img_W: image size of the signatures' inputs and outputs.

    Returns:
        The absolute path of export_dir.

    Raises:
        ConfigError: export_dir exists and is neither a SavedModel nor an empty folder.
    """
    import keras  # only the export needs Keras; the SavedModel itself does not

    export_dir = os.path.abspath(os.fspath(export_dir))
    check_export_dir(export_dir)
    metadata = {
        "model": model_number(g2),
        "img_H": int(img_H),
        "img_W": int(img_W),
        "conv_hidden_num": int(g1.conv_hidden_num),
        "z_num": int(g1.z_num),
        "signatures": [SERVING_SIGNATURE, KEYPOINTS_SIGNATURE],
        "outputs": list(OUTPUT_NAMES),
        "output_encoding": "uint8 = trunc(clip((v + 1) * 127.5, 0, 255))",
        "keypoints": "float32 [N, 18, 2] (row, col) pixels, -1 = missing, COCO-18 order",
    }

    image_spec = tf.TensorSpec([None, img_H, img_W, 3], tf.uint8, name="image")
    pose_spec = tf.TensorSpec([None, img_H, img_W, NUM_KEYPOINTS], tf.float32, name="pose_target")
    keypoints_spec = tf.TensorSpec([None, NUM_KEYPOINTS, 2], tf.float32, name="keypoints")

    def serve(image, pose_target):
        return generate_outputs(g1, g2, image, pose_target)

    def from_keypoints(image, keypoints):
        return generate_outputs(g1, g2, image, render_pose_maps(keypoints, img_H, img_W))

    # No archive.track(): the endpoints capture the weights they use, and tracking the models as
    # well would store every weight twice.
    archive = keras.export.ExportArchive()
    archive.add_endpoint(SERVING_SIGNATURE, serve, input_signature=[image_spec, pose_spec])
    archive.add_endpoint(
        KEYPOINTS_SIGNATURE, from_keypoints, input_signature=[image_spec, keypoints_spec]
    )

    parent, name = os.path.split(export_dir)
    os.makedirs(parent, exist_ok=True)
    staging = _unique_sibling(export_dir, "exporting")
    os.mkdir(staging)
    try:
        archive.write_out(staging, verbose=False)
        _write_metadata(staging, metadata)
        _replace_dir(staging, export_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return export_dir


def _write_metadata(saved_model_dir: str, metadata: dict) -> None:
    os.makedirs(os.path.join(saved_model_dir, "assets"), exist_ok=True)
    with open(os.path.join(saved_model_dir, "assets", METADATA_FILE), "w", encoding="utf-8") as f:
        json.dump(metadata, f, indent=2)


def check_export_dir(export_dir) -> None:
    """Raises ConfigError unless export_dir is absent, an empty folder or a previous export
    holding only what an export writes (it is replaced whole, so nothing else may be lost)."""
    export_dir = os.fspath(export_dir)
    if not os.path.lexists(export_dir):
        return
    if os.path.isdir(export_dir) and not os.path.islink(export_dir):
        entries = set(os.listdir(export_dir))
        if not entries:
            return
        if _is_saved_model(export_dir):
            others = sorted(entries - EXPORT_ENTRIES)
            if not others:
                return
            raise ConfigError(
                f"--export_dir={export_dir} holds a previous export and also "
                f"{', '.join(others[:3])}{', ...' if len(others) > 3 else ''}, which an export "
                "does not write and replacing the folder would delete: move them out or choose "
                "another --export_dir"
            )
    raise ConfigError(
        f"--export_dir={export_dir} exists and is not a SavedModel folder; it is only replaced "
        "when it holds a previous export: choose a new path or remove it"
    )


def _is_saved_model(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "saved_model.pb"))


def _unique_sibling(path: str, purpose: str) -> str:
    """A hidden, unused name beside path: ``<parent>/.<name>.<purpose>-<random>``."""
    parent, name = os.path.split(path)
    return os.path.join(parent, f".{name}.{purpose}-{uuid.uuid4().hex[:12]}")


def _replace_dir(new_dir: str, target: str) -> None:
    """Renames new_dir to target; a previous target is moved aside first and deleted after."""
    if not os.path.lexists(target):
        os.rename(new_dir, target)
        return
    previous = _unique_sibling(target, "previous")
    os.rename(target, previous)
    try:
        os.rename(new_dir, target)
    except BaseException:
        os.rename(previous, target)
        raise
    shutil.rmtree(previous, ignore_errors=True)


def export_from_checkpoint(
    checkpoint_path,
    export_dir,
    *,
    model: int,
    img_H: int,
    img_W: int,
    conv_hidden_num: int = 128,
    z_num: int = 64,
) -> str:
    """Builds the generators, loads them from a checkpoint and exports them as a SavedModel.

    Args:
        checkpoint_path: original TF1 checkpoint or one of ours (see :func:`pg2_tf.networks.checkpoints.load_generators`).
        export_dir: SavedModel folder to write (see :func:`export_saved_model`).
        model: 1 (Market-1501) or 11 (DeepFashion); img_H, img_W, conv_hidden_num, z_num: the
            configuration the checkpoint was trained with (the training flags of the same names).

    Returns:
        The absolute path of export_dir.

    Raises:
        ConfigError: impossible configuration or unusable export_dir (checked before loading).
        CheckpointError: missing checkpoint or one of another configuration.
        Nothing is left at export_dir (nor beside it) when an error is raised.
    """
    check_export_dir(export_dir)
    try:
        g1, g2, _ = models.build(model, img_H, img_W, conv_hidden_num, z_num, d_dim=8)
    except ValueError as error:
        released = " or ".join(dataset.flags for dataset in datasets.ALL)
        raise ConfigError(
            f"{error} (flags --model={model} --img_H={img_H} --img_W={img_W}); the released "
            f"models use {released}"
        ) from None
    checkpoints.load_generators(checkpoint_path, g1, g2)
    return export_saved_model(g1, g2, export_dir, img_H, img_W)


# ---- command line ------------------------------------------------------------------------------


def define_flags(flag_values=flags.FLAGS) -> None:
    """Defines the export flags (names and meanings of the training flags), skipping any already
    defined, so that importing this module never clashes with ``pg2_tf.main``'s flags."""
    definitions = (
        (flags.DEFINE_string, "pretrained_path", None,
         "Checkpoint to export: an original TF1 PG2 checkpoint prefix (model.ckpt-<step>) or one "
         "of ours (prefix, or the model_dir holding its 'checkpoint' file)."),
        (flags.DEFINE_integer, "model", 1, "1: Market-1501 (128x64), 11: DeepFashion (256x256)."),
        (flags.DEFINE_integer, "img_H", 128, "Image height the checkpoint was trained at."),
        (flags.DEFINE_integer, "img_W", 64, "Image width the checkpoint was trained at."),
        (flags.DEFINE_integer, "conv_hidden_num", 128, "Generator width (128 in the released models)."),
        (flags.DEFINE_integer, "z_num", 64, "Size of G1's fully connected bottleneck."),
        (flags.DEFINE_string, "export_dir", None, "SavedModel folder to write."),
    )  # fmt: skip
    cli.define_missing_flags(definitions, flag_values)


def main(argv) -> None:
    """Runs the export from the command-line flags."""
    cli.start_command(argv)
    flag_values = flags.FLAGS
    cli.require_flags(("pretrained_path", "export_dir"), flag_values)
    export_dir = export_from_checkpoint(
        flag_values.pretrained_path,
        flag_values.export_dir,
        **configs.architecture(flag_values),
    )
    print(
        f"exported SavedModel to {export_dir} (signatures {SERVING_SIGNATURE}, "
        f"{KEYPOINTS_SIGNATURE}; images {flag_values.img_H}x{flag_values.img_W})"
    )


def run() -> None:
    """Console entry point ``pg2-export``."""
    cli.console_entry(define_flags, main)


if __name__ == "__main__":
    run()
