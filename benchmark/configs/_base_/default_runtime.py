# Runtime settings shared by every run. The protocol builds one MMEngine Runner per stage
# (fit, action, privacy) from these and the layers above them.
default_scope = 'benchmark'
protocol_version = 4
seed = 0
env_cfg = dict(cudnn_benchmark=False,
               mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
log_level = 'INFO'
log_interval = 10
# Test views of the protocol (paper 4.2): 5 clips x 3 crops per video.
clip = dict(num_clips=5, num_crops=3, resize_short=None)
# Test clips whose anonymized frames are saved for the report's comparison grid.
sample_videos = 4
# Target models read every evaluation video anonymized once beforehand, instead of running the
# anonymizer on every batch (benchmark/datasets/anonymized.py); per-frame anonymizers only.
anonymize_once = False
# Keep each stage's last training checkpoint after the stage has its result (about 25 MB per
# target stage at smoke size); by default only results, samples and the fitted anonymizer stay.
# Not part of the config hash: it changes what is kept, not what is computed.
keep_checkpoints = False
# Where the target action model starts (benchmark/target_pretrain.py): type 'none' is from
# scratch; 'vp_synth' trains a backbone once on VP-Synth's pretrain split with the schedule given
# beside it (max_epochs, batch_size, lr, weight_decay, warmup_epochs, seed) and caches it;
# 'checkpoint' loads a user's backbone state dict from `checkpoint`. Profiles set it.
target_pretrain = dict(type='none', checkpoint=None)
# Where the target privacy model starts: the same choices, its backbone trained on the pretrain
# split's five privacy bits (binary cross-entropy).
privacy_pretrain = dict(type='none', checkpoint=None)
# torch.compile the target models' train_step (MMEngine's Runner `compile`): True, or
# torch.compile's keyword arguments. RAPrivacy's fit has its own switch (fit.model.compile).
compile = False
