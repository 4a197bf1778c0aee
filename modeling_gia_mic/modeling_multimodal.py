"""
The front end GIA-MIC, MCIHN and MIAR share: the `PreTrainedModel` base (initialisation, assembly from pretrained
encoders) and `MultimodalModel`, which takes each modality raw (through its encoder family) or as features, projects
it, sets per-sample presence (modality dropout) and hands the sequences to the architecture's fusion network (`fuse`).
"""

import math
import os

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.dynamic_module_utils import custom_object_save

from .configuration_multimodal import MultimodalEmotionConfig
from .inputs_multimodal import MODALITY_INPUTS, MODEL_INPUT_NAMES, model_inputs
from .modeling_encoders import encoder_family, load_pretrained_encoder, unsplittable_blocks
from .modeling_layers import ModalityProjection, downsample_sequence
from .modeling_outputs import MultimodalModelOutput
from .validation_multimodal import check_input_values


Inputs = dict[str, torch.Tensor | None]


def tracing() -> bool:
    """Whether the model is being traced into a graph (`torch.export`, `torch.compile`, ONNX export)."""
    return torch.compiler.is_compiling() or torch.compiler.is_exporting()


def first_input_name(config: MultimodalEmotionConfig) -> str:
    """The name of the first input a model of this configuration takes (raw through its encoder, or features)."""
    if not config.modalities:
        return MODEL_INPUT_NAMES[0]
    modality = config.modalities[0]
    encoder_config = config.encoder_config(modality)
    if encoder_config is None:
        return MODALITY_INPUTS[modality].features.name
    return encoder_family(encoder_config, modality).input.name


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


def select_layers(hidden_states: tuple[torch.Tensor, ...], selected: list[int]) -> tuple[torch.Tensor | None, ...]:
    """
    A `hidden_states` tuple with only the chosen entries kept, the others None (transformers' form: an entry's index
    stays its layer's); indices out of range select nothing.
    """
    count = len(hidden_states)
    kept = {i % count for i in selected if -count <= i < count}
    return tuple(state if i in kept else None for i, state in enumerate(hidden_states))


