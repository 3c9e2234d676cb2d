"""Checking the losses without waiting for them: a step's losses are fetched (and checked for NaN
or inf) while the next step runs, and always before anything is saved or logged.

The losses logged for a stage-2 step are those its updates were computed from: under the
``"original"`` schedule, g_loss2 and the others of G2's batch (before G2's update) and d_loss of
D's batch (after it); the original logged them from a third session run on a third batch.

Rule: a NaN or infinite loss stops the run before anything after it is saved.
"""

import math

import tensorflow as tf

from pg2_tf.core.errors import Pg2Error


class TrainingDiverged(Pg2Error):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


class LossChecker:
    """Fetches a step's losses while the next step runs, and stops on NaN/inf.

    ``add(step, losses)`` records the (not yet computed) losses of ``step`` and checks those of
    the step before, whose computation is then finished or about to be; ``settle()`` checks the
    pending ones at once (before anything is saved or logged). ``latest`` holds the last checked
    losses as Python floats.
    """

    def __init__(self, last_checkpoint_of):
        self._pending = None
        self._last_checkpoint_of = last_checkpoint_of
        self.latest = {}

    def add(self, step, losses_now):
        self.settle()
        self._pending = (step, losses_now)

    def settle(self) -> dict:
        if self._pending is None:
            return self.latest
        step, tensors = self._pending
        self._pending = None
        names = list(tensors)
        values = tf.stack([tf.cast(tensors[name], tf.float32) for name in names]).numpy()
        current = {name: float(value) for name, value in zip(names, values, strict=True)}
        bad = [name for name, value in current.items() if not math.isfinite(value)]
        if bad:
            raise TrainingDiverged(
                f"{', '.join(bad)} became {current[bad[0]]} at step {step}; nothing was "
                f"saved after it. The last good checkpoint is "
                f"{self._last_checkpoint_of() or 'none'}: resume from it with a lower "
                "--g_lr/--d_lr"
            )
        self.latest = current
        return current
