"""Build the static HTML report of a run: ``report/index.html``, ``report/data/``,
``report/audio/``, ``report/assets/``.

The page works from ``file://`` with no server and no network: one local stylesheet, one local
script, PNG plots, the neuron data as per-layer script shards (:mod:`dissect.report.shards`),
and the exemplar clips copied next to it as 16-bit WAV (so the report survives moving the run
directory). A Content-Security-Policy forbids inline scripts and remote loads, on top of the
escaping of every artifact string.

Size: ``index.html`` holds the overview, plots, scores, pruning and HEAR tables and an empty
neuron table, so it grows with the layers, not the neurons (YAMNet, 11,465 neurons: 82 MB of
inline cards before, 65 kB now). ``report.js`` fills the table from the shards and renders
a card when its row is opened (the first :data:`OPEN_CARDS` rows open on load); each exemplar
clip is written once (WAV, plus a spectrogram when one of the first ``max_audio_cards`` cards
shows it), so the whole report grows like clips + neurons x k.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from dissect import artifacts
from dissect.explain.choice import STATUSES
from dissect.report import shards
from dissect.report.cards import FIELDS, SHOWN_DIGITS, card_row, round_sig, slug
from dissect.report.data import Neuron, RunData, load_run
from dissect.report.html import csv_table, esc, json_file, render_value
from dissect.report.layers import distributions, term_counts
from dissect.report.overview import overview_html
from dissect.report.table2 import mapped_section

AUDIO_DIR = "audio"
ASSETS_DIR = "assets"
#: The files a build wrote (paths relative to the report directory, a JSON list): the next build
#: deletes only those of them it does not write again, never a file someone else put there;
#: and a report directory holding it is recognised as one dissect built.
WRITTEN_LIST = ".dissect-report-files.json"
STATIC_FILES = ("report.css", "report.js")
#: Rows of the neuron table whose cards are open on load (and after each filter change).
OPEN_CARDS = 10
#: Rows the neuron table lists at a time ("show more" adds as many).
PAGE_ROWS = 100
#: Neuron table columns: ``(sort key, header)``; report.js fills the cells by key.
TABLE_COLUMNS = (("rank", "#"), ("layer", "layer"), ("unit", "unit"), ("desc", "description"),
                 ("kind", "shown"), ("writer", "writer"), ("sel", "selectivity"),
                 ("det", "test AUROC"), ("corr", "test corr."), ("concept", "top concept"))

class TraceFn(Protocol):
    """Per-frame activations for the report (see :func:`dissect.recording.traces.run_traces`)."""

    def __call__(self, config: dict, clip_paths: dict[str, str],
                 wanted: dict[str, dict[str, set[int]]], *, progress: bool = True) -> dict: ...


CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "media-src 'self'; base-uri 'none'; form-action 'none'")


def order_neurons(neurons: list[Neuron]) -> list[Neuron]:
    """LLM-described neurons first, then by selectivity (descending); ties by layer order/unit."""
    index = {n.key: i for i, n in enumerate(neurons)}
    return sorted(neurons, key=lambda n: (not n.by_llm, -n.selectivity, index[n.key]))


def audio_name(clip_id: str) -> str:
    """A safe, collision-free WAV file name for a clip id."""
    digest = hashlib.sha1(clip_id.encode("utf-8")).hexdigest()[:8]
    return f"{slug(clip_id)}-{digest}.wav"


def _exemplar_clips(n: Neuron, k: int) -> list[dict[str, Any]]:
    return list(n.exemplar.get("top") or [])[:k] + list(n.exemplar.get("bottom") or [])[:k]


def _shown_k(run: RunData) -> int:
    for n in run.neurons:
        if n.summary.get("top_clips"):
            return len(n.summary["top_clips"])
    return int(artifacts.config_setting(run.config, "summarize", "k", 5))


def _caption(run: RunData, clip: str) -> str:
    caps = run.captions.get(clip) or {}
    return " | ".join(f"{name}: {text}" for name, text in caps.items())


def _write_audio(run: RunData, clips: list[str], keep: set[str], out: Path, progress: bool
                 ) -> tuple[dict[str, str], dict[str, Any]]:
    """Write each clip as 16-bit WAV (as decoded: mono, cropped by the run's clip policy).

    Returns ``(clip -> report-relative path, clip -> (waveform, sample_rate))``, the waveforms
    only for the clips in ``keep`` (those that get spectrograms).
    """
    import soundfile as sf
    from tqdm.auto import tqdm

    from dissect.audio import AudioError, ClipPolicy, load_audio

    policy = ClipPolicy.from_config(run.config.get("audio") or {})
    rel: dict[str, str] = {}
    waves: dict[str, Any] = {}
    missing = []
    for clip in tqdm(clips, desc="report: audio", unit="clip", disable=not progress,
                     file=sys.stderr):
        row = run.clips.get(clip)
        if not row or not row.get("path"):
            missing.append(clip)
            continue
        try:
            audio = load_audio(row["path"], None, policy)
        except AudioError as exc:
            missing.append(f"{clip} ({exc})")
            continue
        name = audio_name(clip)
        with artifacts.atomic_path(out / AUDIO_DIR / name) as tmp:
            sf.write(str(tmp), audio.waveform, audio.sample_rate, subtype="PCM_16", format="WAV")
        rel[clip] = f"{AUDIO_DIR}/{name}"
        if clip in keep:
            waves[clip] = (audio.waveform, audio.sample_rate)
    if missing:
        print(f"[report] {len(missing)} exemplar clip(s) have no readable audio, shown without "
              f"a player: {missing[0]}", file=sys.stderr)
    return rel, waves


def _spectrograms(run: RunData, cards: list[Neuron], k: int, waves: dict[str, Any], out: Path,
                  progress: bool, traces_fn: TraceFn | None
                  ) -> tuple[dict[str, str], dict[tuple[str, int, str], Any]]:
    """Spectrogram PNGs of the exemplar clips of ``cards`` and each neuron's activation traces.

    Returns ``(clip -> report-relative PNG path, (layer, unit, clip) -> (times_ms, values))``.
    """
    from tqdm.auto import tqdm

    from dissect.report.plots import spectrogram_png

    wanted: dict[str, dict[str, set[int]]] = {}
    for n in cards:
        for e in _exemplar_clips(n, k):
            clip = str(e["clip"])
            if clip in waves:
                wanted.setdefault(clip, {}).setdefault(n.layer, set()).add(n.unit)
    images: dict[str, str] = {}
    for clip in tqdm(list(wanted), desc="report: spectrograms", unit="png",
                     disable=not progress, file=sys.stderr):
        rel = f"{ASSETS_DIR}/spec/{audio_name(clip)[:-4]}.png"
        spectrogram_png(*waves[clip], out / rel)
        images[clip] = rel
    traces: dict[str, Any] = {}
    try:
        if traces_fn is not None and wanted:
            traces = traces_fn(run.config, {c: run.clips[c]["path"] for c in wanted}, wanted,
                               progress=progress)
    except Exception as exc:  # the model may be unavailable where the report is rebuilt
        print(f"[report] cannot re-run the model for the activation overlays "
              f"({type(exc).__name__}: {exc}); spectrograms show the peak time only",
              file=sys.stderr)
    acts = {}
    for clip, per in traces.items():
        for layer, tr in per.items():
            for unit, values in tr.values.items():
                acts[(layer, unit, clip)] = (tr.times_ms, values)
    return images, acts


def _overlays(n: Neuron, k: int, clip_index: dict[str, int], images: dict[str, str],
              acts: dict[tuple[str, int, str], Any], waves: dict[str, Any]) -> list[list[Any]]:
    """A rich card's spectrogram overlays: ``[[clip, peak_x, points, lo, hi], ...]`` for its
    exemplar clips with a spectrogram (see :mod:`dissect.report.cards`)."""
    from dissect.report.plots import activation_points

    out = []
    for e in _exemplar_clips(n, k):
        clip = str(e["clip"])
        if clip not in images or clip not in waves:
            continue
        wave, sr = waves[clip]
        times, values = acts.get((n.layer, n.unit, clip), (None, None))
        peak_x, points = activation_points(1000.0 * len(wave) / sr, times, values,
                                           e.get("peak_ms"))
        lo = hi = None
        if values is not None and len(values):
            lo, hi = (round_sig(float(v), SHOWN_DIGITS) for v in (values.min(), values.max()))
        out.append([clip_index[clip], peak_x, points, lo, hi])
    return out


def _write_shards(run: RunData, cards: list[Neuron], k: int, audio_rel: dict[str, str],
                  images: dict[str, str], acts: dict[tuple[str, int, str], Any],
                  waves: dict[str, Any], rich: set[tuple[str, int]], open_cards: int,
                  out: Path) -> tuple[list[str], dict[str, str]]:
    """Write the clip table, one shard per layer with cards, and ``data/top.js`` with the rows
    of the first ``open_cards`` cards again (so the page shows them before the layer shards
    arrive). ``rich``: the keys of the cards with spectrograms and inline players.

    Returns ``(written report-relative paths, layer -> its shard's path)``.
    """
    clip_ids = list(dict.fromkeys(str(e["clip"]) for n in cards for e in _exemplar_clips(n, k)))
    clip_index = {c: i for i, c in enumerate(clip_ids)}
    written = [shards.write_shard(out, shards.CLIPS_FILE, {
        "kind": "clips", "fields": list(shards.CLIP_FIELDS),
        "rows": [[c, audio_rel.get(c), images.get(c), _caption(run, c)] for c in clip_ids]})]
    rank = {n.key: i for i, n in enumerate(cards)}
    first = {n.key for n in cards[:open_cards]}
    by_layer: dict[str, list[Neuron]] = {}
    for n in cards:
        by_layer.setdefault(n.layer, []).append(n)
    files = {}
    top = []
    for i, layer in enumerate(run.layers):
        if layer not in by_layer:
            continue
        strings: dict[str, int] = {}
        neurons = sorted(by_layer[layer], key=lambda n: n.unit)
        rows = [card_row(n, k, rank[n.key], clip_index, strings,
                         _overlays(n, k, clip_index, images, acts, waves)
                         if n.key in rich else None) for n in neurons]
        payload = {"kind": "layer", "layer": layer, "slug": slug(layer), "fields": list(FIELDS),
                   "strings": list(strings), "rows": rows}
        files[layer] = shards.write_shard(out, shards.layer_file(i, layer), payload)
        written.append(files[layer])
        if any(n.key in first for n in neurons):
            top.append(payload | {"rows": [r for n, r in zip(neurons, rows, strict=True)
                                           if n.key in first]})
    written.append(shards.write_shard(out, shards.TOP_FILE, {"kind": "top", "shards": top}))
    return written, files


def _layer_section(run: RunData, out: Path) -> tuple[str, list[str]]:
    from dissect.report.plots import distribution_plot, layer_terms_plot

    written = []
    parts = ['<section id="layers"><h2>Layers</h2>']
    # per layer: how many shown descriptions validation confirmed, and why the others are
    # "no clear concept" (replaces AND's interpretable fraction, 1.0 on every layer of the
    # default run: it said nothing)
    counts: dict[str, dict[str, int]] = {}
    for n in run.neurons:
        st = (n.explanation or {}).get("status")
        if st:
            d = counts.setdefault(n.layer, dict.fromkeys(STATUSES, 0))
            d[st] = d.get(st, 0) + 1
    if counts:
        head = "".join(f"<th>{esc(s.replace('_', ' '))}</th>" for s in STATUSES)
        body = "".join(f"<tr><td>{esc(layer)}</td>" + "".join(
            f"<td>{d.get(s, 0)}</td>" for s in STATUSES) + "</tr>" for layer, d in counts.items())
        parts += ["<h3>Confirmed descriptions per layer</h3>",
                  f'<table class="status"><tr><th>layer</th>{head}</tr>{body}</table>',
                  '<p class="note">confirmed: the shown description\'s correlation with the '
                  "activation beats a permutation test on the validation clips (Bonferroni over "
                  "the neuron's candidates); unconfirmed: no candidate does; too few positives: "
                  "no candidate names enough validation clips; no evidence: no caption term "
                  "passes the Benjamini-Hochberg cut on the fit clips. The last three are "
                  "shown as \"no clear concept\".</p>"]
    dist = distributions(run.run_dir, run.layers)
    if dist:
        rel = f"{ASSETS_DIR}/plots/distribution.png"
        distribution_plot(dist, out / rel)
        written.append(rel)
        parts += ["<h3>Activation distribution</h3>",
                  f'<figure class="plot"><img src="{esc(rel)}" alt="activation distribution">'
                  "<figcaption class=\"note\">From stats/&lt;layer&gt;.safetensors: per-unit "
                  "mean and 0.99 quantile of the pooled activation over the probe set."
                  "</figcaption></figure>"]
    terms = term_counts(run)
    if any(t["adjectives"] or t["concepts"] for t in terms.values()):
        parts += ["<h3>Top adjectives and closed-set concepts</h3>", '<div class="layerplots">']
        for layer, t in terms.items():
            rel = f"{ASSETS_DIR}/plots/terms-{slug(layer)}.png"
            layer_terms_plot(layer, t["adjectives"], t["concepts"], out / rel)
            written.append(rel)
            parts.append(f'<figure class="plot"><img src="{esc(rel)}" alt="top terms of '
                         f'{esc(layer)}" loading="lazy"></figure>')
        parts.append("</div>")
    parts.append("</section>")
    return "\n".join(parts), written


def _artifact_section(run_dir: Path, sub: str, title: str, anchor: str) -> str:
    """Generic tables for every JSON/CSV file directly under ``run_dir/sub`` ('' when none).

    A JSON file with a CSV twin of the same stem (HEAR writes both) shows as the CSV table;
    mask files (``*.masks.json``) start collapsed.
    """
    d = run_dir / sub
    files = sorted(p for p in d.glob("*") if p.suffix in (".json", ".csv") and p.is_file()) \
        if d.is_dir() else []
    files = [p for p in files if not (p.suffix == ".json" and p.with_suffix(".csv") in files)]
    if not files:
        return ""
    parts = [f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>']
    for p in files:
        body = json_file(p) if p.suffix == ".json" else csv_table(p)
        is_open = "" if p.name.endswith(".masks.json") else " open"
        parts.append(f"<details{is_open}><summary>{esc(sub)}/{esc(p.name)}</summary>{body}"
                     "</details>")
    parts.append("</section>")
    return "\n".join(parts)


def _scores_section(run_dir: Path) -> str:
    """``scores.json`` (the evaluate stage) as generic tables, without the per-neuron block."""
    import json

    path = run_dir / artifacts.SCORES
    if not path.is_file():
        return ""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        body = f'<p class="error">{esc(path.name)}: cannot parse ({esc(exc)})</p>'
    else:
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if k != "per_neuron"}
        body = mapped_section(data) + render_value(data)
    return f'<section id="scores"><h2>Scores</h2><p class="note">scores.json</p>{body}</section>'


def _copy_static(out: Path) -> list[str]:
    written = []
    pkg = resources.files("dissect.report").joinpath("static")
    for name in STATIC_FILES:
        rel = f"{ASSETS_DIR}/{name}"
        with artifacts.atomic_path(out / rel) as tmp:
            tmp.write_bytes(pkg.joinpath(name).read_bytes())
        written.append(rel)
    return written


def _make_readable(out: Path, rels: set[str]) -> None:
    """Give the report's files the usual ``0666 & ~umask`` mode (temp files start as 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    for rel in rels:
        with contextlib.suppress(OSError):
            os.chmod(out / rel, 0o666 & ~umask)


def _previous_files(out: Path) -> list[str]:
    """The files the previous build listed in :data:`WRITTEN_LIST` (empty when there is none or
    it is not a JSON list of strings)."""
    import json

    try:
        listed = json.loads((out / WRITTEN_LIST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [x for x in listed if isinstance(x, str)] if isinstance(listed, list) else []


def _remove_stale(out: Path, keep: set[str]) -> None:
    """Delete the files under audio/, assets/ and data/ that the previous build wrote (its
    :data:`WRITTEN_LIST`) and this one did not, and the folders that leaves empty. A file
    dissect did not write is never deleted; a listed path that is absolute or climbs out of
    ``out`` is ignored."""
    roots = {AUDIO_DIR, ASSETS_DIR, shards.SHARD_DIR}
    base = out.resolve()
    for rel in _previous_files(out):
        rp = Path(rel)
        if rel in keep or rp.is_absolute() or ".." in rp.parts or len(rp.parts) < 2 \
                or rp.parts[0] not in roots:
            continue
        p = out / rp
        if p.is_symlink() or not p.is_file() or not p.resolve().is_relative_to(base):
            continue
        p.unlink()
        parent = p.parent
        while parent != out / rp.parts[0] and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent


def build_report(run_dir: str | Path, *, out_dir: str | Path | None = None,
                 max_cards: int | None = None, max_audio_cards: int = 60,
                 open_cards: int = OPEN_CARDS, progress: bool = True,
                 traces: TraceFn | None = None) -> Path:
    """Write ``index.html`` with ``data/``, ``audio/`` and ``assets/`` from a run's artifacts.

    Args:
        run_dir: a run directory with at least the probe and record artifacts.
        out_dir: where the report goes (default ``<run_dir>/report``): a new or empty
            directory, or one a build wrote (:data:`WRITTEN_LIST`). Files under its
            ``audio/``, ``assets/`` and ``data/`` that the previous build wrote and this one
            did not are deleted; no other file is.
        max_cards: neurons in the table, with cards (None: all), in card order (LLM-described
            first, then by selectivity).
        max_audio_cards: the first cards whose exemplar clips get a spectrogram with the
            activation over time (from ``traces``) and inline ``<audio controls>`` players;
            later cards get play links that become players on click (every card's clips are
            copied to ``audio/``, once per clip).
        open_cards: table rows whose cards are open on load and after each filter change.
        progress: show progress bars.
        traces: ``traces(config, clip_paths, wanted, progress=) -> {clip: {layer: trace}}``,
            per-frame activations of the wanted units (the report itself never runs a model;
            the report stage passes :func:`dissect.recording.traces.run_traces`). None: the
            spectrograms mark the recorded peak time only.

    Returns:
        The path of ``index.html``.

    Raises:
        MissingArtifactError: a required artifact is missing (the message names it).
        RunDirRefused: ``out_dir`` is a non-empty directory no build wrote, a file, the
            filesystem root or the home directory.
    """
    run = load_run(run_dir)
    if out_dir is not None:  # anywhere: refuse a folder of someone else's files
        out = artifacts.claim_dir(out_dir, lambda p: (p / WRITTEN_LIST).is_file(),
                                  "report directory")
    else:  # inside the run directory, which is dissect's
        out = run.run_dir / artifacts.REPORT_DIR
        out.mkdir(parents=True, exist_ok=True)
    written: set[str] = set(_copy_static(out))
    k = _shown_k(run)
    ordered = order_neurons(run.neurons)
    cards = ordered if max_cards is None else ordered[: max(0, max_cards)]
    clip_ids = list(dict.fromkeys(str(e["clip"]) for n in cards for e in _exemplar_clips(n, k)))
    spec_cards = cards[: max(0, max_audio_cards)]
    spec_clips = {str(e["clip"]) for n in spec_cards for e in _exemplar_clips(n, k)}
    audio_rel, waves = _write_audio(run, clip_ids, spec_clips, out, progress)
    written |= set(audio_rel.values())
    images, acts = _spectrograms(run, spec_cards, k, waves, out, progress, traces)
    written |= set(images.values())
    layer_html, plots = _layer_section(run, out)
    written |= set(plots)
    data_files, layer_files = _write_shards(run, cards, k, audio_rel, images, acts, waves,
                                            {n.key for n in spec_cards}, max(0, open_cards), out)
    written |= set(data_files)
    page = _page(run, layer_html, layer_files, len(cards), len(ordered), k,
                 max(0, open_cards))
    _remove_stale(out, written)
    index = out / "index.html"
    artifacts.write_text(index, page)
    artifacts.write_json(out / WRITTEN_LIST, sorted(written | {"index.html"}))
    _make_readable(out, written | {"index.html"})
    print(f"[report] {index} ({len(cards)} cards in {len(layer_files)} shards, "
          f"{len(audio_rel)} clips, {len(images)} spectrograms)", file=sys.stderr)
    return index


def _page(run: RunData, layer_html: str, layer_files: dict[str, str], n_cards: int, total: int,
          k: int, open_cards: int) -> str:
    model = run.config.get("model", {})
    title = f"dissect report: {model.get('name', '?')} {model.get('source') or ''}".strip()
    scores = _scores_section(run.run_dir)
    prune = _artifact_section(run.run_dir, "prune", "Pruning (unlearning)", "prune")
    hear = _artifact_section(run.run_dir, "hear", "HEAR results", "hear")
    nav = ['<a href="#overview">Overview</a>', '<a href="#layers">Layers</a>']
    if scores:
        nav.append('<a href="#scores">Scores</a>')
    if prune:
        nav.append('<a href="#prune">Pruning</a>')
    if hear:
        nav.append('<a href="#hear">HEAR</a>')
    nav.append('<a href="#neurons">Neurons</a>')
    options = "".join(
        f'<option value="{esc(layer)}"'
        + (f' data-shard="{esc(layer_files[layer])}"' if layer in layer_files else "")
        + f'>{esc(layer)}</option>' for layer in run.layers)
    shown = (f"{n_cards} of {total} neurons have cards" if n_cards < total
             else f"{total} neurons")
    head = "".join(f'<th data-sort="{key}" scope="col"><button type="button" title="sort">'
                   f"{esc(label)}</button></th>" for key, label in TABLE_COLUMNS)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<link rel="stylesheet" href="{ASSETS_DIR}/report.css">
</head>
<body>
<header class="top"><h1>{esc(title)}</h1>
<p>Run directory: {esc(run.run_dir.name)} · {esc(shown)} · top/bottom {k} clips per card</p>
</header>
<nav>{" ".join(nav)}</nav>
<main>
{overview_html(run)}
{layer_html}
{scores}
{prune}
{hear}
<section id="neurons" data-clips="{shards.CLIPS_FILE}" data-top="{shards.TOP_FILE}"
 data-open="{open_cards}"
 data-page="{PAGE_ROWS}"><h2>Neurons</h2>
<p class="note">Ordered (#): LLM-described neurons first, then by selectivity
(mean of the top-k values minus the mean, over the std); a column header sorts by that column.
Click a row to open or close its card; the first {open_cards} rows open by themselves.
Spectrograms: log-mel; the yellow line is the neuron's activation over time, the red dashed line
its recorded peak.</p>
<div class="filterbar">
<input id="filter" type="search" placeholder="filter: description, concept, keyword, layer"
 aria-label="filter neurons" autocomplete="off">
<select id="layer-filter" aria-label="layer"><option value="">all layers</option>{options}</select>
<span id="filter-count" aria-live="polite"></span>
</div>
<p id="neurons-status" class="note" aria-live="polite">Loading {n_cards} neurons from
{len(layer_files)} data files (data/*.js)...</p>
<noscript><p class="error">The neuron table and its cards need JavaScript; descriptions.csv in
the run directory holds the same table.</p></noscript>
<table id="neuron-table" class="neurons"><thead><tr>{head}</tr></thead><tbody></tbody></table>
<p><button id="more" type="button" hidden>show more</button></p>
</section>
</main>
<script src="{ASSETS_DIR}/report.js"></script>
</body>
</html>
"""
