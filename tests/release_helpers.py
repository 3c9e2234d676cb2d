"""Tiny fake official releases and a fake keypoint estimator for tests of data_prep.from_release.

The fake estimator stands in for BlazePose where a test is not about keypoints: it reads the
image (so unreadable files fail as with the real one) and returns a standing person's 18 joints
scaled to the image, except for frame numbers ``999xxx`` (no person) and ``998xxx`` (3 joints).
It is a picklable factory, so worker processes and subprocesses can use it: they import this
module by name, which is why it is a module of its own, light (no TensorFlow), and not part of
the shared test helpers.
"""

import dataclasses
import functools
import time
from pathlib import Path

import numpy as np
from PIL import Image

# A standing person in a 128 x 64 frame (row, col), COCO-18 order.
STANDING_RC = np.array(
    [[18, 32], [28, 32], [28, 24], [44, 22], [58, 21], [28, 40], [44, 42], [58, 43], [62, 27],
     [86, 27], [110, 27], [62, 37], [86, 37], [110, 37], [16, 30], [16, 34], [17, 27], [17, 37]],
    np.float64,
)  # fmt: skip


def fake_estimate(delay: float, path: str):
    """(keypoints_rc, None) or (None, reason), as data_prep.keypoint_cache.estimate_image."""
    from data_prep.keypoint_cache import UNREADABLE
    from pg2_tf.core.errors import DataError
    from pg2_tf.people import photos

    try:
        image = photos.load_photo(path)
    except DataError as error:
        return None, f"{UNREADABLE} ({error})"
    if delay:
        time.sleep(delay)
    name = Path(path).name
    if "_999" in name:
        return None, "no person found"
    keypoints_rc = np.round(STANDING_RC * [image.shape[0] / 128, image.shape[1] / 64])
    if "_998" in name:
        keypoints_rc[3:] = -1
    return keypoints_rc, None


@dataclasses.dataclass(frozen=True)
class FakeEstimate:
    """Picklable factory of :func:`fake_estimate` (``delay`` seconds per image)."""

    delay: float = 0.0

    def __call__(self):
        return functools.partial(fake_estimate, self.delay)


def _save(path: Path, size_hw, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, size=(*size_hw, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=90)


def make_market_release(root: Path, people: dict, folder: str = "bounding_box_train") -> Path:
    """Writes ``root/<folder>/<name>`` for each name of ``people`` {identity: [names]}."""
    for index, name in enumerate(name for names in people.values() for name in names):
        _save(root / folder / name, (128, 64), index)
    return root


def market_names(identity: str, cameras_frames) -> list[str]:
    """Market names of one identity: ``[(camera, frame), ...]`` -> PPPP_cCs1_FFFFFF_00.jpg."""
    return [f"{identity}_c{camera}s1_{frame:06d}_00.jpg" for camera, frame in cameras_frames]


def make_deepfashion_release(root: Path, items: dict) -> Path:
    """``items``: {item id 'id_00000001': [(file 'NN_K_view.jpg', status), ...]}; writes img/
    (256 x 256 images under WOMEN/Dresses) and Eval/list_eval_partition.txt."""
    rows = []
    for index, (item, files) in enumerate(items.items()):
        for number, (file_name, status) in enumerate(files):
            relative = f"img/WOMEN/Dresses/{item}/{file_name}"
            _save(root / relative, (256, 256), 100 * index + number)
            rows.append(f"{relative} {item} {status}")
    (root / "Eval").mkdir(parents=True, exist_ok=True)
    header = [str(len(rows)), "image_name item_id evaluation_status"]
    (root / "Eval" / "list_eval_partition.txt").write_text("\n".join(header + rows) + "\n")
    return root
