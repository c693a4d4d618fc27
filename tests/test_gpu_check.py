"""scripts/gpu_check.py, the device script of issue 21, runs end to end on the CPU (``--dry``:
tiny sizes, one timed step per row) and writes the JSON a GPU run writes."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'scripts'))
import gpu_check  # noqa: E402


def test_rows_cover_plain_fast_each_switch_added_and_each_left_out():
    names = [row[0] for row in gpu_check.raprivacy_settings()]
    assert names[:3] == ['fast', 'fast+compile', 'plain']
    switches = list(gpu_check.SWITCHES)
    assert {f'fast-{s}' for s in switches} <= set(names)
    assert 'plain+' + '+'.join(switches[:-1]) in names
    settings = {row[0]: row[1:] for row in gpu_check.raprivacy_settings()}
    assert settings['fast'][0] == gpu_check.FAST and settings['fast'][2]  # every switch, bf16
    assert settings['plain'] == (gpu_check.PLAIN, {}, False)
    assert settings['fast-channels_last'][1] == {} and settings['fast-bf16'][2] is False


def test_missing_package_stops_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_check, 'REQUIRED', ('torch', 'not_a_package_xyz'))
    with pytest.raises(SystemExit) as exit_info:
        gpu_check.main(['--out', str(tmp_path), '--dry'])
    assert exit_info.value.code == 2
    assert not (tmp_path / 'gpu_check.json').exists()


@pytest.mark.slow
def test_dry_run_measures_every_row_and_writes_its_json(tmp_path, imagenet_mobilenet):
    out, work = tmp_path / 'out', tmp_path / 'work'
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1')
    done = subprocess.run([sys.executable, str(ROOT / 'scripts/gpu_check.py'), '--dry', '--out', str(out),
                           '--work', str(work), '--budget-s', '3000'],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    record = json.loads((out / 'gpu_check.json').read_text())
    failed = [(r.get('setting') or r.get('method'), r['status']) for r in record['steps']
              if r['status'] != 'ok' and 'compile' not in (r.get('setting') or '')]
    assert done.returncode == 0 and not failed, (failed, done.stderr[-2000:])
    env_record = record['environment']
    assert env_record['device_name'] and env_record['torch'] and 'cuda' in env_record
    steps = {(r['model'], r.get('setting') or r.get('method')): r for r in record['steps']}
    assert len(steps) == len(gpu_check.raprivacy_settings()) + 3 + 2
    compiled = [row for (model, name), row in steps.items() if 'compile' in (name or '')]
    assert len(compiled) == 2 and all(r['status'].startswith('skipped: compile') for r in compiled)
    for (model, name), row in steps.items():
        if model != 'e2e' and 'compile' not in name:
            assert row['ms'] > 0 and row['clips_per_s'] > 0 and row['first_losses'], name
    # the device's own equivalence check: every fp32 setting anonymizes as the plain path does
    for name, *_ in gpu_check.raprivacy_settings():
        row = steps['raprivacy', name]
        if 'compile' in name:
            continue
        bound = 0.15 if row['bf16'] else 1e-4  # tests/raprivacy/test_fast_path.py's bounds
        assert row['max_abs_diff_vs_plain'] <= bound, (name, row['max_abs_diff_vs_plain'])
    for method in ('raw', 'raprivacy'):
        metrics = steps['e2e', method]['metrics']
        assert 0 <= metrics['action_top1'] <= 1 and 0 <= metrics['privacy_cmap'] <= 1
