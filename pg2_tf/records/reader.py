"""tf.data reader of the ORIGINAL PG2 tf-records (Market-1501 and DeepFashion pairs).

The records are the ones written by the original converters (``convert_market.py``,
``convert_DF.py``): one ``tf.train.Example`` per pair of images of the same person. This module reads
the features the model needs and turns them into the tensors the original trainer fed to the graph:

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

Error reporting
---------------
Bad input becomes a one-line :class:`~pg2_tf.core.errors.DataError` that names the file, the record
index where it is known, and what to do:

* :func:`record_files` / :func:`num_pairs`: missing folder, no record files, bad pair-count pickle.
* :func:`check_records` (called by :func:`make_dataset`): the first record of every file is read up
  front; images of another size than the model's, or a record lacking a needed feature, fail there,
  before any training step.
* While iterating: every record travels with its file name and its index in that file, and the
  parser checks each record, so a bad record later in a file fails with its location. Errors that
  TensorFlow raises without a location (a corrupted or truncated file: ``DataLossError`` with a byte
  offset; a JPEG that does not decode) are located afterwards by :func:`explain_read_error`:
  :mod:`pg2_tf.records.damage` walks the record framing of the files, and for undecodable records
  :func:`find_bad_record` re-reads them in order.

A training loop uses :func:`iterate` (or catches the errors itself and calls
:func:`explain_read_error`)::

    files = data.record_files(data_path, "train", kind)
    dataset = data.make_dataset(data_path, "train", kind=kind, img_H=H, img_W=W,
                                batch_size=B, is_train=True)
    try:
        for step, batch in zip(steps, data.iterate(dataset, files=files, img_H=H, img_W=W)):
            train_step(batch)  # a tf.function taking the dict; batches are fetched eagerly
    except DataError:
        ...  # keep the last checkpoint, report the one-line message, stop

:func:`iterate` only guards fetching the next batch, so errors raised by the model are not
mistaken for data errors.
"""

import dataclasses
import os
import pickle

import numpy as np
import tensorflow as tf

from pg2_tf.core import datasets, pose, pose_files
from pg2_tf.core.errors import DataError
from pg2_tf.records import damage

# Keys of one element of the datasets built here (see the module docstring for shapes/values).
ELEMENT_KEYS = ("x", "x_target", "pose", "pose_target", "mask", "mask_target")

_DEFAULT_SHUFFLE_BUFFER = 256  # serialized records; ~90 KB each for Market, ~0.5 MB for DeepFashion
_READ_BUFFER_BYTES = 1 << 20
_GET_DATA = damage.GET_DATA


# --------------------------------------------------------------------------------------------
# Dataset names, files and pair counts


def dataset_kind(dataset: str) -> str:
    """Maps a ``--dataset`` name to ``'market'`` or ``'deepfashion'`` (:func:`datasets.by_name`)."""
    return datasets.by_name(dataset).kind


def record_prefix(kind: str) -> str:
    """The tf-record file prefix of a dataset kind: ``'Market1501'`` or ``'DeepFashion'``."""
    return datasets.by_kind(kind).record_prefix


def record_files(data_path: str, split: str, kind: str) -> list[str]:
    """The sorted paths ``data_path/<prefix>_<split>_*.tfrecord`` (the original's file pattern).

    Raises DataError when the folder is missing or holds no file matching the pattern.
    """
    pattern = f"{record_prefix(kind)}_{split}_*.tfrecord"
    if not tf.io.gfile.isdir(data_path):
        raise DataError(f"data folder {data_path} does not exist; {_GET_DATA}")
    files = sorted(tf.io.gfile.glob(os.path.join(data_path, pattern)))
    if not files:
        raise DataError(f"no {pattern} files in {data_path}; {_GET_DATA}")
    return files


