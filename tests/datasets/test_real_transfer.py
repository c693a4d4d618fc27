"""Transfer on real layouts: fit the anonymizer on VP-UCF101, train and test on VP-HMDB51.

The same `bench run` a user types, on fixture trees with real clip names and split formats.
"""
import pytest
from mlflow.tracking import MlflowClient

from benchmark.cli import main
from tests.datasets.real_tree import build_hmdb, build_ucf

pytestmark = pytest.mark.slow


def test_ucf_to_hmdb_transfer_run(tmp_path, capsys):
    ucf, hmdb, work = tmp_path / 'ucf101', tmp_path / 'hmdb51', tmp_path / 'work'
    build_ucf(ucf, missing=False, corrupt=False, unlabelled=False)
    build_hmdb(hmdb)
    code = main(['run', '--method', 'raprivacy', '--profile', 'smoke',
                 '--train-dataset', 'vp_ucf101', '--train-data-root', str(ucf),
                 '--dataset', 'vp_hmdb51', '--data-root', str(hmdb), '--work-dir', str(work)])
    assert code == 0, capsys.readouterr().err
    client = MlflowClient(f'sqlite:///{work / "mlflow.db"}')
    exp = client.get_experiment_by_name('vp_hmdb51')
    runs = client.search_runs([exp.experiment_id], "tags.`bench.kind` = 'parent'")
    assert len(runs) == 1
    tags = runs[0].data.tags
    assert tags['bench.train_dataset'] == 'vp_ucf101' and tags['bench.dataset'] == 'vp_hmdb51'
    assert tags['bench.complete'] == 'true'
    assert 'action_top1' in runs[0].data.metrics
    # real data has no true masks: readability is judged against what HOG finds on raw frames
    metrics = runs[0].data.metrics
    assert 'readability_person' in metrics and 'readability_faces' in metrics
    assert 'readability_outline' not in metrics and 0 <= metrics['readability_colour']
    run_dir = work / 'vp_ucf101_to_vp_hmdb51' / 'raprivacy' / 'smoke' / 'seed0'
    assert (run_dir / 'fit' / 'anonymizer.pth').is_file()


def test_a_real_dataset_without_its_root_is_one_line(tmp_path, capsys):
    code = main(['run', '--method', 'raw', '--profile', 'smoke', '--dataset', 'vp_hmdb51',
                 '--work-dir', str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith('bench: dataset vp_hmdb51') and '--data-root' in err[-1]
    assert not (tmp_path / 'mlflow.db').exists()  # refused before anything was recorded
