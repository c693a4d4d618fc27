"""The human readability study: a local page that asks people which action an anonymized clip shows.

``bench study`` gathers the sample clips every run saves (``samples/test_frames.npz``: the same
test videos for every method, with their action labels) from the counting runs of the store
into a SQLite file (``<work-dir>/study.db``), then serves a page on 127.0.0.1 that shows a
participant one clip at a time, in an order of their own, with the method hidden, and asks for
the action (the dataset's action names, or "cannot tell") and, optionally, a 1 to 5 readability
rating. Each answer is written to the file as it is given, so a closed tab or a stopped server
loses nothing: the participant enters the same code and goes on where they stopped.

``bench study results`` turns the answers into each method's human top-1 (answers naming the
true action over all answers, "cannot tell" counted wrong) with a Wilson interval, and logs
``readability_human_*`` metrics on the runs whose clips were shown; ``bench report`` puts them
in Table 1's Readability column.
"""
from __future__ import annotations

import hashlib
import html
import io
import json
import random
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark.errors import InputError

CANNOT_TELL = 'cannot tell'
RATINGS = (1, 2, 3, 4, 5)
DISPLAY_SIZE = 224  # clips are shown enlarged (nearest neighbour: no detail is added)
FRAME_MS = 125  # 8 frames a second, the rate of a cpu-profile clip's sampled frames
PARTICIPANT = re.compile(r'[A-Za-z0-9_-]{1,40}')

_SCHEMA = """
CREATE TABLE IF NOT EXISTS clips (
    clip_id TEXT PRIMARY KEY, run_id TEXT NOT NULL, method TEXT NOT NULL, dataset TEXT NOT NULL,
    profile TEXT NOT NULL, seed TEXT NOT NULL, video_id TEXT NOT NULL, action TEXT NOT NULL,
    choices TEXT NOT NULL, gif BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS answers (
    participant TEXT NOT NULL, clip_id TEXT NOT NULL REFERENCES clips(clip_id),
    answer TEXT NOT NULL, correct INTEGER NOT NULL, rating INTEGER, answered_at REAL NOT NULL,
    PRIMARY KEY (participant, clip_id));
"""


