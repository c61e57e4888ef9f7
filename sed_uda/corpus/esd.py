"""Read an ESD-shaped corpus into manifest rows: one per wav, with speaker, language, emotion, split, text.

Both layouts ESD ships in are read: `<root>/<spk>/<Emotion>/{train,evaluation,test}/<spk>_<nnnnnn>.wav`, and
the flat copy with the wavs directly under `<root>/<spk>/<Emotion>/` (the split then comes from the id).
Junk (hidden files, .DS_Store, stray folders, non-wav files) is ignored; wavs that cannot be placed are
reported all at once, so a broken copy is fixed in one pass rather than one error at a time.
"""

from __future__ import annotations

import codecs
import json
import re
from pathlib import Path

import pandas as pd

from sed_uda.corpus.layout import (
    EMOTION_FOLDERS,
    EMOTIONS,
    ESD_SPLIT_FOLDERS,
    LANGUAGES,
    SPLITS,
    ZH_EMOTION_WORDS,
    emotion_of_number,
    speaker_ids,
    speaker_language,
    split_of_number,
)
from sed_uda.errors import UserError

COLUMNS: tuple[str, ...] = ("utterance_id", "path", "speaker", "language", "emotion", "split", "text")
EXPECTED_LAYOUT = "<root>/<spk>/<Emotion>/[train|evaluation|test/]<spk>_<nnnnnn>.wav"

SYNTH_MARKER = "sed_uda_synth.json"
"""Written by `sed-uda synth` before its first wav (`"complete": false`) and rewritten last (`true`): a
bundled corpus is recognised by it, and one whose synth was interrupted is refused. The real ESD has none."""
_SPEAKER_DIR = re.compile(r"\d{4}")
_UTTERANCE_ID = re.compile(r"(\d{4})_(\d{6})")
_EMOTION_BY_FOLDER = {folder.lower(): emotion for emotion, folder in EMOTION_FOLDERS.items()}
_TRANSCRIPT_EMOTION_WORDS = frozenset(EMOTION_FOLDERS.values()) | frozenset(ZH_EMOTION_WORDS.values())
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_FALLBACK_ENCODINGS = {  # last one maps every byte; English never falls back to gb18030
    "zh": ("utf-8", "gb18030", "latin-1"),
    "en": ("utf-8", "latin-1"),
}


class CorpusError(UserError, ValueError):
    """The corpus folder cannot be read as ESD; the message names the path, the problem and the fix."""


def _decode(data: bytes, language: str) -> str:
    """Text of a transcript whose encoding is unknown: BOM first, then utf-8, then (Mandarin only)
    gb18030, then latin-1. Latin-1 English text such as "élan" is also valid gb18030, so English
    transcripts never try it."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding)
    *tries, last = _FALLBACK_ENCODINGS[language]
    for encoding in tries:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode(last)


def _parse_line(line: str) -> tuple[str, str] | None:
    """(utterance id, text) of a transcript line, or None for blank, id-less or text-less lines.

    The normal line is `id<TAB>text<TAB>emotion`. Lines with spaces instead of tabs, or a missing
    emotion field, still give their text: a trailing emotion word is dropped.
    """
    fields = line.strip().split("\t")
    if len(fields) >= 3 and _UTTERANCE_ID.fullmatch(fields[0].strip()):
        text = fields[1].strip()
        return (fields[0].strip(), text) if text else None
    parts = line.split(maxsplit=1)
    if len(parts) < 2 or not _UTTERANCE_ID.fullmatch(parts[0]):
        return None
    words = parts[1].split()
    if len(words) > 1 and words[-1] in _TRANSCRIPT_EMOTION_WORDS:
        words = words[:-1]
    text = " ".join(words)
    return (parts[0], text) if text else None


def read_transcript(path: Path, language: str | None = None) -> dict[str, str]:
    """utterance_id -> text of an ESD transcript in any of the encodings ESD copies use.

    `language` (en|zh) defaults to the one ESD gives the speaker named by the file (zh, which tries
    every encoding, for other names). Ids whose line
    is missing or has no text get no entry.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise CorpusError(
            f"{path}: cannot read the transcript ({error.strerror}). Fix its permissions or remove it."
        ) from error
    texts: dict[str, str] = {}
    stem = Path(path).stem
    language = language or (speaker_language(stem) if stem.isdigit() else "zh")
    for line in _decode(data, language).splitlines():
        parsed = _parse_line(line)
        if parsed is not None:
            texts[parsed[0]] = parsed[1]
    return texts


