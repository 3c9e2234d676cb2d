"""PG2 benchmark: stage-1 step, stage-2 step, inference batch, input pipeline, peak memory.

    python -m benchmarks.run --config market --hidden 32 --batch 16 --steps 10 [--xla]
        [--mixed_precision] [--test_batch N] [--json results.json] [--original]
        [--same_run_original] [--profile TOP] [--stage2_schedule original|fused]

Model timings use one fixed in-memory batch (random tensors in the data's ranges), so the input
pipeline is not part of them; it is measured on its own afterwards (random records written by
:mod:`benchmarks.input_pipeline`, read by ``pg2_tf.records.reader.make_dataset`` in training mode).

Each timed call is one ``Trainer.train_step`` (stage 1: G1 update; stage 2 under
``--stage2_schedule=original``, the default: G2's update on one batch, then D's on a second,
each with its own G1, G2 and D forward pass, as the original graph's two session runs; under
``fused``: G1 forward once, G2 and D updates from one forward pass) or one compiled G1+G2
forward (inference), followed by
fetching its losses/images, i.e. a synchronised step. The table reports the median and the
minimum over ``--steps`` calls after ``--warmup`` untimed ones, the share of the CPU the
process got while timing (process CPU seconds / wall seconds; about the number of cores when
nothing else runs), GFLOP per call and GFLOP/s (convolutions and matmuls counted in the traced
step, see :func:`flops.count_step_flops`), the share of this machine's limit that is (a large conv
through the same kernels, timed in the same rounds, see :func:`measure.limit_calls`), and the peak
resident memory of each phase (VmHWM, reset between phases where the kernel allows it).
``--profile`` prints an op-level table of each phase (:func:`measure.profile_ops`). ``--original``
adds the figures of the original TF1 graph that the issue gives for this configuration
(measured on another day; see docs/performance.md) and our ratios to them, plus
``--same_run_original`` builds :mod:`benchmarks.original_graph` (the original graph rebuilt in
tf.compat.v1, checked against the original's outputs) in the same process and times its steps
alternately with ours.

``--flops_table`` prints the FLOP count of the full-size models (both datasets, both stages) and
exits; docs/performance.md derives the H100 estimate from it.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time

from benchmarks import flops, measure

# Figures of the ORIGINAL TF1 graph (tf.compat.v1 + tf-slim, 2 cores, TF 2.21 CPU) given in the
# project's issue 7: median seconds per stage-1 step, stage-2 step, inference batch.
ISSUE_ORIGINAL_SECONDS = {
    ("market", 32, 16): {"stage1": 0.563, "stage2": 1.278, "inference": 0.222},
    ("market", 128, 4): {"stage1": 2.17, "stage2": 2.18, "inference": 0.78},
    ("df", 32, 1): {"stage1": 0.295, "stage2": 0.783, "inference": 0.116},
}
CONFIGS = {
    # model number, img_H, img_W, records kind
    "market": (1, 128, 64, "market"),
    "df": (11, 256, 256, "deepfashion"),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", choices=sorted(CONFIGS), default="market")
    parser.add_argument("--hidden", type=int, default=32, help="conv_hidden_num (full size: 128)")
    parser.add_argument("--batch", type=int, default=16, help="training batch (global)")
    parser.add_argument("--test_batch", type=int, default=None, help="default: --batch")
    parser.add_argument("--steps", type=int, default=10, help="timed calls per measure")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls first (tracing)")
    parser.add_argument("--xla", action="store_true", help="jit_compile the steps")
    parser.add_argument(
        "--stage2_schedule",
        choices=("original", "fused"),
        default="original",
        help="as main's flag: original = G2's update on one batch, then D's on another (two "
        "batches per step, as the original graph's two session runs); fused = one pass",
    )
    parser.add_argument(
        "--mixed_precision",
        action="store_true",
        help="mixed_float16 with a GPU, mixed_bfloat16 without (as --mixed_precision of main)",
    )
    parser.add_argument(
        "--phases",
        default="stage1,stage2,inference,pipeline",
        help="comma-separated subset of stage1,stage2,inference,pipeline",
    )
    parser.add_argument("--pipeline_seconds", type=float, default=8.0)
    parser.add_argument(
        "--inter_op_threads",
        type=int,
        default=0,
        help="as main's flag: 0 for TensorFlow's default",
    )
    parser.add_argument("--original", action="store_true", help="compare with the issue's figures")
    parser.add_argument(
        "--same_run_original",
        action="store_true",
        help="also time the original TF1 graph (benchmarks.original_graph) in a subprocess",
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="TOP",
        help="after timing, profile --steps calls of each phase (and of the original graph's, "
        "with --same_run_original) and print the TOP op types by time",
    )
    parser.add_argument(
        "--profile_dir", default=None, help="keep the profiler's trace here (TensorBoard)"
    )
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--label", default="", help="free text stored in the JSON")
    parser.add_argument("--flops_table", action="store_true", help="full-size FLOPs, then exit")
    args = parser.parse_args(argv)
    args.test_batch = args.test_batch or args.batch
    args.phases = [p for p in args.phases.split(",") if p]
    unknown = set(args.phases) - {"stage1", "stage2", "inference", "pipeline"}
    if unknown:
        parser.error(f"unknown phases {sorted(unknown)}")
    return args


def flops_table():
    """FLOPs of the full-size models at the original's batch sizes (Market 16, DeepFashion 1)."""
    from pg2_tf.core.configs import TrainConfig
    from pg2_tf.training import steps

    rows = []
    for name, batch in (("market", 16), ("df", 1)):
        model_number, img_H, img_W, _ = CONFIGS[name]
        per_sample = flops.forward_flops_per_sample(model_number, img_H, img_W, 128)
        config = TrainConfig(
            model=model_number, img_H=img_H, img_W=img_W, conv_hidden_num=128, batch_size=batch
        )
        step = flops.count_step_flops(steps.Trainer(config), batch)
        rows.append({"config": name, "batch": batch, **per_sample, **step})
        print(
            f"{name} hidden 128 batch {batch}: forward GFLOP/sample G1 {per_sample['G1']:.1f}, "
            f"G2 {per_sample['G2']:.1f}, D {per_sample['D']:.2f}; parameters "
            f"{per_sample['parameters_M']:.1f} M; GFLOP per stage-1 step {step['stage1']:.0f}, "
            f"stage-2 step {step['stage2']:.0f}, inference batch {step['inference']:.0f}"
        )
    return rows


