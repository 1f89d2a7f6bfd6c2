"""Benchmark the LLM stage: HTTP calls per second vs concurrency, and the cost per neuron.

Usage:
    python benchmarks/bench_llm.py rate --latency-ms 50 --calls 96 --levels 1 2 4 8 16
    python benchmarks/bench_llm.py describe --neurons 64 --smollm-neurons 4
    python benchmarks/bench_llm.py batch --neurons 8 --batch-sizes 1 4 8 --repeats 2 [--threads 1]

*rate* and *describe* start a local OpenAI-compatible test server in a subprocess (``serve``
mode, on 127.0.0.1, a free port) that answers every ``POST /v1/chat/completions`` after a fixed
simulated latency (``--latency-ms``) with a short summary-like text. Running it in its own process
keeps the server's threads from competing with the client for this interpreter's GIL.

*rate*: for each concurrency level, ``--calls`` distinct chats go through
:class:`~dissect.description.llm.http.OpenAIHTTPClient` ``generate`` (a) with no cache, (b) through
:class:`~dissect.description.llm.cache.CachedClient` into an empty cache directory (all misses:
server + cache writes) and (c) the same chats again (all hits: served from disk). Calls per
second are ``calls / wall time``; ``ideal`` is ``concurrency / latency``.

*describe*: the cost per neuron of :func:`dissect.description.summarize.summarize_neurons` (two
chats per neuron: top and bottom clips, then MiniLM calibration) for local SmolLM2-135M-Instruct
(packaged GGUF, a handful of neurons) and the HTTP client against the local server; and of the
rule-based summariser as the describe stage runs it (``describe_contrast`` both ways, no
calibration). Model loads are timed separately; no LLM cache is used.

*batch*: local SmolLM2-135M-Instruct (packaged GGUF, loaded once) on the ``2 * --neurons`` summary
chats :func:`~dissect.description.summarize.summarize_neurons` sends for ``--neurons`` neurons
(5 top and 5 bottom captions each), through ``TransformersClient.generate`` at each
``--batch-sizes`` (1 = one chat at a time), no cache, ``--threads`` torch threads. The sizes
are interleaved within each of ``--repeats`` rounds, so a change in the machine's load hits them
alike. Per size: wall and process CPU seconds of every round; ``calls_per_s_best`` from the
fastest round (the one least disturbed by other jobs); ``speedup_best_wall`` = best wall time
of the first size / best wall time of this size; ``speedup_cpu`` = the same for median CPU
seconds (a measure of work that a busy machine disturbs little when ``--threads 1``: no thread
waits for a descheduled sibling); ``same_text``: every completion equals the first size's
(greedy decoding).

Each mode prints one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SUMMARIES = (
    "These clips are loud tonal sounds with a steady pitch. They have a narrow bandwidth.",
    "Bright noisy bursts with fast onsets. Most of them are short and unpitched.",
    "Low sustained tones in the bass register. The sounds are warm and quiet.",
    "Rhythmic clicks at a steady rate. The clips are broadband and percussive.",
    "High whistling sounds that glide upward. They are bright and tonal.",
)


# --------------------------------------------------------------------------- the test server


def serve(latency_s: float) -> None:
    """Run the test server until stdin closes; print its port on the first stdout line."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real servers
        # One send per response, no Nagle: else headers and body go out in two segments and
        # delayed ACKs add ~40 ms to every call.
        wbufsize = 1 << 16
        disable_nagle_algorithm = True

        def do_POST(self):  # noqa: N802 - http.server's naming
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            time.sleep(latency_s)
            digest = hashlib.sha256(json.dumps(body["messages"]).encode()).digest()
            text = SUMMARIES[digest[0] % len(SUMMARIES)]
            out = json.dumps({
                "id": "chatcmpl-bench", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model", "bench"),
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
            }).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args):
            pass

    ThreadingHTTPServer.request_queue_size = 256
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    import threading

    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()  # the parent closes stdin to stop us
    server.shutdown()


