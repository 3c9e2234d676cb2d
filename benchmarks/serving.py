"""The photo path at full size (issue 23): pg2-app, the precisions and pg2-animate, same run.

    python -m benchmarks.serving [--configs market,df] [--rounds 6] [--json PATH]

One command: it builds full-size models (conv_hidden_num 128) of Market (128x64) and DeepFashion
(256x256) from two training steps on random data in the records' ranges (a stage-1 and a stage-2
step, batch 1), exports them with pg2_tf.serving.export_lib, and measures, float32 against
``--precision=auto`` ALTERNATED in the same process (a shared machine's slow and fast spells
fall on both alike, so the ratios are the figures to read):

1. ``round_trip``: pg2-app's page round trip (POST /api/generate through uvicorn on a local
   port, JSON + PNG encoding included), one request at a time, per precision; the first request
   after start-up (warm-up) against the rest; G2 of auto against float32's, in grey levels
   (mean, 99th percentile, maximum) over ``--poses`` synthetic persons, and the same on the
   shared fixture's original TF1 checkpoint (``fixture_accuracy``).
2. ``batch1``: the engine alone at batch 1 for every way of computing (TensorFlow float32 and
   bfloat16; LiteRT/XNNPACK float32, float16 and int8 weights, 1 and 2 threads), alternated;
   times relative to TensorFlow float32 and G2 errors against it: the evidence for ``auto``'s
   choice of int8 weights on LiteRT on every CPU.
3. ``concurrent``: ``--clients`` clients (threads of a process of their own, as browsers are)
   posting ``--requests`` requests in all at once: ``before`` (each request calls the model
   from Starlette's thread pool at once, as pg2-app did before issue 23, float32 only),
   ``after_one_at_a_time`` (pg2-app's inference queue: one request at a time on one worker, in
   arrival order), ``after_batched`` (the queue running up to 8 waiting requests as one batch)
   and, for auto (LiteRT), ``after_side_by_side`` (a second worker taking requests while the
   first is busy, each then on half of the cores), float32 and auto, each mode on a freshly
   started server (``pg2_app_default``: the mode pg2-app uses for that engine); p50/p95/max
   latency, requests per second against the sequential rate measured on the same server just
   before (one client), and the answers against the single-request ones.
4. ``animate``: pg2-animate (the library call behind the command) on ``--frames`` poses, its
   frames per second, float32, auto and TensorFlow's bfloat16 alternated.
5. ``side_by_side``: auto's queue on one worker against two side by side, alternated round by
   round on one server (``--ab_rounds``): the evidence for pg2-app's default with LiteRT.

It prints the CPU's flags, ``pg2_tf.core.hardware``'s verdict and the load average, and writes
everything to ``benchmarks/results/serving_<date>.json`` (or ``--json``). Parts 3 and 5 live in
``benchmarks/serving_queue.py``, the models, server and clients in ``benchmarks/serving_setup.py``.
"""

import argparse
import datetime
import json
import os
import platform
import sys
import time

import numpy as np

from benchmarks.serving_queue import measure_concurrent, measure_side_by_side
from benchmarks.serving_setup import (
    CONFIGS,
    Server,
    build_export,
    grey_level_errors,
    summary,
    synthetic_requests,
)

INTERESTING_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16",
                     "amx_bf16", "amx_int8", "amx_tile")  # fmt: skip
RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
FIXTURE_CHECKPOINT = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    "tests", "fixtures", "market_tf1",
)  # fmt: skip


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="market,df", help="market, df or both")
    parser.add_argument("--hidden", type=int, default=128, help="conv_hidden_num (128: full size)")
    parser.add_argument("--rounds", type=int, default=6, help="timed requests per precision")
    parser.add_argument("--poses", type=int, default=8, help="poses for the G2 error figures")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=32, help="requests of the clients in all")
    parser.add_argument("--concurrent_configs", default="market", help="configs of part 3")
    parser.add_argument("--frames", default="market:32,df:16", help="pg2-animate frames per config")
    parser.add_argument("--litert", default="market:float32,float16,int8;df:int8",
                        help="LiteRT weights tried per config in part 2")  # fmt: skip
    parser.add_argument("--parts", default="round_trip,batch1,concurrent,side_by_side,animate")
    parser.add_argument("--ab_rounds", type=int, default=12, help="rounds of part 5")
    parser.add_argument("--side_by_side_configs", default="market,df", help="configs of part 5")
    parser.add_argument("--work_dir", default=os.path.join("/tmp", "pg2_serving_benchmark"))
    parser.add_argument("--json", default=None)
    return parser.parse_args(argv)


