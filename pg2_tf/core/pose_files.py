"""Pose file formats, read and written: the one home of every keypoint format PG2 meets.

* OpenPose JSON (``people[i].pose_keypoints_2d``): :func:`read_openpose_json`,
  :func:`read_openpose_people` read it, :func:`openpose_document` writes it.
* Detector joint orders: OpenPose COCO-18 (PG2's own), BODY_25 and MS COCO's 17 keypoints, told
  apart by their joint count (:func:`keypoints_from_triples`).
* The original converters' OpenPose results (``all_peaks``/``subsets`` pickles):
  :func:`keypoints_from_openpose` picks one pose, :func:`openpose_from_keypoints` builds one.
* The records' ``pose_peaks_<k>_rcv`` feature: :func:`keypoints_from_record_rcv`.
* Checks of the values read: finite numbers, joints inside the image (:func:`keep_joints_inside`).

Rule: every format converts to and from the ``keypoints_rc`` convention of :mod:`pg2_tf.core.pose`
(float ``[18, 2]`` (row, col), -1 missing); bad input is a one-line
:class:`~pg2_tf.core.errors.DataError` naming the file. numpy and the standard library only.
"""

import json
import os
from collections.abc import Sequence

import numpy as np

from pg2_tf.core.errors import DataError
from pg2_tf.core.pose import (
    KEYPOINT_NAMES,
    MISSING,
    NUM_KEYPOINTS,
    check_keypoints,
    joints_outside,
    missing_joints,
)

# Other pose detectors' joint orders, as the COCO-18 joint each of ours comes from.
# OpenPose BODY_25: COCO-18 plus MidHip (8) and six foot points (19-24), which PG2 has no use for.
BODY_25_TO_COCO_18 = (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)
# MS COCO's 17 keypoints (nose, eyes, ears, then left/right pairs of shoulders ... ankles) have no
# neck: None marks it, computed as the mean of the two shoulders (COCO-17 joints 5 and 6).
COCO_17_TO_COCO_18 = (0, None, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3)
COCO_17_SHOULDERS = (5, 6)
JOINT_FORMATS = {18: "COCO-18", 25: "BODY_25", 17: "COCO-17"}


def keypoints_from_openpose(
    all_peaks: Sequence[Sequence[Sequence[float]]],
    subsets: np.ndarray,
    selection: str = "market",
) -> np.ndarray:
    """Picks one (row, col) per joint from an image's OpenPose result, as the original converters.

    Args:
        all_peaks: 18 lists (one per joint) of candidate peaks ``(x, y, score, peak_id)``.
        subsets: float ``[N, 20]``, one row per detected person: 18 peak ids (-1 where the joint
            is absent), the person's score, the number of joints.
        selection: the rule of the converter to reproduce:

            * ``"market"`` (``convert_market.py``): take the person with the highest score; for
              each joint, the LAST candidate whose id belongs to that person. When no person has
              a score above -1, the first candidate of every joint.
            * ``"deepfashion"`` (``convert_DF.py``): the person is looked up but then ignored: the
              first candidate of every joint, whatever person it belongs to. An image without any
              person (score above -1) made the original fail; here it raises ``ValueError``.

    Returns:
        float64 ``[18, 2]``: (row, col) = (y, x) of the chosen peaks, -1 for missing joints.

    Raises:
        ValueError: malformed peaks/subsets, an unknown ``selection``, or (``"deepfashion"``) no
            person.
    """
    if selection not in ("market", "deepfashion"):
        raise ValueError(f"selection must be 'market' or 'deepfashion', not {selection!r}")
    if len(all_peaks) != NUM_KEYPOINTS:
        raise ValueError(f"all_peaks must hold {NUM_KEYPOINTS} joint lists, got {len(all_peaks)}")
    rows = np.asarray(subsets, dtype=np.float64)
    if rows.size == 0:
        rows = rows.reshape(0, NUM_KEYPOINTS + 2)
    if rows.ndim != 2 or rows.shape[1] != NUM_KEYPOINTS + 2:
        raise ValueError(f"subsets must have shape [N, 20], got {rows.shape}")

    best_row, best_score = -1, -1.0
    for index, row in enumerate(rows):
        if row[-2] > best_score:
            best_row, best_score = index, row[-2]

    if selection == "deepfashion" and best_row < 0:
        raise ValueError("no person in subsets (every score is -1 or the list is empty)")

    chosen: list[Sequence[float] | None] = []
    if selection == "market" and best_row >= 0:
        person_ids = set(rows[best_row, :NUM_KEYPOINTS].tolist())
        for candidates in all_peaks:
            last_match = None
            for peak in candidates:
                if peak[-1] in person_ids:
                    last_match = peak
            chosen.append(last_match)
    else:
        chosen = [candidates[0] if len(candidates) else None for candidates in all_peaks]

    keypoints_rc = np.full((NUM_KEYPOINTS, 2), MISSING, dtype=np.float64)
    for joint, peak in enumerate(chosen):
        if peak is not None:
            keypoints_rc[joint] = (peak[1], peak[0])
    return keypoints_rc


