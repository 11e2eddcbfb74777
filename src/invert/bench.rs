//! The judged inversion benchmark on the embedded world models: invert
//! held-out prompts with the model under study, then let the *other* model
//! (the judge, trained apart) classify each result zero-shot over the world's
//! labels. A model is never graded by itself: its own score on its own
//! inversions is reported beside, as the "adversarial gap".

use serde::Serialize;

use super::settings::InvertSettings;
use super::target::prompt_target;
use super::{Inversion, invert};
use crate::clip::{Clip, dot};
use crate::error::Result;
use crate::rng::Rng;
use crate::world::captions::{Mention, Task, describe};
use crate::world::eval::{class_embeddings, classify};
use crate::world::{ATTRIBUTES, COUNT, GROUPS, Scene, scenes};

/// Seeds of the two prompt sets: the benchmark's held-out prompts, and the
/// development prompts the presets were tuned on (never reported).
pub const HELD_OUT_SEED: u64 = 2403;
pub const DEV_SEED: u64 = 17;
/// Prompts in the held-out set, and in the development set.
pub const HELD_OUT_COUNT: usize = 48;
pub const DEV_COUNT: usize = 48;

/// A prompt and the labels an image of it must show.
#[derive(Clone, Debug, Serialize)]
pub struct BenchPrompt {
    pub text: String,
    /// `(task, value index)` for every attribute the prompt names.
    #[serde(skip)]
    pub expected: Vec<(Task, usize)>,
    /// The same, as words: `color=red`.
    pub labels: Vec<String>,
}

/// The tasks prompts are built from: every visual attribute and the group.
fn prompt_tasks() -> Vec<Task> {
    let mut tasks: Vec<Task> = (0..ATTRIBUTES.len()).map(Task::Attribute).collect();
    tasks.push(Task::Group);
    tasks
}

fn label(task: Task, value: usize) -> String {
    let word = match task {
        Task::Attribute(a) => ATTRIBUTES[a].values[value],
        Task::Group => GROUPS[value],
        Task::Role => crate::world::ROLES[value].word,
    };
    format!("{}={word}", task.name())
}

/// The first `n` development prompts (what the presets were tuned on).
pub fn dev_prompts(n: usize) -> Vec<BenchPrompt> {
    prompt_set(DEV_SEED, n.min(DEV_COUNT), &[])
}

/// The first `n` held-out prompts: never a development prompt.
pub fn held_out_prompts(n: usize) -> Vec<BenchPrompt> {
    let dev: Vec<String> = dev_prompts(DEV_COUNT).into_iter().map(|p| p.text).collect();
    prompt_set(HELD_OUT_SEED, n.min(HELD_OUT_COUNT), &dev)
}

/// `n` prompts naming two attributes each, in the world's caption phrasing
/// ("a photo of two dotted figures", "a photo of a star at night"). Every
/// pair of attributes (the group included) comes up before any repeats;
/// values are drawn from `seed`, again while a prompt would be in `exclude`.
pub fn prompt_set(seed: u64, n: usize, exclude: &[String]) -> Vec<BenchPrompt> {
    let tasks = prompt_tasks();
    let mut pairs = Vec::new();
    for i in 0..tasks.len() {
        for j in i + 1..tasks.len() {
            pairs.push((tasks[i], tasks[j]));
        }
    }
    let mut rng = Rng::new(seed ^ 0xBE4C);
    // A fixed shuffle, so a short set still spreads over the attributes.
    for i in (1..pairs.len()).rev() {
        pairs.swap(i, rng.below(i + 1));
    }
    let template = scenes(seed, 1).remove(0);
    (0..n)
        .map(|i| loop {
            let (a, b) = pairs[i % pairs.len()];
            let prompt = draw_prompt(&template, a, b, &mut rng);
            if !exclude.contains(&prompt.text) {
                break prompt;
            }
        })
        .collect()
}

