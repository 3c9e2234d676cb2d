"""--person / --pose_person on pg2-generate, pg2-animate and from_photos, and pg2-animate following
one person through a clip where two people cross (--save_poses, read back by --poses).

Photos: Debian's labelme-examples and scikit-image, composed by tests/fixtures/people/scenes.py;
reference keypoints: MediaPipe's own on each person's crop (tests/fixtures/people/reference.json).
"""

import json
import os

import imageio.v3 as iio
import numpy as np
import pytest
import skimage.data
from helpers import needs_people_photos, people_reference, people_scenes, run_module
from PIL import Image

from pg2_tf.apps import animation, generation
from pg2_tf.core.errors import ConfigError, DataError
from pg2_tf.people import blazepose, finder, photos

REFERENCE = people_reference()


scenes = people_scenes()
pytestmark = needs_people_photos(scenes)


@pytest.fixture(scope="module")
def two_men(tmp_path_factory):
    """2011_000003.jpg (two men) as a file, and the people pg2-keypoints lists in it."""
    folder = tmp_path_factory.mktemp("two_men")
    path = folder / "two_men.jpg"
    Image.fromarray(scenes.load("2011_000003.jpg")).save(path, quality=95)
    return path


@pytest.fixture(scope="module")
def astronaut_png(tmp_path_factory):
    path = tmp_path_factory.mktemp("astronaut") / "astronaut.png"
    iio.imwrite(path, skimage.data.astronaut())
    return path


@pytest.fixture(scope="module")
def crossing(tmp_path_factory):
    """The two-people-crossing clip as a folder of PNG frames, and the people's rectangles."""
    frames, rectangles = scenes.crossing_clip()
    folder = tmp_path_factory.mktemp("crossing")
    for t, frame in enumerate(frames):
        iio.imwrite(folder / f"{t:03d}.png", frame)
    return folder, frames, rectangles


def _centre(rectangle):
    x0, y0, x1, y1 = rectangle
    return f"{(x0 + x1) / 2:g},{(y0 + y1) / 2:g}"


def _cli(module, *args):
    return run_module(module, *args, timeout=300)


# ---- pg2-generate ------------------------------------------------------------------------------


def test_generate_person_takes_the_chosen_man_of_a_two_person_photo(
    market_saved_model, two_men, astronaut_png, blazepose_estimator, tmp_path
):
    import tensorflow as tf

    photo = photos.load_photo(two_men)
    found = finder.find_people(blazepose_estimator, photo, str(two_men))
    assert len(found) == 2

    paths = generation.generate(
        market_saved_model, two_men, None, tmp_path / "g.png", pose_from=astronaut_png,
        person="1", estimator=blazepose_estimator, log=lambda line: None,
        proportions="target",  # the pose as drawn: the reference below computes it so
    )  # fmt: skip

    crop = photos.person_in_model_frame(photo, found[1], 128, 64).image
    astronaut = photos.load_photo(astronaut_png)
    target = photos.person_in_model_frame(
        astronaut, finder.find_people(blazepose_estimator, astronaut)[0], 128, 64
    )
    signature = tf.saved_model.load(market_saved_model).signatures["from_keypoints"]
    expected = signature(image=crop[None], keypoints=target.keypoints_rc[None])["G2"].numpy()[0]
    np.testing.assert_array_equal(np.asarray(Image.open(paths["G2"])), expected)


@pytest.mark.parametrize(
    "flag, message",
    [
        ("--person=5", "error: --person=5: only 2 people found in {photo} (indices 0 to 1, "),
        ("--person=5,5", "error: --person=5,5: no person near that pixel (2 people found in "),
        ("--pose_person=2", "error: --pose_person=2: only 2 people found in {photo} "),
        ("--person=tallest", "error: --person=tallest must be 'largest', a person's index"),
    ],
)
def test_generate_person_that_picks_nobody_is_one_line_exit_2(two_men, tmp_path, flag, message):
    # The people are chosen before the SavedModel loads: a folder that only looks like one.
    saved_model = tmp_path / "model"
    saved_model.mkdir()
    (saved_model / "saved_model.pb").write_bytes(b"")
    result = _cli(
        "pg2_tf.generate",
        f"--saved_model={saved_model}",
        f"--image={two_men}",
        f"--pose_from={two_men}",
        f"--out={tmp_path / 'o.png'}",
        flag,
    )

    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(message.format(photo=two_men))
    assert not (tmp_path / "o.png").exists()


