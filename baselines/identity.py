"""Raw Data: the frames as they are (Table 1's first row, the upper bound of leakage)."""
from __future__ import annotations

import torch

from benchmark.anonymizer import Anonymizer
from benchmark.registry import ANONYMIZERS


@ANONYMIZERS.register_module()
class Identity(Anonymizer):
    """Returns the clips unchanged."""

    per_frame = True  # frame by frame, 2D only
    table_name = 'Raw Data'
    readable = True

    def forward(self, clips: torch.Tensor, aux=None) -> torch.Tensor:
        return clips
