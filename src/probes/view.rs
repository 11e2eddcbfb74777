//! A probe's result as a person reads it: a few sentences, one table, a
//! picture (SVG or PNG) and the files to save. Built here from each report so
//! the web page shows the same words and figures as the CLI prints, and the
//! page holds no probe math.

use serde::{Deserialize, Serialize};

use super::association::AssociationReport;
use super::attribution::{AttributionReport, WorldAttribution};
use super::fooling::FoolingReport;
use super::gap::{self, GapReport};
use super::social::SocialReport;
use crate::audit::stats::Estimate;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeView {
    /// Which probe, for ids and file names: `gap`, `attribution`, `association`, `social`, `fooling`.
    pub probe: String,
    pub summary: Vec<String>,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub svg: Option<String>,
    /// A picture the probe made (the fooling image), as PNG bytes.
    pub png: Option<Vec<u8>>,
    pub json: String,
    pub csv: String,
}

/// A rate with its 95% interval, in percent: "48.5% [41.5, 55.5]".
pub fn pct(e: &Estimate) -> String {
    format!("{:.1}% [{:.1}, {:.1}]", 100.0 * e.value, 100.0 * e.ci95[0], 100.0 * e.ci95[1])
}

/// The association probe's answer in one sentence: what the second object
/// adds to the rate, or why that is not measured (CLI and page both say it).
pub fn association_effect(report: &AssociationReport) -> String {
    if report.paired == 0 {
        "No question has both pictures, so the second object's effect is not measured.".into()
    } else {
        format!(
            "The second object adds {} to the rate over {} paired questions (sign-flip p = {:.4}).",
            pct(&report.rate_difference),
            report.paired,
            report.test.p_value
        )
    }
}

fn signed(e: &Estimate) -> String {
    format!("{:+.4} [{:+.4}, {:+.4}]", e.value, e.ci95[0], e.ci95[1])
}

fn json(value: serde_json::Value) -> String {
    serde_json::to_string_pretty(&value).unwrap_or_default()
}

impl ProbeView {
    pub fn gap(model: &str, source: &str, report: &GapReport) -> ProbeView {
        ProbeView {
            probe: "gap".into(),
            summary: vec![
                format!(
                    "On {source}, {model}'s image and caption centroids are {:.4} apart (cosine {:.4}); the gap lies {:.0}% along the first principal component.",
                    report.centroid_distance,
                    report.centroid_cosine,
                    100.0 * report.gap_on_first_component
                ),
                "λ = 1 moves images and captions half the gap each towards the other (the centroids meet); negative λ widens it.".into(),
            ],
            headers: ["λ", "centroid distance", "pair cosine", "retrieval top-1", "zero-shot"].map(String::from).to_vec(),
            rows: report
                .shifts
                .iter()
                .map(|s| {
                    vec![
                        format!("{:.2}", s.lambda),
                        format!("{:.4}", s.centroid_distance),
                        format!("{:.4}", s.mean_pair_cosine),
                        format!("{:.1}%", 100.0 * s.retrieval_accuracy),
                        s.zero_shot_accuracy.map_or("—".into(), |a| format!("{:.1}%", 100.0 * a)),
                    ]
                })
                .collect(),
            svg: Some(gap::scatter_svg(report)),
            png: None,
            json: json(serde_json::json!({ "probe": "modality gap", "model": model, "source": source, "report": report })),
            csv: gap::shifts_csv(report),
        }
    }

    pub fn attribution(model: &str, source: &str, report: &AttributionReport, svg: String) -> ProbeView {
        let what = match &report.contrast {
            Some(c) => format!("cosine with “{}” minus cosine with “{c}”", report.prompt),
            None => format!("cosine with “{}”", report.prompt),
        };
        ProbeView {
            probe: "attribution".into(),
            summary: vec![
                format!("{model} on {source}: the score ({what}) is {:.4}; the {} baseline scores {:.4}.", report.score, report.settings.baseline.name(), report.baseline_score),
                format!(
                    "Integrated gradients: {} points on the path; they sum to {:.4} against a change of {:.4} ({:.2}% off).",
                    report.ig_steps,
                    report.ig_sum,
                    report.score - report.baseline_score,
                    100.0 * report.completeness_error
                ),
                format!("Occlusion: {}-px squares every {} px. Red raises the score, blue lowers it.", report.occlusion_patch, report.occlusion_stride),
            ],
            headers: ["word left out", "prompt without it", "score without it", "score lost"].map(String::from).to_vec(),
            rows: report
                .words
                .iter()
                .map(|w| vec![w.word.clone(), w.prompt.clone(), format!("{:.4}", w.score_without), format!("{:+.4}", w.drop)])
                .collect(),
            svg: Some(svg),
            png: None,
            json: json(serde_json::json!({ "probe": "attribution", "model": model, "source": source, "report": report })),
            csv: report.csv(),
        }
    }

