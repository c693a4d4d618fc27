# Depth Image: the depth map as a grey image (baselines/depth.py).
anonymizer = dict(type='DepthImage')
