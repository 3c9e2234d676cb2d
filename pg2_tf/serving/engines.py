"""Running an export fast on the machine at hand: precision choice, warm-up, one inference queue.

The SavedModel written by :mod:`pg2_tf.export` stays float32 and plain TensorFlow (TF Serving
loads it unchanged). The photo tools (``pg2-app``, ``pg2-generate``, ``pg2-animate``) run it
through an :class:`Engine`, which decides HOW to compute on this machine:

    engine = Engine(saved_model_dir, loaded, choose_precision("auto"))
    outputs = engine.generate(images, keypoints_rc)    # {"G1", "G2", "diff_map"}: uint8

* ``float32``: the export's own ``from_keypoints`` signature (the exact, portable path).
* ``litert_int8`` (``auto`` on a CPU): the same weights converted to a LiteRT flatbuffer with
  int8 weights (dynamic-range quantisation: activations quantised per call, results float32) and
  run by LiteRT's XNNPACK CPU kernels. Measured on CPUs with and without native bfloat16, it is
  the fastest way to compute within issue 23's accuracy bound: at batch 1, 0.11-0.13 of
  TensorFlow float32's time on a Xeon with AMX, where TensorFlow's bfloat16 takes 0.27-0.35, and
  0.21 against 0.42 on an AVX512_BF16 EPYC (docs/performance.md). The flatbuffer is converted
  once per export and kept in ``~/.cache/pg2_tf/litert`` (``PG2_TF_CACHE``). ``litert_float32``
  and ``litert_float16`` (float16 weights) exist for the benchmark's comparison.
* ``bfloat16`` (``auto`` on a CPU that computes it natively where LiteRT is not installed, e.g.
  Windows) and ``float16`` (``auto`` with a GPU): G1 and G2 are rebuilt from
  :mod:`pg2_tf.networks.models` under Keras' ``mixed_bfloat16`` / ``mixed_float16`` policy and given the
  export's own variables, read from the loaded SavedModel (no checkpoint needed). The
  convolutions compute in 16 bits, variables and outputs stay float32; images are encoded
  exactly as the export encodes them.

Rebuilding or converting at load time, rather than adding a reduced-precision signature to the
export, keeps one SavedModel for every machine (what pays depends on the machine that serves, not
the one that exported), keeps existing exports working unchanged, and keeps the export exact for
TF Serving.

:class:`InferenceQueue` serves the requests of several users in arrival order (its worker
threads also warm the engines up): every caller gets its own images back, and a request waits at
most for the requests ahead of it. For TensorFlow it joins those waiting into one batch of up to
:attr:`Engine.batch_limit` (8): a batch of 7 cost 0.69 of seven single calls on the 2-core Xeon
(docs/performance.md; a batch may move a pixel by a grey level against the same request alone).
LiteRT's interpreter runs a batch one image at a time, so there the queue takes one request at a
time instead, and under load runs two side by side, each on half of the cores
(:meth:`Engine.split`; the same answers, bit for bit).
"""

import collections
import concurrent.futures
import copy
import dataclasses
import hashlib
import os
import sys
import threading
import time

import numpy as np

from pg2_tf.core import atomic, hardware, pose
from pg2_tf.core.errors import ConfigError
from pg2_tf.serving import contract

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
    """Raises ConfigError naming ``--precision`` unless ``requested`` is one of
    :data:`PRECISIONS` (without importing TensorFlow: commands check it first)."""
    if requested not in PRECISIONS:
        raise ConfigError(f"--precision={requested} must be one of {', '.join(PRECISIONS)}")


def litert_available() -> bool:
    """Whether LiteRT's interpreter (``ai-edge-litert``, not built for Windows) imports here."""
    try:
        from ai_edge_litert import interpreter  # noqa: F401
    except ImportError:
        return False
    return True


def choose_precision(requested: str = "auto", *, bfloat16=None, gpu=None, litert=None) -> Precision:
    """The precision ``--precision=<requested>`` computes in on this machine.

    Args:
        requested: ``"auto"`` or ``"float32"`` (:data:`PRECISIONS`).
        bfloat16: a :class:`pg2_tf.core.hardware.Bfloat16Support` (default: this machine's).
        gpu: whether a GPU is visible (default: asks TensorFlow).
        litert: whether LiteRT is installed (default: :func:`litert_available`).

    Returns:
        float32 when asked; for auto: float16 with a GPU; on a CPU, int8 weights on
        LiteRT/XNNPACK (measured faster than TensorFlow in float32 and in native bfloat16 alike,
        within a grey level on average; docs/performance.md); without LiteRT, bfloat16 where
        the CPU computes it natively, else float32.

    Raises:
        ConfigError naming ``--precision`` for another value.
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


# TensorFlow is imported only when a model is used (pg2_tf.export and pg2_tf.networks.models import it), so
# that the commands' flags and their one-line errors come before TensorFlow's start-up lines.


# ---- the engine --------------------------------------------------------------------------------


def rebuild_generators(metadata: dict, policy: str):
    """G1, G2 of an export's configuration, built (random weights) under a Keras dtype policy."""
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


