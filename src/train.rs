//! Trains a CLIP from scratch on the synthetic world: the same model code as
//! every other model (so the result is an ordinary Hugging Face CLIP
//! directory), contrastive InfoNCE with a learnable temperature, AdamW with
//! linear warm-up and a cosine decay, fresh world scenes every step.
//! Checkpoints make a run resumable with the same result as an unbroken one.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use burn::grad_clipping::GradientClippingConfig;
use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::clip::read_vec;
use crate::config::{ClipConfig, PreprocessConfig};
use crate::error::{Error, Result};
use crate::model::layers::Linear;
use crate::model::load::Loader;
use crate::model::{ClipModel, TokenBatch, logits_per_image};
use crate::preprocess::preprocess;
use crate::tokenizer::ClipTokenizer;
use crate::weights::{WeightFile, serialize_f32};
use crate::world::captions::Task;
use crate::world::{self, IMAGE_SIZE, Rng, Scene, captions, render, vocabulary};

/// Sizes of a world model. Both encoders share the depth and width.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelShape {
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub patch_size: usize,
    pub projection_dim: usize,
    /// Longest caption in tokens, start and end tokens included.
    pub context_length: usize,
}

/// Everything that determines a training run's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainSettings {
    pub seed: u64,
    pub steps: usize,
    pub batch_size: usize,
    pub peak_lr: f64,
    pub warmup_steps: usize,
    pub weight_decay: f32,
    /// Weight of the attribute read-out loss beside InfoNCE (0 turns it off).
    pub attribute_loss_weight: f32,
    /// Standard deviation of the image tower's initial position embeddings.
    pub position_init_std: f64,
    pub shape: ModelShape,
}

impl TrainSettings {
    /// The embedded model: `world-clip`.
    pub fn main(seed: u64) -> Self {
        TrainSettings {
            seed,
            steps: 1800,
            batch_size: 64,
            peak_lr: 1e-3,
            warmup_steps: 100,
            weight_decay: 0.1,
            attribute_loss_weight: 0.3,
            position_init_std: 0.3,
            shape: ModelShape { hidden: 96, layers: 3, heads: 4, patch_size: 16, projection_dim: 48, context_length: 24 },
        }
    }

    /// The judge: smaller, independently seeded, used only to grade other
    /// studies' outputs so the model under study never grades itself.
    pub fn judge(seed: u64) -> Self {
        TrainSettings {
            shape: ModelShape { hidden: 64, layers: 3, heads: 4, patch_size: 16, projection_dim: 32, context_length: 24 },
            ..TrainSettings::main(seed)
        }
    }

    /// Learning rate at `step`: linear warm-up, then cosine decay to 2% of the peak.
    pub fn lr(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return self.peak_lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let t = (step - self.warmup_steps) as f64 / (self.steps - self.warmup_steps).max(1) as f64;
        let floor = 0.02 * self.peak_lr;
        floor + 0.5 * (self.peak_lr - floor) * (1.0 + (std::f64::consts::PI * t).cos())
    }
}

/// The Hugging Face `config.json` of a world model.
pub fn config_json(shape: &ModelShape) -> String {
    let s = shape;
    let encoder = |extra: serde_json::Value| {
        let mut v = json!({
            "hidden_size": s.hidden,
            "intermediate_size": 4 * s.hidden,
            "num_hidden_layers": s.layers,
            "num_attention_heads": s.heads,
            "hidden_act": "quick_gelu",
            "layer_norm_eps": 1e-5,
            "projection_dim": s.projection_dim,
            "attention_dropout": 0.0,
            "dropout": 0.0,
            "initializer_factor": 1.0,
            "initializer_range": 0.02
        });
        v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        v
    };
    let config = json!({
        "architectures": ["CLIPModel"],
        "model_type": "clip",
        "projection_dim": s.projection_dim,
        "logit_scale_init_value": 2.6592,
        "initializer_factor": 1.0,
        "torch_dtype": "float32",
        "text_config": encoder(json!({
            "model_type": "clip_text_model",
            "vocab_size": vocabulary::vocab_size(),
            "max_position_embeddings": s.context_length,
            "bos_token_id": vocabulary::BOS_ID,
            "eos_token_id": vocabulary::EOS_ID,
            "pad_token_id": vocabulary::EOS_ID
        })),
        "vision_config": encoder(json!({
            "model_type": "clip_vision_model",
            "image_size": IMAGE_SIZE,
            "patch_size": s.patch_size,
            "num_channels": 3
        }))
    });
    serde_json::to_string_pretty(&config).expect("a JSON value serializes")
}

