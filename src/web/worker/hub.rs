//! Models from the Hugging Face Hub (or a mirror). The small files are
//! downloaded whole; the float weights stream in by HTTP range requests, a
//! window at a time, and are quantized to int8 tensor by tensor as they
//! arrive, so the worker holds about one float tensor instead of the whole
//! file. After each window the quantized part is saved in the cache: a
//! download that stops (network, Cancel, a closed tab) resumes where it
//! stood. The whole file's sha256 is computed on the way and checked against
//! the one the Hub lists for it.

use cliplens::clip::ModelFiles;
use cliplens::config::ClipConfig;
use cliplens::hub::{FLOAT_WEIGHTS, HubFile, HubModel, INT8_WEIGHTS, SIDE_FILES, etag_sha256, parse_tree};
use cliplens::protocol::{FromWorker, JobId, MODEL_CACHE, ProgressUnit};
use cliplens::quantize::{Provenance, QuantizeCheckpoint, StreamingQuantizer, file_size_from_header, header_length};
use serde::{Deserialize, Serialize};

use crate::jobs::{install, progress};
use crate::shared::cache::Store;
use crate::shared::net::{FetchError, download, stream};
use crate::start::{is_cancelled, post, report_requests};

/// The first request: enough for the header of any CLIP checkpoint.
const HEADER_GUESS: u64 = 256 * 1024;
const MIB: u64 = 1024 * 1024;

/// What the Hub lists for the repository's files, if it answers.
async fn listing(model: &HubModel, hub: &str) -> Result<Vec<HubFile>, String> {
    let (bytes, _) = download(&model.tree_url(hub), |_, _| true).await.map_err(|e| e.to_string())?;
    parse_tree(&bytes)
}

fn keys_present(model: &HubModel, hub: &str) -> Vec<String> {
    std::iter::once(INT8_WEIGHTS).chain(SIDE_FILES.iter().filter(|(_, required)| *required).map(|(f, _)| *f)).map(|f| model.cache_key(hub, f)).collect()
}

/// `ProbeHub`: the download's size (when the Hub lists it) and whether this
/// browser has the model already. Downloads nothing but the listing.
pub async fn probe(job: JobId, text: &str, hub: &str) -> Result<(), String> {
    let model = HubModel::parse(text)?;
    let mut cached = false;
    if let Some(cache) = Store::open(MODEL_CACHE).await {
        cached = true;
        for key in keys_present(&model, hub) {
            cached &= cache.contains(&key).await;
        }
    }
    let download_bytes = if cached {
        None
    } else {
        listing(&model, hub).await.ok().map(|files| {
            let wanted = |p: &str| p == FLOAT_WEIGHTS || SIDE_FILES.iter().any(|(f, _)| *f == p);
            files.iter().filter(|f| wanted(&f.path)).map(|f| f.bytes).sum()
        })
    };
    report_requests();
    post(&FromWorker::HubProbed { job, id: model.label(), download_bytes, cached });
    Ok(())
}

/// `LoadHub`: the model from the cache, or downloaded, checked and quantized.
pub async fn load(job: JobId, text: &str, hub: &str) -> Result<(), String> {
    let model = HubModel::parse(text)?;
    let cache = Store::open(MODEL_CACHE).await;
    let mut fresh_keys = Vec::new();
    let outcome = fetch_and_install(job, &model, hub, cache.as_ref(), &mut fresh_keys).await;
    if outcome.is_err() {
        // Files that did not make a usable CLIP must not come back from the cache next time.
        if let Some(cache) = &cache {
            for key in &fresh_keys {
                cache.delete(key).await;
            }
        }
    }
    outcome
}

