"""The 18 COCO/OpenPose keypoints of the person in a photo, on a CPU: BlazePose without MediaPipe.

Usage::

    python -m pg2_tf.keypoints --fetch_model            # once: downloads the model files (~9 MB)
    python -m pg2_tf.keypoints --image=PHOTO --json=OUT.json [--draw=OUT.png]

(``pg2-keypoints`` is the same command.) ``--json`` is OpenPose's format,
``{"people": [{"pose_keypoints_2d": [x, y, c] * 18}]}`` in pixels of the input photo (EXIF
orientation applied), which ``pg2-generate --keypoints`` reads. ``--draw`` draws the skeleton on
the photo. No person, a file that is not a photo, or missing model files: one line, exit 2.

From Python: ``estimate(load_photo(path))`` or ``KeypointEstimator(model_dir)(image)`` return a
:class:`PersonKeypoints`.

Model files. MediaPipe's BlazePose (Apache-2.0): ``pose_detection.tflite`` (person detector) and
``pose_landmark_full.tflite`` (33 landmarks). They ship inside the ``mediapipe==0.10.21`` wheel on
PyPI, the last release that bundles them; mediapipe itself cannot live beside TensorFlow 2.21
(protobuf<5, numpy<2), so :func:`fetch_model` downloads that wheel with pip, extracts the two files,
checks their SHA-256 and caches them in :func:`model_dir` (``~/.cache/pg2_tf/blazepose``,
``$PG2_TF_CACHE/blazepose`` when set, or ``--cache_dir``). Nothing is downloaded at run time.

Interpreter. LiteRT (``ai-edge-litert``), the maintained successor of ``tf.lite.Interpreter``
(which TF 2.21 marks deprecated, warning on every use). LiteRT 2.3 installs beside
tensorflow-cpu 2.21 with ``pip check`` clean (it only adds ``backports.strenum``), runs both models
with XNNPACK like MediaPipe, and does not import TensorFlow (this module starts in a fraction of a
second). Where no LiteRT wheel exists (e.g. Windows) it falls back to ``tf.lite.Interpreter``,
silencing its deprecation warning.

Pipeline: MediaPipe's static-image graphs (pose_landmark_cpu: pose_detection_cpu,
pose_detection_to_roi, pose_landmark_by_roi_cpu, tensors_to_pose_landmarks_and_segmentation),
re-implemented here with the same numbers:

1. Detection: the photo letterboxed (black bars) to 224x224, values in [-1, 1]; 2254 SSD anchors
   (5 layers, strides 8, 16, 32, 32, 32, fixed size); boxes and 4 keypoints decoded relative to the
   anchors (scale 224); score = sigmoid(clip(logit, +-100)), kept from 0.5 (the legacy solution's
   ``min_detection_confidence``); weighted non-max suppression (IoU > 0.3); the best one.
2. Region of interest: centred on keypoint 0 (hips centre), side 2 x |kp1 - kp0| x 1.25,
   rotated so that hips -> kp1 points up.
3. Landmarks: that rotated square resampled to 256x256 (edges repeated outside the photo), values
   in [0, 1]; 39 landmarks (the first 33 kept), refined on the 64x64 heatmaps (9x9 weighted mean
   where the heatmap's sigmoid reaches 0.5); the pose-presence output must exceed 0.5; visibility =
   sigmoid; projected back through the rotation into photo pixels.

Mapping to the 18 joints: nose 0, neck = mean(11, 12), RShoulder 12, RElbow 14, RWrist 16,
LShoulder 11, LElbow 13, LWrist 15, RHip 24, RKnee 26, RAnkle 28, LHip 23, LKnee 25, LAnkle 27,
REye 5, LEye 2, REar 8, LEar 7 (MediaPipe's indices). A joint is missing (x = y = c = 0, as OpenPose
writes it) when it lies outside the photo or its visibility is below
:data:`VISIBILITY_THRESHOLD` = 0.3: BlazePose reports occluded or cut-off joints with visibility
around 0.0-0.27 and clearly visible ones above 0.3-0.5 (MediaPipe's drawing uses 0.5, which drops
e.g. the astronaut's raised elbow at 0.33). The neck is present only when both shoulders are, with
the smaller of their confidences.

Agreement with MediaPipe's own runtime: see tests/test_keypoints.py (reference landmarks written by
mediapipe 0.10.21 itself, tests/fixtures/blazepose/).
"""

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import warnings
import zipfile

import numpy as np

from pg2_tf.core import atomic, pose, pose_files
from pg2_tf.core.errors import DataError

