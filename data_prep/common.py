"""Shared pieces of the converters: pose pickles, image files, pair lists, the original's shuffle.

Everything that reads user files turns a problem into a one-line :class:`pg2_tf.core.errors.DataError`
naming the file and the fix.

Rule: helpers every converter shares; what differs between the datasets is read from
:class:`pg2_tf.core.datasets.Dataset`, never tested here.
"""

import argparse
import bisect
import importlib
import io
import os
import pickle
import random
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from pg2_tf.core import atomic
from pg2_tf.core.errors import ConfigError, DataError, Pg2Error

# The original scripts seed Python's module-level generator once, at import time.
ORIGINAL_RANDOM_SEED = 0
# Pickles are written with protocol 2 so that Python 2 tools (the original code) can read them.
PICKLE_PROTOCOL = 2
# The original keeps one negative pair out of this many candidates ("j % 2000 == 0").
NEGATIVE_PAIR_STRIDE = 2000


def require_dir(path: Path, what: str, fix: str) -> Path:
    """A folder that must exist.

    Args:
        path: the folder.
        what: names it in the message (``"image folder"``).
        fix: what to do, appended to the message.

    Returns:
        ``path`` as a Path.

    Raises:
        DataError: ``'<what> <path> is missing; <fix>'`` when it is not a folder.
    """
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{what} {path} is missing; {fix}")
    return path


