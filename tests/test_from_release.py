"""data_prep.from_release: records, annotations and skipped lists from the official releases."""

import json
import os
import pickle
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import release_helpers
import skimage.data
from PIL import Image

from data_prep import from_release, keypoint_cache
from data_prep.read_records import read_records
from pg2_tf.core import folder_lock
from pg2_tf.core.errors import DataError, Pg2Error
from pg2_tf.records import annotations

TESTS = Path(__file__).resolve().parent
PROJECT = TESTS.parent
FAKE = release_helpers.FakeEstimate()


def run(dataset, release, split, out, **options):
    options.setdefault("workers", 1)
    options.setdefault("show_progress", False)
    options.setdefault("make_estimate", FAKE)
    options.setdefault("log", lambda line: None)
    return from_release.convert(dataset, release, split, out, **options)


def record_pairs(data_dir: Path, prefix: str) -> list[tuple[str, str]]:
    records = read_records(sorted(data_dir.glob(f"{prefix}_*.tfrecord")))
    return [(r["image_name_0"][0].decode(), r["image_name_1"][0].decode()) for r in records]


def cache_images(path: Path) -> list[str]:
    lines = path.read_text().splitlines()[1:]
    return [line.split('"image": "')[1].split('"')[0] for line in lines]


@pytest.fixture(scope="module")
def market_release(tmp_path_factory):
    """Two people over several cameras, one with a frame where nobody is found (999xxx) and one
    with 3 joints (998xxx), plus a file whose name does not parse."""
    root = tmp_path_factory.mktemp("market_release")
    people = {
        "0002": release_helpers.market_names("0002", [(1, 1), (1, 2), (3, 3), (2, 999001)]),
        "0007": release_helpers.market_names("0007", [(2, 10), (5, 11), (6, 998001)]),
    }
    release_helpers.make_market_release(root, people)
    (root / "bounding_box_train" / "Thumbs.db").write_bytes(b"not an image")
    Image.new("RGB", (64, 128)).save(root / "bounding_box_train" / "holiday.jpg")
    return root


def test_market_train_pairs_every_two_images_of_a_person_both_orders_and_mirrored(
    market_release, tmp_path
):
    data_dir = run("market", market_release, "train", tmp_path)
    # Independent count: the usable images per identity (0002: 3 of 4, 0007: 2 of 3), n(n-1)
    # ordered pairs each, written once for the mirrored copies and once for the originals.
    usable = {"0002": 3, "0007": 2}
    expected = 2 * sum(n * (n - 1) for n in usable.values())
    pairs = record_pairs(data_dir, "Market1501_train")
    assert len(pairs) == expected == 16
    assert all(a[:4] == b[:4] and a != b for a, b in pairs)
    assert (data_dir / "tf_record_pair_num.txt").read_text() == f"cnt:{expected}"
    with open(data_dir / "pn_pairs_num_train.p", "rb") as f:
        assert pickle.load(f) == expected // 2  # p_pairs of the originals; no negatives here
    assert data_dir == tmp_path / "Market_train_data"


def test_skipped_list_names_every_unused_image_with_its_reason(market_release, tmp_path):
    run("market", market_release, "train", tmp_path)
    lines = (tmp_path / "skipped_train.txt").read_text().splitlines()
    assert lines == [
        "bounding_box_train/0002_c2s1_999001_00.jpg: no person found",
        "bounding_box_train/0007_c6s1_998001_00.jpg: too few joints (3 of 18, --min_joints=4)",
        "bounding_box_train/holiday.jpg: name is not PPPP_cCsS_FFFFFF_NN.jpg",
    ]


def test_market_test_leaves_out_junk_and_distractors_by_name(tmp_path):
    people = {
        "-1": release_helpers.market_names("-1", [(1, 5), (2, 6)]),
        "0000": release_helpers.market_names("0000", [(1, 7), (3, 8)]),
        "0011": release_helpers.market_names("0011", [(1, 20), (4, 21), (4, 22)]),
    }
    release = release_helpers.make_market_release(tmp_path / "release", people, "bounding_box_test")
    data_dir = run("market", release, "test", tmp_path / "out")
    pairs = record_pairs(data_dir, "Market1501_test")
    assert len(pairs) == 3 * 2 and {a[:4] for a, _ in pairs} == {"0011"}  # no mirrored copies
    skipped = (tmp_path / "out" / "skipped_test.txt").read_text()
    assert "-1_c1s1_000005_00.jpg: junk detection (identity -1), left out by name" in skipped
    assert "0000_c3s1_000008_00.jpg: distractor (identity 0000), left out by name" in skipped


