//! The sparse solve of SpLiCE: for each target `z` (a centred unit image
//! embedding) and dictionary `D` (one unit row per concept),
//!
//! ```text
//! minimize  ||z - Dᵀw||² + λ·||w||₁   subject to  w ≥ 0
//! ```
//!
//! which is scikit-learn's `Lasso(alpha = λ / (2d), positive=True,
//! fit_intercept=False)` objective times `2d` (`d` = embedding size), so a
//! `--lambda` means what it means in the reference.
//!
//! Method: a working-set solver (as in celer, Massias et al. 2018). The only
//! work that touches the whole dictionary is `D·r` (the residual's correlation
//! with every concept): it runs batched over many images at once on the
//! device (a matrix product), through [`Correlate`]. Everything else is on a
//! working set of a few dozen concepts, with their Gram
//! matrix, on the host, in f64, solved exactly by an active-set method. It starts from zero (deterministic), and
//! stops on the duality gap of the whole problem, so the objective reached
//! is within `tolerance` (relative) of the optimum, whatever the dictionary.
//!
//! A target sparsity (`l0`) is reached by bisecting λ on a log scale between
//! 0 and `λ_max = 2·max(D z)` (above which `w = 0`), each solve warm-started
//! from the previous one.

use crate::error::{Error, Result};

/// Relative duality gap at which a solve stops: the objective is then within
/// this share of the optimum.
pub const DEFAULT_TOLERANCE: f64 = 1e-6;
/// Smallest working set (it doubles while the gap stays open).
const FIRST_WORKING_SET: usize = 32;
/// Bisection steps at most when searching λ for a target `l0`.
const MAX_SEARCH_STEPS: usize = 40;
/// Outer iterations at most per λ: the working set doubles each time, so
/// this is never reached before it covers the dictionary.
const MAX_OUTER: usize = 64;

/// The dictionary side of the solve: correlations of residuals with every
/// concept. Implemented on the host (tests, small lists) and on a burn device.
#[allow(async_fn_in_trait)]
pub trait Correlate {
    /// Number of concepts.
    fn words(&self) -> usize;
    /// Embedding size.
    fn dim(&self) -> usize;
    /// Concept `j`'s unit row.
    fn row(&self, j: usize) -> &[f32];
    /// `residuals` is row-major `[n, dim]`; returns row-major `[n, words]`:
    /// every residual's dot product with every concept.
    async fn correlate(&self, residuals: &[f32], n: usize) -> Result<Vec<f32>>;
}

/// What is asked of one target.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sparsity {
    /// A fixed λ (the reference's `l1_penalty`).
    Lambda(f64),
    /// The largest number of concepts not above this, by searching λ.
    TargetL0(usize),
}

impl Sparsity {
    pub fn check(self) -> Result<Self> {
        match self {
            Sparsity::Lambda(l) if !(l.is_finite() && l > 0.0) => {
                Err(Error::usage("--lambda", format!("{l} is not a positive number")))
            }
            Sparsity::TargetL0(k) if !(1..=1000).contains(&k) => {
                Err(Error::usage("--l0", format!("{k} concepts: choose 1 to 1000 (SpLiCE reads well at 3 to 50)")))
            }
            ok => Ok(ok),
        }
    }
}

/// A solved target.
#[derive(Clone, Debug, PartialEq)]
pub struct Solution {
    /// Nonzero weights as `(concept index, weight)`, largest first.
    pub weights: Vec<(usize, f64)>,
    pub lambda: f64,
    /// `||z - Dᵀw||² + λ·||w||₁` at `weights`.
    pub objective: f64,
    /// Duality gap at `weights` (an upper bound on `objective - optimum`).
    pub gap: f64,
    /// Whole-dictionary correlation passes this target needed.
    pub passes: usize,
}

impl Solution {
    pub fn l0(&self) -> usize {
        self.weights.len()
    }
}

