"""Wall time, images/s and peak memory of ``data_prep.from_release`` on a release of the real size.

    python -m benchmarks.from_release --dataset market --images 12936 [--workers 2]
    python -m benchmarks.from_release --dataset deepfashion --images 52712 [--workers 2]

Generates a fake release with the official layout and names (Market-1501-v15.09.15's
``bounding_box_train/``; In-shop's ``img/`` + ``Eval/list_eval_partition.txt``), ``--images``
images of ~17 (Market) or ~4 (In-shop) per identity / item, half of them real photo crops (the
people of skimage's astronaut and cameraman photos and of Debian's labelme-examples VOC photos,
each crop jittered in position, scale, mirror and brightness) and half synthetic figures
(:mod:`data_prep.synthetic_people`), then runs the one command (``python -m data_prep.from_release``)
as a subprocess and samples the resident memory of its whole process tree (parent + workers)
every 0.25 s. Prints and writes (``--json``) the CPU flags, load average before and after, the
wall time, images/s and the peak memory. The release is generated once per size and kept
(``--work``), the output folder is made afresh for every run.
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from data_prep import synthetic_people
from pg2_tf.core import datasets

LABELME = Path("/usr/share/doc/labelme-examples/examples/instance_segmentation/data_annotated")
CATEGORIES = ("Dresses", "Blouses_Shirts", "Tees_Tanks", "Pants", "Shorts", "Skirts")
VIEWS = ("1_front", "2_side", "3_back", "4_full", "7_additional")


def person_photos() -> list[tuple[np.ndarray, tuple]]:
    """(photo, person box x0, y0, x1, y1) of the real people available offline."""
    import skimage.data

    found = [
        (skimage.data.astronaut(), (60, 20, 460, 512)),
        (np.stack([skimage.data.camera()] * 3, axis=-1), (120, 40, 380, 512)),
    ]
    for annotation in sorted(LABELME.glob("*.json")) if LABELME.is_dir() else []:
        document = json.loads(annotation.read_text())
        photo = np.asarray(Image.open(LABELME / document["imagePath"]).convert("RGB"))
        for shape in document["shapes"]:
            points = np.asarray(shape["points"])
            x0, y0 = points.min(axis=0)
            x1, y1 = points.max(axis=0)
            if shape["label"] == "person" and (y1 - y0) > 120:
                found.append((photo, (x0, y0, x1, y1)))
    return found


def real_crop(photos, rng, img_H: int, img_W: int) -> np.ndarray:
    """A jittered crop of a real person at the dataset's size (aspect kept, edges repeated)."""
    photo, (x0, y0, x1, y1) = photos[int(rng.integers(len(photos)))]
    width, height = (x1 - x0) * rng.uniform(1.05, 1.3), (y1 - y0) * rng.uniform(1.02, 1.15)
    if height / width > img_H / img_W:
        width = height * img_W / img_H
    else:
        height = width * img_H / img_W
    centre_x = (x0 + x1) / 2 + rng.uniform(-0.05, 0.05) * width
    centre_y = (y0 + y1) / 2 + rng.uniform(-0.04, 0.04) * height
    box = (centre_x - width / 2, centre_y - height / 2, centre_x + width / 2, centre_y + height / 2)
    pad = int(max(width, height))
    padded = np.pad(photo, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    box = tuple(v + pad for v in box)
    crop = Image.fromarray(padded).resize((img_W, img_H), Image.Resampling.BILINEAR, box=box)
    pixels = np.asarray(crop).astype(np.float32) * rng.uniform(0.8, 1.2)
    pixels = np.clip(pixels, 0, 255).astype(np.uint8)
    return pixels[:, ::-1] if rng.random() < 0.5 else pixels


def synthetic_figure(rng, img_H: int, img_W: int, identity: int) -> np.ndarray:
    keypoints_rc = synthetic_people.random_keypoints(rng, img_H, img_W)
    look = synthetic_people.identity_appearance(identity, 0)
    return synthetic_people.render_person(keypoints_rc, look, rng, img_H, img_W)


def make_release(
    dataset: str, root: Path, images: int, seed: int = 0, real: str = "photos"
) -> Path:
    """Writes a fake release of ``images`` train images under ``root``; returns its folder.

    ``real``: ``photos`` (jittered crops of the people of skimage's and labelme-examples'
    photos) or ``pedestrians`` (:func:`benchmarks.pedestrians.pedestrian_crops` of vtest.avi, in
    order, as many as there are, for the even images)."""
    marker = root / ".fake_release.json"
    spec = json.dumps({"dataset": dataset, "images": images, "seed": seed, "real": real})
    if marker.is_file() and marker.read_text() == spec:
        return root
    if root.exists():
        shutil.rmtree(root)
    img_H, img_W = datasets.by_kind(dataset).img_H, datasets.by_kind(dataset).img_W
    photos = person_photos()
    rng = np.random.default_rng(seed)
    if real == "pedestrians":
        from benchmarks import pedestrians

        walking = [crop for _, _, crop in pedestrians.pedestrian_crops(img_H=img_H, img_W=img_W)]
    per_identity = 17 if dataset == "market" else 4
    partition = []
    for index in range(images):
        identity = 1 + index // per_identity
        shot = index % per_identity
        if index % 2 == 0 and real == "pedestrians":
            pixels = walking[(index // 2) % len(walking)]
        elif index % 2 == 0:
            pixels = real_crop(photos, rng, img_H, img_W)
        else:
            pixels = synthetic_figure(rng, img_H, img_W, identity)
        if dataset == "market":
            name = f"{identity:04d}_c{1 + shot % 6}s1_{index:06d}_{shot % 100:02d}.jpg"
            path = root / "bounding_box_train" / name
        else:
            gender = "WOMEN" if identity % 3 else "MEN"
            category = CATEGORIES[identity % len(CATEGORIES)]
            file_name = f"{1 + shot // 5:02d}_{VIEWS[shot % 5]}.jpg"
            relative = f"img/{gender}/{category}/id_{identity:08d}/{file_name}"
            partition.append(f"{relative} id_{identity:08d} train")
            path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(path, quality=90)
    if dataset == "deepfashion":
        (root / "Eval").mkdir(exist_ok=True)
        lines = [str(len(partition)), "image_name item_id evaluation_status", *partition]
        (root / "Eval" / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    marker.write_text(spec)
    return root


def _tree_rss_bytes(root_pid: int) -> int:
    """Resident memory of a process and all its descendants (from /proc)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
                parents[int(entry)] = int(fields[1])
            except (OSError, IndexError):
                continue
    tree, frontier = {root_pid}, [root_pid]
    while frontier:
        pid = frontier.pop()
        children = [child for child, parent in parents.items() if parent == pid]
        tree.update(children)
        frontier += children
    total = 0
    for pid in tree:
        try:
            with open(f"/proc/{pid}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def measure(dataset: str, release_dir: Path, out: Path, workers: int, extra=()) -> dict:
    """Runs the command once; wall time and the peak memory of its process tree."""
    if out.exists():
        shutil.rmtree(out)
    command = [
        sys.executable, "-m", "data_prep.from_release", f"--dataset={dataset}",
        f"--release={release_dir}", "--split=train", f"--out={out}", f"--workers={workers}",
        *extra,
    ]  # fmt: skip
    out.mkdir(parents=True)
    log_path = out.parent / f"{out.name}.log"
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(log_path, "w") as log:  # the progress bars and the summary lines
        process = subprocess.Popen(command, stderr=log)
        peak, samples = 0, 0
        while process.poll() is None:
            peak = max(peak, _tree_rss_bytes(process.pid))
            samples += 1
            time.sleep(0.25)
    wall = time.perf_counter() - start
    if process.returncode:
        raise SystemExit(f"from_release failed with exit status {process.returncode}: {log_path}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU seconds of the whole tree (workers included): the load-independent cost; on N free
    # cores the wall time is about cpu_s / N.
    cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    figures = {"wall_s": wall, "cpu_s": cpu, "peak_rss_mb": peak / 2**20, "memory_samples": samples}
    for line in log_path.read_text().replace("\r", "\n").splitlines():
        if line.startswith("keypoints of "):  # "keypoints of N images in S s (...)"
            figures["keypoint_phase_s"] = float(line.split(" in ")[1].split(" s ")[0])
    return figures


def joint_statistics(cache_path: Path) -> dict:
    """From a keypoint cache of a fake release: how often BlazePose found a person and each
    joint, for the real photo crops (even frame numbers) and the synthetic figures (odd)."""
    from pg2_tf.core import pose

    found = {"real": [], "synthetic": []}
    images = {"real": 0, "synthetic": 0}
    reasons = {"real": {}, "synthetic": {}}
    for line in cache_path.read_text().splitlines()[1:]:
        row = json.loads(line)
        stem = Path(row["image"]).stem
        if row["image"].startswith("bounding_box"):  # PPPP_cCs1_<index>_NN.jpg
            number = int(stem.split("_")[2])
        else:  # img/.../id_<identity>/01_<view>.jpg, 4 images an item (make_release)
            identity = int(row["image"].split("/id_")[1].split("/")[0])
            number = 4 * (identity - 1) + VIEWS.index(stem.split("_", 1)[1])
        kind = "real" if number % 2 == 0 else "synthetic"
        images[kind] += 1
        if row["keypoints_rc"] is not None:
            found[kind].append(~pose.missing_joints(np.asarray(row["keypoints_rc"])))
        else:
            reason = row.get("reason") or "unknown"
            reasons[kind][reason] = reasons[kind].get(reason, 0) + 1
    result = {}
    for kind, present in found.items():
        present = np.asarray(present).reshape(-1, pose.NUM_KEYPOINTS)
        result[kind] = {
            "images": images[kind],
            "person_found": len(present),
            "found_percent": round(100 * len(present) / max(images[kind], 1), 1),
            "skipped_by_reason": reasons[kind],
            "joint_present_rate": dict(
                zip(pose.KEYPOINT_NAMES, np.round(present.mean(axis=0), 3).tolist(), strict=True)
            )
            if len(present)
            else {},
        }
    return result


def draw_real_crops(release_dir: Path, cache_path: Path, count: int = 8, scale: int = 3):
    """The first ``count`` real photo crops of a Market-size fake release with the skeleton of
    their cached keypoints, side by side (uint8 [128 * scale, 64 * scale * count, 3])."""
    from pg2_tf.core import pose
    from pg2_tf.people import blazepose, drawing, photos

    tiles = []
    for line in cache_path.read_text().splitlines()[1:]:
        row = json.loads(line)
        if int(Path(row["image"]).stem.split("_")[2]) % 2 or row["keypoints_rc"] is None:
            continue  # a synthetic figure, or nobody found
        image = photos.load_photo(release_dir / row["image"])
        size = (image.shape[1] * scale, image.shape[0] * scale)
        big = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.NEAREST))
        keypoints_rc = np.asarray(row["keypoints_rc"], np.float64)
        present = ~pose.missing_joints(keypoints_rc)
        joints = np.zeros((pose.NUM_KEYPOINTS, 3), np.float32)
        joints[present, :2] = (keypoints_rc[present][:, ::-1] + 0.5) * scale
        joints[present, 2] = 1
        person = blazepose.PersonKeypoints(joints, (0, 0, 1, 1))
        tiles.append(drawing.draw_keypoints(big, person))
        if len(tiles) == count:
            break
    return np.concatenate(tiles, axis=1)


def _records_count(out: Path, dataset: str) -> str:
    folder = out / datasets.by_kind(dataset).data_folder("train")
    return (folder / "tf_record_pair_num.txt").read_text()


def main() -> None:
    from pg2_tf.core import hardware

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=datasets.KINDS, default="market")
    parser.add_argument("--images", type=int, default=12936, help="images of the release")
    parser.add_argument(
        "--records_images",
        type=int,
        default=1300,
        help="the records phase runs on the first this many images (pairs grow linearly with "
        "the identities; the full-size records need tens of GB of disk)",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("/tmp/pg2_from_release_bench"))
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--picture", type=Path, help="market: draw 8 real crops' keypoints here")
    parser.add_argument(
        "--real",
        choices=("photos", "pedestrians"),
        default="photos",
        help="the real half: crops of photos' people, or pedestrians of vtest.avi (opencv-doc)",
    )
    args = parser.parse_args()

    flags = sorted(hardware.cpu_flags(hardware.read_cpuinfo("/proc/cpuinfo") or ""))
    shown = [flag for flag in flags if flag.startswith(("avx2", "avx512f", "avx512_bf16", "amx"))]
    result = {"dataset": args.dataset, "images": args.images, "workers": args.workers,
              "cpu_count": os.cpu_count(), "cpu_flags": shown, "real": args.real}  # fmt: skip
    phases = (
        ("keypoints", args.images, ["--annotations_only"]),
        ("records", args.records_images, []),
    )
    for phase, images, extra in phases:
        if images <= 0:
            continue
        started = time.perf_counter()
        release_dir = make_release(
            args.dataset,
            args.work / f"release_{args.dataset}_{args.real}_{images}",
            images,
            real=args.real,
        )
        generated = time.perf_counter() - started
        out = args.work / f"out_{args.dataset}_{phase}"
        load_before = os.getloadavg()
        figures = measure(args.dataset, release_dir, out, args.workers, extra)
        figures.update(
            images=images,
            release_generated_s=generated,
            load_before=load_before,
            load_after=os.getloadavg(),
            images_per_s=images / figures["wall_s"],
            skipped=sum(1 for _ in open(out / "skipped_train.txt")),
        )
        if phase == "records":
            figures["records"] = _records_count(out, args.dataset)
        else:
            figures["joints"] = joint_statistics(out / "keypoints_train.jsonl")
            if args.picture and args.dataset == "market":
                picture = draw_real_crops(release_dir, out / "keypoints_train.jsonl")
                Image.fromarray(picture).save(args.picture)
        result[phase] = figures
        print(json.dumps({phase: figures}, indent=2), flush=True)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
