"""Specification of pg2_tf.scoring.metrics: the paper's scores (score.py / score_mask.py) and FID.

The Inception machinery runs on a small stand-in GraphDef built here with the tensor names of the
real ``classify_image_graph_def.pb`` (which cannot be downloaded in CI): ``ExpandDims:0`` fed by a
JPEG-decoding chain, a fixed-size bilinear resize, the old ``BatchNormWithGlobalNormalization`` op
under GraphDef producer version 3 (as the 2015 graph), ``pool_3`` ``[N, 1, 1, 3]``, a
``pool_3/_reshape`` hard-coded to a batch of 1, and ``softmax/logits/MatMul`` whose weight input
is ``1000 * I``. Its ``pool_3`` features of a constant image of colour c are ``(c - 128) / 128``,
so the class is the brightest channel and the prediction is exactly one-hot.
"""

import tarfile

import numpy as np
import pytest
from helpers import STAND_IN_CLASSES, stand_in_graph_def_bytes, write_stand_in_graph
from scipy import linalg
from scipy.ndimage import uniform_filter

from pg2_tf.core.errors import DataError
from pg2_tf.scoring import metrics, protocols


def constant_image(color, size=(8, 6)) -> np.ndarray:
    """``uint8`` ``[H, W, 3]`` image of one RGB colour."""
    return np.broadcast_to(np.asarray(color, np.uint8), (*size, 3)).copy()


RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


@pytest.fixture(scope="module")
def stand_in_graph_path(tmp_path_factory):
    return write_stand_in_graph(tmp_path_factory.mktemp("inception"))


@pytest.fixture(scope="module")
def stand_in_graph(stand_in_graph_path):
    with metrics.InceptionGraph.from_file(stand_in_graph_path) as graph:
        yield graph


def _old_compare_ssim_rgb(a, b):
    """Independent re-statement of skimage 0.13 compare_ssim(a, b, multichannel=True) on uint8."""
    c1, c2, win, pad = (0.01 * 255) ** 2, (0.03 * 255) ** 2, 7, 3
    cov_norm = win * win / (win * win - 1)
    values = []
    for channel in range(a.shape[-1]):
        x, y = a[..., channel].astype(np.float64), b[..., channel].astype(np.float64)
        ux, uy = uniform_filter(x, win), uniform_filter(y, win)
        vx = cov_norm * (uniform_filter(x * x, win) - ux * ux)
        vy = cov_norm * (uniform_filter(y * y, win) - uy * uy)
        vxy = cov_norm * (uniform_filter(x * y, win) - ux * uy)
        s_map = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
        values.append(s_map[pad:-pad, pad:-pad].mean())
    return float(np.mean(values))


def _noisy_pair(seed=0, shape=(32, 24, 3)):
    rng = np.random.default_rng(seed)
    target = rng.integers(0, 256, shape).astype(np.uint8)
    noise = rng.integers(-40, 41, shape)
    generated = np.clip(target.astype(int) + noise, 0, 255).astype(np.uint8)
    return generated, target


# ---------------------------------------------------------------- pixel scores


def test_ssim_of_identical_images_is_one():
    image, _ = _noisy_pair()
    assert metrics.ssim(image, image) == pytest.approx(1.0, abs=1e-12)


def test_ssim_of_constant_images_has_the_closed_form():
    # zero variances: SSIM = (2ab + C1) / (a^2 + b^2 + C1) with C1 = (0.01 * 255)^2
    c1 = (0.01 * 255) ** 2
    expected = (2 * 100 * 50 + c1) / (100**2 + 50**2 + c1)
    value = metrics.ssim(constant_image((100,) * 3, (16, 16)), constant_image((50,) * 3, (16, 16)))
    assert value == pytest.approx(expected, abs=1e-12)


def test_ssim_equals_old_compare_ssim_multichannel_defaults():
    generated, target = _noisy_pair(seed=1)
    expected = _old_compare_ssim_rgb(generated, target)
    assert metrics.ssim(generated, target) == pytest.approx(expected, abs=1e-12)
    assert 0.0 < expected < 1.0


def test_psnr_l1_l2_of_a_constructed_difference():
    target = np.full((8, 8, 3), 100, np.uint8)
    generated = target.copy()
    generated[:4] += 10  # half of the 192 values differ by 10
    assert metrics.l1_mean_distance(generated, target) == pytest.approx(5.0)
    assert metrics.l2_mean_distance(generated, target) == pytest.approx(np.sqrt(96 * 100) / 192)
    assert metrics.psnr(generated, target) == pytest.approx(10 * np.log10(255**2 / 50.0))


