"""
The encoder towers, one family per class behind one interface: text models, speech models on waveforms (wav2vec2,
HuBERT, WavLM), Whisper's encoder on log-mel features, and image models run on every video frame (mini-Xception among
them). Each family holds all of its special handling; the front end asks `encoder_family` which one an encoder config
belongs to, and the tower's weights stay where transformers put them (`<base model>.encoders.<modality>`).
"""

import inspect
import os

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedConfig, PreTrainedModel
from transformers.models.auto.modeling_auto import MODEL_MAPPING
from transformers.utils import ModelOutput, logging

from .inputs_multimodal import MODALITY_INPUTS, PaddedInput
from .modeling_attention import key_padding_to_additive_mask
from .modeling_mini_xception import MiniXceptionModel


Inputs = dict[str, torch.Tensor | None]


class EncoderFamily:
    """
    How the front end builds, feeds and reads one family of encoders: `input` is the raw model input it takes,
    `encode` turns it into a (batch, length, output_size) sequence and its 1/0 mask, reading no tensor values (no
    host-device synchronisation).
    """

    modality: str
    input: PaddedInput

    def build(self, config: PreTrainedConfig) -> PreTrainedModel:
        return AutoModel.from_config(config)

    def adopt(self, model: PreTrainedModel) -> PreTrainedModel:
        """The part of a loaded pretrained model this family uses."""
        return model

    def output_size(self, config: PreTrainedConfig) -> int:
        return config.hidden_size

    def encode(self, encoder: PreTrainedModel, inputs: Inputs) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def given(self, inputs: Inputs) -> tuple[torch.Tensor, torch.Tensor]:
        """This family's input and its mask (all ones where none was given); a clear error where it is missing."""
        values = inputs.get(self.input.name)
        if values is None:
            given = [name for name in MODALITY_INPUTS[self.modality].raw_names if inputs.get(name) is not None]
            raise ValueError(f"{self.describe()}: pass `{self.input.name}`, not {', '.join(f'`{n}`' for n in given)}.")
        mask = inputs.get(self.input.mask)
        if mask is None:  # `axis` counts a sample's axes: batched, the same axis is one further on
            length = values.shape[self.input.axis + 1 if self.input.axis >= 0 else self.input.axis]
            mask = torch.ones(values.shape[0], length, dtype=torch.long, device=values.device)
        return values, mask

    def describe(self) -> str:
        return f"The {self.modality} encoder takes `{self.input.name}`"


class TextTower(EncoderFamily):
    """Any text model; pooled by the fusion network itself, so its own pooler is left out where the class allows."""

    modality = "text"
    input = MODALITY_INPUTS["text"].raw[0]

    def build(self, config: PreTrainedConfig) -> PreTrainedModel:
        return AutoModel.from_config(config, **self.without_pooler(config))

    @staticmethod
    def without_pooler(config: PreTrainedConfig) -> dict:
        model_class = MODEL_MAPPING.get(type(config), None)
        if model_class is not None and "add_pooling_layer" in inspect.signature(model_class.__init__).parameters:
            return {"add_pooling_layer": False}
        return {}

    def encode(self, encoder: PreTrainedModel, inputs: Inputs) -> tuple[torch.Tensor, torch.Tensor]:
        input_ids, mask = self.given(inputs)
        return encoder(input_ids=input_ids, attention_mask=mask).last_hidden_state, mask


