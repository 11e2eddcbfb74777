//! The web app in a real browser: builds it with Trunk, then drives Debian's
//! chromium with Playwright (tests/browser/app.test.mjs) on WebGPU and on the
//! CPU fallback. The similarities must equal the native CLI's `--json` output
//! for the same files, bad files must get per-item messages, a 500-image
//! folder must finish within 1.5 GB and stop on Cancel, a model from a
//! stand-in Hub must be quantized to the CLI's numbers and cached, a crashed
//! worker must be replaced on the CPU, and no request may leave 127.0.0.1.
//!
//! Needs `trunk`, `wasm-bindgen` (Cargo.lock's version), `node` with
//! `tests/browser/node_modules` and `/usr/bin/chromium`; `.ci/run` installs
//! them and sets CLIPLENS_BROWSER_TESTS=1, which turns a missing tool into a
//! failure instead of a skip.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{fixture_images, fixtures};

const CHROMIUM: &str = "/usr/bin/chromium";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn have(program: &str) -> bool {
    Command::new(program).arg("--version").output().is_ok_and(|o| o.status.success())
}

fn missing_tools() -> Vec<String> {
    let mut missing = Vec::new();
    for tool in ["trunk", "wasm-bindgen", "node"] {
        if !have(tool) {
            missing.push(tool.to_string());
        }
    }
    if !Path::new(CHROMIUM).exists() {
        missing.push(CHROMIUM.into());
    }
    if !root().join("tests/browser/node_modules/playwright-core").is_dir() {
        missing.push("tests/browser/node_modules (npm ci --prefix tests/browser)".into());
    }
    missing
}

/// Where builds go: beside the native target dir, so a clone stays clean
/// and the two builds never wait on each other's lock.
fn cache_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        Some(target) => target.parent().map(Path::to_path_buf).unwrap_or(target).join("web"),
        // Inside the ignored target/ of the checkout, never beside the sources.
        None => root().join("target/web"),
    }
}

fn run(cmd: &mut Command, what: &str) {
    let status = cmd.status().unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    assert!(status.success(), "{what} failed ({status})");
}

#[test]
fn web_app_in_chromium() {
    let missing = missing_tools();
    if !missing.is_empty() {
        assert!(
            std::env::var_os("CLIPLENS_BROWSER_TESTS").is_none(),
            "browser tests required but these are missing: {}",
            missing.join(", ")
        );
        eprintln!("skipped: the browser tests need {}", missing.join(", "));
        return;
    }
    let cache = cache_dir();
    let dist = cache.join("dist");
    let work = tempfile::tempdir().unwrap();

    run(
        Command::new("trunk")
            .args(["build", "--dist"])
            .arg(&dist)
            .current_dir(root())
            .env("CARGO_TARGET_DIR", cache.join("target"))
            .env("TRUNK_SKIP_VERSION_CHECK", "true"),
        "trunk build",
    );

    // Inputs: the preprocessing fixtures (every format the CLI reads), three
    // world scenes, and three files that must fail one by one.
    let mut images = fixture_images();
    let cliplens = env!("CARGO_BIN_EXE_cliplens");
    let scenes = work.path().join("scenes");
    run(Command::new(cliplens).args(["world", "generate", "--seed", "77", "--count", "3", "--out"]).arg(&scenes), "world generate");
    images.extend((0..3).map(|i| scenes.join(format!("{i:05}.png"))).filter(|p| p.exists()));
    let folder = work.path().join("folder");
    run(Command::new(cliplens).args(["world", "generate", "--seed", "78", "--count", "500", "--out"]).arg(&folder), "world generate");
    std::fs::remove_file(folder.join("labels.csv")).unwrap();

    let truncated = work.path().join("truncated.png");
    let whole = std::fs::read(fixtures().join("images/portrait.png")).unwrap();
    std::fs::write(&truncated, &whole[..whole.len() / 2]).unwrap();
    // A real 20000x20000 PNG; app.test.mjs writes it (node has zlib).
    let huge = work.path().join("huge_20000.png");
    let bad = serde_json::json!([
        {"path": fixtures().join("images/not_an_image.png"), "expect": "not an image"},
        {"path": truncated, "expect": "truncated"},
        {"path": huge, "expect": "20000x20000"},
    ]);

    let prompts = ["a photo of a red figure", "a photo of a blue figure", "a photo of a circle on a beach", "a photo of a cat"];
    let model = root().join("models/world-clip/model.int8.safetensors");
    let mut args: Vec<String> = vec!["embed".into(), "--json".into(), "--model".into(), model.display().to_string()];
    for image in &images {
        args.extend(["--image".into(), image.display().to_string()]);
    }
    for prompt in prompts {
        args.extend(["--text".into(), prompt.into()]);
    }
    let out = Command::new(cliplens).args(&args).output().unwrap();
    assert!(out.status.success(), "cliplens embed: {}", String::from_utf8_lossy(&out.stderr));
    let expected: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    // A stand-in Hub (served by tests/browser/serve.mjs): the embedded model's
    // float weights, which the worker must quantize to the CLI's int8 numbers;
    // the same files with a wrong sha256; and a repository without safetensors.
    let world_clip = root().join("models/world-clip");
    let no_weights = work.path().join("no-weights");
    std::fs::create_dir_all(&no_weights).unwrap();
    for file in ["config.json", "tokenizer.json", "preprocessor_config.json"] {
        std::fs::copy(world_clip.join(file), no_weights.join(file)).unwrap();
    }
    let hub = serde_json::json!({
        "cliplens/world-clip": {"dir": world_clip},
        "cliplens/tampered": {"dir": world_clip, "etag": "0".repeat(64)},
        "cliplens/no-weights": {"dir": no_weights},
    });

    // An inversion the studio must match: the CLI's similarity for the same settings.
    let invert_prompt = "a photo of a red circle at the top";
    let (invert_steps, invert_seed) = (20, 7);
    let invert_png = work.path().join("invert.png");
    let out = Command::new(cliplens)
        .args(["invert", "--json", "--preset", "quick", "--prompt", invert_prompt, "--model"])
        .arg(&model)
        .args(["--steps", &invert_steps.to_string(), "--seed", &invert_seed.to_string(), "--out"])
        .arg(&invert_png)
        .output()
        .unwrap();
    assert!(out.status.success(), "cliplens invert: {}", String::from_utf8_lossy(&out.stderr));
    let invert_cli: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    let plan = serde_json::json!({
        "invert": {"prompt": invert_prompt, "preset": "quick", "steps": invert_steps, "seed": invert_seed, "cli": invert_cli},
        "hub": hub,
        "chromium": CHROMIUM,
        "dist": dist,
        "trunk_toml": root().join("Trunk.toml"),
        "out_dir": cache.join("browser-failures"),
        "modes": ["webgpu", "cpu"],
        "images": images,
        "prompts": prompts,
        "bad": bad,
        "huge_png": huge,
        "expected": expected,
        "folder": folder,
        "folder_count": 500,
        // A debug build; a stall a user would notice is several hundred ms.
        "longest_task_ms": 500,
    });
    let plan_path = work.path().join("plan.json");
    std::fs::write(&plan_path, serde_json::to_vec_pretty(&plan).unwrap()).unwrap();
    run(Command::new("node").arg(root().join("tests/browser/app.test.mjs")).arg(&plan_path), "browser tests (see their lines above)");
}
