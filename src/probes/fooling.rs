//! Fooling images (Freiberger et al. 2023, "CLIPMasterPrints"): one image,
//! optimized with the inversion engine to match many unrelated prompts at
//! once, scores higher on every one of them than the real images that show
//! them. The paper traces this to the modality gap: an optimized image can sit
//! near the text embeddings, where no real image sits. Its mitigation shifts
//! image embeddings across the gap (towards the text centroid); the probe
//! measures how much of the fooling image's advantage survives that.
//!
//! The comparison is plain math on embeddings (checked against numpy); making
//! the image needs the `compute` feature.

use serde::{Deserialize, Serialize};

/// Which single direction the image is inverted towards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aim {
    /// The unit vector whose smallest cosine with the prompts is largest: the
    /// image must match every prompt (the fooling image proper).
    Min,
    /// The prompts' mean direction: the best mean cosine.
    Mean,
}

impl Aim {
    pub fn parse(text: &str) -> Result<Aim, String> {
        match text {
            "min" => Ok(Aim::Min),
            "mean" => Ok(Aim::Mean),
            other => Err(format!("unknown aim {other:?}: use min or mean")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Aim::Min => "max-min direction",
            Aim::Mean => "mean direction",
        }
    }

    /// The direction for unit `texts`.
    pub fn direction(self, texts: &[Vec<f32>]) -> Result<Vec<f32>, String> {
        let vectors: Vec<Vec<f64>> = texts.iter().map(|t| unit(&t.iter().map(|&x| x as f64).collect::<Vec<_>>())).collect();
        let point = match self {
            Aim::Mean => {
                let dim = vectors.first().map_or(0, Vec::len);
                let mut sum = vec![0.0; dim];
                vectors.iter().for_each(|v| sum.iter_mut().zip(v).for_each(|(s, x)| *s += x));
                sum
            }
            Aim::Min => min_norm_point(&vectors),
        };
        if point.iter().map(|x| x * x).sum::<f64>() < 1e-18 {
            return Err("the prompts cancel out: no direction serves them all".into());
        }
        Ok(unit(&point).iter().map(|&x| x as f32).collect())
    }
}

/// The point of smallest norm in the convex hull of `vectors` (pairwise
/// Frank-Wolfe with exact line search: mass moves from the worst active
/// vector to the best one, which converges linearly on a polytope). Its
/// direction maximizes the smallest cosine with the vectors over the sphere
/// (by minimax duality, when that cosine is positive), so the fooling image's
/// aim is solved here exactly, on the host, and the inversion only has to
/// reach one direction.
pub fn min_norm_point(vectors: &[Vec<f64>]) -> Vec<f64> {
    let n = vectors.len();
    let dim = vectors.first().map_or(0, Vec::len);
    let mut weights = vec![1.0 / n.max(1) as f64; n];
    let mut p = vec![0.0; dim];
    for (w, v) in weights.iter().zip(vectors) {
        p.iter_mut().zip(v).for_each(|(pi, vi)| *pi += w * vi);
    }
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    for _ in 0..100_000 {
        let scores: Vec<f64> = vectors.iter().map(|v| dot(v, &p)).collect();
        let toward = (0..n).min_by(|&a, &b| scores[a].total_cmp(&scores[b])).unwrap_or(0);
        let away = (0..n).filter(|&k| weights[k] > 0.0).max_by(|&a, &b| scores[a].total_cmp(&scores[b])).unwrap_or(0);
        // The duality gap p·p − min_k p·v_k bounds how far p is from the optimum.
        if dot(&p, &p) - scores[toward] < 1e-15 || toward == away {
            break;
        }
        let d: Vec<f64> = vectors[toward].iter().zip(&vectors[away]).map(|(a, b)| a - b).collect();
        let dd = dot(&d, &d);
        if dd < 1e-30 {
            break;
        }
        let step = (-dot(&p, &d) / dd).clamp(0.0, weights[away]);
        weights[toward] += step;
        weights[away] -= step;
        p.iter_mut().zip(&d).for_each(|(pi, di)| *pi += step * di);
    }
    p
}

/// One prompt's scores.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PromptScores {
    pub prompt: String,
    /// Cosine of the fooling image with the prompt.
    pub fooling: f64,
    /// The highest cosine any real image reaches, and which image.
    pub best_real: f64,
    pub best_real_index: usize,
    /// `fooling − best_real`: positive where the fooling image wins.
    pub margin: f64,
    /// The same three after every image embedding is shifted across the gap.
    pub shifted_fooling: f64,
    pub shifted_best_real: f64,
    pub shifted_margin: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FoolingReport {
    pub prompts: Vec<PromptScores>,
    pub real_images: usize,
    /// Prompts on which the fooling image beats every real image, before and after the shift.
    pub prompts_won: usize,
    pub shifted_prompts_won: usize,
    pub min_margin: f64,
    pub mean_margin: f64,
    pub shifted_min_margin: f64,
    pub shifted_mean_margin: f64,
    /// The shift: the image centroid minus the text centroid, and its length.
    pub gap_norm: f64,
    /// Where the centroids came from.
    pub gap_source: String,
    /// `shifted_mean_margin / mean_margin`: the share of the fooling
    /// advantage the mitigation leaves (1: none removed; ≤ 0: all of it).
    /// `None` where there was no advantage to keep (mean margin ≤ 0).
    pub advantage_remaining: Option<f64>,
}

fn unit(v: &[f64]) -> Vec<f64> {
    let n = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
    v.iter().map(|x| x / n).collect()
}

fn cos(a: &[f64], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, &y)| x * y as f64).sum()
}

