"""RAPrivacy's readable anonymizer: AdaAttN style transfer toward depth-image style
(RAPrivacy Sec. 3.1, Fig. 3; AdaAttN, Liu et al., ICCV 2021).

Frames are the content images; a style image from the anonymizer's style bank (a buffer of K
images from its ``style_set``, saved in its state dict) is the style. The frozen VGG-19 encoder
gives relu1_1 ... relu5_1 features; three AdaAttN blocks at relu3_1, relu4_1 and relu5_1 embed
content in the style (Eq. 1, 2); the decoder maps the three embeddings to an image (Eq. 3).
All frames of all clips go through in one batched call; each clip's style is encoded once.
In training each clip draws a random style; at evaluation every clip takes style ``eval_style``.
Frames must be larger than 16 px (relu5_1, at 1/16 of the size, needs 2 pixels to reflect-pad).

``scale`` (default 1, the paper's) upsamples frames (bilinear) before the encoder and brings the
decoder's output back to the frame size (area averaging). The paper transfers 112 px frames,
where relu3_1 is 28x28; the cpu profile's 56 px frames would leave 14x14, too coarse for a
decoder to draw limbs, so that profile transfers at twice the size.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.anonymizer import Anonymizer
from benchmark.registry import ANONYMIZERS
from raprivacy.adaattn import AdaAttN, attention_keys
from raprivacy.decoder import Decoder
from raprivacy.encoder import VGGEncoder, load_vgg_weights
from raprivacy.pretrain import pretrained_encoder
from raprivacy.styles import build_style_images

ADAATTN_LAYERS = (3, 4, 5)  # relu3_1, relu4_1, relu5_1
CHECKPOINT = 'checkpoint'  # encoder weights that a following load_state_dict provides


class Transfer(NamedTuple):
    """What one style transfer pass gives the losses."""
    images: torch.Tensor  # (N*T, 3, H, W), unclamped decoder output
    content: list[torch.Tensor]  # relu1_1..relu5_1 of the frames, (N*T, ...)
    style: list[torch.Tensor]  # relu1_1..relu5_1 of each clip's style image, (N, ...)
    frames: int  # T


@ANONYMIZERS.register_module()
class RAPrivacyAnonymizer(Anonymizer):
    """Style transfer of every frame toward a style image (default: depth images).

    Args:
        encoder (dict): ``weights``: a path to ``vgg_normalised.pth`` or a torchvision
            ``vgg19`` state dict, ``'vp_synth'`` (the suite's self-trained encoder, see
            ``raprivacy.pretrain``; further keys under ``pretrain``) or ``'random'`` (explicit
            opt-in); ``width``: channel multiplier of the VGG-19 layout (1.0 for the paper);
            ``init_decoder``: start the decoder from the self-trained autoencoder's (only with
            ``'vp_synth'``). Defaults to ``dict(weights='vp_synth', width=1.0)``.
        style_set (dict, optional): Style set config (``raprivacy.styles``); ``None`` leaves an
            empty bank for a checkpoint to fill. Defaults to VP-Synth depth images.
        eval_style (int): Index in the bank of the style every clip gets at evaluation.
            Defaults to 0.
        scale (int): Transfer at this multiple of the frame size (see the module's docstring).
            Defaults to 1.
    """

    table_name = 'RAPrivacy'
    privacy_learning = True
    readable = True
    learns = True
    per_frame = True  # in eval mode every clip takes style eval_style; frames do not mix

    def __init__(self, encoder: dict | None = None, style_set: dict | None = None,
                 eval_style: int = 0, scale: int = 1) -> None:
        super().__init__()
        if int(scale) != scale or scale < 1:
            raise ValueError(f'anonymizer.scale must be a whole number >= 1, got {scale}')
        self.scale = int(scale)
        encoder = {'weights': 'vp_synth', 'width': 1.0, **(encoder or {})}
        width = float(encoder['width'])
        self.encoder = VGGEncoder(width)
        self.encoder_source = self._load_encoder(encoder)
        self.encoder.requires_grad_(False)
        channels = self.encoder.channels
        self.adaattn = nn.ModuleList(
            AdaAttN(channels[x - 1], sum(channels[:x])) for x in ADAATTN_LAYERS)
        self.decoder = Decoder(width)
        if self._decoder_init is not None:
            self.decoder.load_state_dict(self._decoder_init)
        del self._decoder_init
        self.eval_style = eval_style
        if style_set is None:
            bank = torch.zeros(1, 3, 1, 1, dtype=torch.uint8)
        else:
            bank = torch.from_numpy(build_style_images(style_set)).permute(0, 3, 1, 2).contiguous()
        self.register_buffer('style_bank', bank)
        if style_set is not None and not 0 <= eval_style < len(bank):
            raise ValueError(f'anonymizer.eval_style={eval_style} but the style set has {len(bank)} images')

    def _load_encoder(self, cfg: dict) -> str:
        """Fill the encoder's weights from ``cfg['weights']``; returns the source to record."""
        weights = cfg['weights']
        self._decoder_init = None
        if weights == 'random':
            return 'random (explicit opt-in: untrained VGG-19 layout)'
        if weights == CHECKPOINT:
            return CHECKPOINT
        if weights == 'vp_synth':
            record = pretrained_encoder(self.encoder.width, **{'scale': self.scale, **cfg.get('pretrain', {})})
            self.encoder.load_state_dict(record['encoder'])
            if cfg.get('init_decoder', True):
                self._decoder_init = record['decoder']
            return f'vp_synth self-trained autoencoder ({record["path"].rsplit("/", 1)[-1]})'
        layout = load_vgg_weights(self.encoder, weights)
        return f'{layout} VGG-19 from {weights}'

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
        cfg['encoder'] = dict(cfg.get('encoder') or {}, weights=CHECKPOINT, init_decoder=False)
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
            frames = clips.transpose(1, 2).reshape(n * t, 3, *clips.shape[-2:])
            if self.scale > 1:
                frames = F.interpolate(frames, size=(h, w), mode='bilinear', align_corners=False)
            content = self.encoder(frames)
            # at the frame size, not the transfer size: 4x fewer style positions make the
            # relu3_1 attention 4x cheaper, and depth images have little fine detail to lose
            style = self.encoder(self.styles(style_index, clips.shape[-2:]))
        embedded = [block(content[x - 1], style[x - 1], attention_keys(content, x),
                          attention_keys(style, x), t)
                    for block, x in zip(self.adaattn, ADAATTN_LAYERS)]
        return Transfer(self.decoder(*embedded, size=(h, w)), content, style, t)

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
