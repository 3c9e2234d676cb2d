"""From your own footage to a model: records, a recipe measured here, training, scores, pictures.

    python -m benchmarks.own_footage --video=PATH [--video=...] --out=DIR --minutes=M
        [--every=5] [--min_track=3] [--test_share=0.25] [--conv_hidden_num=0] [--batch_size=0]
        [--animation_frames=40] [--json=PATH]

1. data: :func:`data_prep.from_video.convert` twice over the same tracks (``DIR/data/work``):
   the first three quarters of each video are the train split, the last quarter (people seen
   then) the test split; a track on both sides is one person in both (counted in the report);
2. recipe: :func:`benchmarks.own_footage_recipe.make_recipe` (width, batch, mixed precision,
   stage split, rates), measured on this machine for ``--minutes`` of training;
3. training (:func:`pg2_tf.training.loop.train`, what ``pg2_tf.main`` runs) in segments that end
   after 15, 30 and 60 minutes (those below ``--minutes``, and ``--minutes``), after a first
   unscored tenth of the budget (budgets of 5 minutes or more) whose real step rate sizes the
   rest: each segment's steps are predicted from the step times measured so far;
4. then test mode on the test split with each milestone's checkpoint, and the scores of the
   model and of the two baselines (*copy the source image*, *G1 alone*) under the ``pg2``
   protocol;
5. an export (``pg2-export``) and ``pg2-animate`` of a held-out person in another's poses;
6. ``DIR/summary.png`` (source | target pose | G1 | G2 | target), ``DIR/train_crops.png``
   (32 training crops with their skeletons) and ``DIR/report.json``.

Resumable after ``kill -9``: every step writes its result whole (``pg2_tf.core.atomic``) and a
re-run skips the steps done; training resumes from its newest checkpoint (pg2_tf's own
resuming). ``--conv_hidden_num`` and ``--batch_size`` fix the width and batch (0: measured).
"""

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

from benchmarks import measure, own_footage_recipe, own_footage_report
from pg2_tf.core import atomic

MILESTONES = (15, 30, 60)  # minutes of training after which the model is scored
# The first segment of a budget of CALIBRATE_FROM minutes or more is this share of it, not
# scored: its real step rate (the machine's load now, the input pipeline) sizes the next ones.
CALIBRATE_FROM, CALIBRATION_SHARE = 5.0, 0.1
TRAIN, TEST = "Market_footage_train_data", "Market_footage_test_data"
REPOSITORY = Path(__file__).resolve().parent.parent


class Interrupted(Exception):
    """Training stopped by a signal (its checkpoint written): the run stops, a re-run resumes."""


