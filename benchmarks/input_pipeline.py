"""Input-pipeline throughput of pg2_tf.records.reader in training mode, against the model's step rate.

    python -m benchmarks.input_pipeline --kind market [--batch_size 16] [--seconds 10]

Writes (once; later runs reuse it) a temporary set of records shaped like the original converter's
output: the same feature keys and lengths, random-but-valid JPEGs (smooth colour fields plus
noise, about the size of the real photos' JPEGs), random poses (radius-4 discs around 18 keypoints),
body masks and the auxiliary features the reader skips. Then it times the training pipeline
(``make_dataset(..., is_train=True)``) and compares it with what a model running at
``--model_steps_per_s`` consumes. Files are read from the page cache after the first pass, so
this measures parsing and decoding, not the disk.

:func:`measure_examples_per_second` is reusable by other benchmark code.
"""

import argparse
import os
import pickle
import tempfile
import time

import numpy as np
import tensorflow as tf

from pg2_tf.core import datasets
from pg2_tf.core.pose import NUM_KEYPOINTS
from pg2_tf.records import reader

# The original TF1 code on CPU took 0.563 s per training step (Market, batch 16).
ORIGINAL_MARKET_CPU_STEPS_PER_S = 1 / 0.563
IMAGE_SIZE = {"market": (128, 64), "deepfashion": (256, 256)}
DEFAULT_NUM_PAIRS = {"market": 512, "deepfashion": 256}
DISC_RADIUS = 4


