"""The fit's console: MMEngine's scheduler-order warning is dropped because its claim does not
hold for MMEngine's schedulers; every other warning still shows."""
import math
import warnings

import torch
from mmengine.optim.scheduler import CosineAnnealingLR

from benchmark.runner import quiet_waiting_schedulers


def waiting_part(begin=2, end=6):
    """An optimizer that waits ``begin`` iterations (as the anonymizer while the branches warm
    up) under a cosine schedule that starts then."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    return optimizer, CosineAnnealingLR(optimizer, T_max=end - begin, begin=begin, end=end, eta_min=0.0)


def test_the_scheduler_order_warning_is_dropped_and_others_pass():
    optimizer, scheduler = waiting_part()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        with quiet_waiting_schedulers():
            scheduler.step()
            warnings.warn('something else', UserWarning)
    assert [str(w.message) for w in caught] == ['something else']
    optimizer, scheduler = waiting_part()
    with warnings.catch_warnings(record=True) as caught:  # outside the fit it still warns
        warnings.simplefilter('always')
        scheduler.step()
    assert any('before `optimizer.step()`' in str(w.message) for w in caught)


def test_a_waiting_optimizer_gets_every_value_of_its_schedule():
    """What the dropped warning would claim (a value skipped) does not happen: an optimizer that
    first steps at iteration ``begin`` sees the cosine from its start."""
    optimizer, scheduler = waiting_part(begin=2, end=6)
    seen = []
    with quiet_waiting_schedulers():
        for iteration in range(6):
            if iteration >= 2:
                seen.append(optimizer.param_groups[0]['lr'])
                optimizer.step()
            scheduler.step()
    expected = [0.5 * (1 + math.cos(math.pi * k / 4)) for k in range(4)]
    assert [round(v, 9) for v in seen] == [round(v, 9) for v in expected]
