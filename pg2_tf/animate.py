"""``pg2-animate``: one photo of a person + a sequence of poses -> a GIF or MP4 of that person moving.

    python -m pg2_tf.animate --saved_model=exported/market --image=person.jpg \\
        --poses=dance.mp4 --out=dance.gif

``--poses`` is one of:

* a folder of OpenPose JSON files (one per frame, in file-name order: COCO-18, BODY_25 or MS
  COCO-17, as ``pg2-generate --keypoints`` reads them);
* a folder of frames (images, in file-name order) or a video file (anything ffmpeg reads, through
  imageio): the keypoints of each frame are estimated with BlazePose (``pg2-keypoints``).

The person of ``--image`` is cropped to their box at the model's aspect ratio (as
``pg2-generate --pose_from``). The keypoint tracks are bridged over short gaps and smoothed, then
carried into the model's frame with ONE scale for the whole sequence (the person's median size)
and a per-frame centre, so the figure neither flickers nor pumps. ``--proportions=source`` (the
default) redraws the poses with the person's own bone lengths, ``target`` keeps the driver's;
``--background=source`` keeps the photo's background, the same in every frame. How:
:mod:`pg2_tf.apps.animation`.

Rule: flags in, one call of :func:`pg2_tf.apps.animation.animate`, its frame rate line out.
"""

from absl import flags

from pg2_tf import cli
from pg2_tf.apps import animation
from pg2_tf.serving import engines

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines pg2-animate's flags in the global FLAGS (only by its entry point)."""
    flags.DEFINE_string("saved_model", None, "SavedModel folder written by pg2-export.")
    flags.DEFINE_string("image", None, "The person's photo (cropped to the person).")
    flags.DEFINE_string(
        "poses", None, "A folder of OpenPose JSON files, a folder of frames, or a video."
    )
    flags.DEFINE_string("out", None, "Output animation: .gif or .mp4.")
    flags.DEFINE_float("fps", None, "Output frame rate (default: the video's, else 10).")
    flags.DEFINE_integer(
        "smooth_window", 5, "Odd number of frames the keypoints are averaged over."
    )
    flags.DEFINE_integer("max_gap", 4, "Longest run of frames a lost joint is interpolated over.")
    flags.DEFINE_bool(
        "side_by_side", False, "Frames show the person's crop | the target pose | the result."
    )
    flags.DEFINE_bool("progress_bar", True, "Show progress bars.")
    flags.DEFINE_string("precision", "auto", engines.PRECISION_HELP)
    flags.DEFINE_string(
        "person", "largest",
        "The person of --image: largest, an index as pg2-keypoints lists them (largest first), "
        "or x,y (the person nearest that pixel).",
    )  # fmt: skip
    flags.DEFINE_string(
        "pose_person", "largest",
        "The person followed through the video or frames of --poses, chosen in the first frame "
        "with people: largest, an index, or x,y (as --person).",
    )  # fmt: skip
    flags.DEFINE_string(
        "save_poses", None,
        "Write the followed person's keypoints per input frame (before smoothing) to this folder "
        "as OpenPose JSON %06d.json (people empty where not found); --poses reads it back. "
        "Its model_frame/ sub-folder gets the poses the model was given (retargeted with "
        "--proportions=source), in the model's frame.",
    )  # fmt: skip
    flags.DEFINE_string(
        "proportions", "source",
        "source: the person of --image keeps their bone lengths, the driver gives the joint "
        "angles (one scale for the whole sequence); target: the driver's keypoints as given.",
    )  # fmt: skip
    flags.DEFINE_string(
        "background", "generated",
        "generated: G2's own background in each frame; source: the background of --image, its "
        "person removed and inpainted, computed once and the same in every frame.",
    )  # fmt: skip


def main(argv) -> None:
    """Runs pg2-animate from the command-line flags; prints the frame rate line last.

    Args:
        argv: as for :func:`pg2_tf.cli.start_command`.
    """
    cli.start_command(argv)
    cli.require_flags(("saved_model", "image", "poses", "out"), FLAGS)
    made = animation.animate(
        FLAGS.saved_model,
        FLAGS.image,
        FLAGS.poses,
        FLAGS.out,
        fps=FLAGS.fps,
        window=FLAGS.smooth_window,
        max_gap=FLAGS.max_gap,
        side_by_side=FLAGS.side_by_side,
        person=FLAGS.person,
        pose_person=FLAGS.pose_person,
        save_poses=FLAGS.save_poses,
        proportions=FLAGS.proportions,
        background=FLAGS.background,
        progress_bar=FLAGS.progress_bar,
        precision=FLAGS.precision,
    )
    print(frame_rate_line(made))


def frame_rate_line(made: dict) -> str:
    """The line pg2-animate ends with: the whole pipeline's frame rate, its parts, the precision.

    Args:
        made: what :func:`pg2_tf.apps.animation.animate` returned.

    Returns:
        ``made N frames in S s from the first frame read to the file written: R frames per
        second (keypoints K s, generation G s for n frames, writing W s, retargeting and
        background B s; start-up left out) (PRECISION: reason)``.
    """
    seconds = animation.pipeline_seconds(made)
    rate = made["frames"] / seconds if seconds > 0 else float("inf")
    precision = made["precision"]
    other = made["retarget_seconds"] + made["background_seconds"]
    return (
        f"made {made['frames']} frames in {seconds:.1f} s from the first frame read to the file "
        f"written: {rate:.2f} frames per second (keypoints {made['keypoints_seconds']:.1f} s, "
        f"generation {made['generate_seconds']:.1f} s for {made['generated']} frames, writing "
        f"{made['write_seconds']:.1f} s, retargeting and background {other:.1f} s; start-up "
        f"left out) ({precision.name}: {precision.reason})"
    )


def run() -> None:
    """Console entry point ``pg2-animate``."""
    cli.console_entry(define_flags, main)


if __name__ == "__main__":
    run()
