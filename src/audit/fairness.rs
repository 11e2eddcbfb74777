//! Per-group performance of the user's own model (a predictions CSV), the
//! way Fairlearn's `MetricFrame` reports it: n, accuracy, error rate,
//! selection rate, TPR and FPR per group, the demographic-parity and
//! equalized-odds differences (`between_groups`, `worst_case`), each with a
//! percentile bootstrap interval over rows, and the worst group.

use serde::{Deserialize, Serialize};

use super::stats::{self, Estimate};

/// Groups smaller than this get a warning (and grey cells on the page).
pub const SMALL_GROUP: usize = 30;

/// One row per item.
#[derive(Debug, Clone)]
pub struct Outcomes<'a> {
    pub truth: &'a [String],
    pub predicted: &'a [String],
    /// Group index of each item (into `group_names`).
    pub groups: &'a [usize],
    pub group_names: &'a [String],
    /// The label counted as a selection (positive) for parity and TPR/FPR.
    pub positive: &'a str,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct GroupRow {
    pub group: String,
    pub n: usize,
    pub accuracy: Estimate,
    pub error_rate: Estimate,
    /// P(prediction = positive).
    pub selection_rate: Estimate,
    /// P(prediction = positive | label = positive); None without positives.
    pub true_positive_rate: Option<Estimate>,
    /// P(prediction = positive | label != positive); None without negatives.
    pub false_positive_rate: Option<Estimate>,
    pub small: bool,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct FairnessReport {
    pub positive: String,
    pub n: usize,
    pub overall_accuracy: Estimate,
    pub groups: Vec<GroupRow>,
    pub worst_group: Option<String>,
    pub worst_group_accuracy: Estimate,
    /// Largest minus smallest group accuracy.
    pub accuracy_gap: Estimate,
    /// max_g selection rate - min_g selection rate.
    pub demographic_parity_difference: Estimate,
    /// max(TPR difference, FPR difference) between groups.
    pub equalized_odds_difference: Estimate,
    pub resamples: usize,
    pub seed: u64,
    pub warnings: Vec<String>,
}

/// Counts of one group over some rows.
#[derive(Default, Clone, Copy)]
struct Counts {
    n: f64,
    correct: f64,
    selected: f64,
    positives: f64,
    true_positives: f64,
    negatives: f64,
    false_positives: f64,
}

impl Counts {
    fn rate(a: f64, b: f64) -> f64 {
        if b > 0.0 { a / b } else { f64::NAN }
    }
    fn accuracy(&self) -> f64 {
        Self::rate(self.correct, self.n)
    }
    fn selection(&self) -> f64 {
        Self::rate(self.selected, self.n)
    }
    fn tpr(&self) -> f64 {
        Self::rate(self.true_positives, self.positives)
    }
    fn fpr(&self) -> f64 {
        Self::rate(self.false_positives, self.negatives)
    }
}

struct Rows {
    correct: Vec<bool>,
    selected: Vec<bool>,
    positive: Vec<bool>,
    group: Vec<usize>,
    groups: usize,
}

impl Rows {
    fn counts(&self, rows: &[usize]) -> Vec<Counts> {
        let mut c = vec![Counts::default(); self.groups];
        for &i in rows {
            let g = &mut c[self.group[i]];
            g.n += 1.0;
            g.correct += f64::from(u8::from(self.correct[i]));
            g.selected += f64::from(u8::from(self.selected[i]));
            if self.positive[i] {
                g.positives += 1.0;
                g.true_positives += f64::from(u8::from(self.selected[i]));
            } else {
                g.negatives += 1.0;
                g.false_positives += f64::from(u8::from(self.selected[i]));
            }
        }
        c
    }
}

/// max - min of the defined values; NaN when fewer than two are defined.
fn spread(values: impl Iterator<Item = f64>) -> f64 {
    let defined: Vec<f64> = values.filter(|v| v.is_finite()).collect();
    if defined.len() < 2 {
        return f64::NAN;
    }
    defined.iter().copied().fold(f64::MIN, f64::max) - defined.iter().copied().fold(f64::MAX, f64::min)
}

fn min_defined(values: impl Iterator<Item = f64>) -> f64 {
    values.filter(|v| v.is_finite()).fold(f64::NAN, |m, v| if m.is_nan() || v < m { v } else { m })
}

