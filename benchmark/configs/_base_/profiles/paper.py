# paper: the paper's settings (section 4.3), for a GPU. ViT-S target models on 16x112x112
# clips, AdamW (weight decay 0.05), lr = 1e-3 x batch / 512 with cosine decay.
_base_ = ['../models/vit_s.py', '../schedules/adamw_cosine.py']
profile = 'paper'
_batch = 32
clip = dict(clip_len=16, crop_size=112, resize_short=128)
target_schedule = dict(max_epochs=50, batch_size=_batch, lr=1e-3 * _batch / 512,
                       warmup_epochs=5, num_workers=8)
