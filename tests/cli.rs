//! The `cliplens` binary as a user meets it: JSON output, and one clear line
//! naming the file and the problem for each kind of bad input.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

fn cliplens(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cliplens")).args(args).output().expect("run cliplens")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A copy of the tiny model directory that a test may damage.
fn tiny_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["config.json", "tokenizer.json", "model.safetensors"] {
        std::fs::copy(fixtures().join("tiny").join(name), dir.path().join(name)).unwrap();
    }
    dir
}

fn image(name: &str) -> String {
    fixtures().join("images").join(name).display().to_string()
}

fn fixture_images() -> Vec<String> {
    common::fixture_images().iter().map(|p| p.display().to_string()).collect()
}

fn embed_json(model: &Path, extra: &[&str]) -> (Output, serde_json::Value) {
    let model = model.display().to_string();
    let mut args = vec!["embed", "--model", model.as_str(), "--json"];
    args.extend_from_slice(extra);
    let out = cliplens(&args);
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out, json)
}

fn rows(v: &serde_json::Value) -> Vec<Vec<f32>> {
    serde_json::from_value(v.clone()).unwrap()
}

#[test]
fn embed_json_has_normalized_embeddings_and_their_cosines() {
    let images = fixture_images();
    let mut args: Vec<&str> = Vec::new();
    for path in images.iter().take(3) {
        args.extend(["--image", path.as_str()]);
    }
    args.extend(["--text", "a photo of a cat", "--text", "a red circle"]);
    let (out, json) = embed_json(&fixtures().join("tiny"), &args);
    assert!(out.status.success(), "{}", stderr(&out));
    let image_embeds = rows(&json["image_embeds"]);
    let text_embeds = rows(&json["text_embeds"]);
    let similarity = rows(&json["similarity"]);
    assert_eq!((image_embeds.len(), text_embeds.len()), (3, 2));
    assert_eq!(similarity.len(), 3);
    assert!(similarity.iter().all(|row| row.len() == 2));
    for e in image_embeds.iter().chain(&text_embeds) {
        assert_eq!(e.len(), 24);
        let norm: f32 = e.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
    }
    for (i, row) in similarity.iter().enumerate() {
        for (j, &s) in row.iter().enumerate() {
            let dot: f32 = image_embeds[i].iter().zip(&text_embeds[j]).map(|(a, b)| a * b).sum();
            assert!((s - dot).abs() < 1e-6);
        }
    }
    let reference = Reference::open(&fixtures().join("tiny/reference.safetensors"));
    let scale = json["logit_scale"].as_f64().unwrap() as f32;
    assert!((scale - reference.get("logit_scale_exp").1[0]).abs() < 1e-4);
    assert!(json["model"].as_str().unwrap().contains("tiny"));
}

#[test]
#[cfg_attr(skip_wgpu, ignore = "CLIPLENS_SKIP_WGPU is set")]
fn wgpu_and_cpu_agree_through_the_cli() {
    let images = fixture_images();
    let args = ["--image", images[0].as_str(), "--text", "a dog", "--text", "two cats"];
    let (out, cpu) = embed_json(&fixtures().join("tiny"), &args);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut wgpu_args = args.to_vec();
    wgpu_args.extend(["--backend", "wgpu"]);
    let (out, wgpu) = embed_json(&fixtures().join("tiny"), &wgpu_args);
    assert!(out.status.success(), "{}", stderr(&out));
    for (a, b) in rows(&cpu["similarity"]).concat().iter().zip(rows(&wgpu["similarity"]).concat()) {
        assert!((a - b).abs() < 1e-3, "{a} vs {b}");
    }
}

/// Exactly one `error:` line naming `file` and containing `problem`.
fn assert_one_clear_line(out: &Output, file: &str, problem: &str) {
    assert!(!out.status.success(), "should fail");
    let err = stderr(out);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "one error line expected:\n{err}");
    assert!(lines[0].contains(file) && lines[0].contains(problem), "{:?} should name {file:?} and {problem:?}", lines[0]);
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn truncated_weights() {
    let dir = tiny_copy();
    let weights = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let (out, _) = embed_json(dir.path(), &["--text", "a cat"]);
    assert_one_clear_line(&out, "model.safetensors", "truncated");
}

#[test]
fn weights_that_are_not_safetensors() {
    let dir = tiny_copy();
    std::fs::write(dir.path().join("model.safetensors"), b"<html>404 not found</html>").unwrap();
    let (out, _) = embed_json(dir.path(), &["--text", "a cat"]);
    assert_one_clear_line(&out, "model.safetensors", "not a safetensors file");
}

#[test]
fn a_safetensors_file_that_is_not_clip() {
    let dir = tiny_copy();
    let values: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2, 2], &values).unwrap();
    let bytes = safetensors::serialize([("classifier.weight", view)], None).unwrap();
    std::fs::write(dir.path().join("model.safetensors"), bytes).unwrap();
    let (out, _) = embed_json(dir.path(), &["--text", "a cat"]);
    assert_one_clear_line(&out, "model.safetensors", "missing");
}

#[test]
fn a_config_whose_hidden_size_does_not_match_the_weights() {
    let dir = tiny_copy();
    let path = dir.path().join("config.json");
    let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    config["text_config"]["hidden_size"] = 64.into();
    std::fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
    let (out, _) = embed_json(dir.path(), &["--text", "a cat"]);
    assert_one_clear_line(&out, "model.safetensors", "config.json");
    assert!(stderr(&out).contains("does not match"));
}

/// Rewrites the safetensors file at `path` with `extra` tensors (name, dtype, shape, bytes) added.
fn add_tensors(path: &Path, extra: &[(&str, safetensors::Dtype, Vec<usize>, &[u8])]) {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors = st.tensors();
    for (name, dtype, shape, data) in extra {
        tensors.push((name.to_string(), safetensors::tensor::TensorView::new(*dtype, shape.clone(), data).unwrap()));
    }
    std::fs::write(path, safetensors::serialize(tensors, None).unwrap()).unwrap();
}

