"""pg2_tf.serving: the precision ``--precision=auto`` chooses (engines), the models rebuilt from an
export's variables (rebuild), the LiteRT path (litert), warm-up and the inference queue; the
page's answers to malformed requests. The export is the ORIGINAL TF1 fixture checkpoint (Market 128x64, width 8); the
references are the export's own float32 ``from_keypoints`` signature."""

import base64
import io
import json
import os
import re
import struct
import sys
import threading
import time
import zlib

import numpy as np
import pytest
import tensorflow as tf
from helpers import market_app_config
from PIL import Image
from starlette.testclient import TestClient

from pg2_tf import animate
from pg2_tf.apps import animation, page_routes, page_service
from pg2_tf.core import hardware
from pg2_tf.core.errors import ConfigError
from pg2_tf.serving import contract, engines, graph, inference_queue, litert, rebuild

NATIVE = hardware.Bfloat16Support(True, "the CPU has avx512_bf16")
EMULATED = hardware.Bfloat16Support(False, "the CPU has no bfloat16 instructions")
# Issue 23's accuracy bound for a faster precision: G2 within this many grey levels of float32's.
MEAN_BOUND, P99_BOUND = 1.0, 4.0


@pytest.fixture(scope="module")
def loaded_export(market_saved_model):
    return contract.load_export(market_saved_model)[0]


@pytest.fixture(scope="module")
def fixture_pairs(market_tf1_dir):
    """The fixture's 24 test records: source images and target keypoints, as the page sends them."""
    pairs = page_service.load_test_pairs(str(market_tf1_dir / "test_data"), "market", 128, 64, 24)
    return (
        np.stack([pair.image_0 for pair in pairs]),
        np.stack([pair.keypoints_1 for pair in pairs]).astype(np.float32),
    )


@pytest.fixture(scope="module")
def float32_outputs(loaded_export, fixture_pairs):
    images, keypoints_rc = fixture_pairs
    outputs = loaded_export.signatures["from_keypoints"](
        image=tf.constant(images), keypoints=tf.constant(keypoints_rc)
    )
    return {name: outputs[name].numpy() for name in contract.OUTPUT_NAMES}


def grey_level_errors(values, reference) -> tuple[float, float, int]:
    """mean, 99th percentile and maximum of |values - reference| over every pixel and channel."""
    errors = np.abs(values.astype(np.int32) - reference.astype(np.int32))
    return float(errors.mean()), float(np.percentile(errors, 99)), int(errors.max())


# ---- the choice --------------------------------------------------------------------------------


def test_auto_is_float16_on_a_gpu_and_int8_litert_on_every_cpu():
    assert engines.choose_precision("auto", bfloat16=NATIVE, gpu=True, litert=True).name == (
        "float16"
    )
    for support in (NATIVE, EMULATED):
        chosen = engines.choose_precision("auto", bfloat16=support, gpu=False, litert=True)
        assert chosen.name == "litert_int8"
    for support, gpu, installed in (
        (NATIVE, False, True),
        (EMULATED, True, True),
        (NATIVE, False, False),
    ):
        chosen = engines.choose_precision("float32", bfloat16=support, gpu=gpu, litert=installed)
        assert chosen.name == "float32"


def test_without_litert_auto_is_bfloat16_where_native_and_float32_elsewhere():
    native = engines.choose_precision("auto", bfloat16=NATIVE, gpu=False, litert=False)
    assert native.name == "bfloat16" and "LiteRT is not installed" in native.reason
    emulated = engines.choose_precision("auto", bfloat16=EMULATED, gpu=False, litert=False)
    assert emulated.name == "float32"
    assert "no bfloat16 instructions" in emulated.reason


def test_auto_on_this_linux_cpu_is_int8_litert():
    assert litert.litert_available()
    assert engines.choose_precision("auto", gpu=False).name == "litert_int8"


def test_an_unknown_precision_is_one_line_naming_the_flag():
    with pytest.raises(ConfigError, match=r"^--precision=bfloat8 must be one of auto, float32$"):
        engines.choose_precision("bfloat8")


# ---- the engine --------------------------------------------------------------------------------


