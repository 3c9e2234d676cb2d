"""What the ORIGINAL trainer's test() writes for each record, computed from the raw record features.

An independent reference for test mode: it parses the tf.train.Example protos itself (no
pg2_tf.data), decodes the JPEGs with TensorFlow's default decoder (the original's), and applies
the original's expressions with numpy:

* x, x_target: ``unprocess(process(p)) = ((p - 127.5) / 127.5) * 127.5 + 127.5`` in float32,
  then ``astype(uint8)``;
* pose, pose_target: dense pose ``* 2 - 1``, then ``(amax over the 18 channels + 1) * 127.5``,
  ``astype(uint8)``;
* mask, mask_target: ``pose_mask_r4 * 255``, ``astype(uint8)``.
"""

import numpy as np
import tensorflow as tf

FOLDERS = ("x", "x_target", "pose", "pose_target", "mask", "mask_target")


def _values(feature):
    return list(getattr(feature, feature.WhichOneof("kind")).value)


def read_examples(record_file):
    """Every record of the file, in order, as {feature name: list of values}."""
    examples = []
    for serialized in tf.data.TFRecordDataset(str(record_file)):
        example = tf.train.Example.FromString(serialized.numpy())
        examples.append({key: _values(value) for key, value in example.features.feature.items()})
    return examples


def decoded_pixels(example, side):
    """uint8 [H, W, 3]: image_raw_<side> decoded as the original reader did."""
    return tf.io.decode_jpeg(example[f"image_raw_{side}"][0], channels=3).numpy()


def original_pictures(example, img_H, img_W):
    """{folder: uint8 picture} the original test() writes for one record."""
    half = np.float32(127.5)
    pictures = {}
    for side, (image_folder, pose_folder, mask_folder) in enumerate(
        (("x", "pose", "mask"), ("x_target", "pose_target", "mask_target"))
    ):
        normalised = (decoded_pixels(example, side).astype(np.float32) - half) / half
        pictures[image_folder] = (normalised * half + half).astype(np.uint8)
        dense = np.zeros(img_H * img_W * 18, np.float32)
        dense[np.asarray(example[f"indices_r4_{side}"])] = example[f"values_r4_{side}"]
        pose = dense.reshape(img_H, img_W, 18) * 2 - 1
        pictures[pose_folder] = ((np.amax(pose, axis=-1) + 1.0) * 127.5).astype(np.uint8)
        mask = np.asarray(example[f"pose_mask_r4_{side}"], np.float32).reshape(img_H, img_W)
        pictures[mask_folder] = (mask * 255).astype(np.uint8)
    return pictures


def target_keypoints(example):
    """float [18, 2] (row, col) of the target image from pose_peaks_1_rcv; -1 where not visible."""
    rcv = np.asarray(example["pose_peaks_1_rcv"], np.float64).reshape(18, 3)
    return np.where(rcv[:, 2:] > 0, rcv[:, :2], -1.0)
