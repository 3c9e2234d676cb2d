"""How a training process computes: the Keras dtype policy of ``--mixed_precision`` and
TensorFlow's thread pools.

Rule: both are set before TensorFlow runs anything (the command line calls them first); the
numbers behind the choices are in docs/performance.md ("Mixed precision", "Threads").
"""

import contextlib

import keras
import tensorflow as tf
from absl import logging

from pg2_tf.core import hardware


def mixed_precision_policy() -> str:
    """The Keras dtype policy for ``--mixed_precision`` on the visible devices.

    ``"mixed_float16"`` when a GPU is visible (tensor cores; needs loss scaling);
    ``"mixed_bfloat16"`` on a CPU that computes bfloat16 natively (AVX512_BF16 or AMX,
    :func:`pg2_tf.core.hardware.bfloat16_support`; no loss scaling: bfloat16 has float32's
    exponent range); otherwise ``"float32"``, with one warning line: there bfloat16 is emulated
    and runs far slower than float32 (docs/performance.md, "Mixed precision").

    Returns:
        The policy name: "mixed_float16", "mixed_bfloat16" or "float32".
    """
    if tf.config.list_logical_devices("GPU"):
        return "mixed_float16"
    support = hardware.bfloat16_support()
    if support.native:
        return "mixed_bfloat16"
    logging.log_first_n(
        logging.WARNING,
        "--mixed_precision: %s, so bfloat16 would run about 12x slower than float32; "
        "computing in float32",
        1,
        support.reason,
    )
    return "float32"


@contextlib.contextmanager
def dtype_policy(name: str):
    """Sets the Keras global dtype policy for the layers created inside the block, then restores
    the previous one.

    Args:
        name: a Keras dtype policy name, e.g. "float32" or "mixed_bfloat16".

    Yields:
        None, with the policy set.
    """
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def configure_threads(inter_op_threads: int = 0, intra_op_threads: int = 0) -> int:
    """Sets TensorFlow's thread pools; must run before TensorFlow executes anything.

    Args:
        inter_op_threads: how many ops may run at once; 0 for TensorFlow's default (about the
            number of cores; docs/performance.md, "Threads").
        intra_op_threads: threads per op; 0 for TensorFlow's default.

    Returns:
        The inter-op setting applied (0: TensorFlow's default).
    """
    tf.config.threading.set_inter_op_parallelism_threads(inter_op_threads)
    tf.config.threading.set_intra_op_parallelism_threads(intra_op_threads)
    return inter_op_threads
