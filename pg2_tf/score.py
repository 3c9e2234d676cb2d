"""``pg2-score``: the command line that scores a result folder under a named protocol.

Usage::

    python -m pg2_tf.score --result_dir=model_dir/test_result [--protocol=pg2|patn] [--mask] \\
        [--json=scores.json] [--inception_graph=/path/to/inception-2015-12-05.tgz] \\
        [--fid_reference=DIR] [--annotations=CSV]

``--result_dir`` is a test_result folder (``G/``, ``x_target/``, mask folders,
``pose_target-annotation.csv``) or a Pose-Transfer results folder of ``<from>___<to>_vis.png``
strips (:mod:`pg2_tf.scoring.result_folders`). The protocols are defined in
:mod:`pg2_tf.scoring.protocols`; what each writes and prints in :mod:`pg2_tf.scoring.job`. IS and
FID need the 2015-12-05 Inception graph (``--inception_graph`` or ``$PG2_INCEPTION_GRAPH``);
without it they are skipped with a message saying where to get it.

Rule: flags in, checked, one call of :func:`pg2_tf.scoring.job.run`.
"""

import os

from absl import flags

from pg2_tf import cli
from pg2_tf.core.errors import ConfigError
from pg2_tf.records import annotations
from pg2_tf.scoring import folder_scores, job, protocols

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
        folder_scores.DEFAULT_MASK_FOLDER,
        "Sub-folder of result_dir with the mask images used by --mask ('mask' as the original "
        "score_mask.py; 'mask_target' for the target's own mask).",
    )
    flags.DEFINE_string(
        "inception_graph",
        None,
        f"inception-2015-12-05.tgz or its classify_image_graph_def.pb (default: ${folder_scores.INCEPTION_GRAPH_ENV}).",
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


def main(argv: list[str]) -> None:
    """Entry point: scores ``--result_dir`` under ``--protocol``; prints, writes the files.

    Args:
        argv: the command line (absl's, flags already parsed).
    """
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
    job.run(
        job.ScoreJob(
            result_dir=FLAGS.result_dir,
            protocol=FLAGS.protocol,
            mask=FLAGS.mask,
            mask_folder=FLAGS.mask_folder,
            inception_graph=FLAGS.inception_graph,
            json=FLAGS.json,
            fid_reference=FLAGS.fid_reference,
            annotations=FLAGS.annotations,
        )
    )


def run() -> None:
    """Console-script entry point (``pg2-score``)."""
    cli.console_entry(define_flags, main)


if __name__ == "__main__":
    run()
