"""A training run's folder (``--model_dir``): who holds it, which checkpoint a run resumes from,
where the input pipeline stood, params.json, what a killed run left behind, and writing there.

Layout (as the original's, plus the lock and the pipeline positions)::

    model_dir/checkpoint                       tf.train.CheckpointManager's state file
    model_dir/model.ckpt-<step>.{index,data-*} the model, optimisers and step after <step> steps
    model_dir/input_pipeline/input_pipeline.ckpt-<step>.*  the batch order after <step> steps
    model_dir/params.json                      the flags of the run
    model_dir/.lock                            flock'd by the training process, holds its pid

Resuming never depends on the state file alone: the newest COMPLETE and INTACT ``model.ckpt-*``
on disk is used (a damaged newest one is skipped, saying why), and a folder that holds
checkpoints none of which can be read is refused rather than trained over.

Rule: only the process holding the folder's :class:`Lock` repairs or cleans it, and a failed
write becomes one :class:`ModelDirError` line, the earlier checkpoints kept.
"""

import errno
import glob
import json
import os
import re
import shutil

import numpy as np
import tensorflow as tf
from absl import logging

from pg2_tf.core import atomic, folder_lock
from pg2_tf.core.errors import Pg2Error, first_line
from pg2_tf.networks import checkpoints

CHECKPOINT_NAME = "model.ckpt"
PIPELINE_DIR = "input_pipeline"
PIPELINE_NAME = "input_pipeline.ckpt"
PIPELINE_POSITIONS_KEPT = 3  # input-pipeline positions kept (see pipeline_manager)
LOCK_NAME = folder_lock.LOCK_NAME
_STEP = re.compile(r"-(\d+)$")
_DATA_SHARD = re.compile(r"\.data-(\d+)-of-(\d+)$")


class ModelDirError(Pg2Error):
    """model_dir is in use, not writable, full, or holds checkpoints that cannot be resumed."""


def step_of(prefix: str | None) -> int:
    """The step of a checkpoint prefix.

    Args:
        prefix: ``.../model.ckpt-<step>``, or None.

    Returns:
        The step, -1 for None.
    """
    if not prefix:
        return -1
    return int(_STEP.search(prefix).group(1))


# ---- the lock ---------------------------------------------------------------------------------


class Lock(folder_lock.FolderLock):
    """An exclusive ``flock`` on ``model_dir/.lock`` for the life of a training process
    (:class:`pg2_tf.core.folder_lock.FolderLock`). :func:`pg2_tf.training.loop.train` takes it. A second
    process gets :class:`ModelDirError` naming the holder's pid.
    """

    def __init__(self, model_dir: str):
        super().__init__(model_dir, "--model_dir", "training process", ModelDirError)
        self.model_dir = model_dir


# ---- leftovers of a killed run ----------------------------------------------------------------


def remove_leftovers(model_dir: str) -> list[str]:
    """Deletes what a killed run leaves half-written: checkpoint ``*_temp`` folders (TensorFlow
    writes a checkpoint there, then renames it into place), the temporary files of
    :mod:`pg2_tf.core.atomic`, and the ``*.tmp.png`` and ``*.tmp`` files of versions before it.
    Only call while holding the :class:`Lock`.

    Args:
        model_dir: the run folder (its ``input_pipeline/`` is cleaned too).

    Returns:
        The paths removed.
    """
    removed = []
    for folder in (model_dir, os.path.join(model_dir, PIPELINE_DIR)):
        for path in glob.glob(os.path.join(glob.escape(folder), "*_temp")):
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        removed += atomic.remove_leftovers(folder)
        for pattern in ("*.tmp.png", "*.tmp"):
            for path in glob.glob(os.path.join(glob.escape(folder), pattern)):
                if os.path.isfile(path):
                    os.remove(path)
                    removed.append(path)
    if removed:
        logging.info("removed %d leftovers of an interrupted run: %s", len(removed), removed)
    return removed


