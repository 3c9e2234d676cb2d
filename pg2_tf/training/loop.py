"""The training loop: ``train(config)`` runs a whole training job into ``config.model_dir``.

It holds model_dir's lock, resumes (:mod:`pg2_tf.training.resume`), feeds the steps
(:mod:`pg2_tf.training.steps`) from the input pipeline, checks the losses
(:mod:`pg2_tf.training.loss_check`), writes summaries and samples
(:mod:`pg2_tf.training.summaries`), saves checkpoints with the pipeline's position
(:mod:`pg2_tf.training.run_folder`) and stops on ``max_step``, SIGINT or SIGTERM.

Rule: the loop does not wait for a step's losses before starting the next step, and nothing is
saved before the losses of the steps it holds are checked.
"""

import contextlib
import dataclasses
import os
import shutil
import signal
import tempfile
import time

import keras
import tensorflow as tf
from absl import logging

from pg2_tf.core.configs import TrainConfig
from pg2_tf.core.errors import ConfigError, DataError, first_line
from pg2_tf.records import damage, reader
from pg2_tf.training import distribution, loss_check, resume, run_folder, steps, summaries

# What fetching a batch raises for bad records (damage.explain_read_error locates them).
READ_ERRORS = (tf.errors.DataLossError, tf.errors.InvalidArgumentError, tf.errors.NotFoundError)


class _StopRequest:
    """Turns SIGINT/SIGTERM into a flag the loop checks between steps."""

    def __init__(self):
        self.signal_name = None
        self._previous = {}

    def __enter__(self):
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not the main thread: signals cannot be caught here
                pass
        return self

    def _handle(self, signum, frame):
        if self.signal_name is not None:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        return False


@dataclasses.dataclass
class TrainResult:
    """What a call of :func:`train` did: the step reached and why it stopped."""

    step: int
    stopped_by: str  # "max_step" or the signal name
    checkpoint: str | None
    last_losses: dict


