"""Following people through frames: one chosen person, everyone with a track id, or known poses.

:class:`PersonFollower` follows the person a :class:`~pg2_tf.people.finder.PersonChoice` picks in
the first frame with people (pg2-animate); :func:`track_everyone` gives everyone a track id
(data_prep/from_video.py); :func:`follow_in_poses` does the same for poses read from files;
:func:`write_pose_folder` writes the followed person's pose per frame (``--save_poses``). Each
frame's people are found with :mod:`pg2_tf.people.finder` and associated over time by
:class:`pg2_tf.people.tracks.PersonTracker` (box overlap, joint distance, clothes colour:
:func:`appearance`).

Rule: builds on the finder, the engine and the tracker of ``pg2_tf.people`` and on
``pg2_tf.core``; a frame where the followed person is not found is a gap (None), never someone
else.
"""

import json
import os

import numpy as np

from pg2_tf.core import atomic, pose, pose_files
from pg2_tf.core.errors import DataError
from pg2_tf.people import blazepose, regions, tracks
from pg2_tf.people.finder import (
    PersonChoice,
    box_area,
    choose_person,
    find_people,
    joints_box,
    merge_detections,
    people_of_detections,
)

# The square searched around the followed person in each frame, in sizes of the box of their
# 33 landmarks (a photo cropped to a person with a 25 % margin holds them at about 1.5).
FOLLOW_WINDOW = 1.5


class PersonFollower:
    """Follows one person from frame to frame (pg2-animate, from_video's tracks).

    The first frame where anybody is found is searched whole (:func:`find_people`, tiles as
    needed) and ``choice`` picks the person there. In each later frame the landmark model reads
    the region the person's landmarks gave in the frame before (MediaPipe's video mode: no
    detector; :func:`pg2_tf.people.regions.person_in_region`), and the tracker below must agree
    that it is the followed person. When that fails, the detector runs on the
    whole frame and on a square around the followed person's predicted position
    (:data:`FOLLOW_WINDOW` x their region of interest: re-detection near the last position, which
    finds them however small they are), the landmark model runs per detection, and a
    :class:`pg2_tf.people.tracks.PersonTracker` associates everyone found with their tracks by box
    overlap, joint distance and the colours of their clothes (:func:`appearance`): the followed
    person is the one continuing the chosen track, never someone else (a frame where they are
    hidden or missed gives None, a gap).
    """

    def __init__(self, estimator, choice: PersonChoice | None = None, tiles: str = "auto"):
        self.estimator = estimator
        self.choice = choice or PersonChoice()
        self.tiles = tiles
        self.tracker = tracks.PersonTracker()
        self.followed = None  # the followed track's id, once chosen
        self.chosen_index = None  # the index the choice picked in the first frame
        self.last = None  # the followed person in the last frame, None when not seen there

    def __call__(self, frame_rgb, name: str = "frame"):
        """The followed person in the next frame: a PersonKeypoints, or None when not found.

        Raises DataError (from :func:`choose_person`) when the choice picks nobody in the first
        frame with people (an index beyond them, a point far from everyone)."""
        image = blazepose.check_image(frame_rgb, name)
        if self.followed is None:
            found = find_people(self.estimator, image, name, self.tiles)
            ids = self._track(image, found)
            if not found:
                return None
            self.chosen_index, self.last = choose_person(found, self.choice, name)
            self.followed = ids[self.chosen_index]
            return self.last
        if self.last is not None and self.last.roi is not None:
            # MediaPipe's video mode: the landmark model where the person was, no detector.
            person = regions.person_in_region(
                self.estimator, image, self.last.roi, check_body=False, reread=False
            )
            if person is not None:
                ids = self._track(image, [person])
                self.last = person if ids[0] == self.followed else None
                return self.last
        found = self._search(image)
        ids = self._track(image, found)
        self.last = found[ids.index(self.followed)] if self.followed in ids else None
        return self.last

    def _track(self, image, found) -> list:
        boxes = np.reshape([person.box_xyxy for person in found], (-1, 4))
        joints = np.reshape([person.keypoints_xyc for person in found], (-1, 18, 3))
        features = [appearance(image, person) for person in found]
        return self.tracker.update(boxes, joints, features)

    def _search(self, image) -> list:
        height, width = image.shape[:2]
        tracker = self.tracker
        if tracker.last_seen[self.followed] < tracker.frame:  # missed last frame: search all
            return find_people(self.estimator, image, tiles=self.tiles)
        detections = self.estimator.detect(image)
        x0, y0, x1, y1 = tracker.predicted_box(self.followed)
        side = FOLLOW_WINDOW * max(x1 - x0, y1 - y0)
        centre = ((x0 + x1) / 2, (y0 + y1) / 2)
        if side < max(height, width):
            detections += self.estimator.detect(
                image, (centre[0] - side / 2, centre[1] - side / 2, side)
            )
        found = people_of_detections(self.estimator, image, merge_detections(detections), [], True)
        return sorted(found, key=lambda person: -box_area(person.box_xyxy))


