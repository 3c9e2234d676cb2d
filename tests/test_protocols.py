"""Specification of the score protocols (pg2_tf.scoring.protocols, pg2_tf.scoring.result_folders, pg2-score).

The pictures are the 24 decoded JPEG pairs of the shared Market fixture (``reference_outputs``:
synthetic figures on textured backgrounds, 128x64), scored as G = the source picture x against
x_target. Every expected number is computed here with
scikit-image's own ``structural_similarity`` and the protocol's settings, or restated from the
Pose-Transfer code (tool/getMetrics_market.py, getMetrics_fashion.py, pose_utils.py).
"""

import json

import helpers
import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from skimage.draw import polygon
from skimage.metrics import structural_similarity

from pg2_tf.core.errors import DataError
from pg2_tf.records import annotations
from pg2_tf.scoring import folder_scores, metrics, protocols, result_folders

RECORDS = "test_data/Market1501_test_00000-of-00001.tfrecord"
# pose_utils.produce_ma_mask's limbs, 1-based as written there.
POSE_TRANSFER_LIMBS = [
    [2, 3], [2, 6], [3, 4], [4, 5], [6, 7], [7, 8], [2, 9], [9, 10], [10, 11], [2, 12], [12, 13],
    [13, 14], [2, 1], [1, 15], [15, 17], [1, 16], [16, 18], [2, 17], [2, 18], [9, 12], [12, 6],
    [9, 3], [17, 18],
]  # fmt: skip


def pose_transfer_mask(keypoints, shape, radius=4):
    """Independent restatement of produce_ma_mask: limb rectangles (skimage polygon), discs
    ``((r - r0) / 4)^2 + ((c - c0) / 4)^2 < 1``, then a 5x5 closing with reflected borders
    (scipy binary morphology on a symmetric-padded copy, as ndimage's grey 'reflect' mode)."""
    keypoints = np.asarray(keypoints, float)
    mask = np.zeros(shape, bool)
    for f, t in np.array(POSE_TRANSFER_LIMBS) - 1:
        if -1 in keypoints[f] or -1 in keypoints[t]:
            continue
        normal = keypoints[f] - keypoints[t]
        normal = radius * np.array([-normal[1], normal[0]]) / np.linalg.norm(normal)
        # The corners f + n, f - n, t - n, t + n (n: the normal, of length radius).
        corners = keypoints[[f, f, t, t]] + np.outer([1, -1, -1, 1], normal)
        rows, cols = polygon(corners[:, 0], corners[:, 1], shape=shape)
        mask[rows, cols] = True
    grid_r, grid_c = np.mgrid[0 : shape[0], 0 : shape[1]]
    for joint in keypoints:
        if -1 not in joint:
            mask |= ((grid_r - joint[0]) / radius) ** 2 + ((grid_c - joint[1]) / radius) ** 2 < 1
    square = np.ones((5, 5), bool)
    dilated = ndimage.binary_dilation(np.pad(mask, 2, mode="symmetric"), square)[2:-2, 2:-2]
    return ndimage.binary_erosion(np.pad(dilated, 2, mode="symmetric"), square)[2:-2, 2:-2]


def skimage_patn_ssim(generated, target):
    return structural_similarity(
        target,
        generated,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        channel_axis=2,
        data_range=generated.max() - generated.min(),
    )


def skimage_pg2_ssim(generated, target):
    # score.py: compare_ssim(G, x_target, multichannel=True) with its defaults of the time
    return structural_similarity(
        generated, target, win_size=7, use_sample_covariance=True, channel_axis=2, data_range=255
    )


@pytest.fixture(scope="module")
def pictures(reference_outputs):
    """24 (generated, target) pairs: the fixture's decoded source and target pictures."""
    return list(reference_outputs["x_uint8"]), list(reference_outputs["x_target_uint8"])


@pytest.fixture(scope="module")
def target_poses(market_tf1_dir):
    """The target keypoints (row, col; -1 missing) of the 24 records, from pose_peaks_1_rcv."""
    examples = helpers.read_examples(market_tf1_dir / RECORDS)
    return [helpers.target_keypoints(example) for example in examples]


def _save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


@pytest.fixture
def test_result(tmp_path, pictures, target_poses):
    root = tmp_path / "test_result"
    for index, (generated, target) in enumerate(zip(*pictures, strict=True)):
        _save(root / "G" / f"{index:05d}.png", generated)
        _save(root / "x_target" / f"{index:05d}.png", target)
    annotations.write_annotations(
        str(root / annotations.TARGET_ANNOTATIONS),
        ((f"{i:05d}.png", pose) for i, pose in enumerate(target_poses)),
    )
    return root


