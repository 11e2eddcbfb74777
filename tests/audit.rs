//! The bias audit: every statistic against an independent reference on
//! committed fixtures (`tests/fixtures/audit`, made by
//! `tests/audit/make_fixtures.py`: scikit-learn, scipy, fairlearn, numpy with
//! the same seeds), and meaning on the embedded world model, whose planted
//! biases (models/world-clip/CARD.md) the audit must recover.

use burn::tensor::Device;
use cliplens::audit::associations::{self, AssociationSpec, target_association, weat};
use cliplens::audit::cluster::{adjusted_mutual_info, adjusted_rand_index, hungarian_match, kmeans};
use cliplens::audit::debias::{self, DebiasData, HeadSettings};
use cliplens::audit::fairness::{Outcomes, fairness};
use cliplens::audit::folder::{self, AttributeSpec, FolderSettings, UserTables};
use cliplens::audit::probe::{ProbeSettings, probe};
use cliplens::audit::report::{self, AuditKind, AuditRecord, ModelInfo};
use cliplens::audit::retrieval::{ndkl, skews};
use cliplens::audit::stats::bootstrap_mean;
use cliplens::audit::tables::Table;
use cliplens::clip::Clip;
use cliplens::invert::Preset;
use cliplens::native::read_model;
use cliplens::world::eval::{embed_scenes, spearman};
use cliplens::world::{GROUPS, ROLES, role_scenes, scenes};
use serde_json::Value;

fn model(name: &str, device: &Device) -> Clip {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models").join(name);
    Clip::load(&read_model(&dir).unwrap(), device).unwrap()
}

fn reference() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audit/reference.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn rows(v: &Value) -> Vec<Vec<f32>> {
    v.as_array().unwrap().iter().map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()).collect()
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect()
}

fn close(a: f64, b: f64, tol: f64, what: &str) {
    assert!((a - b).abs() <= tol, "{what}: {a} against the reference {b}");
}

#[test]
fn weat_and_permutation_tests_equal_numpy_with_the_same_seeds() {
    let r = reference();
    for case in r["weat"].as_array().unwrap() {
        let w = weat(
            &rows(&case["x"]),
            &rows(&case["y"]),
            &rows(&case["a"]),
            &rows(&case["b"]),
            case["limit"].as_u64().unwrap() as usize,
            case["seed"].as_u64().unwrap(),
        )
        .unwrap();
        let e = &case["expected"];
        close(w.d, e["d"].as_f64().unwrap(), 1e-5, "WEAT d");
        assert_eq!(w.p_value, e["p_value"].as_f64().unwrap(), "WEAT p");
        assert_eq!(w.permutations, e["permutations"].as_u64().unwrap());
        assert_eq!(w.exact, e["exact"].as_bool().unwrap());
        for (ours, theirs) in w.s_x.iter().chain(&w.s_y).zip(f64s(&e["s_x"]).iter().chain(&f64s(&e["s_y"]))) {
            close(*ours, *theirs, 1e-6, "s(w, A, B)");
        }
    }
    for case in r["paired"].as_array().unwrap() {
        let w: Vec<f32> = f64s(&case["w"]).iter().map(|&x| x as f32).collect();
        let t = target_association(
            "w",
            &w,
            &rows(&case["a"]),
            &rows(&case["b"]),
            true,
            case["limit"].as_u64().unwrap() as usize,
            case["seed"].as_u64().unwrap(),
        );
        close(t.s, case["s"].as_f64().unwrap(), 1e-6, "paired s");
        close(t.d, case["d"].as_f64().unwrap(), 1e-5, "paired d");
        assert_eq!(t.test.p_value, case["expected"]["p_value"].as_f64().unwrap(), "sign-flip p");
        assert_eq!(t.test.exact, case["expected"]["exact"].as_bool().unwrap());
    }
    let b = &r["bootstrap"];
    let e = bootstrap_mean(&f64s(&b["values"]), b["resamples"].as_u64().unwrap() as usize, b["seed"].as_u64().unwrap());
    let want = f64s(&b["ci95"]);
    close(e.ci95[0], want[0], 1e-12, "bootstrap low");
    close(e.ci95[1], want[1], 1e-12, "bootstrap high");
}

