"""End to end on the real offline parts: synth probe set -> CREPE tiny -> captions -> rule-based
summaries -> DB closed-set concepts. CREPE's 360 output neurons are pitch bins, so their
closed-set labels can be checked exactly against the bins' notes."""

import csv
import json
import math
import re

import pytest

from dissect import artifacts
from dissect.cli import main
from dissect.models.crepe import bin_frequencies

NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]


def midi_of(note: str) -> int | None:
    m = re.fullmatch(r"([A-G]#?)(-?\d+)", note)
    return NAMES.index(m.group(1)) + 12 * (int(m.group(2)) + 1) if m else None


@pytest.mark.real
@pytest.mark.slow
def test_crepe_output_neurons_recover_their_pitch(tmp_path, capsys):
    run_dir = tmp_path / "run"
    rc = main(["run", f"run_dir={run_dir}", f"probe.synth.cache_dir={tmp_path / 'synth'}",
               "probe.synth.n_clips=160", "model.layers=[classifier]", "llm.client=rules",
               "record.progress=false", "concepts.keywords=true",
               "stages=[probe,record,caption,summarize,concepts,explain]"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    summaries = artifacts.read_jsonl(run_dir / "summaries.jsonl")
    concepts = artifacts.read_jsonl(run_dir / "concepts.jsonl")
    assert len(summaries) == len(concepts) == 360
    assert {s["llm"] for s in summaries} == {"rule-based (no LLM)"}
    # the synth notes span MIDI 36..96 (65..2093 Hz): score the bins in that range
    freqs = bin_frequencies()
    scored = hits = exact = 0
    for row in concepts:
        f = freqs[row["unit"]]
        if not 65.0 <= f <= 2093.0:
            continue
        truth = 69 + 12 * math.log2(f / 440.0)
        top = midi_of(row["closed"]["db"][0][0])
        scored += 1
        hits += top is not None and abs(top - truth) <= 1.5
        exact += top is not None and abs(top - truth) <= 0.5 + 1e-9
    rate, exact_rate = hits / scored, exact / scored
    print(f"pitch recovery: {rate:.2f} within a semitone, {exact_rate:.2f} nearest note "
          f"({scored} bins; chance about {3 / 61:.2f} / {1 / 61:.2f})")
    assert scored > 250
    assert rate >= 0.5 and exact_rate >= 0.3  # chance is ~0.05 / ~0.016
    with open(run_dir / "descriptions.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 360 and table[0].keys() >= {"layer", "unit", "description", "llm"}
    assert table[100]["top_concepts"].startswith("db:")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert [manifest["stages"][s]["status"] for s in
            ("probe", "record", "caption", "summarize", "concepts")] == ["done"] * 5


class _Server:
    """A tiny OpenAI-compatible chat server on 127.0.0.1 that answers with canned summaries."""

    def __init__(self):
        import http.server
        import threading

        self.auth: list[str] = []
        self.fail_next = 0  # refuse (HTTP 503) this many of the next requests
        self.lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.auth.append(self.headers.get("Authorization", ""))
                    refuse = server.fail_next > 0
                    server.fail_next -= refuse
                if refuse:
                    self.send_error(503, "model is loading")
                    return
                user = body["messages"][-1]["content"]
                text = ("These are loud bright tonal notes with a clear pitch."
                        if "Top clips:" in user else "These are quiet noisy sounds.")
                reply = {"id": "x", "object": "chat.completion", "created": 0,
                         "model": body["model"],
                         "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": text}}],
                         "usage": {"prompt_tokens": 1, "completion_tokens": 1,
                                   "total_tokens": 2}}
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.mark.real
def test_llm_cap_names_the_writer_and_keeps_the_key_out_of_files(tmp_path, capsys, monkeypatch):
    secret = "sk-test-do-not-write-7f3a9c"
    monkeypatch.setenv("DISSECT_TEST_KEY", secret)
    srv = _Server()
    run_dir = tmp_path / "run"
    rc = main(["run", f"run_dir={run_dir}", f"probe.synth.cache_dir={tmp_path / 'synth'}",
               "probe.synth.n_clips=40", "model.layers=[conv6,classifier]", "llm.client=openai",
               f"llm.base_url={srv.url}", "llm.model=test-model",
               "llm.api_key_env=DISSECT_TEST_KEY", f"llm.cache_dir={tmp_path / 'llmcache'}",
               "summarize.max_llm_neurons=6", "record.progress=false", "explain.method=and"])
    err = capsys.readouterr().err
    srv.httpd.shutdown()
    assert rc == 0, err
    rows = artifacts.read_jsonl(run_dir / "summaries.jsonl")
    by_llm = {}
    for r in rows:
        by_llm.setdefault(r["llm"], []).append((r["layer"], r["unit"]))
    name = next(n for n in by_llm if n.startswith("openai-http:test-model@127.0.0.1"))
    assert len(by_llm[name]) == 6 and len(by_llm["rule-based (no LLM)"]) == 64 + 360 - 6
    assert {layer for layer, _ in by_llm[name]} == {"conv6", "classifier"}  # half to the head
    llm_row = next(r for r in rows if r["llm"] == name)
    assert llm_row["high"] == "These are loud bright tonal notes with a clear pitch."
    assert llm_row["seed"] == 0 and llm_row["temperature"] == 0.0
    assert srv.auth and all(a == f"Bearer {secret}" for a in srv.auth)
    for p in list(run_dir.rglob("*")) + list((tmp_path / "llmcache").rglob("*")):
        if p.is_file():
            assert secret.encode() not in p.read_bytes(), p
    assert secret not in err


