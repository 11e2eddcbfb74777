//! `cliplens train-world`: trains a world model from scratch, resumably.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use cliplens::Result;
use cliplens::native::{Backend, device};

#[derive(Args)]
pub struct TrainWorldArgs {
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long)]
    out: PathBuf,
    /// Train the judge (smaller) instead of the embedded model.
    #[arg(long)]
    judge: bool,
    /// Override the number of steps (the published models use the default).
    #[arg(long)]
    steps: Option<usize>,
    #[arg(long, default_value_t = 100)]
    checkpoint_every: usize,
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    backend: Backend,
}

pub fn run(args: TrainWorldArgs) -> Result<ExitCode> {
    train_world(args.seed, &args.out, args.judge, args.steps, args.checkpoint_every, args.backend)
}

fn train_world(seed: u64, out: &Path, judge: bool, steps: Option<usize>, checkpoint_every: usize, backend: Backend) -> Result<ExitCode> {
    use cliplens::train::{TrainSettings, train};
    use std::io::IsTerminal;
    let mut settings = if judge { TrainSettings::judge(seed) } else { TrainSettings::main(seed) };
    if let Some(steps) = steps {
        settings.steps = steps;
        settings.warmup_steps = settings.warmup_steps.min(steps / 5).max(1);
    }
    let device = device(backend)?;
    let terminal = std::io::stderr().is_terminal();
    let clock = |s: f64| format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64);
    let log = train(&settings, out, &device, checkpoint_every.max(1), |p| {
        if !terminal && p.step % 25 != 0 && p.step > 5 && p.step != p.steps {
            return;
        }
        let width = 30;
        let filled = p.step * width / p.steps.max(1);
        let bar = format!("{}{}", "#".repeat(filled), ".".repeat(width - filled));
        let line = format!(
            "step {}/{} [{bar}] loss {:.3}  lr {:.1e}  temp {:.1}  {}  ETA {}",
            p.step, p.steps, p.loss, p.lr, p.temperature, clock(p.seconds), clock(p.eta_seconds)
        );
        if terminal { eprint!("\r{line}") } else { eprintln!("{line}") }
    })?;
    if terminal {
        eprintln!();
    }
    eprintln!("trained {} steps in {}; wrote {}", log.step, clock(log.seconds), out.display());
    Ok(ExitCode::SUCCESS)
}
