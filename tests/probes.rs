//! The literature probes against independent references (tests/probes/make_fixtures.py, numpy).

use cliplens::audit::stats::Estimate;
use cliplens::probes::gap::{Classes, modality_gap};
use serde_json::Value;

fn reference() -> Value {
    fixture("gap")
}

fn fixture(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/probes/{name}_reference.json"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn vector(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn estimate(ours: &Estimate, theirs: &Value, tol: f64, what: &str) {
    close(ours.value, theirs["value"].as_f64().unwrap(), tol, what);
    for k in 0..2 {
        close(ours.ci95[k], theirs["ci95"][k].as_f64().unwrap(), tol, &format!("{what}: interval end {k}"));
    }
}

fn rows(v: &Value) -> Vec<Vec<f32>> {
    v.as_array().unwrap().iter().map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()).collect()
}

fn close(a: f64, b: f64, tol: f64, what: &str) {
    assert!((a - b).abs() <= tol, "{what}: {a} against numpy's {b}");
}

#[test]
fn modality_gap_equals_numpy() {
    let r = reference();
    let images = rows(&r["images"]);
    let captions = rows(&r["captions"]);
    let embeddings = rows(&r["classes"]);
    let labels: Vec<Option<usize>> = r["labels"].as_array().unwrap().iter().map(|l| l.as_u64().map(|l| l as usize)).collect();
    let classes = Classes { names: (0..embeddings.len()).map(|k| format!("class {k}")).collect(), embeddings, labels };
    let lambdas: Vec<f64> = r["lambdas"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    let report = modality_gap(&images, &captions, Some(&classes), &lambdas).unwrap();

    close(report.centroid_distance, r["centroid_distance"].as_f64().unwrap(), 1e-9, "centroid distance");
    close(report.centroid_cosine, r["centroid_cosine"].as_f64().unwrap(), 1e-9, "centroid cosine");
    close(report.gap_on_first_component, r["gap_on_first_component"].as_f64().unwrap(), 1e-6, "gap along PC1");
    for k in 0..2 {
        close(report.projection.explained[k], r["explained"][k].as_f64().unwrap(), 1e-8, &format!("explained variance of PC{}", k + 1));
    }
    for (ours, theirs, what) in [
        (&report.projection.images, &r["projected_images"], "image"),
        (&report.projection.captions, &r["projected_captions"], "caption"),
    ] {
        for (i, (p, q)) in ours.iter().zip(theirs.as_array().unwrap()).enumerate() {
            for k in 0..2 {
                close(p[k], q[k].as_f64().unwrap(), 1e-6, &format!("{what} {i} on PC{}", k + 1));
            }
        }
    }
    assert_eq!(report.shifts.len(), lambdas.len());
    for (ours, theirs) in report.shifts.iter().zip(r["shifts"].as_array().unwrap()) {
        let what = format!("lambda {}", ours.lambda);
        close(ours.centroid_distance, theirs["centroid_distance"].as_f64().unwrap(), 1e-9, &format!("{what}: centroid distance"));
        close(ours.mean_pair_cosine, theirs["mean_pair_cosine"].as_f64().unwrap(), 1e-9, &format!("{what}: pair cosine"));
        close(ours.retrieval_accuracy, theirs["retrieval_accuracy"].as_f64().unwrap(), 1e-12, &format!("{what}: retrieval"));
        close(ours.zero_shot_accuracy.unwrap(), theirs["zero_shot_accuracy"].as_f64().unwrap(), 1e-12, &format!("{what}: zero-shot"));
    }
    // Closing the gap planted in the fixture helps retrieval, as in the paper's figure.
    assert!(report.shifts.last().unwrap().retrieval_accuracy > report.shifts[2].retrieval_accuracy);
}

#[test]
fn concept_association_equals_numpy() {
    use cliplens::probes::association::{Question, QuestionEmbeddings, analyse};
    let r = fixture("association");
    let items: Vec<QuestionEmbeddings> = r["questions"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, q)| QuestionEmbeddings {
            question: Question {
                id: i.to_string(),
                object: "o".into(),
                attribute: "x".into(),
                other: "y".into(),
                true_prompt: "x o".into(),
                other_prompt: "y o".into(),
            },
            two: Some(vector(&q["two"])),
            single: (!q["single"].is_null()).then(|| vector(&q["single"])),
            true_text: vector(&q["true_text"]),
            other_text: vector(&q["other_text"]),
        })
        .collect();
    let report = analyse(&items, r["seed"].as_u64().unwrap()).unwrap();
    for (ours, theirs) in report.questions.iter().zip(r["two_margins"].as_array().unwrap()) {
        close(ours.two_margin.unwrap(), theirs.as_f64().unwrap(), 1e-6, "two-object margin");
    }
    for (ours, theirs) in report.questions.iter().zip(r["single_margins"].as_array().unwrap()) {
        assert_eq!(ours.single_margin.is_some(), !theirs.is_null());
        if let Some(m) = ours.single_margin {
            close(m, theirs.as_f64().unwrap(), 1e-6, "single-object margin");
        }
    }
    estimate(&report.two_object.rate, &r["two_rate"], 1e-12, "two-object rate");
    estimate(&report.two_object.mean_margin, &r["two_mean_margin"], 1e-6, "two-object mean margin");
    estimate(&report.single_object.rate, &r["single_rate"], 1e-12, "single-object rate");
    estimate(&report.rate_difference, &r["rate_difference"], 1e-12, "rate difference");
    assert_eq!(report.paired, 10);
    close(report.test.p_value, r["test"]["p_value"].as_f64().unwrap(), 1e-12, "sign-flip p");
    assert_eq!(report.test.permutations, r["test"]["permutations"].as_u64().unwrap());
}

