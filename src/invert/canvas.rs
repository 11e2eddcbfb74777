//! The image being optimized: its parameters, how they become pixels, how
//! they grow with the resolution schedule, and the priors on the pixels.

use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor, TensorData};

use super::settings::{InvertSettings, Parameterization};
use super::views::{constant, resample_matrix};
use crate::rng::Rng;

/// Lucid's colour decorrelation (the square root of ImageNet's RGB
/// covariance, from its SVD); see lucent/optvis/param/color.py (Apache-2.0).
const COLOR_CORRELATION_SQRT: [[f32; 3]; 3] = [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]];

/// Standard deviation of the starting values before the sigmoid: a light
/// noise around mid-grey.
const INIT_STD: f64 = 0.3;

pub struct ImageParams {
    pub kind: Parameterization,
    /// Pixels: `[1, 3, r, r]` values before the sigmoid. Fourier: `[1, 3, k, k]`
    /// DCT coefficients (before frequency scaling). Plain tensors: each step
    /// makes a fresh autodiff leaf of them.
    pub values: Tensor<4>,
    /// Pixels or frequencies per axis now.
    pub resolution: usize,
    /// The model's input side: Fourier images are drawn at this size.
    pub size: usize,
    /// Fourier only: see [`InvertSettings::mean_color_rate`] and
    /// [`InvertSettings::equal_color_rates`].
    mean_color_rate: f32,
    equal_color_rates: bool,
    device: Device,
}

impl ImageParams {
    pub fn new(settings: &InvertSettings, size: usize, resolution: usize, rng: &mut Rng, device: &Device) -> Self {
        let kind = settings.parameterization;
        let n = 3 * resolution * resolution;
        let values: Vec<f32> = match kind {
            Parameterization::Pixels => (0..n).map(|_| (rng.normal() * INIT_STD) as f32).collect(),
            // Scaled by the frequency weights below, this gives pixels of
            // about INIT_STD around grey at full resolution.
            Parameterization::Fourier => (0..n).map(|_| (rng.normal() * INIT_STD) as f32).collect(),
        };
        let values = Tensor::from_data(TensorData::new(values, [1, 3, resolution, resolution]), device);
        ImageParams {
            kind,
            values,
            resolution,
            size,
            mean_color_rate: settings.mean_color_rate,
            equal_color_rates: settings.equal_color_rates,
            device: device.clone(),
        }
    }

    /// A fresh leaf for this step's graph.
    pub fn leaf(&self) -> Tensor<4> {
        self.values.clone().autodiff().require_grad()
    }

    /// Side of the image [`ImageParams::render`] gives.
    pub fn side(&self) -> usize {
        match self.kind {
            Parameterization::Pixels => self.resolution,
            Parameterization::Fourier => self.size,
        }
    }

    /// The image, `[1, 3, side, side]`, values 0..1, from `values` (a leaf or
    /// the plain parameters).
    pub fn render(&self, values: Tensor<4>) -> Tensor<4> {
        match self.kind {
            Parameterization::Pixels => sigmoid(values),
            Parameterization::Fourier => {
                let (k, s) = (self.resolution, self.size);
                let weights = constant(frequency_weights(k, s, self.mean_color_rate), [1, 1, k, k], &self.device);
                let basis = constant(inverse_dct(s, k), [s, k], &self.device);
                let basis_t = basis.clone().transpose();
                // [1, 3, s, s] in decorrelated colour space.
                let spatial = basis.unsqueeze::<4>().matmul(values * weights).matmul(basis_t.unsqueeze::<4>());
                let mixing = constant(color_mixing(self.equal_color_rates), [3, 3], &self.device);
                let rgb = mixing.matmul(spatial.reshape([3, s * s])).reshape([1, 3, s, s]);
                sigmoid(rgb)
            }
        }
    }

    /// Moves to a higher resolution, keeping the image: pixels are resampled,
    /// Fourier gains higher frequencies starting at zero.
    pub fn grow(&mut self, resolution: usize) {
        if resolution == self.resolution {
            return;
        }
        let old = self.resolution;
        let values = self.values.clone();
        self.values = match self.kind {
            Parameterization::Pixels => {
                let m = resample_matrix(old, resolution, 0.0, old as f32, false);
                let rows = Tensor::<2>::from_data(TensorData::new(m, [resolution, old]), &self.device);
                let cols_t = rows.clone().transpose();
                rows.unsqueeze::<4>().matmul(values).matmul(cols_t.unsqueeze::<4>())
            }
            Parameterization::Fourier => {
                values.pad([(0, resolution - old), (0, resolution - old)], burn::tensor::ops::PadMode::Constant(0.0))
            }
        };
        self.resolution = resolution;
    }
}

