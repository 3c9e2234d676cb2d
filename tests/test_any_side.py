"""People from any side: crops read whole, bodies without faces, and no false people.

References are independent of the code under test: joints marked by hand on real back-view and
profile crops of vtest.avi (tests/fixtures/any_side), the person boxes annotated in
labelme-examples' Pascal VOC XML, and pictures known to hold nobody (skimage's photos, the
empty street, crops of its background).
"""

import json
import os
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest
import skimage.data
from helpers import FIXTURES
from PIL import Image

from pg2_tf.core import pose
from pg2_tf.core.errors import DataError
from pg2_tf.people import blazepose, finder, photos, regions

ANY_SIDE = FIXTURES / "any_side"
MARKED = json.loads((ANY_SIDE / "hand_marked.json").read_text())
# A crop holds its person at 1.1 x their height (make_fixture.py): 128 / 1.1 px tall.
PERSON_HEIGHT = 128 / 1.1
VOC = "/usr/share/doc/labelme-examples/examples/bbox_detection"
needs_voc = pytest.mark.skipif(
    not os.path.isdir(VOC), reason="Debian's labelme-examples is not installed"
)


@pytest.fixture(scope="module")
def estimator():
    try:
        return blazepose.KeypointEstimator()
    except DataError as error:
        pytest.skip(str(error))


def _crop(name: str, mirrored: bool) -> np.ndarray:
    image = np.asarray(Image.open(ANY_SIDE / f"{name}.png").convert("RGB"))
    return np.ascontiguousarray(image[:, ::-1]) if mirrored else image


def _marked(name: str, mirrored: bool) -> dict:
    """The hand-marked joints, x mirrored like the crop."""

    def place(xy):
        return np.array([63 - xy[0], xy[1]] if mirrored else xy, np.float64)

    marks = MARKED[name]
    return {key: [place(xy) for xy in marks[key]] for key in ("shoulders", "ankles")}


def _pair_error(found_xy, marked_pair) -> float:
    """The larger error of two joints against an unordered pair of marks."""
    a, b = marked_pair
    straight = max(np.hypot(*(found_xy[0] - a)), np.hypot(*(found_xy[1] - b)))
    crossed = max(np.hypot(*(found_xy[0] - b)), np.hypot(*(found_xy[1] - a)))
    return min(straight, crossed)


@pytest.fixture(scope="module")
def errors_in_heights(estimator) -> dict:
    """(crop, mirrored) -> joint -> error of the crop's person against the hand marks, in
    person heights (OpenPose's neck: the marked shoulders' midpoint)."""
    errors = {}
    for name in sorted(MARKED):
        for mirrored in (False, True):
            person = regions.person_in_crop(estimator, _crop(name, mirrored), name)
            xy = person.keypoints_xyc[:, :2].astype(np.float64)
            assert (person.keypoints_xyc[[1, 2, 5, 10, 13], 2] > 0).all(), name
            marks = _marked(name, mirrored)
            pixels = {
                "neck": np.hypot(*(xy[1] - (marks["shoulders"][0] + marks["shoulders"][1]) / 2)),
                "shoulders": _pair_error(xy[[2, 5]], marks["shoulders"]),
                "ankles": _pair_error(xy[[10, 13]], marks["ankles"]),
            }
            errors[name, mirrored] = {key: value / PERSON_HEIGHT for key, value in pixels.items()}
    return errors


def test_the_neck_of_people_seen_from_behind_or_in_profile_is_within_8_percent(
    errors_in_heights,
):
    # Measured: 0.9 to 6.1 % over the six crops and their mirrored copies.
    assert max(error["neck"] for error in errors_in_heights.values()) <= 0.08


@pytest.mark.parametrize("joint", ["shoulders", "ankles"])
def test_shoulders_and_ankles_are_within_8_percent_in_most_crops(errors_in_heights, joint):
    errors = [error[joint] for error in errors_in_heights.values()]
    # Measured (12 readings): median 5.6 % (shoulders) and 5.9 % (ankles); over 8 % in 1 and 3
    # of them, at most 11.6 % and 14.1 %: legs crossing in a stride, read as one.
    assert np.median(errors) <= 0.07
    assert sum(error > 0.08 for error in errors) <= 3
    assert max(errors) <= 0.15


@pytest.mark.parametrize("name", sorted(MARKED))
def test_a_standing_person_read_from_any_side_has_head_above_hips_above_ankles(estimator, name):
    for mirrored in (False, True):
        person = regions.person_in_crop(estimator, _crop(name, mirrored), name)
        rc = person.keypoints_rc()
        rows = {}
        for part, joints in (
            ("head", [0, 14, 15, 16, 17]),
            ("hips", [8, 11]),
            ("ankles", [10, 13]),
        ):
            present = [joint for joint in joints if rc[joint, 0] >= 0]
            assert present, part
            rows[part] = rc[present, 0]
        head, hips, ankles = rows["head"], rows["hips"], rows["ankles"]
        assert head.max() < hips.min() <= hips.max() < ankles.min()
        assert pose.is_upright(rc)


@pytest.mark.parametrize("name", sorted(MARKED))
def test_mediapipes_own_pipeline_finds_nobody_in_these_crops(estimator, name):
    # Why a crop is read whole: the face detector proposes nobody in these six.
    with pytest.raises(blazepose.NoPersonFound):
        estimator(_crop(name, False), name)


