//! The image side's centre. CLIP's image embeddings share a large common
//! component (the modality gap): SpLiCE subtracts the mean of normalized
//! image embeddings before decomposing, so that concepts explain what sets
//! an image apart, not what all images share.
//!
//! Where it comes from, in order: a mean the user gives; the model's own
//! `image_mean.json` (the embedded world models ship one, the mean over
//! 2,000 generated scenes); SpLiCE's MSCOCO means for OpenAI ViT-B/32 and
//! B/16 (recognized by name); else the mean of the collection being
//! decomposed, when it has at least [`MIN_COLLECTION`] images; else none
//! (a warning says the decomposition is then poorer). Reports always name it.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Images a collection needs before its own mean is a fair centre.
pub const MIN_COLLECTION: usize = 20;

/// SpLiCE's means of normalized MSCOCO image embeddings (Apache-2.0 data,
/// `models/vocab/SOURCE.md`).
const SHIPPED: [(&str, &str); 2] = [
    ("clip-vit-base-patch32", include_str!("../../models/vocab/clip-vit-base-patch32.image-mean.json")),
    ("clip-vit-base-patch16", include_str!("../../models/vocab/clip-vit-base-patch16.image-mean.json")),
];

/// The centre used, with where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageMean {
    pub source: String,
    /// Not re-normalized (as SpLiCE's); `None`: no centring.
    pub values: Option<Vec<f32>>,
}

/// What a report says of the image mean.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageMeanInfo {
    pub source: String,
    /// Its length (0 when none was used).
    pub norm: f32,
}

impl ImageMean {
    pub fn none() -> Self {
        ImageMean { source: "none (no image mean: pass --image-mean for a better decomposition)".into(), values: None }
    }

    pub fn info(&self) -> ImageMeanInfo {
        let norm = self.values.as_ref().map_or(0.0, |v| v.iter().map(|x| x * x).sum::<f32>().sqrt());
        ImageMeanInfo { source: self.source.clone(), norm }
    }

    /// A JSON array of numbers (as `invert --target-embedding` takes), of the
    /// model's embedding size.
    pub fn from_json(bytes: &[u8], origin: &str, dim: usize) -> Result<Self> {
        let values: Vec<f32> = serde_json::from_slice(bytes)
            .map_err(|e| Error::usage(origin, format!("not a JSON array of numbers: {e}")))?;
        if values.len() != dim {
            return Err(Error::usage(origin, format!("has {} numbers but the model's embeddings have {dim}", values.len())));
        }
        if values.iter().any(|x| !x.is_finite()) {
            return Err(Error::usage(origin, "holds a number that is not finite"));
        }
        Ok(ImageMean { source: origin.to_string(), values: Some(values) })
    }

    /// SpLiCE's shipped mean for a model named like `openai/clip-vit-base-patch32`
    /// (or a folder named `clip-vit-base-patch32`), if it has one.
    pub fn shipped_for(model_name: &str, dim: usize) -> Option<Self> {
        let base = model_name.trim_end_matches('/').rsplit('/').next().unwrap_or(model_name);
        let (name, text) = SHIPPED.iter().find(|(name, _)| base == *name)?;
        let mut mean = Self::from_json(text.as_bytes(), name, dim).ok()?;
        mean.source = format!("SpLiCE's MSCOCO mean for {name}");
        Some(mean)
    }

    /// The mean of a collection's normalized embeddings.
    pub fn of_collection(embeds: &[Vec<f32>], what: &str) -> Option<Self> {
        let dim = embeds.first()?.len();
        let mut mean = vec![0.0f64; dim];
        for e in embeds {
            mean.iter_mut().zip(e).for_each(|(m, &x)| *m += f64::from(x));
        }
        let values = mean.iter().map(|m| (m / embeds.len() as f64) as f32).collect();
        Some(ImageMean { source: format!("the mean of {} ({} images)", what, embeds.len()), values: Some(values) })
    }

