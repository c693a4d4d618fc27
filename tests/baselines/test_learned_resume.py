"""Collective's and STPrivacy's fits under an MMEngine Runner, through the protocol's resume path:
the checkpoint (three optimizers, the schedule's clock) loads weights-only and the fit goes on."""
import pytest
from mmengine.runner import Runner
from torch.utils.data import Dataset

from benchmark.checkpoints import SCHEME, load, resume_checkpoint
from tests.baselines import test_collective, test_stprivacy
from tests.baselines.labelled_helpers import labelled_batch

METHODS = {'collective': (test_collective.cfg, test_collective.PARTS),
           'stprivacy': (test_stprivacy.cfg, test_stprivacy.PARTS)}


class TinyLabelledClips(Dataset):
    def __init__(self):
        self.batch = labelled_batch()

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return dict(inputs=self.batch['inputs'][i], data_samples=self.batch['data_samples'][i])


def make_runner(method, work_dir, max_iters, resume):
    cfg, parts = METHODS[method]
    resume_from = resume_checkpoint(work_dir) if resume else None
    one = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3))
    return Runner(
        model=cfg(warmup_iters={parts[1]: 1}), work_dir=str(work_dir), default_scope='benchmark',
        train_dataloader=dict(dataset=TinyLabelledClips(), batch_size=2, num_workers=0,
                              sampler=dict(type='DefaultSampler', shuffle=True),
                              collate_fn=dict(type='pseudo_collate')),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(constructor='MultiOptimWrapperConstructor', **{p: one for p in parts}),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1)),
        randomness=dict(seed=0), resume=resume_from is not None,
        load_from=f'{SCHEME}{resume_from}' if resume_from else None)


@pytest.mark.parametrize('method', sorted(METHODS))
def test_runner_trains_and_resumes(method, tmp_path):
    make_runner(method, tmp_path, 2, resume=False).train()
    saved = load(tmp_path / 'iter_2.pth', map_location='cpu')
    assert set(saved['optimizer']) == set(METHODS[method][1])
    assert int(saved['state_dict']['fit_iter']) == 2
    second = make_runner(method, tmp_path, 4, resume=True)
    second.train()
    final = load(tmp_path / 'iter_4.pth', map_location='cpu')
    assert second.iter == 4 and int(final['state_dict']['fit_iter']) == 4
    # the resumed fit trained the anonymizer: its step count went on from the checkpoint's
    steps = [s['step'] for s in final['optimizer']['anonymizer']['state'].values()]
    assert steps and all(float(s) == 4 for s in steps)
