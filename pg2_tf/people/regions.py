"""A person read from a region without the face detector: a crop, a body box, the last frame.

BlazePose's detector proposes people by their face; the landmark model reads a body from any
side once it is given a region of interest. Here the region comes from elsewhere:

* a **crop** known to hold one person (a Market box, an In-shop photo, a photo shaped like a
  person: :func:`fits_a_person`): the whole crop, read once (:func:`person_in_crop`), when the
  detector finds nobody in it;
* a **body box** of OpenCV's HOG people detector (:func:`people_of_body_boxes`), for scenes;
* the **previous frame's** landmarks (``PersonKeypoints.roi``), as MediaPipe's video mode does:
  :class:`pg2_tf.people.following.PersonFollower` uses :func:`person_in_region` with it.

A body box is read twice, as MediaPipe's video mode would on a still picture: the landmark model
on the box's region, then on the region its auxiliary landmarks give (the person centred and
upright at the model's scale). A person read without the face detector is accepted only when the
landmark model's presence exceeds 0.5 (MediaPipe's own threshold) and the body is shaped like an
upright person to OpenCV's HOG detector (:func:`is_body`): the presence alone accepts some
textures (a kerb with bollards: 0.998; docs/performance.md, "Keypoints: people from any side").

Rule: builds on the engine (:mod:`pg2_tf.people.blazepose`) and :mod:`pg2_tf.people.bodies`;
never imports the finder (which imports this).
"""

import dataclasses

import numpy as np

from pg2_tf.core import pose
from pg2_tf.people import blazepose, bodies, geometry

# A photo whose height is at least this many times its width is taken to be a crop of one
# person (Market's boxes are 2:1, standing people about 2.5 to 4:1; photos of scenes are wider).
CROP_ASPECT = 1.4
# The region of a head-to-feet box: centred on the box, its side this many times its height
# (a detection's region holds the body with a 25 % margin).
BOX_REGION = 1.25
# The HOG score a person read without the face detector must reach (is_body): the SVM's own
# boundary; measured on real pedestrian crops (at least 0.7) and on background crops the landmark
# model reads as people (at most -0.9).
MIN_BODY_SCORE = 0.0
# A person the detector proposed in a crop is taken without the body check from this presence
# (pedestrians 0.93 to 1.0; a tripod read as a person: 0.90).
CONFIDENT_PRESENCE = 0.95
# A body box is a person already found when it overlaps their box by this much (IoU) or its
# centre lies in their box.
COVERED_IOU = 0.3


def fits_a_person(height: int, width: int) -> bool:
    """Whether a photo is shaped like a crop of one person (the documented rule).

    Args:
      height, width: the photo's size in pixels.

    Returns:
      True when ``height >= CROP_ASPECT * width`` (:data:`CROP_ASPECT` = 1.4).
    """
    return height >= CROP_ASPECT * width


def head_to_feet_box(person) -> tuple:
    """A person's box from the top of their head to their feet.

    Args:
      person: a :class:`pg2_tf.people.blazepose.PersonKeypoints`.

    Returns:
      (x0, y0, x1, y1) in photo pixels: the box of their 33 landmarks, raised by 8 % of its
      height (the landmarks stop at the eyes and ears; the crown is above them).
    """
    x0, y0, x1, y1 = person.box_xyxy
    return (x0, y0 - 0.08 * (y1 - y0), x1, y1)


def is_body(image_rgb, person) -> bool:
    """Whether a person read by the landmark model is shaped like a body to the HOG detector.

    Args:
      image_rgb: uint8 [H, W, 3].
      person: a :class:`pg2_tf.people.blazepose.PersonKeypoints` in that photo.

    Returns:
      True when :func:`pg2_tf.people.bodies.body_score` of :func:`head_to_feet_box` reaches
      :data:`MIN_BODY_SCORE`.
    """
    return bodies.body_score(image_rgb, head_to_feet_box(person)) >= MIN_BODY_SCORE


def region_of_box(box_xyxy) -> tuple:
    """The landmark model's region for a head-to-feet box (no rotation).

    Args:
      box_xyxy: (x0, y0, x1, y1) in photo pixels.

    Returns:
      ``(centre_xy float64 [2], side, 0.0)``: centred on the box, side :data:`BOX_REGION` x the
      longer of its sides.
    """
    x0, y0, x1, y1 = (float(v) for v in box_xyxy)
    side = BOX_REGION * max(x1 - x0, y1 - y0)
    return np.array([(x0 + x1) / 2, (y0 + y1) / 2]), side, 0.0