def test_deepfashion_pairs_within_an_item_from_the_partition_list(tmp_path):
    items = {
        "id_00000001": [("01_1_front.jpg", "train"), ("01_2_side.jpg", "train"),
                        ("01_3_back.jpg", "query")],
        "id_00000002": [("02_1_front.jpg", "train"), ("02_4_full.jpg", "train"),
                        ("02_7_additional.jpg", "train")],
    }  # fmt: skip
    release = release_helpers.make_deepfashion_release(tmp_path / "release", items)
    data_dir = run("deepfashion", release, "train", tmp_path / "out")
    records = read_records(sorted(data_dir.glob("DeepFashion_train_*.tfrecord")))
    assert len(records) == 2 * (2 * 1 + 3 * 2)  # mirrored + originals, train images only
    assert {int(r["image_height"][0]) for r in records} == {256}
    assert {int(r["image_width"][0]) for r in records} == {256}
    assert all(
        r["image_name_0"][0].split(b"_")[0] == r["image_name_1"][0].split(b"_")[0] for r in records
    )


def test_annotation_csv_holds_every_image_under_pose_transfer_names(tmp_path):
    items = {"id_00000003": [("05_1_front.jpg", "gallery"), ("05_2_side.jpg", "query")]}
    release = release_helpers.make_deepfashion_release(tmp_path / "release", items)
    run("deepfashion", release, "test", tmp_path / "out", records=False)
    poses = annotations.read_annotations(str(tmp_path / "out" / "deepfashion-annotation-test.csv"))
    assert sorted(poses) == [
        "fashionWOMENDressesid0000000305_1front.jpg",
        "fashionWOMENDressesid0000000305_2side.jpg",
    ]
    # Pose-Transfer's 256 x 176 frame: 40 columns fewer than the 256 x 256 image.
    expected = np.round(release_helpers.STANDING_RC * [2, 4]) - [0, 40]
    np.testing.assert_array_equal(poses["fashionWOMENDressesid0000000305_1front.jpg"], expected)


def test_pose_transfer_pair_list_gives_exactly_its_pairs_in_order(market_release, tmp_path):
    pairs_csv = tmp_path / "market-pairs-train.csv"
    listed = [
        ("0007_c5s1_000011_00.jpg", "0007_c2s1_000010_00.jpg"),
        ("0002_c1s1_000001_00.jpg", "0002_c3s1_000003_00.jpg"),
        ("0002_c1s1_000001_00.jpg", "9999_c1s1_000001_00.jpg"),  # not in the release
    ]
    pairs_csv.write_text("from,to\n" + "".join(f"{a},{b}\n" for a, b in listed))
    data_dir = run("market", market_release, "train", tmp_path / "out", pairs_csv=pairs_csv)
    assert record_pairs(data_dir, "Market1501_train") == listed[:2]


def test_not_a_release_is_one_line_naming_the_folder_and_exit_2(tmp_path, capsys):
    (tmp_path / "photos").mkdir()
    with pytest.raises(SystemExit) as stop:
        from_release.common.run_cli(
            lambda: from_release.main(
                [
                    "--dataset=deepfashion",
                    f"--release={tmp_path / 'photos'}",
                    "--split=train",
                    f"--out={tmp_path / 'out'}",
                ],
                make_estimate=FAKE,
            )  # fmt: skip
        )
    assert stop.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "is not a deepfashion release: img/ is missing" in error
    with pytest.raises(DataError, match=r"no file of bounding_box_train/ is named PPPP"):
        release_helpers.make_market_release(tmp_path / "m", {"x": ["holiday.jpg"]})
        run("market", tmp_path / "m", "train", tmp_path / "out2")


