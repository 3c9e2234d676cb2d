"""The scores of a result folder under each protocol: ``pg2`` (the paper's score.py) or ``patn``.

:func:`score_result_dir` computes the ``pg2`` protocol's numbers (and FID), :func:`score_patn`
the ``patn`` protocol's, both from a folder :mod:`pg2_tf.scoring.result_folders` reads; the
protocols themselves are defined in :mod:`pg2_tf.scoring.protocols`. IS and FID need the
2015-12-05 Inception graph (the argument, or ``$PG2_INCEPTION_GRAPH``); without it they are
``None`` and a note says where to get it. FID compares the generated images with the folder's
targets, or with the images of a reference folder.

Rule: computes and returns numbers; writes and prints nothing (:mod:`pg2_tf.scoring.reports`
writes them) and reads no flags, though its errors name the ``pg2-score`` flags they come from.
"""

import os

import numpy as np

from pg2_tf.core.errors import DataError
from pg2_tf.records import annotations
from pg2_tf.scoring import metrics, protocols, result_folders

INCEPTION_GRAPH_ENV = "PG2_INCEPTION_GRAPH"
# score_mask.py read the masks of the test_result/mask folder (the mask saved beside x), not
# mask_target: kept as the default so the published mask-SSIM / mask-IS can be reproduced.
DEFAULT_MASK_FOLDER = "mask"


def missing_inception_message() -> str:
    """The note that IS and FID were skipped for want of the Inception graph.

    Returns:
        One line saying where to download the graph and how to pass it.
    """
    return (
        f"Inception graph not given: IS and FID skipped. Download {metrics.INCEPTION_URL} and "
        f"pass --inception_graph=/path/to/inception-2015-12-05.tgz (or its "
        f"{metrics.INCEPTION_PB_NAME}), or set ${INCEPTION_GRAPH_ENV}."
    )


def resolve_inception_graph(inception_graph: str | None) -> str | None:
    """Where the Inception graph is: the argument, else ``$PG2_INCEPTION_GRAPH``.

    Args:
        inception_graph: ``--inception_graph``'s path (``.tgz`` or ``.pb``), or None.

    Returns:
        The path, or None when neither gives one.

    Raises:
        DataError: a path was given but is not a file.
    """
    if inception_graph:
        path, origin = inception_graph, "--inception_graph"
    elif os.environ.get(INCEPTION_GRAPH_ENV):
        path, origin = os.environ[INCEPTION_GRAPH_ENV], f"${INCEPTION_GRAPH_ENV}"
    else:
        return None
    if not os.path.isfile(path):
        raise DataError(
            f"{origin}={path!r} is not a file; download {metrics.INCEPTION_URL} and point "
            f"{origin} at the .tgz or at the {metrics.INCEPTION_PB_NAME} inside it"
        )
    return path


