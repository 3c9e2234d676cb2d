"""BlazePose without MediaPipe: the 18 COCO/OpenPose keypoints of a person in a photo, on a CPU.

:class:`KeypointEstimator` runs MediaPipe's two BlazePose models (their files:
:mod:`pg2_tf.people.model_files`) and returns a :class:`PersonKeypoints`;
``estimate(load_photo(path))`` does the same with the models kept per folder.
:func:`pg2_tf.people.finder.find_people` finds every person with the same engine.

Interpreter. LiteRT (``ai-edge-litert``), the maintained successor of ``tf.lite.Interpreter``
(which TF 2.21 marks deprecated, warning on every use). LiteRT 2.3 installs beside
tensorflow-cpu 2.21 with ``pip check`` clean (it only adds ``backports.strenum``), runs both models
with XNNPACK like MediaPipe, and does not import TensorFlow (this module starts in a fraction of a
second). Where no LiteRT wheel exists (e.g. Windows) it falls back to ``tf.lite.Interpreter``,
silencing its deprecation warning.

Pipeline: MediaPipe's static-image graphs (pose_landmark_cpu: pose_detection_cpu,
pose_detection_to_roi, pose_landmark_by_roi_cpu, tensors_to_pose_landmarks_and_segmentation),
re-implemented with the same numbers (the warps and anchors in :mod:`pg2_tf.people.geometry`, the
outputs' decoding in :mod:`pg2_tf.people.decoding`):

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

Rule: the engine imports only ``pg2_tf.core`` and the model files, geometry and decoding of
``pg2_tf.people``; nothing above it (the finder, the command line) is imported here.
"""

import contextlib
import dataclasses
import functools
import os
import sys
import threading
import warnings

import numpy as np

from pg2_tf.core import pose, pose_files
from pg2_tf.core.errors import DataError
from pg2_tf.people import decoding, geometry, model_files

VISIBILITY_THRESHOLD = 0.3
# MediaPipe landmark index of each of the 18 joints (pg2_tf.core.pose order); the neck (-1) is the
# mean of the shoulders 11 and 12.
JOINT_LANDMARKS = (0, -1, 12, 14, 16, 11, 13, 15, 24, 26, 28, 23, 25, 27, 5, 2, 8, 7)
_NECK = 1
_SHOULDERS = (11, 12)


class NoPersonFound(DataError):
    """BlazePose found no person in the photo."""


@dataclasses.dataclass(frozen=True)
class PersonKeypoints:
    """One person's 18 keypoints in a photo."""

    keypoints_xyc: np.ndarray  # float32 [18, 3]: x, y (photo pixels), confidence in [0, 1];
    # a missing joint has confidence 0 and x = y = 0, as OpenPose reports it
    box_xyxy: tuple  # (x0, y0, x1, y1) of all 33 landmarks in photo pixels (may leave the photo)
    score: float = 1.0  # the landmark model's pose presence, in (0.5, 1]
    # (centre_xy, side, rotation) from the auxiliary landmarks: where the landmark model looks for
    # this person in the next frame (MediaPipe's video mode); None for poses read from files
    roi: tuple | None = None

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


