//! Concept association bias (Yamada et al. 2022, "When are Lemons Purple?"):
//! in a picture of two objects, asked about one object's attribute, CLIP
//! answers with the other object's. For each question, object A has attribute
//! x and a second object B has attribute y; the model is right when "a x A"
//! scores above "a y A". The rate at which the other object's attribute wins
//! is measured on the two-object pictures and on a control: the same picture
//! with A alone, where y appears nowhere. The gap between the two rates is
//! the association, reported with bootstrap intervals and a paired sign-flip
//! permutation test over the questions that have both pictures.
//!
//! Plain math on embeddings; the world's generator ([`crate::world::render::TwoFigures`])
//! and the CLI supply them.

use serde::{Deserialize, Serialize};

use crate::audit::associations::cos;
use crate::audit::stats::{DEFAULT_RESAMPLES, Estimate, PermutationTest, bootstrap_mean, sign_flip_test};

/// Sign patterns (or random ones) behind the paired test.
pub const PERMUTATIONS: usize = 10_000;

/// One question: object A with its true attribute, and the other object's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Question {
    pub id: String,
    pub object: String,
    /// A's own attribute (x).
    pub attribute: String,
    /// The other object's attribute (y).
    pub other: String,
    /// "a x A" and "a y A" as the model read them.
    pub true_prompt: String,
    pub other_prompt: String,
}

/// The embeddings of one question.
#[derive(Clone, Debug)]
pub struct QuestionEmbeddings {
    pub question: Question,
    /// The picture with both objects, and the control with A alone.
    pub two: Option<Vec<f32>>,
    pub single: Option<Vec<f32>>,
    pub true_text: Vec<f32>,
    pub other_text: Vec<f32>,
}

/// One question's outcome: the margin is `cos(image, other) − cos(image, true)`,
/// positive when the other object's attribute wins.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuestionResult {
    #[serde(flatten)]
    pub question: Question,
    pub two_margin: Option<f64>,
    pub single_margin: Option<f64>,
}

/// How often the other object's attribute wins on one kind of picture.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    pub questions: usize,
    pub other_wins: usize,
    /// `other_wins / questions`, with its 95% percentile bootstrap interval.
    pub rate: Estimate,
    /// Mean margin (other − true cosine), with its interval.
    pub mean_margin: Estimate,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AssociationReport {
    pub seed: u64,
    pub two_object: Rate,
    pub single_object: Rate,
    /// Questions with both pictures.
    pub paired: usize,
    /// Mean over paired questions of (other wins with two objects) − (other
    /// wins alone): how much the second object's presence moves the answer.
    pub rate_difference: Estimate,
    /// Two-sided sign-flip test of that difference.
    pub test: PermutationTest,
    pub questions: Vec<QuestionResult>,
}

fn rate(margins: &[f64], seed: u64, margin_seed: u64) -> Rate {
    let wins: Vec<f64> = margins.iter().map(|&m| if m > 0.0 { 1.0 } else { 0.0 }).collect();
    Rate {
        questions: margins.len(),
        other_wins: wins.iter().filter(|&&w| w > 0.0).count(),
        rate: bootstrap_mean(&wins, DEFAULT_RESAMPLES, seed),
        mean_margin: bootstrap_mean(margins, DEFAULT_RESAMPLES, margin_seed),
    }
}

/// The probe's figures from the questions' embeddings.
pub fn analyse(items: &[QuestionEmbeddings], seed: u64) -> Result<AssociationReport, String> {
    if items.is_empty() {
        return Err("no questions".into());
    }
    let mut results = Vec::with_capacity(items.len());
    for q in items {
        let margin = |image: &Option<Vec<f32>>| image.as_ref().map(|e| cos(e, &q.other_text) - cos(e, &q.true_text));
        results.push(QuestionResult { question: q.question.clone(), two_margin: margin(&q.two), single_margin: margin(&q.single) });
    }
    let two: Vec<f64> = results.iter().filter_map(|r| r.two_margin).collect();
    let single: Vec<f64> = results.iter().filter_map(|r| r.single_margin).collect();
    if two.is_empty() {
        return Err("no two-object pictures".into());
    }
    let win = |m: f64| if m > 0.0 { 1.0 } else { 0.0 };
    let differences: Vec<f64> =
        results.iter().filter_map(|r| Some(win(r.two_margin?) - win(r.single_margin?))).collect();
    Ok(AssociationReport {
        seed,
        // Each figure its own stream of draws.
        two_object: rate(&two, seed, seed ^ 1),
        single_object: rate(&single, seed ^ 2, seed ^ 5),
        paired: differences.len(),
        rate_difference: bootstrap_mean(&differences, DEFAULT_RESAMPLES, seed ^ 3),
        test: sign_flip_test(&differences, PERMUTATIONS, seed ^ 4),
        questions: results,
    })
}

