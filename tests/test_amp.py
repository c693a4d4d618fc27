"""--amp (benchmark/amp.py): bf16 autocast around an mmaction2 recognizer's training step, on
the CPU as on the GPU; the wrapper each precision gets, the refusal where bf16 cannot run fast,
the precision in a run's tags and state; and the CPU runs' flushing of denormal floats."""
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


@pytest.fixture
def denormals_restored():
    """A CPU run flushes denormals for the rest of its process: give the next test what it had."""
    yield
    torch.set_flush_denormal(False)


def test_each_precision_has_its_wrapper_and_the_cpu_one_runs_the_forward_in_bf16():
    from benchmark.amp import optim_wrapper_type
    from benchmark.registry import OPTIM_WRAPPERS
    assert optim_wrapper_type(False, 'cpu') == optim_wrapper_type(False, 'cuda') == dict(type='OptimWrapper')
    assert optim_wrapper_type(True, 'cuda') == dict(type='AmpOptimWrapper', dtype='bfloat16')
    assert optim_wrapper_type(True, 'cpu') == dict(type='CPUBf16OptimWrapper')
    data = clip_batch(t=4, size=32)
    for amp, dtype in ((False, torch.float32), (True, torch.bfloat16)):
        model, _ = vit()
        float_head_outputs(model)
        seen = []
        model.cls_head.fc_cls.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        wrapper = OPTIM_WRAPPERS.build(dict(optim_wrapper_type(amp, 'cpu'),
                                            optimizer=torch.optim.SGD(model.parameters(), lr=0.1)))
        loss = model.train_step(data, wrapper)['loss']
        assert seen == [dtype] and torch.isfinite(loss)
        after = dict(model.named_parameters())
        assert all(p.dtype == torch.float32 for p in after.values())  # the weights stay float32
        assert not torch.equal(before['cls_head.fc_cls.weight'], after['cls_head.fc_cls.weight'])


def test_amp_is_refused_where_bf16_cannot_run_fast(monkeypatch, tmp_path):
    from benchmark import amp
    from benchmark.cli import main
    monkeypatch.setattr(torch.backends.mkldnn, 'is_available', lambda: False)
    assert 'oneDNN' in amp.bf16_problem('cpu')
    with pytest.raises(SystemExit, match=r'^bench: --amp on --device cpu: .*; leave out --amp$'):
        main(['run', '--method', 'raw', '--profile', 'smoke', '--amp', '--work-dir', str(tmp_path)])
    assert not (tmp_path / 'mlflow.db').exists()  # refused before anything is recorded


def test_denormals_are_flushed_on_the_cpu_and_read_back(denormals_restored):
    from benchmark.amp import flush_denormals
    from benchmark.tracking import numerics
    torch.set_flush_denormal(False)
    assert numerics()['denormals'] == 'kept'
    assert flush_denormals('cuda') is False and numerics()['denormals'] == 'kept'
    assert flush_denormals('cpu') is True
    assert numerics()['denormals'] == 'flushed'
    assert (torch.tensor([3e-39]) * 0.5).item() == 0.0


@pytest.mark.slow
def test_an_amp_run_records_bf16_and_is_never_resumed_or_reused_at_float32(tmp_path, capsys,
                                                                          denormals_restored):
    """SPAct's smoke run: the fit's wrappers, the anonymize-once pass and the target models at
    bf16 on the CPU; the precision in the run's tags and state."""
    from benchmark import amp
    from benchmark.cli import main
    from mlflow.tracking import MlflowClient
    if amp.bf16_problem('cpu'):
        pytest.skip(f'--amp cannot run on this CPU: {amp.bf16_problem("cpu")}')
    args = ['run', '--method', 'spact', '--profile', 'smoke', '--work-dir', str(tmp_path)]
    assert main(args + ['--amp']) == 0
    client = MlflowClient(f'sqlite:///{tmp_path / "mlflow.db"}')
    exp = client.get_experiment_by_name('vp_synth').experiment_id
    (run,) = client.search_runs([exp], "tags.`bench.kind` = 'parent'")
    assert run.data.tags['bench.precision'] == 'bf16' and run.data.tags['bench.denormals'] == 'flushed'
    assert run.data.tags['bench.complete'] == 'true' and 0 <= run.data.metrics['action_top1'] <= 1
    capsys.readouterr()
    assert main(args) == 2  # the same run folder without --amp
    said = capsys.readouterr().err.strip().splitlines()
    assert len(said) == 1 and 'at bf16 precision, now fp32' in said[0] and '--fresh' in said[0]
    transfer = ['run', '--method', 'spact', '--profile', 'smoke', '--train-dataset', 'vp_synth',
                '--dataset', 'vp_synth_b', '--work-dir', str(tmp_path / 'b'), '--fit-from', str(tmp_path)]
    assert main(transfer) == 2
    said = capsys.readouterr().err.strip().splitlines()
    assert len(said) == 1 and 'was fitted at bf16, this run is at fp32' in said[0] and '--amp' in said[0]