    /// The mean to use when the user gave none: the model's own or the
    /// shipped one, else the collection's when it is large enough, else none.
    pub fn default_for(model_own: Option<ImageMean>, model_name: &str, collection: &[Vec<f32>], what: &str) -> Self {
        let dim = collection.first().map_or(0, Vec::len);
        model_own
            .or_else(|| Self::shipped_for(model_name, dim))
            .or_else(|| (collection.len() >= MIN_COLLECTION).then(|| Self::of_collection(collection, what)).flatten())
            .unwrap_or_else(Self::none)
    }

    /// `normalize(z - mean)`: the target the solver decomposes.
    pub fn centre(&self, z: &[f32]) -> Vec<f32> {
        let centred: Vec<f32> = match &self.values {
            Some(m) => z.iter().zip(m).map(|(a, b)| a - b).collect(),
            None => z.to_vec(),
        };
        normalized(&centred)
    }

    /// SpLiCE's recomposition: `normalize(normalize(Dᵀw) + mean)`.
    pub fn recompose(&self, combination: &[f32]) -> Vec<f32> {
        let unit = normalized(combination);
        match &self.values {
            Some(m) => normalized(&unit.iter().zip(m).map(|(a, b)| a + b).collect::<Vec<_>>()),
            None => unit,
        }
    }
}

/// `v / |v|`, or `v` itself when it is zero.
pub fn normalized(v: &[f32]) -> Vec<f32> {
    let norm = v.iter().map(|x| f64::from(*x) * f64::from(*x)).sum::<f64>().sqrt();
    if norm < 1e-12 {
        return v.to_vec();
    }
    v.iter().map(|x| (f64::from(*x) / norm) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_means_are_found_by_name() {
        let m = ImageMean::shipped_for("openai/clip-vit-base-patch32", 512).unwrap();
        assert!((m.info().norm - 0.6842).abs() < 1e-3, "{}", m.info().norm);
        assert!(ImageMean::shipped_for("clip-vit-base-patch16", 512).is_some());
        assert!(ImageMean::shipped_for("world-clip", 48).is_none());
        // A model of another size never gets it.
        assert!(ImageMean::shipped_for("clip-vit-base-patch32", 48).is_none());
    }

    #[test]
    fn a_mean_file_is_checked() {
        assert!(ImageMean::from_json(b"[1, 2]", "m.json", 2).is_ok());
        let e = ImageMean::from_json(b"[1, 2]", "m.json", 3).unwrap_err();
        assert_eq!(e.to_string(), "m.json: has 2 numbers but the model's embeddings have 3");
        assert!(ImageMean::from_json(b"{\"a\":1}", "m.json", 3).unwrap_err().to_string().starts_with("m.json: not a JSON array"));
    }

    #[test]
    fn the_default_prefers_the_models_own_then_the_collection() {
        let few = vec![vec![1.0, 0.0]; 3];
        assert_eq!(ImageMean::default_for(None, "x", &few, "the images").values, None);
        let many = vec![vec![0.6, 0.8]; MIN_COLLECTION];
        let m = ImageMean::default_for(None, "x", &many, "the images");
        assert_eq!(m.source, format!("the mean of the images ({MIN_COLLECTION} images)"));
        let own = ImageMean { source: "own".into(), values: Some(vec![0.0, 0.1]) };
        assert_eq!(ImageMean::default_for(Some(own.clone()), "x", &many, "the images"), own);
    }

    #[test]
    fn centre_and_recompose_are_inverse_up_to_length() {
        let mean = ImageMean { source: "m".into(), values: Some(vec![0.5, 0.0, 0.0]) };
        let z = normalized(&[0.6, 0.8, 0.0]);
        let c = mean.centre(&z);
        let back = mean.recompose(&c);
        let cos: f32 = back.iter().zip(&z).map(|(a, b)| a * b).sum();
        // Not 1: the recomposition forces the centred part to unit length.
        assert!(cos > 0.9 && cos < 1.0, "{cos}");
    }
}
