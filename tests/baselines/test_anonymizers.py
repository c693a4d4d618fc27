"""One test over every registered anonymizer (shape, dtype, device, determinism, gradients),
then what each fixed baseline promises to do to the pixels."""
import pytest
import torch

from benchmark.anonymizer import AUX_KEYS, build_anonymizer
from benchmark.config import available_methods, resolve_config
from benchmark.data import ClipPreprocessor
from benchmark.registry import ANONYMIZERS, import_all

import_all()
METHODS = available_methods()


def _clips(n=1, t=8, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    clips = torch.rand(n, 3, t, size, size, generator=g)
    mask = torch.zeros(n, 1, t, size, size)
    mask[..., size // 4:3 * size // 4, size // 3:2 * size // 3] = 1
    depth = torch.rand(n, 1, t, size, size, generator=g) * 0.3 + 0.7 * mask
    return clips, {'mask': mask, 'depth': depth}


def _method_anonymizer(method):
    return build_anonymizer(resolve_config(method, 'vp_synth', 'smoke').anonymizer.to_dict())


def test_every_registered_anonymizer_has_a_method_config():
    used = {resolve_config(m, 'vp_synth', 'smoke').anonymizer['type'] for m in METHODS}
    assert set(ANONYMIZERS.module_dict) <= used


@pytest.mark.parametrize('method', METHODS)
def test_contract(method):
    anonymizer = _method_anonymizer(method).eval()
    assert set(anonymizer.needs) <= set(AUX_KEYS)
    assert anonymizer.table_name
    clips, aux = _clips(n=2)
    with torch.no_grad():
        out = anonymizer(clips, aux)
        again = anonymizer(clips, aux)
    assert out.shape == clips.shape and out.dtype == clips.dtype and out.device == clips.device
    assert torch.equal(out, again), 'an anonymizer in eval mode must be deterministic'
    assert torch.isfinite(out).all()


@pytest.mark.parametrize('method', [m for m in METHODS
                                    if ANONYMIZERS.get(resolve_config(m, 'vp_synth', 'smoke')
                                                       .anonymizer['type']).learns])
def test_learning_anonymizers_pass_gradients(method):
    torch.manual_seed(0)
    anonymizer = _method_anonymizer(method).train()
    clips, aux = _clips()
    clips.requires_grad_(True)
    torch.nn.functional.l1_loss(anonymizer(clips, aux), clips.detach()).backward()
    trainable = [p for p in anonymizer.parameters() if p.requires_grad]
    assert trainable and any(p.grad is not None and p.grad.abs().sum() > 0 for p in trainable)


def test_a_resynthesis_that_starts_out_of_range_still_learns():
    """A fresh re-synthesizing Collective decoder can put every pixel below 0 (about one
    initialization in fifteen); a plain clamp would then pass no gradient, and the fidelity term
    could never teach the identity."""
    anonymizer = build_anonymizer(dict(type='CollectiveTransform', width=4, blocks=1, residual=False)).train()
    torch.nn.init.constant_(anonymizer.decode[-1].bias, -5.0)
    clips, aux = _clips()
    out = anonymizer(clips, aux)
    assert torch.equal(out, torch.zeros_like(out))
    torch.nn.functional.l1_loss(out, clips).backward()
    assert anonymizer.decode[-1].bias.grad is not None and (anonymizer.decode[-1].bias.grad < 0).all()


def test_missing_aux_map_is_a_clear_error():
    clips, _ = _clips()
    with pytest.raises(ValueError, match='needs mask'):
        build_anonymizer(dict(type='Blackening'))(clips, {})


@pytest.mark.parametrize('cfg, says', [
    (dict(type='RegionBlur', sigma=-3), 'sigma=-3: it must be a number > 0'),
    (dict(type='RegionBlur', sigma=0), 'sigma=0: it must be a number > 0'),
    (dict(type='RegionBlur', sigma='six'), "sigma='six' is a str"),
    (dict(type='RegionBlur', dilate=-1), 'dilate=-1: it must be a number >= 0'),
    (dict(type='Blackening', dilate=-2.5), 'dilate=-2.5: it must be a number >= 0'),
    (dict(type='DepthImage', gamma=0), 'gamma=0: it must be a number > 0'),
    (dict(type='Downsample', factor=0), 'factor=0: it must be an integer >= 1'),
    (dict(type='Downsample', factor=1.5), 'factor=1.5: it must be an integer >= 1'),
    (dict(type='Downsample', upsample='bicubic'), "upsample='bicubic': it must be 'bilinear' or"),
])
def test_parameters_out_of_range_are_refused_by_the_constructor(cfg, says):
    """A value that would anonymize nothing (or crash later) is a one-line ValueError."""
    with pytest.raises(ValueError) as err:
        build_anonymizer(cfg)
    assert says in str(err.value) and '\n' not in str(err.value)


def test_blackening_blacks_out_the_person_and_nothing_far_from_it():
    clips, aux = _clips()
    out = build_anonymizer(dict(type='Blackening', dilate=0))(clips, aux)
    inside = aux['mask'].bool().expand_as(clips)
    assert out[inside].abs().max() == 0
    assert torch.equal(out[~inside], clips[~inside])
    grown = build_anonymizer(dict(type='Blackening', dilate=7))(clips, aux)
    assert (grown == 0).sum() > (out == 0).sum()


def test_blur_changes_only_the_region_and_strong_blurs_more():
    clips, aux = _clips(size=56)
    weak = build_anonymizer(dict(type='RegionBlur', sigma=2.0, dilate=0))(clips, aux)
    strong = build_anonymizer(dict(type='RegionBlur', sigma=6.0, dilate=0))(clips, aux)
    outside = ~aux['mask'].bool().expand_as(clips)
    assert torch.equal(weak[outside], clips[outside])
    inside = ~outside

    def roughness(x):  # mean absolute horizontal gradient inside the region
        return (x[..., 1:] - x[..., :-1]).abs()[inside[..., 1:]].mean()
    assert roughness(strong) < roughness(weak) < roughness(clips)


def test_downsampling_removes_detail_in_proportion():
    clips, _ = _clips(size=64)
    x2 = build_anonymizer(dict(type='Downsample', factor=2))(clips, None)
    x4 = build_anonymizer(dict(type='Downsample', factor=4))(clips, None)
    err2, err4 = (x2 - clips).abs().mean(), (x4 - clips).abs().mean()
    assert 0 < err2 < err4
    flat = torch.full((1, 3, 2, 16, 16), 0.25)
    assert torch.allclose(build_anonymizer(dict(type='Downsample', factor=4))(flat, None), flat)


def test_depth_image_is_the_depth_map_in_grey():
    clips, aux = _clips()
    out = build_anonymizer(dict(type='DepthImage'))(clips, aux)
    for c in range(3):
        assert torch.equal(out[:, c:c + 1], aux['depth'])


def test_preprocessor_runs_the_frozen_anonymizer_on_packed_batches():
    clips, aux = _clips(n=2)
    packed = torch.cat([clips, aux['depth'], aux['mask']], dim=1)
    packed = (packed * 255).round().to(torch.uint8)
    pre = ClipPreprocessor(aux_channels=('depth', 'mask'), anonymizer=dict(type='Blackening', dilate=0),
                           normalize=False)
    pre.train()
    assert not pre.anonymizer.training
    out = pre(dict(inputs=[packed[0][None], packed[1][None]], data_samples=[None, None]))
    assert out['inputs'].shape == (2, 1, 3, 8, 32, 32)
    person = aux['mask'].bool().expand_as(clips)
    assert out['inputs'][:, 0][person].abs().max() == 0
