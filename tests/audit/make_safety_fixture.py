"""Reference outputs of LAION's CLIP-based NSFW detector, run by TensorFlow.

Reads ../shared/data/laion-safety/clip_autokeras_nsfw_b32.zip (never copied into
the repository), runs its SavedModel signature on unit vectors drawn from CLIP
Lens' SplitMix64 (the Rust test draws the same ones: `Rng::normal`, seed 2024,
512 per row, normalized), and writes tests/fixtures/audit/safety_reference.json:
the seed, the row count and each row's probability. Versions:
tests/audit/safety-requirements.txt (python 3.11, CPU only).
"""

import json
import math
import os
import sys
import tempfile
import zipfile

import numpy as np
import tensorflow as tf

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
ZIP = os.path.join(ROOT, "..", "shared", "data", "laion-safety", "clip_autokeras_nsfw_b32.zip")
OUT = os.path.join(ROOT, "tests", "fixtures", "audit", "safety_reference.json")
MASK = (1 << 64) - 1


class Rng:
    """CLIP Lens' SplitMix64 (src/rng.rs)."""

    def __init__(self, seed):
        self.state = (seed ^ 0x5DEECE66D1CE4E5B) & MASK

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def unit(self):
        return (self.next() >> 11) / float(1 << 53)

    def normal(self):
        u = max(self.unit(), 1e-12)
        v = self.unit()
        return math.sqrt(-2.0 * math.log(u)) * math.cos(2.0 * math.pi * v)


def main():
    seed, rows = 2024, 24
    rng = Rng(seed)
    x = np.array([[rng.normal() for _ in range(512)] for _ in range(rows)])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    x = x.astype(np.float32).astype(np.float64)
    with tempfile.TemporaryDirectory() as tmp:
        zipfile.ZipFile(ZIP).extractall(tmp)
        model = tf.saved_model.load(os.path.join(tmp, "clip_autokeras_nsfw_b32"))
        out = model.signatures["serving_default"](input_1=tf.constant(x))["classification_head_1"].numpy()[:, 0]
    json.dump(
        {
            "source": "LAION-AI/CLIP-based-NSFW-Detector clip_autokeras_nsfw_b32.zip, run by tensorflow " + tf.__version__,
            "seed": seed,
            "rows": rows,
            "probabilities": [float(p) for p in out],
        },
        open(OUT, "w"),
        indent=1,
    )
    print(f"wrote {OUT}: {rows} rows, probabilities {out.min():.3g} to {out.max():.3g}", file=sys.stderr)


if __name__ == "__main__":
    main()
