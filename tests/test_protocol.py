"""End to end: `bench run` on vp_synth with the smoke profile, as a user runs it.

One smoke run per method; seeds; a transfer run; a rerun of a finished run; and resume after
real interruptions (kill -9 and Ctrl-C) of a real `bench run` process.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from benchmark.cli import main
from benchmark.config import available_methods
from benchmark.checkpoints import complete

pytestmark = pytest.mark.slow


def _store(work_root: Path) -> MlflowClient:
    return MlflowClient(f'sqlite:///{(work_root / "mlflow.db").resolve()}')


def _parents(work_root, dataset='vp_synth', **tags):
    c = _store(work_root)
    exp = c.get_experiment_by_name(dataset)
    query = ' and '.join([f"tags.`bench.kind` = 'parent'"] +
                         [f"tags.`bench.{k}` = '{v}'" for k, v in tags.items()])
    return c.search_runs([exp.experiment_id], query)


@pytest.mark.parametrize('method', available_methods())
def test_smoke_run_of_every_method(method, work_root, capsys, request):
    if method == 'raprivacy':  # its embedded encoder is ImageNet MobileNetV2, fetched once
        request.getfixturevalue('imagenet_mobilenet')
    assert main(['run', '--method', method, '--profile', 'smoke',
                 '--work-dir', str(work_root)]) == 0
    out = capsys.readouterr().out
    assert 'action top-1' in out and 'MLflow run' in out
    runs = _parents(work_root, method=method, profile='smoke', seed='0')
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == 'FINISHED' and run.data.tags['bench.complete'] == 'true'
    from benchmark.datasets.vp_synth import GENERATOR_VERSION  # the report keys on it
    assert run.data.tags['bench.data_version'] == f'generator {GENERATOR_VERSION}'
    m = run.data.metrics
    for key in ('action_top1', 'privacy_cmap', 'privacy_f1_macro', 'floor_cmap',
                'floor_f1_macro', 'floor_action_top1', 'privacy_ap_face', 'privacy_f1_nudity',
                'time_total_s', 'time_setup_s'):
        assert key in m, key
    assert 0 <= m['action_top1'] <= 1 and 0 <= m['privacy_cmap'] <= 1
    for key in ('readability_outline', 'readability_depth'):  # truth-based, in [0, 1]
        assert 0 <= m[key] <= 1, key
    assert m['readability_colour'] >= 0  # a share of raw's chroma: above 1 if colour is added
    assert 'readability_person' not in m  # the detector measures are for data without truth
    if method in ('raw', 'depth'):  # the input frames keep all their colour; depth frames none
        assert m['readability_colour'] == (1.0 if method == 'raw' else 0.0)
    if method == 'depth':  # the nearness map itself
        assert m['readability_depth'] == pytest.approx(1.0, abs=1e-6)
    tags = run.data.tags
    assert tags['bench.commit'] and tags['bench.device'].startswith('cpu')
    assert tags['bench.train_dataset'] == 'vp_synth'
    c = _store(work_root)
    children = c.search_runs([run.info.experiment_id],
                             f"tags.`mlflow.parentRunId` = '{run.info.run_id}'")
    assert sorted(r.data.tags['bench.stage'] for r in children) == ['action', 'fit', 'privacy']
    action = next(r for r in children if r.data.tags['bench.stage'] == 'action')
    assert c.get_metric_history(action.info.run_id, 'train_loss')
    artifacts = {a.path for a in c.list_artifacts(run.info.run_id, 'samples')}
    assert artifacts == {'samples/test_frames.npz', 'samples/raw_frames.npz'}
    assert any(p.path == 'config' for p in c.list_artifacts(run.info.run_id))
    assert 'config.anonymizer.type' not in run.data.params  # params are the flattened config
    assert run.data.params['anonymizer.type']
    if method == 'raprivacy':  # its smoke profile anonymizes the videos once, then cleans up
        assert m['time_anonymize_once_s'] > 0
        assert not (work_root / 'vp_synth' / method / 'smoke' / 'seed0' / 'anonymized').exists()


def test_a_fit_made_to_saturate_stops_and_the_run_is_recorded_failed(work_root, capsys, monkeypatch,
                                                                      imagenet_mobilenet):
    from raprivacy.decoder import Decoder
    decode = Decoder.forward
    monkeypatch.setattr(Decoder, 'forward', lambda self, *feats, size: decode(self, *feats, size=size) + 1e3)
    assert main(['run', '--method', 'raprivacy', '--profile', 'smoke', '--seeds', '7,8',
                 '--work-dir', str(work_root), '--cfg-options', 'log_interval=1']) == 2
    # one line per seed (among data generation and store creation messages): a collapse stops no other seed
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith('bench: ')]
    assert len(err) == 2 and all('fit collapsed at iteration 4: 100% of output values saturated' in e for e in err)
    runs = _parents(work_root, method='raprivacy', seed='7')
    assert len(runs) == 1 and len(_parents(work_root, method='raprivacy', seed='8')) == 1
    run = runs[0]
    assert run.info.status == 'FAILED' and run.data.tags['bench.complete'] == 'false'
    assert err[0] == f'bench: seed 7: {run.data.tags["bench.failure"]}'
    assert 'action_top1' not in run.data.metrics
    c = _store(work_root)
    fit = c.search_runs([run.info.experiment_id], f"tags.`mlflow.parentRunId` = '{run.info.run_id}'")
    assert [(r.data.tags['bench.stage'], r.info.status) for r in fit] == [('fit', 'FAILED')]
    saturated = c.get_metric_history(fit[0].info.run_id, 'train_saturated')
    assert saturated and saturated[-1].value == 1.0  # the curve that shows why
    monkeypatch.undo()  # the same command again resumes the run, which now completes
    assert main(['run', '--method', 'raprivacy', '--profile', 'smoke', '--seed', '7',
                 '--work-dir', str(work_root), '--cfg-options', 'log_interval=1']) == 0
    run = c.get_run(run.info.run_id)
    assert run.info.status == 'FINISHED' and 'bench.failure' not in run.data.tags


def test_finished_run_is_not_run_twice(work_root, capsys):
    args = ['run', '--method', 'raw', '--profile', 'smoke', '--work-dir', str(work_root)]
    assert main(args) == 0
    before = len(_parents(work_root, method='raw', profile='smoke'))
    assert main(args) == 0
    assert 'is complete' in capsys.readouterr().out
    assert len(_parents(work_root, method='raw', profile='smoke')) == before


def test_a_changed_config_in_the_same_folder_is_refused(work_root, capsys):
    main(['run', '--method', 'raw', '--profile', 'smoke', '--work-dir', str(work_root)])
    code = main(['run', '--method', 'raw', '--profile', 'smoke', '--work-dir', str(work_root),
                 '--cfg-options', 'target_schedule.lr=0.01'])
    assert code == 2
    assert '--fresh' in capsys.readouterr().err


def test_a_run_on_older_data_is_refused_not_reused(work_root, capsys):
    """A suite upgrade that changes VP-Synth's generator never passes an old run off as new."""
    args = ['run', '--method', 'raw', '--profile', 'smoke', '--work-dir', str(work_root)]
    assert main(args) == 0
    state_file = next(work_root.glob('vp_synth/raw/smoke/seed0/state.json'))
    state = json.loads(state_file.read_text())
    state['data_version'] = 'generator 1'
    state_file.write_text(json.dumps(state))
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert 'other vp_synth data (generator 1' in err and '--fresh' in err
    assert main(args + ['--fresh']) == 0


