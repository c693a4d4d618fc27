"""The human study: its pool, its page (through Flask's test client), its answers and results."""
import math
import re

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from benchmark import study
from benchmark.cli import main
from benchmark.stats import wilson_interval

CLASSES = ('wave', 'walk', 'jump')


def _frames(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)


def _store(tmp_path, per_method: int = 3) -> study.StudyStore:
    store = study.StudyStore(tmp_path / 'study.db')
    for m, method in enumerate(('raw', 'strong_blur')):
        for v in range(per_method):
            video = f'vp_synth_test_{v:04d}'
            clip = study.Clip(study.clip_id(f'run-{method}', video), f'run-{method}', method,
                              'vp_synth', 'cpu', '0', video, CLASSES[v % 3], CLASSES)
            assert store.add_clip(clip, study.encode_gif(_frames(10 * m + v)))
    return store


@pytest.fixture
def page(tmp_path):
    store = _store(tmp_path)
    return store, study.create_app(store).test_client()


def _shown_clip(client, participant: str) -> str:
    body = client.get(f'/p/{participant}').get_data(as_text=True)
    return re.search(r'name="clip_id" id="clip_id" value="(\w+)"', body).group(1)


def test_the_page_asks_for_the_action_without_naming_the_method(page):
    store, client = page
    assert 'participant code' in client.get('/').get_data(as_text=True)
    response = client.get('/start?participant=ann')
    assert response.status_code == 303 and response.headers['Location'].endswith('/p/ann')
    body = client.get('/p/ann').get_data(as_text=True)
    assert 'Clip 1 of 6' in body
    for choice in (*CLASSES, study.CANNOT_TELL):
        assert f'value="{choice}"' in body
    assert 'raw' not in body and 'blur' not in body and 'run-' not in body
    gif = client.get(f'/clip/{_shown_clip(client, "ann")}.gif')
    assert gif.status_code == 200 and gif.data[:6] == b'GIF89a'


def test_each_participant_has_an_own_order_kept_across_reloads(page):
    store, client = page
    orders = {p: store.order(p) for p in ('ann', 'bob', 'cy', 'dee')}
    assert all(sorted(o) == sorted(store.clip_ids()) for o in orders.values())
    assert len({tuple(o) for o in orders.values()}) > 1
    assert _shown_clip(client, 'ann') == _shown_clip(client, 'ann') == orders['ann'][0]


def test_answers_are_saved_at_once_and_a_participant_resumes_after_a_restart(page, tmp_path):
    store, client = page
    first = _shown_clip(client, 'ann')
    answer = store.clip(first).action
    response = client.post('/p/ann/answer', data={'clip_id': first, 'answer': answer, 'rating': '4'})
    assert response.status_code == 303
    second = _shown_clip(client, 'ann')
    assert second != first
    reopened = study.StudyStore(tmp_path / 'study.db')  # a restarted server reads the same file
    clip, done, total = reopened.next_clip('ann')
    assert (clip.clip_id, done, total) == (second, 1, 6)
    assert reopened.answers()[0] | {} == {
        'participant': 'ann', 'clip_id': first, 'answer': answer, 'correct': 1, 'rating': 4,
        'run_id': store.clip(first).run_id, 'method': store.clip(first).method,
        'dataset': 'vp_synth', 'profile': 'cpu'}


def test_bad_input_gets_one_clear_line_and_changes_nothing(page):
    store, client = page
    first = _shown_clip(client, 'ann')
    client.post('/p/ann/answer', data={'clip_id': first, 'answer': study.CANNOT_TELL})
    cases = [({'clip_id': first, 'answer': 'wave'}, 409, 'already answered'),
             ({'clip_id': 'nosuchclip', 'answer': 'wave'}, 404, 'unknown clip id'),
             ({'clip_id': store.order('ann')[1], 'answer': 'dance'}, 400, 'not one of the choices'),
             ({'clip_id': store.order('ann')[1], 'answer': 'wave', 'rating': '9'}, 400, 'must be 1 to 5'),
             ({'answer': 'wave'}, 400, 'needs clip_id')]
    for form, status, words in cases:
        response = client.post('/p/ann/answer', data=form)
        text = response.get_data(as_text=True)
        assert response.status_code == status and words in text, (form, text)
        assert text.startswith('bench study: ') and text.count('\n') == 1
    assert len(store.answers()) == 1
    assert client.get('/clip/nosuchclip.gif').status_code == 404
    assert client.get('/p/not%20valid').status_code == 400


def test_a_finished_participant_is_thanked(page):
    store, client = page
    for clip_id in store.order('ann'):
        client.post('/p/ann/answer', data={'clip_id': clip_id, 'answer': 'walk'})
    assert 'All 6 clips are answered' in client.get('/p/ann').get_data(as_text=True)