class StudyError(InputError):
    """Input the study refuses: an unknown clip id, a second answer to a clip, a bad choice."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Clip:
    clip_id: str
    run_id: str
    method: str
    dataset: str
    profile: str
    seed: str
    video_id: str
    action: str
    choices: tuple[str, ...]


def clip_id(run_id: str, video_id: str) -> str:
    """A clip's id: stable for a run's video, and saying nothing about the method."""
    return hashlib.sha256(f'{run_id}/{video_id}'.encode()).hexdigest()[:16]


def encode_gif(frames: np.ndarray, size: int = DISPLAY_SIZE) -> bytes:
    """uint8 frames ``(T, H, W, 3)`` as a looping animated GIF ``size`` px high."""
    from PIL import Image
    scale = max(1, round(size / frames.shape[1]))
    images = [Image.fromarray(np.ascontiguousarray(f.repeat(scale, 0).repeat(scale, 1))) for f in frames]
    buffer = io.BytesIO()
    images[0].save(buffer, format='GIF', save_all=True, append_images=images[1:],
                   duration=FRAME_MS, loop=0)
    return buffer.getvalue()


class StudyStore:
    """The study's SQLite file: the clip pool and every answer, each committed as it comes.

    Args:
        path (Path): The file; created with its tables when missing.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.db.execute('PRAGMA journal_mode=WAL')
        self.db.executescript(_SCHEMA)
        self._order_cache: dict[str, list[str]] = {}

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------------ the pool
    def add_clip(self, clip: Clip, gif: bytes) -> bool:
        """Add a clip unless its id is there already; True when added."""
        cursor = self.db.execute(
            'INSERT OR IGNORE INTO clips VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
            (clip.clip_id, clip.run_id, clip.method, clip.dataset, clip.profile, clip.seed,
             clip.video_id, clip.action, json.dumps(list(clip.choices)), gif))
        self._order_cache.clear()
        return cursor.rowcount == 1

    def clip_ids(self) -> list[str]:
        return [row[0] for row in self.db.execute('SELECT clip_id FROM clips ORDER BY clip_id')]

    def clip(self, clip_id: str) -> Clip:
        row = self.db.execute('SELECT clip_id, run_id, method, dataset, profile, seed, video_id, '
                              'action, choices FROM clips WHERE clip_id = ?', (clip_id,)).fetchone()
        if row is None:
            raise StudyError(f'unknown clip id {clip_id[:40]!r}: no such clip in {self.path}', 404)
        return Clip(*row[:8], tuple(json.loads(row[8])))

    def gif(self, clip_id: str) -> bytes:
        row = self.db.execute('SELECT gif FROM clips WHERE clip_id = ?', (clip_id,)).fetchone()
        if row is None:
            raise StudyError(f'unknown clip id {clip_id[:40]!r}: no such clip in {self.path}', 404)
        return row[0]

    # ------------------------------------------------------------------ participants
    def order(self, participant: str) -> list[str]:
        """The participant's own order of the pool: a shuffle seeded by their code."""
        if participant not in self._order_cache:
            ids = self.clip_ids()
            seed = int(hashlib.sha256(participant.encode()).hexdigest()[:16], 16)
            random.Random(seed).shuffle(ids)
            self._order_cache[participant] = ids
        return self._order_cache[participant]

    def answered(self, participant: str) -> set[str]:
        return {row[0] for row in self.db.execute(
            'SELECT clip_id FROM answers WHERE participant = ?', (participant,))}

    def next_clip(self, participant: str) -> tuple[Clip | None, int, int]:
        """The first clip of the participant's order not answered yet (None when done), the
        number answered and the pool's size."""
        done = self.answered(participant)
        order = self.order(participant)
        upcoming = next((c for c in order if c not in done), None)
        return (self.clip(upcoming) if upcoming else None), len(done), len(order)

    def answer(self, participant: str, clip_id: str, answer: str, rating: int | None) -> bool:
        """Record an answer at once; True when it names the clip's action.

        Raises:
            StudyError: an unknown clip (404), a clip this participant answered already (409),
                an answer that is not one of the clip's choices or a rating outside 1 to 5 (400).
        """
        check_participant(participant)
        clip = self.clip(clip_id)
        if answer not in clip.choices and answer != CANNOT_TELL:
            raise StudyError(f'answer {answer[:40]!r} is not one of the choices for clip {clip_id}: '
                             f'{", ".join(clip.choices)} or {CANNOT_TELL!r}')
        if rating is not None and rating not in RATINGS:
            raise StudyError(f'rating {rating!r} must be 1 to 5, or left out')
        correct = answer == clip.action
        try:
            self.db.execute('INSERT INTO answers VALUES (?, ?, ?, ?, ?, ?)',
                            (participant, clip_id, answer, int(correct), rating, time.time()))
        except sqlite3.IntegrityError:
            raise StudyError(f'clip {clip_id} was already answered by participant {participant}: '
                             f'each clip is answered once (reload the page for the next one)',
                             409) from None
        return correct

    def answers(self) -> list[dict]:
        """Every answer with its clip's run, method, dataset and profile."""
        query = ('SELECT a.participant, a.clip_id, a.answer, a.correct, a.rating, c.run_id, '
                 'c.method, c.dataset, c.profile FROM answers a JOIN clips c USING (clip_id)')
        keys = ('participant', 'clip_id', 'answer', 'correct', 'rating', 'run_id', 'method',
                'dataset', 'profile')
        return [dict(zip(keys, row)) for row in self.db.execute(query)]


def check_participant(code: str) -> str:
    if not PARTICIPANT.fullmatch(code or ''):
        raise StudyError(f'participant code {str(code)[:40]!r} must be 1 to 40 letters, digits, '
                         f'"-" or "_"')
    return code


def _labels_of(data) -> tuple[list[str], tuple[str, ...]] | None:
    """The true action names and the choices of a sample file; None if it has no labels (a
    run from before the study page)."""
    if 'actions' not in data or 'classes' not in data:
        return None
    classes = tuple(str(c) for c in data['classes'])
    return [classes[int(a)] for a in data['actions']], classes


