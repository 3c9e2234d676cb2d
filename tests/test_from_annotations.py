"""data_prep/from_annotations.py: records from Pose-Transfer style CSV keypoints."""

import io
import json
import pickle

import helpers
import numpy as np
import pytest
from PIL import Image

from data_prep import convert_market, from_annotations
from data_prep.read_records import read_records, records_by_pair
from data_prep.synthetic import make_synthetic_raw
from pg2_tf.core import pose, pose_files


def _write_annotations(path, keypoints_by_name):
    lines = ["name:keypoints_y:keypoints_x"]
    for name, keypoints_rc in keypoints_by_name.items():
        rows, cols = keypoints_rc.astype(int).T.tolist()
        lines.append(f"{name}:{json.dumps(rows)}:{json.dumps(cols)}")
    path.write_text("\n".join(lines) + "\n")


def _write_pairs(path, pairs):
    path.write_text("from,to\n" + "".join(f"{a},{b}\n" for a, b in pairs))


def _keypoints_of(raw_dir, pose_folder, pickle_suffix, selection):
    loaded = []
    for kind in ("all_peaks_dic", "subsets_dic"):
        with open(raw_dir / pose_folder / f"{kind}_{pickle_suffix}.p", "rb") as f:
            loaded.append(pickle.load(f, encoding="latin1"))
    all_peaks, subsets = loaded
    return {
        name: pose_files.keypoints_from_openpose(all_peaks[name], subsets[name], selection)
        for name in all_peaks
    }


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    root = tmp_path_factory.mktemp("annotations_market")
    raw_dir = make_synthetic_raw(root, "market", 2, 3, splits=("test_samples",))
    keypoints = _keypoints_of(
        raw_dir, "Market-1501_PoseFiltered", "Market-1501_test_samples", "market"
    )
    names = sorted(keypoints)
    annotated = {name: keypoints[name] for name in names[1:]}  # names[0] has no annotation
    pairs = [(names[2], names[1]), (names[1], names[2]), (names[0], names[1]), (names[5], names[3])]
    _write_annotations(root / "market-annotation-test.csv", annotated)
    _write_pairs(root / "market-pairs-test.csv", pairs)
    out = from_annotations.convert(
        "market",
        root / "market-annotation-test.csv",
        root / "market-pairs-test.csv",
        raw_dir / "bounding_box_test_samples",
        "test",
        root / "records",
        workers=1,
        show_progress=False,
    )
    return raw_dir, keypoints, pairs, out


def test_market_records_follow_the_pairs_file_and_skip_unannotated_images(market):
    _, _, pairs, out = market
    written = [
        (r["image_name_0"][0].decode(), r["image_name_1"][0].decode()) for r in read_records(out)
    ]
    assert written == [pairs[0], pairs[1], pairs[3]]
    assert (out / "tf_record_pair_num.txt").read_text() == "cnt:3"
    with open(out / "pn_pairs_num_test.p", "rb") as f:
        assert pickle.load(f) == 4


def test_market_pose_features_are_those_of_the_csv_keypoints(market):
    _, keypoints, _, out = market
    for record in read_records(out):
        for k in "01":
            keypoints_rc = keypoints[record[f"image_name_{k}"][0].decode()]
            indices, _, _ = pose.sparse_pose_indices(keypoints_rc, 128, 64)
            assert record[f"indices_r4_{k}"] == indices.tolist()
            assert (
                record[f"pose_mask_r4_{k}"]
                == pose.pose_mask(keypoints_rc, 128, 64).ravel().tolist()
            )
            rcv = np.array(record[f"pose_peaks_{k}_rcv"]).reshape(18, 3)
            present = ~pose.missing_joints(keypoints_rc)
            assert np.array_equal(rcv[present, :2], keypoints_rc[present])
            subs = record[f"pose_subs_{k}"]
            assert (
                subs[-1] == present.sum()
                and (np.array(subs[:18]) == -1).sum() == 18 - present.sum()
            )


def test_market_records_equal_the_converters_but_for_openpose_details_and_ids(market, tmp_path):
    raw_dir, _, _, out = market
    converted = records_by_pair(
        convert_market.convert(raw_dir, "test_samples", tmp_path, 1, show_progress=False)
    )
    differing = {"pose_subs_0", "pose_subs_1", "id_0", "id_1"}
    for pair, record in records_by_pair(out).items():
        assert set(record) == set(converted[pair])
        for key in set(record) - differing:
            assert record[key] == converted[pair][key], (pair, key)


