"""What a training run shows of itself in model_dir: the fixed inputs once, sample grids of G1,
G2 and the difference map, and TensorBoard summaries of the losses and rates.

Rule: all of it is computed on the same fixed batch (the first of the run), by the chief only,
as PNG files named as the original's (``<step>_G2.png``, ``x_fixed.png``, ...).
"""

import os

import tensorflow as tf

from pg2_tf.core import images


def write_samples(trainer, fixed_batch: dict, model_dir: str, step: int) -> None:
    """Writes ``model_dir/<step>_{G1,G2,DiffMap}.png``: grids of the trainer's outputs.

    Args:
        trainer: a :class:`pg2_tf.training.steps.Trainer`.
        fixed_batch: a batch as :func:`pg2_tf.records.reader.make_dataset` makes ("x",
            "pose_target": float32 (N, H, W, 3) and (N, H, W, 18), [-1, 1]).
        model_dir: the folder written to.
        step: the step count in the file names.
    """
    g1_out, g2_out, diff_map = trainer.compiled_generate(
        fixed_batch["x"], fixed_batch["pose_target"]
    )
    for name, values in (("G1", g1_out), ("G2", g2_out), ("DiffMap", diff_map)):
        images.save_png(
            images.grid(images.to_uint8_image(values.numpy())),
            os.path.join(model_dir, f"{step}_{name}.png"),
        )


def write_fixed_inputs(fixed_batch: dict, model_dir: str) -> None:
    """Writes the fixed batch's inputs as grids: ``x_fixed.png``, ``pose_target_fixed.png``, ...

    Args:
        fixed_batch: a batch as :func:`pg2_tf.records.reader.make_dataset` makes (images and
            poses float32 in [-1, 1], masks float32 in {0, 1}).
        model_dir: the folder written to.
    """
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


def write_summaries(writer, trainer, step: int, losses_now: dict, fixed_batch: dict, num_images):
    """Writes step ``step``'s TensorBoard summaries: ``loss/<name>``, ``misc/g_lr``, ``misc/d_lr``
    and the images G1, G2 and DiffMap of the fixed batch.

    Args:
        writer: a ``tf.summary`` file writer.
        trainer: a :class:`pg2_tf.training.steps.Trainer`.
        step: the step the summaries are written at.
        losses_now: the step's losses as Python floats.
        fixed_batch: the fixed batch (as in :func:`write_samples`).
        num_images: at most this many images per summary.
    """
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
