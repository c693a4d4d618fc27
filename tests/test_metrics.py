"""The metric wrapper agrees with scikit-learn and handles the edge cases it documents."""
import math

import numpy as np
import pytest
import torch
from mmengine.structures import LabelData
from sklearn.metrics import average_precision_score, f1_score

from benchmark.metrics import (METRIC_SPECS, ActionTop1, PrivacyLeakage, chance_floors,
                               privacy_metrics, top1_accuracy)

ATTRS = ('skin_color', 'face', 'gender', 'nudity', 'relationship')


@pytest.mark.parametrize('seed', range(5))
def test_privacy_metrics_match_sklearn_on_random_inputs(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, (40, 5))
    labels[0] = 1  # every attribute has a positive
    probs = rng.random((40, 5))
    out = privacy_metrics(labels, probs)
    aps = [average_precision_score(labels[:, j], probs[:, j]) for j in range(5)]
    f1s = [f1_score(labels[:, j], probs[:, j] >= 0.5) for j in range(5)]
    for j, attr in enumerate(ATTRS):
        assert out[f'privacy_ap_{attr}'] == pytest.approx(aps[j])
        assert out[f'privacy_f1_{attr}'] == pytest.approx(f1s[j])
    assert out['privacy_cmap'] == pytest.approx(np.mean(aps))
    assert out['privacy_f1_macro'] == pytest.approx(f1_score(labels, probs >= 0.5, average='macro'))


def test_attribute_without_positives_is_left_out_of_cmap_and_f1_not_nan():
    labels = np.array([[1, 0, 1, 0, 1], [0, 1, 1, 0, 0], [1, 1, 0, 0, 1]])
    probs = np.array([[.9, .2, .8, .7, .6], [.1, .8, .7, .4, .3], [.8, .7, .2, .9, .9]])
    out = privacy_metrics(labels, probs)
    assert math.isnan(out['privacy_ap_nudity'])
    assert out['privacy_cmap_attributes'] == 4
    defined = [out[f'privacy_ap_{a}'] for a in ATTRS if a != 'nudity']
    assert out['privacy_cmap'] == pytest.approx(np.mean(defined))
    assert math.isnan(out['privacy_f1_nudity'])  # left out of macro F1 too, the same rule
    f1s = [out[f'privacy_f1_{a}'] for a in ATTRS if a != 'nudity']
    assert out['privacy_f1_macro'] == pytest.approx(np.mean(f1s))
    floors = chance_floors(labels)
    assert floors['floor_f1_macro'] == pytest.approx(0.8)  # 2 of 3 positive in each kept column


def test_perfect_and_constant_predictions():
    labels = np.array([[1, 0, 1, 1, 0], [0, 1, 1, 0, 1], [1, 1, 0, 0, 1], [0, 0, 1, 1, 0]])
    perfect = privacy_metrics(labels, labels.astype(float))
    assert perfect['privacy_cmap'] == pytest.approx(1.0)
    assert perfect['privacy_f1_macro'] == pytest.approx(1.0)
    constant = privacy_metrics(labels, np.full(labels.shape, 0.7))
    floors = chance_floors(labels)
    assert constant['privacy_cmap'] == pytest.approx(floors['floor_cmap'])
    assert constant['privacy_f1_macro'] == pytest.approx(floors['floor_f1_macro'])


def test_floors_of_the_real_rates():
    # VP-HMDB51 test positive rates from the annotation README, on 1000 clips.
    rates = [0.914, 0.598, 0.913, 0.310, 0.219]
    labels = np.stack([(np.arange(1000) < r * 1000).astype(int) for r in rates], axis=1)
    floors = chance_floors(labels, action_labels=np.arange(1000) % 10)
    assert floors['floor_cmap'] == pytest.approx(np.mean(rates), abs=1e-3)
    assert floors['floor_action_top1'] == pytest.approx(0.1)
    assert 0.6 < floors['floor_f1_macro'] < 0.72


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match=r'\(N, 5\)'):
        privacy_metrics(np.zeros((3, 4)), np.zeros((3, 4)))


def test_top1():
    assert top1_accuracy(np.array([0, 2, 1]), np.array([[.9, .1, 0], [.2, .3, .5], [.6, .3, .1]])) == pytest.approx(2 / 3)


def _sample(score, label):
    return dict(pred_scores=dict(item=torch.tensor(score, dtype=torch.float32)),
                gt_labels=dict(item=torch.tensor(label)))


def test_mmengine_metrics_aggregate_batches():
    action = ActionTop1()
    action.process(None, [_sample([.1, .9], [1]), _sample([.8, .2], [1])])
    action.process(None, [_sample([.3, .7], [1])])
    out = action.evaluate(3)
    assert out['action_top1'] == pytest.approx(2 / 3)
    assert out['floor_action_top1'] == 1.0

    privacy = PrivacyLeakage()
    logits = np.array([[2, -1, 1, -3, 0.5], [-2, 1, 2, -1, -0.5], [1, 2, -1, 1, 2]], dtype=float)
    labels = np.array([[1, 0, 1, 0, 1], [0, 1, 1, 0, 0], [1, 1, 0, 1, 1]], dtype=float)
    privacy.process(None, [_sample(l, y) for l, y in zip(logits, labels)])
    out = privacy.evaluate(3)
    expected = privacy_metrics(labels, 1 / (1 + np.exp(-logits)))
    assert out['privacy_cmap'] == pytest.approx(expected['privacy_cmap'])
    assert out['floor_cmap'] == pytest.approx(labels.mean())


def test_every_reported_metric_declares_its_direction():
    names = set(privacy_metrics(np.eye(5, dtype=int), np.eye(5))) | {'action_top1'}
    names |= set(chance_floors(np.eye(5, dtype=int), np.arange(5)))
    assert names <= set(METRIC_SPECS)
    assert METRIC_SPECS['action_top1'].higher_is_better
    assert not METRIC_SPECS['privacy_cmap'].higher_is_better
