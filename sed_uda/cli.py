"""`sed-uda`: LightningCLI for fit/validate/test/predict, plus the data and experiment commands.

Training commands go to LightningCLI (`sed_uda.training_cli`: `--config` files, `--print_config`,
`--trainer.max_epochs=...`). The others are plain functions turned into subcommands by jsonargparse, from
their signatures and docstrings, with real boolean flags (`--skip-bad`, `--no-skip-bad`). Option names
may be spelled with dashes or underscores everywhere. Failures the user can fix end as one line and a
non-zero exit; Ctrl-C ends with exit status 130; anything else is a bug and keeps its traceback.
This module stays light to import (no torch): worker processes of `synth` and `prepare` re-import it.
"""

from __future__ import annotations

import sys
import typing
from collections.abc import Callable, Sequence

from sed_uda.commands import classify, demo, diagnose, grid, prepare, probe, study, synth, table
from sed_uda.errors import BadArgument, user_message
from sed_uda.options import dashed, normalise_options

TOOL_COMMANDS: dict[str, Callable[..., object]] = {
    f.__name__: f for f in (synth, prepare, probe, diagnose, study, grid, table, demo, classify)
}
TRAINING_COMMANDS = ("fit", "validate", "test", "predict")
INTERRUPTED = 130
"""Exit status after Ctrl-C, as shells report a process ended by SIGINT."""


def _listed_paths(args: Sequence[str]) -> list[str]:
    """`classify --ckpt C a.wav dir/` -> `classify --ckpt C '["a.wav", "dir/"]'`: jsonargparse takes a
    positional list as one JSON value, users type paths one after another (every option takes a value)."""
    import json

    command, rest = args[0], list(args[1:])
    options, paths, k = [], [], 0
    while k < len(rest):
        arg = rest[k]
        takes_value = arg.startswith("--") and "=" not in arg and arg not in ("--help", "--print_config")
        if arg.startswith("-"):
            options += rest[k : k + 1 + takes_value]
            k += 1 + takes_value
        else:
            paths.append(arg)
            k += 1
    return [command, *options, *([json.dumps(paths)] if paths else [])]


OVERVIEW = """sed-uda: cross-lingual speech emotion recognition with unsupervised domain adaptation.

Data and experiments:
  synth     generate the bundled bilingual emotional corpus in ESD's layout
  prepare   validate a corpus (bundled or real ESD) and build the feature cache
  probe     pooled-feature classifier: in-language vs cross-language accuracy of a cache
  diagnose  where the languages' features differ and what a source-only model gets wrong
  study     adaptation methods x trade-offs x seeds on several corpora, in minutes (pooled vectors)
  grid      run a grid of experiments (methods x encoders x directions x seeds), resumable
  table     collect runs into the poster-shaped results table (mean +- std over seeds)
  demo      the whole study on the bundled corpus: synth, prepare, grid, table
  classify  emotion of new recordings (wav, flac, mp3, ogg, ...) with a trained checkpoint
Training (LightningCLI):
  fit | validate | test | predict --config configs/experiment/<name>.yaml

`sed-uda COMMAND --help` shows a command's options.
"""


def _flags(command: Callable[..., object]) -> set[str]:
    """Names of a command's boolean parameters: they are flags on the command line."""
    hints = typing.get_type_hints(command)
    return {name for name, hint in hints.items() if hint is bool}


def _tool_parser_class() -> type:
    """jsonargparse's parser, printing help with the spellings `dashed` gives."""
    from jsonargparse import ArgumentParser

    class ToolParser(ArgumentParser):
        def format_help(self) -> str:
            return dashed(super().format_help())

        def format_usage(self) -> str:
            return dashed(super().format_usage())

    return ToolParser


def _list_options(command: Callable[..., object]) -> set[str]:
    """Names of a command's list parameters: on the command line their values follow the option."""
    hints = typing.get_type_hints(command)
    lists = {
        name
        for name, hint in hints.items()
        for t in (hint, *typing.get_args(hint))
        if typing.get_origin(t) is list
    }
    return lists