#[test]
fn social_perception_equals_numpy() {
    use cliplens::probes::social::{CounterfactualPair, WordSet, analyse};
    let r = fixture("social");
    let word_sets: Vec<WordSet> = r["words"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(s, ws)| WordSet {
            name: format!("set {s}"),
            prompts: vec![String::new(); 3],
            embeddings: ws.as_array().unwrap().iter().map(vector).collect(),
        })
        .collect();
    let pairs: Vec<CounterfactualPair> = r["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, p)| CounterfactualPair {
            id: i.to_string(),
            attribute: "a".into(),
            from: "0".into(),
            to: "1".into(),
            from_embedding: vector(&p["from"]),
            to_embedding: vector(&p["to"]),
            context: vec![("size".into(), p["context"].as_str().unwrap().into())],
        })
        .collect();
    let report = analyse(&pairs, &word_sets, r["seed"].as_u64().unwrap()).unwrap();
    assert_eq!(report.shifts.len(), 2);
    for (ours, theirs) in report.shifts.iter().zip(r["shifts"].as_array().unwrap()) {
        estimate(&ours.shift, &theirs["shift"], 1e-6, &format!("{} shift", ours.word_set));
        close(ours.test.p_value, theirs["test"]["p_value"].as_f64().unwrap(), 1e-12, "sign-flip p");
        for (c, t) in ours.by_context.iter().zip(theirs["by_context"].as_array().unwrap()) {
            assert_eq!(c.value, t["value"].as_str().unwrap());
            estimate(&c.shift, &t["shift"], 1e-6, &format!("{} shift among {}", ours.word_set, c.value));
        }
    }
    // The planted change moves set 0 (it adds one of its words) and not set 1 as much.
    assert!(report.shifts[0].shift.value > report.shifts[1].shift.value.abs());
}

#[test]
fn fooling_comparison_equals_numpy() {
    use cliplens::probes::fooling::{Aim, compare};
    let r = fixture("fooling");
    let texts: Vec<Vec<f32>> = r["texts"].as_array().unwrap().iter().map(vector).collect();
    let direction = Aim::Min.direction(&texts).unwrap();
    for (ours, theirs) in direction.iter().zip(vector(&r["min_direction"])) {
        close(*ours as f64, theirs as f64, 2e-5, "max-min direction");
    }
    let smallest = texts.iter().map(|t| t.iter().zip(&direction).map(|(a, b)| (a * b) as f64).sum::<f64>()).fold(f64::INFINITY, f64::min);
    close(smallest, r["min_cosine"].as_f64().unwrap(), 1e-5, "smallest cosine along the direction");

    let real: Vec<Vec<f32>> = r["real"].as_array().unwrap().iter().map(vector).collect();
    let gap: Vec<f64> = vector(&r["gap"]).iter().map(|&g| g as f64).collect();
    let prompts: Vec<String> = (0..texts.len()).map(|k| format!("prompt {k}")).collect();
    let report = compare(&prompts, &texts, &vector(&r["fooling"]), &real, &gap, "fixture").unwrap();
    for (k, p) in report.prompts.iter().enumerate() {
        close(p.fooling, r["fooling_scores"][k].as_f64().unwrap(), 1e-6, "fooling cosine");
        close(p.best_real, r["best_real"][k].as_f64().unwrap(), 1e-6, "best real cosine");
        assert_eq!(p.best_real_index as u64, r["best_real_index"][k].as_u64().unwrap());
        close(p.shifted_fooling, r["shifted_fooling"][k].as_f64().unwrap(), 1e-6, "shifted fooling cosine");
        close(p.shifted_best_real, r["shifted_best_real"][k].as_f64().unwrap(), 1e-6, "shifted best real cosine");
    }
    close(report.advantage_remaining.unwrap_or(f64::NAN), r["advantage_remaining"].as_f64().unwrap(), 1e-5, "advantage remaining");
}

