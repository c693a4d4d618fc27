"""A pretrained start for the target action model, as the paper's target models have one.

The paper evaluates every anonymizer with target models that start from pretrained weights
(its action model was trained on Kinetics before it sees anonymized video). Trained from
scratch, the cpu profile's narrow 3D ResNet-18 sat at chance until it happened on the motion,
and when that happened depended on the seed: on blurred or downsampled frames a seed that
left late, or that memorised the training videos first, ended 30 to 80 top-1 points below its
neighbours (README, "Stable target models"). So the action stage of every method starts from
the same backbone, trained once per machine on a corpus the evaluation never sees.

The corpus stands in for Kinetics: VP-Synth's ``pretrain`` split, raw RGB, the same ten
actions performed by other people in other scenes (its videos are drawn from their own seeds,
so no evaluation video, person or background is in it). With ``checkpoint`` set, a user's own
backbone weights are loaded instead (for example a Kinetics-pretrained one on the paper
profile), strictly: a backbone of another layout is a one-line error.

The backbone is trained with the protocol's own clip sampling and data path (``ClipDataset``,
``ClipPreprocessor`` without an anonymizer), AdamW, a linear warm-up and cosine decay, then
cached under ``$BENCH_CACHE/target_pretrain/`` keyed by a hash of everything that defines it;
parallel runs wait on a file lock for the one that trains it. Only the backbone is kept: the
classification head starts fresh in every run, as the paper's does for a new label set. The
privacy model keeps starting from scratch (TeD-SPAD's privacy evaluation trains a fresh
ResNet-50 without pretraining).
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

# Bump when the recipe changes, so backbones of an older recipe are not reused.
RECIPE_VERSION = 1
PRETRAIN_SPLIT = 'pretrain'


def cache_root() -> Path:
    return Path(os.environ.get('BENCH_CACHE') or Path.home() / '.cache' / 'raprivacy-bench').expanduser()


def pretrain_spec(cfg) -> dict:
    """Everything that defines the pretrained backbone of ``cfg``'s action model (its cache key).

    The corpus is VP-Synth's pretrain split with the profile's VP-Synth settings (frame size,
    videos per class, clip sampling), whatever dataset the run evaluates, as Kinetics is one
    corpus for every evaluation dataset; ``target_pretrain.source`` overrides its settings.
    """
    from benchmark.config import resolve_config
    settings = {k: v for k, v in dict(cfg.target_pretrain).items() if k not in ('type', 'checkpoint')}
    corpus = resolve_config('raw', 'vp_synth', cfg.profile)
    source = copy.deepcopy(dict(corpus.dataset.source))
    if settings.get('source'):  # a corpus of its own (a dict merged over the profile's VP-Synth)
        source.update(settings.pop('source'))
    source['split'] = PRETRAIN_SPLIT
    model = copy.deepcopy(cfg.action_model.to_dict())
    model['cls_head']['num_classes'] = None
    return dict(recipe=RECIPE_VERSION, source=source,
                data_version=str(getattr(DATASETS.get(source['type']), 'data_version', '')),
                model=model, clip=dict(corpus.clip), frame_interval=int(corpus.dataset.clip.frame_interval),
                schedule=settings)


TYPES = ('none', 'vp_synth', 'checkpoint')


def wanted(cfg) -> bool:
    """Whether ``cfg``'s action model starts from a pretrained backbone (one-line error on a bad type)."""
    kind = dict(cfg.get('target_pretrain') or {}).get('type', 'none')
    if kind not in TYPES:
        raise ProtocolError(f"target_pretrain.type must be one of {', '.join(TYPES)}, got {kind!r}")
    return kind != 'none'


