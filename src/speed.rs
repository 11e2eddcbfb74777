//! Timing a loaded model's towers, the same way natively (`cliplens bench
//! speed`) and in the browser (the Speed page, which `cliplens bench
//! browser` drives): image embedding from pixels (random ones, seeded: the
//! resize and crop are left out) at each batch size, and the text tower on a
//! batch of typical prompts (tokenized once, outside the timing). Each
//! measurement is one untimed warm-up call, then `runs` timed calls that end
//! when the embeddings are read back to the host.

use serde::{Deserialize, Serialize};

/// Nouns of the text batch's prompts ("a photo of a cat."): the length of a
/// typical zero-shot prompt.
pub const PROMPT_NOUNS: [&str; 32] = [
    "cat", "dog", "pilot", "nurse", "doctor", "chef", "teacher", "farmer", "bicycle", "car", "truck", "boat",
    "mountain", "beach", "forest", "city street", "kitchen", "office", "bird", "horse", "apple", "banana",
    "guitar", "piano", "laptop", "phone", "chair", "table", "house", "bridge", "river", "sunset",
];

/// The text batch: `n` prompts, cycling through [`PROMPT_NOUNS`].
pub fn prompts(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("a photo of a {}.", PROMPT_NOUNS[i % PROMPT_NOUNS.len()])).collect()
}

/// What to time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpeedPlan {
    /// Image batch sizes (the first is reported as latency, the others as throughput).
    pub batches: Vec<usize>,
    /// Prompts in the text batch (0 skips it).
    pub texts: usize,
    /// Timed calls per measurement.
    pub runs: usize,
}

impl SpeedPlan {
    /// Warm-up and timed calls in all.
    pub fn calls(&self) -> usize {
        (self.batches.len() + usize::from(self.texts > 0)) * (self.runs + 1)
    }

    /// A problem with the plan, in words (the page's form and the CLI check it).
    pub fn problem(&self) -> Option<String> {
        if self.runs == 0 {
            return Some("runs: at least 1".into());
        }
        if self.batches.is_empty() && self.texts == 0 {
            return Some("nothing to time: give an image batch size or a number of prompts".into());
        }
        if let Some(b) = self.batches.iter().find(|&&b| b == 0 || b > 256) {
            return Some(format!("image batch {b}: from 1 to 256"));
        }
        (self.texts > 1024).then(|| format!("prompts {}: at most 1024", self.texts))
    }
}

/// Seconds of each timed call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchTimes {
    pub batch: usize,
    pub seconds: Vec<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpeedReport {
    pub plan: SpeedPlan,
    pub image: Vec<BatchTimes>,
    /// The text batch (`plan.texts` prompts); `None` when skipped.
    pub text: Option<Vec<f64>>,
    /// Every timed call was made (false: cancelled part way; what was timed is kept).
    pub complete: bool,
}

/// The median of the finite values.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { 0.5 * (v[n / 2 - 1] + v[n / 2]) })
}

/// A rate for a table: three significant figures or so ("412", "41.4", "4.14"), "—" when missing.
pub fn format_rate(value: Option<f64>) -> String {
    match value {
        Some(x) if x >= 100.0 => format!("{x:.0}"),
        Some(x) if x >= 10.0 => format!("{x:.1}"),
        Some(x) => format!("{x:.2}"),
        None => "—".into(),
    }
}

impl SpeedReport {
    /// Items per second at the median call: `(task, items per call, rate)`.
    pub fn rates(&self) -> Vec<(String, usize, Option<f64>)> {
        let mut rows: Vec<(String, usize, Option<f64>)> = self
            .image
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let what = if i == 0 { "latency" } else { "throughput" };
                (format!("image embedding, batch {} ({what})", t.batch), t.batch, median(&t.seconds).map(|s| t.batch as f64 / s))
            })
            .collect();
        if let Some(t) = &self.text {
            rows.push((format!("text embedding, {} prompts", self.plan.texts), self.plan.texts, median(t).map(|s| self.plan.texts as f64 / s)));
        }
        rows
    }
}