/// Solves every target (row-major `[n, dim]`, each unit-norm) at `sparsity`,
/// batching the whole-dictionary work of all targets still running.
/// `progress(done, n)` is called after each batch round; returning `false`
/// cancels (the error is [`cancelled`]).
pub async fn solve_batch<C: Correlate>(
    dictionary: &C,
    targets: &[f32],
    sparsity: Sparsity,
    tolerance: f64,
    mut progress: impl FnMut(usize, usize) -> bool,
) -> Result<Vec<Solution>> {
    let dim = dictionary.dim();
    let n = targets.len() / dim.max(1);
    let sparsity = sparsity.check()?;
    let mut states: Vec<TargetSolve> =
        targets.chunks(dim).map(|z| TargetSolve::new(z.iter().map(|&x| f64::from(x)).collect(), sparsity, tolerance)).collect();
    loop {
        let running: Vec<usize> = (0..n).filter(|&i| states[i].done.is_none()).collect();
        if !progress(n - running.len(), n) {
            return Err(cancelled());
        }
        if running.is_empty() {
            break;
        }
        let mut residuals = Vec::with_capacity(running.len() * dim);
        for &i in &running {
            residuals.extend(states[i].residual(dictionary).iter().map(|&x| x as f32));
        }
        let correlations = dictionary.correlate(&residuals, running.len()).await?;
        let words = dictionary.words();
        for (k, &i) in running.iter().enumerate() {
            states[i].advance(dictionary, &correlations[k * words..(k + 1) * words]);
        }
    }
    Ok(states.into_iter().map(|s| s.done.expect("every target finished")).collect())
}

/// The error a cancelled solve returns.
pub fn cancelled() -> Error {
    Error::usage("decomposition", "cancelled")
}

/// One target's solve, advanced one whole-dictionary pass at a time.
struct TargetSolve {
    z: Vec<f64>,
    z_norm2: f64,
    sparsity: Sparsity,
    tolerance: f64,
    /// Current weights (sparse).
    w: Vec<(usize, f64)>,
    lambda: f64,
    /// `max(D z)`, from the first pass (where the residual is `z`).
    lambda_max: Option<f64>,
    working_set: usize,
    outer: usize,
    passes: usize,
    search: Search,
    done: Option<Solution>,
}

/// The λ bisection for a target `l0` (log scale).
#[derive(Clone, Debug)]
struct Search {
    /// λ known to give more than the target (or 0).
    low: f64,
    /// λ known to give at most the target.
    high: f64,
    steps: usize,
    /// The best solution so far with `l0 <= target`.
    best: Option<Solution>,
}

impl TargetSolve {
    fn new(z: Vec<f64>, sparsity: Sparsity, tolerance: f64) -> Self {
        let z_norm2 = z.iter().map(|x| x * x).sum();
        TargetSolve {
            z,
            z_norm2,
            sparsity,
            tolerance,
            w: Vec::new(),
            lambda: match sparsity {
                Sparsity::Lambda(l) => l,
                Sparsity::TargetL0(_) => f64::NAN,
            },
            lambda_max: None,
            working_set: FIRST_WORKING_SET,
            outer: 0,
            passes: 0,
            search: Search { low: 0.0, high: f64::NAN, steps: 0, best: None },
            done: None,
        }
    }

    fn residual<C: Correlate>(&self, d: &C) -> Vec<f64> {
        let mut r = self.z.clone();
        for &(j, wj) in &self.w {
            for (ri, &dij) in r.iter_mut().zip(d.row(j)) {
                *ri -= wj * f64::from(dij);
            }
        }
        r
    }

    /// Takes the correlations `h = D·r` of the current residual and works
    /// until another pass is needed or the target is done.
    fn advance<C: Correlate>(&mut self, d: &C, h: &[f32]) {
        self.passes += 1;
        let h: Vec<f64> = h.iter().map(|&x| f64::from(x)).collect();
        if self.lambda_max.is_none() {
            // First pass: w = 0 and the residual is z, so h = D z.
            let max = h.iter().copied().fold(0.0f64, f64::max);
            self.lambda_max = Some(2.0 * max);
            if let Sparsity::TargetL0(_) = self.sparsity {
                self.search.high = 2.0 * max;
                // At λ_max nothing is chosen: the fallback if no λ does better.
                self.search.best = Some(Solution {
                    weights: Vec::new(),
                    lambda: 2.0 * max,
                    objective: self.z_norm2,
                    gap: 0.0,
                    passes: 0,
                });
                // Start the bisection at the geometric middle of a wide bracket.
                self.lambda = 2.0 * max * 0.1;
            }
        }
        loop {
            let residual = self.residual(d);
            let (objective, gap) = self.gap(&residual, &h);
            let converged = gap <= self.tolerance * objective.max(1e-300) || self.outer >= MAX_OUTER;
            if !converged {
                self.outer += 1;
                self.solve_working_set(d, &h);
                return; // the new residual needs a pass
            }
            let solution = Solution {
                weights: sorted(&self.w),
                lambda: self.lambda,
                objective,
                gap,
                passes: self.passes,
            };
            match self.sparsity {
                Sparsity::Lambda(_) => {
                    self.done = Some(solution);
                    return;
                }
                Sparsity::TargetL0(target) => {
                    if let Some(next) = self.next_lambda(target, solution) {
                        // h belongs to the current w, whatever λ: go on at once.
                        self.lambda = next;
                        self.outer = 0;
                        self.working_set = FIRST_WORKING_SET.max(2 * self.w.len());
                    } else {
                        let best = self.search.best.take().expect("the search keeps a solution");
                        self.done = Some(Solution { passes: self.passes, ..best });
                        return;
                    }
                }
            }
        }
    }

