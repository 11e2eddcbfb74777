//! `cliplens`: the command-line face of CLIP Lens. Every study the web app
//! offers runs here too, with `--json` output for scripts. Each subcommand
//! lives in its own file under `cli/`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use cliplens::Result;

mod cli;

#[derive(Parser)]
#[command(name = "cliplens", version, about = "Look inside CLIP models: embed, compare, invert, decompose into concepts, audit for bias, quantize")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Embed images and prompts and print their cosine similarity matrix.
    Embed(cli::embed::EmbedArgs),
    /// Write CLIP Lens' int8 format and report its size and embedding error.
    Quantize(cli::quantize::QuantizeArgs),
    /// Optimize an image until the model sees the prompt in it (inversion), and save it as PNG.
    Invert(cli::invert::InvertArgs),
    /// Write image embeddings as sparse mixes of words (SpLiCE): one chart, or one JSON object, per image.
    Decompose(cli::concepts::DecomposeArgs),
    /// Concept studies of whole folders: compare two, a folder's histogram or search, intervention, image means.
    Concepts {
        #[command(subcommand)]
        action: cli::concepts::ConceptsCommand,
    },
    /// The bias audit: prompt associations, a folder of images, CLIP-debias, the inversion probe, the report.
    Audit {
        #[command(subcommand)]
        action: cli::audit::AuditCommand,
    },
    /// Probes from the CLIP literature: the modality gap, attribution, concept association, social perception, fooling images.
    Probe {
        #[command(subcommand)]
        action: cli::probe::ProbeCommand,
    },
    /// Benchmarks, each printed against a named baseline.
    Bench {
        #[command(subcommand)]
        action: cli::bench::BenchCommand,
    },
    /// The synthetic world the embedded model is trained on.
    World {
        #[command(subcommand)]
        action: cli::world::WorldCommand,
    },
    /// Train a world model from scratch (resumes from OUT/checkpoint if a run was interrupted).
    TrainWorld(cli::train_world::TrainWorldArgs),
    /// Add (or refresh) a model directory's entry in a manifest: size and sha256 of each of its files.
    Manifest(cli::manifest::ManifestArgs),
    /// Download the real OpenAI CLIP checkpoints, verify them and write int8 files plus a manifest.
    PrepareModels(cli::prepare_models::PrepareModelsArgs),
}

fn main() -> ExitCode {
    reuse_freed_memory();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Flex allocates a new buffer for every op's output (tens of MB each at batch 32).
/// glibc's malloc hands blocks that large back to the kernel when they are freed,
/// so every op paid again for page faults and zeroed pages: 10-20% of a ViT-B/32
/// forward pass under `perf` (BENCHMARKS.md). Freed memory kept in the heap is
/// reused by the next op instead; the process keeps at most 1 GiB of it.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn reuse_freed_memory() {
    // SAFETY: mallopt only changes glibc's allocator settings; nothing has allocated
    // from another thread yet.
    unsafe {
        // Some glibc builds refuse a threshold above 32 MiB (half their heap size);
        // 32 MiB still covers one batch-32 MLP activation (20 MB).
        let threshold_set = libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30) == 1 || libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20) == 1;
        // Setting the trim threshold alone would freeze the mmap threshold at its
        // 128 KiB default (glibc stops raising it): all or nothing.
        if threshold_set {
            libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn reuse_freed_memory() {}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Embed(args) => cli::embed::run(args),
        Command::Quantize(args) => cli::quantize::run(args),
        Command::Invert(args) => cli::invert::run(args),
        Command::Decompose(args) => cli::concepts::run_decompose(args),
        Command::Concepts { action } => cli::concepts::run(action),
        Command::Audit { action } => cli::audit::run(action),
        Command::Probe { action } => cli::probe::run(action),
        Command::Bench { action } => cli::bench::run(action),
        Command::World { action } => cli::world::run(action),
        Command::TrainWorld(args) => cli::train_world::run(args),
        Command::Manifest(args) => cli::manifest::run(args),
        Command::PrepareModels(args) => cli::prepare_models::run(args),
    }
}
