"""Suite entries (``dissect hear modules=[...]``): the entry syntax, labels, ensemble members,
and the config rule that exactly one of ``module`` / ``modules`` is given."""

import pytest
from omegaconf import OmegaConf

from dissect.cli import command_config, main
from dissect.config import HearConfig, hear_is_suite
from dissect.hear.suite import Member, parse_entries, parse_entry, run_suite


def test_good_entries():
    plain = parse_entry("logmel")
    assert (plain.label, plain.module, plain.options, plain.members, plain.ensemble) == (
        "logmel", "dissect.hear.modules.logmel", {}, None, False)
    cat = parse_entry("gura_cat(members=crepe_tiny+logmel)")
    assert cat.label == cat.dir_name == "gura_cat[crepe_tiny+logmel]"
    assert cat.options == {"members": "crepe_tiny,logmel"} and cat.ensemble
    assert cat.members == (Member("crepe_tiny"), Member("logmel"))
    default = parse_entry("gura_fusion")  # its default members, at their fusion layers
    assert [m.spec for m in default.members] == [
        "crepe_full:fusion", "crepe_tiny:fusion", "logmel:fusion"]
    opts = parse_entry(" logmel(n_mels=64; hop_ms=12.5;center=true;label=lm64) ")
    assert opts.label == "lm64" and opts.options == {"n_mels": 64, "hop_ms": 12.5, "center": True}
    odd = parse_entry("gura_cat(members=crepe_full:fusion+logmel@/m/x;gura_compat=true)")
    assert odd.label == "gura_cat[crepe_full:fusion+logmel@/m/x;gura_compat=true]"
    assert odd.dir_name == "gura_cat[crepe_full_fusion+logmel__m_x;gura_compat=true]"
    assert odd.members == (Member("crepe_full", "fusion"), Member("logmel", "last", "/m/x"))
    foreign = parse_entry("my_pkg.hear_mod(model_file_path=w.pt)")
    assert (foreign.module, foreign.model_file_path, foreign.label) == (
        "my_pkg.hear_mod", "w.pt", "my_pkg.hear_mod[model_file_path=w.pt]")
    # a member is in the suite only as the same module, layer and path, without other options
    assert parse_entry("logmel").matches(Member("logmel"))
    assert not opts.matches(Member("logmel"))
    assert parse_entry("crepe_full(layer=fusion)").matches(Member("crepe_full", "fusion"))


@pytest.mark.parametrize("text, message", [
    ("gura_cat(members=crepe_tiny", "options look cut at a comma"),
    ("logmel)", "options look cut at a comma"),
    ("logmel(n_mels)", "option 'n_mels' is not KEY=VALUE"),
    ("logmel(n_mels=1;n_mels=2)", "option 'n_mels' given twice"),
    ("logmel(label=..)", "cannot name a folder"),
    ("two words", "expected MODULE or MODULE(KEY=VALUE;KEY=VALUE...)"),
    ("nope", "entry 'nope': unknown HEAR module 'nope'"),
    ("gura_cat(members=crepe_tiny+nope)", "unknown HEAR module 'nope'"),
])
def test_bad_entries_say_why(text, message):
    with pytest.raises(ValueError, match="^modules: ") as err:
        parse_entry(text)
    assert message in str(err.value)


def test_entries_need_distinct_labels():
    with pytest.raises(ValueError, match="same label 'logmel'; give one a label=NAME"):
        parse_entries(["logmel", "logmel"])
    with pytest.raises(ValueError, match="same folder"):
        parse_entries(["logmel(label=a/b)", "logmel(label=a_b)"])
    with pytest.raises(ValueError, match="no module"):
        parse_entries([])
    assert [e.label for e in parse_entries(["logmel", "logmel(label=lm2)"])] == ["logmel", "lm2"]


def test_run_suite_refuses_per_module_settings(tmp_path):
    for bad in ({"model_options": {"n_mels": 16}}, {"embeddings_dir": "e"}, {"gird": "fast"}):
        with pytest.raises(ValueError, match="cannot be set for a whole suite"):
            run_suite(["logmel"], tmp_path, tmp_path, **bad)
    with pytest.raises(ValueError, match="grid must be a grid name"):
        run_suite(["logmel"], tmp_path, tmp_path, grid={"lr": [1e-3]})


def test_a_command_line_list_keeps_each_entry_whole():
    c = command_config(HearConfig, [
        "modules=[logmel,gura_cat(members=crepe_tiny+logmel;label=cat),crepe_tiny]",
        "tasks_dir=T"], optional=("module",))
    assert list(c.modules) == ["logmel", "gura_cat(members=crepe_tiny+logmel;label=cat)",
                               "crepe_tiny"]
    assert hear_is_suite(c)
    assert not hear_is_suite(OmegaConf.structured(HearConfig(module="m", tasks_dir="T")))


@pytest.mark.parametrize("args, message", [
    (["tasks_dir=T"], "missing required setting(s): module=... (or modules=[...] for a suite)"),
    (["module=dissect.hear.modules.logmel", "modules=[logmel]", "tasks_dir=T"],
     "module= and modules= exclude each other"),
    (["modules=[logmel]", "tasks_dir=T", "model_options.n_mels=16"],
     "give each module's options in its entry"),
    (["modules=[logmel,x(a=1,b=2)]", "tasks_dir=T"], "options look cut at a comma"),
])
def test_hear_command_refuses_bad_module_settings(args, message, capsys):
    assert main(["hear", *args]) == 2
    assert message in capsys.readouterr().err
