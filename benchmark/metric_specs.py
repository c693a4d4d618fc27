"""What each metric of the protocol means: its direction and protocol version.

Kept free of torch and scikit-learn so that reports, which only read numbers, start fast.
"""
from __future__ import annotations

from dataclasses import dataclass

PROTOCOL_VERSION = 5
PRIVACY_ATTRIBUTES = ('skin_color', 'face', 'gender', 'nudity', 'relationship')


@dataclass(frozen=True)
class MetricSpec:
    name: str
    higher_is_better: bool
    description: str
    protocol_version: int = PROTOCOL_VERSION


def _specs() -> dict[str, MetricSpec]:
    specs = [
        MetricSpec('action_top1', True, 'action top-1 accuracy over test clips x crops'),
        MetricSpec('privacy_cmap', False, 'mean over attributes of average precision'),
        MetricSpec('privacy_f1_macro', False, 'macro F1 over attributes at probability 0.5'),
        MetricSpec('privacy_cmap_attributes', True, 'attributes with test positives, used in cMAP'),
        MetricSpec('floor_action_top1', True, 'majority-class rate of the test labels'),
        MetricSpec('floor_cmap', False, 'cMAP of a constant predictor (mean positive rate)'),
        MetricSpec('floor_f1_macro', False, 'macro F1 of the all-positive predictor'),
    ]
    for name, higher in (('action_top1', True), ('privacy_cmap', False), ('privacy_f1_macro', False)):
        for end in ('low', 'high'):
            specs.append(MetricSpec(f'{name}_ci_{end}', higher,
                                    f'{end} end of the 95 % bootstrap interval of {name} over test videos'))
    specs += [
        MetricSpec('readability_outline', True, 'F-score of frame edges against the true person '
                   'outline (vp_synth; benchmark/readability.py)'),
        MetricSpec('readability_depth', True, 'SSIM of the grey level to the true nearness map, '
                   'above a flat frame\'s, as a share of the map\'s own (vp_synth)'),
        MetricSpec('readability_colour', False, 'mean chroma left, as a share of the raw frames\''),
        MetricSpec('readability_person', True, 'IoU of the person regions found on anonymized and '
                   'raw frames (real data)'),
        MetricSpec('readability_faces', False, 'share of the faces found on raw frames still found '
                   '(real data; a privacy proxy)'),
        MetricSpec('readability_human_top1', True, 'share of study answers naming the true action '
                   '(bench study results)'),
        MetricSpec('readability_human_answers', True, 'study answers behind readability_human_top1'),
        MetricSpec('readability_human_correct', True, 'study answers naming the true action'),
    ]
    for attr in PRIVACY_ATTRIBUTES:
        specs.append(MetricSpec(f'privacy_ap_{attr}', False, f'average precision for {attr}'))
        specs.append(MetricSpec(f'privacy_f1_{attr}', False, f'F1 for {attr} at probability 0.5'))
    return {s.name: s for s in specs}


METRIC_SPECS: dict[str, MetricSpec] = _specs()
