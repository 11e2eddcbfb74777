//! Pseudo-groups: k-means++ (seeded, restarts) on per-image features, and how
//! well clusters agree with true groups: ARI, AMI (scikit-learn's
//! definitions, arithmetic normalization) and a Hungarian-matched confusion
//! matrix.

use pathfinding::kuhn_munkres::kuhn_munkres;
use pathfinding::matrix::Matrix;
use serde::{Deserialize, Serialize};

use crate::rng::Rng;

/// A clustering.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct KMeans {
    pub assignments: Vec<usize>,
    pub centroids: Vec<Vec<f64>>,
    /// Sum of squared distances to the assigned centroid.
    pub inertia: f64,
    pub restarts: usize,
    pub seed: u64,
}

fn distance2(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// k-means++ seeding then Lloyd's iterations, best of `restarts` runs by
/// inertia. Clusters are numbered by their first member's position, so the
/// numbering does not depend on which restart won. `k` is clamped to 1..=n;
/// clusters left empty are dropped, so `centroids.len()` may be below `k`.
pub fn kmeans(features: &[Vec<f64>], k: usize, restarts: usize, seed: u64) -> KMeans {
    let n = features.len();
    let k = k.clamp(1, n.max(1));
    let mut rng = Rng::new(seed);
    let mut best: Option<(Vec<usize>, Vec<Vec<f64>>, f64)> = None;
    for _ in 0..restarts.max(1) {
        if n == 0 {
            break;
        }
        let run = lloyd(features, seed_centroids(features, k, &mut rng));
        if best.as_ref().is_none_or(|b| run.2 < b.2 - 1e-12) {
            best = Some(run);
        }
    }
    let (assignments, centroids, inertia) = best.unwrap_or_default();
    let (assignments, centroids) = renumber(assignments, centroids);
    KMeans { assignments, centroids, inertia, restarts: restarts.max(1), seed }
}

fn seed_centroids(features: &[Vec<f64>], k: usize, rng: &mut Rng) -> Vec<Vec<f64>> {
    let n = features.len();
    let mut centroids = vec![features[rng.below(n)].clone()];
    let mut nearest: Vec<f64> = features.iter().map(|f| distance2(f, &centroids[0])).collect();
    while centroids.len() < k {
        let total: f64 = nearest.iter().sum();
        let pick = if total <= 0.0 {
            rng.below(n)
        } else {
            let mut target = rng.unit() * total;
            let mut pick = n - 1;
            for (i, d) in nearest.iter().enumerate() {
                if target < *d {
                    pick = i;
                    break;
                }
                target -= d;
            }
            pick
        };
        let c = features[pick].clone();
        for (m, f) in nearest.iter_mut().zip(features) {
            *m = m.min(distance2(f, &c));
        }
        centroids.push(c);
    }
    centroids
}

fn lloyd(features: &[Vec<f64>], mut centroids: Vec<Vec<f64>>) -> (Vec<usize>, Vec<Vec<f64>>, f64) {
    let n = features.len();
    let k = centroids.len();
    let dim = features[0].len();
    let mut assignments = vec![usize::MAX; n];
    for _ in 0..300 {
        let mut changed = false;
        for (i, f) in features.iter().enumerate() {
            let c = (0..k).min_by(|&a, &b| distance2(f, &centroids[a]).total_cmp(&distance2(f, &centroids[b]))).unwrap_or(0);
            if assignments[i] != c {
                assignments[i] = c;
                changed = true;
            }
        }
        let mut sums = vec![vec![0.0; dim]; k];
        let mut counts = vec![0usize; k];
        for (f, &c) in features.iter().zip(&assignments) {
            counts[c] += 1;
            sums[c].iter_mut().zip(f).for_each(|(s, x)| *s += x);
        }
        for c in 0..k {
            if counts[c] == 0 {
                // An empty cluster takes the point farthest from its centroid.
                let far = (0..n)
                    .max_by(|&a, &b| {
                        distance2(&features[a], &centroids[assignments[a]]).total_cmp(&distance2(&features[b], &centroids[assignments[b]]))
                    })
                    .unwrap_or(0);
                centroids[c] = features[far].clone();
                assignments[far] = c;
                changed = true;
            } else {
                centroids[c] = sums[c].iter().map(|s| s / counts[c] as f64).collect();
            }
        }
        if !changed {
            break;
        }
    }
    let inertia = features.iter().zip(&assignments).map(|(f, &c)| distance2(f, &centroids[c])).sum();
    (assignments, centroids, inertia)
}

fn renumber(assignments: Vec<usize>, centroids: Vec<Vec<f64>>) -> (Vec<usize>, Vec<Vec<f64>>) {
    // Clusters in order of first appearance; one left empty (identical
    // points, k above their number) is dropped rather than reported empty.
    let mut map = vec![usize::MAX; centroids.len()];
    let mut kept = Vec::new();
    for &a in &assignments {
        if map[a] == usize::MAX {
            map[a] = kept.len();
            kept.push(centroids[a].clone());
        }
    }
    (assignments.iter().map(|&a| map[a]).collect(), kept)
}

/// Label values as indices 0.., in sorted order of the values.
fn codes<T: Ord + Clone>(labels: &[T]) -> (Vec<usize>, Vec<T>) {
    let mut values: Vec<T> = labels.to_vec();
    values.sort();
    values.dedup();
    (labels.iter().map(|l| values.binary_search(l).expect("a value of the list")).collect(), values)
}

/// counts[i][j]: items with true value i and predicted value j.
pub fn contingency(truth: &[usize], predicted: &[usize]) -> Vec<Vec<u64>> {
    let (t, tv) = codes(truth);
    let (p, pv) = codes(predicted);
    let mut table = vec![vec![0u64; pv.len()]; tv.len()];
    for (i, j) in t.iter().zip(&p) {
        table[*i][*j] += 1;
    }
    table
}

fn choose2(n: u64) -> f64 {
    n as f64 * (n as f64 - 1.0) / 2.0
}

/// Adjusted Rand index (scikit-learn's `adjusted_rand_score`).
pub fn adjusted_rand_index(truth: &[usize], predicted: &[usize]) -> f64 {
    let table = contingency(truth, predicted);
    let n = truth.len() as u64;
    let rows: Vec<u64> = table.iter().map(|r| r.iter().sum()).collect();
    let cols: Vec<u64> = (0..table.first().map_or(0, Vec::len)).map(|j| table.iter().map(|r| r[j]).sum()).collect();
    let index: f64 = table.iter().flatten().map(|&c| choose2(c)).sum();
    let sum_rows: f64 = rows.iter().map(|&c| choose2(c)).sum();
    let sum_cols: f64 = cols.iter().map(|&c| choose2(c)).sum();
    let pairs = choose2(n);
    // Identical partitions (including all-in-one and all-singletons) agree perfectly.
    if (sum_rows - index).abs() < 0.5 && (sum_cols - index).abs() < 0.5 {
        return 1.0;
    }
    let expected = sum_rows * sum_cols / pairs;
    let max = (sum_rows + sum_cols) / 2.0;
    (index - expected) / (max - expected)
}

fn entropy(counts: &[u64], n: f64) -> f64 {
    counts.iter().filter(|&&c| c > 0).map(|&c| -(c as f64 / n) * (c as f64 / n).ln()).sum()
}

/// Adjusted mutual information (scikit-learn's `adjusted_mutual_info_score`,
/// `average_method = "arithmetic"`).
pub fn adjusted_mutual_info(truth: &[usize], predicted: &[usize]) -> f64 {
    let table = contingency(truth, predicted);
    let rows: Vec<u64> = table.iter().map(|r| r.iter().sum()).collect();
    let cols: Vec<u64> = (0..table.first().map_or(0, Vec::len)).map(|j| table.iter().map(|r| r[j]).sum()).collect();
    if rows.len() == cols.len() && rows.len() <= 1 {
        return 1.0;
    }
    let n_items = truth.len() as u64;
    let n = n_items as f64;
    let mut mi = 0.0;
    for (i, row) in table.iter().enumerate() {
        for (j, &c) in row.iter().enumerate() {
            if c > 0 {
                mi += c as f64 / n * (n * c as f64 / (rows[i] as f64 * cols[j] as f64)).ln();
            }
        }
    }
    // ln(k!) for k = 0..=n: every term of the expected MI is a factorial.
    let mut ln_fact = vec![0.0f64; n_items as usize + 2];
    for k in 1..ln_fact.len() {
        ln_fact[k] = ln_fact[k - 1] + (k as f64).ln();
    }
    let lf = |k: u64| ln_fact[k as usize];
    let mut emi = 0.0;
    for &a in &rows {
        for &b in &cols {
            let start = (a + b).saturating_sub(n_items).max(1);
            for nij in start..=a.min(b) {
                let term1 = nij as f64 / n;
                let term2 = (n * nij as f64).ln() - (a as f64).ln() - (b as f64).ln();
                let gln = lf(a) + lf(b) + lf(n_items - a) + lf(n_items - b)
                    - lf(n_items)
                    - lf(nij)
                    - lf(a - nij)
                    - lf(b - nij)
                    - lf(n_items + nij - a - b);
                emi += term1 * term2 * gln.exp();
            }
        }
    }
    let normalizer = (entropy(&rows, n) + entropy(&cols, n)) / 2.0;
    let mut denominator = normalizer - emi;
    denominator = if denominator < 0.0 { denominator.min(-f64::EPSILON) } else { denominator.max(f64::EPSILON) };
    (mi - emi) / denominator
}

/// Clusters matched one-to-one to true groups so that the most items agree
/// (the Hungarian method; scipy's `linear_sum_assignment` on the negated table).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Matching {
    /// `confusion[c][g]`: items of cluster c whose true group is g.
    pub confusion: Vec<Vec<u64>>,
    /// The true group each cluster is matched with (None: more clusters than groups).
    pub cluster_to_group: Vec<Option<usize>>,
    /// Share of items in a cluster matched with their own group.
    pub matched_accuracy: f64,
}

