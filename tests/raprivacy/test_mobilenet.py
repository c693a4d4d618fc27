"""The MobileNetV2 encoder: torchvision's layout, its taps, its weights (fetched and verified)."""
import subprocess

import pytest
import torch

from benchmark.anonymizer import build_anonymizer
from raprivacy import mobilenet
from raprivacy.encoder import EncoderWeightsError
from raprivacy.mobilenet import (TAP_LAYER, TAPS, WEIGHTS_FILE, WEIGHTS_SHA256, MobileNetV2, MobileNetV2Encoder,
                                 imagenet_weights, load_mobilenet_v2, sha256)
from tests.raprivacy.helpers import tiny_anonymizer_cfg


def test_layout_is_torchvisions_key_for_key():
    state = MobileNetV2().state_dict()
    assert len(state) == 314  # the count in torchvision's mobilenet_v2-b0353104.pth
    shapes = {'features.0.0.weight': (32, 3, 3, 3), 'features.1.conv.0.0.weight': (32, 1, 3, 3),
              'features.1.conv.1.weight': (16, 32, 1, 1), 'features.2.conv.0.0.weight': (96, 16, 1, 1),
              'features.17.conv.3.running_var': (320,), 'features.18.0.weight': (1280, 320, 1, 1),
              'classifier.1.weight': (1000, 1280)}
    assert {k: tuple(state[k].shape) for k in shapes} == shapes


def test_encoder_taps_strides_and_channels():
    encoder = MobileNetV2Encoder()
    feats = encoder(torch.rand(2, 3, 64, 64))
    assert [tuple(f.shape[1:]) for f in feats] == [(32, 32, 32), (32, 32, 32), (96, 16, 16), (144, 8, 8),
                                                  (192, 4, 4)]
    assert encoder.channels == tuple(c for *_, c in TAPS) and len(encoder.features) == 8


def _unfolded_taps(encoder, x):
    """The taps with every module run as it is (batch norm after its convolution)."""
    x = (x - encoder.mean) / encoder.std
    feats = []
    for i, block in enumerate(encoder.features):
        if i not in TAP_LAYER:
            x = block(x)
            continue
        for j, layer in enumerate([block] if TAP_LAYER[i] is None else block.conv):
            x = layer(x)
            if TAP_LAYER[i] in (None, j):
                feats.append(x * getattr(encoder, f'tap_scale{len(feats) + 1}'))
                if len(feats) == len(TAPS):
                    return feats


def test_folded_batch_norm_gives_the_modules_taps_and_input_gradient():
    """The encoder folds each frozen batch norm into its convolution: the taps, and the gradient
    the style losses send back through them to the image, are those of the modules (the
    residual block 3, between taps 3 and 4, included), and the state dict is untouched."""
    torch.manual_seed(0)
    encoder = MobileNetV2Encoder()
    with torch.no_grad():
        for m in encoder.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.3, 3.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
    encoder.normalise_taps()
    keys = set(encoder.state_dict())
    x = torch.rand(2, 3, 48, 48, requires_grad=True)
    folded = encoder(x)
    (g_folded,) = torch.autograd.grad(sum(f.square().mean() for f in folded), x)
    plain = _unfolded_taps(encoder, x)
    (g_plain,) = torch.autograd.grad(sum(f.square().mean() for f in plain), x)
    for a, b in zip(folded, plain):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)
    assert torch.allclose(g_folded, g_plain, rtol=1e-3, atol=1e-7)
    assert set(encoder.state_dict()) == keys


def test_tap_scales_are_one_over_the_mean_activation_the_batch_norm_implies():
    encoder = MobileNetV2Encoder()
    # gamma 1, beta 0: E[ReLU6(Y)] for Y ~ N(0, 1) is the normal density at 0, 0.3989
    assert torch.allclose(encoder.tap_scale1, torch.full_like(encoder.tap_scale1, 1 / 0.398942), rtol=1e-4)
    bn = encoder.tapped()[2][1]
    with torch.no_grad():
        bn.bias[:3] = torch.tensor([1.0, 4.0, -1.0])
        bn.weight[:3] = torch.tensor([2.0, 3.0, 1.5])
    encoder.normalise_taps()
    samples = torch.distributions.Normal(bn.bias[:3, None], bn.weight[:3, None]).sample((200_000,))
    assert torch.allclose(1 / encoder.tap_scale3.view(-1)[:3], samples.clamp(0, 6).mean(0).view(-1), rtol=0.02)


