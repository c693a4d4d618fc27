"""Datasets: video sources (vp_synth, real data) and the clip dataset the protocol trains on."""
from benchmark.datasets.clips import PRIVACY_ATTRIBUTES, ClipDataset  # noqa: F401
from benchmark.datasets.vp_synth import (VPSynthBSource, VPSynthSource,  # noqa: F401
                                         vp_synth_style_images, write_preview)
from benchmark.datasets import real  # noqa: F401  (registers VPUCF101Source, VPHMDB51Source)
from benchmark.datasets.anonymized import AnonymizedSource  # noqa: F401
