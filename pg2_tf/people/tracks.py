"""Keypoint tracks over time: short gaps bridged, jitter smoothed (numpy only, no I/O).

A track is ``tracks_rc``: float ``[T, J, 2]``, the (row, col) of J points (the 18 COCO joints, or
any other points) in each of T frames, -1 for a point missing in a frame (the convention of
:mod:`pg2_tf.core.pose`); the docstrings say 18 for the joints. A pose
estimator run frame by frame jitters by a pixel or two and loses a joint now and then; generated
frames then flicker. :func:`smooth_tracks` removes both before generation.
"""

import numpy as np

from pg2_tf.core.pose import MISSING


def bridge_gaps(tracks_rc, max_gap: int) -> np.ndarray:
    """Fills short runs of missing frames of each joint by linear interpolation.

    Args:
        tracks_rc: float ``[T, 18, 2]`` (row, col), -1 missing.
        max_gap: the longest run of missing frames that is filled; a run must have the joint
            present on both sides (nothing is extrapolated before the first or after the last
            frame where the joint is seen).

    Returns:
        float64 ``[T, 18, 2]``: a filled frame ``t`` between present frames ``a < t < b`` gets
        ``x_a + (x_b - x_a) * (t - a) / (b - a)``; longer gaps stay -1.
    """
    tracks_rc = _check_tracks(tracks_rc)
    filled = tracks_rc.copy()
    present = ~np.any(tracks_rc == MISSING, axis=2)  # [T, 18]
    for joint in range(tracks_rc.shape[1]):
        frames = np.flatnonzero(present[:, joint])
        for start, end in zip(frames[:-1], frames[1:], strict=True):
            gap = end - start - 1
            if 0 < gap <= max_gap:
                weights = (np.arange(start + 1, end) - start) / (end - start)
                filled[start + 1 : end, joint] = tracks_rc[start, joint] + weights[:, None] * (
                    tracks_rc[end, joint] - tracks_rc[start, joint]
                )
    return filled


