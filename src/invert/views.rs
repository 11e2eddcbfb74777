//! Augmented views of the image being optimized. Every geometric change used
//! here (crop, shift, resize, mirror) is separable, so one view is
//! `rows · image · colsᵀ` with two small resampling matrices built on the
//! host: plain matmuls, whose gradients every burn backend computes, and the
//! same random draws on every platform.

use burn::tensor::{Device, Tensor, TensorData};

use super::settings::Augmentations;
use crate::rng::Rng;

/// Where one view looks, in source pixels: a square window, maybe mirrored.
#[derive(Clone, Debug, PartialEq)]
pub struct ViewGeometry {
    pub x0: f32,
    pub y0: f32,
    pub side: f32,
    pub flip: bool,
}

/// One view's random draws.
#[derive(Clone, Debug, PartialEq)]
pub struct ViewSpec {
    pub geometry: ViewGeometry,
    /// Per channel: contrast factor and shift.
    pub gain: [f32; 3],
    pub shift: [f32; 3],
    /// Seed of this view's noise.
    pub noise_seed: u64,
}

impl ViewSpec {
    /// The whole image, unchanged.
    pub fn identity(source: usize) -> Self {
        ViewSpec {
            geometry: ViewGeometry { x0: 0.0, y0: 0.0, side: source as f32, flip: false },
            gain: [1.0; 3],
            shift: [0.0; 3],
            noise_seed: 0,
        }
    }

    /// A random view of a `source`-pixel image.
    pub fn sample(rng: &mut Rng, a: &Augmentations, source: usize) -> Self {
        let n = source as f32;
        let side = n * (a.crop_min + (a.crop_max - a.crop_min) * rng.unit() as f32);
        let slack = n - side;
        // Whole pixels: a fractional shift would also blur the view (resampling).
        let mut offset = || (slack * rng.unit() as f32 + a.jitter * n * (2.0 * rng.unit() as f32 - 1.0)).round();
        let (x0, y0) = (offset(), offset());
        let flip = a.flip && rng.chance(0.5);
        let mut symmetric = || 2.0 * rng.unit() as f32 - 1.0;
        let gain = [0; 3].map(|_| 1.0 + a.color_jitter * symmetric());
        let shift = [0; 3].map(|_| 0.5 * a.color_jitter * symmetric());
        ViewSpec { geometry: ViewGeometry { x0, y0, side, flip }, gain, shift, noise_seed: rng.next_u64() }
    }
}

/// Keys' cubic convolution kernel with a = -0.5 (the one Pillow uses).
fn cubic(x: f32) -> f32 {
    let a = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * a
    } else {
        0.0
    }
}

/// `[out, source]` row-major: `out[i] = Σ_j m[i][j] · source[j]`, bicubic
/// sampling of the window `start .. start + len` (source pixels, centres at
/// `j + 0.5`), mirrored if `flip`. Positions past the border take the edge
/// pixel. Shrinking widens the kernel (antialiasing), as Pillow does.
pub fn resample_matrix(source: usize, out: usize, start: f32, len: f32, flip: bool) -> Vec<f32> {
    let scale = len / out as f32;
    let widen = scale.max(1.0);
    let support = 2.0 * widen;
    let mut m = vec![0.0f32; out * source];
    for i in 0..out {
        let k = if flip { out - 1 - i } else { i };
        let centre = start + (k as f32 + 0.5) * scale - 0.5;
        let lo = (centre - support).floor() as i64;
        let hi = (centre + support).ceil() as i64;
        let mut total = 0.0;
        let row = &mut m[i * source..(i + 1) * source];
        for j in lo..=hi {
            let w = cubic((j as f32 - centre) / widen);
            if w == 0.0 {
                continue;
            }
            let clamped = j.clamp(0, source as i64 - 1) as usize;
            row[clamped] += w;
            total += w;
        }
        if total != 0.0 {
            row.iter_mut().for_each(|w| *w /= total);
        }
    }
    m
}

/// A `[rows, cols]` matrix on the device, with autodiff on (a constant of the graph).
pub fn constant<const D: usize>(values: Vec<f32>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), device).autodiff()
}

/// Approximately standard normal values, cheaply: the Irwin-Hall sum of four
/// 16-bit uniforms, scaled to unit variance (within ±3.5). Host-side so the
/// same seed gives the same noise on every backend.
pub fn gaussian_noise(seed: u64, n: usize) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let scale = (3.0f32).sqrt() / 65536.0;
    (0..n)
        .map(|_| {
            let r = rng.next_u64();
            let sum = (r & 0xFFFF) + ((r >> 16) & 0xFFFF) + ((r >> 32) & 0xFFFF) + (r >> 48);
            (sum as f32 - 2.0 * 65536.0) * scale
        })
        .collect()
}

