"""The fit's data workers end with the fit: an infinite sampler's iterator never runs out, and
its workers would otherwise outlive the stage (and break in every worker a later stage forks)."""
from mmengine.runner import Runner

from benchmark.runner import release_loader_workers
from tests.baselines import test_collective
from tests.baselines.test_learned_resume import TinyLabelledClips


def _fit_runner(work_dir, num_workers):
    one = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3))
    return Runner(
        model=test_collective.cfg(), work_dir=str(work_dir), default_scope='benchmark',
        train_dataloader=dict(dataset=TinyLabelledClips(), batch_size=2, num_workers=num_workers,
                              persistent_workers=False, sampler=dict(type='InfiniteSampler', shuffle=True),
                              collate_fn=dict(type='pseudo_collate')),
        train_cfg=dict(by_epoch=False, max_iters=2),
        optim_wrapper=dict(constructor='MultiOptimWrapperConstructor',
                           **{p: one for p in test_collective.PARTS}),
        default_hooks=dict(checkpoint=None, logger=dict(type='LoggerHook', interval=1)),
        randomness=dict(seed=0))


def test_released_fit_leaves_no_worker_alive(tmp_path):
    runner = _fit_runner(tmp_path, num_workers=1)
    runner.train()
    workers = runner.train_loop.dataloader_iterator._iterator._workers
    assert workers and all(w.is_alive() for w in workers)  # what the fit leaves behind by itself
    release_loader_workers(runner)
    assert not any(w.is_alive() for w in workers)
    release_loader_workers(runner)  # twice is harmless


def test_release_without_workers_or_loop_does_nothing(tmp_path):
    runner = _fit_runner(tmp_path / 'a', num_workers=0)
    release_loader_workers(runner)  # the loop is not built yet
    runner.train()
    release_loader_workers(runner)
    assert runner.iter == 2
