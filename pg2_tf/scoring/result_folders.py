"""The result folders the scorer reads: this project's test_result/ and Pose-Transfer's _vis strips.

Two layouts are accepted (numpy + Pillow, no TensorFlow):

* ``test_result`` (written by this project's test mode, and by the original PG2): ``G/*.png`` and
  ``x_target/*.png`` paired by file name; optionally mask images (``mask/``, ``mask_target/``,
  ``mask * 255``) and ``pose_target-annotation.csv`` (the target keypoints, keyed by file name).
* ``pose_transfer`` (Pose-Transfer / PATN ``results/<name>/test_latest/images``, and methods that
  write the same): one ``<from>___<to>_vis.png`` (or ``.jpg``) per pair, a strip of five panels of
  equal width: input | input pose | target | target pose | generated. The pair's name for the
  annotation file is ``<to>``, the target image's name, as Pose-Transfer's getMetrics looked it up.

Images are read as RGB ``uint8``; files are taken in sorted name order.
"""

import dataclasses
import os

import numpy as np
from PIL import Image

from pg2_tf.core.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg")
VIS_SUFFIXES = ("_vis.png", "_vis.jpg")
VIS_SEPARATOR = "___"
VIS_PANELS = 5
TEST_RESULT = "test_result"
POSE_TRANSFER = "pose_transfer"


@dataclasses.dataclass
class ResultImages:
    """The paired images of a result folder.

    Attributes:
        layout: :data:`TEST_RESULT` or :data:`POSE_TRANSFER`.
        names: per pair, the file name (test_result) or the ``<from>___<to>_vis.png`` name.
        target_names: per pair, the key of the target's pose in an annotation file: the file
            name (test_result) or ``<to>`` (pose_transfer).
        generated, targets: per pair, RGB ``uint8`` ``[H, W, 3]``.
        masks: per pair, ``uint8`` ``[H, W]`` (mask * 255) from the mask folder, or ``None``.
    """

    layout: str
    names: list[str]
    target_names: list[str]
    generated: list[np.ndarray]
    targets: list[np.ndarray]
    masks: list[np.ndarray] | None = None


def image_names(folder: str) -> list[str]:
    """The image file names of a folder.

    Args:
        folder: a folder path.

    Returns:
        Its ``.png``/``.jpg`` file names, sorted.

    Raises:
        DataError: the folder does not exist.
    """
    if not os.path.isdir(folder):
        raise DataError(f"folder {folder!r} not found; run the test mode to write it first")
    return sorted(name for name in os.listdir(folder) if name.lower().endswith(IMAGE_SUFFIXES))


def read_image(path: str, mode: str = "RGB") -> np.ndarray:
    """Reads an image file.

    Args:
        path: the image file.
        mode: the Pillow mode to convert to: ``"RGB"`` or ``"L"``.

    Returns:
        ``uint8`` ``[H, W, 3]`` for RGB, ``[H, W]`` for L, in 0..255.

    Raises:
        DataError: the file cannot be read as an image.
    """
    try:
        with Image.open(path) as image:
            if image.mode != mode:
                image = image.convert(mode)
            return np.asarray(image, dtype=np.uint8)
    except OSError as error:
        raise DataError(f"cannot read image {path!r}: {error}") from error


def read_folder_images(folder: str) -> list[np.ndarray]:
    """Reads every image of a folder (e.g. an FID reference set).

    Args:
        folder: a folder of ``.png``/``.jpg`` images.

    Returns:
        The images as RGB ``uint8`` ``[H, W, 3]``, in sorted name order.

    Raises:
        DataError: the folder does not exist or holds no image.
    """
    names = image_names(folder)
    if not names:
        raise DataError(f"no .png/.jpg images in {folder!r}")
    return [read_image(os.path.join(folder, name)) for name in names]


def vis_names(folder: str) -> list[str]:
    """The Pose-Transfer strips of a folder.

    Args:
        folder: a folder path.

    Returns:
        Its ``*_vis.png`` / ``*_vis.jpg`` names, sorted (none when it is not a folder).
    """
    if not os.path.isdir(folder):
        return []
    return sorted(name for name in os.listdir(folder) if name.endswith(VIS_SUFFIXES))


def split_vis_name(name: str) -> tuple[str, str]:
    """Splits a Pose-Transfer strip's name into its two image names.

    Args:
        name: ``'<from>___<to>_vis.png'`` (or ``.jpg``).

    Returns:
        ``(from, to)``.

    Raises:
        DataError: any other name.
    """
    stem = name[: -len("_vis.png")] if name.endswith(VIS_SUFFIXES) else None
    parts = stem.split(VIS_SEPARATOR) if stem is not None else []
    if len(parts) != 2:
        raise DataError(
            f"{name!r} is not a Pose-Transfer result name '<from>{VIS_SEPARATOR}<to>_vis.png'"
        )
    return parts[0], parts[1]


