//! CLIP text transformer (CLIPTextTransformer in transformers).

use burn::module::{Module, Param};
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::config::TextConfig;
use crate::error::{Error, Result};
use crate::model::layers::{Encoder, EncoderShape, LayerNorm};
use crate::model::load::Loader;

/// A batch of token ids on the host, padded to a common length.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenBatch {
    /// Row-major `[batch, len]`.
    pub ids: Vec<u32>,
    /// Row-major `[batch, len]`, 1 for real tokens, 0 for padding.
    pub attention_mask: Vec<u8>,
    pub batch: usize,
    pub len: usize,
}

impl TokenBatch {
    /// Position that is pooled in each row, exactly as transformers picks it:
    /// `argmax(ids)` (first maximum) when `eos_token_id == 2`, else the first
    /// `eos_token_id` (or 0 if there is none).
    pub fn pooling_positions(&self, eos_token_id: i64) -> Vec<usize> {
        self.ids
            .chunks(self.len)
            .map(|row| {
                if eos_token_id == 2 {
                    let max = row.iter().copied().max().unwrap_or(0);
                    row.iter().position(|&id| id == max).unwrap_or(0)
                } else {
                    row.iter().position(|&id| i64::from(id) == eos_token_id).unwrap_or(0)
                }
            })
            .collect()
    }
}

pub struct TextOutput {
    /// `[batch, len, hidden]`, after the final layer norm.
    pub last_hidden_state: Tensor<3>,
    /// `[batch, hidden]`: the last hidden state at the pooling position.
    pub pooled: Tensor<2>,
    /// Encoder input and each layer's output (only when requested).
    pub hidden_states: Vec<Tensor<3>>,
}

#[derive(Module, Debug)]
pub struct TextTransformer {
    pub token_embedding: Param<Tensor<2>>,
    pub position_embedding: Param<Tensor<2>>,
    pub encoder: Encoder,
    pub final_layer_norm: LayerNorm,
    #[module(skip)]
    pub config: TextConfig,
}

impl TextTransformer {
    pub fn load(w: &Loader, config: &TextConfig) -> Result<Self> {
        let c = config;
        let shape = EncoderShape {
            hidden: c.hidden_size,
            intermediate: c.intermediate_size,
            heads: c.num_attention_heads,
            layers: c.num_hidden_layers,
            activation: c.hidden_act,
            eps: c.layer_norm_eps,
        };
        Ok(TextTransformer {
            token_embedding: Param::from_tensor(
                w.tensor("text_model.embeddings.token_embedding.weight", [c.vocab_size, c.hidden_size])?,
            ),
            position_embedding: Param::from_tensor(w.tensor(
                "text_model.embeddings.position_embedding.weight",
                [c.max_position_embeddings, c.hidden_size],
            )?),
            encoder: Encoder::load(w, "text_model.encoder", &shape)?,
            final_layer_norm: LayerNorm::load(w, "text_model.final_layer_norm", c.hidden_size, c.layer_norm_eps)?,
            config: config.clone(),
        })
    }

    pub fn forward(&self, tokens: &TokenBatch, keep_hidden_states: bool) -> Result<TextOutput> {
        let (batch, len) = (tokens.batch, tokens.len);
        let c = &self.config;
        if tokens.ids.len() != batch * len || tokens.attention_mask.len() != batch * len {
            return Err(Error::prompt(
                "tokens",
                format!(
                    "{} ids and {} mask values do not form a {batch}x{len} batch",
                    tokens.ids.len(),
                    tokens.attention_mask.len()
                ),
            ));
        }
        if batch == 0 || len == 0 || len > c.max_position_embeddings {
            return Err(Error::prompt(
                "tokens",
                format!(
                    "a batch of {batch} sequences of length {len}: need at least one, of length 1 to {}",
                    c.max_position_embeddings
                ),
            ));
        }
        if let Some(&bad) = tokens.ids.iter().find(|&&id| id as usize >= c.vocab_size) {
            return Err(Error::prompt("tokens", format!("token id {bad} is outside the vocabulary of {}", c.vocab_size)));
        }
        let device = self.token_embedding.device();
        let ids: Vec<i32> = tokens.ids.iter().map(|&id| id as i32).collect();
        let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [batch, len]), &device);
        let tokens_embedded = burn::tensor::module::embedding(self.token_embedding.val(), ids);
        let positions = self.position_embedding.val().slice([0..len]).unsqueeze::<3>();
        let x = tokens_embedded + positions;

        let mask = attention_mask(tokens, &device);
        let mut hidden_states = Vec::new();
        let x = self.encoder.forward(x, Some(mask), keep_hidden_states.then_some(&mut hidden_states));
        let last_hidden_state = self.final_layer_norm.forward(x);

        let rows: Vec<i32> = tokens
            .pooling_positions(c.eos_token_id)
            .iter()
            .enumerate()
            .map(|(b, &pos)| (b * len + pos) as i32)
            .collect();
        let rows = Tensor::<1, Int>::from_data(TensorData::new(rows, [batch]), &device);
        let pooled = last_hidden_state.clone().reshape([batch * len, c.hidden_size]).select(0, rows);
        Ok(TextOutput { last_hidden_state, pooled, hidden_states })
    }
}

#[cfg(test)]
mod tests {
    use super::TokenBatch;

    #[test]
    fn pooling_follows_the_eos_rule_of_transformers() {
        let tokens = TokenBatch { ids: vec![5, 9, 7, 9, 5, 6, 3, 4], attention_mask: vec![1; 8], batch: 2, len: 4 };
        // Legacy configs (eos_token_id 2): the first largest id.
        assert_eq!(tokens.pooling_positions(2), vec![1, 1]);
        // Otherwise the first EOS, or 0 when there is none.
        assert_eq!(tokens.pooling_positions(7), vec![2, 0]);
    }
}

/// Additive mask `[batch, 1, len, len]`: causal plus padding, as transformers
/// builds it. A large finite negative keeps softmax free of `inf - inf`.
fn attention_mask(tokens: &TokenBatch, device: &Device) -> Tensor<4> {
    const MASKED: f32 = -1e9;
    let (batch, len) = (tokens.batch, tokens.len);
    let mut mask = vec![0.0f32; batch * len * len];
    for b in 0..batch {
        for q in 0..len {
            for k in 0..len {
                if k > q || tokens.attention_mask[b * len + k] == 0 {
                    mask[(b * len + q) * len + k] = MASKED;
                }
            }
        }
    }
    Tensor::from_data(TensorData::new(mask, [batch, 1, len, len]), device)
}