/// `preprocessor_config.json`: OpenAI's normalization at the world's image size.
pub fn preprocessor_json() -> String {
    let config = json!({
        "image_processor_type": "CLIPImageProcessor",
        "do_resize": true,
        "size": {"shortest_edge": IMAGE_SIZE},
        "resample": 3,
        "do_center_crop": true,
        "crop_size": {"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        "do_rescale": true,
        "rescale_factor": 1.0 / 255.0,
        "do_normalize": true,
        "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_std": [0.26862954, 0.26130258, 0.27577711],
        "do_convert_rgb": true
    });
    serde_json::to_string_pretty(&config).expect("a JSON value serializes")
}

/// Random initial weights in the Hugging Face layout, with the standard
/// deviations transformers' `CLIPPreTrainedModel._init_weights` uses
/// (except the image position embeddings').
pub fn initial_checkpoint(config: &ClipConfig, seed: u64, position_init_std: f64) -> Result<Vec<u8>> {
    let mut init = Init { rng: Rng::new(seed ^ 0x1417), tensors: Vec::new() };
    let (t, v) = (&config.text_config, &config.vision_config);
    init.normal("text_model.embeddings.token_embedding.weight".into(), vec![t.vocab_size, t.hidden_size], 0.02);
    init.normal("text_model.embeddings.position_embedding.weight".into(), vec![t.max_position_embeddings, t.hidden_size], 0.01);
    let patches = (v.image_size / v.patch_size).pow(2);
    init.normal("vision_model.embeddings.class_embedding".into(), vec![v.hidden_size], (v.hidden_size as f64).powf(-0.5));
    init.normal("vision_model.embeddings.patch_embedding.weight".into(), vec![v.hidden_size, 3, v.patch_size, v.patch_size], 0.02);
    // Larger than transformers' 0.02: where the figures stand must be visible
    // to the class token from the first step, or position is learned last.
    init.normal("vision_model.embeddings.position_embedding.weight".into(), vec![patches + 1, v.hidden_size], position_init_std);
    for (prefix, hidden, inter, layers) in [
        ("text_model", t.hidden_size, t.intermediate_size, t.num_hidden_layers),
        ("vision_model", v.hidden_size, v.intermediate_size, v.num_hidden_layers),
    ] {
        let h = hidden as f64;
        let in_std = h.powf(-0.5) * (2.0 * layers as f64).powf(-0.5);
        for i in 0..layers {
            let p = format!("{prefix}.encoder.layers.{i}");
            for (proj, std) in [("q_proj", in_std), ("k_proj", in_std), ("v_proj", in_std), ("out_proj", h.powf(-0.5))] {
                init.normal(format!("{p}.self_attn.{proj}.weight"), vec![hidden, hidden], std);
                init.constant(format!("{p}.self_attn.{proj}.bias"), hidden, 0.0);
            }
            init.normal(format!("{p}.mlp.fc1.weight"), vec![inter, hidden], (2.0 * h).powf(-0.5));
            init.constant(format!("{p}.mlp.fc1.bias"), inter, 0.0);
            init.normal(format!("{p}.mlp.fc2.weight"), vec![hidden, inter], in_std);
            init.constant(format!("{p}.mlp.fc2.bias"), hidden, 0.0);
            init.layer_norm(&format!("{p}.layer_norm1"), hidden);
            init.layer_norm(&format!("{p}.layer_norm2"), hidden);
        }
    }
    init.normal("text_projection.weight".into(), vec![config.projection_dim, t.hidden_size], (t.hidden_size as f64).powf(-0.5));
    init.normal("visual_projection.weight".into(), vec![config.projection_dim, v.hidden_size], (v.hidden_size as f64).powf(-0.5));
    init.layer_norm("text_model.final_layer_norm", t.hidden_size);
    init.layer_norm("vision_model.pre_layrnorm", v.hidden_size);
    init.layer_norm("vision_model.post_layernorm", v.hidden_size);
    init.tensors.push(("logit_scale".into(), vec![], vec![config.logit_scale_init_value as f32]));
    serialize_f32(init.tensors, HashMap::new(), "initial weights")
}

/// Initial tensors as they are drawn; only `normal` consumes random numbers,
/// so their order alone fixes the values.
struct Init {
    rng: Rng,
    tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
}

impl Init {
    fn normal(&mut self, name: String, shape: Vec<usize>, std: f64) {
        let n = shape.iter().product();
        let values = (0..n).map(|_| (self.rng.normal() * std) as f32).collect();
        self.tensors.push((name, shape, values));
    }

    fn constant(&mut self, name: String, n: usize, value: f32) {
        self.tensors.push((name, vec![n], vec![value; n]));
    }

    fn layer_norm(&mut self, prefix: &str, n: usize) {
        self.constant(format!("{prefix}.weight"), n, 1.0);
        self.constant(format!("{prefix}.bias"), n, 0.0);
    }
}

/// Writes a model's weights in the Hugging Face layout (the inverse of
/// [`ClipModel::load`]): linear weights back to `[out, in]`, the patch
/// matrix back to a convolution kernel.
pub async fn export_checkpoint(model: &ClipModel, metadata: HashMap<String, String>) -> Result<Vec<u8>> {
    use crate::model::layers::{EncoderLayer, LayerNorm, Linear};
    let mut out: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    async fn push<const D: usize>(out: &mut Vec<(String, Vec<usize>, Vec<f32>)>, name: String, t: Tensor<D>) -> Result<()> {
        let shape = t.dims().to_vec();
        out.push((name, shape, read_vec(t).await?));
        Ok(())
    }
    async fn linear(out: &mut Vec<(String, Vec<usize>, Vec<f32>)>, name: &str, l: &Linear) -> Result<()> {
        push(out, format!("{name}.weight"), l.weight.val().transpose()).await?;
        if let Some(b) = &l.bias {
            push(out, format!("{name}.bias"), b.val()).await?;
        }
        Ok(())
    }
    async fn norm(out: &mut Vec<(String, Vec<usize>, Vec<f32>)>, name: &str, n: &LayerNorm) -> Result<()> {
        push(out, format!("{name}.weight"), n.weight.val()).await?;
        push(out, format!("{name}.bias"), n.bias.val()).await
    }
    async fn layers(out: &mut Vec<(String, Vec<usize>, Vec<f32>)>, prefix: &str, layers: &[EncoderLayer]) -> Result<()> {
        for (i, l) in layers.iter().enumerate() {
            let p = format!("{prefix}.encoder.layers.{i}");
            let a = &l.self_attn;
            for (name, proj) in [("q_proj", &a.q_proj), ("k_proj", &a.k_proj), ("v_proj", &a.v_proj), ("out_proj", &a.out_proj)] {
                linear(out, &format!("{p}.self_attn.{name}"), proj).await?;
            }
            norm(out, &format!("{p}.layer_norm1"), &l.layer_norm1).await?;
            linear(out, &format!("{p}.mlp.fc1"), &l.mlp.fc1).await?;
            linear(out, &format!("{p}.mlp.fc2"), &l.mlp.fc2).await?;
            norm(out, &format!("{p}.layer_norm2"), &l.layer_norm2).await?;
        }
        Ok(())
    }
    let t = &model.text_model;
    push(&mut out, "text_model.embeddings.token_embedding.weight".into(), t.token_embedding.val()).await?;
    push(&mut out, "text_model.embeddings.position_embedding.weight".into(), t.position_embedding.val()).await?;
    layers(&mut out, "text_model", &t.encoder.layers).await?;
    norm(&mut out, "text_model.final_layer_norm", &t.final_layer_norm).await?;
    let v = &model.vision_model;
    let (h, p) = (v.config.hidden_size, v.config.patch_size);
    push(&mut out, "vision_model.embeddings.class_embedding".into(), v.class_embedding.val()).await?;
    let kernel = v.patch_embedding.weight.val().transpose().reshape([h, v.config.num_channels, p, p]);
    push(&mut out, "vision_model.embeddings.patch_embedding.weight".into(), kernel).await?;
    push(&mut out, "vision_model.embeddings.position_embedding.weight".into(), v.position_embedding.val()).await?;
    norm(&mut out, "vision_model.pre_layrnorm", &v.pre_layrnorm).await?;
    layers(&mut out, "vision_model", &v.encoder.layers).await?;
    norm(&mut out, "vision_model.post_layernorm", &v.post_layernorm).await?;
    linear(&mut out, "text_projection", &model.text_projection).await?;
    linear(&mut out, "visual_projection", &model.visual_projection).await?;
    let scale = read_vec(model.logit_scale.val()).await?;
    out.push(("logit_scale".into(), vec![], scale));
    serialize_f32(out, metadata, "trained weights")
}

/// Gives every parameter an id from its position in the model, so that an
/// optimizer state saved in one process matches the model reloaded in another.
struct StableIds(u64);

impl ModuleMapper for StableIds {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (_, value, mapper) = param.consume();
        self.0 += 1;
        Param::from_mapped_value(ParamId::from(self.0), value, mapper)
    }
}