def load_python2_pickle(path: Path, fix: str):
    """Loads a pickle written by Python 2 (numpy arrays inside need ``encoding='latin1'``).

    Args:
        path: the ``.p`` file.
        fix: what to do, appended to messages.

    Returns:
        The unpickled object.

    Raises:
        DataError: missing or unreadable file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} is missing; {fix}")
    try:
        with open(path, "rb") as f:
            return pickle.load(f, encoding="latin1")
    except Exception as error:  # unpickling raises many types; all mean "not a readable pickle"
        raise DataError(f"{path} is not a readable pickle ({error}); {fix}") from error


def load_pose_dictionaries(peaks_path: Path, subsets_path: Path, fix: str) -> tuple[dict, dict]:
    """Loads an OpenPose result pair of the original raw layout.

    Args:
        peaks_path: the ``all_peaks_dic_*.p`` pickle.
        subsets_path: the ``subsets_dic_*.p`` pickle.
        fix: what to do, appended to messages.

    Returns:
        ``({image name: all_peaks}, {image name: subsets})``: all_peaks is 18 lists of
        ``(x, y, score, id)`` peaks; subsets a float array ``[N, 20]`` per image
        (:func:`pg2_tf.core.pose_files.keypoints_from_openpose` reads them).

    Raises:
        DataError: a missing file, or one that is not such a dictionary.
    """
    all_peaks = load_python2_pickle(peaks_path, fix)
    subsets = load_python2_pickle(subsets_path, fix)
    _check_pose_dictionary(peaks_path, all_peaks, _looks_like_peaks, fix)
    _check_pose_dictionary(subsets_path, subsets, _looks_like_subsets, fix)
    return all_peaks, subsets


def _check_pose_dictionary(path, value, looks_right: Callable, fix: str) -> None:
    sample = next(iter(value.values()), None) if isinstance(value, dict) else None
    if not isinstance(value, dict) or (sample is not None and not looks_right(sample)):
        raise DataError(
            f"{path} is not an OpenPose pose dictionary ({{image name: peaks or subsets}}); {fix}"
        )


def _looks_like_peaks(sample) -> bool:
    try:
        return len(sample) == 18 and all(len(peak) == 4 for joint in sample for peak in joint)
    except TypeError:
        return False


def _looks_like_subsets(sample) -> bool:
    array = np.asarray(sample)
    return array.size == 0 or (array.ndim == 2 and array.shape[1] == 20)


def image_file_list(folder: Path, skip_first: int = 0) -> list[str]:
    """The image names of a folder, as the original ``_get_image_file_list``.

    Args:
        folder: the image folder.
        skip_first: entries of the sorted listing to drop BEFORE the extension filter (the
            original skips Market's 6617 junk test detections that way).

    Returns:
        Sorted names of the ``.jpg``/``.png`` files.
    """
    names = sorted(os.listdir(folder))[skip_first:]
    return [name for name in names if name.endswith(".jpg") or name.endswith(".png")]


def same_identity_pairs(
    filelist: Sequence[str], identity: Callable[[str], str], add_switched: bool = True
) -> tuple[list[list[str]], list[list[str]]]:
    """Pairs of the original 'same_diff_cam' mode, in the original's order.

    Args:
        filelist: sorted image names.
        identity: name -> person identity (Market: name[0:4]; DeepFashion: text before '_').
        add_switched: also add (j, i) right after each (i, j).

    Returns:
        ``(positive_pairs, negative_pairs)``: for i < j, [name_i, name_j] (and [name_j, name_i])
        when the identities match; [name_i, name_j] when they differ and j is a multiple of 2000.
    """
    identities = [identity(name) for name in filelist]
    indices_of = defaultdict(list)
    for index, person in enumerate(identities):
        indices_of[person].append(index)
    positive_pairs, negative_pairs = [], []
    for i, name_i in enumerate(filelist):
        same = indices_of[identities[i]]
        for j in same[bisect.bisect_right(same, i) :]:
            positive_pairs.append([name_i, filelist[j]])
            if add_switched:
                positive_pairs.append([filelist[j], name_i])
        first_j = (i // NEGATIVE_PAIR_STRIDE + 1) * NEGATIVE_PAIR_STRIDE
        for j in range(first_j, len(filelist), NEGATIVE_PAIR_STRIDE):
            if identities[j] != identities[i]:
                negative_pairs.append([name_i, filelist[j]])
    return positive_pairs, negative_pairs


def python2_shuffle(items: list, rng: random.Random) -> None:
    """Shuffles in place exactly as Python 2.7's ``random.shuffle`` did with the same generator.

    Python 3 changed the algorithm (``_randbelow``); seeding ``random.Random(0)`` and drawing
    ``int(random() * (i + 1))`` reproduces the original converters' orders.

    Args:
        items: the list to shuffle (changed in place).
        rng: the generator, advanced by ``len(items) - 1`` draws.
    """
    for i in reversed(range(1, len(items))):
        j = int(rng.random() * (i + 1))
        items[i], items[j] = items[j], items[i]


def identity_map(pairs: Sequence[Sequence[str]], identity: Callable[[str], str]) -> dict[str, int]:
    """Person identities numbered in order of first appearance.

    Args:
        pairs: ``[name_0, name_1]`` pairs, read name 0 then name 1.
        identity: image name -> person identity.

    Returns:
        ``{identity: 0, 1, ...}``.
    """
    mapping: dict[str, int] = {}
    for name_0, name_1 in pairs:
        for name in (name_0, name_1):
            mapping.setdefault(identity(name), len(mapping))
    return mapping


def dump_pickle(value, path: Path) -> None:
    """Writes ``value`` with pickle protocol 2 (readable by Python 2 and 3), whole or not at all.

    Args:
        value: any picklable value.
        path: the ``.p`` file; its folder must exist.
    """
    atomic.write_bytes(path, pickle.dumps(value, protocol=PICKLE_PROTOCOL))


def read_image(path: Path) -> tuple[bytes, int, int]:
    """An image file's bytes and size, fully decoded once to check it.

    Args:
        path: a JPEG or PNG file.

    Returns:
        ``(file bytes, height, width)``.

    Raises:
        DataError: missing or undecodable file.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise DataError(f"cannot read image {path} ({error.strerror}); restore the file") from error
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return data, image.height, image.width
    except Exception as error:  # PIL raises several types for corrupt data
        raise DataError(
            f"image {path} is not a readable JPEG/PNG ({error}); replace or delete the file"
        ) from error


def converter_of(dataset):
    """The module converting a dataset's raw layout (``dataset.converter``).

    Args:
        dataset: a :class:`pg2_tf.core.datasets.Dataset`.

    Returns:
        The module (``data_prep.convert_market`` or ``data_prep.convert_DF``); its
        ``convert(raw_dir, split, out_dir, workers=, records_per_shard=, flip=, show_progress=,
        junk_detections=, with_roi10_mask=)`` writes the records of one split.
    """
    return importlib.import_module(dataset.converter)


def default_workers(workers: int | None) -> int:
    """The number of worker processes.

    Args:
        workers: ``--workers``, or None for every core.

    Returns:
        ``workers``, or ``os.cpu_count()`` (at least 1).

    Raises:
        ConfigError: ``workers`` below 1.
    """
    if workers is None:
        return os.cpu_count() or 1
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    return workers


def add_writer_args(parser: argparse.ArgumentParser, no_roi10_help: str | None = None) -> None:
    """Adds the record writer's options every converter takes.

    Args:
        parser: the converter's parser; gets --workers, --records_per_shard, --quiet and, when
            ``no_roi10_help`` is given, --no_roi10_mask.
        no_roi10_help: the help of --no_roi10_mask (converters of DeepFashion records), or None.
    """
    parser.add_argument("--workers", type=int, help="worker processes (default: every core)")
    parser.add_argument("--records_per_shard", type=int, default=1000)
    if no_roi10_help:
        parser.add_argument("--no_roi10_mask", action="store_true", help=no_roi10_help)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def raw_converter_parser(
    description: str, raw_folder: str, splits: Sequence[str], out_default: str
) -> argparse.ArgumentParser:
    """The command line of convert_market.py / convert_DF.py, before their own options.

    Args:
        description: the parser's description.
        raw_folder: names the positional raw_dir in its help.
        splits: the choices of the positional split.
        out_default: the default of --out, for its help.

    Returns:
        The parser with raw_dir, split, --out and --no_flip.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("raw_dir", type=Path, help=f"{raw_folder} folder")
    parser.add_argument("split", choices=splits)
    parser.add_argument("--out", type=Path, help=f"output folder (default {out_default})")
    parser.add_argument(
        "--no_flip", action="store_true", help="train: leave out the mirrored copies"
    )
    return parser


def print_written(out_dir: Path) -> None:
    """Prints the converters' last line: how many records were written where.

    Args:
        out_dir: the output folder (holding ``tf_record_pair_num.txt``).
    """
    print(f"wrote {(Path(out_dir) / 'tf_record_pair_num.txt').read_text()} records to {out_dir}")


def run_cli(main: Callable[[], None]) -> None:
    """Runs a command-line ``main``; a user error becomes one ``error:`` line and exit status 2.

    ``TF_CPP_MIN_LOG_LEVEL`` defaults to 2 (TensorFlow's C++ start-up lines are not shown).

    Args:
        main: the command's main, called without arguments.
    """
    try:
        main()
    except Pg2Error as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
