//! Where CLIP looks: which pixels of an image raise its similarity to a prompt
//! (or to one prompt over another), and which words of the prompt matter.
//!
//! Three pixel maps, each a different question:
//! - gradient × input: the first-order change of the score from the baseline
//!   to the image, `(x − b) · ∂s/∂x` at the image (cheap, noisy);
//! - integrated gradients (Sundararajan et al. 2017): the same product with the
//!   gradient averaged along the straight path from the baseline to the image;
//!   its sum equals `s(x) − s(b)` (completeness), which the probe measures and
//!   refines the path until it holds to 1%;
//! - occlusion: the drop of the score when a baseline-coloured square covers
//!   each place (no gradients; what a person would test by hand).
//!
//! Scores are the cosine of the image's embedding with the prompt's, or the
//! difference of two such cosines. Maps are per pixel of the model's input
//! (after resize and crop), channels summed. The maths on the host is plain;
//! the model passes need the `compute` feature.

use serde::{Deserialize, Serialize};

use crate::preprocess::RgbImage;

/// What the score is compared against: the image with all its content removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Baseline {
    /// The model's mean colour everywhere: an input of zeros after normalization.
    Mean,
    Black,
    /// The image blurred beyond recognition (colours and layout kept, shapes
    /// gone): the default, since what a prompt names is usually a shape (a
    /// hat, a face, an object), and colours attributed against grey would
    /// drown it (on the world, 71% of a role's integrated gradients land on
    /// the figures against 19% with the mean colour).
    #[default]
    Blur,
}

impl Baseline {
    pub const ALL: [Baseline; 3] = [Baseline::Mean, Baseline::Black, Baseline::Blur];

    /// As sentences say it ("the blurred baseline").
    pub fn name(self) -> &'static str {
        match self {
            Baseline::Mean => "mean-colour",
            Baseline::Black => "black",
            Baseline::Blur => "blurred",
        }
    }

    pub fn parse(text: &str) -> Result<Baseline, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "mean" | "grey" | "gray" => Ok(Baseline::Mean),
            "black" => Ok(Baseline::Black),
            "blur" => Ok(Baseline::Blur),
            other => Err(format!("unknown baseline {other:?}: use mean, black or blur")),
        }
    }
}

/// The probe's switches, each with its default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttributionSettings {
    pub baseline: Baseline,
    /// Integrated gradients: points on the path (midpoint rule) to start with.
    pub steps: usize,
    /// Doubled from `steps` while completeness misses `tolerance`, up to this.
    pub max_steps: usize,
    /// Completeness: |Σ attributions − (s(x) − s(b))| ≤ tolerance · |s(x) − s(b)|.
    pub tolerance: f64,
    /// Occlusion square's side in input pixels; `None`: an eighth of the input.
    pub patch: Option<usize>,
    /// Occlusion step; `None`: half the patch.
    pub stride: Option<usize>,
    /// Images per forward (and backward) pass.
    pub batch: usize,
}

impl Default for AttributionSettings {
    fn default() -> Self {
        AttributionSettings { baseline: Baseline::Blur, steps: 32, max_steps: 256, tolerance: 0.01, patch: None, stride: None, batch: 16 }
    }
}

impl AttributionSettings {
    pub fn check(&self) -> Result<(), String> {
        if self.steps == 0 || self.max_steps < self.steps {
            return Err(format!("integrated gradients need 1 <= steps <= max steps (got {} and {})", self.steps, self.max_steps));
        }
        if !(self.tolerance > 0.0) {
            return Err(format!("the completeness tolerance must be positive (got {})", self.tolerance));
        }
        if self.patch == Some(0) || self.stride == Some(0) || self.batch == 0 {
            return Err("the occlusion patch, its stride and the batch must be at least 1".into());
        }
        Ok(())
    }

    /// The occlusion patch and stride for an input of `side` pixels.
    pub fn occlusion(&self, side: usize) -> (usize, usize) {
        let patch = self.patch.unwrap_or(side / 8).clamp(1, side);
        (patch, self.stride.unwrap_or(patch / 2).max(1))
    }
}

/// One value per input pixel (row-major, `side` × `side`), channels summed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Heatmap {
    pub side: usize,
    pub values: Vec<f32>,
}

impl Heatmap {
    pub fn sum(&self) -> f64 {
        self.values.iter().map(|&v| v as f64).sum()
    }

