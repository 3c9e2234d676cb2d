"""Test records as pictures and keypoints: the pairs the web page starts from.

Rule: decoded for people to look at (uint8 images, (row, col) keypoints), not for the model
(whose tensors come from :mod:`pg2_tf.records.reader`).
"""

import dataclasses

import numpy as np
import tensorflow as tf

from pg2_tf.core import pose, pose_files
from pg2_tf.core.errors import DataError
from pg2_tf.records import damage, reader


@dataclasses.dataclass(frozen=True)
class RecordPair:
    """One test record: source and target images (uint8 [H, W, 3]) and poses ([18, 2], -1 missing)."""

    name_0: str
    name_1: str
    image_0: np.ndarray
    image_1: np.ndarray
    keypoints_0: np.ndarray
    keypoints_1: np.ndarray


def read_record_pairs(files: list[str], img_H: int, img_W: int, limit: int) -> list:
    """The first ``limit`` records of ``files``, decoded, in file order.

    The poses are the records' ``pose_peaks_{0,1}_rcv`` keypoints, from which the converters drew
    the records' pose maps.

    Args:
        files: record files (:func:`pg2_tf.records.reader.record_files`).
        img_H: image height the records must hold.
        img_W: image width the records must hold.
        limit: the most pairs to read.

    Returns:
        list of at most ``limit`` :class:`RecordPair`: images uint8 ``[img_H, img_W, 3]``,
        keypoints float32 ``[18, 2]`` (row, col), -1 missing; a side without ``image_name_<k>``
        is named ``record <n>``.

    Raises:
        DataError: missing files, records of another size, or records without those keypoints.
    """
    reader.check_records(files, img_H, img_W)
    spec = {}
    for side in (0, 1):
        spec[f"image_raw_{side}"] = tf.io.FixedLenFeature([], tf.string)
        spec[f"image_name_{side}"] = tf.io.FixedLenFeature([], tf.string, default_value=b"")
        spec[f"pose_peaks_{side}_rcv"] = tf.io.FixedLenFeature([pose.NUM_KEYPOINTS * 3], tf.float32)
    try:
        return _read_record_pairs(files, spec, limit)
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as error:
        # A truncated file or an undecodable JPEG: located by the reader's own explanation.
        raise damage.explain_read_error(error, files, img_H, img_W) from None


def _read_record_pairs(files, spec, limit) -> list:
    """The :class:`RecordPair` list of :func:`read_record_pairs` (TensorFlow's read errors pass)."""
    pairs = []
    for path in files:
        for index, record in enumerate(tf.data.TFRecordDataset(path)):
            if len(pairs) >= limit:
                return pairs
            try:
                features = tf.io.parse_single_example(record, spec)
            except tf.errors.InvalidArgumentError:
                raise DataError(
                    f"{path}: record {index} lacks pose_peaks_0_rcv / pose_peaks_1_rcv (the "
                    "keypoints the app starts from): re-run the record converter"
                ) from None
            sides = []
            for side in (0, 1):
                image = tf.io.decode_jpeg(features[f"image_raw_{side}"], channels=3).numpy()
                rcv = features[f"pose_peaks_{side}_rcv"].numpy()
                keypoints = pose_files.keypoints_from_record_rcv(rcv).astype(np.float32)
                name = features[f"image_name_{side}"].numpy().decode("utf-8", "replace")
                sides.append((name or f"record {len(pairs)}", image, keypoints))
            (name_0, image_0, keypoints_0), (name_1, image_1, keypoints_1) = sides
            pairs.append(RecordPair(name_0, name_1, image_0, image_1, keypoints_0, keypoints_1))
    return pairs