def centred_moving_average(tracks_rc, window: int) -> np.ndarray:
    """Averages each joint over a centred window of frames where it is present.

    Args:
        tracks_rc: float ``[T, 18, 2]`` (row, col), -1 missing.
        window: odd number of frames (1 leaves the tracks unchanged).

    Returns:
        float64 ``[T, 18, 2]``. Frame ``t`` of a joint becomes the mean of frames
        ``t - h .. t + h``, where ``h`` is ``window // 2`` shrunk to the number of frames the joint
        is present on BOTH sides of ``t`` without a break (so the window stays centred near the
        ends of a run, and a joint moving at constant speed is left exactly where it is).
        Missing stays missing.
    """
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be an odd number of frames >= 1, got {window}")
    tracks_rc = _check_tracks(tracks_rc)
    present = ~np.any(tracks_rc == MISSING, axis=2)
    smoothed = tracks_rc.copy()
    count = len(tracks_rc)
    for joint in range(tracks_rc.shape[1]):
        # Length of the present run up to (inclusive) and from (inclusive) each frame.
        before = np.zeros(count + 1, np.int64)  # before[t + 1] for frame t; before[0] = 0
        after = np.zeros(count + 1, np.int64)  # after[t] for frame t; after[count] = 0
        for t in range(count):
            before[t + 1] = before[t] + 1 if present[t, joint] else 0
        for t in reversed(range(count)):
            after[t] = after[t + 1] + 1 if present[t, joint] else 0
        for t in np.flatnonzero(present[:, joint]):
            half = min(window // 2, before[t + 1] - 1, after[t] - 1)
            smoothed[t, joint] = tracks_rc[t - half : t + half + 1, joint].mean(axis=0)
    return smoothed


def smooth_tracks(tracks_rc, window: int = 5, max_gap: int = 4) -> np.ndarray:
    """Bridges gaps of up to ``max_gap`` frames, then applies a centred moving average.

    Args:
        tracks_rc: float ``[T, 18, 2]`` (row, col), -1 missing.
        window: odd frames averaged (see :func:`centred_moving_average`).
        max_gap: longest run of missing frames bridged (see :func:`bridge_gaps`).

    Returns:
        float64 ``[T, 18, 2]``, -1 where a joint stays missing.
    """
    return centred_moving_average(bridge_gaps(tracks_rc, max_gap), window)


def _check_tracks(tracks_rc) -> np.ndarray:
    tracks_rc = np.asarray(tracks_rc, np.float64)
    if tracks_rc.ndim != 3 or tracks_rc.shape[2] != 2:
        raise ValueError(f"tracks must have shape [T, J, 2] (row, col), got {tracks_rc.shape}")
    return tracks_rc


# ---- following people from frame to frame -----------------------------------------------------

# A detection continues a track when its box overlaps the track's predicted box by at least
# TRACK_MIN_IOU, or its joints lie within TRACK_MAX_JOINT_DISTANCE track heights (median) of the
# track's predicted joints; and its height is within TRACK_MAX_SIZE_RATIO of the track's.
TRACK_MIN_IOU = 0.2
TRACK_MAX_JOINT_DISTANCE = 0.6
TRACK_MAX_SIZE_RATIO = 2.0
# Appearance (e.g. colour histograms summing to 1) compared by 1 - Bhattacharyya coefficient:
# the same person between frames measured 0.00-0.08, two different people 0.23-0.30
# (tests/fixtures/people's crossing clip); beyond TRACK_MAX_APPEARANCE a pair is never matched.
TRACK_MAX_APPEARANCE = 0.18
TRACK_APPEARANCE_WEIGHT = 2.0
# Frames a track may go unseen and still be continued (a person behind another, a missed frame).
TRACK_MAX_LOST = 30
_VELOCITY_SMOOTHING = 0.5
# A track's height for the gates is its tallest recent box, fading by this factor a frame: a
# person half hidden for a frame (their legs behind someone) keeps their size, and a person
# walking away still shrinks within the size gate.
HEIGHT_MEMORY = 0.9


class PersonTracker:
    """Associates the people found in successive frames into tracks (one identity each).

    Each frame's people (boxes and joints) are matched to the live tracks greedily by cost, the
    best pairs first: cost = (1 - IoU of the track's predicted box and the person's box) + the
    median distance of their common joints in track heights; the prediction moves the last box
    and joints at the track's smoothed velocity. A pair outside the gates (module constants) is
    never matched, so a track whose person is hidden stays unmatched (its frames are gaps), and
    a person passing in front of another is matched to their own track first (their own cost is
    lower), never handed to the hidden one. People left over start new tracks. numpy only.
    """

    def __init__(self, max_lost: int = TRACK_MAX_LOST):
        self.max_lost = max_lost
        self.boxes = {}  # track id -> float64 [4] box (x0, y0, x1, y1) when last seen
        self.joints = {}  # track id -> float64 [18, 3] x, y, confidence when last seen
        self.velocity = {}  # track id -> float64 [2] px per frame
        self.last_seen = {}  # track id -> frame index
        self.first_seen = {}
        self.features = {}  # track id -> appearance, averaged over the frames it was seen
        self.heights = {}  # track id -> its tallest recent box height (HEIGHT_MEMORY)
        self.frame = -1

    def live_tracks(self) -> list:
        """Ids of tracks seen within ``max_lost`` frames of the current one."""
        return [t for t, seen in self.last_seen.items() if self.frame - seen <= self.max_lost]

    def predicted_box(self, track: int, frame: int | None = None) -> np.ndarray:
        """float64 [4]: the track's box moved at its velocity to ``frame`` (default: next)."""
        frame = self.frame + 1 if frame is None else frame
        shift = self.velocity[track] * (frame - self.last_seen[track])
        return self.boxes[track] + np.tile(shift, 2)

    def update(self, boxes_xyxy, joints_xyc, features=None) -> list:
        """Takes the next frame's people; returns the track id of each.

        Args:
          boxes_xyxy: float [N, 4] boxes in pixels (N may be 0).
          joints_xyc: float [N, J, 3] joints (x, y, confidence; 0 missing).
          features: optional float [N, F] appearance of each person (non-negative, summing to
            1, e.g. colour histograms); compared with the track's average appearance.

        Returns:
          list of N track ids (ints; a new id for a person that continues no track).
        """
        self.frame += 1
        boxes = np.asarray(boxes_xyxy, np.float64).reshape(-1, 4)
        joints = np.asarray(joints_xyc, np.float64)
        candidates = []
        for track in self.live_tracks():
            predicted = self.predicted_box(track, self.frame)
            shift = self.velocity[track] * (self.frame - self.last_seen[track])
            for index in range(len(boxes)):
                cost = _association_cost(
                    predicted, self.joints[track], shift, boxes[index], joints[index],
                    self.heights[track],
                )  # fmt: skip
                if cost is not None and features is not None:
                    difference = _appearance_distance(self.features[track], features[index])
                    cost = None if difference > TRACK_MAX_APPEARANCE else (
                        cost + TRACK_APPEARANCE_WEIGHT * difference
                    )  # fmt: skip
                if cost is not None:
                    candidates.append((cost, track, index))
        assigned, used = {}, set()
        for _, track, index in sorted(candidates, key=lambda c: (c[0], c[1], c[2])):
            if index not in assigned and track not in used:
                assigned[index] = track
                used.add(track)
        ids = []
        for index in range(len(boxes)):
            track = assigned.get(index)
            if track is None:
                track = max(self.last_seen, default=-1) + 1
                self.velocity[track] = np.zeros(2)
                self.first_seen[track] = self.frame
            else:
                elapsed = self.frame - self.last_seen[track]
                moved = (_centre(boxes[index]) - _centre(self.boxes[track])) / elapsed
                self.velocity[track] = (
                    _VELOCITY_SMOOTHING * self.velocity[track] + (1 - _VELOCITY_SMOOTHING) * moved
                )
            if features is not None:
                feature = np.asarray(features[index], np.float64)
                previous = self.features.get(track)
                self.features[track] = feature if previous is None else (
                    _VELOCITY_SMOOTHING * previous + (1 - _VELOCITY_SMOOTHING) * feature
                )  # fmt: skip
            remembered = self.heights.get(track, 0.0)
            if track in self.last_seen:
                remembered *= HEIGHT_MEMORY ** (self.frame - self.last_seen[track])
            self.heights[track] = max(float(boxes[index][3] - boxes[index][1]), remembered)
            self.boxes[track] = boxes[index]
            self.joints[track] = joints[index]
            self.last_seen[track] = self.frame
            ids.append(track)
        return ids


def _centre(box) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])


