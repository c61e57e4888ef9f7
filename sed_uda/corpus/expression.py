"""How the bundled corpus renders emotion, speakers and recording channels on top of eSpeak NG.

Emotion is carried by prosody (eSpeak's rate, pitch, pitch range and volume) and by voice quality
added with DSP afterwards. Values are per language, because the two languages express emotion
differently (Mandarin keeps its pitch range for lexical tones and leans more on rate and voice quality;
English uses pitch range and loudness more):

| emotion  | lang | rate x | pitch + | range | volume x | tilt dB | tremolo | breath | drive | final rise |
|----------|------|--------|---------|-------|----------|---------|---------|--------|-------|------------|
| neutral  | en   | 1.00   | 0       | 40    | 1.00     | 0       | 0       | 0      | 0     | 0 st       |
| happy    | en   | 1.15   | +10     | 75    | 1.15     | +3      | 0       | 0      | 0     | 0 st       |
| angry    | en   | 1.12   | +4      | 55    | 1.60     | +6      | 0       | 0      | 0.6   | 0 st       |
| sad      | en   | 0.80   | -10     | 12    | 0.70     | -6      | 0.25    | 0.06   | 0     | -1 st      |
| surprise | en   | 0.90   | +18     | 95    | 1.10     | +1      | 0       | 0      | 0     | +7 st      |
| neutral  | zh   | 1.00   | 0       | 45    | 1.00     | 0       | 0       | 0      | 0     | 0 st       |
| happy    | zh   | 1.22   | +10     | 65    | 1.10     | +4      | 0       | 0      | 0     | 0 st       |
| angry    | zh   | 1.25   | +8      | 50    | 1.30     | +8      | 0       | 0      | 1.0   | 0 st       |
| sad      | zh   | 0.72   | -6      | 30    | 0.80     | -8      | 0.35    | 0.10   | 0     | 0 st       |
| surprise | zh   | 0.95   | +18     | 80    | 1.10     | +1      | 0       | 0      | 0     | +6 st      |

(rate x and volume x scale the speaker's own values; pitch + moves eSpeak's 0-100 pitch; tilt is a
high-shelf gain above 1.5 kHz; tremolo is the depth of a 5-6 Hz amplitude-and-pitch wobble; breath is the
level of envelope-following high-passed noise; drive is loudness-preserving soft clipping (pressed
voice); final rise raises the pitch of the last 35 % of the utterance by that many semitones.)

No single cue separates the classes: every speaker has its own base pitch, rate, loudness, eSpeak voice
variant, a formant-like EQ peak and an expressiveness factor that scales how far the emotion moves
away from neutral, and every utterance draws small random deviations of every parameter.

The languages also differ as real corpora do: the language itself (tonal Mandarin vs English), different
speakers, and a recording channel per language (band-pass, EQ, noise floor, level):

| language | band-pass      | EQ                  | noise floor                          | level |
|----------|----------------|---------------------|--------------------------------------|-------|
| en       | 60 - 7,600 Hz  | flat                | -62 dB white                         | -2 dB |
| zh       | 150 - 5,500 Hz | +4 dB peak at 2 kHz | -52 dB low-passed, 50 Hz hum -54 dB  | -5 dB |

Every random draw comes from a numpy Generator the caller seeds, so rendering is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.signal import butter, sosfilt, sosfiltfilt

from sed_uda.corpus.layout import SAMPLE_RATE


@dataclass(frozen=True)
class Style:
    """The prosody and voice quality of one emotion in one language (see the module table)."""

    rate: float = 1.0
    pitch: float = 0.0
    range: float = 40.0
    volume: float = 1.0
    tilt_db: float = 0.0
    tremolo: float = 0.0
    breath: float = 0.0
    drive: float = 0.0
    final_rise: float = 0.0


STYLES: dict[str, dict[str, Style]] = {
    "en": {
        "neutral": Style(),
        "happy": Style(rate=1.15, pitch=10, range=75, volume=1.15, tilt_db=3),
        "angry": Style(rate=1.12, pitch=4, range=55, volume=1.6, tilt_db=6, drive=0.6),
        "sad": Style(
            rate=0.80, pitch=-10, range=12, volume=0.7, tilt_db=-6, tremolo=0.25, breath=0.06, final_rise=-1
        ),
        "surprise": Style(rate=0.90, pitch=18, range=95, volume=1.1, tilt_db=1, final_rise=7),
    },
    "zh": {
        "neutral": Style(range=45),
        "happy": Style(rate=1.22, pitch=10, range=65, volume=1.1, tilt_db=4),
        "angry": Style(rate=1.25, pitch=8, range=50, volume=1.3, tilt_db=8, drive=1.0),
        "sad": Style(rate=0.72, pitch=-6, range=30, volume=0.8, tilt_db=-8, tremolo=0.35, breath=0.10),
        "surprise": Style(rate=0.95, pitch=18, range=80, volume=1.1, tilt_db=1, final_rise=6),
    },
}
"""Language -> emotion -> Style."""


@dataclass(frozen=True)
class Channel:
    """A language's recording chain: band-pass, one EQ peak, noise floor and level."""

    low_hz: float
    high_hz: float
    eq_hz: float
    eq_db: float
    noise_db: float
    noise_lowpass_hz: float | None
    hum_db: float | None
    level_db: float


