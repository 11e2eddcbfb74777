//! Inversion ("What do we learn from inverting CLIP models?", arXiv
//! 2403.02580): optimize an image until the mean cosine similarity between
//! CLIP's embeddings of its augmented views and a target embedding is as high
//! as it gets, under priors. The same engine runs natively (`cliplens
//! invert`, the benchmark) and in the web worker; it reads from the device
//! only asynchronously, once per step.
//!
//! - `settings`: every switch with its default, the presets;
//! - `target`: prompts ("a panda + 0.5*a mad scientist - text"), images or
//!   raw vectors combined into one target direction;
//! - `canvas`: pixel and Fourier parameterizations, the resolution schedule, priors;
//! - `views`: augmentations as resampling matrices;
//! - `output`: the JSON report and the PNG with the settings in its metadata;
//! - `bench`: the judged benchmark on the embedded world models.

#[cfg(feature = "compute")]
pub mod bench;
#[cfg(feature = "compute")]
pub mod canvas;
pub mod output;
pub mod settings;
pub mod target;
#[cfg(feature = "compute")]
pub mod views;

#[cfg(feature = "compute")]
use burn::module::Module;
#[cfg(feature = "compute")]
use burn::tensor::{Device, Tensor, TensorData};

#[cfg(feature = "compute")]
use crate::clip::{Clip, dot, read_vec};
#[cfg(feature = "compute")]
use crate::error::Result;
#[cfg(feature = "compute")]
use crate::model::{ClipModel, l2_normalize};
use crate::preprocess::RgbImage;
#[cfg(feature = "compute")]
use crate::rng::Rng;
#[cfg(feature = "compute")]
use canvas::{ImageParams, prior_loss};
pub use settings::{Augmentations, InvertSettings, LrSchedule, Parameterization, Preset};
pub use target::{Target, TargetTerm, TermKind};
#[cfg(feature = "compute")]
use views::{ViewSpec, constant, render_views, resample_matrix};

#[cfg(feature = "compute")]
const BETA1: f64 = 0.9;
#[cfg(feature = "compute")]
const BETA2: f64 = 0.999;
#[cfg(feature = "compute")]
const ADAM_EPS: f64 = 1e-8;

/// Adam on the one tensor being optimized. Written out (a dozen lines)
/// because the gradient is summed over micro-batches by hand and the state
/// restarts whenever the resolution schedule changes the tensor's shape, as
/// the paper's code does.
#[cfg(feature = "compute")]
struct Adam {
    moments: Option<(Tensor<4>, Tensor<4>)>,
    t: i32,
}

#[cfg(feature = "compute")]
impl Adam {
    fn new() -> Self {
        Adam { moments: None, t: 0 }
    }

    fn step(&mut self, params: Tensor<4>, grad: Tensor<4>, lr: f64) -> Tensor<4> {
        self.t += 1;
        let (m, v) = match self.moments.take() {
            Some((m, v)) => (m * BETA1 + grad.clone() * (1.0 - BETA1), v * BETA2 + grad.powi_scalar(2) * (1.0 - BETA2)),
            None => (grad.clone() * (1.0 - BETA1), grad.powi_scalar(2) * (1.0 - BETA2)),
        };
        let m_hat = m.clone() / (1.0 - BETA1.powi(self.t));
        let v_hat = v.clone() / (1.0 - BETA2.powi(self.t));
        self.moments = Some((m, v));
        params - m_hat / (v_hat.sqrt() + ADAM_EPS) * lr
    }
}

#[cfg(feature = "compute")]
/// What one step did.
#[derive(Clone, Debug, PartialEq)]
pub struct StepReport {
    /// Steps done so far (1 after the first).
    pub step: usize,
    pub steps: usize,
    /// Mean cosine similarity of this step's augmented views to the target.
    pub similarity: f32,
    /// The image's resolution this step (pixels or frequencies per axis).
    pub resolution: usize,
}

