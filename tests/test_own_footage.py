"""benchmarks/own_footage.py: from a real clip to a scored model, its pictures and its report.

The clip: 6 s of OpenCV's vtest.avi (tests/fixtures/footage/cut_clip.py), every 6th frame; a
training budget of 3 seconds at width 8, tracks of 2 crops kept.
"""

import json
import pathlib

import numpy as np
import pytest
from PIL import Image

from benchmarks import own_footage
from pg2_tf.core import hardware
from pg2_tf.scoring import metrics, result_folders

CLIP = pathlib.Path(__file__).parent / "fixtures" / "footage" / "vtest_clip.mp4"
EVERY = 6
CLIP_FRAMES = 60  # cut_clip.py: frames 600..659 of vtest.avi


@pytest.fixture(scope="module")
def run(tmp_path_factory, blazepose_model_dir):
    out = tmp_path_factory.mktemp("own_footage")
    arguments = [f"--video={CLIP}", f"--out={out}", "--minutes=0.05", f"--every={EVERY}"]
    arguments += [
        "--conv_hidden_num=8",
        "--batch_size=4",
        "--animation_frames=4",
        "--workers=1",
        "--min_track=2",
    ]
    assert own_footage.main(arguments) == 0
    return out, json.loads((out / "report.json").read_text())


def test_the_report_holds_the_issues_keys_and_each_variants_four_scores(run):
    _, report = run
    assert {"data", "recipe", "steps", "minutes", "scores", "cpu_flags"} <= set(report)
    assert set(report["scores"]) == {"model", "copy_source", "g1_only"}
    for numbers in report["scores"].values():
        assert {"ssim", "mask_ssim", "l1", "masked_l1"} <= set(numbers)
    assert report["steps"] == report["milestones"][-1]["step"] > 0
    flags = report["recipe"]["flags"]
    assert (flags["conv_hidden_num"], flags["batch_size"]) == (8, 4)
    assert flags["mixed_precision"] == hardware.bfloat16_support().native
    assert 0 < flags["stage1_steps"] < flags["max_step"]


def test_the_split_is_by_time_the_test_set_is_the_last_quarter(run):
    out, report = run
    boundary = 0.75 * CLIP_FRAMES
    data = out / "data"
    train = json.loads((data / own_footage.TRAIN / "summary_train.json").read_text())
    test = json.loads((data / own_footage.TEST / "summary_test.json").read_text())
    assert all(f < boundary for frames in train["kept_tracks"].values() for f in frames)
    assert all(f >= boundary for frames in test["kept_tracks"].values() for f in frames)
    assert all(f % EVERY == 0 for frames in test["kept_tracks"].values() for f in frames)
    # Every ordered pair of crops of one test person is a test pair.
    expected = sum(len(f) * (len(f) - 1) for f in test["kept_tracks"].values())
    assert report["data"]["test"]["pairs"] == expected
    shared = sorted(set(train["kept_tracks"]) & set(test["kept_tracks"]))
    assert report["data"]["shared_identities"]["tracks"] == shared
    assert report["data"]["shared_identities"]["also_in_train"] == len(shared)


def test_copy_source_scores_are_the_source_images_distance_to_the_target(run):
    out, report = run
    result = result_folders.load(str(out / "milestones" / "0.05min" / "test_result"))
    sources = result_folders.read_folder_images(
        str(out / "milestones" / "0.05min" / "test_result" / "x")
    )
    expected = np.mean(
        [metrics.l1_mean_distance(s, t) for s, t in zip(sources, result.targets, strict=True)]
    )
    assert report["scores"]["copy_source"]["l1"] == pytest.approx(expected)
    model = np.mean(
        [
            metrics.l1_mean_distance(g, t)
            for g, t in zip(result.generated, result.targets, strict=True)
        ]
    )
    assert report["scores"]["model"]["l1"] == pytest.approx(model)


def test_the_pictures_and_the_animation_are_written(run):
    out, report = run
    pairs = min(report["milestones"][-1]["test_pairs"], 8)
    summary = Image.open(out / "summary.png")
    # Five 64-wide columns (source, pose, G1, G2, target) with the grid's 2-pixel padding.
    assert summary.size[0] == 2 + 5 * 66
    assert summary.size[1] == 14 + 2 + pairs * 130
    sheet = Image.open(out / "train_crops.png")
    shown = len(report["data"]["contact_sheet"])
    assert shown == min(32, report["data"]["train"]["crops_kept"])
    assert sheet.size == (2 + min(shown, 8) * 66, 2 + -(-shown // 8) * 130)
    gif = Image.open(report["animation"]["gif"])
    assert gif.n_frames == report["animation"]["frames"] == 4
    assert (out / "saved_model" / "saved_model.pb").exists()
