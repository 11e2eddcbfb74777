//! Writing CLIP Lens' int8 format (see [`crate::weights`]) from a float
//! checkpoint, and measuring what it costs.

use std::collections::HashMap;

use safetensors::Dtype;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use safetensors::tensor::{Metadata, SafeTensors, View};
use serde::{Deserialize, Serialize};

use crate::sha256::Sha256Stream;
use crate::weights::{IGNORED_TENSORS, INT8_FORMAT, INT8_FORMAT_VERSION, SCALE_SUFFIX, Raw, describe_safetensors_error, f32_bytes, floats_from_bytes, quantize_rows, unsupported_dtype};

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
/// per-row symmetric int8; returns the new file's bytes. The same code as a
/// streamed download ([`StreamingQuantizer`]) fed in one piece.
pub fn quantize_checkpoint(input: &[u8], origin: &str, provenance: &Provenance) -> Result<Vec<u8>> {
    let header = header_length(input, origin)?;
    if input.len() < header {
        return Err(Error::weights(origin, describe_safetensors_error(&safetensors::SafeTensorError::InvalidHeaderLength, input.len())));
    }
    let mut quantizer = StreamingQuantizer::new(&input[..header], origin, provenance, input.len() as u64)?;
    if quantizer.passes_through() {
        return Err(Error::weights(origin, "is already in the int8 format"));
    }
    quantizer.feed(&input[header..])?;
    Ok(quantizer.finish(None)?.0)
}

/// Header bytes the safetensors file opening with `first` has (its 8-byte
/// length and the JSON), once `first` holds at least 8 bytes.
pub fn header_length(first: &[u8], origin: &str) -> Result<usize> {
    let Some(len) = first.get(..8) else {
        return Err(Error::weights(origin, format!("not a safetensors file ({} bytes, no valid header length)", first.len())));
    };
    let n = u64::from_le_bytes(len.try_into().expect("8 bytes"));
    // safetensors' own limit for the JSON header.
    if n > 100_000_000 {
        return Err(Error::weights(origin, "not a safetensors file (header length is implausible)"));
    }
    Ok(8 + n as usize)
}

/// The size of the whole file whose header bytes are `header` (header plus
/// the data its tensors take).
pub fn file_size_from_header(header: &[u8], origin: &str) -> Result<u64> {
    let metadata = parse_header(header, origin)?;
    Ok(header.len() as u64 + metadata.data_len() as u64)
}

fn parse_header(header: &[u8], origin: &str) -> Result<Metadata> {
    let expected = header_length(header, origin)?;
    if header.len() != expected {
        return Err(Error::weights(origin, format!("the header is {expected} bytes, {} were given", header.len())));
    }
    serde_json::from_slice(&header[8..]).map_err(|e| Error::weights(origin, format!("not a safetensors file (its header does not parse: {e})")))
}

/// A placeholder of the digest's length in the int8 header, replaced at the
/// end: the header (and so every offset) is laid out before the digest is known.
const DIGEST_PLACEHOLDER: &str = "cliplens-source-sha256-is-written-here-when-the-download-ends-00";

/// One input tensor and where its quantized form goes in the output file.
struct Planned {
    name: String,
    dtype: Dtype,
    shape: Vec<usize>,
    /// Absolute byte range in the input file.
    input: (u64, u64),
    /// Where it goes in the output; `None` for buffers that are dropped.
    output: Option<Placement>,
}

/// Absolute byte ranges in the int8 file: the values, then (int8 only) the row scales.
#[derive(Clone, Copy)]
struct Placement {
    values: (usize, usize),
    scales: Option<(usize, usize)>,
}

/// Where a stopped download stood: enough, with the bytes of the tensors
/// done (see [`StreamingQuantizer::segment`]), to go on from `offset` later.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuantizeCheckpoint {
    /// Size of the input file this belongs to.
    pub input_bytes: u64,
    /// Input bytes consumed: always the end of a whole tensor.
    pub offset: u64,
    /// Input tensors (in file order) done.
    pub tensors_done: usize,
    pub sha256: Sha256Stream,
}

