"""The toolkit's non-training commands; `sed-uda <name> --help` is built from these signatures."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from sed_uda.errors import BadArgument
from sed_uda.experiments.grid import Cell
from sed_uda.models.selection.rules import RULES

RuleName = Literal[tuple(RULES)]  # type: ignore[valid-type]
"""Every selection rule: `table --help` lists them and anything else is refused with the list."""


def synth(
    out: Path = Path("data/synth_esd"),
    speakers_per_language: int = 10,
    utterances_per_emotion: int = 40,
    seed: int = 0,
    workers: int = 2,
) -> None:
    """Generate the bundled bilingual emotional speech corpus (eSpeak NG) in ESD's layout.

    An interrupted run is finished by running the same command again; a finished corpus is left as is.

    Args:
        out: Corpus folder to write (ESD layout: <spk>/<Emotion>/<split>/<spk>_<id>.wav).
        speakers_per_language: Speakers per language (ESD has 10).
        utterances_per_emotion: Utterances per speaker and emotion (ESD has 350).
        seed: Random seed; the same seed gives byte-identical files.
        workers: Parallel processes.
    """
    from sed_uda.corpus.synth import synthesize_corpus

    synthesize_corpus(out, speakers_per_language, utterances_per_emotion, seed=seed, workers=workers)


def prepare(
    root: Path = Path("data/synth_esd"),
    cache: Path = Path("data/cache"),
    workers: int = 2,
    skip_bad: bool = False,
    front_end: str = "librosa",
    device: str = "cpu",
) -> None:
    """Validate a corpus in ESD's layout (bundled or the real ESD) and build its feature cache.

    Args:
        root: Corpus root: <root>/<spk>/<Emotion>/[train|evaluation|test/]<spk>_<id>.wav.
        cache: Feature cache folder (manifest.csv, features.npy, offsets.npy, meta.json).
        workers: Parallel extraction processes.
        skip_bad: Leave unusable audio files out (listed in <cache>/skipped.csv) instead of stopping.
        front_end: What the model sees: a name in configs/frontend/ (librosa, torch, egemaps,
            egemaps_functionals, ssl) or a YAML file with class_path and init_args. A cache built with
            another front end is rebuilt.
        device: Where front ends that can use a GPU (torch, ssl) compute: cpu or cuda.
    """
    from sed_uda.features.cache import prepare_cache
    from sed_uda.features.frontends.choose import choose_front_end

    chosen = choose_front_end(front_end)
    prepare_cache(root, cache, workers=workers, skip_bad=skip_bad, front_end=chosen, device=device)


def probe(cache: Path = Path("data/cache")) -> None:
    """In-language vs cross-language accuracy of a pooled-feature logistic regression.

    Shows how large the language shift of a corpus is before any deep model is trained.

    Args:
        cache: Feature cache built by `sed-uda prepare`.
    """
    from sed_uda.experiments.probe import format_probe
    from sed_uda.experiments.probe import probe as run_probe

    print(format_probe(run_probe(cache)))


def diagnose(
    cache: Path = Path("data/cache"),
    direction: Literal["en2zh", "zh2en"] = "zh2en",
    normalization: Literal["speaker", "global"] = "speaker",
    out: Path | None = None,
) -> None:
    """Where the languages' pooled features differ and what a source-only model gets wrong.

    Feature blocks and mel bands with their language shift and emotion accuracy, the source-only
    confusion matrix, and feature-level alignments (docs/transfer.md shows the output).

    Args:
        cache: Feature cache built by `sed-uda prepare`.
        direction: Source and target language, e.g. zh2en.
        normalization: Standardisation of the frames, as `--data.normalization` of a run.
        out: Also write the Markdown to this file.
    """
    from sed_uda.experiments.diagnose import diagnose as run_diagnose

    if not Path(cache, "meta.json").is_file():
        raise BadArgument(
            f"{cache} is not a feature cache (no meta.json): run sed-uda prepare first, or pass --cache"
        )
    text = run_diagnose(cache, direction, normalization)
    print(text)
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n")


def study(
    corpora: list[Path] | None = None,
    methods: list[Path] | None = None,
    directions: list[str] | None = None,
    normalization: Literal["speaker", "global"] = "speaker",
    scales: list[float] | None = None,
    lrs: list[float] | None = None,
    seeds: list[int] | None = None,
    epochs: int = 10,
    runs_dir: Path = Path("runs/study"),
    out: Path = Path("reports/study.md"),
) -> None:
    """Adaptation methods x trade-offs x learning rates x seeds on several corpora, in minutes: the stats
    encoder's network trained on pooled vectors, trade-off and lr chosen without target labels.

    Args:
        corpora: Feature caches; the first is the one designs were decided on (the table says so).
        methods: Adaptation configs (default: configs/adaptation/{shot_im,aad}.yaml).
        directions: Default en2zh and zh2en.
        normalization: Standardisation of the frames, as `--data.normalization` of a run.
        scales: Multipliers of each config's trade-off weights (default 1 and 3).
        lrs: Learning rates (default 0.001: on the design corpus target IM preferred 0.003, which was worse).
        seeds: Seeds per setting (default 0 1 2).
        epochs: Training epochs of every run.
        runs_dir: Where finished blocks are kept (a rerun computes only what is new).
        out: Markdown to write; every run's row goes to the same name with .csv.
    """
    from sed_uda.experiments.study import run_study, study_table

    corpora = corpora or [Path("data/cache")]
    missing = [str(c) for c in corpora if not Path(c, "meta.json").is_file()]
    if missing:
        raise BadArgument(
            f"not a feature cache (no meta.json): {', '.join(missing)}; run sed-uda prepare first"
        )
    methods = methods or [Path(f"configs/adaptation/{m}.yaml") for m in ("shot_im", "aad")]
    absent = [str(m) for m in methods if not Path(m).is_file()]
    if absent:
        raise BadArgument(f"adaptation config not found: {', '.join(absent)} (see configs/adaptation/)")
    frame = run_study(
        corpora,
        methods,
        directions or ["en2zh", "zh2en"],
        normalization,
        scales or [1.0, 3.0],
        lrs or [1e-3],
        seeds or [0, 1, 2],
        epochs,
        runs_dir,
    )
    text = study_table(frame)
    print(text)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(text + "\n")
    frame.to_csv(Path(out).with_suffix(".csv"), index=False)


def grid(
    name: str = "grid",
    runs_dir: Path = Path("runs/grid"),
    cells: list[Cell] | None = None,
    directions: dict[str, Path] | None = None,
    seeds: list[int] | None = None,
    overrides: list[str] | None = None,
    jobs: int | None = None,
    launcher: str | dict | None = None,
    corpora: dict[str, Path] | None = None,
    rules: list[RuleName] | None = None,
    dry_run: bool = False,
    verbose: bool = False,
) -> None:
    """Run an experiment grid, e.g. `sed-uda grid --config configs/grid/methods_speaker.yaml --jobs 2`.

    Each run is a fit + a test per selection rule; finished runs are skipped. Grids sharing a runs_dir
    never train the same run twice; a run whose settings, feature cache or code changed is moved aside
    to `<run>.outdated-<id>` and trained again.

    Args:
        name: Grid name (for progress and records).
        runs_dir: Where each run writes <adaptation>_<encoder>_<direction>/seed<k>/.
        cells: Rows of the table, e.g. {adaptation: configs/adaptation/dann.yaml,
            encoder: configs/encoder/stats.yaml}; optional `overrides` for that cell's runs
            (after the grid's) and `variants` (named lists of overrides, one row each).
        directions: Direction name -> its experiment config, e.g. {en2zh: configs/experiment/en2zh.yaml}.
        seeds: Seeds per cell.
        overrides: Extra LightningCLI arguments for every run, e.g. ["--trainer.max_epochs=5"].
        jobs: Runs side by side (each its own process, the cores shared out as torch threads).
        launcher: Where runs execute: "in-process" (default), "local" (side by side, with --jobs) or
            "slurm" (one SLURM job per run, via submitit), or {class_path: ..., init_args: ...} of a
            class in sed_uda.experiments.launchers.
        corpora: Corpus name -> its feature cache, e.g. {seed0: data/cache, seed1: data/seed1/cache}:
            every run is made on each (in <runs_dir>/<corpus>/); the table reports each and their mean.
        rules: Selection rules each run records, e.g. [target_im, target_oracle] (default: all; fewer
            rules compute fewer validation signals).
        dry_run: Check every run's configuration and list what the grid would do, without training.
        verbose: Show Lightning's model summaries and progress bars (one line per run otherwise).
    """
    from sed_uda.experiments.grid import GridSpec, check_grid, run_grid
    from sed_uda.experiments.launchers import make_launcher

    if not cells or not directions:
        raise BadArgument(
            "grid needs --cells and --directions; give them in a grid config: "
            "sed-uda grid --config configs/grid/demo.yaml (see configs/grid/)"
        )
    spec = GridSpec(
        name, runs_dir, cells, directions, seeds or [0], overrides or [], launcher, corpora, rules
    )
    if dry_run:
        check_grid(spec)
        return
    run_grid(spec, verbose=verbose, launcher=make_launcher(launcher, jobs))


def table(
    runs: Path = Path("runs/poster"), out: Path = Path("reports/results.md"), rule: RuleName = "target_im"
) -> None:
    """Collect the run records under `runs` into the poster-shaped table (mean +- std over seeds).

    Writes Markdown to `out` and a CSV of every number beside it.

    Args:
        runs: Folder holding the grid's runs (searched recursively for record.json).
        out: Markdown file to write; the CSV goes to the same name with .csv.
        rule: Model-selection rule of the main table.
    """
    from sed_uda.experiments.table import write_tables

    print(write_tables(runs, out, rule=rule))


def demo(
    data: Path = Path("data"),
    grid_config: Path = Path("configs/grid/demo.yaml"),
    out: Path = Path("reports/demo_results.md"),
    workers: int = 2,
    threads: int = 1,
    verbose: bool = False,
) -> None:
    """The bundled corpus end to end: synth -> prepare -> demo grid (DANN, MCC, both bounds) -> table.

    The demo grid trains the utterance-statistics encoder in both directions, one seed.

    Args:
        data: Data folder (corpus in <data>/synth_esd, cache in <data>/cache).
        grid_config: Grid to run (the CPU-feasible demo grid by default).
        out: Results table to write.
        workers: Parallel processes for synth and prepare.
        threads: Torch threads per run (results depend on it; the README's demo table used 1).
        verbose: Show Lightning's model summaries and progress bars (one line per run otherwise).
    """
    from sed_uda.experiments.demo import run_demo

    run_demo(data, grid_config, out, workers=workers, threads=threads, verbose=verbose)


def classify(
    paths: list[str],
    ckpt: str | None = None,
    out: str | None = None,
    speaker_from: str | None = None,
    batch_size: int = 64,
    device: str = "cpu",
) -> None:
    """Predict the emotion of recordings (wav, flac, mp3, ogg, ...; any sample rate and channels).

    Prints file, emotion, confidence and every class's probability; a bad file is reported and skipped,
    and the command then exits with status 1.

    Args:
        paths: Audio files, or folders searched recursively.
        ckpt: Checkpoint written by `sed-uda fit` (e.g. runs/fit/<run>/checkpoints/best-target_im.ckpt).
        out: Also write the predictions to this .csv or .json file.
        speaker_from: Models trained with per-speaker normalisation only, where it is required: who speaks
            in each recording. "parent-folder": one folder per speaker, enrolled from the folder's
            recordings; or a .csv file with columns file (or path) and speaker (a cache's manifest.csv
            is one): training speakers use the statistics stored in the checkpoint, others are enrolled
            from their recordings. Models with utterance or global normalisation need no speaker.
        batch_size: Recordings per forward pass.
        device: "cpu", "cuda" (or "gpu"), "cuda:N".
    """
    from sed_uda.inference.classify import classify_recordings

    if ckpt is None:
        raise BadArgument("--ckpt is required: a checkpoint of `sed-uda fit` (runs/<run>/checkpoints/)")
    out_file = None if out is None else Path(out)
    classify_recordings(Path(ckpt), [Path(p) for p in paths], out_file, speaker_from, batch_size, device)
