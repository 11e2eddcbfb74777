//! The worker's jobs: load a model, embed prompts, embed images. Per-item
//! problems become per-item results; only a job that cannot run at all fails.

use std::rc::Rc;

use cliplens::clip::{Clip, ModelFiles};
use cliplens::compare::{prepare_image, prompt_problem, thumbnail, truncation_warning};
use cliplens::manifest::Manifest;
use cliplens::preprocess::RgbImage;
use cliplens::protocol::{FromWorker, ItemResult, JobId, ModelInfo, Progress, Thumbnail};
use cliplens::hub::{FLOAT_WEIGHTS, HubModel, INT8_WEIGHTS, SIDE_FILES, etag_sha256};
use cliplens::quantize::{Provenance, quantize_checkpoint, sha256_hex};
use cliplens::weights::{WeightFile, WeightFormat};
use web_sys::File;

use crate::fetch::{CANCELLED, cached, download, file_bytes, forget, store, yield_now};
use crate::start::{STATE, is_cancelled, post};

/// Images embedded per forward pass (as the CLI does).
const IMAGE_CHUNK: usize = 16;
/// Longest side of the previews sent to the page.
const THUMBNAIL_SIDE: usize = 64;

pub fn progress(job: JobId, stage: impl Into<String>, done: u64, total: u64, unit: &str) {
    post(&FromWorker::Progress { job, progress: Progress { stage: stage.into(), done, total, unit: unit.into() } });
}

pub fn loaded_clip() -> Result<Rc<Clip>, String> {
    STATE.with_borrow(|s| s.clip.clone()).ok_or_else(|| "no model is loaded yet".to_string())
}

/// A model listed in the site's `models/manifest.json`: each file comes from
/// the browser's cache or the site, and is checked against its sha256 before use.
pub async fn load_bundled(job: JobId, id: &str) -> Result<(), String> {
    let manifest_url = "models/manifest.json";
    let manifest_bytes = match download(manifest_url, |_, _| true).await.map(|d| d.bytes) {
        Ok(bytes) => {
            store(manifest_url, &bytes).await;
            bytes
        }
        // Offline: the manifest seen last time still names the right files.
        Err(e) => cached(manifest_url).await.ok_or_else(|| format!("{manifest_url}: {e}"))?,
    };
    let manifest = Manifest::from_json(&manifest_bytes, manifest_url).map_err(|e| e.to_string())?;
    let entry = manifest.find(id).ok_or_else(|| format!("{manifest_url}: lists no model `{id}`"))?;
    let wanted = entry.files_to_fetch().map_err(|e| e.to_string())?;
    let mut files = Vec::new();
    let mut from_cache = true;
    for file in wanted {
        let url = format!("models/{}/{}", entry.dir, file.name);
        // The sha256 in the key: a site that updates a model never serves a stale cached copy.
        let key = format!("{url}?sha256={}", file.sha256);
        let bytes = match cached(&key).await.filter(|b| entry.verify(&file.name, b).is_ok()) {
            Some(bytes) => bytes,
            None => {
                from_cache = false;
                let stage = format!("downloading {}", file.name);
                let bytes = match download(&url, |done, total| {
                    progress(job, stage.clone(), done, total, "bytes");
                    !is_cancelled(job)
                })
                .await
                {
                    Ok(d) => d.bytes,
                    Err(e) if e == CANCELLED => return Ok(()),
                    Err(e) => return Err(format!("{url}: {e}")),
                };
                entry.verify(&file.name, &bytes).map_err(|e| e.to_string())?;
                store(&key, &bytes).await;
                bytes
            }
        };
        files.push((url, bytes));
    }
    let model = ModelFiles::from_named_files(id, files).map_err(|e| e.to_string())?;
    install(job, model, from_cache, "from this site, every file's sha256 checked against its manifest".into()).await
}

/// A model from the Hugging Face Hub (or a mirror): the small files and the
/// float weights are downloaded, the weights quantized to int8 here, and
/// everything cached, so the next load needs no network and no quantizing.
/// The weights are checked against the sha256 the host vouches for in its
/// `ETag` when it sends one (the Hub does for files kept in Git LFS).
pub async fn load_hub(job: JobId, text: &str, hub: &str) -> Result<(), String> {
    let mut fresh_keys = Vec::new();
    let outcome = fetch_hub_model(job, text, hub, &mut fresh_keys).await;
    if outcome.is_err() || is_cancelled(job) {
        // Files that did not make a usable CLIP must not come back from the cache next time.
        for key in &fresh_keys {
            forget(key).await;
        }
    }
    outcome
}

