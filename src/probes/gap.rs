//! The modality gap (Liang et al. 2022, "Mind the Gap"): CLIP's image and text
//! embeddings sit in two separate regions of the sphere, so an image's nearest
//! caption is still far away. The probe measures the gap on paired images and
//! captions (the distance between the two centroids), draws both sets on their
//! first two principal components, and shifts the embeddings along the gap
//! vector to show what closing (or widening) it does to retrieval and
//! zero-shot accuracy.

use serde::{Deserialize, Serialize};

use crate::rng::Rng;

/// Zero-shot classes for the accuracy column: one (prompt-ensemble) embedding
/// per class, and each image's true class where it has one.
#[derive(Clone, Debug)]
pub struct Classes {
    pub names: Vec<String>,
    pub embeddings: Vec<Vec<f32>>,
    pub labels: Vec<Option<usize>>,
}

/// The embeddings after one shift along the gap.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GapShift {
    /// 0: as the model embeds them; 1: images and texts each moved half the
    /// gap vector towards the other (the centroids meet, up to the
    /// renormalization); negative: the gap widened.
    pub lambda: f64,
    /// Distance between the image and caption centroids after the shift.
    pub centroid_distance: f64,
    /// Mean cosine of each image with its own caption.
    pub mean_pair_cosine: f64,
    /// Share of images whose most similar caption is their own.
    pub retrieval_accuracy: f64,
    /// Share of labelled images whose most similar class is the true one.
    pub zero_shot_accuracy: Option<f64>,
}

/// Both sets on the first two principal components of their union.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Projection {
    /// Share of the union's variance along each component.
    pub explained: [f64; 2],
    pub images: Vec<[f64; 2]>,
    pub captions: Vec<[f64; 2]>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GapReport {
    pub pairs: usize,
    pub dim: usize,
    /// ‖mean image − mean caption‖ of the unit-length embeddings.
    pub centroid_distance: f64,
    /// Cosine between the two centroids.
    pub centroid_cosine: f64,
    pub image_centroid_norm: f64,
    pub caption_centroid_norm: f64,
    /// Cosine of the gap vector with the first principal component: near 1
    /// when the gap is the main thing that separates the embeddings.
    pub gap_on_first_component: f64,
    pub projection: Projection,
    /// The class names of the zero-shot column, when there is one.
    pub classes: Vec<String>,
    pub shifts: Vec<GapShift>,
}

/// The shifts a report shows unless asked otherwise.
pub const DEFAULT_LAMBDAS: [f64; 7] = [-1.0, -0.5, 0.0, 0.25, 0.5, 0.75, 1.0];

