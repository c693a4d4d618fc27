# Downsample-4x: area downsampling by 4, bilinear back (baselines/downsample.py).
anonymizer = dict(type='Downsample', factor=4)
