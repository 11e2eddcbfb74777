//! `cliplens bench footprint`: what a first visit downloads (every file the
//! app's origin serves until the embedded model is ready, raw, gzip -9 and
//! brotli -q 11) and the time from navigation to a ready model, cold and
//! warm, measured in headless Chromium by `tests/browser/footprint.mjs`;
//! against the runtime files a transformers.js page fetches (its JavaScript
//! and onnxruntime-web's wasm, from npm).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::{Args, ValueEnum};
use cliplens::{Error, Result};
use serde::Deserialize;
use serde_json::json;

use super::bench_speed::{median, write_section};

#[derive(Clone, Copy, ValueEnum)]
pub enum Mode {
    Webgpu,
    Cpu,
}

#[derive(Args)]
pub struct BenchFootprintArgs {
    /// The built app (`trunk build --release`).
    #[arg(long, default_value = "dist")]
    dist: PathBuf,
    /// Where `npm ci --prefix tests/bench --ignore-scripts` put @huggingface/transformers.
    #[arg(long, default_value = "tests/bench/node_modules")]
    node_modules: PathBuf,
    #[arg(long, default_value = "/usr/bin/chromium")]
    chromium: PathBuf,
    /// The browser's backend (WebGPU needs --enable-unsafe-webgpu, which the script passes).
    #[arg(long, value_enum, default_value_t = Mode::Cpu)]
    mode: Mode,
    /// Page loads per measurement (cold: fresh contexts; warm: reloads).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Write the table into this Markdown file, between `<!-- bench footprint -->` markers.
    #[arg(long)]
    markdown: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

#[derive(Deserialize)]
struct Measured {
    backend: String,
    status: String,
    cold_s: Vec<f64>,
    warm_s: Vec<f64>,
    files: Vec<FileSize>,
    compare: Vec<Runtime>,
}

#[derive(Deserialize, Clone)]
pub struct FileSize {
    pub path: String,
    pub raw: u64,
    pub gzip: u64,
    pub brotli: u64,
}

#[derive(Deserialize)]
struct Runtime {
    name: String,
    files: Vec<FileSize>,
}

/// transformers.js' runtime for WebGPU and WASM alike: `transformers.min.js`
/// (the self-contained bundle a page loads without a bundler: onnxruntime-web's
/// JavaScript included; `transformers.web.min.js` imports it by bare
/// specifiers), and the onnxruntime-web build it loads by default (`.asyncify` since v4).
fn transformers_js_files(node_modules: &Path) -> Option<(String, Vec<PathBuf>)> {
    let tjs = node_modules.join("@huggingface/transformers");
    let version = std::fs::read_to_string(tjs.join("package.json")).ok()?;
    let version: serde_json::Value = serde_json::from_str(&version).ok()?;
    let ort = node_modules.join("onnxruntime-web/dist");
    let files = vec![
        tjs.join("dist/transformers.min.js"),
        ort.join("ort-wasm-simd-threaded.asyncify.mjs"),
        ort.join("ort-wasm-simd-threaded.asyncify.wasm"),
    ];
    files.iter().all(|f| f.is_file()).then(|| (format!("transformers.js {}", version["version"].as_str().unwrap_or("?")), files))
}

fn sum(files: &[FileSize], keep: impl Fn(&FileSize) -> bool) -> (u64, u64, u64) {
    files.iter().filter(|f| keep(f)).fold((0, 0, 0), |(r, g, b), f| (r + f.raw, g + f.gzip, b + f.brotli))
}

fn kb(bytes: u64) -> String {
    format!("{:.0}", bytes as f64 / 1e3)
}

fn is_wasm(f: &FileSize) -> bool {
    f.path.ends_with(".wasm")
}

fn is_model(f: &FileSize) -> bool {
    f.path.starts_with("/models/")
}

pub fn bench_footprint(args: BenchFootprintArgs) -> Result<ExitCode> {
    let dist = std::fs::canonicalize(&args.dist).map_err(|e| Error::io(args.dist.display().to_string(), e))?;
    if !dist.join("index.html").is_file() {
        return Err(Error::usage("--dist", format!("{}: no index.html (build the app with `trunk build --release`)", dist.display())));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let compare: Vec<(String, Vec<PathBuf>)> = transformers_js_files(&args.node_modules).into_iter().collect();
    if compare.is_empty() {
        eprintln!("transformers.js not found under {} (npm ci --prefix tests/bench --ignore-scripts): measuring CLIP Lens alone", args.node_modules.display());
    }
    let spec = json!({
        "dist": dist,
        "headers": root.join("www/_headers"),
        "chromium": args.chromium,
        "mode": match args.mode { Mode::Webgpu => "webgpu", Mode::Cpu => "cpu" },
        "runs": args.runs.max(1),
        "compare": compare.iter().map(|(name, files)| json!({"name": name, "files": files})).collect::<Vec<_>>(),
    });
    let dir = super::bench::scratch_dir("footprint").map_err(|e| Error::io(std::env::temp_dir().display().to_string(), e))?;
    let spec_path = dir.join("spec.json");
    std::fs::write(&spec_path, spec.to_string()).map_err(|e| Error::io(spec_path.display().to_string(), e))?;
    eprintln!("loading the app in Chromium ({} cold and {} warm loads)...", args.runs.max(1), args.runs.max(1));
    let out = Command::new("node")
        .arg(root.join("tests/browser/footprint.mjs"))
        .arg(&spec_path)
        .stderr(std::process::Stdio::inherit())
        .output();
    let _ = std::fs::remove_dir_all(&dir);
    let out = out.map_err(|e| Error::usage("bench footprint", format!("cannot run node ({e})")))?;
    if !out.status.success() {
        return Err(Error::usage("bench footprint", "tests/browser/footprint.mjs failed (see above)"));
    }
    let m: Measured = serde_json::from_slice(&out.stdout)
        .map_err(|e| Error::usage("bench footprint", format!("unreadable output of footprint.mjs: {e}")))?;

    let code = sum(&m.files, |f| !is_model(f));
    let wasm = sum(&m.files, is_wasm);
    let model = sum(&m.files, is_model);
    if args.json {
        println!(
            "{}",
            json!({
                "backend": m.backend, "status": m.status,
                "cold_s": m.cold_s, "warm_s": m.warm_s,
                "files": m.files.iter().map(|f| json!({"path": f.path, "raw": f.raw, "gzip": f.gzip, "brotli": f.brotli})).collect::<Vec<_>>(),
                "cliplens": {"code": code, "wasm": wasm, "model": model},
                "compare": m.compare.iter().map(|r| json!({"name": r.name, "total": sum(&r.files, |_| true), "wasm": sum(&r.files, is_wasm),
                    "files": r.files.iter().map(|f| json!({"path": f.path, "raw": f.raw, "gzip": f.gzip, "brotli": f.brotli})).collect::<Vec<_>>()})).collect::<Vec<_>>(),
            })
        );
    }
    let mut t = String::from("| files | raw kB | gzip kB | brotli kB |\n|---|---:|---:|---:|\n");
    for f in &m.files {
        t.push_str(&format!("| CLIP Lens `{}` | {} | {} | {} |\n", f.path, kb(f.raw), kb(f.gzip), kb(f.brotli)));
    }
    let row = |name: &str, (r, g, b): (u64, u64, u64)| format!("| **{name}** | **{}** | **{}** | **{}** |\n", kb(r), kb(g), kb(b));
    t.push_str(&row("CLIP Lens wasm (page + worker)", wasm));
    t.push_str(&row("CLIP Lens app code (wasm, JS, HTML, CSS)", code));
    t.push_str(&row("CLIP Lens embedded model files", model));
    for r in &m.compare {
        for f in &r.files {
            t.push_str(&format!("| {} `{}` | {} | {} | {} |\n", r.name, f.path, kb(f.raw), kb(f.gzip), kb(f.brotli)));
        }
        t.push_str(&row(&format!("{} runtime (JS + wasm)", r.name), sum(&r.files, |_| true)));
        let theirs = sum(&r.files, is_wasm);
        t.push_str(&row(&format!("{} wasm", r.name), theirs));
        t.push_str(&format!(
            "\nCLIP Lens wasm / {} wasm: {:.2}x gzip, {:.2}x brotli (below 1: CLIP Lens downloads less).\n",
            r.name,
            wasm.1 as f64 / theirs.1.max(1) as f64,
            wasm.2 as f64 / theirs.2.max(1) as f64
        ));
    }
    let mode = match args.mode {
        Mode::Webgpu => "WebGPU",
        Mode::Cpu => "CPU",
    };
    let fmt = |v: &[f64]| v.iter().map(|x| format!("{x:.1}")).collect::<Vec<_>>().join(", ");
    let section = format!(
        "First visit in headless Chromium ({mode} mode; the page's badge: \"{}\"): every file the app's origin served \
         until the embedded model was ready (kB = 1000 bytes).\n\n{t}\n\
         Navigation to a ready model (\"{}\"): cold (empty caches) median {:.1} s ({}); warm (reload, model from Cache Storage) median {:.1} s ({}).\n",
        m.backend.trim(),
        m.status.split(';').next().unwrap_or("").trim(),
        median(&m.cold_s).unwrap_or(f64::NAN),
        fmt(&m.cold_s),
        median(&m.warm_s).unwrap_or(f64::NAN),
        fmt(&m.warm_s),
    );
    if !args.json {
        println!("{section}");
    }
    if let Some(path) = &args.markdown {
        write_section(path, "bench footprint", &section)?;
    }
    Ok(ExitCode::SUCCESS)
}