// ---------------------------------------------------------------------------
// The probes on the embedded world model, where the truth is known.

mod world {
    use std::path::Path;

    use cliplens::clip::Clip;
    use cliplens::invert::Preset;
    use cliplens::native::read_model;
    use cliplens::probes::attribution::{self, AttributionSettings, Baseline};
    use cliplens::probes::{association, fooling, social};
    use cliplens::world::readback::read_back;
    use cliplens::world::render::{CELL_SIDE, TwoFigures, render_with_cells};
    use cliplens::world::{ROLES, scenes};

    fn world_clip() -> Clip {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/world-clip");
        Clip::load(&read_model(&dir).unwrap(), &burn::tensor::Device::flex()).unwrap()
    }

    #[test]
    fn attribution_for_a_role_falls_on_the_figures_and_integrated_gradients_are_complete() {
        let clip = world_clip();
        let role = AttributionSettings { baseline: Baseline::Blur, ..AttributionSettings::default() };
        let background = AttributionSettings { baseline: Baseline::Mean, ..AttributionSettings::default() };
        // Fresh scenes: seed 9001 is used by no model's training or evaluation.
        let check = pollster::block_on(attribution::world_check(&clip, 9001, 16, None, &role, &background, async |_, _| true)).unwrap().unwrap();
        assert_eq!(check.scenes.len(), 16);
        assert!(check.mean_cell_area < 0.2, "cells cover {:.3} of a picture", check.mean_cell_area);
        let inside = check.mean_role_inside.integrated_gradients;
        assert!(inside >= 0.70, "role prompts: {:.3} of integrated gradients inside the figures' cells", inside);
        assert!(check.mean_role_inside.gradient_x_input > 2.0 * check.mean_cell_area);
        assert!(check.mean_background_outside.integrated_gradients > 0.6, "{:?}", check.mean_background_outside);
        assert!(check.max_completeness_error <= 0.01, "completeness off by {:.4}", check.max_completeness_error);
    }

    #[test]
    fn attribution_maps_equal_torch_autograd_through_transformers() {
        let r = super::fixture("attribution");
        let weights = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/world-clip/model.safetensors");
        let clip = Clip::load(&read_model(&weights).unwrap(), &burn::tensor::Device::flex()).unwrap();
        let side = r["side"].as_u64().unwrap() as usize;
        let pixels: Vec<u8> = r["pixels"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u8).collect();
        let image = cliplens::preprocess::RgbImage::new(side, side, pixels);
        let steps = r["steps"].as_u64().unwrap() as usize;
        let settings = AttributionSettings {
            baseline: Baseline::Mean,
            steps,
            max_steps: steps,
            // No refinement: the reference took exactly `steps` points.
            tolerance: 1.0,
            patch: Some(r["patch"].as_u64().unwrap() as usize),
            stride: Some(r["stride"].as_u64().unwrap() as usize),
            ..AttributionSettings::default()
        };
        let report = pollster::block_on(attribution::attribute(&clip, &image, r["prompt"].as_str().unwrap(), None, &settings, async |_, _| true)).unwrap().unwrap();
        super::close(report.score, r["score"].as_f64().unwrap(), 1e-5, "score");
        super::close(report.baseline_score, r["baseline_score"].as_f64().unwrap(), 1e-5, "baseline score");
        super::close(report.ig_sum, r["ig_sum"].as_f64().unwrap(), 1e-4, "sum of integrated gradients");
        assert!(report.completeness_error < 0.01, "128 points are enough here: {}", report.completeness_error);
        for (name, ours) in [
            ("gradient_x_input", &report.gradient_x_input),
            ("integrated_gradients", &report.integrated_gradients),
            ("occlusion", &report.occlusion),
        ] {
            let theirs: Vec<f64> = r[name].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            let scale = theirs.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let worst = ours.values.iter().zip(&theirs).map(|(a, b)| (*a as f64 - b).abs()).fold(0.0, f64::max);
            eprintln!("{name}: largest difference {worst:.3e} on a scale of {scale:.3e}");
            assert!(worst <= 1e-4 * scale, "{name}: differs by {worst} on a scale of {scale}");
        }
        for (ours, theirs) in report.words.iter().zip(r["words"].as_array().unwrap()) {
            assert_eq!(ours.word, theirs["word"].as_str().unwrap());
            super::close(ours.drop, theirs["drop"].as_f64().unwrap(), 1e-5, &format!("drop without {:?}", ours.word));
        }
    }

