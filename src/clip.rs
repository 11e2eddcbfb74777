//! The model as both faces use it: load a model from its files' bytes, embed
//! prompts and images into L2-normalized vectors, compare them. Reads from the
//! device are async because the browser cannot block.

#[cfg(feature = "compute")]
use burn::tensor::{Device, Tensor, TensorData};
use serde::Serialize;

use crate::config::{ClipConfig, PreprocessConfig};
use crate::error::{Error, Result};
#[cfg(feature = "compute")]
use crate::model::{ClipModel, TokenBatch, l2_normalize};
use crate::preprocess::{RgbImage, preprocess};
#[cfg(feature = "compute")]
use crate::tokenizer::{ClipTokenizer, Tokenized};
use crate::weights::{WeightFile, WeightFormat};

/// Images embedded per forward pass: bounds device memory for large batches.
const IMAGE_CHUNK: usize = 16;
/// Prompts embedded per forward pass.
const TEXT_CHUNK: usize = 64;

/// The files of one model, as bytes, each with the name used in messages.
#[derive(Clone)]
pub struct ModelFiles {
    /// A short name for the model (a directory name, a hub id).
    pub name: String,
    pub config: (String, Vec<u8>),
    pub weights: (String, Vec<u8>),
    pub tokenizer: (String, Vec<u8>),
    /// `preprocessor_config.json`; OpenAI's settings when absent.
    pub preprocessor: Option<(String, Vec<u8>)>,
}

impl ModelFiles {
    /// The same model with other weights (an int8 copy of the float ones, say).
    pub fn with_weights(&self, name: String, bytes: Vec<u8>) -> Self {
        ModelFiles { weights: (name, bytes), ..self.clone() }
    }
}

/// Why no weights file could be picked among a model's files.
#[derive(Debug, PartialEq)]
pub enum NoWeights {
    None,
    Several,
}

/// Which of `names` is the weights file: `model.safetensors` or
/// `model.int8.safetensors` (in the order `prefer_int8` says), else the only
/// `*.safetensors`.
pub fn pick_weights(names: &[&str], prefer_int8: bool) -> std::result::Result<usize, NoWeights> {
    let order = if prefer_int8 {
        ["model.int8.safetensors", "model.safetensors"]
    } else {
        ["model.safetensors", "model.int8.safetensors"]
    };
    if let Some(i) = order.iter().find_map(|wanted| names.iter().position(|n| n == wanted)) {
        return Ok(i);
    }
    let found: Vec<usize> = (0..names.len()).filter(|&i| names[i].ends_with(".safetensors")).collect();
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(NoWeights::None),
        _ => Err(NoWeights::Several),
    }
}

impl ModelFiles {
    /// A model from loose files (as a user picks them): `config.json`,
    /// `tokenizer.json`, weights, optionally `preprocessor_config.json`.
    /// Names may carry a folder path; only the last component counts.
    pub fn from_named_files(name: &str, mut files: Vec<(String, Vec<u8>)>) -> Result<Self> {
        let base = |path: &str| path.rsplit(['/', '\\']).next().unwrap_or(path).to_string();
        let names: Vec<String> = files.iter().map(|(n, _)| base(n)).collect();
        let mut take = |wanted: &str| -> Option<(String, Vec<u8>)> {
            let i = names.iter().position(|n| n == wanted)?;
            Some(std::mem::take(&mut files[i]))
        };
        let missing = |what: &str| Error::usage(name, format!("has no {what}: pick config.json, tokenizer.json and the .safetensors weights together"));
        let config = take("config.json").ok_or_else(|| missing("config.json"))?;
        let tokenizer = take("tokenizer.json").ok_or_else(|| missing("tokenizer.json"))?;
        let preprocessor = take("preprocessor_config.json");
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let weights = pick_weights(&refs, false).map_err(|e| match e {
            NoWeights::None => missing("weights (.safetensors)"),
            NoWeights::Several => Error::usage(name, "has several .safetensors files: pick only the one to use"),
        })?;
        let weights = std::mem::take(&mut files[weights]);
        Ok(ModelFiles { name: name.to_string(), config, weights, tokenizer, preprocessor })
    }
}

#[cfg(feature = "compute")]
/// A loaded model with its tokenizer and image preprocessing.
pub struct Clip {
    pub name: String,
    pub model: ClipModel,
    pub tokenizer: ClipTokenizer,
    pub preprocess: PreprocessConfig,
    pub format: WeightFormat,
    pub device: Device,
}

#[cfg(feature = "compute")]
/// Embeddings of some prompts, with what tokenization had to drop.
pub struct TextEmbeddings {
    /// One L2-normalized vector per prompt.
    pub embeds: Vec<Vec<f32>>,
    pub tokens: Vec<Tokenized>,
}

#[cfg(feature = "compute")]
impl Clip {
    pub fn load(files: &ModelFiles, device: &Device) -> Result<Self> {
        let (config_name, config_bytes) = &files.config;
        let config = ClipConfig::from_json(config_bytes, config_name)?;
        let preprocess = match &files.preprocessor {
            Some((name, bytes)) => PreprocessConfig::from_json(bytes, name, config.vision_config.image_size)?,
            None => PreprocessConfig::openai(config.vision_config.image_size),
        };
        if preprocess.crop_size != (config.vision_config.image_size, config.vision_config.image_size) {
            return Err(Error::config(
                config_name,
                format!(
                    "image_size {} does not match the preprocessor's crop size {:?}",
                    config.vision_config.image_size, preprocess.crop_size
                ),
            ));
        }
        let (tok_name, tok_bytes) = &files.tokenizer;
        let tokenizer = ClipTokenizer::from_json(tok_bytes, tok_name, config.text_config.max_position_embeddings)?;
        if tokenizer.vocab_size() > config.text_config.vocab_size {
            return Err(Error::tokenizer(
                tok_name,
                format!(
                    "has {} tokens but the model's vocab_size is {}: they do not belong together",
                    tokenizer.vocab_size(),
                    config.text_config.vocab_size
                ),
            ));
        }
        let (weights_name, weights_bytes) = &files.weights;
        let weights = WeightFile::parse(weights_bytes, weights_name)?;
        let model = ClipModel::load(&config, config_name, &weights, device)?;
        Ok(Clip {
            name: files.name.clone(),
            model,
            tokenizer,
            preprocess,
            format: weights.format(),
            device: device.clone(),
        })
    }