    /// Share of the positive attribution that falls where `mask` is true
    /// (0 when nothing is positive).
    pub fn positive_share(&self, mask: &[bool]) -> f64 {
        let (mut inside, mut total) = (0.0, 0.0);
        for (&v, &m) in self.values.iter().zip(mask) {
            if v > 0.0 {
                total += v as f64;
                if m {
                    inside += v as f64;
                }
            }
        }
        if total > 0.0 { inside / total } else { 0.0 }
    }

    /// The largest magnitude: the colour scale's end.
    pub fn scale(&self) -> f32 {
        self.values.iter().fold(0.0f32, |m, v| m.max(v.abs()))
    }
}

/// The mask of the given `(column, row)` grid cells of `cell` pixels in a
/// `side`-pixel picture (a world scene's figure cells).
pub fn cells_mask(side: usize, cell: usize, cells: &[(usize, usize)]) -> Vec<bool> {
    let mut mask = vec![false; side * side];
    for &(column, row) in cells {
        for y in row * cell..((row + 1) * cell).min(side) {
            for x in column * cell..((column + 1) * cell).min(side) {
                mask[y * side + x] = true;
            }
        }
    }
    mask
}

/// How much the score falls when one word is left out of the prompt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WordDrop {
    pub word: String,
    /// The prompt without it.
    pub prompt: String,
    pub score_without: f64,
    /// Score with the whole prompt minus the score without the word.
    pub drop: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttributionReport {
    pub prompt: String,
    /// The second prompt when the score is a contrast (first minus second).
    pub contrast: Option<String>,
    pub settings: AttributionSettings,
    /// The score of the image: cosine with the prompt (minus that with the contrast).
    pub score: f64,
    /// The score of the baseline image.
    pub baseline_score: f64,
    pub gradient_x_input: Heatmap,
    pub integrated_gradients: Heatmap,
    /// Path points the integrated gradients took (refined from `settings.steps`).
    pub ig_steps: usize,
    /// Σ integrated gradients, to set against `score − baseline_score`.
    pub ig_sum: f64,
    /// |Σ − (score − baseline_score)| / |score − baseline_score|.
    pub completeness_error: f64,
    pub occlusion: Heatmap,
    pub occlusion_patch: usize,
    pub occlusion_stride: usize,
    pub words: Vec<WordDrop>,
}

