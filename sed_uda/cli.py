"""`sed-uda`: LightningCLI for fit/validate/test/predict, plus the data and experiment commands.

Training commands go to LightningCLI (`--config` files, `--print_config`, `--model.lr=...`).
The others are plain functions turned into subcommands by jsonargparse, from their signatures
and docstrings; options may be spelled with dashes or underscores.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Sequence

from lightning.pytorch.cli import LightningCLI

from sed_uda.callbacks.checkpoint import SelectionCheckpoint
from sed_uda.callbacks.wandb_logging import default_wandb_mode, finish_wandb_runs
from sed_uda.commands import demo, grid, prepare, probe, synth, table
from sed_uda.corpus.audio import AudioProblem
from sed_uda.corpus.esd import CorpusError
from sed_uda.data.datamodule import CrossLingualDataModule
from sed_uda.features.cache import PrepareError
from sed_uda.features.store import CacheError
from sed_uda.models.uda import UDAModule

TOOL_COMMANDS: dict[str, Callable[..., object]] = {
    f.__name__: f for f in (synth, prepare, probe, grid, table, demo)
}
TRAINING_COMMANDS = ("fit", "validate", "test", "predict")


class SedUdaCLI(LightningCLI):
    """LightningCLI wired for cross-lingual UDA: the data decides the model's input and direction."""

    def add_arguments_to_parser(self, parser) -> None:  # noqa: ANN001 - LightningArgumentParser
        parser.add_lightning_class_args(SelectionCheckpoint, "selection")
        parser.link_arguments("model.method", "data.method", apply_on="parse")
        parser.link_arguments("data.num_channels", "model.in_channels", apply_on="instantiate")
        parser.link_arguments("data.direction", "model.direction", apply_on="instantiate")

    def before_instantiate_classes(self) -> None:
        """Put the run's logs and checkpoints in one folder named after the experiment, unless set."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        name = f"{config.model.method}_{config.model.encoder}_{config.data.source}2{config.data.target}"
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


def _underscored(args: Sequence[str]) -> list[str]:
    """`--speakers-per-language` -> `--speakers_per_language` (values are left alone)."""
    out = []
    for arg in args:
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            arg = "--" + name[2:].replace("-", "_") + eq + value
        out.append(arg)
    return out


OVERVIEW = """sed-uda: cross-lingual speech emotion recognition with unsupervised domain adaptation.

Data and experiments:
  synth     generate the bundled bilingual emotional corpus in ESD's layout
  prepare   validate a corpus (bundled or real ESD) and build the feature cache
  probe     pooled-feature classifier: in-language vs cross-language accuracy of a cache
  grid      run a grid of experiments (methods x encoders x directions x seeds), resumable
  table     collect runs into the poster-shaped results table (mean +- std over seeds)
  demo      the whole study on the bundled corpus: synth, prepare, grid, table
Training (LightningCLI):
  fit | validate | test | predict --config configs/experiment/<name>.yaml

`sed-uda COMMAND --help` shows a command's options.
"""


USER_ERRORS = (CorpusError, PrepareError, CacheError, AudioProblem, FileNotFoundError, ValueError)
"""Problems with the user's data or arguments: reported as one clear message, without a traceback."""


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `sed-uda` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(OVERVIEW)
        return
    try:
        if args[0] in TOOL_COMMANDS:
            from jsonargparse import CLI

            CLI(list(TOOL_COMMANDS.values()), args=_underscored(args))
        else:
            training_cli(args)
    except USER_ERRORS as error:
        print(f"sed-uda {args[0]}: error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