fn equalized_odds(c: &[Counts]) -> f64 {
    let tpr = spread(c.iter().map(Counts::tpr));
    let fpr = spread(c.iter().map(Counts::fpr));
    match (tpr.is_finite(), fpr.is_finite()) {
        (true, true) => tpr.max(fpr),
        (true, false) => tpr,
        (false, true) => fpr,
        _ => f64::NAN,
    }
}

/// The report; bootstrap draws come from `seed` (one stream per metric,
/// `seed + k`, so adding a metric moves no other interval).
pub fn fairness(o: &Outcomes, resamples: usize, seed: u64) -> FairnessReport {
    let n = o.truth.len();
    let rows = Rows {
        correct: o.truth.iter().zip(o.predicted).map(|(t, p)| t == p).collect(),
        selected: o.predicted.iter().map(|p| p == o.positive).collect(),
        positive: o.truth.iter().map(|t| t == o.positive).collect(),
        group: o.groups.to_vec(),
        groups: o.group_names.len(),
    };
    let boot = |k: u64, f: &dyn Fn(&[usize]) -> f64| stats::bootstrap(n, resamples, seed.wrapping_add(k), f);
    let overall_accuracy = boot(0, &|r: &[usize]| r.iter().filter(|&&i| rows.correct[i]).count() as f64 / r.len() as f64);
    let all = rows.counts(&(0..n).collect::<Vec<_>>());
    let mut groups = Vec::new();
    let mut warnings = Vec::new();
    for (g, name) in o.group_names.iter().enumerate() {
        let c = all[g];
        let group_stat = |k: u64, f: fn(&Counts) -> f64| boot(10 + 10 * g as u64 + k, &|r: &[usize]| f(&rows.counts(r)[g]));
        let small = (c.n as usize) < SMALL_GROUP;
        if small {
            warnings.push(format!("group {name:?} has {} items (under {SMALL_GROUP}): its figures are unreliable", c.n as usize));
        }
        groups.push(GroupRow {
            group: name.clone(),
            n: c.n as usize,
            accuracy: group_stat(0, Counts::accuracy),
            error_rate: group_stat(1, |c| 1.0 - c.accuracy()),
            selection_rate: group_stat(2, Counts::selection),
            true_positive_rate: (c.positives > 0.0).then(|| group_stat(3, Counts::tpr)),
            false_positive_rate: (c.negatives > 0.0).then(|| group_stat(4, Counts::fpr)),
            small,
        });
    }
    let worst = (0..o.group_names.len()).filter(|&g| all[g].n > 0.0).min_by(|&a, &b| all[a].accuracy().total_cmp(&all[b].accuracy()));
    FairnessReport {
        positive: o.positive.to_string(),
        n,
        overall_accuracy,
        worst_group: worst.map(|g| o.group_names[g].clone()),
        worst_group_accuracy: boot(1, &|r: &[usize]| min_defined(rows.counts(r).iter().map(Counts::accuracy))),
        accuracy_gap: boot(2, &|r: &[usize]| spread(rows.counts(r).iter().map(Counts::accuracy))),
        demographic_parity_difference: boot(3, &|r: &[usize]| spread(rows.counts(r).iter().map(Counts::selection))),
        equalized_odds_difference: boot(4, &|r: &[usize]| equalized_odds(&rows.counts(r))),
        groups,
        resamples,
        seed,
        warnings,
    }
}

/// The label treated as positive when the user names none: the last in
/// sorted order ("1" of 0/1, "yes" of no/yes, "true" of false/true).
pub fn default_positive(labels: &[String]) -> Option<String> {
    labels.iter().max().cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parity_and_odds_differences_by_hand() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let truth = s(&["1", "1", "0", "0", "1", "1", "0", "0"]);
        let pred = s(&["1", "1", "0", "0", "1", "0", "1", "1"]);
        let groups = [0, 0, 0, 0, 1, 1, 1, 1];
        let names = s(&["a", "b"]);
        let r = fairness(&Outcomes { truth: &truth, predicted: &pred, groups: &groups, group_names: &names, positive: "1" }, 200, 1);
        assert_eq!(r.groups[0].accuracy.value, 1.0);
        assert_eq!(r.groups[1].accuracy.value, 0.25);
        // selection: a 2/4, b 3/4; TPR a 1, b 1/2; FPR a 0, b 1.
        assert!((r.demographic_parity_difference.value - 0.25).abs() < 1e-12);
        assert!((r.equalized_odds_difference.value - 1.0).abs() < 1e-12);
        assert_eq!(r.worst_group.as_deref(), Some("b"));
        assert_eq!(r.warnings.len(), 2);
    }
}