/// Measures the gap between `images` and their `captions` (caption `i`
/// describes image `i`; any length, normalized here) and the accuracy after
/// each shift in `lambdas`.
pub fn modality_gap(images: &[Vec<f32>], captions: &[Vec<f32>], classes: Option<&Classes>, lambdas: &[f64]) -> Result<GapReport, String> {
    let pairs = images.len();
    if pairs < 2 {
        return Err(format!("the modality gap needs at least 2 image-caption pairs, got {pairs}"));
    }
    if captions.len() != pairs {
        return Err(format!("{pairs} images but {} captions: each image needs its caption", captions.len()));
    }
    let dim = images[0].len();
    if dim < 2 {
        return Err(format!("embeddings of {dim} dimension(s): the scatter needs at least 2"));
    }
    if images.iter().chain(captions).any(|e| e.len() != dim) {
        return Err(format!("embeddings of different lengths (the first has {dim})"));
    }
    if let Some(c) = classes {
        if c.labels.len() != pairs {
            return Err(format!("{pairs} images but {} class labels", c.labels.len()));
        }
        if c.embeddings.is_empty() || c.embeddings.iter().any(|e| e.len() != dim) || c.names.len() != c.embeddings.len() {
            return Err(format!("the classes need one name and one {dim}-d embedding each"));
        }
        if let Some(bad) = c.labels.iter().flatten().find(|&&l| l >= c.embeddings.len()) {
            return Err(format!("class label {bad} is out of range ({} classes)", c.embeddings.len()));
        }
    }
    let x: Vec<Vec<f64>> = images.iter().map(|e| unit(e.iter().map(|&v| v as f64).collect())).collect();
    let y: Vec<Vec<f64>> = captions.iter().map(|e| unit(e.iter().map(|&v| v as f64).collect())).collect();
    let class_vectors: Option<Vec<Vec<f64>>> =
        classes.map(|c| c.embeddings.iter().map(|e| unit(e.iter().map(|&v| v as f64).collect())).collect());

    let mx = mean(&x);
    let my = mean(&y);
    let gap: Vec<f64> = mx.iter().zip(&my).map(|(a, b)| a - b).collect();
    let union: Vec<Vec<f64>> = x.iter().chain(&y).cloned().collect();
    let components = principal_components(&union, 2);
    let projection = project(&union, pairs, &components);

    let shifts = lambdas
        .iter()
        .map(|&lambda| {
            let moved = |v: &[f64], sign: f64| unit(v.iter().zip(&gap).map(|(a, g)| a + sign * lambda * g / 2.0).collect());
            let xs: Vec<Vec<f64>> = x.iter().map(|v| moved(v, -1.0)).collect();
            let ys: Vec<Vec<f64>> = y.iter().map(|v| moved(v, 1.0)).collect();
            // An image finds its caption when nothing scores higher: pairs that share a caption
            // (the same text, so the same embedding) all count as found.
            let retrieved = xs.iter().zip(&ys).filter(|(xi, yi)| dot(xi, yi) >= best_score(xi, &ys)).count();
            let zero_shot = classes.zip(class_vectors.as_ref()).and_then(|(c, vectors)| {
                let cs: Vec<Vec<f64>> = vectors.iter().map(|v| moved(v, 1.0)).collect();
                let judged: Vec<bool> =
                    xs.iter().zip(&c.labels).filter_map(|(xi, label)| label.map(|l| argmax(xi, &cs) == l)).collect();
                (!judged.is_empty()).then(|| judged.iter().filter(|&&ok| ok).count() as f64 / judged.len() as f64)
            });
            GapShift {
                lambda,
                centroid_distance: distance(&mean(&xs), &mean(&ys)),
                mean_pair_cosine: xs.iter().zip(&ys).map(|(a, b)| dot(a, b)).sum::<f64>() / pairs as f64,
                retrieval_accuracy: retrieved as f64 / pairs as f64,
                zero_shot_accuracy: zero_shot,
            }
        })
        .collect();

    let (nx, ny) = (norm(&mx), norm(&my));
    Ok(GapReport {
        pairs,
        dim,
        centroid_distance: norm(&gap),
        centroid_cosine: dot(&mx, &my) / (nx * ny).max(f64::MIN_POSITIVE),
        image_centroid_norm: nx,
        caption_centroid_norm: ny,
        gap_on_first_component: (dot(&gap, &components[0].1) / norm(&gap).max(f64::MIN_POSITIVE)).abs(),
        projection,
        classes: classes.map(|c| c.names.clone()).unwrap_or_default(),
        shifts,
    })
}

/// Both sets on the first two principal components of their union (centred
/// on the union's mean): `union` holds the images, then from `split` on the captions.
fn project(union: &[Vec<f64>], split: usize, components: &[(f64, Vec<f64>)]) -> Projection {
    let centre = mean(union);
    let total: f64 = {
        let n = union.len() as f64;
        union.iter().map(|v| v.iter().zip(&centre).map(|(a, c)| (a - c) * (a - c)).sum::<f64>()).sum::<f64>() / (n - 1.0)
    };
    let on = |v: &Vec<f64>| -> [f64; 2] {
        let c: Vec<f64> = v.iter().zip(&centre).map(|(a, m)| a - m).collect();
        [dot(&c, &components[0].1), dot(&c, &components[1].1)]
    };
    Projection {
        explained: [components[0].0 / total.max(f64::MIN_POSITIVE), components[1].0 / total.max(f64::MIN_POSITIVE)],
        images: union[..split].iter().map(on).collect(),
        captions: union[split..].iter().map(on).collect(),
    }
}

