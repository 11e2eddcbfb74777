"""Reference maps for the attribution probe (tests/probes.rs), from Hugging Face
transformers and torch autograd on the embedded world model, independently of
src/probes/attribution.rs: gradient x input, integrated gradients (midpoint
rule, 128 points, mean-colour baseline), occlusion (16-px squares every 8 px,
filled with the baseline) and the score lost when each word is dropped.

    cliplens world generate --seed 4242 --count 1 --roles doctor --role-shown --out /tmp/w
    python tests/probes/make_attribution_fixture.py /tmp/w/00000.png
      # writes tests/fixtures/probes/attribution_reference.json
"""

import json
import pathlib
import sys

import numpy as np
import torch
from PIL import Image
from tokenizers import Tokenizer
from transformers import CLIPModel

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "world-clip"
PROMPT = "a photo of a doctor"
STEPS, PATCH, STRIDE = 128, 16, 8

model = CLIPModel.from_pretrained(MODEL, dtype=torch.float32).eval()
pre = json.loads((MODEL / "preprocessor_config.json").read_text())
mean = torch.tensor(pre["image_mean"]).view(1, 3, 1, 1)
std = torch.tensor(pre["image_std"]).view(1, 3, 1, 1)
tokenizer = Tokenizer.from_file(str(MODEL / "tokenizer.json"))

pixels = np.asarray(Image.open(sys.argv[1]).convert("RGB"), dtype=np.uint8)
side = pixels.shape[0]
x = torch.tensor(pixels, dtype=torch.float32).permute(2, 0, 1).unsqueeze(0) / 255.0
b = mean.expand_as(x).clone()


def text_unit(prompt):
    ids = torch.tensor([tokenizer.encode(prompt).ids])
    with torch.no_grad():
        t = model.get_text_features(input_ids=ids)[0]
    return t / t.norm()


direction = text_unit(PROMPT)


def score(images):
    e = model.get_image_features(pixel_values=(images - mean) / std)
    return (e / e.norm(dim=-1, keepdim=True)) @ direction


def grad(images):
    images = images.clone().requires_grad_(True)
    s = score(images)
    s.sum().backward()
    return images.grad, s.detach()


g_x, s_x = grad(x)
with torch.no_grad():
    s_b = score(b)
delta = x - b
gxi = (delta * g_x).sum(1)[0]
alphas = (torch.arange(STEPS, dtype=torch.float32) + 0.5) / STEPS
path = b + alphas.view(-1, 1, 1, 1) * delta
g_path, _ = grad(path)
ig_full = delta[0] * g_path.mean(0)
ig = ig_full.sum(0)

starts = list(range(0, side - PATCH + 1, STRIDE))
if starts[-1] != side - PATCH:
    starts.append(side - PATCH)
drops = torch.zeros(side, side)
cover = torch.zeros(side, side)
windows = [(x0, y0) for y0 in starts for x0 in starts]
occluded = x.repeat(len(windows), 1, 1, 1)
for k, (x0, y0) in enumerate(windows):
    occluded[k, :, y0:y0 + PATCH, x0:x0 + PATCH] = b[0, :, y0:y0 + PATCH, x0:x0 + PATCH]
with torch.no_grad():
    s_occ = score(occluded)
for (x0, y0), s in zip(windows, s_occ):
    drops[y0:y0 + PATCH, x0:x0 + PATCH] += s_x[0] - s
    cover[y0:y0 + PATCH, x0:x0 + PATCH] += 1
occlusion = drops / cover

with torch.no_grad():
    e = model.get_image_features(pixel_values=(x - mean) / std)[0]
    e = e / e.norm()
words = PROMPT.split()
word_drops = []
for i, w in enumerate(words):
    rest = " ".join(words[:i] + words[i + 1:])
    word_drops.append({"word": w, "drop": float(s_x[0] - e @ text_unit(rest))})

reference = {
    "prompt": PROMPT, "steps": STEPS, "patch": PATCH, "stride": STRIDE, "side": side,
    "pixels": pixels.reshape(-1).tolist(),
    "score": float(s_x[0]), "baseline_score": float(s_b[0]), "ig_sum": float(ig_full.sum()),
    # Six significant digits: far below the float32 differences the test allows.
    "gradient_x_input": [float(f"{v:.6g}") for v in gxi.reshape(-1).tolist()],
    "integrated_gradients": [float(f"{v:.6g}") for v in ig.reshape(-1).tolist()],
    "occlusion": [float(f"{v:.6g}") for v in occlusion.reshape(-1).tolist()],
    "words": word_drops,
}
out = ROOT / "tests" / "fixtures" / "probes" / "attribution_reference.json"
out.write_text(json.dumps(reference))
print(f"wrote {out}: score {reference['score']:.4f}, baseline {reference['baseline_score']:.4f}, "
      f"IG sum {reference['ig_sum']:.4f} ({STEPS} steps)")
