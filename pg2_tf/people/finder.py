"""Every person in a photo, and which one a command works on (numpy + the BlazePose estimator).

BlazePose's detector sees the photo letterboxed to 224x224: a person 100 px tall in a 768 px wide
frame is 30 px to it, too small to be found. :func:`find_people` therefore runs the detector on
the whole photo (MediaPipe's own input, so a single person is found exactly as MediaPipe finds
them) and, when the photo may hold people too small for that, on overlapping square tiles zoomed
to the detector's size (:func:`tile_windows`); the detections of all windows are merged by
non-maximum suppression, and the landmark model runs once per person, as in MediaPipe's
single-person graph.

Tiles: :data:`TILE_SIDE` = 256 photo pixels overlapping by a third of their side (anyone up to a
third of a tile wide lies whole inside one), chosen by the sweep in docs/performance.md
("Keypoints: every person in a photo"). They run only when needed: not when the photo is no
larger than two tiles (512 px) in either dimension, nor when a person found on the whole photo is
at least :data:`PORTRAIT_HEIGHT` of its height (a portrait); ``tiles="always"`` / ``"never"``
override this. A tile's person whose landmarks the model is not sure of
(:data:`CONFIDENT_PRESENCE`) must be detected again on a crop around them
(:func:`refine_detection`).

People are listed largest first (box area): ``people[0]`` is the main person, the index is the
one ``pg2-keypoints --draw`` writes beside each person, and :class:`PersonChoice` picks one by
``largest``, an index or the pixel ``x,y`` they are nearest to. Following one person through
frames is :mod:`pg2_tf.people.following`.

Rule: imports the engine (:mod:`pg2_tf.people.blazepose`) and ``pg2_tf.core``; never the
command line.
"""

import dataclasses

import numpy as np

from pg2_tf.core.errors import ConfigError, DataError
from pg2_tf.people import blazepose, bodies, geometry, regions

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
# A tile's person whose pose presence reaches this needs no second detection (see
# people_of_detections); measured: people 0.98-1.0, a coffee cup's texture 0.85.
CONFIDENT_PRESENCE = 0.95
# Two landmark results are one person when their 33-landmark boxes overlap by more than this.
PERSON_IOU = 0.6


def tile_windows(height: int, width: int, side: int | None = None, overlap: float = TILE_OVERLAP):
    """Square windows covering a photo: the tiles of :func:`find_people`.

    Windows lie inside the photo, start at its edges and overlap by at least ``overlap`` of their
    side; a photo no larger than ``side`` in a dimension gets one window there (of the photo's
    smaller side).

    Args:
      height, width: the photo's size in pixels.
      side: the windows' side in pixels (default :data:`TILE_SIDE`).
      overlap: the least overlap of neighbouring windows, a fraction of their side in [0, 1).

    Returns:
      list of ``(x0, y0, side)`` (float, float, int) in photo pixels, row by row; [] when one
      window would be the whole photo.
    """
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
    iou = geometry.box_iou(a.box_xyxy, b.box_xyxy[None])[0]
    radius = min(_radius(a), _radius(b))
    hips = np.hypot(*(a.keypoints_xy[0] - b.keypoints_xy[0]))
    return bool(iou > DETECTION_IOU or hips < SAME_HIPS * radius)


def _radius(detection) -> float:
    return float(np.hypot(*(detection.keypoints_xy[1] - detection.keypoints_xy[0])))


def merge_detections(detections) -> list:
    """Non-maximum suppression across windows: the best-scoring detection of each person.

    Args:
      detections: :class:`pg2_tf.people.decoding.Detection` in photo pixels, from any windows.

    Returns:
      list of Detection, highest score first, none two of the same person (boxes overlapping by
      more than :data:`DETECTION_IOU`, or hips closer than :data:`SAME_HIPS` body radii).
    """
    kept = []
    for detection in sorted(detections, key=lambda d: -d.score):
        if not any(_same_detection(detection, other) for other in kept):
            kept.append(detection)
    return kept


def refine_detection(estimator, image, detection):
    """The detector run again on a square around one person (:data:`REFINE_ZOOM` x their region
    of interest), as MediaPipe would see a photo cropped to them: a person found small on a tile
    gets keypoints (hence a region of interest) measured at a larger scale.

    Args:
      estimator: a :class:`pg2_tf.people.blazepose.KeypointEstimator`.
      image: uint8 [H, W, 3].
      detection: the person's :class:`pg2_tf.people.decoding.Detection` in photo pixels.

    Returns:
      The new Detection of the same person, or ``detection`` itself when the detector does not
      find them again.
    """
    centre, side, _ = detection.roi()
    side *= REFINE_ZOOM
    window = (centre[0] - side / 2, centre[1] - side / 2, side)
    again = [d for d in estimator.detect(image, window) if _same_detection(d, detection)]
    return again[0] if again else detection