def _vis_strip(source, target, generated):
    """A Pose-Transfer strip: input | input pose | target | target pose | generated."""
    pose_panel = np.zeros_like(source)
    return np.concatenate([source, pose_panel, target, pose_panel + 7, generated], axis=1)


# ------------------------------------------------------------------ per-image arithmetic


def test_patn_ssim_is_skimage_with_pose_transfer_settings(pictures):
    for generated, target in list(zip(*pictures, strict=True))[:4]:
        expected = skimage_patn_ssim(generated, target)
        assert protocols.patn_ssim(generated, target) == pytest.approx(expected, abs=1e-12)
        assert abs(expected - skimage_pg2_ssim(generated, target)) > 1e-3  # not the pg2 number


def test_patn_l1_is_the_mean_absolute_difference_on_the_minus_one_to_one_scale(pictures):
    generated, target = pictures[0][0], pictures[1][0]
    expected = np.mean(np.abs(target.astype(int) - generated.astype(int))) * 2 / 255
    assert protocols.patn_l1(generated, target) == pytest.approx(expected, rel=1e-12)


def test_add_bounding_pads_40_white_columns_each_side():
    image = np.full((4, 3, 3), 9, np.uint8)
    padded = protocols.add_bounding(image)
    assert padded.shape == (4, 83, 3) and padded.dtype == np.uint8
    assert (padded[:, :40] == 255).all() and (padded[:, 43:] == 255).all()
    assert (padded[:, 40:43] == 9).all()


def test_patn_mask_is_drawn_from_keypoints_as_pose_transfer_drew_it(target_poses):
    # a known pose: joints on the border (rows 0 and 127, column 63), missing joints, a short limb
    known = np.full((18, 2), -1.0)
    known[[0, 1, 2, 5, 8, 11, 9, 12, 14, 16]] = [
        [0, 32], [12, 32], [14, 20], [14, 63], [60, 24], [60, 40], [95, 22], [127, 41],
        [1, 29], [2, 29],
    ]  # fmt: skip
    for keypoints in [known, *target_poses[:6]]:
        mask = protocols.patn_mask(keypoints, (128, 64))
        np.testing.assert_array_equal(mask, pose_transfer_mask(keypoints, (128, 64)))
    mask = protocols.patn_mask(known, (128, 64))
    assert mask[0, 32] and mask[127, 41] and mask[14, 63]  # the closing keeps border pixels
    assert 0.05 < mask.mean() < 0.5 and not mask[:, :10].any()


# ------------------------------------------------------------------ result folders


def test_vis_reader_takes_panels_two_and_four_and_the_target_name(tmp_path):
    panels = [np.full((8, 6, 3), 10 * (i + 1), np.uint8) for i in range(5)]
    _save(tmp_path / "a_c1.jpg___b_c2.jpg_vis.png", np.concatenate(panels, axis=1))
    _save(tmp_path / "notes.png", panels[0])  # not a _vis strip: ignored
    result = result_folders.load(str(tmp_path))
    assert result.layout == result_folders.POSE_TRANSFER
    assert result.names == ["a_c1.jpg___b_c2.jpg_vis.png"] and result.target_names == ["b_c2.jpg"]
    np.testing.assert_array_equal(result.targets[0], panels[2])
    np.testing.assert_array_equal(result.generated[0], panels[4])
    with pytest.raises(DataError, match="is not a Pose-Transfer result name"):
        result_folders.split_vis_name("a_b_vis.png")


def test_a_folder_of_neither_layout_is_one_clear_error(tmp_path):
    with pytest.raises(DataError, match="neither G/ .* nor <from>___<to>_vis.png"):
        result_folders.load(str(tmp_path))


# ------------------------------------------------------------------ whole protocols


