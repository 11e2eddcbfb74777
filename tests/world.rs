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

/// On a few hundred other scenes the model must reproduce its published
/// accuracy (within sampling noise: 0.08 is nearly three standard errors at
/// n = 300) and be far above chance on average: a swapped, truncated or
/// broken weights file fails here.
fn assert_matches_published(e: &WorldEval, published: &serde_json::Value) {
    const NOISE: f64 = 0.08;
    let tasks = e.attributes.iter().chain([&e.group]);
    for t in tasks {
        let expected = published["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .chain([&published["group"]])
            .find(|p| p["task"] == t.task.as_str())
            .unwrap()["accuracy"]
            .as_f64()
            .unwrap();
        assert!(t.accuracy >= expected - NOISE, "{}: {} accuracy {:.3}, published {expected:.3}", e.model, t.task, t.accuracy);
    }
    let mean = |f: fn(&cliplens::world::eval::TaskAccuracy) -> f64| e.attributes.iter().map(f).sum::<f64>() / e.attributes.len() as f64;
    let (accuracy, chance) = (mean(|t| t.accuracy), mean(|t| t.chance));
    assert!(accuracy >= chance + 0.2, "{}: mean attribute accuracy {accuracy:.3} is near chance ({chance:.3})", e.model);
    // A pool of 300 captions is easier than the published 1,000.
    let r1 = published["retrieval"]["image_to_text_r_at_1"].as_f64().unwrap();
    assert!(e.retrieval.image_to_text_r_at_1 >= r1 - NOISE, "{}: R@1 {:.3}, published {r1:.3}", e.model, e.retrieval.image_to_text_r_at_1);
}

/// The published figures (2,000 held-out scenes) meet the embedded-model
/// issue's bar, for both models: a retrained model that misses it cannot be
/// committed with its `eval.json` unnoticed.
#[test]
fn published_figures_meet_the_targets() {
    for name in ["world-clip", "world-judge"] {
        let p = published(&models_dir().join(name));
        assert_eq!(p["count"], 2000, "{name}");
        for t in p["attributes"].as_array().unwrap() {
            assert!(t["accuracy"].as_f64().unwrap() >= 0.95, "{name}: {} accuracy {}", t["task"], t["accuracy"]);
        }
        assert!(p["group"]["accuracy"].as_f64().unwrap() >= 0.90, "{name}: group {}", p["group"]["accuracy"]);
        assert_eq!(p["retrieval"]["pairs"], 1000, "{name}");
        assert!(p["retrieval"]["image_to_text_r_at_1"].as_f64().unwrap() >= 0.80, "{name}: R@1");
        assert!(p["agreement"]["zero_shot_decisions_alike"].as_f64().unwrap() >= 0.99, "{name}: int8 agreement");
        assert!(p["role_tracking_spearman"].as_f64().unwrap() >= 0.8, "{name}: Spearman");
        for role in p["roles"].as_array().unwrap().iter().filter(|r| r["planted_group_a_rate"] == 0.5) {
            let rate = role["classified_group_a_rate"].as_f64().unwrap();
            assert!((rate - 0.5).abs() <= 0.10, "{name}: balanced control {} classified {rate}", role["role"]);
        }
    }
}

#[test]
fn the_embedded_model_knows_the_world_in_fp32_and_int8() {
    let dir = models_dir().join("world-clip");
    let fp32 = eval(&dir.join("model.safetensors"), 77, 300);
    let int8 = eval(&dir.join("model.int8.safetensors"), 77, 300);
    assert_matches_published(&fp32, &published(&dir));
    assert_matches_published(&int8, &published(&dir));
    let agreement = decision_agreement(&fp32, &int8);
    assert!(agreement >= 0.97, "int8 agrees with fp32 on {agreement:.4} of zero-shot decisions");
    // The planted skews are in the model: pilots (95% glim) lean glim,
    // chefs (5% glim) lean vorn, when only the group differs.
    let lean = |role: &str| fp32.roles.iter().find(|r| r.role == role).unwrap().counterfactual_group_a_preference;
    assert!(lean("pilot") > 0.6 && lean("chef") < 0.4, "pilot {} vs chef {}", lean("pilot"), lean("chef"));
}

#[test]
fn the_judge_knows_the_world() {
    let dir = models_dir().join("world-judge");
    assert_matches_published(&eval(&dir, 78, 300), &published(&dir));
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
    assert_eq!(lines[0], "file,caption,group,role,shape,color,size,pattern,position,background,count");
    assert_eq!(lines.len(), 13);
    for line in &lines[1..] {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells.len(), 11, "{line}");
        // Every attribute value is a word of the caption.
        for value in &cells[4..] {
            assert!(cells[1].split(' ').any(|w| w.trim_end_matches('s') == *value || w == *value), "{value} not in {line}");
        }
        assert!(["glim", "vorn"].contains(&cells[2]));
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