CHANNELS: dict[str, Channel] = {
    "en": Channel(60, 7600, 1000, 0.0, -62, None, None, -2),
    "zh": Channel(150, 5500, 2000, 4.0, -52, 3000, -54, -5),
}

VARIANTS: dict[str, tuple[str, ...]] = {
    "en": ("m1", "f1", "m3", "f2", "m5", "f3", "m7", "f4", "m2", "f5"),
    "zh": ("f2", "m2", "f4", "m4", "f1", "m6", "f5", "m1", "f3", "m8"),
}
"""eSpeak voice variants given to speakers 1..10 of each language (alternating sexes)."""
ESPEAK_LANGUAGE: dict[str, str] = {"en": "en-us", "zh": "cmn"}


@dataclass(frozen=True)
class Speaker:
    """One synthetic speaker: an eSpeak voice plus personal prosody, timbre and expressiveness."""

    voice: str
    pitch: float
    rate: float
    range_scale: float
    volume: float
    expressiveness: float
    formant_hz: float
    formant_db: float


def make_speaker(language: str, index: int, rng: np.random.Generator) -> Speaker:
    """The `index`-th (0-based) speaker of `language`, with personal traits drawn from `rng`."""
    variant = VARIANTS[language][index % len(VARIANTS[language])]
    return Speaker(
        voice=f"{ESPEAK_LANGUAGE[language]}+{variant}",
        pitch=rng.uniform(35, 60),
        rate=rng.uniform(145, 190),
        range_scale=rng.uniform(0.8, 1.2),
        volume=rng.uniform(70, 100),
        expressiveness=rng.uniform(0.75, 1.15),
        formant_hz=rng.uniform(600, 3200),
        formant_db=rng.uniform(-5, 5),
    )


def utterance_style(language: str, emotion: str, speaker: Speaker, rng: np.random.Generator) -> Style:
    """The emotion's style moved toward neutral by the speaker's expressiveness, plus per-utterance noise."""
    neutral, target = STYLES[language]["neutral"], STYLES[language][emotion]
    k = speaker.expressiveness * rng.uniform(0.85, 1.15)

    def mix(name: str) -> float:
        base = getattr(neutral, name)
        return base + k * (getattr(target, name) - base)

    return replace(
        target,
        rate=mix("rate") * rng.uniform(0.94, 1.06),
        pitch=mix("pitch") + rng.normal(0, 3),
        range=mix("range") + rng.normal(0, 6),
        volume=mix("volume") * rng.uniform(0.9, 1.1),
        tilt_db=mix("tilt_db") + rng.normal(0, 1.5),
        tremolo=mix("tremolo"),
        breath=mix("breath"),
        drive=mix("drive"),
        final_rise=mix("final_rise") + rng.normal(0, 0.5),
    )


def espeak_parameters(style: Style, speaker: Speaker) -> dict[str, int]:
    """eSpeak's rate, pitch, range and volume for a speaker speaking in `style`, clipped to valid ranges."""
    return {
        "rate": int(np.clip(round(speaker.rate * style.rate), 80, 400)),
        "pitch": int(np.clip(round(speaker.pitch + style.pitch), 0, 100)),
        "range": int(np.clip(round(style.range * speaker.range_scale), 0, 100)),
        "volume": int(np.clip(round(speaker.volume * style.volume), 10, 200)),
    }


