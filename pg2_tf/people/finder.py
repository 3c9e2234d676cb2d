"""Every person in a photo, and which one a command works on (numpy + the BlazePose estimator).

BlazePose's detector sees the photo letterboxed to 224x224: a person 100 px tall in a 768 px wide
frame is 30 px to it, too small to be found. :func:`find_people` therefore runs the detector on
the whole photo (MediaPipe's own input, so a single person is found exactly as MediaPipe finds
them) and, when the photo may hold people too small for that, on overlapping square tiles zoomed
to the detector's size (:func:`tile_windows`); the detections of all windows are merged by
non-maximum suppression, and the landmark model runs once per person, as in MediaPipe's
single-person graph.

Tile scheme (measured with ``python -m benchmarks.keypoints --sweep`` on the scenes of
tests/fixtures/people, see docs/performance.md): tiles of :data:`TILE_SIDE` = 256 photo pixels
overlapping by a third of their side (anyone up to a third of a tile wide lies whole inside
one). Of five people 80 px tall in a 768x576 frame the detector found 4 on 256 px tiles, 3 on
320 px tiles (also 12 tiles there), 1 on 384 and none on the whole frame; 192 px tiles (24)
found no more, 128 px tiles (63, 5x the time) the fifth. The tiles run only when needed: not
when the photo is no larger than two tiles (512 px) in either dimension (they would zoom less
than 2x, and on such photos they found cups rather than people), nor when a person found on
the whole photo is at least :data:`PORTRAIT_HEIGHT` of its height (a portrait: the photo is
about them); ``tiles="always"`` / ``"never"`` override this. A tile's person whose landmarks
the model is not sure of (:data:`CONFIDENT_PRESENCE`) must be detected again on a crop around
them (:func:`refine_detection`).

People are listed largest first (box area): ``people[0]`` is the main person, the index is the
one ``pg2-keypoints --draw`` writes beside each person, and :class:`PersonChoice` picks one by
``largest``, an index or the pixel ``x,y`` they are nearest to.
"""

import dataclasses

import numpy as np

from pg2_tf import keypoints as keypoints_module
from pg2_tf.core import atomic
from pg2_tf.core.errors import ConfigError, DataError

TILE_SIDE = 256
TILE_OVERLAP = 1 / 3
PORTRAIT_HEIGHT = 0.5
TILE_MODES = ("auto", "always", "never")
# Two detections are one person when their boxes overlap by more than this (IoU), or their hips
# are closer than SAME_HIPS x the body radius (hips -> full-body point) of the smaller one.
DETECTION_IOU = 0.3
SAME_HIPS = 0.35
# The window of refine_detection, in sides of the person's region of interest.
REFINE_ZOOM = 1.5
# A tile's person whose pose presence reaches this needs no second detection (see _landmarks_of);
# measured: people 0.98-1.0, a coffee cup's texture 0.85.
CONFIDENT_PRESENCE = 0.95
# Two landmark results are one person when their 33-landmark boxes overlap by more than this.
PERSON_IOU = 0.6


def tile_windows(height: int, width: int, side: int | None = None, overlap: float = TILE_OVERLAP):
    """Square windows ``(x0, y0, side)`` covering a ``height`` x ``width`` photo.

    Windows lie inside the photo, start at its edges and overlap by at least ``overlap`` of their
    side; a photo no larger than ``side`` in a dimension gets one window there (of the photo's
    smaller side). Returns [] when one window would be the whole photo."""
    side = min(side or TILE_SIDE, height, width)
    if side >= max(height, width):
        return []
    step = side * (1 - overlap)
    windows = []
    count_y = int(np.ceil(max(0, height - side) / step)) + 1
    count_x = int(np.ceil(max(0, width - side) / step)) + 1
    for y0 in np.linspace(0, height - side, count_y):
        for x0 in np.linspace(0, width - side, count_x):
            windows.append((float(x0), float(y0), int(side)))
    return windows


def _same_detection(a, b) -> bool:
    iou = keypoints_module._iou(a.box_xyxy, b.box_xyxy[None])[0]
    radius = min(_radius(a), _radius(b))
    hips = np.hypot(*(a.keypoints_xy[0] - b.keypoints_xy[0]))
    return bool(iou > DETECTION_IOU or hips < SAME_HIPS * radius)


def _radius(detection) -> float:
    return float(np.hypot(*(detection.keypoints_xy[1] - detection.keypoints_xy[0])))


def merge_detections(detections) -> list:
    """Non-maximum suppression across windows: the best-scoring detection of each person."""
    kept = []
    for detection in sorted(detections, key=lambda d: -d.score):
        if not any(_same_detection(detection, other) for other in kept):
            kept.append(detection)
    return kept


