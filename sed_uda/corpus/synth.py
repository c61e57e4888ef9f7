"""The bundled bilingual emotional speech corpus: eSpeak NG speech written in ESD's exact layout.

`synthesize_corpus` writes `<out>/<spk>/<Emotion>/<train|evaluation|test>/<spk>_<nnnnnn>.wav`
(16 kHz mono int16), a transcript `<out>/<spk>/<spk>.txt` per speaker and `<out>/ReadMe.txt`, so the
ESD reader reads it like the real corpus. How emotions, speakers and channels are rendered is in
`sed_uda.corpus.expression`.

Interruptions: the settings go to `<out>/sed_uda_synth.json` (`esd.SYNTH_MARKER`) before the first wav,
marked complete only after the last file; every wav is written under a temporary name and renamed, so a
wav either is complete or does not exist. `prepare` refuses an unfinished corpus, and running the same
`synth` again finishes it (blocks whose wavs all exist are kept), with the same bytes as an
uninterrupted run.

Reproducibility: every random draw is seeded from (seed, speaker, utterance), and because eSpeak NG
carries state from call to call, each (speaker, emotion) block is rendered in its own freshly forked
process, in a fixed order. The files are therefore byte-identical for the same seed and sizes, whatever
`workers` is (a different `utterances_per_emotion` changes a block's order, so its files too).
"""

from __future__ import annotations

import io
import json
import os
from concurrent.futures import as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from importlib.resources import files
from math import ceil
from pathlib import Path

import numpy as np
import soundfile as sf
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from sed_uda.corpus.esd import SYNTH_MARKER, read_synth_marker
from sed_uda.corpus.espeak import engine
from sed_uda.corpus.expression import (
    apply_channel,
    apply_voice_quality,
    espeak_parameters,
    make_speaker,
    utterance_style,
)
from sed_uda.corpus.layout import (
    BLOCK_SIZE,
    EMOTION_FOLDERS,
    EMOTIONS,
    N_EVAL_PER_BLOCK,
    N_TEST_PER_BLOCK,
    SAMPLE_RATE,
    ZH_EMOTION_WORDS,
    speaker_ids,
    split_of_number,
    utterance_number,
)
from sed_uda.errors import BadArgument, OutputExists, UserError
from sed_uda.workers import worker_pool

SPLIT_FOLDERS: dict[str, str] = {"train": "train", "val": "evaluation", "test": "test"}
"""Our split name -> ESD's split folder."""
MIN_UTTERANCES = 3
SYNTH_SETTINGS = ("speakers_per_language", "utterances_per_emotion", "seed")
"""What decides a corpus's files; recorded in its marker, so an interrupted run is finished alike."""


@dataclass(frozen=True)
class Utterance:
    """One file of the corpus: who says what, with which emotion, and where it goes."""

    speaker: str
    language: str
    emotion: str
    number: int
    text: str

    @property
    def utterance_id(self) -> str:
        return f"{self.speaker}_{self.number:06d}"

    @property
    def path(self) -> str:
        """Path relative to the corpus root, in ESD's layout."""
        split_folder = SPLIT_FOLDERS[split_of_number(self.number)]
        return f"{self.speaker}/{EMOTION_FOLDERS[self.emotion]}/{split_folder}/{self.utterance_id}.wav"


def block_offsets(utterances_per_emotion: int) -> list[int]:
    """Offsets inside a 350-id emotion block so that evaluation, test and train all get utterances.

    Proportional to ESD's 20/30/300 split, with at least ceil(N/8) each for evaluation and test;
    N = 350 gives ESD's full block.
    """
    n = utterances_per_emotion
    n_val = min(N_EVAL_PER_BLOCK, max(round(n * N_EVAL_PER_BLOCK / BLOCK_SIZE), ceil(n / 8)))
    n_test = min(N_TEST_PER_BLOCK, max(round(n * N_TEST_PER_BLOCK / BLOCK_SIZE), ceil(n / 8)))
    n_train = n - n_val - n_test
    train_start = N_EVAL_PER_BLOCK + N_TEST_PER_BLOCK
    return [
        *range(n_val),
        *range(N_EVAL_PER_BLOCK, N_EVAL_PER_BLOCK + n_test),
        *range(train_start, train_start + n_train),
    ]


