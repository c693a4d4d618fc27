"""RAPrivacy's adversarial training model (RAPrivacy Sec. 3.2-3.4, Fig. 2, Eq. 6-9).

One MMEngine model holds the anonymizer, the action branch (an mmaction2 ResNet3d, 3D ResNet-50
in the paper, with a linear head and cross-entropy, Eq. 6) and the privacy branch (a ResNet
applied to every frame, an MLP projection, and the contrastive loss of Eq. 7 over pairs of clips
of the batch: positive = same action, different videos; negative = different actions; no privacy
labels). Its ``train_step`` runs both phases of an iteration with an ``OptimWrapperDict`` whose
keys are the submodule names ``anonymizer``, ``action_branch`` and ``privacy_branch``:

1. style adaptation: the anonymizer takes a step on ``Loss_st = lg L_gs + ll L_lf`` (Eq. 8);
   the action classifier is not run and not updated.
2. the anonymizer takes a step on ``Loss_total = lg L_gs + ll L_lf + la L_act - lp L_pri``
   (Eq. 9) and the action classifier a step on ``L_act``.

Whether the privacy feature extractor itself learns (a step on ``+L_pri``, the adversary's side,
as SPAct trains its fB) is the option ``train_privacy``; the paper is silent. Off, the extractor
keeps its random initialization and the anonymizer maximizes a fixed random-feature contrast.
Embeddings are L2-normalized by default (``normalize_embeddings``): the anonymizer maximizes
``D^2`` of positive pairs, which is unbounded otherwise.

For distributed training wrap with ``MMSeparateDistributedDataParallel`` (MMEngine's wrapper
for models with their own ``train_step``).
"""
from __future__ import annotations

from collections import OrderedDict

import mmaction.models  # noqa: F401  registers the video backbones (ResNet3d) the branches use
import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from torch import nn

from benchmark.anonymizer import build_anonymizer
from benchmark.data import DEFAULT_MEAN, DEFAULT_STD
from benchmark.registry import MODELS
from raprivacy.adaattn import adaattn_star, attention_keys
from raprivacy.anonymizer import RAPrivacyAnonymizer, Transfer
from raprivacy.losses import global_style_loss, info_nce_loss, local_feature_loss, pair_contrastive_loss

DEFAULT_WEIGHTS = dict(global_style=10.0, local_feature=3.0, action=1.0, privacy=1.0)
STYLE_LOSS_LAYERS = (2, 3, 4, 5)  # Eq. 4: relu2_1 ... relu5_1
LOCAL_LOSS_LAYERS = (3, 4, 5)  # Eq. 5: relu3_1 ... relu5_1


def _normalize(clips: torch.Tensor) -> torch.Tensor:
    mean = clips.new_tensor(DEFAULT_MEAN).view(1, 3, 1, 1, 1)
    std = clips.new_tensor(DEFAULT_STD).view(1, 3, 1, 1, 1)
    return (clips - mean) / std


