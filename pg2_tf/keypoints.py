"""``pg2-keypoints``: the 18 COCO/OpenPose keypoints of every person in a photo (BlazePose, CPU).

Usage::

    python -m pg2_tf.keypoints --fetch_model            # once: downloads the model files (~9 MB)
    python -m pg2_tf.keypoints --image=PHOTO --json=OUT.json [--draw=OUT.png]

(``pg2-keypoints`` is the same command.) ``--json`` is OpenPose's format,
``{"people": [{"pose_keypoints_2d": [x, y, c] * 18}]}`` in pixels of the input photo (EXIF
orientation applied), largest person first, which ``pg2-generate --keypoints`` reads. ``--draw``
draws each person's skeleton and index on the photo. No person, a file that is not a photo, or
missing model files: one line, exit 2.

Rule: the command line only (flags in, library calls, outputs written whole through
pg2_tf.core.atomic); the library is pg2_tf.people (model_files, blazepose, finder, drawing).
"""

import json
import os

from pg2_tf.core import atomic
from pg2_tf.core.errors import DataError


def define_flags() -> None:
    """Defines the flags of ``python -m pg2_tf.keypoints`` on absl's FLAGS (only those missing)."""
    from absl import flags

    from pg2_tf import cli

    cli.define_missing_flags(
        [
            (flags.DEFINE_string, "image", None, "the photo (any format Pillow reads)"),
            (flags.DEFINE_string, "json", None, "write the keypoints here (OpenPose JSON)"),
            (flags.DEFINE_string, "draw", None, "write the photo with the skeleton here (PNG)"),
            (flags.DEFINE_bool, "fetch_model", False, "download the BlazePose model files"),
            (
                flags.DEFINE_string,
                "cache_dir",
                None,
                "model folder (default: $PG2_TF_CACHE/blazepose or ~/.cache/pg2_tf/blazepose)",
            ),
            (
                flags.DEFINE_string,
                "tiles",
                "auto",
                "auto, always or never: look for small people on zoomed tiles: auto (when the whole photo may hold people "
                "too small for the detector), always, never",
            ),
        ]
    )


def main(argv) -> None:
    """Runs the command line: --fetch_model, or --image with --json and/or --draw.

    Args:
      argv: the command line left after absl parsed the flags (only the program name).

    Raises:
      ConfigError: the flags ask for nothing or lack --image; DataError: no person, not a photo,
        missing model files or an output that cannot be written (one line each).
    """
    from absl import flags

    from pg2_tf import cli
    from pg2_tf.core import pose_files
    from pg2_tf.core.errors import ConfigError
    from pg2_tf.people import blazepose, drawing, finder, model_files, photos

    cli.start_command(argv)
    values = flags.FLAGS
    if values.fetch_model:
        print(f"BlazePose model files in {model_files.fetch_model(values.cache_dir)}")
        if not values.image:
            return
    if not values.image:
        raise ConfigError("--image is required (or --fetch_model)")
    if not (values.json or values.draw):
        raise ConfigError("give --json=OUT.json and/or --draw=OUT.png")
    estimator = blazepose.KeypointEstimator(values.cache_dir)
    image = photos.load_photo(values.image)
    found = finder.people_or_crop(estimator, image, values.image, values.tiles)
    if not found:
        raise blazepose.NoPersonFound(f"no person found in {values.image}")
    if values.json:
        document = pose_files.openpose_document([person.keypoints_xyc for person in found])
        _write(values.json, "--json", lambda path: _write_json(path, document))
    if values.draw:
        from PIL import Image

        labels = [str(index) for index in range(len(found))]
        picture = Image.fromarray(drawing.draw_people(image, found, labels))
        _write(values.draw, "--draw", lambda path: picture.save(path, format="PNG"))
    if len(found) == 1:
        joints = int((found[0].keypoints_xyc[:, 2] > 0).sum())
        print(f"{joints} of 18 joints found in {values.image}")
        return
    print(f"{len(found)} people found in {values.image} (largest first):")
    for index, person in enumerate(found):
        x0, y0, x1, y1 = (round(v) for v in person.box_xyxy)
        joints = int((person.keypoints_xyc[:, 2] > 0).sum())
        print(f"  {index}: {joints} of 18 joints, box x {x0}..{x1}, y {y0}..{y1}")


def _write_json(path, document) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(document, f)
        f.write("\n")


def _write(path, flag, writer) -> None:
    """``writer(temporary)`` writes ``path`` whole or not at all (:mod:`pg2_tf.core.atomic`), its
    folder made first; DataError naming ``flag`` when it fails."""
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with atomic.replacing(path) as temporary:
            writer(temporary)
    except OSError as error:
        raise DataError(f"cannot write {flag}={path}: {error.strerror or error}") from None


def run() -> None:
    """Console entry point ``pg2-keypoints``: parses the flags, runs :func:`main`, exits 2 with one
    line on a ConfigError or DataError."""
    from pg2_tf import cli

    cli.console_entry(define_flags, main)


if __name__ == "__main__":
    run()
