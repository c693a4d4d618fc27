"""A stage's training checkpoints: read through an allow-list, carrying every random state.

Every stage of a run is an MMEngine Runner that writes a checkpoint every ``checkpoint_interval``
epochs (iterations for a fit) in its own folder and, after an interruption, resumes from the
newest complete one (``resume_checkpoint``). Two things make that resume safe and exact:

- **Loading.** A checkpoint is read by ``torch.load(weights_only=True)`` with an allow-list of
  exactly the objects MMEngine 0.10.7 puts in one besides tensors: numpy scalars and arrays of
  its message hub (with their dtype classes), its ``HistoryBuffer`` and the four statistics
  methods a buffer names. A file that asks for anything else (``os.system``, ``eval``, any
  class) is refused with a one-line ``ProtocolError`` naming it, before anything in it runs.
  The runner reads resume checkpoints through the ``run-folder://`` scheme registered here.
- **Random state.** ``RandomStateHook`` saves torch's (CPU and CUDA), numpy's and Python's
  global generators with every checkpoint and puts them back where the uninterrupted run had
  them: at the start of the next epoch, or, in an iteration-based fit, after MMEngine has
  replayed the data loader up to the checkpoint's iteration (a replay that draws from the
  generators itself when the loader has no workers). The data order needs nothing: samplers
  are seeded by epoch, and MMEngine reseeds every loader worker the same way on each start.
  Nothing is drawn that an uninterrupted run would not draw.
- **Time.** ``StageTimeHook`` saves with each checkpoint the seconds the stage has taken to
  reach it, over every attempt (``stage_time_s``), so a resumed stage's time counts its
  earlier attempts up to the checkpoint it resumed from, not the work an interruption threw
  away. The protocol records it as ``time_<stage>_s``, and the earlier attempts' share as
  ``time_<stage>_resumed_s``.

Once a stage has written its result, its training checkpoints are spent: ``prune`` deletes them
unless the runtime config says ``keep_checkpoints = True``.
"""
from __future__ import annotations

import pickle
import random
import re
import time
import zipfile
from pathlib import Path

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer
from mmengine.runner import CheckpointLoader, IterBasedTrainLoop

from benchmark.errors import ProtocolError
from benchmark.registry import HOOKS

SCHEME = 'run-folder://'
CHECKPOINT_PATTERN = re.compile(r'^(epoch|iter)_(\d+)\.pth$')
STATISTICS = ('min', 'max', 'current', 'mean')  # HistoryBuffer's own, by name


def _history_statistic(owner, name: str):
    """``getattr`` as a checkpoint may use it: one of HistoryBuffer's four statistics, nothing else.

    A buffer pickles its statistics methods as ``getattr(HistoryBuffer, 'mean')``; an open
    ``getattr`` would let a pickle walk from any allowed object to ``os.system``.
    """
    if owner is not HistoryBuffer or name not in STATISTICS:
        raise AttributeError(f'getattr({getattr(owner, "__name__", type(owner).__name__)}, {name!r}) '
                             f'is not part of an MMEngine checkpoint')
    return getattr(HistoryBuffer, name)


def _numpy_globals() -> list:
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:
        from numpy.core import multiarray
    # a checkpoint names the numpy module that wrote it: numpy.core (1.x) or numpy._core (2.x)
    named = [(fn, f'{module}.multiarray.{fn.__name__}')
             for fn in (multiarray.scalar, multiarray._reconstruct)
             for module in ('numpy.core', 'numpy._core')]
    dtypes = [type(np.dtype(t)) for t in (np.float64, np.float32, np.int64, np.int32, np.bool_)]
    return named + [np.ndarray, np.dtype, *dtypes]


#: Everything besides tensors and plain containers that an MMEngine checkpoint holds.
CHECKPOINT_GLOBALS = [*_numpy_globals(), HistoryBuffer, (_history_statistic, 'builtins.getattr')]


def _refusal(err: Exception) -> str:
    text = str(err)
    found = re.search(r'GLOBAL ([\w.]+)', text)
    if found:
        return f'it asks for {found.group(1)}'
    found = re.search(r'unrecognized function (.+?)(?: which belongs|$)', text, re.MULTILINE)
    if found:
        return f'it calls {found.group(1)}'
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:200] if lines else type(err).__name__


def load(path: str | Path, map_location=None) -> dict:
    """A run folder's checkpoint, weights only plus ``CHECKPOINT_GLOBALS``; ProtocolError if refused."""
    path = Path(path)
    try:
        with torch.serialization.safe_globals(CHECKPOINT_GLOBALS):
            return torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, AttributeError) as err:  # AttributeError: _history_statistic
        raise ProtocolError(f'refusing to load checkpoint {path}: {_refusal(err)}, which no checkpoint '
                            f'of this suite holds; delete the file (or pass --fresh) and run again') from None
    except (OSError, RuntimeError) as err:
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise ProtocolError(f'cannot read checkpoint {path} ({first}): delete the file (or pass '
                            f'--fresh) and run again') from None


@CheckpointLoader.register_scheme(prefixes=SCHEME)
def load_from_run_folder(filename: str, map_location=None) -> dict:
    """MMEngine's loader for ``run-folder://<path>``: :func:`load`."""
    return load(filename[len(SCHEME):], map_location)


