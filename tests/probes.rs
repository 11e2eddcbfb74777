//! The literature probes against independent references (tests/probes/make_fixtures.py, numpy).

use cliplens::probes::gap::{Classes, modality_gap};
use serde_json::Value;

fn reference() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/probes/gap_reference.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
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
