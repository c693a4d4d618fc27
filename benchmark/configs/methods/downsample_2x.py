# Downsample-2x: area downsampling by 2, bilinear back (baselines/downsample.py).
anonymizer = dict(type='Downsample', factor=2)
