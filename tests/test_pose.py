"""pg2_tf.core.pose reproduces the original converters' pose geometry."""

import pickle

import numpy as np
import pytest
from helpers import MARKET_RAW
from skimage.morphology import dilation, erosion

from pg2_tf.core import pose, pose_files

POSE_DIR = MARKET_RAW / "Market1501_img_pose_attr_seg" / "Market-1501_PoseFiltered"


def _keypoints(**joints):
    keypoints_rc = np.full((18, 2), -1.0)
    for name, row_col in joints.items():
        keypoints_rc[pose.KEYPOINT_NAMES.index(name)] = row_col
    return keypoints_rc


def _standing_person():
    return _keypoints(
        nose=(14, 32),
        neck=(24, 32),
        right_shoulder=(25, 22),
        right_elbow=(42, 20),
        right_wrist=(58, 19),
        left_shoulder=(25, 42),
        left_elbow=(42, 44),
        left_wrist=(58, 45),
        right_hip=(64, 26),
        right_knee=(88, 25),
        right_ankle=(112, 25),
        left_hip=(64, 38),
        left_knee=(88, 39),
        left_ankle=(112, 40),
        right_eye=(12, 30),
        left_eye=(12, 34),
        right_ear=(13, 27),
        left_ear=(13, 37),
    )


# --- keypoints_from_openpose -------------------------------------------------------------------


def _two_people():
    """Joint 0 has candidates of both people; the second person (ids 2, 3) scores higher."""
    all_peaks = [[] for _ in range(18)]
    all_peaks[0] = [(10, 20, 0.9, 0), (30, 40, 0.8, 2), (31, 41, 0.7, 4)]
    all_peaks[1] = [(11, 21, 0.9, 1), (32, 42, 0.8, 3)]
    subsets = np.full((2, 20), -1.0)
    subsets[0, [0, 1]] = [0, 1]
    subsets[0, 18:] = [5.0, 2]
    subsets[1, [0, 1]] = [4, 3]
    subsets[1, 18:] = [7.0, 2]
    return all_peaks, subsets


def test_market_selection_takes_the_best_scoring_person_and_its_last_matching_candidate():
    all_peaks, subsets = _two_people()
    keypoints_rc = pose_files.keypoints_from_openpose(all_peaks, subsets, "market")
    assert keypoints_rc[0].tolist() == [41, 31]  # (row=y, col=x) of peak id 4
    assert keypoints_rc[1].tolist() == [42, 32]
    assert (keypoints_rc[2:] == -1).all()


def test_market_selection_without_person_takes_each_joints_first_candidate():
    all_peaks, _ = _two_people()
    keypoints_rc = pose_files.keypoints_from_openpose(all_peaks, np.zeros((0, 20)), "market")
    assert keypoints_rc[0].tolist() == [20, 10]
    assert keypoints_rc[1].tolist() == [21, 11]


def test_deepfashion_selection_ignores_the_person_and_takes_first_candidates():
    all_peaks, subsets = _two_people()
    keypoints_rc = pose_files.keypoints_from_openpose(all_peaks, subsets, "deepfashion")
    assert keypoints_rc[0].tolist() == [20, 10]


def test_deepfashion_selection_without_person_is_an_error():
    all_peaks, _ = _two_people()
    with pytest.raises(ValueError, match="no person"):
        pose_files.keypoints_from_openpose(all_peaks, np.zeros((0, 20)), "deepfashion")


def test_openpose_from_keypoints_round_trips():
    keypoints_rc = _standing_person()
    keypoints_rc[3] = -1
    all_peaks, subsets = pose_files.openpose_from_keypoints(keypoints_rc)
    assert subsets.shape == (1, 20) and subsets[0, 3] == -1 and subsets[0, -1] == 17
    for selection in ("market", "deepfashion"):
        assert np.array_equal(
            pose_files.keypoints_from_openpose(all_peaks, subsets, selection), keypoints_rc
        )


# --- other detectors' joint formats ------------------------------------------------------------

# OpenPose's BODY_25 joint names in its order (OpenPose doc/02_output.md), written out here as an
# independent reference for the mapping.
BODY_25_NAMES = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder",
    "left_elbow", "left_wrist", "mid_hip", "right_hip", "right_knee", "right_ankle", "left_hip",
    "left_knee", "left_ankle", "right_eye", "left_eye", "right_ear", "left_ear", "left_big_toe",
    "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel",
)  # fmt: skip
# MS COCO's 17 person keypoints in its order (person_keypoints annotations).
COCO_17_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip


def _triples(names, joints_rc, confidence=0.9):
    """x, y, c triples in a detector's order, from our named joints; unknown names far away."""
    triples = []
    for index, name in enumerate(names):
        if name in pose.KEYPOINT_NAMES and joints_rc[pose.KEYPOINT_NAMES.index(name)][0] != -1:
            row, col = joints_rc[pose.KEYPOINT_NAMES.index(name)]
            triples.append([col, row, confidence])
        elif name in pose.KEYPOINT_NAMES:
            triples.append([0, 0, 0])
        else:  # a joint PG2 has no use for (mid hip, feet)
            triples.append([500 + index, 600 + index, confidence])
    return np.array(triples, np.float64)


