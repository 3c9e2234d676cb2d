"""pg2_tf.people.finder: every person of a real scene found (MediaPipe's own keypoints of each person's
crop as the reference), listed largest first, and one chosen by --person.

The scenes are real photos from Debian's labelme-examples and scikit-image, and scenes composed
of those people pasted small onto a wide real background (tests/fixtures/people/scenes.py); the
reference (tests/fixtures/people/reference.json) was written by mediapipe 0.10.21 itself on one
crop per person, in a separate environment (make_reference.py there).
"""

import json

import numpy as np
import pytest
from helpers import needs_people_photos, people_reference, people_scenes, run_keypoints_cli

from pg2_tf.core.errors import ConfigError, DataError
from pg2_tf.people import blazepose, finder

REFERENCE = people_reference()


scenes = people_scenes()
needs_photos = needs_people_photos(scenes)


@pytest.fixture(scope="module")
def estimator(blazepose_model_dir):
    return blazepose.KeypointEstimator(blazepose_model_dir)


def _reference_joints(case, person, height, width):
    landmarks = REFERENCE[case][person]["landmarks_xyv"]
    return blazepose.joints_from_landmarks(np.array(landmarks), height, width)


def _median_error(found, reference_xyc):
    both = (found.keypoints_xyc[:, 2] > 0) & (reference_xyc[:, 2] > 0)
    if both.sum() < 3:
        return np.inf
    return float(np.median(np.hypot(*(found.keypoints_xyc[both, :2] - reference_xyc[both, :2]).T)))


def _match(found, case, height, width):
    """reference person -> (index of the found person nearest them, median joint error px)."""
    matches = {}
    for person, entry in REFERENCE[case].items():
        if entry["landmarks_xyv"] is None:
            continue
        reference = _reference_joints(case, person, height, width)
        errors = [_median_error(candidate, reference) for candidate in found]
        matches[person] = (int(np.argmin(errors)), min(errors))
    return matches


@needs_photos
def test_every_person_of_a_wide_scene_is_found_small_ones_included(estimator):
    picture, pasted = scenes.scene("street_768")  # 768x576, people 80 to 200 px tall

    found = finder.find_people(estimator, picture, "street_768")

    # Measured: median joint errors 3.3, 2.9, 0.9, 1.0 and 0.5 px (200 ... 80 px tall people).
    matches = _match(found, "street_768", *picture.shape[:2])
    assert len(found) == len(pasted) == len(matches) == 5
    assert sorted(index for index, _ in matches.values()) == [0, 1, 2, 3, 4]
    for person, (_, error) in matches.items():
        assert error <= 4.0, person


@needs_photos
def test_people_are_listed_largest_first(estimator):
    picture, pasted = scenes.scene("street_768")

    found = finder.find_people(estimator, picture, "street_768")

    areas = [finder.box_area(person.box_xyxy) for person in found]
    assert areas == sorted(areas, reverse=True)
    matches = _match(found, "street_768", *picture.shape[:2])
    assert matches["camera"][0] == 0  # pasted 200 px tall: the largest
    assert matches["astronaut"][0] == 4  # 80 px


@needs_photos
def test_both_men_of_a_real_photo_are_found(estimator):
    photo = scenes.load("2011_000003.jpg")

    found = finder.find_people(estimator, photo, "2011_000003.jpg")

    # Measured: 1.7 and 5.4 px median joint errors against MediaPipe on each man's crop.
    matches = _match(found, "2011_000003.jpg", *photo.shape[:2])
    assert len(found) == 2
    assert {index for index, _ in matches.values()} == {0, 1}
    assert all(error <= 8.0 for _, error in matches.values())


def test_a_single_person_costs_one_detection_and_one_landmark_run_as_before(estimator):
    import skimage.data

    calls = {"detect": 0, "landmarks": 0}

    class Counting:
        def detect(self, *args, **kwargs):
            calls["detect"] += 1
            return estimator.detect(*args, **kwargs)

        def landmarks_in_roi(self, *args, **kwargs):
            calls["landmarks"] += 1
            return estimator.landmarks_in_roi(*args, **kwargs)

    astronaut = skimage.data.astronaut()
    found = finder.find_people(Counting(), astronaut, "astronaut")

    assert calls == {"detect": 1, "landmarks": 1}  # what estimator(astronaut) runs
    assert len(found) == 1
    np.testing.assert_array_equal(found[0].keypoints_xyc, estimator(astronaut).keypoints_xyc)


def test_tiles_cover_the_photo_and_overlap_by_a_third():
    windows = finder.tile_windows(576, 768, side=256)

    assert all(side == 256 for _, _, side in windows)
    xs = sorted({x0 for x0, _, _ in windows})
    ys = sorted({y0 for _, y0, _ in windows})
    assert xs[0] == ys[0] == 0 and xs[-1] == 768 - 256 and ys[-1] == 576 - 256
    assert max(np.diff(xs)) <= 256 * 2 / 3 + 1e-9 and max(np.diff(ys)) <= 256 * 2 / 3 + 1e-9
    assert len(windows) == len(xs) * len(ys) == 12
    assert finder.tile_windows(200, 250, side=256) == [(0.0, 0.0, 200), (50.0, 0.0, 200)]
    assert finder.tile_windows(256, 256, side=256) == []


