"""micrograd_plus.schedulers (lab 05): learning-rate sequences equal torch.optim.lr_scheduler's."""

import numpy as np
import pytest

from micrograd_plus.optimizers import SGD, Adam
from micrograd_plus.schedulers import CosineAnnealingLR, LinearWarmupLR, LRScheduler, StepLR
from micrograd_plus.tensor import Tensor

torch = pytest.importorskip("torch")
L = torch.optim.lr_scheduler
pytestmark = pytest.mark.torch


def ours_opt(lrs=(0.1,)):
    return SGD([{"params": [Tensor([0.0])], "lr": lr} for lr in lrs], lr=lrs[0])


def torch_opt(lrs=(0.1,)):
    return torch.optim.SGD([{"params": [torch.zeros(1, requires_grad=True)], "lr": lr} for lr in lrs], lr=lrs[0])


def sequence(scheduler, epochs):
    """get_last_lr() and the groups' lr before each epoch's optimizer.step(), then scheduler.step()."""
    out = []
    for _ in range(epochs):
        lrs = scheduler.get_last_lr()
        assert lrs == [g["lr"] for g in scheduler.optimizer.param_groups]
        out.append(lrs)
        scheduler.optimizer.step()
        scheduler.step()
    return np.array(out)


LRS = (0.1, 0.02)
CASES = {
    "step": (lambda o: StepLR(o, 3), lambda o: L.StepLR(o, 3), 20),
    "step-gamma": (lambda o: StepLR(o, step_size=4, gamma=0.5), lambda o: L.StepLR(o, step_size=4, gamma=0.5), 20),
    "step-1": (lambda o: StepLR(o, 1, gamma=0.9), lambda o: L.StepLR(o, 1, gamma=0.9), 30),
    "cosine": (lambda o: CosineAnnealingLR(o, 10), lambda o: L.CosineAnnealingLR(o, 10), 35),
    "cosine-eta-min": (
        lambda o: CosineAnnealingLR(o, T_max=7, eta_min=0.005),
        lambda o: L.CosineAnnealingLR(o, T_max=7, eta_min=0.005),
        30,
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_matches_torch(case):
    ours, theirs, epochs = CASES[case]
    np.testing.assert_allclose(
        sequence(ours(ours_opt(LRS)), epochs), sequence(theirs(torch_opt(LRS)), epochs), rtol=1e-10, atol=1e-12
    )


WARMUPS = [
    (4, 0.25, None, None),
    (5, 0.1, lambda o: StepLR(o, 3, 0.5), lambda o: L.StepLR(o, 3, 0.5)),
    (3, 0.5, lambda o: CosineAnnealingLR(o, 10, 0.001), lambda o: L.CosineAnnealingLR(o, 10, 0.001)),
    (1, 0.3, lambda o: CosineAnnealingLR(o, 5), lambda o: L.CosineAnnealingLR(o, 5)),
]


@pytest.mark.parametrize("warmup,start,after,after_torch", WARMUPS)
def test_linear_warmup_matches_torch_linearlr_sequentiallr(warmup, start, after, after_torch):
    o = ours_opt(LRS)
    ours = LinearWarmupLR(o, warmup, start_factor=start, after=after(o) if after else None)
    t = torch_opt(LRS)
    linear = L.LinearLR(t, start_factor=start, end_factor=1.0, total_iters=warmup)
    theirs = L.SequentialLR(t, [linear, after_torch(t)], milestones=[warmup]) if after_torch else linear
    np.testing.assert_allclose(sequence(ours, 25), sequence(theirs, 25), rtol=1e-10, atol=1e-12)
    if after is not None:  # the wrapped scheduler's own view stays consistent
        assert ours.after.last_epoch == ours.last_epoch - warmup
        assert ours.after.get_last_lr() == ours.get_last_lr()


def test_warmup_edge_cases():
    assert sequence(LinearWarmupLR(ours_opt(), 0, after=None), 3).ravel().tolist() == [0.1, 0.1, 0.1]
    assert sequence(LinearWarmupLR(ours_opt(), 2, start_factor=0.0), 3).ravel().tolist() == [0.0, 0.05, 0.1]


def test_scheduler_drives_the_optimizer():
    w = Tensor([0.0], requires_grad=True)
    opt = SGD([w], lr=1.0)
    sched = StepLR(opt, 1, gamma=0.5)
    for _ in range(3):
        w.grad = np.ones(1, dtype=np.float32)
        opt.step()
        sched.step()
    assert w.data[0] == pytest.approx(-1.75)  # 1 + 0.5 + 0.25


def test_base_lrs_initial_lr_and_resume():
    o = ours_opt(LRS)
    s = StepLR(o, 2, 0.5)
    assert s.base_lrs == list(LRS) and [g["initial_lr"] for g in o.param_groups] == list(LRS)
    for _ in range(5):
        s.step()
    resumed = StepLR(o, 2, 0.5, last_epoch=4)  # continues where a checkpoint left off
    assert resumed.last_epoch == 5 and resumed.get_last_lr() == s.get_last_lr()
    with pytest.raises(KeyError, match="initial_lr"):
        StepLR(ours_opt(), 2, last_epoch=3)


def test_state_dict_round_trip():
    o = ours_opt()
    s = CosineAnnealingLR(o, 10)
    for _ in range(4):
        s.step()
    sd = s.state_dict()
    assert "optimizer" not in sd and sd["last_epoch"] == 4
    o2 = ours_opt()
    s2 = CosineAnnealingLR(o2, 10)
    s2.load_state_dict(sd)
    s.step()
    s2.step()
    assert s2.get_last_lr() == s.get_last_lr() and o2.param_groups[0]["lr"] == o.param_groups[0]["lr"]


def test_warmup_state_dict_round_trip():
    def make():
        o = ours_opt()
        return LinearWarmupLR(o, 3, 0.2, after=StepLR(o, 2, 0.5))

    s = make()
    for _ in range(6):
        s.step()
    sd = s.state_dict()
    assert isinstance(sd["after"], dict) and sd["after"]["last_epoch"] == 3
    s2 = make()
    s2.optimizer.load_state_dict(s.optimizer.state_dict())  # a resume restores both, as in PyTorch
    s2.load_state_dict(sd)
    assert s2.after.last_epoch == 3
    assert sequence(s2, 5).tolist() == sequence(s, 5).tolist()


def test_works_with_adam_and_repr():
    opt = Adam([Tensor([0.0])], lr=1e-3)
    s = CosineAnnealingLR(opt, 4)
    s.step()
    assert opt.param_groups[0]["lr"] < 1e-3 and "CosineAnnealingLR(last_epoch=1" in repr(s)


@pytest.mark.parametrize(
    "make,exc,match",
    [
        (lambda o: StepLR(o, 0), ValueError, "step_size must be an int >= 1"),
        (lambda o: StepLR(o, 2.5), ValueError, "step_size"),
        (lambda o: StepLR(o, 2, gamma=-0.1), ValueError, "gamma"),
        (lambda o: CosineAnnealingLR(o, 0), ValueError, "T_max"),
        (lambda o: CosineAnnealingLR(o, 5, eta_min=-1), ValueError, "eta_min"),
        (lambda o: LinearWarmupLR(o, -1), ValueError, "warmup_steps"),
        (lambda o: LinearWarmupLR(o, 3, start_factor=1.5), ValueError, "start_factor"),
        (lambda o: LinearWarmupLR(o, 3, after="cosine"), TypeError, "after must be a scheduler"),
        (lambda o: LinearWarmupLR(o, 3, after=StepLR(ours_opt(), 2)), ValueError, "same optimizer"),
        (lambda o: StepLR("sgd", 2), TypeError, "param_groups"),
        (lambda o: StepLR(o, 2, last_epoch=-2), ValueError, "last_epoch"),
    ],
)
def test_argument_validation(make, exc, match):
    with pytest.raises(exc, match=match):
        make(ours_opt())


def test_base_class_requires_get_lr():
    with pytest.raises(NotImplementedError, match="get_lr"):
        LRScheduler(ours_opt())
