"""What :mod:`benchmarks.own_footage` shows of its run: scores against the two baselines,
the pictures (training crops with their skeletons, held-out pairs) and the report's parts.

The baselines are scored exactly as the model: a result folder whose ``G/`` is the test mode's
``x/`` (*copy the source image*) or its ``G1/`` (*G1 alone*), the other folders linked to the
model's, each scored by :func:`pg2_tf.scoring.folder_scores.score_result_dir` (what
``pg2-score`` does under the ``pg2`` protocol) without and with the masks.
"""

import json
import os
import subprocess
from pathlib import Path

import numpy as np

from pg2_tf.core import atomic

# Variant name -> the test mode's folder that plays G.
VARIANTS = {"model": "G", "copy_source": "x", "g1_only": "G1"}
CONTACT_SHEET_CROPS = 32


def score_variants(result_dir: Path) -> dict:
    """Scores the model and both baselines on one test mode's results (``pg2`` protocol).

    Args:
        result_dir: a test mode's ``test_result`` folder.

    Returns:
        ``{variant: {"ssim", "mask_ssim", "l1", "masked_l1", "psnr", "num_images"}}`` for each
        of :data:`VARIANTS`; L1 on the 0..255 scale, SSIM in [-1, 1].
    """
    from pg2_tf.scoring import folder_scores, reports

    scores = {}
    for variant, generated in VARIANTS.items():
        folder = result_dir if variant == "model" else result_dir.parent / variant
        if variant != "model":
            folder.mkdir(exist_ok=True)
            for name in ("G", "x_target", folder_scores.DEFAULT_MASK_FOLDER):
                link = folder / name
                source = os.path.relpath(result_dir / (generated if name == "G" else name), folder)
                if not link.is_symlink():
                    link.symlink_to(source, target_is_directory=True)
        rgb = folder_scores.score_result_dir(str(folder), mask=False)
        masked = folder_scores.score_result_dir(str(folder), mask=True)
        for numbers, mask in ((rgb, False), (masked, True)):
            reports.write_score_file(str(folder), numbers, mask=mask)
        scores[variant] = {
            "ssim": rgb["ssim_mean"],
            "mask_ssim": masked["ssim_mean"],
            "l1": rgb["l1_mean"],
            "masked_l1": masked["l1_mean"],
            "psnr": rgb["psnr_mean"] if np.isfinite(rgb["psnr_mean"]) else None,
            "num_images": rgb["num_images"],
        }
    return scores


def beats_copy_source(scores: dict) -> dict:
    """Whether the model beats copying the source image on mask-SSIM and masked L1.

    Args:
        scores: as returned by :func:`score_variants`.

    Returns:
        ``{"mask_ssim": bool, "masked_l1": bool}`` (higher SSIM, lower L1 is better).
    """
    model, copy = scores["model"], scores["copy_source"]
    return {
        "mask_ssim": model["mask_ssim"] > copy["mask_ssim"],
        "masked_l1": model["masked_l1"] < copy["masked_l1"],
    }


def _person(keypoints_rc):
    """A drawable person (:class:`pg2_tf.people.blazepose.PersonKeypoints`) of crop keypoints."""
    from pg2_tf.people.blazepose import PersonKeypoints

    keypoints_rc = np.asarray(keypoints_rc, np.float32)
    present = (keypoints_rc >= 0).all(axis=1)
    xyc = np.zeros((len(keypoints_rc), 3), np.float32)
    xyc[present] = np.column_stack(
        [keypoints_rc[present, 1], keypoints_rc[present, 0], np.ones(present.sum())]
    )
    return PersonKeypoints(xyc, (0.0, 0.0, 64.0, 128.0))


def kept_crops(work: Path, summary: dict) -> list[tuple[str, dict]]:
    """The crops a split kept, with their keypoints, from the videos' stages.

    Args:
        work: the folder of the videos' stages (``<camera>/done.json`` and the crops).
        summary: the split's ``summary_<split>.json`` (its ``kept_tracks``: ``"camera:track"``
            -> frames).

    Returns:
        ``[(label "camera:track", {"frame", "path", "keypoints_rc"}), ...]`` in track order.
    """
    stages, crops = {}, []
    for key, frames in summary["kept_tracks"].items():
        camera, track = key.split(":")
        if camera not in stages:
            stages[camera] = json.loads((work / camera / "done.json").read_text())
        wanted = set(frames)
        # (a piece "<track>.<k>" of a track that from_video cut at a gap)
        for frame, name, keypoints_rc in stages[camera]["tracks"][track.split(".")[0]]:
            if frame in wanted:
                crops.append(
                    (
                        key,
                        {
                            "frame": frame,
                            "path": work / camera / name,
                            "keypoints_rc": keypoints_rc,
                        },
                    )
                )
    return crops