def test_cli_json_of_both_protocols_matches_skimage_on_decoded_pictures(
    test_result, pictures, tmp_path
):
    pairs = list(zip(*pictures, strict=True))
    expected = {
        "pg2": (
            np.mean([skimage_pg2_ssim(g, t) for g, t in pairs]),
            np.mean([np.abs(g.astype(float) - t).mean() for g, t in pairs]),
        ),
        "patn": (
            np.mean([skimage_patn_ssim(g, t) for g, t in pairs]),
            np.mean([np.abs(g.astype(float) - t).mean() * 2 / 255 for g, t in pairs]),
        ),
    }
    for protocol, (ssim, l1) in expected.items():
        path = tmp_path / f"{protocol}.json"
        completed = helpers.run_score_cli(
            f"--result_dir={test_result}", f"--protocol={protocol}", f"--json={path}"
        )
        assert completed.returncode == 0, completed.stderr
        numbers = json.loads(path.read_text())
        assert list(numbers)[:8] == list(protocols.JSON_KEYS)
        assert numbers["protocol"] == protocol and numbers["num_images"] == 24
        assert numbers["SSIM"] == pytest.approx(ssim, abs=1e-9)
        assert numbers["L1"] == pytest.approx(l1, abs=1e-9)
        assert numbers["IS"] is None and numbers["mask_IS"] is None and numbers["FID"] is None
        assert numbers["FID_reference"] == "the targets"
    assert numbers["mask_SSIM"] is not None  # patn: masks from pose_target-annotation.csv
    assert json.loads((tmp_path / "pg2.json").read_text())["mask_SSIM"] is None  # no mask/ folder


def test_patn_masked_ssim_uses_the_target_pose_mask_on_both_images(
    test_result, pictures, target_poses
):
    numbers = folder_scores.score_patn(str(test_result))
    expected = []
    for generated, target, keypoints in zip(*pictures, target_poses, strict=True):
        mask = pose_transfer_mask(keypoints, generated.shape[:2])[..., None]
        expected.append(skimage_patn_ssim(generated * mask, target * mask))
    assert numbers["dataset"] == "market"
    assert numbers["mask_SSIM"] == pytest.approx(np.mean(expected), abs=1e-12)


def test_a_pose_transfer_folder_scores_as_the_same_pairs_in_a_test_result(
    tmp_path, test_result, pictures, target_poses
):
    vis_dir, rows = tmp_path / "images", []
    for index, (generated, target) in enumerate(zip(*pictures, strict=True)):
        name = f"{index:04d}_c1.jpg___{index:04d}_c3.jpg_vis.png"
        _save(vis_dir / name, _vis_strip(generated, target, generated))
        rows.append((f"{index:04d}_c3.jpg", target_poses[index]))
    csv = tmp_path / "market-annotation-test.csv"
    annotations.write_annotations(str(csv), rows)
    from_vis = folder_scores.score_patn(str(vis_dir), annotation_path=str(csv))
    from_test_result = folder_scores.score_patn(str(test_result))
    assert from_vis["layout"] == "pose_transfer" and from_vis["num_images"] == 24
    for key in ("SSIM", "L1", "mask_SSIM"):
        assert from_vis[key] == pytest.approx(from_test_result[key], abs=1e-12)
    rows.pop()
    annotations.write_annotations(str(csv), rows)
    with pytest.raises(DataError, match=r"has no keypoints for \['0023_c3.jpg'\]"):
        folder_scores.score_patn(str(vis_dir), annotation_path=str(csv))


def test_deepfashion_strips_176_wide_are_padded_before_ssim_and_have_no_masked_scores(
    tmp_path, pictures
):
    rng = np.random.default_rng(0)
    smooth = ndimage.zoom(rng.integers(0, 256, (32, 22, 3)), (8, 8, 1), order=1)
    target = np.clip(smooth, 0, 255).astype(np.uint8)  # 256 x 176
    generated = np.clip(target.astype(int) + rng.integers(-30, 31, target.shape), 0, 255)
    generated = generated.astype(np.uint8)
    _save(tmp_path / "a.jpg___b.jpg_vis.png", _vis_strip(target, target, generated))
    numbers = folder_scores.score_patn(str(tmp_path))
    padded = [
        np.pad(i, ((0, 0), (40, 40), (0, 0)), constant_values=255) for i in (generated, target)
    ]
    assert padded[0].shape == (256, 256, 3)
    assert numbers["dataset"] == "deepfashion"
    assert numbers["SSIM"] == pytest.approx(skimage_patn_ssim(*padded), abs=1e-12)
    assert numbers["L1"] == pytest.approx(protocols.patn_l1(*padded), abs=1e-15)
    assert numbers["L1"] < protocols.patn_l1(generated, target)  # white columns count as equal
    assert numbers["mask_SSIM"] is None and numbers["mask_IS"] is None


