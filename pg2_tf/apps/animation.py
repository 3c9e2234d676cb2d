"""One photo of a person + a sequence of poses -> a GIF or MP4 of that person moving: what
pg2-animate does.

The poses (:func:`read_pose_sequence`) are one of:

* a folder of OpenPose JSON files (one per frame, in file-name order: COCO-18, BODY_25 or MS
  COCO-17, as ``pg2-generate --keypoints`` reads them);
* a folder of frames (images, in file-name order) or a video file (anything ffmpeg reads, through
  imageio): the keypoints of each frame are estimated with BlazePose
  (:mod:`pg2_tf.people.blazepose`).

The person of the photo is cropped to their box at the model's aspect ratio (as
``pg2-generate --pose_from``). The keypoint tracks are bridged over short gaps and smoothed
(:mod:`pg2_tf.people.tracks`), then carried into the model's frame with ONE scale for the whole
sequence (the person's median size) and a per-frame centre (:func:`model_frame_tracks`), so the
figure neither flickers nor pumps.

``proportions="source"`` (the default: the poses come from another person) then redraws every
pose with the photo's person's bone lengths and the driver's joint angles, one scale for the
whole sequence (:func:`pg2_tf.core.retarget.retarget_sequence`); ``"target"`` keeps the driver's.
``background="source"`` pastes each frame's person onto the photo's own background, computed
once (the person removed and inpainted, :mod:`pg2_tf.apps.background`), so that it is the same in
every frame.

Rule: plain values in, an animation file out; the flags are :mod:`pg2_tf.animate`'s.
"""

import dataclasses
import json
import math
import os
import time

import numpy as np

from pg2_tf.apps import background as backgrounds
from pg2_tf.core import atomic, pose, pose_files, retarget
from pg2_tf.core.errors import ConfigError, DataError
from pg2_tf.people import photos, tracks
from pg2_tf.serving import contract, engines

OUTPUT_EXTENSIONS = (".gif", ".mp4")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
DEFAULT_FPS = 10.0
# The 18 joints span eyes to ankles; the box grows by this fraction of its size on each side to
# hold the head and the feet, about as the 33-landmark box of the source photo does with its margin.
JOINT_BOX_MARGIN = 0.15
GENERATE_BATCH = 16


@dataclasses.dataclass
class PoseSequence:
    """Target poses read from ``--poses``, in the pixel coordinates of their frames."""

    tracks_rc: np.ndarray  # float64 [T, 18, 2] (row, col), -1 missing
    fps: float | None  # the video's frame rate, None for folders
    without_person: list  # names of frames where no person was found
    people: list | None = None  # per frame, the followed PersonKeypoints or None (frames only)


def read_pose_sequence(poses, estimator, progress_bar: bool = True, choice=None) -> PoseSequence:
    """Reads the target poses from a folder of JSON files, a folder of frames or a video.

    Args:
        poses: the ``--poses`` path.
        estimator: the :class:`pg2_tf.people.blazepose.KeypointEstimator` for frames' keypoints.
        progress_bar: show a tqdm bar while estimating keypoints.
        choice: the :class:`pg2_tf.people.finder.PersonChoice` of the person followed through frames
            (:class:`pg2_tf.people.following.PersonFollower`; default the largest).

    Returns:
        :class:`PoseSequence`: float64 ``[T, 18, 2]`` (row, col) tracks in the frames' pixels;
        a frame without a person has every joint missing (-1).

    Raises:
        DataError: the path does not exist, a folder holds neither JSON files nor images (or
            both), a file cannot be read.
    """
    from tqdm import tqdm

    poses = os.fspath(poses)
    if os.path.isdir(poses):
        names = sorted(os.listdir(poses))
        jsons = [name for name in names if name.lower().endswith(".json")]
        frames = [name for name in names if name.lower().endswith(IMAGE_EXTENSIONS)]
        if jsons and frames:
            raise DataError(
                f"--poses={poses} holds both .json files and images: give a folder of one kind"
            )
        if jsons:
            return _json_pose_sequence(poses, jsons, choice)
        if not frames:
            raise DataError(
                f"--poses={poses} holds no OpenPose .json files and no images "
                f"({', '.join(IMAGE_EXTENSIONS)})"
            )
        items = ((name, photos.load_photo(os.path.join(poses, name))) for name in frames)
        total, fps = len(frames), None
    elif os.path.isfile(poses):
        items, total, fps = _video_frames(poses)
    else:
        raise DataError(f"--poses={poses} does not exist (a folder of JSON/frames, or a video)")

    from pg2_tf.people import following

    follower = following.PersonFollower(estimator, choice)
    sequence, without_person, followed = [], [], []
    bar = tqdm(items, total=total, unit="frame", desc="poses", disable=not progress_bar)
    for name, frame in bar:
        person = follower(frame, name)
        followed.append(person)
        if person is None:
            without_person.append(name)
            sequence.append(np.full((pose.NUM_KEYPOINTS, 2), float(pose.MISSING)))
        else:
            sequence.append(person.keypoints_rc())
    if not sequence:
        raise DataError(f"--poses={poses} has no frames")
    if len(without_person) == len(sequence):
        raise DataError(f"--poses={poses}: no person found in any of its {len(sequence)} frames")
    return PoseSequence(np.stack(sequence), fps, without_person, followed)


