"""Speed of pg2_tf.keypoints: milliseconds per photo after the first (target: at most 100 ms).

    python -m benchmarks.keypoints [--repeats 20]

Runs the BlazePose estimator (detection + full landmark model, every photo detected afresh as in
static-image mode) on skimage's astronaut photo (512x512) and on the same photo scaled to a
phone-like 3000x3000, and prints the median and mean time per photo after the first call (which
pays for the interpreter's warm-up). Needs the model files (``python -m pg2_tf.keypoints
--fetch_model``).
"""

import argparse
import os
import statistics
import time

import numpy as np
import skimage.data
from PIL import Image

from pg2_tf import keypoints

TARGET_MS = 100.0


def milliseconds_per_photo(estimator, image, repeats: int) -> list[float]:
    """Times ``estimator(image)`` ``repeats`` times after one untimed call; ms per call."""
    estimator(image)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        estimator(image)
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    estimator = keypoints.KeypointEstimator()
    astronaut = skimage.data.astronaut()
    phone = np.asarray(Image.fromarray(astronaut).resize((3000, 3000), Image.Resampling.BILINEAR))
    print(f"{os.cpu_count()} CPU cores visible")
    for name, image in (("astronaut 512x512", astronaut), ("astronaut 3000x3000", phone)):
        times = milliseconds_per_photo(estimator, image, args.repeats)
        median = statistics.median(times)
        verdict = "within" if median <= TARGET_MS else "OVER"
        print(
            f"{name}: median {median:.1f} ms, mean {statistics.mean(times):.1f} ms per photo "
            f"({args.repeats} runs after the first; {verdict} the {TARGET_MS:.0f} ms target)"
        )


if __name__ == "__main__":
    main()