class TestServer:
    """The ``serve`` mode in a subprocess; ``base_url`` once started."""

    def __init__(self, latency_ms: float):
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "serve", "--latency-ms", str(latency_ms)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        port = int(self.proc.stdout.readline())
        self.base_url = f"http://127.0.0.1:{port}/v1"

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


# --------------------------------------------------------------------------- rate


def rate(args) -> dict:
    from dissect.description.llm import CachedClient, GenerationParams, OpenAIHTTPClient

    params = GenerationParams(max_tokens=48)
    server = TestServer(args.latency_ms)
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for c in args.levels:
                client = OpenAIHTTPClient(server.base_url, "bench-model", concurrency=c,
                                          max_retries=0, timeout_s=30)
                client.generate([[{"role": "user", "content": f"warm-up {i}"}]
                                 for i in range(c)], params)
                run = uuid.uuid4().hex
                chats = [[{"role": "user", "content": f"{run} call {i}"}]
                         for i in range(args.calls)]
                t0 = time.perf_counter()
                out = client.generate(chats, params)
                t_plain = time.perf_counter() - t0
                assert all(o.ok for o in out), out[0].error
                cached = CachedClient(client, os.path.join(tmp, f"c{c}"))
                chats2 = [[{"role": "user", "content": f"{run} cached call {i}"}]
                          for i in range(args.calls)]
                t0 = time.perf_counter()
                cached.generate(chats2, params)
                t_miss = time.perf_counter() - t0
                t0 = time.perf_counter()
                hits = cached.generate(chats2, params)
                t_hit = time.perf_counter() - t0
                assert all(h.cached for h in hits) and cached.hits == args.calls
                row = {
                    "concurrency": c, "calls": args.calls,
                    "calls_per_s": round(args.calls / t_plain, 1),
                    "ideal_calls_per_s": round(c / (args.latency_ms / 1000), 1),
                    "efficiency": round(args.calls / t_plain / (c * 1000 / args.latency_ms), 3),
                    "cache_miss_calls_per_s": round(args.calls / t_miss, 1),
                    "cache_hit_calls_per_s": round(args.calls / t_hit, 1),
                    "cache_hit_ms_per_call": round(1000 * t_hit / args.calls, 3),
                }
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
    finally:
        server.close()
    res = {"latency_ms": args.latency_ms, "cpu_count": os.cpu_count(),
           "load_avg_1m": round(os.getloadavg()[0], 2), "levels": rows,
           "speedup_16_vs_1": round(rows[-1]["calls_per_s"] / rows[0]["calls_per_s"], 2)}
    print(json.dumps(res))
    return res


# --------------------------------------------------------------------------- describe

_PITCHES = ("C3 (131 Hz, low", "A3 (220 Hz, mid", "A4 (440 Hz, high", "E5 (659 Hz, high")


def fake_captions(n: int) -> dict[str, str]:
    """Acoustic-captioner-like captions for ``n`` clips (deterministic)."""
    caps = {}
    for i in range(n):
        loud = ("loud (-12 dBFS)", "quiet (-35 dBFS)", "moderate (-22 dBFS)")[i % 3]
        bright = ("bright", "warm", "dark")[i % 5 % 3]
        if i % 4 == 3:
            caps[f"clip{i:04d}"] = (f"A {loud}, {bright}, noisy, rhythmic (6.0 onsets/s), "
                                    f"unpitched sound; wide bandwidth; 1.5 s. Label: clicks.")
        else:
            caps[f"clip{i:04d}"] = (f"A {loud}, {bright}, tonal, steady sound with a pitch "
                                    f"around {_PITCHES[i % 4]} register); narrow bandwidth; "
                                    f"1.{i % 10} s. Label: instrument note.")
    return caps


def fake_neurons(n: int, n_clips: int, k: int = 5) -> list[dict]:
    out = []
    for u in range(n):
        top = [f"clip{(u * 7 + j) % n_clips:04d}" for j in range(k)]
        bottom = [f"clip{(u * 13 + 50 + j) % n_clips:04d}" for j in range(k)]
        out.append({"layer": "conv3", "unit": u, "top": [{"clip": c} for c in top],
                    "bottom": [{"clip": c} for c in bottom]})
    return out


