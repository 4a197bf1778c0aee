"""
`gia-mic export`: a saved model of any of the three architectures as an ONNX file (for onnxruntime) or a
`torch.export` program, with dynamic batch size and sequence lengths.

    gia-mic export --model runs/iemocap-head --output deploy/ --format onnx           # deploy/model.onnx
    gia-mic export --model runs/iemocap-head --output deploy/ --format torch-export   # deploy/model.pt2

The graph takes the model's inputs in `config.modalities` order and returns `logits` and `gate_values`. A modality
on cached features takes `*_features` and `*_feature_mask` of any length; a modality with its encoder inside takes
what the processor gives (`input_ids`, `attention_mask`, `input_features` or `input_values`, `audio_attention_mask`,
`pixel_values`, `frame_mask`), padded to the fixed lengths of `RawLengths` (64 tokens, 30 s, 8 frames by default; a
shorter input is masked). The batch size is free. `inputs.json` beside the graph lists each input's shape. The input
checks of eager mode (NaN, mask contents, empty samples) are not part of the graph.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from modeling_gia_mic import MultimodalForEmotionRecognition

from .folders import claim_output, write_folder
from .training import ModelArguments, architecture_class, load_saved_model


COMMAND = "gia-mic export"
FORMATS = {"onnx": "model.onnx", "torch-export": "model.pt2"}


class ExportedModel(nn.Module):
    """The model as a function of positional tensors (ONNX has no keyword or optional inputs) to its main outputs."""

    def __init__(self, model: MultimodalForEmotionRecognition, input_names: list[str]):
        super().__init__()
        self.model, self.input_names = model, input_names

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        output = self.model(**dict(zip(self.input_names, tensors)))
        return output.logits, output.gate_values


Example = tuple[torch.Tensor, dict[int, torch.export.Dim]]  # a traced input and its dynamic axes


@dataclass(frozen=True)
class RawLengths:
    """
    The fixed input lengths of a graph with encoders inside (its batch size stays dynamic): give it the processor's
    outputs padded to these with `pad_to_graph` (their masks mark the padding, as in eager mode).
    """

    text_tokens: int = 64
    audio_seconds: float = 30.0
    video_frames: int = 8

    def __post_init__(self):
        for name, value, most in (("text-tokens", self.text_tokens, 65536), ("video-frames", self.video_frames, 256)):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
                raise ValueError(f"--{name} must be a whole number from 1 to {most}; got {value!r}.")
        if not (isinstance(self.audio_seconds, int | float) and 0.1 <= self.audio_seconds <= 3600):
            raise ValueError(f"--audio-seconds must be from 0.1 to 3600 seconds; got {self.audio_seconds!r}.")


def example_inputs(
    model: MultimodalForEmotionRecognition, batch_size: int = 2, lengths: RawLengths = RawLengths()
) -> dict[str, Example]:
    """
    Random inputs of the model's modalities, to trace it, each with its dynamic axes: the batch size always; the
    length too for a modality on cached features. A modality with its encoder inside has the fixed length of
    `lengths` (the encoders' own shape logic would otherwise tie a graph to one length).
    """
    batch = torch.export.Dim("batch", min=1, max=4096)
    inputs: dict[str, Example] = {}
    for modality in model.config.modalities:
        encoder = model.config.encoder_config(modality)
        if encoder is None:
            length = torch.export.Dim(f"{modality}_length", min=1, max=65536)
            size = model.config.feature_size(modality)
            inputs[f"{modality}_features"] = (torch.randn(batch_size, 8, size), {0: batch, 1: length})
            inputs[f"{modality}_feature_mask"] = (torch.ones(batch_size, 8, dtype=torch.long), {0: batch, 1: length})
        else:
            tensors = ENCODER_EXAMPLES[modality](encoder, batch_size, lengths)
            inputs.update({name: (tensor, {0: batch}) for name, tensor in tensors.items()})
    return inputs


def text_example(encoder, batch_size: int, lengths: RawLengths) -> dict[str, torch.Tensor]:
    most = getattr(encoder, "max_position_embeddings", lengths.text_tokens)
    if lengths.text_tokens > most:
        raise ValueError(f"The text encoder takes at most {most} tokens; asked for {lengths.text_tokens}.")
    ids = torch.randint(1, encoder.vocab_size, (batch_size, lengths.text_tokens))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def audio_example(encoder, batch_size: int, lengths: RawLengths) -> dict[str, torch.Tensor]:
    """Whisper: log-mel frames (100 per second, at most its 30 s); wav2vec2-style towers: 16 kHz samples."""
    if encoder.model_type == "whisper":
        frames = round(lengths.audio_seconds * 100)
        if frames > 2 * encoder.max_source_positions:
            raise ValueError(f"Whisper takes at most {encoder.max_source_positions / 50:g} s of audio.")
        features = torch.randn(batch_size, encoder.num_mel_bins, frames)
        return {"input_features": features, "audio_attention_mask": torch.ones(batch_size, frames, dtype=torch.long)}
    waveform = torch.randn(batch_size, round(lengths.audio_seconds * 16000))
    return {"input_values": waveform, "audio_attention_mask": torch.ones_like(waveform, dtype=torch.long)}


def vision_example(encoder, batch_size: int, lengths: RawLengths) -> dict[str, torch.Tensor]:
    side = encoder.image_size if isinstance(encoder.image_size, int) else encoder.image_size[0]
    pixels = torch.randn(batch_size, lengths.video_frames, getattr(encoder, "num_channels", 3), side, side)
    return {"pixel_values": pixels, "frame_mask": torch.ones(batch_size, lengths.video_frames, dtype=torch.long)}


ENCODER_EXAMPLES = {"text": text_example, "audio": audio_example, "vision": vision_example}


def pad_to_graph(inputs: dict, shapes: dict[str, list]) -> dict[str, np.ndarray]:
    """
    Processor outputs (any lengths up to the graph's) zero-padded to the fixed shapes of `inputs.json`, as numpy
    arrays for onnxruntime: masks mark the padding, so the graph gives what the model gives on the unpadded inputs.
    """
    padded = {}
    for name, shape in shapes.items():
        value = np.asarray(inputs[name])
        gaps = [(0, 0)] + [(0, want - have) for want, have in zip(shape[1:], value.shape[1:])]
        if any(after < 0 for _, after in gaps):
            raise ValueError(f"`{name}` has shape {value.shape[1:]} past the graph's {tuple(shape[1:])}.")
        padded[name] = np.pad(value, gaps)
    return padded


def export_model(
    model_dir: str | Path, output: str | Path, kind: str, overwrite: bool = False, lengths: RawLengths = RawLengths()
) -> Path:
    """Export `model_dir` (a saved model, with its encoders or on features) into `output`; returns the file written."""
    if kind not in FORMATS:
        raise ValueError(f"Unknown export format {kind!r}; choose one of {', '.join(FORMATS)}.")
    claim_output(output, COMMAND, {"--model": model_dir}, overwrite)
    model = load_saved_model(architecture_class(ModelArguments(model=str(model_dir))), str(model_dir)).eval()
    examples = example_inputs(model, lengths=lengths)
    names = list(examples)
    inputs = {name: tensor for name, (tensor, _) in examples.items()}
    shapes = tuple(axes for _, axes in examples.values())
    wrapped = ExportedModel(model, names).eval()

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
        shapes_note = {name: [None, *tensor.shape[1:]] for name, tensor in inputs.items()}  # None: any batch size
        (folder / "inputs.json").write_text(json.dumps(shapes_note, indent=2) + "\n", encoding="utf-8")

    with torch.no_grad():
        try:
            write_folder(output, write, command=COMMAND, overwrite=overwrite)
        except Exception as error:
            if isinstance(error.__cause__, ValueError):  # the model's own clear error, wrapped by the ONNX exporter
                raise error.__cause__ from None
            raise
    return Path(output) / FORMATS[kind]