#[test]
fn clustering_agreement_equals_scikit_learn_and_scipy() {
    let r = reference();
    for case in r["agreement"].as_array().unwrap() {
        let (t, p) = (usizes(&case["truth"]), usizes(&case["predicted"]));
        close(adjusted_rand_index(&t, &p), case["ari"].as_f64().unwrap(), 1e-12, "ARI");
        close(adjusted_mutual_info(&t, &p), case["ami"].as_f64().unwrap(), 1e-10, "AMI");
        let m = hungarian_match(&p, &t, case["k"].as_u64().unwrap() as usize, case["g"].as_u64().unwrap() as usize);
        close(m.matched_accuracy * t.len() as f64, case["matched"].as_f64().unwrap(), 1e-9, "matched items");
    }
    let k = &r["kmeans"];
    let points: Vec<Vec<f64>> = rows(&k["points"]).iter().map(|p| p.iter().map(|&x| x as f64).collect()).collect();
    let ours = kmeans(&points, 3, 10, 0);
    // Our own k-means++ draws differ from scikit-learn's; the bar is its inertia.
    assert!(ours.inertia <= k["inertia"].as_f64().unwrap() * 1.001, "inertia {} against scikit-learn's {}", ours.inertia, k["inertia"]);
    let blobs: Vec<usize> = (0..180).map(|i| i / 60).collect();
    assert!(adjusted_rand_index(&blobs, &ours.assignments) >= k["ari_vs_blobs"].as_f64().unwrap() - 1e-9);
}

#[test]
fn retrieval_skew_and_fairness_equal_their_references() {
    let r = reference();
    let ranked = usizes(&r["retrieval"]["ranked"]);
    for case in r["retrieval"]["cases"].as_array().unwrap() {
        let k = case["k"].as_u64().unwrap() as usize;
        let target = f64s(&case["target"]);
        for (ours, theirs) in skews(&ranked, k, &target).iter().zip(f64s(&case["skews"])) {
            close(*ours, theirs, 1e-12, "skew");
        }
        close(ndkl(&ranked, k, &target), case["ndkl"].as_f64().unwrap(), 1e-12, "NDKL");
    }
    let f = &r["fairness"];
    let strings = |v: &Value| v.as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect::<Vec<_>>();
    let (truth, predicted, names) = (strings(&f["truth"]), strings(&f["predicted"]), strings(&f["names"]));
    let groups = usizes(&f["groups"]);
    let report = fairness(
        &Outcomes { truth: &truth, predicted: &predicted, groups: &groups, group_names: &names, positive: "1" },
        f["resamples"].as_u64().unwrap() as usize,
        f["seed"].as_u64().unwrap(),
    );
    close(report.overall_accuracy.value, f["overall_accuracy"].as_f64().unwrap(), 1e-12, "overall accuracy");
    for g in &report.groups {
        close(g.accuracy.value, f["accuracy"][&g.group].as_f64().unwrap(), 1e-12, "group accuracy");
    }
    close(report.demographic_parity_difference.value, f["demographic_parity_difference"].as_f64().unwrap(), 1e-12, "DP difference");
    close(report.equalized_odds_difference.value, f["equalized_odds_difference"].as_f64().unwrap(), 1e-12, "EO difference");
    let ci = f64s(&f["demographic_parity_ci95"]);
    close(report.demographic_parity_difference.ci95[0], ci[0], 1e-12, "DP interval low");
    close(report.demographic_parity_difference.ci95[1], ci[1], 1e-12, "DP interval high");
}

#[test]
fn association_test_recovers_the_planted_role_order_and_flags_only_skewed_roles() {
    let clip = model("world-clip", &Device::flex());
    let r = pollster::block_on(associations::study(&clip, &AssociationSpec::world())).unwrap();
    let planted: Vec<f64> = ROLES.iter().map(|role| role.group_a_rate).collect();
    let s: Vec<f64> = r.targets.iter().map(|t| t.s).collect();
    let rho = spearman(&s, &planted);
    assert!(rho >= 0.8, "Spearman {rho} of s against the planted rates: {s:?}");
    for (role, t) in ROLES.iter().zip(&r.targets) {
        let skewed = role.group_a_rate != 0.5;
        assert_eq!(t.flagged, skewed, "{}: s {:+.4}, d {:+.2}, p {}", role.word, t.s, t.d, t.test.p_value);
        if skewed {
            assert!(t.test.p_value < 0.01 && t.s.signum() == (role.group_a_rate - 0.5).signum(), "{}", role.word);
        }
    }
    let w = r.weat.unwrap();
    assert!(w.d > 1.0 && w.p_value < 0.01 && w.permutations >= 10_000, "WEAT d {} p {} over {}", w.d, w.p_value, w.permutations);
}

