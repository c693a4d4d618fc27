"""Pretrained starts for the target models, as the paper's target models have them.

The paper evaluates every anonymizer with target models that start from pretrained weights
(its action model was trained on Kinetics, its ViT-S privacy model on ImageNet, before either
sees anonymized video). Trained from scratch, the cpu profile's narrow 3D ResNet-18s depended on
the seed: the action model sat at chance until it happened on the motion, so on blurred or
downsampled frames a seed that left late ended 30 to 80 top-1 points below its neighbours
(protocol 3); the privacy model found the hardest attribute (nudity, a woven pattern on the
clothes) within 22 epochs on one raw seed of three, so raw's cMAP read 81.5, 88.4 and 79.8
(protocol 4). README, "Stable target models". So each target stage of every method starts from
the same backbone, trained once per machine on a corpus the evaluation never sees: the action
model's since protocol 4 (config ``target_pretrain``), the privacy model's since protocol 5
(config ``privacy_pretrain``).

The corpus stands in for Kinetics and ImageNet: VP-Synth's ``pretrain`` split, raw RGB, the
same ten actions performed by other people (with their own attributes) in other scenes (its
videos are drawn from their own seeds, so no evaluation video, person or background is in it);
the action backbone learns its action labels, the privacy backbone its five privacy bits. With
``checkpoint`` set, a user's own backbone weights are loaded instead (for example a
Kinetics-pretrained one on the paper profile), strictly: a backbone of another layout is a
one-line error.

A backbone is trained with the protocol's own clip sampling and data path (``ClipDataset``,
``ClipPreprocessor`` without an anonymizer), AdamW, a linear warm-up and cosine decay, then
cached under ``$BENCH_CACHE/target_pretrain/`` keyed by a hash of everything that defines it;
parallel runs wait on a file lock for the one that trains it. It trains on one thread
(``PRETRAIN_THREADS``) whatever the run's thread count, so that a run on two threads and a
sweep's worker on one get the same weights (on one thread and two they differ); so that a
run's first start does not pay for that twice over on a machine with two cores or more, the
privacy backbone trains in a process of its own, on its one thread, while the action backbone
trains in the run's (``pretrain_beside``). Only the
backbone is kept: the classification head starts fresh in every run, as the paper's does for a
new label set.
"""
from __future__ import annotations

import contextlib
import copy
import fcntl
import hashlib
import json
import math
import os
import time
from pathlib import Path

import torch
from mmengine.hooks import Hook

from benchmark.datasets.annotations import sha256_of
from benchmark.errors import ProtocolError
from benchmark.registry import DATASETS, HOOKS, MODELS
from benchmark.runner import init_weights_quietly

# Bump when the recipe changes, so backbones of an older recipe are not reused.
RECIPE_VERSION = 1
# Intra-op threads a backbone is trained on, whatever the run that needs it has: CPU kernels
# split their sums by thread, so the same recipe on one and on two threads gives other weights
# (and its file another hash), and a run's figures move with them. One thread is what the
# committed cpu-profile runs used (one per run, two runs at a time).
PRETRAIN_THREADS = 1
PRETRAIN_SPLIT = 'pretrain'


def cache_root() -> Path:
    return Path(os.environ.get('BENCH_CACHE') or Path.home() / '.cache' / 'raprivacy-bench').expanduser()


# The config section that says where each target stage starts.
SECTIONS = {'action': 'target_pretrain', 'privacy': 'privacy_pretrain'}


def _section(cfg, stage: str) -> dict:
    if stage not in SECTIONS:
        raise ValueError(f"stage must be one of {', '.join(SECTIONS)}, got {stage!r}")
    return dict(cfg.get(SECTIONS[stage]) or {})