def test_body25_maps_to_the_18_joints_dropping_mid_hip_and_feet():
    person = _standing_person()
    person[pose.KEYPOINT_NAMES.index("left_ear")] = -1
    triples = _triples(BODY_25_NAMES, person)
    assert triples.shape == (25, 3)
    np.testing.assert_array_equal(pose_files.keypoints_from_triples(triples), person)


def test_coco17_maps_to_the_18_joints_with_the_neck_between_the_shoulders():
    person = _standing_person()  # shoulders (25, 22) and (25, 42)
    keypoints_rc = pose_files.keypoints_from_triples(_triples(COCO_17_NAMES, person))
    expected = person.copy()
    expected[1] = [25, 32]
    np.testing.assert_array_equal(keypoints_rc, expected)


def test_coco17_neck_is_missing_without_both_shoulders():
    person = _standing_person()
    person[pose.KEYPOINT_NAMES.index("left_shoulder")] = -1
    keypoints_rc = pose_files.keypoints_from_triples(_triples(COCO_17_NAMES, person))
    assert keypoints_rc[1].tolist() == [-1, -1]
    assert keypoints_rc[2].tolist() == [25, 22]  # the right shoulder itself stays


def test_coco18_triples_are_swapped_to_row_col_and_zero_confidence_is_missing():
    triples = np.zeros((18, 3))
    triples[0] = [31.5, 20.25, 0.8]
    triples[1] = [40, 50, 0.0]
    keypoints_rc = pose_files.keypoints_from_triples(triples)
    assert keypoints_rc[0].tolist() == [20.25, 31.5]
    assert (keypoints_rc[1:] == -1).all()


def test_unknown_joint_count_names_the_known_formats():
    with pytest.raises(ValueError, match=r"21 joints: .*18 \(COCO-18\), 25 \(BODY_25\), 17"):
        pose_files.keypoints_from_triples(np.ones((21, 3)))


def test_joints_outside_flags_present_joints_beyond_the_image_only():
    keypoints_rc = np.full((18, 2), -1.0)
    keypoints_rc[0] = [127.9, 63.9]  # pixel (127, 63): inside 128x64
    keypoints_rc[1] = [128, 10]
    keypoints_rc[2] = [10, 64]
    keypoints_rc[3] = [-3, 10]
    keypoints_rc[4] = [-0.5, 10]  # truncates to row 0, drawn inside, as the pose maps do
    outside = pose.joints_outside(keypoints_rc, 128, 64)
    assert np.flatnonzero(outside).tolist() == [1, 2, 3]


def test_mirror_keypoints_flips_columns_and_swaps_sides():
    keypoints_rc = _keypoints(right_wrist=(50, 10), nose=(5, 30))
    mirrored = pose.mirror_keypoints(keypoints_rc, img_W=64)
    assert mirrored[pose.KEYPOINT_NAMES.index("left_wrist")].tolist() == [50, 53]
    assert mirrored[0].tolist() == [5, 33]
    assert (mirrored[pose.KEYPOINT_NAMES.index("right_wrist")] == -1).all()


# --- sparse / dense pose maps ------------------------------------------------------------------


def test_disc_of_radius_4_has_49_pixels_in_row_major_order():
    offsets = pose.disc_offsets(4)
    assert len(offsets) == 49
    assert offsets[0].tolist() == [-4, 0] and offsets[-1].tolist() == [4, 0]
    assert offsets[:6].tolist() == [[-4, 0], [-3, -2], [-3, -1], [-3, 0], [-3, 1], [-3, 2]]


def test_sparse_indices_are_flat_row_col_joint_per_joint_in_order():
    keypoints_rc = _keypoints(neck=(20, 30), nose=(10.9, 5.7))  # truncated to (10, 5)
    indices, values, dense_shape = pose.sparse_pose_indices(keypoints_rc, 128, 64)
    offsets = pose.disc_offsets(4)
    expected_nose = (10 + offsets[:, 0]) * 64 * 18 + (5 + offsets[:, 1]) * 18 + 0
    expected_neck = (20 + offsets[:, 0]) * 64 * 18 + (30 + offsets[:, 1]) * 18 + 1
    assert indices.dtype == np.int64 and values.dtype == np.float32
    assert indices.tolist() == expected_nose.tolist() + expected_neck.tolist()
    assert (values == 1).all() and dense_shape.tolist() == [128 * 64 * 18]


def test_sparse_indices_drop_pixels_outside_the_image():
    indices, _, _ = pose.sparse_pose_indices(_keypoints(nose=(0, 0)), 128, 64)
    rows, cols = indices // (64 * 18), indices % (64 * 18) // 18
    assert len(indices) == 17  # the quarter disc, its two half-axes and the centre
    assert rows.min() == 0 and cols.min() == 0


