"""Session fixtures: one tiny bundled corpus and its feature cache, built once, keep every run to seconds."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")
torch.set_num_threads(2)

REPO = Path(__file__).resolve().parents[1]
FAST = [
    "--data.batch_size=8",
    "--data.eval_batch_size=32",
    "--data.crop_frames=32",
    "--data.max_eval_frames=64",
    "--trainer.accelerator=cpu",
    "--trainer.precision=32-true",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
]
"""LightningCLI overrides that shrink any experiment config to a seconds-long CPU run."""


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sed_uda.corpus.synth import synthesize_corpus

    root = tmp_path_factory.mktemp("corpus") / "synth_esd"
    synthesize_corpus(root, speakers_per_language=2, utterances_per_emotion=8, seed=0, workers=1)
    return root


@pytest.fixture(scope="session")
def tiny_cache(tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sed_uda.features.cache import prepare_cache

    cache = tmp_path_factory.mktemp("cache") / "cache"
    prepare_cache(tiny_corpus, cache, workers=1)
    return cache


@pytest.fixture
def cache_copy(tiny_cache: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny cache that a test may edit."""
    return Path(shutil.copytree(tiny_cache, tmp_path / "cache"))


CORPUS_FIXTURES = {"tiny_corpus", "tiny_cache", "cache_copy"}
"""Fixtures that need the synthesised tiny corpus: building it alone takes longer than the fast tier."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `slow` every test that runs on the synthesised tiny corpus (end-to-end fits, grids, commands
    on real audio), so `pytest -m "not slow"` (make test-fast) keeps the unit tests on random caches and
    plain tensors. Other slow tests carry the marker themselves."""
    for item in items:
        if CORPUS_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
