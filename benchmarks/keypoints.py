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

Needs the model files (``python -m pg2_tf.keypoints --fetch_model``) and Debian's
labelme-examples (the photos of the scenes).
"""

import argparse
import importlib.util
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import skimage.data

from pg2_tf.core import hardware
from pg2_tf.people import blazepose, finder, following

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

    if args.sweep:
        print("tile sweep (detector only, before the landmark model):")
        results["sweep"] = tile_sweep(estimator, scenes)
    results["load_after"] = load_average()
    print(f"load average after: {results['load_after']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
