"""UDAModule: training steps with and without adaptation, gradient reversal in DANN, evaluation log
keys, resuming schedules, and target labels that never reach a UDA run."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import torch
from lightning.pytorch import Callback, Trainer, seed_everything
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader

from sed_uda.adaptation.dann import DANN, grl_lambda
from sed_uda.corpus.layout import EMOTIONS
from sed_uda.data.datamodule import CrossLingualDataModule
from sed_uda.data.keys import TEST_LOADERS
from sed_uda.models.components.cnn1d import CNN1dEncoder
from sed_uda.models.uda import UDAModule

torch.set_num_threads(1)

CHANNELS, FRAMES = 8, 24
MODES = {  # name -> (adapts with DANN, labelled domain)
    "no_adaptation": (False, "source"),
    "dann": (True, "source"),
    "target_supervised": (False, "target"),
}


def small_model(adapt: bool = True, channels: int = CHANNELS, **kwargs: object) -> UDAModule:
    """A tiny 1D-CNN UDAModule, with DANN unless `adapt` is False."""
    encoder = CNN1dEncoder(channels, width=8, depth=2, embedding_dim=16)
    adaptations = [DANN(hidden=16)] if adapt else []
    return UDAModule(encoder=encoder, adaptations=adaptations, classifier_hidden=16, **kwargs)


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


def _train_loader(unlabelled: bool, batches: int = 2, batch_size: int = 6) -> DataLoader:
    labelled = _rows(batches * batch_size, True, seed=1)
    targets = _rows(batches * batch_size, False, seed=2)
    items = [
        {"labelled": a, "unlabelled": b} if unlabelled else {"labelled": a}
        for a, b in zip(labelled, targets, strict=True)
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


@pytest.mark.parametrize("mode", list(MODES))
def test_one_training_step(mode: str) -> None:
    torch.manual_seed(0)
    adapt, labelled_domain = MODES[mode]
    model = small_model(adapt, labelled_domain=labelled_domain)
    assert model.needs_unlabelled == adapt
    before = [p.detach().clone() for p in model.encoder.parameters()]
    trainer = _trainer(max_steps=1, limit_val_batches=0, log_every_n_steps=1)
    trainer.fit(model, train_dataloaders=_train_loader(unlabelled=adapt))
    metrics = trainer.callback_metrics
    assert math.isfinite(metrics["en2zh/train/loss"])
    assert f"en2zh/train/{labelled_domain}_acc" in metrics and "en2zh/train/lr" in metrics
    dann_keys = {"en2zh/train/dann_loss", "en2zh/train/dann_domain_acc", "en2zh/train/dann_lambda"}
    assert (dann_keys <= set(metrics)) == adapt
    assert any(not torch.equal(a, b) for a, b in zip(before, model.encoder.parameters(), strict=True))


def test_steps_the_loggers_skip_log_only_the_loss_for_the_progress_bar() -> None:
    torch.manual_seed(0)
    trainer = _trainer(max_steps=2, limit_val_batches=0, log_every_n_steps=2)
    trainer.fit(small_model(), train_dataloaders=_train_loader(unlabelled=True))
    assert {"en2zh/train/dann_loss", "en2zh/train/lr"} <= set(trainer.callback_metrics)  # step 2 logs
    trainer = _trainer(max_steps=1, limit_val_batches=0, log_every_n_steps=2)
    trainer.fit(small_model(), train_dataloaders=_train_loader(unlabelled=True))
    assert set(trainer.callback_metrics) == {"en2zh/train/loss"}


def test_training_loss_is_class_loss_plus_weighted_dann_loss() -> None:
    torch.manual_seed(0)
    model = small_model().eval()
    model.adaptations[0].weight = 0.3
    out = model.compute_losses(_batch(5, True, 3), _batch(4, False, 4), progress=0.5)
    assert out["loss"].item() == pytest.approx((out["class_loss"] + 0.3 * out["dann_loss"]).item(), rel=1e-6)
    assert out["dann_lambda"] == pytest.approx(grl_lambda(0.5))


def test_a_model_without_adaptation_never_encodes_target_frames() -> None:
    torch.manual_seed(0)
    model = small_model(adapt=False).eval()
    labelled = _batch(5, True, 3)
    poisoned = {"x": torch.full((4, CHANNELS, FRAMES), float("nan")), "lengths": torch.full((4,), FRAMES)}
    with_target = model.compute_losses(labelled, poisoned)
    alone = model.compute_losses(labelled)
    assert torch.equal(with_target["loss"], alone["loss"]) and torch.isfinite(alone["loss"])


def test_dann_trains_in_bf16_mixed() -> None:
    trainer = _trainer(max_steps=2, limit_val_batches=0, precision="bf16-mixed", log_every_n_steps=1)
    trainer.fit(small_model(), train_dataloaders=_train_loader(unlabelled=True))
    assert math.isfinite(trainer.callback_metrics["en2zh/train/dann_loss"])
    assert 0 < trainer.callback_metrics["en2zh/train/dann_lambda"] < 1


def test_adaptation_without_unlabelled_data_fails_clearly() -> None:
    with pytest.raises(ValueError, match=r"\(DANN\) need an unlabelled target batch"):
        small_model().compute_losses(_batch(4, True, 0))


def test_gradient_reversal_flips_the_encoders_domain_gradient() -> None:
    torch.manual_seed(0)
    model = small_model().eval()  # no dropout, fixed batch-norm statistics: two passes agree
    dann = model.adaptations[0]
    labelled, unlabelled = _batch(5, True, 3), _batch(5, False, 4)
    progress = 0.1
    coeff = grl_lambda(progress, dann.lambda_max, dann.gamma)
    assert 0 < coeff < 1

    def domain_gradients() -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        model.zero_grad()
        model.compute_losses(labelled, unlabelled, progress)["dann_loss"].backward()
        return (
            [p.grad.clone() for p in model.encoder.parameters()],
            [p.grad.clone() for p in dann.discriminator.parameters()],
        )

    reversed_encoder, reversed_discriminator = domain_gradients()
    assert dann.grl.coeff == pytest.approx(coeff)  # DANN set its coefficient from the progress
    dann.grl = nn.Identity()
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
    model = small_model(direction="zh2en")
    trainer = _trainer(fast_dev_run=True)
    trainer.fit(
        model,
        train_dataloaders=_train_loader(unlabelled=True),
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
    assert {"zh2en/val/target_entropy", "zh2en/val/target_im", "zh2en/val/target_snd"} <= val_keys
    assert "zh2en/val/dev_risk" in val_keys
    assert 0 <= val_im <= math.log(len(EMOTIONS))
    assert not any("dataloader_idx" in key for key in val_keys | test_keys)
    assert 0 <= trainer.callback_metrics["zh2en/test/target_acc"] <= 1


def test_predict_step_returns_probabilities_and_embeddings() -> None:
    model = small_model().eval()
    batch = _batch(3, False, 5)
    out = model.predict_step(batch)
    assert out["probs"].shape == (3, len(EMOTIONS))
    assert torch.allclose(out["probs"].sum(-1), torch.ones(3))
    assert torch.allclose(out["embedding"], model.embed(batch["x"], batch["lengths"]))


@pytest.mark.parametrize("optimizer", ["adamw", "adam", "sgd"])
def test_optimizer_groups_scale_the_encoder_learning_rate(optimizer: str) -> None:
    model = small_model(optimizer=optimizer, lr=0.01, encoder_lr_scale=0.1, scheduler="none")
    trainer = _trainer(max_steps=1, limit_val_batches=0)
    trainer.fit(model, train_dataloaders=_train_loader(unlabelled=True))
    (opt,) = trainer.optimizers
    assert type(opt).__name__.lower() == optimizer
    encoder_group, heads_group = opt.param_groups
    assert encoder_group["lr"] == pytest.approx(0.001) and heads_group["lr"] == pytest.approx(0.01)
    assert len(encoder_group["params"]) + len(heads_group["params"]) == len(list(model.parameters()))
    discriminator = {id(p) for p in model.adaptations[0].discriminator.parameters()}
    assert discriminator <= {id(p) for p in heads_group["params"]}  # the discriminator is optimised


class _ScheduleRecorder(Callback):
    """DANN's GRL coefficient and the learning rates used at each global step."""

    def __init__(self) -> None:
        self.by_step: dict[int, tuple[float, ...]] = {}

    def on_train_batch_start(self, trainer: Trainer, pl_module: UDAModule, batch, batch_idx: int) -> None:
        self._lrs = tuple(group["lr"] for group in trainer.optimizers[0].param_groups)

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: UDAModule, outputs, batch, batch_idx: int
    ) -> None:
        self.by_step[trainer.global_step - 1] = (pl_module.adaptations[0].grl.coeff, *self._lrs)


