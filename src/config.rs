//! Model configuration, read straight from a Hugging Face CLIP `config.json`
//! (and `preprocessor_config.json`), so no size is ever copied by hand.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Activation used inside the transformer MLPs (`hidden_act` in the config).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `x * sigmoid(1.702 x)`: what OpenAI's CLIP checkpoints use.
    QuickGelu,
    /// Exact (erf) GELU, `torch.nn.functional.gelu`.
    Gelu,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TextConfig {
    #[serde(default = "defaults::vocab_size")]
    pub vocab_size: usize,
    #[serde(default = "defaults::text_hidden")]
    pub hidden_size: usize,
    #[serde(default = "defaults::text_intermediate")]
    pub intermediate_size: usize,
    #[serde(default = "defaults::layers")]
    pub num_hidden_layers: usize,
    #[serde(default = "defaults::text_heads")]
    pub num_attention_heads: usize,
    #[serde(default = "defaults::max_positions")]
    pub max_position_embeddings: usize,
    #[serde(default = "defaults::activation")]
    pub hidden_act: Activation,
    #[serde(default = "defaults::eps")]
    pub layer_norm_eps: f64,
    /// `transformers` pools at `argmax(input_ids)` when this is 2 (the value in
    /// OpenAI's configs, whose EOS is the largest id) and at the first
    /// `eos_token_id` otherwise.
    #[serde(default = "defaults::legacy_eos")]
    pub eos_token_id: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VisionConfig {
    #[serde(default = "defaults::vision_hidden")]
    pub hidden_size: usize,
    #[serde(default = "defaults::vision_intermediate")]
    pub intermediate_size: usize,
    #[serde(default = "defaults::layers")]
    pub num_hidden_layers: usize,
    #[serde(default = "defaults::vision_heads")]
    pub num_attention_heads: usize,
    #[serde(default = "defaults::channels")]
    pub num_channels: usize,
    #[serde(default = "defaults::image_size")]
    pub image_size: usize,
    #[serde(default = "defaults::patch_size")]
    pub patch_size: usize,
    #[serde(default = "defaults::activation")]
    pub hidden_act: Activation,
    #[serde(default = "defaults::eps")]
    pub layer_norm_eps: f64,
}

/// The `config.json` of a Hugging Face `CLIPModel`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClipConfig {
    pub text_config: TextConfig,
    pub vision_config: VisionConfig,
    #[serde(default = "defaults::projection_dim")]
    pub projection_dim: usize,
    #[serde(default = "defaults::logit_scale")]
    pub logit_scale_init_value: f64,
}

impl ClipConfig {
    /// Parses a `config.json`; `origin` names the file in error messages.
    pub fn from_json(bytes: &[u8], origin: &str) -> Result<Self> {
        let config: ClipConfig = serde_json::from_slice(bytes)
            .map_err(|e| Error::config(origin, format!("not a CLIP config.json: {e}")))?;
        config.validate(origin)?;
        Ok(config)
    }

    fn validate(&self, origin: &str) -> Result<()> {
        let t = &self.text_config;
        let v = &self.vision_config;
        let check = |ok: bool, what: String| {
            if ok { Ok(()) } else { Err(Error::config(origin, what)) }
        };
        check(t.num_attention_heads > 0 && v.num_attention_heads > 0, "num_attention_heads must be positive".into())?;
        check(v.num_channels == 3, format!("num_channels {} is not supported (RGB images have 3)", v.num_channels))?;
        check(
            t.hidden_size > 0 && t.hidden_size % t.num_attention_heads.max(1) == 0,
            format!(
                "text hidden_size {} is not divisible by num_attention_heads {}",
                t.hidden_size, t.num_attention_heads
            ),
        )?;
        check(
            v.hidden_size > 0 && v.hidden_size % v.num_attention_heads.max(1) == 0,
            format!(
                "vision hidden_size {} is not divisible by num_attention_heads {}",
                v.hidden_size, v.num_attention_heads
            ),
        )?;
        check(
            v.patch_size > 0 && v.image_size >= v.patch_size && v.image_size % v.patch_size == 0,
            format!("image_size {} is not a multiple of patch_size {}", v.image_size, v.patch_size),
        )?;
        check(self.projection_dim > 0, "projection_dim is 0".into())?;
        check(t.max_position_embeddings > 1, "max_position_embeddings must exceed 1".into())?;
        Ok(())
    }

