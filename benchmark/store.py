"""Where runs go: the tracking URI and the artifact root of the default store.

Default store: a SQLite file ``<work root>/mlflow.db`` with artifacts beside it in
``<work root>/mlartifacts``; ``--tracking-uri`` or ``MLFLOW_TRACKING_URI`` selects a server
instead. Kept free of mlflow and mmengine imports so that reading commands start fast.
"""
from __future__ import annotations

import os
from pathlib import Path


def resolve_tracking_uri(tracking_uri: str | None, work_root: Path) -> str:
    """``--tracking-uri``, else ``MLFLOW_TRACKING_URI``, else the SQLite file in the work root."""
    uri = tracking_uri or os.environ.get('MLFLOW_TRACKING_URI')
    if uri:
        return uri
    work_root.mkdir(parents=True, exist_ok=True)
    return f'sqlite:///{(work_root / "mlflow.db").resolve()}'


def default_artifact_root(uri: str) -> str | None:
    """Artifacts of a SQLite store go in ``mlartifacts`` beside the database file."""
    if uri.startswith('sqlite:///'):
        return (Path(uri[len('sqlite:///'):]).parent / 'mlartifacts').resolve().as_uri()
    return None
