# VP-Synth, domain B: other backgrounds, camera and people, for transfer from vp_synth.
_base_ = ['./vp_synth.py']
dataset = dict(name='vp_synth_b', source=dict(domain='b'))
