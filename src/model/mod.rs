//! The CLIP model on burn: both encoders, their projections and `logit_scale`,
//! built from a Hugging Face `CLIPModel` checkpoint (float or CLIP Lens int8).

pub mod layers;
pub mod load;
pub mod text;
pub mod vision;

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use crate::config::ClipConfig;
use crate::error::Result;
use crate::weights::WeightFile;
use layers::Linear;
use load::Loader;
pub use text::{TextOutput, TextTransformer, TokenBatch};
pub use vision::{VisionOutput, VisionTransformer};

#[derive(Module, Debug)]
pub struct ClipModel {
    pub text_model: TextTransformer,
    pub vision_model: VisionTransformer,
    pub text_projection: Linear,
    pub visual_projection: Linear,
    /// Log of the temperature; logits are `exp(logit_scale) * cosine`.
    pub logit_scale: Param<Tensor<1>>,
    #[module(skip)]
    pub config: ClipConfig,
}

impl ClipModel {
    /// Builds the model from a parsed weights file. Every tensor the config
    /// implies must be present with its shape, and no other may be;
    /// `config_origin` names the config in shape errors.
    pub fn load(config: &ClipConfig, config_origin: &str, weights: &WeightFile, device: &Device) -> Result<Self> {
        let w = Loader { file: weights, device: device.clone(), config_origin: config_origin.to_string() };
        let (t, v, p) = (&config.text_config, &config.vision_config, config.projection_dim);
        let model = ClipModel {
            text_model: TextTransformer::load(&w, t)?,
            vision_model: VisionTransformer::load(&w, v)?,
            text_projection: Linear::load(&w, "text_projection", t.hidden_size, p, false)?,
            visual_projection: Linear::load(&w, "visual_projection", v.hidden_size, p, false)?,
            logit_scale: Param::from_tensor(w.scalar("logit_scale")?),
            config: config.clone(),
        };
        weights.ensure_all_used()?;
        Ok(model)
    }

    /// Text features: pooled output and its projection (not normalized).
    pub fn encode_text(&self, tokens: &TokenBatch) -> Result<(TextOutput, Tensor<2>)> {
        let out = self.text_model.forward(tokens, false)?;
        let embeds = self.text_projection.forward(out.pooled.clone());
        Ok((out, embeds))
    }

    /// Image features: pooled output and its projection (not normalized).
    pub fn encode_image(&self, pixels: Tensor<4>) -> (VisionOutput, Tensor<2>) {
        let out = self.vision_model.forward(pixels, false);
        let embeds = self.visual_projection.forward(out.pooled.clone());
        (out, embeds)
    }
}

/// Rows divided by their L2 norm.
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).sqrt();
    x / norm
}

/// `logits_per_image[i, j] = exp(logit_scale) * cos(image_i, text_j)`.
pub fn logits_per_image(image_embeds: Tensor<2>, text_embeds: Tensor<2>, logit_scale: Tensor<1>) -> Tensor<2> {
    let cosine = l2_normalize(image_embeds).matmul(l2_normalize(text_embeds).transpose());
    cosine * logit_scale.exp().unsqueeze::<2>()
}
