//! One training step against PyTorch: the contrastive loss and the gradient
//! of every parameter of the tiny random checkpoint, compared with
//! transformers' `CLIPModel(return_loss=True)` and `backward()`
//! (tests/parity/make_fixtures.py gradients). Forward parity alone would not
//! catch a wrong backward pass, which would still train, only badly.

mod common;

use std::collections::HashMap;

use burn::module::Module;
use burn::optim::{GradientsParams, SgdConfig};
use cliplens::model::ClipModel;
use cliplens::train::{contrastive_loss, export_checkpoint};
use common::*;

/// Every tensor of an exported checkpoint, by Hugging Face name.
fn tensors(model: &ClipModel) -> HashMap<String, (Vec<usize>, Vec<f32>)> {
    let bytes = pollster::block_on(export_checkpoint(model, HashMap::new())).unwrap();
    Reference::from_bytes(&bytes).tensors
}

#[test]
fn loss_and_gradients_match_pytorch_on_cpu() {
    loss_and_gradients_match_pytorch("cpu");
}

#[test]
#[cfg_attr(skip_wgpu, ignore = "CLIPLENS_SKIP_WGPU is set")]
fn loss_and_gradients_match_pytorch_on_wgpu() {
    loss_and_gradients_match_pytorch("wgpu");
}

fn loss_and_gradients_match_pytorch(backend: &str) {
    let dir = fixtures().join("tiny");
    let inputs = Reference::open(&dir.join("reference.safetensors"));
    let expected = Reference::open(&dir.join("gradients.safetensors"));
    // transformers' loss needs as many texts as images.
    let n = inputs.get("vision.pixel_values").0[0];
    let tokens = inputs.tokens(Some(n));

    {
        let (device, tol) = device(backend);
        let autodiff = device.clone().autodiff();
        let model = load_tiny("model.safetensors", &autodiff);
        let pixels = inputs.pixels(&autodiff);
        let loss = contrastive_loss(&model, pixels, &tokens).unwrap();
        let loss_value = values(loss.clone());
        assert_close(&format!("{backend}: loss"), &loss_value, expected.get("loss"), tol);

        // Plain SGD with a learning rate of 1 moves each weight by exactly
        // minus its gradient: the difference of the two exports is the
        // gradient, under the Hugging Face names.
        let before = tensors(&model.valid());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let mut sgd = SgdConfig::new().init();
        let stepped = sgd.step(1.0, model, grads);
        let after = tensors(&stepped.valid());

        let mut checked = 0;
        for (name, (shape, grad)) in &expected.tensors {
            let Some(param) = name.strip_prefix("grad.") else { continue };
            let (b_shape, b) = &before[param];
            let (_, a) = &after[param];
            assert_eq!(b_shape, shape, "{param}");
            let ours: Vec<f32> = b.iter().zip(a).map(|(b, a)| b - a).collect();
            // Relative to the tensor's largest gradient: the subtraction
            // costs a few ulps of the weight itself.
            let scale = grad.iter().fold(0f32, |m, g| m.max(g.abs())).max(1e-3);
            let worst = ours.iter().zip(grad).map(|(o, g)| (o - g).abs()).fold(0f32, f32::max);
            assert!(worst <= 20.0 * tol * scale, "{backend}: gradient of {param} is off by {worst} (largest {scale})");
            checked += 1;
        }
        assert_eq!(checked, before.len(), "{backend}: every parameter has a reference gradient");
    }
}