# ---- checkpoints on disk ----------------------------------------------------------------------


def complete_checkpoints(folder: str, name: str = CHECKPOINT_NAME) -> list[str]:
    """The complete checkpoints of a folder.

    Args:
        folder: the folder searched.
        name: the checkpoints' name (``model.ckpt``, or the pipeline positions').

    Returns:
        Prefixes ``folder/<name>-<step>`` whose index and every data shard exist, newest first.
    """
    found = []
    for index in glob.glob(os.path.join(glob.escape(folder), f"{name}-*.index")):
        prefix = index[: -len(".index")]
        if not _STEP.search(prefix):
            continue
        shards = glob.glob(glob.escape(prefix) + ".data-*-of-*")
        counts = {int(m.group(2)) for m in map(_DATA_SHARD.search, shards) if m}
        if len(counts) == 1 and len(shards) == counts.pop():
            found.append(prefix)
    return sorted(found, key=step_of, reverse=True)


def resume_checkpoint(model_dir: str, repair: bool = True, load=None) -> str | None:
    """The checkpoint a run in ``model_dir`` resumes from.

    A damaged or incomplete newer checkpoint is skipped with a warning saying which and why; a
    missing or stale state file is rewritten to list the checkpoints found.

    Args:
        model_dir: the run folder.
        repair: rewrite a missing or stale state file (only the process holding the
            :class:`Lock` may).
        load: reads a checkpoint into the caller's objects (raising a read error when it is
            damaged), tried newest first: the chosen checkpoint is then already loaded, read
            once. It must overwrite every value an earlier, failed attempt may have set. Without
            it each candidate's tensors are all read to check them
            (:func:`pg2_tf.networks.checkpoints.damage`).

    Returns:
        The newest complete, intact ``model.ckpt-*`` prefix (whatever the state file says), or
        None when the folder has no checkpoint.

    Raises:
        ModelDirError: checkpoints are there but none can be read (never trains over them from
            step 0).
    """
    state = tf.train.get_checkpoint_state(model_dir)
    named = state.model_checkpoint_path if state else None
    candidates = complete_checkpoints(model_dir)
    chosen, skipped = None, []
    for prefix in candidates:
        problem = checkpoints.damage(prefix, load=load)
        if problem is None:
            chosen = prefix
            break
        skipped.append(prefix)
        logging.warning("checkpoint %s is damaged (%s); trying an earlier one", prefix, problem)
    leftovers = glob.glob(os.path.join(glob.escape(model_dir), f"{CHECKPOINT_NAME}-*.index"))
    if chosen is None:
        if candidates or leftovers or named:
            what = f"{len(candidates)} damaged" if candidates else "only incomplete"
            raise ModelDirError(
                f"--model_dir={model_dir} holds {what} checkpoints "
                f"({os.path.basename((candidates or leftovers or [named])[0])}, ...) and none can "
                "be resumed: move them out of the folder to start afresh, or use another "
                "--model_dir"
            )
        return None
    if skipped:
        logging.warning(
            "resuming from %s, the newest intact checkpoint (%s damaged: %s)",
            os.path.basename(chosen),
            len(skipped),
            ", ".join(os.path.basename(p) for p in skipped),
        )
    if repair and (named is None or os.path.basename(named) != os.path.basename(chosen)):
        logging.warning(
            "the checkpoint state file %s; resuming from %s, the newest complete checkpoint",
            "names " + os.path.basename(named) if named else "is missing",
            os.path.basename(chosen),
        )
        write_state([p for p in reversed(candidates) if p not in skipped], model_dir)
    return chosen


