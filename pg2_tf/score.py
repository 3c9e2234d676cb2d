"""Scores a result folder under a named protocol: ``pg2`` (the paper's score.py) or ``patn``.

Usage::

    python -m pg2_tf.score --result_dir=model_dir/test_result [--protocol=pg2|patn] [--mask] \\
        [--json=scores.json] [--inception_graph=/path/to/inception-2015-12-05.tgz] \\
        [--fid_reference=DIR] [--annotations=CSV]

``--result_dir`` is a test_result folder (``G/``, ``x_target/``, mask folders,
``pose_target-annotation.csv``) or a Pose-Transfer results folder of ``<from>___<to>_vis.png``
strips (:mod:`pg2_tf.scoring.result_folders`). The protocols are defined in :mod:`pg2_tf.scoring.protocols`.

``pg2`` (default) writes ``score_rgb.txt`` (or, with ``--mask``, ``score_mask.txt`` from the mask
images of ``--mask_folder``) into ``result_dir`` in the original's format and prints a table;
with ``--json`` it computes both variants (the masked one when the mask folder exists) and writes
both files. ``patn`` prints its numbers. ``--json`` writes ``{"protocol", "SSIM", "L1",
"mask_SSIM", "IS", "mask_IS", "FID", "num_images", ...}`` (null where not computed). IS and FID
need the 2015-12-05 Inception graph (``--inception_graph`` or ``$PG2_INCEPTION_GRAPH``); without
it they are skipped with a message saying where to get it. FID compares the generated images
with the folder's targets, or with the images of ``--fid_reference``.
"""

import json
import math
import os
import sys

import numpy as np
from absl import flags

from pg2_tf import cli
from pg2_tf.core import atomic
from pg2_tf.core.errors import ConfigError, DataError
from pg2_tf.records import annotations
from pg2_tf.scoring import metrics, protocols, result_folders