@pytest.mark.parametrize(("scheduler", "warmup_steps"), [("ganin", 0), ("cosine", 2)])
def test_resuming_continues_grl_lambda_and_learning_rate(
    tmp_path: Path, scheduler: str, warmup_steps: int
) -> None:
    hparams = {"scheduler": scheduler, "warmup_steps": warmup_steps, "encoder_lr_scale": 0.5}
    uninterrupted = _ScheduleRecorder()
    checkpoints = ModelCheckpoint(dirpath=tmp_path, filename="{step}", every_n_train_steps=3, save_top_k=-1)
    _trainer(
        max_steps=8, limit_val_batches=0, callbacks=[uninterrupted, checkpoints], enable_checkpointing=True
    ).fit(small_model(**hparams), train_dataloaders=_train_loader(True, batches=4, batch_size=2))
    resumed = _ScheduleRecorder()
    _trainer(max_steps=8, limit_val_batches=0, callbacks=[resumed]).fit(
        small_model(**hparams),
        train_dataloaders=_train_loader(True, batches=4, batch_size=2),
        ckpt_path=tmp_path / "step=3.ckpt",
    )
    assert sorted(resumed.by_step) == [3, 4, 5, 6, 7]
    for step, values in resumed.by_step.items():
        assert values == pytest.approx(uninterrupted.by_step[step], rel=1e-12)
    assert uninterrupted.by_step[3][0] > uninterrupted.by_step[0][0]  # the schedule had moved on