def test_psnr_of_identical_images_is_infinite_as_the_original():
    image, _ = _noisy_pair()
    assert metrics.psnr(image, image) == np.inf


def test_pair_scores_are_mean_and_population_std_over_images():
    pairs = [_noisy_pair(seed) for seed in range(3)]
    scores = metrics.pair_scores([g for g, _ in pairs], [t for _, t in pairs])
    ssims = [metrics.ssim(g, t) for g, t in pairs]
    l1s = [metrics.l1_mean_distance(g, t) for g, t in pairs]
    assert scores["ssim_mean"] == pytest.approx(np.mean(ssims))
    assert scores["ssim_std"] == pytest.approx(np.std(ssims))
    assert scores["l1_mean"] == pytest.approx(np.mean(l1s))


def test_different_sizes_raise_a_data_error():
    with pytest.raises(DataError, match="shapes differ"):
        metrics.ssim(constant_image(RED, (8, 8)), constant_image(RED, (8, 9)))


# ---------------------------------------------------------------- masks


def test_apply_mask_divides_by_255_first_then_truncates_to_uint8():
    image = np.array([[[201, 7, 9], [85, 255, 0]]], np.uint8)  # [1, 2, 3]
    mask = np.array([[128, 147]], np.uint8)
    masked = metrics.apply_mask(image, mask)
    assert masked.dtype == np.uint8
    # 128/255*201 = 100.89 -> 100 (truncated); 147/255*85 = 48.99999999999999 -> 48 although
    # 147*85/255 is exactly 49: the division comes first, as in score_mask.py.
    assert masked[0, 0, 0] == 100
    assert masked[0, 1, 0] == 48
    np.testing.assert_array_equal(metrics.apply_mask(image, np.full((1, 2), 255, np.uint8)), image)
    assert not metrics.apply_mask(image, np.zeros((1, 2), np.uint8)).any()


# ---------------------------------------------------------------- Inception Score


def test_inception_score_of_identical_predictions_is_one():
    predictions = np.tile(np.eye(5, dtype=np.float32)[2], (20, 1))
    assert metrics.inception_score_from_predictions(predictions) == pytest.approx((1.0, 0.0))


def test_inception_score_of_splits_uniform_over_k_classes_is_k():
    predictions = np.tile(np.eye(4, dtype=np.float32), (10, 1))  # every split of 4: one per class
    mean, std = metrics.inception_score_from_predictions(predictions, splits=10)
    assert mean == pytest.approx(4.0, rel=1e-6)
    assert std == pytest.approx(0.0, abs=1e-6)


def test_inception_score_splits_in_order_at_i_times_n_over_splits():
    # 4 rows, 2 splits: [a, a] then [a, b]; only the second split is spread over 2 classes
    a, b = [1.0, 0.0], [0.0, 1.0]
    mean, std = metrics.inception_score_from_predictions(np.array([a, a, a, b]), splits=2)
    assert (mean, std) == pytest.approx((1.5, 0.5))


def test_inception_score_needs_as_many_images_as_splits():
    with pytest.raises(DataError, match="at least 10 images"):
        metrics.inception_score_from_predictions(np.eye(3), splits=10)


def test_stand_in_graph_gives_one_hot_predictions_and_pool3_features(stand_in_graph):
    images = [constant_image(RED), constant_image(GREEN), constant_image((0, 64, 200))]
    probabilities, features = stand_in_graph.run(images, batch_size=2)
    np.testing.assert_array_equal(probabilities, np.eye(3, dtype=np.float32)[[0, 1, 2]])
    np.testing.assert_allclose(features[2], (np.array([0, 64, 200]) - 128) / 128, atol=1e-6)


def test_a_batch_of_one_image_works(stand_in_graph):
    probabilities, features = stand_in_graph.run([constant_image(BLUE, (5, 3))])
    assert probabilities.shape == (1, STAND_IN_CLASSES)
    assert features.shape == (1, 3)


def test_inception_score_through_the_graph_of_one_class_is_one(stand_in_graph_path):
    images = [constant_image(RED)] * 20
    numbers, notes = protocols.run_inception(
        stand_in_graph_path, is_images=images, fid_images=images, fid_reference=images
    )
    assert (numbers["IS"], numbers["IS_std"]) == pytest.approx((1.0, 0.0)) and not notes


