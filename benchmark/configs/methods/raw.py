# Raw Data: the unmodified frames (baselines/identity.py).
anonymizer = dict(type='Identity')
