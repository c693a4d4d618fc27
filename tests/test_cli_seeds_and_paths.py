"""`bench` arguments refused before anything is created: seed lists, anonymizing in place."""
import os

import pytest

from benchmark.cli import MAX_SEEDS, build_parser, main


@pytest.fixture(autouse=True)
def _capture(capsys):
    global _CAPSYS
    _CAPSYS = capsys


def _refused(argv) -> str:
    """The one line a refused command prints (argument errors exit, known errors return 2)."""
    try:
        code = main(argv)
        message = _CAPSYS.readouterr().err.strip()
    except SystemExit as stop:
        code, message = 2, str(stop.code)
    assert code != 0 and message.startswith('bench: ') and '\n' not in message, message
    return message


@pytest.mark.parametrize('seeds, expected', [
    (','.join(str(s) for s in range(20000)), '--many-seeds'),
    ('0,-1', 'seed -1 is out of range'),
    ('0,4294967296', 'seed 4294967296 is out of range'),
    ('1,2,1', 'seed 1 is given twice'),
    ('0,x', 'must be integers')])
def test_bad_seed_lists_are_one_line_and_create_nothing(tmp_path, seeds, expected):
    work = tmp_path / 'work'
    for command in ('run', 'sweep'):
        argv = [command, '--method', 'raw', '--profile', 'smoke', '--seeds', seeds, '--work-dir', str(work)]
        if command == 'sweep':
            argv += ['--grid', 'anonymizer.type=Identity']
        assert expected in _refused(argv)
        assert not work.exists()


def test_a_negative_single_seed_is_refused(tmp_path):
    assert 'out of range' in _refused(['run', '--method', 'raw', '--seed', '-3',
                                       '--work-dir', str(tmp_path / 'work')])
    assert not (tmp_path / 'work').exists()


def test_many_seeds_pass_with_the_flag():
    from benchmark.cli import _seeds
    seeds = ','.join(str(s) for s in range(MAX_SEEDS + 1))
    args = build_parser().parse_args(['run', '--method', 'raw', '--seeds', seeds, '--many-seeds'])
    assert _seeds(args) == list(range(MAX_SEEDS + 1))
    args = build_parser().parse_args(['run', '--method', 'raw', '--seeds', '0,1,2'])
    assert _seeds(args) == [0, 1, 2]


def test_anonymize_refuses_to_overwrite_its_input(tmp_path):
    video = tmp_path / 'patient.mp4'
    video.write_bytes(b'the only copy')
    os.link(video, tmp_path / 'hardlink.mp4')
    (tmp_path / 'symlink.mp4').symlink_to(video)
    (tmp_path / 'frames').mkdir()
    for output in (video, tmp_path / 'symlink.mp4', tmp_path / 'hardlink.mp4',
                   tmp_path / '.' / 'patient.mp4'):
        message = _refused(['anonymize', '--checkpoint', str(tmp_path / 'absent.pth'), str(video),
                            str(output), '--work-dir', str(tmp_path / 'work')])
        assert 'is the input' in message and str(output) in message
    assert 'is the input' in _refused(['anonymize', '--checkpoint', str(tmp_path / 'absent.pth'),
                                       str(tmp_path / 'frames'), str(tmp_path / 'frames')])
    assert video.read_bytes() == b'the only copy'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['frames', 'hardlink.mp4', 'patient.mp4',
                                                          'symlink.mp4']
