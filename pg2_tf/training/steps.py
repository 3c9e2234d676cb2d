"""The training steps: the three networks, their optimisers and the compiled step of each stage.

Stage 1 (steps < ``stage1_steps``, 22000 in the original) trains G1 on g_loss1. Stage 2 trains G2
on g_loss2 and D on d_loss, on one of two schedules (``TrainConfig.stage2_schedule``,
``--stage2_schedule``):

- ``"original"`` (the default): the original's algorithm, step for step. The original ran the G2
  update and the D update as two session runs, each drawing its own batch from the input queue
  and computing G1, G2 and D anew; so here a stage-2 step takes TWO batches: G2's Adam update
  from g_loss2 on the first, then D's update from d_loss on the second, computed with the G2
  just updated (alternating updates), both in one compiled function. From an original
  checkpoint, fed the same batches, it gives the original graph's weights, Adam moments and
  losses (tests/test_step_parity.py).
- ``"fused"``: one batch per step; G1, G2 and D run forward once and G2's and D's gradients come
  from that same pass (simultaneous updates: D judges the G2 from before the update). It is a
  different GAN algorithm that sees half the samples per step; its cost against the original
  graph is measured in docs/performance.md ("Stage-2 schedules").

The learning rates are constant, as the original's effectively were (its ``g_lr``/``d_lr``
variables and their halving every ``lr_update_step`` never reached the optimisers);
``halve_lr_every`` turns a real halving on.

Under ``tf.distribute`` ``batch_size`` is the global batch, split over the replicas; each
replica's loss is weighted 1/replicas and the optimisers sum the gradients over replicas, so the
update is that of the global batch's mean loss. D's batch-statistics BN normalises each
replica's own triplet. Under mixed precision (:mod:`pg2_tf.training.precision`) variables,
images, logits and losses stay float32, and float16 gets dynamic loss scaling.

Rule: the steps compute and update; they never read files, flags or the clock (the loop,
:mod:`pg2_tf.training.loop`, does).
"""

import keras
import tensorflow as tf

from pg2_tf.core.configs import STAGE2_SCHEDULES, TrainConfig
from pg2_tf.core.errors import ConfigError
from pg2_tf.networks import checkpoints, losses, models, tf1_checkpoint
from pg2_tf.records import reader
from pg2_tf.training import distribution, precision

# tf.train.AdamOptimizer's default where the original relied on it (Keras' epsilon is 1e-7).
TF1_ADAM_EPSILON = 1e-8


def make_adam(learning_rate=2e-5, beta1=0.5, beta2=0.999):
    """An Adam configured like each of the original's three optimisers (lr 2e-5, beta1 0.5).

    Keras' update rule is TF1's (epsilon added to sqrt(v) with bias-corrected step size), so with
    epsilon 1e-8 it moves the weights as tf.train.AdamOptimizer did.

    Args:
        learning_rate: the step size (float > 0).
        beta1: the first moment's decay (0..1).
        beta2: the second moment's decay (0..1).

    Returns:
        A ``keras.optimizers.Adam`` with TF1's epsilon.
    """
    return keras.optimizers.Adam(
        learning_rate=learning_rate, beta_1=beta1, beta_2=beta2, epsilon=TF1_ADAM_EPSILON
    )


def _batch_signature(config: TrainConfig, batch_size: int | None):
    spec = reader.element_spec(config.img_H, config.img_W, batch_size)
    return [spec]


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
        self.dtype_policy = (
            precision.mixed_precision_policy() if config.mixed_precision else "float32"
        )
        with self.strategy.scope(), precision.dtype_policy(self.dtype_policy):
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
        if replicas == 1 and not distribution.is_multi_worker(self.strategy):
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
