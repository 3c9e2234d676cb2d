"""Speed of the keypoint estimator: ms per photo, per scene, and frames per second when following.

    python -m benchmarks.keypoints [--repeats 10] [--json out.json] [--sweep]

Measures, in one run and alternating the calls that are compared (the machine is shared, so only
same-run ratios mean something; the load average and the CPU flags are printed):

* one centred person, skimage's astronaut (512x512) and the cameraman pasted 450 px tall into a
  768x576 frame: ``estimator(image)`` (the single-person path, MediaPipe's graph) against
  :func:`pg2_tf.people.finder.find_people` (every person; tiles only when needed). Target: at most
  1.5x.
* a 768x576 scene of five people 80 to 200 px tall (tests/fixtures/people's ``street_768``):
  ms per scene for ``find_people`` (whole frame + 12 tiles + a landmark run per person), and
  how many people it finds.
* following one person (:class:`pg2_tf.people.following.PersonFollower`) through the 640x360 clip
  of two people crossing: frames per second.
* ``--sweep``: the tile scheme measurement: people the detector finds in the scenes (before the
  landmark model) and detector time, for tile sides 512 ... 128 px.
* people from any side (with Debian's opencv-doc): ``find_people`` with OpenCV's HOG body boxes
  against without them (as before them), alternated in the same run: ms for the single people
  above (target: at most 1.2x) and for the 768x576 vtest.avi frame with the most moving people
  (target: at most 1.5x); on 16 vtest frames, the moving people (background subtraction:
  :mod:`benchmarks.pedestrians`) found and the people listed outside them; following the
  largest person through 120 frames from the previous frame's landmarks against with the
  detector every frame (frames per second).

Needs the model files (``python -m pg2_tf.keypoints --fetch_model``) and Debian's
labelme-examples (the photos of the scenes).
"""

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import skimage.data

from benchmarks import pedestrians
from pg2_tf.core import hardware
from pg2_tf.people import blazepose, finder, following, regions

TARGET_RATIO = 1.5
SCENES_FILE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "people" / "scenes.py"


def load_scenes():
    """tests/fixtures/people/scenes.py (the scenes of the tests)."""
    spec = importlib.util.spec_from_file_location("scenes", SCENES_FILE)
    module = importlib.util.module_from_spec(spec)
    sys.modules["scenes"] = module
    spec.loader.exec_module(module)
    if not module.available():
        sys.exit("Debian's labelme-examples is not installed: apt-get install labelme-examples")
    return module


def alternated(calls: dict, repeats: int) -> dict:
    """Times each call ``repeats`` times, alternating them, after one untimed call each.

    Returns {name: [ms, ...]}."""
    for call in calls.values():
        call()
    times = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append((time.perf_counter() - start) * 1000)
    return times


def load_average() -> str:
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def single_person_photos(scenes) -> dict:
    astronaut = skimage.data.astronaut()
    frame, _ = scenes.compose((768, 576), [("camera", 240, 80, 450)])
    return {"astronaut 512x512": astronaut, "cameraman 450 px in 768x576": frame}


def tile_sweep(estimator, scenes) -> list:
    """People detected (hips inside their pasted rectangle) and detector ms, per tile side."""
    rows = []
    for name in scenes.SCENES:
        picture, rectangles = scenes.scene(name)
        height, width = picture.shape[:2]
        for side in (0, 512, 384, 320, 256, 192, 128):
            windows = finder.tile_windows(height, width, side) if side else []
            start = time.perf_counter()
            detections = list(estimator.detect(picture))
            for window in windows:
                detections += estimator.detect(picture, window)
            elapsed = (time.perf_counter() - start) * 1000
            hit = set()
            for detection in finder.merge_detections(detections):
                x, y = detection.keypoints_xy[0]
                hit |= {
                    source
                    for source, (x0, y0, x1, y1) in rectangles.items()
                    if x0 <= x <= x1 and y0 <= y <= y1
                }
            rows.append(
                {
                    "scene": name,
                    "tile_side": side or None,
                    "tiles": len(windows),
                    "detected": len(hit),
                    "people": len(rectangles),
                    "detector_ms": round(elapsed, 1),
                }
            )
            print(
                f"  {name}: tiles {side or 'none':>4} ({len(windows):2d}): "
                f"{len(hit)} of {len(rectangles)} people detected, detector {elapsed:.0f} ms"
            )
    return rows


@contextlib.contextmanager
def without_body_boxes():
    """``find_people`` as before OpenCV's HOG body boxes: none proposed."""
    original = regions.people_of_body_boxes
    regions.people_of_body_boxes = lambda *args, **kwargs: []
    try:
        yield
    finally:
        regions.people_of_body_boxes = original


def _find_without_body_boxes(estimator, image):
    with without_body_boxes():
        return finder.find_people(estimator, image)


