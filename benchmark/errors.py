"""The suite's one-line errors, importable without torch, mmengine or mlflow.

``bench`` catches these and prints the message alone (``benchmark/cli.py``); commands that only
read (``bench report``, ``bench ls``) import this module and nothing heavier.
"""
from __future__ import annotations

import difflib


class UnknownNameError(KeyError):
    """A name that is not registered; the message names the closest valid ones."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want the plain sentence
        return str(self.args[0])


class ProtocolError(RuntimeError):
    """A run that cannot start or continue; the message says why and what to do."""


class FitCollapsed(ProtocolError):
    """A learning anonymizer's fit that collapsed (saturated output, an action branch at chance):
    the run stops and is recorded as failed, never reported as a result."""


class TrackingError(RuntimeError):
    """The tracking store cannot be used; the message says which and what to do."""


def closest(name: str, valid: list[str] | tuple[str, ...], kind: str,
            show_valid: bool = True) -> str:
    """One-line message for an unknown ``name`` among ``valid``, with near misses."""
    valid = sorted(valid)
    near = difflib.get_close_matches(name, valid, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(repr(n) for n in near)}?" if near else 'no close match.'
    listing = f" valid {kind}s: {', '.join(valid)}" if show_valid else ''
    return f"unknown {kind} {name!r}: {hint}{listing}"
