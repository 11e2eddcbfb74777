//! What an inversion aims at: one unit vector in CLIP's embedding space,
//! made of weighted terms: prompts, images, or any embedding (a SpLiCE
//! concept, say). Because every image embedding is unit length, the mean of
//! `w_k · cos(image, term_k)` is the cosine with `Σ w_k · term_k` up to a
//! constant factor, so blending concepts ("a panda + a mad scientist") and
//! subtracting them ("... - text") is one target direction.

use serde::{Deserialize, Serialize};

#[cfg(feature = "compute")]
use crate::clip::Clip;
use crate::clip::dot;
use crate::compare::truncation_warning;
use crate::error::{Error, Result};
use crate::preprocess::RgbImage;
use crate::tokenizer::quote;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TermKind {
    Text,
    Image,
    Embedding,
}

/// One part of a target, as reports and PNG metadata record it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetTerm {
    pub kind: TermKind,
    /// The prompt, or the image's or vector's name.
    pub label: String,
    /// Negative to push away from the term.
    pub weight: f32,
}

#[derive(Debug)]
pub struct Target {
    pub terms: Vec<TargetTerm>,
    /// Each term's unit embedding.
    pub embeds: Vec<Vec<f32>>,
    /// `Σ weight · embed`, normalized.
    pub vector: Vec<f32>,
    /// Prompts that were too long and lost tokens.
    pub warnings: Vec<String>,
}

impl Target {
    /// Combines terms (each embedding is normalized here).
    pub fn combine(parts: Vec<(TargetTerm, Vec<f32>)>) -> Result<Target> {
        let Some(dim) = parts.first().map(|(_, e)| e.len()) else {
            return Err(Error::usage("target", "give at least one prompt, image or embedding to aim at"));
        };
        let mut vector = vec![0.0f32; dim];
        let mut terms = Vec::new();
        let mut embeds = Vec::new();
        for (term, embed) in parts {
            if embed.len() != dim {
                return Err(Error::usage(&term.label, format!("has {} dimensions, the other terms {dim}", embed.len())));
            }
            let norm = dot(&embed, &embed).sqrt();
            if !(norm > 0.0 && norm.is_finite()) {
                return Err(Error::usage(&term.label, "is a zero (or non-finite) vector: nothing to aim at"));
            }
            let unit: Vec<f32> = embed.iter().map(|x| x / norm).collect();
            vector.iter_mut().zip(&unit).for_each(|(v, u)| *v += term.weight * u);
            terms.push(term);
            embeds.push(unit);
        }
        // Relative to the weights, so a lone small weight is no cancellation.
        let total_weight: f32 = terms.iter().map(|t| t.weight.abs()).sum();
        if !total_weight.is_finite() {
            return Err(Error::usage("target", "a weight is too large (or not a number)"));
        }
        let norm = dot(&vector, &vector).sqrt();
        if !(norm.is_finite() && norm > 1e-6 * total_weight) {
            return Err(Error::usage("target", "the terms cancel out (their weighted sum is zero)"));
        }
        vector.iter_mut().for_each(|v| *v /= norm);
        Ok(Target { terms, embeds, vector, warnings: Vec::new() })
    }

    /// The model's embedding space must be the vector's.
    pub fn check_dim(&self, dim: usize) -> Result<()> {
        if self.vector.len() == dim {
            Ok(())
        } else {
            Err(Error::usage("target", format!("has {} dimensions but the model embeds in {dim}", self.vector.len())))
        }
    }

    /// The terms written back as an expression, e.g. `a panda + 0.5*a forest - text`.
    pub fn description(&self) -> String {
        describe(&self.terms)
    }

    /// Cosine of a unit embedding with each term.
    pub fn term_similarities(&self, embed: &[f32]) -> Vec<f32> {
        self.embeds.iter().map(|e| dot(e, embed)).collect()
    }
}

/// Terms as an expression: `label` for kind text, `[image label]` otherwise.
pub fn describe(terms: &[TargetTerm]) -> String {
    let mut out = String::new();
    for (i, t) in terms.iter().enumerate() {
        let magnitude = t.weight.abs();
        if i > 0 {
            out.push_str(if t.weight < 0.0 { " - " } else { " + " });
        } else if t.weight < 0.0 {
            out.push_str("- ");
        }
        if (magnitude - 1.0).abs() > 1e-6 {
            out.push_str(&format!("{magnitude}*"));
        }
        match t.kind {
            TermKind::Text => out.push_str(&t.label),
            _ => out.push_str(&format!("[{}]", t.label)),
        }
    }
    out
}

