"""Issue 32's measurements: which person mask, and what retargeting and the kept background cost.

    python -m benchmarks.background                       # everything, a full-size Market model
    python -m benchmarks.background --parts masks,retarget

Three parts, each printed and written to ``benchmarks/results/background_<date>.json`` with the
CPU's flags and the load average:

1. ``masks``: on the labelme-examples photos with people outlined by hand (Debian's
   ``labelme-examples``, VOC 2011 images), every person BlazePose finds whose outline holds most
   of their joints, cropped to 128x64 as pg2-generate does: recall (how much of the outline the
   mask covers), precision and IoU of PG2's morphological pose mask, of BlazePose's segmentation
   on the crop, and of the removal mask :func:`pg2_tf.apps.background.removal_mask` builds.
2. ``retarget``: :func:`pg2_tf.core.retarget.retarget_sequence` on 300 frames, ms per frame.
3. ``animate``: pg2-animate (the library call) on ``--frames`` poses with
   ``--background=generated`` and ``source`` alternated, ``--rounds`` each: a frame's time
   (generation, the model loaded) against the background's (inpainting once, the paste of every
   frame) and retargeting's, per frame. The model: ``--saved_model``, else a full-size Market
   export from two training steps (:func:`benchmarks.serving_setup.build_export`).

Rule: measures only; the choices and figures are in docs/performance.md and docs/photos.md.
"""

import argparse
import datetime
import json
import os
import time

import numpy as np

LABELME = "/usr/share/doc/labelme-examples/examples/instance_segmentation/data_annotated"
SITTING = "/usr/share/doc/labelme-examples/examples/bbox_detection/data_annotated/2011_000006.jpg"
RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="masks,retarget,animate")
    parser.add_argument("--saved_model", default=None, help="default: a full-size Market export")
    parser.add_argument("--frames", type=int, default=32, help="pg2-animate's poses")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each background")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--work_dir", default=os.path.join("/tmp", "pg2_background_benchmark"))
    parser.add_argument("--json", default=None, help="default: results/background_<date>.json")
    return parser.parse_args(argv)


def _outline_masks(json_path: str, shape) -> list:
    """The hand-drawn person outlines of a labelme file, each a bool [H, W] mask of the photo."""
    from PIL import Image, ImageDraw

    with open(json_path) as file:
        shapes = json.load(file)["shapes"]
    masks = []
    for shape_ in shapes:
        if shape_["label"] == "person":
            picture = Image.new("L", (shape[1], shape[0]))
            ImageDraw.Draw(picture).polygon([tuple(p) for p in shape_["points"]], fill=1)
            masks.append(np.asarray(picture) > 0)
    return masks


def _scores(mask, truth) -> dict:
    overlap = float((mask & truth).sum())
    return {
        "recall": round(overlap / max(1, truth.sum()), 3),
        "precision": round(overlap / max(1, mask.sum()), 3),
        "iou": round(overlap / max(1, (mask | truth).sum()), 3),
    }


def measure_masks(estimator) -> dict:
    """Part 1: the three masks against the hand-drawn outlines, per person and on average."""
    from pg2_tf.apps import background
    from pg2_tf.core import pose
    from pg2_tf.people import finder, photos

    people = []
    for name in sorted(os.listdir(LABELME)):
        if not name.endswith(".jpg"):
            continue
        photo = photos.load_photo(os.path.join(LABELME, name))
        outlines = _outline_masks(os.path.join(LABELME, name[:-4] + ".json"), photo.shape)
        if not outlines:
            continue
        for index, person in enumerate(finder.find_people(estimator, photo, name)):
            keypoints = person.keypoints_rc()
            joints = keypoints[~pose.missing_joints(keypoints)].astype(int)
            held = [outline[tuple(joints.T)].sum() for outline in outlines]
            if max(held) < len(joints) / 2:
                continue  # no outline is this person's
            crop = photos.person_in_model_frame(photo, person, 128, 64)
            rows, cols = np.mgrid[0:128, 0:64]
            photo_rc = crop.crop.to_photo_rc(np.stack([rows.ravel(), cols.ravel()], axis=1))
            inside = np.all((photo_rc >= 0) & (photo_rc < photo.shape[:2]), axis=1)
            spots = np.rint(photo_rc[inside]).astype(int).clip(0, np.array(photo.shape[:2]) - 1)
            truth = np.zeros(128 * 64, bool)
            truth[inside] = outlines[int(np.argmax(held))][spots[:, 0], spots[:, 1]]
            truth = truth.reshape(128, 64)
            masks = {
                "pg2_pose_mask": background.filled_pose_mask(crop.keypoints_rc, 128, 64),
                "blazepose_segmentation": background.segmentation_mask(crop.image, estimator),
                "removal_mask": background.removal_mask(crop.image, crop.keypoints_rc, estimator),
            }
            scores = {label: _scores(mask, truth) for label, mask in masks.items()}
            people.append({"photo": name, "person": index, **scores})
            print(f"  {name} person {index}: " + ", ".join(
                f"{label} recall {s['recall']} IoU {s['iou']}" for label, s in scores.items()
            ), flush=True)  # fmt: skip
    labels = ("pg2_pose_mask", "blazepose_segmentation", "removal_mask")
    mean = {
        label: {key: round(float(np.mean([p[label][key] for p in people])), 3)
                for key in ("recall", "precision", "iou")}
        for label in labels
    }  # fmt: skip
    return {"people": people, "mean": mean}


