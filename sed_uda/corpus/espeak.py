"""A minimal ctypes binding to libespeak-ng (from the `espeakng-loader` wheel): text -> 16 kHz waveform.

eSpeak NG keeps global state and is not thread-safe, so there is one engine per process (`engine()`).
That state also carries over between calls (e.g. the phase of its pitch flutter), so the samples of a
call depend on the calls made before it in the same process: reproducible audio needs the same
sequence of calls in a fresh process, with the noise seed set per call (`seed=`).
"""

from __future__ import annotations

import ctypes
from math import gcd

import espeakng_loader
import numpy as np
from scipy.signal import resample_poly

AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_DONT_EXIT = 0x8000  # report errors instead of calling exit()
POS_CHARACTER = 1
CHARS_UTF8 = 1
EE_OK = 0
PARAMETERS: dict[str, int] = {"rate": 1, "volume": 2, "pitch": 3, "range": 4}
"""espeak_PARAMETER ids: rate in words/min (80-450), volume 0-200, pitch and range 0-100."""

_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class EspeakError(RuntimeError):
    """libespeak-ng could not be loaded or refused a request."""


class Espeak:
    """One initialised libespeak-ng in synchronous mode; `synthesize` returns float32 audio."""

    def __init__(self) -> None:
        library_path, data_path = espeakng_loader.get_library_path(), espeakng_loader.get_data_path()
        try:
            self._lib = ctypes.CDLL(library_path)
        except OSError as error:
            raise EspeakError(
                f"cannot load eSpeak NG from {library_path}: {error}. "
                "Reinstall it with: pip install --force-reinstall espeakng-loader"
            ) from error
        self._lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self._lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self._lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self._lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        self._lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        rate = self._lib.espeak_Initialize(
            AUDIO_OUTPUT_SYNCHRONOUS, 0, str(data_path).encode(), INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise EspeakError(
                f"eSpeak NG failed to initialise with voice data {data_path}. "
                "Reinstall it with: pip install --force-reinstall espeakng-loader"
            )
        self.sample_rate: int = rate
        self._chunks: list[np.ndarray] = []
        self._callback = _SynthCallback(self._collect)  # keep a reference: C holds only a pointer
        self._lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, samples, count: int, _events) -> int:
        if samples and count > 0:
            self._chunks.append(np.ctypeslib.as_array(samples, shape=(count,)).copy())
        return 0  # 0 = keep synthesising

    def synthesize(self, text: str, voice: str, seed: int = 0, **parameters: int) -> np.ndarray:
        """Speak `text` with `voice` (e.g. "en-us+m3", "cmn+f2") and the given PARAMETERS.

        `seed` seeds eSpeak's noise generator (aspiration, breathy variants) for this call.
        Returns float32 samples in [-1, 1] at the engine's native rate (`self.sample_rate`).
        """
        if self._lib.espeak_SetVoiceByName(voice.encode()) != EE_OK:
            raise EspeakError(f"eSpeak NG has no voice {voice!r} in its bundled data")
        for name, value in parameters.items():
            if name not in PARAMETERS:
                raise ValueError(f"unknown eSpeak parameter {name!r}; expected one of {sorted(PARAMETERS)}")
            self._lib.espeak_SetParameter(PARAMETERS[name], int(value), 0)
        data = text.encode("utf-8") + b"\0"
        self._lib.espeak_ng_SetRandSeed(seed)
        self._chunks = []
        status = self._lib.espeak_Synth(data, len(data), 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
        if status != EE_OK:
            raise EspeakError(f"eSpeak NG failed (error {status}) to speak {text!r} with voice {voice!r}")
        if not self._chunks:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(self._chunks).astype(np.float32) / 32768.0

    def synthesize_at(
        self, text: str, voice: str, sample_rate: int, seed: int = 0, **parameters: int
    ) -> np.ndarray:
        """`synthesize`, resampled (polyphase) from eSpeak's 22,050 Hz to `sample_rate`."""
        audio = self.synthesize(text, voice, seed, **parameters)
        divisor = gcd(sample_rate, self.sample_rate)
        return resample_poly(audio, sample_rate // divisor, self.sample_rate // divisor).astype(np.float32)


_engine: Espeak | None = None


def engine() -> Espeak:
    """This process's eSpeak NG engine, created on first use (pools must spawn or forkserver, not fork)."""
    global _engine
    if _engine is None:
        _engine = Espeak()
    return _engine
