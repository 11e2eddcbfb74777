//! The worker's jobs: load a model (from the site or picked files), embed
//! prompts, embed images. Per-item problems become per-item results; only a
//! job that cannot run at all fails.

use std::rc::Rc;

use cliplens::clip::{Clip, ModelFiles};
use cliplens::compare::{prepare_image, prompt_problem, thumbnail, truncation_warning};
use cliplens::manifest::Manifest;
use cliplens::preprocess::RgbImage;
use cliplens::protocol::{
    EMBED_CACHE, FromWorker, ItemResult, JobId, MODEL_CACHE, ModelInfo, Progress, ProgressUnit, Thumbnail, cached_embedding, cached_embedding_bytes,
};
use web_sys::File;

use crate::shared::cache::Store;
use crate::shared::net::{FetchError, download, file_bytes, yield_now};
use crate::start::{STATE, image_file, in_hand, is_cancelled, panic_if_test_hook_names, post};

/// Longest side of the previews sent to the page.
const THUMBNAIL_SIDE: usize = 64;
const SITE_MANIFEST: &str = "models/manifest.json";

pub fn progress(job: JobId, stage: impl Into<String>, done: u64, total: u64, unit: ProgressUnit) {
    post(&FromWorker::Progress { job, progress: Progress { stage: stage.into(), done, total, unit } });
}

pub fn loaded_clip() -> Result<Rc<Clip>, String> {
    STATE.with_borrow(|s| s.clip.clone()).ok_or_else(|| "no model is loaded yet".to_string())
}

/// A site model's files, each from the browser's cache or the site and
/// checked against its manifest sha256.
pub struct BundledFiles {
    pub model: ModelFiles,
    /// The model's own image mean (the world models ship one), for concept decomposition.
    pub image_mean: Option<(String, Vec<u8>)>,
    /// Names the weights in caches (manifest id and sha256).
    pub identity: Option<String>,
    pub from_cache: bool,
    /// The weights' sha256 as the manifest lists it.
    pub weights_sha256: String,
}

/// Fetches (or reads from the cache) the files of the site model `id`;
/// `None` when the job was cancelled meanwhile.
pub async fn fetch_bundled(job: JobId, id: &str) -> Result<Option<BundledFiles>, String> {
    let cache = Store::open(MODEL_CACHE).await;
    let manifest_bytes = match download(SITE_MANIFEST, |_, _| true).await {
        Ok((bytes, _)) => {
            if let Some(c) = &cache {
                c.put(SITE_MANIFEST, &bytes).await;
            }
            bytes
        }
        // Offline: the manifest seen last time still names the right files.
        Err(e) => match &cache {
            Some(c) => c.get(SITE_MANIFEST).await.ok_or_else(|| format!("{SITE_MANIFEST}: {e}"))?,
            None => return Err(format!("{SITE_MANIFEST}: {e}")),
        },
    };
    let manifest = Manifest::from_json(&manifest_bytes, SITE_MANIFEST).map_err(|e| e.to_string())?;
    let entry = manifest.find(id).ok_or_else(|| format!("{SITE_MANIFEST}: lists no model `{id}`"))?;
    let wanted = entry.files_to_fetch().map_err(|e| e.to_string())?;
    let mut files = Vec::new();
    let mut from_cache = true;
    for file in wanted {
        let url = format!("models/{}/{}", entry.dir, file.name);
        // The sha256 in the key: a site that updates a model never serves a stale cached copy.
        let key = format!("{url}?sha256={}", file.sha256);
        let hit = match &cache {
            Some(c) => c.get(&key).await.filter(|b| entry.verify(&file.name, b).is_ok()),
            None => None,
        };
        let bytes = match hit {
            Some(bytes) => bytes,
            None => {
                from_cache = false;
                let stage = format!("downloading {}", file.name);
                let bytes = match download(&url, |done, total| {
                    progress(job, stage.clone(), done, total, ProgressUnit::Bytes);
                    !is_cancelled(job)
                })
                .await
                {
                    Ok((bytes, _)) => bytes,
                    Err(FetchError::Cancelled) => return Ok(None),
                    Err(e) => return Err(format!("{url}: {e}")),
                };
                entry.verify(&file.name, &bytes).map_err(|e| e.to_string())?;
                if let Some(c) = &cache {
                    c.put(&key, &bytes).await;
                }
                bytes
            }
        };
        files.push((url, bytes));
    }
    let image_mean = files.iter().position(|(url, _)| url.ends_with("/image_mean.json")).map(|i| files.remove(i));
    let weights = entry.files_to_fetch().ok().and_then(|f| f.last().map(|w| w.sha256.clone())).unwrap_or_default();
    let identity = (!weights.is_empty()).then(|| format!("{}:{weights}", entry.id));
    let model = ModelFiles::from_named_files(id, files).map_err(|e| e.to_string())?;
    Ok(Some(BundledFiles { model, image_mean, identity, from_cache, weights_sha256: weights }))
}

