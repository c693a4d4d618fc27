"""--amp on the target models (benchmark/amp.py): bf16 autocast around an mmaction2
recognizer's training step, on the CPU as on the GPU."""
import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope

from benchmark.amp import float_head_outputs
from benchmark.registry import MODELS, import_all
from tests.raprivacy.helpers import clip_batch

TINY_VIT = dict(embed_dims=48, depth=2, num_heads=2, img_size=32, num_frames=4)


def vit(seed: int = 0):
    import_all()
    init_default_scope('benchmark')
    cfg = Config.fromfile('benchmark/configs/_base_/models/vit_s.py').action_model.to_dict()
    cfg['backbone'].update(TINY_VIT)
    cfg['cls_head'].update(num_classes=3, in_channels=48)
    cfg['data_preprocessor'] = dict(type='ClipPreprocessor')
    torch.manual_seed(seed)
    model = MODELS.build(cfg).train()
    return model, OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))


def test_bf16_step_of_a_recognizer_needs_float_head_outputs_and_stays_near_fp32():
    data = clip_batch(t=4, size=32)
    model, wrapper = vit()
    with torch.autocast('cpu', dtype=torch.bfloat16), pytest.raises(TypeError, match='BFloat16'):
        model.train_step(data, wrapper)  # mmaction2's head accuracy goes through NumPy

    reference, ref_wrapper = vit()
    fp32 = float(reference.train_step(data, ref_wrapper)['loss'].detach())
    model, wrapper = vit()
    float_head_outputs(model)
    float_head_outputs(model)  # once per model, however often a Runner starts
    assert len(model.cls_head._forward_hooks) == 1
    with torch.autocast('cpu', dtype=torch.bfloat16):
        bf16 = float(model.train_step(data, wrapper)['loss'].detach())
    assert bf16 == pytest.approx(fp32, rel=0.05) and bf16 != fp32  # bf16's own bound: 5 %
