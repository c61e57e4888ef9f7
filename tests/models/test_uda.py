"""UDAModule: training steps per method, gradient reversal, evaluation log keys, resuming schedules."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from lightning.pytorch import Callback, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader

from sed_uda.corpus.layout import EMOTIONS
from sed_uda.data.keys import TEST_LOADERS
from sed_uda.models.uda import UDAModule

torch.set_num_threads(1)

CHANNELS, FRAMES = 8, 24
SMALL = {"in_channels": CHANNELS, "width": 8, "depth": 2, "embedding_dim": 16, "classifier_hidden": 16}


def _rows(n: int, labelled: bool, seed: int) -> list[dict[str, torch.Tensor]]:
    """Zero-padded utterances of random length (and a label if `labelled`)."""
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(n):
        length = int(torch.randint(4, FRAMES + 1, (1,), generator=gen))
        x = torch.randn(CHANNELS, FRAMES, generator=gen)
        x[:, length:] = 0
        row = {"x": x, "lengths": torch.tensor(length)}
        if labelled:
            row["y"] = torch.randint(len(EMOTIONS), (), generator=gen)
        rows.append(row)
    return rows


def _batch(n: int, labelled: bool, seed: int) -> dict[str, torch.Tensor]:
    return torch.utils.data.default_collate(_rows(n, labelled, seed))


def _train_loader(method: str, batches: int = 2, batch_size: int = 6) -> DataLoader:
    labelled = _rows(batches * batch_size, True, seed=1)
    unlabelled = _rows(batches * batch_size, False, seed=2)
    items = [
        {"labelled": a, "unlabelled": b} if method == "dann" else {"labelled": a}
        for a, b in zip(labelled, unlabelled, strict=True)
    ]
    return DataLoader(items, batch_size=batch_size)


def _trainer(**kwargs) -> Trainer:
    defaults = {
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
    }
    return Trainer(**(defaults | kwargs))


@pytest.mark.parametrize("method", ["dann", "source_only", "target_supervised"])
def test_one_training_step_per_method(method: str) -> None:
    torch.manual_seed(0)
    model = UDAModule(method=method, **SMALL)
    before = [p.detach().clone() for p in model.encoder.parameters()]
    trainer = _trainer(max_steps=1, limit_val_batches=0)
    trainer.fit(model, train_dataloaders=_train_loader(method))
    metrics = trainer.callback_metrics
    assert math.isfinite(metrics["en2zh/train/loss"])
    labelled_domain = "target" if method == "target_supervised" else "source"
    assert f"en2zh/train/{labelled_domain}_acc" in metrics and "en2zh/train/lr" in metrics
    assert ("en2zh/train/domain_loss" in metrics) == (method == "dann")
    assert any(not torch.equal(a, b) for a, b in zip(before, model.encoder.parameters(), strict=True))


def test_dann_trains_in_bf16_mixed_and_ignores_target_labels() -> None:
    loader = _train_loader("dann")
    for item in loader.dataset:
        item["unlabelled"]["y"] = torch.tensor(-100)  # poisoned: using target labels would crash or skew
    trainer = _trainer(max_steps=2, limit_val_batches=0, precision="bf16-mixed")
    trainer.fit(UDAModule(**SMALL), train_dataloaders=loader)
    assert math.isfinite(trainer.callback_metrics["en2zh/train/domain_loss"])
    assert 0 < trainer.callback_metrics["en2zh/train/grl_lambda"] < 1


def test_dann_without_unlabelled_data_fails_clearly() -> None:
    with pytest.raises(ValueError, match="'dann' needs unlabelled target data"):
        UDAModule(**SMALL).training_step({"labelled": _batch(4, True, 0)}, 0)


def test_gradient_reversal_flips_the_encoders_domain_gradient() -> None:
    torch.manual_seed(0)
    model = UDAModule(**SMALL).eval()  # no dropout, fixed batch-norm statistics: two passes agree
    labelled, unlabelled = _batch(5, True, 3), _batch(5, False, 4)
    coeff = 0.6

    def domain_gradients() -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        model.zero_grad()
        model.compute_losses(labelled, unlabelled)["domain_loss"].backward()
        return (
            [p.grad.clone() for p in model.encoder.parameters()],
            [p.grad.clone() for p in model.discriminator.parameters()],
        )

    model.grl.coeff = coeff
    reversed_encoder, reversed_discriminator = domain_gradients()
    model.grl = nn.Identity()
    plain_encoder, plain_discriminator = domain_gradients()

    assert any(g.abs().sum() > 0 for g in plain_encoder)
    for with_grl, without in zip(reversed_encoder, plain_encoder, strict=True):
        assert torch.allclose(with_grl, -coeff * without, rtol=1e-5, atol=1e-7)
    for with_grl, without in zip(reversed_discriminator, plain_discriminator, strict=True):
        assert torch.allclose(with_grl, without)  # the discriminator itself learns normally


def _eval_loaders(names: tuple[str, ...]) -> list[DataLoader]:
    return [
        DataLoader(_rows(8, not name.endswith("unlabelled"), seed=10 + i), batch_size=4)
        for i, name in enumerate(names)
    ]


def test_validation_and_test_log_keys_and_confusion() -> None:
    model = UDAModule(direction="zh2en", **SMALL)
    trainer = _trainer(fast_dev_run=True)
    trainer.fit(
        model,
        train_dataloaders=_train_loader("dann"),
        val_dataloaders=_eval_loaders(("source", "target", "target_unlabelled")),
    )
    val_keys = set(trainer.callback_metrics)
    val_im = float(trainer.callback_metrics["zh2en/val/target_im"])
    trainer.test(model, dataloaders=_eval_loaders(TEST_LOADERS))
    test_keys = set(trainer.callback_metrics)

    per_domain = ["acc", "f1", "uar", "loss"] + [f"f1_{emotion}" for emotion in EMOTIONS]
    for stage, keys in (("val", val_keys), ("test", test_keys)):
        for domain in ("source", "target"):
            assert {f"zh2en/{stage}/{domain}_{metric}" for metric in per_domain} <= keys
            assert model.confusion[f"{stage}/{domain}"].shape == (len(EMOTIONS), len(EMOTIONS))
            assert model.confusion[f"{stage}/{domain}"].sum() == 4  # fast_dev_run: one batch of 4
    assert {"zh2en/val/target_entropy", "zh2en/val/target_im"} <= val_keys
    assert 0 <= val_im <= math.log(len(EMOTIONS))
    assert not any("dataloader_idx" in key for key in val_keys | test_keys)
    assert 0 <= trainer.callback_metrics["zh2en/test/target_acc"] <= 1


def test_predict_step_returns_probabilities_and_embeddings() -> None:
    model = UDAModule(**SMALL).eval()
    batch = _batch(3, False, 5)
    out = model.predict_step(batch)
    assert out["probs"].shape == (3, len(EMOTIONS))
    assert torch.allclose(out["probs"].sum(-1), torch.ones(3))
    assert torch.allclose(out["embedding"], model.embed(batch["x"], batch["lengths"]))


@pytest.mark.parametrize("optimizer", ["adamw", "adam", "sgd"])
def test_optimizer_groups_scale_the_encoder_learning_rate(optimizer: str) -> None:
    model = UDAModule(optimizer=optimizer, lr=0.01, encoder_lr_scale=0.1, scheduler="none", **SMALL)
    trainer = _trainer(max_steps=1, limit_val_batches=0)
    trainer.fit(model, train_dataloaders=_train_loader("dann"))
    (opt,) = trainer.optimizers
    assert type(opt).__name__.lower() == optimizer
    encoder_group, heads_group = opt.param_groups
    assert encoder_group["lr"] == pytest.approx(0.001) and heads_group["lr"] == pytest.approx(0.01)
    assert len(encoder_group["params"]) + len(heads_group["params"]) == len(list(model.parameters()))


class _ScheduleRecorder(Callback):
    """GRL coefficient and learning rates used at each global step."""

    def __init__(self) -> None:
        self.by_step: dict[int, tuple[float, ...]] = {}

    def on_train_batch_start(self, trainer: Trainer, pl_module: UDAModule, batch, batch_idx: int) -> None:
        self._lrs = tuple(group["lr"] for group in trainer.optimizers[0].param_groups)

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: UDAModule, outputs, batch, batch_idx: int
    ) -> None:
        self.by_step[trainer.global_step - 1] = (pl_module.grl.coeff, *self._lrs)


@pytest.mark.parametrize(("scheduler", "warmup_steps"), [("ganin", 0), ("cosine", 2)])
def test_resuming_continues_grl_lambda_and_learning_rate(
    tmp_path: Path, scheduler: str, warmup_steps: int
) -> None:
    hparams = SMALL | {"scheduler": scheduler, "warmup_steps": warmup_steps, "encoder_lr_scale": 0.5}
    uninterrupted = _ScheduleRecorder()
    checkpoints = ModelCheckpoint(dirpath=tmp_path, filename="{step}", every_n_train_steps=3, save_top_k=-1)
    _trainer(
        max_steps=8, limit_val_batches=0, callbacks=[uninterrupted, checkpoints], enable_checkpointing=True
    ).fit(UDAModule(**hparams), train_dataloaders=_train_loader("dann", batches=4, batch_size=2))
    resumed = _ScheduleRecorder()
    _trainer(max_steps=8, limit_val_batches=0, callbacks=[resumed]).fit(
        UDAModule(**hparams),
        train_dataloaders=_train_loader("dann", batches=4, batch_size=2),
        ckpt_path=tmp_path / "step=3.ckpt",
    )
    assert sorted(resumed.by_step) == [3, 4, 5, 6, 7]
    for step, values in resumed.by_step.items():
        assert values == pytest.approx(uninterrupted.by_step[step], rel=1e-12)
    assert uninterrupted.by_step[3][0] > uninterrupted.by_step[0][0]  # the schedule had moved on
