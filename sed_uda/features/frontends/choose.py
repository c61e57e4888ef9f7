"""`prepare --front-end`: a name in configs/frontend/ or a YAML file, turned into a front end."""

from __future__ import annotations

from pathlib import Path

from sed_uda.errors import BadArgument
from sed_uda.features.frontends.base import FrontEnd, build

CONFIG_FOLDER = Path("configs/frontend")
"""Where front-end YAMLs live, looked up from the working directory, then from the repository."""


def config_folders() -> list[Path]:
    """configs/frontend under the working directory and beside the installed package (editable installs)."""
    repository = Path(__file__).resolve().parents[3]
    return list(dict.fromkeys([CONFIG_FOLDER, repository / CONFIG_FOLDER]))


def available() -> list[str]:
    """Names of the front-end YAMLs that `--front-end NAME` finds."""
    return sorted({path.stem for folder in config_folders() for path in folder.glob("*.yaml")})


def choose_front_end(value: str) -> FrontEnd:
    """The front end of `configs/frontend/<value>.yaml`, or of the YAML file `value` names.

    The YAML holds `class_path` and `init_args`, as a front end is written in a cache's meta.json."""
    from omegaconf import OmegaConf

    path = Path(value)
    if path.suffix not in (".yaml", ".yml"):
        path = next(
            (folder / f"{value}.yaml" for folder in config_folders() if (folder / f"{value}.yaml").is_file()),
            path,
        )
    if not path.is_file():
        raise BadArgument(
            f"--front-end {value}: no such front end; choose one of {', '.join(available())} "
            f"(configs/frontend/) or give a YAML file with class_path and init_args"
        )
    try:
        config = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except Exception as error:  # omegaconf raises several YAML and interpolation errors
        raise BadArgument(f"{path}: not a readable YAML file ({error})") from error
    try:
        return build(config if isinstance(config, dict) else {})
    except ValueError as error:
        raise BadArgument(f"{path}: {error}") from error