MEDIAPIPE_WHEEL = "mediapipe==0.10.21"
FETCH_COMMAND = "python -m pg2_tf.keypoints --fetch_model"
# file name -> (path inside the wheel, SHA-256); identical in every platform's wheel.
MODEL_FILES = {
    "pose_detection.tflite": (
        "mediapipe/modules/pose_detection/pose_detection.tflite",
        "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
    ),
    "pose_landmark_full.tflite": (
        "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
        "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
    ),
}
# A wheel known to exist, for Pythons/platforms without a mediapipe 0.10.21 wheel of their own.
_FALLBACK_WHEEL_ARGS = ("--python-version", "3.11", "--platform", "manylinux_2_28_x86_64")

VISIBILITY_THRESHOLD = 0.3
MIN_DETECTION_SCORE = 0.5
MIN_PRESENCE_SCORE = 0.5
# MediaPipe landmark index of each of the 18 joints (pg2_tf.core.pose order); the neck (-1) is the mean
# of the shoulders 11 and 12.
JOINT_LANDMARKS = (0, -1, 12, 14, 16, 11, 13, 15, 24, 26, 28, 23, 25, 27, 5, 2, 8, 7)
_NECK = 1
_SHOULDERS = (11, 12)

_DETECTOR_SIZE = 224
_LANDMARK_SIZE = 256
_NUM_LANDMARKS = 39  # 33 pose landmarks + 6 auxiliary ones
_ROI_SCALE = 1.25
_NMS_IOU = 0.3
# 9 (the calculator's default): the graph in the repository says 7, but mediapipe 0.10.21's own
# landmarks are reproduced exactly with 9 and only to 0.2 heatmap cells with 7.
_HEATMAP_KERNEL = 9
_HEATMAP_MIN_CONFIDENCE = 0.5


class ModelFilesMissing(DataError):
    """The BlazePose model files are not in the cache; the message is the command to run."""


class NoPersonFound(DataError):
    """BlazePose found no person in the photo."""


def model_dir(cache_dir=None) -> str:
    """The folder holding the model files: ``cache_dir``, else ``$PG2_TF_CACHE/blazepose``, else
    ``~/.cache/pg2_tf/blazepose``."""
    if cache_dir:
        return os.path.abspath(os.path.expanduser(os.fspath(cache_dir)))
    root = os.environ.get("PG2_TF_CACHE") or os.path.join("~", ".cache", "pg2_tf")
    return os.path.abspath(os.path.join(os.path.expanduser(root), "blazepose"))


_model_folder = model_dir  # for the functions whose model_dir argument hides the function


def _sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_model_files(directory: str) -> None:
    for name, (_, sha) in MODEL_FILES.items():
        path = os.path.join(directory, name)
        if not os.path.isfile(path) or _sha256(path) != sha:
            state = "is damaged" if os.path.isfile(path) else "is missing"
            hint = f" --cache_dir={directory}" if directory != model_dir() else ""
            raise ModelFilesMissing(
                f"BlazePose model file {path} {state}; run: {FETCH_COMMAND}{hint}"
            )


def fetch_model(cache_dir=None) -> str:
    """Downloads the BlazePose model files into :func:`model_dir` (once) and returns that folder.

    Runs ``python -m pip download mediapipe==0.10.21 --no-deps --only-binary=:all:`` (this
    platform's wheel; if there is none, a manylinux one: the model files are the same in every
    wheel), extracts the two ``.tflite`` files and checks their SHA-256. Does nothing, offline, when
    the checked files are already there. Raises DataError (one line) when pip or the check fails.
    """
    directory = model_dir(cache_dir)
    try:
        _check_model_files(directory)
        return directory
    except ModelFilesMissing:
        pass
    with tempfile.TemporaryDirectory(prefix="pg2_tf_mediapipe_") as download:
        wheel = _download_wheel(download)
        with zipfile.ZipFile(wheel) as archive:
            files = {name: archive.read(member) for name, (member, _) in MODEL_FILES.items()}
    for name, data in files.items():
        if hashlib.sha256(data).hexdigest() != MODEL_FILES[name][1]:
            raise DataError(
                f"{MODEL_FILES[name][0]} in the downloaded {MEDIAPIPE_WHEEL} wheel does not have "
                "the expected SHA-256; the download is damaged or not the official wheel"
            )
    try:
        os.makedirs(directory, exist_ok=True)
        for name, data in files.items():
            # Another fetch may be writing the same files right now (two commands, or the test
            # suite's workers, on a machine without them): each writes a partial file of its own.
            atomic.write_bytes(os.path.join(directory, name), data)
    except OSError as error:
        raise DataError(
            f"cannot write the model files into {directory} ({error.strerror or error}); "
            "choose another folder with --cache_dir or PG2_TF_CACHE"
        ) from None
    _check_model_files(directory)
    return directory


