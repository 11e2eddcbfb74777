//! Concept decomposition (SpLiCE, arXiv 2402.10376): an image embedding
//! written as a sparse, non-negative mix of human words.
//!
//! `vocab` (the word lists), `dictionary` (the words encoded and centred),
//! `image_mean` (the image side's centre), `solver` (the non-negative lasso,
//! batched), `collection` (what a folder's decompositions say together:
//! histogram, two folders compared, search, intervention). This file joins
//! them: embeddings in, decompositions out, and the report both faces print.

pub mod collection;
pub mod dictionary;
pub mod image_mean;
pub mod solver;
pub mod vocab;

use serde::{Deserialize, Serialize};

#[cfg(feature = "compute")]
pub use dictionary::DeviceDictionary;
pub use dictionary::Dictionary;
pub use image_mean::{ImageMean, ImageMeanInfo};
pub use solver::{Correlate, DEFAULT_TOLERANCE, Sparsity, solve_batch};
pub use vocab::{BuiltinVocabulary, Vocabulary, VocabularyInfo};

use crate::error::Result;

/// The vocabulary a model gets unless the user picks another: its world's
/// words for the embedded world models (they know no other), else the
/// cleaned LAION list.
pub fn default_vocabulary_for(model_name: &str) -> BuiltinVocabulary {
    let base = model_name.rsplit('/').next().unwrap_or(model_name);
    if base == "world-clip" || base == "world-judge" { BuiltinVocabulary::World } else { BuiltinVocabulary::LaionClean }
}

/// Sparsity when none is asked for: about what SpLiCE's examples show.
pub const DEFAULT_L0: usize = 10;

/// One image's decomposition.
#[derive(Clone, Debug, PartialEq)]
pub struct Decomposition {
    /// `(concept index, weight)`, every nonzero weight, largest first.
    pub weights: Vec<(usize, f64)>,
    pub lambda: f64,
    pub objective: f64,
    /// Cosine of the recomposed embedding with the image's own (SpLiCE's
    /// "cosine similarity" figure: below 1 even for a perfect fit, since
    /// the recomposition has unit-length centred part).
    pub cosine: f32,
    /// SpLiCE's recomposed embedding `normalize(normalize(Dᵀw) + mean)`.
    pub recomposed: Vec<f32>,
}

impl Decomposition {
    pub fn l0(&self) -> usize {
        self.weights.len()
    }

    pub fn weight_of(&self, concept: usize) -> f64 {
        self.weights.iter().find(|&&(j, _)| j == concept).map_or(0.0, |&(_, w)| w)
    }

    pub fn concepts(&self, dictionary: &Dictionary) -> Vec<ConceptWeight> {
        self.weights.iter().map(|&(j, w)| ConceptWeight { concept: dictionary.words[j].clone(), weight: w as f32 }).collect()
    }
}

/// A concept and its weight, as reports print it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConceptWeight {
    pub concept: String,
    pub weight: f32,
}

/// `Σ w_j D_j`: the centred part of a decomposition.
pub fn combination(dictionary: &Dictionary, weights: &[(usize, f64)]) -> Vec<f32> {
    let mut out = vec![0.0f64; dictionary.dim];
    for &(j, w) in weights {
        out.iter_mut().zip(dictionary.row(j)).for_each(|(o, &x)| *o += w * f64::from(x));
    }
    out.into_iter().map(|x| x as f32).collect()
}

/// Decomposes L2-normalized image embeddings: centre each on `mean`, solve
/// (the whole-dictionary products on `correlator`, batched), recompose.
/// `progress(done, total)` as in [`solve_batch`].
pub async fn decompose<C: Correlate>(
    dictionary: &Dictionary,
    correlator: &C,
    mean: &ImageMean,
    embeds: &[Vec<f32>],
    sparsity: Sparsity,
    progress: impl FnMut(usize, usize) -> bool,
) -> Result<Vec<Decomposition>> {
    let targets: Vec<f32> = embeds.iter().flat_map(|z| mean.centre(z)).collect();
    let solutions = solve_batch(correlator, &targets, sparsity, DEFAULT_TOLERANCE, progress).await?;
    Ok(solutions
        .into_iter()
        .zip(embeds)
        .map(|(s, z)| {
            let recomposed = mean.recompose(&combination(dictionary, &s.weights));
            let cosine = crate::clip::dot(&recomposed, z);
            Decomposition { weights: s.weights, lambda: s.lambda, objective: s.objective, cosine, recomposed }
        })
        .collect())
}

/// One image in `cliplens decompose --json` (and the page's JSON export).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageReport {
    pub file: String,
    /// Every nonzero weight (the solver's `w`, unscaled), largest first.
    pub concepts: Vec<ConceptWeight>,
    pub cosine: f32,
    pub lambda: f64,
    pub l0: usize,
    pub objective: f64,
}

impl ImageReport {
    pub fn new(file: String, d: &Decomposition, dictionary: &Dictionary) -> Self {
        ImageReport {
            file,
            concepts: d.concepts(dictionary),
            cosine: d.cosine,
            lambda: d.lambda,
            l0: d.l0(),
            objective: d.objective,
        }
    }
}

/// What `cliplens decompose --json` prints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecomposeReport {
    pub model: String,
    pub vocabulary: VocabularyInfo,
    pub image_mean: ImageMeanInfo,
    /// What was asked: `{"l0": k}` or `{"lambda": l}`.
    pub sparsity: serde_json::Value,
    pub images: Vec<ImageReport>,
    /// One line per input that could not be decomposed; the rest were.
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

/// `sparsity` as the report names it.
pub fn sparsity_json(sparsity: Sparsity) -> serde_json::Value {
    match sparsity {
        Sparsity::Lambda(l) => serde_json::json!({ "lambda": l }),
        Sparsity::TargetL0(k) => serde_json::json!({ "l0": k }),
    }
}
