"""Training behaves like the original's and never loses work (tiny model on the fixture records)."""

import dataclasses
import os
import shutil
import signal
import subprocess
import time

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import tiny_config

from benchmarks import soak_resume
from pg2_tf.core.errors import ConfigError, DataError
from pg2_tf.training import loop, loss_check, run_folder, steps

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def records_dir(market_tf1_dir):
    return str(market_tf1_dir / "test_data")


def _weights(trainer):
    return [v.numpy() for m in (trainer.g1, trainer.g2, trainer.d) for v in m.weights]


def test_stage1_steps_reduce_g_loss1_on_a_fixed_batch(tmp_path, records_dir, fixed_batch):
    keras.utils.set_random_seed(0)
    trainer = steps.Trainer(tiny_config(tmp_path, records_dir, g_lr=1e-3, stage1_steps=100))
    history = [trainer.train_step(fixed_batch)["g_loss1"] for _ in range(12)]
    print(f"stage 1 g_loss1: {float(history[0]):.4f} -> {float(history[-1]):.4f}")
    assert float(history[-1]) < 0.8 * float(history[0])
    assert set(trainer.train_step(fixed_batch)) == {"g_loss1", "PoseMaskLoss1"}


def test_stage2_steps_reduce_g_loss2_and_train_only_g2_and_d(tmp_path, records_dir, fixed_batch):
    keras.utils.set_random_seed(0)
    trainer = steps.Trainer(
        tiny_config(tmp_path, records_dir, g_lr=3e-3, d_lr=3e-4, stage1_steps=0)
    )
    g1_before = [v.numpy() for v in trainer.g1.weights]
    d_before = [v.numpy() for v in trainer.d.trainable_weights]
    history = [trainer.train_step(fixed_batch) for _ in range(12)]
    print(
        f"stage 2 g_loss2: {history[0]['g_loss2']:.4f} -> {history[-1]['g_loss2']:.4f}, "
        f"d_loss {history[0]['d_loss']:.4f} -> {history[-1]['d_loss']:.4f}"
    )
    # Each network lowers its own objective; D's progress pushes g_loss2's GAN term up.
    assert float(history[-1]["L1Loss2"]) < 0.85 * float(history[0]["L1Loss2"])
    assert float(history[-1]["d_loss"]) < 0.6 * float(history[0]["d_loss"])
    assert float(history[-1]["g_loss2"]) < float(history[0]["g_loss2"])
    assert set(history[0]) >= {"g_loss2", "d_loss", "L1Loss2", "g2_g1_loss", "PoseMaskLoss2"}
    for before, variable in zip(g1_before, trainer.g1.weights, strict=True):
        np.testing.assert_array_equal(before, variable.numpy())
    assert any(
        not np.array_equal(before, v.numpy())
        for before, v in zip(d_before, trainer.d.trainable_weights, strict=True)
    )
    # D's BN moving statistics are never touched, as in the original.
    np.testing.assert_array_equal(trainer.d.get_layer("Discriminator.BN2").moving_mean.numpy(), 0)


def test_stage_switches_at_stage1_steps(tmp_path, records_dir, fixed_batch):
    trainer = steps.Trainer(tiny_config(tmp_path, records_dir, stage1_steps=1))
    assert "g_loss2" not in trainer.train_step(fixed_batch)
    assert "g_loss2" in trainer.train_step(fixed_batch)
    assert int(trainer.step.numpy()) == 2


def test_resumed_run_gives_the_same_weights_as_an_uninterrupted_run(tmp_path, records_dir):
    tf.config.experimental.enable_op_determinism()
    straight = tiny_config(tmp_path / "straight", records_dir, max_step=4)
    result = loop.train(straight)
    assert (result.step, result.stopped_by) == (4, "max_step")
    first_half = dataclasses.replace(straight, model_dir=str(tmp_path / "resumed"), max_step=2)
    assert loop.train(first_half).checkpoint.endswith("model.ckpt-2")
    resumed = loop.train(dataclasses.replace(first_half, max_step=4))
    assert resumed.checkpoint.endswith("model.ckpt-4")

    def restored(model_dir):
        trainer = steps.Trainer(straight)
        trainer.checkpoint.restore(tf.train.latest_checkpoint(model_dir)).expect_partial()
        return trainer

    a, b = restored(straight.model_dir), restored(first_half.model_dir)
    worst = max(np.abs(x - y).max() for x, y in zip(_weights(a), _weights(b), strict=True))
    print(f"resume: max weight difference {worst:.3g}")
    assert worst == 0.0
    for optimizer in ("g1_optimizer", "g2_optimizer", "d_optimizer"):
        assert int(getattr(a, optimizer).iterations) == int(getattr(b, optimizer).iterations)


