"""Who speaks in each recording, for models trained with per-speaker normalisation.

Such a model standardises a recording by its speaker's statistics, so prediction needs to know the
speaker. `classify --speaker-from` names where from:
- `parent-folder`: each folder holds the recordings of one (new) speaker, who is enrolled from them;
- a CSV file with a `speaker` column and a `file` (or `path`) column, e.g. a cache's manifest.csv: a
  speaker whose statistics the checkpoint stores (a training speaker, from their train and val audio)
  uses them, any other speaker is enrolled from their recordings being classified.
A CSV row matches a recording whose path ends with the row's path (relative rows match anywhere).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from sed_uda.errors import BadArgument, UserError

PARENT_FOLDER = "parent-folder"
FOLDER_PREFIX = "folder:"
"""Prefix of the name of a speaker known by their folder, so that it never matches a stored speaker."""


class SpeakerUnknown(UserError):
    """Recordings whose speaker the given source does not name."""


def check_speaker_source(speaker_from: str) -> str:
    """`speaker_from` when it is `parent-folder` or an existing .csv file; BadArgument naming both choices."""
    if speaker_from == PARENT_FOLDER:
        return speaker_from
    if Path(speaker_from).suffix.lower() != ".csv":
        raise BadArgument(
            f"--speaker-from {speaker_from}: use parent-folder (one folder per speaker) or a .csv file with "
            "columns file,speaker (a cache's manifest.csv is one)"
        )
    if not Path(speaker_from).is_file():
        raise BadArgument(
            f"--speaker-from {speaker_from}: file not found; pass a .csv with columns file,speaker"
        )
    return speaker_from


def speakers_of(files: Sequence[Path], speaker_from: str) -> list[str]:
    """The speaker of each file, from its folder or from the CSV file `speaker_from`."""
    if speaker_from == PARENT_FOLDER:
        return [f"{FOLDER_PREFIX}{Path(f).absolute().parent}" for f in files]
    table = _speaker_table(Path(speaker_from))
    speakers = [_lookup(table, Path(f)) for f in files]
    missing = [str(f) for f, s in zip(files, speakers, strict=True) if s is None]
    if missing:
        raise SpeakerUnknown(
            f"{speaker_from}: {len(missing)} of {len(files)} recordings are not listed "
            f"(first: {missing[0]}); add a row file,speaker for each"
        )
    return speakers  # type: ignore[return-value]


def _speaker_table(path: Path) -> dict[tuple[str, ...], str]:
    """Path parts of each listed file -> its speaker."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise BadArgument(f"--speaker-from {path}: not a readable CSV file ({error})") from error
    column = next((c for c in ("file", "path") if c in frame.columns), None)
    if column is None or "speaker" not in frame.columns:
        raise BadArgument(
            f"--speaker-from {path}: needs columns file (or path) and speaker; "
            f"it has {', '.join(frame.columns)}"
        )
    return {Path(file).parts: speaker for file, speaker in zip(frame[column], frame["speaker"], strict=True)}


def _lookup(table: dict[tuple[str, ...], str], file: Path) -> str | None:
    """The speaker of the longest listed path that `file` ends with (as typed, then absolute)."""
    for parts in (file.parts, file.absolute().parts):
        for start in range(len(parts)):
            if parts[start:] in table:
                return table[parts[start:]]
    return None
