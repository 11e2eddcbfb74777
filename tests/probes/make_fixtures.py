"""Reference values for the modality-gap probe (tests/probes.rs), in numpy from
the formulas of Liang et al. 2022 ("Mind the Gap"), independently of
src/probes/gap.rs: the centroids of the unit-length embeddings, the gap vector
between them, shifts of both sets along it (x - lambda*gap/2, y + lambda*gap/2,
renormalized), top-1 retrieval and zero-shot accuracy after each shift, and the
PCA of both sets (np.linalg.eigh of the sample covariance; each direction's
entry of largest magnitude made positive).

    python tests/probes/make_fixtures.py   # writes tests/fixtures/probes/gap_reference.json
"""

import json
import pathlib

import numpy as np

rng = np.random.default_rng(2024)
DIM, PAIRS, CLASSES = 24, 60, 4
LAMBDAS = [-1.0, -0.5, 0.0, 0.5, 1.0]


def unit(m):
    return m / np.linalg.norm(m, axis=-1, keepdims=True)


# Two cones (image, text) around different directions; each pair shares a class
# prototype along its own axis (distinct scales, so the principal components are
# well separated) plus noise.
image_cone, text_cone = unit(rng.normal(size=DIM)), unit(rng.normal(size=DIM))
prototypes = np.zeros((CLASSES, DIM))
for k in range(CLASSES):
    prototypes[k, 2 + k] = 0.9 + 0.35 * k
labels = rng.integers(0, CLASSES, size=PAIRS)
labels[rng.integers(0, PAIRS, size=6)] = -1  # some images without a class
content = prototypes[np.maximum(labels, 0)] + 0.25 * rng.normal(size=(PAIRS, DIM))
images = (content + 1.6 * image_cone + 0.3 * rng.normal(size=(PAIRS, DIM))).astype(np.float32)
captions = (content + 1.6 * text_cone + 0.3 * rng.normal(size=(PAIRS, DIM))).astype(np.float32)
classes = (prototypes + 1.6 * text_cone).astype(np.float32)

x, y, c = unit(images.astype(np.float64)), unit(captions.astype(np.float64)), unit(classes.astype(np.float64))
mx, my = x.mean(0), y.mean(0)
gap = mx - my

union = np.vstack([x, y])
cov = np.cov(union.T, ddof=1)
values, vectors = np.linalg.eigh(cov)
order = np.argsort(values)[::-1]
values, vectors = values[order], vectors[:, order]
assert (values[1] - values[2]) / values[1] > 0.1 and (values[0] - values[1]) / values[0] > 0.1, values[:4]
components = []
for k in range(2):
    v = vectors[:, k]
    if v[np.argmax(np.abs(v))] < 0:
        v = -v
    components.append(v)
components = np.array(components)
centre = union.mean(0)
projected_images = (x - centre) @ components.T
projected_captions = (y - centre) @ components.T

shifts = []
for lam in LAMBDAS:
    xs = unit(x - lam * gap / 2)
    ys = unit(y + lam * gap / 2)
    cs = unit(c + lam * gap / 2)
    scores = xs @ ys.T
    # An image finds its caption when nothing scores higher (ties count as found).
    retrieval = float(np.mean(np.diag(scores) >= scores.max(axis=1)))
    known = labels >= 0
    zero_shot = float(np.mean(np.argmax(xs[known] @ cs.T, axis=1) == labels[known]))
    shifts.append({
        "lambda": lam,
        "centroid_distance": float(np.linalg.norm(xs.mean(0) - ys.mean(0))),
        "mean_pair_cosine": float(np.mean(np.sum(xs * ys, axis=1))),
        "retrieval_accuracy": retrieval,
        "zero_shot_accuracy": zero_shot,
    })