def input_pipeline(trainer, dataset, config: TrainConfig, files=None):
    """The training iterator and a manager of its saved positions (``model_dir/input_pipeline``).

    The position is saved in full (the shuffle buffer's records included): TensorFlow's symbolic
    checkpoints of this pipeline fail once a restored iterator reaches the end of an epoch.
    tf.distribute's iterators cannot be checkpointed: a distributed run that resumes starts a
    new batch order (the model, optimiser and step are resumed exactly all the same).

    Args:
        trainer: a :class:`pg2_tf.training.steps.Trainer` (its strategy distributes the batches).
        dataset: the global batches, a ``tf.data.Dataset``.
        config: the run's config (``model_dir``: where positions are saved, ``max_to_keep``).
        files: the record files read, or None (they decide the multi-worker shard policy).

    Returns:
        ``(iterator, manager)``: the manager is None under a distribution strategy.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = distribution.shard_policy(
        trainer.strategy, files
    )
    distributed = trainer.strategy.experimental_distribute_dataset(dataset.with_options(options))
    iterator = iter(distributed)
    if not isinstance(iterator, tf.__internal__.tracking.Trackable):
        return iterator, None
    return iterator, run_folder.pipeline_manager(
        tf.train.Checkpoint(iterator=iterator), config.model_dir, config.max_to_keep
    )


def train(config: TrainConfig, dataset=None, strategy=None, params=None) -> TrainResult:
    """Trains until ``max_step`` (or SIGINT/SIGTERM), checkpointing to ``config.model_dir``.

    Holds model_dir's lock (:class:`pg2_tf.training.run_folder.Lock`) and resumes from its
    newest intact checkpoint (:func:`pg2_tf.training.run_folder.resume_checkpoint`) with its
    input pipeline's position. Checkpoints (``model.ckpt-<completed steps>``, the same format
    with any strategy and dtype policy) are written every 30*log_step steps (or ``save_step``),
    every ``save_model_secs``, at the end, and on SIGINT/SIGTERM. Under a multi-worker strategy
    only the chief writes to model_dir.

    Args:
        config: the run's :class:`pg2_tf.core.configs.TrainConfig`.
        dataset: batches as made by :func:`pg2_tf.records.reader.make_dataset` (training mode,
            repeating), each the global batch; by default read from ``config.data_path``.
        strategy: a tf.distribute strategy (default: the current one, usually a single
            device); the global batch is split over its replicas.
        params: written to ``model_dir/params.json`` once the run starts (the flags checked
            against the checkpoint); None writes nothing.

    Returns:
        A :class:`TrainResult`: the step reached, why it stopped, the last checkpoint and the
        last losses.

    Raises:
        TrainingDiverged: a loss became NaN/inf (nothing saved after it).
        DataError: a bad record (after saving the last completed step).
        ConfigError, ModelDirError: flags that do not fit, a folder in use or not writable.
    """
    keras.utils.set_random_seed(config.random_seed)
    strategy = strategy or tf.distribute.get_strategy()
    chief = distribution.is_chief(strategy)  # only the chief locks, cleans and repairs model_dir
    with run_folder.Lock(config.model_dir) if chief else contextlib.nullcontext():
        if chief:
            run_folder.remove_leftovers(config.model_dir)
        files = None
        if dataset is None:
            files = reader.record_files(config.data_path, config.split, config.kind)
            logging.info(reader.epoch_note(config.data_path, config.split, config.batch_size))
            dataset = reader.make_dataset(
                config.data_path,
                config.split,
                kind=config.kind,
                img_H=config.img_H,
                img_W=config.img_W,
                batch_size=config.batch_size,
                is_train=True,
                seed=config.random_seed,
            )
        trainer = steps.Trainer(config, strategy)
        latest = run_folder.resume_checkpoint(  # loaded into trainer: the one read of it
            config.model_dir,
            repair=chief,
            load=lambda prefix: resume.restore_checkpoint(trainer, prefix),
        )
        if latest is None and config.start_step >= config.max_step:
            raise ConfigError(
                f"--start_step={config.start_step} is not below --max_step={config.max_step}: "
                "nothing would be trained"
            )
        logging.info(resume.restore_or_initialise(trainer, latest, config))
        if chief and params is not None:
            run_folder.save_params(params, config.model_dir)
        # Other workers save too (saving may synchronise workers), into a folder deleted at the end.
        save_dir = config.model_dir if chief else tempfile.mkdtemp(prefix="pg2_worker_")
        try:
            return _train_loop(config, trainer, dataset, files, save_dir, chief, latest)
        finally:
            if not chief:
                shutil.rmtree(save_dir, ignore_errors=True)


def _train_loop(config, trainer, dataset, files, save_dir, chief, latest) -> TrainResult:
    saver = run_folder.Saver(trainer, save_dir, config.max_to_keep, latest)
    try:
        fixed_batch = next(iter(dataset.take(1)))
    except READ_ERRORS as error:
        raise _data_error(error, files, config) from error
    fixed_batch = {k: v[: config.num_log_samples] for k, v in fixed_batch.items()}
    if chief:
        with run_folder.writing(config.model_dir, kept=latest):
            summaries.write_fixed_inputs(fixed_batch, config.model_dir)
    writer = tf.summary.create_file_writer(config.model_dir) if chief else None
    pipeline_config = dataclasses.replace(config, model_dir=save_dir)
    iterator, pipeline_manager = input_pipeline(trainer, dataset, pipeline_config, files)
    position = run_folder.restore_pipeline_position(pipeline_manager, int(trainer.step.numpy()))
    if position == run_folder.POSITION_FAILED:
        iterator, pipeline_manager = input_pipeline(trainer, dataset, pipeline_config, files)
    restored = position == run_folder.POSITION_RESTORED

    step = int(trainer.step.numpy())
    trainer.set_learning_rates(step)
    save_every = config.save_step or 30 * config.log_step
    last_save_time = time.monotonic()
    checker = loss_check.LossChecker(lambda: saver.last)
    progress = _progress_bar(
        dataclasses.replace(config, progress_bar=config.progress_bar and chief), step
    )
    # Saving must happen at the same steps on every worker: no time-based saves across hosts.
    save_secs = 0 if distribution.is_multi_worker(trainer.strategy) else config.save_model_secs
    with _StopRequest() as stop:
        while step < config.max_step and stop.signal_name is None:
            try:
                batch = next(iterator)
                # The original schedule's stage-2 step draws D's batch too; the saved pipeline
                # position is taken after the step, so it counts both.
                d_batch = next(iterator) if trainer.batches_per_step(step) == 2 else None
            except (tf.errors.OpError, StopIteration) as error:
                if restored and not isinstance(error, (*READ_ERRORS, StopIteration)):
                    # A restored position TensorFlow accepted but cannot continue from.
                    logging.warning(
                        "the restored input-pipeline position failed (%s): a fresh batch order",
                        first_line(error),
                    )
                    iterator, pipeline_manager = input_pipeline(
                        trainer, dataset, pipeline_config, files
                    )
                    restored = False
                    continue
                checker.settle()
                if step > run_folder.step_of(saver.last):
                    saver.save(pipeline_manager)
                if not isinstance(error, StopIteration):
                    raise _data_error(error, files, config) from error
                raise DataError(
                    f"the training batches ran out at step {step} (saved {saver.last}): "
                    "training needs a repeating dataset (pg2_tf.records.reader.make_dataset(..., "
                    "is_train=True) repeats)"
                ) from None
            if config.halve_lr_every and step % config.halve_lr_every == 0:
                trainer.set_learning_rates(step)
            checker.add(step, trainer.train_step(batch, step, d_batch=d_batch))
            step += 1
            progress.update(1)
            if not progress.disable:
                progress.set_postfix(
                    {k: f"{v:.4f}" for k, v in checker.latest.items()}, refresh=False
                )
            log_now = step % config.log_step == 0
            samples_now = step % (3 * config.log_step) == 0
            save_now = step % save_every == 0 or (
                save_secs and time.monotonic() - last_save_time > save_secs
            )
            if log_now or samples_now or save_now:
                losses_now = checker.settle()
                with run_folder.writing(config.model_dir, kept=saver.last):
                    if chief and log_now:
                        summaries.write_summaries(
                            writer, trainer, step, losses_now, fixed_batch, config.num_log_samples
                        )
                    if chief and samples_now:
                        summaries.write_samples(trainer, fixed_batch, config.model_dir, step)
                if save_now:
                    saver.save(pipeline_manager)
                    last_save_time = time.monotonic()
        checker.settle()
        progress.close()
        if run_folder.step_of(saver.last) != step:
            saver.save(pipeline_manager)
        stopped_by = stop.signal_name or "max_step"
    last_checkpoint = saver.last
    if not chief:  # the chief's copy of the same checkpoint
        last_checkpoint = os.path.join(config.model_dir, os.path.basename(last_checkpoint))
    logging.info("stopped (%s) at step %d; checkpoint %s", stopped_by, step, last_checkpoint)
    return TrainResult(step, stopped_by, last_checkpoint, checker.latest)


def _data_error(error, files, config) -> DataError:
    if files is None:
        return DataError(f"reading the training batches failed: {first_line(error)}")
    return damage.explain_read_error(error, files, config.img_H, config.img_W)


def _progress_bar(config, step):
    from tqdm import tqdm

    return tqdm(
        total=config.max_step,
        initial=step,
        disable=not config.progress_bar,
        unit="step",
        dynamic_ncols=True,
    )
