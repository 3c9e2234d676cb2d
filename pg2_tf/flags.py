"""The command-line flags of ``python -m pg2_tf.main``: the original config.py's, plus a few new.

Names, defaults and meanings follow the original (config.py and the run_*.sh scripts), with these
deliberate differences (see the flag table of docs/training.md):

- ``--g_lr``/``--d_lr`` default to 2e-5 and ARE the optimisers' (constant) rates. The original
  hard-coded 2e-5 into its Adam optimisers; its flags (default 8e-5) only fed unused variables.
- ``--lr_update_step`` halves the rates only with ``--halve_lr``; the original's halving never
  reached the optimisers, so it is off by default.
- ``--conv_hidden_num`` takes any positive integer (the original allowed 64 or 128).
- ``--dataset`` defaults to Market_train_data and ``--model`` to 1 (the original's defaults,
  'CelebA' and 0, did not run); ``--log_dir`` is absl's own flag (default: logs).
- New: ``--stage1_steps`` (22000, hard-coded in the original), ``--d_dim`` (64), ``--max_to_keep``, ``--save_step``,
  ``--stage2_schedule`` (``original``: the original's two-batch stage-2 step; or ``fused``),
  ``--xla``, ``--export_dir``, ``--score``, ``--inception_graph``, ``--progress_bar``; and for speed
  and scale (docs/performance.md): ``--mixed_precision``, ``--distribute``,
  ``--inter_op_threads``, ``--intra_op_threads``.

Rule: flags are read only here (:func:`validate`, :func:`to_configs`, :func:`flag_dict`) and in
:mod:`pg2_tf.main`, which pass plain config objects down to the library.
"""

import dataclasses
import math
import os
import time

from absl import flags

from pg2_tf.core import configs, datasets
from pg2_tf.core.configs import STAGE2_SCHEDULES
from pg2_tf.core.errors import ConfigError

FLAGS = flags.FLAGS

# Original flags (config.py), names and meanings kept.
flags.DEFINE_integer("input_scale_size", 64, "Unused by PG2 (kept from the original).")
flags.DEFINE_integer("img_H", 128, "Image height: 128 for Market-1501, 256 for DeepFashion.")
flags.DEFINE_integer("img_W", 64, "Image width: 64 for Market-1501, 256 for DeepFashion.")
flags.DEFINE_integer("conv_hidden_num", 128, "n in the paper: channels of the first conv.")
flags.DEFINE_integer("z_num", 64, "Size of G1's fully connected bottleneck.")
flags.DEFINE_string(
    "dataset",
    "Market_train_data",
    "Folder of tf-records under --data_dir; its name picks the reader: 'market' or 'df'/'deepfashion'.",
)
flags.DEFINE_string("split", "train", "Record split: <prefix>_<split>_*.tfrecord.")
flags.DEFINE_integer("batch_size", 16, "Batch size (global, over all replicas).")
flags.DEFINE_boolean("grayscale", False, "Unused by PG2 (kept from the original).")
flags.DEFINE_integer("num_worker", 4, "Unused: tf.data tunes its own parallelism.")
flags.DEFINE_boolean("is_train", True, "Train (True) or write test results (False).")
flags.DEFINE_boolean("test_one_by_one", False, "Unused (kept from the original).")
flags.DEFINE_string("optimizer", "adam", "Only 'adam', as the original's DCGAN mode.")
flags.DEFINE_integer(
    "start_step",
    0,
    "First step of a new run (e.g. 22000 to start at stage 2 from --pretrained_path).",
)
flags.DEFINE_string(
    "ckpt_path", None, "An ORIGINAL TF1 training checkpoint to resume from (weights, Adam, step)."
)
flags.DEFINE_string(
    "pretrained_path", None, "Generator weights to load (original TF1 checkpoint or one of ours)."
)
flags.DEFINE_integer("max_step", 500000, "Train until this many steps are done.")
flags.DEFINE_integer(
    "lr_update_step", 100000, "Halve the rates every this many steps (only with --halve_lr)."
)
flags.DEFINE_float("d_lr", 2e-5, "D's Adam learning rate (constant unless --halve_lr).")
flags.DEFINE_float("g_lr", 2e-5, "G1's and G2's Adam learning rate (constant unless --halve_lr).")
flags.DEFINE_float("beta1", 0.5, "Adam beta1.")
flags.DEFINE_float("beta2", 0.999, "Adam beta2.")
flags.DEFINE_float("gamma", 0.5, "Unused by PG2 (BEGAN leftover, kept from the original).")
flags.DEFINE_float("lambda_k", 0.001, "Unused by PG2 (BEGAN leftover, kept from the original).")
flags.DEFINE_boolean("use_gpu", True, "Use GPUs when present.")
flags.DEFINE_integer("gpu", -1, "Use only this GPU index (-1: all visible GPUs).")
flags.DEFINE_integer("model", 1, "1: Market-1501 (128x64), 11: DeepFashion (256x256).")
flags.DEFINE_string("D_arch", "DCGAN", "Discriminator architecture; PG2 used only 'DCGAN'.")
flags.DEFINE_string("load_path", "", "Unused (kept from the original): use --model_dir to resume.")
flags.DEFINE_integer(
    "log_step", 200, "Summaries every log_step, samples every 3x, checkpoints 30x."
)
flags.DEFINE_integer("save_model_secs", 1000, "Also checkpoint when this many seconds passed.")
flags.DEFINE_integer("num_log_samples", 3, "Images per TensorBoard image summary.")
flags.DEFINE_enum("log_level", "INFO", ["INFO", "DEBUG", "WARN"], "Logging level.")
flags.DEFINE_string(
    "model_dir", None, "Checkpoints, summaries, test results. Default: <log_dir>/<dataset>_<time>."
)
flags.DEFINE_string("data_dir", "data", "Parent folder of --dataset.")
flags.DEFINE_string("test_data_path", None, "Unused (kept from the original).")
flags.DEFINE_integer("sample_per_image", 64, "Unused (kept from the original).")
flags.DEFINE_integer("random_seed", 123, "Seed of weights initialisation and data order.")

