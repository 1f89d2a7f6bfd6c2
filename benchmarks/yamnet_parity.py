"""YAMNet parity: the converted torch module (dissect.models.onnx_net) vs onnxruntime on the
same int8 input patches, over the clips of a folder probe set (default: data/free_sounds).

    .venv/bin/python benchmarks/yamnet_parity.py [--root data/free_sounds] [--clips 200]

Reports, against onnxruntime with graph optimisations off (the QDQ operators as written) and on
(its fused integer kernels): the share of identical class scores, the max abs difference in
logits (and in output quantisation steps), and how often the best class agrees (up to ties).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, numpy_helper

from dissect.audio import load_audio
from dissect.models.registry import get_adapter
from dissect.models.yamnet_frontend import log_mel_patches


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default="data/free_sounds")
    ap.add_argument("--clips", type=int, default=200)
    args = ap.parse_args()
    rows = list(csv.DictReader(open(Path(args.root) / "metadata.csv", encoding="utf-8")))
    rows = rows[:: max(1, len(rows) // args.clips)][: args.clips]
    ad = get_adapter("yamnet")
    net = ad.load()
    path = ad.onnx_path()
    g = onnx.load(str(path), load_external_data=False).graph
    init = {i.name: numpy_helper.to_array(i) for i in g.initializer
            if i.data_location != TensorProto.EXTERNAL}
    dq = next(n for n in g.node if n.input[0] == g.input[0].name)
    oq = next(n for n in g.node if n.output[0] == g.output[0].name)
    (s_in, z_in), (s_out, z_out) = [(float(init[n.input[1]]), int(init[n.input[2]]))
                                    for n in (dq, oq)]
    patches = np.concatenate([log_mel_patches(load_audio(Path(args.root) / r["filename"],
                                                         16000).waveform) for r in rows])
    q = np.clip(np.round(patches / np.float32(s_in)) + z_in, 0, 255).astype(np.uint8)
    with torch.no_grad():
        got = net(torch.from_numpy(patches)).numpy().astype(np.float64)
    out = {"clips": len(rows), "patches": int(len(q)), "output_step": s_out}
    for name, level in (("ort_operators_as_written", ort.GraphOptimizationLevel.ORT_DISABLE_ALL),
                        ("ort_fused_int8", ort.GraphOptimizationLevel.ORT_ENABLE_ALL)):
        so = ort.SessionOptions()
        so.log_severity_level = 3
        so.graph_optimization_level = level
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        ref = np.concatenate([sess.run(None, {g.input[0].name: q[i:i + 1]})[0]
                              for i in range(len(q))]).astype(np.float64)
        ref = s_out * (ref - z_out)
        d = np.abs(got - ref)
        rows_ = np.arange(len(got))
        out[name] = {"identical_scores": round(float(np.mean(d < 1e-4)), 4),
                     "max_abs_logit": round(float(d.max()), 4),
                     "max_steps": round(float(d.max() / s_out), 2),
                     "mean_abs_logit": round(float(d.mean()), 5),
                     "top1_equal": round(float(np.mean(got.argmax(1) == ref.argmax(1))), 4),
                     "top1_within_a_tie": round(float(np.mean(
                         got[rows_, ref.argmax(1)] >= got.max(1) - s_out - 1e-4)), 4)}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
