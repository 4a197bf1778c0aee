"""
The model inputs of each modality, in one table: the processor returns the raw ones, the collator pads them all, the
model takes them all, training and the CLI name them from here.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class PaddedInput:
    """One model input: its name, the name of its 1/0 padding mask, and the axis of a sample that padding extends."""

    name: str
    mask: str
    axis: int = 0


@dataclass(frozen=True)
class ModalityInputs:
    """
    How a modality reaches the model: raw, as the input its encoder family takes (one of `raw`), or as precomputed
    features of shape (batch, length, feature_size) with their mask.
    """

    raw: tuple[PaddedInput, ...]
    features: PaddedInput

    @property
    def raw_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.raw)


MODALITY_INPUTS = {
    "text": ModalityInputs(
        raw=(PaddedInput("input_ids", "attention_mask"),),
        features=PaddedInput("text_features", "text_feature_mask"),
    ),
    "audio": ModalityInputs(
        raw=(
            PaddedInput("input_values", "audio_attention_mask"),  # waveforms (wav2vec2, HuBERT, WavLM)
            PaddedInput("input_features", "audio_attention_mask", axis=-1),  # log-mel (mel_bins, frames): Whisper
        ),
        features=PaddedInput("audio_features", "audio_feature_mask"),
    ),
    "vision": ModalityInputs(
        raw=(PaddedInput("pixel_values", "frame_mask"),),  # (frames, channels, height, width)
        features=PaddedInput("vision_features", "vision_feature_mask"),
    ),
}


def _names(specs: list[PaddedInput]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(name for spec in specs for name in (spec.name, spec.mask)))


RAW_INPUTS = tuple(spec for inputs in MODALITY_INPUTS.values() for spec in inputs.raw)
PADDED_INPUTS = (*RAW_INPUTS, *(inputs.features for inputs in MODALITY_INPUTS.values()))
# What the processor can return, and every keyword input of the models, in `forward`'s order.
PROCESSOR_OUTPUT_NAMES = _names(list(RAW_INPUTS))
MODEL_INPUT_NAMES = _names(list(PADDED_INPUTS))
MASK_NAMES = tuple(dict.fromkeys(spec.mask for spec in PADDED_INPUTS))


def model_inputs(arguments: dict) -> dict:
    """The model inputs among a `forward`'s arguments (its `locals()`), by name."""
    return {name: arguments[name] for name in MODEL_INPUT_NAMES}


def given_modalities(inputs: dict) -> tuple[str, ...]:
    """The modalities of which an input (raw or features) is given, in the table's order."""
    return tuple(
        modality
        for modality, spec in MODALITY_INPUTS.items()
        if any(inputs.get(name) is not None for name in (*spec.raw_names, spec.features.name))
    )