def test_encoder_stays_in_eval_mode_inside_a_training_anonymizer():
    anon = build_anonymizer(dict(tiny_anonymizer_cfg(), encoder=dict(type='mobilenet_v2', weights='random')))
    anon.train()
    assert not anon.encoder.training and anon.adaattn.training
    stats = anon.encoder.features[0][1].running_mean.clone()
    anon(torch.rand(1, 3, 2, 32, 32))
    assert torch.equal(stats, anon.encoder.features[0][1].running_mean)
    assert anon.encoder_source.startswith('random (explicit opt-in: untrained MobileNetV2')
    assert anon(torch.rand(1, 3, 2, 32, 32)).shape == (1, 3, 2, 32, 32)


def test_no_network_is_one_line_naming_the_file_to_supply(tmp_path, monkeypatch):
    def offline(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 1, '', 'WARNING: retrying\nERROR: No matching distribution found')
    monkeypatch.setattr(mobilenet.subprocess, 'run', offline)
    with pytest.raises(mobilenet.WeightsDownloadError) as err:
        imagenet_weights(cache_dir=tmp_path, log=lambda m: None)
    message = str(err.value)
    assert '\n' not in message and 'No matching distribution found' in message
    assert str(tmp_path / WEIGHTS_FILE) in message and 'anonymizer.encoder.weights' in message


def test_a_cached_file_with_another_hash_is_refused(tmp_path):
    (tmp_path / WEIGHTS_FILE).write_bytes(b'not the checkpoint')
    with pytest.raises(EncoderWeightsError, match=f'have SHA-256 .* not {WEIGHTS_SHA256[:16]}') as err:
        imagenet_weights(cache_dir=tmp_path)
    assert '\n' not in str(err.value) and str(tmp_path / WEIGHTS_FILE) in str(err.value)


def test_a_file_of_another_layout_is_refused(tmp_path):
    torch.save({'conv.weight': torch.zeros(1)}, tmp_path / 'other.pth')
    with pytest.raises(EncoderWeightsError, match="do not fit torchvision's MobileNetV2 layout: Missing"):
        load_mobilenet_v2(MobileNetV2Encoder(), tmp_path / 'other.pth')
    with pytest.raises(FileNotFoundError, match='anonymizer.encoder.weights'):
        load_mobilenet_v2(MobileNetV2Encoder(), tmp_path / 'absent.pth')


def natural_image(size: int = 112, seed: int = 0) -> torch.Tensor:
    """Coloured noise with a natural image's 1/f amplitude spectrum, in [0, 1]."""
    gen = torch.Generator().manual_seed(seed)
    freq = torch.fft.fftfreq(size).abs()
    radius = (freq[:, None] ** 2 + freq[None, :] ** 2).sqrt().clamp_min(1.0 / size)
    phase = torch.rand(3, size, size, generator=gen) * 2 * torch.pi
    image = torch.fft.ifft2(torch.polar(1.0 / radius, phase)).real
    image = image - image.amin(dim=(1, 2), keepdim=True)
    return (image / image.amax(dim=(1, 2), keepdim=True)).unsqueeze(0)


def test_imagenet_weights_are_fetched_verified_and_load_strict(imagenet_mobilenet):
    assert imagenet_mobilenet.name == WEIGHTS_FILE and sha256(imagenet_mobilenet) == WEIGHTS_SHA256
    state = torch.load(imagenet_mobilenet, map_location='cpu', weights_only=True)
    MobileNetV2().load_state_dict(state, strict=True)
    anon = build_anonymizer(dict(tiny_anonymizer_cfg(), encoder=dict(type='mobilenet_v2', weights='imagenet')))
    assert anon.encoder_source.startswith('ImageNet MobileNetV2') and 'SHA-256 verified' in anon.encoder_source
    with torch.no_grad():
        natural = anon.encoder(natural_image(224))
        flat = anon.encoder(torch.full((1, 3, 224, 224), 0.5))
    assert [tuple(f.shape[1:]) for f in natural] == [(32, 112, 112), (32, 112, 112), (96, 56, 56),
                                                    (144, 28, 28), (192, 14, 14)]
    for tap, (a, b) in enumerate(zip(natural, flat), start=1):
        assert 0.3 < a.mean() < 3, tap  # divided by the mean over ImageNet: of the order of 1
        # a constant image varies only through the zero padding at the borders; a natural one
        # everywhere, and its responses differ from the constant image's
        assert a.std(dim=(2, 3)).mean() > 2 * b.std(dim=(2, 3)).mean(), tap
        assert (a - b).abs().mean() > 0.2 * b.abs().mean(), tap