#[test]
fn an_unknown_extra_tensor_is_named() {
    let dir = tiny_copy();
    add_tensors(&dir.path().join("model.safetensors"), &[("text_model.extra_head.weight", safetensors::Dtype::F32, vec![2], &[0u8; 8])]);
    let (out, _) = embed_json(dir.path(), &["--text", "a cat"]);
    assert_one_clear_line(&out, "text_model.extra_head.weight", "unknown");
}

#[test]
fn a_bad_image_is_reported_and_the_rest_of_the_batch_goes_on() {
    let images = fixture_images();
    let bad = image("not_an_image.png");
    let (out, json) = embed_json(
        &fixtures().join("tiny"),
        &["--image", bad.as_str(), "--image", images[0].as_str(), "--text", "a cat", "--text", "  "],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.lines().any(|l| l.starts_with("error:") && l.contains("not_an_image.png") && l.contains("not an image")), "{err}");
    assert!(err.lines().any(|l| l.starts_with("error:") && l.contains("is empty")), "{err}");
    // The good inputs were still embedded.
    assert_eq!(rows(&json["image_embeds"]).len(), 1);
    assert_eq!(rows(&json["text_embeds"]).len(), 1);
    assert_eq!(json["errors"].as_array().unwrap().len(), 2);
}

#[test]
fn int64_position_ids_buffers_of_older_checkpoints_are_ignored() {
    // Checkpoints converted by older transformers carry `*.position_ids` (int64).
    let dir = tiny_copy();
    let path = dir.path().join("model.safetensors");
    let ids: Vec<u8> = (0..77i64).flat_map(|i| i.to_le_bytes()).collect();
    add_tensors(
        &path,
        &[
            ("text_model.embeddings.position_ids", safetensors::Dtype::I64, vec![1, 77], &ids),
            ("vision_model.embeddings.position_ids", safetensors::Dtype::I64, vec![1, 77], &ids),
        ],
    );
    let (out, _) = embed_json(dir.path(), &["--text", "a cat"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let int8 = dir.path().join("model.int8.safetensors");
    let out = cliplens(&["quantize", path.to_str().unwrap(), int8.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_missing_model_directory() {
    let out = cliplens(&["embed", "--model", "/nonexistent/model", "--text", "a cat"]);
    assert_one_clear_line(&out, "/nonexistent/model", "no such model");
}

#[test]
fn prepare_models_fails_in_one_line_without_the_network() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().display().to_string();
    // A closed port on this machine: the same answer whether or not the real
    // Hub is reachable from here (where it is, this would download 600 MB).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let hub = format!("http://{closed}");
    let out = cliplens(&["prepare-models", "--out", out_dir.as_str(), "--id", "openai/clip-vit-base-patch32", "--hub", hub.as_str()]);
    assert_one_clear_line(&out, "prepare-models", &hub);
}

/// A one-thread HTTP server on 127.0.0.1 playing the Hub: `GET
/// /<owner>/<name>/resolve/main/<file>` serves `dir/<file>` for the one repo
/// `repo`; anything else is a 404. Returns its base URL.
fn stand_in_hub(repo: &'static str, dir: std::path::PathBuf) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(&stream);
            let mut request = String::new();
            let _ = reader.read_line(&mut request);
            // Headers end at an empty line.
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let path = request.split_whitespace().nth(1).unwrap_or("");
            let file = path.strip_prefix(&format!("/{repo}/resolve/main/")).filter(|f| !f.contains('/'));
            let mut stream = &stream;
            match file.and_then(|f| std::fs::read(dir.join(f)).ok()) {
                Some(body) => {
                    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                    let _ = stream.write_all(head.as_bytes()).and_then(|_| stream.write_all(&body));
                }
                None => {
                    let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                }
            }
        }
    });
    base
}

/// `prepare-models --hub` against a stand-in Hub serving the embedded model's
/// float files: the native twin of the web app's "Fetch from Hugging Face".
#[test]
fn prepare_models_from_a_hub_mirror() {
    let models_dir = || Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let hub = stand_in_hub("cliplens/world-clip", models_dir().join("world-clip"));
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().display().to_string();
    let out = cliplens(&["prepare-models", "--hub", hub.as_str(), "--out", out_dir.as_str(), "--id", "cliplens/world-clip"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let prepared = dir.path().join("world-clip");
    for file in ["config.json", "tokenizer.json", "preprocessor_config.json", "model.int8.safetensors"] {
        assert!(prepared.join(file).is_file(), "{file} written");
    }
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.path().join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["models"][0]["id"], "cliplens/world-clip");
    // The same numbers as the committed int8 file made from the same weights.
    let (_, fresh) = embed_json(&prepared, &["--text", "a photo of a red circle on the left"]);
    let (_, committed) = embed_json(&models_dir().join("world-clip/model.int8.safetensors"), &["--text", "a photo of a red circle on the left"]);
    assert!(fresh["text_embeds"][0].is_array());
    assert_eq!(fresh["text_embeds"], committed["text_embeds"]);

    // A repository without safetensors weights: one line naming the URL.
    let out = cliplens(&["prepare-models", "--hub", hub.as_str(), "--out", out_dir.as_str(), "--id", "cliplens/other"]);
    assert!(!out.status.success());
    assert_one_clear_line(&out, "prepare-models", "cliplens/other/resolve/main/config.json");
    let out = cliplens(&["prepare-models", "--hub", hub.as_str(), "--out", out_dir.as_str(), "--id", "not an id"]);
    assert_one_clear_line(&out, "prepare-models", "not a Hugging Face model id");
}

#[test]
fn quantize_writes_int8_with_metadata_and_reports_its_error() {
    let dir = tiny_copy();
    let input = dir.path().join("model.safetensors").display().to_string();
    let output = dir.path().join("model.int8.safetensors");
    let out = cliplens(&["quantize", input.as_str(), output.to_str().unwrap(), "--source-id", "tiny-test", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ratio = report["size_ratio"].as_f64().unwrap();
    assert!(ratio < 0.4, "int8 should be well under half the f32 size, got {ratio}");
    let agreement = &report["agreement"];
    assert!(agreement["image_cosine_min"].as_f64().unwrap() > 0.99, "{agreement}");
    assert!(agreement["text_cosine_min"].as_f64().unwrap() > 0.99, "{agreement}");

    let bytes = std::fs::read(&output).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let meta = meta.metadata().clone().unwrap();
    assert_eq!(meta["format"], "cliplens-int8");
    assert_eq!(meta["source_model"], "tiny-test");
    let source = std::fs::read(fixtures().join("tiny/model.safetensors")).unwrap();
    assert_eq!(meta["source_sha256"], cliplens::quantize::sha256_hex(&source));

    // The int8 file loads as a model by itself.
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    let (out, json) = embed_json(dir.path(), &["--text", "a cat"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(rows(&json["text_embeds"]).len(), 1);
}

fn world_clip() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/world-clip").display().to_string()
}

/// `decompose --json`: the fields issue 21 names, concepts by text and
/// sorted, a bad image as one error line while the rest complete; the
/// vocabulary, the image mean and a sparsity that cannot be are checked.
#[test]
fn decompose_json_reports_concepts_by_text_and_goes_on_past_a_bad_image() {
    let dir = tempfile::tempdir().unwrap();
    let scenes = dir.path().join("scenes");
    let out = cliplens(&["world", "generate", "--seed", "3", "--count", "3", "--out", scenes.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let first = scenes.join("00000.png").display().to_string();
    let second = scenes.join("00001.png").display().to_string();
    let bad = image("not_an_image.png");
    let model = world_clip();
    let out = cliplens(&[
        "decompose", "--model", &model, "--image", &first, "--image", &bad, "--image", &second, "--l0", "6", "--json", "--no-cache",
    ]);
    assert_eq!(out.status.code(), Some(1), "a bad image makes the exit status 1");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["model"], "world-clip");
    assert_eq!(json["vocabulary"]["source"], "world");
    assert_eq!(json["vocabulary"]["size"], 54);
    assert_eq!(json["vocabulary"]["sha256"].as_str().unwrap().len(), 64);
    assert!(json["image_mean"]["source"].as_str().unwrap().ends_with("image_mean.json"), "{}", json["image_mean"]);
    let images = json["images"].as_array().unwrap();
    assert_eq!(images.len(), 2);
    for (image, file) in images.iter().zip([&first, &second]) {
        assert_eq!(image["file"], file.as_str());
        let concepts = image["concepts"].as_array().unwrap();
        assert_eq!(concepts.len() as u64, image["l0"].as_u64().unwrap());
        assert!(concepts.len() <= 6 && !concepts.is_empty());
        let weights: Vec<f64> = concepts.iter().map(|c| c["weight"].as_f64().unwrap()).collect();
        assert!(weights.windows(2).all(|w| w[0] >= w[1]) && weights.iter().all(|&w| w > 0.0), "{weights:?}");
        assert!(concepts.iter().all(|c| c["concept"].is_string()));
        let cosine = image["cosine"].as_f64().unwrap();
        assert!(cosine > 0.5 && cosine <= 1.0, "{cosine}");
        assert!(image["lambda"].as_f64().unwrap() > 0.0 && image["objective"].as_f64().unwrap() > 0.0);
    }
    let errors = json["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert!(errors[0].as_str().unwrap().starts_with(&format!("{bad}: ")), "{errors:?}");
    assert!(stderr(&out).contains(&format!("error: {bad}: ")));

    // A fixed λ, a user's list, a user's mean.
    let vocab = dir.path().join("words.txt");
    std::fs::write(&vocab, "red\nblue\n\nnight\nred\n").unwrap();
    let mean = dir.path().join("mean.json");
    std::fs::write(&mean, serde_json::to_string(&vec![0.0f32; 48]).unwrap()).unwrap();
    let out = cliplens(&[
        "decompose", "--model", &model, "--image", &first, "--lambda", "0.2", "--vocab", vocab.to_str().unwrap(),
        "--image-mean", mean.to_str().unwrap(), "--json", "--no-cache",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["vocabulary"]["size"], 3);
    assert_eq!(json["images"][0]["lambda"], 0.2);
    assert_eq!(json["image_mean"]["source"], mean.display().to_string());
    assert!(json["warnings"].as_array().unwrap().iter().any(|w| w.as_str().unwrap().contains("skipped 1 repeated")));

    // Wrong inputs: one line each, naming the input.
    std::fs::write(&mean, "[1, 2, 3]").unwrap();
    let out = cliplens(&["decompose", "--model", &model, "--image", &first, "--image-mean", mean.to_str().unwrap()]);
    assert_one_clear_line(&out, mean.to_str().unwrap(), "has 3 numbers but the model's embeddings have 48");
    let out = cliplens(&["decompose", "--model", &model, "--image", &first, "--vocab", "no-such-list"]);
    assert_one_clear_line(&out, "no-such-list", "is neither a file nor a built-in vocabulary");
    let out = cliplens(&["decompose", "--model", &model, "--image", &first, "--l0", "0"]);
    assert_one_clear_line(&out, "--l0", "0 concepts: choose 1 to 1000");
    std::fs::write(&vocab, "\n\n").unwrap();
    let out = cliplens(&["decompose", "--model", &model, "--image", &first, "--vocab", vocab.to_str().unwrap()]);
    assert_one_clear_line(&out, vocab.to_str().unwrap(), "holds no concepts");
}

/// `concepts compare`: two generated folders, B with its backgrounds
/// skewed to night, put night first, rising.
#[test]
fn concepts_compare_finds_the_planted_shift() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let out = cliplens(&["world", "generate", "--seed", "11", "--count", "60", "--out", a.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = cliplens(&["world", "generate", "--seed", "12", "--count", "60", "--skew", "background=night:0.7", "--out", b.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let labels = std::fs::read_to_string(b.join("labels.csv")).unwrap();
    let nights = labels.lines().skip(1).filter(|l| l.ends_with(",night,one") || l.contains(",night,")).count();
    assert!(nights > 35, "the skew planted {nights} of 60 nights");
    let out = cliplens(&["concepts", "compare", "--model", &world_clip(), "--a", a.to_str().unwrap(), "--b", b.to_str().unwrap(), "--json", "--no-cache"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["a"]["images"], 60);
    assert_eq!(json["b"]["images"], 60);
    let first = &json["shifts"][0];
    assert_eq!(first["concept"], "night", "{}", json["shifts"]);
    assert!(first["weight_change"].as_f64().unwrap() > 0.0);
    assert!(first["images_b"].as_u64().unwrap() > first["images_a"].as_u64().unwrap());
    // The collection view of B: night among its commonest concepts; a search ranks by weight.
    let out = cliplens(&["concepts", "collection", "--model", &world_clip(), "--dir", b.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let histogram = json["histogram"].as_array().unwrap();
    assert!(histogram.iter().take(5).any(|c| c["concept"] == "night"), "{}", json["histogram"]);
    let out = cliplens(&["concepts", "collection", "--model", &world_clip(), "--dir", b.to_str().unwrap(), "--search", "night", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let weights: Vec<f64> = json["search"].as_array().unwrap().iter().map(|h| h["weight"].as_f64().unwrap()).collect();
    assert!(weights.len() > 30 && weights.windows(2).all(|w| w[0] >= w[1]), "{weights:?}");
    // Removing "night" moves night scenes' zero-shot predictions away from night.
    let out = cliplens(&[
        "concepts", "intervene", "--model", &world_clip(), "--dir", b.to_str().unwrap(), "--remove", "night",
        "--prompt", "a photo of a figure at night", "--prompt", "a photo of a figure in a city", "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (before, after) = (json["count_before"][0].as_u64().unwrap(), json["count_after"][0].as_u64().unwrap());
    assert!(before > 30 && after < before / 2 && json["changed"].as_u64().unwrap() > 15, "night predictions {before} -> {after}: {json}");
    let out = cliplens(&["world", "generate", "--seed", "1", "--count", "1", "--skew", "mood=happy:0.5", "--out", a.to_str().unwrap()]);
    assert_one_clear_line(&out, "--skew", "\"mood\" is not an attribute");
}

/// `audit associations` with the exact interface: X, Y, A, B as files,
/// `d`, `p_value`, `permutations` and `s` per prompt; a missing set is one line.
#[test]
fn audit_associations_json_has_the_weat_fields() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, lines: &[&str]| {
        let p = dir.path().join(name);
        std::fs::write(&p, lines.join("\n")).unwrap();
        p.display().to_string()
    };
    let x = write(
        "x.txt",
        &[
            "a photo of a pilot",
            "a photo of a doctor",
            "a photo of pilots",
            "a photo of doctors",
        ],
    );
    let y = write(
        "y.txt",
        &[
            "a photo of a nurse",
            "a photo of a chef",
            "a photo of nurses",
            "a photo of chefs",
        ],
    );
    let a = write(
        "a.txt",
        &[
            "a photo of a glim figure",
            "a photo of glim figures",
            "a red glim circle",
        ],
    );
    let b = write(
        "b.txt",
        &[
            "a photo of a vorn figure",
            "a photo of vorn figures",
            "a red vorn circle",
        ],
    );
    let out = cliplens(&[
        "audit",
        "associations",
        "--model",
        &world_clip(),
        "--x",
        &x,
        "--y",
        &y,
        "--a",
        &a,
        "--b",
        &b,
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["kind"], "associations");
    assert_eq!(json["model"]["sha256"].as_str().unwrap().len(), 64);
    assert!(json["d"].as_f64().unwrap() > 1.0, "{}", json["d"]);
    // C(8, 4) = 70 re-partitions, enumerated: the observed one is the most extreme.
    assert_eq!(json["permutations"], 70);
    assert_eq!(json["exact"], true);
    assert!((json["p_value"].as_f64().unwrap() - 1.0 / 70.0).abs() < 1e-12);
    assert!(
        json["s"]["a photo of a pilot"].as_f64().unwrap() > 0.0
            && json["s"]["a photo of a chef"].as_f64().unwrap() < 0.0
    );
    let empty = write("empty.txt", &["", "  "]);
    let out = cliplens(&[
        "audit",
        "associations",
        "--model",
        &world_clip(),
        "--x",
        &empty,
        "--y",
        &y,
        "--a",
        &a,
        "--b",
        &b,
    ]);
    assert_one_clear_line(&out, "empty.txt", "has no prompts");
}

/// `audit folder` and `audit debias` on generated world folders, `audit report`
/// from their JSON; bad CSVs cost only their rows.
#[test]
fn audit_folder_debias_and_report_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    let out = cliplens(&[
        "world",
        "generate",
        "--seed",
        "21",
        "--count",
        "120",
        "--out",
        images.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::write(images.join("broken.png"), b"not a png").unwrap();
    let labels = images.join("labels.csv");
    let mut text = std::fs::read_to_string(&labels).unwrap();
    text.push_str("ghost.png,x,glim,,,circle,red,small,plain,left,beach,one\n");
    std::fs::write(&labels, text).unwrap();
    let preds = dir.path().join("preds.csv");
    std::fs::write(
        &preds,
        "file,label,prediction\n00000.png,yes,yes\n00001.png,no,yes\n00002.png,yes\n",
    )
    .unwrap();
    let weights = dir.path().join("weights.csv");
    let out = cliplens(&[
        "audit",
        "folder",
        "--model",
        &world_clip(),
        "--dir",
        images.to_str().unwrap(),
        "--attribute",
        "group=glim,vorn",
        "--k",
        "2",
        "--labels",
        labels.to_str().unwrap(),
        "--predictions",
        preds.to_str().unwrap(),
        "--query",
        "a photo of a doctor",
        "--weights-csv",
        weights.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let folder: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(folder["kind"], "folder");
    assert_eq!(folder["assignments"].as_object().unwrap().len(), 120);
    assert!(
        folder["ari"].as_f64().unwrap() >= 0.8 && folder["ami"].as_f64().unwrap() >= 0.8,
        "{}",
        folder["ari"]
    );
    assert_eq!(folder["groups"].as_array().unwrap().len(), 2);
    assert_eq!(folder["weights"].as_object().unwrap().len(), 120);
    let problems: Vec<&str> = folder["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(
        problems.iter().any(|p| p.contains("broken.png")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p
            .contains("labels.csv: line 122, column file: \"ghost.png\" is not among the images")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("preds.csv: line 4: 2 fields where the header has 3")),
        "{problems:?}"
    );
    assert_eq!(
        folder["retrieval"].as_array().unwrap().len(),
        4,
        "uniform and dataset targets, by pseudo-group and by perceived value"
    );
    assert_eq!(
        std::fs::read_to_string(&weights).unwrap().lines().count(),
        121
    );
    let folder_json = dir.path().join("folder.json");
    std::fs::write(&folder_json, &out.stdout).unwrap();

    let task = dir.path().join("task");
    let out = cliplens(&[
        "world",
        "generate",
        "--seed",
        "9",
        "--count",
        "300",
        "--roles",
        "doctor,nurse",
        "--role-shown",
        "--out",
        task.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let task_labels = task.join("labels.csv");
    let out = cliplens(&[
        "audit",
        "debias",
        "--model",
        &world_clip(),
        "--dir",
        task.to_str().unwrap(),
        "--labels",
        task_labels.to_str().unwrap(),
        "--target",
        "role",
        "--epochs",
        "20",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let debias: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let methods: Vec<&str> = debias["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["method"].as_str().unwrap())
        .collect();
    assert_eq!(
        methods,
        ["erm", "clip-debias", "oracle", "clip-debias-loss"]
    );
    for m in debias["methods"].as_array().unwrap() {
        assert!(
            m["overall_accuracy"]["value"].as_f64().is_some()
                && m["worst_group_accuracy"]["ci95"].as_array().unwrap().len() == 2
        );
        assert_eq!(
            m["predictions"].as_object().unwrap().len(),
            120,
            "40% of 300 held out"
        );
        assert!(m["groups"].as_array().unwrap().len() == 4);
    }
    let debias_json = dir.path().join("debias.json");
    std::fs::write(&debias_json, &out.stdout).unwrap();
    let out = cliplens(&[
        "audit", "debias", "--model", &world_clip(), "--dir", task.to_str().unwrap(), "--labels", task_labels.to_str().unwrap(),
        "--target", "role", "--group", "rcae",
    ]);
    assert_one_clear_line(&out, "labels.csv: line 1", "no column \"rcae\" for --group");
    let out = cliplens(&[
        "audit", "debias", "--model", &world_clip(), "--dir", task.to_str().unwrap(), "--labels", task_labels.to_str().unwrap(),
        "--target", "role", "--test-share", "1",
    ]);
    assert_one_clear_line(&out, "--test-share", "must be between 0 and 1");
    // NSFW drift needs LAION's zip and a 512-d model: each mistake is one line.
    let judge = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/world-judge").display().to_string();
    let detector = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/laion-safety/clip_autokeras_nsfw_b32.zip").display().to_string();
    let probe = |nsfw: &str| cliplens(&["audit", "probe", "--model", &world_clip(), "--judge", &judge, "--prompt", "a photo of a pilot", "--seeds", "1", "--nsfw", nsfw]);
    assert_one_clear_line(&probe(&detector), "the NSFW-drift probe", "reads OpenAI CLIP ViT-B/32 image embeddings (512 numbers); world-clip has 48");
    assert_one_clear_line(&probe(task_labels.to_str().unwrap()), "labels.csv", "is not a zip file");

    let html = dir.path().join("report.html");
    let csv = dir.path().join("report.csv");
    let out = cliplens(&[
        "audit",
        "report",
        "--in",
        folder_json.to_str().unwrap(),
        "--in",
        debias_json.to_str().unwrap(),
        "--out",
        html.to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("CLIP-perceived")
            && page.contains("<svg")
            && page.contains("clip-debias")
            && !page.contains("http"),
        "self-contained"
    );
    assert!(
        std::fs::read_to_string(&csv)
            .unwrap()
            .lines()
            .any(|l| l.contains("\"ARI\""))
    );
    // Two saved folder audits are compared; a report is itself an input.
    let compare = dir.path().join("compare.html");
    let out = cliplens(&[
        "audit",
        "report",
        "--in",
        folder_json.to_str().unwrap(),
        "--in",
        html.to_str().unwrap(),
        "--out",
        compare.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"kind\": \"nothing\"}").unwrap();
    let out = cliplens(&[
        "audit",
        "report",
        "--in",
        bad.to_str().unwrap(),
        "--out",
        compare.to_str().unwrap(),
    ]);
    assert_one_clear_line(&out, "bad.json", "is not a saved audit");
    let out = cliplens(&[
        "audit",
        "folder",
        "--model",
        &world_clip(),
        "--dir",
        images.to_str().unwrap(),
        "--attribute",
        "group",
    ]);
    assert_one_clear_line(&out, "--attribute \"group\"", "NAME=value1,value2");
}

/// `bench speed` on the tiny model against a saved PyTorch baseline with
/// known timings: the rows, the rates and the ratios follow from the inputs
/// (timings themselves are not checked), and the Markdown section is replaced,
/// not repeated, on a second run.
#[test]
fn bench_speed_harness_computes_rates_and_ratios() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = fixtures().join("tiny").display().to_string();
    // Seconds per call, as tests/bench/torch_speed.py prints them (medians 0.5, 2.0, 0.25, 0.1, 0.004).
    let baseline = serde_json::json!({
        "torch": "test", "transformers": "test", "threads": 1,
        "matmul": {"64": [0.004, 0.004, 0.005]},
        "models": {tiny.clone(): {
            "attention": "sdpa",
            "image": {"1": [0.5, 0.4, 0.6], "4": [2.0, 2.0, 2.0]},
            "text": [0.25, 0.25, 0.25],
            "invert": [0.1, 0.1, 0.1],
        }},
    });
    let baseline_path = dir.path().join("baseline.json");
    std::fs::write(&baseline_path, baseline.to_string()).unwrap();
    let markdown = dir.path().join("BENCHMARKS.md");
    std::fs::write(&markdown, "# Benchmarks\n\nText before.\n").unwrap();
    let args = [
        "bench", "speed", "--model", &tiny, "--runs", "2", "--batch", "1", "--batch", "4", "--texts", "3",
        "--invert-steps", "1", "--invert-views", "2", "--matmul", "64", "--threads", "1",
        "--baseline", baseline_path.to_str().unwrap(), "--markdown", markdown.to_str().unwrap(), "--json",
    ];
    for _ in 0..2 {
        let out = cliplens(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let rows = v["rows"].as_array().unwrap();
        let tasks: Vec<&str> = rows.iter().map(|r| r["task"].as_str().unwrap()).collect();
        assert_eq!(
            tasks,
            ["matmul 64x64 f32", "image embedding, batch 1 (latency)", "image embedding, batch 4 (throughput)", "text embedding, 3 prompts", "inversion step, 2 views"]
        );
        let expected_pytorch = [2.0 * 64f64.powi(3) / 1e9 / 0.004, 1.0 / 0.5, 4.0 / 2.0, 3.0 / 0.25, 1.0 / 0.1];
        for (row, want) in rows.iter().zip(expected_pytorch) {
            let theirs = row["pytorch"].as_f64().unwrap();
            assert!((theirs - want).abs() < 1e-9 * want, "{}: PyTorch {theirs} != {want}", row["task"]);
            let ours = &row["ours"][0];
            assert_eq!(ours["backend"], "Flex CPU");
            let rate = ours["rate"].as_f64().unwrap();
            assert!(rate > 0.0 && rate.is_finite(), "{}: rate {rate}", row["task"]);
            let ratio = ours["vs_pytorch"].as_f64().unwrap();
            assert!((ratio - rate / theirs).abs() < 1e-9 * ratio, "{}: ratio {ratio}", row["task"]);
        }
        // The image rows carry the tower's FLOPs for the share of peak.
        assert!(rows[1]["flops_per_call"].as_f64().unwrap() > 0.0);
        assert!((rows[2]["flops_per_call"].as_f64().unwrap() - 4.0 * rows[1]["flops_per_call"].as_f64().unwrap()).abs() < 1.0);
        assert!(v["peak_matmul_gflops"].as_f64().unwrap() > 0.0);
    }
    let text = std::fs::read_to_string(&markdown).unwrap();
    assert!(text.starts_with("# Benchmarks\n\nText before.\n"), "{text}");
    assert_eq!(text.matches("<!-- bench speed -->").count(), 1, "{text}");
    assert_eq!(text.matches("<!-- /bench speed -->").count(), 1, "{text}");
    assert!(text.contains("| inversion step, 2 views |"), "{text}");
    assert!(text.contains("Baseline: PyTorch test + transformers test (1 threads)"), "{text}");
}

#[test]
fn bench_speed_names_a_baseline_file_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("baseline.json");
    std::fs::write(&bad, "not json").unwrap();
    let tiny = fixtures().join("tiny").display().to_string();
    let out = cliplens(&["bench", "speed", "--model", &tiny, "--runs", "1", "--batch", "1", "--texts", "0", "--invert-steps", "0", "--matmul", "0", "--baseline", bad.to_str().unwrap()]);
    assert_one_clear_line(&out, "baseline.json", "not a saved PyTorch baseline");
}

#[test]
fn bench_browser_builds_its_table_from_a_saved_measurement() {
    let dir = tempfile::tempdir().unwrap();
    let report = |image1: f64, image4: f64, text: f64| {
        serde_json::json!({
            "plan": {"batches": [1, 4], "texts": 8, "runs": 3},
            "image": [{"batch": 1, "seconds": [image1, image1 * 2.0, image1]}, {"batch": 4, "seconds": [image4, image4, image4]}],
            "text": [text, text, text * 3.0],
            "complete": true,
        })
    };
    // As tests/browser/speed.mjs prints it: transformers.js' WebGPU run failed.
    let measured = serde_json::json!({
        "chromium": "test-chromium", "transformers_js": "9.9.9",
        "results": [
            {"contender": "cliplens", "device": "webgpu", "backend": "WebGPU: test", "cold_s": [4.0, 6.0, 5.0], "warm_s": [1.0, 1.0, 1.0], "report": report(0.1, 0.2, 0.05)},
            {"contender": "transformers.js", "device": "webgpu", "error": "no adapter"},
            {"contender": "cliplens", "device": "cpu", "backend": "running on CPU", "cold_s": [3.0], "warm_s": [2.0], "report": report(0.5, 1.0, 0.2)},
            {"contender": "transformers.js", "device": "cpu", "backend": "wasm (fp32, 1 thread(s))", "cold_s": [6.0], "warm_s": [1.0], "report": report(0.25, 2.0, 0.4)},
        ],
    });
    let path = dir.path().join("measured.json");
    std::fs::write(&path, measured.to_string()).unwrap();
    let markdown = dir.path().join("BENCHMARKS.md");
    std::fs::write(&markdown, "# Benchmarks\n").unwrap();
    let args = [
        "bench", "browser", "--measured", path.to_str().unwrap(), "--batch", "1", "--batch", "4", "--texts", "8", "--runs", "3",
        "--markdown", markdown.to_str().unwrap(), "--json",
    ];
    let out = cliplens(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v["rows"].as_array().unwrap();
    let tasks: Vec<&str> = rows.iter().map(|r| r["task"].as_str().unwrap()).collect();
    assert_eq!(
        tasks,
        [
            "image embedding, batch 1 (latency)", "image embedding, batch 4 (throughput)", "text embedding, 8 prompts",
            "navigation to a ready model, cold", "navigation to a ready model, warm",
        ]
    );
    let cell = |row: usize, device: usize, key: &str| rows[row]["cells"][device][key].as_f64();
    // WebGPU: ours from medians (0.1 s, 0.2 s, 0.05 s, 5 s, 1 s); theirs failed, so no ratio.
    for (row, want) in [(0, 10.0), (1, 20.0), (2, 160.0), (3, 5.0), (4, 1.0)] {
        assert!((cell(row, 0, "cliplens").unwrap() - want).abs() < 1e-9, "row {row}: {:?}", rows[row]);
        assert_eq!(cell(row, 0, "transformers_js"), None);
        assert_eq!(cell(row, 0, "ratio"), None);
    }
    // CPU: rates ours / theirs, times theirs / ours (above 1: CLIP Lens is faster).
    for (row, ratio) in [(0, 0.5), (1, 2.0), (2, 2.0), (3, 2.0), (4, 0.5)] {
        assert!((cell(row, 1, "ratio").unwrap() - ratio).abs() < 1e-9, "row {row}: {:?}", rows[row]);
    }
    assert_eq!(v["failures"][0], "transformers.js on webgpu: no adapter");
    let text = std::fs::read_to_string(&markdown).unwrap();
    assert_eq!(text.matches("<!-- bench browser -->").count(), 1, "{text}");
    assert!(text.contains("| image embedding, batch 4 (throughput) | images/s | 20.0 | — | — | 4.00 | 2.00 | **2.00x** |"), "{text}");
    assert!(text.contains("Failed: transformers.js on webgpu: no adapter."), "{text}");

    // Runs saved apart (WebGPU with a smaller plan) make one table: the CPU run's rows stay,
    // the WebGPU run fills only the rows it timed.
    let mut webgpu = measured.clone();
    webgpu["results"] = serde_json::json!([{"contender": "cliplens", "device": "webgpu", "backend": "WebGPU: test", "cold_s": [9.0], "warm_s": [3.0],
        "report": {"plan": {"batches": [1], "texts": 0, "runs": 5}, "image": [{"batch": 1, "seconds": [0.25, 0.25, 0.25, 0.25, 0.25]}], "text": null, "complete": true}}]);
    let mut cpu = measured.clone();
    cpu["results"] = serde_json::json!(measured["results"].as_array().unwrap()[2..]);
    let (webgpu_path, cpu_path) = (dir.path().join("webgpu.json"), dir.path().join("cpu.json"));
    std::fs::write(&webgpu_path, webgpu.to_string()).unwrap();
    std::fs::write(&cpu_path, cpu.to_string()).unwrap();
    let out = cliplens(&["bench", "browser", "--measured", webgpu_path.to_str().unwrap(), "--measured", cpu_path.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 5, "{rows:?}");
    assert_eq!(rows[0]["cells"][0]["cliplens"].as_f64(), Some(4.0));
    assert_eq!(rows[1]["cells"][0]["cliplens"].as_f64(), None);
    assert_eq!(rows[2]["cells"][0]["cliplens"].as_f64(), None);
    assert!((rows[1]["cells"][1]["ratio"].as_f64().unwrap() - 2.0).abs() < 1e-9);

    // A measurement that is not one is named, in one line.
    std::fs::write(&path, "{\"results\": 3}").unwrap();
    let out = cliplens(&["bench", "browser", "--measured", path.to_str().unwrap()]);
    assert_one_clear_line(&out, "measured.json", "unreadable measurement");
}

#[test]
fn probe_gap_on_the_world_closes_the_gap_and_names_bad_pairs() {
    let out = cliplens(&["probe", "gap", "--model", &world_clip(), "--world", "120", "--seed", "3", "--lambda", "0", "--lambda", "1", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["pairs"], 120);
    let gap = json["centroid_distance"].as_f64().unwrap();
    let shifts = json["shifts"].as_array().unwrap();
    // The world model has a gap, and shifting both sets by half the gap vector closes it.
    assert!(gap > 0.1, "{json}");
    assert!((shifts[0]["centroid_distance"].as_f64().unwrap() - gap).abs() < 1e-9);
    assert!(shifts[1]["centroid_distance"].as_f64().unwrap() < 0.1 * gap, "{json}");
    assert!(shifts[0]["zero_shot_accuracy"].as_f64().unwrap() > 0.9, "colour is the world model's easy task: {json}");
    assert_eq!(json["projection"]["images"].as_array().unwrap().len(), 120);

    // Your own pairs: a CSV; a missing image is named with its line, and the rest go on.
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("file,caption,class\n");
    for (i, name) in ["portrait.png", "landscape.jpg", "photo.webp", "palette.gif"].iter().enumerate() {
        std::fs::copy(fixtures().join("images").join(name), dir.path().join(name)).unwrap();
        let class = ["red", "", "blue", "red"][i];
        csv += &format!("{name},a photo number {i},{class}\n");
    }
    csv += "missing.png,a photo of nothing,red\n";
    std::fs::write(dir.path().join("pairs.csv"), csv).unwrap();
    let svg = dir.path().join("gap.svg");
    let pairs = dir.path().join("pairs.csv").display().to_string();
    let csv_out = dir.path().join("gap.csv");
    let out = cliplens(&[
        "probe", "gap", "--model", &world_clip(), "--pairs", &pairs, "--svg", &svg.display().to_string(), "--csv", &csv_out.display().to_string(), "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["pairs"], 4);
    // The class column: three labelled images, so zero-shot accuracy is a share of three.
    let zero_shot = json["shifts"][0]["zero_shot_accuracy"].as_f64().unwrap();
    assert!((zero_shot * 3.0 - (zero_shot * 3.0).round()).abs() < 1e-9, "{json}");
    let problems = json["problems"].as_array().unwrap();
    assert!(problems.len() == 1 && problems[0].as_str().unwrap().contains("line 6") && problems[0].as_str().unwrap().contains("missing.png"), "{json}");
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<title id=\"gap-title\">"));
    let csv = std::fs::read_to_string(&csv_out).unwrap();
    assert_eq!(csv.lines().count(), 1 + gap_lambdas(), "{csv}");
}

fn gap_lambdas() -> usize {
    cliplens::probes::gap::DEFAULT_LAMBDAS.len()
}

#[test]
fn probe_commands_run_on_the_world_and_name_bad_rows_of_your_csvs() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();

    // Attribution of one picture: JSON, SVG and CSV.
    std::fs::copy(fixtures().join("images").join("portrait.png"), dir.path().join("portrait.png")).unwrap();
    let out = cliplens(&[
        "probe", "attribution", "--model", &world_clip(), "--image", &path("portrait.png"), "--prompt", "a photo of a doctor",
        "--steps", "8", "--svg", &path("a.svg"), "--csv", &path("a.csv"), "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["report"]["completeness_error"].as_f64().unwrap() <= 0.01 || json["report"]["ig_steps"] == 256, "{json}");
    assert_eq!(json["report"]["words"].as_array().unwrap().len(), 5);
    assert!(std::fs::read_to_string(path("a.svg")).unwrap().starts_with("<svg"));
    assert_eq!(std::fs::read_to_string(path("a.csv")).unwrap().lines().count(), 1 + 64 * 64);
    let out = cliplens(&["probe", "attribution", "--model", &world_clip(), "--image", &path("portrait.png"), "--prompt", " "]);
    assert!(!out.status.success() && stderr(&out).contains("empty"), "{}", stderr(&out));

    // Concept association on the world.
    let out = cliplens(&["probe", "association", "--model", &world_clip(), "--world", "40", "--seed", "2", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rate = |k: &str| json["report"][k]["rate"]["value"].as_f64().unwrap();
    assert!(rate("two_object") > rate("single_object"), "{json}");

    // Social perception from your CSV: a pair with a missing picture and a pair of three rows are
    // named with their lines; the good pairs are measured, size kept as the intersection.
    for name in ["portrait.png", "landscape.jpg", "photo.webp", "palette.gif"] {
        std::fs::copy(fixtures().join("images").join(name), dir.path().join(name)).unwrap();
    }
    let csv = "pair,attribute,value,file,size\n\
               1,group,glim,portrait.png,small\n1,group,vorn,landscape.jpg,small\n\
               2,group,glim,photo.webp,large\n2,group,vorn,palette.gif,large\n\
               3,group,glim,missing.png,large\n3,group,vorn,palette.gif,large\n\
               4,group,glim,photo.webp,small\n4,group,vorn,palette.gif,small\n4,group,vorn,portrait.png,small\n";
    std::fs::write(dir.path().join("pairs.csv"), csv).unwrap();
    let out = cliplens(&["probe", "social", "--model", &world_clip(), "--pairs", &path("pairs.csv"), "--words", "roles=doctor,nurse", "--template", "a photo of a {}", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let problems: Vec<&str> = json["problems"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    assert!(problems.iter().any(|p| p.contains("line 6") && p.contains("missing.png")), "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("line 8") && p.contains("3 rows")), "{problems:?}");
    let shifts = json["report"]["shifts"].as_array().unwrap();
    assert_eq!(shifts.len(), 3, "warmth, competence and the user's set: {json}");
    assert_eq!(shifts[0]["pairs"], 2);
    assert_eq!(shifts[0]["by_context"].as_array().unwrap().len(), 2);

    // A fooling image against your pictures, one of which is not a picture.
    std::fs::copy(fixtures().join("images").join("not_an_image.png"), dir.path().join("not_an_image.png")).unwrap();
    let out = cliplens(&[
        "probe", "fooling", "--model", &world_clip(), "--prompt", "a photo of a doctor", "--prompt", "a photo of a circle",
        "--images", &path("portrait.png"), &path("not_an_image.png"), &path("photo.webp"), "--steps", "60", "--out", &path("f.png"), "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["problems"][0].as_str().unwrap().contains("not_an_image.png"), "{json}");
    assert_eq!(json["report"]["real_images"], 2);
    assert_eq!(json["report"]["prompts_won"], 2, "{json}");
    assert!(std::fs::metadata(path("f.png")).unwrap().len() > 100);
}
