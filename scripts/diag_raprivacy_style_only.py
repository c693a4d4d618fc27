"""Diagnose RAPrivacy's frames: its style losses without the adversarial phase and without a decoder.

RAPrivacy's cpu-profile frames come out as a dark green texture, not depth images
(reports/plots/frames_vp_synth_cpu.png). With the profile's anonymizer (the self-trained
encoder from the cache) and its depth style set, this script asks two questions of
Loss_st = 10 L_gs + 3 L_lf (Eq. 8):

1. Pixels: starting from each test frame, optimize the image itself (Adam, ``--pixel-steps``)
   on Loss_st toward style image ``eval_style``. This is the best any decoder could do; if the
   optimized frames keep their colours, the encoder's features do not tell the depth style
   from RGB frames, and no training of the decoder will.
2. Style transfer alone: train only phase 1 (AdaAttN modules and decoder) on vp_synth training
   clips for ``--steps`` steps at the fit's anonymizer lr and batch. If its frames are still not
   depth-like, the adversarial terms are not what keeps them from it.

Writes results/raprivacy_style_only_<profile>_<encoder>.png (one row per test clip: input
frame, the pixel-optimized frame, the anonymizer's frame after (2), the style image) and a
.json beside it with the losses, mean colours, colourfulness (mean over pixels of the standard
deviation of R, G and B, in 0-255 units: 0 for a grey depth image), the command, the commit and
the machine. ``--encoder`` replaces the profile's encoder: ``mobilenet_v2`` (ImageNet) or
``self_trained`` (the 1/8-width VGG-19 layout trained on vp_synth, the cpu profile's encoder
before the MobileNetV2). Both the training and the pixels read the output clamped to [0, 1]
through ``clamp_inward``, as the fit's losses do.

Each column is also measured as ``bench run`` measures readability (``benchmark.readability``,
against the frames' person masks and nearness maps): the outline score, the depth likeness and
the colour left (mean chroma over raw's). The pixels' outline is the most any decoder trained on
Loss_st alone could keep from these frames. ``--steps 0`` skips (2) (the output column is then
the untrained decoder's); ``--frames`` test frames, one from the middle of each of that many
test videos spread over the split; ``--tag`` is added to the output names. ``--outline W P``
adds the fit's outline term (``loss_weights.outline`` W, ``outline_pool`` P; not the paper's)
to the pixels' objective, read as the fit reads it: the frames at frame size against the input;
``--outline-detail removed`` makes it penalize texture finer than the pooling (``outline_detail``).

Usage: python scripts/diag_raprivacy_style_only.py [--profile cpu] [--encoder self_trained]
       [--steps 600] [--pixel-steps 300] [--frames 4] [--tag NAME] [--style-weights GS LF]
       [--outline W P [--outline-detail removed]]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ENCODERS = dict(
    mobilenet_v2=dict(type='mobilenet_v2', weights='imagenet'),
    self_trained=dict(type='self_trained', width=0.125, init_decoder=True,
                      pretrain=dict(size=56, steps=1200, batch=8, lr=5e-4, num_frames=2048)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--profile', default='cpu')
    parser.add_argument('--encoder', choices=sorted(ENCODERS), default=None,
                        help="encoder in place of the profile's")
    parser.add_argument('--steps', type=int, default=600)
    parser.add_argument('--pixel-steps', type=int, default=300)
    parser.add_argument('--frames', type=int, default=4, help='test frames to transfer and measure')
    parser.add_argument('--tag', default='', help='added to the output file names')
    parser.add_argument('--style-weights', type=float, nargs=2, metavar=('GS', 'LF'), default=None,
                        help="weights of L_gs and L_lf in place of the profile's (10 and 3)")
    parser.add_argument('--outline', type=float, nargs=2, metavar=('WEIGHT', 'POOL'), default=None,
                        help="add the outline term (fit.model.loss_weights.outline and outline_pool, "
                             "not the paper's) at this weight and pooling, in frame pixels, to the "
                             "pixels' objective")
    parser.add_argument('--outline-detail', choices=('free', 'removed'), default='free',
                        help="the outline term's fit.model.outline_detail: texture finer than the "
                             "pooling free, or penalized")
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--out', type=Path, default=ROOT / 'results')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    from benchmark.adversarial import clamp_inward
    from benchmark.anonymizer import build_anonymizer
    from benchmark.config import resolve_config
    from benchmark.datasets.vp_synth import VPSynthSource
    from benchmark.tracking import provenance
    from raprivacy.model import RAPrivacyModel

    cfg = resolve_config('raprivacy', 'vp_synth', args.profile)
    record = provenance('cpu')  # before anything can change the tree
    encoder = ENCODERS.get(args.encoder, cfg.anonymizer.encoder.to_dict())
    anonymizer = build_anonymizer(dict(cfg.anonymizer.to_dict(), encoder=encoder))
    weights = cfg.fit.model.loss_weights
    if args.style_weights:
        weights.global_style, weights.local_feature = args.style_weights
    # RAPrivacyModel's style losses only need the anonymizer: borrow them without the branches.
    borrowed = type('Borrowed', (), {name: getattr(RAPrivacyModel, name) for name in
                                     ('style_losses', 'style_targets', '_eager_style_losses')})()
    borrowed.anonymizer, borrowed._compiled_style_losses = anonymizer, None
    losses = borrowed.style_losses
    optim = cfg.fit.optim_wrapper.anonymizer.optimizer
    opt = torch.optim.AdamW([p for p in anonymizer.parameters() if p.requires_grad],
                            lr=optim.lr, weight_decay=optim.weight_decay)
    source = VPSynthSource(split='train', **{k: v for k, v in cfg.dataset.source.items()
                                             if k not in ('type', 'split')})
    clip_len, batch = cfg.fit.clip_len or cfg.clip.clip_len, cfg.fit.batch_size
    rng = np.random.default_rng(0)

    def clips() -> torch.Tensor:
        out = []
        for i in rng.choice(len(source), batch, replace=False):
            start = rng.integers(0, source.num_frames(int(i)) - clip_len + 1)
            out.append(np.asarray(source.read(int(i), np.arange(start, start + clip_len)))[..., :3])
        return torch.from_numpy(np.stack(out)).permute(0, 4, 1, 2, 3).float().div_(255)

    log, start = [], time.time()
    anonymizer.train()
    for step in range(args.steps):
        out = anonymizer.transfer(clips())
        l_gs, l_lf = losses(out._replace(images=clamp_inward(out.images)))
        loss = weights.global_style * l_gs + weights.local_feature * l_lf
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 20 == 0 or step == args.steps - 1:
            log.append(dict(step=step, loss_gs=round(l_gs.item(), 3), loss_lf=round(l_lf.item(), 3),
                            seconds=round(time.time() - start, 1)))
            print(log[-1], flush=True)

    anonymizer.eval()
    test = VPSynthSource(split='test', **{k: v for k, v in cfg.dataset.source.items()
                                          if k not in ('type', 'split')})
    picks = np.linspace(0, len(test) - 1, args.frames).astype(int)
    read = np.stack([np.asarray(test.read(int(i), [test.num_frames(int(i)) // 2]))[0]
                     for i in picks])  # (F, H, W, 3 + aux): the middle frame of F test videos
    inputs = read[..., :3]
    aux = dict(zip(test.aux_channels, np.moveaxis(read[..., 3:], -1, 0)))
    frames = torch.from_numpy(inputs).permute(0, 3, 1, 2).float().div_(255)
    with torch.no_grad():
        outputs = anonymizer(frames[:, :, None])[:, :, 0]
    pixels, pixel_log = _optimize_pixels(anonymizer, losses, weights, frames, args.pixel_steps, clamp_inward,
                                         args.outline, args.outline_detail)
    style = anonymizer.styles(torch.full((1,), anonymizer.eval_style), tuple(frames.shape[-2:]))
    to_u8 = lambda t: t.clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1).numpy()  # noqa: E731
    outputs, pixels, style = to_u8(outputs), to_u8(pixels), to_u8(style)[0]
    gap = np.full_like(inputs[0][:, :2], 255)
    rows = [np.concatenate([i, gap, p, gap, o, gap, style], 1) for i, p, o in zip(inputs, pixels, outputs)]
    grid = np.concatenate(rows, 0).repeat(3, 0).repeat(3, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f'raprivacy_style_only_{args.profile}_{encoder["type"]}{"_" + args.tag if args.tag else ""}'
    from PIL import Image
    Image.fromarray(grid).save(stem.with_suffix('.png'))
    style_mean = anonymizer.style_bank.float().mean((0, 2, 3)).tolist()
    def colourfulness(images) -> float:  # mean over pixels of the std of R, G, B
        return round(float(images.reshape(-1, 3).astype(np.float32).std(axis=1).mean()), 1)

    record.update(what='RAPrivacy style transfer trained alone (phase 1 only)', profile=args.profile,
                  steps=args.steps, lr=optim.lr,
                  style_weights=[weights.global_style, weights.local_feature], batch=batch, clip_len=clip_len,
                  encoder=anonymizer.encoder_source, threads=args.threads,
                  columns=['input', 'pixels optimized on Loss_st', 'anonymizer after style-only training',
                           'style image'],
                  pixel_steps=args.pixel_steps, pixel_log=pixel_log,
                  pixel_outline_term=dict(weight=args.outline[0], pool=int(args.outline[1]), detail=args.outline_detail)
                  if args.outline else None,
                  pixels_mean_rgb=[round(v, 1) for v in pixels.reshape(-1, 3).mean(0).tolist()],
                  output_mean_rgb=[round(v, 1) for v in outputs.reshape(-1, 3).mean(0).tolist()],
                  input_mean_rgb=[round(v, 1) for v in inputs.reshape(-1, 3).mean(0).tolist()],
                  style_mean_rgb=[round(v, 1) for v in style_mean],
                  colourfulness=dict(input=colourfulness(inputs), pixels=colourfulness(pixels),
                                     output=colourfulness(outputs), style=colourfulness(style)),
                  readability={name: _readability(images, inputs, aux) for name, images in
                               (('input', inputs), ('pixels', pixels), ('output', outputs))},
                  frames=args.frames, log=log)
    stem.with_suffix('.json').write_text(json.dumps(record, indent=2) + '\n')
    print(f'wrote {stem}.png and .json')


def _readability(images: np.ndarray, inputs: np.ndarray, aux: dict) -> dict:
    """``bench run``'s truth-based readability measures of uint8 frames ``(F, H, W, 3)``."""
    from benchmark import readability
    x, raw = images.astype(np.float32) / 255, inputs.astype(np.float32) / 255
    return dict(outline=round(readability.outline_score(x, aux['mask'] > 127), 3),
                depth=round(readability.depth_likeness(x, aux['depth'].astype(np.float32) / 255), 3),
                colour=round(readability.mean_chroma(x) / readability.mean_chroma(raw), 3))


