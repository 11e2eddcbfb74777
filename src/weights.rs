//! Reading CLIP weights from safetensors bytes (the browser has bytes, not
//! paths): Hugging Face f32/f16/bf16 checkpoints and CLIP Lens' own int8 format.
//!
//! The int8 format is an ordinary safetensors file: each matrix or embedding
//! table `NAME` is stored as `I8` with a companion `NAME_scale` (`F32`, one
//! symmetric scale per output row, the first dimension), everything else stays
//! `F32`; the header metadata says which format and where it came from.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};

use safetensors::{Dtype, SafeTensorError, SafeTensors, View};

use crate::error::{Error, Result};

/// `format` metadata value of CLIP Lens' int8 files.
pub const INT8_FORMAT: &str = "cliplens-int8";
/// Version of the int8 layout; bump when it changes incompatibly.
pub const INT8_FORMAT_VERSION: &str = "1";
/// Suffix of the per-row scale tensor that accompanies an int8 tensor.
pub const SCALE_SUFFIX: &str = "_scale";

/// Buffers some checkpoints carry that are not weights (transformers
/// recomputes them); they are accepted and ignored.
pub const IGNORED_TENSORS: &[&str] =
    &["text_model.embeddings.position_ids", "vision_model.embeddings.position_ids"];

/// A tensor read into host memory, not yet on a device.
#[derive(Clone, Debug, PartialEq)]
pub enum HostTensor {
    F32 { shape: Vec<usize>, values: Vec<f32> },
    /// Symmetric int8 with one scale per row (first dimension):
    /// `value[r, ..] = q[r, ..] * scales[r]`.
    Int8Rows { shape: Vec<usize>, values: Vec<i8>, scales: Vec<f32> },
}

impl HostTensor {
    pub fn shape(&self) -> &[usize] {
        match self {
            HostTensor::F32 { shape, .. } | HostTensor::Int8Rows { shape, .. } => shape,
        }
    }

    /// Dequantized f32 values (a copy for int8, the values themselves for f32).
    pub fn to_f32(&self) -> Vec<f32> {
        match self {
            HostTensor::F32 { values, .. } => values.clone(),
            HostTensor::Int8Rows { values, scales, .. } => {
                let row = values.len() / scales.len().max(1);
                values
                    .chunks(row.max(1))
                    .zip(scales)
                    .flat_map(|(chunk, &s)| chunk.iter().map(move |&q| q as f32 * s))
                    .collect()
            }
        }
    }
}

/// What kind of file a [`WeightFile`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightFormat {
    /// A Hugging Face checkpoint (f32, f16 or bf16 tensors).
    Float,
    /// CLIP Lens' int8 format.
    Int8,
}

/// A parsed safetensors file that hands out tensors by name and remembers
/// which ones were taken, so unknown tensors can be reported at the end.
pub struct WeightFile<'a> {
    origin: String,
    tensors: SafeTensors<'a>,
    metadata: HashMap<String, String>,
    taken: RefCell<BTreeSet<String>>,
}