# ---- target labels never reach a UDA run -----------------------------------------------------------


def _relabel(cache: Path, language: str, split: str) -> None:
    """Give every utterance of `language`/`split` in the cache's manifest a different emotion."""
    path = cache / "manifest.csv"
    manifest = pd.read_csv(path, dtype=str, keep_default_na=False)
    rows = (manifest["language"] == language) & (manifest["split"] == split)
    following = {e: EMOTIONS[(i + 1) % len(EMOTIONS)] for i, e in enumerate(EMOTIONS)}
    manifest.loc[rows, "emotion"] = manifest.loc[rows, "emotion"].map(following)
    manifest.to_csv(path, index=False)


def _dann_weights(cache: Path) -> dict[str, torch.Tensor]:
    """State dict after 3 DANN steps on `cache` through the real data module (en -> zh)."""
    seed_everything(3, verbose=False)
    data = CrossLingualDataModule(
        str(cache), crop_frames=32, batch_size=8, eval_batch_size=32, max_eval_frames=64, seed=3
    )
    assert data.unlabelled_target and data.labelled == "source"
    model = UDAModule(
        encoder=CNN1dEncoder(data.num_channels, width=8, depth=2, embedding_dim=16),
        adaptations=[DANN(hidden=16)],
        classifier_hidden=16,
    )
    _trainer(max_steps=3, limit_val_batches=0).fit(model, datamodule=data)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_scrambled_target_train_labels_leave_dann_weights_bit_identical(
    tiny_cache: Path, tmp_path: Path
) -> None:
    import shutil

    reference = _dann_weights(tiny_cache)
    scrambled_target = Path(shutil.copytree(tiny_cache, tmp_path / "target"))
    _relabel(scrambled_target, "zh", "train")
    before = pd.read_csv(tiny_cache / "manifest.csv")
    after = pd.read_csv(scrambled_target / "manifest.csv")
    changed = before["emotion"] != after["emotion"]
    target_train = (before["language"] == "zh") & (before["split"] == "train")
    assert changed.equals(target_train) and changed.any()  # every target-train label, nothing else

    weights = _dann_weights(scrambled_target)
    assert weights.keys() == reference.keys()
    assert all(torch.equal(weights[k], reference[k]) for k in reference)

    # Control: the same change to the source-train labels does change the trained weights.
    scrambled_source = Path(shutil.copytree(tiny_cache, tmp_path / "source"))
    _relabel(scrambled_source, "en", "train")
    control = _dann_weights(scrambled_source)
    assert not all(torch.equal(control[k], reference[k]) for k in reference)
