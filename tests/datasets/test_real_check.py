"""`bench datasets check` and the run's own check: a complete, a broken and a misplaced tree."""
import os
from pathlib import Path

import pytest

from benchmark.datasets.check import check_dataset
from tests.datasets.real_tree import UCF_UNLABELLED, build_hmdb, build_ucf, malicious_pickle


def test_check_names_missing_undecodable_and_unlabelled_clips(tmp_path):
    info = build_ucf(tmp_path)
    report = check_dataset('vp_ucf101', tmp_path, decode=True, workers=1)
    assert not report.ok
    assert report.missing == [info['missing'] + '.avi']
    assert [name for name, _ in report.undecodable] == [info['corrupt'] + '.avi']
    assert report.unlabelled == [UCF_UNLABELLED + '.avi']
    assert report.counts['train'] == {'ApplyEyeMakeup': 2, 'HandstandPushups': 2, 'PommelHorse': 2}
    assert report.decoded == len(info['train']) + len(info['test']) - 1
    text = report.format()
    for name in (info['missing'], info['corrupt'], UCF_UNLABELLED):
        assert name in text
    assert 'PROBLEMS FOUND' in text
    # Labels of the listed classes whose clips the lists do not name are listed, not failed.
    assert 'HandstandPushups/v_HandStandPushups_g02_c01' in report.labels_without_clips
    assert report.other_class_labels + len(report.labels_without_clips) + 8 == 13320


def test_quick_check_decodes_a_sample_and_passes_a_good_tree(tmp_path):
    build_ucf(tmp_path, missing=False, corrupt=False, unlabelled=False)
    report = check_dataset('vp_ucf101', tmp_path, decode='sample')
    assert report.ok, report.format()
    assert 0 < report.decoded <= 6
    assert report.format().endswith('OK')


def test_hmdb_tree_with_quirky_names_is_clean(tmp_path):
    build_hmdb(tmp_path)
    report = check_dataset('vp_hmdb51', tmp_path, decode=True, workers=1)
    assert report.ok, report.format()
    assert report.counts == {'train': {'chew': 1, 'clap': 1, 'shake_hands': 1},
                             'test': {'chew': 1, 'clap': 1, 'shake_hands': 1}}
    assert report.layout == 'videos' and report.video_root == str(tmp_path / '.')


def test_misplaced_tree_is_one_clear_error(tmp_path):
    report = check_dataset('vp_hmdb51', tmp_path / 'nowhere')
    assert not report.ok and 'is not a folder' in report.errors[0]
    (tmp_path / 'empty').mkdir()
    report = check_dataset('vp_ucf101', tmp_path / 'empty', split_id=2)
    assert 'trainlist02.txt' in report.format() and 'ucfTrainTestlist' in report.format()


def test_bench_datasets_check_command_exit_status(tmp_path, capsys):
    from benchmark.cli import main
    broken, good = tmp_path / 'broken', tmp_path / 'good'
    info = build_ucf(broken)
    build_ucf(good, missing=False, corrupt=False, unlabelled=False)
    assert main(['datasets', 'check', 'vp_ucf101', '--data-root', str(broken)]) == 1
    out = capsys.readouterr().out
    for name in (info['missing'], info['corrupt'], UCF_UNLABELLED):
        assert name in out
    assert main(['datasets', 'check', 'vp_ucf101', '--data-root', str(good), '--quick']) == 0
    assert capsys.readouterr().out.strip().endswith('OK')


def test_a_run_decodes_every_clip_before_training_and_names_the_corrupt_one(tmp_path, monkeypatch):
    """The source's preflight decodes every clip of its split once, caches the verdicts, and
    refuses (or, on request, leaves out) the clips that do not decode."""
    from benchmark.datasets import check
    from benchmark.registry import DATASETS

    info = build_ucf(tmp_path / 'ucf', missing=False, unlabelled=False)
    corrupt = info['corrupt'] + '.avi'

    def build(**kw):
        return DATASETS.build(dict(type='VPUCF101Source', data_root=str(tmp_path / 'ucf'),
                                   cache_dir=str(tmp_path / 'cache'), **kw))
    with pytest.raises(RuntimeError) as err:
        build()
    message = str(err.value)
    assert '\n' not in message and f'1 of 5 clips do not decode: {corrupt}' in message
    assert 'bench datasets check vp_ucf101' in message and 'on_corrupt=skip' in message
    assert build(split='test').clips  # the test split has no corrupt clip

    def no_probing(jobs, workers=None):
        raise AssertionError(f'probed {len(jobs)} clips again')
    monkeypatch.setattr(check, 'probe_clips', no_probing)  # verdicts come from the cache now
    skipped = build(on_corrupt='skip')
    assert len(skipped) == 4 and corrupt not in [c.name for c in skipped.clips]
    assert len(skipped._labels) == len(skipped._paths) == 4

    monkeypatch.undo()
    good = tmp_path / 'ucf' / 'UCF-101' / info['train'][0]
    os.utime(good.with_suffix('.avi'), ns=(1, 1))  # a changed file is probed again, alone
    probed = []
    real_probe = check.probe_clips
    monkeypatch.setattr(check, 'probe_clips',
                        lambda jobs, workers=None: probed.extend(jobs) or real_probe(jobs))
    assert len(build(on_corrupt='skip')) == 4
    assert [Path(j[0]).name for j in probed] == [good.name + '.avi']


def test_a_run_on_a_tree_with_a_corrupt_clip_stops_before_anything_is_recorded(tmp_path, capsys):
    from benchmark.cli import main
    info = build_ucf(tmp_path / 'ucf', missing=False, unlabelled=False)
    code = main(['run', '--method', 'raw', '--profile', 'smoke', '--dataset', 'vp_ucf101',
                 '--data-root', str(tmp_path / 'ucf'), '--work-dir', str(tmp_path / 'work')])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith('bench: dataset vp_ucf101 (train)')
    assert info['corrupt'] in err[-1] and '1 of 5 clips do not decode' in err[-1]
    assert not (tmp_path / 'work' / 'mlflow.db').exists()


def test_a_label_pickle_that_would_run_code_is_one_line(tmp_path, capsys):
    """Refused by the restricted unpickler, as `bench run` refuses it: one line, status 2."""
    from benchmark.cli import main
    build_hmdb(tmp_path)
    marker = tmp_path / 'ran'
    (tmp_path / 'hostile.pickle').write_bytes(malicious_pickle(marker))
    assert main(['datasets', 'check', 'vp_hmdb51', '--data-root', str(tmp_path), '--annotations',
                 str(tmp_path / 'hostile.pickle'), '--quick']) == 2
    captured = capsys.readouterr()
    assert not captured.out
    assert captured.err.startswith('bench: ') and captured.err.count('\n') == 1
    assert 'hostile.pickle: refusing to load global' in captured.err
    assert not marker.exists()
