"""How fast the study page loads with 200 clips in the pool, and a screenshot of it.

The pool holds 200 clips of real vp_synth test videos (the cpu profile's frames) through every
fixed method, as `bench study` would gather them from runs. The page is served by the study's
Flask app on 127.0.0.1 (Werkzeug, threaded, as `bench study` serves it) and timed two ways:

- HTTP: a participant's question page and its clip (GIF), fetched 20 times each by urllib;
- Chromium (headless, when installed): the browser's own navigation timing of the question page,
  from the request to the load event (the clip shown), 10 loads.

Writes results/study_page_bench.json and reports/study_page.png (the question page).

    python scripts/bench_study_page.py
"""
from __future__ import annotations

import json
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import torch

from benchmark import study
from benchmark.anonymizer import build_anonymizer
from benchmark.config import available_methods, resolve_config
from benchmark.data import split_aux
from benchmark.datasets.clips import ClipDataset
from benchmark.protocol import _source_cfg
from benchmark.registry import ANONYMIZERS, DATASETS, import_all

POOL = 200


def _pool(store: study.StudyStore) -> None:
    import_all()
    methods = []
    for method in available_methods():
        config = resolve_config(method, 'vp_synth', 'cpu').anonymizer.to_dict()
        if not ANONYMIZERS.get(config['type']).learns:  # a learning one needs its fit first
            methods.append((method, build_anonymizer(config).eval()))
    cfg = resolve_config('raw', 'vp_synth', 'cpu')
    data = cfg.dataset.to_dict()
    source = DATASETS.build(_source_cfg(data, 'test', ()))
    ds = ClipDataset(source, test_mode=True, clip_len=cfg.clip.clip_len,
                     frame_interval=data['clip']['frame_interval'], crop_size=cfg.clip.crop_size,
                     num_clips=1, num_crops=1)
    per_method = -(-POOL // len(methods))
    picks = np.linspace(0, len(ds) - 1, per_method).round().astype(int)
    items = [ds[int(i)] for i in picks]
    packed = torch.stack([it['inputs'][0] for it in items]).float() / 255
    rgb, aux = split_aux(packed, ds.metainfo['aux_channels'])
    for method, anonymizer in methods:
        with torch.no_grad():
            out = anonymizer(rgb, aux).clamp(0, 1)
        frames = (out.permute(0, 2, 3, 4, 1) * 255).round().to(torch.uint8).numpy()
        for item, clip_frames in zip(items, frames):
            if len(store.clip_ids()) >= POOL:
                return
            meta = item['data_samples'].metainfo
            run_id = f'bench-{method}'
            clip = study.Clip(study.clip_id(run_id, meta['video_id']), run_id, method, 'vp_synth',
                              'cpu', '0', meta['video_id'], source.classes[meta['action']],
                              tuple(source.classes))
            store.add_clip(clip, study.encode_gif(clip_frames))


def _timed(url: str, repeats: int) -> list[float]:
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        with urllib.request.urlopen(url) as response:
            response.read()
        seconds.append(time.perf_counter() - start)
    return seconds


def _summary(seconds: list[float]) -> dict:
    return {'median_s': statistics.median(seconds), 'max_s': max(seconds), 'n': len(seconds)}


def main() -> None:
    from werkzeug.serving import make_server
    record: dict = {'pool': POOL}
    with tempfile.TemporaryDirectory() as tmp:
        store = study.StudyStore(Path(tmp) / 'study.db')
        start = time.perf_counter()
        _pool(store)
        record['pool_built_s'] = time.perf_counter() - start
        record['clips'] = len(store.clip_ids())
        server = make_server('127.0.0.1', 0, study.create_app(store), threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f'http://127.0.0.1:{server.server_port}'
        first = store.next_clip('bench')[0]
        record['http_question_page'] = _summary(_timed(f'{base}/p/bench', 20))
        record['http_clip_gif'] = _summary(_timed(f'{base}/clip/{first.clip_id}.gif', 20))
        record['clip_gif_bytes'] = len(store.gif(first.clip_id))
        from tests import browser
        why = browser.missing()
        if why:
            record['chromium'] = f'not measured: {why}'
        else:
            driver = browser.chromium()
            try:
                loads = []
                for _ in range(10):
                    driver.get(f'{base}/p/bench')
                    loads.append(driver.execute_script(
                        'const t = performance.getEntriesByType("navigation")[0];'
                        'return (t.loadEventEnd - t.startTime) / 1000;'))
                record['chromium_question_page_load'] = _summary(loads)
                Path('reports').mkdir(exist_ok=True)
                driver.save_screenshot('reports/study_page.png')
            finally:
                driver.quit()
        server.shutdown()
    record['limit_s'] = 1.0
    record['note'] = ('2-core machine with other work running beside it; times of one question '
                      'page and its clip, the pool in a SQLite file')
    Path('results').mkdir(exist_ok=True)
    Path('results/study_page_bench.json').write_text(json.dumps(record, indent=2) + '\n')
    print(json.dumps(record, indent=2))


if __name__ == '__main__':
    main()
