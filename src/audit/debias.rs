//! CLIP-debias end to end: a small target classifier (a linear softmax head
//! on frozen image embeddings, trained with burn on any device) trained three
//! ways on the same split: plain ERM, resampled by CLIP's pseudo-groups
//! (CLIP-debias), and resampled by the true groups (the oracle, when labels
//! exist). Each is scored on a held-out split: overall and worst-group
//! accuracy and parity gaps, with bootstrap intervals.

use std::collections::BTreeMap;

#[cfg(feature = "compute")]
use burn::tensor::activation::log_softmax;
#[cfg(feature = "compute")]
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::fairness::{self, FairnessReport, Outcomes};
use super::folder::FolderReport;
use super::tables::Table;
use super::resample;
use super::stats::{self, Estimate};
#[cfg(feature = "compute")]
use crate::clip::read_vec;
use crate::rng::Rng;
use crate::{Error, Result};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct HeadSettings {
    pub epochs: usize,
    pub batch: usize,
    pub learning_rate: f64,
    /// L2 penalty on the weights (bias row included).
    pub weight_decay: f64,
    /// Share of items held out for scoring.
    pub test_share: f64,
    /// Temperature of the loss-weighted CLIP-debias variant.
    pub temperature: f64,
    pub seed: u64,
    pub resamples: usize,
}

impl Default for HeadSettings {
    fn default() -> Self {
        HeadSettings {
            epochs: 60,
            batch: 64,
            learning_rate: 0.01,
            weight_decay: 1e-4,
            test_share: 0.4,
            temperature: 1.0,
            seed: 0,
            resamples: stats::DEFAULT_RESAMPLES,
        }
    }
}

/// A linear head: logits = [x, 1] · W, W of shape [dim + 1, classes].
pub struct LinearHead {
    pub dim: usize,
    pub classes: usize,
    pub weights: Vec<f32>,
}

impl LinearHead {
    pub fn predict(&self, x: &[f32]) -> usize {
        (0..self.classes).max_by(|&a, &b| self.logit(x, a).total_cmp(&self.logit(x, b))).unwrap_or(0)
    }

    fn logit(&self, x: &[f32], class: usize) -> f32 {
        x.iter().enumerate().map(|(i, v)| v * self.weights[i * self.classes + class]).sum::<f32>()
            + self.weights[self.dim * self.classes + class]
    }
}

#[cfg(feature = "compute")]
const BETA1: f64 = 0.9;
#[cfg(feature = "compute")]
const BETA2: f64 = 0.999;