/// The views of `image` (`[1, 3, r, r]`, values 0..1) as the model's
/// normalized input, `[views, 3, size, size]`.
pub fn render_views(
    image: Tensor<4>,
    specs: &[ViewSpec],
    augment: &Augmentations,
    size: usize,
    mean: [f32; 3],
    std: [f32; 3],
    device: &Device,
) -> Tensor<4> {
    let [_, channels, r, _] = image.dims();
    let n = specs.len();
    let mut rows = Vec::with_capacity(n * size * r);
    let mut cols_t = Vec::with_capacity(n * r * size);
    for spec in specs {
        let g = &spec.geometry;
        rows.extend(resample_matrix(r, size, g.y0, g.side, false));
        // Transposed: the right-hand factor of `rows · image · colsᵀ`.
        let cols = resample_matrix(r, size, g.x0, g.side, g.flip);
        for j in 0..r {
            cols_t.extend((0..size).map(|i| cols[i * r + j]));
        }
    }
    let rows = constant(rows, [n, 1, size, r], device).expand([n, channels, size, r]);
    let cols_t = constant(cols_t, [n, 1, r, size], device).expand([n, channels, r, size]);
    let mut x = rows.matmul(image.expand([n, channels, r, r])).matmul(cols_t);

    if augment.color_jitter > 0.0 {
        let gain: Vec<f32> = specs.iter().flat_map(|s| s.gain).collect();
        let shift: Vec<f32> = specs.iter().flat_map(|s| s.shift).collect();
        // Contrast around mid-grey, then a shift.
        x = (x - 0.5) * constant(gain, [n, channels, 1, 1], device) + constant(shift, [n, channels, 1, 1], device) + 0.5;
    }
    if augment.noise > 0.0 {
        let per_view = channels * size * size;
        let noise: Vec<f32> = specs
            .iter()
            .flat_map(|s| gaussian_noise(s.noise_seed, per_view).into_iter().map(|v| v * augment.noise))
            .collect();
        x = x + constant(noise, [n, channels, size, size], device);
    }
    let mean = constant(mean.to_vec(), [1, 3, 1, 1], device);
    let inv_std = constant(std.map(|s| 1.0 / s).to_vec(), [1, 3, 1, 1], device);
    (x - mean) * inv_std
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(m: &[f32], source: &[f32]) -> Vec<f32> {
        let n = source.len();
        m.chunks(n).map(|row| row.iter().zip(source).map(|(w, x)| w * x).sum()).collect()
    }

    #[test]
    fn identity_window_is_the_identity() {
        let m = resample_matrix(5, 5, 0.0, 5.0, false);
        let x = [0.1, 0.9, 0.3, 0.4, 0.7];
        for (a, b) in apply(&m, &x).iter().zip(x) {
            assert!((a - b).abs() < 1e-6);
        }
        let flipped = apply(&resample_matrix(5, 5, 0.0, 5.0, true), &x);
        assert!((flipped[0] - 0.7).abs() < 1e-6 && (flipped[4] - 0.1).abs() < 1e-6);
    }

    #[test]
    fn rows_sum_to_one_and_constants_stay_constant() {
        for (source, out, start, len) in [(16, 64, 0.0, 16.0), (64, 64, -5.0, 40.0), (64, 16, 0.0, 64.0), (7, 3, 2.0, 4.5)] {
            let m = resample_matrix(source, out, start, len, false);
            let y = apply(&m, &vec![0.25; source]);
            assert!(y.iter().all(|v| (v - 0.25).abs() < 1e-5), "{source}->{out}: {y:?}");
        }
    }

    #[test]
    fn a_shifted_window_shifts_the_image() {
        let x: Vec<f32> = (0..8).map(|i| i as f32).collect();
        // A window starting 2 px in: the output's first pixel is source pixel 2.
        let y = apply(&resample_matrix(8, 4, 2.0, 4.0, false), &x);
        assert!((y[0] - 2.0).abs() < 1e-5 && (y[3] - 5.0).abs() < 1e-5, "{y:?}");
        // Past the border the edge repeats.
        let y = apply(&resample_matrix(8, 4, -10.0, 4.0, false), &x);
        assert!(y.iter().all(|v| v.abs() < 1e-5), "{y:?}");
    }

    #[test]
    fn noise_is_reproducible_and_roughly_standard() {
        let a = gaussian_noise(9, 20_000);
        assert_eq!(a, gaussian_noise(9, 20_000));
        assert_ne!(a, gaussian_noise(10, 20_000));
        let mean = a.iter().sum::<f32>() / a.len() as f32;
        let var = a.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / a.len() as f32;
        assert!(mean.abs() < 0.03 && (var - 1.0).abs() < 0.05, "mean {mean} var {var}");
    }

    #[test]
    fn views_stay_inside_their_ranges() {
        let a = Augmentations { crop_min: 0.5, crop_max: 0.9, jitter: 0.1, flip: true, noise: 0.1, color_jitter: 0.2 };
        let mut rng = Rng::new(3);
        let specs: Vec<ViewSpec> = (0..200).map(|_| ViewSpec::sample(&mut rng, &a, 64)).collect();
        assert!(specs.iter().all(|s| s.geometry.side >= 32.0 && s.geometry.side <= 57.6 + 1e-3));
        assert!(specs.iter().all(|s| s.geometry.x0 >= -6.4 - 1e-3 && s.geometry.x0 + s.geometry.side <= 64.0 + 6.4 + 1e-3));
        let flips = specs.iter().filter(|s| s.geometry.flip).count();
        assert!((60..140).contains(&flips), "{flips}");
        assert!(specs.iter().all(|s| s.gain.iter().all(|g| (0.8..=1.2).contains(g))));
    }
}
