"""One experiment run: LightningCLI fit, then test the checkpoint each selection rule picks.

Only the signals the requested rules read are computed while training, each rule's pick is saved once
per distinct epoch (weights only), and each distinct epoch is tested once, however many rules pick it.

The run's record (`record.json`, written atomically last) is what tables are built from; a run
directory without it is unfinished and is redone by the grid.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Sequence
from pathlib import Path

from sed_uda.models.selection.rules import RULES

RECORD = "record.json"
OUTDATED = ".outdated-"
"""An outdated run's folder is renamed `<run>.outdated-<settings id>`: kept, and left out of tables."""
ROLES = ("baseline", "method", "upper bound")
"""A table row's role: trained without adaptation on source labels, adapting to the unlabelled
target, or trained on target labels (what adaptation could reach at best)."""


def role(adapts: bool, labelled_domain: str) -> str:
    """The table role of a run (see `ROLES`)."""
    if adapts:
        return "method"
    return "upper bound" if labelled_domain == "target" else "baseline"


def read_record(run_dir: Path) -> dict | None:
    """The record of a finished run, or None."""
    path = Path(run_dir) / RECORD
    return json.loads(path.read_text()) if path.is_file() else None


def run_experiment(
    configs: Sequence[Path],
    run_dir: Path,
    overrides: Sequence[str] = (),
    labels: dict | None = None,
    rules: Sequence[str] = tuple(RULES),
) -> dict:
    """Fit from LightningCLI config files (+ overrides), test under each of `rules` (and the config's
    primary rule), write the record.

    `labels` (method and encoder names, the run's identity) are stored in the record as given, with
    the hashes of the `sed_uda` source files the process had loaded (the run's code version).
    """
    import torch

    from sed_uda.callbacks.checkpoint import SelectionCheckpoint
    from sed_uda.callbacks.history import ValidationHistory
    from sed_uda.callbacks.wandb_logging import finish_wandb_runs
    from sed_uda.experiments.identity import loaded_source_hashes
    from sed_uda.training_cli import training_cli

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    args = [f"--config={c}" for c in configs] + [f"--trainer.default_root_dir={run_dir}", *overrides]
    cli = training_cli(args, run=False)
    trainer, model, data = cli.trainer, cli.model, cli.datamodule
    selection = next(cb for cb in trainer.callbacks if isinstance(cb, SelectionCheckpoint))
    selection.add_rules(rules)
    history = ValidationHistory()
    trainer.callbacks.append(history)

    started = time.perf_counter()
    trainer.fit(model, datamodule=data)
    fit_seconds = time.perf_counter() - started

    picks = {name: dict(pick) for name, pick in selection.picks.items()}
    # Rules often agree on an epoch: test each distinct epoch once, the primary rule's last, so the
    # run's final logs are its.
    primary = selection.rule.name
    last = picks.get(primary, {}).get("epoch")
    epochs = sorted({pick["epoch"] for pick in picks.values()}, key=lambda epoch: epoch == last)
    tested: dict[int, dict[str, float]] = {}
    for epoch in epochs:
        path = next(pick["path"] for pick in picks.values() if pick["epoch"] == epoch)
        results = trainer.test(model, datamodule=data, ckpt_path=path, verbose=False)
        tested[epoch] = {k: float(v) for result in results for k, v in result.items()}
    finish_wandb_runs(trainer)

    hp = model.hparams
    record = {
        **(labels or {}),
        "direction": hp.direction,
        "source_language": data.source,
        "target_language": data.target,
        "role": role(model.needs_unlabelled, hp.labelled_domain),
        "adapts": model.needs_unlabelled,
        "labelled_domain": hp.labelled_domain,
        "normalization": data.normalization,
        "cache_dir": str(data.cache_dir),
        "features": list(data.features),
        "threads": torch.get_num_threads(),
        "host": socket.gethostname(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "seed": cli.config.get("seed_everything"),
        "configs": [str(c) for c in configs],
        "overrides": list(overrides),
        "epochs": trainer.current_epoch,
        "steps": trainer.global_step,
        "fit_seconds": fit_seconds,
        "primary_rule": primary,
        "selection": {
            name: {
                "checkpoint": pick["path"],
                "epoch": pick["epoch"],
                "val_score": pick["score"],
                "uses_target_labels": RULES[name].uses_target_labels,
                "test": tested[pick["epoch"]],
            }
            for name, pick in picks.items()
        },
        "history": history.epochs,
        "code": loaded_source_hashes(),
    }
    _write_json_atomic(run_dir / RECORD, record)
    return record


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)
