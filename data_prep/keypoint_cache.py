"""Keypoints of many images, estimated in worker processes and cached so that a killed run resumes.

The cache is one JSON-lines file, append-only: a header line (what it belongs to), then one line
per image ``{"image": path, "keypoints_rc": [[row, col] * 18] | null, "reason": text | null}``.
Only the parent process writes it, with one ``write`` per line, ``fsync`` at least every
:data:`SYNC_EVERY` lines and at the end; on opening, a torn last line (a kill -9 or a full disk in
the middle of a write) is cut off, so every image is in the file at most once and a rerun
estimates exactly the images that are not.

Memory is bounded: the workers read the images (the parent only sends paths and receives 18
keypoints per image), results are written as they come.
"""

import dataclasses
import functools
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pg2_tf.core import atomic, pose
from pg2_tf.core.errors import ConfigError, DataError, first_line

SYNC_EVERY = 64  # lines
SYNC_SECONDS = 2.0
CHUNK_SIZE = 8  # images per task sent to a worker
# 2: crops the detector misses are read whole (pg2_tf.people.regions); the "no person found" of
# a version-1 file are estimated again, its keypoints kept.
VERSION = 2

_worker_estimate: Callable | None = None


class KeypointCache:
    """The append-only keypoint file of one (dataset, split) of a release."""

    def __init__(self, path: Path, header: dict):
        self.path = Path(path)
        self.header = dict(header, version=VERSION)
        self.rows: dict[str, tuple[np.ndarray | None, str | None]] = {}
        self._handle = None
        self._unsynced = 0
        self._synced_at = time.monotonic()

    def open(self) -> "KeypointCache":
        """Reads what is there (cutting a torn last line) and opens the file for appending."""
        if self.path.is_file():
            self._load()
        else:
            self._append_bytes(json.dumps(self.header).encode() + b"\n", sync=True)
        return self

    def _load(self) -> None:
        data = self.path.read_bytes()
        good_end = 0
        for number, line in enumerate(data.split(b"\n")[:-1]):  # the last piece is unterminated
            try:
                row = json.loads(line)
            except ValueError:
                break  # a torn or garbled line: it and everything after it is dropped
            if number == 0:
                older = row.get("version", 1) < VERSION
                if {k: row.get(k) for k in self.header if k != "version"} != {
                    k: v for k, v in self.header.items() if k != "version"
                }:
                    raise ConfigError(
                        f"{self.path} holds the keypoints of another run ({row}); give --out "
                        "another folder or delete that file"
                    )
            else:
                keypoints = row.get("keypoints_rc")
                if keypoints is not None:
                    keypoints = np.asarray(keypoints, np.float64).reshape(pose.NUM_KEYPOINTS, 2)
                elif older:
                    continue  # an older version found nobody: estimated again
                self.rows.setdefault(row["image"], (keypoints, row.get("reason")))
            good_end += len(line) + 1
        if good_end == 0:  # not even the header survived
            self.path.write_bytes(json.dumps(self.header).encode() + b"\n")
            return
        if older:  # rewritten whole under this version's header, without the rows to redo
            lines = [json.dumps(self.header)] + [
                json.dumps(
                    {
                        "image": image,
                        "keypoints_rc": np.asarray(keypoints).tolist(),
                        "reason": reason,
                    }
                )  # fmt: skip
                for image, (keypoints, reason) in self.rows.items()
            ]
            atomic.write_text(str(self.path), "\n".join(lines) + "\n")
            return
        if good_end < len(data):
            with open(self.path, "r+b") as handle:
                handle.truncate(good_end)
                os.fsync(handle.fileno())

    def add(self, image: str, keypoints_rc: np.ndarray | None, reason: str | None) -> None:
        """Appends one image's result (fsync'd within :data:`SYNC_EVERY` lines)."""
        values = None if keypoints_rc is None else np.asarray(keypoints_rc).tolist()
        line = json.dumps({"image": image, "keypoints_rc": values, "reason": reason})
        self._unsynced += 1
        due = self._unsynced >= SYNC_EVERY or time.monotonic() - self._synced_at > SYNC_SECONDS
        self._append_bytes(line.encode() + b"\n", sync=due)
        self.rows[image] = (None if keypoints_rc is None else np.asarray(keypoints_rc), reason)

    def _append_bytes(self, data: bytes, sync: bool) -> None:
        try:
            if self._handle is None:
                self._handle = open(self.path, "ab", buffering=0)
            os.write(self._handle.fileno(), data)
            if sync:
                os.fsync(self._handle.fileno())
                self._unsynced, self._synced_at = 0, time.monotonic()
        except OSError as error:
            raise DataError(
                f"writing {self.path} failed ({error.strerror or error}): free space (or make the "
                f"folder writable) and run the same command again; the {len(self.rows)} images "
                "done are kept"
            ) from None

    def close(self) -> None:
        if self._handle is not None:
            try:
                os.fsync(self._handle.fileno())
            finally:
                self._handle.close()
                self._handle = None


