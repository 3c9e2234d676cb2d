"""What the scores are written as: the original's score files, a table, and a JSON document.

``score_rgb.txt`` / ``score_mask.txt`` keep the original score.py's format (plus a FID line); the
JSON holds the protocol's numbers under :data:`pg2_tf.scoring.protocols.JSON_KEYS` first.

Rule: files are written atomically (:mod:`pg2_tf.core.atomic`); the numbers come from
:mod:`pg2_tf.scoring.folder_scores` unchanged (non-finite JSON values become null).
"""

import json
import math
import os

from pg2_tf.core import atomic
from pg2_tf.scoring import protocols


def write_json(path: str, numbers: dict) -> None:
    """Writes the numbers as JSON, atomically.

    Args:
        path: the JSON file to write.
        numbers: a protocol's numbers (:func:`pg2_tf.scoring.protocols.pg2_json` or
            :func:`pg2_tf.scoring.folder_scores.score_patn`), plus any other keys.

    The keys of :data:`pg2_tf.scoring.protocols.JSON_KEYS` come first (null where missing), then
    the others; non-finite floats are written as null.
    """

    def clean(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return value

    ordered = {key: numbers.get(key) for key in protocols.JSON_KEYS} | numbers
    document = {key: clean(value) for key, value in ordered.items()}
    atomic.write_text(path, json.dumps(document, indent=2) + "\n")


def _pm(scores: dict, name: str) -> str:
    mean, std = scores[f"{name}_mean"], scores[f"{name}_std"]
    return "n/a" if mean is None else f"{mean:.5f} +- {std:.5f}"


def score_file_text(scores: dict) -> str:
    """The original's score file text, plus a ``FID:`` line.

    Args:
        scores: the ``pg2`` numbers of :func:`pg2_tf.scoring.folder_scores.score_result_dir`.

    Returns:
        An ``Image number`` line, then one line of ``name: mean +- std`` fields (ssim, IS,
        psnr, L1, L2), then ``FID: value``; IS/FID are ``n/a`` when not computed.
    """
    fields = [
        f"ssim: {_pm(scores, 'ssim')}",
        f"IS: {_pm(scores, 'is')}",
        f"psnr: {_pm(scores, 'psnr')}",
        f"L1: {_pm(scores, 'l1')}",
        f"L2: {_pm(scores, 'l2')}",
    ]
    fid = "n/a" if scores["fid"] is None else f"{scores['fid']:.5f}"
    return f"Image number: {scores['num_images']}\n" + "   ".join(fields) + f"\nFID: {fid}\n"


def write_score_file(result_dir: str, scores: dict, *, mask: bool = False) -> str:
    """Writes the score file (:func:`score_file_text`) into result_dir, atomically.

    Args:
        result_dir: the scored folder.
        scores: the ``pg2`` numbers of :func:`pg2_tf.scoring.folder_scores.score_result_dir`.
        mask: the masked variant's numbers: write ``score_mask.txt``, not ``score_rgb.txt``.

    Returns:
        The path of the file written.
    """
    path = os.path.join(result_dir, "score_mask.txt" if mask else "score_rgb.txt")
    atomic.write_text(path, score_file_text(scores))
    return path


def format_table(scores: dict) -> str:
    """A plain-text table of the scores.

    Args:
        scores: the ``pg2`` numbers of :func:`pg2_tf.scoring.folder_scores.score_result_dir`.

    Returns:
        Lines of metric, mean and std (SSIM, IS, PSNR, L1, L2, then FID), ``n/a`` where not
        computed.
    """

    def cell(value) -> str:
        return "n/a" if value is None else f"{value:.5f}"

    rows = [("metric", "mean", "std")]
    for label, key in (
        ("SSIM", "ssim"),
        ("IS", "is"),
        ("PSNR", "psnr"),
        ("L1", "l1"),
        ("L2", "l2"),
    ):
        rows.append((label, cell(scores[f"{key}_mean"]), cell(scores[f"{key}_std"])))
    rows.append(("FID", cell(scores["fid"]), ""))
    return "\n".join(f"{a:<8}{b:>12}{c:>12}".rstrip() for a, b, c in rows)
