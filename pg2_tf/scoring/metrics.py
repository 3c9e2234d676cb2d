"""The paper's image scores (what the original ``score.py`` / ``score_mask.py`` compute), plus FID.

Per image pair (generated ``G`` vs ``x_target``, both RGB ``uint8`` ``[H, W, 3]``): SSIM, PSNR and the
mean L1 / L2 distances, averaged over the test set as mean and (population) standard deviation.
Over the set of generated images: the Inception Score with the 2015-12-05 Inception graph
(``classify_image_graph_def.pb``) and, as an addition the original did not have, the Fréchet
Inception Distance on the ``pool_3`` features of the same graph.

The mask variants (``score_mask.py``) multiply both images by ``mask / 255`` and truncate to
``uint8`` before any score: :func:`apply_mask`.

TensorFlow is imported only when an :class:`InceptionGraph` is built, so the pixel scores work
without it.
"""

import os
import tarfile
from collections.abc import Sequence

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from pg2_tf.core.errors import DataError

INCEPTION_URL = "http://download.tensorflow.org/models/image/imagenet/inception-2015-12-05.tgz"
INCEPTION_PB_NAME = "classify_image_graph_def.pb"
# Tensor / op names inside classify_image_graph_def.pb that the original score used.
INCEPTION_INPUT = "ExpandDims:0"
INCEPTION_POOL3 = "pool_3:0"
INCEPTION_LOGITS_MATMUL = "softmax/logits/MatMul"

IS_SPLITS = 10
INCEPTION_BATCH_SIZE = 100

# compare_ssim(..., multichannel=True) defaults of skimage 0.13/0.14 (the TF1.4 era): uniform 7x7
# window, sample covariance, K1=0.01, K2=0.03, data range from the uint8 dtype (255), SSIM map cropped
# by the window radius before averaging, channels scored separately and averaged. The modern
# structural_similarity computes exactly that with these arguments.
SSIM_WINDOW = 7
UINT8_RANGE = 255.0


def check_pair(generated: np.ndarray, target: np.ndarray, min_size: int = 1) -> None:
    """Checks that two images can be scored against each other.

    Args:
        generated: an image array ``[H, W, ...]``.
        target: the image it is scored against.
        min_size: the fewest pixels high and wide allowed (an SSIM window's size).

    Raises:
        DataError: the shapes differ, or the images are smaller than ``min_size``.
    """
    if generated.shape != target.shape:
        raise DataError(
            f"image shapes differ: generated {generated.shape} vs target {target.shape}; "
            "G and x_target images must have the same size"
        )
    if min(generated.shape[:2]) < min_size:
        height, width = generated.shape[:2]
        raise DataError(
            f"images of {height}x{width} pixels are smaller than the {min_size}x{min_size} SSIM "
            "window; score images of the model's size"
        )


def ssim(generated: np.ndarray, target: np.ndarray) -> float:
    """Mean SSIM of two RGB images, as the original ``compare_ssim(G, x_target, multichannel=True)``.

    Args:
        generated: ``uint8`` ``[H, W, 3]`` in 0..255 (H, W >= 7).
        target: same shape and dtype.

    Returns:
        SSIM in [-1, 1]; 1.0 for identical images.
    """
    return checked_ssim(
        generated,
        target,
        SSIM_WINDOW,
        win_size=SSIM_WINDOW,
        gaussian_weights=False,
        use_sample_covariance=True,
    )


def checked_ssim(
    generated: np.ndarray,
    target: np.ndarray,
    min_size: int,
    target_first: bool = False,
    data_range: float | None = UINT8_RANGE,
    **options,
) -> float:
    """The mean SSIM over the channels of two RGB images, after :func:`check_pair`: scikit-image's
    ``structural_similarity`` with ``options``, the one computation of every SSIM protocol.

    Args:
        generated: ``uint8`` ``[H, W, 3]``.
        target: the image it is scored against, same shape and dtype.
        min_size: the SSIM window's size (the fewest pixels high and wide allowed).
        target_first: pass ``target`` as the first image (the argument order of the protocol).
        data_range: the range of the pixel values, or None for ``generated``'s own
            (``max - min``, taken after the check).
        **options: ``structural_similarity``'s other keyword arguments (window, weights).

    Returns:
        The SSIM as a Python float.
    """
    check_pair(generated, target, min_size)
    if data_range is None:
        data_range = float(int(generated.max()) - int(generated.min()))
    first, second = (target, generated) if target_first else (generated, target)
    return float(
        structural_similarity(first, second, data_range=data_range, channel_axis=-1, **options)
    )


