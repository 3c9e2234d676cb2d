"""Keypoint tracks over time: short gaps bridged, jitter smoothed (numpy only, no I/O).

A track is ``tracks_rc``: float ``[T, J, 2]``, the (row, col) of J points (the 18 COCO joints, or
any other points) in each of T frames, -1 for a point missing in a frame (the convention of
:mod:`pg2_tf.pose`); the docstrings say 18 for the joints. A pose
estimator run frame by frame jitters by a pixel or two and loses a joint now and then; generated
frames then flicker. :func:`smooth_tracks` removes both before generation.
"""

import numpy as np

from pg2_tf.pose import MISSING


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
