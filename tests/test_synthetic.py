"""data_prep/synthetic.py: a deterministic raw dataset in the original layout, and its records."""

import pickle

import numpy as np
import pytest
from PIL import Image

from data_prep import synthetic, synthetic_people
from data_prep.read_records import read_records
from pg2_tf.core import pose, pose_files
from pg2_tf.core.errors import ConfigError


def _files(folder):
    return {
        path.relative_to(folder): path.read_bytes() for path in folder.rglob("*") if path.is_file()
    }


def _load(path):
    with open(path, "rb") as f:
        return pickle.load(f, encoding="latin1")


@pytest.fixture(scope="module")
def market_raw(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    return synthetic.make_synthetic_raw(root, "market", 3, 3, splits=("train",), seed=5)


def _poses(raw_dir, image_set="train"):
    suffix = "train_Flip" if image_set == "train_flip" else image_set
    pose_dir = raw_dir / "Market-1501_PoseFiltered"
    return (
        _load(pose_dir / f"all_peaks_dic_Market-1501_{suffix}.p"),
        _load(pose_dir / f"subsets_dic_Market-1501_{suffix}.p"),
    )


def test_market_layout_is_the_original_zips(market_raw):
    assert market_raw.name == "Market1501_img_pose_attr_seg"
    names = sorted(path.name for path in (market_raw / "bounding_box_train").iterdir())
    assert len(names) == 9 and names[0] == "0001_c2s1_000100_00.jpg"
    assert sorted(path.name for path in (market_raw / "bounding_box_train_flip").iterdir()) == names
    for image_set in ("train", "train_Flip"):
        for kind in ("all_peaks_dic", "subsets_dic"):
            path = market_raw / "Market-1501_PoseFiltered" / f"{kind}_Market-1501_{image_set}.p"
            assert path.read_bytes()[:2] == b"\x80\x02"  # pickle protocol 2, as Python 2 wrote
    assert Image.open(market_raw / "bounding_box_train" / names[0]).size == (64, 128)


def test_same_arguments_give_identical_files(market_raw, tmp_path):
    again = synthetic.make_synthetic_raw(tmp_path, "market", 3, 3, splits=("train",), seed=5)
    other_seed = synthetic.make_synthetic_raw(tmp_path / "b", "market", 3, 3, ("train",), seed=6)
    assert _files(again) == _files(market_raw)
    assert _files(other_seed) != _files(market_raw)


def test_both_selection_rules_recover_the_keypoints_inside_the_image(market_raw):
    all_peaks, subsets = _poses(market_raw)
    for name in all_peaks:
        market = pose_files.keypoints_from_openpose(all_peaks[name], subsets[name], "market")
        deepfashion = pose_files.keypoints_from_openpose(
            all_peaks[name], subsets[name], "deepfashion"
        )
        assert np.array_equal(market, deepfashion)
        present = ~pose.missing_joints(market)
        assert present.sum() >= 12  # a back view hides 3 joints; a hand may leave the frame
        assert (market[present] >= 0).all() and (market[present, 0] <= 127).all()
        assert (market[present, 1] <= 63).all()


def test_figures_are_drawn_on_their_keypoints(market_raw):
    all_peaks, subsets = _poses(market_raw)
    for identity in range(3):
        shirt = np.array(synthetic_people.identity_appearance(identity, seed=5).shirt)
        for name in sorted(all_peaks)[identity * 3 : identity * 3 + 3]:
            keypoints_rc = pose_files.keypoints_from_openpose(all_peaks[name], subsets[name])
            neck, hips = keypoints_rc[1], keypoints_rc[[8, 11]].mean(axis=0)
            pixels = np.asarray(Image.open(market_raw / "bounding_box_train" / name), np.float32)
            torso = [np.round(neck + t * (hips - neck)).astype(int) for t in (0.4, 0.5, 0.6, 0.7)]
            median = np.median([pixels[row, col] for row, col in torso], axis=0)
            assert np.abs(median - shirt).max() < 40, name


def test_mirrored_copies_have_mirrored_pixels_and_poses(market_raw):
    all_peaks, subsets = _poses(market_raw)
    flip_peaks, flip_subsets = _poses(market_raw, "train_flip")
    for name in all_peaks:
        keypoints_rc = pose_files.keypoints_from_openpose(all_peaks[name], subsets[name])
        mirrored = pose_files.keypoints_from_openpose(flip_peaks[name], flip_subsets[name])
        assert np.array_equal(mirrored, pose.mirror_keypoints(keypoints_rc, 64))
        image = np.asarray(Image.open(market_raw / "bounding_box_train" / name), np.float32)
        flipped = np.asarray(Image.open(market_raw / "bounding_box_train_flip" / name), np.float32)
        assert np.abs(flipped - image[:, ::-1]).mean() < 3  # both JPEG-encoded


def test_market_train_records_are_made_and_reused(tmp_path):
    data_path = synthetic.make_synthetic_records(tmp_path, "market", "train", identities=2)
    assert data_path == tmp_path / "Market_train_data"
    records = read_records(data_path)
    assert len(records) == 2 * 2 * 3 * 2  # (mirrored + original) x 2 identities x 3*2 pairs
    assert _load(data_path / "pn_pairs_num_train.p") == 12
    shard = data_path / "Market1501_train_00000-of-00001.tfrecord"
    written = shard.stat().st_mtime_ns
    assert synthetic.make_synthetic_records(tmp_path, "market", "train", identities=2) == data_path
    assert shard.stat().st_mtime_ns == written


def test_market_test_records_are_made_without_junk_files_by_default(tmp_path):
    data_path = synthetic.make_synthetic_records(tmp_path, "market", "test", identities=2)
    raw_test = tmp_path / "Market1501_img_pose_attr_seg" / "bounding_box_test"
    assert len(list(raw_test.iterdir())) == 6
    assert len(read_records(data_path / "Market1501_test_00000-of-00001.tfrecord")) == 12


def test_junk_test_files_start_the_market_test_folder_as_in_the_real_data(tmp_path):
    raw_dir = synthetic.make_synthetic_raw(
        tmp_path, "market", 2, 3, ("test",), junk_test_files=True
    )
    names = sorted(path.name for path in (raw_dir / "bounding_box_test").iterdir())
    assert len(names) == 6617 + 6
    assert all((raw_dir / "bounding_box_test" / name).stat().st_size == 0 for name in names[:6617])
    assert names[6617].startswith("1001_")  # the first real image


def test_deepfashion_records_are_256_square(tmp_path):
    data_path = synthetic.make_synthetic_records(tmp_path, "deepfashion", "test", 2, 2)
    records = read_records(data_path)
    assert data_path.name == "DF_test_data" and len(records) == 4
    assert all(r["image_height"] == [256] and r["image_width"] == [256] for r in records)
    assert "roi10_mask_0" not in records[0]


def test_command_line_writes_raw_data_and_records(tmp_path, capsys):
    synthetic.main(["--kind", "market", "--out", str(tmp_path), "--identities", "2", "--convert"])
    output = capsys.readouterr().out
    assert "train records:" in output and "test records:" in output
    assert (tmp_path / "Market_test_data" / "tf_record_pair_num.txt").read_text() == "cnt:12"


def test_command_line_writes_the_demos_raw_data_as_the_library_does(tmp_path, capsys):
    # pg2_tf.demo runs this command line: train's people, and 1 of them in new poses in test.
    options = ["--kind", "market", "--identities", "2", "--test_identities", "1", "--seed", "5"]
    options += ["--seen_people", "--shared_background"]
    synthetic.main(["--out", str(tmp_path / "cli"), *options])
    assert "raw market data:" in capsys.readouterr().out
    people = dict(seed=5, seen_people=True, shared_background=True)
    library = synthetic.make_synthetic_raw(tmp_path / "lib", "market", 2, 3, ("train",), **people)
    synthetic.make_synthetic_raw(tmp_path / "lib", "market", 1, 3, ("test",), **people)
    made = tmp_path / "cli" / library.name
    for image_set, people_in_set in (("train", 2), ("train_flip", 2), ("test", 1)):
        names = sorted(p.name for p in (library / f"bounding_box_{image_set}").iterdir())
        assert len(names) == 3 * people_in_set
        for name in names:
            path = f"bounding_box_{image_set}/{name}"
            assert (made / path).read_bytes() == (library / path).read_bytes()


def test_unknown_kind_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="kind must be one of"):
        synthetic.make_synthetic_raw(tmp_path, "lsp")