/// A model listed in the site's `models/manifest.json`: each file comes from
/// the browser's cache or the site, and is checked against its sha256 before use.
pub async fn load_bundled(job: JobId, id: &str) -> Result<(), String> {
    let Some(b) = fetch_bundled(job, id).await? else { return Ok(()) };
    install(job, b.model, b.from_cache, "from this site, every file's sha256 checked against its manifest".into(), b.identity).await?;
    let mean = b.image_mean.and_then(|(url, bytes)| {
        let dim = STATE.with_borrow(|s| s.clip.as_ref().map(|c| c.config().projection_dim))?;
        cliplens::concepts::ImageMean::from_json(&bytes, &url, dim).ok()
    });
    STATE.with_borrow_mut(|s| s.image_mean = mean);
    Ok(())
}

/// The site model `id` as a second model beside the loaded one (the probe's
/// judge), kept for the next probe; `None` when the job was cancelled.
pub async fn side_model(job: JobId, id: &str) -> Result<Option<(Rc<Clip>, String)>, String> {
    if let Some(hit) = STATE.with_borrow(|s| s.side_model.as_ref().filter(|(name, _, _)| name == id).map(|(_, c, sha)| (c.clone(), sha.clone()))) {
        return Ok(Some(hit));
    }
    let Some(b) = fetch_bundled(job, id).await? else { return Ok(None) };
    let device = STATE.with_borrow(|s| s.device.clone()).ok_or("the worker has no device yet")?;
    let clip = Rc::new(Clip::load(&b.model, &device).map_err(|e| e.to_string())?);
    STATE.with_borrow_mut(|s| s.side_model = Some((id.to_string(), clip.clone(), b.weights_sha256.clone())));
    Ok(Some((clip, b.weights_sha256)))
}

/// A model from files the user picked (nothing is downloaded or cached).
pub async fn load_files(job: JobId, names: &[String], files: &[File]) -> Result<(), String> {
    let mut named = Vec::new();
    for (name, file) in names.iter().zip(files) {
        progress(job, format!("reading {name}"), named.len() as u64, names.len() as u64, ProgressUnit::Items);
        named.push((name.clone(), file_bytes(file).await.map_err(|e| format!("{name}: {e}"))?));
    }
    let folder = names.first().and_then(|n| n.rsplit_once('/')).map(|(dir, _)| dir).unwrap_or("picked files");
    let model = ModelFiles::from_named_files(folder, named).map_err(|e| e.to_string())?;
    install(job, model, false, "picked from this computer; nothing was cached".into(), None).await
}

/// Loads `files` and makes them the model. The model loaded before stays in
/// use until the new one has loaded: a folder that is not a CLIP, or weights
/// that do not fit their config, fail here and change nothing.
/// `identity` names large weights in caches (a verified sha256 or source);
/// without one they are hashed.
pub async fn install(job: JobId, files: ModelFiles, from_cache: bool, source: String, identity: Option<String>) -> Result<(), String> {
    progress(job, "preparing the model", 0, 1, ProgressUnit::Items);
    let device = STATE.with_borrow(|s| s.device.clone()).ok_or("the worker has no device yet")?;
    let weight_bytes = files.weights.1.len() as u64;
    let weights_sha256 = (files.weights.1.len() <= cliplens::protocol::HASHED_WEIGHTS_MAX_BYTES)
        .then(|| cliplens::quantize::sha256_hex(&files.weights.1));
    let clip = Clip::load(&files, &device).map_err(|e| e.to_string())?;
    let model_key = weights_sha256.clone().or(identity).unwrap_or_else(|| cliplens::quantize::sha256_hex(&files.weights.1));
    drop(files);
    let config = clip.config();
    let info = ModelInfo {
        name: clip.name.clone(),
        format: clip.format,
        image_size: config.vision_config.image_size,
        projection_dim: config.projection_dim,
        logit_scale: clip.logit_scale().await.map_err(|e| e.to_string())?,
        weight_bytes,
        from_cache,
        source,
        weights_sha256,
    };
    STATE.with_borrow_mut(|s| {
        s.clip = Some(Rc::new(clip));
        s.model_key = Some(model_key);
        // The old model's mean and dictionary do not belong to the new one.
        s.image_mean = None;
        s.dictionary = None;
    });
    post(&FromWorker::ModelLoaded { job, model: info });
    Ok(())
}

