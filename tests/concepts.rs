//! Concept decomposition (SpLiCE): the solver against scikit-learn on
//! committed problems (tests/concepts/make_fixtures.py), the dictionary's
//! encoding shortcut, and what decompositions of the embedded world model
//! mean: true attribute words, zero-shot kept, a planted shift found.

mod common;

use burn::tensor::Device;
use cliplens::clip::Clip;
use cliplens::concepts::collection::compare;
use cliplens::concepts::solver::objective;
use cliplens::concepts::{
    BuiltinVocabulary, DEFAULT_TOLERANCE, Decomposition, Dictionary, ImageMean, Sparsity, decompose, solve_batch,
};
use cliplens::native::read_model;
use cliplens::world::captions::Task;
use cliplens::world::eval::{class_embeddings, classify, embed_scenes};
use cliplens::world::{ATTRIBUTES, GROUPS, ROLES, SHAPE, Scene, Skew, scenes, skewed_scenes};
use serde_json::Value;

fn world_clip(device: &Device) -> Clip {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/world-clip");
    Clip::load(&read_model(&dir).unwrap(), device).unwrap()
}

fn world_mean(clip: &Clip) -> ImageMean {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/world-clip/image_mean.json");
    ImageMean::from_json(&std::fs::read(&path).unwrap(), "image_mean.json", clip.config().projection_dim).unwrap()
}

fn world_dictionary(clip: &Clip) -> Dictionary {
    pollster::block_on(Dictionary::encode(clip, &BuiltinVocabulary::World.vocabulary(), |_, _| true)).unwrap()
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(common::fixtures().join("concepts").join(name)).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().flat_map(|x| match x {
        Value::Array(_) => floats(x),
        _ => vec![x.as_f64().unwrap() as f32],
    }).collect()
}

/// Our objective is within 1e-3 (relative) of scikit-learn's at the same λ,
/// on every problem of a set, for the host and the device products alike.
fn assert_matches_sklearn(set: &str, rows: Vec<f32>, dim: usize, targets: &[f32], problems: &[Value]) {
    // On the host (Dictionary's own products) and on the device (Flex), alike.
    let host = Dictionary::from_rows(set, rows, dim);
    let dictionary = &host;
    let device = Device::flex();
    let on_device = dictionary.on_device(&device);
    let mut worst = 0.0f64;
    for p in problems {
        let lambda = p["lambda"].as_f64().unwrap();
        let i = p["target"].as_u64().unwrap() as usize;
        let z = &targets[i * dim..(i + 1) * dim];
        let reference = p["objective"].as_f64().unwrap();
        let ours = pollster::block_on(solve_batch(&host, z, Sparsity::Lambda(lambda), DEFAULT_TOLERANCE, |_, _| true)).unwrap();
        let batched = pollster::block_on(solve_batch(&on_device, z, Sparsity::Lambda(lambda), DEFAULT_TOLERANCE, |_, _| true)).unwrap();
        for s in [&ours[0], &batched[0]] {
            let recomputed = objective(&host, z, &s.weights, lambda);
            assert!((recomputed - s.objective).abs() <= 1e-6 * reference, "{set}: the reported objective is not the weights'");
            let relative = (s.objective - reference) / reference;
            worst = worst.max(relative.abs());
            assert!(relative.abs() <= 1e-3, "{set} target {i} λ {lambda}: ours {} vs sklearn {reference}", s.objective);
        }
        // The same concepts are chosen (weights above the noise level).
        let chosen = |w: &[(usize, f64)]| {
            let mut v: Vec<usize> = w.iter().filter(|x| x.1 > 1e-3).map(|x| x.0).collect();
            v.sort();
            v
        };
        let reference_weights: Vec<(usize, f64)> =
            p["weights"].as_array().unwrap().iter().map(|x| (x[0].as_u64().unwrap() as usize, x[1].as_f64().unwrap())).collect();
        assert_eq!(chosen(&ours[0].weights), chosen(&reference_weights), "{set} target {i} λ {lambda}");
    }
    eprintln!("{set}: {} problems, worst relative objective difference {worst:.2e}", problems.len());
}

#[test]
fn the_solver_reaches_sklearns_objective_on_random_dictionaries() {
    let meta = fixture_json("random.json");
    let bytes = std::fs::read(common::fixtures().join("concepts/random.bin")).unwrap();
    let all: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    let mut at = 0;
    for set in meta["sets"].as_array().unwrap() {
        let (c, d, n) = (set["words"].as_u64().unwrap() as usize, set["dim"].as_u64().unwrap() as usize, set["targets"].as_u64().unwrap() as usize);
        let rows = all[at..at + c * d].to_vec();
        let targets = all[at + c * d..at + c * d + n * d].to_vec();
        at += c * d + n * d;
        assert_matches_sklearn(set["name"].as_str().unwrap(), rows, d, &targets, set["problems"].as_array().unwrap());
    }
    assert_eq!(at, all.len());
}