def test_generate_person_needs_pose_from(market_saved_model, two_men, tmp_path):
    keypoints_json = tmp_path / "k.json"
    keypoints_json.write_text(json.dumps({"people": [{"pose_keypoints_2d": [10, 10, 1] * 18}]}))
    with pytest.raises(ConfigError, match="--person and --pose_person choose people found in"):
        generation.generate(market_saved_model, two_men, keypoints_json, tmp_path / "o.png",
                          person="1")  # fmt: skip


# ---- from_photos -------------------------------------------------------------------------------


def test_from_photos_person_crops_the_chosen_person_and_lists_photos_without_them(
    two_men, blazepose_estimator, tmp_path
):
    from data_prep import from_photos

    folder = tmp_path / "photos" / "man"
    folder.mkdir(parents=True)
    Image.open(two_men).save(folder / "a.jpg", quality=95)
    Image.fromarray(skimage.data.astronaut()).save(folder / "b.png")  # one person only
    lines = []

    raw_dir, skipped = from_photos.write_raw_layout(
        from_photos.person_folders(tmp_path / "photos"), tmp_path / "raw", "market", "test",
        blazepose_estimator, lines.append, finder.parse_person("1"),
    )  # fmt: skip

    assert skipped == [
        f"{folder / 'b.png'}: --person=1: only 1 person found in {folder / 'b.png'} "
        "(indices 0 to 0, largest first)"
    ]
    written = sorted((raw_dir / "bounding_box_test").glob("*.jpg"))
    assert len(written) == 1
    photo = photos.load_photo(folder / "a.jpg")
    crop = np.asarray(Image.open(written[0]), np.float64)
    first, second = (
        np.abs(crop - photos.person_in_model_frame(photo, person, 128, 64).image).mean()
        for person in finder.find_people(blazepose_estimator, photo)
    )
    assert second < 5 and first > 4 * second  # the JPEG's loss (measured 3.1); the other man


# ---- pg2-animate: following one person ---------------------------------------------------------


def test_animate_follows_the_chosen_person_through_a_crossing_and_never_jumps(
    market_saved_model, crossing, astronaut_png, blazepose_estimator, tmp_path
):
    folder, frames, rectangles = crossing
    saved = tmp_path / "poses"
    lines = []

    made = animation.animate(
        market_saved_model, astronaut_png, folder, tmp_path / "o.gif",
        pose_person=_centre(rectangles["voc3_right"][0]), save_poses=saved,
        estimator=blazepose_estimator, progress_bar=False, log=lines.append,
        proportions="target",  # the astronaut's photo ends at her waist
    )  # fmt: skip

    names = sorted(name for name in os.listdir(saved) if name.endswith(".json"))
    assert names == [f"{t:06d}.json" for t in range(len(frames))]
    found = 0
    for t, name in enumerate(names):
        listed = json.loads((saved / name).read_text())["people"]
        assert len(listed) <= 1
        if not listed:
            continue
        found += 1
        xyc = np.array(listed[0]["pose_keypoints_2d"]).reshape(18, 3)
        centre = xyc[xyc[:, 2] > 0, :2].mean(axis=0)
        x0, y0, x1, y1 = rectangles["voc3_right"][t]
        # The followed man (walking right, behind) and never the cameraman (walking left).
        assert x0 <= centre[0] <= x1 and y0 <= centre[1] <= y1, t
        reference = REFERENCE[f"crossing_{t:02d}"]["voc3_right"]["landmarks_xyv"]
        if reference is not None and t not in (6, 7, 8, 9):  # hidden behind the cameraman
            joints = blazepose.joints_from_landmarks(np.array(reference), *frames[t].shape[:2])
            both = (joints[:, 2] > 0) & (xyc[:, 2] > 0)
            # Measured: median joint errors 0.8-2.8 px, once 6.7 px (the man is 130 px tall).
            assert np.median(np.hypot(*(joints[both, :2] - xyc[both, :2]).T)) < 8.0, t
    # Measured: found in 12 of 16 frames (hidden in 6-9).
    assert found >= 11
    assert len(made["without_person"]) == len(frames) - found

    # --poses reads the saved folder back: the saved joints, (row, col), -1 where not found.
    again = animation.read_pose_sequence(saved, blazepose_estimator, progress_bar=False)
    assert again.tracks_rc.shape == (len(frames), 18, 2)
    for t, name in enumerate(names):
        listed = json.loads((saved / name).read_text())["people"]
        expected = np.full((18, 2), -1.0)
        if listed:
            xyc = np.array(listed[0]["pose_keypoints_2d"]).reshape(18, 3)
            expected[xyc[:, 2] > 0] = xyc[xyc[:, 2] > 0][:, [1, 0]]
        np.testing.assert_allclose(again.tracks_rc[t], expected)
    assert len(again.without_person) == len(frames) - found


