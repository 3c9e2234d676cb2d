"""Writes pair records into resumable tf-record shards, in parallel over the cores.

Shards are ``<prefix>_<split>_<index:05d>-of-<count:05d>.tfrecord``: consecutive runs of the record
list, ``records_per_shard`` each. A shard is written under a hidden temporary name
(``.<name>.partial``, matched by neither ``*.tfrecord`` nor ``<prefix>_*`` globs) and renamed when
complete, so a killed run never leaves a truncated file under a finished name; running again
skips the finished shards and overwrites what the killed one left. (The name is fixed, not
:mod:`pg2_tf.core.atomic`'s random one, for that: no sweep of the folder is needed, which could take
the partial shards of another split converted into the same folder meanwhile.) A hidden ``.<prefix>_<split>.plan`` file holds a digest of the record
list, so finished shards of a different conversion are never mixed in silently.

Worker processes (``spawn``: no TensorFlow, no forked threads) serialise records with
:class:`data_prep.record_features.RecordBuilder`; the parent writes them in order with TensorFlow's
``TFRecordWriter``.
"""

import hashlib
import math
import multiprocessing
import os
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path

from tqdm import tqdm

from data_prep.record_features import PairRecord, RecordBuilder
from pg2_tf.core import atomic
from pg2_tf.core.errors import ConfigError

# Records per task sent to a worker; below SERIAL_LIMIT records no worker process is started.
CHUNK_SIZE = 16
SERIAL_LIMIT = 256
# Serialised records wait in memory until written: at most this many tasks per worker at a time.
TASKS_IN_FLIGHT_PER_WORKER = 2

_worker_builder: RecordBuilder | None = None


def shard_names(prefix: str, split_tag: str, num_shards: int) -> list[str]:
    """File names of the shards of one split.

    Args:
        prefix: the record prefix (``Market1501``, ``DeepFashion``).
        split_tag: train or test.
        num_shards: how many shards.

    Returns:
        ``<prefix>_<split_tag>_<i:05d>-of-<n:05d>.tfrecord``, i from 0.
    """
    return [
        f"{prefix}_{split_tag}_{index:05d}-of-{num_shards:05d}.tfrecord"
        for index in range(num_shards)
    ]


def plan_digest(records: Sequence[PairRecord], settings: str) -> str:
    """A digest of what a conversion writes, so that a resume continues only the same one.

    Args:
        records: the ordered records.
        settings: the settings that shape the files (prefix, split, shard size, ...).

    Returns:
        sha256 hex digest of the settings and every record's folder, names, ids, cameras, label.
    """
    digest = hashlib.sha256(settings.encode())
    for record in records:
        fields = (record.folder, record.name_0, record.name_1, record.id_0, record.id_1)
        digest.update(repr(fields + (record.cam_0, record.cam_1, record.label)).encode())
    return digest.hexdigest()


