"""Helpers shared by the test files (the one place they import from; fixtures are in conftest).

* Fixture locations: tests/fixtures (copies of the original-graph fixtures) and ../shared.
* The original test folders: what the ORIGINAL trainer's test() writes for each record.
* A stand-in of the 2015 Inception graph, with the real graph's tensor names.
* Running the command lines (``pg2_tf.main``, ``pg2_tf.score``) in a subprocess, and a tiny
  training configuration.

The original test folders
-------------------------
What the ORIGINAL trainer's test() writes for each record, computed from the raw record features.

An independent reference for test mode: it parses the tf.train.Example protos itself (no
pg2_tf.records.reader), decodes the JPEGs with TensorFlow's default decoder (the original's), and applies
the original's expressions with numpy:

* x, x_target: ``unprocess(process(p)) = ((p - 127.5) / 127.5) * 127.5 + 127.5`` in float32,
  then ``astype(uint8)``;
* pose, pose_target: dense pose ``* 2 - 1``, then ``(amax over the 18 channels + 1) * 127.5``,
  ``astype(uint8)``;
* mask, mask_target: ``pose_mask_r4 * 255``, ``astype(uint8)``.

The stand-in Inception graph
----------------------------
The real ``classify_image_graph_def.pb`` cannot be downloaded in CI; the stand-in GraphDef built
here has its tensor names: ``ExpandDims:0`` fed by a JPEG-decoding chain, a fixed-size bilinear
resize, the old ``BatchNormWithGlobalNormalization`` op under GraphDef producer version 3 (as the
2015 graph), ``pool_3`` ``[N, 1, 1, 3]``, a ``pool_3/_reshape`` hard-coded to a batch of 1, and
``softmax/logits/MatMul`` whose weight input is ``1000 * I``. Its ``pool_3`` features of a
constant image of colour c are ``(c - 128) / 128``, so the class is the brightest channel and the
prediction is exactly one-hot.
"""

import importlib.metadata
import os
import pathlib
import subprocess
import sys

import numpy as np
import tensorflow as tf

from pg2_tf.scoring import metrics

TESTS_DIR = pathlib.Path(__file__).resolve().parent
PROJECT_ROOT = str(TESTS_DIR.parent)
FIXTURES = TESTS_DIR / "fixtures"
# ../shared beside the project root, present in CI, absent in a user's clone.
SHARED_FIXTURES = TESTS_DIR.parent.parent / "shared" / "fixtures"
MARKET_TF1 = FIXTURES / "market_tf1"
MARKET_RAW = FIXTURES / "market_raw"
# The environment of the command lines run by the tests.
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")


# ---- the original test folders ------------------------------------------------------------------
FOLDERS = ("x", "x_target", "pose", "pose_target", "mask", "mask_target")


def _values(feature):
    return list(getattr(feature, feature.WhichOneof("kind")).value)


def read_examples(record_file):
    """Every record of the file, in order, as {feature name: list of values}."""
    examples = []
    for serialized in tf.data.TFRecordDataset(str(record_file)):
        example = tf.train.Example.FromString(serialized.numpy())
        examples.append({key: _values(value) for key, value in example.features.feature.items()})
    return examples


def decoded_pixels(example, side):
    """uint8 [H, W, 3]: image_raw_<side> decoded as the original reader did."""
    return tf.io.decode_jpeg(example[f"image_raw_{side}"][0], channels=3).numpy()


