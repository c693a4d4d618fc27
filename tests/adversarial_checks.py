"""Checks of an adversarial model's updates, shared by the trainer's and the methods' tests."""
import torch


def record_steps(model, optim):
    """Each optimizer step as (part, gradients it saw, parameters it changed)."""
    steps = []
    for name, wrapper in optim.items():
        step = wrapper.optimizer.step

        def recorded(*args, _name=name, _step=step, **kwargs):
            before = {n: p.detach().clone() for n, p in model.named_parameters()}
            grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
            out = _step(*args, **kwargs)
            changed = {n for n, p in model.named_parameters() if not torch.equal(before[n], p)}
            steps.append((_name, grads, changed))
            return out
        wrapper.optimizer.step = recorded
    return steps


def grads_of(loss, module):
    return dict(zip((n for n, _ in module.named_parameters()),
                    torch.autograd.grad(loss, list(module.parameters()))))


def assert_same(got: dict, want: dict, prefix: str):
    assert want and any(g.abs().sum() > 0 for g in want.values())
    assert set(got) == {prefix + n for n in want}, 'gradients reached other parts'
    for n, g in want.items():
        assert torch.allclose(got[prefix + n], g, rtol=1e-5, atol=1e-7), n
