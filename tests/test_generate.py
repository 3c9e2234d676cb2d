"""pg2-generate: a person image + target keypoints (OpenPose JSON or annotation CSV) -> PNG."""

import json
import os
import subprocess
import sys

import helpers
import numpy as np
import pytest
from PIL import Image

from pg2_tf.apps import generation
from pg2_tf.core import pose_files
from pg2_tf.core.errors import CheckpointError, ConfigError, DataError
from pg2_tf.people import photos

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


def _generate_cli(*flags):
    """Runs ``python -m pg2_tf.generate`` with the flags; returns the CompletedProcess."""
    command = [sys.executable, "-m", "pg2_tf.generate", *flags]
    return subprocess.run(command, capture_output=True, text=True, env=SUBPROCESS_ENV)


def _generate_cli_lines(*flags, status=0):
    """Runs ``python -m pg2_tf.generate`` with the flags, which must exit with ``status``; returns
    the lines of its stdout (status 0) or of its stderr (an error)."""
    result = _generate_cli(*flags)
    assert result.returncode == status, result.stderr[-3000:]
    return (result.stdout if status == 0 else result.stderr.strip()).splitlines()


def _read(path):
    return np.asarray(Image.open(path))


# ---- keypoint files --------------------------------------------------------------------------


def test_openpose_json_gives_row_col_and_zero_confidence_is_missing(tmp_path):
    path = tmp_path / "pose.json"
    triples = [0.0] * 54
    triples[0:3] = [31.5, 20.25, 0.8]  # nose: x, y, confidence
    triples[3:6] = [40, 50, 0]  # neck: confidence 0 -> missing
    path.write_text(json.dumps({"people": [{"pose_keypoints_2d": triples}]}))
    keypoints = photos.load_keypoints(path)
    assert keypoints.shape == (18, 2)
    np.testing.assert_array_equal(keypoints[0], [20.25, 31.5])
    np.testing.assert_array_equal(keypoints[1:], -1)


def test_csv_row_is_chosen_by_name(tmp_path):
    other = np.full((18, 2), 7, np.float32)
    path = _annotation_csv(tmp_path / "a.csv", {"first.jpg": other, "target.jpg": TARGET_RC})
    np.testing.assert_array_equal(photos.load_keypoints(path, "target.jpg"), TARGET_RC)


def test_csv_joint_with_one_coordinate_missing_is_missing(tmp_path):
    path = tmp_path / "a.csv"
    ys, xs = [10] * 18, [20] * 18
    xs[4] = -1
    path.write_text(f"name:keypoints_y:keypoints_x\nonly.jpg: {ys}: {xs}\n")
    keypoints = photos.load_keypoints(path)  # a one-row CSV needs no --keypoints_row
    np.testing.assert_array_equal(keypoints[4], [-1, -1])
    np.testing.assert_array_equal(keypoints[5], [10, 20])


# ---- fitting images of another size ------------------------------------------------------------


def test_larger_image_is_scaled_to_fit_and_padded_keypoints_follow():
    image = np.zeros((256, 176, 3), np.uint8)
    keypoints = np.array([[100, 88], [-1, -1]] + [[0, 0]] * 16, np.float32)
    fitted, moved, placement = photos.fit_to_model(image, keypoints, 128, 64)
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
    fitted, moved, placement = photos.fit_to_model(image, keypoints, 128, 64)
    np.testing.assert_array_equal(fitted[:, 8:56], image)
    np.testing.assert_array_equal(fitted[:, :8], np.repeat(image[:, :1], 8, axis=1))
    np.testing.assert_array_equal(moved[0], [10, 13])  # the pixel trunc() marks, shifted by 8
    assert photos.restore_input_size(fitted, placement).shape == (128, 48, 3)


# ---- generation ------------------------------------------------------------------------------


