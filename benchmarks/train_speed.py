"""How much a `sed-uda` fit and a grid cell cost over a plain PyTorch loop doing the same work.

Runs, back to back and `--repeats` times in alternating order, three whole processes on the same
feature cache with `--threads` threads each:

    plain   this file's own loop: reads features.npy / offsets.npy / manifest.csv directly, standardises
            each speaker, pools every utterance once (mean and std over time), then trains the stats
            encoder's network (MLP + emotion classifier + DANN discriminator behind a gradient reversal,
            AdamW, Ganin's schedules, batch 64 per side) for the same steps, and after every epoch scores
            source val, target val and the unlabelled target train split (information maximisation),
            keeping the best epoch's weights in memory
    fit     `sed-uda fit --config configs/experiment/en2zh.yaml --config configs/encoder/stats.yaml
            --config configs/adaptation/dann.yaml` with the grid's settings (speaker standardisation,
            loggers off); it also reports the share of `trainer.fit` spent outside training steps
    cell    one grid cell of the same configs: the fit plus the test of every selection rule's pick
            (`sed_uda.experiments.runner.run_experiment`)

and prints each one's median wall time and CPU time (user + system, of the whole process) and their
ratios to the plain loop's (bars: fit <= 1.2x, cell <= 1.4x). On a shared machine wall times follow the
load, CPU times much less: both are printed, with every repeat's, so the spread is visible.

    .venv/bin/python benchmarks/train_speed.py [--cache data/cache] [--epochs 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
FIT_CONFIGS = [CONFIGS / "experiment" / "en2zh.yaml", CONFIGS / "encoder" / "stats.yaml"]
FIT_CONFIGS.append(CONFIGS / "adaptation" / "dann.yaml")
BARS = {"fit": 1.2, "cell": 1.4}


def fit_arguments(cache: Path, epochs: int, root: Path) -> list[str]:
    """The LightningCLI arguments of the measured fit: the methods grid's overrides on this cache."""
    return [
        *(f"--config={path}" for path in FIT_CONFIGS),
        f"--data.cache_dir={cache}",
        "--data.normalization=speaker",
        f"--trainer.max_epochs={epochs}",
        "--trainer.logger=false",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        f"--trainer.default_root_dir={root}",
    ]


# ---- the plain PyTorch loop ------------------------------------------------------------------------


