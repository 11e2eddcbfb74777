//! The burn CLIP against Hugging Face transformers on a random-weight tiny
//! checkpoint (tests/parity/make_fixtures.py): every output, both encoders,
//! f32/f16/bf16 weights, on the CPU (1e-4) and on wgpu (1e-3).

mod common;

use cliplens::model::logits_per_image;
use common::*;

fn check_against(weights: &str, reference_file: &str, backend: &str) {
    let reference = Reference::open(&fixtures().join("tiny").join(reference_file));
    {
        let (device, tol) = device(backend);
        let model = load_tiny(weights, &device);
        let what = |name: &str| format!("{weights} on {backend}: {name}");

        let text = model.text_model.forward(&reference.tokens(None), true).unwrap();
        for (i, state) in text.hidden_states.iter().enumerate() {
            let name = format!("text.hidden_states.{i}");
            assert_close(&what(&name), &values(state.clone()), reference.get(&name), tol);
        }
        assert_eq!(text.hidden_states.len(), model.config.text_config.num_hidden_layers + 1);
        assert_close(&what("text.last_hidden_state"), &values(text.last_hidden_state), reference.get("text.last_hidden_state"), tol);
        assert_close(&what("text.pooler_output"), &values(text.pooled.clone()), reference.get("text.pooler_output"), tol);
        let text_embeds = model.text_projection.forward(text.pooled);
        assert_close(&what("text.text_embeds"), &values(text_embeds.clone()), reference.get("text.text_embeds"), tol);

        let vision = model.vision_model.forward(reference.pixels(&device), true);
        for (i, state) in vision.hidden_states.iter().enumerate() {
            let name = format!("vision.hidden_states.{i}");
            assert_close(&what(&name), &values(state.clone()), reference.get(&name), tol);
        }
        assert_eq!(vision.hidden_states.len(), model.config.vision_config.num_hidden_layers + 1);
        assert_close(&what("vision.last_hidden_state"), &values(vision.last_hidden_state), reference.get("vision.last_hidden_state"), tol);
        assert_close(&what("vision.pooler_output"), &values(vision.pooled.clone()), reference.get("vision.pooler_output"), tol);
        let image_embeds = model.visual_projection.forward(vision.pooled);
        assert_close(&what("vision.image_embeds"), &values(image_embeds.clone()), reference.get("vision.image_embeds"), tol);

        assert_close(&what("logit_scale"), &values(model.logit_scale.val()), reference.get("logit_scale"), 1e-6);
        let logits = logits_per_image(image_embeds, text_embeds, model.logit_scale.val());
        // Logits are ~exp(logit_scale) times larger than the embeddings.
        let scale = reference.get("logit_scale_exp").1[0];
        assert_close(&what("logits_per_image"), &values(logits.clone()), reference.get("logits_per_image"), tol * scale);
        assert_close(&what("logits_per_text"), &values(logits.transpose()), reference.get("logits_per_text"), tol * scale);
    }
}

#[test]
fn f32_weights_match_transformers_on_cpu() {
    check_against("model.safetensors", "reference.safetensors", "cpu");
}

#[test]
#[cfg_attr(skip_wgpu, ignore = "CLIPLENS_SKIP_WGPU is set")]
fn f32_weights_match_transformers_on_wgpu() {
    check_against("model.safetensors", "reference.safetensors", "wgpu");
}

#[test]
fn f16_weights_match_transformers_on_cpu() {
    check_against("model-f16.safetensors", "reference-f16.safetensors", "cpu");
}

#[test]
#[cfg_attr(skip_wgpu, ignore = "CLIPLENS_SKIP_WGPU is set")]
fn f16_weights_match_transformers_on_wgpu() {
    check_against("model-f16.safetensors", "reference-f16.safetensors", "wgpu");
}

#[test]
fn bf16_weights_match_transformers_on_cpu() {
    check_against("model-bf16.safetensors", "reference-bf16.safetensors", "cpu");
}

#[test]
#[cfg_attr(skip_wgpu, ignore = "CLIPLENS_SKIP_WGPU is set")]
fn bf16_weights_match_transformers_on_wgpu() {
    check_against("model-bf16.safetensors", "reference-bf16.safetensors", "wgpu");
}

#[test]
fn the_reference_is_not_trivial() {
    // Guards the fixture itself: different inputs must give clearly different outputs.
    let reference = Reference::open(&fixtures().join("tiny/reference.safetensors"));
    let (shape, embeds) = reference.get("vision.image_embeds");
    let dim = shape[1];
    let mean_abs_diff =
        embeds[..dim].iter().zip(&embeds[dim..2 * dim]).map(|(a, b)| (a - b).abs()).sum::<f32>() / dim as f32;
    assert!(mean_abs_diff > 0.01, "image embeddings nearly identical: {mean_abs_diff}");
}
