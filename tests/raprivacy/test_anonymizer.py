"""RAPrivacyAnonymizer: the anonymizer contract, its style bank, encoder source, checkpoints."""
import cv2
import numpy as np
import pytest
import torch

from benchmark.anonymizer import build_anonymizer
from benchmark.registry import ANONYMIZERS
from raprivacy.anonymizer import RAPrivacyAnonymizer, encoder_config
from raprivacy.styles import build_style_images
from tests.raprivacy.helpers import STYLES, tiny_anonymizer_cfg


def test_registered_with_the_table_attributes():
    cls = ANONYMIZERS.get('RAPrivacyAnonymizer')
    assert cls is RAPrivacyAnonymizer
    assert (cls.table_name, cls.privacy_learning, cls.readable, cls.learns, cls.needs) == \
        ('RAPrivacy', True, True, True, ())


def test_forward_keeps_shape_range_and_gives_gradients_to_the_learned_parts():
    anon = build_anonymizer(tiny_anonymizer_cfg())
    clips = torch.rand(2, 3, 3, 32, 32)
    out = anon(clips)
    assert out.shape == clips.shape and out.dtype == clips.dtype
    assert out.min() >= 0 and out.max() <= 1
    anon.transfer(clips).images.square().mean().backward()
    assert anon.decoder.stage1[1][0].weight.grad is not None
    assert all(p.grad is None for p in anon.encoder.parameters())  # frozen


def test_eval_uses_one_fixed_style_training_draws_per_clip():
    anon = build_anonymizer(dict(tiny_anonymizer_cfg(), eval_style=2)).eval()
    idx = anon.style_index(5, torch.device('cpu'))
    assert idx.tolist() == [2] * 5
    clips = torch.rand(2, 3, 2, 32, 32)
    assert torch.equal(anon(clips), anon(clips))  # deterministic
    anon.train()
    torch.manual_seed(0)
    drawn = torch.cat([anon.style_index(8, torch.device('cpu')) for _ in range(4)])
    assert len(drawn.unique()) == len(STYLES)


def test_random_encoder_is_tagged_and_style_bank_is_saved():
    anon = build_anonymizer(tiny_anonymizer_cfg())
    assert anon.encoder_source.startswith('random (explicit opt-in')
    state = anon.state_dict()
    assert state['style_bank'].shape == (len(STYLES), 3, 24, 24)
    assert state['_extra_state']['encoder_source'] == anon.encoder_source


def test_rebuilt_from_checkpoint_config_needs_no_weights_or_styles_and_matches():
    anon = build_anonymizer(tiny_anonymizer_cfg()).eval()
    cfg = RAPrivacyAnonymizer.checkpoint_config(dict(tiny_anonymizer_cfg(), style_set=dict(type='FolderStyles', root='/absent')))
    blank = build_anonymizer(cfg).eval()
    with pytest.raises(RuntimeError, match='load its state dict'):
        blank(torch.rand(1, 3, 2, 32, 32))
    blank.load_state_dict(anon.state_dict())
    assert blank.encoder_source == anon.encoder_source
    clips = torch.rand(1, 3, 2, 32, 32)
    assert torch.allclose(blank(clips), anon(clips))


def test_paper_default_weights_path_missing_is_one_line_naming_the_option(tmp_path):
    cfg = dict(tiny_anonymizer_cfg(), encoder=dict(weights=str(tmp_path / 'vgg_normalised.pth'), width=1.0))
    with pytest.raises(FileNotFoundError, match='anonymizer.encoder.weights') as err:
        build_anonymizer(cfg)
    assert '\n' not in str(err.value)


def test_folder_styles_read_8_and_16_bit_images(tmp_path):
    cv2.imwrite(str(tmp_path / 'a.png'), np.full((40, 60, 3), 200, np.uint8))
    depth = np.zeros((30, 30), np.uint16)
    depth[:, 15:] = 4000  # Kinect millimetres
    cv2.imwrite(str(tmp_path / 'b.png'), depth)
    images = build_style_images(dict(type='FolderStyles', root=str(tmp_path), size=16))
    assert images.shape == (2, 16, 16, 3) and images.dtype == np.uint8
    assert images[1].min() == 0 and images[1].max() == 255  # stretched to 8 bits
    one = build_style_images(dict(type='FolderStyles', root=str(tmp_path), size=16, num=1))
    assert one.shape == (1, 16, 16, 3)


def test_folder_styles_errors_are_one_line(tmp_path):
    with pytest.raises(FileNotFoundError, match='anonymizer.style_set.root'):
        build_style_images(dict(type='FolderStyles', root=str(tmp_path / 'absent')))
    with pytest.raises(FileNotFoundError, match='holds no'):
        build_style_images(dict(type='FolderStyles', root=str(tmp_path)))
    with pytest.raises(KeyError, match='did you mean'):
        build_style_images(dict(type='FolderStyle', root=str(tmp_path)))


def test_scale_transfers_at_a_multiple_of_the_frame_size_and_returns_frame_size():
    anon = build_anonymizer(dict(tiny_anonymizer_cfg(), scale=2)).eval()
    clips = torch.rand(2, 3, 2, 20, 24)
    assert anon.transfer(clips).images.shape == (4, 3, 40, 48)
    out = anon(clips)
    assert out.shape == clips.shape and out.min() >= 0 and out.max() <= 1
    with pytest.raises(ValueError, match='anonymizer.scale'):
        build_anonymizer(dict(tiny_anonymizer_cfg(), scale=1.5))


def test_style_is_encoded_at_the_transfer_size_unless_asked_otherwise():
    clips = torch.rand(1, 3, 2, 32, 32)
    for style_size, side in (('transfer', 64), ('frame', 32)):
        anon = build_anonymizer(dict(tiny_anonymizer_cfg(), scale=2, style_size=style_size)).eval()
        out = anon.transfer(clips)
        assert out.content[0].shape[-2:] == (64, 64) and out.style[0].shape[-2:] == (side, side)
    with pytest.raises(ValueError, match='anonymizer.style_size'):
        build_anonymizer(dict(tiny_anonymizer_cfg(), style_size='half'))


def test_encoder_type_inferred_for_configs_without_one_and_keys_checked():
    assert encoder_config(dict(weights='vp_synth', width=0.5))['type'] == 'self_trained'
    assert encoder_config(dict(weights='~/vgg_normalised.pth'))['type'] == 'vgg19'
    assert encoder_config(None)['type'] == 'self_trained'
    with pytest.raises(ValueError, match='mobilenet_v2 takes weights, not width'):
        encoder_config(dict(type='mobilenet_v2', width=1.0))
    with pytest.raises(ValueError, match='must be one of vgg19, mobilenet_v2, self_trained'):
        encoder_config(dict(type='resnet'))
    with pytest.raises(ValueError, match='vgg19 needs weights'):
        build_anonymizer(dict(tiny_anonymizer_cfg(), encoder=dict(type='vgg19')))


def test_mobilenet_anonymizer_rebuilt_from_its_checkpoint_matches():
    cfg = dict(tiny_anonymizer_cfg(), encoder=dict(type='mobilenet_v2', weights='random'))
    anon = build_anonymizer(cfg).eval()
    blank = build_anonymizer(RAPrivacyAnonymizer.checkpoint_config(cfg)).eval()
    blank.load_state_dict(anon.state_dict())
    clips = torch.rand(1, 3, 2, 32, 32)
    assert torch.allclose(blank(clips), anon(clips)) and blank.encoder_source == anon.encoder_source
