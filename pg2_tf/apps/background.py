"""The source photo's background kept: the source person removed and inpainted, G2's person pasted.

``--background=source`` (pg2-generate, pg2-animate, the page) replaces the background G2 invents
with the source crop's own:

1. The source person's mask (:func:`removal_mask`): BlazePose's person segmentation (the landmark
   model's segmentation output, :meth:`pg2_tf.people.blazepose.KeypointEstimator.segmentation_in_roi`)
   run on the model-size crop itself, its connected parts that touch PG2's morphological pose
   mask of the source keypoints (:func:`pg2_tf.core.pose.pose_mask`, holes filled) united with
   that mask, then grown by :data:`REMOVAL_GROW` pixels per 128 rows. Measured against labelme-examples' person polygons
   (docs/photos.md), the segmentation finds far more of the person than PG2's mask, and the union
   more than either; for removal what the mask misses matters (it stays as a ghost).
2. The hole inpainted with scikit-image's biharmonic inpainting
   (:func:`skimage.restoration.inpaint_biharmonic`): :func:`source_background`.
3. G2's output pasted with a soft mask (:func:`paste_alpha`, :func:`paste`): 1 on the target
   pose's own mask (PG2's, holes filled) and up to :data:`CORE_GROW` pixels from it, falling
   linearly to 0 over the next :data:`FEATHER` + 1 pixels. Where the mask is 0 the output is the inpainted background
   exactly, where it is 1 G2's output exactly.

An animation computes the background once (the source does not move), so its pixels are the same
in every frame.

Rule: plain arrays in and out (numpy, scipy, scikit-image); the estimator is passed in.
"""

import dataclasses

import numpy as np
from scipy import ndimage

from pg2_tf.core import pose
from pg2_tf.core.errors import ConfigError, DataError

# Grown sizes, in pixels per 128 rows of the model's frame (Market 128x64: as given; 256x256
# DeepFashion: doubled).
REMOVAL_GROW = 2  # the removed source person's mask
CORE_GROW = 3  # the pasted person's mask, where G2's output is taken whole
FEATHER = 4  # then G2's output fades into the background over this many pixels
# The landmark model looks at a square this much larger than the crop's longer side (MediaPipe's
# 1.25 round a person's box).
SEGMENTATION_ROI_SCALE = 1.25
BACKGROUND_CHOICES = ("generated", "source")


def _pixels(size: float, img_H: int) -> int:
    return max(1, round(size * img_H / 128))


def check_background(value: str) -> str:
    """``--background``, checked.

    Args:
        value: the flag's value.

    Returns:
        ``generated`` or ``source``.

    Raises:
        ConfigError: anything else (one line naming the flag).
    """
    if value not in BACKGROUND_CHOICES:
        raise ConfigError(f"--background={value} must be one of {', '.join(BACKGROUND_CHOICES)}")
    return value


def segmentation_mask(image, estimator) -> np.ndarray:
    """BlazePose's person segmentation of a model-size crop.

    Args:
        image: uint8 ``[img_H, img_W, 3]``, the person's crop.
        estimator: a :class:`pg2_tf.people.blazepose.KeypointEstimator`.

    Returns:
        bool ``[img_H, img_W]``: True where the segmentation's logit is above 0 (the model's
        256x256 output over a square of :data:`SEGMENTATION_ROI_SCALE` x the crop's longer side,
        centred on the crop, sampled bilinearly at each pixel centre).
    """
    img_H, img_W = image.shape[:2]
    side = SEGMENTATION_ROI_SCALE * max(img_H, img_W)
    logits = estimator.segmentation_in_roi(image, ((img_W / 2, img_H / 2), side, 0.0))
    size = logits.shape[0]
    rows = ((np.arange(img_H) + 0.5 - (img_H - side) / 2) / side) * size - 0.5
    cols = ((np.arange(img_W) + 0.5 - (img_W - side) / 2) / side) * size - 0.5
    grid = np.stack(np.meshgrid(rows, cols, indexing="ij"))
    return ndimage.map_coordinates(logits, grid, order=1, mode="nearest") > 0


def filled_pose_mask(keypoints_rc, img_H: int, img_W: int) -> np.ndarray:
    """PG2's body mask of a pose with its holes filled (the torso's inside) and every joint's disc.

    Args:
        keypoints_rc: float ``[18, 2]`` (row, col), -1 missing, in the model's frame.
        img_H, img_W: the model's size.

    Returns:
        bool ``[img_H, img_W]``.
    """
    mask = pose.pose_mask(keypoints_rc, img_H, img_W).astype(bool)
    missing = pose.missing_joints(keypoints_rc)
    in_limbs = {
        joint for limb in pose.MASK_LIMBS if not missing[list(limb)].any() for joint in limb
    }
    alone = [j for j in range(pose.NUM_KEYPOINTS) if not missing[j] and j not in in_limbs]
    if alone:  # a joint without a limb drawn: its disc (the pose map's)
        mask |= pose.render_pose_map(
            np.where(np.isin(np.arange(pose.NUM_KEYPOINTS), alone)[:, None], keypoints_rc, -1),
            img_H, img_W,
        ).max(axis=-1) > 0  # fmt: skip
    return ndimage.binary_fill_holes(mask)


