"""--mixed_precision: low-precision compute, float32 variables, losses and checkpoints."""

import logging

import keras
import numpy as np
import pytest
import tensorflow as tf
from absl import logging as absl_logging

from pg2_tf.core import hardware
from pg2_tf.core.configs import TrainConfig
from pg2_tf.training import precision, steps


@pytest.fixture(autouse=True)
def float32_policy_afterwards():
    yield
    keras.mixed_precision.set_global_policy("float32")


def tiny_config(model_dir, **overrides):
    settings = dict(
        conv_hidden_num=8,
        d_dim=8,
        batch_size=4,
        stage1_steps=3,
        g_lr=1e-3,
        d_lr=1e-3,
        model_dir=str(model_dir),
        progress_bar=False,
    )
    settings.update(overrides)
    return TrainConfig(**settings)


def _saved_variables(trainer):
    """The networks' weights and the three Adams' variables (moments, iterations)."""
    weights = [v for m in (trainer.g1, trainer.g2, trainer.d) for v in m.weights]
    optimizers = (trainer.g1_optimizer, trainer.g2_optimizer, trainer.d_optimizer)
    return weights + [v for optimizer in optimizers for v in optimizer.variables]


def _checkpoint_keys(prefix):
    return sorted(name for name, _ in tf.train.list_variables(prefix))


@pytest.fixture
def native_bfloat16(monkeypatch):
    """This CPU counts as computing bfloat16 natively (the bfloat16 path runs, if slowly,
    on any CPU; the tests below check its numbers, not its speed)."""
    monkeypatch.setattr(
        hardware, "bfloat16_support", lambda: hardware.Bfloat16Support(True, "assumed")
    )


def test_a_cpu_with_native_bfloat16_gets_mixed_bfloat16(native_bfloat16):
    assert not tf.config.list_logical_devices("GPU")
    assert precision.mixed_precision_policy() == "mixed_bfloat16"


def test_a_cpu_without_native_bfloat16_keeps_float32_and_says_why(monkeypatch, caplog):
    reason = "the CPU has no bfloat16 instructions (avx512_bf16 or amx_bf16)"
    monkeypatch.setattr(
        hardware, "bfloat16_support", lambda: hardware.Bfloat16Support(False, reason)
    )
    monkeypatch.setattr(absl_logging, "_log_counter_per_token", {})  # log_first_n's memory
    with caplog.at_level(logging.WARNING):
        assert precision.mixed_precision_policy() == "float32"
        trainer = steps.Trainer(tiny_config("unused", mixed_precision=True))
    assert trainer.dtype_policy == "float32"
    warnings = [
        r.getMessage() for r in caplog.records if r.name == "absl" and r.levelno == logging.WARNING
    ]
    assert warnings == [
        f"--mixed_precision: {reason}, so bfloat16 would run about 12x slower than float32; "
        "computing in float32"
    ]


def test_bfloat16_trainer_keeps_float32_variables_and_losses_and_learns(
    tmp_path, fixed_batch, native_bfloat16
):
    keras.utils.set_random_seed(0)
    trainer = steps.Trainer(tiny_config(tmp_path, mixed_precision=True, stage1_steps=10))
    assert trainer.dtype_policy == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == "float32"  # restored after building
    assert {v.dtype for m in (trainer.g1, trainer.g2, trainer.d) for v in m.weights} == {"float32"}
    history = [trainer.train_step(fixed_batch) for _ in range(10)]
    assert all(loss.dtype == tf.float32 for loss in history[-1].values())
    print(f"bfloat16 g_loss1 {float(history[0]['g_loss1']):.4f} -> {history[-1]['g_loss1']:.4f}")
    assert float(history[-1]["g_loss1"]) < 0.85 * float(history[0]["g_loss1"])
    g1, g2, diff_map = trainer.generate(fixed_batch["x"], fixed_batch["pose_target"])
    assert g1.dtype == g2.dtype == diff_map.dtype == tf.float32


def test_bfloat16_outputs_match_float32_on_the_same_weights(tmp_path, fixed_batch, native_bfloat16):
    keras.utils.set_random_seed(0)
    full = steps.Trainer(tiny_config(tmp_path / "f32"))
    mixed = steps.Trainer(tiny_config(tmp_path / "bf16", mixed_precision=True))
    for model_full, model_mixed in zip(
        (full.g1, full.g2, full.d), (mixed.g1, mixed.g2, mixed.d), strict=True
    ):
        model_mixed.set_weights(model_full.get_weights())
    expected = full.generate(fixed_batch["x"], fixed_batch["pose_target"])
    got = mixed.generate(fixed_batch["x"], fixed_batch["pose_target"])
    worst = max(float(tf.reduce_max(tf.abs(a - b))) for a, b in zip(expected, got, strict=True))
    print(f"bfloat16 vs float32 G1/G2/DiffMap: max difference {worst:.4f} (image scale [-1, 1])")
    # bfloat16 keeps 8 bits of mantissa; through G1 and G2's 30 layers that is a few grey
    # levels (measured 0.027, 3.4 levels); a wrong cast or a float16 overflow is far larger.
    assert worst < 0.05


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_checkpoints_are_the_same_with_and_without_mixed_precision(
    policy, tmp_path, fixed_batch, monkeypatch
):
    # mixed_float16 is what a GPU gets; its loss-scaling path runs on the CPU too.
    monkeypatch.setattr(precision, "mixed_precision_policy", lambda: policy)
    keras.utils.set_random_seed(0)
    mixed = steps.Trainer(tiny_config(tmp_path / "mixed", mixed_precision=True, stage1_steps=1))
    assert mixed.dtype_policy == policy
    for _ in range(2):  # one stage-1 and one stage-2 step: every optimiser has slots
        losses = mixed.train_step(fixed_batch)
    assert all(np.isfinite(float(value)) for value in losses.values())
    mixed_prefix = mixed.checkpoint.save(str(tmp_path / "mixed" / "model.ckpt"))

    full = steps.Trainer(tiny_config(tmp_path / "f32", stage1_steps=1))
    for _ in range(2):
        full.train_step(fixed_batch)
    full_prefix = full.checkpoint.save(str(tmp_path / "f32" / "model.ckpt"))
    assert _checkpoint_keys(mixed_prefix) == _checkpoint_keys(full_prefix)

    # A float32 run resumes the mixed one: every weight, slot and the step.
    full.checkpoint.restore(mixed_prefix).assert_existing_objects_matched()
    assert int(full.step.numpy()) == 2
    for a, b in zip(_saved_variables(mixed), _saved_variables(full), strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
