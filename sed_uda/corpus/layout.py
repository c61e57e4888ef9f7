"""The ESD corpus layout: speakers, emotions, utterance-id blocks and the official split.

Both the ESD reader and the bundled generator use these facts, so a corpus written by
`sed-uda synth` is read by exactly the code that reads the real ESD.
"""

from __future__ import annotations

EMOTIONS: tuple[str, ...] = ("neutral", "happy", "angry", "sad", "surprise")
"""Class order used everywhere (label index = position in this tuple)."""

LANGUAGES: tuple[str, ...] = ("en", "zh")
SPLITS: tuple[str, ...] = ("train", "val", "test")
SAMPLE_RATE = 16_000

EMOTION_FOLDERS: dict[str, str] = {
    "neutral": "Neutral",
    "happy": "Happy",
    "angry": "Angry",
    "sad": "Sad",
    "surprise": "Surprise",
}
"""Emotion name -> ESD folder name."""

ID_BLOCK_START: dict[str, int] = {
    "neutral": 1,
    "angry": 351,
    "happy": 701,
    "sad": 1051,
    "surprise": 1401,
}
"""First utterance number of each emotion's block; every block holds 350 ids in ESD."""

BLOCK_SIZE = 350
N_EVAL_PER_BLOCK = 20  # the first 20 ids of a block are ESD's "evaluation" split
N_TEST_PER_BLOCK = 30  # the next 30 are "test"; the rest is "train"

ESD_SPLIT_FOLDERS: dict[str, str] = {"train": "train", "evaluation": "val", "test": "test"}
"""ESD split folder -> our split name."""

ZH_EMOTION_WORDS: dict[str, str] = {
    "neutral": "中立",
    "happy": "快乐",
    "angry": "生气",
    "sad": "伤心",
    "surprise": "惊喜",
}
"""Emotion names as the Mandarin transcripts spell them."""


def speaker_language(speaker: str) -> str:
    """ESD speakers 0001-0010 are Mandarin, 0011-0020 English (later ids alternate by tens)."""
    number = int(speaker)
    return "zh" if ((number - 1) // 10) % 2 == 0 else "en"


def speaker_ids(language: str, count: int) -> list[str]:
    """The first `count` speaker ids ESD uses for `language` (0001.. for zh, 0011.. for en)."""
    if not 1 <= count <= 10:
        raise ValueError(f"ESD numbers at most 10 speakers per language, got {count}")
    first = 1 if language == "zh" else 11
    return [f"{first + k:04d}" for k in range(count)]


def utterance_number(emotion: str, index: int) -> int:
    """The ESD id number of the `index`-th (0-based) utterance of an emotion block."""
    if not 0 <= index < BLOCK_SIZE:
        raise ValueError(f"utterance index {index} is outside an ESD block of {BLOCK_SIZE}")
    return ID_BLOCK_START[emotion] + index


def emotion_of_number(number: int) -> str:
    """Which emotion block an ESD utterance number belongs to."""
    for emotion, start in ID_BLOCK_START.items():
        if start <= number < start + BLOCK_SIZE:
            return emotion
    raise ValueError(f"utterance number {number} is outside ESD's id blocks 1..1750")


def split_of_number(number: int) -> str:
    """ESD's official split from the id: per block, 20 evaluation, then 30 test, then train."""
    offset = number - ID_BLOCK_START[emotion_of_number(number)]
    if offset < N_EVAL_PER_BLOCK:
        return "val"
    if offset < N_EVAL_PER_BLOCK + N_TEST_PER_BLOCK:
        return "test"
    return "train"