#[cfg(feature = "compute")]
/// An inversion in progress: call [`Inverter::step`] until [`Inverter::done`].
pub struct Inverter {
    /// The model with autodiff on and its own gradients off: only the image learns.
    model: ClipModel,
    device: Device,
    /// `[dim, 1]`, unit length.
    target: Tensor<2>,
    target_vector: Vec<f32>,
    pub settings: InvertSettings,
    size: usize,
    mean: [f32; 3],
    std: [f32; 3],
    params: ImageParams,
    adam: Adam,
    rng: Rng,
    step: usize,
    curve: Vec<f32>,
    /// A cap on views per pass below `settings.micro_batch` (see [`Inverter::limit_views_per_pass`]).
    max_views_per_pass: Option<usize>,
}

#[cfg(feature = "compute")]
impl Inverter {
    pub fn new(clip: &Clip, target: &Target, settings: InvertSettings) -> Result<Self> {
        settings.check()?;
        let dim = clip.config().projection_dim;
        target.check_dim(dim)?;
        let size = clip.config().vision_config.image_size;
        let device = clip.device.clone();
        let mut rng = Rng::new(settings.seed ^ 0x1A7E_5EED);
        let params = ImageParams::new(&settings, size, settings.resolution_at(0, size), &mut rng, &device);
        let target_tensor = constant(target.vector.clone(), [dim, 1], &device);
        Ok(Inverter {
            model: clip.model.clone().train().no_grad(),
            device,
            target: target_tensor,
            target_vector: target.vector.clone(),
            size,
            mean: clip.preprocess.image_mean,
            std: clip.preprocess.image_std,
            params,
            adam: Adam::new(),
            rng,
            step: 0,
            curve: Vec::with_capacity(settings.steps),
            max_views_per_pass: None,
            settings,
        })
    }

    pub fn done(&self) -> bool {
        self.step >= self.settings.steps
    }

    pub fn steps_done(&self) -> usize {
        self.step
    }

    /// Per-step similarity of the augmented views so far.
    pub fn curve(&self) -> &[f32] {
        &self.curve
    }

    /// Whether the step just done should be shown (every `preview_every`, and the last).
    pub fn wants_preview(&self) -> bool {
        let every = self.settings.preview_every;
        self.step > 0 && (self.done() || (every > 0 && self.step % every == 0))
    }

    /// One optimizer step over `views` augmented views.
    pub async fn step(&mut self) -> Result<StepReport> {
        Ok(self.step_unless_stopped(async || true).await?.expect("never stopped"))
    }

    /// One step, asking `keep_going` between micro-batches (where the web
    /// worker lets its event loop see a Cancel: on a CPU a step of a ViT-B
    /// takes seconds). When it answers `false` the step is abandoned, the
    /// image stays as it was after the last whole step, and `None` comes back.
    pub async fn step_unless_stopped(&mut self, mut keep_going: impl AsyncFnMut() -> bool) -> Result<Option<StepReport>> {
        let s = &self.settings;
        let resolution = s.resolution_at(self.step, self.size);
        if resolution != self.params.resolution {
            self.params.grow(resolution);
            self.adam = Adam::new();
        }
        let source = self.params.side();
        let specs: Vec<ViewSpec> = if s.augment.is_none() {
            vec![ViewSpec::identity(source); s.views]
        } else {
            (0..s.views).map(|_| ViewSpec::sample(&mut self.rng, &s.augment, source)).collect()
        };
        let mut grad: Option<Tensor<4>> = None;
        let mut similarity_sums = Vec::new();
        let views_per_pass = s.micro_batch.min(self.max_views_per_pass.unwrap_or(usize::MAX)).max(1);
        for (i, chunk) in specs.chunks(views_per_pass).enumerate() {
            if i > 0 && !keep_going().await {
                return Ok(None);
            }
            let s = &self.settings;
            let leaf = self.params.leaf();
            let image = self.params.render(leaf.clone());
            let views = render_views(image.clone(), chunk, &s.augment, self.size, self.mean, self.std, &self.device);
            let (_, embeds) = self.model.encode_image(views);
            let cosines = l2_normalize(embeds).matmul(self.target.clone());
            similarity_sums.push(cosines.clone().sum().inner());
            let mut loss = cosines.sum().neg() / s.views as f64;
            // The priors belong to the image, once per step.
            if i == 0 {
                if let Some(prior) = prior_loss(image, s.tv_weight, s.l1_weight, s.l2_weight) {
                    loss = loss + prior;
                }
            }
            let grads = loss.backward();
            let g = leaf.grad(&grads).expect("the image leaf requires a gradient");
            grad = Some(match grad {
                Some(total) => total + g,
                None => g,
            });
        }
        if !keep_going().await {
            return Ok(None);
        }
        let s = &self.settings;
        let lr = s.lr(self.step);
        let grad = grad.expect("at least one view");
        self.params.values = self.adam.step(self.params.values.clone(), grad, lr);
        let similarity = read_vec(Tensor::cat(similarity_sums, 0).sum()).await?[0] / s.views as f32;
        self.step += 1;
        self.curve.push(similarity);
        Ok(Some(StepReport { step: self.step, steps: self.settings.steps, similarity, resolution }))
    }

