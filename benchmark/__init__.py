"""raprivacy-bench: privacy-preserving action recognition, one protocol for every method."""
import warnings

# mmcv-lite has no compiled ops; mmaction2 warns about one we never use at every import.
warnings.filterwarnings('ignore', message='Fail to import ``MultiScaleDeformableAttention``')
