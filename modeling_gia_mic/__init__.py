"""Multimodal emotion recognition in three architectures sharing one front end: GIA-MIC, MCIHN and MIAR.

This folder is also the remote code that travels with every saved model: its modules use relative imports only and
import nothing beyond torch and transformers (reading a video file imports PyAV when used).
"""

from transformers import AutoModelForAudioClassification
from transformers.pipelines import PIPELINE_REGISTRY

from .attention_recording import split_modalities
from .configuration_gia_mic import GiaMicConfig
from .configuration_mcihn import McihnConfig
from .configuration_miar import MiarConfig
from .configuration_mini_xception import MiniXceptionConfig
from .configuration_multimodal import MultimodalEmotionConfig
from .modeling_gia_mic import (
    GatedInteractiveAttention,
    GiaMicEmotionRecognitionOutput,
    GiaMicForEmotionRecognition,
    GiaMicModel,
    GiaMicModelOutput,
    ModalityInvariantGenerator,
)
from .modeling_head import MultimodalForEmotionRecognition
from .modeling_mcihn import (
    AdversarialAutoencoder,
    CrossModalGateMechanism,
    FeatureFusionModule,
    McihnEmotionRecognitionOutput,
    McihnForEmotionRecognition,
    McihnModel,
    McihnModelOutput,
)
from .modeling_miar import (
    ContrastiveAlignment,
    MiarEmotionRecognitionOutput,
    MiarForEmotionRecognition,
    MiarModel,
    MiarModelOutput,
    ModalityInteraction,
)
from .modeling_mini_xception import MiniXceptionForImageClassification, MiniXceptionModel
from .modeling_multimodal import MultimodalModel, MultimodalPreTrainedModel
from .pipeline_gia_mic import TASK, MultimodalEmotionRecognitionPipeline, SpeechRecognizer
from .processing_gia_mic import GiaMicProcessor, read_video_frames
from .recording_gia_mic import RecordingError, SegmentationOptions, VoiceActivityDetector
from .speakers_gia_mic import DiarizationOptions, SpeakerEncoder


# The three architectures: `--architecture NAME` in the CLI, and the classes it builds.
ARCHITECTURES = {
    GiaMicConfig.model_type: GiaMicForEmotionRecognition,
    McihnConfig.model_type: McihnForEmotionRecognition,
    MiarConfig.model_type: MiarForEmotionRecognition,
}

PIPELINE_REGISTRY.register_pipeline(
    TASK,
    pipeline_class=MultimodalEmotionRecognitionPipeline,
    pt_model=AutoModelForAudioClassification,
    type="multimodal",
)


__all__ = [
    "ARCHITECTURES",
    "AdversarialAutoencoder",
    "ContrastiveAlignment",
    "CrossModalGateMechanism",
    "DiarizationOptions",
    "FeatureFusionModule",
    "GatedInteractiveAttention",
    "GiaMicConfig",
    "GiaMicEmotionRecognitionOutput",
    "GiaMicForEmotionRecognition",
    "GiaMicModel",
    "GiaMicModelOutput",
    "GiaMicProcessor",
    "McihnConfig",
    "McihnEmotionRecognitionOutput",
    "McihnForEmotionRecognition",
    "McihnModel",
    "McihnModelOutput",
    "MiarConfig",
    "MiarEmotionRecognitionOutput",
    "MiarForEmotionRecognition",
    "MiarModel",
    "MiarModelOutput",
    "MiniXceptionConfig",
    "MiniXceptionForImageClassification",
    "MiniXceptionModel",
    "ModalityInteraction",
    "ModalityInvariantGenerator",
    "MultimodalEmotionConfig",
    "MultimodalEmotionRecognitionPipeline",
    "MultimodalForEmotionRecognition",
    "MultimodalModel",
    "MultimodalPreTrainedModel",
    "RecordingError",
    "SegmentationOptions",
    "SpeakerEncoder",
    "SpeechRecognizer",
    "VoiceActivityDetector",
    "read_video_frames",
    "split_modalities",
]