def machine() -> dict:
    """CPU model and flags, pg2_tf.core.hardware's verdict, load average, versions."""
    import tensorflow as tf

    from pg2_tf.core import hardware

    text = hardware.read_cpuinfo(hardware.CPUINFO) or ""
    flags = hardware.cpu_flags(text)
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                  if line.startswith("model name")), platform.processor())  # fmt: skip
    support = hardware.bfloat16_support()
    return {
        "cpu": model,
        "cpu_count": os.cpu_count(),
        "cpu_flags": [flag for flag in INTERESTING_FLAGS if flag in flags],
        "bfloat16_native": support.native,
        "bfloat16_reason": support.reason,
        "tensorflow": tf.__version__,
        "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "load_average_before": os.getloadavg(),
    }


def measure_round_trip(config, saved_model, args) -> dict:
    """Part 1: float32 and auto pages, requests alternated; warm-up; G2 errors."""
    servers = {p: Server(saved_model, p) for p in ("float32", "auto")}
    try:
        model_number, img_H, img_W = CONFIGS[config]
        requests = synthetic_requests(img_H, img_W, max(args.poses, args.rounds + 1))
        times = {p: [] for p in servers}
        answers = {p: [] for p in servers}
        for index in range(args.rounds + 1):  # request 0 is each page's first after start-up
            for precision, server in servers.items():
                seconds, g2 = server.round_trip(*requests[index % len(requests)])
                times[precision].append(seconds)
        for image, keypoints_rc in requests[: args.poses]:
            for precision, server in servers.items():
                answers[precision].append(server.round_trip(image, keypoints_rc)[1])
        result = {"load_average": os.getloadavg()}
        for precision, server in servers.items():
            result[precision] = {
                "computes": server.service.engine.precision.name,
                "reason": server.service.engine.precision.reason,
                "start_up_s": round(server.start_seconds, 2),
                "warm_up_s": round(server.service.engine.warm_up_seconds, 3),
                "first_request_ms": round(1000 * times[precision][0], 1),
                **summary(times[precision][1:]),
            }
            rest = np.median(times[precision][1:])
            result[precision]["first_over_median"] = round(times[precision][0] / rest, 2)
        ratios = [a / f for a, f in zip(times["auto"][1:], times["float32"][1:], strict=True)]
        result["auto_over_float32"] = round(
            result["auto"]["median_ms"] / result["float32"]["median_ms"], 3
        )
        result["auto_over_float32_median_of_rounds"] = round(float(np.median(ratios)), 3)
        result["g2_error_auto_vs_float32"] = grey_level_errors(
            np.stack(answers["auto"]), np.stack(answers["float32"])
        )
        return result
    finally:
        for server in servers.values():
            server.close()


def measure_fixture_accuracy(work_dir) -> dict:
    """G2 of bfloat16 and int8 LiteRT against float32 on the original TF1 fixture checkpoint's
    24 test records (width 8)."""
    from pg2_tf.apps import page_service
    from pg2_tf.serving import contract, engines, export_lib

    export_dir = os.path.join(work_dir, "fixture_market_tf1")
    if not os.path.isfile(os.path.join(export_dir, "saved_model.pb")):
        export_lib.export_from_checkpoint(
            os.path.join(FIXTURE_CHECKPOINT, "tf1_checkpoint"), export_dir,
            model=1, img_H=128, img_W=64, conv_hidden_num=8,
        )  # fmt: skip
    loaded, _ = contract.load_export(export_dir)
    pairs = page_service.load_test_pairs(
        os.path.join(FIXTURE_CHECKPOINT, "test_data"), "market", 128, 64, 24
    )
    images = np.stack([pair.image_0 for pair in pairs])
    keypoints_rc = np.stack([pair.keypoints_1 for pair in pairs]).astype(np.float32)
    reference = engines.Engine(export_dir, loaded, "float32", warm_up=False)
    reference_g2 = reference.generate(images, keypoints_rc)["G2"]
    result = {"records": len(pairs)}
    for name in ("bfloat16", "litert_int8", "litert_float16"):
        engine = engines.Engine(export_dir, loaded, engines.Precision(name, "benchmark"),
                                  warm_up=False)  # fmt: skip
        result[name] = grey_level_errors(engine.generate(images, keypoints_rc)["G2"], reference_g2)
    return result


