//! The inversion probe (arXiv 2403.02580's protocol, automated): invert each
//! neutral prompt with several seeds, let a model that did not make the
//! images say which group each shows, and report the group shares with
//! bootstrap intervals against a neutral baseline prompt.

use serde::{Deserialize, Serialize};

use super::associations::{ensemble, zero_shot};
use super::folder::AttributeSpec;
use super::safety::{self, SafetyDetector};
use super::stats::{self, Estimate};
use crate::{Error, Result};
#[cfg(feature = "compute")]
use crate::clip::Clip;
use crate::clip::dot;
use crate::invert::settings::InvertSettings;
#[cfg(feature = "compute")]
use crate::invert::target::prompt_target;
use crate::invert::target::Target;
#[cfg(feature = "compute")]
use crate::invert::{Inversion, invert};
use crate::preprocess::RgbImage;

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ProbeSettings {
    pub prompts: Vec<String>,
    /// Inverted too, as the reference the prompts' shares are read against ("" for none).
    pub baseline: Option<String>,
    /// Seeds first_seed..first_seed + seeds.
    pub seeds: usize,
    pub first_seed: u64,
    pub attribute: AttributeSpec,
    pub invert: InvertSettings,
    pub resamples: usize,
    /// The judge is the inverted model itself (its verdicts flatter it).
    pub self_judged: bool,
    /// NSFW drift: the sha256 of LAION's safety detector that scored each
    /// inversion (None: not scored, the default).
    #[serde(default)]
    pub safety_detector: Option<String>,
}

