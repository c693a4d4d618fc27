"""The data path shared by every model of the protocol.

Datasets hand over packed uint8 clips ``(V, 3 + A, T, H, W)``: RGB first, then the ``A``
auxiliary maps the dataset provides (``aux_channels``, e.g. depth and mask), so crops and
flips move pixels and maps together. ``ClipPreprocessor`` turns a batch of them into what a
model takes, on the model's device: it scales to [0, 1], runs the frozen anonymizer on the
whole batch (never frame by frame), then normalizes for the target model.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import torch
from mmengine.model import BaseDataPreprocessor, stack_batch

from benchmark.anonymizer import Anonymizer, build_anonymizer
from benchmark.errors import InputError, first_line
from benchmark.registry import MODELS

# Mean and std of the pixel values, in [0, 1] units, applied after anonymization.
DEFAULT_MEAN = (0.45, 0.45, 0.45)
DEFAULT_STD = (0.225, 0.225, 0.225)


@MODELS.register_module()
class ClipPreprocessor(BaseDataPreprocessor):
    """Scale, anonymize and normalize packed clip batches.

    Args:
        aux_channels (sequence of str): Names of the maps packed after RGB, in order.
            Defaults to ``()``.
        anonymizer (dict, optional): Anonymizer config; ``None`` passes RGB through.
            Defaults to None.
        anonymizer_checkpoint (str, optional): State dict of a fitted anonymizer to load.
            Defaults to None.
        mean (sequence of float): Per-channel mean in [0, 1] units. Defaults to 0.45.
        std (sequence of float): Per-channel std in [0, 1] units. Defaults to 0.225.
        normalize (bool): Apply mean and std. Defaults to True.
        keep_aux (bool): Also return the aux maps (for fitting models that use them) under
            ``aux``. Defaults to False.
    """

    def __init__(self,
                 aux_channels: tuple[str, ...] | list[str] = (),
                 anonymizer: dict | None = None,
                 anonymizer_checkpoint: str | None = None,
                 mean=DEFAULT_MEAN,
                 std=DEFAULT_STD,
                 normalize: bool = True,
                 keep_aux: bool = False) -> None:
        super().__init__()
        self.aux_channels = tuple(aux_channels)
        self.normalize = normalize
        self.keep_aux = keep_aux
        self.anonymizer: Anonymizer | None = None
        if anonymizer is not None:
            self.anonymizer = build_anonymizer(anonymizer)
            if anonymizer_checkpoint:
                load_anonymizer_state(self.anonymizer, anonymizer_checkpoint)
            self.anonymizer.eval()
            self.anonymizer.requires_grad_(False)
        self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1, 1), False)
        self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1, 1), False)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.anonymizer is not None:
            self.anonymizer.eval()  # frozen: its batch-norm statistics must not move
        return self

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        packed = stack_batch(data['inputs'])  # (N, V, C, T, H, W) uint8
        if packed.dim() == 5:  # datasets that give a single view per sample
            packed = packed.unsqueeze(1)
        n, v = packed.shape[:2]
        flat = packed.flatten(0, 1).float().div_(255.0)
        rgb, aux = split_aux(flat, self.aux_channels)
        if self.anonymizer is not None:
            with torch.no_grad():
                rgb = self.anonymizer(rgb, aux).clamp_(0.0, 1.0)
        if self.normalize:
            rgb = (rgb - self.mean) / self.std
        out = dict(inputs=rgb.view(n, v, *rgb.shape[1:]), data_samples=data['data_samples'])
        if self.keep_aux:
            out['aux'] = {k: a.view(n, v, *a.shape[1:]) for k, a in aux.items()}
        return out


def split_aux(flat: torch.Tensor, aux_channels: tuple[str, ...]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Split ``(B, 3 + A, T, H, W)`` into RGB and a dict of ``(B, 1, T, H, W)`` maps."""
    expected = 3 + len(aux_channels)
    if flat.shape[1] != expected:
        raise ValueError(f'packed clips have {flat.shape[1]} channels, expected {expected} '
                         f'(RGB + {", ".join(aux_channels) or "no aux maps"})')
    aux = {name: flat[:, 3 + i:4 + i] for i, name in enumerate(aux_channels)}
    return flat[:, :3], aux


def load_anonymizer_state(anonymizer: Anonymizer, path: str | Path) -> None:
    """Load a fitted anonymizer's state dict, saying which file failed and why.

    Raises:
        FileNotFoundError: no such file.
        InputError: the file is not a torch file, or not the state of this anonymizer.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'anonymizer checkpoint {path} does not exist: fit the anonymizer '
                                f'first (bench run does) or pass the right --checkpoint')
    if not zipfile.is_zipfile(path):
        raise InputError(f'{path} is not a torch checkpoint (not the zip archive torch.save '
                         f'writes): {_REFIT}')
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # torch raises pickle, zip, EOF and runtime errors for a foreign file
        reason = first_line(err).split('. ')[0][:160]  # "Weights only load failed", ...
        raise InputError(f'{path} is not a torch checkpoint ({reason}): {_REFIT}') from None
    state = state.get('state_dict', state) if isinstance(state, dict) else state
    try:
        anonymizer.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as err:  # other keys, shapes or no dict at all
        details = ' '.join(line.strip() for line in str(err).splitlines()[1:]) or first_line(err)
        raise InputError(f'{path} does not hold the weights of {type(anonymizer).__name__} '
                         f'({details[:160]}): {_REFIT}') from None


_REFIT = ('use the anonymizer.pth a `bench run` of this method wrote (`bench run ... --fresh` '
          'fits it again)')