def _download_wheel(folder: str) -> str:
    base = [sys.executable, "-m", "pip", "download", MEDIAPIPE_WHEEL, "--no-deps"]
    base += ["--only-binary=:all:", "--disable-pip-version-check", "-d", folder]
    error = ""
    for extra in ((), _FALLBACK_WHEEL_ARGS):
        result = subprocess.run(base + list(extra), capture_output=True, text=True, check=False)
        wheels = [name for name in os.listdir(folder) if name.endswith(".whl")]
        if result.returncode == 0 and wheels:
            return os.path.join(folder, wheels[0])
        lines = (result.stderr or result.stdout).strip().splitlines()
        error = lines[-1] if lines else f"exit status {result.returncode}"
    raise DataError(f"pip could not download {MEDIAPIPE_WHEEL} from the package index ({error})")


@dataclasses.dataclass(frozen=True)
class PersonKeypoints:
    """One person's 18 keypoints in a photo."""

    keypoints_xyc: np.ndarray  # float32 [18, 3]: x, y (photo pixels), confidence in [0, 1];
    # a missing joint has confidence 0 and x = y = 0, as OpenPose reports it
    box_xyxy: tuple  # (x0, y0, x1, y1) of all 33 landmarks in photo pixels (may leave the photo)
    score: float = 1.0  # the landmark model's pose presence, in (0.5, 1]

    def keypoints_rc(self) -> np.ndarray:
        """float64 [18, 2] (row, col), -1 for missing joints: the convention of pg2_tf.core.pose."""
        rc = self.keypoints_xyc[:, [1, 0]].astype(np.float64)
        rc[self.keypoints_xyc[:, 2] <= 0] = pose.MISSING
        return rc

    def to_openpose_json(self) -> dict:
        """The person as OpenPose JSON (COCO-18,
        :func:`pg2_tf.core.pose_files.openpose_document`)."""
        return pose_files.openpose_document(self.keypoints_xyc)


def joints_from_landmarks(landmarks_xyv, height: int, width: int) -> np.ndarray:
    """The 18 OpenPose joints from BlazePose's 33 landmarks.

    Args:
      landmarks_xyv: [33, 3] x, y in photo pixels, visibility in [0, 1].
      height, width: the photo's size.

    Returns:
      float32 [18, 3] x, y, confidence; missing joints (outside the photo, visibility below
      :data:`VISIBILITY_THRESHOLD`, or the neck without both shoulders) are all 0.
    """
    landmarks_xyv = np.asarray(landmarks_xyv, dtype=np.float64)
    x, y, visibility = landmarks_xyv[:, 0], landmarks_xyv[:, 1], landmarks_xyv[:, 2]
    present = (visibility >= VISIBILITY_THRESHOLD) & (x >= 0) & (x < width)
    present &= (y >= 0) & (y < height)
    joints = np.zeros((pose.NUM_KEYPOINTS, 3), np.float32)
    for joint, index in enumerate(JOINT_LANDMARKS):
        if index >= 0 and present[index]:
            joints[joint] = landmarks_xyv[index]
    shoulders = list(_SHOULDERS)
    if present[shoulders].all():
        neck_x, neck_y = landmarks_xyv[shoulders, :2].mean(axis=0)
        joints[_NECK] = (neck_x, neck_y, visibility[shoulders].min())
    return joints


# ---- the two models -------------------------------------------------------------------------


def _make_interpreter(path: str, threads: int | None = None):
    threads = threads or max(1, min(4, os.cpu_count() or 1))
    with _native_stderr_silenced():  # the runtime's "INFO: Created ... XNNPACK delegate" line
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:  # no LiteRT wheel for this platform
            import tensorflow as tf

            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=r"\s*Warning: tf.lite.Interpreter")
                interpreter = tf.lite.Interpreter(model_path=path, num_threads=threads)
        else:
            interpreter = Interpreter(model_path=path, num_threads=threads)
        interpreter.allocate_tensors()
    return interpreter