pub async fn embed_texts(job: JobId, texts: &[String]) -> Result<(), String> {
    let clip = loaded_clip()?;
    let mut results: Vec<ItemResult> = texts
        .iter()
        .map(|t| ItemResult { name: t.clone(), embed: None, error: prompt_problem(t).map(|e| e.to_string()), warning: None, from_cache: false })
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

/// Where [`EMBED_CACHE`] keeps `file`'s result for the loaded model on this
/// device: a hash of the model, backend, input size, file name, size and
/// modification time (a changed file is a new key).
fn embed_cache_key(name: &str, file: &File) -> Option<String> {
    let (model, backend, size) =
        STATE.with_borrow(|s| Some((s.model_key.clone()?, s.backend?, s.clip.as_ref()?.config().vision_config.image_size)))?;
    let identity = format!("{model}|{}|{size}|{name}|{}|{}", backend.as_str(), file.size(), file.last_modified());
    Some(format!("embeddings/{}", cliplens::quantize::sha256_hex(identity.as_bytes())))
}

/// Decodes each file in Rust (the same decoder and preprocessing as the CLI,
/// so the numbers match it), keeps only the model-sized crop, and embeds
/// `batch` at a time. Each image's result is sent as soon as it is known.
/// Results computed before for the same file, model and device come from
/// [`EMBED_CACHE`], so adding a folder again (after a reload too) resumes.
pub async fn embed_images(job: JobId, names: &[String], batch: usize) -> Result<(), String> {
    let clip = loaded_clip()?;
    let batch = batch.max(1);
    let total = names.len() as u64;
    let cache = Store::open(EMBED_CACHE).await;
    let mut pending: Vec<(usize, RgbImage, Option<String>)> = Vec::new();
    let mut done = 0u64;
    let mut from_cache = 0u64;
    for (index, name) in names.iter().enumerate() {
        let Some(file) = image_file(job, index).await else {
            return Ok(()); // cancelled
        };
        in_hand(&[index]);
        panic_if_test_hook_names(name);
        let key = embed_cache_key(name, &file);
        let hit = match (&cache, &key) {
            (Some(c), Some(k)) => c.get(k).await.and_then(|b| cached_embedding(&b)),
            _ => None,
        };
        if let Some((embed, thumbnail)) = hit.filter(|(e, _)| e.len() == clip.config().projection_dim) {
            let result = ItemResult { name: name.clone(), embed: Some(embed), error: None, warning: None, from_cache: true };
            post(&FromWorker::ImageEmbedded { job, index, result, thumbnail: Some(thumbnail) });
            done += 1;
            from_cache += 1;
        } else {
            let prepared = match file_bytes(&file).await {
                Ok(bytes) => prepare_image(&bytes, name, &clip.preprocess).map_err(|e| e.to_string()),
                Err(e) => Err(format!("{name}: {e}")),
            };
            match prepared {
                Ok(crop) => pending.push((index, crop, key)),
                Err(message) => {
                    let result = ItemResult { name: name.clone(), embed: None, error: Some(message), warning: None, from_cache: false };
                    post(&FromWorker::ImageEmbedded { job, index, result, thumbnail: None });
                    done += 1;
                }
            }
        }
        if pending.len() == batch || (index + 1 == names.len() && !pending.is_empty()) {
            let (indices, crops, keys): (Vec<usize>, Vec<RgbImage>, Vec<Option<String>>) =
                pending.drain(..).fold((Vec::new(), Vec::new(), Vec::new()), |(mut i, mut c, mut k), (a, b, d)| {
                    i.push(a);
                    c.push(b);
                    k.push(d);
                    (i, c, k)
                });
            in_hand(&indices);
            let embeds = clip.embed_images(&crops).await.map_err(|e| e.to_string())?;
            for (((i, crop), embed), key) in indices.into_iter().zip(&crops).zip(embeds).zip(keys) {
                let small = thumbnail(crop, THUMBNAIL_SIDE);
                let thumbnail = Thumbnail { width: small.width, height: small.height, rgb: small.pixels };
                if let (Some(c), Some(k)) = (&cache, &key) {
                    c.put(k, &cached_embedding_bytes(&embed, &thumbnail)).await;
                }
                let result = ItemResult { name: names[i].clone(), embed: Some(embed), error: None, warning: None, from_cache: false };
                post(&FromWorker::ImageEmbedded { job, index: i, result, thumbnail: Some(thumbnail) });
                done += 1;
            }
        }
        in_hand(&[]);
        let stage = if from_cache > 0 { format!("embedding images ({from_cache} from this browser's cache)") } else { "embedding images".to_string() };
        progress(job, stage, done, total, ProgressUnit::Items);
        yield_now().await;
    }
    Ok(())
}

/// The Speed page's measurement of the loaded model (`cliplens::speed`, as
/// `cliplens bench speed` times it natively), with progress per call;
/// Cancel stops it between calls and what was timed is reported.
pub async fn measure_speed(job: JobId, plan: &cliplens::speed::SpeedPlan) -> Result<(), String> {
    if let Some(problem) = plan.problem() {
        return Err(problem);
    }
    let clip = loaded_clip()?;
    let performance = crate::shared::net::performance();
    let now = move || performance.as_ref().map_or_else(js_sys::Date::now, |p| p.now()) / 1000.0;
    let report = cliplens::speed::measure(&clip, plan, now, async |done, total| {
        progress(job, "timing", done as u64, total as u64, ProgressUnit::Steps);
        yield_now().await;
        !is_cancelled(job)
    })
    .await
    .map_err(|e| e.to_string())?;
    post(&FromWorker::SpeedMeasured { job, report });
    Ok(())
}
