"""The `sed-uda` console script as users type it: spellings, flags, and one line for every failure."""

from __future__ import annotations

import errno
import json
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
import yaml

from sed_uda.cli import TOOL_COMMANDS, TRAINING_COMMANDS, main
from sed_uda.corpus import synth as synth_module
from sed_uda.experiments.grid import load_grid
from sed_uda.features import cache as cache_module
from sed_uda.features.frontends.librosa import LibrosaFrames
from sed_uda.models.selection.rules import RULES
from sed_uda.models.uda import UDAModule
from tests.conftest import FAST, REPO

CONFIGS = REPO / "configs"
DANN = [
    "--config",
    str(CONFIGS / "experiment" / "en2zh.yaml"),
    "--config",
    str(CONFIGS / "adaptation" / "dann.yaml"),
]
RESNET = [
    *[
        "--config",
        str(CONFIGS / "experiment" / "zh2en.yaml"),
        "--config",
        str(CONFIGS / "encoder" / "resnet50.yaml"),
    ],
    *[
        "--config",
        str(CONFIGS / "adaptation" / "dann.yaml"),
        "--trainer",
        str(CONFIGS / "trainer" / "gpu.yaml"),
    ],
]
DDP = [*DANN, "--trainer", str(CONFIGS / "trainer" / "ddp.yaml")]


