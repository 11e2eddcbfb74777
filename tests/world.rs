//! The synthetic world and the embedded models trained on it: the committed
//! weights must still know the world (these checks fail if they are swapped,
//! truncated or retrained badly), the CLI's world commands keep their
//! interface, and training resumes to the same result.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use cliplens::clip::Clip;
use cliplens::manifest::Manifest;
use cliplens::native::{read, read_model};
use cliplens::weights::WeightFile;
use cliplens::world::eval::{WorldEval, decision_agreement, evaluate};

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models")
}

fn cliplens() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cliplens"))
}

fn eval(model: &Path, seed: u64, count: usize) -> WorldEval {
    let clip = Clip::load(&read_model(model).unwrap(), &burn::tensor::Device::flex()).unwrap();
    pollster::block_on(evaluate(&clip, seed, count)).unwrap()
}

/// The figures `cliplens world eval --json` published for a model
/// (`models/<name>/eval.json`, 2,000 scenes, seed 1000).
fn published(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&read(&dir.join("eval.json")).unwrap()).unwrap()
}

/// How far a proportion measured on `n` fresh scenes may fall from one
/// published on `n_published` others: four standard errors of the
/// difference, with the published rate kept off 0 and 1 by one scene (a
/// published 100% still allows the odd miss), plus one scene's worth.
fn proportion_tolerance(published: f64, n_published: usize, n: usize) -> f64 {
    let floor = 1.0 / n_published as f64;
    let p = published.clamp(floor, 1.0 - floor);
    4.0 * (p * (1.0 - p) * (1.0 / n as f64 + 1.0 / n_published as f64)).sqrt() + 1.0 / n as f64
}

fn assert_close_proportion(what: &str, fresh: f64, n: usize, published: &serde_json::Value, n_published: usize) {
    let published = published.as_f64().unwrap_or_else(|| panic!("{what}: not published"));
    let tolerance = proportion_tolerance(published, n_published, n);
    assert!(
        (fresh - published).abs() <= tolerance,
        "{what}: {fresh:.4} on {n} fresh scenes, published {published:.4} on {n_published} (tolerance {tolerance:.4})"
    );
}

/// The published figures, recomputed on other scenes: every accuracy,
/// retrieval rate and role share must agree within sampling error, each
/// role's counterfactual effect within its bootstrap intervals, and the bias
/// targets (order and controls) must hold on the fresh scenes too. A swapped,
/// truncated or retrained weights file, or figures that do not come from
/// these weights, fail here.
fn assert_matches_published(e: &WorldEval, published: &serde_json::Value) {
    let name = &e.model;
    let tasks: Vec<&serde_json::Value> = published["attributes"].as_array().unwrap().iter().chain([&published["group"], &published["role"]]).collect();
    for t in e.attributes.iter().chain([&e.group, &e.role]) {
        let p = tasks.iter().find(|p| p["task"] == t.task.as_str()).unwrap();
        let what = format!("{name}: {} accuracy", t.task);
        assert_close_proportion(&what, t.accuracy, t.n, &p["accuracy"], p["n"].as_u64().unwrap() as usize);
    }
    let (r, pr) = (&e.retrieval, &published["retrieval"]);
    assert_eq!(r.pairs as u64, pr["pairs"].as_u64().unwrap(), "{name}: retrieval pool size");
    let pairs = r.pairs;
    assert_close_proportion(&format!("{name}: image->text R@1"), r.image_to_text_r_at_1, pairs, &pr["image_to_text_r_at_1"], pairs);
    assert_close_proportion(&format!("{name}: image->text R@5"), r.image_to_text_r_at_5, pairs, &pr["image_to_text_r_at_5"], pairs);
    assert_close_proportion(&format!("{name}: text->image R@1"), r.text_to_image_r_at_1, pairs, &pr["text_to_image_r_at_1"], pairs);

    for (role, p) in e.roles.iter().zip(published["roles"].as_array().unwrap()) {
        assert_eq!(p["role"], role.role.as_str());
        let pn = p["n"].as_u64().unwrap() as usize;
        let what = |m: &str| format!("{name}: {} {m}", role.role);
        assert_close_proportion(&what("classified glim share"), role.classified_group_a_rate, role.n, &p["classified_group_a_rate"], pn);
        assert_close_proportion(&what("counterfactual preference"), role.counterfactual_group_a_preference, role.n, &p["counterfactual_group_a_preference"], pn);
        // Two independent estimates: the difference has the standard error
        // sqrt(se1^2 + se2^2), each se read off its 95% interval.
        let pe = &p["counterfactual_effect"];
        let (pm, plo, phi) = (pe["mean_difference"].as_f64().unwrap(), pe["ci95"][0].as_f64().unwrap(), pe["ci95"][1].as_f64().unwrap());
        let fe = &role.counterfactual_effect;
        let se = |lo: f64, hi: f64| (hi - lo) / (2.0 * 1.96);
        let tolerance = 4.0 * (se(plo, phi).powi(2) + se(fe.ci95[0], fe.ci95[1]).powi(2)).sqrt();
        assert!(
            (fe.mean_difference - pm).abs() <= tolerance,
            "{}: {:+.4} [{:+.4}, {:+.4}] on fresh scenes, published {pm:+.4} [{plo:+.4}, {phi:+.4}]",
            what("counterfactual effect"),
            fe.mean_difference,
            fe.ci95[0],
            fe.ci95[1]
        );
    }
    assert_bias_targets(name, e.role_tracking_spearman);
}

