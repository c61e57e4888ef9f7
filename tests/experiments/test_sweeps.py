"""W&B sweep files: the agent's own command builder yields arguments LightningCLI applies unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

from sed_uda.training_cli import training_cli
from tests.conftest import FAST, REPO

SWEEPS = sorted((REPO / "configs" / "sweeps").glob("*.yaml"))


def _pick(spec: dict, position: int) -> object:
    """A concrete value the agent could send: a listed value, or a bound of a distribution."""
    if "values" in spec:
        return spec["values"][position % len(spec["values"])]
    return spec["max"] if position % 2 else spec["min"]


def _resolve(obj, path: str):  # noqa: ANN001, ANN202 - walks the instantiated objects and their configs
    for part in path.split("."):
        if isinstance(obj, list | tuple):
            obj = obj[-1]  # jsonargparse applies `--model.adaptations.init_args.x` to the list's last item
        if hasattr(obj, "hparams") and part in obj.hparams:
            obj = obj.hparams[part]
        elif isinstance(obj, dict):
            obj = obj[part] if part in obj else obj["init_args"][part]  # `model.encoder.width` style
        else:
            obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize("sweep_file", SWEEPS, ids=lambda p: p.stem)
@pytest.mark.parametrize("position", [0, 1])
def test_sweep_command_reaches_model_and_data(
    sweep_file: Path, position: int, tiny_cache: Path, tmp_path: Path
):
    sweep = yaml.safe_load(sweep_file.read_text())
    assert "target_acc" not in sweep["metric"]["name"], "the default sweep metric must not need target labels"
    chosen = {name: _pick(spec, position) for name, spec in sweep["parameters"].items()}
    flags = create_sweep_command_args({"args": {k: {"value": v} for k, v in chosen.items()}})["args"]
    command = [part for part in sweep["command"] if part != "${env}"]
    assert command[:2] == ["sed-uda", "fit"] and command[-1] == "${args}"
    args = [*command[1:-1], *flags]
    args = [str(REPO / a) if a.startswith("configs/") else a for a in args]
    missing = [a for a in args if a.startswith(str(REPO / "configs")) and not Path(a).is_file()]
    assert not missing, f"{sweep_file.name} names config files that do not exist: {missing}"
    cli = training_cli(
        [
            *args,
            f"--data.cache_dir={tiny_cache}",
            f"--trainer.default_root_dir={tmp_path}",
            *[f for f in FAST if not f.startswith("--data.batch_size")],
            "--trainer.max_steps=2",
            "--trainer.limit_val_batches=1",
        ]
    )
    assert cli.trainer.state.finished
    roots = {"model": cli.model, "data": cli.datamodule}
    for name, value in chosen.items():
        group, _, attr = name.partition(".")
        assert _resolve(roots[group], attr) == value, f"{name} did not reach {group}"
