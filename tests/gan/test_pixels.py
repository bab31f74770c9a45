"""uint8 images <-> floats in data.pixel_range, and the one table that gives G's output layer for a range."""

import pytest
import torch

from dcgan_lab.gan.pixels import output_for, pixel_range_for, to_pixels, to_uint8


def test_pixel_conversion_round_trips():
    u = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    for rng in ((-1.0, 1.0), (0.0, 1.0)):
        x = to_pixels(u, rng)
        assert x.min() == rng[0] and x.max() == rng[1]
        assert torch.equal(to_uint8(x, rng), u)


def test_to_uint8_rounds_and_clamps_what_g_outputs():
    x = torch.tensor([-1.5, -1.0, 0.0, 0.999, 1.0, 7.0]).view(1, 1, 2, 3)
    assert to_uint8(x, (-1.0, 1.0)).flatten().tolist() == [0, 0, 128, 255, 255, 255]
    assert to_uint8(torch.tensor([0.5]), (0.0, 1.0)).item() == 128


def test_output_layer_and_pixel_range_map_to_each_other():
    assert output_for((-1.0, 1.0)) == "tanh" and output_for([0.0, 1.0]) == "sigmoid"
    assert pixel_range_for("tanh") == (-1.0, 1.0) and pixel_range_for("sigmoid") == (0.0, 1.0)
    with pytest.raises(KeyError):
        output_for((0.0, 255.0))