#[cfg(feature = "compute")]
mod measure {
    use burn::tensor::{Tensor, TensorData};

    use super::{BatchTimes, SpeedPlan, SpeedReport, prompts};
    use crate::Result;
    use crate::clip::{Clip, read_rows};
    use crate::rng::Rng;

    /// Times `plan` on `clip`. `now` is a clock in seconds; `between` runs
    /// after every call with (calls done, calls in all) and returns false to
    /// stop (the browser yields there, so Cancel is heard).
    pub async fn measure(clip: &Clip, plan: &SpeedPlan, now: impl Fn() -> f64, mut between: impl AsyncFnMut(usize, usize) -> bool) -> Result<SpeedReport> {
        let size = clip.config().vision_config.image_size;
        let total = plan.calls();
        let mut done = 0;
        let mut report = SpeedReport { plan: plan.clone(), image: Vec::new(), text: None, complete: false };
        for &batch in &plan.batches {
            let mut rng = Rng::new(batch as u64);
            let values: Vec<f32> = (0..batch * 3 * size * size).map(|_| rng.normal() as f32).collect();
            let pixels: Tensor<4> = Tensor::from_data(TensorData::new(values, [batch, 3, size, size]), &clip.device);
            let mut times = BatchTimes { batch, seconds: Vec::new() };
            for call in 0..=plan.runs {
                let start = now();
                let (_, features) = clip.model.encode_image(pixels.clone());
                read_rows(features).await?;
                if call > 0 {
                    times.seconds.push(now() - start);
                }
                done += 1;
                if !between(done, total).await {
                    report.image.push(times);
                    return Ok(report);
                }
            }
            report.image.push(times);
        }
        if plan.texts > 0 {
            let tokens = prompts(plan.texts).iter().map(|p| clip.tokenizer.encode(p)).collect::<Result<Vec<_>>>()?;
            let mut times = Vec::new();
            for call in 0..=plan.runs {
                let start = now();
                read_rows(clip.text_features(&tokens)?).await?;
                if call > 0 {
                    times.push(now() - start);
                }
                done += 1;
                if !between(done, total).await {
                    report.text = Some(times);
                    return Ok(report);
                }
            }
            report.text = Some(times);
        }
        report.complete = true;
        Ok(report)
    }
}

#[cfg(feature = "compute")]
pub use measure::measure;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_are_checked_and_rates_come_from_medians() {
        let plan = SpeedPlan { batches: vec![1, 8], texts: 4, runs: 3 };
        assert_eq!(plan.problem(), None);
        assert_eq!(plan.calls(), 3 * 4);
        assert!(SpeedPlan { runs: 0, ..plan.clone() }.problem().unwrap().contains("runs"));
        assert!(SpeedPlan { batches: vec![], texts: 0, runs: 1 }.problem().unwrap().contains("nothing to time"));
        assert!(SpeedPlan { batches: vec![0], ..plan.clone() }.problem().unwrap().contains("image batch 0"));
        let report = SpeedReport {
            plan: plan.clone(),
            image: vec![BatchTimes { batch: 1, seconds: vec![0.5, 0.1, 0.2] }, BatchTimes { batch: 8, seconds: vec![2.0, 2.0, 1.0] }],
            text: Some(vec![0.25, 0.5]),
            complete: true,
        };
        let rates: Vec<(String, usize, Option<f64>)> = report.rates();
        assert_eq!(rates[0], ("image embedding, batch 1 (latency)".into(), 1, Some(5.0)));
        assert_eq!(rates[1], ("image embedding, batch 8 (throughput)".into(), 8, Some(4.0)));
        assert_eq!(rates[2], ("text embedding, 4 prompts".into(), 4, Some(4.0 / 0.375)));
        assert_eq!(prompts(33)[32], "a photo of a cat.");
    }
}
