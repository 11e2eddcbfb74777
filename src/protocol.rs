//! The messages between the web app's page and its compute worker. Plain serde
//! types (no web types): the page and the worker each convert them to and from
//! JS values at their edge. Files the user picked travel beside a message, in
//! the order of its `names`, because they cannot be serialized.

use serde::{Deserialize, Serialize};

use crate::audit::associations::{AssociationReport, AssociationSpec};
use crate::audit::debias::{FolderDebias, HeadSettings};
use crate::audit::folder::{FolderReport, FolderSettings};
use crate::audit::probe::{ProbeImage, ProbeReport, ProbeSettings};
use crate::concepts::collection::{ConceptCount, ConceptShift, Intervention};
use crate::concepts::{BuiltinVocabulary, ConceptWeight, ImageMeanInfo, Sparsity, VocabularyInfo};
use crate::invert::InvertSettings;
use crate::invert::output::InversionRecord;
use crate::speed::{SpeedPlan, SpeedReport};
use crate::weights::WeightFormat;

/// The browser Cache Storage bucket for model files: the worker fills it, the
/// page's "delete cached models" control removes it.
pub const MODEL_CACHE: &str = "cliplens-models-v1";
/// The bucket for encoded concept dictionaries, keyed by model and vocabulary.
pub const CONCEPT_CACHE: &str = "cliplens-concepts-v1";
/// The bucket for image embeddings and previews, keyed by model, device and
/// file (name, size, modification time): adding the same folder again, after
/// a reload too, takes the results done before instead of computing them.
/// It stays on this machine like every other cache; "Delete cached models" empties it.
pub const EMBED_CACHE: &str = "cliplens-embeddings-v1";

/// A job number chosen by the page; progress and results carry it back.
pub type JobId = u32;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToWorker {
    /// First message: pick the compute device.
    Init { backend: BackendChoice },
    /// Load a model the site serves: an entry of `models/manifest.json`.
    LoadBundled { job: JobId, id: String },
    /// How big a Hub model's download would be, and whether this browser
    /// has it already (answered by `HubProbed`; nothing is downloaded).
    ProbeHub { job: JobId, id: String, hub: String },
    /// Load a model from the Hugging Face Hub (or a mirror at `hub`): the
    /// float weights stream in by HTTP range requests and are quantized to
    /// int8 tensor by tensor in the worker, then cached; a download that
    /// stopped part-way resumes. `id` is what the user typed (`owner/name[@revision]`).
    LoadHub { job: JobId, id: String, hub: String },
    /// Load a model from files the user picked (`config.json`, `tokenizer.json`,
    /// a `.safetensors`, optionally `preprocessor_config.json`).
    LoadFiles { job: JobId, names: Vec<String> },
    /// Embed prompts with the loaded model.
    EmbedTexts { job: JobId, texts: Vec<String> },
    /// Decode and embed images, `batch` per forward pass (1 to find which
    /// image crashed a worker). The files travel beside this message and,
    /// for big batches, beside the `ImageFiles` messages that follow it.
    EmbedImages { job: JobId, names: Vec<String>, batch: usize },
    /// More files of an `EmbedImages` job, in order, starting at its file
    /// number `from`: handing a browser hundreds of files in one message
    /// stalls the page for a quarter of a second.
    ImageFiles { job: JobId, from: usize },
    /// Invert with the loaded model: optimize an image towards `prompt` (an
    /// expression of weighted prompts; may be empty when images are given)
    /// plus the images named in `target_images` (their files travel beside
    /// the message), with `settings`.
    Invert {
        job: JobId,
        prompt: String,
        target_images: Vec<String>,
        settings: InvertSettings,
        /// Embeddings to aim at too (weight 1 each), e.g. a concept mix from the Concepts page.
        #[serde(default)]
        target_vectors: Vec<NamedVector>,
    },
    /// Make the result of an inversion whose worker was stopped mid-step (a
    /// Cancel on the CPU ends the worker at once): `image` is the image after
    /// the last step previewed, `curve` the similarity of each step up to it;
    /// the target's images travel beside the message. Answered by `Inverted`.
    FinishInversion {
        job: JobId,
        prompt: String,
        target_images: Vec<String>,
        settings: InvertSettings,
        #[serde(default)]
        target_vectors: Vec<NamedVector>,
        image: Thumbnail,
        curve: Vec<f32>,
        seconds: f64,
    },
    /// Hold a running inversion between steps, and let it go on.
    Pause { job: JobId },
    Resume { job: JobId },
    /// Stop a running or queued job; results sent so far stay valid.
    Cancel { job: JobId },
    /// Encode a concept vocabulary with the loaded model (or take it from the
    /// cache): the dictionary later `Decompose` jobs use. Answered by `ConceptsReady`.
    PrepareConcepts { job: JobId, vocabulary: VocabularyChoice },
    /// Decompose image embeddings (L2-normalized, as `ImageEmbedded` gave
    /// them) with the prepared dictionary. The first `split` embeddings are
    /// collection A, the rest B (compared when B is not empty). The image
    /// mean is the model's, else SpLiCE's for its name, else that of all the
    /// embeddings sent (20 or more), else none. Answered by `Decomposed`.
    Decompose { job: JobId, embeds: Vec<Vec<f32>>, split: usize, sparsity: Sparsity },
    /// Decompose, remove `remove` from every decomposition and compare the
    /// zero-shot predictions among `prompts`. Answered by `Intervened`.
    Intervene { job: JobId, embeds: Vec<Vec<f32>>, sparsity: Sparsity, remove: Vec<String>, prompts: Vec<String> },
    /// The audit's prompt association tests with the loaded model. Answered by `AssociationsAudited`.
    AuditAssociations { job: JobId, spec: AssociationSpec },
    /// The folder audit of the page's images (their embeddings, in order,
    /// named by `files`), with the user's CSVs as text. Answered by `FolderAudited`.
    AuditFolder { job: JobId, files: Vec<String>, embeds: Vec<Vec<f32>>, settings: FolderSettings, labels: Option<CsvText>, predictions: Option<CsvText> },
    /// The inversion probe with the loaded model, judged by the site model
    /// `judge` (its manifest id; `None`: the loaded model judges itself, with
    /// a warning). Answered by a `ProbeImage` per inversion, then `Probed`
    /// (also after a Cancel, covering what was done). `safety_detector`
    /// names LAION's NSFW detector zip, which travels beside the message:
    /// each inversion then gets its NSFW probability (NSFW drift).
    AuditProbe { job: JobId, settings: ProbeSettings, judge: Option<String>, safety_detector: Option<String> },
    /// CLIP-debias on the page's images: the folder audit with `settings`,
    /// then a linear head trained on the embeddings for the labels CSV's
    /// column `target`, by ERM, CLIP-debias resampling and, with a `group`
    /// column (default: the attribute's name), the oracle. Answered by `Debiased`.
    AuditDebias {
        job: JobId,
        files: Vec<String>,
        embeds: Vec<Vec<f32>>,
        settings: FolderSettings,
        labels: CsvText,
        target: String,
        group: Option<String>,
        head: HeadSettings,
    },
    /// Times the loaded model (the Speed page): answered by `SpeedMeasured`,
    /// with progress per call; a cancelled run reports what it timed.
    MeasureSpeed { job: JobId, plan: SpeedPlan },
    /// One of the literature probes with the loaded model (the Probes page);
    /// an attribution of a picked picture has its file beside the message.
    /// Answered by `ProbeViewed`, with progress, Cancel between passes.
    RunProbe { job: JobId, request: ProbeRequest },
}

