"""Counts and sizes are checked where they enter: the composed config of ``dissect run``, the
dataclasses built in Python, and the API's keyword arguments. Each refusal names the field and
the value."""

import numpy as np
import pytest

import dissect
from dissect import pipeline
from dissect.cli import compose, main
from dissect.config import (
    ConfigValueError,
    ExplainConfig,
    ProbeConfig,
    PruneConfig,
    RecordConfig,
    SummarizeConfig,
    SynthConfig,
    check_run_config,
)


@pytest.mark.parametrize("override, message", [
    ("record.k=0", "record.k=0: must be an integer >= 1"),
    ("record.k=-3", "record.k=-3: must be an integer >= 1"),
    ("record.batch_size=0", "record.batch_size=0: must be an integer >= 1"),
    ("record.batch_size=-1", "record.batch_size=-1: must be an integer >= 1"),
    ("summarize.k=0", "summarize.k=0: must be an integer >= 1"),
    ("explain.permutations=0", "explain.permutations=0: must be an integer >= 1"),
    ("summarize.max_llm_neurons=-2", "summarize.max_llm_neurons=-2: must be an integer >= -1"),
    ("probe.synth.n_clips=0", "probe.synth.n_clips=0: must be an integer >= 1"),
    ("llm.max_tokens=0", "llm.max_tokens=0: must be an integer >= 1"),
    ("llm.concurrency=-4", "llm.concurrency=-4: must be an integer >= 1"),
    ("record.hist_alpha=0", "record.hist_alpha=0.0: must be a number in (0, 1)"),
    ("audio.max_seconds=-1", "audio.max_seconds=-1.0: must be a number > 0 or null"),
    ("probe.holdout=1", "probe.holdout=1.0: must be a number in [0, 1)"),
])
def test_run_refuses_bad_sizes_before_anything_runs(tmp_path, capsys, override, message):
    run_dir = tmp_path / "run"
    rc = main(["run", f"run_dir={run_dir}", "llm=rules", override])
    err = capsys.readouterr().err
    assert rc == 2 and err.strip() == f"dissect: error: {message}"
    assert not run_dir.exists()  # refused before the run directory was made


def test_valid_edge_values_pass():
    cfg = compose(["llm=rules", "record.k=1", "record.batch_size=1", "summarize.k=1",
                   "summarize.max_llm_neurons=-1", "explain.sample_random=0",
                   "probe.holdout=0", "report.max_cards=0", "audio.max_seconds=null"])
    check_run_config(cfg)
    pipeline.validate(cfg)


def test_dataclasses_refuse_bad_sizes():
    with pytest.raises(ConfigValueError, match=r"^record\.k=0: must be an integer >= 1$"):
        RecordConfig(k=0)
    with pytest.raises(ConfigValueError, match=r"^record\.batch_size=-1: "):
        RecordConfig(batch_size=-1)
    with pytest.raises(ConfigValueError, match=r"^explain\.permutations=0: "):
        ExplainConfig(permutations=0)
    with pytest.raises(ConfigValueError, match=r"^summarize\.k=2\.5: must be an integer"):
        SummarizeConfig(k=2.5)
    with pytest.raises(ConfigValueError, match=r"^probe\.synth\.n_clips=0: "):
        ProbeConfig(synth=SynthConfig(n_clips=0))
    with pytest.raises(ConfigValueError, match=r"^points=0: must be an integer >= 1$"):
        PruneConfig(points=0)
    assert RecordConfig(k=np.int64(3)).k == 3  # numpy integers are integers


def test_command_configs_refuse_bad_sizes(capsys):
    rc = main(["prune", "run_dir=/nonexistent", "concept=dog", "points=0"])
    assert rc == 2 and "points=0: must be an integer >= 1" in capsys.readouterr().err


@pytest.fixture(scope="module")
def toy(frame_toy):
    return dissect.load(frame_toy(), layers=["proj"], sample_rate=1000, device="cpu")


@pytest.fixture(scope="module")
def waves():
    rng = np.random.default_rng(0)
    return [rng.standard_normal(800).astype(np.float32) for _ in range(8)]


@pytest.mark.parametrize("kwargs, message", [
    ({"k": 0}, "describe(): k=0: must be an integer >= 1"),
    ({"method": "best"}, "describe(): method='best': must be one of 'evidence', 'and'"),
    ({"summarize": {"max_llm_neurons": -5}},
     "summarize.max_llm_neurons=-5: must be an integer >= -1"),
    ({"concepts": {"top_concepts": 0}}, "concepts.top_concepts=0: must be an integer >= 1"),
    ({"llm": {"max_tokens": 0}}, "llm.max_tokens=0: must be an integer >= 1"),
    ({"explain": {"permutations": 0}}, "explain.permutations=0: must be an integer >= 1"),
])
def test_api_describe_refuses_bad_values_before_any_work(toy, waves, kwargs, message):
    """Shortcuts are checked by describe(); a config section refuses a bad value when it is
    built, so no LLM call can happen either way."""
    from dissect import config as C

    rec = dissect.record(toy, waves, sample_rate=1000, k=2, progress=False)
    calls = []
    classes = {"summarize": C.SummarizeConfig, "concepts": C.ConceptsConfig,
               "llm": C.LLMConfig, "explain": C.ExplainConfig}
    with pytest.raises(ConfigValueError) as info:
        sections = {k: classes[k](**v) for k, v in kwargs.items() if k in classes}
        short = {k: v for k, v in kwargs.items() if k not in classes}
        dissect.describe(rec, captions={c: "a sound" for c in rec.clip_ids}, llm=_Spy(calls),
                         config=C.DescribeConfig(**sections), **short)
    assert str(info.value) == message and calls == []


class _Spy:
    """An LLM client that records every call (none may happen before the check)."""

    name = "spy"

    def __init__(self, calls):
        self.calls = calls

    def generate(self, chats, params):
        self.calls.append(chats)
        raise AssertionError("called")
