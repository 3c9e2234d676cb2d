"""The two datasets PG2 was trained on, one frozen descriptor each: the one home of their identity.

Everything that differs between Market-1501 and DeepFashion (the ``--model`` number, the image
size, the tf-record file prefix, the L1 weight of g_loss2, the folder and file names of the
original release, the record features the converters write, the flags that select the
configuration) is a field of :class:`Dataset`. Other modules read these fields; they never test
``model == 1`` or ``kind == "market"`` themselves::

    dataset = datasets.by_model(flags.model)          # or by_kind("market"), by_name("DF_train_data")
    files = reader.record_files(path, "train", dataset.kind)
    loss = g_gan + dataset.l1_weight * l1_loss2
    raise ConfigError(f"... use {dataset.flags}")    # "--model=1 --img_H=128 --img_W=64"
"""

from dataclasses import dataclass

from pg2_tf.core.errors import ConfigError


@dataclass(frozen=True)
class Dataset:
    """What identifies one dataset and its PG2 configuration (values of the original code)."""

    kind: str  # "market" | "deepfashion": the name used in file names, flags and JSON
    title: str  # "Market-1501" | "DeepFashion": the name used in messages
    model: int  # the original's --model: 1 | 11
    img_H: int
    img_W: int
    record_prefix: str  # tf-record files: <record_prefix>_<split>_*.tfrecord
    data_folder_prefix: str  # record folders: <data_folder_prefix>_<split>_data
    l1_weight: float  # weight of L1Loss2 in g_loss2
    # Networks: DeepFashion's "AfterNoise" G2 links every encoder block; Market's D also sees G1
    # (triplet concat[x_target, x, G1, G2] instead of concat[x_target, G2, x]).
    g2_skip_first_block: bool
    discriminator_sees_g1: bool
    # The original release's raw layout (converters' input).
    raw_folder: str  # the zip's top folder
    pose_folder: str  # OpenPose pickles under raw_folder
    image_folder_prefix: str  # <prefix><image set>: bounding_box_train, filted_up_test, ...
    pose_pickle_name: str  # all_peaks_dic_<name><suffix>.p, subsets_dic_<name><suffix>.p
    pose_pickle_suffixes: tuple[tuple[str, str], ...]  # image set -> suffix
    # Record features the converters write.
    peaks_grid_columns: int  # pose_peaks grid is 16 x this x 18
    extra_radius: int  # second mask radius (Market 7, DeepFashion 8)
    extra_mask_key: str  # its feature name
    box_clamp_hw: tuple[int, int]  # last row/column the part boxes are clamped to
    selection: str  # keypoint selection rule of pg2_tf.core.pose_files.keypoints_from_openpose
    # The raw release's image names and what the converters read from them.
    converter: str  # module of the original-equivalent converter (data_prep.convert_*)
    raw_name_format: str  # str.format of an image name: identity, number (from 1), frame, camera
    identity_chars: int  # identity = the name's first so many characters; 0: text before '_'
    camera_char: int  # index of the camera digit in the name; -1: the dataset has no cameras
    junk_test_detections: int  # sorted test files the original converter skips
    # Pose-Transfer's version (its annotation CSVs and getMetrics scripts).
    patn_width: int  # its images are img_H x patn_width (padded to img_W for this model)
    patn_masked_scores: bool  # its getMetrics script computes mask_SSIM / mask_IS

    @property
    def flags(self) -> str:
        """The flags that select this configuration: ``--model=1 --img_H=128 --img_W=64``."""
        return f"--model={self.model} --img_H={self.img_H} --img_W={self.img_W}"

    @property
    def hint(self) -> str:
        """The flags with the dataset's name, for messages: ``--model=1 ... (Market-1501)``."""
        return f"{self.flags} ({self.title})"

    @property
    def image_sets(self) -> tuple[str, ...]:
        """The raw layout's image sets (train, train_flip, test, ...)."""
        return tuple(image_set for image_set, _ in self.pose_pickle_suffixes)

    def data_folder(self, split: str) -> str:
        """The record folder of a split, as the original named it: ``Market_train_data``."""
        return f"{self.data_folder_prefix}_{split}_data"

    def image_folder(self, image_set: str) -> str:
        """The raw layout's image folder of an image set: ``bounding_box_train``."""
        return self.image_folder_prefix + image_set

    def raw_image_name(self, identity: int, number: int, frame: int = 0, camera: int = 1) -> str:
        """A raw image name as the release spells it and the converters parse it.

        ``identity`` (a person's number), ``number`` (the person's image, from 1); Market also
        encodes ``frame`` and ``camera``: ``0001_c2s1_000100_00.jpg``; DeepFashion ``00001_1.jpg``.
        """
        return self.raw_name_format.format(
            identity=identity, number=number, frame=frame, camera=camera
        )

    def identity_of(self, name: str) -> str:
        """The person identity of a raw image name (the pairs join images of one identity)."""
        return name[: self.identity_chars] if self.identity_chars else name.split("_")[0]

    def camera_of(self, name: str) -> int:
        """The camera number of a raw image name; -1 without cameras or a camera digit."""
        index = self.camera_char
        if index < 0 or len(name) <= index or not name[index].isdigit():
            return -1
        return int(name[index])

    def pickle_names(self, image_set: str) -> tuple[str, str]:
        """The raw layout's OpenPose pickles (all_peaks, subsets) of an image set."""
        suffix = dict(self.pose_pickle_suffixes)[image_set]
        return (
            f"all_peaks_dic_{self.pose_pickle_name}{suffix}.p",
            f"subsets_dic_{self.pose_pickle_name}{suffix}.p",
        )


