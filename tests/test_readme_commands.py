"""Every `sed-uda ...` and `make ...` line of README.md's code blocks, run as a user types it.

Cheap commands run for real on the tiny corpus, with the README's data paths and sizes swapped for the
session fixtures'. Long ones are checked as far as they go without training for minutes: `grid` with
`--dry-run` (every run's configuration resolved), GPU or multi-GPU training with `--print_config`,
`demo` for real on the tiny corpus with its grid cut to one direction and two steps, and `make` targets
with `make -n` (the sed-uda lines that prints are checked in turn). A README line this table cannot run
fails, naming the line, so README edits stay honest.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sed_uda.training_cli import gpu_note, resolve_config
from tests.conftest import FAST, REPO
from tests.test_cli import sed_uda

README = REPO / "README.md"
SHELL_VARIABLES = {"$norm": "global", "${enc}": "cnn1d", "${s}": "1"}
"""Values for the shell variables of README loops (`for norm in global speaker`): one is run."""
TINY_SYNTH = {"--speakers-per-language": "2", "--utterances-per-emotion": "8", "--seed": "0"}
"""The size of the session fixture `tiny_corpus` (tests/conftest.py), which synth then finds complete."""


@dataclass
class Fixtures:
    """Stand-ins for the README's data folders."""

    corpus: Path
    cache: Path
    runs: Path
    tmp: Path
    capsys: pytest.CaptureFixture[str]