class KeypointEstimator:
    """BlazePose (detector + full landmark model) on one photo at a time; reuse it for many."""

    def __init__(self, cache_dir=None, threads: int | None = None):
        """Loads the two models from ``cache_dir`` (default
        :func:`pg2_tf.people.model_files.blazepose_dir`); raises ModelFilesMissing (its message:
        the command to run) when they are not there. ``threads``: the interpreters' threads
        (default: the cores, at most 4; 1 in each of several worker processes)."""
        directory = model_files.blazepose_dir(cache_dir)
        model_files.check_model_files(directory)
        self.cache_dir = directory
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
        image = check_image(image_rgb, name)
        found = self.detect(image)
        landmarks = self.landmarks_in_roi(image, found[0].roi()) if found else None
        if landmarks is None:
            raise NoPersonFound(f"no person found in {name}")
        return landmarks[0]

    def __call__(self, image_rgb, name="photo") -> PersonKeypoints:
        """The main person's keypoints in a uint8 RGB photo [H, W, 3] (the detector's best in
        the whole photo, as MediaPipe); raises NoPersonFound (naming ``name``) when BlazePose finds
        none. :func:`pg2_tf.people.finder.find_people` finds every person."""
        image = check_image(image_rgb, name)
        found = self.detect(image)
        landmarks = self.landmarks_in_roi(image, found[0].roi()) if found else None
        if landmarks is None:
            raise NoPersonFound(f"no person found in {name}")
        return person_from_landmarks(landmarks, *image.shape[:2])

    def detect(
        self, image_rgb, window=None, min_score: float = decoding.MIN_DETECTION_SCORE
    ) -> list:
        """Runs the person detector on the photo or a square window of it.

        Args:
          image_rgb: uint8 [H, W, 3].
          window: None for the whole photo letterboxed to a square (MediaPipe's own resampling,
            exactly), or ``(x0, y0, side)``: a square of the photo zoomed to the detector's
            224x224 (Pillow's bilinear when it lies inside the photo, faster; else black
            outside the photo, as the letterbox).
          min_score: the anchors' minimum score.

        Returns:
          list of :class:`pg2_tf.people.decoding.Detection` in photo pixels, highest score first.
        """
        image = np.asarray(image_rgb)
        height, width = image.shape[:2]
        if window is None:
            side = max(height, width)
            x0, y0 = (width - side) / 2, (height - side) / 2
            pixels = geometry.warp_rect(
                image,
                (width / 2, height / 2),
                (side, side),
                0.0,
                geometry.DETECTOR_SIZE,
                replicate=False,
            )
        else:
            x0, y0, side = (float(v) for v in window)
            if x0 >= 0 and y0 >= 0 and x0 + side <= width and y0 + side <= height:
                from PIL import Image

                box = (x0, y0, x0 + side, y0 + side)
                size = (geometry.DETECTOR_SIZE, geometry.DETECTOR_SIZE)
                resized = Image.fromarray(image).resize(size, Image.Resampling.BILINEAR, box=box)
                pixels = np.asarray(resized, np.float32)
            else:  # black outside the photo, as the letterbox
                centre = (x0 + side / 2, y0 + side / 2)
                pixels = geometry.warp_rect(
                    image, centre, (side, side), 0.0, geometry.DETECTOR_SIZE, False
                )
        with self._lock:
            detector = self._detector
            detector.set_tensor(
                detector.get_input_details()[0]["index"], (pixels / 127.5 - 1.0)[None]
            )
            detector.invoke()
            outputs = {key: detector.get_tensor(index) for key, index in self._detector_outputs}
        found = decoding.decode_detections(
            outputs["boxes"][0], outputs["scores"][0, :, 0], min_score
        )
        offset = np.array([x0, y0])
        return [
            decoding.Detection(
                box_xyxy=box * side + np.tile(offset, 2),
                keypoints_xy=points * side + offset,
                score=score,
            )
            for box, points, score in found
        ]

    def landmarks_in_roi(self, image_rgb, roi):
        """The landmark model on one region of interest (``Detection.roi()``).

        Returns ``(landmarks float64 [33, 3] x, y in photo pixels and visibility, presence
        score, next region of interest)`` (:func:`pg2_tf.people.decoding.decode_landmarks`), or
        None when the model's pose-presence output is not above 0.5."""
        return decoding.decode_landmarks(self._landmark_outputs_in_roi(image_rgb, roi), roi)

    def segmentation_in_roi(self, image_rgb, roi) -> np.ndarray:
        """The landmark model's person segmentation on one region of interest (MediaPipe's
        ``enable_segmentation``), used by :mod:`pg2_tf.apps.background`.

        Args:
          image_rgb: uint8 [H, W, 3].
          roi: ``(centre_xy, side, rotation)`` as :meth:`landmarks_in_roi` takes it.

        Returns:
          float32 [256, 256] logits over the ROI's square (row 0 at its top edge): > 0 is the
          person.
        """
        segmentation = self._landmark_outputs_in_roi(image_rgb, roi)["segmentation"]
        return segmentation[0, :, :, 0].astype(np.float32)

    def _landmark_outputs_in_roi(self, image_rgb, roi) -> dict:
        """The landmark model's raw outputs by name on the ROI's square, resampled to 256x256."""
        centre, side, rotation = roi
        crop = geometry.warp_rect(
            np.asarray(image_rgb), centre, (side, side), rotation, decoding.LANDMARK_SIZE, True
        )
        with self._lock:
            landmarker = self._landmarker
            landmarker.set_tensor(landmarker.get_input_details()[0]["index"], (crop / 255.0)[None])
            landmarker.invoke()
            return {key: landmarker.get_tensor(index) for key, index in self._landmark_outputs}


