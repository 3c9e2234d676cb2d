"""The kept background (pg2_tf.apps.background): removal mask, inpainting, soft paste."""

import json
import os

import numpy as np
import pytest
from PIL import Image, ImageDraw

from pg2_tf.apps import background
from pg2_tf.core import pose
from pg2_tf.core.errors import ConfigError, DataError

# A standing person in the 128x64 frame, COCO-18 order, (row, col).
STANDING_RC = np.array(
    [[20, 32], [30, 32], [30, 22], [50, 20], [70, 18], [30, 42], [50, 44], [70, 46],
     [70, 26], [95, 26], [120, 26], [70, 38], [95, 38], [120, 38], [18, 30], [18, 34],
     [19, 28], [19, 36]],
    np.float32,
)  # fmt: skip


def _gradient_scene():
    """A smooth 128x64 background (a colour ramp) with a flat red person drawn on it."""
    rows, cols = np.mgrid[0:128, 0:64]
    scene = np.stack([rows * 2, cols * 4, 255 - rows * 2], axis=-1).astype(np.uint8)
    person = pose.pose_mask(STANDING_RC, 128, 64).astype(bool)
    scene[person] = (230, 20, 20)
    return scene, person


def test_paste_is_the_background_where_alpha_is_0_and_g2_where_it_is_1():
    rng = np.random.default_rng(1)
    behind, g2 = rng.integers(0, 256, (2, 128, 64, 3), dtype=np.uint8)
    alpha = background.paste_alpha(STANDING_RC, 128, 64)
    out = background.paste(behind, g2, alpha)
    np.testing.assert_array_equal(out[alpha == 0], behind[alpha == 0])
    np.testing.assert_array_equal(out[alpha == 1], g2[alpha == 1])
    between = (alpha > 0) & (alpha < 1)
    want = np.rint(behind + alpha[..., None] * (g2.astype(np.float64) - behind))
    np.testing.assert_allclose(out[between], want[between], atol=1)


def test_paste_alpha_is_1_on_the_pose_mask_and_falls_to_0_over_the_feather():
    from scipy import ndimage

    alpha = background.paste_alpha(STANDING_RC, 128, 64)
    body = pose.pose_mask(STANDING_RC, 128, 64).astype(bool)
    assert (alpha[body] == 1).all()
    # Beyond CORE_GROW + FEATHER + 1 pixels from the body nothing of G2 is taken.
    reach = background.CORE_GROW + background.FEATHER + 1
    far = ndimage.distance_transform_edt(~ndimage.binary_fill_holes(body)) > reach + 1
    assert (alpha[far] == 0).all()
    # ... and the edge is soft: a pixel's alpha never drops by more than 1 / (FEATHER + 1).
    step = 1 / (background.FEATHER + 1) + 1e-6
    assert np.abs(np.diff(alpha, axis=1)).max() <= step
    assert np.abs(np.diff(alpha, axis=0)).max() <= step


def test_source_background_keeps_every_pixel_outside_the_mask_and_fills_the_person():
    scene, person = _gradient_scene()
    kept = background.source_background(scene, STANDING_RC, estimator=None)
    assert kept.removed[person].all()  # the drawn person is inside PG2's grown mask
    np.testing.assert_array_equal(kept.image[~kept.removed], scene[~kept.removed])
    # The hole is filled from the ramp around it: no red left, close to the ramp itself.
    rows, cols = np.mgrid[0:128, 0:64]
    ramp = np.stack([rows * 2, cols * 4, 255 - rows * 2], axis=-1)
    error = np.abs(kept.image[kept.removed].astype(np.int64) - ramp[kept.removed])
    assert error.mean() < 3


def test_an_empty_mask_is_one_line_naming_the_flag():
    scene, _ = _gradient_scene()
    nobody = np.full((18, 2), -1.0)
    with pytest.raises(DataError, match=r"^--image: no person found to remove .*--background="):
        background.source_background(scene, nobody, estimator=None)


