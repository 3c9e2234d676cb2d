"""The generators of an export, rebuilt from its own variables (no checkpoint needed).

What lets one float32 SavedModel run faster on the machine at hand: :mod:`pg2_tf.serving.engines`
rebuilds G1 and G2 under a reduced-precision Keras policy, and :mod:`pg2_tf.serving.litert`
converts the rebuilt float32 models to LiteRT; both then hold the export's own weights.

Rule: reads only the loaded SavedModel and its ``pg2_metadata.json`` configuration; TensorFlow and
Keras are imported when a function runs, so that commands import this module before their flags
are checked.
"""

from pg2_tf.core.errors import ConfigError
from pg2_tf.serving import contract


def rebuild_generators(metadata: dict, policy: str):
    """G1 and G2 of an export's configuration, built under a Keras dtype policy.

    Args:
        metadata: the export's configuration (:func:`pg2_tf.serving.contract.read_metadata`):
            ``model``, ``img_H``, ``img_W``, ``conv_hidden_num``, ``z_num``.
        policy: a Keras dtype policy name, e.g. ``"float32"`` or ``"mixed_bfloat16"``; the global
            policy is restored afterwards.

    Returns:
        ``(g1, g2)``: a built :class:`pg2_tf.networks.models.PoseGenerator` and
        :class:`pg2_tf.networks.models.RefineGenerator`, with random weights.
    """
    import keras

    from pg2_tf.networks import models

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        g1, g2, _ = models.build(
            int(metadata["model"]),
            int(metadata["img_H"]),
            int(metadata["img_W"]),
            int(metadata["conv_hidden_num"]),
            int(metadata["z_num"]),
            d_dim=8,
        )
    finally:
        keras.mixed_precision.set_global_policy(previous)
    return g1, g2


def load_export_weights(g1, g2, loaded, img_H: int, img_W: int) -> None:
    """Gives rebuilt G1, G2 the variables of a loaded export's ``from_keypoints`` signature.

    A traced function captures variables in the order its graph first reads them; the export's
    signature kept that order, and the same code traced on the rebuilt models reads theirs in
    the same order, so they pair one to one (shapes are checked).

    Args:
        g1: G1 from :func:`rebuild_generators` (assigned in place).
        g2: G2 from :func:`rebuild_generators` (assigned in place).
        loaded: the export loaded by ``tf.saved_model.load``.
        img_H: the export's image height.
        img_W: the export's image width.

    Raises:
        ConfigError: the export's variables do not fit the models.
    """
    from pg2_tf.serving import graph

    theirs = loaded.signatures[contract.KEYPOINTS_SIGNATURE].variables
    function = graph.keypoints_function(g1, g2, img_H, img_W).get_concrete_function()
    by_handle = {id(weight.value.handle): weight for weight in g1.weights + g2.weights}
    ours = [by_handle[id(h)] for h in function.captured_inputs if id(h) in by_handle]
    shapes_differ = len(theirs) != len(ours) or any(
        tuple(a.shape) != tuple(b.shape) for a, b in zip(theirs, ours, strict=False)
    )
    if shapes_differ:
        raise ConfigError(
            f"the export's {len(theirs)} variables do not fit the {len(ours)} of the models its "
            "pg2_metadata.json describes: export it again with pg2-export, or use "
            "--precision=float32"
        )
    for source, target in zip(theirs, ours, strict=True):
        target.assign(source)
