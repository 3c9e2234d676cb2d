"""PG2 training: optimisers, the tf.function steps of both stages, and the loop around them.

Stage 1 (steps < ``stage1_steps``, 22000 in the original) trains G1 on g_loss1. Stage 2 trains G2
on g_loss2 and D on d_loss. Differences from the original graph, all deliberate:

- One batch per stage-2 step: G1 runs once, then G2 and D are updated from the same forward pass
  in one compiled function. The original ran the G2 update and the D update as two session runs,
  each drawing its own batch and recomputing G1 and G2.
- The learning rates are constant, as the original's effectively were (its ``g_lr``/``d_lr``
  variables and their halving every ``lr_update_step`` never reached the optimisers);
  ``halve_lr_every`` turns a real halving on.
"""

import dataclasses
import json
import math
import os
import signal
import time

import keras
import tensorflow as tf
from absl import logging

from pg2_tf import data, images, losses, models, tf1_checkpoint
from pg2_tf.errors import CheckpointError, DataError, Pg2Error

# tf.train.AdamOptimizer's default where the original relied on it (Keras' epsilon is 1e-7).
TF1_ADAM_EPSILON = 1e-8
CHECKPOINT_NAME = "model.ckpt"
# What fetching a batch raises for bad records (data.explain_read_error locates them).
READ_ERRORS = (tf.errors.DataLossError, tf.errors.InvalidArgumentError, tf.errors.NotFoundError)


class TrainingDiverged(Pg2Error):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