@contextlib.contextmanager
def _native_stderr_silenced():
    """Sends file descriptor 2 (C++ logging) to /dev/null; Python exceptions still propagate."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -100.0, 100.0)))


@functools.cache
def ssd_anchors() -> np.ndarray:
    """float32 [2254, 2]: the detector's anchor centres (x, y) in [0, 1], as MediaPipe's
    SsdAnchorsCalculator makes them for pose_detection (224x224, strides 8, 16, 32, 32, 32, two
    anchors per layer and location, layers of equal stride merged)."""
    strides = (8, 16, 32, 32, 32)
    centres = []
    layer = 0
    while layer < len(strides):
        same = [s for s in strides[layer:] if s == strides[layer]]
        per_location = 2 * len(same)  # aspect ratio 1 + the interpolated scale, per layer
        size = int(np.ceil(_DETECTOR_SIZE / strides[layer]))
        grid = (np.arange(size) + 0.5) / size
        ys, xs = np.meshgrid(grid, grid, indexing="ij")
        location = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(location, per_location, axis=0))
        layer += len(same)
    return np.concatenate(centres).astype(np.float32)


def warp_rect(image, centre_xy, size_wh, rotation, out_size: int, replicate: bool) -> np.ndarray:
    """A rotated rectangle of the photo resampled to out_size x out_size, as MediaPipe does it.

    MediaPipe's ImageToTensor on CPU maps the rectangle's corners (``cv::boxPoints``) to the
    output's corners 0 and out_size and resamples with OpenCV's ``warpPerspective`` (bilinear).
    This reproduces OpenCV's arithmetic: float32 corners, source positions rounded to 1/32 pixel,
    15-bit fixed-point weights, the result rounded to uint8; the BlazePose models are sensitive
    enough to sub-level differences that a plain float bilinear moves landmarks by pixels.
    ``rotation`` (radians) turns the rectangle clockwise in the image. Outside the photo: its edge
    pixels repeated (``replicate``) or black.

    Returns float32 [out_size, out_size, 3] with integer values in [0, 255].
    """
    image = np.asarray(image)
    height, width = image.shape[:2]
    f32 = np.float32
    cx, cy = f32(centre_xy[0]), f32(centre_xy[1])
    w, h = f32(size_wh[0]), f32(size_wh[1])
    angle = float(f32(f32(rotation) * f32(180.0)) / f32(np.pi)) * np.pi / 180.0
    b, a = f32(np.cos(angle)) * f32(0.5), f32(np.sin(angle)) * f32(0.5)
    p0 = (cx - a * h - b * w, cy + b * h - a * w)
    p1 = (cx + a * h - b * w, cy - b * h - a * w)
    p2 = (f32(2) * cx - p0[0], f32(2) * cy - p0[1])
    p3 = (f32(2) * cx - p1[0], f32(2) * cy - p1[1])
    source = np.array([p0, p1, p2, p3], np.float64)
    target = np.array([[0, out_size], [0, 0], [out_size, 0], [out_size, out_size]], np.float64)
    inverse = np.linalg.inv(_perspective_matrix(source, target))

    grid_y, grid_x = np.mgrid[0:out_size, 0:out_size].astype(np.float64)
    denominator = inverse[2, 0] * grid_x + inverse[2, 1] * grid_y + inverse[2, 2]
    scale = np.where(denominator != 0, _SUBPIXELS / np.where(denominator != 0, denominator, 1), 0)
    fixed_x = np.rint((inverse[0, 0] * grid_x + inverse[0, 1] * grid_y + inverse[0, 2]) * scale)
    fixed_y = np.rint((inverse[1, 0] * grid_x + inverse[1, 1] * grid_y + inverse[1, 2]) * scale)
    fixed_x, fixed_y = fixed_x.astype(np.int64), fixed_y.astype(np.int64)
    x0, y0 = fixed_x >> 5, fixed_y >> 5
    fx, fy = (fixed_x & 31).astype(np.int32), (fixed_y & 31).astype(np.int32)
    # Weights (32 - fx) * (32 - fy) * 32 etc.: exact 15-bit fixed point summing to 32768.
    weights = [
        (_SUBPIXELS - fx) * (_SUBPIXELS - fy) * 32,
        fx * (_SUBPIXELS - fy) * 32,
        (_SUBPIXELS - fx) * fy * 32,
        fx * fy * 32,
    ]
    flat = np.ascontiguousarray(image).reshape(-1, image.shape[2])
    total = np.full(fx.shape + (image.shape[2],), 1 << 14, np.int32)
    for weight, (dy, dx) in zip(weights, ((0, 0), (0, 1), (1, 0), (1, 1)), strict=True):
        xs, ys = x0 + dx, y0 + dy
        if not replicate:  # black outside the photo
            weight = weight * ((xs >= 0) & (xs < width) & (ys >= 0) & (ys < height))
        index = np.clip(ys, 0, height - 1) * width + np.clip(xs, 0, width - 1)
        total += np.take(flat, index, axis=0).astype(np.int32) * weight[..., None]
    return (total >> 15).astype(np.float32)


_SUBPIXELS = 32  # OpenCV's INTER_TAB_SIZE


def _perspective_matrix(source, target) -> np.ndarray:
    """The 3x3 homography taking the 4 source points to the 4 target points (as
    ``cv::getPerspectiveTransform``)."""
    system = np.zeros((8, 8))
    rhs = np.zeros(8)
    for i, ((x, y), (u, v)) in enumerate(zip(source, target, strict=True)):
        system[i] = (x, y, 1, 0, 0, 0, -x * u, -y * u)
        system[i + 4] = (0, 0, 0, x, y, 1, -x * v, -y * v)
        rhs[i], rhs[i + 4] = u, v
    return np.append(np.linalg.solve(system, rhs), 1.0).reshape(3, 3)


def _iou(box, boxes):
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    intersection = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = (box[2] - box[0]) * (box[3] - box[1]) + areas - intersection
    return np.where(union > 0, intersection / np.maximum(union, 1e-12), 0.0)


def decode_detections(raw_boxes, raw_scores, min_score: float = MIN_DETECTION_SCORE) -> list:
    """The detector's output -> people, as MediaPipe's TensorsToDetections + weighted NMS.

    Args:
      raw_boxes: [2254, 12] (box x, y, w, h, then 4 keypoints x, y) relative to the anchors.
      raw_scores: [2254] logits.
      min_score: anchors scoring below this are dropped (MediaPipe's legacy solution: 0.5).

    Returns:
      A list of (box_xyxy [4], keypoints_xy [4, 2], score), all in [0, 1] of the 224x224
      input, highest score first: one per weighted-NMS cluster (the best remaining anchor and
      every remaining anchor overlapping it by IoU > 0.3, averaged by score; the cluster's score
      is its best anchor's). Empty when no anchor reaches ``min_score``. The first one is the
      person MediaPipe's single-person graph takes.
    """
    scores = _sigmoid(np.clip(raw_scores.astype(np.float64), -100, 100))
    keep = np.flatnonzero(scores >= min_score)
    if keep.size == 0:
        return []
    anchors = ssd_anchors()[keep].astype(np.float64)
    raw = raw_boxes[keep].astype(np.float64) / _DETECTOR_SIZE
    centre = raw[:, :2] + anchors
    half = raw[:, 2:4] / 2
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    keypoints = raw[:, 4:].reshape(-1, 4, 2) + anchors[:, None, :]
    scores = scores[keep]
    remaining = np.argsort(-scores, kind="stable")
    found = []
    while remaining.size:
        overlapping = _iou(boxes[remaining[0]], boxes[remaining]) > _NMS_IOU
        cluster = remaining[overlapping]
        weights = scores[cluster] / scores[cluster].sum()
        box = (boxes[cluster] * weights[:, None]).sum(axis=0)
        points = (keypoints[cluster] * weights[:, None, None]).sum(axis=0)
        found.append((box, points, float(scores[remaining[0]])))
        remaining = remaining[~overlapping]
    return found


def refine_with_heatmap(landmarks_xy, heatmap) -> np.ndarray:
    """MediaPipe's RefineLandmarksFromHeatmap: each landmark (normalised [0, 1] of the crop) moves
    to the sigmoid-weighted mean of the 9x9 heatmap cells around it when their maximum reaches 0.5.

    Args: landmarks_xy [39, 2]; heatmap [64, 64, 39] logits. Returns the refined [39, 2].
    """
    size_h, size_w = heatmap.shape[:2]
    out = np.array(landmarks_xy, dtype=np.float64)
    offset = (_HEATMAP_KERNEL - 1) // 2
    for index, (x, y) in enumerate(out):
        col, row = int(x * size_w), int(y * size_h)  # C++ float -> int truncates toward zero
        # MediaPipe tests the column against the height here, not the row; kept for equal results.
        if col < 0 or col >= size_w or row < 0 or col >= size_h:
            continue
        rows = slice(max(0, row - offset), min(size_h, row + offset + 1))
        cols = slice(max(0, col - offset), min(size_w, col + offset + 1))
        confidence = _sigmoid(heatmap[rows, cols, index].astype(np.float64))
        total = confidence.sum()
        if confidence.size == 0 or total <= 0 or confidence.max() < _HEATMAP_MIN_CONFIDENCE:
            continue
        grid_r, grid_c = np.mgrid[rows, cols]
        out[index] = (
            (grid_c * confidence).sum() / size_w / total,
            (grid_r * confidence).sum() / size_h / total,
        )
    return out


class KeypointEstimator:
    """BlazePose (detector + full landmark model) on one photo at a time; reuse it for many."""

    def __init__(self, model_dir=None, threads: int | None = None):
        """Loads the two models from ``model_dir`` (default :func:`model_dir`); raises
        ModelFilesMissing (its message: the command to run) when they are not there.
        ``threads``: the interpreters' threads (default: the cores, at most 4; 1 in each of
        several worker processes)."""
        directory = _model_folder(model_dir)
        _check_model_files(directory)
        self.model_dir = directory
        detector, landmarker = (
            os.path.join(directory, name)
            for name in ("pose_detection.tflite", "pose_landmark_full.tflite")
        )
        self._detector = _make_interpreter(detector, threads)
        self._landmarker = _make_interpreter(landmarker, threads)
        self._detector_outputs = _outputs_by_shape(self._detector)
        self._landmark_outputs = _outputs_by_shape(self._landmarker)
        self._lock = threading.Lock()  # an interpreter runs one input at a time

    def landmarks(self, image_rgb, name="photo") -> np.ndarray:
        """BlazePose's 33 landmarks of the photo's main person (MediaPipe's single-person graph:
        the best detection in the whole photo): float64 [33, 3] x, y in photo pixels,
        visibility in [0, 1].

        Raises NoPersonFound naming ``name``."""
        image = _check_image(image_rgb, name)
        found = self.detect(image)
        landmarks = self.landmarks_in_roi(image, found[0].roi()) if found else None
        if landmarks is None:
            raise NoPersonFound(f"no person found in {name}")
        return landmarks[0]

    def __call__(self, image_rgb, name="photo") -> PersonKeypoints:
        """The main person's keypoints in a uint8 RGB photo [H, W, 3] (the detector's best in
        the whole photo, as MediaPipe); raises NoPersonFound (naming ``name``) when BlazePose finds
        none. :func:`pg2_tf.people.finder.find_people` finds every person."""
        image = _check_image(image_rgb, name)
        found = self.detect(image)
        landmarks = self.landmarks_in_roi(image, found[0].roi()) if found else None
        if landmarks is None:
            raise NoPersonFound(f"no person found in {name}")
        return person_from_landmarks(*landmarks, *image.shape[:2])

    def detect(self, image_rgb, window=None, min_score: float = MIN_DETECTION_SCORE) -> list:
        """Runs the person detector on the photo or a square window of it.

        Args:
          image_rgb: uint8 [H, W, 3].
          window: None for the whole photo letterboxed to a square (MediaPipe's own resampling,
            exactly), or ``(x0, y0, side)``: a square of the photo zoomed to the detector's
            224x224 (Pillow's bilinear when it lies inside the photo, faster; else black
            outside the photo, as the letterbox).
          min_score: the anchors' minimum score.

        Returns:
          list of :class:`Detection` in photo pixels, highest score first.
        """
        image = np.asarray(image_rgb)
        height, width = image.shape[:2]
        if window is None:
            side = max(height, width)
            x0, y0 = (width - side) / 2, (height - side) / 2
            pixels = warp_rect(
                image, (width / 2, height / 2), (side, side), 0.0, _DETECTOR_SIZE, replicate=False
            )
        else:
            x0, y0, side = (float(v) for v in window)
            if x0 >= 0 and y0 >= 0 and x0 + side <= width and y0 + side <= height:
                from PIL import Image

                box = (x0, y0, x0 + side, y0 + side)
                size = (_DETECTOR_SIZE, _DETECTOR_SIZE)
                resized = Image.fromarray(image).resize(size, Image.Resampling.BILINEAR, box=box)
                pixels = np.asarray(resized, np.float32)
            else:  # black outside the photo, as the letterbox
                centre = (x0 + side / 2, y0 + side / 2)
                pixels = warp_rect(image, centre, (side, side), 0.0, _DETECTOR_SIZE, False)
        with self._lock:
            detector = self._detector
            detector.set_tensor(
                detector.get_input_details()[0]["index"], (pixels / 127.5 - 1.0)[None]
            )
            detector.invoke()
            outputs = {key: detector.get_tensor(index) for key, index in self._detector_outputs}
        found = decode_detections(outputs["boxes"][0], outputs["scores"][0, :, 0], min_score)
        offset = np.array([x0, y0])
        return [
            Detection(
                box_xyxy=box * side + np.tile(offset, 2),
                keypoints_xy=points * side + offset,
                score=score,
            )
            for box, points, score in found
        ]

    def landmarks_in_roi(self, image_rgb, roi):
        """The landmark model on one region of interest (``Detection.roi()``).

        Returns ``(landmarks float64 [33, 3] x, y in photo pixels and visibility, presence
        score)``, or None when the model's pose-presence output is not above 0.5."""
        image = np.asarray(image_rgb)
        centre, side, rotation = roi
        crop = warp_rect(image, centre, (side, side), rotation, _LANDMARK_SIZE, True)
        with self._lock:
            landmarker = self._landmarker
            landmarker.set_tensor(landmarker.get_input_details()[0]["index"], (crop / 255.0)[None])
            landmarker.invoke()
            outputs = {key: landmarker.get_tensor(index) for key, index in self._landmark_outputs}
        presence = float(outputs["presence"].reshape(-1)[0])
        if presence <= MIN_PRESENCE_SCORE:
            return None
        raw = outputs["landmarks"].reshape(_NUM_LANDMARKS, 5).astype(np.float64)
        normalised = refine_with_heatmap(raw[:, :2] / _LANDMARK_SIZE, outputs["heatmap"][0])
        local = (normalised[:33] - 0.5) * side
        cos, sin = np.cos(rotation), np.sin(rotation)
        x = centre[0] + local[:, 0] * cos - local[:, 1] * sin
        y = centre[1] + local[:, 0] * sin + local[:, 1] * cos
        return np.stack([x, y, _sigmoid(raw[:33, 3])], axis=1), presence