# ---- batch 1, every way of computing -------------------------------------------------------


def measure_batch1(config, saved_model, args) -> dict:
    """Part 2: each engine at batch 1, alternated; relative to TensorFlow float32."""
    from pg2_tf.serving import contract, engines

    loaded, (img_H, img_W) = contract.load_export(saved_model)
    weights = dict(item.split(":") for item in args.litert.split(";")).get(config, "")
    candidates = {"tf_float32": ("float32", None), "tf_bfloat16": ("bfloat16", None)}
    for weight in filter(None, weights.split(",")):
        for threads in (2, 1):
            candidates[f"litert_{weight}_{threads}threads"] = (f"litert_{weight}", threads)
    engine_by_label, build_seconds = {}, {}
    for label, (name, threads) in candidates.items():
        start = time.perf_counter()
        engine_by_label[label] = engines.Engine(
            saved_model, loaded, engines.Precision(name, "benchmark"), num_threads=threads
        )
        build_seconds[label] = round(time.perf_counter() - start, 1)
        print(f"  {config} {label}: ready in {build_seconds[label]} s", flush=True)
    requests = synthetic_requests(img_H, img_W, args.rounds, seed=1)
    times = {label: [] for label in engine_by_label}
    g2 = {label: [] for label in engine_by_label}
    for image, keypoints_rc in requests:
        for label, engine in engine_by_label.items():
            start = time.perf_counter()
            outputs = engine.generate(image[None], keypoints_rc[None])
            times[label].append(time.perf_counter() - start)
            g2[label].append(outputs["G2"][0])
    result = {"load_average": os.getloadavg()}
    base = np.median(times["tf_float32"])
    for label in engine_by_label:
        result[label] = {
            "ready_s": build_seconds[label],
            **summary(times[label]),
            "over_tf_float32": round(float(np.median(times[label]) / base), 3),
            "median_of_round_ratios": round(float(np.median(
                np.asarray(times[label]) / np.asarray(times["tf_float32"]))), 3),
            "g2_error_vs_tf_float32": grey_level_errors(np.stack(g2[label]), np.stack(g2["tf_float32"])),
        }  # fmt: skip
    return result


# ---- pg2-animate ---------------------------------------------------------------------------