def sentences(language: str) -> list[str]:
    """The bundled parallel sentences of a language (line k of en.txt translates line k of zh.txt)."""
    text = files("sed_uda.corpus").joinpath("sentences", f"{language}.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def plan_corpus(speakers_per_language: int, utterances_per_emotion: int) -> list[Utterance]:
    """Every utterance of the corpus, Mandarin speakers first, in id order within each speaker."""
    offsets = block_offsets(utterances_per_emotion)
    plan = []
    for language in ("zh", "en"):
        lines = sentences(language)
        for speaker in speaker_ids(language, speakers_per_language):
            for emotion in EMOTIONS:
                for offset in offsets:
                    text = lines[offset % len(lines)]
                    plan.append(
                        Utterance(speaker, language, emotion, utterance_number(emotion, offset), text)
                    )
    return plan


def render(utterance: Utterance, seed: int) -> np.ndarray:
    """The int16 samples of one utterance (16 kHz); all randomness from (seed, speaker, utterance)."""
    index = speaker_ids(utterance.language, 10).index(utterance.speaker)
    speaker = make_speaker(utterance.language, index, np.random.default_rng([seed, int(utterance.speaker)]))
    rng = np.random.default_rng([seed, int(utterance.speaker), utterance.number])
    style = utterance_style(utterance.language, utterance.emotion, speaker, rng)
    audio = engine().synthesize_at(
        utterance.text,
        speaker.voice,
        SAMPLE_RATE,
        seed=int(rng.integers(1, 2**31)),
        **espeak_parameters(style, speaker),
    )
    audio = apply_voice_quality(audio, style, speaker, rng)
    audio = apply_channel(audio, utterance.language, rng)
    return np.round(audio * 32767).astype(np.int16)


def _write_atomic(path: Path, data: bytes) -> None:
    """`path` holds either its old content or all of `data`, never a part (temporary name, then rename)."""
    tmp = path.with_name(f".{path.name}.part")  # the ESD reader ignores hidden files
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _render_block(out: Path, block: list[Utterance], seed: int) -> int:
    """Render and write one (speaker, emotion) block in order; runs in a fresh process."""
    for utterance in block:
        path = out / utterance.path
        path.parent.mkdir(parents=True, exist_ok=True)
        wav = io.BytesIO()
        sf.write(wav, render(utterance, seed), SAMPLE_RATE, subtype="PCM_16", format="WAV")
        _write_atomic(path, wav.getvalue())
    return len(block)


def _write_transcripts(out: Path, plan: list[Utterance]) -> None:
    """`<spk>/<spk>.txt` with `id<TAB>text<TAB>emotion word` lines, UTF-8, in id order."""
    by_speaker: dict[str, list[Utterance]] = {}
    for utterance in plan:
        by_speaker.setdefault(utterance.speaker, []).append(utterance)
    for speaker, utterances in by_speaker.items():
        lines = []
        for u in sorted(utterances, key=lambda u: u.number):
            word = ZH_EMOTION_WORDS[u.emotion] if u.language == "zh" else EMOTION_FOLDERS[u.emotion]
            lines.append(f"{u.utterance_id}\t{u.text}\t{word}\n")
        _write_atomic(out / speaker / f"{speaker}.txt", "".join(lines).encode("utf-8"))


def _write_readme(out: Path, speakers_per_language: int, utterances_per_emotion: int, seed: int) -> None:
    text = (
        "Synthetic bilingual emotional speech corpus in the layout of ESD (Emotional Speech Dataset).\n"
        "Generated by sed_uda (`sed-uda synth`) with eSpeak NG; not recordings of people.\n"
        f"Speakers per language: {speakers_per_language} (zh: 0001.., en: 0011..); "
        f"utterances per emotion and speaker: {utterances_per_emotion}; seed: {seed}.\n"
        f"Emotions: {', '.join(EMOTION_FOLDERS.values())}. Audio: {SAMPLE_RATE} Hz mono 16-bit PCM.\n"
        "Splits follow ESD's ids: per emotion block, ids 1-20 evaluation, 21-50 test, the rest train.\n"
        "Emotion, speaker and channel rendering: see sed_uda/corpus/expression.py.\n"
    )
    _write_atomic(out / "ReadMe.txt", text.encode("utf-8"))


def _write_marker(out: Path, settings: dict, complete: bool) -> None:
    marker = {"generator": "sed-uda synth", **settings, "complete": complete}
    _write_atomic(out / SYNTH_MARKER, json.dumps(marker, indent=2).encode("utf-8"))


def _resumable(out: Path, settings: dict) -> dict | None:
    """The marker of an earlier synth of `settings` into `out`; None for a new or empty folder.

    OutputExists when `out` is a file, or holds anything else (another corpus, other settings, files).
    """
    if out.exists() and not out.is_dir():
        raise OutputExists(f"{out}: is a file, not a folder; choose another --out folder")
    if not out.exists() or not any(out.iterdir()):
        return None
    marker = read_synth_marker(out)
    if marker is None:
        raise OutputExists(
            f"{out}: already holds files that `sed-uda synth` did not write; nothing was changed. "
            "Choose a new --out folder, or delete this one first."
        )
    found = {key: marker.get(key) for key in settings}
    if found != settings:
        described = " ".join(f"--{key.replace('_', '-')} {value}" for key, value in found.items())
        raise OutputExists(
            f"{out}: already holds a bundled corpus with other settings ({described}); nothing was changed. "
            "Choose a new --out folder, delete this one, or run synth with those settings to finish it."
        )
    return marker


def _validate(speakers_per_language: int, utterances_per_emotion: int, workers: int) -> None:
    if not 1 <= speakers_per_language <= 10:
        raise BadArgument(
            f"speakers_per_language={speakers_per_language}: ESD has 1 to 10 speakers per language; pick one."
        )
    if not MIN_UTTERANCES <= utterances_per_emotion <= BLOCK_SIZE:
        raise BadArgument(
            f"utterances_per_emotion={utterances_per_emotion}: must be {MIN_UTTERANCES} to {BLOCK_SIZE} "
            f"(an ESD emotion block holds {BLOCK_SIZE} ids; train, evaluation and test each need one)."
        )
    if workers < 1:
        raise BadArgument(f"workers={workers}: need at least 1 process.")


def synthesize_corpus(
    out: Path,
    speakers_per_language: int = 10,
    utterances_per_emotion: int = 40,
    seed: int = 0,
    workers: int = 1,
) -> Path:
    """Generate the bundled English/Mandarin emotional speech corpus in ESD's layout.

    Args:
        out: New (or empty) folder to write the corpus into, or the folder of an interrupted run of the
            same settings, which is finished.
        speakers_per_language: Speakers per language, 1-10 (zh 0001.., en 0011..).
        utterances_per_emotion: Utterances per speaker and emotion, 3-350 (350 = ESD's full block).
        seed: Seed of every random choice; the same seed and sizes give byte-identical files.
        workers: Processes rendering in parallel; the output does not depend on it.

    Returns:
        The corpus folder `out`.
    """
    out = Path(out)
    _validate(speakers_per_language, utterances_per_emotion, workers)
    settings = dict(zip(SYNTH_SETTINGS, (speakers_per_language, utterances_per_emotion, seed), strict=True))
    marker = _resumable(out, settings)
    if marker is not None and marker["complete"]:
        print(f"{out} already holds this corpus (same sizes and seed); nothing to do")
        return out
    plan = plan_corpus(speakers_per_language, utterances_per_emotion)
    blocks: dict[tuple[str, str], list[Utterance]] = {}
    for utterance in plan:
        blocks.setdefault((utterance.speaker, utterance.emotion), []).append(utterance)
    todo = [block for block in blocks.values() if not all((out / u.path).is_file() for u in block)]
    out.mkdir(parents=True, exist_ok=True)
    _write_marker(out, settings, complete=False)
    if marker is not None:
        kept = len(blocks) - len(todo)
        print(f"resuming the interrupted synth in {out}: {kept} of {len(blocks)} blocks already written")
    _render(out, todo, seed, workers)
    _write_transcripts(out, plan)
    _write_readme(out, speakers_per_language, utterances_per_emotion, seed)
    _write_marker(out, settings, complete=True)
    return out


def _render(out: Path, blocks: list[list[Utterance]], seed: int, workers: int) -> None:
    """Render `blocks`, each in a fresh worker process, with one progress bar."""
    columns = (TextColumn("synth"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with (
        Progress(*columns) as progress,
        worker_pool(workers, preload=[__name__], max_tasks_per_child=1) as pool,
    ):
        task = progress.add_task("synth", total=sum(map(len, blocks)))
        futures = [pool.submit(_render_block, out, block, seed) for block in blocks]
        try:
            for future in as_completed(futures):
                progress.advance(task, future.result())
        except BrokenProcessPool as error:
            pool.shutdown(cancel_futures=True)
            raise UserError(
                f"a synth worker process died while writing {out} (killed, out of memory, or the calling "
                "program cannot be re-imported by worker processes, as with code piped to python's stdin). "
                "Run the same `sed-uda synth` command again to finish the corpus."
            ) from error
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise
