"""``pg2-generate``: a person image in a new pose from an exported SavedModel (``pg2-export``).

    python -m pg2_tf.generate --saved_model=exported/market --image=person.jpg \\
        --keypoints=target_pose.json --out=out.png

``--keypoints`` gives the TARGET pose, in the pixel coordinates of ``--image``:

* an OpenPose JSON file (``*.json``): ``people[0].pose_keypoints_2d`` (or the older
  ``pose_keypoints``), x, y, confidence triples; confidence 0 is a missing joint. 18 joints are
  OpenPose's COCO model, 25 its BODY_25 (MidHip and feet dropped), 17 MS COCO's keypoints (neck =
  mean of the shoulders); values must be finite numbers;
* a Pose-Transfer annotation CSV (``*.csv``: the header ``name:keypoints_y:keypoints_x``, then rows
  of a name and two lists of 18 integers, -1 missing; a name listed twice keeps its first row, as
  Pose-Transfer), row chosen with ``--keypoints_row=<name>`` (optional when it has one row).

An image of another size than the model's is scaled and padded to the model's size (the keypoints
alike); ``--restore_size`` crops the padding away and resizes the result back to the input image's
size. Joints outside the image are left out with a warning naming them. ``--pose_from=PHOTO``
takes the target pose from another person's photo instead: both photos are cropped to their
person at the model's aspect ratio. ``--proportions=source|target`` keeps the person's own bone
lengths (default with ``--pose_from``) or the keypoints as given (default with ``--keypoints``);
``--background=source`` keeps the background of ``--image``. How: :mod:`pg2_tf.apps.generation`.

Rule: flags in, one call of :func:`pg2_tf.apps.generation.generate`, one line per image written.
"""

from absl import flags

from pg2_tf import cli
from pg2_tf.apps import generation
from pg2_tf.core.errors import ConfigError


def define_flags(flag_values=flags.FLAGS) -> None:
    """Defines pg2-generate's flags, skipping any already defined by another module.

    Args:
        flag_values: the ``absl.flags.FlagValues`` receiving them (default: the global FLAGS).
    """
    from pg2_tf.serving import engines

    definitions = (
        (flags.DEFINE_string, "saved_model", None, "SavedModel folder written by pg2-export."),
        (flags.DEFINE_string, "image", None, "The person image (any size; scaled and padded)."),
        (flags.DEFINE_string, "keypoints", None,
         "Target pose: OpenPose JSON (COCO-18, BODY_25 or MS COCO's 17 keypoints) or annotation "
         "CSV (name:keypoints_y:keypoints_x), in the pixel coordinates of --image."),
        (flags.DEFINE_string, "pose_from", None,
         "Target pose taken from another person's photo (instead of --keypoints): both photos "
         "are cropped to their person at the model's aspect ratio; needs the pose model files "
         "(python -m pg2_tf.keypoints --fetch_model)."),
        (flags.DEFINE_string, "keypoints_row", None, "Row name of a CSV --keypoints file."),
        (flags.DEFINE_string, "person", "largest",
         "With --pose_from: the person of --image: largest, an index as pg2-keypoints lists "
         "them (largest first), or x,y (the person nearest that pixel)."),
        (flags.DEFINE_string, "pose_person", "largest",
         "The person of --pose_from whose pose is taken (as --person)."),
        (flags.DEFINE_string, "out", None, "Output PNG for G2."),
        (flags.DEFINE_string, "proportions", None,
         "source: the person of --image keeps their bone lengths, the target pose gives the "
         "joint angles; target: the keypoints as given. Default: source with --pose_from, "
         "target with --keypoints."),
        (flags.DEFINE_string, "background", "generated",
         "generated: G2's own background; source: the person pasted onto the background of "
         "--image, its person removed and inpainted."),
        (flags.DEFINE_bool, "save_all", False,
         "Also write <out>_G1.png, <out>_diff_map.png and the poses in the model's frame as "
         "OpenPose JSON: <out>_source_pose.json (the person of --image) and <out>_pose.json (the "
         "pose the model was given); with --background=source also <out>_background.png."),
        (flags.DEFINE_bool, "restore_size", False,
         "Crop the padding and resize outputs back to the input image's size (default: the "
         "model's size)."),
        (flags.DEFINE_string, "precision", "auto", engines.PRECISION_HELP),
    )  # fmt: skip
    cli.define_missing_flags(definitions, flag_values)


def main(argv) -> None:
    """Runs generation from the command-line flags; prints one line per image written.

    Args:
        argv: as for :func:`pg2_tf.cli.start_command`.
    """
    cli.start_command(argv)
    flag_values = flags.FLAGS
    cli.require_flags(("saved_model", "image", "out"), flag_values)
    if not flag_values.keypoints and not flag_values.pose_from:
        raise ConfigError("--keypoints (a JSON/CSV file) or --pose_from (a photo) is required")
    paths = generation.generate(
        flag_values.saved_model,
        flag_values.image,
        flag_values.keypoints or None,
        flag_values.out,
        pose_from=flag_values.pose_from or None,
        keypoints_row=flag_values.keypoints_row,
        save_all=flag_values.save_all,
        restore_size=flag_values.restore_size,
        precision=flag_values.precision,
        person=flag_values.person,
        pose_person=flag_values.pose_person,
        proportions=flag_values.proportions,
        background=flag_values.background,
    )
    for name, path in paths.items():
        print(f"wrote {name} to {path}")


def run() -> None:
    """Console entry point ``pg2-generate``."""
    cli.console_entry(define_flags, main)


if __name__ == "__main__":
    run()
