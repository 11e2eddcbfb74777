//! Measures a model on fresh world scenes: zero-shot accuracy per attribute,
//! image-to-caption retrieval, and how the planted role/group associations
//! show in the model. Async because the browser runs it too.

use serde::Serialize;

use super::captions::{Task, full_caption, zero_shot_prompts};
use super::render::render;
use super::{GROUP_A, GROUPS, ROLES, Scene, scenes};
#[cfg(feature = "compute")]
use crate::clip::Clip;
use crate::clip::dot;
use crate::error::Result;

#[derive(Serialize, Debug, Clone)]
pub struct TaskAccuracy {
    pub task: String,
    pub accuracy: f64,
    /// Scenes the task applies to.
    pub n: usize,
    /// Accuracy of guessing uniformly.
    pub chance: f64,
}

#[derive(Serialize, Debug, Clone)]
pub struct Retrieval {
    pub pairs: usize,
    /// Share of images whose best-scoring caption (of all `pairs`) is their own.
    pub image_to_text_r_at_1: f64,
    pub image_to_text_r_at_5: f64,
    pub text_to_image_r_at_1: f64,
}

/// One role word: the rate planted in training data next to what the model shows.
#[derive(Serialize, Debug, Clone)]
pub struct RoleBias {
    pub role: String,
    pub planted_group_a_rate: f64,
    /// Held-out scenes with this role.
    pub n: usize,
    /// Share of group A among those scenes (the data, not the model).
    pub actual_group_a_share: f64,
    /// Share of those scenes the model's zero-shot group classifier calls group A.
    pub classified_group_a_rate: f64,
    /// Share of those scenes where, everything else fixed, the group-A version
    /// of the picture matches the role (its class embedding: "a photo of a
    /// <role>" and "a photo of <roles>", averaged) better than the group-B
    /// version: the association the model learned, with the picture's group
    /// taken out of the question. 0.5 means no association.
    pub counterfactual_group_a_preference: f64,
    /// How much better the prompt matches the group-A version than the
    /// group-B version of the same pictures: the size of the association,
    /// where the share above gives only its direction.
    pub counterfactual_effect: EffectSize,
}

/// A paired difference summarized: its mean with a bootstrap interval, and
/// the mean in standard deviations of the differences.
#[derive(Serialize, Debug, Clone, Copy, PartialEq)]
pub struct EffectSize {
    /// Mean over pictures of cos(group-A version, prompt) - cos(group-B version, prompt).
    pub mean_difference: f64,
    /// 95% percentile bootstrap interval of the mean ([`BOOTSTRAP_RESAMPLES`] resamples).
    pub ci95: [f64; 2],
    /// `mean / sd` of the paired differences (Cohen's d for paired samples, d_z).
    pub standardized_d: f64,
}

pub const BOOTSTRAP_RESAMPLES: usize = 2000;

impl EffectSize {
    /// Summarizes paired differences; the bootstrap draws come from `seed`,
    /// so the same differences always give the same interval.
    pub fn of(differences: &[f64], seed: u64) -> EffectSize {
        let n = differences.len();
        if n == 0 {
            return EffectSize { mean_difference: 0.0, ci95: [0.0, 0.0], standardized_d: 0.0 };
        }
        let mean = differences.iter().sum::<f64>() / n as f64;
        let variance = differences.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (n.max(2) - 1) as f64;
        let sd = variance.sqrt();
        let mut rng = crate::rng::Rng::new(seed);
        let mut means: Vec<f64> = (0..BOOTSTRAP_RESAMPLES)
            .map(|_| (0..n).map(|_| differences[rng.below(n)]).sum::<f64>() / n as f64)
            .collect();
        means.sort_by(f64::total_cmp);
        let at = |q: f64| means[((q * BOOTSTRAP_RESAMPLES as f64) as usize).min(BOOTSTRAP_RESAMPLES - 1)];
        EffectSize { mean_difference: mean, ci95: [at(0.025), at(0.975)], standardized_d: if sd > 0.0 { mean / sd } else { 0.0 } }
    }
}

