"""The suite's one-line errors, importable without torch, mmengine or mlflow.

Every error the user can fix by changing a command, an option or a file is a ``BenchError``
whose message is the whole answer: what is wrong (naming the key, file or store) and what to
do. ``bench`` prints it alone as ``bench: <message>`` and exits with status 2
(``benchmark/cli.py``); commands that only read (``bench report``, ``bench ls``) import this
module and nothing heavier.
"""
from __future__ import annotations

import difflib
from typing import NamedTuple


class BenchError(Exception):
    """An error whose one-line message says what is wrong and what to do."""


class UnknownNameError(BenchError, KeyError):
    """A name that is not registered; the message names the closest valid ones."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want the plain sentence
        return str(self.args[0])


class ConfigError(BenchError, ValueError):
    """A config value of the wrong type or out of its range."""


class InputError(BenchError, ValueError):
    """A file or folder a command cannot use (not a store, not a checkpoint, not writable)."""


class ProtocolError(BenchError, RuntimeError):
    """A run that cannot start or continue; the message says why and what to do."""


class FitCollapsed(ProtocolError):
    """A learning anonymizer's fit that collapsed (saturated output, an action branch at chance):
    the run stops and is recorded as failed, never reported as a result."""


class TrackingError(BenchError, RuntimeError):
    """The tracking store cannot be used; the message says which and what to do."""


def closest(name: str, valid: list[str] | tuple[str, ...], kind: str,
            show_valid: bool = True) -> str:
    """One-line message for an unknown ``name`` among ``valid``, with near misses."""
    valid = sorted(valid)
    listing = f" valid {kind}s: {', '.join(valid)}" if show_valid else ''
    return f"unknown {kind} {name!r}: {near_misses(name, valid)}{listing}"


def near_misses(name: str, valid: list[str] | tuple[str, ...]) -> str:
    """``did you mean 'a', 'b'?`` for the valid names closest to ``name``."""
    near = difflib.get_close_matches(name, sorted(valid), n=3, cutoff=0.5)
    return f"did you mean {', '.join(repr(n) for n in near)}?" if near else 'no close match.'


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none)."""
    text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    return text.strip().splitlines()[0] if text.strip() else type(err).__name__


class Bound(NamedTuple):
    """The type and least value a config value must have; ``check`` refuses others in one line.

    Args:
        kind (type): ``int`` or ``float`` (which also admits integers).
        least (float): The least value.
        strict (bool): Values must be above ``least``, not equal to it. Defaults to False.
        optional (bool): None is admitted too. Defaults to False.
    """

    kind: type
    least: float
    strict: bool = False
    optional: bool = False

    def check(self, key: str, value) -> None:
        """Raise ConfigError naming ``key``, the value and its type unless the value fits."""
        if value is None and self.optional:
            return
        number = isinstance(value, (int,) if self.kind is int else (int, float))
        if number and not isinstance(value, bool) and (
                value > self.least if self.strict else value >= self.least):
            return
        what = f' is a {type(value).__name__}' if not isinstance(value, (int, float)) or isinstance(
            value, bool) else ''
        must = (f'{"an integer" if self.kind is int else "a number"} {">" if self.strict else ">="} '
                f'{self.least:g}{" or None" if self.optional else ""}')
        raise ConfigError(f'{key}={value!r}{what}: it must be {must}')
