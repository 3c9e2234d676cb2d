"""Where a training run starts: our newest intact checkpoint, an original TF1 checkpoint
(``--ckpt_path``), pretrained generators (``--pretrained_path``), or a new model.

Rule: a checkpoint in model_dir wins over the flags' paths, and the flags' learning rates replace
the checkpoint's (logged when they differ). Which checkpoint of model_dir is intact is
:func:`pg2_tf.training.run_folder.resume_checkpoint`'s business.
"""

from absl import logging

from pg2_tf.core.configs import TrainConfig
from pg2_tf.networks import checkpoints


def restore_checkpoint(trainer, prefix: str) -> None:
    """Loads checkpoint ``prefix`` into every variable of ``trainer`` (each tensor read once).

    A later successful call overwrites every value a failed one had set
    (``assert_existing_objects_matched``: every variable is in the checkpoint).

    Args:
        trainer: a :class:`pg2_tf.training.steps.Trainer`.
        prefix: a checkpoint prefix ``.../model.ckpt-<step>``.

    Raises:
        ConfigError: the checkpoint does not fit the flags.
        checkpoints.READ_ERRORS: the checkpoint is damaged.
    """
    checkpoints.check_flags_fit(prefix, trainer)
    trainer.checkpoint.restore(prefix).assert_existing_objects_matched()


def restore_or_initialise(trainer, latest: str | None, config: TrainConfig) -> str:
    """Resumes from ``latest``, else from ``--ckpt_path``/``--pretrained_path``, else starts anew.

    Args:
        trainer: a :class:`pg2_tf.training.steps.Trainer`.
        latest: our newest intact checkpoint in model_dir, already loaded by
            :func:`restore_checkpoint`, or None.
        config: the run's config (``ckpt_path``, ``pretrained_path``, ``start_step``, rates).

    Returns:
        One line saying where the run starts, for the log.
    """
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