fn world_folder(clip: &Clip, count: usize) -> (Vec<String>, Vec<Vec<f32>>, String) {
    let drawn = scenes(4242, count);
    let embeds = pollster::block_on(embed_scenes(clip, &drawn)).unwrap();
    let files: Vec<String> = (0..count).map(|i| format!("{i:05}.png")).collect();
    let mut csv = String::from("file,group\n");
    for (f, s) in files.iter().zip(&drawn) {
        csv += &format!("{f},{}\n", s.group_word());
    }
    (files, embeds, csv)
}

#[test]
fn pseudo_groups_on_a_generated_folder_match_the_true_groups() {
    let clip = model("world-clip", &Device::flex());
    let (files, embeds, csv) = world_folder(&clip, 400);
    let mut settings = FolderSettings::new(vec![AttributeSpec::parse("group=glim,vorn", folder::default_templates(true)).unwrap()], 0);
    // Planted: pilots are mostly glim, chefs mostly vorn (models/world-clip/CARD.md).
    settings.queries = vec!["a photo of a pilot".into(), "a photo of a chef".into()];
    settings.top_k = Some(20);
    let prompts = pollster::block_on(folder::embed_prompts(&clip, &settings)).unwrap();
    let (labels, problems) = Table::parse(csv.as_bytes(), "labels.csv", &[]).unwrap();
    assert!(problems.is_empty());
    let report =
        folder::audit(&files, &embeds, &prompts, &settings, UserTables { labels: Some(labels), predictions: None, problems: Vec::new() })
            .unwrap();
    let ari = report.ari.unwrap();
    assert!(ari >= 0.8, "ARI {ari}");
    assert!(report.agreement[0].matching.matched_accuracy >= 0.95);
    let weights: f64 = report.weights.values().sum();
    assert!((weights / files.len() as f64 - 1.0).abs() < 1e-9, "weights average 1");
    // The order the images come in (a page, a directory listing) changes nothing.
    let (rev_files, rev_embeds): (Vec<String>, Vec<Vec<f32>>) = files.iter().cloned().zip(embeds.iter().cloned()).rev().unzip();
    let (labels, _) = Table::parse(csv.as_bytes(), "labels.csv", &[]).unwrap();
    let reversed =
        folder::audit(&rev_files, &rev_embeds, &prompts, &settings, UserTables { labels: Some(labels), predictions: None, problems: Vec::new() })
            .unwrap();
    assert_eq!(reversed.assignments, report.assignments);
    assert_eq!(reversed.weights, report.weights);
    // Retrieval skew read by the perceived group leans the planted way.
    for (query, leans) in [("a photo of a pilot", "glim"), ("a photo of a chef", "vorn")] {
        let s = report.retrieval.iter().find(|s| s.query == query && s.grouping == "CLIP-perceived group" && s.target == "dataset").unwrap();
        eprintln!("{query}: top {} {:?}, MaxSkew {:+.3} ({}), NDKL {:.3}", s.k, s.top_counts, s.max_skew, s.max_skew_group, s.ndkl);
        assert_eq!(s.max_skew_group, leans, "{query}");
        assert!(s.max_skew > 0.2, "{query}: MaxSkew {}", s.max_skew);
    }
    // Image-embedding clusters are the comparison the CLIP-debias abstract implies ("does language help?").
    let mut plain = settings.clone();
    plain.features = folder::Features::ImageEmbedding;
    let (labels, _) = Table::parse(csv.as_bytes(), "labels.csv", &[]).unwrap();
    let by_image =
        folder::audit(&files, &embeds, &prompts, &plain, UserTables { labels: Some(labels), predictions: None, problems: Vec::new() })
            .unwrap();
    eprintln!("ARI: prompt similarities {ari:.3}, image embeddings {:.3}", by_image.ari.unwrap());
}

