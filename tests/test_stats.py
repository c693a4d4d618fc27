"""Bootstrap intervals and paired tests (benchmark/stats.py) on cases checkable by hand."""
import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score

from benchmark import stats
from benchmark.metrics import privacy_metrics


def _privacy(n=60, attrs=5, seed=0, signal=1.0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=(n, attrs))
    scores = 1 / (1 + np.exp(-(signal * (labels * 2 - 1) + rng.normal(size=(n, attrs)))))
    return labels, scores


def test_average_precision_equals_sklearn_with_ties():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, size=(40, 3))
    scores = rng.integers(0, 5, size=(40, 3)) / 4  # many ties
    ours = stats.average_precision(labels, scores)
    theirs = [average_precision_score(labels[:, j], scores[:, j]) for j in range(3)]
    np.testing.assert_allclose(ours, theirs)


def test_missing_attribute_is_left_out_of_cmap_and_f1_alike():
    labels, probs = _privacy(n=30)
    labels[:, 2] = 0  # no positive test clip for the third attribute
    out = privacy_metrics(labels, probs)
    assert np.isnan(out['privacy_ap_gender']) and np.isnan(out['privacy_f1_gender'])
    kept = [0, 1, 3, 4]
    assert out['privacy_cmap'] == pytest.approx(np.mean(
        [average_precision_score(labels[:, j], probs[:, j]) for j in kept]))
    assert out['privacy_f1_macro'] == pytest.approx(np.mean(
        [f1_score(labels[:, j], probs[:, j] >= 0.5) for j in kept]))
    assert out['privacy_cmap_attributes'] == 4
    predictions = stats.Predictions(np.arange(30), labels, probs)
    assert stats.metric_value('privacy_cmap', predictions) == pytest.approx(out['privacy_cmap'])
    assert stats.metric_value('privacy_f1_macro', predictions) == pytest.approx(out['privacy_f1_macro'])


def test_bootstrap_interval_of_a_proportion_matches_the_normal_approximation():
    # 100 videos, 80 right: top-1 0.8, standard error sqrt(0.8 * 0.2 / 100) = 0.04,
    # so the 95 % interval is about 0.8 +- 1.96 * 0.04 = [0.72, 0.88]
    labels = np.zeros(100, dtype=int)
    scores = np.tile([0.9, 0.1], (100, 1))
    scores[80:] = [0.1, 0.9]
    low, high = stats.bootstrap_interval('action_top1', stats.Predictions(np.arange(100), labels, scores))
    assert low == pytest.approx(0.72, abs=0.015)
    assert high == pytest.approx(0.88, abs=0.015)


def test_bootstrap_interval_of_a_perfect_run_is_a_point():
    labels = np.arange(10) % 3
    scores = np.eye(3)[labels]
    assert stats.bootstrap_interval('action_top1', stats.Predictions(np.arange(10), labels, scores)) == (1.0, 1.0)


def test_paired_test_of_identical_methods_is_not_significant():
    labels, _ = _privacy()
    runs = {s: stats.Predictions(np.arange(len(labels)), labels, _privacy(seed=s)[1])
            for s in range(3)}
    result = stats.paired_test('privacy_cmap', runs, dict(runs))
    assert result.difference == 0 and result.p_value == 1.0 and not result.significant()


def test_paired_test_separates_clearly_different_methods_and_pairs_by_video_id():
    a, b = {}, {}
    labels, _ = _privacy(n=120)
    rng = np.random.default_rng(3)
    for s in range(3):  # the same test videos for every seed, other scores
        strong = 1 / (1 + np.exp(-(3 * (labels * 2 - 1) + rng.normal(size=labels.shape))))
        weak = rng.uniform(size=labels.shape)
        ids = np.arange(120)
        a[s] = stats.Predictions(ids, labels, strong)
        order = np.random.default_rng(s).permutation(120)  # B stored in another video order
        b[s] = stats.Predictions(ids[order], labels[order], weak[order])
    result = stats.paired_test('privacy_cmap', a, b)
    assert result.significant() and result.p_value < 0.01
    assert result.difference > 0.2 and result.low > 0
    reverse = stats.paired_test('privacy_cmap', b, a)
    assert reverse.difference == pytest.approx(-result.difference) and reverse.significant()


def test_paired_test_of_small_differences_on_few_videos_is_not_significant():
    labels = np.arange(20) % 4
    a = np.eye(4)[labels] * 0.6 + 0.1
    b = a.copy()
    b[0] = [0.1, 0.7, 0.1, 0.1]  # one video of twenty differs
    result = stats.paired_test('action_top1', {0: stats.Predictions(np.arange(20), labels, a)},
                               {0: stats.Predictions(np.arange(20), labels, b)})
    assert result.difference == pytest.approx(0.05) and not result.significant()


def test_runs_on_other_test_videos_or_labels_are_refused():
    labels, scores = _privacy(n=10)
    a = {0: stats.Predictions(np.arange(10), labels, scores)}
    b = {0: stats.Predictions(np.arange(10) + 5, labels, scores)}
    with pytest.raises(ValueError, match='not tested on the same videos'):
        stats.paired_test('privacy_cmap', a, b)
    c = {0: stats.Predictions(np.arange(10), 1 - labels, scores)}
    with pytest.raises(ValueError, match='labels differ'):
        stats.paired_test('privacy_cmap', a, c)
