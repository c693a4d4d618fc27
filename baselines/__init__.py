"""The fixed (non-learning) and learning baselines of the RAPrivacy paper's Table 1,
one module per anonymizer, each registered in ``benchmark.registry.ANONYMIZERS``."""
from baselines import blackening, blur, depth, downsample, identity  # noqa: F401
from baselines import collective, spact, stprivacy, vita  # noqa: F401
