"""Encoder weights: the two public VGG-19 layouts, their errors, and the self-trained encoder."""
import numpy as np
import pytest
import torch
from torch import nn

from raprivacy.encoder import EncoderWeightsError, VGGEncoder, load_vgg_weights
from raprivacy.pretrain import pretrained_encoder

PLAN = [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 256, 'M', 512, 512, 512, 512, 'M', 512]


def normalised_layout() -> nn.Sequential:
    """AdaIN's vgg_normalised layout up to relu5_1 (1x1 conv, reflection padding)."""
    layers, cin = [nn.Conv2d(3, 3, 1)], 3
    for v in PLAN:
        if v == 'M':
            layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
        else:
            layers += [nn.ReflectionPad2d(1), nn.Conv2d(cin, v, 3), nn.ReLU()]
            cin = v
    return nn.Sequential(*layers)


def torchvision_layout() -> nn.Sequential:
    layers, cin = [], 3
    for v in PLAN:
        if v == 'M':
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU()]
            cin = v
    return nn.Sequential(*layers)


def test_vgg_normalised_maps_key_by_key(tmp_path):
    torch.manual_seed(0)
    ref = normalised_layout()
    torch.save(ref.state_dict(), tmp_path / 'vgg_normalised.pth')
    enc = VGGEncoder(1.0)
    assert load_vgg_weights(enc, tmp_path / 'vgg_normalised.pth') == 'vgg_normalised'
    x = torch.rand(1, 3, 32, 32)
    assert torch.allclose(enc(x)[-1], ref(x), atol=1e-5)  # relu5_1 is the Sequential's end


def test_torchvision_vgg19_maps_with_imagenet_normalisation(tmp_path):
    torch.manual_seed(0)
    ref = torchvision_layout()
    state = {f'features.{k}': v for k, v in ref.state_dict().items()}
    state['classifier.0.weight'] = torch.zeros(2, 2)  # the classifier is ignored
    torch.save(state, tmp_path / 'vgg19.pth')
    enc = VGGEncoder(1.0)
    assert load_vgg_weights(enc, tmp_path / 'vgg19.pth') == 'torchvision'
    x = torch.rand(1, 3, 32, 32)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    assert torch.allclose(enc(x)[-1], ref((x - mean) / std), atol=1e-4)
    # the zero padding of this layout travels with the state dict
    other = VGGEncoder(1.0)
    other.load_state_dict(enc.state_dict())
    assert other.padding_mode == 'zeros'


def test_shape_mismatch_names_the_key(tmp_path):
    state = normalised_layout().state_dict()
    state['9.weight'] = torch.zeros(128, 32, 3, 3)
    torch.save(state, tmp_path / 'bad.pth')
    with pytest.raises(EncoderWeightsError, match=r"'9.weight' for conv2_1 has shape \(128, 32, 3, 3\)"):
        load_vgg_weights(VGGEncoder(1.0), tmp_path / 'bad.pth')


def test_missing_key_unknown_layout_missing_file_and_thin_width(tmp_path):
    state = normalised_layout().state_dict()
    del state['42.bias']
    torch.save(state, tmp_path / 'short.pth')
    with pytest.raises(EncoderWeightsError, match="'42.bias' for conv5_1 is missing"):
        load_vgg_weights(VGGEncoder(1.0), tmp_path / 'short.pth')
    torch.save({'conv.weight': torch.zeros(1)}, tmp_path / 'other.pth')
    with pytest.raises(EncoderWeightsError, match='match neither'):
        load_vgg_weights(VGGEncoder(1.0), tmp_path / 'other.pth')
    with pytest.raises(FileNotFoundError, match='anonymizer.encoder.weights'):
        load_vgg_weights(VGGEncoder(1.0), tmp_path / 'absent.pth')
    with pytest.raises(EncoderWeightsError, match='width=1.0'):
        load_vgg_weights(VGGEncoder(0.5), tmp_path / 'short.pth')


def test_self_trained_encoder_learns_and_is_cached(tmp_path, monkeypatch):
    monkeypatch.setenv('BENCH_CACHE', str(tmp_path))
    rng = np.random.default_rng(0)
    frames = np.zeros((16, 24, 24, 3), dtype=np.uint8)
    for f in frames:  # bright squares on dark ground: learnable in a few steps
        y, x = rng.integers(0, 18, 2)
        f[y:y + 6, x:x + 6] = rng.integers(100, 256, 3)
    calls = []

    def source(num, size, seed):
        calls.append((num, size, seed))
        return frames

    settings = dict(size=24, steps=40, batch=8, lr=3e-3, num_frames=16)
    first = pretrained_encoder(0.0625, frames=source, data_key='squares', log=lambda m: None, **settings)
    second = pretrained_encoder(0.0625, frames=source, data_key='squares', log=lambda m: None, **settings)
    assert len(calls) == 1  # the second call read the cache
    assert first['path'].startswith(str(tmp_path)) and (tmp_path / 'raprivacy').is_dir()
    baseline = float(((frames / 255.0) ** 2).mean())  # mse of an all-black reconstruction
    assert first['final_mse'] < baseline
    for k, v in first['encoder'].items():
        if isinstance(v, torch.Tensor):
            assert torch.equal(v, second['encoder'][k])
    assert pretrained_encoder(0.0625, frames=source, data_key='squares', log=lambda m: None,
                              **{**settings, 'steps': 41})['path'] != first['path']


def test_activation_normalisation_keeps_the_autoencoder_and_gives_unit_means():
    from raprivacy.decoder import Decoder
    from raprivacy.pretrain import normalise_activations
    torch.manual_seed(0)
    enc = VGGEncoder(0.0625)
    dec = Decoder(enc.channels)
    images = torch.rand(6, 3, 32, 32)
    with torch.no_grad():  # a channel that barely fires: its scale must stay bounded
        enc.conv1_1.bias[0] = -10.0
    before = dec(*enc(images)[2:], size=(32, 32))
    means_before = [f.mean(dim=(0, 2, 3)) for f in enc(images)]
    normalise_activations(enc, dec, images)
    feats = enc(images)
    for f, m0 in zip(feats, means_before):
        mean = f.mean(dim=(0, 2, 3))
        usual = m0 >= 0.05 * m0[m0 > 0].median()
        assert torch.allclose(mean[usual], torch.ones_like(mean[usual]), atol=1e-3)
        assert (mean[~usual] < 1).all()
    assert enc.conv1_1.weight[0].abs().max() < 1e3
    assert torch.allclose(dec(*feats[2:], size=(32, 32)), before, atol=1e-4)