@dataclasses.dataclass(frozen=True)
class Detection:
    """One person as the detector sees them, in photo pixels."""

    box_xyxy: np.ndarray  # float64 [4]: the detector's box (about the head and upper body)
    keypoints_xy: np.ndarray  # float64 [4, 2]: hips centre, full-body circle point, shoulders
    # centre, upper-body circle point
    score: float  # in [0.5, 1]

    def roi(self):
        """(centre_xy, side, rotation): the landmark model's square, as MediaPipe's
        pose_detection_to_roi: centred on the hips, side 2 x |full-body point - hips| x 1.25,
        turned so that hips -> full-body point points up (rotation in radians, clockwise)."""
        hips, full_body = self.keypoints_xy[0], self.keypoints_xy[1]
        rotation = np.pi / 2 - np.arctan2(-(full_body[1] - hips[1]), full_body[0] - hips[0])
        rotation = rotation - 2 * np.pi * np.floor((rotation + np.pi) / (2 * np.pi))
        side = 2 * np.hypot(*(full_body - hips)) * _ROI_SCALE
        return hips, side, rotation


def person_from_landmarks(landmarks_xyv, presence, height: int, width: int) -> PersonKeypoints:
    """A :class:`PersonKeypoints` from the landmark model's 33 landmarks in a photo of
    ``height`` x ``width`` (the box holds all 33 landmarks, also those outside the photo)."""
    landmarks_xyv = np.asarray(landmarks_xyv, np.float64)
    box = (
        *(float(v) for v in landmarks_xyv[:, :2].min(axis=0)),
        *(float(v) for v in landmarks_xyv[:, :2].max(axis=0)),
    )
    joints = joints_from_landmarks(landmarks_xyv, height, width)
    return PersonKeypoints(keypoints_xyc=joints, box_xyxy=box, score=float(presence))


