"""pg2_tf.people.tracks: keypoint tracks over time are bridged and smoothed so animations do not flicker."""

import numpy as np
import pytest

from pg2_tf.people import tracks


def _track(rows, cols=None, joint=0, frames=None):
    """A [T, 18, 2] track where only ``joint`` is present (None in rows = missing that frame)."""
    count = len(rows) if frames is None else frames
    out = np.full((count, 18, 2), -1.0)
    for t, row in enumerate(rows):
        if row is not None:
            out[t, joint] = [row, t if cols is None else cols[t]]
    return out


def test_jittered_track_is_smoothed_towards_its_centre():
    jitter = np.array([2.0, -2.0] * 10)
    smoothed = tracks.smooth_tracks(_track(50 + jitter), window=5, max_gap=0)
    rows = smoothed[:, 0, 0]
    # Inside, 5 alternating values of +-2 average to +-0.4; the ends keep a smaller window.
    np.testing.assert_allclose(np.abs(rows[2:-2] - 50), 0.4)
    assert rows[0] == 52 and rows[1] == pytest.approx(50 + 2 / 3)
    assert np.std(rows[2:-2]) < np.std(50 + jitter) / 4


def test_joint_moving_at_constant_speed_is_not_moved():
    rows = 10 + 1.5 * np.arange(12)
    smoothed = tracks.smooth_tracks(_track(rows), window=7)
    np.testing.assert_allclose(smoothed[:, 0, 0], rows)
    np.testing.assert_allclose(smoothed[:, 0, 1], np.arange(12))


def test_gap_of_k_frames_is_filled_linearly_between_its_neighbours():
    rows = [10.0, 12.0, None, None, None, 20.0, 22.0]
    filled = tracks.bridge_gaps(_track(rows, cols=[5.0] * 7), max_gap=3)
    np.testing.assert_allclose(filled[2:5, 0, 0], [14.0, 16.0, 18.0])
    np.testing.assert_allclose(filled[2:5, 0, 1], [5.0, 5.0, 5.0])
    np.testing.assert_array_equal(filled[:, 1:], -1)  # the joints never seen stay missing


def test_joint_missing_longer_than_max_gap_stays_missing():
    rows = [10.0, None, None, None, None, None, 20.0]
    smoothed = tracks.smooth_tracks(_track(rows), window=3, max_gap=4)
    np.testing.assert_array_equal(smoothed[1:6, 0], -1)
    assert smoothed[0, 0, 0] == 10.0 and smoothed[6, 0, 0] == 20.0


def test_nothing_is_extrapolated_before_the_first_or_after_the_last_sighting():
    rows = [None, None, 30.0, 31.0, None]
    filled = tracks.bridge_gaps(_track(rows), max_gap=5)
    np.testing.assert_array_equal(filled[[0, 1, 4], 0], -1)


def test_even_window_is_refused():
    with pytest.raises(ValueError, match="window must be an odd number"):
        tracks.centred_moving_average(_track([1.0, 2.0]), window=4)


# ---- PersonTracker -----------------------------------------------------------------------------


def _standing(x, y, height=100.0):
    """A box and 18 joints of a person whose head top is at (x, y)."""
    joints = np.zeros((18, 3))
    joints[:, 0] = x + np.linspace(-10, 10, 18)
    joints[:, 1] = y + np.linspace(0, height, 18)
    joints[:, 2] = 0.9
    return np.array([x - 20, y, x + 20, y + height]), joints


def _frame(*people):
    boxes = np.array([box for box, _ in people]).reshape(-1, 4)
    joints = np.array([joints for _, joints in people]).reshape(-1, 18, 3)
    return boxes, joints


def test_tracker_keeps_each_walkers_id_as_they_cross_and_a_hidden_one_is_a_gap():
    tracker = tracks.PersonTracker()
    red, blue = np.array([1.0] + [0.0] * 63), np.array([0.0] * 63 + [1.0])
    seen = []
    for t in range(11):
        left, right = _standing(100 + 20 * t, 50), _standing(300 - 20 * t, 60)
        if t == 5:  # side by side at x = 200: the right one hidden behind the left one
            boxes, joints = _frame(left)
            ids = tracker.update(boxes, joints, [red])
        else:
            boxes, joints = _frame(left, right)
            ids = tracker.update(boxes, joints, [red, blue])
        seen.append(ids)

    assert seen[0] == [0, 1]
    assert all(ids == [0, 1] for t, ids in enumerate(seen) if t != 5)
    assert seen[5] == [0]  # the visible walker keeps their id; the hidden one is a gap


def test_tracker_never_hands_a_person_of_other_clothes_to_a_lost_track():
    tracker = tracks.PersonTracker()
    red, blue = np.array([1.0] + [0.0] * 63), np.array([0.0] * 63 + [1.0])
    boxes, joints = _frame(_standing(100, 50))
    assert tracker.update(boxes, joints, [red]) == [0]
    boxes, joints = _frame(_standing(102, 50))  # the same place, someone else
    assert tracker.update(boxes, joints, [blue]) == [1]
    boxes, joints = _frame(_standing(600, 50))  # far from everyone
    assert tracker.update(boxes, joints, [red]) == [2]


def test_a_walker_half_hidden_for_a_frame_keeps_their_track_after_a_gap():
    # Poses only (no clothes): legs hidden behind someone for one frame, then 3 frames unseen.
    tracker = tracks.PersonTracker()
    ids = []
    for t in range(12):
        box, joints = _standing(100 + 25 * t, 50)
        if t == 6:  # the legs hidden: the box is 60 % of the walker's height
            keep = joints[:, 1] <= 50 + 60
            joints[~keep] = 0.0
            box = np.array([box[0], 50.0, box[2], 110.0])
        if t in (7, 8, 9):
            ids.append(tracker.update(np.zeros((0, 4)), np.zeros((0, 18, 3))))
            continue
        ids.append(tracker.update(*_frame((box, joints))))

    assert ids[6] == [0] and ids[10] == [0] and ids[11] == [0]