def openpose_from_keypoints(
    keypoints_rc: np.ndarray, score: float = 1.0
) -> tuple[list[list[tuple]], np.ndarray]:
    """Builds a one-person OpenPose result from keypoints (inverse of keypoints_from_openpose).

    Args:
        keypoints_rc: float ``[18, 2]`` (row, col), -1 for missing joints.
        score: the confidence given to every present joint.

    Returns:
        ``(all_peaks, subsets)``: 18 lists holding zero or one ``(x, y, score, peak_id)`` with
        peak ids 0, 1, ... in joint order; subsets float64 ``[1, 20]`` (peak ids, -1 where
        missing; person score = sum of joint scores; number of joints).
        Integer-valued coordinates are stored as Python ints, as OpenPose does.
    """
    keypoints_rc = check_keypoints(keypoints_rc)
    missing = missing_joints(keypoints_rc)
    all_peaks: list[list[tuple]] = []
    subset = np.full((1, NUM_KEYPOINTS + 2), -1.0)
    next_id = 0
    for joint in range(NUM_KEYPOINTS):
        if missing[joint]:
            all_peaks.append([])
            continue
        row, col = (_plain_number(value) for value in keypoints_rc[joint])
        all_peaks.append([(col, row, float(score), next_id)])
        subset[0, joint] = next_id
        next_id += 1
    subset[0, -2] = float(score) * next_id
    subset[0, -1] = next_id
    return all_peaks, subset


def keypoints_from_triples(triples) -> np.ndarray:
    """A detector's (x, y, confidence) joints in the 18-joint COCO/OpenPose order, as (row, col).

    The format is told by the number of joints (:data:`JOINT_FORMATS`): 18 is OpenPose's COCO
    model (PG2's own order), 25 OpenPose's BODY_25 (MidHip and the feet dropped), 17 MS COCO's
    keypoints (the neck is the mean of the two shoulders when both are present, else missing).

    Args:
        triples: float ``[N, 3]``, N in (18, 25, 17): x (column), y (row) in pixels, confidence;
            confidence <= 0 is a missing joint, as OpenPose and COCO (visibility 0) write them.

    Returns:
        float64 ``[18, 2]``: (row, col), -1 for missing joints.

    Raises:
        ValueError: N is not one of the known joint counts or the shape is not [N, 3].
    """
    triples = np.asarray(triples, np.float64)
    if triples.ndim != 2 or triples.shape[1] != 3 or triples.shape[0] not in JOINT_FORMATS:
        known = ", ".join(f"{count} ({name})" for count, name in JOINT_FORMATS.items())
        raise ValueError(f"{len(triples)} joints: the known formats have {known}")
    present = triples[:, 2] > 0
    source_rc = np.where(present[:, None], triples[:, [1, 0]], MISSING)
    if len(triples) == 18:
        return source_rc
    if len(triples) == 25:
        return source_rc[list(BODY_25_TO_COCO_18)]
    keypoints_rc = np.full((NUM_KEYPOINTS, 2), float(MISSING))
    for joint, source in enumerate(COCO_17_TO_COCO_18):
        if source is not None:
            keypoints_rc[joint] = source_rc[source]
    shoulders = list(COCO_17_SHOULDERS)
    if present[shoulders].all():
        keypoints_rc[1] = source_rc[shoulders].mean(axis=0)
    return keypoints_rc


