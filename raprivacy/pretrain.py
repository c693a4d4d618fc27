"""The suite's own VGG-19-layout encoder, for machines without ImageNet VGG-19 weights.

RAPrivacy (Sec. 3.1) uses an ImageNet VGG-19 that no reachable registry ships. The embedded
default (``anonymizer.encoder.weights='vp_synth'``) trains an encoder of the same layout, at the
configured width, on VP-Synth RGB frames without any label: it is the encoder half of an
autoencoder whose decoder is the style transfer decoder of Eq. 3 fed with the content's own
relu3_1, relu4_1 and relu5_1 features, trained to reconstruct the frame (mean squared error).
Frames are upsampled by ``scale`` (bilinear) before the encoder, as the anonymizer does with
the same setting: at cpu size (56 px) relu3_1 is 14x14 and a limb narrower than one cell; at
twice the size the decoder can bring limbs back. Convolutions start from He initialisation
(a plain 22-convolution network from PyTorch's default initialisation barely leaves the mean
image in a few hundred steps). The decoder half is kept too: the anonymizer may start its
decoder from it (a reconstruction warm-up, as SPAct warms up its anonymizer), which the paper,
starting from AdaAttN, does not need.

After training, every channel of relu1_1 ... relu5_1 is rescaled to mean activation 1 over the
training frames, the convention of ``vgg_normalised.pth`` (Gatys et al., 2016), with the inverse
scale folded into the next layer and into the decoder, so the autoencoder computes the same
function. The feature scale then matches the one AdaAttN's loss weights (10 and 3) were set for.

The result is cached under ``$BENCH_CACHE`` (default ``~/.cache/raprivacy-bench``), the dataset
cache, in ``raprivacy/`` keyed by a hash of the settings, so every run after the first reuses it.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from benchmark import console
from raprivacy.decoder import Decoder
from raprivacy.encoder import VGG_CONVS, VGGEncoder

# Bump when the recipe changes, so cached encoders of an older recipe are not reused.
RECIPE_VERSION = 4


def cache_root() -> Path:
    return Path(os.environ.get('BENCH_CACHE') or Path.home() / '.cache' / 'raprivacy-bench').expanduser()


def vp_synth_frames(num_frames: int, size: int, seed: int) -> np.ndarray:
    """``uint8 (M, size, size, 3)`` RGB frames spread over the VP-Synth training videos."""
    from benchmark.datasets.vp_synth import VPSynthSource  # the generator is optional here
    source = VPSynthSource(split='train', size=size)
    rng = np.random.default_rng(seed)
    per_video = max(1, num_frames // len(source))
    frames = []
    for i in rng.permutation(len(source)):
        n = source.num_frames(int(i))
        idx = np.sort(rng.choice(n, min(n, per_video), replace=False))
        frames.extend(np.asarray(source.read(int(i), idx))[..., :3])
        if len(frames) >= num_frames:
            break
    return np.stack(frames[:num_frames])


def pretrain_settings(width: float, size: int = 56, steps: int = 600, batch: int = 32,
                      lr: float = 1e-3, num_frames: int = 2048, seed: int = 0, scale: int = 1) -> dict:
    """The settings that define a self-trained encoder (and its cache key); see ``pretrained_encoder``."""
    return dict(width=float(width), size=int(size), steps=int(steps), batch=int(batch), lr=float(lr),
                num_frames=int(num_frames), seed=int(seed), scale=int(scale), recipe=RECIPE_VERSION)


def cache_path(settings: dict, data_key: str) -> Path:
    key = hashlib.sha256(json.dumps({**settings, 'data': data_key}, sort_keys=True).encode()).hexdigest()[:12]
    return cache_root() / 'raprivacy' / f'vgg19-{data_key}-w{settings["width"]:g}-{key}.pth'


@torch.no_grad()
def normalise_activations(encoder: VGGEncoder, decoder: Decoder, images: torch.Tensor) -> None:
    """Rescale relu<s>_1 channels to mean activation 1 on ``images``, keeping the autoencoder's output.

    Positive per-channel scales commute with ReLU and max pooling, so scaling conv<s>_1's output
    channels by ``a`` and the next layer's input weights by ``1 / a`` changes only the features.
    Channels that (nearly) never fire on ``images`` are scaled as if their mean were 5% of the
    layer's median channel mean: dividing by their own tiny mean would blow up their response to
    any other image (a scale of 1e6 was seen).
    """
    feats = encoder(images)
    scales = []
    for s, feat in enumerate(feats, start=1):
        mean = feat.mean(dim=(0, 2, 3))
        live = mean[mean > 0]
        floor = 0.05 * live.median() if len(live) else torch.ones(())
        a = 1.0 / mean.clamp_min(float(floor))
        scales.append(a)
        conv = getattr(encoder, f'conv{s}_1')
        conv.weight.mul_(a.view(-1, 1, 1, 1))
        conv.bias.mul_(a)
        i = VGG_CONVS.index(f'conv{s}_1')
        if i + 1 < len(VGG_CONVS):
            getattr(encoder, VGG_CONVS[i + 1]).weight.div_(a.view(1, -1, 1, 1))
    a3, a4, a5 = scales[2:]
    # decoder: from5(f5) + f4 must come out scaled like f4; stage 4 and merge3 undo the scales
    from5 = decoder.from5[0]
    from5.weight.div_(a5.view(1, -1, 1, 1)).mul_(a4.view(-1, 1, 1, 1))
    from5.bias.mul_(a4)
    decoder.stage4[0][0].weight.div_(a4.view(1, -1, 1, 1))
    decoder.merge3[0].weight[:, len(a3):].div_(a3.view(1, -1, 1, 1))


def train_autoencoder(frames: np.ndarray, settings: dict) -> tuple[dict, dict, float]:
    """Train encoder and decoder to reconstruct ``frames``; returns their states and the last loss.
    Its progress (steps, rate, ETA, reconstruction error) is a bar on the current console."""
    gen = torch.Generator().manual_seed(settings['seed'])
    torch.manual_seed(settings['seed'])
    encoder = VGGEncoder(settings['width'])
    decoder = Decoder(encoder.channels)
    for module in (*encoder.modules(), *decoder.modules()):
        if isinstance(module, torch.nn.Conv2d) and module.kernel_size != (1, 1):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity='relu')
            torch.nn.init.zeros_(module.bias)
    scale = settings.get('scale', 1)

    def upscale(x: torch.Tensor) -> torch.Tensor:
        if scale == 1:
            return x
        return F.interpolate(x, scale_factor=scale, mode='bilinear', align_corners=False)
    data = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)  # uint8 (M, 3, H, W)
    size = settings['size']
    if data.shape[-2:] != (size, size):
        data = F.interpolate(data.float(), size=(size, size), mode='bilinear', antialias=True,
                             align_corners=False).round().clamp(0, 255).to(torch.uint8)
    params = list(encoder.parameters()) + list(decoder.parameters())
    opt = torch.optim.Adam(params, lr=settings['lr'])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, settings['steps'])
    loss = torch.zeros(())
    with console.current().progress('encoder pretraining', settings['steps'], 'step') as bar:
        for _ in range(settings['steps']):
            idx = torch.randint(0, len(data), (settings['batch'],), generator=gen)
            x = data[idx].float().div_(255.0)
            flip = torch.rand(len(x), generator=gen) < 0.5
            x[flip] = x[flip].flip(-1)
            x = upscale(x)
            feats = encoder(x)
            loss = F.mse_loss(decoder(*feats[2:], size=x.shape[-2:]), x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update(loss={'reconstruction mse': loss.item()})
    calibration = upscale(data[torch.randperm(len(data), generator=gen)[:256]].float().div_(255.0))
    normalise_activations(encoder, decoder, calibration)
    return encoder.state_dict(), decoder.state_dict(), float(loss.item())


def pretrained_encoder(width: float, frames: Callable[[int, int, int], np.ndarray] | np.ndarray | None = None,
                       data_key: str = 'vp_synth', log: Callable[[str], None] = print, **settings) -> dict:
    """The self-trained encoder (and decoder) for ``width``, trained once and then read from cache.

    Args:
        width (float): Channel multiplier of the VGG-19 layout.
        frames (callable | array, optional): ``frames(num, size, seed)`` returning uint8
            ``(M, H, W, 3)``, or such an array; ``None`` reads VP-Synth training frames.
            Defaults to None.
        data_key (str): Names the frames in the cache key; with VP-Synth's frames the
            generator version is appended (``vp_synth-g2``). Defaults to ``'vp_synth'``.
        log (callable): Progress messages. Defaults to print.
        **settings: ``size``, ``steps``, ``batch``, ``lr``, ``num_frames``, ``seed``, ``scale``
            of ``pretrain_settings``.

    Returns:
        dict: ``encoder`` and ``decoder`` state dicts, ``settings``, ``final_mse``, ``path``.
    """
    settings = pretrain_settings(width, **settings)
    if frames is None:  # VP-Synth's frames: a new generator draws other frames, so another key
        from benchmark.datasets.vp_synth import GENERATOR_VERSION
        data_key = f'{data_key}-g{GENERATOR_VERSION}'
    path = cache_path(settings, data_key)
    if path.is_file():
        return torch.load(path, map_location='cpu', weights_only=True)
    if frames is None:
        frames = vp_synth_frames
    if callable(frames):
        frames = frames(settings['num_frames'], settings['size'], settings['seed'])
    log(f'[raprivacy] training the {data_key} VGG-19-layout encoder (width {width:g}); cached at {path}')
    enc, dec, mse = train_autoencoder(np.asarray(frames), settings)
    record = dict(encoder=enc, decoder=dec, settings=settings, final_mse=mse, path=str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f'.tmp{os.getpid()}')
    torch.save(record, tmp)
    tmp.replace(path)  # atomic: parallel runs never read a half-written file
    return record