def test_seeds_give_one_run_each(work_root):
    assert main(['run', '--method', 'downsample_4x', '--profile', 'smoke', '--seeds', '1,2',
                 '--work-dir', str(work_root)]) == 0
    for seed in ('1', '2'):
        assert len(_parents(work_root, method='downsample_4x', seed=seed)) == 1


def test_transfer_run_fits_on_a_and_evaluates_on_b(work_root):
    assert main(['run', '--method', 'raw', '--profile', 'smoke', '--train-dataset', 'vp_synth',
                 '--dataset', 'vp_synth_b', '--work-dir', str(work_root)]) == 0
    runs = _parents(work_root, dataset='vp_synth_b', method='raw')
    assert len(runs) == 1
    assert runs[0].data.tags['bench.train_dataset'] == 'vp_synth'
    assert runs[0].data.tags['bench.dataset'] == 'vp_synth_b'


def test_a_transfer_run_takes_the_anonymizer_the_in_domain_run_fitted(tmp_path, capsys):
    """The transfer of a learned method reuses the in-domain run's fit from the same store, or
    from the store --fit-from names; a store without that fit is a one-line error there."""
    table1, transfer = tmp_path / 'table1', tmp_path / 'transfer'
    assert main(['run', '--method', 'spact', '--profile', 'smoke', '--work-dir', str(table1)]) == 0
    fitted = table1 / 'vp_synth' / 'spact' / 'smoke' / 'seed0' / 'fit' / 'anonymizer.pth'
    args = ['run', '--method', 'spact', '--profile', 'smoke', '--train-dataset', 'vp_synth',
            '--dataset', 'vp_synth_b']
    assert main(args + ['--work-dir', str(transfer), '--fit-from', str(tmp_path / 'elsewhere')]) == 2
    said = capsys.readouterr().err.strip().splitlines()[-1]
    assert 'elsewhere' in said and 'holds no finished fit' in said and '--dataset vp_synth' in said
    assert main(args + ['--work-dir', str(transfer), '--fit-from', str(table1)]) == 0
    assert 'fit reused:' in capsys.readouterr().out
    run_dir = transfer / 'vp_synth_to_vp_synth_b' / 'spact' / 'smoke' / 'seed0'
    assert (run_dir / 'fit' / 'anonymizer.pth').read_bytes() == fitted.read_bytes()
    run = _parents(transfer, dataset='vp_synth_b', method='spact')[0]
    assert run.data.tags['bench.fit_from'] == str(fitted.parent.parent.resolve())
    assert run.data.metrics['time_fit_reused_s'] > 0 and run.data.metrics['time_fit_s'] < 5
    assert not list((run_dir / 'fit').glob('*/*.log'))  # no fit ran here
    # the same store: found without --fit-from; another config is fitted, not reused
    assert main(args + ['--work-dir', str(table1)]) == 0
    assert _parents(table1, dataset='vp_synth_b', method='spact')[0].data.tags['bench.fit_from']
    assert main(args + ['--work-dir', str(table1), '--seed', '1']) == 0
    refit = _parents(table1, dataset='vp_synth_b', method='spact', seed='1')[0]
    assert 'bench.fit_from' not in refit.data.tags and 'time_fit_reused_s' not in refit.data.metrics
    assert main(['run', '--method', 'spact', '--profile', 'smoke', '--seed', '2', '--work-dir', str(table1),
                 '--fit-from', str(table1)]) == 2  # not a transfer run
    assert 'only a transfer run (--train-dataset)' in capsys.readouterr().err


