# RAPrivacy (readable anonymizer: AdaAttN style transfer toward depth images, trained
# adversarially against an action branch and a contrastive privacy branch; paper Sec. 3, 4.3).
# The protocol injects fit.model.anonymizer (= `anonymizer` below), its data_preprocessor and
# fit.model.num_classes (the dataset's action classes).
#
# Paper profile: full-width VGG-19 from ImageNet weights, which no registry ships: put
# vgg_normalised.pth (AdaIN/AdaAttN) or a torchvision vgg19 state dict at the path below, or set
# anonymizer.encoder.weights; a missing file stops the run with a one-line error naming it.

_batch = 32  # clips per iteration; the paper does not give its batch
_lr = 1e-3 * _batch / 512  # paper 4.3: lr = 1e-3 x batch / 512, AdamW, weight decay 0.05, cosine
_max_iters = 9000  # the paper does not give its schedule length: ~30 epochs of VP-UCF101 at batch 32

anonymizer = dict(
    type='RAPrivacyAnonymizer',
    encoder=dict(weights='~/.cache/raprivacy-bench/weights/vgg_normalised.pth', width=1.0),
    style_set=dict(type='VPSynthDepthStyles', num=256, size=112, seed=0),
    eval_style=0)

_backbone = dict(type='ResNet3d', depth=50, pretrained=None, pretrained2d=False)
_optimizer = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=_lr, weight_decay=0.05))

fit = dict(
    model=dict(
        type='RAPrivacyModel',
        action_backbone=_backbone,  # 3D ResNet-50 (paper 4.3)
        # "a ResNet" (paper 3.3), applied frame by frame: ResNet3d without temporal inflation
        privacy_backbone=dict(_backbone, inflate=(0, 0, 0, 0), conv1_kernel=(1, 7, 7), with_pool2=False),
        privacy_embed_dim=128,
        privacy_loss='contrastive',  # Eq. 7 (margin form); 'info_nce' is the text's variant
        margin=1.0,
        train_privacy=True,  # the paper is silent; SPAct trains its privacy extractor
        loss_weights=dict(global_style=10.0, local_feature=3.0, action=1.0, privacy=1.0)),
    optim_wrapper=dict(constructor='MultiOptimWrapperConstructor', anonymizer=_optimizer,
                       action_branch=_optimizer, privacy_branch=_optimizer),
    param_scheduler=[dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=_max_iters,
                          T_max=_max_iters, eta_min=0.0)],
    max_iters=_max_iters,
    batch_size=_batch,
    clip_len=None,  # frames per fitting clip; None: the profile's clip.clip_len
    checkpoint_interval=1000)


def _thin(depth: int, base: int) -> dict:
    backbone = dict(type='ResNet3d', depth=depth, base_channels=base, pretrained=None, pretrained2d=False)
    return dict(action_backbone=backbone,
                privacy_backbone=dict(backbone, inflate=(0, 0, 0, 0), conv1_kernel=(1, 7, 7),
                                      with_pool2=False))


def _schedule(max_iters: int, lr: float, anonymizer_lr: float) -> dict:
    def opt(rate):
        return dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=rate, weight_decay=0.05))
    return dict(optim_wrapper=dict(constructor='MultiOptimWrapperConstructor', anonymizer=opt(anonymizer_lr),
                                   action_branch=opt(lr), privacy_branch=opt(lr)),
                param_scheduler=[dict(type='CosineAnnealingLR', by_epoch=False, begin=0,
                                      end=max_iters, T_max=max_iters, eta_min=0.0)],
                max_iters=max_iters)


# cpu: thin VGG-19 layout trained by the suite on VP-Synth frames (raprivacy.pretrain), with its
# autoencoder decoder as the starting decoder; ResNet-18 branches at 16 base channels. The paper's
# lr scaling gives 1.6e-5 at batch 8, far too small for a few hundred steps: 5e-4 for the branches,
# 1e-3 for the anonymizer (AdaAttN's 2e-4 left the decoder's output blurred after 100 steps).
# The cpu profile transfers at twice the frame size (anonymizer.scale; 56 px leaves relu3_1 at
# 14x14, too coarse for limbs), and its target models read the videos anonymized once
# (anonymize_once; the per-batch path would run the anonymizer on 7x more frames). Its fit
# takes 4-frame clips, 8 per batch: an iteration transfers 32 frames at 128 px twice.
# smoke: the same recipe, shrunk so the encoder pretraining takes seconds.
profiles = dict(
    cpu=dict(
        anonymizer=dict(
            encoder=dict(weights='vp_synth', width=0.125, init_decoder=True,
                         pretrain=dict(size=56, steps=1200, batch=8, lr=5e-4, num_frames=2048)),
            style_set=dict(type='VPSynthDepthStyles', num=64, size=112, seed=0), scale=2),
        fit=dict(model=_thin(18, 16), batch_size=8, clip_len=4, checkpoint_interval=100,
                 **_schedule(300, 5e-4, 1e-3)),
        anonymize_once=True),
    smoke=dict(
        anonymizer=dict(
            encoder=dict(weights='vp_synth', width=0.125, init_decoder=True,
                         pretrain=dict(size=32, steps=30, batch=16, lr=2e-3, num_frames=256)),
            style_set=dict(type='VPSynthDepthStyles', num=8, size=32, seed=0)),
        fit=dict(model=_thin(18, 8), batch_size=4, checkpoint_interval=2, **_schedule(4, 5e-4, 2e-4)),
        anonymize_once=True),
)
