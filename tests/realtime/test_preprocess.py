"""crop_squares / crop_faces / to_model_input: geometry, borders, shapes and normalization."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from fer_live.infer.card import CropFraming
from fer_live.infer.preprocess import crop_faces, crop_squares, to_model_input


def gradient_image(h: int = 100, w: int = 120) -> np.ndarray:
    """BGR image whose gray value encodes position (so crops are checkable)."""
    ys, xs = np.mgrid[0:h, 0:w]
    gray = ((xs + 2 * ys) % 256).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)


@pytest.mark.parametrize(
    ("framing", "expected"),
    [
        (CropFraming(), [30.0, 40.0, 20.0]),
        (CropFraming(scale=1.5), [30.0, 40.0, 30.0]),
        (CropFraming(scale=1.0, shift_x=0.1, shift_y=-0.25), [32.0, 35.0, 20.0]),
    ],
)
def test_crop_squares_follow_the_framing(framing, expected):
    squares = crop_squares(np.array([[20, 30, 40, 50]], np.float32), framing)
    np.testing.assert_allclose(squares[0], expected)


def test_crop_inside_the_image_is_the_resized_region(tiny_model_card):
    # given a 32 px card with identity framing and a 32 px box inside the image
    image = gradient_image()
    # when
    crops = crop_faces(image, np.array([[10, 20, 42, 52]], np.float32), tiny_model_card)
    # then the crop is exactly the region (no resize needed)
    assert crops.shape == (1, 32, 32) and crops.dtype == np.uint8
    np.testing.assert_array_equal(crops[0], image[20:52, 10:42, 0])


def test_crop_outside_the_borders_replicates_edges(tiny_model_card):
    image = gradient_image()
    crops = crop_faces(image, np.array([[-16, -16, 16, 16]], np.float32), tiny_model_card)
    assert crops.shape == (1, 32, 32)
    # the part left of / above the image repeats the first column / row
    np.testing.assert_array_equal(crops[0, 16:, :16], np.repeat(image[0:16, :1, 0], 16, axis=1))
    np.testing.assert_array_equal(crops[0, 16:, 16:], image[0:16, 0:16, 0])
    # a box completely outside the image gives a black crop, not an error
    far = crop_faces(image, np.array([[500, 500, 540, 540]], np.float32), tiny_model_card)
    assert far.shape == (1, 32, 32) and not far.any()


def test_large_box_is_area_resized(tiny_model_card):
    image = gradient_image(200, 200)
    crops = crop_faces(image, np.array([[0, 0, 128, 128]], np.float32), tiny_model_card)
    expected = cv2.resize(image[:128, :128, 0], (32, 32), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(crops[0], expected)


def test_rgb_card_gives_rgb_crops(tiny_model_card):
    card = dataclasses.replace(tiny_model_card, channels=3, mean=(0.5,) * 3, std=(0.5,) * 3)
    image = np.zeros((64, 64, 3), np.uint8)
    image[..., 0] = 255  # pure blue in BGR
    crops = crop_faces(image, np.array([[0, 0, 32, 32]], np.float32), card)
    assert crops.shape == (1, 32, 32, 3)
    assert (crops[0, ..., 2] == 255).all() and (crops[0, ..., 0] == 0).all()
    pixels = to_model_input(crops, card)
    assert pixels.shape == (1, 3, 32, 32)
    np.testing.assert_allclose(pixels[0, :, 0, 0], [-1.0, -1.0, 1.0])


def test_no_boxes_give_empty_crops(tiny_model_card):
    crops = crop_faces(gradient_image(), np.zeros((0, 4), np.float32), tiny_model_card)
    assert crops.shape == (0, 32, 32)
    assert to_model_input(crops, tiny_model_card).shape == (0, 1, 32, 32)


@pytest.mark.parametrize(
    ("mean", "std", "value", "expected"),
    [((0.5,), (0.5,), 0, -1.0), ((0.5,), (0.5,), 255, 1.0), ((0.0,), (1.0,), 51, 0.2)],
)
def test_normalization_values(tiny_model_card, mean, std, value, expected):
    card = dataclasses.replace(tiny_model_card, mean=mean, std=std)
    faces = np.full((2, 32, 32), value, np.uint8)
    pixels = to_model_input(faces, card)
    assert pixels.dtype == np.float32 and pixels.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(pixels, expected, rtol=1e-6, atol=1e-6)


def test_48px_faces_are_resized_to_the_card(tiny_model_card):
    faces = np.random.default_rng(0).integers(0, 256, (3, 48, 48), dtype=np.uint8)
    pixels = to_model_input(faces, tiny_model_card)
    assert pixels.shape == (3, 1, 32, 32)


def test_bad_faces_raise(tiny_model_card):
    with pytest.raises(ValueError, match="uint8"):
        to_model_input(np.zeros((1, 32, 32), np.float32), tiny_model_card)


@pytest.mark.parametrize("shape", [(0, 48, 48), (0, 48, 48, 3)])
def test_empty_batch_has_the_model_input_shape(tiny_model_card, shape):
    # given no faces, of any size or channel count
    faces = np.zeros(shape, np.uint8)
    # when normalized
    pixels = to_model_input(faces, tiny_model_card)
    # then the empty batch still has the model's (C, S, S)
    size = tiny_model_card.input_size
    assert pixels.shape == (0, tiny_model_card.channels, size, size)
    assert pixels.dtype == np.float32


def test_crops_equal_cutting_the_whole_converted_frame(tiny_model_card):
    # given a colourful frame and boxes inside, across the borders, enlarged and far outside
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    card = dataclasses.replace(tiny_model_card, crop=CropFraming(scale=1.3, shift_y=-0.05))
    boxes = np.array(
        [[30, 20, 90, 80], [-20, -10, 40, 50], [120, 90, 190, 150], [5, 5, 150, 115],
         [400, 400, 450, 450]], np.float32,
    )  # fmt: skip
    # when the crops are cut (each face's region converted to gray on its own)
    crops = crop_faces(image, boxes, card)
    # then they are the crops of the whole frame converted first, pixel for pixel (a gray frame
    # given as three equal channels converts to itself)
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    assert np.array_equal(cv2.cvtColor(np.dstack([gray] * 3), cv2.COLOR_BGR2GRAY), gray)
    np.testing.assert_array_equal(crops, crop_faces(np.dstack([gray] * 3), boxes, card))
