# VP-Synth, domain B: other backgrounds, camera and people, for transfer from vp_synth
# (what differs: benchmark/datasets/synth_render.py, DOMAINS; its own data version).
_base_ = ['./vp_synth.py']
dataset = dict(name='vp_synth_b', source=dict(type='VPSynthBSource', domain='b'))
