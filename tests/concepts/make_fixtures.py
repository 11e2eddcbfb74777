"""Fixtures for tests/concepts.rs: the objective scikit-learn's positive Lasso
reaches (SpLiCE's reference solver) on committed problems.

    python tests/concepts/make_fixtures.py --cliplens target/release/cliplens

- random.bin / random.json: two random dictionaries (400 concepts, 48 dims):
  independent Gaussian rows, and rows sharing a common direction that are then
  centred and normalized as SpLiCE's dictionary is; 6 unit targets each.
- world.json: the embedded world model's real dictionary (its concept words
  embedded by `cliplens embed`, centred and normalized here, in numpy) and
  8 generated world images centred on the model's image_mean.json.

Each problem is solved by Lasso(alpha=lambda/(2d), positive=True,
fit_intercept=False) to a tight tolerance, for three lambdas; the objective
||z - D^T w||^2 + lambda*||w||_1 and the weights are stored.
"""
import argparse, json, os, subprocess, sys, tempfile
import numpy as np
from sklearn.linear_model import Lasso

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "tests", "fixtures", "concepts")
LAMBDAS = [0.05, 0.15, 0.25]


def unit_rows(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def solve(D, z, lam):
    d = D.shape[1]
    model = Lasso(alpha=lam / (2 * d), positive=True, fit_intercept=False, max_iter=1_000_000, tol=1e-12)
    model.fit(D.T.astype(np.float64), z.astype(np.float64))
    w = model.coef_
    objective = float(np.sum((z - D.T @ w) ** 2) + lam * np.sum(w))
    nonzero = [[int(j), float(w[j])] for j in np.flatnonzero(w > 0)]
    return objective, nonzero


def problems(D, Z):
    out = []
    for lam in LAMBDAS:
        for i, z in enumerate(Z):
            objective, weights = solve(D.astype(np.float64), z.astype(np.float64), lam)
            out.append({"target": i, "lambda": lam, "objective": objective, "weights": weights})
    return out


def random_sets():
    rng = np.random.default_rng(2402)
    c, d, n = 400, 48, 6
    independent = unit_rows(rng.standard_normal((c, d))).astype(np.float32)
    shared = unit_rows(0.8 * rng.standard_normal(d) + 0.6 * rng.standard_normal((c, d)) / np.sqrt(d) * 3)
    shared = unit_rows(shared - shared.mean(axis=0)).astype(np.float32)
    sets, blobs = [], []
    for name, D in [("independent", independent), ("centred-shared", shared)]:
        Z = unit_rows(rng.standard_normal((n, d))).astype(np.float32)
        sets.append({"name": name, "words": c, "dim": d, "targets": n, "problems": problems(D, Z)})
        blobs += [D.tobytes(), Z.tobytes()]
    with open(os.path.join(OUT, "random.bin"), "wb") as f:
        f.write(b"".join(blobs))
    return sets


def cliplens_json(cliplens, args):
    out = subprocess.run([cliplens] + args, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def world_set(cliplens):
    model = os.path.join(ROOT, "models", "world-clip")
    words = cliplens_json(cliplens, ["concepts", "words", "--vocab", "world", "--json"])["words"]
    texts = []
    for w in words:
        texts += ["--text", w]
    E = np.array(cliplens_json(cliplens, ["embed", "--model", model, "--json"] + texts)["text_embeds"], dtype=np.float64)
    E = unit_rows(E)
    D = unit_rows(E - E.mean(axis=0))
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([cliplens, "world", "generate", "--seed", "2402", "--count", "8", "--out", tmp], check=True, capture_output=True)
        images = sorted(f for f in os.listdir(tmp) if f.endswith(".png"))
        args = []
        for f in images:
            args += ["--image", os.path.join(tmp, f)]
        Z = np.array(cliplens_json(cliplens, ["embed", "--model", model, "--json"] + args)["image_embeds"], dtype=np.float64)
    mean = np.array(json.load(open(os.path.join(model, "image_mean.json"))), dtype=np.float64)
    Zc = unit_rows(Z - mean)
    return {
        "words": words,
        "dictionary": D.astype(np.float32).tolist(),
        "image_embeds": Z.astype(np.float32).tolist(),
        "targets": Zc.astype(np.float32).tolist(),
        "problems": problems(D.astype(np.float32), Zc.astype(np.float32)),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cliplens", required=True)
    args = parser.parse_args()
    os.makedirs(OUT, exist_ok=True)
    meta = {"lambdas": LAMBDAS, "solver": "sklearn.linear_model.Lasso(alpha=lambda/(2d), positive=True, fit_intercept=False, tol=1e-12)",
            "sklearn": __import__("sklearn").__version__, "sets": random_sets()}
    with open(os.path.join(OUT, "random.json"), "w") as f:
        json.dump(meta, f, indent=1)
    with open(os.path.join(OUT, "world.json"), "w") as f:
        json.dump(world_set(args.cliplens), f)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