#[cfg(feature = "compute")]
/// Trains a head on `x` (rows, standardized by the caller) for labels `y`;
/// each epoch draws `x.len()` items with replacement in proportion to `weights`.
pub async fn train_head(
    device: &Device,
    x: &[Vec<f32>],
    y: &[usize],
    classes: usize,
    weights: &[f64],
    s: &HeadSettings,
    seed: u64,
) -> Result<LinearHead> {
    let n = x.len();
    let dim = x.first().map_or(0, Vec::len);
    if n == 0 || classes < 2 {
        return Err(Error::usage("training set", "needs items of at least two classes"));
    }
    let mut cumulative = Vec::with_capacity(n);
    let mut total = 0.0;
    for w in weights {
        total += w.max(0.0);
        cumulative.push(total);
    }
    let mut rng = Rng::new(seed);
    let mut w = Tensor::<2>::zeros([dim + 1, classes], device);
    let mut moments: Option<(Tensor<2>, Tensor<2>)> = None;
    let mut t = 0;
    for _ in 0..s.epochs {
        let draws: Vec<usize> = (0..n)
            .map(|_| {
                let u = rng.unit() * total;
                cumulative.partition_point(|&c| c <= u).min(n - 1)
            })
            .collect();
        for batch in draws.chunks(s.batch.max(1)) {
            let b = batch.len();
            let mut xs = Vec::with_capacity(b * (dim + 1));
            let mut onehot = vec![0.0f32; b * classes];
            for (r, &i) in batch.iter().enumerate() {
                xs.extend_from_slice(&x[i]);
                xs.push(1.0);
                onehot[r * classes + y[i]] = 1.0;
            }
            let xb = Tensor::<2>::from_data(TensorData::new(xs, [b, dim + 1]), device).autodiff();
            let yb = Tensor::<2>::from_data(TensorData::new(onehot, [b, classes]), device).autodiff();
            let leaf = w.clone().autodiff().require_grad();
            let logp = log_softmax(xb.matmul(leaf.clone()), 1);
            let loss = (logp * yb).sum().neg() / b as f64 + leaf.clone().powi_scalar(2).sum() * s.weight_decay;
            let grads = loss.backward();
            let g = leaf.grad(&grads).expect("the head's weights require a gradient");
            t += 1;
            let (m, v) = match moments.take() {
                Some((m, v)) => (m * BETA1 + g.clone() * (1.0 - BETA1), v * BETA2 + g.powi_scalar(2) * (1.0 - BETA2)),
                None => (g.clone() * (1.0 - BETA1), g.powi_scalar(2) * (1.0 - BETA2)),
            };
            let m_hat = m.clone() / (1.0 - BETA1.powi(t));
            let v_hat = v.clone() / (1.0 - BETA2.powi(t));
            moments = Some((m, v));
            w = w - m_hat / (v_hat.sqrt() + 1e-8) * s.learning_rate;
        }
    }
    Ok(LinearHead { dim, classes, weights: read_vec(w).await? })
}

/// One way of training, scored on the held-out split.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct MethodResult {
    /// "erm", "clip-debias", "clip-debias-loss" or "oracle".
    pub method: String,
    pub description: String,
    pub overall_accuracy: Estimate,
    /// Lowest accuracy over the evaluation groups (group x label cells).
    pub worst_group_accuracy: Estimate,
    pub worst_group: String,
    /// Accuracy per evaluation cell (group x label), with n.
    pub groups: Vec<CellAccuracy>,
    /// Parity gaps by the evaluation group (true groups when labelled, else pseudo-groups).
    pub fairness: FairnessReport,
    /// Held-out file -> predicted label.
    pub predictions: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct CellAccuracy {
    pub group: String,
    pub label: String,
    pub n: usize,
    pub accuracy: Estimate,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct DebiasReport {
    pub target: String,
    pub labels: Vec<String>,
    /// What the worst group is taken over: "true group x label" or "pseudo-group x label".
    pub evaluation_groups: String,
    pub train_items: usize,
    pub test_items: usize,
    pub settings: HeadSettings,
    pub methods: Vec<MethodResult>,
    pub warnings: Vec<String>,
}

/// The data of a debias run: one row per usable item.
pub struct DebiasData<'a> {
    pub files: &'a [String],
    pub features: &'a [Vec<f32>],
    /// Target label per item.
    pub labels: &'a [String],
    /// CLIP's pseudo-group (cluster) per item and the clusters' names.
    pub pseudo_groups: &'a [usize],
    pub pseudo_names: &'a [String],
    /// True sensitive group per item, when the user has labels.
    pub true_groups: Option<(&'a [usize], &'a [String])>,
    pub target: &'a str,
}

/// A debias run on an audited folder, as `cliplens audit debias --json` and
/// the Audit page report it: the table, plus how well the pseudo-groups
/// matched the true groups.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct FolderDebias {
    #[serde(flatten)]
    pub debias: DebiasReport,
    /// ARI of the pseudo-groups against the labels (None without a group column).
    pub ari: Option<f64>,
    /// The labels column taken as the true sensitive group.
    pub group_column: Option<String>,
}

