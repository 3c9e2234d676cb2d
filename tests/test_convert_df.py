"""data_prep/convert_DF.py: DeepFashion records with the original converter's features and rules.

There is no record of the original for DeepFashion; a tiny raw layout is generated with
data_prep.synthetic and the records are checked against pg2_tf.core.pose and the original's rules.
"""

import io
import pickle
import shutil

import numpy as np
import pytest
from PIL import Image

from data_prep import convert_DF
from data_prep.read_records import read_records
from data_prep.synthetic import make_synthetic_raw
from pg2_tf.core import pose, pose_files

DF_KEYS = {
    f"{key}_{k}"
    for k in "01"
    for key in (
        "image_name",
        "image_raw",
        "id",
        "cam",
        "attrs",
        "pose_peaks",
        "pose_mask_r4",
        "pose_mask_r8",
        "indices_r4",
        "values_r4",
        "indices_r8",
        "values_r8",
        "pose_subs",
        "part_bbox",
        "part_vis",
        "roi10_mask",
    )
} | {"pose_peaks_0_rcv", "pose_peaks_1_rcv"}
DF_KEYS |= {"label", "image_format", "image_height", "image_width", "real_data", "shape"}


@pytest.fixture(scope="module")
def raw_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic_df")
    return make_synthetic_raw(
        root, "deepfashion", identities=2, images_per_identity=2, splits=("train", "test_seq")
    )


@pytest.fixture(scope="module")
def train_records(raw_dir):
    out = convert_DF.convert(raw_dir, "train", workers=1, show_progress=False)
    return out, read_records(out)


def _pose_dictionaries(raw_dir, flip=False):
    suffix = "_Flip" if flip else ""
    loaded = []
    for kind in ("all_peaks_dic", "subsets_dic"):
        with open(raw_dir / "PoseFiltered" / f"{kind}_DeepFashion{suffix}.p", "rb") as f:
            loaded.append(pickle.load(f, encoding="latin1"))
    return loaded


def test_records_have_the_original_deepfashion_features(train_records):
    out, records = train_records
    assert out.name == "DF_train_data"
    assert (out / "DeepFashion_train_00000-of-00001.tfrecord").is_file()
    for record in records:
        assert set(record) == DF_KEYS


def test_images_are_256_square_and_stored_unchanged(train_records, raw_dir):
    _, records = train_records
    for index, record in enumerate(records):
        assert record["image_height"] == [256] and record["image_width"] == [256]
        assert record["shape"] == [256 * 256 * 18]
        folder = "filted_up_train_flip" if index < len(records) // 2 else "filted_up_train"
        name = record["image_name_1"][0].decode()
        assert record["image_raw_1"] == [(raw_dir / folder / name).read_bytes()]
        assert Image.open(io.BytesIO(record["image_raw_1"][0])).size == (256, 256)


def test_mirrored_pairs_come_first_then_the_originals(train_records):
    out, records = train_records
    assert len(records) == 2 * 2 * 2  # (mirrored + original) x 2 identities x 2 ordered pairs
    with open(out / "pn_pairs_num_train_flip.p", "rb") as f:
        assert pickle.load(f) == 4
    assert (out / "tf_record_pair_num.txt").read_text() == "cnt:8"