def keypoints_function(g1, g2, img_H: int, img_W: int, batch=None):
    """A tf.function like the export's ``from_keypoints`` (same inputs, outputs and encoding)."""
    import tensorflow as tf

    from pg2_tf import export

    @tf.function(
        input_signature=[
            tf.TensorSpec([batch, img_H, img_W, 3], tf.uint8),
            tf.TensorSpec([batch, pose.NUM_KEYPOINTS, 2], tf.float32),
        ]
    )
    def from_keypoints(image, keypoints):
        pose_target = export.render_pose_maps(keypoints, img_H, img_W)
        return export.generate_outputs(g1, g2, image, pose_target)

    return from_keypoints


def load_export_weights(g1, g2, loaded, img_H: int, img_W: int) -> None:
    """Gives rebuilt G1, G2 the variables of a loaded export's ``from_keypoints`` signature.

    A traced function captures variables in the order its graph first reads them; the export's
    signature kept that order, and the same code traced on the rebuilt models reads theirs in
    the same order, so they pair one to one (shapes are checked). Raises ConfigError when the
    export's variables do not fit the models.
    """

    theirs = loaded.signatures[contract.KEYPOINTS_SIGNATURE].variables
    function = keypoints_function(g1, g2, img_H, img_W).get_concrete_function()
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


class Engine:
    """Generates with an export at a chosen precision; thread-safe only through one caller (use
    :class:`InferenceQueue` for several).

    Args:
        saved_model: the export's folder (for its ``assets/pg2_metadata.json``).
        loaded: the export loaded by ``tf.saved_model.load`` (``pg2_tf.generate.load_export``).
        precision: a :class:`Precision` (or a :data:`PRECISIONS` value, decided here).
        warm_up: generate now (:meth:`warm_up`), so that the first real request is not the slow
            one (tracing, oneDNN's kernel choices); :class:`InferenceQueue` warms up on its own
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
            g1, g2 = rebuild_generators(self.metadata, _POLICIES[precision.name])
            load_export_weights(g1, g2, loaded, self.img_H, self.img_W)
            self._models = (g1, g2)  # the function below only captures their variables
            self._function = keypoints_function(g1, g2, self.img_H, self.img_W)
        elif precision.name in _LITERT_WEIGHTS:
            model = cached_litert_model(
                saved_model, self.metadata, loaded, _LITERT_WEIGHTS[precision.name], log
            )
            self._function = _LiteRTFunction(model, num_threads)
        else:
            raise ValueError(f"unknown precision {precision.name}")
        self.warm_up_seconds = None
        if warm_up:
            self.warm_up()

    def split(self) -> "tuple[Engine, Engine] | None":
        """Two engines of this one's model, each on half of its cores, for two requests side by
        side under load (:class:`InferenceQueue`); None where that does not pay: TensorFlow
        (it batches instead), LiteRT on a single thread. Each has an interpreter of its own
        (about 0.2 GB for a full-size Market model, 0.7 GB for DeepFashion); their answers are
        this engine's, bit for bit (XNNPACK divides work by output rows, not sums)."""
        if not isinstance(self._function, _LiteRTFunction) or self._function.num_threads < 2:
            return None
        threads = self._function.num_threads
        halves = []
        for share in (threads // 2, threads - threads // 2):
            half = copy.copy(self)
            half._function = _LiteRTFunction(self._function.model, share)
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
    """One line for a command's output: the precision, why, and the warm-up time."""
    text = f"computing in {engine.precision.name} ({engine.precision.reason})"
    if engine.warm_up_seconds is not None:
        text += f"; warmed up in {engine.warm_up_seconds:.1f} s"
    return text


# ---- LiteRT ------------------------------------------------------------------------------------


def litert_model(metadata: dict, loaded, weights: str = "float32") -> bytes:
    """The export's G1 + G2 (``from_keypoints``, batch 1) as a LiteRT flatbuffer.

    ``weights``: ``"float32"``; ``"float16"`` (weights stored in float16, computed in float32 on
    CPUs); ``"int8"`` (dynamic-range quantisation: int8 weights, activations quantised per call).
    """
    import tensorflow as tf

    img_H, img_W = int(metadata["img_H"]), int(metadata["img_W"])
    g1, g2 = rebuild_generators(metadata, "float32")
    load_export_weights(g1, g2, loaded, img_H, img_W)
    function = keypoints_function(g1, g2, img_H, img_W, batch=1).get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], g1)
    if weights == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif weights == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif weights != "float32":
        raise ValueError(f"weights must be float32, float16 or int8, not {weights}")
    return converter.convert()


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cache_dir() -> str:
    """Where converted LiteRT models are kept: ``$PG2_TF_CACHE/litert`` or ~/.cache/pg2_tf/litert."""
    root = os.environ.get("PG2_TF_CACHE") or os.path.join("~", ".cache", "pg2_tf")
    return os.path.abspath(os.path.join(os.path.expanduser(root), "litert"))