/// One row per question.
pub fn csv(report: &AssociationReport) -> String {
    let mut out = String::from("id,object,attribute,other,true_prompt,other_prompt,two_object_margin,single_object_margin\n");
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let number = |m: Option<f64>| m.map_or(String::new(), |m| m.to_string());
    for r in &report.questions {
        let q = &r.question;
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{}\n",
            quote(&q.id),
            quote(&q.object),
            quote(&q.attribute),
            quote(&q.other),
            quote(&q.true_prompt),
            quote(&q.other_prompt),
            number(r.two_margin),
            number(r.single_margin)
        ));
    }
    out
}

/// The world's question about a two-figure scene: the first figure's colour,
/// against the second figure's.
pub fn world_question(index: usize, scene: &crate::world::render::TwoFigures) -> Question {
    use crate::world::{ATTRIBUTES, COLOR, SHAPE};
    let shape = ATTRIBUTES[SHAPE].values[scene.shapes[0]];
    let (x, y) = (ATTRIBUTES[COLOR].values[scene.colors[0]], ATTRIBUTES[COLOR].values[scene.colors[1]]);
    Question {
        id: format!("scene {index}"),
        object: shape.to_string(),
        attribute: x.to_string(),
        other: y.to_string(),
        true_prompt: format!("a photo of a {x} {shape}"),
        other_prompt: format!("a photo of a {y} {shape}"),
    }
}

/// The default prompt of a question.
pub const TEMPLATE: &str = "a photo of a {attribute} {object}";

/// `template` with the question's words in place.
pub fn prompt(template: &str, attribute: &str, object: &str) -> String {
    template.replace("{attribute}", attribute).replace("{object}", object)
}

#[cfg(feature = "compute")]
/// The world's questions: `count` two-figure scenes from `seed` and their
/// one-figure controls, embedded, each asking the first figure's colour.
pub async fn world_questions(clip: &crate::clip::Clip, seed: u64, count: usize, template: &str) -> crate::error::Result<Vec<QuestionEmbeddings>> {
    use crate::world::render::TwoFigures;
    let two = TwoFigures::sample(seed, count, false);
    let single = TwoFigures::sample(seed, count, true);
    let mut images = Vec::with_capacity(2 * count);
    images.extend(two.iter().map(|s| s.render().0));
    images.extend(single.iter().map(|s| s.render().0));
    let mut embeds = Vec::with_capacity(images.len());
    for chunk in images.chunks(64) {
        embeds.extend(clip.embed_images(chunk).await?);
    }
    let singles = embeds.split_off(count);
    let questions: Vec<Question> = two
        .iter()
        .enumerate()
        .map(|(i, scene)| {
            let mut q = world_question(i, scene);
            q.true_prompt = prompt(template, &q.attribute, &q.object);
            q.other_prompt = prompt(template, &q.other, &q.object);
            q
        })
        .collect();
    let texts: Vec<String> = questions.iter().flat_map(|q| [q.true_prompt.clone(), q.other_prompt.clone()]).collect();
    let text_embeds = clip.embed_texts(&texts).await?.embeds;
    Ok(questions
        .into_iter()
        .zip(embeds.into_iter().zip(singles))
        .enumerate()
        .map(|(i, (question, (two, single)))| QuestionEmbeddings {
            question,
            two: Some(two),
            single: Some(single),
            true_text: text_embeds[2 * i].clone(),
            other_text: text_embeds[2 * i + 1].clone(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_other_attribute_wins_where_the_image_leans_to_it() {
        let q = |i: usize| Question {
            id: i.to_string(),
            object: "o".into(),
            attribute: "x".into(),
            other: "y".into(),
            true_prompt: "x o".into(),
            other_prompt: "y o".into(),
        };
        let items: Vec<QuestionEmbeddings> = (0..6)
            .map(|i| QuestionEmbeddings {
                question: q(i),
                // Two objects: leans to the other text for the first four.
                two: Some(if i < 4 { vec![0.2, 1.0] } else { vec![1.0, 0.2] }),
                single: Some(vec![1.0, 0.1]),
                true_text: vec![1.0, 0.0],
                other_text: vec![0.0, 1.0],
            })
            .collect();
        let r = analyse(&items, 7).unwrap();
        assert_eq!((r.two_object.other_wins, r.single_object.other_wins), (4, 0));
        assert!((r.rate_difference.value - 4.0 / 6.0).abs() < 1e-12);
        assert!(r.test.exact && r.test.p_value > 0.0);
        assert!(analyse(&[], 1).is_err());
    }
}