def test_unreadable_jpeg_stops_naming_it_and_the_rerun_keeps_the_other_keypoints(tmp_path):
    names = release_helpers.market_names("0003", [(1, 1), (2, 2), (3, 3)])
    release = release_helpers.make_market_release(tmp_path / "release", {"0003": names})
    broken = release / "bounding_box_train" / names[1]
    broken.write_bytes(broken.read_bytes()[:50])
    with pytest.raises(DataError, match=rf"e\.g\. bounding_box_train/{names[1]}: unreadable"):
        run("market", release, "train", tmp_path / "out", records=False)
    cache = tmp_path / "out" / "keypoints_train.jsonl"
    assert sorted(cache_images(cache)) == [f"bounding_box_train/{n}" for n in (names[0], names[2])]
    broken.unlink()  # the fix the line gives
    run("market", release, "train", tmp_path / "out")
    assert sorted(cache_images(cache)) == [f"bounding_box_train/{n}" for n in (names[0], names[2])]


def test_a_second_run_on_the_same_out_is_refused(market_release, tmp_path):
    with folder_lock.FolderLock(str(tmp_path), "--out", "from_release run"):
        with pytest.raises(Pg2Error, match=rf"--out={tmp_path} is in use by another from_release"):
            run("market", market_release, "train", tmp_path, records=False)


def test_torn_last_cache_line_is_cut_and_each_image_stays_once(tmp_path):
    path = tmp_path / "keypoints_train.jsonl"
    cache = keypoint_cache.KeypointCache(path, {"dataset": "market"}).open()
    cache.add("a.jpg", np.zeros((18, 2)), None)
    cache.add("b.jpg", None, "no person found")
    cache.close()
    with open(path, "ab") as handle:
        handle.write(b'{"image": "c.jpg", "keypoi')  # a kill -9 in the middle of a write
    cache = keypoint_cache.KeypointCache(path, {"dataset": "market"}).open()
    assert sorted(cache.rows) == ["a.jpg", "b.jpg"]
    cache.add("c.jpg", None, "no person found")
    cache.close()
    assert cache_images(path) == ["a.jpg", "b.jpg", "c.jpg"]


def test_an_older_caches_no_person_found_is_estimated_again_and_its_keypoints_kept(tmp_path):
    # Version 1 read crops MediaPipe's way only; version 2 reads a crop whole when that fails.
    path = tmp_path / "keypoints_train.jsonl"
    rows = [
        {"dataset": "market", "version": 1},
        {"image": "a.jpg", "keypoints_rc": np.ones((18, 2)).tolist(), "reason": None},
        {"image": "b.jpg", "keypoints_rc": None, "reason": "no person found"},
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))

    cache = keypoint_cache.KeypointCache(path, {"dataset": "market"}).open()

    assert keypoint_cache.VERSION == 2 and sorted(cache.rows) == ["a.jpg"]
    np.testing.assert_array_equal(cache.rows["a.jpg"][0], np.ones((18, 2)))
    cache.add("b.jpg", None, "no person found")  # this version's answer: kept from now on
    cache.close()
    again = keypoint_cache.KeypointCache(path, {"dataset": "market"}).open()
    assert sorted(again.rows) == ["a.jpg", "b.jpg"]
    assert again.rows["b.jpg"] == (None, "no person found")
    again.close()


def _subprocess_run(release: Path, out: Path, delay: float, workers: int, preexec=None):
    code = (
        f"import sys; sys.path.insert(0, {str(TESTS)!r}); import release_helpers; "
        "from data_prep import common, from_release; common.run_cli(lambda: from_release.main("
        f"['--dataset=market', '--release={release}', '--split=train', '--out={out}', "
        f"'--workers={workers}', '--quiet', '--annotations_only'], "
        f"make_estimate=release_helpers.FakeEstimate({delay})))"
    )
    environment = dict(os.environ, PYTHONPATH=str(PROJECT))
    return subprocess.Popen(
        [sys.executable, "-c", code], env=environment, stderr=subprocess.PIPE, text=True,
        preexec_fn=preexec,
    )  # fmt: skip


@pytest.fixture(scope="module")
def forty_images(tmp_path_factory):
    root = tmp_path_factory.mktemp("forty")
    names = {
        f"{p:04d}": release_helpers.market_names(f"{p:04d}", [(1, p * 10 + i) for i in range(4)])
        for p in range(1, 11)
    }
    return release_helpers.make_market_release(root, names), sorted(
        f"bounding_box_train/{n}" for group in names.values() for n in group
    )


