"""Build tiny ESD-shaped corpora for tests: real ESD ids and folders, short tones, messy transcripts.

Every value is deterministic, so tests recompute what they expect with `utterance_numbers` and
`transcript_text` instead of hard-coding it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

from sed_uda.corpus.layout import (
    EMOTION_FOLDERS,
    EMOTIONS,
    ESD_SPLIT_FOLDERS,
    N_EVAL_PER_BLOCK,
    N_TEST_PER_BLOCK,
    SAMPLE_RATE,
    ZH_EMOTION_WORDS,
    emotion_of_number,
    speaker_language,
    split_of_number,
    utterance_number,
)

_SPLIT_FIRST_INDEX = {"val": 0, "test": N_EVAL_PER_BLOCK, "train": N_EVAL_PER_BLOCK + N_TEST_PER_BLOCK}
_ESD_FOLDER_OF_SPLIT = {split: folder for folder, split in ESD_SPLIT_FOLDERS.items()}
_TONE_HZ = {emotion: 150.0 + 60.0 * k for k, emotion in enumerate(EMOTIONS)}


def utterance_numbers(emotion: str, per_emotion: int) -> list[int]:
    """ESD id numbers written for an emotion: cycling val, test, train ids so every split gets some."""
    if not 1 <= per_emotion <= 3 * N_EVAL_PER_BLOCK:
        raise ValueError(f"per_emotion must be 1..{3 * N_EVAL_PER_BLOCK}, got {per_emotion}")
    order = ("val", "test", "train")
    return [utterance_number(emotion, _SPLIT_FIRST_INDEX[order[k % 3]] + k // 3) for k in range(per_emotion)]


def transcript_text(speaker: str, number: int) -> str:
    """The sentence written for an utterance; English lines carry a non-ASCII word (café)."""
    emotion = emotion_of_number(number)
    if speaker_language(speaker) == "zh":
        return f"第{number}句，我很{ZH_EMOTION_WORDS[emotion]}。"
    return f"Line {number}, the café felt {emotion}."


def _tone(number: int, emotion: str, duration_s: float) -> np.ndarray:
    """int16 samples: a sine at an emotion-specific pitch plus a little seeded noise."""
    t = np.arange(int(duration_s * SAMPLE_RATE)) / SAMPLE_RATE
    noise = np.random.default_rng(number).normal(0.0, 0.05, t.shape)
    return (np.clip(0.4 * np.sin(2 * np.pi * _TONE_HZ[emotion] * t) + noise, -1, 1) * 32767).astype(np.int16)


def _transcript_lines(speaker: str, numbers: list[int], broken_lines: bool) -> list[str]:
    """`id<TAB>text<TAB>emotion` lines; with `broken_lines` the first three ids are damaged.

    First id: spaces instead of tabs (text still readable). Second: no emotion field (text still
    readable). Third: id only (text lost). Plus blank lines and a line that is not an utterance.
    """
    zh = speaker_language(speaker) == "zh"
    lines = []
    for k, number in enumerate(numbers):
        uid, text = f"{speaker}_{number:06d}", transcript_text(speaker, number)
        emotion = emotion_of_number(number)
        label = ZH_EMOTION_WORDS[emotion] if zh else EMOTION_FOLDERS[emotion]
        if broken_lines and k == 0:
            lines.append(f"{uid}   {text}  {label}")
        elif broken_lines and k == 1:
            lines.append(f"{uid}\t{text}")
        elif broken_lines and k == 2:
            lines.append(uid)
        else:
            lines.append(f"{uid}\t{text}\t{label}")
    if broken_lines:
        lines[1:1] = ["", "   ", "transcript of speaker " + speaker]
    return lines


def _write_junk(root: Path, speaker_dir: Path, emotion_dir: Path) -> None:
    """Files and folders a copied ESD tree picks up and the reader must ignore."""
    (root / ".DS_Store").write_bytes(b"\x00\x01junk")
    (root / "__MACOSX").mkdir(exist_ok=True)
    (root / "__MACOSX" / "0011").mkdir(exist_ok=True)
    (speaker_dir / ".DS_Store").write_bytes(b"\x00\x01junk")
    (speaker_dir / "notes").mkdir(exist_ok=True)
    sf.write(speaker_dir / "notes" / f"{speaker_dir.name}_000001.wav", _tone(1, "neutral", 0.3), SAMPLE_RATE)
    (emotion_dir / "Thumbs.db").write_bytes(b"junk")
    (emotion_dir / "list.txt").write_text("not audio\n")
    (emotion_dir / f"._{speaker_dir.name}_000001.wav").write_bytes(b"\x00\x05\x16\x07AppleDouble")


def write_esd_tree(
    root: Path,
    speakers: list[str],
    emotions: Sequence[str] = EMOTIONS,
    per_emotion: int = 3,
    split_folders: bool = True,
    encoding: dict[str, str] | None = None,
    broken_lines: bool = False,
    junk: bool = True,
    duration_s: float = 0.5,
) -> Path:
    """Write an ESD-shaped corpus under `root` (16 kHz int16 wavs, transcripts, ReadMe.txt); return root.

    `encoding` maps a speaker to its transcript encoding (gb2312, utf-16 with BOM, utf-8, latin-1, ...);
    unlisted speakers get utf-8. Without `split_folders` the wavs sit directly in the emotion folders.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "ReadMe.txt").write_text("Emotional Speech Dataset (ESD), test copy.\n")
    encoding = encoding or {}
    for speaker in speakers:
        speaker_dir = root / speaker
        numbers = []
        for emotion in emotions:
            emotion_dir = speaker_dir / EMOTION_FOLDERS[emotion]
            for number in utterance_numbers(emotion, per_emotion):
                folder = emotion_dir
                if split_folders:
                    folder = emotion_dir / _ESD_FOLDER_OF_SPLIT[split_of_number(number)]
                folder.mkdir(parents=True, exist_ok=True)
                wav = folder / f"{speaker}_{number:06d}.wav"
                sf.write(wav, _tone(number, emotion, duration_s), SAMPLE_RATE, subtype="PCM_16")
                numbers.append(number)
            if junk:
                _write_junk(root, speaker_dir, emotion_dir)
        text = "\n".join(_transcript_lines(speaker, sorted(numbers), broken_lines)) + "\n"
        (speaker_dir / f"{speaker}.txt").write_bytes(text.encode(encoding.get(speaker, "utf-8")))
    return root
