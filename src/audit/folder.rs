//! The folder audit: what CLIP perceives in the user's own images, the
//! pseudo-groups it implies (CLIP-debias: k-means++ on image-to-attribute-
//! prompt similarities), how they agree with true labels, how the user's
//! model does per group, who neutral queries retrieve, and resampling weights.
//! Every attribute here is CLIP-perceived: see [`PERCEIVED_NOTE`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::associations::{ensemble, zero_shot};
use super::cluster::{self, KMeans, Matching};
use super::fairness::{self, FairnessReport, Outcomes};
use super::resample;
use super::retrieval::{self, SkewReport};
use super::stats::{self, Estimate};
use super::tables::Table;
#[cfg(feature = "compute")]
use crate::clip::Clip;
use crate::clip::dot;
use crate::{Error, Result};

/// Printed with every perceived attribute.
pub const PERCEIVED_NOTE: &str = "Attributes are CLIP-perceived: what the model's similarities suggest about how an image \
looks, from prompts someone chose. They are not anyone's identity, they inherit the model's own biases, and they say \
nothing about a person who was not asked. Use them to audit a dataset in aggregate, never to label people.";

/// A sensitive attribute to infer: `NAME=value1,value2`, each value said in every template.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct AttributeSpec {
    pub name: String,
    pub values: Vec<String>,
    /// Prompt templates with `{}` for the value (a prompt ensemble).
    pub templates: Vec<String>,
}

impl AttributeSpec {
    pub fn parse(text: &str, templates: Vec<String>) -> Result<Self> {
        let bad = |why: &str| Error::usage(format!("--attribute {text:?}"), why.to_string());
        let (name, values) = text.split_once('=').ok_or_else(|| bad("write NAME=value1,value2[,...]"))?;
        let values: Vec<String> = values.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect();
        if name.trim().is_empty() {
            return Err(bad("the attribute needs a name before '='"));
        }
        if values.len() < 2 {
            return Err(bad("give at least two values, separated by commas"));
        }
        Ok(AttributeSpec { name: name.trim().to_string(), values, templates })
    }

    pub fn prompts(&self, value: &str) -> Vec<String> {
        self.templates.iter().map(|t| t.replace("{}", value)).collect()
    }
}

/// Templates for people (real CLIP) or for the world's figures.
pub fn default_templates(world: bool) -> Vec<String> {
    let list: &[&str] = if world {
        &["a photo of a {} figure", "a photo of {} figures"]
    } else {
        &["a photo of a {} person", "a photo of a {} face", "a cropped photo of a {} person", "a portrait of a {} person"]
    };
    list.iter().map(|s| s.to_string()).collect()
}

/// What the clusters are computed on.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Features {
    /// Per attribute, the softmax over its values of 100 x cosine (as CLIP's logits), concatenated.
    PromptSimilarities,
    /// The image embedding itself ("does language help?").
    ImageEmbedding,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct FolderSettings {
    pub attributes: Vec<AttributeSpec>,
    /// Clusters; default the number of value combinations.
    pub k: usize,
    pub restarts: usize,
    pub seed: u64,
    /// A perceived value needs at least this zero-shot probability, else the image abstains.
    pub abstain_below: f64,
    pub features: Features,
    /// Neutral queries for retrieval skew.
    pub queries: Vec<String>,
    /// Top k for retrieval; default min(1000, n / 2).
    pub top_k: Option<usize>,
    /// Temperature of the loss-weighted resampling weights.
    pub temperature: f64,
    pub resamples: usize,
    /// Label counted as positive in the predictions CSV (default: the last in sorted order).
    pub positive: Option<String>,
}

impl FolderSettings {
    pub fn new(attributes: Vec<AttributeSpec>, seed: u64) -> Self {
        let k = attributes.iter().map(|a| a.values.len()).product::<usize>().max(2);
        FolderSettings {
            attributes,
            k,
            restarts: 10,
            seed,
            abstain_below: 0.6,
            features: Features::PromptSimilarities,
            queries: Vec::new(),
            top_k: None,
            temperature: 0.1,
            resamples: stats::DEFAULT_RESAMPLES,
            positive: None,
        }
    }
}

/// The prompt side, embedded once per model.
pub struct PromptEmbeddings {
    /// Per attribute, per value: the ensemble's unit vector.
    pub classes: Vec<Vec<Vec<f32>>>,
    pub queries: Vec<Vec<f32>>,
    pub logit_scale: f64,
}

