//! Transformer building blocks shared by both CLIP encoders, mirroring
//! `transformers/models/clip/modeling_clip.py` (CLIPAttention, CLIPMLP,
//! CLIPEncoderLayer, CLIPEncoder) so parity questions are answered by reading
//! the two files side by side.

use burn::module::{Module, Param};
use burn::tensor::activation::{gelu, sigmoid, softmax};
use burn::tensor::Tensor;

use crate::config::Activation;
use crate::error::Result;
use crate::model::load::Loader;

/// `y = x W + b` with `W` stored `[d_in, d_out]` (transposed from PyTorch's
/// `[out, in]` at load time).
#[derive(Module, Debug)]
pub struct Linear {
    pub weight: Param<Tensor<2>>,
    pub bias: Option<Param<Tensor<1>>>,
}

impl Linear {
    pub fn load(w: &Loader, prefix: &str, d_in: usize, d_out: usize, bias: bool) -> Result<Self> {
        let weight = w.matrix_transposed(&format!("{prefix}.weight"), d_out, d_in)?;
        let bias = if bias { Some(Param::from_tensor(w.tensor(&format!("{prefix}.bias"), [d_out])?)) } else { None };
        Ok(Linear { weight: Param::from_tensor(weight), bias })
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        burn::tensor::module::linear(x, self.weight.val(), self.bias.as_ref().map(|b| b.val()))
    }
}

#[derive(Module, Debug)]
pub struct LayerNorm {
    pub weight: Param<Tensor<1>>,
    pub bias: Param<Tensor<1>>,
    #[module(skip)]
    pub eps: f64,
}

impl LayerNorm {
    pub fn load(w: &Loader, prefix: &str, dim: usize, eps: f64) -> Result<Self> {
        Ok(LayerNorm {
            weight: Param::from_tensor(w.tensor(&format!("{prefix}.weight"), [dim])?),
            bias: Param::from_tensor(w.tensor(&format!("{prefix}.bias"), [dim])?),
            eps,
        })
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        burn::tensor::module::layer_norm(x, self.weight.val(), Some(self.bias.val()), self.eps)
    }
}

/// Multi-head self-attention (CLIPAttention, eager path).
#[derive(Module, Debug)]
pub struct Attention {
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub out_proj: Linear,
    #[module(skip)]
    pub heads: usize,
}

impl Attention {
    pub fn load(w: &Loader, prefix: &str, hidden: usize, heads: usize) -> Result<Self> {
        let proj = |name: &str| Linear::load(w, &format!("{prefix}.{name}"), hidden, hidden, true);
        Ok(Attention {
            q_proj: proj("q_proj")?,
            k_proj: proj("k_proj")?,
            v_proj: proj("v_proj")?,
            out_proj: proj("out_proj")?,
            heads,
        })
    }

    /// `x`: `[batch, len, hidden]`; `mask`: additive, broadcastable to
    /// `[batch, heads, len, len]`.
    pub fn forward(&self, x: Tensor<3>, mask: Option<Tensor<4>>) -> Tensor<3> {
        let [batch, len, hidden] = x.dims();
        let head_dim = hidden / self.heads;
        let split = |t: Tensor<3>| t.reshape([batch, len, self.heads, head_dim]).swap_dims(1, 2);
        let q = split(self.q_proj.forward(x.clone()));
        let k = split(self.k_proj.forward(x.clone()));
        let v = split(self.v_proj.forward(x));
        let mut scores = q.matmul(k.swap_dims(2, 3)).mul_scalar((head_dim as f64).powf(-0.5));
        if let Some(mask) = mask {
            scores = scores + mask;
        }
        let context = softmax(scores, 3).matmul(v);
        self.out_proj.forward(context.swap_dims(1, 2).reshape([batch, len, hidden]))
    }
}

#[derive(Module, Debug)]
pub struct Mlp {
    pub fc1: Linear,
    pub fc2: Linear,
    #[module(skip)]
    pub activation: Activation,
}

impl Mlp {
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let h = self.fc1.forward(x);
        let h = match self.activation {
            Activation::QuickGelu => h.clone() * sigmoid(h.mul_scalar(1.702)),
            Activation::Gelu => gelu(h),
        };
        self.fc2.forward(h)
    }
}

/// Sizes shared by every layer of one encoder.
#[derive(Clone, Copy, Debug)]
pub struct EncoderShape {
    pub hidden: usize,
    pub intermediate: usize,
    pub heads: usize,
    pub layers: usize,
    pub activation: Activation,
    pub eps: f64,
}

/// Pre-norm residual block (CLIPEncoderLayer).
#[derive(Module, Debug)]
pub struct EncoderLayer {
    pub self_attn: Attention,
    pub layer_norm1: LayerNorm,
    pub mlp: Mlp,
    pub layer_norm2: LayerNorm,
}

impl EncoderLayer {
    pub fn load(w: &Loader, prefix: &str, s: &EncoderShape) -> Result<Self> {
        Ok(EncoderLayer {
            self_attn: Attention::load(w, &format!("{prefix}.self_attn"), s.hidden, s.heads)?,
            layer_norm1: LayerNorm::load(w, &format!("{prefix}.layer_norm1"), s.hidden, s.eps)?,
            mlp: Mlp {
                fc1: Linear::load(w, &format!("{prefix}.mlp.fc1"), s.hidden, s.intermediate, true)?,
                fc2: Linear::load(w, &format!("{prefix}.mlp.fc2"), s.intermediate, s.hidden, true)?,
                activation: s.activation,
            },
            layer_norm2: LayerNorm::load(w, &format!("{prefix}.layer_norm2"), s.hidden, s.eps)?,
        })
    }

    pub fn forward(&self, x: Tensor<3>, mask: Option<Tensor<4>>) -> Tensor<3> {
        let x = x.clone() + self.self_attn.forward(self.layer_norm1.forward(x), mask);
        x.clone() + self.mlp.forward(self.layer_norm2.forward(x))
    }
}

#[derive(Module, Debug)]
pub struct Encoder {
    pub layers: Vec<EncoderLayer>,
}

impl Encoder {
    pub fn load(w: &Loader, prefix: &str, s: &EncoderShape) -> Result<Self> {
        let layers = (0..s.layers)
            .map(|i| EncoderLayer::load(w, &format!("{prefix}.layers.{i}"), s))
            .collect::<Result<_>>()?;
        Ok(Encoder { layers })
    }

    /// Runs every layer; when `hidden_states` is given it receives the input
    /// and each layer's output, as `output_hidden_states=True` does.
    pub fn forward(
        &self,
        mut x: Tensor<3>,
        mask: Option<Tensor<4>>,
        mut hidden_states: Option<&mut Vec<Tensor<3>>>,
    ) -> Tensor<3> {
        for layer in &self.layers {
            if let Some(states) = hidden_states.as_deref_mut() {
                states.push(x.clone());
            }
            x = layer.forward(x, mask.clone());
        }
        if let Some(states) = hidden_states {
            states.push(x.clone());
        }
        x
    }
}
