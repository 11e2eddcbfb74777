//! `cliplens bench speed`: image and text embedding, inversion steps and
//! matrix products on Flex (CPU) and wgpu, against PyTorch with transformers'
//! `CLIPModel` on the same weights and the same thread count (run by
//! `tests/bench/torch_speed.py`). Medians of `--runs` timed calls, each after
//! one untimed warm-up. Ratios are PyTorch's time over ours: above 1, CLIP
//! Lens is faster.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use burn::tensor::{Tensor, TensorData};
use clap::Args;
use cliplens::clip::{Clip, read_vec};
use cliplens::config::ClipConfig;
use cliplens::invert::target::{Target, embedding_term};
use cliplens::invert::{Inverter, Preset};
use cliplens::native::{Backend, device, read_model};
use cliplens::rng::Rng;
use cliplens::speed::{self, SpeedPlan, format_rate, prompts};
pub use cliplens::speed::median;
use cliplens::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Args)]
pub struct BenchSpeedArgs {
    /// Model directories (Hugging Face layout); `tests/parity/make_fixtures.py full` makes
    /// random-weight ViT-B/32 and B/16 ones.
    #[arg(long = "model", required = true)]
    models: Vec<PathBuf>,
    /// Backends to time (repeat for both).
    #[arg(long = "backend", value_enum, default_values_t = [Backend::Cpu])]
    backends: Vec<Backend>,
    /// Image batch sizes: the first is reported as latency, the others as throughput.
    #[arg(long = "batch", default_values_t = [1usize, 32])]
    batches: Vec<usize>,
    /// Timed calls per measurement (the median is reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Prompts in the text batch (0 skips it).
    #[arg(long, default_value_t = 32)]
    texts: usize,
    /// Views per inversion step (CLIP Lens' baseline preset: pixels, Adam, no augmentation).
    #[arg(long, default_value_t = 8)]
    invert_views: usize,
    /// Timed inversion steps (0 skips the inversion rows).
    #[arg(long, default_value_t = 5)]
    invert_steps: usize,
    /// Square matrix sizes for the peak matmul measurement (0 skips it).
    #[arg(long = "matmul", default_values_t = [512usize, 1024, 2048])]
    matmul: Vec<usize>,
    /// CPU threads for Flex and PyTorch alike (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// The Python with torch and transformers (tests/parity/requirements.txt) for the baseline.
    #[arg(long)]
    python: Option<String>,
    /// A baseline JSON saved before (`--save-baseline`), instead of running PyTorch.
    #[arg(long, conflicts_with = "python")]
    baseline: Option<PathBuf>,
    /// Save PyTorch's raw timings here (to rerun the table without it).
    #[arg(long)]
    save_baseline: Option<PathBuf>,
    /// Write the table into this Markdown file, between `<!-- bench speed -->` markers
    /// (appended if it has none).
    #[arg(long)]
    markdown: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

/// What `tests/bench/torch_speed.py` reads.
#[derive(Serialize)]
struct Spec {
    models: Vec<String>,
    threads: usize,
    runs: usize,
    batches: Vec<usize>,
    texts: Vec<String>,
    invert: Option<InvertSpec>,
    matmul: Vec<usize>,
}

#[derive(Serialize)]
struct InvertSpec {
    views: usize,
    steps: usize,
    learning_rate: f64,
    mean: [f32; 3],
    std: [f32; 3],
}

/// What it prints: seconds per call.
#[derive(Serialize, Deserialize, Default)]
pub struct TorchTimings {
    pub torch: String,
    pub transformers: String,
    pub threads: usize,
    pub matmul: std::collections::BTreeMap<String, Vec<f64>>,
    pub models: std::collections::BTreeMap<String, TorchModel>,
}

#[derive(Serialize, Deserialize, Default)]
pub struct TorchModel {
    pub attention: String,
    pub image: std::collections::BTreeMap<String, Vec<f64>>,
    pub text: Option<Vec<f64>>,
    pub invert: Option<Vec<f64>>,
}

/// One line of the table.
#[derive(Serialize, Clone, Debug)]
pub struct Row {
    /// e.g. "ViT-B/32 image, batch 32".
    pub task: String,
    pub model: String,
    /// Items per call (images, prompts, steps or 1).
    pub items: usize,
    /// "items/s" or "GFLOP/s".
    pub unit: String,
    pub pytorch: Option<f64>,
    /// Per backend name, items (or GFLOP) per second.
    pub ours: Vec<(String, Option<f64>)>,
    /// Image rows: FLOPs per call (the image tower, counted from the config).
    pub flops: Option<f64>,
}

/// Multiply-adds x 2 of the image tower and its projection for one image:
/// patch embedding, per layer the four attention projections, the two
/// attention products and the MLP. Layer norms, softmax and GELU are left
/// out (under 1%).
pub fn image_tower_flops(config: &ClipConfig) -> f64 {
    let v = &config.vision_config;
    let patches = (v.image_size / v.patch_size).pow(2) as f64;
    let tokens = patches + 1.0;
    let (d, m) = (v.hidden_size as f64, v.intermediate_size as f64);
    let patch_embed = patches * (v.num_channels * v.patch_size * v.patch_size) as f64 * d;
    let per_layer = 4.0 * tokens * d * d + 2.0 * tokens * tokens * d + 2.0 * tokens * d * m;
    2.0 * (patch_embed + v.num_hidden_layers as f64 * per_layer + d * config.projection_dim as f64)
}

fn backend_name(b: Backend) -> &'static str {
    match b {
        Backend::Cpu => "Flex CPU",
        Backend::Wgpu => "wgpu",
    }
}

