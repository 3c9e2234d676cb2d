"""``pg2-export``: the command line that exports a checkpoint as a TensorFlow SavedModel.

    python -m pg2_tf.export --pretrained_path=<checkpoint> --model=1 --img_H=128 --img_W=64 \\
        --conv_hidden_num=128 --export_dir=exported/market

Rule: flags in, one call of :func:`pg2_tf.serving.export_lib.export_from_checkpoint` (the
library: the checkpoint kinds, the SavedModel's signatures and its atomic writing), one line out.
"""

from absl import flags

from pg2_tf import cli
from pg2_tf.core import configs
from pg2_tf.serving import export_lib
from pg2_tf.serving.contract import KEYPOINTS_SIGNATURE, SERVING_SIGNATURE


def define_flags(flag_values=flags.FLAGS) -> None:
    """Defines the export flags (names and meanings of the training flags).

    Flags already defined are skipped, so that this never clashes with ``pg2_tf.main``'s flags.

    Args:
        flag_values: the absl ``FlagValues`` to define them in.
    """
    definitions = (
        (flags.DEFINE_string, "pretrained_path", None,
         "Checkpoint to export: an original TF1 PG2 checkpoint prefix (model.ckpt-<step>) or one "
         "of ours (prefix, or the model_dir holding its 'checkpoint' file)."),
        (flags.DEFINE_integer, "model", 1, "1: Market-1501 (128x64), 11: DeepFashion (256x256)."),
        (flags.DEFINE_integer, "img_H", 128, "Image height the checkpoint was trained at."),
        (flags.DEFINE_integer, "img_W", 64, "Image width the checkpoint was trained at."),
        (flags.DEFINE_integer, "conv_hidden_num", 128, "Generator width (128 in the released models)."),
        (flags.DEFINE_integer, "z_num", 64, "Size of G1's fully connected bottleneck."),
        (flags.DEFINE_string, "export_dir", None, "SavedModel folder to write."),
    )  # fmt: skip
    cli.define_missing_flags(definitions, flag_values)


def main(argv) -> None:
    """Runs the export from the command-line flags and prints where it wrote it.

    Args:
        argv: the command line (absl's, flags already parsed).
    """
    cli.start_command(argv)
    flag_values = flags.FLAGS
    cli.require_flags(("pretrained_path", "export_dir"), flag_values)
    export_dir = export_lib.export_from_checkpoint(
        flag_values.pretrained_path,
        flag_values.export_dir,
        **configs.architecture(flag_values),
    )
    print(
        f"exported SavedModel to {export_dir} (signatures {SERVING_SIGNATURE}, "
        f"{KEYPOINTS_SIGNATURE}; images {flag_values.img_H}x{flag_values.img_W})"
    )


def run() -> None:
    """Console entry point ``pg2-export``."""
    cli.console_entry(define_flags, main)


if __name__ == "__main__":
    run()