/// The top `k` eigenpairs (variance, unit direction) of the sample covariance
/// of `rows`, largest first. Subspace iteration on a block wider than `k`
/// (so close eigenvalues below the k-th do not slow it), then Rayleigh-Ritz.
/// Each direction's entry of largest magnitude is made positive, so the signs
/// do not depend on the start.
pub fn principal_components(rows: &[Vec<f64>], k: usize) -> Vec<(f64, Vec<f64>)> {
    let n = rows.len();
    let d = rows.first().map_or(0, Vec::len);
    if d == 0 || k == 0 {
        return Vec::new();
    }
    let k = k.min(d);
    let centre = mean(rows);
    let mut cov = vec![0.0f64; d * d];
    for r in rows {
        let c: Vec<f64> = r.iter().zip(&centre).map(|(a, m)| a - m).collect();
        for i in 0..d {
            let ci = c[i];
            if ci == 0.0 {
                continue;
            }
            let row = &mut cov[i * d..(i + 1) * d];
            for j in i..d {
                row[j] += ci * c[j];
            }
        }
    }
    let scale = 1.0 / (n.max(2) - 1) as f64;
    for i in 0..d {
        for j in i..d {
            let v = cov[i * d + j] * scale;
            cov[i * d + j] = v;
            cov[j * d + i] = v;
        }
    }
    let times = |v: &[f64]| -> Vec<f64> { (0..d).map(|i| dot(&cov[i * d..(i + 1) * d], v)).collect() };

    let block = (k + 6).min(d);
    let mut rng = Rng::new(0x9a7);
    let mut basis: Vec<Vec<f64>> = (0..block).map(|_| (0..d).map(|_| rng.unit() - 0.5).collect()).collect();
    orthonormalize(&mut basis);
    for _ in 0..300 {
        basis = basis.iter().map(|v| times(v)).collect();
        orthonormalize(&mut basis);
    }
    // Rayleigh-Ritz: the block's own small eigenproblem.
    let images: Vec<Vec<f64>> = basis.iter().map(|v| times(v)).collect();
    let small: Vec<Vec<f64>> = (0..block).map(|i| (0..block).map(|j| dot(&basis[i], &images[j])).collect()).collect();
    let (values, vectors) = jacobi_eigen(small);
    let mut order: Vec<usize> = (0..block).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    order
        .into_iter()
        .take(k)
        .map(|e| {
            let mut direction = vec![0.0; d];
            for (b, v) in basis.iter().enumerate() {
                let w = vectors[b][e];
                for (o, x) in direction.iter_mut().zip(v) {
                    *o += w * x;
                }
            }
            let mut direction = unit(direction);
            let largest = direction.iter().copied().fold(0.0f64, |m, v| if v.abs() > m.abs() { v } else { m });
            if largest < 0.0 {
                direction.iter_mut().for_each(|v| *v = -*v);
            }
            (values[e].max(0.0), direction)
        })
        .collect()
}

/// Modified Gram-Schmidt, twice (once loses orthogonality in near-dependent blocks).
fn orthonormalize(vectors: &mut [Vec<f64>]) {
    for _ in 0..2 {
        for i in 0..vectors.len() {
            for j in 0..i {
                let p = dot(&vectors[i], &vectors[j]);
                let (before, after) = vectors.split_at_mut(i);
                for (a, b) in after[0].iter_mut().zip(&before[j]) {
                    *a -= p * b;
                }
            }
            let n = norm(&vectors[i]);
            if n > 1e-300 {
                vectors[i].iter_mut().for_each(|v| *v /= n);
            }
        }
    }
}

/// Eigenvalues and eigenvectors (as columns: `vectors[row][k]`) of a small
/// symmetric matrix, by cyclic Jacobi rotations.
fn jacobi_eigen(mut a: Vec<Vec<f64>>) -> (Vec<f64>, Vec<Vec<f64>>) {
    let n = a.len();
    let mut v: Vec<Vec<f64>> = (0..n).map(|i| (0..n).map(|j| if i == j { 1.0 } else { 0.0 }).collect()).collect();
    for _ in 0..100 {
        let off: f64 = (0..n).flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j))).map(|(i, j)| a[i][j] * a[i][j]).sum();
        let scale: f64 = (0..n).map(|i| a[i][i] * a[i][i]).sum::<f64>().max(f64::MIN_POSITIVE);
        if off <= 1e-30 * scale {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                if a[p][q].abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[k][p], a[k][q]);
                    a[k][p] = c * akp - s * akq;
                    a[k][q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p][k], a[q][k]);
                    a[p][k] = c * apk - s * aqk;
                    a[q][k] = s * apk + c * aqk;
                }
                for row in v.iter_mut() {
                    let (vkp, vkq) = (row[p], row[q]);
                    row[p] = c * vkp - s * vkq;
                    row[q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..n).map(|i| a[i][i]).collect(), v)
}

fn best_score(x: &[f64], candidates: &[Vec<f64>]) -> f64 {
    candidates.iter().map(|c| dot(x, c)).fold(f64::NEG_INFINITY, f64::max)
}

