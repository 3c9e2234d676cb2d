"""PG2 training: optimisers, the tf.function steps of both stages, and the loop around them.

Stage 1 (steps < ``stage1_steps``, 22000 in the original) trains G1 on g_loss1. Stage 2 trains G2
on g_loss2 and D on d_loss, on one of two schedules (``TrainConfig.stage2_schedule``,
``--stage2_schedule``):

- ``"original"`` (the default): the original's algorithm, step for step. The original ran the G2
  update and the D update as two session runs, each drawing its own batch from the input queue
  and computing G1, G2 and D anew; so here a stage-2 step takes TWO batches: G2's Adam update
  from g_loss2 on the first, then D's update from d_loss on the second, computed with the G2
  just updated (alternating updates). Both halves run in one compiled function, in that order.
  It is the default because it is the training the paper's numbers came from: from an original
  checkpoint, fed the same batches, it gives the original graph's weights, Adam moments and
  losses (tests/test_step_parity.py), and it costs no more time than the original graph.
- ``"fused"``: one batch per step; G1, G2 and D run forward once and G2's and D's gradients come
  from that same pass (simultaneous updates: D judges the G2 from before the update). It does
  0.62 of the FLOPs and runs in 0.56-0.61 of the original graph's time, but it is a different
  GAN algorithm that sees half the samples per step (docs/performance.md compares the two).

Other differences from the original graph, deliberate:

- The learning rates are constant, as the original's effectively were (its ``g_lr``/``d_lr``
  variables and their halving every ``lr_update_step`` never reached the optimisers);
  ``halve_lr_every`` turns a real halving on.

Performance and scale (see docs/performance.md):

- Mixed precision (``TrainConfig.mixed_precision``): the networks are built under
  :func:`mixed_precision_policy` (``mixed_float16`` with a GPU, ``mixed_bfloat16`` on a CPU
  with native bfloat16, else float32); variables, images, logits and losses stay float32, and
  float16 gets dynamic loss scaling. Checkpoints hold the same float32 variables either way, so
  they are interchangeable.
- ``tf.distribute``: :func:`train` takes any strategy (MirroredStrategy,
  MultiWorkerMirroredStrategy); ``batch_size`` is the global batch, split over the replicas;
  each replica's loss is weighted 1/replicas and the optimisers sum the gradients over
  replicas, so the update is that of the global batch's mean loss. D's batch-statistics BN
  normalises each replica's own triplet (statistics over the per-replica batch). Only the
  chief writes checkpoints, summaries and samples (other workers write to a temporary folder).
- The loop does not wait for a step's losses before starting the next step: they are fetched
  (and checked for NaN) while the next step runs, and always before anything is saved.
- The losses logged for a stage-2 step are those its updates were computed from: under
  ``"original"``, g_loss2 and the others of G2's batch (before G2's update) and d_loss of D's
  batch (after it). The original logged them from a third session run on a third batch.
"""

import contextlib
import dataclasses
import math
import os
import shutil
import signal
import tempfile
import time

import keras
import tensorflow as tf
from absl import logging

from pg2_tf.core import images
from pg2_tf.core.configs import STAGE2_SCHEDULES, TrainConfig
from pg2_tf.core.errors import ConfigError, DataError, Pg2Error, first_line
from pg2_tf.networks import checkpoints, losses, models, tf1_checkpoint
from pg2_tf.records import reader
from pg2_tf.training import model_dir

# tf.train.AdamOptimizer's default where the original relied on it (Keras' epsilon is 1e-7).
TF1_ADAM_EPSILON = 1e-8
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


def _batch_signature(config: TrainConfig, batch_size: int | None):
    spec = reader.element_spec(config.img_H, config.img_W, batch_size)
    return [spec]