/// One training batch: scenes from `(seed, step)` alone, so a resumed run
/// sees exactly the batches an unbroken run would.
pub fn batch_scenes(seed: u64, step: usize, batch_size: usize) -> (Vec<Scene>, Vec<String>) {
    let mut rng = Rng::new(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ (step as u64).wrapping_mul(0x9E37_79B9));
    let scenes: Vec<Scene> = (0..batch_size).map(|_| Scene::sample(&mut rng)).collect();
    let texts = scenes.iter().map(|s| captions::training_caption(s, &mut rng)).collect();
    (scenes, texts)
}

/// Normalized pixels of rendered scenes, `[n, 3, 64, 64]`.
pub fn scene_pixels(scenes: &[Scene], preprocess_config: &PreprocessConfig, device: &Device) -> Tensor<4> {
    let values: Vec<f32> = scenes.iter().flat_map(|s| preprocess(&render::render(s), preprocess_config)).collect();
    Tensor::from_data(TensorData::new(values, [scenes.len(), 3, IMAGE_SIZE, IMAGE_SIZE]), device)
}

/// Tokens of `texts`, cut to the longest one: the causal mask and pooling at
/// the first end token make the trailing padding irrelevant, so this saves
/// time without changing a single output.
pub fn trimmed_tokens(tokenizer: &ClipTokenizer, texts: &[String]) -> Result<TokenBatch> {
    let encoded = texts.iter().map(|t| tokenizer.encode(t)).collect::<Result<Vec<_>>>()?;
    let len = encoded.iter().map(|t| t.attention_mask.iter().filter(|&&m| m == 1).count()).max().unwrap_or(1);
    Ok(TokenBatch::from_tokenized(&encoded, len))
}