/// The mean of unit vectors (each renormalized first).
pub fn centroid(vectors: &[Vec<f32>]) -> Vec<f64> {
    let dim = vectors.first().map_or(0, Vec::len);
    let mut sum = vec![0.0; dim];
    for v in vectors {
        let u = unit(&v.iter().map(|&x| x as f64).collect::<Vec<_>>());
        sum.iter_mut().zip(u).for_each(|(s, x)| *s += x);
    }
    sum.iter().map(|s| s / vectors.len().max(1) as f64).collect()
}

/// Compares the fooling image's embedding with `real` image embeddings on
/// each prompt (`texts`: the prompts' unit embeddings), then again after
/// every image embedding `e` becomes `unit(unit(e) − gap)`, where `gap` is the image
/// centroid minus the text centroid.
pub fn compare(
    prompts: &[String],
    texts: &[Vec<f32>],
    fooling: &[f32],
    real: &[Vec<f32>],
    gap: &[f64],
    gap_source: &str,
) -> Result<FoolingReport, String> {
    if prompts.len() != texts.len() || prompts.is_empty() {
        return Err(format!("{} prompts for {} text embeddings", prompts.len(), texts.len()));
    }
    if real.is_empty() {
        return Err("no real images to compare with".into());
    }
    let dim = fooling.len();
    if texts.iter().chain(real).any(|v| v.len() != dim) || gap.len() != dim {
        return Err(format!("embeddings of different sizes (the fooling image has {dim})"));
    }
    let as_f64 = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
    let shifted = |v: &[f32]| unit(&unit(&as_f64(v)).iter().zip(gap).map(|(x, g)| x - g).collect::<Vec<_>>());
    let fooling_plain = unit(&as_f64(fooling));
    let fooling_shifted = shifted(fooling);
    let real_plain: Vec<Vec<f64>> = real.iter().map(|v| unit(&as_f64(v))).collect();
    let real_shifted: Vec<Vec<f64>> = real.iter().map(|v| shifted(v)).collect();
    let best = |set: &[Vec<f64>], text: &[f32]| {
        set.iter().enumerate().map(|(i, v)| (i, cos(v, text))).fold((0, f64::NEG_INFINITY), |b, c| if c.1 > b.1 { c } else { b })
    };
    let mut rows = Vec::with_capacity(prompts.len());
    for (prompt, text) in prompts.iter().zip(texts) {
        let (index, best_real) = best(&real_plain, text);
        let (_, shifted_best_real) = best(&real_shifted, text);
        let (f, sf) = (cos(&fooling_plain, text), cos(&fooling_shifted, text));
        rows.push(PromptScores {
            prompt: prompt.clone(),
            fooling: f,
            best_real,
            best_real_index: index,
            margin: f - best_real,
            shifted_fooling: sf,
            shifted_best_real,
            shifted_margin: sf - shifted_best_real,
        });
    }
    let n = rows.len() as f64;
    let mean_margin = rows.iter().map(|r| r.margin).sum::<f64>() / n;
    let shifted_mean_margin = rows.iter().map(|r| r.shifted_margin).sum::<f64>() / n;
    Ok(FoolingReport {
        real_images: real.len(),
        prompts_won: rows.iter().filter(|r| r.margin > 0.0).count(),
        shifted_prompts_won: rows.iter().filter(|r| r.shifted_margin > 0.0).count(),
        min_margin: rows.iter().map(|r| r.margin).fold(f64::INFINITY, f64::min),
        mean_margin,
        shifted_min_margin: rows.iter().map(|r| r.shifted_margin).fold(f64::INFINITY, f64::min),
        shifted_mean_margin,
        gap_norm: gap.iter().map(|g| g * g).sum::<f64>().sqrt(),
        gap_source: gap_source.to_string(),
        advantage_remaining: (mean_margin > 0.0).then(|| shifted_mean_margin / mean_margin),
        prompts: rows,
    })
}

/// The gap vector from two sets: the image centroid minus the text centroid.
pub fn gap_vector(images: &[Vec<f32>], texts: &[Vec<f32>]) -> Vec<f64> {
    centroid(images).iter().zip(centroid(texts)).map(|(a, b)| a - b).collect()
}

