"""Stage checkpoints: an interrupted stage resumes bit-identically, and loading runs no code.

A toy MMEngine stage whose data and model draw from torch's, numpy's and Python's global
generators (as ClipDataset's crops and a model's dropout do) is trained without a break, and
again with an interruption after a checkpoint; the resumed weights must equal the
uninterrupted ones bit for bit. Without RandomStateHook they do not, which shows the test can
see the drift it guards against.
"""
import os
import pickle
import random
import time

import numpy as np
import pytest
import torch
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import Dataset

from benchmark.checkpoints import (SCHEME, RandomStateHook, StageTimeHook, load, prune, random_state,
                                   resume_checkpoint, set_random_state, stage_time, training_checkpoints)
from benchmark.errors import ProtocolError


class DrawingDataset(Dataset):
    """Items drawn from torch's global generator, like ClipDataset's training crops."""

    def __len__(self) -> int:
        return 12

    def __getitem__(self, i: int) -> dict:
        return dict(inputs=torch.rand(6) + i / 12)


class DrawingModel(BaseModel):
    """A linear model with dropout (torch) and noise from numpy and Python's random."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 1)
        self.drop = nn.Dropout(0.5)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        x = torch.stack(inputs) + float(np.random.rand()) + random.random()
        out = self.fc(self.drop(x))
        return dict(loss=out.pow(2).mean()) if mode == 'loss' else out


class Interrupt(Exception):
    pass


class InterruptAt(Hook):
    """Raises once the loop reaches ``point`` (an epoch or an iteration), like a kill."""

    priority = 'VERY_LOW'

    def __init__(self, by_epoch: bool, point: int) -> None:
        self.by_epoch, self.point = by_epoch, point

    def before_train_epoch(self, runner) -> None:
        if self.by_epoch and runner.epoch == self.point:
            raise Interrupt

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        if not self.by_epoch and runner.iter == self.point:
            raise Interrupt


def _train(work_dir, by_epoch: bool, hooks: list, resume=None) -> dict:
    loop = dict(by_epoch=True, max_epochs=4) if by_epoch else dict(by_epoch=False, max_iters=10)
    torch.manual_seed(0)  # the model is built before the runner seeds the generators
    runner = Runner(
        model=DrawingModel(), work_dir=str(work_dir),
        train_dataloader=dict(dataset=DrawingDataset(), batch_size=3, num_workers=0,
                              sampler=dict(type='DefaultSampler' if by_epoch else 'InfiniteSampler',
                                           shuffle=True),
                              collate_fn=dict(type='pseudo_collate')),
        train_cfg=loop, optim_wrapper=dict(optimizer=dict(type='SGD', lr=1e-3)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', by_epoch=by_epoch,
                                           interval=1 if by_epoch else 2),
                           logger=dict(type='LoggerHook', interval=100)),
        custom_hooks=hooks, randomness=dict(seed=3), log_level='WARNING',
        default_scope='benchmark',  # as the protocol's: a runner makes its scope the current one
        load_from=f'{SCHEME}{resume}' if resume else None, resume=resume is not None,
        experiment_name=f'toy_{time.time_ns()}')
    runner.train()
    return {k: v.clone() for k, v in runner.model.state_dict().items()}


def _interrupted_then_resumed(work_dir, by_epoch: bool, with_hook: bool) -> dict:
    hooks = [RandomStateHook()] if with_hook else []
    point = 2 if by_epoch else 5
    with pytest.raises(Interrupt):
        _train(work_dir, by_epoch, hooks + [InterruptAt(by_epoch, point)])
    ckpt = resume_checkpoint(work_dir)
    assert ckpt is not None and ckpt.name == ('epoch_2.pth' if by_epoch else 'iter_4.pth')
    return _train(work_dir, by_epoch, [RandomStateHook()] if with_hook else [], resume=ckpt)


def _same(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize('by_epoch', [True, False], ids=['epochs', 'iterations'])
def test_a_resumed_stage_is_bit_identical_to_an_uninterrupted_one(tmp_path, by_epoch):
    reference = _train(tmp_path / 'reference', by_epoch, [RandomStateHook()])
    assert _same(reference, _train(tmp_path / 'again', by_epoch, [RandomStateHook()]))
    resumed = _interrupted_then_resumed(tmp_path / 'resumed', by_epoch, with_hook=True)
    assert _same(reference, resumed)
    # the hook is what makes it so: without it the resumed run drifts
    drifted = _interrupted_then_resumed(tmp_path / 'drifted', by_epoch, with_hook=False)
    assert not _same(reference, drifted)


def test_the_hook_draws_nothing_in_an_uninterrupted_run(tmp_path):
    """Adding the hook leaves an uninterrupted run's numbers as they were."""
    assert _same(_train(tmp_path / 'with', True, [RandomStateHook()]), _train(tmp_path / 'without', True, []))


class SlowIter(Hook):
    """Every training iteration takes at least ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        time.sleep(self.seconds)


def _timed_train(work_dir, hooks: list, resume=None):
    """``_train`` of 10 iterations, checkpoints every 2, returning the runner's stage_time."""
    started = time.time()
    timer = StageTimeHook(started)
    captured = {}

    class Capture(Hook):
        def after_run(self, runner) -> None:
            captured.update(stage_time(runner, started))

    _train(work_dir, False, [RandomStateHook(), timer, SlowIter(0.05), Capture(), *hooks], resume)
    return captured, time.time() - started


