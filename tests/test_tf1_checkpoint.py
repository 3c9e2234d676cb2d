"""Original TF1 checkpoints map completely onto our models; bad loads fail clearly and atomically."""

import json
import pathlib

import numpy as np
import pytest
import tensorflow as tf

from pg2_tf.core.errors import CheckpointError
from pg2_tf.networks import models, tf1_checkpoint
from pg2_tf.training import steps

REFERENCE = pathlib.Path(__file__).resolve().parent / "fixtures" / "reference"
SMALL = dict(conv_hidden_num=8, z_num=64, d_dim=8)


def _manifest_without_optimizer(manifest: dict) -> dict:
    return {
        name: shape
        for name, shape in manifest.items()
        if tf1_checkpoint.role_of(name) and "/Adam" not in name
    }


@pytest.fixture(scope="module")
def small_market():
    return models.build(1, 128, 64, **SMALL)


@pytest.mark.parametrize(
    "manifest_name, model, img_H, img_W",
    [("tf1_variables_market_h128.json", 1, 128, 64), ("tf1_variables_df_h128.json", 11, 256, 256)],
)
def test_full_size_manifest_maps_every_name_and_shape(manifest_name, model, img_H, img_W):
    manifest = json.loads((REFERENCE / manifest_name).read_text())
    g1, g2, d = models.build(model, img_H, img_W, conv_hidden_num=128, z_num=64, d_dim=64)
    ours = {
        name: list(variable.shape) for name, variable in tf1_checkpoint.name_map(g1, g2, d).items()
    }
    assert ours == _manifest_without_optimizer(manifest)
    # Every trainable variable, and nothing else, has both Adam slots in the original.
    trainable = {
        tf1_checkpoint.tf1_name(role, v)
        for role, m in (("g1", g1), ("g2", g2), ("d", d))
        for v in m.trainable_weights
    }
    slotted = {name[: -len("/Adam")] for name in manifest if name.endswith("/Adam")}
    assert slotted == trainable
    print(f"manifest {manifest_name}: {len(ours)} variables map, {len(trainable)} with Adam slots")


def test_fixture_checkpoint_variables_all_map(small_market, market_tf1_dir):
    manifest = json.loads((market_tf1_dir / "tf1_variables.json").read_text())
    ours = {n: list(v.shape) for n, v in tf1_checkpoint.name_map(*small_market).items()}
    assert ours == _manifest_without_optimizer(manifest)


def test_load_accepts_directory_and_prefix(small_market, market_tf1_dir):
    directory = market_tf1_dir / "tf1_checkpoint"
    assert tf1_checkpoint.load(directory, *small_market).endswith("model.ckpt-12800")
    prefix = str(directory / "model.ckpt-12800")
    assert tf1_checkpoint.load(prefix, *small_market) == prefix


def test_generator_only_load_leaves_discriminator_untouched(market_tf1_dir):
    g1, g2, d = models.build(1, 128, 64, **SMALL)
    before = [v.numpy().copy() for v in d.weights]
    tf1_checkpoint.load(market_tf1_dir / "tf1_checkpoint", g1, g2)
    reader = tf.train.load_checkpoint(str(market_tf1_dir / "tf1_checkpoint/model.ckpt-12800"))
    np.testing.assert_array_equal(
        g1.get_layer("Conv_7").kernel.numpy(), reader.get_tensor("Pose_AE/G/Conv_7/weights")
    )
    for value, variable in zip(before, d.weights, strict=True):
        np.testing.assert_array_equal(value, variable.numpy())


def test_market_checkpoint_into_deepfashion_model_names_the_flags(market_tf1_dir):
    g1, g2, d = models.build(11, 256, 256, **SMALL)
    with pytest.raises(CheckpointError) as error:
        tf1_checkpoint.load(market_tf1_dir / "tf1_checkpoint", g1, g2, d)
    message = str(error.value)
    assert "--model=1 --img_H=128 --img_W=64" in message
    assert "missing from the checkpoint" in message and "Pose_AE/G/Conv_35/weights" in message


def test_other_conv_hidden_num_names_the_flag(market_tf1_dir):
    g1, g2, d = models.build(1, 128, 64, conv_hidden_num=16, z_num=64, d_dim=8)
    with pytest.raises(CheckpointError, match="--conv_hidden_num=8"):
        tf1_checkpoint.load(market_tf1_dir / "tf1_checkpoint", g1, g2, d)


def test_other_d_dim_names_the_flag(market_tf1_dir):
    g1, g2, d = models.build(1, 128, 64, conv_hidden_num=8, z_num=64, d_dim=64)
    with pytest.raises(CheckpointError, match="--d_dim=8"):
        tf1_checkpoint.load(market_tf1_dir / "tf1_checkpoint", g1, g2, d)


def test_failed_load_leaves_models_unchanged(market_tf1_dir):
    g1, g2, d = models.build(1, 128, 64, conv_hidden_num=8, z_num=64, d_dim=64)
    before = [v.numpy().copy() for m in (g1, g2, d) for v in m.weights]
    with pytest.raises(CheckpointError):
        tf1_checkpoint.load(market_tf1_dir / "tf1_checkpoint", g1, g2, d)
    after = [v.numpy() for m in (g1, g2, d) for v in m.weights]
    for value_before, value_after in zip(before, after, strict=True):
        np.testing.assert_array_equal(value_before, value_after)


