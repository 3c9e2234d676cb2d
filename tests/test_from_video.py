"""data_prep/from_video.py: records from videos, everyone tracked, one identity per track.

The clip: two real people (tests/fixtures/people/scenes.py) crossing each other in front of a
real background, one walking right behind the other walking left; the second video is the
same clip mirrored (another camera).
"""

import json

import imageio.v3 as iio
import numpy as np
import pytest
import skimage.data
from helpers import needs_people_photos, people_scenes, run_module
from PIL import Image

from data_prep import from_video
from data_prep.read_records import read_records
from pg2_tf.core.errors import DataError

scenes = people_scenes()
pytestmark = needs_people_photos(scenes)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    frames, rectangles = scenes.crossing_clip()
    iio.imwrite(folder / "crossing.mp4", frames, plugin="FFMPEG", fps=8, quality=9)
    iio.imwrite(folder / "mirrored.mp4", frames[:, :, ::-1], plugin="FFMPEG", fps=8, quality=9)
    return folder, rectangles


@pytest.fixture(scope="module")
def converted(videos, blazepose_estimator, tmp_path_factory):
    folder, _ = videos
    out = tmp_path_factory.mktemp("records")
    lines = []
    from_video.convert(
        [folder / "crossing.mp4", folder / "mirrored.mp4"], out, "market", "test", every=2,
        min_track=3, workers=1, show_progress=False, estimator=blazepose_estimator,
        log=lines.append,
    )  # fmt: skip
    return out, lines


def test_each_person_of_each_video_is_one_identity_with_crops_at_the_models_size(converted, videos):
    out, lines = converted
    _, rectangles = videos
    tracks = (out / "tracks_test.txt").read_text().splitlines()
    # Two people in each of two videos: four identities (a track split at the crossing would
    # make more); identities 1-2 from camera 1, 3-4 from camera 2.
    assert len(tracks) == 4, tracks
    videos_of = [line.split()[1].rsplit("/", 1)[-1] for line in tracks]
    assert videos_of == ["crossing.mp4"] * 2 + ["mirrored.mp4"] * 2
    images = sorted((out / "raw" / "Market1501_img_pose_attr_seg" / "bounding_box_test").iterdir())
    cameras = {name.name[:4]: name.name[6] for name in images}
    assert cameras == {"0001": "1", "0002": "1", "0003": "2", "0004": "2"}
    for path in images:
        assert Image.open(path).size == (64, 128)
    assert lines[-1].startswith("4 identities (")


def test_records_pair_crops_of_one_identity_only(converted):
    out, _ = converted
    records = list(read_records(out))
    assert records
    for record in records:
        assert record["id_0"] == record["id_1"]
        assert bytes(record["image_name_0"][0])[:4] == bytes(record["image_name_1"][0])[:4]


class Refusing:
    """An estimator that fails the test when it is asked anything: the work was already done."""

    def __init__(self, why: str):
        self.why = why

    def detect(self, *args, **kwargs):
        raise AssertionError(self.why)

    landmarks_in_roi = detect


def test_a_rerun_skips_finished_videos(converted, videos, blazepose_estimator):
    out, _ = converted
    folder, _ = videos

    from_video.convert(
        [folder / "crossing.mp4", folder / "mirrored.mp4"], out, "market", "test", every=2,
        min_track=3, workers=1, show_progress=False, log=lambda line: None,
        estimator=Refusing("a finished video was searched again"),
    )  # fmt: skip
    assert len((out / "tracks_test.txt").read_text().splitlines()) == 4


