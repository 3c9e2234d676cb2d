"""The page's inference queue: several users' requests served by one engine, in arrival order.

:class:`InferenceQueue` serves the requests of several users in arrival order (its worker
threads also warm the engines up): every caller gets its own images back, and a request waits at
most for the requests ahead of it. For TensorFlow it joins those waiting into one batch of up to
:attr:`pg2_tf.serving.engines.Engine.batch_limit` (8): a batch of 7 cost 0.69 of seven single
calls on the 2-core Xeon (docs/performance.md; a batch may move a pixel by a grey level against
the same request alone). LiteRT's interpreter runs a batch one image at a time, so there the queue
takes one request at a time instead, and under load runs two side by side, each on half of the
cores (:meth:`pg2_tf.serving.engines.Engine.split`; the same answers, bit for bit).

Rule: the engines are called only from the queue's own worker threads, one call per worker at a
time; a failing batch fails its own requests and the queue serves on.
"""

import collections
import concurrent.futures
import threading

import numpy as np

from pg2_tf.serving import contract
from pg2_tf.serving.engines import Engine


class InferenceQueue:
    """Worker threads that run an :class:`Engine` for every caller, in arrival order.

    ``submit`` returns a :class:`concurrent.futures.Future` of ``{"G1", "G2", "diff_map"}``
    (uint8 [H, W, 3] each) for one image and pose. The main worker takes the oldest request and
    every other one waiting, up to ``max_batch`` in all, and runs them as one batch. With a
    second worker (``side_by_side``), it takes the oldest request whenever the main one is busy,
    and while both work each runs on half of the cores; a request that finds nobody else in the
    queue runs on all of them. With 8 clients on the 2-core Xeon this served 1.22x the requests
    per second of one worker (docs/performance.md, "Several users").

    Args:
        engine: an :class:`Engine` (or anything with its ``generate``, ``warm_up``, ``split``
            and ``batch_limit``).
        max_batch: most requests run as one batch (None: :attr:`Engine.batch_limit`).
        warm_up: the constructor returns once :meth:`Engine.warm_up` has run for every engine,
            each on the thread that serves with it.
        side_by_side: run a second worker on half of the cores (None: wherever
            :meth:`Engine.split` gives two halves, i.e. LiteRT; True raises ValueError where it
            does not).
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
