"""The configuration every fusion architecture of this package shares: modalities, encoders, widths, regularisation."""

import copy
import math
from dataclasses import fields
from typing import Literal

from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

# Registers the "mini_xception" face tower with AutoConfig, so a vision_config of that type resolves (also as remote
# code: this relative import makes the file travel with every saved model).
from .configuration_mini_xception import MiniXceptionConfig  # noqa: F401


MODALITIES = ("text", "audio", "vision")
REGRESSION_LOSSES = ("l1", "mse")
CUSTOM_PIPELINES = {
    "multimodal-emotion-recognition": {
        "impl": "pipeline_gia_mic.MultimodalEmotionRecognitionPipeline",
        "pt": ["AutoModelForAudioClassification"],
        "type": "multimodal",
    }
}


class MultimodalEmotionConfig(PreTrainedConfig):
    r"""
    The fields GIA-MIC, MCIHN and MIAR share: which modalities the model takes and how (an encoder or precomputed
    features), the front end's widths and regularisation, and the task loss. Each architecture's config adds the
    fields of its own fusion network.

    Each modality (`text`, `audio`, `vision`) is configured in one of two ways:
    - an encoder sub-config (`text_config`, `audio_config`, `vision_config`, any Hugging Face model config, built
      with `AutoModel.from_config`), or
    - a feature size (`text_feature_size`, ...) for *feature mode*: precomputed features of shape (batch, length,
      feature_size), e.g. MOSI's BERT/COVAREP/Facet features or cached frozen-encoder features.
    A modality configured by neither is not part of the model.

    Args:
        text_config, audio_config, vision_config (`dict` or `PreTrainedConfig`, *optional*):
            Encoder configs. Encoder-decoder audio models (Whisper) contribute their encoder only; image models run
            on every video frame and contribute their pooled output per frame.
        text_feature_size, audio_feature_size, vision_feature_size (`int`, *optional*):
            Feature-mode input sizes, used for modalities without an encoder config.
        hidden_size (`int`, defaults to 256): Width `d` of the projections and the fusion network.
        num_attention_heads (`int`, defaults to 4): Heads of every attention of the fusion network.
        intermediate_size (`int`, defaults to 1024): Width of the feed-forward blocks.
        hidden_act (`str`, defaults to `"gelu"`): Activation of the feed-forward blocks and MLPs.
        hidden_dropout (`float`, defaults to 0.1): Dropout on projections, residual branches and feed-forward outputs.
        attention_dropout (`float`, defaults to 0.1): Dropout on attention probabilities.
        classifier_dropout (`float`, defaults to 0.1): Dropout inside the classification head.
        layer_norm_eps (`float`, defaults to 1e-5): Epsilon of every LayerNorm.
        initializer_range (`float`, defaults to 0.02): Std of the normal initialisation of the fusion network.
        modality_dropout (`float`, defaults to 0.0):
            Training-time probability of dropping a whole modality of a sample (at least one modality is kept).
        freeze_text_encoder, freeze_audio_encoder, freeze_vision_encoder (`bool`, defaults to `False`):
            Keep that encoder's weights fixed (no gradient, eval-mode dropout).
        validate_inputs (`bool`, defaults to `False`):
            Also check the values of the inputs and labels in the model (NaN, masks of 0/1 with a valid position per
            sample, label ranges), with a clear error. Each such check waits for the device (a GPU stall), so by
            default they run where the data is on the host: `MultimodalCollator` and the processor.
        audio_downsample (`int`, defaults to 1): Average every k audio steps (masked) before the fusion network;
            speech encoders emit 50 steps/s, and the fusion's cost grows with the square of the length.
        label_smoothing (`float`, defaults to 0.0): Label smoothing of the cross-entropy loss.
        class_weights (`list[float]`, *optional*): Per-class weights of the cross-entropy loss.
        regression_loss (`str`, defaults to `"l1"`): `"l1"` or `"mse"`, for `problem_type="regression"`.
        temperatures (`dict[str, float]`, *optional*): Temperature scaling of the class logits for each set of
            inputs given, keyed by the modalities joined with "+" in `modalities`' order (`"audio"`,
            `"text+audio+vision"`): the logits are divided by it, so that the probabilities are calibrated. Fitted on
            validation data after training (`gia-mic train`, `gia_mic.calibration`); a set without one keeps 1.
        uncertain_below (`float`, *optional*): An answer whose top probability is under it is "not sure" (the
            pipeline's `uncertain`): chosen on validation data after calibration, as the top probability under which
            the answers were right less than half the time.
        target_prior (`dict[str, float]`, *optional*): The class frequencies the model is meant for, by label name
            (e.g. conversation's: mostly neutral). With it, the class logits are corrected from `training_prior` to
            it (logit adjustment, Menon et al. 2021: `log(target_prior) - log(training_prior)` is added), so that a
            model that learned from a class-balanced sample answers with the world's priors. The loss is computed
            before the correction: the model keeps learning the balanced sample.
        training_prior (`dict[str, float]`, *optional*): The class frequencies of the sample the model learned from,
            by label name, after the loss's class weights (`gia-mic train` records them); uniform when only
            `target_prior` is given (a class-balanced sample). Both priors are normalised to sum to 1.
    """

    sub_configs_defaults = {
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="bert", optional=True),
        "audio_config": SubConfigSpec(config_class=AutoConfig, model_type="wav2vec2", optional=True),
        "vision_config": SubConfigSpec(config_class=AutoConfig, model_type="vit", optional=True),
    }
    # Where the Auto classes find this architecture's code in a saved folder (`register_architecture` sets it).
    remote_code = {}

    text_config: dict | PreTrainedConfig | None = None
    audio_config: dict | PreTrainedConfig | None = None
    vision_config: dict | PreTrainedConfig | None = None
    text_feature_size: int | None = None
    audio_feature_size: int | None = None
    vision_feature_size: int | None = None
    hidden_size: int = 256
    num_attention_heads: int = 4
    intermediate_size: int = 1024
    hidden_act: str = "gelu"
    hidden_dropout: float = 0.1
    attention_dropout: float = 0.1
    classifier_dropout: float = 0.1
    layer_norm_eps: float = 1e-5
    initializer_range: float = 0.02
    modality_dropout: float = 0.0
    freeze_text_encoder: bool = False
    freeze_audio_encoder: bool = False
    freeze_vision_encoder: bool = False
    validate_inputs: bool = False
    audio_downsample: int = 1
    label_smoothing: float = 0.0
    class_weights: list[float] | None = None
    regression_loss: Literal["l1", "mse"] = "l1"
    temperatures: dict[str, float] | None = None
    uncertain_below: float | None = None
    target_prior: dict[str, float] | None = None
    training_prior: dict[str, float] | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if getattr(self, "auto_map", None) is None:
            # Every saved config points the Auto classes at the remote code that travels with it.
            self.auto_map = dict(self.remote_code)
        if getattr(self, "custom_pipelines", None) is None:
            # ... and `pipeline("multimodal-emotion-recognition", ...)` at the pipeline saved with the model.
            self.custom_pipelines = copy.deepcopy(CUSTOM_PIPELINES)
        if self.num_labels < 1:
            raise ValueError(f"`num_labels` must be at least 1 (1 for regression); got {self.num_labels}.")
        self._check_choice("regression_loss", REGRESSION_LOSSES)
        self._check_divisible("hidden_size", self.hidden_size)
        if self.audio_downsample < 1:
            raise ValueError(f"`audio_downsample` must be a positive integer, got {self.audio_downsample}.")
        if not 0.0 <= self.modality_dropout < 1.0:
            raise ValueError(f"`modality_dropout` must lie in [0, 1), got {self.modality_dropout}.")
        if self.temperatures is not None:
            self.temperatures = self._ordered_temperatures(self.temperatures)
        threshold = self.uncertain_below
        if threshold is not None and (
            isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 <= threshold <= 1
        ):
            raise ValueError(f"`uncertain_below` must be a probability in [0, 1]; got {self.uncertain_below!r}.")
        if self.class_weights is not None and len(self.class_weights) != self.num_labels:
            raise ValueError(
                f"`class_weights` has {len(self.class_weights)} entries but the model has {self.num_labels} labels."
            )
        for field in ("target_prior", "training_prior"):
            if getattr(self, field) is not None:
                setattr(self, field, self._normalised_prior(field))
        if self.training_prior is not None and self.target_prior is None:
            raise ValueError("`training_prior` is set without `target_prior`: give the priors to correct to.")

    def _normalised_prior(self, field: str) -> dict[str, float]:
        """A class frequency for each label name (in label order), summing to 1; anything else is one clear error."""
        prior, names = getattr(self, field), [self.id2label[i] for i in range(self.num_labels)]
        if self.num_labels < 2 or not isinstance(prior, dict) or set(prior) != set(names):
            raise ValueError(f"`{field}` = {prior!r}: expected a frequency for each label of {names}.")
        for name in names:
            value = prior[name]
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not (math.isfinite(value) and value > 0)
            ):
                raise ValueError(f"`{field}[{name!r}]` = {value!r}: expected a positive frequency.")
        total = sum(prior.values())
        return {name: prior[name] / total for name in names}

    def _ordered_temperatures(self, temperatures: dict) -> dict[str, float]:
        """Each key rewritten as its modalities in `modalities`' order (what the head looks up); values checked."""
        ordered = {}
        for key, value in temperatures.items():
            given = key.split("+")
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            if set(given) - set(self.modalities) or len(set(given)) != len(given) or not numeric:
                raise ValueError(
                    f"`temperatures[{key!r}]` = {value!r}: expected a positive number for a set of {self.modalities}."
                )
            name = "+".join(m for m in self.modalities if m in given)
            if not (math.isfinite(value) and value > 0) or name in ordered:
                raise ValueError(f"`temperatures[{key!r}]` = {value!r}: a positive number, once for each set.")
            ordered[name] = float(value)
        return ordered

    def _check_choice(self, field: str, choices: tuple[str, ...]) -> None:
        value = getattr(self, field)
        if value not in choices:
            raise ValueError(f"`{field}` must be one of {choices}, got {value!r}.")

    def _check_divisible(self, field: str, width: int) -> None:
        """Attention over `width` channels splits them evenly between the heads."""
        if width % self.num_attention_heads:
            raise ValueError(
                f"`{field}` ({width}) must be divisible by `num_attention_heads` ({self.num_attention_heads})."
            )

    @classmethod
    def model_fields(cls) -> list[str]:
        """The fields this package's configs declare (the front end's and the architecture's), in order."""
        common = {f.name for f in fields(PreTrainedConfig)}
        return [f.name for f in fields(cls) if f.init and f.name not in common]

    @property
    def modalities(self) -> tuple[str, ...]:
        """The modalities this model takes, each with an encoder config or a feature size, in a fixed order."""
        return tuple(
            m for m in MODALITIES if getattr(self, f"{m}_config") is not None or self.feature_size(m) is not None
        )

    @property
    def modality_pairs(self) -> tuple[tuple[str, str], ...]:
        """Ordered pairs (query, key) of configured modalities: the directions of the cross-modal interactions."""
        return tuple((a, b) for a in self.modalities for b in self.modalities if a != b)

    def feature_size(self, modality: str) -> int | None:
        return getattr(self, f"{modality}_feature_size")

    def encoder_config(self, modality: str) -> PreTrainedConfig | None:
        return getattr(self, f"{modality}_config")


__all__ = ["MultimodalEmotionConfig"]
