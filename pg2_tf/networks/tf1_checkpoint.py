"""Loading ORIGINAL TF1 PG2 checkpoints (the released pretrained models) into the Keras models.

The name map, one rule per kind of variable (``<layer>`` is the Keras layer name, which
:mod:`pg2_tf.networks.models` sets to the original's):

| Keras variable                                  | TF1 variable                                       |
|-------------------------------------------------|----------------------------------------------------|
| g1 ``<layer>/kernel``, ``<layer>/bias``         | ``Pose_AE/G/<layer>/weights``, ``.../biases``      |
| g2 ``<layer>/kernel``, ``<layer>/bias``         | ``UAEnoFC/G/<layer>/weights``, ``.../biases``      |
| d ``Discriminator.<i>/kernel``, ``/bias``       | ``Discriminator.<i>/Discriminator.<i>.Filters``,   |
|                                                 | ``Discriminator.<i>/Discriminator.<i>.Biases``     |
| d ``Discriminator.BN<i>/<v>``                   | ``Discriminator.BN<i>.<v>`` (scale, offset,        |
|                                                 | moving_mean, moving_variance)                      |
| d ``Discriminator.Output/kernel``, ``/bias``    | ``Discriminator.Output/Discriminator.Output.W``, ``.b`` |

Conv kernels are HWIO in both, dense kernels (in, out) in both, so values are copied unchanged
(D's NCHW flatten order is reproduced inside :class:`pg2_tf.networks.models.Discriminator`).
Each trained variable also has Adam slots ``<name>/Adam`` (first moment) and ``<name>/Adam_1``
(second moment). The three optimisers' ``beta1_power``/``beta2_power`` accumulators are numbered in
the order the original created the optimisers: no suffix for G1, ``_1`` for G2, ``_2`` for D.
"""

import dataclasses
import math
import os

import numpy as np
import tensorflow as tf

from pg2_tf.core.errors import CheckpointError
from pg2_tf.networks import checkpoint_fit

G1_SCOPE = "Pose_AE/G"
G2_SCOPE = "UAEnoFC/G"
D_PREFIX = "Discriminator."
ROLES = ("g1", "g2", "d")
# Suffix of the beta power accumulators of each optimiser (creation order in the original).
BETA_POWER_SUFFIX = {"g1": "", "g2": "_1", "d": "_2"}
# The original optimisers were tf.train.AdamOptimizer(2e-5, beta1=0.5) with the default beta2.
TF1_ADAM_BETA1 = 0.5
TF1_ADAM_BETA2 = 0.999


def tf1_name(role: str, keras_variable) -> str:
    """The original TF1 name of a Keras variable (the table in the module docstring).

    Args:
        role: ``'g1'``, ``'g2'`` or ``'d'``.
        keras_variable: a variable of that model (its ``path`` ends ``<layer>/<variable>``).

    Returns:
        The TF1 name, e.g. ``Pose_AE/G/Conv_7/weights``.
    """
    layer_name, variable_name = keras_variable.path.split("/")[-2:]
    if role in ("g1", "g2"):
        scope = G1_SCOPE if role == "g1" else G2_SCOPE
        suffix = {"kernel": "weights", "bias": "biases"}[variable_name]
        return f"{scope}/{layer_name}/{suffix}"
    if layer_name.startswith("Discriminator.BN"):
        return f"{layer_name}.{variable_name}"
    if layer_name == "Discriminator.Output":
        suffix = {"kernel": "W", "bias": "b"}[variable_name]
    else:
        suffix = {"kernel": "Filters", "bias": "Biases"}[variable_name]
    return f"{layer_name}/{layer_name}.{suffix}"


def name_map(g1, g2, d=None) -> dict:
    """Every variable of the given models keyed by its original TF1 name.

    Args:
        g1: G1, or None to leave it out.
        g2: G2, or None to leave it out.
        d: D, or None to leave it out.

    Returns:
        ``{tf1 name: variable}``, insertion-ordered g1, g2, d, each in ``model.weights`` order.
    """
    models = {"g1": g1, "g2": g2, "d": d}
    mapping = {}
    for role, model in models.items():
        if model is None:
            continue
        for variable in model.weights:
            mapping[tf1_name(role, variable)] = variable
    return mapping


def role_of(tf1_variable_name: str) -> str | None:
    """Which model a variable of the original belongs to.

    Args:
        tf1_variable_name: a TF1 checkpoint name (a model variable or its Adam slot).

    Returns:
        ``'g1'``, ``'g2'`` or ``'d'``; None for anything else (beta powers, ``step``).
    """
    if tf1_variable_name.startswith(G1_SCOPE + "/"):
        return "g1"
    if tf1_variable_name.startswith(G2_SCOPE + "/"):
        return "g2"
    if tf1_variable_name.startswith(D_PREFIX):
        return "d"
    return None