class Timed:
    """Wraps a client; accumulates the time spent in ``generate``."""

    def __init__(self, client):
        self.client, self.name, self.seconds, self.calls = client, client.name, 0.0, 0

    def generate(self, chats, params):
        t0 = time.perf_counter()
        out = self.client.generate(chats, params)
        self.seconds += time.perf_counter() - t0
        self.calls += len(chats)
        return out


def measure_rules(n: int, captions: dict[str, str]) -> dict:
    """The rule-based summariser as the describe stage runs it: ``describe_contrast`` of the
    top vs bottom captions and back (no LLM, no calibration: contrastive by construction)."""
    from dissect.description.llm import RuleBasedClient, describe_contrast

    neurons = fake_neurons(n, len(captions))
    t0 = time.perf_counter()
    out = []
    for nrn in neurons:
        top = [captions[e["clip"]] for e in nrn["top"]]
        bottom = [captions[e["clip"]] for e in nrn["bottom"]]
        out.append((describe_contrast(top, bottom), describe_contrast(bottom, top)))
    total = time.perf_counter() - t0
    row = {"client": "rules", "llm": RuleBasedClient.name, "neurons": n, "calls": 2 * n,
           "load_s": None, "s_per_neuron": round(total / n, 5),
           "generate_s_per_neuron": round(total / n, 5), "calibration_s_per_neuron": 0.0,
           "neurons_per_s": round(n / total, 1), "neurons_with_errors": 0,
           "example": out[0][0]}
    print(json.dumps(row), file=sys.stderr)
    return row


def describe(args) -> dict:
    from dissect.description.embed import default_embedder
    from dissect.description.llm import GenerationParams, OpenAIHTTPClient, TransformersClient
    from dissect.description.summarize import summarize_neurons

    captions = fake_captions(200)
    params = GenerationParams(max_tokens=args.max_tokens)
    t0 = time.perf_counter()
    embedder = default_embedder()
    embedder.encode(["warm-up"])
    embedder_load_s = time.perf_counter() - t0

    def measure(client, n: int, label: str, load_s: float | None = None) -> dict:
        neurons = fake_neurons(n, len(captions))
        timed = Timed(client)
        t0 = time.perf_counter()
        out = summarize_neurons(neurons, captions, timed, params, k=5, embedder=embedder)
        total = time.perf_counter() - t0
        errors = sum(bool(s.errors) for s in out)
        row = {"client": label, "llm": client.name, "neurons": n, "calls": timed.calls,
               "load_s": None if load_s is None else round(load_s, 2),
               "s_per_neuron": round(total / n, 4),
               "generate_s_per_neuron": round(timed.seconds / n, 4),
               "calibration_s_per_neuron": round((total - timed.seconds) / n, 4),
               "neurons_per_s": round(n / total, 2), "neurons_with_errors": errors,
               "example": out[0].calibrated}
        print(json.dumps(row), file=sys.stderr)
        return row

    rows = [measure_rules(args.neurons, captions)]
    server = TestServer(args.latency_ms)
    try:
        for c in args.http_concurrency:
            http = OpenAIHTTPClient(server.base_url, "bench-model", concurrency=c,
                                    max_retries=0)
            rows.append(measure(http, args.neurons, f"openai-http (c={c}, "
                                                     f"{args.latency_ms:g} ms server)"))
    finally:
        server.close()
    if args.smollm_neurons > 0:
        local = TransformersClient()
        t0 = time.perf_counter()
        local.generate([[{"role": "user", "content": "Top clips:\nA tone.\n\nSay hi."}]],
                       GenerationParams(max_tokens=1))
        rows.append(measure(local, args.smollm_neurons, "smollm2 (local, CPU)",
                            time.perf_counter() - t0))
    rules = rows[0]["s_per_neuron"]
    for r in rows:
        r["cost_vs_rules"] = round(r["s_per_neuron"] / rules, 1)
    res = {"cpu_count": os.cpu_count(), "torch_threads": _threads(),
           "load_avg_1m": round(os.getloadavg()[0], 2), "max_tokens": args.max_tokens,
           "embedder_load_s": round(embedder_load_s, 2), "clients": rows}
    print(json.dumps(res))
    return res