def refine_detection(estimator, image, detection):
    """The detector run again on a square around one person (:data:`REFINE_ZOOM` x their region
    of interest), as MediaPipe would see a photo cropped to them: a person found small on a tile
    gets keypoints (hence a region of interest) measured at a larger scale. Returns the new
    detection of the same person, or the given one when the detector does not find them again."""
    centre, side, _ = detection.roi()
    side *= REFINE_ZOOM
    window = (centre[0] - side / 2, centre[1] - side / 2, side)
    again = [d for d in estimator.detect(image, window) if _same_detection(d, detection)]
    return again[0] if again else detection


def box_area(box_xyxy) -> float:
    x0, y0, x1, y1 = box_xyxy
    return max(0.0, x1 - x0) * max(0.0, y1 - y0)


def find_people(estimator, image_rgb, name="photo", tiles: str = "auto") -> list:
    """Every person BlazePose finds in a photo, largest first.

    Args:
      estimator: a :class:`pg2_tf.keypoints.KeypointEstimator`.
      image_rgb: uint8 [H, W, 3].
      name: names the photo in messages.
      tiles: ``auto`` (tiles when needed, see the module doc), ``always`` or ``never``.

    Returns:
      list of :class:`pg2_tf.keypoints.PersonKeypoints` (box area, largest first); [] when
      nobody is found. The whole-photo pass alone, one person, gives exactly what
      ``estimator(image)`` gives.
    """
    if tiles not in TILE_MODES:
        raise ConfigError(f"tiles={tiles!r} must be one of {', '.join(TILE_MODES)}")
    image = keypoints_module._check_image(image_rgb, name)
    height, width = image.shape[:2]
    whole = estimator.detect(image)
    people = _landmarks_of(estimator, image, merge_detections(whole), [])
    if _needs_tiles(tiles, people, height, width):
        detections = list(whole)
        for window in tile_windows(height, width):
            detections += estimator.detect(image, window)
        done = merge_detections(whole)
        fresh = [d for d in merge_detections(detections) if not _covered(d, done, people)]
        people = _landmarks_of(estimator, image, fresh, people, refine=True)
    return sorted(people, key=lambda person: -box_area(person.box_xyxy))


def _needs_tiles(tiles: str, people, height: int, width: int) -> bool:
    if tiles != "auto":
        return tiles == "always"
    if max(height, width) <= 2 * TILE_SIDE:
        return False
    return not any(
        person.box_xyxy[3] - person.box_xyxy[1] >= PORTRAIT_HEIGHT * height for person in people
    )


def _covered(detection, done, people) -> bool:
    """Whether a tile's detection is a person already handled on the whole photo."""
    if any(_same_detection(detection, other) for other in done):
        return True
    hips = detection.keypoints_xy[0]
    for person in people:
        x0, y0, x1, y1 = person.box_xyxy
        inside = x0 <= hips[0] <= x1 and y0 <= hips[1] <= y1
        if inside and _radius(detection) * 2 > 0.5 * (y1 - y0):
            return True
    return False


def _landmarks_of(estimator, image, detections, people, refine: bool = False) -> list:
    """``people`` plus the landmark model's person of each detection, duplicates dropped.

    With ``refine`` (detections from tiles), a detection the landmark model is not sure of
    (presence below :data:`CONFIDENT_PRESENCE`) must be found again by
    :func:`refine_detection` on a crop around it, and one the landmark model rejects is tried
    once more with that detection's keypoints."""
    height, width = image.shape[:2]
    people = list(people)
    for detection in detections:
        found = estimator.landmarks_in_roi(image, detection.roi())
        if refine and (found is None or found[1] < CONFIDENT_PRESENCE):
            # Unless the landmark model is sure, a person seen on a tile must be seen again on
            # a crop around them: the detector answers some textures (a cup) at one zoom only.
            again = refine_detection(estimator, image, detection)
            if again is detection:
                continue
            if found is None:
                found = estimator.landmarks_in_roi(image, again.roi())
        if found is None:
            continue
        person = keypoints_module.person_from_landmarks(*found, height, width)
        if not (person.keypoints_xyc[:, 2] > 0).any():
            continue
        same = [
            index
            for index, other in enumerate(people)
            if keypoints_module._iou(np.array(person.box_xyxy), np.array([other.box_xyxy]))[0]
            > PERSON_IOU
        ]
        if not same:
            people.append(person)
        elif all(people[index].score < person.score for index in same):
            people = [other for index, other in enumerate(people) if index not in same]
            people.append(person)
    return people


def openpose_json(people) -> dict:
    """OpenPose's JSON of several people (:func:`pg2_tf.core.pose_files.openpose_document`), in
    the order given (largest first from :func:`find_people`)."""
    from pg2_tf.core import pose_files

    return pose_files.openpose_document([person.keypoints_xyc for person in people])


