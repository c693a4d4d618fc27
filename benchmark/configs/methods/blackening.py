# Blackening: the person region, grown by 2 px at 112 px, filled with black (baselines/blackening.py).
anonymizer = dict(type='Blackening', dilate=2.0)
