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
    """``got`` holds exactly ``want``'s parts, each equal to it up to float32 rounding.

    Two routes to one gradient (the training step, and autograd on the replayed loss) sum in
    different orders, and how far that moves an element depends on the CPU's kernels: on a Xeon
    with AMX the NT-Xent privacy term (temperature 0.1) moved AdaAttN's gradients by up to 4e-5
    at a scale of 1.8, and a key bias whose gradient is zero in exact arithmetic (softmax does
    not see it) by 5e-6. So the tolerance is relative to the largest gradient of the part (1e-4
    of it), as well as to each element's own: a wrong sign or a missing term moves elements by
    their own size, thousands of times more."""
    assert want and any(g.abs().sum() > 0 for g in want.values())
    assert set(got) == {prefix + n for n in want}, 'gradients reached other parts'
    scale = max(float(g.abs().max()) for g in want.values())
    for n, g in want.items():
        assert torch.allclose(got[prefix + n], g, rtol=1e-4, atol=1e-4 * scale + 1e-7), n
