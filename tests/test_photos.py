"""pg2_tf.people.photos: decoding users' photos as a viewer shows them, and the person crop's transform."""

import io

import numpy as np
import pytest
from PIL import Image

from pg2_tf.core.errors import DataError
from pg2_tf.people import photos

# EXIF tag 0x0112 (Orientation) value 6: the stored pixels are shown rotated 90 degrees clockwise.
_ORIENTATION = 0x0112


def _save(image: Image.Image, path, **kwargs):
    image.save(path, **kwargs)
    return path


def test_16_bit_grey_png_decodes_to_the_8_bit_gradient_not_white(tmp_path):
    gradient = np.tile(np.arange(256, dtype=np.uint16), (4, 1))  # 8-bit values 0..255
    path = _save(Image.fromarray(gradient * 257), tmp_path / "deep.png")  # 16-bit: 0..65535
    assert Image.open(path).mode.startswith("I")

    photo = photos.load_photo(path)

    assert photo.dtype == np.uint8 and photo.shape == (4, 256, 3)
    np.testing.assert_array_equal(photo[..., 0], gradient)
    np.testing.assert_array_equal(photo[..., 0], photo[..., 2])


def test_exif_rotated_jpeg_comes_out_upright(tmp_path):
    stored = np.zeros((20, 40, 3), np.uint8)  # landscape: left half red, right half blue
    stored[:, :20] = (255, 0, 0)
    stored[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[_ORIENTATION] = 6
    path = _save(Image.fromarray(stored), tmp_path / "phone.jpg", exif=exif, quality=95)

    photo = photos.load_photo(path)

    # Turned clockwise for display: portrait, the stored left (red) half on top.
    assert photo.shape == (40, 20, 3)
    np.testing.assert_allclose(photo[5, 10], (255, 0, 0), atol=12)
    np.testing.assert_allclose(photo[35, 10], (0, 0, 255), atol=12)


def test_transparent_palette_and_alpha_pixels_are_composited_on_white(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red
    rgba[0, 1] = (0, 0, 0, 0)  # fully transparent
    rgba[1, :] = (0, 0, 255, 128)  # half-transparent blue
    path = _save(Image.fromarray(rgba), tmp_path / "alpha.png")
    palette = Image.fromarray(rgba[..., :3]).quantize(4)
    transparent_index = palette.getpixel((1, 0))
    palette_path = _save(palette, tmp_path / "palette.png", transparency=transparent_index)

    photo = photos.load_photo(path)
    from_palette = photos.load_photo(palette_path)

    np.testing.assert_array_equal(photo[0, 0], (255, 0, 0))
    np.testing.assert_array_equal(photo[0, 1], (255, 255, 255))
    np.testing.assert_allclose(photo[1, 0], (127, 127, 255), atol=1)  # half blue, half white
    np.testing.assert_array_equal(from_palette[0, 1], (255, 255, 255))
    np.testing.assert_array_equal(from_palette[0, 0], (255, 0, 0))


def test_grey_photo_becomes_three_equal_channels(tmp_path):
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    photo = photos.load_photo(_save(Image.fromarray(grey), tmp_path / "grey.png"))
    np.testing.assert_array_equal(photo, np.repeat(grey[:, :, None], 3, axis=2))


def test_decode_photo_reads_bytes_like_a_file():
    buffer = io.BytesIO()
    pixels = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, format="PNG")
    np.testing.assert_array_equal(photos.decode_photo(buffer.getvalue()), pixels)


def test_a_file_that_is_not_an_image_is_one_line_naming_it(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("not a photo\n")
    with pytest.raises(DataError, match="notes.jpg is not an image") as error:
        photos.load_photo(path)
    assert "\n" not in str(error.value)
    with pytest.raises(DataError, match="upload.png is not an image"):
        photos.decode_photo(b"\x89PNG broken", name="upload.png")


def test_a_truncated_photo_and_a_missing_one_name_the_file(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(buffer, format="JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(DataError, match="cut.jpg"):
        photos.load_photo(path)
    with pytest.raises(DataError, match="absent.png does not exist"):
        photos.load_photo(tmp_path / "absent.png")


def test_a_photo_over_the_decompression_bomb_limit_is_refused(tmp_path, monkeypatch):
    path = _save(Image.new("RGB", (40, 30)), tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 1200 pixels: over 1x, under 2x
    with pytest.raises(DataError, match="bomb.png is too large"):
        photos.load_photo(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)  # over 2x: Pillow's own error
    with pytest.raises(DataError, match="bomb.png is too large"):
        photos.load_photo(path)


def test_crop_round_trips_keypoints_and_keeps_missing_ones():
    crop = photos.Crop(x0=-12.5, y0=30.25, scale=0.4, out_H=128, out_W=64)
    rng = np.random.default_rng(1)
    photo_rc = np.stack([rng.uniform(31, 340, 18), rng.uniform(-12, 147, 18)], axis=1)
    photo_rc[[3, 7]] = -1

    crop_rc = crop.to_crop_rc(photo_rc)
    back = crop.to_photo_rc(crop_rc)

    np.testing.assert_array_equal(crop_rc[[3, 7]], -1)
    np.testing.assert_allclose(back, photo_rc, atol=1e-9)
    # A joint beyond the crop's bottom edge (row 128 of a 128-row crop) is missing there.
    below = crop.to_photo_rc([[128.0, 10.0]])
    np.testing.assert_array_equal(crop.to_crop_rc(below), [[-1, -1]])


def test_person_crop_puts_a_photo_point_where_the_crop_transform_says():
    photo = np.zeros((60, 50, 3), np.uint8)
    photo[30, 20] = 255  # one white pixel inside the box
    crop, transform = photos.person_crop(photo, (10, 20, 30, 60), out_H=64, out_W=32, margin=0)

    assert crop.shape == (64, 32, 3) and crop.dtype == np.uint8
    assert transform.scale == pytest.approx(32 / 20)  # box 20x40 wide/tall: already 1:2
    expected = transform.to_crop_rc([[30, 20]])[0]
    brightest = np.unravel_index(np.argmax(crop[..., 0]), crop.shape[:2])
    assert np.abs(np.array(brightest) - expected).max() <= 1.0


def test_person_crop_grows_the_box_to_the_model_aspect_and_repeats_edges_outside():
    photo = np.zeros((40, 40, 3), np.uint8)
    photo[:, 0] = (255, 0, 0)  # red left column
    # A 20x40 box touching the left edge, cropped square: it widens to 40, its left 10 columns
    # beyond the photo, where the red edge column is repeated.
    crop, transform = photos.person_crop(photo, (0, 0, 20, 40), out_H=64, out_W=64, margin=0)

    assert transform.x0 == pytest.approx(-10) and transform.scale == pytest.approx(64 / 40)
    left_of_photo = crop[:, : int(10 * transform.scale) - 2]
    np.testing.assert_array_equal(left_of_photo[..., 0], 255)
    assert crop[:, 40:, 0].max() == 0


def test_generate_reads_its_image_through_load_photo(tmp_path, monkeypatch):
    load_image = photos.load_image  # what pg2-generate reads --image with

    gradient = np.tile(np.arange(0, 256, 5, dtype=np.uint16), (3, 1))
    deep = _save(Image.fromarray(gradient * 257), tmp_path / "deep.png")
    np.testing.assert_array_equal(load_image(deep)[..., 1], gradient)  # was all white
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50)
    with pytest.raises(DataError, match="deep.png is too large"):  # was a traceback
        load_image(deep)