def write_state(prefixes: list[str], folder: str) -> None:
    """Rewrites the ``checkpoint`` state file (tf.train.CheckpointManager's text format), so that
    the manager keeps deleting the oldest beyond max_to_keep.

    Args:
        prefixes: the checkpoints to list, oldest first (the last is the newest).
        folder: the folder holding them and the state file.
    """
    names = [os.path.basename(p) for p in prefixes]
    lines = [f'model_checkpoint_path: "{names[-1]}"']
    lines += [f'all_model_checkpoint_paths: "{name}"' for name in names]
    # The manager deletes only checkpoints listed with a time (their index files' times).
    lines += [
        f"all_model_checkpoint_timestamps: {os.path.getmtime(p + '.index')}" for p in prefixes
    ]
    path = os.path.join(folder, "checkpoint")
    with writing(path):
        atomic.write_text(path, "\n".join(lines) + "\n")


# ---- the input pipeline's position ------------------------------------------------------------


def pipeline_manager(
    checkpoint: tf.train.Checkpoint, save_dir: str, max_to_keep: int
) -> tf.train.CheckpointManager:
    """The manager of the input pipeline's positions (``save_dir/input_pipeline``).

    One is saved just before each model checkpoint, with its step. The newest
    :data:`PIPELINE_POSITIONS_KEPT` are kept (at most ``max_to_keep``): a position holds the
    shuffle buffer's records (sizes in docs/training.md), so one per kept model checkpoint would
    cost gigabytes; the newest checkpoints, the ones a resume uses (after a kill between the two
    saves, or a damaged newest checkpoint, too), keep theirs, and an older one resumes with a
    fresh batch order (a warning says so).

    Args:
        checkpoint: a ``tf.train.Checkpoint`` of the iterator.
        save_dir: the run folder (or a worker's temporary one).
        max_to_keep: the run's ``--max_to_keep``.

    Returns:
        A ``tf.train.CheckpointManager`` writing ``input_pipeline.ckpt-<step>``.
    """
    return tf.train.CheckpointManager(
        checkpoint,
        os.path.join(save_dir, PIPELINE_DIR),
        max_to_keep=min(max_to_keep, PIPELINE_POSITIONS_KEPT),
        checkpoint_name=PIPELINE_NAME,
    )


def pipeline_position(save_dir: str, step: int) -> str | None:
    """The saved pipeline position after ``step`` steps.

    Args:
        save_dir: the run folder.
        step: completed steps.

    Returns:
        Its prefix when its files are complete, else None.
    """
    prefix = os.path.join(save_dir, PIPELINE_DIR, f"{PIPELINE_NAME}-{step}")
    return (
        prefix if prefix in complete_checkpoints(os.path.dirname(prefix), PIPELINE_NAME) else None
    )


POSITION_RESTORED, NO_POSITION, POSITION_FAILED = "restored", "none", "failed"


def restore_pipeline_position(manager, step) -> str:
    """Restores the iterator's position saved at ``step``.

    Args:
        manager: the :func:`pipeline_manager` of the iterator, or None (distributed: no
            position).
        step: the step the model was resumed at.

    Returns:
        :data:`POSITION_RESTORED`; :data:`NO_POSITION` when there is none to restore (the
        iterator is untouched: a fresh order); or :data:`POSITION_FAILED` when the restore
        failed, which leaves the iterator unusable: make it again.
    """
    if manager is None:
        if step:
            logging.info("distributed input pipeline: the batch order starts afresh")
        return NO_POSITION
    saved = pipeline_position(os.path.dirname(manager.directory), step)
    if saved is None:
        if step:
            logging.warning("no input-pipeline position for step %d: a fresh batch order", step)
        return NO_POSITION
    try:
        manager.checkpoint.restore(saved).assert_consumed()
    except (tf.errors.OpError, AssertionError, ValueError, IndexError) as error:
        # Another dataset definition (batch size, files, ...): its position does not apply.
        logging.warning(
            "input pipeline position %s not usable, a fresh batch order (%s)",
            saved,
            first_line(error),
        )
        return POSITION_FAILED
    logging.info("input pipeline resumed at the batch after step %d", step)
    return POSITION_RESTORED


