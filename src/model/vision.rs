//! CLIP vision transformer (CLIPVisionTransformer in transformers).

use burn::module::{Module, Param};
use burn::tensor::Tensor;

use crate::config::VisionConfig;
use crate::error::Result;
use crate::model::layers::{Encoder, EncoderShape, LayerNorm, Linear};
use crate::model::load::Loader;

pub struct VisionOutput {
    /// `[batch, patches + 1, hidden]`: the encoder output (no final norm, as in transformers).
    pub last_hidden_state: Tensor<3>,
    /// `[batch, hidden]`: `post_layernorm` of the class token.
    pub pooled: Tensor<2>,
    /// Encoder input (after `pre_layrnorm`) and each layer's output (only when requested).
    pub hidden_states: Vec<Tensor<3>>,
}

#[derive(Module, Debug)]
pub struct VisionTransformer {
    pub class_embedding: Param<Tensor<1>>,
    /// The patch convolution as a matrix over flattened `(channel, y, x)` patches.
    pub patch_embedding: Linear,
    pub position_embedding: Param<Tensor<2>>,
    pub pre_layrnorm: LayerNorm,
    pub encoder: Encoder,
    pub post_layernorm: LayerNorm,
    #[module(skip)]
    pub config: VisionConfig,
}

impl VisionTransformer {
    pub fn load(w: &Loader, config: &VisionConfig) -> Result<Self> {
        let c = config;
        let (h, p, ch) = (c.hidden_size, c.patch_size, c.num_channels);
        let patches = (c.image_size / p) * (c.image_size / p);
        let shape = EncoderShape {
            hidden: h,
            intermediate: c.intermediate_size,
            heads: c.num_attention_heads,
            layers: c.num_hidden_layers,
            activation: c.hidden_act,
            eps: c.layer_norm_eps,
        };
        let conv = w.transposed("vision_model.embeddings.patch_embedding.weight", &[h, ch, p, p], h, ch * p * p)?;
        Ok(VisionTransformer {
            class_embedding: Param::from_tensor(w.tensor("vision_model.embeddings.class_embedding", [h])?),
            patch_embedding: Linear {
                weight: Param::from_tensor(conv),
                bias: None,
            },
            position_embedding: Param::from_tensor(
                w.tensor("vision_model.embeddings.position_embedding.weight", [patches + 1, h])?,
            ),
            pre_layrnorm: LayerNorm::load(w, "vision_model.pre_layrnorm", h, c.layer_norm_eps)?,
            encoder: Encoder::load(w, "vision_model.encoder", &shape)?,
            post_layernorm: LayerNorm::load(w, "vision_model.post_layernorm", h, c.layer_norm_eps)?,
            config: config.clone(),
        })
    }

    /// `pixels`: normalized `[batch, channels, image_size, image_size]`.
    pub fn forward(&self, pixels: Tensor<4>, keep_hidden_states: bool) -> VisionOutput {
        let c = &self.config;
        let [batch, channels, height, width] = pixels.dims();
        let p = c.patch_size;
        let (gy, gx) = (height / p, width / p);
        // Non-overlapping patches, flattened in the conv weight's (c, y, x) order.
        let patches = pixels
            .reshape([batch, channels, gy, p, gx, p])
            .permute([0, 2, 4, 1, 3, 5])
            .reshape([batch, gy * gx, channels * p * p]);
        let patch_embeds = self.patch_embedding.forward(patches);
        let class = self.class_embedding.val().reshape([1, 1, c.hidden_size]).expand([batch, 1, c.hidden_size]);
        let x = Tensor::cat(vec![class, patch_embeds], 1) + self.position_embedding.val().unsqueeze::<3>();
        let x = self.pre_layrnorm.forward(x);

        let mut hidden_states = Vec::new();
        let last_hidden_state = self.encoder.forward(x, None, keep_hidden_states.then_some(&mut hidden_states));
        let class_token = last_hidden_state.clone().slice([0..batch, 0..1]).reshape([batch, c.hidden_size]);
        let pooled = self.post_layernorm.forward(class_token);
        VisionOutput { last_hidden_state, pooled, hidden_states }
    }
}
