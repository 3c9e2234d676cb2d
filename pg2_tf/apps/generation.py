"""Generating a person image in a new pose with an exported SavedModel: what pg2-generate does.

:func:`generate` reads the person's image and the TARGET pose, in the pixel coordinates of the
image (an OpenPose JSON file or a Pose-Transfer annotation CSV:
:func:`pg2_tf.people.photos.load_keypoints`; the formats are listed in :mod:`pg2_tf.generate`).
An image of another size than the model's is scaled, keeping its aspect ratio, until it fits the
model's size exactly in one dimension, then centred and padded to the model's size by repeating its
edge pixels (a plain border, close to the backgrounds the model was trained on); the keypoints get
the same scale and offset. The output is the model's size, or with ``restore_size`` the padding is
cropped away and the result resized back to the input image's size. Joints outside the image are
left out with a warning naming them; a pose with no joint inside it is refused.

With ``pose_from`` (another person's photo) BlazePose (:mod:`pg2_tf.people.blazepose`) finds the
person in both photos, each photo is cropped to its person's box at the model's aspect ratio
(:func:`pg2_tf.people.photos.person_crop`), and the target keypoints are carried into the model's
frame; the output is the model's size. A photo without a person is refused in one line naming it.

``proportions`` (:mod:`pg2_tf.core.retarget`): ``source`` keeps the source person's bone lengths
with the target's joint angles, ``target`` uses the keypoints as given; the default is ``source``
with ``pose_from`` (another person's pose) and ``target`` with a keypoint file. ``background``
(:mod:`pg2_tf.apps.background`): ``source`` pastes G2's person onto the source crop's own
background, its person removed and inpainted; ``generated`` keeps G2's. Both need the source
person's keypoints: with a keypoint file BlazePose then also runs on the image.

Rule: plain values in, image files out; the flags are :mod:`pg2_tf.generate`'s.
"""

import json
import os
import sys

import numpy as np
from PIL import Image