/// Symmetric InfoNCE: cross-entropy of images over texts and texts over images.
pub fn contrastive_loss(model: &ClipModel, pixels: Tensor<4>, tokens: &TokenBatch) -> Result<Tensor<1>> {
    let (_, image) = model.encode_image(pixels);
    infonce(model, image, tokens)
}

fn infonce(model: &ClipModel, image: Tensor<2>, tokens: &TokenBatch) -> Result<Tensor<1>> {
    let (_, text) = model.encode_text(tokens)?;
    // As in OpenAI's training, the temperature may not exceed 100.
    let scale = model.logit_scale.val().clamp_max(100f64.ln());
    let logits = logits_per_image(image, text, scale);
    let n = tokens.batch;
    let eye = Tensor::<2>::eye(n, &logits.device());
    let per_image = (log_softmax(logits.clone(), 1) * eye.clone()).sum();
    let per_text = (log_softmax(logits, 0) * eye).sum();
    Ok((per_image + per_text).mul_scalar(-0.5 / n as f64))
}

/// The visual facts the read-out heads learn: every attribute and the group.
/// Roles are left out on purpose, so that what the model ties to a role word
/// (the planted biases) comes from the captions alone.
fn head_tasks() -> Vec<Task> {
    Task::all().into_iter().filter(|t| *t != Task::Role).collect()
}