impl AttributionReport {
    /// The three pixel maps by name, in the order cards and files use.
    pub fn maps(&self) -> [(&'static str, &Heatmap); 3] {
        [
            ("gradient × input", &self.gradient_x_input),
            ("integrated gradients", &self.integrated_gradients),
            ("occlusion", &self.occlusion),
        ]
    }

    /// One row per pixel: `x,y,gradient_x_input,integrated_gradients,occlusion`.
    pub fn csv(&self) -> String {
        let side = self.gradient_x_input.side;
        let mut out = String::from("x,y,gradient_x_input,integrated_gradients,occlusion\n");
        for y in 0..side {
            for x in 0..side {
                let i = y * side + x;
                out.push_str(&format!(
                    "{x},{y},{},{},{}\n",
                    self.gradient_x_input.values[i], self.integrated_gradients.values[i], self.occlusion.values[i]
                ));
            }
        }
        out
    }
}

/// Prompts with each word left out in turn (none for a one-word prompt).
pub fn without_each_word(prompt: &str) -> Vec<(String, String)> {
    let words: Vec<&str> = prompt.split_whitespace().collect();
    if words.len() < 2 {
        return Vec::new();
    }
    (0..words.len())
        .map(|i| {
            let rest: Vec<&str> = words.iter().enumerate().filter(|&(j, _)| j != i).map(|(_, w)| *w).collect();
            (words[i].to_string(), rest.join(" "))
        })
        .collect()
}

/// Diverging colour for a value in -1..1: blue for negative, red for positive,
/// with its opacity (0 at 0).
fn heat_colour(v: f32) -> ([f32; 3], f32) {
    let a = v.abs().clamp(0.0, 1.0);
    let colour = if v >= 0.0 { [220.0, 30.0, 30.0] } else { [30.0, 90.0, 230.0] };
    (colour, a.sqrt() * 0.85)
}

/// `map` laid over `image` (the model-sized input), scaled by `scale`, each
/// side enlarged `zoom` times (nearest neighbour) so a 64-px map can be seen.
pub fn overlay(image: &RgbImage, map: &Heatmap, scale: f32, zoom: usize) -> RgbImage {
    let side = map.side;
    let zoom = zoom.max(1);
    let out_side = side * zoom;
    let mut pixels = Vec::with_capacity(out_side * out_side * 3);
    let scale = if scale > 0.0 { scale } else { 1.0 };
    for y in 0..out_side {
        for x in 0..out_side {
            let (sx, sy) = (x / zoom, y / zoom);
            let (colour, alpha) = heat_colour(map.values[sy * side + sx] / scale);
            for c in 0..3 {
                // The picture dimmed to grey-ish so the colours read.
                let base = image.pixels[(sy * image.width + sx) * 3 + c] as f32 * 0.55 + 50.0;
                pixels.push((base * (1.0 - alpha) + colour[c] * alpha).round().clamp(0.0, 255.0) as u8);
            }
        }
    }
    RgbImage::new(out_side, out_side, pixels)
}

/// The whole probe as one self-contained SVG: the input and the three maps
/// over it (each on its own scale, printed under it), the colour legend, and
/// the word drops as bars.
pub fn report_svg(report: &AttributionReport, image: &RgbImage) -> crate::error::Result<String> {
    use base64::Engine;
    let side = report.gradient_x_input.side;
    let zoom = (224 / side).max(1);
    let tile = side * zoom;
    let gap = 16;
    let png = |img: &RgbImage| -> crate::error::Result<String> {
        let bytes = crate::invert::output::encode_png(img, &[])?;
        Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
    };
    let width = 4 * tile + 5 * gap;
    let words_height = 24 + 18 * report.words.len();
    let height = tile + 120 + words_height;
    let title = match &report.contrast {
        Some(c) => format!("“{}” over “{}”", report.prompt, c),
        None => format!("“{}”", report.prompt),
    };
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"13\" role=\"img\" aria-label=\"{}\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
        escape(&format!("Attribution maps for {title}: the picture, gradient × input, integrated gradients and occlusion, and the score lost without each word"))
    );
    svg.push_str(&format!("<text x=\"{gap}\" y=\"18\" font-weight=\"bold\">Where the model looks for {}</text>\n", escape(&title)));
    let enlarged = RgbImage::new(
        tile,
        tile,
        (0..tile * tile).flat_map(|p| {
            let (x, y) = (p % tile / zoom, p / tile / zoom);
            image.pixels[(y * image.width + x) * 3..(y * image.width + x) * 3 + 3].to_vec()
        }).collect(),
    );
    let mut tiles = vec![("input".to_string(), format!("score {:.3}, baseline {:.3}", report.score, report.baseline_score), enlarged)];
    for (name, map) in report.maps() {
        let scale = map.scale();
        tiles.push((name.to_string(), format!("±{scale:.2e} full colour"), overlay(image, map, scale, zoom)));
    }
    for (k, (name, note, img)) in tiles.iter().enumerate() {
        let x = gap + k * (tile + gap);
        svg.push_str(&format!(
            "<image x=\"{x}\" y=\"30\" width=\"{tile}\" height=\"{tile}\" image-rendering=\"optimizeSpeed\" href=\"data:image/png;base64,{}\"/>\n",
            png(img)?
        ));
        svg.push_str(&format!("<text x=\"{x}\" y=\"{}\">{}</text>\n", tile + 46, escape(name)));
        svg.push_str(&format!("<text x=\"{x}\" y=\"{}\" fill=\"#555\" font-size=\"11\">{}</text>\n", tile + 62, escape(note)));
    }
    let legend_y = tile + 76;
    svg.push_str(&format!(
        "<defs><linearGradient id=\"heat\"><stop offset=\"0\" stop-color=\"rgb(30,90,230)\"/><stop offset=\"0.5\" stop-color=\"rgb(190,190,190)\"/><stop offset=\"1\" stop-color=\"rgb(220,30,30)\"/></linearGradient></defs>\n<rect x=\"{gap}\" y=\"{legend_y}\" width=\"200\" height=\"10\" fill=\"url(#heat)\"/>\n<text x=\"{}\" y=\"{}\" font-size=\"11\">lowers the score · no effect · raises the score</text>\n",
        gap + 210,
        legend_y + 9
    ));
    svg.push_str(&format!(
        "<text x=\"{gap}\" y=\"{}\" font-size=\"11\" fill=\"#555\">integrated gradients: {} steps, Σ = {:.4} against s(x) − s(baseline) = {:.4} ({:.2}% off)</text>\n",
        legend_y + 28,
        report.ig_steps,
        report.ig_sum,
        report.score - report.baseline_score,
        100.0 * report.completeness_error
    ));
    let words_y = tile + 120;
    if !report.words.is_empty() {
        svg.push_str(&format!("<text x=\"{gap}\" y=\"{words_y}\" font-weight=\"bold\">Score lost without each word</text>\n"));
        let largest = report.words.iter().fold(1e-9f64, |m, w| m.max(w.drop.abs()));
        let centre = gap + 260;
        for (k, w) in report.words.iter().enumerate() {
            let y = words_y + 10 + 18 * k;
            let len = (w.drop.abs() / largest * 200.0).round();
            let (x, fill) = if w.drop >= 0.0 { (centre as f64, "rgb(220,30,30)") } else { (centre as f64 - len, "rgb(30,90,230)") };
            svg.push_str(&format!("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n", centre - 210, y + 11, escape(&w.word)));
            svg.push_str(&format!("<rect x=\"{x}\" y=\"{y}\" width=\"{len}\" height=\"13\" fill=\"{fill}\"/>\n"));
            svg.push_str(&format!("<text x=\"{}\" y=\"{}\" font-size=\"11\">{:+.4}</text>\n", centre + 206, y + 11, w.drop));
        }
    }
    svg.push_str("</svg>\n");
    Ok(svg)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The input as planar `[3, side, side]` values in 0..1, and its side.
fn planar(image: &RgbImage) -> Vec<f32> {
    let plane = image.width * image.height;
    let mut out = vec![0.0; 3 * plane];
    for p in 0..plane {
        for c in 0..3 {
            out[c * plane + p] = image.pixels[p * 3 + c] as f32 / 255.0;
        }
    }
    out
}

/// The baseline for planar input `x` of `side` pixels.
fn baseline_of(x: &[f32], side: usize, kind: Baseline, mean: [f32; 3]) -> Vec<f32> {
    let plane = side * side;
    match kind {
        Baseline::Mean => (0..3 * plane).map(|i| mean[i / plane]).collect(),
        Baseline::Black => vec![0.0; 3 * plane],
        Baseline::Blur => {
            // Three box blurs of a quarter of the side approach a Gaussian wide enough to erase any figure.
            let radius = (side / 4).max(1);
            let mut out = x.to_vec();
            for c in 0..3 {
                let channel = &mut out[c * plane..(c + 1) * plane];
                for _ in 0..3 {
                    box_blur(channel, side, radius);
                }
            }
            out
        }
    }
}

/// A box blur of `radius` along rows, then columns, edges clamped.
fn box_blur(values: &mut [f32], side: usize, radius: usize) {
    let mut tmp = vec![0.0; values.len()];
    let r = radius as isize;
    let at = |i: isize| i.clamp(0, side as isize - 1) as usize;
    for y in 0..side {
        for x in 0..side {
            let s: f32 = (-r..=r).map(|d| values[y * side + at(x as isize + d)]).sum();
            tmp[y * side + x] = s / (2 * radius + 1) as f32;
        }
    }
    for y in 0..side {
        for x in 0..side {
            let s: f32 = (-r..=r).map(|d| tmp[at(y as isize + d) * side + x]).sum();
            values[y * side + x] = s / (2 * radius + 1) as f32;
        }
    }
}

/// Sums the three channels of planar `[3, side, side]` values.
fn channel_sum(values: &[f32], side: usize) -> Heatmap {
    let plane = side * side;
    Heatmap { side, values: (0..plane).map(|p| values[p] + values[plane + p] + values[2 * plane + p]).collect() }
}

/// Top-left corners of the occlusion windows along one axis: every `stride`,
/// plus the last one flush with the edge so every pixel is covered.
pub fn window_starts(side: usize, patch: usize, stride: usize) -> Vec<usize> {
    let last = side.saturating_sub(patch);
    let mut starts: Vec<usize> = (0..=last).step_by(stride.max(1)).collect();
    if starts.last() != Some(&last) {
        starts.push(last);
    }
    starts
}

/// A value per pixel map, in [`AttributionReport::maps`] order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PerMethod {
    pub gradient_x_input: f64,
    pub integrated_gradients: f64,
    pub occlusion: f64,
}

