"""HEAR 2021 modules: each ``dissect.hear.modules.<name>`` exposes ``load_model(model_file_path="",
**options)``, ``get_scene_embeddings(audio, model)`` and ``get_timestamp_embeddings(audio,
model)``, so hear-eval-kit and hearvalidator can import it as it is. Every module documents its
``model_file_path`` semantics; ``**options`` are heareval's ``--model-options``.

Single models: :data:`SINGLE`; ensembles: :data:`ENSEMBLES`; :data:`OFFLINE` need no download.
"""

SINGLE = ("crepe_full", "crepe_tiny", "whisper_tiny", "logmel", "hubert_base", "wav2vec2_base",
          "wavlm_base", "data2vec_audio_base", "ast_audioset", "beats_iter3", "clap_htsat",
          "yamnet")
ENSEMBLES = ("gura_avg", "gura_cat", "gura_fusion", "guided")
MODULES = SINGLE + ENSEMBLES
OFFLINE = ("crepe_full", "crepe_tiny", "whisper_tiny", "logmel", "yamnet", "gura_avg",
           "gura_cat", "gura_fusion")

PACKAGE = "dissect.hear.modules"


def import_name(name: str) -> str:
    """The import name of a HEAR module: a dotted name as it is, a short name of :data:`MODULES`
    under this package (``"logmel"`` -> ``"dissect.hear.modules.logmel"``).

    Raises:
        ValueError: a short name that is not one of :data:`MODULES`.
    """
    name = name.strip()
    if "." in name:
        return name
    if name not in MODULES:
        raise ValueError(f"unknown HEAR module {name!r}: one of {', '.join(MODULES)}, or a "
                         "dotted import name")
    return f"{PACKAGE}.{name}"


def short_name(name: str) -> str:
    """``"dissect.hear.modules.logmel"`` -> ``"logmel"``; other import names stay as they are."""
    head, _, tail = name.rpartition(".")
    return tail if head == PACKAGE else name


def ensemble_members(name: str, model_file_path: str = "",
                     members: str | None = None) -> list[tuple[str, str, str]] | None:
    """The members ``[(module, layer, source), ...]`` a GURA-style ensemble module (one of
    :data:`ENSEMBLES` with a default member spec) loads with these ``load_model`` arguments
    (:func:`dissect.hear.modules._build.parse_members`), or None for any other module
    (single models, ``guided``, whose members are dissect runs). ``module`` is a short name.
    A speech ``model_file_path`` is resolved through its ``config.json``."""
    import importlib

    if short_name(name) not in ENSEMBLES:
        return None
    mod = importlib.import_module(import_name(short_name(name)))
    offline, speech = getattr(mod, "OFFLINE", None), getattr(mod, "SPEECH", None)
    if offline is None or speech is None:
        return None
    from dissect.hear.modules._build import ensemble_members as spec_of
    from dissect.hear.modules._build import parse_members

    return parse_members(spec_of(model_file_path, members, offline, speech))
