"""Retargeting (pg2_tf.core.retarget): the source's bone lengths with the target's angles."""

import numpy as np
import pytest

from pg2_tf.core import pose, retarget
from pg2_tf.core.errors import DataError

IMG_H, IMG_W = 128, 64


def _person(height: float, width: float, top: float = 10.0, centre: float = 32.0) -> np.ndarray:
    """An upright person: joints (row, col) at fixed fractions of their height and width."""
    fractions = {  # joint: (fraction of height from the top, fraction of width from the centre)
        0: (0.06, 0.0), 1: (0.18, 0.0), 2: (0.18, -0.5), 3: (0.36, -0.55), 4: (0.52, -0.6),
        5: (0.18, 0.5), 6: (0.36, 0.55), 7: (0.52, 0.6), 8: (0.50, -0.25), 9: (0.74, -0.27),
        10: (1.0, -0.28), 11: (0.50, 0.25), 12: (0.74, 0.27), 13: (1.0, 0.28),
        14: (0.04, -0.08), 15: (0.04, 0.08), 16: (0.05, -0.18), 17: (0.05, 0.18),
    }  # fmt: skip
    keypoints = np.zeros((18, 2))
    for joint, (down, across) in fractions.items():
        keypoints[joint] = (top + down * height, centre + across * width)
    return keypoints


def _dancer() -> np.ndarray:
    """A target pose with bent limbs: the upright person's joints moved about."""
    target = _person(90, 40, top=20)
    rng = np.random.default_rng(3)
    return target + rng.uniform(-6, 6, target.shape)


def _bones_present(*poses):
    return [
        (parent, child)
        for parent, child in retarget.BONES
        if parent != retarget.HIP_CENTRE
        and all(not pose.missing_joints(p)[[parent, child]].any() for p in poses)
    ]


def test_every_source_bone_keeps_its_length_and_takes_the_target_angle():
    source, target = _person(100, 30), _dancer()
    out, scale = retarget.retarget_sequence(source, target, IMG_H, IMG_W)
    assert scale == 1.0
    bones = _bones_present(source, target)
    assert len(bones) == 15  # all but the three bones from the virtual hip centre
    for parent, child in bones:
        got = out[child].astype(np.float64) - out[parent]
        want = target[child] - target[parent]
        length = np.linalg.norm(source[child] - source[parent])
        assert abs(np.linalg.norm(got) - length) < 1.0, (parent, child)
        angle = np.degrees(np.arctan2(got[0], got[1]) - np.arctan2(want[0], want[1]))
        assert abs((angle + 180) % 360 - 180) < 1.0, (parent, child)


def test_a_tall_thin_person_in_a_short_wide_pose_keeps_their_height():
    tall_thin, short_wide = _person(110, 16, top=8), _person(70, 44, top=25)
    out, scale = retarget.retarget_sequence(tall_thin, short_wide, IMG_H, IMG_W)
    assert scale == 1.0
    height = out[[10, 13], 0].mean() - out[[14, 15], 0].mean()  # eyes to ankles
    want = tall_thin[[10, 13], 0].mean() - tall_thin[[14, 15], 0].mean()
    assert abs(height / want - 1) < 0.02
    # ... and their shoulder width, not the short wide person's.
    assert abs(np.linalg.norm(out[2] - out[5]) - 16) < 1.0


def test_the_skeleton_scale_is_constant_over_an_animation():
    source = _person(100, 30)
    # The driver walks towards the camera: they grow from 50 to 120 px tall.
    frames = np.stack([_person(height, height / 3, top=4) for height in np.linspace(50, 120, 8)])
    out, scale = retarget.retarget_sequence(source, frames, IMG_H, IMG_W)
    thigh_and_torso = [
        np.linalg.norm(out[:, 8] - out[:, 9], axis=-1),
        np.linalg.norm(out[:, 1] - (out[:, 8] + out[:, 11]) / 2, axis=-1),
    ]
    for lengths in thigh_and_torso:
        np.testing.assert_allclose(lengths, lengths[0], rtol=1e-4)
    torso = np.linalg.norm(source[1] - (source[8] + source[11]) / 2)
    np.testing.assert_allclose(thigh_and_torso[1], scale * torso, rtol=1e-4)
    # Placed at the driver's hips in every frame.
    np.testing.assert_allclose(
        (out[:, 8] + out[:, 11]) / 2, (frames[:, 8] + frames[:, 11]) / 2, atol=1e-3
    )


