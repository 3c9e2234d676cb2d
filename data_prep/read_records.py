"""Reads pair records back as plain Python values (for tests, checks and debugging).

Command line (prints the number of records and the features of the first)::

    python -m data_prep.read_records <data_dir or .tfrecord files>

Rule: reads any tf-record as plain lists (a debugging aid); no PG2 parsing.
"""

import os
import sys
from collections.abc import Iterable
from pathlib import Path


def record_files(path: Path) -> list[Path]:
    """The record files a path names.

    Args:
        path: a folder or one ``.tfrecord`` file.

    Returns:
        The folder's ``*.tfrecord`` files (sorted), or ``[path]`` for a file.
    """
    path = Path(path)
    return sorted(path.glob("*.tfrecord")) if path.is_dir() else [path]


def read_records(paths: Path | Iterable[Path]) -> list[dict[str, list]]:
    """Every record of the files, in file order.

    Args:
        paths: a data folder, a .tfrecord file, or several of either.

    Returns:
        one dict per record: feature name -> list of its values (bytes, float or int).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    if isinstance(paths, (str, Path)):
        paths = [paths]
    files = [file for path in paths for file in record_files(path)]
    records = []
    for file in files:
        for serialized in tf.data.TFRecordDataset(str(file)):
            example = tf.train.Example.FromString(serialized.numpy())
            records.append(
                {
                    key: list(getattr(feature, feature.WhichOneof("kind")).value)
                    if feature.WhichOneof("kind")
                    else []
                    for key, feature in example.features.feature.items()
                }
            )
    return records


def records_by_pair(paths) -> dict[tuple[str, str], dict[str, list]]:
    """Records keyed by the names of their two images.

    Args:
        paths: folders or ``.tfrecord`` files (:func:`read_records`).

    Returns:
        ``{(image_name_0, image_name_1): {feature: [values]}}``.
    """
    return {
        (record["image_name_0"][0].decode(), record["image_name_1"][0].decode()): record
        for record in read_records(paths)
    }


def main(argv: list[str]) -> None:
    """The command line: prints how many records the paths hold and the first one's features.

    Args:
        argv: folders or ``.tfrecord`` files.
    """
    records = read_records([Path(arg) for arg in argv])
    print(f"{len(records)} records")
    if records:
        for key, values in sorted(records[0].items()):
            shown = values[:1] if isinstance(values[0:1] and values[0], bytes) else values[:6]
            print(f"  {key}: {len(values)} values, first {shown!r:.80}")


if __name__ == "__main__":
    main(sys.argv[1:])