class Saver:
    """Writes the pipeline position then the model checkpoint of the same step; a failed write
    (full disk, read-only folder) becomes one ModelDirError line, the earlier ones kept."""

    def __init__(self, trainer, save_dir, max_to_keep, last):
        self.trainer, self.last = trainer, last
        self.manager = tf.train.CheckpointManager(
            trainer.checkpoint,
            save_dir,
            max_to_keep=max_to_keep,
            checkpoint_name=CHECKPOINT_NAME,
        )
        self.size = sum(
            int(np.prod(v.shape)) * tf.as_dtype(v.dtype).size
            for v in checkpoints.object_graph_variables(trainer.checkpoint).values()
        )

    def save(self, pipeline_manager) -> str:
        step = int(self.trainer.step.numpy())
        prefix = f"{self.manager._checkpoint_prefix}-{step}"
        with writing(prefix, self.size, self.last):
            try:
                if pipeline_manager is not None:
                    pipeline_manager.save(checkpoint_number=step)
                self.last = self.manager.save(checkpoint_number=step)
            except BaseException:
                remove_leftovers(self.manager.directory)
                raise
        return self.last


# ---- params.json and writing under faults -----------------------------------------------------


def save_params(params: dict, model_dir: str) -> None:
    """Writes ``model_dir/params.json`` (the flags of the run), like the original; atomically.

    Args:
        params: the flags' values (JSON-serialisable, or written as their ``str``).
        model_dir: the run folder (made when missing).
    """
    os.makedirs(model_dir, exist_ok=True)
    path = os.path.join(model_dir, "params.json")
    with writing(path):
        atomic.write_text(path, json.dumps(params, indent=4, sort_keys=True, default=str))


# What TensorFlow raises when a file cannot be written (full disk, read-only, vanished folder).
_WRITE_ERRORS = (
    tf.errors.ResourceExhaustedError,
    tf.errors.PermissionDeniedError,
    tf.errors.FailedPreconditionError,
    tf.errors.NotFoundError,
    tf.errors.UnknownError,
)


class writing:  # noqa: N801 (used as a context manager, like open)
    """Turns a failed write of ``what`` (full disk, read-only or vanished folder) into one
    :class:`ModelDirError` line saying what was being written, how much space it needed and
    that earlier checkpoints are untouched. ``needed_bytes``: the size of what was written."""

    def __init__(self, what: str, needed_bytes: int | None = None, kept: str | None = None):
        self.what, self.needed_bytes, self.kept = what, needed_bytes, kept

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if error is None:
            return False
        if isinstance(error, OSError):
            code, reason = error.errno, error.strerror or str(error)
        elif isinstance(error, _WRITE_ERRORS):
            reason = first_line(error)
            code = errno.ENOSPC if "space left" in reason.lower() else None
            if isinstance(error, tf.errors.PermissionDeniedError) or "read-only" in reason:
                code = errno.EROFS
        else:
            return False
        folder = os.path.dirname(self.what) or "."
        parts = [f"writing {self.what} failed: {reason}"]
        if code == errno.ENOSPC or isinstance(error, tf.errors.ResourceExhaustedError):
            free = _free_bytes(folder)
            needed = f"about {_mb(self.needed_bytes)} needed" if self.needed_bytes else ""
            have = f"{_mb(free)} free" if free is not None else ""
            parts.append(f"disk full ({', '.join(p for p in (needed, have) if p)})")
            parts.append("free space or move --model_dir to a bigger disk")
        else:
            parts.append("make the folder writable or use another --model_dir")
        if self.kept:
            parts.append(f"the last checkpoint {self.kept} is intact")
        raise ModelDirError("; ".join(parts)) from None


def _free_bytes(folder):
    while folder and not os.path.isdir(folder):
        folder = os.path.dirname(folder)
    try:
        return shutil.disk_usage(folder or ".").free
    except OSError:
        return None


def _mb(size: int) -> str:
    return f"{size / 2**20:.1f} MB"