fn argmax(x: &[f64], candidates: &[Vec<f64>]) -> usize {
    let mut best = (0, f64::NEG_INFINITY);
    for (j, c) in candidates.iter().enumerate() {
        let s = dot(x, c);
        if s > best.1 {
            best = (j, s);
        }
    }
    best.0
}

fn mean(rows: &[Vec<f64>]) -> Vec<f64> {
    let mut m = vec![0.0; rows[0].len()];
    for r in rows {
        for (a, b) in m.iter_mut().zip(r) {
            *a += b;
        }
    }
    let n = rows.len() as f64;
    m.iter_mut().for_each(|v| *v /= n);
    m
}

fn unit(mut v: Vec<f64>) -> Vec<f64> {
    let n = norm(&v);
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
    v
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm(v: &[f64]) -> f64 {
    dot(v, v).sqrt()
}

fn distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>().sqrt()
}

/// The shifts as CSV, one row per λ (an empty zero-shot cell where there are no classes).
pub fn shifts_csv(report: &GapReport) -> String {
    let mut out = String::from("lambda,centroid_distance,mean_pair_cosine,retrieval_accuracy,zero_shot_accuracy\n");
    for s in &report.shifts {
        let zero_shot = s.zero_shot_accuracy.map(|a| a.to_string()).unwrap_or_default();
        out += &format!("{},{},{},{},{zero_shot}\n", s.lambda, s.centroid_distance, s.mean_pair_cosine, s.retrieval_accuracy);
    }
    out
}

/// The PCA scatter as a self-contained SVG: images as circles, captions as
/// squares, each set's centroid as a cross, the axes named with their share
/// of the variance.
pub fn scatter_svg(report: &GapReport) -> String {
    const SIZE: f64 = 360.0;
    const PAD: f64 = 36.0;
    let p = &report.projection;
    let points = p.images.iter().chain(&p.captions);
    let extent = points.fold(1e-9f64, |m, q| m.max(q[0].abs()).max(q[1].abs()));
    let at = |q: &[f64; 2]| (PAD + (q[0] / extent + 1.0) / 2.0 * (SIZE - 2.0 * PAD), SIZE - PAD - (q[1] / extent + 1.0) / 2.0 * (SIZE - 2.0 * PAD));
    let centroid = |qs: &[[f64; 2]]| -> [f64; 2] {
        let n = qs.len().max(1) as f64;
        [qs.iter().map(|q| q[0]).sum::<f64>() / n, qs.iter().map(|q| q[1]).sum::<f64>() / n]
    };
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {SIZE} {SIZE}\" role=\"img\" aria-labelledby=\"gap-title gap-desc\">\
         <title id=\"gap-title\">Image and caption embeddings on their first two principal components</title>\
         <desc id=\"gap-desc\">{} images (circles) and their captions (squares); the centroids are {:.3} apart. \
         The horizontal axis holds {:.0}% of the variance, the vertical {:.0}%.</desc>\
         <rect width=\"{SIZE}\" height=\"{SIZE}\" fill=\"#fff\"/>",
        report.pairs,
        report.centroid_distance,
        100.0 * p.explained[0],
        100.0 * p.explained[1]
    );
    for q in &p.images {
        let (x, y) = at(q);
        s += &format!("<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2.5\" fill=\"#1f77b4\" fill-opacity=\"0.6\"/>");
    }
    for q in &p.captions {
        let (x, y) = at(q);
        s += &format!("<rect x=\"{:.1}\" y=\"{:.1}\" width=\"5\" height=\"5\" fill=\"#d95f02\" fill-opacity=\"0.6\"/>", x - 2.5, y - 2.5);
    }
    for (qs, colour) in [(&p.images, "#0b3c61"), (&p.captions, "#7a3400")] {
        let (x, y) = at(&centroid(qs));
        s += &format!(
            "<path d=\"M{:.1} {:.1}h14M{x:.1} {:.1}v14\" stroke=\"{colour}\" stroke-width=\"3\"/>",
            x - 7.0,
            y,
            y - 7.0
        );
    }
    s += &format!(
        "<text x=\"{:.0}\" y=\"{:.0}\" font-size=\"12\" text-anchor=\"middle\" fill=\"#222\">PC1 ({:.0}% of the variance)</text>\
         <text x=\"12\" y=\"{:.0}\" font-size=\"12\" text-anchor=\"middle\" fill=\"#222\" transform=\"rotate(-90 12 {:.0})\">PC2 ({:.0}%)</text>\
         <text x=\"{PAD}\" y=\"18\" font-size=\"12\" fill=\"#1f77b4\">● images</text>\
         <text x=\"{:.0}\" y=\"18\" font-size=\"12\" fill=\"#d95f02\">■ captions</text></svg>",
        SIZE / 2.0,
        SIZE - 8.0,
        100.0 * p.explained[0],
        SIZE / 2.0,
        SIZE / 2.0,
        100.0 * p.explained[1],
        PAD + 90.0
    );
    s
}

