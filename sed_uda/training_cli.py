"""LightningCLI for `sed-uda fit|validate|test|predict`, wired for cross-lingual UDA."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

from jsonargparse import Namespace
from lightning.pytorch.cli import LightningCLI

from sed_uda.callbacks.checkpoint import SelectionCheckpoint
from sed_uda.callbacks.wandb_logging import default_wandb_mode, finish_wandb_runs
from sed_uda.data.datamodule import CrossLingualDataModule
from sed_uda.models.uda import UDAModule


class SedUdaCLI(LightningCLI):
    """LightningCLI wired for cross-lingual UDA: the data decides the model's input and direction."""

    def add_arguments_to_parser(self, parser) -> None:  # noqa: ANN001 - LightningArgumentParser
        parser.add_lightning_class_args(SelectionCheckpoint, "selection")
        # The model's parts decide what data it needs; the data decides the model's input and direction.
        parser.link_arguments(
            "model.adaptations", "data.unlabelled_target", compute_fn=bool, apply_on="parse"
        )
        parser.link_arguments("data.labelled", "model.labelled_domain", apply_on="parse")
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

    def after_fit(self) -> None:
        finish_wandb_runs(self.trainer)

    after_validate = after_test = after_predict = after_fit


def run_name(model: Namespace, labelled: str) -> str:
    """`<adaptations>_<encoder>` from the modules of the configured parts, e.g. `dann_cnn1d`,
    `cdan+mcc_stats`; `source_only` / `target_supervised` when nothing adapts."""
    parts = [_module_name(a["class_path"]) for a in model.adaptations or []]
    method = "+".join(parts) or ("target_supervised" if labelled == "target" else "source_only")
    return f"{method}_{_module_name(model.encoder.class_path)}"


def _module_name(class_path: str) -> str:
    return class_path.rsplit(".", 2)[-2]


def training_cli(args: Sequence[str] | None = None, run: bool = True) -> SedUdaCLI:
    """Build (and by default run) the LightningCLI on `args`."""
    default_wandb_mode()
    # Training batches are built in-process (num_workers=0), so this multi-worker caveat does not apply.
    warnings.filterwarnings("ignore", message=r".*`IterableDataset` has `__len__` defined.*")
    return SedUdaCLI(
        UDAModule,
        CrossLingualDataModule,
        args=list(args) if args is not None else None,
        run=run,
        parser_kwargs={"parser_mode": "omegaconf"},
        save_config_kwargs={"overwrite": True},
        auto_configure_optimizers=False,
    )
