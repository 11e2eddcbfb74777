//! LAION's CLIP-based NSFW detector (LAION-AI/CLIP-based-NSFW-Detector, MIT),
//! read from its published zip (`clip_autokeras_nsfw_b32.zip`, a Keras
//! SavedModel) and run on the host: a small MLP over an OpenAI CLIP
//! ViT-B/32 image embedding. The inversion probe's NSFW-drift option scores
//! each inversion with it. Only the checkpoint's variables are read (the
//! TensorFlow tensor-bundle index, a LevelDB-format table, and its data file);
//! the architecture is the one `keras_metadata.pb` names: AutoKeras'
//! per-column encoding, Normalization, Dense 32, ReLU, Dense 32, ReLU, Dense 1,
//! sigmoid.

use std::collections::BTreeMap;
use std::io::Read;

use crate::{Error, Result};

/// sha256 of the zip as LAION publishes it (commit d6bb8fe).
pub const PUBLISHED_SHA256: &str = "78715ab9d64485167e8c9ade3b8e6761a17a16c24d114bd47431ac1dab46462b";
/// The embedding size it reads: OpenAI CLIP ViT-B/32's.
pub const INPUT_DIM: usize = 512;
/// AutoKeras took these three input columns for categorical ones when the
/// detector was trained; its encoding maps every number they hold to 0
/// (an empty vocabulary), so they enter the network as 0.
const CATEGORICAL_COLUMNS: [usize; 3] = [92, 133, 312];
/// Keras' Normalization divides by max(sqrt(variance), epsilon).
const KERAS_EPSILON: f32 = 1e-7;

struct Dense {
    /// Row-major [inputs, outputs], as Keras stores its kernel.
    kernel: Vec<f32>,
    bias: Vec<f32>,
}

impl Dense {
    fn apply(&self, x: &[f32]) -> Vec<f32> {
        let outputs = self.bias.len();
        let mut out = self.bias.clone();
        for (i, v) in x.iter().enumerate() {
            let row = &self.kernel[i * outputs..(i + 1) * outputs];
            for (o, w) in out.iter_mut().zip(row) {
                *o += v * w;
            }
        }
        out
    }
}

pub struct SafetyDetector {
    mean: Vec<f32>,
    scale: Vec<f32>,
    layers: [Dense; 3],
    /// The zip's sha256 and whether it is the published one.
    pub sha256: String,
    pub published: bool,
}

impl SafetyDetector {
    /// Reads the detector from LAION's zip (`origin` names it in messages).
    pub fn from_zip(bytes: &[u8], origin: &str) -> Result<Self> {
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
            .map_err(|e| Error::usage(origin, format!("is not a zip file ({e}); expected LAION's clip_autokeras_nsfw_b32.zip")))?;
        let mut member = |suffix: &str| -> Result<Vec<u8>> {
            let name = archive
                .file_names()
                .filter_map(|n| n.ok().map(|n| n.into_owned()))
                .find(|n| n.ends_with(suffix))
                .ok_or_else(|| Error::usage(origin, format!("holds no {suffix}: not LAION's safety detector")))?;
            let mut file = archive.by_name(&name).map_err(|e| Error::usage(origin, format!("{name}: {e}")))?;
            let mut out = Vec::new();
            file.read_to_end(&mut out).map_err(|e| Error::usage(origin, format!("{name}: {e}")))?;
            Ok(out)
        };
        let index = member("variables/variables.index")?;
        let data = member("variables/variables.data-00000-of-00001")?;
        let sha256 = crate::quantize::sha256_hex(bytes);
        let published = sha256 == PUBLISHED_SHA256;
        Self::from_checkpoint(&index, &data, origin, sha256, published)
    }