def test_pose_features_equal_pg2_pose_of_the_first_candidates(train_records, raw_dir):
    _, records = train_records
    for index, record in enumerate(records):
        all_peaks, subsets = _pose_dictionaries(raw_dir, flip=index < len(records) // 2)
        for k in "01":
            name = record[f"image_name_{k}"][0].decode()
            keypoints_rc = pose_files.keypoints_from_openpose(
                all_peaks[name], subsets[name], "deepfashion"
            )
            for radius in (4, 8):
                indices, _, _ = pose.sparse_pose_indices(keypoints_rc, 256, 256, radius)
                assert record[f"indices_r{radius}_{k}"] == indices.tolist()
                assert record[f"values_r{radius}_{k}"] == [1.0] * len(indices)
                mask = pose.pose_mask(keypoints_rc, 256, 256, radius)
                assert record[f"pose_mask_r{radius}_{k}"] == mask.ravel().tolist()
            rcv = np.array(record[f"pose_peaks_{k}_rcv"]).reshape(18, 3)
            present = ~pose.missing_joints(keypoints_rc)
            assert np.array_equal(rcv[present, :2], keypoints_rc[present])
            assert np.array_equal(rcv[:, 2], present.astype(float))
            assert np.array(record[f"pose_peaks_{k}"]).reshape(16, 16, 18).sum() == present.sum()
            assert record[f"pose_subs_{k}"] == np.float32(subsets[name][0]).tolist()


def test_ids_count_identities_and_cameras_are_minus_one(train_records):
    _, records = train_records
    for record in records:
        same_person = (
            record["image_name_0"][0].split(b"_")[0] == record["image_name_1"][0].split(b"_")[0]
        )
        assert same_person and record["id_0"] == record["id_1"]
        assert record["cam_0"] == [-1] and record["cam_1"] == [-1] and record["label"] == [1]
    assert {record["id_0"][0] for record in records} == {0, 1}


def test_region_masks_are_ten_256_square_binary_masks(train_records):
    _, records = train_records
    masks = np.array(records[0]["roi10_mask_0"], np.int64).reshape(256, 256, 10)
    assert set(np.unique(masks)) == {0, 1}
    assert (masks == 0).any(axis=(0, 1)).all()  # every region masks out its box


def test_no_roi10_mask_leaves_only_those_features_out(raw_dir, tmp_path):
    out = convert_DF.convert(
        raw_dir, "train", tmp_path, 1, with_roi10_mask=False, show_progress=False
    )
    records = read_records(out)
    assert set(records[0]) == DF_KEYS - {"roi10_mask_0", "roi10_mask_1"}


def test_test_seq_pairs_every_image_with_every_image_in_order(raw_dir, tmp_path):
    out = convert_DF.convert(
        raw_dir, "test_seq", tmp_path, 1, with_roi10_mask=False, show_progress=False
    )
    names = sorted(path.name for path in (raw_dir / "filted_up_test_seq").iterdir())
    pairs = [
        (r["image_name_0"][0].decode(), r["image_name_1"][0].decode()) for r in read_records(out)
    ]
    assert pairs == [(a, b) for a in names for b in names]
    with open(out / "p_pairs_test.p", "rb") as f:
        assert pickle.load(f) == [list(pair) for pair in pairs]


def _convert_with_edited_poses(raw_dir, tmp_path, edit):
    """convert_DF on a copy of the test images as a "test_samples" split whose pose
    dictionaries ``edit(name, all_peaks, subsets)`` changed for the first image (``name``);
    returns the output folder and that name."""
    raw = tmp_path / "DF_img_pose"
    shutil.copytree(raw_dir / "filted_up_test_seq", raw / "filted_up_test_samples")
    all_peaks, subsets = _pose_dictionaries(raw_dir)
    name = sorted(path.name for path in (raw / "filted_up_test_samples").iterdir())[0]
    edit(name, all_peaks, subsets)
    (raw / "PoseFiltered").mkdir()
    for kind, value in (("all_peaks_dic", all_peaks), ("subsets_dic", subsets)):
        with open(raw / "PoseFiltered" / f"{kind}_DeepFashion.p", "wb") as f:
            pickle.dump(value, f, protocol=2)
    out = convert_DF.convert(
        raw, "test_samples", workers=1, with_roi10_mask=False, show_progress=False
    )
    return out, name


def test_first_candidate_is_used_even_when_it_is_not_the_persons(raw_dir, tmp_path):
    def distractor_first(name, all_peaks, subsets):
        all_peaks[name][0] = [(3, 5, 0.2, 999)] + list(all_peaks[name][0])  # joint 0

    out, name = _convert_with_edited_poses(raw_dir, tmp_path, distractor_first)
    record = next(r for r in read_records(out) if r["image_name_0"] == [name.encode()])
    assert record["pose_peaks_0_rcv"][:3] == [5.0, 3.0, 1.0]


def test_images_without_person_are_left_out_with_their_pairs(raw_dir, tmp_path, capsys):
    def nobody(name, all_peaks, subsets):
        subsets[name] = np.zeros((0, 20))

    out, name = _convert_with_edited_poses(raw_dir, tmp_path, nobody)
    names = {r["image_name_0"][0].decode() for r in read_records(out)}
    names |= {r["image_name_1"][0].decode() for r in read_records(out)}
    assert name not in names and len(read_records(out)) == 2  # the other identity's two pairs
    assert "left out 1 images" in capsys.readouterr().err