def test_missing_joints_have_no_disc():
    indices, values, _ = pose.sparse_pose_indices(np.full((18, 2), -1.0), 128, 64)
    assert indices.size == 0 and values.size == 0


def test_render_pose_map_is_densified_sparse_map_times_2_minus_1():
    keypoints_rc = _standing_person()
    indices, _, _ = pose.sparse_pose_indices(keypoints_rc, 128, 64)
    dense01 = np.zeros(128 * 64 * 18, np.float32)
    dense01[indices] = 1
    pose_map = pose.render_pose_map(keypoints_rc, 128, 64)
    assert pose_map.shape == (128, 64, 18) and pose_map.dtype == np.float32
    assert np.array_equal(pose_map, dense01.reshape(128, 64, 18) * 2 - 1)
    right_ankle = pose.KEYPOINT_NAMES.index("right_ankle")
    assert pose_map[112, 25].tolist() == [1.0 if k == right_ankle else -1.0 for k in range(18)]


# --- body mask ---------------------------------------------------------------------------------


def _reference_mask(keypoints_rc, height, width, radius):
    """The original algorithm step by step, closed with skimage's own grey morphology."""
    canvas = np.zeros((height, width))

    def stamp(row, col):
        row, col = int(row), int(col)
        for d_row in range(-radius, radius + 1):
            for d_col in range(-radius, radius + 1):
                inside = 0 <= row + d_row < height and 0 <= col + d_col < width
                if inside and np.sqrt(float(d_row**2 + d_col**2)) <= radius:
                    canvas[row + d_row, col + d_col] = 1

    for joint_0, joint_1 in pose.MASK_LIMBS:
        if (keypoints_rc[[joint_0, joint_1]] == -1).any():
            continue
        (r0, c0), (r1, c1) = keypoints_rc[joint_0].tolist(), keypoints_rc[joint_1].tolist()
        stamp(r0, c0)
        stamp(r1, c1)
        sample_count = int(np.sqrt((r0 - r1) ** 2 + (c0 - c1) ** 2) / radius)
        for step in range(1, sample_count):
            stamp(r0 + (r1 - r0) * step / sample_count, c0 + (c1 - c0) * step / sample_count)
    square5 = np.ones((5, 5), np.uint8)
    return erosion(dilation(canvas, square5), square5)


@pytest.mark.parametrize("radius", [4, 7, 8])
def test_pose_mask_equals_the_original_algorithm_with_skimage_closing(radius):
    rng = np.random.default_rng(radius)
    for _ in range(5):
        keypoints_rc = _standing_person() + rng.integers(-6, 7, size=(18, 2))
        keypoints_rc[rng.random(18) < 0.2] = -1
        keypoints_rc[keypoints_rc[:, 0] != -1, 0] -= 4  # some joints near/over the top border
        mask = pose.pose_mask(keypoints_rc, 128, 64, radius)
        assert mask.dtype == np.uint8 and mask.shape == (128, 64)
        assert np.array_equal(mask, _reference_mask(keypoints_rc, 128, 64, radius))


def test_pose_mask_of_a_pose_without_limbs_is_empty():
    assert pose.pose_mask(_keypoints(nose=(10, 10)), 128, 64).sum() == 0


def test_pose_mask_covers_the_limbs_and_not_the_background():
    mask = pose.pose_mask(_standing_person(), 128, 64)
    assert set(np.unique(mask)) == {0, 1}
    assert mask[42, 20] == 1 and mask[100, 25] == 1  # right elbow, right shin
    assert mask[0:3].sum() == 0 and mask[:, 60:].sum() == 0


def test_pose_and_mask_of_fixture_images_equal_the_original_converters_records():
    """Uses the pickles and the expected records of tests/fixtures/market_raw (parsed with TF)."""
    tf = pytest.importorskip("tensorflow")
    with open(POSE_DIR / "all_peaks_dic_Market-1501_test_samples.p", "rb") as f:
        all_peaks = pickle.load(f, encoding="latin1")
    with open(POSE_DIR / "subsets_dic_Market-1501_test_samples.p", "rb") as f:
        subsets = pickle.load(f, encoding="latin1")
    record_path = MARKET_RAW / "expected_records" / "Market1501_test_00000-of-00001.tfrecord"
    checked = 0
    for serialized in tf.data.TFRecordDataset(str(record_path)):
        feature = tf.train.Example.FromString(serialized.numpy()).features.feature
        for k in "01":
            name = feature[f"image_name_{k}"].bytes_list.value[0].decode()
            keypoints_rc = pose_files.keypoints_from_openpose(
                all_peaks[name], subsets[name], "market"
            )
            indices, _, _ = pose.sparse_pose_indices(keypoints_rc, 128, 64)
            assert indices.tolist() == list(feature[f"indices_r4_{k}"].int64_list.value)
            for radius, key in ((4, "pose_mask_r4"), (7, "pose_mask_r6")):
                mask = pose.pose_mask(keypoints_rc, 128, 64, radius).ravel().tolist()
                assert mask == list(feature[f"{key}_{k}"].int64_list.value)
            checked += 1
    assert checked == 16
