"""The work behind pg2-app's page, without HTTP: the SavedModel, its queue, the test records.

:class:`PoseService` loads the export once and serves every user through one
:class:`pg2_tf.serving.inference_queue.InferenceQueue`, in arrival order; it turns photos into
the model's frame (BlazePose, :mod:`pg2_tf.people`) and offers the first test records of
``data_dir``. :class:`AppConfig` holds what it needs, as plain values.

Rule: no HTTP and no flags here; the routes (:mod:`pg2_tf.apps.page_routes`) call it, and
TensorFlow's record reader loads only when test records are asked for.
"""

import dataclasses
import hashlib
import json
import os
import threading

import numpy as np

from pg2_tf.apps import background as backgrounds
from pg2_tf.apps import page_requests
from pg2_tf.core import datasets, pose, pose_files, retarget
from pg2_tf.core.errors import DataError
from pg2_tf.people import blazepose, finder, model_files, photos
from pg2_tf.serving import contract, engines, inference_queue

DEFAULT_MAX_UPLOAD_MB = 10
KEPT_BACKGROUNDS = 8  # inpainted source backgrounds kept (one per source a user works on)


@dataclasses.dataclass(frozen=True)
class AppConfig:
    """What :func:`pg2_tf.apps.page_routes.create_app` needs (pg2-app's flags, as plain values).

    saved_model: folder written by ``pg2-export``.
    data_dir: folder of test records (``<Market1501|DeepFashion>_test_*.tfrecord``), or its parent
        holding ``Market_test_data`` / ``DF_test_data``; None: no test records offered.
    max_upload_bytes: the largest photo or request body accepted (413 above).
    keypoint_model_dir: BlazePose model files (None:
        :func:`pg2_tf.people.model_files.blazepose_dir`'s default).
    max_records: how many test records are offered at most (the first ones, in file order).
    precision: ``--precision`` (:func:`pg2_tf.serving.engines.choose_precision`); the library
        default is the export's exact float32 path, the command line's is auto.
    max_batch: how many waiting requests the inference queue runs as one batch; None: what
        pays for the engine (:attr:`pg2_tf.serving.engines.Engine.batch_limit`: 8 for TensorFlow,
        1 for LiteRT); 1: one at a time, each answer then bit for bit the same whoever else is
        asking.
    proportions: ``--proportions``: the page's choice at start (None: by where the pose comes
        from, source for another person's photo, target otherwise).
    """

    saved_model: str
    data_dir: str | None = None
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * 2**20
    keypoint_model_dir: str | None = None
    max_records: int = 200
    precision: str = "float32"
    max_batch: int | None = None
    proportions: str | None = None


def find_test_records(data_dir: str, kind: str) -> tuple[str, list[str]]:
    """The test record files under data_dir, or under its ``Market_test_data`` / ``DF_test_data``.

    Args:
        data_dir: ``--data_dir``: the records' folder or its parent.
        kind: the dataset kind (``market`` or ``deepfashion``) whose records are looked for.

    Returns:
        ``(folder, files)``: the folder holding them and its ``<prefix>_test_*.tfrecord`` paths.

    Raises:
        DataError: (naming ``--data_dir``) neither folder holds any.
    """
    from pg2_tf.records import reader  # TensorFlow: only with --data_dir, so that --help needs none

    folder = datasets.by_kind(kind).data_folder("test")
    for candidate in (data_dir, os.path.join(data_dir, folder)):
        if os.path.isdir(candidate):
            try:
                return candidate, reader.record_files(candidate, "test", kind)
            except DataError:
                continue
    prefix = datasets.by_kind(kind).record_prefix
    raise DataError(
        f"--data_dir={data_dir} holds no {prefix}_test_*.tfrecord files (nor does its {folder} "
        "folder): point it at the converted test records, or leave it out"
    )


