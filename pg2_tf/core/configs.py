"""Plain configuration of a PG2 run, importable without TensorFlow.

The commands validate their flags (:mod:`pg2_tf.flags`) before they load TensorFlow, so that a
mistyped flag answers in a fraction of a second; what that validation needs of the model and of
training lives here, and :mod:`pg2_tf.networks.models` and :mod:`pg2_tf.training.steps` take it from here.

Rule: plain values only, no TensorFlow, so that flags are checked before it loads.
"""

import dataclasses
import math

from pg2_tf.core import datasets

# The flags (and config fields) that fix the generators' architecture, as models.build takes them.
ARCHITECTURE_FLAGS = ("model", "img_H", "img_W", "conv_hidden_num", "z_num")
# --stage2_schedule: the original's alternating updates on two batches, or one fused pass
# (pg2_tf.training.steps's docstring).
STAGE2_SCHEDULES = ("original", "fused")


def architecture(config) -> dict:
    """The architecture flags of a configuration, to pass on as keyword arguments.

    Args:
        config: any object with the attributes of :data:`ARCHITECTURE_FLAGS` (a TrainConfig, the
            absl flag values, ...).

    Returns:
        ``{flag: value}`` for every name of :data:`ARCHITECTURE_FLAGS`.
    """
    return {name: getattr(config, name) for name in ARCHITECTURE_FLAGS}


def repeat_num_for(img_H: int) -> int:
    """G1's number of encoder/decoder blocks for an image height.

    Args:
        img_H: image height in pixels (a power of two, 128 or 256 for PG2's datasets).

    Returns:
        ``int(log2(img_H)) - 2``: 5 for 128, 6 for 256.
    """
    return int(math.log2(img_H)) - 2


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything the training loop needs; built from the flags by ``pg2_tf.main``."""

    model: int = 1
    img_H: int = 128
    img_W: int = 64
    conv_hidden_num: int = 128
    z_num: int = 64
    d_dim: int = 64
    batch_size: int = 16
    max_step: int = 60000
    start_step: int = 0
    stage1_steps: int = 22000
    g_lr: float = 2e-5
    d_lr: float = 2e-5
    beta1: float = 0.5
    beta2: float = 0.999
    halve_lr_every: int = 0  # 0: constant rate, as the original
    log_step: int = 200
    save_model_secs: int = 1000
    save_step: int = 0  # checkpoint every this many steps; 0: every 30*log_step, as the original
    max_to_keep: int = 20
    num_log_samples: int = 16
    model_dir: str = "logs/model"
    data_path: str = "data/Market_train_data"
    split: str = "train"
    ckpt_path: str | None = None  # an ORIGINAL TF1 training checkpoint to resume from
    pretrained_path: str | None = None  # generator weights (original or ours) to start from
    random_seed: int = 123
    xla: bool = False
    mixed_precision: bool = False  # build under mixed_precision_policy(); variables stay float32
    stage2_schedule: str = "original"  # one of STAGE2_SCHEDULES (module docstring)
    progress_bar: bool = True

    @property
    def kind(self) -> str:
        return datasets.by_model(self.model).kind
