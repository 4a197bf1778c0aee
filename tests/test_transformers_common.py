"""
transformers' own common model and config tests (`ModelTesterMixin`, `ConfigTester`, vendored in
`transformers_common/` from the sdist of the release the project pins), run as transformers runs them on its models:
for each architecture, in feature mode and in raw mode (BERT, wav2vec2 and ViT towers inside). A skip names the
transformers model that skips the same test for the same reason.
"""

import unittest
from unittest import mock

import pytest
import torch
from conftest import ARCHITECTURE_FIELDS, FEATURE_SIZES, FUSION, TINY_AUDIO, TINY_TEXT, TINY_VISION
from transformers.models.auto.modeling_auto import MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING_NAMES, MODEL_MAPPING_NAMES
from transformers_common.configuration_common import ConfigTester
from transformers_common.modeling_common import ModelTesterMixin, floats_tensor, ids_tensor

from modeling_gia_mic import ARCHITECTURES


LENGTHS = {"text": 6, "audio": 11, "vision": 4}
LAYER_FIELDS = {"gia_mic": "num_gia_layers", "mcihn": "num_fusion_layers", "miar": "num_interaction_layers"}


class MultimodalModelTester:
    """Tiny configs and inputs of one architecture in one mode, as a transformers model tester provides them."""

    def __init__(self, parent, architecture: str, mode: str, batch_size: int = 3):
        self.parent = parent
        self.architecture = architecture
        self.mode = mode
        self.batch_size = batch_size
        self.is_training = True
        self.hidden_size = FUSION["hidden_size"]
        self.num_attention_heads = FUSION["num_attention_heads"]
        self.num_hidden_layers = ARCHITECTURE_FIELDS[architecture][LAYER_FIELDS[architecture]]

    def config_fields(self) -> dict:
        if self.mode == "features":
            inputs = dict(FEATURE_SIZES)
        else:
            inputs = {
                "text_config": dict(TINY_TEXT),
                "audio_config": dict(TINY_AUDIO),
                "vision_config": dict(TINY_VISION),
            }
        return {**inputs, **FUSION, **ARCHITECTURE_FIELDS[self.architecture], "num_labels": 4}

    def get_config(self):
        return ARCHITECTURES[self.architecture].config_class(**self.config_fields())

    def inputs(self) -> dict[str, torch.Tensor]:
        batch = self.batch_size
        if self.mode == "features":
            inputs = {}
            for m, length in LENGTHS.items():
                inputs[f"{m}_features"] = floats_tensor([batch, length, FEATURE_SIZES[f"{m}_feature_size"]])
                inputs[f"{m}_feature_mask"] = torch.ones(batch, length, dtype=torch.long)
            return inputs
        return {
            "input_ids": ids_tensor([batch, LENGTHS["text"]], TINY_TEXT["vocab_size"]),
            "attention_mask": torch.ones(batch, LENGTHS["text"], dtype=torch.long),
            "input_values": floats_tensor([batch, 400]),
            "audio_attention_mask": torch.ones(batch, 400, dtype=torch.long),
            "pixel_values": floats_tensor([batch, LENGTHS["vision"], 3, 16, 16]),
            "frame_mask": torch.ones(batch, LENGTHS["vision"], dtype=torch.long),
        }

    @property
    def seq_length(self) -> int:
        """The length of the fusion network's sequence: what `hidden_states` and `attentions` span."""
        modalities = ("text", "audio", "vision")
        if self.architecture == "mcihn":  # one token per modality and per ordered pair of modalities
            return len(modalities) ** 2
        lengths = dict(LENGTHS)
        if self.mode == "raw":  # wav2vec2's feature encoder: two strided convolutions (kernel 8, stride 4)
            lengths["audio"] = ((400 - 8) // 4 + 1 - 8) // 4 + 1
        extra = 1 if self.architecture == "miar" else 0  # MIAR: a modality interaction token each
        return sum(length + extra for length in lengths.values())

    encoder_seq_length = seq_length

    def prepare_config_and_inputs_for_common(self):
        return self.get_config(), self.inputs()


class MultimodalCommonTests(ModelTesterMixin):
    architecture: str
    mode: str
    test_resize_embeddings = False  # CLAP, LLaVA: the embeddings live in the towers
    test_torch_exportable = False  # tests/test_export.py exports every architecture (ONNX and torch.export)
    has_attentions = True
    _is_composite = True

    def setUp(self):
        head = ARCHITECTURES[self.architecture]
        self.all_model_classes = (head.base_model_class, head)
        self.model_tester = MultimodalModelTester(self, self.architecture, self.mode)
        # As LLaVA's and CLAP's testers do: the config's own fields (the sub-configs are the towers' to test).
        fields = {
            k: v for k, v in self.model_tester.config_fields().items() if k != "num_labels" and "_config" not in k
        }
        self.config_tester = ConfigTester(
            self,
            config_class=head.config_class,
            has_text_modality=False,
            common_properties=["hidden_size", "num_attention_heads"],
            **fields,
        )
        # The common tests find a model's role (base model: no loss; audio classifier: gets labels) in transformers'
        # Auto name tables; this package registers its classes with those Auto classes at run time instead.
        model_type = head.config_class.model_type
        for table, model_class in (
            (MODEL_MAPPING_NAMES, head.base_model_class),
            (MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING_NAMES, head),
        ):
            patch = mock.patch.dict(table, {model_type: model_class.__name__})
            patch.start()
            self.addCleanup(patch.stop)

    def test_config(self):
        self.config_tester.run_common_tests()

    @unittest.skip(reason="No input/output embeddings of its own: they live in the towers (as ClapModelTest skips it)")
    def test_model_get_set_embeddings(self):
        pass


def common_test_case(architecture: str, mode: str) -> type:
    name = f"{ARCHITECTURES[architecture].__name__.removesuffix('ForEmotionRecognition')}{mode.title()}CommonTest"
    return type(name, (MultimodalCommonTests, unittest.TestCase), {"architecture": architecture, "mode": mode})


for _architecture in ARCHITECTURES:
    for _mode in ("features", "raw"):
        _case = common_test_case(_architecture, _mode)
        globals()[_case.__name__] = _case
del _case

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
