//! What a collection's decompositions say together: which concepts dominate
//! it, how two collections differ (the paper's distribution-shift study),
//! which images carry a concept most, and what removing a concept does to
//! zero-shot predictions (the paper's model editing).

use serde::{Deserialize, Serialize};

use crate::compare::csv_line;
use crate::concepts::image_mean::ImageMean;
use crate::concepts::{ConceptWeight, Decomposition, Dictionary, ImageReport, combination};

/// One concept across a collection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConceptCount {
    pub concept: String,
    /// Images whose decomposition uses it.
    pub images: usize,
    /// `images` over the collection's size.
    pub share: f64,
    /// Its mean weight over all images (0 where unused).
    pub mean_weight: f64,
}

/// Every concept some image uses, the most common first (then by weight).
pub fn histogram(decompositions: &[Decomposition], dictionary: &Dictionary) -> Vec<ConceptCount> {
    let n = decompositions.len().max(1) as f64;
    let (counts, sums) = tally(decompositions, dictionary.len());
    let mut out: Vec<ConceptCount> = (0..dictionary.len())
        .filter(|&j| counts[j] > 0)
        .map(|j| ConceptCount {
            concept: dictionary.words[j].clone(),
            images: counts[j],
            share: counts[j] as f64 / n,
            mean_weight: sums[j] / n,
        })
        .collect();
    out.sort_by(|a, b| b.images.cmp(&a.images).then(b.mean_weight.total_cmp(&a.mean_weight)).then(a.concept.cmp(&b.concept)));
    out
}

fn tally(decompositions: &[Decomposition], words: usize) -> (Vec<usize>, Vec<f64>) {
    let mut counts = vec![0usize; words];
    let mut sums = vec![0.0f64; words];
    for d in decompositions {
        for &(j, w) in &d.weights {
            counts[j] += 1;
            sums[j] += w;
        }
    }
    (counts, sums)
}

/// How one concept differs between collections A and B.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConceptShift {
    pub concept: String,
    pub images_a: usize,
    pub images_b: usize,
    pub share_a: f64,
    pub share_b: f64,
    pub mean_weight_a: f64,
    pub mean_weight_b: f64,
    /// `mean_weight_b - mean_weight_a`: positive where B has more of it.
    pub weight_change: f64,
}

/// Every concept either collection uses, by how much its mean weight moved
/// (largest change first, rises and falls alike). The mean weight counts
/// both how often a concept is used and how strongly, so a concept that
/// one folder merely leans on does not outrank one it is made of.
pub fn compare(a: &[Decomposition], b: &[Decomposition], dictionary: &Dictionary) -> Vec<ConceptShift> {
    let (na, nb) = (a.len().max(1) as f64, b.len().max(1) as f64);
    let (count_a, sum_a) = tally(a, dictionary.len());
    let (count_b, sum_b) = tally(b, dictionary.len());
    let mut out: Vec<ConceptShift> = (0..dictionary.len())
        .filter(|&j| count_a[j] + count_b[j] > 0)
        .map(|j| ConceptShift {
            concept: dictionary.words[j].clone(),
            images_a: count_a[j],
            images_b: count_b[j],
            share_a: count_a[j] as f64 / na,
            share_b: count_b[j] as f64 / nb,
            mean_weight_a: sum_a[j] / na,
            mean_weight_b: sum_b[j] / nb,
            weight_change: sum_b[j] / nb - sum_a[j] / na,
        })
        .collect();
    out.sort_by(|x, y| y.weight_change.abs().total_cmp(&x.weight_change.abs()).then(x.concept.cmp(&y.concept)));
    out
}

/// Indices of the images that carry `concept`, by its weight (largest
/// first); images without it are left out.
pub fn search(decompositions: &[Decomposition], concept: usize) -> Vec<(usize, f64)> {
    let mut out: Vec<(usize, f64)> =
        decompositions.iter().enumerate().map(|(i, d)| (i, d.weight_of(concept))).filter(|&(_, w)| w > 0.0).collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

/// As [`search`], on decompositions as reports carry them (concepts by
/// text): indices of the images whose concepts include `concept`, by weight.
pub fn rank_by_concept(images: &[Vec<ConceptWeight>], concept: &str) -> Vec<(usize, f32)> {
    let mut out: Vec<(usize, f32)> = images
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.iter().find(|w| w.concept == concept).map(|w| (i, w.weight)))
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

/// The recomposed embedding with some concepts' weights set to zero.
pub fn without(d: &Decomposition, removed: &[usize], dictionary: &Dictionary, mean: &ImageMean) -> Vec<f32> {
    let kept: Vec<(usize, f64)> = d.weights.iter().copied().filter(|(j, _)| !removed.contains(j)).collect();
    mean.recompose(&combination(dictionary, &kept))
}

/// Zero-shot predictions before and after removing concepts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Intervention {
    pub removed: Vec<String>,
    pub prompts: Vec<String>,
    /// Per image: the prompt predicted from the recomposed embedding, then
    /// with the concepts removed (indices into `prompts`).
    pub before: Vec<usize>,
    pub after: Vec<usize>,
    /// Per prompt: images predicted as it, before and after.
    pub count_before: Vec<usize>,
    pub count_after: Vec<usize>,
    /// Images whose prediction changed.
    pub changed: usize,
}

