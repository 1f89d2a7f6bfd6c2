"""Config fields document and check themselves (:mod:`dissect.fields`, :mod:`dissect.config`)."""

import dataclasses

import pytest

from dissect import config, pipeline
from dissect.fields import (
    COUNT,
    ConfigValueError,
    check,
    choices,
    field_docs,
    hashed,
    help_rows,
    option,
)


@dataclasses.dataclass
class _Toy:
    """A toy section."""

    n: int = option(3, COUNT)
    """How many."""
    mode: str = option("a", ("a", "b"))
    """Which mode:
    a or b."""
    modes: list[str] = option(factory=list, valid=("a", "b"))
    cache: str | None = option(None, hashed=False)
    """Where to cache."""


def test_attribute_docstrings_are_the_field_docs():
    assert field_docs(_Toy) == {"n": "How many.", "mode": "Which mode: a or b.",
                                "cache": "Where to cache."}
    rows = {r["name"]: r for r in help_rows(_Toy)}
    assert rows["mode"]["valid"] == "one of a, b" and rows["n"]["valid"] == "an integer >= 1"
    assert rows["modes"]["default"] == [] and rows["cache"]["hashed"] is False


def test_choices_and_ranges_are_checked_with_the_field_named():
    check(_Toy, {"n": 2, "mode": "b", "modes": ["a", "b"]})
    with pytest.raises(ConfigValueError, match=r"^x\.mode='c': must be one of 'a', 'b'$"):
        check(_Toy, {"mode": "c"}, "x.")
    with pytest.raises(ConfigValueError, match=r"^modes=\['a', 'z'\]: must be one of"):
        check(_Toy, {"modes": ["a", "z"]})
    with pytest.raises(ConfigValueError, match=r"^n=0: must be an integer >= 1$"):
        check(_Toy, {"n": 0})
    assert hashed(_Toy) == ["n", "mode", "modes"] and choices(_Toy, "mode") == ("a", "b")


def test_every_config_field_is_documented():
    missing = [f"{path}.{f.name}" for path, cls in config.sections().items()
               for f in dataclasses.fields(cls) if f.name not in field_docs(cls)]
    assert missing == []


def test_choice_fields_refuse_free_strings_in_the_dataclasses_and_the_composed_config():
    with pytest.raises(ConfigValueError, match=r"^record\.reduction='median': must be one of"):
        config.RecordConfig(reduction="median")
    with pytest.raises(ConfigValueError, match=r"^explain\.method='best': must be one of"):
        config.ExplainConfig(method="best")
    with pytest.raises(ConfigValueError, match=r"^audio\.long_clip='all': must be one of"):
        config.AudioConfig(long_clip="all")
    with pytest.raises(ConfigValueError, match=r"^record\.backend='dask'"):
        config.check_run_config(config.compose(["record.backend=dask"]))


def test_audio_config_is_the_clip_policy():
    from dissect.audio import ClipPolicy

    assert config.AudioConfig is ClipPolicy
    assert config.sections()["audio"] is ClipPolicy


@pytest.mark.parametrize("overrides, message", [
    (["summarize.k=6", "record.k=5"],
     "summarize.k=6 is more than record.k=5: a neuron keeps only record.k top and bottom clips; "
     "raise record.k or lower summarize.k"),
    (["record.dense=false"],
     "record.dense=false, but stage(s) ['concepts', 'explain', 'evaluate'] read every clip's "
     "activation (activations/): set record.dense=true, or drop those stages "
     "(pipeline=record_only)"),
    (["recipe=yamnet_free_sounds", "captioner=acoustic_tagger"],
     "caption.captioners=['acoustic', 'tagger'] includes 'tagger' (YAMNet's AudioSet tags), but "
     "model.name=yamnet: YAMNet's neurons would be described by YAMNet's own predictions "
     "(circular). Use the other captioners, e.g. captioner=acoustic_labels (with labels) or "
     "caption.captioners=[acoustic]"),
])
def test_cross_field_rules_name_both_fields(overrides, message):
    with pytest.raises(ConfigValueError) as info:
        config.check_run_config(config.compose(overrides))
    assert str(info.value) == message
    # the same values pass when the stage that needs them does not run
    config.check_run_config(config.compose([*overrides, "stages=[probe,record]"]))


def test_a_stage_hash_reads_its_own_section_and_declared_inputs_only():
    """Changing a field changes exactly the stages that read it: no exclusion lists."""
    def sections(overrides):
        cfg = config.compose(overrides)
        out = {}
        for stage in pipeline.STAGE_LIST:
            if stage.name in ("summarize", "concepts", "explain", "evaluate"):
                ctx = pipeline.StageContext(cfg, __import__("pathlib").Path("."), False)
                ctx.__dict__["manifest"] = None  # not read by these config values
                out[stage.name] = {k: pipeline.config_value(ctx, v)
                                   for k, v in stage.config.items()
                                   if isinstance(v, (str, pipeline.Section))}
        return out

    base = sections([])
    changed = {
        "summarize.calibration_threshold=0.9": {"summarize"},
        "summarize.max_llm_neurons=3": {"summarize", "explain"},
        "concepts.top_concepts=2": {"concepts"},
        "concepts.negation_window=2": {"concepts", "explain"},
        "concepts.similarity=cos": {"concepts", "evaluate"},
        "explain.permutations=99": {"explain"},
        "explain.method=and": {"summarize", "explain"},
        "explain.split_seed=1": {"concepts", "explain"},
        "record.progress=false": set(),
        "llm.cache_dir=/tmp/x": set(),
    }
    for override, stages in changed.items():
        now = sections([override])
        assert {s for s in base if now[s] != base[s]} == stages, override


def test_runs_made_before_the_split_still_load(tmp_path):
    """An old config.yaml's describe section moves field by field into the new sections."""
    from omegaconf import OmegaConf

    from dissect.cli import load_run_config

    old = OmegaConf.to_container(OmegaConf.structured(config.RunConfig))
    for name in ("summarize", "concepts", "explain"):
        old.pop(name)
    old["describe"] = {"k": 3, "concept_set": "esc50", "splits": [0.5, 0.25, 0.25],
                       "negation_window": 2}
    (tmp_path / "config.yaml").write_text(OmegaConf.to_yaml(old), encoding="utf-8")
    cfg = load_run_config([f"run_dir={tmp_path}", "explain.split_seed=4"])
    assert (cfg.summarize.k, cfg.concepts.concept_set, cfg.concepts.negation_window) == (
        3, "esc50", 2)
    assert list(cfg.explain.splits) == [0.5, 0.25, 0.25] and cfg.explain.split_seed == 4
    assert cfg.summarize.max_llm_neurons == 40  # not in the old section: the default
    with pytest.raises(ConfigValueError, match=r"^describe\.bogus: no such field"):
        config.upgrade({"describe": {"bogus": 1}})
    assert config.upgrade({"record": {"k": 2}}) == {"record": {"k": 2}}