MARKET = Dataset(
    kind="market",
    title="Market-1501",
    model=1,
    img_H=128,
    img_W=64,
    record_prefix="Market1501",
    data_folder_prefix="Market",
    l1_weight=10.0,
    g2_skip_first_block=False,
    discriminator_sees_g1=True,
    raw_folder="Market1501_img_pose_attr_seg",
    pose_folder="Market-1501_PoseFiltered",
    image_folder_prefix="bounding_box_",
    pose_pickle_name="Market-1501",
    pose_pickle_suffixes=(
        ("train", "_train"),
        ("train_flip", "_train_Flip"),
        ("test", "_test_clean"),
        ("test_samples", "_test_samples"),
    ),
    peaks_grid_columns=8,
    extra_radius=7,
    extra_mask_key="pose_mask_r6",
    box_clamp_hw=(127, 63),
    selection="market",
    converter="data_prep.convert_market",
    raw_name_format="{identity:04d}_c{camera}s1_{frame:06d}_00.jpg",
    identity_chars=4,
    camera_char=6,
    junk_test_detections=6617,
    patn_width=64,
    patn_masked_scores=True,
)
DEEPFASHION = Dataset(
    kind="deepfashion",
    title="DeepFashion",
    model=11,
    img_H=256,
    img_W=256,
    record_prefix="DeepFashion",
    data_folder_prefix="DF",
    l1_weight=50.0,
    g2_skip_first_block=True,
    discriminator_sees_g1=False,
    raw_folder="DF_img_pose",
    pose_folder="PoseFiltered",
    image_folder_prefix="filted_up_",
    pose_pickle_name="DeepFashion",
    pose_pickle_suffixes=(
        ("train", ""),
        ("train_flip", "_Flip"),
        ("test", ""),
        ("test_samples", ""),
        ("test_seq", ""),
    ),
    peaks_grid_columns=16,
    extra_radius=8,
    extra_mask_key="pose_mask_r8",
    box_clamp_hw=(255, 255),
    selection="deepfashion",
    converter="data_prep.convert_DF",
    raw_name_format="{identity:05d}_{number}.jpg",
    identity_chars=0,
    camera_char=-1,
    junk_test_detections=0,
    patn_width=176,
    patn_masked_scores=False,
)
ALL = (MARKET, DEEPFASHION)
KINDS = tuple(dataset.kind for dataset in ALL)
MODELS = tuple(dataset.model for dataset in ALL)
_ANY_MODEL = " or ".join(f"{dataset.model} ({dataset.title})" for dataset in ALL)


