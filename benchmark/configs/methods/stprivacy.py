# STPrivacy (Li et al., ICCV 2023; baselines/stprivacy.py): a transformer over 2x16x16 tubelets
# (at 112 px) keeps the top token_ratio of each slot's tubelets (Gumbel hard selection in
# training, top-k at test), zero-fills the others and redraws the kept ones through a pixel
# head; trained against an action branch and a privacy branch on the privacy labels. The
# protocol injects fit.model.anonymizer (= `anonymizer` below), its data_preprocessor and
# fit.model.num_classes; the shared trainer is benchmark/adversarial.py. The authors released
# no training code: the module's docstring lists what this suite decided.
#
# The anonymizer mixes frames (tubelets span two, attention the whole clip): it runs on every
# batch of the target models, never on whole videos at once (anonymize_once stays off).

_batch = 32
_lr = 1e-3 * _batch / 512  # the suite's RAPrivacy rate; the paper's is not released
_max_iters = 9000

anonymizer = dict(type='STPrivacyAnonymizer', patch_size=16, tubelet_size=2, embed_dim=384, depth=12,
                  num_heads=6, mlp_ratio=4.0, prune_layer=3, token_ratio=0.7, tau=1.0, skip=False)


def _cosine(begin: int, end: int) -> list:
    return [dict(type='CosineAnnealingLR', by_epoch=False, begin=begin, end=end, T_max=end - begin,
                 eta_min=0.0)]


def _opt(rate: float) -> dict:
    return dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=rate, weight_decay=0.05))


def _optim(branch_lr: float, anonymizer_lr: float) -> dict:
    return dict(constructor='MultiOptimWrapperConstructor', anonymizer=_opt(anonymizer_lr),
                action_branch=_opt(branch_lr), privacy_branch=_opt(branch_lr))


def _backbones(depth: int, base: int) -> dict:
    video = dict(type='ResNet3d', depth=depth, base_channels=base, pretrained=None, pretrained2d=False)
    frame = dict(video, inflate=(0, 0, 0, 0), conv1_kernel=(1, 7, 7), with_pool2=False)
    return dict(action_backbone=video, privacy_backbone=frame)


fit = dict(
    model=dict(
        type='STPrivacyModel',
        **_backbones(50, 64),
        num_attributes=5,
        loss_weights=dict(action=1.0, privacy=1.0, reconstruction=1.0),
        # the pixel head learns to draw (reconstruction alone: the adversarial terms are off
        # while the branches warm up on raw clips), then the privacy weight ramps up; lengths
        # for the paper profile are not measured
        anonymizer_start_iter=0,
        warmup_iters=dict(action_branch=1000, privacy_branch=1000),
        ramp_iters=dict(privacy=1000),
        restart=None,
        guard=dict(after_iter=3000, window=100, max_saturated=0.5, chance_margin=0.05)),
    optim_wrapper=_optim(_lr, _lr),
    param_scheduler=dict(anonymizer=_cosine(0, _max_iters), action_branch=_cosine(0, _max_iters),
                         privacy_branch=_cosine(0, _max_iters)),
    max_iters=_max_iters,
    batch_size=_batch,
    clip_len=None,  # frames per fitting clip; None: the profile's clip.clip_len
    checkpoint_interval=1000)