def test_an_unknown_background_is_refused():
    with pytest.raises(ConfigError, match=r"^--background=blurred must be one of"):
        background.check_background("blurred")


# Two men sitting (labelme-examples, a VOC 2011 photo) with their outlines drawn by hand.
LABELME = "/usr/share/doc/labelme-examples/examples/instance_segmentation/data_annotated/"


@pytest.mark.skipif(not os.path.isdir(LABELME), reason="Debian's labelme-examples is missing")
def test_the_removal_mask_covers_a_hand_drawn_outline(blazepose_estimator):
    from pg2_tf.people import finder, photos

    photo = photos.load_photo(LABELME + "2011_000003.jpg")
    person = finder.find_people(blazepose_estimator, photo)[1]  # the man on the left
    crop = photos.person_in_model_frame(photo, person, 128, 64)
    with open(LABELME + "2011_000003.json") as file:
        outlines = [s["points"] for s in json.load(file)["shapes"] if s["label"] == "person"]
    joints = person.keypoints_rc()[~pose.missing_joints(person.keypoints_rc())].astype(int)

    def filled(points):
        picture = Image.new("L", photo.shape[1::-1])
        ImageDraw.Draw(picture).polygon([tuple(p) for p in points], fill=1)
        return np.asarray(picture)

    # His outline: the one holding most of his joints.
    drawn = max((filled(points) for points in outlines), key=lambda m: m[tuple(joints.T)].sum())
    rows, cols = np.mgrid[0:128, 0:64]
    photo_rc = crop.crop.to_photo_rc(np.stack([rows.ravel(), cols.ravel()], axis=1))
    inside = np.all((photo_rc >= 0) & (photo_rc < photo.shape[:2]), axis=1)
    truth = np.zeros(128 * 64, bool)
    spots = np.rint(photo_rc[inside]).astype(int).clip(0, np.array(photo.shape[:2]) - 1)
    truth[inside] = drawn[spots[:, 0], spots[:, 1]] > 0
    truth = truth.reshape(128, 64)
    seg = background.segmentation_mask(crop.image, blazepose_estimator)
    pg2 = background.filled_pose_mask(crop.keypoints_rc, 128, 64)
    removed = background.removal_mask(crop.image, crop.keypoints_rc, blazepose_estimator)

    def recall(mask):
        return (mask & truth).sum() / truth.sum()

    # Measured when written: PG2's mask 0.62, the segmentation 0.91, the grown union 0.97.
    assert recall(seg) > recall(pg2) + 0.2
    assert recall(removed) > 0.95
    assert (removed & ~truth).sum() / removed.sum() < 0.2  # little background taken with him


SITTING = "/usr/share/doc/labelme-examples/examples/bbox_detection/data_annotated/2011_000006.jpg"


@pytest.mark.skipif(not os.path.exists(SITTING), reason="Debian's labelme-examples is missing")
def test_the_benchmark_measures_retargeting_and_the_backgrounds_share_of_a_frame(
    market_saved_model, blazepose_model_dir, tmp_path
):
    from benchmarks import background as benchmark

    results = benchmark.main([
        "--parts=retarget,animate", f"--saved_model={market_saved_model}", "--frames=3",
        "--rounds=1", "--precision=float32", f"--work_dir={tmp_path}",
        f"--json={tmp_path / 'out.json'}",
    ])  # fmt: skip
    assert json.loads((tmp_path / "out.json").read_text())["retarget"] == results["retarget"]
    assert 0 < results["retarget"]["ms_per_frame"] < 1  # the budget
    runs = results["animate"]["runs"]
    assert runs["generated"][0]["background_ms_per_frame"] < 0.01  # nothing to do
    source = runs["source"][0]
    share = source["background_ms_per_frame"] / source["frame_ms"]
    assert results["animate"]["background_share_of_a_frame"] == pytest.approx(share, rel=1e-3)
