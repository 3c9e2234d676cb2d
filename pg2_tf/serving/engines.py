"""Running an export fast on the machine at hand: the precision it computes in, and the engine.

The SavedModel written by :mod:`pg2_tf.serving.export_lib` stays float32 and plain TensorFlow
(TF Serving loads it unchanged). The photo tools (``pg2-app``, ``pg2-generate``, ``pg2-animate``)
run it through an :class:`Engine`, which decides HOW to compute on this machine:

    engine = Engine(saved_model_dir, loaded, choose_precision("auto"))
    outputs = engine.generate(images, keypoints_rc)    # {"G1", "G2", "diff_map"}: uint8

* ``float32``: the export's own ``from_keypoints`` signature (the exact, portable path).
* ``litert_int8`` (``auto`` on a CPU): the same weights converted to a LiteRT flatbuffer with
  int8 weights (dynamic-range quantisation: activations quantised per call, results float32) and
  run by LiteRT's XNNPACK CPU kernels (:mod:`pg2_tf.serving.litert`). Measured on CPUs with and
  without native bfloat16, it is the fastest way to compute within issue 23's accuracy bound
  (docs/performance.md, "Ways of computing at batch 1"). ``litert_float32`` and
  ``litert_float16`` (float16 weights) exist for the benchmark's comparison.
* ``bfloat16`` (``auto`` on a CPU that computes it natively where LiteRT is not installed, e.g.
  Windows) and ``float16`` (``auto`` with a GPU): G1 and G2 are rebuilt under Keras'
  ``mixed_bfloat16`` / ``mixed_float16`` policy and given the export's own variables
  (:mod:`pg2_tf.serving.rebuild`). The convolutions compute in 16 bits, variables and outputs
  stay float32; images are encoded exactly as the export encodes them.

Rule: one SavedModel for every machine. Rebuilding or converting at load time, rather than adding
a reduced-precision signature to the export, keeps existing exports working unchanged and the
export exact for TF Serving (what pays depends on the machine that serves, not the one that
exported). TensorFlow is imported only when a model is used, so that the commands' flags and
their one-line errors come before TensorFlow's start-up lines. Several users share an engine
through :class:`pg2_tf.serving.inference_queue.InferenceQueue`.
"""

import copy
import dataclasses
import time

import numpy as np

from pg2_tf.core import hardware, pose
from pg2_tf.core.errors import ConfigError
from pg2_tf.serving import contract
from pg2_tf.serving.litert import LiteRTFunction, cached_litert_model, litert_available
from pg2_tf.serving.rebuild import load_export_weights, rebuild_generators

PRECISIONS = ("auto", "float32")
PRECISION_HELP = (
    "auto: float16 on a GPU; on a CPU int8 weights on LiteRT/XNNPACK (the fastest measured, "
    "within a grey level of float32 on average), or bfloat16 where native and LiteRT is not "
    "installed; float32: the export's exact float32 path."
)
FLOAT32, BFLOAT16, FLOAT16 = "float32", "bfloat16", "float16"
LITERT_INT8, LITERT_FLOAT16, LITERT_FLOAT32 = "litert_int8", "litert_float16", "litert_float32"
_POLICIES = {BFLOAT16: "mixed_bfloat16", FLOAT16: "mixed_float16"}
_LITERT_WEIGHTS = {LITERT_INT8: "int8", LITERT_FLOAT16: "float16", LITERT_FLOAT32: "float32"}
COMPUTES = (FLOAT32, BFLOAT16, FLOAT16, *_LITERT_WEIGHTS)


@dataclasses.dataclass(frozen=True)
class Precision:
    """How an :class:`Engine` computes: ``name`` one of :data:`COMPUTES`; ``reason`` one short
    clause saying why it was chosen."""

    name: str
    reason: str


def check_precision(requested: str) -> None:
    """Checks a ``--precision`` value without importing TensorFlow (commands check it first).

    Args:
        requested: the flag's value.

    Raises:
        ConfigError: naming ``--precision``, unless ``requested`` is one of :data:`PRECISIONS`.
    """
    if requested not in PRECISIONS:
        raise ConfigError(f"--precision={requested} must be one of {', '.join(PRECISIONS)}")


def choose_precision(requested: str = "auto", *, bfloat16=None, gpu=None, litert=None) -> Precision:
    """The precision ``--precision=<requested>`` computes in on this machine.

    Args:
        requested: ``"auto"`` or ``"float32"`` (:data:`PRECISIONS`).
        bfloat16: a :class:`pg2_tf.core.hardware.Bfloat16Support` (default: this machine's).
        gpu: whether a GPU is visible (default: asks TensorFlow).
        litert: whether LiteRT is installed (default:
            :func:`pg2_tf.serving.litert.litert_available`).

    Returns:
        float32 when asked; for auto: float16 with a GPU; on a CPU, int8 weights on
        LiteRT/XNNPACK (measured faster than TensorFlow in float32 and in native bfloat16 alike,
        within a grey level on average; docs/performance.md); without LiteRT, bfloat16 where
        the CPU computes it natively, else float32.

    Raises:
        ConfigError: naming ``--precision``, for another value.
    """
    check_precision(requested)
    if requested == FLOAT32:
        return Precision(FLOAT32, "--precision=float32")
    if gpu is None:
        import tensorflow as tf

        gpu = bool(tf.config.list_logical_devices("GPU"))
    if gpu:
        return Precision(FLOAT16, "a GPU is visible")
    if litert is None:
        litert = litert_available()
    if litert:
        return Precision(
            LITERT_INT8, "on CPUs int8 weights on XNNPACK outrun TensorFlow's float32 and bfloat16"
        )
    support = hardware.bfloat16_support() if bfloat16 is None else bfloat16
    if support.native:
        return Precision(BFLOAT16, f"LiteRT is not installed; {support.reason}")
    return Precision(FLOAT32, f"LiteRT is not installed and {support.reason}")


