"""The bundled corpus generator: ESD layout, transcripts, audio format, reproducibility, argument checks."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sed_uda.corpus import synth as synth_module
from sed_uda.corpus.esd import SYNTH_MARKER, CorpusError, index_corpus, read_transcript
from sed_uda.corpus.layout import (
    BLOCK_SIZE,
    EMOTION_FOLDERS,
    EMOTIONS,
    SAMPLE_RATE,
    ZH_EMOTION_WORDS,
    speaker_ids,
    split_of_number,
    utterance_number,
)
from sed_uda.corpus.synth import block_offsets, plan_corpus, sentences, synthesize_corpus
from sed_uda.errors import OutputExists

TINY = {"speakers_per_language": 2, "utterances_per_emotion": 8}
"""The size the session fixture `tiny_corpus` is built with (tests/conftest.py)."""


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("n", [3, 8, 17, 40, 100, 349])
def test_block_offsets_fill_every_split_inside_the_block(n: int) -> None:
    offsets = block_offsets(n)
    assert len(offsets) == len(set(offsets)) == n
    assert all(0 <= k < BLOCK_SIZE for k in offsets)
    splits = [split_of_number(utterance_number("sad", k)) for k in offsets]
    assert {s: splits.count(s) > 0 for s in ("train", "val", "test")} == {
        "train": True,
        "val": True,
        "test": True,
    }


def test_full_block_is_exactly_esd() -> None:
    assert block_offsets(BLOCK_SIZE) == list(range(BLOCK_SIZE))


def test_sentences_are_parallel_and_mandarin_is_written_in_characters() -> None:
    english, mandarin = sentences("en"), sentences("zh")
    assert len(english) == len(mandarin) >= 100
    assert len(set(english)) == len(english)
    assert all(re.search(r"[\u4e00-\u9fff]", line) for line in mandarin)
    assert not any(re.search(r"[\u4e00-\u9fff]", line) for line in english)


def test_corpus_has_esd_layout_and_the_esd_reader_reads_it(tiny_corpus: Path) -> None:
    plan = plan_corpus(**TINY)
    wavs = sorted(p.relative_to(tiny_corpus).as_posix() for p in tiny_corpus.rglob("*.wav"))
    assert wavs == sorted(u.path for u in plan)
    assert (tiny_corpus / "ReadMe.txt").read_text(encoding="utf-8").strip()

    manifest = index_corpus(tiny_corpus)
    speakers = speaker_ids("zh", 2) + speaker_ids("en", 2)
    assert sorted(manifest["speaker"].unique()) == sorted(speakers)
    expected = {u.utterance_id: u for u in plan}
    for row in manifest.itertuples():
        utterance = expected[row.utterance_id]
        assert (row.language, row.emotion, row.text) == (
            utterance.language,
            utterance.emotion,
            utterance.text,
        )
        assert row.split == split_of_number(utterance.number)
        folder = {"train": "train", "val": "evaluation", "test": "test"}[row.split]
        assert row.path.split("/")[1:3] == [EMOTION_FOLDERS[row.emotion], folder]
    counts = manifest.groupby(["speaker", "emotion", "split"]).size()
    assert (counts > 0).all() and len(counts) == len(speakers) * len(EMOTIONS) * 3


def test_parallel_utterances_share_the_sentence_across_emotions_and_languages(tiny_corpus: Path) -> None:
    manifest = index_corpus(tiny_corpus)
    manifest["offset"] = manifest["utterance_id"].str[-6:].astype(int).map(lambda n: (n - 1) % BLOCK_SIZE)
    english, mandarin = sentences("en"), sentences("zh")
    for row in manifest.itertuples():
        lines = english if row.language == "en" else mandarin
        assert row.text == lines[row.offset % len(lines)]


def test_transcripts_are_utf8_with_esd_emotion_words(tiny_corpus: Path) -> None:
    for speaker in speaker_ids("zh", 2) + speaker_ids("en", 2):
        path = tiny_corpus / speaker / f"{speaker}.txt"
        lines = path.read_bytes().decode("utf-8").splitlines()
        assert len(lines) == len(EMOTIONS) * TINY["utterances_per_emotion"]
        words = ZH_EMOTION_WORDS if speaker in speaker_ids("zh", 2) else EMOTION_FOLDERS
        for line in lines:
            utterance_id, text, word = line.split("\t")
            assert re.fullmatch(rf"{speaker}_\d{{6}}", utterance_id) and text
            wav = next(tiny_corpus.glob(f"{speaker}/*/*/{utterance_id}.wav"))
            assert word == words[next(e for e, f in EMOTION_FOLDERS.items() if f == wav.parts[-3])]
        assert len(read_transcript(path)) == len(lines)


def test_audio_is_16k_mono_int16_speech(tiny_corpus: Path) -> None:
    for wav in sorted(tiny_corpus.rglob("*.wav"))[::7]:
        info = sf.info(wav)
        assert (info.samplerate, info.channels, info.subtype) == (SAMPLE_RATE, 1, "PCM_16")
        samples, _ = sf.read(wav, dtype="float32")
        assert 0.5 < len(samples) / SAMPLE_RATE < 10
        assert np.sqrt(np.mean(samples**2)) > 0.01, f"{wav} is nearly silent"


@pytest.mark.slow
def test_same_seed_is_byte_identical_whatever_the_workers_and_another_seed_differs(tmp_path: Path) -> None:
    size = {"speakers_per_language": 1, "utterances_per_emotion": 3}
    first = _files(synthesize_corpus(tmp_path / "a", seed=3, workers=1, **size))
    parallel = _files(synthesize_corpus(tmp_path / "b", seed=3, workers=2, **size))
    other = _files(synthesize_corpus(tmp_path / "c", seed=4, workers=1, **size))
    assert len(first) == 2 * (len(EMOTIONS) * 3 + 1) + 2  # wavs + transcripts + ReadMe + marker
    assert first == parallel
    wavs = [name for name in first if name.endswith(".wav")]
    assert all(first[name] != other[name] for name in wavs)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"speakers_per_language": 0}, "speakers_per_language=0"),
        ({"speakers_per_language": 11}, "speakers_per_language=11"),
        ({"utterances_per_emotion": 2}, "utterances_per_emotion=2"),
        ({"utterances_per_emotion": 351}, "utterances_per_emotion=351"),
        ({"workers": 0}, "workers=0"),
    ],
)
def test_invalid_arguments_are_refused_before_writing(tmp_path: Path, arguments: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        synthesize_corpus(tmp_path / "out", **arguments)
    assert not (tmp_path / "out").exists()


def test_refuses_to_write_into_a_folder_of_other_files_and_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / "old.wav").write_bytes(b"keep me")
    with pytest.raises(OutputExists, match=f"{tmp_path}: already holds files"):
        synthesize_corpus(tmp_path, speakers_per_language=1, utterances_per_emotion=3)
    assert _files(tmp_path) == {"old.wav": b"keep me"}


def test_refuses_a_file_as_output_folder(tmp_path: Path) -> None:
    (tmp_path / "corpus").write_bytes(b"keep me")
    with pytest.raises(OutputExists, match="is a file, not a folder"):
        synthesize_corpus(tmp_path / "corpus", speakers_per_language=1, utterances_per_emotion=3)
    assert (tmp_path / "corpus").read_bytes() == b"keep me"


def test_a_finished_corpus_is_kept_and_other_settings_are_refused(tiny_corpus: Path, capsys) -> None:
    before = _files(tiny_corpus)
    assert synthesize_corpus(tiny_corpus, **TINY) == tiny_corpus
    assert "nothing to do" in capsys.readouterr().out
    with pytest.raises(OutputExists, match="--speakers-per-language 2 --utterances-per-emotion 8 --seed 0"):
        synthesize_corpus(tiny_corpus, speakers_per_language=1, utterances_per_emotion=8)
    assert _files(tiny_corpus) == before


@pytest.mark.slow
def test_an_interrupted_synth_is_refused_by_the_reader_and_resumes_to_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    size = {"speakers_per_language": 1, "utterances_per_emotion": 3}
    reference = _files(synthesize_corpus(tmp_path / "reference", **size))

    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(synth_module, "_write_transcripts", interrupted)
        with pytest.raises(KeyboardInterrupt):
            synthesize_corpus(tmp_path / "corpus", **size)
    block = sorted((tmp_path / "corpus" / "0011" / "Sad").rglob("*.wav"))
    block[-1].unlink()  # as if killed inside a block
    assert not list((tmp_path / "corpus").rglob(".*.part"))
    with pytest.raises(CorpusError, match=f"{SYNTH_MARKER}: this bundled corpus is incomplete") as refused:
        index_corpus(tmp_path / "corpus")
    assert f"sed-uda synth --out {tmp_path / 'corpus'} --speakers-per-language 1" in str(refused.value)

    capsys.readouterr()
    synthesize_corpus(tmp_path / "corpus", **size)
    assert "9 of 10 blocks already written" in capsys.readouterr().out
    assert _files(tmp_path / "corpus") == reference
