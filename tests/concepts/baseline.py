"""The reference's solvers, timed on the inputs `cliplens bench concepts` wrote.

    python tests/concepts/baseline.py INPUT.bin INPUT.json > OUT.json

INPUT.json: {"words": c, "dim": d, "targets": n, "lambda": l, "admm_targets": m}.
INPUT.bin: the dictionary [c, d] then the targets [n, d], float32 little-endian.

- sklearn: SpLiCE's default path, `Lasso(alpha=l/(2d), positive=True,
  fit_intercept=False, max_iter=10000, tol=1e-6)` fitted one image at a time.
- admm: SpLiCE's `splice/admm.py` algorithm in numpy with the settings
  `SPLICE.__init__` passes (rho=5, tol=1e-6, max_iter=2000, random start):
  a c x c Cholesky factor, x/z/u steps, stop on the primal and dual residuals.
  It runs on the first `admm_targets` images as one batch (its cost grows
  with c^2 per iteration).

Prints the time per image and the objective ||z - D^T w||^2 + l*||w||_1 of each.
"""
import json, sys, time
import numpy as np


def objective(D, z, w, lam):
    return float(np.sum((z - D.T @ w) ** 2) + lam * np.sum(w))


def sklearn_path(D, Z, lam):
    from sklearn.linear_model import Lasso
    d = D.shape[1]
    model = Lasso(alpha=lam / (2 * d), positive=True, fit_intercept=False, max_iter=10000, tol=1e-6)
    X = D.T.astype(np.float32)
    objectives, l0 = [], []
    start = time.perf_counter()
    for z in Z:
        model.fit(X, z)
        w = model.coef_.astype(np.float64)
        objectives.append(objective(D, z, w, lam))
        l0.append(int(np.count_nonzero(w)))
    seconds = time.perf_counter() - start
    return {"seconds_per_image": seconds / len(Z), "images": len(Z), "objectives": objectives, "l0": l0}


def admm_path(D, Z, lam, rho=5.0, tol=1e-6, max_iter=2000):
    # splice/admm.py, with C the [c, d] dictionary and targets as columns.
    C = D.astype(np.float32)
    B = Z.T.astype(np.float32)  # [d, n]
    c, n = C.shape[0], B.shape[1]
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    from scipy.linalg import cho_factor, cho_solve  # torch.cholesky / cholesky_solve
    factor = cho_factor(2 * C @ C.T + rho * np.eye(c, dtype=np.float32), lower=True)
    CB2 = 2 * C @ B
    x = rng.standard_normal((c, n)).astype(np.float32)
    zz = rng.standard_normal((c, n)).astype(np.float32)
    u = rng.standard_normal((c, n)).astype(np.float32)
    iterations = 0
    for iterations in range(1, max_iter + 1):
        rhs = CB2 + rho * (zz - u)
        x = cho_solve(factor, rhs)
        z_old = zz
        zz = np.maximum(x + u - lam / rho, 0)
        u = u + x - zz
        primal = np.max(np.abs(x - zz))
        dual = np.max(np.abs(rho * (zz - z_old)))
        if primal < tol and dual < tol:
            break
    seconds = time.perf_counter() - start
    W = zz.astype(np.float64)
    objectives = [objective(D, Z[i], W[:, i], lam) for i in range(n)]
    return {"seconds_per_image": seconds / n, "images": n, "iterations": iterations, "objectives": objectives,
            "l0": [int(np.count_nonzero(W[:, i])) for i in range(n)]}


def main():
    meta = json.load(open(sys.argv[2]))
    c, d, n, lam = meta["words"], meta["dim"], meta["targets"], meta["lambda"]
    raw = np.fromfile(sys.argv[1], dtype="<f4")
    D = raw[: c * d].reshape(c, d).astype(np.float64)
    Z = raw[c * d: c * d + n * d].reshape(n, d).astype(np.float64)
    out = {"sklearn": sklearn_path(D, Z, lam)}
    m = int(meta.get("admm_targets", 0))
    if m > 0:
        out["admm"] = admm_path(D, Z[:m], lam)
    import sklearn
    out["versions"] = {"numpy": np.__version__, "sklearn": sklearn.__version__}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
