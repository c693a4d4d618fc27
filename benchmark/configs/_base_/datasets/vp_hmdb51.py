# VP-HMDB51: HMDB51 videos + official splits + STPrivacy privacy labels, read from the user's
# tree (see README "Using the real datasets"). Sampling rate 2, as in the RAPrivacy paper.
# The protocol sets split and aux; profiles set clip_len, crop_size and resize_short.
dataset = dict(
    name='vp_hmdb51',
    source=dict(
        type='VPHMDB51Source',
        data_root=None,  # --data-root PATH
        split_id=1,  # official split 1, 2 or 3
        annotations=None,  # default: <data_root>/[annotations/]hmdb51_privacy_attribute_label.pickle
        layout='auto',  # 'videos' (<class>/*.avi) or 'frames' (rawframes/)
        decoder='decord',  # or 'pyav'
        depth=dict(weights=None),  # ZoeDepth .onnx or local Hugging Face folder (Depth Image row)
        person=dict(method='hog'),  # or 'selfie' (Blackening and blur rows)
        cache_dir=None,  # depth and masks; default $BENCH_CACHE or ~/.cache/raprivacy-bench
    ),
    clip=dict(frame_interval=2),
)
