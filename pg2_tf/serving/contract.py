"""The contract of a pg2_tf SavedModel (written by :mod:`pg2_tf.serving.export_lib`), and loading one.

Its signatures (``serving_default``: image + pose map; ``from_keypoints``: image + 18 keypoints),
their output names, and the configuration it records in ``assets/pg2_metadata.json``. The commands
that run an export (``pg2-generate``, ``pg2-animate``, ``pg2-app``) load it through here.

Rule: the one place that names the signatures and the metadata file; TensorFlow is imported only
by :func:`load_export`, so that a command checks ``--saved_model`` before TensorFlow loads.
"""

import json
import os

from pg2_tf.core.errors import CheckpointError

METADATA_FILE = "pg2_metadata.json"
SERVING_SIGNATURE = "serving_default"
KEYPOINTS_SIGNATURE = "from_keypoints"
OUTPUT_NAMES = ("G1", "G2", "diff_map")


def check_saved_model(saved_model) -> None:
    """Checks that a folder holds a SavedModel (without importing TensorFlow).

    Args:
        saved_model: the ``--saved_model`` folder.

    Raises:
        CheckpointError: saved_model is not a folder holding ``saved_model.pb``.
    """
    saved_model = os.fspath(saved_model)
    if not os.path.isfile(os.path.join(saved_model, "saved_model.pb")):
        raise CheckpointError(
            f"no SavedModel at {saved_model} (no saved_model.pb; --saved_model): export one with "
            "pg2-export --pretrained_path=<checkpoint> --export_dir=<folder>"
        )


def load_export(saved_model):
    """Loads a pg2_tf export.

    Args:
        saved_model: the export's folder.

    Returns:
        ``(loaded, (img_H, img_W))``: the SavedModel loaded by ``tf.saved_model.load``, and the
        image size of its inputs and outputs.

    Raises:
        CheckpointError: there is no SavedModel, or it has no ``from_keypoints`` signature.
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


def read_metadata(export_dir) -> dict:
    """The configuration saved with an export.

    Args:
        export_dir: the export's folder.

    Returns:
        The parsed ``assets/pg2_metadata.json``: ``model``, ``img_H``, ``img_W``,
        ``conv_hidden_num``, ``z_num``, the signatures, outputs and encodings.

    Raises:
        CheckpointError: export_dir has no readable ``assets/pg2_metadata.json`` (not an export
            of this package, or an incomplete copy).
    """
    path = os.path.join(os.fspath(export_dir), "assets", METADATA_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as error:
        raise CheckpointError(
            f"cannot read {path} ({error.__class__.__name__}): {export_dir} is not a complete "
            "pg2_tf export; export it again with pg2-export"
        ) from None