/// A prompt naming tasks `a` and `b` with values drawn from `rng`.
fn draw_prompt(template: &Scene, a: Task, b: Task, rng: &mut Rng) -> BenchPrompt {
    let mut scene = Scene { role: None, ..template.clone() };
    // Unnamed count is one figure, so the noun reads "a figure".
    scene.attributes[COUNT] = 0;
    let mut mention = Mention::default();
    let mut expected = Vec::new();
    for task in [a, b] {
        let value = rng.below(task.classes());
        match task {
            Task::Attribute(attr) => {
                scene.attributes[attr] = value;
                set_mention(&mut mention, attr);
            }
            Task::Group => {
                scene.group = value;
                mention.group = true;
            }
            Task::Role => {}
        }
        expected.push((task, value));
    }
    let labels = expected.iter().map(|&(t, v)| label(t, v)).collect();
    BenchPrompt { text: format!("a photo of {}", describe(&scene, &mention)), expected, labels }
}

fn set_mention(m: &mut Mention, attribute: usize) {
    use crate::world::{BACKGROUND, COLOR, PATTERN, POSITION, SHAPE, SIZE};
    match attribute {
        SHAPE => m.shape = true,
        COLOR => m.color = true,
        SIZE => m.size = true,
        PATTERN => m.pattern = true,
        POSITION => m.position = true,
        BACKGROUND => m.background = true,
        COUNT => m.count = true,
        _ => unreachable!("the world has seven attributes"),
    }
}

/// A model's zero-shot classifiers for every prompted task.
pub struct Grader {
    classes: Vec<(Task, Vec<Vec<f32>>)>,
}

impl Grader {
    pub async fn new(clip: &Clip) -> Result<Self> {
        let mut classes = Vec::new();
        for task in prompt_tasks() {
            classes.push((task, class_embeddings(clip, task).await?));
        }
        Ok(Grader { classes })
    }

    /// The predicted value for each expected label of `prompt`.
    pub fn predict(&self, embed: &[f32], prompt: &BenchPrompt) -> Vec<usize> {
        prompt
            .expected
            .iter()
            .map(|(task, _)| {
                let classes = &self.classes.iter().find(|(t, _)| t == task).expect("a prompted task").1;
                classify(embed, classes)
            })
            .collect()
    }

    pub fn correct(&self, embed: &[f32], prompt: &BenchPrompt) -> bool {
        self.predict(embed, prompt).iter().zip(&prompt.expected).all(|(p, (_, want))| p == want)
    }
}

/// One inversion's grades.
#[derive(Clone, Debug, Serialize)]
pub struct PromptResult {
    pub prompt: String,
    pub labels: Vec<String>,
    pub seed: u64,
    /// The judge read every prompted label correctly.
    pub judge_correct: bool,
    /// What the judge read, as `task=value` words.
    pub judge_read: Vec<String>,
    /// The inverted model's own reading (expected to be right: it was optimized for it).
    pub self_correct: bool,
    /// Cosine of the image with the prompt, by the judge and by the inverted model.
    pub judge_similarity: f32,
    pub model_similarity: f32,
    pub seconds: f64,
}

/// A configuration's results over the prompt set.
#[derive(Clone, Debug, Serialize)]
pub struct BenchRun {
    pub name: String,
    pub settings: InvertSettings,
    pub inversions: usize,
    /// Share of inversions whose every prompted label the judge reads correctly.
    pub success_rate: f64,
    /// The inverted model's own success rate; minus `success_rate`, the adversarial gap.
    pub self_success_rate: f64,
    pub mean_judge_similarity: f64,
    pub mean_model_similarity: f64,
    /// Per prompted attribute: share of inversions the judge reads right.
    pub attribute_accuracy: Vec<(String, f64, usize)>,
    pub steps_per_second: f64,
    pub seconds_per_inversion: f64,
    pub results: Vec<PromptResult>,
}