/// Quantizes a float safetensors checkpoint as its bytes arrive, in file
/// order, holding at most one row of float bytes: the int8 file is laid out
/// from the header alone and each row (with its scale) is written into it as
/// soon as it is whole. The input's sha256 is computed on the way. A CLIP Lens int8
/// file passes through unchanged.
pub struct StreamingQuantizer {
    origin: String,
    input_bytes: u64,
    plan: Vec<Planned>,
    out: Vec<u8>,
    /// Byte offset of the digest placeholder in `out` (none when passing through).
    digest_at: Option<usize>,
    passthrough: bool,
    next: usize,
    /// Bytes of tensor `next` consumed so far.
    in_tensor: usize,
    /// The start of a row (or element) of tensor `next` still arriving.
    pending: Vec<u8>,
    offset: u64,
    sha256: Sha256Stream,
    /// The state at the end of the last whole tensor: what a checkpoint saves.
    boundary: QuantizeCheckpoint,
}

impl StreamingQuantizer {
    /// Starts from the file's header bytes (see [`header_length`]);
    /// `input_bytes` is the whole file's size, as the server states it.
    pub fn new(header: &[u8], origin: &str, provenance: &Provenance, input_bytes: u64) -> Result<Self> {
        let metadata = parse_header(header, origin)?;
        let data_bytes = metadata.data_len() as u64;
        if header.len() as u64 + data_bytes != input_bytes {
            return Err(Error::weights(
                origin,
                format!(
                    "truncated or padded: the header promises {} bytes, the file has {input_bytes}",
                    header.len() as u64 + data_bytes
                ),
            ));
        }
        let int8 = metadata.metadata().as_ref().and_then(|m| m.get("format")).is_some_and(|f| f == INT8_FORMAT);
        let base = header.len() as u64;
        let mut plan: Vec<Planned> = metadata
            .offset_keys()
            .into_iter()
            .map(|name| {
                let info = metadata.info(&name).expect("a listed tensor");
                let (s, e) = info.data_offsets;
                Planned { name, dtype: info.dtype, shape: info.shape.clone(), input: (base + s as u64, base + e as u64), output: None }
            })
            .collect();
        let mut sha256 = Sha256Stream::new();
        sha256.update(header);
        if int8 {
            // Already quantized: the output is the input, byte for byte.
            let mut out = Vec::with_capacity(input_bytes as usize);
            out.extend_from_slice(header);
            return Ok(StreamingQuantizer {
                origin: origin.into(),
                input_bytes,
                plan,
                out,
                digest_at: None,
                passthrough: true,
                next: 0,
                in_tensor: 0,
                pending: Vec::new(),
                offset: base,
                boundary: QuantizeCheckpoint { input_bytes, offset: base, tensors_done: 0, sha256: sha256.clone() },
                sha256,
            });
        }
        // The output's tensors, zero-filled, to lay the file out.
        let mut raws: Vec<(String, Raw)> = Vec::new();
        for p in plan.iter().filter(|p| !IGNORED_TENSORS.contains(&p.name.as_str())) {
            if !matches!(p.dtype, Dtype::F32 | Dtype::F16 | Dtype::BF16) {
                return Err(if p.dtype == Dtype::I8 {
                    Error::tensor(origin, &p.name, "is int8 in a float checkpoint")
                } else {
                    unsupported_dtype(origin, &p.name, p.dtype)
                });
            }
            if stays_float(&p.shape) {
                raws.push((p.name.clone(), Raw { dtype: Dtype::F32, shape: p.shape.clone(), bytes: Vec::new() }));
            } else {
                raws.push((p.name.clone(), Raw { dtype: Dtype::I8, shape: p.shape.clone(), bytes: Vec::new() }));
                raws.push((format!("{}{SCALE_SUFFIX}", p.name), Raw { dtype: Dtype::F32, shape: vec![p.shape[0]], bytes: Vec::new() }));
            }
        }
        let meta = HashMap::from([
            ("format".to_string(), INT8_FORMAT.to_string()),
            ("format_version".to_string(), INT8_FORMAT_VERSION.to_string()),
            ("quantization".to_string(), "int8 symmetric, one f32 scale per output row".to_string()),
            ("source_model".to_string(), provenance.source_model.clone()),
            ("source_sha256".to_string(), DIGEST_PLACEHOLDER.to_string()),
        ]);
        let out = serialize_zeroed(&raws, meta, origin)?;
        let (n, layout) = SafeTensors::read_metadata(&out).map_err(|e| Error::weights(origin, format!("cannot lay out the int8 file: {e}")))?;
        let data_start = 8 + n;
        let at = |name: &str| {
            let (s, e) = layout.info(name).expect("laid out").data_offsets;
            (data_start + s, data_start + e)
        };
        for p in plan.iter_mut().filter(|p| !IGNORED_TENSORS.contains(&p.name.as_str())) {
            let scales = (!stays_float(&p.shape)).then(|| at(&format!("{}{SCALE_SUFFIX}", p.name)));
            p.output = Some(Placement { values: at(&p.name), scales });
        }
        let digest_at = find(&out[..data_start], DIGEST_PLACEHOLDER.as_bytes());
        Ok(StreamingQuantizer {
            origin: origin.into(),
            input_bytes,
            plan,
            out,
            digest_at,
            passthrough: false,
            next: 0,
            in_tensor: 0,
            pending: Vec::new(),
            offset: base,
            boundary: QuantizeCheckpoint { input_bytes, offset: base, tensors_done: 0, sha256: sha256.clone() },
            sha256,
        })
    }