def test_training_writes_params_summaries_samples_and_checkpoints(tmp_path, records_dir):
    config = tiny_config(tmp_path, records_dir, max_step=6, log_step=2)
    run_folder.save_params({"model": 1}, config.model_dir)
    loop.train(config)
    names = set(os.listdir(tmp_path))
    assert {"params.json", "checkpoint", "x_fixed.png", "pose_target_fixed.png"} <= names
    assert {"6_G1.png", "6_G2.png", "6_DiffMap.png"} <= names
    assert any(name.startswith("events.out.tfevents") for name in names)
    tags = set()
    for event_file in (tmp_path).glob("events.out.tfevents*"):
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            tags.update(value.tag for value in event.summary.value)
    assert {"loss/g_loss1", "loss/g_loss2", "loss/d_loss", "loss/g2_g1_loss"} <= tags
    assert {"misc/g_lr", "misc/d_lr", "G1", "G2", "DiffMap"} <= tags


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, records_dir, fixed_batch):
    config = tiny_config(tmp_path, records_dir, max_step=2)
    loop.train(config)  # a good checkpoint at step 2
    poisoned = {k: tf.where(tf.ones_like(v, bool), np.nan, v) for k, v in fixed_batch.items()}
    dataset = tf.data.Dataset.from_tensors(poisoned).repeat()
    with pytest.raises(loss_check.TrainingDiverged, match=r"became nan at step 2.*model.ckpt-2"):
        loop.train(dataclasses.replace(config, max_step=5), dataset=dataset)
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("model.ckpt-2")