def complete(path: Path) -> bool:
    """A complete torch checkpoint (a zip whose central directory was written)."""
    try:
        with zipfile.ZipFile(path) as z:
            return bool(z.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def training_checkpoints(stage_dir: Path) -> list[Path]:
    """``epoch_N.pth`` / ``iter_N.pth`` of a stage, newest first."""
    found = [(int(m.group(2)), p) for p in stage_dir.glob('*.pth')
             if (m := CHECKPOINT_PATTERN.match(p.name))]
    return [p for _, p in sorted(found, key=lambda item: item[0], reverse=True)]


def resume_checkpoint(stage_dir: Path) -> Path | None:
    """The newest complete checkpoint of a stage, the one a resume starts from; None: start over.

    A kill can land in the middle of writing a checkpoint, or between MMEngine deleting the
    previous one and rewriting ``last_checkpoint``: half-written files are deleted, and the
    pointer is rewritten to the checkpoint returned.
    """
    pointer = stage_dir / 'last_checkpoint'
    for ckpt in training_checkpoints(stage_dir):
        if complete(ckpt):
            if not pointer.exists() or pointer.read_text().strip() != str(ckpt):
                pointer.write_text(str(ckpt))
            return ckpt
        ckpt.unlink()  # half-written by a killed run
    pointer.unlink(missing_ok=True)
    return None


def prune(stage_dir: Path) -> int:
    """Delete a finished stage's training checkpoints and their pointer; returns the bytes freed."""
    freed = 0
    for ckpt in training_checkpoints(stage_dir):
        freed += ckpt.stat().st_size
        ckpt.unlink()
    (stage_dir / 'last_checkpoint').unlink(missing_ok=True)
    return freed


def random_state() -> dict:
    """Every global generator a stage draws from, as tensors and plain values (weights-only safe)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = dict(torch=torch.get_rng_state(), python=random.getstate(),
                 numpy=(kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached))
    if torch.cuda.is_available():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_random_state(state: dict) -> None:
    """Put back what :func:`random_state` saved (tensors may come back on the run's device)."""
    torch.set_rng_state(state['torch'].cpu())
    random.setstate(state['python'])
    kind, keys, pos, has_gauss, cached = state['numpy']
    np.random.set_state((kind, keys.cpu().numpy().astype(np.uint32), pos, has_gauss, cached))
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state['cuda']])


class _RestoreAfterReplay:
    """The fit loop's data iterator, putting the random state back once the replay is over.

    MMEngine's IterBasedTrainLoop resumes by drawing ``loop.iter`` batches and throwing them
    away, then trains on the next; the state goes back just before that next batch is drawn.
    """

    def __init__(self, loop: IterBasedTrainLoop, state: dict) -> None:
        self.loop, self.inner, self.state = loop, loop.dataloader_iterator, state
        self.replay = loop.iter

    def __iter__(self):
        return self

    def __next__(self):
        if self.replay:
            self.replay -= 1
        else:
            set_random_state(self.state)
            self.loop.dataloader_iterator = self.inner  # done: out of the way
        return next(self.inner)


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Saves the global random state with each checkpoint; restores it where the run left off."""

    priority = 'VERY_HIGH'  # restore before any other hook of the epoch could draw

    def __init__(self) -> None:
        self._resumed: dict | None = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['random_state'] = random_state()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._resumed = checkpoint.get('random_state')

    def before_train_epoch(self, runner) -> None:
        if self._resumed is None:
            return
        state, self._resumed = self._resumed, None
        loop = runner.train_loop
        if isinstance(loop, IterBasedTrainLoop) and loop.iter > 0:
            loop.dataloader_iterator = _RestoreAfterReplay(loop, state)
        else:  # an epoch boundary: the next draw is the new epoch's loader iterator
            set_random_state(state)


@HOOKS.register_module()
class StageTimeHook(Hook):
    """The seconds a stage has taken, over its attempts, saved with each checkpoint.

    Args:
        started (float): ``time.time()`` when this attempt of the stage began (before its data
            were prepared, as the protocol times a stage). Defaults to the hook's creation.

    After training, ``earlier_s`` is what the attempts before this one took up to the
    checkpoint this one resumed from: 0.0 for a stage that started afresh, None when that
    checkpoint was written before checkpoints carried the figure (the stage's time then counts
    this attempt only).
    """

    priority = 'VERY_HIGH'

    def __init__(self, started: float | None = None) -> None:
        self.started = time.time() if started is None else float(started)
        self.earlier_s: float | None = 0.0
        self.resumed = False

    def elapsed(self) -> float:
        """The stage's seconds so far, earlier attempts included (this attempt's alone when
        their figure is unknown)."""
        return (self.earlier_s or 0.0) + time.time() - self.started

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.earlier_s is not None:  # an unknown earlier share would make the figure a guess
            checkpoint['stage_time_s'] = self.elapsed()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self.resumed = True
        found = checkpoint.get('stage_time_s')
        self.earlier_s = float(found) if found is not None else None


def stage_time(runner, started: float) -> dict[str, float]:
    """``time_<stage>_s`` metrics of a stage trained by ``runner`` (its ``StageTimeHook``): the
    seconds since ``started`` plus what earlier attempts took up to the checkpoint it resumed
    from, and that share as ``time_<stage>_resumed_s`` when it resumed with the figure known."""
    stage = Path(runner.work_dir).name
    hook = next((h for h in runner.hooks if isinstance(h, StageTimeHook)), None)
    now = time.time() - started
    if hook is None or not hook.resumed:
        return {f'time_{stage}_s': now}
    if hook.earlier_s is None:
        return {f'time_{stage}_s': now, f'time_{stage}_partial': 1.0}
    return {f'time_{stage}_s': hook.earlier_s + now, f'time_{stage}_resumed_s': hook.earlier_s}