def test_inception_score_through_the_graph_of_three_classes_per_split_is_three(stand_in_graph):
    images = [constant_image(color) for color in (RED, GREEN, BLUE)] * 10
    predictions, _ = stand_in_graph.run(images, batch_size=7)
    mean, std = metrics.inception_score_from_predictions(predictions)
    assert mean == pytest.approx(3.0, rel=1e-6)
    assert std == pytest.approx(0.0, abs=1e-6)


def test_graph_loads_from_the_release_tgz(tmp_path):
    pb = write_stand_in_graph(tmp_path)
    tgz = tmp_path / "inception-2015-12-05.tgz"
    with tarfile.open(tgz, "w:gz") as archive:
        archive.add(pb, arcname=metrics.INCEPTION_PB_NAME)
    assert metrics.read_inception_graph_def(tgz) == stand_in_graph_def_bytes()


def test_a_file_that_is_not_the_inception_graph_is_a_data_error(tmp_path):
    import tensorflow as tf

    other = tmp_path / "other.pb"
    other.write_bytes(tf.compat.v1.GraphDef().SerializeToString())
    with pytest.raises(DataError, match="ExpandDims"):
        metrics.InceptionGraph.from_file(other)


def test_missing_graph_file_message_names_the_url(tmp_path):
    with pytest.raises(DataError, match="inception-2015-12-05.tgz"):
        metrics.read_inception_graph_def(tmp_path / "nope.tgz")


# ---------------------------------------------------------------- FID


def test_fid_of_a_feature_set_with_itself_is_zero():
    features = np.random.default_rng(0).normal(size=(50, 8))
    assert metrics.fid_from_features(features, features) == pytest.approx(0.0, abs=1e-9)


def test_fid_of_shifted_features_is_the_squared_shift():
    features = np.random.default_rng(1).normal(size=(40, 6))
    shift = np.array([0.5, -1.0, 0.0, 2.0, 0.0, 0.25])
    expected = float(shift @ shift)
    assert metrics.fid_from_features(features, features + shift) == pytest.approx(expected)


def test_fid_of_scaled_features_has_the_closed_form():
    # B = a * A: |mu (1 - a)|^2 + Tr(S + a^2 S - 2 a S) = (1 - a)^2 (|mu|^2 + Tr S)
    features = np.random.default_rng(2).normal(loc=0.3, size=(60, 5))
    mu, sigma = metrics.feature_statistics(features)
    expected = (1 - 3.0) ** 2 * (mu @ mu + np.trace(sigma))
    assert metrics.fid_from_features(features, 3.0 * features) == pytest.approx(expected)


def test_frechet_distance_matches_the_scipy_sqrtm_formula():
    rng = np.random.default_rng(3)
    a, b = (
        rng.normal(size=(30, 4)),
        rng.normal(loc=1.0, scale=2.0, size=(30, 4)) @ rng.normal(size=(4, 4)),
    )
    mu1, s1 = metrics.feature_statistics(a)
    mu2, s2 = metrics.feature_statistics(b)
    expected = float((mu1 - mu2) @ (mu1 - mu2) + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real))
    assert metrics.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)


def test_fid_through_the_graph_of_shifted_colours_is_the_squared_feature_shift(
    stand_in_graph, stand_in_graph_path
):
    rng = np.random.default_rng(4)
    colors = rng.integers(20, 200, size=(12, 3))
    images_a = [constant_image(c) for c in colors]
    images_b = [constant_image(c + [30, 0, 0]) for c in colors]
    same, _ = protocols.run_inception(
        stand_in_graph_path, is_images=images_a, fid_images=images_a, fid_reference=images_a
    )
    assert same["FID"] == pytest.approx(0.0, abs=1e-9)
    expected = (30 / 128) ** 2  # pool_3 features are (c - 128) / 128
    shifted, _ = protocols.run_inception(
        stand_in_graph_path, is_images=images_a, fid_images=images_a, fid_reference=images_b
    )
    assert shifted["FID"] == pytest.approx(expected, rel=1e-6)
    _, features_a = stand_in_graph.run(images_a, batch_size=5, probabilities=False)
    _, features_b = stand_in_graph.run(images_b, batch_size=5, probabilities=False)
    assert metrics.fid_from_features(features_a, features_b) == pytest.approx(expected, rel=1e-6)
