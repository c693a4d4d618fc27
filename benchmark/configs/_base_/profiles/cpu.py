# cpu: the embedded default, minutes on 2 cores. 8-frame clips of 56x56 crops from 64 px
# frames; narrow 3D ResNet-18 target models. The learning rate is raised above the paper's
# 1e-3 x batch/512 because these models train in few epochs (the privacy model from scratch).
# Batch 32 for 44 epochs (1,320 iterations over vp_synth's 960 training videos). From scratch,
# the action model sits at chance until it finds the motion, and when it leaves depends on the
# seed: protocol 1 (batch 16, 15 epochs) left at 300 to 700+ of 900 iterations, so top-1 on
# downsampled or blurred frames swung by up to 47 points between seeds. Batch 32 leaves sooner
# (epoch 4 to 6 on most seeds) but not always (downsample-2x seed 0: epoch 11 of 22, 63.8 %
# top-1 against 94.4 and 93.1 for seeds 1 and 2, protocol 2); 44 epochs leave room after a
# late start (the same seed: 91.9 %), but not for strong blur (seed 0: 15.6 %, having memorised
# the training videos). Protocol 4: the action model starts from a backbone pretrained once on
# VP-Synth's pretrain split (raw, other people and scenes; benchmark/target_pretrain.py), as the
# paper's target models start pretrained, and is fine-tuned for 22 epochs. See README "Stable
# target models" and scripts/diag_target_stability.py. Protocol 5: the privacy model, from
# scratch, found the hardest attribute (nudity) on one raw seed of three in 22 epochs (cMAP
# 81.5, 88.4, 79.8); 44 epochs found it on seeds 0 and 2 (91.7, 91.1) but double the privacy
# stage. It now starts from a backbone pretrained once on the same split's privacy bits.
_base_ = ['../models/r3d18_tiny.py', '../schedules/adamw_cosine.py']
profile = 'cpu'
clip = dict(clip_len=8, crop_size=56)
target_schedule = dict(max_epochs=22, batch_size=32, lr=2e-3, warmup_epochs=1, num_workers=1)
# raw RGB of the pretrain split, the recipe that left chance by epoch 6 on every raw seed
target_pretrain = dict(type='vp_synth', max_epochs=44, batch_size=32, lr=2e-3, weight_decay=0.05, warmup_epochs=1,
                       seed=0)
# the privacy bits of the same raw split, the privacy stage's 44-epoch recipe that found nudity
privacy_pretrain = dict(type='vp_synth', max_epochs=44, batch_size=32, lr=2e-3, weight_decay=0.05, warmup_epochs=1,
                        seed=0)
