//! The concept dictionary: each concept encoded as its raw text (no prompt
//! template, as SpLiCE does), normalized, centred on the vocabulary's mean
//! and normalized again, so that what all concepts share (the text side of
//! CLIP's modality gap) does not take part in the decomposition.

#[cfg(feature = "compute")]
use burn::tensor::{Device, Tensor, TensorData};

#[cfg(feature = "compute")]
use crate::clip::{Clip, read_vec};
use crate::concepts::solver::Correlate;
use crate::concepts::vocab::{Vocabulary, VocabularyInfo};
use crate::error::{Error, Result};

/// Concepts per forward pass when encoding a vocabulary.
const ENCODE_CHUNK: usize = 256;
/// Residuals per product when correlating on the device.
const CORRELATE_CHUNK: usize = 256;

/// The centred concept matrix and its words.
#[derive(Clone, Debug, PartialEq)]
pub struct Dictionary {
    pub vocabulary: VocabularyInfo,
    pub words: Vec<String>,
    pub dim: usize,
    /// Row-major `[words, dim]`, each row of unit length.
    pub rows: Vec<f32>,
}

impl Dictionary {
    /// From the concepts' L2-normalized text embeddings (one per word).
    pub fn from_embeddings(vocabulary: &Vocabulary, embeds: &[Vec<f32>]) -> Result<Self> {
        let dim = embeds.first().map_or(0, Vec::len);
        if embeds.len() != vocabulary.len() || dim == 0 {
            return Err(Error::usage(&vocabulary.source, "the concept embeddings do not match the vocabulary"));
        }
        let mut mean = vec![0.0f64; dim];
        for e in embeds {
            mean.iter_mut().zip(e).for_each(|(m, &x)| *m += f64::from(x));
        }
        mean.iter_mut().for_each(|m| *m /= embeds.len() as f64);
        let mut rows = Vec::with_capacity(embeds.len() * dim);
        for e in embeds {
            let centred: Vec<f64> = e.iter().zip(&mean).map(|(&x, m)| f64::from(x) - m).collect();
            // A one-word list centres to zero: keep it as a zero row (never chosen).
            let norm = centred.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
            rows.extend(centred.iter().map(|x| (x / norm) as f32));
        }
        Ok(Dictionary { vocabulary: vocabulary.info(), words: vocabulary.words.clone(), dim, rows })
    }

    #[cfg(feature = "compute")]
    /// Encodes `vocabulary` with `clip`. `progress(done, total)` is called after
    /// each chunk; returning `false` cancels (the error is
    /// [`crate::concepts::solver::cancelled`]).
    pub async fn encode(clip: &Clip, vocabulary: &Vocabulary, mut progress: impl FnMut(usize, usize) -> bool) -> Result<Self> {
        let total = vocabulary.len();
        let mut embeds = Vec::with_capacity(total);
        if !progress(0, total) {
            return Err(super::solver::cancelled());
        }
        for chunk in vocabulary.words.chunks(ENCODE_CHUNK) {
            embeds.extend(clip.embed_texts(chunk).await?.embeds);
            if !progress(embeds.len(), total) {
                return Err(super::solver::cancelled());
            }
        }
        Self::from_embeddings(vocabulary, &embeds)
    }

    /// A dictionary of given unit rows (row-major `[words, dim]`), its
    /// concepts named `w0`, `w1`... (fixtures, benchmarks, tests).
    pub fn from_rows(source: &str, rows: Vec<f32>, dim: usize) -> Self {
        let vocabulary = Vocabulary::new(source.to_string(), (0..rows.len() / dim.max(1)).map(|j| format!("w{j}")).collect());
        Dictionary { vocabulary: vocabulary.info(), words: vocabulary.words, dim, rows }
    }

    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    pub fn row(&self, j: usize) -> &[f32] {
        &self.rows[j * self.dim..(j + 1) * self.dim]
    }

    /// Index of a concept by its text.
    pub fn index_of(&self, word: &str) -> Option<usize> {
        self.words.iter().position(|w| w == word)
    }

    /// The dictionary as bytes for a cache: a JSON header line, then the
    /// rows as little-endian f32.
    pub fn to_bytes(&self) -> Vec<u8> {
        let header = serde_json::json!({"vocabulary": self.vocabulary, "words": self.words, "dim": self.dim});
        let mut out = serde_json::to_vec(&header).expect("the header serializes");
        out.push(b'\n');
        for x in &self.rows {
            out.extend_from_slice(&x.to_le_bytes());
        }
        out
    }

    pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<Self> {
        let bad = |m: &str| Error::usage(origin, format!("not a cached concept dictionary: {m}"));
        let split = bytes.iter().position(|&b| b == b'\n').ok_or_else(|| bad("no header"))?;
        #[derive(serde::Deserialize)]
        struct Header {
            vocabulary: VocabularyInfo,
            words: Vec<String>,
            dim: usize,
        }
        let header: Header = serde_json::from_slice(&bytes[..split]).map_err(|e| bad(&e.to_string()))?;
        let body = &bytes[split + 1..];
        if header.dim == 0 || body.len() != header.words.len() * header.dim * 4 {
            return Err(bad("its size does not match its header"));
        }
        let rows = body.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        Ok(Dictionary { vocabulary: header.vocabulary, words: header.words, dim: header.dim, rows })
    }

    #[cfg(feature = "compute")]
    /// The dictionary as a [`Correlate`] on `device` (its transpose, `[dim, words]`).
    pub fn on_device(&self, device: &Device) -> DeviceDictionary<'_> {
        let mut transposed = vec![0.0f32; self.rows.len()];
        let words = self.len();
        for j in 0..words {
            for (i, &x) in self.row(j).iter().enumerate() {
                transposed[i * words + j] = x;
            }
        }
        let matrix = Tensor::from_data(TensorData::new(transposed, [self.dim, words]), device);
        DeviceDictionary { dictionary: self, matrix, device: device.clone() }
    }
}

/// The cache key of a dictionary: which model encoded which list.
pub fn cache_key(model_sha256: &str, vocabulary_sha256: &str) -> String {
    format!("concepts-{model_sha256}-{vocabulary_sha256}")
}

#[cfg(feature = "compute")]
/// A dictionary whose whole-vocabulary products run on a burn device.
pub struct DeviceDictionary<'a> {
    dictionary: &'a Dictionary,
    /// `[dim, words]`.
    matrix: Tensor<2>,
    device: Device,
}

#[cfg(feature = "compute")]
impl Correlate for DeviceDictionary<'_> {
    fn words(&self) -> usize {
        self.dictionary.len()
    }
    fn dim(&self) -> usize {
        self.dictionary.dim
    }
    fn row(&self, j: usize) -> &[f32] {
        self.dictionary.row(j)
    }
    async fn correlate(&self, residuals: &[f32], n: usize) -> Result<Vec<f32>> {
        let dim = self.dictionary.dim;
        let mut out = Vec::with_capacity(n * self.words());
        for chunk in residuals[..n * dim].chunks(CORRELATE_CHUNK * dim) {
            let rows = chunk.len() / dim;
            let r = Tensor::<2>::from_data(TensorData::new(chunk.to_vec(), [rows, dim]), &self.device);
            out.extend(read_vec(r.matmul(self.matrix.clone())).await?);
        }
        Ok(out)
    }
}

impl Correlate for Dictionary {
    fn words(&self) -> usize {
        self.len()
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn row(&self, j: usize) -> &[f32] {
        Dictionary::row(self, j)
    }
    async fn correlate(&self, residuals: &[f32], n: usize) -> Result<Vec<f32>> {
        let words = self.len();
        let mut out = Vec::with_capacity(n * words);
        for r in residuals.chunks(self.dim).take(n) {
            for j in 0..words {
                out.push(self.row(j).iter().zip(r).map(|(a, b)| a * b).sum());
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_centred_unit_vectors_and_survive_the_cache() {
        let v = Vocabulary::new("t".into(), vec!["a".into(), "b".into(), "c".into()]);
        let embeds = vec![vec![1.0, 0.0, 0.0], vec![0.0, 1.0, 0.0], vec![0.6, 0.8, 0.0]];
        let d = Dictionary::from_embeddings(&v, &embeds).unwrap();
        for j in 0..3 {
            let norm: f32 = d.row(j).iter().map(|x| x * x).sum();
            assert!((norm - 1.0).abs() < 1e-6);
        }
        // Centred: the (unnormalized) rows' mean was removed, so the common
        // direction is gone: no row has a component along z.
        assert!(d.rows.chunks(3).all(|r| r[2] == 0.0));
        let back = Dictionary::from_bytes(&d.to_bytes(), "cache").unwrap();
        assert_eq!(back, d);
        assert!(Dictionary::from_bytes(b"{}\n123", "cache").is_err());
        assert_eq!(d.index_of("c"), Some(2));
    }
}
