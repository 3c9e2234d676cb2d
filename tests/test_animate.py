"""pg2-animate: one photo + a sequence of poses (JSON files, frames or a video) -> GIF/MP4."""

import json
import os

import imageio.v3 as iio
import numpy as np
import pytest
import skimage.data
from PIL import Image, ImageSequence

from pg2_tf.apps import animation
from pg2_tf.core import atomic
from pg2_tf.core.errors import ConfigError, DataError

# A standing person in a 256x128 frame, COCO-18 order, (row, col); the left ear is missing.
STANDING_RC = 2 * np.array(
    [[20, 32], [30, 32], [30, 22], [50, 20], [70, 18], [30, 42], [50, 44], [70, 46],
     [70, 26], [95, 26], [120, 26], [70, 38], [95, 38], [120, 38], [18, 30], [18, 34],
     [19, 28], [-0.5, -0.5]],
    np.float64,
)  # fmt: skip


@pytest.fixture(scope="module")
def astronaut_png(tmp_path_factory):
    path = tmp_path_factory.mktemp("photos") / "astronaut.png"
    iio.imwrite(path, skimage.data.astronaut())
    return path


# The astronaut's photo ends at her waist: no hips to measure her body by, so the tests that are
# about other things keep the driver's proportions.
TARGET = "target"


def _json_sequence(folder, poses_rc):
    folder.mkdir()
    for t, keypoints_rc in enumerate(poses_rc):
        triples = []
        for row, col in keypoints_rc:
            triples += [0, 0, 0] if row < 0 else [float(col), float(row), 0.9]
        (folder / f"frame_{t:03d}.json").write_text(
            json.dumps({"people": [{"pose_keypoints_2d": triples}]})
        )
    return folder


def _flicker(frames):
    """Mean absolute change between consecutive frames (0..255)."""
    frames = np.asarray(frames, np.float64)
    return float(np.abs(np.diff(frames, axis=0)).mean())


# ---- the model frame --------------------------------------------------------------------------


def test_person_is_centred_in_the_model_frame_at_one_scale():
    track = np.full((3, 18, 2), -1.0)
    track[:, 0] = [20, 50]  # extent rows 20..120, cols 40..60; centre (70, 50)
    track[:, 10] = [120, 40]
    track[:, 13] = [120, 60]
    track[1] += [0, 10]  # the person steps 10 pixels right in frame 1
    moved = animation.model_frame_tracks(track, 128, 64, window=1)
    # Box: 100 x 20 pixels grown by 15 % a side (+1 for the end pixel): 131 x 27, widened to
    # 1:2 = 131 x 65.5, so 64 / 65.5 model pixels per frame pixel, centred on the extent.
    scale = 64 / 65.5
    for t in range(3):
        np.testing.assert_allclose(moved[t, 0], [63.5 - 50 * scale, 31.5], atol=1e-4)
        np.testing.assert_allclose(moved[t, 10], [63.5 + 50 * scale, 31.5 - 10 * scale], atol=1e-4)
    assert (moved[:, [1, 2, 3]] == -1).all()


def test_frame_without_any_joint_stays_empty():
    track = np.full((2, 18, 2), -1.0)
    track[0, :3] = [[10, 10], [50, 12], [90, 14]]
    moved = animation.model_frame_tracks(track, 128, 64)
    assert (moved[1] == -1).all() and (moved[0, :3] >= 0).all()


# ---- whole animations -------------------------------------------------------------------------


def test_json_sequence_makes_a_gif_that_smoothing_steadies(
    market_saved_model, astronaut_png, blazepose_estimator, tmp_path
):
    # Every joint jitters by its own 3 pixels, as a pose estimator run frame by frame does.
    jitter = np.random.default_rng(0).normal(0, 3, (8, 18, 2))
    poses = _json_sequence(tmp_path / "poses", STANDING_RC[None] + jitter * (STANDING_RC >= 0))
    lines = []
    made = animation.animate(
        market_saved_model, astronaut_png, poses, tmp_path / "smooth.gif",
        estimator=blazepose_estimator, progress_bar=False, proportions=TARGET, log=lines.append,
    )  # fmt: skip
    raw = animation.animate(
        market_saved_model, astronaut_png, poses, tmp_path / "raw.gif", window=1,
        estimator=blazepose_estimator, progress_bar=False, proportions=TARGET, log=lines.append,
    )  # fmt: skip
    assert made["frames"] == 8 and made["fps"] == 10
    with Image.open(made["out"]) as gif:  # Pillow merges equal frames, adding their durations
        assert gif.size == (64, 128) and gif.info["loop"] == 0
        durations = [frame.info["duration"] for frame in ImageSequence.Iterator(gif)]
    assert sum(durations) == 800
    assert lines[0] == f"wrote 8 frames of 128x64 at 10 fps to {tmp_path / 'smooth.gif'}"
    smooth_frames = iio.imread(made["out"], index=None)
    raw_frames = iio.imread(raw["out"], index=None)
    assert len(raw_frames) == 8
    assert _flicker(smooth_frames) < 0.75 * _flicker(raw_frames)  # 2.9 vs 4.8 when written