    /// Runs at most `views` views per forward and backward pass, below the
    /// settings' micro-batch: more chances for [`Self::step_unless_stopped`]
    /// to stop. The gradient is the same sum (up to rounding order).
    pub fn limit_views_per_pass(&mut self, views: usize) {
        self.max_views_per_pass = Some(views.max(1));
    }

    /// The image now, at the model's input size (what the PNG holds).
    pub async fn image(&self) -> Result<RgbImage> {
        let image = self.params.render(self.params.values.clone());
        let side = self.params.side();
        let image = if side == self.size {
            image
        } else {
            let m = resample_matrix(side, self.size, 0.0, side as f32, false);
            let rows = Tensor::<2>::from_data(TensorData::new(m, [self.size, side]), &self.device);
            let cols_t = rows.clone().transpose();
            rows.unsqueeze::<4>().matmul(image).matmul(cols_t.unsqueeze::<4>())
        };
        let values = read_vec(image).await?;
        Ok(to_rgb(&values, self.size))
    }

    /// Cosine similarity of `image`'s plain embedding (no augmentation) to the
    /// target: what anyone embedding the saved PNG will measure.
    pub async fn clean_similarity(&self, clip: &Clip, image: &RgbImage) -> Result<f32> {
        let embed = clip.embed_images(std::slice::from_ref(image)).await?;
        Ok(dot(&embed[0], &self.target_vector))
    }
}

/// Planar `[3, size, size]` values 0..1 to interleaved 8-bit RGB.
#[cfg(feature = "compute")]
fn to_rgb(planar: &[f32], size: usize) -> RgbImage {
    let plane = size * size;
    let mut pixels = Vec::with_capacity(3 * plane);
    for p in 0..plane {
        for c in 0..3 {
            pixels.push((planar[c * plane + p].clamp(0.0, 1.0) * 255.0).round() as u8);
        }
    }
    RgbImage::new(size, size, pixels)
}

/// A finished (or stopped) inversion.
pub struct Inversion {
    pub image: RgbImage,
    /// Cosine of the final image's plain embedding to the target.
    pub similarity: f32,
    /// Per-step similarity of the augmented views.
    pub curve: Vec<f32>,
    pub steps_done: usize,
    /// Stopped before the last step.
    pub stopped: bool,
}

#[cfg(feature = "compute")]
/// Runs an inversion to the end. `on_step` sees each step's report and, when
/// the settings ask for one, a preview; returning `false` stops early (the
/// image so far is still returned).
pub async fn invert(
    clip: &Clip,
    target: &Target,
    settings: InvertSettings,
    mut on_step: impl FnMut(&StepReport, Option<&RgbImage>) -> bool,
) -> Result<Inversion> {
    let mut inverter = Inverter::new(clip, target, settings)?;
    let mut stopped = false;
    while !inverter.done() {
        let report = inverter.step().await?;
        let preview = if inverter.wants_preview() { Some(inverter.image().await?) } else { None };
        if !on_step(&report, preview.as_ref()) {
            stopped = !inverter.done();
            break;
        }
    }
    finish(clip, &inverter, stopped).await
}

#[cfg(feature = "compute")]
/// The result of an inverter at its current step.
pub async fn finish(clip: &Clip, inverter: &Inverter, stopped: bool) -> Result<Inversion> {
    let image = inverter.image().await?;
    let similarity = inverter.clean_similarity(clip, &image).await?;
    Ok(Inversion { image, similarity, curve: inverter.curve().to_vec(), steps_done: inverter.steps_done(), stopped })
}
