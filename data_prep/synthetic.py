"""A small synthetic PG2 dataset, written in the ORIGINAL raw layout (no download needed).

Person-like figures (ellipse head, polygon torso, thick limbs) whose clothes and skin colours
identify the person, in varied poses and viewpoints on varied backgrounds, with their 18
COCO/OpenPose keypoints known exactly. Images and OpenPose-format pose pickles (Python 2 protocol:
``all_peaks`` with the true candidate first plus occasional distractor peaks, ``subsets`` with the
person's row first) are laid out as the original zips, so the converters run on them unchanged:

* ``kind="market"``: ``<out>/Market1501_img_pose_attr_seg/bounding_box_<set>/PPPP_cCs1_FFFFFF_00.jpg``
  (128 x 64) and ``Market-1501_PoseFiltered/{all_peaks_dic,subsets_dic}_Market-1501_<set>.p``;
  with ``junk_test_files=True`` the ``test`` folder starts with 6617 empty files, as the real one
  starts with its junk detections (the converter skips that many; without them the synthetic
  records are made with ``junk_detections=0``).
* ``kind="deepfashion"``: ``<out>/DF_img_pose/filted_up_<set>/IIIII_V.jpg`` (256 x 256) and
  ``PoseFiltered/{all_peaks_dic,subsets_dic}_DeepFashion[_Flip].p``.

Train comes with its mirrored copy (``*_train_flip``), as the original data.

Everything is a deterministic function of the arguments (seeded numpy generators). Example::

    from data_prep.synthetic import make_synthetic_records
    data_path = make_synthetic_records("/tmp/pg2_data", "market", "train", identities=4)
    # -> /tmp/pg2_data/Market_train_data: Market1501_train_00000-of-00001.tfrecord, pn_pairs_num_train.p

Command line::

    python -m data_prep.synthetic --kind market|deepfashion --out DIR --identities N
        [--images_per_identity M] [--splits train,test] [--seed S] [--convert]
        [--junk_test_files] [--workers N]
"""

import argparse
import io
import json
import math
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from data_prep import common
from pg2_tf.core import atomic, datasets, pose, pose_files
from pg2_tf.core.errors import ConfigError

KINDS = datasets.KINDS
SPLITS = ("train", "test", "test_samples", "test_seq")
_SPLIT_INDEX = {split: index for index, split in enumerate(SPLITS)}

# Front-view skeleton in figure-height units: (row from the head top, column from the body axis).
# Image left is the person's right side when the person faces the camera.
_FRONT_SKELETON = {
    "nose": (0.075, 0.0),
    "neck": (0.16, 0.0),
    "right_shoulder": (0.18, -0.105),
    "left_shoulder": (0.18, 0.105),
    "right_hip": (0.5, -0.065),
    "left_hip": (0.5, 0.065),
    "right_eye": (0.058, -0.022),
    "left_eye": (0.058, 0.022),
    "right_ear": (0.068, -0.048),
    "left_ear": (0.068, 0.048),
}
_UPPER_ARM, _FOREARM, _THIGH, _SHIN = 0.16, 0.14, 0.24, 0.23
_SKIN_TONES = ((241, 194, 167), (224, 172, 105), (198, 134, 66), (141, 85, 36), (92, 58, 35))


@dataclass(frozen=True)
class Appearance:
    """Colours (RGB 0..255) that identify a person."""

    skin: tuple
    hair: tuple
    shirt: tuple
    trousers: tuple
    shoes: tuple


def identity_appearance(identity: int, seed: int) -> Appearance:
    """The deterministic look of person ``identity``."""
    rng = np.random.default_rng([seed, 7919, identity])

    def colour(low=20, high=235):
        return tuple(int(v) for v in rng.integers(low, high, size=3))

    return Appearance(
        skin=_SKIN_TONES[int(rng.integers(len(_SKIN_TONES)))],
        hair=colour(10, 120),
        shirt=colour(),
        trousers=colour(10, 200),
        shoes=colour(0, 80),
    )


