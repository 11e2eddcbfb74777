//! Full-size checks on random-weight ViT-B/32 and ViT-B/16 checkpoints made by
//! `python tests/parity/make_fixtures.py full --arch b32 --out tests/fixtures/full/b32`
//! (hundreds of MB, never committed), and inversion on random full-size
//! checkpoints made here. Ignored by default; run with
//! `cargo test --release --test full_size -- --ignored --nocapture`.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde::Deserialize;

#[derive(Deserialize)]
struct Expected {
    images: Vec<String>,
    texts: Vec<String>,
    image_embeds: Vec<Vec<f32>>,
    text_embeds: Vec<Vec<f32>>,
    similarity: Vec<Vec<f32>>,
    logit_scale: f32,
}

#[derive(Deserialize)]
struct Embedded {
    texts: Vec<String>,
    image_embeds: Vec<Vec<f32>>,
    text_embeds: Vec<Vec<f32>>,
    similarity: Vec<Vec<f32>>,
    logit_scale: f32,
}

/// Images whose input deliberately differs from transformers' (see
/// tests/preprocess_parity.rs: Pillow clamps 16-bit images to white).
const DELIBERATE_DEVIATIONS: &[&str] = &["gray16.png"];

fn cliplens_embed(model: &Path, expected: &Expected, backend: &str) -> Embedded {
    let mut args = vec!["embed".to_string(), "--model".into(), model.display().to_string(), "--json".into()];
    args.extend(["--backend".into(), backend.into()]);
    for image in expected.images.iter().filter(|i| !DELIBERATE_DEVIATIONS.contains(&i.as_str())) {
        args.extend(["--image".into(), fixtures().join("images").join(image).display().to_string()]);
    }
    for text in expected.texts.iter().filter(|t| !t.trim().is_empty()) {
        args.extend(["--text".into(), text.clone()]);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_cliplens")).args(&args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn max_abs(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    a.concat().iter().zip(b.concat()).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn min_cosine(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>()).fold(1.0, f32::min)
}

fn check(arch: &str) {
    let dir = fixtures().join("full").join(arch);
    let mut expected: Expected = serde_json::from_slice(&std::fs::read(dir.join("reference.json")).unwrap_or_else(|_| {
        panic!("{} missing: generate it with tests/parity/make_fixtures.py full --arch {arch}", dir.display())
    }))
    .unwrap();
    let kept_images: Vec<usize> =
        (0..expected.images.len()).filter(|&i| !DELIBERATE_DEVIATIONS.contains(&expected.images[i].as_str())).collect();
    expected.image_embeds = kept_images.iter().map(|&i| expected.image_embeds[i].clone()).collect();
    expected.similarity = kept_images.iter().map(|&i| expected.similarity[i].clone()).collect();
    // The CLI refuses empty prompts; compare the rows it embedded.
    let kept: Vec<usize> = (0..expected.texts.len()).filter(|&j| !expected.texts[j].trim().is_empty()).collect();
    let text_embeds: Vec<Vec<f32>> = kept.iter().map(|&j| expected.text_embeds[j].clone()).collect();
    let similarity: Vec<Vec<f32>> = expected.similarity.iter().map(|row| kept.iter().map(|&j| row[j]).collect()).collect();

    let backends: &[&str] = if cfg!(skip_wgpu) { &["cpu"] } else { &["cpu", "wgpu"] };
    for backend in backends {
        let got = cliplens_embed(&dir.join("model.safetensors"), &expected, backend);
        assert_eq!(got.texts.len(), kept.len());
        let errs = [
            max_abs(&got.image_embeds, &expected.image_embeds),
            max_abs(&got.text_embeds, &text_embeds),
            max_abs(&got.similarity, &similarity),
            (got.logit_scale - expected.logit_scale).abs() / expected.logit_scale,
        ];
        println!("{arch} fp32 on {backend}: max abs err image_embeds {:.2e}, text_embeds {:.2e}, similarity {:.2e}; logit_scale rel err {:.2e}", errs[0], errs[1], errs[2], errs[3]);
        assert!(errs.iter().all(|&e| e <= 1e-3), "{arch} on {backend}: {errs:?}");
    }

    let int8 = dir.join("model.int8.safetensors");
    let out = Command::new(env!("CARGO_BIN_EXE_cliplens"))
        .args(["quantize", dir.join("model.safetensors").to_str().unwrap(), int8.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    println!("{}", String::from_utf8_lossy(&out.stdout));
    let got = cliplens_embed(&int8, &expected, "cpu");
    let (ci, ct) = (min_cosine(&got.image_embeds, &expected.image_embeds), min_cosine(&got.text_embeds, &text_embeds));
    println!("{arch} int8 on cpu: min cosine to fp32 transformers: images {ci:.5}, texts {ct:.5}; max abs err similarity {:.2e}", max_abs(&got.similarity, &similarity));
    assert!(ci >= 0.99 && ct >= 0.99, "{arch} int8: {ci} {ct}");
}

#[test]
#[ignore = "needs tests/fixtures/full (generated, hundreds of MB)"]
fn vit_b32_random_full_size() {
    check("b32");
}

#[test]
#[ignore = "needs tests/fixtures/full (generated, hundreds of MB)"]
fn vit_b16_random_full_size() {
    check("b16");
}

/// A random full-size checkpoint written here (the initialization `train-world`
/// uses, on the real ViT-B/32 config with `patch` as its patch size, and the real
/// tokenizer from ../shared/data): enough to measure memory and speed.
fn random_full_size(dir: &Path, patch: usize) {
    let shared = shared_data().join("clip-vit-base-patch32");
    let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(shared.join("config.json")).unwrap()).unwrap();
    config["vision_config"]["patch_size"] = patch.into();
    let text = serde_json::to_string_pretty(&config).unwrap();
    std::fs::write(dir.join("config.json"), &text).unwrap();
    for file in ["tokenizer.json", "preprocessor_config.json"] {
        std::fs::copy(shared.join(file), dir.join(file)).unwrap();
    }
    let parsed = cliplens::config::ClipConfig::from_json(text.as_bytes(), "config.json").unwrap();
    let weights = cliplens::train::initial_checkpoint(&parsed, 1, 0.02).unwrap();
    std::fs::write(dir.join("model.safetensors"), weights).unwrap();
}

/// Inversion on full-size random ViT-B/32 and B/16 at 8 and 32 views per step
/// (the default micro-batch of 8 views per pass): it must finish, and prints
/// steps per second and the process's peak memory for the README.
#[test]
#[ignore = "writes two 600 MB checkpoints and runs minutes"]
fn inversion_on_full_size_models() {
    let backend = std::env::var("CLIPLENS_BACKEND").unwrap_or_else(|_| "cpu".into());
    for (arch, patch) in [("ViT-B/32", 32), ("ViT-B/16", 16)] {
        let dir = tempfile::tempdir().unwrap();
        random_full_size(dir.path(), patch);
        for views in [8, 32] {
            let out_png = dir.path().join("out.png");
            let out = Command::new(env!("CARGO_BIN_EXE_cliplens"))
                .args(["invert", "--json", "--prompt", "a photo of a lighthouse", "--steps", "3", "--backend", &backend])
                .args(["--views", &views.to_string(), "--model"])
                .arg(dir.path())
                .arg("--out")
                .arg(&out_png)
                .output()
                .unwrap();
            assert!(out.status.success(), "{arch} views {views}: {}", String::from_utf8_lossy(&out.stderr));
            let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let peak_mb = r["peak_rss_bytes"].as_f64().unwrap() / 1e6;
            println!(
                "{arch} on {backend}, views {views} (micro-batch {}): {:.3} steps/s, {:.1} s per step, peak memory {peak_mb:.0} MB",
                r["settings"]["micro_batch"], r["steps_per_second"].as_f64().unwrap(), 1.0 / r["steps_per_second"].as_f64().unwrap()
            );
            assert_eq!(r["steps_done"], 3);
            let image = cliplens::preprocess::decode_image(&std::fs::read(&out_png).unwrap(), "out.png").unwrap();
            assert_eq!((image.width, image.height), (224, 224));
        }
    }
}