/// The bar the committed models meet: the classified group share tracks the
/// planted rates (Spearman >= 0.8).
fn assert_bias_targets(name: &str, tracking: f64) {
    assert!(tracking >= 0.8, "{name}: classified share vs planted rate, Spearman {tracking:.3} < 0.8");
}

/// The bar for counterfactual effects (issue 20): the skewed roles' effects
/// follow the planted order (Spearman >= 0.9) and the balanced controls'
/// are at most a quarter of the smallest skewed role's.
fn assert_effect_targets(name: &str, effect_order: f64, control_ratio: f64) {
    assert!(effect_order >= 0.9, "{name}: counterfactual effects vs planted order, Spearman {effect_order:.3} < 0.9");
    assert!(control_ratio <= 0.25, "{name}: the largest control effect is {control_ratio:.3} of the smallest skewed one (limit 0.25)");
}

/// The published figures (2,000 held-out scenes) meet the issues' bars (the
/// counterfactual effects' included), for both models, and name the weights
/// they measured: a retrained model that misses a bar, or an `eval.json` left
/// from other weights, cannot be committed unnoticed.
#[test]
fn published_figures_meet_the_targets() {
    for name in ["world-clip", "world-judge"] {
        let dir = models_dir().join(name);
        let p = published(&dir);
        assert_eq!(p["count"], 2000, "{name}");
        let weights = read(&dir.join("model.safetensors")).unwrap();
        assert_eq!(p["weights_sha256"].as_str(), Some(cliplens::quantize::sha256_hex(&weights).as_str()), "{name}: eval.json measured other weights");
        for t in p["attributes"].as_array().unwrap() {
            assert!(t["accuracy"].as_f64().unwrap() >= 0.95, "{name}: {} accuracy {}", t["task"], t["accuracy"]);
        }
        assert!(p["group"]["accuracy"].as_f64().unwrap() >= 0.90, "{name}: group {}", p["group"]["accuracy"]);
        assert_eq!(p["retrieval"]["pairs"], 1000, "{name}");
        assert!(p["retrieval"]["image_to_text_r_at_1"].as_f64().unwrap() >= 0.80, "{name}: R@1");
        assert!(p["agreement"]["zero_shot_decisions_alike"].as_f64().unwrap() >= 0.99, "{name}: int8 agreement");
        assert_bias_targets(name, p["role_tracking_spearman"].as_f64().unwrap());
        assert_effect_targets(name, p["counterfactual_effect_spearman"].as_f64().unwrap(), p["control_to_skewed_effect_ratio"].as_f64().unwrap());
        for role in p["roles"].as_array().unwrap() {
            let e = &role["counterfactual_effect"];
            let (mean, lo, hi) = (e["mean_difference"].as_f64().unwrap(), e["ci95"][0].as_f64().unwrap(), e["ci95"][1].as_f64().unwrap());
            assert!(lo <= mean && mean <= hi, "{name}: {} effect {mean} outside its interval [{lo}, {hi}]", role["role"]);
        }
        for role in p["roles"].as_array().unwrap().iter().filter(|r| r["planted_group_a_rate"] == 0.5) {
            let rate = role["classified_group_a_rate"].as_f64().unwrap();
            assert!((rate - 0.5).abs() <= 0.10, "{name}: balanced control {} classified {rate}", role["role"]);
        }
    }
}

/// Scenes for the live checks: other than the published seed (1000), and
/// as many as the retrieval pool the figures were published on.
const FRESH_SCENES: usize = 1000;

#[test]
fn the_embedded_model_knows_the_world_in_fp32_and_int8() {
    let dir = models_dir().join("world-clip");
    let fp32 = eval(&dir.join("model.safetensors"), 77, FRESH_SCENES);
    let int8 = eval(&dir.join("model.int8.safetensors"), 77, FRESH_SCENES);
    let p = published(&dir);
    assert_matches_published(&fp32, &p);
    assert_matches_published(&int8, &p);
    let decisions: usize = fp32.decisions.iter().map(|d| d.iter().flatten().count()).sum();
    let agreement = decision_agreement(&fp32, &int8);
    assert_close_proportion("world-clip: int8 decisions alike", agreement, decisions, &p["agreement"]["zero_shot_decisions_alike"], 2 * decisions);
}

#[test]
fn the_judge_knows_the_world() {
    let dir = models_dir().join("world-judge");
    assert_matches_published(&eval(&dir, 78, FRESH_SCENES), &published(&dir));
}