def test_kill_9_mid_run_resumes_with_no_row_lost_or_repeated(forty_images, tmp_path):
    release, expected = forty_images
    cache = tmp_path / "keypoints_train.jsonl"
    process = _subprocess_run(release, tmp_path, delay=0.2, workers=2)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait for some rows, then kill the parent hard
        if cache.is_file() and len(cache.read_text().splitlines()) > 6:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before = cache_images(cache)
    assert 5 <= len(done_before) < len(expected)
    calls = []

    def counting(path):
        calls.append(path)
        return release_helpers.fake_estimate(0.0, path)

    run("market", release, "train", tmp_path, records=False, make_estimate=lambda: counting)
    rows = cache_images(cache)
    assert sorted(rows) == expected  # each image exactly once
    assert len(calls) == len(expected) - len(set(done_before))  # only the missing ones


def test_a_failed_write_is_one_line_and_the_same_command_resumes(forty_images, tmp_path):
    release, expected = forty_images

    def small_files():  # writes past 4 KB fail (EFBIG), as a full disk fails them (ENOSPC)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    process = _subprocess_run(release, tmp_path, delay=0.0, workers=1, preexec=small_files)
    _, error = process.communicate(timeout=120)
    assert process.returncode == 2
    line = error.strip().splitlines()[-1]
    assert line.startswith(f"error: writing {tmp_path / 'keypoints_train.jsonl'} failed")
    assert "run the same command again" in line
    run("market", release, "train", tmp_path, records=False)
    assert sorted(cache_images(tmp_path / "keypoints_train.jsonl")) == expected


def test_blazepose_finds_the_people_of_real_crops_and_nobody_in_a_cup(
    blazepose_model_dir, tmp_path
):
    """The real path: BlazePose on 128 x 64 crops of two photos of people and one without."""
    folder = tmp_path / "release" / "bounding_box_train"
    folder.mkdir(parents=True)
    crops = {
        "0001_c1s1_000001_00.jpg": skimage.data.astronaut()[0:512, 48:304],
        "0002_c2s1_000002_00.jpg": np.stack([skimage.data.camera()[0:512, 96:352]] * 3, -1),
        "0003_c1s1_000003_00.jpg": skimage.data.coffee()[0:400, 200:400],
    }
    for name, pixels in crops.items():
        Image.fromarray(pixels).resize((64, 128), Image.Resampling.BILINEAR).save(folder / name)
    run("market", tmp_path / "release", "train", tmp_path / "out", records=False,
        make_estimate=keypoint_cache.BlazePose(blazepose_model_dir))  # fmt: skip
    poses = annotations.read_annotations(str(tmp_path / "out" / "market-annotation-train.csv"))
    astronaut = poses["0001_c1s1_000001_00.jpg"]
    present = (astronaut >= 0).all(axis=1)
    assert present[[0, 1, 2, 5]].all()  # nose, neck and shoulders of a head-and-torso photo
    assert (astronaut[present, 0] < 128).all() and (astronaut[present, 1] < 64).all()
    assert astronaut[0, 0] < astronaut[1, 0]  # the nose above the neck
    skipped = (tmp_path / "out" / "skipped_train.txt").read_text()
    assert "0003_c1s1_000003_00.jpg: no person found" in skipped


def test_deepfashion_pair_list_names_map_to_the_release_images(tmp_path):
    items = {"id_00000004": [("01_1_front.jpg", "train"), ("01_3_back.jpg", "train")]}
    release = release_helpers.make_deepfashion_release(tmp_path / "release", items)
    pairs_csv = tmp_path / "fasion-resize-pairs-train.csv"
    pairs_csv.write_text(
        "from,to\nfashionWOMENDressesid0000000401_3back.jpg,fashionWOMENDressesid0000000401_1front.jpg\n"
    )
    data_dir = run("deepfashion", release, "train", tmp_path / "out", pairs_csv=pairs_csv)
    assert record_pairs(data_dir, "DeepFashion_train") == [
        ("id00000004_WOMEN_Dresses_01_3_back.jpg", "id00000004_WOMEN_Dresses_01_1_front.jpg")
    ]
