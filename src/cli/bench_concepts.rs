//! `cliplens bench concepts`: the SpLiCE solve, images per second for a
//! 10,000-concept dictionary on the CPU and on wgpu, against the reference's
//! own paths on the same inputs (scikit-learn's positive Lasso one image at a
//! time, and its ADMM in numpy, run by `tests/concepts/baseline.py`), each
//! with the objective it reached. Also the time to encode a vocabulary.

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Instant;

use clap::Args;
use cliplens::clip::Clip;
use cliplens::concepts::{BuiltinVocabulary, DEFAULT_TOLERANCE, Dictionary, Sparsity, Vocabulary, solve_batch};
use cliplens::native::{Backend, device, read_model};
use cliplens::rng::Rng;
use cliplens::{Error, Result};
use serde_json::{Value, json};

#[derive(Args)]
pub struct BenchConceptsArgs {
    /// Concepts in the synthetic dictionary.
    #[arg(long, default_value_t = 10_000)]
    words: usize,
    /// Embedding size (OpenAI ViT-B's is 512).
    #[arg(long, default_value_t = 512)]
    dim: usize,
    /// Images to decompose (each solver gets the same ones).
    #[arg(long, default_value_t = 64)]
    images: usize,
    /// λ for every solver (SpLiCE's scale; its examples use 0.15 to 0.35).
    #[arg(long, default_value_t = 0.25)]
    lambda: f64,
    /// Images for the reference ADMM (its cost per iteration grows with words²); 0 skips it.
    #[arg(long, default_value_t = 8)]
    admm_images: usize,
    /// The Python with numpy, scipy and scikit-learn (tests/concepts/requirements.txt).
    #[arg(long, default_value = "python3")]
    python: String,
    /// Also time encoding the laion-clean vocabulary (9,790 words) with this model.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Skip the wgpu run.
    #[arg(long)]
    no_wgpu: bool,
    #[arg(long)]
    json: bool,
}

/// A dictionary shaped like CLIP's text side after SpLiCE's centring: rows
/// that share a common direction (as text embeddings do), centred on their
/// mean and normalized; and targets made of 10 concepts plus as much noise
/// again (a real decomposition explains about half of an image).
fn synthetic(words: usize, dim: usize, images: usize) -> (Vocabulary, Dictionary, Vec<f32>) {
    let mut rng = Rng::new(2402);
    let common: Vec<f64> = (0..dim).map(|_| rng.normal()).collect();
    let embeds: Vec<Vec<f32>> = (0..words)
        .map(|_| {
            let row: Vec<f64> = common.iter().map(|c| 0.6 * c + rng.normal()).collect();
            unit(&row).iter().map(|&x| x as f32).collect()
        })
        .collect();
    let vocabulary = Vocabulary::new("synthetic".into(), (0..words).map(|j| format!("concept{j}")).collect());
    let dictionary = Dictionary::from_embeddings(&vocabulary, &embeds).expect("a synthetic dictionary");
    let mut targets = Vec::with_capacity(images * dim);
    for _ in 0..images {
        let mut parts = vec![0.0f64; dim];
        for _ in 0..10 {
            let j = rng.below(words);
            let a = 0.2 + 0.8 * rng.unit();
            parts.iter_mut().zip(dictionary.row(j)).for_each(|(p, &x)| *p += a * f64::from(x));
        }
        let parts = unit(&parts);
        let noise = unit(&(0..dim).map(|_| rng.normal()).collect::<Vec<_>>());
        let z: Vec<f64> = parts.iter().zip(&noise).map(|(p, n)| p + n).collect();
        targets.extend(unit(&z).iter().map(|&x| x as f32));
    }
    (vocabulary, dictionary, targets)
}

fn unit(v: &[f64]) -> Vec<f64> {
    let n = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-300);
    v.iter().map(|x| x / n).collect()
}

struct Row {
    name: String,
    images: usize,
    ms_per_image: f64,
    objectives: Vec<f64>,
    mean_l0: f64,
    note: String,
}

