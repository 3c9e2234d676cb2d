"""PG2 records from your own videos (e.g. CCTV footage): everyone tracked, one identity per track.

Usage::

    python -m data_prep.from_video --video=F [--video=G ...] --out=DIR --dataset=market|deepfashion
        --split=train|test [--every=N] [--min_track=N] [--min_joints=N] [--max_gap=N]
        [--window=START:END] [--work=DIR] [--workers N] [--quiet]

Every ``--every``-th frame of each video (anything ffmpeg reads) is searched for people
(:func:`pg2_tf.people.finder.find_people`: BlazePose on the whole frame and, for small people, on zoomed
tiles), and the people are followed from one sampled frame to the next
(:class:`pg2_tf.people.tracks.PersonTracker`: box overlap, joint distance and clothes colour). Each
track is one identity. Each sampled frame of a track gives a crop at the model's size (Market
128 x 64, DeepFashion 256 x 256; :func:`pg2_tf.people.photos.person_crop`) with the person's keypoints
in it; a pose with fewer than ``--min_joints`` joints is dropped, and so is a track with fewer
than ``--min_track`` crops left (both listed in ``OUT/dropped_<split>.txt``).
``--window=START:END`` keeps only the frames in that share of each video (``0:0.75``: its first
three quarters, ``0.75:1``: its last quarter), so that one video gives a train and a test split
by time; a track seen on both sides of the boundary is one person in both splits. The crops are
written in the ORIGINAL raw layout under ``OUT/raw`` and converted as
:mod:`data_prep.from_photos` does (every ordered pair of crops of one identity; train also gets
the mirrored copies). Video k is Market's camera k (1-9), so several videos are several
cameras; ``OUT/tracks_<split>.txt`` maps each identity number to its video, track and frames.

Tracks are cut where their person was unseen for more than ``--max_gap`` sampled frames, and
crops unlike the rest of their track (clothes colour) are dropped: the tracker may have handed
them to someone else (:func:`split_tracks`).
``OUT/summary_<split>.json`` counts what was found and kept: tracks found (and the pieces they
were cut into), tracks and crops kept, crops dropped by reason, identities and pairs, and the
frames of each kept track.

Resumable: each video's crops are kept under ``OUT/work/<k>`` (or ``--work``, which several
splits of the same videos can share) and marked finished (with the video's size and time,
``--every`` and the dataset); a re-run skips finished videos, redoes an interrupted one, and the
conversion skips finished shards.

Bad input (one line, exit status 2, no records written): a file ffmpeg cannot read, a video in
which nobody is found, or one where no track is long enough.

Rule: it writes the original's raw layout and converts it with the project's converter; no
record format of its own.
"""

import json
import shutil
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from PIL import Image

from data_prep import common, from_photos, raw_layout
from pg2_tf.core import atomic, datasets
from pg2_tf.core.errors import ConfigError, DataError

DATASETS = from_photos.DATASETS
SPLITS = from_photos.SPLITS
DEFAULT_EVERY = 5
DEFAULT_MIN_TRACK = 3
DEFAULT_MIN_JOINTS = 10
DEFAULT_MAX_GAP = 2
MAX_VIDEOS = 9  # Market names hold the camera in one digit
_DONE = "done.json"