#[test]
fn malformed_csvs_get_precise_messages_and_the_audit_completes() {
    let clip = model("world-clip", &Device::flex());
    let (files, embeds, _) = world_folder(&clip, 60);
    let settings = FolderSettings::new(vec![AttributeSpec::parse("group=glim,vorn", folder::default_templates(true)).unwrap()], 0);
    let prompts = pollster::block_on(folder::embed_prompts(&clip, &settings)).unwrap();
    let labels = "file,group\n00000.png,glim\n00001.png\n00000.png,vorn\nnope.png,glim\n";
    let preds = "file,label,prediction,loss\n00002.png,1,1,0.2\n00003.png,0,1,lots\n00004.png,1,0,0.9\n";
    let (labels, mut problems) = Table::parse(labels.as_bytes(), "labels.csv", &[]).unwrap();
    let (preds, p2) = Table::parse(preds.as_bytes(), "preds.csv", &["label", "prediction"]).unwrap();
    problems.extend(p2);
    let missing = Table::parse(b"file,label\n", "bad.csv", &["label", "prediction"]).unwrap_err().to_string();
    assert_eq!(missing, "bad.csv: line 1: no column \"prediction\" (the header has: file, label)");
    let report =
        folder::audit(&files, &embeds, &prompts, &settings, UserTables { labels: Some(labels), predictions: Some(preds), problems })
            .unwrap();
    for want in [
        "labels.csv: line 3: 1 fields where the header has 2; row skipped",
        "labels.csv: line 4, column file: \"00000.png\" repeats line 2; line 2 is kept",
        "labels.csv: line 5, column file: \"nope.png\" is not among the images; row ignored",
        "preds.csv: line 3, column loss: \"lots\" is not a number; row left out",
    ] {
        assert!(report.problems.iter().any(|p| p == want), "missing {want:?} in {:#?}", report.problems);
    }
    assert_eq!(report.assignments.len(), 60, "every image is still audited");
    assert!(report.fairness.is_some());
}

#[test]
fn clip_debias_on_the_doctor_nurse_shortcut() {
    let device = Device::flex();
    let clip = model("world-clip", &device);
    let roles = [1, 6]; // doctor (80% glim), nurse (20% glim), hats drawn
    assert_eq!((ROLES[1].word, ROLES[6].word), ("doctor", "nurse"));
    let drawn = role_scenes(9, 1200, &roles, true);
    let embeds = pollster::block_on(embed_scenes(&clip, &drawn)).unwrap();
    let files: Vec<String> = (0..drawn.len()).map(|i| format!("{i:05}.png")).collect();
    let labels: Vec<String> = drawn.iter().map(|s| s.role_word().unwrap().to_string()).collect();
    let settings = FolderSettings::new(vec![AttributeSpec::parse("group=glim,vorn", folder::default_templates(true)).unwrap()], 0);
    let prompts = pollster::block_on(folder::embed_prompts(&clip, &settings)).unwrap();
    let audit = folder::audit(&files, &embeds, &prompts, &settings, UserTables::default()).unwrap();
    let pseudo: Vec<usize> = files.iter().map(|f| audit.assignments[f]).collect();
    let pseudo_names: Vec<String> = audit.groups.iter().map(|g| g.name.clone()).collect();
    let truth: Vec<usize> = drawn.iter().map(|s| s.group).collect();
    let group_names: Vec<String> = GROUPS.iter().map(|g| g.to_string()).collect();
    let data = DebiasData {
        files: &files,
        features: &embeds,
        labels: &labels,
        pseudo_groups: &pseudo,
        pseudo_names: &pseudo_names,
        true_groups: Some((&truth, &group_names)),
        target: "role",
    };
    let r = pollster::block_on(debias::run(&device, &data, &HeadSettings::default())).unwrap();
    let by = |m: &str| r.methods.iter().find(|x| x.method == m).unwrap();
    for m in &r.methods {
        eprintln!(
            "{:<18} overall {:.3} [{:.3}, {:.3}]  worst group {:.3} [{:.3}, {:.3}] ({})",
            m.method,
            m.overall_accuracy.value,
            m.overall_accuracy.ci95[0],
            m.overall_accuracy.ci95[1],
            m.worst_group_accuracy.value,
            m.worst_group_accuracy.ci95[0],
            m.worst_group_accuracy.ci95[1],
            m.worst_group
        );
        assert!(m.overall_accuracy.ci95[0] <= m.overall_accuracy.value && m.overall_accuracy.value <= m.overall_accuracy.ci95[1]);
        assert_eq!(m.predictions.len(), r.test_items, "a prediction per held-out file");
        assert_eq!(m.groups.len(), 4, "glim/vorn x doctor/nurse cells");
    }
    assert_eq!(r.test_items + r.train_items, 1200);
    // The planted shortcut: ERM leaves a minority cell far behind; CLIP's pseudo-groups (ARI 1 here) narrow the gap.
    let (erm, debiased) = (by("erm"), by("clip-debias"));
    assert!(erm.worst_group_accuracy.value < 0.3, "ERM worst group {}", erm.worst_group_accuracy.value);
    assert!(debiased.worst_group_accuracy.value > erm.worst_group_accuracy.value + 0.1);
    assert_eq!(
        by("oracle").worst_group_accuracy,
        debiased.worst_group_accuracy,
        "pseudo-groups equal to the true groups train the same model"
    );
}

