# VITA (Wu et al., TPAMI 2020): a degradation network fd trained against an action model fT
# (cross-entropy, lowered) and an ensemble of M budget models trained on the privacy labels
# (0.5 x the worst case over the ensemble of their cross-entropy toward all ones, lowered), the
# budget models restarting every 200 steps. The protocol injects fit.model.anonymizer
# (= `anonymizer` below), its data_preprocessor and fit.model.num_classes. What each fit.model
# key does: baselines/vita.py and baselines/learned.py; the shared trainer (warm-ups, restarts,
# guard): benchmark/adversarial.py.
#
# Paper profile: VITA's fd (width 32, 5 residual blocks), gamma 0.5, M = 4, restarts every 200
# steps, Adam 1e-4 for fd and fb and 1e-5 for fT (REFERENCE section 4). VITA pretrains fd (as an
# autoencoder), fT and fb; here they are trained at the start of the fit: fd on MSE
# reconstruction, the branches on raw clips at 10x their lr (1e-5 from scratch would take far
# longer), which drops to VITA's when the adversarial phase starts. Lengths are not measured.
_batch = 32  # clips per iteration (VITA: 8 videos per GPU over several GPUs)
_max_iters = 9000
_warmup = 3000


def _frames(depth: int, base: int = 64) -> dict:  # a ResNet frame by frame (no temporal inflation)
    return dict(type='ResNet3d', depth=depth, base_channels=base, pretrained=None, pretrained2d=False,
                inflate=(0, 0, 0, 0), conv1_kernel=(1, 7, 7), with_pool2=False)


def _video(depth: int, base: int = 64) -> dict:
    return dict(type='ResNet3d', depth=depth, base_channels=base, pretrained=None, pretrained2d=False)


def _fit(max_iters: int, warmup: int, lrs: dict, warmup_factor: float, batch: int) -> dict:
    """Adam for every part at `lrs` (anonymizer, action_branch, budget_branch), each at
    `warmup_factor` times its lr until the adversarial phase starts."""
    def opt(rate):
        return dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=rate * warmup_factor))
    # StepLR active up to the warm-up's end: one drop (MultiStepLR's state holds a Counter, which
    # the checkpoint allow-list refuses)
    drop = [dict(type='StepLR', by_epoch=False, step_size=max(warmup, 1), gamma=1 / warmup_factor, begin=0,
                 end=warmup + 1)]
    return dict(optim_wrapper=dict(constructor='MultiOptimWrapperConstructor',
                                   **{part: opt(lr) for part, lr in lrs.items()}),
                param_scheduler={part: drop for part in lrs},
                max_iters=max_iters, batch_size=batch)


anonymizer = dict(type='VITADegradation', width=32, residual_blocks=5)

fit = dict(
    model=dict(
        type='VITAModel',
        action_backbone=_video(18),  # fT (VITA: C3D; R3D-18 as SPAct's)
        # M = 4 per-frame models of different capacity (VITA: ResNet-v1-50, ResNet-v2-50,
        # MobileNet-v1, MobileNet-v1-0.75)
        budget_backbones=[_frames(50), _frames(34), _frames(18), _frames(18, 48)],
        budget_target='ones',
        num_attributes=5,
        reconstruction_iters=_warmup,
        reconstruction_loss='mse',
        loss_weights=dict(reconstruction=1.0, action=1.0, budget=0.5),
        dropout=0.0,
        warmup_iters=dict(action_branch=_warmup, budget_branch=_warmup),
        # new budget models every 200 steps of the adversarial phase; they learn for 20 steps on
        # fd's output before the budget term reads them again
        restart=dict(branch='budget_branch', every=200, rewarm_iters=20),
        guard=dict(after_iter=_warmup + 500, window=100, max_saturated=0.5, chance_margin=0.05)),
    clip_len=None,  # frames per fitting clip; None: the profile's clip.clip_len
    checkpoint_interval=1000,
    **_fit(_max_iters, _warmup, dict(anonymizer=1e-4, action_branch=1e-5, budget_branch=1e-4), 10.0, _batch))

# cpu: scaled to fit 30 minutes per seed on 2 cores with the target stages (about 7.5 min) and the
# videos anonymized once. Networks: fd at width 8 (8-16-32 channels) with 5 residual blocks; fT
# the target models' narrow R3D-18 (16 base channels); M = 2 per-frame ResNet-18s at 16 and 8
# base channels. Fit: batch 16 of 8-frame clips. From scratch, fT needs lr 2e-3 to leave chance
# in a few hundred iterations (the target models' rate), so the branches warm up at 2e-3 and keep
# it (fT's 1e-5 could not follow fd); fd learns the identity at 1e-3 and keeps it (1e-4 would
# hardly move in a few hundred iterations). Restarts every 200 steps as VITA's, so the
# adversarial phase of 1,000 iterations sees four. 600 warm-up and 1,000 adversarial iterations:
# at 0.66 and 0.88 CPU s per step (one thread) and 62 CPU s to anonymize the videos once, with the
# target stages, about 21 min per seed on two threads (an estimate:
# scripts/estimate_spact_vita_cpu.py, results/spact_vita_cpu_estimate.json). The guard judges
# the last 50 iterations.
_cpu_warmup, _cpu_iters = 600, 1600
# smoke: the same recipe, shrunk to seconds; one warm-up iteration, a restart at iteration 3.
# Too short for any branch to leave chance: its guard watches saturation only.
profiles = dict(
    cpu=dict(
        anonymizer=dict(width=8),
        fit=dict(model=dict(action_backbone=_video(18, 16), budget_backbones=[_frames(18, 16), _frames(18, 8)],
                            reconstruction_iters=_cpu_warmup,
                            warmup_iters=dict(action_branch=_cpu_warmup, budget_branch=_cpu_warmup),
                            guard=dict(after_iter=_cpu_iters, window=50)),
                 clip_len=8, checkpoint_interval=100,
                 **_fit(_cpu_iters, _cpu_warmup,
                        dict(anonymizer=1e-3, action_branch=2e-3, budget_branch=2e-3), 1.0, 16)),
        anonymize_once=True),
    smoke=dict(
        anonymizer=dict(width=4, residual_blocks=1),
        fit=dict(model=dict(action_backbone=_video(18, 8), budget_backbones=[_frames(18, 8), _frames(18, 4)],
                            reconstruction_iters=1, warmup_iters=dict(action_branch=1, budget_branch=1),
                            restart=dict(branch='budget_branch', every=2, rewarm_iters=1),
                            guard=dict(after_iter=4, window=2, max_saturated=0.5, chance_margin=None)),
                 checkpoint_interval=2,
                 **_fit(4, 1, dict(anonymizer=5e-4, action_branch=5e-4, budget_branch=5e-4), 1.0, 4)),
        anonymize_once=True),
)