#[cfg(feature = "compute")]
/// Trains the head on the folder audit `report` of `files` (embeddings
/// `embeds`): the target from column `target` of the labels `table`, the
/// true groups from column `group` (default: the audited attribute's name,
/// when the table has it). Rows without a target or group are left out,
/// each with a problem line; the rest goes on.
#[allow(clippy::too_many_arguments)]
pub async fn on_folder(
    device: &Device,
    files: &[String],
    embeds: &[Vec<f32>],
    report: &FolderReport,
    table: &Table,
    target: &str,
    group: Option<&str>,
    s: &HeadSettings,
) -> Result<FolderDebias> {
    let mut problems = Vec::new();
    if table.column(target).is_none() {
        return Err(Error::usage(format!("{}: line 1", table.source), format!("no column {target:?} for the target (the header has: {})", table.columns.join(", "))));
    }
    if let Some(g) = group
        && table.column(g).is_none()
    {
        return Err(Error::usage(format!("{}: line 1", table.source), format!("no column {g:?} for the group (the header has: {})", table.columns.join(", "))));
    }
    let (matched, unknown) = table.match_files(files);
    problems.extend(unknown);
    let labels_of = table.text(target, &matched, &mut problems);
    let group_column =
        group.map(str::to_string).or_else(|| report.settings.attributes.first().map(|a| a.name.clone())).filter(|c| table.column(c).is_some());
    let groups = group_column.as_ref().map(|c| table.text(c, &matched, &mut problems));
    let mut rows: Vec<usize> = (0..files.len()).filter(|&i| labels_of[i].is_some() && groups.as_ref().is_none_or(|g| g[i].is_some())).collect();
    // By name: the seeded split must not depend on the order the images came in (a page, a directory listing).
    rows.sort_by(|&a, &b| files[a].cmp(&files[b]));
    let files_used: Vec<String> = rows.iter().map(|&i| files[i].clone()).collect();
    let labels: Vec<String> = rows.iter().map(|&i| labels_of[i].clone().expect("filtered")).collect();
    let mut pseudo = Vec::with_capacity(rows.len());
    for &i in &rows {
        pseudo.push(*report.assignments.get(&files[i]).ok_or_else(|| Error::usage(&files[i], "is not in the folder audit"))?);
    }
    let pseudo_names: Vec<String> = report.groups.iter().map(|g| g.name.clone()).collect();
    let true_groups = groups.map(|g| {
        let mut names: Vec<String> = rows.iter().map(|&i| g[i].clone().expect("filtered")).collect();
        names.sort();
        names.dedup();
        let codes: Vec<usize> = rows.iter().map(|&i| names.binary_search(g[i].as_ref().expect("filtered")).expect("listed")).collect();
        (codes, names)
    });
    let features: Vec<Vec<f32>> = rows.iter().map(|&i| embeds[i].clone()).collect();
    if files_used.len() < 4 {
        return Err(Error::usage(&table.source, format!("{} image(s) have a {target:?} label: training needs more", files_used.len())));
    }
    let data = DebiasData {
        files: &files_used,
        features: &features,
        labels: &labels,
        pseudo_groups: &pseudo,
        pseudo_names: &pseudo_names,
        true_groups: true_groups.as_ref().map(|(c, n)| (c.as_slice(), n.as_slice())),
        target,
    };
    let mut debias = run(device, &data, s).await?;
    debias.warnings.extend(problems);
    debias.warnings.extend(report.problems.iter().cloned());
    Ok(FolderDebias { debias, ari: report.ari, group_column })
}

/// Standardizes features by the training rows' mean and sd.
fn standardize(features: &[Vec<f32>], train: &[usize]) -> Vec<Vec<f32>> {
    let dim = features[0].len();
    let mut mean = vec![0.0f64; dim];
    let mut sq = vec![0.0f64; dim];
    for &i in train {
        for (j, v) in features[i].iter().enumerate() {
            mean[j] += *v as f64;
            sq[j] += (*v as f64).powi(2);
        }
    }
    let n = train.len().max(1) as f64;
    let sd: Vec<f64> = (0..dim).map(|j| (sq[j] / n - (mean[j] / n).powi(2)).max(1e-12).sqrt()).collect();
    features.iter().map(|f| f.iter().enumerate().map(|(j, v)| ((*v as f64 - mean[j] / n) / sd[j]) as f32).collect()).collect()
}

