//! The `cliplens` subcommands, one file each: argument parsing and printing
//! only; the work is the library's.

pub mod audit;
pub mod bench;
pub mod bench_browser;
pub mod bench_concepts;
pub mod bench_footprint;
pub mod bench_speed;
pub mod concepts;
pub mod embed;
pub mod invert;
pub mod manifest;
pub mod prepare_models;
pub mod probe;
pub mod probe_fooling;
pub mod probe_pairs;
pub mod quantize;
pub mod train_world;
pub mod world;