fn timed(runs: usize, mut call: impl FnMut() -> Result<()>) -> Result<Vec<f64>> {
    call()?;
    let mut out = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        call()?;
        out.push(start.elapsed().as_secs_f64());
    }
    Ok(out)
}

fn random(shape: Vec<usize>, seed: u64, device: &burn::tensor::Device) -> Tensor<2> {
    let mut rng = Rng::new(seed);
    let n = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|_| rng.normal() as f32).collect();
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// Our timings of one model on one backend, keyed like the baseline's.
struct OurModel {
    image: Vec<(usize, Vec<f64>)>,
    text: Option<Vec<f64>>,
    invert: Option<Vec<f64>>,
}

fn measure_model(clip: &Clip, args: &BenchSpeedArgs) -> Result<OurModel> {
    let size = clip.config().vision_config.image_size;
    // The same timing loop as the browser's Speed page.
    let plan = SpeedPlan { batches: args.batches.clone(), texts: args.texts, runs: args.runs };
    let clock = Instant::now();
    let report = pollster::block_on(speed::measure(clip, &plan, || clock.elapsed().as_secs_f64(), async |_, _| true))?;
    let image = report.image.into_iter().map(|t| (t.batch, t.seconds)).collect();
    let text = report.text;
    let invert = if args.invert_steps > 0 {
        let dim = clip.config().projection_dim;
        let mut rng = Rng::new(7);
        let vector: Vec<f32> = (0..dim).map(|_| rng.normal() as f32).collect();
        let target = Target::combine(vec![embedding_term("random target", vector, 1.0)])?;
        let mut settings = Preset::Baseline.settings_for(size);
        settings.views = args.invert_views.max(1);
        settings.micro_batch = settings.views;
        settings.steps = args.invert_steps + 1;
        let mut inverter = Inverter::new(clip, &target, settings)?;
        let mut times = Vec::new();
        let mut first = true;
        while !inverter.done() {
            let start = Instant::now();
            pollster::block_on(inverter.step())?;
            if !std::mem::take(&mut first) {
                times.push(start.elapsed().as_secs_f64());
            }
        }
        Some(times)
    } else {
        None
    };
    Ok(OurModel { image, text, invert })
}

fn matmul_times(n: usize, runs: usize, device: &burn::tensor::Device) -> Result<Vec<f64>> {
    let a = random(vec![n, n], n as u64, device);
    let b = random(vec![n, n], n as u64 + 1, device);
    timed(runs, || pollster::block_on(read_vec(a.clone().matmul(b.clone()))).map(drop))
}

