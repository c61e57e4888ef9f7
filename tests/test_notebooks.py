"""The notebooks run top to bottom on a tiny corpus and grid, show their figures, and are stored clean."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from sed_uda.experiments.grid import Cell, GridSpec, load_grid, run_grid
from tests.conftest import FAST, REPO

NOTEBOOKS = REPO / "notebooks"
DEMO_CELLS = [
    Cell(REPO / cell.adaptation, REPO / cell.encoder)
    for cell in load_grid(REPO / "configs" / "grid" / "demo.yaml").cells
    if cell.method in ("dann", "source_only")
]
"""What `make demo` trains, as far as notebook 02 reads it: its defaults must fit the demo's runs."""
FIGURES = {"01_dataset": 3, "02_results": 3}
"""Images each notebook shows: distribution, waveforms, features | confusions, curves, t-SNE."""


@pytest.fixture(scope="module")
def runs(tiny_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's DANN and source-only cells, one seed, en2zh, logging every step so the curves have
    points."""
    spec = GridSpec(
        name="nb",
        runs_dir=tmp_path_factory.mktemp("nb") / "runs",
        cells=DEMO_CELLS,
        directions={"en2zh": REPO / "configs" / "experiment" / "en2zh.yaml"},
        seeds=[0],
        overrides=[
            *FAST,
            f"--data.cache_dir={tiny_cache}",
            "--trainer.max_epochs=1",
            "--trainer.limit_train_batches=2",
            "--trainer.log_every_n_steps=1",
        ],
    )
    run_grid(spec)
    return spec.runs_dir


def _outputs(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_notebook_is_stored_without_outputs(name: str) -> None:
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert "os.environ.get(" in code[0].source, "the first code cell holds the parameters"
    assert all(not cell.outputs and cell.execution_count is None for cell in code)


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_notebook_runs_and_shows_its_figures(
    name: str,
    tiny_corpus: Path,
    tiny_cache: Path,
    runs: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    environment = {
        "SED_UDA_CORPUS": tiny_corpus,
        "SED_UDA_CACHE": tiny_cache,
        "SED_UDA_RUNS": runs,
        "SED_UDA_REPORT": tmp_path / "results.md",
        "WANDB_MODE": "disabled",
        "OMP_NUM_THREADS": "1",
    }
    for key, value in environment.items():
        monkeypatch.setenv(key, str(value))
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    client = NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.execute()  # raises CellExecutionError, with the cell and traceback, if any cell fails

    outputs = _outputs(notebook)
    assert not [output for output in outputs if output.output_type == "error"]
    images = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(images) == FIGURES[name]
    if name == "02_results":
        tables = [
            output.data["text/markdown"] for output in outputs if "text/markdown" in output.get("data", {})
        ]
        assert len(tables) == 1 and f"| dann | {DEMO_CELLS[0].encoder_name} |" in tables[0]
        assert (tmp_path / "results.md").read_text().strip() == tables[0].strip()