def _biquad(kind: str, freq: float, gain_db: float, q: float = 0.7, sr: int = SAMPLE_RATE) -> np.ndarray:
    """RBJ-cookbook peaking or high-shelf filter as one second-order section."""
    a_gain, w0 = 10 ** (gain_db / 40), 2 * np.pi * freq / sr
    alpha, cos = np.sin(w0) / (2 * q), np.cos(w0)
    if kind == "peak":
        b = [1 + alpha * a_gain, -2 * cos, 1 - alpha * a_gain]
        a = [1 + alpha / a_gain, -2 * cos, 1 - alpha / a_gain]
    else:  # high shelf
        root = 2 * np.sqrt(a_gain) * alpha
        b = [
            a_gain * ((a_gain + 1) + (a_gain - 1) * cos + root),
            -2 * a_gain * ((a_gain - 1) + (a_gain + 1) * cos),
            a_gain * ((a_gain + 1) + (a_gain - 1) * cos - root),
        ]
        a = [
            (a_gain + 1) - (a_gain - 1) * cos + root,
            2 * ((a_gain - 1) - (a_gain + 1) * cos),
            (a_gain + 1) - (a_gain - 1) * cos - root,
        ]
    return np.concatenate([np.divide(b, a[0]), np.divide(a, a[0])])[None, :]


def _warp(audio: np.ndarray, speed: np.ndarray) -> np.ndarray:
    """Read `audio` at a time-varying speed (1 = unchanged); speed > 1 raises pitch and shortens."""
    positions = np.cumsum(speed) - speed[0]
    positions = positions[positions <= len(audio) - 1]
    return np.interp(positions, np.arange(len(audio)), audio).astype(np.float32)


def _envelope(audio: np.ndarray, sr: int) -> np.ndarray:
    """Smoothed amplitude envelope (30 Hz low-pass of |x|)."""
    return np.maximum(sosfiltfilt(butter(2, 30, fs=sr, output="sos"), np.abs(audio)), 0.0)


def apply_voice_quality(
    audio: np.ndarray, style: Style, speaker: Speaker, rng: np.random.Generator, sr: int = SAMPLE_RATE
) -> np.ndarray:
    """Speaker timbre (formant EQ) and the style's tilt, tremolo, breathiness, drive and final rise."""
    out = sosfilt(_biquad("peak", speaker.formant_hz, speaker.formant_db, q=1.2, sr=sr), audio)
    out = sosfilt(_biquad("shelf", 1500, style.tilt_db, sr=sr), out)
    n = len(out)
    if style.tremolo > 0:
        hz, phase = rng.uniform(5, 6), rng.uniform(0, 2 * np.pi)
        wobble = np.sin(2 * np.pi * hz * np.arange(n) / sr + phase)
        out = _warp(out * (1 + style.tremolo * wobble), 1 + 0.1 * style.tremolo * wobble)
    if style.breath > 0:
        noise = sosfilt(butter(2, 1500, btype="highpass", fs=sr, output="sos"), rng.standard_normal(len(out)))
        out = out + style.breath * 4 * _envelope(out, sr) * noise
    if style.drive > 0:
        gain, peak = 1 + 4 * style.drive, max(float(np.max(np.abs(out))), 1e-6)
        pressed = np.tanh(gain * out / peak)
        out = pressed * np.sqrt(np.mean(out**2) / max(float(np.mean(pressed**2)), 1e-12))  # same loudness
    if abs(style.final_rise) > 0.05:
        start = int(0.65 * len(out))
        ramp = np.linspace(0, 1, len(out) - start) ** 2
        speed = np.concatenate([np.ones(start), 2 ** (style.final_rise * ramp / 12)])
        out = _warp(out, speed)
    return np.asarray(out, dtype=np.float32)


def apply_channel(
    audio: np.ndarray, language: str, rng: np.random.Generator, sr: int = SAMPLE_RATE
) -> np.ndarray:
    """Record `audio` through the language's channel: silence padding, filters, level, noise floor, hum."""
    channel = CHANNELS[language]
    lead, tail = (np.zeros(int(rng.uniform(0.1, 0.3) * sr), np.float32) for _ in range(2))
    out = np.concatenate([lead, audio, tail])
    out = sosfilt(butter(2, [channel.low_hz, channel.high_hz], btype="bandpass", fs=sr, output="sos"), out)
    out = sosfilt(_biquad("peak", channel.eq_hz, channel.eq_db, q=1.0, sr=sr), out)
    out = out * 10 ** ((channel.level_db + rng.normal(0, 1.5)) / 20)
    noise = rng.standard_normal(len(out))
    if channel.noise_lowpass_hz is not None:
        noise = sosfilt(butter(1, channel.noise_lowpass_hz, fs=sr, output="sos"), noise)
    out = out + 10 ** (channel.noise_db / 20) * noise
    if channel.hum_db is not None:
        t = np.arange(len(out)) / sr
        out = out + 10 ** (channel.hum_db / 20) * np.sin(2 * np.pi * 50 * t + rng.uniform(0, 2 * np.pi))
    return np.clip(out, -1.0, 32767 / 32768).astype(np.float32)
