//! `cliplens bench`: benchmarks, each printed against a named baseline.
//! `bench invert` inverts held-out world prompts and lets the judge grade them.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Subcommand};
use cliplens::Result;
use cliplens::clip::Clip;
use cliplens::invert::Preset;
use cliplens::invert::bench::{self, BenchRun, HELD_OUT_COUNT};
use cliplens::native::{Backend, device, read_model};

use super::invert::settings_file;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Invert held-out prompts on the embedded world model with production settings and with
    /// plain pixel optimization (the baseline), and let the judge model grade every image.
    Invert(BenchInvertArgs),
    /// Decompose images into a 10,000-concept dictionary (SpLiCE) on the CPU and wgpu, against
    /// scikit-learn's positive Lasso one image at a time and SpLiCE's ADMM in numpy.
    Concepts(super::bench_concepts::BenchConceptsArgs),
    /// Image and text embedding, inversion steps and matrix products on Flex and wgpu, against
    /// PyTorch with transformers' CLIPModel on the same weights and threads (ratios > 1: faster).
    Speed(super::bench_speed::BenchSpeedArgs),
    /// What a first visit downloads (raw, gzip, brotli) and how long until the model is ready,
    /// in headless Chromium, against transformers.js' runtime files.
    Footprint(super::bench_footprint::BenchFootprintArgs),
    /// Image and text embedding and time to a ready model in headless Chromium, CLIP Lens
    /// (WebGPU, CPU) against transformers.js (WebGPU, WASM) on the same weights (ratios > 1: faster).
    Browser(super::bench_browser::BenchBrowserArgs),
}

/// A fresh folder for one benchmark's files for its baseline script (the caller removes it).
pub fn scratch_dir(bench: &str) -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("cliplens-bench-{bench}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

pub fn run(command: BenchCommand) -> Result<ExitCode> {
    match command {
        BenchCommand::Invert(args) => bench_invert(args),
        BenchCommand::Concepts(args) => super::bench_concepts::bench_concepts(args),
        BenchCommand::Speed(args) => super::bench_speed::bench_speed(args),
        BenchCommand::Footprint(args) => super::bench_footprint::bench_footprint(args),
        BenchCommand::Browser(args) => super::bench_browser::bench_browser(args),
    }
}

#[derive(Args)]
pub struct BenchInvertArgs {
    /// The model under study.
    #[arg(long, default_value = "models/world-clip")]
    model: PathBuf,
    /// The judge: a different model that grades the inversions.
    #[arg(long, default_value = "models/world-judge")]
    judge: PathBuf,
    /// Prompts to use (at most the set's 48).
    #[arg(long, default_value_t = HELD_OUT_COUNT)]
    prompts: usize,
    /// Inversions per prompt (seeds 0..N).
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    /// The production settings to measure (quick, balanced, best).
    #[arg(long, default_value = "balanced")]
    preset: String,
    /// Measure these settings (a JSON file, or a PNG this tool wrote) instead of a preset.
    #[arg(long)]
    settings: Option<PathBuf>,
    /// Skip the baseline run.
    #[arg(long)]
    no_baseline: bool,
    /// Use the development prompts (for tuning) instead of the held-out ones.
    #[arg(long)]
    dev: bool,
    #[arg(long)]
    json: bool,
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    backend: Backend,
}

pub fn bench_invert(args: BenchInvertArgs) -> Result<ExitCode> {
    let device = device(args.backend)?;
    let model = Clip::load(&read_model(&args.model)?, &device)?;
    let judge = Clip::load(&read_model(&args.judge)?, &device)?;
    let prompts = if args.dev { bench::dev_prompts(args.prompts) } else { bench::held_out_prompts(args.prompts) };
    let seeds: Vec<u64> = (0..args.seeds.max(1)).collect();
    let start = Instant::now();
    let now = move || start.elapsed().as_secs_f64();
    let production = match &args.settings {
        Some(path) => ("custom".to_string(), settings_file(path)?.0),
        None => {
            let p = Preset::from_name(&args.preset)?;
            (p.name().to_string(), p.settings_for(model.config().vision_config.image_size))
        }
    };
    let mut configs = vec![production];
    if !args.no_baseline {
        configs.push((Preset::Baseline.name().to_string(), Preset::Baseline.settings()));
    }
    let mut runs: Vec<BenchRun> = Vec::new();
    for (name, settings) in &configs {
        let total = prompts.len() * seeds.len();
        let mut done = 0;
        let run = pollster::block_on(bench::run(
            name,
            &model,
            &judge,
            settings,
            &prompts,
            &seeds,
            &now,
            &mut |r| {
                done += 1;
                // Progress goes to stderr, also with --json (stdout stays one object).
                eprintln!(
                    "[{name} {done}/{total}] {} \"{}\" judge read {} (similarity {:.3})",
                    if r.judge_correct { "ok  " } else { "MISS" },
                    r.prompt,
                    r.judge_read.join(" "),
                    r.judge_similarity
                );
            },
        ))?;
        runs.push(run);
    }
    let backend = format!("{:?}", args.backend).to_lowercase();
    if args.json {
        let value = serde_json::json!({
            "model": model.name,
            "judge": judge.name,
            "backend": backend,
            "prompt_set": if args.dev { "dev" } else { "held-out" },
            "prompts": prompts,
            "runs": runs,
        });
        println!("{value}");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "inversion benchmark: {} inverted, {} judging, {} {} prompts x {} seed(s), backend {backend}",
        model.name,
        judge.name,
        prompts.len(),
        if args.dev { "dev" } else { "held-out" },
        seeds.len()
    );
    println!("{:<10} {:>8} {:>10} {:>12} {:>12} {:>9} {:>11}", "settings", "judge ok", "self ok", "judge sim", "model sim", "steps/s", "s/inversion");
    for r in &runs {
        println!(
            "{:<10} {:>7.1}% {:>9.1}% {:>12.4} {:>12.4} {:>9.1} {:>11.2}",
            r.name,
            100.0 * r.success_rate,
            100.0 * r.self_success_rate,
            r.mean_judge_similarity,
            r.mean_model_similarity,
            r.steps_per_second,
            r.seconds_per_inversion
        );
    }
    let [p, b] = runs.as_slice() else { return Ok(ExitCode::SUCCESS) };
    println!("per attribute, judge accuracy ({} / baseline):", p.name);
    for ((name, acc, n), (_, base, _)) in p.attribute_accuracy.iter().zip(&b.attribute_accuracy) {
        println!("  {name:<11} {:>5.1}% / {:>5.1}%   (n = {n})", 100.0 * acc, 100.0 * base);
    }
    let ratio = |x: f64, y: f64| if y > 0.0 { format!("{:.2}x", x / y) } else { "n/a (baseline 0)".to_string() };
    println!(
        "vs baseline: success {}, judge similarity {}, time per inversion {}",
        ratio(p.success_rate, b.success_rate),
        ratio(p.mean_judge_similarity, b.mean_judge_similarity),
        ratio(p.seconds_per_inversion, b.seconds_per_inversion)
    );
    Ok(ExitCode::SUCCESS)
}