    pub fn config(&self) -> &ClipConfig {
        &self.model.config
    }

    /// Unnormalized projected text embeddings, `[n, projection_dim]`. The
    /// batch is cut to its longest prompt: the text tower is causal and pools
    /// at the end token, so the padding after it changes nothing (checked
    /// by `tests/concepts.rs`) and costs up to 77/len times the work.
    pub fn text_features(&self, tokens: &[Tokenized]) -> Result<Tensor<2>> {
        let longest = tokens.iter().map(|t| t.attention_mask.iter().filter(|&&m| m == 1).count()).max().unwrap_or(1);
        self.text_features_of_length(tokens, longest.clamp(1, self.tokenizer.context_length()))
    }

    /// As [`Clip::text_features`], on the first `len` tokens of each prompt
    /// (the whole context length gives transformers' exact batch).
    pub fn text_features_of_length(&self, tokens: &[Tokenized], len: usize) -> Result<Tensor<2>> {
        let batch = TokenBatch::from_tokenized(tokens, len);
        Ok(self.model.encode_text(&batch)?.1)
    }

    /// Normalized pixels `[n, 3, size, size]` on the device.
    pub fn pixels(&self, images: &[&RgbImage]) -> Tensor<4> {
        let (h, w) = self.preprocess.crop_size;
        let values: Vec<f32> = images.iter().flat_map(|img| preprocess(img, &self.preprocess)).collect();
        Tensor::from_data(TensorData::new(values, [images.len(), 3, h, w]), &self.device)
    }

    /// L2-normalized embeddings of `texts`. Empty prompts are embedded as CLIP
    /// would (an empty caption); rejecting them is the caller's choice.
    pub async fn embed_texts<S: AsRef<str>>(&self, texts: &[S]) -> Result<TextEmbeddings> {
        let mut embeds = Vec::with_capacity(texts.len());
        let mut tokens = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(TEXT_CHUNK) {
            let encoded = chunk.iter().map(|t| self.tokenizer.encode(t.as_ref())).collect::<Result<Vec<_>>>()?;
            let features = l2_normalize(self.text_features(&encoded)?);
            embeds.extend(read_rows(features).await?);
            tokens.extend(encoded);
        }
        Ok(TextEmbeddings { embeds, tokens })
    }

    /// L2-normalized embeddings of decoded images.
    pub async fn embed_images(&self, images: &[RgbImage]) -> Result<Vec<Vec<f32>>> {
        let mut embeds = Vec::with_capacity(images.len());
        for chunk in images.chunks(IMAGE_CHUNK) {
            let refs: Vec<&RgbImage> = chunk.iter().collect();
            let (_, features) = self.model.encode_image(self.pixels(&refs));
            embeds.extend(read_rows(l2_normalize(features)).await?);
        }
        Ok(embeds)
    }

    /// `exp(logit_scale)`: the factor between cosine similarity and logits.
    pub async fn logit_scale(&self) -> Result<f32> {
        let values = read_vec(self.model.logit_scale.val().exp()).await?;
        Ok(values[0])
    }
}

#[cfg(feature = "compute")]
/// Reads a tensor back to the host (async: the browser cannot block).
pub async fn read_vec<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>> {
    let data = tensor.into_data_async().await.map_err(|e| Error::device(format!("reading a result failed: {e:?}")))?;
    data.convert::<f32>().try_into_vec::<f32>().map_err(|e| Error::device(format!("unexpected result type: {e:?}")))
}

#[cfg(feature = "compute")]
/// Reads a `[rows, cols]` tensor back as rows.
pub async fn read_rows(tensor: Tensor<2>) -> Result<Vec<Vec<f32>>> {
    let [_, cols] = tensor.dims();
    let values = read_vec(tensor).await?;
    Ok(values.chunks(cols.max(1)).map(<[f32]>::to_vec).collect())
}

/// Cosine similarity of every `a` against every `b` (inputs L2-normalized).
pub fn cosine_matrix(a: &[Vec<f32>], b: &[Vec<f32>]) -> Vec<Vec<f32>> {
    a.iter().map(|x| b.iter().map(|y| dot(x, y)).collect()).collect()
}

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// What `cliplens embed --json` prints; the web app exports the same shape.
#[derive(Serialize, Debug)]
pub struct EmbedReport {
    pub model: String,
    pub images: Vec<String>,
    pub texts: Vec<String>,
    /// L2-normalized, one per image.
    pub image_embeds: Vec<Vec<f32>>,
    /// L2-normalized, one per text.
    pub text_embeds: Vec<Vec<f32>>,
    /// `similarity[i][j]`: cosine of image `i` and text `j`.
    pub similarity: Vec<Vec<f32>>,
    /// `exp(logit_scale)`.
    pub logit_scale: f32,
    /// Per-input problems; the other inputs were still embedded.
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}