def _random_photo(rng, height, width):
    """uint8 [H, W, 3]: a smooth random colour field plus mild noise (JPEG size like a photo)."""
    coarse = rng.uniform(0, 255, size=(1, height // 16, width // 16, 3)).astype(np.float32)
    smooth = tf.image.resize(coarse, [height, width], method="bicubic")[0].numpy()
    noisy = smooth + rng.normal(0, 6, size=smooth.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def _disc_offsets(radius):
    rows, cols = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    inside = rows**2 + cols**2 <= radius**2
    return rows[inside], cols[inside]


def _random_pose(rng, height, width):
    """Sparse pose (flat indices r*W*18 + c*18 + k, values 1.0) and an H*W body mask in {0, 1}."""
    disc_rows, disc_cols = _disc_offsets(DISC_RADIUS)
    centre_row, centre_col = height / 2, width / 2
    indices = []
    mask = np.zeros((height, width), np.int64)
    for keypoint in range(NUM_KEYPOINTS):
        if rng.uniform() < 0.1:  # missing keypoint
            continue
        row = int(np.clip(rng.normal(centre_row, height / 5), 0, height - 1))
        col = int(np.clip(rng.normal(centre_col, width / 5), 0, width - 1))
        rows, cols = row + disc_rows, col + disc_cols
        keep = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
        rows, cols = rows[keep], cols[keep]
        indices.extend(rows * width * NUM_KEYPOINTS + cols * NUM_KEYPOINTS + keypoint)
        mask[max(row - 8, 0) : row + 9, max(col - 8, 0) : col + 9] = 1
    return np.asarray(indices, np.int64), mask.reshape(-1)


def _int64s(values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def _floats(values):
    return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))


def _bytes(value):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def make_pair_example(rng, img_H, img_W) -> tf.train.Example:
    """One pair record with the original converter's feature keys and lengths, random content."""
    peaks_grid = 16 * (img_W * 16 // img_H) * NUM_KEYPOINTS  # 16x8x18 or 16x16x18
    feature = {
        "image_format": _bytes(b"jpg"),
        "image_height": _int64s([img_H]),
        "image_width": _int64s([img_W]),
        "label": _int64s([1]),
        "real_data": _int64s([1]),
        "shape": _int64s([img_H * img_W * NUM_KEYPOINTS]),
    }
    for side in (0, 1):
        photo = _random_photo(rng, img_H, img_W)
        indices, mask = _random_pose(rng, img_H, img_W)
        feature.update(
            {
                f"image_raw_{side}": _bytes(tf.io.encode_jpeg(photo).numpy()),
                f"image_name_{side}": _bytes(
                    f"{rng.integers(1500):04d}_c1s1_000000_00.jpg".encode()
                ),
                f"id_{side}": _int64s([int(rng.integers(1500))]),
                f"cam_{side}": _int64s([int(rng.integers(1, 7))]),
                f"indices_r4_{side}": _int64s(indices),
                f"values_r4_{side}": _floats(np.ones(len(indices), np.float32)),
                f"pose_mask_r4_{side}": _int64s(mask),
                f"pose_mask_r6_{side}": _int64s(mask),
                f"seg_{side}": _int64s(mask),
                f"pose_peaks_{side}": _floats(np.zeros(peaks_grid, np.float32)),
                f"pose_peaks_{side}_rcv": _floats(rng.uniform(0, img_H, 54).astype(np.float32)),
                f"pose_subs_{side}": _floats(np.arange(20, dtype=np.float32)),
                f"part_bbox_{side}": _int64s(rng.integers(0, img_W, 148)),
                f"part_vis_{side}": _int64s(np.ones(37, np.int64)),
                f"attrs_{side}": _int64s([]),
            }
        )
        for width in (25, 50, 100, 150):
            feature[f"attrs_w2v{width}_{side}"] = _floats([])
    return tf.train.Example(features=tf.train.Features(feature=feature))


def write_records(folder, kind, split, num_pairs, num_files=4, seed=0) -> list[str]:
    """Writes ``num_pairs`` random pair records as ``<prefix>_<split>_0000i-of-0000n.tfrecord``
    plus ``pn_pairs_num_<split>.p`` in ``folder``; returns the record paths."""
    img_H, img_W = IMAGE_SIZE[kind]
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    paths = [
        os.path.join(
            folder, f"{reader.record_prefix(kind)}_{split}_{i:05d}-of-{num_files:05d}.tfrecord"
        )
        for i in range(num_files)
    ]
    for file_number, path in enumerate(paths):
        with tf.io.TFRecordWriter(path) as writer:
            for _ in range(file_number, num_pairs, num_files):
                writer.write(make_pair_example(rng, img_H, img_W).SerializeToString())
    # Written last: its presence marks a complete set.
    with open(os.path.join(folder, f"pn_pairs_num_{split}.p"), "wb") as file:
        pickle.dump(num_pairs, file, protocol=2)
    return paths


def measure_examples_per_second(dataset, seconds, warmup_batches=3) -> float:
    """Examples per second drawn from ``dataset`` (batched dicts or tensors) over ``seconds``.

    The first ``warmup_batches`` batches (pipeline start-up, buffer filling) are not timed.
    """
    iterator = iter(dataset)
    for _ in range(warmup_batches):
        next(iterator)
    examples = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        batch = next(iterator)
        first = next(iter(batch.values())) if isinstance(batch, dict) else batch
        examples += int(first.shape[0])
    return examples / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kind", choices=datasets.KINDS, default="market")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--num_pairs", type=int, default=None, help="records to write")
    parser.add_argument(
        "--model_steps_per_s",
        type=float,
        default=ORIGINAL_MARKET_CPU_STEPS_PER_S,
        help="training steps per second of the model (default: the original's Market CPU rate, "
        "1/0.563; a DeepFashion step is slower, so the default overstates its need)",
    )
    parser.add_argument(
        "--batches_per_step",
        type=int,
        default=2,
        help="batches a step consumes (2: the original's G2 and D updates each drew a batch)",
    )
    parser.add_argument("--data_dir", default=None, help="where to write/reuse the records")
    args = parser.parse_args(argv)

    img_H, img_W = IMAGE_SIZE[args.kind]
    num_pairs = args.num_pairs or DEFAULT_NUM_PAIRS[args.kind]
    folder = args.data_dir or os.path.join(
        tempfile.gettempdir(), f"pg2_input_pipeline_{args.kind}_{num_pairs}"
    )
    if not os.path.exists(os.path.join(folder, "pn_pairs_num_train.p")):
        print(f"writing {num_pairs} random {img_H}x{img_W} pair records to {folder} ...")
        start = time.perf_counter()
        write_records(folder, args.kind, "train", num_pairs)
        print(f"  done in {time.perf_counter() - start:.1f} s")
    files = reader.record_files(folder, "train", args.kind)
    megabytes = sum(os.path.getsize(path) for path in files) / 2**20
    print(
        f"records: {len(files)} files, {megabytes:.0f} MiB ({megabytes / num_pairs * 1024:.0f} KiB/pair)"
    )

    dataset = reader.make_dataset(
        folder,
        "train",
        kind=args.kind,
        img_H=img_H,
        img_W=img_W,
        batch_size=args.batch_size,
        is_train=True,
    )
    rate = measure_examples_per_second(dataset, args.seconds)
    needed = args.model_steps_per_s * args.batch_size * args.batches_per_step
    print(
        f"{args.kind} {img_H}x{img_W}, batch {args.batch_size}, {os.cpu_count()} CPUs: "
        f"training pipeline {rate:.0f} examples/s ({rate / args.batch_size:.1f} batches/s)"
    )
    print(
        f"model at {args.model_steps_per_s:.3f} steps/s x {args.batches_per_step} batches/step "
        f"x {args.batch_size} needs {needed:.0f} examples/s: "
        f"pipeline is {rate / needed:.1f} x faster than the model needs"
    )


if __name__ == "__main__":
    main()
