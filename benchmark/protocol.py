"""The protocol: one procedure judges every method.

1. ``fit``: fit the anonymizer on the training split of ``fit_dataset`` (the evaluation
   dataset unless this is a transfer run); a no-op for fixed methods. Then freeze it.
2. ``action``: train a fresh target action model on anonymized training clips (cross-entropy),
   test it on anonymized test videos: top-1 of the view-averaged probabilities over
   ``num_clips`` x ``num_crops`` views (5 x 3 as in the paper).
3. ``privacy``: the same with a fresh multi-label privacy model (binary cross-entropy over the
   5 attributes, video-level labels): AP per attribute, cMAP, F1.

Every stage is an MMEngine Runner in its own folder of the run directory, checkpointing as it
goes (``benchmark/checkpoints.py``); a stage that finished leaves ``result.json`` and, unless
``keep_checkpoints``, no training checkpoint. Running the same command again after an
interruption skips finished stages, resumes the interrupted one from its last checkpoint with
the random state it had, and reuses the same MLflow parent run (found by its run key when the
state file is lost), so a (method, dataset, profile, seed) ends with exactly one complete run
whose metrics are those of an uninterrupted run.

A transfer run (``fit_dataset`` set) whose anonymizer the store already fitted, in the in-domain
run on ``fit_dataset`` with the same config and seed, takes that run's fitted anonymizer instead
of fitting it again (``fit_from``): the fits are deterministic (a refitted STPrivacy matched its
Table 1 fit bit for bit), and the transfer then judges the very anonymizer of the in-domain
table. The reused folder is recorded (``bench.fit_from``), with its fit's time apart
(``time_fit_reused_s``).

Under ``torchrun`` (``launcher='pytorch'``, ``benchmark.distributed``) every process trains
and tests its shard of each batch; process 0 alone locks the folder, writes state, results and
artifacts and records the run in MLflow, and tells the others which stages are left.
"""
from __future__ import annotations

import contextlib
import copy
import inspect
import json
import os
import pickle
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from benchmark import amp as amp_mod
from benchmark import checkpoints, console, distributed, target_pretrain, tracking
from benchmark.anonymizer import build_anonymizer
from benchmark.config import config_hash, flatten
from benchmark.data import load_anonymizer_state
from benchmark.errors import ProtocolError  # noqa: F401 (raised here, re-exported)
from benchmark.errors import first_line as _first_line
from benchmark.metrics import PROTOCOL_VERSION
from benchmark.registry import DATASETS, import_all
from benchmark.runner import BenchRunner, quiet_waiting_schedulers, release_loader_workers
from benchmark.store import locked

STAGES = ('fit', 'action', 'privacy')
STATE_FILE = 'state.json'
RESULT_FILE = 'result.json'
# Test videos whose readability_* metrics every run logs (benchmark/readability.py), spread
# evenly over the test split: the same videos for every method.
READABILITY_VIDEOS = 32


def method_name(cfg: Config) -> str:
    """The method as tables show it: ``raprivacy``, or ``raprivacy@<variant>`` in a sweep."""
    return f'{cfg.method}@{cfg.variant}' if cfg.get('variant') else cfg.method


def run_dir_name(cfg: Config) -> Path:
    data = cfg.dataset.name
    if cfg.fit_dataset:
        data = f'{cfg.fit_dataset["name"]}_to_{data}'
    return Path(data) / method_name(cfg).replace('/', '_') / cfg.profile / f'seed{cfg.seed}'


def run_folder(work_root: Path, cfg: Config) -> Path:
    """``run_dir_name`` under ``work_root``, refused unless it stays inside it."""
    root = os.path.normpath(os.path.abspath(work_root))
    folder = os.path.normpath(os.path.join(root, run_dir_name(cfg)))
    if os.path.commonpath([root, folder]) != root or folder == root:
        raise ProtocolError(f'the run folder {folder} of {run_key(cfg)} is not inside --work-dir '
                            f'{root}: a method, dataset or variant name must not hold ".." or "/"')
    return Path(folder)


def _quoted(value: str) -> str:
    """A string literal for an MLflow search filter."""
    return f"'{value}'" if "'" not in value else f'"{value}"'


def run_key(cfg: Config) -> str:
    train = cfg.fit_dataset['name'] if cfg.fit_dataset else cfg.dataset.name
    return f'{method_name(cfg)}|{train}|{cfg.dataset.name}|{cfg.profile}|{cfg.seed}'


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(path.suffix + '.tmp')
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    tmp.replace(path)


def _source_cfg(dataset: dict, split: str, needs: tuple[str, ...]) -> dict:
    """The dataset's source config for ``split``, asking for the aux maps the method needs.

    Sources that compute aux maps (real video) take ``aux``; vp_synth renders them all anyway.
    """
    src = copy.deepcopy(dict(dataset['source']))
    src['split'] = split
    cls = DATASETS.get(src['type'])
    if cls is None:
        raise ProtocolError(f'dataset source type {src["type"]!r} is not registered')
    if 'aux' in inspect.signature(cls.__init__).parameters:
        src['aux'] = tuple(needs)
    return src


