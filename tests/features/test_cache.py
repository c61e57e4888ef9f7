"""`prepare_cache`: a loadable cache, bad files reported at once, reuse vs rebuild, resume after a kill."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from threadpoolctl import threadpool_limits

from sed_uda.corpus.audio import load_audio
from sed_uda.corpus.esd import COLUMNS, index_corpus
from sed_uda.features import cache as cache_module
from sed_uda.features.cache import PARTIAL, PrepareError, load_split, prepare_cache
from sed_uda.features.frontends.librosa import LibrosaFrames
from sed_uda.features.store import FEATURES, MANIFEST, META, OFFSETS, SKIPPED, CacheError, load_cache
from tests.corpus.esd_tree import write_esd_tree

SR = 16_000
COMPLETE_FILES = (FEATURES, OFFSETS, MANIFEST)


@pytest.fixture(autouse=True)
def one_blas_thread():
    """prepare extracts with one BLAS thread (identical bytes for any --workers); compare likewise."""
    with threadpool_limits(1):
        yield


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """12 wavs: one Mandarin and one English speaker, two emotions, every split."""
    return write_esd_tree(tmp_path / "corpus", ["0001", "0011"], emotions=("neutral", "angry"), junk=False)


def _paths(root: Path) -> list[str]:
    return index_corpus(root)["path"].tolist()


EXTRACT = LibrosaFrames.extract
"""The real extractor, which `_count_extractions` wraps (also when called twice in a test)."""


def _count_extractions(monkeypatch: pytest.MonkeyPatch, fail_after: int | None = None) -> list[int]:
    """Count in-process extractions (workers=1); with `fail_after`, die like a killed run at that call."""
    calls: list[int] = []

    def counting(front_end: LibrosaFrames, y: np.ndarray) -> np.ndarray:
        if fail_after is not None and len(calls) == fail_after:
            raise KeyboardInterrupt
        calls.append(1)
        return EXTRACT(front_end, y)

    monkeypatch.setattr(LibrosaFrames, "extract", counting)
    return calls


def test_prepare_builds_a_cache_that_matches_the_corpus(corpus: Path, tmp_path: Path, capsys) -> None:
    cache = prepare_cache(corpus, tmp_path / "cache")
    index = index_corpus(corpus)
    loaded = load_cache(tmp_path / "cache")
    assert len(cache) == len(loaded) == len(index)
    pd.testing.assert_frame_equal(loaded.manifest[list(COLUMNS)], index[list(COLUMNS)])
    assert loaded.features.dtype == np.float16 and loaded.features.shape[1] == LibrosaFrames().n_channels
    for row, path in enumerate(index["path"]):
        y, _ = load_audio(corpus / path)
        expected = LibrosaFrames().extract(y).astype(np.float16)
        np.testing.assert_array_equal(loaded.utterance(row), expected)
        assert loaded.manifest["n_frames"][row] == len(expected)
        assert loaded.manifest["duration_s"][row] == pytest.approx(len(y) / SR)
    meta = loaded.meta
    assert meta["corpus_root"] == str(corpus.resolve())
    assert meta["frames"] == len(loaded.features) == loaded.offsets[-1]
    assert meta["counts"]["utterances"] == len(index)
    assert meta["hours"] == pytest.approx(loaded.manifest["duration_s"].sum() / 3600)
    assert not (tmp_path / "cache" / PARTIAL).exists()
    table = capsys.readouterr().out
    assert "neutral" in table and "angry" in table and "train" in table


def test_zcr_survives_float16_storage_exactly(corpus: Path, tmp_path: Path) -> None:
    loaded = prepare_cache(corpus, tmp_path / "cache")
    zcr = LibrosaFrames().slices()["zcr"]
    y, _ = load_audio(corpus / loaded.manifest["path"][0])
    exact = LibrosaFrames().extract(y)[:, zcr]
    np.testing.assert_array_equal(loaded.utterance(0)[:, zcr].astype(np.float32), exact)


def test_load_split_returns_rows_and_float32_arrays_of_one_language_and_split(
    corpus: Path, tmp_path: Path
) -> None:
    full = prepare_cache(corpus, tmp_path / "cache")
    rows, arrays = load_split(tmp_path / "cache", language="en", split="train")
    assert len(rows) == len(arrays) > 0
    assert set(rows["language"]) == {"en"} and set(rows["split"]) == {"train"}
    for (_, row), array in zip(rows.iterrows(), arrays, strict=True):
        assert array.dtype == np.float32 and array.shape == (row["n_frames"], full.features.shape[1])
        source = int(np.flatnonzero(full.manifest["utterance_id"] == row["utterance_id"])[0])
        np.testing.assert_array_equal(array, full.utterance(source).astype(np.float32))


def _break_files(root: Path) -> tuple[dict[str, str], str]:
    """Overwrite seven corpus wavs: six unusable (path -> expected reason word) and one stereo 44.1 kHz."""
    paths = _paths(root)
    t = np.arange(int(0.5 * 44_100)) / 44_100
    tone = 0.3 * np.sin(2 * np.pi * 220 * t)
    (root / paths[0]).write_bytes(b"")
    (root / paths[1]).write_bytes((root / paths[1]).read_bytes()[:20])
    sf.write(root / paths[2], np.full(int(0.1 * SR), 0.2), SR)
    sf.write(root / paths[3], np.zeros(int(0.5 * SR)), SR)
    nan = np.full(int(0.5 * SR), 0.1, dtype=np.float32)
    nan[100] = np.nan
    sf.write(root / paths[4], nan, SR, subtype="FLOAT")
    sf.write(root / paths[5], np.stack([tone, -0.5 * tone], axis=1), 44_100)
    dither = np.random.default_rng(0).integers(-1, 2, size=2 * SR).astype(np.int16)  # +-1 LSB, 2 s
    sf.write(root / paths[6], dither, SR, subtype="PCM_16")
    reasons = {paths[0]: "empty", paths[1]: "header", paths[2]: "short", paths[3]: "zero", paths[4]: "nan"}
    reasons[paths[6]] = "near-silent"
    return reasons, paths[5]


def test_bad_files_are_all_reported_before_anything_is_extracted(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad, stereo = _break_files(corpus)
    calls = _count_extractions(monkeypatch)
    with pytest.raises(PrepareError) as error:
        prepare_cache(corpus, tmp_path / "cache")
    message = str(error.value)
    for path, reason in bad.items():
        line = next(line for line in message.splitlines() if path in line)
        assert reason in line.lower()
    assert stereo not in message and "--skip-bad" in message
    assert calls == [] and not (tmp_path / "cache" / META).exists()


def test_skip_bad_leaves_bad_files_out_and_lists_them(corpus: Path, tmp_path: Path, capsys) -> None:
    bad, stereo = _break_files(corpus)
    loaded = prepare_cache(corpus, tmp_path / "cache", skip_bad=True)
    out = capsys.readouterr().out
    assert len(loaded) == len(_paths(corpus)) - len(bad)
    assert set(bad).isdisjoint(loaded.manifest["path"]) and stereo in set(loaded.manifest["path"])
    skipped = pd.read_csv(tmp_path / "cache" / SKIPPED, keep_default_na=False)
    assert dict(zip(skipped["path"], skipped["reason"], strict=True)).keys() == bad.keys()
    assert f"skipped {len(bad)}" in out
    assert out.count("resampled 44100 Hz") == 1 and out.count("down-mixed") == 1
    row = int(np.flatnonzero(loaded.manifest["path"] == stereo)[0])
    assert loaded.manifest["duration_s"][row] == pytest.approx(0.5, abs=1e-3)

    with pytest.raises(PrepareError, match="--skip-bad"):
        prepare_cache(corpus, tmp_path / "cache")  # the same bad files, now without skip_bad


def test_unchanged_corpus_and_config_reuse_the_cache(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    prepare_cache(corpus, tmp_path / "cache")
    stamps = {name: (tmp_path / "cache" / name).stat().st_mtime_ns for name in (*COMPLETE_FILES, META)}
    calls = _count_extractions(monkeypatch)
    capsys.readouterr()
    prepare_cache(corpus, tmp_path / "cache")
    assert "cache up to date" in capsys.readouterr().out
    assert calls == []
    assert stamps == {name: (tmp_path / "cache" / name).stat().st_mtime_ns for name in stamps}


DEFAULT = LibrosaFrames()


def _rebuild_message(corpus: Path, cache_dir: Path, capsys, config: LibrosaFrames = DEFAULT) -> str:
    capsys.readouterr()
    prepare_cache(corpus, cache_dir, front_end=config)
    return capsys.readouterr().out


def test_changed_config_rebuilds(corpus: Path, tmp_path: Path, capsys) -> None:
    prepare_cache(corpus, tmp_path / "cache")
    smaller = LibrosaFrames(n_mels=64, n_mfcc=20)
    assert "front end changed" in _rebuild_message(corpus, tmp_path / "cache", capsys, smaller)
    loaded = load_cache(tmp_path / "cache")
    assert loaded.front_end == smaller and loaded.features.shape[1] == smaller.n_channels


def test_modified_added_and_removed_wavs_rebuild(corpus: Path, tmp_path: Path, capsys) -> None:
    cache_dir = tmp_path / "cache"
    prepare_cache(corpus, cache_dir)
    first = _paths(corpus)[0]
    sf.write(corpus / first, 0.2 * np.random.default_rng(1).standard_normal(SR), SR)
    assert "0 added, 0 removed, 1 modified" in _rebuild_message(corpus, cache_dir, capsys)
    y, _ = load_audio(corpus / first)
    np.testing.assert_array_equal(
        load_cache(cache_dir).utterance(0), LibrosaFrames().extract(y).astype(np.float16)
    )

    write_esd_tree(corpus, ["0012"], emotions=("sad",), per_emotion=1, junk=False)
    assert "1 added, 0 removed, 0 modified" in _rebuild_message(corpus, cache_dir, capsys)
    assert "0012" in set(load_cache(cache_dir).manifest["speaker"])

    (corpus / first).unlink()
    assert "0 added, 1 removed, 0 modified" in _rebuild_message(corpus, cache_dir, capsys)
    assert first not in set(load_cache(cache_dir).manifest["path"])


def test_killed_prepare_resumes_to_a_byte_identical_cache(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    prepare_cache(corpus, tmp_path / "reference", shard_size=2)
    n_files = len(_paths(corpus))

    _count_extractions(monkeypatch, fail_after=5)  # two shards of 2 finished, the third dies
    with pytest.raises(KeyboardInterrupt):
        prepare_cache(corpus, tmp_path / "cache", shard_size=2)
    assert len(list((tmp_path / "cache" / PARTIAL).glob("*.npz"))) == 2
    with pytest.raises(CacheError, match="sed-uda prepare"):
        load_cache(tmp_path / "cache")

    calls = _count_extractions(monkeypatch)
    capsys.readouterr()
    prepare_cache(corpus, tmp_path / "cache", shard_size=2)
    assert "resuming: 2 of" in capsys.readouterr().out
    assert len(calls) == n_files - 4
    for name in COMPLETE_FILES:
        assert (tmp_path / "cache" / name).read_bytes() == (tmp_path / "reference" / name).read_bytes(), name
    assert not (tmp_path / "cache" / PARTIAL).exists()


def test_killed_rebuild_leaves_the_old_cache_valid(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prepare_cache(corpus, tmp_path / "cache", shard_size=2)
    before = {name: (tmp_path / "cache" / name).read_bytes() for name in (*COMPLETE_FILES, META)}
    _count_extractions(monkeypatch, fail_after=3)
    with pytest.raises(KeyboardInterrupt):
        prepare_cache(corpus, tmp_path / "cache", shard_size=2, front_end=LibrosaFrames(n_mels=64))
    assert before == {name: (tmp_path / "cache" / name).read_bytes() for name in before}
    assert (
        json.loads(before[META])["front_end"]["init_args"]["n_mels"]
        == load_cache(tmp_path / "cache").front_end.n_mels
    )


@pytest.mark.slow
def test_two_workers_write_the_same_cache_as_one(corpus: Path, tmp_path: Path) -> None:
    prepare_cache(corpus, tmp_path / "one", workers=1)
    prepare_cache(corpus, tmp_path / "two", workers=2)
    for name in COMPLETE_FILES:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name


def _rebuilt(corpus: Path, cache_dir: Path, capsys) -> str:
    """prepare's output on a damaged cache, after checking that the rebuilt cache loads."""
    message = _rebuild_message(corpus, cache_dir, capsys)
    assert len(load_cache(cache_dir)) == len(_paths(corpus))
    return message