    /// Whether the input is already CLIP Lens' int8 format (copied as it is).
    pub fn passes_through(&self) -> bool {
        self.passthrough
    }

    /// Input bytes consumed so far: where the next byte fed must come from.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn input_bytes(&self) -> u64 {
        self.input_bytes
    }

    pub fn is_complete(&self) -> bool {
        self.offset == self.input_bytes
    }

    /// A tensor's shape as the header gives it, for early checks (is this the
    /// CLIP its config describes?) before any weight arrives.
    pub fn shape_of(&self, name: &str) -> Option<Vec<usize>> {
        self.plan.iter().find(|p| p.name == name).map(|p| p.shape.clone())
    }

    /// Takes the next bytes of the file (any split).
    pub fn feed(&mut self, chunk: &[u8]) -> Result<()> {
        if chunk.len() as u64 > self.input_bytes - self.offset {
            return Err(Error::weights(&self.origin, format!("holds more than the {} bytes its header promises", self.input_bytes)));
        }
        if self.passthrough {
            self.sha256.update(chunk);
            self.out.extend_from_slice(chunk);
            self.offset += chunk.len() as u64;
            return Ok(());
        }
        let mut rest = chunk;
        while !rest.is_empty() {
            let (start, end) = self.plan[self.next].input;
            let size = (end - start) as usize;
            let take = (size - self.in_tensor).min(rest.len());
            let mut piece = &rest[..take];
            self.sha256.update(piece);
            // Whole units (a row of a matrix, an element of a vector) are
            // converted as they arrive; only a unit's start waits in `pending`.
            let unit = self.unit_bytes(self.next);
            let mut at = self.in_tensor - self.pending.len();
            if !self.pending.is_empty() {
                let fill = (unit - self.pending.len()).min(piece.len());
                self.pending.extend_from_slice(&piece[..fill]);
                piece = &piece[fill..];
                if self.pending.len() == unit {
                    let whole = std::mem::take(&mut self.pending);
                    self.write_units(self.next, at, &whole)?;
                    self.pending = whole;
                    self.pending.clear();
                    at += unit;
                }
            }
            let whole = piece.len() / unit * unit;
            self.write_units(self.next, at, &piece[..whole])?;
            self.pending.extend_from_slice(&piece[whole..]);
            self.in_tensor += take;
            self.offset += take as u64;
            rest = &rest[take..];
            // Zero-sized tensors are done as soon as they come up.
            while self.next < self.plan.len() && self.in_tensor == (self.plan[self.next].input.1 - self.plan[self.next].input.0) as usize {
                self.next += 1;
                self.in_tensor = 0;
                self.boundary = QuantizeCheckpoint {
                    input_bytes: self.input_bytes,
                    offset: self.offset,
                    tensors_done: self.next,
                    sha256: self.sha256.clone(),
                };
            }
        }
        Ok(())
    }

    /// Bytes converted at once for tensor `index`: a row of a matrix (each
    /// row has its own scale), an element of a vector or of a dropped buffer.
    fn unit_bytes(&self, index: usize) -> usize {
        let p = &self.plan[index];
        let element = (p.dtype.bitsize() / 8).max(1);
        match p.output {
            Some(Placement { scales: Some(_), .. }) => element * p.shape[1..].iter().product::<usize>().max(1),
            _ => element,
        }
    }

    /// Converts whole units of tensor `index` that start `at` bytes into it.
    fn write_units(&mut self, index: usize, at: usize, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let unit = self.unit_bytes(index);
        let p = &self.plan[index];
        let Some(Placement { values: values_at, scales: scales_at }) = p.output else { return Ok(()) };
        let element = p.dtype.bitsize() / 8;
        let values = floats_from_bytes(p.dtype, bytes).ok_or_else(|| unsupported_dtype(&self.origin, &p.name, p.dtype))?;
        match scales_at {
            None => {
                let first = values_at.0 + at / element * 4;
                self.out[first..first + 4 * values.len()].copy_from_slice(&f32_bytes(&values));
            }
            Some(scales_at) => {
                let (first_row, rows) = (at / unit, bytes.len() / unit);
                let cols = values.len() / rows;
                let (q, scales) = quantize_rows(&values, rows);
                let first = values_at.0 + first_row * cols;
                for (dst, v) in self.out[first..first + q.len()].iter_mut().zip(q) {
                    *dst = v as u8;
                }
                let first = scales_at.0 + first_row * 4;
                self.out[first..first + 4 * rows].copy_from_slice(&f32_bytes(&scales));
            }
        }
        Ok(())
    }

    /// Where this stands as of the last whole tensor (bytes of a tensor still
    /// arriving are left out: a resumed download fetches them again).
    pub fn checkpoint(&self) -> QuantizeCheckpoint {
        if self.passthrough {
            return QuantizeCheckpoint { input_bytes: self.input_bytes, offset: self.offset, tensors_done: 0, sha256: self.sha256.clone() };
        }
        self.boundary.clone()
    }

    /// The end of the first tensor that ends at or after `at`: a good end
    /// for a download window (no tensor is split between two).
    pub fn next_boundary(&self, at: u64) -> u64 {
        if self.passthrough {
            return at.min(self.input_bytes);
        }
        self.plan.iter().map(|p| p.input.1).find(|&end| end >= at).unwrap_or(self.input_bytes)
    }

    /// The output bytes of tensors `from..tensors_done` of `checkpoint`
    /// (the input bytes `from_offset..offset` when passing through), to store
    /// beside the checkpoint; [`Self::restore`] puts them back.
    pub fn segment(&self, from: &QuantizeCheckpoint, to: &QuantizeCheckpoint) -> Vec<u8> {
        let mut bytes = Vec::new();
        if self.passthrough {
            let (a, b) = (from.offset as usize, to.offset as usize);
            push_piece(&mut bytes, a, &self.out[a..b]);
            return bytes;
        }
        for p in &self.plan[from.tensors_done..to.tensors_done] {
            if let Some(Placement { values, scales }) = p.output {
                for (a, b) in std::iter::once(values).chain(scales) {
                    push_piece(&mut bytes, a, &self.out[a..b]);
                }
            }
        }
        bytes
    }

    /// Goes back to `checkpoint` of the same input, with the segments stored
    /// on the way there (in any order); afterwards feed from its offset.
    pub fn restore(&mut self, checkpoint: &QuantizeCheckpoint, segments: &[&[u8]]) -> Result<()> {
        let stale = || Error::weights(&self.origin, "the saved part of an earlier download does not fit this file; it was discarded");
        if checkpoint.input_bytes != self.input_bytes || checkpoint.offset > self.input_bytes || checkpoint.tensors_done > self.plan.len() {
            return Err(stale());
        }
        if !self.passthrough && checkpoint.tensors_done > 0 && self.plan[checkpoint.tensors_done - 1].input.1 != checkpoint.offset {
            return Err(stale());
        }
        if self.passthrough {
            self.out.resize(checkpoint.offset as usize, 0);
        }
        let mut covered = 0usize;
        for segment in segments {
            let mut rest = *segment;
            while !rest.is_empty() {
                let (at, bytes, after) = pop_piece(rest).ok_or_else(stale)?;
                let end = at.checked_add(bytes.len()).filter(|&e| e <= self.out.len()).ok_or_else(stale)?;
                self.out[at..end].copy_from_slice(bytes);
                covered += bytes.len();
                rest = after;
            }
        }
        let expected: usize = if self.passthrough {
            checkpoint.offset as usize - self.plan.first().map_or(checkpoint.offset as usize, |p| p.input.0 as usize)
        } else {
            self.plan[..checkpoint.tensors_done]
                .iter()
                .filter_map(|p| p.output)
                .map(|o| o.values.1 - o.values.0 + o.scales.map_or(0, |s| s.1 - s.0))
                .sum()
        };
        if covered != expected {
            return Err(stale());
        }
        self.offset = checkpoint.offset;
        self.next = checkpoint.tensors_done;
        self.in_tensor = 0;
        self.pending.clear();
        self.sha256 = checkpoint.sha256.clone();
        self.boundary = checkpoint.clone();
        Ok(())
    }

    /// The sha256 of the whole input (once complete).
    pub fn input_sha256(&self) -> String {
        self.sha256.hex()
    }

    /// The int8 file and the input's sha256, once every byte was fed. With
    /// `expected_sha256`, a different digest is an error and nothing is returned.
    pub fn finish(mut self, expected_sha256: Option<&str>) -> Result<(Vec<u8>, String)> {
        if !self.is_complete() {
            return Err(Error::weights(&self.origin, format!("truncated: {} of {} bytes arrived", self.offset, self.input_bytes)));
        }
        let digest = self.sha256.hex();
        if let Some(expected) = expected_sha256.filter(|e| !e.eq_ignore_ascii_case(&digest)) {
            return Err(Error::weights(
                &self.origin,
                format!("sha256 {digest} does not match the published {expected}: the download is damaged or was altered; nothing was kept"),
            ));
        }
        if let Some(at) = self.digest_at {
            self.out[at..at + DIGEST_PLACEHOLDER.len()].copy_from_slice(digest.as_bytes());
        }
        Ok((self.out, digest))
    }
}

