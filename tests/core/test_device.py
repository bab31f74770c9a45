"""train.device -> the torch device: auto follows what torch sees, cuda without a GPU is a config error."""

import pytest
import torch

from dcgan_lab.core.device import resolve_device
from dcgan_lab.core.errors import ConfigError


def test_auto_picks_cuda_only_where_torch_sees_a_gpu():
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")


def test_cuda_without_a_gpu_says_what_to_use_instead():
    if torch.cuda.is_available():
        assert resolve_device("cuda").type == "cuda"
        return
    with pytest.raises(ConfigError, match=r"^train\.device: 'cuda' was asked for but torch sees no CUDA device; "
                                          r"use auto or cpu$"):
        resolve_device("cuda")