def batch(args) -> dict:
    import statistics

    import torch

    from dissect.description.llm import GenerationParams, TransformersClient
    from dissect.description.summarize import summary_prompt

    if args.threads:
        torch.set_num_threads(args.threads)
    captions = fake_captions(200)
    chats = [summary_prompt([captions[e["clip"]] for e in n[side]], side)
             for n in fake_neurons(args.neurons, len(captions)) for side in ("top", "bottom")]
    params = GenerationParams(max_tokens=args.max_tokens)
    load_before = round(os.getloadavg()[0], 2)
    client = TransformersClient()
    t0 = time.perf_counter()
    client.generate(chats[:1], GenerationParams(max_tokens=1))
    load_s = time.perf_counter() - t0
    runs: dict[int, list[dict]] = {b: [] for b in args.batch_sizes}
    for r in range(args.repeats):
        for b in args.batch_sizes:
            client.batch_size = b
            cpu0 = time.process_time()
            out = client.generate(chats, params)
            cpu = time.process_time() - cpu0
            assert all(c.ok for c in out), next(c.error for c in out if not c.ok)
            run = {"wall_s": client.last_generate_seconds, "cpu_s": cpu,
                   "texts": [c.text for c in out], "load_avg_1m": round(os.getloadavg()[0], 2)}
            runs[b].append(run)
            print(json.dumps({"round": r, "batch_size": b, "wall_s": round(run["wall_s"], 2),
                              "cpu_s": round(cpu, 2), "load_avg_1m": run["load_avg_1m"]}),
                  file=sys.stderr)
    prompt_tokens = [n for part in client.last_batches for n in part]
    base = runs[args.batch_sizes[0]]
    rows = []
    for b in args.batch_sizes:
        wall = [x["wall_s"] for x in runs[b]]
        cpu = [x["cpu_s"] for x in runs[b]]
        rows.append({
            "batch_size": b, "wall_s": [round(x, 2) for x in wall],
            "cpu_s": [round(x, 2) for x in cpu],
            "calls_per_s_best": round(len(chats) / min(wall), 3),
            "calls_per_cpu_s": round(len(chats) / statistics.median(cpu), 3),
            "speedup_best_wall": round(min(x["wall_s"] for x in base) / min(wall), 2),
            "speedup_wall_per_round": [round(x["wall_s"] / w, 2)
                                       for x, w in zip(base, wall, strict=True)],
            "speedup_cpu": round(statistics.median(x["cpu_s"] for x in base)
                                 / statistics.median(cpu), 2),
            "same_text": all(x["texts"] == y["texts"] for x, y in zip(base, runs[b], strict=True)),
        })
    res = {"llm": client.name, "cpu_count": os.cpu_count(), "torch_threads": _threads(),
           "load_avg_1m_before": load_before, "load_avg_1m_after": round(os.getloadavg()[0], 2),
           "load_s": round(load_s, 2), "chats": len(chats),
           "prompt_tokens": [min(prompt_tokens), max(prompt_tokens)],
           "max_tokens": args.max_tokens, "repeats": args.repeats, "batch_sizes": rows,
           "example": base[0]["texts"][0]}
    print(json.dumps(res))
    return res


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("mode", choices=["rate", "describe", "batch", "serve"])
    p.add_argument("--latency-ms", type=float, default=50.0)
    p.add_argument("--calls", type=int, default=96)
    p.add_argument("--levels", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    p.add_argument("--neurons", type=int, default=64)
    p.add_argument("--http-concurrency", type=int, nargs="+", default=[4, 16])
    p.add_argument("--smollm-neurons", type=int, default=4)
    p.add_argument("--max-tokens", type=int, default=48)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 8])
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=0, help="batch: torch threads (0: torch's)")
    args = p.parse_args()
    if args.mode == "serve":
        serve(args.latency_ms / 1000)
    elif args.mode == "rate":
        rate(args)
    elif args.mode == "batch":
        batch(args)
    else:
        describe(args)


if __name__ == "__main__":
    main()
