"""Components are found by their type names; unknown names get near-miss answers."""
import pytest

from benchmark.anonymizer import build_anonymizer
from benchmark.registry import ANONYMIZERS, DATASETS, METRICS, MODELS, UnknownNameError, import_all


@pytest.fixture(scope='module', autouse=True)
def _registered():
    import_all()


def test_suite_components_resolve_by_type_name():
    assert MODELS.get('ClipPreprocessor') is not None
    assert DATASETS.get('ClipDataset') is not None
    assert METRICS.get('PrivacyLeakage') is not None
    assert ANONYMIZERS.get('Identity') is not None


def test_mmaction_components_resolve_through_the_parent_registry():
    from mmaction.models import Recognizer3D
    assert MODELS.get('Recognizer3D') is Recognizer3D
    assert MODELS.get('ResNet3d') is not None


def test_anonymizers_registry_has_only_anonymizers():
    from benchmark.anonymizer import Anonymizer
    assert ANONYMIZERS.parent is None
    for name, cls in ANONYMIZERS.module_dict.items():
        assert issubclass(cls, Anonymizer), name


def test_unknown_anonymizer_names_the_closest():
    with pytest.raises(UnknownNameError) as err:
        build_anonymizer(dict(type='Blackenning'))
    message = str(err.value)
    assert "did you mean 'Blackening'" in message
    assert '\n' not in message
