"""Does a checkpoint fit the models built from the flags? The one place that decides.

Three loaders read checkpoints: :func:`pg2_tf.networks.tf1_checkpoint.load` (the original's TF1 names),
:func:`pg2_tf.networks.checkpoints.load_generators` (our object-graph checkpoints) and the trainer's resume
(:func:`pg2_tf.networks.checkpoints.check_flags_fit`). Each names variables its own way, so each passes
:func:`configuration` a function giving the checkpoint's shape of one of our weights; what the
shapes say about the configuration (G1's first conv -> ``conv_hidden_num``, G1's bottleneck bias
-> ``z_num``, D's first conv -> ``d_dim``, G1's count of conv kernels -> the image size and so the
dataset) is read here only.
"""

import dataclasses
from collections.abc import Callable

from pg2_tf.core import datasets

# What TensorFlow appends to a variable's path in an object-graph checkpoint key.
ATTRIBUTES_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
# G1 has 6 conv kernels per resolution (repeat_num of them: 5 for 128 rows, 6 for 256).
G1_KERNELS_PER_RESOLUTION = 6


def readable_key(key: str) -> str:
    """An object-graph checkpoint key without its ``/.ATTRIBUTES/VARIABLE_VALUE`` suffix.

    Args:
        key: a checkpoint key (``g1/Conv_7/kernel/.ATTRIBUTES/VARIABLE_VALUE``).

    Returns:
        The key without the suffix (``g1/Conv_7/kernel``); other keys unchanged.
    """
    return key.removesuffix(ATTRIBUTES_SUFFIX)


@dataclasses.dataclass(frozen=True)
class Fact:
    """One configuration flag as the checkpoint's shapes and the built models have it."""

    flag: str  # conv_hidden_num | z_num | d_dim | repeat_num
    ours: int
    theirs: int

    @property
    def differs(self) -> bool:
        return self.ours != self.theirs

    @property
    def fix(self) -> str:
        """The flags that fit the checkpoint: ``--conv_hidden_num=8``, or for ``repeat_num`` the
        dataset's ``--model=1 --img_H=128 --img_W=64``."""
        if self.flag == "repeat_num":
            return datasets.flags_for_repeat_num(self.theirs, f"--img_H={2 ** (self.theirs + 2)}")
        return f"--{self.flag}={self.theirs}"

    @property
    def described(self) -> str:
        """``conv_hidden_num=8``, or ``5 resolutions, i.e. --model=1 ...`` for the image size."""
        if self.flag == "repeat_num":
            return f"{self.theirs} resolutions, i.e. {self.fix}"
        return f"{self.flag}={self.theirs}"

    @property
    def hint(self) -> str:
        """One line for a mismatch: what the checkpoint has and the flag to use."""
        if self.flag == "repeat_num":
            return f"the checkpoint is of another image size / dataset: use {self.fix}"
        return f"the checkpoint has {self.described}: use {self.fix}"


def configuration(
    shape_of: Callable[[str, object], list | None],
    g1,
    d=None,
    their_g1_kernels: int | None = None,
) -> list[Fact]:
    """The configuration flags a checkpoint's shapes reveal, beside the built models' values.

    Args:
        shape_of: ``(role, weight) -> shape`` in the checkpoint of our ``weight`` of model
            ``role`` ('g1' or 'd'), or None when the checkpoint lacks it.
        g1: the built :class:`pg2_tf.networks.models.PoseGenerator`; d: the built Discriminator or None.
        their_g1_kernels: how many G1 conv kernels the checkpoint holds (None: unknown).

    Returns:
        :class:`Fact` s for conv_hidden_num, z_num, d_dim and repeat_num, each only when the
        checkpoint shows it (repeat_num only when it differs, the others always).
    """
    facts = []
    first_conv = shape_of("g1", g1.input_conv.kernel)
    if first_conv:
        facts.append(Fact("conv_hidden_num", int(g1.input_conv.kernel.shape[-1]), first_conv[-1]))
    bottleneck = shape_of("g1", g1.to_z.bias)
    if bottleneck:
        facts.append(Fact("z_num", int(g1.to_z.bias.shape[0]), bottleneck[0]))
    d_first = next((w for w in d.weights if len(w.shape) == 4), None) if d is not None else None
    if d_first is not None:
        theirs = shape_of("d", d_first)
        if theirs:
            facts.append(Fact("d_dim", int(d_first.shape[-1]), theirs[-1]))
    our_kernels = sum(1 for weight in g1.weights if len(weight.shape) == 4)
    if (
        their_g1_kernels
        and their_g1_kernels != our_kernels
        and their_g1_kernels % G1_KERNELS_PER_RESOLUTION == 0
    ):
        facts.append(
            Fact(
                "repeat_num",
                our_kernels // G1_KERNELS_PER_RESOLUTION,
                their_g1_kernels // G1_KERNELS_PER_RESOLUTION,
            )
        )
    return facts
