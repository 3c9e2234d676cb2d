"""The training recipe of :mod:`benchmarks.own_footage`, chosen by measuring this machine.

Each candidate width (``conv_hidden_num``) and batch is built as ``pg2_tf.main`` would build it
(:class:`pg2_tf.training.steps.Trainer`, the fused stage-2 step, ``--mixed_precision`` only where
:func:`pg2_tf.core.hardware.bfloat16_support` says bfloat16 is native) and a few stage-1 and
stage-2 steps are timed on random batches (:func:`benchmarks.measure.time_interleaved`). From
the step times, the budget of minutes gives the number of steps; the rule (:func:`choose`):
the widest model that still trains :data:`MIN_STEPS` steps in the budget, then the larger batch
if it too reaches them; the smallest candidate if none does. The rates and the stage split are
the demo's, chosen by measurement on 2 CPU cores (docs/performance.md, "The demo's schedule").
"""

import gc
import os

from benchmarks import measure
from pg2_tf import demo

WIDTHS = (16, 32, 64)
BATCHES = (8, 16)
# Below this many steps the demo's schedule had not yet drawn the person (docs/performance.md,
# "The demo's schedule": 1200 steps on synthetic people); real people need more.
MIN_STEPS = 3000
STAGE1_SHARE = demo.DEMO_STAGE1_FRACTION
G_LR = demo.DEMO_G_LR
D_LR = demo.DEMO_D_LR
IMG_H, IMG_W = 128, 64
TIMED_STEPS, WARMUP = 5, 1


def mixed_precision() -> tuple[bool, str]:
    """Whether ``--mixed_precision`` pays here (bfloat16 computed natively), and why.

    Returns:
        ``(use it, the reason)``.
    """
    from pg2_tf.core import hardware

    support = hardware.bfloat16_support()
    return support.native, support.reason


def measure_step_seconds(width: int, batch: int, mixed: bool) -> dict:
    """Times a few stage-1 and stage-2 training steps of one candidate.

    Args:
        width: ``conv_hidden_num``.
        batch: the training batch.
        mixed: build under ``--mixed_precision``.

    Returns:
        ``{"conv_hidden_num", "batch_size", "stage1_s", "stage2_s", "cpu_share"}``: median
        seconds per step of each stage (random batches, no input pipeline) and the share of
        the CPU the process got while timing (about the number of cores on a quiet machine).
    """
    import keras
    import tensorflow as tf

    from pg2_tf.core.configs import TrainConfig
    from pg2_tf.training.steps import Trainer

    config = TrainConfig(
        conv_hidden_num=width,
        d_dim=width,
        batch_size=batch,
        stage1_steps=1,  # step 0 is a stage-1 step, any later one a stage-2 step
        mixed_precision=mixed,
        stage2_schedule="fused",
        progress_bar=False,
    )
    keras.utils.set_random_seed(0)
    trainer = Trainer(config)
    batch_arrays = measure.random_arrays(batch, IMG_H, IMG_W)
    tensors = {key: tf.constant(value) for key, value in batch_arrays.items()}
    stage1, stage2 = measure.time_interleaved(
        [
            lambda: measure.fetch(trainer.train_step(tensors, step=0)),
            lambda: measure.fetch(trainer.train_step(tensors, step=1, d_batch=tensors)),
        ],
        TIMED_STEPS,
        WARMUP,
    )
    keras.backend.clear_session()
    gc.collect()
    return {
        "conv_hidden_num": width,
        "batch_size": batch,
        "stage1_s": stage1["median_s"],
        "stage2_s": stage2["median_s"],
        "cpu_share": round((stage1["cpu_share"] + stage2["cpu_share"]) / 2, 2),
    }


def steps_in(
    seconds: float, stage1_s: float, stage2_s: float, start: int, stage1_steps: int
) -> int:
    """How many steps after ``start`` fit in ``seconds``, stage-1 steps costing ``stage1_s``.

    Args:
        seconds: the time available.
        stage1_s, stage2_s: seconds per step of each stage.
        start: the steps already done.
        stage1_steps: the steps of stage 1 (the first ones).

    Returns:
        The number of steps, >= 1.
    """
    first = max(stage1_steps - start, 0)
    if seconds <= first * stage1_s:
        return max(int(seconds / stage1_s), 1)
    return max(first + int((seconds - first * stage1_s) / stage2_s), 1)