def _json_pose_sequence(folder: str, names: list[str], choice=None) -> PoseSequence:
    """OpenPose JSON frames; the person followed is chosen by ``choice`` in the first file with
    people and followed by :func:`pg2_tf.people.following.follow_in_poses`. A file whose 'people' is
    empty (OpenPose writes that for a frame without a person), or where the followed person is
    not found, is a frame with every joint missing, bridged like a video's."""
    from pg2_tf.people import following

    paths = [os.path.join(folder, name) for name in names]
    followed = following.follow_in_poses(
        [pose_files.read_openpose_people(path) for path in paths], choice, paths
    )
    sequence, without_person = [], []
    for path, keypoints_rc in zip(paths, followed, strict=True):
        if keypoints_rc is None:
            without_person.append(path)
            keypoints_rc = np.full((pose.NUM_KEYPOINTS, 2), float(pose.MISSING))
        sequence.append(keypoints_rc)
    return PoseSequence(np.stack(sequence), None, without_person)


def _video_frames(path: str):
    return photos.video_frames(path, "--poses", DEFAULT_FPS)


def model_frame_tracks(tracks_rc, img_H: int, img_W: int, window: int = 5) -> np.ndarray:
    """Carries keypoint tracks from their frames' pixels into the model's frame.

    One box size for the whole sequence: the median over frames of the joints' extent (height
    and width), grown by :data:`JOINT_BOX_MARGIN` on each side and to the model's aspect ratio;
    its centre follows the joints' extent frame by frame (smoothed over ``window`` frames).

    Args:
        tracks_rc: float ``[T, 18, 2]`` (row, col), -1 missing, in the frames' pixels.
        img_H, img_W: the model's size.
        window: odd number of frames over which the box centre is averaged.

    Returns:
        float32 ``[T, 18, 2]`` (row, col) in the model frame; -1 for missing joints, for joints
        that fall outside the crop, and for every joint of a frame with no joint at all.
    """
    tracks_rc = np.asarray(tracks_rc, np.float64)
    present = ~np.any(tracks_rc == pose.MISSING, axis=2)
    seen = present.any(axis=1)
    out = np.full(tracks_rc.shape, float(pose.MISSING), np.float32)
    if not seen.any():
        return out
    masked = np.where(present[..., None], tracks_rc, np.nan)
    low = np.nanmin(masked[seen], axis=1)  # [S, 2] (row, col)
    high = np.nanmax(masked[seen], axis=1)
    height, width = np.median(high - low, axis=0) * (1 + 2 * JOINT_BOX_MARGIN) + 1
    if height / width > img_H / img_W:
        width = height * img_W / img_H
    else:
        height = width * img_H / img_W
    centres = np.full((len(tracks_rc), 1, 2), float(pose.MISSING))
    centres[seen, 0] = (low + high) / 2
    centres = tracks.centred_moving_average(centres, window)
    for t in np.flatnonzero(seen):
        centre_row, centre_col = centres[t, 0]
        # Crop edges are in pixel-edge coordinates: pixel i spans [i, i + 1), its centre i + 0.5.
        crop = photos.Crop(
            x0=centre_col + 0.5 - width / 2,
            y0=centre_row + 0.5 - height / 2,
            scale=img_W / width,
            out_H=img_H,
            out_W=img_W,
        )
        out[t] = crop.to_crop_rc(tracks_rc[t])
    return out


