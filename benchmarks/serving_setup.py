"""What the serving benchmark (``python -m benchmarks.serving``) measures with: models, requests,
pg2-app on a local port, browser-like clients, and the summaries of their times and answers.

Rule: only the tools; each part of the benchmark (benchmarks.serving, benchmarks.serving_queue)
decides what to measure with them.
"""

import base64
import concurrent.futures
import io
import json
import os
import socket
import threading
import time
import urllib.request

import numpy as np

CONFIGS = {"market": (1, 128, 64), "df": (11, 256, 256)}


def grey_level_errors(values, reference) -> dict:
    """mean, 99th percentile and maximum of |values - reference|, in grey levels (uint8)."""
    errors = np.abs(np.asarray(values, np.int32) - np.asarray(reference, np.int32))
    return {
        "mean": round(float(errors.mean()), 3),
        "p99": float(np.percentile(errors, 99)),
        "max": int(errors.max()),
    }


def summary(times) -> dict:
    """Median, p50, p95, max and min of times in seconds, as milliseconds, and every time."""
    times = np.asarray(times, np.float64)
    return {
        "median_ms": round(1000 * float(np.median(times)), 1),
        "p50_ms": round(1000 * float(np.percentile(times, 50)), 1),
        "p95_ms": round(1000 * float(np.percentile(times, 95)), 1),
        "max_ms": round(1000 * float(times.max()), 1),
        "min_ms": round(1000 * float(times.min()), 1),
        "times_ms": [round(1000 * t, 1) for t in times],
    }


# ---- models --------------------------------------------------------------------------------


def build_export(config: str, hidden: int, work_dir: str) -> str:
    """A full-size export made by two training steps (stage 1, then stage 2) on random data."""
    import keras

    from benchmarks import measure
    from pg2_tf.core.configs import TrainConfig
    from pg2_tf.serving import export_lib
    from pg2_tf.training import steps

    model_number, img_H, img_W = CONFIGS[config]
    export_dir = os.path.join(work_dir, f"{config}_h{hidden}")
    if os.path.isfile(os.path.join(export_dir, "saved_model.pb")):
        print(f"{config}: reusing {export_dir}", flush=True)
        return export_dir
    start = time.perf_counter()
    keras.utils.set_random_seed(0)
    trainer = steps.Trainer(
        TrainConfig(
            model=model_number, img_H=img_H, img_W=img_W, conv_hidden_num=hidden, batch_size=1,
            stage1_steps=1, progress_bar=False,
        )
    )  # fmt: skip
    import tensorflow as tf

    batch = {k: tf.constant(v) for k, v in measure.random_arrays(1, img_H, img_W).items()}
    for step in (0, 1):
        measure.fetch(trainer.train_step(batch, step=step))
    export_lib.export_saved_model(trainer.g1, trainer.g2, export_dir, img_H, img_W)
    print(f"{config}: trained 2 steps and exported in {time.perf_counter() - start:.0f} s "
          f"to {export_dir}", flush=True)  # fmt: skip
    return export_dir


def synthetic_requests(img_H: int, img_W: int, count: int, seed: int = 0):
    """``count`` (source image uint8 [H, W, 3], target keypoints float32 [18, 2]) pairs: drawn
    persons of data_prep.synthetic_people and another person's pose."""
    from data_prep import synthetic_people

    rng = np.random.default_rng(seed)
    pairs = []
    for index in range(count):
        source_pose = synthetic_people.random_keypoints(rng, img_H, img_W)
        appearance = synthetic_people.identity_appearance(index, seed)
        image = synthetic_people.render_person(source_pose, appearance, rng, img_H, img_W)
        target = synthetic_people.random_keypoints(rng, img_H, img_W).astype(np.float32)
        pairs.append((image, target))
    return pairs


# ---- the page ------------------------------------------------------------------------------


class Server:
    """pg2-app (create_app) served by uvicorn in a thread on a free local port."""

    def __init__(self, saved_model: str, precision: str):
        import uvicorn

        from pg2_tf.apps import page_routes, page_service

        start = time.perf_counter()
        self.app = page_routes.create_app(
            page_service.AppConfig(saved_model=saved_model, precision=precision)
        )
        self.start_seconds = time.perf_counter() - start
        self.service = self.app.state.service
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]})
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)

    def close(self):
        self.server.should_exit = True
        self.thread.join(timeout=60)
        self.socket.close()
        self.service.queue.close()

    def round_trip(self, image, keypoints_rc) -> tuple[float, np.ndarray]:
        """One page request: seconds and the G2 it answered (uint8 [H, W, 3])."""
        return post_generate(self.url, request_body(image, keypoints_rc))


def request_body(image, keypoints_rc) -> bytes:
    """The JSON body the page posts to /api/generate for a source image and target keypoints."""
    from pg2_tf.apps import page_requests

    return json.dumps({"image": page_requests.png_data_url(image),
                       "keypoints": np.asarray(keypoints_rc).tolist()}).encode()  # fmt: skip


def post_generate(url: str, body: bytes) -> tuple[float, np.ndarray]:
    """POSTs one body to ``url``/api/generate: seconds until the answer is read, and its G2."""
    from PIL import Image

    start = time.perf_counter()
    request = urllib.request.Request(url + "/api/generate", body,
                                     {"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=600) as response:
        answer = json.load(response)
    seconds = time.perf_counter() - start
    png = base64.b64decode(answer["G2"].split(",", 1)[1])
    return seconds, np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def concurrent_clients(url: str, bodies: list, clients: int) -> tuple[list, list, float]:
    """``clients`` threads posting ``bodies`` (client c: bodies c, c + clients, ...), each one
    after its previous answer. Run in a process of its own, as browsers are: the server's
    process then holds only the server. Returns latencies (s), G2s and the wall time (s)."""
    latencies, answers = [None] * len(bodies), [None] * len(bodies)

    def client(indices):
        for index in indices:
            latencies[index], answers[index] = post_generate(url, bodies[index])

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, [range(c, len(bodies), clients) for c in range(clients)]))
    return latencies, answers, time.perf_counter() - start
