"""One pair record decoded into the model's tensors, with the checks that locate a bad record.

A record is one ``tf.train.Example`` written by the original converters (``convert_market.py``,
``convert_DF.py``) for a pair of images of the same person. :func:`parse_pair` turns it into the
tensors the original trainer fed to the graph (batched by :mod:`pg2_tf.records.reader`):

=============== ===================== ======================================================
key             shape (batched)       values
=============== ===================== ======================================================
``x``           [B, H, W, 3] float32  ``image_raw_0`` decoded, ``(pixel - 127.5) / 127.5``
``x_target``    [B, H, W, 3] float32  ``image_raw_1`` decoded, same scaling, in [-1, 1]
``pose``        [B, H, W, 18] float32 ``indices_r4_0``/``values_r4_0``/``shape`` densified,
                                      ``* 2 - 1``: -1 background, +1 inside keypoint discs
``pose_target`` [B, H, W, 18] float32 same from ``indices_r4_1``/``values_r4_1``
``mask``        [B, H, W, 1] float32  ``pose_mask_r4_0`` in {0, 1}
``mask_target`` [B, H, W, 1] float32  ``pose_mask_r4_1`` in {0, 1}
=============== ===================== ======================================================

The JPEGs are decoded with TensorFlow's default decoder settings (libjpeg "ISLOW" integer DCT),
which reproduce the original TF1 decoder's pixels exactly. The scaling is the original loader's
``(pixel - 127.5) / 127.5``; note that ``pixel / 127.5 - 1`` differs from it by one float32 ulp
for pixels 64..191, so it is not used.

Rule: every record travels with its file name and index (:func:`located_records`), and a failed
check raises an Assert whose message carries them in a marker (:func:`bad_record_marker`) that
:func:`parse_bad_record` reads back; this module is the one home of that marker.
"""

import codecs
import re

import tensorflow as tf

from pg2_tf.core import pose

# Keys of one element of the datasets built from these records (see the module docstring).
ELEMENT_KEYS = ("x", "x_target", "pose", "pose_target", "mask", "mask_target")

_READ_BUFFER_BYTES = 1 << 20
# Marker of the messages of the per-record checks (bad_record_marker), parsed back below.
_BAD_RECORD_RE = re.compile(r"pg2-bad-record\|(\d+)\|([^|]*)\|(.*)\|pg2-end", re.DOTALL)


def bad_record_marker(record_index, problem, file_name):
    """The message of a failed per-record check, in the marker :func:`parse_bad_record` reads back.

    Args:
        record_index: scalar tf.string, the record's index in its file.
        problem: scalar tf.string, what is wrong (``"has no feature 'shape'"``).
        file_name: scalar tf.string, the record's file.

    Returns:
        scalar tf.string ``pg2-bad-record|<index>|<problem>|<file>|pg2-end``.
    """
    return tf.strings.join(
        ["pg2-bad-record|", record_index, "|", problem, "|", file_name, "|pg2-end"]
    )


def _unescape(text):
    return codecs.escape_decode(text.encode("utf-8"))[0].decode("utf-8", "replace")


def parse_bad_record(error):
    """The location a failed per-record check put in its message (:func:`bad_record_marker`).

    Args:
        error: the exception TensorFlow raised (its message holds the Assert's data, C-escaped).

    Returns:
        ``(file, record_index, problem)`` (str, int, str), or None when the message holds no marker.
    """
    match = _BAD_RECORD_RE.search(str(error))
    if not match:
        return None
    index, problem, path = match.groups()
    # The Assert op C-escapes its string data (quotes, non-ASCII bytes of the path).
    return _unescape(path), int(index), _unescape(problem)


def feature_spec() -> dict:
    """Every feature the reader needs, parsed leniently (a missing key gives an empty tensor).

    Returns:
        dict feature name -> ``tf.io.RaggedFeature``: ``shape`` (int64), and per side 0/1
        ``image_raw_`` (string), ``indices_r4_`` (int64), ``values_r4_`` (float32),
        ``pose_mask_r4_`` (int64).
    """
    spec = {"shape": tf.io.RaggedFeature(tf.int64)}
    for side in (0, 1):
        spec[f"image_raw_{side}"] = tf.io.RaggedFeature(tf.string)
        spec[f"indices_r4_{side}"] = tf.io.RaggedFeature(tf.int64)
        spec[f"values_r4_{side}"] = tf.io.RaggedFeature(tf.float32)
        spec[f"pose_mask_r4_{side}"] = tf.io.RaggedFeature(tf.int64)
    return spec


def _count_problem(features, key, expected_count, what):
    """(ok, problem) for a feature that must hold exactly ``expected_count`` values."""
    size = tf.size(features[key])
    missing = tf.constant(f"has no feature '{key}'")
    wrong = tf.strings.join(
        [f"has {key} of ", tf.strings.as_string(size), f" values, expected {what}"]
    )
    return tf.equal(size, expected_count), tf.where(tf.equal(size, 0), missing, wrong)


def _assert_record(checks, file_name, record_index):
    """One Assert op over ``checks`` ([(ok, problem)]) whose message locates the record."""
    oks = tf.stack([ok for ok, _ in checks])
    problems = tf.stack([problem for _, problem in checks])
    first_problem = tf.gather(problems, tf.argmin(tf.cast(oks, tf.int32)))
    message = bad_record_marker(tf.strings.as_string(record_index), first_problem, file_name)
    return tf.debugging.Assert(tf.reduce_all(oks), [message])


