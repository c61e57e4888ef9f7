"""LightningCLI for `sed-uda fit|validate|test|predict`, wired for cross-lingual UDA.

Option names may be spelled with dashes (`--trainer.max-epochs=1`); a command line that does not parse
raises jsonargparse's ArgumentError (the console script shows its one useful line); a configuration
the machine cannot run (a GPU trainer without a GPU) or that a class refuses on construction raises a
`UserError` that names it.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import torch
from jsonargparse import Namespace
from jsonargparse.typing import import_object
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch import Callback, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
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
from sed_uda.compare import differences
from sed_uda.data.datamodule import CrossLingualDataModule
from sed_uda.errors import BadArgument, CheckpointMismatch, UserError
from sed_uda.inference.checkpoint import DATA_STATE, read_checkpoint
from sed_uda.models.uda import UDAModule
from sed_uda.options import normalise_options
from sed_uda.run_folders import evaluation_folder, fit_folder, last_checkpoint, latest

EVALUATION = ("validate", "test", "predict")
LINK_TARGETS = (
    "model.direction",
    "model.labelled_domain",
    "model.encoder.init_args.in_channels",
    "data.unlabelled_target",
)
"""Settings one part decides for another (`add_arguments_to_parser`): never taken from a checkpoint."""
CHECKPOINT_TRAINER = {
    "logger": [
        {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": ".", "name": "csv"}}
    ],
    "callbacks": [{"class_path": "sed_uda.callbacks.wandb_logging.ConfusionMatrixLogger"}],
}
"""Evaluating a checkpoint alone: the CSV log and confusion matrices a configured evaluation writes."""


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

    def parse_arguments(self, parser, args) -> None:  # noqa: ANN001 - LightningCLI's signature
        """Parse, keeping the words typed (to say where a value came from); `validate|test|predict
        --ckpt_path FILE` first takes the model and data configuration stored in the checkpoint, so the
        checkpoint alone is enough and anything typed after it still wins."""
        self.typed = list(args) if args is not None else sys.argv[1:]
        stored = checkpoint_config(self.typed)
        if stored is not None:
            args = [self.typed[0], f"--config={json.dumps(stored)}", *self.typed[1:]]
        super().parse_arguments(parser, args)

    def before_instantiate_classes(self) -> None:
        """Choose the run's folder (runs never mix: see `sed_uda.run_folders`) and put its logs and
        checkpoints there; resolve `--ckpt_path last` and read the checkpoint."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        if config.model.encoder is None:
            raise BadArgument(
                f"no model configured: give an experiment config, e.g. `sed-uda {self.subcommand or 'fit'} "
                "--config configs/experiment/en2zh.yaml --config configs/adaptation/dann.yaml`"
                + ("" if self.subcommand in (None, "fit") else ", or a checkpoint with --ckpt_path")
            )
        name = f"{run_name(config.model, config.data.labelled)}_{config.data.source}2{config.data.target}"
        trainer = config.trainer
        configured = trainer.default_root_dir
        if self.subcommand == "fit":
            folder = fit_folder(configured, Path("runs/fit") / name, config.get("ckpt_path"))
        elif self.subcommand in EVALUATION:
            if config.get("ckpt_path") == "last":  # the evaluated run's, found before the output moves
                root = Path(configured) if configured else latest(Path("runs/fit") / name)
                dirpath = Path(config.selection.dirpath or root / "checkpoints")
                config.ckpt_path = str(last_checkpoint(dirpath, root))
            folder = evaluation_folder(configured, Path("runs") / self.subcommand / name)
        else:  # built by a caller (a grid cell) that chose the folder
            folder = Path(configured or f"runs/run/{name}")
        trainer.default_root_dir = str(folder)
        for logger in trainer.logger if isinstance(trainer.logger, list) else []:
            init_args = logger.get("init_args")
            if init_args is not None and "save_dir" in init_args:
                init_args.save_dir = str(_moved(init_args.save_dir, configured, folder, folder))
            if init_args is not None and "name" in init_args and init_args.name in (None, "lightning_logs"):
                init_args.name = name
        checkpoints = _moved(config.selection.dirpath, configured, folder, folder / "checkpoints")
        config.selection.dirpath = str(checkpoints)
        if self.subcommand == "fit" and config.get("ckpt_path") == "last":
            config.ckpt_path = str(last_checkpoint(checkpoints, folder))
        self.checkpoint = self._requested_checkpoint(config)
        if self.subcommand == "fit" and self.checkpoint is not None:
            continue_loggers(trainer, self.checkpoint)

    def instantiate_trainer(self, **kwargs) -> Trainer:  # noqa: ANN003 - LightningCLI's signature
        """The configured trainer plus `last.ckpt` beside the selection checkpoints, the random and logger
        state a resumed run needs, (predict) the predictions CSV writer, and a quiet W&B start.

        `last.ckpt` replaces the ModelCheckpoint Lightning adds when it sees none at construction (it
        would write a full `epoch=N-step=M.ckpt` every epoch into the logger's folder)."""
        trainer = super().instantiate_trainer(**kwargs)
        drop_anonymous_setting(trainer)
        config = self.config[self.subcommand] if self.subcommand else self.config
        trainer.callbacks = [cb for cb in trainer.callbacks if not _lightning_default_checkpoint(cb)]
        trainer.callbacks += [LastCheckpoint(dirpath=config.selection.dirpath), ResumeState()]
        if self.subcommand == "predict":
            trainer.callbacks.append(PredictionWriter())
        return trainer

    def _requested_checkpoint(self, config) -> dict | None:  # noqa: ANN001 - jsonargparse Namespace
        """The checkpoint named by --ckpt_path, read safely; None if none."""
        path = config.get("ckpt_path")
        if path is None:
            if self.subcommand in EVALUATION and not config.get("untrained"):
                raise BadArgument(
                    f"`sed-uda {self.subcommand}` needs --ckpt_path (a checkpoint of `sed-uda fit`, e.g. "
                    f"runs/fit/<run>/checkpoints/best-{config.selection.rule}.ckpt); "
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
        self.before_validate()
        if self.checkpoint is not None:
            keep_csv_history(self.trainer, self.checkpoint)

    def before_validate(self) -> None:
        """Refuse a checkpoint of another model, then say where the run writes."""
        self._check_checkpoint()
        print(f"sed-uda {self.subcommand}: writing to {self.trainer.default_root_dir}")

    before_test = before_predict = before_validate

    def instantiate_classes(self) -> None:
        """Refuse a GPU trainer on a machine without one; report classes refusing their config in one line."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        _require_gpu_if_asked(config, self.typed)
        try:
            super().instantiate_classes()
        except (ValueError, MisconfigurationException) as error:
            raise ConfigError(f"invalid configuration: {error}") from error

    def fit(self, **kwargs) -> None:  # noqa: ANN003 - trainer.fit's arguments
        """`trainer.fit`; a configuration Lightning refuses once it has read the checkpoint (e.g. fewer
        `max_epochs` than the resumed run has done) is a ConfigError naming the checkpoint."""
        try:
            self.trainer.fit(**kwargs)
        except MisconfigurationException as error:
            raise ConfigError(f"{kwargs.get('ckpt_path')}: invalid configuration: {error}") from error

    def validate(self, **kwargs) -> None:  # noqa: ANN003 - trainer.validate's arguments
        """`trainer.validate`, printing each metric once."""
        _print_metrics("validate", self.trainer.validate(**{**kwargs, "verbose": False}), kwargs["verbose"])

    def test(self, **kwargs) -> None:  # noqa: ANN003 - trainer.test's arguments
        """`trainer.test`, printing each metric once (Lightning repeats every metric logged at the end of
        the epoch under each evaluation loader, source and target)."""
        _print_metrics("test", self.trainer.test(**{**kwargs, "verbose": False}), kwargs["verbose"])

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


def _lightning_default_checkpoint(callback: Callback) -> bool:
    return type(callback) is ModelCheckpoint and callback.dirpath is None


def checkpoint_config(args: Sequence[str]) -> dict | None:
    """The model and data configuration stored in the checkpoint that `validate|test|predict --ckpt_path
    FILE` names (LightningCLI's saved hyperparameters), or None for other commands and `last`."""
    if not args or args[0] not in EVALUATION:
        return None
    path = None
    for position, arg in enumerate(args):
        name, eq, value = arg.partition("=")
        if name == "--ckpt_path":
            path = value if eq else (args[position + 1] if position + 1 < len(args) else None)
    if path in (None, "last"):
        return None
    checkpoint = read_checkpoint(path)
    model = _settings(checkpoint.get("hyper_parameters") or {}, "model")
    data = _settings(checkpoint.get("datamodule_hyper_parameters") or {}, "data")
    if not model or not data:
        return None
    return {"model": model, "data": data, "trainer": CHECKPOINT_TRAINER}


def _settings(values: dict, prefix: str) -> dict:
    """Saved hyperparameters less LightningCLI's bookkeeping (`_instantiator`) and the link targets."""
    out = {}
    for key, value in values.items():
        name = f"{prefix}.{key}"
        if key.startswith("_") or name in LINK_TARGETS:
            continue
        out[key] = _settings(value, name) if isinstance(value, dict) else value
    return out


def _moved(path: str | None, configured: str | None, folder: Path, default: Path) -> Path:
    """A log or checkpoint folder of the run: `default` when unset, moved into `folder` when it lies in
    the configured folder (a run's saved config names that run's own folder), else as given."""
    if path in (None, ".", "./"):
        return default
    if configured is not None and Path(path).is_relative_to(configured):
        return folder / Path(path).relative_to(configured)
    return Path(path)


def _print_metrics(stage: str, results: list[dict[str, float]], verbose: bool) -> None:
    """One table of every metric an evaluation returned (one dict per loader, holding the same values)."""
    if not verbose or not results:
        return
    from rich.console import Console
    from rich.table import Table

    merged = {key: value for result in results for key, value in result.items()}
    table = Table(f"{stage} metric", "value")
    for key in sorted(merged):
        table.add_row(key, f"{merged[key]:.4f}")
    Console().print(table)


class ConfigError(UserError):
    """A training configuration that cannot run as given; the message says which value and what to do."""


CPU_OVERRIDES = "--trainer.accelerator cpu --trainer.precision 32-true"


def _require_gpu_if_asked(config, typed: Sequence[str] = ()) -> None:  # noqa: ANN001 - jsonargparse Namespace
    """ConfigError when the trainer asks for a GPU and this machine has none, naming where the request
    came from (the command line or the config files) and how to use the CPU."""
    trainer = config.trainer
    if str(trainer.accelerator).lower() not in ("gpu", "cuda") or torch.cuda.is_available():
        return
    configs = ", ".join(str(path) for path in config.get("config") or []) or "the trainer config"
    source = _typed_accelerator(typed) or configs
    extra = " --trainer.strategy auto --trainer.devices 1" if "ddp" in str(trainer.strategy) else ""
    raise ConfigError(
        f"{source}: needs a GPU (trainer.accelerator={trainer.accelerator}, precision={trainer.precision}, "
        f"strategy={trainer.strategy}) and this machine has none. To run it on the CPU (slowly), add: "
        f"{CPU_OVERRIDES}{extra}"
    )


def _typed_accelerator(typed: Sequence[str]) -> str | None:
    """`--trainer.accelerator X` when the command line sets it after every config file (so it wins)."""
    found = None
    for position, arg in enumerate(typed):
        name, eq, value = arg.partition("=")
        if name in ("--config", "--trainer"):
            found = None
        elif name == "--trainer.accelerator":
            found = f"--trainer.accelerator {value if eq else typed[position + 1]}"
    return found


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
    # Evaluation writes into a folder of its own, not the evaluated run's: nothing is lost by the move.
    warnings.filterwarnings("ignore", message=r"The dirpath has changed from")
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