def write_animation(frames, path: str, fps: float) -> None:
    """Writes frames as a looping GIF or an H.264 MP4, chosen by the extension.

    Args:
        frames: uint8 ``[T, H, W, 3]``, 0-255 (RGB).
        path: the output file, ``*.gif`` or ``*.mp4``; replaced whole or not at all.
        fps: frames per second, > 0.

    Raises:
        DataError: the file cannot be written (one line naming ``--out``).
    """
    import imageio.v3 as iio

    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        # The temporary file keeps the extension: imageio chooses the format by it.
        with atomic.replacing(path, keep_extension=True) as temporary:
            if path.lower().endswith(".gif"):
                iio.imwrite(temporary, frames, duration=1000.0 / fps, loop=0)
            else:
                # 128x64 and 256x256 are multiples of ffmpeg's 16-pixel macro blocks: no resizing.
                iio.imwrite(temporary, frames, plugin="FFMPEG", fps=fps)
    except OSError as error:
        raise DataError(f"cannot write --out={path}: {error.strerror or error}") from None


def animate(
    saved_model,
    image_path,
    poses,
    out_path,
    *,
    fps: float | None = None,
    window: int = 5,
    max_gap: int = 4,
    side_by_side: bool = False,
    person: str = "largest",
    pose_person: str = "largest",
    save_poses=None,
    proportions: str = "source",
    background: str = "generated",
    estimator=None,
    progress_bar: bool = True,
    precision="float32",
    log=print,
) -> dict:
    """Generates the person of ``image_path`` in each pose of ``poses``; writes a GIF or MP4.

    Args:
        saved_model: a folder written by :func:`pg2_tf.serving.export_lib.export_saved_model`.
        image_path: the person's photo (any size; cropped to the person).
        poses: a folder of OpenPose JSON files, a folder of frames, or a video (module doc).
        out_path: ``*.gif`` or ``*.mp4``.
        fps: frames per second of the output (default: the video's, else 10).
        window: odd number of frames the keypoint tracks and the crop's centre are averaged
            over (see :func:`pg2_tf.people.tracks.smooth_tracks`).
        max_gap: the longest run of frames a lost joint is interpolated over.
        side_by_side: each frame shows the person's crop, the target pose (the model's pose map,
            white discs) and the generated image, left to right (3 x img_W wide).
        person: the person of ``image_path``: ``largest``, an index as pg2-keypoints lists
            them, or ``x,y`` (:func:`pg2_tf.people.finder.parse_person`).
        pose_person: the person followed through the frames of ``poses`` (chosen in the first
            frame where anybody is found; the same kinds of values).
        save_poses: a folder receiving the followed person's keypoints as estimated in each
            frame, before smoothing: OpenPose JSON ``%06d.json`` per input frame, ``people``
            empty where they were not found (``--poses`` reads such a folder back); and in its
            sub-folder ``model_frame/`` the poses the model was given (``%06d.json`` per input
            frame, in the model's frame: retarget with ``proportions="source"``).
        proportions: ``source`` (the photo's person's bone lengths, the driver's angles, one
            scale: :func:`pg2_tf.core.retarget.retarget_sequence`) or ``target`` (the driver's
            keypoints as given).
        background: ``generated`` (G2's own) or ``source`` (the photo's background, computed once
            and the same in every frame: :mod:`pg2_tf.apps.background`).
        estimator: the pose estimator (default: a
            :class:`pg2_tf.people.blazepose.KeypointEstimator`).
        progress_bar: tqdm bars while estimating keypoints and generating.
        precision: ``--precision`` or a :class:`pg2_tf.serving.engines.Precision` (see
            :func:`pg2_tf.serving.engines.choose_precision`; float32: the export's exact path).
        log: receives a few lines saying what was done.

    Returns:
        ``{"out": path, "frames": frames written (each uint8 img_H x img_W, or 3 x img_W wide
        with ``side_by_side``), "fps": float, "without_person": [names],
        "empty_frames": frames whose pose stayed empty (the previous image is repeated),
        "generated": frames generated, "generate_seconds": their wall time (the model loaded
        and warmed up), "precision": the :class:`pg2_tf.serving.engines.Precision` used,
        "scale": the skeleton's scale (1.0 with ``proportions="target"``), "poses": float32
        ``[T, 18, 2]`` the poses the model was given (model frame, -1 missing), "retarget_seconds",
        "background_seconds": the wall time of retargeting and of the background (its
        inpainting and every frame's paste), "keypoints_seconds": reading the poses (the video
        decoded and the person followed, or the JSON files read), "write_seconds": encoding and
        writing the file, "engine_seconds": preparing the engine (a one-time LiteRT conversion,
        the warm-up)}``. Together keypoints, retargeting, background, generation and writing are
        the pipeline a user waits for once the model is loaded
        (:func:`pipeline_seconds`).

    Raises:
        ConfigError / DataError / CheckpointError with a one-line message on bad input.
    """
    from tqdm import tqdm

    from pg2_tf.people import blazepose

    out_path = os.fspath(out_path)
    if not out_path.lower().endswith(OUTPUT_EXTENSIONS):
        raise ConfigError(f"--out={out_path} must end in .gif or .mp4")
    if window < 1 or window % 2 == 0:
        raise ConfigError(f"--smooth_window={window} must be an odd number of frames >= 1")
    if max_gap < 0:
        raise ConfigError(f"--max_gap={max_gap} must be >= 0")
    if fps is not None and not (fps > 0 and math.isfinite(fps)):
        raise ConfigError(f"--fps={fps} must be a positive number")
    if proportions not in retarget.PROPORTIONS_CHOICES:
        raise ConfigError(f"--proportions={proportions} must be source or target")
    backgrounds.check_background(background)
    contract.check_saved_model(saved_model)
    if isinstance(precision, str):
        engines.check_precision(precision)  # decided once the model is loaded
    from pg2_tf.people import finder, following

    source_choice = finder.parse_person(person, "--person")
    target_choice = finder.parse_person(pose_person, "--pose_person")

    estimator = estimator or blazepose.KeypointEstimator()
    photo, source_person = photos.find_person(
        image_path, finder.PersonPicker(estimator, source_choice)
    )
    if proportions == "source":  # a source that cannot be measured fails before the video
        retarget.source_bone_lengths(source_person.keypoints_rc())
    # Every input is read before the SavedModel loads (seconds), so that bad input fails fast.
    started = time.perf_counter()
    sequence = read_pose_sequence(poses, estimator, progress_bar, target_choice)
    keypoints_seconds = time.perf_counter() - started
    if save_poses is not None:
        if sequence.people is None:
            raise ConfigError(f"--save_poses needs frames or a video as --poses, not {poses}")
        following.write_pose_folder(save_poses, sequence.people)
        log(f"wrote the followed person's keypoints of {len(sequence.people)} frames to "
            f"{save_poses}")  # fmt: skip
    loaded, (img_H, img_W) = contract.load_export(saved_model)
    source = photos.person_in_model_frame(photo, source_person, img_H, img_W)
    smoothed = tracks.smooth_tracks(sequence.tracks_rc, window=window, max_gap=max_gap)
    model_tracks = model_frame_tracks(smoothed, img_H, img_W, window)
    fps = fps or sequence.fps or DEFAULT_FPS
    if sequence.without_person:
        log(f"no person found in {len(sequence.without_person)} frame(s), e.g. "
            f"{sequence.without_person[0]}; bridged where the gap is short")  # fmt: skip

    empty = np.all(model_tracks == pose.MISSING, axis=(1, 2))
    if empty.all():
        raise DataError(f"--poses={os.fspath(poses)}: no frame has a pose to follow")
    started = time.perf_counter()
    scale = 1.0
    if proportions == "source":
        model_tracks, scale = retarget.retarget_sequence(
            source.keypoints_rc, model_tracks, img_H, img_W
        )
        log(f"poses retargeted to the person's proportions of {image_path} (scale {scale:.3g})")
    retarget_seconds = time.perf_counter() - started
    if save_poses is not None:
        _write_model_frame_poses(os.path.join(save_poses, "model_frame"), model_tracks)
    started = time.perf_counter()
    kept = None
    if background == "source":
        kept = backgrounds.source_background(source.image, source.keypoints_rc, estimator)
    background_seconds = time.perf_counter() - started
    started = time.perf_counter()
    engine = engines.Engine(saved_model, loaded, precision)
    engine_seconds = time.perf_counter() - started
    precision = engine.precision
    wanted = np.flatnonzero(~empty)
    generated = {}
    bar = tqdm(total=len(wanted), unit="frame", desc="generate", disable=not progress_bar)
    started = time.perf_counter()
    for start in range(0, len(wanted), GENERATE_BATCH):
        batch = wanted[start : start + GENERATE_BATCH]
        images = np.repeat(source.image[None], len(batch), axis=0)
        outputs = engine.generate(images, model_tracks[batch])["G2"]
        generated.update(zip(batch.tolist(), outputs, strict=True))
        bar.update(len(batch))
    generate_seconds = time.perf_counter() - started
    bar.close()
    if kept is not None:
        started = time.perf_counter()
        for t, picture in generated.items():
            alpha = backgrounds.paste_alpha(model_tracks[t], img_H, img_W)
            generated[t] = backgrounds.paste(kept.image, picture, alpha)
        background_seconds += time.perf_counter() - started
    if side_by_side:
        for t, picture in generated.items():
            pose_map = pose.render_pose_map(model_tracks[t], img_H, img_W).max(axis=-1)
            pose_picture = np.repeat(((pose_map + 1) * 127.5).astype(np.uint8)[..., None], 3, -1)
            generated[t] = np.concatenate([source.image, pose_picture, picture], axis=1)
    frames, previous = [], None
    for t in range(len(model_tracks)):
        previous = generated.get(t, previous)
        if previous is not None:  # frames before the first pose are left out
            frames.append(previous)
    started = time.perf_counter()
    write_animation(np.stack(frames), out_path, fps)
    write_seconds = time.perf_counter() - started
    height, width = frames[0].shape[:2]
    log(f"wrote {len(frames)} frames of {height}x{width} at {fps:g} fps to {out_path}")
    return {
        "out": out_path,
        "frames": len(frames),
        "fps": fps,
        "without_person": sequence.without_person,
        "empty_frames": int(empty.sum()),
        "generated": len(wanted),
        "generate_seconds": generate_seconds,
        "precision": precision,
        "scale": scale,
        "poses": model_tracks,
        "retarget_seconds": retarget_seconds,
        "background_seconds": background_seconds,
        "keypoints_seconds": keypoints_seconds,
        "write_seconds": write_seconds,
        "engine_seconds": engine_seconds,
    }