class Protocol:
    """One run of the protocol for a resolved config.

    Args:
        cfg (Config): From :func:`benchmark.config.resolve_config`.
        work_root (Path): Root of all runs' folders (``work_dirs``).
        tracking_uri (str): MLflow store.
        device (str): ``'cpu'`` or ``'cuda'``. Defaults to ``'cpu'``.
        amp (bool): bf16 autocast (``benchmark.amp``: on CUDA, or a CPU with bf16 units).
            Defaults to False.
        log (callable): Progress printer. Defaults to ``print``.
        launcher (str): ``'none'`` or ``'pytorch'`` (``torchrun``; ``benchmark.distributed``
            starts the process group first). Defaults to ``'none'``.
        sweep (str, optional): The sweep this run is a point of (``bench sweep --name``),
            added to its parent run's ``bench.sweep`` tag. Defaults to None.
        fit_from (str | Path, optional): For a transfer run: the work dir whose in-domain run on
            the fit dataset (same method, profile, config and seed) provides the fitted
            anonymizer; it must hold that run's finished fit, or the run stops with a one-line
            error. ``None``: this run's own work dir, when it holds one (otherwise the run
            fits); ``'none'``: always fit. Defaults to None.
    """

    def __init__(self, cfg: Config, work_root: Path, tracking_uri: str, device: str = 'cpu',
                 amp: bool = False, log=print, launcher: str = 'none',
                 sweep: str | None = None, fit_from: str | Path | None = None) -> None:
        import_all()
        amp_mod.flush_denormals(device)  # before any computation of the run (benchmark/amp.py)
        self.sweep = sweep
        self.launcher = launcher
        self.main = distributed.rank() == 0  # the process that records the run
        self.cfg = cfg
        self.work_root = Path(work_root)
        self.run_dir = run_folder(self.work_root, cfg)
        self.tracking_uri = tracking_uri
        self.device = device
        self.amp = amp
        self.precision = amp_mod.precision(amp)
        self.log = log
        self.hash = config_hash(cfg)
        setup_start = time.time()
        try:  # fail before anything is recorded on a bad method config or missing weights
            self.anonymizer = build_anonymizer(cfg.anonymizer)
        except (TypeError, ValueError) as err:
            raise ProtocolError(f'anonymizer {dict(cfg.anonymizer)["type"]}: {_first_line(err)}') from None
        # building the anonymizer can train and cache what it needs (RAPrivacy's self-trained
        # encoder, minutes the first time): time_setup_s, apart from the stages' time_total_s
        self.setup_s = time.time() - setup_start
        self.needs = tuple(self.anonymizer.needs)
        self._fitted_loaded = False  # the fit stage's weights are not in self.anonymizer yet
        self.anonymize_once = bool(cfg.get('anonymize_once', False))
        if self.anonymize_once and not self.anonymizer.per_frame:
            raise ProtocolError(f'anonymize_once=True, but {dict(cfg.anonymizer)["type"]} is not '
                                f'per_frame: its output must be computed per clip; drop the option')
        self.fit_data = cfg.fit_dataset or cfg.dataset.to_dict()
        self.eval_data = cfg.dataset.to_dict()
        # what generated the evaluation data (VP-Synth's generator); not in the config, so a
        # run folder and the report check it apart from the config hash
        source_cls = DATASETS.get(self.eval_data['source']['type'])
        self.data_version = str(getattr(source_cls, 'data_version', ''))
        self.fit_source = self._reusable_fit(fit_from)

    def _reusable_fit(self, fit_from) -> Path | None:
        """The ``fit`` folder of the in-domain run whose anonymizer this transfer run takes, or
        None (see the class's ``fit_from``)."""
        never = fit_from is not None and str(fit_from).lower() == 'none'
        if not self.cfg.fit_dataset or not self.cfg.fit or never:
            if fit_from is not None and not never:
                raise ProtocolError(f'--fit-from {fit_from}: only a transfer run (--train-dataset) of a '
                                    f'method that learns takes a fitted anonymizer from another run')
            return None
        own = Config(copy.deepcopy(self.cfg.to_dict()))
        own.dataset, own.fit_dataset = own.fit_dataset, None
        folder = run_folder(Path(fit_from) if fit_from is not None else self.work_root, own)
        fit_data_cls = DATASETS.get(self.fit_data['source']['type'])
        state = _read_json(folder / STATE_FILE) or {}
        problem = None
        if not (folder / 'fit' / RESULT_FILE).is_file() or not (folder / 'fit' / 'anonymizer.pth').is_file():
            problem = 'holds no finished fit'
        elif state.get('config_hash') != config_hash(own):
            problem = (f'is a run of another config (hash {state.get("config_hash")}, this run '
                       f'needs {config_hash(own)})')
        elif state.get('data_version', '') != str(getattr(fit_data_cls, 'data_version', '')):
            problem = f'was fitted on other {self.fit_data["name"]} data ({state.get("data_version")})'
        elif amp_mod.stored_precision(state) != self.precision:
            problem = (f'was fitted at {amp_mod.stored_precision(state)}, this run is at '
                       f'{self.precision} ({"with" if self.amp else "without"} --amp)')
        if problem is None:
            return folder / 'fit'
        if fit_from is None:  # nothing to reuse in this store: fit here
            return None
        raise ProtocolError(f'--fit-from {fit_from}: {folder} {problem}; run `bench run --method '
                            f'{self.cfg.method} --dataset {self.fit_data["name"]} --profile {self.cfg.profile} '
                            f'--seed {self.cfg.seed}{" --amp" if self.amp else ""} --work-dir {fit_from}` '
                            f'first, or leave out --fit-from')

    # ----------------------------------------------------------------- state and tracking
    def _prepare(self, fresh: bool) -> dict | None:
        """Load or start the run's state; return the final metrics if it is already complete."""
        state = _read_json(self.run_dir / STATE_FILE)
        if fresh and self.run_dir.exists():
            shutil.rmtree(self.run_dir)
            state = None
        elif state is None and any((self.run_dir / stage).exists() for stage in STAGES):
            state = self._recovered_state()
        if state and state.get('config_hash') != self.hash:
            raise ProtocolError(
                f'{self.run_dir} holds a run of a different config (hash {state.get("config_hash")}'
                f', now {self.hash}): pass --fresh to discard it or --work-dir to keep both')
        if state and amp_mod.stored_precision(state) != self.precision:
            raise ProtocolError(
                f'{self.run_dir} holds a run at {amp_mod.stored_precision(state)} precision, now '
                f'{self.precision} ({"with" if self.amp else "without"} --amp): run it as it started, '
                f'or pass --fresh to discard it or --work-dir to keep both')
        if state and state.get('data_version', '') != self.data_version:
            raise ProtocolError(
                f'{self.run_dir} holds a run on other {self.eval_data["name"]} data '
                f'({state.get("data_version") or "unversioned"}, now {self.data_version or "unversioned"}): '
                f'pass --fresh to discard it or --work-dir to keep both')
        if state and state.get('complete'):
            self.client = tracking.client(self.tracking_uri)
            return _read_json(self.run_dir / RESULT_FILE)
        if (self.run_dir / 'fit' / RESULT_FILE).exists():  # a damaged fit: one line, before any log
            self._fitted_anonymizer()
        self._check_data()
        self.client = tracking.client(self.tracking_uri)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if state is None:
            state = {'config_hash': self.hash, 'data_version': self.data_version,
                     'precision': self.precision, 'run_key': run_key(self.cfg), 'runs': {},
                     'complete': False, 'setup_s': self.setup_s}  # the first start's, on resume
        self.state = state
        self._parent_run()
        return None

    def _folder_parents(self, exp: str) -> list:
        """Parent runs the store holds for this run folder and run key, newest first."""
        query = (f"tags.`{tracking.TAG}kind` = 'parent' and "
                 f"tags.`{tracking.TAG}work_dir` = {_quoted(str(self.run_dir.resolve()))}")
        runs = self.client.search_runs([exp], query, order_by=['attributes.start_time DESC'])
        return [r for r in runs if r.data.tags.get(tracking.TAG + 'run_key') == run_key(self.cfg)]

    def _stage_runs(self, exp: str, parent: str) -> dict[str, str]:
        query = f"tags.`mlflow.parentRunId` = '{parent}'"
        runs = self.client.search_runs([exp], query, order_by=['attributes.start_time ASC'])
        return {r.data.tags[tracking.TAG + 'stage']: r.info.run_id for r in runs
                if tracking.TAG + 'stage' in r.data.tags}

    def _recovered_state(self) -> dict:
        """The state of a run folder whose state file was lost, rebuilt from the store: its newest
        parent run (found by run key and folder) and that run's stages."""
        self.client = tracking.client(self.tracking_uri)
        exp = tracking.experiment_id(self.client, self.cfg.dataset.name, self.tracking_uri)
        parents = self._folder_parents(exp)
        if not parents:
            raise ProtocolError(
                f'{self.run_dir} has no {STATE_FILE} and {self.tracking_uri} records no run of it, so '
                f'what it holds cannot be matched to this config: pass --fresh to discard it')
        parent = parents[0]
        tags = {k.removeprefix(tracking.TAG): v for k, v in parent.data.tags.items()}
        complete = tags.get('complete') == 'true' and (self.run_dir / RESULT_FILE).is_file()
        state = {'config_hash': tags.get('config_hash'), 'data_version': tags.get('data_version', ''),
                 'run_key': run_key(self.cfg), 'complete': complete,
                 'runs': {'parent': parent.info.run_id, **self._stage_runs(exp, parent.info.run_id)},
                 'setup_s': parent.data.metrics.get('time_setup_s', self.setup_s)}
        self.log(f'{self.run_dir / STATE_FILE} was missing: rebuilt it from MLflow run '
                 f'{parent.info.run_id}, found by its run key')
        _write_json(self.run_dir / STATE_FILE, state)
        return state

    def _check_data(self) -> None:
        """Build every split the run reads, so a bad tree or option fails in seconds.

        Real sources run their quick check (presence, labels, a decode) when built.
        """
        splits = [(self.fit_data, 'train'), (self.eval_data, 'train'), (self.eval_data, 'test')]
        self.sources = {}  # built once here; the stages read classes and aux maps from them
        for data, split in splits:
            try:
                self.sources[data['name'], split] = DATASETS.build(_source_cfg(data, split, self.needs))
            except (OSError, ValueError, TypeError, KeyError, RuntimeError,
                    pickle.UnpicklingError) as err:
                raise ProtocolError(f'dataset {data["name"]} ({split}): {_first_line(err)}') from None

    def _save_state(self) -> None:
        _write_json(self.run_dir / STATE_FILE, self.state)

    def _parent_run(self) -> None:
        c = self.client
        exp = tracking.experiment_id(c, self.cfg.dataset.name, self.tracking_uri)
        parent = self.state['runs'].get('parent')
        self._close_orphans(exp, keep=parent)
        if parent:
            c.update_run(parent, status='RUNNING')
            if tracking.TAG + 'failure' in c.get_run(parent).data.tags:  # this attempt fails anew or finishes
                c.delete_tag(parent, tracking.TAG + 'failure')
            if self.sweep:
                tracking.add_sweep(c, parent, self.sweep)
            self.log(f'resuming MLflow run {parent} from {self.run_dir}')
            return
        prov = tracking.provenance(self.device)
        a = self.anonymizer
        tags = {
            'kind': 'parent', 'method': method_name(self.cfg), 'base_method': self.cfg.method,
            'variant': self.cfg.get('variant') or '', 'anonymizer': self.cfg.anonymizer['type'],
            'table_name': (a.table_name or self.cfg.method) + (
                f' @ {self.cfg.variant}' if self.cfg.get('variant') else ''),
            'privacy_learning': str(a.privacy_learning).lower(), 'readable': str(a.readable).lower(),
            'dataset': self.cfg.dataset.name, 'train_dataset': self.fit_data['name'],
            'profile': self.cfg.profile, 'seed': str(self.cfg.seed), 'run_key': run_key(self.cfg),
            'protocol_version': str(PROTOCOL_VERSION), 'complete': 'false',
            'data_version': self.data_version, 'precision': self.precision,
            'config_hash': self.hash, 'work_dir': str(self.run_dir.resolve()), **prov,
        }
        if self.sweep:
            tags['sweep'] = self.sweep
        run = c.create_run(exp, run_name=f'{method_name(self.cfg)}-{self.cfg.profile}-s{self.cfg.seed}',
                           tags={tracking.TAG + k: v for k, v in tags.items()})
        run_id = run.info.run_id
        self.state['runs']['parent'] = run_id
        self._save_state()
        params = flatten(self.cfg.to_dict())
        params.update(tracking.package_versions())
        from mlflow.entities import Param
        items = [Param(k, v[:6000]) for k, v in sorted(params.items())]
        for i in range(0, len(items), 100):
            c.log_batch(run_id, params=items[i:i + 100])
        config_file = self.run_dir / f'{self.cfg.method}_{self.cfg.profile}_{self.cfg.dataset.name}.py'
        self.cfg.dump(str(config_file))
        c.log_artifact(run_id, str(config_file), 'config')
        self.log(f'MLflow run {run_id} (experiment {self.cfg.dataset.name}) in {self.tracking_uri}')

    def _close_orphans(self, exp: str, keep: str | None) -> None:
        """Mark KILLED the parent runs of this folder left RUNNING by a process that is gone.

        The run folder's lock is held, so no other process is running this folder's run: a
        RUNNING parent that the state does not name (its state file was lost, or the folder
        was deleted) will never finish.
        """
        for run in self._folder_parents(exp):
            if run.info.run_id == keep or run.info.status != 'RUNNING':
                continue
            for stage_run in self._stage_runs(exp, run.info.run_id).values():
                if self.client.get_run(stage_run).info.status == 'RUNNING':
                    self.client.set_terminated(stage_run, status='KILLED')
            self.client.set_terminated(run.info.run_id, status='KILLED')
            self.log(f'MLflow run {run.info.run_id} of {self.run_dir} was left RUNNING by an '
                     f'interrupted run that no state names: marked KILLED')

    def _child_run(self, stage: str) -> str:
        run_id = self.state['runs'].get(stage)
        if run_id:
            self.client.update_run(run_id, status='RUNNING')
            return run_id
        parent = self.state['runs']['parent']
        exp = self.client.get_run(parent).info.experiment_id
        run = self.client.create_run(exp, run_name=f'{self.cfg.method}-{stage}', tags={
            'mlflow.parentRunId': parent, tracking.TAG + 'kind': 'stage',
            tracking.TAG + 'stage': stage, tracking.TAG + 'method': self.cfg.method,
            tracking.TAG + 'profile': self.cfg.profile, tracking.TAG + 'seed': str(self.cfg.seed)})
        self.state['runs'][stage] = run.info.run_id
        self._save_state()
        return run.info.run_id

    # ----------------------------------------------------------------- runners
    def _clip_kwargs(self, data: dict) -> dict:
        c = self.cfg.clip
        return dict(clip_len=c.clip_len, frame_interval=data['clip']['frame_interval'],
                    crop_size=c.crop_size, resize_short=c.resize_short,
                    num_clips=c.num_clips, num_crops=c.num_crops)

    def _dataloader(self, data: dict, split: str, target: str, batch_size: int,
                    num_workers: int, test: bool, infinite: bool = False,
                    source: dict | None = None, clip_len: int | None = None) -> dict:
        sampler = 'InfiniteSampler' if infinite else 'DefaultSampler'
        if not test:  # the config's batch is global (benchmark.distributed)
            batch_size = distributed.shard_batch(batch_size, f'the {target} training batch')
        source = source or _source_cfg(data, split, self.needs)
        clip = self._clip_kwargs(data)
        if clip_len:
            clip['clip_len'] = clip_len
        return dict(batch_size=batch_size, num_workers=num_workers,
                    persistent_workers=False,
                    sampler=dict(type=sampler, shuffle=not test),
                    collate_fn=dict(type='pseudo_collate'),
                    dataset=dict(type='ClipDataset', source=source,
                                 target=target, test_mode=test, **clip))

    def _runner(self, stage: str, started: float, **kwargs) -> Runner:
        """The stage's MMEngine Runner; ``started``: when this attempt of the stage began."""
        hooks = list(kwargs.pop('custom_hooks', []))
        if self.main:
            hooks.append(dict(type='MLflowStageHook', tracking_uri=self.tracking_uri,
                              run_id=self._child_run(stage), interval=max(1, self.cfg.log_interval // 2)))
        hooks.append(dict(type='RandomStateHook'))
        hooks.append(dict(type='StageTimeHook', started=started))
        hooks.append(dict(type='ProgressHook', label=stage))
        options = {}  # what MMEngine's Runner reads from its cfg alone
        if self.cfg.get('compile') and stage != 'fit':
            options['compile'] = self.cfg.compile
        if self.launcher != 'none':
            kwargs['launcher'] = self.launcher
            options['model_wrapper_cfg'] = dict(type='GradientAveraging')  # benchmark/distributed.py
        stage_dir = self.run_dir / stage
        resume = checkpoints.resume_checkpoint(stage_dir) if stage_dir.is_dir() else None
        return BenchRunner(work_dir=str(stage_dir), custom_hooks=hooks,
                           randomness=dict(seed=self.cfg.seed, diff_rank_seed=False),
                           env_cfg=self.cfg.env_cfg.to_dict(), default_scope='benchmark',
                           log_level=self.cfg.log_level, resume=resume is not None,
                           load_from=f'{checkpoints.SCHEME}{resume}' if resume else None,
                           experiment_name=f'{self.cfg.method}_{stage}_'
                                           f'{time.strftime("%Y%m%d_%H%M%S")}'
                                           f'_{int(time.time() * 1e6) % 1_000_000}',
                           cfg=options or None,
                           **kwargs)

    def _optim_type(self) -> dict:
        return amp_mod.optim_wrapper_type(self.amp, self.device)

    def _fit(self) -> dict:
        stage_dir = self.run_dir / 'fit'
        stage_dir.mkdir(parents=True, exist_ok=True)
        ckpt = stage_dir / 'anonymizer.pth'
        start = time.time()
        info: dict = {}
        if self.fit_source is not None:
            return self._reuse_fit(stage_dir, start)
        if self.cfg.fit:
            fit = self.cfg.fit.to_dict()
            model = copy.deepcopy(fit['model'])
            model['anonymizer'] = self.cfg.anonymizer.to_dict()
            source = self.sources[self.fit_data['name'], 'train']
            model['num_classes'] = len(source.classes)
            model['data_preprocessor'] = dict(type='ClipPreprocessor', normalize=False,
                                              keep_aux=True, aux_channels=source.aux_channels)
            optim = copy.deepcopy(fit['optim_wrapper'])
            if self.amp:
                for part in (optim.values() if 'constructor' in optim else [optim]):
                    if isinstance(part, dict) and 'optimizer' in part:
                        part.update(self._optim_type())
            runner = self._runner(
                'fit', start, model=model,
                train_dataloader=self._dataloader(self.fit_data, 'train', 'action',
                                                  fit['batch_size'], fit.get('num_workers', 1),
                                                  test=False, infinite=True,
                                                  clip_len=fit.get('clip_len')),
                train_cfg=dict(by_epoch=False, max_iters=fit['max_iters']),
                log_processor=dict(by_epoch=False),
                optim_wrapper=optim, param_scheduler=fit.get('param_scheduler'),
                default_hooks=dict(
                    checkpoint=dict(type='CheckpointHook', by_epoch=False,
                                    interval=fit.get('checkpoint_interval', 50),
                                    max_keep_ckpts=1, save_last=True),
                    logger=dict(type='LoggerHook', interval=self.cfg.log_interval)))
            try:
                with quiet_waiting_schedulers():
                    runner.train()
            finally:  # a fit its guard stopped keeps the curves that show why (process 0's hook)
                release_loader_workers(runner)
                for hook in runner.hooks:
                    if isinstance(hook, tracking.MLflowStageHook):
                        hook.flush()
            anonymizer = getattr(runner.model, 'module', runner.model).anonymizer
            info['encoder'] = getattr(anonymizer, 'encoder_source', '')
        else:
            anonymizer = self.anonymizer
        if not self.main:
            return {}
        torch.save(anonymizer.state_dict(), ckpt)
        _write_json(stage_dir / 'anonymizer.json', {
            'anonymizer': self.cfg.anonymizer.to_dict(), 'method': self.cfg.method,
            'clip_len': self.cfg.clip.clip_len, 'crop_size': self.cfg.clip.crop_size,
            'aux_channels': list(self.needs), 'trained_on': self.fit_data['name']})
        timed = checkpoints.stage_time(runner, start) if self.cfg.fit else {'time_fit_s': time.time() - start}
        return dict(info=info, metrics=timed)

    def _reuse_fit(self, stage_dir: Path, start: float) -> dict:
        """The fit stage of a transfer run whose anonymizer an in-domain run fitted: its weights
        and description, copied."""
        if not self.main:
            return {}
        source = _read_json(self.fit_source / RESULT_FILE) or {}
        console.current().detail(f'[fit] the anonymizer {self.fit_source.parent} fitted on '
                                 f'{self.fit_data["name"]} (same config and seed), not fitted again')
        for name in ('anonymizer.pth', 'anonymizer.json'):
            tmp = stage_dir / f'{name}.tmp{os.getpid()}'
            shutil.copyfile(self.fit_source / name, tmp)
            tmp.replace(stage_dir / name)
        info = {k: v for k, v in source.get('info', {}).items() if k == 'encoder'}
        info['fit_from'] = str(self.fit_source.parent.resolve())
        metrics = {'time_fit_s': time.time() - start,
                   'time_fit_reused_s': float(source.get('metrics', {}).get('time_fit_s', 0.0))}
        return dict(info=info, metrics=metrics)

    def _fitted_anonymizer(self):
        """The run's anonymizer with the fit stage's weights, frozen; loaded once per process."""
        if not self._fitted_loaded:
            load_anonymizer_state(self.anonymizer, self.run_dir / 'fit' / 'anonymizer.pth')
            self.anonymizer.eval().requires_grad_(False)
            self._fitted_loaded = True
        return self.anonymizer

    def _anonymize_once(self) -> tuple[dict, float]:
        """Write the fitted anonymizer's output for every evaluation video (train and test), once
        per run (``benchmark.datasets.anonymized``); returns the split sources and the seconds."""
        from benchmark.datasets.anonymized import materialize
        anonymizer = self._fitted_anonymizer().to(self.device)
        sources, seconds = {}, 0.0
        for split in ('train', 'test'):
            folder = self.run_dir / 'anonymized' / f'{self.eval_data["name"]}_{split}'
            sources[split] = dict(type='AnonymizedSource', folder=str(folder),
                                  source=_source_cfg(self.eval_data, split, self.needs))
            if not self.main:  # process 0 writes them
                continue
            record = materialize(self.sources[self.eval_data['name'], split], anonymizer, folder,
                                 resize_short=self.cfg.clip.resize_short,
                                 crop_size=self.cfg.clip.crop_size, device=self.device, amp=self.amp)
            seconds += record['seconds']
            if record['seconds']:
                console.current().detail(f'[anonymize once] {folder.name}: {record["videos"]} '
                                         f'videos, {record["frames"]} frames in '
                                         f'{record["seconds"]:.0f} s')
        distributed.barrier()
        return sources, seconds

    def _target(self, stage: str) -> dict:
        sched = self.cfg.target_schedule
        start = time.time()
        model = copy.deepcopy((self.cfg.action_model if stage == 'action'
                               else self.cfg.privacy_model).to_dict())
        src = self.sources[self.eval_data['name'], 'train']
        model['cls_head']['num_classes'] = (len(src.classes) if stage == 'action'
                                            else len(src.attributes))
        sources, once_s = {'train': None, 'test': None}, None
        if self.anonymize_once:  # the target models read videos anonymized beforehand
            sources, once_s = self._anonymize_once()
            model['data_preprocessor'] = dict(type='ClipPreprocessor')
        else:  # the anonymizer runs on every batch, in the target model's data path
            model['data_preprocessor'] = dict(
                type='ClipPreprocessor', aux_channels=tuple(src.aux_channels),
                anonymizer=self.cfg.anonymizer.to_dict(),
                anonymizer_checkpoint=str(self.run_dir / 'fit' / 'anonymizer.pth'))
        hooks = [dict(type='FloatHeadOutputHook')] if self.amp else []  # benchmark/amp.py
        if target_pretrain.wanted(self.cfg, stage):
            init = self._target_init(stage)
            hooks.append(dict(type='PretrainedBackboneHook', checkpoint=init['path']))
        views = self.cfg.clip.num_clips * self.cfg.clip.num_crops
        epochs = sched.max_epochs
        warmup = min(sched.warmup_epochs, max(epochs - 1, 0))
        schedulers = []
        if warmup:
            schedulers.append(dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0,
                                   end=warmup, convert_to_iter_based=True))
        schedulers.append(dict(type='CosineAnnealingLR', T_max=epochs - warmup, eta_min=0,
                               by_epoch=True, begin=warmup, end=epochs,
                               convert_to_iter_based=True))
        runner = self._runner(
            stage, start, model=model, custom_hooks=hooks,
            train_dataloader=self._dataloader(self.eval_data, 'train', stage, sched.batch_size,
                                              sched.num_workers, test=False, source=sources['train']),
            train_cfg=dict(by_epoch=True, max_epochs=epochs, val_interval=epochs + 1),
            optim_wrapper=dict(**self._optim_type(),
                               optimizer=dict(type='AdamW', lr=sched.lr,
                                              weight_decay=sched.weight_decay),
                               clip_grad=dict(max_norm=40, norm_type=2)),
            param_scheduler=schedulers,
            test_dataloader=self._dataloader(self.eval_data, 'test', stage,
                                             max(1, sched.batch_size // views),
                                             sched.num_workers, test=True, source=sources['test']),
            test_evaluator=dict(type='ActionTop1' if stage == 'action' else 'PrivacyLeakage',
                                predictions_file=str(self._predictions_file(stage))),
            test_cfg=dict(type='TestLoop'),
            default_hooks=dict(
                checkpoint=dict(type='CheckpointHook', interval=sched.checkpoint_interval,
                                max_keep_ckpts=1, save_last=True),
                logger=dict(type='LoggerHook', interval=self.cfg.log_interval)))
        runner.train()
        metrics = {k: float(v) for k, v in runner.test().items()}
        metrics.update(checkpoints.stage_time(runner, start))
        if once_s:  # the stage that wrote the anonymized videos carries their cost
            metrics['time_anonymize_once_s'] = once_s
        return dict(metrics=metrics)

    def _target_init(self, stage: str) -> dict:
        """The pretrained backbone the ``stage`` target model starts from, trained once per
        machine (``benchmark.target_pretrain``); its hash is a tag of the run (``bench.action_init``,
        ``bench.privacy_init``), its training time a metric of the run that trained it."""
        if not self.main:
            distributed.barrier()  # process 0 trains it once, the others load it
            return target_pretrain.pretrained_backbone(self.cfg, stage)
        parent = self.state['runs']['parent']
        beside = None  # on a first start, the privacy backbone trains beside the action's
        if stage == 'action' and not distributed.is_distributed():
            beside = target_pretrain.pretrain_beside(self.cfg, 'privacy',
                                                     self.run_dir / 'action' / 'privacy_pretrain.log')
            if beside is not None:
                console.current().print(f'privacy pretraining: beside the action\'s, in process '
                                        f'{beside.process.pid} (log: {beside.log})')
        init = target_pretrain.pretrained_backbone(self.cfg, stage)
        if beside is not None:
            self._record_beside(parent, beside)
        distributed.barrier()
        self.client.set_tag(parent, tracking.TAG + f'{stage}_init', init['sha256'][:16])
        self.client.set_tag(parent, tracking.TAG + f'{stage}_init_path', init['path'])
        if init['trained']:  # the run that trained it carries its cost, as setup
            name = 'time_target_pretrain_s' if stage == 'action' else f'time_{stage}_pretrain_s'
            self.client.log_metric(parent, name, init['seconds'])
        return init

    def _record_beside(self, parent: str, beside) -> None:
        """Wait for the backbone training beside this stage; the run that trained it carries
        its cost (as a stage trains it itself); a failed one is trained by its own stage."""
        outcome = beside.wait()
        if 'error' in outcome:
            console.current().warn(f'{beside.stage} pretraining beside the action\'s stopped '
                                   f'({outcome["error"]}; log: {beside.log}): the {beside.stage} '
                                   f'stage trains it itself')
        elif outcome.get('trained'):
            self.client.log_metric(parent, f'time_{beside.stage}_pretrain_s', outcome['seconds'])
            console.current().print(f'{beside.stage} pretraining: done beside the action\'s, in '
                                    f'{console.duration(outcome["seconds"])}')

    def _predictions_file(self, stage: str) -> Path:
        """Per-video test outputs of a target stage (``benchmark.metrics``), for paired tests."""
        folder = self.run_dir / 'predictions'
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f'{stage}.npz'

    def _test_centre_views(self):
        """The test split, one clip and one crop (the centre) per video."""
        from benchmark.datasets.clips import ClipDataset
        return ClipDataset(self.sources[self.eval_data['name'], 'test'], test_mode=True,
                           **{**self._clip_kwargs(self.eval_data), 'num_clips': 1, 'num_crops': 1})

    def _readability(self) -> dict:
        """``readability_*`` metrics of the fitted anonymizer on ``READABILITY_VIDEOS`` test
        videos, and their cost (``time_readability_s``)."""
        from benchmark import readability
        start = time.time()
        metrics = readability.measure(self._test_centre_views(),
                                      self._fitted_anonymizer().to(self.device), READABILITY_VIDEOS,
                                      device=self.device,
                                      person_cfg=self.eval_data['source'].get('person'))
        return {**metrics, 'time_readability_s': time.time() - start}

    def _samples(self) -> None:
        """Save the same test clips, raw and anonymized, for the report's comparison grid and
        the human study (``bench study``), with their action labels."""
        ds = self._test_centre_views()
        k = min(self.cfg.sample_videos, len(ds))
        picks = np.unique(np.linspace(0, len(ds) - 1, k).round().astype(int))
        items = [ds[int(i)] for i in picks]
        packed = torch.stack([it['inputs'][0] for it in items]).float() / 255
        from benchmark.data import split_aux
        rgb, aux = split_aux(packed, ds.metainfo['aux_channels'])
        anonymizer = self._fitted_anonymizer().cpu()  # the sampled clips are on the CPU
        with torch.no_grad():
            out = anonymizer(rgb, aux).clamp(0, 1)

        def to_uint8(x):  # (K, 3, T, H, W) -> (K, T, H, W, 3)
            return (x.permute(0, 2, 3, 4, 1) * 255).round().to(torch.uint8).numpy()
        ids = np.array([it['data_samples'].metainfo['video_id'] for it in items])
        folder = self.run_dir / 'samples'
        folder.mkdir(exist_ok=True)
        actions = np.array([it['data_samples'].metainfo['action'] for it in items])
        np.savez_compressed(folder / 'test_frames.npz', frames=to_uint8(out), video_ids=ids,
                            actions=actions, classes=np.array(ds.metainfo['classes']))
        np.savez_compressed(folder / 'raw_frames.npz', frames=to_uint8(rgb), video_ids=ids)

    # ----------------------------------------------------------------- the run
    def run(self, fresh: bool = False) -> dict:
        """Run (or resume) every stage; return the final metrics.

        The run folder is locked meanwhile (``.seed<N>.lock`` beside it): a second process on
        the same (method, dataset, profile, seed) and work dir is refused, not interleaved.
        """
        if not self.main:
            return self._follow()
        lock = self.run_dir.parent / f'.{self.run_dir.name}.lock'
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(locked(lock, wait=False))
            except BlockingIOError as err:
                raise ProtocolError(f'another bench run is running {self.run_dir} ({err}): wait for '
                                    f'it to end, or stop it, and run again') from None
            return self._run(fresh)

    def _follow(self) -> dict:
        """A process other than 0 of a distributed run: the stages process 0 names, in step."""
        todo = distributed.broadcast(None)
        if todo is None:  # process 0 found the run complete or failed to prepare it
            return {}
        self._check_data()
        for stage in todo:
            if stage == 'fit':
                self._fit()
            else:
                self._target(stage)
            distributed.barrier()
        return {}

    def _run(self, fresh: bool) -> dict:
        try:
            done = self._prepare(fresh)
        except BaseException:
            distributed.broadcast(None)  # the other processes stop too
            raise
        todo = None if done is not None else [
            stage for stage in STAGES if _read_json(self.run_dir / stage / RESULT_FILE) is None]
        distributed.broadcast(todo)
        if done is not None:
            self.log(f'{self.run_dir} is complete (MLflow run {done.get("run_id")}); '
                     f'pass --fresh to run it again')
            return done
        parent = self.state['runs']['parent']
        try:
            results = {}
            total_start = time.time()
            for stage in STAGES:
                result_path = self.run_dir / stage / RESULT_FILE
                result = _read_json(result_path)
                if result is None:
                    console.current().detail(f'[{stage}] {self.cfg.method} on '
                                             f'{self._stage_data(stage)} ({self.cfg.profile} '
                                             f'profile, seed {self.cfg.seed})')
                    result = self._fit() if stage == 'fit' else self._target(stage)
                    if stage == 'fit':
                        self._samples()
                        result['metrics'].update(self._readability())
                    (self.run_dir / stage).mkdir(parents=True, exist_ok=True)
                    _write_json(result_path, result)
                    self._finish_stage(stage, result)
                    distributed.barrier()  # its files are written before the others read them
                else:
                    self.log(f'[{stage}] already done, skipping')
                    if stage not in self.state['runs']:  # its stage run went with a lost state file
                        self._finish_stage(stage, result)
                if not self.cfg.get('keep_checkpoints', False):  # spent once the stage has its result
                    freed = checkpoints.prune(self.run_dir / stage)
                    if freed:
                        console.current().detail(
                            f'[{stage}] deleted its training checkpoints ({freed / 1e6:.0f} MB; '
                            f'keep_checkpoints=True keeps them)')
                results[stage] = result
            return self._finish(results, time.time() - total_start)
        except ProtocolError as err:  # stopped for a stated reason (a collapsed fit): not a result
            self.client.set_tag(parent, tracking.TAG + 'failure', _first_line(err))
            for stage in STAGES:  # the log that shows why
                if not (self.run_dir / stage / RESULT_FILE).exists():
                    self._log_engine_logs(stage)
            self._terminate('FAILED')
            raise
        except BaseException:
            self._terminate('KILLED')
            raise

    def _terminate(self, status: str) -> None:
        """End the parent run and every unfinished stage's run with ``status``."""
        self.client.set_terminated(self.state['runs']['parent'], status=status)
        for stage in STAGES:
            child = self.state['runs'].get(stage)
            if child and not (self.run_dir / stage / RESULT_FILE).exists():
                self.client.set_terminated(child, status=status)

    def _stage_data(self, stage: str) -> str:
        return self.fit_data['name'] if stage == 'fit' else self.eval_data['name']

    def _finish_stage(self, stage: str, result: dict) -> None:
        run_id = self._child_run(stage)
        for k, v in result.get('metrics', {}).items():
            self.client.log_metric(run_id, k, v)
        for k, v in result.get('info', {}).items():
            if v:
                self.client.set_tag(self.state['runs']['parent'], tracking.TAG + k, v)
        if stage == 'fit':
            parent = self.state['runs']['parent']
            for name in ('anonymizer.pth', 'anonymizer.json'):
                self.client.log_artifact(parent, str(self.run_dir / 'fit' / name), 'anonymizer')
            for name in ('test_frames.npz', 'raw_frames.npz'):
                self.client.log_artifact(parent, str(self.run_dir / 'samples' / name), 'samples')
        else:
            self.client.log_artifact(self.state['runs']['parent'],
                                     str(self._predictions_file(stage)), 'predictions')
        self._log_engine_logs(stage)
        self.client.set_terminated(run_id, status='FINISHED')

    def _log_engine_logs(self, stage: str) -> None:
        """MMEngine's full log of the stage (one file per attempt, in the run folder; the console
        shows only the progress bars) as the parent run's ``logs/<stage>/`` artifacts."""
        for log_file in sorted((self.run_dir / stage).glob('*/*.log')):
            self.client.log_artifact(self.state['runs']['parent'], str(log_file), f'logs/{stage}')

    def _finish(self, results: dict, elapsed: float) -> dict:
        parent = self.state['runs']['parent']
        metrics: dict[str, float] = {}
        for stage in STAGES:
            metrics.update(results[stage].get('metrics', {}))
        metrics['time_total_s'] = sum(metrics.get(f'time_{s}_s', 0.0) for s in STAGES)
        metrics['time_setup_s'] = float(self.state.get('setup_s', self.setup_s))
        from mlflow.entities import Metric
        now = int(time.time() * 1000)
        self.client.log_batch(parent, metrics=[Metric(k, v, now, 0) for k, v in metrics.items()])
        self.client.set_tag(parent, tracking.TAG + 'complete', 'true')
        self.client.set_terminated(parent, status='FINISHED')
        final = dict(metrics=metrics, run_id=parent, run_key=run_key(self.cfg),
                     tracking_uri=self.tracking_uri, run_dir=str(self.run_dir))
        _write_json(self.run_dir / RESULT_FILE, final)
        self.state['complete'] = True
        self._save_state()
        shutil.rmtree(self.run_dir / 'anonymized', ignore_errors=True)  # spent, and large
        return final
