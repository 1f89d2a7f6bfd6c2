"""The embedded ``synth`` probe set: rendered offline and deterministically, then cached.

Nothing is downloaded. :func:`load_synth` plans the clips from ``SynthConfig.seed``
(:func:`plan_synth`), renders the ones not yet cached (:func:`render_clip`) and returns a
:class:`~dissect.datasets.base.ProbeSet` whose clips carry their ground truth in ``concepts``.

What is in it (default ``n_clips=600``; proportions scale with ``n_clips``):

======== ===== ========================================================================
kind     share what
======== ===== ========================================================================
note     60 %  General MIDI instrument notes, rendered with ``tinysoundfont`` from the
               ``TimGM6mb.sf2`` soundfont shipped inside ``pretty_midi``: 27 programs in
               12 GM families, MIDI notes 24..96 (each instrument within its playable
               range, see :data:`INSTRUMENTS`; every note 24..96 appears once before any
               repeats), velocities 64 and 112.
tone     5 %   pure sines at MIDI-note frequencies 24..96.
harmonic 5 %   harmonic complexes, 1/k amplitudes, 6..10 harmonics below 0.45 * sr,
               random phases, at MIDI-note frequencies.
noise    8 %   white, pink (-3 dB/oct) and brown (-6 dB/oct) noise, shaped in the FFT
               domain, at -40, -30 and -20 dBFS RMS.
clicks   5 %   trains of 2 ms decaying noise bursts at 2..32 Hz.
chirp    5 %   logarithmic sweeps, rising and falling alternately.
silence  2 %   near-silence: white noise at -90..-70 dBFS RMS.
speech   10 %  ``espeak-ng`` words and digit strings, when espeak-ng is installed and
               ``SynthConfig.speech`` is true; otherwise these slots become notes and one
               log line says why.
======== ===== ========================================================================

Loudness is set on purpose: each clip gets a random target RMS (or peak, for clicks; a fixed
level set for noise), capped so the peak stays at or below -1 dBFS. The level actually rendered
is measured and stored as ``concepts["loudness_dbfs"]`` (RMS dBFS of the file's samples). For
notes the velocity therefore changes timbre, not the final level.

Files and cache. Each clip is one mono **32-bit float WAV** (IEEE float, written by this module
without libsndfile's ``PEAK`` chunk, whose timestamp would make files differ run to run; float
keeps the -90 dBFS near-silence clips exact). They live in ``<cache_root>/<key>/`` where the key
hashes the audio-relevant config fields, :data:`RENDER_VERSION`, whether speech was rendered and
the soundfont's SHA-256 (:func:`synth_cache_key`). Every file is written atomically (temporary
file in the same directory, then ``os.replace``). While rendering, each finished clip appends
its SHA-256 to ``index.partial.jsonl``; ``index.json`` (all clips, their SHA-256 and measured
loudness) is written last, atomically, and the journal removed. On every load each file is
hashed and compared with the index (or the journal of an interrupted render); a missing or
mismatching file is rendered again, so an interrupted render resumes and a file is never trusted
merely because it exists.

Rendering is order independent: every clip draws from its own random generator seeded in the
plan, and each note uses a fresh ``tinysoundfont.Synth``, so re-rendering one clip gives the same
bytes as the original render.

Modules: :mod:`~dissect.datasets.synth.plan` (:class:`SynthConfig`, the kinds, instruments and
:func:`plan_synth`), :mod:`~dissect.datasets.synth.render` (:func:`render_clip`) and
:mod:`~dissect.datasets.synth.cache` (the cache key and root, and :func:`load_synth`). The names
used elsewhere are re-exported here.
"""

from dissect.datasets.synth.cache import (
    INDEX_NAME,
    JOURNAL_NAME,
    load_synth,
    synth_cache_key,
    synth_cache_root,
)
from dissect.datasets.synth.plan import (
    CONCEPT_KEYS,
    INSTRUMENTS,
    KINDS,
    LABEL_COLUMNS,
    NOISE_COLOURS,
    PROPORTIONS,
    RENDER_VERSION,
    SynthConfig,
    SynthSpec,
    kind_counts,
    plan_synth,
)
from dissect.datasets.synth.render import render_clip, rms_dbfs, soundfont_path, speech_available
from dissect.util import wav_bytes

__all__ = [
    "CONCEPT_KEYS",
    "INDEX_NAME",
    "INSTRUMENTS",
    "JOURNAL_NAME",
    "KINDS",
    "LABEL_COLUMNS",
    "NOISE_COLOURS",
    "PROPORTIONS",
    "RENDER_VERSION",
    "SynthConfig",
    "SynthSpec",
    "kind_counts",
    "load_synth",
    "plan_synth",
    "render_clip",
    "rms_dbfs",
    "soundfont_path",
    "speech_available",
    "synth_cache_key",
    "synth_cache_root",
    "wav_bytes",
]
