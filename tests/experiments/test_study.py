"""`sed-uda study`: the pooled loop trains the stats encoder's network, choices never read target
labels, finished blocks are reused, list options are typed one value after another."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from sed_uda.cli import main
from sed_uda.experiments.pooled_study import PooledModel
from sed_uda.experiments.study import choices
from sed_uda.models.components.stats import StatsEncoder


def test_the_pooled_network_is_the_stats_encoder_on_whole_utterances() -> None:
    torch.manual_seed(0)
    encoder = StatsEncoder(6).eval()
    model = PooledModel(12).eval()
    model.encoder.load_state_dict(encoder.net.state_dict())
    frames, lengths = torch.randn(4, 6, 30), torch.tensor([30, 20, 11, 5])
    pooled = torch.stack(
        [
            torch.cat([f[:, :n].mean(1), f[:, :n].std(1, unbiased=False)])
            for f, n in zip(frames, lengths, strict=True)
        ]
    )
    torch.testing.assert_close(model.encoder(pooled), encoder(frames, lengths), atol=1e-4, rtol=1e-4)


def test_label_free_choice_follows_im_and_the_oracle_follows_accuracy() -> None:
    rows = [
        {
            "corpus": "c",
            "direction": "zh2en",
            "method": "aad",
            "scale": s,
            "lr": 1e-3,
            "seed": k,
            "im": im,
            "acc": acc,
        }
        for s, im, acc in ((1.0, 1.5, 0.70), (3.0, 1.2, 0.90))
        for k in (0, 1)
    ]
    (row,) = choices(pd.DataFrame(rows)).to_dict("records")
    assert (row["scale"], row["acc"]) == (1.0, pytest.approx(0.70))
    assert (row["oracle_scale"], row["oracle_acc"]) == (3.0, pytest.approx(0.90))


def test_study_writes_the_table_and_reuses_finished_blocks(
    tiny_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    args = [
        "study",
        "--corpora",
        str(tiny_cache),
        "--methods",
        "configs/adaptation/aad.yaml",
        "--directions",
        "zh2en",
        "--scales",
        "1",
        "3",
        "--lrs",
        "0.001",
        "--seeds",
        "0",
        "--epochs",
        "1",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--out",
        str(tmp_path / "study.md"),
    ]
    main(args)
    first = capsys.readouterr()
    frame = pd.read_csv(tmp_path / "study.csv")
    assert {"logreg", "logreg_coral", "logreg_tca", "source_only", "target_supervised", "aad"} <= set(
        frame.method
    )
    assert sorted(frame[frame.method == "aad"].scale) == [1.0, 3.0]
    table = (tmp_path / "study.md").read_text()
    assert "(designs decided here)" in table and "| aad |" in table and "Mean over the 1 corpora" in table
    assert "done" in first.err
    main(args)
    assert "done" not in capsys.readouterr().err  # every block was kept


def test_skada_baselines_join_the_shallow_rows_without_target_labels() -> None:
    """skada (the `baselines` extra, in `dev`) adds its estimators; target-train labels never reach them."""
    import numpy as np

    from sed_uda.experiments.skada_baselines import skada_predictions

    rng = np.random.default_rng(0)
    source, labels = rng.normal(size=(60, 8)), np.arange(60) % 5
    source[np.arange(60), labels] += 3.0
    target = source[rng.permutation(60)] + 0.5
    test = source[:20] + 0.5
    predicted = skada_predictions(source, labels, target, test)
    assert set(predicted) == {"logreg_sa", "logreg_tca", "logreg_mlma"}
    assert all(len(p) == 20 for p in predicted.values())
    assert np.mean(predicted["logreg_mlma"] == labels[:20]) > 0.5  # the shift is a translation: easy


def test_mlma_is_left_out_with_a_reason_when_a_domain_covariance_is_singular() -> None:
    """A singular covariance would leave MLMA's barycentre iteration running for minutes and then NaN."""
    import numpy as np
    import pytest

    from sed_uda.experiments.skada_baselines import skada_predictions

    rng = np.random.default_rng(0)
    source, labels = rng.normal(size=(30, 40)), np.arange(30) % 5
    with pytest.warns(UserWarning, match=r"logreg_mlma left out.*condition number inf"):
        predicted = skada_predictions(source, labels, source + 0.5, source[:10])  # 30 rows, 40 dimensions
    assert "logreg_mlma" not in predicted and {"logreg_tca", "logreg_sa"} <= set(predicted)  # SA: 30 comps
    many = rng.normal(size=(200, 6))
    many[:, 5] = many[:, 4] + 1e-6 * rng.normal(size=200)  # two channels all but equal
    with pytest.warns(UserWarning, match=r"logreg_mlma left out.*condition number \d"):
        skada_predictions(many, np.arange(200) % 5, many + 0.5, many[:10])