def cached_litert_model(saved_model, metadata: dict, loaded, weights: str, log=None) -> bytes:
    """:func:`litert_model` of an export, converted once and kept under :func:`cache_dir`, named
    by a hash of the export's graph and variables (a re-export gets a new file). Written
    atomically; an unwritable cache only costs the conversion next time. ``log`` (optional) is
    told before a conversion (about a minute for a full-size DeepFashion model)."""
    digest = hashlib.sha256(weights.encode())
    for name in ("saved_model.pb", os.path.join("variables", "variables.index")):
        with open(os.path.join(os.fspath(saved_model), name), "rb") as handle:
            digest.update(handle.read())
    variables = os.path.join(os.fspath(saved_model), "variables")
    for name in sorted(os.listdir(variables)):
        digest.update(f"{name}:{os.path.getsize(os.path.join(variables, name))}".encode())
    path = os.path.join(cache_dir(), f"{digest.hexdigest()[:24]}_{weights}.tflite")
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        pass
    if log is None:
        log = _to_stderr
    log(f"converting the export to LiteRT ({weights} weights) once; kept in {cache_dir()}")
    model = litert_model(metadata, loaded, weights)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        atomic.write_bytes(path, model)
    except OSError:
        pass  # an unwritable cache only costs the conversion next time
    return model


class _LiteRTFunction:
    """Calls a LiteRT interpreter (XNNPACK) like the export's signature, one image at a time."""

    def __init__(self, model: bytes, num_threads=None):
        from ai_edge_litert import interpreter as litert

        self.model = model
        self.num_threads = num_threads or os.cpu_count()
        self.interpreter = litert.Interpreter(model_content=model, num_threads=self.num_threads)
        self.interpreter.allocate_tensors()
        inputs = self.interpreter.get_input_details()
        self.image_index = next(d["index"] for d in inputs if "image" in d["name"])
        self.keypoints_index = next(d["index"] for d in inputs if "keypoints" in d["name"])
        # The function's dict of outputs is flattened in key order: G1, G2, diff_map.
        self.output_indices = [d["index"] for d in self.interpreter.get_output_details()]

    def __call__(self, image, keypoints):

        results = {name: [] for name in contract.OUTPUT_NAMES}
        for i in range(len(image)):
            self.interpreter.set_tensor(self.image_index, image[i : i + 1])
            self.interpreter.set_tensor(self.keypoints_index, keypoints[i : i + 1])
            self.interpreter.invoke()
            for name, index in zip(contract.OUTPUT_NAMES, self.output_indices, strict=True):
                results[name].append(self.interpreter.get_tensor(index))
        return {name: np.concatenate(arrays) for name, arrays in results.items()}


# ---- the queue ---------------------------------------------------------------------------------


