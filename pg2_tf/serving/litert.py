"""An export converted to a LiteRT flatbuffer, cached on disk, and run by LiteRT's XNNPACK kernels.

:class:`pg2_tf.serving.engines.Engine` computes ``litert_int8`` (``--precision=auto`` on a CPU)
through here: the export's weights (:mod:`pg2_tf.serving.rebuild`) converted once per export
and kept in ``~/.cache/pg2_tf/litert`` (``$PG2_TF_CACHE``), then called like the export's
``from_keypoints`` signature, one image at a time.

Rule: the SavedModel itself is never changed; a cache that cannot be written only costs the
conversion next time. ``ai-edge-litert`` (not built for Windows) and TensorFlow are imported only
when used.
"""

import hashlib
import os
import sys
import time

import numpy as np

from pg2_tf.core import atomic
from pg2_tf.serving import contract, rebuild


def litert_available() -> bool:
    """Whether LiteRT's interpreter imports here.

    Returns:
        True when ``ai-edge-litert`` (not built for Windows) is installed.
    """
    try:
        from ai_edge_litert import interpreter  # noqa: F401
    except ImportError:
        return False
    return True


def litert_model(metadata: dict, loaded, weights: str = "float32") -> bytes:
    """The export's G1 + G2 (``from_keypoints``, batch 1) as a LiteRT flatbuffer.

    Args:
        metadata: the export's configuration (:func:`pg2_tf.serving.contract.read_metadata`).
        loaded: the export loaded by ``tf.saved_model.load``.
        weights: ``"float32"``; ``"float16"`` (weights stored in float16, computed in float32 on
            CPUs); ``"int8"`` (dynamic-range quantisation: int8 weights, activations quantised
            per call).

    Returns:
        The flatbuffer's bytes: inputs ``image`` uint8 [1, H, W, 3] and ``keypoints`` float32
        [1, 18, 2]; outputs G1, G2, diff_map uint8 [1, H, W, 3].

    Raises:
        ValueError: another ``weights``.
    """
    import tensorflow as tf

    from pg2_tf.serving import graph

    img_H, img_W = int(metadata["img_H"]), int(metadata["img_W"])
    g1, g2 = rebuild.rebuild_generators(metadata, "float32")
    rebuild.load_export_weights(g1, g2, loaded, img_H, img_W)
    function = graph.keypoints_function(g1, g2, img_H, img_W, batch=1).get_concrete_function()
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
    """Where converted LiteRT models are kept.

    Returns:
        The absolute path of ``$PG2_TF_CACHE/litert``, or of ``~/.cache/pg2_tf/litert``.
    """
    root = os.environ.get("PG2_TF_CACHE") or os.path.join("~", ".cache", "pg2_tf")
    return os.path.abspath(os.path.join(os.path.expanduser(root), "litert"))


def cached_litert_model(saved_model, metadata: dict, loaded, weights: str, log=None) -> bytes:
    """:func:`litert_model` of an export, converted once and kept under :func:`cache_dir`.

    The file is named by a hash of the export's graph and variables (a re-export gets a new
    file) and written atomically; an unwritable cache only costs the conversion next time.

    Args:
        saved_model: the export's folder.
        metadata: its configuration (:func:`pg2_tf.serving.contract.read_metadata`).
        loaded: the export loaded by ``tf.saved_model.load``.
        weights: ``"float32"``, ``"float16"`` or ``"int8"`` (see :func:`litert_model`).
        log: called with one line before a conversion (about 20 s for a full-size Market
            model, a minute for DeepFashion) and one after it, with its time; default: printed
            to stderr.

    Returns:
        The flatbuffer's bytes, as :func:`litert_model` returns them.
    """
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
    log(
        f"converting the export to LiteRT ({weights} weights), once for this export: about 20 s "
        f"at full size on 2 cores; kept in {cache_dir()} ..."
    )
    started = time.perf_counter()
    model = litert_model(metadata, loaded, weights)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        atomic.write_bytes(path, model)
    except OSError:
        pass  # an unwritable cache only costs the conversion next time
    log(f"converted to LiteRT in {time.perf_counter() - started:.1f} s (a one-time cost)")
    return model


class LiteRTFunction:
    """Calls a LiteRT interpreter (XNNPACK) like the export's signature, one image at a time.

    Args:
        model: a flatbuffer from :func:`litert_model`.
        num_threads: the interpreter's threads (None: one per core).
    """

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
