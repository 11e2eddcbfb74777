//! What an inversion leaves behind: the JSON report both faces emit, and the
//! PNG that carries its own recipe (model, target, settings) in its metadata,
//! so any saved image can be reproduced.

use serde::{Deserialize, Serialize};

use super::Inversion;
use super::settings::InvertSettings;
use super::target::{Target, TargetTerm};
#[cfg(feature = "compute")]
use crate::clip::Clip;
use crate::error::{Error, Result};
use crate::preprocess::RgbImage;

/// The PNG text key that holds [`InversionRecord`] as JSON.
pub const PNG_KEY: &str = "cliplens:inversion";
/// Points of the similarity curve kept in a record.
pub const CURVE_POINTS: usize = 200;

/// A point of the similarity curve.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    pub step: usize,
    pub similarity: f32,
}

/// The curve sampled to at most `points` points (always keeping the last step).
pub fn sample_curve(curve: &[f32], points: usize) -> Vec<CurvePoint> {
    if curve.is_empty() {
        return Vec::new();
    }
    let every = curve.len().div_ceil(points.max(1));
    let mut out: Vec<CurvePoint> =
        curve.iter().enumerate().step_by(every).map(|(i, &s)| CurvePoint { step: i + 1, similarity: s }).collect();
    if out.last().is_some_and(|p| p.step != curve.len()) {
        out.push(CurvePoint { step: curve.len(), similarity: curve[curve.len() - 1] });
    }
    out
}

/// An inversion's recipe and outcome: `cliplens invert --json` prints it and
/// the PNG stores it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InversionRecord {
    pub model: String,
    /// The target as an expression, e.g. `a panda + 0.5*a forest`.
    pub description: String,
    pub target: Vec<TargetTerm>,
    /// Cosine similarity of the final image's plain embedding to the target.
    pub similarity: f32,
    /// Cosine of the final image with each term, in `target`'s order.
    pub term_similarities: Vec<f32>,
    /// Mean similarity of the augmented views, sampled per step.
    pub curve: Vec<CurvePoint>,
    pub steps_done: usize,
    /// Stopped (cancelled) before the last step.
    pub stopped: bool,
    pub settings: InvertSettings,
    /// Wall-clock seconds, and optimizer steps per second.
    pub seconds: f64,
    pub steps_per_second: f64,
    /// Where compute ran, e.g. "cpu" or "wgpu".
    pub backend: String,
}

impl InversionRecord {
    #[cfg(feature = "compute")]
    /// The record of `result`, an inversion of `target` on `clip` that took
    /// `seconds`; embeds the image once more for the per-term similarities.
    pub async fn of(
        clip: &Clip,
        target: &Target,
        result: &Inversion,
        settings: InvertSettings,
        seconds: f64,
        backend: String,
    ) -> Result<InversionRecord> {
        let final_embed = clip.embed_images(std::slice::from_ref(&result.image)).await?.remove(0);
        Ok(InversionRecord {
            model: clip.name.clone(),
            description: target.description(),
            target: target.terms.clone(),
            similarity: result.similarity,
            term_similarities: target.term_similarities(&final_embed),
            curve: sample_curve(&result.curve, CURVE_POINTS),
            steps_done: result.steps_done,
            stopped: result.stopped,
            settings,
            seconds,
            steps_per_second: result.steps_done as f64 / seconds.max(1e-9),
            backend,
        })
    }
}

/// A download name: `cliplens-<prompt words>-seed<N>.png`.
pub fn file_name(record: &InversionRecord) -> String {
    let mut slug = String::new();
    for c in record.description.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
        if slug.chars().count() >= 48 {
            break;
        }
    }
    let slug = slug.trim_end_matches('-');
    let slug = if slug.is_empty() { "inversion" } else { slug };
    format!("cliplens-{slug}-seed{}.png", record.settings.seed)
}

/// The settings two inversions differ in: `(field, a, b)`, nested fields as
/// `augment.noise`, for the side-by-side comparison.
pub fn settings_diff(a: &InvertSettings, b: &InvertSettings) -> Vec<(String, String, String)> {
    fn flatten(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    flatten(&key, v, out);
                }
            }
            other => out.push((prefix.to_string(), other.to_string().trim_matches('"').to_string())),
        }
    }
    let (mut fa, mut fb) = (Vec::new(), Vec::new());
    flatten("", &serde_json::to_value(a).expect("settings serialize"), &mut fa);
    flatten("", &serde_json::to_value(b).expect("settings serialize"), &mut fb);
    fa.sort();
    fb.sort();
    fa.into_iter().zip(fb).filter(|(x, y)| x.1 != y.1).map(|((k, x), (_, y))| (k, x, y)).collect()
}