def _outputs_by_shape(interpreter):
    """(name, tensor index) pairs of a model's outputs, named by their shapes (the models' own
    output names are generic Identity_N)."""
    names = {
        (2254, 12): "boxes",
        (2254, 1): "scores",
        (195,): "landmarks",
        (1,): "presence",
        (256, 256, 1): "segmentation",
        (64, 64, 39): "heatmap",
        (117,): "world",
    }
    return [
        (names[tuple(int(d) for d in detail["shape"][1:])], detail["index"])
        for detail in interpreter.get_output_details()
    ]


def _check_image(image_rgb, name) -> np.ndarray:
    image = np.asarray(image_rgb)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or 0 in image.shape:
        raise DataError(
            f"{name}: expected a uint8 RGB image [H, W, 3], got {image.dtype} {image.shape}"
        )
    return image


@functools.cache
def _estimator(directory: str) -> KeypointEstimator:
    return KeypointEstimator(directory)


def cached_estimator(model_dir=None) -> KeypointEstimator:
    """The :class:`KeypointEstimator` of a model folder, made (and its files checked) once per
    folder and kept; ModelFilesMissing when the folder lacks them."""
    return _estimator(_model_folder(model_dir))


def estimate(image_rgb, name="photo", model_dir=None) -> PersonKeypoints:
    """:class:`KeypointEstimator` on one photo, the models loaded (and their files checked) once
    per folder and kept; ModelFilesMissing when the folder lacks them."""
    return _estimator(_model_folder(model_dir))(image_rgb, name)


