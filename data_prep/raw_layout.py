"""Writing the ORIGINAL raw layout (the zips' image folders and OpenPose pickles), for every way
of making a dataset here: synthetic people, your own photos and videos, the official releases.

Rule: the files are those the converters read unchanged (``data_prep.converter``); pickles are
written whole or not at all, keeping the entries of other splits.
"""

import io
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from data_prep import common
from pg2_tf.core import datasets


def prepare_image_sets(raw_dir: Path, layout: datasets.Dataset, split: str) -> dict:
    """Empties (or makes) the image folders ``split`` writes in the raw layout.

    Args:
        raw_dir: the raw folder.
        layout: the dataset's layout.
        split: the image set (train comes with ``train_flip``).

    Returns:
        ``{image_set: {}}``, to collect the sets' OpenPose results.
    """
    sets = {split: {}, "train_flip": {}} if split == "train" else {split: {}}
    for image_set in sets:
        folder = raw_dir / layout.image_folder(image_set)
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
    return sets


def save_jpeg(pixels: np.ndarray, path: Path, quality: int = 92) -> None:
    """Writes pixels as a JPEG file.

    Args:
        pixels: uint8 [H, W, 3].
        path: the file written.
        quality: JPEG quality (1..95).
    """
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="JPEG", quality=quality)
    path.write_bytes(buffer.getvalue())


def add_to_pickles(pose_dir: Path, pickle_names: tuple[str, str], results: dict) -> None:
    """Merges OpenPose results into the peaks/subsets pickles of a pose folder (DeepFashion keeps
    all sets in one pair, so another split's entries must stay).

    Args:
        pose_dir: the pose folder (made when missing).
        pickle_names: the peaks and subsets pickles' names.
        results: ``{image name: (peaks, person_rows)}``.
    """
    pose_dir.mkdir(parents=True, exist_ok=True)
    peaks_path, subsets_path = (pose_dir / name for name in pickle_names)
    all_peaks = common.load_python2_pickle(peaks_path, "") if peaks_path.exists() else {}
    subsets = common.load_python2_pickle(subsets_path, "") if subsets_path.exists() else {}
    for name, (peaks, person_rows) in results.items():
        all_peaks[name] = peaks
        subsets[name] = person_rows
    for path, value in ((peaks_path, all_peaks), (subsets_path, subsets)):
        common.dump_pickle(value, path)  # whole or not at all: it holds the other splits too
