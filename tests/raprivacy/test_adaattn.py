"""AdaAttN block (Eq. 1, 2) and the decoder (Eq. 3)."""
import torch

from raprivacy.adaattn import AdaAttN, adain, adaattn_star, attention_keys, mean_std
from raprivacy.decoder import Decoder
from raprivacy.encoder import VGGEncoder


def test_keys_concatenate_all_shallower_layers_at_the_layer_size():
    enc = VGGEncoder(width=0.0625)
    feats = enc(torch.rand(2, 3, 32, 32))
    keys = attention_keys(feats, 4)
    assert keys.shape == (2, sum(enc.channels[:4]), *feats[3].shape[-2:])
    mean, std = mean_std(keys)  # each channel mean-variance normalized
    assert torch.allclose(mean, torch.zeros_like(mean), atol=1e-4)


def test_block_shapes_one_style_per_clip():
    n, t, c, ck = 2, 3, 8, 20
    block = AdaAttN(c, ck)
    out = block(torch.rand(n * t, c, 5, 6), torch.rand(n, c, 4, 4), torch.rand(n * t, ck, 5, 6),
                torch.rand(n, ck, 4, 4), frames=t)
    assert out.shape == (n * t, c, 5, 6)


def test_uniform_attention_reduces_to_adain():
    torch.manual_seed(0)
    n, t, c, ck = 2, 3, 8, 20
    block = AdaAttN(c, ck)
    with torch.no_grad():
        block.query.weight.zero_()
        block.query.bias.zero_()  # every score 0: uniform attention over style positions
        block.value.weight.copy_(torch.eye(c).view(c, c, 1, 1))
        block.value.bias.zero_()
    content, style = torch.rand(n * t, c, 5, 6), torch.rand(n, c, 4, 4) * 3 + 1
    out = block(content, style, torch.rand(n * t, ck, 5, 6), torch.rand(n, ck, 4, 4), frames=t)
    expected = adain(content, style.repeat_interleave(t, 0))
    assert torch.allclose(out, expected, atol=1e-4)


def test_attention_picks_the_matching_style_position():
    # Keys that match one style position strongly: AdaAttN* copies that position's value.
    style = torch.tensor([[1.0, 5.0]]).view(1, 1, 1, 2)  # values 1 and 5 at two positions
    style_keys = torch.tensor([[-50.0, 50.0]]).view(1, 1, 1, 2)
    content = torch.tensor([[0.0, 2.0]]).view(1, 1, 1, 2)
    content_keys = torch.ones(1, 1, 1, 2)  # query . key = +-50: all weight on position 2
    out = adaattn_star(content, style, content_keys, style_keys, frames=1)
    # mean -> 5, std -> ~sqrt(eps): output ~ 5 everywhere
    assert torch.allclose(out, torch.full_like(out, 5.0), atol=1e-2)


def test_decoder_returns_frames_of_the_input_size_odd_sizes_included():
    enc = VGGEncoder(width=0.0625)
    dec = Decoder(enc.channels)
    for size in ((32, 32), (30, 22)):
        feats = enc(torch.rand(2, 3, *size))
        assert dec(*feats[2:], size=size).shape == (2, 3, *size)


def test_a_new_block_starts_as_the_parameter_free_adaattn_star():
    n, t, c, ck = 1, 2, 4, 6
    args = (torch.rand(n * t, c, 3, 3), torch.rand(n, c, 4, 4), torch.rand(n * t, ck, 3, 3), torch.rand(n, ck, 4, 4))
    assert torch.allclose(AdaAttN(c, ck)(*args, frames=t), adaattn_star(*args, frames=t), atol=1e-5)
