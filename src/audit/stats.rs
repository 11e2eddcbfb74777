//! The resampling statistics every audit figure rests on: percentile
//! bootstrap intervals and permutation tests, all drawn from the project's
//! seeded [`Rng`] so that a seed gives the same interval on every platform
//! (and in `tests/audit/make_fixtures.py`, which replays the generator).

use serde::{Deserialize, Serialize};

use crate::rng::Rng;

/// Resamples behind every bootstrap interval unless a caller asks otherwise.
pub const DEFAULT_RESAMPLES: usize = 2000;

/// A statistic with its 95% percentile bootstrap interval. An undefined
/// figure (a group with no items) is NaN, written as JSON `null`.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    #[serde(deserialize_with = "nullable::number")]
    pub value: f64,
    #[serde(deserialize_with = "nullable::pair")]
    pub ci95: [f64; 2],
}

/// JSON has no NaN: serde_json writes it as `null`; these read it back.
pub mod nullable {
    use serde::{Deserialize, Deserializer};

    pub fn number<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }

    pub fn pair<'de, D: Deserializer<'de>>(d: D) -> Result<[f64; 2], D::Error> {
        let [a, b] = <[Option<f64>; 2]>::deserialize(d)?;
        Ok([a.unwrap_or(f64::NAN), b.unwrap_or(f64::NAN)])
    }
}

impl Estimate {
    pub fn exact(value: f64) -> Estimate {
        Estimate { value, ci95: [value, value] }
    }
}

/// The `q` quantile of sorted draws, as `sorted[floor(q·n)]` (clamped): the
/// rule the fixtures replay, so it is spelled out rather than interpolated.
pub fn quantile_of_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((q * sorted.len() as f64) as usize).min(sorted.len() - 1)]
}

/// Percentile bootstrap over `n` rows: each resample draws `n` row indices
/// with replacement and `statistic` turns them into a number. Resamples whose
/// statistic is undefined (NaN, e.g. a group absent from the draw) are left
/// out of the interval. Returns the statistic on all rows with the interval.
pub fn bootstrap(n: usize, resamples: usize, seed: u64, statistic: impl Fn(&[usize]) -> f64) -> Estimate {
    let all: Vec<usize> = (0..n).collect();
    let value = statistic(&all);
    if n == 0 || resamples == 0 {
        return Estimate { value, ci95: [f64::NAN, f64::NAN] };
    }
    let mut rng = Rng::new(seed);
    let mut draws = Vec::with_capacity(resamples);
    let mut rows = vec![0usize; n];
    for _ in 0..resamples {
        for r in rows.iter_mut() {
            *r = rng.below(n);
        }
        let s = statistic(&rows);
        if s.is_finite() {
            draws.push(s);
        }
    }
    draws.sort_by(f64::total_cmp);
    Estimate { value, ci95: [quantile_of_sorted(&draws, 0.025), quantile_of_sorted(&draws, 0.975)] }
}

/// Bootstrap of a mean.
pub fn bootstrap_mean(values: &[f64], resamples: usize, seed: u64) -> Estimate {
    bootstrap(values.len(), resamples, seed, |rows| rows.iter().map(|&i| values[i]).sum::<f64>() / rows.len() as f64)
}

/// An in-place Fisher-Yates shuffle from `rng` (the fixtures replay it).
pub fn shuffle<T>(items: &mut [T], rng: &mut Rng) {
    for i in (1..items.len()).rev() {
        let j = rng.below(i + 1);
        items.swap(i, j);
    }
}

/// n choose k, saturating at `u64::MAX`.
pub fn binomial(n: usize, k: usize) -> u64 {
    if k > n {
        return 0;
    }
    let k = k.min(n - k.min(n));
    let mut c: u128 = 1;
    for i in 0..k {
        c = c * (n - i) as u128 / (i + 1) as u128;
        if c > u64::MAX as u128 {
            return u64::MAX;
        }
    }
    c as u64
}

/// Calls `visit` with every `k`-subset of `0..n`, in lexicographic order.
pub fn for_each_combination(n: usize, k: usize, mut visit: impl FnMut(&[usize])) {
    if k > n {
        return;
    }
    let mut idx: Vec<usize> = (0..k).collect();
    loop {
        visit(&idx);
        // The rightmost index that can still move right.
        let mut i = k;
        while i > 0 && idx[i - 1] == i - 1 + n - k {
            i -= 1;
        }
        if i == 0 {
            return;
        }
        i -= 1;
        idx[i] += 1;
        for j in i + 1..k {
            idx[j] = idx[j - 1] + 1;
        }
    }
}

/// How a permutation p-value was obtained.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
pub struct PermutationTest {
    pub p_value: f64,
    /// Re-partitions (or sign patterns) counted, the observed one included.
    pub permutations: u64,
    /// Every re-partition enumerated (else `permutations` random ones, seeded).
    pub exact: bool,
}

