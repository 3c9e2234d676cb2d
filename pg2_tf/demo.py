"""``python -m pg2_tf.demo``: the whole PG2 job on built-in synthetic data, in minutes on a CPU.

1. builds a small synthetic Market-style dataset in the original raw layout and converts it to
   tf-records with the project's converter, by running the data step as its own command
   (``python -m data_prep.synthetic ... --convert``, shown as it runs); unlike the paper's data,
   each person keeps one background and the test pairs show the training people in new poses;
2. trains both stages of a tiny model (G1, then G2 + D) through the same loop as ``pg2_tf.main``;
3. runs test mode (the original's ``test_result`` folders), scores it (SSIM, PSNR, L1, L2, and
   IS/FID when ``--inception_graph`` is given) and exports a SavedModel;
4. writes ``<out>/demo_summary.png``: rows of source image, target pose, G1, G2, target.

Everything lands in ``--out`` (default ``demo_out``); the equivalent full-size commands are
printed at the end.

Rule: ``pg2_tf`` imports nothing from ``data_prep`` (which imports ``pg2_tf``): the data step runs
in a subprocess, its failure reported in one line. The demo's schedule and data were chosen by
the measurements in docs/performance.md ("The demo's schedule").
"""

import dataclasses
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from absl import flags, logging

from pg2_tf import cli

FLAGS = flags.FLAGS

# The demo's schedule, for minutes on 2 CPU cores (docs/performance.md, "The demo's schedule").
DEMO_G_LR = 5e-4
DEMO_D_LR = 1e-6
DEMO_STEPS = 1200
DEMO_STAGE1_FRACTION = 0.3


def define_flags() -> None:
    """Defines the demo's own flags (only its entry point does)."""
    flags.DEFINE_string("out", "demo_out", "Folder for the data, model, results and export.")
    flags.DEFINE_integer(
        "steps",
        DEMO_STEPS,
        f"Training steps in all ({DEMO_STAGE1_FRACTION:.0%} of them in stage 1).",
    )
    flags.DEFINE_integer("conv_hidden_num", 16, "Tiny model width (the paper's is 128).")
    flags.DEFINE_integer("batch_size", 8, "Training batch size.")
    flags.DEFINE_integer("identities", 8, "Synthetic people in the training set.")
    flags.DEFINE_string("inception_graph", None, "inception-2015-12-05.tgz for IS/FID (optional).")


SUMMARY_COLUMNS = (
    ("x", "source"),
    ("pose_target", "pose"),
    ("G1", "G1"),
    ("G", "G2"),
    ("x_target", "target"),
)
HEADER_HEIGHT = 14


