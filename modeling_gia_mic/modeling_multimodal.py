"""
The front end GIA-MIC, MCIHN and MIAR share: encoders built from sub-configs (or feature inputs), projections, input
validation, per-sample presence and modality dropout, the task head and loss, and the building blocks (attention
through the transformers attention interface, feed-forward, transformer layer) their fusion networks are made of.
Each architecture's file holds only its own paper's fusion.
"""

import inspect
import itertools
import math
import os
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.dynamic_module_utils import custom_object_save
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.auto.modeling_auto import MODEL_MAPPING
from transformers.utils import ModelOutput, logging

from .configuration_multimodal import MultimodalEmotionConfig
from .modeling_mini_xception import MiniXceptionModel
from .processing_gia_mic import PROCESSOR_OUTPUT_NAMES


# ---------------------------------------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class MultimodalModelOutput(ModelOutput):
    r"""
    The outputs every architecture's base model returns; each adds its own auxiliary losses and representations.

    fused_embedding (`torch.FloatTensor` of shape `(batch_size, fused_size)`):
        The representation the classification head reads.
    modality_embeddings (`torch.FloatTensor` of shape `(batch_size, num_modalities, width)`):
        One vector per configured modality, in `config.modalities` order (the architecture says which), with the
        learned "missing" vector in place of an absent modality.
    modality_mask (`torch.BoolTensor` of shape `(batch_size, num_modalities)`):
        Which modalities were present for each sample (after modality dropout).
    gate_values (`torch.FloatTensor` of shape `(batch_size, num_pairs)`):
        Per ordered pair `config.modality_pairs` (query, key), how much of the key modality flowed into the query
        modality (the architecture says how it is measured); 0 where a pair is absent. The demo draws it.
    hidden_states (`tuple[torch.FloatTensor]`, *optional*, returned when `output_hidden_states=True`):
        Per layer of the fusion network one tensor of shape `(batch_size, sequence_length, width)`.
    attentions (`tuple[torch.FloatTensor]`, *optional*, with `output_attentions=True`, computed eagerly):
        Per layer one tensor of shape `(batch_size, num_heads, sequence_length, sequence_length)`: the weights of the
        layer's self-attention (within each modality's sequence where the architecture joins several).
    cross_attentions (`tuple[torch.FloatTensor]`, *optional*, with `output_attentions=True`, computed eagerly):
        Where a layer also attends from one modality to the others (GIA-MIC, MIAR), its weights in the same layout,
        zero outside the (query modality, key modality) blocks; `None` for an architecture without.
    modality_lengths (`torch.LongTensor` of shape `(num_modalities,)`, *optional*):
        Where the fusion network's sequence joins the modalities' sequences (GIA-MIC, MIAR): the length of each
        configured modality's part, 0 if absent; `split_modalities` gives the per-modality view.
    """

    fused_embedding: torch.FloatTensor | None = None
    modality_embeddings: torch.FloatTensor | None = None
    modality_mask: torch.BoolTensor | None = None
    gate_values: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None
    cross_attentions: tuple[torch.FloatTensor, ...] | None = None
    modality_lengths: torch.LongTensor | None = None