def test_wilson_interval_known_values():
    low, high = wilson_interval(5, 10)
    assert (round(low, 4), round(high, 4)) == (0.2366, 0.7634)
    assert wilson_interval(0, 10)[0] == pytest.approx(0.0, abs=1e-12)
    assert round(wilson_interval(0, 10)[1], 4) == 0.2775
    assert wilson_interval(10, 10)[1] == 1.0
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


def test_results_count_cannot_tell_as_wrong_per_method(tmp_path):
    store = _store(tmp_path)
    for clip_id in store.order('ann'):
        clip = store.clip(clip_id)
        answer = clip.action if clip.method == 'raw' else study.CANNOT_TELL
        store.answer('ann', clip_id, answer, 5 if clip.method == 'raw' else 1)
    rows, per_run = study.results(store)
    by_method = {r['method']: r for r in rows}
    assert by_method['raw']['top1'] == 1.0 and by_method['raw']['answers'] == 3
    assert by_method['strong_blur']['top1'] == 0.0 and by_method['strong_blur']['cannot_tell'] == 3
    assert by_method['raw']['mean_rating'] == 5.0
    assert (by_method['raw']['top1_low'], by_method['raw']['top1_high']) == wilson_interval(3, 3)
    assert per_run == {'run-raw': {'answers': 3, 'correct': 3},
                       'run-strong_blur': {'answers': 3, 'correct': 0}}


def _mlflow_run(tmp_path, method: str, with_labels: bool = True) -> tuple[str, str]:
    """A complete parent run in a fresh store with a samples artifact, as the protocol logs it."""
    uri = f'sqlite:///{tmp_path / "mlflow.db"}'
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name('vp_synth') or client.get_experiment(
        client.create_experiment('vp_synth', artifact_location=str(tmp_path / 'artifacts')))
    tags = {'kind': 'parent', 'complete': 'true', 'method': method, 'dataset': 'vp_synth',
            'train_dataset': 'vp_synth', 'profile': 'cpu', 'seed': '0', 'protocol_version': '3',
            'data_version': 'generator 2'}
    run = client.create_run(exp.experiment_id, tags={f'bench.{k}': v for k, v in tags.items()})
    arrays = dict(frames=np.stack([_frames(1), _frames(2)]),
                  video_ids=np.array(['vp_synth_test_0000', 'vp_synth_test_0005']))
    if with_labels:
        arrays.update(actions=np.array([0, 2]), classes=np.array(CLASSES))
    sample = tmp_path / f'{method}_test_frames.npz'
    np.savez_compressed(sample, **arrays)
    folder = tmp_path / 'upload'
    folder.mkdir(exist_ok=True)
    (folder / 'test_frames.npz').write_bytes(sample.read_bytes())
    client.log_artifact(run.info.run_id, str(folder / 'test_frames.npz'), 'samples')
    client.set_terminated(run.info.run_id)
    return uri, run.info.run_id


def test_the_pool_comes_from_the_runs_and_results_land_in_mlflow(tmp_path, capsys):
    uri, raw_run = _mlflow_run(tmp_path, 'raw')
    _, old_run = _mlflow_run(tmp_path, 'weak_blur', with_labels=False)
    store = study.StudyStore(tmp_path / 'study.db')
    filled = study.fill_pool(store, uri)
    assert filled == {'added': 2, 'clips': 2, 'unlabelled': 1}
    assert study.fill_pool(store, uri)['added'] == 0  # a restart adds nothing twice
    assert sorted(store.clip(c).action for c in store.clip_ids()) == ['jump', 'wave']
    for clip_id in store.clip_ids():
        store.answer('ann', clip_id, store.clip(clip_id).action, None)
    store.close()
    assert main(['study', 'results', '--tracking-uri', uri, '--db', str(tmp_path / 'study.db')]) == 0
    out = capsys.readouterr().out
    assert re.search(r'raw\s+100\.0%', out) and 'logged readability_human_* on 1 runs' in out
    metrics = MlflowClient(uri).get_run(raw_run).data.metrics
    assert metrics['readability_human_top1'] == 1.0 and metrics['readability_human_answers'] == 2


def test_study_commands_refuse_missing_stores_and_files_in_one_line(tmp_path, capsys):
    assert main(['study', '--work-dir', str(tmp_path / 'none')]) == 2
    err = capsys.readouterr().err
    assert err.startswith('bench: ') and err.count('\n') == 1 and 'mlflow.db' in err
    assert main(['study', 'results', '--work-dir', str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith('bench: no study at ') and err.count('\n') == 1
    uri, _ = _mlflow_run(tmp_path, 'raw', with_labels=False)
    capsys.readouterr()  # MLflow's own log lines from creating the store
    assert main(['study', '--tracking-uri', uri, '--db', str(tmp_path / 's.db')]) == 2
    err = capsys.readouterr().err
    assert 'no run in' in err and '1 runs saved theirs without' in err and err.count('\n') == 1
