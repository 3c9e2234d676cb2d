"""Test mode: run the test records once, in file order, and write the original's result folders.

``model_dir/test_result/<folder>/%05d.png`` for folder in x, x_target, G, pose, pose_target,
mask, mask_target (the original's), plus G1 and DiffMap (used by later papers' score tools), and
``test_result/pose_target-annotation.csv``: the target keypoints of each result image (from the
records' ``pose_peaks_1_rcv``), in Pose-Transfer's annotation format, for the ``patn`` scores.
Encodings are those of :mod:`pg2_tf.core.images`, as the original's test: x and x_target are the
decoded JPEG pixels exactly, G clip((G2 + 1) * 127.5) truncated, pose (max + 1) * 127.5, mask * 255.

Rule: every test record gives exactly one result, numbered in record order.
"""

import os

import tensorflow as tf

from pg2_tf.core import datasets, images, pose_files
from pg2_tf.networks import checkpoints, models
from pg2_tf.records import annotations, reader

RESULT_FOLDERS = (
    "x",
    "x_target",
    "G",
    "pose",
    "pose_target",
    "mask",
    "mask_target",
    "G1",
    "DiffMap",
)


def _pictures(batch, g1_output, g2_output, diff_map) -> dict:
    return {
        "x": images.input_to_uint8(batch["x"]),
        "x_target": images.input_to_uint8(batch["x_target"]),
        "G": images.to_uint8_image(g2_output),
        "pose": images.pose_to_uint8(batch["pose"]),
        "pose_target": images.pose_to_uint8(batch["pose_target"]),
        "mask": images.mask_to_uint8(batch["mask"]),
        "mask_target": images.mask_to_uint8(batch["mask_target"]),
        "G1": images.to_uint8_image(g1_output),
        "DiffMap": images.to_uint8_image(diff_map),
    }


def target_keypoints(files: list[str]):
    """The target pose of every record of ``files``, in order.

    From ``pose_peaks_1_rcv`` (18 x (row, col, visible)), written by the original converters;
    joints with visible 0, and every joint of a record without that feature, are -1 (missing).

    Args:
        files: record files, read in this order.

    Yields:
        float ``[18, 2]`` (row, col) in pixels of the record's image, -1 for missing joints.
    """
    spec = {"pose_peaks_1_rcv": tf.io.VarLenFeature(tf.float32)}
    dataset = tf.data.TFRecordDataset(files).map(
        lambda record: tf.sparse.to_dense(
            tf.io.parse_single_example(record, spec)["pose_peaks_1_rcv"]
        )
    )
    for rcv in dataset.as_numpy_iterator():
        yield pose_files.keypoints_from_record_rcv(rcv)


def write_test_results(
    pretrained_path,
    data_path,
    model_dir,
    *,
    model,
    img_H,
    img_W,
    conv_hidden_num=128,
    z_num=64,
    batch_size=16,
    split="test",
    xla=False,
) -> int:
    """Generates G for every test record and writes the result folders (module docstring).

    Args:
        pretrained_path: generator weights, an original TF1 checkpoint or one of ours (prefix or
            directory).
        data_path: the records' folder (``<prefix>_<split>_*.tfrecord``), read in file order,
            each record exactly once.
        model_dir: the results go to ``model_dir/test_result``.
        model, img_H, img_W, conv_hidden_num, z_num: the generators' architecture.
        batch_size: records per generator call.
        split: the records' split.
        xla: compile the generators with XLA.

    Returns:
        The number of test results written.

    Raises:
        CheckpointError, DataError: with a one-line message.
    """
    kind = datasets.by_model(model).kind
    files = reader.record_files(data_path, split, kind)
    dataset = reader.make_dataset(
        data_path,
        split,
        kind=kind,
        img_H=img_H,
        img_W=img_W,
        batch_size=batch_size,
        is_train=False,
    )
    g1, g2, _ = models.build(model, img_H, img_W, conv_hidden_num, z_num, d_dim=8)
    checkpoints.load_generators(pretrained_path, g1, g2)

    @tf.function(jit_compile=xla or None)
    def generate(x, pose_target):
        g1_output = g1([x, pose_target])
        diff_map = g2([g1_output, x])
        return g1_output, g1_output + diff_map, diff_map

    result_dir = os.path.join(model_dir, "test_result")
    for folder in RESULT_FOLDERS:
        os.makedirs(os.path.join(result_dir, folder), exist_ok=True)
    count = 0
    for batch in reader.iterate(dataset, files=files, img_H=img_H, img_W=img_W):
        outputs = [o.numpy() for o in generate(batch["x"], batch["pose_target"])]
        pictures = _pictures({k: v.numpy() for k, v in batch.items()}, *outputs)
        if count == 0:
            for name in ("x", "x_target", "G", "pose", "pose_target", "mask", "mask_target"):
                images.save_png(
                    images.grid(pictures[name]), os.path.join(result_dir, f"{name}_fixed.png")
                )
        for index in range(outputs[0].shape[0]):
            for folder in RESULT_FOLDERS:
                images.save_png(
                    pictures[folder][index],
                    os.path.join(result_dir, folder, f"{count + index:05d}.png"),
                )
        count += outputs[0].shape[0]
    names_and_poses = zip(
        (f"{i:05d}.png" for i in range(count)), target_keypoints(files), strict=False
    )
    annotations.write_annotations(
        os.path.join(result_dir, annotations.TARGET_ANNOTATIONS), names_and_poses
    )
    return count