class InferenceQueue:
    """Worker threads that run an :class:`Engine` for every caller, in arrival order.

    ``submit`` returns a :class:`concurrent.futures.Future` of ``{"G1", "G2", "diff_map"}``
    (uint8 [H, W, 3] each) for one image and pose. The main worker takes the oldest request and
    every other one waiting, up to ``max_batch`` in all (None: the engine's
    :attr:`Engine.batch_limit`), and runs them as one batch.

    ``side_by_side`` (None: wherever :meth:`Engine.split` gives two halves, i.e. LiteRT): a second
    worker then takes the oldest request whenever the main one is busy, and while both work each runs
    on half of the cores; a request that finds nobody else in the queue runs on all of them.
    With 8 clients on the 2-core Xeon this served 1.22x the requests per second of one worker
    (median of 8 alternated rounds, ``python -m benchmarks.serving --parts side_by_side``), where
    one two-thread interpreter lost its time whenever the server's own work took a core from one
    of its threads (docs/performance.md).

    ``warm_up``: the constructor returns once :meth:`Engine.warm_up` has run for every engine,
    each on the thread that serves with it.
    """

    def __init__(self, engine: Engine, max_batch=None, warm_up: bool = True, side_by_side=None):
        self.engine = engine
        self.max_batch = engine.batch_limit if max_batch is None else max_batch
        halves = engine.split() if side_by_side is not False else None
        if side_by_side and halves is None:
            raise ValueError(f"an engine computing in {engine.precision.name} does not split")
        self._pending = collections.deque()
        self._changed = threading.Condition()
        self._main_busy = self._helper_busy = self._closed = False
        self.side_by_side = halves is not None
        self.batch_sizes = []  # the size of every batch run (for tests and benchmarks)
        self.side_by_side_runs = 0  # requests run while the other worker was busy too
        workers = [(self._serve_main, (engine, halves[0]) if halves else (engine,))]
        if halves:
            workers.append((self._serve_helper, (halves[1],)))
        self._workers = []
        warmed = []
        for index, (serve, engines) in enumerate(workers):
            ready = concurrent.futures.Future()
            warmed.append(ready)
            name = "pg2-inference" if index == 0 else "pg2-inference-2"
            thread = threading.Thread(
                target=self._work, args=(serve, engines, ready, warm_up), name=name, daemon=True
            )
            thread.start()
            self._workers.append(thread)
        try:
            for ready in warmed:
                ready.result()
        except BaseException:
            self.close()
            raise

    def submit(self, image: np.ndarray, keypoints_rc: np.ndarray) -> concurrent.futures.Future:
        """Queues uint8 [H, W, 3] + float32 [18, 2]; the future gives the three uint8 images."""
        future = concurrent.futures.Future()
        with self._changed:
            if self._closed:
                raise RuntimeError("the inference queue is closed")
            self._pending.append((image, keypoints_rc, future))
            self._changed.notify_all()
        return future

    def close(self) -> None:
        """Stops the workers after the requests already queued."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        for thread in self._workers:
            thread.join()

    def _work(self, serve, engines, ready, warm_up) -> None:
        try:
            if warm_up:  # on the thread that serves with them (oneDNN's per-thread memory)
                for engine in engines:
                    engine.warm_up()
        except BaseException as error:
            ready.set_exception(error)
            return
        ready.set_result(None)
        serve(*engines)

    def _serve_main(self, engine, half=None) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._pending or self._closed)
                if not self._pending:
                    return  # closed, and every request served
                batch = [self._pending.popleft()]
                while self._pending and len(batch) < self.max_batch:
                    batch.append(self._pending.popleft())
                together = half is not None and (self._helper_busy or bool(self._pending))
                self._main_busy = True
            answer = self._run_batch(half if together else engine, batch, together)
            with self._changed:
                self._main_busy = False
                self._changed.notify_all()
            answer()

    def _serve_helper(self, half) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: (self._pending and self._main_busy) or self._closed)
                if self._closed:
                    return  # the main worker serves what is left
                item = self._pending.popleft()
                self._helper_busy = True
            answer = self._run_batch(half, [item], together=True)
            with self._changed:
                self._helper_busy = False
                self._changed.notify_all()
            answer()

    def _run_batch(self, engine, batch, together: bool):
        """Runs a batch; returns what hands the callers their answers (called once the worker
        is marked idle, so that a caller holding its answer finds the worker free)."""
        futures = [future for _, _, future in batch]
        running = [future.set_running_or_notify_cancel() for future in futures]
        batch = [item for item, runs in zip(batch, running, strict=True) if runs]
        futures = [future for _, _, future in batch]
        if not batch:
            return lambda: None
        with self._changed:  # two workers count
            self.batch_sizes.append(len(batch))
            self.side_by_side_runs += len(batch) if together else 0
        outputs = failure = None
        try:
            outputs = engine.generate(
                np.stack([image for image, _, _ in batch]),
                np.stack([keypoints_rc for _, keypoints_rc, _ in batch]),
            )
        except BaseException as error:  # the callers see it; the worker keeps serving
            failure = error

        def answer():
            for index, future in enumerate(futures):
                if failure is not None:
                    future.set_exception(failure)
                else:
                    future.set_result({k: outputs[k][index] for k in contract.OUTPUT_NAMES})

        return answer
