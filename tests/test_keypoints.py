"""pg2_tf.people.blazepose (and pg2-keypoints): BlazePose run here equals MediaPipe's own, mapped to the 18 OpenPose joints.

The reference (tests/fixtures/blazepose/reference.json) was written by mediapipe 0.10.21 itself in a
separate environment (see make_reference.py there) on photos that ship with scikit-image.
"""

import concurrent.futures
import hashlib
import importlib.util
import json
import os
import threading
import zipfile

import numpy as np
import pytest
from helpers import FIXTURES, run_keypoints_cli, run_module
from PIL import Image

from pg2_tf.core.errors import DataError
from pg2_tf.people import blazepose, geometry, model_files, photos

REFERENCE = json.loads((FIXTURES / "blazepose" / "reference.json").read_text())["photos"]

# pg2_tf.core.pose joint index -> MediaPipe landmark index, as the issue specifies (neck separately).
NAMED_JOINTS = {
    "nose": (0, 0),
    "right_shoulder": (2, 12),
    "right_elbow": (3, 14),
    "left_shoulder": (5, 11),
    "left_elbow": (6, 13),
    "right_eye": (14, 5),
    "left_eye": (15, 2),
    "right_ear": (16, 8),
    "left_ear": (17, 7),
}


def _load_reference_script():
    path = FIXTURES / "blazepose" / "make_reference.py"
    spec = importlib.util.spec_from_file_location("make_blazepose_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PHOTOS = _load_reference_script().photos()


def _photo(name: str) -> np.ndarray:
    return PHOTOS[name]


def _reference(name: str) -> np.ndarray:
    return np.array(REFERENCE[name]["landmarks_xyv"], dtype=np.float64)


@pytest.fixture(scope="module")
def estimator(blazepose_model_dir):
    return blazepose.KeypointEstimator(blazepose_model_dir)


@pytest.mark.parametrize(
    "name", ["astronaut", "astronaut_rot90", "camera", "astronaut_portrait", "camera_landscape"]
)
def test_landmarks_equal_mediapipes_own(estimator, name):
    # Measured: at most 0.38 px (portrait), 0.27 px (camera), 0.01 px (astronaut); 33 landmarks.
    landmarks = estimator.landmarks(_photo(name), name)
    reference = _reference(name)

    assert landmarks.shape == (33, 3)
    np.testing.assert_allclose(landmarks[:, :2], reference[:, :2], atol=1.0)
    np.testing.assert_allclose(landmarks[:, 2], reference[:, 2], atol=0.005)


def test_astronaut_has_head_shoulders_and_elbows_and_no_hips_or_legs(estimator):
    person = estimator(_photo("astronaut"), "astronaut")
    xyc = person.keypoints_xyc
    reference = _reference("astronaut")

    assert xyc.dtype == np.float32 and xyc.shape == (18, 3)
    for name, (joint, landmark) in NAMED_JOINTS.items():
        assert xyc[joint, 2] > 0, name
        np.testing.assert_allclose(xyc[joint, :2], reference[landmark, :2], atol=1.0, err_msg=name)
    np.testing.assert_allclose(xyc[1, :2], reference[[11, 12], :2].mean(axis=0), atol=1.0)
    # Hips (visibility 0.22 and 0.26) and the legs (below the photo) are missing, OpenPose style.
    for joint in (8, 9, 10, 11, 12, 13):
        np.testing.assert_array_equal(xyc[joint], [0, 0, 0])


def test_a_phone_photo_with_exif_rotation_gives_upright_keypoints(tmp_path, estimator):
    # Stored sideways (turned counter-clockwise) with EXIF orientation 6, as phones save portraits.
    stored = np.ascontiguousarray(np.rot90(_photo("astronaut")))
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(tmp_path / "phone.jpg", exif=exif, quality=95)

    person = estimator(photos.load_photo(tmp_path / "phone.jpg"), "phone.jpg")

    # The head and shoulders where MediaPipe puts them in the upright PNG; JPEG's loss moves
    # them by up to 5 px (measured), a sideways photo would by hundreds.
    reference = _reference("astronaut")
    head_and_shoulders = ("nose", "right_eye", "left_eye", "right_ear", "left_ear")
    for name in head_and_shoulders + ("right_shoulder", "left_shoulder"):
        joint, landmark = NAMED_JOINTS[name]
        np.testing.assert_allclose(person.keypoints_xyc[joint, :2], reference[landmark, :2], atol=8)


def test_keypoints_rc_is_the_projects_row_col_convention(estimator):
    person = estimator(_photo("astronaut"), "astronaut")
    rc = person.keypoints_rc()

    assert rc.dtype == np.float64 and rc.shape == (18, 2)
    np.testing.assert_array_equal(rc[8:14], -1)
    np.testing.assert_array_equal(rc[0], person.keypoints_xyc[0, [1, 0]])


def test_no_person_is_an_error_naming_the_photo(estimator):
    assert REFERENCE["coffee"]["landmarks_xyv"] is None  # MediaPipe finds none either
    with pytest.raises(blazepose.NoPersonFound, match="no person found in coffee.png"):
        estimator(_photo("coffee"), "coffee.png")


def test_a_joint_outside_the_photo_or_hardly_visible_is_missing_and_the_neck_needs_both():
    landmarks = np.zeros((33, 3))
    landmarks[:, :2] = (50, 40)
    landmarks[:, 2] = 0.9
    landmarks[0] = (120, 10, 0.9)  # nose beyond the right edge of a 100-wide photo
    landmarks[14] = (30, 30, blazepose.VISIBILITY_THRESHOLD - 0.01)  # right elbow, hardly visible
    landmarks[11] = (60, 20, 0.8)  # left shoulder
    landmarks[12] = (20, 24, 0.7)  # right shoulder

    joints = blazepose.joints_from_landmarks(landmarks, height=80, width=100)

    np.testing.assert_array_equal(joints[0], [0, 0, 0])
    np.testing.assert_array_equal(joints[3], [0, 0, 0])
    np.testing.assert_allclose(joints[1], [40, 22, 0.7])  # neck: the shoulders' mean
    landmarks[12, 2] = 0.1
    np.testing.assert_array_equal(blazepose.joints_from_landmarks(landmarks, 80, 100)[1], 0)


def test_anchors_are_the_detectors_2254_ssd_centres():
    anchors = geometry.ssd_anchors()
    assert anchors.shape == (2254, 2)
    np.testing.assert_allclose(anchors[0], [0.5 / 28, 0.5 / 28])  # stride 8: 28x28, 2 each
    np.testing.assert_allclose(anchors[1568], [0.5 / 14, 0.5 / 14])  # stride 16: 14x14, 2 each
    np.testing.assert_allclose(anchors[-1], [6.5 / 7, 6.5 / 7])  # strides 32 x3: 7x7, 6 each


def test_missing_or_damaged_model_files_name_the_command(tmp_path, blazepose_model_dir):
    with pytest.raises(model_files.ModelFilesMissing, match="--fetch_model") as error:
        blazepose.KeypointEstimator(tmp_path)
    assert "\n" not in str(error.value) and "is missing" in str(error.value)
    for name in model_files.MODEL_FILES:  # truncated copies
        with open(os.path.join(blazepose_model_dir, name), "rb") as model:
            (tmp_path / name).write_bytes(model.read(1000))
    with pytest.raises(model_files.ModelFilesMissing, match="is damaged; run: python -m"):
        blazepose.KeypointEstimator(tmp_path)


def _fake_wheel(folder, blazepose_model_dir, damage=False):
    wheel = folder / "mediapipe-0.10.21-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, (member, _) in model_files.MODEL_FILES.items():
            with open(os.path.join(blazepose_model_dir, name), "rb") as model:
                data = model.read()
            archive.writestr(member, data + (b"x" if damage else b""))
    return str(wheel)


def test_fetch_extracts_and_checks_the_wheels_files_then_stays_offline(
    tmp_path, monkeypatch, blazepose_model_dir
):
    cache = tmp_path / "cache"
    monkeypatch.setattr(
        model_files, "_download_wheel", lambda folder: _fake_wheel(tmp_path, blazepose_model_dir)
    )
    assert model_files.fetch_model(cache) == str(cache)
    for name, (_, sha) in model_files.MODEL_FILES.items():
        assert hashlib.sha256((cache / name).read_bytes()).hexdigest() == sha

    def no_network(folder):
        raise AssertionError("fetch_model downloaded although the files were there")

    monkeypatch.setattr(model_files, "_download_wheel", no_network)
    assert model_files.fetch_model(cache) == str(cache)


def test_two_fetches_at_once_both_end_with_checked_files(
    tmp_path, monkeypatch, blazepose_model_dir
):
    # As the suite's workers (or two commands) do on a machine without the files.
    wheel = _fake_wheel(tmp_path, blazepose_model_dir)
    both_downloaded = threading.Barrier(2)

    def download(folder):
        both_downloaded.wait(timeout=60)
        return wheel

    monkeypatch.setattr(model_files, "_download_wheel", download)
    cache = tmp_path / "cache"
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        fetched = [pool.submit(model_files.fetch_model, cache) for _ in range(2)]
        assert [future.result() for future in fetched] == [str(cache)] * 2
    assert sorted(os.listdir(cache)) == sorted(model_files.MODEL_FILES)  # no partial files left
    for name, (_, sha) in model_files.MODEL_FILES.items():
        assert hashlib.sha256((cache / name).read_bytes()).hexdigest() == sha


def test_fetch_refuses_files_with_another_checksum(tmp_path, monkeypatch, blazepose_model_dir):
    wheel_dir = tmp_path / "wheel"
    wheel_dir.mkdir()
    wheel = _fake_wheel(wheel_dir, blazepose_model_dir, damage=True)
    monkeypatch.setattr(model_files, "_download_wheel", lambda folder: wheel)
    with pytest.raises(DataError, match="does not have the expected SHA-256"):
        model_files.fetch_model(tmp_path / "cache")
    assert not (tmp_path / "cache" / "pose_detection.tflite").exists()


def test_fetch_into_a_folder_it_cannot_write_says_where_and_what_to_do(
    tmp_path, monkeypatch, blazepose_model_dir
):
    monkeypatch.setattr(
        model_files, "_download_wheel", lambda folder: _fake_wheel(tmp_path, blazepose_model_dir)
    )
    (tmp_path / "a_file").write_text("")
    with pytest.raises(DataError, match=r"cannot write the model files into .*a_file/cache"):
        model_files.fetch_model(tmp_path / "a_file" / "cache")


def test_blazepose_dir_default_environment_and_flag(monkeypatch, tmp_path):
    monkeypatch.delenv("PG2_TF_CACHE", raising=False)
    expected = os.path.join(os.path.expanduser("~"), ".cache", "pg2_tf", "blazepose")
    assert model_files.blazepose_dir() == expected
    monkeypatch.setenv("PG2_TF_CACHE", str(tmp_path))
    assert model_files.blazepose_dir() == str(tmp_path / "blazepose")
    assert model_files.blazepose_dir(tmp_path / "mine") == str(tmp_path / "mine")


def _cli(*args, env=None):
    return run_module("pg2_tf.keypoints", *args, env={**os.environ, **(env or {})})


def test_cli_writes_openpose_json_that_generate_reads_and_a_drawing(tmp_path, blazepose_model_dir):
    load_keypoints = photos.load_keypoints  # what pg2-generate reads --keypoints with

    result = run_keypoints_cli(tmp_path, _photo("astronaut"), blazepose_model_dir)

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    document = json.loads((tmp_path / "people.json").read_text())
    values = np.array(document["people"][0]["pose_keypoints_2d"]).reshape(18, 3)
    np.testing.assert_allclose(values[0, :2], _reference("astronaut")[0, :2], atol=1.0)
    rc = load_keypoints(tmp_path / "people.json")
    np.testing.assert_array_equal(rc[8:14], -1)
    np.testing.assert_allclose(rc[2], values[2, [1, 0]])
    drawing = np.asarray(Image.open(tmp_path / "drawn.png"))
    assert drawing.shape == (512, 512, 3)
    assert np.abs(drawing.astype(int) - _photo("astronaut")).sum(axis=2).astype(bool).mean() > 0.002


@pytest.mark.parametrize(
    "case, expected",
    [
        ("no_person", "error: no person found in {dir}/coffee.png"),
        ("not_an_image", "error: {dir}/notes.png is not an image file"),
        (
            "no_model",
            "error: BlazePose model file {dir}/empty/pose_detection.tflite is missing; "
            "run: python -m pg2_tf.keypoints --fetch_model --cache_dir={dir}/empty",
        ),
    ],
)
def test_cli_errors_are_one_line_and_exit_2(tmp_path, blazepose_model_dir, case, expected):
    Image.fromarray(_photo("coffee")).save(tmp_path / "coffee.png")
    (tmp_path / "notes.png").write_text("not a photo")
    photo = {"no_person": "coffee.png", "not_an_image": "notes.png", "no_model": "coffee.png"}
    cache = tmp_path / "empty" if case == "no_model" else blazepose_model_dir

    result = _cli(
        f"--image={tmp_path / photo[case]}",
        f"--json={tmp_path / 'out.json'}",
        f"--cache_dir={cache}",
    )

    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(expected.format(dir=tmp_path))
    assert not (tmp_path / "out.json").exists()