def box_area(box_xyxy) -> float:
    """The area of a box, 0 when it is empty.

    Args:
      box_xyxy: (x0, y0, x1, y1) in pixels.

    Returns:
      The area in square pixels, >= 0.
    """
    x0, y0, x1, y1 = box_xyxy
    return max(0.0, x1 - x0) * max(0.0, y1 - y0)


def find_people(estimator, image_rgb, name="photo", tiles: str = "auto") -> list:
    """Every person BlazePose finds in a photo, largest first.

    Args:
      estimator: a :class:`pg2_tf.people.blazepose.KeypointEstimator`.
      image_rgb: uint8 [H, W, 3].
      name: names the photo in messages.
      tiles: ``auto`` (tiles when needed, see the module doc), ``always`` or ``never``.

    Returns:
      list of :class:`pg2_tf.people.blazepose.PersonKeypoints` (box area, largest first); [] when
      nobody is found. The whole-photo pass alone, one person, gives exactly what
      ``estimator(image)`` gives.
    """
    if tiles not in TILE_MODES:
        raise ConfigError(f"tiles={tiles!r} must be one of {', '.join(TILE_MODES)}")
    image = blazepose.check_image(image_rgb, name)
    height, width = image.shape[:2]
    whole = estimator.detect(image)
    people = people_of_detections(estimator, image, merge_detections(whole), [])
    scene = _needs_tiles(tiles, people, height, width)
    if scene:
        detections = list(whole)
        for window in tile_windows(height, width):
            detections += estimator.detect(image, window)
        done = merge_detections(whole)
        fresh = [d for d in merge_detections(detections) if not _covered(d, done, people)]
        people = people_of_detections(estimator, image, fresh, people, refine=True)
    # Bodies without a face: people of any size in a scene, the large ones in a portrait.
    if scene:
        min_height, min_score = bodies.MIN_PERSON_HEIGHT, bodies.MIN_BOX_SCORE
    else:
        min_height, min_score = PORTRAIT_HEIGHT * height, bodies.PORTRAIT_BOX_SCORE
    for person in regions.people_of_body_boxes(estimator, image, people, min_height, min_score):
        people = _with_person(people, person)
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


def people_of_detections(estimator, image, detections, people, refine: bool = False) -> list:
    """``people`` plus the landmark model's person of each detection, duplicates dropped.

    With ``refine`` (detections from tiles), a detection the landmark model is not sure of
    (presence below :data:`CONFIDENT_PRESENCE`) must be found again by
    :func:`refine_detection` on a crop around it, and one the landmark model rejects is tried
    once more with that detection's keypoints.

    Args:
      estimator: a :class:`pg2_tf.people.blazepose.KeypointEstimator`.
      image: uint8 [H, W, 3].
      detections: :class:`pg2_tf.people.decoding.Detection` in photo pixels.
      people: PersonKeypoints already found (not changed).
      refine: whether the detections come from tiles (see above).

    Returns:
      list of PersonKeypoints: ``people`` and the new ones; of two with 33-landmark boxes
      overlapping by more than :data:`PERSON_IOU`, the one of higher presence is kept; a person
      without any present joint is dropped.
    """
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
        person = blazepose.person_from_landmarks(found, height, width)
        if not (person.keypoints_xyc[:, 2] > 0).any():
            continue
        people = _with_person(people, person)
    return people


def _with_person(people, person) -> list:
    """``people`` with ``person`` added; of two with 33-landmark boxes overlapping by more than
    :data:`PERSON_IOU`, the one of higher presence stays."""
    same = [
        index
        for index, other in enumerate(people)
        if geometry.box_iou(np.array(person.box_xyxy), np.array([other.box_xyxy]))[0] > PERSON_IOU
    ]
    if not same:
        return [*people, person]
    if all(people[index].score < person.score for index in same):
        return [other for index, other in enumerate(people) if index not in same] + [person]
    return list(people)


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
    """Reads a ``--person`` flag's value.

    Args:
      text: ``largest`` (or empty/None), an index ``N`` >= 0, or ``x,y`` (pixels).
      flag: the flag's name, for messages.

    Returns:
      The PersonChoice.

    Raises:
      ConfigError: anything else, naming ``flag``.
    """
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
    """The box of a person's present joints.

    Args:
      person: a :class:`pg2_tf.people.blazepose.PersonKeypoints`.

    Returns:
      (x0, y0, x1, y1) floats in photo pixels; the person's landmarks box when no joint is present.
    """
    present = person.keypoints_xyc[:, 2] > 0
    if not present.any():
        return tuple(float(v) for v in person.box_xyxy)
    low = person.keypoints_xyc[present, :2].min(axis=0)
    high = person.keypoints_xyc[present, :2].max(axis=0)
    return (float(low[0]), float(low[1]), float(high[0]), float(high[1]))