impl<'a> WeightFile<'a> {
    /// Parses `bytes`; `origin` names the file in every error.
    pub fn parse(bytes: &'a [u8], origin: &str) -> Result<Self> {
        let tensors = SafeTensors::deserialize(bytes)
            .map_err(|e| Error::weights(origin, describe_safetensors_error(&e, bytes.len())))?;
        let metadata = SafeTensors::read_metadata(bytes)
            .map(|(_, m)| m.metadata().clone().unwrap_or_default())
            .unwrap_or_default();
        Ok(WeightFile { origin: origin.to_string(), tensors, metadata, taken: RefCell::default() })
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn metadata(&self) -> &HashMap<String, String> {
        &self.metadata
    }

    pub fn format(&self) -> WeightFormat {
        if self.metadata.get("format").map(String::as_str) == Some(INT8_FORMAT) {
            WeightFormat::Int8
        } else {
            WeightFormat::Float
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.tensors.tensor(name).is_ok()
    }

    /// Names of all tensors in the file, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.tensors.names().into_iter().map(String::from).collect();
        names.sort();
        names
    }

    /// Reads tensor `name` (any shape; callers check it).
    pub fn get(&self, name: &str) -> Result<HostTensor> {
        let view = self.tensors.tensor(name).map_err(|_| {
            Error::tensor(&self.origin, name, "missing (is this a CLIP checkpoint in the Hugging Face layout?)")
        })?;
        self.taken.borrow_mut().insert(name.to_string());
        let shape = view.shape().to_vec();
        let bytes = view.data();
        if view.dtype() == Dtype::I8 {
            return self.int8(name, shape, bytes);
        }
        let values = floats_from_bytes(view.dtype(), bytes).ok_or_else(|| unsupported_dtype(&self.origin, name, view.dtype()))?;
        Ok(HostTensor::F32 { shape, values })
    }

    fn int8(&self, name: &str, shape: Vec<usize>, bytes: &[u8]) -> Result<HostTensor> {
        let scale_name = format!("{name}{SCALE_SUFFIX}");
        let rows = shape.first().copied().unwrap_or(1);
        let scales = match self.get(&scale_name) {
            Ok(HostTensor::F32 { shape: s, values }) if s == [rows] => values,
            Ok(other) => {
                return Err(Error::tensor(
                    &self.origin,
                    &scale_name,
                    format!("expected {rows} f32 row scales, found shape {:?}", other.shape()),
                ));
            }
            Err(_) => {
                return Err(Error::tensor(&self.origin, name, format!("is int8 but `{scale_name}` is missing")));
            }
        };
        if let Some(bad) = scales.iter().find(|s| !s.is_finite()) {
            return Err(Error::tensor(&self.origin, &scale_name, format!("holds a non-finite scale {bad}")));
        }
        let values = bytes.iter().map(|&b| b as i8).collect();
        Ok(HostTensor::Int8Rows { shape, values, scales })
    }

    /// Fails naming the first tensor that was never read (an unknown tensor
    /// means the file is not the model the config describes).
    pub fn ensure_all_used(&self) -> Result<()> {
        let taken = self.taken.borrow();
        let unknown: Vec<String> = self
            .names()
            .into_iter()
            .filter(|n| !taken.contains(n) && !IGNORED_TENSORS.contains(&n.as_str()))
            .collect();
        match unknown.as_slice() {
            [] => Ok(()),
            [one] => Err(Error::tensor(&self.origin, one, "unknown to a CLIP model of this config")),
            [first, rest @ ..] => Err(Error::tensor(
                &self.origin,
                first,
                format!("unknown to a CLIP model of this config (and {} more unknown tensors)", rest.len()),
            )),
        }
    }
}

/// Little-endian f32, f16 or bf16 values as f32; `None` for other dtypes.
pub(crate) fn floats_from_bytes(dtype: Dtype, bytes: &[u8]) -> Option<Vec<f32>> {
    Some(match dtype {
        Dtype::F32 => bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        Dtype::F16 => bytes.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        Dtype::BF16 => bytes.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        _ => return None,
    })
}

pub(crate) fn unsupported_dtype(origin: &str, name: &str, dtype: Dtype) -> Error {
    Error::tensor(origin, name, format!("dtype {dtype:?} is not supported (f32, f16, bf16 or int8 expected)"))
}

pub(crate) fn describe_safetensors_error(err: &SafeTensorError, file_len: usize) -> String {
    match err {
        SafeTensorError::HeaderTooSmall | SafeTensorError::InvalidHeaderLength => {
            format!("not a safetensors file ({file_len} bytes, no valid header length)")
        }
        SafeTensorError::HeaderTooLarge => "not a safetensors file (header length is implausible)".into(),
        SafeTensorError::InvalidHeader(_)
        | SafeTensorError::InvalidHeaderStart
        | SafeTensorError::InvalidHeaderDeserialization(_)
        | SafeTensorError::JsonError(_) => "not a safetensors file (header is not valid JSON)".into(),
        SafeTensorError::MetadataIncompleteBuffer => {
            format!("truncated: the header promises more tensor data than the file's {file_len} bytes hold")
        }
        SafeTensorError::InvalidOffset(name) => {
            format!("corrupt or truncated: tensor `{name}` lies outside the file's data")
        }
        other => format!("not a readable safetensors file ({other})"),
    }
}

/// Per-row symmetric int8 quantization of a row-major tensor whose first
/// dimension is `rows`: returns the int8 values and one scale per row.
pub fn quantize_rows(values: &[f32], rows: usize) -> (Vec<i8>, Vec<f32>) {
    let row_len = values.len() / rows.max(1);
    let mut quantized = Vec::with_capacity(values.len());
    let mut scales = Vec::with_capacity(rows);
    for row in values.chunks(row_len.max(1)) {
        let max_abs = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let scale = if max_abs > 0.0 { max_abs / 127.0 } else { 1.0 };
        scales.push(scale);
        quantized.extend(row.iter().map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8));
    }
    (quantized, scales)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantize_rows_round_trips_within_half_a_step() {
        let values: Vec<f32> = (0..24).map(|i| ((i * 7919) % 23) as f32 / 7.0 - 1.5).collect();
        let (q, s) = quantize_rows(&values, 3);
        let back = HostTensor::Int8Rows { shape: vec![3, 8], values: q, scales: s.clone() }.to_f32();
        for (row, (a, b)) in values.chunks(8).zip(back.chunks(8)).enumerate() {
            for (x, y) in a.iter().zip(b) {
                assert!((x - y).abs() <= s[row] / 2.0 + 1e-6, "{x} vs {y}");
            }
        }
    }

    #[test]
    fn garbage_is_not_a_safetensors_file() {
        let err = WeightFile::parse(b"hello, I am not a model", "x.safetensors").err().unwrap();
        assert!(err.to_string().starts_with("x.safetensors: not a safetensors file"), "{err}");
    }
}

/// A tensor ready to be written: dtype, shape, little-endian bytes.
pub(crate) struct Raw {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub bytes: Vec<u8>,
}

impl View for &Raw {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

pub(crate) fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Writes f32 tensors `(name, shape, values)` as a safetensors file.
pub fn serialize_f32(
    tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
    metadata: HashMap<String, String>,
    origin: &str,
) -> Result<Vec<u8>> {
    let raws: Vec<(String, Raw)> = tensors
        .into_iter()
        .map(|(name, shape, values)| (name, Raw { dtype: Dtype::F32, shape, bytes: f32_bytes(&values) }))
        .collect();
    serialize(&raws, metadata, origin, "weights")
}

/// Writes `tensors` as a safetensors file; `what` names it in the error.
pub(crate) fn serialize(tensors: &[(String, Raw)], metadata: HashMap<String, String>, origin: &str, what: &str) -> Result<Vec<u8>> {
    let views: Vec<(&str, &Raw)> = tensors.iter().map(|(n, r)| (n.as_str(), r)).collect();
    safetensors::serialize(views, Some(metadata)).map_err(|e| Error::weights(origin, format!("cannot write {what}: {e}")))
}
