"""The ESD reader: both layouts, messy transcripts, junk, and clear errors for what cannot be read."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from sed_uda.corpus.esd import COLUMNS, CorpusError, index_corpus, read_transcript
from sed_uda.corpus.layout import EMOTIONS, speaker_language, split_of_number
from tests.corpus.esd_tree import transcript_text, utterance_numbers, write_esd_tree

SPEAKERS = ["0001", "0011"]
PER_EMOTION = 3


def _without_path(manifest: pd.DataFrame) -> pd.DataFrame:
    return manifest.drop(columns="path")


def test_rows_describe_every_wav(tmp_path: Path) -> None:
    root = write_esd_tree(tmp_path, SPEAKERS, per_emotion=PER_EMOTION)
    manifest = index_corpus(root)
    assert tuple(manifest.columns) == COLUMNS
    assert len(manifest) == len(SPEAKERS) * len(EMOTIONS) * PER_EMOTION
    assert list(manifest.index) == list(range(len(manifest)))
    assert manifest.equals(manifest.sort_values(["speaker", "utterance_id"], ignore_index=True))
    for row in manifest.itertuples():
        number = int(row.utterance_id.split("_")[1])
        assert (root / row.path).is_file() and "\\" not in row.path
        assert row.utterance_id == Path(row.path).stem and row.speaker == row.utterance_id[:4]
        assert row.language == speaker_language(row.speaker)
        assert row.emotion in EMOTIONS and number in utterance_numbers(row.emotion, PER_EMOTION)
        assert row.text == transcript_text(row.speaker, number)
    assert set(manifest["split"]) == {"train", "val", "test"}
    assert set(manifest["language"]) == {"en", "zh"}


def test_flat_layout_derives_the_same_split_as_split_folders(tmp_path: Path) -> None:
    nested = index_corpus(write_esd_tree(tmp_path / "nested", SPEAKERS, per_emotion=PER_EMOTION))
    flat = index_corpus(
        write_esd_tree(tmp_path / "flat", SPEAKERS, per_emotion=PER_EMOTION, split_folders=False)
    )
    pd.testing.assert_frame_equal(_without_path(flat), _without_path(nested))
    assert all(Path(p).parent.name in {"train", "evaluation", "test"} for p in nested["path"])
    assert all(Path(p).parent.name in {e.capitalize() for e in EMOTIONS} for p in flat["path"])


def test_split_folder_wins_over_the_id(tmp_path: Path) -> None:
    root = write_esd_tree(tmp_path, ["0011"], emotions=["sad"], per_emotion=1)
    (wav,) = root.glob("0011/Sad/evaluation/*.wav")
    (root / "0011/Sad/train").mkdir()
    wav.rename(root / "0011/Sad/train" / wav.name)
    assert split_of_number(int(wav.stem[-6:])) == "val"
    assert index_corpus(root)["split"].tolist() == ["train"]


@pytest.mark.parametrize(
    ("speaker", "encoding"),
    [("0001", "gb2312"), ("0002", "utf-16"), ("0011", "utf-8"), ("0012", "latin-1"), ("0013", "utf-8-sig")],
)
def test_transcripts_decode_in_every_encoding(tmp_path: Path, speaker: str, encoding: str) -> None:
    root = write_esd_tree(tmp_path, [speaker], per_emotion=2, encoding={speaker: encoding})
    raw = (root / speaker / f"{speaker}.txt").read_bytes()
    if encoding in ("gb2312", "latin-1"):
        with pytest.raises(UnicodeDecodeError):
            raw.decode("utf-8")
    manifest = index_corpus(root)
    expected = [transcript_text(speaker, int(uid[-6:])) for uid in manifest["utterance_id"]]
    assert manifest["text"].tolist() == expected
    assert any(not text.isascii() for text in expected)  # the encoding matters for these lines


@pytest.mark.parametrize("speaker", ["0001", "0011"])
def test_broken_transcript_lines_keep_every_readable_text(tmp_path: Path, speaker: str) -> None:
    root = write_esd_tree(tmp_path, [speaker], per_emotion=2, broken_lines=True)
    manifest = index_corpus(root)
    numbers = sorted(int(uid[-6:]) for uid in manifest["utterance_id"])
    texts = dict(zip(manifest["utterance_id"], manifest["text"], strict=True))
    # esd_tree damages the first three lines: spaces for tabs, no emotion field, id only
    assert texts[f"{speaker}_{numbers[0]:06d}"] == transcript_text(speaker, numbers[0])
    assert texts[f"{speaker}_{numbers[1]:06d}"] == transcript_text(speaker, numbers[1])
    assert texts[f"{speaker}_{numbers[2]:06d}"] == ""
    for number in numbers[3:]:
        assert texts[f"{speaker}_{number:06d}"] == transcript_text(speaker, number)


def test_read_transcript_skips_lines_without_id_or_text(tmp_path: Path) -> None:
    path = tmp_path / "0011.txt"
    path.write_text(
        "0011_000001\tHello there.\tNeutral\n\n0011_000002\t\tNeutral\nheader line\n"
        "0011_000351 Sad words, said the Angry man. Angry\n0011_000352\tNo emotion field\n",
        encoding="utf-8",
    )
    assert read_transcript(path) == {
        "0011_000001": "Hello there.",
        "0011_000351": "Sad words, said the Angry man.",
        "0011_000352": "No emotion field",
    }


def test_junk_is_ignored(tmp_path: Path) -> None:
    clean = index_corpus(write_esd_tree(tmp_path / "clean", SPEAKERS, per_emotion=2, junk=False))
    messy_root = write_esd_tree(tmp_path / "messy", SPEAKERS, per_emotion=2, junk=True)
    assert list(messy_root.rglob(".DS_Store")) and list(messy_root.rglob("._*.wav"))
    pd.testing.assert_frame_equal(index_corpus(messy_root), clean)


def test_emotion_folders_match_case_insensitively(tmp_path: Path) -> None:
    root = write_esd_tree(tmp_path, ["0011"], emotions=["happy", "angry"], per_emotion=2)
    (root / "0011/Happy").rename(root / "0011/HAPPY")
    (root / "0011/Angry").rename(root / "0011/angry")
    assert index_corpus(root)["emotion"].value_counts().to_dict() == {"happy": 2, "angry": 2}


def test_wavs_that_do_not_fit_are_all_listed(tmp_path: Path) -> None:
    root = write_esd_tree(tmp_path, ["0001", "0011"], emotions=["neutral", "angry"], per_emotion=1)
    moved = [root / "0001/Angry/evaluation/0001_000001.wav", root / "0011/Neutral/evaluation/0011_000351.wav"]
    (root / "0001/Neutral/evaluation/0001_000001.wav").rename(moved[0])
    (root / "0011/Angry/evaluation/0011_000351.wav").rename(moved[1])
    shutil.copy(root / "0001/Angry/evaluation/0001_000351.wav", root / "0001/Angry/0001_000351.wav")
    with pytest.raises(CorpusError) as caught:
        index_corpus(root)
    message = str(caught.value)
    for path in moved:
        assert path.relative_to(root).as_posix() in message
    assert "0001_000351 appears 2 times" in message
    assert str(root) in message and "Move or rename" in message


def test_missing_root_is_reported(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="does not exist") as caught:
        index_corpus(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(caught.value)


def test_root_without_speakers_is_reported_with_a_hint(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="no speaker folders") as caught:
        index_corpus(tmp_path / "empty")
    assert "<root>/<spk>/<Emotion>/" in str(caught.value)
    write_esd_tree(tmp_path / "download" / "ESD", ["0011"], per_emotion=1)
    with pytest.raises(CorpusError, match="one level down") as caught:
        index_corpus(tmp_path / "download")
    assert str(tmp_path / "download" / "ESD") in str(caught.value)


def test_speakers_without_wavs_are_reported(tmp_path: Path) -> None:
    (tmp_path / "0011" / "Neutral" / "train").mkdir(parents=True)
    (tmp_path / "0011" / "0011.txt").write_text("0011_000001\tHi.\tNeutral\n")
    with pytest.raises(CorpusError, match="no wav files") as caught:
        index_corpus(tmp_path)
    assert "<spk>_<nnnnnn>.wav" in str(caught.value)


def test_latin1_english_transcript_is_not_read_as_gb18030(tmp_path: Path) -> None:
    """Latin-1 "élan" is also valid gb18030 bytes; an English speaker's file must decode as Latin-1."""
    path = tmp_path / "0011.txt"
    path.write_bytes("0011_000001\tAn élan vital.\tNeutral\n".encode("latin-1"))
    assert read_transcript(path) == {"0011_000001": "An élan vital."}
