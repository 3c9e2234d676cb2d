"""The features of one pair record, exactly as the original converters wrote them.

A record holds, for image k in {0, 1} (image 0 is the condition x, image 1 the target):
``image_name_k``, ``image_raw_k`` (the JPEG file bytes, not re-encoded), ``indices_r4_k`` /
``values_r4_k`` (sparse pose, see :func:`pg2_tf.core.pose.sparse_pose_indices`), ``pose_mask_r4_k``
(int64 H*W body mask), ``pose_peaks_k`` (16 x 8 [Market] or 16 x 16 [DeepFashion] x 18 grid of
joint cells), ``pose_peaks_k_rcv`` (18 x (row, col, visible)), ``pose_subs_k`` (the image's first
OpenPose person row, 20 floats), ``part_bbox_k``/``part_vis_k`` (37 part boxes y1, x1, y2, x2 and
their visibility), ``attrs_k`` and, per dataset:

* Market-1501: ``pose_mask_r6_k`` (drawn with radius 7, named r6 by the original), ``seg_k``
  (128*64 zeros: the original never passed its segmentation folder), ``attrs_w2v{25,50,100,150}_k``;
* DeepFashion: ``pose_mask_r8_k``, ``indices_r8_k``/``values_r8_k`` and ``roi10_mask_k`` (256 x 256
  x 10 region masks, 655360 int64: ~0.65 MB per image; optional here).

and, once per pair: ``label`` (1), ``id_0``/``id_1`` (identity index in pair order), ``cam_0``/
``cam_1`` (Market camera digit; -1 for DeepFashion), ``image_format`` ('jpg'), ``image_height``,
``image_width``, ``real_data`` (1) and ``shape`` ([H * W * 18]). Height and width are image 0's;
like the original, image 1's pose is drawn with them too.
"""

import io
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from data_prep import example_proto as proto
from data_prep import part_boxes
from data_prep.common import read_image
from pg2_tf.core import datasets, pose
from pg2_tf.core.errors import DataError

ATTRIBUTE_KEYS = ("attrs", "attrs_w2v25", "attrs_w2v50", "attrs_w2v100", "attrs_w2v150")


def _is_market(spec: datasets.Dataset) -> bool:
    """Market and DeepFashion records differ in features beyond the descriptor's fields."""
    return spec == datasets.MARKET  # equal, not identical: workers get a pickled copy


@dataclass
class ImageEntry:
    """What a record needs to know about one image besides its pixels."""

    keypoints_rc: np.ndarray  # float [18, 2] (row, col), -1 missing
    pose_subs: np.ndarray  # float [20]: the image's first OpenPose person row
    attributes: dict = field(default_factory=dict)  # ATTRIBUTE_KEYS -> list (Market attributes)


@dataclass
class ImageFolder:
    """A folder of images and the entries of the usable ones.

    ``pad_columns`` = (left, right): the stored image is padded with its edge columns to that
    many more columns and re-encoded as JPEG (quality 95); the entries' keypoints must already be
    in padded coordinates. None keeps the file bytes unchanged (the original's behaviour).
    """

    path: str
    entries: dict[str, ImageEntry]
    pad_columns: tuple[int, int] | None = None


@dataclass(frozen=True)
class PairRecord:
    """One record to write: two image names of one folder and their pair-level fields."""

    folder: str  # key into the builder's folders
    name_0: str
    name_1: str
    id_0: int
    id_1: int
    cam_0: int
    cam_1: int
    label: int = 1

    @classmethod
    def of_pair(cls, folder: str, name_0: str, name_1: str, ids: dict, identity, camera):
        """The record of the pair ``name_0``, ``name_1`` of ``folder``: identity numbers from
        ``ids`` (common.identity_map) of each name's ``identity(name)``, and ``camera(name)``."""
        return cls(
            folder,
            name_0,
            name_1,
            ids[identity(name_0)],
            ids[identity(name_1)],
            camera(name_0),
            camera(name_1),
        )


def entry_problem(
    spec: datasets.Dataset, entry: ImageEntry, with_roi10_mask: bool = True
) -> str | None:
    """Why an image cannot go into a record (where the original converter crashed).

    Args:
        spec: the dataset.
        entry: the image's pose entry.
        with_roi10_mask: whether the records get DeepFashion's region masks.

    Returns:
        A reason, or None when the image is usable.
    """
    if _is_market(spec) or not with_roi10_mask:
        return None
    return part_boxes.region_mask_problem(entry.keypoints_rc)


