//! Social perception one attribute at a time (the CausalFace protocol of
//! Hausladen et al. 2024, "Social perception of faces in a vision-language
//! model"): counterfactual pictures that differ in exactly one attribute, each
//! scored by its cosine with sets of words (the Stereotype Content Model's
//! warmth and competence adjectives, or the user's own). Per attribute and
//! word set, the shift is the mean over pairs of (score of the changed
//! picture − score of the original), with a bootstrap interval and a paired
//! sign-flip permutation test. Intersections: the same shift within each value
//! of a second attribute the pairs hold fixed (does changing the group move
//! competence more for one age than another?).
//!
//! Plain math on embeddings; the world's counterfactual renders and the CLI's
//! CSV of pairs supply them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::audit::stats::{DEFAULT_RESAMPLES, Estimate, PermutationTest, bootstrap_mean, sign_flip_test};

pub const PERMUTATIONS: usize = 10_000;

/// The Stereotype Content Model's two dimensions (Fiske et al. 2002), as
/// adjectives in a prompt ("a photo of a warm person").
pub const WARMTH: [&str; 8] = ["warm", "friendly", "kind", "sincere", "trustworthy", "caring", "good-natured", "tolerant"];
pub const COMPETENCE: [&str; 8] = ["competent", "capable", "skilled", "intelligent", "efficient", "confident", "independent", "competitive"];
/// How an adjective becomes a prompt.
pub const ADJECTIVE_TEMPLATE: &str = "a photo of a {} person";

/// Words whose mean cosine scores a picture.
#[derive(Clone, Debug)]
pub struct WordSet {
    pub name: String,
    pub prompts: Vec<String>,
    /// One unit embedding per prompt.
    pub embeddings: Vec<Vec<f32>>,
}

/// Two pictures that differ in one attribute.
#[derive(Clone, Debug)]
pub struct CounterfactualPair {
    pub id: String,
    pub attribute: String,
    /// The attribute's value in the original and in the changed picture.
    pub from: String,
    pub to: String,
    pub from_embedding: Vec<f32>,
    pub to_embedding: Vec<f32>,
    /// Other attributes, held fixed in the pair: `(name, value)`.
    pub context: Vec<(String, String)>,
}

/// A shift within one value of a context attribute.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContextShift {
    pub context: String,
    pub value: String,
    pub pairs: usize,
    pub shift: Estimate,
}

/// The shift of one word set's score when one attribute changes `from` → `to`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Shift {
    pub attribute: String,
    pub from: String,
    pub to: String,
    pub word_set: String,
    pub pairs: usize,
    /// Mean of (score of the changed picture − score of the original).
    pub shift: Estimate,
    /// Mean score of the originals and of the changed pictures.
    pub from_score: f64,
    pub to_score: f64,
    pub test: PermutationTest,
    /// Intersections: the same shift within each value of each context attribute.
    pub by_context: Vec<ContextShift>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SocialReport {
    pub seed: u64,
    /// Each word set's prompts.
    pub word_sets: Vec<(String, Vec<String>)>,
    pub shifts: Vec<Shift>,
}

fn score(image: &[f32], set: &WordSet) -> f64 {
    let n = image.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt().max(1e-12);
    let total: f64 = set.embeddings.iter().map(|t| image.iter().zip(t).map(|(a, b)| *a as f64 * *b as f64).sum::<f64>() / n).sum();
    total / set.embeddings.len().max(1) as f64
}

/// Shifts per (attribute, from, to) and word set, in order of first appearance.
pub fn analyse(pairs: &[CounterfactualPair], word_sets: &[WordSet], seed: u64) -> Result<SocialReport, String> {
    if pairs.is_empty() {
        return Err("no counterfactual pairs".into());
    }
    if word_sets.is_empty() || word_sets.iter().any(|s| s.embeddings.is_empty()) {
        return Err("every word set needs at least one word".into());
    }
    // Group pairs by what changes, keeping first-seen order.
    let mut keys: Vec<(String, String, String)> = Vec::new();
    for p in pairs {
        let key = (p.attribute.clone(), p.from.clone(), p.to.clone());
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    let mut shifts = Vec::new();
    for (k, (attribute, from, to)) in keys.iter().enumerate() {
        let group: Vec<&CounterfactualPair> = pairs.iter().filter(|p| (&p.attribute, &p.from, &p.to) == (attribute, from, to)).collect();
        for (s, set) in word_sets.iter().enumerate() {
            let stream = seed ^ ((k as u64) << 32) ^ ((s as u64) << 16);
            let scored: Vec<(f64, f64)> = group.iter().map(|p| (score(&p.from_embedding, set), score(&p.to_embedding, set))).collect();
            let differences: Vec<f64> = scored.iter().map(|(a, b)| b - a).collect();
            let mut by_value: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
            for (p, d) in group.iter().zip(&differences) {
                for (name, value) in &p.context {
                    by_value.entry((name.clone(), value.clone())).or_default().push(*d);
                }
            }
            let by_context = by_value
                .into_iter()
                .enumerate()
                .map(|(c, ((context, value), ds))| ContextShift {
                    context,
                    value,
                    pairs: ds.len(),
                    shift: bootstrap_mean(&ds, DEFAULT_RESAMPLES, stream ^ ((c as u64 + 1) << 8)),
                })
                .collect();
            let n = scored.len() as f64;
            shifts.push(Shift {
                attribute: attribute.clone(),
                from: from.clone(),
                to: to.clone(),
                word_set: set.name.clone(),
                pairs: group.len(),
                shift: bootstrap_mean(&differences, DEFAULT_RESAMPLES, stream),
                from_score: scored.iter().map(|s| s.0).sum::<f64>() / n,
                to_score: scored.iter().map(|s| s.1).sum::<f64>() / n,
                test: sign_flip_test(&differences, PERMUTATIONS, stream ^ 0x5eed),
                by_context,
            });
        }
    }
    Ok(SocialReport { seed, word_sets: word_sets.iter().map(|s| (s.name.clone(), s.prompts.clone())).collect(), shifts })
}

/// One row per shift and per intersection (context empty for the overall row).
pub fn csv(report: &SocialReport) -> String {
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let mut out = String::from("attribute,from,to,word_set,context,context_value,pairs,shift,ci_low,ci_high,p_value\n");
    for s in &report.shifts {
        out.push_str(&format!(
            "{},{},{},{},,,{},{},{},{},{}\n",
            quote(&s.attribute),
            quote(&s.from),
            quote(&s.to),
            quote(&s.word_set),
            s.pairs,
            s.shift.value,
            s.shift.ci95[0],
            s.shift.ci95[1],
            s.test.p_value
        ));
        for c in &s.by_context {
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{},\n",
                quote(&s.attribute),
                quote(&s.from),
                quote(&s.to),
                quote(&s.word_set),
                quote(&c.context),
                quote(&c.value),
                c.pairs,
                c.shift.value,
                c.shift.ci95[0],
                c.shift.ci95[1]
            ));
        }
    }
    out
}