def _decode_image(image_bytes):
    # dct_method "" is libjpeg's default (ISLOW), the one TF1's slim Image handler used.
    return tf.io.decode_jpeg(image_bytes, channels=3, dct_method="")


def parse_pair(serialized, img_H, img_W, *, file_name="<unknown file>", record_index=-1):
    """Decodes one serialized pair record into the model's input tensors (unbatched).

    Args:
      serialized: scalar tf.string, one ``tf.train.Example`` written by the original converter.
      img_H, img_W: image size of the model (128x64 Market, 256x256 DeepFashion).
      file_name, record_index: where the record comes from; only used in error messages.

    Returns:
      dict of float32 tensors: ``x``, ``x_target`` [H, W, 3] in [-1, 1]; ``pose``,
      ``pose_target`` [H, W, 18] in {-1, +1}; ``mask``, ``mask_target`` [H, W, 1] in {0, 1}.

    A record lacking a needed feature, or whose sizes do not match img_H x img_W, fails with an
    InvalidArgumentError whose message :func:`explain_read_error` turns into a DataError naming
    ``file_name`` and ``record_index``.
    """
    pose_size = img_H * img_W * pose.NUM_KEYPOINTS
    features = tf.io.parse_single_example(serialized, feature_spec())
    checks = [
        _count_problem(features, "image_raw_0", 1, "one JPEG string"),
        _count_problem(features, "image_raw_1", 1, "one JPEG string"),
        _count_problem(
            features, "shape", 1, f"[{pose_size}] = {img_H}x{img_W}x{pose.NUM_KEYPOINTS}"
        ),
        _count_problem(
            features, "pose_mask_r4_0", img_H * img_W, f"{img_H * img_W} ({img_H}x{img_W})"
        ),
        _count_problem(
            features, "pose_mask_r4_1", img_H * img_W, f"{img_H * img_W} ({img_H}x{img_W})"
        ),
    ]
    shape = features["shape"]
    checks.append(
        (
            tf.reduce_all(tf.equal(shape, pose_size)),
            tf.strings.join(
                [
                    "has shape ",
                    tf.strings.reduce_join(tf.strings.as_string(shape), separator=","),
                    f", expected {pose_size} = {img_H}x{img_W}x{pose.NUM_KEYPOINTS}",
                ]
            ),
        )
    )
    for side in (0, 1):
        indices, values = features[f"indices_r4_{side}"], features[f"values_r4_{side}"]
        lengths = tf.strings.join(
            [
                f"has indices_r4_{side} of ",
                tf.strings.as_string(tf.size(indices)),
                f" values and values_r4_{side} of ",
                tf.strings.as_string(tf.size(values)),
                " (they must match)",
            ]
        )
        # A missing key parses as an empty list: name it rather than the mismatch it causes.
        problem = tf.where(
            tf.equal(tf.size(indices), 0),
            tf.constant(f"has no feature 'indices_r4_{side}'"),
            tf.where(
                tf.equal(tf.size(values), 0),
                tf.constant(f"has no feature 'values_r4_{side}'"),
                lengths,
            ),
        )
        checks.append((tf.equal(tf.size(indices), tf.size(values)), problem))
        checks.append(
            (
                tf.reduce_all((indices >= 0) & (indices < pose_size)),
                tf.constant(f"has indices_r4_{side} outside [0, {pose_size})"),
            )
        )
    with tf.control_dependencies([_assert_record(checks, file_name, record_index)]):
        images = [_decode_image(features[f"image_raw_{side}"][0]) for side in (0, 1)]
    image_checks = [
        (
            tf.reduce_all(tf.equal(tf.shape(image)[:2], [img_H, img_W])),
            tf.strings.join(
                [
                    f"has image_raw_{side} of ",
                    tf.strings.reduce_join(
                        tf.strings.as_string(tf.shape(image)[:2]), separator="x"
                    ),
                    f" pixels, expected {img_H}x{img_W}",
                ]
            ),
        )
        for side, image in enumerate(images)
    ]
    with tf.control_dependencies([_assert_record(image_checks, file_name, record_index)]):
        x, x_target = (
            (tf.cast(tf.reshape(image, [img_H, img_W, 3]), tf.float32) - 127.5) / 127.5
            for image in images
        )
        poses = []
        for side in (0, 1):
            sparse = tf.SparseTensor(
                indices=features[f"indices_r4_{side}"][:, tf.newaxis],
                values=features[f"values_r4_{side}"],
                dense_shape=[pose_size],
            )
            dense = tf.sparse.to_dense(sparse, default_value=0.0, validate_indices=False)
            poses.append(tf.reshape(dense, [img_H, img_W, pose.NUM_KEYPOINTS]) * 2.0 - 1.0)
        masks = [
            tf.cast(tf.reshape(features[f"pose_mask_r4_{side}"], [img_H, img_W, 1]), tf.float32)
            for side in (0, 1)
        ]
    return {
        "x": x,
        "x_target": x_target,
        "pose": poses[0],
        "pose_target": poses[1],
        "mask": masks[0],
        "mask_target": masks[1],
    }


def located_records(path):
    """Every record of one file with its location, in file order.

    Args:
        path: scalar tf.string (or str), one ``.tfrecord`` file.

    Returns:
        tf.data.Dataset of ``(serialized, file_name, record_index)``: scalar tf.string, tf.string,
        tf.int64 (0-based).
    """
    records = tf.data.TFRecordDataset(path, buffer_size=_READ_BUFFER_BYTES)
    return records.enumerate().map(lambda index, record: (record, path, index))