# New flags, where the original hard-coded something or had no such feature.
flags.DEFINE_integer("stage1_steps", 22000, "Steps of stage 1 (G1 only) before G2 and D train.")
flags.DEFINE_integer("d_dim", 64, "Channels of D's first conv (wgan_gp DIM).")
flags.DEFINE_boolean("halve_lr", False, "Really halve the rates every --lr_update_step.")
flags.DEFINE_integer("max_to_keep", 20, "Checkpoints kept in model_dir.")
flags.DEFINE_integer(
    "save_step", 0, "Checkpoint every this many steps (0: every 30 x --log_step, the original's)."
)
flags.DEFINE_boolean("xla", False, "Compile the train and test steps with XLA (jit_compile).")
flags.DEFINE_enum(
    "stage2_schedule",
    "original",
    list(STAGE2_SCHEDULES),
    "Stage 2: 'original' = the original's G2 update on one batch, then D's on the next batch "
    "with the updated G2 (two batches per step, the paper's training); 'fused' = G2 and D "
    "updated together from one pass over one batch (less time per step, a different GAN "
    "algorithm; its figures: docs/performance.md).",
)
flags.DEFINE_boolean(
    "mixed_precision",
    False,
    "Compute in float16 with a GPU (dynamic loss scaling), in bfloat16 on a CPU with native "
    "bfloat16 (AVX512_BF16 or AMX); other CPUs keep float32 and say so (bfloat16 would be 12x "
    "slower there). Variables, losses and checkpoints stay float32.",
)
flags.DEFINE_enum(
    "distribute",
    "none",
    ["none", "mirrored", "multi_worker"],
    "tf.distribute strategy: none (one device), mirrored (all visible GPUs of this host), "
    "multi_worker (several hosts, cluster from TF_CONFIG). --batch_size is the global batch.",
)
flags.DEFINE_integer(
    "inter_op_threads",
    0,
    "Ops TensorFlow may run at once (0: TensorFlow's default, about the number of cores).",
)
flags.DEFINE_integer("intra_op_threads", 0, "Threads per op (0: TensorFlow's default, all cores).")
flags.DEFINE_boolean("progress_bar", True, "Show a tqdm progress bar while training.")
flags.DEFINE_boolean("score", False, "After writing test results, compute the paper's scores.")
flags.DEFINE_string(
    "inception_graph", None, "classify_image_graph_def.pb (or its .tgz) for IS/FID with --score."
)
flags.DEFINE_string("export_dir", None, "After training/testing, export a SavedModel here.")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """What main does besides training: the mode, test-time and post-processing settings."""

    is_train: bool
    model_dir: str
    data_path: str
    log_level: str
    use_gpu: bool
    gpu: int
    score: bool
    inception_graph: str | None
    export_dir: str | None
    mixed_precision: bool = False
    distribute: str = "none"  # none | mirrored | multi_worker
    inter_op_threads: int = 0  # 0: TensorFlow's default
    intra_op_threads: int = 0


def _is_power_of_two(value: int) -> bool:
    return value > 0 and (value & (value - 1)) == 0