def measure_model(args, results):
    import keras
    import tensorflow as tf

    from pg2_tf.core.configs import TrainConfig
    from pg2_tf.training.steps import Trainer

    model_number, img_H, img_W, _ = CONFIGS[args.config]
    config = TrainConfig(
        model=model_number,
        img_H=img_H,
        img_W=img_W,
        conv_hidden_num=args.hidden,
        batch_size=args.batch,
        stage1_steps=1,  # step 0 is a stage-1 step, any later step a stage-2 step
        xla=args.xla,
        mixed_precision=args.mixed_precision,
        stage2_schedule=args.stage2_schedule,
        progress_bar=False,
    )
    keras.utils.set_random_seed(0)
    measure.reset_peak_rss()
    trainer = Trainer(config)
    results["dtype_policy"] = trainer.dtype_policy
    results["parameters_M"] = (
        sum(
            int(v.shape.num_elements())
            for m in (trainer.g1, trainer.g2, trainer.d)
            for v in m.weights
        )
        / 1e6
    )
    gflop = flops.count_step_flops(trainer, args.batch)
    if args.test_batch != args.batch:
        gflop["inference"] = flops.count_step_flops(trainer, args.test_batch)["inference"]
    results["gflop_per_call"] = gflop
    arrays = measure.random_arrays(args.batch, img_H, img_W)
    test_arrays = measure.random_arrays(args.test_batch, img_H, img_W, seed=1)
    batch = {key: tf.constant(value) for key, value in arrays.items()}
    # The original schedule's D update takes the next batch (fused ignores it).
    d_batch = {
        key: tf.constant(value)
        for key, value in measure.random_arrays(args.batch, img_H, img_W, 2).items()
    }
    steps = {
        "stage1": lambda: measure.fetch(trainer.train_step(batch, step=0)),
        "stage2": lambda: measure.fetch(trainer.train_step(batch, step=1, d_batch=d_batch)),
    }
    test_batch = {key: tf.constant(value) for key, value in test_arrays.items()}
    steps["inference"] = lambda: measure.fetch(
        trainer.compiled_generate(test_batch["x"], test_batch["pose_target"])
    )
    original = None
    if args.same_run_original:
        from benchmarks import original_graph

        original = original_graph.OriginalGraph(
            model_number, args.hidden, arrays, test_arrays, results["inter_op_threads"]
        )
        original_calls = {
            "stage1": original.stage1_step,
            "stage2": original.stage2_step,
            "inference": original.inference,
        }
        results["original_graph_same_run"] = {
            "d_data_format": original.data_format,
            "gflop_per_call": flops.original_graph_flops(original),
            "phases": {},
        }
    compute_dtype = keras.mixed_precision.Policy(trainer.dtype_policy).compute_dtype
    limits = measure.limit_calls(compute_dtype)
    results["limit"] = {"conv": measure.LIMIT_CONV, "dtype": compute_dtype, "phases": {}}
    for phase in ("stage1", "stage2", "inference"):
        if phase not in args.phases:
            continue
        measure.reset_peak_rss()
        # Ours, the original graph's (if any) and the limit's calls in turn, in the same rounds.
        limit_kind = "forward" if phase == "inference" else "training"
        limit_call, limit_gflop = limits[limit_kind]
        calls = [steps[phase]] + ([original_calls[phase]] if original else []) + [limit_call]
        timings = measure.time_interleaved(calls, args.steps, args.warmup)
        timing, limit_timing = timings[0], timings[-1]
        if original is not None:
            original_timing = timings[1]
            original_timing["gflop_per_s"] = (
                results["original_graph_same_run"]["gflop_per_call"][phase]
                / original_timing["median_s"]
            )
            # Each round's ratio (ours / the original's call next to it), then their median: on a
            # busy machine a round's two calls share its load better than two medians do.
            original_timing["port_ratio_median_of_rounds"] = float(
                statistics.median(
                    ours / theirs
                    for ours, theirs in zip(
                        timing["times_s"], original_timing["times_s"], strict=True
                    )
                )
            )
            results["original_graph_same_run"]["phases"][phase] = original_timing
            print(
                f"  original graph {phase}: median {original_timing['median_s']:.3f} s; "
                f"ours / original, median over rounds: "
                f"{original_timing['port_ratio_median_of_rounds']:.2f}",
                flush=True,
            )
        limit_timing["kind"] = limit_kind
        limit_timing["gflop_per_s"] = limit_gflop / limit_timing["median_s"]
        limit_timing["best_gflop_per_s"] = limit_gflop / limit_timing["min_s"]
        results["limit"]["phases"][phase] = limit_timing
        timing["peak_rss_mib"] = measure.peak_rss_mib()
        timing["gflop_per_s"] = gflop[phase] / timing["median_s"]
        # Medians of the same rounds; and the fastest call of each (the least disturbed by
        # other processes on a shared machine).
        timing["share_of_limit"] = timing["gflop_per_s"] / limit_timing["gflop_per_s"]
        timing["best_share_of_limit"] = (
            gflop[phase] / timing["min_s"] / limit_timing["best_gflop_per_s"]
        )
        timing["load_average"] = os.getloadavg()
        results["phases"][phase] = timing
        if args.profile:
            results.setdefault("profile", {})[phase] = _profile_phase(
                args, phase, steps[phase], original_calls[phase] if original else None
            )
        print(
            f"  {phase}: median {timing['median_s']:.3f} s, min {timing['min_s']:.3f} s, "
            f"CPU share {timing['cpu_share']:.2f}, peak RSS {timing['peak_rss_mib']:.0f} MiB, "
            f"{timing['gflop_per_s']:.0f} GFLOP/s = {timing['share_of_limit']:.2f} of the "
            f"{limit_timing['gflop_per_s']:.0f} GFLOP/s of a {compute_dtype} conv ({limit_kind}) "
            f"in the same rounds (fastest calls: {timing['best_share_of_limit']:.2f} of "
            f"{limit_timing['best_gflop_per_s']:.0f}); load average "
            f"{timing['load_average'][0]:.1f}",
            flush=True,
        )


