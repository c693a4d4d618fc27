"""The losses of Sec. 3.4 on inputs whose values can be worked out by hand."""
import math

import torch

from raprivacy.losses import (global_style_loss, info_nce_loss, local_feature_loss, pair_contrastive_loss,
                              pair_masks)


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