def keypoints_from_record_rcv(rcv) -> np.ndarray:
    """The keypoints of a record's ``pose_peaks_<k>_rcv`` feature, as (row, col).

    Args:
        rcv: the feature's floats, 18 x (row, col, visible) flattened, as the original converters
            wrote it (any other length, e.g. a record without the feature, means no joint).

    Returns:
        float64 ``[18, 2]``: (row, col), -1 (:data:`MISSING`) where visible is 0.
    """
    rcv = np.asarray(rcv, np.float64).ravel()
    keypoints_rc = np.full((NUM_KEYPOINTS, 2), float(MISSING))
    if rcv.size == NUM_KEYPOINTS * 3:
        rcv = rcv.reshape(NUM_KEYPOINTS, 3)
        visible = rcv[:, 2] > 0
        keypoints_rc[visible] = rcv[visible, :2]
    return keypoints_rc


def _plain_number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


# ---- OpenPose JSON ---------------------------------------------------------------------------


class NoPersonInKeypoints(DataError):
    """An OpenPose JSON file whose 'people' list is empty (OpenPose found nobody in the frame)."""


def keypoints_to_triples(keypoints_rc) -> np.ndarray:
    """A pose as the (x, y, confidence) triples OpenPose writes (inverse of
    :func:`keypoints_from_triples` for COCO-18).

    Args:
        keypoints_rc: float ``[18, 2]`` (row, col) pixels, -1 for missing joints.

    Returns:
        float64 ``[18, 3]`` (x, y, confidence): present joints have confidence 1, missing ones
        x = y = confidence = 0.
    """
    keypoints_rc = check_keypoints(keypoints_rc)
    triples = np.zeros((NUM_KEYPOINTS, 3))
    present = ~missing_joints(keypoints_rc)
    triples[present, 0] = keypoints_rc[present, 1]
    triples[present, 1] = keypoints_rc[present, 0]
    triples[present, 2] = 1.0
    return triples


def openpose_document(keypoints_xyc) -> dict:
    """The OpenPose JSON document of one or several people (COCO-18), the one writer of the format.

    Args:
        keypoints_xyc: float ``[18, 3]`` (one person) or ``[N, 18, 3]`` (N people, N may be 0,
            listed in this order): x (column), y (row) in pixels and confidence (0 for a missing
            joint, with x = y = 0; see :func:`keypoints_to_triples`).

    Returns:
        ``{"version": 1.3, "people": [{"person_id": [-1], "pose_keypoints_2d": [x, y, c] * 18},
        ...]}`` with values rounded to 3 decimals; :func:`read_openpose_json` reads the first
        person back.
    """
    people = np.asarray(keypoints_xyc, np.float64).reshape(-1, NUM_KEYPOINTS * 3)
    return {
        "version": 1.3,
        "people": [
            {"person_id": [-1], "pose_keypoints_2d": [round(float(v), 3) for v in person]}
            for person in people
        ],
    }


def read_openpose_json(path) -> np.ndarray:
    """Reads the first person of an OpenPose JSON file, the one reader of the format.

    ``people[0].pose_keypoints_2d`` (or the older ``pose_keypoints``): x, y, confidence triples;
    confidence 0 is a missing joint. The joint format is told by the count
    (:func:`keypoints_from_triples`: COCO-18, BODY_25 or MS COCO's 17 keypoints).

    Args:
        path: str or path-like, the ``.json`` file.

    Returns:
        float64 ``[18, 2]``: (row, col) pixels, -1 for missing joints.

    Raises:
        NoPersonInKeypoints: ``people`` is empty.
        DataError: unreadable file, not an OpenPose result, values that are not finite numbers,
            an unknown joint count.
    """
    people = read_openpose_people(path, first_only=True)
    if not people:
        raise NoPersonInKeypoints(f"{path}: OpenPose found no person ('people' is empty)")
    return people[0]


