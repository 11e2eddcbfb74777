//! The messages between the web app's page and its compute worker. Plain serde
//! types (no web types): the page and the worker each convert them to and from
//! JS values at their edge. Files the user picked travel beside a message, in
//! the order of its `names`, because they cannot be serialized.

use serde::{Deserialize, Serialize};

use crate::invert::InvertSettings;
use crate::invert::output::InversionRecord;

/// The browser Cache Storage bucket for model files: the worker fills it, the
/// page's "delete cached models" control removes it.
pub const MODEL_CACHE: &str = "cliplens-models-v1";

/// A job number chosen by the page; progress and results carry it back.
pub type JobId = u32;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToWorker {
    /// First message: pick the compute device. `prefer_gpu: false` forces the CPU.
    Init { prefer_gpu: bool },
    /// Load a model the site serves: an entry of `models/manifest.json`.
    LoadBundled { job: JobId, id: String },
    /// Load a model from the Hugging Face Hub (or a mirror at `hub`): the
    /// float weights are downloaded once, quantized to int8 in the worker and
    /// cached. `id` is what the user typed (`owner/name[@revision]`).
    LoadHub { job: JobId, id: String, hub: String },
    /// Load a model from files the user picked (`config.json`, `tokenizer.json`,
    /// a `.safetensors`, optionally `preprocessor_config.json`).
    LoadFiles { job: JobId, names: Vec<String> },
    /// Embed prompts with the loaded model.
    EmbedTexts { job: JobId, texts: Vec<String> },
    /// Decode and embed images (the files travel beside the message).
    EmbedImages { job: JobId, names: Vec<String> },
    /// Invert with the loaded model: optimize an image towards `prompt` (an
    /// expression of weighted prompts; may be empty when images are given)
    /// plus the images named in `target_images` (their files travel beside
    /// the message), with `settings`.
    Invert { job: JobId, prompt: String, target_images: Vec<String>, settings: InvertSettings },
    /// Hold a running inversion between steps, and let it go on.
    Pause { job: JobId },
    Resume { job: JobId },
    /// Stop a running or queued job; results sent so far stay valid.
    Cancel { job: JobId },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromWorker {
    /// The worker's code has loaded; it waits for `Init`.
    Started,
    /// The device is ready; jobs may be sent.
    Ready { backend: BackendInfo },
    Progress { job: JobId, progress: Progress },
    ModelLoaded { job: JobId, model: ModelInfo },
    /// One result per prompt, in order.
    TextsEmbedded { job: JobId, texts: Vec<ItemResult> },
    /// One image's result, sent as soon as it is known.
    ImageEmbedded { job: JobId, index: usize, result: ItemResult, thumbnail: Option<Thumbnail> },
    /// An inversion step: the mean similarity of its augmented views.
    InvertStep { job: JobId, step: usize, steps: usize, similarity: f32, resolution: usize },
    /// The inversion holds (paused: true) or goes on again, after `step` steps.
    InvertHeld { job: JobId, paused: bool, step: usize },
    /// The inversion saw its Cancel: it stops after the step in progress,
    /// and its image so far follows as `Inverted`, unless it stopped before
    /// its first step (`steps_done` 0: there is no image worth keeping).
    InvertStopped { job: JobId, steps_done: usize },
    /// The image as it stands after `step`.
    InvertPreview { job: JobId, step: usize, image: Thumbnail },
    /// The final (or, when cancelled, the last) image as a PNG carrying `record`.
    Inverted {
        job: JobId,
        #[serde(with = "serde_bytes")]
        png: Vec<u8>,
        image: Thumbnail,
        record: InversionRecord,
        /// Prompts that lost tokens to the context length.
        warnings: Vec<String>,
    },
    /// The job ended: completely, or early because it was cancelled.
    Finished { job: JobId, cancelled: bool },
    /// The job could not run at all (no model, unusable weights...).
    Failed { job: JobId, message: String },
}

/// Where compute runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BackendInfo {
    /// `"webgpu"` or `"cpu"`.
    pub kind: String,
    /// The GPU adapter as the browser names it, or a description of the CPU path.
    pub name: String,
    /// Why the CPU is used although a GPU was preferred.
    pub fallback_reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// What is happening, e.g. "downloading model.int8.safetensors".
    pub stage: String,
    pub done: u64,
    pub total: u64,
    /// `"items"` or `"bytes"`: the unit of `done` and `total`.
    pub unit: String,
}

impl Progress {
    /// Seconds left at the pace so far, once there is a pace to go by.
    pub fn eta_seconds(&self, elapsed_seconds: f64) -> Option<f64> {
        (self.done > 0 && self.total >= self.done && elapsed_seconds > 0.0)
            .then(|| elapsed_seconds / self.done as f64 * (self.total - self.done) as f64)
    }

    /// Share done, 0 to 1 (0 while the total is unknown).
    pub fn fraction(&self) -> f64 {
        if self.total == 0 { 0.0 } else { (self.done as f64 / self.total as f64).min(1.0) }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub name: String,
    /// `"float32"` or `"int8"`.
    pub format: String,
    pub image_size: usize,
    pub projection_dim: usize,
    /// `exp(logit_scale)`, the factor from cosine to zero-shot logits.
    pub logit_scale: f32,
    /// Bytes of weights loaded.
    pub weight_bytes: u64,
    /// Whether the files came from the browser's cache (no download).
    pub from_cache: bool,
    /// Where the files came from and how they were checked, in a sentence.
    pub source: String,
}

/// One input's outcome: an L2-normalized embedding, or a one-line message
/// naming the input and the problem. Warnings accompany a usable embedding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ItemResult {
    pub name: String,
    pub embed: Option<Vec<f32>>,
    pub error: Option<String>,
    pub warning: Option<String>,
}

/// A small RGB preview of what the model sees (the center crop), row-major.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Thumbnail {
    pub width: usize,
    pub height: usize,
    #[serde(with = "serde_bytes")]
    pub rgb: Vec<u8>,
}
