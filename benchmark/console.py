"""What ``bench`` shows a person: a header, one progress line per stage, the result last.

Importable without torch, mmengine or mlflow. One ``Console`` is current at a time
(:func:`current`, set by ``bench`` with :func:`use`); it is in one of three modes:

- ``'bars'`` (stdout is a terminal): a live bar per stage (rich), with count, rate, ETA and
  the current loss; once the stage ends its bar stays as one line.
- ``'lines'`` (stdout is not a terminal: CI, a log file): the same figures as plain lines, one
  when a stage ends and, while it runs, one after 30 s, then at growing gaps (x1.5, at most
  10 min), so a long stage shows it is alive without filling the log.
- ``'verbose'`` (``bench -v``, and the default outside ``bench``): MMEngine's own log on the
  console as before; steps MMEngine does not log (data generation, encoder pretraining)
  report in plain lines.

Any step reports progress the same way, from any module::

    from benchmark import console
    with console.current().progress('encoder pretraining', total=steps, unit='step') as bar:
        for step in range(steps):
            ...
            bar.update(loss=loss.item())

In the quiet modes (``bars``, ``lines``) MMEngine's console log is off (its log file in the
run folder keeps everything, ``benchmark/runner.py``), MLflow's informational messages are
off, and a Python warning is one line, once.
"""
from __future__ import annotations

import contextlib
import logging
import sys
import time
import warnings
from typing import Iterator

MODES = ('bars', 'lines', 'verbose')
FIRST_GAP_S = 30.0  # 'lines' mode: the first plain line of a running stage after this long,
GAP_GROWTH = 1.5    # then each gap this much longer than the last,
MAX_GAP_S = 600.0   # but never longer than this