def original_pictures(example, img_H, img_W):
    """{folder: uint8 picture} the original test() writes for one record."""
    half = np.float32(127.5)
    pictures = {}
    for side, (image_folder, pose_folder, mask_folder) in enumerate(
        (("x", "pose", "mask"), ("x_target", "pose_target", "mask_target"))
    ):
        normalised = (decoded_pixels(example, side).astype(np.float32) - half) / half
        pictures[image_folder] = (normalised * half + half).astype(np.uint8)
        dense = np.zeros(img_H * img_W * 18, np.float32)
        dense[np.asarray(example[f"indices_r4_{side}"])] = example[f"values_r4_{side}"]
        pose = dense.reshape(img_H, img_W, 18) * 2 - 1
        pictures[pose_folder] = ((np.amax(pose, axis=-1) + 1.0) * 127.5).astype(np.uint8)
        mask = np.asarray(example[f"pose_mask_r4_{side}"], np.float32).reshape(img_H, img_W)
        pictures[mask_folder] = (mask * 255).astype(np.uint8)
    return pictures


def target_keypoints(example):
    """float [18, 2] (row, col) of the target image from pose_peaks_1_rcv; -1 where not visible."""
    rcv = np.asarray(example["pose_peaks_1_rcv"], np.float64).reshape(18, 3)
    return np.where(rcv[:, 2:] > 0, rcv[:, :2], -1.0)


# ---- the stand-in Inception graph ---------------------------------------------------------------

STAND_IN_SIZE = 4
STAND_IN_CLASSES = 3


TYPE_ATTRS = ("dtype", "T", "SrcT", "DstT")


def _node(graph_def, name, op, inputs=(), **attrs):
    node = graph_def.node.add(name=name, op=op, input=list(inputs))
    for key, value in attrs.items():
        if key in TYPE_ATTRS:
            node.attr[key].type = value
        elif isinstance(value, bool):
            node.attr[key].b = value
        elif isinstance(value, float):
            node.attr[key].f = value
        elif isinstance(value, int):
            node.attr[key].i = value
        elif isinstance(value, str):
            node.attr[key].s = value.encode()
        elif isinstance(value, list):
            node.attr[key].list.i.extend(value)
    return node


def _const(graph_def, name, array):
    import tensorflow as tf

    node = graph_def.node.add(name=name, op="Const")
    proto = tf.make_tensor_proto(array)
    node.attr["value"].tensor.CopyFrom(proto)
    node.attr["dtype"].type = proto.dtype


def stand_in_graph_def_bytes() -> bytes:
    """Serialized stand-in of classify_image_graph_def.pb (see the module docstring)."""
    import tensorflow as tf
    from tensorflow.core.framework import types_pb2

    f32 = types_pb2.DT_FLOAT
    gd = tf.compat.v1.GraphDef()
    gd.versions.producer = 3  # < 9: the deprecated batch-norm op is still legal in this graph
    _node(gd, "DecodeJpeg/contents", "Placeholder", dtype=types_pb2.DT_STRING)
    _node(gd, "DecodeJpeg", "DecodeJpeg", ["DecodeJpeg/contents"], channels=3)
    _node(gd, "Cast", "Cast", ["DecodeJpeg"], SrcT=types_pb2.DT_UINT8, DstT=f32)
    _const(gd, "ExpandDims/dim", np.array(0, np.int32))
    _node(gd, "ExpandDims", "ExpandDims", ["Cast", "ExpandDims/dim"], T=f32)
    _const(gd, "ResizeBilinear/size", np.array([STAND_IN_SIZE, STAND_IN_SIZE], np.int32))
    _node(gd, "ResizeBilinear", "ResizeBilinear", ["ExpandDims", "ResizeBilinear/size"], T=f32)
    _const(gd, "Sub/y", np.array(128.0, np.float32))
    _node(gd, "Sub", "Sub", ["ResizeBilinear", "Sub/y"], T=f32)
    _const(gd, "Mul/y", np.array(1.0 / 128.0, np.float32))
    _node(gd, "Mul", "Mul", ["Sub", "Mul/y"], T=f32)
    for name, value in (("mean", 0.0), ("variance", 1.0), ("beta", 0.0), ("gamma", 1.0)):
        _const(gd, f"bn/{name}", np.full(3, value, np.float32))
    _node(
        gd,
        "bn",
        "BatchNormWithGlobalNormalization",
        ["Mul", "bn/mean", "bn/variance", "bn/beta", "bn/gamma"],
        T=f32,
        variance_epsilon=0.0,
        scale_after_normalization=True,
    )
    size = [1, STAND_IN_SIZE, STAND_IN_SIZE, 1]
    _node(gd, "pool_3", "AvgPool", ["bn"], T=f32, ksize=size, strides=size, padding="VALID")
    _const(gd, "pool_3/_reshape/shape", np.array([1, 3], np.int32))
    _node(gd, "pool_3/_reshape", "Reshape", ["pool_3", "pool_3/_reshape/shape"], T=f32)
    _const(gd, "softmax/weights", 1000.0 * np.eye(3, STAND_IN_CLASSES, dtype=np.float32))
    _node(gd, "softmax/logits/MatMul", "MatMul", ["pool_3/_reshape", "softmax/weights"], T=f32)
    # A bias that would make class 2 win everywhere: the score must not use it (as the original).
    _const(gd, "softmax/biases", np.array([0.0, 0.0, 1e4], np.float32))
    _node(gd, "softmax/logits", "BiasAdd", ["softmax/logits/MatMul", "softmax/biases"], T=f32)
    _node(gd, "softmax", "Softmax", ["softmax/logits"], T=f32)
    return gd.SerializeToString()