def psnr(generated: np.ndarray, target: np.ndarray) -> float:
    """PSNR in dB with peak 255, as the original ``compare_psnr(im_true=x_target, im_test=G)``.

    Args:
        generated: ``uint8`` ``[H, W, 3]`` in 0..255.
        target: same shape and dtype (the reference image).

    Returns:
        ``10 * log10(255**2 / MSE)``; ``inf`` for identical images (as the original).
    """
    check_pair(generated, target)
    with np.errstate(divide="ignore"):
        return float(peak_signal_noise_ratio(target, generated, data_range=UINT8_RANGE))


def l1_mean_distance(generated: np.ndarray, target: np.ndarray) -> float:
    """Mean absolute difference over all pixels and channels (0..255 scale).

    Args:
        generated, target: arrays of the same shape, any numeric dtype.

    Returns:
        ``sum(|G - x|) / G.size`` in [0, 255] for ``uint8`` images.
    """
    check_pair(generated, target)
    diff = generated.astype(np.float64) - target.astype(np.float64)
    return float(np.sum(np.abs(diff)) / diff.size)


def l2_mean_distance(generated: np.ndarray, target: np.ndarray) -> float:
    """The original's "L2": Euclidean norm of the difference divided by the number of elements.

    Not an RMSE: ``sqrt(sum((G - x)**2)) / G.size`` (kept as the paper's code defines it).

    Args:
        generated, target: arrays of the same shape, any numeric dtype.

    Returns:
        A non-negative float.
    """
    check_pair(generated, target)
    diff = generated.astype(np.float64) - target.astype(np.float64)
    return float(np.sqrt(np.sum(diff**2)) / diff.size)


def apply_mask(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Masks an image as ``score_mask.py`` does: ``uint8(mask[..., None] / 255. * image)``.

    The division happens first, in float64, and the product is truncated (not rounded) to
    ``uint8``; e.g. mask 128 and pixel 201 give 100, mask 147 and pixel 85 give 48.

    Args:
        image: ``uint8`` ``[H, W, 3]`` in 0..255.
        mask: ``uint8`` ``[H, W]`` (or ``[H, W, 1]``), mask * 255, so 0 or 255 for binary masks.

    Returns:
        ``uint8`` ``[H, W, 3]``.
    """
    if mask.ndim == 3 and mask.shape[-1] == 1:
        mask = mask[..., 0]
    if mask.shape != image.shape[:2]:
        raise DataError(f"mask shape {mask.shape} does not match image shape {image.shape}")
    return np.uint8(mask[:, :, np.newaxis] / 255.0 * image)


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    return float(np.mean(values)), float(np.std(values))


def pair_scores(generated: Sequence[np.ndarray], targets: Sequence[np.ndarray]) -> dict:
    """SSIM, PSNR, L1 and L2 over paired image lists, as mean and population std.

    Args:
        generated: N ``uint8`` ``[H, W, 3]`` images (G).
        targets: N ``uint8`` ``[H, W, 3]`` images (x_target), same order.

    Returns:
        ``{"ssim_mean", "ssim_std", "psnr_mean", "psnr_std", "l1_mean", "l1_std", "l2_mean",
        "l2_std"}`` as floats.
    """
    if len(generated) != len(targets):
        raise DataError(f"{len(generated)} generated images but {len(targets)} targets")
    if not generated:
        raise DataError("no images to score")
    per_image = {"ssim": [], "psnr": [], "l1": [], "l2": []}
    for gen, tgt in zip(generated, targets, strict=True):
        per_image["ssim"].append(ssim(gen, tgt))
        per_image["psnr"].append(psnr(gen, tgt))
        per_image["l1"].append(l1_mean_distance(gen, tgt))
        per_image["l2"].append(l2_mean_distance(gen, tgt))
    scores = {}
    for name, values in per_image.items():
        scores[f"{name}_mean"], scores[f"{name}_std"] = _mean_std(values)
    return scores


def inception_score_from_predictions(
    predictions: np.ndarray, splits: int = IS_SPLITS
) -> tuple[float, float]:
    """Inception Score of class probabilities: ``exp(E_x KL(p(y|x) || p(y)))`` per split.

    The N rows are cut, in order, into ``splits`` parts at ``i * N // splits``; the result is the
    mean and population std of the per-part scores (as the original). ``0 * log 0`` counts as 0.

    Args:
        predictions: ``[N, K]`` softmax outputs (rows sum to 1), N >= splits.
        splits: number of parts.

    Returns:
        ``(mean, std)``; the mean is in [1, K].
    """
    predictions = np.asarray(predictions)
    n = predictions.shape[0]
    if n < splits:
        raise DataError(f"the Inception Score needs at least {splits} images, got {n}")
    scores = []
    for i in range(splits):
        part = predictions[i * n // splits : (i + 1) * n // splits]
        marginal = np.mean(part, axis=0, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = part * (np.log(part) - np.log(marginal))
        terms = np.where(part > 0, terms, 0.0)
        scores.append(np.exp(np.mean(np.sum(terms, axis=1))))
    return float(np.mean(scores)), float(np.std(scores))


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample covariance of feature vectors.

    Args:
        features: ``[N, D]`` features, N >= 2.

    Returns:
        ``(mean [D], covariance [D, D])``, float64.

    Raises:
        DataError: fewer than 2 vectors, or not a 2-D array.
    """
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise DataError(f"FID needs at least 2 feature vectors, got shape {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """Fréchet distance of two Gaussians: ``|mu1-mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))``.

    ``Tr((S1 S2)^(1/2))`` is computed as the sum of the square roots of the eigenvalues of the
    symmetric PSD matrix ``S1^(1/2) S2 S1^(1/2)`` (same spectrum as ``S1 S2``), which avoids the
    complex parts and failures ``scipy.linalg.sqrtm`` can give on near-singular covariances.

    Args:
        mu1, mu2: ``[D]`` means.
        sigma1, sigma2: ``[D, D]`` symmetric PSD covariances.

    Returns:
        A float >= 0 (up to rounding).
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1 = np.atleast_2d(sigma1).astype(np.float64)
    sigma2 = np.atleast_2d(sigma2).astype(np.float64)
    eigvals1, eigvecs1 = np.linalg.eigh(sigma1)
    sqrt_sigma1 = (eigvecs1 * np.sqrt(np.clip(eigvals1, 0.0, None))) @ eigvecs1.T
    product = sqrt_sigma1 @ sigma2 @ sqrt_sigma1
    product = (product + product.T) / 2.0
    trace_sqrt = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(product), 0.0, None)))
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt)


