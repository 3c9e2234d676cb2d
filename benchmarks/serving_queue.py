"""Parts 3 and 5 of the serving benchmark (``python -m benchmarks.serving``): several users.

``concurrent``: ``--clients`` clients posting ``--requests`` requests at once, without the queue
(``before``) and with pg2-app's inference queue in each of its modes; ``side_by_side``: auto's
queue on one worker against two side by side, alternated round by round on one server.

Rule: every mode runs pg2-app's own :class:`pg2_tf.serving.inference_queue.InferenceQueue` on a
freshly started server, and the clients run in a process of their own, as browsers do.
"""

import concurrent.futures
import multiprocessing
import os

import numpy as np

from benchmarks.serving_setup import (
    CONFIGS,
    Server,
    concurrent_clients,
    grey_level_errors,
    request_body,
    summary,
    synthetic_requests,
)


def measure_concurrent(config, saved_model, args) -> dict:
    """Part 3: before (no queue) and after (the queue), float32 and auto."""
    model_number, img_H, img_W = CONFIGS[config]
    requests = synthetic_requests(img_H, img_W, args.requests, seed=2)
    bodies = [request_body(image, keypoints_rc) for image, keypoints_rc in requests]
    spawn = multiprocessing.get_context("spawn")  # no fork of a process running TensorFlow
    from pg2_tf.serving import inference_queue

    result = {}
    for precision in ("float32", "auto"):
        alone = None
        # before: pg2-app before issue 23 ran float32 only; a LiteRT interpreter called from
        # several threads at once fails ("at least 1 reference to internal data").
        modes = ("after_one_at_a_time", "after_batched")
        if precision == "float32":
            modes = ("before", *modes)
        else:  # LiteRT's interpreter splits in two; TensorFlow batches instead
            modes = (*modes, "after_side_by_side")
        for mode in modes:
            # A fresh server for each mode: what one mode leaves behind (threads, memory) does
            # not slow the next.
            server = Server(saved_model, precision)
            try:
                # One client, one request at a time, on this server just before its clients: the
                # sequential rate and round trip it is held to (the machine's speed drifts by
                # the minute), and each request's answer alone.
                with concurrent.futures.ProcessPoolExecutor(1, mp_context=spawn) as browser:
                    sequential, single, _ = browser.submit(
                        concurrent_clients, server.url, bodies, 1
                    ).result()
                alone = single if alone is None else alone
                service = server.service
                if mode == "before":  # as pg2-app called the model before issue 23
                    engine = service.engine

                    def direct(image, keypoints_rc, engine=engine):
                        outputs = engine.generate(image[None], keypoints_rc[None])
                        return {name: values[0] for name, values in outputs.items()}

                    service.generate = direct
                else:
                    # one request at a time on one worker, up to 8 waiting ones together, or
                    # side by side: pg2-app's own queue where it is the mode's
                    app_queue = service.queue
                    wanted = (8 if mode == "after_batched" else 1, mode == "after_side_by_side")
                    if (app_queue.max_batch, app_queue.side_by_side) != wanted:
                        app_queue.close()
                        service.queue = inference_queue.InferenceQueue(
                            service.engine, max_batch=wanted[0], side_by_side=wanted[1]
                        )
                    # what the queue ran before the clients (warm-up, the sequential requests)
                    ran_before = (len(service.queue.batch_sizes), service.queue.side_by_side_runs)
                with concurrent.futures.ProcessPoolExecutor(1, mp_context=spawn) as browsers:
                    latencies, answers, wall = browsers.submit(
                        concurrent_clients, server.url, bodies, args.clients
                    ).result()
                errors = grey_level_errors(np.stack(answers), np.stack(alone))
                entry = {
                    "computes": service.engine.precision.name,
                    **summary(latencies),
                    "requests_per_s": round(len(requests) / wall, 3),
                    "sequential_requests_per_s": round(len(requests) / sum(sequential), 3),
                    "sequential_round_trip_ms": round(1000 * float(np.median(sequential)), 1),
                    "p95_bound_ms": round(1000 * args.clients * float(np.median(sequential)), 1),
                    "answers_vs_single_requests": errors,
                    "load_average": os.getloadavg(),
                }
                if mode != "before":
                    entry["batch_sizes"] = service.queue.batch_sizes[ran_before[0] :]
                    entry["side_by_side_runs"] = service.queue.side_by_side_runs - ran_before[1]
                    entry["pg2_app_default"] = service.queue is app_queue
                result[f"{precision}_{mode}"] = entry
                print(f"  {config} {precision} {mode}: p50 {entry['p50_ms']} ms, p95 "
                      f"{entry['p95_ms']} ms (bound {entry['p95_bound_ms']}), max "
                      f"{entry['max_ms']} ms, {entry['requests_per_s']} req/s (sequential "
                      f"{entry['sequential_requests_per_s']})", flush=True)  # fmt: skip
            finally:
                server.close()
    return result


