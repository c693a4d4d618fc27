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


@pytest.mark.parametrize('name, takes, not_takes', [
    # **schedule reaches AdversarialModel, which takes branches and chance from the subclass
    ('RAPrivacyModel', {'branch_steps', 'loss_weights', 'guard', 'outline_detail'}, {'branches', 'chance'}),
    # SPAct -> DegradationModel -> LearnedAnonymizerModel -> AdversarialModel; the middle one
    # fixes early_iters itself
    ('SPActModel', {'temperature', 'reconstruction_iters', 'dropout', 'warmup_iters'},
     {'branches', 'chance', 'privacy_branch', 'early_iters'}),
    ('VITAModel', {'budget_target', 'num_attributes', 'ramp_iters'}, {'early_iters', 'privacy_branch'}),
    # a metric's **kwargs reaches MMEngine's BaseMetric, which takes none
    ('PrivacyLeakage', {'attributes', 'predictions_file', 'prefix'}, set()),
])
def test_constructor_arguments_follow_kwargs_to_what_the_bases_take(name, takes, not_takes):
    from benchmark.registry import constructor_arguments
    arguments = set(constructor_arguments(name))
    assert takes <= arguments and not (not_takes & arguments), arguments