def validate(flag_values=FLAGS) -> None:
    """Checks the flags before TensorFlow loads.

    Args:
        flag_values: the parsed absl flags (default: the process's).

    Raises:
        ConfigError: naming the flag and the fix, for any nonsensical combination.
    """
    f = flag_values
    named = datasets.by_name(f.dataset)  # ConfigError for an unknown name
    if named != datasets.by_model(f.model):  # by_model: ConfigError for an unknown number
        raise ConfigError(
            f"--dataset={f.dataset} is {named.kind} data but --model={f.model}: use {named.flags}"
        )
    if not _is_power_of_two(f.img_H) or f.img_H < 32:
        raise ConfigError(f"--img_H={f.img_H} must be a power of two >= 32 (128 or 256)")
    repeat_num = configs.repeat_num_for(f.img_H)
    divisor = 2 ** (repeat_num - 1)
    if f.img_W <= 0 or f.img_W % divisor:
        raise ConfigError(
            f"--img_W={f.img_W} must be a positive multiple of {divisor} for --img_H={f.img_H}"
        )
    for name in ("conv_hidden_num", "z_num", "d_dim", "batch_size", "log_step", "max_step"):
        if getattr(f, name) <= 0:
            raise ConfigError(f"--{name}={getattr(f, name)} must be a positive integer")
    if f.save_step < 0:
        raise ConfigError(f"--save_step={f.save_step} must be >= 0 (0: every 30 x --log_step)")
    if f.start_step < 0:
        raise ConfigError(f"--start_step={f.start_step} must be >= 0")
    if f.is_train and f.start_step >= f.max_step:
        raise ConfigError(
            f"--start_step={f.start_step} is not below --max_step={f.max_step}: nothing would be "
            "trained; raise --max_step"
        )
    for name in ("g_lr", "d_lr"):
        if not (getattr(f, name) > 0 and math.isfinite(getattr(f, name))):
            raise ConfigError(f"--{name}={getattr(f, name)} must be a positive number")
    if f.optimizer.lower() != "adam":
        raise ConfigError(f"--optimizer={f.optimizer}: PG2 trains with 'adam' only")
    if f.D_arch != "DCGAN":
        raise ConfigError(f"--D_arch={f.D_arch}: PG2 used only 'DCGAN'")
    if f.ckpt_path and f.pretrained_path:
        raise ConfigError("give --ckpt_path (resume everything) or --pretrained_path, not both")
    if f.inter_op_threads < 0:
        raise ConfigError(f"--inter_op_threads={f.inter_op_threads} must be >= 0")
    if f.intra_op_threads < 0:
        raise ConfigError(f"--intra_op_threads={f.intra_op_threads} must be >= 0")
    if f.distribute != "none" and not f.is_train:
        raise ConfigError(
            f"--distribute={f.distribute} is for training; drop it with --is_train=False"
        )
    if not f.is_train and not (f.pretrained_path or f.ckpt_path):
        raise ConfigError(
            "--is_train=False needs --pretrained_path=<model_dir>/model.ckpt-<step> "
            "(an original TF1 checkpoint or one of ours)"
        )


def _config_from_flags(config_class, flag_values, **computed):
    """A config dataclass whose fields are the flags of the same names, but for ``computed``."""
    names = [field.name for field in dataclasses.fields(config_class) if field.name not in computed]
    return config_class(**{name: getattr(flag_values, name) for name in names}, **computed)


def to_configs(flag_values=FLAGS):
    """The plain configs of validated flags; fills the defaults that depend on others (the
    dated ``--model_dir`` under ``--log_dir``, the data path).

    Args:
        flag_values: the parsed absl flags, already through :func:`validate`.

    Returns:
        ``(TrainConfig, RunConfig)``: :class:`pg2_tf.core.configs.TrainConfig` for training and
        test mode, :class:`RunConfig` for the rest of the command.
    """
    f = flag_values
    model_dir = f.model_dir or os.path.join(
        f.log_dir or "logs", f"{f.dataset}_{time.strftime('%Y-%m-%d_%H-%M-%S')}"
    )
    data_path = os.path.join(f.data_dir, f.dataset)
    train_config = _config_from_flags(
        configs.TrainConfig,
        f,
        halve_lr_every=f.lr_update_step if f.halve_lr else 0,
        model_dir=model_dir,
        data_path=data_path,
    )
    run_config = _config_from_flags(RunConfig, f, model_dir=model_dir, data_path=data_path)
    return train_config, run_config


def flag_dict(flag_values=FLAGS) -> dict:
    """This module's flags and their values, for ``params.json``.

    Args:
        flag_values: the parsed absl flags.

    Returns:
        ``{flag name: value}``, with absl's ``log_dir`` too.
    """
    own = flag_values.get_key_flags_for_module(__name__)
    values = {flag.name: flag.value for flag in own}
    values["log_dir"] = flag_values.log_dir
    return values