def resolve_checkpoint(path: str) -> str:
    """A checkpoint prefix from a prefix or a directory.

    Args:
        path: a checkpoint prefix (``.../model.ckpt-12800``) or a directory with a ``checkpoint``
            state file.

    Returns:
        The prefix (the directory's latest checkpoint for a directory).

    Raises:
        CheckpointError: naming the path, when there is no checkpoint there (or it names one
            file of a checkpoint instead of its prefix).
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        prefix = tf.train.latest_checkpoint(path)
        if prefix is None:
            raise CheckpointError(
                f"{path} is a directory without a usable 'checkpoint' state file: pass the "
                "checkpoint prefix itself, e.g. --pretrained_path=<dir>/model.ckpt-<step>"
            )
        return prefix
    if os.path.exists(path + ".index"):
        return path
    if path.endswith((".index", ".meta")) or ".data-" in path:
        stem = path.rsplit(".data-", 1)[0] if ".data-" in path else path.rsplit(".", 1)[0]
        raise CheckpointError(
            f"{path} is one file of a checkpoint; pass its prefix instead: {stem}"
        )
    raise CheckpointError(
        f"no checkpoint at {path} (expected {path}.index and {path}.data-*): check the path "
        "given to --pretrained_path / --ckpt_path"
    )


def _read_shapes(prefix: str) -> dict:
    try:
        return tf.train.load_checkpoint(prefix).get_variable_to_shape_map()
    except (tf.errors.OpError, ValueError) as error:
        raise CheckpointError(f"cannot read checkpoint {prefix}: {error}") from None


def _configuration_hints(checkpoint_shapes: dict, g1, d) -> list[str]:
    """Explains a mismatch in terms of the flags that describe the checkpoint's configuration
    (:func:`pg2_tf.networks.checkpoint_fit.configuration`)."""
    their_g1_kernels = sum(
        1
        for name in checkpoint_shapes
        if name.startswith(G1_SCOPE + "/Conv") and name.endswith("/weights") and "/Adam" not in name
    )
    facts = checkpoint_fit.configuration(
        lambda role, weight: checkpoint_shapes.get(tf1_name(role, weight)),
        g1,
        d,
        their_g1_kernels,
    )
    return [fact.hint for fact in facts if fact.differs]


def check_compatible(prefix: str, mapping: dict, g1, d=None) -> None:
    """Checks every name and shape of a name map against a checkpoint.

    Args:
        prefix: the checkpoint prefix.
        mapping: :func:`name_map` of ``g1``, G2 and ``d``.
        g1: the built G1 (its shapes say which flags would fit).
        d: the built D, or None.

    Raises:
        CheckpointError: one message listing every missing, unexpected and mis-shaped variable,
            with the flags that would fit.
    """
    checkpoint_shapes = _read_shapes(prefix)
    loaded_roles = {role_of(name) for name in mapping}
    missing = [name for name in mapping if name not in checkpoint_shapes]
    unexpected = sorted(
        name
        for name, shape in checkpoint_shapes.items()
        if role_of(name) in loaded_roles and "/Adam" not in name and name not in mapping
    )
    mismatched = [
        f"{name}: checkpoint {list(checkpoint_shapes[name])}, model {list(variable.shape)}"
        for name, variable in mapping.items()
        if name in checkpoint_shapes and list(checkpoint_shapes[name]) != list(variable.shape)
    ]
    if not (missing or unexpected or mismatched):
        return
    hints = _configuration_hints(checkpoint_shapes, g1, d)
    if not any(role_of(name) for name in checkpoint_shapes):
        hints.append("it holds no PG2 variables (Pose_AE/G, UAEnoFC/G, Discriminator.*)")
    lines = [f"checkpoint {prefix} does not fit the model built from the flags"]
    lines += [f"  hint: {hint}" for hint in hints]
    for title, names in (
        ("missing from the checkpoint", missing),
        ("in the checkpoint but not in the model", unexpected),
        ("shape mismatch", mismatched),
    ):
        if names:
            shown = names[:12] + ([f"... and {len(names) - 12} more"] if len(names) > 12 else [])
            lines.append(f"  {title} ({len(names)}): " + "; ".join(shown))
    raise CheckpointError("\n".join(lines))


def load(path, g1, g2, d=None) -> str:
    """Loads an original TF1 checkpoint into built Keras models.

    Every name and shape is checked before any variable is assigned, so a failed load leaves
    the models as they were.

    Args:
        path: a checkpoint prefix (``.../model.ckpt-12800``) or a directory with a ``checkpoint``
            state file.
        g1: the built G1.
        g2: the built G2.
        d: the built D, or None to load only the generators (like the original test's partial
            restore of ``Pose_AE``/``UAEnoFC``).

    Returns:
        The checkpoint prefix used.

    Raises:
        CheckpointError: no checkpoint, or one of another configuration.
    """
    prefix = resolve_checkpoint(path)
    mapping = name_map(g1, g2, d)
    check_compatible(prefix, mapping, g1, d)
    reader = tf.train.load_checkpoint(prefix)
    values = {name: reader.get_tensor(name) for name in mapping}
    for name, variable in mapping.items():
        variable.assign(values[name].astype(np.float32))
    return prefix


def _steps_from_power(power: float, beta: float) -> int:
    """Number of Adam updates t, given the accumulator the original kept as beta^(t+1) in float32.

    Replays the float32 product so the inversion is exact where beta^(t+1) is not representable in
    closed form (beta2 = 0.999).
    """
    power = np.float32(power)
    beta32 = np.float32(beta)
    if power <= 0 or power > beta32:
        raise ValueError(f"not an Adam power accumulator of beta {beta}: {power}")
    estimate = max(0, round(math.log(float(power)) / math.log(float(beta32))) - 1)
    accumulator = beta32
    steps = 0
    while steps < estimate + 64:
        if accumulator == power:
            return steps
        accumulator = np.float32(accumulator * beta32)
        steps += 1
    return estimate


@dataclasses.dataclass
class AdamState:
    """One original optimiser's state: ``steps`` taken and per-variable moments (TF1 names)."""

    steps: int
    first_moments: dict  # tf1 variable name -> np.ndarray (slot "Adam")
    second_moments: dict  # tf1 variable name -> np.ndarray (slot "Adam_1")