#[cfg(feature = "compute")]
pub async fn embed_prompts(clip: &Clip, settings: &FolderSettings) -> Result<PromptEmbeddings> {
    let mut classes = Vec::new();
    for a in &settings.attributes {
        let mut values = Vec::new();
        for v in &a.values {
            values.push(ensemble(&clip.embed_texts(&a.prompts(v)).await?.embeds));
        }
        classes.push(values);
    }
    let queries = if settings.queries.is_empty() { Vec::new() } else { clip.embed_texts(&settings.queries).await?.embeds };
    Ok(PromptEmbeddings { classes, queries, logit_scale: 100.0 })
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ValueShare {
    pub value: String,
    pub count: usize,
    /// Share among the images that did not abstain.
    pub share: Estimate,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Composition {
    pub attribute: String,
    pub values: Vec<ValueShare>,
    pub abstained: usize,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct PseudoGroup {
    pub cluster: usize,
    /// "cluster 1 (mostly glim)".
    pub name: String,
    pub n: usize,
    /// Mean perceived probability of each attribute's values among members.
    pub perceived: Vec<(String, Vec<(String, f64)>)>,
    /// The user's model on this group, with a predictions CSV.
    pub metrics: Option<fairness::GroupRow>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Agreement {
    pub attribute: String,
    /// Items with a label in this column.
    pub n: usize,
    #[serde(deserialize_with = "super::stats::nullable::number")]
    pub ari: f64,
    #[serde(deserialize_with = "super::stats::nullable::number")]
    pub ami: f64,
    pub true_values: Vec<String>,
    pub matching: Matching,
    /// Zero-shot perceived value equal to the label, over images that did not abstain.
    pub zero_shot_accuracy: f64,
    pub zero_shot_coverage: f64,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct FolderReport {
    pub note: String,
    pub settings: FolderSettings,
    pub images: usize,
    pub composition: Vec<Composition>,
    pub clustering: ClusteringSummary,
    /// File -> cluster.
    pub assignments: BTreeMap<String, usize>,
    pub groups: Vec<PseudoGroup>,
    /// Against the labels CSV: over the joint value of every labelled attribute column.
    pub ari: Option<f64>,
    pub ami: Option<f64>,
    pub agreement: Vec<Agreement>,
    /// The user's model by pseudo-group, and by true group when labelled.
    pub fairness: Option<FairnessReport>,
    pub fairness_by_true_group: Option<FairnessReport>,
    pub retrieval: Vec<SkewReport>,
    /// File -> resampling weight (mean 1).
    pub weights: BTreeMap<String, f64>,
    /// "cluster-balanced" or "loss-weighted (T = ...)".
    pub weights_method: String,
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ClusteringSummary {
    pub k: usize,
    pub restarts: usize,
    pub inertia: f64,
    pub features: Features,
}

/// The user's CSVs, parsed (problems so far are carried along).
#[derive(Default)]
pub struct UserTables {
    pub labels: Option<Table>,
    pub predictions: Option<Table>,
    pub problems: Vec<String>,
}

/// Per image, per attribute: zero-shot probabilities over the values.
pub fn perceive(images: &[Vec<f32>], prompts: &PromptEmbeddings) -> Vec<Vec<Vec<f64>>> {
    images.iter().map(|img| prompts.classes.iter().map(|c| zero_shot(img, c, prompts.logit_scale)).collect()).collect()
}

fn argmax(values: &[f64]) -> usize {
    (0..values.len()).max_by(|&a, &b| values[a].total_cmp(&values[b])).unwrap_or(0)
}

/// The audit of `files` with embeddings `images`.
pub fn audit(
    files: &[String],
    images: &[Vec<f32>],
    prompts: &PromptEmbeddings,
    settings: &FolderSettings,
    tables: UserTables,
) -> Result<FolderReport> {
    let n = files.len();
    if n < 2 {
        return Err(Error::usage("folder", format!("{n} usable image(s): an audit needs at least two")));
    }
    // By name: seeded clustering must not depend on the order the images came in (a page, a directory listing).
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| files[a].cmp(&files[b]));
    let files: &[String] = &order.iter().map(|&i| files[i].clone()).collect::<Vec<_>>();
    let images: &[Vec<f32>] = &order.iter().map(|&i| images[i].clone()).collect::<Vec<_>>();
    let mut problems = tables.problems;
    let mut warnings = Vec::new();
    let probs = perceive(images, prompts);
    // Composition.
    let mut composition = Vec::new();
    let mut perceived: Vec<Vec<Option<usize>>> = Vec::new();
    for (a, spec) in settings.attributes.iter().enumerate() {
        let values: Vec<Option<usize>> = probs
            .iter()
            .map(|p| {
                let best = argmax(&p[a]);
                (p[a][best] >= settings.abstain_below).then_some(best)
            })
            .collect();
        let decided: Vec<usize> = values.iter().flatten().copied().collect();
        let shares = spec
            .values
            .iter()
            .enumerate()
            .map(|(v, name)| ValueShare {
                value: name.clone(),
                count: decided.iter().filter(|&&d| d == v).count(),
                share: stats::bootstrap(decided.len(), settings.resamples, settings.seed.wrapping_add(100 + (a * 16 + v) as u64), |r| {
                    r.iter().filter(|&&i| decided[i] == v).count() as f64 / r.len() as f64
                }),
            })
            .collect();
        composition.push(Composition { attribute: spec.name.clone(), values: shares, abstained: n - decided.len() });
        perceived.push(values);
    }
    // Pseudo-groups.
    let features: Vec<Vec<f64>> = match settings.features {
        Features::PromptSimilarities => probs.iter().map(|p| p.iter().flatten().copied().collect()).collect(),
        Features::ImageEmbedding => images.iter().map(|e| e.iter().map(|&v| v as f64).collect()).collect(),
    };
    let km: KMeans = cluster::kmeans(&features, settings.k, settings.restarts, settings.seed);
    let k = km.centroids.len();
    let mut groups: Vec<PseudoGroup> = (0..k)
        .map(|c| {
            let members: Vec<usize> = (0..n).filter(|&i| km.assignments[i] == c).collect();
            let perceived_means: Vec<(String, Vec<(String, f64)>)> = settings
                .attributes
                .iter()
                .enumerate()
                .map(|(a, spec)| {
                    let means = spec
                        .values
                        .iter()
                        .enumerate()
                        .map(|(v, name)| (name.clone(), members.iter().map(|&i| probs[i][a][v]).sum::<f64>() / members.len().max(1) as f64))
                        .collect();
                    (spec.name.clone(), means)
                })
                .collect();
            let mostly: Vec<String> = perceived_means
                .iter()
                .map(|(_, m)| m.iter().max_by(|x, y| x.1.total_cmp(&y.1)).map(|x| x.0.clone()).unwrap_or_default())
                .collect();
            PseudoGroup {
                cluster: c,
                name: format!("cluster {} (mostly {})", c + 1, mostly.join(", ")),
                n: members.len(),
                perceived: perceived_means,
                metrics: None,
            }
        })
        .collect();
    let group_names: Vec<String> = groups.iter().map(|g| g.name.clone()).collect();
    for g in &groups {
        if g.n < fairness::SMALL_GROUP {
            warnings.push(format!("{} has {} images (under {}): its figures are unreliable", g.name, g.n, fairness::SMALL_GROUP));
        }
    }
    // Labels: agreement of clusters (and zero-shot) with the true values.
    let mut agreement = Vec::new();
    let mut true_groups: Option<(Vec<Option<usize>>, Vec<String>)> = None;
    let (mut ari, mut ami) = (None, None);
    if let Some(table) = &tables.labels {
        let (matched, unknown) = table.match_files(files);
        problems.extend(unknown);
        let missing = matched.iter().filter(|m| m.is_none()).count();
        if missing > 0 {
            warnings.push(format!("{}: {missing} of the {n} images have no row; they are left out of the label figures", table.source));
        }
        let mut joint: Vec<Option<String>> = vec![Some(String::new()); n];
        let mut any = false;
        for (a, spec) in settings.attributes.iter().enumerate() {
            if table.column(&spec.name).is_none() {
                warnings.push(format!("{}: no column {:?}, so no agreement for that attribute", table.source, spec.name));
                continue;
            }
            any = true;
            let column = table.text(&spec.name, &matched, &mut problems);
            for (j, c) in joint.iter_mut().zip(&column) {
                *j = match (j.take(), c) {
                    (Some(prefix), Some(v)) => Some(if prefix.is_empty() { v.clone() } else { format!("{prefix} / {v}") }),
                    _ => None,
                };
            }
            agreement.push(agree(&spec.name, &column, &km.assignments, k, &perceived[a], &spec.values));
        }
        if any {
            let mut values: Vec<String> = joint.iter().flatten().cloned().collect();
            values.sort();
            values.dedup();
            let codes: Vec<Option<usize>> = joint.iter().map(|j| j.as_ref().map(|v| values.binary_search(v).expect("listed"))).collect();
            let rows: Vec<usize> = (0..n).filter(|&i| codes[i].is_some()).collect();
            if rows.len() >= 2 {
                let t: Vec<usize> = rows.iter().map(|&i| codes[i].expect("filtered")).collect();
                let p: Vec<usize> = rows.iter().map(|&i| km.assignments[i]).collect();
                ari = Some(cluster::adjusted_rand_index(&t, &p));
                ami = Some(cluster::adjusted_mutual_info(&t, &p));
            }
            true_groups = Some((codes, values));
        }
    }
    // Predictions: the user's model per group.
    let mut fairness_report = None;
    let mut fairness_by_true = None;
    let mut item_errors: Option<Vec<Option<f64>>> = None;
    if let Some(table) = &tables.predictions {
        let (matched, unknown) = table.match_files(files);
        problems.extend(unknown);
        let labels = table.text("label", &matched, &mut problems);
        let predictions = table.text("prediction", &matched, &mut problems);
        let losses = table.column("loss").map(|_| table.numbers("loss", &matched, &mut problems));
        let rows: Vec<usize> = (0..n).filter(|&i| labels[i].is_some() && predictions[i].is_some()).collect();
        if rows.len() < 2 {
            warnings.push(format!("{}: fewer than two usable rows, so no per-group performance", table.source));
        } else {
            let truth: Vec<String> = rows.iter().map(|&i| labels[i].clone().expect("filtered")).collect();
            let predicted: Vec<String> = rows.iter().map(|&i| predictions[i].clone().expect("filtered")).collect();
            let mut all_labels: Vec<String> = truth.iter().chain(&predicted).cloned().collect();
            all_labels.sort();
            all_labels.dedup();
            let positive = settings.positive.clone().or_else(|| fairness::default_positive(&all_labels)).unwrap_or_default();
            if all_labels.len() > 2 && settings.positive.is_none() {
                warnings.push(format!(
                    "{} labels: parity is measured for {positive:?} against the rest (choose with --positive)",
                    all_labels.len()
                ));
            }
            let cluster_of: Vec<usize> = rows.iter().map(|&i| km.assignments[i]).collect();
            let report = fairness::fairness(
                &Outcomes { truth: &truth, predicted: &predicted, groups: &cluster_of, group_names: &group_names, positive: &positive },
                settings.resamples,
                settings.seed.wrapping_add(3000),
            );
            for (g, row) in groups.iter_mut().zip(&report.groups) {
                g.metrics = Some(row.clone());
            }
            fairness_report = Some(report);
            if let Some((codes, values)) = &true_groups {
                let both: Vec<usize> = (0..rows.len()).filter(|&r| codes[rows[r]].is_some()).collect();
                if both.len() >= 2 {
                    let t: Vec<String> = both.iter().map(|&r| truth[r].clone()).collect();
                    let p: Vec<String> = both.iter().map(|&r| predicted[r].clone()).collect();
                    let g: Vec<usize> = both.iter().map(|&r| codes[rows[r]].expect("filtered")).collect();
                    fairness_by_true = Some(fairness::fairness(
                        &Outcomes { truth: &t, predicted: &p, groups: &g, group_names: values, positive: &positive },
                        settings.resamples,
                        settings.seed.wrapping_add(4000),
                    ));
                }
            }
            let mut errors = vec![None; n];
            for &i in &rows {
                errors[i] = Some(match losses.as_ref().and_then(|l| l[i]) {
                    Some(loss) => loss,
                    None => f64::from(u8::from(labels[i] != predictions[i])),
                });
            }
            item_errors = Some(errors);
        }
    }
    // Retrieval skew by pseudo-group and by perceived value.
    let mut retrieval_reports = Vec::new();
    if !prompts.queries.is_empty() {
        for (a, spec) in settings.attributes.iter().enumerate() {
            if let Some(v) = (0..spec.values.len()).find(|&v| !perceived[a].contains(&Some(v))) {
                warnings.push(format!("retrieval skew by perceived {}: no image is perceived as {}, so there is none", spec.name, spec.values[v]));
            }
        }
        let top_k = settings.top_k.unwrap_or((n / 2).clamp(1, 1000)).min(n);
        let dataset: Vec<f64> = (0..k).map(|c| groups[c].n as f64 / n as f64).collect();
        let uniform = vec![1.0 / k as f64; k];
        for (query, q) in settings.queries.iter().zip(&prompts.queries) {
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by(|&a, &b| dot(&images[b], q).total_cmp(&dot(&images[a], q)).then(a.cmp(&b)));
            let ranked: Vec<usize> = order.iter().map(|&i| km.assignments[i]).collect();
            retrieval_reports.push(retrieval::skew_report(query, "pseudo-group", &ranked, top_k, "uniform", &uniform, &group_names));
            retrieval_reports.push(retrieval::skew_report(query, "pseudo-group", &ranked, top_k, "dataset", &dataset, &group_names));
            // The same ranking read by each attribute's perceived value, abstentions left out.
            for (a, spec) in settings.attributes.iter().enumerate() {
                let ranked: Vec<usize> = order.iter().filter_map(|&i| perceived[a][i]).collect();
                let m = spec.values.len();
                let mut counts = vec![0usize; m];
                for &v in &ranked {
                    counts[v] += 1;
                }
                // A value nobody is perceived as has no dataset share to compare with (warned once, below).
                if ranked.is_empty() || counts.contains(&0) {
                    continue;
                }
                let dataset: Vec<f64> = counts.iter().map(|&c| c as f64 / ranked.len() as f64).collect();
                let uniform = vec![1.0 / m as f64; m];
                let grouping = format!("CLIP-perceived {}", spec.name);
                let k = top_k.min(ranked.len());
                retrieval_reports.push(retrieval::skew_report(query, &grouping, &ranked, k, "uniform", &uniform, &spec.values));
                retrieval_reports.push(retrieval::skew_report(query, &grouping, &ranked, k, "dataset", &dataset, &spec.values));
            }
        }
    }
    // Resampling weights.
    let (weights, weights_method) = match &item_errors {
        Some(errors) => {
            // Items without a prediction get their cluster's mean error.
            let mut sums = vec![(0.0, 0usize); k];
            for (i, e) in errors.iter().enumerate() {
                if let Some(e) = e {
                    sums[km.assignments[i]].0 += e;
                    sums[km.assignments[i]].1 += 1;
                }
            }
            let filled: Vec<f64> = (0..n)
                .map(|i| {
                    errors[i].unwrap_or_else(|| {
                        let (s, c) = sums[km.assignments[i]];
                        if c > 0 { s / c as f64 } else { 0.0 }
                    })
                })
                .collect();
            (
                resample::loss_weighted(&km.assignments, &filled, settings.temperature),
                format!("loss-weighted (T = {})", settings.temperature),
            )
        }
        None => (resample::balanced(&km.assignments), "cluster-balanced".to_string()),
    };
    Ok(FolderReport {
        note: PERCEIVED_NOTE.to_string(),
        settings: settings.clone(),
        images: n,
        composition,
        clustering: ClusteringSummary { k, restarts: km.restarts, inertia: km.inertia, features: settings.features },
        assignments: files.iter().cloned().zip(km.assignments.iter().copied()).collect(),
        groups,
        ari,
        ami,
        agreement,
        fairness: fairness_report,
        fairness_by_true_group: fairness_by_true,
        retrieval: retrieval_reports,
        weights: files.iter().cloned().zip(weights).collect(),
        weights_method,
        problems,
        warnings,
    })
}

fn agree(
    name: &str,
    column: &[Option<String>],
    clusters: &[usize],
    k: usize,
    perceived: &[Option<usize>],
    spec_values: &[String],
) -> Agreement {
    let mut values: Vec<String> = column.iter().flatten().cloned().collect();
    values.sort();
    values.dedup();
    let rows: Vec<usize> = (0..column.len()).filter(|&i| column[i].is_some()).collect();
    let truth: Vec<usize> = rows.iter().map(|&i| values.binary_search(column[i].as_ref().expect("filtered")).expect("listed")).collect();
    let predicted: Vec<usize> = rows.iter().map(|&i| clusters[i]).collect();
    let decided: Vec<usize> = rows.iter().copied().filter(|&i| perceived[i].is_some()).collect();
    let hits = decided.iter().filter(|&&i| spec_values[perceived[i].expect("filtered")] == *column[i].as_ref().expect("filtered")).count();
    Agreement {
        attribute: name.to_string(),
        n: rows.len(),
        ari: if rows.len() >= 2 { cluster::adjusted_rand_index(&truth, &predicted) } else { f64::NAN },
        ami: if rows.len() >= 2 { cluster::adjusted_mutual_info(&truth, &predicted) } else { f64::NAN },
        matching: cluster::hungarian_match(&predicted, &truth, k, values.len()),
        true_values: values,
        zero_shot_accuracy: hits as f64 / decided.len().max(1) as f64,
        zero_shot_coverage: decided.len() as f64 / rows.len().max(1) as f64,
    }
}