def test_failed_llm_calls_are_counted_marked_and_retried(tmp_path, capsys):
    """A server that refuses: the stage fails (exit 1) above llm.max_failed_fraction and writes
    nothing; below it the failed neuron is marked and the next run retries only its call."""
    srv = _Server()
    run_dir = tmp_path / "run"
    base = ["run", f"run_dir={run_dir}", f"probe.synth.cache_dir={tmp_path / 'synth'}",
            "probe.synth.n_clips=40", "model.layers=[classifier]", "llm.client=openai",
            f"llm.base_url={srv.url}", "llm.model=m", f"llm.cache_dir={tmp_path / 'llm'}",
            "llm.max_retries=0", "summarize.max_llm_neurons=10", "record.progress=false",
            "stages=[probe,record,caption,summarize]",
            # one request at a time: which request the server refuses is then fixed. With 4 in
            # flight it may be a chat another neuron shares, whose answer the cache then holds.
            "llm.concurrency=1"]
    srv.fail_next = 10 ** 6  # down
    # under explain.method=evidence (the default) AND's summaries are rule-based: no call
    other = [f"run_dir={tmp_path / 'evidence'}" if a.startswith("run_dir=") else a for a in base]
    assert main(other) == 0 and srv.auth == []
    rows = artifacts.read_jsonl(tmp_path / "evidence" / "summaries.jsonl")
    assert {r["llm"] for r in rows} == {"rule-based (no LLM)"}
    base.append("explain.method=and")  # AND's method: the LLM writes the summaries
    assert main(base) == 1
    err = capsys.readouterr().err
    assert "[summarize] 10 of 10 LLM neurons failed at openai-http:m@127.0.0.1" in err
    assert "HTTP 503" in err and "llm.max_failed_fraction=0.1" in err
    entry = json.loads((run_dir / "manifest.json").read_text())["stages"]["summarize"]
    assert entry["status"] == "failed" and not (run_dir / "summaries.jsonl").exists()

    srv.fail_next, n0 = 1, len(srv.auth)  # back, but the first request is refused
    assert main(base) == 0
    err = capsys.readouterr().err
    assert len(srv.auth) - n0 == 20  # 10 neurons x (top, bottom)
    rows = artifacts.read_jsonl(run_dir / "summaries.jsonl")
    failed = [r for r in rows if r["failed"]]
    assert len(failed) == 1 and failed[0]["llm"] == "rule-based (no LLM)"
    assert failed[0]["llm_failed"] == "openai-http:m@127.0.0.1:" + srv.url.split(":")[2][:-3]
    assert any("LLM call failed" in e and "HTTP 503" in e for e in failed[0]["errors"])
    assert sum(r["llm"].startswith("openai-http:") for r in rows) == 9
    assert "1 of 10 LLM neurons failed" in err and "1 failed item(s)" in err
    entry = json.loads((run_dir / "manifest.json").read_text())["stages"]["summarize"]
    assert entry["status"] == "done" and entry["failed_items"] == 1

    n1 = len(srv.auth)  # the same command again: only the failed call is repeated
    assert main(base) == 0
    err = capsys.readouterr().err
    assert "[summarize] 1 item(s) failed last time: running it again" in err
    assert len(srv.auth) - n1 == 1
    rows = artifacts.read_jsonl(run_dir / "summaries.jsonl")
    assert not any(r["failed"] for r in rows)
    assert sum(r["llm"].startswith("openai-http:") for r in rows) == 10
    entry = json.loads((run_dir / "manifest.json").read_text())["stages"]["summarize"]
    assert "failed_items" not in entry
    assert main(base) == 0 and "[summarize] up to date, skipped" in capsys.readouterr().err
    srv.httpd.shutdown()
