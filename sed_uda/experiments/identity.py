"""What makes two grid runs the same run: resolved configuration, feature cache and code version.

A finished run is reused only while all three hold. The configuration is the one LightningCLI composes
from the run's files and overrides (so a comment edit changes nothing, a changed default of an included
file does); the cache counts by its content (`meta.json` without where it lies or when it was written);
the code counts by the hashes of the `sed_uda` source files the run had loaded, so a changed method file
is noticed and an edit of an unrelated module (the table, say) re-runs nothing.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
"""The `sed_uda` package folder: source files are named relative to its parent (`sed_uda/...`)."""

_NOT_SETTINGS = {
    "config",
    "seed_everything",
    "untrained",
    "data.seed",
    "data.cache_dir",
    "trainer.default_root_dir",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "selection.dirpath",
}
"""Resolved keys that are not the run's settings: its seed (part of the run id), where it writes, where
the cache lies (its content is fingerprinted instead) and display-only switches."""
_CACHE_PLACE = ("corpus_root", "created")
_ORCHESTRATION = {
    f"sed_uda/experiments/{name}.py" for name in ("grid", "launchers", "claims", "quiet", "identity")
}
"""Modules that decide which runs run and where, never what a run computes: not part of its code."""
_resolved: dict[str, dict] = {}


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def resolved_settings(configs: Sequence[Path], overrides: Sequence[str]) -> dict:
    """{"settings": the composed configuration of a run without its seed, output folders and display
    switches, "cache_dir": its cache folder, "config": LightningCLI's namespace}. Computed once per
    distinct content of the files and overrides."""
    texts = [path.read_text() for path in with_includes(configs)]
    key = _digest([[str(c) for c in configs], texts, list(overrides)])
    if key not in _resolved:
        from sed_uda.training_cli import resolve_config

        config = resolve_config([*(f"--config={c}" for c in configs), *overrides])
        values = config.as_dict()
        _resolved[key] = {
            "settings": _without(values, _NOT_SETTINGS),
            "cache_dir": values["data"]["cache_dir"],
            "config": config,
        }
    return _resolved[key]


def with_includes(configs: Sequence[Path]) -> list[Path]:
    """The config files and, depth first, every YAML file they name (`trainer: ../trainer/cpu.yaml`)."""
    from omegaconf import OmegaConf

    found: list[Path] = []

    def visit(path: Path) -> None:
        if path in found:
            return
        found.append(path)
        stack = [OmegaConf.to_container(OmegaConf.load(path))]
        while stack:
            value = stack.pop()
            if isinstance(value, dict):
                stack.extend(value.values())
            elif isinstance(value, list):
                stack.extend(value)
            elif isinstance(value, str) and value.endswith((".yaml", ".yml")):
                included = (path.parent / value).resolve()
                if included.is_file():
                    visit(included)

    for config in configs:
        visit(Path(config).resolve())
    return found


def _without(config: dict, dropped: set[str], prefix: str = "") -> dict:
    out = {}
    for name, value in config.items():
        dotted = prefix + name
        if dotted in dropped or name == "__path__":
            continue
        out[name] = _without(value, dropped, dotted + ".") if isinstance(value, dict) else value
    return out


def cache_fingerprint(cache_dir: Path | str) -> str:
    """Hash of a feature cache's `meta.json` (its format, feature settings, corpus hash and counts),
    "missing" for a folder without one."""
    meta = Path(cache_dir) / "meta.json"
    if not meta.is_file():
        return "missing"
    values = json.loads(meta.read_text())
    return _digest({k: v for k, v in values.items() if k not in _CACHE_PLACE})


def settings_id(configs: Sequence[Path], overrides: Sequence[str]) -> str:
    """Identity shared by every seed of one table cell: resolved settings and cache fingerprint."""
    resolved = resolved_settings(configs, overrides)
    return _digest([resolved["settings"], cache_fingerprint(resolved["cache_dir"])])


def loaded_source_hashes() -> dict[str, str]:
    """`sed_uda/...py` -> content hash, for every `sed_uda` module loaded in this process except the
    grid's own orchestration. A conservative code version: a grid running in one process also counts
    modules that earlier runs loaded (other methods' files)."""
    hashes = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        # the name test first: resolving the paths of thousands of library modules took a second a run
        if (
            path
            and "sed_uda" in path
            and path.endswith(".py")
            and Path(path).resolve().is_relative_to(PACKAGE_ROOT)
        ):
            source = Path(path).resolve()
            hashes[str(source.relative_to(PACKAGE_ROOT.parent))] = _file_hash(source)
    return {name: hashes[name] for name in sorted(hashes) if name not in _ORCHESTRATION}


def changed_sources(recorded: dict[str, str]) -> list[str]:
    """The recorded source files whose content differs now (or that are gone), in order."""
    root = PACKAGE_ROOT.parent
    return [name for name, digest in recorded.items() if _file_hash(root / name) != digest]


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else "missing"
