"""Exporting trained generators as a self-contained TensorFlow SavedModel (for TF Serving).

The library behind ``pg2-export`` (:mod:`pg2_tf.export`, which only reads the flags). Its public
name for TensorFlow users has this one import path::

    from pg2_tf.serving.export_lib import export_saved_model, export_from_checkpoint

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
truncation to uint8 (the ops: :mod:`pg2_tf.serving.graph`). ``assets/pg2_metadata.json`` records
the configuration (model, img_H, img_W, conv_hidden_num, z_num);
:func:`pg2_tf.serving.contract.read_metadata` reads it.

Rule: writing is atomic. The SavedModel is written to a temporary folder beside ``export_dir`` and
renamed at the end. An existing ``export_dir`` that holds a SavedModel (or nothing) is replaced
only once the new export is complete; any other existing path is refused. No flags are read here.
"""

import json
import os
import shutil
import uuid

import tensorflow as tf

from pg2_tf.core import datasets
from pg2_tf.core.errors import ConfigError
from pg2_tf.core.pose import NUM_KEYPOINTS
from pg2_tf.networks import checkpoints, models
from pg2_tf.serving.contract import (
    KEYPOINTS_SIGNATURE,
    METADATA_FILE,
    OUTPUT_NAMES,
    SERVING_SIGNATURE,
)
from pg2_tf.serving.graph import generate_outputs, render_pose_maps

# What export_saved_model writes at the top of a SavedModel folder.
EXPORT_ENTRIES = frozenset({"saved_model.pb", "fingerprint.pb", "variables", "assets"})


def model_number(g2) -> int:
    """The ``--model`` number of a G2, from its variant (skip links on every block: 11).

    Args:
        g2: a built :class:`pg2_tf.networks.models.RefineGenerator`.

    Returns:
        1 (Market-1501) or 11 (DeepFashion).

    Raises:
        ValueError: no dataset has this G2 variant.
    """
    for dataset in datasets.ALL:
        if dataset.g2_skip_first_block == g2.skip_first_block:
            return dataset.model
    raise ValueError("no dataset has this G2 variant")


def export_saved_model(g1, g2, export_dir, img_H: int, img_W: int) -> str:
    """Writes built generators as a SavedModel with the signatures of the module doc.

    Args:
        g1: a built :class:`pg2_tf.networks.models.PoseGenerator` (weights loaded), for images
            of img_H x img_W.
        g2: the matching built :class:`pg2_tf.networks.models.RefineGenerator`.
        export_dir: the SavedModel folder to create (or to replace, when it holds a SavedModel or
            is empty). Parent folders are created.
        img_H: image height of the signatures' inputs and outputs.
        img_W: image width of the signatures' inputs and outputs.

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
    """Checks that an export may be written to export_dir (before any long work).

    Args:
        export_dir: the SavedModel folder an export would write.

    Raises:
        ConfigError: export_dir is neither absent, nor an empty folder, nor a previous export
            holding only what an export writes (it is replaced whole, so nothing else may be
            lost).
    """
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

    The configuration is the one the checkpoint was trained with (the training flags of the
    same names).

    Args:
        checkpoint_path: original TF1 checkpoint or one of ours (see
            :func:`pg2_tf.networks.checkpoints.load_generators`).
        export_dir: SavedModel folder to write (see :func:`export_saved_model`).
        model: 1 (Market-1501) or 11 (DeepFashion).
        img_H: image height (128 for Market-1501, 256 for DeepFashion).
        img_W: image width (64 for Market-1501, 256 for DeepFashion).
        conv_hidden_num: generator width (128 in the released models).
        z_num: size of G1's fully connected bottleneck.

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
