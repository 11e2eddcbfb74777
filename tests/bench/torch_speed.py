"""The PyTorch side of `cliplens bench speed`: the same measurements on the same weights.

`cliplens bench speed --python PY` writes a spec (model directories, thread count, batches,
prompts, the inversion loop's views and steps, matrix sizes) and runs
    PY tests/bench/torch_speed.py --spec SPEC.json
which prints one JSON object on stdout. Needs tests/parity/requirements.txt (torch, transformers).

Every timing is wall-clock seconds of one call, after one untimed warm-up; the caller takes medians.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import transformers
from transformers import CLIPModel, CLIPTokenizerFast


def timed(fn, runs: int) -> list[float]:
    fn()  # warm-up: allocator, oneDNN primitive caches
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def matmul_runs(n: int, runs: int) -> list[float]:
    g = torch.Generator().manual_seed(n)
    a = torch.randn(n, n, generator=g)
    b = torch.randn(n, n, generator=g)
    return timed(lambda: torch.mm(a, b), runs)


def inversion_loop(model: CLIPModel, size: int, views: int, lr: float, mean, std):
    """CLIP Lens' baseline preset (pixels through a sigmoid, no augmentation, Adam) with `views`
    identical views per step: one forward and backward pass of the image tower on `views` images."""
    for p in model.parameters():
        p.requires_grad_(False)
    g = torch.Generator().manual_seed(0)
    params = (torch.randn(1, 3, size, size, generator=g) * 0.01).requires_grad_(True)
    target = torch.nn.functional.normalize(torch.randn(model.config.projection_dim, generator=g), dim=0)
    opt = torch.optim.Adam([params], lr=lr)
    mean_t = torch.tensor(mean).view(1, 3, 1, 1)
    std_t = torch.tensor(std).view(1, 3, 1, 1)

    def step():
        opt.zero_grad(set_to_none=True)
        image = torch.sigmoid(params)
        batch = ((image - mean_t) / std_t).expand(views, -1, -1, -1)
        embeds = torch.nn.functional.normalize(model.get_image_features(pixel_values=batch), dim=-1)
        loss = -(embeds @ target).sum() / views
        loss.backward()
        opt.step()

    return step


def bench_model(directory: Path, spec: dict) -> dict:
    model = CLIPModel.from_pretrained(str(directory)).eval()
    tokenizer = CLIPTokenizerFast(tokenizer_file=str(directory / "tokenizer.json"))
    size = model.config.vision_config.image_size
    runs = spec["runs"]
    result = {"attention": model.config._attn_implementation, "image": {}, "text": None, "invert": None}
    g = torch.Generator().manual_seed(0)
    for batch in spec["batches"]:
        pixels = torch.randn(batch, 3, size, size, generator=g)
        with torch.inference_mode():
            result["image"][str(batch)] = timed(lambda: model.get_image_features(pixel_values=pixels), runs)
    if spec["texts"]:
        enc = tokenizer(spec["texts"], padding=True, truncation=True, max_length=77, return_tensors="pt")
        with torch.inference_mode():
            result["text"] = timed(lambda: model.get_text_features(**enc), runs)
    inv = spec.get("invert")
    if inv:
        step = inversion_loop(model, size, inv["views"], inv["learning_rate"], inv["mean"], inv["std"])
        result["invert"] = timed(step, inv["steps"])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", required=True, type=Path)
    args = parser.parse_args()
    spec = json.loads(args.spec.read_text(encoding="utf-8"))
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    out = {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "threads": torch.get_num_threads(),
        "matmul": {str(n): matmul_runs(n, spec["runs"]) for n in spec["matmul"]},
        "models": {},
    }
    for directory in spec["models"]:
        out["models"][directory] = bench_model(Path(directory), spec)
        print(f"torch: {directory} done", file=sys.stderr)
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