def test_a_truncated_features_file_is_named_and_rebuilt(corpus: Path, tmp_path: Path, capsys) -> None:
    cache_dir = tmp_path / "cache"
    prepare_cache(corpus, cache_dir)
    data = (cache_dir / FEATURES).read_bytes()
    (cache_dir / FEATURES).write_bytes(data[: len(data) // 2])
    for mmap in (False, True):
        with pytest.raises(CacheError, match=f"{cache_dir / FEATURES}: truncated or damaged") as error:
            load_cache(cache_dir, mmap=mmap)
        assert "delete the cache folder and run `sed-uda prepare` again" in str(error.value)
    assert "rebuilding: the existing cache is unusable" in _rebuilt(corpus, cache_dir, capsys)


def test_a_malformed_meta_json_is_named_and_rebuilt(corpus: Path, tmp_path: Path, capsys) -> None:
    cache_dir = tmp_path / "cache"
    prepare_cache(corpus, cache_dir)
    (cache_dir / META).write_text('{"format": 1,')
    with pytest.raises(CacheError, match=f"{cache_dir / META}: unreadable"):
        load_cache(cache_dir)
    assert "rebuilding" in _rebuilt(corpus, cache_dir, capsys)


def test_meta_contradicting_the_arrays_is_rebuilt_not_up_to_date(
    corpus: Path, tmp_path: Path, capsys
) -> None:
    cache_dir = tmp_path / "cache"
    prepare_cache(corpus, cache_dir)
    meta = json.loads((cache_dir / META).read_text())
    meta["frames"] += 1
    (cache_dir / META).write_text(json.dumps(meta))
    with pytest.raises(CacheError, match=f"{cache_dir / META} contradicts the arrays: frames"):
        load_cache(cache_dir)
    message = _rebuilt(corpus, cache_dir, capsys)
    assert "up to date" not in message and "rebuilding" in message


@pytest.mark.parametrize(
    ("column", "value"), [("split", "validation"), ("language", "de"), ("emotion", "calm")]
)
def test_an_edited_manifest_with_unknown_labels_is_refused_with_the_valid_values(
    cache_copy: Path, column: str, value: str
) -> None:
    manifest = pd.read_csv(cache_copy / MANIFEST, dtype=str, keep_default_na=False)
    manifest.loc[3, column] = value
    manifest.to_csv(cache_copy / MANIFEST, index=False)
    with pytest.raises(
        CacheError, match=f"{cache_copy / MANIFEST}: unknown {column} value.*'{value}'"
    ) as error:
        load_cache(cache_copy)
    assert "(valid: " in str(error.value)


def test_load_split_refuses_unknown_values_and_lists_the_valid_ones(tiny_cache: Path) -> None:
    with pytest.raises(ValueError, match="split='validation' is not one of train, val, test"):
        load_split(tiny_cache, split="validation")
    with pytest.raises(ValueError, match="language='english' is not one of en, zh"):
        load_split(tiny_cache, language="english")


def test_a_full_disk_leaves_the_old_cache_and_no_temporary_files(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache_dir = tmp_path / "cache"
    prepare_cache(corpus, cache_dir)
    before = {name: (cache_dir / name).read_bytes() for name in (*COMPLETE_FILES, META)}

    def full(file, **kwargs) -> None:  # noqa: ANN001 - a binary file
        file.write(b"\0" * 100)
        raise OSError(errno.ENOSPC, "No space left on device", str(cache_dir / f"{FEATURES}.new.tmp"))

    monkeypatch.setattr(cache_module, "_write_features", full)
    with pytest.raises(OSError, match="No space left") as error:
        prepare_cache(corpus, cache_dir, front_end=LibrosaFrames(n_mels=64))
    assert error.value.errno == errno.ENOSPC
    assert before == {name: (cache_dir / name).read_bytes() for name in before}
    leftovers = [p.name for p in cache_dir.iterdir() if p.suffix in (".tmp", ".new")]
    assert leftovers == []


def test_a_cache_folder_that_cannot_be_written_fails_before_any_work(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(**kwargs) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(kwargs["dir"]))

    monkeypatch.setattr(cache_module.tempfile, "TemporaryFile", denied)
    calls = _count_extractions(monkeypatch)
    with pytest.raises(PermissionError):
        prepare_cache(corpus, tmp_path / "cache")
    assert calls == [] and not (tmp_path / "cache" / META).exists()


def test_a_file_as_cache_folder_is_refused(corpus: Path, tmp_path: Path) -> None:
    (tmp_path / "cache").write_text("keep me")
    with pytest.raises(PrepareError, match="is a file, not a folder"):
        prepare_cache(corpus, tmp_path / "cache")
    assert (tmp_path / "cache").read_text() == "keep me"


def test_missing_speakers_emotions_and_languages_are_warned_about(
    corpus: Path, tmp_path: Path, capsys
) -> None:
    prepare_cache(corpus, tmp_path / "cache")
    out = capsys.readouterr().out
    assert "warning: " in out and "no utterances of speaker(s) 0002" in out
    assert "no en utterances of emotion happy, sad, surprise" in out
