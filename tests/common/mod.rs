//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;

use burn::tensor::{Device, Tensor, TensorData};
use cliplens::config::ClipConfig;
use cliplens::model::{ClipModel, TokenBatch};
use cliplens::weights::WeightFile;
use safetensors::{Dtype, SafeTensors};

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// `../shared/data`: real tokenizer and configs, read but never copied.
pub fn shared_data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data")
}

/// Every decodable fixture image (all formats the CLI reads), sorted by name;
/// `not_an_image.png` is left out.
pub fn fixture_images() -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fixtures().join("images"))
        .unwrap()
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            !name.ends_with(".md") && !name.ends_with(".safetensors") && name != "not_an_image.png"
        })
        .collect();
    paths.sort();
    paths
}

/// A device the parity tests run on, with its tolerance: Flex (CPU, 1e-4) or
/// wgpu (lavapipe in CI, 1e-3). The wgpu tests are marked
/// `#[cfg_attr(skip_wgpu, ignore = ...)]`: where no Vulkan exists,
/// CLIPLENS_SKIP_WGPU=1 reports them as ignored instead of failing them.
pub fn device(backend: &str) -> (Device, f32) {
    match backend {
        "cpu" => (Device::flex(), 1e-4),
        "wgpu" => (
            cliplens::native::device(cliplens::native::Backend::Wgpu)
                .expect("wgpu device (install mesa-vulkan-drivers, or set CLIPLENS_SKIP_WGPU=1 to skip the wgpu tests)"),
            1e-3,
        ),
        other => panic!("no backend {other}"),
    }
}

/// Tensors of a reference safetensors file, converted to f32 (ints too).
pub struct Reference {
    pub tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
}

impl Reference {
    pub fn open(path: &std::path::Path) -> Self {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Self::from_bytes(&bytes)
    }

    pub fn from_bytes(bytes: &[u8]) -> Self {
        let st = SafeTensors::deserialize(bytes).unwrap();
        let mut tensors = HashMap::new();
        for (name, view) in st.tensors() {
            let data = view.data();
            let values: Vec<f32> = match view.dtype() {
                Dtype::F32 => data.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect(),
                Dtype::I64 => data.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap()) as f32).collect(),
                Dtype::U8 => data.iter().map(|&b| b as f32).collect(),
                other => panic!("{name}: unexpected dtype {other:?}"),
            };
            tensors.insert(name, (view.shape().to_vec(), values));
        }
        Reference { tensors }
    }

    pub fn get(&self, name: &str) -> &(Vec<usize>, Vec<f32>) {
        self.tensors.get(name).unwrap_or_else(|| panic!("reference has no `{name}`"))
    }

    /// The reference's prompts (`text.input_ids`, `text.attention_mask`),
    /// the first `rows` of them or all.
    pub fn tokens(&self, rows: Option<usize>) -> TokenBatch {
        let (shape, ids) = self.get("text.input_ids");
        let (_, mask) = self.get("text.attention_mask");
        let (batch, len) = (rows.unwrap_or(shape[0]).min(shape[0]), shape[1]);
        TokenBatch {
            ids: ids[..batch * len].iter().map(|&v| v as u32).collect(),
            attention_mask: mask[..batch * len].iter().map(|&v| v as u8).collect(),
            batch,
            len,
        }
    }

    /// The reference's images (`vision.pixel_values`) on `device`.
    pub fn pixels(&self, device: &Device) -> Tensor<4> {
        let (shape, values) = self.get("vision.pixel_values").clone();
        Tensor::from_data(TensorData::new(values, [shape[0], shape[1], shape[2], shape[3]]), device)
    }
}

pub fn tiny_config() -> ClipConfig {
    let path = fixtures().join("tiny/config.json");
    ClipConfig::from_json(&std::fs::read(&path).unwrap(), "tiny/config.json").unwrap()
}

/// The tiny random checkpoint (`tests/fixtures/tiny/<weights>`) on `device`.
pub fn load_tiny(weights: &str, device: &Device) -> ClipModel {
    let bytes = std::fs::read(fixtures().join("tiny").join(weights)).unwrap();
    let file = WeightFile::parse(&bytes, weights).unwrap();
    ClipModel::load(&tiny_config(), "tiny/config.json", &file, device).unwrap()
}

pub fn values<const D: usize>(t: Tensor<D>) -> (Vec<usize>, Vec<f32>) {
    let shape = t.dims().to_vec();
    (shape, pollster::block_on(cliplens::clip::read_vec(t)).unwrap())
}

/// Largest absolute difference; panics on a shape mismatch.
pub fn max_abs_diff(what: &str, actual: &(Vec<usize>, Vec<f32>), expected: &(Vec<usize>, Vec<f32>)) -> f32 {
    assert_eq!(actual.0, expected.0, "{what}: shape");
    actual.1.iter().zip(&expected.1).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max)
}

pub fn assert_close(what: &str, actual: &(Vec<usize>, Vec<f32>), expected: &(Vec<usize>, Vec<f32>), tol: f32) {
    let diff = max_abs_diff(what, actual, expected);
    assert!(diff <= tol, "{what}: max abs diff {diff:e} > {tol:e}");
    assert!(actual.1.iter().all(|v| v.is_finite()), "{what}: non-finite values");
}