def test_fid_reference_replaces_the_targets_as_the_fid_reference_set(
    test_result, tmp_path, pictures
):
    graph_path = helpers.write_stand_in_graph(tmp_path)
    reference_dir = tmp_path / "train"
    reference = [np.full((128, 64, 3), (40 * i, 255 - 30 * i, 90), np.uint8) for i in range(6)]
    for index, image in enumerate(reference):
        _save(reference_dir / f"{index}.png", image)
    with metrics.InceptionGraph.from_file(graph_path) as graph:
        generated, targets, train = (
            graph.run(images, probabilities=False)[1] for images in (*pictures, reference)
        )
    expected = metrics.fid_from_features(generated, train)
    against_targets = metrics.fid_from_features(generated, targets)
    patn = folder_scores.score_patn(
        str(test_result), inception_graph=graph_path, fid_reference=str(reference_dir)
    )
    pg2 = folder_scores.score_result_dir(
        str(test_result), inception_graph=graph_path, fid_reference=str(reference_dir)
    )
    assert patn["FID"] == pytest.approx(expected, rel=1e-6)
    assert pg2["fid"] == pytest.approx(expected, rel=1e-6)
    assert abs(expected - against_targets) > 1e-3
    assert patn["IS"] is not None and patn["mask_IS"] is not None


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--protocol=patn", "--mask"], "--mask is the pg2 protocol's variant"),
        (["--fid_reference=/no/such/folder"], "--fid_reference='/no/such/folder' is not a folder"),
    ],
)
def test_bad_score_flags_get_one_error_line(test_result, flags, message):
    completed = helpers.run_score_cli(f"--result_dir={test_result}", *flags)
    assert completed.returncode != 0
    assert message in completed.stderr


@pytest.mark.parametrize(
    "ssim, size, window",
    [(metrics.ssim, 6, 7), (protocols.patn_ssim, 10, 11)],
    ids=["pg2", "patn"],
)
def test_images_smaller_than_the_ssim_window_are_one_data_error(ssim, size, window):
    image = np.zeros((size, 40, 3), np.uint8)
    with pytest.raises(DataError, match=f"smaller than the {window}x{window} SSIM window"):
        ssim(image, image)


def test_json_naming_a_folder_is_refused_before_scoring(tmp_path):
    result = helpers.run_score_cli(f"--result_dir={tmp_path}", f"--json={tmp_path}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: --json={str(tmp_path)!r} is a folder: give a file name, e.g. scores.json"
    ]


def test_shared_inception_runs_score_each_image_set_once_with_the_same_numbers(
    test_result, tmp_path, pictures, monkeypatch
):
    # Test mode scores G under pg2 (rgb, masked) and patn; --json scores --fid_reference twice.
    graph_path = helpers.write_stand_in_graph(tmp_path)
    for index in range(len(pictures[0])):  # pg2's masked variant reads test_result/mask
        mask = np.zeros((128, 64, 3), np.uint8)
        mask[32:96, 16:48] = 255
        _save(test_result / "mask" / f"{index:05d}.png", mask)
    reference_dir = tmp_path / "train"
    for index in range(4):
        _save(reference_dir / f"{index}.png", np.full((128, 64, 3), 50 * index, np.uint8))
    alone = [
        folder_scores.score_result_dir(str(test_result), inception_graph=graph_path, mask=mask)
        for mask in (False, True)
    ] + [folder_scores.score_patn(str(test_result), inception_graph=graph_path)]
    runs = []
    real_run = metrics.InceptionGraph.run
    monkeypatch.setattr(
        metrics.InceptionGraph,
        "run",
        lambda graph, images, **kw: runs.append(len(images)) or real_run(graph, images, **kw),
    )
    shared = protocols.InceptionRuns()
    together = [
        folder_scores.score_result_dir(
            str(test_result), inception_graph=graph_path, mask=mask, inception_runs=shared
        )
        for mask in (False, True)
    ] + [
        folder_scores.score_patn(
            str(test_result), inception_graph=graph_path, inception_runs=shared
        )
    ]
    for one, other, keys in zip(
        alone, together, [("is_mean", "fid")] * 2 + [("IS", "mask_IS", "FID")], strict=True
    ):
        for key in keys:
            assert one[key] is not None and one[key] == pytest.approx(other[key], rel=1e-6)
    # G, x_target, masked G, masked x_target, patn's masked G: five sets, each run once.
    assert len(runs) == 5
    runs.clear()
    shared = protocols.InceptionRuns()  # pg2-score --json: both variants, one --fid_reference
    for mask in (False, True):
        scores = folder_scores.score_result_dir(
            str(test_result),
            inception_graph=graph_path,
            mask=mask,
            fid_reference=str(reference_dir),
            inception_runs=shared,
        )
        assert scores["fid"] is not None
    assert runs.count(4) == 1  # the 4 reference images went through Inception once