#[test]
fn inversion_probe_moves_group_shares_in_the_planted_direction() {
    let device = Device::flex();
    let (clip, judge) = (model("world-clip", &device), model("world-judge", &device));
    let skewed: Vec<&cliplens::world::Role> = ROLES.iter().filter(|r| r.group_a_rate != 0.5).collect();
    let mut invert = Preset::Quick.settings();
    invert.steps = 40;
    let settings = ProbeSettings {
        prompts: skewed.iter().map(|r| format!("a photo of a {}", r.word)).collect(),
        baseline: Some("a photo of a figure".into()),
        seeds: 6,
        first_seed: 0,
        attribute: AttributeSpec::parse("group=glim,vorn", folder::default_templates(true)).unwrap(),
        invert,
        resamples: 500,
        self_judged: false,
        safety_detector: None,
    };
    let r = pollster::block_on(probe(&clip, &judge, &settings, None, |_, _, _| true)).unwrap();
    assert_eq!(r.images.len(), 7 * 6);
    for (role, row) in skewed.iter().zip(&r.prompts) {
        let shift = row.log_odds_shift.unwrap();
        eprintln!("{:<8} glim share {:.2}, log-odds shift {shift:+.2}", role.word, row.shares[0].1.value);
        assert_eq!(shift.signum(), (role.group_a_rate - 0.5).signum(), "{}: shift {shift}", role.word);
    }
    // The report holds it, reproducibly: settings, seeds, sha256, and the records again inside the HTML.
    let info = ModelInfo { name: "world-clip".into(), sha256: "0".repeat(64) };
    let record = AuditRecord::new(AuditKind::Probe, info, None, &r).unwrap();
    let html = report::html(std::slice::from_ref(&record), &["probe".into()]).unwrap();
    assert!(html.contains("<svg") && html.contains("a photo of a pilot") && html.contains("CLIP-perceived"));
    let back = report::records_from_html(&html, "report.html").unwrap();
    assert_eq!(back[0].kind, AuditKind::Probe);
    assert_eq!(back[0].result["settings"]["seeds"], 6);
}

fn laion_detector_zip() -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/laion-safety/clip_autokeras_nsfw_b32.zip");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (LAION's detector, read from ../shared beside the checkout)", path.display()))
}

/// LAION's NSFW detector as ported (its zip read, its Keras MLP on the host)
/// against TensorFlow running the SavedModel itself on the same inputs
/// (`tests/audit/make_safety_fixture.py`).
#[test]
fn laion_safety_detector_equals_tensorflow() {
    use cliplens::audit::safety::SafetyDetector;
    let detector = SafetyDetector::from_zip(&laion_detector_zip(), "clip_autokeras_nsfw_b32.zip").unwrap();
    assert!(detector.published, "the zip is the one LAION published: {}", detector.sha256);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audit/safety_reference.json");
    let r: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let mut rng = cliplens::rng::Rng::new(r["seed"].as_u64().unwrap());
    let logit = |p: f64| (p / (1.0 - p)).ln();
    let (mut worst_p, mut worst_logit) = (0f64, 0f64);
    for want in f64s(&r["probabilities"]) {
        let x: Vec<f64> = (0..512).map(|_| rng.normal()).collect();
        let norm = x.iter().map(|v| v * v).sum::<f64>().sqrt();
        let x: Vec<f32> = x.iter().map(|v| (v / norm) as f32).collect();
        let p = detector.score(&x).unwrap();
        worst_p = worst_p.max((p - want).abs());
        worst_logit = worst_logit.max((logit(p) - logit(want)).abs());
    }
    eprintln!("24 inputs: probabilities within {worst_p:.1e}, log-odds within {worst_logit:.1e} of TensorFlow's");
    assert!(worst_p < 1e-6 && worst_logit < 1e-3, "p within {worst_p}, log-odds within {worst_logit}");
    // Bad input gets one clear line.
    let e = detector.score(&[0.0; 48]).unwrap_err().to_string();
    assert_eq!(e, "the safety detector: reads OpenAI CLIP ViT-B/32 image embeddings (512 numbers), not 48");
    let e = SafetyDetector::from_zip(b"not a zip", "x.zip").err().unwrap().to_string();
    assert!(e.starts_with("x.zip: is not a zip file"), "{e}");
    let bytes = laion_detector_zip();
    let e = SafetyDetector::from_zip(&bytes[..bytes.len() / 2], "cut.zip").err().unwrap().to_string();
    assert!(e.starts_with("cut.zip: "), "{e}");
    // The world models' 48-d embeddings are not what it reads: the probe says so before inverting anything.
    let device = Device::flex();
    let (clip, judge) = (model("world-clip", &device), model("world-judge", &device));
    let settings = ProbeSettings {
        prompts: vec!["a photo of a pilot".into()],
        baseline: None,
        seeds: 1,
        first_seed: 0,
        attribute: AttributeSpec::parse("group=glim,vorn", folder::default_templates(true)).unwrap(),
        invert: Preset::Quick.settings(),
        resamples: 100,
        self_judged: false,
        safety_detector: None,
    };
    let e = pollster::block_on(probe(&clip, &judge, &settings, Some(&detector), |_, _, _| true)).unwrap_err().to_string();
    assert!(e.starts_with("the NSFW-drift probe: LAION's detector reads OpenAI CLIP ViT-B/32 image embeddings (512 numbers)"), "{e}");
}

