"""Training under ``tf.distribute``: which process is the chief, and how the records and the
batches are split over workers and replicas.

Rule: only the chief writes to model_dir (checkpoints, summaries, samples); the other workers
save into a temporary folder. A distributed input pipeline's position cannot be checkpointed, so
a distributed run that resumes starts a new batch order (docs/performance.md, "tf.distribute").
"""

import tensorflow as tf
from absl import logging


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes checkpoints and summaries.

    Args:
        strategy: any tf.distribute strategy.

    Returns:
        True unless ``strategy`` is multi-worker and this process is not its chief (task
        "chief", else worker 0).
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    """Whether ``strategy`` spans several processes.

    Args:
        strategy: any tf.distribute strategy.

    Returns:
        True for a MultiWorkerMirroredStrategy (even of one worker).
    """
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def _num_workers(strategy) -> int:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not is_multi_worker(strategy):
        return 1
    cluster = resolver.cluster_spec().as_dict()
    return max(1, len(cluster.get("worker", [])) + len(cluster.get("chief", [])))


def shard_policy(strategy: tf.distribute.Strategy, files: list[str] | None):
    """How a multi-worker strategy splits the records.

    Args:
        strategy: any tf.distribute strategy.
        files: the record files read, or None when unknown (a dataset passed in).

    Returns:
        A ``tf.data.experimental.AutoShardPolicy``: AUTO for one worker; FILE (each worker reads
        its own files) when there are at least as many files as workers; else DATA (each worker
        reads every record and keeps its share).
    """
    policy = tf.data.experimental.AutoShardPolicy
    workers = _num_workers(strategy)
    if workers == 1:
        return policy.AUTO
    if files is not None and len(files) >= workers:
        return policy.FILE
    logging.info(
        "%s record files for %d workers: each worker reads all records and keeps its share "
        "(more files than workers lets each read only its own)",
        "unknown number of" if files is None else len(files),
        workers,
    )
    return policy.DATA
