"""`sed-uda`: LightningCLI for fit/validate/test/predict, plus the data and experiment commands.

Training commands go to LightningCLI (`sed_uda.training_cli`: `--config` files, `--print_config`,
`--model.lr=...`). The others are plain functions turned into subcommands by jsonargparse, from their
signatures and docstrings; options may be spelled with dashes or underscores. This module stays light
to import (no torch): worker processes of `synth` and `prepare` re-import the entry script.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from sed_uda.commands import classify, demo, grid, prepare, probe, synth, table

TOOL_COMMANDS: dict[str, Callable[..., object]] = {
    f.__name__: f for f in (synth, prepare, probe, grid, table, demo, classify)
}


def _underscored(args: Sequence[str]) -> list[str]:
    """`--speakers-per-language` -> `--speakers_per_language` (values are left alone)."""
    out = []
    for arg in args:
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            arg = "--" + name[2:].replace("-", "_") + eq + value
        out.append(arg)
    return out


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
  grid      run a grid of experiments (methods x encoders x directions x seeds), resumable
  table     collect runs into the poster-shaped results table (mean +- std over seeds)
  demo      the whole study on the bundled corpus: synth, prepare, grid, table
  classify  emotion of new recordings (wav/flac) with a trained checkpoint
Training (LightningCLI):
  fit | validate | test | predict --config configs/experiment/<name>.yaml

`sed-uda COMMAND --help` shows a command's options.
"""


def _is_user_error(error: Exception) -> bool:
    """Problems with the user's data or arguments: reported as one clear message, without a traceback."""
    from sed_uda.corpus.audio import AudioProblem
    from sed_uda.corpus.esd import CorpusError
    from sed_uda.features.cache import PrepareError
    from sed_uda.features.store import CacheError

    return isinstance(
        error, CorpusError | PrepareError | CacheError | AudioProblem | FileNotFoundError | ValueError
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `sed-uda` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(OVERVIEW)
        return
    try:
        if args[0] in TOOL_COMMANDS:
            from jsonargparse import CLI

            args = _listed_paths(args) if args[0] == "classify" else args
            CLI(list(TOOL_COMMANDS.values()), args=_underscored(args))
        else:
            from sed_uda.training_cli import training_cli

            training_cli(args)
    except Exception as error:
        if not _is_user_error(error):
            raise
        print(f"sed-uda {args[0]}: error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