def pretrain_spec(cfg, stage: str = 'action') -> dict:
    """Everything that defines the pretrained backbone of ``cfg``'s ``stage`` model (its cache key).

    The corpus is VP-Synth's pretrain split with the profile's VP-Synth settings (frame size,
    videos per class, clip sampling), whatever dataset the run evaluates, as Kinetics is one
    corpus for every evaluation dataset; ``target_pretrain.source`` overrides its settings.
    """
    from benchmark.config import resolve_config
    settings = {k: v for k, v in _section(cfg, stage).items() if k not in ('type', 'checkpoint')}
    corpus = resolve_config('raw', 'vp_synth', cfg.profile)
    source = copy.deepcopy(dict(corpus.dataset.source))
    if settings.get('source'):  # a corpus of its own (a dict merged over the profile's VP-Synth)
        source.update(settings.pop('source'))
    source['split'] = PRETRAIN_SPLIT
    model = copy.deepcopy((cfg.action_model if stage == 'action' else cfg.privacy_model).to_dict())
    model['cls_head']['num_classes'] = None
    spec = dict(recipe=RECIPE_VERSION, source=source,
                data_version=str(getattr(DATASETS.get(source['type']), 'data_version', '')),
                model=model, clip=dict(corpus.clip), frame_interval=int(corpus.dataset.clip.frame_interval),
                schedule=settings)
    if stage != 'action':  # the action spec (and its cache key) is as protocol 4 made it
        spec['target'] = stage
    return spec


TYPES = ('none', 'vp_synth', 'checkpoint')


def wanted(cfg, stage: str = 'action') -> bool:
    """Whether ``cfg``'s ``stage`` model starts from a pretrained backbone (one-line error on a bad type)."""
    kind = _section(cfg, stage).get('type', 'none')
    if kind not in TYPES:
        raise ProtocolError(f"{SECTIONS[stage]}.type must be one of {', '.join(TYPES)}, got {kind!r}")
    return kind != 'none'


def pretrained_backbone(cfg, stage: str = 'action') -> dict:
    """Path, SHA-256 and training record of the backbone ``cfg``'s ``stage`` model starts from.

    The config section (``target_pretrain`` for the action model, ``privacy_pretrain`` for the
    privacy model) has ``type`` ``'checkpoint'`` (``checkpoint``, a user's backbone state dict,
    loaded as is) or ``'vp_synth'``: the backbone is trained here with the schedule beside it
    (``max_epochs``, ``batch_size``, ``lr``, ``weight_decay``, ``warmup_epochs``, ``seed``,
    optional ``source`` overrides of the corpus, and ``check_left_chance``: refuse a backbone
    whose last epoch's loss is still above 0.85 of the loss of guessing, ln(classes) for
    actions, the mean binary entropy of the attributes' rates for privacy; default True) and
    cached.
    """
    settings = _section(cfg, stage)
    section = SECTIONS[stage]
    if settings.get('type') == 'checkpoint':
        path = Path(str(settings.get('checkpoint') or '')).expanduser()
        if not settings.get('checkpoint') or not path.is_file():
            raise ProtocolError(f'{section}.checkpoint: no file {str(path)!r}; give the path of '
                                f'a backbone state dict, or set {section}.type=vp_synth')
        return dict(path=str(path), sha256=sha256_of(path), trained=False, seconds=0.0)
    spec, path = _cache_file(cfg, stage)
    trained, seconds = _train_once(spec, path, stage)
    meta = torch.load(path, map_location='cpu', weights_only=True)
    return dict(path=str(path), sha256=sha256_of(path), trained=trained, seconds=seconds,
                final_loss=meta['final_loss'],
                final_train_score=meta.get('final_train_score', meta.get('final_train_top1')))


def _cache_file(cfg, stage: str) -> tuple[dict, Path]:
    """The spec of ``stage``'s vp_synth backbone and the cache file it is kept in."""
    spec = pretrain_spec(cfg, stage)
    key = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return spec, cache_root() / 'target_pretrain' / f'{stage}-{spec["source"]["type"]}-{key}.pth'