def mixed_precision_policy() -> str:
    """The Keras dtype policy for ``--mixed_precision`` on the visible devices.

    ``"mixed_float16"`` when a GPU is visible (tensor cores; needs loss scaling);
    ``"mixed_bfloat16"`` on a CPU that computes bfloat16 natively (AVX512_BF16 or AMX,
    :func:`pg2_tf.core.hardware.bfloat16_support`: about twice as fast as float32; no loss scaling:
    bfloat16 has float32's exponent range); otherwise ``"float32"``, with one warning line:
    there bfloat16 is emulated and a step ran 12x slower than float32.
    """
    from pg2_tf.core import hardware

    if tf.config.list_logical_devices("GPU"):
        return "mixed_float16"
    support = hardware.bfloat16_support()
    if support.native:
        return "mixed_bfloat16"
    logging.log_first_n(
        logging.WARNING,
        "--mixed_precision: %s, so bfloat16 would run about 12x slower than float32; "
        "computing in float32",
        1,
        support.reason,
    )
    return "float32"


@contextlib.contextmanager
def dtype_policy(name: str):
    """Sets the Keras global dtype policy to ``name`` (e.g. "float32", "mixed_bfloat16") for
    the layers created inside the block, then restores the previous one."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def configure_threads(inter_op_threads: int = 0, intra_op_threads: int = 0) -> int:
    """Sets TensorFlow's thread pools; must run before TensorFlow executes anything.

    ``inter_op_threads``: how many ops may run at once; ``intra_op_threads``: threads per op;
    0 for TensorFlow's defaults (both about the number of cores; on 2 CPU cores one op at a
    time measured no faster, docs/performance.md). Returns the inter-op setting applied.
    """
    tf.config.threading.set_inter_op_parallelism_threads(inter_op_threads)
    tf.config.threading.set_intra_op_parallelism_threads(intra_op_threads)
    return inter_op_threads


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True unless ``strategy`` is multi-worker and this process is not its chief (the worker
    that writes checkpoints and summaries: task "chief", else worker 0)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def _is_multi_worker(strategy) -> bool:
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


class Trainer:
    """Owns the three networks, their optimisers, the checkpoint and the compiled train steps.

    ``g1_optimizer``, ``g2_optimizer``, ``d_optimizer`` are the three Adams (checkpointed as
    such). Under float16 each is applied through a ``keras.optimizers.LossScaleOptimizer``
    wrapping it; its loss scale is not checkpointed (it restarts at 2^15 and adapts within a
    few steps), so checkpoints have the same layout with and without mixed precision.
    """

    def __init__(self, config: TrainConfig, strategy: tf.distribute.Strategy | None = None):
        if config.stage2_schedule not in STAGE2_SCHEDULES:
            raise ConfigError(
                f"--stage2_schedule={config.stage2_schedule!r}: use one of "
                f"{', '.join(STAGE2_SCHEDULES)}"
            )
        self.config = config
        self.strategy = strategy or tf.distribute.get_strategy()
        self.dtype_policy = mixed_precision_policy() if config.mixed_precision else "float32"
        with self.strategy.scope(), dtype_policy(self.dtype_policy):
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
            # What applies the gradients: the Adam itself, or a loss-scaling wrapper (float16).
            self._updaters = {}
            for name, optimizer, model in (
                ("g1", self.g1_optimizer, self.g1),
                ("g2", self.g2_optimizer, self.g2),
                ("d", self.d_optimizer, self.d),
            ):
                if self.dtype_policy == "mixed_float16":
                    optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
                optimizer.build(model.trainable_variables)  # builds the wrapped Adam too
                self._updaters[name] = optimizer
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
        replicas = self.strategy.num_replicas_in_sync
        if config.batch_size % replicas:
            raise ConfigError(
                f"--batch_size={config.batch_size} (the global batch) must be a multiple of the "
                f"{replicas} replicas"
            )
        jit_compile = config.xla or None
        if replicas == 1 and not _is_multi_worker(self.strategy):
            # One device: each step is one compiled function of the fixed-shape batch.
            signature = _batch_signature(config, config.batch_size)
            self._stage1_gradients, self._stage2_gradients = (
                self.stage1_gradients,
                self.stage2_gradients,
            )
            self._g2_gradients, self._d_gradients = self.g2_gradients, self.d_gradients
        else:
            # Several replicas: the step takes per-replica values (no fixed signature), and XLA
            # compiles each replica's forward and backward pass; the gradients' all-reduce and
            # the updates stay outside (no synchronisation inside a nested tf.function).
            signature, jit_compile = None, None
            self._stage1_gradients = tf.function(self.stage1_gradients, jit_compile=config.xla)
            self._stage2_gradients = tf.function(self.stage2_gradients, jit_compile=config.xla)
            self._g2_gradients = tf.function(self.g2_gradients, jit_compile=config.xla)
            self._d_gradients = tf.function(self.d_gradients, jit_compile=config.xla)
        self._stage1_distributed = tf.function(
            self._distributed(self.stage1_step),
            input_signature=signature,
            jit_compile=jit_compile,
        )
        self._stage2_distributed = tf.function(
            self._distributed(self.stage2_step),
            input_signature=signature,
            jit_compile=jit_compile,
        )
        self._stage2_original_distributed = tf.function(
            self._distributed(self.stage2_original_step),
            input_signature=signature and signature * 2,
            jit_compile=jit_compile,
        )
        self.compiled_generate = tf.function(self.generate, jit_compile=config.xla or None)

    # ---- the steps (per replica) ---------------------------------------------------------

    def generate(self, x, pose_target):
        """G1, G2 and the difference map for a batch; all (N, H, W, 3), [-1, 1] scale."""
        g1_output = self.g1([x, pose_target])
        diff_map = self.g2([g1_output, x])
        return g1_output, g1_output + diff_map, diff_map

    def _scaled_loss(self, role, loss):
        """The float32 loss to differentiate for ``role``'s update: weighted 1/replicas (the
        optimisers sum gradients over replicas) and, under float16, times the loss scale."""
        loss = loss * (1.0 / self.strategy.num_replicas_in_sync)
        updater = self._updaters[role]
        if isinstance(updater, keras.optimizers.LossScaleOptimizer):
            loss = updater.scale_loss(loss)
        return loss

    def _apply(self, role, gradients, model):
        """Applies (loss-scaled, per-replica) ``gradients`` to ``model``'s trainable variables."""
        self._updaters[role].apply_gradients(zip(gradients, model.trainable_variables, strict=True))

    def stage1_gradients(self, batch):
        """(G1 gradients, losses) of one replica's batch; gradients of the scaled g_loss1."""
        with tf.GradientTape() as tape:
            g1_output = self.g1([batch["x"], batch["pose_target"]])
            g_loss1 = losses.masked_l1_loss(g1_output, batch["x_target"], batch["mask_target"])
            scaled = self._scaled_loss("g1", g_loss1)
        gradients = tape.gradient(scaled, self.g1.trainable_variables)
        return gradients, {
            "g_loss1": g_loss1,
            "PoseMaskLoss1": losses.pose_mask_loss(
                g1_output, batch["x_target"], batch["mask_target"]
            ),
        }

    def stage1_step(self, batch):
        """One stage-1 update of G1 on one replica's batch; returns its losses."""
        gradients, result = self._stage1_gradients(batch)
        self._apply("g1", gradients, self.g1)
        return result

    def stage2_gradients(self, batch):
        """(G2 gradients, D gradients, losses) of one replica's batch, from ONE forward pass.

        G1 runs once (frozen); G2 and D (on the replica's whole triplet, so BN statistics are
        the replica's) run once; g_loss2 is differentiated for G2, d_loss for D.
        """
        model = self.config.model
        x_target, mask_target = batch["x_target"], batch["mask_target"]
        g1_output = self._frozen_g1(batch)
        with tf.GradientTape(persistent=True) as tape:
            g2_output, logits = self._stage2_forward(batch, g1_output)
            g_gan, d_loss, g2_g1_loss = losses.gan_losses(model, logits)
            l1_loss2 = losses.masked_l1_loss(g2_output, x_target, mask_target)
            g_loss2 = losses.generator2_loss(model, g_gan, l1_loss2)
            g_scaled, d_scaled = self._scaled_loss("g2", g_loss2), self._scaled_loss("d", d_loss)
        g2_gradients = tape.gradient(g_scaled, self.g2.trainable_variables)
        d_gradients = tape.gradient(d_scaled, self.d.trainable_variables)
        del tape
        result = _generator_losses(batch, g1_output, g2_output, g_loss2, l1_loss2, g2_g1_loss)
        return g2_gradients, d_gradients, {**result, "d_loss": d_loss}

    def stage2_step(self, batch):
        """One stage-2 update of G2 and D on one replica's batch; returns its losses."""
        g2_gradients, d_gradients, result = self._stage2_gradients(batch)
        self._apply("g2", g2_gradients, self.g2)
        self._apply("d", d_gradients, self.d)
        return result

    def _stage2_forward(self, batch, g1_output):
        """G2's output and D's logits on the replica's triplet, from G1's (frozen) output."""
        x = batch["x"]
        g2_output = g1_output + self.g2([g1_output, x])
        triplet = losses.discriminator_batches(
            self.config.model, x, batch["x_target"], g1_output, g2_output
        )
        return g2_output, self.d(triplet)

    def _frozen_g1(self, batch):
        """G1's output, outside any tape (stage 2 does not train G1)."""
        return tf.stop_gradient(self.g1([batch["x"], batch["pose_target"]]))

    def g2_gradients(self, batch):
        """(G2 gradients, losses) of one replica's batch: the original's ``g_optim2`` run.

        Returns the losses of that run except d_loss (D's update computes its own, on D's batch).
        """
        model = self.config.model
        x_target, mask_target = batch["x_target"], batch["mask_target"]
        g1_output = self._frozen_g1(batch)
        with tf.GradientTape() as tape:
            g2_output, logits = self._stage2_forward(batch, g1_output)
            g_gan, _, g2_g1_loss = losses.gan_losses(model, logits)
            l1_loss2 = losses.masked_l1_loss(g2_output, x_target, mask_target)
            g_loss2 = losses.generator2_loss(model, g_gan, l1_loss2)
            scaled = self._scaled_loss("g2", g_loss2)
        gradients = tape.gradient(scaled, self.g2.trainable_variables)
        result = _generator_losses(batch, g1_output, g2_output, g_loss2, l1_loss2, g2_g1_loss)
        return gradients, result

    def d_gradients(self, batch):
        """(D gradients, d_loss) of one replica's batch: the original's ``d_optim`` run (G1 and
        G2 forward only, D forward and backward)."""
        g1_output = self._frozen_g1(batch)
        with tf.GradientTape() as tape:
            _, logits = self._stage2_forward(batch, g1_output)
            _, d_loss, _ = losses.gan_losses(self.config.model, logits)
            scaled = self._scaled_loss("d", d_loss)
        return tape.gradient(scaled, self.d.trainable_variables), d_loss

    def stage2_original_step(self, batch, d_batch):
        """One stage-2 step of the original schedule on one replica's batches: G2's update on
        ``batch``, then D's on ``d_batch`` with the updated G2 (in a tf.function, variable reads
        follow the assignments before them); returns the losses (d_loss from ``d_batch``)."""
        g2_gradients, result = self._g2_gradients(batch)
        self._apply("g2", g2_gradients, self.g2)
        d_gradients, result["d_loss"] = self._d_gradients(d_batch)
        self._apply("d", d_gradients, self.d)
        return result

    # ---- distributed wrappers ---------------------------------------------------------------

    def _distributed(self, replica_fn):
        """A step over all replicas: ``replica_fn`` on each replica's part of the global batch,
        the losses averaged over replicas (each replica's are means over its part)."""

        def step(*batches):
            per_replica = self.strategy.run(replica_fn, args=batches)
            return {
                name: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)
                for name, value in per_replica.items()
            }

        return step

    def batches_per_step(self, step: int) -> int:
        """How many batches step ``step`` consumes: 2 for a stage-2 step of the original
        schedule (G2's batch, then D's), else 1."""
        stage2 = step >= self.config.stage1_steps
        return 2 if stage2 and self.config.stage2_schedule == "original" else 1

    def train_step(self, batch, step: int | None = None, d_batch=None) -> dict:
        """One step of the stage that step ``step`` (default: ``self.step``) is in.

        ``batch``: the global batch (a dict as :func:`pg2_tf.records.reader.make_dataset` makes, or one
        from ``strategy.experimental_distribute_dataset``). ``d_batch``: under the original
        schedule, D's batch of a stage-2 step (the loop passes the pipeline's next batch, see
        :meth:`batches_per_step`); default ``batch`` (D's update on the same batch, after G2's).
        Increments ``self.step``. Returns the losses (scalar float32 tensors, means over the
        global batch) without waiting for them.
        """
        if step is None:
            step = int(self.step.numpy())
        if step < self.config.stage1_steps:
            result = self._stage1_distributed(batch)
        elif self.config.stage2_schedule == "original":
            result = self._stage2_original_distributed(batch, batch if d_batch is None else d_batch)
        else:
            result = self._stage2_distributed(batch)
        self.step.assign_add(1)
        return result

    def set_learning_rates(self, step: int) -> None:
        """Sets the optimisers' rates to the config's for ``step`` (halved every
        ``halve_lr_every`` steps when set), whatever a restored checkpoint held."""
        every = self.config.halve_lr_every
        factor = 0.5 ** (step // every) if every else 1.0
        self.g1_optimizer.learning_rate.assign(self.config.g_lr * factor)
        self.g2_optimizer.learning_rate.assign(self.config.g_lr * factor)
        self.d_optimizer.learning_rate.assign(self.config.d_lr * factor)

    # ---- loading ---------------------------------------------------------------------------

    def load_pretrained_generators(self, path: str) -> str:
        """G1/G2 weights from an original TF1 checkpoint or one of ours; returns the prefix."""
        return checkpoints.load_generators(path, self.g1, self.g2)

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


def _num_workers(strategy) -> int:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not _is_multi_worker(strategy):
        return 1
    cluster = resolver.cluster_spec().as_dict()
    return max(1, len(cluster.get("worker", [])) + len(cluster.get("chief", [])))


def _shard_policy(strategy, files):
    """How a multi-worker strategy splits the records: by file (each worker reads its own
    files) when there are at least as many files as workers, else by example (each worker
    reads every record and keeps its share)."""
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


def _input_pipeline(trainer, dataset, config, files=None):
    """The training iterator and a manager of its saved positions (``model_dir/input_pipeline``),
    or None in place of the manager under a distribution strategy.

    The position is saved in full (the shuffle buffer's records included): TensorFlow's symbolic
    checkpoints of this pipeline fail once a restored iterator reaches the end of an epoch.
    tf.distribute's iterators cannot be checkpointed: a distributed run that resumes starts a
    new batch order (the model, optimiser and step are resumed exactly all the same).
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = _shard_policy(trainer.strategy, files)
    distributed = trainer.strategy.experimental_distribute_dataset(dataset.with_options(options))
    iterator = iter(distributed)
    if not isinstance(iterator, tf.__internal__.tracking.Trackable):
        return iterator, None
    return iterator, model_dir.pipeline_manager(
        tf.train.Checkpoint(iterator=iterator), config.model_dir, config.max_to_keep
    )


def _write_samples(trainer, fixed_batch, model_dir, step):
    g1_out, g2_out, diff_map = trainer.compiled_generate(
        fixed_batch["x"], fixed_batch["pose_target"]
    )
    for name, values in (("G1", g1_out), ("G2", g2_out), ("DiffMap", diff_map)):
        images.save_png(
            images.grid(images.to_uint8_image(values.numpy())),
            os.path.join(model_dir, f"{step}_{name}.png"),
        )


def _write_fixed_inputs(fixed_batch, model_dir):
    pictures = {
        "x_fixed": images.input_to_uint8(fixed_batch["x"]),
        "x_target_fixed": images.input_to_uint8(fixed_batch["x_target"]),
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
        g1_out, g2_out, diff_map = trainer.compiled_generate(
            fixed_batch["x"], fixed_batch["pose_target"]
        )
        for name, values in (("G1", g1_out), ("G2", g2_out), ("DiffMap", diff_map)):
            tf.summary.image(name, images.to_uint8_image(values.numpy()), max_outputs=num_images)
    writer.flush()


save_params = model_dir.save_params


class _LossChecker:
    """Fetches a step's losses while the next step runs, and stops on NaN/inf.

    ``add(step, losses)`` records the (not yet computed) losses of ``step`` and checks those of
    the step before, whose computation is then finished or about to be; ``settle()`` checks the
    pending ones at once (before anything is saved or logged). ``latest`` holds the last checked
    losses as Python floats.
    """

    def __init__(self, last_checkpoint_of):
        self._pending = None
        self._last_checkpoint_of = last_checkpoint_of
        self.latest = {}

    def add(self, step, losses_now):
        self.settle()
        self._pending = (step, losses_now)

    def settle(self) -> dict:
        if self._pending is None:
            return self.latest
        step, tensors = self._pending
        self._pending = None
        names = list(tensors)
        values = tf.stack([tf.cast(tensors[name], tf.float32) for name in names]).numpy()
        current = {name: float(value) for name, value in zip(names, values, strict=True)}
        bad = [name for name, value in current.items() if not math.isfinite(value)]
        if bad:
            raise TrainingDiverged(
                f"{', '.join(bad)} became {current[bad[0]]} at step {step}; nothing was "
                f"saved after it. The last good checkpoint is "
                f"{self._last_checkpoint_of() or 'none'}: resume from it with a lower "
                "--g_lr/--d_lr"
            )
        self.latest = current
        return current


# ---- resuming ----------------------------------------------------------------------------------


def restore_checkpoint(trainer, prefix: str) -> None:
    """Loads checkpoint ``prefix`` into every variable of ``trainer`` (each tensor read once).

    Raises ConfigError when it does not fit the flags, a read error (checkpoints.READ_ERRORS)
    when it is damaged; a later successful call overwrites every value a failed one had set
    (``assert_existing_objects_matched``: every variable is in the checkpoint).
    """
    checkpoints.check_flags_fit(prefix, trainer)
    trainer.checkpoint.restore(prefix).assert_existing_objects_matched()


def restore_or_initialise(trainer, latest, config) -> str:
    """Resumes from ``latest`` (our newest intact checkpoint in model_dir, already loaded by
    :func:`restore_checkpoint`, or None), else from --ckpt_path/--pretrained_path. The flags'
    rates replace the checkpoint's (logged)."""
    if latest:
        stored = (
            float(trainer.g1_optimizer.learning_rate),
            float(trainer.d_optimizer.learning_rate),
        )
        trainer.set_learning_rates(int(trainer.step.numpy()))
        now = (float(trainer.g1_optimizer.learning_rate), float(trainer.d_optimizer.learning_rate))
        if stored != now:
            logging.warning(
                "learning rates from the flags now: g_lr %g -> %g, d_lr %g -> %g",
                stored[0],
                now[0],
                stored[1],
                now[1],
            )
        return f"resumed from {latest} at step {int(trainer.step.numpy())}"
    if config.ckpt_path:
        step = trainer.resume_from_tf1(config.ckpt_path)
        trainer.set_learning_rates(step)
        return f"resumed from original checkpoint {config.ckpt_path} at step {step}"
    if config.pretrained_path:
        prefix = trainer.load_pretrained_generators(config.pretrained_path)
        return f"generators loaded from {prefix}; starting at step {config.start_step}"
    return f"new model; starting at step {config.start_step}"


def train(config: TrainConfig, dataset=None, strategy=None, params=None) -> TrainResult:
    """Trains until ``max_step`` (or SIGINT/SIGTERM), checkpointing to ``config.model_dir``.

    ``dataset``: batches as made by :func:`pg2_tf.records.reader.make_dataset` (training mode), each the
    global batch; by default read from ``config.data_path``. ``strategy``: a tf.distribute
    strategy (default: the current one, usually a single device); the global batch is split
    over its replicas. ``params``: written to ``model_dir/params.json`` once the run starts (the
    flags checked against the checkpoint). Holds model_dir's lock (:class:`model_dir.Lock`) and
    resumes from its newest intact checkpoint (:func:`model_dir.resume_checkpoint`) with its
    input pipeline's position. Checkpoints (``model.ckpt-<completed steps>``, the same format
    with any strategy and dtype policy) are written every 30*log_step steps, every
    ``save_model_secs``, at the end, and on SIGINT/SIGTERM. Under a multi-worker strategy only
    the chief writes to model_dir. A NaN/inf loss raises TrainingDiverged without saving; a bad
    record raises DataError after saving the last completed step.
    """
    keras.utils.set_random_seed(config.random_seed)
    strategy = strategy or tf.distribute.get_strategy()
    chief = is_chief(strategy)  # only the chief locks, cleans and repairs model_dir
    with model_dir.Lock(config.model_dir) if chief else contextlib.nullcontext():
        if chief:
            model_dir.remove_leftovers(config.model_dir)
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
        trainer = Trainer(config, strategy)
        latest = model_dir.resume_checkpoint(  # loaded into trainer: the one read of it
            config.model_dir, repair=chief, load=lambda prefix: restore_checkpoint(trainer, prefix)
        )
        if latest is None and config.start_step >= config.max_step:
            raise ConfigError(
                f"--start_step={config.start_step} is not below --max_step={config.max_step}: "
                "nothing would be trained"
            )
        logging.info(restore_or_initialise(trainer, latest, config))
        if chief and params is not None:
            model_dir.save_params(params, config.model_dir)
        # Other workers save too (saving may synchronise workers), into a folder deleted at the end.
        save_dir = config.model_dir if chief else tempfile.mkdtemp(prefix="pg2_worker_")
        try:
            return _train_loop(config, trainer, dataset, files, save_dir, chief, latest)
        finally:
            if not chief:
                shutil.rmtree(save_dir, ignore_errors=True)


def _train_loop(config, trainer, dataset, files, save_dir, chief, latest) -> TrainResult:
    saver = model_dir.Saver(trainer, save_dir, config.max_to_keep, latest)
    try:
        fixed_batch = next(iter(dataset.take(1)))
    except READ_ERRORS as error:
        raise _data_error(error, files, config) from error
    fixed_batch = {k: v[: config.num_log_samples] for k, v in fixed_batch.items()}
    if chief:
        with model_dir.writing(config.model_dir, kept=latest):
            _write_fixed_inputs(fixed_batch, config.model_dir)
    writer = tf.summary.create_file_writer(config.model_dir) if chief else None
    pipeline_config = dataclasses.replace(config, model_dir=save_dir)
    iterator, pipeline_manager = _input_pipeline(trainer, dataset, pipeline_config, files)
    position = model_dir.restore_pipeline_position(pipeline_manager, int(trainer.step.numpy()))
    if position == model_dir.POSITION_FAILED:
        iterator, pipeline_manager = _input_pipeline(trainer, dataset, pipeline_config, files)
    restored = position == model_dir.POSITION_RESTORED

    step = int(trainer.step.numpy())
    trainer.set_learning_rates(step)
    save_every = config.save_step or 30 * config.log_step
    last_save_time = time.monotonic()
    checker = _LossChecker(lambda: saver.last)
    progress = _progress_bar(
        dataclasses.replace(config, progress_bar=config.progress_bar and chief), step
    )
    # Saving must happen at the same steps on every worker: no time-based saves across hosts.
    save_secs = 0 if _is_multi_worker(trainer.strategy) else config.save_model_secs
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
                    iterator, pipeline_manager = _input_pipeline(
                        trainer, dataset, pipeline_config, files
                    )
                    restored = False
                    continue
                checker.settle()
                if step > model_dir.step_of(saver.last):
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
                with model_dir.writing(config.model_dir, kept=saver.last):
                    if chief and log_now:
                        _write_summaries(
                            writer, trainer, step, losses_now, fixed_batch, config.num_log_samples
                        )
                    if chief and samples_now:
                        _write_samples(trainer, fixed_batch, config.model_dir, step)
                if save_now:
                    saver.save(pipeline_manager)
                    last_save_time = time.monotonic()
        checker.settle()
        progress.close()
        if model_dir.step_of(saver.last) != step:
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
    return reader.explain_read_error(error, files, config.img_H, config.img_W)


def _progress_bar(config, step):
    from tqdm import tqdm

    return tqdm(
        total=config.max_step,
        initial=step,
        disable=not config.progress_bar,
        unit="step",
        dynamic_ncols=True,
    )


def _generator_losses(batch, g1_output, g2_output, g_loss2, l1_loss2, g2_g1_loss):
    """The losses a stage-2 step logs besides d_loss (scalars), as the original's summaries."""
    x_target, mask_target = batch["x_target"], batch["mask_target"]
    result = {
        "g_loss1": losses.masked_l1_loss(g1_output, x_target, mask_target),
        "g_loss2": g_loss2,
        "L1Loss2": l1_loss2,
        "PoseMaskLoss1": losses.pose_mask_loss(g1_output, x_target, mask_target),
        "PoseMaskLoss2": losses.pose_mask_loss(g2_output, x_target, mask_target),
    }
    if g2_g1_loss is not None:
        result["g2_g1_loss"] = g2_g1_loss
    return result