/// [`load_hub`]'s work; `fresh_keys` collects what it added to the cache.
async fn fetch_hub_model(job: JobId, text: &str, hub: &str, fresh_keys: &mut Vec<String>) -> Result<(), String> {
    let model = HubModel::parse(text)?;
    let label = model.label();
    let host = hub.trim_end_matches('/');
    let mut from_cache = true;
    let mut named = Vec::new();
    for (file, required) in SIDE_FILES {
        let key = model.cache_key(hub, file);
        let bytes = match cached(&key).await {
            Some(bytes) => Some(bytes),
            None => {
                from_cache = false;
                let url = model.file_url(hub, file);
                progress(job, format!("downloading {file}"), 0, 0, "bytes");
                match download(&url, |_, _| !is_cancelled(job)).await {
                    Ok(d) => {
                        store(&key, &d.bytes).await;
                        fresh_keys.push(key);
                        Some(d.bytes)
                    }
                    Err(e) if e == CANCELLED => return Ok(()),
                    Err(e) if !required && e.starts_with("HTTP 404") => None,
                    Err(e) if e.starts_with("HTTP 404") && file == "config.json" => {
                        return Err(format!("{host} has no model `{label}` (no {file} at {url})"));
                    }
                    Err(e) => return Err(format!("{url}: {e}")),
                }
            }
        };
        if let Some(bytes) = bytes {
            named.push((file.to_string(), bytes));
        }
    }
    let int8_key = model.cache_key(hub, INT8_WEIGHTS);
    let (int8, checked) = match cached(&int8_key).await {
        Some(bytes) => (bytes, "from this browser's cache".to_string()),
        None => {
            from_cache = false;
            let url = model.file_url(hub, FLOAT_WEIGHTS);
            let stage = format!("downloading {label} {FLOAT_WEIGHTS}");
            let downloaded = match download(&url, |done, total| {
                progress(job, stage.clone(), done, total, "bytes");
                !is_cancelled(job)
            })
            .await
            {
                Ok(d) => d,
                Err(e) if e == CANCELLED => return Ok(()),
                Err(e) if e.starts_with("HTTP 404") => {
                    return Err(format!(
                        "{label} has no {FLOAT_WEIGHTS} on {host}: CLIP Lens reads safetensors weights, not PyTorch .bin files"
                    ));
                }
                Err(e) => return Err(format!("{url}: {e}")),
            };
            let checked = match downloaded.etag.as_deref().and_then(etag_sha256) {
                Some(expected) => {
                    let actual = sha256_hex(&downloaded.bytes);
                    if actual != expected {
                        return Err(format!(
                            "{url}: sha256 {actual} does not match the {expected} that {host} publishes: the download is damaged or was altered; nothing was kept"
                        ));
                    }
                    format!("sha256 checked against {host}'s ETag")
                }
                None => format!("{host} published no sha256 for it, so it is unchecked"),
            };
            progress(job, format!("quantizing {label} to int8"), 0, 1, "items");
            yield_now().await;
            let provenance = Provenance { source_model: label.clone() };
            let int8 = match WeightFile::parse(&downloaded.bytes, &url).map(|f| f.format()) {
                // A repository that already holds CLIP Lens' int8 format.
                Ok(WeightFormat::Int8) => downloaded.bytes,
                _ => quantize_checkpoint(&downloaded.bytes, &url, &provenance).map_err(|e| e.to_string())?,
            };
            store(&int8_key, &int8).await;
            fresh_keys.push(int8_key);
            (int8, format!("{FLOAT_WEIGHTS} {checked}, quantized to int8 in this tab"))
        }
    };
    named.push((INT8_WEIGHTS.to_string(), int8));
    let source = format!("from {host}/{}, {checked}", model.repo);
    let files = ModelFiles::from_named_files(&label, named).map_err(|e| e.to_string())?;
    install(job, files, from_cache, source).await
}

/// A model from files the user picked (nothing is downloaded or cached).
pub async fn load_files(job: JobId, names: &[String], files: &[File]) -> Result<(), String> {
    let mut named = Vec::new();
    for (name, file) in names.iter().zip(files) {
        progress(job, format!("reading {name}"), named.len() as u64, names.len() as u64, "items");
        named.push((name.clone(), file_bytes(file).await.map_err(|e| format!("{name}: {e}"))?));
    }
    let folder = names.first().and_then(|n| n.rsplit_once('/')).map(|(dir, _)| dir).unwrap_or("picked files");
    let model = ModelFiles::from_named_files(folder, named).map_err(|e| e.to_string())?;
    install(job, model, false, "picked from this computer; nothing was cached".into()).await
}