@pytest.fixture(scope="module")
def fashion(tmp_path_factory):
    """256 x 176 'fasion-resize' images: synthetic 256 x 256 ones with 40 columns cut each side."""
    root = tmp_path_factory.mktemp("annotations_fashion")
    raw_dir = make_synthetic_raw(root, "deepfashion", 2, 2, splits=("test_samples",))
    keypoints = _keypoints_of(raw_dir, "PoseFiltered", "DeepFashion", "deepfashion")
    images = root / "fashion_resize"
    images.mkdir()
    cropped = {}
    for name, keypoints_rc in keypoints.items():
        pixels = np.asarray(Image.open(raw_dir / "filted_up_test_samples" / name))[:, 40:216]
        Image.fromarray(pixels).save(images / name, quality=95)
        shifted = keypoints_rc.copy()
        shifted[:, 1] -= 40
        shifted[
            pose.missing_joints(keypoints_rc) | (shifted[:, 1] < 0) | (shifted[:, 1] > 175)
        ] = -1
        cropped[name] = shifted
    names = sorted(cropped)
    _write_annotations(root / "fasion-resize-annotation-test.csv", cropped)
    _write_pairs(
        root / "fasion-resize-pairs-test.csv", [(names[0], names[1]), (names[3], names[2])]
    )
    out = from_annotations.convert(
        "deepfashion",
        root / "fasion-resize-annotation-test.csv",
        root / "fasion-resize-pairs-test.csv",
        images,
        "test",
        root / "records",
        workers=1,
        with_roi10_mask=False,
        show_progress=False,
    )
    return images, cropped, out


def test_fashion_images_are_padded_to_256_by_repeating_edge_columns(fashion):
    images, _, out = fashion
    records = read_records(out)
    assert len(records) == 2
    for record in records:
        assert record["image_height"] == [256] and record["image_width"] == [256]
        stored = np.asarray(Image.open(io.BytesIO(record["image_raw_0"][0])), np.float32)
        source = np.asarray(Image.open(images / record["image_name_0"][0].decode()), np.float32)
        assert stored.shape == (256, 256, 3)
        assert np.abs(stored[:, 40:216] - source).mean() < 3  # re-encoded JPEG
        assert np.abs(stored[:, :40] - source[:, :1]).mean() < 3
        assert np.abs(stored[:, 216:] - source[:, -1:]).mean() < 3


def test_fashion_keypoints_move_right_by_the_left_padding(fashion):
    _, cropped, out = fashion
    for record in read_records(out):
        for k in "01":
            keypoints_rc = cropped[record[f"image_name_{k}"][0].decode()].copy()
            present = ~pose.missing_joints(keypoints_rc)
            keypoints_rc[present, 1] += 40
            rcv = np.array(record[f"pose_peaks_{k}_rcv"]).reshape(18, 3)
            assert np.array_equal(rcv[present, :2], keypoints_rc[present])
            indices, _, _ = pose.sparse_pose_indices(keypoints_rc, 256, 256)
            assert record[f"indices_r4_{k}"] == indices.tolist()


def test_annotation_file_with_a_short_row_is_a_data_error_naming_the_line(tmp_path):
    helpers.read_error(
        from_annotations.read_annotations,
        tmp_path / "annotation.csv",
        "name:keypoints_y:keypoints_x\na.jpg:[1, 2]:[3, 4]\n",
        r"annotation.csv:2 is not",
    )


def test_annotation_file_with_another_header_is_a_data_error(tmp_path):
    helpers.read_error(
        from_annotations.read_annotations,
        tmp_path / "annotation.csv",
        "name,x,y\n",
        "not 'name:keypoints_y:keypoints_x'",
    )


@pytest.mark.parametrize(
    "row, reason",
    [
        ("a.jpg:[{}]:[3]", "not 'name:"),  # a JSON object where numbers belong
        ("a.jpg:[NaN" + ", 1" * 17 + "]:[1" + ", 1" * 17 + "]", "not finite"),
    ],
    ids=["object", "nan"],
)
def test_annotation_rows_with_non_numbers_are_a_data_error_naming_the_line(tmp_path, row, reason):
    error = helpers.read_error(
        from_annotations.read_annotations,
        tmp_path / "annotation.csv",
        f"name:keypoints_y:keypoints_x\n{row}\n",
        r"annotation.csv:2 is not",
    )
    assert reason in str(error)


def test_annotation_file_that_is_not_utf8_is_a_data_error(tmp_path):
    helpers.read_error(
        from_annotations.read_annotations,
        tmp_path / "annotation.csv",
        b"name:keypoints_y:keypoints_x\n\xff\xfe:[1]:[2]\n",
        r"cannot read .*annotation.csv.* as UTF-8 text",
    )


def test_pairs_file_without_from_to_columns_is_a_data_error(tmp_path):
    helpers.read_error(
        from_annotations.read_pairs,
        tmp_path / "pairs.csv",
        "source,target\na.jpg,b.jpg\n",
        "no 'from' and 'to' columns",
    )


def test_pairs_file_extra_columns_are_ignored(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text(",from,to\n0,a.jpg,b.jpg\n1,c.jpg,d.jpg\n")
    assert from_annotations.read_pairs(path) == [["a.jpg", "b.jpg"], ["c.jpg", "d.jpg"]]