fn ours(name: &str, dictionary: &Dictionary, targets: &[f32], sparsity: Sparsity, backend: Backend) -> Result<Row> {
    let device = device(backend)?;
    let on_device = dictionary.on_device(&device);
    // One untimed image first: kernels compile and caches fill on first use.
    pollster::block_on(solve_batch(&on_device, &targets[..dictionary.dim], sparsity, DEFAULT_TOLERANCE, |_, _| true))?;
    let start = Instant::now();
    let solutions = pollster::block_on(solve_batch(&on_device, targets, sparsity, DEFAULT_TOLERANCE, |_, _| true))?;
    let seconds = start.elapsed().as_secs_f64();
    let n = solutions.len();
    let passes = solutions.iter().map(|s| s.passes).sum::<usize>() as f64 / n as f64;
    Ok(Row {
        name: name.to_string(),
        images: n,
        ms_per_image: 1000.0 * seconds / n as f64,
        mean_l0: solutions.iter().map(|s| s.l0() as f64).sum::<f64>() / n as f64,
        objectives: solutions.iter().map(|s| s.objective).collect(),
        note: format!("{passes:.1} dictionary passes per image, batched"),
    })
}

fn baseline(args: &BenchConceptsArgs, dictionary: &Dictionary, targets: &[f32]) -> std::result::Result<Value, String> {
    let dir = super::bench::scratch_dir("concepts").map_err(|e| e.to_string())?;
    let bin = dir.join("inputs.bin");
    let meta = dir.join("inputs.json");
    let mut bytes: Vec<u8> = Vec::with_capacity((dictionary.rows.len() + targets.len()) * 4);
    dictionary.rows.iter().chain(targets).for_each(|x| bytes.extend_from_slice(&x.to_le_bytes()));
    std::fs::write(&bin, bytes).map_err(|e| e.to_string())?;
    let spec = json!({"words": dictionary.len(), "dim": dictionary.dim, "targets": targets.len() / dictionary.dim,
                      "lambda": args.lambda, "admm_targets": args.admm_images.min(targets.len() / dictionary.dim)});
    std::fs::write(&meta, spec.to_string()).map_err(|e| e.to_string())?;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/concepts/baseline.py");
    let out = Command::new(&args.python)
        .arg(&script)
        .arg(&bin)
        .arg(&meta)
        .output()
        .map_err(|e| format!("cannot run {} ({e})", args.python))?;
    let _ = std::fs::remove_dir_all(&dir);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().last().unwrap_or("").to_string();
        return Err(format!("{} {} failed: {last} (pip install -r tests/concepts/requirements.txt)", args.python, script.display()));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("unreadable baseline output: {e}"))
}

fn row_from_baseline(name: &str, value: &Value, note: String) -> Option<Row> {
    let objectives: Vec<f64> = value["objectives"].as_array()?.iter().filter_map(Value::as_f64).collect();
    let l0: Vec<f64> = value["l0"].as_array()?.iter().filter_map(Value::as_f64).collect();
    Some(Row {
        name: name.to_string(),
        images: value["images"].as_u64()? as usize,
        ms_per_image: 1000.0 * value["seconds_per_image"].as_f64()?,
        mean_l0: l0.iter().sum::<f64>() / l0.len().max(1) as f64,
        objectives,
        note,
    })
}