/// Splits a prompt expression into weighted prompts: terms joined by ` + `
/// or ` - ` (with spaces, so "t-shirt" stays whole), each optionally led by
/// a weight and `*`: `a panda + 0.5*a mad scientist - text`.
pub fn parse_prompt(expression: &str) -> Result<Vec<(String, f32)>> {
    let origin = || quote(expression);
    if expression.trim().is_empty() {
        return Err(Error::prompt(origin(), "is empty: type what the image should show"));
    }
    let mut terms = Vec::new();
    let mut sign = 1.0f32;
    let mut rest = expression;
    loop {
        let next = [" + ", " - "].iter().filter_map(|op| rest.find(op).map(|i| (i, *op))).min_by_key(|(i, _)| *i);
        let (part, after) = match next {
            Some((i, op)) => (&rest[..i], Some((&rest[i + op.len()..], if op == " - " { -1.0 } else { 1.0 }))),
            None => (rest, None),
        };
        let mut text = part.trim();
        // A leading "-" negates the first term.
        if terms.is_empty() {
            if let Some(stripped) = text.strip_prefix("- ") {
                sign = -sign;
                text = stripped.trim();
            }
        }
        let (weight, text) = match text.split_once('*') {
            Some((w, t)) if w.trim().parse::<f32>().is_ok() => (w.trim().parse::<f32>().unwrap_or(1.0), t.trim()),
            _ => (1.0, text),
        };
        // What is left of a doubled or dangling operator ("a + + b", "a +") is no term.
        let stray = |t: &str| ["+", "-"].iter().any(|op| t == *op || t.starts_with(&format!("{op} ")) || t.ends_with(&format!(" {op}")));
        if text.is_empty() || stray(text) {
            return Err(Error::prompt(origin(), "has an empty part: write terms like `a red circle + 0.5*a forest - night`"));
        }
        if !weight.is_finite() {
            return Err(Error::prompt(origin(), format!("has a weight that is not a number: `{weight}`")));
        }
        terms.push((text.to_string(), sign * weight));
        match after {
            Some((tail, next_sign)) => {
                rest = tail;
                sign = next_sign;
            }
            None => break,
        }
    }
    Ok(terms)
}

#[cfg(feature = "compute")]
/// Prompt terms embedded by `clip`.
pub async fn prompt_terms(clip: &Clip, expression: &str) -> Result<(Vec<(TargetTerm, Vec<f32>)>, Vec<String>)> {
    let parsed = parse_prompt(expression)?;
    let texts: Vec<&str> = parsed.iter().map(|(t, _)| t.as_str()).collect();
    let out = clip.embed_texts(&texts).await?;
    let warnings = texts
        .iter()
        .zip(&out.tokens)
        .filter_map(|(t, tok)| truncation_warning(t, tok.dropped_tokens, clip.tokenizer.context_length()))
        .collect();
    let terms = parsed
        .into_iter()
        .zip(out.embeds)
        .map(|((label, weight), e)| (TargetTerm { kind: TermKind::Text, label, weight }, e))
        .collect();
    Ok((terms, warnings))
}

#[cfg(feature = "compute")]
/// An image term: the image's embedding by `clip`. The term keeps the file's
/// name only: records travel inside shared PNGs, and a local path would tell
/// where the user keeps their files.
pub async fn image_term(clip: &Clip, name: &str, image: &RgbImage, weight: f32) -> Result<(TargetTerm, Vec<f32>)> {
    let embed = clip.embed_images(std::slice::from_ref(image)).await?.remove(0);
    Ok((TargetTerm { kind: TermKind::Image, label: file_label(name).to_string(), weight }, embed))
}

/// A vector term (`--target-embedding`), named like an image term by its file name only.
pub fn embedding_term(name: &str, vector: Vec<f32>, weight: f32) -> (TargetTerm, Vec<f32>) {
    (TargetTerm { kind: TermKind::Embedding, label: file_label(name).to_string(), weight }, vector)
}