def load_test_pairs(data_dir: str, kind: str, img_H: int, img_W: int, limit: int) -> list:
    """The first test records of data_dir, read as pairs.

    Args:
        data_dir: ``--data_dir`` (see :func:`find_test_records`).
        kind: the dataset kind (``market`` or ``deepfashion``).
        img_H, img_W: the model's size; the records must be of this size.
        limit: how many pairs at most (the first ones, in file order).

    Returns:
        At most ``limit`` :class:`pg2_tf.records.pairs.RecordPair`: each side's name, uint8
        ``[img_H, img_W, 3]`` image and ``[18, 2]`` (row, col) keypoints, -1 missing.

    Raises:
        DataError: missing files, records of another size, or records without keypoints.
    """
    from pg2_tf.records import pairs

    _, files = find_test_records(data_dir, kind)
    return pairs.read_record_pairs(files, img_H, img_W, limit)


class PoseService:
    """The work behind the endpoints (no HTTP): the SavedModel, the estimator, the test records."""

    def __init__(self, config: AppConfig):
        self.config = config
        precision = engines.choose_precision(config.precision)  # a bad value fails first
        loaded, (self.img_H, self.img_W) = contract.load_export(config.saved_model)
        # One queue serves every user, in arrival order; it warms up now.
        self.engine = engines.Engine(config.saved_model, loaded, precision, warm_up=False)
        self.queue = inference_queue.InferenceQueue(self.engine, max_batch=config.max_batch)
        self.model = contract.read_metadata(config.saved_model).get("model", datasets.MARKET.model)
        self.kind = datasets.by_model(self.model).kind
        self.records = []
        if config.data_dir:
            self.records = load_test_pairs(
                config.data_dir, self.kind, self.img_H, self.img_W, config.max_records
            )
        self.default_pose = page_requests.standing_pose(self.img_H, self.img_W)
        self._backgrounds = {}  # the last inpainted backgrounds, by source image and pose
        self._backgrounds_lock = threading.Lock()
        self.warm_up_answers()

    # -- inference --

    def generate(self, image: np.ndarray, keypoints_rc: np.ndarray) -> dict:
        """uint8 [H, W, 3] + float32 [18, 2] -> {"G1", "G2", "diff_map"}: uint8 [H, W, 3] each."""
        return self.queue.submit(image, keypoints_rc).result()

    def generate_answer(self, image: np.ndarray, keypoints_rc: np.ndarray, options=None) -> dict:
        """/api/generate's answer: G1, G2 and diff_map as PNG data URLs, the keypoints [[row,
        col]] x 18 the model was given and that pose as an OpenPose document.

        ``options`` (:class:`pg2_tf.apps.page_requests.GenerationOptions`, default: as given,
        G2's background): ``proportions="source"`` retargets the pose to the source person's
        bone lengths (:mod:`pg2_tf.core.retarget`), ``background="source"`` pastes G2's person
        onto the source image's background (:mod:`pg2_tf.apps.background`). A source that
        cannot be measured, or with no person to remove, raises RequestError (422)."""
        options = options or page_requests.GenerationOptions()
        if options.proportions == "source":
            try:
                keypoints_rc, _ = retarget.retarget_sequence(
                    options.source_keypoints, keypoints_rc, self.img_H, self.img_W, "the source"
                )
            except DataError:
                raise page_requests.RequestError(
                    "the source person's shoulders and hips must be visible to keep their "
                    "proportions: choose proportions 'as given' or another photo"
                ) from None
        kept = None
        if options.background == "source":
            kept = self.source_background(image, options.source_keypoints)
        outputs = self.generate(image, keypoints_rc)
        if kept is not None:
            alpha = backgrounds.paste_alpha(keypoints_rc, self.img_H, self.img_W)
            outputs = {**outputs, "G2": backgrounds.paste(kept, outputs["G2"], alpha)}
        answer = {name: page_requests.png_data_url(picture) for name, picture in outputs.items()}
        answer["keypoints"] = page_requests.keypoints_json(keypoints_rc)
        answer["openpose"] = pose_files.openpose_document(
            pose_files.keypoints_to_triples(keypoints_rc)
        )
        return answer

    def source_background(self, image: np.ndarray, source_rc: np.ndarray) -> np.ndarray:
        """The source image's background, its person removed and inpainted (uint8 [H, W, 3]);
        the last few are kept, so that dragging joints does not inpaint again. Without the
        BlazePose files PG2's pose mask alone finds the person. Raises RequestError (422) when
        there is no person to remove."""
        key = hashlib.sha256(image.tobytes() + np.asarray(source_rc, np.float32).tobytes())
        key = key.hexdigest()
        with self._backgrounds_lock:
            if key in self._backgrounds:
                return self._backgrounds[key]
        try:
            estimator = blazepose.cached_estimator(self.config.keypoint_model_dir)
        except model_files.ModelFilesMissing:
            estimator = None
        try:
            kept = backgrounds.source_background(image, source_rc, estimator, "the source")
        except DataError:
            raise page_requests.RequestError(
                "no person found in the source to remove from its background: choose the "
                "generated background"
            ) from None
        with self._backgrounds_lock:
            self._backgrounds[key] = kept.image
            while len(self._backgrounds) > KEPT_BACKGROUNDS:
                self._backgrounds.pop(next(iter(self._backgrounds)))
        return kept.image

    def warm_up_answers(self) -> None:
        """One request's whole path (PNG in, the model, PNGs and JSON out) before the first user:
        the engine warmed up on the queue's thread still left the first request slower than the
        rest (PIL's codecs, the model's third call; docs/performance.md)."""
        grey = np.full((self.img_H, self.img_W, 3), 128, np.uint8)
        url = page_requests.png_data_url(grey)
        image = page_requests.image_from_data_url(url, self.img_H, self.img_W)
        json.dumps(self.generate_answer(image, self.default_pose))

    # -- photos --

    def person_in_frame(
        self, photo: np.ndarray, name: str, person: int | None = None
    ) -> tuple[np.ndarray, np.ndarray] | dict:
        """The photo's person cropped to the model's frame: (uint8 [H, W, 3], [18, 2] keypoints).

        ``person``: the index of the person (as :func:`pg2_tf.people.finder.find_people` lists them,
        largest first); None takes the only one, and for a photo of several people returns
        :func:`pg2_tf.apps.page_requests.people_to_choose` instead (the page outlines them and
        asks for a click).
        Raises ModelFilesMissing (no BlazePose files), NoPersonFound naming the photo, and
        DataError (answered 422) for an index beyond the people found.
        """
        estimator = blazepose.cached_estimator(self.config.keypoint_model_dir)
        found = finder.people_or_crop(estimator, photo, name)
        if person is None and len(found) > 1:
            return page_requests.people_to_choose(photo, found)
        _, chosen = finder.choose_person(found, finder.PersonChoice("person", person), name)
        framed = photos.person_in_model_frame(photo, chosen, self.img_H, self.img_W)
        return framed.image, framed.keypoints_rc

    def source_from_photo(self, photo: np.ndarray, name: str, person: int | None = None) -> dict:
        """A source photo -> its model-size crop and pose (or, for several people and no
        ``person``, :func:`pg2_tf.apps.page_requests.people_to_choose`); without the estimator's
        files, the whole photo scaled and padded, the standing pose, and a notice saying how to
        get them."""
        notice = None
        try:
            framed = self.person_in_frame(photo, name, person)
            if isinstance(framed, dict):
                return framed
            image, keypoints_rc = framed
        except model_files.ModelFilesMissing as error:
            missing = np.full((pose.NUM_KEYPOINTS, 2), pose.MISSING)
            image, _, _ = photos.fit_to_model(photo, missing, self.img_H, self.img_W)
            keypoints_rc = self.default_pose
            notice = f"{error}; meanwhile the whole photo is used and the pose starts standing"
        return {
            "image": page_requests.png_data_url(image),
            "keypoints": page_requests.keypoints_json(keypoints_rc),
            "notice": notice,
        }