def write_stand_in_graph(directory) -> str:
    """Writes the stand-in as ``directory/classify_image_graph_def.pb``; returns the path."""
    path = directory / metrics.INCEPTION_PB_NAME
    path.write_bytes(stand_in_graph_def_bytes())
    return str(path)


# ---- command lines and configurations -----------------------------------------------------------


def console_scripts() -> dict:
    """The installed console scripts of this package: {name: "module:function"}."""
    found = importlib.metadata.entry_points(group="console_scripts")
    return {point.name: point.value for point in found if point.value.startswith("pg2_tf.")}


def run_module(module, *args, env=None, timeout=120):
    """Runs ``python -m module`` with the arguments in the project root, in ``env`` (default:
    this process's environment); returns the CompletedProcess (stdout and stderr as text)."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=dict(os.environ) if env is None else env,
        timeout=timeout,
    )


def run_counting_imports(module, *args, timeout=60):
    """Runs ``python -X importtime -m module`` with the arguments; returns the CompletedProcess
    and the set of every module it imported (-X importtime lists one per stderr line, the name
    after the last ``|``)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", module, *args],
        capture_output=True, text=True, cwd=PROJECT_ROOT, env=ENV, timeout=timeout,
    )  # fmt: skip
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
    return result, imported


def loaded_tensorflow(imported) -> set:
    """The TensorFlow and Keras modules among ``imported``."""
    return {name for name in imported if name.split(".")[0] in ("tensorflow", "keras")}


def run_main(*flags, timeout=300):
    """Runs ``python -m pg2_tf.main`` with the flags; returns the CompletedProcess."""
    return run_module("pg2_tf.main", *flags, env=ENV, timeout=timeout)


def main_error(*flags):
    """Runs ``python -m pg2_tf.main`` with the flags, which must exit 2 (a refused run); returns
    the last line of its stderr, the one-line error."""
    result = run_main(*flags)
    assert result.returncode == 2, result.stderr
    return result.stderr.strip().splitlines()[-1]


def run_score_cli(*args):
    """Runs ``python -m pg2_tf.score`` with the flags, without $PG2_INCEPTION_GRAPH."""
    from pg2_tf.scoring import folder_scores

    hidden = folder_scores.INCEPTION_GRAPH_ENV
    env = {k: v for k, v in os.environ.items() if k != hidden}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return run_module("pg2_tf.score", *args, env=env)