    fn from_checkpoint(index: &[u8], data: &[u8], origin: &str, sha256: String, published: bool) -> Result<Self> {
        let entries = bundle_entries(index).map_err(|e| Error::usage(origin, format!("variables.index: {e}")))?;
        let tensor = |key: &str, shape: &[usize]| -> Result<Vec<f32>> {
            let name = format!("{key}/.ATTRIBUTES/VARIABLE_VALUE");
            let e = entries.get(&name).ok_or_else(|| Error::usage(origin, format!("has no tensor {name}: not LAION's safety detector")))?;
            if e.dtype != DT_FLOAT || e.shape != shape {
                return Err(Error::usage(origin, format!("{name} is dtype {} of shape {:?}, not float32 {shape:?}", e.dtype, e.shape)));
            }
            let bytes = e
                .offset
                .checked_add(e.size)
                .and_then(|end| data.get(e.offset..end))
                .filter(|b| b.len() == 4 * shape.iter().product::<usize>())
                .ok_or_else(|| Error::usage(origin, format!("{name}: its bytes are missing from the data file (cut off?)")))?;
            Ok(bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))).collect())
        };
        let mean = tensor("layer_with_weights-1/mean", &[INPUT_DIM])?;
        let variance = tensor("layer_with_weights-1/variance", &[INPUT_DIM])?;
        let dense = |n: usize, inputs: usize, outputs: usize| -> Result<Dense> {
            Ok(Dense {
                kernel: tensor(&format!("layer_with_weights-{n}/kernel"), &[inputs, outputs])?,
                bias: tensor(&format!("layer_with_weights-{n}/bias"), &[outputs])?,
            })
        };
        let layers = [dense(2, INPUT_DIM, 32)?, dense(3, 32, 32)?, dense(4, 32, 1)?];
        let scale = variance.iter().map(|v| v.sqrt().max(KERAS_EPSILON)).collect();
        Ok(SafetyDetector { mean, scale, layers, sha256, published })
    }

    /// The NSFW probability of a unit-length OpenAI CLIP ViT-B/32 image embedding.
    pub fn score(&self, embedding: &[f32]) -> Result<f64> {
        if embedding.len() != INPUT_DIM {
            return Err(Error::usage(
                "the safety detector",
                format!("reads OpenAI CLIP ViT-B/32 image embeddings ({INPUT_DIM} numbers), not {}", embedding.len()),
            ));
        }
        let mut x: Vec<f32> = embedding.iter().zip(&self.mean).zip(&self.scale).map(|((v, m), s)| (v - m) / s).collect();
        for c in CATEGORICAL_COLUMNS {
            x[c] = (0.0 - self.mean[c]) / self.scale[c];
        }
        let relu = |v: Vec<f32>| v.into_iter().map(|x| x.max(0.0)).collect::<Vec<_>>();
        let h = relu(self.layers[0].apply(&x));
        let h = relu(self.layers[1].apply(&h));
        let z = self.layers[2].apply(&h)[0] as f64;
        Ok(1.0 / (1.0 + (-z).exp()))
    }
}

/// TensorFlow's DT_FLOAT.
const DT_FLOAT: u64 = 1;

/// One tensor of a TensorFlow checkpoint (the fields of `BundleEntryProto` used here).
#[derive(Debug, Default)]
struct BundleEntry {
    dtype: u64,
    shape: Vec<usize>,
    offset: usize,
    size: usize,
}

/// The tensors a tensor-bundle index lists, by name. The index is a LevelDB
/// table: a footer pointing at an index block, whose entries point at data
/// blocks of prefix-compressed keys with `BundleEntryProto` values.
fn bundle_entries(table: &[u8]) -> std::result::Result<BTreeMap<String, BundleEntry>, String> {
    const FOOTER: usize = 48;
    const MAGIC: u64 = 0xdb47_7524_8b80_fb57;
    let footer = table.get(table.len().saturating_sub(FOOTER)..).filter(|f| f.len() == FOOTER).ok_or("too short for a table")?;
    if u64::from_le_bytes(footer[40..].try_into().expect("8 bytes")) != MAGIC {
        return Err("not a TensorFlow checkpoint index (no table magic)".into());
    }
    let mut at = 0;
    let _metaindex = (varint(footer, &mut at)?, varint(footer, &mut at)?);
    let index = (to_usize(varint(footer, &mut at)?)?, to_usize(varint(footer, &mut at)?)?);
    let mut out = BTreeMap::new();
    for (_, handle) in block(table, index)? {
        let mut at = 0;
        let data = (to_usize(varint(handle, &mut at)?)?, to_usize(varint(handle, &mut at)?)?);
        for (key, value) in block(table, data)? {
            // The empty key holds the bundle's header, not a tensor.
            if key.is_empty() {
                continue;
            }
            out.insert(String::from_utf8_lossy(&key).into_owned(), bundle_entry(value)?);
        }
    }
    Ok(out)
}