class SpeechTower(EncoderFamily):
    """
    Speech models on raw waveforms (wav2vec2, HuBERT, WavLM). Those with a group-norm feature encoder (wav2vec2-base,
    HuBERT-base) normalise the first convolution's output over the whole input and were trained on unpadded clips:
    here that normalisation counts each clip's real steps only, so a clip gives the same output alone or padded in a
    batch, without running clip by clip.
    """

    modality = "audio"
    input = MODALITY_INPUTS["audio"].raw[0]

    def describe(self) -> str:
        return "The audio encoder takes raw waveforms"

    def encode(self, encoder: PreTrainedModel, inputs: Inputs) -> tuple[torch.Tensor, torch.Tensor]:
        waveforms, mask = self.given(inputs)
        if waveforms.shape[-1] == 0:
            raise ValueError("The audio input is empty (0 samples); give a waveform of at least 0.1 s.")
        if getattr(encoder.config, "feat_extract_norm", None) == "group":
            return self.encode_group_norm(encoder, waveforms, mask)
        hidden_states = encoder(waveforms, attention_mask=mask).last_hidden_state
        if hasattr(encoder, "_get_feature_vector_attention_mask"):
            return hidden_states, encoder._get_feature_vector_attention_mask(hidden_states.shape[1], mask).long()
        return hidden_states, hidden_states.new_ones(hidden_states.shape[:2], dtype=torch.long)

    def encode_group_norm(
        self, encoder: PreTrainedModel, waveforms: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`Wav2Vec2Model.forward` (and HuBERT's, WavLM's) with the first layer's group norm over the real steps."""
        first, *rest = encoder.feature_extractor.conv_layers
        hidden_states = first.conv(waveforms[:, None])
        real_steps = (mask.sum(dim=1) - first.conv.kernel_size[0]) // first.conv.stride[0] + 1
        real = torch.arange(hidden_states.shape[-1], device=mask.device)[None] < real_steps[:, None]
        hidden_states = first.activation(group_norm_over(first.layer_norm, hidden_states, real))
        for layer in rest:
            hidden_states = layer(hidden_states)
        extracted = hidden_states.transpose(1, 2)
        feature_mask = encoder._get_feature_vector_attention_mask(extracted.shape[1], mask)
        projected = encoder.feature_projection(extracted)
        hidden_states = projected[0] if isinstance(projected, tuple) else projected
        hidden_states = encoder._mask_hidden_states(hidden_states, attention_mask=feature_mask)
        hidden_states = encoder.encoder(hidden_states, attention_mask=feature_mask).last_hidden_state
        if getattr(encoder, "adapter", None) is not None:
            hidden_states = encoder.adapter(hidden_states)
        return hidden_states, feature_mask.long()


def group_norm_over(norm: nn.GroupNorm, hidden_states: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """`norm` on (batch, channels, steps) with each sample's statistics taken over its `real` steps only."""
    batch_size, channels, steps = hidden_states.shape
    grouped = hidden_states.view(batch_size, norm.num_groups, -1, steps)
    weights = real[:, None, None, :].to(hidden_states.dtype)
    count = (weights.sum(dim=-1, keepdim=True) * grouped.shape[2]).clamp(min=1.0)
    mean = (grouped * weights).sum(dim=(2, 3), keepdim=True) / count
    variance = (((grouped - mean) * weights) ** 2).sum(dim=(2, 3), keepdim=True) / count
    normalised = ((grouped - mean) * torch.rsqrt(variance + norm.eps)).view(batch_size, channels, steps)
    return normalised * norm.weight[:, None] + norm.bias[:, None]


class WhisperTower(EncoderFamily):
    """
    Whisper's encoder (an encoder-decoder model contributes its encoder alone) over each clip's real length.

    `WhisperEncoder.forward` insists on 30 s (3000 mel frames) of input; for a 3 s clip that is 90 % padding paid for
    in every layer. Here the convolutions run on the given frames, the positional embeddings are sliced to the
    resulting length and padded frames are masked out of the self-attention. Padded frames are zeroed before each
    convolution, so a clip's last frames see what lies past the end of the clip alone (the convolutions' own zero
    padding) whatever else shares its batch. The output is at the encoder's frame rate (half the mel frame rate).
    """

    modality = "audio"
    input = MODALITY_INPUTS["audio"].raw[1]

    def describe(self) -> str:
        return "The audio encoder is Whisper"

    def build(self, config: PreTrainedConfig) -> PreTrainedModel:
        return AutoModel.from_config(config).get_encoder()

    def adopt(self, model: PreTrainedModel) -> PreTrainedModel:
        return model.get_encoder() if model.config.is_encoder_decoder else model

    def encode(self, encoder: PreTrainedModel, inputs: Inputs) -> tuple[torch.Tensor, torch.Tensor]:
        input_features, frame_mask = self.given(inputs)
        if input_features.shape[-1] == 0:
            raise ValueError("The audio input is empty (0 frames); give a waveform of at least 0.1 s.")
        max_frames = encoder.config.max_source_positions * encoder.conv1.stride[0] * encoder.conv2.stride[0]
        if input_features.shape[-1] > max_frames:
            raise ValueError(
                f"`input_features` has {input_features.shape[-1]} mel frames; Whisper takes at most {max_frames} "
                "(30 s)."
            )
        given = frame_mask[:, None, :].to(input_features.dtype)
        hidden_states = nn.functional.gelu(encoder.conv1(input_features * given)) * given
        hidden_states = nn.functional.gelu(encoder.conv2(hidden_states)).permute(0, 2, 1)
        length = hidden_states.shape[1]
        hidden_states = hidden_states + encoder.embed_positions.weight[:length]
        hidden_states = nn.functional.dropout(hidden_states, p=encoder.dropout, training=encoder.training)
        # Output step j reads mel frame stride * j: it is real where that frame is (masks are a real prefix).
        real_steps = (frame_mask.sum(dim=1) + encoder.conv2.stride[0] - 1) // encoder.conv2.stride[0]
        mask = (torch.arange(length, device=frame_mask.device)[None] < real_steps[:, None]).to(frame_mask.dtype)
        attention_mask = key_padding_to_additive_mask(mask, hidden_states.dtype)
        for layer in encoder.layers:
            hidden_states = layer(hidden_states, attention_mask)
        return encoder.layer_norm(hidden_states), mask


class ImageTower(EncoderFamily):
    """
    Image models (ViT, ResNet, the mini-Xception face CNN, ...) run on every frame of a video; a frame's vector is the
    model's pooled output (or the mean of its last hidden state). Padded frames are encoded too and their vectors
    zeroed: a batch sized by the mask's values would need the mask on the host.
    """

    modality = "vision"
    input = MODALITY_INPUTS["vision"].raw[0]

    def build(self, config: PreTrainedConfig) -> PreTrainedModel:
        if config.model_type == MiniXceptionModel.config_class.model_type:
            # Built directly: as remote code, transformers loads this package's modules once per file hash, so the
            # config class AutoConfig resolved need not be the one AutoModel registered.
            return MiniXceptionModel(config)
        return AutoModel.from_config(config)

    def output_size(self, config: PreTrainedConfig) -> int:
        hidden_sizes = getattr(config, "hidden_sizes", None)  # CNNs report the width of each stage
        return hidden_sizes[-1] if hidden_sizes else config.hidden_size

    def encode(self, encoder: PreTrainedModel, inputs: Inputs) -> tuple[torch.Tensor, torch.Tensor]:
        pixel_values, frame_mask = self.given(inputs)
        if pixel_values.dim() != 5:
            raise ValueError(
                f"`pixel_values` must have shape (batch, frames, channels, height, width); got "
                f"{tuple(pixel_values.shape)}. A single image is one frame: use `pixel_values[:, None]`."
            )
        batch_size, num_frames = pixel_values.shape[:2]
        pooled = pooled_frame_features(encoder(pixel_values=pixel_values.flatten(0, 1)))
        features = pooled * frame_mask.reshape(-1, 1).to(pooled.dtype)
        return features.view(batch_size, num_frames, -1), frame_mask


def pooled_frame_features(outputs: ModelOutput) -> torch.Tensor:
    """One vector per image: the model's pooled output, or the mean of its last hidden state if it has none."""
    pooled = getattr(outputs, "pooler_output", None)
    if pooled is None:
        pooled = outputs.last_hidden_state.mean(dim=1)
    return pooled.flatten(1)


def encoder_family(config: PreTrainedConfig, modality: str) -> EncoderFamily:
    if modality == "audio":
        return WhisperTower() if config.model_type == "whisper" else SpeechTower()
    return TextTower() if modality == "text" else ImageTower()


def load_pretrained_encoder(source: "str | os.PathLike | PreTrainedModel", modality: str) -> PreTrainedModel:
    """
    An encoder from a Hub id, a local folder or an already loaded model. A checkpoint's own head or pooler (a face
    CNN's classifier, a text model's pooler) is left out on purpose, so transformers' load report, which would list
    it as unexpected weights, is not shown.
    """
    if isinstance(source, PreTrainedModel):
        return encoder_family(source.config, modality).adopt(source)
    config = AutoConfig.from_pretrained(source)
    family = encoder_family(config, modality)
    kwargs = TextTower.without_pooler(config) if modality == "text" else {}
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        return family.adopt(AutoModel.from_pretrained(source, config=config, **kwargs))
    finally:
        logging.set_verbosity(verbosity)


def unsplittable_blocks(encoder: PreTrainedModel) -> set[str]:
    """
    The class names of the blocks an offloading `device_map` must keep whole: those the encoder declares, the elements
    of its module lists (its repeated layers) and its parametrised modules (a weight-normalised convolution computes
    its weight from two tensors), since some encoders (wav2vec2) declare none.
    """
    repeated = {type(block).__name__ for m in encoder.modules() if isinstance(m, nn.ModuleList) for block in m}
    parametrized = {type(m).__name__ for m in encoder.modules() if hasattr(m, "parametrizations")}
    return {*(encoder._no_split_modules or ()), *repeated, *parametrized}
