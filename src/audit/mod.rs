//! The bias audit (the third study): prompt association tests, the inversion
//! probe, the folder audit with CLIP-inferred pseudo-groups, CLIP-debias
//! resampling with a classifier trained three ways, and the report. No web
//! types: the `cliplens audit` commands and the Audit page share all of it.

pub mod associations;
pub mod cluster;
pub mod debias;
pub mod fairness;
pub mod folder;
pub mod probe;
pub mod report;
pub mod resample;
pub mod retrieval;
pub mod safety;
pub mod stats;
pub mod tables;