impl PerMethod {
    fn of(report: &AttributionReport, f: impl Fn(&Heatmap) -> f64) -> PerMethod {
        PerMethod {
            gradient_x_input: f(&report.gradient_x_input),
            integrated_gradients: f(&report.integrated_gradients),
            occlusion: f(&report.occlusion),
        }
    }

    fn mean(items: &[PerMethod]) -> PerMethod {
        let n = items.len().max(1) as f64;
        PerMethod {
            gradient_x_input: items.iter().map(|m| m.gradient_x_input).sum::<f64>() / n,
            integrated_gradients: items.iter().map(|m| m.integrated_gradients).sum::<f64>() / n,
            occlusion: items.iter().map(|m| m.occlusion).sum::<f64>() / n,
        }
    }
}

/// One world scene's check: where a role prompt's attribution falls (the
/// figures' cells carry the hats) and where a background prompt's does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorldAttributionScene {
    pub role_prompt: String,
    pub background_prompt: String,
    /// The figures' `(column, row)` cells.
    pub cells: Vec<(usize, usize)>,
    /// Share of the picture the cells cover.
    pub cell_area: f64,
    /// Share of the role prompt's positive attribution inside the cells.
    pub role_inside: PerMethod,
    /// Share of the background prompt's positive attribution outside the cells.
    pub background_outside: PerMethod,
    /// Integrated gradients' completeness error, the larger of the two prompts'.
    pub completeness_error: f64,
}