/// A segment is a list of pieces: offset (u64 LE), length (u64 LE), bytes.
fn push_piece(out: &mut Vec<u8>, at: usize, bytes: &[u8]) {
    out.extend_from_slice(&(at as u64).to_le_bytes());
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn pop_piece(bytes: &[u8]) -> Option<(usize, &[u8], &[u8])> {
    let at = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?) as usize;
    let len = u64::from_le_bytes(bytes.get(8..16)?.try_into().ok()?) as usize;
    let body = bytes.get(16..16usize.checked_add(len)?)?;
    Some((at, body, &bytes[16 + len..]))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Serializes tensors (their `bytes` unused) as zeros of their size: the
/// layout of the int8 file before any value is known.
fn serialize_zeroed(tensors: &[(String, Raw)], metadata: HashMap<String, String>, origin: &str) -> Result<Vec<u8>> {
    struct Zeros<'a>(&'a Raw);
    impl View for Zeros<'_> {
        fn dtype(&self) -> Dtype {
            self.0.dtype
        }
        fn shape(&self) -> &[usize] {
            &self.0.shape
        }
        fn data(&self) -> std::borrow::Cow<'_, [u8]> {
            std::borrow::Cow::Owned(vec![0; self.data_len()])
        }
        fn data_len(&self) -> usize {
            self.0.shape.iter().product::<usize>() * self.0.dtype.bitsize() / 8
        }
    }
    let views: Vec<(&str, Zeros)> = tensors.iter().map(|(n, r)| (n.as_str(), Zeros(r))).collect();
    safetensors::serialize(views, Some(metadata)).map_err(|e| Error::weights(origin, format!("cannot write the int8 file: {e}")))
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