def test_animate_following_the_other_person_gives_the_other_track(crossing, blazepose_estimator):
    folder, frames, rectangles = crossing
    sequence = animation.read_pose_sequence(
        folder, blazepose_estimator, False, finder.parse_person(_centre(rectangles["camera"][0]))
    )
    for t, person in enumerate(sequence.people):
        if person is not None:
            centre = person.keypoints_xyc[person.keypoints_xyc[:, 2] > 0, :2].mean(axis=0)
            x0, y0, x1, y1 = rectangles["camera"][t]
            assert x0 <= centre[0] <= x1 and y0 <= centre[1] <= y1, t
    assert sum(person is not None for person in sequence.people) >= 11


def test_animate_bad_people_are_one_line_and_nothing_written(
    market_saved_model, crossing, astronaut_png, blazepose_estimator, tmp_path
):
    folder, _, _ = crossing
    video = tmp_path / "nobody.mp4"
    coffee = np.asarray(Image.fromarray(skimage.data.coffee()).resize((320, 240)))
    iio.imwrite(video, np.stack([coffee] * 4), plugin="FFMPEG", fps=5)
    cases = [
        (dict(poses=video), r"^--poses=.*nobody\.mp4: no person found in any of its 4 frames$"),
        (dict(poses=folder, pose_person="9"), r"^--pose_person=9: only 2 people found in "),
        (dict(poses=folder, pose_person="5,5"), r"^--pose_person=5,5: no person near that "),
        (dict(poses=folder, person="3"), r"^--person=3: only 1 person found in "),
    ]
    for arguments, message in cases:
        with pytest.raises(DataError, match=message):
            animation.animate(
                market_saved_model, astronaut_png, out_path=tmp_path / "o.gif",
                save_poses=tmp_path / "saved", estimator=blazepose_estimator,
                progress_bar=False, log=lambda line: None, proportions="target", **arguments,
            )  # fmt: skip
        assert not (tmp_path / "o.gif").exists() and not (tmp_path / "saved").exists()


def test_a_folder_of_openpose_json_files_of_two_people_follows_the_chosen_one(tmp_path):
    # Two walkers, 100 px tall, crossing; the files list them in a different order each frame,
    # as OpenPose does (its order is not an identity).
    def walker(x, y):
        joints = np.zeros((18, 3))
        joints[:, 0] = x + np.linspace(-10, 10, 18)
        joints[:, 1] = y + np.linspace(0, 100, 18)
        joints[:, 2] = 0.9
        return joints.reshape(-1).tolist()

    folder = tmp_path / "poses"
    folder.mkdir()
    for t in range(8):
        left, right = walker(60 + 25 * t, 40), walker(260 - 25 * t, 48)
        order = [left, right] if t % 2 == 0 else [right, left]
        (folder / f"{t:06d}.json").write_text(
            json.dumps({"people": [{"pose_keypoints_2d": values} for values in order]})
        )

    for text, start in (("1", 260), ("255,60", 260), ("0", 60)):
        sequence = animation.read_pose_sequence(folder, None, False, finder.parse_person(text))
        # The chosen walker's head (row 40 or 48, column = start +- 25 t) in every frame.
        step = 25 if start == 60 else -25
        np.testing.assert_allclose(
            sequence.tracks_rc[:, 0, 1], [start - 10 + step * t for t in range(8)]
        )
        assert sequence.without_person == []
