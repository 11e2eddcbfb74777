//! `cliplens prepare-models`: downloads real CLIP checkpoints from the Hub (or
//! a mirror), verifies them and writes int8 files plus a manifest.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use cliplens::Result;
use cliplens::prepare;

#[derive(Args)]
pub struct PrepareModelsArgs {
    #[arg(long, default_value = "models")]
    out: PathBuf,
    /// Hugging Face ids to prepare.
    #[arg(long = "id", default_values_t = prepare::DEFAULT_MODELS.map(String::from))]
    ids: Vec<String>,
    /// The Hub, or a mirror with the same URL layout.
    #[arg(long, default_value = cliplens::hub::DEFAULT_HUB)]
    hub: String,
}

pub fn run(args: PrepareModelsArgs) -> Result<ExitCode> {
    prepare::prepare_models(&args.ids, &args.hub, &args.out, &mut |line| eprintln!("{line}"))?;
    Ok(ExitCode::SUCCESS)
}