def person_from_landmarks(found, height: int, width: int) -> PersonKeypoints:
    """The person of the landmark model's output, as :class:`PersonKeypoints`.

    Args:
      found: ``(landmarks_xyv, presence, next_roi)`` as :meth:`KeypointEstimator.landmarks_in_roi`
        returns it: [33, 3] x, y in photo pixels and visibility in [0, 1], the pose presence in
        (0.5, 1], and the region of interest of the auxiliary landmarks.
      height, width: the photo's size in pixels.

    Returns:
      PersonKeypoints: the 18 joints (:func:`joints_from_landmarks`), the box of all 33 landmarks
      (also those outside the photo), ``presence`` as its score and ``next_roi`` as its roi.
    """
    landmarks_xyv, presence, next_roi = found
    landmarks_xyv = np.asarray(landmarks_xyv, np.float64)
    box = (
        *(float(v) for v in landmarks_xyv[:, :2].min(axis=0)),
        *(float(v) for v in landmarks_xyv[:, :2].max(axis=0)),
    )
    joints = joints_from_landmarks(landmarks_xyv, height, width)
    return PersonKeypoints(joints, box, float(presence), next_roi)


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


def check_image(image_rgb, name) -> np.ndarray:
    """The photo as the models take it, checked.

    Args:
      image_rgb: an array-like photo.
      name: names the photo in the message.

    Returns:
      The photo as a uint8 [H, W, 3] array (not copied), H and W > 0.

    Raises:
      DataError: any other dtype or shape, naming ``name``.
    """
    image = np.asarray(image_rgb)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or 0 in image.shape:
        raise DataError(
            f"{name}: expected a uint8 RGB image [H, W, 3], got {image.dtype} {image.shape}"
        )
    return image


@functools.cache
def _estimator(directory: str) -> KeypointEstimator:
    return KeypointEstimator(directory)


def cached_estimator(cache_dir=None) -> KeypointEstimator:
    """The :class:`KeypointEstimator` of a model folder, made (and its files checked) once per
    folder and kept.

    Args:
      cache_dir: the model folder, or None for :func:`pg2_tf.people.model_files.blazepose_dir`.

    Returns:
      The folder's KeypointEstimator, shared by every caller (thread-safe).

    Raises:
      ModelFilesMissing: the folder lacks the model files.
    """
    return _estimator(model_files.blazepose_dir(cache_dir))


def estimate(image_rgb, name="photo", cache_dir=None) -> PersonKeypoints:
    """The main person's keypoints in one photo, the models kept per folder
    (:func:`cached_estimator`).

    Args:
      image_rgb: uint8 [H, W, 3].
      name: names the photo in messages.
      cache_dir: the model folder, or None for the default.

    Returns:
      PersonKeypoints of the detector's best person, as :class:`KeypointEstimator` gives it.

    Raises:
      NoPersonFound: nobody is found; ModelFilesMissing: the folder lacks the model files.
    """
    return _estimator(model_files.blazepose_dir(cache_dir))(image_rgb, name)
