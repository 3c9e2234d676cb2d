"""Loading generator weights from any checkpoint a PG2 user holds: an ORIGINAL TF1 checkpoint
(the released models, by the name map of :mod:`pg2_tf.networks.tf1_checkpoint`) or one of ours (the
object-graph checkpoints ``tf.train.CheckpointManager`` writes during training).

Used by test mode, export and ``--pretrained_path``; names and shapes are checked before anything
is assigned, so a checkpoint of another configuration fails with one clear message.

Rule: nothing is assigned before every name and shape is checked.
"""

import collections

import keras
import tensorflow as tf

from pg2_tf.core.errors import CheckpointError, ConfigError, first_line
from pg2_tf.networks import checkpoint_fit, tf1_checkpoint


def load_generators(checkpoint_path, g1, g2) -> str:
    """Loads G1/G2 weights from an original TF1 checkpoint or one of ours.

    Args:
        checkpoint_path: a checkpoint prefix (``.../model.ckpt-12800``, ``.../model.ckpt-5``) or a
            directory with a ``checkpoint`` state file (its latest checkpoint).
        g1: the built G1 of the checkpoint's configuration.
        g2: the built G2 of the checkpoint's configuration.

    Returns:
        The checkpoint prefix loaded.

    Raises:
        CheckpointError: no checkpoint there, neither kind, a damaged one, or one of another
            configuration.
        RuntimeError: the generators have weights tf.train.Checkpoint does not track (a bug of
            :mod:`pg2_tf.networks.models`).
    """
    prefix = tf1_checkpoint.resolve_checkpoint(checkpoint_path)
    try:
        variable_names = [name for name, _ in tf.train.list_variables(prefix)]
    except (tf.errors.OpError, ValueError) as error:
        raise CheckpointError(f"cannot read checkpoint {prefix}: {first_line(error)}") from None
    # Only the generators' weights are checked (read): D and the Adam slots are not loaded here.
    problem = damage(prefix, [name for name in variable_names if _is_generator_weight(name)])
    if problem:
        raise CheckpointError(
            f"checkpoint {prefix} is damaged ({problem}): use an earlier model.ckpt-<step> of "
            "the same folder, or copy this one again"
        )
    if any(name.startswith(tf1_checkpoint.G1_SCOPE + "/") for name in variable_names):
        return tf1_checkpoint.load(prefix, g1, g2)
    if "_CHECKPOINTABLE_OBJECT_GRAPH" not in variable_names:
        raise CheckpointError(
            f"{prefix} is neither an original PG2 checkpoint (no Pose_AE/G variables) nor a "
            "pg2_tf training checkpoint (no object graph): pass a PG2 model checkpoint"
        )
    _load_object_graph_checkpoint(prefix, g1, g2)
    return prefix


def _load_object_graph_checkpoint(prefix: str, g1, g2) -> None:
    """Restores ``tf.train.Checkpoint(g1=g1, g2=g2)`` from one of our training checkpoints.

    Names and shapes are compared first, so that a checkpoint of another configuration fails
    with one clear message before anything is assigned.
    """
    keys, unreachable = _object_graph_keys(g1, g2)
    shapes = dict(tf.train.list_variables(prefix))
    missing = [key for key in keys if key not in shapes]
    mismatched = [
        f"{checkpoint_fit.readable_key(key)}: checkpoint {list(shapes[key])}, "
        f"model {list(weight.shape)}"
        for key, weight in keys.items()
        if key in shapes and list(shapes[key]) != list(weight.shape)
    ]
    if missing or mismatched:
        problems = []
        if missing:
            problems.append(f"{len(missing)} generator variables missing, e.g. {missing[0]}")
        if mismatched:
            problems.append(f"{len(mismatched)} of another shape, e.g. {mismatched[0]}")
        hints = _configuration_hints(keys, shapes, g1)
        raise CheckpointError(
            f"{prefix} does not fit the generators built from the flags ({'; '.join(problems)})"
            f"{hints}: check --model, --img_H, --img_W, --conv_hidden_num and --z_num against "
            "the params.json saved beside it"
        )
    if unreachable:
        total = len(g1.weights) + len(g2.weights)
        raise RuntimeError(
            f"{len(unreachable)} of {total} generator variables (e.g. {unreachable[0]}) are not "
            "tracked by tf.train.Checkpoint, so no object-graph checkpoint can restore them: "
            "pg2_tf.networks.models must make every layer an attribute (Keras 3 does not checkpoint "
            "layers held in Python lists)"
        )
    status = tf.train.Checkpoint(g1=g1, g2=g2).read(prefix)
    status.expect_partial().assert_existing_objects_matched()


def _is_generator_weight(name: str) -> bool:
    """A G1/G2 weight of an original checkpoint or of ours (not D, not an optimizer slot)."""
    if "/Adam" in name or "OPTIMIZER_SLOT" in name:
        return False
    scopes = (tf1_checkpoint.G1_SCOPE, tf1_checkpoint.G2_SCOPE, "g1", "g2")
    return name.startswith(tuple(scope + "/" for scope in scopes))