#[cfg(feature = "compute")]
pub async fn run(device: &Device, data: &DebiasData<'_>, s: &HeadSettings) -> Result<DebiasReport> {
    let n = data.files.len();
    let mut label_names: Vec<String> = data.labels.to_vec();
    label_names.sort();
    label_names.dedup();
    if label_names.len() < 2 {
        return Err(Error::usage(format!("column {}", data.target), "needs at least two labels to train a classifier"));
    }
    if !(s.test_share > 0.0 && s.test_share < 1.0) {
        return Err(Error::usage("--test-share", format!("{} must be between 0 and 1 (exclusive): a share of the images is held out for scoring", s.test_share)));
    }
    let y: Vec<usize> = data.labels.iter().map(|l| label_names.binary_search(l).expect("a listed label")).collect();
    // A seeded split, stratified by nothing: the planted imbalance must reach both halves as it is.
    let mut order: Vec<usize> = (0..n).collect();
    stats::shuffle(&mut order, &mut Rng::new(s.seed ^ 0x5_9117));
    let test_n = ((n as f64) * s.test_share).round() as usize;
    if test_n == 0 || test_n >= n {
        return Err(Error::usage("--test-share", format!("holding out {test_n} of {n} images leaves a split empty: use more images or another share")));
    }
    let (test, train) = order.split_at(test_n);
    let (mut test, mut train) = (test.to_vec(), train.to_vec());
    test.sort_unstable();
    train.sort_unstable();
    let x = standardize(data.features, &train);
    let xt: Vec<Vec<f32>> = train.iter().map(|&i| x[i].clone()).collect();
    let yt: Vec<usize> = train.iter().map(|&i| y[i]).collect();
    let classes = label_names.len();
    let (eval_groups, eval_names, evaluation_groups) = match data.true_groups {
        Some((g, names)) => (g, names, "true group x label"),
        None => (data.pseudo_groups, data.pseudo_names, "pseudo-group x label"),
    };
    let mut warnings = Vec::new();
    let mut methods = Vec::new();
    let uniform = vec![1.0; train.len()];
    let pseudo_cells: Vec<usize> = resample::cells(&train.iter().map(|&i| data.pseudo_groups[i]).collect::<Vec<_>>(), &yt, classes);
    let mut plans: Vec<(&str, String, Vec<f64>)> = vec![
        ("erm", "plain ERM: every training item alike".into(), uniform),
        ("clip-debias", "resampled so that every CLIP pseudo-group x label cell weighs the same".into(), resample::balanced(&pseudo_cells)),
    ];
    if let Some((g, _)) = data.true_groups {
        let cells = resample::cells(&train.iter().map(|&i| g[i]).collect::<Vec<_>>(), &yt, classes);
        plans.push((
            "oracle",
            "resampled by the true groups (group x label cells balanced): the upper bound".into(),
            resample::balanced(&cells),
        ));
    } else {
        warnings.push("no true groups: the oracle needs a labels CSV with the sensitive attribute".into());
    }
    let mut erm_head = None;
    // One training seed for every method: they differ only in their weights.
    for (method, description, weights) in plans {
        let head = train_head(device, &xt, &yt, classes, &weights, s, s.seed).await?;
        methods.push(score(method, &description, &head, &x, &y, &test, eval_groups, eval_names, &label_names, data, s));
        if method == "erm" {
            erm_head = Some(head);
        }
    }
    // The loss-weighted variant: more weight where ERM errs, per pseudo-group x label cell.
    if let Some(erm) = erm_head {
        let errors: Vec<f64> = train.iter().map(|&i| f64::from(u8::from(erm.predict(&x[i]) != y[i]))).collect();
        let weights = resample::loss_weighted(&pseudo_cells, &errors, s.temperature);
        let head = train_head(device, &xt, &yt, classes, &weights, s, s.seed).await?;
        let description =
            format!("resampled by ERM's training error per pseudo-group x label cell (mass ∝ exp(error / {}))", s.temperature);
        methods.push(score("clip-debias-loss", &description, &head, &x, &y, &test, eval_groups, eval_names, &label_names, data, s));
    }
    Ok(DebiasReport {
        target: data.target.to_string(),
        labels: label_names,
        evaluation_groups: evaluation_groups.to_string(),
        train_items: train.len(),
        test_items: test.len(),
        settings: s.clone(),
        methods,
        warnings,
    })
}