def _train_once(spec: dict, path: Path, stage: str) -> tuple[bool, float]:
    """Train ``spec``'s backbone into ``path`` unless it is there, under a file lock beside it
    (a parallel run, or the process ``pretrain_beside`` started, waits for the one that trains
    it); whether this call trained it, and its seconds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix('.lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if path.is_file():
                return False, 0.0
            start = time.time()
            from benchmark import console
            console.current().detail(f'[target pretrain] training the {stage} backbone once on '
                                     f'{spec["source"]["type"]} split {PRETRAIN_SPLIT!r}; '
                                     f'cached at {path}')
            with threads(PRETRAIN_THREADS):
                record = train_backbone(spec)
            tmp = path.with_suffix(f'.tmp{os.getpid()}')
            torch.save(record, tmp)
            tmp.replace(path)
            return True, time.time() - start
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# A pretraining this long or longer is worth a process of its own beside the other (the cpu
# profile's 44 epochs take about 5 minutes on one thread; the smoke profile's one epoch takes
# about a second, less than starting a process and importing the suite into it).
BESIDE_MIN_EPOCHS = 5


def _to_train(cfg, stage: str) -> tuple[dict, Path] | None:
    """The spec and cache file of ``stage``'s backbone when it is a vp_synth one not in the
    cache yet; None otherwise."""
    if not wanted(cfg, stage) or _section(cfg, stage).get('type') != 'vp_synth':
        return None
    spec, path = _cache_file(cfg, stage)
    return None if path.is_file() else (spec, path)


class Beside:
    """A backbone training in a process of its own (``pretrain_beside``)."""

    def __init__(self, process, stage: str, log: Path, outcome: Path) -> None:
        self.process, self.stage, self.log, self.outcome = process, stage, log, outcome

    def wait(self) -> dict:
        """Wait for it; ``trained`` and ``seconds`` as ``pretrained_backbone`` gives them, or
        ``error``, the one-line reason it stopped (the stage then trains the backbone itself and
        meets the error there, if it is one)."""
        self.process.join()
        try:
            outcome = json.loads(self.outcome.read_text())
        except (OSError, ValueError):
            outcome = {}
        if 'error' not in outcome and (self.process.exitcode != 0 or 'trained' not in outcome):
            outcome = {'error': f'its process ended with exit code {self.process.exitcode}'}
        return outcome


def pretrain_beside(cfg, stage: str, log: Path, alongside: str = 'action') -> Beside | None:
    """Start training ``stage``'s backbone in a process of its own, while this process trains
    ``alongside``'s: a run's first start on a machine trains both target backbones, one after
    the other, each on one thread (``PRETRAIN_THREADS``); on two cores they can train side by
    side, with the same weights, since each still runs on one thread.

    Only when this process may use two threads or more (a sweep's worker given one thread keeps
    to its core), both backbones are vp_synth ones still to train, ``stage``'s schedule has at
    least ``BESIDE_MIN_EPOCHS`` epochs and loads its data in the process (no loader workers: the
    process is a daemon, which may start none; so the corpus is generated here first). Otherwise
    None, and each trains in its stage.

    The process writes its progress to ``log`` and its outcome beside it (``.json``); it trains
    under the same cache lock as ``pretrained_backbone``, which, called for ``stage`` later,
    waits for it and then reads the file. Denormal floats are flushed there as here.
    """
    import multiprocessing

    from benchmark.amp import denormals_flushed
    settings = _section(cfg, stage)
    if (multiprocessing.current_process().daemon  # a daemon (someone's pool worker) starts none
            or torch.get_num_threads() < 2 * PRETRAIN_THREADS
            or int(settings.get('max_epochs', 0)) < BESIDE_MIN_EPOCHS
            or int(settings.get('num_workers', 0)) > 0):
        return None
    todo = _to_train(cfg, stage)
    if todo is None or _to_train(cfg, alongside) is None:
        return None
    spec, path = todo
    # the corpus is generated here (once, in parallel workers, which a daemon may not start)
    # and only read there; the action backbone trains on the same split
    DATASETS.build(spec['source'])
    log = Path(log)
    log.parent.mkdir(parents=True, exist_ok=True)
    outcome = log.with_suffix('.json')
    outcome.unlink(missing_ok=True)
    process = multiprocessing.get_context('spawn').Process(
        target=_train_beside, args=(spec, str(path), stage, str(log), str(outcome), denormals_flushed()),
        name=f'{stage} pretraining', daemon=True)
    process.start()
    return Beside(process, stage, log, outcome)


def _train_beside(spec: dict, path: str, stage: str, log: str, outcome: str, flushed: bool) -> None:
    """``pretrain_beside``'s process: train, write the outcome; an error is its one line there."""
    import sys
    from contextlib import redirect_stderr, redirect_stdout

    from benchmark import console
    from benchmark.registry import import_all
    torch.set_flush_denormal(flushed)
    result: dict = {}
    with open(log, 'w') as out, redirect_stdout(out), redirect_stderr(out):
        try:
            import_all()
            with console.use(console.Console('lines')):
                trained, seconds = _train_once(spec, Path(path), stage)
            result = dict(trained=trained, seconds=seconds, pid=os.getpid())
        except KeyboardInterrupt:  # Ctrl-C reaches the whole process group: the run says it
            result = {'error': 'interrupted'}
        except Exception as err:  # noqa: BLE001 - reported to the run, which trains it itself
            import traceback
            traceback.print_exc()
            result = {'error': (str(err).strip().splitlines() or [type(err).__name__])[0]}
    tmp = Path(outcome).with_suffix('.tmp')
    tmp.write_text(json.dumps(result))
    tmp.replace(outcome)
    if 'error' in result:
        sys.exit(1)