    /// Records `solution` in the λ search and returns the next λ to try, or
    /// `None` when the search is over.
    fn next_lambda(&mut self, target: usize, solution: Solution) -> Option<f64> {
        let s = &mut self.search;
        s.steps += 1;
        let l0 = solution.l0();
        let lambda = solution.lambda;
        if l0 <= target {
            s.high = lambda;
            let better = match &s.best {
                None => true,
                Some(b) => l0 > b.l0() || (l0 == b.l0() && solution.objective < b.objective),
            };
            if better {
                s.best = Some(solution);
            }
        } else {
            s.low = lambda;
        }
        let hit = s.best.as_ref().is_some_and(|b| b.l0() == target);
        if hit || s.steps >= MAX_SEARCH_STEPS || s.high <= 0.0 {
            return None;
        }
        let lambda_max = self.lambda_max.unwrap_or(0.0);
        if s.low <= 0.0 {
            // Not yet bracketed from below: go down by decades.
            let next = s.high * 0.1;
            if next < lambda_max * 1e-9 {
                return None;
            }
            return Some(next);
        }
        if s.high / s.low < 1.0 + 1e-6 {
            return None;
        }
        Some((s.low * s.high).sqrt())
    }

    /// Objective and duality gap at the current weights, from the residual
    /// and its correlations with every concept.
    fn gap(&self, residual: &[f64], h: &[f64]) -> (f64, f64) {
        let alpha = self.lambda / 2.0;
        let r2: f64 = residual.iter().map(|x| x * x).sum();
        let l1: f64 = self.w.iter().map(|&(_, w)| w).sum();
        let primal = 0.5 * r2 + alpha * l1;
        // A dual-feasible point: the residual scaled so that no concept's
        // correlation exceeds alpha (only positive ones bind, as w >= 0).
        let max = h.iter().copied().fold(0.0f64, f64::max);
        let scale = if max > alpha { alpha / max } else { 1.0 };
        let z_dot_r: f64 = self.z.iter().zip(residual).map(|(a, b)| a * b).sum();
        let dual = scale * z_dot_r - 0.5 * scale * scale * r2;
        (2.0 * primal, (2.0 * (primal - dual)).max(0.0))
    }

    /// Solves the problem restricted to the current support plus the
    /// concepts most correlated with the residual, exactly (an active-set
    /// method: coordinate descent crawls on CLIP's strongly correlated
    /// words, "circle" beside "circles").
    fn solve_working_set<C: Correlate>(&mut self, d: &C, h: &[f64]) {
        let alpha = self.lambda / 2.0;
        let size = self.working_set.max(2 * self.w.len()).min(h.len());
        self.working_set = (self.working_set * 2).min(h.len());
        let mut set: Vec<usize> = self.w.iter().map(|&(j, _)| j).collect();
        let mut candidates: Vec<usize> = (0..h.len()).filter(|j| !set.contains(j)).collect();
        let take = size.saturating_sub(set.len()).min(candidates.len());
        if take > 0 && take < candidates.len() {
            candidates.select_nth_unstable_by(take - 1, |&a, &b| h[b].total_cmp(&h[a]).then(a.cmp(&b)));
        }
        candidates.truncate(take);
        candidates.sort_unstable();
        set.extend(candidates);
        let k = set.len();
        let rows: Vec<Vec<f64>> = set.iter().map(|&j| d.row(j).iter().map(|&x| f64::from(x)).collect()).collect();
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        let gram: Vec<f64> = (0..k * k).map(|ab| dot(&rows[ab / k], &rows[ab % k])).collect();
        let q: Vec<f64> = rows.iter().map(|row| dot(row, &self.z)).collect();
        let mut w = vec![0.0f64; k];
        for &(j, wj) in &self.w {
            w[set.iter().position(|&s| s == j).expect("the support is in the set")] = wj;
        }
        let b: Vec<f64> = q.iter().map(|qa| qa - alpha).collect();
        active_set_solve(&gram, &b, &mut w);
        self.w = set.into_iter().zip(w).filter(|&(_, wj)| wj > 0.0).collect();
    }
}

