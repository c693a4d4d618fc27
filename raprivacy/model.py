"""RAPrivacy's adversarial training model (RAPrivacy Sec. 3.2-3.4, Fig. 2, Eq. 6-9).

One MMEngine model holds the anonymizer, the action branch (an mmaction2 ResNet3d, 3D ResNet-50
in the paper, a linear head and cross-entropy, Eq. 6) and the privacy branch (a ResNet applied
to every frame and an MLP projection, L_pri of Eq. 7), and trains them with the suite's shared
adversarial trainer (``benchmark.adversarial.AdversarialModel``, one ``OptimWrapper`` per
submodule: ``anonymizer``, ``action_branch``, ``privacy_branch``). Each iteration:

1. style adaptation: the anonymizer takes a step on ``Loss_st = lg L_gs + ll L_lf`` (Eq. 8),
   plus ``lo L_ol`` where the outline weight is not zero (below);
2. once the branches' warm-up is over, the anonymizer takes a step on
   ``Loss_total = lg L_gs + ll L_lf + la L_act - lp L_pri`` (Eq. 9), with the branches frozen;
3. the action branch takes a step on L_act and the privacy branch one on +L_pri (the
   adversary's side, as SPAct trains its fB), both on phase 2's clips, detached.

What the paper leaves open or contradicts is a config value each (the method config,
``benchmark/configs/methods/raprivacy.py``, gives the values and the evidence behind them):

- ``privacy_loss``, the reading of L_pri (``raprivacy.losses``): ``'ntxent_views'``, SPAct's
  NT-Xent over two augmented views of each clip (positives) against the batch's other videos
  (negatives) at temperature 0.1; ``'eq9_action_pairs'``, Eq. 7 as printed inside Eq. 9
  (margin loss over action-defined pairs, maximized: a constant image maximizes it, and it
  pays the anonymizer for erasing the action); ``'info_nce_action_pairs'``, the text's
  InfoNCE over the same pairs.
- ``warmup_iters``: the branches first learn on raw clips while only phase 1 runs, since the
  paper's action branch is a trained R3D-50, not a random one, and SPAct's branches start
  pretrained.
- ``ramp_iters``: the privacy weight rises linearly after the warm-up.
- ``restart``: the privacy branch is re-initialized periodically (VITA's budget model restarts).
- ``bounded_losses``: every loss reads the clamped output the classifiers and the saved frames
  see, through ``clamp_inward`` (saturated values still get the gradient back into range);
  off, the style losses read the unclamped output and the branches the hard clamp.
- ``loss_weights.outline`` (lo, 0 in the paper's objective) and ``outline_pool``: a term the
  paper does not have, ``raprivacy.losses.laplacian_loss`` of the frames the branches see
  against the input clips, added to Loss_st in both phases. Loss_st alone cannot keep the
  person's outline (the README's pixel-optimum study), so this asks for the content's coarse
  edges in grey; ``outline_detail='removed'`` also penalizes texture finer than the pooling.
- ``guard``: a fit whose output saturates or whose action branch sits at chance stops with a
  one-line reason (``benchmark.adversarial.CollapseGuard``).
- ``train_privacy``: whether the privacy branch learns at all (off: a fixed random extractor).
  Embeddings are L2-normalized by default (``normalize_embeddings``): D^2 of Eq. 7 is
  unbounded otherwise.

Two switches change how the fit is computed, not what (``tests/raprivacy/test_fast_path.py``):
``channels_last_3d`` (the branches' 3D convolutions in NDHWC) and ``compile`` (``torch.compile``
of the anonymizer's encoder, blocks and decoder, the style losses and both branches; ``True`` or
``torch.compile``'s keyword arguments). The anonymizer's own switches are in
``raprivacy.anonymizer``; bf16 autocast is the protocol's ``--amp``.

Distributed training (``bench run --launcher pytorch``) averages each optimizer's gradients
across processes before it steps (``benchmark.distributed``): MMEngine's
``MMSeparateDistributedDataParallel`` would hide the anonymizer's methods this model calls.
"""
from __future__ import annotations