/// `[size, k]`: column `u` is the orthonormal DCT-II basis function of frequency `u`.
fn inverse_dct(size: usize, k: usize) -> Vec<f32> {
    let n = size as f64;
    let mut m = vec![0.0f32; size * k];
    for x in 0..size {
        for u in 0..k {
            let alpha = if u == 0 { (1.0 / n).sqrt() } else { (2.0 / n).sqrt() };
            m[x * k + u] = (alpha * (std::f64::consts::PI * (x as f64 + 0.5) * u as f64 / n).cos()) as f32;
        }
    }
    m
}

/// `[k, k]`: 1/frequency (in cycles per pixel, floored at one cycle per
/// image), normalized so that unit coefficients at every frequency of a full
/// `size` grid give pixels of unit variance; the constant term (the image's
/// mean colour) times `mean_color_rate`.
fn frequency_weights(k: usize, size: usize, mean_color_rate: f32) -> Vec<f32> {
    let n = size as f64;
    let weight = |u: usize, v: usize| {
        let f = ((u * u + v * v) as f64).sqrt() / (2.0 * n);
        1.0 / f.max(1.0 / n)
    };
    let mean_square: f64 = (0..size).flat_map(|u| (0..size).map(move |v| weight(u, v).powi(2))).sum::<f64>() / (n * n);
    let norm = mean_square.sqrt();
    let rate = |u: usize, v: usize| if u == 0 && v == 0 { mean_color_rate as f64 } else { 1.0 };
    (0..k).flat_map(|u| (0..k).map(move |v| (weight(u, v) / norm * rate(u, v)) as f32)).collect()
}

/// Decorrelated colour space to RGB, row-major `[3, 3]`. Lucid scales the
/// columns by the largest one's norm (brightness), so the two colour
/// directions move at 28% and 13% of its rate; `equal_rates` gives every
/// column a norm of 1.
fn color_mixing(equal_rates: bool) -> Vec<f32> {
    let m = COLOR_CORRELATION_SQRT;
    let norms: Vec<f32> = (0..3).map(|c| (0..3).map(|r| m[r][c] * m[r][c]).sum::<f32>().sqrt()).collect();
    let largest = norms.iter().copied().fold(0.0, f32::max);
    (0..9).map(|i| m[i / 3][i % 3] / if equal_rates { norms[i % 3] } else { largest }).collect()
}

/// The priors' weighted sum on an image `[1, 3, r, r]` (values 0..1):
/// total variation (mean absolute difference of neighbours) and L1/L2
/// distances from mid-grey, each a mean so weights do not depend on size.
pub fn prior_loss(image: Tensor<4>, tv: f32, l1: f32, l2: f32) -> Option<Tensor<1>> {
    let [_, _, h, w] = image.dims();
    let mut terms: Vec<Tensor<1>> = Vec::new();
    if tv > 0.0 && h > 1 && w > 1 {
        let dy = image.clone().narrow(2, 1, h - 1) - image.clone().narrow(2, 0, h - 1);
        let dx = image.clone().narrow(3, 1, w - 1) - image.clone().narrow(3, 0, w - 1);
        terms.push((dy.abs().mean() + dx.abs().mean()) * tv);
    }
    let centred = || image.clone() - 0.5;
    if l1 > 0.0 {
        terms.push(centred().abs().mean() * l1);
    }
    if l2 > 0.0 {
        terms.push(centred().powi_scalar(2).mean() * l2);
    }
    terms.into_iter().reduce(|a, b| a + b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dct_basis_is_orthonormal() {
        let (s, k) = (8, 8);
        let m = inverse_dct(s, k);
        for u in 0..k {
            for v in 0..k {
                let dot: f32 = (0..s).map(|x| m[x * k + u] * m[x * k + v]).sum();
                let want = if u == v { 1.0 } else { 0.0 };
                assert!((dot - want).abs() < 1e-5, "{u},{v}: {dot}");
            }
        }
    }

    #[test]
    fn frequency_weights_fall_with_frequency() {
        let w = frequency_weights(16, 16, 1.0);
        // Frequencies up to one cycle per image share the floor's weight.
        assert!(w[0] == w[1] && w[1] == w[2] && w[2] > w[3] && w[3] > w[15 * 16 + 15]);
        let mean_square: f32 = w.iter().map(|x| x * x).sum::<f32>() / w.len() as f32;
        assert!((mean_square - 1.0).abs() < 1e-4);
        let faster = frequency_weights(16, 16, 8.0);
        assert_eq!(faster[0], 8.0 * w[0]);
        assert_eq!(faster[1..], w[1..]);
    }

    #[test]
    fn colour_directions_move_at_lucid_or_equal_rates() {
        let column_norms = |m: &[f32]| -> Vec<f32> { (0..3).map(|c| (0..3).map(|r| m[r * 3 + c].powi(2)).sum::<f32>().sqrt()).collect() };
        let lucid = column_norms(&color_mixing(false));
        assert!((lucid[0] - 1.0).abs() < 1e-6 && lucid[1] < 0.3 && lucid[2] < 0.15, "{lucid:?}");
        for n in column_norms(&color_mixing(true)) {
            assert!((n - 1.0).abs() < 1e-6);
        }
    }
}
