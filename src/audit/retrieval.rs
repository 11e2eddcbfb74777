//! Retrieval skew: who a neutral query brings up first. MaxSkew@k and
//! MinSkew@k (Geyik et al. 2019) and NDKL, as in `oxai/debias-vision-lang`
//! and VisoGender: a group absent from the top k counts as 1/k, logs are natural.

use serde::{Deserialize, Serialize};

/// Skew of each group in the top `k` of `ranked` (group per rank, best
/// first): ln(share in the top k / target share).
pub fn skews(ranked: &[usize], k: usize, target: &[f64]) -> Vec<f64> {
    let k = k.min(ranked.len()).max(1);
    let mut counts = vec![0usize; target.len()];
    for &g in &ranked[..k.min(ranked.len())] {
        counts[g] += 1;
    }
    counts
        .iter()
        .zip(target)
        .map(|(&c, &t)| {
            let share = if c == 0 { 1.0 / k as f64 } else { c as f64 / k as f64 };
            (share / t).ln()
        })
        .collect()
}

/// Normalized discounted KL divergence of the top-i distributions, i = 1..=k,
/// from `target`.
pub fn ndkl(ranked: &[usize], k: usize, target: &[f64]) -> f64 {
    let k = k.min(ranked.len());
    let mut counts = vec![0usize; target.len()];
    let (mut total, mut z) = (0.0, 0.0);
    for i in 1..=k {
        counts[ranked[i - 1]] += 1;
        let kl: f64 = counts
            .iter()
            .zip(target)
            .filter(|(c, _)| **c > 0)
            .map(|(&c, &t)| {
                let p = c as f64 / i as f64;
                p * (p / t).ln()
            })
            .sum();
        let discount = 1.0 / ((i + 1) as f64).log2();
        total += kl * discount;
        z += discount;
    }
    if z > 0.0 { total / z } else { 0.0 }
}

/// One query's skew figures against one target distribution.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct SkewReport {
    pub query: String,
    /// What the groups are: "pseudo-group", or "CLIP-perceived <attribute>"
    /// (then images the zero-shot abstained on are left out of the ranking).
    #[serde(default = "pseudo_group")]
    pub grouping: String,
    pub k: usize,
    /// "uniform" or "dataset" (the folder's own group shares).
    pub target: String,
    #[serde(deserialize_with = "super::stats::nullable::number")]
    pub max_skew: f64,
    pub max_skew_group: String,
    #[serde(deserialize_with = "super::stats::nullable::number")]
    pub min_skew: f64,
    pub min_skew_group: String,
    #[serde(deserialize_with = "super::stats::nullable::number")]
    pub ndkl: f64,
    /// Group counts in the top k.
    pub top_counts: Vec<usize>,
}

fn pseudo_group() -> String {
    "pseudo-group".into()
}

pub fn skew_report(query: &str, grouping: &str, ranked: &[usize], k: usize, target_name: &str, target: &[f64], names: &[String]) -> SkewReport {
    let s = skews(ranked, k, target);
    let (imax, imin) = (argmax(&s), argmax(&s.iter().map(|v| -v).collect::<Vec<_>>()));
    let mut top_counts = vec![0; target.len()];
    for &g in &ranked[..k.min(ranked.len())] {
        top_counts[g] += 1;
    }
    SkewReport {
        query: query.to_string(),
        grouping: grouping.to_string(),
        k: k.min(ranked.len()),
        target: target_name.to_string(),
        max_skew: s[imax],
        max_skew_group: names[imax].clone(),
        min_skew: s[imin],
        min_skew_group: names[imin].clone(),
        ndkl: ndkl(ranked, k, target),
        top_counts,
    }
}

fn argmax(values: &[f64]) -> usize {
    (0..values.len()).max_by(|&a, &b| values[a].total_cmp(&values[b])).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_balanced_ranking_has_no_skew() {
        let ranked = [0, 1, 0, 1, 0, 1];
        let s = skews(&ranked, 6, &[0.5, 0.5]);
        assert!(s.iter().all(|v| v.abs() < 1e-12));
        assert!(ndkl(&ranked, 6, &[0.5, 0.5]) > 0.0, "the first ranks are one-sided");
        let only = skews(&[0, 0, 0, 0], 4, &[0.5, 0.5]);
        assert!((only[0] - 2f64.ln()).abs() < 1e-12 && (only[1] - (0.25f64 / 0.5).ln()).abs() < 1e-12);
    }
}