def test_bad_videos_are_one_line_exit_2_and_no_records(tmp_path):
    coffee = np.asarray(Image.fromarray(skimage.data.coffee()).resize((320, 240)))
    iio.imwrite(tmp_path / "nobody.mp4", np.stack([coffee] * 4), plugin="FFMPEG", fps=4)
    (tmp_path / "broken.mp4").write_text("not a video")
    for video, message in (
        ("nobody.mp4", "error: --video={dir}/nobody.mp4: no person found in any of its 4 sampled"),
        ("broken.mp4", "error: --video={dir}/broken.mp4 is not a video ffmpeg can read"),
        ("absent.mp4", "error: --video={dir}/absent.mp4 does not exist"),
    ):
        out = tmp_path / f"out_{video}"
        result = run_module(
            "data_prep.from_video", f"--video={tmp_path / video}", f"--out={out}",
            "--dataset=market", "--split=train", "--every=1", "--quiet", timeout=300,
        )  # fmt: skip
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1
        assert result.stderr.startswith(message.format(dir=tmp_path))
        assert not list(out.glob("*.tfrecord")) and not (out / "raw").exists()


def test_counts_below_one_and_too_many_videos_are_refused(tmp_path):
    from pg2_tf.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^--every=0 must be at least 1$"):
        from_video.convert([tmp_path / "x.mp4"], tmp_path, "market", "train", every=0)
    with pytest.raises(ConfigError, match=r"^at most 9 --video files"):
        from_video.convert([tmp_path / "x.mp4"] * 10, tmp_path, "market", "train")
    with pytest.raises(DataError, match=r"^--video=.*x\.mp4 does not exist$"):
        from_video.convert([tmp_path / "x.mp4"], tmp_path, "market", "train")


def test_a_window_keeps_the_frames_of_that_share_of_each_video_from_the_same_stages(
    converted, videos, tmp_path
):
    out, _ = converted
    folder, _ = videos

    from_video.convert(
        [folder / "crossing.mp4", folder / "mirrored.mp4"], tmp_path, "market", "test",
        every=2, min_track=2, workers=1, show_progress=False,
        estimator=Refusing("a video tracked for another split was searched again"),
        log=lambda line: None, window=(0.5, 1.0), work=out / "work", max_gap=100,
    )  # fmt: skip
    summary = json.loads((tmp_path / "summary_test.json").read_text())
    stages = {
        camera: json.loads((out / "work" / camera / "done.json").read_text()) for camera in "12"
    }
    length = stages["1"]["video_frames"]
    expected = {
        f"{camera}:{track}": [frame for frame, *_ in crops if frame >= round(length / 2)]
        for camera, stage in stages.items()
        for track, crops in stage["tracks"].items()
    }
    expected = {key: frames for key, frames in expected.items() if len(frames) >= 2}
    assert summary["kept_tracks"] == expected
    assert summary["frames_in_window"] == 2 * (length - round(length / 2))
    assert summary["crops_kept"] == sum(map(len, expected.values()))
    assert summary["pairs"] == sum(len(f) * (len(f) - 1) for f in expected.values())


def test_a_window_outside_zero_to_one_is_refused(tmp_path):
    from pg2_tf.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^--window=0.75:0.5 must be START:END with 0 <= START"):
        from_video.convert([tmp_path / "x.mp4"], tmp_path, "market", "test", window=(0.75, 0.5))


def test_tracks_are_cut_at_long_gaps_and_lose_crops_of_someone_else(tmp_path):
    keypoints = np.full((18, 2), -1.0)
    keypoints[[1, 8, 11, 10, 13]] = [[20, 32], [60, 28], [60, 36], [110, 28], [110, 36]]
    crops = []
    for frame, colour in (
        (0, "red"),
        (5, "red"),
        (10, "blue"),
        (15, "red"),
        (40, "red"),
        (45, "red"),
    ):
        name = f"f{frame}.png"
        Image.new("RGB", (64, 128), colour).save(tmp_path / name)
        crops.append([frame, name, keypoints.tolist()])
    pieces, dropped = from_video.split_tracks({"7": crops}, tmp_path, max_gap_frames=10)
    # 15 -> 40 is a gap of 25 frames: two pieces; the blue crop is someone else.
    assert {name: [c[0] for c in run] for name, run in pieces.items()} == {
        "7.1": [0, 5, 15],
        "7.2": [40, 45],
    }
    assert [(name, frame) for name, frame, _ in dropped] == [("7.1", 10)]