def fill_pool(store: StudyStore, tracking_uri: str, datasets=None, profiles=None) -> dict[str, int]:
    """Add the sample clips of the store's counting runs (in-domain) to the study's pool.

    Returns:
        dict: ``added``, ``clips`` (the pool now) and ``unlabelled`` (runs whose samples carry no
        action labels, left out).
    """
    import tempfile

    from benchmark.report import runs as runs_io
    runs = runs_io.counting_runs(runs_io.slim(runs_io.read_store(tracking_uri, datasets, profiles)))
    runs = runs[runs.train_dataset.isin(['']) | (runs.train_dataset == runs.dataset)]
    added = unlabelled = 0
    with tempfile.TemporaryDirectory() as tmp:
        artifacts = runs_io.Artifacts(tracking_uri, list(runs.run_id), tmp)
        for run in runs.to_dict('records'):
            path = artifacts.get(run['run_id'], 'samples/test_frames.npz')
            if path is None:
                continue
            with np.load(path) as data:
                labels = _labels_of(data)
                if labels is None:
                    unlabelled += 1
                    continue
                for frames, video_id, action in zip(data['frames'], data['video_ids'], labels[0]):
                    clip = Clip(clip_id(run['run_id'], str(video_id)), run['run_id'], run['method'],
                                run['dataset'], run['profile'], run['seed'], str(video_id), action,
                                labels[1])
                    added += store.add_clip(clip, encode_gif(frames))
    return {'added': added, 'clips': len(store.clip_ids()), 'unlabelled': unlabelled}


# ---------------------------------------------------------------------- results


def results(store: StudyStore) -> tuple[list[dict], dict[str, dict]]:
    """Per (dataset, profile, method): answers, correct, "cannot tell", human top-1 with its
    Wilson interval, mean rating; and per run: its answers and correct answers.

    A participant's every answer counts (several participants may see the same clip).
    """
    from benchmark.stats import wilson_interval
    groups: dict[tuple, dict] = {}
    per_run: dict[str, dict] = {}
    for a in store.answers():
        g = groups.setdefault((a['dataset'], a['profile'], a['method']),
                              {'answers': 0, 'correct': 0, 'cannot_tell': 0, 'ratings': [],
                               'participants': set()})
        g['answers'] += 1
        g['correct'] += a['correct']
        g['cannot_tell'] += a['answer'] == CANNOT_TELL
        g['participants'].add(a['participant'])
        if a['rating'] is not None:
            g['ratings'].append(a['rating'])
        run = per_run.setdefault(a['run_id'], {'answers': 0, 'correct': 0})
        run['answers'] += 1
        run['correct'] += a['correct']
    rows = []
    for (dataset, profile, method), g in sorted(groups.items()):
        low, high = wilson_interval(g['correct'], g['answers'])
        rows.append({'dataset': dataset, 'profile': profile, 'method': method,
                     'answers': g['answers'], 'correct': g['correct'],
                     'top1': g['correct'] / g['answers'], 'top1_low': low, 'top1_high': high,
                     'cannot_tell': g['cannot_tell'], 'participants': len(g['participants']),
                     'mean_rating': float(np.mean(g['ratings'])) if g['ratings'] else float('nan'),
                     'ratings': len(g['ratings'])})
    return rows, per_run


def log_results(tracking_uri: str, per_run: dict[str, dict]) -> int:
    """Log ``readability_human_top1``, ``_correct`` and ``_answers`` on each run whose clips were
    answered; returns how many runs."""
    from mlflow.entities import Metric

    from benchmark import tracking
    client = tracking.client(tracking_uri)
    now = int(time.time() * 1000)
    for run_id, counts in per_run.items():
        client.log_batch(run_id, metrics=[
            Metric('readability_human_top1', counts['correct'] / counts['answers'], now, 0),
            Metric('readability_human_correct', float(counts['correct']), now, 0),
            Metric('readability_human_answers', float(counts['answers']), now, 0)])
    return len(per_run)


