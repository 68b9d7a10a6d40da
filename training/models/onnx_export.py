"""Networks exported to ONNX and run by ONNX Runtime: the serving path for single windows, where
ORT runs the seed LSTM 2-3x faster than eager torch on one CPU thread (bench/training.py)."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings

import numpy as np
import onnxruntime as ort
import torch


class ExportMismatchError(RuntimeError):
    """ONNX Runtime disagreed with torch on the probe batch: the export is not used."""


def export(net: torch.nn.Module, probe: np.ndarray, atol: float = 1e-5) -> bytes:
    """The network as an ONNX graph with a dynamic batch axis, checked against torch on
    ``probe`` (batch >= 2, so the batch axis is not specialized away)."""
    net = net.eval()
    x = torch.from_numpy(np.ascontiguousarray(probe, dtype=np.float32))
    # the exporter prints its steps and warns about its own internals; the probe check below is
    # what tells whether the export is right
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            net,
            (x,),
            input_names=["x"],
            output_names=["y"],
            dynamic_shapes={"x": {0: torch.export.Dim("batch")}},
            dynamo=True,
            verbose=False,
        )
    graph = program.model_proto.SerializeToString()
    with torch.inference_mode():
        expected = net(x).numpy()
    got = session(graph, threads=1).run(None, {"x": x.numpy()})[0]
    error = float(np.max(np.abs(got - expected)))
    if not error <= atol * max(1.0, float(np.max(np.abs(expected)))):
        raise ExportMismatchError(f"ONNX Runtime differs from torch by {error:.2e} on the probe")
    return graph


def session(graph: bytes, threads: int):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # idle pool threads must not spin: they would starve whatever runs next on a small machine
    # (an ensemble's XGBoost member took 50 ms instead of 0.2 ms after a spinning ORT call)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