def test_corrupt_record_stops_with_its_file_and_keeps_the_checkpoint(tmp_path, records_dir):
    records = tmp_path / "records"
    shutil.copytree(records_dir, records)
    config = tiny_config(tmp_path / "model", str(records), max_step=2)
    loop.train(config)
    record_file = records / "Market1501_test_00000-of-00001.tfrecord"
    content = bytearray(record_file.read_bytes())
    content[len(content) // 2] ^= 0xFF
    record_file.write_bytes(bytes(content))
    with pytest.raises(DataError, match=r"Market1501_test_00000-of-00001.tfrecord: record \d+"):
        loop.train(dataclasses.replace(config, max_step=4))
    latest = tf.train.latest_checkpoint(config.model_dir)
    assert latest.endswith("model.ckpt-2")
    trainer = steps.Trainer(config)
    trainer.checkpoint.restore(latest).assert_existing_objects_matched()


def test_a_dataset_that_runs_out_stops_with_a_clear_error_after_saving(
    tmp_path, records_dir, fixed_batch
):
    config = tiny_config(tmp_path, records_dir, max_step=10, stage1_steps=10)
    finite = tf.data.Dataset.from_tensors(fixed_batch).repeat(4)  # 4 batches: steps 0-3
    with pytest.raises(DataError, match=r"ran out at step 4 \(saved .*model.ckpt-4\).*repeat"):
        loop.train(config, dataset=finite)
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("model.ckpt-4")


def test_resume_from_original_tf1_training_checkpoint(tmp_path, records_dir, market_tf1_dir):
    trainer = steps.Trainer(tiny_config(tmp_path, records_dir))
    step = trainer.resume_from_tf1(str(market_tf1_dir / "tf1_checkpoint"))
    assert step == 3  # 2 G1 steps + 1 G2 step in the fixture
    assert [int(o.iterations) for o in (trainer.g1_optimizer, trainer.g2_optimizer)] == [2, 1]
    reader = tf.train.load_checkpoint(str(market_tf1_dir / "tf1_checkpoint/model.ckpt-12800"))
    np.testing.assert_array_equal(
        trainer.d.get_layer("Discriminator.Output").kernel.numpy(),
        reader.get_tensor("Discriminator.Output/Discriminator.Output.W"),
    )


def test_sigterm_saves_a_usable_checkpoint_and_exits_as_stopped(tmp_path, market_tf1_dir):
    data_dir = tmp_path / "data"
    shutil.copytree(market_tf1_dir / "test_data", data_dir / "Market_train_data")
    model_dir = tmp_path / "model"
    command = soak_resume.tiny_training_command(
        data_dir,
        model_dir,
        "--max_step=100000",
        "--stage1_steps=3",
        "--log_step=1000",
        "--progress_bar=false",
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    process = subprocess.Popen(
        command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 120
    while not (model_dir / "x_fixed.png").exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(8)  # let it take some steps
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=120)[0].decode()
    assert process.returncode == 128 + signal.SIGTERM, output  # 143: stopped, not finished
    assert "training stopped (SIGTERM)" in output
    latest = tf.train.latest_checkpoint(str(model_dir))
    steps_done = int(latest.rsplit("-", 1)[-1])
    print(f"SIGTERM after {steps_done} steps; checkpoint {latest}")
    trainer = steps.Trainer(
        tiny_config(model_dir, str(data_dir / "Market_train_data"), batch_size=2, stage1_steps=3)
    )
    trainer.checkpoint.restore(latest).assert_existing_objects_matched()
    assert int(trainer.step.numpy()) == steps_done


def test_xla_compiled_steps_give_the_plain_steps_losses_and_weights(
    tmp_path, records_dir, fixed_batch
):
    trainers = {}
    for xla in (False, True):
        keras.utils.set_random_seed(0)
        trainers[xla] = steps.Trainer(tiny_config(tmp_path / str(xla), records_dir, xla=xla))
    trainers[True].checkpoint.read(trainers[False].checkpoint.write(str(tmp_path / "init")))
    for step in (0, 2):  # a stage-1 step, then a stage-2 step (stage1_steps=2)
        plain, compiled = (trainers[xla].train_step(fixed_batch, step) for xla in (False, True))
        for name in plain:
            np.testing.assert_allclose(float(compiled[name]), float(plain[name]), rtol=1e-4)
    # Adam divides each gradient by its own magnitude, so where a gradient is round-off (D's
    # conv biases in front of a batch norm, whose true gradient is 0, and a few elements near
    # epsilon) a different summation order in XLA's kernels moves the weight by up to +-lr.
    # Everything else agrees to float precision.
    compiled, plain = (
        np.concatenate([w.ravel() for w in _weights(trainers[x])]) for x in (True, False)
    )
    difference = np.abs(compiled - plain)
    learning_rate = trainers[False].config.g_lr
    print(f"XLA vs plain: {np.mean(difference > 1e-6):.2e} of weights differ by > 1e-6")
    assert np.mean(difference > 1e-6) < 1e-3
    assert difference.max() <= 2 * learning_rate + 1e-7


def test_both_schedules_update_g2_alike_but_only_the_original_shows_d_the_updated_g2(
    tmp_path, records_dir, fixed_batch
):
    """One stage-2 step from the same weights on the same batch (D's batch = G2's): G2's update
    is the same (g_loss2 of the same weights and batch); D's differs, since under the original
    schedule D's gradient is taken after G2's update, under the fused one before it."""
    trainers = {}
    for schedule in ("original", "fused"):
        keras.utils.set_random_seed(0)
        config = tiny_config(tmp_path / schedule, records_dir, stage1_steps=0, g_lr=1e-3)
        trainers[schedule] = steps.Trainer(dataclasses.replace(config, stage2_schedule=schedule))
    trainers["fused"].checkpoint.read(trainers["original"].checkpoint.write(str(tmp_path / "w")))
    losses = {s: t.train_step(fixed_batch, d_batch=fixed_batch) for s, t in trainers.items()}
    assert float(losses["original"]["g_loss2"]) == pytest.approx(float(losses["fused"]["g_loss2"]))

    def max_difference(network):
        pairs = zip(
            *(getattr(trainers[s], network).trainable_weights for s in trainers), strict=True
        )
        return max(float(np.abs(a.numpy() - b.numpy()).max()) for a, b in pairs)

    assert max_difference("g2") < 1e-6
    assert float(losses["original"]["d_loss"]) != float(losses["fused"]["d_loss"])
    assert max_difference("d") > 1e-7


def test_an_unknown_stage2_schedule_is_refused_in_one_line(tmp_path, records_dir):
    config = tiny_config(tmp_path, records_dir, stage2_schedule="alternating")
    with pytest.raises(ConfigError, match="--stage2_schedule='alternating': use one of original"):
        steps.Trainer(config)