#[cfg(feature = "compute")]
/// The world's pairs: `count` scenes from `seed`, embedded, their full
/// captions embedded, and the zero-shot classes of `task` with each scene's truth.
pub async fn world_inputs(
    clip: &crate::clip::Clip,
    seed: u64,
    count: usize,
    task: crate::world::captions::Task,
) -> crate::error::Result<(Vec<Vec<f32>>, Vec<Vec<f32>>, Classes)> {
    use crate::world::captions::{full_caption, zero_shot_prompts};
    use crate::world::eval::{class_embeddings, embed_scenes};
    let scenes = crate::world::scenes(seed, count);
    let images = embed_scenes(clip, &scenes).await?;
    let texts: Vec<String> = scenes.iter().map(full_caption).collect();
    let captions = clip.embed_texts(&texts).await?.embeds;
    let embeddings = class_embeddings(clip, task).await?;
    let names = (0..task.classes()).map(|v| zero_shot_prompts(task, v)[0].clone()).collect();
    let labels = scenes.iter().map(|s| task.truth(s)).collect();
    Ok((images, captions, Classes { names, embeddings, labels }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principal_components_of_a_planted_spectrum() {
        // Variance 9 along e0, 4 along e1, 1 elsewhere (a fixed lattice of points).
        let mut rng = Rng::new(3);
        let rows: Vec<Vec<f64>> = (0..400)
            .map(|_| (0..6).map(|i| (rng.unit() - 0.5) * [3.0, 2.0, 1.0, 1.0, 1.0, 1.0][i] * 12f64.sqrt()).collect())
            .collect();
        let pcs = principal_components(&rows, 2);
        assert!(pcs[0].1[0] > 0.97 && pcs[1].1[1].abs() > 0.97, "{pcs:?}");
        assert!((pcs[0].0 / pcs[1].0 - 9.0 / 4.0).abs() < 0.4, "{pcs:?}");
    }

    #[test]
    fn closing_the_gap_brings_the_centroids_together() {
        let mut rng = Rng::new(5);
        let noise = |rng: &mut Rng| -> Vec<f32> { (0..16).map(|_| (rng.unit() - 0.5) as f32).collect() };
        let images: Vec<Vec<f32>> = (0..40).map(|_| { let mut v = noise(&mut rng); v[0] += 2.0; v }).collect();
        let captions: Vec<Vec<f32>> = images.iter().map(|x| { let mut v: Vec<f32> = x.iter().map(|a| a * 0.3).collect(); v[1] += 2.0; v[0] -= 0.6; v }).collect();
        let report = modality_gap(&images, &captions, None, &[0.0, 1.0]).unwrap();
        assert!(report.centroid_distance > 0.5, "{report:?}");
        assert!((report.shifts[0].centroid_distance - report.centroid_distance).abs() < 1e-12);
        assert!(report.shifts[1].centroid_distance < 0.3 * report.centroid_distance, "{:?}", report.shifts);
        assert!(scatter_svg(&report).starts_with("<svg"));
        let csv = shifts_csv(&report);
        assert_eq!(csv.lines().count(), 3);
        assert!(csv.lines().nth(2).unwrap().starts_with("1,") && csv.ends_with(",\n"), "{csv}");
        assert!(modality_gap(&images[..1], &captions[..1], None, &[0.0]).is_err());
        let flat: Vec<Vec<f32>> = images.iter().map(|v| v[..1].to_vec()).collect();
        assert!(modality_gap(&flat, &flat, None, &[0.0]).is_err());
        // Every image is its own caption, and one pair comes twice: both copies find it.
        let mut twice = images.clone();
        twice.push(images[0].clone());
        let doubled = modality_gap(&twice, &twice, None, &[0.0]).unwrap();
        assert_eq!(doubled.shifts[0].retrieval_accuracy, 1.0, "{:?}", doubled.shifts);
        assert!(modality_gap(&images, &captions[..3], None, &[0.0]).is_err());
    }
}