def estimate_all(
    cache: KeypointCache,
    tasks: Iterable[tuple[str, str]],
    todo: int,
    make_estimate: Callable[[], Callable[[str], tuple]],
    workers: int,
    show_progress: bool = True,
    done: int = 0,
    cacheable: Callable[[str | None], bool] = lambda reason: True,
) -> list[tuple[str, str]]:
    """Estimates the keypoints of ``tasks`` ((cache key, image file) pairs) into ``cache``.

    Args:
        make_estimate: a picklable factory called once per worker process (or once here when
            ``workers`` is 1); the function it returns maps an image file to
            ``(keypoints_rc or None, reason or None)``.
        todo, done: the number of tasks and of images already cached (for the progress bar).
        cacheable: whether a result with this reason is final; the others (e.g. an unreadable
            file, which a rerun should try again) are returned instead of cached.

    Returns:
        ``(key, reason)`` of the results that were not cached.
    """
    progress = tqdm(total=todo + done, initial=done, unit="img", desc="keypoints",
                    disable=not show_progress, file=sys.stderr, smoothing=0.05)  # fmt: skip
    not_cached = []
    with progress:
        for key, keypoints_rc, reason in _results(tasks, make_estimate, workers):
            if cacheable(reason):
                cache.add(key, keypoints_rc, reason)
            else:
                not_cached.append((key, reason))
            progress.update(1)
    return not_cached


def _results(tasks, make_estimate, workers) -> Iterator[tuple]:
    if workers <= 1:
        estimate = make_estimate()
        for key, path in tasks:
            yield (key, *estimate(path))
        return
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=_init_worker, initargs=(make_estimate,)) as pool:
        yield from pool.imap_unordered(_estimate_task, tasks, chunksize=CHUNK_SIZE)


def _init_worker(make_estimate) -> None:
    global _worker_estimate
    _worker_estimate = make_estimate()


def _estimate_task(task) -> tuple:
    key, path = task
    return (key, *_worker_estimate(path))


# ---- keypoints of one image (runs in the worker processes) -----------------------------------

UNREADABLE = "unreadable image"


def estimate_image(estimator, path: str) -> tuple:
    """The person in an image file, as the records take it.

    Args:
        estimator: a pose estimator (called ``estimator(image, name=path)``).
        path: the image file.

    Returns:
        ``(keypoints_rc, None)``: float64 [18, 2] (row, col) whole pixels inside the image, -1
        missing; or ``(None, reason)``. A reason starting with :data:`UNREADABLE` is not cached
        (a rerun tries the file again).
    """
    from pg2_tf.people import blazepose, photos

    try:
        image = photos.load_photo(path)
    except (DataError, OSError) as error:
        return None, f"{UNREADABLE} ({first_line(error)})"
    try:
        person = estimator(image, name=path)
    except blazepose.NoPersonFound:
        return None, "no person found"
    keypoints_rc = np.round(person.keypoints_rc())  # OpenPose gave whole pixels
    present = ~pose.missing_joints(keypoints_rc)
    limits = np.array(image.shape[:2]) - 1
    keypoints_rc[present] = np.clip(keypoints_rc[present], 0, limits)
    return keypoints_rc, None


@dataclasses.dataclass(frozen=True)
class BlazePose:
    """Picklable factory of :func:`estimate_image` with a BlazePose estimator (one per worker)
    that reads a release image as a crop of one person
    (:class:`pg2_tf.people.regions.CropReader`)."""

    model_dir: str | None = None
    threads: int | None = None

    def __call__(self):
        from pg2_tf.people import blazepose, regions

        estimator = blazepose.KeypointEstimator(self.model_dir, self.threads)
        return functools.partial(estimate_image, regions.CropReader(estimator))