    /// openai/clip-vit-base-patch32.
    pub fn vit_base_patch32() -> Self {
        ClipConfig {
            text_config: TextConfig {
                vocab_size: 49408,
                hidden_size: 512,
                intermediate_size: 2048,
                num_hidden_layers: 12,
                num_attention_heads: 8,
                max_position_embeddings: 77,
                hidden_act: Activation::QuickGelu,
                layer_norm_eps: 1e-5,
                eos_token_id: 2,
            },
            vision_config: VisionConfig {
                hidden_size: 768,
                intermediate_size: 3072,
                num_hidden_layers: 12,
                num_attention_heads: 12,
                num_channels: 3,
                image_size: 224,
                patch_size: 32,
                hidden_act: Activation::QuickGelu,
                layer_norm_eps: 1e-5,
            },
            projection_dim: 512,
            logit_scale_init_value: 2.6592,
        }
    }

    /// openai/clip-vit-base-patch16.
    pub fn vit_base_patch16() -> Self {
        let mut config = Self::vit_base_patch32();
        config.vision_config.patch_size = 16;
        config
    }

    /// Shapes a checkpoint of this config must give its main tensors: enough
    /// to tell, from a safetensors header alone, that a file is (or is not)
    /// this model before its weights are downloaded.
    pub fn key_tensor_shapes(&self) -> Vec<(&'static str, Vec<usize>)> {
        let (t, v) = (&self.text_config, &self.vision_config);
        vec![
            ("text_model.embeddings.token_embedding.weight", vec![t.vocab_size, t.hidden_size]),
            ("text_model.embeddings.position_embedding.weight", vec![t.max_position_embeddings, t.hidden_size]),
            ("vision_model.embeddings.patch_embedding.weight", vec![v.hidden_size, v.num_channels, v.patch_size, v.patch_size]),
            ("vision_model.embeddings.position_embedding.weight", vec![self.num_patches() + 1, v.hidden_size]),
            ("text_projection.weight", vec![self.projection_dim, t.hidden_size]),
            ("visual_projection.weight", vec![self.projection_dim, v.hidden_size]),
        ]
    }

