"""``python -m pg2_tf.demo``: the whole PG2 job on built-in synthetic data, in minutes on a CPU.

1. builds a small synthetic Market-style dataset in the original raw layout and converts it to
   tf-records with the project's converter (``data_prep``);
2. trains both stages of a tiny model (G1, then G2 + D) through the same loop as ``pg2_tf.main``;
3. runs test mode (the original's ``test_result`` folders), scores it (SSIM, PSNR, L1, L2, and
   IS/FID when ``--inception_graph`` is given) and exports a SavedModel;
4. writes ``<out>/demo_summary.png``: rows of source image, target pose, G1, G2, target.

Everything lands in ``--out`` (default ``demo_out``); the equivalent full-size commands are
printed at the end.
"""

import dataclasses
import os
import time

import numpy as np
from absl import flags, logging

from pg2_tf import cli

FLAGS = flags.FLAGS


def define_flags() -> None:
    """The demo's own flags (defined only by its entry point)."""
    flags.DEFINE_string("out", "demo_out", "Folder for the data, model, results and export.")
    flags.DEFINE_integer("steps", 400, "Training steps in all (half stage 1, half stage 2).")
    flags.DEFINE_integer("conv_hidden_num", 16, "Tiny model width (the paper's is 128).")
    flags.DEFINE_integer("batch_size", 8, "Training batch size.")
    flags.DEFINE_integer("identities", 8, "Synthetic people in the training set.")
    flags.DEFINE_string("inception_graph", None, "inception-2015-12-05.tgz for IS/FID (optional).")


def _summary_picture(result_dir: str, count: int, path: str) -> None:
    from PIL import Image

    from pg2_tf import images

    rows = []
    for index in range(count):
        row = [
            np.asarray(
                Image.open(os.path.join(result_dir, folder, f"{index:05d}.png")).convert("RGB")
            )
            for folder in ("x", "pose_target", "G1", "G", "x_target")
        ]
        rows.extend(row)
    images.save_png(images.grid(np.stack(rows), columns=5), path)


def run_demo(out, steps=400, conv_hidden_num=16, batch_size=8, identities=8, inception_graph=None):
    """Runs the demo into folder ``out``; returns a dict of what it made (paths and scores)."""
    from data_prep.synthetic import make_synthetic_records
    from pg2_tf import evaluate, export, score, train

    started = time.monotonic()
    data_root = os.path.join(out, "data")
    print("1/4 building synthetic records ...", flush=True)
    train_path = make_synthetic_records(data_root, "market", "train", identities=identities, seed=0)
    test_path = make_synthetic_records(data_root, "market", "test", identities=2, seed=1)

    model_dir = os.path.join(out, "model")
    config = train.TrainConfig(
        model=1,
        img_H=128,
        img_W=64,
        conv_hidden_num=conv_hidden_num,
        z_num=64,
        d_dim=16,
        batch_size=batch_size,
        max_step=steps,
        stage1_steps=steps // 2,
        g_lr=2e-4,
        d_lr=2e-5,
        log_step=max(steps // 12, 1),
        num_log_samples=8,
        model_dir=model_dir,
        data_path=str(train_path),
        split="train",
        random_seed=123,
    )
    print(f"2/4 training {steps} steps (stage 2 from step {config.stage1_steps}) ...", flush=True)
    train.save_params(dataclasses.asdict(config), model_dir)
    result = train.train(config)

    print("3/4 test mode and scores ...", flush=True)
    count = evaluate.write_test_results(
        result.checkpoint,
        str(test_path),
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
        numbers = score.score_result_dir(result_dir, mask=mask, inception_graph=inception_graph)
        score.write_score_file(result_dir, numbers, mask=mask)
        scores["mask" if mask else "rgb"] = numbers

    print("4/4 exporting a SavedModel ...", flush=True)
    export_dir = export.export_from_checkpoint(
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
        "last_losses": result.last_losses,
        "seconds": time.monotonic() - started,
    }


def main(argv):
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
    rgb = made["scores"]["rgb"]
    print(
        f"\nDone in {made['seconds']:.0f} s.\n"
        f"  look at:      {made['summary']} (source | target pose | G1 | G2 | target)\n"
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
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    define_flags()
    cli.run_main(main)


if __name__ == "__main__":
    run()
