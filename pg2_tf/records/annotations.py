"""Pose-Transfer / Deformable-GAN annotation files: one pose per image name (numpy, no TensorFlow).

The format (``market-annotation-test.csv``, ``fasion-resize-annotation-test.csv``): ``:``-separated
with the header ``name:keypoints_y:keypoints_x``; each row is an image file name and two JSON
lists of 18 numbers, the rows (y) and the columns (x) of the 18 COCO/OpenPose joints in the order
of :data:`pg2_tf.core.pose.KEYPOINT_NAMES`, ``-1`` for a joint that was not detected.

Test mode writes one beside its images (:data:`TARGET_ANNOTATIONS`, keyed by the ``%05d.png``
file name, the TARGET pose of each pair) so that the ``patn`` score protocol can draw its masks.
"""

import json
import os

import numpy as np

from pg2_tf.core import atomic, pose
from pg2_tf.core.errors import DataError

HEADER = "name:keypoints_y:keypoints_x"
# Written by test mode into test_result/: the target pose of each result image.
TARGET_ANNOTATIONS = "pose_target-annotation.csv"


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def write_annotations(path: str, poses) -> None:
    """Writes ``(name, keypoints_rc)`` pairs as an annotation file, atomically.

    Args:
        path: the ``.csv`` to write (replaced whole: temporary name, then rename).
        poses: iterable of ``(image file name, float [18, 2] (row, col), -1 missing)``; integral
            coordinates are written as integers, as in Pose-Transfer's files.
    """
    lines = [HEADER]
    for name, keypoints_rc in poses:
        keypoints_rc = np.asarray(keypoints_rc, np.float64).copy()
        keypoints_rc[pose.missing_joints(keypoints_rc)] = pose.MISSING
        rows, cols = ([_number(v) for v in keypoints_rc[:, axis]] for axis in (0, 1))
        lines.append(f"{name}:{json.dumps(rows)}:{json.dumps(cols)}")
    atomic.write_text(path, "\n".join(lines) + "\n")


def read_annotations(path: str) -> dict[str, np.ndarray]:
    """Reads an annotation file.

    Args:
        path: the ``.csv`` (header ``name:keypoints_y:keypoints_x``).

    Returns:
        image name -> float64 ``[18, 2]`` (row, col), -1 for missing joints. A name listed twice
        keeps its first row (Pose-Transfer looked rows up with ``df[df.name == to].iloc[0]``).

    Raises:
        DataError: missing file, another header, a row without two lists of 18 finite numbers.
    """
    if not os.path.isfile(path):
        raise DataError(
            f"annotation file {path!r} not found; pass --annotations=<{HEADER} csv> (test mode "
            f"writes test_result/{TARGET_ANNOTATIONS})"
        )
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read {path!r} as UTF-8 text: {error}") from None
    lines = text.splitlines()
    header = lines[0].strip() if lines else ""
    if header != HEADER:
        raise DataError(f"{path!r} starts with {header!r}, not {HEADER!r}")
    poses: dict[str, np.ndarray] = {}
    for line_number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            name, rows_text, cols_text = line.strip().split(":")
            keypoints_rc = np.array([json.loads(rows_text), json.loads(cols_text)], np.float64).T
            if keypoints_rc.shape != (pose.NUM_KEYPOINTS, 2):
                raise ValueError("need 18 values in each list")
            if not np.isfinite(keypoints_rc).all():
                raise ValueError("a value is not finite")
        except (ValueError, TypeError) as error:
            raise DataError(
                f"{path}:{line_number} is not 'name:[18 rows]:[18 columns]' ({error}); "
                "fix or remove that line"
            ) from error
        poses.setdefault(name, keypoints_rc)
    return poses
