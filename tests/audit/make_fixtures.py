"""Reference values for the bias audit's statistics (tests/audit.rs).

Independent implementations: scikit-learn's adjusted_rand_score,
adjusted_mutual_info_score and KMeans, scipy's linear_sum_assignment,
fairlearn's MetricFrame / demographic_parity_difference /
equalized_odds_difference, and numpy written from the published formulas for
the WEAT (Caliskan et al. 2017), MaxSkew@k and NDKL (Geyik et al. 2019). The
permutation tests and bootstraps replay CLIP Lens' SplitMix64 generator
(src/rng.rs), so "the same seed" means the same draws and the numbers must
agree exactly, not just statistically.

    python tests/audit/make_fixtures.py   # writes tests/fixtures/audit/reference.json
"""

import itertools
import json
import math
import pathlib

import numpy as np
from fairlearn.metrics import MetricFrame, demographic_parity_difference, equalized_odds_difference
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.metrics import accuracy_score, adjusted_mutual_info_score, adjusted_rand_score

M = (1 << 64) - 1


class Rng:
    """src/rng.rs, bit for bit."""

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


def shuffle(items, rng):
    for i in range(len(items) - 1, 0, -1):
        j = rng.below(i + 1)
        items[i], items[j] = items[j], items[i]


def quantile(sorted_draws, q):
    return sorted_draws[min(int(q * len(sorted_draws)), len(sorted_draws) - 1)]


def bootstrap(n, resamples, seed, statistic):
    rng = Rng(seed)
    draws = []
    for _ in range(resamples):
        rows = [rng.below(n) for _ in range(n)]
        v = statistic(np.array(rows))
        if np.isfinite(v):
            draws.append(v)
    draws.sort()
    return [quantile(draws, 0.025), quantile(draws, 0.975)]


def unit_rows(a):
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def s_values(W, A, B):
    return (unit_rows(W) @ unit_rows(A).T).mean(1) - (unit_rows(W) @ unit_rows(B).T).mean(1)


TIE = 1e-12


def weat(X, Y, A, B, limit, seed):
    sx, sy = s_values(X, A, B), s_values(Y, A, B)
    s_all = np.concatenate([sx, sy])
    d = (sx.mean() - sy.mean()) / s_all.std(ddof=1)
    observed = sx.sum()
    n, k = len(s_all), len(sx)
    total = math.comb(n, k)
    if total <= limit:
        hits = sum(1 for idx in itertools.combinations(range(n), k) if s_all[list(idx)].sum() >= observed - TIE)
        p, perms, exact = hits / total, total, True
    else:
        rng = Rng(seed)
        order = list(range(n))
        hits = 0
        for _ in range(limit):
            shuffle(order, rng)
            hits += s_all[order[:k]].sum() >= observed - TIE
        p, perms, exact = (1 + hits) / (1 + limit), limit + 1, False
    return dict(d=d, p_value=p, permutations=perms, exact=exact, s_x=sx.tolist(), s_y=sy.tolist())


def sign_flip(diffs, limit, seed):
    n = len(diffs)
    observed = abs(diffs.sum())
    if (1 << n) <= limit:
        hits = 0
        for pattern in range(1 << n):
            s = sum(-d if (pattern >> i) & 1 else d for i, d in enumerate(diffs))
            hits += abs(s) >= observed - TIE
        return dict(p_value=hits / (1 << n), permutations=1 << n, exact=True)
    rng = Rng(seed)
    hits = 0
    for _ in range(limit):
        s = sum(-d if rng.below(2) == 1 else d for d in diffs)
        hits += abs(s) >= observed - TIE
    return dict(p_value=(1 + hits) / (1 + limit), permutations=limit + 1, exact=False)


def skews(ranked, k, target):
    counts = np.bincount(ranked[:k], minlength=len(target))
    share = np.where(counts == 0, 1.0 / k, counts / k)
    return np.log(share / np.array(target)).tolist()


def ndkl(ranked, k, target):
    target = np.array(target)
    num, z = 0.0, 0.0
    for i in range(1, k + 1):
        p = np.bincount(ranked[:i], minlength=len(target)) / i
        kl = float(np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1) / target), 0.0)))
        num += kl / math.log2(i + 1)
        z += 1 / math.log2(i + 1)
    return num / z