def plain_loop(cache: Path, epochs: int, batch_size: int = 64, seed: int = 0) -> dict[str, float]:
    """Train and evaluate the stats encoder + DANN in plain PyTorch; returns the best epoch's IM."""
    import numpy as np
    import pandas as pd
    import torch
    from torch import nn

    torch.manual_seed(seed)
    manifest = pd.read_csv(cache / "manifest.csv", dtype={"speaker": str})
    features = np.load(cache / "features.npy", mmap_mode="r")
    offsets = np.load(cache / "offsets.npy")
    speakers = manifest["speaker"].to_numpy()
    sizes = np.diff(offsets)
    frame_speaker = np.repeat(speakers, sizes)
    frames = np.empty(features.shape, dtype=np.float16)
    for speaker in np.unique(speakers):
        keep = frame_speaker == speaker
        values = np.asarray(features[keep], dtype=np.float64)
        frames[keep] = (values - values.mean(0)) / np.maximum(values.std(0), 1e-5)
    x = frames.astype(np.float32)
    sums = np.add.reduceat(x, offsets[:-1], axis=0)
    squares = np.add.reduceat(x.astype(np.float64) ** 2, offsets[:-1], axis=0)
    mean = sums / sizes[:, None]
    std = np.sqrt(np.maximum(squares / sizes[:, None] - mean**2, 0.0) + 1e-5)
    pooled = torch.from_numpy(np.concatenate([mean, std], axis=1).astype(np.float32))
    emotions = sorted(manifest["emotion"].unique())
    labels = torch.from_numpy(manifest["emotion"].map(emotions.index).to_numpy())

    def rows(language: str, split: str) -> torch.Tensor:
        keep = (manifest["language"] == language) & (manifest["split"] == split)
        return torch.from_numpy(np.flatnonzero(keep.to_numpy()))

    source, target = rows("en", "train"), rows("zh", "train")
    channels, classes = pooled.shape[1], len(emotions)
    encoder = nn.Sequential(
        nn.BatchNorm1d(channels, affine=False),
        nn.Dropout(0.2),
        nn.Linear(channels, 256),
        nn.BatchNorm1d(256),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.Linear(256, 128),
        nn.ReLU(),
    )
    classifier = nn.Sequential(
        nn.Dropout(0.3), nn.Linear(128, 128), nn.ReLU(), nn.Dropout(0.3), nn.Linear(128, classes)
    )
    discriminator = nn.Sequential(
        nn.Linear(128, 256),
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.Linear(256, 256),
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.Linear(256, 1),
    )
    model = nn.ModuleList([encoder, classifier, discriminator])
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    steps_per_epoch = math.ceil(len(source) / batch_size)
    total = epochs * steps_per_epoch
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: (1 + 10 * step / total) ** -0.75)

    class Reverse(torch.autograd.Function):
        @staticmethod
        def forward(ctx, value, coeff):  # noqa: ANN001, ANN205
            ctx.coeff = coeff
            return value.view_as(value)

        @staticmethod
        def backward(ctx, grad):  # noqa: ANN001, ANN205
            return -ctx.coeff * grad, None

    def stream(indices: torch.Tensor):  # noqa: ANN202
        """Batches of `batch_size` from a cycling random permutation (a batch may span two passes)."""
        order, at = indices[torch.randperm(len(indices))], 0
        while True:
            if at + batch_size > len(order):
                order, at = torch.cat([order[at:], indices[torch.randperm(len(indices))]]), 0
            yield order[at : at + batch_size]
            at += batch_size

    def evaluate(indices: torch.Tensor) -> torch.Tensor:
        model.eval()
        with torch.no_grad():
            probs = torch.cat(
                [classifier(encoder(pooled[part])).softmax(-1) for part in torch.split(indices, 128)]
            )
        model.train()
        return probs

    source_stream, target_stream = stream(source), stream(target)
    best, best_state, step = -math.inf, None, 0
    for _ in range(epochs):
        for _ in range(steps_per_epoch):
            s, t = next(source_stream), next(target_stream)
            progress = step / total
            embedding = encoder(pooled[torch.cat([s, t])])
            logits = classifier(embedding)
            coeff = 2.0 / (1.0 + math.exp(-10 * progress)) - 1.0
            domain = discriminator(Reverse.apply(embedding, coeff)).squeeze(-1)
            truth = torch.cat([torch.zeros(len(s)), torch.ones(len(t))])
            per_row = nn.functional.binary_cross_entropy_with_logits(domain, truth, reduction="none")
            loss = nn.functional.cross_entropy(logits[: len(s)], labels[s])
            loss = loss + 0.5 * (per_row[: len(s)].mean() + per_row[len(s) :].mean())
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            step += 1
        accuracy = {}
        for language in ("en", "zh"):
            val = rows(language, "val")
            accuracy[language] = float((evaluate(val).argmax(-1) == labels[val]).float().mean())
        probs = evaluate(target)
        marginal = probs.mean(0)
        im = float(-(marginal * marginal.log()).sum() + (probs * probs.clamp_min(1e-12).log()).sum(1).mean())
        if im > best:
            best, best_state = im, {k: v.clone() for k, v in model.state_dict().items()}
            best_accuracy = accuracy
    assert best_state is not None
    return {"best_im": best, "steps": step, **{f"{k}_val_acc": v for k, v in best_accuracy.items()}}


# ---- the measured sed-uda processes ----------------------------------------------------------------


def _fit_timer_class():  # noqa: ANN202 - built lazily so the plain process never imports Lightning
    from lightning.pytorch import Callback

    class FitTimer(Callback):
        """Seconds of `trainer.fit` and of its training steps (batch in hand to step done)."""

        def __init__(self) -> None:
            self.steps = 0.0
            self.fit = 0.0

        def on_fit_start(self, trainer, pl_module) -> None:  # noqa: ANN001
            self.fit = time.perf_counter()

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # noqa: ANN001
            self._step = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
            self.steps += time.perf_counter() - self._step

        def on_fit_end(self, trainer, pl_module) -> None:  # noqa: ANN001
            self.fit = time.perf_counter() - self.fit

    return FitTimer


