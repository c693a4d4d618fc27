# VP-Synth, domain A: the embedded procedural dataset (benchmark/datasets/vp_synth.py).
# Frames are rendered at 112 px and stored at the size each profile trains on.
dataset = dict(name='vp_synth',
               source=dict(type='VPSynthSource', domain='a', size=112, num_frames=32),
               clip=dict(frame_interval=2))
profiles = dict(
    smoke=dict(dataset=dict(source=dict(size=32, num_frames=16, train_per_class=4,
                                        test_per_class=2))),
    # cpu: twice the default training videos and half the epochs (same compute): with 48 per
    # class the action model memorised the training videos (train 0.9, test 0.51 top-1).
    cpu=dict(dataset=dict(source=dict(size=64, train_per_class=96))),
    # paper: frames at the render size (112 px); the paper clip pipeline resizes the short side
    # to 128 and crops 112, as for the real datasets
    paper=dict(dataset=dict(source=dict(size=112))),
)