/// Lawson and Hanson's active-set method for `min ½ wᵀGw - bᵀw, w ≥ 0` (G the
/// `k x k` Gram matrix, row-major), warm-started from `w`: the free set is
/// solved exactly by Cholesky, a step that would turn a weight negative stops
/// at zero and frees it, and the concept with the largest positive gradient
/// joins the free set until none is left. Finite, and exact up to rounding.
fn active_set_solve(gram: &[f64], b: &[f64], w: &mut [f64]) {
    let k = b.len();
    let gradient = |w: &[f64], a: usize| b[a] - (0..k).map(|c| gram[a * k + c] * w[c]).sum::<f64>();
    let mut free: Vec<usize> = (0..k).filter(|&a| w[a] > 0.0).collect();
    for _ in 0..(4 * k + 16) {
        // The free set's unconstrained solution, walked to as far as it stays >= 0.
        loop {
            if free.is_empty() {
                break;
            }
            let s = solve_on(gram, b, &free, k);
            if s.iter().all(|&x| x > 0.0) {
                w.iter_mut().for_each(|x| *x = 0.0);
                free.iter().zip(&s).for_each(|(&a, &x)| w[a] = x);
                break;
            }
            // Step from w towards s until the first weight reaches zero.
            let mut step = 1.0f64;
            for (&a, &x) in free.iter().zip(&s) {
                if x <= 0.0 {
                    let t = w[a] / (w[a] - x);
                    step = step.min(t.max(0.0));
                }
            }
            let mut next = vec![0.0f64; k];
            free.iter().zip(&s).for_each(|(&a, &x)| next[a] = w[a] + step * (x - w[a]));
            w.copy_from_slice(&next);
            free.retain(|&a| w[a] > 1e-15);
            for (a, x) in w.iter_mut().enumerate() {
                if !free.contains(&a) {
                    *x = 0.0;
                }
            }
        }
        // The concept whose weight most wants to grow, if any does.
        let best = (0..k)
            .filter(|a| !free.contains(a))
            .map(|a| (a, gradient(w, a)))
            .filter(|&(_, g)| g > 1e-12)
            .max_by(|x, y| x.1.total_cmp(&y.1).then(y.0.cmp(&x.0)));
        match best {
            Some((a, _)) => free.push(a),
            None => return,
        }
    }
}

/// `G_FF⁻¹ b_F` for the free set `F` (Cholesky, with a tiny ridge: words
/// can be nearly collinear).
fn solve_on(gram: &[f64], b: &[f64], free: &[usize], k: usize) -> Vec<f64> {
    let n = free.len();
    let mut l = vec![0.0f64; n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut sum = gram[free[i] * k + free[j]];
            if i == j {
                sum += 1e-10;
            }
            for p in 0..j {
                sum -= l[i * n + p] * l[j * n + p];
            }
            l[i * n + j] = if i == j { sum.max(1e-20).sqrt() } else { sum / l[j * n + j] };
        }
    }
    let mut y = vec![0.0f64; n];
    for i in 0..n {
        let sum: f64 = (0..i).map(|p| l[i * n + p] * y[p]).sum();
        y[i] = (b[free[i]] - sum) / l[i * n + i];
    }
    let mut x = vec![0.0f64; n];
    for i in (0..n).rev() {
        let sum: f64 = (i + 1..n).map(|p| l[p * n + i] * x[p]).sum();
        x[i] = (y[i] - sum) / l[i * n + i];
    }
    x
}