/// The check over fresh world scenes whose role is drawn.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorldAttribution {
    pub seed: u64,
    /// The contrast prompt of both kinds of prompt, if any.
    pub contrast: Option<String>,
    /// Role prompts' settings: by default a blurred baseline, which keeps the
    /// colours and the background and removes shapes and hats.
    pub role_settings: AttributionSettings,
    /// Background prompts' settings: by default the mean-colour baseline,
    /// which removes the background too.
    pub background_settings: AttributionSettings,
    pub scenes: Vec<WorldAttributionScene>,
    pub mean_cell_area: f64,
    pub mean_role_inside: PerMethod,
    pub mean_background_outside: PerMethod,
    pub max_completeness_error: f64,
}

impl WorldAttribution {
    pub fn summarize(
        seed: u64,
        contrast: Option<&str>,
        role_settings: AttributionSettings,
        background_settings: AttributionSettings,
        scenes: Vec<WorldAttributionScene>,
    ) -> WorldAttribution {
        let n = scenes.len().max(1) as f64;
        let inside: Vec<PerMethod> = scenes.iter().map(|s| s.role_inside.clone()).collect();
        let outside: Vec<PerMethod> = scenes.iter().map(|s| s.background_outside.clone()).collect();
        WorldAttribution {
            seed,
            contrast: contrast.map(str::to_string),
            role_settings,
            background_settings,
            mean_cell_area: scenes.iter().map(|s| s.cell_area).sum::<f64>() / n,
            mean_role_inside: PerMethod::mean(&inside),
            mean_background_outside: PerMethod::mean(&outside),
            max_completeness_error: scenes.iter().fold(0.0, |m, s| m.max(s.completeness_error)),
            scenes,
        }
    }
}

#[cfg(feature = "compute")]
pub use compute::{attribute, world_check};

#[cfg(feature = "compute")]
mod compute {
    use burn::module::Module;
    use burn::tensor::{Tensor, TensorData};

    use super::*;
    use crate::clip::{Clip, read_vec};
    use crate::error::{Error, Result};
    use crate::model::l2_normalize;
    use crate::preprocess::resize_and_crop;