def _photos(raw_dir, image_set, identity):
    folder = raw_dir / f"bounding_box_{image_set}"
    paths = sorted(folder.glob(f"{identity:04d}_*.jpg"))
    return [np.asarray(Image.open(path).convert("RGB")).astype(float) for path in paths]


def _top_corners(photo):
    return np.concatenate([photo[:4, :4].mean((0, 1)), photo[:4, -4:].mean((0, 1))])


def test_shared_background_gives_each_person_one_background_in_all_photos(tmp_path):
    shared = synthetic.make_synthetic_raw(
        tmp_path / "s", "market", 2, 3, ("train",), seed=5, shared_background=True
    )
    own = synthetic.make_synthetic_raw(tmp_path / "o", "market", 2, 3, ("train",), seed=5)
    for identity in (1, 2):
        corners = [_top_corners(photo) for photo in _photos(shared, "train", identity)]
        assert np.abs(np.array(corners) - corners[0]).max() < 8  # pixel noise and JPEG only
    corners = [_top_corners(photo) for photo in _photos(own, "train", 1)]
    assert np.abs(np.array(corners) - corners[0]).max() > 20


def _shirt_pixels(photo, appearance):
    return int((np.abs(photo - np.array(appearance.shirt)).max(axis=-1) < 20).sum())


@pytest.mark.parametrize("seen_people", [False, True])
def test_seen_people_puts_train_people_in_the_test_set(tmp_path, seen_people):
    raw = synthetic.make_synthetic_raw(
        tmp_path, "market", 2, 3, ("train", "test"), seed=5, seen_people=seen_people
    )
    first_train_person = synthetic_people.identity_appearance(0, seed=5)
    test_photo = _photos(raw, "test", 1001)[0]
    assert (_shirt_pixels(test_photo, first_train_person) > 100) == seen_people
    assert _shirt_pixels(_photos(raw, "train", 1)[0], first_train_person) > 100
