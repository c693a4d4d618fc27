"""The losses of Sec. 3.4 on inputs whose values can be worked out by hand."""
import math

import torch

import pytest

from raprivacy.losses import (clip_views, global_style_loss, info_nce_loss, laplacian_loss, local_feature_loss,
                              ntxent_loss, pair_contrastive_loss, pair_masks)


def test_global_style_loss_is_the_squared_gap_of_means_and_stds():
    # stylized: constant 1 (mean 1, std 0); style: half 0, half 4 (mean 2, std 2); stds carry
    # the eps of 1e-5 under the square root
    stylized = torch.ones(2, 1, 2, 2)  # 2 frames of one clip
    style = torch.tensor([0.0, 0.0, 4.0, 4.0]).view(1, 1, 2, 2)
    loss = global_style_loss([stylized], [style], frames=2)
    expected = (1 - 2) ** 2 + (math.sqrt(1e-5) - math.sqrt(4 + 1e-5)) ** 2
    assert math.isclose(loss.item(), expected, rel_tol=1e-5)
    # summed over layers
    loss2 = global_style_loss([stylized, stylized], [style, style], frames=2)
    assert math.isclose(loss2.item(), 2 * loss.item(), rel_tol=1e-6)


def test_local_feature_loss_is_mse_per_layer_summed_and_does_not_move_the_target():
    out = [torch.zeros(1, 2, 2, 2, requires_grad=True), torch.ones(1, 1, 1, 1, requires_grad=True)]
    target = [torch.full((1, 2, 2, 2), 2.0, requires_grad=True), torch.zeros(1, 1, 1, 1)]
    loss = local_feature_loss(out, target)
    assert math.isclose(loss.item(), 4.0 + 1.0)
    loss.backward()
    assert target[0].grad is None and out[0].grad is not None


def test_pairs_positive_same_action_other_video_negative_other_action():
    actions = torch.tensor([0, 0, 0, 1])
    videos = torch.tensor([0, 0, 1, 2])
    pos, neg = pair_masks(actions, videos)
    assert pos.nonzero().tolist() == [[0, 2], [1, 2]]  # (0, 1) is one video: no pair
    assert neg.nonzero().tolist() == [[0, 3], [1, 3], [2, 3]]


def test_contrastive_loss_eq7_by_hand():
    # clip 0 at (0, 0); clip 1 (same action, other video) at (3, 4): D = 5 -> D^2 = 25
    # clip 2 (other action) at (0, 0.5): D to clip 0 = 0.5, to clip 1 = sqrt(9 + 12.25) > m
    emb = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 0.5]])
    loss = pair_contrastive_loss(emb, torch.tensor([0, 0, 1]), torch.tensor([0, 1, 2]), margin=1.0)
    expected = (25.0 + (1.0 - 0.5) ** 2 + 0.0) / 3
    assert math.isclose(loss.item(), expected, rel_tol=1e-5)


def test_contrastive_loss_averages_frame_by_frame():
    emb = torch.tensor([[[0.0], [0.0]], [[1.0], [3.0]]])  # 2 clips x 2 frames, same action
    loss = pair_contrastive_loss(emb, torch.tensor([0, 0]), torch.tensor([0, 1]))
    assert math.isclose(loss.item(), (1.0 + 9.0) / 2, rel_tol=1e-5)


def test_contrastive_loss_without_pairs_is_zero_and_differentiable():
    emb = torch.rand(2, 3, requires_grad=True)
    loss = pair_contrastive_loss(emb, torch.tensor([0, 0]), torch.tensor([5, 5]))
    loss.backward()
    assert loss.item() == 0.0 and emb.grad is not None


def test_info_nce_by_hand():
    # unit vectors: anchor 0, positive 1 (cos 1), negative 2 (cos 0); temperature 1
    emb = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    loss = info_nce_loss(emb, torch.tensor([0, 0, 1]), torch.tensor([0, 1, 2]), temperature=1.0)
    per_anchor = -math.log(math.e / (math.e + 1.0))  # anchors 0 and 1 alike; 2 has no positive
    assert math.isclose(loss.item(), per_anchor, rel_tol=1e-5)


def test_ntxent_by_hand():
    # 2 clips, unit vectors, temperature 1: view a of clip 0 is (1, 0), its positive (view b)
    # (1, 0), the other clip's views (0, 1) and (0, 1): -log(e / (e + 2))
    emb1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    emb2 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    loss = ntxent_loss(emb1, emb2, temperature=1.0)
    assert math.isclose(loss.item(), -math.log(math.e / (math.e + 2.0)), rel_tol=1e-5)
    # another clip of the same video is no negative: only the positive is left
    same = ntxent_loss(emb1, emb2, videos=torch.tensor([0, 0]), temperature=1.0)
    assert math.isclose(same.item(), 0.0, abs_tol=1e-6)


def test_ntxent_of_identical_embeddings_is_log_of_the_candidates():
    # all views alike (a constant image): every candidate equally likely, -log(1 / (2N - 1))
    emb = torch.ones(4, 3, 8)
    assert math.isclose(ntxent_loss(emb, emb).item(), math.log(7), rel_tol=1e-5)


def test_clip_views_are_random_crops_and_flips_shared_by_the_frames():
    torch.manual_seed(0)
    clips = torch.rand(3, 3, 2, 16, 16, requires_grad=True)
    a, b = clip_views(clips)
    assert a.shape == b.shape == clips.shape and not torch.allclose(a, b)
    (a.sum() + b.sum()).backward()
    assert clips.grad is not None and clips.grad.abs().sum() > 0
    still, _ = clip_views(clips.detach(), min_scale=1.0, flip=False)
    assert torch.allclose(still, clips.detach(), atol=1e-5)
    mirrored = torch.arange(4.0).view(1, 1, 1, 1, 4).repeat(1, 1, 2, 4, 1)
    views = [clip_views(mirrored, min_scale=1.0)[0] for _ in range(8)]
    assert any(torch.allclose(v, mirrored.flip(-1), atol=1e-5) for v in views)
    assert all(torch.allclose(v[:, :, 0], v[:, :, 1]) for v in views)  # one crop per clip