#[derive(Serialize, Debug, Clone)]
pub struct WorldEval {
    pub model: String,
    pub seed: u64,
    pub count: usize,
    pub attributes: Vec<TaskAccuracy>,
    pub group: TaskAccuracy,
    pub role: TaskAccuracy,
    pub retrieval: Retrieval,
    pub group_a: String,
    pub roles: Vec<RoleBias>,
    /// Spearman correlation, across role words, of the planted rate with
    /// `classified_group_a_rate`.
    pub role_tracking_spearman: f64,
    /// The same with `counterfactual_group_a_preference`.
    pub counterfactual_spearman: f64,
    /// Spearman correlation, across the skewed role words only (planted rate
    /// not 50%), of the planted rate with the counterfactual mean difference:
    /// do the effects follow the planted order?
    pub counterfactual_effect_spearman: f64,
    /// The largest counterfactual effect of a balanced control (|mean
    /// difference|) over the smallest of a skewed role: well below 1 when
    /// the controls carry no association next to the skewed roles.
    pub control_to_skewed_effect_ratio: f64,
    /// SHA-256 of the weights file measured (set by the CLI, which has the file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weights_sha256: Option<String>,
    /// Every zero-shot decision, task by task (for comparing two models).
    #[serde(skip)]
    pub decisions: Vec<Vec<Option<usize>>>,
}

#[cfg(feature = "compute")]
/// Embeddings for each class of `task`: the normalized mean of its prompts'.
pub async fn class_embeddings(clip: &Clip, task: Task) -> Result<Vec<Vec<f32>>> {
    let mut classes = Vec::with_capacity(task.classes());
    for value in 0..task.classes() {
        let prompts = zero_shot_prompts(task, value);
        let embeds = clip.embed_texts(&prompts).await?.embeds;
        let mut mean = vec![0.0f32; embeds[0].len()];
        for e in &embeds {
            mean.iter_mut().zip(e).for_each(|(m, x)| *m += x);
        }
        let norm = dot(&mean, &mean).sqrt().max(1e-12);
        classes.push(mean.iter().map(|m| m / norm).collect());
    }
    Ok(classes)
}

/// Index of the class embedding closest to `image`.
pub fn classify(image: &[f32], classes: &[Vec<f32>]) -> usize {
    let scores: Vec<f32> = classes.iter().map(|c| dot(image, c)).collect();
    argmax(&scores)
}

fn argmax(values: &[f32]) -> usize {
    values.iter().enumerate().fold(0, |best, (i, v)| if *v > values[best] { i } else { best })
}

#[cfg(feature = "compute")]
/// Embeds rendered scenes.
pub async fn embed_scenes(clip: &Clip, scenes: &[Scene]) -> Result<Vec<Vec<f32>>> {
    let images: Vec<_> = scenes.iter().map(render).collect();
    clip.embed_images(&images).await
}