def contact_sheet(crops: list, path: Path, count: int = CONTACT_SHEET_CROPS, seed: int = 0) -> list:
    """A picture of ``count`` random crops with their skeletons drawn on them, 8 a row.

    Args:
        crops: as returned by :func:`kept_crops`.
        path: the PNG to write.
        count: crops shown (all if fewer).
        seed: the random choice's seed.

    Returns:
        The labels and frames shown, ``["camera:track@frame", ...]``, in picture order.
    """
    from PIL import Image

    from pg2_tf.core import images
    from pg2_tf.people import drawing

    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(crops), size=min(count, len(crops)), replace=False))
    tiles = []
    for index in chosen:
        _, crop = crops[index]
        picture = np.asarray(Image.open(crop["path"]).convert("RGB"))
        tiles.append(drawing.draw_keypoints(picture, _person(crop["keypoints_rc"])))
    images.save_png(images.grid(np.stack(tiles), columns=8), str(path))
    return [f"{crops[i][0]}@{crops[i][1]['frame']}" for i in chosen]


def animation_inputs(test_crops: list, train_crops: list, folder: Path, frames: int) -> dict:
    """The held-out person's photo and another person's poses, for ``pg2-animate``.

    The person: the test track with the most crops that the training split does not hold
    (any test track if all are shared), its middle crop. The poses: the longest training
    track's keypoints, one OpenPose JSON file a frame (``%06d.json``), at most ``frames``.

    Args:
        test_crops, train_crops: as returned by :func:`kept_crops` for each split.
        folder: receives ``poses/``.
        frames: the most pose frames.

    Returns:
        ``{"image": crop path, "person": "camera:track", "poses": folder, "pose_person":
        "camera:track", "frames": int}``.
    """
    from pg2_tf.core import pose_files

    def by_track(crops):
        tracks = {}
        for key, crop in crops:
            tracks.setdefault(key, []).append(crop)
        return tracks

    test, train = by_track(test_crops), by_track(train_crops)
    held_out = [key for key in test if key not in train] or list(test)
    person = max(held_out, key=lambda key: len(test[key]))
    pose_person = max(train, key=lambda key: len(train[key]))
    poses = folder / "poses"
    poses.mkdir(parents=True, exist_ok=True)
    shown = train[pose_person][:frames]
    for number, crop in enumerate(shown):
        document = pose_files.openpose_document(_person(crop["keypoints_rc"]).keypoints_xyc)
        atomic.write_text(poses / f"{number:06d}.json", json.dumps(document))
    crops = test[person]
    return {
        "image": str(crops[len(crops) // 2]["path"]),
        "person": person,
        "poses": str(poses),
        "pose_person": pose_person,
        "frames": len(shown),
    }


def shared_identities(train_summary: dict, test_summary: dict) -> dict:
    """How many test people the training split also holds (the same track on both sides).

    Args:
        train_summary, test_summary: the splits' ``summary_<split>.json``.

    Returns:
        ``{"test_identities", "also_in_train", "tracks", "same_track_in_train"}``: the test
        identities, those that are a training identity too (the same track, uncut, on both
        sides of the boundary) with their ``"camera:track"`` labels, and those whose track
        before from_video cut it at a gap (``"camera:track.piece"``) has a piece in training.
    """
    shared = sorted(set(train_summary["kept_tracks"]) & set(test_summary["kept_tracks"]))
    train_tracks = {key.split(".")[0] for key in train_summary["kept_tracks"]}
    same_track = [key for key in test_summary["kept_tracks"] if key.split(".")[0] in train_tracks]
    return {
        "test_identities": len(test_summary["kept_tracks"]),
        "also_in_train": len(shared),
        "tracks": shared,
        "same_track_in_train": len(same_track),
    }


def code_commits(repository: Path) -> dict:
    """The commits the run was made with (the whole tree and ``pg2_tf/people``).

    Args:
        repository: the project's folder.

    Returns:
        ``{"head": hash, "people": hash of the newest commit touching pg2_tf/people,
        "uncommitted": git status lines of pg2_tf/people and data_prep}`` (None where git
        cannot tell).
    """

    def git(*arguments):
        try:
            run = subprocess.run(
                ["git", "-C", str(repository), *arguments],
                capture_output=True,
                text=True,
                check=True,
            )
        except (OSError, subprocess.CalledProcessError):
            return None
        return run.stdout.strip() or None

    changed = git("status", "--porcelain", "--", "pg2_tf/people", "data_prep")
    return {
        "head": git("rev-parse", "HEAD"),
        "people": git("log", "-1", "--format=%H", "--", "pg2_tf/people"),
        "uncommitted": changed.splitlines() if changed else [],
    }


def data_section(train_summary: dict, test_summary: dict, every: int, test_share: float) -> dict:
    """The report's ``data``: what each split found, kept and dropped, and what they share.

    Args:
        train_summary, test_summary: the splits' ``summary_<split>.json``.
        every: the frames' step (``--every``).
        test_share: the share of each video at its end that is the test split.

    Returns:
        ``{"every", "test_share", "train": counts, "test": counts, "shared_identities"}``; the
        counts without the per-track frame lists.
    """

    def counts(summary):
        return {key: value for key, value in summary.items() if key != "kept_tracks"}

    return {
        "every": every,
        "test_share": test_share,
        "train": counts(train_summary),
        "test": counts(test_summary),
        "shared_identities": shared_identities(train_summary, test_summary),
    }