/// The Stereotype Content Model's sets as prompts through `template` (`{}` for the word).
pub fn scm_word_sets(template: &str) -> Vec<(String, Vec<String>)> {
    let prompts = |words: &[&str]| words.iter().map(|w| template.replace("{}", w)).collect();
    vec![("warmth".into(), prompts(&WARMTH)), ("competence".into(), prompts(&COMPETENCE))]
}

/// The world's word sets: one per role, its zero-shot prompts. The world has
/// no adjectives of warmth or competence; its planted associations are
/// between group and role, so the roles are what a group change should move.
pub fn world_word_sets() -> Vec<(String, Vec<String>)> {
    use crate::world::ROLES;
    use crate::world::captions::{Task, zero_shot_prompts};
    ROLES.iter().enumerate().map(|(r, role)| (role.word.to_string(), zero_shot_prompts(Task::Role, r))).collect()
}

#[cfg(feature = "compute")]
/// Embeds each set's prompts.
pub async fn embed_word_sets(clip: &crate::clip::Clip, sets: &[(String, Vec<String>)]) -> crate::error::Result<Vec<WordSet>> {
    let mut out = Vec::with_capacity(sets.len());
    for (name, prompts) in sets {
        let embeddings = clip.embed_texts(prompts).await?.embeds;
        out.push(WordSet { name: name.clone(), prompts: prompts.clone(), embeddings });
    }
    Ok(out)
}

#[cfg(feature = "compute")]
/// The world's counterfactual pairs: `count` scenes from `seed`, each drawn
/// glim and vorn with nothing else changed (the renderer changes only the
/// outline), with size and background as the context held fixed.
pub async fn world_pairs(clip: &crate::clip::Clip, seed: u64, count: usize) -> crate::error::Result<Vec<CounterfactualPair>> {
    use crate::world::render::render;
    use crate::world::{ATTRIBUTES, BACKGROUND, GROUPS, SIZE, scenes};
    let scenes = scenes(seed, count);
    let mut images: Vec<_> = scenes.iter().map(|s| render(&s.with_group(0))).collect();
    images.extend(scenes.iter().map(|s| render(&s.with_group(1))));
    let mut embeds = Vec::with_capacity(images.len());
    for chunk in images.chunks(64) {
        embeds.extend(clip.embed_images(chunk).await?);
    }
    let changed = embeds.split_off(count);
    Ok(scenes
        .iter()
        .zip(embeds.into_iter().zip(changed))
        .enumerate()
        .map(|(i, (s, (from, to)))| CounterfactualPair {
            id: format!("scene {i}"),
            attribute: "group".into(),
            from: GROUPS[0].into(),
            to: GROUPS[1].into(),
            from_embedding: from,
            to_embedding: to,
            context: vec![
                (ATTRIBUTES[SIZE].name.into(), s.value(SIZE).into()),
                (ATTRIBUTES[BACKGROUND].name.into(), s.value(BACKGROUND).into()),
            ],
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shift_towards_the_words_is_positive_and_split_by_context() {
        let set = WordSet { name: "w".into(), prompts: vec!["w".into()], embeddings: vec![vec![1.0, 0.0]] };
        let pairs: Vec<CounterfactualPair> = (0..8)
            .map(|i| CounterfactualPair {
                id: i.to_string(),
                attribute: "group".into(),
                from: "a".into(),
                to: "b".into(),
                from_embedding: vec![0.0, 1.0],
                to_embedding: if i % 2 == 0 { vec![1.0, 1.0] } else { vec![0.0, 1.0] },
                context: vec![("size".into(), if i % 2 == 0 { "small" } else { "large" }.into())],
            })
            .collect();
        let r = analyse(&pairs, &[set], 3).unwrap();
        let s = &r.shifts[0];
        assert_eq!(s.pairs, 8);
        assert!((s.shift.value - 0.5 * std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-9);
        assert_eq!(s.by_context.len(), 2);
        let small = s.by_context.iter().find(|c| c.value == "small").unwrap();
        assert!((small.shift.value - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-9);
        assert!(s.test.exact);
    }
}