def track_everyone(estimator, frames, tiles: str = "auto"):
    """Everyone standing or walking in a sequence of frames, with a track id each (one id per
    person, for as long as :class:`pg2_tf.people.tracks.PersonTracker` can follow them).

    People who are not upright (:func:`pg2_tf.core.pose.is_upright`: PG2's people stand or
    walk) are left out: on OpenCV's vtest.avi a yellow jacket lying on the grass reads as a
    person lying down (presence 0.95, torso 80 degrees from upright).

    Args:
      estimator: a :class:`pg2_tf.people.blazepose.KeypointEstimator`.
      frames: iterable of ``(name, uint8 [H, W, 3])``.
      tiles: as :func:`find_people`.

    Yields:
      ``(name, frame, [(track id, PersonKeypoints), ...])`` per frame, largest person first.
    """
    tracker = tracks.PersonTracker()
    for name, frame in frames:
        image = blazepose.check_image(frame, name)
        found = find_people(estimator, image, name, tiles)
        found = [person for person in found if pose.is_upright(person.keypoints_rc())]
        ids = tracker.update(
            np.reshape([person.box_xyxy for person in found], (-1, 4)),
            np.reshape([person.keypoints_xyc for person in found], (-1, 18, 3)),
            [appearance(image, person) for person in found],
        )
        yield name, image, list(zip(ids, found, strict=True))


def follow_in_poses(poses_per_frame, choice: PersonChoice | None = None, names=None) -> list:
    """Follows one person through frames of known poses (e.g. OpenPose JSON files of several
    people): ``choice`` picks them in the first frame with people (``largest``: the largest box
    of joints; an index: the frame's own order; ``x,y``: the nearest), then a
    :class:`pg2_tf.people.tracks.PersonTracker` (box overlap and joint distance) follows them.

    Args:
      poses_per_frame: per frame, a list of float ``[18, 2]`` (row, col), -1 missing.
      choice: as for photos (default the largest).
      names: per frame, its name for messages.

    Returns:
      per frame, the followed person's ``[18, 2]`` or None where they are not found.
    """
    choice = choice or PersonChoice()
    tracker = tracks.PersonTracker()
    followed, out = None, []
    for number, poses in enumerate(poses_per_frame):
        found = [_person_of_pose(keypoints_rc) for keypoints_rc in poses]
        ids = tracker.update(
            np.reshape([person.box_xyxy for person in found], (-1, 4)),
            np.reshape([person.keypoints_xyc for person in found], (-1, 18, 3)),
        )
        if followed is None and found:
            if choice.largest:
                index = int(np.argmax([box_area(person.box_xyxy) for person in found]))
            else:
                name = names[number] if names is not None else f"frame {number}"
                index, _ = choose_person(found, choice, name)
            followed = ids[index]
        out.append(np.asarray(poses[ids.index(followed)]) if followed in ids else None)
    return out


def _person_of_pose(keypoints_rc):
    keypoints_rc = np.asarray(keypoints_rc, np.float64)
    present = ~np.any(keypoints_rc < 0, axis=1)
    xyc = np.zeros((18, 3), np.float32)
    xyc[present, 0], xyc[present, 1], xyc[present, 2] = (
        keypoints_rc[present, 1], keypoints_rc[present, 0], 1.0
    )  # fmt: skip
    person = blazepose.PersonKeypoints(keypoints_xyc=xyc, box_xyxy=(0.0, 0.0, 0.0, 0.0))
    box = joints_box(person) if present.any() else (0.0, 0.0, 0.0, 0.0)
    return blazepose.PersonKeypoints(keypoints_xyc=xyc, box_xyxy=box)


APPEARANCE_BINS = 4


def appearance(image_rgb, person) -> np.ndarray:
    """The colours of a person's clothes: what the tracker compares between frames.

    Args:
      image_rgb: uint8 [H, W, 3].
      person: a :class:`pg2_tf.people.blazepose.PersonKeypoints` in the image's pixels.

    Returns:
      float64 [64]: the colour histogram (4 levels per channel, summing to 1) of the middle of
      the person's joints box (its central half in width, between the top and bottom tenths):
      mostly clothes, little background. Uniform when that region is empty.
    """
    image = np.asarray(image_rgb)
    x0, y0, x1, y1 = joints_box(person)
    width, height = x1 - x0, y1 - y0
    cols = slice(max(0, int(x0 + width / 4)), max(0, int(np.ceil(x1 - width / 4))) + 1)
    rows = slice(max(0, int(y0 + height / 10)), max(0, int(np.ceil(y1 - height / 10))) + 1)
    pixels = image[rows, cols].reshape(-1, 3).astype(np.int64) * APPEARANCE_BINS // 256
    if pixels.size == 0:
        return np.full(APPEARANCE_BINS**3, 1.0 / APPEARANCE_BINS**3)
    index = (pixels[:, 0] * APPEARANCE_BINS + pixels[:, 1]) * APPEARANCE_BINS + pixels[:, 2]
    histogram = np.bincount(index, minlength=APPEARANCE_BINS**3).astype(np.float64)
    return histogram / histogram.sum()


def write_pose_folder(folder, people) -> None:
    """Writes one OpenPose JSON per frame, ``%06d.json`` from 0, each whole (a temporary file
    renamed into place).

    Args:
      folder: the folder (made when missing).
      people: per frame, the followed PersonKeypoints, or None (the frame's file lists nobody).

    Raises:
      DataError: the folder cannot be written (naming it as ``--save_poses``).
    """
    folder = os.fspath(folder)
    try:
        os.makedirs(folder, exist_ok=True)
        for index, person in enumerate(people):
            people = [] if person is None else [person.keypoints_xyc]
            document = pose_files.openpose_document(people)
            atomic.write_text(
                os.path.join(folder, f"{index:06d}.json"), json.dumps(document) + "\n"
            )
    except OSError as error:
        raise DataError(f"cannot write --save_poses={folder}: {error.strerror or error}") from None