async fn fetch_and_install(job: JobId, model: &HubModel, hub: &str, cache: Option<&Store>, fresh_keys: &mut Vec<String>) -> Result<(), String> {
    let label = model.label();
    let host = hub.trim_end_matches('/');
    let mut from_cache = true;
    let mut named = Vec::new();
    for (file, required) in SIDE_FILES {
        let key = model.cache_key(hub, file);
        let hit = match cache {
            Some(c) => c.get(&key).await,
            None => None,
        };
        let bytes = match hit {
            Some(bytes) => Some(bytes),
            None => {
                from_cache = false;
                let url = model.file_url(hub, file);
                progress(job, format!("downloading {file}"), 0, 0, ProgressUnit::Bytes);
                match download(&url, |_, _| !is_cancelled(job)).await {
                    Ok((bytes, _)) => {
                        if let Some(c) = cache {
                            c.put(&key, &bytes).await;
                        }
                        fresh_keys.push(key);
                        Some(bytes)
                    }
                    Err(FetchError::Cancelled) => return Ok(()),
                    Err(e) if !required && e.is_not_found() => None,
                    Err(e) if e.is_not_found() && file == "config.json" => {
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
    let hit = match cache {
        Some(c) => c.get(&int8_key).await,
        None => None,
    };
    let (int8, checked) = match hit {
        Some(bytes) => (bytes, "from this browser's cache".to_string()),
        None => {
            from_cache = false;
            let config = named.iter().find(|(n, _)| n == "config.json").map(|(_, b)| b.as_slice()).unwrap_or_default();
            let config = ClipConfig::from_json(config, &model.file_url(hub, "config.json")).map_err(|e| e.to_string())?;
            let Some((int8, checked)) = stream_and_quantize(job, model, hub, &config, cache).await? else {
                return Ok(()); // cancelled; the part so far is kept for next time
            };
            if let Some(c) = cache {
                c.put(&int8_key, &int8).await;
            }
            fresh_keys.push(int8_key);
            (int8, checked)
        }
    };
    named.push((INT8_WEIGHTS.to_string(), int8));
    let source = format!("from {host}/{}, {checked}", model.repo);
    let files = ModelFiles::from_named_files(&label, named).map_err(|e| e.to_string())?;
    install(job, files, from_cache, source, Some(int8_key_identity(model, hub))).await
}

/// A download in progress, as saved in the cache after each window.
#[derive(Serialize, Deserialize)]
struct Partial {
    checkpoint: QuantizeCheckpoint,
    /// The digest the download will be checked against (it must not change).
    expected_sha256: Option<String>,
    /// Cache keys of the quantized parts, in order.
    segments: Vec<String>,
}

struct PartialStore<'a> {
    cache: &'a Store,
    prefix: String,
}

impl PartialStore<'_> {
    fn state_key(&self) -> String {
        format!("{}/state", self.prefix)
    }

    async fn load(&self) -> Option<(Partial, Vec<Vec<u8>>)> {
        let state: Partial = serde_json::from_slice(&self.cache.get(&self.state_key()).await?).ok()?;
        let mut segments = Vec::new();
        for key in &state.segments {
            segments.push(self.cache.get(key).await?);
        }
        Some((state, segments))
    }

    async fn save(&self, state: &mut Partial, segment: &[u8]) {
        let key = format!("{}/segment-{}", self.prefix, state.checkpoint.offset);
        if self.cache.put(&key, segment).await {
            state.segments.push(key);
            if let Ok(json) = serde_json::to_vec(state) {
                self.cache.put(&self.state_key(), &json).await;
            }
        }
    }

    async fn discard(&self) {
        if let Some(state) = self.cache.get(&self.state_key()).await.and_then(|b| serde_json::from_slice::<Partial>(&b).ok()) {
            for key in state.segments {
                self.cache.delete(&key).await;
            }
        }
        self.cache.delete(&self.state_key()).await;
    }
}

/// Reads the first `len` bytes of `url` (fewer if the file is shorter).
async fn head_bytes(job: JobId, url: &str, len: u64) -> Result<Vec<u8>, FetchError> {
    let mut bytes = Vec::new();
    let outcome = stream(url, Some((0, len)), |_, chunk| {
        let take = (len as usize - bytes.len()).min(chunk.len());
        bytes.extend_from_slice(&chunk[..take]);
        // A server that ignores the range sends the whole file: stop at `len`.
        Ok(bytes.len() < len as usize && !is_cancelled(job))
    })
    .await;
    match outcome {
        Ok(_) => Ok(bytes),
        Err(FetchError::Cancelled) if bytes.len() == len as usize => Ok(bytes),
        Err(e) => Err(e),
    }
}

/// The int8 file and a sentence on how it was checked; `None` when cancelled.
async fn stream_and_quantize(job: JobId, model: &HubModel, hub: &str, config: &ClipConfig, cache: Option<&Store>) -> Result<Option<(Vec<u8>, String)>, String> {
    let label = model.label();
    let host = hub.trim_end_matches('/');
    let url = model.file_url(hub, FLOAT_WEIGHTS);
    let no_weights = || format!("{label} has no {FLOAT_WEIGHTS} on {host}: CLIP Lens reads safetensors weights, not PyTorch .bin files");
    // The digest to check against comes from the Hub's file listing, read on
    // the Hub itself: the weights' own host (a CDN the Hub redirects to) may
    // not say, or say something else.
    let listed = listing(model, hub).await.ok().and_then(|files| files.into_iter().find(|f| f.path == FLOAT_WEIGHTS));
    let stage = format!("downloading {label} {FLOAT_WEIGHTS}, quantizing as it arrives");
    progress(job, stage.clone(), 0, listed.as_ref().map_or(0, |f| f.bytes), ProgressUnit::Bytes);
    let mut header = match head_bytes(job, &url, HEADER_GUESS).await {
        Ok(bytes) => bytes,
        Err(FetchError::Cancelled) => return Ok(None),
        Err(e) if e.is_not_found() => return Err(no_weights()),
        Err(e) => return Err(format!("{url}: {e}")),
    };
    let header_len = header_length(&header, &url).map_err(|e| e.to_string())?;
    if header.len() < header_len {
        header = match head_bytes(job, &url, header_len as u64).await {
            Ok(bytes) => bytes,
            Err(FetchError::Cancelled) => return Ok(None),
            Err(e) => return Err(format!("{url}: {e}")),
        };
    }
    if header.len() < header_len {
        return Err(format!("{url}: truncated: the file ends inside its own header"));
    }
    header.truncate(header_len);
    let size = file_size_from_header(&header, &url).map_err(|e| e.to_string())?;
    if let Some(listed) = listed.as_ref().filter(|l| l.bytes != size) {
        return Err(format!("{url}: the Hub lists {} bytes but the file's header describes {size}", listed.bytes));
    }
    let provenance = Provenance { source_model: label.clone() };
    let mut quantizer = StreamingQuantizer::new(&header, &url, &provenance, size).map_err(|e| e.to_string())?;
    if !quantizer.passes_through() {
        // Not this model (or not a CLIP at all): say so before downloading it.
        config.check_key_tensors(&url, "config.json", |name| quantizer.shape_of(name)).map_err(|e| e.to_string())?;
    }
    let expected = listed.as_ref().and_then(|l| l.sha256.clone());
    let partial = cache.map(|cache| PartialStore { cache, prefix: model.cache_key(hub, &format!("{FLOAT_WEIGHTS}.partial")) });
    let mut state = Partial { checkpoint: quantizer.checkpoint(), expected_sha256: expected.clone(), segments: Vec::new() };
    if let Some(p) = &partial {
        match p.load().await {
            Some((saved, segments)) if saved.expected_sha256 == expected => {
                let pieces: Vec<&[u8]> = segments.iter().map(Vec::as_slice).collect();
                match quantizer.restore(&saved.checkpoint, &pieces) {
                    Ok(()) => state = saved,
                    Err(_) => p.discard().await,
                }
            }
            Some(_) => p.discard().await,
            None => {}
        }
    }
    // Windows of about an eighth of the file (1 to 32 MiB), each ending at a tensor's end.
    let window = (size / 8).clamp(MIB, 32 * MIB);
    let mut etag_digest = None;
    while !quantizer.is_complete() {
        if is_cancelled(job) {
            return Ok(None);
        }
        let start = quantizer.offset();
        let end = quantizer.next_boundary(start + window).min(size);
        let mut skip = 0u64;
        let outcome = stream(&url, Some((start, end)), |info, chunk| {
            // 200 instead of 206: the server sent the whole file; skip what we have.
            if info.status == 200 && skip < start {
                let drop = ((start - skip) as usize).min(chunk.len());
                skip += drop as u64;
                if drop == chunk.len() {
                    return Ok(true);
                }
                quantizer.feed(&chunk[drop..]).map_err(|e| e.to_string())?;
            } else {
                quantizer.feed(chunk).map_err(|e| e.to_string())?;
            }
            progress(job, stage.clone(), quantizer.offset(), size, ProgressUnit::Bytes);
            Ok(!is_cancelled(job))
        })
        .await;
        // Whatever happened, keep the whole tensors that arrived.
        let now = quantizer.checkpoint();
        if let Some(p) = &partial
            && now.offset > state.checkpoint.offset
        {
            let segment = quantizer.segment(&state.checkpoint, &now);
            state.checkpoint = now;
            p.save(&mut state, &segment).await;
        }
        report_requests();
        match outcome {
            Ok(info) => {
                etag_digest = etag_digest.or(info.etag.as_deref().and_then(etag_sha256));
                if info.status == 206 && quantizer.offset() != end {
                    return Err(format!("{url}: asked for bytes {start}-{end}, the server sent {} bytes", quantizer.offset() - start));
                }
            }
            Err(FetchError::Cancelled) => return Ok(None),
            Err(FetchError::Rejected(e)) => {
                if let Some(p) = &partial {
                    p.discard().await;
                }
                return Err(e);
            }
            Err(e) => {
                let kept = if partial.is_some() {
                    format!("; {:.1} of {:.1} MB are kept: fetch it again to resume", state.checkpoint.offset as f64 / 1e6, size as f64 / 1e6)
                } else {
                    String::new()
                };
                return Err(format!("{url}: {e}{kept}"));
            }
        }
    }
    let digest = expected.clone().or(etag_digest);
    let finished = quantizer.finish(digest.as_deref()).map_err(|e| e.to_string());
    if let Some(p) = &partial {
        p.discard().await;
    }
    let (int8, _) = finished?;
    let checked = match (expected, digest) {
        (Some(_), _) => format!("{FLOAT_WEIGHTS} sha256 checked against {host}'s file list"),
        (None, Some(_)) => format!("{FLOAT_WEIGHTS} sha256 checked against its ETag"),
        (None, None) => format!("{FLOAT_WEIGHTS} NOT checked: {host} published no sha256 for it"),
    };
    Ok(Some((int8, format!("{checked}, quantized to int8 in this tab as it arrived"))))
}

/// The cache identity of a Hub model's int8 weights: the model, revision and
/// mirror they were made from.
fn int8_key_identity(model: &HubModel, hub: &str) -> String {
    model.cache_key(hub, INT8_WEIGHTS)
}