def peaks_grid(keypoints_rc: np.ndarray, img_H: int, img_W: int, grid_columns: int) -> np.ndarray:
    """The ``pose_peaks`` feature: a coarse grid of the joints.

    Args:
        keypoints_rc: float [18, 2] (row, col), -1 missing.
        img_H: image height in pixels.
        img_W: image width in pixels.
        grid_columns: the grid's columns (8 Market, 16 DeepFashion).

    Returns:
        float64 [16, grid_columns, 18]: 1 in the cell holding each present joint, 0 elsewhere.

    Raises:
        ValueError: a joint outside the image.
    """
    grid = np.zeros((16, grid_columns, pose.NUM_KEYPOINTS))
    row_unit, col_unit = img_H / 16, img_W / grid_columns
    for joint in np.flatnonzero(~pose.missing_joints(keypoints_rc)):
        row, col = keypoints_rc[joint]
        try:
            grid[int(row / row_unit), int(col / col_unit), joint] = 1
        except IndexError as error:
            raise ValueError(f"joint {joint} at ({row}, {col}) is outside the image") from error
    return grid


def peaks_rcv(keypoints_rc: np.ndarray) -> np.ndarray:
    """The ``pose_peaks_rcv`` feature (:func:`pg2_tf.core.pose_files.keypoints_from_record_rcv` reads it).

    Args:
        keypoints_rc: float [18, 2] (row, col), -1 missing.

    Returns:
        float64 [18, 3]: (row, col, 1) per present joint, zeros for missing ones.
    """
    rcv = np.zeros((pose.NUM_KEYPOINTS, 3))
    present = ~pose.missing_joints(keypoints_rc)
    rcv[present, :2] = keypoints_rc[present]
    rcv[present, 2] = 1
    return rcv


def image_features(
    spec: datasets.Dataset,
    name: str,
    image_bytes: bytes,
    entry: ImageEntry,
    img_H: int,
    img_W: int,
    with_roi10_mask: bool = True,
) -> dict[str, bytes]:
    """Encoded per-image features, keyed without the _0/_1 suffix (see the module docstring).

    Args:
        spec: the dataset (which features, radii and grid).
        name: the image's file name.
        image_bytes: the JPEG file's bytes, stored as they are.
        entry: the image's pose entry.
        img_H: image height in pixels.
        img_W: image width in pixels.
        with_roi10_mask: DeepFashion: add ``roi10_mask``.

    Returns:
        feature name -> serialized ``tf.train.Feature``.

    Raises:
        ValueError: the keypoints do not fit the image (outside the peak grid) or, for the region
            masks, no region is visible.
    """
    keypoints_rc = entry.keypoints_rc
    features = {
        "image_name": proto.bytes_feature(name),
        "image_raw": proto.bytes_feature(image_bytes),
    }
    attribute_keys = ATTRIBUTE_KEYS if _is_market(spec) else ATTRIBUTE_KEYS[:1]
    for key in attribute_keys:
        values = entry.attributes.get(key, [])
        encode = proto.int64_feature if key == "attrs" else proto.float_feature
        features[key] = encode(np.asarray(values, np.int64 if key == "attrs" else np.float64))
    features["pose_peaks"] = proto.float_feature(
        peaks_grid(keypoints_rc, img_H, img_W, spec.peaks_grid_columns)
    )
    features["pose_peaks_rcv"] = proto.float_feature(peaks_rcv(keypoints_rc))
    features["pose_mask_r4"] = proto.int64_feature(pose.pose_mask(keypoints_rc, img_H, img_W, 4))
    features[spec.extra_mask_key] = proto.int64_feature(
        pose.pose_mask(keypoints_rc, img_H, img_W, spec.extra_radius)
    )
    radii = (4,) if _is_market(spec) else (4, spec.extra_radius)
    for radius in radii:
        indices, values, _ = pose.sparse_pose_indices(keypoints_rc, img_H, img_W, radius)
        features[f"indices_r{radius}"] = proto.int64_feature(indices)
        features[f"values_r{radius}"] = proto.float_feature(values)
    features["pose_subs"] = proto.float_feature(entry.pose_subs)
    if _is_market(spec):
        features["seg"] = _MARKET_EMPTY_SEGMENTATION
        boxes, visible = part_boxes.part_boxes_market(keypoints_rc)
    else:
        boxes, visible = part_boxes.part_boxes_deepfashion(keypoints_rc)
    features["part_bbox"] = proto.int64_feature(boxes)
    features["part_vis"] = proto.int64_feature(visible)
    if not _is_market(spec) and with_roi10_mask:
        rng = np.random.default_rng(zlib.crc32(name.encode()))
        features["roi10_mask"] = proto.int64_feature(part_boxes.roi10_mask(boxes, visible, rng))
    return features


