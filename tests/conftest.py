"""Test-wide settings: never touch the network (tests build tiny models or use packaged ones),
and keep every cache (synth renders, LLM responses) in a per-session temporary directory unless
``DISSECT_CACHE`` is set, so a test run never reads or fills ``~/.cache/dissect``."""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory):
    if "DISSECT_CACHE" in os.environ:
        yield os.environ["DISSECT_CACHE"]
        return
    path = str(tmp_path_factory.mktemp("dissect-cache"))
    os.environ["DISSECT_CACHE"] = path
    try:
        yield path
    finally:
        os.environ.pop("DISSECT_CACHE", None)