import mmaction.models  # noqa: F401  registers the video backbones (ResNet3d) the branches use
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.adversarial import AdversarialModel, clamp_inward, set_requires_grad
from benchmark.anonymizer import build_anonymizer
from benchmark.data import DEFAULT_MEAN, DEFAULT_STD
from benchmark.registry import MODELS
from raprivacy.adaattn import adaattn_star, attention_keys
from raprivacy.anonymizer import RAPrivacyAnonymizer, Transfer
from raprivacy.losses import (check_outline_detail, clip_views, global_style_loss, info_nce_loss, laplacian_loss, local_feature_loss,
                              ntxent_loss, pair_contrastive_loss)

PRIVACY_LOSSES = ('ntxent_views', 'eq9_action_pairs', 'info_nce_action_pairs')
STYLE_LOSS_LAYERS = (2, 3, 4, 5)  # Eq. 4: relu2_1 ... relu5_1
LOCAL_LOSS_LAYERS = (3, 4, 5)  # Eq. 5: relu3_1 ... relu5_1


def _normalize(clips: torch.Tensor) -> torch.Tensor:
    mean = clips.new_tensor(DEFAULT_MEAN).view(1, 3, 1, 1, 1)
    std = clips.new_tensor(DEFAULT_STD).view(1, 3, 1, 1, 1)
    return (clips - mean) / std