def pretrained_backbone(cfg) -> dict:
    """Path, SHA-256 and training record of the backbone ``cfg.target_pretrain`` names.

    ``target_pretrain.type`` is ``'checkpoint'`` (``target_pretrain.checkpoint``, a user's
    backbone state dict, loaded as is) or ``'vp_synth'``: the backbone is trained here with the
    schedule beside it (``max_epochs``, ``batch_size``, ``lr``, ``weight_decay``,
    ``warmup_epochs``, ``seed``, optional ``source`` overrides of the corpus, and
    ``check_left_chance``: refuse a backbone whose last epoch's loss is still above
    0.85 ln(classes); default True) and cached.
    """
    settings = dict(cfg.target_pretrain)
    if settings.get('type') == 'checkpoint':
        path = Path(str(settings.get('checkpoint') or '')).expanduser()
        if not settings.get('checkpoint') or not path.is_file():
            raise ProtocolError(f'target_pretrain.checkpoint: no file {str(path)!r}; give the path of '
                                f'a backbone state dict, or set target_pretrain.type=vp_synth')
        return dict(path=str(path), sha256=sha256_of(path), trained=False, seconds=0.0)
    spec = pretrain_spec(cfg)
    key = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:12]
    path = cache_root() / 'target_pretrain' / f'action-{spec["source"]["type"]}-{key}.pth'
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix('.lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a parallel run waits for the one that trains it
        try:
            trained, seconds = False, 0.0
            if not path.is_file():
                start = time.time()
                from benchmark import console
                console.current().detail(f'[target pretrain] training the action backbone once on '
                                         f'{spec["source"]["type"]} split {PRETRAIN_SPLIT!r}; '
                                         f'cached at {path}')
                record = train_backbone(spec)
                tmp = path.with_suffix(f'.tmp{os.getpid()}')
                torch.save(record, tmp)
                tmp.replace(path)
                trained, seconds = True, time.time() - start
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    meta = torch.load(path, map_location='cpu', weights_only=True)
    return dict(path=str(path), sha256=sha256_of(path), trained=trained, seconds=seconds,
                final_loss=meta['final_loss'], final_train_top1=meta['final_train_top1'])


def _lr_factor(it: int, warmup: int, total: int) -> float:
    """The protocol's target schedule per iteration: linear warm-up from 0.1, then cosine to 0."""
    if it < warmup:
        return 0.1 + 0.9 * it / warmup
    return 0.5 * (1 + math.cos(math.pi * (it - warmup) / max(1, total - warmup)))


def _quiet_init(model) -> None:
    """``model.init_weights()`` without MMEngine's line per parameter."""
    import logging

    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)


def train_backbone(spec: dict) -> dict:
    """Train the action model on the pretraining corpus; return its backbone and how it ended."""
    from mmengine.dataset import pseudo_collate
    from mmengine.optim import OptimWrapper
    from mmengine.registry import DefaultScope

    from benchmark.datasets.clips import ClipDataset
    sched = spec['schedule']
    seed = int(sched.get('seed', 0))
    torch.manual_seed(seed)
    source = DATASETS.build(spec['source'])
    clip = spec['clip']
    dataset = ClipDataset(source, target='action', test_mode=False, clip_len=clip['clip_len'],
                          frame_interval=spec['frame_interval'], crop_size=clip['crop_size'],
                          resize_short=clip.get('resize_short'))
    gen = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(dataset, batch_size=int(sched['batch_size']), shuffle=True,
                                         generator=gen, collate_fn=pseudo_collate, drop_last=True,
                                         num_workers=int(sched.get('num_workers', 0)))
    model_cfg = copy.deepcopy(spec['model'])
    model_cfg['cls_head']['num_classes'] = len(source.classes)
    model_cfg['data_preprocessor'] = dict(type='ClipPreprocessor', aux_channels=tuple(source.aux_channels))
    scope = (contextlib.nullcontext() if DefaultScope.get_current_instance() is not None
             else DefaultScope.overwrite_default_scope('benchmark'))
    with scope:
        model = MODELS.build(model_cfg)
    _quiet_init(model)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=float(sched['lr']),
                                  weight_decay=float(sched.get('weight_decay', 0.05)))
    wrapper = OptimWrapper(optimizer, clip_grad=dict(max_norm=40, norm_type=2))
    epochs = int(sched['max_epochs'])
    total, warmup = epochs * len(loader), int(sched.get('warmup_epochs', 1)) * len(loader)
    it, start, chance = 0, time.time(), math.log(len(source.classes))
    from benchmark import console
    with console.current().progress('action pretraining', epochs, 'epoch') as bar:
        for epoch in range(epochs):
            losses, right, seen = [], 0, 0
            for batch in loader:
                for group in optimizer.param_groups:
                    group['lr'] = float(sched['lr']) * _lr_factor(it, warmup, total)
                data = model.data_preprocessor(batch, training=True)
                logits = model.cls_head(model.backbone(data['inputs'].flatten(0, 1)))
                labels = torch.cat([s.gt_labels.item for s in data['data_samples']]).long()
                loss = torch.nn.functional.cross_entropy(logits, labels)
                wrapper.update_params(loss)
                losses.append(loss.item())
                right += int((logits.argmax(-1) == labels).sum())
                seen += len(labels)
                it += 1
            mean = sum(losses) / len(losses)
            bar.update(loss=mean, note=f'train top-1 {right / seen:.2f}')
            console.current().detail(f'[target pretrain] epoch {epoch + 1}/{epochs}: loss {mean:.3f}, '
                                     f'train top-1 {right / seen:.3f} ({time.time() - start:.0f} s)')
    if sched.get('check_left_chance', True) and mean > 0.85 * chance:
        raise ProtocolError(f'target pretraining never left chance (final loss {mean:.2f}, chance '
                            f'{chance:.2f}): raise target_pretrain.max_epochs or change its seed')
    return dict(backbone=model.backbone.state_dict(), final_loss=mean,
                final_train_top1=right / seen, spec=json.loads(json.dumps(spec, default=str)))


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
            raise ProtocolError(f'{self.checkpoint}: does not fit the action model\'s backbone '
                                f'({str(err).splitlines()[0]}); give a backbone of the same layout') from None