#[test]
fn the_world_models_real_dictionary_is_the_fixtures_and_matches_sklearn() {
    let fixture = fixture_json("world.json");
    let device = Device::flex();
    let clip = world_clip(&device);
    let dictionary = world_dictionary(&clip);
    let words: Vec<&str> = fixture["words"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
    assert_eq!(dictionary.words, words);
    // Centred and normalized here as numpy did it there.
    let rows = floats(&fixture["dictionary"]);
    let largest = rows.iter().zip(&dictionary.rows).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(largest < 1e-4, "the dictionary differs from the fixture's by {largest}");
    // The fixture's images are world scenes (seed 2402) written as PNG.
    let embeds = pollster::block_on(embed_scenes(&clip, &scenes(2402, 8))).unwrap();
    let stored = floats(&fixture["image_embeds"]);
    let largest = embeds.concat().iter().zip(&stored).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(largest < 1e-4, "image embeddings differ from the fixture's by {largest}");
    let mean = world_mean(&clip);
    let centred: Vec<f32> = embeds.iter().flat_map(|z| mean.centre(z)).collect();
    let targets = floats(&fixture["targets"]);
    let largest = centred.iter().zip(&targets).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(largest < 1e-4, "centred targets differ from the fixture's by {largest}");
    assert_matches_sklearn("world", dictionary.rows.clone(), dictionary.dim, &targets, fixture["problems"].as_array().unwrap());
}

#[test]
fn cutting_a_batch_to_its_longest_prompt_changes_nothing() {
    let device = Device::flex();
    let clip = world_clip(&device);
    let prompts = ["red", "a photo of two large striped stars on a beach", "glim pilot", "night"];
    let tokens: Vec<_> = prompts.iter().map(|p| clip.tokenizer.encode(p).unwrap()).collect();
    let full = pollster::block_on(cliplens::clip::read_vec(clip.text_features_of_length(&tokens, clip.tokenizer.context_length()).unwrap())).unwrap();
    let cut = pollster::block_on(cliplens::clip::read_vec(clip.text_features(&tokens).unwrap())).unwrap();
    let largest = full.iter().zip(&cut).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(largest < 1e-5, "cutting the padding moved a feature by {largest}");
    // Also on the real CLIP tokenizer's rules (BPE, the legacy end-token id 2 rule of the tiny fixture).
    let tiny = Clip::load(&read_model(&common::fixtures().join("tiny")).unwrap(), &device).unwrap();
    let prompts = ["a", "a photo of a cat sitting on a chair", "dog"];
    let tokens: Vec<_> = prompts.iter().map(|p| tiny.tokenizer.encode(p).unwrap()).collect();
    let full = pollster::block_on(cliplens::clip::read_vec(tiny.text_features_of_length(&tokens, tiny.tokenizer.context_length()).unwrap())).unwrap();
    let cut = pollster::block_on(cliplens::clip::read_vec(tiny.text_features(&tokens).unwrap())).unwrap();
    let largest = full.iter().zip(&cut).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(largest < 1e-5, "tiny model: cutting the padding moved a feature by {largest}");
}

/// The words that name what a scene shows: its attribute values, the shape's
/// plural, its group, and its role (word and plural) when its hat is drawn.
fn true_words(scene: &Scene) -> Vec<String> {
    let mut words: Vec<String> = (0..ATTRIBUTES.len()).map(|a| scene.value(a).to_string()).collect();
    words.push(format!("{}s", scene.value(SHAPE)));
    words.push(GROUPS[scene.group].to_string());
    if let Some(r) = scene.drawn_role() {
        words.push(ROLES[r].word.to_string());
        words.push(ROLES[r].plural.to_string());
    }
    words
}

/// The attribute words (one value per attribute) a decomposition could name.
fn attribute_words() -> Vec<&'static str> {
    ATTRIBUTES.iter().flat_map(|a| a.values.iter().copied()).collect()
}

fn decompose_scenes(clip: &Clip, dictionary: &Dictionary, mean: &ImageMean, scenes: &[Scene], sparsity: Sparsity) -> (Vec<Vec<f32>>, Vec<Decomposition>) {
    let embeds = pollster::block_on(embed_scenes(clip, scenes)).unwrap();
    let on_device = dictionary.on_device(&clip.device);
    let decompositions = pollster::block_on(decompose(dictionary, &on_device, mean, &embeds, sparsity, |_, _| true)).unwrap();
    (embeds, decompositions)
}