# What reading a truncated or corrupted checkpoint raises (its size or a checksum disagrees).
READ_ERRORS = (tf.errors.OpError, ValueError, RuntimeError, IndexError)


def damage(prefix: str, names=None, load=None) -> str | None:
    """Why a checkpoint cannot be read, or None when it is intact.

    Every tensor (or every one of ``names``) is read, so a truncated or corrupted data file is
    caught by its size or checksum.

    Args:
        prefix: the checkpoint prefix.
        names: the variables to read, or None for all.
        load: instead, a function ``load(prefix)`` that reads the checkpoint into the caller's
            objects (e.g. a trainer's restore), so that the check is the only read.

    Returns:
        The first line of the read error, or None.
    """
    try:
        if load is not None:
            load(prefix)
            return None
        reader = tf.train.load_checkpoint(prefix)
        for name in reader.get_variable_to_shape_map() if names is None else names:
            reader.get_tensor(name)
    except READ_ERRORS as error:
        return first_line(error)
    return None


def object_graph_variables(root) -> dict:
    """Every variable a ``tf.train.Checkpoint`` object saves, keyed as TensorFlow names it.

    Args:
        root: the ``tf.train.Checkpoint`` (or any trackable).

    Returns:
        ``{"<path>/.ATTRIBUTES/VARIABLE_VALUE": variable}``, breadth first as TensorFlow walks it.
    """
    view = tf.train.TrackableView(root)
    found, seen = {}, {id(root)}
    queue = collections.deque([(root, "")])
    while queue:
        parent, parent_path = queue.popleft()
        for name, child in view.children(parent).items():
            if id(child) in seen:
                continue
            seen.add(id(child))
            escaped = name.replace(".", "..").replace("/", ".S")
            path = f"{parent_path}/{escaped}" if parent_path else escaped
            if isinstance(child, (tf.Variable, keras.Variable)):
                found[path + checkpoint_fit.ATTRIBUTES_SUFFIX] = child
            queue.append((child, path))
    return found


def _configuration_hints(keys: dict, shapes: dict, g1) -> str:
    """' (the checkpoint has conv_hidden_num=8, z_num=64)', what the checkpoint's shapes say about
    its configuration (:func:`pg2_tf.networks.checkpoint_fit.configuration`); '' when they say nothing."""
    key_of = {id(weight): key for key, weight in keys.items()}
    their_g1_kernels = sum(
        1 for k, shape in shapes.items() if k.startswith("g1/") and len(shape) == 4
    )
    facts = checkpoint_fit.configuration(
        lambda role, weight: shapes.get(key_of.get(id(weight))), g1, None, their_g1_kernels
    )
    found = [fact.described for fact in facts]
    return f" (the checkpoint has {', '.join(found)})" if found else ""


def _object_graph_keys(g1, g2) -> tuple[dict, list]:
    """Checkpoint keys of the generators' weights in ``tf.train.Checkpoint(g1=g1, g2=g2)``.

    Walks the object graph breadth first, as TensorFlow does to name what it saves, so the keys
    are ``g1/<attribute>/.../<variable>/.ATTRIBUTES/VARIABLE_VALUE``.

    Returns:
        ``({key: weight}, [paths of weights the object graph does not reach]})``.
    """
    weights = {id(weight) for weight in g1.weights + g2.weights}
    variables = object_graph_variables(tf.train.Checkpoint(g1=g1, g2=g2))
    keys = {key: variable for key, variable in variables.items() if id(variable) in weights}
    reached = {id(weight) for weight in keys.values()}
    unreachable = [weight.path for weight in g1.weights + g2.weights if id(weight) not in reached]
    return keys, unreachable


def check_flags_fit(prefix: str, trainer) -> None:
    """Checks that the models built from the flags fit a checkpoint, before model_dir is changed.

    Args:
        prefix: the checkpoint prefix.
        trainer: an object with ``checkpoint`` (the ``tf.train.Checkpoint``), ``g1`` and ``d``.

    Raises:
        ConfigError: naming the flag whose value does not fit (and the checkpoint's value), or
            the first variable of another shape.
    """
    shapes = dict(tf.train.list_variables(prefix))
    variables = object_graph_variables(trainer.checkpoint)
    key_of = {id(variable): key for key, variable in variables.items()}
    facts = checkpoint_fit.configuration(
        lambda role, weight: shapes.get(key_of.get(id(weight))), trainer.g1, trainer.d
    )
    for fact in facts:
        if fact.differs:
            raise ConfigError(
                f"--{fact.flag}={fact.ours} does not fit {prefix}, which has {fact.described}: "
                f"pass {fact.fix} to resume it, or use another --model_dir"
            )
    mismatched = [
        f"{checkpoint_fit.readable_key(key)}: checkpoint {shapes[key]}, "
        f"model {list(variable.shape)}"
        for key, variable in variables.items()
        if key in shapes and list(shapes[key]) != list(variable.shape)
    ]
    if mismatched:
        raise ConfigError(
            f"{prefix} does not fit the model built from the flags ({mismatched[0]}): check "
            "--model, --img_H, --img_W, --conv_hidden_num, --z_num and --d_dim against its "
            "params.json, or use another --model_dir"
        )
