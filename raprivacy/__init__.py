"""RAPrivacy (readable anonymization for privacy-preserving action recognition): the method.

Importing the package registers its components: ``RAPrivacyAnonymizer`` (ANONYMIZERS),
``RAPrivacyModel`` (MODELS), ``MultiOptimWrapperConstructor`` (OPTIM_WRAPPER_CONSTRUCTORS) and
the style sets. ``load_anonymizer`` and ``anonymize_video`` run any fitted anonymizer on video.
"""
from raprivacy.anonymizer import RAPrivacyAnonymizer  # noqa: F401
from raprivacy.model import RAPrivacyModel  # noqa: F401
from raprivacy.optim import MultiOptimWrapperConstructor  # noqa: F401
from raprivacy.styles import STYLE_SETS, build_style_images  # noqa: F401


def __getattr__(name):
    # benchmark.anonymize imports the registries, which import this package: resolve lazily.
    if name in ('load_anonymizer', 'anonymize_video'):
        from benchmark import anonymize
        return getattr(anonymize, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