def measure_retarget(frames: int = 300) -> dict:
    """Part 2: retargeting a sequence, ms per frame (median of 5 runs)."""
    from pg2_tf.core import retarget

    rng = np.random.default_rng(0)
    source = np.array(
        [[20, 32], [30, 32], [30, 22], [50, 20], [70, 18], [30, 42], [50, 44], [70, 46],
         [70, 26], [95, 26], [120, 26], [70, 38], [95, 38], [120, 38], [18, 30], [18, 34],
         [19, 28], [19, 36]], np.float64,
    )  # fmt: skip
    targets = source[None] * 0.9 + 6 + rng.normal(0, 3, (frames, 18, 2))
    times = []
    for _ in range(5):
        started = time.perf_counter()
        retarget.retarget_sequence(source, targets, 128, 64)
        times.append(time.perf_counter() - started)
    per_frame = 1000 * float(np.median(times)) / frames
    print(f"  retargeting: {per_frame:.3f} ms a frame ({frames} frames)", flush=True)
    return {"frames": frames, "ms_per_frame": round(per_frame, 4)}


def _pose_folder(folder: str, frames: int) -> str:
    """OpenPose JSON files of a figure waving both arms, 400x200 pixels."""
    os.makedirs(folder, exist_ok=True)
    standing = 3 * np.array(
        [[20, 32], [30, 32], [30, 22], [50, 20], [70, 18], [30, 42], [50, 44], [70, 46],
         [70, 26], [95, 26], [120, 26], [70, 38], [95, 38], [120, 38], [18, 30], [18, 34],
         [19, 28], [19, 36]], np.float64,
    )  # fmt: skip
    for index in range(frames):
        moved = standing.copy()
        lift = 40 * np.sin(index / 4)
        moved[[4, 7]] += [[-lift, -lift / 2], [-lift, lift / 2]]
        triples = np.concatenate([moved[:, ::-1], np.ones((18, 1))], axis=1)
        with open(os.path.join(folder, f"{index:04d}.json"), "w") as handle:
            json.dump({"people": [{"pose_keypoints_2d": triples.reshape(-1).tolist()}]}, handle)
    return folder


def measure_animate(saved_model: str, frames: int, rounds: int, precision, work_dir: str) -> dict:
    """Part 3: pg2-animate with each background, alternated; the background's share of a frame."""
    from pg2_tf.apps import animation
    from pg2_tf.people import blazepose

    poses = _pose_folder(os.path.join(work_dir, f"poses_{frames}"), frames)
    estimator = blazepose.KeypointEstimator()
    runs = {"generated": [], "source": []}
    for _ in range(rounds):
        for background in runs:
            made = animation.animate(
                saved_model, SITTING, poses, os.path.join(work_dir, f"{background}.gif"),
                background=background, estimator=estimator, progress_bar=False,
                precision=precision, log=lambda line: None,
            )  # fmt: skip
            frame_ms = 1000 * made["generate_seconds"] / made["generated"]
            runs[background].append({
                "frame_ms": round(frame_ms, 2),
                "background_ms_per_frame": round(1000 * made["background_seconds"] / made["generated"], 3),
                "retarget_ms_per_frame": round(1000 * made["retarget_seconds"] / made["generated"], 4),
                "precision": made["precision"].name,
            })  # fmt: skip
            print(f"  background={background}: {runs[background][-1]}", flush=True)
    frame_ms = float(np.median([run["frame_ms"] for run in runs["source"]]))
    background_ms = float(np.median([run["background_ms_per_frame"] for run in runs["source"]]))
    return {
        "frames": frames,
        "runs": runs,
        "background_share_of_a_frame": round(background_ms / frame_ms, 4),
        "load_average": os.getloadavg(),
    }


def machine() -> dict:
    """CPU model, its flags of interest and the load average."""
    import platform

    from pg2_tf.core import hardware

    text = hardware.read_cpuinfo(hardware.CPUINFO) or ""
    flags = hardware.cpu_flags(text)
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                  if line.startswith("model name")), platform.processor())  # fmt: skip
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
    return {
        "cpu": model,
        "cpu_count": os.cpu_count(),
        "cpu_flags": [flag for flag in wanted if flag in flags],
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "load_average_before": os.getloadavg(),
    }


def main(argv=None) -> dict:
    """Runs the parts asked for; writes and returns the results.

    Args:
        argv: the command line without the program name (None: sys.argv).

    Returns:
        ``{"machine": ..., "masks": ..., "retarget": ..., "animate": ...}`` (the parts run).
    """
    args = parse_args(argv)
    parts = args.parts.split(",")
    os.makedirs(args.work_dir, exist_ok=True)
    results = {"machine": machine()}
    print(f"machine: {results['machine']}", flush=True)
    if "masks" in parts:
        from pg2_tf.people import blazepose

        results["masks"] = measure_masks(blazepose.KeypointEstimator())
        print(f"masks, mean: {results['masks']['mean']}", flush=True)
    if "retarget" in parts:
        results["retarget"] = measure_retarget()
    if "animate" in parts:
        saved_model = args.saved_model
        if saved_model is None:
            from benchmarks import serving_setup

            saved_model = serving_setup.build_export("market", 128, args.work_dir)
        results["animate"] = measure_animate(
            saved_model, args.frames, args.rounds, args.precision, args.work_dir
        )
        print(f"background share of a frame: {results['animate']['background_share_of_a_frame']}")
    day = results["machine"]["date"][:10]
    path = args.json or os.path.join(RESULTS_DIR, f"background_{day}.json")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as handle:
        json.dump(results, handle, indent=1)
    print(f"wrote {path}")
    return results


if __name__ == "__main__":
    main()