/// Removes `removed` from every decomposition and compares the zero-shot
/// predictions (nearest prompt by cosine) of the recomposed embeddings.
pub fn intervene(
    decompositions: &[Decomposition],
    removed: &[usize],
    dictionary: &Dictionary,
    mean: &ImageMean,
    prompts: &[String],
    prompt_embeds: &[Vec<f32>],
) -> Intervention {
    let predict = |e: &[f32]| {
        let scores: Vec<f32> = prompt_embeds.iter().map(|p| crate::clip::dot(e, p)).collect();
        crate::compare::best(&scores).unwrap_or(0)
    };
    let before: Vec<usize> = decompositions.iter().map(|d| predict(&d.recomposed)).collect();
    let after: Vec<usize> = decompositions.iter().map(|d| predict(&without(d, removed, dictionary, mean))).collect();
    let count = |v: &[usize]| (0..prompts.len()).map(|p| v.iter().filter(|&&x| x == p).count()).collect();
    Intervention {
        removed: removed.iter().map(|&j| dictionary.words[j].clone()).collect(),
        prompts: prompts.to_vec(),
        changed: before.iter().zip(&after).filter(|(a, b)| a != b).count(),
        count_before: count(&before),
        count_after: count(&after),
        before,
        after,
    }
}

/// One row per image and concept (`file,concept,weight`), plus each image's
/// cosine, lambda and l0: the page's CSV export. Cells a spreadsheet would
/// run as formulas are defused.
pub fn decompositions_csv(files: &[String], decompositions: &[Decomposition], dictionary: &Dictionary) -> String {
    let mut out = String::from("file,concept,weight,cosine,lambda,l0\r\n");
    for (file, d) in files.iter().zip(decompositions) {
        for &(j, w) in &d.weights {
            out.push_str(&csv_line(&[
                file.clone(),
                dictionary.words[j].clone(),
                format!("{w:.6}"),
                format!("{:.6}", d.cosine),
                format!("{:.6}", d.lambda),
                d.l0().to_string(),
            ]));
        }
    }
    out
}

/// [`decompositions_csv`] from report rows (the page's export).
pub fn results_csv(files: &[String], images: &[ImageReport]) -> String {
    let mut out = String::from("file,concept,weight,cosine,lambda,l0\r\n");
    for (file, image) in files.iter().zip(images) {
        for c in &image.concepts {
            out.push_str(&csv_line(&[
                file.clone(),
                c.concept.clone(),
                format!("{:.6}", c.weight),
                format!("{:.6}", image.cosine),
                format!("{:.6}", image.lambda),
                image.l0.to_string(),
            ]));
        }
    }
    out
}

/// The two-folder comparison as CSV.
pub fn shifts_csv(shifts: &[ConceptShift]) -> String {
    let mut out = String::from("concept,images_a,images_b,share_a,share_b,mean_weight_a,mean_weight_b,weight_change\r\n");
    for s in shifts {
        out.push_str(&csv_line(&[
            s.concept.clone(),
            s.images_a.to_string(),
            s.images_b.to_string(),
            format!("{:.4}", s.share_a),
            format!("{:.4}", s.share_b),
            format!("{:.6}", s.mean_weight_a),
            format!("{:.6}", s.mean_weight_b),
            format!("{:+.6}", s.weight_change),
        ]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::concepts::Vocabulary;

    fn dictionary() -> Dictionary {
        let v = Vocabulary::new("t".into(), vec!["night".into(), "beach".into(), "=cmd".into()]);
        Dictionary::from_embeddings(&v, &[vec![1.0, 0.0, 0.0], vec![0.0, 1.0, 0.0], vec![0.0, 0.0, 1.0]]).unwrap()
    }

    fn with(weights: Vec<(usize, f64)>) -> Decomposition {
        Decomposition { weights, lambda: 0.1, objective: 0.5, cosine: 0.9, recomposed: vec![] }
    }

    #[test]
    fn histogram_compare_and_search_count_what_they_say() {
        let d = dictionary();
        let a = vec![with(vec![(1, 0.5)]), with(vec![(1, 0.4), (0, 0.1)])];
        let b = vec![with(vec![(0, 0.6)]), with(vec![(0, 0.5), (1, 0.1)])];
        let h = histogram(&a, &d);
        assert_eq!(h[0].concept, "beach");
        assert_eq!((h[0].images, h[0].share), (2, 1.0));
        let shifts = compare(&a, &b, &d);
        assert_eq!(shifts[0].concept, "night");
        assert!(shifts[0].weight_change > 0.0);
        assert_eq!(shifts[1].concept, "beach");
        assert!(shifts[1].weight_change < 0.0);
        assert_eq!(search(&b, 0), vec![(0, 0.6), (1, 0.5)]);
        assert!(search(&b, 2).is_empty());
        let as_reports: Vec<Vec<ConceptWeight>> = b.iter().map(|x| x.concepts(&d)).collect();
        assert_eq!(rank_by_concept(&as_reports, "night"), vec![(0, 0.6), (1, 0.5)]);
        let csv = decompositions_csv(&["x.png".into()], &[with(vec![(2, 1.0)])], &d);
        assert!(csv.lines().nth(1).unwrap().starts_with("x.png,'=cmd,"), "{csv}");
    }

    #[test]
    fn removing_a_concept_moves_the_predictions_it_carried() {
        let d = dictionary();
        let mean = ImageMean { source: "none".into(), values: None };
        let mut decompositions = vec![with(vec![(0, 0.9), (1, 0.3)]), with(vec![(1, 0.8)])];
        for x in &mut decompositions {
            x.recomposed = mean.recompose(&combination(&d, &x.weights));
        }
        let prompts = vec!["at night".to_string(), "on a beach".to_string()];
        let embeds = vec![vec![1.0, 0.0, 0.0], vec![0.0, 1.0, 0.0]];
        let out = intervene(&decompositions, &[0], &d, &mean, &prompts, &embeds);
        assert_eq!(out.before, vec![0, 1]);
        assert_eq!(out.after, vec![1, 1]);
        assert_eq!((out.count_before.clone(), out.count_after.clone(), out.changed), (vec![1, 1], vec![0, 2], 1));
        assert_eq!(out.removed, vec!["night"]);
    }
}