class Engine:
    """Generates with an export at a chosen precision; thread-safe only through one caller (use
    :class:`pg2_tf.serving.inference_queue.InferenceQueue` for several).

    Args:
        saved_model: the export's folder (for its ``assets/pg2_metadata.json``).
        loaded: the export loaded by ``tf.saved_model.load`` (:func:`pg2_tf.serving.contract.load_export`).
        precision: a :class:`Precision` (or a :data:`PRECISIONS` value, decided here).
        warm_up: generate now (:meth:`warm_up`), so that the first real request is not the slow
            one (tracing, oneDNN's kernel choices); the inference queue warms up on its own
            thread instead.
        num_threads: LiteRT's threads (None: one per core); TensorFlow's pools are left alone.
        log: called with one line before a long first-time step (the LiteRT conversion);
            default: printed to stderr.
    """

    def __init__(
        self, saved_model, loaded, precision="auto", warm_up=True, num_threads=None, log=None
    ):

        if isinstance(precision, str):
            precision = choose_precision(precision)
        self.precision = precision
        signature = loaded.signatures[contract.KEYPOINTS_SIGNATURE]
        image_shape = signature.structured_input_signature[1]["image"].shape
        self.img_H, self.img_W = int(image_shape[1]), int(image_shape[2])
        self.metadata = contract.read_metadata(saved_model)
        if precision.name == FLOAT32:
            self._function = signature
        elif precision.name in _POLICIES:
            from pg2_tf.serving import graph  # imports TensorFlow

            g1, g2 = rebuild_generators(self.metadata, _POLICIES[precision.name])
            load_export_weights(g1, g2, loaded, self.img_H, self.img_W)
            self._models = (g1, g2)  # the function below only captures their variables
            self._function = graph.keypoints_function(g1, g2, self.img_H, self.img_W)
        elif precision.name in _LITERT_WEIGHTS:
            model = cached_litert_model(
                saved_model, self.metadata, loaded, _LITERT_WEIGHTS[precision.name], log
            )
            self._function = LiteRTFunction(model, num_threads)
        else:
            raise ValueError(f"unknown precision {precision.name}")
        self.warm_up_seconds = None
        if warm_up:
            self.warm_up()

    def split(self) -> "tuple[Engine, Engine] | None":
        """Two engines of this one's model, each on half of its cores, for two requests side by
        side under load (the inference queue); None where that does not pay: TensorFlow
        (it batches instead), LiteRT on a single thread. Each has an interpreter of its own
        (about 0.2 GB for a full-size Market model, 0.7 GB for DeepFashion); their answers are
        this engine's, bit for bit (XNNPACK divides work by output rows, not sums)."""
        if not isinstance(self._function, LiteRTFunction) or self._function.num_threads < 2:
            return None
        threads = self._function.num_threads
        halves = []
        for share in (threads // 2, threads - threads // 2):
            half = copy.copy(self)
            half._function = LiteRTFunction(self._function.model, share)
            half.warm_up_seconds = None
            halves.append(half)
        return tuple(halves)

    @property
    def batch_limit(self) -> int:
        """How many waiting requests are worth one batch: 8 for TensorFlow (a batch costs less
        per image), 1 for LiteRT (its interpreter takes one image at a time)."""
        return 1 if self.precision.name in _LITERT_WEIGHTS else 8

    def generate(self, images: np.ndarray, keypoints_rc: np.ndarray) -> dict:
        """uint8 [N, H, W, 3] + float32 [N, 18, 2] ((row, col), -1 missing) -> ``{"G1", "G2",
        "diff_map"}``, uint8 [N, H, W, 3] each, encoded as the export encodes them.

        Raises ValueError for other shapes."""

        images = np.asarray(images, np.uint8)
        keypoints_rc = np.asarray(keypoints_rc, np.float32)
        count = len(images)
        if images.shape != (count, self.img_H, self.img_W, 3) or keypoints_rc.shape != (
            count,
            pose.NUM_KEYPOINTS,
            2,
        ):
            raise ValueError(
                f"images {images.shape} and keypoints {keypoints_rc.shape} must be [N, "
                f"{self.img_H}, {self.img_W}, 3] and [N, {pose.NUM_KEYPOINTS}, 2]"
            )
        outputs = self._function(image=images, keypoints=keypoints_rc)
        return {name: np.asarray(outputs[name]) for name in contract.OUTPUT_NAMES}

    def warm_up(self) -> float:
        """Two batch-1 generations (a standing figure's discs on grey); returns the seconds of
        both. The first traces and picks kernels; the second finds what the first left to the
        calling thread (oneDNN's per-thread scratch memory): run it on the thread that serves."""

        start = time.perf_counter()
        image = np.full((1, self.img_H, self.img_W, 3), 128, np.uint8)
        rows = np.linspace(0.1, 0.9, pose.NUM_KEYPOINTS) * self.img_H
        keypoints_rc = np.stack([rows, np.full_like(rows, self.img_W / 2)], axis=1)[None]
        for _ in range(2):
            self.generate(image, keypoints_rc.astype(np.float32))
        self.warm_up_seconds = time.perf_counter() - start
        return self.warm_up_seconds


def describe(engine: Engine) -> str:
    """One line for a command's output: the precision, why, and the warm-up time.

    Args:
        engine: an :class:`Engine`.

    Returns:
        E.g. ``"computing in litert_int8 (...); warmed up in 0.4 s"``.
    """
    text = f"computing in {engine.precision.name} ({engine.precision.reason})"
    if engine.warm_up_seconds is not None:
        text += f"; warmed up in {engine.warm_up_seconds:.1f} s"
    return text