reference = {
    "images": images.astype(np.float64).tolist(),
    "captions": captions.astype(np.float64).tolist(),
    "classes": classes.astype(np.float64).tolist(),
    "labels": [int(l) if l >= 0 else None for l in labels],
    "lambdas": LAMBDAS,
    "centroid_distance": float(np.linalg.norm(gap)),
    "centroid_cosine": float(mx @ my / np.linalg.norm(mx) / np.linalg.norm(my)),
    "gap_on_first_component": float(abs(gap @ components[0]) / np.linalg.norm(gap)),
    "explained": (values[:2] / np.trace(cov)).tolist(),
    "projected_images": projected_images.tolist(),
    "projected_captions": projected_captions.tolist(),
    "shifts": shifts,
}
out = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "probes" / "gap_reference.json"
out.write_text(json.dumps(reference, indent=None))
print(f"wrote {out}: gap {reference['centroid_distance']:.4f}, explained {reference['explained']}, "
      f"retrieval {[s['retrieval_accuracy'] for s in shifts]}, zero-shot {[s['zero_shot_accuracy'] for s in shifts]}")


# ---------------------------------------------------------------------------
# Concept association, social perception and fooling images: the same
# embeddings through numpy. Bootstraps and sign-flip tests replay CLIP Lens'
# SplitMix64 (src/rng.rs) as tests/audit/make_fixtures.py does, so intervals
# and p-values must agree exactly, not just statistically.

M = (1 << 64) - 1


class Rng:
    def __init__(self, seed):
        self.x = (seed ^ 0x5DEECE66D1CE4E5B) & M

    def next(self):
        self.x = (self.x + 0x9E3779B97F4A7C15) & M
        z = self.x
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
        return z ^ (z >> 31)

    def unit(self):
        return (self.next() >> 11) / float(1 << 53)

    def below(self, n):
        return int(self.unit() * n) % n


def bootstrap_mean(values, resamples, seed):
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    rng = Rng(seed)
    draws = sorted(values[[rng.below(n) for _ in range(n)]].mean() for _ in range(resamples))
    q = lambda p: draws[min(int(p * len(draws)), len(draws) - 1)]
    return {"value": float(values.mean()), "ci95": [float(q(0.025)), float(q(0.975))]}


def sign_flip(diffs, limit, seed):
    diffs = np.asarray(diffs, dtype=np.float64)
    n, observed = len(diffs), abs(diffs.sum())
    assert (1 << n) <= limit, "fixtures keep the test exact"
    signs = np.array([[-1.0 if (p >> i) & 1 else 1.0 for i in range(n)] for p in range(1 << n)])
    hits = int(np.sum(np.abs(signs @ diffs) >= observed - 1e-12))
    return {"p_value": hits / (1 << n), "permutations": 1 << n, "exact": True}


RESAMPLES, PERMUTATIONS = 2000, 10_000
probe_rng = np.random.default_rng(77)
D2 = 16


def cosine(a, b):
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


# Concept association: 12 questions; images lean to the other attribute's text
# by a random amount; two of them lack the single-object control.
SEED_A = 5
questions = []
for i in range(12):
    t_true, t_other = unit(probe_rng.normal(size=D2)), unit(probe_rng.normal(size=D2))
    base = probe_rng.normal(size=D2) * 0.3
    two = base + t_true + probe_rng.uniform(0.2, 1.6) * t_other
    single = None if i in (3, 8) else base + t_true + probe_rng.uniform(0.0, 0.7) * t_other
    questions.append({"true_text": t_true.tolist(), "other_text": t_other.tolist(), "two": two.tolist(),
                      "single": None if single is None else single.tolist()})
two_m = [cosine(np.array(q["two"]), np.array(q["other_text"])) - cosine(np.array(q["two"]), np.array(q["true_text"])) for q in questions]
single_m = [None if q["single"] is None else cosine(np.array(q["single"]), np.array(q["other_text"])) - cosine(np.array(q["single"]), np.array(q["true_text"])) for q in questions]
win = lambda m: 1.0 if m > 0 else 0.0
singles = [m for m in single_m if m is not None]
diffs = [win(t) - win(s) for t, s in zip(two_m, single_m) if s is not None]
association = {
    "seed": SEED_A,
    "questions": questions,
    "two_margins": two_m,
    "single_margins": single_m,
    "two_rate": bootstrap_mean([win(m) for m in two_m], RESAMPLES, SEED_A),
    "two_mean_margin": bootstrap_mean(two_m, RESAMPLES, SEED_A ^ 1),
    "single_rate": bootstrap_mean([win(m) for m in singles], RESAMPLES, SEED_A ^ 2),
    "rate_difference": bootstrap_mean(diffs, RESAMPLES, SEED_A ^ 3),
    "test": sign_flip(diffs, PERMUTATIONS, SEED_A ^ 4),
}