@contextlib.contextmanager
def threads(count: int):
    """torch's intra-op thread count set to ``count`` inside the block, restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _lr_factor(it: int, warmup: int, total: int) -> float:
    """The protocol's target schedule per iteration: linear warm-up from 0.1, then cosine to 0."""
    if it < warmup:
        return 0.1 + 0.9 * it / warmup
    return 0.5 * (1 + math.cos(math.pi * (it - warmup) / max(1, total - warmup)))


def _chance_loss(source, target: str) -> float:
    """The loss of guessing without looking: ln(classes) for actions; for the privacy bits the
    mean over attributes of the binary entropy of their positive rate in the corpus."""
    if target == 'action':
        return math.log(len(source.classes))
    bits = torch.tensor([list(source.privacy(i)) for i in range(len(source))], dtype=torch.float64)
    rate = bits.mean(0).clamp(1e-6, 1 - 1e-6)
    return float((-(rate * rate.log() + (1 - rate) * (1 - rate).log())).mean())


def train_backbone(spec: dict) -> dict:
    """Train the target model of ``spec`` (action by default, or ``spec['target']``) on the
    pretraining corpus; return its backbone and how it ended."""
    from mmengine.dataset import pseudo_collate
    from mmengine.optim import OptimWrapper
    from mmengine.registry import DefaultScope

    from benchmark.datasets.clips import ClipDataset
    sched = spec['schedule']
    seed = int(sched.get('seed', 0))
    torch.manual_seed(seed)
    source = DATASETS.build(spec['source'])
    clip = spec['clip']
    target = spec.get('target', 'action')
    dataset = ClipDataset(source, target=target, test_mode=False, clip_len=clip['clip_len'],
                          frame_interval=spec['frame_interval'], crop_size=clip['crop_size'],
                          resize_short=clip.get('resize_short'))
    gen = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(dataset, batch_size=int(sched['batch_size']), shuffle=True,
                                         generator=gen, collate_fn=pseudo_collate, drop_last=True,
                                         num_workers=int(sched.get('num_workers', 0)))
    model_cfg = copy.deepcopy(spec['model'])
    model_cfg['cls_head']['num_classes'] = (len(source.classes) if target == 'action'
                                            else len(source.attributes))
    model_cfg['data_preprocessor'] = dict(type='ClipPreprocessor', aux_channels=tuple(source.aux_channels))
    scope = (contextlib.nullcontext() if DefaultScope.get_current_instance() is not None
             else DefaultScope.overwrite_default_scope('benchmark'))
    with scope:
        model = MODELS.build(model_cfg)
    init_weights_quietly(model)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=float(sched['lr']),
                                  weight_decay=float(sched.get('weight_decay', 0.05)))
    wrapper = OptimWrapper(optimizer, clip_grad=dict(max_norm=40, norm_type=2))
    epochs = int(sched['max_epochs'])
    total, warmup = epochs * len(loader), int(sched.get('warmup_epochs', 1)) * len(loader)
    it, start, chance = 0, time.time(), _chance_loss(source, target)
    # the action model's training top-1; the privacy model's share of bits right at logit 0
    score = 'top-1' if target == 'action' else 'bit accuracy'
    from benchmark import console
    with console.current().progress(f'{target} pretraining', epochs, 'epoch') as bar:
        for epoch in range(epochs):
            losses, right, seen = [], 0, 0
            for batch in loader:
                for group in optimizer.param_groups:
                    group['lr'] = float(sched['lr']) * _lr_factor(it, warmup, total)
                data = model.data_preprocessor(batch, training=True)
                logits = model.cls_head(model.backbone(data['inputs'].flatten(0, 1)))
                if target == 'action':
                    labels = torch.cat([s.gt_labels.item for s in data['data_samples']]).long()
                    loss = torch.nn.functional.cross_entropy(logits, labels)
                    hits = logits.argmax(-1) == labels
                else:
                    labels = torch.stack([s.gt_labels.item for s in data['data_samples']]).float()
                    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
                    hits = (logits > 0) == (labels > 0.5)
                wrapper.update_params(loss)
                losses.append(loss.item())
                right += int(hits.sum())
                seen += hits.numel()
                it += 1
            mean = sum(losses) / len(losses)
            bar.update(loss=mean, note=f'train {score} {right / seen:.2f}')
            console.current().detail(f'[target pretrain] {target} epoch {epoch + 1}/{epochs}: loss '
                                     f'{mean:.3f}, train {score} {right / seen:.3f} '
                                     f'({time.time() - start:.0f} s)')
    if sched.get('check_left_chance', True) and mean > 0.85 * chance:
        section = SECTIONS[target]
        raise ProtocolError(f'{target} pretraining never left chance (final loss {mean:.2f}, chance '
                            f'{chance:.2f}): raise {section}.max_epochs or change its seed')
    return dict(backbone=model.backbone.state_dict(), final_loss=mean,
                final_train_score=right / seen, score=score, spec=json.loads(json.dumps(spec, default=str)))