def sed_uda_fit(cache: Path, epochs: int) -> dict[str, float]:
    """`sed-uda fit` as the command line runs it, plus a timer callback."""
    from sed_uda.training_cli import training_cli

    with tempfile.TemporaryDirectory() as root:
        cli = training_cli(fit_arguments(cache, epochs, Path(root)), run=False)
        timer = _fit_timer_class()()
        cli.trainer.callbacks.append(timer)
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    return {"fit_s": timer.fit, "steps_s": timer.steps, "outside_steps": 1 - timer.steps / timer.fit}


def grid_cell(cache: Path, epochs: int) -> dict[str, float]:
    """One grid cell: fit, then test each selection rule's pick (each distinct epoch once)."""
    from sed_uda.experiments.runner import run_experiment

    with tempfile.TemporaryDirectory() as root:
        overrides = fit_arguments(cache, epochs, Path(root))[len(FIT_CONFIGS) :]
        record = run_experiment(FIT_CONFIGS, Path(root), ["--seed_everything=0", "--data.seed=0", *overrides])
    epochs_tested = len({pick["epoch"] for pick in record["selection"].values()})
    return {"fit_s": record["fit_seconds"], "tests": epochs_tested}


def child(kind: str, cache: Path, epochs: int) -> None:
    """Run one measured process's work and print its numbers as one JSON line."""
    work = {"plain": plain_loop, "fit": sed_uda_fit, "cell": grid_cell}[kind]
    print(json.dumps(work(cache, epochs)))


def run_child(kind: str, cache: Path, epochs: int, threads: int) -> tuple[float, float, dict]:
    """Wall seconds, CPU seconds and printed numbers of one measured process."""
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "WANDB_MODE": "disabled",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    command = [sys.executable, __file__, "--child", kind, "--cache", str(cache), "--epochs", str(epochs)]
    started, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds, cpu = time.perf_counter() - started, _children_cpu() - cpu
    if done.returncode != 0:
        sys.exit(f"the {kind} process failed:\n{done.stderr[-3000:]}")
    return seconds, cpu, json.loads(done.stdout.strip().splitlines()[-1])


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--cache", type=Path, default=Path("data/cache"), help="feature cache (sed-uda prepare)"
    )
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--child", choices=["plain", "fit", "cell"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not (args.cache / "meta.json").is_file():
        sys.exit(
            f"no feature cache at {args.cache}. Build the bundled corpus and its cache first:\n"
            "  sed-uda synth --out data/synth_esd\n"
            "  sed-uda prepare --root data/synth_esd --cache data/cache\n"
            "(`make demo` does both), or pass --cache <folder>."
        )
    if args.child:
        child(args.child, args.cache.resolve(), args.epochs)
        return
    print(f"cache {args.cache}, {args.epochs} epochs, {args.threads} thread(s), {args.repeats} repeats")
    times: dict[str, dict[str, list[float]]] = {k: {"wall": [], "cpu": []} for k in ("plain", "fit", "cell")}
    for repeat in range(args.repeats):
        kinds = ["plain", "fit", "cell"] if repeat % 2 == 0 else ["cell", "fit", "plain"]
        numbers = {}
        for kind in kinds:
            wall, cpu, numbers[kind] = run_child(kind, args.cache.resolve(), args.epochs, args.threads)
            times[kind]["wall"].append(wall)
            times[kind]["cpu"].append(cpu)
        line = [f"repeat {repeat + 1}:"]
        for kind in ("plain", "fit", "cell"):
            wall, cpu = times[kind]["wall"][-1], times[kind]["cpu"][-1]
            line.append(f"{kind} {wall:.1f} s wall / {cpu:.1f} s CPU")
            if kind != "plain":
                plain_wall, plain_cpu = times["plain"]["wall"][-1], times["plain"]["cpu"][-1]
                line[-1] += f" ({wall / plain_wall:.2f}x / {cpu / plain_cpu:.2f}x)"
        print(
            " ".join(line)
            + f"; fit: {numbers['fit']['outside_steps']:.0%} of trainer.fit outside training steps"
            + f"; cell: {numbers['cell']['tests']} distinct epochs tested",
            flush=True,
        )
    for kind in ("fit", "cell"):
        ratios = []
        for clock in ("wall", "cpu"):
            median = statistics.median(times[kind][clock])
            ratio = median / statistics.median(times["plain"][clock])
            ratios.append(f"{clock} {median:.1f} s = {ratio:.2f}x")
        print(f"{kind} (bar {BARS[kind]}x), medians: {'; '.join(ratios)} the plain loop's")


if __name__ == "__main__":
    main()