#[allow(clippy::too_many_arguments)]
fn score(
    method: &str,
    description: &str,
    head: &LinearHead,
    x: &[Vec<f32>],
    y: &[usize],
    test: &[usize],
    groups: &[usize],
    group_names: &[String],
    label_names: &[String],
    data: &DebiasData,
    s: &HeadSettings,
) -> MethodResult {
    let predicted: Vec<usize> = test.iter().map(|&i| head.predict(&x[i])).collect();
    let correct: Vec<bool> = test.iter().zip(&predicted).map(|(&i, &p)| p == y[i]).collect();
    let classes = label_names.len();
    let cell_of: Vec<usize> = test.iter().map(|&i| groups[i] * classes + y[i]).collect();
    let cell_count = group_names.len() * classes;
    let accuracy_of = |rows: &[usize], cell: Option<usize>| {
        let (hits, total) = rows
            .iter()
            .filter(|&&r| cell.is_none_or(|c| cell_of[r] == c))
            .fold((0usize, 0usize), |(h, t), &r| (h + usize::from(correct[r]), t + 1));
        if total == 0 { f64::NAN } else { hits as f64 / total as f64 }
    };
    let seed = s.seed.wrapping_add(1000);
    let at = |k: u64| seed.wrapping_add(k);
    let overall_accuracy = stats::bootstrap(test.len(), s.resamples, seed, |r| accuracy_of(r, None));
    let worst_of = |r: &[usize]| {
        (0..cell_count)
            .map(|c| accuracy_of(r, Some(c)))
            .filter(|v| v.is_finite())
            .fold(f64::NAN, |m, v| if m.is_nan() || v < m { v } else { m })
    };
    let worst_group_accuracy = stats::bootstrap(test.len(), s.resamples, at(1), worst_of);
    let mut cells = Vec::new();
    let mut worst = (f64::INFINITY, String::new());
    for c in 0..cell_count {
        let n = cell_of.iter().filter(|&&x| x == c).count();
        if n == 0 {
            continue;
        }
        let (group, label) = (group_names[c / classes].clone(), label_names[c % classes].clone());
        let accuracy = stats::bootstrap(test.len(), s.resamples, at(2 + c as u64), |r| accuracy_of(r, Some(c)));
        if accuracy.value < worst.0 {
            worst = (accuracy.value, format!("{group} / {label}"));
        }
        cells.push(CellAccuracy { group, label, n, accuracy });
    }
    let truth: Vec<String> = test.iter().map(|&i| label_names[y[i]].clone()).collect();
    let preds: Vec<String> = predicted.iter().map(|&p| label_names[p].clone()).collect();
    let test_groups: Vec<usize> = test.iter().map(|&i| groups[i]).collect();
    let positive = label_names.last().expect("two labels").clone();
    let fairness = fairness::fairness(
        &Outcomes { truth: &truth, predicted: &preds, groups: &test_groups, group_names, positive: &positive },
        s.resamples,
        at(500),
    );
    MethodResult {
        method: method.to_string(),
        description: description.to_string(),
        overall_accuracy,
        worst_group_accuracy,
        worst_group: worst.1,
        groups: cells,
        fairness,
        predictions: test.iter().zip(&preds).map(|(&i, p)| (data.files[i].clone(), p.clone())).collect(),
    }
}
