# StrongBlur: Gaussian sigma 6 px at 112 px over the person region (baselines/blur.py).
anonymizer = dict(type='RegionBlur', sigma=6.0, dilate=2.0, name='StrongBlur')