fn sorted(w: &[(usize, f64)]) -> Vec<(usize, f64)> {
    let mut out = w.to_vec();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

/// The objective `||z - Dᵀw||² + λ||w||₁` of any weights (for tests and
/// comparisons with other solvers).
pub fn objective<C: Correlate>(d: &C, z: &[f32], weights: &[(usize, f64)], lambda: f64) -> f64 {
    let mut r: Vec<f64> = z.iter().map(|&x| f64::from(x)).collect();
    for &(j, wj) in weights {
        for (ri, &dij) in r.iter_mut().zip(d.row(j)) {
            *ri -= wj * f64::from(dij);
        }
    }
    r.iter().map(|x| x * x).sum::<f64>() + lambda * weights.iter().map(|&(_, w)| w).sum::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::concepts::Dictionary;
    use crate::rng::Rng;

    fn random_unit_rows(rng: &mut Rng, n: usize, dim: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(n * dim);
        for _ in 0..n {
            let row: Vec<f64> = (0..dim).map(|_| rng.normal()).collect();
            let norm = row.iter().map(|x| x * x).sum::<f64>().sqrt();
            out.extend(row.iter().map(|x| (x / norm) as f32));
        }
        out
    }

    /// Projected gradient descent to high precision: an independent optimum.
    fn brute_force(d: &Dictionary, z: &[f32], lambda: f64) -> f64 {
        let words = d.len();
        let mut w = vec![0.0f64; words];
        // Lipschitz constant of the gradient: 2 * ||D||² <= 2 * words.
        let step = 1.0 / (2.0 * words as f64);
        for _ in 0..200_000 {
            let mut r: Vec<f64> = z.iter().map(|&x| f64::from(x)).collect();
            for j in 0..words {
                for (ri, &dij) in r.iter_mut().zip(d.row(j)) {
                    *ri -= w[j] * f64::from(dij);
                }
            }
            for j in 0..words {
                let grad = -2.0 * d.row(j).iter().zip(&r).map(|(&a, b)| f64::from(a) * b).sum::<f64>() + lambda;
                w[j] = (w[j] - step * grad).max(0.0);
            }
        }
        let weights: Vec<(usize, f64)> = w.iter().copied().enumerate().filter(|&(_, x)| x > 0.0).collect();
        objective(d, z, &weights, lambda)
    }

    #[test]
    fn reaches_the_optimum_of_a_small_problem() {
        let mut rng = Rng::new(3);
        let d = Dictionary::from_rows("random", random_unit_rows(&mut rng, 12, 6), 6);
        let z = random_unit_rows(&mut rng, 3, 6);
        for lambda in [0.05, 0.3, 1.0] {
            let out = pollster::block_on(solve_batch(&d, &z, Sparsity::Lambda(lambda), 1e-9, |_, _| true)).unwrap();
            for (i, s) in out.iter().enumerate() {
                let zi = &z[i * 6..(i + 1) * 6];
                let best = brute_force(&d, zi, lambda);
                assert!((s.objective - best).abs() <= 1e-6 * best, "λ {lambda}: {} vs {best}", s.objective);
                assert!((s.objective - objective(&d, zi, &s.weights, lambda)).abs() < 1e-9);
                assert!(s.weights.iter().all(|&(_, w)| w > 0.0));
            }
        }
    }

    #[test]
    fn a_large_lambda_gives_nothing_and_a_target_l0_is_met() {
        let mut rng = Rng::new(5);
        let d = Dictionary::from_rows("random", random_unit_rows(&mut rng, 400, 32), 32);
        let z = random_unit_rows(&mut rng, 4, 32);
        let none = pollster::block_on(solve_batch(&d, &z, Sparsity::Lambda(100.0), 1e-6, |_, _| true)).unwrap();
        assert!(none.iter().all(|s| s.l0() == 0 && (s.objective - 1.0).abs() < 1e-6));
        for target in [1, 3, 10, 20] {
            let out = pollster::block_on(solve_batch(&d, &z, Sparsity::TargetL0(target), 1e-6, |_, _| true)).unwrap();
            for s in &out {
                assert!(s.l0() <= target && s.l0() + 2 >= target, "target {target}: l0 {}", s.l0());
            }
        }
    }

    #[test]
    fn cancel_stops_the_batch() {
        let mut rng = Rng::new(6);
        let d = Dictionary::from_rows("random", random_unit_rows(&mut rng, 50, 8), 8);
        let z = random_unit_rows(&mut rng, 2, 8);
        let e = pollster::block_on(solve_batch(&d, &z, Sparsity::Lambda(0.1), 1e-6, |_, _| false)).unwrap_err();
        assert_eq!(e, cancelled());
        assert!(Sparsity::TargetL0(0).check().is_err());
        assert!(Sparsity::Lambda(-1.0).check().is_err());
    }
}