from pg2_tf.apps import background as backgrounds
from pg2_tf.core import atomic, pose_files, retarget
from pg2_tf.core.errors import ConfigError, DataError
from pg2_tf.people import photos
from pg2_tf.serving import contract


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def generate(
    saved_model,
    image_path,
    keypoints_path,
    out_path,
    *,
    pose_from=None,
    keypoints_row: str | None = None,
    save_all: bool = False,
    restore_size: bool = False,
    person: str = "largest",
    pose_person: str = "largest",
    proportions: str | None = None,
    background: str = "generated",
    estimator=None,
    precision="float32",
    log=print,
    warn=_warn,
) -> dict:
    """Generates the person of ``image_path`` in the pose of ``keypoints_path``; writes images.

    Args:
        saved_model: a folder written by :func:`pg2_tf.serving.export_lib.export_saved_model`.
        image_path: the person (any size, any format Pillow reads).
        keypoints_path: the target pose file (OpenPose JSON or annotation CSV, see
            :func:`pg2_tf.people.photos.load_keypoints`), in the image's pixel coordinates;
            joints outside the image are left out with a warning. None when ``pose_from`` gives
            the pose.
        out_path: where G2 is written (.png, or another image extension). With ``save_all``, G1
            and diff_map go beside it as ``<stem>_G1.png`` and ``<stem>_diff_map.png``.
        pose_from: instead of keypoints, a photo of someone in the target pose. Then both photos
            are cropped to their person (:func:`pg2_tf.people.photos.person_in_model_frame`, the
            pose estimator of :mod:`pg2_tf.people.blazepose`) and the outputs are the model's
            size.
        keypoints_row: the row name of a CSV ``keypoints_path`` (None: its only row).
        save_all: also write G1 and diff_map, and the two poses in the model's frame as
            OpenPose JSON: ``<stem>_source_pose.json`` (the source person's keypoints; with a
            keypoint file only when BlazePose finds the person of ``image_path``) and
            ``<stem>_pose.json`` (the pose the model was given); with ``background="source"``
            also ``<stem>_background.png`` (the inpainted background).
        restore_size: crop the padding and resize outputs back to the input image's size
            (``keypoints_path`` only).
        person: which person of ``image_path`` (``pose_from`` only): ``largest``, an index as
            pg2-keypoints lists them, or ``x,y`` (the person nearest that pixel); see
            :func:`pg2_tf.people.finder.parse_person`.
        pose_person: which person of ``pose_from`` (the same kinds of values).
        proportions: ``source`` (the source's bone lengths, the target's angles:
            :func:`pg2_tf.core.retarget.retarget_sequence`), ``target`` (the keypoints as
            given), or None: ``source`` with ``pose_from``, ``target`` with ``keypoints_path``.
        background: ``generated`` (G2's own) or ``source`` (G2's person pasted onto the source
            crop's background: :mod:`pg2_tf.apps.background`; G1 and diff_map are unchanged).
        estimator: the pose estimator for ``pose_from`` (default: a new
            :class:`pg2_tf.people.blazepose.KeypointEstimator`).
        precision: ``--precision`` or a :class:`pg2_tf.serving.engines.Precision` (see
            :func:`pg2_tf.serving.engines.choose_precision`; float32: the export's exact path).
        log: receives one line saying how the image was fitted to the model.
        warn: receives one line naming joints left out.

    Returns:
        ``{output name: path written}``: ``G2`` always, ``G1``, ``diff_map``, ``pose`` and
        ``source_pose`` (and ``background``) with ``save_all``; each image RGB of the model's
        size (``img_H x img_W``), or of the input image's with ``restore_size``.

    Raises:
        DataError / ConfigError / CheckpointError with a one-line message on bad input
        (NoPersonFound, a DataError, for a photo without a person; a source without both
        shoulders and hips with ``proportions="source"``; nothing to remove with
        ``background="source"``).
    """
    from pg2_tf.serving import engines

    contract.check_saved_model(saved_model)
    if isinstance(precision, str):
        engines.check_precision(precision)  # decided once the model is loaded
    out_path = os.fspath(out_path)
    stem, extension = os.path.splitext(out_path)
    if extension.lower() not in Image.registered_extensions():
        raise ConfigError(f"--out={out_path} needs an image file extension such as .png")
    if (keypoints_path is None) == (pose_from is None):
        raise ConfigError("give the target pose with one of --keypoints and --pose_from")
    if pose_from is not None and (restore_size or keypoints_row):
        raise ConfigError(
            "--restore_size and --keypoints_row apply to --keypoints, not --pose_from"
        )
    if proportions is None:
        proportions = "target" if pose_from is None else "source"
    if proportions not in retarget.PROPORTIONS_CHOICES:
        raise ConfigError(f"--proportions={proportions} must be source or target")
    backgrounds.check_background(background)
    from pg2_tf.people import finder

    source_choice = finder.parse_person(person, "--person")
    target_choice = finder.parse_person(pose_person, "--pose_person")
    if pose_from is None and not (source_choice.largest and target_choice.largest):
        raise ConfigError("--person and --pose_person choose people found in photos: use them "
                          "with --pose_from")  # fmt: skip
    placement = None
    if pose_from is None:
        image = photos.load_image(image_path)
        keypoints_rc = pose_files.keep_joints_inside(
            photos.load_keypoints(keypoints_path, keypoints_row),
            *image.shape[:2],
            os.fspath(keypoints_path),
            warn,
        )
        loaded, (img_H, img_W) = contract.load_export(saved_model)
        model_image, model_keypoints, placement = photos.fit_to_model(
            image, keypoints_rc, img_H, img_W
        )
        log(placement.describe())
        source_rc, needed = None, proportions == "source" or background == "source"
        if needed or save_all:
            try:
                estimator = _estimator(estimator)
                found = estimator(image, name=os.fspath(image_path))
            except DataError as error:  # then only --save_all's source pose is left out
                if needed:
                    raise
                found = None
                warn(f"{error}: no source pose written")
            if found is not None:
                source_rc = photos.fit_to_model(image, found.keypoints_rc(), img_H, img_W)[1]
    else:
        estimator = _estimator(estimator)
        # Both people are found before the model is loaded: a photo without one fails fast.
        source_photo, source_person = photos.find_person(
            image_path, finder.PersonPicker(estimator, source_choice)
        )
        target_photo, target_person = photos.find_person(
            pose_from, finder.PersonPicker(estimator, target_choice)
        )
        if proportions == "source":  # a source that cannot be measured fails before the model
            retarget.source_bone_lengths(source_person.keypoints_rc())
        loaded, (img_H, img_W) = contract.load_export(saved_model)
        source = photos.person_in_model_frame(source_photo, source_person, img_H, img_W)
        model_image, source_rc = source.image, source.keypoints_rc
        target = photos.person_in_model_frame(target_photo, target_person, img_H, img_W)
        source_name = f"--pose_from={os.fspath(pose_from)}"
        model_keypoints = pose_files.keep_joints_inside(
            target.keypoints_rc, img_H, img_W, source_name, warn
        )
        model_keypoints = model_keypoints.astype(np.float32)
        log(
            f"person of {os.fspath(image_path)} and pose of {os.fspath(pose_from)} each cropped "
            f"to their box at {img_H}x{img_W}"
        )
    if proportions == "source":
        model_keypoints, scale = retarget.retarget_sequence(
            source_rc, model_keypoints, img_H, img_W
        )
        log(f"pose retargeted to the source person's proportions (scale {scale:.3g})")
    kept = None
    if background == "source":  # before the model runs: a bad mask fails fast
        kept = backgrounds.source_background(model_image, source_rc, estimator)
    # One image: no warm-up, its first call is the only one.
    engine = engines.Engine(saved_model, loaded, precision, warm_up=False)
    outputs = {name: value[0] for name, value in engine.generate(
        model_image[None], model_keypoints[None]).items()}  # fmt: skip
    if kept is not None:
        alpha = backgrounds.paste_alpha(model_keypoints, img_H, img_W)
        outputs["G2"] = backgrounds.paste(kept.image, outputs["G2"], alpha)
        outputs["background"] = kept.image
        log("G2's person pasted onto the source's background, its person removed and inpainted")

    paths = {"G2": out_path}
    if save_all:
        names = ("G1", "diff_map") + (("background",) if kept is not None else ())
        paths.update({name: f"{stem}_{name}{extension}" for name in names})
    parent = os.path.dirname(os.path.abspath(out_path))
    os.makedirs(parent, exist_ok=True)
    for name, path in paths.items():
        picture = outputs[name]
        if restore_size:
            picture = photos.restore_input_size(picture, placement)
        Image.fromarray(picture).save(path)
    if save_all:
        poses = {"source_pose": source_rc, "pose": model_keypoints}
        for name, keypoints_rc in poses.items():
            if keypoints_rc is not None:
                paths[name] = f"{stem}_{name}.json"
                _write_pose(paths[name], keypoints_rc)
    return paths


def _estimator(estimator):
    if estimator is None:
        from pg2_tf.people import blazepose

        estimator = blazepose.KeypointEstimator()
    return estimator


def _write_pose(path: str, keypoints_rc) -> None:
    """One pose as OpenPose JSON (COCO-18), written whole."""
    document = pose_files.openpose_document(pose_files.keypoints_to_triples(keypoints_rc))
    atomic.write_text(path, json.dumps(document) + "\n")
