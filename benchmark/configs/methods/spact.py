# SPAct (Dave, Chen, Shah, CVPR 2022): a UNet anonymizer warmed up by reconstruction, then trained
# against an action model (cross-entropy, lowered) and a self-supervised privacy model (NT-Xent
# over two views of each clip, raised); no privacy labels. The protocol injects
# fit.model.anonymizer (= `anonymizer` below), its data_preprocessor and fit.model.num_classes.
# What each fit.model key does: baselines/spact.py and baselines/learned.py; the shared trainer
# (warm-ups, guard): benchmark/adversarial.py.
#
# Paper profile: SPAct's networks and learning rates (REFERENCE section 4: UNet fA, R3D-18 fT,
# ResNet-50 fB with an MLP 2048-2048-128, Adam 1e-3 for the reconstruction warm-up, then 1e-4).
# SPAct's branches start pretrained (Kinetics, self-supervised); here they learn on raw clips
# during the reconstruction warm-up. Its lengths are not measured: a third of the fit warms up.
_batch = 32  # clips per iteration (SPAct's batch depends on its GPUs)
_max_iters = 9000
_warmup = 3000


def _frames(depth: int, base: int = 64) -> dict:  # a ResNet frame by frame (no temporal inflation)
    return dict(type='ResNet3d', depth=depth, base_channels=base, pretrained=None, pretrained2d=False,
                inflate=(0, 0, 0, 0), conv1_kernel=(1, 7, 7), with_pool2=False)


def _video(depth: int, base: int = 64) -> dict:
    return dict(type='ResNet3d', depth=depth, base_channels=base, pretrained=None, pretrained2d=False)


def _fit(max_iters: int, warmup: int, lr: float, branch_lr: float, reconstruction_lr: float,
         batch: int) -> dict:
    """Adam for every part: the anonymizer at `reconstruction_lr` during the warm-up, then `lr`;
    the branches at `branch_lr`."""
    def opt(rate):
        return dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=rate))
    # StepLR active up to the warm-up's end: one drop (MultiStepLR's state holds a Counter, which
    # the checkpoint allow-list refuses)
    drop = [dict(type='StepLR', by_epoch=False, step_size=max(warmup, 1), gamma=lr / reconstruction_lr, begin=0,
                 end=warmup + 1)]
    return dict(optim_wrapper=dict(constructor='MultiOptimWrapperConstructor', anonymizer=opt(reconstruction_lr),
                                   action_branch=opt(branch_lr), privacy_branch=opt(branch_lr)),
                param_scheduler=dict(anonymizer=drop, action_branch=[], privacy_branch=[]),
                max_iters=max_iters, batch_size=batch)


anonymizer = dict(type='SPActUNet', width=64, depth=4)

fit = dict(
    model=dict(
        type='SPActModel',
        action_backbone=_video(18),  # fT: R3D-18
        privacy_backbone=_frames(50),  # fB: ResNet-50, projection 2048-2048-128
        embed_dim=128,
        temperature=0.1,
        views=dict(min_scale=0.6, flip=True),  # crops and flips; no colour jitter (colour is private)
        reconstruction_iters=_warmup,
        reconstruction_loss='l1',
        loss_weights=dict(reconstruction=1.0, action=1.0, privacy=1.0),
        dropout=0.0,
        warmup_iters=dict(action_branch=_warmup, privacy_branch=_warmup),
        # stop a fit whose output saturates or whose action branch stays at chance (recorded as
        # failed, never as a result)
        guard=dict(after_iter=_warmup + 500, window=100, max_saturated=0.5, chance_margin=0.05)),
    clip_len=None,  # frames per fitting clip; None: the profile's clip.clip_len
    checkpoint_interval=1000,
    **_fit(_max_iters, _warmup, 1e-4, 1e-4, 1e-3, _batch))

# cpu: scaled to fit 30 minutes per seed on 2 cores with the target stages (about 7.5 min) and the
# videos anonymized once. Networks: UNet width 16, depth 3 (56 px -> 7 px at the bottom); fT the
# target models' narrow R3D-18 (16 base channels); fB a per-frame ResNet-18 at 16 base channels
# (projection 128-128-128). Fit: batch 16 of 8-frame clips. The branches learn from scratch, so
# they warm up on raw clips at the target models' lr 2e-3 (Adam 1e-4 leaves fT at chance in a
# few hundred iterations) while fA learns the identity; then adversarial iterations with fA kept
# at lr 1e-3 (SPAct's 1e-4 would hardly move it in a few hundred iterations) and the branches at
# 2e-3, so that they keep up. 500 warm-up and 400 adversarial iterations: at 1.7 and 2.0 CPU s
# per step (one thread) and 130 CPU s to anonymize the videos once, with the target stages, about
# 26 min per seed on two threads (an estimate: scripts/estimate_spact_vita_cpu.py,
# results/spact_vita_cpu_estimate.json). The guard judges the last 50 iterations: a fit whose
# action branch is at chance by then stops before the target stages.
_cpu_warmup, _cpu_iters = 500, 900
# smoke: the same recipe, shrunk to seconds; one warm-up iteration, so both paths run. Too short
# for any branch to leave chance: its guard watches saturation only.
profiles = dict(
    cpu=dict(
        anonymizer=dict(width=16, depth=3),
        fit=dict(model=dict(action_backbone=_video(18, 16), privacy_backbone=_frames(18, 16),
                            reconstruction_iters=_cpu_warmup,
                            warmup_iters=dict(action_branch=_cpu_warmup, privacy_branch=_cpu_warmup),
                            guard=dict(after_iter=_cpu_iters, window=50)),
                 clip_len=8, checkpoint_interval=100,
                 **_fit(_cpu_iters, _cpu_warmup, 1e-3, 2e-3, 1e-3, 16)),
        anonymize_once=True),
    smoke=dict(
        anonymizer=dict(width=4, depth=2),
        fit=dict(model=dict(action_backbone=_video(18, 8), privacy_backbone=_frames(18, 8), embed_dim=16,
                            reconstruction_iters=1, warmup_iters=dict(action_branch=1, privacy_branch=1),
                            guard=dict(after_iter=4, window=2, max_saturated=0.5, chance_margin=None)),
                 checkpoint_interval=2, **_fit(4, 1, 5e-4, 5e-4, 1e-3, 4)),
        anonymize_once=True),
)
