"""Does the fused stage-2 schedule train as well as the original one? Loss curves and test scores.

    nice -n 10 python -m benchmarks.schedules --seeds 0,1,2 --stage2_samples 12800 \
        --json benchmarks/results/schedules.json

For each seed: the demo's synthetic Market-style data (:mod:`pg2_tf.demo`: seen people in new
poses, one background per person), a tiny model (``--hidden``), stage 1 (G1) trained once; then
stage 2 twice from that same point (same G1, same initial G2 and D, same batches in the same
order), once per schedule, until both have seen ``--stage2_samples`` training pairs: the
``original`` schedule takes two batches per step (G2's update, then D's), so it makes half as
many steps as ``fused`` for the same samples. Every ``--eval_every`` samples both are scored on
the test pairs (G2 output against the target: mean L1 distance 0..255 and SSIM, as
``pg2_tf.scoring.metrics.pair_scores``). The JSON holds, per seed and schedule, the loss curves
(``g_loss2``, ``d_loss``, ``L1Loss2`` averaged over windows of ``--curve_window`` samples) and the
scores at each evaluation, plus a summary (mean and std over seeds at the end) and the CPU flags.
"""

import argparse
import json
import os
import sys
import tempfile
import time

from pg2_tf.core import atomic

SCHEDULES = ("original", "fused")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--hidden", type=int, default=8, help="conv_hidden_num")
    parser.add_argument("--d_dim", type=int, default=8)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--stage1_steps", type=int, default=400)
    parser.add_argument("--stage1_lr", type=float, default=5e-4, help="G1's rate (the demo's)")
    parser.add_argument("--g_lr", type=float, default=2e-4, help="G2's rate in stage 2")
    parser.add_argument("--d_lr", type=float, default=2e-4, help="D's rate in stage 2")
    parser.add_argument("--stage2_samples", type=int, default=12800, help="pairs seen in stage 2")
    parser.add_argument("--eval_every", type=int, default=3200, help="samples between scorings")
    parser.add_argument("--curve_window", type=int, default=640, help="samples per curve point")
    parser.add_argument("--identities", type=int, default=8, help="synthetic training people")
    parser.add_argument("--data_dir", default=os.path.join(tempfile.gettempdir(), "pg2_schedules"))
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args(argv)
    args.seeds = [int(s) for s in args.seeds.split(",") if s]
    if args.stage2_samples % (2 * args.batch) or args.eval_every % (2 * args.batch):
        parser.error("--stage2_samples and --eval_every must be multiples of 2 x --batch")
    return args


def make_data(args):
    """(train records folder, test records folder): the demo's synthetic data."""
    from data_prep.synthetic import make_synthetic_records

    people = dict(seen_people=True, shared_background=True)
    train_path = make_synthetic_records(
        args.data_dir, "market", "train", identities=args.identities, seed=0, **people
    )
    test_path = make_synthetic_records(
        args.data_dir, "market", "test", identities=2, seed=0, **people
    )
    return str(train_path), str(test_path)


def _config(args, schedule, seed, g_lr, stage1_steps):
    from pg2_tf.core.configs import TrainConfig

    return TrainConfig(
        conv_hidden_num=args.hidden,
        d_dim=args.d_dim,
        batch_size=args.batch,
        stage1_steps=stage1_steps,
        g_lr=g_lr,
        d_lr=args.d_lr,
        random_seed=seed,
        stage2_schedule=schedule,
        progress_bar=False,
    )


def test_scores(trainer, test_batches) -> dict:
    """Mean L1 (0..255) and SSIM of G2's output against the targets, over the test pairs."""
    import numpy as np

    from pg2_tf.core import images
    from pg2_tf.scoring import metrics

    generated, targets = [], []
    for batch in test_batches:
        _, g2_output, _ = trainer.compiled_generate(batch["x"], batch["pose_target"])
        generated.extend(images.to_uint8_image(g2_output.numpy()))
        targets.extend(images.input_to_uint8(batch["x_target"].numpy()))
    scores = metrics.pair_scores(generated, targets)
    return {
        "l1": scores["l1_mean"],
        "ssim": scores["ssim_mean"],
        "pairs": int(np.shape(generated)[0]),
    }


