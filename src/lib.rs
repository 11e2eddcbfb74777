//! CLIP Lens: look inside CLIP models. The library holds everything the
//! `cliplens` command line and the web app (`src/web`) share; it has no web types.
//!
//! Feature `compute` (on by default) brings the models (burn, tokenizers). The
//! web page builds without it, so it downloads the library's types and plain
//! math but not burn; the model-side helpers some modules share are then unused.
#![cfg_attr(not(feature = "compute"), allow(unused_imports, dead_code))]

pub mod config;
pub mod error;
#[cfg(feature = "compute")]
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
#[cfg(all(not(target_arch = "wasm32"), feature = "compute"))]
pub mod native;
pub mod manifest;
#[cfg(all(not(target_arch = "wasm32"), feature = "compute"))]
pub mod prepare;
pub mod rng;
pub mod world;
pub mod invert;
pub mod concepts;
pub mod audit;
pub mod speed;
pub mod probes;
#[cfg(all(not(target_arch = "wasm32"), feature = "compute"))]
pub mod train;
