# WeakBlur: Gaussian sigma 2 px at 112 px over the person region (baselines/blur.py).
anonymizer = dict(type='RegionBlur', sigma=2.0, dilate=2.0, name='WeakBlur')