fn run_torch(python: &str, spec: &Spec) -> std::result::Result<TorchTimings, String> {
    let dir = super::bench::scratch_dir("speed").map_err(|e| e.to_string())?;
    let spec_path = dir.join("spec.json");
    std::fs::write(&spec_path, serde_json::to_vec(spec).expect("a spec serializes")).map_err(|e| e.to_string())?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bench/torch_speed.py");
    let out = Command::new(python)
        .arg(&script)
        .arg("--spec")
        .arg(&spec_path)
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {python} ({e})"));
    let _ = std::fs::remove_dir_all(&dir);
    let out = out?;
    if !out.status.success() {
        return Err(format!(
            "{python} {} failed (pip install -r tests/parity/requirements.txt)",
            script.display()
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("unreadable PyTorch output: {e}"))
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1)).map(|s| s.trim().to_string()))
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{cpu}, {cores} logical cores, {}", std::env::consts::OS)
}

fn per_second(items: usize, times: Option<&Vec<f64>>) -> Option<f64> {
    median(times?).map(|t| items as f64 / t)
}

/// The table's rows from our timings and PyTorch's (missing entries stay empty).
fn build_rows(
    args: &BenchSpeedArgs,
    names: &[(String, String, f64)],
    ours: &[(Backend, Vec<Option<OurModel>>, Vec<(usize, Vec<f64>)>)],
    torch: Option<&TorchTimings>,
) -> Vec<Row> {
    let mut rows = Vec::new();
    for &n in args.matmul.iter().filter(|&&n| n > 0) {
        let gflop = 2.0 * (n as f64).powi(3) / 1e9;
        rows.push(Row {
            task: format!("matmul {n}x{n} f32"),
            model: String::new(),
            items: 1,
            unit: "GFLOP/s".into(),
            pytorch: torch.and_then(|t| t.matmul.get(&n.to_string())).and_then(|v| median(v)).map(|s| gflop / s),
            ours: ours
                .iter()
                .map(|(b, _, mm)| {
                    let v = mm.iter().find(|(m, _)| *m == n).and_then(|(_, t)| median(t)).map(|s| gflop / s);
                    (backend_name(*b).to_string(), v)
                })
                .collect(),
            flops: None,
        });
    }
    for (i, (key, label, flops)) in names.iter().enumerate() {
        let theirs = torch.and_then(|t| t.models.get(key));
        let ours_of = |f: &dyn Fn(&OurModel) -> Option<f64>| -> Vec<(String, Option<f64>)> {
            ours.iter().map(|(b, models, _)| (backend_name(*b).to_string(), models[i].as_ref().and_then(f))).collect()
        };
        for (j, &batch) in args.batches.iter().enumerate() {
            let kind = if j == 0 { "latency" } else { "throughput" };
            rows.push(Row {
                task: format!("image embedding, batch {batch} ({kind})"),
                model: label.clone(),
                items: batch,
                unit: "images/s".into(),
                pytorch: theirs.and_then(|t| per_second(batch, t.image.get(&batch.to_string()))),
                ours: ours_of(&|m| per_second(batch, m.image.iter().find(|(b, _)| *b == batch).map(|(_, t)| t))),
                flops: Some(flops * batch as f64),
            });
        }
        if args.texts > 0 {
            rows.push(Row {
                task: format!("text embedding, {} prompts", args.texts),
                model: label.clone(),
                items: args.texts,
                unit: "prompts/s".into(),
                pytorch: theirs.and_then(|t| per_second(args.texts, t.text.as_ref())),
                ours: ours_of(&|m| per_second(args.texts, m.text.as_ref())),
                flops: None,
            });
        }
        if args.invert_steps > 0 {
            rows.push(Row {
                task: format!("inversion step, {} views", args.invert_views),
                model: label.clone(),
                items: 1,
                unit: "steps/s".into(),
                pytorch: theirs.and_then(|t| per_second(1, t.invert.as_ref())),
                ours: ours_of(&|m| per_second(1, m.invert.as_ref())),
                flops: None,
            });
        }
    }
    rows
}

fn ratio(ours: Option<f64>, theirs: Option<f64>) -> Option<f64> {
    Some(ours? / theirs?)
}