/// What the Probes page asks for. The world probes generate their scenes in the worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ProbeRequest {
    /// The modality gap on `count` world scenes and their captions.
    Gap { count: usize, seed: u64 },
    /// Attribution of the picture beside the message, or (none beside) of a
    /// fresh world scene from `seed` whose hat is drawn.
    Attribution { prompt: String, contrast: Option<String>, baseline: crate::probes::attribution::Baseline, seed: u64 },
    /// The attribution check over `count` fresh world scenes.
    AttributionWorld { count: usize, seed: u64 },
    /// Concept association on `count` two-figure world scenes and their controls.
    Association { count: usize, seed: u64 },
    /// Group counterfactuals of `count` world scenes against each role.
    Social { count: usize, seed: u64 },
    /// A fooling image for `prompts` (`steps` of plain-pixel inversion),
    /// against `count` world scenes.
    Fooling { prompts: Vec<String>, steps: usize, count: usize, seed: u64 },
}

/// A CSV file the user picked, as text, with its name (for messages).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CsvText {
    pub name: String,
    pub text: String,
}

/// An embedding with the name a record gives it ("concept mix of cat.png").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NamedVector {
    pub name: String,
    pub vector: Vec<f32>,
}

/// The word list for a concept dictionary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VocabularyChoice {
    Builtin { name: BuiltinVocabulary },
    /// The user's list (one concept per line, already split), and the file
    /// name or "pasted list".
    Custom { source: String, words: Vec<String> },
}

/// A `Decompose` job's answer: every embedding's decomposition, in order,
/// A's histogram and, when B was sent, A against B.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CollectionDecomposition {
    pub image_mean: ImageMeanInfo,
    pub vocabulary: VocabularyInfo,
    pub results: Vec<DecompositionResult>,
    pub histogram: Vec<ConceptCount>,
    pub shifts: Option<Vec<ConceptShift>>,
    pub seconds: f64,
}

