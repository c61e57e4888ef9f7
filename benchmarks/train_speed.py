"""Where the time of a fit goes, per adaptation method and encoder, and what Lightning costs per step.

For every configs/adaptation/*.yaml with the 1D-CNN and the stats encoder, runs one short fit exactly
as `sed-uda fit --config configs/experiment/en2zh.yaml --config configs/encoder/X.yaml --config
configs/adaptation/Y.yaml` would (on the feature cache given, loggers off, one thread) and splits its
wall time into:

    start-up     building the CLI (parsing, model, data module and trainer), before `fit`
    data setup   the data module's `setup` (loading and normalising the cache)
    train steps  Lightning's training steps (forward, backward, optimiser, logging), batches in hand
    train data   gathering the training batches
    evaluation   the validation loops (every epoch)
    other        the rest of `fit` (checkpoints, loop bookkeeping)

Right after each Lightning training step it also times one step of a plain PyTorch loop (zero_grad,
`UDAModule.compute_losses`, backward, AdamW step) on a copy of the same model (same initial weights)
and the batch Lightning was just given, already gathered, so both see the same machine load; it
prints Lightning's training-step rate as a ratio to the plain loop's (1.0 = no overhead; target
>= 0.9; the first step of each is left out as warm-up). The plain steps are not part of any column. Python and
library imports are timed once, at the top.

    .venv/bin/python benchmarks/train_speed.py [--cache data/cache] [--epochs 3] [--threads 1]
        [--encoders cnn1d stats] [--methods dann mcc ...]
"""

from __future__ import annotations

import time

_STARTED = time.perf_counter()

import argparse  # noqa: E402
import copy  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
from lightning.pytorch import Callback  # noqa: E402

from sed_uda.training_cli import training_cli  # noqa: E402

IMPORT_SECONDS = time.perf_counter() - _STARTED
REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"


class FitTimer(Callback):
    """Wall time of training steps, training-batch gathering and validation loops; after each Lightning
    step it times one plain PyTorch step of `plain_model` on the same batch, so both see the same load."""

    def __init__(self, plain_model: torch.nn.Module, lr: float) -> None:
        self.steps: list[float] = []
        self.plain: list[float] = []
        self.train_data = 0.0
        self.evaluation = 0.0
        self.plain_model = plain_model.train()
        self.optimiser = torch.optim.AdamW(plain_model.parameters(), lr=lr)
        self._mark = 0.0

    def on_train_epoch_start(self, trainer, pl_module) -> None:  # noqa: ANN001
        self._mark = time.perf_counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # noqa: ANN001
        now = time.perf_counter()
        self.train_data += now - self._mark
        self._mark = now

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        self.steps.append(time.perf_counter() - self._mark)
        self.plain.append(plain_step_seconds(self.plain_model, self.optimiser, batch))
        self._mark = time.perf_counter()

    def on_validation_start(self, trainer, pl_module) -> None:  # noqa: ANN001
        self._validation_started = time.perf_counter()

    def on_validation_end(self, trainer, pl_module) -> None:  # noqa: ANN001
        self.evaluation += time.perf_counter() - self._validation_started


def plain_step_seconds(model: torch.nn.Module, optimiser: torch.optim.Optimizer, batch: dict) -> float:
    """Seconds of one plain PyTorch training step: zero_grad, compute_losses, backward, AdamW step."""
    started = time.perf_counter()
    optimiser.zero_grad(set_to_none=True)
    losses = model.compute_losses(batch["labelled"], batch.get("unlabelled"), progress=0.5)
    losses["loss"].backward()
    optimiser.step()
    return time.perf_counter() - started