def test_a_skeleton_too_big_for_the_frame_shrinks_by_one_scale_to_fit():
    source = _person(120, 30, top=4)
    low_hips = _person(100, 30, top=26)  # the hips 20 px lower: the feet would leave the frame
    out, scale = retarget.retarget_sequence(source, low_hips, IMG_H, IMG_W)
    assert scale < 1
    assert out[[10, 13], 0].max() == pytest.approx(IMG_H - 1, abs=1e-3)


def test_a_bone_missing_in_the_source_takes_the_table_length_from_the_torso():
    source = _person(100, 30)
    source[[3, 4, 6, 7]] = pose.MISSING  # both arms hidden
    out, _ = retarget.retarget_sequence(source, _dancer(), IMG_H, IMG_W)
    body_height = _torso(source) / (0.818 - 0.530)  # Drillis & Contini: shoulder, hip heights
    for upper, lower in [(3, 4), (6, 7)]:
        shoulder = upper - 1
        assert np.linalg.norm(out[upper] - out[shoulder]) == pytest.approx(
            0.186 * body_height, rel=1e-4
        )
        assert np.linalg.norm(out[lower] - out[upper]) == pytest.approx(
            0.146 * body_height, rel=1e-4
        )


def _torso(keypoints):
    return np.linalg.norm((keypoints[2] + keypoints[5]) / 2 - (keypoints[8] + keypoints[11]) / 2)


def test_a_limb_takes_the_longer_of_its_right_and_left_lengths():
    source = _person(100, 30)
    source[4] = source[3] + 0.7 * (source[4] - source[3])  # the right forearm turned away
    out, _ = retarget.retarget_sequence(source, _dancer(), IMG_H, IMG_W)
    left_forearm = np.linalg.norm(source[7] - source[6])
    assert np.linalg.norm(out[4] - out[3]) == pytest.approx(left_forearm, abs=0.01)


def test_a_limb_far_shorter_than_typical_counts_as_pointing_at_the_camera():
    source = _person(100, 30)
    for hip, knee, ankle in [(8, 9, 10), (11, 12, 13)]:  # sitting, thighs towards the camera
        shift = 0.7 * (source[knee] - source[hip])
        source[[knee, ankle]] -= shift
    out, _ = retarget.retarget_sequence(source, _dancer(), IMG_H, IMG_W)
    body_height = _torso(source) / (0.818 - 0.530)
    for hip, knee in [(8, 9), (11, 12)]:
        thigh = np.linalg.norm(out[knee] - out[hip])
        assert thigh == pytest.approx((0.530 - 0.285) * body_height, rel=1e-4)


def test_joints_missing_in_the_target_stay_missing():
    target = _dancer()
    target[[6, 7, 12]] = pose.MISSING
    out, _ = retarget.retarget_sequence(_person(100, 30), target, IMG_H, IMG_W)
    assert np.array_equal(pose.missing_joints(out), pose.missing_joints(target))


@pytest.mark.parametrize("hidden", [[8], [2, 5]])
def test_a_source_without_shoulders_and_hips_is_refused_naming_the_flag(hidden):
    source = _person(100, 30)
    source[hidden] = pose.MISSING
    with pytest.raises(DataError, match=r"^--image: .*--proportions=target") as error:
        retarget.retarget_sequence(source, _dancer(), IMG_H, IMG_W)
    assert "\n" not in str(error.value)


def test_a_target_without_hips_hangs_from_its_neck():
    source, target = _person(100, 30), _dancer()
    target[[8, 11]] = pose.MISSING  # the driver's hips hidden: knees hang from the neck
    out, scale = retarget.retarget_sequence(source, target, IMG_H, IMG_W)
    np.testing.assert_allclose(out[1], target[1], atol=1e-3)  # placed at the driver's neck
    for parent, child in [(1, 2), (2, 3), (3, 4), (1, 0), (9, 10)]:
        got = np.linalg.norm(out[child] - out[parent])
        want = scale * np.linalg.norm(source[child] - source[parent])
        assert got == pytest.approx(want, abs=0.01)
    # The knee hangs from the neck by torso + half the hips + thigh, in the driver's direction.
    torso = np.linalg.norm(source[1] - (source[8] + source[11]) / 2)
    half_hips = np.linalg.norm(source[8] - source[11]) / 2
    thigh = np.linalg.norm(source[9] - source[8])
    knee = out[9] - out[1]
    assert np.linalg.norm(knee) == pytest.approx(scale * (torso + half_hips + thigh), abs=0.01)
    driver = target[9] - target[1]
    assert np.dot(knee, driver) / np.linalg.norm(knee) / np.linalg.norm(driver) > 0.9999
