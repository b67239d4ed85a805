"""Lab 11's project (micrograd_plus.resnet) on the CPU: every module, a tiny CIFAR-10 subset, checkpoint + resume.

The full 100-epoch run needs a GPU (`make resnet`); here the narrow network (width 8) trains on a few hundred
real CIFAR-10 images for one or two epochs so that every line of the project runs.
"""

import json
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from micrograd_plus.resnet import compare_schedulers, train
from micrograd_plus.resnet.cifar10_loader import DeviceLoader, random_crop_flip
from micrograd_plus.resnet.metrics import RunningMean, accuracy, per_class_accuracy
from micrograd_plus.resnet.models import BasicBlock, ResNet18, count_parameters
from micrograd_plus.resnet.optimizers import SGD, Adam
from micrograd_plus.resnet.schedulers import WarmupLR, make_scheduler
from micrograd_plus.resnet.trainer import Trainer, autocast_dtype, read_scalars

TINY = [
    "--width",
    "4",
    "--batch-size",
    "32",
    "--train-subset",
    "96",
    "--test-subset",
    "64",
    "--quiet",
    "--device",
    "cpu",
    "--seed",
    "1",
]


def test_resnet18_has_the_documented_architecture():
    model = ResNet18()
    assert count_parameters(model) == 11_173_962
    assert sum(isinstance(m, BasicBlock) for m in model.modules()) == 8
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert convs[0].kernel_size == (3, 3) and convs[0].stride == (1, 1) and convs[0].out_channels == 64
    assert sorted({c.out_channels for c in convs}) == [64, 128, 256, 512]
    assert sum(c.stride == (2, 2) for c in convs) == 6  # a 3x3 and a 1x1 shortcut in stages 2-4
    assert model.fc.in_features == 512 and model.fc.out_features == 10
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 10)


@pytest.mark.parametrize(
    "bad", [{"in_channels": 0, "out_channels": 4}, {"in_channels": 4, "out_channels": 4, "stride": 3}]
)
def test_basic_block_rejects_bad_arguments(bad):
    with pytest.raises(ValueError):
        BasicBlock(**bad)


def test_resnet_rejects_bad_width():
    with pytest.raises(ValueError, match="width"):
        ResNet18(width=0)


@pytest.mark.parametrize(
    "ours, theirs, kwargs",
    [
        (Adam, torch.optim.Adam, {"lr": 1e-2, "weight_decay": 1e-3}),
        (SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4}),
        (SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.5, "dampening": 0.2}),
        (SGD, torch.optim.SGD, {"lr": 0.05}),
    ],
)
def test_optimizers_equal_torch_optim(ours, theirs, kwargs):
    torch.manual_seed(0)
    a, b = nn.Linear(6, 4), nn.Linear(6, 4)
    b.load_state_dict(a.state_dict())
    opt_a, opt_b = ours(a.parameters(), **kwargs), theirs(b.parameters(), **kwargs)
    x, y = torch.randn(10, 6), torch.randn(10, 4)
    for _ in range(25):
        for model, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            F.mse_loss(model(x), y).backward()
            opt.step(lambda: None)
    for p, q in zip(a.parameters(), b.parameters()):
        assert (p - q).abs().max() < 1e-6


@pytest.mark.parametrize(
    "cls, kwargs",
    [
        (Adam, {"lr": 0}),
        (Adam, {"betas": (1.0, 0.9)}),
        (Adam, {"eps": 0}),
        (SGD, {"lr": -1}),
        (SGD, {"momentum": -0.1}),
        (SGD, {"nesterov": True}),
    ],
)
def test_optimizers_reject_bad_arguments(cls, kwargs):
    with pytest.raises(ValueError):
        cls([nn.Parameter(torch.zeros(1))], **kwargs)


def test_schedules_drive_a_torch_optimizer():
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    sched = make_scheduler("step", opt, total_steps=9)
    lrs = []
    for _ in range(9):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([1.0] * 3 + [0.2] * 3 + [0.04] * 3)
    opt = Adam([p], lr=1.0)
    make_scheduler("cosine", opt, total_steps=4)
    assert opt.param_groups[0]["lr"] == 1.0
    sched = WarmupLR(opt, 2)
    sched.step()
    sched.step()
    assert opt.param_groups[0]["lr"] == 1.0
    with pytest.raises(ValueError, match="unknown schedule"):
        make_scheduler("linear", opt, 10)
    with pytest.raises(ValueError, match="total_steps"):
        make_scheduler("cosine", opt, 0)


def test_augmentation_statistics_and_errors():
    gen = torch.Generator().manual_seed(3)
    kept = random_crop_flip(torch.ones(3000, 2, 32, 32), 4, gen).mean().item()
    assert kept == pytest.approx((32 - 20 / 9) ** 2 / 32**2, abs=0.005)
    with pytest.raises(ValueError, match="N, C, H, W"):
        random_crop_flip(torch.ones(3, 32, 32))
    with pytest.raises(ValueError, match="padding"):
        random_crop_flip(torch.ones(1, 3, 8, 8), padding=-1)