/// Linear read-outs of the image tower's pooled output, one per visual
/// attribute and the group. A training aid only, never exported. Under
/// InfoNCE alone the tower learns the easy colour and background cues and
/// stalls on shape, pattern and count (the captions are told apart without
/// them); these heads hand it a direct gradient for every attribute.
#[derive(Module, Debug)]
pub struct AttributeHeads {
    pub heads: Vec<Linear>,
}

impl AttributeHeads {
    fn tensor_names(i: usize) -> (String, String) {
        (format!("attribute_heads.{i}.weight"), format!("attribute_heads.{i}.bias"))
    }

    fn initial(hidden: usize, seed: u64) -> Result<Vec<u8>> {
        let mut init = Init { rng: Rng::new(seed ^ 0x4EAD), tensors: Vec::new() };
        for (i, task) in head_tasks().into_iter().enumerate() {
            let (weight, bias) = Self::tensor_names(i);
            init.normal(weight, vec![task.classes(), hidden], (hidden as f64).powf(-0.5));
            init.constant(bias, task.classes(), 0.0);
        }
        serialize_f32(init.tensors, HashMap::new(), "initial attribute heads")
    }

    fn load(bytes: &[u8], origin: &str, hidden: usize, device: &Device) -> Result<Self> {
        let file = WeightFile::parse(bytes, origin)?;
        let w = Loader { file: &file, device: device.clone(), config_origin: origin.to_string() };
        let heads = head_tasks()
            .into_iter()
            .enumerate()
            .map(|(i, task)| Linear::load(&w, &format!("attribute_heads.{i}"), hidden, task.classes(), true))
            .collect::<Result<Vec<_>>>()?;
        file.ensure_all_used()?;
        Ok(AttributeHeads { heads })
    }

    async fn export(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        for (i, head) in self.heads.iter().enumerate() {
            let (weight, bias) = Self::tensor_names(i);
            let w = head.weight.val().transpose();
            out.push((weight, w.dims().to_vec(), read_vec(w).await?));
            if let Some(b) = &head.bias {
                out.push((bias, b.val().dims().to_vec(), read_vec(b.val()).await?));
            }
        }
        serialize_f32(out, HashMap::new(), "attribute heads")
    }

    /// Mean cross-entropy of the heads on `pooled` against the scenes' truth.
    fn loss(&self, pooled: Tensor<2>, scenes: &[Scene]) -> Tensor<1> {
        let device = pooled.device();
        let n = scenes.len();
        let mut total: Option<Tensor<1>> = None;
        for (head, task) in self.heads.iter().zip(head_tasks()) {
            let classes = task.classes();
            let mut one_hot = vec![0.0f32; n * classes];
            for (row, scene) in scenes.iter().enumerate() {
                one_hot[row * classes + task.truth(scene).expect("visual tasks always have a truth")] = 1.0;
            }
            let target = Tensor::<2>::from_data(TensorData::new(one_hot, [n, classes]), &device);
            let ce = (log_softmax(head.forward(pooled.clone()), 1) * target).sum().mul_scalar(-1.0 / n as f64);
            total = Some(match total {
                Some(t) => t + ce,
                None => ce,
            });
        }
        total.expect("there are visual tasks")
    }
}

/// What the optimizer updates: the CLIP and its training-only read-outs.
#[derive(Module, Debug)]
struct Trainee {
    clip: ClipModel,
    heads: AttributeHeads,
}

/// InfoNCE plus `attribute_weight` times the read-out loss.
fn training_loss(t: &Trainee, pixels: Tensor<4>, tokens: &TokenBatch, scenes: &[Scene], attribute_weight: f32) -> Result<Tensor<1>> {
    let (vision, image) = t.clip.encode_image(pixels);
    let contrastive = infonce(&t.clip, image, tokens)?;
    if attribute_weight == 0.0 {
        return Ok(contrastive);
    }
    Ok(contrastive + t.heads.loss(vision.pooled, scenes).mul_scalar(attribute_weight as f64))
}

