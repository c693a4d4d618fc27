"""Anonymize every video of a split once, then train and test the target models on the result.

The protocol's default runs the frozen anonymizer on every batch inside the target model's data
preprocessor. For a costly anonymizer on a CPU that is most of a run: the cpu profile's two
target models see 15 epochs x 8 frames of every training video, about 230k frames, while the
videos hold 31k. With ``anonymize_once = True`` in a method's config (the cpu and smoke profiles
of RAPrivacy set it) the protocol instead writes each video's anonymized frames to the run
folder first (``materialize``) and the target models read them (``AnonymizedSource``), as
they would read the output of ``bench anonymize``.

Only for anonymizers whose output frame depends on that frame alone (``per_frame = True``):
then transforming whole frames and cropping afterwards is the per-batch path without its crop
borders. Frames are resized to ``resize_short`` first, exactly as ``ClipDataset`` would, and
stored as uint8 RGB (the aux maps are spent: target models see pixels only).

Each video is written to its own ``.npy`` file through a temporary name, and ``complete.json``
is written last, so an interrupted run resumes with the videos already done.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from benchmark import console
from benchmark.amp import autocast
from benchmark.datasets.clips import resize_short_side
from benchmark.registry import DATASETS

COMPLETE = 'complete.json'


def video_path(folder: Path, i: int) -> Path:
    return folder / f'{i:06d}.npy'


@torch.no_grad()
def materialize(source, anonymizer, folder: str | Path, resize_short: int | None = None,
                crop_size: int = 0, device: str | torch.device = 'cpu', max_frames: int = 128,
                amp: bool = False) -> dict:
    """Write ``anonymizer``'s output for every video of ``source`` under ``folder``.

    Args:
        source: A video source (``benchmark.datasets.clips``).
        anonymizer (Anonymizer): Frozen, with ``per_frame = True``.
        folder (str | Path): Where the videos go.
        resize_short (int, optional): Short side to resize frames to first, as ``ClipDataset``.
        crop_size (int): The crop the frames must still hold after resizing.
        device: Where the anonymizer runs. Defaults to ``'cpu'``.
        max_frames (int): Frames per anonymizer call; whole videos of the same shape are grouped
            up to this many. Defaults to 128.
        amp (bool): Run the anonymizer under bf16 autocast (``--amp``, ``benchmark.amp``); its
            output is taken back to float32 before it is rounded to 8 bits. Defaults to False.

    Returns:
        dict: ``videos``, ``frames`` and ``seconds`` (0 when everything was already there).
    """
    if not getattr(anonymizer, 'per_frame', False):
        raise ValueError(f'{type(anonymizer).__name__} is not per_frame: its frames cannot be '
                         f'anonymized once per video; remove anonymize_once from the config')
    folder = Path(folder)
    done = folder / COMPLETE
    if done.is_file():
        return json.loads(done.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    aux_names = tuple(source.aux_channels)
    start, frames_done = time.time(), 0
    todo = [i for i in range(len(source)) if not video_path(folder, i).is_file()]
    group: list[tuple[int, torch.Tensor]] = []

    def flush() -> None:
        nonlocal frames_done
        if not group:
            return
        clips = torch.stack([c for _, c in group]).to(device).float().div_(255.0)  # (N, C, T, H, W)
        rgb = clips[:, :3]
        aux = {name: clips[:, 3 + k:4 + k] for k, name in enumerate(aux_names)}
        with autocast(device, amp):
            out = anonymizer(rgb, aux)
        out = out.float().clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8)
        out = out.permute(0, 2, 3, 4, 1).cpu().numpy()  # (N, T, H, W, 3)
        for (i, _), video in zip(group, out):
            tmp = folder / f'{i:06d}.tmp{os.getpid()}.npy'
            np.save(tmp, video)
            tmp.replace(video_path(folder, i))
            frames_done += len(video)
        group.clear()

    with console.current().progress(f'anonymize {folder.name}', len(todo), 'videos') as bar:
        for i in todo:
            frames = np.asarray(source.read(i, np.arange(source.num_frames(i))))
            clip = resize_short_side(torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2),
                                     resize_short, crop_size)
            if group and (clip.shape != group[0][1].shape
                          or (len(group) + 1) * clip.shape[1] > max_frames):
                flush()
            group.append((i, clip))
            bar.update()
        flush()
    record = dict(videos=len(source), frames=frames_done, seconds=time.time() - start)
    done.write_text(json.dumps(record))
    return record


@DATASETS.register_module()
class AnonymizedSource:
    """A source's videos as ``materialize`` wrote them: labels from the source, RGB from files.

    Args:
        source (dict | object): The original source (for labels, classes and attributes).
        folder (str): The folder ``materialize`` filled.
    """

    aux_channels: tuple[str, ...] = ()

    def __init__(self, source, folder: str) -> None:
        self.source = DATASETS.build(source) if isinstance(source, dict) else source
        self.folder = Path(folder)
        if not (self.folder / COMPLETE).is_file():
            raise FileNotFoundError(f'{self.folder} holds no complete set of anonymized videos: '
                                    f'the protocol writes it before the target stages')
        self.classes, self.attributes = self.source.classes, self.source.attributes

    def __len__(self) -> int:
        return len(self.source)

    def _video(self, i: int) -> np.ndarray:
        return np.load(video_path(self.folder, i), mmap_mode='r')

    def num_frames(self, i: int) -> int:
        return len(self._video(i))

    def read(self, i: int, frame_indices) -> np.ndarray:
        return np.asarray(self._video(i)[np.asarray(frame_indices)])

    def action(self, i: int) -> int:
        return self.source.action(i)

    def privacy(self, i: int) -> tuple[int, ...]:
        return self.source.privacy(i)

    def video_id(self, i: int) -> str:
        return self.source.video_id(i)