def write_pose_folder(folder, people) -> None:
    """Writes one OpenPose JSON per frame, ``%06d.json`` from 0: ``people`` holds the frame's
    person (a PersonKeypoints), or is empty for None. Each file is written whole (a temporary
    file renamed into place). Raises DataError naming the folder when it cannot be written."""
    import json
    import os

    folder = os.fspath(folder)
    try:
        os.makedirs(folder, exist_ok=True)
        for index, person in enumerate(people):
            document = openpose_json([] if person is None else [person])
            atomic.write_text(
                os.path.join(folder, f"{index:06d}.json"), json.dumps(document) + "\n"
            )
    except OSError as error:
        raise DataError(f"cannot write --save_poses={folder}: {error.strerror or error}") from None


# ---- choosing one person --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PersonChoice:
    """Which person of a photo: the largest, the N-th as listed largest first, or the one
    nearest a pixel ``(x, y)``."""

    flag: str = "--person"  # the flag it came from, for messages
    index: int | None = None
    point_xy: tuple | None = None

    @property
    def largest(self) -> bool:
        return self.index in (None, 0) and self.point_xy is None


def parse_person(text, flag: str = "--person") -> PersonChoice:
    """``largest`` (or empty/None), an index ``N`` >= 0, or ``x,y`` (pixels) -> PersonChoice.

    Raises ConfigError naming ``flag`` for anything else."""
    text = "largest" if text is None else str(text).strip()
    if text in ("", "largest"):
        return PersonChoice(flag)
    if "," in text:
        parts = text.split(",")
        try:
            x, y = (float(part) for part in parts)
        except ValueError:
            x = y = float("nan")
        if len(parts) == 2 and np.isfinite(x) and np.isfinite(y):
            return PersonChoice(flag, point_xy=(x, y))
    elif text.isdigit():
        return PersonChoice(flag, index=int(text))
    raise ConfigError(
        f"{flag}={text} must be 'largest', a person's index (0, 1, ... as pg2-keypoints lists "
        "them, largest first) or a pixel 'x,y' (the person nearest it)"
    )


def joints_box(person) -> tuple:
    """(x0, y0, x1, y1) of the person's present joints (their landmarks' box when none is)."""
    present = person.keypoints_xyc[:, 2] > 0
    if not present.any():
        return tuple(float(v) for v in person.box_xyxy)
    low = person.keypoints_xyc[present, :2].min(axis=0)
    high = person.keypoints_xyc[present, :2].max(axis=0)
    return (float(low[0]), float(low[1]), float(high[0]), float(high[1]))


APPEARANCE_BINS = 4


def appearance(image_rgb, person) -> np.ndarray:
    """float64 [64]: the colour histogram (4 levels per channel, summing to 1) of the middle of
    the person's joints box (its central half in width, between the top and bottom tenths):
    mostly clothes, little background. What the tracker compares between frames."""
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


def distance_to_person(person, point_xy) -> float:
    """Pixels from ``point_xy`` to the person: 0 inside the box of their present joints (or of
    their landmarks when no joint is present), else the distance to that box."""
    x0, y0, x1, y1 = joints_box(person)
    dx = max(x0 - point_xy[0], 0.0, point_xy[0] - x1)
    dy = max(y0 - point_xy[1], 0.0, point_xy[1] - y1)
    return float(np.hypot(dx, dy))


# A point farther than this (in person heights) from everyone picks nobody.
MAX_POINT_DISTANCE = 0.5


def choose_person(people, choice: PersonChoice, name: str = "photo"):
    """The chosen person of ``people`` (largest first, as :func:`find_people` lists them).

    Returns ``(index, person)``. Raises :class:`pg2_tf.keypoints.NoPersonFound` when ``people``
    is empty, and DataError (one line) for an index that does not exist or a point farther than
    :data:`MAX_POINT_DISTANCE` of a person's height from every person."""
    if not people:
        raise keypoints_module.NoPersonFound(f"no person found in {name}")
    count = f"{len(people)} {'person' if len(people) == 1 else 'people'} found in {name}"
    if choice.point_xy is not None:
        distances = [distance_to_person(person, choice.point_xy) for person in people]
        index = int(np.argmin(distances))
        height = people[index].box_xyxy[3] - people[index].box_xyxy[1]
        if distances[index] > MAX_POINT_DISTANCE * height:
            x, y = choice.point_xy
            raise DataError(
                f"{choice.flag}={x:g},{y:g}: no person near that pixel ({count}; the nearest, "
                f"{index}, is {distances[index]:.0f} px away); run pg2-keypoints --draw to see them"
            )
        return index, people[index]
    index = choice.index or 0
    if index >= len(people):
        raise DataError(
            f"{choice.flag}={index}: only {count} (indices 0 to {len(people) - 1}, largest first)"
        )
    return index, people[index]


