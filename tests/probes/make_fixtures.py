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
