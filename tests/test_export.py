"""
`gia-mic export`, for each architecture: torch.export and ONNX (run with onnxruntime) give the PyTorch logits, at any
batch size and length.
"""

import numpy as np
import pytest
import torch
from conftest import feature_config, feature_inputs, installed, model_class

from gia_mic.cli import main as cli
from modeling_gia_mic import ARCHITECTURES, GiaMicForEmotionRecognition


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


def test_a_model_with_encoders_inside_is_refused_with_what_to_do(tmp_path, capsys):
    from conftest import raw_config

    GiaMicForEmotionRecognition(raw_config(("text",))).save_pretrained(tmp_path / "raw")
    with pytest.raises(SystemExit):
        cli(["export", "--model", str(tmp_path / "raw"), "--output", str(tmp_path / "out")])
    assert "exports feature-mode models" in capsys.readouterr().err
