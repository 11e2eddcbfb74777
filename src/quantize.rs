//! Writing CLIP Lens' int8 format (see [`crate::weights`]) from a float
//! checkpoint, and measuring what it costs.

use std::collections::HashMap;

use safetensors::Dtype;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::weights::{HostTensor, IGNORED_TENSORS, INT8_FORMAT, INT8_FORMAT_VERSION, SCALE_SUFFIX, WeightFile, WeightFormat, quantize_rows, Raw, f32_bytes, serialize};

/// Where a quantized file came from, written into its metadata.
pub struct Provenance {
    /// A hub id or a file name.
    pub source_model: String,
}

/// Tensors that stay f32: vectors (biases, norms, the class token) and scalars.
fn stays_float(shape: &[usize]) -> bool {
    shape.len() < 2
}

/// Quantizes every matrix and embedding table of a float checkpoint to
/// per-row symmetric int8; returns the new file's bytes.
pub fn quantize_checkpoint(input: &[u8], origin: &str, provenance: &Provenance) -> Result<Vec<u8>> {
    let file = WeightFile::parse(input, origin)?;
    if file.format() == WeightFormat::Int8 {
        return Err(Error::weights(origin, "is already in the int8 format"));
    }
    let mut tensors: Vec<(String, Raw)> = Vec::new();
    // Buffers such as `position_ids` (int64 in older checkpoints) are not weights: drop them.
    for name in file.names().into_iter().filter(|n| !IGNORED_TENSORS.contains(&n.as_str())) {
        let HostTensor::F32 { shape, values } = file.get(&name)? else {
            return Err(Error::tensor(origin, &name, "is int8 in a float checkpoint"));
        };
        if stays_float(&shape) {
            tensors.push((name, Raw { dtype: Dtype::F32, shape, bytes: f32_bytes(&values) }));
        } else {
            let (q, scales) = quantize_rows(&values, shape[0]);
            let scale_shape = vec![shape[0]];
            tensors.push((name.clone(), Raw { dtype: Dtype::I8, shape, bytes: q.iter().map(|&v| v as u8).collect() }));
            tensors.push((format!("{name}{SCALE_SUFFIX}"), Raw { dtype: Dtype::F32, shape: scale_shape, bytes: f32_bytes(&scales) }));
        }
    }
    let metadata = HashMap::from([
        ("format".to_string(), INT8_FORMAT.to_string()),
        ("format_version".to_string(), INT8_FORMAT_VERSION.to_string()),
        ("quantization".to_string(), "int8 symmetric, one f32 scale per output row".to_string()),
        ("source_model".to_string(), provenance.source_model.clone()),
        ("source_sha256".to_string(), sha256_hex(input)),
    ]);
    serialize(&tensors, metadata, origin, "int8 file")
}


pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Size and accuracy cost of a quantized file.
#[derive(serde::Serialize, Debug)]
pub struct QuantizeReport {
    pub input_bytes: usize,
    pub output_bytes: usize,
    /// `output_bytes / input_bytes`.
    pub size_ratio: f64,
    /// Embedding agreement on the probe set, when the model could be loaded.
    pub agreement: Option<QuantizationAgreement>,
}

/// Cosine similarity of float vs int8 embeddings on [`probe_images`] and [`PROBE_PROMPTS`].
#[derive(serde::Serialize, Debug, Clone)]
pub struct QuantizationAgreement {
    pub image_cosine_min: f32,
    pub image_cosine_mean: f32,
    pub text_cosine_min: f32,
    pub text_cosine_mean: f32,
    pub probe_images: usize,
    pub probe_prompts: usize,
}

impl QuantizeReport {
    pub fn sizes(input_bytes: usize, output_bytes: usize) -> Self {
        QuantizeReport { input_bytes, output_bytes, size_ratio: output_bytes as f64 / input_bytes as f64, agreement: None }
    }