# ---- drawing and the command line -----------------------------------------------------------


def draw_keypoints(image_rgb, person: PersonKeypoints, label: str | None = None) -> np.ndarray:
    """The photo with the skeleton drawn on it (and ``label`` above the person's box):
    uint8 [H, W, 3]."""
    return draw_people(image_rgb, [person], [label] if label is not None else None)


def draw_people(image_rgb, people, labels=None) -> np.ndarray:
    """The photo with each person's skeleton drawn, and ``labels[i]`` (e.g. the index) in a box
    above person i's joints: uint8 [H, W, 3]."""
    from matplotlib import colormaps
    from PIL import Image, ImageDraw, ImageFont

    picture = Image.fromarray(np.asarray(image_rgb, dtype=np.uint8))
    draw = ImageDraw.Draw(picture)
    colours = (
        colormaps["hsv"](np.linspace(0, 1, len(pose.SKELETON_LIMBS), endpoint=False))[:, :3] * 255
    )
    for number, person in enumerate(people):
        joints = person.keypoints_xyc
        present = joints[:, 2] > 0
        if present.any():
            extent = np.ptp(joints[present, :2], axis=0).max()
        else:
            extent = max(person.box_xyxy[2] - person.box_xyxy[0], 1.0)
        # Lines in proportion to the person (small people get thin lines), within 1..size/200.
        width = int(np.clip(round(extent / 60), 1, max(2, round(max(picture.size) / 200))))
        for (a, b), colour in zip(pose.SKELETON_LIMBS, colours, strict=True):
            if joints[a, 2] > 0 and joints[b, 2] > 0:
                fill = tuple(int(c) for c in colour)
                draw.line([tuple(joints[a, :2]), tuple(joints[b, :2])], fill=fill, width=width)
        radius = 1.5 * width
        for x, y, confidence in joints:
            if confidence > 0:
                draw.ellipse(
                    [x - radius, y - radius, x + radius, y + radius],
                    fill=(255, 255, 255),
                    outline=(0, 0, 0),
                )
        if labels is None or labels[number] is None or not present.any():
            continue
        size = int(np.clip(max(picture.size) / 40, 12, 40))
        font = ImageFont.load_default(size=size)
        text = str(labels[number])
        x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
        # Centred above the person's joints, inside the picture.
        left = (joints[present, 0].min() + joints[present, 0].max() - (x1 - x0)) / 2
        left = float(np.clip(left, 3, max(3, picture.size[0] - (x1 - x0) - 3)))
        top = float(max(2.0, joints[present, 1].min() - (y1 - y0) - 8))
        x0, y0, x1, y1 = draw.textbbox((left, top), text, font=font)
        draw.rectangle([x0 - 3, y0 - 2, x1 + 3, y1 + 2], fill=(255, 255, 0), outline=(0, 0, 0))
        draw.text((left, top), text, fill=(0, 0, 0), font=font)
    return np.asarray(picture)


