"""Score protocols: how later papers computed "SSIM", "L1", "IS" and their masked variants.

Two protocols, named for the code that defines them:

``pg2``
    The original PG2 ``score.py`` / ``score_mask.py`` (computed by :mod:`pg2_tf.scoring.metrics`): SSIM of
    RGB uint8 G vs x_target with a uniform 7x7 window, sample covariance and range 255; L1 the
    mean absolute difference on the 0..255 scale; masks from the mask images (``mask * 255``),
    both images multiplied by ``mask / 255`` and truncated to uint8.
``patn``
    Pose-Transfer's ``tool/getMetrics_market.py`` / ``getMetrics_fashion.py`` (also used, as
    ``compute_scores``, by Deformable GAN): SSIM of RGB uint8 target vs generated with Gaussian
    weights (sigma 1.5), population covariance, and ``data_range = generated.max() -
    generated.min()`` of each generated image; L1 ``mean |2 (t/255 - .5) - 2 (g/255 - .5)|``
    (the [-1, 1] scale); Market masks drawn from the TARGET keypoints (:func:`patn_mask`), both
    images multiplied by the 0/1 mask; DeepFashion images 176 px wide padded with 40 white
    columns each side first (:func:`add_bounding`), and no masked scores.

Both compute the Inception Score with the 2015-12-05 graph (:class:`pg2_tf.scoring.metrics.InceptionGraph`,
10 splits) on the generated images (masked ones for mask_IS), and FID on its pool_3 features of
the generated images as read from the folder against a reference set: the folder's targets, or
the images of ``fid_reference`` (e.g. the training images, as GFLA and PIDM did).

Rule: each protocol computes exactly what the code it is named for computed, settings and
truncations included; a departure is a new protocol, not a change to one of these.
"""

import hashlib
import math

import numpy as np
from skimage.draw import disk, polygon
from skimage.morphology import dilation, erosion

from pg2_tf.core import datasets
from pg2_tf.core.errors import DataError
from pg2_tf.records import annotations
from pg2_tf.scoring import metrics, result_folders

PG2 = "pg2"
PATN = "patn"
PROTOCOLS = (PG2, PATN)
JSON_KEYS = ("protocol", "SSIM", "L1", "mask_SSIM", "IS", "mask_IS", "FID", "num_images")

# scikit-image's Gaussian window: 2 * round(3.5 * sigma) + 1 = 11 taps for sigma 1.5.
PATN_WINDOW = 11
PATN_SIGMA = 1.5
PATN_MASK_RADIUS = 4
PATN_CLOSING = np.ones((5, 5), bool)  # skimage.morphology.square(5)
PATN_BOUND = 40
PATN_FASHION_WIDTH = datasets.DEEPFASHION.patn_width  # Pose-Transfer's DeepFashion: 256 x 176
# produce_ma_mask's limbs (joint pairs, 0-based): the skeleton plus the hips-shoulders
# cross-links and the ears, so that the closed mask covers the torso and head.
PATN_MASK_LIMBS = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12),
    (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17), (1, 16), (1, 17), (8, 11), (11, 5),
    (8, 2), (16, 17),
)  # fmt: skip


def patn_ssim(generated: np.ndarray, target: np.ndarray) -> float:
    """SSIM as Pose-Transfer's getMetrics: ``compare_ssim(target, generated, gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False, multichannel=True, data_range=generated.max() -
    generated.min())``, computed by scikit-image's ``structural_similarity``.

    Args:
        generated, target: RGB ``uint8`` ``[H, W, 3]`` (H, W >= 11), same shape.

    Returns:
        The mean over the three channels of the per-channel mean SSIM (float64 arithmetic).
    """
    return metrics.checked_ssim(
        generated,
        target,
        PATN_WINDOW,
        target_first=True,
        gaussian_weights=True,
        sigma=PATN_SIGMA,
        use_sample_covariance=False,
        data_range=None,
    )


