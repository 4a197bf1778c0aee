"""
`gia-mic export`, for each architecture: torch.export and ONNX (run with onnxruntime) give the PyTorch logits, at any
batch size and length.
"""

import json

import numpy as np
import pytest
import torch
from conftest import TINY_WHISPER, feature_config, feature_inputs, installed, model_class, raw_config, raw_inputs
from transformers import AutoConfig

from gia_mic.cli import main as cli
from gia_mic.export import pad_to_graph
from modeling_gia_mic import ARCHITECTURES


def uneven_inputs(modalities, batch_size: int) -> dict[str, torch.Tensor]:
    """Another batch size and other lengths than the export traced, with padding that differs per sample."""
    inputs = feature_inputs(modalities, batch_size=batch_size)
    for name, value in inputs.items():
        if name.endswith("_mask"):
            for row in range(batch_size):
                value[row, 1 + row % (value.shape[1] - 1) :] = 0
    return inputs


@pytest.fixture(scope="module", params=list(ARCHITECTURES))
def saved_model(request, tmp_path_factory):
    torch.manual_seed(0)
    config = feature_config(("text", "audio", "vision"), architecture=request.param, initializer_range=0.2)
    model = model_class(request.param)(config).eval()
    folder = tmp_path_factory.mktemp("model")
    model.save_pretrained(folder)
    return model, folder


@pytest.mark.parametrize("batch_size", [1, 5])
def test_torch_export_program_gives_the_same_logits(saved_model, tmp_path, batch_size):
    model, folder = saved_model
    cli(["export", "--model", str(folder), "--output", str(tmp_path / "out"), "--format", "torch-export"])
    program = torch.export.load(str(tmp_path / "out" / "model.pt2"))
    inputs = uneven_inputs(model.config.modalities, batch_size)
    with torch.no_grad():
        logits, gates = program.module()(*inputs.values())
        expected = model(**inputs)
    torch.testing.assert_close(logits, expected.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(gates, expected.gate_values, atol=1e-5, rtol=1e-5)


def test_onnx_file_runs_in_onnxruntime_with_the_same_logits(saved_model, tmp_path):
    onnxruntime = installed("onnxruntime", "the dev extra (`make test`)")
    model, folder = saved_model
    cli(["export", "--model", str(folder), "--output", str(tmp_path / "out"), "--format", "onnx"])
    session = onnxruntime.InferenceSession(str(tmp_path / "out" / "model.onnx"))
    assert [i.name for i in session.get_inputs()] == list(feature_inputs(model.config.modalities))
    for batch_size in (1, 7):
        inputs = uneven_inputs(model.config.modalities, batch_size)
        logits, gates = session.run(["logits", "gate_values"], {k: v.numpy() for k, v in inputs.items()})
        with torch.no_grad():
            expected = model(**inputs)
        np.testing.assert_allclose(logits, expected.logits.numpy(), atol=1e-4)
        np.testing.assert_allclose(gates, expected.gate_values.numpy(), atol=1e-4)
    assert (tmp_path / "out" / "config.json").is_file()


RAW_LENGTHS = ["--text-tokens", "16", "--audio-seconds", "0.3", "--video-frames", "4"]


def padded_raw_batch(config, batch_size: int) -> dict[str, torch.Tensor]:
    """Processor-like inputs shorter than the graph's lengths, each sample with its own real length."""
    inputs = raw_inputs(config.modalities, batch_size=batch_size)
    if config.audio_config.model_type == "whisper":
        inputs.pop("input_values")
        inputs["input_features"] = torch.randn(batch_size, config.audio_config.num_mel_bins, 21)
        inputs["audio_attention_mask"] = torch.ones(batch_size, 21, dtype=torch.long)
    for row in range(batch_size):
        for mask in ("attention_mask", "audio_attention_mask", "frame_mask"):
            inputs[mask][row, max(2, inputs[mask].shape[1] - 3 * row) :] = 0
    if "input_features" in inputs:
        inputs["input_features"] *= inputs["audio_attention_mask"][:, None, :]
    return inputs


@pytest.mark.parametrize(
    ("architecture", "audio"),
    [(a, "wav2vec2") for a in ARCHITECTURES] + [("gia_mic", "whisper"), ("gia_mic", "wav2vec2-group-norm")],
)
def test_a_model_with_its_encoders_exports_with_fixed_lengths_and_gives_the_same_logits(architecture, audio, tmp_path):
    """The full model (BERT, a speech tower, ViT inside) as one ONNX graph; inputs padded to its lengths, any batch."""
    onnxruntime = installed("onnxruntime", "the dev extra (`make test`)")
    config = raw_config(architecture=architecture, initializer_range=0.2)
    if audio == "whisper":
        config.audio_config = AutoConfig.for_model(**TINY_WHISPER)
    if audio == "wav2vec2-group-norm":  # wav2vec2-base, HuBERT-base: statistics over each clip's real length
        config.audio_config.feat_extract_norm, config.audio_config.do_stable_layer_norm = "group", False
    model = model_class(architecture)(config).eval()
    model.save_pretrained(tmp_path / "model")
    cli(["export", "--model", str(tmp_path / "model"), "--output", str(tmp_path / "out"), *RAW_LENGTHS])
    shapes = json.loads((tmp_path / "out" / "inputs.json").read_text())
    session = onnxruntime.InferenceSession(str(tmp_path / "out" / "model.onnx"))
    for batch_size in (1, 3):
        inputs = padded_raw_batch(model.config, batch_size)
        logits, gates = session.run(["logits", "gate_values"], pad_to_graph(inputs, shapes))
        with torch.no_grad():
            expected = model(**inputs)
        np.testing.assert_allclose(logits, expected.logits.numpy(), atol=1e-4)
        np.testing.assert_allclose(gates, expected.gate_values.numpy(), atol=1e-4)