def test_models_rebuilt_from_the_exports_variables_reproduce_its_signature_exactly(
    market_saved_model, loaded_export, fixture_pairs, float32_outputs
):
    metadata = contract.read_metadata(market_saved_model)
    g1, g2 = rebuild.rebuild_generators(metadata, "float32")
    rebuild.load_export_weights(g1, g2, loaded_export, 128, 64)
    rebuilt = graph.keypoints_function(g1, g2, 128, 64)(*map(tf.constant, fixture_pairs))
    for name in contract.OUTPUT_NAMES:
        np.testing.assert_array_equal(rebuilt[name].numpy(), float32_outputs[name])


def test_float32_engine_is_the_exports_own_signature(
    market_saved_model, loaded_export, fixture_pairs, float32_outputs
):
    engine = engines.Engine(market_saved_model, loaded_export, "float32")
    outputs = engine.generate(*fixture_pairs)
    for name in contract.OUTPUT_NAMES:
        np.testing.assert_array_equal(outputs[name], float32_outputs[name])


def test_bfloat16_g2_is_within_a_grey_level_of_float32_and_warmed_up_at_start(
    market_saved_model, loaded_export, fixture_pairs, float32_outputs
):
    engine = engines.Engine(
        market_saved_model, loaded_export, engines.Precision("bfloat16", "test")
    )
    # Warm-up traced the function at start: requests of any batch size reuse that trace.
    assert engine.warm_up_seconds is not None
    assert engine._function.experimental_get_tracing_count() == 1
    outputs = engine.generate(*fixture_pairs)
    assert engine._function.experimental_get_tracing_count() == 1
    mean, p99, maximum = grey_level_errors(outputs["G2"], float32_outputs["G2"])
    assert mean <= MEAN_BOUND and p99 <= P99_BOUND, (mean, p99, maximum)
    assert 0 < mean  # it did compute in bfloat16


def test_auto_runs_int8_litert_within_the_bound_says_it_converts_once_and_caches_it(
    market_saved_model, loaded_export, fixture_pairs, float32_outputs, tmp_path, monkeypatch
):
    monkeypatch.setenv("PG2_TF_CACHE", str(tmp_path))
    precision = engines.choose_precision("auto", gpu=False)
    said = []
    engine = engines.Engine(market_saved_model, loaded_export, precision, log=said.append)
    assert said[0] == (
        "converting the export to LiteRT (int8 weights), once for this export: about 20 s at "
        f"full size on 2 cores; kept in {tmp_path / 'litert'} ..."
    )
    assert len(said) == 2 and re.fullmatch(
        r"converted to LiteRT in \d+\.\d s \(a one-time cost\)", said[1]
    )
    outputs = engine.generate(*fixture_pairs)
    mean, p99, maximum = grey_level_errors(outputs["G2"], float32_outputs["G2"])
    assert mean <= MEAN_BOUND and p99 <= P99_BOUND, (mean, p99, maximum)
    (cached,) = os.listdir(tmp_path / "litert")
    assert cached.endswith("_int8.tflite")

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted again instead of reading the cache")

    monkeypatch.setattr(litert, "litert_model", no_conversion)
    again = engines.Engine(
        market_saved_model, loaded_export, precision, warm_up=False, log=said.append
    )
    assert len(said) == 2  # nothing more: read from the cache
    np.testing.assert_array_equal(again.generate(*fixture_pairs)["G2"], outputs["G2"])


# ---- the queue ---------------------------------------------------------------------------------


class GatedEngine:
    """An engine whose first batch waits for a gate, so that requests pile up behind it."""

    def __init__(self, engine):
        self.engine = engine
        self.batch_limit = engine.batch_limit
        self.started = threading.Event()
        self.gate = threading.Event()
        self.calls = 0

    def split(self):
        return self.engine.split()

    def generate(self, images, keypoints_rc):
        self.calls += 1
        if self.calls == 1:
            self.started.set()
            assert self.gate.wait(30)
        return self.engine.generate(images, keypoints_rc)