def split_vis_strip(strip: np.ndarray) -> dict[str, np.ndarray]:
    """The five panels of a Pose-Transfer ``_vis`` strip.

    Args:
        strip: the strip image, ``[H, 5 w, 3]``.

    Returns:
        ``{"input", "target", "generated"}``: panels 0, 2 and 4, each ``[H, w, 3]`` with
        ``w = W // 5`` (as getMetrics: ``int(W / 5)``).
    """
    width = strip.shape[1] // VIS_PANELS
    if width == 0:
        raise DataError(f"a _vis strip {strip.shape[1]} pixels wide holds no five panels")
    return {
        "input": strip[:, :width],
        "target": strip[:, 2 * width : 3 * width],
        "generated": strip[:, 4 * width : 5 * width],
    }


def _load_test_result(result_dir: str, mask_folder: str | None) -> ResultImages:
    folders = ["G", "x_target"] + ([mask_folder] if mask_folder else [])
    names = {folder: image_names(os.path.join(result_dir, folder)) for folder in folders}
    generated_names = names["G"]
    if not generated_names:
        raise DataError(f"no .png/.jpg images in {os.path.join(result_dir, 'G')!r}")
    for folder in folders[1:]:
        if len(names[folder]) != len(generated_names):
            raise DataError(
                f"{len(generated_names)} images in G/ but {len(names[folder])} in {folder}/ of "
                f"{result_dir!r}; both must come from the same test run"
            )
        if names[folder] != generated_names:
            missing = sorted(set(generated_names) - set(names[folder]))[:3]
            raise DataError(
                f"file names of G/ and {folder}/ in {result_dir!r} differ (e.g. {missing} not "
                f"in {folder}/); both must come from the same test run"
            )

    def read_all(folder: str, mode: str) -> list[np.ndarray]:
        return [read_image(os.path.join(result_dir, folder, n), mode) for n in generated_names]

    images = ResultImages(
        layout=TEST_RESULT,
        names=generated_names,
        target_names=list(generated_names),
        generated=read_all("G", "RGB"),
        targets=read_all("x_target", "RGB"),
        masks=read_all(mask_folder, "L") if mask_folder else None,
    )
    _check_pair_sizes(result_dir, images, mask_folder)
    return images


def _check_pair_sizes(result_dir: str, images: ResultImages, mask_folder: str | None) -> None:
    """DataError naming the first file whose G/, x_target/ (and mask) images differ in size."""
    for index, name in enumerate(images.names):
        sizes = {
            "G": images.generated[index].shape[:2],
            "x_target": images.targets[index].shape[:2],
        }
        if images.masks is not None:
            sizes[mask_folder] = images.masks[index].shape[:2]
        if len(set(sizes.values())) > 1:
            described = ", ".join(f"{folder}/ {h}x{w}" for folder, (h, w) in sizes.items())
            raise DataError(
                f"{os.path.join(result_dir, '{' + ','.join(sizes) + '}', name)} differ in size "
                f"({described}); all must come from the same test run"
            )


def _load_pose_transfer(result_dir: str, names: list[str]) -> ResultImages:
    generated, targets, target_names = [], [], []
    for name in names:
        _, to = split_vis_name(name)
        panels = split_vis_strip(read_image(os.path.join(result_dir, name)))
        generated.append(panels["generated"])
        targets.append(panels["target"])
        target_names.append(to)
    return ResultImages(POSE_TRANSFER, names, target_names, generated, targets)


def load(result_dir: str, *, mask_folder: str | None = None) -> ResultImages:
    """Reads a result folder of either layout (see the module docstring).

    Args:
        result_dir: a test_result folder (holding ``G/``) or a folder of ``*_vis.png`` strips.
        mask_folder: test_result only: the sub-folder of mask images to read, or ``None``.

    Returns:
        The pairs as a :class:`ResultImages`.

    Raises:
        DataError: not a folder, neither layout, unpaired or unreadable images, a mask folder
            asked of a Pose-Transfer folder.
    """
    if not os.path.isdir(result_dir):
        raise DataError(
            f"--result_dir={result_dir!r} is not a folder; give the test_result folder written "
            "by the test mode (it holds G/ and x_target/) or a folder of Pose-Transfer "
            "<from>___<to>_vis.png strips"
        )
    if os.path.isdir(os.path.join(result_dir, "G")):
        return _load_test_result(result_dir, mask_folder)
    names = vis_names(result_dir)
    if not names:
        raise DataError(
            f"{result_dir!r} holds neither G/ (a test_result folder) nor <from>___<to>_vis.png "
            "strips (Pose-Transfer results); give one of those"
        )
    if mask_folder:
        raise DataError(
            f"{result_dir!r} is a Pose-Transfer results folder: it has no {mask_folder}/ mask "
            "images; its masked scores need --protocol=patn with --annotations"
        )
    return _load_pose_transfer(result_dir, names)