def patn_l1(generated: np.ndarray, target: np.ndarray) -> float:
    """Pose-Transfer's L1: ``mean |2 (target/255 - 0.5) - 2 (generated/255 - 0.5)|`` in float64.

    Args:
        generated, target: ``uint8`` images of the same shape.

    Returns:
        A float in [0, 2] (the [-1, 1] image scale; about 2/255 of the pg2 L1).
    """
    metrics.check_pair(generated, target)
    return float(np.abs(2 * (target / 255.0 - 0.5) - 2 * (generated / 255.0 - 0.5)).mean())


def add_bounding(image: np.ndarray, bound: int = PATN_BOUND) -> np.ndarray:
    """getMetrics_fashion's ``addBounding``: ``bound`` white (255) columns left and right.

    Args:
        image: uint8 ``[H, W, C]``.
        bound: columns added on each side.

    Returns:
        uint8 ``[H, W + 2 bound, C]``.
    """
    height, width, channels = image.shape
    padded = np.full((height, width + 2 * bound, channels), 255, np.uint8)
    padded[:, bound : bound + width] = image
    return padded


def _missing(joint: np.ndarray) -> bool:
    return joint[0] == -1 or joint[1] == -1


def patn_mask(keypoints_rc: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Pose-Transfer's ``produce_ma_mask``: the body mask of a pose, bool ``[H, W]``.

    For each limb of :data:`PATN_MASK_LIMBS` with both joints present, the rectangle of half
    width 4 around the segment (``skimage.draw.polygon`` of its four corners); a disc of radius
    4 (``skimage.draw.disk``) on every present joint; then a closing with a 5x5 square
    (dilation, then erosion; scikit-image's, whose borders reflect).

    Args:
        keypoints_rc: ``[18, 2]`` (row, col), -1 in either coordinate for a missing joint.
        shape: ``(H, W)`` of the image.

    Returns:
        bool ``[H, W]``, True on the body.

    A limb whose two joints coincide draws no rectangle (Pose-Transfer's code divides by its
    zero length there); the joint's disc still covers it.
    """
    keypoints_rc = np.asarray(keypoints_rc, np.float64)
    mask = np.zeros(shape, bool)
    for start, end in PATN_MASK_LIMBS:
        if _missing(keypoints_rc[start]) or _missing(keypoints_rc[end]):
            continue
        along = keypoints_rc[start] - keypoints_rc[end]
        length = np.linalg.norm(along)
        if length == 0:
            continue
        normal = PATN_MASK_RADIUS * np.array([-along[1], along[0]]) / length
        corners = np.array(
            [
                keypoints_rc[start] + normal,
                keypoints_rc[start] - normal,
                keypoints_rc[end] - normal,
                keypoints_rc[end] + normal,
            ]
        )
        rows, cols = polygon(corners[:, 0], corners[:, 1], shape=shape)
        mask[rows, cols] = True
    for joint in keypoints_rc:
        if _missing(joint):
            continue
        rows, cols = disk((joint[0], joint[1]), PATN_MASK_RADIUS, shape=shape)
        mask[rows, cols] = True
    return erosion(dilation(mask, PATN_CLOSING), PATN_CLOSING)


def patn_dataset(image_shape: tuple[int, ...]) -> str:
    """Which getMetrics script applies (:func:`pg2_tf.core.datasets.for_patn_images`).

    Args:
        image_shape: the shape of a generated image, ``(H, W, 3)``.

    Returns:
        The dataset's kind: ``"market"`` or ``"deepfashion"``.
    """
    return datasets.for_patn_images(image_shape).kind


def _mean(values) -> float | None:
    return float(np.mean(values)) if len(values) else None


class InceptionRuns:
    """The Inception outputs of the image lists already run, keyed by the graph and the images'
    content, so that the same images scored under several protocols or variants (test mode's
    pg2 and patn, ``pg2-score --json``'s two variants against one ``--fid_reference``) go
    through the network once. Pass one instance to every scoring call that should share it."""

    def __init__(self):
        self._outputs: dict = {}

    @staticmethod
    def _key(graph_path: str, images) -> tuple:
        digest = hashlib.sha256()
        for image in images:
            array = np.ascontiguousarray(image)
            digest.update(f"{array.dtype}{array.shape}".encode())
            digest.update(array.tobytes())
        return graph_path, len(images), digest.hexdigest()

    def run(self, graph_path: str, graph, images, *, probabilities: bool = True):
        """``graph.run(images)`` (:meth:`pg2_tf.scoring.metrics.InceptionGraph.run`), or its stored
        outputs when these images went through this graph before."""
        key = self._key(graph_path, images)
        stored = self._outputs.get(key)
        if stored is None or (probabilities and stored[0] is None):
            stored = graph.run(images, probabilities=probabilities)
            self._outputs[key] = stored
        return stored


def run_inception(
    graph_path: str | None,
    *,
    is_images,
    fid_images,
    fid_reference,
    masked_is_images=None,
    runs: InceptionRuns | None = None,
) -> tuple[dict, list[str]]:
    """IS of ``is_images`` (and of ``masked_is_images``), FID of ``fid_images`` vs ``fid_reference``.

    Args:
        graph_path: the 2015 Inception graph (``.tgz`` or ``.pb``); ``None`` computes nothing.
        is_images, fid_images, fid_reference: lists of RGB images 0..255, each of one size.
        masked_is_images: optional list for mask_IS.
        runs: outputs shared with other calls (:class:`InceptionRuns`); ``None``: this call's.

    Returns:
        ``({"IS", "IS_std", "mask_IS", "mask_IS_std", "FID"}, notes)``; a value is ``None`` where
        not computed and a note says why (fewer than 10 images for IS, fewer than 2 for FID).
    """
    numbers = dict.fromkeys(("IS", "IS_std", "mask_IS", "mask_IS_std", "FID"))
    notes: list[str] = []
    if graph_path is None:
        return numbers, notes
    runs = runs if runs is not None else InceptionRuns()
    with metrics.InceptionGraph.from_file(graph_path) as graph:
        for prefix, images in (("", is_images), ("mask_", masked_is_images)):
            if images is None:
                continue
            predictions, _ = runs.run(graph_path, graph, images)
            if len(images) < metrics.IS_SPLITS:
                notes.append(
                    f"{prefix}IS skipped: it needs at least {metrics.IS_SPLITS} images "
                    f"({metrics.IS_SPLITS} splits), got {len(images)}"
                )
                continue
            mean, std = metrics.inception_score_from_predictions(predictions, metrics.IS_SPLITS)
            numbers[f"{prefix}IS"], numbers[f"{prefix}IS_std"] = mean, std
        if len(fid_images) >= 2 and len(fid_reference) >= 2:
            # images run before (the IS pass, another variant) are not run again
            _, fid_features = runs.run(graph_path, graph, fid_images, probabilities=False)
            _, reference_features = runs.run(graph_path, graph, fid_reference, probabilities=False)
            numbers["FID"] = metrics.fid_from_features(fid_features, reference_features)
        else:
            notes.append("FID skipped: it needs at least 2 generated and 2 reference images")
    return numbers, notes


def _target_poses(result: result_folders.ResultImages, annotation_path: str) -> list[np.ndarray]:
    poses = annotations.read_annotations(annotation_path)
    missing = [name for name in result.target_names if name not in poses]
    if missing:
        raise DataError(
            f"{annotation_path!r} has no keypoints for {missing[:3]} ({len(missing)} of "
            f"{len(result.target_names)} targets); give the annotation file of these images"
        )
    return [poses[name] for name in result.target_names]


def score_patn(
    result: result_folders.ResultImages,
    *,
    annotation_path: str | None = None,
    graph_path: str | None = None,
    fid_reference: list[np.ndarray] | None = None,
    inception_runs: InceptionRuns | None = None,
) -> dict:
    """The ``patn`` protocol's numbers for a loaded result folder.

    Args:
        result: the pairs (:func:`pg2_tf.scoring.result_folders.load`).
        annotation_path: the annotation file holding each target's keypoints (keyed by
            ``result.target_names``), for the Market masked scores; ``None``: no masked scores.
        graph_path: the Inception graph for IS / mask_IS / FID, or ``None``.
        fid_reference: the FID reference images; ``None``: the folder's targets.
        inception_runs: Inception outputs shared with other scoring calls, or ``None``.

    Returns:
        ``{"protocol": "patn", "dataset", "SSIM", "L1", "mask_SSIM", "IS", "IS_std", "mask_IS",
        "mask_IS_std", "FID", "num_images", "notes"}``; ``None`` where not computed.
    """
    generated, targets = result.generated, result.targets
    dataset = patn_dataset(generated[0].shape)
    notes = []
    fashion_crop = (datasets.DEEPFASHION.img_H, PATN_FASHION_WIDTH)
    if any(image.shape[:2] == fashion_crop for image in generated):
        generated = [add_bounding(i) if i.shape[:2] == fashion_crop else i for i in generated]
        targets = [add_bounding(i) if i.shape[:2] == fashion_crop else i for i in targets]
        notes.append(f"DeepFashion 256x{PATN_FASHION_WIDTH}: {PATN_BOUND} white columns added")
    numbers = {
        "protocol": PATN,
        "dataset": dataset,
        "SSIM": _mean([patn_ssim(g, t) for g, t in zip(generated, targets, strict=True)]),
        "L1": _mean([patn_l1(g, t) for g, t in zip(generated, targets, strict=True)]),
        "mask_SSIM": None,
        "num_images": len(generated),
    }
    masked_generated = None
    if not datasets.by_kind(dataset).patn_masked_scores:
        notes.append("getMetrics_fashion computes no masked scores: mask_SSIM, mask_IS null")
    elif annotation_path is None:
        notes.append("no annotation file (--annotations): mask_SSIM, mask_IS not computed")
    else:
        masks = [
            patn_mask(keypoints_rc, image.shape[:2])[..., np.newaxis]
            for keypoints_rc, image in zip(
                _target_poses(result, annotation_path), generated, strict=True
            )
        ]
        masked_generated = [image * mask for image, mask in zip(generated, masks, strict=True)]
        masked_targets = [image * mask for image, mask in zip(targets, masks, strict=True)]
        numbers["mask_SSIM"] = _mean(
            [patn_ssim(g, t) for g, t in zip(masked_generated, masked_targets, strict=True)]
        )
    inception, inception_notes = run_inception(
        graph_path,
        is_images=generated,
        masked_is_images=masked_generated,
        fid_images=result.generated,  # FID on the images as read, without the bounding
        fid_reference=result.targets if fid_reference is None else fid_reference,
        runs=inception_runs,
    )
    numbers.update(inception)
    numbers["notes"] = notes + inception_notes
    return numbers


def pg2_json(rgb: dict, masked: dict | None) -> dict:
    """The ``pg2`` protocol's numbers under the JSON keys of both protocols.

    Args:
        rgb: the score.py variant's numbers, as returned by
            :func:`pg2_tf.scoring.folder_scores.score_result_dir`.
        masked: the score_mask.py variant's numbers, or ``None``.

    Returns:
        ``{"protocol": "pg2", "SSIM", "L1", "mask_SSIM", "IS", "IS_std", "mask_IS",
        "mask_IS_std", "FID", "num_images", "PSNR", "notes"}``; ``None`` where not computed
        (PSNR also when infinite).
    """
    masked = masked or {}
    return {
        "protocol": PG2,
        "SSIM": rgb["ssim_mean"],
        "L1": rgb["l1_mean"],
        "mask_SSIM": masked.get("ssim_mean"),
        "IS": rgb["is_mean"],
        "IS_std": rgb["is_std"],
        "mask_IS": masked.get("is_mean"),
        "mask_IS_std": masked.get("is_std"),
        "FID": rgb["fid"],
        "num_images": rgb["num_images"],
        "PSNR": rgb["psnr_mean"] if math.isfinite(rgb["psnr_mean"]) else None,
        "notes": list(dict.fromkeys(rgb["notes"] + masked.get("notes", []))),
    }
