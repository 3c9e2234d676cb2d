"""data_prep.from_photos: records in the original format from a folder of photos, one per person."""

import io

import numpy as np
import pytest
import skimage.data
from PIL import Image

from data_prep import from_photos
from data_prep.read_records import read_records
from pg2_tf.core import configs
from pg2_tf.core.errors import DataError
from pg2_tf.records import reader
from pg2_tf.training import steps


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    """Two persons: the astronaut in 3 framings (+ a photo of coffee), the cameraman in 2."""
    root = tmp_path_factory.mktemp("photos")
    astronaut, camera = root / "astronaut", root / "cameraman"
    astronaut.mkdir()
    camera.mkdir()
    photo = skimage.data.astronaut()
    Image.fromarray(photo).save(astronaut / "a1.png")
    Image.fromarray(photo[30:, 20:-60]).save(astronaut / "a2.jpg")
    Image.fromarray(photo[:, ::-1]).save(astronaut / "a3.png")
    Image.fromarray(skimage.data.coffee()).save(astronaut / "coffee.jpg")  # no person
    cameraman = np.stack([skimage.data.camera()] * 3, axis=-1)
    Image.fromarray(cameraman).save(camera / "c1.png")
    Image.fromarray(cameraman[:, ::-1]).save(camera / "c2.png")
    (camera / "notes.txt").write_text("not a photo, not listed")
    return root


@pytest.fixture(scope="module")
def market_records(photo_folder, blazepose_estimator, tmp_path_factory):
    lines = []
    out = from_photos.convert(
        photo_folder, tmp_path_factory.mktemp("records"), "market", "train",
        workers=1, show_progress=False, estimator=blazepose_estimator, log=lines.append,
    )  # fmt: skip
    return out, lines


def test_pairs_are_every_ordered_pair_within_a_person_plus_mirrored_copies(market_records):
    out, _ = market_records
    records = read_records(sorted(out.glob("Market1501_train_*.tfrecord")))
    pairs = {(r["image_name_0"][0].decode(), r["image_name_1"][0].decode()) for r in records}
    astronaut = [f"0001_c1s1_{n:06d}_00.jpg" for n in (1000, 1001, 1002)]
    cameraman = [f"0002_c1s1_{n:06d}_00.jpg" for n in (2000, 2001)]
    expected = {(a, b) for group in (astronaut, cameraman) for a in group for b in group if a != b}
    assert len(records) == 2 * len(expected)  # train_flip's mirrored records, then the originals
    assert pairs == expected
    assert (out / "tf_record_pair_num.txt").read_text() == "cnt:16"
    assert (out / "persons_train.txt").read_text() == "1 astronaut\n2 cameraman\n"


def test_photo_without_person_is_listed_and_skipped(market_records, photo_folder):
    out, lines = market_records
    coffee = photo_folder / "astronaut" / "coffee.jpg"
    expected = f"{coffee}: no person found in {coffee}"
    assert (out / "skipped_train.txt").read_text() == expected + "\n"
    assert lines[0] == f"skipped {expected}"
    assert lines[-1].startswith("5 of 6 photos of 2 persons used (1 skipped")


def test_crops_are_the_model_size_and_the_pose_is_in_them(market_records):
    out, _ = market_records
    record = read_records(sorted(out.glob("Market1501_train_*.tfrecord")))[-1]
    assert record["image_height"] == [128] and record["image_width"] == [64]
    with Image.open(io.BytesIO(record["image_raw_1"][0])) as image:
        assert image.size == (64, 128) and image.format == "JPEG"
    rows, cols = np.asarray(record["pose_peaks_0_rcv"]).reshape(18, 3)[:, :2].T
    present = rows >= 0
    assert present.sum() >= 5  # head and shoulders at least
    assert (rows[present] < 128).all() and (cols[present] < 64).all()


def test_records_are_read_by_the_input_pipeline_and_train_a_step(market_records, tmp_path):
    out, _ = market_records
    batch = next(
        iter(reader.make_dataset(
            str(out), "train", kind="market", img_H=128, img_W=64, batch_size=4,
            is_train=True, seed=0,
        ))
    )  # fmt: skip
    assert batch["x"].shape == (4, 128, 64, 3) and batch["pose_target"].shape == (4, 128, 64, 18)
    config = configs.TrainConfig(
        conv_hidden_num=8, d_dim=8, batch_size=4, model_dir=str(tmp_path), data_path=str(out),
        progress_bar=False,
    )  # fmt: skip
    losses = steps.Trainer(config).train_step(batch)
    assert np.isfinite(float(losses["g_loss1"]))


def test_folder_without_person_sub_folders_is_one_line(tmp_path, blazepose_estimator):
    (tmp_path / "loose.jpg").write_bytes(b"")
    with pytest.raises(DataError, match=r"has no sub-folder with photos .* a sub-folder of their"):
        from_photos.convert(
            tmp_path, tmp_path / "out", "market", "train", estimator=blazepose_estimator
        )


def test_deepfashion_test_split_keeps_the_train_splits_poses(
    photo_folder, blazepose_estimator, tmp_path
):
    """DeepFashion's train and test share one pair of pose pickles: writing test (here other
    photos: the cameraman's only) after train into the same raw folder adds to them instead of
    replacing train's entries."""
    from data_prep import common
    from pg2_tf.core import datasets

    layout = datasets.DEEPFASHION
    people = from_photos.person_folders(photo_folder)
    names = {}
    for split, split_people in (("train", people), ("test", people[1:])):
        raw_dir, _ = from_photos.write_raw_layout(
            split_people, tmp_path, "deepfashion", split, blazepose_estimator, log=lambda _: None
        )
        names[split] = {p.name for p in (raw_dir / layout.image_folder(split)).iterdir()}
    assert layout.pickle_names("test") == layout.pickle_names("train")
    only_train = names["train"] - names["test"]
    assert only_train
    peaks = common.load_python2_pickle(
        raw_dir / layout.pose_folder / layout.pickle_names("test")[0], ""
    )
    assert names["train"] | names["test"] <= set(peaks)