INCEPTION_GRAPH_ENV = "PG2_INCEPTION_GRAPH"
# score_mask.py read the masks of the test_result/mask folder (the mask saved beside x), not
# mask_target: kept as the default so the published mask-SSIM / mask-IS can be reproduced.
DEFAULT_MASK_FOLDER = "mask"

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines this command's flags; only its own entry point does, so that importing the
    library functions never clashes with the flags of ``pg2_tf.main``."""
    flags.DEFINE_string("result_dir", None, "Test-mode output folder holding G/ and x_target/.")
    flags.DEFINE_bool(
        "mask", False, "Score masked images (both multiplied by mask/255), write score_mask.txt."
    )
    flags.DEFINE_string(
        "mask_folder",
        DEFAULT_MASK_FOLDER,
        "Sub-folder of result_dir with the mask images used by --mask ('mask' as the original "
        "score_mask.py; 'mask_target' for the target's own mask).",
    )
    flags.DEFINE_string(
        "inception_graph",
        None,
        f"inception-2015-12-05.tgz or its classify_image_graph_def.pb (default: ${INCEPTION_GRAPH_ENV}).",
    )
    flags.DEFINE_enum(
        "protocol",
        protocols.PG2,
        list(protocols.PROTOCOLS),
        "pg2: the original score.py/score_mask.py; patn: Pose-Transfer's getMetrics (Gaussian "
        "SSIM, [-1,1] L1, keypoint masks; docs/scores.md).",
    )
    flags.DEFINE_string(
        "json", None, "Also write the numbers to this JSON file (null where not computed)."
    )
    flags.DEFINE_string(
        "fid_reference",
        None,
        "Folder of reference images for FID (e.g. the training images); default: the targets.",
    )
    flags.DEFINE_string(
        "annotations",
        None,
        "patn masks: annotation CSV (name:keypoints_y:keypoints_x) of the target poses; default: "
        f"result_dir/{annotations.TARGET_ANNOTATIONS} when it exists.",
    )


def missing_inception_message() -> str:
    """One line saying IS/FID were skipped and how to get the graph."""
    return (
        f"Inception graph not given: IS and FID skipped. Download {metrics.INCEPTION_URL} and "
        f"pass --inception_graph=/path/to/inception-2015-12-05.tgz (or its "
        f"{metrics.INCEPTION_PB_NAME}), or set ${INCEPTION_GRAPH_ENV}."
    )


def resolve_inception_graph(inception_graph: str | None) -> str | None:
    """The graph path from the argument, else ``$PG2_INCEPTION_GRAPH``, else ``None``.

    Raises:
        DataError: a path was given but is not a file.
    """
    if inception_graph:
        path, origin = inception_graph, "--inception_graph"
    elif os.environ.get(INCEPTION_GRAPH_ENV):
        path, origin = os.environ[INCEPTION_GRAPH_ENV], f"${INCEPTION_GRAPH_ENV}"
    else:
        return None
    if not os.path.isfile(path):
        raise DataError(
            f"{origin}={path!r} is not a file; download {metrics.INCEPTION_URL} and point "
            f"{origin} at the .tgz or at the {metrics.INCEPTION_PB_NAME} inside it"
        )
    return path


def score_result_dir(
    result_dir: str,
    *,
    mask: bool = False,
    inception_graph: str | None = None,
    mask_folder: str = DEFAULT_MASK_FOLDER,
    fid_reference: str | None = None,
    inception_runs: protocols.InceptionRuns | None = None,
) -> dict:
    """Computes the paper's scores (and FID) of a result folder (the ``pg2`` protocol).

    Args:
        result_dir: a test_result folder with ``G/``, ``x_target/`` (and ``mask_folder/`` with
            ``mask``), or a Pose-Transfer folder of ``_vis.png`` strips (not with ``mask``).
        mask: score the masked images (``score_mask.py``): both images multiplied by ``mask/255``
            and truncated to ``uint8``; IS on masked G, FID masked G vs masked x_target.
        inception_graph: path of ``inception-2015-12-05.tgz`` or ``classify_image_graph_def.pb``;
            ``None`` reads ``$PG2_INCEPTION_GRAPH``; without either, IS and FID are ``None``.
        mask_folder: sub-folder of the mask images used when ``mask`` is set.
        fid_reference: folder of FID reference images (as read, unmasked); ``None``: the
            (masked) targets.
        inception_runs: Inception outputs shared with other scoring calls of the same images
            (:class:`pg2_tf.scoring.protocols.InceptionRuns`), or ``None``.

    Returns:
        ``{"num_images": int, "ssim_mean", "ssim_std", "psnr_mean", "psnr_std", "l1_mean",
        "l1_std", "l2_mean", "l2_std": float, "is_mean", "is_std", "fid": float or None,
        "inception_graph": path or None, "notes": list of str}`` (notes say why IS/FID are
        missing). L1/L2 are on the 0..255 scale; PSNR in dB (``inf`` for identical images).

    Raises:
        DataError: missing folders or graph file, unequal image counts, no images.
    """
    graph_path = resolve_inception_graph(inception_graph)
    result = result_folders.load(result_dir, mask_folder=mask_folder if mask else None)
    generated, targets = result.generated, result.targets
    if result.masks is not None:
        generated = [metrics.apply_mask(g, m) for g, m in zip(generated, result.masks, strict=True)]
        targets = [metrics.apply_mask(t, m) for t, m in zip(targets, result.masks, strict=True)]

    scores: dict = {"num_images": len(generated)}
    scores.update(metrics.pair_scores(generated, targets))
    inception, notes = protocols.run_inception(
        graph_path,
        is_images=generated,
        fid_images=generated,
        fid_reference=read_fid_reference(fid_reference) if fid_reference else targets,
        runs=inception_runs,
    )
    scores.update(
        {
            "is_mean": inception["IS"],
            "is_std": inception["IS_std"],
            "fid": inception["FID"],
            "inception_graph": graph_path,
        }
    )
    if graph_path is None:
        notes.insert(0, missing_inception_message())
    scores["notes"] = notes
    return scores


def read_fid_reference(folder: str) -> list[np.ndarray]:
    """The ``--fid_reference`` images (RGB uint8, one size); DataError naming the flag."""
    if not os.path.isdir(folder):
        raise DataError(
            f"--fid_reference={folder!r} is not a folder; give a folder of .png/.jpg images "
            "(e.g. the training images)"
        )
    return result_folders.read_folder_images(folder)


def score_patn(
    result_dir: str,
    *,
    inception_graph: str | None = None,
    fid_reference: str | None = None,
    annotation_path: str | None = None,
    inception_runs: protocols.InceptionRuns | None = None,
) -> dict:
    """The ``patn`` protocol's numbers of a result folder (:func:`pg2_tf.scoring.protocols.score_patn`).

    ``annotation_path`` defaults to ``result_dir/pose_target-annotation.csv`` when it exists;
    ``inception_runs`` shares Inception outputs with other scoring calls.
    """
    graph_path = resolve_inception_graph(inception_graph)
    result = result_folders.load(result_dir)
    default_annotations = os.path.join(result_dir, annotations.TARGET_ANNOTATIONS)
    if annotation_path is None and os.path.isfile(default_annotations):
        annotation_path = default_annotations
    numbers = protocols.score_patn(
        result,
        annotation_path=annotation_path,
        graph_path=graph_path,
        fid_reference=read_fid_reference(fid_reference) if fid_reference else None,
        inception_runs=inception_runs,
    )
    numbers["layout"] = result.layout
    numbers["annotations"] = annotation_path
    if graph_path is None:
        numbers["notes"].insert(0, missing_inception_message())
    return numbers


def write_json(path: str, numbers: dict) -> None:
    """Writes the numbers as JSON, atomically: the keys of :data:`pg2_tf.scoring.protocols.JSON_KEYS`
    first, then the others; non-finite values as null."""

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
    """The original's score file text (``Image number`` line, then one line of ``name: mean +-
    std`` fields), plus a ``FID:`` line; IS/FID are ``n/a`` when not computed."""
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
    """Writes ``score_rgb.txt`` (``score_mask.txt`` with ``mask``) into result_dir; returns its
    path."""
    path = os.path.join(result_dir, "score_mask.txt" if mask else "score_rgb.txt")
    atomic.write_text(path, score_file_text(scores))
    return path


def format_table(scores: dict) -> str:
    """A plain-text table of the scores (metric, mean, std)."""

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


def _print_pg2(result_dir: str, scores: dict, mask: bool, mask_folder: str) -> None:
    path = write_score_file(result_dir, scores, mask=mask)
    kind = f"masked by {mask_folder}/" if mask else "rgb"
    print(f"{result_dir}: {scores['num_images']} images ({kind})")
    print(format_table(scores))
    print(f"written: {path}")


def _run_pg2(mask: bool) -> dict | None:
    """Scores as the original, writes the score file(s); with --json both variants."""
    variants = [mask]
    if FLAGS.json:
        has_masks = os.path.isdir(os.path.join(FLAGS.result_dir, FLAGS.mask_folder))
        variants = [False, True] if has_masks else [False]
    results = {}
    inception_runs = protocols.InceptionRuns()  # --fid_reference goes through Inception once
    for variant in variants:
        scores = score_result_dir(
            FLAGS.result_dir,
            mask=variant,
            inception_graph=FLAGS.inception_graph,
            mask_folder=FLAGS.mask_folder,
            fid_reference=FLAGS.fid_reference,
            inception_runs=inception_runs,
        )
        for note in scores["notes"]:
            print(f"warning: {note}", file=sys.stderr)
        _print_pg2(FLAGS.result_dir, scores, variant, FLAGS.mask_folder)
        results[variant] = scores
    return protocols.pg2_json(results[False], results.get(True)) if FLAGS.json else None


def _run_patn() -> dict:
    numbers = score_patn(
        FLAGS.result_dir,
        inception_graph=FLAGS.inception_graph,
        fid_reference=FLAGS.fid_reference,
        annotation_path=FLAGS.annotations,
    )
    for note in numbers["notes"]:
        print(f"note: {note}", file=sys.stderr)
    print(
        f"{FLAGS.result_dir}: {numbers['num_images']} images, protocol patn ({numbers['dataset']})"
    )
    for key in ("SSIM", "L1", "mask_SSIM", "IS", "mask_IS", "FID"):
        value = numbers[key]
        print(f"{key:<10}{'n/a' if value is None else f'{value:.5f}':>12}")
    return numbers


def main(argv: list[str]) -> None:
    """Entry point: scores ``--result_dir`` under ``--protocol``; prints, writes the files."""
    cli.start_command(argv)
    if not FLAGS.result_dir:
        raise ConfigError("--result_dir is required, e.g. --result_dir=model_dir/test_result")
    if FLAGS.mask and not FLAGS.mask_folder:
        raise ConfigError("--mask needs --mask_folder (the sub-folder of the mask images)")
    if FLAGS.protocol == protocols.PATN and FLAGS.mask:
        raise ConfigError(
            "--mask is the pg2 protocol's variant; --protocol=patn computes mask_SSIM and "
            "mask_IS itself from the target keypoints (--annotations)"
        )
    if FLAGS.json and not os.path.isdir(os.path.dirname(os.path.abspath(FLAGS.json))):
        raise ConfigError(f"--json={FLAGS.json!r}: its folder does not exist")
    if FLAGS.json and os.path.isdir(FLAGS.json):
        raise ConfigError(f"--json={FLAGS.json!r} is a folder: give a file name, e.g. scores.json")
    if FLAGS.protocol == protocols.PATN:
        numbers = _run_patn()
    else:
        numbers = _run_pg2(FLAGS.mask)
    if FLAGS.json:
        numbers["FID_reference"] = FLAGS.fid_reference or "the targets"
        write_json(FLAGS.json, numbers)
        print(f"written: {FLAGS.json}")


def run() -> None:
    """Console-script entry point (``pg2-score``)."""
    cli.console_entry(define_flags, main)


if __name__ == "__main__":
    run()