def test_video_frames_give_an_mp4_and_a_frame_without_person_is_bridged(
    market_saved_model, astronaut_png, blazepose_estimator, tmp_path
):
    photo = skimage.data.astronaut()[:, 40:-40]
    frames = [np.roll(photo, shift, axis=1) for shift in (0, 4, 8)]
    coffee = Image.fromarray(skimage.data.coffee()).resize((432, 512))
    frames.insert(2, np.asarray(coffee))  # no person in this frame
    video = tmp_path / "moves.mp4"
    iio.imwrite(video, np.stack(frames), plugin="FFMPEG", fps=5)
    lines = []
    made = animation.animate(
        market_saved_model, astronaut_png, video, tmp_path / "out.mp4", side_by_side=True,
        estimator=blazepose_estimator, progress_bar=False, proportions=TARGET, log=lines.append,
    )  # fmt: skip
    assert made["without_person"] == [f"{video} frame 2"]
    assert made["empty_frames"] == 0  # the one-frame gap was bridged
    assert made["fps"] == 5
    written = iio.imread(made["out"], index=None, plugin="FFMPEG")
    assert written.shape == (4, 128, 3 * 64, 3)  # crop | target pose | generated
    pose_third = written[:, :, 64:128].astype(np.float64)
    assert 2 < pose_third.mean() < 100  # white discs on black
    assert lines[-1] == f"wrote 4 frames of 128x192 at 5 fps to {tmp_path / 'out.mp4'}"
    assert lines[0].startswith("no person found in 1 frame(s), e.g. ")


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda tmp: (tmp / "a.png", "out.avi"), r"--out=.*out\.avi must end in \.gif or \.mp4"),
        (lambda tmp: (tmp / "absent", "o.gif"), r"--poses=.*absent does not exist"),
        (lambda tmp: (tmp.joinpath("empty").mkdir() or tmp / "empty", "o.gif"),
         r"--poses=.*empty holds no OpenPose \.json files and no images"),
        (lambda tmp: (tmp.joinpath("v.mp4").write_text("not a video") and tmp / "v.mp4", "o.gif"),
         r"--poses=.*v\.mp4 is not a video ffmpeg can read"),
    ],
    ids=["bad-extension", "no-poses", "empty-folder", "not-a-video"],
)  # fmt: skip
def test_bad_input_is_one_line(
    market_saved_model, astronaut_png, blazepose_estimator, tmp_path, setup, message
):
    poses, out = setup(tmp_path)
    error = ConfigError if out.endswith(".avi") else DataError
    with pytest.raises(error, match=message):
        animation.animate(
            market_saved_model, astronaut_png, poses, tmp_path / out,
            estimator=blazepose_estimator, progress_bar=False, proportions=TARGET, log=lambda line: None,
        )  # fmt: skip
    assert not (tmp_path / out).exists()


def test_json_frame_where_openpose_found_nobody_is_bridged(
    market_saved_model, astronaut_png, blazepose_estimator, tmp_path
):
    poses = _json_sequence(tmp_path / "poses", np.stack([STANDING_RC] * 3))
    nobody = poses / "frame_001.json"
    nobody.write_text(json.dumps({"people": []}))  # what OpenPose writes for such a frame
    made = animation.animate(
        market_saved_model, astronaut_png, poses, tmp_path / "o.gif",
        estimator=blazepose_estimator, progress_bar=False, proportions=TARGET, log=lambda line: None,
    )  # fmt: skip
    assert made["without_person"] == [str(nobody)]
    assert (made["frames"], made["empty_frames"]) == (3, 0)


@pytest.mark.parametrize(
    ("fps", "out", "error", "message"),
    [
        (float("inf"), "o.gif", ConfigError, r"--fps=inf must be a positive number"),
        (None, "a_file/o.gif", DataError, r"cannot write --out=.*a_file/o\.gif: "),
    ],
    ids=["infinite-fps", "out-below-a-file"],
)
def test_unusable_fps_or_out_is_one_line(
    market_saved_model, astronaut_png, blazepose_estimator, tmp_path, fps, out, error, message
):
    (tmp_path / "a_file").write_text("a file, not a folder")
    poses = _json_sequence(tmp_path / "poses", np.stack([STANDING_RC] * 2))
    with pytest.raises(error, match=message):
        animation.animate(
            market_saved_model, astronaut_png, poses, tmp_path / out, fps=fps,
            estimator=blazepose_estimator, progress_bar=False, proportions=TARGET, log=lambda line: None,
        )  # fmt: skip
    assert not list(tmp_path.glob(atomic.LEFTOVER_PATTERN))


# ---- --proportions and --background -----------------------------------------------------------