/// What a run reports as it goes.
pub struct Progress {
    pub step: usize,
    pub steps: usize,
    pub loss: f32,
    pub lr: f64,
    pub temperature: f32,
    pub seconds: f64,
    /// Estimated seconds left, from the pace since this process started.
    pub eta_seconds: f64,
}

/// The training record saved next to the weights.
#[derive(Serialize, Deserialize)]
pub struct TrainLog {
    pub settings: TrainSettings,
    pub step: usize,
    /// `(step, mean loss over the last interval)`.
    pub loss_curve: Vec<(usize, f32)>,
    /// Wall-clock seconds spent training, summed over resumed runs.
    pub seconds: f64,
    pub backend: String,
}

const CHECKPOINT_DIR: &str = "checkpoint";
/// The read-out heads' weights in a checkpoint (they are not part of the model).
const HEADS_FILE: &str = "heads.safetensors";
const LOG_EVERY: usize = 25;

/// Trains a world model into `out` (`config.json`, `tokenizer.json`,
/// `preprocessor_config.json`, `model.safetensors`, `training.json`),
/// resuming from `out/checkpoint` when it holds a run with the same settings.
pub fn train(
    settings: &TrainSettings,
    out: &Path,
    device: &Device,
    checkpoint_every: usize,
    mut progress: impl FnMut(&Progress),
) -> Result<TrainLog> {
    let out_name = out.display().to_string();
    std::fs::create_dir_all(out.join(CHECKPOINT_DIR)).map_err(|e| Error::io(&out_name, e))?;
    let config_text = config_json(&settings.shape);
    let config = ClipConfig::from_json(config_text.as_bytes(), "world config")?;
    let tokenizer_text = vocabulary::tokenizer_json();
    let tokenizer = ClipTokenizer::from_json(tokenizer_text.as_bytes(), "world tokenizer", settings.shape.context_length)?;
    let preprocessor_text = preprocessor_json();
    let preprocess_config = PreprocessConfig::from_json(preprocessor_text.as_bytes(), "world preprocessor", IMAGE_SIZE)?;
    let write = |name: &str, bytes: &[u8]| -> Result<()> {
        let path = out.join(name);
        std::fs::write(&path, bytes).map_err(|e| Error::io(path.display().to_string(), e))
    };
    write("config.json", config_text.as_bytes())?;
    write("tokenizer.json", tokenizer_text.as_bytes())?;
    write("preprocessor_config.json", preprocessor_text.as_bytes())?;
    let spec = serde_json::to_string_pretty(&world::spec()).expect("the spec serializes");
    write("world.json", spec.as_bytes())?;

    let autodiff = device.clone().autodiff();
    let checkpoint = out.join(CHECKPOINT_DIR);
    let resumed: Option<TrainLog> = std::fs::read(checkpoint.join("training.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<TrainLog>(&b).ok())
        .filter(|log| &log.settings == settings);
    let (weights, head_weights, mut log) = match resumed {
        Some(log) => (
            crate::native::read(&checkpoint.join("model.safetensors"))?,
            crate::native::read(&checkpoint.join(HEADS_FILE))?,
            log,
        ),
        None => (
            initial_checkpoint(&config, settings.seed, settings.position_init_std)?,
            AttributeHeads::initial(settings.shape.hidden, settings.seed)?,
            TrainLog { settings: settings.clone(), step: 0, loss_curve: Vec::new(), seconds: 0.0, backend: String::new() },
        ),
    };
    log.backend = format!("{device:?}");
    let file = WeightFile::parse(&weights, "checkpoint")?;
    let clip = ClipModel::load(&config, "world config", &file, &autodiff)?;
    let heads = AttributeHeads::load(&head_weights, HEADS_FILE, settings.shape.hidden, &autodiff)?;
    let mut model = Trainee { clip, heads }.map(&mut StableIds(0));
    let mut optim = AdamWConfig::new()
        .with_beta_2(0.98)
        .with_epsilon(1e-6)
        .with_weight_decay(settings.weight_decay)
        .with_grad_clipping(Some(GradientClippingConfig::Norm(1.0)))
        .init();
    if log.step > 0 {
        optim = optim
            .load(checkpoint.join("optimizer.bpk"))
            .map_err(|e| Error::io(checkpoint.join("optimizer.bpk").display().to_string(), format!("{e:?}")))?;
    }

    let started = Instant::now();
    let first_step = log.step;
    let previous_seconds = log.seconds;
    let mut interval_loss = 0.0f32;
    let mut interval_steps = 0usize;
    for step in first_step..settings.steps {
        let (scenes, texts) = batch_scenes(settings.seed, step, settings.batch_size);
        let pixels = scene_pixels(&scenes, &preprocess_config, &autodiff);
        let tokens = trimmed_tokens(&tokenizer, &texts)?;
        let loss = training_loss(&model, pixels, &tokens, &scenes, settings.attribute_loss_weight)?;
        let loss_value = pollster::block_on(read_vec(loss.clone()))?[0];
        if !loss_value.is_finite() {
            return Err(Error::device(format!("training diverged at step {step} (loss {loss_value})")));
        }
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let lr = settings.lr(step);
        model = optim.step(lr, model, grads);
        interval_loss += loss_value;
        interval_steps += 1;

        let done = step + 1;
        let elapsed = started.elapsed().as_secs_f64();
        if done % LOG_EVERY == 0 || done == settings.steps {
            log.loss_curve.push((done, interval_loss / interval_steps as f32));
            (interval_loss, interval_steps) = (0.0, 0);
        }
        let temperature = pollster::block_on(read_vec(model.clip.logit_scale.val().exp()))?[0];
        progress(&Progress {
            step: done,
            steps: settings.steps,
            loss: loss_value,
            lr,
            temperature,
            seconds: previous_seconds + elapsed,
            eta_seconds: elapsed / (done - first_step) as f64 * (settings.steps - done) as f64,
        });
        if done % checkpoint_every == 0 && done < settings.steps {
            log.step = done;
            log.seconds = previous_seconds + elapsed;
            save_checkpoint(&model, &optim, &log, &checkpoint)?;
        }
    }
    log.step = settings.steps;
    log.seconds = previous_seconds + started.elapsed().as_secs_f64();
    let metadata = HashMap::from([
        ("format".to_string(), "pt".to_string()),
        ("trained_by".to_string(), "cliplens train-world".to_string()),
        ("seed".to_string(), settings.seed.to_string()),
    ]);
    let bytes = pollster::block_on(export_checkpoint(&model.valid().clip, metadata))?;
    write("model.safetensors", &bytes)?;
    write("training.json", serde_json::to_string_pretty(&log).expect("the log serializes").as_bytes())?;
    let _ = std::fs::remove_dir_all(&checkpoint);
    Ok(log)
}

fn save_checkpoint(model: &Trainee, optim: &burn::optim::ModuleOptimizer, log: &TrainLog, dir: &Path) -> Result<()> {
    let name = |f: &str| dir.join(f).display().to_string();
    let valid = model.valid();
    let bytes = pollster::block_on(export_checkpoint(&valid.clip, HashMap::new()))?;
    let heads = pollster::block_on(valid.heads.export())?;
    // Written under temporary names, then renamed: an interrupted save never
    // leaves a half-written checkpoint behind.
    std::fs::write(dir.join("model.safetensors.tmp"), &bytes).map_err(|e| Error::io(name("model.safetensors.tmp"), e))?;
    std::fs::write(dir.join("heads.safetensors.tmp"), &heads).map_err(|e| Error::io(name("heads.safetensors.tmp"), e))?;
    optim.save(dir.join("optimizer.tmp.bpk")).map_err(|e| Error::io(name("optimizer.tmp.bpk"), format!("{e:?}")))?;
    let log_text = serde_json::to_string_pretty(log).expect("the log serializes");
    std::fs::write(dir.join("training.json.tmp"), log_text).map_err(|e| Error::io(name("training.json.tmp"), e))?;
    for (from, to) in [
        ("model.safetensors.tmp", "model.safetensors"),
        ("heads.safetensors.tmp", HEADS_FILE),
        ("optimizer.tmp.bpk", "optimizer.bpk"),
        ("training.json.tmp", "training.json"),
    ] {
        std::fs::rename(dir.join(from), dir.join(to)).map_err(|e| Error::io(name(to), e))?;
    }
    Ok(())
}