/// Floating-point slack when comparing a permuted statistic with the observed
/// one: the observed partition recomputed in another order must still count.
const TIE: f64 = 1e-12;

/// One-sided test of `statistic(first group)` over equal-size
/// re-partitions of `0..n` into a group of `k` and the rest: the share of
/// partitions whose statistic is at least the observed one (`observed`).
/// Exact when C(n, k) <= `limit`; else `limit` random partitions plus the
/// observed one, p = (1 + hits) / (1 + limit).
pub fn partition_test(n: usize, k: usize, observed: f64, limit: usize, seed: u64, statistic: impl Fn(&[usize]) -> f64) -> PermutationTest {
    let total = binomial(n, k);
    if total <= limit as u64 {
        let mut hits = 0u64;
        for_each_combination(n, k, |first| {
            if statistic(first) >= observed - TIE {
                hits += 1;
            }
        });
        return PermutationTest { p_value: hits as f64 / total as f64, permutations: total, exact: true };
    }
    let mut rng = Rng::new(seed);
    let mut order: Vec<usize> = (0..n).collect();
    let mut hits = 0u64;
    for _ in 0..limit {
        shuffle(&mut order, &mut rng);
        if statistic(&order[..k]) >= observed - TIE {
            hits += 1;
        }
    }
    PermutationTest { p_value: (1 + hits) as f64 / (1 + limit) as f64, permutations: limit as u64 + 1, exact: false }
}

/// Two-sided paired test by sign flips: the share of sign patterns whose
/// |mean| of `differences` is at least the observed |mean|. Exact when
/// 2^n <= `limit`, else `limit` random patterns plus the observed one.
pub fn sign_flip_test(differences: &[f64], limit: usize, seed: u64) -> PermutationTest {
    let n = differences.len();
    let observed = differences.iter().sum::<f64>().abs();
    if n < 63 && (1u64 << n) <= limit as u64 {
        let total = 1u64 << n;
        let hits = (0..total)
            .filter(|pattern| {
                let s: f64 = differences.iter().enumerate().map(|(i, d)| if pattern >> i & 1 == 1 { -d } else { *d }).sum();
                s.abs() >= observed - TIE
            })
            .count() as u64;
        return PermutationTest { p_value: hits as f64 / total as f64, permutations: total, exact: true };
    }
    let mut rng = Rng::new(seed);
    let mut hits = 0u64;
    for _ in 0..limit {
        let s: f64 = differences.iter().map(|d| if rng.below(2) == 1 { -d } else { *d }).sum();
        if s.abs() >= observed - TIE {
            hits += 1;
        }
    }
    PermutationTest { p_value: (1 + hits) as f64 / (1 + limit) as f64, permutations: limit as u64 + 1, exact: false }
}

pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// Sample standard deviation (ddof = 1).
pub fn sample_sd(values: &[f64]) -> f64 {
    let m = mean(values);
    (values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (values.len().max(2) - 1) as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combinations_are_all_visited_once() {
        let mut seen = Vec::new();
        for_each_combination(5, 2, |c| seen.push(c.to_vec()));
        assert_eq!(seen.len(), 10);
        assert_eq!(seen[0], vec![0, 1]);
        assert_eq!(seen[9], vec![3, 4]);
        assert_eq!(binomial(16, 8), 12870);
        let mut count = 0;
        for_each_combination(3, 3, |_| count += 1);
        assert_eq!(count, 1);
    }

    #[test]
    fn a_clear_difference_is_significant_and_none_is_not() {
        let values = [5.0, 6.0, 7.0, 8.0, 0.0, 1.0, 2.0, 3.0];
        let sum = |g: &[usize]| g.iter().map(|&i| values[i]).sum::<f64>();
        let observed = sum(&[0, 1, 2, 3]);
        let t = partition_test(8, 4, observed, 100_000, 1, sum);
        assert!(t.exact);
        assert_eq!(t.permutations, 70);
        assert!((t.p_value - 1.0 / 70.0).abs() < 1e-12);
        let flips = sign_flip_test(&[1.0, -1.0, 1.0, -1.0], 1000, 1);
        assert_eq!(flips.p_value, 1.0);
    }

    #[test]
    fn bootstrap_intervals_cover_the_mean() {
        let values: Vec<f64> = (0..200).map(|i| (i % 10) as f64).collect();
        let e = bootstrap_mean(&values, 1000, 7);
        assert!((e.value - 4.5).abs() < 1e-12);
        assert!(e.ci95[0] < 4.5 && 4.5 < e.ci95[1] && e.ci95[1] - e.ci95[0] < 1.5);
    }
}
