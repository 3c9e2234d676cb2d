"""pg2-generate: a person image + target keypoints (OpenPose JSON or annotation CSV) -> PNG."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from pg2_tf import generate
from pg2_tf.errors import CheckpointError, ConfigError, DataError

SUBPROCESS_ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}

# A standing person in the 128x64 frame, COCO-18 order, (row, col); the left ear is missing.
TARGET_RC = np.array(
    [[20, 32], [30, 32], [30, 22], [50, 20], [70, 18], [30, 42], [50, 44], [70, 46],
     [70, 26], [95, 26], [120, 26], [70, 38], [95, 38], [120, 38], [18, 30], [18, 34],
     [19, 28], [-1, -1]],
    np.float32,
)  # fmt: skip


def _openpose_json(path, keypoints_rc, extra_people=0):
    triples = []
    for row, col in keypoints_rc:
        triples += [0, 0, 0] if row == -1 else [float(col), float(row), 0.9]
    people = [{"person_id": [-1], "pose_keypoints_2d": triples}] * (1 + extra_people)
    path.write_text(json.dumps({"version": 1.3, "people": people}))
    return path


def _annotation_csv(path, rows):
    lines = ["name:keypoints_y:keypoints_x"]
    for name, keypoints_rc in rows.items():
        ys = [int(v) for v in keypoints_rc[:, 0]]
        xs = [int(v) for v in keypoints_rc[:, 1]]
        lines.append(f"{name}: {ys}: {xs}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def saved_model(market_saved_model):
    return market_saved_model


@pytest.fixture(scope="module")
def signatures(saved_model):
    import tensorflow as tf

    return tf.saved_model.load(saved_model).signatures


@pytest.fixture
def person_png(tmp_path, reference_outputs):
    path = tmp_path / "person.png"
    Image.fromarray(reference_outputs["x_uint8"][3]).save(path)
    return path


def _read(path):
    return np.asarray(Image.open(path))


# ---- keypoint files --------------------------------------------------------------------------


def test_openpose_json_gives_row_col_and_zero_confidence_is_missing(tmp_path):
    path = tmp_path / "pose.json"
    triples = [0.0] * 54
    triples[0:3] = [31.5, 20.25, 0.8]  # nose: x, y, confidence
    triples[3:6] = [40, 50, 0]  # neck: confidence 0 -> missing
    path.write_text(json.dumps({"people": [{"pose_keypoints_2d": triples}]}))
    keypoints = generate.load_keypoints(path)
    assert keypoints.shape == (18, 2)
    np.testing.assert_array_equal(keypoints[0], [20.25, 31.5])
    np.testing.assert_array_equal(keypoints[1:], -1)


def test_csv_row_is_chosen_by_name(tmp_path):
    other = np.full((18, 2), 7, np.float32)
    path = _annotation_csv(tmp_path / "a.csv", {"first.jpg": other, "target.jpg": TARGET_RC})
    np.testing.assert_array_equal(generate.load_keypoints(path, "target.jpg"), TARGET_RC)


def test_csv_joint_with_one_coordinate_missing_is_missing(tmp_path):
    path = tmp_path / "a.csv"
    ys, xs = [10] * 18, [20] * 18
    xs[4] = -1
    path.write_text(f"name:keypoints_y:keypoints_x\nonly.jpg: {ys}: {xs}\n")
    keypoints = generate.load_keypoints(path)  # a one-row CSV needs no --keypoints_row
    np.testing.assert_array_equal(keypoints[4], [-1, -1])
    np.testing.assert_array_equal(keypoints[5], [10, 20])


# ---- fitting images of another size ------------------------------------------------------------


def test_larger_image_is_scaled_to_fit_and_padded_keypoints_follow():
    image = np.zeros((256, 176, 3), np.uint8)
    keypoints = np.array([[100, 88], [-1, -1]] + [[0, 0]] * 16, np.float32)
    fitted, moved, placement = generate.fit_to_model(image, keypoints, 128, 64)
    assert fitted.shape == (128, 64, 3)
    assert placement.scaled_size == (93, 64) and placement.offset == (17, 0)
    # Pixel centres map: row (100.5 * 93/256 - 0.5) = 36.0 -> 36 + 17; col 88.5 * 64/176 - 0.5.
    np.testing.assert_array_equal(moved[0], [53, 32])
    np.testing.assert_array_equal(moved[1], [-1, -1])
    assert placement.describe() == (
        "image 256x176 resized to 93x64 (aspect kept), padded to 128x64 (top 17, bottom 18, "
        "left 0, right 0) by repeating its edge pixels; keypoints moved the same way"
    )


def test_narrower_image_is_only_padded_with_its_edge_columns():
    image = np.arange(128 * 48 * 3, dtype=np.uint32).reshape(128, 48, 3).astype(np.uint8)
    keypoints = np.array([[10.7, 5.2]] * 18, np.float32)
    fitted, moved, placement = generate.fit_to_model(image, keypoints, 128, 64)
    np.testing.assert_array_equal(fitted[:, 8:56], image)
    np.testing.assert_array_equal(fitted[:, :8], np.repeat(image[:, :1], 8, axis=1))
    np.testing.assert_array_equal(moved[0], [10, 13])  # the pixel trunc() marks, shifted by 8
    assert generate.restore_input_size(fitted, placement).shape == (128, 48, 3)


# ---- generation ------------------------------------------------------------------------------


def test_openpose_json_writes_the_from_keypoints_outputs(
    saved_model, signatures, person_png, tmp_path
):
    keypoints = _openpose_json(tmp_path / "target.json", TARGET_RC)
    messages = []
    paths = generate.generate(
        saved_model, person_png, keypoints, tmp_path / "out.png", save_all=True, log=messages.append
    )
    assert paths == {
        "G2": str(tmp_path / "out.png"),
        "G1": str(tmp_path / "out_G1.png"),
        "diff_map": str(tmp_path / "out_diff_map.png"),
    }
    assert messages == ["image is 128x64, the model's size: used as is"]
    expected = signatures["from_keypoints"](
        image=_read(person_png)[None], keypoints=TARGET_RC[None]
    )
    for name, path in paths.items():
        np.testing.assert_array_equal(_read(path), expected[name].numpy()[0])


def test_csv_row_gives_the_same_image_as_the_equivalent_json(saved_model, person_png, tmp_path):
    from_json = generate.generate(
        saved_model, person_png, _openpose_json(tmp_path / "t.json", TARGET_RC), tmp_path / "j.png"
    )
    csv = _annotation_csv(tmp_path / "t.csv", {"other.jpg": TARGET_RC + 1, "target.jpg": TARGET_RC})
    from_csv = generate.generate(
        saved_model, person_png, csv, tmp_path / "c.png", keypoints_row="target.jpg"
    )
    np.testing.assert_array_equal(_read(from_csv["G2"]), _read(from_json["G2"]))


def test_image_of_another_size_gives_model_size_or_restored_size(
    saved_model, reference_outputs, tmp_path
):
    big = tmp_path / "big.jpg"
    Image.fromarray(reference_outputs["x_uint8"][3]).resize((176, 256)).save(big)
    big_rc = np.where(TARGET_RC == -1, -1, TARGET_RC * [2, 2.75])
    keypoints = _openpose_json(tmp_path / "t.json", big_rc)
    messages = []
    model_size = generate.generate(
        saved_model, big, keypoints, tmp_path / "model.png", log=messages.append
    )
    restored = generate.generate(
        saved_model, big, keypoints, tmp_path / "input.png", restore_size=True, log=messages.append
    )
    assert _read(model_size["G2"]).shape == (128, 64, 3)
    assert _read(restored["G2"]).shape == (256, 176, 3)
    assert messages[0].startswith("image 256x176 resized to 93x64 (aspect kept), padded to 128x64")


def test_command_line_writes_g2(saved_model, person_png, tmp_path):
    keypoints = _openpose_json(tmp_path / "target.json", TARGET_RC)
    result = subprocess.run(
        [sys.executable, "-m", "pg2_tf.generate", f"--saved_model={saved_model}",
         f"--image={person_png}", f"--keypoints={keypoints}", f"--out={tmp_path / 'cli.png'}"],
        capture_output=True, text=True, env=SUBPROCESS_ENV,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines() == [
        "image is 128x64, the model's size: used as is",
        f"wrote G2 to {tmp_path / 'cli.png'}",
    ]
    assert _read(tmp_path / "cli.png").shape == (128, 64, 3)


# ---- errors ------------------------------------------------------------------------------------


def test_command_line_error_is_one_line_with_exit_status_2(person_png, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pg2_tf.generate", f"--saved_model={tmp_path / 'none'}",
         f"--image={person_png}", "--keypoints=t.json", f"--out={tmp_path / 'o.png'}"],
        capture_output=True, text=True, env=SUBPROCESS_ENV,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: no SavedModel at {tmp_path / 'none'} (no saved_model.pb; --saved_model): export "
        "one with pg2-export --pretrained_path=<checkpoint> --export_dir=<folder>"
    ]
    assert not (tmp_path / "o.png").exists()


def test_missing_saved_model_is_reported(person_png, tmp_path):
    keypoints = _openpose_json(tmp_path / "t.json", TARGET_RC)
    with pytest.raises(CheckpointError, match=r"no SavedModel at .*nowhere \(no saved_model\.pb"):
        generate.generate(tmp_path / "nowhere", person_png, keypoints, tmp_path / "o.png")


def test_missing_keypoint_file_is_reported(saved_model, person_png, tmp_path):
    with pytest.raises(DataError, match=r"keypoint file .*absent\.json does not exist"):
        generate.generate(saved_model, person_png, tmp_path / "absent.json", tmp_path / "o.png")


def test_body25_openpose_file_is_reported_with_the_fix(tmp_path):
    path = tmp_path / "body25.json"
    path.write_text(json.dumps({"people": [{"pose_keypoints_2d": [1.0] * 75}]}))
    with pytest.raises(DataError, match=r"has 25 keypoints, PG2 needs the 18 .* --model_pose COCO"):
        generate.load_keypoints(path)


def test_csv_row_with_wrong_keypoint_count_is_reported(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text(f"name:keypoints_y:keypoints_x\nx.jpg: {[1] * 17}: {[1] * 17}\n")
    with pytest.raises(DataError, match=r"row 'x\.jpg' has 17 rows and 17 columns, PG2 needs 18"):
        generate.load_keypoints(path)


def test_openpose_file_without_person_is_reported(tmp_path):
    path = tmp_path / "empty.json"
    path.write_text(json.dumps({"version": 1.3, "people": []}))
    with pytest.raises(DataError, match=r"OpenPose found no person"):
        generate.load_keypoints(path)


def test_unknown_csv_row_is_reported_with_examples(tmp_path):
    path = _annotation_csv(tmp_path / "a.csv", {"a.jpg": TARGET_RC, "b.jpg": TARGET_RC})
    with pytest.raises(
        DataError, match=r"no row named 'c\.jpg' \(--keypoints_row\); e\.g\. a\.jpg"
    ):
        generate.load_keypoints(path, "c.jpg")
    with pytest.raises(ConfigError, match=r"has 2 rows: choose one with --keypoints_row"):
        generate.load_keypoints(path)


def test_file_that_is_not_an_image_is_reported(saved_model, tmp_path):
    not_image = tmp_path / "person.jpg"
    not_image.write_text("just text")
    keypoints = _openpose_json(tmp_path / "t.json", TARGET_RC)
    with pytest.raises(DataError, match=r"person\.jpg is not an image file Pillow can read"):
        generate.generate(saved_model, not_image, keypoints, tmp_path / "o.png")
    assert not (tmp_path / "o.png").exists()


def test_output_path_without_image_extension_is_reported(saved_model, person_png, tmp_path):
    keypoints = _openpose_json(tmp_path / "t.json", TARGET_RC)
    with pytest.raises(ConfigError, match=r"--out=.*result needs an image file extension"):
        generate.generate(saved_model, person_png, keypoints, tmp_path / "result")


def test_keypoints_row_with_a_json_file_is_reported(tmp_path):
    path = _openpose_json(tmp_path / "t.json", TARGET_RC)
    with pytest.raises(ConfigError, match=r"--keypoints_row only applies to \.csv"):
        generate.load_keypoints(path, "target.jpg")