@HOOKS.register_module()
class PretrainedBackboneHook(Hook):
    """Load a pretrained backbone into a fresh target model before its first iteration.

    The runner initializes the model's weights before ``before_train``; a resumed stage
    (``runner.iter > 0``) keeps its checkpoint's weights. Loading is strict: a backbone of
    another layout is a one-line error naming the file.

    Args:
        checkpoint (str): A ``pretrained_backbone`` cache file (``{'backbone': state}``) or a
            plain backbone state dict.
    """

    priority = 'VERY_HIGH'

    def __init__(self, checkpoint: str) -> None:
        self.checkpoint = checkpoint

    def before_train(self, runner) -> None:
        if runner.iter > 0:
            return
        try:
            state = torch.load(self.checkpoint, map_location='cpu', weights_only=True)
        except Exception as err:  # noqa: BLE001 - any unreadable file is the same answer
            raise ProtocolError(f'{self.checkpoint}: not a readable backbone state dict '
                                f'({type(err).__name__}); remove it to retrain') from None
        state = state.get('backbone', state) if isinstance(state, dict) else state
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        try:
            model.backbone.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise ProtocolError(f'{self.checkpoint}: does not fit the target model\'s backbone '
                                f'({str(err).splitlines()[0]}); give a backbone of the same layout') from None
