"""How BlazePose's 18 joints (pg2_tf.people.blazepose) agree with the original's OpenPose peaks.

    python -m benchmarks.openpose_agreement [--raw DIR] [--json OUT.json]

``--raw``: an original raw layout with its OpenPose pickles (default: the shared fixture
``../shared/fixtures/market_raw``, else ``tests/fixtures/market_raw``). For every image of every
``bounding_box_*`` set that has a pose, the OpenPose joints are picked as ``convert_market.py``
picks them, BlazePose runs on the same image (as ``data_prep.from_release`` runs it), and per
joint (COCO-18 order, the same in both) it counts: both present (and their distance in pixels),
only OpenPose, only BlazePose, neither. Per image it compares what the records hold: the pose
map (18 discs of radius 4: the share of OpenPose's disc pixels that BlazePose's discs cover,
joint by joint) and the body mask (intersection over union of the two ``pose_mask_r4``).
"""

import argparse
import json
from pathlib import Path

import numpy as np

from data_prep import common, keypoint_cache
from pg2_tf.core import pose, pose_files
from pg2_tf.people import blazepose

PROJECT = Path(__file__).resolve().parent.parent
DEFAULT_RAW = (
    PROJECT.parent / "shared" / "fixtures" / "market_raw",
    PROJECT / "tests" / "fixtures" / "market_raw",
)


def _sets(raw: Path):
    root = (
        raw / "Market1501_img_pose_attr_seg"
        if (raw / "Market1501_img_pose_attr_seg").is_dir()
        else raw
    )
    pose_dir = root / "Market-1501_PoseFiltered"
    for folder in sorted(root.glob("bounding_box_*")):
        suffix = folder.name[len("bounding_box_") :]
        suffix = {"train_flip": "train_Flip", "test": "test_clean"}.get(suffix, suffix)
        peaks = pose_dir / f"all_peaks_dic_Market-1501_{suffix}.p"
        subsets = pose_dir / f"subsets_dic_Market-1501_{suffix}.p"
        if peaks.is_file() and subsets.is_file():
            yield folder, *common.load_pose_dictionaries(peaks, subsets, "")


def _disc_map(keypoints_rc, height, width):
    dense = np.zeros((height, width, pose.NUM_KEYPOINTS), bool)
    offsets = pose.disc_offsets(4)
    for joint in np.flatnonzero(~pose.missing_joints(keypoints_rc)):
        row, col = (int(v) for v in keypoints_rc[joint])
        rows, cols = offsets[:, 0] + row, offsets[:, 1] + col
        inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
        dense[rows[inside], cols[inside], joint] = True
    return dense


def compare(raw: Path, estimator) -> dict:
    joints = {name: {"both": 0, "openpose_only": 0, "blazepose_only": 0, "neither": 0,
                     "distances": []} for name in pose.KEYPOINT_NAMES}  # fmt: skip
    images = []
    for folder, all_peaks, subsets in _sets(raw):
        for name in sorted(all_peaks):
            path = folder / name
            if not path.is_file():
                continue
            openpose = pose_files.keypoints_from_openpose(
                all_peaks[name], np.asarray(subsets[name]), "market"
            )
            estimated, reason = keypoint_cache.estimate_image(estimator, str(path))
            if estimated is None:
                estimated = np.full((pose.NUM_KEYPOINTS, 2), -1.0)
            height, width = 128, 64
            op_present = ~pose.missing_joints(openpose)
            bp_present = ~pose.missing_joints(estimated)
            for joint, joint_name in enumerate(pose.KEYPOINT_NAMES):
                counts = joints[joint_name]
                if op_present[joint] and bp_present[joint]:
                    counts["both"] += 1
                    counts["distances"].append(
                        float(np.hypot(*(openpose[joint] - estimated[joint])))
                    )
                elif op_present[joint]:
                    counts["openpose_only"] += 1
                elif bp_present[joint]:
                    counts["blazepose_only"] += 1
                else:
                    counts["neither"] += 1
            op_map, bp_map = _disc_map(openpose, height, width), _disc_map(estimated, height, width)
            covered = (op_map & bp_map).sum() / max(1, op_map.sum())
            op_mask = pose.pose_mask(openpose, height, width).astype(bool)
            bp_mask = pose.pose_mask(estimated, height, width).astype(bool)
            union = (op_mask | bp_mask).sum()
            images.append({
                "image": f"{folder.name}/{name}",
                "blazepose": reason or "person found",
                "joints_openpose": int(op_present.sum()),
                "joints_blazepose": int(bp_present.sum()),
                "pose_map_pixels_covered": float(covered),
                "mask_iou": float((op_mask & bp_mask).sum() / union) if union else None,
            })  # fmt: skip
    for counts in joints.values():
        distances = counts.pop("distances")
        counts["median_px"] = float(np.median(distances)) if distances else None
    return {"joints": joints, "images": images}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--raw", type=Path, default=next((p for p in DEFAULT_RAW if p.is_dir()), None)
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = compare(args.raw, blazepose.KeypointEstimator())
    print("| joint | both | OpenPose only | BlazePose only | neither | median distance (px) |")
    print("|---|---|---|---|---|---|")
    for name, c in result["joints"].items():
        median = "" if c["median_px"] is None else f"{c['median_px']:.1f}"
        counts = (c["both"], c["openpose_only"], c["blazepose_only"], c["neither"], median)
        print(f"| {name} | " + " | ".join(str(v) for v in counts) + " |")
    for image in result["images"]:
        print(image)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