@pytest.mark.parametrize("name", ["background_bollards", "background_kerb", "background_tripod"])
def test_a_crop_of_background_is_no_person(estimator, name):
    crop = _crop(name, False)

    with pytest.raises(blazepose.NoPersonFound, match=f"no person found in {name}"):
        regions.person_in_crop(estimator, crop, name)


@pytest.mark.parametrize("name", ["coffee", "chelsea", "rocket", "horse", "hubble_deep_field"])
def test_a_photo_without_people_gives_no_person_found(estimator, name):
    image = getattr(skimage.data, name)()
    image = np.stack([image] * 3, axis=-1) if image.ndim == 2 else image[..., :3]
    image = (image * 255).astype(np.uint8) if image.dtype == bool else image.astype(np.uint8)

    assert finder.find_people(estimator, image, name) == []
    with pytest.raises(blazepose.NoPersonFound):
        regions.person_in_crop(estimator, image, name)


def test_the_empty_street_has_nobody_even_with_tiles(estimator):
    street = np.asarray(Image.open(ANY_SIDE / "vtest_empty_street.jpg").convert("RGB"))

    assert finder.find_people(estimator, street, "empty street", tiles="always") == []


def _voc(name: str):
    photo = photos.load_photo(f"{VOC}/data_annotated/{name}.jpg")
    root = ElementTree.parse(f"{VOC}/data_dataset_voc/Annotations/{name}.xml").getroot()
    boxes = [
        [float(item.find(f"bndbox/{key}").text) for key in ("xmin", "ymin", "xmax", "ymax")]
        for item in root.findall("object")
        if item.find("name").text == "person"
    ]
    return photo, boxes


def _inside(point, box, margin: float = 0.0) -> bool:
    x0, y0, x1, y1 = box
    return x0 - margin <= point[0] <= x1 + margin and y0 - margin <= point[1] <= y1 + margin


@needs_voc
def test_each_annotated_man_of_a_voc_photo_is_found_inside_his_box(estimator):
    photo, boxes = _voc("2011_000003")  # one man facing the camera, one large in profile

    found = finder.find_people(estimator, photo, "2011_000003")

    assert len(found) == len(boxes) == 2
    for box in boxes:
        hips = [(p.keypoints_xyc[8, :2] + p.keypoints_xyc[11, :2]) / 2 for p in found]
        assert sum(_inside(point, box) for point in hips) >= 1


@needs_voc
def test_every_person_found_on_a_voc_sofa_lies_in_an_annotated_box(estimator):
    # Three women side by side on a sofa, overlapping, and a head behind them.
    photo, boxes = _voc("2011_000006")

    found = finder.find_people(estimator, photo, "2011_000006")

    assert len(found) >= 2
    for person in found:
        hips = (person.keypoints_xyc[8, :2] + person.keypoints_xyc[11, :2]) / 2
        assert any(_inside(hips, box) for box in boxes)


@needs_voc
def test_a_voc_photo_of_buses_has_nobody(estimator):
    photo, boxes = _voc("2011_000025")

    assert boxes == [] and finder.find_people(estimator, photo, "2011_000025") == []


def test_a_person_shaped_photo_is_read_whole_when_no_face_is_found(estimator):
    crop = _crop("back_83", False)  # 64 x 128: shaped like a person

    _, person = finder.find_person(estimator, crop, finder.PersonChoice(), "back_83")

    assert regions.fits_a_person(128, 64) and not regions.fits_a_person(128, 192)
    assert (person.keypoints_xyc[[1, 2, 5, 10, 13], 2] > 0).all()


def test_a_person_seen_from_behind_in_a_wider_photo_is_found_by_their_body(estimator):
    crop = _crop("back_83", False)
    wide = np.concatenate([np.full((128, 96, 3), 128, np.uint8), crop], axis=1)
    shoulders = _marked("back_83", False)["shoulders"]
    neck = (shoulders[0] + shoulders[1]) / 2 + [96, 0]

    found = finder.find_people(estimator, wide, "wide")

    assert len(found) == 1
    assert np.hypot(*(found[0].keypoints_xyc[1, :2] - neck)) <= 0.08 * PERSON_HEIGHT


def test_a_lying_body_is_not_upright():
    standing = np.full((18, 2), -1.0)
    standing[[2, 5, 8, 11]] = [[30, 20], [30, 40], [70, 22], [70, 38]]  # (row, col)
    lying = standing[:, ::-1].copy()
    lying[pose.missing_joints(standing)] = -1

    assert pose.torso_angle(standing) == pytest.approx(0.0)
    assert pose.torso_angle(lying) == pytest.approx(90.0)
    assert pose.is_upright(standing) and not pose.is_upright(lying)


def test_a_folder_given_as_a_video_says_it_is_a_folder(tmp_path):
    with pytest.raises(DataError, match=r"^--video=.* is a folder; give a video file$"):
        photos.video_frames(tmp_path, "--video")


def test_an_avi_cut_short_says_how_many_frames_could_be_read(tmp_path):
    import imageio.v3 as iio

    whole = tmp_path / "whole.avi"
    frames = np.random.default_rng(0).integers(0, 255, (40, 64, 64, 3), dtype=np.uint8)
    iio.imwrite(whole, frames, plugin="FFMPEG", fps=10, codec="mjpeg")
    data = whole.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])

    assert photos.video_frames(whole)[1] == 40
    with pytest.raises(DataError, match=r"cut short: (\d+) of the 40 frames its header announces"):
        photos.video_frames(cut, "--video")