def record_batches(data_path, kind, batch_size, *, split="test", is_train=False, **options):
    """pg2_tf.records.reader.make_dataset of ``kind``'s records in ``data_path`` at that dataset's image
    size (pg2_tf.core.datasets.by_kind); ``options``: make_dataset's others (seed, ...)."""
    from pg2_tf.core import datasets
    from pg2_tf.records import reader

    dataset = datasets.by_kind(kind)
    return reader.make_dataset(
        str(data_path),
        split,
        kind=kind,
        img_H=dataset.img_H,
        img_W=dataset.img_W,
        batch_size=batch_size,
        is_train=is_train,
        **options,
    )


def market_app_config(saved_model, market_tf1_dir, **settings):
    """A pg2_tf.apps.page_service.AppConfig of the exported Market model offering the fixture's
    test records, with ``settings`` (the other AppConfig fields) on top."""
    from pg2_tf.apps import page_service

    return page_service.AppConfig(
        saved_model=saved_model, data_dir=str(market_tf1_dir / "test_data"), **settings
    )


def tiny_config(model_dir, records_dir, kind="market", **overrides):
    """A pg2_tf.core.configs.TrainConfig of a tiny model (width 8, batch 4, 4 steps, 2 in stage 1)
    on ``kind``'s records (its --model and image size, pg2_tf.core.datasets.by_kind)."""
    from pg2_tf.core import datasets
    from pg2_tf.core.configs import TrainConfig

    dataset = datasets.by_kind(kind)
    settings = dict(
        model=dataset.model,
        img_H=dataset.img_H,
        img_W=dataset.img_W,
        conv_hidden_num=8,
        d_dim=8,
        batch_size=4,
        max_step=4,
        stage1_steps=2,
        log_step=2,
        model_dir=str(model_dir),
        data_path=records_dir,
        split="test",
        progress_bar=False,
        save_model_secs=0,
    )
    settings.update(overrides)
    return TrainConfig(**settings)


# ---- files that fail to read --------------------------------------------------------------------


def read_error(read, path, content, match):
    """Writes ``content`` (text, or bytes as they are) to ``path``; ``read(path)`` must raise a
    pg2_tf.core.errors.DataError whose message matches the regex ``match`` (``re.search``, as
    ``pytest.raises``). Returns that error."""
    import pytest

    from pg2_tf.core.errors import DataError

    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(DataError, match=match) as caught:
        read(path)
    return caught.value


# ---- people in scenes (issue 22) ---------------------------------------------------------------

PEOPLE_FIXTURES = FIXTURES / "people"


def people_scenes():
    """tests/fixtures/people/scenes.py as a module: scenes of real people (labelme-examples,
    scikit-image) composed or as photographed; its ``available()`` says whether the photos are
    installed. make_reference.py (run in mediapipe's own venv) uses the same module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("scenes", PEOPLE_FIXTURES / "scenes.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["scenes"] = module
    spec.loader.exec_module(module)
    return module


def needs_people_photos(scenes):
    """The skip mark of tests on the people scenes (``scenes`` from people_scenes()) where
    Debian's labelme-examples, their photos, are not installed."""
    import pytest

    return pytest.mark.skipif(
        not scenes.available(), reason="Debian's labelme-examples is not installed (the photos)"
    )


def run_keypoints_cli(folder, picture, cache_dir):
    """Saves ``picture`` (uint8 ``[H, W, 3]``) as ``folder/photo.png`` and runs ``python -m
    pg2_tf.keypoints`` on it with the BlazePose model files of ``cache_dir``, writing
    ``folder/people.json`` and the drawing ``folder/drawn.png``; returns the CompletedProcess."""
    from PIL import Image

    Image.fromarray(picture).save(folder / "photo.png")
    return run_module(
        "pg2_tf.keypoints",
        f"--image={folder / 'photo.png'}",
        f"--json={folder / 'people.json'}",
        f"--draw={folder / 'drawn.png'}",
        f"--cache_dir={cache_dir}",
    )


def people_reference() -> dict:
    """MediaPipe's own keypoints of each person's crop, per case (reference.json's "cases")."""
    import json

    return json.loads((PEOPLE_FIXTURES / "reference.json").read_text())["cases"]