def _appearance_distance(a, b) -> float:
    """1 - the Bhattacharyya coefficient of two histograms summing to 1 (0 same, 1 disjoint)."""
    if a is None or b is None:
        return 0.0
    return float(1.0 - np.sqrt(np.asarray(a) * np.asarray(b)).sum())


def _box_iou(a, b) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    intersection = max(0.0, width) * max(0.0, height)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - intersection
    return float(intersection / union) if union > 0 else 0.0


def _association_cost(predicted_box, track_joints, shift, box, joints, track_height):
    """The cost of continuing a track with a person, or None outside the gates."""
    track_height = max(track_height, 1.0)
    height = max(box[3] - box[1], 1.0)
    if not 1 / TRACK_MAX_SIZE_RATIO <= height / track_height <= TRACK_MAX_SIZE_RATIO:
        return None
    iou = _box_iou(predicted_box, box)
    both = (track_joints[:, 2] > 0) & (joints[:, 2] > 0)
    if both.sum() >= 3:
        moved = track_joints[both, :2] + shift
        distance = float(np.median(np.hypot(*(moved - joints[both, :2]).T))) / track_height
    else:
        distance = float(np.hypot(*(_centre(predicted_box) - _centre(box)))) / track_height
    if iou < TRACK_MIN_IOU and distance > TRACK_MAX_JOINT_DISTANCE:
        return None
    return (1.0 - iou) + distance
