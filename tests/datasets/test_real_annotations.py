"""The STPrivacy label pickles: safe loading, checksums and clip-name matching."""
import pickle
import warnings

import numpy as np
import pytest

from benchmark.datasets.annotations import (LabelIndex, UnsafePickleError, load_privacy_labels,
                                            strip_extension)
from tests.datasets.real_tree import malicious_pickle, shared_pickle


@pytest.mark.parametrize('name, rows, rates', [
    ('vp_ucf101', 13320, (0.912, 0.600, 0.897, 0.247, 0.253)),
    ('vp_hmdb51', 6766, (0.903, 0.620, 0.916, 0.268, 0.212)),
])
def test_published_pickles_load_without_warnings(name, rows, rates):
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # a checksum mismatch or numpy.core deprecation fails
        labels = load_privacy_labels(shared_pickle(name), name)
    assert len(labels) == rows
    assert all(k.count('/') == 1 and not k.endswith('.mp4') for k in labels)
    stacked = np.stack(list(labels.values()))
    assert stacked.shape == (rows, 5) and stacked.dtype == np.int64
    np.testing.assert_allclose(stacked.mean(0), rates, atol=1e-3)  # README rounds to 3 places


def test_code_running_pickle_is_refused_before_it_runs(tmp_path):
    marker = tmp_path / 'ran'
    path = tmp_path / 'evil.pickle'
    path.write_bytes(malicious_pickle(marker))
    with pytest.raises(UnsafePickleError, match=r'evil\.pickle.*(posix|os)\.system'):
        load_privacy_labels(path)
    assert not marker.exists()


def test_other_globals_are_refused_too(tmp_path):
    from collections import OrderedDict
    path = tmp_path / 'labels.pickle'
    path.write_bytes(pickle.dumps(OrderedDict(a=np.zeros((1, 5), np.int64))))
    with pytest.raises(UnsafePickleError, match='collections.OrderedDict'):
        load_privacy_labels(path)


def test_checksum_mismatch_warns_but_loads(tmp_path):
    path = tmp_path / 'ucf101_privacy_attribute_label.pickle'
    path.write_bytes(pickle.dumps({'A/v_A_g01_c01.mp4': np.ones((1, 5), np.int64)}, protocol=4))
    with pytest.warns(UserWarning, match='sha256 .* differs'):
        labels = load_privacy_labels(path, 'vp_ucf101')
    assert labels['A/v_A_g01_c01'].tolist() == [1] * 5


def test_malformed_entries_are_named(tmp_path):
    path = tmp_path / 'l.pickle'
    path.write_bytes(pickle.dumps({'A/x.mp4': np.array([[0, 1, 2]])}))
    with pytest.raises(ValueError, match="'A/x.mp4' is not a clip name with 5 binary labels"):
        load_privacy_labels(path)
    with pytest.raises(FileNotFoundError, match='github.com/ming1993li/stprivacy'):
        load_privacy_labels(tmp_path / 'absent.pickle', 'vp_hmdb51')


def test_name_matching_tolerates_known_quirks_only_when_unambiguous():
    hmdb = LabelIndex(load_privacy_labels(shared_pickle('vp_hmdb51')))
    ucf = LabelIndex(load_privacy_labels(shared_pickle('vp_ucf101')))
    assert hmdb.match('chew/#2_Gum_chew_h_nm_np1_fr_med_1.avi') == 'chew/#2_Gum_chew_h_nm_np1_fr_med_1'
    # Copies of the split lists with '#' removed (VITA-Group's) still find their labels.
    assert hmdb.match('chew/2_Gum_chew_h_nm_np1_fr_med_1.avi') == 'chew/#2_Gum_chew_h_nm_np1_fr_med_1'
    assert ucf.match('HandstandPushups/v_HandStandPushups_g01_c01.avi') == \
        'HandstandPushups/v_HandStandPushups_g01_c01'
    assert ucf.match('HandstandPushups/v_HandstandPushups_g01_c01.avi') == \
        'HandstandPushups/v_HandStandPushups_g01_c01'
    # 'boomsnapclap!' and 'boomsnapclap' both exist: a '!'-less name must not pick one at random.
    assert hmdb.match('clap/boomsnapclap_clap_u_nm_np1_fr_med_1.avi') is None
    assert ucf.match('PommelHorse/v_PommelHorse_g26_c01.avi') is None
    assert strip_extension('a/b.c_0.AVI') == 'a/b.c_0'