_MARKET_EMPTY_SEGMENTATION = proto.int64_feature(np.zeros(128 * 64, np.int64))


class RecordBuilder:
    """Serialises :class:`PairRecord` s, caching per-image work (images recur in many pairs).

    Picklable (it is shipped to worker processes); its caches start empty in each process.
    """

    def __init__(
        self,
        spec: datasets.Dataset,
        folders: dict[str, ImageFolder],
        with_roi10_mask: bool = True,
        cache_size: int | None = None,
    ):
        self.spec = spec
        self.folders = folders
        self.with_roi10_mask = with_roi10_mask
        self.cache_size = cache_size or (2048 if _is_market(spec) else 128)
        self._images: OrderedDict = OrderedDict()
        self._features: OrderedDict = OrderedDict()

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_images"], state["_features"] = OrderedDict(), OrderedDict()
        return state

    def image(self, folder_key: str, name: str) -> tuple[bytes, int, int]:
        """(bytes stored in the record, height, width) of one image."""
        key = (folder_key, name)
        if key not in self._images:
            folder = self.folders[folder_key]
            data, height, width = read_image(Path(folder.path) / name)
            if folder.pad_columns is not None:
                data, height, width = _pad_columns(data, folder.pad_columns)
            self._remember(self._images, key, (data, height, width))
        return self._images[key]

    def features(self, folder_key: str, name: str, img_H: int, img_W: int) -> dict[str, bytes]:
        key = (folder_key, name, img_H, img_W)
        if key not in self._features:
            folder = self.folders[folder_key]
            data, _, _ = self.image(folder_key, name)
            try:
                value = image_features(
                    self.spec, name, data, folder.entries[name], img_H, img_W, self.with_roi10_mask
                )
            except ValueError as error:
                path = Path(folder.path) / name
                raise DataError(f"pose of {path} is unusable ({error}); fix or drop it") from error
            self._remember(self._features, key, value)
        return self._features[key]

    def serialize(self, record: PairRecord) -> bytes:
        """The serialised ``tf.train.Example`` of one pair."""
        _, img_H, img_W = self.image(record.folder, record.name_0)
        entries = []
        for suffix, name in (("_0", record.name_0), ("_1", record.name_1)):
            for key, value in self.features(record.folder, name, img_H, img_W).items():
                # Market's peak-coordinate key puts the image index before "_rcv".
                full_key = f"pose_peaks{suffix}_rcv" if key == "pose_peaks_rcv" else key + suffix
                entries.append(proto.feature_entry(full_key, value))
        pair_level = {
            "label": proto.int64_feature(record.label),
            "id_0": proto.int64_feature(record.id_0),
            "id_1": proto.int64_feature(record.id_1),
            "cam_0": proto.int64_feature(record.cam_0),
            "cam_1": proto.int64_feature(record.cam_1),
            "image_format": proto.bytes_feature(b"jpg"),
            "image_height": proto.int64_feature(img_H),
            "image_width": proto.int64_feature(img_W),
            "real_data": proto.int64_feature(1),
            "shape": proto.int64_feature(img_H * img_W * pose.NUM_KEYPOINTS),
        }
        entries.extend(proto.feature_entry(key, value) for key, value in pair_level.items())
        return proto.example_bytes(entries)

    def _remember(self, cache: OrderedDict, key, value) -> None:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > self.cache_size:
            cache.popitem(last=False)


def _pad_columns(data: bytes, pad_columns: tuple[int, int]) -> tuple[bytes, int, int]:
    with Image.open(io.BytesIO(data)) as image:
        pixels = np.asarray(image.convert("RGB"))
    padded = np.pad(pixels, ((0, 0), pad_columns, (0, 0)), mode="edge")
    buffer = io.BytesIO()
    Image.fromarray(padded).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue(), padded.shape[0], padded.shape[1]