def make_adam(learning_rate=2e-5, beta1=0.5, beta2=0.999):
    """An Adam configured like each of the original's three optimisers (lr 2e-5, beta1 0.5).

    Keras' update rule is TF1's (epsilon added to sqrt(v) with bias-corrected step size), so with
    epsilon 1e-8 it moves the weights as tf.train.AdamOptimizer did.
    """
    return keras.optimizers.Adam(
        learning_rate=learning_rate, beta_1=beta1, beta_2=beta2, epsilon=TF1_ADAM_EPSILON
    )


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything the training loop needs; built from the flags by ``pg2_tf.main``."""

    model: int = 1
    img_H: int = 128
    img_W: int = 64
    conv_hidden_num: int = 128
    z_num: int = 64
    d_dim: int = 64
    batch_size: int = 16
    max_step: int = 60000
    start_step: int = 0
    stage1_steps: int = 22000
    g_lr: float = 2e-5
    d_lr: float = 2e-5
    beta1: float = 0.5
    beta2: float = 0.999
    halve_lr_every: int = 0  # 0: constant rate, as the original
    log_step: int = 200
    save_model_secs: int = 1000
    max_to_keep: int = 20
    num_log_samples: int = 16
    model_dir: str = "logs/model"
    data_path: str = "data/Market_train_data"
    split: str = "train"
    ckpt_path: str | None = None  # an ORIGINAL TF1 training checkpoint to resume from
    pretrained_path: str | None = None  # generator weights (original or ours) to start from
    random_seed: int = 123
    xla: bool = False
    progress_bar: bool = True

    @property
    def kind(self) -> str:
        return "market" if self.model == models.MARKET else "deepfashion"


def _batch_signature(config: TrainConfig, batch_size: int | None):
    spec = data.element_spec(config.img_H, config.img_W, batch_size)
    return [spec]


class Trainer:
    """Owns the three networks, their optimisers, the checkpoint and the compiled train steps."""

    def __init__(self, config: TrainConfig, strategy: tf.distribute.Strategy | None = None):
        self.config = config
        self.strategy = strategy or tf.distribute.get_strategy()
        with self.strategy.scope():
            self.g1, self.g2, self.d = models.build(
                config.model,
                config.img_H,
                config.img_W,
                config.conv_hidden_num,
                config.z_num,
                config.d_dim,
            )
            self.g1_optimizer = make_adam(config.g_lr, config.beta1, config.beta2)
            self.g2_optimizer = make_adam(config.g_lr, config.beta1, config.beta2)
            self.d_optimizer = make_adam(config.d_lr, config.beta1, config.beta2)
            for optimizer, model in (
                (self.g1_optimizer, self.g1),
                (self.g2_optimizer, self.g2),
                (self.d_optimizer, self.d),
            ):
                optimizer.build(model.trainable_variables)
            self.step = tf.Variable(config.start_step, dtype=tf.int64, trainable=False, name="step")
        self.checkpoint = tf.train.Checkpoint(
            g1=self.g1,
            g2=self.g2,
            d=self.d,
            g1_optimizer=self.g1_optimizer,
            g2_optimizer=self.g2_optimizer,
            d_optimizer=self.d_optimizer,
            step=self.step,
        )
        per_replica = config.batch_size // self.strategy.num_replicas_in_sync
        signature = _batch_signature(config, per_replica)
        self._stage1_replica = tf.function(
            self._stage1_step, input_signature=signature, jit_compile=config.xla or None
        )
        self._stage2_replica = tf.function(
            self._stage2_step, input_signature=signature, jit_compile=config.xla or None
        )
        self._generate = tf.function(self.generate, jit_compile=config.xla or None)

    # ---- the steps (per replica) ---------------------------------------------------------

    def generate(self, x, pose_target):
        """G1, G2 and the difference map for a batch; all (N, H, W, 3), [-1, 1] scale."""
        g1_output = self.g1([x, pose_target])
        diff_map = self.g2([g1_output, x])
        return g1_output, g1_output + diff_map, diff_map

    def _loss_scale(self):
        # Gradients are summed over replicas: scale each replica's mean loss accordingly.
        return 1.0 / self.strategy.num_replicas_in_sync

    def _stage1_step(self, batch):
        with tf.GradientTape() as tape:
            g1_output = self.g1([batch["x"], batch["pose_target"]])
            g_loss1 = losses.masked_l1_loss(g1_output, batch["x_target"], batch["mask_target"])
            scaled = g_loss1 * self._loss_scale()
        gradients = tape.gradient(scaled, self.g1.trainable_variables)
        self.g1_optimizer.apply_gradients(zip(gradients, self.g1.trainable_variables, strict=True))
        return {
            "g_loss1": g_loss1,
            "PoseMaskLoss1": losses.pose_mask_loss(
                g1_output, batch["x_target"], batch["mask_target"]
            ),
        }

    def _stage2_step(self, batch):
        model = self.config.model
        x, x_target, mask_target = batch["x"], batch["x_target"], batch["mask_target"]
        g1_output = tf.stop_gradient(self.g1([x, batch["pose_target"]]))
        with tf.GradientTape(persistent=True) as tape:
            diff_map = self.g2([g1_output, x])
            g2_output = g1_output + diff_map
            logits = self.d(losses.discriminator_batch(model, x, x_target, g1_output, g2_output))
            g_gan, d_loss, g2_g1_loss = losses.gan_losses(model, logits)
            l1_loss2 = losses.masked_l1_loss(g2_output, x_target, mask_target)
            g_loss2 = losses.generator2_loss(model, g_gan, l1_loss2)
            g_scaled, d_scaled = g_loss2 * self._loss_scale(), d_loss * self._loss_scale()
        g2_gradients = tape.gradient(g_scaled, self.g2.trainable_variables)
        d_gradients = tape.gradient(d_scaled, self.d.trainable_variables)
        del tape
        self.g2_optimizer.apply_gradients(
            zip(g2_gradients, self.g2.trainable_variables, strict=True)
        )
        self.d_optimizer.apply_gradients(zip(d_gradients, self.d.trainable_variables, strict=True))
        result = {
            "g_loss1": losses.masked_l1_loss(g1_output, x_target, mask_target),
            "g_loss2": g_loss2,
            "d_loss": d_loss,
            "L1Loss2": l1_loss2,
            "PoseMaskLoss1": losses.pose_mask_loss(g1_output, x_target, mask_target),
            "PoseMaskLoss2": losses.pose_mask_loss(g2_output, x_target, mask_target),
        }
        if g2_g1_loss is not None:
            result["g2_g1_loss"] = g2_g1_loss
        return result

    # ---- distributed wrappers ---------------------------------------------------------------

    def _run(self, replica_fn, batch):
        per_replica = self.strategy.run(replica_fn, args=(batch,))
        return {
            name: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)
            for name, value in per_replica.items()
        }

    def train_step(self, batch) -> dict:
        """One step of the stage that ``self.step`` is in; increments the step; returns losses."""
        stage1 = int(self.step.numpy()) < self.config.stage1_steps
        result = self._run(self._stage1_replica if stage1 else self._stage2_replica, batch)
        self.step.assign_add(1)
        return result

    def set_learning_rates(self, step: int) -> None:
        """Applies ``halve_lr_every`` (if set) for the given step."""
        every = self.config.halve_lr_every
        if not every:
            return
        factor = 0.5 ** (step // every)
        self.g1_optimizer.learning_rate.assign(self.config.g_lr * factor)
        self.g2_optimizer.learning_rate.assign(self.config.g_lr * factor)
        self.d_optimizer.learning_rate.assign(self.config.d_lr * factor)

    # ---- loading ---------------------------------------------------------------------------

    def load_pretrained_generators(self, path: str) -> str:
        """G1/G2 weights from an original TF1 checkpoint or one of ours; returns the prefix."""
        return load_generators(path, self.g1, self.g2)

    def resume_from_tf1(self, path: str) -> int:
        """Weights, Adam moments and step from an ORIGINAL TF1 training checkpoint.

        The step is G1's Adam step count plus G2's (stage 1 trains only G1, stage 2 only G2/D).
        """
        prefix = tf1_checkpoint.load(path, self.g1, self.g2, self.d)
        states = tf1_checkpoint.read_adam_states(prefix)
        mapping = tf1_checkpoint.name_map(self.g1, self.g2, self.d)
        for role, optimizer, model in (
            ("g1", self.g1_optimizer, self.g1),
            ("g2", self.g2_optimizer, self.g2),
            ("d", self.d_optimizer, self.d),
        ):
            trainable = {id(v) for v in model.trainable_variables}
            variables = {
                name: v
                for name, v in mapping.items()
                if tf1_checkpoint.role_of(name) == role and id(v) in trainable
            }
            tf1_checkpoint.restore_adam(optimizer, variables, states[role])
        step = states["g1"].steps + states["g2"].steps
        self.step.assign(step)
        return step


def is_tf1_checkpoint(prefix: str) -> bool:
    """True for an original TF1 checkpoint (variables named Pose_AE/G/...), False for ours."""
    names = [name for name, _ in tf.train.list_variables(prefix)]
    return any(name.startswith(tf1_checkpoint.G1_SCOPE + "/") for name in names)


def load_generators(path, g1, g2) -> str:
    """Loads G1/G2 from ``path`` (a prefix or a directory), original TF1 or ours; returns prefix.

    Raises CheckpointError naming the path when it is neither or does not fit the models.
    """
    prefix = tf1_checkpoint.resolve_checkpoint(path)
    if is_tf1_checkpoint(prefix):
        return tf1_checkpoint.load(prefix, g1, g2)
    try:
        status = tf.train.Checkpoint(g1=g1, g2=g2).read(prefix)
        status.expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as error:
        raise CheckpointError(
            f"{prefix} does not fit the generators built from the flags ({_first_line(error)}); "
            "check --model, --img_H, --img_W, --conv_hidden_num and --z_num against the "
            "params.json saved beside it"
        ) from None
    return prefix


def _first_line(error) -> str:
    return str(error).strip().splitlines()[0][:300]


# ---- the loop ---------------------------------------------------------------------------------


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


def _input_pipeline(trainer, dataset, config):
    """The training iterator and a manager that checkpoints its position (latest one only).

    Kept apart from the model checkpoints (``model_dir/input_pipeline``) because the position
    includes the shuffle buffer (tens of MB): one copy is enough to resume the exact batch order.
    """
    options = tf.data.Options()
    options.experimental_symbolic_checkpoint = True
    distributed = trainer.strategy.experimental_distribute_dataset(dataset.with_options(options))
    iterator = iter(distributed)
    manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(iterator=iterator),
        os.path.join(config.model_dir, "input_pipeline"),
        max_to_keep=1,
        checkpoint_name="input_pipeline.ckpt",
    )
    return iterator, manager


def _restore_input_pipeline(manager, step) -> bool:
    """Restores the iterator's position saved at ``step``; False if a restore was tried and
    failed (the iterator is then unusable and must be made again)."""
    latest = manager.latest_checkpoint
    if latest and _step_of(latest) == step:
        try:
            manager.checkpoint.restore(latest).assert_consumed()
            logging.info("input pipeline resumed at the batch after step %d", step)
            return True
        except (tf.errors.OpError, AssertionError, ValueError) as error:
            # Another dataset definition (batch size, files, ...): its position does not apply.
            logging.warning(
                "input pipeline position not restored, the batch order starts afresh (%s)",
                _first_line(error),
            )
            return False
    if step:
        logging.info("no input-pipeline position for step %d: the batch order starts afresh", step)
    return True


def _save(manager, trainer, pipeline_manager=None) -> str:
    step = int(trainer.step.numpy())
    if pipeline_manager is not None:
        pipeline_manager.save(checkpoint_number=step)
    return manager.save(checkpoint_number=step)


def _write_samples(trainer, fixed_batch, model_dir, step):
    g1_out, g2_out, diff_map = trainer._generate(fixed_batch["x"], fixed_batch["pose_target"])
    for name, values in (("G1", g1_out), ("G2", g2_out), ("DiffMap", diff_map)):
        images.save_png(
            images.grid(images.to_uint8_image(values.numpy())),
            os.path.join(model_dir, f"{step}_{name}.png"),
        )


def _write_fixed_inputs(fixed_batch, model_dir):
    pictures = {
        "x_fixed": images.to_uint8_image(fixed_batch["x"]),
        "x_target_fixed": images.to_uint8_image(fixed_batch["x_target"]),
        "pose_fixed": images.pose_to_uint8(fixed_batch["pose"]),
        "pose_target_fixed": images.pose_to_uint8(fixed_batch["pose_target"]),
        "mask_fixed": images.mask_to_uint8(fixed_batch["mask"]),
        "mask_target_fixed": images.mask_to_uint8(fixed_batch["mask_target"]),
    }
    for name, picture in pictures.items():
        images.save_png(images.grid(picture), os.path.join(model_dir, f"{name}.png"))


def _write_summaries(writer, trainer, step, losses_now, fixed_batch, num_images):
    with writer.as_default(step=step):
        for name, value in losses_now.items():
            tf.summary.scalar(f"loss/{name}", value)
        tf.summary.scalar("misc/g_lr", trainer.g1_optimizer.learning_rate)
        tf.summary.scalar("misc/d_lr", trainer.d_optimizer.learning_rate)
        g1_out, g2_out, diff_map = trainer._generate(fixed_batch["x"], fixed_batch["pose_target"])
        for name, values in (("G1", g1_out), ("G2", g2_out), ("DiffMap", diff_map)):
            tf.summary.image(name, images.to_uint8_image(values.numpy()), max_outputs=num_images)
    writer.flush()


def save_params(params: dict, model_dir: str) -> None:
    """Writes ``model_dir/params.json`` (the flags of the run), like the original."""
    os.makedirs(model_dir, exist_ok=True)
    path = os.path.join(model_dir, "params.json")
    with open(path + ".tmp", "w") as handle:
        json.dump(params, handle, indent=4, sort_keys=True, default=str)
    os.replace(path + ".tmp", path)


def _restore_or_initialise(trainer, manager, config) -> str:
    """Resumes from our latest checkpoint in model_dir, else from --ckpt_path/--pretrained_path."""
    if manager.latest_checkpoint:
        trainer.checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        return f"resumed from {manager.latest_checkpoint} at step {int(trainer.step.numpy())}"
    if config.ckpt_path:
        step = trainer.resume_from_tf1(config.ckpt_path)
        return f"resumed from original checkpoint {config.ckpt_path} at step {step}"
    if config.pretrained_path:
        prefix = trainer.load_pretrained_generators(config.pretrained_path)
        return f"generators loaded from {prefix}; starting at step {config.start_step}"
    return f"new model; starting at step {config.start_step}"


def train(config: TrainConfig, dataset=None, strategy=None) -> TrainResult:
    """Trains until ``max_step`` (or SIGINT/SIGTERM), checkpointing to ``config.model_dir``.

    ``dataset``: batches as made by :func:`pg2_tf.data.make_dataset` (training mode); by default
    read from ``config.data_path``. Resumes from the latest checkpoint in model_dir when there is
    one. Checkpoints (``model.ckpt-<completed steps>``) are written every 30*log_step steps,
    every ``save_model_secs``, at the end, and on SIGINT/SIGTERM; each is written atomically by
    tf.train.CheckpointManager. A NaN/inf loss raises TrainingDiverged without saving; a bad
    record raises DataError after saving the last completed step.
    """
    keras.utils.set_random_seed(config.random_seed)
    os.makedirs(config.model_dir, exist_ok=True)
    files = None
    if dataset is None:
        files = data.record_files(config.data_path, config.split, config.kind)
        dataset = data.make_dataset(
            config.data_path,
            config.split,
            kind=config.kind,
            img_H=config.img_H,
            img_W=config.img_W,
            batch_size=config.batch_size,
            is_train=True,
            seed=config.random_seed,
        )
    trainer = Trainer(config, strategy)
    manager = tf.train.CheckpointManager(
        trainer.checkpoint,
        config.model_dir,
        max_to_keep=config.max_to_keep,
        checkpoint_name=CHECKPOINT_NAME,
    )
    logging.info(_restore_or_initialise(trainer, manager, config))
    try:
        fixed_batch = next(iter(dataset.take(1)))
    except READ_ERRORS as error:
        raise _data_error(error, files, config) from error
    fixed_batch = {k: v[: config.num_log_samples] for k, v in fixed_batch.items()}
    _write_fixed_inputs(fixed_batch, config.model_dir)
    writer = tf.summary.create_file_writer(config.model_dir)
    iterator, pipeline_manager = _input_pipeline(trainer, dataset, config)
    if not _restore_input_pipeline(pipeline_manager, int(trainer.step.numpy())):
        iterator, pipeline_manager = _input_pipeline(trainer, dataset, config)

    step = int(trainer.step.numpy())
    save_every = 30 * config.log_step
    last_save_time = time.monotonic()
    last_checkpoint = manager.latest_checkpoint
    losses_now = {}
    progress = _progress_bar(config, step)
    with _StopRequest() as stop:
        while step < config.max_step and stop.signal_name is None:
            try:
                batch = next(iterator)
            except READ_ERRORS as error:
                if step > int(_step_of(last_checkpoint)):
                    last_checkpoint = _save(manager, trainer, pipeline_manager)
                raise _data_error(error, files, config) from error
            trainer.set_learning_rates(step)
            losses_now = {k: float(v) for k, v in trainer.train_step(batch).items()}
            bad = [name for name, value in losses_now.items() if not math.isfinite(value)]
            if bad:
                raise TrainingDiverged(
                    f"{', '.join(bad)} became {losses_now[bad[0]]} at step {step}; nothing was "
                    f"saved after it. The last good checkpoint is {last_checkpoint or 'none'}: "
                    "resume from it with a lower --g_lr/--d_lr"
                )
            step += 1
            progress.update(1)
            progress.set_postfix({k: f"{v:.4f}" for k, v in losses_now.items()}, refresh=False)
            if step % config.log_step == 0:
                _write_summaries(
                    writer, trainer, step, losses_now, fixed_batch, config.num_log_samples
                )
            if step % (3 * config.log_step) == 0:
                _write_samples(trainer, fixed_batch, config.model_dir, step)
            if step % save_every == 0 or (
                config.save_model_secs
                and time.monotonic() - last_save_time > config.save_model_secs
            ):
                last_checkpoint = _save(manager, trainer, pipeline_manager)
                last_save_time = time.monotonic()
        progress.close()
        if _step_of(last_checkpoint) != step:
            last_checkpoint = _save(manager, trainer, pipeline_manager)
        stopped_by = stop.signal_name or "max_step"
    logging.info("stopped (%s) at step %d; checkpoint %s", stopped_by, step, last_checkpoint)
    return TrainResult(step, stopped_by, last_checkpoint, losses_now)


def _step_of(checkpoint_prefix: str | None) -> int:
    if not checkpoint_prefix:
        return -1
    return int(checkpoint_prefix.rsplit("-", 1)[-1])


def _data_error(error, files, config) -> DataError:
    if files is None:
        return DataError(f"reading the training batches failed: {_first_line(error)}")
    return data.explain_read_error(error, files, config.img_H, config.img_W)


def _progress_bar(config, step):
    from tqdm import tqdm

    return tqdm(
        total=config.max_step,
        initial=step,
        disable=not config.progress_bar,
        unit="step",
        dynamic_ncols=True,
    )
