"""A small MLflow store logged exactly as ``benchmark/tracking_schema.md`` says, shared by the
report tests (creating a SQLite store takes seconds), and the report built from it twice: from
the store and from its ``results/runs.csv`` export."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from benchmark.metrics import PRIVACY_ATTRIBUTES

T0 = 1_760_000_000_000  # ms; every run starts at T0 + its `at` offset (seconds)
FLOORS = {'floor_action_top1': 0.10, 'floor_cmap': 0.584, 'floor_f1_macro': 0.688}
TABLE_NAMES = {'raw': 'Raw Data', 'blackening': 'Blackening', 'spact': 'SPAct',
               'raprivacy': 'RAPrivacy', 'mymethod': 'MyMethod'}
LEARNING = {'blackening', 'spact', 'raprivacy', 'mymethod'}
READABLE = {'raw', 'raprivacy'}
# hashes of the pretrained target backbones every run started from (benchmark.target_pretrain)
ACTION_INIT, PRIVACY_INIT = '0e76b35ff5bc1a2b', '4adc0b490ded3c4d'

# (method, dataset, profile, seed, at, complete, top1, f1, cmap, extra): the store's parent runs.
RUNS = [
    # vp_hmdb51 / smoke
    ('raw', 'vp_hmdb51', 'smoke', 0, 10, True, 0.50, 0.67, 0.75, {}),
    ('raw', 'vp_hmdb51', 'smoke', 1, 11, True, 0.52, 0.68, 0.76, {}),
    ('raw', 'vp_hmdb51', 'smoke', 2, 12, True, 0.54, 0.66, 0.77, {}),
    ('blackening', 'vp_hmdb51', 'smoke', 0, 13, True, 0.40, 0.64, 0.70, {}),
    ('blackening', 'vp_hmdb51', 'smoke', 1, 14, True, 0.42, 0.65, 0.72, {}),
    ('raprivacy', 'vp_hmdb51', 'smoke', 0, 15, True, 0.48, 0.60, 0.66, {'samples': True}),
    ('raprivacy', 'vp_hmdb51', 'smoke', 1, 16, True, 0.50, 0.61, 0.68, {}),
    # spact seed 0: an older complete run counts, a newer incomplete one does not;
    # seed 1: of two complete runs the newer counts.
    ('spact', 'vp_hmdb51', 'smoke', 0, 17, True, 0.30, 0.63, 0.74, {}),
    ('spact', 'vp_hmdb51', 'smoke', 0, 30, False, 0.99, 0.10, 0.10, {}),
    ('spact', 'vp_hmdb51', 'smoke', 1, 18, True, 0.20, 0.62, 0.90, {}),
    ('spact', 'vp_hmdb51', 'smoke', 1, 31, True, 0.35, 0.63, 0.74, {}),
    ('mymethod', 'vp_hmdb51', 'smoke', 0, 19, True, 0.45, 0.62, 0.69, {}),
    # vp_synth / smoke: floors differ between the two raw runs
    ('raw', 'vp_synth', 'smoke', 0, 20, True, 0.90, 0.70, 0.80, {'floor_cmap': 0.50}),
    ('raw', 'vp_synth', 'smoke', 1, 21, True, 0.92, 0.70, 0.82, {'floor_cmap': 0.52}),
    ('raprivacy', 'vp_synth', 'smoke', 0, 22, True, 0.85, 0.60, 0.60, {'floor_cmap': 0.51}),
    # transfer vp_synth -> vp_synth_b, and the in-domain runs on vp_synth_b
    ('raprivacy', 'vp_synth_b', 'smoke', 0, 23, True, 0.70, 0.62, 0.64,
     {'train_dataset': 'vp_synth'}),
    ('raprivacy', 'vp_synth_b', 'smoke', 1, 24, True, 0.72, 0.62, 0.66,
     {'train_dataset': 'vp_synth'}),
    ('raprivacy', 'vp_synth_b', 'smoke', 0, 25, True, 0.80, 0.60, 0.60, {}),
    # another profile, never mixed into smoke's tables
    ('raw', 'vp_synth', 'cpu', 0, 26, True, 0.60, 0.70, 0.90, {'commit': 'f' * 40}),
]


# Per-video test outputs of the vp_hmdb51 smoke runs, for the intervals and paired tests:
# action: the first round(top1 * N) videos right (nested sets, so a higher top-1 is a
# significant gain); privacy: scores that rank positives first with this method's signal, all
# above 0.5 (every method predicts all positive: equal F1, so no F1 difference is significant).
N_VIDEOS = 400
PRIVACY_SIGNAL = {'raw': 4.0, 'spact': 3.0, 'blackening': 2.0, 'mymethod': 1.0, 'raprivacy': 0.2}


def predictions(method: str, seed: int, top1: float) -> dict[str, dict]:
    rng = np.random.default_rng(seed)
    ids = np.array([f'video_{i:03d}' for i in range(N_VIDEOS)])
    actions = np.arange(N_VIDEOS) % 10
    probs = np.full((N_VIDEOS, 10), 0.05)
    right = round(top1 * N_VIDEOS)
    probs[np.arange(N_VIDEOS), np.where(np.arange(N_VIDEOS) < right, actions, (actions + 1) % 10)] = 0.55
    labels = np.random.default_rng(123).integers(0, 2, size=(N_VIDEOS, len(PRIVACY_ATTRIBUTES)))
    noise = rng.normal(size=labels.shape)
    scores = 0.6 + 0.35 / (1 + np.exp(-(PRIVACY_SIGNAL[method] * (labels - 0.5) + noise)))
    return {'action': dict(video_ids=ids, labels=actions, scores=probs),
            'privacy': dict(video_ids=ids, labels=labels, scores=scores)}


def _log_parent(client, experiments, spec, artifacts_dir: Path) -> str:
    from mlflow.entities import Metric, Param

    method, dataset, profile, seed, at, complete, top1, f1, cmap, extra = spec
    train_dataset = extra.get('train_dataset', dataset)
    if dataset not in experiments:
        experiments[dataset] = client.create_experiment(dataset)
    commit = extra.get('commit', ('a' * 39 + '1') if at < 15 else ('b' * 39 + '2'))
    tags = {
        'mlflow.runName': f'{method}-{profile}-s{seed}', 'bench.kind': 'parent',
        'bench.method': method, 'bench.anonymizer': method.title(),
        'bench.table_name': TABLE_NAMES[method],
        'bench.privacy_learning': str(method in LEARNING).lower(),
        'bench.readable': str(method in READABLE).lower(),
        'bench.dataset': dataset, 'bench.train_dataset': train_dataset, 'bench.profile': profile,
        'bench.seed': str(seed), 'bench.run_key': f'{method}|{train_dataset}|{dataset}|{profile}|{seed}',
        'bench.commit': commit, 'bench.dirty': 'false', 'bench.device': 'cpu (2 cores)',
        'bench.host': 'testhost', 'bench.command': f'bench run {method} --seed {seed}',
        'bench.protocol_version': '1', 'bench.complete': str(complete).lower(),
        'bench.action_init': ACTION_INIT, 'bench.privacy_init': PRIVACY_INIT,
    }
    run = client.create_run(experiments[dataset], start_time=T0 + at * 1000, tags=tags)
    run_id = run.info.run_id
    metrics = {'action_top1': top1, 'privacy_f1_macro': f1, 'privacy_cmap': cmap,
               'privacy_cmap_attributes': 5.0, **FLOORS, 'time_total_s': 12.5}
    metrics.update({k: v for k, v in extra.items() if k.startswith('floor_')})
    for i, attr in enumerate(PRIVACY_ATTRIBUTES):
        metrics[f'privacy_ap_{attr}'] = cmap + (i - 2) * 0.01
        metrics[f'privacy_f1_{attr}'] = f1
    params = {'anonymizer.type': method.title(), 'clip.clip_len': '8', 'optim.lr': '1e-3'}
    client.log_batch(run_id, metrics=[Metric(k, v, T0, 0) for k, v in metrics.items()],
                     params=[Param(k, v) for k, v in params.items()])
    if method == 'raprivacy' and dataset == 'vp_hmdb51':
        for stage in ('fit', 'action', 'privacy'):
            child = client.create_run(experiments[dataset], start_time=T0 + at * 1000, tags={
                'mlflow.parentRunId': run_id, 'bench.kind': 'stage', 'bench.stage': stage})
            history = [Metric('train_loss', 2.0 / (step + 1) + seed * 0.1, T0 + step, step)
                       for step in range(6)]
            if stage == 'fit':
                history += [Metric('train_style', 1.0 / (step + 1), T0 + step, step) for step in range(6)]
            client.log_batch(child.info.run_id, metrics=history)
            client.set_terminated(child.info.run_id)
    if extra.get('samples') or (method == 'raw' and dataset == 'vp_hmdb51' and seed == 0):
        rng = np.random.default_rng(seed)
        raw = rng.integers(0, 255, size=(3, 4, 16, 16, 3), dtype=np.uint8)
        frames = raw if method == 'raw' else (raw // 4).astype(np.uint8)
        folder = artifacts_dir / run_id
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(folder / 'test_frames.npz', frames=frames, video_ids=np.array(['v1', 'v2', 'v3']))
        np.savez(folder / 'raw_frames.npz', frames=raw, video_ids=np.array(['v1', 'v2', 'v3']))
        client.log_artifacts(run_id, str(folder), artifact_path='samples')
    if dataset == 'vp_hmdb51' and profile == 'smoke':
        folder = artifacts_dir / run_id / 'predictions'
        folder.mkdir(parents=True)
        for stage, arrays in predictions(method, seed, top1).items():
            np.savez(folder / f'{stage}.npz', **arrays)
        client.log_artifacts(run_id, str(folder), artifact_path='predictions')
    client.set_terminated(run_id, 'FINISHED' if complete else 'FAILED', end_time=T0 + (at + 5) * 1000)
    return run_id


@pytest.fixture(scope='session')
def store(tmp_path_factory) -> str:
    """Tracking URI of the shared store."""
    from mlflow.tracking import MlflowClient

    root = tmp_path_factory.mktemp('store')
    uri = f'sqlite:///{root / "mlflow.db"}'
    client = MlflowClient(uri)
    # a fresh SQLite store puts artifacts in ./mlartifacts unless the experiment says otherwise
    experiments = {d: client.create_experiment(d, artifact_location=(root / 'artifacts' / d).as_uri())
                   for d in ('vp_hmdb51', 'vp_synth', 'vp_synth_b')}
    for spec in RUNS:
        _log_parent(client, experiments, spec, root / 'upload')
    return uri


@pytest.fixture(scope='session')
def built(store, tmp_path_factory):
    """The report built from the store and again from its export: (paths, folders)."""
    from benchmark.report import build_report

    root = tmp_path_factory.mktemp('built')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        from_store = build_report(store, root / 'reports', root / 'results',
                                  extra_methods=['newthing'])
        from_csv = build_report(None, root / 'reports_csv', root / 'unused',
                                from_csv=root / 'results' / 'runs.csv', extra_methods=['newthing'])
    return {'root': root, 'from_store': from_store, 'from_csv': from_csv,
            'warnings': [str(w.message) for w in caught]}