def test_tiles_flag_values(estimator):
    with pytest.raises(ConfigError, match="tiles='some' must be one of auto, always, never"):
        finder.find_people(estimator, np.zeros((8, 8, 3), np.uint8), tiles="some")


# ---- choosing a person ----------------------------------------------------------------------


def _person(x0, y0, x1, y1):
    joints = np.zeros((18, 3), np.float32)
    joints[0] = ((x0 + x1) / 2, y0, 0.9)
    joints[10] = (x0, y1, 0.9)
    joints[13] = (x1, y1, 0.9)
    return blazepose.PersonKeypoints(keypoints_xyc=joints, box_xyxy=(x0, y0, x1, y1))


FOUND = [_person(100, 100, 200, 400), _person(300, 50, 350, 200), _person(500, 300, 520, 360)]


@pytest.mark.parametrize(
    "text, expected",
    [
        (None, 0),
        ("largest", 0),
        ("1", 1),
        ("2", 2),
        ("310,120", 1),  # inside person 1's joints
        ("540, 330", 2),  # 20 px right of person 2 (60 px tall): within half a height
    ],
)
def test_person_is_largest_an_index_or_the_nearest_to_a_pixel(text, expected):
    choice = finder.parse_person(text)

    index, person = finder.choose_person(FOUND, choice, "scene.jpg")

    assert index == expected and person is FOUND[expected]


@pytest.mark.parametrize("text", ["biggest", "-1", "1.5", "3,", "x,y", "1,2,3", "nan,4"])
def test_a_person_that_is_not_a_choice_is_one_line_naming_the_flag(text):
    with pytest.raises(ConfigError, match=f"^--pose_person={text.strip()} must be 'largest'"):
        finder.parse_person(text, "--pose_person")


def test_an_index_that_does_not_exist_says_how_many_people_were_found():
    with pytest.raises(DataError) as error:
        finder.choose_person(FOUND, finder.parse_person("3"), "scene.jpg")
    assert str(error.value) == (
        "--person=3: only 3 people found in scene.jpg (indices 0 to 2, largest first)"
    )


def test_a_point_far_from_everyone_is_refused():
    with pytest.raises(DataError, match=r"^--person=700,20: no person near that pixel \(3 people"):
        finder.choose_person(FOUND, finder.parse_person("700,20"), "scene.jpg")


def test_nobody_found_is_no_person_found():
    with pytest.raises(blazepose.NoPersonFound, match="^no person found in empty.jpg$"):
        finder.choose_person([], finder.parse_person("1"), "empty.jpg")


# ---- pg2-keypoints ----------------------------------------------------------------------------


@needs_photos
def test_cli_lists_everyone_largest_first_and_draws_their_indices(tmp_path, blazepose_model_dir):
    from PIL import Image

    picture, _ = scenes.scene("street_768")
    result = run_keypoints_cli(tmp_path, picture, blazepose_model_dir)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == (
        f"5 people found in {tmp_path / 'photo.png'} (largest first):"
    )
    document = json.loads((tmp_path / "people.json").read_text())
    assert len(document["people"]) == 5
    listed = [np.array(p["pose_keypoints_2d"]).reshape(18, 3) for p in document["people"]]
    matches = _match(
        [blazepose.PersonKeypoints(xyc.astype(np.float32), (0, 0, 1, 1)) for xyc in listed],
        "street_768",
        *picture.shape[:2],
    )
    assert matches["camera"][0] == 0 and matches["astronaut"][0] == 4
    drawn = np.asarray(Image.open(tmp_path / "drawn.png"))
    # Each index is written in a yellow label above its person.
    yellow = (drawn[..., 0] > 240) & (drawn[..., 1] > 240) & (drawn[..., 2] < 20)
    for xyc in listed:
        present = xyc[:, 2] > 0
        x0, y0 = xyc[present, :2].min(axis=0)
        x1 = xyc[present, 0].max()
        above = yellow[max(0, int(y0) - 40) : int(y0) + 2, max(0, int(x0) - 5) : int(x1) + 5]
        assert above.sum() > 20


@needs_photos
@pytest.mark.parametrize("name", ["coffee.jpg", "2011_000025.jpg"])
def test_photos_without_people_give_nobody_tiles_included(estimator, name):
    import io

    import skimage.data
    from PIL import Image

    if name == "coffee.jpg":  # JPEG's blocks on the cup once fooled the tiles into a person
        buffer = io.BytesIO()
        Image.fromarray(skimage.data.coffee()).save(buffer, format="JPEG")
        photo = np.asarray(Image.open(buffer))
    else:  # the buses behind the composed scenes
        photo = scenes.load(name)

    assert finder.find_people(estimator, photo, name, tiles="always") == []