def _optimize_pixels(anonymizer, losses, weights, frames: torch.Tensor, steps: int, bound,
                     outline: tuple[float, float] | None = None, detail: str = 'free'):
    """Adam on the frames' pixels (at the transfer size) for Loss_st toward the eval style;
    ``bound`` brings the pixels to [0, 1] as the fit does. ``outline``: (weight, pool) of the
    outline term added to Loss_st, or None; ``detail``: its ``outline_detail``."""
    from raprivacy.anonymizer import Transfer
    from raprivacy.losses import laplacian_loss
    size = (frames.shape[-2] * anonymizer.scale, frames.shape[-1] * anonymizer.scale)
    content_img = torch.nn.functional.interpolate(frames, size=size, mode='bilinear', align_corners=False)
    style_size = size if anonymizer.style_size == 'transfer' else tuple(frames.shape[-2:])
    style_img = anonymizer.styles(torch.full((len(frames),), anonymizer.eval_style), style_size)
    with torch.no_grad():
        content, style = anonymizer.encoder(content_img), anonymizer.encoder(style_img)
    image = content_img.clone().requires_grad_(True)
    opt = torch.optim.Adam([image], lr=0.01)
    log = []
    for step in range(steps):
        bounded = bound(image)
        l_gs, l_lf = losses(Transfer(bounded, content, style, 1, 1))
        loss = weights.global_style * l_gs + weights.local_feature * l_lf
        if outline:  # as the fit reads it: the frames the branches see (frame size) against the input
            seen = torch.nn.functional.avg_pool2d(bounded, anonymizer.scale) if anonymizer.scale > 1 else bounded
            l_ol = laplacian_loss(seen, frames, int(outline[1]), detail)
            loss = loss + outline[0] * l_ol
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            log.append(dict(step=step, loss_gs=round(l_gs.item(), 3), loss_lf=round(l_lf.item(), 3),
                            **(dict(loss_outline=round(l_ol.item(), 6)) if outline else {})))
    image = torch.nn.functional.avg_pool2d(image.detach(), anonymizer.scale) if anonymizer.scale > 1 else image
    return image.detach(), log


if __name__ == '__main__':
    main()