# Social perception: 10 pairs changing one attribute, two word sets of three
# words; the change adds a little of word set 0's first direction.
SEED_S = 9
words = [[unit(probe_rng.normal(size=D2)) for _ in range(3)] for _ in range(2)]
pairs = []
for i in range(10):
    f = probe_rng.normal(size=D2)
    t = f + 0.4 * words[0][0] + 0.2 * probe_rng.normal(size=D2)
    pairs.append({"from": f.tolist(), "to": t.tolist(), "context": "small" if i % 3 else "large"})


def set_score(img, ws):
    return float(np.mean([cosine(img, w) for w in ws]))


social = {"seed": SEED_S, "words": [[w.tolist() for w in ws] for ws in words], "pairs": pairs, "shifts": []}
for s, ws in enumerate(words):
    stream = SEED_S ^ (0 << 32) ^ (s << 16)
    d = [set_score(np.array(p["to"]), ws) - set_score(np.array(p["from"]), ws) for p in pairs]
    by_context = []
    for c, value in enumerate(sorted({p["context"] for p in pairs})):
        ds = [x for x, p in zip(d, pairs) if p["context"] == value]
        by_context.append({"value": value, "shift": bootstrap_mean(ds, RESAMPLES, stream ^ ((c + 1) << 8))})
    social["shifts"].append({"shift": bootstrap_mean(d, RESAMPLES, stream), "test": sign_flip(d, PERMUTATIONS, stream ^ 0x5EED),
                             "by_context": by_context})

# Fooling images: the max-min direction of six prompts (scipy's SLSQP on the
# simplex: the min-norm point of their convex hull) and the comparison with
# real images before and after shifting every image across the gap.
from scipy.optimize import minimize

texts = unit(probe_rng.normal(size=(6, D2)) + 4.0 * unit(probe_rng.normal(size=D2)))
res = minimize(lambda w: float(np.sum((w @ texts) ** 2)), np.full(6, 1 / 6), jac=lambda w: 2 * texts @ (w @ texts),
               bounds=[(0, 1)] * 6, constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}], method="SLSQP",
               options={"ftol": 1e-15, "maxiter": 1000})
direction = unit(res.x @ texts)
real = 0.5 * probe_rng.normal(size=(20, D2)) + 2.0 * unit(probe_rng.normal(size=D2))
real[:6] += 1.0 * texts  # each of the first six real images leans to one prompt
captions = unit(real + 0.8 * texts[np.arange(20) % 6])
fool = direction + 0.15 * probe_rng.normal(size=D2)
gap = unit(real).mean(0) - unit(captions).mean(0)


def compare(img_rows, fool_vec):
    f = unit(fool_vec)
    r = unit(img_rows)
    best = (r @ texts.T)
    return f @ texts.T, best.max(0), best.argmax(0)


f0, b0, i0 = compare(real, fool)
f1, b1, _ = compare(unit(real) - gap, unit(fool) - gap)
fooling = {
    "texts": texts.tolist(), "min_direction": direction.tolist(), "min_cosine": float((texts @ direction).min()),
    "real": real.tolist(), "captions": captions.tolist(), "fooling": fool.tolist(), "gap": gap.tolist(),
    "fooling_scores": f0.tolist(), "best_real": b0.tolist(), "best_real_index": i0.tolist(),
    "shifted_fooling": f1.tolist(), "shifted_best_real": b1.tolist(),
    # The share of the advantage left, defined only where there was one.
    "advantage_remaining": float((f1 - b1).mean() / (f0 - b0).mean()) if (f0 - b0).mean() > 0 else None,
}

for name, value in [("association", association), ("social", social), ("fooling", fooling)]:
    path = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "probes" / f"{name}_reference.json"
    path.write_text(json.dumps(value, indent=None))
    print(f"wrote {path}")
print(f"association: two {association['two_rate']['value']:.3f}, single {association['single_rate']['value']:.3f}; "
      f"fooling: min cosine {fooling['min_cosine']:.4f}, wins {(f0 > b0).sum()}/6, remaining {fooling['advantage_remaining']}")