class ActionBranch(nn.Module):
    """Video backbone, global average pooling, dropout, linear classifier."""

    memory_format = torch.contiguous_format  # torch.channels_last_3d: NDHWC convolutions

    def __init__(self, backbone: dict, num_classes: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.backbone = MODELS.build(backbone)
        self.dropout = nn.Dropout(dropout)
        with torch.no_grad():
            width = self.backbone(torch.zeros(1, 3, 4, 32, 32)).shape[1]
        self.head = nn.Linear(width, num_classes)
        self.init_weights()

    def init_weights(self) -> None:
        self.backbone.init_weights()
        self.head.reset_parameters()

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        feat = self.backbone(_normalize(clips).contiguous(memory_format=self.memory_format))
        return self.head(self.dropout(feat.mean(dim=(2, 3, 4))))


class PrivacyBranch(nn.Module):
    """Per-frame ResNet features and an MLP projection: embeddings ``(N, T', D)``."""

    memory_format = torch.contiguous_format

    def __init__(self, backbone: dict, embed_dim: int = 128, normalize: bool = True) -> None:
        super().__init__()
        self.backbone = MODELS.build(backbone)
        with torch.no_grad():
            width = self.backbone(torch.zeros(1, 3, 2, 32, 32)).shape[1]
        self.project = nn.Sequential(nn.Linear(width, width), nn.ReLU(inplace=True),
                                     nn.Linear(width, embed_dim))
        self.normalize = normalize
        self.init_weights()

    def init_weights(self) -> None:
        self.backbone.init_weights()
        for layer in self.project:
            if isinstance(layer, nn.Linear):
                layer.reset_parameters()

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        feat = self.backbone(_normalize(clips).contiguous(memory_format=self.memory_format)).mean(dim=(3, 4)).transpose(1, 2)  # (N, T', C)
        emb = self.project(feat)
        return F.normalize(emb, dim=-1) if self.normalize else emb


@MODELS.register_module()
class RAPrivacyModel(AdversarialModel):
    """The anonymizer with its action and privacy branches, trained in two phases per iteration.

    Args:
        anonymizer (dict): ``RAPrivacyAnonymizer`` config (the protocol injects the method's).
        num_classes (int): Action classes of the training set.
        action_backbone (dict): mmaction2 video backbone. Defaults to ResNet3d-50.
        privacy_backbone (dict): ResNet applied frame by frame (a ResNet3d with no temporal
            inflation). Defaults to ResNet-50.
        privacy_embed_dim (int): Embedding size of the privacy branch. Defaults to 128.
        privacy_loss (str): One of ``PRIVACY_LOSSES`` (see the module's docstring). Defaults to
            ``'ntxent_views'``.
        margin (float): m of Eq. 7 (distances of unit vectors lie in [0, 2]). Defaults to 1.0.
        temperature (float): NT-Xent and InfoNCE temperature. Defaults to 0.1.
        views (dict, optional): ``clip_views`` settings of the NT-Xent views, ``min_scale`` and
            ``flip``. Defaults to ``dict(min_scale=0.6, flip=True)``.
        train_privacy (bool): Train the privacy branch to lower L_pri. Defaults to True.
        normalize_embeddings (bool): L2-normalize privacy embeddings. Defaults to True.
        bounded_losses (bool): Compute every loss on the clamped output (``clamp_inward``).
            Defaults to True.
        dropout (float): Dropout before the action classifier. Defaults to 0.5.
        outline_pool (int): Pooling, in frame pixels, of the outline term's Laplacians (see
            ``laplacian_loss``). Defaults to 2.
        outline_detail (str): ``'free'`` or ``'removed'``: whether the outline term leaves
            texture finer than ``outline_pool`` free or penalizes it (see ``laplacian_loss``).
            Defaults to ``'free'``.
        channels_last_3d (bool): NDHWC convolutions in both branches. Defaults to False.
        compile (bool | dict): ``torch.compile`` the parts (see the module's docstring); a
            dict is its keyword arguments. Defaults to False.
        **schedule: ``loss_weights`` (lambdas ``global_style`` lg, ``local_feature`` ll,
            ``action`` la, ``privacy`` lp, ``outline`` lo; defaults AdaAttN's 10 and 3, 1 and 1,
            and 0, the paper's objective),
            ``anonymizer_steps``, ``branch_steps``, ``anonymizer_start_iter``, ``warmup_iters``,
            ``ramp_iters``, ``restart``, ``guard`` and ``data_preprocessor``, as
            ``AdversarialModel`` takes them.
    """

    term_signs = dict(global_style=1, local_feature=1, outline=1, action=1, privacy=-1)
    term_branches = dict(action='action_branch', privacy='privacy_branch')
    default_weights = dict(global_style=10.0, local_feature=3.0, outline=0.0, action=1.0, privacy=1.0)
    guard_accuracy = 'action_acc'

    def __init__(self, anonymizer: dict, num_classes: int | None = None,
                 action_backbone: dict | None = None, privacy_backbone: dict | None = None,
                 privacy_embed_dim: int = 128, privacy_loss: str = 'ntxent_views',
                 margin: float = 1.0, temperature: float = 0.1, views: dict | None = None,
                 train_privacy: bool = True, normalize_embeddings: bool = True,
                 bounded_losses: bool = True, dropout: float = 0.5, outline_pool: int = 2,
                 outline_detail: str = 'free',
                 channels_last_3d: bool = False,
                 compile: bool | dict = False, **schedule) -> None:
        if num_classes is None:
            raise ValueError('RAPrivacyModel needs fit.model.num_classes (the action classes of the '
                             'training set)')
        if privacy_loss not in PRIVACY_LOSSES:
            raise ValueError(f'fit.model.privacy_loss must be one of {", ".join(PRIVACY_LOSSES)}, '
                             f'got {privacy_loss!r}')
        branches = ('action_branch', 'privacy_branch') if train_privacy else ('action_branch',)
        super().__init__(branches, chance=1.0 / num_classes, **schedule)
        self.anonymizer: RAPrivacyAnonymizer = build_anonymizer(anonymizer)
        self.action_branch = ActionBranch(
            action_backbone or dict(type='ResNet3d', depth=50, pretrained=None, pretrained2d=False),
            num_classes, dropout)
        self.privacy_branch = PrivacyBranch(
            privacy_backbone or dict(type='ResNet3d', depth=50, pretrained=None, pretrained2d=False,
                                     inflate=(0, 0, 0, 0), conv1_kernel=(1, 7, 7), with_pool2=False),
            privacy_embed_dim, normalize_embeddings)
        if not train_privacy:
            set_requires_grad(self.privacy_branch, False)
        self.privacy_loss, self.margin, self.temperature = privacy_loss, margin, temperature
        self.views = {'min_scale': 0.6, 'flip': True, **(views or {})}
        self.bounded_losses = bounded_losses
        if int(outline_pool) < 1:
            raise ValueError(f'fit.model.outline_pool must be a whole number of pixels >= 1, got {outline_pool!r}')
        self.outline_pool = int(outline_pool)
        self.outline_detail = check_outline_detail(outline_detail)
        if channels_last_3d:
            for branch in (self.action_branch, self.privacy_branch):
                branch.memory_format = torch.channels_last_3d
                branch.to(memory_format=torch.channels_last_3d)
        self._compiled_style_losses = None
        if compile:
            options = {} if compile is True else dict(compile)
            for part in (self.anonymizer.encoder, *self.anonymizer.adaattn, self.anonymizer.decoder,
                         self.action_branch, self.privacy_branch):
                part.compile(**options)  # in place: the state dict keeps its keys
            self._compiled_style_losses = torch.compile(self._eager_style_losses, **options)

    # ---- losses -------------------------------------------------------------------------------
    def style_losses(self, out: Transfer, targets: list[torch.Tensor] | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """L_gs (Eq. 4) and L_lf (Eq. 5) of one transfer pass; ``targets``: its
        ``style_targets`` when already computed."""
        targets = self.style_targets(out) if targets is None else targets
        losses = self._compiled_style_losses or self._eager_style_losses
        return losses(out.images, out.style, targets, out.style_frames)

    def style_targets(self, out: Transfer) -> list[torch.Tensor]:
        """The targets of L_lf: parameter-free AdaAttN* of the content features in the style's
        at each local-loss layer. No gradient flows to them, and they depend only on the frozen
        encoder's features, so both phases of an iteration share them."""
        content, style = out.content, out.style
        with torch.no_grad():
            return [adaattn_star(content[x - 1], style[x - 1], attention_keys(content, x),
                                 attention_keys(style, x), out.style_frames, self.anonymizer.attention)
                    for x in LOCAL_LOSS_LAYERS]

    def _eager_style_losses(self, images: torch.Tensor, style: list[torch.Tensor],
                            targets: list[torch.Tensor], style_frames: int
                            ) -> tuple[torch.Tensor, torch.Tensor]:
        enc = self.anonymizer.encoder(images.contiguous(memory_format=self.anonymizer.memory_format))
        l_gs = global_style_loss([enc[x - 1] for x in STYLE_LOSS_LAYERS],
                                 [style[x - 1] for x in STYLE_LOSS_LAYERS], style_frames)
        l_lf = local_feature_loss([enc[x - 1] for x in LOCAL_LOSS_LAYERS], targets)
        return l_gs, l_lf

    def outline_term(self, stylized: torch.Tensor, clips: torch.Tensor) -> torch.Tensor:
        """L_ol: ``laplacian_loss`` of the clips the branches see ``(N, 3, T, H, W)`` against the
        input clips, frame by frame."""
        n, c, t, h, w = clips.shape
        frames = lambda x: x.transpose(1, 2).reshape(n * t, c, h, w)  # noqa: E731
        return laplacian_loss(frames(stylized), frames(clips), self.outline_pool, self.outline_detail)

    def style_terms(self, out: Transfer, stylized: torch.Tensor, batch: dict,
                    targets: list[torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """The terms of Loss_st by name: L_gs, L_lf and, where its weight is not zero, L_ol."""
        l_gs, l_lf = self.style_losses(out, targets)
        terms = dict(global_style=l_gs, local_feature=l_lf)
        if self.weights['outline']:
            terms['outline'] = self.outline_term(stylized, batch['clips'])
        return terms

    def privacy_term(self, clips: torch.Tensor, batch: dict) -> torch.Tensor:
        """L_pri of the privacy branch on ``clips``, in the configured reading."""
        if self.privacy_loss == 'ntxent_views':
            emb1, emb2 = self.privacy_branch(torch.cat(clip_views(clips, **self.views))).chunk(2)
            return ntxent_loss(emb1, emb2, batch['videos'], self.temperature)
        emb = self.privacy_branch(clips)
        if self.privacy_loss == 'info_nce_action_pairs':
            return info_nce_loss(emb, batch['actions'], batch['videos'], self.temperature)
        return pair_contrastive_loss(emb, batch['actions'], batch['videos'], self.margin)

    @staticmethod
    def labels(data_samples, device) -> tuple[torch.Tensor, torch.Tensor]:
        """Action classes and per-batch video indices from the data samples."""
        actions = torch.cat([s.gt_labels.item.view(-1)[:1] for s in data_samples]).long().to(device)
        ids: dict = {}
        videos = [ids.setdefault(s.metainfo.get('video_id', i), len(ids)) for i, s in enumerate(data_samples)]
        return actions, torch.tensor(videos, device=device)

    # ---- the phases -----------------------------------------------------------------------------
    def fit_batch(self, data: dict) -> dict:
        clips = data['inputs'][:, 0]  # training gives one view per clip
        actions, videos = self.labels(data['data_samples'], clips.device)
        return dict(clips=clips, actions=actions, videos=videos,
                    style_index=self.anonymizer.style_index(len(clips), clips.device))

    def stylize(self, batch: dict, encoded: Transfer | None = None) -> tuple[Transfer, torch.Tensor]:
        """One transfer pass: the pass, with its images as the style losses read them, and the
        clips the branches see (``bounded_losses``: the same values, clamped)."""
        out = self.anonymizer.transfer(batch['clips'], batch['style_index'], encoded=encoded)
        if self.bounded_losses:
            out = out._replace(images=clamp_inward(out.images))
            seen = out.images
        else:
            seen = out.images.clamp(0.0, 1.0)
        return out, self.anonymizer.to_clips(seen, out.frames)

    def anonymizer_update(self, batch: dict, optim_wrapper, factors: dict[str, float]
                          ) -> tuple[torch.Tensor, dict]:
        """Phase 1 (Eq. 8), then, past the warm-up, phase 2 (Eq. 9), which reuses phase 1's
        encoder features (the encoder is frozen, so they are the same)."""
        wrapper = optim_wrapper['anonymizer']
        with self.stepping('anonymizer', optim_wrapper):
            out, stylized = self.stylize(batch)
            targets = self.style_targets(out)
            style = self.style_terms(out, stylized, batch, targets)
            loss_st = self.objective(style, factors)
        wrapper.update_params(loss_st)
        log = dict(loss_st=loss_st.detach())
        if 'outline' in style:
            log.update(loss_ol=style['outline'].detach())
        if not self.adversarial(factors, self.term_branches):
            return stylized.detach(), log
        with self.stepping('anonymizer', optim_wrapper):
            out, stylized = self.stylize(batch, encoded=out._replace(images=None))  # images stale
            terms = self.style_terms(out, stylized, batch, targets)  # the same features: the same targets
            terms.update(action=F.cross_entropy(self.action_branch(stylized), batch['actions']),
                         privacy=self.privacy_term(stylized, batch))
            total = self.objective(terms, factors)
        wrapper.update_params(total)
        log.update(loss_gs=terms['global_style'].detach(), loss_lf=terms['local_feature'].detach(),
                   loss_act=terms['action'].detach(),
                   loss_pri=terms['privacy'].detach(), loss_total=total.detach())
        return stylized.detach(), log

    @torch.no_grad()
    def anonymize(self, batch: dict) -> torch.Tensor:
        out = self.anonymizer.transfer(batch['clips'], batch['style_index'])
        return self.anonymizer.to_clips(out.images.clamp(0.0, 1.0), out.frames)

    def branch_loss(self, name: str, clips: torch.Tensor, batch: dict) -> tuple[torch.Tensor, dict]:
        """L_act for the action branch (with its batch accuracy), +L_pri for the privacy branch."""
        if name == 'action_branch':
            return self.action_loss(clips, batch['actions'])
        return self.privacy_term(clips, batch), {}

    def forward(self, inputs: torch.Tensor, data_samples=None, mode: str = 'tensor'):
        """``'tensor'``: anonymized clips; ``'predict'``: samples with action scores of the
        anonymized clips; ``'loss'``: the weighted terms of Loss_total (Eq. 9, each with its
        sign, so their sum is Loss_total), without updating anything."""
        clips = inputs[:, 0] if inputs.dim() == 6 else inputs
        if mode == 'tensor':
            return self.anonymizer(clips)
        if mode == 'predict':
            return self.predict_samples(clips, data_samples)
        if mode == 'loss':
            actions, videos = self.labels(data_samples, clips.device)
            batch = dict(clips=clips, actions=actions, videos=videos,
                         style_index=self.anonymizer.style_index(len(clips), clips.device))
            out, stylized = self.stylize(batch)
            style = self.style_terms(out, stylized, batch)
            terms = dict(gs=('global_style', style['global_style']), lf=('local_feature', style['local_feature']),
                         act=('action', F.cross_entropy(self.action_branch(stylized), actions)),
                         pri=('privacy', self.privacy_term(stylized, batch)))
            if 'outline' in style:
                terms['ol'] = ('outline', style['outline'])
            return {f'loss_{key}': self.objective({name: value}, {}) for key, (name, value) in terms.items()}
        raise ValueError(f"mode must be 'tensor', 'predict' or 'loss', got {mode!r}")