/// SVG `points` for a curve of `values` over `total` steps in a `width` x
/// `height` box, scaled to the values' range (higher is up).
pub fn polyline(values: &[f32], total: usize, width: f32, height: f32) -> String {
    let (lo, hi) = values.iter().fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    let span = if hi > lo { hi - lo } else { 1.0 };
    let steps = total.max(values.len()).max(2) - 1;
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let x = width * i as f32 / steps as f32;
            let y = height - height * (v - lo) / span;
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A PNG of `image` with `text` entries (UTF-8 iTXt chunks).
pub fn encode_png(image: &RgbImage, text: &[(&str, String)]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let fail = |e: png::EncodingError| Error::image("png", format!("cannot encode: {e}"));
    {
        let mut encoder = png::Encoder::new(&mut out, image.width as u32, image.height as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        for (key, value) in text {
            encoder.add_itxt_chunk(key.to_string(), value.clone()).map_err(fail)?;
        }
        let mut writer = encoder.write_header().map_err(fail)?;
        writer.write_image_data(&image.pixels).map_err(fail)?;
        writer.finish().map_err(fail)?;
    }
    Ok(out)
}

/// The PNG of an inversion, with its record and the usual descriptive keys.
pub fn inversion_png(image: &RgbImage, record: &InversionRecord) -> Result<Vec<u8>> {
    let json = serde_json::to_string(record).expect("the record serializes");
    encode_png(
        image,
        &[
            ("Software", format!("CLIP Lens {} (inversion)", env!("CARGO_PKG_VERSION"))),
            ("Description", record.description.clone()),
            ("Source", record.model.clone()),
            (PNG_KEY, json),
        ],
    )
}

/// The text entries of a PNG (tEXt, zTXt and iTXt), by key.
pub fn png_text(bytes: &[u8], origin: &str) -> Result<Vec<(String, String)>> {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let reader = decoder.read_info().map_err(|e| Error::image(origin, format!("is not a readable PNG ({e})")))?;
    let info = reader.info();
    let mut out: Vec<(String, String)> =
        info.uncompressed_latin1_text.iter().map(|t| (t.keyword.clone(), t.text.clone())).collect();
    for t in &info.compressed_latin1_text {
        out.extend(t.get_text().ok().map(|text| (t.keyword.clone(), text)));
    }
    for t in &info.utf8_text {
        out.extend(t.get_text().ok().map(|text| (t.keyword.clone(), text)));
    }
    Ok(out)
}

/// The inversion record stored in a PNG, if it has one.
pub fn record_from_png(bytes: &[u8], origin: &str) -> Result<InversionRecord> {
    let text = png_text(bytes, origin)?;
    let json = text
        .iter()
        .find(|(k, _)| k == PNG_KEY)
        .map(|(_, v)| v)
        .ok_or_else(|| Error::image(origin, "carries no CLIP Lens inversion settings"))?;
    serde_json::from_str(json).map_err(|e| Error::image(origin, format!("has unreadable inversion settings ({e})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polylines_span_the_box() {
        assert_eq!(polyline(&[0.1, 0.3, 0.2], 3, 100.0, 10.0), "0.0,10.0 50.0,0.0 100.0,5.0");
        assert_eq!(polyline(&[0.5], 10, 90.0, 10.0), "0.0,10.0");
        assert_eq!(polyline(&[], 10, 90.0, 10.0), "");
    }

    #[test]
    fn curves_are_sampled_with_the_last_step() {
        let curve: Vec<f32> = (0..1000).map(|i| i as f32).collect();
        let s = sample_curve(&curve, 200);
        assert!(s.len() <= 201 && s.len() >= 200);
        assert_eq!(s[0].step, 1);
        assert_eq!(s.last().unwrap().step, 1000);
        assert_eq!(sample_curve(&curve[..3], 200).len(), 3);
    }

    fn record(description: &str, curve: Vec<CurvePoint>) -> InversionRecord {
        InversionRecord {
            model: "m".into(),
            description: description.into(),
            target: Vec::new(),
            similarity: 0.5,
            term_similarities: Vec::new(),
            curve,
            steps_done: 2,
            stopped: false,
            settings: InvertSettings::default(),
            seconds: 1.0,
            steps_per_second: 2.0,
            backend: "cpu".into(),
        }
    }

    #[test]
    fn names_and_differences_read_well() {
        let mut record = record("a Panda + 0.5*a mad scientist", Vec::new());
        record.settings.seed = 7;
        assert_eq!(file_name(&record), "cliplens-a-panda-0-5-a-mad-scientist-seed7.png");
        record.description = "!!!".into();
        assert_eq!(file_name(&record), "cliplens-inversion-seed7.png");
        let mut other = record.settings.clone();
        other.steps += 1;
        other.augment.noise = 0.5;
        let diff = settings_diff(&record.settings, &other);
        let keys: Vec<&str> = diff.iter().map(|d| d.0.as_str()).collect();
        assert_eq!(keys, ["augment.noise", "steps"]);
    }

    #[test]
    fn png_keeps_the_record() {
        let image = RgbImage::new(2, 1, vec![255, 0, 0, 0, 0, 255]);
        let record = record("a panda ✓", sample_curve(&[0.1, 0.2], 10));
        let bytes = inversion_png(&image, &record).unwrap();
        assert_eq!(record_from_png(&bytes, "x.png").unwrap(), record);
        let decoded = crate::preprocess::decode_image(&bytes, "x.png").unwrap();
        assert_eq!(decoded.pixels, image.pixels);
        let text = png_text(&bytes, "x.png").unwrap();
        assert!(text.iter().any(|(k, v)| k == "Description" && v == "a panda ✓"));
    }
}
