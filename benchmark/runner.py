"""The MMEngine Runner of every protocol stage, and the progress bar it shows.

MMEngine logs everything (environment, config, hook order, every iteration) to its log file
in the stage's folder (``<run folder>/<stage>/<date>/<date>.log``) and, by default, to the
console too. Unless the console is verbose (``bench -v``, ``benchmark/console.py``), the
``BenchRunner`` keeps that log in the file only and sends its warnings and errors to the console
as one line each; the stage's progress is the ``ProgressHook``'s bar.
"""
from __future__ import annotations

import contextlib
import logging
import warnings

from mmengine.hooks import Hook
from mmengine.runner import Runner

from benchmark import console
from benchmark.registry import HOOKS

#: MMEngine warnings about its own API (``"FileClient" will be deprecated``): nothing a user
#: of the suite can act on; they stay in the log file.
_MEANINGLESS = ('will be deprecated', 'is deprecated')


@contextlib.contextmanager
def quiet_waiting_schedulers():
    """Without MMEngine's "Detected call of `scheduler.step()` before `optimizer.step()`".

    In an adversarial fit a part's optimizer waits (the anonymizer while the branches warm up)
    while MMEngine's hook steps every scheduler each iteration, so the first step always comes
    first. The warning's claim, copied from PyTorch, does not hold for MMEngine's schedulers:
    they take their value from their own step count and ``begin``/``end``, so no value is
    skipped. Every other warning passes.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message=r'Detected call of `scheduler\.step\(\)` before '
                                                  r'`optimizer\.step\(\)`')
        yield


def release_loader_workers(runner: Runner) -> None:
    """Stop the worker processes of an iteration-based training loop's data iterator.

    With an ``InfiniteSampler`` the iterator never runs out, so its workers live as long as the
    iterator: through the stages after the fit, each holding prefetched batches, and every
    worker a later stage forks inherits the iterator, whose clean-up then fails in that worker
    ("AssertionError: can only test a child process", printed and ignored). A loop not built
    yet, or one without worker processes, is left as it is.
    """
    loop = getattr(runner, '_train_loop', None)
    iterator = getattr(getattr(loop, 'dataloader_iterator', None), '_iterator', None)
    if hasattr(iterator, '_shutdown_workers'):
        iterator._shutdown_workers()


def init_weights_quietly(model) -> None:
    """``model.init_weights()`` outside a runner: without MMEngine's line per parameter, and
    without writing into a file handler of an earlier runner that has since been closed
    (MMEngine dumps the initialization into every file handler of its newest logger, and a
    ``logging.config`` call by another library, MLflow's store among them, closes them all)."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    closed = [h for h in logger.handlers
              if isinstance(h, logging.FileHandler) and (h.stream is None or h.stream.closed)]
    for handler in closed:
        logger.removeHandler(handler)
    logger.setLevel(logging.WARNING)
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)
        for handler in closed:
            logger.addHandler(handler)


class _ConsoleHandler(logging.Handler):
    """MMEngine's warnings and errors as one console line each."""

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.levelno < logging.ERROR and any(m in message for m in _MEANINGLESS):
            return
        console.current().warn(message, 'warning' if record.levelno < logging.ERROR else 'error')


class BenchRunner(Runner):
    """MMEngine's Runner, quiet on the console unless it is verbose; any stage bar is closed
    when training or testing stops early."""

    def build_logger(self, log_level='INFO', log_file=None, **kwargs):
        logger = super().build_logger(log_level=log_level, log_file=log_file, **kwargs)
        if not console.current().verbose:
            for handler in list(logger.handlers):
                if type(handler) is logging.StreamHandler:  # the console one; FileHandler stays
                    logger.removeHandler(handler)
            handler = _ConsoleHandler(level=logging.WARNING)
            logger.addHandler(handler)
        return logger

    def train(self):
        return self._closing_bars(super().train)

    def test(self):
        return self._closing_bars(super().test)

    def _closing_bars(self, step):
        """Run ``step``; if it stops early, each open bar is left as a line saying where."""
        try:
            return step()
        except BaseException:
            for hook in self.hooks:
                if isinstance(hook, ProgressHook):
                    hook.close(failed=True)
            raise


def _shown_losses(outputs: dict | None):
    """The loss a bar shows: ``loss`` when the model logs one; else its named losses
    (``loss_action_branch`` shown as ``action``), at most three."""
    if not outputs:
        return None
    if 'loss' in outputs:
        return _number(outputs['loss'])
    named = {k: v for k, v in outputs.items() if 'loss' in k and not k.startswith('warmup_')}
    named = named or {k: v for k, v in outputs.items() if 'loss' in k}
    short = {k.replace('warmup_', '').replace('loss_', '').replace('_branch', ''): _number(v)
             for k, v in list(named.items())[:3]}
    return short or None


def _number(value) -> float:
    return float(value.detach()) if hasattr(value, 'detach') else float(value)


@HOOKS.register_module()
class ProgressHook(Hook):
    """One bar for a stage's training (iterations, with the epoch and the loss) and one for
    its test; nothing when the console is verbose (MMEngine's LoggerHook prints then).

    Args:
        label (str): The stage, e.g. ``'action'``.
    """

    priority = 'BELOW_NORMAL'

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar = None

    def before_train(self, runner) -> None:
        out = console.current()
        if out.verbose:
            return
        loop = runner.train_loop
        if runner.iter:
            out.print(f'{self.label}: resumed from its checkpoint at iteration {runner.iter}'
                      + (f', epoch {runner.epoch}' if hasattr(loop, 'max_epochs') else ''))
        self.bar = out.open_bar(self.label, loop.max_iters, 'it', done=runner.iter)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if self.bar is None:
            return
        loop = runner.train_loop
        note = f'epoch {runner.epoch + 1}/{loop.max_epochs}' if hasattr(loop, 'max_epochs') else None
        self.bar.update(done=runner.iter + 1, loss=_shown_losses(outputs), note=note)

    def after_train(self, runner) -> None:
        self.close()

    def before_test(self, runner) -> None:
        out = console.current()
        if not out.verbose:
            self.bar = out.open_bar(f'{self.label} test', len(runner.test_dataloader), 'batch')

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if self.bar is not None:
            self.bar.update()

    def after_test(self, runner) -> None:
        self.close()

    def close(self, failed: bool = False) -> None:
        if self.bar is not None:
            self.bar.close(failed=failed)
            self.bar = None