/// The entries of the block at (offset, size): (full key, value).
fn block(table: &[u8], (offset, size): (usize, usize)) -> std::result::Result<Vec<(Vec<u8>, &[u8])>, String> {
    let end = offset.checked_add(size).ok_or("a block lies past the end")?;
    let content = table.get(offset..end).ok_or("a block lies past the end")?;
    // After the block: its compression type (0: none) and a checksum.
    if table.get(end) != Some(&0) {
        return Err("a compressed block (only uncompressed checkpoints are read)".into());
    }
    let count = u32::from_le_bytes(content.get(size.saturating_sub(4)..).ok_or("an empty block")?.try_into().map_err(|_| "an empty block")?) as usize;
    let end = count.checked_mul(4).and_then(|r| size.checked_sub(4 + r)).ok_or("a block's restart list is too long")?;
    let (mut at, mut key, mut out) = (0, Vec::new(), Vec::new());
    while at < end {
        let shared = to_usize(varint(content, &mut at)?)?;
        let unshared = to_usize(varint(content, &mut at)?)?;
        let value_len = to_usize(varint(content, &mut at)?)?;
        if shared > key.len() {
            return Err("a key shares more than the previous one has".into());
        }
        key.truncate(shared);
        let key_end = at.checked_add(unshared).ok_or("a key is cut off")?;
        key.extend_from_slice(content.get(at..key_end).ok_or("a key is cut off")?);
        let value_end = key_end.checked_add(value_len).ok_or("a value is cut off")?;
        out.push((key.clone(), content.get(key_end..value_end).ok_or("a value is cut off")?));
        at = value_end;
    }
    Ok(out)
}

/// A size or offset read from the file, as usize (wasm32's is 32 bits).
fn to_usize(v: u64) -> std::result::Result<usize, String> {
    usize::try_from(v).map_err(|_| format!("an offset or size of {v} bytes is beyond this machine"))
}

fn varint(bytes: &[u8], at: &mut usize) -> std::result::Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*at).ok_or("a number is cut off")?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("a number runs over 64 bits".into())
}

/// Protocol-buffer fields of `message`: (field number, wire type, payload).
fn fields(message: &[u8]) -> std::result::Result<Vec<(u64, u64, &[u8], u64)>, String> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < message.len() {
        let tag = varint(message, &mut at)?;
        let (field, wire) = (tag >> 3, tag & 7);
        let start = at;
        let number = match wire {
            0 => varint(message, &mut at)?,
            1 => {
                at = at.checked_add(8).ok_or("a field is cut off")?;
                0
            }
            2 => {
                let len = usize::try_from(varint(message, &mut at)?).map_err(|_| "a field is too long")?;
                let payload_start = at;
                at = at.checked_add(len).ok_or("a field is cut off")?;
                out.push((field, wire, message.get(payload_start..at).ok_or("a field is cut off")?, 0));
                continue;
            }
            5 => {
                at = at.checked_add(4).ok_or("a field is cut off")?;
                0
            }
            _ => return Err(format!("field {field} has wire type {wire}")),
        };
        out.push((field, wire, message.get(start..at).ok_or("a field is cut off")?, number));
    }
    Ok(out)
}

fn bundle_entry(value: &[u8]) -> std::result::Result<BundleEntry, String> {
    let mut e = BundleEntry::default();
    for (field, wire, payload, number) in fields(value)? {
        match (field, wire) {
            (1, 0) => e.dtype = number,
            (2, 2) => {
                // TensorShapeProto: repeated Dim (field 2) { size (1) }.
                for (f, w, dim, _) in fields(payload)? {
                    if (f, w) == (2, 2) {
                        let size = fields(dim)?.into_iter().find(|(f, w, _, _)| (*f, *w) == (1, 0)).map_or(0, |x| x.3);
                        e.shape.push(to_usize(size)?);
                    }
                }
            }
            (4, 0) => e.offset = to_usize(number)?,
            (5, 0) => e.size = to_usize(number)?,
            _ => {}
        }
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_protobuf_fields_read_as_written() {
        let mut at = 0;
        assert_eq!(varint(&[0xac, 0x02], &mut at), Ok(300));
        // dtype 1, shape [512, 32], offset 7, size 65536.
        let entry = [0x08, 0x01, 0x12, 0x09, 0x12, 0x03, 0x08, 0x80, 0x04, 0x12, 0x02, 0x08, 0x20, 0x20, 0x07, 0x28, 0x80, 0x80, 0x04];
        let e = bundle_entry(&entry).unwrap();
        assert_eq!((e.dtype, e.shape, e.offset, e.size), (1, vec![512, 32], 7, 65536));
        assert!(bundle_entries(&[0u8; 60]).unwrap_err().contains("magic"));
    }
}