/// The world's default prompts: one value of each of eight attributes (role,
/// shape, colour, background, pattern, size, position, group), so no real
/// scene can be the best match for all at once. Every such choice of one value
/// per attribute (4,096 of them) leaves room for a fooling image on
/// world-clip: the max-min direction beats the best of 500 real scenes on
/// every prompt by 0.03 to 0.11 in cosine; this set is the one with the most.
pub const WORLD_PROMPTS: [&str; 8] = [
    "a photo of a doctor",
    "a photo of a circle",
    "a photo of a yellow figure",
    "a photo of a figure in a city",
    "a photo of a striped figure",
    "a photo of a large figure",
    "a photo of a figure at the top",
    "a photo of a vorn figure",
];

/// The CSV of a report: one row per prompt.
pub fn csv(report: &FoolingReport) -> String {
    let mut out = String::from("prompt,fooling,best_real,best_real_index,margin,shifted_fooling,shifted_best_real,shifted_margin\n");
    for r in &report.prompts {
        out.push_str(&format!(
            "\"{}\",{},{},{},{},{},{},{}\n",
            r.prompt.replace('"', "\"\""),
            r.fooling,
            r.best_real,
            r.best_real_index,
            r.margin,
            r.shifted_fooling,
            r.shifted_best_real,
            r.shifted_margin
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vector_between_the_texts_beats_images_near_each() {
        // Texts on two axes; real images each near one text, far from the other.
        let texts = vec![vec![1.0, 0.0, 0.0], vec![0.0, 1.0, 0.0]];
        let real = vec![vec![0.6, 0.0, 0.8], vec![0.0, 0.6, 0.8]];
        let fooling = vec![0.7, 0.7, 0.1];
        let prompts = vec!["a".to_string(), "b".to_string()];
        let gap = gap_vector(&real, &texts);
        let r = compare(&prompts, &texts, &fooling, &real, &gap, "test").unwrap();
        assert_eq!(r.prompts_won, 2);
        assert!(r.min_margin > 0.0);
        // Across the gap, the real images face the texts head on and win.
        assert!(r.shifted_mean_margin < r.mean_margin, "{r:?}");
        assert!(compare(&prompts, &texts[..1], &fooling, &real, &gap, "t").is_err());
    }
}

#[cfg(feature = "compute")]
pub use compute::{Fooled, fooling_image, world_reference};

#[cfg(feature = "compute")]
mod compute {
    use super::Aim;
    use crate::clip::Clip;
    use crate::error::{Error, Result};
    use crate::invert::{Inversion, InvertSettings, Inverter, StepReport, Target, TargetTerm, TermKind, finish};

    /// A fooling image, the direction it was inverted towards, and the
    /// prompts' unit embeddings (what the comparison needs next).
    pub struct Fooled {
        pub inversion: Inversion,
        pub direction: Vec<f32>,
        pub texts: Vec<Vec<f32>>,
    }

    /// Inverts towards the one direction that serves every prompt (`aim`).
    /// `on_step` sees each step and may answer `false` to stop (the image so
    /// far comes back, marked stopped); it is async so a web worker can let
    /// its event loop in (a Cancel) between steps.
    pub async fn fooling_image(
        clip: &Clip,
        prompts: &[String],
        aim: Aim,
        settings: InvertSettings,
        mut on_step: impl AsyncFnMut(&StepReport) -> bool,
    ) -> Result<Fooled> {
        if prompts.len() < 2 || prompts.iter().any(|p| p.trim().is_empty()) {
            return Err(Error::prompt("fooling image", "needs at least two prompts, none empty"));
        }
        let texts = clip.embed_texts(prompts).await?.embeds;
        let direction = aim.direction(&texts).map_err(|e| Error::prompt("fooling image", e))?;
        let term = TargetTerm { kind: TermKind::Embedding, label: format!("{} of {} prompts", aim.name(), prompts.len()), weight: 1.0 };
        let target = Target::combine(vec![(term, direction.clone())])?;
        let mut inverter = Inverter::new(clip, &target, settings)?;
        let mut stopped = false;
        while !inverter.done() {
            let report = inverter.step().await?;
            if !on_step(&report).await {
                stopped = !inverter.done();
                break;
            }
        }
        Ok(Fooled { inversion: finish(clip, &inverter, stopped).await?, direction, texts })
    }

    /// The real side of the world's comparison: `count` scenes from `seed`,
    /// embedded, and the gap vector from them and their full captions.
    pub async fn world_reference(clip: &Clip, seed: u64, count: usize) -> Result<(Vec<Vec<f32>>, Vec<f64>)> {
        use crate::world::captions::full_caption;
        use crate::world::eval::embed_scenes;
        let scenes = crate::world::scenes(seed, count);
        let real = embed_scenes(clip, &scenes).await?;
        let captions: Vec<String> = scenes.iter().map(full_caption).collect();
        let caption_embeds = clip.embed_texts(&captions).await?.embeds;
        let gap = super::gap_vector(&real, &caption_embeds);
        Ok((real, gap))
    }
}