def random_keypoints(rng: np.random.Generator, img_H: int, img_W: int) -> np.ndarray:
    """A plausible standing/walking person filling most of the image.

    Returns:
        float64 [18, 2] (row, col), integer-valued like OpenPose peaks, -1 for joints hidden by
        the viewpoint (back: face; side views: the far eye and ear) or outside the image.
    """
    figure = img_H * rng.uniform(0.82, 0.95)
    top = rng.uniform(0.01, 0.99 - figure / img_H) * img_H
    axis = img_W / 2 + rng.uniform(-0.08, 0.08) * img_W
    view = rng.choice(["front", "front", "back", "right", "left"])
    width_scale = {"front": 1.0, "back": -1.0, "right": 0.35, "left": -0.35}[view]
    width_scale *= min(1.0, 0.55 * img_W / (0.21 * figure)) * rng.uniform(0.85, 1.1)

    joints = {}
    for name, (row, col) in _FRONT_SKELETON.items():
        joints[name] = np.array([top + row * figure, axis + col * figure * width_scale])
    side_sign = 1 if width_scale >= 0 else -1
    for side, sign in (("right", -1), ("left", 1)):
        outward = sign * side_sign
        upper = math.radians(rng.uniform(-5, 40))
        lower = upper + math.radians(rng.uniform(-40, 50))
        elbow = joints[f"{side}_shoulder"] + figure * _UPPER_ARM * np.array(
            [math.cos(upper), outward * math.sin(upper) * abs(width_scale) ** 0.5]
        )
        joints[f"{side}_elbow"] = elbow
        joints[f"{side}_wrist"] = elbow + figure * _FOREARM * np.array(
            [math.cos(lower), outward * math.sin(lower) * abs(width_scale) ** 0.5]
        )
        thigh = math.radians(rng.uniform(-12, 18))
        shin = thigh + math.radians(rng.uniform(-12, 8))
        knee = joints[f"{side}_hip"] + figure * _THIGH * np.array(
            [math.cos(thigh), outward * math.sin(thigh)]
        )
        joints[f"{side}_knee"] = knee
        joints[f"{side}_ankle"] = knee + figure * _SHIN * np.array(
            [math.cos(shin), outward * math.sin(shin)]
        )

    keypoints_rc = np.full((pose.NUM_KEYPOINTS, 2), -1.0)
    for name, position in joints.items():
        keypoints_rc[pose.KEYPOINT_NAMES.index(name)] = np.round(position)
    hidden = {
        "front": [],
        "back": ["nose", "right_eye", "left_eye"],
        "right": ["left_eye", "left_ear"],
        "left": ["right_eye", "right_ear"],
    }[view]
    for name in hidden:
        keypoints_rc[pose.KEYPOINT_NAMES.index(name)] = -1
    outside = (
        (keypoints_rc[:, 0] < 0)
        | (keypoints_rc[:, 0] > img_H - 1)
        | (keypoints_rc[:, 1] < 0)
        | (keypoints_rc[:, 1] > img_W - 1)
    )
    keypoints_rc[outside] = -1
    return keypoints_rc


