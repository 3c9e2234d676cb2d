"""SavedModel export: plain-TensorFlow serving that reproduces the original test output.

Fixture: the ORIGINAL TF1 checkpoint of tests/fixtures/market_tf1 (Market 128x64, conv_hidden_num 8)
and what the original test mode wrote for its 24 records (expected_test_result/G).
"""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from pg2_tf.core import pose
from pg2_tf.core.errors import CheckpointError, ConfigError
from pg2_tf.networks import models, tf1_checkpoint
from pg2_tf.serving import contract, export_lib, graph

SMALL = dict(model=1, img_H=128, img_W=64, conv_hidden_num=8, z_num=64)
SUBPROCESS_ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def _fixture_inputs(reference_outputs):
    return reference_outputs["x_uint8"], reference_outputs["pose_target_01"].astype(
        np.float32
    ) * 2 - 1


def _expected_g(market_tf1_dir):
    folder = market_tf1_dir / "expected_test_result" / "G"
    return np.stack([np.asarray(Image.open(folder / f"{i:05d}.png")) for i in range(24)])


def _folder_entries(path):
    return sorted(os.listdir(path))


@pytest.fixture(scope="module")
def tf1_export(tmp_path_factory, market_tf1_dir):
    """The fixture's original checkpoint exported through the command line."""
    export_dir = tmp_path_factory.mktemp("cli") / "market"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pg2_tf.export",
            f"--pretrained_path={market_tf1_dir / 'tf1_checkpoint' / 'model.ckpt-12800'}",
            "--model=1",
            "--img_H=128",
            "--img_W=64",
            "--conv_hidden_num=8",
            f"--export_dir={export_dir}",
        ],
        capture_output=True,
        text=True,
        env=SUBPROCESS_ENV,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"exported SavedModel to {export_dir}" in result.stdout
    return export_dir


@pytest.fixture(scope="module")
def fixture_generators(market_tf1_dir):
    g1, g2, _ = models.build(1, 128, 64, conv_hidden_num=8, z_num=64, d_dim=8)
    tf1_checkpoint.load(market_tf1_dir / "tf1_checkpoint", g1, g2)
    return g1, g2


