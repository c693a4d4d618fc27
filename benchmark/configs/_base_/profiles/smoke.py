# smoke: seconds per run, for tests. Tiny frames, few videos, one epoch; numbers mean nothing.
_base_ = ['../models/r3d18_tiny.py', '../schedules/adamw_cosine.py']
profile = 'smoke'
clip = dict(clip_len=4, crop_size=28, num_clips=2, num_crops=1)
target_schedule = dict(max_epochs=1, batch_size=8, lr=2e-3, warmup_epochs=0, num_workers=0)
sample_videos = 2
# exercises the pretrained start in seconds (numbers mean nothing)
target_pretrain = dict(type='vp_synth', max_epochs=1, batch_size=8, lr=2e-3, weight_decay=0.05, warmup_epochs=0,
                       seed=0, check_left_chance=False)
privacy_pretrain = dict(type='vp_synth', max_epochs=1, batch_size=8, lr=2e-3, weight_decay=0.05, warmup_epochs=0,
                        seed=0, check_left_chance=False)