def sed_uda(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of `sed-uda ARGV`, run in this process as the console script runs."""
    try:
        main(argv)
        status = 0
    except SystemExit as exit_:
        status = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def one_line(err: str, command: str) -> str:
    """The error line of a failed command, checking there is nothing else but an optional hint."""
    lines = err.strip().splitlines()
    assert lines[0].startswith(f"sed-uda {command}: error: "), err
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].strip().startswith("see `sed-uda")), err
    assert "Traceback" not in err and "usage:" not in err
    return lines[0]


def test_overview_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = sed_uda([], capsys)
    assert status == 0
    listed = re.findall(r"^  ([a-z]+) {2,}\S", out, flags=re.M)
    assert listed == list(TOOL_COMMANDS)  # each tool command once, in the order `sed-uda` dispatches them
    assert re.search(r"^  fit \| validate \| test \| predict --config ", out, flags=re.M), out


@pytest.fixture
def prepare_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """What `sed-uda prepare` asks of prepare_cache, without building anything."""
    calls: list[dict] = []
    monkeypatch.setattr(
        cache_module, "prepare_cache", lambda root, cache, **kw: calls.append({"root": root, **kw})
    )
    return calls


@pytest.mark.parametrize(
    ("options", "skip_bad", "workers"),
    [
        ([], False, 2),
        (["--skip-bad"], True, 2),
        (["--skip_bad", "--workers", "3"], True, 3),
        (["--skip-bad", "--workers=1"], True, 1),
        (["--skip-bad", "false"], False, 2),
        (["--skip-bad=true"], True, 2),
        (["--no-skip-bad"], False, 2),
        (["--skip-bad", "--no-skip-bad"], False, 2),
    ],
)
def test_boolean_flags_and_dashed_or_underscored_options(
    options: list[str], skip_bad: bool, workers: int, prepare_calls: list[dict], capsys
) -> None:
    status, _, err = sed_uda(["prepare", "--root=my-corpus_dir", *options], capsys)
    assert status == 0, err
    assert prepare_calls == [
        {
            "root": Path("my-corpus_dir"),
            "workers": workers,
            "skip_bad": skip_bad,
            "front_end": LibrosaFrames(),
            "device": "cpu",
        }
    ]


def test_help_shows_the_spellings_users_type(capsys: pytest.CaptureFixture[str]) -> None:
    _, prepare_help, _ = sed_uda(["prepare", "--help"], capsys)
    assert "--skip-bad | --no-skip-bad" in prepare_help and "skip_bad" not in prepare_help
    _, synth_help, _ = sed_uda(["synth", "--help"], capsys)
    assert "--speakers-per-language" in synth_help and "speakers_per_language" not in synth_help


def test_table_help_lists_every_selection_rule(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = sed_uda(["table", "--help"], capsys)
    assert status == 0
    choices = re.search(r"--rule \{([^}]*)\}", out)
    assert choices is not None, out
    assert choices.group(1).split(",") == list(RULES)


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["prepare", "--workers", "abc"], "--workers"),
        (["table", "--rule", "target_acc"], "--rule"),
        (["synth", "--bogus-option", "1"], "--bogus-option"),
        (["fit", *DANN, "--model.lr", "fast"], "--model.lr"),
        (["fit", *DANN, "--data.normalization", "bogus"], "--data.normalization"),
        (["fit", "--trainer.bogus", "1"], "--trainer.bogus"),
        (["fit", "--config", "no/such/experiment.yaml"], "no/such/experiment.yaml"),
    ],
)
def test_argument_errors_are_one_line_and_a_hint(argv: list[str], names: str, capsys) -> None:
    status, _, err = sed_uda(argv, capsys)
    assert status == 2
    assert names in one_line(err, argv[0])
    assert err.strip().splitlines()[-1].strip() == f"see `sed-uda {argv[0]} --help`"


def test_an_unknown_command_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = sed_uda(["trian"], capsys)
    assert status == 2 and "unknown command 'trian'" in one_line(err, "trian") and "fit" in err


def test_training_options_accept_dashes_in_names_only(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["fit", *DANN, "--trainer.max-epochs=3", "--data.batch-size", "7"]
    status, out, _ = sed_uda([*argv, "--data.cache-dir=my-cache_dir", "--print_config"], capsys)
    printed = yaml.safe_load(out)
    assert status == 0
    assert (printed["trainer"]["max_epochs"], printed["data"]["batch_size"]) == (3, 7)
    assert printed["data"]["cache_dir"] == "my-cache_dir"


@pytest.mark.slow
def test_print_config_shows_composed_experiment_without_warnings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["sed-uda", "fit", *RESNET, "--print_config"])  # as the script runs
    with warnings.catch_warnings(record=True) as warned, pytest.raises(SystemExit) as exit_:
        warnings.simplefilter("always")
        main()
    out, err = capsys.readouterr()
    assert exit_.value.code in (0, None), err
    printed = yaml.safe_load(out)
    assert printed["model"]["encoder"]["class_path"].endswith("ResNet50Encoder")
    assert printed["model"]["adaptations"][0]["class_path"].endswith(".DANN")
    assert (printed["data"]["source"], printed["data"]["target"]) == ("zh", "en")
    assert printed["trainer"]["precision"] == "bf16-mixed"
    said = err + "".join(str(w.message) for w in warned)
    assert "args parameter is intended" not in said


@pytest.mark.parametrize(
    ("argv", "extra"),
    [(RESNET, ""), (DDP, "--trainer.devices 1")],
)
def test_gpu_configs_on_a_machine_without_gpu_say_how_to_use_the_cpu(
    argv: list[str], extra: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    status, _, err = sed_uda(["fit", *argv], capsys)
    line = one_line(err, "fit")
    assert status == 1 and "needs a GPU" in line and argv[1] in line
    assert "--trainer.accelerator cpu --trainer.precision 32-true" in line and extra in line


def test_a_gpu_asked_for_on_the_command_line_is_blamed_on_the_command_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    status, _, err = sed_uda(["fit", *DANN, "--trainer.accelerator", "gpu"], capsys)
    line = one_line(err, "fit")
    assert status == 1 and line.startswith("sed-uda fit: error: --trainer.accelerator gpu: needs a GPU")
    assert "en2zh.yaml" not in line


def test_config_values_refused_by_a_class_are_one_line(tiny_cache: Path, tmp_path: Path, capsys) -> None:
    base = ["fit", *DANN, f"--trainer.default_root_dir={tmp_path}"]
    status, _, err = sed_uda([*base, f"--data.cache_dir={tiny_cache}", "--data.batch_size=0"], capsys)
    assert status == 1 and "invalid configuration: " in one_line(err, "fit") and "batch_size" in err
    status, _, err = sed_uda([*base, f"--data.cache_dir={tmp_path / 'no-cache'}"], capsys)
    assert status == 1 and f"{tmp_path / 'no-cache'}" in one_line(err, "fit") and "sed-uda prepare" in err


@pytest.mark.slow
def test_prepare_on_missing_corpus_is_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sed_uda.cli", "prepare", "--root", str(tmp_path / "nope")]
        + ["--cache", str(tmp_path / "c")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert str(tmp_path / "nope") in one_line(result.stderr, "prepare")
    assert not (tmp_path / "c" / "meta.json").exists()


def test_a_bug_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    def bug(*args: object, **kwargs: object) -> None:
        raise ValueError("operands could not be broadcast together")  # as deep inside numpy

    monkeypatch.setattr(cache_module, "prepare_cache", bug)
    with pytest.raises(ValueError, match="broadcast"):
        main(["prepare"])


def test_ctrl_c_is_one_line_and_status_130(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cache_module, "prepare_cache", interrupted)
    status, _, err = sed_uda(["prepare"], capsys)
    assert status == 130 and "interrupted (Ctrl-C)" in one_line(err, "prepare")


def test_too_few_speaker_outputs_for_the_corpus_is_one_line_with_the_fix(
    tiny_cache: Path, tmp_path: Path, capsys
) -> None:
    """A speaker-adversarial config sized for fewer speakers than the corpus has (the tiny corpus: 4)."""
    config = yaml.safe_load((CONFIGS / "adaptation" / "speaker_adv.yaml").read_text())
    config["model"]["adaptations"][0]["init_args"]["speakers"] = 2
    (tmp_path / "two_speakers.yaml").write_text(yaml.safe_dump(config))
    argv = [
        "fit",
        f"--config={CONFIGS / 'experiment' / 'en2zh.yaml'}",
        f"--config={tmp_path / 'two_speakers.yaml'}",
        f"--data.cache_dir={tiny_cache}",
        f"--trainer.default_root_dir={tmp_path / 'run'}",
        "--trainer.logger=false",
    ]
    status, _, err = sed_uda([*argv, *FAST], capsys)
    assert status == 2
    assert "classifier has 2 outputs; set the SpeakerAdversarial entry's init_args speakers" in one_line(
        err, "fit"
    )


def test_ctrl_c_during_training_is_status_130(
    tiny_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(UDAModule, "training_step", interrupted)
    argv = [
        "fit",
        *DANN,
        f"--data.cache_dir={tiny_cache}",
        f"--trainer.default_root_dir={tmp_path}",
    ]
    status, _, err = sed_uda([*argv, *FAST], capsys)
    last = err.strip().splitlines()[-1]
    assert status == 130 and "interrupted (Ctrl-C)" in last
    assert "the same command and --ckpt_path last" in last


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (errno.ENOSPC, "the disk is full"),
        (errno.EACCES, "permission denied"),
        (errno.EROFS, "read-only"),
        (errno.ENOTDIR, "is a file, not a folder"),
    ],
)
def test_file_system_errors_are_one_line_naming_the_file(
    code: int, words: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    def failing(*args: object, **kwargs: object) -> None:
        raise OSError(code, "os words", "data/cache/features.npy.new.tmp")

    monkeypatch.setattr(cache_module, "prepare_cache", failing)
    status, _, err = sed_uda(["prepare"], capsys)
    line = one_line(err, "prepare")
    assert status == 1 and "data/cache/features.npy.new.tmp" in line and words in line


def test_synth_into_a_folder_of_other_files_is_one_line_and_changes_nothing(tmp_path: Path, capsys) -> None:
    (tmp_path / "notes.txt").write_text("keep me")
    status, _, err = sed_uda(["synth", "--out", str(tmp_path)], capsys)
    assert status == 1 and f"{tmp_path}: already holds files" in one_line(err, "synth")
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_synth_into_a_folder_it_cannot_write_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    def denied(out: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(out / "sed_uda_synth.json"))

    monkeypatch.setattr(synth_module, "_write_marker", denied)
    status, _, err = sed_uda(["synth", "--out", str(tmp_path / "corpus")], capsys)
    assert status == 1 and "sed_uda_synth.json: permission denied" in one_line(err, "synth")


def test_output_paths_at_or_below_a_file_are_one_line(tiny_corpus: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "file").write_text("keep me")
    status, _, err = sed_uda(["synth", "--out", str(tmp_path / "file" / "corpus")], capsys)
    assert status == 1 and "is a file, not a folder" in one_line(err, "synth")
    status, _, err = sed_uda(
        ["prepare", "--root", str(tiny_corpus), "--cache", str(tmp_path / "file")], capsys
    )
    assert status == 1 and "is a file, not a folder" in one_line(err, "prepare")
    assert (tmp_path / "file").read_text() == "keep me"


def test_a_cache_folder_that_cannot_be_written_is_one_line(
    tiny_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    def denied(**kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(kwargs["dir"]))

    monkeypatch.setattr(cache_module.tempfile, "TemporaryFile", denied)
    status, _, err = sed_uda(["prepare", "--root", str(tiny_corpus), "--cache", str(tmp_path / "c")], capsys)
    assert status == 1 and f"{tmp_path / 'c'}: permission denied" in one_line(err, "prepare")


def test_demo_on_a_folder_synth_did_not_write_is_one_line(tmp_path: Path, capsys) -> None:
    (tmp_path / "synth_esd" / "0001").mkdir(parents=True)
    status, _, err = sed_uda(["demo", "--data", str(tmp_path)], capsys)
    assert status == 1 and "synth_esd: already holds files" in one_line(err, "demo")


def _one_record(runs: Path) -> None:
    """The smallest finished run `table` reads."""
    run = runs / "dann_cnn1d_en2zh" / "seed0"
    run.mkdir(parents=True)
    test = {"en2zh/test/target_acc": 0.5, "en2zh/test/target_f1": 0.4}
    selection = {"source_acc": {"uses_target_labels": False, "test": test}}
    record = {"method": "dann", "encoder": "cnn1d", "direction": "en2zh", "seed": 0, "selection": selection}
    (run / "record.json").write_text(json.dumps(record))


def test_table_outputs_that_cannot_be_written_are_one_line(tmp_path: Path, capsys) -> None:
    _one_record(tmp_path / "runs")
    (tmp_path / "file").write_text("keep me")
    (tmp_path / "folder.md").mkdir()
    for out, words in ((tmp_path / "file" / "results.md", "in the way"), (tmp_path / "folder.md", "folder")):
        status, _, err = sed_uda(["table", "--runs", str(tmp_path / "runs"), "--out", str(out)], capsys)
        assert status == 1 and words in one_line(err, "table")
    assert (tmp_path / "file").read_text() == "keep me"
    status, out, _ = sed_uda(
        ["table", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "t.md")], capsys
    )
    assert status == 0 and "0.500" in out and (tmp_path / "t.md").is_file()


def test_grid_without_a_config_says_how_to_give_one(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = sed_uda(["grid"], capsys)
    assert status == 2 and "sed-uda grid --config configs/grid/" in one_line(err, "grid")


@pytest.mark.slow
def test_grid_dry_run_resolves_every_run_without_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.chdir(REPO)  # grid configs name their files relative to the repository root
    runs = tmp_path / "runs"
    status, out, err = sed_uda(
        ["grid", "--config", "configs/grid/demo.yaml", f"--runs-dir={runs}", "--dry-run"], capsys
    )
    assert status == 0, err
    n = len(load_grid(REPO / "configs" / "grid" / "demo.yaml").runs())
    assert f"demo: every configuration of the {n} runs resolves" in out and out.count(": to run") == n
    assert not runs.exists()


def test_a_bare_fit_says_what_is_missing(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = sed_uda(["fit"], capsys)
    line = one_line(err, "fit")
    assert status == 2 and "no model configured" in line and "--config configs/experiment/en2zh.yaml" in line


def test_evaluation_without_a_checkpoint_is_an_argument_error(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = sed_uda(["test", *DANN], capsys)
    assert status == 2 and "needs --ckpt_path" in one_line(err, "test")


REPO_PATH = re.compile(r"(?<![\w/.<-])((?:configs|docs|notebooks|benchmarks|sed_uda|tests)/[\w./-]*[\w/])")
"""A path into the repository as help texts cite it (`configs/grid/demo.yaml`, `configs/grid/`)."""


@pytest.mark.parametrize("command", [*TOOL_COMMANDS, *TRAINING_COMMANDS])
def test_every_path_a_help_text_cites_exists(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = sed_uda([command, "--help"], capsys)
    assert status == 0
    missing = sorted(path for path in set(REPO_PATH.findall(out)) if not (REPO / path).exists())
    assert not missing, f"`sed-uda {command} --help` cites paths that do not exist: {missing}"


def test_a_missing_argument_of_a_tool_command_is_exit_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = sed_uda(["classify", "hello.wav"], capsys)
    assert status == 2 and "--ckpt is required" in one_line(err, "classify")
