"""The frozen VGG-19 encoder of the style transfer module (RAPrivacy Sec. 3.1; AdaAttN, Liu et al.,
ICCV 2021), up to relu5_1, and where its weights come from.

The paper's encoder is ImageNet VGG-19. No registry we can reach ships it, so the weights are one
of (``anonymizer.encoder.weights``):

- a path to ``vgg_normalised.pth`` (the AdaIN/AdaAttN layout: a 1x1 input conv, reflection
  padding, keys ``'0.weight'``, ``'2.weight'``, ...) or to a torchvision ``vgg19`` state dict
  (keys ``'features.0.weight'``, ...; zero padding, ImageNet mean and std folded into the input
  conv). Both are mapped to this module key by key, each shape checked.
- ``'vp_synth'``: an encoder of the same layout (at any ``width``) that the suite trains itself,
  without labels, on VP-Synth frames (``raprivacy.pretrain``), cached under the dataset cache.
- ``'random'``: random weights, only when a config asks for them; the source says so.

Pooling uses ``ceil_mode=True`` (as AdaIN's layout); on even sizes it equals torchvision's.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

# The convolutions up to relu5_1: (name, stage) in forward order. Stage s has 64 * 2**(s-1)
# channels (capped at 512) at full width; each stage ends at the relu<s>_1 that follows its pool.
VGG_CONVS = ('conv1_1', 'conv1_2', 'conv2_1', 'conv2_2', 'conv3_1', 'conv3_2', 'conv3_3', 'conv3_4',
             'conv4_1', 'conv4_2', 'conv4_3', 'conv4_4', 'conv5_1')
FULL_CHANNELS = (64, 128, 256, 512, 512)
FEATURE_LAYERS = ('relu1_1', 'relu2_1', 'relu3_1', 'relu4_1', 'relu5_1')

# Sequential indices of the same convolutions in the two public layouts.
_NORMALISED_INDEX = (2, 5, 9, 12, 16, 19, 22, 25, 29, 32, 35, 38, 42)
_TORCHVISION_INDEX = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def stage_channels(width: float) -> tuple[int, ...]:
    """Channels of relu1_1 ... relu5_1 at a channel multiplier ``width``."""
    return tuple(max(4, int(round(c * width))) for c in FULL_CHANNELS)


class VGGEncoder(nn.Module):
    """VGG-19 up to relu5_1, returning the five relu<s>_1 features.

    Args:
        width (float): Channel multiplier of the VGG-19 layout (1.0 = VGG-19). Defaults to 1.0.
        padding_mode (str): ``'reflect'`` (AdaIN layout) or ``'zeros'`` (torchvision layout).
            Defaults to ``'reflect'``.
    """

    def __init__(self, width: float = 1.0, padding_mode: str = 'reflect') -> None:
        super().__init__()
        self.width = width
        self.channels = stage_channels(width)
        # 1x1 conv on RGB in [0, 1]: holds the input normalisation of either public layout.
        self.conv0 = nn.Conv2d(3, 3, 1)
        in_ch = 3
        for name in VGG_CONVS:
            out_ch = self.channels[int(name[4]) - 1]
            setattr(self, name, nn.Conv2d(in_ch, out_ch, 3, padding=1, padding_mode=padding_mode))
            in_ch = out_ch
        self.pool = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.relu = nn.ReLU(inplace=True)

    @property
    def padding_mode(self) -> str:
        return self.conv1_1.padding_mode

    def set_padding_mode(self, mode: str) -> None:
        for name in VGG_CONVS:
            getattr(self, name).padding_mode = mode

    # The padding is part of the layout a checkpoint was trained with, so it travels with it.
    def get_extra_state(self) -> dict:
        return {'padding_mode': self.padding_mode}

    def set_extra_state(self, state: dict) -> None:
        self.set_padding_mode(state['padding_mode'])

    def forward(self, x: torch.Tensor, last: int = 5) -> list[torch.Tensor]:
        """Features relu1_1 ... relu<last>_1 of RGB images ``(B, 3, H, W)`` in [0, 1]."""
        feats = []
        x = self.conv0(x)
        stage = 1
        for name in VGG_CONVS:
            s = int(name[4])
            if s != stage:  # a new stage starts after the pool
                x = self.pool(x)
                stage = s
            x = self.relu(getattr(self, name)(x))
            if name.endswith('_1'):
                feats.append(x)
                if s == last:
                    break
        return feats


class EncoderWeightsError(ValueError):
    """Encoder weights that do not fit the VGG-19 layout."""


def load_vgg_weights(encoder: VGGEncoder, path: str | Path) -> str:
    """Load ``vgg_normalised.pth`` or a torchvision ``vgg19`` state dict into ``encoder``.

    Every convolution up to conv5_1 is mapped by its index in the file's layout and its shape
    checked; keys after conv5_1 (and torchvision's classifier) are not needed and ignored.

    Args:
        encoder (VGGEncoder): A full-width encoder (``width=1.0``).
        path (str | Path): The state dict file.

    Returns:
        str: The layout found, ``'vgg_normalised'`` or ``'torchvision'``.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f'VGG-19 weights {path} not found: set anonymizer.encoder.weights to a vgg_normalised.pth '
            f"or torchvision vgg19 state dict, or to 'vp_synth' for the suite's self-trained encoder")
    if encoder.width != 1.0:
        raise EncoderWeightsError(f'VGG-19 weights {path} need anonymizer.encoder.width=1.0, '
                                  f'got {encoder.width}')
    state = torch.load(path, map_location='cpu', weights_only=True)
    state = state.get('state_dict', state) if isinstance(state, dict) else state
    if not isinstance(state, dict):
        raise EncoderWeightsError(f'VGG-19 weights {path}: expected a state dict, got {type(state).__name__}')
    if any(k.startswith('features.') for k in state):
        layout, prefix, index = 'torchvision', 'features.', _TORCHVISION_INDEX
    elif '0.weight' in state and '2.weight' in state:
        layout, prefix, index = 'vgg_normalised', '', _NORMALISED_INDEX
    else:
        raise EncoderWeightsError(
            f"VGG-19 weights {path}: keys {sorted(state)[:4]}... match neither vgg_normalised.pth "
            f"('0.weight', '2.weight', ...) nor torchvision vgg19 ('features.0.weight', ...)")

    mapped = {}
    for name, i in zip(VGG_CONVS, index):
        for part in ('weight', 'bias'):
            key = f'{prefix}{i}.{part}'
            want = getattr(encoder, name).get_parameter(part).shape
            if key not in state:
                raise EncoderWeightsError(f'VGG-19 weights {path} ({layout}): key {key!r} for {name} '
                                          f'is missing')
            if state[key].shape != want:
                raise EncoderWeightsError(
                    f'VGG-19 weights {path} ({layout}): key {key!r} for {name} has shape '
                    f'{tuple(state[key].shape)}, VGG-19 expects {tuple(want)}')
            mapped[f'{name}.{part}'] = state[key]
    if layout == 'vgg_normalised':
        for part in ('weight', 'bias'):
            key, want = f'0.{part}', encoder.conv0.get_parameter(part).shape
            if key not in state or state[key].shape != want:
                raise EncoderWeightsError(f'VGG-19 weights {path} (vgg_normalised): key {key!r} '
                                          f'(the 1x1 input conv) is missing or not {tuple(want)}')
            mapped[f'conv0.{part}'] = state[key]
    else:
        # torchvision expects (x - mean) / std: the same map as a 1x1 conv
        std = torch.tensor(IMAGENET_STD)
        mapped['conv0.weight'] = torch.diag(1.0 / std).view(3, 3, 1, 1)
        mapped['conv0.bias'] = -torch.tensor(IMAGENET_MEAN) / std
        encoder.set_padding_mode('zeros')
    mapped['_extra_state'] = encoder.get_extra_state()
    encoder.load_state_dict(mapped, strict=True)
    return layout