def _profile_phase(args, phase, call, original_call) -> dict:
    profiles = {}
    for name, fn in (("port", call), ("original_graph", original_call)):
        if fn is None:
            continue
        trace_dir = args.profile_dir and os.path.join(args.profile_dir, f"{phase}_{name}")
        rows = measure.profile_ops(fn, args.steps, trace_dir)
        profiles[name] = rows
        print(f"  profile of the {name.replace('_', ' ')}'s {phase}:", flush=True)
        print(measure.format_profile(rows, args.profile), flush=True)
    return profiles


def measure_pipeline(args, results):
    from benchmarks import input_pipeline
    from pg2_tf.records import reader

    _, img_H, img_W, kind = CONFIGS[args.config]
    num_pairs = input_pipeline.DEFAULT_NUM_PAIRS[kind]
    folder = os.path.join(tempfile.gettempdir(), f"pg2_input_pipeline_{kind}_{num_pairs}")
    if not os.path.exists(os.path.join(folder, "pn_pairs_num_train.p")):
        print(f"  writing {num_pairs} random pair records to {folder} ...", flush=True)
        input_pipeline.write_records(folder, kind, "train", num_pairs)
    dataset = reader.make_dataset(
        folder, "train", kind=kind, img_H=img_H, img_W=img_W, batch_size=args.batch, is_train=True
    )
    measure.reset_peak_rss()
    wall, cpu = time.perf_counter(), time.process_time()
    rate = input_pipeline.measure_examples_per_second(dataset, args.pipeline_seconds)
    share = (time.process_time() - cpu) / (time.perf_counter() - wall)
    timing = {"examples_per_s": rate, "cpu_share": share, "peak_rss_mib": measure.peak_rss_mib()}
    stage2 = results["phases"].get("stage2")
    if stage2:  # two batches per stage-2 step under the original schedule, else one
        per_step = 2 if args.stage2_schedule == "original" else 1
        timing["model_needs_examples_per_s"] = per_step * args.batch / stage2["median_s"]
    results["phases"]["pipeline"] = timing
    print(f"  pipeline: {rate:.0f} examples/s, CPU share {share:.2f}", flush=True)