def format_results(rows: list[dict]) -> str:
    lines = [f'{"dataset":10} {"profile":8} {"method":16} {"human top-1":>11} {"95 % Wilson":>15} '
             f'{"answers":>7} {"cannot tell":>11} {"rating":>6} participants']
    for r in rows:
        rating = f'{r["mean_rating"]:.2f}' if r['ratings'] else '-'
        lines.append(f'{r["dataset"]:10} {r["profile"]:8} {r["method"]:16} {100 * r["top1"]:10.1f}% '
                     f'[{100 * r["top1_low"]:5.1f}, {100 * r["top1_high"]:5.1f}] {r["answers"]:7d} '
                     f'{r["cannot_tell"]:11d} {rating:>6} {r["participants"]}')
    return '\n'.join(lines)


# ---------------------------------------------------------------------- the page

_STYLE = """body{font-family:sans-serif;max-width:40em;margin:2em auto;padding:0 1em}
img{image-rendering:pixelated;width:224px;height:224px;border:1px solid #888}
fieldset{margin:1em 0}label{display:inline-block;margin:.2em .8em .2em 0}
.progress{color:#555}"""


def _page(title: str, body: str) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}'
            f'</title><style>{_STYLE}</style></head><body>{body}</body></html>')


def _welcome() -> str:
    return _page('Readability study', """<h1>Which action is it?</h1>
<p>You will see short silent clips, one at a time. For each, pick the action the person
performs, or "cannot tell". You may also rate how easy the clip was to read. Your answers are
saved as you go: to continue later, enter the same code.</p>
<form method="get" action="/start"><label>Your participant code
<input name="participant" id="participant" required pattern="[A-Za-z0-9_-]{1,40}"></label>
<button type="submit" id="start">Start</button></form>""")


def _question(participant: str, clip: Clip, done: int, total: int) -> str:
    choices = ''.join(
        f'<label><input type="radio" name="answer" value="{html.escape(c)}" required> '
        f'{html.escape(c.replace("_", " "))}</label>' for c in (*clip.choices, CANNOT_TELL))
    ratings = ''.join(f'<label><input type="radio" name="rating" value="{r}"> {r}</label>'
                      for r in RATINGS)
    p = html.escape(participant)
    return _page('Readability study', f"""<p class="progress" id="progress">Clip {done + 1} of {total}
(participant {p})</p>
<img id="clip" src="/clip/{clip.clip_id}.gif" alt="clip to judge">
<form method="post" action="/p/{p}/answer" id="answer-form">
<input type="hidden" name="clip_id" id="clip_id" value="{clip.clip_id}">
<fieldset id="actions"><legend>Which action is it?</legend>{choices}</fieldset>
<fieldset id="ratings"><legend>How readable is the clip? 1 unreadable, 5 clear (optional)</legend>
{ratings}</fieldset>
<button type="submit" id="submit">Next</button></form>""")


def _finished(participant: str, total: int) -> str:
    return _page('Readability study', f'<h1 id="done">Thank you</h1><p>All {total} clips are '
                 f'answered for participant {html.escape(participant)}. You can close this page.</p>')


def create_app(store: StudyStore):
    """The Flask app of the study page over ``store``."""
    from flask import Flask, Response, redirect, request

    app = Flask('bench_study')

    def refuse(err: StudyError):
        return Response(f'bench study: {err}\n', status=err.status, mimetype='text/plain')
    app.register_error_handler(StudyError, refuse)

    @app.get('/')
    def welcome():
        return _welcome()

    @app.get('/start')
    def start():
        return redirect(f'/p/{check_participant(request.args.get("participant", ""))}', 303)

    @app.get('/p/<participant>')
    def question(participant):
        check_participant(participant)
        clip, done, total = store.next_clip(participant)
        return _question(participant, clip, done, total) if clip else _finished(participant, total)

    @app.post('/p/<participant>/answer')
    def answer(participant):
        form = request.form
        if 'clip_id' not in form or 'answer' not in form:
            raise StudyError('an answer needs clip_id and answer')
        rating = form.get('rating') or None
        if rating is not None:
            if not rating.isdigit():
                raise StudyError(f'rating {rating[:10]!r} must be 1 to 5, or left out')
            rating = int(rating)
        store.answer(participant, form['clip_id'], form['answer'], rating)
        return redirect(f'/p/{participant}', 303)

    @app.get('/clip/<clip_id>.gif')
    def clip_gif(clip_id):
        return Response(store.gif(clip_id), mimetype='image/gif',
                        headers={'Cache-Control': 'private, max-age=3600'})

    return app