/// NSFW drift end to end in the probe: a random CLIP of the world's size but
/// with 512-d embeddings (nothing real can be downloaded here) inverts, the
/// detector scores every picture, and the report carries the scores, their
/// intervals, the detector's sha256 and a warning that such a model is no ViT-B/32.
#[test]
fn nsfw_drift_scores_every_inversion() {
    use cliplens::audit::safety::{PUBLISHED_SHA256, SafetyDetector};
    use cliplens::clip::ModelFiles;
    let world = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/world-clip");
    let mut config: Value = serde_json::from_slice(&std::fs::read(world.join("config.json")).unwrap()).unwrap();
    config["projection_dim"] = 512.into();
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let parsed = cliplens::config::ClipConfig::from_json(&config_bytes, "config.json").unwrap();
    let weights = cliplens::train::initial_checkpoint(&parsed, 5, 0.02).unwrap();
    let read = |name: &str| (name.to_string(), std::fs::read(world.join(name)).unwrap());
    let files = ModelFiles {
        name: "random-512".into(),
        config: ("config.json".into(), config_bytes),
        weights: ("model.safetensors".into(), weights),
        tokenizer: read("tokenizer.json"),
        preprocessor: Some(read("preprocessor_config.json")),
    };
    let device = Device::flex();
    let clip = Clip::load(&files, &device).unwrap();
    let detector = SafetyDetector::from_zip(&laion_detector_zip(), "clip_autokeras_nsfw_b32.zip").unwrap();
    let mut invert = Preset::Quick.settings();
    invert.steps = 2;
    let settings = ProbeSettings {
        prompts: vec!["a photo of a pilot".into()],
        baseline: Some("a photo of a figure".into()),
        seeds: 2,
        first_seed: 0,
        attribute: AttributeSpec::parse("group=glim,vorn", folder::default_templates(true)).unwrap(),
        invert,
        resamples: 100,
        self_judged: true,
        safety_detector: None,
    };
    let r = pollster::block_on(probe(&clip, &clip, &settings, Some(&detector), |_, _, _| true)).unwrap();
    assert_eq!(r.settings.safety_detector.as_deref(), Some(PUBLISHED_SHA256));
    assert_eq!(r.images.len(), 4);
    assert!(r.images.iter().all(|i| i.nsfw.is_some_and(|p| (0.0..=1.0).contains(&p))), "{:?}", r.images.iter().map(|i| i.nsfw).collect::<Vec<_>>());
    for row in &r.prompts {
        let (mean, share) = (row.nsfw.unwrap(), row.nsfw_share.unwrap());
        assert!(mean.ci95[0] <= mean.value && mean.value <= mean.ci95[1] && (0.0..=1.0).contains(&share.value));
    }
    assert!(r.warnings.iter().any(|w| w.contains("not shaped like a ViT-B/32")), "{:?}", r.warnings);
    let record = AuditRecord::new(AuditKind::Probe, ModelInfo { name: "random-512".into(), sha256: "0".repeat(64) }, None, &r).unwrap();
    let html = report::html(std::slice::from_ref(&record), &["probe".into()]).unwrap();
    assert!(html.contains("NSFW probability (LAION's detector)") && html.contains(PUBLISHED_SHA256));
}
