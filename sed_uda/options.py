"""How users spell options: dashes or underscores in names, real boolean flags, and help text that shows
the dashed spelling. Shared by the tool commands (`sed_uda.cli`) and LightningCLI (`sed_uda.training_cli`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence


def normalise_options(args: Sequence[str], flags: set[str] = frozenset()) -> list[str]:
    """Option names with dashes become underscores; `--flag`, `--no-flag` become `--flag=true|false`.

    `flags` are the boolean options: given alone (no `true`/`false` after them) they mean true, and their
    `--no-` form means false.
    """
    out: list[str] = []
    for position, arg in enumerate(args):
        if not arg.startswith("--") or arg == "--":
            out.append(arg)
            continue
        name, eq, value = arg.partition("=")
        name = name[2:].replace("-", "_")
        following = args[position + 1] if position + 1 < len(args) else ""
        if not eq and name in flags and following.lower() not in ("true", "false"):
            eq, value = "=", "true"
        elif not eq and name.startswith("no_") and name[3:] in flags:
            name, eq, value = name[3:], "=", "false"
        out.append(f"--{name}{eq}{value}")
    return out


def dashed(text: str) -> str:
    """Help and error text with option names spelled as users type them: `--skip_bad` -> `--skip-bad`."""
    text = re.sub(r'Parser key "([\w.]+)"', lambda m: "--" + m[1], text)
    text = re.sub(r"--(\w+) \{true,false\}", lambda m: f"--{m[1]} | --no-{m[1]}", text)
    return re.sub(r"--(no-)?(\w+)(?![.\w])", lambda m: "--" + (m[1] or "") + m[2].replace("_", "-"), text)