# A woman seen whole, sitting on a sofa (labelme-examples, a VOC 2011 photo): both shoulders and
# both hips found, so her body can be measured.
SITTING = "/usr/share/doc/labelme-examples/examples/bbox_detection/data_annotated/2011_000006.jpg"
needs_sitting = pytest.mark.skipif(
    not os.path.exists(SITTING), reason="Debian's labelme-examples is not installed (the photo)"
)


def _sitting_crop(estimator):
    """The sitting woman's crop and keypoints in the 128x64 frame, as pg2-animate takes them."""
    from pg2_tf.people import finder, photos

    picker = finder.PersonPicker(estimator, finder.parse_person("largest", "--person"))
    return photos.person_in_model_frame(*photos.find_person(SITTING, picker), 128, 64)


def _waving(frames=4):
    """The standing pose with the right arm rising frame by frame: [frames, 18, 2]."""
    poses = np.stack([STANDING_RC] * frames)
    for t in range(frames):
        poses[t, 4] += [-16 * t, -8 * t]
    return poses


def _waving_sequence(folder, frames=4):
    return _json_sequence(folder, _waving(frames))


@needs_sitting
def test_retargeted_animation_keeps_the_persons_bones_at_one_scale(
    market_saved_model, blazepose_estimator, tmp_path
):
    from pg2_tf.core import retarget

    poses = _waving_sequence(tmp_path / "poses")
    made = animation.animate(
        market_saved_model, SITTING, poses, tmp_path / "o.gif", window=1,
        estimator=blazepose_estimator, progress_bar=False, log=lambda line: None,
    )  # fmt: skip
    source = _sitting_crop(blazepose_estimator)
    lengths = retarget.source_bone_lengths(source.keypoints_rc)
    drawn = made["poses"]
    for parent, child in [(2, 3), (3, 4), (8, 9), (9, 10), (1, 2), (1, 5)]:
        bone = np.linalg.norm(drawn[:, child] - drawn[:, parent], axis=-1)
        np.testing.assert_allclose(bone, made["scale"] * lengths[child], rtol=1e-4)
    target = animation.model_frame_tracks(_waving(), 128, 64, window=1)  # the driver's
    hips = (drawn[:, 8] + drawn[:, 11]) / 2
    np.testing.assert_allclose(hips, (target[:, 8] + target[:, 11]) / 2, atol=1e-3)


@needs_sitting
def test_kept_background_is_the_same_in_every_frame(
    market_saved_model, blazepose_estimator, tmp_path, monkeypatch
):
    from pg2_tf.apps import background

    written = {}
    monkeypatch.setattr(animation, "write_animation", lambda frames, path, fps: written.update(
        frames=frames))  # fmt: skip
    made = animation.animate(
        market_saved_model, SITTING, _waving_sequence(tmp_path / "poses"), tmp_path / "o.gif",
        background="source", estimator=blazepose_estimator, progress_bar=False,
        log=lambda line: None,
    )  # fmt: skip
    source = _sitting_crop(blazepose_estimator)
    kept = background.source_background(source.image, source.keypoints_rc, blazepose_estimator)
    frames = written["frames"]
    outside_everyone = np.ones((128, 64), bool)
    for frame, drawn in zip(frames, made["poses"], strict=True):
        outside = background.paste_alpha(drawn, 128, 64) == 0
        np.testing.assert_array_equal(frame[outside], kept.image[outside])
        outside_everyone &= outside
    assert outside_everyone.mean() > 0.2  # a real part of the frame is background
    for frame in frames[1:]:
        np.testing.assert_array_equal(frame[outside_everyone], frames[0][outside_everyone])


@needs_sitting
def test_save_poses_writes_the_drawn_poses_beside_the_estimated_ones(
    market_saved_model, blazepose_estimator, tmp_path
):
    from pg2_tf.core import pose_files

    frames = np.stack([iio.imread(SITTING)] * 2)
    video = tmp_path / "same.mp4"
    iio.imwrite(video, frames, plugin="FFMPEG", fps=5)
    made = animation.animate(
        market_saved_model, SITTING, video, tmp_path / "o.gif", save_poses=tmp_path / "saved",
        estimator=blazepose_estimator, progress_bar=False, log=lambda line: None,
    )  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "saved").glob("*.json")) == [
        "000000.json", "000001.json"]  # fmt: skip
    for t in range(2):
        drawn = pose_files.read_openpose_json(tmp_path / "saved" / "model_frame" / f"{t:06d}.json")
        np.testing.assert_allclose(drawn, made["poses"][t], atol=1e-3)


def test_a_source_without_hips_is_refused_before_the_poses_are_read(
    market_saved_model, astronaut_png, blazepose_estimator, tmp_path
):
    with pytest.raises(DataError, match=r"^--image: .* give --proportions=target$"):
        animation.animate(
            market_saved_model, astronaut_png, tmp_path / "absent", tmp_path / "o.gif",
            estimator=blazepose_estimator, progress_bar=False, log=lambda line: None,
        )  # fmt: skip