def test_queued_requests_are_batched_for_tensorflow_and_each_gets_its_own_result(
    market_saved_model, loaded_export, fixture_pairs, float32_outputs
):
    engine = GatedEngine(engines.Engine(market_saved_model, loaded_export, "float32"))
    jobs = inference_queue.InferenceQueue(engine, warm_up=False)
    images, keypoints_rc = fixture_pairs
    futures = [jobs.submit(images[0], keypoints_rc[0])]
    assert engine.started.wait(30)
    futures += [jobs.submit(images[i], keypoints_rc[i]) for i in range(1, 9)]
    engine.gate.set()
    results = [future.result(timeout=60) for future in futures]
    jobs.close()
    assert jobs.batch_sizes == [1, 8]  # the first alone, the 8 waiting behind it together
    alone = engine.engine.generate(images[:1], keypoints_rc[:1])
    np.testing.assert_array_equal(results[0]["G2"], alone["G2"][0])
    # Each of the batched requests gets its own image and pose's result, in its place in the batch
    # (float32 sums in another order at batch 8 than at 1 or 24 may move a pixel by 1 grey level).
    batched = engine.engine.generate(images[1:9], keypoints_rc[1:9])
    for i, result in enumerate(results[1:]):
        for name in contract.OUTPUT_NAMES:
            np.testing.assert_array_equal(result[name], batched[name][i])
    differences = [
        np.abs(r["G2"].astype(int) - float32_outputs["G2"][i + 1]).max()
        for i, r in enumerate(results[1:])
    ]
    assert max(differences) <= 1


def test_queued_requests_for_litert_on_one_worker_run_one_at_a_time_in_arrival_order(
    market_saved_model, loaded_export, fixture_pairs
):
    litert = engines.Engine(market_saved_model, loaded_export, "auto")
    assert litert.precision.name == "litert_int8"
    engine = GatedEngine(litert)
    jobs = inference_queue.InferenceQueue(engine, warm_up=False, side_by_side=False)
    images, keypoints_rc = fixture_pairs
    futures = [jobs.submit(images[0], keypoints_rc[0])]
    assert engine.started.wait(30)
    futures += [jobs.submit(images[i], keypoints_rc[i]) for i in range(1, 4)]
    finished = []
    for index, future in enumerate(futures):
        future.add_done_callback(lambda _, index=index: finished.append(index))
    engine.gate.set()
    results = [future.result(timeout=60) for future in futures]
    jobs.close()
    assert jobs.batch_sizes == [1, 1, 1, 1] and finished == [0, 1, 2, 3]
    for index, result in enumerate(results):
        alone = litert.generate(images[index : index + 1], keypoints_rc[index : index + 1])
        np.testing.assert_array_equal(result["G2"], alone["G2"][0])


class LabelledEngine:
    """Records which engine ran each request on which thread; waits for its gate, if any."""

    def __init__(self, engine, label, log, gates):
        self.engine, self.label, self.log, self.gates = engine, label, log, gates
        self.batch_limit = engine.batch_limit
        self.precision = engine.precision

    def split(self):
        main, helper = self.engine.split()
        return (
            LabelledEngine(main, "main's half", self.log, self.gates),
            LabelledEngine(helper, "helper's half", self.log, self.gates),
        )

    def warm_up(self):
        self.log.append(("warm-up: " + self.label, threading.current_thread().name))
        return 0.0

    def generate(self, images, keypoints_rc):
        self.log.append((self.label, threading.current_thread().name))
        if self.label in self.gates:
            assert self.gates[self.label].wait(30)
        return self.engine.generate(images, keypoints_rc)


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="LiteRT splits only on 2 cores or more")
def test_litert_runs_a_lone_request_on_every_core_and_two_side_by_side_under_load(
    market_saved_model, loaded_export, fixture_pairs
):
    litert = engines.Engine(market_saved_model, loaded_export, "auto", warm_up=False)
    log, gates = [], {"whole": threading.Event(), "helper's half": threading.Event()}
    jobs = inference_queue.InferenceQueue(LabelledEngine(litert, "whole", log, gates))
    assert sorted(log) == [  # each engine warmed up on the thread that serves with it
        ("warm-up: helper's half", "pg2-inference-2"),
        ("warm-up: main's half", "pg2-inference"),
        ("warm-up: whole", "pg2-inference"),
    ]
    log.clear()
    images, keypoints_rc = fixture_pairs

    def submit_and_wait_until_runs(index, runs):
        future = jobs.submit(images[index], keypoints_rc[index])
        for _ in range(3000):
            if len(log) >= runs:
                return future
            time.sleep(0.01)
        raise AssertionError(f"expected {runs} runs to have started: {log}")

    futures = [submit_and_wait_until_runs(0, 1)]  # alone: the main worker, every core (held)
    futures.append(submit_and_wait_until_runs(1, 2))  # main worker busy: the helper's (held)
    futures += [jobs.submit(images[i], keypoints_rc[i]) for i in (2, 3)]  # both busy: they wait
    gates["whole"].set()  # the main worker goes on, the helper still busy: on its half
    for future in futures[2:]:
        future.result(timeout=60)
    gates["helper's half"].set()
    futures[1].result(timeout=60)  # both workers idle now
    futures.append(jobs.submit(images[4], keypoints_rc[4]))
    results = [future.result(timeout=60) for future in futures]
    jobs.close()
    assert log == [
        ("whole", "pg2-inference"),
        ("helper's half", "pg2-inference-2"),
        ("main's half", "pg2-inference"),
        ("main's half", "pg2-inference"),
        ("whole", "pg2-inference"),  # alone again
    ]
    assert jobs.side_by_side_runs == 3
    for index, result in enumerate(results):  # whatever ran it, the engine's own answer
        alone = litert.generate(images[index : index + 1], keypoints_rc[index : index + 1])
        for name in contract.OUTPUT_NAMES:
            np.testing.assert_array_equal(result[name], alone[name][0])