def _wav_files(folder: Path) -> list[Path]:
    """Wavs directly in `folder`; hidden files (.DS_Store, macOS ._ copies) and other files are junk."""
    return [
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() == ".wav"
    ]


def _placed_wavs(emotion_dir: Path) -> list[tuple[Path, str | None]]:
    """(wav, split) of an emotion folder: split from an ESD split folder, None for wavs lying flat."""
    placed: list[tuple[Path, str | None]] = [(wav, None) for wav in _wav_files(emotion_dir)]
    for split_dir in emotion_dir.iterdir():
        split = ESD_SPLIT_FOLDERS.get(split_dir.name.lower())
        if split is not None and split_dir.is_dir():
            placed += [(wav, split) for wav in _wav_files(split_dir)]
    return placed


def _id_problem(speaker: str, emotion: str, stem: str) -> str | None:
    """Why a wav named `stem` cannot be an utterance of `speaker` in `emotion`'s folder, or None."""
    match = _UTTERANCE_ID.fullmatch(stem)
    if match is None or match.group(1) != speaker:
        return f"name is not {speaker}_<nnnnnn>.wav"
    number = int(match.group(2))
    try:
        id_emotion = emotion_of_number(number)
    except ValueError:
        return f"id {number} is outside ESD's id blocks 1..1750"
    if id_emotion != emotion:
        return f"folder says {emotion}, id {number} is in the {id_emotion} block"
    return None


def _speaker_rows(root: Path, speaker_dir: Path, problems: list[str]) -> list[dict[str, str]]:
    """Manifest rows of one speaker; wavs that cannot be placed are appended to `problems`."""
    speaker = speaker_dir.name
    transcript = speaker_dir / f"{speaker}.txt"
    texts = read_transcript(transcript) if transcript.is_file() else {}
    rows = []
    for emotion_dir in sorted(speaker_dir.iterdir()):
        emotion = _EMOTION_BY_FOLDER.get(emotion_dir.name.lower())
        if emotion is None or not emotion_dir.is_dir():
            continue
        for wav, split in _placed_wavs(emotion_dir):
            relative = wav.relative_to(root).as_posix()
            problem = _id_problem(speaker, emotion, wav.stem)
            if problem is not None:
                problems.append(f"{relative}: {problem}")
                continue
            rows.append(
                {
                    "utterance_id": wav.stem,
                    "path": relative,
                    "speaker": speaker,
                    "language": speaker_language(speaker),
                    "emotion": emotion,
                    "split": split or split_of_number(int(wav.stem[-6:])),
                    "text": texts.get(wav.stem, ""),
                }
            )
    return rows


def _missing_speakers_message(root: Path) -> str:
    hint = ""
    nested = [
        d for d in root.iterdir() if d.is_dir() and any(_SPEAKER_DIR.fullmatch(s.name) for s in d.iterdir())
    ]
    if len(nested) == 1:
        hint = f" It looks like the corpus is one level down: pass {nested[0]} as the root."
    return (
        f"{root}: no speaker folders (0001..0020) found. Expected {EXPECTED_LAYOUT}; "
        f"point the root at the folder that holds the speaker folders.{hint}"
    )


def read_synth_marker(root: Path) -> dict | None:
    """The settings `sed-uda synth` recorded in `root` (with `complete`), or None for any other corpus."""
    path = Path(root) / SYNTH_MARKER
    if not path.is_file():
        return None
    try:
        marker = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CorpusError(
            f"{path}: unreadable ({error}); the bundled corpus in {root} is damaged: "
            "delete the folder and run `sed-uda synth` again"
        ) from error
    if not isinstance(marker, dict) or "complete" not in marker:
        raise CorpusError(f"{path}: not written by `sed-uda synth`; delete the folder and run it again")
    return marker