def read_openpose_people(path, first_only: bool = False) -> list:
    """Every person of an OpenPose JSON file (as :func:`read_openpose_json` reads one).

    Args:
        path: str or path-like, the ``.json`` file.
        first_only: read (and check) only ``people[0]``.

    Returns:
        list of float64 ``[18, 2]`` (row, col) pixels, -1 missing, in the file's order; [] when
        ``people`` is empty.

    Raises:
        DataError: as :func:`read_openpose_json` does, naming ``people[i]``.
    """
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            document = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise DataError(f"{path} is not a readable JSON file: {error}") from None
    people = document.get("people") if isinstance(document, dict) else None
    if not isinstance(people, list):
        raise DataError(f"{path} is not an OpenPose result: it has no 'people' list")
    return [
        _openpose_person(path, person, f"people[{number}]")
        for number, person in enumerate(people[:1] if first_only else people)
    ]


def _openpose_person(path: str, person, where: str) -> np.ndarray:
    if not isinstance(person, dict):
        raise DataError(f"{path}: {where} must be an object holding pose_keypoints_2d")
    key = "pose_keypoints_2d" if "pose_keypoints_2d" in person else "pose_keypoints"
    values = person.get(key)
    if not isinstance(values, list) or len(values) % 3:
        raise DataError(
            f"{path}: {where}.pose_keypoints_2d must be a list of x, y, confidence triples"
        )
    for index, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise DataError(
                f"{path}: {where}.{key}[{index}] is {value!r}, not a number (x, y, confidence "
                "triples of numbers)"
            )
    triples = np.asarray(values, np.float64).reshape(-1, 3)
    _check_finite(path, triples, f"{where}.{key}")
    try:
        return keypoints_from_triples(triples)
    except ValueError as error:
        raise DataError(
            f"{path} has {error}; OpenPose --model_pose COCO or BODY_25 and MS COCO keypoint "
            "results are read"
        ) from None


def _check_finite(path: str, values: np.ndarray, where: str) -> None:
    """Raises DataError naming ``path`` and ``where`` when a value is NaN or infinite."""
    bad = np.flatnonzero(~np.isfinite(values.reshape(-1)))
    if bad.size:
        raise DataError(
            f"{path}: {where} holds {values.reshape(-1)[bad[0]]} at position {bad[0]} "
            f"({bad.size} value(s) not finite): every coordinate must be a finite number"
        )


def keep_joints_inside(keypoints_rc, height: int, width: int, source: str, warn) -> np.ndarray:
    """Drops (marks missing) the joints outside a ``height`` x ``width`` image.

    Args:
        keypoints_rc: float ``[18, 2]`` (row, col), -1 missing, in the image's pixels.
        height: image height in pixels.
        width: image width in pixels.
        source: names the keypoints in messages (a file, or ``--pose_from=PHOTO``).
        warn: receives one line naming the dropped joints, when some are dropped.

    Returns:
        float64 ``[18, 2]``, the joints outside set to -1.

    Raises:
        DataError: no joint is present, or every present joint is outside the image.
    """
    keypoints_rc = np.array(keypoints_rc, np.float64)
    present = ~missing_joints(keypoints_rc)
    if not present.any():
        raise DataError(f"{source}: every joint is missing (confidence 0): there is no pose")
    outside = joints_outside(keypoints_rc, height, width)
    if outside[present].all():
        raise DataError(
            f"{source}: all {int(present.sum())} joints lie outside the {height}x{width} image; "
            "keypoints must be in the pixel coordinates of --image"
        )
    if outside.any():
        names = ", ".join(KEYPOINT_NAMES[joint] for joint in np.flatnonzero(outside))
        warn(f"{source}: {names} outside the {height}x{width} image, left out")
        keypoints_rc[outside] = MISSING
    return keypoints_rc