def test_only_litert_engines_of_two_threads_or_more_split_in_halves(
    market_saved_model, loaded_export
):
    float32 = engines.Engine(market_saved_model, loaded_export, "float32", warm_up=False)
    one_thread = engines.Engine(
        market_saved_model, loaded_export, "auto", warm_up=False, num_threads=1
    )
    assert float32.split() is None and one_thread.split() is None
    three = engines.Engine(market_saved_model, loaded_export, "auto", warm_up=False, num_threads=3)
    halves = three.split()
    assert [half._function.num_threads for half in halves] == [1, 2]
    assert all(half.precision == three.precision for half in halves)
    with pytest.raises(ValueError, match="float32 does not split"):
        inference_queue.InferenceQueue(float32, warm_up=False, side_by_side=True)


def test_the_queue_warms_up_on_the_thread_that_serves_before_it_takes_requests():
    class RecordingEngine:
        batch_limit = 8

        def __init__(self):
            self.threads = []

        def split(self):
            return None

        def warm_up(self):
            self.threads.append(("warm_up", threading.current_thread().name))
            return 0.0

        def generate(self, images, keypoints_rc):
            self.threads.append(("generate", threading.current_thread().name))
            return {
                name: np.zeros((len(images), 2, 2, 3), np.uint8) for name in contract.OUTPUT_NAMES
            }

    engine = RecordingEngine()
    jobs = inference_queue.InferenceQueue(engine)
    assert engine.threads == [("warm_up", "pg2-inference")]  # done when the queue is made
    jobs.submit(np.zeros((2, 2, 3), np.uint8), np.zeros((18, 2), np.float32)).result(timeout=10)
    jobs.close()
    assert engine.threads[1] == ("generate", "pg2-inference")


def test_the_page_runs_one_whole_request_before_its_first_user(market_saved_model, market_tf1_dir):
    service = page_service.PoseService(market_app_config(market_saved_model, market_tf1_dir))
    try:
        # The engine's own warm-up is not a request; the one batch is the service's whole request.
        assert service.queue.batch_sizes == [1]
    finally:
        service.queue.close()


def test_a_failing_batch_fails_its_requests_and_the_queue_serves_on(
    market_saved_model, loaded_export, fixture_pairs, float32_outputs
):
    jobs = inference_queue.InferenceQueue(
        engines.Engine(market_saved_model, loaded_export, "float32", warm_up=False)
    )
    images, keypoints_rc = fixture_pairs
    with pytest.raises(ValueError):
        jobs.submit(images[0][:5], keypoints_rc[0]).result(timeout=60)  # a wrong-size image
    result = jobs.submit(images[1], keypoints_rc[1]).result(timeout=60)
    np.testing.assert_array_equal(result["G2"], float32_outputs["G2"][1])
    jobs.close()