def duration(seconds: float) -> str:
    """``0:07``, ``12:34`` or ``1:02:03``."""
    seconds = int(round(max(seconds, 0.0)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f'{hours}:{minutes:02d}:{secs:02d}' if hours else f'{minutes}:{secs:02d}'


def rate(done: float, seconds: float, unit: str) -> str:
    """``3.1 it/s``, or ``4.2 s/it`` when slower than one per second."""
    if done <= 0 or seconds <= 0:
        return f'- {unit}/s'
    per_s = done / seconds
    return f'{per_s:.1f} {unit}/s' if per_s >= 1 else f'{1 / per_s:.1f} s/{unit}'


def losses_text(loss=None) -> str:
    """``loss 0.123`` for a number; ``act 1.20 pri 0.68`` for a dict of named losses."""
    if loss is None:
        return ''
    if isinstance(loss, dict):
        return ' '.join(f'{name} {float(value):.3g}' for name, value in loss.items())
    return f'loss {float(loss):.3g}'


class Bar:
    """A handle on one step's progress; made by :meth:`Console.progress`.

    ``update`` advances the count (by 1 unless told) and sets the shown loss and note.
    """

    def __init__(self, console: Console, label: str, total: int, unit: str, done: int,
                 keep: bool) -> None:
        self.console, self.label, self.total, self.unit = console, label, int(total), unit
        self.done, self.keep = int(done), keep
        self.start_done = self.done  # resumed steps do not count toward the rate
        self.start = time.monotonic()
        self.loss, self.note = None, ''
        self.gap = FIRST_GAP_S
        self.next_line_at = self.start + self.gap

    def update(self, advance: int = 1, *, done: int | None = None, loss=None,
               note: str | None = None) -> None:
        """Advance the count (or set it with ``done``); show ``loss`` (a number or a dict of
        named losses) and ``note`` (e.g. ``epoch 3/44``)."""
        self.done = int(done) if done is not None else self.done + advance
        if loss is not None:
            self.loss = loss
        if note is not None:
            self.note = note
        self._show()

    def figures(self, final: bool = False) -> str:
        """The bar as plain text: count, rate, ETA (or time taken) and the loss."""
        elapsed = time.monotonic() - self.start
        worked = self.done - self.start_done
        parts = [f'{self.done}/{self.total} {self.unit}']
        if final:
            parts.append(f'in {duration(elapsed)}')
        else:
            parts.append(f'{100 * self.done / max(self.total, 1):.0f} %')
        parts.append(rate(worked, elapsed, self.unit))
        if not final and worked > 0:
            parts.append(f'ETA {duration(elapsed / worked * (self.total - self.done))}')
        extra = ' '.join(x for x in (self.note, losses_text(self.loss)) if x)
        return f'{self.label}: ' + ', '.join(parts) + (f', {extra}' if extra else '')

    def _show(self) -> None:
        now = time.monotonic()
        if now >= self.next_line_at and self.done < self.total:
            self.console.print(self.figures())
            self.gap = min(self.gap * GAP_GROWTH, MAX_GAP_S)
            self.next_line_at = now + self.gap

    def close(self, failed: bool = False) -> None:
        if self.keep or failed:
            self.console.print(self.figures(final=True) + (' (stopped)' if failed else ''))


class _RichBar(Bar):
    """The bar drawn live by rich; kept as one line when it ends (unless transient)."""

    def __init__(self, console: Console, *args) -> None:
        super().__init__(console, *args)
        self.progress = console._live()
        self.task = self.progress.add_task(self.label, total=self.total, completed=self.done,
                                           unit=self.unit, info='')

    def _show(self) -> None:
        extra = ' '.join(x for x in (self.note, losses_text(self.loss)) if x)
        self.progress.update(self.task, completed=self.done, info=extra)

    def close(self, failed: bool = False) -> None:
        self._show()
        task = next(t for t in self.progress.tasks if t.id == self.task)
        if self.keep or failed:
            self.progress.console.print(self.progress.make_tasks_table([task]))
        self.progress.remove_task(self.task)
        self.console._idle()


class Console:
    """Where ``bench`` prints, in one of ``MODES``.

    Args:
        mode (str): ``'bars'``, ``'lines'`` or ``'verbose'``. Defaults to ``'verbose'``.
        keep_bars (bool): A stage's bar stays as a line once done; a sweep turns this off
            and shows one line per run instead. Defaults to True.
    """

    def __init__(self, mode: str = 'verbose', keep_bars: bool = True) -> None:
        if mode not in MODES:
            raise ValueError(f'console mode {mode!r} is not one of {", ".join(MODES)}')
        self.mode = mode
        self.keep_bars = keep_bars
        self.prefix = ''  # put before every bar's label, e.g. a sweep's ``[3/8] ``
        self._progress = None  # rich's live display, while a bar is up
        self._warned: set[str] = set()

    @property
    def verbose(self) -> bool:
        return self.mode == 'verbose'

    def print(self, text: str = '') -> None:
        """One line (or several) above any live bar."""
        if self._progress is not None:
            self._progress.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            print(text, flush=True)

    def detail(self, text: str) -> None:
        """A line only ``--verbose`` shows (the run's internals)."""
        if self.verbose:
            self.print(text)

    def warn(self, text: str, kind: str = 'warning') -> None:
        """A warning (or an error, ``kind='error'``) as one line on stderr, once per process."""
        line = f'{kind}: ' + (text.strip().splitlines()[0] if text.strip() else text)
        if line in self._warned:
            return
        self._warned.add(line)
        if self._progress is not None:  # above the bar (rich sends it to the terminal)
            self._progress.console.print(line, markup=False, highlight=False, soft_wrap=True,
                                         style='yellow')
        else:
            print(line, file=sys.stderr, flush=True)

    @contextlib.contextmanager
    def progress(self, label: str, total: int, unit: str = 'it', done: int = 0,
                 keep: bool | None = None) -> Iterator[Bar]:
        """A progress bar (``bars``) or plain lines (``lines``, ``verbose``) for one step.

        Args:
            label (str): What runs, e.g. ``'action'`` or ``'data vp_synth train'``.
            total (int): Steps in all.
            unit (str): What a step is: ``'it'``, ``'epoch'``, ``'videos'``. Defaults to ``'it'``.
            done (int): Steps already done (a resumed stage). Defaults to 0.
            keep (bool, optional): Leave a line when done; None follows ``keep_bars``.
        """
        bar = self.open_bar(label, total, unit, done, keep)
        try:
            yield bar
        except BaseException:
            bar.close(failed=True)
            raise
        bar.close()

    def open_bar(self, label: str, total: int, unit: str = 'it', done: int = 0,
                 keep: bool | None = None) -> Bar:
        """:meth:`progress` for callers that open and close it from separate hooks: close it
        with ``bar.close()`` (``failed=True`` when the step stopped)."""
        keep = self.keep_bars if keep is None else keep
        cls = _RichBar if self.mode == 'bars' else Bar
        return cls(self, self.prefix + label, total, unit, done, keep)

    def _live(self):
        """rich's live display, started with the first bar."""
        if self._progress is None:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeRemainingColumn)
            self._progress = Progress(
                TextColumn('{task.description:<12}'), BarColumn(bar_width=28),
                MofNCompleteColumn(), TextColumn('{task.fields[unit]}'), _RateColumn(),
                TimeRemainingColumn(elapsed_when_finished=True), TextColumn('{task.fields[info]}'),
                refresh_per_second=4)
            self._progress.start()
        return self._progress

    def _idle(self) -> None:
        """Stop the live display when no bar is left on it."""
        if self._progress is not None and not self._progress.tasks:
            self._progress.stop()
            self._progress = None

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


class _RateColumn:
    """rich column: ``3.1 it/s``, or ``4.2 s/it`` when slower (see :func:`rate`)."""

    def __new__(cls):
        from rich.progress import ProgressColumn
        from rich.text import Text

        class RateColumn(ProgressColumn):
            def render(self, task):
                speed = task.finished_speed or task.speed
                if not speed:
                    return Text('')
                unit = task.fields.get('unit', 'it')
                return Text(rate(speed, 1.0, unit))
        return RateColumn()


_CURRENT = Console('verbose')


def current() -> Console:
    """The console steps report to (``verbose`` unless ``bench`` set another)."""
    return _CURRENT


def mode_for(verbose: bool, stream=None) -> str:
    """``verbose`` when asked; else ``bars`` on a terminal, ``lines`` elsewhere."""
    if verbose:
        return 'verbose'
    stream = stream or sys.stdout
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    return 'bars' if tty else 'lines'


@contextlib.contextmanager
def use(console: Console) -> Iterator[Console]:
    """Make ``console`` current; in a quiet mode also silence what means nothing to a user."""
    global _CURRENT
    previous = _CURRENT
    _CURRENT = console
    with contextlib.ExitStack() as stack:
        if not console.verbose:
            stack.enter_context(_quiet(console))
        try:
            yield console
        finally:
            console.close()
            _CURRENT = previous


@contextlib.contextmanager
def _quiet(console: Console) -> Iterator[None]:
    """MLflow's info messages off, Python warnings as one line each, video decoders' own
    messages (FFmpeg's, printed straight to stderr) off."""
    loggers = {name: logging.getLogger(name) for name in ('mlflow.store', 'alembic')}
    levels = {name: lg.level for name, lg in loggers.items()}
    for lg in loggers.values():
        lg.setLevel(logging.WARNING)
    show = warnings.showwarning

    def one_line(message, category, filename, lineno, file=None, line=None):
        console.warn(f'{category.__name__}: {message}')
    warnings.showwarning = one_line
    _quiet_decoders()
    try:
        yield
    finally:
        warnings.showwarning = show
        for name, lg in loggers.items():
            lg.setLevel(levels[name])


def _quiet_decoders() -> None:
    """decord (and PyAV before 13) print FFmpeg's complaints about damaged frames, raw bytes
    and all, straight to stderr; the clips that do not decode are reported by the suite itself
    (``bench datasets check``, the run's own check). Forked decoding workers inherit this."""
    import importlib.util
    if importlib.util.find_spec('decord') is not None:
        import decord
        decord.logging.set_level(decord.logging.QUIET)
    if importlib.util.find_spec('av') is not None:
        import av.logging
        av.logging.set_level(None)
