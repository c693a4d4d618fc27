# VP-Synth, domain A: the embedded procedural dataset (benchmark/datasets/vp_synth.py).
# Frames are rendered at 112 px and stored at the size each profile trains on.
dataset = dict(name='vp_synth',
               source=dict(type='VPSynthSource', domain='a', size=112, num_frames=32),
               clip=dict(frame_interval=2))
profiles = dict(
    smoke=dict(dataset=dict(source=dict(size=32, num_frames=16, train_per_class=4,
                                        test_per_class=2))),
    cpu=dict(dataset=dict(source=dict(size=64))),
    paper=dict(dataset=dict(source=dict(size=128))),
)