def _interrupted_then_resumed(work_root: Path, sig: int, seed: str):
    run_dir = work_root / 'vp_synth' / 'raw' / 'smoke' / f'seed{seed}'
    cmd = [sys.executable, '-m', 'benchmark.cli', 'run', '--method', 'raw', '--profile', 'smoke',
           '--seed', seed, '--work-dir', str(work_root),
           '--cfg-options', 'target_schedule.max_epochs=4']
    # A shell starts background jobs with SIGINT ignored, and a child inherits that: restore
    # the default so that this test means the same when pytest itself runs in the background.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 240
    # wait for a complete epoch_2 checkpoint: killing mid-write is test_resume_pointer_...'s case
    while not complete(run_dir / 'action' / 'epoch_2.pth'):
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        assert time.time() < deadline, 'no checkpoint within 4 minutes'
        time.sleep(0.05)
    proc.send_signal(sig)
    proc.wait(timeout=60)
    assert not (run_dir / 'action' / 'result.json').exists()
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    return second.stdout + second.stderr


@pytest.mark.parametrize('sig, seed', [(signal.SIGKILL, '11'), (signal.SIGINT, '12')])
def test_interrupted_run_resumes_into_one_complete_run(work_root, sig, seed):
    log = _interrupted_then_resumed(work_root, sig, seed)
    assert 'resuming MLflow run' in log
    assert '[fit] already done' in log
    # the console says where the stage resumed (MMEngine's own log is in the run folder)
    assert 'action: resumed from its checkpoint at iteration' in log
    assert 'epoch 2\n' in log or 'epoch 3\n' in log
    runs = _parents(work_root, method='raw', profile='smoke', seed=seed)
    assert len(runs) == 1
    assert runs[0].info.status == 'FINISHED'
    assert runs[0].data.tags['bench.complete'] == 'true'
    # the setup time is the first process's, kept in the run's state across the resume
    state = json.loads((work_root / 'vp_synth' / 'raw' / 'smoke' / f'seed{seed}' / 'state.json').read_text())
    assert runs[0].data.metrics['time_setup_s'] == pytest.approx(state['setup_s'])
    # the resumed stage's time counts the first process's attempt up to its checkpoint
    metrics = runs[0].data.metrics
    assert 0 < metrics['time_action_resumed_s'] < metrics['time_action_s']
    assert 'time_privacy_resumed_s' not in metrics and 'time_action_partial' not in metrics
    assert 'of which' in log and 'in attempts before a resume' in log