def measure(encoder: Path, adaptation: Path, cache: Path, epochs: int, root: Path) -> dict[str, float]:
    started = time.perf_counter()
    cli = training_cli(
        [
            "--config",
            str(CONFIGS / "experiment" / "en2zh.yaml"),
            "--config",
            str(encoder),
            "--config",
            str(adaptation),
            f"--data.cache_dir={cache}",
            f"--trainer.max_epochs={epochs}",
            f"--trainer.default_root_dir={root}",
            "--trainer.logger=false",
            "--trainer.enable_progress_bar=false",
            "--trainer.enable_model_summary=false",
        ],
        run=False,
    )
    data, model = cli.datamodule, cli.model
    # The same architecture and initial weights, never attached to a trainer.
    timer = FitTimer(copy.deepcopy(model), model.hparams.lr)
    cli.trainer.callbacks.append(timer)
    setup = data.setup
    setup_seconds = []

    def timed_setup(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        t = time.perf_counter()
        setup(*args, **kwargs)
        setup_seconds.append(time.perf_counter() - t)

    data.setup = timed_setup
    startup = time.perf_counter() - started

    started = time.perf_counter()
    cli.trainer.fit(model, datamodule=data)
    fit = time.perf_counter() - started - sum(timer.plain)  # the plain steps are not the fit's

    plain = timer.plain
    lightning_step = sum(timer.steps[1:]) / max(len(timer.steps) - 1, 1)  # the first step warms up
    plain_step = sum(plain[1:]) / max(len(plain) - 1, 1)
    steps = sum(timer.steps)
    data_setup = sum(setup_seconds)
    return {
        "startup": startup,
        "data_setup": data_setup,
        "train_steps": steps,
        "train_data": timer.train_data,
        "evaluation": timer.evaluation,
        "other": fit - data_setup - steps - timer.train_data - timer.evaluation,
        "fit": fit,
        "n_steps": len(timer.steps),
        "lightning_ms": 1000 * lightning_step,
        "plain_ms": 1000 * plain_step,
        "ratio": plain_step / lightning_step,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--cache", type=Path, default=Path("data/cache"), help="feature cache (sed-uda prepare)"
    )
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--encoders", nargs="+", default=["cnn1d", "stats"])
    parser.add_argument("--methods", nargs="+", default=None, help="configs/adaptation stems (default: all)")
    args = parser.parse_args()
    if not (args.cache / "meta.json").is_file():
        sys.exit(
            f"no feature cache at {args.cache}. Build the bundled corpus and its cache first:\n"
            "  sed-uda synth --out data/synth_esd\n"
            "  sed-uda prepare --root data/synth_esd --cache data/cache\n"
            "(`make demo` does both), or pass --cache <folder>."
        )
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    methods = sorted((CONFIGS / "adaptation").glob("*.yaml"))
    if args.methods:
        methods = [p for p in methods if p.stem in args.methods]
    print(
        f"cache {args.cache}, {args.epochs} epochs per fit, {torch.get_num_threads()} thread(s), "
        f"torch {torch.__version__}; imports took {IMPORT_SECONDS:.1f} s (once per process)\n"
    )
    header = (
        f"| {'encoder':7} | {'method':17} | fit s | start-up s | data setup s | train steps s | train data s "
        "| evaluation s | other s | steps | Lightning ms/step | plain ms/step | rate ratio |"
    )
    print(header)
    print("|" + "|".join("-" * (len(cell)) for cell in header.split("|")[1:-1]) + "|")
    with tempfile.TemporaryDirectory() as root:
        for encoder in args.encoders:
            for method in methods:
                r = measure(
                    CONFIGS / "encoder" / f"{encoder}.yaml", method, args.cache, args.epochs, Path(root)
                )
                print(
                    f"| {encoder:7} | {method.stem:17} | {r['fit']:5.1f} | {r['startup']:10.1f} "
                    f"| {r['data_setup']:12.1f} | {r['train_steps']:13.1f} | {r['train_data']:12.2f} "
                    f"| {r['evaluation']:12.1f} | {r['other']:7.1f} | {r['n_steps']:5d} "
                    f"| {r['lightning_ms']:17.1f} | {r['plain_ms']:13.1f} | {r['ratio']:10.2f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