#[test]
fn committed_model_files_match_the_manifest() {
    let root = models_dir();
    let manifest = Manifest::from_json(&read(&root.join("manifest.json")).unwrap(), "models/manifest.json").unwrap();
    for id in ["world-clip", "world-judge"] {
        let model = manifest.find(id).unwrap_or_else(|| panic!("{id} is not in the manifest"));
        assert!(!model.files.is_empty());
        for file in &model.files {
            let bytes = read(&root.join(&model.dir).join(&file.name)).unwrap();
            model.verify(&file.name, &bytes).unwrap();
            assert!(bytes.len() < 20_000_000, "{}/{} is over 20 MB", model.dir, file.name);
        }
    }
}

#[test]
fn world_generate_writes_images_and_labels() {
    let out = tempfile::tempdir().unwrap();
    let status = cliplens()
        .args(["world", "generate", "--seed", "5", "--count", "12", "--out"])
        .arg(out.path())
        .status()
        .unwrap();
    assert!(status.success());
    let labels = std::fs::read_to_string(out.path().join("labels.csv")).unwrap();
    let lines: Vec<&str> = labels.lines().collect();
    assert_eq!(lines[0], "file,caption,group,role,role_shown,shape,color,size,pattern,position,background,count");
    assert_eq!(lines.len(), 13);
    for line in &lines[1..] {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells.len(), 12, "{line}");
        // Every attribute value is a word of the caption.
        for value in &cells[5..] {
            assert!(cells[1].split(' ').any(|w| w.trim_end_matches('s') == *value || w == *value), "{value} not in {line}");
        }
        assert!(["glim", "vorn"].contains(&cells[2]));
        assert_eq!(cells[4].is_empty(), cells[3].is_empty(), "role_shown is given exactly when there is a role: {line}");
        assert!(["", "true", "false"].contains(&cells[4]), "{line}");
        let image = cliplens::preprocess::decode_image(&read(&out.path().join(cells[0])).unwrap(), cells[0]).unwrap();
        assert_eq!((image.width, image.height), (64, 64));
    }
    // The same seed gives the same files.
    let again = tempfile::tempdir().unwrap();
    cliplens().args(["world", "generate", "--seed", "5", "--count", "12", "--out"]).arg(again.path()).status().unwrap();
    assert_eq!(labels, std::fs::read_to_string(again.path().join("labels.csv")).unwrap());
    assert_eq!(read(&out.path().join("00003.png")).unwrap(), read(&again.path().join("00003.png")).unwrap());
}

#[test]
fn world_eval_prints_json_with_the_planted_rates() {
    let output = cliplens()
        .args(["world", "eval", "--seed", "9", "--count", "60", "--json", "--model"])
        .arg(models_dir().join("world-judge"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let v: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(v["attributes"].as_array().unwrap().len(), 7);
    assert_eq!(v["roles"][0]["role"], "pilot");
    assert_eq!(v["roles"][0]["planted_group_a_rate"], 0.95);
    assert!(v["retrieval"]["image_to_text_r_at_1"].is_number());
}

#[test]
fn interrupted_training_resumes_to_the_same_weights() {
    use cliplens::train::{ModelShape, TrainSettings, train};
    let settings = TrainSettings {
        seed: 3,
        steps: 4,
        batch_size: 8,
        peak_lr: 1e-3,
        warmup_steps: 1,
        weight_decay: 0.1,
        attribute_loss_weight: 0.3,
        position_init_std: 0.3,
        shape: ModelShape { hidden: 32, layers: 1, heads: 2, patch_size: 16, projection_dim: 16, context_length: 24 },
    };
    let device = burn::tensor::Device::flex();
    let unbroken = tempfile::tempdir().unwrap();
    train(&settings, unbroken.path(), &device, 2, |_| {}).unwrap();

    let resumed = tempfile::tempdir().unwrap();
    let crash = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        train(&settings, resumed.path(), &device, 2, |p| assert!(p.step < 3, "simulated crash at step {}", p.step))
    }));
    assert!(crash.is_err(), "the first run should have been interrupted");
    assert!(resumed.path().join("checkpoint/training.json").is_file());
    let log = train(&settings, resumed.path(), &device, 2, |p| assert!(p.step > 2, "resumed from the start")).unwrap();
    assert_eq!(log.step, 4);
    let (a, b) = (read(&unbroken.path().join("model.safetensors")).unwrap(), read(&resumed.path().join("model.safetensors")).unwrap());
    let (a, b) = (WeightFile::parse(&a, "unbroken").unwrap(), WeightFile::parse(&b, "resumed").unwrap());
    assert_eq!(a.names(), b.names());
    for name in a.names() {
        // A resumed run ends with the weights of an unbroken one, up to the
        // last bit of rounding (Flex's multi-threaded reductions do not fix
        // their summation order); a lost optimizer state or a replayed batch
        // would differ by orders of magnitude more.
        let (x, y) = (a.get(&name).unwrap().to_f32(), b.get(&name).unwrap().to_f32());
        let worst = x.iter().zip(&y).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max);
        assert!(worst <= 1e-6, "{name}: differs by {worst}");
    }
    // The result is an ordinary model directory.
    let clip = Clip::load(&read_model(resumed.path()).unwrap(), &device).unwrap();
    assert_eq!(clip.config().vision_config.image_size, 64);
}