def test_unknown_names_exit_with_one_line(work_root, capsys):
    assert main(['run', '--method', 'strongblur', '--work-dir', str(work_root)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count('\n') == 0 and "did you mean 'strong_blur'" in err


def test_unreachable_server_fails_before_training(tmp_path, capsys):
    os.environ['MLFLOW_HTTP_REQUEST_TIMEOUT'] = '3'
    start = time.time()
    code = main(['run', '--method', 'raw', '--profile', 'smoke', '--work-dir', str(tmp_path),
                 '--tracking-uri', 'http://127.0.0.1:9'])
    assert code == 2 and time.time() - start < 60
    assert 'cannot be reached' in capsys.readouterr().err
    assert not list(tmp_path.rglob('*.pth'))


def test_saved_samples_are_the_same_clips_for_every_method(work_root):
    base = work_root / 'vp_synth'
    raw = np.load(base / 'raw' / 'smoke' / 'seed0' / 'samples' / 'raw_frames.npz')
    blk = np.load(base / 'blackening' / 'smoke' / 'seed0' / 'samples' / 'test_frames.npz')
    assert list(raw['video_ids']) == list(blk['video_ids'])
    # the human study asks for these clips' actions by name
    assert list(blk['classes']) and len(blk['actions']) == len(blk['video_ids'])
    from benchmark.datasets.vp_synth import VPSynthSource
    assert [VPSynthSource.classes.index(str(c)) for c in blk['classes']] == list(range(len(blk['classes'])))
    assert raw['frames'].shape == blk['frames'].shape and raw['frames'].dtype == np.uint8
    assert not np.array_equal(raw['frames'], blk['frames'])


def test_finished_stages_keep_no_training_checkpoint_unless_asked(work_root, tmp_path):
    run_dir = work_root / 'vp_synth' / 'raw' / 'smoke' / 'seed0'  # made by the smoke run above
    assert (run_dir / 'result.json').is_file() and (run_dir / 'fit' / 'anonymizer.pth').is_file()
    assert not list(run_dir.rglob('*_*.pth')) and not list(run_dir.rglob('last_checkpoint'))
    assert main(['run', '--method', 'raw', '--profile', 'smoke', '--work-dir', str(tmp_path),
                 '--cfg-options', 'keep_checkpoints=True']) == 0
    kept = tmp_path / 'vp_synth' / 'raw' / 'smoke' / 'seed0'
    assert sorted(p.relative_to(kept).as_posix() for p in kept.rglob('epoch_*.pth')) == [
        'action/epoch_1.pth', 'privacy/epoch_1.pth']


def test_parallel_first_runs_share_a_fresh_store(tmp_path):
    """Four runs started at once on an empty work dir all finish, none lost or doubled."""
    methods = ('raw', 'depth', 'downsample_2x', 'blackening')
    procs = [subprocess.Popen([sys.executable, '-m', 'benchmark.cli', 'run', '--method', m,
                               '--profile', 'smoke', '--work-dir', str(tmp_path)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for m in methods]
    outputs = [p.communicate(timeout=1200)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [o[-2000:] for o in outputs]
    for m in methods:
        runs = _parents(tmp_path, method=m)
        assert len(runs) == 1 and runs[0].info.status == 'FINISHED', m


def test_a_lost_state_file_continues_the_same_mlflow_run(work_root, capsys):
    """state.json gone mid-run: the parent run is found by its run key, and a RUNNING parent
    that nothing names any more is closed, so no run stays RUNNING and none is doubled."""
    args = ['run', '--method', 'downsample_4x', '--profile', 'smoke', '--seed', '5',
            '--work-dir', str(work_root)]
    assert main(args) == 0
    run_dir = work_root / 'vp_synth' / 'downsample_4x' / 'smoke' / 'seed5'
    (first,) = _parents(work_root, method='downsample_4x', seed='5')
    c = _store(work_root)
    # as a kill during the privacy stage leaves it, with the state file lost besides
    c.set_tag(first.info.run_id, 'bench.complete', 'false')
    c.update_run(first.info.run_id, status='RUNNING')
    for name in ('state.json', 'result.json', 'privacy/result.json'):
        (run_dir / name).unlink()
    # and the parent of an earlier start whose state was lost too, left RUNNING by a kill -9
    orphan = c.create_run(first.info.experiment_id, start_time=first.info.start_time - 60_000, tags={
        k: v for k, v in first.data.tags.items() if k.startswith('bench.')}).info.run_id
    capsys.readouterr()
    assert main(args) == 0
    out = capsys.readouterr().out
    assert 'rebuilt it from MLflow run ' + first.info.run_id in out and '[action] already done' in out
    runs = {r.info.run_id: r for r in _parents(work_root, method='downsample_4x', seed='5')}
    assert set(runs) == {first.info.run_id, orphan}
    assert runs[first.info.run_id].info.status == 'FINISHED'
    assert runs[first.info.run_id].data.tags['bench.complete'] == 'true'
    assert runs[orphan].info.status == 'KILLED'


def test_a_folder_without_state_or_record_is_refused(tmp_path, capsys):
    (tmp_path / 'vp_synth' / 'raw' / 'smoke' / 'seed0' / 'action').mkdir(parents=True)
    assert main(['run', '--method', 'raw', '--profile', 'smoke', '--work-dir', str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after MLflow's own log lines
    assert err.startswith('bench: ') and 'has no state.json' in err and '--fresh' in err


def test_a_second_process_on_the_same_run_folder_is_refused(tmp_path, capsys):
    folder = tmp_path / 'vp_synth' / 'raw' / 'smoke'
    holder = subprocess.Popen(
        [sys.executable, '-c', 'import sys, time; from pathlib import Path; from benchmark.store import '
         'locked\nwith locked(Path(sys.argv[1])):\n    print("held", flush=True); time.sleep(60)',
         str(folder / '.seed0.lock')], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'held'
        assert main(['run', '--method', 'raw', '--profile', 'smoke', '--work-dir', str(tmp_path)]) == 2
    finally:
        holder.kill()
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith('bench: another bench run is running') and str(holder.pid) in err
    assert not (folder / 'seed0').exists()