/// `clusters` in 0..k, `groups` in 0..g.
pub fn hungarian_match(clusters: &[usize], groups: &[usize], k: usize, g: usize) -> Matching {
    let mut confusion = vec![vec![0u64; g]; k];
    for (&c, &t) in clusters.iter().zip(groups) {
        confusion[c][t] += 1;
    }
    let size = k.max(g).max(1);
    let square: Vec<Vec<i64>> =
        (0..size).map(|r| (0..size).map(|c| if r < k && c < g { confusion[r][c] as i64 } else { 0 }).collect()).collect();
    let matrix = Matrix::from_rows(square).expect("a square matrix");
    let (total, assignment) = kuhn_munkres(&matrix);
    let cluster_to_group = (0..k).map(|c| (assignment[c] < g).then_some(assignment[c])).collect();
    Matching { confusion, cluster_to_group, matched_accuracy: total as f64 / clusters.len().max(1) as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separated_blobs_are_found_and_agree_perfectly() {
        let mut rng = Rng::new(3);
        let centres = [[0.0, 0.0], [5.0, 5.0], [0.0, 6.0]];
        let truth: Vec<usize> = (0..150).map(|i| i % 3).collect();
        let features: Vec<Vec<f64>> = truth.iter().map(|&t| centres[t].iter().map(|c| c + 0.3 * rng.normal()).collect()).collect();
        let km = kmeans(&features, 3, 5, 1);
        assert!((adjusted_rand_index(&truth, &km.assignments) - 1.0).abs() < 1e-12);
        assert!((adjusted_mutual_info(&truth, &km.assignments) - 1.0).abs() < 1e-9);
        let m = hungarian_match(&km.assignments, &truth, 3, 3);
        assert_eq!(m.matched_accuracy, 1.0);
        assert_eq!(km.assignments[0], 0, "clusters are numbered by first appearance");
    }

    #[test]
    fn identical_points_leave_no_empty_cluster() {
        let features = vec![vec![0.0, 0.0], vec![0.0, 0.0], vec![1.0, 1.0]];
        let km = kmeans(&features, 3, 4, 0);
        assert_eq!(km.centroids.len(), 2, "two distinct points make two clusters, not an empty third");
        assert_eq!(km.assignments, vec![0, 0, 1]);
    }

    #[test]
    fn known_values() {
        // scikit-learn: adjusted_rand_score([0,0,1,1],[0,0,1,2]) = 0.5714285714285715
        assert!((adjusted_rand_index(&[0, 0, 1, 1], &[0, 0, 1, 2]) - 0.5714285714285715).abs() < 1e-12);
        assert_eq!(adjusted_rand_index(&[0, 0, 0], &[1, 1, 1]), 1.0);
        assert!(adjusted_mutual_info(&[0, 0, 1, 1], &[1, 1, 0, 0]) > 0.999);
    }
}
