"""
`gia-mic export`: a saved model of any of the three architectures as an ONNX file (for onnxruntime) or a
`torch.export` program, with dynamic batch size and sequence lengths.

    gia-mic export --model runs/iemocap-head --output deploy/ --format onnx           # deploy/model.onnx
    gia-mic export --model runs/iemocap-head --output deploy/ --format torch-export   # deploy/model.pt2

The graph takes the model's feature inputs in `config.modalities` order (`text_features`, `text_feature_mask`, ...)
and returns `logits` and `gate_values`. The input checks of eager mode (NaN, mask contents, empty samples) are not
part of the graph: give it what the processor or `extract-features` gives the model.
"""

from pathlib import Path

import torch
from torch import nn

from modeling_gia_mic import MultimodalForEmotionRecognition

from .folders import write_folder
from .training import ModelArguments, architecture_class


FORMATS = {"onnx": "model.onnx", "torch-export": "model.pt2"}


class ExportedModel(nn.Module):
    """The model as a function of positional tensors (ONNX has no keyword or optional inputs) to its main outputs."""

    def __init__(self, model: MultimodalForEmotionRecognition, input_names: list[str]):
        super().__init__()
        self.model, self.input_names = model, input_names

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        output = self.model(**dict(zip(self.input_names, tensors)))
        return output.logits, output.gate_values


def example_inputs(
    model: MultimodalForEmotionRecognition, batch_size: int = 2, length: int = 8
) -> dict[str, torch.Tensor]:
    """Random feature inputs of the model's modalities, to trace it (any batch size and length work afterwards)."""
    config = model.config
    inputs = {}
    for modality in config.modalities:
        if config.encoder_config(modality) is not None:
            raise ValueError(
                f"{modality} is encoded by a {config.encoder_config(modality).model_type} tower inside this model; "
                "`gia-mic export` exports feature-mode models: cache the encoder features with `gia-mic "
                "extract-features`, train the head on them, and export the head."
            )
        inputs[f"{modality}_features"] = torch.randn(batch_size, length, config.feature_size(modality))
        inputs[f"{modality}_feature_mask"] = torch.ones(batch_size, length, dtype=torch.long)
    return inputs


def export_model(model_dir: str | Path, output: str | Path, kind: str, overwrite: bool = False) -> Path:
    """Export `model_dir` (a saved feature-mode model) into the folder `output`; returns the file written."""
    if kind not in FORMATS:
        raise ValueError(f"Unknown export format {kind!r}; choose one of {', '.join(FORMATS)}.")
    model = architecture_class(ModelArguments(model=str(model_dir))).from_pretrained(model_dir).eval()
    inputs = example_inputs(model)
    names = list(inputs)
    batch = torch.export.Dim("batch", min=1, max=4096)
    lengths = {m: torch.export.Dim(f"{m}_length", min=1, max=65536) for m in model.config.modalities}
    shapes = tuple({0: batch, 1: lengths[name.split("_")[0]]} for name in names)
    wrapped = ExportedModel(model, names)

    def write(folder: Path) -> None:
        target = folder / FORMATS[kind]
        if kind == "onnx":
            torch.onnx.export(
                wrapped,
                tuple(inputs.values()),
                str(target),
                dynamo=True,
                dynamic_shapes=(shapes,),
                input_names=names,
                output_names=["logits", "gate_values"],
            )
        else:
            program = torch.export.export(wrapped, tuple(inputs.values()), dynamic_shapes=(shapes,), strict=False)
            torch.export.save(program, str(target))
        model.config.save_pretrained(folder)  # labels and modalities travel with the graph

    with torch.no_grad():
        write_folder(output, write, overwrite=overwrite, written_by=f"gia-mic export --format {kind}")
    return Path(output) / FORMATS[kind]
