//! Embed & compare, as both faces do it: checking prompts, preparing images,
//! zero-shot probabilities, ordering and exporting a similarity table.

use crate::config::PreprocessConfig;
use crate::error::{Error, Result};
use crate::preprocess::{RgbImage, decode_image, resize_and_crop, resize_bicubic};
use crate::tokenizer::quote;

/// Why a prompt cannot be compared against, if it cannot.
pub fn prompt_problem(text: &str) -> Option<Error> {
    text.trim().is_empty().then(|| Error::prompt(quote(text), "is empty: type something to compare against"))
}

/// The warning for a prompt that lost `dropped` tokens to the context length.
pub fn truncation_warning(text: &str, dropped: usize, context_length: usize) -> Option<String> {
    (dropped > 0).then(|| {
        format!("{}: too long, the last {dropped} tokens were dropped (CLIP reads {context_length} tokens)", quote(text))
    })
}

/// Decodes an image file and reduces it at once to what the model sees (the
/// resized center crop), so a batch of large photos never sits in memory
/// whole. Embedding the result gives the same numbers as embedding the original.
pub fn prepare_image(bytes: &[u8], name: &str, cfg: &PreprocessConfig) -> Result<RgbImage> {
    let image = decode_image(bytes, name)?;
    Ok(resize_and_crop(&image, cfg))
}

/// A preview no larger than `max_side` on either side.
pub fn thumbnail(image: &RgbImage, max_side: usize) -> RgbImage {
    let long = image.width.max(image.height);
    if long <= max_side {
        return image.clone();
    }
    let scale = max_side as f64 / long as f64;
    let w = ((image.width as f64 * scale).round() as usize).max(1);
    let h = ((image.height as f64 * scale).round() as usize).max(1);
    resize_bicubic(image, w, h)
}

/// Zero-shot probabilities: a softmax over each row of cosines scaled by
/// `logit_scale`, as CLIP's `logits_per_image.softmax(-1)`.
pub fn softmax_rows(similarity: &[Vec<f32>], logit_scale: f32) -> Vec<Vec<f32>> {
    similarity
        .iter()
        .map(|row| {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let exps: Vec<f32> = row.iter().map(|&c| ((c - max) * logit_scale).exp()).collect();
            let sum: f32 = exps.iter().sum();
            exps.iter().map(|e| e / sum).collect()
        })
        .collect()
}

/// Index of the largest value of a row (first on ties), if the row is not empty.
pub fn best(row: &[f32]) -> Option<usize> {
    row.iter().enumerate().fold(None, |acc: Option<(usize, f32)>, (i, &v)| match acc {
        Some((_, b)) if b >= v => acc,
        _ => Some((i, v)),
    })
    .map(|(i, _)| i)
}

/// Row order for a table sorted by `column`, highest first; rows without a
/// value (`None`) go last. Stable, so equal rows keep their input order.
pub fn order_by(values: &[Option<f32>], descending: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| match (values[a], values[b]) {
        (Some(x), Some(y)) => {
            let o = x.total_cmp(&y);
            if descending { o.reverse() } else { o }
        }
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    order
}

/// Where `value` lies between `lo` and `hi`, clamped to 0..=1 (a heat-map shade).
pub fn heat(value: f32, lo: f32, hi: f32) -> f32 {
    if hi > lo { ((value - lo) / (hi - lo)).clamp(0.0, 1.0) } else { 0.5 }
}

/// The table as CSV: one row per image with its cosine to each prompt, then
/// its zero-shot probability for each prompt, then the best prompt.
pub fn similarity_csv(images: &[String], texts: &[String], similarity: &[Vec<f32>], logit_scale: f32) -> String {
    let probs = softmax_rows(similarity, logit_scale);
    let mut header = vec!["image".to_string()];
    header.extend(texts.iter().map(|t| format!("cosine: {t}")));
    header.extend(texts.iter().map(|t| format!("probability: {t}")));
    header.push("best prompt".into());
    let mut out = csv_line(&header);
    for ((name, row), prob) in images.iter().zip(similarity).zip(&probs) {
        let mut fields = vec![name.clone()];
        fields.extend(row.iter().map(|v| format!("{v:.6}")));
        fields.extend(prob.iter().map(|v| format!("{v:.6}")));
        fields.push(best(row).map(|j| texts[j].clone()).unwrap_or_default());
        out += &csv_line(&fields);
    }
    out
}

/// A CSV line. Text cells that a spreadsheet would run as a formula (an image
/// named `=HYPERLINK(...)`, a prompt starting with `+` or `@`) get a leading
/// apostrophe, OWASP's advice against CSV injection; numbers are left alone.
pub fn csv_line(fields: &[String]) -> String {
    let quoted: Vec<String> = fields
        .iter()
        .map(|f| {
            let f = defuse_formula(f);
            if f.contains([',', '"', '\n', '\r']) { format!("\"{}\"", f.replace('"', "\"\"")) } else { f }
        })
        .collect();
    quoted.join(",") + "\r\n"
}

/// `'` before a cell that starts like a formula (`=`, `+`, `-`, `@`, tab or
/// carriage return), unless the whole cell is a number such as `-0.25`.
fn defuse_formula(cell: &str) -> String {
    let risky = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if risky && cell.parse::<f64>().is_err() { format!("'{cell}") } else { cell.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_matches_clip_zero_shot() {
        let p = softmax_rows(&[vec![0.3, 0.2, 0.1]], 100.0);
        let e = [0.0f32, -10.0, -20.0].map(f32::exp);
        let s: f32 = e.iter().sum();
        for (a, b) in p[0].iter().zip(e) {
            assert!((a - b / s).abs() < 1e-6);
        }
    }

    #[test]
    fn order_puts_missing_last_and_is_stable() {
        let v = [Some(0.1), None, Some(0.5), Some(0.1)];
        assert_eq!(order_by(&v, true), vec![2, 0, 3, 1]);
        assert_eq!(order_by(&v, false), vec![0, 3, 2, 1]);
    }

    #[test]
    fn csv_quotes_commas_and_quotes() {
        let csv = similarity_csv(&["a,b.png".into()], &["say \"hi\"".into()], &[vec![0.25]], 100.0);
        assert_eq!(
            csv,
            "image,\"cosine: say \"\"hi\"\"\",\"probability: say \"\"hi\"\"\",best prompt\r\n\"a,b.png\",0.250000,1.000000,\"say \"\"hi\"\"\"\r\n"
        );
    }

    #[test]
    fn csv_defuses_formulas_but_not_numbers() {
        let csv = similarity_csv(&["=HYPERLINK(\"http://x\")".into(), "@sum.png".into()], &["+cmd".into()], &[vec![-0.25], vec![0.5]], 100.0);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "image,cosine: +cmd,probability: +cmd,best prompt");
        assert_eq!(lines[1], "\"'=HYPERLINK(\"\"http://x\"\")\",-0.250000,1.000000,'+cmd");
        assert_eq!(lines[2], "'@sum.png,0.500000,1.000000,'+cmd");
        assert_eq!(csv_line(&["-1e3".into(), "\tx".into(), "-".into()]), "-1e3,'\tx,'-\r\n");
    }

    #[test]
    fn empty_prompts_are_refused_with_their_text() {
        assert!(prompt_problem("  ").unwrap().to_string().contains("is empty"));
        assert!(prompt_problem("a cat").is_none());
    }

    #[test]
    fn thumbnails_keep_aspect() {
        let img = RgbImage::new(200, 100, vec![128; 200 * 100 * 3]);
        let t = thumbnail(&img, 64);
        assert_eq!((t.width, t.height), (64, 32));
    }
}