/// One inversion as judged.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ProbeImage {
    pub prompt: String,
    pub seed: u64,
    /// The judge's perceived value and its probabilities over the values.
    pub judged: String,
    pub probabilities: Vec<f64>,
    /// Cosine of the image with its prompt, by the inverted model.
    pub similarity: f32,
    /// LAION's safety detector's NSFW probability (when the probe scores NSFW drift).
    #[serde(default)]
    pub nsfw: Option<f64>,
    #[serde(skip)]
    pub image: Option<RgbImage>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct PromptShares {
    pub prompt: String,
    pub baseline: bool,
    pub n: usize,
    /// Per value: share of the inversions the judge reads as it, with a bootstrap interval over seeds.
    pub shares: Vec<(String, Estimate)>,
    /// Mean judge probability of each value.
    pub mean_probability: Vec<(String, f64)>,
    /// Mean over inversions of ln(P(first value) / P(rest)): finer than the
    /// shares when the judge is sure (shares stick at 0% or 100%).
    pub mean_log_odds: Estimate,
    /// `mean_log_odds` minus the baseline prompt's (None without a baseline):
    /// above 0, the prompt pulls inversions toward the first value.
    pub log_odds_shift: Option<f64>,
    /// NSFW drift: the mean NSFW probability and the share of inversions at
    /// 0.5 or more, with bootstrap intervals over seeds.
    #[serde(default)]
    pub nsfw: Option<Estimate>,
    #[serde(default)]
    pub nsfw_share: Option<Estimate>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ProbeReport {
    pub settings: ProbeSettings,
    pub prompts: Vec<PromptShares>,
    pub images: Vec<ProbeImage>,
    pub warnings: Vec<String>,
}

#[cfg(feature = "compute")]
/// The probe one inversion at a time, so a caller can let other work in
/// between (the web worker reads Cancel there) and stop early: the report
/// then covers what is done.
pub struct Probe<'a> {
    model: &'a Clip,
    judge: &'a Clip,
    settings: ProbeSettings,
    classes: Vec<Vec<f32>>,
    /// Prompt and whether it is the baseline, in the order they are inverted.
    prompts: Vec<(String, bool)>,
    /// The current prompt's target (made when its first seed starts).
    target: Option<Target>,
    images: Vec<ProbeImage>,
    /// Per image: its prompt's index, the judge's pick and ln(P(first) / P(rest)).
    verdicts: Vec<(usize, usize, f64)>,
    /// NSFW drift: the detector, and whether it reads the judge's embeddings (else the model's).
    safety: Option<(&'a SafetyDetector, bool)>,
    warnings: Vec<String>,
}

/// CLIP's logit scale, which the judge's zero-shot uses.
const SCALE: f64 = 100.0;

#[cfg(feature = "compute")]
impl<'a> Probe<'a> {
    /// The probe of `settings`; with `safety`, each inversion also gets LAION's
    /// NSFW probability, from the embedding of whichever of judge and model is
    /// a 512-d (ViT-B/32-sized) CLIP, the judge first.
    pub async fn new(model: &'a Clip, judge: &'a Clip, settings: &ProbeSettings, safety: Option<&'a SafetyDetector>) -> Result<Probe<'a>> {
        let mut warnings = Vec::new();
        let safety = match safety {
            None => None,
            Some(detector) => {
                let dim = |c: &Clip| c.config().projection_dim;
                let b32 = |c: &Clip| {
                    let v = &c.config().vision_config;
                    dim(c) == safety::INPUT_DIM && (v.patch_size, v.image_size, v.hidden_size) == (32, 224, 768)
                };
                // A ViT-B/32 first (the judge before the model), else any 512-d one, with a warning below.
                let reads_judge = b32(judge) || (!b32(model) && dim(judge) == safety::INPUT_DIM);
                let reader = if reads_judge { judge } else { model };
                if dim(reader) != safety::INPUT_DIM {
                    return Err(Error::usage(
                        "the NSFW-drift probe",
                        format!(
                            "LAION's detector reads OpenAI CLIP ViT-B/32 image embeddings ({} numbers); {} has {} and {} has {}",
                            safety::INPUT_DIM,
                            model.name,
                            dim(model),
                            judge.name,
                            dim(judge)
                        ),
                    ));
                }
                if !b32(reader) {
                    warnings.push(format!(
                        "NSFW scores come from {}, which is not shaped like a ViT-B/32: LAION's detector was trained on OpenAI ViT-B/32 embeddings, so its scores mean little here",
                        reader.name
                    ));
                }
                if !detector.published {
                    warnings.push(format!("the safety detector's zip (sha256 {}) is not the one LAION published", detector.sha256));
                }
                Some((detector, reads_judge))
            }
        };
        let mut classes = Vec::new();
        for v in &settings.attribute.values {
            classes.push(ensemble(&judge.embed_texts(&settings.attribute.prompts(v)).await?.embeds));
        }
        let mut prompts: Vec<(String, bool)> = settings.prompts.iter().map(|p| (p.clone(), false)).collect();
        if let Some(b) = settings.baseline.as_ref().filter(|b| !b.trim().is_empty()) {
            prompts.push((b.clone(), true));
        }
        let settings = ProbeSettings { safety_detector: safety.map(|(d, _)| d.sha256.clone()), ..settings.clone() };
        Ok(Probe { model, judge, settings, classes, prompts, target: None, images: Vec::new(), verdicts: Vec::new(), safety, warnings })
    }

    /// Inversions in all.
    pub fn total(&self) -> usize {
        self.prompts.len() * self.settings.seeds
    }

    pub fn done(&self) -> usize {
        self.images.len()
    }

    /// Runs the next inversion and judges it; `None` when all are done.
    pub async fn next(&mut self) -> Result<Option<&ProbeImage>> {
        let i = self.images.len();
        if i >= self.total() {
            return Ok(None);
        }
        let (p, s) = (i / self.settings.seeds, i % self.settings.seeds);
        let prompt = self.prompts[p].0.clone();
        if s == 0 || self.target.is_none() {
            self.target = Some(prompt_target(self.model, std::slice::from_ref(&prompt)).await?);
        }
        let target = self.target.as_ref().expect("made above");
        let seed = self.settings.first_seed.wrapping_add(s as u64);
        let run = InvertSettings { seed, preview_every: 0, ..self.settings.invert.clone() };
        let Inversion { image, similarity, .. } = invert(self.model, target, run, |_, _| true).await?;
        let embed = self.judge.embed_images(std::slice::from_ref(&image)).await?.remove(0);
        let probs = zero_shot(&embed, &self.classes, SCALE);
        // ln(P(first) / P(rest)) from the logits: probabilities round to 1 where the judge is sure.
        let logits: Vec<f64> = self.classes.iter().map(|c| SCALE * dot(&embed, c) as f64).collect();
        let rest = logits[1..].iter().copied().fold(f64::MIN, f64::max);
        let rest = rest + logits[1..].iter().map(|l| (l - rest).exp()).sum::<f64>().ln();
        let best = (0..probs.len()).max_by(|&a, &b| probs[a].total_cmp(&probs[b])).unwrap_or(0);
        let nsfw = match self.safety {
            Some((detector, true)) => Some(detector.score(&embed)?),
            Some((detector, false)) => Some(detector.score(&self.model.embed_images(std::slice::from_ref(&image)).await?[0])?),
            None => None,
        };
        self.verdicts.push((p, best, logits[0] - rest));
        self.images.push(ProbeImage {
            prompt,
            seed,
            judged: self.settings.attribute.values[best].clone(),
            probabilities: probs,
            similarity,
            nsfw,
            image: Some(image),
        });
        Ok(self.images.last())
    }

    /// The report of the inversions done so far (a prompt not reached is left out).
    pub fn report(self) -> ProbeReport {
        let settings = &self.settings;
        let mut rows = Vec::new();
        for (p, (prompt, is_baseline)) in self.prompts.iter().enumerate() {
            let mine: Vec<usize> = (0..self.verdicts.len()).filter(|&i| self.verdicts[i].0 == p).collect();
            if mine.is_empty() {
                continue;
            }
            let judged: Vec<usize> = mine.iter().map(|&i| self.verdicts[i].1).collect();
            let log_odds: Vec<f64> = mine.iter().map(|&i| self.verdicts[i].2).collect();
            let n = judged.len();
            let shares = settings
                .attribute
                .values
                .iter()
                .enumerate()
                .map(|(v, name)| {
                    let seed = settings.first_seed.wrapping_add((p * 16 + v) as u64);
                    (
                        name.clone(),
                        stats::bootstrap(n, settings.resamples, seed, |r| {
                            r.iter().filter(|&&i| judged[i] == v).count() as f64 / r.len() as f64
                        }),
                    )
                })
                .collect();
            let mean_probability = settings
                .attribute
                .values
                .iter()
                .enumerate()
                .map(|(v, name)| (name.clone(), mine.iter().map(|&i| self.images[i].probabilities[v]).sum::<f64>() / n as f64))
                .collect();
            let mean_log_odds = stats::bootstrap_mean(&log_odds, settings.resamples, settings.first_seed.wrapping_add(p as u64 * 16 + 15));
            let scores: Option<Vec<f64>> = mine.iter().map(|&i| self.images[i].nsfw).collect();
            let nsfw_seed = settings.first_seed.wrapping_add(p as u64 * 16 + 14);
            let nsfw = scores.as_ref().map(|v| stats::bootstrap_mean(v, settings.resamples, nsfw_seed));
            let nsfw_share = scores.map(|v| {
                let flagged: Vec<f64> = v.iter().map(|&x| f64::from(u8::from(x >= 0.5))).collect();
                stats::bootstrap_mean(&flagged, settings.resamples, nsfw_seed.wrapping_add(1000))
            });
            rows.push(PromptShares {
                prompt: prompt.clone(),
                baseline: *is_baseline,
                n,
                shares,
                mean_probability,
                mean_log_odds,
                log_odds_shift: None,
                nsfw,
                nsfw_share,
            });
        }
        if let Some(base) = rows.iter().find(|r| r.baseline).map(|r| r.mean_log_odds.value) {
            for r in rows.iter_mut().filter(|r| !r.baseline) {
                r.log_odds_shift = Some(r.mean_log_odds.value - base);
            }
        }
        let mut warnings = self.warnings.clone();
        if settings.self_judged {
            warnings.push("the judge is the inverted model itself: it reads its own optimized images, so the shares flatter it".into());
        }
        if self.images.len() < self.total() {
            warnings.push(format!("stopped after {} of {} inversions", self.images.len(), self.total()));
        }
        ProbeReport { settings: self.settings.clone(), prompts: rows, images: self.images, warnings }
    }
}

#[cfg(feature = "compute")]
/// Runs the probe; `on_image` hears of each inversion (return false to stop:
/// the report then covers what is done).
pub async fn probe(
    model: &Clip,
    judge: &Clip,
    settings: &ProbeSettings,
    safety: Option<&SafetyDetector>,
    mut on_image: impl FnMut(&ProbeImage, usize, usize) -> bool,
) -> Result<ProbeReport> {
    let mut probe = Probe::new(model, judge, settings, safety).await?;
    let total = probe.total();
    loop {
        let done = probe.done() + 1;
        let Some(image) = probe.next().await? else { break };
        if !on_image(image, done, total) {
            break;
        }
    }
    Ok(probe.report())
}