/// Inverts every prompt (once per seed) with `settings` on `model` and grades
/// the images with `judge`. `now` gives seconds (the library has no clock on
/// the web); `on_done` hears of each inversion.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    name: &str,
    model: &Clip,
    judge: &Clip,
    settings: &InvertSettings,
    prompts: &[BenchPrompt],
    seeds: &[u64],
    now: &dyn Fn() -> f64,
    on_done: &mut dyn FnMut(&PromptResult),
) -> Result<BenchRun> {
    let judge_grader = Grader::new(judge).await?;
    let self_grader = Grader::new(model).await?;
    let mut results = Vec::new();
    let mut steps = 0usize;
    let mut seconds = 0.0;
    for prompt in prompts {
        let judge_text = judge.embed_texts(&[prompt.text.as_str()]).await?.embeds.remove(0);
        let target = prompt_target(model, std::slice::from_ref(&prompt.text)).await?;
        for &seed in seeds {
            let started = now();
            let run_settings = InvertSettings { seed, preview_every: 0, ..settings.clone() };
            let Inversion { image, similarity, steps_done, .. } = invert(model, &target, run_settings, |_, _| true).await?;
            let elapsed = now() - started;
            steps += steps_done;
            seconds += elapsed;
            let judge_embed = judge.embed_images(std::slice::from_ref(&image)).await?.remove(0);
            let model_embed = model.embed_images(std::slice::from_ref(&image)).await?.remove(0);
            let read = judge_grader.predict(&judge_embed, prompt);
            let result = PromptResult {
                prompt: prompt.text.clone(),
                labels: prompt.labels.clone(),
                seed,
                judge_correct: read.iter().zip(&prompt.expected).all(|(p, (_, want))| p == want),
                judge_read: read.iter().zip(&prompt.expected).map(|(&p, &(t, _))| label(t, p)).collect(),
                self_correct: self_grader.correct(&model_embed, prompt),
                judge_similarity: dot(&judge_embed, &judge_text),
                model_similarity: similarity,
                seconds: elapsed,
            };
            on_done(&result);
            results.push(result);
        }
    }
    let n = results.len().max(1) as f64;
    let share = |f: &dyn Fn(&PromptResult) -> bool| results.iter().filter(|r| f(r)).count() as f64 / n;
    let mean = |f: &dyn Fn(&PromptResult) -> f32| results.iter().map(|r| f(r) as f64).sum::<f64>() / n;
    let mut attribute_accuracy = Vec::new();
    for task in prompt_tasks() {
        let mut hits = 0;
        let mut total = 0;
        for (r, p) in results.iter().zip(prompts.iter().flat_map(|p| std::iter::repeat_n(p, seeds.len()))) {
            if let Some(k) = p.expected.iter().position(|(t, _)| *t == task) {
                total += 1;
                hits += usize::from(r.judge_read[k] == r.labels[k]);
            }
        }
        if total > 0 {
            attribute_accuracy.push((task.name().to_string(), hits as f64 / total as f64, total));
        }
    }
    Ok(BenchRun {
        name: name.to_string(),
        settings: settings.clone(),
        inversions: results.len(),
        success_rate: share(&|r| r.judge_correct),
        self_success_rate: share(&|r| r.self_correct),
        mean_judge_similarity: mean(&|r| r.judge_similarity),
        mean_model_similarity: mean(&|r| r.model_similarity),
        attribute_accuracy,
        steps_per_second: steps as f64 / seconds.max(1e-9),
        seconds_per_inversion: seconds / n,
        results,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_held_out_set_covers_every_attribute_and_differs_from_dev() {
        let held_out = held_out_prompts(HELD_OUT_COUNT);
        assert_eq!(held_out.len(), 48);
        for task in prompt_tasks() {
            let n = held_out.iter().filter(|p| p.expected.iter().any(|(t, _)| *t == task)).count();
            assert!(n >= 8, "{}: {n}", task.name());
        }
        let dev: Vec<String> = dev_prompts(DEV_COUNT).into_iter().map(|p| p.text).collect();
        let overlap = held_out.iter().filter(|p| dev.contains(&p.text)).count();
        assert_eq!(overlap, 0, "held-out prompts must not be tuning prompts");
        let texts: Vec<&str> = held_out.iter().map(|p| p.text.as_str()).collect();
        assert!(texts.iter().all(|t| t.starts_with("a photo of ")), "{texts:?}");
        let first: Vec<String> = held_out_prompts(5).into_iter().map(|p| p.text).collect();
        assert_eq!(first, texts[..5]);
    }
}