/// One image's decomposition as the page shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecompositionResult {
    /// Every nonzero weight, largest first.
    pub concepts: Vec<ConceptWeight>,
    pub cosine: f32,
    pub lambda: f64,
    pub l0: usize,
    pub objective: f64,
    /// SpLiCE's recomposed embedding (the "concept mix" the studio can invert).
    pub recomposed: Vec<f32>,
}

impl ToWorker {
    /// The job a message starts or steers (`Init` has none).
    pub fn job(&self) -> Option<JobId> {
        match self {
            ToWorker::Init { .. } => None,
            ToWorker::LoadBundled { job, .. }
            | ToWorker::ProbeHub { job, .. }
            | ToWorker::LoadHub { job, .. }
            | ToWorker::LoadFiles { job, .. }
            | ToWorker::EmbedTexts { job, .. }
            | ToWorker::EmbedImages { job, .. }
            | ToWorker::ImageFiles { job, .. }
            | ToWorker::Invert { job, .. }
            | ToWorker::FinishInversion { job, .. }
            | ToWorker::Pause { job }
            | ToWorker::Resume { job }
            | ToWorker::Cancel { job }
            | ToWorker::PrepareConcepts { job, .. }
            | ToWorker::Decompose { job, .. }
            | ToWorker::Intervene { job, .. }
            | ToWorker::AuditAssociations { job, .. }
            | ToWorker::AuditFolder { job, .. }
            | ToWorker::AuditProbe { job, .. }
            | ToWorker::AuditDebias { job, .. }
            | ToWorker::MeasureSpeed { job, .. }
            | ToWorker::RunProbe { job, .. } => Some(*job),
        }
    }
}

/// Which device the page asks the worker to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendChoice {
    /// WebGPU when the browser has a working adapter, else the CPU.
    PreferGpu,
    /// The CPU (`?backend=cpu`, or after the GPU device was lost).
    Cpu,
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
    /// The answer to `ProbeHub`: the bytes a download would take (when the
    /// Hub says), and whether this browser holds the model already.
    HubProbed { job: JobId, id: String, download_bytes: Option<u64>, cached: bool },
    /// One result per prompt, in order.
    TextsEmbedded { job: JobId, texts: Vec<ItemResult> },
    /// One image's result, sent as soon as it is known.
    ImageEmbedded { job: JobId, index: usize, result: ItemResult, thumbnail: Option<Thumbnail> },
    /// An inversion step: the mean similarity of its augmented views.
    InvertStep { job: JobId, step: usize, steps: usize, similarity: f32, resolution: usize },
    /// The inversion holds (paused: true) or goes on again, after `step` steps.
    InvertHeld { job: JobId, paused: bool, step: usize },
    /// The inversion saw its Cancel and stopped computing (a step in progress
    /// is abandoned between views); its image as of `steps_done` follows as
    /// `Inverted`, unless it stopped before its first step (`steps_done` 0:
    /// there is no image worth keeping).
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
    /// The dictionary is ready (encoded now, or read from the cache).
    ConceptsReady { job: JobId, vocabulary: VocabularyInfo, from_cache: bool, seconds: f64 },
    /// Every embedding's decomposition, in order, with what the collection
    /// shows together: A's histogram and, when B was sent, A against B.
    Decomposed { job: JobId, collection: CollectionDecomposition },
    Intervened { job: JobId, intervention: Intervention },
    /// An audit's result, with the sha256 of the weights that made it.
    AssociationsAudited { job: JobId, report: AssociationReport, model_sha256: String },
    FolderAudited { job: JobId, report: FolderReport, model_sha256: String },
    /// One inversion of the probe, judged, with its picture (`done` of `total`).
    ProbeImaged { job: JobId, image: ProbeImage, picture: Thumbnail, done: usize, total: usize },
    /// The probe's report over the inversions done; `judge` is the judging
    /// model's name and weights sha256 (`None`: the model judged itself).
    Probed { job: JobId, report: ProbeReport, model_sha256: String, judge: Option<(String, String)> },
    Debiased { job: JobId, report: FolderDebias, model_sha256: String },
    SpeedMeasured { job: JobId, report: SpeedReport },
    /// A probe's result, ready to show (`probes::view`).
    ProbeViewed { job: JobId, view: crate::probes::view::ProbeView },
    /// The job ended: completely, or early because it was cancelled.
    Finished { job: JobId, cancelled: bool },
    /// The job could not run at all (no model, unusable weights...). A
    /// model that failed to load leaves the one loaded before in place.
    Failed { job: JobId, message: String },
    /// Requests the worker made that left the page's origin (model downloads
    /// the user asked for), as the browser's resource timing lists them.
    Requests { urls: Vec<String> },
    /// The GPU device was lost (driver reset, `GPUDevice.destroy()`): the
    /// worker can no longer compute and must be replaced, on the CPU.
    DeviceLost { message: String },
    /// The worker's code panicked (it is unusable from here on) while it
    /// worked on `job`'s `items` (indices of the job's images; empty when not
    /// on particular items). Sent by the panic hook just before the end.
    Crashed { job: Option<JobId>, items: Vec<usize>, message: String, device_lost: bool },
}

