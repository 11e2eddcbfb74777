//! CLIP Lens: look inside CLIP models. The library holds everything the
//! `cliplens` command line and the web app (`src/web`) share; it has no web types.

pub mod config;
pub mod error;
pub mod model;
pub mod weights;

pub use error::{Error, ErrorKind, Result};
pub mod preprocess;
pub mod tokenizer;
pub mod clip;
pub mod compare;
pub mod hub;
pub mod protocol;
pub mod quantize;
pub mod sha256;
#[cfg(not(target_arch = "wasm32"))]
pub mod native;
pub mod manifest;
#[cfg(not(target_arch = "wasm32"))]
pub mod prepare;
pub mod rng;
pub mod world;
pub mod invert;
pub mod concepts;
pub mod audit;
#[cfg(not(target_arch = "wasm32"))]
pub mod train;