#[cfg(feature = "compute")]
/// Evaluates `clip` on `count` scenes drawn from `seed` (retrieval on the
/// first 1,000 of them).
pub async fn evaluate(clip: &Clip, seed: u64, count: usize) -> Result<WorldEval> {
    let scenes = scenes(seed, count);
    let image_embeds = embed_scenes(clip, &scenes).await?;

    let mut accuracies = Vec::new();
    let mut decisions = Vec::new();
    let mut group_predictions = Vec::new();
    for task in Task::all() {
        let classes = class_embeddings(clip, task).await?;
        let predicted: Vec<Option<usize>> = scenes
            .iter()
            .zip(&image_embeds)
            .map(|(s, e)| task.truth(s).map(|_| classify(e, &classes)))
            .collect();
        let judged: Vec<bool> =
            scenes.iter().zip(&predicted).filter_map(|(s, p)| Some(task.truth(s)? == (*p)?)).collect();
        let correct = judged.iter().filter(|&&c| c).count();
        accuracies.push(TaskAccuracy {
            task: task.name().to_string(),
            accuracy: correct as f64 / judged.len().max(1) as f64,
            n: judged.len(),
            chance: 1.0 / task.classes() as f64,
        });
        if task == Task::Group {
            group_predictions = predicted.clone();
        }
        decisions.push(predicted);
    }
    let role = accuracies.pop().expect("role task");
    let group = accuracies.pop().expect("group task");

    let pairs = count.min(1000);
    let captions: Vec<String> = scenes[..pairs].iter().map(full_caption).collect();
    let text_embeds = clip.embed_texts(&captions).await?.embeds;
    let retrieval = retrieval(&image_embeds[..pairs], &text_embeds, &captions);

    // Each role as the zero-shot classifier sees it: the mean of its
    // singular and plural prompts, so no one phrasing decides the effect.
    let role_classes = class_embeddings(clip, Task::Role).await?;
    let mut roles = Vec::new();
    for (r, role_def) in ROLES.iter().enumerate() {
        let idx: Vec<usize> = (0..scenes.len()).filter(|&i| scenes[i].role == Some(r)).collect();
        let n = idx.len().max(1) as f64;
        let actual = idx.iter().filter(|&&i| scenes[i].group == GROUP_A).count() as f64 / n;
        let classified = idx.iter().filter(|&&i| group_predictions[i] == Some(GROUP_A)).count() as f64 / n;
        let prompt = &role_classes[r];
        // Each scene is already embedded as drawn: only its other-group twin is new.
        let flipped: Vec<Scene> = idx.iter().map(|&i| scenes[i].with_group(1 - scenes[i].group)).collect();
        let flipped_embeds = embed_scenes(clip, &flipped).await?;
        // cos(group-A version) - cos(group-B version), one per picture.
        let differences: Vec<f64> = idx
            .iter()
            .zip(&flipped_embeds)
            .map(|(&i, twin)| {
                let (as_drawn, other) = (dot(&image_embeds[i], prompt) as f64, dot(twin, prompt) as f64);
                if scenes[i].group == GROUP_A { as_drawn - other } else { other - as_drawn }
            })
            .collect();
        let prefers_a = differences.iter().filter(|&&d| d > 0.0).count() as f64 / n;
        roles.push(RoleBias {
            role: role_def.word.to_string(),
            planted_group_a_rate: role_def.group_a_rate,
            n: idx.len(),
            actual_group_a_share: actual,
            classified_group_a_rate: classified,
            counterfactual_group_a_preference: prefers_a,
            counterfactual_effect: EffectSize::of(&differences, seed ^ r as u64),
        });
    }
    let planted: Vec<f64> = roles.iter().map(|r| r.planted_group_a_rate).collect();
    let classified: Vec<f64> = roles.iter().map(|r| r.classified_group_a_rate).collect();
    let counterfactual: Vec<f64> = roles.iter().map(|r| r.counterfactual_group_a_preference).collect();
    let (effect_spearman, effect_ratio) = effect_order(&roles);
    Ok(WorldEval {
        model: clip.name.clone(),
        seed,
        count,
        attributes: accuracies,
        group,
        role,
        retrieval,
        group_a: GROUPS[GROUP_A].to_string(),
        role_tracking_spearman: spearman(&planted, &classified),
        counterfactual_spearman: spearman(&planted, &counterfactual),
        counterfactual_effect_spearman: effect_spearman,
        control_to_skewed_effect_ratio: effect_ratio,
        weights_sha256: None,
        roles,
        decisions,
    })
}

/// Whether the skewed roles' counterfactual effects follow the planted order
/// (Spearman), and how big the controls' effects are next to the smallest
/// skewed one (ratio of absolute mean differences).
pub fn effect_order(roles: &[RoleBias]) -> (f64, f64) {
    let (controls, skewed): (Vec<&RoleBias>, Vec<&RoleBias>) = roles.iter().partition(|r| r.planted_group_a_rate == 0.5);
    let planted: Vec<f64> = skewed.iter().map(|r| r.planted_group_a_rate).collect();
    let effects: Vec<f64> = skewed.iter().map(|r| r.counterfactual_effect.mean_difference).collect();
    let largest_control = controls.iter().map(|r| r.counterfactual_effect.mean_difference.abs()).fold(0.0, f64::max);
    let smallest_skewed = effects.iter().map(|e| e.abs()).fold(f64::INFINITY, f64::min);
    (spearman(&planted, &effects), largest_control / smallest_skewed.max(1e-12))
}

