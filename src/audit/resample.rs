//! Resampling weights for a fairer downstream model (CLIP-debias,
//! arXiv 2403.10624, as its abstract describes it: re-sample the groups CLIP
//! infers, more where the model does worse). Weights average 1 over the
//! items, so they drop into a weighted sampler or loss as they are.

/// Each cell (cluster, or cluster x label) gets the same total weight.
pub fn balanced(cells: &[usize]) -> Vec<f64> {
    let n = cells.len() as f64;
    let count = cells.iter().copied().max().map_or(0, |m| m + 1);
    let mut sizes = vec![0usize; count];
    for &c in cells {
        sizes[c] += 1;
    }
    let present = sizes.iter().filter(|&&s| s > 0).count() as f64;
    cells.iter().map(|&c| n / (present * sizes[c] as f64)).collect()
}

/// Cells with more errors get more weight: cell mass ∝ exp(error rate / T),
/// shared equally by the cell's items. T → ∞ gives [`balanced`]; a small T
/// puts everything on the worst cell. `errors[i]` is item i's loss or 0/1 error.
pub fn loss_weighted(cells: &[usize], errors: &[f64], temperature: f64) -> Vec<f64> {
    let n = cells.len() as f64;
    let count = cells.iter().copied().max().map_or(0, |m| m + 1);
    let mut sizes = vec![0usize; count];
    let mut sums = vec![0.0; count];
    for (&c, &e) in cells.iter().zip(errors) {
        sizes[c] += 1;
        sums[c] += e;
    }
    let rates: Vec<f64> = sums.iter().zip(&sizes).map(|(s, &z)| if z > 0 { s / z as f64 } else { 0.0 }).collect();
    let top = rates.iter().copied().fold(f64::MIN, f64::max);
    let mass: Vec<f64> =
        rates.iter().zip(&sizes).map(|(r, &z)| if z > 0 { ((r - top) / temperature.max(1e-6)).exp() } else { 0.0 }).collect();
    let total: f64 = mass.iter().sum();
    cells.iter().map(|&c| mass[c] / total * n / sizes[c] as f64).collect()
}

/// Cell index of (group, label) pairs: `group * labels + label`.
pub fn cells(groups: &[usize], labels: &[usize], label_count: usize) -> Vec<usize> {
    groups.iter().zip(labels).map(|(g, l)| g * label_count + l).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_average_one_and_balance_cells() {
        let cells = [0, 0, 0, 1];
        let w = balanced(&cells);
        assert!((w.iter().sum::<f64>() - 4.0).abs() < 1e-12);
        assert!((w[0] * 3.0 - w[3]).abs() < 1e-12);
        let l = loss_weighted(&cells, &[1.0, 1.0, 1.0, 0.0], 0.1);
        assert!((l.iter().sum::<f64>() - 4.0).abs() < 1e-9);
        assert!(l[0] > l[3] / 3.0);
        let hot = loss_weighted(&cells, &[0.0, 0.0, 0.0, 0.0], 1.0);
        assert!(hot.iter().zip(&w).all(|(a, b)| (a - b).abs() < 1e-12));
    }
}