def _summary_picture(result_dir: str, count: int, path: str) -> None:
    """Rows of test pairs, columns of :data:`SUMMARY_COLUMNS` under a header naming them."""
    from PIL import Image, ImageDraw

    from pg2_tf.core import images

    rows = []
    for index in range(count):
        for folder, _ in SUMMARY_COLUMNS:
            picture = Image.open(os.path.join(result_dir, folder, f"{index:05d}.png"))
            rows.append(np.asarray(picture.convert("RGB")))
    body = images.grid(np.stack(rows), columns=len(SUMMARY_COLUMNS))
    header = Image.new("RGB", (body.shape[1], HEADER_HEIGHT))
    draw = ImageDraw.Draw(header)
    cell = rows[0].shape[1] + 2  # image width + the grid's padding
    for column, (_, label) in enumerate(SUMMARY_COLUMNS):
        centre = 2 + column * cell + cell // 2 - 1
        draw.text((centre, HEADER_HEIGHT // 2), label, fill=(255, 255, 255), anchor="mm")
    images.save_png(np.concatenate([np.asarray(header), body]), path)


def l1_to_target(result_dir: str) -> dict:
    """Mean L1 distance of G1 and of G2 to the target over the test results.

    Args:
        result_dir: a ``test_result`` folder (its ``G1/``, ``G/`` and ``x_target/`` are read).

    Returns:
        ``{"G1": float, "G2": float}``, on the 0..255 scale.
    """
    from pg2_tf.scoring import metrics, result_folders

    targets = result_folders.read_folder_images(os.path.join(result_dir, "x_target"))

    def mean_distance(folder):
        generated = result_folders.read_folder_images(os.path.join(result_dir, folder))
        pairs = zip(generated, targets, strict=True)
        return float(np.mean([metrics.l1_mean_distance(g, t) for g, t in pairs]))

    return {"G1": mean_distance("G1"), "G2": mean_distance("G")}


def _rate(value: float) -> str:
    """A learning rate as written in papers: 2e-4, 1e-6."""
    mantissa, exponent = f"{value:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def build_synthetic_records(data_root: str, identities: int) -> tuple[str, str]:
    """Runs the demo's data step as its own command, showing its command line and its lines.

    ``python -m data_prep.synthetic``: Market-style people, one background per person, test
    pairs of the training people in new poses; a folder already made with the same arguments is
    kept.

    Args:
        data_root: the folder of the raw layout and the records.
        identities: synthetic people in the training set (the test set has 2 of them).

    Returns:
        The train and test record folders, ``<data_root>/Market_{train,test}_data``.

    Raises:
        DataError: the command failed; the message holds its last error line.
    """
    from pg2_tf.core import datasets
    from pg2_tf.core.errors import DataError

    arguments = ["--kind", "market", "--out", data_root, "--identities", str(identities)]
    arguments += ["--test_identities", "2", "--splits", "train,test", "--seed", "0"]
    arguments += ["--seen_people", "--shared_background", "--convert"]
    print("    python -m data_prep.synthetic " + " ".join(arguments), flush=True)
    with tempfile.TemporaryFile(mode="w+") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "data_prep.synthetic", *arguments],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        for line in process.stdout:
            print("    " + line.rstrip(), flush=True)
        status = process.wait()
        if status:
            errors.seek(0)
            lines = [line.strip() for line in errors.read().splitlines() if line.strip()]
            reason = lines[-1].removeprefix("error: ") if lines else f"exit status {status}"
            raise DataError(f"the demo's data step (the command above) failed: {reason}")
    layout = datasets.by_kind("market")
    return tuple(os.path.join(data_root, layout.data_folder(split)) for split in ("train", "test"))


def run_demo(
    out,
    steps=DEMO_STEPS,
    conv_hidden_num=16,
    batch_size=8,
    identities=8,
    inception_graph=None,
    g_lr=DEMO_G_LR,
    d_lr=DEMO_D_LR,
    stage1_fraction=DEMO_STAGE1_FRACTION,
):
    """Runs the demo into folder ``out``.

    Args:
        out: the folder of everything the demo makes.
        steps: training steps in all.
        conv_hidden_num: the model's width (the paper's is 128).
        batch_size: the training batch.
        identities: synthetic people in the training set.
        inception_graph: inception-2015-12-05.tgz, for IS/FID; None skips them.
        g_lr, d_lr: the generators' and D's learning rates.
        stage1_fraction: the share of ``steps`` that train G1 (stage 1); the rest train G2 + D.

    Returns:
        A dict: the paths made (``model_dir``, ``result_dir``, ``export_dir``, ``summary``), the
        number of test results, the test scores (``scores["rgb"]``, ``scores["mask"]``), the
        mean L1 distances of G1 and G2 to the target (``l1``, 0..255), the last losses and the
        run time in seconds.
    """
    from pg2_tf.core import configs
    from pg2_tf.scoring import folder_scores, reports
    from pg2_tf.serving import export_lib
    from pg2_tf.training import loop, run_folder, test_mode

    started = time.monotonic()
    print(
        "1/4 building synthetic records: test pairs are seen people, new poses (the paper tests "
        "unseen people); one background per person (Market's pairs have unrelated backgrounds)"
        " ...",
        flush=True,
    )
    train_path, test_path = build_synthetic_records(os.path.join(out, "data"), identities)

    model_dir = os.path.join(out, "model")
    config = configs.TrainConfig(
        model=1,
        img_H=128,
        img_W=64,
        conv_hidden_num=conv_hidden_num,
        z_num=64,
        d_dim=16,
        batch_size=batch_size,
        max_step=steps,
        stage1_steps=int(steps * stage1_fraction),
        g_lr=g_lr,
        d_lr=d_lr,
        log_step=max(steps // 12, 1),
        num_log_samples=8,
        model_dir=model_dir,
        data_path=train_path,
        split="train",
        random_seed=123,
        # The demo's schedule was tuned with the fused stage-2 step, faster than the original's
        # two batches per step; pg2_tf.main defaults to the original's (docs/performance.md,
        # "Stage-2 schedules").
        stage2_schedule="fused",
    )
    print(
        f"2/4 training {steps} steps: G1 for {config.stage1_steps} (stage 1), then G2 + D "
        "(the fused stage-2 step: one batch per step, G2 and D updated together; the paper's "
        "training is --stage2_schedule=original); "
        f"demo schedule: generators' lr {_rate(g_lr)}, D's lr {_rate(d_lr)} (the paper: 2e-5 "
        "and 2e-5, 22000 of 60000 steps in stage 1) ...",
        flush=True,
    )
    run_folder.save_params(dataclasses.asdict(config), model_dir)
    result = loop.train(config)

    print("3/4 test mode and scores ...", flush=True)
    count = test_mode.write_test_results(
        result.checkpoint,
        test_path,
        model_dir,
        model=1,
        img_H=128,
        img_W=64,
        conv_hidden_num=conv_hidden_num,
        batch_size=8,
    )
    result_dir = os.path.join(model_dir, "test_result")
    scores = {}
    for mask in (False, True):
        numbers = folder_scores.score_result_dir(
            result_dir, mask=mask, inception_graph=inception_graph
        )
        reports.write_score_file(result_dir, numbers, mask=mask)
        scores["mask" if mask else "rgb"] = numbers

    print("4/4 exporting a SavedModel ...", flush=True)
    export_dir = export_lib.export_from_checkpoint(
        result.checkpoint,
        os.path.join(out, "saved_model"),
        model=1,
        img_H=128,
        img_W=64,
        conv_hidden_num=conv_hidden_num,
    )
    summary = os.path.join(out, "demo_summary.png")
    _summary_picture(result_dir, min(count, 8), summary)
    return {
        "model_dir": model_dir,
        "result_dir": result_dir,
        "export_dir": export_dir,
        "summary": summary,
        "num_test_results": count,
        "scores": scores,
        "l1": l1_to_target(result_dir),
        "last_losses": result.last_losses,
        "seconds": time.monotonic() - started,
    }


def main(argv):
    """Runs the demo with its flags and prints where to look.

    Args:
        argv: the arguments absl left (none are used).

    Returns:
        The exit status, 0.
    """
    del argv
    logging.set_verbosity(logging.WARNING)
    made = run_demo(
        FLAGS.out,
        steps=FLAGS.steps,
        conv_hidden_num=FLAGS.conv_hidden_num,
        batch_size=FLAGS.batch_size,
        identities=FLAGS.identities,
        inception_graph=FLAGS.inception_graph,
    )
    rgb, l1 = made["scores"]["rgb"], made["l1"]
    print(
        f"\nDone in {made['seconds']:.0f} s.\n"
        f"  look at:      {made['summary']} (source | target pose | G1 | G2 | target)\n"
        f"  L1 to target: G1 {l1['G1']:.2f}, G2 {l1['G2']:.2f} (0..255, mean over the test "
        "pairs: seen people, new poses)\n"
        f"  samples:      {made['model_dir']}/<step>_G2.png, TensorBoard: "
        f"tensorboard --logdir {made['model_dir']}\n"
        f"  test results: {made['result_dir']} ({made['num_test_results']} pairs), "
        f"SSIM {rgb['ssim_mean']:.3f}, PSNR {rgb['psnr_mean']:.2f}\n"
        f"  SavedModel:   {made['export_dir']}\n"
        "Full-size runs: ./run_market_train.sh MODEL_DIR, then ./run_market_test.sh MODEL_DIR "
        "(see README)."
    )
    return 0


def run():
    """``python -m pg2_tf.demo``: :func:`main` with one-line errors (exit status 2)."""
    cli.console_entry(define_flags, main)


if __name__ == "__main__":
    run()