def render_person(
    keypoints_rc: np.ndarray,
    appearance: Appearance,
    rng: np.random.Generator,
    img_H: int,
    img_W: int,
    background: np.ndarray | None = None,
) -> np.ndarray:
    """Draws the figure of ``keypoints_rc`` on ``background`` (uint8 [img_H, img_W, 3]), by
    default a random one drawn from ``rng``.

    Returns:
        uint8 [img_H, img_W, 3].
    """
    if background is None:
        background = _background(rng, img_H, img_W)
    image = Image.fromarray(background)
    draw = ImageDraw.Draw(image)
    scale = img_H / 128
    present = ~pose.missing_joints(keypoints_rc)

    def point(name):
        joint = pose.KEYPOINT_NAMES.index(name)
        return (
            (float(keypoints_rc[joint, 1]), float(keypoints_rc[joint, 0]))
            if present[joint]
            else None
        )

    def limb(name_a, name_b, colour, width):
        a, b = point(name_a), point(name_b)
        if a and b:
            draw.line([a, b], fill=colour, width=max(1, round(width * scale)))
            radius = width * scale / 2
            for x, y in (a, b):
                draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=colour)

    for side in ("right", "left"):
        limb(f"{side}_hip", f"{side}_knee", appearance.trousers, 7)
        limb(f"{side}_knee", f"{side}_ankle", appearance.trousers, 6)
        ankle = point(f"{side}_ankle")
        if ankle:
            x, y = ankle
            draw.ellipse(
                [x - 4 * scale, y - 1.5 * scale, x + 4 * scale, y + 2.5 * scale],
                fill=appearance.shoes,
            )
    torso = [point(n) for n in ("right_shoulder", "left_shoulder", "left_hip", "right_hip")]
    if all(torso):
        draw.polygon(torso, fill=appearance.shirt)
    for side in ("right", "left"):
        limb(f"{side}_shoulder", f"{side}_elbow", appearance.shirt, 5)
        limb(f"{side}_elbow", f"{side}_wrist", appearance.skin, 4)
    limb("neck", "right_shoulder", appearance.shirt, 6)
    limb("neck", "left_shoulder", appearance.shirt, 6)
    neck, nose = point("neck"), point("nose")
    ears = [p for p in (point("right_ear"), point("left_ear")) if p]
    hips = [p for p in (point("right_hip"), point("left_hip")) if p]
    if neck:
        torso_length = np.mean([p[1] for p in hips]) - neck[1] if hips else 0.3 * img_H
        radius_y = 0.23 * torso_length
        radius_x = 0.75 * radius_y
        if nose:
            head_x, head_y = nose
        elif ears:
            head_x, head_y = np.mean([p[0] for p in ears]), np.mean([p[1] for p in ears])
        else:
            head_x, head_y = neck[0], neck[1] - 1.1 * radius_y
        box = [head_x - radius_x, head_y - radius_y, head_x + radius_x, head_y + radius_y]
        draw.ellipse(box, fill=appearance.skin)
        # Hair: the top of the head from the front, all of it from the back.
        draw.chord(box, 180 if nose else 0, 360, fill=appearance.hair)
    pixels = np.asarray(image).astype(np.int16)
    pixels += rng.integers(-6, 7, size=pixels.shape, dtype=np.int16)
    return np.clip(pixels, 0, 255).astype(np.uint8)