class MultimodalPreTrainedModel(PreTrainedModel):
    """What the three architectures' models share as `PreTrainedModel`s: initialisation, inputs, assembly."""

    config: MultimodalEmotionConfig
    main_input_name = MODEL_INPUT_NAMES[0]
    input_modalities = ("text", "audio", "video")
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_attention_backend = True
    accepts_loss_kwargs = False

    def __init__(self, config: MultimodalEmotionConfig, *args, **kwargs):
        super().__init__(config, *args, **kwargs)
        # The class names `forward`'s first argument; an instance names the first input its configuration takes, which
        # `Trainer` reads for `include_for_metrics=["inputs"]` (a feature-mode model has no `input_ids`).
        self.main_input_name = first_input_name(config)

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
        which for GIA-MIC names `GatedInteractiveAttention` but keeps its attention in `modeling_attention.py`.)
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
    The shared front end: encoders (or feature inputs) -> projections -> per-sample presence, then the architecture's
    fusion network (`fuse`). Subclasses build their fusion modules after `super().__init__` and then call
    `post_init()`; they set `fused_size`, the width of the `fused_embedding` the head reads.

    Checks that read tensor values (NaN, mask contents, empty samples) run only with `config.validate_inputs`: each
    one stalls a GPU until the device catches up. The collator runs them on the host instead.
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
        self.encoder_families = {m: encoder_family(c, m) for m, c in encoder_configs.items() if c is not None}
        self.encoders = nn.ModuleDict({m: f.build(encoder_configs[m]) for m, f in self.encoder_families.items()})
        self.projections = nn.ModuleDict(
            {m: ModalityProjection(config, self.input_size(m)) for m in config.modalities}
        )
        # `post_init` gathers no-split modules from direct children only; the encoders sit in a ModuleDict.
        self._no_split_modules = {
            *self._fusion_no_split_modules,
            *(block for encoder in self.encoders.values() for block in unsplittable_blocks(encoder)),
        }

    def input_size(self, modality: str) -> int:
        """Width of a modality's sequence before projection: its encoder's output, or its feature size."""
        if modality in self.encoder_families:
            return self.encoder_families[modality].output_size(self.config.encoder_config(modality))
        return self.config.feature_size(modality)

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

    def _check_features(self, modality: str, features: torch.Tensor) -> None:
        expected = self.input_size(modality)
        if modality in self.encoders:
            source = f"the output width of this model's {modality} encoder, as `get_modality_features` gives"
        else:
            source = f"`config.{modality}_feature_size`"
        if features.dim() != 3 or features.shape[-1] != expected:
            raise ValueError(
                f"`{modality}_features` must have shape (batch, length, {expected}), {source}; got "
                f"{tuple(features.shape)}."
            )

    def _modality_inputs(self, inputs: Inputs) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Check the raw/feature inputs and turn each present modality into (sequence, mask) before projection."""
        provided = {name: value for name, value in inputs.items() if value is not None}
        if self.config.validate_inputs and not tracing():
            check_input_values(provided)
        batch_sizes = {name: value.shape[0] for name, value in provided.items()}
        sizes = list(batch_sizes.values())
        if any(size != sizes[0] for size in sizes[1:]):  # not a set: sizes may be symbolic under export
            raise ValueError(f"All inputs must have the same batch size; got {batch_sizes}.")
        sequences = {}
        for modality in self.config.modalities:
            names = MODALITY_INPUTS[modality]
            given_raw = [name for name in names.raw_names if name in provided]
            features = provided.get(names.features.name)
            if features is not None and given_raw:
                raise ValueError(
                    f"Pass {modality} either raw ({', '.join(f'`{n}`' for n in given_raw)}) or as "
                    f"`{names.features.name}`, not both."
                )
            if modality in self.encoders and given_raw:
                with torch.set_grad_enabled(torch.is_grad_enabled() and not self._is_frozen(modality)):
                    sequences[modality] = self.encoder_families[modality].encode(self.encoders[modality], provided)
            elif features is not None:  # feature mode, or the output of this model's own encoder
                self._check_features(modality, features)
                mask = provided.get(names.features.mask)
                sequences[modality] = (features, mask if mask is not None else features.new_ones(features.shape[:2]))
            elif given_raw:
                raise ValueError(
                    f"This model takes {modality} as precomputed features: pass `{names.features.name}` of size "
                    f"{self.config.feature_size(modality)}, not {given_raw}."
                )
        for modality in (m for m in MODALITY_INPUTS if m not in self.config.modalities):
            for name in (*MODALITY_INPUTS[modality].raw_names, MODALITY_INPUTS[modality].features.name):
                if name in provided:
                    raise ValueError(f"`{name}` was given but this model has no {modality} modality.")
        if not sequences:
            accepted = [
                self.encoder_families[m].input.name if m in self.encoders else MODALITY_INPUTS[m].features.name
                for m in self.config.modalities
            ]
            raise ValueError(
                f"No modality was given. This model takes {', '.join(self.config.modalities)}: pass at least one of "
                f"{accepted}."
            )
        return sequences

    @torch.no_grad()
    def get_modality_features(self, **inputs: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """
        Per present modality, the encoder's output sequence (or the checked feature input) before projection, with
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
        whole modalities of samples, and a sample left with none gets one of its modalities back at random.
        """
        batch_size, device = reference.shape[0], reference.device
        keep = torch.ones(batch_size, len(present), device=device, dtype=reference.dtype)
        if self.training and self.config.modality_dropout > 0 and len(present) > 1:
            keep = (torch.rand(batch_size, len(present), device=device) >= self.config.modality_dropout).to(keep.dtype)
            choice = torch.randint(len(present), (batch_size, 1), device=device)  # (one_hot reads its values)
            rescued = (torch.arange(len(present), device=device) == choice).to(keep.dtype)
            keep = torch.where(keep.sum(dim=1, keepdim=True) == 0, rescued, keep)
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
        inputs = model_inputs(locals())  # first: the comprehensions below must not make cells of unset locals
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        if output_attentions is None:
            output_attentions = self.config.output_attentions
        selected = hidden_state_selection(output_hidden_states)
        if not isinstance(output_attentions, bool):
            raise ValueError(f"`output_attentions` takes True or False; got {output_attentions!r}.")
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        output = self.encode_and_fuse(inputs, bool(output_hidden_states), output_attentions)
        if selected is not None:
            output.hidden_states = select_layers(output.hidden_states, selected)
        return output if return_dict else output.to_tuple()

    def encode_and_fuse(
        self, inputs: Inputs, output_hidden_states: bool, output_attentions: bool
    ) -> MultimodalModelOutput:
        """Each given modality encoded (or taken as features), downsampled (audio), projected, then fused."""
        sequences = self._modality_inputs(inputs)
        if "audio" in sequences:
            sequences["audio"] = downsample_sequence(*sequences["audio"], self.config.audio_downsample)
        states = {m: self.projections[m](features) for m, (features, _) in sequences.items()}
        masks = {m: mask.to(states[m].device) for m, (_, mask) in sequences.items()}
        presence = self._sample_presence(next(iter(states.values())), list(states))
        return self.fuse(states, masks, presence, output_hidden_states, output_attentions)

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


__all__ = ["MultimodalModel", "MultimodalPreTrainedModel"]