def test_what_each_reading_of_l_pri_pays_the_anonymizer_for():
    """4 clips of 4 videos, 2 actions; the anonymizer raises L_pri. Both readings pay most for a
    constant image. Eq. 9 as printed pays nothing for an output that keeps the action alone
    (its minimum) and as much as for a constant image for one that keeps every video apart: it
    rewards erasing the action, not the person. NT-Xent pays nothing for keeping the videos
    apart and log(2N/K - 1) = log 3 of the constant's log(2N - 1) = log 7 for keeping the action
    alone: it rewards erasing what tells videos apart, and what tells actions apart only as far
    as that tells the batch's videos apart."""
    actions, videos = torch.tensor([0, 0, 1, 1]), torch.arange(4)
    constant = torch.full((4, 4), 0.5)
    action_only = torch.tensor([[1.0, 0, 0, 0], [1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 1.0, 0, 0]])
    video_only = torch.eye(4)

    def eq9(emb):
        return pair_contrastive_loss(emb, actions, videos, margin=1.0).item()

    def ntxent(emb):
        return ntxent_loss(emb, emb, temperature=0.1).item()

    assert eq9(constant) == pytest.approx(4 / 6, abs=1e-5)  # 4 negative pairs at D = 0 of 6 pairs
    assert eq9(action_only) == pytest.approx(0.0, abs=1e-6)
    assert eq9(video_only) == pytest.approx(4 / 6, abs=1e-5)  # 2 positive pairs at D^2 = 2
    assert ntxent(constant) == pytest.approx(math.log(7), rel=1e-5)
    assert ntxent(action_only) == pytest.approx(math.log(3), rel=1e-3)
    assert ntxent(video_only) == pytest.approx(0.0, abs=1e-3)


def test_laplacian_loss_asks_for_the_contents_coarse_edges_in_grey():
    content = torch.zeros(1, 3, 16, 16)
    content[..., 4:12, 4:12] = 1.0  # a white square: edges at pooled scale
    flat = torch.full_like(content, content.mean())
    assert laplacian_loss(content, content, pool=2) == 0
    assert laplacian_loss(flat, content, pool=2) > 0
    # grey: a frame of the content's luminance in any colours costs nothing
    luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    tinted = content * torch.tensor([1 / 0.299, 0.0, 0.0]).view(1, 3, 1, 1) * (content * luma).sum(1, keepdim=True)
    assert torch.allclose(laplacian_loss(tinted, content, pool=2), torch.zeros(()), atol=1e-10)
    # detail finer than the pooling is not asked for: a 2-pixel checkerboard pools flat
    fine = ((torch.arange(16)[:, None] + torch.arange(16)[None, :]) % 2).float().expand(1, 3, 16, 16)
    assert laplacian_loss(torch.full_like(fine, 0.5), fine, pool=2) == 0
    assert laplacian_loss(torch.full_like(fine, 0.5), fine, pool=1) > 0
    # by hand: one pooled cell brighter by d gives Laplacian -4d there and d at its 4 neighbours
    image = torch.zeros(1, 3, 5, 5)
    image[..., 2, 2] = 1.0
    assert torch.isclose(laplacian_loss(image, torch.zeros_like(image), pool=1),
                         torch.tensor((16 + 4) / 9.0))
    # no gradient into the content
    content.requires_grad_(True)
    laplacian_loss(flat.requires_grad_(True), content, pool=2).backward()
    assert content.grad is None and flat.grad.abs().sum() > 0


def test_laplacian_loss_with_detail_removed_penalizes_texture_finer_than_the_pooling():
    fine = ((torch.arange(16)[:, None] + torch.arange(16)[None, :]) % 2).float().expand(1, 3, 16, 16)
    grey_half = torch.full_like(fine, 0.5)
    # 'free' lets the stylized frame draw a checkerboard the content does not have; 'removed' does not
    assert laplacian_loss(fine, grey_half, pool=2, detail='free') == 0
    assert laplacian_loss(fine, grey_half, pool=2, detail='removed') > 0
    # its optimum is the content smoothed at the pooling: the checkerboard's content asks for flat grey
    assert laplacian_loss(grey_half, fine, pool=2, detail='removed') == 0
    # by hand: pooled content upsampled bilinearly (a constant stays constant), against the
    # stylized frame's full-resolution Laplacian: the one-bright-pixel frame of the test above
    image = torch.zeros(1, 3, 6, 6)
    image[..., 2, 2] = 1.0
    assert torch.isclose(laplacian_loss(image, torch.zeros_like(image), pool=2, detail='removed'),
                         torch.tensor((16 + 4) / 16.0))
    # the content's own coarse edges are still asked for, and at pool 1 the two readings agree
    content = torch.zeros(1, 3, 16, 16)
    content[..., 4:12, 4:12] = 1.0
    flat = torch.full_like(content, content.mean())
    assert laplacian_loss(flat, content, pool=2, detail='removed') > 0
    assert torch.equal(laplacian_loss(flat, content, pool=1, detail='removed'),
                       laplacian_loss(flat, content, pool=1, detail='free'))
    with pytest.raises(ValueError, match=r"^fit.model.outline_detail must be one of free, removed, got 'sharp'$"):
        laplacian_loss(flat, content, detail='sharp')