def test_a_resumed_stage_counts_its_earlier_attempts_up_to_the_checkpoint(tmp_path):
    work_dir = tmp_path / 'fit'
    once, wall = _timed_train(tmp_path / 'once' / 'fit', [])
    assert set(once) == {'time_fit_s'} and 10 * 0.05 <= once['time_fit_s'] <= wall
    # interrupted before iteration 5: its checkpoint at iteration 4 holds 4 slow iterations
    first_start = time.time()
    with pytest.raises(Interrupt):
        _timed_train(work_dir, [InterruptAt(False, 5)])
    first_wall = time.time() - first_start
    ckpt = resume_checkpoint(work_dir)
    assert ckpt.name == 'iter_4.pth'
    assert 4 * 0.05 <= load(ckpt)['stage_time_s'] <= first_wall
    timed, second_wall = _timed_train(work_dir, [], resume=ckpt)
    # the earlier share is the checkpoint's figure; the 5th iteration, redone, is counted once
    assert timed['time_fit_resumed_s'] == load(ckpt)['stage_time_s']
    assert timed['time_fit_s'] == pytest.approx(timed['time_fit_resumed_s'] + second_wall, abs=0.05)
    assert timed['time_fit_s'] >= 10 * 0.05


def test_a_stage_resumed_from_a_checkpoint_without_its_time_is_marked_partial(tmp_path):
    work_dir = tmp_path / 'action'
    with pytest.raises(Interrupt):  # a checkpoint as written before they carried the figure
        _train(work_dir, False, [RandomStateHook(), InterruptAt(False, 5)])
    assert 'stage_time_s' not in load(resume_checkpoint(work_dir))
    timed, wall = _timed_train(work_dir, [], resume=resume_checkpoint(work_dir))
    assert timed['time_action_partial'] == 1.0 and 'time_action_resumed_s' not in timed
    assert timed['time_action_s'] <= wall
    # and the checkpoints it writes from there on carry no guess either
    newest = training_checkpoints(work_dir)[0]
    assert newest.name == 'iter_10.pth' and 'stage_time_s' not in load(newest)


def test_random_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    torch.save({'random_state': random_state()}, tmp_path / 'state.pth')
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.rand(5), np.random.rand(5), random.random()
    set_random_state(load(tmp_path / 'state.pth')['random_state'])
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1])
    assert expected[2] == again[2]


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


def test_a_crafted_checkpoint_is_refused_in_one_line_and_runs_nothing(tmp_path):
    marker = tmp_path / 'code_ran'
    crafted = tmp_path / 'epoch_3.pth'
    torch.save({'meta': {'epoch': 3}, 'state_dict': _Exploit(marker)}, crafted)
    with pytest.raises(ProtocolError) as err:
        load(crafted)
    message = str(err.value)
    assert str(crafted) in message and 'system' in message and '\n' not in message
    assert not marker.exists()


def test_a_checkpoint_cannot_reach_code_through_getattr(tmp_path):
    """HistoryBuffer pickles getattr(HistoryBuffer, 'mean'); getattr on anything else is refused."""
    from mmengine.logging import HistoryBuffer

    class Sneaky:
        def __reduce__(self):
            return getattr, (HistoryBuffer, '__init__')
    torch.save({'x': Sneaky()}, tmp_path / 'iter_2.pth')
    with pytest.raises(ProtocolError, match='iter_2.pth'):
        load(tmp_path / 'iter_2.pth')
    # and a real MMEngine message hub with its history buffers loads
    buffer = HistoryBuffer()
    buffer.update(1.5)
    torch.save({'message_hub': {'log_scalars': {'loss': buffer}, 'eta': np.float64(2.0)}},
               tmp_path / 'iter_4.pth')
    loaded = load(tmp_path / 'iter_4.pth')
    assert loaded['message_hub']['log_scalars']['loss'].current() == 1.5


def test_a_checkpoint_that_is_not_one_is_named(tmp_path):
    path = tmp_path / 'epoch_1.pth'
    path.write_bytes(pickle.dumps({'a': 1}))
    with pytest.raises(ProtocolError, match='epoch_1.pth'):
        load(path)


def test_resume_pointer_survives_a_kill_between_delete_and_rewrite(tmp_path):
    torch.save({'meta': {}}, tmp_path / 'epoch_2.pth')
    (tmp_path / 'epoch_3.pth').write_bytes(b'PK\x03\x04 half a checkpoint')  # killed mid-write
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_1.pth'))  # already deleted
    assert resume_checkpoint(tmp_path) == tmp_path / 'epoch_2.pth'
    assert (tmp_path / 'last_checkpoint').read_text() == str(tmp_path / 'epoch_2.pth')
    assert not (tmp_path / 'epoch_3.pth').exists()
    (tmp_path / 'epoch_2.pth').unlink()
    assert resume_checkpoint(tmp_path) is None
    assert not (tmp_path / 'last_checkpoint').exists()


def test_prune_keeps_what_is_not_a_training_checkpoint(tmp_path):
    for name in ('epoch_1.pth', 'epoch_12.pth', 'iter_4.pth', 'anonymizer.pth', 'result.json'):
        (tmp_path / name).write_bytes(b'x' * 10)
    (tmp_path / 'last_checkpoint').write_text('epoch_12.pth')
    assert [p.name for p in training_checkpoints(tmp_path)] == ['epoch_12.pth', 'iter_4.pth', 'epoch_1.pth']
    assert prune(tmp_path) == 30
    assert sorted(p.name for p in tmp_path.iterdir()) == ['anonymizer.pth', 'result.json']