def run_seed(args, seed, train_path, test_path) -> dict:
    import keras
    import numpy as np

    from pg2_tf.records import reader
    from pg2_tf.training import steps

    def dataset():
        return reader.make_dataset(
            train_path,
            "train",
            kind="market",
            img_H=128,
            img_W=64,
            batch_size=args.batch,
            is_train=True,
            seed=seed,
        )

    test_batches = list(
        reader.make_dataset(
            test_path, "test", kind="market", img_H=128, img_W=64, batch_size=8, is_train=False
        )
    )
    keras.utils.set_random_seed(seed)
    stage1 = steps.Trainer(_config(args, "fused", seed, args.stage1_lr, args.stage1_steps))
    started = time.monotonic()
    batches = iter(dataset())
    for step in range(args.stage1_steps):
        stage1.train_step(next(batches), step)
    start_weights = [m.get_weights() for m in (stage1.g1, stage1.g2, stage1.d)]
    result = {
        "stage1_seconds": time.monotonic() - started,
        "after_stage1": test_scores(stage1, test_batches),
    }
    print(f"seed {seed}: stage 1 done, test {result['after_stage1']}", flush=True)
    for schedule in SCHEDULES:
        trainer = steps.Trainer(_config(args, schedule, seed, args.g_lr, 0))
        for model, weights in zip((trainer.g1, trainer.g2, trainer.d), start_weights, strict=True):
            model.set_weights(weights)
        batches = iter(dataset())  # the same batches, in the same order, for both schedules
        per_step = trainer.batches_per_step(0)
        curve, window, evaluations = [], {}, [{"samples": 0, **result["after_stage1"]}]
        seen, step, started = 0, 0, time.monotonic()
        while seen < args.stage2_samples:
            batch = next(batches)
            d_batch = next(batches) if per_step == 2 else None
            losses = trainer.train_step(batch, step, d_batch=d_batch)
            step += 1
            seen += per_step * args.batch
            for name in ("g_loss2", "d_loss", "L1Loss2"):
                window.setdefault(name, []).append(float(losses[name]))
            if seen % args.curve_window == 0:
                curve.append({"samples": seen, **{k: float(np.mean(v)) for k, v in window.items()}})
                window = {}
            if seen % args.eval_every == 0:
                evaluations.append({"samples": seen, **test_scores(trainer, test_batches)})
                print(f"seed {seed} {schedule}: {evaluations[-1]}", flush=True)
        result[schedule] = {
            "steps": step,
            "seconds": time.monotonic() - started,
            "curve": curve,
            "test": evaluations,
        }
    return result


def summarise(runs) -> dict:
    """Mean and std over seeds of each schedule's final test scores and final-window losses."""
    import numpy as np

    summary = {}
    for schedule in SCHEDULES:
        finals = [run[schedule]["test"][-1] for run in runs]
        last = [run[schedule]["curve"][-1] for run in runs]
        row = {"steps": runs[0][schedule]["steps"]}
        for name, values in (
            ("test_l1", [f["l1"] for f in finals]),
            ("test_ssim", [f["ssim"] for f in finals]),
            ("g_loss2", [c["g_loss2"] for c in last]),
            ("d_loss", [c["d_loss"] for c in last]),
            ("L1Loss2", [c["L1Loss2"] for c in last]),
            ("seconds", [run[schedule]["seconds"] for run in runs]),
        ):
            row[name] = {"mean": float(np.mean(values)), "std": float(np.std(values))}
        summary[schedule] = row
    return summary


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from benchmarks.measure import cpu_simd_flags

    results = {
        "args": {k: v for k, v in vars(args).items() if k != "json"},
        "cpu_flags": cpu_simd_flags(),
        "load_average_before": os.getloadavg(),
        "seeds": {},
    }
    print(f"CPU flags: {' '.join(results['cpu_flags'])}; load {os.getloadavg()}", flush=True)
    train_path, test_path = make_data(args)
    runs = []
    for seed in args.seeds:
        runs.append(run_seed(args, seed, train_path, test_path))
        results["seeds"][str(seed)] = runs[-1]
        if args.json:  # after each seed, so a long run leaves its partial results
            results["summary"] = summarise(runs)
            _write_json(results, args.json)
    results["summary"] = summarise(runs)
    results["load_average_after"] = os.getloadavg()
    print(json.dumps(results["summary"], indent=2))
    if args.json:
        _write_json(results, args.json)
        print(f"wrote {args.json}")
    return 0


def _write_json(results, path):
    atomic.write_text(path, json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.exit(main())
