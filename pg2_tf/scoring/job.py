"""What ``pg2-score`` does with a result folder: score it under a protocol, print, write the files.

``pg2`` writes ``score_rgb.txt`` (or, with ``mask``, ``score_mask.txt`` from the mask images of
``mask_folder``) into the folder in the original's format and prints a table; with a JSON path
it computes both variants (the masked one when the mask folder exists) and writes both files.
``patn`` prints its numbers. The JSON holds ``{"protocol", "SSIM", "L1", "mask_SSIM", "IS",
"mask_IS", "FID", "num_images", ...}`` (null where not computed).

Rule: takes a plain :class:`ScoreJob` (the command line :mod:`pg2_tf.score` builds it from its
flags); the numbers come from :mod:`pg2_tf.scoring.folder_scores`, the files from
:mod:`pg2_tf.scoring.reports`. Notes go to stderr, the tables and file names to stdout.
"""

import dataclasses
import os
import sys

from pg2_tf.scoring import folder_scores, protocols, reports


@dataclasses.dataclass(frozen=True)
class ScoreJob:
    """One scoring of a result folder (the flags of ``pg2-score`` of the same names).

    Attributes:
        result_dir: the test_result or Pose-Transfer folder to score.
        protocol: :data:`pg2_tf.scoring.protocols.PG2` or :data:`pg2_tf.scoring.protocols.PATN`.
        mask: ``pg2`` only: score the masked images (``score_mask.txt``).
        mask_folder: the sub-folder of the mask images.
        inception_graph: the Inception graph's path, or None (``$PG2_INCEPTION_GRAPH``).
        json: also write the numbers to this JSON file, or None.
        fid_reference: folder of FID reference images, or None (the targets).
        annotations: ``patn`` masks: the target poses' annotation CSV, or None.
    """

    result_dir: str
    protocol: str = protocols.PG2
    mask: bool = False
    mask_folder: str = folder_scores.DEFAULT_MASK_FOLDER
    inception_graph: str | None = None
    json: str | None = None
    fid_reference: str | None = None
    annotations: str | None = None


def _print_pg2(result_dir: str, scores: dict, mask: bool, mask_folder: str) -> None:
    path = reports.write_score_file(result_dir, scores, mask=mask)
    kind = f"masked by {mask_folder}/" if mask else "rgb"
    print(f"{result_dir}: {scores['num_images']} images ({kind})")
    print(reports.format_table(scores))
    print(f"written: {path}")


def _run_pg2(job: ScoreJob) -> dict | None:
    """Scores as the original, writes the score file(s); with a JSON path both variants."""
    variants = [job.mask]
    if job.json:
        has_masks = os.path.isdir(os.path.join(job.result_dir, job.mask_folder))
        variants = [False, True] if has_masks else [False]
    results = {}
    inception_runs = protocols.InceptionRuns()  # --fid_reference goes through Inception once
    for variant in variants:
        scores = folder_scores.score_result_dir(
            job.result_dir,
            mask=variant,
            inception_graph=job.inception_graph,
            mask_folder=job.mask_folder,
            fid_reference=job.fid_reference,
            inception_runs=inception_runs,
        )
        for note in scores["notes"]:
            print(f"warning: {note}", file=sys.stderr)
        _print_pg2(job.result_dir, scores, variant, job.mask_folder)
        results[variant] = scores
    return protocols.pg2_json(results[False], results.get(True)) if job.json else None


def _run_patn(job: ScoreJob) -> dict:
    numbers = folder_scores.score_patn(
        job.result_dir,
        inception_graph=job.inception_graph,
        fid_reference=job.fid_reference,
        annotation_path=job.annotations,
    )
    for note in numbers["notes"]:
        print(f"note: {note}", file=sys.stderr)
    print(f"{job.result_dir}: {numbers['num_images']} images, protocol patn ({numbers['dataset']})")
    for key in ("SSIM", "L1", "mask_SSIM", "IS", "mask_IS", "FID"):
        value = numbers[key]
        print(f"{key:<10}{'n/a' if value is None else f'{value:.5f}':>12}")
    return numbers


def run(job: ScoreJob) -> dict | None:
    """Scores the folder under the job's protocol; prints the numbers and writes the files.

    Args:
        job: what to score and where to write (:class:`ScoreJob`).

    Returns:
        The JSON document written (the protocol's numbers and ``FID_reference``), or None when
        the job has no JSON path and its protocol is ``pg2``; ``patn``'s numbers otherwise.

    Raises:
        DataError: unreadable folder, graph, reference or annotation file.
    """
    numbers = _run_patn(job) if job.protocol == protocols.PATN else _run_pg2(job)
    if job.json:
        numbers["FID_reference"] = job.fid_reference or "the targets"
        reports.write_json(job.json, numbers)
        print(f"written: {job.json}")
    return numbers