    pub fn world_attribution(model: &str, check: &WorldAttribution) -> ProbeView {
        let row = |what: &str, m: &super::attribution::PerMethod| {
            vec![
                what.to_string(),
                format!("{:.1}%", 100.0 * m.gradient_x_input),
                format!("{:.1}%", 100.0 * m.integrated_gradients),
                format!("{:.1}%", 100.0 * m.occlusion),
            ]
        };
        let mut csv = String::from("role_prompt,background_prompt,cell_area,role_inside_gxi,role_inside_ig,role_inside_occlusion,background_outside_gxi,background_outside_ig,background_outside_occlusion,completeness_error\n");
        for s in &check.scenes {
            csv.push_str(&format!(
                "\"{}\",\"{}\",{},{},{},{},{},{},{},{}\n",
                s.role_prompt,
                s.background_prompt,
                s.cell_area,
                s.role_inside.gradient_x_input,
                s.role_inside.integrated_gradients,
                s.role_inside.occlusion,
                s.background_outside.gradient_x_input,
                s.background_outside.integrated_gradients,
                s.background_outside.occlusion,
                s.completeness_error
            ));
        }
        ProbeView {
            probe: "attribution".into(),
            summary: vec![
                format!(
                    "{model} on {} fresh world scenes (seed {}) whose hat is drawn: the figures' cells cover {:.1}% of a picture.",
                    check.scenes.len(),
                    check.seed,
                    100.0 * check.mean_cell_area
                ),
                format!("Integrated gradients were complete within {:.2}% on every map.", 100.0 * check.max_completeness_error),
            ],
            headers: ["share of positive attribution", "gradient × input", "integrated gradients", "occlusion"].map(String::from).to_vec(),
            rows: vec![
                row("role prompt, inside the figures' cells", &check.mean_role_inside),
                row("background prompt, outside them", &check.mean_background_outside),
            ],
            svg: None,
            png: None,
            json: json(serde_json::json!({ "probe": "attribution", "model": model, "world": check })),
            csv,
        }
    }

    pub fn association(model: &str, source: &str, report: &AssociationReport) -> ProbeView {
        ProbeView {
            probe: "association".into(),
            summary: vec![
                format!("{model} on {source}: how often the other object's attribute wins (95% bootstrap intervals)."),
                association_effect(report),
            ],
            headers: ["pictures", "questions", "other attribute wins", "rate", "mean margin (other − own)"].map(String::from).to_vec(),
            rows: [("both objects", &report.two_object), ("the object alone", &report.single_object)]
                .iter()
                .map(|(name, r)| vec![name.to_string(), r.questions.to_string(), r.other_wins.to_string(), pct(&r.rate), signed(&r.mean_margin)])
                .collect(),
            svg: None,
            png: None,
            json: json(serde_json::json!({ "probe": "concept association", "model": model, "source": source, "report": report })),
            csv: super::association::csv(report),
        }
    }

    pub fn social(model: &str, source: &str, report: &SocialReport) -> ProbeView {
        ProbeView {
            probe: "social".into(),
            summary: vec![format!(
                "{model} on {source}: the mean shift of each word set's cosine when the attribute changes (changed − original, 95% bootstrap interval, sign-flip p)."
            )],
            headers: ["change", "words", "pairs", "shift", "p"].map(String::from).to_vec(),
            rows: report
                .shifts
                .iter()
                .map(|s| {
                    vec![
                        format!("{} {} → {}", s.attribute, s.from, s.to),
                        s.word_set.clone(),
                        s.pairs.to_string(),
                        signed(&s.shift),
                        format!("{:.4}", s.test.p_value),
                    ]
                })
                .collect(),
            svg: None,
            png: None,
            json: json(serde_json::json!({ "probe": "social perception", "model": model, "source": source, "report": report })),
            csv: super::social::csv(report),
        }
    }

    pub fn fooling(model: &str, source: &str, settings: &crate::invert::InvertSettings, report: &FoolingReport, png: Vec<u8>) -> ProbeView {
        ProbeView {
            probe: "fooling".into(),
            summary: vec![
                format!(
                    "{model}: the fooling image beats the best of {} on {} of {} prompts (smallest margin {:+.4}).",
                    source,
                    report.prompts_won,
                    report.prompts.len(),
                    report.min_margin
                ),
                format!(
                    "Shifted across the modality gap ({}), it wins {} (mean margin {:+.4} → {:+.4}{}).",
                    report.gap_source,
                    report.shifted_prompts_won,
                    report.mean_margin,
                    report.shifted_mean_margin,
                    report.advantage_remaining.map_or(": it had no advantage to keep".into(), |r| format!(": {:.0}% of the advantage remains", 100.0 * r))
                ),
            ],
            headers: ["prompt", "fooling image", "best real", "margin", "after the shift: margin"].map(String::from).to_vec(),
            rows: report
                .prompts
                .iter()
                .map(|p| vec![p.prompt.clone(), format!("{:.4}", p.fooling), format!("{:.4}", p.best_real), format!("{:+.4}", p.margin), format!("{:+.4}", p.shifted_margin)])
                .collect(),
            svg: None,
            png: Some(png),
            json: json(serde_json::json!({ "probe": "fooling image", "model": model, "source": source, "aim": super::fooling::Aim::Min, "settings": settings, "report": report })),
            csv: super::fooling::csv(report),
        }
    }
}