/// The last component of a path (`/home/me/photos/cat.png` -> `cat.png`), on any platform's separators.
pub fn file_label(name: &str) -> &str {
    name.rsplit(['/', '\\']).next().filter(|n| !n.is_empty()).unwrap_or(name)
}

#[cfg(feature = "compute")]
/// A target of prompt expressions only (the common case).
pub async fn prompt_target(clip: &Clip, expressions: &[String]) -> Result<Target> {
    let mut parts = Vec::new();
    let mut warnings = Vec::new();
    for e in expressions {
        let (terms, w) = prompt_terms(clip, e).await?;
        parts.extend(terms);
        warnings.extend(w);
    }
    let mut target = Target::combine(parts)?;
    target.warnings = warnings;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_parse_into_weighted_terms() {
        assert_eq!(parse_prompt("a red circle").unwrap(), vec![("a red circle".into(), 1.0)]);
        assert_eq!(
            parse_prompt("a panda + 0.5*a mad scientist - text").unwrap(),
            vec![("a panda".into(), 1.0), ("a mad scientist".into(), 0.5), ("text".into(), -1.0)]
        );
        assert_eq!(parse_prompt("a t-shirt - 0.3 * a logo").unwrap(), vec![("a t-shirt".into(), 1.0), ("a logo".into(), -0.3)]);
        assert_eq!(parse_prompt("2*x").unwrap(), vec![("x".into(), 2.0)]);
        assert_eq!(parse_prompt("a * b").unwrap(), vec![("a * b".into(), 1.0)]);
    }

    #[test]
    fn file_labels_drop_folders() {
        assert_eq!(file_label("/home/me/photos/cat.png"), "cat.png");
        assert_eq!(file_label("C:\\Users\\me\\dog.jpg"), "dog.jpg");
        assert_eq!(file_label("folder/sub/x.png"), "x.png");
        assert_eq!(file_label("plain.png"), "plain.png");
        assert_eq!(embedding_term("/tmp/v.json", vec![1.0], 0.5).0.label, "v.json");
    }

    #[test]
    fn bad_expressions_name_the_problem() {
        assert_eq!(parse_prompt("  ").unwrap_err().to_string(), "prompt \"  \": is empty: type what the image should show");
        assert!(parse_prompt("a cat +  + a dog").unwrap_err().to_string().contains("empty part"));
        assert!(parse_prompt("a cat + 0.5*").unwrap_err().to_string().contains("empty part"));
        for stray in ["a cat + - a dog", "a cat +", "+", "a cat - + a dog"] {
            assert!(parse_prompt(stray).unwrap_err().to_string().contains("empty part"), "{stray}");
        }
        assert_eq!(parse_prompt("- a cat").unwrap(), vec![("a cat".into(), -1.0)]);
    }

    #[test]
    fn terms_combine_into_a_unit_direction() {
        let term = |label: &str, weight| TargetTerm { kind: TermKind::Text, label: label.into(), weight };
        let t = Target::combine(vec![(term("a", 1.0), vec![2.0, 0.0]), (term("b", -1.0), vec![0.0, 3.0])]).unwrap();
        let s = 0.5f32.sqrt();
        assert!((t.vector[0] - s).abs() < 1e-6 && (t.vector[1] + s).abs() < 1e-6);
        assert_eq!(t.description(), "a - b");
        assert!(Target::combine(vec![(term("a", 1.0), vec![1.0, 0.0]), (term("a", -1.0), vec![1.0, 0.0])]).is_err());
        assert!(Target::combine(vec![(term("z", 1.0), vec![0.0, 0.0])]).unwrap_err().to_string().contains("zero"));
        assert!(Target::combine(Vec::new()).is_err());
        // A small weight alone is a direction, not a cancellation; an overflowing one is refused.
        assert!(Target::combine(vec![(term("a", 1e-7), vec![1.0, 0.0])]).is_ok());
        assert!(Target::combine(vec![(term("a", f32::MAX), vec![1.0, 0.0]), (term("b", f32::MAX), vec![0.0, 1.0])]).is_err());
        let d = describe(&[term("x", 0.5), TargetTerm { kind: TermKind::Image, label: "cat.png".into(), weight: -1.0 }]);
        assert_eq!(d, "0.5*x - [cat.png]");
    }
}
