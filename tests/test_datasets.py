"""The dataset descriptors: the values of the original code, and the look-ups every module uses."""

import pytest

from pg2_tf.core import datasets
from pg2_tf.core.errors import ConfigError


def test_descriptors_hold_the_original_configurations():
    market, fashion = datasets.MARKET, datasets.DEEPFASHION
    assert (market.model, market.img_H, market.img_W, market.l1_weight) == (1, 128, 64, 10.0)
    assert (fashion.model, fashion.img_H, fashion.img_W, fashion.l1_weight) == (11, 256, 256, 50.0)
    assert market.flags == "--model=1 --img_H=128 --img_W=64"
    assert fashion.hint == "--model=11 --img_H=256 --img_W=256 (DeepFashion)"
    assert (market.data_folder("train"), fashion.data_folder("test")) == (
        "Market_train_data",
        "DF_test_data",
    )


def test_raw_layout_names_are_the_original_releases():
    assert datasets.MARKET.image_folder("train_flip") == "bounding_box_train_flip"
    assert datasets.MARKET.pickle_names("test") == (
        "all_peaks_dic_Market-1501_test_clean.p",
        "subsets_dic_Market-1501_test_clean.p",
    )
    assert datasets.DEEPFASHION.pickle_names("train_flip") == (
        "all_peaks_dic_DeepFashion_Flip.p",
        "subsets_dic_DeepFashion_Flip.p",
    )
    assert datasets.DEEPFASHION.pickle_names("test_seq")[0] == "all_peaks_dic_DeepFashion.p"


def test_raw_image_names_parse_back_as_the_original_converters_read_them():
    # Names of the releases: Market "0002_c1s1_000451_03.jpg", DeepFashion "<id>_<view>.jpg".
    market_name = datasets.MARKET.raw_image_name(2, 1, frame=451, camera=3)
    assert market_name == "0002_c3s1_000451_00.jpg"
    assert datasets.MARKET.identity_of("0002_c1s1_000451_03.jpg") == "0002"
    assert datasets.MARKET.camera_of("0002_c1s1_000451_03.jpg") == 1
    assert datasets.MARKET.camera_of("0002.jpg") == -1  # not a Market name: no camera
    fashion_name = datasets.DEEPFASHION.raw_image_name(7, 2, frame=451, camera=3)
    assert fashion_name == "00007_2.jpg"
    assert datasets.DEEPFASHION.identity_of("fashionWOMENDressesid0000262902_1front.jpg") == (
        "fashionWOMENDressesid0000262902"
    )
    assert datasets.DEEPFASHION.camera_of(fashion_name) == -1


def test_patn_images_pick_getmetrics_script_by_height():
    assert datasets.for_patn_images((256, 176, 3)) is datasets.DEEPFASHION
    assert datasets.for_patn_images((256, 256, 3)) is datasets.DEEPFASHION
    assert datasets.for_patn_images((128, 64, 3)) is datasets.MARKET
    assert (datasets.MARKET.patn_masked_scores, datasets.DEEPFASHION.patn_masked_scores) == (
        True,
        False,
    )


@pytest.mark.parametrize(
    "name, dataset",
    [
        ("Market_train_data", datasets.MARKET),
        ("market1501", datasets.MARKET),
        ("DeepFashion", datasets.DEEPFASHION),
        ("DF_test_data", datasets.DEEPFASHION),
        ("deepfashion_mine", datasets.DEEPFASHION),
        ("my_df_copy", datasets.DEEPFASHION),
    ],
)
def test_a_dataset_folder_name_selects_the_dataset_as_the_original(name, dataset):
    assert datasets.by_name(name) is dataset


def test_look_ups_refuse_unknown_values_naming_the_flag():
    with pytest.raises(ConfigError, match=r"--model=3: use 1 \(Market-1501\) or 11"):
        datasets.by_model(3)
    with pytest.raises(ConfigError, match=r"--dataset='celeba' names neither"):
        datasets.by_name("celeba")
    assert datasets.by_image_size(128, 64) is datasets.MARKET
    assert datasets.by_image_size(100, 100) is None
    assert datasets.flags_for_repeat_num(6, "?") == datasets.DEEPFASHION.flags