async fn install(job: JobId, files: ModelFiles, from_cache: bool, source: String) -> Result<(), String> {
    progress(job, "preparing the model", 0, 1, "items");
    let device = STATE.with_borrow(|s| s.device.clone()).ok_or("the worker has no device yet")?;
    let weight_bytes = files.weights.1.len() as u64;
    // Drop the old model first: two models need not fit in memory together.
    STATE.with_borrow_mut(|s| s.clip = None);
    let clip = Clip::load(&files, &device).map_err(|e| e.to_string())?;
    let config = clip.config();
    let info = ModelInfo {
        name: clip.name.clone(),
        format: match clip.format {
            WeightFormat::Int8 => "int8".into(),
            _ => "float32".into(),
        },
        image_size: config.vision_config.image_size,
        projection_dim: config.projection_dim,
        logit_scale: clip.logit_scale().await.map_err(|e| e.to_string())?,
        weight_bytes,
        from_cache,
        source,
    };
    STATE.with_borrow_mut(|s| s.clip = Some(Rc::new(clip)));
    post(&FromWorker::ModelLoaded { job, model: info });
    Ok(())
}

pub async fn embed_texts(job: JobId, texts: &[String]) -> Result<(), String> {
    let clip = loaded_clip()?;
    let mut results: Vec<ItemResult> = texts
        .iter()
        .map(|t| ItemResult { name: t.clone(), embed: None, error: prompt_problem(t).map(|e| e.to_string()), warning: None })
        .collect();
    let kept: Vec<usize> = (0..texts.len()).filter(|&i| results[i].error.is_none()).collect();
    let kept_texts: Vec<&str> = kept.iter().map(|&i| texts[i].as_str()).collect();
    let out = clip.embed_texts(&kept_texts).await.map_err(|e| e.to_string())?;
    for ((&i, embed), tokens) in kept.iter().zip(out.embeds).zip(&out.tokens) {
        results[i].warning = truncation_warning(&texts[i], tokens.dropped_tokens, clip.tokenizer.context_length());
        results[i].embed = Some(embed);
    }
    post(&FromWorker::TextsEmbedded { job, texts: results });
    Ok(())
}

/// Decodes each file in Rust (the same decoder and preprocessing as the CLI,
/// so the numbers match it), keeps only the model-sized crop, and embeds in
/// chunks. Each image's result is sent as soon as it is known.
pub async fn embed_images(job: JobId, names: &[String], files: &[File]) -> Result<(), String> {
    let clip = loaded_clip()?;
    let total = names.len() as u64;
    let mut pending: Vec<(usize, RgbImage)> = Vec::new();
    let mut done = 0u64;
    for (index, (name, file)) in names.iter().zip(files).enumerate() {
        if is_cancelled(job) {
            return Ok(());
        }
        let prepared = match file_bytes(file).await {
            Ok(bytes) => prepare_image(&bytes, name, &clip.preprocess).map_err(|e| e.to_string()),
            Err(e) => Err(format!("{name}: {e}")),
        };
        match prepared {
            Ok(crop) => pending.push((index, crop)),
            Err(message) => {
                let result = ItemResult { name: name.clone(), embed: None, error: Some(message), warning: None };
                post(&FromWorker::ImageEmbedded { job, index, result, thumbnail: None });
                done += 1;
            }
        }
        if pending.len() == IMAGE_CHUNK || (index + 1 == names.len() && !pending.is_empty()) {
            let (indices, crops): (Vec<usize>, Vec<RgbImage>) = pending.drain(..).unzip();
            let embeds = clip.embed_images(&crops).await.map_err(|e| e.to_string())?;
            for ((i, crop), embed) in indices.into_iter().zip(&crops).zip(embeds) {
                let small = thumbnail(crop, THUMBNAIL_SIDE);
                let result = ItemResult { name: names[i].clone(), embed: Some(embed), error: None, warning: None };
                let thumbnail = Thumbnail { width: small.width, height: small.height, rgb: small.pixels };
                post(&FromWorker::ImageEmbedded { job, index: i, result, thumbnail: Some(thumbnail) });
                done += 1;
            }
        }
        progress(job, "embedding images", done, total, "items");
        yield_now().await;
    }
    Ok(())
}