/// The Markdown table: rates, then each backend's ratio to PyTorch, then (image rows)
/// achieved GFLOP/s as a share of the best measured matmul.
pub fn markdown_table(rows: &[Row], peak_gflops: Option<f64>) -> String {
    let backends: Vec<String> = rows.first().map(|r| r.ours.iter().map(|(n, _)| n.clone()).collect()).unwrap_or_default();
    let mut out = String::from("| task | model | unit | PyTorch |");
    for b in &backends {
        out.push_str(&format!(" {b} | {b} / PyTorch |"));
    }
    out.push_str(" achieved GFLOP/s (share of peak) |\n|---|---|---|---:|");
    for _ in &backends {
        out.push_str("---:|---:|");
    }
    out.push_str("---|\n");
    for r in rows {
        out.push_str(&format!("| {} | {} | {} | {} |", r.task, r.model, r.unit, format_rate(r.pytorch)));
        for (_, v) in &r.ours {
            let x = ratio(*v, r.pytorch).map_or("—".into(), |x| format!("**{x:.2}x**"));
            out.push_str(&format!(" {} | {x} |", format_rate(*v)));
        }
        // Per call of the row: FLOP/s from items/s, with the share of the peak when there is one.
        let achieved = r.flops.map(|f| {
            let gflops = |label: &str, rate: Option<f64>| match (rate, peak_gflops) {
                (Some(rate), Some(peak)) => {
                    let g = f / r.items as f64 * rate / 1e9;
                    format!("{label} {g:.0} ({:.0}%)", 100.0 * g / peak)
                }
                (Some(rate), None) => format!("{label} {:.0}", f / r.items as f64 * rate / 1e9),
                (None, _) => format!("{label} —"),
            };
            r.ours
                .iter()
                .map(|(b, v)| gflops(b, *v))
                .chain(r.pytorch.map(|rate| gflops("PyTorch", Some(rate))))
                .collect::<Vec<_>>()
                .join("; ")
        });
        out.push_str(&format!(" {} |\n", achieved.unwrap_or_default()));
    }
    out
}

/// Writes `section` into the Markdown file at `path` between its `<!-- name -->` markers.
pub fn write_section(path: &Path, name: &str, section: &str) -> Result<()> {
    let old = std::fs::read_to_string(path).unwrap_or_default();
    std::fs::write(path, splice_section_named(&old, name, section)).map_err(|e| Error::io(path.display().to_string(), e))?;
    eprintln!("wrote the table into {}", path.display());
    Ok(())
}

/// Replaces the text between `<!-- NAME -->` and `<!-- /NAME -->`, or appends it.
pub fn splice_section_named(document: &str, name: &str, section: &str) -> String {
    let open = format!("<!-- {name} -->");
    let close = format!("<!-- /{name} -->");
    let block = format!("{open}\n{section}{close}");
    match (document.find(&open), document.find(&close)) {
        (Some(a), Some(b)) if b > a => format!("{}{block}{}", &document[..a], &document[b + close.len()..]),
        _ if document.is_empty() => format!("{block}\n"),
        _ => format!("{}\n\n{block}\n", document.trim_end()),
    }
}

