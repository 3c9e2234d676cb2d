"""tf.data reader of the ORIGINAL PG2 tf-records (Market-1501 and DeepFashion pairs).

The records are the ones written by the original converters (``convert_market.py``,
``convert_DF.py``): one ``tf.train.Example`` per pair of images of the same person. This module
finds the files of a split, checks them up front and batches them; each record is decoded by
:func:`pg2_tf.records.decoder.parse_pair` into the tensors the original trainer fed to the graph
(``x``, ``x_target`` [B, H, W, 3] in [-1, 1]; ``pose``, ``pose_target`` [B, H, W, 18] in
{-1, +1}; ``mask``, ``mask_target`` [B, H, W, 1] in {0, 1}: the table is in that module).

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
  offset; a JPEG that does not decode) are located afterwards by
  :func:`pg2_tf.records.damage.explain_read_error`, which walks the record framing of the files
  and, for undecodable records, re-reads them in order.

A training loop uses :func:`iterate` (or catches the errors itself and calls
:func:`pg2_tf.records.damage.explain_read_error`)::

    files = reader.record_files(data_path, "train", kind)
    dataset = reader.make_dataset(data_path, "train", kind=kind, img_H=H, img_W=W,
                                  batch_size=B, is_train=True)
    try:
        for step, batch in zip(steps, reader.iterate(dataset, files=files, img_H=H, img_W=W)):
            train_step(batch)  # a tf.function taking the dict; batches are fetched eagerly
    except DataError:
        ...  # keep the last checkpoint, report the one-line message, stop

:func:`iterate` only guards fetching the next batch, so errors raised by the model are not
mistaken for data errors.

Rule: reads records, never writes them (that is ``data_prep``); knows nothing of the networks.
"""

import os
import pickle

import tensorflow as tf

from pg2_tf.core import datasets, pose
from pg2_tf.core.errors import DataError
from pg2_tf.records import damage, decoder

_DEFAULT_SHUFFLE_BUFFER = 256  # serialized records; ~90 KB each for Market, ~0.5 MB for DeepFashion
_GET_DATA = damage.GET_DATA


# --------------------------------------------------------------------------------------------
# Dataset names, files and pair counts


def record_prefix(kind: str) -> str:
    """The tf-record file prefix of a dataset kind.

    Args:
        kind: ``'market'`` or ``'deepfashion'``.

    Returns:
        ``'Market1501'`` or ``'DeepFashion'``.

    Raises:
        ConfigError: an unknown kind.
    """
    return datasets.by_kind(kind).record_prefix


