"""Audio loading: usable files come back as 16 kHz mono float32, every unusable one says why."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sed_uda.corpus.audio import AudioProblem, audio_duration, load_audio

RATE = 16_000


def _tone(seconds: float, rate: int = RATE, hz: float = 440.0) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * hz * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def _good_wav(folder: Path, seconds: float = 0.5) -> Path:
    path = folder / "good.wav"
    sf.write(path, _tone(seconds), RATE, subtype="PCM_16")
    return path


def _dominant_hz(signal: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(signal))
    return float(np.fft.rfftfreq(len(signal), 1 / rate)[spectrum.argmax()])


def test_good_file_round_trips(tmp_path: Path) -> None:
    path = _good_wav(tmp_path)
    audio, conversions = load_audio(path)
    expected, _ = sf.read(path, dtype="float32")
    assert conversions == ()
    assert audio.dtype == np.float32 and audio.ndim == 1
    np.testing.assert_array_equal(audio, expected)
    assert audio_duration(path) == pytest.approx(0.5)


@pytest.mark.slow
def test_stereo_44k1_is_downmixed_and_resampled(tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    left = _tone(0.5, rate=44_100)
    sf.write(path, np.stack([left, np.zeros_like(left)], axis=1), 44_100, subtype="PCM_16")
    audio, conversions = load_audio(path, sample_rate=RATE)
    assert conversions == ("down-mixed 2 channels to mono", "resampled 44100 Hz -> 16000 Hz")
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert len(audio) == pytest.approx(0.5 * RATE, abs=2)
    assert _dominant_hz(audio, RATE) == pytest.approx(440.0, abs=4)
    assert np.abs(audio).max() == pytest.approx(0.25, abs=0.02)  # mean of the tone and a silent channel


def _write_float(path: Path, samples: np.ndarray) -> Path:
    sf.write(path, samples, RATE, subtype="FLOAT")
    return path


def _nan_wav(folder: Path) -> Path:
    samples = _tone(0.5)
    samples[100] = np.nan
    return _write_float(folder / "nan.wav", samples)


def _inf_wav(folder: Path) -> Path:
    samples = _tone(0.5)
    samples[100] = np.inf
    return _write_float(folder / "inf.wav", samples)


def _empty_wav(folder: Path) -> Path:
    (folder / "empty.wav").write_bytes(b"")
    return folder / "empty.wav"


def _truncated_header(folder: Path) -> Path:
    (folder / "cut.wav").write_bytes(_good_wav(folder).read_bytes()[:20])
    return folder / "cut.wav"


def _not_audio(folder: Path) -> Path:
    (folder / "text.wav").write_text("this is a transcript, not a wav file\n" * 4)
    return folder / "text.wav"


def _short_wav(folder: Path) -> Path:
    return _good_wav(folder, seconds=0.05)


def _dithered_silence(folder: Path) -> Path:
    """2 s of digital silence with +-1 LSB dither (about -90 dBFS)."""
    dither = np.random.default_rng(0).integers(-1, 2, size=2 * RATE).astype(np.int16)
    sf.write(folder / "dither.wav", dither, RATE, subtype="PCM_16")
    return folder / "dither.wav"


def _silent_wav(folder: Path) -> Path:
    sf.write(folder / "silent.wav", np.zeros(RATE, dtype=np.int16), RATE, subtype="PCM_16")
    return folder / "silent.wav"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda folder: folder / "missing.wav", "file not found"),
        (_empty_wav, "empty file (0 bytes)"),
        (_truncated_header, "unreadable header: "),
        (_not_audio, "unreadable header: "),
        (_short_wav, "too short: 0.05 s < 0.25 s"),
        (_silent_wav, "silent: all samples are zero"),
        (_dithered_silence, "near-silent: RMS level -9"),
        (_nan_wav, "contains NaN/inf samples"),
        (_inf_wav, "contains NaN/inf samples"),
    ],
)
def test_unusable_files_say_why(tmp_path: Path, make, reason: str) -> None:
    path = make(tmp_path)
    with pytest.raises(AudioProblem) as caught:
        load_audio(path)
    assert caught.value.path == str(path)
    assert caught.value.reason.startswith(reason)
    assert str(caught.value) == f"{path}: {caught.value.reason}"


def test_short_after_resampling_counts_target_rate_duration(tmp_path: Path) -> None:
    path = tmp_path / "short44k.wav"
    sf.write(path, _tone(0.2, rate=44_100), 44_100, subtype="PCM_16")
    with pytest.raises(AudioProblem, match=r"too short: 0\.20 s < 0\.25 s"):
        load_audio(path)
    audio, _ = load_audio(path, min_duration_s=0.1)
    assert len(audio) == pytest.approx(0.2 * RATE, abs=2)


def test_header_reason_carries_libsndfile_words(tmp_path: Path) -> None:
    with pytest.raises(AudioProblem) as caught:
        audio_duration(_truncated_header(tmp_path))
    detail = caught.value.reason.removeprefix("unreadable header: ")
    assert detail and "Error opening" not in detail


def test_duration_of_missing_file_is_an_audio_problem(tmp_path: Path) -> None:
    with pytest.raises(AudioProblem, match="file not found"):
        audio_duration(tmp_path / "missing.wav")


def test_audio_problem_survives_pickling(tmp_path: Path) -> None:
    problem = pickle.loads(pickle.dumps(AudioProblem(tmp_path / "a.wav", "silent: all samples are zero")))
    assert (problem.path, problem.reason) == (str(tmp_path / "a.wav"), "silent: all samples are zero")