class _IntOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain ints and numpy integer scalars, refusing every other global."""

    _ALLOWED = {
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"a pickled {module}.{name}")


def num_pairs(data_path: str, split: str) -> int:
    """The number of pairs of a split, read from ``data_path/pn_pairs_num_<split>.p``.

    The converter pickles a Python 2 int (protocol 0 or 2); Python 3 pickles of an int and numpy
    integer scalars are read too. Only those are unpickled (other objects are refused, never
    constructed). There is no fallback to counting the records: the original also required this
    file, and counting a training split means reading tens of GB. Raises DataError when the file is
    missing, is not a pickle, or does not hold a non-negative int.
    """
    path = os.path.join(data_path, f"pn_pairs_num_{split}.p")
    fix = "it is written beside the .tfrecord files by the record converter; copy it with them"
    if not os.path.isfile(path):
        raise DataError(f"{path} is missing; {fix}")
    try:
        with open(path, "rb") as file:
            value = _IntOnlyUnpickler(file, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as error:
        raise DataError(f"{path} is not a pickled pair count ({error}); {fix}") from None
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise DataError(f"{path} holds a {type(value).__name__}, not the int pair count; {fix}")
    count = int(value)
    if count < 0:
        raise DataError(f"{path} holds {count}, not a pair count; {fix}")
    return count


def epoch_note(data_path: str, split: str, batch_size: int) -> str:
    """One line on the split's size from ``pn_pairs_num_<split>.p`` (pairs, steps per epoch),
    for the training log. Raises DataError when it holds fewer pairs than one batch; a missing
    or unreadable count is reported in the line, not raised (the records are what training
    reads)."""
    try:
        count = num_pairs(data_path, split)
    except DataError as error:
        return f"pair count unknown ({error})"
    if count < batch_size:
        raise DataError(
            f"{os.path.join(data_path, f'pn_pairs_num_{split}.p')} says the split holds {count} "
            f"pairs, fewer than one batch of --batch_size={batch_size}: lower --batch_size or "
            "convert more data"
        )
    return f"{count} pairs in {data_path} ({split}): {count // batch_size} steps per epoch"


# --------------------------------------------------------------------------------------------
# Parsing one record


def _feature_spec() -> dict:
    """Every feature the reader needs, parsed leniently (a missing key gives an empty tensor)."""
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
    message = damage.bad_record_marker(tf.strings.as_string(record_index), first_problem, file_name)
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
    features = tf.io.parse_single_example(serialized, _feature_spec())
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


def element_spec(img_H: int, img_W: int, batch_size: int | None = None) -> dict:
    """tf.TensorSpec of one batch (e.g. for a train step's ``input_signature``)."""
    channels = {"x": 3, "x_target": 3, "pose": 18, "pose_target": 18, "mask": 1, "mask_target": 1}
    return {
        key: tf.TensorSpec([batch_size, img_H, img_W, channels[key]], tf.float32, name=key)
        for key in ELEMENT_KEYS
    }


# --------------------------------------------------------------------------------------------
# Up-front check of the files


def _suggest_flags(height, width):
    dataset = datasets.by_image_size(height, width)
    if dataset:
        return f"these records need {dataset.hint}"
    known = "; ".join(f"{d.img_H}x{d.img_W}: {d.hint}" for d in datasets.ALL)
    return f"no PG2 configuration reads {height}x{width} images ({known})"


def check_records(files: list[str], img_H: int, img_W: int) -> None:
    """Reads the first record of every file and checks it fits a model of img_H x img_W.

    Cheap (one record per file). Raises DataError naming the file when a file is empty or damaged
    at its first record, lacks a feature the reader needs, or holds images of another size (the
    message says which ``--model/--img_H/--img_W`` those records need).
    """
    pose_size = img_H * img_W * pose.NUM_KEYPOINTS
    for path in files:
        try:
            first = next(iter(tf.data.TFRecordDataset(path).take(1)), None)
        except (tf.errors.DataLossError, tf.errors.NotFoundError) as error:
            raise explain_read_error(error, [path]) from None
        if first is None:
            raise DataError(f"{path} holds no records; remove it or re-run the record converter")
        features = tf.io.parse_single_example(first, _feature_spec())
        where = f"{path}: record 0"
        for key in ("image_raw_0", "image_raw_1", "shape", "pose_mask_r4_0", "pose_mask_r4_1"):
            if tf.size(features[key]) == 0:
                raise DataError(
                    f"{where} has no feature '{key}'; these are not PG2 pair records "
                    "(re-run the record converter)"
                )
        try:
            height, width = (
                int(v) for v in tf.io.extract_jpeg_shape(features["image_raw_0"][0])[:2]
            )
        except tf.errors.InvalidArgumentError:
            raise DataError(
                f"{where}: image_raw_0 is not a JPEG; re-run the record converter for this file"
            ) from None
        if (height, width) != (img_H, img_W):
            raise DataError(
                f"{where} holds {height}x{width} images but the model reads {img_H}x{img_W} "
                f"(--img_H={img_H} --img_W={img_W}); {_suggest_flags(height, width)}"
            )
        mask_size = int(tf.size(features["pose_mask_r4_0"]))
        shape = [int(v) for v in features["shape"]]
        if mask_size != img_H * img_W or shape != [pose_size]:
            raise DataError(
                f"{where}: pose_mask_r4_0 has {mask_size} values and shape is {shape}, expected "
                f"{img_H * img_W} and [{pose_size}] for {img_H}x{img_W} images; "
                "re-run the record converter for this file"
            )


# --------------------------------------------------------------------------------------------
# Datasets


def _located_records(path):
    """(serialized, file_name, record_index) for every record of one file, in file order."""
    records = tf.data.TFRecordDataset(path, buffer_size=_READ_BUFFER_BYTES)
    return records.enumerate().map(lambda index, record: (record, path, index))


def make_dataset(
    data_path,
    split,
    *,
    kind,
    img_H,
    img_W,
    batch_size,
    is_train,
    seed=None,
    shuffle_buffer=_DEFAULT_SHUFFLE_BUFFER,
    num_parallel_calls=tf.data.AUTOTUNE,
) -> tf.data.Dataset:
    """Batches of pairs from ``data_path/<prefix>_<split>_*.tfrecord``.

    Each element is a dict (see :data:`ELEMENT_KEYS`) of float32 tensors: ``x``, ``x_target``
    [B, H, W, 3] in [-1, 1]; ``pose``, ``pose_target`` [B, H, W, 18] in {-1, +1}; ``mask``,
    ``mask_target`` [B, H, W, 1] in {0, 1}.

    Training (``is_train=True``): every pass over the data (epoch) reads each record once: the
    file order is reshuffled, up to 4 files are interleaved, serialized records go through a
    ``shuffle_buffer``-record shuffle; passes repeat forever; records are parsed in parallel and
    batches are always full (``drop_remainder``; a batch may span two passes), so the batch
    dimension is static. With a ``seed`` the order is reproducible; without one, parallel
    stages may also reorder elements.

    Test (``is_train=False``): files in sorted order, every record exactly once in file order,
    the last partial batch kept, deterministic.

    Calls :func:`check_records` first (raises DataError for missing files or records of another
    size). Errors found while iterating are explained by :func:`iterate` / :func:`explain_read_error`.
    """
    files = record_files(data_path, split, kind)
    check_records(files, img_H, img_W)

    def parse(record, file_name, record_index):
        return parse_pair(record, img_H, img_W, file_name=file_name, record_index=record_index)

    file_names = tf.data.Dataset.from_tensor_slices(files)
    if is_train:
        deterministic = seed is not None
        records = (
            file_names.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
            .interleave(
                _located_records,
                cycle_length=min(len(files), 4),
                block_length=1,
                num_parallel_calls=min(len(files), 4),
                deterministic=deterministic,
            )
            .shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
            .repeat()  # after the shuffles: every pass reads each record once, in a new order
        )
        pairs = records.map(
            parse, num_parallel_calls=num_parallel_calls, deterministic=deterministic
        )
        batches = pairs.batch(batch_size, drop_remainder=True)
    else:
        records = file_names.flat_map(_located_records)
        pairs = records.map(parse, num_parallel_calls=num_parallel_calls, deterministic=True)
        batches = pairs.batch(batch_size, drop_remainder=False)
    return batches.prefetch(tf.data.AUTOTUNE)


# --------------------------------------------------------------------------------------------
# Records as pictures and keypoints (the web app's test pairs)


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
    """The first ``limit`` records of ``files`` as :class:`RecordPair` (file order), decoded.

    The poses are the records' ``pose_peaks_{0,1}_rcv`` keypoints, from which the converters drew
    the records' pose maps. Raises DataError for missing files, records of another size, or
    records without those keypoints.
    """
    check_records(files, img_H, img_W)
    spec = {}
    for side in (0, 1):
        spec[f"image_raw_{side}"] = tf.io.FixedLenFeature([], tf.string)
        spec[f"image_name_{side}"] = tf.io.FixedLenFeature([], tf.string, default_value=b"")
        spec[f"pose_peaks_{side}_rcv"] = tf.io.FixedLenFeature([pose.NUM_KEYPOINTS * 3], tf.float32)
    try:
        return _read_record_pairs(files, spec, limit)
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as error:
        # A truncated file or an undecodable JPEG: located by the reader's own explanation.
        raise explain_read_error(error, files, img_H, img_W) from None


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


# --------------------------------------------------------------------------------------------
# Locating read errors (the forensics are in pg2_tf.records.damage)


def _decoded_checksum(record, file_name, record_index, img_H, img_W):
    """A scalar that depends on every decoded tensor of a record (so no decoding is pruned)."""
    pair = parse_pair(record, img_H, img_W, file_name=file_name, record_index=record_index)
    return tf.add_n([tf.reduce_sum(pair[key]) for key in ELEMENT_KEYS])


_SCAN_BATCH = 256


def _first_failing_record(records, first_index):
    """Index of the first element of ``records`` that raises, or None if none does."""
    index = first_index
    try:
        for _ in records:
            index += 1
    except tf.errors.OpError:
        return index
    return None


def find_bad_record(files: list[str], img_H: int, img_W: int):
    """Re-reads ``files`` in order and returns ``(file, record_index, problem)`` of the first
    record that fails to read or decode, or None when all of them decode.

    ``problem`` is a phrase such as ``"cannot be decoded (<TensorFlow's message>)"``;
    ``record_index`` is None if the failure could not be pinned to one record. Costs a full
    decoding pass over the files (parallel, in order); :func:`explain_read_error` uses it for errors
    TensorFlow reports without a location (e.g. a JPEG that does not decode).
    """

    def checksum(record, file_name, record_index):
        return _decoded_checksum(record, file_name, record_index, img_H, img_W)

    for path in files:
        decoded = (
            _located_records(path)
            .map(checksum, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .batch(_SCAN_BATCH)
        )
        batches_read = 0
        try:
            for _ in decoded:
                batches_read += 1
        except tf.errors.DataLossError as error:
            located = damage.locate_damaged(error, [path])
            return located or (
                path,
                None,
                f"is unreadable ({damage.short_tf_message(error)})",
            )
        except tf.errors.InvalidArgumentError as error:
            located = damage.parse_bad_record(error)
            if located:
                return located
            # TensorFlow did not say which record: re-read the failing batch record by record.
            first = batches_read * _SCAN_BATCH
            batch = _located_records(path).skip(first).take(_SCAN_BATCH).map(checksum)
            return (
                path,
                _first_failing_record(batch, first),
                (f"cannot be decoded ({damage.short_tf_message(error)})"),
            )
    return None


def explain_read_error(error, files, img_H=None, img_W=None) -> DataError:
    """A one-line DataError naming the file and record behind a TensorFlow read error.

    :func:`pg2_tf.records.damage.explain_read_error`; with ``img_H``/``img_W`` errors TensorFlow
    raised without a location (an undecodable JPEG) are located by re-reading the files
    (:func:`find_bad_record`, a full decoding pass).
    """
    rescan = None
    if img_H is not None and img_W is not None:

        def rescan():
            return find_bad_record(files, img_H, img_W)

    return damage.explain_read_error(error, files, rescan)


def iterate(dataset, *, files, img_H, img_W):
    """Yields the elements of ``dataset``, turning read errors into located DataErrors.

    Wraps only the fetching of each element: ``DataLossError``, ``InvalidArgumentError`` and
    ``NotFoundError`` raised by ``next(iterator)`` become :func:`explain_read_error`'s DataError
    (raised ``from`` the TensorFlow error). ``files``, ``img_H``, ``img_W`` are those the dataset
    was made from. A training loop catches DataError, keeps its last checkpoint and stops.
    """
    iterator = iter(dataset)
    while True:
        try:
            element = next(iterator)
        except StopIteration:
            return
        except (
            tf.errors.DataLossError,
            tf.errors.InvalidArgumentError,
            tf.errors.NotFoundError,
        ) as error:
            raise explain_read_error(error, files, img_H, img_W) from error
        yield element
