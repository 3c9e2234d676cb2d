"""The picture encodings of the original's test mode."""

import numpy as np

from pg2_tf.core import images


def test_images_are_clipped_then_truncated_not_rounded():
    values = np.array([-1.5, -1.0, 0.0, 0.999, 1.5, np.nan], np.float32)
    # (v + 1) * 127.5 = -63.75, 0, 127.5, 254.87, 318.75 -> clip -> truncate; NaN -> 0
    np.testing.assert_array_equal(images.to_uint8_image(values), [0, 0, 127, 254, 255, 0])


def test_input_images_give_back_every_pixel_value_the_reader_normalised():
    pixels = np.arange(256, dtype=np.float32)
    normalised = (pixels - np.float32(127.5)) / np.float32(127.5)  # the reader's expression
    np.testing.assert_array_equal(images.input_to_uint8(normalised), np.arange(256))
    # the generated-image encoding would lose a grey level on 95 of the 256 values
    assert np.count_nonzero(images.to_uint8_image(normalised) != np.arange(256)) == 95


def test_pose_picture_is_max_over_channels():
    pose = -np.ones((2, 2, 18), np.float32)
    pose[0, 1, 7] = 1.0
    np.testing.assert_array_equal(images.pose_to_uint8(pose), [[0, 255], [0, 0]])


def test_mask_picture_is_mask_times_255():
    mask = np.array([[[0.0], [1.0]]], np.float32)
    np.testing.assert_array_equal(images.mask_to_uint8(mask), [[0, 255]])


def test_grid_tiles_with_padding():
    tiles = np.stack([np.full((2, 3), value, np.uint8) for value in (10, 20, 30)])
    canvas = images.grid(tiles, columns=2, padding=1)
    assert canvas.shape == (1 + 2 * 3, 1 + 2 * 4)
    assert canvas[1, 1] == 10 and canvas[1, 5] == 20 and canvas[4, 1] == 30 and canvas[4, 5] == 0
    assert canvas[0].max() == 0  # padding row
