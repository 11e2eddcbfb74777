//! `cliplens bench browser`: CLIP Lens against transformers.js in the same
//! headless Chromium on the same weights, driven by `tests/browser/speed.mjs`:
//! time from navigation to a ready model (cold and warm) and the Speed page's
//! plan (`cliplens::speed`: image embedding latency and throughput, the text
//! tower), on WebGPU and on each one's CPU path (CLIP Lens' Flex fallback,
//! transformers.js' WASM). Ratios are transformers.js' time over ours: above
//! 1, CLIP Lens is faster.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::{Args, ValueEnum};
use cliplens::speed::{SpeedPlan, SpeedReport, format_rate, median};
use cliplens::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::bench_speed::write_section;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Device {
    Webgpu,
    Cpu,
}

impl Device {
    fn key(self) -> &'static str {
        match self {
            Device::Webgpu => "webgpu",
            Device::Cpu => "cpu",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Side {
    Cliplens,
    #[value(name = "transformers.js")]
    TransformersJs,
}

#[derive(Args)]
pub struct BenchBrowserArgs {
    /// The checkpoint both load (Hugging Face layout; `tests/parity/make_fixtures.py full --arch b32`).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Its ONNX export for transformers.js (`tests/bench/export_onnx.py MODEL OUT`).
    #[arg(long)]
    onnx: Option<PathBuf>,
    /// The built app (`trunk build --release`).
    #[arg(long, default_value = "dist")]
    dist: PathBuf,
    /// Where `npm ci --prefix tests/bench --ignore-scripts` put @huggingface/transformers.
    #[arg(long, default_value = "tests/bench/node_modules")]
    node_modules: PathBuf,
    #[arg(long, default_value = "/usr/bin/chromium")]
    chromium: PathBuf,
    /// Devices to time (repeat for both): CLIP Lens' WebGPU path against transformers.js'
    /// WebGPU, its CPU fallback against transformers.js' WASM.
    #[arg(long = "device", value_enum, default_values_t = [Device::Webgpu, Device::Cpu])]
    devices: Vec<Device>,
    /// Which side to run (repeat for both; one alone, saved, joins the other with --measured).
    #[arg(long = "contender", value_enum, default_values_t = [Side::Cliplens, Side::TransformersJs])]
    contenders: Vec<Side>,
    /// Image batch sizes: the first is reported as latency, the others as throughput.
    #[arg(long = "batch", default_values_t = [1usize, 32])]
    batches: Vec<usize>,
    /// Prompts in the text batch (0 skips it).
    #[arg(long, default_value_t = 32)]
    texts: usize,
    /// Timed calls per measurement (the median is reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Page loads per ready-time measurement (cold: fresh contexts; warm: reloads).
    #[arg(long, default_value_t = 3)]
    loads: usize,
    /// transformers.js' weights (`fp32`: the ONNX export as it is).
    #[arg(long, default_value = "fp32")]
    dtype: String,
    /// Measurements saved before (`--save-measured`), instead of running the browser; repeat
    /// to put runs with different plans (e.g. WebGPU and CPU) in one table.
    #[arg(long, conflicts_with_all = ["model", "onnx"])]
    measured: Vec<PathBuf>,
    /// Save the raw measurement here (to rebuild the table without the browser).
    #[arg(long)]
    save_measured: Option<PathBuf>,
    /// Write the table into this Markdown file, between `<!-- bench browser -->` markers.
    #[arg(long)]
    markdown: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

/// What `speed.mjs` prints.
#[derive(Serialize, Deserialize)]
pub struct Measured {
    pub chromium: String,
    pub transformers_js: String,
    pub results: Vec<Contender>,
}

#[derive(Serialize, Deserialize)]
pub struct Contender {
    /// "cliplens" or "transformers.js".
    pub contender: String,
    /// "webgpu" or "cpu".
    pub device: String,
    #[serde(default)]
    pub backend: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub cold_s: Vec<f64>,
    #[serde(default)]
    pub warm_s: Vec<f64>,
    #[serde(default)]
    pub report: Option<SpeedReport>,
}

/// One line of the table: per device, (CLIP Lens, transformers.js) values.
#[derive(Serialize, Clone, Debug)]
pub struct Row {
    pub task: String,
    pub unit: String,
    /// Higher is better (a rate) or lower is (seconds).
    pub higher_is_better: bool,
    pub cells: Vec<Cell>,
}

#[derive(Serialize, Clone, Debug)]
pub struct Cell {
    pub device: String,
    pub cliplens: Option<f64>,
    pub transformers_js: Option<f64>,
    /// Above 1: CLIP Lens is faster.
    pub ratio: Option<f64>,
}

fn find<'a>(m: &'a Measured, contender: &str, device: &str) -> Option<&'a Contender> {
    m.results.iter().find(|r| r.contender == contender && r.device == device && r.error.is_none())
}

/// The plan the table shows: every batch size and the largest text batch any run timed.
pub fn table_plan(m: &Measured) -> SpeedPlan {
    let mut plan = SpeedPlan { batches: Vec::new(), texts: 0, runs: 0 };
    for r in m.results.iter().filter_map(|r| r.report.as_ref()) {
        for &b in &r.plan.batches {
            if !plan.batches.contains(&b) {
                plan.batches.push(b);
            }
        }
        plan.texts = plan.texts.max(r.plan.texts);
        plan.runs = plan.runs.max(r.plan.runs);
    }
    plan
}

/// The table's rows for `devices` (missing measurements stay empty).
pub fn rows(m: &Measured, plan: &SpeedPlan, devices: &[&str]) -> Vec<Row> {
    let cell = |device: &str, higher: bool, value: &dyn Fn(&Contender) -> Option<f64>| {
        let ours = find(m, "cliplens", device).and_then(value);
        let theirs = find(m, "transformers.js", device).and_then(value);
        let ratio = ours.zip(theirs).map(|(o, t)| if higher { o / t } else { t / o });
        Cell { device: device.to_string(), cliplens: ours, transformers_js: theirs, ratio }
    };
    let mut out = Vec::new();
    for (i, &batch) in plan.batches.iter().enumerate() {
        let kind = if i == 0 { "latency" } else { "throughput" };
        let rate = move |c: &Contender| {
            let t = c.report.as_ref()?.image.iter().find(|t| t.batch == batch)?;
            median(&t.seconds).map(|s| batch as f64 / s)
        };
        out.push(Row {
            task: format!("image embedding, batch {batch} ({kind})"),
            unit: "images/s".into(),
            higher_is_better: true,
            cells: devices.iter().map(|d| cell(d, true, &rate)).collect(),
        });
    }
    if plan.texts > 0 {
        let texts = plan.texts;
        // Only runs of this many prompts fill the row.
        let rate = move |c: &Contender| {
            let r = c.report.as_ref().filter(|r| r.plan.texts == texts)?;
            median(r.text.as_ref()?).map(|s| texts as f64 / s)
        };
        out.push(Row {
            task: format!("text embedding, {texts} prompts"),
            unit: "prompts/s".into(),
            higher_is_better: true,
            cells: devices.iter().map(|d| cell(d, true, &rate)).collect(),
        });
    }
    let cold = |c: &Contender| median(&c.cold_s);
    let warm = |c: &Contender| median(&c.warm_s);
    out.push(Row { task: "navigation to a ready model, cold".into(), unit: "s".into(), higher_is_better: false, cells: devices.iter().map(|d| cell(d, false, &cold)).collect() });
    out.push(Row { task: "navigation to a ready model, warm".into(), unit: "s".into(), higher_is_better: false, cells: devices.iter().map(|d| cell(d, false, &warm)).collect() });
    out
}

fn device_names(device: &str) -> (&'static str, &'static str) {
    if device == "webgpu" { ("CLIP Lens WebGPU", "transformers.js WebGPU") } else { ("CLIP Lens CPU (Flex)", "transformers.js WASM") }
}

/// The Markdown table of `rows`.
pub fn table(rows: &[Row]) -> String {
    let Some(first) = rows.first() else { return String::new() };
    let mut header = String::from("| task | unit |");
    let mut rule = String::from("|---|---|");
    for c in &first.cells {
        let (ours, theirs) = device_names(&c.device);
        header.push_str(&format!(" {ours} | {theirs} | {ours} / {theirs} |"));
        rule.push_str("---:|---:|---:|");
    }
    let mut t = format!("{header}\n{rule}\n");
    for r in rows {
        t.push_str(&format!("| {} | {} |", r.task, r.unit));
        for c in &r.cells {
            let ratio = c.ratio.map(|x| format!("**{x:.2}x**")).unwrap_or_else(|| "—".into());
            t.push_str(&format!(" {} | {} | {ratio} |", format_rate(c.cliplens), format_rate(c.transformers_js)));
        }
        t.push('\n');
    }
    t
}

fn run_browser(args: &BenchBrowserArgs, plan: &SpeedPlan) -> Result<Vec<u8>> {
    let usage = |what: String| Error::usage("bench browser", what);
    let (Some(model), Some(onnx)) = (&args.model, &args.onnx) else {
        return Err(usage("give --model and --onnx (or --measured FILE)".into()));
    };
    let canonical = |p: &Path| std::fs::canonicalize(p).map_err(|e| Error::io(p.display().to_string(), e));
    let (model, onnx, dist, node_modules) = (canonical(model)?, canonical(onnx)?, canonical(&args.dist)?, canonical(&args.node_modules)?);
    for (dir, file, hint) in [
        (&dist, "index.html", "build the app with `trunk build --release`"),
        (&model, "model.safetensors", "tests/parity/make_fixtures.py full --arch b32"),
        (&onnx, "onnx/vision_model.onnx", "tests/bench/export_onnx.py MODEL OUT"),
        (&node_modules, "@huggingface/transformers/package.json", "npm ci --prefix tests/bench --ignore-scripts"),
    ] {
        if !dir.join(file).is_file() {
            return Err(usage(format!("{}: no {file} ({hint})", dir.display())));
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let spec = json!({
        "dist": dist, "headers": root.join("www/_headers"), "chromium": args.chromium,
        "model": model, "onnx": onnx, "node_modules": node_modules,
        "devices": args.devices.iter().map(|d| d.key()).collect::<Vec<_>>(),
        "contenders": args.contenders.iter().map(|c| match c { Side::Cliplens => "cliplens", Side::TransformersJs => "transformers.js" }).collect::<Vec<_>>(),
        "loads": args.loads.max(1), "dtype": args.dtype, "plan": plan,
    });
    let dir = super::bench::scratch_dir("browser").map_err(|e| Error::io(std::env::temp_dir().display().to_string(), e))?;
    let spec_path = dir.join("spec.json");
    std::fs::write(&spec_path, spec.to_string()).map_err(|e| Error::io(spec_path.display().to_string(), e))?;
    let out = Command::new("node").arg(root.join("tests/browser/speed.mjs")).arg(&spec_path).stderr(std::process::Stdio::inherit()).output();
    let _ = std::fs::remove_dir_all(&dir);
    let out = out.map_err(|e| usage(format!("cannot run node ({e})")))?;
    if !out.status.success() {
        return Err(usage("tests/browser/speed.mjs failed (see above)".into()));
    }
    Ok(out.stdout)
}

pub fn bench_browser(args: BenchBrowserArgs) -> Result<ExitCode> {
    let plan = SpeedPlan { batches: args.batches.clone(), texts: args.texts, runs: args.runs };
    if let Some(problem) = plan.problem() {
        return Err(Error::usage("bench browser", problem));
    }
    let read = |bytes: &[u8], source: &str| -> Result<Measured> {
        serde_json::from_slice(bytes).map_err(|e| Error::usage("bench browser", format!("{source}: unreadable measurement: {e}")))
    };
    let m = if args.measured.is_empty() {
        let bytes = run_browser(&args, &plan)?;
        if let Some(path) = &args.save_measured {
            std::fs::write(path, &bytes).map_err(|e| Error::io(path.display().to_string(), e))?;
        }
        read(&bytes, "speed.mjs")?
    } else {
        let mut all: Option<Measured> = None;
        for path in &args.measured {
            let m = read(&std::fs::read(path).map_err(|e| Error::io(path.display().to_string(), e))?, &path.display().to_string())?;
            match &mut all {
                Some(a) => a.results.extend(m.results),
                None => all = Some(m),
            }
        }
        all.expect("at least one measurement")
    };
    // Saved runs bring their own plans; the devices are the ones measured.
    let plan = if args.measured.is_empty() { plan } else { table_plan(&m) };
    let mut devices: Vec<&str> = args.devices.iter().map(|d| d.key()).filter(|d| m.results.iter().any(|r| r.device == *d)).collect();
    if devices.is_empty() {
        devices = args.devices.iter().map(|d| d.key()).collect();
    }
    let rows = rows(&m, &plan, &devices);
    let failures: Vec<String> = m
        .results
        .iter()
        .filter_map(|r| r.error.as_ref().map(|e| format!("{} on {}: {e}", r.contender, r.device)))
        .collect();
    if args.json {
        println!("{}", json!({ "chromium": m.chromium, "transformers_js": m.transformers_js, "plan": plan, "rows": rows, "failures": failures }));
    }
    let ran_on: Vec<String> = m
        .results
        .iter()
        .filter(|r| r.error.is_none())
        .map(|r| {
            format!(
                "{} on {}: {} ({} timed calls per row, {} cold and {} warm loads)",
                if r.contender == "cliplens" { "CLIP Lens" } else { "transformers.js" },
                r.device,
                r.backend.as_deref().unwrap_or("?").trim(),
                r.report.as_ref().map_or(0, |x| x.plan.runs),
                r.cold_s.len(),
                r.warm_s.len()
            )
        })
        .collect();
    let mut section = format!(
        "Headless Chromium {}, transformers.js {} ({} weights), CLIP Lens with the same checkpoint loaded through the stand-in Hub \
         (int8, as for any Hub model). Medians of the timed calls after one warm-up each, and of the page loads (counts below). \
         Ratios are transformers.js' time over CLIP Lens' (above 1: CLIP Lens is faster); — where a run did not time that row.\n\n{}",
        m.chromium,
        m.transformers_js,
        args.dtype,
        table(&rows)
    );
    section.push_str(&format!("\nWhat each ran on: {}.\n", ran_on.join("; ")));
    if !failures.is_empty() {
        section.push_str(&format!("\nFailed: {}.\n", failures.join("; ")));
    }
    if !args.json {
        println!("{section}");
    }
    if let Some(path) = &args.markdown {
        write_section(path, "bench browser", &section)?;
    }
    Ok(ExitCode::SUCCESS)
}