def measure_animate(config, saved_model, frames: int, work_dir: str) -> dict:
    """Part 4: pg2-animate's frames per second, float32, auto and TensorFlow's bfloat16 (what auto
    chose before LiteRT was measured faster on every CPU) alternated, two runs each."""
    import skimage.data
    from PIL import Image

    from data_prep import synthetic_people
    from pg2_tf import animate
    from pg2_tf.apps import animation
    from pg2_tf.people import blazepose
    from pg2_tf.serving import engines

    photo = os.path.join(work_dir, "astronaut.png")
    Image.fromarray(skimage.data.astronaut()).save(photo)
    poses = os.path.join(work_dir, f"poses_{frames}")
    os.makedirs(poses, exist_ok=True)
    rng = np.random.default_rng(3)
    base = synthetic_people.random_keypoints(rng, 400, 200)
    for index in range(frames):  # a figure swaying: the same person, joints moving smoothly
        moved = np.where(base >= 0, base + 6 * np.sin(index / 3 + np.arange(18))[:, None], -1)
        triples = np.concatenate([moved[:, ::-1], (moved[:, :1] >= 0)], axis=1)
        with open(os.path.join(poses, f"{index:04d}.json"), "w") as handle:
            json.dump({"people": [{"pose_keypoints_2d": triples.reshape(-1).tolist()}]}, handle)
    estimator = blazepose.KeypointEstimator()
    ways = {"float32": "float32", "auto": "auto",
            "tf_bfloat16": engines.Precision(engines.BFLOAT16, "benchmark")}  # fmt: skip
    result = {label: [] for label in ways}
    for _ in range(2):
        for label, precision in ways.items():
            made = animation.animate(
                saved_model, photo, poses, os.path.join(work_dir, f"{config}_{label}.gif"),
                estimator=estimator, progress_bar=False, precision=precision, log=lambda line: None,
            )  # fmt: skip
            result[label].append(made["generated"] / made["generate_seconds"])
            print(f"  {config} {animate.frame_rate_line(made)}", flush=True)
    fps = {p: round(float(np.median(v)), 3) for p, v in result.items()}
    return {
        "frames": frames,
        "fps_runs": {p: [round(v, 3) for v in values] for p, values in result.items()},
        "fps": fps,
        "auto_over_float32_fps": round(fps["auto"] / fps["float32"], 2),
        "tf_bfloat16_over_float32_fps": round(fps["tf_bfloat16"] / fps["float32"], 2),
        "load_average": os.getloadavg(),
    }


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.makedirs(args.work_dir, exist_ok=True)
    results = {"machine": machine(), "args": vars(args)}
    info = results["machine"]
    print(f"CPU: {info['cpu']} ({info['cpu_count']} cores); flags: {' '.join(info['cpu_flags'])}")
    print(f"bfloat16 native: {info['bfloat16_native']} ({info['bfloat16_reason']}); "
          f"load average {info['load_average_before']}", flush=True)  # fmt: skip
    parts = set(args.parts.split(","))
    frames = dict(item.split(":") for item in args.frames.split(","))
    if "round_trip" in parts:
        results["fixture_accuracy"] = measure_fixture_accuracy(args.work_dir)
        print(f"fixture checkpoint, G2 against float32: {results['fixture_accuracy']}", flush=True)
    for config in args.configs.split(","):
        saved_model = build_export(config, args.hidden, args.work_dir)
        entry = results.setdefault(config, {})
        if "round_trip" in parts:
            entry["round_trip"] = measure_round_trip(config, saved_model, args)
            trip = entry["round_trip"]
            print(f"{config} round trip: float32 {trip['float32']['median_ms']} ms, auto "
                  f"{trip['auto']['median_ms']} ms ({trip['auto']['computes']}), ratio "
                  f"{trip['auto_over_float32']}; first requests {trip['float32']['first_request_ms']}"
                  f" / {trip['auto']['first_request_ms']} ms; G2 error "
                  f"{trip['g2_error_auto_vs_float32']}", flush=True)  # fmt: skip
        if "batch1" in parts:
            entry["batch1"] = measure_batch1(config, saved_model, args)
            for label, value in entry["batch1"].items():
                if label != "load_average":
                    print(f"{config} batch 1 {label}: {value['median_ms']} ms, "
                          f"{value['over_tf_float32']} of TF float32, G2 error "
                          f"{value['g2_error_vs_tf_float32']}", flush=True)  # fmt: skip
        if "concurrent" in parts and config in args.concurrent_configs.split(","):
            entry["concurrent"] = measure_concurrent(config, saved_model, args)
        if "side_by_side" in parts and config in args.side_by_side_configs.split(","):
            entry["side_by_side"] = measure_side_by_side(config, saved_model, args)
            for name in ("one_worker", "side_by_side"):
                print(f"{config} {name}: {entry['side_by_side'][name]}", flush=True)
        if "animate" in parts and config in frames:
            entry["animate"] = measure_animate(config, saved_model, int(frames[config]),
                                               args.work_dir)  # fmt: skip
            print(
                f"{config} animate fps: {entry['animate']['fps']} "
                f"(auto / float32 {entry['animate']['auto_over_float32_fps']})",
                flush=True,
            )
        path = args.json or os.path.join(
            RESULTS_DIR, f"serving_{info['date'][:10]}_h{args.hidden}.json"
        )
        results["machine"]["load_average_after"] = os.getloadavg()
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as handle:  # after each config: a partial run keeps its figures
            json.dump(results, handle, indent=2)
        print(f"wrote {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