def total_steps(seconds: float, stage1_s: float, stage2_s: float) -> int:
    """Steps of a whole run of ``seconds`` with :data:`STAGE1_SHARE` of them in stage 1.

    Args:
        seconds: the training budget.
        stage1_s, stage2_s: seconds per step of each stage.

    Returns:
        The number of steps, >= 2 (one in each stage at least).
    """
    per_step = STAGE1_SHARE * stage1_s + (1 - STAGE1_SHARE) * stage2_s
    return max(int(seconds / per_step), 2)


def choose(measured: list[dict], seconds: float) -> dict:
    """The candidate :mod:`benchmarks.own_footage` trains (the rule of the module docstring).

    Args:
        measured: candidates as returned by :func:`measure_step_seconds`.
        seconds: the training budget.

    Returns:
        The chosen candidate, with ``"steps"``: its steps in the budget.
    """
    for candidate in measured:
        candidate["steps"] = total_steps(seconds, candidate["stage1_s"], candidate["stage2_s"])
    enough = [c for c in measured if c["steps"] >= MIN_STEPS]
    if not enough:
        return min(measured, key=lambda c: (c["conv_hidden_num"], c["batch_size"]))
    return max(enough, key=lambda c: (c["conv_hidden_num"], c["batch_size"]))


def make_recipe(minutes: float, width: int = 0, batch: int = 0, log=print) -> dict:
    """Measures the candidates and writes down the recipe.

    Args:
        minutes: the training budget.
        width: a fixed ``conv_hidden_num``, or 0 to choose among :data:`WIDTHS`.
        batch: a fixed batch, or 0 to choose among :data:`BATCHES`.
        log: receives a line per candidate.

    Returns:
        ``{"flags": the pg2_tf.main flags of the run, "measured": the candidates,
        "mixed_precision_reason", "rule", "load_average"}``; ``flags["max_step"]`` is the
        whole budget's steps as measured now (the run corrects it as it goes).
    """
    mixed, reason = mixed_precision()
    seconds = minutes * 60
    measured = []
    for candidate_width in (width,) if width else WIDTHS:
        for candidate_batch in (batch,) if batch else BATCHES:
            timing = measure_step_seconds(candidate_width, candidate_batch, mixed)
            measured.append(timing)
            log(
                f"    width {candidate_width}, batch {candidate_batch}: stage 1 "
                f"{timing['stage1_s']:.3f} s/step, stage 2 {timing['stage2_s']:.3f} s/step "
                f"(CPU share {timing['cpu_share']:.2f})"
            )
            if total_steps(seconds, timing["stage1_s"], timing["stage2_s"]) < MIN_STEPS:
                break  # a larger batch is slower still
        if measured and measured[-1]["conv_hidden_num"] == candidate_width:
            smallest = [m for m in measured if m["conv_hidden_num"] == candidate_width][0]
            if total_steps(seconds, smallest["stage1_s"], smallest["stage2_s"]) < MIN_STEPS:
                break  # a wider model is slower still
    return recipe_from(measured, minutes, mixed, reason)


def recipe_from(measured: list[dict], minutes: float, mixed: bool, reason: str) -> dict:
    """The recipe of measured candidates (see :func:`make_recipe`).

    Args:
        measured: candidates as returned by :func:`measure_step_seconds`.
        minutes: the training budget.
        mixed: ``--mixed_precision``.
        reason: why (or why not) mixed precision.

    Returns:
        As :func:`make_recipe`.
    """
    chosen = choose(measured, minutes * 60)
    steps = chosen["steps"]
    flags = {
        "conv_hidden_num": chosen["conv_hidden_num"],
        "d_dim": chosen["conv_hidden_num"],
        "batch_size": chosen["batch_size"],
        "mixed_precision": mixed,
        "stage2_schedule": "fused",
        "max_step": steps,
        "stage1_steps": max(int(steps * STAGE1_SHARE), 1),
        "g_lr": G_LR,
        "d_lr": D_LR,
        "img_H": IMG_H,
        "img_W": IMG_W,
        "model": 1,
    }
    return {
        "flags": flags,
        "measured": measured,
        "mixed_precision_reason": reason,
        "rule": (
            f"widest of {list(WIDTHS)} (then larger batch of {list(BATCHES)}) with at least "
            f"{MIN_STEPS} steps in {minutes:g} min; rates and {STAGE1_SHARE:.0%} in stage 1: "
            "the demo's (docs/performance.md); a candidate short of them ends the search "
            "(larger batches and wider models are slower)"
        ),
        "load_average": [round(value, 2) for value in os.getloadavg()],
    }