def read_adam_states(path) -> dict:
    """The three original optimisers' states.

    The number of steps comes from ``beta1_power`` while it is exact in float32 (0.5^(t+1) down
    to 2^-149) and from ``beta2_power`` after that. The original's ``step`` variable is not used:
    its optimisers never incremented it.

    Args:
        path: a checkpoint prefix or a directory with a ``checkpoint`` state file.

    Returns:
        ``{'g1': AdamState, 'g2': AdamState, 'd': AdamState}``; moments float32 arrays keyed by
        TF1 variable name.

    Raises:
        CheckpointError: no checkpoint, or one without Adam state.
    """
    prefix = resolve_checkpoint(path)
    reader = tf.train.load_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    states = {}
    for role in ROLES:
        suffix = BETA_POWER_SUFFIX[role]
        beta1_name, beta2_name = f"beta1_power{suffix}", f"beta2_power{suffix}"
        if beta1_name not in shapes or beta2_name not in shapes:
            raise CheckpointError(
                f"checkpoint {prefix} has no Adam state ({beta1_name}/{beta2_name}): it is not an "
                "original training checkpoint; load it with --pretrained_path instead of --ckpt_path"
            )
        beta1_power = float(reader.get_tensor(beta1_name))
        if beta1_power > 2.0**-140:
            steps = _steps_from_power(beta1_power, TF1_ADAM_BETA1)
        else:
            steps = _steps_from_power(float(reader.get_tensor(beta2_name)), TF1_ADAM_BETA2)
        first, second = {}, {}
        for name in shapes:
            if role_of(name) != role:
                continue
            if name.endswith("/Adam"):
                first[name[: -len("/Adam")]] = reader.get_tensor(name)
            elif name.endswith("/Adam_1"):
                second[name[: -len("/Adam_1")]] = reader.get_tensor(name)
        states[role] = AdamState(steps, first, second)
    return states


def restore_adam(optimizer, variables_by_tf1_name: dict, state: AdamState) -> None:
    """Sets a Keras Adam's step count and moments from an original optimiser's state.

    Keras' Adam update equals TF1's (same epsilon-hat form), so training continues as the
    original would.

    Args:
        optimizer: a ``keras.optimizers.Adam``; built here on the variables if it is not yet.
        variables_by_tf1_name: the trainable variables this optimiser updates, keyed by TF1 name
            (a subset of :func:`name_map`), in the order to build the optimiser on.
        state: the original optimiser's :class:`AdamState`.

    Raises:
        CheckpointError: the state has no moments for some of the variables.
    """
    variables = list(variables_by_tf1_name.values())
    missing = [name for name in variables_by_tf1_name if name not in state.first_moments]
    if missing:
        raise CheckpointError(
            f"the checkpoint has no Adam slots for {len(missing)} variables, e.g. {missing[0]}"
        )
    if not optimizer.built:
        optimizer.build(variables)
    for name, variable in variables_by_tf1_name.items():
        index = optimizer._get_variable_index(variable)
        optimizer._momentums[index].assign(state.first_moments[name])
        optimizer._velocities[index].assign(state.second_moments[name])
    optimizer.iterations.assign(state.steps)