def _video_key(path: Path, every: int, dataset: str) -> dict:
    stat = path.stat()
    return {
        "video": str(path.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "every": every,
        "dataset": dataset,
    }


def track_video(path: Path, stage: Path, dataset: str, every: int, min_joints: int, estimator,
                show_progress: bool = True) -> dict:  # fmt: skip
    """Tracks everyone in one video and stages their crops (PNG) under ``stage``.

    A stage already finished for the same video and settings is returned as it is.

    Args:
        path: the video file.
        stage: the video's work folder (replaced unless finished).
        dataset: ``market`` or ``deepfashion`` (the crops' size).
        every: use every N-th frame.
        min_joints: poses with fewer joints are dropped (and listed).
        estimator: the pose estimator.
        show_progress: show a progress bar.

    Returns:
        The finished record (also written to ``stage/done.json``): ``{"tracks": {track id:
        [[frame, crop file, keypoints_rc], ...]}, "dropped": [lines], "few_joints_frames":
        [frame of each pose dropped for --min_joints], "frames": sampled frames,
        "video_frames": frames in the video}``, plus the video's key (path, size, mtime,
        settings).

    Raises:
        DataError: nobody is found in any sampled frame.
    """
    from tqdm import tqdm

    from pg2_tf.people import following, photos

    key = _video_key(path, every, dataset)
    done = stage / _DONE
    if done.exists():
        record = json.loads(done.read_text())
        same = all(record.get(name) == value for name, value in key.items())
        if same and "video_frames" in record:  # (stages of older versions are redone)
            return record
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    layout = datasets.by_kind(dataset)
    frames, total, _ = photos.video_frames(path, "--video")
    read = [0]  # frames read so far: the video's length once the loop ends

    def sampled():
        for index, (name, frame) in enumerate(frames):
            read[0] = index + 1
            if index % every == 0:
                yield name, frame

    bar = tqdm(
        following.track_everyone(estimator, sampled()),
        total=None if total is None else -(-total // every),
        unit="frame",
        desc=path.name,
        disable=not show_progress,
    )
    tracks, dropped, few_joints, count, anybody = {}, [], [], 0, False
    for number, (_, frame, found) in enumerate(bar):
        frame_index = number * every
        count += 1
        for track, person in found:
            anybody = True
            joints = int((person.keypoints_xyc[:, 2] > 0).sum())
            if joints < min_joints:
                dropped.append(
                    f"{path} frame {frame_index} track {track}: {joints} joints "
                    f"(fewer than --min_joints={min_joints})"
                )
                few_joints.append(frame_index)
                continue
            framed = photos.person_in_model_frame(frame, person, layout.img_H, layout.img_W)
            crop_name = f"t{track:04d}_f{frame_index:07d}.png"
            Image.fromarray(framed.image).save(stage / crop_name)
            keypoints_rc = np.round(framed.keypoints_rc.astype(np.float64), 3).tolist()
            tracks.setdefault(str(track), []).append([frame_index, crop_name, keypoints_rc])
    if not anybody:
        raise DataError(f"--video={path}: no person found in any of its {count} sampled frames")
    record = {**key, "tracks": tracks, "dropped": dropped, "few_joints_frames": few_joints,
              "frames": count, "video_frames": read[0]}  # fmt: skip
    atomic.write_text(done, json.dumps(record))
    return record


def convert(videos, out_dir: Path, dataset: str, split: str, every: int = DEFAULT_EVERY,
            min_track: int = DEFAULT_MIN_TRACK, min_joints: int = DEFAULT_MIN_JOINTS,
            workers: int | None = None, records_per_shard: int = 1000,
            show_progress: bool = True, estimator=None, log=print,
            window: tuple[float, float] = (0.0, 1.0), work: Path | None = None,
            max_gap: int = DEFAULT_MAX_GAP) -> Path:  # fmt: skip
    """Writes the records of the people in ``videos`` (see the module docstring).

    Args:
        videos: the video files, one camera each (at most 9).
        out_dir: the output folder (its ``work/`` keeps each video's stage for a rerun).
        dataset: ``market`` or ``deepfashion``.
        split: train or test.
        every: use every N-th frame.
        min_track: tracks with fewer crops are dropped.
        min_joints: poses with fewer of the 18 joints are dropped.
        workers: worker processes, or None for every core.
        records_per_shard: records a ``.tfrecord`` file.
        show_progress: show a progress bar.
        estimator: the pose estimator, or None for a new BlazePose one.
        log: receives the summary lines.
        window: ``(start, end)``, shares of each video's frames in [0, 1]: only the frames
            ``start * length <= frame < end * length`` are kept (``end`` 1 keeps the last).
        work: the folder of the videos' stages, or None for ``out_dir/work``.
        max_gap: a track is cut where more than this many sampled frames pass unseen
            (:func:`split_tracks`).

    Returns:
        ``out_dir``.

    Raises:
        ConfigError: unknown dataset or split, no video, more than 9 videos, a count below 1,
            a window that is not ``0 <= start < end <= 1``.
        DataError: a video that cannot be read, has nobody in it or no track long enough.
    """
    from pg2_tf.people import photos

    if dataset not in DATASETS:
        raise ConfigError(f"--dataset must be one of {', '.join(DATASETS)}, not {dataset!r}")
    if split not in SPLITS:
        raise ConfigError(f"--split must be one of {', '.join(SPLITS)}, not {split!r}")
    videos = [Path(video) for video in videos]
    if not videos:
        raise ConfigError("give at least one --video=FILE")
    if len(videos) > MAX_VIDEOS:
        raise ConfigError(f"at most {MAX_VIDEOS} --video files (one camera digit each)")
    for flag, value in (
        ("--every", every),
        ("--min_track", min_track),
        ("--min_joints", min_joints),
        ("--max_gap", max_gap),
    ):
        if value < 1:
            raise ConfigError(f"{flag}={value} must be at least 1")
    start, end = window
    if not 0.0 <= start < end <= 1.0:
        raise ConfigError(f"--window={start}:{end} must be START:END with 0 <= START < END <= 1")
    for video in videos:  # every file is checked before any work
        if not video.is_file():
            raise DataError(f"--video={video} does not exist")
        photos.video_frames(video, "--video")
    if estimator is None:
        from pg2_tf.people import blazepose

        estimator = blazepose.KeypointEstimator()
    out_dir = Path(out_dir)
    records = []
    counts = {"videos": len(videos), "window": [start, end], "frames_in_window": 0,
              "tracks_found": 0, "track_pieces": 0, "tracks_kept": 0, "crops_kept": 0,
              "crops_dropped": {"fewer_joints": 0, "other_person": 0, "short_track": 0}, "tracks_dropped_short": 0,
              "kept_tracks": {}}  # fmt: skip
    for camera, video in enumerate(videos, start=1):
        stage = Path(work or out_dir / "work") / str(camera)
        record = track_video(video, stage, dataset, every, min_joints, estimator, show_progress)
        first, last = window_frames(record["video_frames"], window)
        counts["frames_in_window"] += last - first
        counts["tracks_found"] += sum(
            any(first <= crop[0] < last for crop in crops) for crops in record["tracks"].values()
        )
        # Cut before the window, so that both splits name the pieces of a track alike.
        pieces, other_person = split_tracks(record["tracks"], stage, every * max_gap)
        record["tracks"] = {
            track: in_window
            for track, crops in pieces.items()
            if (in_window := [crop for crop in crops if first <= crop[0] < last])
        }
        other_person = [drop for drop in other_person if first <= drop[1] < last]
        record["dropped"] = [
            line
            for line, frame in zip(record["dropped"], record["few_joints_frames"], strict=True)
            if first <= frame < last
        ]
        counts["crops_dropped"]["other_person"] += len(other_person)
        counts["track_pieces"] += len(record["tracks"])
        record["dropped"] += [
            f"{video} frame {frame} track {track}: unlike the track's other crops "
            f"(clothes colour {distance:.2f} from their median)"
            for track, frame, distance in other_person
        ]
        kept = {
            track: crops for track, crops in record["tracks"].items() if len(crops) >= min_track
        }
        counts["tracks_kept"] += len(kept)
        counts["crops_dropped"]["fewer_joints"] += len(record["dropped"]) - len(other_person)
        for track, crops in record["tracks"].items():
            if track in kept:
                counts["crops_kept"] += len(crops)
                counts["kept_tracks"][f"{camera}:{track}"] = [crop[0] for crop in crops]
            else:
                counts["tracks_dropped_short"] += 1
                counts["crops_dropped"]["short_track"] += len(crops)
        if not kept:
            raise DataError(
                f"--video={video}: no track has {min_track} crops (--min_track); "
                f"{len(record['tracks'])} track(s), the longest {max(map(len, record['tracks'].values()), default=0)}"
            )
        records.append((camera, video, stage, record, kept))

    layout = datasets.by_kind(dataset)
    raw_dir = out_dir / "raw" / layout.raw_folder
    sets = raw_layout.prepare_image_sets(raw_dir, layout, split)
    identity_lines, dropped_lines, person = [], [], 0
    for camera, video, stage, record, kept in records:
        dropped_lines += record["dropped"]
        for track, crops in record["tracks"].items():
            if track not in kept:
                dropped_lines.append(
                    f"{video} track {track}: {len(crops)} crop(s) (fewer than --min_track={min_track})"
                )
        for track, crops in sorted(kept.items(), key=lambda item: item[1][0][0]):
            person += 1
            frames = [frame for frame, _, _ in crops]
            identity_lines.append(f"{person} {video} track {track} frames {frames}")
            for index, (_, crop_name, keypoints_rc) in enumerate(crops):
                crop = np.asarray(Image.open(stage / crop_name).convert("RGB"))
                name = from_photos.image_name(dataset, person, index, camera)
                from_photos.add_crop(raw_dir, layout, sets, split, name, crop, keypoints_rc)
    from_photos.save_pose_sets(raw_dir, layout, sets)
    (out_dir / f"tracks_{split}.txt").write_text("".join(f"{line}\n" for line in identity_lines))
    (out_dir / f"dropped_{split}.txt").write_text("".join(f"{line}\n" for line in dropped_lines))
    pairs = from_photos.convert_raw(
        raw_dir, out_dir, dataset, split, workers, records_per_shard, show_progress
    )
    counts.update(identities=person, pairs=int(pairs.strip().split(":")[-1]))
    atomic.write_text(out_dir / f"summary_{split}.json", json.dumps(counts, indent=1))
    log(
        f"{person} identities ({counts['crops_kept']} crops) from {len(videos)} video(s); "
        f"{len(dropped_lines)} dropped, listed in {out_dir / f'dropped_{split}.txt'}; records {pairs}"
    )
    return out_dir


def split_tracks(tracks: dict, stage: Path, max_gap_frames: int) -> tuple[dict, list]:
    """Tracks cut where their person may have changed: a gap, or a crop of someone else.

    The tracker continues a track after its person was unseen for a while, and in a crowd it
    can hand one sampled frame to a passer-by. So a track is cut where more than
    ``max_gap_frames`` frames pass between two crops (the pieces are ``"<track>.<k>"``), and a
    crop whose clothes colour (:func:`pg2_tf.people.following.appearance` of the crop) is further
    from its piece's median colour than :data:`pg2_tf.people.tracks.TRACK_MAX_APPEARANCE` (the
    tracker's own bound between two people) is dropped.

    Args:
        tracks: ``{track id: [[frame, crop file, keypoints_rc], ...]}`` in frame order.
        stage: the folder of the crop files.
        max_gap_frames: the longest run of frames between two crops of one piece.

    Returns:
        ``(pieces, dropped)``: the pieces as ``tracks``, and ``[(piece, frame, colour
        distance)]`` of each crop dropped as someone else's.
    """
    from pg2_tf.people import following
    from pg2_tf.people import tracks as people_tracks
    from pg2_tf.people.blazepose import PersonKeypoints

    pieces, dropped = {}, []
    for track, crops in tracks.items():
        runs = [[crops[0]]]
        for previous, crop in zip(crops, crops[1:], strict=False):
            if crop[0] - previous[0] > max_gap_frames:
                runs.append([])
            runs[-1].append(crop)
        for number, run in enumerate(runs, start=1):
            name = track if len(runs) == 1 else f"{track}.{number}"
            colours = []
            for _, crop_name, keypoints_rc in run:
                rc = np.asarray(keypoints_rc, np.float64)
                xyc = np.zeros((len(rc), 3), np.float32)
                present = (rc >= 0).all(axis=1)
                xyc[present] = np.column_stack(
                    [rc[present, 1], rc[present, 0], np.ones(present.sum())]
                )
                image = np.asarray(Image.open(stage / crop_name).convert("RGB"))
                colours.append(following.appearance(image, PersonKeypoints(xyc, (0, 0, 1, 1))))
            median = np.median(colours, axis=0)
            median /= max(median.sum(), 1e-12)
            distances = 1.0 - np.sqrt(np.asarray(colours) * median).sum(axis=1)
            far = distances > people_tracks.TRACK_MAX_APPEARANCE
            dropped += [
                (name, crop[0], d) for crop, d, f in zip(run, distances, far, strict=True) if f
            ]
            pieces[name] = [crop for crop, f in zip(run, far, strict=True) if not f]
    return {name: crops for name, crops in pieces.items() if crops}, dropped


def window_frames(length: int, window: tuple[float, float]) -> tuple[int, int]:
    """The frames of a video that a ``--window`` keeps.

    Args:
        length: the video's number of frames.
        window: ``(start, end)``, shares of the video in [0, 1].

    Returns:
        ``(first, last)``: frames ``first <= frame < last`` are kept (``end`` 1: all to the end).
    """
    start, end = window
    return round(start * length), length if end >= 1.0 else round(end * length)


def parse_window(text: str) -> tuple[float, float]:
    """A ``--window`` value.

    Args:
        text: ``START:END``, two shares of a video in [0, 1], e.g. ``0.75:1``.

    Returns:
        ``(start, end)`` as floats (checked by :func:`convert`).

    Raises:
        ConfigError: not two numbers separated by a colon.
    """
    try:
        start, end = (float(part) for part in text.split(":"))
    except ValueError:
        raise ConfigError(f"--window={text} must be START:END, e.g. 0:0.75 or 0.75:1") from None
    return start, end


def main(argv: list[str] | None = None) -> None:
    """The command line: parses ``argv`` and writes the records.

    Args:
        argv: the arguments after the program name, or None for ``sys.argv[1:]``.
    """
    parser = from_photos.layout_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--video", action="append", type=Path, required=True,
                        help="a video file; repeat for several (each is a camera)")  # fmt: skip
    parser.add_argument("--every", type=int, default=DEFAULT_EVERY,
                        help="use every N-th frame (default %(default)s)")  # fmt: skip
    parser.add_argument("--min_track", type=int, default=DEFAULT_MIN_TRACK,
                        help="drop tracks with fewer crops (default %(default)s)")  # fmt: skip
    parser.add_argument("--min_joints", type=int, default=DEFAULT_MIN_JOINTS,
                        help="drop poses with fewer of the 18 joints (default %(default)s)")  # fmt: skip
    parser.add_argument("--max_gap", type=int, default=DEFAULT_MAX_GAP,
                        help="cut a track unseen for more sampled frames (default %(default)s)")  # fmt: skip
    parser.add_argument("--window", default="0:1",
                        help="START:END, the share of each video kept (default %(default)s)")  # fmt: skip
    parser.add_argument("--work", type=Path, default=None,
                        help="folder of the videos' stages (default OUT/work)")  # fmt: skip
    common.add_writer_args(parser)
    args = parser.parse_args(argv)
    convert(
        args.video, args.out, args.dataset, args.split, args.every, args.min_track,
        args.min_joints, args.workers, args.records_per_shard, show_progress=not args.quiet,
        log=lambda line: print(line, file=sys.stderr), window=parse_window(args.window),
        work=args.work, max_gap=args.max_gap,
    )  # fmt: skip


if __name__ == "__main__":
    common.run_cli(main)
