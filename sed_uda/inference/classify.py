"""`sed-uda classify`: the emotion of recordings, with a trained checkpoint, as a table and a file.

Every recording is checked and loaded as `prepare` does (other sample rates resampled, several channels
down-mixed, said once); a bad one is reported with its reason and skipped, the others are classified,
and the command fails at the end (exit status 1) so that scripts notice. Files in the folders given that
are not audio are counted in one line. A per-speaker model needs `--speaker-from` (`speakers.py`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from sed_uda.corpus.audio import AudioProblem
from sed_uda.errors import BadArgument, UserError
from sed_uda.inference.audio import AUDIO_SUFFIXES, find_recordings, recording_features
from sed_uda.inference.model import EmotionModel, load_model
from sed_uda.inference.speakers import check_speaker_source, speakers_of

OUTPUT_SUFFIXES: tuple[str, ...] = (".csv", ".json")
PROGRESS_FROM = 20
"""Show a progress bar from this many files on."""


class ClassifyError(UserError):
    """Some recordings could not be classified (each was reported with its reason)."""


def predictions_frame(
    files: Sequence[Path], probabilities: np.ndarray, class_names: Sequence[str]
) -> pd.DataFrame:
    """One row per file: file, emotion, confidence and one `p_<class>` column per class."""
    best = probabilities.argmax(axis=1)
    frame = pd.DataFrame({"file": [str(f) for f in files], "emotion": np.asarray(class_names)[best]})
    frame["confidence"] = probabilities.max(axis=1)
    for k, name in enumerate(class_names):
        frame[f"p_{name}"] = probabilities[:, k]
    return frame


def _check_arguments(speaker_from: str | None, out: Path | None, batch_size: int) -> None:
    if out is not None and out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise BadArgument(f"--out {out}: use a .csv or .json file name")
    if batch_size < 1:
        raise BadArgument(f"--batch-size {batch_size}: give a positive number of recordings per batch")
    if speaker_from is not None:
        check_speaker_source(speaker_from)


def _check_model(model: EmotionModel, speaker_from: str | None) -> None:
    if speaker_from is None:
        if model.normalization == "speaker":
            model.check_speakers(None)  # refuses, saying how to name the speakers
    elif model.normalization != "speaker":
        raise BadArgument(
            f"--speaker-from applies to models trained with per-speaker normalisation; this one uses "
            f"{model.normalization!r}, which needs no speaker: drop the option"
        )


def _speakers(
    model: EmotionModel, files: list[Path], features: list, speaker_from: str, console: Console
) -> list[str]:
    """Each recording's speaker; speakers without stored statistics are enrolled from their recordings
    here. Says how many of each."""
    speakers = speakers_of(files, speaker_from)
    stored = set(speakers) & set(model.speakers)
    enrolled = sorted(set(speakers) - stored)
    for name in enrolled:
        model.enroll_features(name, [f for f, s in zip(features, speakers, strict=True) if s == name])
    said = f"{len(stored)} with statistics stored in the checkpoint (their training audio)" if stored else ""
    if enrolled:
        said += (", " if said else "") + f"{len(enrolled)} enrolled from the recordings classified here"
    console.print(f"per-speaker normalisation: {said}", markup=False)
    return speakers


def _load_all(files: list[Path], model: EmotionModel, console: Console) -> tuple[list, list, list[str]]:
    """(good files, their features, problems) with a progress bar for many files."""
    good, features, problems, conversions = [], [], [], Counter()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True, disable=len(files) < PROGRESS_FROM) as progress:
        for path in progress.track(files, description="extracting features"):
            try:
                array, steps = recording_features(path, model.front_end)
            except AudioProblem as problem:
                problems.append(str(problem))
                continue
            good.append(path)
            features.append(array)
            conversions.update(steps)
    if conversions:
        said = ", ".join(f"{step} ({n} file{'s' * (n > 1)})" for step, n in sorted(conversions.items()))
        console.print(f"converted to {model.front_end.sample_rate} Hz mono: {said}", markup=False)
    return good, features, problems


def _table(frame: pd.DataFrame, class_names: Sequence[str]) -> Table:
    table = Table(title="predicted emotions")
    table.add_column("file", overflow="fold")
    for name in ("emotion", "confidence", *class_names):
        table.add_column(name)
    for row in frame.itertuples(index=False):
        probabilities = [f"{getattr(row, f'p_{name}'):.3f}" for name in class_names]
        table.add_row(row.file, row.emotion, f"{row.confidence:.3f}", *probabilities)
    return table


def write_predictions(frame: pd.DataFrame, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".json":
        out.write_text(json.dumps(frame.to_dict(orient="records"), indent=2))
    else:
        frame.to_csv(out, index=False)


def classify_recordings(
    ckpt: Path,
    paths: Sequence[Path],
    out: Path | None = None,
    speaker_from: str | None = None,
    batch_size: int = 64,
    device: str = "cpu",
) -> pd.DataFrame:
    """Classify the recordings under `paths`; print the table, write `out`; ClassifyError if any was bad."""
    console = Console(highlight=False, soft_wrap=True)
    _check_arguments(speaker_from, out, batch_size)
    model = load_model(ckpt, device=device)
    _check_model(model, speaker_from)
    files, ignored = find_recordings(paths)
    if ignored:
        kinds = ", ".join(f"{suffix}: {n}" for suffix, n in sorted(ignored.items()))
        console.print(f"left out {sum(ignored.values())} files that are not audio ({kinds})", markup=False)
    if not files:
        raise ClassifyError(
            f"no audio files ({', '.join(AUDIO_SUFFIXES)}) under {', '.join(map(str, paths))}"
        )
    good, features, problems = _load_all(files, model, console)
    for problem in problems:
        console.print(f"skipped {problem}", markup=False, style="red")
    frame = predictions_frame([], np.empty((0, len(model.class_names))), model.class_names)
    if good:
        speakers = None if speaker_from is None else _speakers(model, good, features, speaker_from, console)
        probabilities = model.predict_features(features, speakers, batch_size)
        frame = predictions_frame(good, probabilities, model.class_names)
        console.print(_table(frame, model.class_names))
    if out is not None:
        write_predictions(frame, out)
        console.print(f"wrote {len(frame)} predictions to {out}", markup=False)
    if problems:
        raise ClassifyError(f"{len(problems)} of {len(files)} files could not be classified (listed above)")
    return frame