    /// The score and its gradient at each of `points` (planar inputs in 0..1).
    struct Scorer<'a> {
        clip: &'a Clip,
        /// `[dim, 1]`: the prompt's unit embedding, minus the contrast's.
        direction: Vec<f32>,
        side: usize,
        batch: usize,
    }

    impl Scorer<'_> {
        fn normalized(&self, pixels: Tensor<4>) -> Tensor<4> {
            let p = &self.clip.preprocess;
            let device = &self.clip.device;
            let mean = Tensor::<4>::from_data(TensorData::new(p.image_mean.to_vec(), [1, 3, 1, 1]), device);
            let std = Tensor::<4>::from_data(TensorData::new(p.image_std.to_vec(), [1, 3, 1, 1]), device);
            (pixels - mean) / std
        }

        fn direction(&self, autodiff: bool) -> Tensor<2> {
            let t = Tensor::<2>::from_data(TensorData::new(self.direction.clone(), [self.direction.len(), 1]), &self.clip.device);
            if autodiff { t.autodiff() } else { t }
        }

        fn input(&self, points: &[Vec<f32>]) -> Tensor<4> {
            let values: Vec<f32> = points.iter().flatten().copied().collect();
            Tensor::from_data(TensorData::new(values, [points.len(), 3, self.side, self.side]), &self.clip.device)
        }

        /// Scores only (no gradients), a batch at a time.
        async fn scores(&self, points: &[Vec<f32>]) -> Result<Vec<f32>> {
            let mut out = Vec::with_capacity(points.len());
            for chunk in points.chunks(self.batch) {
                let (_, embeds) = self.clip.model.encode_image(self.normalized(self.input(chunk)));
                out.extend(read_vec(l2_normalize(embeds).matmul(self.direction(false))).await?);
            }
            Ok(out)
        }

        /// The sum over `points` of each point's gradient, and their scores.
        async fn summed_gradient(&self, points: &[Vec<f32>]) -> Result<(Vec<f32>, Vec<f32>)> {
            let model = self.clip.model.clone().train().no_grad();
            let mut total: Option<Tensor<4>> = None;
            let mut scores = Vec::with_capacity(points.len());
            for chunk in points.chunks(self.batch) {
                let leaf = self.input(chunk).autodiff().require_grad();
                let (_, embeds) = model.encode_image(self.normalized(leaf.clone()));
                let s = l2_normalize(embeds).matmul(self.direction(true));
                scores.extend(read_vec(s.clone().inner()).await?);
                let grads = s.sum().backward();
                let g = leaf.grad(&grads).ok_or_else(|| Error::device("no gradient reached the image"))?.sum_dim(0);
                total = Some(match total {
                    Some(t) => t + g,
                    None => g,
                });
            }
            let total = total.ok_or_else(|| Error::usage("attribution", "no points to differentiate"))?;
            Ok((read_vec(total).await?, scores))
        }
    }

    /// Attributes `image`'s similarity to `prompt` (minus that to `contrast`)
    /// to its pixels and the prompt's words. `on_progress(done, total)` sees
    /// each pass and may answer `false` to stop (then `Ok(None)`); it is
    /// async so a web worker can let its event loop in (a Cancel) between passes.
    pub async fn attribute(
        clip: &Clip,
        image: &RgbImage,
        prompt: &str,
        contrast: Option<&str>,
        settings: &AttributionSettings,
        mut on_progress: impl AsyncFnMut(usize, usize) -> bool,
    ) -> Result<Option<AttributionReport>> {
        settings.check().map_err(|e| Error::usage("attribution settings", e))?;
        if prompt.trim().is_empty() || contrast.is_some_and(|c| c.trim().is_empty()) {
            return Err(Error::prompt("attribution", "the prompt is empty"));
        }
        let input = resize_and_crop(image, &clip.preprocess);
        let side = input.width;
        let x = planar(&input);
        let b = baseline_of(&x, side, settings.baseline, clip.preprocess.image_mean);
        let mut texts = vec![prompt.to_string()];
        texts.extend(contrast.map(str::to_string));
        let words = without_each_word(prompt);
        texts.extend(words.iter().map(|(_, rest)| rest.clone()));
        let embedded = clip.embed_texts(&texts).await?.embeds;
        let contrast_embed = contrast.map(|_| embedded[1].clone());
        let towards = |t: &[f32]| -> Vec<f32> {
            match &contrast_embed {
                Some(c) => t.iter().zip(c).map(|(a, b)| a - b).collect(),
                None => t.to_vec(),
            }
        };
        let scorer = Scorer { clip, direction: towards(&embedded[0]), side, batch: settings.batch };
        let (patch, stride) = settings.occlusion(side);
        let starts = window_starts(side, patch, stride);
        let occlusion_passes = (starts.len() * starts.len()).div_ceil(settings.batch);
        let mut total_passes = 2 + settings.steps.div_ceil(settings.batch) + occlusion_passes;
        let mut passes = 0;

        // The image and the baseline; the gradient at the image.
        let (grad_at_x, score_x) = scorer.summed_gradient(std::slice::from_ref(&x)).await?;
        let score = score_x[0] as f64;
        let baseline_score = scorer.scores(std::slice::from_ref(&b)).await?[0] as f64;
        passes += 2;
        if !on_progress(passes, total_passes).await {
            return Ok(None);
        }
        let delta: Vec<f32> = x.iter().zip(&b).map(|(xi, bi)| xi - bi).collect();
        let gxi: Vec<f32> = delta.iter().zip(&grad_at_x).map(|(d, g)| d * g).collect();

        // Integrated gradients, refined until complete.
        let target = score - baseline_score;
        let mut steps = settings.steps;
        let (ig, ig_sum, error) = loop {
            let points: Vec<Vec<f32>> = (0..steps)
                .map(|k| {
                    let alpha = (k as f32 + 0.5) / steps as f32;
                    b.iter().zip(&delta).map(|(bi, d)| bi + alpha * d).collect()
                })
                .collect();
            let mut summed = vec![0.0f32; x.len()];
            for chunk in points.chunks(settings.batch) {
                let (g, _) = scorer.summed_gradient(chunk).await?;
                summed.iter_mut().zip(g).for_each(|(s, gi)| *s += gi);
                passes += 1;
                if !on_progress(passes, total_passes).await {
                    return Ok(None);
                }
            }
            let ig: Vec<f32> = delta.iter().zip(&summed).map(|(d, g)| d * g / steps as f32).collect();
            let sum: f64 = ig.iter().map(|&v| v as f64).sum();
            let error = (sum - target).abs() / target.abs().max(1e-6);
            if error <= settings.tolerance || steps * 2 > settings.max_steps {
                break (ig, sum, error);
            }
            steps *= 2;
            total_passes += steps.div_ceil(settings.batch);
        };

        // Occlusion: the baseline's pixels in one square at a time.
        let plane = side * side;
        let windows: Vec<(usize, usize)> = starts.iter().flat_map(|&y| starts.iter().map(move |&x0| (x0, y))).collect();
        let mut drops = vec![0.0f32; plane];
        let mut cover = vec![0u32; plane];
        for chunk in windows.chunks(settings.batch) {
            let occluded: Vec<Vec<f32>> = chunk
                .iter()
                .map(|&(x0, y0)| {
                    let mut v = x.clone();
                    for c in 0..3 {
                        for y in y0..y0 + patch {
                            for xx in x0..x0 + patch {
                                let i = c * plane + y * side + xx;
                                v[i] = b[i];
                            }
                        }
                    }
                    v
                })
                .collect();
            let scores = scorer.scores(&occluded).await?;
            for (&(x0, y0), s) in chunk.iter().zip(scores) {
                for y in y0..y0 + patch {
                    for xx in x0..x0 + patch {
                        drops[y * side + xx] += score as f32 - s;
                        cover[y * side + xx] += 1;
                    }
                }
            }
            passes += 1;
            if !on_progress(passes, total_passes).await {
                return Ok(None);
            }
        }
        let occlusion: Vec<f32> = drops.iter().zip(&cover).map(|(d, &n)| d / n.max(1) as f32).collect();

        // Words: the prompt's score with each one left out.
        let image_embed = clip.embed_images(std::slice::from_ref(&input)).await?.remove(0);
        let offset = 1 + contrast.is_some() as usize;
        // Both sides of each drop from the same embedding, so the drops carry no
        // difference between the autodiff pass and the plain one.
        let score_of = |t: &[f32]| -> f64 { towards(t).iter().zip(&image_embed).map(|(a, b)| (a * b) as f64).sum() };
        let with_all = score_of(&embedded[0]);
        let word_drops = words
            .into_iter()
            .enumerate()
            .map(|(i, (word, rest))| {
                let without = score_of(&embedded[offset + i]);
                WordDrop { word, prompt: rest, score_without: without, drop: with_all - without }
            })
            .collect();

        Ok(Some(AttributionReport {
            prompt: prompt.to_string(),
            contrast: contrast.map(str::to_string),
            settings: settings.clone(),
            score,
            baseline_score,
            gradient_x_input: channel_sum(&gxi, side),
            integrated_gradients: channel_sum(&ig, side),
            ig_steps: steps,
            ig_sum,
            completeness_error: error,
            occlusion: Heatmap { side, values: occlusion },
            occlusion_patch: patch,
            occlusion_stride: stride,
            words: word_drops,
        }))
    }

    /// Attribution on `count` fresh world scenes (from `seed`) whose role's
    /// hat is drawn: each scene's role prompt should light up the figures'
    /// cells, its background prompt the rest. `on_progress(scenes done,
    /// count)` is called after every pass (a scene takes two attributions of
    /// many passes each) and may stop the run (`Ok(None)`).
    pub async fn world_check(
        clip: &Clip,
        seed: u64,
        count: usize,
        contrast: Option<&str>,
        role_settings: &AttributionSettings,
        background_settings: &AttributionSettings,
        mut on_progress: impl AsyncFnMut(usize, usize) -> bool,
    ) -> Result<Option<WorldAttribution>> {
        if count == 0 {
            return Err(Error::usage("attribution", "the world check needs at least one scene"));
        }
        use crate::world::captions::{Task, zero_shot_prompts};
        use crate::world::render::{CELL_SIDE, render_with_cells};
        use crate::world::{BACKGROUND, ROLES, role_scenes};

        let all_roles: Vec<usize> = (0..ROLES.len()).collect();
        let mut out = Vec::with_capacity(count);
        for (i, scene) in role_scenes(seed, count, &all_roles, true).iter().enumerate() {
            let (image, cells) = render_with_cells(scene);
            let role = scene.role.expect("role scenes have a role");
            let role_prompt = zero_shot_prompts(Task::Role, role).remove(0);
            let background_prompt = zero_shot_prompts(Task::Attribute(BACKGROUND), scene.attributes[BACKGROUND]).remove(0);
            let Some(role_report) = attribute(clip, &image, &role_prompt, contrast, role_settings, async |_, _| on_progress(i, count).await).await? else {
                return Ok(None);
            };
            let Some(background_report) =
                attribute(clip, &image, &background_prompt, contrast, background_settings, async |_, _| on_progress(i, count).await).await?
            else {
                return Ok(None);
            };
            let side = role_report.gradient_x_input.side;
            let mask = cells_mask(side, CELL_SIDE * side / crate::world::IMAGE_SIZE, &cells);
            let outside: Vec<bool> = mask.iter().map(|m| !m).collect();
            out.push(WorldAttributionScene {
                role_prompt,
                background_prompt,
                cell_area: mask.iter().filter(|&&m| m).count() as f64 / mask.len() as f64,
                cells,
                role_inside: PerMethod::of(&role_report, |m| m.positive_share(&mask)),
                background_outside: PerMethod::of(&background_report, |m| m.positive_share(&outside)),
                completeness_error: role_report.completeness_error.max(background_report.completeness_error),
            });
            if !on_progress(i + 1, count).await {
                return Ok(None);
            }
        }
        Ok(Some(WorldAttribution::summarize(seed, contrast, role_settings.clone(), background_settings.clone(), out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cover_every_pixel() {
        assert_eq!(window_starts(64, 8, 4).last(), Some(&56));
        assert_eq!(window_starts(10, 4, 4), vec![0, 4, 6]);
        assert_eq!(window_starts(4, 8, 4), vec![0]);
    }

    #[test]
    fn positive_share_counts_only_positive_values() {
        let map = Heatmap { side: 2, values: vec![3.0, -5.0, 1.0, 0.0] };
        assert!((map.positive_share(&[true, true, false, false]) - 0.75).abs() < 1e-12);
        assert_eq!(cells_mask(4, 2, &[(1, 0)]), vec![false, false, true, true, false, false, true, true, false, false, false, false, false, false, false, false]);
    }

    #[test]
    fn word_removal_keeps_the_order() {
        let out = without_each_word("a photo of  a doctor");
        assert_eq!(out.len(), 5);
        assert_eq!(out[4], ("doctor".to_string(), "a photo of a".to_string()));
        assert!(without_each_word("doctor").is_empty());
    }

    #[test]
    fn the_blur_baseline_keeps_the_mean_colour() {
        let side = 16;
        let x: Vec<f32> = (0..3 * side * side).map(|i| ((i * 7919) % 13) as f32 / 13.0).collect();
        let b = baseline_of(&x, side, Baseline::Blur, [0.5; 3]);
        let plane = side * side;
        for c in 0..3 {
            let (mx, mb) = (x[c * plane..(c + 1) * plane].iter().sum::<f32>(), b[c * plane..(c + 1) * plane].iter().sum::<f32>());
            assert!((mx - mb).abs() / plane as f32 <= 0.1, "{mx} {mb}");
        }
        let spread = |v: &[f32]| v.iter().fold(0.0f32, |m, &a| m.max(a)) - v.iter().fold(1.0f32, |m, &a| m.min(a));
        assert!(spread(&b[..plane]) < 0.5 * spread(&x[..plane]));
    }
}
