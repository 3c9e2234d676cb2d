"""Trains the tiny Market model for a few steps in one of three ways and saves the weights.

Run by tests/test_distribute.py, one fresh process per mode (the logical CPU devices must be
configured before TensorFlow starts):

    python tests/replicas_worker.py MODE RECORDS_DIR OUT_DIR

MODE:
- ``one_device``: the default strategy, global batch 4 (writes ``init.npz`` first: the initial
  weights that the other modes load, so all three start from the same point);
- ``two_replicas``: MirroredStrategy over two logical CPUs, the same global batch split 2 + 2;
- ``ghost_batches``: one device, each update's gradients are the mean of the gradients of the
  two halves of the batch, each computed on its own (D's batch statistics per half) - what two
  replicas compute, written out by hand (stage 2 on the default, original schedule: G2's
  update, then D's with the updated G2, both on the step's batch).

Steps 0-1 are stage 1, steps 2-4 stage 2. Writes ``<mode>_stage1.npz`` (after step 2) and
``<mode>_final.npz``: every weight of G1, G2 and D by its path.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from helpers import record_batches  # noqa: E402

STAGE1_STEPS, STEPS, GLOBAL_BATCH = 2, 5, 4


def main(mode, records_dir, out_dir):
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    import keras

    from pg2_tf.core.configs import TrainConfig
    from pg2_tf.training import steps

    config = TrainConfig(
        conv_hidden_num=8,
        d_dim=8,
        batch_size=GLOBAL_BATCH,
        stage1_steps=STAGE1_STEPS,
        g_lr=1e-3,
        d_lr=1e-3,
        model_dir=out_dir,
        progress_bar=False,
    )
    strategy = (
        tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]) if mode == "two_replicas" else None
    )
    keras.utils.set_random_seed(0)
    trainer = steps.Trainer(config, strategy)
    weights = [w for m in (trainer.g1, trainer.g2, trainer.d) for w in m.weights]
    init_path = os.path.join(out_dir, "init.npz")
    if mode == "one_device":
        np.savez(init_path, **{w.path: w.numpy() for w in weights})
    else:
        with np.load(init_path) as init:
            for w in weights:
                w.assign(init[w.path])

    dataset = record_batches(records_dir, "market", GLOBAL_BATCH).take(STEPS)
    if mode == "two_replicas":
        batches = iter(trainer.strategy.experimental_distribute_dataset(dataset))
    else:
        batches = iter(dataset)

    def save(name):
        np.savez(
            os.path.join(out_dir, f"{mode}_{name}.npz"), **{w.path: w.numpy() for w in weights}
        )

    for step in range(STEPS):
        batch = next(batches)
        if mode == "ghost_batches":
            ghost_step(trainer, batch, step)
        else:
            trainer.train_step(batch, step)
        if step + 1 == STAGE1_STEPS:
            save("stage1")
    save("final")


def ghost_step(trainer, batch, step):
    """One step whose gradients average those of the two halves of ``batch``."""
    half = GLOBAL_BATCH // 2
    halves = [{k: v[:half] for k, v in batch.items()}, {k: v[half:] for k, v in batch.items()}]

    def mean(gradient_lists):
        return [(a + b) / 2 for a, b in zip(*gradient_lists, strict=True)]

    if step < STAGE1_STEPS:
        g1_gradients = mean([trainer.stage1_gradients(h)[0] for h in halves])
        trainer._apply("g1", g1_gradients, trainer.g1)
    else:  # the original schedule (the default), D's batch = G2's: G2's update, then D's
        trainer._apply("g2", mean([trainer.g2_gradients(h)[0] for h in halves]), trainer.g2)
        trainer._apply("d", mean([trainer.d_gradients(h)[0] for h in halves]), trainer.d)
    trainer.step.assign_add(1)


if __name__ == "__main__":
    main(*sys.argv[1:])