PIPELINE_PARTS = ("keypoints", "retarget", "background", "generate", "write")


def pipeline_seconds(made: dict) -> float:
    """The wall time from the first frame read to the file written, start-up left out.

    Args:
        made: what :func:`animate` returned.

    Returns:
        Seconds: the sum of its keypoints, retargeting, background, generation and writing times
        (loading the photo's person, the SavedModel and the engine are left out).
    """
    return float(sum(made[f"{part}_seconds"] for part in PIPELINE_PARTS))


def _write_model_frame_poses(folder: str, model_tracks) -> None:
    """The poses the model is given, ``%06d.json`` per input frame (``people`` empty for a frame
    without a pose); raises DataError naming ``--save_poses`` when the folder cannot be written."""
    try:
        os.makedirs(folder, exist_ok=True)
        for index, keypoints_rc in enumerate(model_tracks):
            people = [] if np.all(keypoints_rc == pose.MISSING) else [keypoints_rc]
            triples = np.array([pose_files.keypoints_to_triples(k) for k in people])
            document = pose_files.openpose_document(triples.reshape(-1, pose.NUM_KEYPOINTS, 3))
            atomic.write_text(
                os.path.join(folder, f"{index:06d}.json"), json.dumps(document) + "\n"
            )
    except OSError as error:
        raise DataError(f"cannot write --save_poses={folder}: {error.strerror or error}") from None