def main():
    rs = np.random.default_rng(20261203)
    out = {}

    # WEAT: a small exact case and a large random one; per-target paired tests.
    dim = 8
    cases = []
    for nx, na, limit, seed in [(4, 5, 10_000, 3), (12, 6, 10_000, 11)]:
        X = rs.normal(size=(nx, dim)) + 0.3
        Y = rs.normal(size=(nx, dim)) - 0.3
        A = rs.normal(size=(na, dim)) + np.linspace(0, 1, dim)
        B = rs.normal(size=(na, dim)) - np.linspace(0, 1, dim)
        cases.append(dict(x=X.tolist(), y=Y.tolist(), a=A.tolist(), b=B.tolist(), limit=limit, seed=seed, expected=weat(X, Y, A, B, limit, seed)))
    out["weat"] = cases
    paired = []
    for n, limit, seed in [(10, 10_000, 5), (16, 2_000, 9)]:
        w = rs.normal(size=dim)
        A = rs.normal(size=(n, dim))
        B = A + 0.4 * rs.normal(size=(n, dim)) - 0.1
        ca, cb = unit_rows(A) @ (w / np.linalg.norm(w)), unit_rows(B) @ (w / np.linalg.norm(w))
        both = np.concatenate([ca, cb])
        paired.append(dict(w=w.tolist(), a=A.tolist(), b=B.tolist(), limit=limit, seed=seed,
                           s=float(ca.mean() - cb.mean()), d=float((ca.mean() - cb.mean()) / both.std(ddof=1)),
                           expected=sign_flip(ca - cb, limit, seed)))
    out["paired"] = paired

    # Bootstrap of a mean.
    values = rs.normal(size=50)
    out["bootstrap"] = dict(values=values.tolist(), resamples=500, seed=4,
                            ci95=bootstrap(50, 500, 4, lambda r: values[r].mean()))

    # Clustering agreement against scikit-learn and scipy.
    agreement = []
    for n, kt, kp in [(40, 2, 2), (200, 3, 4), (500, 4, 3), (30, 5, 5)]:
        t = rs.integers(0, kt, size=n)
        p = np.where(rs.random(n) < 0.7, t % kp, rs.integers(0, kp, size=n))
        confusion = np.zeros((kp, kt), dtype=int)
        for a, b in zip(p, t):
            confusion[a, b] += 1
        rows, cols = linear_sum_assignment(-confusion)
        agreement.append(dict(truth=t.tolist(), predicted=p.tolist(), k=kp, g=kt,
                              ari=adjusted_rand_score(t, p), ami=adjusted_mutual_info_score(t, p),
                              matched=int(confusion[rows, cols].sum())))
    out["agreement"] = agreement

    # k-means: scikit-learn's inertia on three blobs, the bar for ours.
    centres = np.array([[0, 0], [3, 3], [0, 4]])
    pts = np.concatenate([c + 0.8 * rs.normal(size=(60, 2)) for c in centres])
    km = KMeans(n_clusters=3, n_init=10, random_state=0).fit(pts)
    out["kmeans"] = dict(points=pts.tolist(), k=3, inertia=float(km.inertia_), ari_vs_blobs=adjusted_rand_score(np.repeat([0, 1, 2], 60), km.labels_))

    # Retrieval skew by the published formulas.
    ranked = rs.choice(3, size=60, p=[0.6, 0.3, 0.1])
    retrieval = []
    for k, target in [(10, [1 / 3] * 3), (40, [0.5, 0.3, 0.2]), (60, [0.2, 0.2, 0.6])]:
        retrieval.append(dict(k=k, target=target, skews=skews(ranked, k, target), ndkl=ndkl(ranked, k, target)))
    out["retrieval"] = dict(ranked=ranked.tolist(), cases=retrieval)

    # Fairness against fairlearn, bootstrap intervals replayed.
    n = 300
    groups = rs.choice(3, size=n, p=[0.5, 0.35, 0.15])
    truth = rs.integers(0, 2, size=n)
    flip = rs.random(n) < np.array([0.1, 0.25, 0.4])[groups]
    pred = np.where(flip, 1 - truth, truth)
    pred = np.where((groups == 0) & (rs.random(n) < 0.15), 1, pred)
    names = ["g0", "g1", "g2"]
    gnames = np.array(names)[groups]
    mf = MetricFrame(metrics=accuracy_score, y_true=truth, y_pred=pred, sensitive_features=gnames)
    seed = 77

    def dp(rows):
        sel = [pred[rows][groups[rows] == g].mean() for g in range(3) if (groups[rows] == g).any()]
        return max(sel) - min(sel) if len(sel) >= 2 else float("nan")

    out["fairness"] = dict(
        truth=[str(v) for v in truth], predicted=[str(v) for v in pred], groups=groups.tolist(), names=names,
        seed=seed, resamples=400,
        accuracy={g: float(mf.by_group[g]) for g in names},
        overall_accuracy=float(mf.overall),
        demographic_parity_difference=float(demographic_parity_difference(truth, pred, sensitive_features=gnames)),
        equalized_odds_difference=float(equalized_odds_difference(truth, pred, sensitive_features=gnames)),
        # src/audit/fairness.rs draws the parity interval from seed + 3.
        demographic_parity_ci95=bootstrap(n, 400, seed + 3, dp),
    )
    path = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "audit" / "reference.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print("wrote", path, path.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