    /// Checks a weights file's tensor shapes (`shape_of(name)`, `None` when
    /// absent) against [`Self::key_tensor_shapes`]; errors name `weights` and
    /// `config_origin` as the loader's do.
    pub fn check_key_tensors(&self, weights: &str, config_origin: &str, shape_of: impl Fn(&str) -> Option<Vec<usize>>) -> Result<()> {
        for (name, want) in self.key_tensor_shapes() {
            match shape_of(name) {
                None => return Err(Error::tensor(weights, name, "missing (is this a CLIP checkpoint in the Hugging Face layout?)")),
                Some(shape) if shape != want => {
                    return Err(Error::tensor(weights, name, format!("shape {shape:?} does not match {want:?}, implied by {config_origin}")));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Number of image patches (tokens without the class token).
    pub fn num_patches(&self) -> usize {
        let side = self.vision_config.image_size / self.vision_config.patch_size;
        side * side
    }
}

/// What `CLIPImageProcessor` does to an image, from `preprocessor_config.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PreprocessConfig {
    /// Shortest side after resizing.
    pub shortest_edge: usize,
    /// Center-crop size (height, width).
    pub crop_size: (usize, usize),
    pub image_mean: [f32; 3],
    pub image_std: [f32; 3],
    pub rescale_factor: f32,
}

impl PreprocessConfig {
    /// OpenAI CLIP's processor settings for a model of `image_size` pixels.
    pub fn openai(image_size: usize) -> Self {
        PreprocessConfig {
            shortest_edge: image_size,
            crop_size: (image_size, image_size),
            image_mean: [0.481_454_66, 0.457_827_5, 0.408_210_73],
            image_std: [0.268_629_54, 0.261_302_58, 0.275_777_11],
            rescale_factor: 1.0 / 255.0,
        }
    }

    /// Reads the fields CLIP Lens honors from a `preprocessor_config.json`,
    /// falling back to OpenAI's values for `image_size` where one is absent.
    pub fn from_json(bytes: &[u8], origin: &str, image_size: usize) -> Result<Self> {
        #[derive(Deserialize)]
        struct Raw {
            size: Option<serde_json::Value>,
            crop_size: Option<serde_json::Value>,
            image_mean: Option<[f32; 3]>,
            image_std: Option<[f32; 3]>,
            rescale_factor: Option<f32>,
            resample: Option<u32>,
            do_resize: Option<bool>,
            do_center_crop: Option<bool>,
            do_rescale: Option<bool>,
            do_normalize: Option<bool>,
        }
        let raw: Raw = serde_json::from_slice(bytes)
            .map_err(|e| Error::config(origin, format!("not a preprocessor config: {e}")))?;
        if let Some(resample) = raw.resample
            && resample != 3
        {
            return Err(Error::config(
                origin,
                format!("resample {resample} is not supported (only 3, bicubic)"),
            ));
        }
        for (flag, value) in [
            ("do_resize", raw.do_resize),
            ("do_center_crop", raw.do_center_crop),
            ("do_rescale", raw.do_rescale),
            ("do_normalize", raw.do_normalize),
        ] {
            if value == Some(false) {
                return Err(Error::config(origin, format!("{flag}: false is not supported (CLIP Lens always does it)")));
            }
        }
        let mut config = Self::openai(image_size);
        let side = |v: &serde_json::Value, key: &str| v.get(key).and_then(|x| x.as_u64());
        if let Some(size) = &raw.size {
            match size.as_u64().or_else(|| side(size, "shortest_edge")) {
                Some(s) => config.shortest_edge = s as usize,
                None => {
                    return Err(Error::config(
                        origin,
                        format!("size {size} is not supported (only a shortest_edge resize, as CLIP uses)"),
                    ));
                }
            }
        }
        if let Some(crop) = &raw.crop_size {
            if let Some(s) = crop.as_u64() {
                config.crop_size = (s as usize, s as usize);
            } else if let (Some(h), Some(w)) = (side(crop, "height"), side(crop, "width")) {
                config.crop_size = (h as usize, w as usize);
            }
        }
        if let Some(mean) = raw.image_mean {
            config.image_mean = mean;
        }
        if let Some(std) = raw.image_std {
            config.image_std = std;
        }
        if let Some(f) = raw.rescale_factor {
            config.rescale_factor = f;
        }
        Ok(config)
    }
}

mod defaults {
    use super::Activation;
    pub fn vocab_size() -> usize { 49408 }
    pub fn text_hidden() -> usize { 512 }
    pub fn text_intermediate() -> usize { 2048 }
    pub fn layers() -> usize { 12 }
    pub fn text_heads() -> usize { 8 }
    pub fn max_positions() -> usize { 77 }
    pub fn activation() -> Activation { Activation::QuickGelu }
    pub fn eps() -> f64 { 1e-5 }
    pub fn legacy_eos() -> i64 { 2 }
    pub fn vision_hidden() -> usize { 768 }
    pub fn vision_intermediate() -> usize { 3072 }
    pub fn vision_heads() -> usize { 12 }
    pub fn channels() -> usize { 3 }
    pub fn image_size() -> usize { 224 }
    pub fn patch_size() -> usize { 32 }
    pub fn projection_dim() -> usize { 512 }
    pub fn logit_scale() -> f64 { 2.6592 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_real_vit_b32_config() {
        // The real file lives beside the checkout (../shared), never in the repo.
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/clip-vit-base-patch32/config.json");
        let bytes = std::fs::read(path).expect("../shared/data is beside the checkout");
        let parsed = ClipConfig::from_json(&bytes, path).unwrap();
        assert_eq!(parsed, ClipConfig::vit_base_patch32());
    }

    #[test]
    fn rejects_configs_the_model_cannot_run() {
        for broken in [
            |c: &mut ClipConfig| c.text_config.num_attention_heads = 0,
            |c: &mut ClipConfig| c.vision_config.num_channels = 4,
            |c: &mut ClipConfig| c.vision_config.image_size = 16,
        ] {
            let mut config = ClipConfig::vit_base_patch32();
            broken(&mut config);
            assert!(ClipConfig::from_json(&serde_json::to_vec(&config).unwrap(), "c.json").is_err());
        }
    }

    #[test]
    fn refuses_preprocessing_it_does_not_implement() {
        for json in [r#"{"do_center_crop": false}"#, r#"{"size": {"height": 224, "width": 224}}"#, r#"{"resample": 2}"#] {
            let err = PreprocessConfig::from_json(json.as_bytes(), "p.json", 224).unwrap_err().to_string();
            assert!(err.starts_with("p.json: ") && err.contains("not supported"), "{err}");
        }
        assert!(PreprocessConfig::from_json(br#"{"size": {"shortest_edge": 224}}"#, "p.json", 224).is_ok());
    }

    #[test]
    fn rejects_inconsistent_heads_naming_the_file() {
        let mut config = ClipConfig::vit_base_patch32();
        config.vision_config.num_attention_heads = 7;
        let json = serde_json::to_vec(&config).unwrap();
        let err = ClipConfig::from_json(&json, "bad/config.json").unwrap_err().to_string();
        assert!(err.contains("bad/config.json") && err.contains("num_attention_heads"), "{err}");
    }
}