def parse_args(argv=None) -> argparse.Namespace:
    """The command line's flags (the module docstring).

    Args:
        argv: the arguments after the program name, or None for ``sys.argv[1:]``.

    Returns:
        The parsed flags.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--video", action="append", type=Path, required=True, help="a video; repeat for several"
    )
    parser.add_argument("--out", type=Path, required=True, help="folder of everything made")
    parser.add_argument("--minutes", type=float, required=True, help="training budget, minutes")
    parser.add_argument("--every", type=int, default=5, help="use every N-th frame (default 5)")
    parser.add_argument("--min_track", type=int, default=3, help="drop tracks with fewer crops")
    parser.add_argument(
        "--test_share", type=float, default=0.25, help="last share of each video tested"
    )
    parser.add_argument("--conv_hidden_num", type=int, default=0, help="fixed width (0: measure)")
    parser.add_argument("--batch_size", type=int, default=0, help="fixed batch (0: measure)")
    parser.add_argument("--animation_frames", type=int, default=40, help="frames of the animation")
    parser.add_argument("--workers", type=int, default=None, help="converter processes")
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    return parser.parse_args(argv)


def _done(path: Path):
    return json.loads(path.read_text()) if path.exists() else None


def _save(path: Path, value) -> None:
    atomic.write_text(path, json.dumps(value, indent=1, default=str))


def milestones(minutes: float) -> list[float]:
    """The minutes of training after which the model is scored.

    Args:
        minutes: the training budget.

    Returns:
        Those of :data:`MILESTONES` below ``minutes``, then ``minutes``; ascending.
    """
    return [m for m in MILESTONES if m < minutes] + [minutes]


def make_data(args, out: Path) -> dict:
    """Step 1: the train and test records (see the module docstring); done once."""
    from data_prep import from_video

    data = out / "data"
    boundary = 1.0 - args.test_share
    summaries = {}
    for split, folder, window in (
        ("train", TRAIN, (0.0, boundary)),
        ("test", TEST, (boundary, 1.0)),
    ):
        summary_path = data / folder / f"summary_{split}.json"
        if not summary_path.exists():
            print(
                f"    from_video --split={split} --window={window[0]:g}:{window[1]:g}", flush=True
            )
            from_video.convert(
                args.video, data / folder, "market", split, every=args.every,
                min_track=args.min_track, workers=args.workers, window=window,
                work=data / "work", log=lambda line: print("    " + line, flush=True),
            )  # fmt: skip
        summaries[split] = json.loads(summary_path.read_text())
    return summaries


def _train_config(recipe: dict, out: Path, max_step: int):
    from pg2_tf.core.configs import TrainConfig

    flags = recipe["flags"]
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(
        **{key: value for key, value in flags.items() if key in fields and key != "max_step"},
        max_step=max_step,
        log_step=max(flags["max_step"] // 20, 1),
        save_step=max(flags["max_step"] // 10, 1),
        num_log_samples=8,
        max_to_keep=100,  # the milestones' checkpoints are scored after the whole run
        model_dir=str(out / "model"),
        data_path=str(out / "data" / TRAIN),
        split="train",
    )


def train_segments(out: Path, recipe: dict, minutes: float) -> list[dict]:
    """Step 3: training in segments ending at the milestones; each segment recorded whole.

    Returns:
        ``[{"minutes", "target_step", "reached_step", "seconds", "checkpoint"}]``, one per
        milestone, from ``DIR/training.json``.
    """
    from pg2_tf.training import loop

    path = out / "training.json"
    segments = _done(path) or []
    flags = recipe["flags"]
    measured = next(
        m for m in recipe["measured"]
        if (m["conv_hidden_num"], m["batch_size"]) == (flags["conv_hidden_num"], flags["batch_size"])
    )  # fmt: skip
    stage1_s, stage2_s = measured["stage1_s"], measured["stage2_s"]
    plan = milestones(minutes)
    if minutes >= CALIBRATE_FROM:
        plan = [round(minutes * CALIBRATION_SHARE, 2)] + plan
    for index, milestone in enumerate(plan):
        if index < len(segments) and "reached_step" in segments[index]:
            continue
        finished = [s for s in segments if "reached_step" in s]
        start = finished[-1]["reached_step"] if finished else 0
        if index == len(segments):  # its target is decided once, then kept for a re-run
            # Measured / predicted time of the segments done: the machine's load as it is now.
            predicted = sum(s["predicted_s"] for s in finished)
            factor = sum(s["seconds"] for s in finished) / predicted if predicted else 1.0
            previous = finished[-1]["minutes"] if finished else 0.0
            seconds = (milestone - previous) * 60 / factor
            steps = own_footage_recipe.steps_in(
                seconds, stage1_s, stage2_s, start, flags["stage1_steps"]
            )
            # predicted_s: the time the step times measured at the start give these steps.
            segments.append(
                {
                    "minutes": milestone,
                    "target_step": start + steps,
                    "predicted_s": seconds,
                    "scored": milestone in milestones(minutes),
                }
            )
            _save(path, segments)
        segment = segments[index]
        print(
            f"    segment to {segment['minutes']:g} min: steps {start} -> {segment['target_step']}",
            flush=True,
        )
        config = _train_config(recipe, out, segment["target_step"])
        began = time.monotonic()
        params = {**flags, "max_step": segment["target_step"]}
        result = loop.train(config, params=params)
        if result.stopped_by != "max_step":  # SIGINT/SIGTERM: checkpointed; a re-run resumes
            raise Interrupted(f"training stopped by {result.stopped_by} at step {result.step}")
        segment.update(
            reached_step=result.step,
            seconds=round(time.monotonic() - began, 1),
            checkpoint=result.checkpoint,
            load_average=[round(v, 2) for v in os.getloadavg()],
        )
        _save(path, segments)
    return segments


def evaluate(out: Path, recipe: dict, segment: dict) -> dict:
    """Step 4: test mode with a milestone's checkpoint, then the three variants' scores."""
    from pg2_tf.training import test_mode

    folder = out / "milestones" / f"{segment['minutes']:g}min"
    done = _done(folder / "scores.json")
    if done:
        return done
    flags = recipe["flags"]
    count = test_mode.write_test_results(
        segment["checkpoint"], str(out / "data" / TEST), str(folder), model=1,
        img_H=flags["img_H"], img_W=flags["img_W"], conv_hidden_num=flags["conv_hidden_num"],
        batch_size=16,
    )  # fmt: skip
    scores = own_footage_report.score_variants(folder / "test_result")
    result = {
        "minutes": segment["minutes"],
        "step": segment["reached_step"],
        "test_pairs": count,
        "scores": scores,
        "beats_copy_source": own_footage_report.beats_copy_source(scores),
    }
    _save(folder / "scores.json", result)
    return result


def export_and_animate(
    out: Path, recipe: dict, checkpoint: str, summaries: dict, frames: int
) -> dict:
    """Step 5: the SavedModel and ``pg2-animate`` of a held-out person; done once."""
    done = _done(out / "animation.json")
    if done:
        return done
    from pg2_tf.apps import animation
    from pg2_tf.serving import export_lib

    flags = recipe["flags"]
    export_dir = export_lib.export_from_checkpoint(
        checkpoint, str(out / "saved_model"), model=1, img_H=flags["img_H"],
        img_W=flags["img_W"], conv_hidden_num=flags["conv_hidden_num"],
    )  # fmt: skip
    work = out / "data" / "work"
    inputs = own_footage_report.animation_inputs(
        own_footage_report.kept_crops(work, summaries["test"]),
        own_footage_report.kept_crops(work, summaries["train"]),
        out / "animation",
        frames,
    )
    made = animation.animate(
        export_dir, inputs["image"], inputs["poses"], str(out / "animation.gif"), fps=5,
        side_by_side=True, precision="float32", log=lambda line: print("    " + line),
    )  # fmt: skip
    result = {**inputs, "export_dir": export_dir, "gif": made["out"], "frames": made["frames"]}
    _save(out / "animation.json", result)
    return result


def run(args) -> dict:
    """The whole path (the module docstring), into ``args.out``.

    Args:
        args: the parsed command line (:func:`parse_args`).

    Returns:
        The report (also written to ``DIR/report.json``).
    """
    from pg2_tf import demo

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    started = _done(out / "started.json") or {
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "commits": own_footage_report.code_commits(REPOSITORY),
    }
    _save(out / "started.json", started)
    timings = _done(out / "timings.json") or {}

    def timed(name, call):
        began = time.monotonic()
        value = call()
        timings[name] = timings.get(name, 0) + round(time.monotonic() - began, 1)
        _save(out / "timings.json", timings)
        return value

    print("1/5 data: tracks and crops of every person (from_video) ...", flush=True)
    summaries = timed("data_s", lambda: make_data(args, out))
    data = own_footage_report.data_section(
        summaries["train"], summaries["test"], args.every, args.test_share
    )
    print(
        f"    train: {data['train']['identities']} identities, {data['train']['pairs']} pairs; test: {data['test']['identities']} identities, {data['test']['pairs']} pairs; shared: {data['shared_identities']['also_in_train']}",
        flush=True,
    )
    crops = own_footage_report.kept_crops(out / "data" / "work", summaries["train"])
    data["contact_sheet"] = own_footage_report.contact_sheet(crops, out / "train_crops.png")

    print("2/5 recipe: step times of the candidates on this machine ...", flush=True)
    recipe = _done(out / "recipe.json")
    if recipe is None:
        recipe = timed(
            "recipe_s",
            lambda: own_footage_recipe.make_recipe(
                args.minutes,
                args.conv_hidden_num,
                args.batch_size,
                log=lambda line: print(line, flush=True),
            ),
        )
        _save(out / "recipe.json", recipe)
    flags = recipe["flags"]
    print(
        f"    chosen: width {flags['conv_hidden_num']}, batch {flags['batch_size']}, {flags['max_step']} steps ({flags['stage1_steps']} in stage 1), mixed precision {flags['mixed_precision']}",
        flush=True,
    )

    print(
        f"3/5 training {args.minutes:g} min, scored after {', '.join(f'{m:g}' for m in milestones(args.minutes))} min ...",
        flush=True,
    )
    results = []
    for segment in train_segments_with_scores(out, recipe, args.minutes, timed):
        results.append(segment)
    final = results[-1]

    print("4/5 export and pg2-animate of a held-out person ...", flush=True)
    segments = _done(out / "training.json")
    animated = timed(
        "export_animate_s",
        lambda: export_and_animate(
            out, recipe, segments[-1]["checkpoint"], summaries, args.animation_frames
        ),
    )

    print("5/5 pictures and report ...", flush=True)
    result_dir = out / "milestones" / f"{final['minutes']:g}min" / "test_result"
    demo._summary_picture(str(result_dir), min(final["test_pairs"], 8), str(out / "summary.png"))
    train_seconds = sum(s["seconds"] for s in segments)
    report = {
        "data": data,
        "recipe": recipe,
        "steps": final["step"],
        "minutes": round(train_seconds / 60, 2),
        "steps_per_minute": round(final["step"] / (train_seconds / 60), 1),
        "scores": final["scores"],
        "beats_copy_source": final["beats_copy_source"],
        "milestones": results,
        "segments": segments,
        "cpu_flags": measure.cpu_simd_flags(),
        "load_average": {
            "start": started["load_average"],
            "end": [round(v, 2) for v in os.getloadavg()],
        },
        "commits": started["commits"],
        "timings_s": timings,
        "animation": animated,
        "files": {
            "summary": str(out / "summary.png"),
            "train_crops": str(out / "train_crops.png"),
            "animation": animated["gif"],
        },
        "videos": [str(video) for video in args.video],
    }
    _save(out / "report.json", report)
    if args.json:
        _save(args.json, report)
    return report


def train_segments_with_scores(out, recipe, minutes, timed):
    """Steps 3 and 4: each segment trained, then scored (a generator of milestone results)."""
    segments = timed("train_s", lambda: train_segments(out, recipe, minutes))
    for segment in (s for s in segments if s["scored"]):
        result = timed("evaluate_s", lambda segment=segment: evaluate(out, recipe, segment))
        scores = result["scores"]
        print(
            f"    {segment['minutes']:g} min, step {result['step']}: mask-SSIM model {scores['model']['mask_ssim']:.3f}, "
            f"copy source {scores['copy_source']['mask_ssim']:.3f}, G1 {scores['g1_only']['mask_ssim']:.3f}; "
            f"masked L1 {scores['model']['masked_l1']:.2f} / {scores['copy_source']['masked_l1']:.2f} / {scores['g1_only']['masked_l1']:.2f}",
            flush=True,
        )
        yield result


def main(argv=None) -> int:
    """The command line; bad input is one line and exit status 2.

    Args:
        argv: the arguments after the program name, or None for ``sys.argv[1:]``.

    Returns:
        The exit status.
    """
    from pg2_tf.core.errors import ConfigError, DataError

    args = parse_args(argv)
    if args.minutes <= 0:
        print(f"error: --minutes={args.minutes} must be positive", file=sys.stderr)
        return 2
    try:
        report = run(args)
    except (ConfigError, DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Interrupted as stop:
        print(f"{stop}; run the same command again to resume", file=sys.stderr)
        return 1
    scores = report["scores"]
    print(
        f"\nDone: {report['steps']} steps in {report['minutes']} min; look at {args.out / 'summary.png'}, {args.out / 'train_crops.png'}, {report['animation']['gif']}"
    )
    for variant, numbers in scores.items():
        print(
            f"  {variant:12s} SSIM {numbers['ssim']:.3f}  mask-SSIM {numbers['mask_ssim']:.3f}  L1 {numbers['l1']:.2f}  masked L1 {numbers['masked_l1']:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