def measure_side_by_side(config, saved_model, args) -> dict:
    """Part 5: auto's queue on one worker against side by side (pg2-app's default for LiteRT),
    ALTERNATED on one server for ``--ab_rounds`` rounds (the order reversed every other round):
    in each round and for each queue, 12 sequential requests (one client) then ``--clients``
    clients posting ``--requests``. Paired medians over the rounds: requests per second against
    one worker's in the same round, and p95 against ``--clients`` x one worker's sequential
    round trip of the same round (the bound of issue 23, the same for both)."""
    from pg2_tf.serving import inference_queue

    model_number, img_H, img_W = CONFIGS[config]
    requests = synthetic_requests(img_H, img_W, args.requests, seed=2)
    bodies = [request_body(image, keypoints_rc) for image, keypoints_rc in requests]
    spawn = multiprocessing.get_context("spawn")
    server = Server(saved_model, "auto")
    service = server.service
    app_queue = service.queue  # pg2-app's own: side by side (LiteRT)
    assert app_queue.side_by_side and app_queue.max_batch == 1
    queues = {
        "one_worker": inference_queue.InferenceQueue(
            service.engine, max_batch=1, side_by_side=False
        ),
        "side_by_side": app_queue,
    }
    rounds = {name: [] for name in queues}
    try:
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=spawn) as browser:
            for index in range(args.ab_rounds):
                for name in list(queues)[:: 1 if index % 2 == 0 else -1]:
                    service.queue = queues[name]
                    sequential, _, _ = browser.submit(
                        concurrent_clients, server.url, bodies[:12], 1
                    ).result()
                    latencies, _, wall = browser.submit(
                        concurrent_clients, server.url, bodies, args.clients
                    ).result()
                    rounds[name].append({
                        "sequential_ms": summary(sequential)["median_ms"],
                        "p95_ms": summary(latencies)["p95_ms"],
                        "requests_per_s": round(len(bodies) / wall, 3),
                        "load_average": os.getloadavg()[0],
                    })  # fmt: skip
                one, two = rounds["one_worker"][-1], rounds["side_by_side"][-1]
                print(f"  {config} round {index}: one worker {one['requests_per_s']} req/s, p95 "
                      f"{one['p95_ms']} ms; side by side {two['requests_per_s']} req/s, p95 "
                      f"{two['p95_ms']} ms; bound {args.clients * one['sequential_ms']:.0f} ms",
                      flush=True)  # fmt: skip
    finally:
        queues["one_worker"].close()
        service.queue = app_queue  # closed with the server
        server.close()
    result = {"rounds": rounds}
    for name, entries in rounds.items():
        pairs = list(zip(entries, rounds["one_worker"], strict=True))
        result[name] = {
            "median_requests_per_s": round(float(np.median([e["requests_per_s"] for e in entries])), 3),
            "median_sequential_ms": round(float(np.median([e["sequential_ms"] for e in entries])), 1),
            "throughput_over_one_worker": round(float(np.median(
                [e["requests_per_s"] / o["requests_per_s"] for e, o in pairs])), 3),
            "p95_over_bound": round(float(np.median(
                [e["p95_ms"] / (args.clients * o["sequential_ms"]) for e, o in pairs])), 3),
            "rounds_within_bound": sum(
                e["p95_ms"] <= args.clients * o["sequential_ms"] for e, o in pairs),
        }  # fmt: skip
    return result
