# A narrow mmaction2 3D ResNet-18 (base width 16) trained from scratch: the target model of the
# cpu and smoke profiles, small enough for minutes on 2 cores. No dropout: in a few hundred
# iterations from scratch these models underfit rather than overfit.
_width = 16
_backbone = dict(type='ResNet3d', depth=18, base_channels=_width, pretrained=None,
                 pretrained2d=False, conv1_kernel=(3, 7, 7), conv1_stride_t=1,
                 pool1_stride_t=1, inflate=(1, 1, 1, 1), norm_eval=False)
action_model = dict(type='Recognizer3D', backbone=_backbone,
                    cls_head=dict(type='I3DHead', in_channels=_width * 8, num_classes=None,
                                  dropout_ratio=0.0, average_clips='prob'))
privacy_model = dict(type='Recognizer3D', backbone=_backbone,
                     cls_head=dict(type='I3DHead', in_channels=_width * 8, num_classes=None,
                                   dropout_ratio=0.0, multi_class=True,
                                   loss_cls=dict(type='BCELossWithLogits'),
                                   average_clips='score'))