# ---- the page: malformed requests --------------------------------------------------------------


def png_bomb(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels (data: one compressed empty row)."""

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * (3 * width + 1)))
        + chunk(b"IEND", b"")
    )


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def model_png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((128, 64, 3), 100, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def malformed_bodies() -> list[tuple[str, bytes]]:
    """A bounded set of bad bodies: nesting, wrong types, huge arrays, bad base64, PNG bombs."""
    good_png = model_png()
    pose = [[40, 32]] * 18

    def with_keypoints(pair_text: str) -> str:  # 18 copies of a [row, col] pair written as text
        return json.dumps({"image": data_url(good_png), "keypoints": "X"}).replace(
            '"X"', "[" + ",".join([pair_text] * 18) + "]"
        )

    documents = {
        "nested 100,000 levels": "[" * 100_000 + "]" * 100_000,
        "nested objects": '{"a":' * 50_000 + "1" + "}" * 50_000,
        "nested keypoints": json.dumps({"image": data_url(good_png), "keypoints": "X"}).replace(
            '"X"', "[" * 5000 + "]" * 5000
        ),
        "null": "null",
        "a number": "12",
        "a string": '"image"',
        "image a number": json.dumps({"image": 5, "keypoints": pose}),
        "image a list": json.dumps({"image": [1, 2, 3], "keypoints": pose}),
        "keypoints an object": json.dumps({"image": data_url(good_png), "keypoints": {"a": 1}}),
        "keypoints booleans": json.dumps({"image": data_url(good_png), "keypoints": [[True, False]] * 18}),
        "keypoints nulls": json.dumps({"image": data_url(good_png), "keypoints": [[None, None]] * 18}),
        "keypoints huge array": json.dumps({"image": data_url(good_png), "keypoints": [[1, 2]] * 100_000}),
        "keypoints overflow": with_keypoints("[1e999, 1]"),
        "keypoints 5,000-digit number": with_keypoints("[" + "9" * 5000 + ", 1]"),
        "keypoints 4,000-digit number": with_keypoints("[" + "9" * 4000 + ", 1]"),
        "keypoints strings of numbers": json.dumps({"image": data_url(good_png), "keypoints": [["1", "2"]] * 18}),
        "keypoints NaN": with_keypoints("[NaN, 1]"),
        "truncated base64": json.dumps({"image": data_url(good_png)[:-7], "keypoints": pose}),
        "base64 of a truncated PNG": json.dumps({"image": data_url(good_png[: len(good_png) // 2]), "keypoints": pose}),
        "PNG bomb": json.dumps({"image": data_url(png_bomb(60_000, 60_000)), "keypoints": pose}),
        "a JPEG data URL": json.dumps({"image": "data:image/jpeg;base64,/9j/", "keypoints": pose}),
    }  # fmt: skip
    bodies = [(name, text.encode()) for name, text in documents.items()]
    bodies += [
        ("not UTF-8", b"\xff\xfe{\x00"),
        ("binary", bytes(range(256)) * 4),
        ("a PNG bomb upload", png_bomb(60_000, 60_000)),
        ("a truncated PNG upload", good_png[:100]),
    ]
    return bodies


@pytest.fixture(scope="module")
def client(market_saved_model, market_tf1_dir):
    config = market_app_config(
        market_saved_model,
        market_tf1_dir,
        max_upload_bytes=2**20,
        keypoint_model_dir=str(market_tf1_dir / "no_blazepose_here"),
    )
    with TestClient(page_routes.create_app(config), raise_server_exceptions=False) as test_client:
        yield test_client


def test_every_malformed_request_to_every_endpoint_is_a_4xx_with_one_line(client):
    record = client.get("/api/records/0").json()
    good = {"image": record["source"], "keypoints": record["target_keypoints"]}
    answers = {}
    for endpoint in ("/api/generate", "/api/source", "/api/pose"):
        for name, body in malformed_bodies():
            response = client.post(endpoint, content=body)
            answers[endpoint, name] = response.status_code
            assert 400 <= response.status_code < 500, (endpoint, name, response.text[:300])
            error = response.json()["error"]
            assert error and "\n" not in error and len(error) < 400, (endpoint, name, error)
    for path in (
        "/api/records/-1",
        "/api/records/1e9",
        "/api/records/%00",
        "/api/records/" + "9" * 5000,
    ):
        response = client.get(path)
        assert response.status_code == 404 and "\n" not in response.json()["error"], path[:40]
    for method, path in (("POST", "/api/info"), ("GET", "/api/generate"), ("PUT", "/api/source")):
        assert client.request(method, path).status_code == 405
    assert answers["/api/generate", "nested 100,000 levels"] == 400
    # The server still serves.
    answer = client.post("/api/generate", json=good)
    assert answer.status_code == 200 and answer.json()["G2"].startswith("data:image/png")


# ---- the commands ------------------------------------------------------------------------------


def test_animate_reports_its_frame_rate_and_precision(
    market_saved_model, blazepose_estimator, tmp_path
):
    import skimage.data

    photo = tmp_path / "astronaut.png"
    Image.fromarray(skimage.data.astronaut()).save(photo)
    poses = tmp_path / "poses"
    poses.mkdir()
    rows = np.linspace(20, 120, 18)
    for index in range(3):
        triples = np.stack([np.full(18, 30.0 + index), rows, np.ones(18)], axis=1)
        document = {"people": [{"pose_keypoints_2d": triples.reshape(-1).tolist()}]}
        (poses / f"{index:03d}.json").write_text(json.dumps(document))
    made = animation.animate(
        market_saved_model, photo, poses, tmp_path / "out.gif",
        estimator=blazepose_estimator, progress_bar=False, log=lambda line: None,
        precision="auto", proportions="target",  # the astronaut's photo ends at her waist
    )  # fmt: skip
    assert made["generated"] == 3 and made["generate_seconds"] > 0
    assert made["precision"] == engines.choose_precision("auto")
    line = animate.frame_rate_line(made)
    parts = ("keypoints", "retarget", "background", "generate", "write")
    seconds = sum(made[f"{part}_seconds"] for part in parts)
    assert all(made[f"{part}_seconds"] >= 0 for part in parts) and made["write_seconds"] > 0
    assert line.startswith(
        f"made 3 frames in {seconds:.1f} s from the first frame read to the file written: "
        f"{3 / seconds:.2f} frames per second (keypoints {made['keypoints_seconds']:.1f} s, "
        f"generation {made['generate_seconds']:.1f} s for 3 frames, writing "
    )


def test_generate_command_line_takes_the_precision_flag(market_saved_model, tmp_path):
    import subprocess

    person = tmp_path / "person.png"
    Image.fromarray(np.full((128, 64, 3), 90, np.uint8)).save(person)
    keypoints = tmp_path / "pose.json"
    triples = np.stack([np.full(18, 30.0), np.linspace(20, 120, 18), np.ones(18)], axis=1)
    keypoints.write_text(
        json.dumps({"people": [{"pose_keypoints_2d": triples.reshape(-1).tolist()}]})
    )
    command = [sys.executable, "-m", "pg2_tf.generate", f"--saved_model={market_saved_model}",
               f"--image={person}", f"--keypoints={keypoints}"]  # fmt: skip
    env = {**os.environ, "PG2_TF_CACHE": str(tmp_path / "cache")}
    good = subprocess.run([*command, f"--out={tmp_path / 'a.png'}", "--precision=float32"],
                          capture_output=True, text=True, env=env)  # fmt: skip
    assert good.returncode == 0, good.stderr[-2000:]
    loaded = contract.load_export(market_saved_model)[0]
    expected = loaded.signatures["from_keypoints"](
        image=tf.constant(np.asarray(Image.open(person))[None]),
        keypoints=tf.constant(np.float32([[[row, 30] for row in np.linspace(20, 120, 18)]])),
    )["G2"].numpy()[0]
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "a.png")), expected)
    bad = subprocess.run([*command, f"--out={tmp_path / 'b.png'}", "--precision=half"],
                         capture_output=True, text=True, env=env)  # fmt: skip
    assert bad.returncode == 2
    # One line, before TensorFlow is even imported (no start-up lines of its own).
    assert bad.stderr.strip().splitlines() == [
        "error: --precision=half must be one of auto, float32"
    ]
    assert not (tmp_path / "b.png").exists()