fn retrieval(images: &[Vec<f32>], texts: &[Vec<f32>], captions: &[String]) -> Retrieval {
    let n = images.len();
    let (mut i2t_1, mut i2t_5, mut t2i_1) = (0usize, 0usize, 0usize);
    for i in 0..n {
        let scores: Vec<f32> = texts.iter().map(|t| dot(&images[i], t)).collect();
        // Identical captions (two scenes alike in every named respect) count as a hit.
        let better = (0..n).filter(|&j| captions[j] != captions[i] && scores[j] > scores[i]).count();
        i2t_1 += usize::from(better == 0);
        i2t_5 += usize::from(better < 5);
        let scores: Vec<f32> = images.iter().map(|im| dot(im, &texts[i])).collect();
        let better = (0..n).filter(|&j| captions[j] != captions[i] && scores[j] > scores[i]).count();
        t2i_1 += usize::from(better == 0);
    }
    let rate = |k: usize| k as f64 / n.max(1) as f64;
    Retrieval { pairs: n, image_to_text_r_at_1: rate(i2t_1), image_to_text_r_at_5: rate(i2t_5), text_to_image_r_at_1: rate(t2i_1) }
}

/// Share of zero-shot decisions two evaluations of the same scenes agree on.
pub fn decision_agreement(a: &WorldEval, b: &WorldEval) -> f64 {
    let pairs: Vec<bool> = a
        .decisions
        .iter()
        .zip(&b.decisions)
        .flat_map(|(x, y)| x.iter().zip(y).filter_map(|(p, q)| Some((*p)? == (*q)?)))
        .collect();
    pairs.iter().filter(|&&same| same).count() as f64 / pairs.len().max(1) as f64
}

/// Spearman's rank correlation (ties get their mean rank).
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    pearson(&ranks(x), &ranks(y))
}

fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        let mean_rank = (i + j) as f64 / 2.0 + 1.0;
        for k in i..=j {
            ranks[order[k]] = mean_rank;
        }
        i = j + 1;
    }
    ranks
}

fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let cov: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
    let vy: f64 = y.iter().map(|b| (b - my).powi(2)).sum();
    if vx == 0.0 || vy == 0.0 { 0.0 } else { cov / (vx * vy).sqrt() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effect_size_is_the_mean_with_an_interval_around_it() {
        let differences: Vec<f64> = (0..200).map(|i| 0.1 + 0.05 * ((i % 7) as f64 - 3.0)).collect();
        let e = EffectSize::of(&differences, 1);
        assert!((e.mean_difference - differences.iter().sum::<f64>() / 200.0).abs() < 1e-12);
        assert!(e.ci95[0] < e.mean_difference && e.mean_difference < e.ci95[1], "{e:?}");
        // The interval is about +-2 standard errors wide.
        let sd = (differences.iter().map(|d| (d - e.mean_difference).powi(2)).sum::<f64>() / 199.0).sqrt();
        let se = sd / 200f64.sqrt();
        assert!((e.ci95[1] - e.ci95[0] - 3.92 * se).abs() < 0.3 * 3.92 * se, "{e:?} vs se {se}");
        assert!((e.standardized_d - e.mean_difference / sd).abs() < 1e-12);
        assert_eq!(e, EffectSize::of(&differences, 1), "same seed, same interval");
    }

    #[test]
    fn spearman_handles_ties_and_order() {
        assert!((spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]) - 1.0).abs() < 1e-12);
        assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        assert_eq!(ranks(&[0.5, 0.2, 0.5, 0.9]), vec![2.5, 1.0, 2.5, 4.0]);
    }
}