#[cfg(feature = "compute")]
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::{HostTensor, WeightFile, WeightFormat, serialize_f32};

    /// A small float checkpoint: matrices, a vector, a scalar, an ignored buffer's name.
    fn float_checkpoint() -> Vec<u8> {
        let values = |n: usize, k: f32| (0..n).map(|i| (i as f32 * 0.37 + k).sin() * 3.0).collect::<Vec<f32>>();
        serialize_f32(
            vec![
                ("a.weight".into(), vec![6, 5], values(30, 1.0)),
                ("a.bias".into(), vec![6], values(6, 2.0)),
                ("b.embedding".into(), vec![4, 3, 2], values(24, 3.0)),
                ("logit_scale".into(), vec![], values(1, 4.0)),
                ("z.weight".into(), vec![3, 7], values(21, 5.0)),
            ],
            HashMap::new(),
            "float.safetensors",
        )
        .unwrap()
    }

    fn provenance() -> Provenance {
        Provenance { source_model: "test".into() }
    }

    fn tensors(bytes: &[u8]) -> Vec<(String, HostTensor)> {
        let file = WeightFile::parse(bytes, "out").unwrap();
        assert_eq!(file.format(), WeightFormat::Int8);
        file.names().into_iter().filter(|n| !n.ends_with(SCALE_SUFFIX)).map(|n| (n.clone(), file.get(&n).unwrap())).collect()
    }

    #[test]
    fn quantized_tensors_are_per_row_int8_with_the_source_digest() {
        let input = float_checkpoint();
        let out = quantize_checkpoint(&input, "float.safetensors", &provenance()).unwrap();
        let file = WeightFile::parse(&out, "out").unwrap();
        assert_eq!(file.metadata()["source_sha256"], sha256_hex(&input));
        let source = WeightFile::parse(&input, "in").unwrap();
        for (name, tensor) in tensors(&out) {
            let HostTensor::F32 { values: want, .. } = source.get(&name).unwrap() else { panic!() };
            match (&tensor, tensor.shape().len()) {
                (HostTensor::F32 { values, .. }, n) if n < 2 => assert_eq!(values, &want, "{name}"),
                (HostTensor::Int8Rows { scales, .. }, _) => {
                    let row = want.len() / scales.len();
                    for (i, (a, b)) in tensor.to_f32().iter().zip(&want).enumerate() {
                        assert!((a - b).abs() <= scales[i / row] / 2.0 + 1e-6, "{name}[{i}]: {a} vs {b}");
                    }
                }
                _ => panic!("{name} has the wrong form"),
            }
        }
    }

    #[test]
    fn any_split_and_a_resumed_download_give_the_same_file() {
        let input = float_checkpoint();
        let whole = quantize_checkpoint(&input, "f", &provenance()).unwrap();
        let header = header_length(&input, "f").unwrap();
        for split in [1usize, 3, 4, 17, 100] {
            let mut q = StreamingQuantizer::new(&input[..header], "f", &provenance(), input.len() as u64).unwrap();
            for chunk in input[header..].chunks(split) {
                q.feed(chunk).unwrap();
            }
            assert_eq!(tensors(&q.finish(Some(&sha256_hex(&input))).unwrap().0), tensors(&whole), "split {split}");
        }
        // Stop at each tensor boundary, save, and go on in a new quantizer.
        let mut first = StreamingQuantizer::new(&input[..header], "f", &provenance(), input.len() as u64).unwrap();
        let start = first.checkpoint();
        let boundary = first.next_boundary(header as u64 + 50);
        first.feed(&input[header..boundary as usize]).unwrap();
        // Bytes past the boundary are not part of the checkpoint.
        first.feed(&input[boundary as usize..boundary as usize + 3]).unwrap();
        let mid = first.checkpoint();
        assert_eq!(mid.offset, boundary);
        let segment = first.segment(&start, &mid);
        let saved: QuantizeCheckpoint = serde_json::from_str(&serde_json::to_string(&mid).unwrap()).unwrap();
        let mut second = StreamingQuantizer::new(&input[..header], "f", &provenance(), input.len() as u64).unwrap();
        second.restore(&saved, &[&segment]).unwrap();
        assert_eq!(second.offset(), boundary);
        second.feed(&input[boundary as usize..]).unwrap();
        let (resumed, digest) = second.finish(None).unwrap();
        assert_eq!(digest, sha256_hex(&input));
        assert_eq!(tensors(&resumed), tensors(&whole));
        // A missing segment is refused rather than leaving zeros in the weights.
        let mut third = StreamingQuantizer::new(&input[..header], "f", &provenance(), input.len() as u64).unwrap();
        assert!(third.restore(&saved, &[]).unwrap_err().to_string().contains("discarded"));
    }

    #[test]
    fn half_precision_checkpoints_stream_in_odd_pieces() {
        // The tiny parity checkpoint in f16 and bf16: rows and 2-byte
        // elements split across pieces of 7 bytes.
        for name in ["model-f16.safetensors", "model-bf16.safetensors"] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny").join(name);
            let input = std::fs::read(path).unwrap();
            let whole = quantize_checkpoint(&input, name, &provenance()).unwrap();
            let header = header_length(&input, name).unwrap();
            let mut q = StreamingQuantizer::new(&input[..header], name, &provenance(), input.len() as u64).unwrap();
            for piece in input[header..].chunks(7) {
                q.feed(piece).unwrap();
            }
            assert_eq!(tensors(&q.finish(None).unwrap().0), tensors(&whole), "{name}");
        }
    }

    #[test]
    fn a_wrong_digest_a_short_file_and_a_long_one_are_refused() {
        let input = float_checkpoint();
        let header = header_length(&input, "f").unwrap();
        let mut q = StreamingQuantizer::new(&input[..header], "f", &provenance(), input.len() as u64).unwrap();
        q.feed(&input[header..]).unwrap();
        let err = q.finish(Some(&"0".repeat(64))).unwrap_err().to_string();
        assert!(err.starts_with("f: sha256 ") && err.contains("does not match the published 0000"), "{err}");
        let mut q = StreamingQuantizer::new(&input[..header], "f", &provenance(), input.len() as u64).unwrap();
        q.feed(&input[header..input.len() - 1]).unwrap();
        assert!(q.finish(None).unwrap_err().to_string().contains("truncated"));
        let mut q = StreamingQuantizer::new(&input[..header], "f", &provenance(), input.len() as u64).unwrap();
        assert!(q.feed(&[input[header..].to_vec(), vec![0]].concat()).is_err());
        let err = StreamingQuantizer::new(&input[..header], "f", &provenance(), input.len() as u64 + 10).err().unwrap();
        assert!(err.to_string().contains("the header promises"), "{err}");
    }

    #[test]
    fn an_int8_file_passes_through_byte_for_byte() {
        let int8 = quantize_checkpoint(&float_checkpoint(), "f", &provenance()).unwrap();
        let header = header_length(&int8, "q").unwrap();
        let mut q = StreamingQuantizer::new(&int8[..header], "q", &provenance(), int8.len() as u64).unwrap();
        assert!(q.passes_through());
        let start = q.checkpoint();
        q.feed(&int8[header..header + 10]).unwrap();
        let mid = q.checkpoint();
        let segment = q.segment(&start, &mid);
        let mut resumed = StreamingQuantizer::new(&int8[..header], "q", &provenance(), int8.len() as u64).unwrap();
        resumed.restore(&mid, &[&segment]).unwrap();
        resumed.feed(&int8[header + 10..]).unwrap();
        assert_eq!(resumed.finish(None).unwrap().0, int8);
        assert!(quantize_checkpoint(&int8, "q", &provenance()).unwrap_err().to_string().contains("already in the int8 format"));
    }
}
