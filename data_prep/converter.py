"""The conversion pipeline shared by convert_market.py and convert_DF.py.

raw split (image folder + OpenPose pickles) -> pair lists (original order, pickles written like the
original) -> per-image pose entries -> :class:`PairRecord` list -> resumable shards.
"""

import random
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data_prep import common
from data_prep.record_features import (
    ImageEntry,
    ImageFolder,
    PairRecord,
    RecordBuilder,
    entry_problem,
)
from data_prep.shards import write_records
from pg2_tf.core import datasets, pose_files


@dataclass(frozen=True)
class SplitSource:
    """Where one set of images and their OpenPose results live."""

    folder: Path
    peaks_path: Path
    subsets_path: Path
    skip_first: int = 0  # sorted directory entries to drop (Market's junk test detections)


def generate_pairs(
    source: SplitSource,
    identity: Callable[[str], str],
    out_dir: Path,
    pickle_tag: str,
    rng: random.Random,
    fix: str,
    every_pair: bool = False,
) -> list[list[str]]:
    """Positive pairs of a split, saved like the original ``_get_train_all_pn_pairs``.

    Writes ``p_pairs_<tag>.p`` (generation order), ``n_pairs_<tag>.p`` (negatives shuffled with
    ``rng`` and cut to the number of positives) and ``pn_pairs_num_<tag>.p`` (their total).
    ``every_pair`` (DeepFashion test_seq): all ordered pairs (i, j), i == j included.

    Returns:
        the positive pairs [name_0, name_1], in generation order (a new list).
    """
    folder = common.require_dir(source.folder, "image folder", fix)
    filelist = common.image_file_list(folder, skip_first=source.skip_first)
    if every_pair:
        positive = [[name_i, name_j] for name_i in filelist for name_j in filelist]
        negative = []
    else:
        positive, negative = common.same_identity_pairs(filelist, identity)
    common.python2_shuffle(negative, rng)
    negative = negative[: len(positive)]
    common.dump_pickle(positive, out_dir / f"p_pairs_{pickle_tag}.p")
    common.dump_pickle(negative, out_dir / f"n_pairs_{pickle_tag}.p")
    common.dump_pickle(len(positive) + len(negative), out_dir / f"pn_pairs_num_{pickle_tag}.p")
    return list(positive)


def load_entries(
    spec: datasets.Dataset,
    source: SplitSource,
    names: set[str],
    fix: str,
    attributes_of: Callable[[str], dict] | None = None,
    with_roi10_mask: bool = True,
) -> tuple[dict[str, ImageEntry], dict[str, str]]:
    """Pose entries of ``names``.

    Returns:
        ``(entries, problems)``: entries of usable images; image name -> reason for images that
        have a pose but where the original converter crashed. Names missing from the peaks
        pickle are in neither (the original skipped their pairs).
    """
    all_peaks, subsets = common.load_pose_dictionaries(source.peaks_path, source.subsets_path, fix)
    entries, problems = {}, {}
    for name in sorted(names):
        if name not in all_peaks:
            continue
        person_rows = np.asarray(subsets.get(name, []), np.float64)
        if name not in subsets or len(person_rows) == 0:
            problems[name] = "no person row in the subsets pickle"
            continue
        try:
            keypoints_rc = pose_files.keypoints_from_openpose(
                all_peaks[name], person_rows, spec.selection
            )
        except ValueError as error:
            problems[name] = str(error)
            continue
        entry = ImageEntry(
            keypoints_rc=keypoints_rc,
            pose_subs=person_rows[0],
            attributes=attributes_of(name) if attributes_of else {},
        )
        problem = entry_problem(spec, entry, with_roi10_mask)
        if problem:
            problems[name] = problem
            continue
        entries[name] = entry
    return entries, problems


def convert_pairs(
    spec: datasets.Dataset,
    out_dir: Path,
    split_tag: str,
    parts: Sequence[tuple[str, SplitSource, list[list[str]]]],
    identity: Callable[[str], str],
    camera: Callable[[str], int],
    fix: str,
    record_limit: int | None = None,
    attributes_of: Callable[[str], dict] | None = None,
    with_roi10_mask: bool = True,
    workers: int = 1,
    records_per_shard: int = 1000,
    show_progress: bool = True,
) -> int:
    """Writes the records of ``parts`` (folder key, source, ordered pairs), in that order.

    Identities are numbered per part in order of first appearance in its pairs (the original's
    ``id_map`` / ``id_map_flip``). Pairs with an image without usable pose are skipped; writing
    stops after ``record_limit`` records. Writes ``tf_record_pair_num.txt`` ('cnt:<records>').

    Returns:
        the number of records written.
    """
    folders, records, problems = {}, [], {}
    for folder_key, source, pairs in parts:
        names = {name for pair in pairs for name in pair}
        entries, part_problems = load_entries(
            spec, source, names, fix, attributes_of, with_roi10_mask
        )
        problems.update(part_problems)
        folders[folder_key] = ImageFolder(str(source.folder), entries)
        ids = common.identity_map(pairs, identity)
        for name_0, name_1 in pairs:
            if record_limit is not None and len(records) == record_limit:
                break
            if name_0 in entries and name_1 in entries:
                records.append(
                    PairRecord.of_pair(folder_key, name_0, name_1, ids, identity, camera)
                )
    builder = RecordBuilder(spec, folders, with_roi10_mask)
    write_records(
        out_dir,
        spec.record_prefix,
        split_tag,
        records,
        builder,
        records_per_shard,
        workers,
        show_progress,
    )
    (Path(out_dir) / "tf_record_pair_num.txt").write_text(f"cnt:{len(records)}")
    if problems:
        example_name, example_reason = next(iter(problems.items()))
        print(
            f"warning: left out {len(problems)} images (and their pairs) that the original"
            f" converter could not handle, e.g. {example_name}: {example_reason}",
            file=sys.stderr,
        )
    return len(records)