def record_files(data_path: str, split: str, kind: str) -> list[str]:
    """The record files of a split, by the original's file pattern.

    Args:
        data_path: the folder of the records.
        split: ``'train'`` or ``'test'``.
        kind: ``'market'`` or ``'deepfashion'``.

    Returns:
        The sorted paths ``data_path/<prefix>_<split>_*.tfrecord``.

    Raises:
        DataError: the folder is missing or holds no file matching the pattern.
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
    file, and counting a training split means reading tens of GB.

    Args:
        data_path: the folder of the records.
        split: ``'train'`` or ``'test'``.

    Returns:
        The pair count, >= 0.

    Raises:
        DataError: the file is missing, is not a pickle, or does not hold a non-negative int.
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
    """One line on the split's size for the training log.

    Args:
        data_path: the folder of the records.
        split: ``'train'`` or ``'test'``.
        batch_size: the global batch size.

    Returns:
        ``"<n> pairs in <data_path> (<split>): <n // batch_size> steps per epoch"``; a missing or
        unreadable ``pn_pairs_num_<split>.p`` is reported in the line, not raised (the records are
        what training reads).

    Raises:
        DataError: the split holds fewer pairs than one batch.
    """
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


def element_spec(img_H: int, img_W: int, batch_size: int | None = None) -> dict:
    """The ``tf.TensorSpec`` of one batch (e.g. for a train step's ``input_signature``).

    Args:
        img_H: image height in pixels.
        img_W: image width in pixels.
        batch_size: the batch dimension, or None for any.

    Returns:
        dict key -> float32 ``tf.TensorSpec``: ``[batch_size, img_H, img_W, C]`` with C = 3 for
        ``x``/``x_target``, 18 for ``pose``/``pose_target``, 1 for ``mask``/``mask_target``.
    """
    channels = {"x": 3, "x_target": 3, "pose": 18, "pose_target": 18, "mask": 1, "mask_target": 1}
    return {
        key: tf.TensorSpec([batch_size, img_H, img_W, channels[key]], tf.float32, name=key)
        for key in decoder.ELEMENT_KEYS
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

    Cheap (one record per file).

    Args:
        files: the record files.
        img_H: the model's image height.
        img_W: the model's image width.

    Raises:
        DataError: naming the file, when a file is empty or damaged at its first record, lacks a
            feature the reader needs, or holds images of another size (the message says which
            ``--model/--img_H/--img_W`` those records need).
    """
    pose_size = img_H * img_W * pose.NUM_KEYPOINTS
    for path in files:
        try:
            first = next(iter(tf.data.TFRecordDataset(path).take(1)), None)
        except (tf.errors.DataLossError, tf.errors.NotFoundError) as error:
            raise damage.explain_read_error(error, [path]) from None
        if first is None:
            raise DataError(f"{path} holds no records; remove it or re-run the record converter")
        features = tf.io.parse_single_example(first, decoder.feature_spec())
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

    Training (``is_train=True``): every pass over the data (epoch) reads each record once: the
    file order is reshuffled, up to 4 files are interleaved, serialized records go through a
    ``shuffle_buffer``-record shuffle; passes repeat forever; records are parsed in parallel and
    batches are always full (``drop_remainder``; a batch may span two passes), so the batch
    dimension is static. With a ``seed`` the order is reproducible; without one, parallel
    stages may also reorder elements.

    Test (``is_train=False``): files in sorted order, every record exactly once in file order,
    the last partial batch kept, deterministic.

    Calls :func:`check_records` first. Errors found while iterating are explained by
    :func:`iterate` / :func:`pg2_tf.records.damage.explain_read_error`.

    Args:
        data_path: the folder of the records.
        split: ``'train'`` or ``'test'``.
        kind: ``'market'`` or ``'deepfashion'`` (the file prefix).
        img_H: the model's image height; the records must be of this size.
        img_W: the model's image width.
        batch_size: pairs a batch.
        is_train: training order (shuffled, repeated) or test order.
        seed: the shuffles' seed (training), or None.
        shuffle_buffer: serialized records in the shuffle buffer (training).
        num_parallel_calls: parallel record parsing.

    Returns:
        tf.data.Dataset of dicts (keys :data:`pg2_tf.records.decoder.ELEMENT_KEYS`) of float32
        tensors: ``x``, ``x_target`` [B, H, W, 3] in [-1, 1]; ``pose``, ``pose_target``
        [B, H, W, 18] in {-1, +1}; ``mask``, ``mask_target`` [B, H, W, 1] in {0, 1}.

    Raises:
        DataError: missing files, or records of another size.
    """
    files = record_files(data_path, split, kind)
    check_records(files, img_H, img_W)

    def parse(record, file_name, record_index):
        return decoder.parse_pair(
            record, img_H, img_W, file_name=file_name, record_index=record_index
        )

    file_names = tf.data.Dataset.from_tensor_slices(files)
    if is_train:
        deterministic = seed is not None
        records = (
            file_names.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
            .interleave(
                decoder.located_records,
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
        records = file_names.flat_map(decoder.located_records)
        pairs = records.map(parse, num_parallel_calls=num_parallel_calls, deterministic=True)
        batches = pairs.batch(batch_size, drop_remainder=False)
    return batches.prefetch(tf.data.AUTOTUNE)


def iterate(dataset, *, files, img_H, img_W):
    """The elements of ``dataset``, with read errors turned into located DataErrors.

    Wraps only the fetching of each element, so errors raised by the model are not mistaken for
    data errors. A training loop catches DataError, keeps its last checkpoint and stops.

    Args:
        dataset: a dataset made by :func:`make_dataset`.
        files: the files it was made from (:func:`record_files`).
        img_H: its image height.
        img_W: its image width.

    Yields:
        The dataset's elements, in order.

    Raises:
        DataError: ``DataLossError``, ``InvalidArgumentError`` or ``NotFoundError`` raised by
            ``next(iterator)``, explained by :func:`pg2_tf.records.damage.explain_read_error`
            (raised ``from`` the TensorFlow error).
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
            raise damage.explain_read_error(error, files, img_H, img_W) from error
        yield element