def any_side(estimator, singles: dict, repeats: int) -> dict:
    """People from any side: cost and recall of the HOG body boxes (see the module doc)."""
    figures = {}
    for name, photo in singles.items():
        times = alternated(
            {
                "before": lambda photo=photo: _find_without_body_boxes(estimator, photo),
                "after": lambda photo=photo: finder.find_people(estimator, photo),
            },
            repeats,
        )
        before, after = (statistics.median(times[key]) for key in ("before", "after"))
        print(f"{name}: without body boxes {before:.1f} ms, with {after:.1f} ms: ratio "
              f"{after / before:.2f} (target 1.2)")  # fmt: skip
        figures[name] = {"before_ms": before, "after_ms": after}
    frames = pedestrians.frames()
    empty = pedestrians.empty_street()
    busiest = max(
        range(0, len(frames), 5), key=lambda i: len(pedestrians.foreground_boxes(frames[i], empty))
    )
    scene = frames[busiest]
    times = alternated(
        {
            "before": lambda: _find_without_body_boxes(estimator, scene),
            "after": lambda: finder.find_people(estimator, scene),
        },
        max(3, repeats // 2),
    )
    before, after = (statistics.median(times[key]) for key in ("before", "after"))
    moving = len(pedestrians.foreground_boxes(scene, empty))
    print(f"vtest frame {busiest} ({moving} moving people): without body boxes {before:.0f} ms, "
          f"with {after:.0f} ms: ratio {after / before:.2f} (target 1.5)")  # fmt: skip
    figures["scene"] = {"frame": busiest, "moving": moving, "before_ms": before, "after_ms": after}
    recall = {"moving": 0, "before": 0, "after": 0, "before_outside": 0, "after_outside": 0}
    for index in range(13, len(frames), 50):
        boxes = pedestrians.foreground_boxes(frames[index], empty)
        recall["moving"] += len(boxes)
        for key, people in (
            ("before", _find_without_body_boxes(estimator, frames[index])),
            ("after", finder.find_people(estimator, frames[index])),
        ):
            hips = [(p.keypoints_xyc[8, :2] + p.keypoints_xyc[11, :2]) / 2 for p in people]
            inside = [
                any(x <= h[0] <= x + w and y <= h[1] <= y + h_ for h in hips)
                for x, y, w, h_ in boxes
            ]
            recall[key] += sum(inside)
            recall[f"{key}_outside"] += sum(
                not any(x <= h[0] <= x + w and y <= h[1] <= y + h_ for x, y, w, h_ in boxes)
                for h in hips
            )
    print(f"16 vtest frames: {recall['moving']} moving people; found {recall['before']} without "
          f"body boxes, {recall['after']} with; people listed outside the moving ones (standing "
          f"still, or false): {recall['before_outside']} and {recall['after_outside']}")  # fmt: skip
    figures["recall"] = recall
    clip = frames[100:220]
    rates = {}
    for key in ("detector every frame", "previous landmarks"):
        follower = following.PersonFollower(estimator)
        start = time.perf_counter()
        seen = 0
        for frame in clip:
            if key == "detector every frame":
                follower.last = None
            seen += follower(frame) is not None
        rates[key] = len(clip) / (time.perf_counter() - start)
        print(f"following the largest person, 120 vtest frames, {key}: {rates[key]:.1f} frames/s, "
              f"found in {seen}")  # fmt: skip
    figures["follow_fps"] = rates
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--sweep", action="store_true", help="also measure tile sides")
    args = parser.parse_args()

    scenes = load_scenes()
    estimator = blazepose.KeypointEstimator()
    flags = sorted(hardware.cpu_flags(hardware.read_cpuinfo("/proc/cpuinfo") or ""))
    wanted = [flag for flag in flags if flag.startswith(("avx", "amx"))]
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {' '.join(wanted)}"
    )
    print(f"load average before: {load_average()}")
    results = {"cpu_flags": wanted, "load_before": load_average(), "single": {}}

    for name, photo in single_person_photos(scenes).items():
        times = alternated(
            {
                "single-person path": lambda photo=photo: estimator(photo),
                "find_people": lambda photo=photo: finder.find_people(estimator, photo),
            },
            args.repeats,
        )
        single = statistics.median(times["single-person path"])
        every = statistics.median(times["find_people"])
        verdict = "within" if every <= TARGET_RATIO * single else "OVER"
        print(
            f"{name}: single-person path {single:.1f} ms, find_people {every:.1f} ms "
            f"(median of {args.repeats}, alternated): ratio {every / single:.2f} ({verdict} "
            f"the {TARGET_RATIO}x target)"
        )
        results["single"][name] = {"single_ms": single, "find_people_ms": every}

    picture, rectangles = scenes.scene("street_768")
    found = finder.find_people(estimator, picture)
    times = alternated({"scene": lambda: finder.find_people(estimator, picture)}, args.repeats)
    scene_ms = statistics.median(times["scene"])
    print(
        f"768x576 scene of {len(rectangles)} people 80-200 px tall: {scene_ms:.0f} ms per scene "
        f"(median of {args.repeats}), {len(found)} people found"
    )
    results["scene"] = {"ms": scene_ms, "found": len(found), "people": len(rectangles)}

    frames, rectangles = scenes.crossing_clip()
    x0, y0, x1, y1 = rectangles["voc3_right"][0]
    choice = finder.parse_person(f"{(x0 + x1) / 2},{(y0 + y1) / 2}")
    rates = []
    for _ in range(max(1, args.repeats // 5)):
        follower = following.PersonFollower(estimator, choice)
        start = time.perf_counter()
        seen = sum(follower(frame) is not None for frame in frames)
        rates.append(len(frames) / (time.perf_counter() - start))
    fps = statistics.median(rates)
    print(
        f"following one of two people crossing (640x360, {len(frames)} frames): {fps:.1f} "
        f"frames per second, found in {seen} frames"
    )
    results["follow"] = {"fps": fps, "frames": len(frames), "found": seen}

    if pedestrians.VTEST.is_file():
        results["any_side"] = any_side(estimator, single_person_photos(scenes), args.repeats)
    if args.sweep:
        print("tile sweep (detector only, before the landmark model):")
        results["sweep"] = tile_sweep(estimator, scenes)
    results["load_after"] = load_average()
    print(f"load average after: {results['load_after']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