def score_result_dir(
    result_dir: str,
    *,
    mask: bool = False,
    inception_graph: str | None = None,
    mask_folder: str = DEFAULT_MASK_FOLDER,
    fid_reference: str | None = None,
    inception_runs: protocols.InceptionRuns | None = None,
) -> dict:
    """Computes the paper's scores (and FID) of a result folder (the ``pg2`` protocol).

    Args:
        result_dir: a test_result folder with ``G/``, ``x_target/`` (and ``mask_folder/`` with
            ``mask``), or a Pose-Transfer folder of ``_vis.png`` strips (not with ``mask``).
        mask: score the masked images (``score_mask.py``): both images multiplied by ``mask/255``
            and truncated to ``uint8``; IS on masked G, FID masked G vs masked x_target.
        inception_graph: path of ``inception-2015-12-05.tgz`` or ``classify_image_graph_def.pb``;
            ``None`` reads ``$PG2_INCEPTION_GRAPH``; without either, IS and FID are ``None``.
        mask_folder: sub-folder of the mask images used when ``mask`` is set.
        fid_reference: folder of FID reference images (as read, unmasked); ``None``: the
            (masked) targets.
        inception_runs: Inception outputs shared with other scoring calls of the same images
            (:class:`pg2_tf.scoring.protocols.InceptionRuns`), or ``None``.

    Returns:
        ``{"num_images": int, "ssim_mean", "ssim_std", "psnr_mean", "psnr_std", "l1_mean",
        "l1_std", "l2_mean", "l2_std": float, "is_mean", "is_std", "fid": float or None,
        "inception_graph": path or None, "notes": list of str}`` (notes say why IS/FID are
        missing). L1/L2 are on the 0..255 scale; PSNR in dB (``inf`` for identical images).

    Raises:
        DataError: missing folders or graph file, unequal image counts, no images.
    """
    graph_path = resolve_inception_graph(inception_graph)
    result = result_folders.load(result_dir, mask_folder=mask_folder if mask else None)
    generated, targets = result.generated, result.targets
    if result.masks is not None:
        generated = [metrics.apply_mask(g, m) for g, m in zip(generated, result.masks, strict=True)]
        targets = [metrics.apply_mask(t, m) for t, m in zip(targets, result.masks, strict=True)]

    scores: dict = {"num_images": len(generated)}
    scores.update(metrics.pair_scores(generated, targets))
    inception, notes = protocols.run_inception(
        graph_path,
        is_images=generated,
        fid_images=generated,
        fid_reference=read_fid_reference(fid_reference) if fid_reference else targets,
        runs=inception_runs,
    )
    scores.update(
        {
            "is_mean": inception["IS"],
            "is_std": inception["IS_std"],
            "fid": inception["FID"],
            "inception_graph": graph_path,
        }
    )
    if graph_path is None:
        notes.insert(0, missing_inception_message())
    scores["notes"] = notes
    return scores


def read_fid_reference(folder: str) -> list[np.ndarray]:
    """Reads the FID reference images.

    Args:
        folder: the ``--fid_reference`` folder of ``.png``/``.jpg`` images.

    Returns:
        The images, RGB uint8 [H, W, 3] each, in sorted name order.

    Raises:
        DataError: naming ``--fid_reference``, when folder is not a folder or holds no image.
    """
    if not os.path.isdir(folder):
        raise DataError(
            f"--fid_reference={folder!r} is not a folder; give a folder of .png/.jpg images "
            "(e.g. the training images)"
        )
    return result_folders.read_folder_images(folder)


def score_patn(
    result_dir: str,
    *,
    inception_graph: str | None = None,
    fid_reference: str | None = None,
    annotation_path: str | None = None,
    inception_runs: protocols.InceptionRuns | None = None,
) -> dict:
    """The ``patn`` protocol's numbers of a result folder.

    Args:
        result_dir: a test_result folder or a Pose-Transfer folder of ``_vis.png`` strips.
        inception_graph: path of the Inception graph; ``None`` reads ``$PG2_INCEPTION_GRAPH``;
            without either, IS and FID are ``None``.
        fid_reference: folder of FID reference images; ``None``: the folder's targets.
        annotation_path: the target keypoints for the masked scores; ``None``:
            ``result_dir/pose_target-annotation.csv`` when it exists.
        inception_runs: Inception outputs shared with other scoring calls, or ``None``.

    Returns:
        The numbers of :func:`pg2_tf.scoring.protocols.score_patn`, plus ``layout`` (the
        folder's) and ``annotations`` (the file used, or None).

    Raises:
        DataError: unreadable folder, graph, reference or annotation file.
    """
    graph_path = resolve_inception_graph(inception_graph)
    result = result_folders.load(result_dir)
    default_annotations = os.path.join(result_dir, annotations.TARGET_ANNOTATIONS)
    if annotation_path is None and os.path.isfile(default_annotations):
        annotation_path = default_annotations
    numbers = protocols.score_patn(
        result,
        annotation_path=annotation_path,
        graph_path=graph_path,
        fid_reference=read_fid_reference(fid_reference) if fid_reference else None,
        inception_runs=inception_runs,
    )
    numbers["layout"] = result.layout
    numbers["annotations"] = annotation_path
    if graph_path is None:
        numbers["notes"].insert(0, missing_inception_message())
    return numbers