def removal_mask(image, source_rc, estimator) -> np.ndarray:
    """The source person's pixels, to be removed: segmentation | PG2's mask, grown.

    Args:
        image: uint8 ``[img_H, img_W, 3]``, the source crop.
        source_rc: float ``[18, 2]`` (row, col), -1 missing: the source person in the crop.
        estimator: a :class:`pg2_tf.people.blazepose.KeypointEstimator`, or None (PG2's mask
            alone).

    Returns:
        bool ``[img_H, img_W]``; empty when the pose has no joint.
    """
    img_H, img_W = image.shape[:2]
    mask = filled_pose_mask(source_rc, img_H, img_W)
    if estimator is not None and mask.any():
        # The segmentation also answers where there is nobody (half of a plain grey crop is
        # "person"): only its parts that touch the person's own joints' mask are taken.
        parts, _ = ndimage.label(segmentation_mask(image, estimator))
        touching = np.unique(parts[mask & (parts > 0)])
        mask |= np.isin(parts, touching)
    return ndimage.binary_dilation(mask, iterations=_pixels(REMOVAL_GROW, img_H))


@dataclasses.dataclass(frozen=True)
class SourceBackground:
    """The source crop with its person removed (:func:`source_background`)."""

    image: np.ndarray  # uint8 [img_H, img_W, 3]: the inpainted background
    removed: np.ndarray  # bool [img_H, img_W]: the pixels that were inpainted


def source_background(image, source_rc, estimator, flag: str = "--image") -> SourceBackground:
    """The source crop's background: its person masked (:func:`removal_mask`) and inpainted.

    Args:
        image: uint8 ``[img_H, img_W, 3]``, the source crop.
        source_rc: float ``[18, 2]`` (row, col), -1 missing: the source person in the crop.
        estimator: a :class:`pg2_tf.people.blazepose.KeypointEstimator`, or None.
        flag: the flag naming the source, for the error message.

    Returns:
        :class:`SourceBackground`; outside ``removed`` its pixels are the crop's exactly.

    Raises:
        DataError: the mask is empty (no person to remove) or covers the whole crop (nothing to
            inpaint from); one line naming ``flag`` and ``--background``.
    """
    from skimage.restoration import inpaint_biharmonic

    image = np.asarray(image, np.uint8)
    mask = removal_mask(image, source_rc, estimator)
    if not mask.any():
        raise DataError(
            f"{flag}: no person found to remove from the background; give --background=generated "
            "or a photo where the person is seen"
        )
    if mask.all():
        raise DataError(
            f"{flag}: the person fills the whole crop, no background is left to keep; give "
            "--background=generated"
        )
    filled = inpaint_biharmonic(image, mask, channel_axis=-1)  # floats in [0, 1]
    background = np.where(mask[..., None], np.rint(np.clip(filled, 0, 1) * 255), image)
    return SourceBackground(background.astype(np.uint8), mask)


def paste_alpha(target_rc, img_H: int, img_W: int) -> np.ndarray:
    """The soft mask G2's output is pasted with, from the pose the model was given.

    Args:
        target_rc: float ``[18, 2]`` (row, col), -1 missing, in the model's frame.
        img_H, img_W: the model's size.

    Returns:
        float32 ``[img_H, img_W]`` in [0, 1]: at Euclidean distance ``d`` from
        :func:`filled_pose_mask`, exactly 1 up to :data:`CORE_GROW` pixels (per 128 rows), then
        ``1 - (d - CORE_GROW) / (FEATHER + 1)``, exactly 0 from ``CORE_GROW + FEATHER + 1``
        pixels on; all 0 for a pose without joints.
    """
    body = filled_pose_mask(target_rc, img_H, img_W)
    if not body.any():
        return np.zeros((img_H, img_W), np.float32)
    beyond = ndimage.distance_transform_edt(~body) - _pixels(CORE_GROW, img_H)
    feather = _pixels(FEATHER, img_H) + 1
    return np.clip(1 - beyond / feather, 0, 1).astype(np.float32)


def paste(background, generated, alpha) -> np.ndarray:
    """G2's output over the background, through a soft mask.

    Args:
        background: uint8 ``[H, W, 3]``.
        generated: uint8 ``[H, W, 3]`` (G2's output).
        alpha: float ``[H, W]`` in [0, 1] (:func:`paste_alpha`).

    Returns:
        uint8 ``[H, W, 3]``: ``round(background + alpha * (generated - background))``; equal to
        ``background`` where alpha is 0 and to ``generated`` where it is 1.
    """
    background = np.asarray(background, np.float32)
    mixed = background + alpha[..., None] * (np.asarray(generated, np.float32) - background)
    return np.rint(mixed).astype(np.uint8)
