# ViT-S (mmaction2 VisionTransformer, 384 wide, 12 blocks, 6 heads) on 16x112x112 clips with
# 2x16x16 tubelets: the paper's target action and privacy models (section 4.3).
_backbone = dict(type='VisionTransformer', img_size=112, patch_size=16, embed_dims=384,
                 depth=12, num_heads=6, mlp_ratio=4, qkv_bias=True, num_frames=16,
                 tubelet_size=2, drop_path_rate=0.1, norm_cfg=dict(type='LN', eps=1e-6))
action_model = dict(type='Recognizer3D', backbone=_backbone,
                    cls_head=dict(type='TimeSformerHead', in_channels=384, num_classes=None,
                                  average_clips='prob'))
privacy_model = dict(type='Recognizer3D', backbone=_backbone,
                     cls_head=dict(type='TimeSformerHead', in_channels=384, num_classes=None,
                                   multi_class=True, loss_cls=dict(type='BCELossWithLogits'),
                                   average_clips='score'))