def collect_lists(args: Sequence[str], names: set[str]) -> list[str]:
    """`--corpora a b --seeds 0 1` -> `--corpora=["a", "b"] --seeds=[0, 1]` (jsonargparse takes a list as
    one JSON value; users type the values one after another). Numbers stay numbers; a value given as
    JSON already (`--seeds '[0, 1]'`) is left as it is, and `--seeds=0` is a list of one."""
    import json

    def value(text: str) -> object:
        try:
            number = json.loads(text)
        except ValueError:
            return text
        return number if isinstance(number, int | float) else text

    out, k = [], 0
    while k < len(args):
        name, eq, given = args[k][2:].partition("=") if args[k].startswith("--") else ("", "", "")
        name = name.replace("-", "_")
        if name in names and eq and not given.startswith("["):  # --seeds=0: a list of one
            out.append(f"--{name}={json.dumps([value(given)])}")
            k += 1
            continue
        given_as_json = k + 1 < len(args) and args[k + 1].startswith(("[", "{"))
        if name in names and not eq and not given_as_json:
            values = []
            while k + 1 < len(args) and not args[k + 1].startswith("--"):
                values.append(value(args[k + 1]))
                k += 1
            out.append(f"--{name}={json.dumps(values)}")
        else:
            out.append(args[k])
        k += 1
    return out


class _ArgumentProblem(Exception):
    """A command line that cannot be parsed; `hint` says where to read more."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


def _run(args: list[str]) -> None:
    command = args[0]
    if command in TOOL_COMMANDS:
        from jsonargparse import CLI

        flags = _flags(TOOL_COMMANDS[command])
        if command == "grid":
            _check_grid_configs(args)
        args = (
            _listed_paths(args)
            if command == "classify"
            else collect_lists(args, _list_options(TOOL_COMMANDS[command]))
        )
        CLI(
            list(TOOL_COMMANDS.values()),
            args=normalise_options(args, flags),
            parser_class=_tool_parser_class(),
            exit_on_error=False,
        )
    elif command in TRAINING_COMMANDS:
        from sed_uda.training_cli import training_cli

        training_cli(args)
    else:
        choices = ", ".join([*TOOL_COMMANDS, *TRAINING_COMMANDS])
        raise _ArgumentProblem(f"unknown command {command!r}; the commands are {choices}", hint="")


def _check_grid_configs(args: Sequence[str]) -> None:
    """`grid --config X` with X an experiment (or other) config: say so in one line, naming a grid config."""
    from pathlib import Path

    from sed_uda.experiments.grid import grid_config_problem

    for position, arg in enumerate(args):
        path = arg.partition("=")[2] if arg.startswith("--config=") else None
        if arg == "--config" and position + 1 < len(args):
            path = args[position + 1]
        problem = grid_config_problem(Path(path)) if path and Path(path).is_file() else None
        if problem:
            raise _ArgumentProblem(problem, hint="see `sed-uda grid --help`")


def _argument_problem(error: Exception, command: str) -> _ArgumentProblem | None:
    """The command line could not be parsed, or an argument is outside its allowed values (exit status 2):
    its one useful line, and where to read more."""
    from argparse import ArgumentError

    if isinstance(error, _ArgumentProblem):
        return error
    if isinstance(error, BadArgument):
        return _ArgumentProblem(str(error), hint=f"see `sed-uda {command} --help`")
    if not isinstance(error, ArgumentError):
        return None
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    message = dashed(" ".join(lines[:3]))
    return _ArgumentProblem(message, hint=f"see `sed-uda {command} --help`")


def _fail(command: str, message: str, status: int, hint: str = "") -> typing.NoReturn:
    print(f"sed-uda {command}: error: {message}", file=sys.stderr)
    if hint:
        print(f"  {hint}", file=sys.stderr)
    sys.exit(status)


def _interrupted(command: str) -> typing.NoReturn:
    if command in TOOL_COMMANDS:
        then = "finished work is kept: run the same command again to continue"
    elif command == "fit":
        then = "continue from the last finished epoch with the same command and --ckpt_path last"
    else:
        then = "no run was changed: run the same command again"
    _fail(command, f"interrupted (Ctrl-C); {then}", INTERRUPTED)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `sed-uda` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(OVERVIEW)
        return
    command = args[0]
    try:
        _run(args)
    except KeyboardInterrupt:
        _interrupted(command)
    except SystemExit as exit_:
        # Lightning turns Ctrl-C during training into sys.exit(1), raised while handling the interrupt.
        if exit_.code not in (0, None) and isinstance(exit_.__context__, KeyboardInterrupt):
            _interrupted(command)
        raise
    except Exception as error:
        problem = _argument_problem(error, command)
        if problem is not None:
            _fail(command, str(problem), 2, problem.hint or "see `sed-uda --help`")
        message = user_message(error)
        if message is None:
            raise
        _fail(command, message, 1)


if __name__ == "__main__":
    main()