def person_in_region(estimator, image_rgb, roi, check_body: bool = True, reread: bool = True):
    """The person the landmark model reads in a region, read again where their landmarks say.

    Args:
      estimator: a :class:`pg2_tf.people.blazepose.KeypointEstimator`.
      image_rgb: uint8 [H, W, 3].
      roi: ``(centre_xy, side, rotation)`` in photo pixels.
      check_body: also require :func:`is_body`.
      reread: read the region of the first reading's auxiliary landmarks again (False: one
        reading, as MediaPipe's video mode does from the previous frame's region).

    Returns:
      A PersonKeypoints (its ``roi`` the region for the next frame), or None when the landmark
      model's presence is not above 0.5 on either reading or the body check fails.
    """
    image = np.asarray(image_rgb)
    found = estimator.landmarks_in_roi(image, roi)
    if found is not None and reread:
        found = estimator.landmarks_in_roi(image, found[2])
    if found is None:
        return None
    person = blazepose.person_from_landmarks(found, *image.shape[:2])
    if not (person.keypoints_xyc[:, 2] > 0).any():
        return None
    if check_body and not is_body(image, person):
        return None
    return person


def person_in_crop(estimator, image_rgb, name: str = "photo"):
    """The one person of a crop: MediaPipe's way first, else the landmark model on the crop.

    The detector runs on the whole crop, and its best detection is read as MediaPipe reads it
    (so a person it finds gets exactly MediaPipe's keypoints). When it finds nobody, or the
    person read there is not upright (:func:`pg2_tf.core.pose.is_upright`) or neither confident
    (:data:`CONFIDENT_PRESENCE`) nor body-shaped (:func:`is_body`), the whole crop is the region
    (:func:`person_in_region`), and the person read there must be upright too.

    Args:
      estimator: a :class:`pg2_tf.people.blazepose.KeypointEstimator`.
      image_rgb: uint8 [H, W, 3], holding one person.
      name: names the photo in messages.

    Returns:
      The PersonKeypoints.

    Raises:
      NoPersonFound: naming ``name``, when neither way finds a body.
    """
    image = blazepose.check_image(image_rgb, name)
    height, width = image.shape[:2]
    try:
        person = estimator(image, name)  # MediaPipe's single-person graph
    except blazepose.NoPersonFound:
        person = None
    # Not a texture the detector took for a face (a tripod: presence 0.90, HOG -4.2), nor a
    # body read upside down from a weak detection (presence 0.9998).
    if person is not None and pose.is_upright(person.keypoints_rc()):
        if person.score >= CONFIDENT_PRESENCE or is_body(image, person):
            return person
    whole = (np.array([width / 2, height / 2]), float(max(height, width)), 0.0)
    # One reading: the person fills the crop about as the model's region holds them; reading
    # again where the landmarks say moved the ankles of walking people seen in profile by up to
    # 14 % of their height (tests/fixtures/any_side, marked by hand).
    person = person_in_region(estimator, image, whole, reread=False)
    if person is None or not pose.is_upright(person.keypoints_rc()):
        raise blazepose.NoPersonFound(f"no person found in {name}")
    return person


def _covered(box, people) -> bool:
    centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    for person in people:
        x0, y0, x1, y1 = head_to_feet_box(person)
        if x0 <= centre[0] <= x1 and y0 <= centre[1] <= y1:
            return True
        if geometry.box_iou(np.asarray(box), np.array([(x0, y0, x1, y1)]))[0] > COVERED_IOU:
            return True
    return False


def people_of_body_boxes(estimator, image_rgb, people, min_height: float, min_score: float) -> list:
    """The people of HOG's body boxes that are not among ``people`` yet.

    Args:
      estimator: a :class:`pg2_tf.people.blazepose.KeypointEstimator`.
      image_rgb: uint8 [H, W, 3].
      people: PersonKeypoints already found (their boxes are not searched again).
      min_height, min_score: the smallest person looked for (photo pixels) and the least
        score of a box (:func:`pg2_tf.people.bodies.body_boxes`).

    Returns:
      list of new PersonKeypoints (each read by :func:`person_in_region`, body-checked); they
      may still duplicate each other or ``people`` (the finder merges them).
    """
    image = np.asarray(image_rgb)
    found = []
    for box, _ in bodies.body_boxes(image, min_height, min_score):
        if _covered(box, list(people) + found):
            continue
        person = person_in_region(estimator, image, region_of_box(box))
        if person is not None:
            found.append(person)
    return found


@dataclasses.dataclass
class CropReader:
    """A pose estimator for inputs known to hold one person: called like a
    :class:`pg2_tf.people.blazepose.KeypointEstimator` (``reader(image, name)`` ->
    PersonKeypoints), it answers with :func:`person_in_crop`."""

    estimator: object

    def __call__(self, image_rgb, name: str = "photo"):
        return person_in_crop(self.estimator, image_rgb, name)