# cpu: 56 px crops, so the tubelet is scaled with the frame to 2x8x8 (7x7 tubelets per slot,
# as at 112 px), a narrow transformer (96 wide, 4 blocks, pruning after the 2nd), and a
# pixel head that adds to the kept tubelet's pixels and starts at zero (skip=True): the
# anonymizer starts as "keep the chosen tubelets as they are" and the short fit need not
# teach it to draw. Otherwise RAPrivacy's cpu recipe (README "RAPrivacy: how it is fitted"):
# the branches warm up on raw clips for 2,000 iterations (batch 8 of 4-frame clips, lr 2e-3,
# no dropout: about what the action branch needs to leave chance) while the anonymizer waits,
# then 1,000 adversarial iterations at lr 1e-3 (cosine), the privacy weight ramped over the
# first 200; the guard judges from iteration 2,500. Measured on seed 0: with 300 adversarial
# iterations (clean e530f01) the target privacy model lost only 1.6 points of cMAP against
# raw's (92.46 against 94.03); with 1,000 at lr 2e-3 (clean d042a1f) the fit's action branch
# sat at chance 200 iterations in (accuracy 0.138) and the guard stopped it, so the rate stays
# 1e-3 and the action branch gets 500 adversarial iterations before it is judged. At lr 1e-3
# with 1,000 iterations (clean b7c7b70) the target privacy model lost 2.0 points (92.02) and the
# fit's privacy branch ended as sure as it started (binary cross-entropy 0.32 at the warm-up's
# end and at the fit's): the privacy term, which the anonymizer raises, never moved. Collective
# showed why at the same recipe (its config): the action term's gradient on the anonymizer
# outweighed the privacy term's about tenfold. So the privacy weight is 5 here too. With it
# (clean 50e3ce4) the target lost 2.8 points (91.26, top-1 95.62), the fit's privacy loss
# still flat (0.35): what hid the attributes was the choice of tubelets (face AP 87 -> 78.5),
# not the redrawing. Keeping half of each slot's tubelets instead (token_ratio 0.5, clean
# ee77656) was stopped by the guard at iteration 2,500: the zero-filled half of the frame
# counted as saturated output (52 %, limit 50 %; since fixed: the guard now counts kept
# tubelets only). Weight 5 at DynamicViT's 0.7 was measured on three seeds (clean 50e3ce4 and 0382c7c:
# 91.80 +- 0.47 cMAP, 2.2 points below raw, short of the 3 the suite asks). With the fixed
# guard, token_ratio 0.5 (seed 0, clean c1e0cd3, in a store of its own) gave 94.38 top-1 and
# 88.51 cMAP, 5.5 points below raw, so the cpu profile keeps about half of each slot's
# tubelets (24 of 49: round(0.5 x 49) is 24). On seeds 0, 1, 2 (clean 8cb0655): top-1 93.33
# +- 0.95, cMAP 89.75 +- 1.11 (88.51, 90.06, 90.67), 4.28 points below raw (paired bootstrap
# [-6.77, -2.01], p < 0.001). The paper profile keeps DynamicViT's 0.7 (the STPrivacy
# paper's own ratio is not in what REFERENCE.md records); its gain in the RAPrivacy paper's
# Table 1 is -3.1 and -2.8 points of cMAP against raw on VP-HMDB51 and VP-UCF101.
_cpu_warmup, _cpu_iters = 2000, 3000
profiles = dict(
    cpu=dict(
        anonymizer=dict(patch_size=8, embed_dim=96, depth=4, num_heads=4, prune_layer=2, skip=True,
                        token_ratio=0.5),
        fit=dict(model=dict(**_backbones(18, 16), anonymizer_start_iter=_cpu_warmup,
                            loss_weights=dict(action=1.0, privacy=5.0, reconstruction=1.0),
                            warmup_iters=dict(action_branch=_cpu_warmup, privacy_branch=_cpu_warmup),
                            ramp_iters=dict(privacy=200),
                            guard=dict(after_iter=2500, window=50, max_saturated=0.5, chance_margin=0.05)),
                 optim_wrapper=_optim(2e-3, 1e-3),
                 param_scheduler=dict(anonymizer=_cosine(_cpu_warmup, _cpu_iters), action_branch=[],
                                      privacy_branch=[]),
                 max_iters=_cpu_iters, batch_size=8, clip_len=4, checkpoint_interval=100)),
    # smoke: 28 px crops, 2x4x4 tubelets; the same recipe shrunk to seconds, one warm-up
    # iteration so both paths run; the guard watches saturation only.
    smoke=dict(
        anonymizer=dict(patch_size=4, embed_dim=24, depth=2, num_heads=2, prune_layer=1, skip=True),
        fit=dict(model=dict(**_backbones(18, 4), anonymizer_start_iter=1,
                            warmup_iters=dict(action_branch=1, privacy_branch=1),
                            ramp_iters=dict(privacy=2),
                            guard=dict(after_iter=4, window=2, max_saturated=0.5, chance_margin=None)),
                 optim_wrapper=_optim(5e-4, 2e-4),
                 param_scheduler=dict(anonymizer=_cosine(1, 4), action_branch=[], privacy_branch=[]),
                 max_iters=4, batch_size=4, checkpoint_interval=2)),
)