def _background(rng: np.random.Generator, img_H: int, img_W: int) -> np.ndarray:
    top, bottom = rng.integers(30, 240, size=(2, 3))
    rows = np.linspace(0.0, 1.0, img_H)[:, None, None]
    pixels = (top * (1 - rows) + bottom * rows) * np.ones((1, img_W, 1))
    for _ in range(int(rng.integers(0, 4))):
        y0, x0 = rng.integers(0, img_H), rng.integers(0, img_W)
        y1, x1 = y0 + rng.integers(5, img_H // 2), x0 + rng.integers(5, img_W // 2)
        pixels[y0:y1, x0:x1] = rng.integers(20, 240, size=3)
    return pixels.astype(np.uint8)


def openpose_result(
    keypoints_rc: np.ndarray, rng: np.random.Generator
) -> tuple[list[list[tuple]], np.ndarray]:
    """OpenPose-format peaks/subsets of a person: the true peak first for every joint, then
    sometimes a distractor peak that belongs to a weaker second person (or to no one).

    Both keypoint selection rules of the converters recover ``keypoints_rc`` exactly.
    """
    all_peaks, person = pose_files.openpose_from_keypoints(keypoints_rc)
    scored_peaks = []
    person_score = 0.0
    for candidates in all_peaks:
        joint_peaks = []
        for x, y, _, peak_id in candidates:
            score = float(rng.uniform(0.45, 0.97))
            joint_peaks.append((x, y, score, peak_id))
            person_score += score
        scored_peaks.append(joint_peaks)
    next_id = int(person[0, -1])
    other = np.full(pose.NUM_KEYPOINTS + 2, -1.0)
    for joint, joint_peaks in enumerate(scored_peaks):
        if joint_peaks and rng.random() < 0.15:
            x, y = joint_peaks[0][0], joint_peaks[0][1]
            joint_peaks.append((x // 2, y // 2, float(rng.uniform(0.1, 0.4)), next_id))
            other[joint] = next_id
            next_id += 1
    person[0, -2] = person_score + float(rng.uniform(0.5, 2.0))
    subsets = person
    if (other[: pose.NUM_KEYPOINTS] >= 0).sum() >= 2:
        other[-1] = (other[: pose.NUM_KEYPOINTS] >= 0).sum()
        other[-2] = 0.5 * other[-1]
        subsets = np.vstack([person, other[None]])
    return scored_peaks, subsets


def image_names(
    kind: str, image_set: str, identities: int, images_per_identity: int
) -> list[list[str]]:
    """File names [identity][image] of a set (different identities and frames per set)."""
    first_identity = {"train": 1, "test": 1001, "test_samples": 2001, "test_seq": 3001}
    layout = datasets.by_kind(kind)
    names = []
    for person in range(identities):
        identity = first_identity[image_set] + person
        names.append(
            [
                layout.raw_image_name(
                    identity, index + 1, identity * 100 + index, 1 + (identity + index) % 6
                )
                for index in range(images_per_identity)
            ]
        )
    return names


@dataclass(frozen=True)
class SyntheticSpec:
    """Everything that determines the generated files."""

    kind: str
    identities: int
    images_per_identity: int
    split: str
    seed: int
    junk_test_files: bool = False
    seen_people: bool = False
    shared_background: bool = False


def make_synthetic_raw(
    out_dir,
    kind: str = "market",
    identities: int = 4,
    images_per_identity: int = 3,
    splits=("train", "test"),
    seed: int = 0,
    junk_test_files: bool = False,
    seen_people: bool = False,
    shared_background: bool = False,
) -> Path:
    """Writes the raw layout (module docstring) under ``out_dir``; returns the raw folder.

    ``splits``: image sets among train (with its mirrored train_flip), test, test_samples and
    (DeepFashion) test_seq; a set already written with the same arguments is kept as it is.
    ``junk_test_files``: Market test starts with the real set's 6617 (empty) junk files.
    ``seen_people``: the test-type sets show train's people (those of the same index and
    ``seed``) in new poses, instead of people of their own.
    ``shared_background``: each person has one background in all their photos (by default each
    photo has its own, so the two images of a pair have unrelated backgrounds).

    Raises:
        ConfigError: unknown kind/split, fewer than 1 identity or 2 images per identity.
    """
    if kind not in KINDS:
        raise ConfigError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    layout = datasets.by_kind(kind)
    splits = tuple(splits)
    unknown = [split for split in splits if split not in SPLITS or split not in layout.image_sets]
    if unknown:
        raise ConfigError(f"unknown split(s) {unknown} for {kind}")
    if identities < 1 or images_per_identity < 2:
        raise ConfigError("need at least 1 identity and 2 images per identity to make pairs")
    raw_dir = Path(out_dir) / layout.raw_folder
    (raw_dir / layout.pose_folder).mkdir(parents=True, exist_ok=True)
    for split in splits:
        junk = _with_junk(layout, split, junk_test_files)
        spec = SyntheticSpec(
            kind, identities, images_per_identity, split, seed, junk, seen_people, shared_background
        )
        marker = raw_dir / f".synthetic_{split}.json"
        if marker.is_file() and marker.read_text() == json.dumps(asdict(spec)):
            continue
        _write_split(raw_dir, layout, spec)
        atomic.write_text(marker, json.dumps(asdict(spec)))
    return raw_dir


def _write_split(raw_dir: Path, layout: datasets.Dataset, spec: "SyntheticSpec") -> None:
    split = spec.split
    people = image_names(layout.kind, split, spec.identities, spec.images_per_identity)
    sets = prepare_image_sets(raw_dir, layout, split)
    if spec.junk_test_files:  # the real set's junk detections, skipped by the converter
        for index in range(layout.junk_test_detections):
            junk_name = layout.raw_image_name(0, 1, index)
            (raw_dir / layout.image_folder(split) / junk_name).touch()
    for person, names in enumerate(people):
        # seen_people: the person of train with this index (same seed), in new poses.
        look = person + 1000 * _SPLIT_INDEX["train" if spec.seen_people else split]
        appearance = identity_appearance(look, spec.seed)
        background = None
        if spec.shared_background:
            background_rng = np.random.default_rng([spec.seed, 104729, look])
            background = _background(background_rng, layout.img_H, layout.img_W)
        for index, name in enumerate(names):
            rng = np.random.default_rng([spec.seed, _SPLIT_INDEX[split], person, index])
            keypoints_rc = random_keypoints(rng, layout.img_H, layout.img_W)
            pixels = render_person(
                keypoints_rc, appearance, rng, layout.img_H, layout.img_W, background
            )
            save_jpeg(pixels, raw_dir / layout.image_folder(split) / name)
            sets[split][name] = openpose_result(keypoints_rc, rng)
            if split == "train":
                mirrored = pose.mirror_keypoints(keypoints_rc, layout.img_W)
                save_jpeg(pixels[:, ::-1], raw_dir / layout.image_folder("train_flip") / name)
                sets["train_flip"][name] = openpose_result(mirrored, rng)
    for image_set, results in sets.items():
        add_to_pickles(raw_dir / layout.pose_folder, layout.pickle_names(image_set), results)


def _with_junk(layout: datasets.Dataset, split: str, junk_test_files: bool) -> bool:
    """Whether the set starts with empty junk files (a test set of a dataset that has them)."""
    return junk_test_files and split == "test" and layout.junk_test_detections > 0


def prepare_image_sets(raw_dir: Path, layout: datasets.Dataset, split: str) -> dict:
    """Empties (or makes) the image folders ``split`` writes in the raw layout (with
    ``train_flip`` for train); returns ``{image_set: {}}`` for the sets' OpenPose results."""
    sets = {split: {}, "train_flip": {}} if split == "train" else {split: {}}
    for image_set in sets:
        folder = raw_dir / layout.image_folder(image_set)
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
    return sets


def save_jpeg(pixels: np.ndarray, path: Path, quality: int = 92) -> None:
    """uint8 [H, W, 3] pixels as a JPEG file of the given quality."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="JPEG", quality=quality)
    path.write_bytes(buffer.getvalue())


def add_to_pickles(pose_dir: Path, pickle_names: tuple[str, str], results: dict) -> None:
    """Merges ``{name: (peaks, person_rows)}`` into the peaks/subsets pickles of ``pose_dir``
    (DeepFashion keeps all sets in one pair, so another split's entries must stay)."""
    pose_dir.mkdir(parents=True, exist_ok=True)
    peaks_path, subsets_path = (pose_dir / name for name in pickle_names)
    all_peaks = common.load_python2_pickle(peaks_path, "") if peaks_path.exists() else {}
    subsets = common.load_python2_pickle(subsets_path, "") if subsets_path.exists() else {}
    for name, (peaks, person_rows) in results.items():
        all_peaks[name] = peaks
        subsets[name] = person_rows
    for path, value in ((peaks_path, all_peaks), (subsets_path, subsets)):
        common.dump_pickle(value, path)  # whole or not at all: it holds the other splits too


def make_synthetic_records(
    out_dir,
    kind: str = "market",
    split: str = "train",
    identities: int = 4,
    images_per_identity: int = 3,
    seed: int = 0,
    workers: int = 1,
    with_roi10_mask: bool = False,
    show_progress: bool = False,
    junk_test_files: bool = False,
    seen_people: bool = False,
    shared_background: bool = False,
) -> Path:
    """Generates the raw set of ``split`` and converts it with the original-equivalent converter.

    Args:
        out_dir: folder for the raw layout and the records.
        kind: "market" (128 x 64) or "deepfashion" (256 x 256).
        split: "train" (records of the mirrored copies first, then the originals), "test",
            "test_samples" or (deepfashion) "test_seq"; the record files are named
            ``<Market1501|DeepFashion>_<train|test>_*.tfrecord``.
        identities, images_per_identity: each identity gives images_per_identity *
            (images_per_identity - 1) pairs (twice that for train, with the mirrored copies).
        with_roi10_mask: deepfashion only: also write the 1.3 MB/record roi10_mask features.
        junk_test_files: market test only: write the 6617 junk files and let the converter skip
            them, as with the real data (slower: 6617 files).
        seen_people, shared_background: as in :func:`make_synthetic_raw` (defaults: off).

    Returns:
        the data folder ``<out_dir>/<Market|DF>_<split>_data`` holding the shards,
        ``pn_pairs_num_<train|test>.p`` and the pair pickles.
    """
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    layout = datasets.by_kind(kind)
    junk = _with_junk(layout, split, junk_test_files)
    raw_dir = make_synthetic_raw(
        out_dir,
        kind,
        identities,
        images_per_identity,
        (split,),
        seed,
        junk_test_files=junk,
        seen_people=seen_people,
        shared_background=shared_background,
    )
    data_dir = Path(out_dir) / layout.data_folder(split)
    spec = asdict(
        SyntheticSpec(
            kind, identities, images_per_identity, split, seed, junk, seen_people, shared_background
        )
    )
    spec["with_roi10_mask"] = with_roi10_mask
    marker = data_dir / ".synthetic.json"
    if marker.is_file() and marker.read_text() == json.dumps(spec):
        return data_dir
    if data_dir.exists():  # records of other parameters
        shutil.rmtree(data_dir)
    common.converter_of(layout).convert(
        raw_dir,
        split,
        data_dir,
        workers=workers,
        with_roi10_mask=with_roi10_mask,
        show_progress=show_progress,
        junk_detections=layout.junk_test_detections if junk else 0,
    )
    atomic.write_text(marker, json.dumps(spec))
    return data_dir


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", choices=KINDS, default="market")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--identities", type=int, default=4)
    parser.add_argument("--images_per_identity", type=int, default=3)
    parser.add_argument("--splits", default="train,test", help="comma-separated image sets")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--convert", action="store_true", help="also write the tf-records")
    parser.add_argument(
        "--junk_test_files",
        action="store_true",
        help="market test: start with 6617 empty junk files, as the real bounding_box_test",
    )
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    splits = tuple(split for split in args.splits.split(",") if split)
    raw_dir = make_synthetic_raw(
        args.out,
        args.kind,
        args.identities,
        args.images_per_identity,
        splits,
        args.seed,
        junk_test_files=args.junk_test_files,
    )
    print(f"raw {args.kind} data: {raw_dir}")
    if args.convert:
        for split in splits:
            data_path = make_synthetic_records(
                args.out,
                args.kind,
                split,
                args.identities,
                args.images_per_identity,
                args.seed,
                args.workers,
                junk_test_files=args.junk_test_files,
            )
            print(f"{split} records: {data_path}")


if __name__ == "__main__":
    common.run_cli(main)