def test_openpose_json_writes_the_from_keypoints_outputs(
    saved_model, signatures, person_png, blazepose_estimator, tmp_path
):
    keypoints = _openpose_json(tmp_path / "target.json", TARGET_RC)
    messages, warnings = [], []
    paths = generation.generate(
        saved_model, person_png, keypoints, tmp_path / "out.png", save_all=True,
        estimator=blazepose_estimator, log=messages.append, warn=warnings.append,
    )  # fmt: skip
    assert paths == {
        "G2": str(tmp_path / "out.png"),
        "G1": str(tmp_path / "out_G1.png"),
        "diff_map": str(tmp_path / "out_diff_map.png"),
        "pose": str(tmp_path / "out_pose.json"),
    }
    # BlazePose finds nobody in this 128x64 record crop: the source pose alone is left out.
    assert warnings == [f"no person found in {person_png}: no source pose written"]
    assert messages == ["image is 128x64, the model's size: used as is"]
    expected = signatures["from_keypoints"](
        image=_read(person_png)[None], keypoints=TARGET_RC[None]
    )
    for name in ("G2", "G1", "diff_map"):
        np.testing.assert_array_equal(_read(paths[name]), expected[name].numpy()[0])
    # --keypoints: the pose as given (--proportions=target).
    np.testing.assert_allclose(pose_files.read_openpose_json(paths["pose"]), TARGET_RC)