def test_device_loader():
    x = torch.randint(0, 256, (10, 3, 8, 8), dtype=torch.uint8)
    y = torch.arange(10)
    test = DeviceLoader(x, y, 4, train=False, channels_last=False)
    batches = list(test)
    assert len(test) == 3 and [b.shape[0] for b, _ in batches] == [4, 4, 2]
    assert torch.equal(torch.cat([t for _, t in batches]), y)
    mean = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
    std = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)
    assert torch.allclose(batches[0][0], (x[:4].float() / 255 - mean) / std)
    train_loader = DeviceLoader(x.float() / 255, y, 4, train=True)
    assert len(train_loader) == 2 and sorted(torch.cat([t for _, t in train_loader]).tolist()) != list(range(8))
    with pytest.raises(ValueError, match="labels"):
        DeviceLoader(x, y[:5], 4, train=True)
    with pytest.raises(ValueError, match="batch_size"):
        DeviceLoader(x, y, 0, train=True)


def test_metrics():
    assert accuracy(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0])) == 0.5
    with pytest.raises(ValueError):
        accuracy(torch.zeros(2, 2), torch.zeros(3, dtype=torch.long))
    pc = per_class_accuracy(torch.tensor([1, 1, 2]), torch.tensor([1, 0, 2]), 4)
    assert pc[:3].tolist() == [0.0, 1.0, 1.0] and math.isnan(pc[3])
    with pytest.raises(ValueError):
        RunningMean().compute()


def test_amp_is_off_on_cpu_and_cannot_be_forced():
    assert autocast_dtype("cpu") is None
    with pytest.raises(ValueError, match="bf16"):
        Trainer(nn.Linear(2, 2), None, None, [], [], None, amp=True)


def test_train_checkpoint_resume_and_results(tmp_path, shared_datasets, monkeypatch):
    """One epoch, then a fresh process-like restart that resumes to two: equal to two epochs straight."""
    monkeypatch.setenv("MICROGRAD_PLUS_DATA", str(tmp_path / "data"))
    straight = train.main([*TINY, "--epochs", "2", "--results", str(tmp_path / "straight")])
    first = train.main([*TINY, "--epochs", "2", "--stop-after", "1", "--results", str(tmp_path / "resumed")])
    assert first["epochs"] == 1 and first["of_epochs"] == 2
    resumed = train.main([*TINY, "--epochs", "2", "--results", str(tmp_path / "resumed")])
    assert resumed["resumed_after_epoch"] == 1 and straight["resumed_after_epoch"] == 0
    assert resumed["test_accuracy"] == straight["test_accuracy"]
    a = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    saved = json.loads((tmp_path / "resumed" / "results.json").read_text())
    assert (
        saved["epochs"] == 2
        and saved["device"].startswith("CPU")
        and saved["parameters"] == count_parameters(ResNet18(width=4))
    )
    assert len(saved["per_class_accuracy"]) == 10 and (tmp_path / "resumed" / "curves.png").stat().st_size > 0
    scalars = read_scalars(tmp_path / "resumed")
    assert scalars["test_accuracy"][0] == [1, 2] and "per_class_accuracy/0" in scalars
    # --no-resume starts afresh; SGD and the progress bar run too
    fresh = train.main(
        [
            *TINY[:-5],
            "--seed",
            "1",
            "--epochs",
            "1",
            "--optimizer",
            "sgd",
            "--schedule",
            "step",
            "--no-resume",
            "--no-amp",
            "--results",
            str(tmp_path / "resumed"),
        ]
    )
    assert fresh["resumed_after_epoch"] == 0 and fresh["epochs"] == 1


def test_compare_schedulers_same_budget(tmp_path, shared_datasets, monkeypatch):
    monkeypatch.setenv("MICROGRAD_PLUS_DATA", str(tmp_path / "data"))
    runs = compare_schedulers.main(["--results", str(tmp_path), *TINY, "--epochs", "2", "--warmup-epochs", "1"])
    assert sorted(runs) == ["cosine", "step", "warmup_cosine"]
    assert {r["epochs"] for r in runs.values()} == {2}
    table = (tmp_path / "table.md").read_text()
    assert all(f"| {name} | 2 |" in table for name in runs) and (tmp_path / "schedulers.png").is_file()
    lr = {name: json.loads((tmp_path / name / "history.json").read_text())[1]["lr"] for name in runs}
    assert lr["step"] != lr["cosine"]


def test_command_line_errors():
    with pytest.raises(SystemExit):
        train.parse_args(["--epochs", "0"])
    assert train.parse_args([]).epochs == 100
