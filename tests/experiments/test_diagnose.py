"""`sed-uda diagnose`: the shift measures on constructed data, and the command on the tiny corpus."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sed_uda.cli import main
from sed_uda.experiments.diagnose import SHARED_BAND_HZ, band_ranges, f_ratio, mel_centres
from sed_uda.features.frontends.librosa import LibrosaFrames


def test_f_ratio_is_between_class_over_within_class_variance() -> None:
    labels = np.array([0, 0, 1, 1])
    x = np.array([[0.0, 5.0], [2.0, 5.0], [10.0, 5.0], [12.0, 5.0]])
    # column 0: class means 1 and 11 (variance 25), within-class variance 1; column 1: constant
    np.testing.assert_allclose(f_ratio(x, labels), [25.0, 0.0], atol=1e-9)


def test_mel_bands_split_at_the_shared_band_of_both_channels() -> None:
    config = LibrosaFrames()
    ranges = list(band_ranges(config).values())
    assert sorted(np.concatenate(ranges).tolist()) == list(range(config.n_mels))
    centres = mel_centres(config)
    low, shared, high = ranges
    assert centres[low].max() < SHARED_BAND_HZ[0] <= centres[shared].min()
    assert centres[shared].max() <= SHARED_BAND_HZ[1] < centres[high].min()


def test_diagnose_prints_blocks_bands_confusion_and_levers(
    tiny_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "diagnosis.md"
    main(["diagnose", "--cache", str(tiny_cache), "--direction", "zh2en", "--out", str(out)])
    printed = capsys.readouterr().out
    assert out.read_text().strip() == printed.strip()
    for heading in (
        "| block | statistic |",
        "| mel range |",
        "| true \\ predicted |",
        "| inputs | transfer acc |",
    ):
        assert heading in printed
    confusion = [line for line in printed.splitlines() if line.startswith(("| neutral |", "| sad |"))]
    assert len(confusion) == 2 and all(line.endswith(" |") for line in confusion)


def test_a_folder_without_a_cache_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["diagnose", "--cache", str(tmp_path)])
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert "not a feature cache" in error and "sed-uda prepare" in error and "Traceback" not in error