def test_csv_row_gives_the_same_image_as_the_equivalent_json(saved_model, person_png, tmp_path):
    from_json = generation.generate(
        saved_model, person_png, _openpose_json(tmp_path / "t.json", TARGET_RC), tmp_path / "j.png"
    )
    csv = _annotation_csv(tmp_path / "t.csv", {"other.jpg": TARGET_RC + 1, "target.jpg": TARGET_RC})
    from_csv = generation.generate(
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
    model_size = generation.generate(
        saved_model, big, keypoints, tmp_path / "model.png", log=messages.append
    )
    restored = generation.generate(
        saved_model, big, keypoints, tmp_path / "input.png", restore_size=True, log=messages.append
    )
    assert _read(model_size["G2"]).shape == (128, 64, 3)
    assert _read(restored["G2"]).shape == (256, 176, 3)
    assert messages[0].startswith("image 256x176 resized to 93x64 (aspect kept), padded to 128x64")


def test_command_line_writes_g2(saved_model, person_png, tmp_path):
    keypoints = _openpose_json(tmp_path / "target.json", TARGET_RC)
    assert _generate_cli_lines(
        f"--saved_model={saved_model}",
        f"--image={person_png}",
        f"--keypoints={keypoints}",
        f"--out={tmp_path / 'cli.png'}",
    ) == [
        "image is 128x64, the model's size: used as is",
        f"wrote G2 to {tmp_path / 'cli.png'}",
    ]
    assert _read(tmp_path / "cli.png").shape == (128, 64, 3)


# ---- errors ------------------------------------------------------------------------------------


def test_command_line_error_is_one_line_with_exit_status_2(person_png, tmp_path):
    assert _generate_cli_lines(
        f"--saved_model={tmp_path / 'none'}",
        f"--image={person_png}",
        "--keypoints=t.json",
        f"--out={tmp_path / 'o.png'}",
        status=2,
    ) == [
        f"error: no SavedModel at {tmp_path / 'none'} (no saved_model.pb; --saved_model): export "
        "one with pg2-export --pretrained_path=<checkpoint> --export_dir=<folder>"
    ]
    assert not (tmp_path / "o.png").exists()


def test_missing_saved_model_is_reported(person_png, tmp_path):
    keypoints = _openpose_json(tmp_path / "t.json", TARGET_RC)
    with pytest.raises(CheckpointError, match=r"no SavedModel at .*nowhere \(no saved_model\.pb"):
        generation.generate(tmp_path / "nowhere", person_png, keypoints, tmp_path / "o.png")


def test_missing_keypoint_file_is_reported(saved_model, person_png, tmp_path):
    with pytest.raises(DataError, match=r"keypoint file .*absent\.json does not exist"):
        generation.generate(saved_model, person_png, tmp_path / "absent.json", tmp_path / "o.png")


def test_body25_openpose_file_gives_the_18_joints(tmp_path):
    # BODY_25 = COCO-18 with MidHip inserted at 8 and six foot points appended (19-24).
    coco = json.loads(_openpose_json(tmp_path / "c.json", TARGET_RC).read_text())
    triples = coco["people"][0]["pose_keypoints_2d"]
    body25 = triples[:24] + [32.0, 70.0, 0.9] + triples[24:] + [40.0, 125.0, 0.5] * 6
    path = tmp_path / "body25.json"
    path.write_text(json.dumps({"people": [{"pose_keypoints_2d": body25}]}))
    np.testing.assert_array_equal(photos.load_keypoints(path), TARGET_RC)


def test_unknown_joint_count_is_reported_with_the_formats_read(tmp_path):
    helpers.read_error(
        photos.load_keypoints,
        tmp_path / "hand.json",
        json.dumps({"people": [{"pose_keypoints_2d": [1.0] * 63}]}),
        r"hand\.json has 21 joints: the known formats have 18 ",
    )


@pytest.mark.parametrize("bad", ["NaN", "Infinity"])
def test_keypoint_that_is_not_finite_is_refused(tmp_path, bad):
    path = _openpose_json(tmp_path / "t.json", TARGET_RC)
    path.write_text(path.read_text().replace("0.9", bad, 1))
    with pytest.raises(
        DataError,
        match=r"t\.json: people\[0\]\.pose_keypoints_2d holds (nan|inf) "
        r"at position 2 \(1 value\(s\) not finite\)",
    ):
        photos.load_keypoints(path)


def test_string_in_pose_keypoints_is_one_line_naming_it(saved_model, person_png, tmp_path):
    path = _openpose_json(tmp_path / "t.json", TARGET_RC)
    document = json.loads(path.read_text())
    document["people"][0]["pose_keypoints_2d"][4] = "20"
    path.write_text(json.dumps(document))
    assert _generate_cli_lines(
        f"--saved_model={saved_model}",
        f"--image={person_png}",
        f"--keypoints={path}",
        f"--out={tmp_path / 'o.png'}",
        status=2,
    ) == [
        f"error: {path}: people[0].pose_keypoints_2d[4] is '20', not a number (x, y, confidence "
        "triples of numbers)"
    ]


def test_keypoints_all_outside_the_image_are_refused(saved_model, person_png, tmp_path):
    far = np.where(TARGET_RC == -1, -1, TARGET_RC + [200, 0])  # every row below the 128 rows
    keypoints = _openpose_json(tmp_path / "t.json", far)
    with pytest.raises(DataError, match=r"t\.json: all 17 joints lie outside the 128x64 image"):
        generation.generate(saved_model, person_png, keypoints, tmp_path / "o.png")
    assert not (tmp_path / "o.png").exists()


def test_joints_outside_the_image_are_left_out_with_a_warning(saved_model, person_png, tmp_path):
    partly = TARGET_RC.copy()
    partly[10] = [140, 26]  # right ankle below the image
    partly[13] = [120, 70]  # left ankle right of it
    warnings = []
    paths = generation.generate(
        saved_model, person_png, _openpose_json(tmp_path / "p.json", partly), tmp_path / "p.png",
        log=lambda line: None, warn=warnings.append,
    )  # fmt: skip
    assert warnings == [
        f"{tmp_path / 'p.json'}: right_ankle, left_ankle outside the 128x64 image, left out"
    ]
    without = TARGET_RC.copy()
    without[[10, 13]] = -1
    reference = generation.generate(
        saved_model, person_png, _openpose_json(tmp_path / "w.json", without), tmp_path / "w.png"
    )
    np.testing.assert_array_equal(_read(paths["G2"]), _read(reference["G2"]))


def test_pose_without_any_joint_is_refused(tmp_path, saved_model, person_png):
    keypoints = _openpose_json(tmp_path / "t.json", np.full((18, 2), -1.0))
    with pytest.raises(DataError, match=r"t\.json: every joint is missing"):
        generation.generate(saved_model, person_png, keypoints, tmp_path / "o.png")


def test_csv_row_with_wrong_keypoint_count_is_reported(tmp_path):
    helpers.read_error(
        photos.load_keypoints,
        tmp_path / "a.csv",
        f"name:keypoints_y:keypoints_x\nx.jpg: {[1] * 17}: {[1] * 17}\n",
        r"a\.csv:2 is not 'name:\[18 rows\]:\[18 columns\]'",
    )


def test_csv_name_listed_twice_keeps_its_first_row(tmp_path):
    # One rule for annotation files (pg2_tf.records.annotations, Pose-Transfer's iloc[0]): first row wins.
    path = tmp_path / "a.csv"
    first, second = [10] * 18, [30] * 18
    path.write_text(
        f"name:keypoints_y:keypoints_x\nx.jpg: {first}: {first}\nx.jpg: {second}: {second}\n"
    )
    np.testing.assert_array_equal(photos.load_keypoints(path), np.full((18, 2), 10))


def test_csv_without_the_header_is_refused(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text(f"x.jpg: {[10] * 18}: {[20] * 18}\n")
    with pytest.raises(
        DataError, match=r"a\.csv' starts with .*, not 'name:keypoints_y:keypoints_x'"
    ):
        photos.load_keypoints(path)


def test_openpose_file_without_person_is_reported(tmp_path):
    path = tmp_path / "empty.json"
    path.write_text(json.dumps({"version": 1.3, "people": []}))
    with pytest.raises(DataError, match=r"OpenPose found no person"):
        photos.load_keypoints(path)


def test_unknown_csv_row_is_reported_with_examples(tmp_path):
    path = _annotation_csv(tmp_path / "a.csv", {"a.jpg": TARGET_RC, "b.jpg": TARGET_RC})
    with pytest.raises(
        DataError, match=r"no row named 'c\.jpg' \(--keypoints_row\); e\.g\. a\.jpg"
    ):
        photos.load_keypoints(path, "c.jpg")
    with pytest.raises(ConfigError, match=r"has 2 rows: choose one with --keypoints_row"):
        photos.load_keypoints(path)


def test_file_that_is_not_an_image_is_reported(saved_model, tmp_path):
    not_image = tmp_path / "person.jpg"
    not_image.write_text("just text")
    keypoints = _openpose_json(tmp_path / "t.json", TARGET_RC)
    with pytest.raises(DataError, match=r"person\.jpg is not an image file Pillow can read"):
        generation.generate(saved_model, not_image, keypoints, tmp_path / "o.png")
    assert not (tmp_path / "o.png").exists()


def test_output_path_without_image_extension_is_reported(saved_model, person_png, tmp_path):
    keypoints = _openpose_json(tmp_path / "t.json", TARGET_RC)
    with pytest.raises(ConfigError, match=r"--out=.*result needs an image file extension"):
        generation.generate(saved_model, person_png, keypoints, tmp_path / "result")


def test_keypoints_row_with_a_json_file_is_reported(tmp_path):
    path = _openpose_json(tmp_path / "t.json", TARGET_RC)
    with pytest.raises(ConfigError, match=r"--keypoints_row only applies to \.csv"):
        photos.load_keypoints(path, "target.jpg")


# ---- --pose_from: the target pose from another person's photo ---------------------------------


@pytest.fixture(scope="module")
def real_photos(tmp_path_factory):
    """Photos shipped by scikit-image: the astronaut (upper body), the cameraman, a coffee cup."""
    import skimage.data

    folder = tmp_path_factory.mktemp("real")
    photos = {
        "astronaut": skimage.data.astronaut(),
        "cameraman": np.stack([skimage.data.camera()] * 3, axis=-1),
        "coffee": skimage.data.coffee(),
    }
    for name, pixels in photos.items():
        Image.fromarray(pixels).save(folder / f"{name}.png")
    small = Image.fromarray(photos["astronaut"][:, 64:448]).resize((64, 128))
    small.save(folder / "astronaut_128x64.jpg")
    return {name: folder / f"{name}.png" for name in photos} | {
        "small": folder / "astronaut_128x64.jpg"
    }


def test_pose_from_photo_crops_both_people_and_uses_the_cameramans_pose(
    saved_model, signatures, real_photos, blazepose_estimator, tmp_path
):
    from pg2_tf.people import photos

    lines = []
    paths = generation.generate(
        saved_model, real_photos["astronaut"], None, tmp_path / "out.png",
        pose_from=real_photos["cameraman"], estimator=blazepose_estimator, log=lines.append,
        proportions="target",  # the astronaut's photo ends above her hips: nothing to measure
    )  # fmt: skip
    assert lines == [
        f"person of {real_photos['astronaut']} and pose of {real_photos['cameraman']} each "
        "cropped to their box at 128x64"
    ]
    # The same result by hand: the astronaut's crop and the cameraman's keypoints in his crop.
    astronaut = photos.load_photo(real_photos["astronaut"])
    crop, _ = photos.person_crop(astronaut, blazepose_estimator(astronaut).box_xyxy, 128, 64)
    cameraman = photos.load_photo(real_photos["cameraman"])
    person = blazepose_estimator(cameraman)
    _, transform = photos.person_crop(cameraman, person.box_xyxy, 128, 64)
    target_rc = transform.to_crop_rc(person.keypoints_rc()).astype(np.float32)
    assert (target_rc[:, 0] >= 0).sum() >= 10  # the cameraman's head, arms and hips at least
    expected = signatures["from_keypoints"](image=crop[None], keypoints=target_rc[None])
    np.testing.assert_array_equal(_read(paths["G2"]), expected["G2"].numpy()[0])


def test_command_line_pose_from_gives_rgb_of_a_128x64_inputs_size(
    saved_model, real_photos, blazepose_estimator, tmp_path
):
    out = tmp_path / "cli.png"
    stdout = _generate_cli_lines(
        f"--saved_model={saved_model}",
        f"--image={real_photos['small']}",
        f"--pose_from={real_photos['cameraman']}",
        f"--out={out}",
        "--proportions=target",
    )
    assert stdout[-1] == f"wrote G2 to {out}"
    with Image.open(out) as image:
        assert image.mode == "RGB" and image.size == (64, 128)


@pytest.mark.parametrize("role", ["image", "pose_from"])
def test_photo_without_person_is_one_line_naming_it(
    saved_model, real_photos, blazepose_estimator, tmp_path, role
):
    from pg2_tf.people import blazepose

    photos = {"image": real_photos["astronaut"], "pose_from": real_photos["cameraman"]}
    photos[role] = real_photos["coffee"]
    with pytest.raises(blazepose.NoPersonFound, match=f"^no person found in {photos[role]}$"):
        generation.generate(
            saved_model, photos["image"], None, tmp_path / "o.png",
            pose_from=photos["pose_from"], estimator=blazepose_estimator,
        )  # fmt: skip
    assert not (tmp_path / "o.png").exists()


def test_command_line_photo_of_nothing_exits_2_with_one_line(saved_model, real_photos, tmp_path):
    assert _generate_cli_lines(
        f"--saved_model={saved_model}",
        f"--image={real_photos['astronaut']}",
        f"--pose_from={real_photos['coffee']}",
        f"--out={tmp_path / 'o.png'}",
        status=2,
    ) == [f"error: no person found in {real_photos['coffee']}"]


def test_keypoints_and_pose_from_together_are_refused(saved_model, person_png, tmp_path):
    keypoints = _openpose_json(tmp_path / "t.json", TARGET_RC)
    with pytest.raises(ConfigError, match=r"one of --keypoints and --pose_from"):
        generation.generate(
            saved_model, person_png, keypoints, tmp_path / "o.png", pose_from=person_png
        )


# ---- --proportions, --background and the poses written with --save_all -------------------------

# A woman seen whole, sitting on a sofa (labelme-examples, a VOC 2011 photo): shoulders and hips.
SITTING = "/usr/share/doc/labelme-examples/examples/bbox_detection/data_annotated/2011_000006.jpg"
needs_sitting = pytest.mark.skipif(
    not os.path.exists(SITTING), reason="Debian's labelme-examples is not installed (the photo)"
)


def _in_model_frame(path, estimator):
    """A photo's largest person in the 128x64 frame, as pg2-generate --pose_from takes them."""
    from pg2_tf.people import finder

    picker = finder.PersonPicker(estimator, finder.parse_person("largest", "--person"))
    return photos.person_in_model_frame(*photos.find_person(path, picker), 128, 64)


@needs_sitting
def test_pose_from_keeps_the_persons_bones_and_writes_both_poses(
    saved_model, signatures, real_photos, blazepose_estimator, tmp_path
):
    from pg2_tf.core import retarget

    lines = []
    paths = generation.generate(
        saved_model, SITTING, None, tmp_path / "out.png", pose_from=real_photos["cameraman"],
        save_all=True, estimator=blazepose_estimator, log=lines.append,
    )  # fmt: skip
    source = _in_model_frame(SITTING, blazepose_estimator)
    cameraman = _in_model_frame(real_photos["cameraman"], blazepose_estimator)
    source_pose = pose_files.read_openpose_json(paths["source_pose"])
    np.testing.assert_allclose(source_pose, source.keypoints_rc, atol=1e-3)
    drawn = pose_files.read_openpose_json(paths["pose"])
    # Her bones, his angles: each bone both have is her length (at one scale, so that the
    # skeleton fits the frame) in his direction.
    lengths = retarget.source_bone_lengths(source.keypoints_rc)
    scales = []
    for parent, child in [(1, 2), (2, 3), (3, 4), (1, 5), (5, 6), (6, 7), (1, 0)]:
        if (cameraman.keypoints_rc[[parent, child]] < 0).any():
            continue
        bone = drawn[child] - drawn[parent]
        scales.append(np.linalg.norm(bone) / lengths[child])
        his = cameraman.keypoints_rc[child] - cameraman.keypoints_rc[parent]
        assert np.dot(bone, his) / np.linalg.norm(bone) / np.linalg.norm(his) > 0.9999
    assert len(scales) >= 5 and max(scales) - min(scales) < 1e-3 and max(scales) <= 1
    assert f"(scale {np.mean(scales):.3g})" in lines[-1]
    expected = signatures["from_keypoints"](
        image=source.image[None], keypoints=drawn[None].astype(np.float32)
    )
    np.testing.assert_array_equal(_read(paths["G2"]), expected["G2"].numpy()[0])


@needs_sitting
def test_kept_background_outside_the_mask_and_g2_inside_it(
    saved_model, signatures, real_photos, blazepose_estimator, tmp_path
):
    from pg2_tf.apps import background

    paths = generation.generate(
        saved_model, SITTING, None, tmp_path / "out.png", pose_from=real_photos["cameraman"],
        background="source", save_all=True, estimator=blazepose_estimator, log=lambda line: None,
    )  # fmt: skip
    source = _in_model_frame(SITTING, blazepose_estimator)
    kept = background.source_background(source.image, source.keypoints_rc, blazepose_estimator)
    np.testing.assert_array_equal(_read(paths["background"]), kept.image)
    drawn = pose_files.read_openpose_json(paths["pose"]).astype(np.float32)
    g2 = signatures["from_keypoints"](image=source.image[None], keypoints=drawn[None])["G2"]
    alpha = background.paste_alpha(drawn, 128, 64)
    out = _read(paths["G2"])
    assert (alpha == 0).mean() > 0.1 and (alpha == 1).mean() > 0.1
    np.testing.assert_array_equal(out[alpha == 0], kept.image[alpha == 0])
    np.testing.assert_array_equal(out[alpha == 1], g2.numpy()[0][alpha == 1])


def test_a_source_without_hips_names_the_flag_to_change(saved_model, real_photos, tmp_path):
    assert _generate_cli_lines(
        f"--saved_model={saved_model}",
        f"--image={real_photos['astronaut']}",
        f"--pose_from={real_photos['cameraman']}",
        f"--out={tmp_path / 'o.png'}",
        status=2,
    ) == [
        "error: --image: the person's shoulders and hips must be visible to measure their body "
        "(2 of the 4 are not found); choose a photo showing the whole torso, or give "
        "--proportions=target"
    ]
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize(
    ("flag", "message"),
    [("--proportions=tall", "--proportions=tall must be source or target"),
     ("--background=blur", "--background=blur must be one of generated, source")],
)  # fmt: skip
def test_unknown_proportions_or_background_is_one_line(
    saved_model, person_png, tmp_path, flag, message
):
    keypoints = _openpose_json(tmp_path / "t.json", TARGET_RC)
    with pytest.raises(ConfigError, match=f"^{message}$"):
        generation.generate(
            saved_model, person_png, keypoints, tmp_path / "o.png",
            **dict([flag[2:].split("=")]),
        )  # fmt: skip