def write_records(
    out_dir: Path,
    prefix: str,
    split_tag: str,
    records: Sequence[PairRecord],
    builder: RecordBuilder,
    records_per_shard: int = 1000,
    workers: int = 1,
    show_progress: bool = True,
) -> list[Path]:
    """Writes ``records`` (in this order) as shards of ``out_dir``, resuming a killed conversion.

    Args:
        out_dir: the output folder (created).
        prefix: the record prefix (``Market1501``, ``DeepFashion``).
        split_tag: train or test.
        records: the pairs to write.
        builder: serializes each record.
        records_per_shard: records a ``.tfrecord`` file.
        workers: worker processes.
        show_progress: show a progress bar.

    Returns:
        The shard paths, in order.

    Raises:
        ConfigError: ``out_dir`` holds finished shards of another conversion (other records or
            another shard size), or records_per_shard below 1.
        DataError: from the builder (unreadable image, unusable pose).
    """
    if records_per_shard < 1:
        raise ConfigError(f"--records_per_shard must be at least 1, got {records_per_shard}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    num_shards = max(1, math.ceil(len(records) / records_per_shard))
    names = shard_names(prefix, split_tag, num_shards)
    paths = [out_dir / name for name in names]
    settings = f"{prefix}|{split_tag}|{records_per_shard}|{builder.spec.kind}"
    settings += f"|roi10={builder.with_roi10_mask}"
    digest = plan_digest(records, settings)
    plan_path = out_dir / f".{prefix}_{split_tag}.plan"
    _check_resumable(out_dir, prefix, split_tag, names, plan_path, digest)
    atomic.write_text(plan_path, digest + "\n")  # a torn plan would refuse the resume

    bounds = [
        (start, min(start + records_per_shard, len(records)))
        for start in range(0, max(len(records), 1), records_per_shard)
    ]
    todo = [index for index in range(num_shards) if not paths[index].exists()]
    done_records = sum(bounds[i][1] - bounds[i][0] for i in range(num_shards) if i not in todo)
    todo_records = len(records) - done_records

    def chunks() -> Iterator[tuple[int, list[PairRecord]]]:
        for index in todo:
            start, end = bounds[index]
            if start == end:
                yield index, []
            for chunk_start in range(start, end, CHUNK_SIZE):
                yield index, list(records[chunk_start : min(chunk_start + CHUNK_SIZE, end)])

    import tensorflow as tf  # only the parent process writes; imported before the progress bar

    progress = tqdm(
        total=len(records),
        initial=done_records,
        unit="pair",
        desc=f"{prefix} {split_tag}",
        disable=not show_progress,
    )
    with progress:
        if workers <= 1 or todo_records <= SERIAL_LIMIT:
            results = (_serialize_with(builder, task) for task in chunks())
            _write_in_order(tf, results, paths, bounds, progress)
        else:
            context = multiprocessing.get_context("spawn")
            with context.Pool(workers, initializer=_init_worker, initargs=(builder,)) as pool:
                results = _in_order(pool, chunks(), window=TASKS_IN_FLIGHT_PER_WORKER * workers)
                _write_in_order(tf, results, paths, bounds, progress)
    return paths


def _check_resumable(out_dir, prefix, split_tag, names, plan_path, digest) -> None:
    existing = sorted(path.name for path in out_dir.glob(f"{prefix}_{split_tag}_*.tfrecord"))
    if not existing:
        return
    foreign = [name for name in existing if name not in names]
    previous = plan_path.read_text().strip() if plan_path.is_file() else None
    if foreign or previous != digest:
        raise ConfigError(
            f"{out_dir} already holds {prefix}_{split_tag}_*.tfrecord shards of another conversion"
            f" (other pairs or --records_per_shard); delete them or choose another output folder"
        )


def _write_in_order(tf, results, paths, bounds, progress) -> None:
    writer, partial, current, written = None, None, None, 0
    try:
        for index, serialized in results:
            if index != current:
                current, written = index, 0
                partial = paths[index].with_name(f".{paths[index].name}.partial")
                writer = tf.io.TFRecordWriter(str(partial))
            for record_bytes in serialized:
                writer.write(record_bytes)
            written += len(serialized)
            progress.update(len(serialized))
            start, end = bounds[index]
            if written == end - start:
                writer.close()
                os.replace(partial, paths[index])
                writer, partial, current = None, None, None
    finally:
        if writer is not None:
            writer.close()
            partial.unlink(missing_ok=True)


def _in_order(pool, tasks, window: int):
    """Results of ``tasks`` in order, with at most ``window`` tasks submitted and unwritten."""
    pending = deque()
    for task in tasks:
        pending.append(pool.apply_async(_serialize_chunk, (task,)))
        if len(pending) >= window:
            yield pending.popleft().get()
    while pending:
        yield pending.popleft().get()


def _init_worker(builder: RecordBuilder) -> None:
    global _worker_builder
    _worker_builder = builder


def _serialize_chunk(task: tuple[int, list[PairRecord]]) -> tuple[int, list[bytes]]:
    return _serialize_with(_worker_builder, task)


def _serialize_with(builder: RecordBuilder, task) -> tuple[int, list[bytes]]:
    index, records = task
    return index, [builder.serialize(record) for record in records]
