"""GIA-MIC: multimodal emotion recognition with gated interactive attention and modality-invariant learning.

This folder is also the remote code that travels with every saved model: its modules use relative imports only and
import nothing beyond torch and transformers (reading a video file imports PyAV when used).
"""

from transformers import AutoConfig, AutoModel, AutoModelForAudioClassification, AutoProcessor

from .configuration_gia_mic import GiaMicConfig
from .configuration_mini_xception import MiniXceptionConfig
from .modeling_gia_mic import (
    GatedInteractiveAttention,
    GiaMicEmotionRecognitionOutput,
    GiaMicForEmotionRecognition,
    GiaMicModel,
    GiaMicModelOutput,
    GiaMicPreTrainedModel,
    ModalityInvariantGenerator,
    split_modalities,
)
from .modeling_mini_xception import MiniXceptionForImageClassification, MiniXceptionModel
from .processing_gia_mic import GiaMicProcessor, read_video_frames


AutoConfig.register(GiaMicConfig.model_type, GiaMicConfig)
AutoModel.register(GiaMicConfig, GiaMicModel)
AutoModelForAudioClassification.register(GiaMicConfig, GiaMicForEmotionRecognition)
AutoProcessor.register(GiaMicConfig, GiaMicProcessor)


__all__ = [
    "GatedInteractiveAttention",
    "GiaMicConfig",
    "GiaMicEmotionRecognitionOutput",
    "GiaMicForEmotionRecognition",
    "GiaMicModel",
    "GiaMicModelOutput",
    "GiaMicPreTrainedModel",
    "GiaMicProcessor",
    "MiniXceptionConfig",
    "MiniXceptionForImageClassification",
    "MiniXceptionModel",
    "ModalityInvariantGenerator",
    "read_video_frames",
    "split_modalities",
]