def test_plain_tensorflow_process_reproduces_original_test_images(
    tf1_export, market_tf1_dir, reference_outputs, tmp_path
):
    image, pose_target = _fixture_inputs(reference_outputs)
    np.savez(tmp_path / "inputs.npz", image=image, pose_target=pose_target)
    script = textwrap.dedent(
        """
        import sys
        sys.modules["pg2_tf"] = None  # any import of this package fails
        import numpy as np
        import tensorflow as tf

        saved_model, inputs_path, outputs_path = sys.argv[1:]
        inputs = np.load(inputs_path)
        serve = tf.saved_model.load(saved_model).signatures["serving_default"]
        outputs = serve(image=tf.constant(inputs["image"]),
                        pose_target=tf.constant(inputs["pose_target"]))
        np.savez(outputs_path, **{name: value.numpy() for name, value in outputs.items()})
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tf1_export), str(tmp_path / "inputs.npz"),
         str(tmp_path / "outputs.npz")],
        capture_output=True, text=True, cwd=tmp_path, env=SUBPROCESS_ENV,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = np.load(tmp_path / "outputs.npz")
    assert sorted(outputs.files) == ["G1", "G2", "diff_map"]
    assert all(outputs[name].dtype == np.uint8 for name in outputs.files)
    difference = np.abs(outputs["G2"].astype(int) - _expected_g(market_tf1_dir))
    print(
        f"parity SavedModel G2 vs original G/*.png: max {difference.max()} grey levels, "
        f"{np.count_nonzero(difference)} of {difference.size} values differ"
    )
    assert difference.max() <= 1


def test_outputs_are_the_original_uint8_encoding_of_g1_and_diff_map(tf1_export, reference_outputs):
    image, pose_target = _fixture_inputs(reference_outputs)
    serve = tf.saved_model.load(str(tf1_export)).signatures["serving_default"]
    outputs = serve(image=tf.constant(image[:4]), pose_target=tf.constant(pose_target[:4]))
    expected_g1 = np.clip((reference_outputs["G1"][:4] + 1) * 127.5, 0, 255).astype(np.uint8)
    expected_diff = reference_outputs["G2"][:4] - reference_outputs["G1"][:4]
    expected_diff = np.clip((expected_diff + 1) * 127.5, 0, 255).astype(np.uint8)
    assert np.abs(outputs["G1"].numpy().astype(int) - expected_g1).max() <= 1
    assert np.abs(outputs["diff_map"].numpy().astype(int) - expected_diff).max() <= 1


def test_metadata_records_the_configuration(tf1_export):
    with open(tf1_export / "assets" / contract.METADATA_FILE) as f:
        metadata = json.load(f)
    assert {key: metadata[key] for key in SMALL} == SMALL
    assert metadata["signatures"] == ["serving_default", "from_keypoints"]
    assert contract.read_metadata(tf1_export) == metadata


def test_each_generator_weight_is_stored_once(tf1_export, fixture_generators):
    g1, g2 = fixture_generators
    stored = [
        shape
        for name, shape in tf.train.list_variables(str(tf1_export / "variables" / "variables"))
        if name != "_CHECKPOINTABLE_OBJECT_GRAPH"
    ]
    assert sorted(map(tuple, stored)) == sorted(tuple(w.shape) for w in g1.weights + g2.weights)


# Joints at corners, past the borders, fractional, and missing by row or column only.
EDGE_KEYPOINTS = np.array(
    [
        [0, 0], [127, 63], [-3, 10], [130, 30], [60, 66], [2.7, 61.9], [-0.5, 5], [-1, 20],
        [40, -1], [64, 32], [131.9, -4.9], [100, 10], [-1, -1], [70.2, 40.8], [5, 3],
        [120, 60], [30.5, 33.5], [-4.2, 67.6],
    ],
    np.float32,
)  # fmt: skip


def _keypoint_batch():
    typical = np.array(
        [[20, 32], [30, 32], [30, 22], [50, 20], [70, 18], [30, 42], [50, 44], [70, 46],
         [70, 26], [95, 26], [120, 26], [70, 38], [95, 38], [120, 38], [18, 30], [18, 34],
         [-1, -1], [19, 36]],
        np.float32,
    )  # fmt: skip
    return np.stack([typical, EDGE_KEYPOINTS])


def test_graph_pose_map_equals_numpy_render_pose_map():
    keypoints = _keypoint_batch()
    ours = graph.render_pose_maps(keypoints, 128, 64).numpy()
    theirs = np.stack([pose.render_pose_map(k, 128, 64, radius=4) for k in keypoints])
    assert ours.shape == (2, 128, 64, 18) and ours.dtype == np.float32
    np.testing.assert_array_equal(ours, theirs)


def test_from_keypoints_equals_serving_default_on_rendered_pose(tf1_export, reference_outputs):
    keypoints = _keypoint_batch()
    image = reference_outputs["x_uint8"][:2]
    pose_maps = np.stack([pose.render_pose_map(k, 128, 64) for k in keypoints])
    signatures = tf.saved_model.load(str(tf1_export)).signatures
    by_map = signatures["serving_default"](image=image, pose_target=pose_maps)
    by_keypoints = signatures["from_keypoints"](image=image, keypoints=keypoints)
    for name in contract.OUTPUT_NAMES:
        np.testing.assert_array_equal(by_keypoints[name].numpy(), by_map[name].numpy())


def test_export_from_our_object_graph_checkpoint(
    fixture_generators, market_tf1_dir, reference_outputs, tmp_path
):
    g1, g2 = fixture_generators
    _, _, d = models.build(1, 128, 64, conv_hidden_num=8, z_num=64, d_dim=8)
    step = tf.Variable(123, dtype=tf.int64)
    optimizer = keras.optimizers.Adam()
    optimizer.build(g1.trainable_variables)
    checkpoint = tf.train.Checkpoint(g1=g1, g2=g2, d=d, g1_optimizer=optimizer, step=step)
    model_dir = tmp_path / "model_dir"
    tf.train.CheckpointManager(
        checkpoint, model_dir, max_to_keep=2, checkpoint_name="model.ckpt"
    ).save()

    export_dir = export_lib.export_from_checkpoint(model_dir, tmp_path / "exported", **SMALL)

    image, pose_target = _fixture_inputs(reference_outputs)
    serve = tf.saved_model.load(export_dir).signatures["serving_default"]
    g2_out = serve(image=image[:8], pose_target=pose_target[:8])["G2"].numpy()
    assert np.abs(g2_out.astype(int) - _expected_g(market_tf1_dir)[:8]).max() <= 1


def test_our_checkpoint_of_another_width_is_refused_with_hint(fixture_generators, tmp_path):
    g1, g2 = fixture_generators
    prefix = tf.train.Checkpoint(g1=g1, g2=g2).write(str(tmp_path / "ours" / "model.ckpt-1"))
    with pytest.raises(CheckpointError, match=r"the checkpoint has conv_hidden_num=8, z_num=64"):
        export_lib.export_from_checkpoint(
            prefix, tmp_path / "out", **{**SMALL, "conv_hidden_num": 16}
        )
    assert _folder_entries(tmp_path) == ["ours"]


def test_checkpoint_of_another_width_is_refused_with_hint(market_tf1_dir, tmp_path):
    with pytest.raises(CheckpointError, match="use --conv_hidden_num=8"):
        export_lib.export_from_checkpoint(
            market_tf1_dir / "tf1_checkpoint", tmp_path / "out", **{**SMALL, "conv_hidden_num": 16}
        )
    assert _folder_entries(tmp_path) == []


def test_missing_checkpoint_leaves_nothing(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at .*missing/model.ckpt-1"):
        export_lib.export_from_checkpoint(
            tmp_path / "missing" / "model.ckpt-1", tmp_path / "out", **SMALL
        )
    assert _folder_entries(tmp_path) == []


def test_object_graph_checkpoint_without_generators_is_refused(tmp_path):
    prefix = tf.train.Checkpoint(other=tf.Variable(1.0)).write(str(tmp_path / "other" / "ckpt"))
    with pytest.raises(CheckpointError, match="generator variables missing, e.g. g1/"):
        export_lib.export_from_checkpoint(prefix, tmp_path / "out", **SMALL)
    assert _folder_entries(tmp_path) == ["other"]


def test_name_based_checkpoint_without_pg2_variables_is_refused(tmp_path):
    prefix = str(tmp_path / "foreign" / "model.ckpt-1")
    tf.raw_ops.SaveV2(
        prefix=prefix, tensor_names=["foo/bar"], shape_and_slices=[""], tensors=[tf.constant(1.0)]
    )
    with pytest.raises(CheckpointError, match="neither an original PG2 checkpoint"):
        export_lib.export_from_checkpoint(prefix, tmp_path / "out", **SMALL)
    assert _folder_entries(tmp_path) == ["foreign"]


def _fake_previous_export(export_dir):
    export_dir.mkdir()
    (export_dir / "saved_model.pb").write_bytes(b"previous export")
    (export_dir / "variables").mkdir()  # what an export writes, with a file of its own
    (export_dir / "variables" / "stale_file").write_text("from the previous export")


def test_failure_while_writing_keeps_previous_export_and_leaves_no_temporary(
    fixture_generators, tmp_path, monkeypatch
):
    export_dir = tmp_path / "market"
    _fake_previous_export(export_dir)

    staging_dirs = []

    def fail_after_saved_model_is_written(saved_model_dir, metadata):
        staging_dirs.append(saved_model_dir)
        assert os.path.isfile(os.path.join(saved_model_dir, "saved_model.pb"))
        raise OSError("disk full")

    monkeypatch.setattr(export_lib, "_write_metadata", fail_after_saved_model_is_written)
    with pytest.raises(OSError, match="disk full"):
        export_lib.export_saved_model(*fixture_generators, export_dir, 128, 64)
    assert os.path.dirname(staging_dirs[0]) == str(tmp_path)  # written beside export_dir
    assert _folder_entries(tmp_path) == ["market"]
    assert (export_dir / "saved_model.pb").read_bytes() == b"previous export"


def test_previous_export_is_replaced_after_success(fixture_generators, tmp_path):
    export_dir = tmp_path / "market"
    _fake_previous_export(export_dir)
    assert export_lib.export_saved_model(*fixture_generators, export_dir, 128, 64) == str(
        export_dir
    )
    assert _folder_entries(tmp_path) == ["market"]
    assert not (export_dir / "variables" / "stale_file").exists()
    assert (export_dir / "saved_model.pb").read_bytes() != b"previous export"
    assert contract.read_metadata(export_dir)["conv_hidden_num"] == 8


def test_existing_folder_that_is_not_an_export_is_refused(fixture_generators, tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="exists and is not a SavedModel folder"):
        export_lib.export_saved_model(*fixture_generators, tmp_path, 128, 64)
    assert _folder_entries(tmp_path) == ["notes.txt"]


def test_a_previous_export_with_other_files_beside_it_is_refused_and_kept(
    fixture_generators, tmp_path
):
    export_lib.export_saved_model(*fixture_generators, tmp_path / "out", 128, 64)
    (tmp_path / "out" / "notes.txt").write_text("keep me")
    before = _folder_entries(tmp_path / "out")
    with pytest.raises(ConfigError, match=r"also notes.txt, which an export does not write"):
        export_lib.export_saved_model(*fixture_generators, tmp_path / "out", 128, 64)
    assert _folder_entries(tmp_path / "out") == before
