"""
Inference cost of GIA-MIC at paper scale: a HuBERT-base-sized tower (layer-norm feature encoder) on 4 s of 16 kHz
audio, RoBERTa-base on 24 tokens, ViT-base on 8 frames of 224x224 (random weights: same cost as pretrained), default
fusion head (width 256, 2 GIA layers).

    python benchmarks/inference.py [--rounds 3] [--batch-sizes 1 8]

Printed, per batch size: the three encoders alone, the fusion head alone (the same head in feature mode on the
encoders' outputs: everything the full model does after its encoders), the full model, and head / encoders in percent
(goal: <= 3 % at batch 1). At batch 1 also: eager / sdpa attention and bfloat16 / float32 for the full model and the
head. Peak memory: peak RSS growth of a fresh process over one forward pass, per batch size. Timings are medians of
interleaved rounds.
"""

import argparse
import json
import statistics
import time

import torch
from memory import peak_growth_in_fresh_process


TOWERS = {
    "text": {"model_type": "roberta"},
    "audio": {"model_type": "hubert", "feat_extract_norm": "layer", "do_stable_layer_norm": True},
    "vision": {"model_type": "vit"},
}


def build_models(dtype: torch.dtype = torch.float32):
    from modeling_gia_mic import GiaMicConfig, GiaMicForEmotionRecognition

    torch.manual_seed(0)
    full = GiaMicForEmotionRecognition(
        GiaMicConfig(**{f"{m}_config": dict(c) for m, c in TOWERS.items()}, num_labels=4)
    ).eval()
    sizes = {f"{m}_feature_size": full.config.encoder_config(m).hidden_size for m in TOWERS}
    head = GiaMicForEmotionRecognition(GiaMicConfig(**sizes, num_labels=4)).eval()
    head.load_state_dict(full.state_dict(), strict=False)  # the same fusion weights
    return full.to(dtype), head.to(dtype)


def inputs(batch_size: int, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {
        "input_ids": torch.randint(5, 50000, (batch_size, 24), generator=generator),
        "attention_mask": torch.ones(batch_size, 24, dtype=torch.long),
        "input_values": torch.randn(batch_size, 64000, generator=generator).to(dtype),
        "audio_attention_mask": torch.ones(batch_size, 64000, dtype=torch.long),
        "pixel_values": torch.randn(batch_size, 8, 3, 224, 224, generator=generator).to(dtype),
        "frame_mask": torch.ones(batch_size, 8, dtype=torch.long),
    }


def feature_inputs(full, batch: dict) -> dict[str, torch.Tensor]:
    with torch.inference_mode():
        outputs = full.gia_mic.get_modality_features(**batch)
    return {
        key: value
        for modality, (features, mask) in outputs.items()
        for key, value in ((f"{modality}_features", features), (f"{modality}_feature_mask", mask))
    }


def timed(function) -> float:
    with torch.inference_mode():
        start = time.perf_counter()
        function()
        return time.perf_counter() - start


def measure(rounds: int, **runs) -> dict[str, float]:
    """Median seconds of each callable, interleaved round by round after one warm-up each."""
    for run in runs.values():
        timed(run)
    times = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            times[name].append(timed(run))
    return {name: statistics.median(values) for name, values in times.items()}


def peak_memory(batch_size: int) -> float:
    return peak_growth_in_fresh_process(
        f"import torch, inference; full, _ = inference.build_models(); batch = inference.inputs({batch_size})",
        "with torch.inference_mode(): full(**batch)",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # smoke test: 1-layer towers
    args = parser.parse_args()
    if args.tiny:
        for tower in TOWERS.values():
            tower.update(num_hidden_layers=1, hidden_size=64, num_attention_heads=2, intermediate_size=64)
        TOWERS["audio"].update(
            conv_dim=(32, 32),
            conv_kernel=(10, 3),
            conv_stride=(5, 2),
            num_conv_pos_embeddings=16,
            num_conv_pos_embedding_groups=4,
        )
        TOWERS["vision"].update(image_size=224, patch_size=32)
    full, head = build_models()
    parameters = {
        "encoders": sum(p.numel() for p in full.gia_mic.encoders.parameters()),
        "head": sum(p.numel() for n, p in full.named_parameters() if "encoders" not in n),
    }
    print(f"parameters: encoders {parameters['encoders']:,}, fusion head {parameters['head']:,}\n")
    report = {"parameters": parameters}
    for batch_size in args.batch_sizes:
        batch = inputs(batch_size)
        features = feature_inputs(full, batch)
        result = measure(
            args.rounds,
            encoders=lambda batch=batch: full.gia_mic.get_modality_features(**batch),
            head=lambda features=features: head(**features),
            full=lambda batch=batch: full(**batch),
        )
        result["head_overhead_percent"] = 100 * result["head"] / result["encoders"]
        if not args.skip_memory:
            result["peak_memory_mib"] = peak_memory(batch_size)
        report[f"batch_{batch_size}"] = result
        memory = f", peak RSS growth {result['peak_memory_mib']:.0f} MiB" if "peak_memory_mib" in result else ""
        print(
            f"batch {batch_size}: encoders {result['encoders']:.3f} s, head {result['head'] * 1000:.1f} ms, full "
            f"{result['full']:.3f} s -> head overhead {result['head_overhead_percent']:.2f} % of encoder time"
            f"{memory}"
        )

    batch = inputs(1)
    features = feature_inputs(full, batch)
    eager_full, eager_head = build_models()
    eager_full.set_attn_implementation("eager")
    eager_head.set_attn_implementation("eager")
    attention = measure(
        args.rounds,
        sdpa=lambda: full(**batch),
        eager=lambda: eager_full(**batch),
        sdpa_head=lambda: head(**features),
        eager_head=lambda: eager_head(**features),
    )
    print(
        f"\nbatch 1, eager / sdpa: full model x{attention['eager'] / attention['sdpa']:.2f}, head "
        f"x{attention['eager_head'] / attention['sdpa_head']:.2f}"
    )
    bf16_full, bf16_head = build_models(torch.bfloat16)
    bf16_batch, bf16_features = (
        inputs(1, torch.bfloat16),
        {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in features.items()},
    )
    precision = measure(
        args.rounds,
        fp32=lambda: full(**batch),
        bf16=lambda: bf16_full(**bf16_batch),
        fp32_head=lambda: head(**features),
        bf16_head=lambda: bf16_head(**bf16_features),
    )
    print(
        f"batch 1, bfloat16 / float32: full model x{precision['bf16'] / precision['fp32']:.2f}, head "
        f"x{precision['bf16_head'] / precision['fp32_head']:.2f}"
    )
    report.update(attention=attention, precision=precision)
    print("\n" + json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