def format_table(results) -> str:
    """The results as a Markdown table: each phase's time, its GFLOP/s and their share of the
    limit (a large conv timed in the same rounds), and ratios against the issue's figures and
    the original graph timed in the same run, if any."""
    original = results.get("issue_original_s") or {}
    same_run = results.get("original_graph_same_run", {}).get("phases", {})
    limits = results.get("limit", {}).get("phases", {})
    header = (
        "| measure | median | min | CPU share | GFLOP per call | GFLOP/s | limit GFLOP/s | "
        "share of limit | fastest calls' share | peak RSS MiB |"
    )
    columns = 10
    if original:
        header += " original (issue) | ratio |"
        columns += 2
    if same_run:
        header += " original graph (same run) | its GFLOP/s | ratio | ratio, median of rounds |"
        columns += 4
    lines = [header, "|" + "---|" * columns]
    names = {
        "stage1": "stage-1 step (s)",
        "stage2": "stage-2 step (s)",
        "inference": "inference batch (s)",
    }
    for phase, label in names.items():
        timing = results["phases"].get(phase)
        if not timing:
            continue
        limit = limits.get(phase, {}).get("gflop_per_s")
        row = (
            f"| {label} | {timing['median_s']:.3f} | {timing['min_s']:.3f} | "
            f"{timing['cpu_share']:.2f} | {results['gflop_per_call'][phase]:.1f} | "
            f"{timing['gflop_per_s']:.0f} | {f'{limit:.0f}' if limit else ''} | "
            f"{timing.get('share_of_limit', 0):.2f} | {timing.get('best_share_of_limit', 0):.2f} | "
            f"{timing['peak_rss_mib']:.0f} |"
        )
        if original:
            row += f" {original[phase]:.3f} | {timing['median_s'] / original[phase]:.2f} |"
        if same_run:
            if phase in same_run:
                theirs = same_run[phase]
                row += (
                    f" {theirs['median_s']:.3f} | {theirs['gflop_per_s']:.0f} | "
                    f"{timing['median_s'] / theirs['median_s']:.2f} | "
                    f"{theirs['port_ratio_median_of_rounds']:.2f} |"
                )
            else:
                row += " | | | |"
        lines.append(row)
    pipeline = results["phases"].get("pipeline")
    if pipeline:
        needs = pipeline.get("model_needs_examples_per_s")
        note = f" (stage-2 step consumes {needs:.0f})" if needs else ""
        cells = [
            "input pipeline (examples/s)",
            f"{pipeline['examples_per_s']:.0f}{note}",
            "",
            f"{pipeline['cpu_share']:.2f}",
            *[""] * 5,
            f"{pipeline['peak_rss_mib']:.0f}",
        ]
        lines.append("| " + " | ".join(cells + [""] * (columns - len(cells))) + " |")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from pg2_tf.training import precision

    inter_op = precision.configure_threads(args.inter_op_threads)
    if args.flops_table:
        flops_table()
        return 0
    import tensorflow as tf

    results = {
        "config": args.config,
        "hidden": args.hidden,
        "batch": args.batch,
        "test_batch": args.test_batch,
        "steps": args.steps,
        "xla": args.xla,
        "mixed_precision": args.mixed_precision,
        "stage2_schedule": args.stage2_schedule,
        "cpu_flags": measure.cpu_simd_flags(),
        "inter_op_threads": inter_op,
        "label": args.label,
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "tensorflow": tf.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
        "load_average_before": os.getloadavg(),
        "phases": {},
    }
    print(
        f"{args.config} hidden {args.hidden} batch {args.batch} (test batch {args.test_batch}), "
        f"xla={args.xla}, mixed_precision={args.mixed_precision}, stage-2 schedule "
        f"{args.stage2_schedule}, inter-op threads {inter_op or 'default'}, load average "
        f"{os.getloadavg()[0]:.1f}; CPU flags: {' '.join(results['cpu_flags'])}",
        flush=True,
    )
    if {"stage1", "stage2", "inference"} & set(args.phases):
        measure_model(args, results)
    if "pipeline" in args.phases:
        measure_pipeline(args, results)
    if args.original:
        results["issue_original_s"] = ISSUE_ORIGINAL_SECONDS.get(
            (args.config, args.hidden, args.batch)
        )
    results["load_average_after"] = os.getloadavg()
    print(format_table(results))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