pub fn bench_concepts(args: BenchConceptsArgs) -> Result<ExitCode> {
    if args.words == 0 || args.dim == 0 || args.images == 0 {
        return Err(Error::usage("bench concepts", "--words, --dim and --images must be at least 1"));
    }
    let (_, dictionary, targets) = synthetic(args.words, args.dim, args.images);
    let mut rows = Vec::new();
    eprintln!("solving {} images on the CPU...", args.images);
    rows.push(ours("cliplens, CPU (Flex)", &dictionary, &targets, Sparsity::Lambda(args.lambda), Backend::Cpu)?);
    if !args.no_wgpu {
        eprintln!("solving on wgpu...");
        match ours("cliplens, wgpu", &dictionary, &targets, Sparsity::Lambda(args.lambda), Backend::Wgpu) {
            Ok(row) => rows.push(row),
            Err(e) => eprintln!("wgpu skipped: {e}"),
        }
    }
    eprintln!("running the reference's solvers ({} tests/concepts/baseline.py)...", args.python);
    let (reference, baseline_error) = match baseline(&args, &dictionary, &targets) {
        Ok(value) => (Some(value), None),
        Err(e) => (None, Some(e)),
    };
    if let Some(value) = &reference {
        if let Some(row) = row_from_baseline("sklearn Lasso, one image at a time", &value["sklearn"], "SpLiCE's default path".into()) {
            rows.push(row);
        }
        if let Some(row) = row_from_baseline(
            "SpLiCE ADMM (numpy)",
            &value["admm"],
            format!("{} iterations, batched, random start", value["admm"]["iterations"]),
        ) {
            rows.push(row);
        }
    }
    let sklearn_ms = rows.iter().find(|r| r.name.starts_with("sklearn")).map(|r| r.ms_per_image);
    // Objectives are compared on the images every solver did (the ADMM does fewer).
    let common = rows.iter().map(|r| r.objectives.len()).min().unwrap_or(0);
    let mean_objective = |r: &Row| r.objectives[..common].iter().sum::<f64>() / common.max(1) as f64;
    let best = rows.iter().map(&mean_objective).fold(f64::INFINITY, f64::min);

    let encode = match &args.model {
        Some(path) => {
            let device = device(Backend::Cpu)?;
            let clip = Clip::load(&read_model(path)?, &device)?;
            let vocabulary = BuiltinVocabulary::LaionClean.vocabulary();
            let start = Instant::now();
            pollster::block_on(Dictionary::encode(&clip, &vocabulary, |_, _| true))?;
            Some((clip.name.clone(), vocabulary.len(), start.elapsed().as_secs_f64()))
        }
        None => None,
    };

    if args.json {
        let value = json!({
            "words": args.words, "dim": args.dim, "images": args.images, "lambda": args.lambda,
            "baseline": "sklearn Lasso(positive=True), one image at a time",
            "baseline_error": baseline_error,
            "solvers": rows.iter().map(|r| json!({
                "name": r.name, "images": r.images, "ms_per_image": r.ms_per_image,
                "speedup_vs_sklearn": sklearn_ms.map(|s| s / r.ms_per_image),
                "mean_objective": mean_objective(r), "objective_vs_best": mean_objective(r) / best - 1.0,
                "mean_l0": r.mean_l0, "note": r.note,
            })).collect::<Vec<_>>(),
            "encoding": encode.as_ref().map(|(m, n, s)| json!({"model": m, "concepts": n, "seconds": s})),
        });
        println!("{value}");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "concepts benchmark: {} concepts x {} dims, {} images, λ {} (synthetic: 10 concepts + noise per image)",
        args.words, args.dim, args.images, args.lambda
    );
    println!("baseline: sklearn Lasso(positive=True), one image at a time (SpLiCE's path); objectives over the first {common} images");
    println!("{:<36} {:>10} {:>9} {:>11} {:>13} {:>10} {:>7}  note", "solver", "ms/image", "images/s", "vs sklearn", "objective", "vs best", "l0");
    for r in &rows {
        let speed = sklearn_ms.map_or("n/a".to_string(), |s| format!("{:.1}x", s / r.ms_per_image));
        println!(
            "{:<36} {:>10.2} {:>9.1} {:>11} {:>13.6} {:>+9.1e} {:>7.1}  {} ({} images)",
            r.name,
            r.ms_per_image,
            1000.0 / r.ms_per_image,
            speed,
            mean_objective(r),
            mean_objective(r) / best - 1.0,
            r.mean_l0,
            r.note,
            r.images
        );
    }
    if let Some(e) = baseline_error {
        println!("baseline unavailable: {e}");
    }
    if let Some((model, n, seconds)) = encode {
        println!("encoding {n} concepts with {model} on the CPU: {seconds:.1} s ({:.0} concepts/s)", n as f64 / seconds);
    }
    Ok(ExitCode::SUCCESS)
}