pub fn bench_speed(args: BenchSpeedArgs) -> Result<ExitCode> {
    if args.runs == 0 || args.batches.is_empty() || args.batches.contains(&0) {
        return Err(Error::usage("bench speed", "--runs and every --batch must be at least 1"));
    }
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    // Before any parallel work: rayon's global pool (Flex's threads) reads it once.
    // SAFETY: no other thread exists yet.
    unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.to_string()) };

    // A saved baseline is read first: a bad file should not cost the timings.
    let saved = match &args.baseline {
        Some(path) => {
            let bytes = cliplens::native::read(path)?;
            let t: TorchTimings = serde_json::from_slice(&bytes)
                .map_err(|e| Error::usage(path.display().to_string(), format!("not a saved PyTorch baseline ({e})")))?;
            Some(t)
        }
        None => None,
    };
    let mut names = Vec::new();
    let mut files = Vec::new();
    for path in &args.models {
        let model = read_model(path)?;
        let config = ClipConfig::from_json(&model.config.1, &model.config.0)?;
        let v = &config.vision_config;
        let label = format!(
            "{} (ViT {}x{}, patch {}, width {})",
            cliplens::native::dir_name(path).unwrap_or_else(|| path.display().to_string()),
            v.image_size,
            v.image_size,
            v.patch_size,
            v.hidden_size
        );
        names.push((path.display().to_string(), label, image_tower_flops(&config)));
        files.push(model);
    }

    let mut ours = Vec::new();
    for &backend in &args.backends {
        let device = match device(backend) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("{} skipped: {e}", backend_name(backend));
                continue;
            }
        };
        let mut models = Vec::new();
        for (files, (_, label, _)) in files.iter().zip(&names) {
            eprintln!("timing {label} on {}...", backend_name(backend));
            let clip = Clip::load(files, &device)?;
            models.push(Some(measure_model(&clip, &args)?));
        }
        let mut matmul = Vec::new();
        for &n in args.matmul.iter().filter(|&&n| n > 0) {
            matmul.push((n, matmul_times(n, args.runs, &device)?));
        }
        ours.push((backend, models, matmul));
    }

    // PyTorch's pixels are normalized as OpenAI's processor does; the values set what the
    // inversion sees, not how much work a step is.
    let openai = cliplens::config::PreprocessConfig::openai(224);
    let spec = Spec {
        models: names.iter().map(|(k, _, _)| k.clone()).collect(),
        threads,
        runs: args.runs,
        batches: args.batches.clone(),
        texts: prompts(args.texts),
        invert: (args.invert_steps > 0).then(|| InvertSpec {
            views: args.invert_views.max(1),
            steps: args.invert_steps,
            learning_rate: Preset::Baseline.settings().learning_rate,
            mean: openai.image_mean,
            std: openai.image_std,
        }),
        matmul: args.matmul.iter().copied().filter(|&n| n > 0).collect(),
    };
    let (torch, torch_error) = match (&args.python, &args.baseline) {
        (Some(python), _) => {
            eprintln!("timing PyTorch ({python} tests/bench/torch_speed.py)...");
            match run_torch(python, &spec) {
                Ok(t) => (Some(t), None),
                Err(e) => (None, Some(e)),
            }
        }
        (None, Some(_)) => (saved, None),
        (None, None) => (None, Some("no baseline: pass --python PY (torch and transformers) or --baseline FILE".into())),
    };
    if let (Some(t), Some(path)) = (&torch, &args.save_baseline) {
        std::fs::write(path, serde_json::to_vec_pretty(t).expect("timings serialize"))
            .map_err(|e| Error::io(path.display().to_string(), e))?;
    }

    let rows = build_rows(&args, &names, &ours, torch.as_ref());
    let peak = rows
        .iter()
        .filter(|r| r.unit == "GFLOP/s")
        .flat_map(|r| r.ours.iter().filter(|(b, _)| b.starts_with("Flex")).filter_map(|(_, v)| *v).chain(r.pytorch))
        .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
    let torch_label = torch.as_ref().map(|t| format!("PyTorch {} + transformers {} ({} threads)", t.torch, t.transformers, t.threads));

    if args.json {
        let value = json!({
            "machine": machine(),
            "threads": threads,
            "runs": args.runs,
            "baseline": torch_label,
            "baseline_error": torch_error,
            "peak_matmul_gflops": peak,
            "rows": rows.iter().map(|r| json!({
                "task": r.task, "model": r.model, "unit": r.unit, "items": r.items,
                "pytorch": r.pytorch,
                "ours": r.ours.iter().map(|(b, v)| json!({"backend": b, "rate": v, "vs_pytorch": ratio(*v, r.pytorch)})).collect::<Vec<_>>(),
                "flops_per_call": r.flops,
            })).collect::<Vec<_>>(),
        });
        println!("{value}");
    }
    let table = markdown_table(&rows, peak);
    let mut section = format!(
        "Machine: {}. Threads: {threads} (Flex and PyTorch). Medians of {} timed calls after one warm-up. \
         Baseline: {}. Ratios are PyTorch's time over ours (above 1: CLIP Lens is faster). \
         Peak: the best measured CPU matmul{}.\n\n{table}",
        machine(),
        args.runs,
        torch_label.clone().unwrap_or_else(|| "none".into()),
        peak.map_or(String::new(), |p| format!(" ({p:.0} GFLOP/s)")),
    );
    if let Some(e) = &torch_error {
        section.push_str(&format!("\nBaseline unavailable: {e}\n"));
    }
    if !args.json {
        println!("{section}");
    }
    if let Some(path) = &args.markdown {
        write_section(path, "bench speed", &section)?;
    }
    Ok(ExitCode::SUCCESS)
}