/// Issue 21's bar: at l0 <= 10, fresh images' attribute words are their true
/// values (precision >= 0.8) and name most of their attributes (recall >=
/// 0.7). Measured at l0 = 8 (a scene has seven attributes). Role words are
/// reported, not graded: where no hat is drawn, a role word is the model's
/// association with the figure's group (the planted bias), which the audit
/// measures; distractor words ("figure", "image") must stay rare.
#[test]
fn world_decompositions_name_the_true_attributes() {
    let device = Device::flex();
    let clip = world_clip(&device);
    let dictionary = world_dictionary(&clip);
    let mean = world_mean(&clip);
    let fresh = scenes(77, 300);
    let (_, decompositions) = decompose_scenes(&clip, &dictionary, &mean, &fresh, Sparsity::TargetL0(8));
    let attributes = attribute_words();
    let is_role = |w: &str| ROLES.iter().any(|r| r.word == w || r.plural == w);
    let (mut chosen, mut named, mut named_right, mut recalled, mut roles, mut true_words_chosen, mut distractors) = (0, 0, 0, 0, 0, 0, 0);
    for (scene, d) in fresh.iter().zip(&decompositions) {
        assert!(d.l0() <= 8);
        let truth = true_words(scene);
        let words: Vec<&str> = d.weights.iter().map(|&(j, _)| dictionary.words[j].as_str()).collect();
        chosen += words.len();
        for w in &words {
            let right = truth.iter().any(|t| t == w);
            true_words_chosen += usize::from(right);
            if attributes.contains(w) {
                named += 1;
                named_right += usize::from(right);
            } else if is_role(w) {
                roles += usize::from(!right);
            } else if !right {
                distractors += 1;
            }
        }
        recalled += (0..ATTRIBUTES.len()).filter(|&a| words.contains(&scene.value(a))).count();
    }
    let precision = named_right as f64 / named as f64;
    let recall = recalled as f64 / (fresh.len() * ATTRIBUTES.len()) as f64;
    let overall = true_words_chosen as f64 / chosen as f64;
    let distractor_share = distractors as f64 / chosen as f64;
    eprintln!(
        "l0 8 on 300 fresh scenes: attribute precision {precision:.3}, attribute recall {recall:.3}; \
         all words true {overall:.3} ({roles} role words the picture does not show, {distractors} distractors, of {chosen})"
    );
    assert!(precision >= 0.8, "attribute precision {precision:.3}");
    assert!(recall >= 0.7, "attribute recall {recall:.3}");
    assert!(distractor_share <= 0.02, "distractor words are {distractor_share:.3} of the concepts");
}

/// Issue 21's bar: zero-shot accuracy on SpLiCE-recomposed embeddings at
/// l0 = 20 is within 5 points of the dense embeddings', per attribute.
#[test]
fn zero_shot_survives_recomposition_at_l0_20() {
    let device = Device::flex();
    let clip = world_clip(&device);
    let dictionary = world_dictionary(&clip);
    let mean = world_mean(&clip);
    let fresh = scenes(78, 300);
    let (dense, decompositions) = decompose_scenes(&clip, &dictionary, &mean, &fresh, Sparsity::TargetL0(20));
    let mut report = Vec::new();
    for task in (0..ATTRIBUTES.len()).map(Task::Attribute).chain([Task::Group]) {
        let classes = pollster::block_on(class_embeddings(&clip, task)).unwrap();
        let (mut dense_right, mut sparse_right) = (0, 0);
        for ((scene, z), d) in fresh.iter().zip(&dense).zip(&decompositions) {
            let truth = task.truth(scene).unwrap();
            dense_right += usize::from(classify(z, &classes) == truth);
            sparse_right += usize::from(classify(&d.recomposed, &classes) == truth);
        }
        let (a, b) = (100.0 * dense_right as f64 / fresh.len() as f64, 100.0 * sparse_right as f64 / fresh.len() as f64);
        report.push(format!("{} {a:.1}% -> {b:.1}%", task.name()));
        assert!(a - b <= 5.0, "{}: dense {a:.1}%, recomposed {b:.1}%", task.name());
    }
    eprintln!("zero-shot, dense -> recomposed at l0 20: {}", report.join(", "));
}

/// Issue 21's bar: two generated folders that differ only in a planted
/// shift (60% of B's scenes forced to night; or 50% to purple) rank that
/// value's word first.
#[test]
fn two_folders_rank_the_planted_shift_first() {
    let device = Device::flex();
    let clip = world_clip(&device);
    let dictionary = world_dictionary(&clip);
    let mean = world_mean(&clip);
    let a = scenes(501, 200);
    for (skew, word) in [("background=night:0.6", "night"), ("color=purple:0.5", "purple")] {
        let b = skewed_scenes(502, 200, Skew::parse(skew).unwrap());
        let (_, da) = decompose_scenes(&clip, &dictionary, &mean, &a, Sparsity::TargetL0(10));
        let (_, db) = decompose_scenes(&clip, &dictionary, &mean, &b, Sparsity::TargetL0(10));
        let shifts = compare(&da, &db, &dictionary);
        let top: Vec<String> = shifts.iter().take(4).map(|s| format!("{} {:+.3}", s.concept, s.weight_change)).collect();
        eprintln!("{skew}: {}", top.join(", "));
        assert_eq!(shifts[0].concept, word, "{skew}: {top:?}");
        assert!(shifts[0].weight_change > 0.0);
    }
}