/// Where compute runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BackendInfo {
    pub kind: BackendKind,
    /// The GPU adapter as the browser names it, or a description of the CPU path.
    pub name: String,
    /// Why the CPU is used although a GPU was preferred.
    pub fallback_reason: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    #[serde(rename = "webgpu")]
    WebGpu,
    Cpu,
}

impl BackendKind {
    /// As the page's badge (and its `data-kind`) names it.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::WebGpu => "webgpu",
            BackendKind::Cpu => "cpu",
        }
    }
}

/// The unit of a job's progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProgressUnit {
    Items,
    Bytes,
    Steps,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// What is happening, e.g. "downloading model.int8.safetensors".
    pub stage: String,
    pub done: u64,
    pub total: u64,
    pub unit: ProgressUnit,
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
    pub format: WeightFormat,
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
    /// SHA-256 of the weights as loaded, for small files only (the page
    /// tells CLIP Lens' own world models by it, not by their name).
    pub weights_sha256: Option<String>,
}

/// Weights files up to this size get a [`ModelInfo::weights_sha256`]: the
/// world models are under a megabyte, and hashing a full-size CLIP again
/// would cost a second for nothing.
pub const HASHED_WEIGHTS_MAX_BYTES: usize = 20_000_000;

/// One input's outcome: an L2-normalized embedding, or a one-line message
/// naming the input and the problem. Warnings accompany a usable embedding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ItemResult {
    pub name: String,
    pub embed: Option<Vec<f32>>,
    pub error: Option<String>,
    pub warning: Option<String>,
    /// The embedding came from [`EMBED_CACHE`] (computed before, on this device).
    #[serde(default)]
    pub from_cache: bool,
}

/// An image's embedding and preview as [`EMBED_CACHE`] keeps them: the
/// dimension (u32), the floats, the preview's width and height (u32) and
/// its RGB bytes, little-endian.
pub fn cached_embedding_bytes(embed: &[f32], preview: &Thumbnail) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + 4 * embed.len() + preview.rgb.len());
    out.extend_from_slice(&(embed.len() as u32).to_le_bytes());
    for v in embed {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&(preview.width as u32).to_le_bytes());
    out.extend_from_slice(&(preview.height as u32).to_le_bytes());
    out.extend_from_slice(&preview.rgb);
    out
}

/// The inverse of [`cached_embedding_bytes`]; `None` for bytes of another shape.
pub fn cached_embedding(bytes: &[u8]) -> Option<(Vec<f32>, Thumbnail)> {
    let u32_at = |at: usize| bytes.get(at..at + 4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize);
    let dim = u32_at(0)?;
    let floats = bytes.get(4..4 + 4 * dim)?;
    let embed = floats.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))).collect();
    let (width, height) = (u32_at(4 + 4 * dim)?, u32_at(8 + 4 * dim)?);
    let rgb = bytes.get(12 + 4 * dim..)?;
    (rgb.len() == width * height * 3).then(|| (embed, Thumbnail { width, height, rgb: rgb.to_vec() }))
}

/// A small RGB preview of what the model sees (the center crop), row-major.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Thumbnail {
    pub width: usize,
    pub height: usize,
    #[serde(with = "serde_bytes")]
    pub rgb: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_tagged_and_enums_are_words() {
        let m = serde_json::to_value(ToWorker::Init { backend: BackendChoice::PreferGpu }).unwrap();
        assert_eq!(m, serde_json::json!({"type": "init", "backend": "prefer_gpu"}));
        let b = BackendInfo { kind: BackendKind::WebGpu, name: "x".into(), fallback_reason: None };
        assert_eq!(serde_json::to_value(&b).unwrap()["kind"], "webgpu");
        let p = Progress { stage: "s".into(), done: 1, total: 2, unit: ProgressUnit::Bytes };
        assert_eq!(serde_json::to_value(&p).unwrap()["unit"], "bytes");
        assert_eq!(ToWorker::Cancel { job: 7 }.job(), Some(7));
    }

    #[test]
    fn cached_embeddings_read_back_and_refuse_other_shapes() {
        let preview = Thumbnail { width: 2, height: 1, rgb: vec![1, 2, 3, 4, 5, 6] };
        let bytes = cached_embedding_bytes(&[0.5, -1.25, 3.0], &preview);
        assert_eq!(cached_embedding(&bytes), Some((vec![0.5, -1.25, 3.0], preview)));
        assert_eq!(cached_embedding(&bytes[..bytes.len() - 1]), None, "a cut-off entry is a miss");
        assert_eq!(cached_embedding(b"\xff\xff\xff\xff"), None);
    }
}