class ActionBranch(nn.Module):
    """Video backbone, global average pooling, dropout, linear classifier."""

    def __init__(self, backbone: dict, num_classes: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.backbone = MODELS.build(backbone)
        self.backbone.init_weights()
        self.dropout = nn.Dropout(dropout)
        with torch.no_grad():
            width = self.backbone(torch.zeros(1, 3, 4, 32, 32)).shape[1]
        self.head = nn.Linear(width, num_classes)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        feat = self.backbone(_normalize(clips))
        return self.head(self.dropout(feat.mean(dim=(2, 3, 4))))


class PrivacyBranch(nn.Module):
    """Per-frame ResNet features and an MLP projection: embeddings ``(N, T', D)``."""

    def __init__(self, backbone: dict, embed_dim: int = 128, normalize: bool = True) -> None:
        super().__init__()
        self.backbone = MODELS.build(backbone)
        self.backbone.init_weights()
        with torch.no_grad():
            width = self.backbone(torch.zeros(1, 3, 2, 32, 32)).shape[1]
        self.project = nn.Sequential(nn.Linear(width, width), nn.ReLU(inplace=True),
                                     nn.Linear(width, embed_dim))
        self.normalize = normalize

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        feat = self.backbone(_normalize(clips)).mean(dim=(3, 4)).transpose(1, 2)  # (N, T', C)
        emb = self.project(feat)
        return F.normalize(emb, dim=-1) if self.normalize else emb


@MODELS.register_module()
class RAPrivacyModel(BaseModel):
    """The anonymizer with its action and privacy branches, trained in two phases per iteration.

    Args:
        anonymizer (dict): ``RAPrivacyAnonymizer`` config (the protocol injects the method's).
        num_classes (int): Action classes of the training set.
        action_backbone (dict): mmaction2 video backbone. Defaults to ResNet3d-50.
        privacy_backbone (dict): ResNet applied frame by frame (a ResNet3d with no temporal
            inflation). Defaults to ResNet-50.
        privacy_embed_dim (int): Embedding size of the privacy branch. Defaults to 128.
        privacy_loss (str): ``'contrastive'`` (Eq. 7, margin form) or ``'info_nce'``.
            Defaults to ``'contrastive'``.
        margin (float): m of Eq. 7 (distances of unit vectors lie in [0, 2]). Defaults to 1.0.
        temperature (float): InfoNCE temperature. Defaults to 0.1.
        train_privacy (bool): Train the privacy extractor to minimize L_pri. Defaults to True.
        normalize_embeddings (bool): L2-normalize privacy embeddings. Defaults to True.
        loss_weights (dict): lambdas ``global_style`` (lg), ``local_feature`` (ll), ``action``
            (la), ``privacy`` (lp). Defaults to AdaAttN's 10 and 3, and 1 and 1.
        dropout (float): Dropout before the action classifier. Defaults to 0.5.
        data_preprocessor (dict, optional): The protocol's ``ClipPreprocessor`` config.
    """

    def __init__(self, anonymizer: dict, num_classes: int | None = None,
                 action_backbone: dict | None = None, privacy_backbone: dict | None = None,
                 privacy_embed_dim: int = 128, privacy_loss: str = 'contrastive',
                 margin: float = 1.0, temperature: float = 0.1, train_privacy: bool = True,
                 normalize_embeddings: bool = True, loss_weights: dict | None = None,
                 dropout: float = 0.5, data_preprocessor: dict | None = None) -> None:
        if isinstance(data_preprocessor, dict):  # built here: BaseModel looks in MMEngine's scope
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor)
        if num_classes is None:
            raise ValueError('RAPrivacyModel needs fit.model.num_classes (the action classes of the '
                             'training set)')
        if privacy_loss not in ('contrastive', 'info_nce'):
            raise ValueError(f"fit.model.privacy_loss must be 'contrastive' or 'info_nce', got {privacy_loss!r}")
        unknown = set(loss_weights or {}) - set(DEFAULT_WEIGHTS)
        if unknown:
            raise ValueError(f'fit.model.loss_weights has unknown keys {sorted(unknown)}: '
                             f'valid keys are {sorted(DEFAULT_WEIGHTS)}')
        self.anonymizer: RAPrivacyAnonymizer = build_anonymizer(anonymizer)
        self.action_branch = ActionBranch(
            action_backbone or dict(type='ResNet3d', depth=50, pretrained=None, pretrained2d=False),
            num_classes, dropout)
        self.privacy_branch = PrivacyBranch(
            privacy_backbone or dict(type='ResNet3d', depth=50, pretrained=None, pretrained2d=False,
                                     inflate=(0, 0, 0, 0), conv1_kernel=(1, 7, 7), with_pool2=False),
            privacy_embed_dim, normalize_embeddings)
        self.train_privacy = train_privacy
        if not train_privacy:
            self.privacy_branch.requires_grad_(False)
        self.privacy_loss, self.margin, self.temperature = privacy_loss, margin, temperature
        self.weights = {**DEFAULT_WEIGHTS, **(loss_weights or {})}

    # ---- losses -------------------------------------------------------------------------------
    def style_losses(self, out: Transfer) -> tuple[torch.Tensor, torch.Tensor]:
        """L_gs (Eq. 4) and L_lf (Eq. 5) of one transfer pass."""
        enc = self.anonymizer.encoder(out.images)
        l_gs = global_style_loss([enc[x - 1] for x in STYLE_LOSS_LAYERS],
                                 [out.style[x - 1] for x in STYLE_LOSS_LAYERS], out.frames)
        with torch.no_grad():
            targets = [adaattn_star(out.content[x - 1], out.style[x - 1], attention_keys(out.content, x),
                                    attention_keys(out.style, x), out.frames) for x in LOCAL_LOSS_LAYERS]
        l_lf = local_feature_loss([enc[x - 1] for x in LOCAL_LOSS_LAYERS], targets)
        return l_gs, l_lf

    def pair_loss(self, clips: torch.Tensor, actions: torch.Tensor, videos: torch.Tensor) -> torch.Tensor:
        """L_pri (Eq. 7, or InfoNCE) of the privacy branch's embeddings of ``clips``."""
        emb = self.privacy_branch(clips)
        if self.privacy_loss == 'info_nce':
            return info_nce_loss(emb, actions, videos, self.temperature)
        return pair_contrastive_loss(emb, actions, videos, self.margin)

    @staticmethod
    def labels(data_samples, device) -> tuple[torch.Tensor, torch.Tensor]:
        """Action classes and per-batch video indices from the data samples."""
        actions = torch.cat([s.gt_labels.item.view(-1)[:1] for s in data_samples]).long().to(device)
        ids: dict = {}
        videos = [ids.setdefault(s.metainfo.get('video_id', i), len(ids)) for i, s in enumerate(data_samples)]
        return actions, torch.tensor(videos, device=device)

    # ---- the two phases -----------------------------------------------------------------------
    def style_phase(self, clips: torch.Tensor, style_index: torch.Tensor, optim_wrapper
                    ) -> tuple[dict, Transfer]:
        """Phase 1: one anonymizer step on Loss_st (Eq. 8); also returns the pass, whose frozen
        encoder features phase 2 reuses."""
        wrapper = optim_wrapper['anonymizer']
        with wrapper.optim_context(self.anonymizer):
            out = self.anonymizer.transfer(clips, style_index)
            l_gs, l_lf = self.style_losses(out)
            loss = self.weights['global_style'] * l_gs + self.weights['local_feature'] * l_lf
        wrapper.update_params(loss)
        return dict(loss_st=loss.detach()), out._replace(images=None)  # the images are stale now

    def adversarial_phase(self, clips: torch.Tensor, style_index: torch.Tensor, actions: torch.Tensor,
                          videos: torch.Tensor, optim_wrapper, encoded: Transfer | None = None) -> dict:
        """Phase 2: anonymizer step on Loss_total (Eq. 9), classifier step on L_act, and the
        privacy extractor's step on L_pri when it trains."""
        w = self.weights
        anon_opt, action_opt = optim_wrapper['anonymizer'], optim_wrapper['action_branch']
        with anon_opt.optim_context(self):
            out = self.anonymizer.transfer(clips, style_index, encoded=encoded)
            l_gs, l_lf = self.style_losses(out)
            stylized = self.anonymizer.to_clips(out.images.clamp(0.0, 1.0), out.frames)
            logits = self.action_branch(stylized)
            l_act = F.cross_entropy(logits, actions)
            l_pri = self.pair_loss(stylized, actions, videos)
            total = w['global_style'] * l_gs + w['local_feature'] * l_lf + w['action'] * l_act \
                - w['privacy'] * l_pri
        # Each part gets the gradient of its own objective: `inputs=` keeps the other parts'
        # gradients out, so one forward pass serves all three updates.
        action_opt.backward(l_act, retain_graph=True, inputs=list(self.action_branch.parameters()))
        if self.train_privacy:
            privacy_opt = optim_wrapper['privacy_branch']
            privacy_opt.backward(l_pri, retain_graph=True, inputs=list(self.privacy_branch.parameters()))
        anon_opt.backward(total, inputs=[p for p in self.anonymizer.parameters() if p.requires_grad])
        names = ['anonymizer', 'action_branch'] + (['privacy_branch'] if self.train_privacy else [])
        for name in names:
            optim_wrapper[name].step()
            optim_wrapper[name].zero_grad()
        acc = (logits.argmax(1) == actions).float().mean()
        return dict(loss_gs=l_gs.detach(), loss_lf=l_lf.detach(), loss_act=l_act.detach(),
                    loss_pri=l_pri.detach(), loss_total=total.detach(), action_acc=acc.detach())

    def train_step(self, data, optim_wrapper) -> dict:
        missing = [k for k in ('anonymizer', 'action_branch') + (('privacy_branch',) if self.train_privacy else ())
                   if k not in optim_wrapper.optim_wrappers]
        if missing:
            raise KeyError(f'fit.optim_wrapper has no {", ".join(missing)}: RAPrivacyModel needs one '
                           f'optimizer per submodule (constructor=MultiOptimWrapperConstructor)')
        data = self.data_preprocessor(data, True)
        clips = data['inputs'][:, 0]  # training gives one view per clip
        actions, videos = self.labels(data['data_samples'], clips.device)
        style_index = self.anonymizer.style_index(len(clips), clips.device)
        log, first = self.style_phase(clips, style_index, optim_wrapper)
        log.update(self.adversarial_phase(clips, style_index, actions, videos, optim_wrapper, encoded=first))
        return OrderedDict(log)

    def forward(self, inputs: torch.Tensor, data_samples=None, mode: str = 'tensor'):
        """``'tensor'``: anonymized clips; ``'predict'``: samples with action scores of the
        anonymized clips; ``'loss'``: the weighted terms of Loss_total (Eq. 9, the privacy term
        negated, so their sum is Loss_total), without updating anything."""
        clips = inputs[:, 0] if inputs.dim() == 6 else inputs
        if mode == 'tensor':
            return self.anonymizer(clips)
        if mode == 'predict':
            scores = self.action_branch(self.anonymizer(clips)).softmax(1)
            for sample, score in zip(data_samples, scores):
                sample.set_pred_score(score)
            return data_samples
        if mode == 'loss':
            actions, videos = self.labels(data_samples, clips.device)
            out = self.anonymizer.transfer(clips)
            l_gs, l_lf = self.style_losses(out)
            stylized = self.anonymizer.to_clips(out.images.clamp(0.0, 1.0), out.frames)
            w = self.weights
            return dict(loss_gs=w['global_style'] * l_gs, loss_lf=w['local_feature'] * l_lf,
                        loss_act=w['action'] * F.cross_entropy(self.action_branch(stylized), actions),
                        loss_pri=-w['privacy'] * self.pair_loss(stylized, actions, videos))
        raise ValueError(f"mode must be 'tensor', 'predict' or 'loss', got {mode!r}")