    #[test]
    fn integrated_gradients_sum_to_the_score_difference_for_a_contrast() {
        let clip = world_clip();
        let scene = scenes(4242, 1).remove(0);
        let (image, _) = render_with_cells(&scene);
        let settings = AttributionSettings { baseline: Baseline::Black, steps: 16, patch: Some(16), stride: Some(16), ..AttributionSettings::default() };
        let mut passes = 0;
        let report = pollster::block_on(attribution::attribute(&clip, &image, "a photo of a pilot", Some("a photo of a chef"), &settings, async |_, _| {
            passes += 1;
            true
        }))
        .unwrap()
        .unwrap();
        let difference = report.score - report.baseline_score;
        assert!(difference.abs() > 1e-3, "a contrast the image moves: {difference}");
        assert!((report.ig_sum - difference).abs() <= 0.01 * difference.abs(), "{} against {difference}", report.ig_sum);
        assert_eq!(report.completeness_error, (report.ig_sum - difference).abs() / difference.abs());
        assert!(report.ig_steps >= 16 && report.ig_steps <= settings.max_steps);
        // 16-px squares every 16 px: 16 windows, each pixel covered once.
        assert_eq!((report.occlusion_patch, report.occlusion_stride), (16, 16));
        assert_eq!(report.integrated_gradients.values.len(), 64 * 64);
        assert_eq!(report.words.iter().map(|w| w.word.as_str()).collect::<Vec<_>>(), ["a", "photo", "of", "a", "pilot"]);
        assert!(passes >= 3, "progress reported per pass ({passes})");
        // Stopping on the first pass stops the probe.
        let stopped = pollster::block_on(attribution::attribute(&clip, &image, "a photo of a pilot", None, &settings, async |_, _| false)).unwrap();
        assert!(stopped.is_none());
        // An empty prompt is refused with a message, not a panic.
        let err = pollster::block_on(attribution::attribute(&clip, &image, "  ", None, &settings, async |_, _| true)).unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
        // The SVG holds the four panels and a bar per word.
        let svg = attribution::report_svg(&report, &image).unwrap();
        assert_eq!(svg.matches("<image ").count(), 4);
        assert!(svg.contains("pilot") && svg.contains("integrated gradients"));
    }

    #[test]
    fn two_figure_scenes_show_two_distinct_figures_and_the_control_only_the_first() {
        for (two, single) in TwoFigures::sample(31, 60, false).iter().zip(TwoFigures::sample(31, 60, true)) {
            assert_ne!(two.shapes[0], two.shapes[1]);
            assert_ne!(two.colors[0], two.colors[1]);
            assert_eq!((two.shapes, two.colors), (single.shapes, single.colors));
            let ((a, cells), (b, single_cells)) = (two.render(), single.render());
            assert_eq!(cells.len(), 2);
            assert_ne!(cells[0], cells[1]);
            assert_eq!(single_cells, cells[..1]);
            // The pictures differ only inside the second figure's cell.
            let (cx, cy) = cells[1];
            let mut drawn = 0;
            for (p, (x, y)) in a.pixels.chunks(3).zip(b.pixels.chunks(3)).zip((0..64 * 64).map(|i| (i % 64, i / 64))) {
                let in_second = x / CELL_SIDE == cx && y / CELL_SIDE == cy;
                if in_second {
                    drawn += (p.0 != p.1) as usize;
                } else {
                    assert_eq!(p.0, p.1, "pixel ({x}, {y}) outside the second figure's cell differs");
                }
            }
            assert!(drawn >= 15, "the second figure covers {drawn} pixels");
            // Read back without the renderer: the control shows one figure, of the first colour.
            let alone = read_back(&b);
            assert_eq!((alone.count, alone.color), (1, two.colors[0]), "{two:?}");
        }
    }