def fid_from_features(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """FID between two feature sets (e.g. Inception ``pool_3`` features).

    Args:
        features_a: ``[N, D]`` features, N >= 2.
        features_b: ``[M, D]`` features, M >= 2.

    Returns:
        The Fréchet distance of their Gaussians (:func:`frechet_distance`), >= 0.
    """
    return frechet_distance(*feature_statistics(features_a), *feature_statistics(features_b))


def read_inception_graph_def(path: str | os.PathLike) -> bytes:
    """Reads the Inception GraphDef from the ``.pb`` itself or from the release ``.tgz``.

    Args:
        path: ``classify_image_graph_def.pb`` or ``inception-2015-12-05.tgz``.

    Returns:
        The serialized ``classify_image_graph_def.pb``.

    Raises:
        DataError: the file is missing, or the archive holds no ``classify_image_graph_def.pb``.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(
            f"Inception graph {path!r} not found; download {INCEPTION_URL} and give the .tgz or "
            f"the {INCEPTION_PB_NAME} inside it"
        )
    if tarfile.is_tarfile(path):
        with tarfile.open(path, "r:*") as archive:
            for member in archive.getmembers():
                if member.isfile() and os.path.basename(member.name) == INCEPTION_PB_NAME:
                    return archive.extractfile(member).read()
        raise DataError(
            f"{path!r} holds no {INCEPTION_PB_NAME}; use the archive from {INCEPTION_URL}"
        )
    with open(path, "rb") as handle:
        return handle.read()


class InceptionGraph:
    """The 2015-12-05 Inception graph run under TF2 through a ``tf.compat.v1.Session``.

    Images are fed at ``ExpandDims:0`` (the graph resizes them to 299x299 itself), as float 0..255,
    any size, in batches. The original patched the static batch dimension of every op from 1 to
    None so that a batch could be fed there; here the same effect comes from importing the graph
    with ``ExpandDims:0`` mapped to a ``[None, None, None, 3]`` placeholder, which re-infers every
    downstream shape with a free batch dimension. As in the original, the class probabilities are
    ``softmax(squeeze(pool_3) @ W)`` with W the weight input of ``softmax/logits/MatMul`` (the
    graph's own bias and softmax are not used), and ``pool_3`` is read directly, bypassing the
    graph's ``pool_3/_reshape`` that hard-codes a batch of 1.

    A Session (not ``tf.function``) is needed: the graph uses ``BatchNormWithGlobalNormalization``,
    removed from GraphDef version 9 on, which a Session accepts because the imported graph keeps
    its old producer version while a TF2 function would be checked against the current one.
    """

    def __init__(self, serialized_graph_def: bytes, source: str = "<bytes>"):
        """Imports a serialized GraphDef (the bytes of ``classify_image_graph_def.pb``).

        Raises:
            DataError: the bytes are not a GraphDef or lack the tensors named above.
        """
        import tensorflow as tf
        from google.protobuf.message import DecodeError

        graph_def = tf.compat.v1.GraphDef()
        try:
            graph_def.ParseFromString(serialized_graph_def)
        except DecodeError as error:
            raise DataError(
                f"{source!r} is not a TensorFlow GraphDef ({error}); expected {INCEPTION_PB_NAME} "
                f"from {INCEPTION_URL}"
            ) from error
        node_names = {node.name for node in graph_def.node}
        for name in (INCEPTION_INPUT, INCEPTION_POOL3, INCEPTION_LOGITS_MATMUL):
            if name.split(":")[0] not in node_names:
                raise DataError(
                    f"{source!r} has no {name.split(':')[0]!r} node; it is not the Inception "
                    f"graph of {INCEPTION_URL}"
                )

        self.source = source
        self._graph = tf.Graph()
        with self._graph.as_default():
            self._images = tf.compat.v1.placeholder(tf.float32, [None, None, None, 3], "images")
            tf.compat.v1.import_graph_def(
                graph_def, input_map={INCEPTION_INPUT: self._images}, name="inception"
            )
            pool3 = self._graph.get_tensor_by_name("inception/" + INCEPTION_POOL3)
            weights = self._graph.get_operation_by_name(
                "inception/" + INCEPTION_LOGITS_MATMUL
            ).inputs[1]
            # squeeze only the 1x1 spatial axes, so that a batch of one stays [1, D]
            self._features = tf.squeeze(pool3, axis=[1, 2])
            self._probabilities = tf.nn.softmax(tf.matmul(self._features, weights))
        config = tf.compat.v1.ConfigProto(allow_soft_placement=True)
        config.gpu_options.allow_growth = True
        self._session = tf.compat.v1.Session(graph=self._graph, config=config)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "InceptionGraph":
        """Loads ``classify_image_graph_def.pb`` or ``inception-2015-12-05.tgz`` (see
        :func:`read_inception_graph_def`)."""
        return cls(read_inception_graph_def(path), source=os.fspath(path))

    def close(self) -> None:
        """Releases the session."""
        self._session.close()

    def __enter__(self) -> "InceptionGraph":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def run(
        self,
        images: Sequence[np.ndarray],
        *,
        batch_size: int = INCEPTION_BATCH_SIZE,
        probabilities: bool = True,
    ) -> tuple[np.ndarray | None, np.ndarray]:
        """Runs the network on images, ``batch_size`` at a time.

        Args:
            images: N images ``[H, W, 3]`` of one size, values 0..255 (``uint8`` or float).
            batch_size: images per session run (100 in the original).
            probabilities: also return the class probabilities (else ``None`` in their place).

        Returns:
            ``(probabilities [N, K] float32 or None, pool_3 features [N, D] float32)``;
            K = 1008 and D = 2048 for the real graph.
        """
        if len(images) == 0:
            raise DataError("no images to run through the Inception graph")
        shapes = {np.shape(image) for image in images}
        if len(shapes) != 1:
            raise DataError(f"images of different sizes {sorted(shapes)} cannot be batched")
        fetches = [self._features]
        if probabilities:
            fetches.append(self._probabilities)
        outputs = [[] for _ in fetches]
        for start in range(0, len(images), batch_size):
            batch = np.stack(images[start : start + batch_size]).astype(np.float32)
            for collected, value in zip(
                outputs, self._session.run(fetches, {self._images: batch}), strict=True
            ):
                collected.append(value)
        features = np.concatenate(outputs[0])
        return (np.concatenate(outputs[1]) if probabilities else None), features
