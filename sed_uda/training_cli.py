"""LightningCLI for `sed-uda fit|validate|test|predict`, wired for cross-lingual UDA.

Option names may be spelled with dashes (`--trainer.max-epochs=1`); a command line that does not parse
raises jsonargparse's ArgumentError (the console script shows its one useful line); a configuration
the machine cannot run (a GPU trainer without a GPU) or that a class refuses on construction raises a
`UserError` that names it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import torch
from jsonargparse import Namespace
from jsonargparse.typing import import_object
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch import Trainer
from lightning.pytorch.cli import LightningCLI

from sed_uda.callbacks.checkpoint import LastCheckpoint, SelectionCheckpoint
from sed_uda.callbacks.predictions import PredictionWriter
from sed_uda.callbacks.resume import ResumeState, continue_loggers, keep_csv_history
from sed_uda.callbacks.wandb_logging import (
    DiscardEmptyWandbRuns,
    default_wandb_mode,
    drop_anonymous_setting,
    finish_wandb_runs,
)
from sed_uda.cli import normalise_options
from sed_uda.compare import differences
from sed_uda.data.datamodule import CrossLingualDataModule
from sed_uda.errors import CheckpointMismatch, UserError
from sed_uda.inference.checkpoint import DATA_STATE, read_checkpoint
from sed_uda.models.uda import UDAModule


class SedUdaCLI(LightningCLI):
    """LightningCLI wired for cross-lingual UDA: the data decides the model's input and direction."""

    def add_arguments_to_parser(self, parser) -> None:  # noqa: ANN001 - LightningArgumentParser
        parser.add_lightning_class_args(SelectionCheckpoint, "selection")
        parser.add_argument(
            "--untrained",
            type=bool,
            default=False,
            help="validate/test/predict without --ckpt_path (random weights)",
        )
        # The model's parts decide what data it needs; the data decides the model's input and direction.
        parser.link_arguments(
            "model.adaptations", "data.unlabelled_target", compute_fn=bool, apply_on="parse"
        )
        parser.link_arguments("data.labelled", "model.labelled_domain", apply_on="parse")
        parser.link_arguments(
            ("model.encoder", "model.augment", "model.adaptations"),
            "data.pooled",
            compute_fn=pooled_inputs,
            apply_on="parse",
        )
        parser.link_arguments(
            "data.num_channels", "model.encoder.init_args.in_channels", apply_on="instantiate"
        )
        parser.link_arguments("data.direction", "model.direction", apply_on="instantiate")

    def before_instantiate_classes(self) -> None:
        """Put the run's logs and checkpoints in one folder named after the experiment, unless set."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        name = f"{run_name(config.model, config.data.labelled)}_{config.data.source}2{config.data.target}"
        trainer = config.trainer
        if trainer.default_root_dir is None:
            trainer.default_root_dir = f"runs/{self.subcommand or 'run'}/{name}"
        for logger in trainer.logger if isinstance(trainer.logger, list) else []:
            init_args = logger.get("init_args")
            if init_args is not None and init_args.get("save_dir") in (None, ".", "./"):
                init_args.save_dir = trainer.default_root_dir
            if init_args is not None and "name" in init_args and init_args.name in (None, "lightning_logs"):
                init_args.name = name
        if config.selection.dirpath is None:
            config.selection.dirpath = f"{trainer.default_root_dir}/checkpoints"
        self.checkpoint = self._requested_checkpoint(config)
        if self.subcommand == "fit" and self.checkpoint is not None:
            continue_loggers(trainer, self.checkpoint)

    def instantiate_trainer(self, **kwargs) -> Trainer:  # noqa: ANN003 - LightningCLI's signature
        """The configured trainer plus `last.ckpt` beside the selection checkpoints, the random and logger
        state a resumed run needs, (predict) the predictions CSV writer, and a quiet W&B start."""
        trainer = super().instantiate_trainer(**kwargs)
        drop_anonymous_setting(trainer)
        config = self.config[self.subcommand] if self.subcommand else self.config
        trainer.callbacks += [LastCheckpoint(dirpath=config.selection.dirpath), ResumeState()]
        if self.subcommand == "predict":
            trainer.callbacks.append(PredictionWriter())
        return trainer

    def _requested_checkpoint(self, config) -> dict | None:  # noqa: ANN001 - jsonargparse Namespace
        """The checkpoint named by --ckpt_path (`last` = the run's last.ckpt), read safely; None if none."""
        path = config.get("ckpt_path")
        if path == "last":
            path = Path(config.selection.dirpath) / "last.ckpt"
            path = path if path.is_file() else None
        if path is None:
            if self.subcommand in ("validate", "test", "predict") and not config.get("untrained"):
                raise CheckpointMismatch(
                    f"`sed-uda {self.subcommand}` needs --ckpt_path (a checkpoint of `sed-uda fit`, e.g. "
                    f"{config.selection.dirpath}/best-{config.selection.rule}.ckpt); "
                    "pass --untrained=true to evaluate random weights on purpose"
                )
            return None
        return read_checkpoint(path)

    def _parse_ckpt_path(self) -> None:
        """Keep the configured model: LightningCLI would silently replace it by the checkpoint's
        hyperparameters; `_check_checkpoint` refuses a checkpoint that differs instead."""

    def _check_checkpoint(self) -> None:
        """Refuse a checkpoint of another model or input recipe, naming every differing value."""
        if self.checkpoint is None:
            return
        stored = {"model": self.checkpoint.get("hyper_parameters", {})}
        configured = {"model": dict(self.model.hparams)}
        if DATA_STATE in self.checkpoint:
            stored["data"] = {k: self.checkpoint[DATA_STATE].get(k) for k in self.datamodule.recipe()}
            configured["data"] = self.datamodule.recipe()
        different = differences(stored, configured)
        if different:
            raise CheckpointMismatch(
                f"the checkpoint does not match the configuration ({different}); pass the config it was "
                "trained with"
            )

    def before_fit(self) -> None:
        self._check_checkpoint()
        if self.checkpoint is not None:
            keep_csv_history(self.trainer, self.checkpoint)

    before_validate = before_test = before_predict = _check_checkpoint

    def instantiate_classes(self) -> None:
        """Refuse a GPU trainer on a machine without one; report classes refusing their config in one line."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        _require_gpu_if_asked(config)
        try:
            super().instantiate_classes()
        except (ValueError, MisconfigurationException) as error:
            raise ConfigError(f"invalid configuration: {error}") from error

    def after_fit(self) -> None:
        finish_wandb_runs(self.trainer)

    after_validate = after_test = after_predict = after_fit


def run_name(model: Namespace, labelled: str) -> str:
    """`<adaptations>_<encoder>` from the modules of the configured parts, e.g. `dann_cnn1d`,
    `cdan+mcc_stats`; `source_only` / `target_supervised` when nothing adapts."""
    parts = [_module_name(a["class_path"]) for a in model.adaptations or []]
    method = "+".join(parts) or ("target_supervised" if labelled == "target" else "source_only")
    return f"{method}_{_module_name(model.encoder.class_path)}"


def pooled_inputs(encoder: Namespace | None, augment: Namespace | None, adaptations: list | None) -> bool:
    """Whether the data may serve pooled statistics instead of frames: the encoder only pools mean and
    std over time (`accepts_pooled`), and neither the model's augmentation nor an adaptation loss
    (`reads_frames`) touches the frames. The result is the same either way; pooled is faster."""
    if encoder is None or augment is not None:
        return False
    parts = [encoder, *(adaptations or [])]
    classes = [import_object(part["class_path"]) for part in parts]
    return getattr(classes[0], "accepts_pooled", False) and not any(
        getattr(cls, "reads_frames", False) for cls in classes[1:]
    )


def _module_name(class_path: str) -> str:
    return class_path.rsplit(".", 2)[-2]


class ConfigError(UserError):
    """A training configuration that cannot run as given; the message says which value and what to do."""


CPU_OVERRIDES = "--trainer.accelerator cpu --trainer.precision 32-true"


def _require_gpu_if_asked(config) -> None:  # noqa: ANN001 - jsonargparse Namespace
    """ConfigError when the trainer asks for a GPU and this machine has none, saying how to use the CPU."""
    trainer = config.trainer
    if str(trainer.accelerator).lower() not in ("gpu", "cuda") or torch.cuda.is_available():
        return
    configs = ", ".join(str(path) for path in config.get("config") or []) or "the trainer config"
    extra = " --trainer.strategy auto --trainer.devices 1" if "ddp" in str(trainer.strategy) else ""
    raise ConfigError(
        f"{configs}: needs a GPU (trainer.accelerator={trainer.accelerator}, precision={trainer.precision}, "
        f"strategy={trainer.strategy}) and this machine has none. To run it on the CPU (slowly), add: "
        f"{CPU_OVERRIDES}{extra}"
    )


def gpu_note(config) -> str:  # noqa: ANN001 - jsonargparse Namespace
    """ " (needs a GPU, none here)" for a configuration this machine cannot train, else ""."""
    try:
        _require_gpu_if_asked(config)
    except ConfigError:
        return " (needs a GPU, none here)"
    return ""


QUIET_TRAINER: dict[str, bool] = {"enable_model_summary": False, "enable_progress_bar": False}
"""Trainer defaults inside `quiet_training()`: display only, so they change no result and no grid identity
(they are defaults, not overrides: a config or command line that sets them still wins)."""
_quiet: ContextVar[bool] = ContextVar("quiet_training", default=False)


@contextmanager
def quiet_training() -> Iterator[None]:
    """Training CLIs built inside this block print no model summary and no progress bar by default."""
    token = _quiet.set(True)
    try:
        yield
    finally:
        _quiet.reset(token)


def _cli(cli_class: type[SedUdaCLI], args: Sequence[str] | None, run: bool) -> SedUdaCLI:
    default_wandb_mode()
    # Training batches are built in-process (num_workers=0), so this multi-worker caveat does not apply.
    warnings.filterwarnings("ignore", message=r".*`IterableDataset` has `__len__` defined.*")
    # `sed-uda` and the grid pass their arguments on purpose, whatever sys.argv holds.
    warnings.filterwarnings("ignore", message=r"LightningCLI's args parameter is intended to run from within")
    # Lightning 2.6 calls a pytree check that torch 2.14 deprecated; nothing in a user's run causes it.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated")
    return cli_class(
        UDAModule,
        CrossLingualDataModule,
        args=normalise_options(args) if args is not None else None,
        run=run,
        parser_kwargs={"parser_mode": "omegaconf", "exit_on_error": False},
        save_config_kwargs={"overwrite": True},
        trainer_defaults={
            "callbacks": [DiscardEmptyWandbRuns()],
            **(QUIET_TRAINER if _quiet.get() else {}),
        },
        auto_configure_optimizers=False,
    )


def training_cli(args: Sequence[str] | None = None, run: bool = True) -> SedUdaCLI:
    """Build (and by default run) the LightningCLI on `args` (default: the command line)."""
    return _cli(SedUdaCLI, args, run)


class _ParseOnlyCLI(SedUdaCLI):
    def instantiate_classes(self) -> None:
        """Nothing is built: the caller only wants the composed configuration."""


def resolve_config(args: Sequence[str]):  # noqa: ANN201 - jsonargparse Namespace
    """The composed configuration of a `fit`-style argument list (no subcommand), building nothing."""
    return _cli(_ParseOnlyCLI, args, run=False).config