def by_kind(kind: str) -> Dataset:
    """The dataset of a kind name.

    Args:
        kind: ``'market'`` or ``'deepfashion'``.

    Returns:
        :data:`MARKET` or :data:`DEEPFASHION`.

    Raises:
        ConfigError: any other name.
    """
    for dataset in ALL:
        if dataset.kind == kind:
            return dataset
    raise ConfigError(f"unknown dataset kind {kind!r}; expected one of {', '.join(KINDS)}")


def by_model(model: int) -> Dataset:
    """The dataset of a ``--model`` number.

    Args:
        model: 1 (Market-1501) or 11 (DeepFashion).

    Returns:
        :data:`MARKET` or :data:`DEEPFASHION`.

    Raises:
        ConfigError: any other number, naming the flag.
    """
    for dataset in ALL:
        if dataset.model == model:
            return dataset
    raise ConfigError(f"--model={model}: use {_ANY_MODEL}")


def by_image_size(img_H: int, img_W: int) -> Dataset | None:
    """The dataset whose images have a given size.

    Args:
        img_H: image height in pixels.
        img_W: image width in pixels.

    Returns:
        :data:`MARKET` (128 x 64), :data:`DEEPFASHION` (256 x 256), or None for any other size.
    """
    for dataset in ALL:
        if (dataset.img_H, dataset.img_W) == (img_H, img_W):
            return dataset
    return None


def by_name(name: str) -> Dataset:
    """The dataset a ``--dataset`` folder name selects, by the original's rule.

    ``'market'`` anywhere in the lower-cased name selects Market-1501; otherwise ``'deepfashion'``
    or ``'df'`` selects DeepFashion.

    Args:
        name: the folder name, e.g. ``'Market_train_data'`` or ``'DF_test_data'``.

    Returns:
        :data:`MARKET` or :data:`DEEPFASHION`.

    Raises:
        ConfigError: a name matching neither rule.
    """
    lowered = name.lower()
    if "market" in lowered:
        return MARKET
    if "deepfashion" in lowered or "df" in lowered:
        return DEEPFASHION
    raise ConfigError(
        f"--dataset={name!r} names neither Market-1501 nor DeepFashion: the name must contain "
        f"'market' (Market-1501, --model={MARKET.model}) or 'deepfashion'/'df' (DeepFashion, "
        f"--model={DEEPFASHION.model})"
    )


def for_patn_images(image_shape: tuple[int, ...]) -> Dataset:
    """The dataset whose Pose-Transfer getMetrics script scores images of a shape.

    Args:
        image_shape: the images' shape, height first (``(H, W, 3)`` or ``(H, W)``).

    Returns:
        :data:`DEEPFASHION` for images 256 high (Pose-Transfer's 256 x 176 or PG2's 256 x 256),
        :data:`MARKET` otherwise.
    """
    return DEEPFASHION if image_shape[0] == DEEPFASHION.img_H else MARKET


def flags_for_repeat_num(repeat_num: int, default: str) -> str:
    """The flags of the dataset whose G1 has ``repeat_num`` resolutions (img_H = 2^(repeat_num + 2)).

    Args:
        repeat_num: G1's number of encoder blocks (5 for Market, 6 for DeepFashion).
        default: returned when no dataset has that many.

    Returns:
        The dataset's ``flags`` (``"--model=1 --img_H=128 --img_W=64"``), or ``default``.
    """
    for dataset in ALL:
        if dataset.img_H == 2 ** (repeat_num + 2):
            return dataset.flags
    return default