    #[test]
    fn concept_association_appears_with_a_second_figure_and_not_without() {
        let clip = world_clip();
        let items = pollster::block_on(association::world_questions(&clip, 57, 80, association::TEMPLATE)).unwrap();
        let report = association::analyse(&items, 57).unwrap();
        let (two, single) = (&report.two_object.rate, &report.single_object.rate);
        assert_eq!(report.paired, 80);
        assert!(two.ci95[0] > single.ci95[1], "two objects {two:?} against one {single:?}");
        assert!(report.rate_difference.ci95[0] > 0.0 && report.test.p_value < 0.01, "{report:?}");
    }

    /// CARD.md's "counterfactual preference for glim (world-clip)" per role.
    fn card_preferences() -> Vec<(String, f64)> {
        let card = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("models/world-clip/CARD.md")).unwrap();
        let header = card.lines().position(|l| l.contains("counterfactual preference for glim (world-clip)")).expect("the table");
        let column = card.lines().nth(header).unwrap().split('|').position(|c| c.contains("counterfactual preference for glim (world-clip)")).unwrap();
        card.lines()
            .skip(header + 2)
            .take_while(|l| l.starts_with('|'))
            .map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                (cells[1].to_string(), cells[column].trim_end_matches('%').parse::<f64>().unwrap() / 100.0)
            })
            .collect()
    }

    #[test]
    fn group_counterfactuals_move_each_skewed_role_the_way_the_card_says() {
        let clip = world_clip();
        let pairs = pollster::block_on(social::world_pairs(&clip, 58, 120)).unwrap();
        let sets = pollster::block_on(social::embed_word_sets(&clip, &social::world_word_sets())).unwrap();
        let report = social::analyse(&pairs, &sets, 58).unwrap();
        let preferences = card_preferences();
        assert_eq!(preferences.len(), ROLES.len());
        let mut checked = 0;
        for role in ROLES.iter().filter(|r| !r.kind.contains("control")) {
            let preference = preferences.iter().find(|(w, _)| w == role.word).unwrap().1;
            let shift = report.shifts.iter().find(|s| s.word_set == role.word).unwrap();
            // Preferring glim means the glim → vorn change lowers the role's score.
            let expected = if preference > 0.5 { -1.0 } else { 1.0 };
            assert!(
                expected * shift.shift.ci95[0] > 0.0 && expected * shift.shift.ci95[1] > 0.0,
                "{}: card preference {preference}, shift {:?}",
                role.word,
                shift.shift
            );
            assert_eq!(shift.by_context.len(), 2 + 4, "sizes and backgrounds as intersections");
            checked += 1;
        }
        assert_eq!(checked, 6);
    }

    #[test]
    fn a_fooling_image_beats_the_best_real_scene_on_every_prompt() {
        let clip = world_clip();
        let prompts: Vec<String> = fooling::WORLD_PROMPTS.iter().map(|p| p.to_string()).collect();
        let mut settings = Preset::Baseline.settings_for(64);
        settings.steps = 300;
        let fooling::Fooled { inversion, direction, texts } = pollster::block_on(fooling::fooling_image(&clip, &prompts, fooling::Aim::Min, settings, async |_| true)).unwrap();
        assert_eq!(direction.len(), 48);
        assert!(!inversion.stopped);
        let (real, gap) = pollster::block_on(fooling::world_reference(&clip, 59, 300)).unwrap();
        let embed = pollster::block_on(clip.embed_images(std::slice::from_ref(&inversion.image))).unwrap().remove(0);
        let report = fooling::compare(&prompts, &texts, &embed, &real, &gap, "world").unwrap();
        assert!(prompts.len() >= 8);
        assert_eq!(report.prompts_won, prompts.len(), "{report:#?}");
        assert!(report.min_margin > 0.0 && report.advantage_remaining.is_some_and(f64::is_finite));
        assert!(report.gap_norm > 0.0);
    }
}