def distance_to_person(person, point_xy) -> float:
    """How far a pixel is from a person.

    Args:
      person: a :class:`pg2_tf.people.blazepose.PersonKeypoints`.
      point_xy: (x, y) in photo pixels.

    Returns:
      Pixels (>= 0) from ``point_xy`` to the box of their present joints (:func:`joints_box`); 0
      inside it.
    """
    x0, y0, x1, y1 = joints_box(person)
    dx = max(x0 - point_xy[0], 0.0, point_xy[0] - x1)
    dy = max(y0 - point_xy[1], 0.0, point_xy[1] - y1)
    return float(np.hypot(dx, dy))


# A point farther than this (in person heights) from everyone picks nobody.
MAX_POINT_DISTANCE = 0.5


def choose_person(people, choice: PersonChoice, name: str = "photo"):
    """The chosen person of a photo's people.

    Args:
      people: PersonKeypoints, largest first, as :func:`find_people` lists them.
      choice: the PersonChoice.
      name: names the photo in messages.

    Returns:
      ``(index, person)``: the person's index in ``people`` and their PersonKeypoints.

    Raises:
      NoPersonFound: ``people`` is empty (:class:`pg2_tf.people.blazepose.NoPersonFound`).
      DataError: (one line) an index that does not exist, or a point farther than
        :data:`MAX_POINT_DISTANCE` of a person's height from every person.
    """
    if not people:
        raise blazepose.NoPersonFound(f"no person found in {name}")
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
    :class:`pg2_tf.people.blazepose.KeypointEstimator` (``picker(image, name)`` ->
    PersonKeypoints), it finds every person (:func:`find_person`) and returns the one ``choice``
    picks, raising as :func:`choose_person` does. What the commands pass where one person of a
    photo is needed; ``one_person`` as :func:`find_person`."""

    def __init__(self, estimator, choice=None, tiles: str = "auto", one_person=None):
        self.estimator = estimator
        self.choice = choice or PersonChoice()
        self.tiles = tiles
        self.one_person = one_person

    def __call__(self, image_rgb, name: str = "photo"):
        found = find_person(
            self.estimator, image_rgb, self.choice, name, self.tiles, self.one_person
        )
        return found[1]


def people_or_crop(estimator, image_rgb, name="photo", tiles="auto", one_person=None) -> list:
    """:func:`find_people`; when they find nobody in a crop of one person, that person read whole.

    Args:
      estimator: a :class:`pg2_tf.people.blazepose.KeypointEstimator`.
      image_rgb: uint8 [H, W, 3].
      name: names the photo in messages.
      tiles: as :func:`find_people`.
      one_person: whether the photo is a crop of one person; None: when it is shaped like one
        (:func:`pg2_tf.people.regions.fits_a_person`, the documented rule).

    Returns:
      list of PersonKeypoints as :func:`find_people`, or the one of
      :func:`pg2_tf.people.regions.person_in_crop`; [] when neither finds anybody.
    """
    people = find_people(estimator, image_rgb, name, tiles)
    if people or one_person is False:
        return people
    if one_person or regions.fits_a_person(*np.shape(image_rgb)[:2]):
        try:
            return [regions.person_in_crop(estimator, image_rgb, name)]
        except blazepose.NoPersonFound:
            return []
    return people


def find_person(estimator, image_rgb, choice, name="photo", tiles="auto", one_person=None):
    """:func:`people_or_crop` then :func:`choose_person`.

    Args:
      estimator: a :class:`pg2_tf.people.blazepose.KeypointEstimator`.
      image_rgb: uint8 [H, W, 3].
      choice: the PersonChoice.
      name: names the photo in messages.
      tiles: as :func:`find_people`.
      one_person: as :func:`people_or_crop`.

    Returns:
      ``(index, PersonKeypoints)`` as :func:`choose_person`, which raises as it does.
    """
    people = people_or_crop(estimator, image_rgb, name, tiles, one_person)
    return choose_person(people, choice, name)