def _synth_command(root: Path, marker: dict) -> str:
    return (
        f"sed-uda synth --out {root} --speakers-per-language {marker.get('speakers_per_language')} "
        f"--utterances-per-emotion {marker.get('utterances_per_emotion')} --seed {marker.get('seed')}"
    )


def corpus_gaps(manifest: pd.DataFrame, speakers: list[str] | None = None) -> list[str]:
    """Warnings for parts of the study missing entirely: a language, a speaker, an emotion or a split.

    `speakers` are the ones expected (default: ESD's 20). Partial copies are allowed, but a missing split
    or emotion changes what the numbers mean, so the user should know.
    """
    gaps = []
    expected = speakers or [s for language in LANGUAGES for s in speaker_ids(language, 10)]
    missing = sorted(set(expected) - set(manifest["speaker"]))
    if missing:
        gaps.append(f"no utterances of speaker(s) {', '.join(missing)}")
    for language in LANGUAGES:
        rows = manifest[manifest["language"] == language]
        if rows.empty:
            gaps.append(f"no {language} speakers: the cross-lingual study needs both languages")
            continue
        for column, values in (("emotion", EMOTIONS), ("split", SPLITS)):
            absent = [value for value in values if value not in set(rows[column])]
            if absent:
                gaps.append(f"no {language} utterances of {column} {', '.join(absent)}")
    return gaps


def index_corpus(root: str | Path) -> pd.DataFrame:
    """One row per utterance of an ESD-shaped corpus (columns `COLUMNS`), sorted by speaker then id.

    `path` is relative to `root`. Emotion comes from the folder, split from the split folder or else from
    the id, text from `<spk>/<spk>.txt` ("" when the transcript lacks the id). Raises CorpusError when the
    root is missing, is a bundled corpus whose synth did not finish, or holds no speaker folders or no
    wavs, and lists every wav that cannot be placed (misnamed, id outside ESD's blocks, emotion folder
    disagreeing with the id, same id twice).
    """
    root = Path(root)
    if not root.is_dir():
        raise CorpusError(
            f"{root}: corpus folder does not exist. Expected {EXPECTED_LAYOUT}; check the path."
        )
    marker = read_synth_marker(root)
    if marker is not None and not marker["complete"]:
        raise CorpusError(
            f"{root / SYNTH_MARKER}: this bundled corpus is incomplete (`sed-uda synth` was interrupted). "
            f"Finish it with `{_synth_command(root, marker)}`, or delete {root} and generate it again."
        )
    speaker_dirs = sorted(d for d in root.iterdir() if d.is_dir() and _SPEAKER_DIR.fullmatch(d.name))
    if not speaker_dirs:
        raise CorpusError(_missing_speakers_message(root))
    problems: list[str] = []
    rows = [row for speaker_dir in speaker_dirs for row in _speaker_rows(root, speaker_dir, problems)]
    manifest = pd.DataFrame(rows, columns=list(COLUMNS))
    for utterance_id, paths in manifest.groupby("utterance_id")["path"]:
        if len(paths) > 1:
            problems.append(f"{utterance_id} appears {len(paths)} times: {', '.join(sorted(paths))}")
    if problems:
        listing = "\n  ".join(sorted(problems))
        raise CorpusError(
            f"{root}: {len(problems)} wav file(s) do not fit the ESD layout {EXPECTED_LAYOUT}:\n  {listing}\n"
            "Move or rename them (or delete the stray copies) and run again."
        )
    if manifest.empty:
        raise CorpusError(
            f"{root}: speaker folders found but no wav files in them. Expected {EXPECTED_LAYOUT}; "
            "check that the corpus was fully extracted."
        )
    return manifest.sort_values(["speaker", "utterance_id"], ignore_index=True)