class PersonPicker:
    """A pose estimator that answers with the chosen person: called like a
    :class:`pg2_tf.keypoints.KeypointEstimator` (``picker(image, name)`` -> PersonKeypoints), it
    finds every person (:func:`find_people`) and returns the one ``choice`` picks, raising as
    :func:`choose_person` does. What the commands pass where one person of a photo is needed."""

    def __init__(self, estimator, choice: PersonChoice | None = None, tiles: str = "auto"):
        self.estimator = estimator
        self.choice = choice or PersonChoice()
        self.tiles = tiles

    def __call__(self, image_rgb, name: str = "photo"):
        return find_person(self.estimator, image_rgb, self.choice, name, self.tiles)[1]


def find_person(estimator, image_rgb, choice: PersonChoice, name: str = "photo", tiles="auto"):
    """:func:`find_people` then :func:`choose_person`: ``(index, PersonKeypoints)``.

    A choice of ``largest`` or index 0 in a photo with one person costs what one person does
    (tiles only when needed); an index or point needs every person, so tiles run as needed."""
    people = find_people(estimator, image_rgb, name, tiles)
    return choose_person(people, choice, name)


# ---- following one person through a video -------------------------------------------------------

# The square searched around the followed person in each frame, in sizes of the box of their
# 33 landmarks (a photo cropped to a person with a 25 % margin holds them at about 1.5).
FOLLOW_WINDOW = 1.5


class PersonFollower:
    """Follows one person from frame to frame (pg2-animate, from_video's tracks).

    The first frame where anybody is found is searched whole (:func:`find_people`, tiles as
    needed) and ``choice`` picks the person there. In each later frame the detector runs on the
    whole frame and on a square around the followed person's predicted position
    (:data:`FOLLOW_WINDOW` x their region of interest: re-detection near the last position, which
    finds them however small they are), the landmark model runs per detection, and a
    :class:`pg2_tf.people.tracks.PersonTracker` associates everyone found with their tracks by box
    overlap, joint distance and the colours of their clothes (:func:`appearance`): the followed person is the one continuing the chosen track, never
    someone else (a frame where they are hidden or missed gives None, a gap).
    """

    def __init__(self, estimator, choice: PersonChoice | None = None, tiles: str = "auto"):
        from pg2_tf.people import tracks

        self.estimator = estimator
        self.choice = choice or PersonChoice()
        self.tiles = tiles
        self.tracker = tracks.PersonTracker()
        self.followed = None  # the followed track's id, once chosen
        self.chosen_index = None  # the index the choice picked in the first frame

    def __call__(self, frame_rgb, name: str = "frame"):
        """The followed person in the next frame: a PersonKeypoints, or None when not found.

        Raises DataError (from :func:`choose_person`) when the choice picks nobody in the first
        frame with people (an index beyond them, a point far from everyone)."""
        image = keypoints_module._check_image(frame_rgb, name)
        if self.followed is None:
            found = find_people(self.estimator, image, name, self.tiles)
            ids = self._track(image, found)
            if not found:
                return None
            self.chosen_index, _ = choose_person(found, self.choice, name)
            self.followed = ids[self.chosen_index]
            return found[self.chosen_index]
        found = self._search(image)
        ids = self._track(image, found)
        return found[ids.index(self.followed)] if self.followed in ids else None

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
        found = _landmarks_of(self.estimator, image, merge_detections(detections), [], True)
        return sorted(found, key=lambda person: -box_area(person.box_xyxy))


def track_everyone(estimator, frames, tiles: str = "auto"):
    """Everyone in a sequence of frames, with a track id each (one id per person, for as long as
    :class:`pg2_tf.people.tracks.PersonTracker` can follow them).

    Args:
      estimator: a :class:`pg2_tf.keypoints.KeypointEstimator`.
      frames: iterable of ``(name, uint8 [H, W, 3])``.
      tiles: as :func:`find_people`.

    Yields:
      ``(name, frame, [(track id, PersonKeypoints), ...])`` per frame, largest person first.
    """
    from pg2_tf.people import tracks

    tracker = tracks.PersonTracker()
    for name, frame in frames:
        image = keypoints_module._check_image(frame, name)
        found = find_people(estimator, image, name, tiles)
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
    from pg2_tf.people import tracks

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
    person = keypoints_module.PersonKeypoints(keypoints_xyc=xyc, box_xyxy=(0.0, 0.0, 0.0, 0.0))
    box = joints_box(person) if present.any() else (0.0, 0.0, 0.0, 0.0)
    return keypoints_module.PersonKeypoints(keypoints_xyc=xyc, box_xyxy=box)
