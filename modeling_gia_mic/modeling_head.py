"""
The emotion-recognition head the three architectures share: an MLP on the base model's fused representation, the task
loss (cross-entropy on class indices or class probabilities, or L1/MSE for a score), and the loss helpers their
auxiliary terms use. Each architecture's class builds its base model under its own name and writes its loss out.
"""

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, AutoModelForAudioClassification, AutoProcessor
from transformers import initialization as init

from .configuration_multimodal import MultimodalEmotionConfig
from .inputs_multimodal import given_modalities, model_inputs
from .modeling_layers import mlp
from .modeling_multimodal import MultimodalModel, MultimodalPreTrainedModel, tracing
from .modeling_outputs import MultimodalEmotionRecognitionOutput, MultimodalModelOutput
from .processing_gia_mic import GiaMicProcessor
from .validation_multimodal import check_label_shape, check_label_values, is_soft_target


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


def logit_adjustment(config: MultimodalEmotionConfig) -> torch.Tensor:
    """`log(target_prior) - log(training_prior)` per class (uniform `training_prior` when the config has none)."""
    names = [config.id2label[i] for i in range(config.num_labels)]
    target = torch.tensor([config.target_prior[name] for name in names], dtype=torch.float64)
    training = config.training_prior
    learned = torch.tensor([training[name] for name in names], dtype=torch.float64) if training else 1 / len(names)
    return (target.log() - torch.as_tensor(learned).log()).float()


def emotion_classifier(config: MultimodalEmotionConfig, fused_size: int) -> nn.Sequential:
    """The head: a 2-layer MLP from the fused representation to the class scores (or the score)."""
    return mlp(fused_size, config, config.num_labels, config.classifier_dropout)


class MultimodalForEmotionRecognition(MultimodalPreTrainedModel):
    """
    An architecture's base model with an MLP head on its fused representation: emotion classes, or a sentiment score
    (regression). Each architecture sets `self.<base_model_prefix>` and `self.classifier` in its `__init__` and
    defines `compute_loss`, the paper's loss term by term; `loss_names` lists the terms (`Trainer` logs them).
    """

    base_model_class: type[MultimodalModel]
    output_class: type[MultimodalEmotionRecognitionOutput]
    loss_names: tuple[str, ...] = ("classification_loss",)

    def __init__(self, config: MultimodalEmotionConfig):
        super().__init__(config)
        if config.problem_type is None:
            config.problem_type = "regression" if config.num_labels == 1 else "single_label_classification"
        if config.problem_type not in ("regression", "single_label_classification"):
            raise ValueError(
                f"{type(self).__name__} supports problem_type 'single_label_classification' or 'regression'; got "
                f"{config.problem_type!r}."
            )
        if config.class_weights is not None:
            self.register_buffer("class_weights", torch.tensor(config.class_weights), persistent=False)
        if config.target_prior is not None:
            self.register_buffer("logit_adjustment", logit_adjustment(config), persistent=False)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Also the class weights and the logit adjustment: buffers from the config (no checkpoint holds them)."""
        super()._init_weights(module)
        if module is self and self.config.class_weights is not None:
            init.copy_(self.class_weights, torch.tensor(self.config.class_weights, dtype=self.class_weights.dtype))
        if module is self and self.config.target_prior is not None:
            init.copy_(self.logit_adjustment, logit_adjustment(self.config).to(self.logit_adjustment.dtype))

    @property
    def regression(self) -> bool:
        return self.config.problem_type == "regression"

    def freeze_encoders(self, *modalities: str) -> None:
        self.base_model.freeze_encoders(*modalities)

    def freeze_feature_encoder(self) -> None:
        self.base_model.freeze_feature_encoder()

    def task_loss(self, logits: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """
        Cross-entropy (with the configured class weights and smoothing) against class indices or class
        probabilities, or L1/MSE for regression.
        """
        if self.regression:
            loss_fn = nn.functional.l1_loss if self.config.regression_loss == "l1" else nn.functional.mse_loss
            return loss_fn(logits.squeeze(-1).float(), labels.float().view(-1), reduction=reduction)
        soft = is_soft_target(labels, self.config.num_labels, self.regression)
        return nn.functional.cross_entropy(
            logits.float(),
            labels.float() if soft else labels.long().view(-1),
            weight=self.class_weights.float() if self.config.class_weights is not None else None,
            label_smoothing=self.config.label_smoothing,
            reduction=reduction,
        )

    def temperature(self, given: tuple[str, ...]) -> float:
        """The calibration temperature of the set of inputs given (`config.temperatures`; 1 where it has none)."""
        key = "+".join(m for m in self.config.modalities if m in given)
        return float((self.config.temperatures or {}).get(key, 1.0))

    def compute_loss(
        self, outputs: MultimodalModelOutput, logits: torch.Tensor, labels: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """`loss` and each term of it named in `loss_names`, as output fields."""
        raise NotImplementedError(f"{type(self).__name__} must define its loss in `compute_loss`.")

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
        inputs = model_inputs(locals())
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        outputs = self.base_model(
            **inputs, output_hidden_states=output_hidden_states, output_attentions=output_attentions, return_dict=True
        )
        logits = self.classifier(outputs.fused_embedding)
        if not self.regression:
            logits = logits / self.temperature(given_modalities(inputs))
        losses = {}
        if labels is not None:
            check_label_shape(labels, logits.shape[0], self.config.num_labels, self.regression)
            if self.config.validate_inputs and not tracing():
                check_label_values(labels, self.config.num_labels, self.regression)
            losses = self.compute_loss(outputs, logits, labels)
        if self.config.target_prior is not None and not self.regression:
            logits = logits + self.logit_adjustment
        carried = {name: value for name, value in outputs.items() if name != "fused_embedding"}
        output = self.output_class(logits=logits, **{**carried, **losses})
        return output if return_dict else output.to_tuple()


def register_architecture(head: type[MultimodalForEmotionRecognition]) -> None:
    """
    The one registration of an architecture, run where its modeling file is imported (this package, or a saved
    folder's remote code): the Auto classes resolve its `model_type` to its classes in this process, and every config
    of it names them in `auto_map`, so that a saved folder loads with `trust_remote_code=True` and `save_pretrained`
    copies the code files beside the weights.
    """
    config_class, base = head.config_class, head.base_model_class
    autos = {"AutoConfig": config_class, "AutoModel": base, "AutoModelForAudioClassification": head}
    for auto_class, registered in autos.items():
        registered.register_for_auto_class(auto_class)
    config_class.remote_code = {
        auto_class: f"{registered.__module__.rsplit('.', 1)[-1]}.{registered.__name__}"
        for auto_class, registered in autos.items()
    }
    AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
    AutoModel.register(config_class, base, exist_ok=True)
    AutoModelForAudioClassification.register(config_class, head, exist_ok=True)
    AutoProcessor.register(config_class, GiaMicProcessor, exist_ok=True)


__all__ = ["MultimodalForEmotionRecognition", "register_architecture"]