@dataclass
class MultimodalEmotionRecognitionOutput(ModelOutput):
    r"""
    loss (`torch.FloatTensor` of shape `()`, *optional*, returned when `labels` is given):
        `classification_loss` plus every auxiliary loss term times its config weight.
    logits (`torch.FloatTensor` of shape `(batch_size, num_labels)`):
        Class scores (before softmax), or the predicted value for `problem_type="regression"`.
    classification_loss (`torch.FloatTensor` of shape `()`, *optional*):
        The supervised term: cross-entropy, or L1/MSE for regression.
    modality_embeddings, modality_mask, gate_values, hidden_states, attentions, cross_attentions, modality_lengths:
        See [`MultimodalModelOutput`].
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    classification_loss: torch.FloatTensor | None = None
    modality_embeddings: torch.FloatTensor | None = None
    modality_mask: torch.BoolTensor | None = None
    gate_values: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None
    cross_attentions: tuple[torch.FloatTensor, ...] | None = None
    modality_lengths: torch.LongTensor | None = None


# ---------------------------------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------------------------------


MODEL_INPUT_NAMES = (
    *PROCESSOR_OUTPUT_NAMES,
    *(name for m in ("text", "audio", "vision") for name in (f"{m}_features", f"{m}_feature_mask")),
)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over dim 1 of `values` (batch, length, ...) counting only positions where `mask` (batch, length) is set."""
    mask = mask.to(values.dtype).view(*mask.shape, *([1] * (values.dim() - 2)))
    return (values * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def downsample_sequence(
    hidden_states: torch.Tensor, mask: torch.Tensor, factor: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """
    Masked mean over non-overlapping windows of `factor` steps (the last one may be shorter); a window is valid if any
    of its steps is. The steps are padded with `factor - 1` zero-weight steps and averaged per window: the ratio of
    the two means is the mean over the real steps, and a traced graph needs no divisibility of the length.
    """
    if factor == 1:
        return hidden_states, mask
    weights = nn.functional.pad(mask.to(hidden_states.dtype)[:, None, :], (0, factor - 1))  # (batch, 1, length')
    values = nn.functional.pad(hidden_states.transpose(1, 2), (0, factor - 1)) * weights
    share = nn.functional.avg_pool1d(weights, factor, factor)  # real steps / factor, per window
    pooled = nn.functional.avg_pool1d(values, factor, factor) / share.clamp(min=torch.finfo(share.dtype).tiny)
    return pooled.transpose(1, 2), (share[:, 0] > 0).long()  # an empty window: 0 / tiny = 0


MASK_NAMES = tuple(name for name in MODEL_INPUT_NAMES if name.endswith("_mask"))


def hidden_state_selection(output_hidden_states) -> list[int] | None:
    """
    `output_hidden_states` as transformers takes it: a flag (every layer's states, or none), or a layer index or a
    list of them (those layers' states alone, negative indices counted from the last). None for a flag.
    """
    if isinstance(output_hidden_states, bool):
        return None
    chosen = [output_hidden_states] if isinstance(output_hidden_states, int) else output_hidden_states
    if not isinstance(chosen, list | tuple) or not all(isinstance(i, int) and not isinstance(i, bool) for i in chosen):
        raise ValueError(
            f"`output_hidden_states` takes True, False, a layer index or a list of them; got {output_hidden_states!r}."
        )
    return list(chosen)


def select_layers(hidden_states: tuple[torch.Tensor, ...], selected: list[int]) -> tuple[torch.Tensor, ...]:
    """The chosen entries of a `hidden_states` tuple, in layer order (indices out of range select nothing)."""
    count = len(hidden_states)
    return tuple(hidden_states[i] for i in sorted({i % count for i in selected if -count <= i < count}))


def tracing() -> bool:
    """Whether the model is being traced into a graph (`torch.export`, `torch.compile`, ONNX export)."""
    return torch.compiler.is_compiling() or torch.compiler.is_exporting()


def checking_values() -> bool:
    """
    Whether to run the checks that read tensor values (NaN, mask contents, empty samples). They give clear errors in
    eager mode; under `torch.export` / `torch.compile` / ONNX export they are skipped, since a graph cannot branch on
    data (the exported model then trusts its inputs).
    """
    return not tracing()


def has_non_finite(values: torch.Tensor) -> bool:
    """
    Whether any element is NaN or infinite. One reduction first (a sum is finite unless an element is not, or the sum
    overflows): on a training batch the element-wise test alone costs several full passes over the input.
    """
    return not torch.isfinite(values.sum()) and not torch.isfinite(values).all()


def key_padding_to_additive_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(batch, key_length) 1/0 padding mask -> (batch, 1, 1, key_length) additive mask for the attention interface."""
    return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


def pair_name(query: str, key: str) -> str:
    """Module and output key of the interaction in which `query` attends to `key`."""
    return f"{query}_from_{key}"


def eager_attention_weights(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
) -> torch.Tensor:
    """softmax(q k^T * scaling + mask), with dropout in training: (batch, heads, query_length, key_length)."""
    attn_weights = torch.matmul(query, key.transpose(-1, -2)) * scaling
    if attention_mask is not None:
        attn_weights = attn_weights + attention_mask
    attn_weights = nn.functional.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query.dtype)
    return nn.functional.dropout(attn_weights, p=dropout, training=module.training)


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    attn_weights = eager_attention_weights(module, query, key, attention_mask, scaling, dropout)
    attn_output = torch.matmul(attn_weights, value).transpose(1, 2).contiguous()
    return attn_output, attn_weights


def weighted_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean over dim 0 of the rows whose weight is 1 (0 when none is): e.g. the samples where both modalities are."""
    weights = weights.view(-1, *([1] * (values.dim() - 1)))
    return (values * weights).sum(0) / weights.sum(0).clamp(min=1.0)


def mean_over_given(terms: list[tuple[torch.Tensor, torch.Tensor]], reference: torch.Tensor) -> torch.Tensor:
    """
    The mean of the loss terms some sample takes part in: `terms` holds (loss, weights) pairs, the weights 1/0 per
    sample; a term whose weights are all 0 is left out, and the result is 0 when every term is. Written without
    data-dependent branches, so that the model traces for `torch.export` / ONNX.
    """
    given = [(weights.sum() > 0).to(loss.dtype) for loss, weights in terms]
    total = sum((flag * loss for flag, (loss, _) in zip(given, terms)), reference.new_zeros(()))
    return total / sum(given, reference.new_zeros(())).clamp(min=1.0)


def per_pair(
    values: dict[tuple[str, str], torch.Tensor], pairs: tuple[tuple[str, str], ...], presence: dict[str, torch.Tensor]
) -> torch.Tensor:
    """(batch, num_pairs): each configured ordered pair's per-sample value, 0 for pairs not computed."""
    zeros = torch.zeros_like(next(iter(presence.values())))
    return torch.stack([values.get(pair, zeros) for pair in pairs], dim=1) if pairs else zeros[:, None][:, :0]


def presence_mask(presence: dict[str, torch.Tensor], modalities: tuple[str, ...]) -> torch.BoolTensor:
    """(batch, num_modalities): which configured modalities each sample has."""
    zeros = torch.zeros_like(next(iter(presence.values())))
    return torch.stack([presence.get(m, zeros) for m in modalities], dim=1).bool()


def split_joined(joined: torch.Tensor, masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The modalities' sequences of a joined (batch, total_length, width) tensor, in `masks`' order and lengths."""
    return dict(zip(masks, torch.split(joined, [mask.shape[1] for mask in masks.values()], dim=1)))


def join(states: dict[str, torch.Tensor]) -> torch.Tensor:
    """The modalities' sequences joined along the length axis (the `hidden_states` layout)."""
    return torch.cat(list(states.values()), dim=1)


def slots(
    values: dict[str, torch.Tensor],
    presence: dict[str, torch.Tensor],
    missing: torch.Tensor,
    modalities: tuple[str, ...],
) -> torch.Tensor:
    """
    (batch, num_modalities, width): each configured modality's vector where the sample has it, and that modality's
    learned "missing" vector (`missing[index]`) where it does not.
    """
    batch_size = next(iter(presence.values())).shape[0]
    filled = []
    for index, modality in enumerate(modalities):
        default = missing[index].expand(batch_size, -1)
        present = presence.get(modality, default.new_zeros(batch_size))[:, None]
        filled.append(present * values.get(modality, default) + (1.0 - present) * default)
    return torch.stack(filled, dim=1)


def joined_positions(sequences: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each modality's positions along the joined length axis (the `hidden_states` / `attentions` layout)."""
    ends = itertools.accumulate(x.shape[1] for x in sequences.values())
    return {m: torch.arange(end - x.shape[1], end, device=x.device) for (m, x), end in zip(sequences.items(), ends)}


@dataclass
class AttentionBlock:
    """
    One attention call of a fusion layer (`attention(query, key_value, mask)`) and where its weights sit in the
    layer's joined attention matrix: the query rows at positions `rows`, the keys at positions `columns`.
    """

    attention: "MultimodalAttention"
    query: torch.Tensor
    key_value: torch.Tensor
    mask: torch.Tensor
    rows: torch.Tensor
    columns: torch.Tensor


def attention_matrix(sequences: dict[str, torch.Tensor], num_heads: int) -> torch.Tensor:
    """A zero (batch, heads, length, length) matrix over the joined sequences, for `attend_jointly` to fill."""
    reference = next(iter(sequences.values()))
    length = sum(x.shape[1] for x in sequences.values())
    return reference.new_zeros(reference.shape[0], num_heads, length, length)


def attend_jointly(
    blocks: dict[Hashable, AttentionBlock], joined: torch.Tensor | None = None, need_weights: bool = False
) -> tuple[dict[Hashable, torch.Tensor], dict[Hashable, torch.Tensor | None]]:
    """
    Runs independent attention calls; returns their outputs and their weights (`need_weights`, or when recording).
    With `joined` (from `attention_matrix`) the weights are recorded in it, zero outside the blocks (an `attentions`
    entry), and each call goes on from its block read back from it: the matrix is then upstream of everything the
    weights feed, so `retain_grad()` on it sees their gradients.
    """
    if joined is None:
        results = {key: b.attention(b.query, b.key_value, b.mask, need_weights) for key, b in blocks.items()}
        return {key: r[0] for key, r in results.items()}, {key: r[1] for key, r in results.items()}
    prepared = {key: b.attention.weigh(b.query, b.key_value, b.mask) for key, b in blocks.items()}
    for key, b in blocks.items():
        joined[:, :, b.rows[:, None], b.columns] = prepared[key][0]
    weights = {key: joined[:, :, b.rows[:, None], b.columns] for key, b in blocks.items()}
    return {key: b.attention.attend(weights[key], prepared[key][1]) for key, b in blocks.items()}, weights


def split_modalities(
    joined: torch.Tensor, modality_lengths: torch.Tensor, modalities: tuple[str, ...], dim: int = 1
) -> dict[str, torch.Tensor]:
    """
    The per-modality view of a joined `hidden_states` entry (dim=1) or an `attentions` block matrix (dim=-2 for the
    query rows, -1 for the key columns): `{modality: slice}` for the modalities present (`modality_lengths` > 0).
    """
    lengths = {m: int(n) for m, n in zip(modalities, modality_lengths.tolist()) if n > 0}
    return dict(zip(lengths, torch.split(joined, list(lengths.values()), dim=dim)))


# ---------------------------------------------------------------------------------------------------------------------
# Encoders
# ---------------------------------------------------------------------------------------------------------------------


def _encoder_kwargs(config: PreTrainedConfig, modality: str) -> dict:
    """Text encoders are pooled by GIA-MIC itself: drop their pooler where the class allows it (no unused weights)."""
    model_class = MODEL_MAPPING.get(type(config), None)
    if modality == "text" and model_class is not None:
        if "add_pooling_layer" in inspect.signature(model_class.__init__).parameters:
            return {"add_pooling_layer": False}
    return {}


def _encoder_only(model: PreTrainedModel) -> PreTrainedModel:
    """Encoder-decoder audio models (Whisper) contribute their encoder alone."""
    return model.get_encoder() if model.config.is_encoder_decoder else model


def build_encoder(config: PreTrainedConfig, modality: str) -> PreTrainedModel:
    if config.model_type == MiniXceptionModel.config_class.model_type:
        # The face tower ships with GIA-MIC. Built directly: as remote code, transformers loads this package's modules
        # once per file hash, so the config class AutoConfig resolved need not be the one AutoModel registered.
        return MiniXceptionModel(config)
    return _encoder_only(AutoModel.from_config(config, **_encoder_kwargs(config, modality)))


def load_pretrained_encoder(source: "str | os.PathLike | PreTrainedModel", modality: str) -> PreTrainedModel:
    """
    An encoder from a Hub id, a local folder or an already loaded model. A checkpoint's own head or pooler (a face
    CNN's classifier, a text model's pooler) is left out on purpose, so transformers' load report, which would list
    it as unexpected weights, is not shown.
    """
    if isinstance(source, PreTrainedModel):
        return _encoder_only(source)
    config = AutoConfig.from_pretrained(source)
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        return _encoder_only(AutoModel.from_pretrained(source, config=config, **_encoder_kwargs(config, modality)))
    finally:
        logging.set_verbosity(verbosity)


def encoder_output_size(config: PreTrainedConfig) -> int:
    """Width of an encoder's per-step output (CNN image models report `hidden_sizes`, the rest `hidden_size`)."""
    hidden_sizes = getattr(config, "hidden_sizes", None)
    return hidden_sizes[-1] if hidden_sizes else config.hidden_size


def is_whisper_encoder(encoder: nn.Module) -> bool:
    return encoder.config.model_type == "whisper"


def whisper_encoder_forward(
    encoder: PreTrainedModel, input_features: torch.Tensor, frame_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """
    Whisper encoder over the clip's real length only.

    `WhisperEncoder.forward` insists on 30 s (3000 mel frames) of input; for a 3 s clip that is 90 % padding paid for
    in every layer. Here the convolutions run on the given frames, the positional embeddings are sliced to the
    resulting length and padded frames are masked out of the self-attention. Padded frames are zeroed before each
    convolution, so a clip's last frames see what lies past the end of the clip alone (the convolutions' own zero
    padding) whatever else shares its batch. Returns (hidden_states, mask) at the encoder's frame rate (half the mel
    frame rate).
    """
    max_frames = encoder.config.max_source_positions * encoder.conv1.stride[0] * encoder.conv2.stride[0]
    if input_features.shape[-1] > max_frames:
        raise ValueError(
            f"`input_features` has {input_features.shape[-1]} mel frames; Whisper takes at most {max_frames} (30 s)."
        )
    given = frame_mask[:, None, :].to(input_features.dtype)
    hidden_states = nn.functional.gelu(encoder.conv1(input_features * given)) * given
    hidden_states = nn.functional.gelu(encoder.conv2(hidden_states)).permute(0, 2, 1)
    length = hidden_states.shape[1]
    hidden_states = hidden_states + encoder.embed_positions.weight[:length]
    hidden_states = nn.functional.dropout(hidden_states, p=encoder.dropout, training=encoder.training)
    # Output step j reads mel frame stride * j: it is real where that frame is (masks are a real prefix, then padding).
    # Built from the output's own length, so a traced graph need not relate the two lengths.
    real_steps = (frame_mask.sum(dim=1) + encoder.conv2.stride[0] - 1) // encoder.conv2.stride[0]
    mask = (torch.arange(length, device=frame_mask.device)[None] < real_steps[:, None]).to(frame_mask.dtype)
    attention_mask = key_padding_to_additive_mask(mask, hidden_states.dtype)
    for layer in encoder.layers:
        hidden_states = layer(hidden_states, attention_mask)
    return encoder.layer_norm(hidden_states), mask


def blocks(encoder: PreTrainedModel) -> set[str]:
    """
    The class names of the blocks an offloading `device_map` must keep whole: those the encoder declares, the elements
    of its module lists (its repeated layers) and its parametrised modules (a weight-normalised convolution computes
    its weight from two tensors), since some encoders (wav2vec2) declare none.
    """
    repeated = {type(block).__name__ for m in encoder.modules() if isinstance(m, nn.ModuleList) for block in m}
    parametrized = {type(m).__name__ for m in encoder.modules() if hasattr(m, "parametrizations")}
    return {*(encoder._no_split_modules or ()), *repeated, *parametrized}


def pooled_frame_features(outputs: ModelOutput) -> torch.Tensor:
    """One vector per image: the model's pooled output, or the mean of its last hidden state if it has none."""
    pooled = getattr(outputs, "pooler_output", None)
    if pooled is None:
        pooled = outputs.last_hidden_state.mean(dim=1)
    return pooled.flatten(1)


# ---------------------------------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------------------------------


class ModalityProjection(nn.Module):
    """Linear(D_m, d) -> LayerNorm -> Dropout, plus a learned modality embedding."""

    learned_embeddings = ("modality_embedding",)

    def __init__(self, config: MultimodalEmotionConfig, input_size: int):
        super().__init__()
        self.dense = nn.Linear(input_size, config.hidden_size)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.modality_embedding = nn.Parameter(torch.zeros(config.hidden_size))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.layer_norm(self.dense(features))) + self.modality_embedding


class MultimodalAttention(nn.Module):
    """
    Multi-head attention of `hidden_states` (queries) over `key_value_states`, through the transformers attention
    interface (`config._attn_implementation`), over `width` channels (the config's `hidden_size` by default).
    `weigh` and `attend` are its two halves, for callers that record the weights before using them.
    """

    def __init__(self, config: MultimodalEmotionConfig, width: int | None = None):
        super().__init__()
        width = width or config.hidden_size
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = width // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.dropout = config.attention_dropout
        self.is_causal = False
        self.q_proj = nn.Linear(width, width)
        self.k_proj = nn.Linear(width, width)
        self.v_proj = nn.Linear(width, width)
        self.out_proj = nn.Linear(width, width)

    def _heads(self, projection: nn.Linear, states: torch.Tensor) -> torch.Tensor:
        """(batch, length, width) -> (batch, heads, length, head_dim)."""
        return projection(states).view(states.shape[0], states.shape[1], self.num_heads, self.head_dim).transpose(1, 2)

    def forward(
        self,
        hidden_states: torch.Tensor,
        key_value_states: torch.Tensor,
        attention_mask: torch.Tensor,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`need_weights` computes eagerly whatever the implementation, for callers that use the weights."""
        attention_interface: Callable = eager_attention_forward
        if not need_weights:
            attention_interface = ALL_ATTENTION_FUNCTIONS.get_interface(
                self.config._attn_implementation, eager_attention_forward
            )
        attn_output, attn_weights = attention_interface(
            self,
            self._heads(self.q_proj, hidden_states),
            self._heads(self.k_proj, key_value_states),
            self._heads(self.v_proj, key_value_states),
            attention_mask,
            scaling=self.scaling,
            dropout=self.dropout if self.training else 0.0,
        )
        return self._merge_heads(attn_output), attn_weights

    def weigh(
        self, hidden_states: torch.Tensor, key_value_states: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The eager attention weights (batch, heads, query_length, key_length) and the values they weigh."""
        queries, keys = self._heads(self.q_proj, hidden_states), self._heads(self.k_proj, key_value_states)
        dropout = self.dropout if self.training else 0.0
        weights = eager_attention_weights(self, queries, keys, attention_mask, self.scaling, dropout)
        return weights, self._heads(self.v_proj, key_value_states)

    def attend(self, weights: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """The attention output for `weigh`'s weights and values: (batch, query_length, width)."""
        return self._merge_heads(torch.matmul(weights, values).transpose(1, 2))

    def _merge_heads(self, attended: torch.Tensor) -> torch.Tensor:
        """(batch, length, heads, head_dim) -> the output projection of the heads side by side."""
        return self.out_proj(attended.reshape(*attended.shape[:2], -1))


class MultimodalFeedForward(nn.Module):
    def __init__(self, config: MultimodalEmotionConfig, width: int | None = None):
        super().__init__()
        self.fc1 = nn.Linear(width or config.hidden_size, config.intermediate_size)
        self.activation = ACT2FN[config.hidden_act]
        self.fc2 = nn.Linear(config.intermediate_size, width or config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.fc2(self.activation(self.fc1(hidden_states))))


class MultimodalTransformerLayer(GradientCheckpointingLayer):
    """Post-norm transformer layer: x <- LN(x + SelfAttn(x; mask)); x <- LN(x + FFN(x))."""

    def __init__(self, config: MultimodalEmotionConfig, width: int | None = None):
        super().__init__()
        width = width or config.hidden_size
        self.self_attention = MultimodalAttention(config, width)
        self.attention_norm = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.feed_forward = MultimodalFeedForward(config, width)
        self.output_norm = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(
        self, hidden_states: torch.Tensor, mask: torch.Tensor, output_attentions: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`mask` (batch, length) of 1/0; returns the new states and, with `output_attentions`, the attention weights
        (computed eagerly for that call, whatever the implementation)."""
        additive = key_padding_to_additive_mask(mask, hidden_states.dtype)
        attended, weights = self.self_attention(hidden_states, hidden_states, additive, need_weights=output_attentions)
        return self.update(hidden_states, attended), weights

    def update(self, hidden_states: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        """The rest of the layer, given its self-attention's output (for callers that run the attention themselves)."""
        hidden_states = self.attention_norm(hidden_states + self.dropout(attended))
        return self.output_norm(hidden_states + self.feed_forward(hidden_states))


def mlp(input_size: int, config: MultimodalEmotionConfig, output_size: int, dropout: float = 0.0) -> nn.Sequential:
    """Linear -> activation -> Dropout -> Linear, the 2-layer MLP of heads and small networks."""
    return nn.Sequential(
        nn.Linear(input_size, config.hidden_size),
        ACT2FN[config.hidden_act],
        nn.Dropout(dropout),
        nn.Linear(config.hidden_size, output_size),
    )


# ---------------------------------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------------------------------


class MultimodalPreTrainedModel(PreTrainedModel):
    """What the three architectures' models share as `PreTrainedModel`s: initialisation, inputs, assembly."""

    config: MultimodalEmotionConfig
    input_modalities = ("text", "audio", "video")
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_attention_backend = True
    accepts_loss_kwargs = False

    @classmethod
    def is_custom_code(cls) -> bool:
        """
        False: this code initialises through `transformers.initialization`, which honours the flags on weights that
        were loaded. For custom code transformers instead skips every module without weights of its own, so the
        encoders' parameter-less parents (wav2vec2's positional convolution and feature projection) would miss their
        own initialisation when a checkpoint lacks their weights.
        """
        return False

    @classmethod
    def _can_set_attn_implementation(cls) -> bool:
        """
        True: every attention of the three architectures is a `MultimodalAttention`, which reads the implementation
        through the attention interface at each call. (transformers guesses from the source of the model's own file,
        which for GIA-MIC names `GatedInteractiveAttention` but keeps its attention in this shared module.)
        """
        return True

    def save_pretrained(self, save_directory: str | os.PathLike, *args, **kwargs) -> None:
        """Also saves the code of the pipeline that `config.custom_pipelines` names, beside the model's own."""
        super().save_pretrained(save_directory, *args, **kwargs)
        from .pipeline_gia_mic import MultimodalEmotionRecognitionPipeline

        custom_object_save(MultimodalEmotionRecognitionPipeline, save_directory)

    @torch.no_grad()
    def initialize_weights(self) -> None:
        """
        The encoders' own initialisation, then for weight-normalised convolutions (the positional convolution of
        wav2vec2, HuBERT, WavLM) whose weights a checkpoint lacked: the encoders' `_init_weights` writes the computed
        weight, which never reaches the parametrisation's own tensors (`original0` = g, `original1` = v), so those
        would stay uninitialised memory. They get what the encoder gets when it is built: the convolution's default
        initialisation, split into norm and direction.
        """
        super().initialize_weights()
        for module in self.modules():
            parametrization = getattr(getattr(module, "parametrizations", None), "weight", None)
            if parametrization is None or all(
                getattr(p, "_is_hf_initialized", False) for p in parametrization.parameters()
            ):
                continue
            direction = torch.empty_like(parametrization.original1)
            init.kaiming_uniform_(direction, a=math.sqrt(5))  # nn.Conv1d.reset_parameters
            reduced = [d for d in range(direction.dim()) if parametrization.original0.shape[d] == 1]
            init.copy_(parametrization.original1, direction)
            init.copy_(parametrization.original0, torch.linalg.vector_norm(direction, dim=reduced, keepdim=True))

    @property
    def main_input_name(self) -> str:
        """The first input this model takes (`Trainer` reads it for `include_for_metrics=["inputs"]`)."""
        modality = self.config.modalities[0]
        if self.config.encoder_config(modality) is None:
            return f"{modality}_features"
        if modality == "audio":
            return "input_features" if self.config.audio_config.model_type == "whisper" else "input_values"
        return {"text": "input_ids", "vision": "pixel_values"}[modality]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """
        Linear/LayerNorm as transformers does; each module's `learned_embeddings` (tokens, "missing" vectors) from
        N(0, initializer_range^2), and its `initial_values` (e.g. a temperature) set to the given constants.
        """
        super()._init_weights(module)
        for name in getattr(module, "learned_embeddings", ()):
            init.normal_(getattr(module, name), mean=0.0, std=self.config.initializer_range)
        for name, value in getattr(module, "initial_values", {}).items():
            init.constant_(getattr(module, name), value)

    @classmethod
    def from_encoders_pretrained(
        cls,
        text: "str | os.PathLike | PreTrainedModel | None" = None,
        audio: "str | os.PathLike | PreTrainedModel | None" = None,
        vision: "str | os.PathLike | PreTrainedModel | None" = None,
        **config_kwargs,
    ) -> "MultimodalPreTrainedModel":
        r"""
        Assemble a model around pretrained encoders, like `VisionEncoderDecoderModel.from_encoder_decoder_pretrained`.

        Args:
            text, audio, vision (`str`, `os.PathLike` or `PreTrainedModel`, *optional*):
                A Hub id or a local folder loadable with `AutoModel`, or a loaded model. Whisper checkpoints give
                their encoder. Modalities given neither here nor as `<modality>_feature_size` are left out.
            config_kwargs:
                Any other field of the architecture's config, e.g. `num_labels`, `freeze_text_encoder=True`.
        """
        encoders = {
            modality: load_pretrained_encoder(source, modality)
            for modality, source in (("text", text), ("audio", audio), ("vision", vision))
            if source is not None
        }
        config = cls.config_class(
            **{f"{m}_config": encoder.config for m, encoder in encoders.items()}, **config_kwargs
        )
        model = cls(config)
        for modality, encoder in encoders.items():
            model.base_model.encoders[modality].load_state_dict(encoder.state_dict())
        return model


class MultimodalModel(MultimodalPreTrainedModel):
    """
    The shared front end: encoders (or feature inputs) -> validation -> projections -> per-sample presence, then the
    architecture's fusion network (`fuse`). Subclasses build their fusion modules after `super().__init__` and then
    call `post_init()`; they set `fused_size`, the width of the `fused_embedding` the head reads.
    """

    _fusion_no_split_modules: tuple[str, ...] = ()

    def __init__(self, config: MultimodalEmotionConfig):
        super().__init__(config)
        if not config.modalities:
            raise ValueError(
                f"{type(config).__name__} configures no modality: give at least one of text_config/audio_config/"
                "vision_config or text_feature_size/audio_feature_size/vision_feature_size."
            )
        encoder_configs = {m: config.encoder_config(m) for m in config.modalities}
        self.encoders = nn.ModuleDict(
            {m: build_encoder(cfg, m) for m, cfg in encoder_configs.items() if cfg is not None}
        )
        self.projections = nn.ModuleDict(
            {
                m: ModalityProjection(config, encoder_output_size(cfg) if cfg else config.feature_size(m))
                for m, cfg in encoder_configs.items()
            }
        )
        # `post_init` gathers no-split modules from direct children only; the encoders sit in a ModuleDict.
        self._no_split_modules = {
            *self._fusion_no_split_modules,
            *(b for e in self.encoders.values() for b in blocks(e)),
        }

    def post_init(self) -> None:
        super().post_init()
        frozen = [m for m in self.encoders if getattr(self.config, f"freeze_{m}_encoder")]
        if frozen:  # `freeze_encoders()` with no name freezes them all
            self.freeze_encoders(*frozen)

    # --- encoder control ------------------------------------------------------------------------------------------

    def freeze_encoders(self, *modalities: str) -> None:
        """Freeze the given encoders (all when none is named): no gradients, and dropout off even in `train()`."""
        for modality in modalities or tuple(self.encoders):
            if modality not in self.encoders:
                raise ValueError(
                    f"No {modality} encoder to freeze; this model has encoders for {list(self.encoders)}."
                )
            setattr(self.config, f"freeze_{modality}_encoder", True)
            self.encoders[modality].requires_grad_(False)
            self.encoders[modality].eval()

    def freeze_feature_encoder(self) -> None:
        """Freeze the convolutional feature encoder of a wav2vec2-style audio tower, as wav2vec2 fine-tuning does."""
        self.encoders["audio"].freeze_feature_encoder()

    def _is_frozen(self, modality: str) -> bool:
        return getattr(self.config, f"freeze_{modality}_encoder")

    def train(self, mode: bool = True) -> "MultimodalModel":
        super().train(mode)
        for modality, encoder in self.encoders.items():
            if self._is_frozen(modality):
                encoder.eval()
        return self

    # --- per-modality inputs --------------------------------------------------------------------------------------

    def _encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.encoders["text"](input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    def _encode_audio(
        self, input_values: torch.Tensor | None, input_features: torch.Tensor | None, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        encoder = self.encoders["audio"]
        if is_whisper_encoder(encoder):
            if input_features is None:
                raise ValueError("The audio encoder is Whisper: pass log-mel `input_features`, not `input_values`.")
            return whisper_encoder_forward(encoder, input_features, mask)
        if input_values is None:
            raise ValueError(
                f"The audio encoder ({encoder.config.model_type}) takes raw waveforms: pass `input_values`."
            )
        group_norm = getattr(encoder.config, "feat_extract_norm", None) == "group"
        if group_norm and tracing():  # a graph could only normalise over the padding too: wrong for padded clips
            raise ValueError(
                "This audio tower normalises over the whole input (group norm) and runs clip by clip, which a graph "
                "cannot express: export a head trained on its cached features (`gia-mic extract-features`) instead."
            )
        if group_norm and not bool(mask.all()):
            return self._encode_audio_clip_by_clip(input_values, mask)
        hidden_states = encoder(input_values, attention_mask=mask).last_hidden_state
        if hasattr(encoder, "_get_feature_vector_attention_mask"):
            return hidden_states, encoder._get_feature_vector_attention_mask(hidden_states.shape[1], mask)
        return hidden_states, hidden_states.new_ones(hidden_states.shape[:2])

    def _encode_audio_clip_by_clip(
        self, input_values: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Group-norm feature encoders (wav2vec2-base, HuBERT-base) normalise over the whole input, padding included, and
        take no attention mask: each clip of a padded batch runs on its real length, so padding changes nothing.
        """
        clips = [
            self.encoders["audio"](input_values[index : index + 1, : int(length)]).last_hidden_state[0]
            for index, length in enumerate(mask.sum(dim=1).tolist())
        ]
        hidden_states = nn.utils.rnn.pad_sequence(clips, batch_first=True)
        steps = torch.tensor([clip.shape[0] for clip in clips], device=hidden_states.device)
        feature_mask = torch.arange(hidden_states.shape[1], device=hidden_states.device)[None] < steps[:, None]
        return hidden_states, feature_mask.long()

    def _encode_frames(self, pixel_values: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        """
        Run the image encoder on the real frames only; padded frames get zero features (and are masked). A graph
        cannot size a batch by the mask's values: traced, every frame is encoded and the padded ones zeroed.
        """
        batch_size, num_frames = pixel_values.shape[:2]
        if tracing():
            pooled = pooled_frame_features(self.encoders["vision"](pixel_values=pixel_values.flatten(0, 1)))
            return (pooled * frame_mask.reshape(-1, 1).to(pooled.dtype)).view(batch_size, num_frames, -1)
        valid = frame_mask.reshape(-1).bool()
        outputs = self.encoders["vision"](pixel_values=pixel_values.flatten(0, 1)[valid])
        pooled = pooled_frame_features(outputs)
        features = pooled.new_zeros(batch_size * num_frames, pooled.shape[-1])
        features[valid] = pooled
        return features.view(batch_size, num_frames, -1)

    def _check_features(self, modality: str, features: torch.Tensor) -> None:
        if modality in self.encoders:
            expected = encoder_output_size(self.encoders[modality].config)
            source = f"the output width of this model's {modality} encoder, as `get_modality_features` gives"
        else:
            expected, source = self.config.feature_size(modality), f"`config.{modality}_feature_size`"
        if features.dim() != 3 or features.shape[-1] != expected:
            raise ValueError(
                f"`{modality}_features` must have shape (batch, length, {expected}), {source}; got "
                f"{tuple(features.shape)}."
            )

    def _modality_inputs(self, inputs: dict[str, torch.Tensor | None]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Validate the raw/feature inputs and turn each present modality into (sequence, mask) before projection."""
        provided = {name: value for name, value in inputs.items() if value is not None}
        for name, value in provided.items() if checking_values() else ():
            if value.is_floating_point() and has_non_finite(value):
                raise ValueError(f"`{name}` contains NaN or infinite values.")
            if name in MASK_NAMES and value.dtype != torch.bool and ((value != 0) & (value != 1)).any():
                found = torch.unique(value[(value != 0) & (value != 1)])[:5].tolist()
                raise ValueError(f"`{name}` must hold only 0 (padding) and 1 (content); it also holds {found}.")
        batch_sizes = {name: value.shape[0] for name, value in provided.items()}
        sizes = list(batch_sizes.values())
        if any(size != sizes[0] for size in sizes[1:]):  # not a set: sizes may be symbolic under export
            raise ValueError(f"All inputs must have the same batch size; got {batch_sizes}.")

        sequences = {}
        for modality in self.config.modalities:
            raw = self._raw_input_names(modality)
            given_raw = [name for name in raw if inputs[name] is not None]
            features, feature_mask = inputs[f"{modality}_features"], inputs[f"{modality}_feature_mask"]
            if features is not None and given_raw:
                raise ValueError(
                    f"Pass {modality} either raw ({', '.join(f'`{n}`' for n in given_raw)}) or as "
                    f"`{modality}_features`, not both."
                )
            if modality in self.encoders and given_raw:
                sequences[modality] = self._encode_raw(modality, inputs)
            elif features is not None:  # feature mode, or the output of this model's own encoder
                self._check_features(modality, features)
                mask = feature_mask if feature_mask is not None else features.new_ones(features.shape[:2])
                sequences[modality] = (features, mask)
            elif given_raw:
                raise ValueError(
                    f"This model takes {modality} as precomputed features: pass `{modality}_features` of size "
                    f"{self.config.feature_size(modality)}, not {given_raw}."
                )
        for name in self._unused_input_names(inputs):
            raise ValueError(f"`{name}` was given but this model has no {name.split('_')[0]} modality.")
        if not sequences:
            raise ValueError(
                f"No modality was given. This model takes {', '.join(self.config.modalities)}: pass at least one of "
                f"{self._accepted_inputs()}."
            )
        for modality, (_, mask) in sequences.items() if checking_values() else ():
            empty = (mask.sum(dim=1) == 0).nonzero().flatten().tolist()
            if empty:
                raise ValueError(
                    f"The {modality} input of sample(s) {empty} is empty or all padding (its mask has no valid "
                    "position); drop the modality for the whole batch or give it real content."
                )
        return sequences

    def _raw_input_names(self, modality: str) -> tuple[str, ...]:
        return {
            "text": ("input_ids",),
            "audio": ("input_values", "input_features"),
            "vision": ("pixel_values",),
        }[modality]

    def _accepted_inputs(self) -> list[str]:
        return [
            name
            for m in self.config.modalities
            for name in (self._raw_input_names(m) if m in self.encoders else (f"{m}_features",))
        ]

    def _unused_input_names(self, inputs: dict[str, torch.Tensor | None]) -> list[str]:
        absent = [m for m in ("text", "audio", "vision") if m not in self.config.modalities]
        names = [n for m in absent for n in (*self._raw_input_names(m), f"{m}_features")]
        return [name for name in names if inputs.get(name) is not None]

    def _encode_raw(self, modality: str, inputs: dict[str, torch.Tensor | None]) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self._is_frozen(modality)):
            if modality == "text":
                ids = inputs["input_ids"]
                mask = inputs["attention_mask"] if inputs["attention_mask"] is not None else torch.ones_like(ids)
                return self._encode_text(ids, mask), mask
            if modality == "audio":
                signal = inputs["input_values"] if inputs["input_values"] is not None else inputs["input_features"]
                if signal.shape[-1] == 0:
                    raise ValueError("The audio input is empty (0 samples); give a waveform of at least 0.1 s.")
                mask = inputs["audio_attention_mask"]
                if mask is None:
                    mask = signal.new_ones(signal.shape[0], signal.shape[-1], dtype=torch.long)
                if checking_values() and (mask.sum(dim=1) == 0).any():
                    empty = (mask.sum(dim=1) == 0).nonzero().flatten().tolist()
                    raise ValueError(f"`audio_attention_mask` of sample(s) {empty} is all padding.")
                return self._encode_audio(inputs["input_values"], inputs["input_features"], mask)
            pixel_values = inputs["pixel_values"]
            if pixel_values.dim() != 5:
                raise ValueError(
                    f"`pixel_values` must have shape (batch, frames, channels, height, width); got "
                    f"{tuple(pixel_values.shape)}. A single image is one frame: use `pixel_values[:, None]`."
                )
            frame_mask = inputs["frame_mask"]
            if frame_mask is None:
                frame_mask = pixel_values.new_ones(pixel_values.shape[:2], dtype=torch.long)
            if checking_values() and (frame_mask.sum(dim=1) == 0).any():
                empty = (frame_mask.sum(dim=1) == 0).nonzero().flatten().tolist()
                raise ValueError(f"`frame_mask` of sample(s) {empty} is all padding.")
            return self._encode_frames(pixel_values, frame_mask), frame_mask

    @torch.no_grad()
    def get_modality_features(self, **inputs: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """
        Per present modality, the encoder's output sequence (or the validated feature input) before projection, with
        its mask: `{"text": (features (batch, length, size), mask (batch, length)), ...}`. Takes the same keyword
        inputs as `forward`. Used to cache frozen-encoder features for feature-mode training, and to run the encoders
        once for several fusions: `forward` takes them back as `<modality>_features` / `<modality>_feature_mask`.
        """
        unknown = set(inputs) - set(MODEL_INPUT_NAMES)
        if unknown:
            raise ValueError(f"Unknown inputs {sorted(unknown)}; expected some of {MODEL_INPUT_NAMES}.")
        return self._modality_inputs({name: inputs.get(name) for name in MODEL_INPUT_NAMES})

    def _sample_presence(self, reference: torch.Tensor, present: list[str]) -> dict[str, torch.Tensor]:
        """
        Per-sample presence (1/0, in the activations' dtype) of each modality; in training, `modality_dropout` drops
        whole modalities of samples.
        """
        batch_size, device = reference.shape[0], reference.device
        keep = torch.ones(batch_size, len(present), device=device, dtype=reference.dtype)
        if self.training and self.config.modality_dropout > 0 and len(present) > 1:
            keep = (torch.rand(batch_size, len(present), device=device) >= self.config.modality_dropout).to(keep.dtype)
            none_kept = keep.sum(dim=1) == 0
            rescued = torch.randint(len(present), (batch_size,), device=device)
            keep[none_kept, rescued[none_kept]] = 1.0
        return {m: keep[:, i] for i, m in enumerate(present)}

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        input_values: torch.FloatTensor | None = None,
        input_features: torch.FloatTensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        pixel_values: torch.FloatTensor | None = None,
        frame_mask: torch.Tensor | None = None,
        text_features: torch.FloatTensor | None = None,
        text_feature_mask: torch.Tensor | None = None,
        audio_features: torch.FloatTensor | None = None,
        audio_feature_mask: torch.Tensor | None = None,
        vision_features: torch.FloatTensor | None = None,
        vision_feature_mask: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ) -> MultimodalModelOutput | tuple:
        r"""
        Any non-empty subset of modalities may be given.

        Args:
            input_ids, attention_mask: Tokenised text and its padding mask (text encoder).
            input_values: Raw waveforms (batch, samples) for wav2vec2/HuBERT/WavLM-style audio encoders.
            input_features: Log-mel features (batch, mel_bins, frames) for a Whisper audio encoder.
            audio_attention_mask: Padding mask of `input_values` (per sample) or `input_features` (per mel frame).
            pixel_values: Video frames (batch, frames, channels, height, width); `frame_mask` (batch, frames).
            text_features, audio_features, vision_features: Feature-mode inputs (batch, length, feature_size), each
                with an optional `*_feature_mask` (batch, length). For a modality this model encodes itself, its
                encoder's output (from `get_modality_features`) in place of the raw input: the encoder is skipped.
        """
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        if output_attentions is None:
            output_attentions = self.config.output_attentions
        selected = hidden_state_selection(output_hidden_states)
        if not isinstance(output_attentions, bool):
            raise ValueError(f"`output_attentions` takes True or False; got {output_attentions!r}.")
        arguments = locals()
        inputs = {name: arguments[name] for name in MODEL_INPUT_NAMES}
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        sequences = self._modality_inputs(inputs)
        if "audio" in sequences:
            sequences["audio"] = downsample_sequence(*sequences["audio"], self.config.audio_downsample)
        states = {m: self.projections[m](features) for m, (features, _) in sequences.items()}
        masks = {m: mask.to(states[m].device) for m, (_, mask) in sequences.items()}
        presence = self._sample_presence(next(iter(states.values())), list(states))
        output = self.fuse(states, masks, presence, bool(output_hidden_states), output_attentions)
        if selected is not None:
            output.hidden_states = select_layers(output.hidden_states, selected)
        return output if return_dict else output.to_tuple()

    def fuse(
        self,
        states: dict[str, torch.Tensor],
        masks: dict[str, torch.Tensor],
        presence: dict[str, torch.Tensor],
        output_hidden_states: bool,
        output_attentions: bool,
    ) -> MultimodalModelOutput:
        """
        The architecture's fusion network. `states`: each present modality's projected sequence (batch, length, d);
        `masks`: its 1/0 padding mask (batch, length); `presence`: 1/0 per sample (modality dropout).
        """
        raise NotImplementedError(f"{type(self).__name__} must define its fusion network in `fuse`.")

    def modality_lengths(self, states: dict[str, torch.Tensor], extra: int = 0) -> torch.LongTensor:
        """Length of each configured modality's sequence (plus `extra` tokens) in a joined axis, 0 if absent."""
        return torch.tensor([states[m].shape[1] + extra if m in states else 0 for m in self.config.modalities])


class MultimodalForEmotionRecognition(MultimodalPreTrainedModel):
    """
    An architecture's base model with an MLP head on its fused representation: emotion classes, or a sentiment score
    (regression). The loss is the task loss plus each auxiliary term the base model returns times its config weight
    (`auxiliary_losses`: output field -> config field), plus the terms that need the labels (`label_losses`).
    """

    base_model_class: type[MultimodalModel]
    output_class: type[MultimodalEmotionRecognitionOutput]
    auxiliary_losses: dict[str, str] = {}

    def __init__(self, config: MultimodalEmotionConfig):
        super().__init__(config)
        if config.problem_type is None:
            config.problem_type = "regression" if config.num_labels == 1 else "single_label_classification"
        if config.problem_type not in ("regression", "single_label_classification"):
            raise ValueError(
                f"{type(self).__name__} supports problem_type 'single_label_classification' or 'regression'; got "
                f"{config.problem_type!r}."
            )
        self.add_module(self.base_model_prefix, self.base_model_class(config))
        self.classifier = mlp(self.base_model.fused_size, config, config.num_labels, config.classifier_dropout)

    @property
    def loss_names(self) -> tuple[str, ...]:
        """The terms of the loss, each an output field (`Trainer` logs them)."""
        return ("classification_loss", *self.auxiliary_losses)

    def freeze_encoders(self, *modalities: str) -> None:
        self.base_model.freeze_encoders(*modalities)

    def freeze_feature_encoder(self) -> None:
        self.base_model.freeze_feature_encoder()

    def _check_labels(self, labels: torch.Tensor, batch_size: int) -> None:
        """
        Labels of the right shape, type and range: class indices (or -100, ignored), class probabilities (soft
        targets, one row per sample), or finite real targets.
        """
        if self._soft_targets(labels):
            rows = labels.sum(dim=-1)
            if labels.shape[0] != batch_size or not torch.isfinite(labels).all() or (labels < 0).any():
                raise ValueError(f"Soft `labels` must be ({batch_size}, {self.config.num_labels}) probabilities.")
            if not torch.allclose(rows, torch.ones_like(rows), atol=1e-3):
                raise ValueError(f"Each row of soft `labels` must sum to 1 (class probabilities); got {rows.tolist()}")
            return
        if labels.dim() > 2 or labels.numel() != batch_size:
            raise ValueError(f"`labels` must have shape ({batch_size},), one per sample; got {tuple(labels.shape)}.")
        if self.config.problem_type == "regression":
            if not (labels.is_floating_point() or labels.dtype in (torch.int32, torch.int64)):
                raise ValueError(f"Regression `labels` must be numbers; got dtype {labels.dtype}.")
            if labels.is_floating_point() and not torch.isfinite(labels).all():
                raise ValueError("Regression `labels` contain NaN or infinite values.")
            return
        if labels.is_floating_point() or labels.dtype == torch.bool:
            raise ValueError(f"Classification `labels` must be integer class indices; got dtype {labels.dtype}.")
        valid = (labels >= 0) & (labels < self.config.num_labels)
        if not (valid | (labels == -100)).all():
            wrong = torch.unique(labels[~valid & (labels != -100)])[:5].tolist()
            raise ValueError(
                f"`labels` must be class indices in [0, {self.config.num_labels}) (or -100 to ignore); got {wrong}."
            )
        if not valid.any():
            raise ValueError("Every label of the batch is -100 (ignored): there is nothing to compute a loss from.")

    def _soft_targets(self, labels: torch.Tensor) -> bool:
        """(batch, num_labels) floats for a classifier: a probability per class (e.g. inputs that disagree)."""
        return (
            self.config.problem_type != "regression"
            and labels.is_floating_point()
            and labels.dim() == 2
            and labels.shape[-1] == self.config.num_labels > 1
        )

    def task_loss(self, logits: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """
        Cross-entropy (with the configured class weights and smoothing) against class indices or class
        probabilities, or L1/MSE for regression.
        """
        if self.config.problem_type == "regression":
            loss_fn = nn.functional.l1_loss if self.config.regression_loss == "l1" else nn.functional.mse_loss
            return loss_fn(logits.squeeze(-1).float(), labels.float().view(-1), reduction=reduction)
        weight = None
        if self.config.class_weights is not None:
            weight = torch.tensor(self.config.class_weights, dtype=torch.float, device=logits.device)
        return nn.functional.cross_entropy(
            logits.float(),
            labels.float() if self._soft_targets(labels) else labels.long().view(-1),
            weight=weight,
            label_smoothing=self.config.label_smoothing,
            reduction=reduction,
        )

    def label_losses(self, outputs: MultimodalModelOutput, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Auxiliary terms that need the labels, by output field (none by default)."""
        return {}

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        input_values: torch.FloatTensor | None = None,
        input_features: torch.FloatTensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        pixel_values: torch.FloatTensor | None = None,
        frame_mask: torch.Tensor | None = None,
        text_features: torch.FloatTensor | None = None,
        text_feature_mask: torch.Tensor | None = None,
        audio_features: torch.FloatTensor | None = None,
        audio_feature_mask: torch.Tensor | None = None,
        vision_features: torch.FloatTensor | None = None,
        vision_feature_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ) -> MultimodalEmotionRecognitionOutput | tuple:
        r"""
        labels (`torch.Tensor` of shape `(batch_size,)`, *optional*):
            Class indices in `[0, num_labels)`, class probabilities of shape `(batch_size, num_labels)` (soft
            targets), or real-valued targets for `problem_type="regression"`.
        Other arguments: see [`MultimodalModel.forward`].
        """
        arguments = locals()
        inputs = {name: arguments[name] for name in MODEL_INPUT_NAMES}
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        outputs = self.base_model(
            **inputs, output_hidden_states=output_hidden_states, output_attentions=output_attentions, return_dict=True
        )
        logits = self.classifier(outputs.fused_embedding)
        losses = {}
        if labels is not None:
            if checking_values():
                self._check_labels(labels, logits.shape[0])
            losses = {"classification_loss": self.task_loss(logits, labels), **self.label_losses(outputs, labels)}
            terms = {**{name: outputs[name] for name in self.auxiliary_losses if name in outputs}, **losses}
            weights = {name: getattr(self.config, weight) for name, weight in self.auxiliary_losses.items()}
            losses["loss"] = sum(weights.get(name, 1.0) * value for name, value in terms.items())
        carried = {name: value for name, value in outputs.items() if name != "fused_embedding"}
        output = self.output_class(logits=logits, **losses, **carried)
        return output if return_dict else output.to_tuple()


__all__ = [
    "MultimodalAttention",
    "MultimodalEmotionRecognitionOutput",
    "MultimodalForEmotionRecognition",
    "MultimodalModel",
    "MultimodalModelOutput",
    "MultimodalPreTrainedModel",
    "split_modalities",
]