def define_flags() -> None:
    """The flags of ``python -m pg2_tf.keypoints`` (defined only when missing)."""
    from absl import flags

    from pg2_tf import cli

    cli.define_missing_flags(
        [
            (flags.DEFINE_string, "image", None, "the photo (any format Pillow reads)"),
            (flags.DEFINE_string, "json", None, "write the keypoints here (OpenPose JSON)"),
            (flags.DEFINE_string, "draw", None, "write the photo with the skeleton here (PNG)"),
            (flags.DEFINE_bool, "fetch_model", False, "download the BlazePose model files"),
            (flags.DEFINE_string, "cache_dir", None, "model folder (default: see model_dir())"),
            (
                flags.DEFINE_string,
                "tiles",
                "auto",
                "auto, always or never: look for small people on zoomed tiles: auto (when the whole photo may hold people "
                "too small for the detector), always, never",
            ),
        ]
    )


def main(argv) -> None:
    """Runs the command line: --fetch_model, or --image with --json and/or --draw."""
    from absl import flags

    from pg2_tf import cli
    from pg2_tf.core.errors import ConfigError
    from pg2_tf.people import photos

    cli.start_command(argv)
    values = flags.FLAGS
    if values.fetch_model:
        print(f"BlazePose model files in {fetch_model(values.cache_dir)}")
        if not values.image:
            return
    if not values.image:
        raise ConfigError("--image is required (or --fetch_model)")
    if not (values.json or values.draw):
        raise ConfigError("give --json=OUT.json and/or --draw=OUT.png")
    from pg2_tf.people import finder as people_module

    estimator = KeypointEstimator(values.cache_dir)
    image = photos.load_photo(values.image)
    found = people_module.find_people(estimator, image, values.image, values.tiles)
    if not found:
        raise NoPersonFound(f"no person found in {values.image}")
    if values.json:
        document = people_module.openpose_json(found)
        _write(values.json, "--json", lambda path: _write_json(path, document))
    if values.draw:
        from PIL import Image

        labels = [str(index) for index in range(len(found))]
        picture = Image.fromarray(draw_people(image, found, labels))
        _write(values.draw, "--draw", lambda path: picture.save(path, format="PNG"))
    if len(found) == 1:
        joints = int((found[0].keypoints_xyc[:, 2] > 0).sum())
        print(f"{joints} of 18 joints found in {values.image}")
        return
    print(f"{len(found)} people found in {values.image} (largest first):")
    for index, person in enumerate(found):
        x0, y0, x1, y1 = (round(v) for v in person.box_xyxy)
        joints = int((person.keypoints_xyc[:, 2] > 0).sum())
        print(f"  {index}: {joints} of 18 joints, box x {x0}..{x1}, y {y0}..{y1}")


def _write_json(path, document) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(document, f)
        f.write("\n")


def _write(path, flag, writer) -> None:
    """``writer(temporary)`` writes ``path`` whole or not at all (:mod:`pg2_tf.core.atomic`), its
    folder made first; DataError naming ``flag`` when it fails."""
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with atomic.replacing(path) as temporary:
            writer(temporary)
    except OSError as error:
        raise DataError(f"cannot write {flag}={path}: {error.strerror or error}") from None


def run() -> None:
    """Console entry point ``pg2-keypoints``."""
    from pg2_tf import cli

    cli.console_entry(define_flags, main)


if __name__ == "__main__":
    run()