def test_missing_checkpoint_names_the_path(small_market, tmp_path):
    with pytest.raises(CheckpointError, match=r"no checkpoint at .*nowhere/model.ckpt-1"):
        tf1_checkpoint.load(tmp_path / "nowhere" / "model.ckpt-1", *small_market)


def test_directory_without_state_file_says_to_pass_prefix(small_market, tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint prefix"):
        tf1_checkpoint.load(tmp_path, *small_market)


def test_data_file_instead_of_prefix_suggests_the_prefix(small_market, market_tf1_dir):
    data_file = market_tf1_dir / "tf1_checkpoint/model.ckpt-12800.data-00000-of-00001"
    with pytest.raises(CheckpointError, match=r"pass its prefix instead: .*model.ckpt-12800$"):
        tf1_checkpoint.load(data_file, *small_market)


def test_adam_steps_and_slots_read_from_original_checkpoint(market_tf1_dir):
    # The fixture took 2 G1 steps, then 1 G2 and 1 D step.
    states = tf1_checkpoint.read_adam_states(market_tf1_dir / "tf1_checkpoint")
    assert {role: s.steps for role, s in states.items()} == {"g1": 2, "g2": 1, "d": 1}
    assert len(states["g1"].first_moments) == 64 and len(states["g2"].second_moments) == 32
    assert len(states["d"].first_moments) == 16  # BN moving statistics have no slots


@pytest.mark.parametrize("steps", [0, 1, 147, 22000, 80000])
def test_adam_step_count_inverts_float32_power_accumulators(steps):
    beta1_power, beta2_power = np.float32(0.5), np.float32(0.999)
    for _ in range(steps):
        beta1_power = np.float32(beta1_power * np.float32(0.5))
        beta2_power = np.float32(beta2_power * np.float32(0.999))
    power, beta = (beta1_power, 0.5) if beta1_power > 2.0**-140 else (beta2_power, 0.999)
    assert tf1_checkpoint._steps_from_power(power, beta) == steps


def _tf1_adam_step(initial, slots, gradient, steps_taken):
    """One tf.compat.v1.train.AdamOptimizer(2e-5, beta1=0.5) step in a TF1 graph."""
    graph = tf.Graph()
    with graph.as_default():
        variable = tf.compat.v1.Variable(initial, name="w")
        optimizer = tf.compat.v1.train.AdamOptimizer(2e-5, beta1=0.5)
        apply = optimizer.apply_gradients([(tf.constant(gradient), variable)])
        beta1_power, beta2_power = optimizer._get_beta_accumulators()
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            session.run(optimizer.get_slot(variable, "m").assign(slots[0]))
            session.run(optimizer.get_slot(variable, "v").assign(slots[1]))
            session.run(beta1_power.assign(0.5 ** (steps_taken + 1)))
            session.run(beta2_power.assign(0.999 ** (steps_taken + 1)))
            session.run(apply)
            return session.run(variable)


def test_keras_adam_resumed_from_original_moves_weights_as_tf1_adam(market_tf1_dir):
    g1, g2, d = models.build(1, 128, 64, **SMALL)
    tf1_checkpoint.load(market_tf1_dir / "tf1_checkpoint", g1, g2, d)
    state = tf1_checkpoint.read_adam_states(market_tf1_dir / "tf1_checkpoint")["g1"]
    g1_variables = {
        name: v
        for name, v in tf1_checkpoint.name_map(g1, g2, d).items()
        if tf1_checkpoint.role_of(name) == "g1"
    }
    optimizer = steps.make_adam()
    tf1_checkpoint.restore_adam(optimizer, g1_variables, state)

    name = "Pose_AE/G/Conv_7/weights"
    variable = g1_variables[name]
    initial = variable.numpy().copy()
    gradients = [
        np.random.default_rng(i).normal(size=v.shape).astype(np.float32) * 1e-3
        for i, v in enumerate(g1_variables.values())
    ]
    optimizer.apply_gradients(zip(gradients, g1_variables.values(), strict=True))

    index = list(g1_variables).index(name)
    expected = _tf1_adam_step(
        initial,
        (state.first_moments[name], state.second_moments[name]),
        gradients[index],
        state.steps,
    )
    moved = np.abs(expected - initial).max()
    print(
        f"adam parity: max move {moved:.3g}, max diff {np.abs(variable.numpy() - expected).max():.3g}"
    )
    assert moved > 1e-6
    np.testing.assert_allclose(variable.numpy(), expected, rtol=0, atol=1e-3 * moved)
    assert int(optimizer.iterations.numpy()) == state.steps + 1


def test_keras_adam_first_step_from_scratch_matches_tf1_adam():
    initial = np.random.default_rng(0).normal(size=(3, 3, 4, 5)).astype(np.float32)
    gradient = np.random.default_rng(1).normal(size=initial.shape).astype(np.float32)
    variable = tf.Variable(initial)
    optimizer = steps.make_adam()
    optimizer.apply_gradients([(tf.constant(gradient), variable)])
    zeros = np.zeros_like(initial)
    expected = _tf1_adam_step(initial, (zeros, zeros), gradient, steps_taken=0)
    np.testing.assert_allclose(variable.numpy(), expected, rtol=0, atol=1e-9)