def _readme_commands() -> Iterator[tuple[int, list[str]]]:
    """(line number, argv) of each sed-uda or make command in a fenced code block; `[--opt]` gives two."""
    in_block, output, pending = False, False, ""
    for number, line in enumerate(README.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith("```"):
            in_block, output = not in_block, line.strip() == "```text"  # text blocks show output
            continue
        if in_block and line.endswith("\\"):  # continued on the next line
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        for variable, value in SHELL_VARIABLES.items():
            line = line.replace(variable, value)
        for part in line.split("&&") if in_block and not output else []:
            words = part.split()
            if not words or (Path(words[0]).name != "sed-uda" and words[0] != "make"):
                continue
            argv = shlex.split(part, comments=True)
            optional = [w for w in argv if w.startswith("[-") and w.endswith("]") and '"' not in w]
            yield number, [word for word in argv if word not in optional]
            if optional:
                yield number, [word.strip("[]") for word in argv]


def _set(argv: list[str], option: str, value: str) -> list[str]:
    """`argv` with `option`'s value replaced (`--opt v` or `--opt=v`), or the option added."""
    out, skip = [], False
    for position, word in enumerate(argv):
        if skip:
            skip = False
        elif word == option:
            skip = position + 1 < len(argv)
        elif not word.startswith(option + "="):
            out.append(word)
    return [*out, f"{option}={value}"]


def _ok(argv: list[str], fx: Fixtures) -> str:
    status, out, err = sed_uda(argv, fx.capsys)
    assert status == 0, f"`sed-uda {shlex.join(argv)}` failed:\n{err}"
    return out


def _synth(argv: list[str], fx: Fixtures) -> None:
    for option, value in TINY_SYNTH.items():
        argv = _set(argv, option, value)
    assert "nothing to do" in _ok(_set(argv, "--out", str(fx.corpus)), fx)


def _prepare(argv: list[str], fx: Fixtures) -> None:
    """The default front end finds the session cache up to date; another one builds its own cache."""
    front_end = _value(argv, "--front-end", "librosa")
    cache = fx.cache if front_end == "librosa" else fx.tmp / f"cache_{Path(front_end).stem}"
    argv = _set(_set(argv, "--root", str(fx.corpus)), "--cache", str(cache))
    assert ("cache up to date" if cache == fx.cache else f"wrote {cache}") in _ok(argv, fx)


def _probe(argv: list[str], fx: Fixtures) -> None:
    assert "zh" in _ok(_set(argv, "--cache", str(fx.cache)), fx)


def _diagnose(argv: list[str], fx: Fixtures) -> None:
    out = _set(_set(argv, "--cache", str(fx.cache)), "--out", str(fx.tmp / "diagnosis.md"))
    assert "| block | statistic |" in _ok(out, fx)


def _study(argv: list[str], fx: Fixtures) -> None:
    """On the tiny cache only, one seed, one epoch, the shipped trade-off."""
    for option, value in (
        ("--corpora", str(fx.cache)),
        ("--seeds", "0"),
        ("--epochs", "1"),
        ("--scales", "1"),
    ):
        argv = _set(argv, option, value)
    argv = _set(_set(argv, "--runs-dir", str(fx.tmp / "study")), "--out", str(fx.tmp / "study.md"))
    assert "ORACLE choice" in _ok(argv, fx)


def _grid(argv: list[str], fx: Fixtures) -> None:
    """Dry run; a grid over corpora gets the tiny cache for each of its corpora."""
    import yaml

    corpora = yaml.safe_load((REPO / _value(argv, "--config", "")).read_text()).get("corpora")
    if corpora:
        argv = _set(argv, "--corpora", json.dumps({name: str(fx.cache) for name in corpora}))
    assert "resolves" in _ok([*argv, "--dry-run"], fx)


def _table(argv: list[str], fx: Fixtures) -> None:
    out = fx.tmp / "results.md"
    printed = _ok(_set(_set(argv, "--runs", str(fx.runs)), "--out", str(out)), fx)
    assert printed.strip() and out.read_text().strip() == printed.strip()


def _classify(argv: list[str], fx: Fixtures) -> None:
    """With a tiny checkpoint of the normalisation the README's names (`runs/use/<normalisation>/...`;
    per speaker otherwise), on tiny test recordings: one folder, or one folder per speaker for
    `--speaker-from parent-folder`; a `--speaker-from` CSV becomes the tiny cache's manifest; --out keeps
    its suffix."""
    options, position = [], 1
    while position < len(argv):
        word = argv[position]
        takes_value = word.startswith("--") and "=" not in word
        if word.startswith("-"):
            options += argv[position : position + 1 + takes_value]
        position += 1 + (takes_value and word.startswith("-"))
    given = options[options.index("--ckpt") + 1]
    normalization = next((n for n in ("global", "utterance") if f"/{n}/" in given), "speaker")
    argv = _set(["classify", *options], "--ckpt", str(_tiny_checkpoint(fx, normalization)))
    if "--out" in options:
        argv = _set(
            argv, "--out", str(fx.tmp / f"predictions{Path(options[options.index('--out') + 1]).suffix}")
        )
    recordings = fx.corpus / "0011" / "Angry" / "test"
    if "--speaker-from" in options:
        speaker_from = options[options.index("--speaker-from") + 1]
        if speaker_from == "parent-folder":
            recordings = fx.tmp / "by_speaker"
            for wav in fx.corpus.glob("*/*/test/*.wav"):
                (recordings / wav.parent.parent.parent.name).mkdir(parents=True, exist_ok=True)
                (recordings / wav.parent.parent.parent.name / wav.name).symlink_to(wav)
        else:
            argv = _set(argv, "--speaker-from", str(fx.cache / "manifest.csv"))
    assert "emotion" in _ok([*argv, str(recordings)], fx)


def _tiny_checkpoint(fx: Fixtures, normalization: str) -> Path:
    """The tiny grid's checkpoint (per speaker), or a tiny fit of the same run with another normalisation."""
    if normalization == "speaker":
        return next(fx.runs.rglob("best-target_im.ckpt"))
    root = fx.runs.parent / f"{fx.runs.name}_{normalization}"
    if not (root / "checkpoints" / "last.ckpt").is_file():
        from sed_uda.training_cli import training_cli

        configs = [f"--config={REPO / 'configs' / 'experiment' / 'en2zh.yaml'}"]
        tiny = [*FAST, "--trainer.max_epochs=1", "--data.steps_per_epoch=2"]
        training_cli(
            [
                "fit",
                *configs,
                f"--data.cache_dir={fx.cache}",
                f"--trainer.default_root_dir={root}",
                *tiny,
                f"--data.normalization={normalization}",
            ]
        )
    return root / "checkpoints" / "last.ckpt"


def _demo(argv: list[str], fx: Fixtures) -> None:
    """The demo's whole path (corpus found, cache up to date, its grid's cells trained and tested, table)
    on the tiny corpus, with the demo grid cut to one direction, one epoch of two steps."""
    import yaml

    data = fx.tmp / "data"
    data.mkdir()
    (data / "synth_esd").symlink_to(fx.corpus)
    (data / "cache").symlink_to(fx.cache)
    grid_config = REPO / _value(argv, "--grid-config", "configs/grid/demo.yaml")
    grid = yaml.safe_load(grid_config.read_text())
    grid["directions"] = dict(list(grid["directions"].items())[:1])
    grid["runs_dir"] = str(fx.tmp / "runs")
    tiny_fit = ["--trainer.max_epochs=1", "--data.steps_per_epoch=2"]
    grid["overrides"] = [*grid.get("overrides", []), *FAST, *tiny_fit]
    tiny = fx.tmp / "demo.yaml"
    tiny.write_text(yaml.safe_dump(grid))
    out = fx.tmp / "demo_results.md"
    argv = _set(_set(_set(argv, "--data", str(data)), "--grid-config", str(tiny)), "--out", str(out))
    printed = _ok(argv, fx)
    methods = {Path(cell["adaptation"]).stem for cell in grid["cells"]}
    assert all(f"| {method} " in out.read_text() for method in methods)
    assert "torch threads per run: 1 " in printed


def _value(argv: list[str], option: str, default: str) -> str:
    """The value of `option` in `argv` (`--opt v` or `--opt=v`), or `default`."""
    for position, word in enumerate(argv):
        if word == option and position + 1 < len(argv):
            return argv[position + 1]
        if word.startswith(option + "="):
            return word.split("=", 1)[1]
    return default


def _training(argv: list[str], fx: Fixtures) -> None:
    if "--print_config" in argv:
        _ok(argv, fx)
        return
    resolved = resolve_config(argv[1:])
    if gpu_note(resolved) or "ddp" in str(resolved.trainer.strategy):
        _ok([*argv, "--print_config"], fx)  # needs GPUs: parsed and composed, not trained
        return
    argv = _set(_set(argv, "--data.cache_dir", str(fx.cache)), "--trainer.default_root_dir", str(fx.tmp))
    _ok([*argv, *FAST, "--trainer.fast_dev_run=1"], fx)


def _make(argv: list[str], fx: Fixtures) -> None:
    """`make -n TARGET` (prints, runs nothing); the sed-uda lines it would run are checked in turn."""
    dry = subprocess.run(["make", "-n", "-C", str(REPO), *argv[1:]], capture_output=True, text=True)
    assert dry.returncode == 0, f"`{shlex.join(argv)}`: {dry.stderr}"
    for line in dry.stdout.splitlines():
        words = shlex.split(line)
        if words and Path(words[0]).name == "sed-uda":
            run(words[1:], fx)


RUNNERS: dict[str, Callable[[list[str], Fixtures], None]] = {
    "synth": _synth,
    "prepare": _prepare,
    "probe": _probe,
    "diagnose": _diagnose,
    "study": _study,
    "grid": _grid,
    "table": _table,
    "demo": _demo,
    "classify": _classify,
    "fit": _training,
    "validate": _training,
    "test": _training,
    "predict": _training,
}
"""How each sed-uda command of the README is run cheaply."""


def run(argv: list[str], fx: Fixtures) -> None:
    """Run one README command line (without the `sed-uda` word) the cheap way its command allows."""
    runner = RUNNERS.get(argv[0] if argv else "")
    assert runner is not None, (
        f"README command `sed-uda {shlex.join(argv)}`: tests/test_readme_commands.py does not know how to "
        "run it cheaply; add its command to RUNNERS"
    )
    runner(argv, fx)


COMMANDS = list(_readme_commands())


@pytest.fixture(scope="module")
def tiny_runs(tiny_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished one-cell grid (DANN 1D-CNN en->zh, one epoch of two steps) made by `sed-uda grid`."""
    runs = tmp_path_factory.mktemp("runs")
    overrides = [
        *FAST,
        f"--data.cache_dir={tiny_cache}",
        "--trainer.max_epochs=1",
        "--data.steps_per_epoch=2",
    ]
    configs = REPO / "configs"
    directions = json.dumps({"en2zh": str(configs / "experiment" / "en2zh.yaml")})
    cells = json.dumps(
        [
            {
                "adaptation": str(configs / "adaptation" / "dann.yaml"),
                "encoder": str(configs / "encoder" / "cnn1d.yaml"),
            }
        ]
    )
    argv = ["grid", "--name=tiny", f"--runs-dir={runs}", f"--directions={directions}", "--seeds=[0]"]
    try:
        from sed_uda.cli import main

        main([*argv, f"--cells={cells}", f"--overrides={json.dumps(overrides)}"])
    except SystemExit as exit_:
        assert exit_.code in (0, None)
    return runs


def test_the_readme_has_commands_of_every_kind() -> None:
    kinds = {argv[0] if argv[0] == "make" else argv[1] for _, argv in COMMANDS}
    assert {"make", "synth", "prepare", "probe", "fit", "grid", "table"} <= kinds


@pytest.mark.parametrize(("number", "argv"), COMMANDS, ids=[f"L{n}-{shlex.join(a)}" for n, a in COMMANDS])
def test_readme_command(
    number: int,
    argv: list[str],
    tiny_corpus: Path,
    tiny_cache: Path,
    tiny_runs: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(REPO)  # README commands run from the repository root
    fx = Fixtures(tiny_corpus, tiny_cache, tiny_runs, tmp_path, capsys)
    if argv[0] == "make":
        _make(argv, fx)
    else:
        run(argv[1:], fx)