    pub fn summary(&self, input: &str, output: &str) -> String {
        let mb = |b: usize| b as f64 / 1e6;
        let mut s = format!(
            "{input} ({:.2} MB) -> {output} ({:.2} MB): {:.1}% of the size",
            mb(self.input_bytes),
            mb(self.output_bytes),
            100.0 * self.size_ratio
        );
        if let Some(e) = &self.agreement {
            s += &format!(
                "\ncosine(float, int8) on {} probe images: min {:.5}, mean {:.5}\ncosine(float, int8) on {} probe prompts: min {:.5}, mean {:.5}",
                e.probe_images, e.image_cosine_min, e.image_cosine_mean, e.probe_prompts, e.text_cosine_min, e.text_cosine_mean
            );
        }
        s
    }
}

/// Fixed prompts for measuring quantization error.
pub const PROBE_PROMPTS: [&str; 8] = [
    "a photo of a cat",
    "a photo of a dog",
    "a red circle on a blue background",
    "an astronaut riding a horse",
    "a diagram with black and white stripes",
    "two people next to a car",
    "a bowl of fruit on a wooden table",
    "the word hello written in green",
];

/// Eight deterministic 256x256 images (gradients, stripes, checkers, noise,
/// discs) that exercise different frequencies and colors.
pub fn probe_images() -> Vec<crate::preprocess::RgbImage> {
    let size = 256usize;
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 56) as u8
    };
    (0..8)
        .map(|k| {
            let mut pixels = Vec::with_capacity(size * size * 3);
            for y in 0..size {
                for x in 0..size {
                    let (fx, fy) = (x as f32 / size as f32, y as f32 / size as f32);
                    let d = ((fx - 0.5).powi(2) + (fy - 0.5).powi(2)).sqrt();
                    let px: [u8; 3] = match k {
                        0 => [(fx * 255.0) as u8, (fy * 255.0) as u8, 128],
                        1 => if (x / 16 + y / 16) % 2 == 0 { [240, 240, 240] } else { [20, 20, 20] },
                        2 => if (x / 8) % 2 == 0 { [200, 30, 30] } else { [30, 30, 200] },
                        3 => [noise(), noise(), noise()],
                        4 => if d < 0.3 { [220, 40, 40] } else { [40, 60, 200] },
                        5 => [((fx * 12.0).sin() * 120.0 + 128.0) as u8, ((fy * 7.0).cos() * 120.0 + 128.0) as u8, 60],
                        6 => if d < 0.2 { [250, 220, 0] } else if d < 0.35 { [0, 160, 60] } else { [250, 250, 250] },
                        _ => { let n = noise() / 4; [n + 100, n + 80, n + 60] }
                    };
                    pixels.extend_from_slice(&px);
                }
            }
            crate::preprocess::RgbImage::new(size, size, pixels)
        })
        .collect()
}

/// Loads both models and compares their embeddings of the probe set.
pub async fn measure_quantization_agreement(
    float_files: &crate::clip::ModelFiles,
    int8_files: &crate::clip::ModelFiles,
    device: &burn::tensor::Device,
) -> Result<QuantizationAgreement> {
    use crate::clip::{Clip, dot};
    let images = probe_images();
    let float = Clip::load(float_files, device)?;
    let (fi, ft) = (float.embed_images(&images).await?, float.embed_texts(&PROBE_PROMPTS).await?.embeds);
    drop(float);
    let int8 = Clip::load(int8_files, device)?;
    let (qi, qt) = (int8.embed_images(&images).await?, int8.embed_texts(&PROBE_PROMPTS).await?.embeds);
    let stats = |a: &[Vec<f32>], b: &[Vec<f32>]| {
        let c: Vec<f32> = a.iter().zip(b).map(|(x, y)| dot(x, y)).collect();
        (c.iter().copied().fold(f32::INFINITY, f32::min), c.iter().sum::<f32>() / c.len() as f32)
    };
    let (image_cosine_min, image_cosine_mean) = stats(&fi, &qi);
    let (text_cosine_min, text_cosine_mean) = stats(&ft, &qt);
    Ok(QuantizationAgreement {
        image_cosine_min,
        image_cosine_mean,
        text_cosine_min,
        text_cosine_mean,
        probe_images: images.len(),
        probe_prompts: PROBE_PROMPTS.len(),
    })
}
