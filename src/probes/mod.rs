//! Probes from the CLIP literature that reproduce a known finding on the
//! visitor's own images or on the embedded world. Plain math on embeddings
//! (and, for attribution, gradients through the image tower), so the web page
//! and the CLI (`cliplens probe ...`) share it.

pub mod attribution;
pub mod gap;
pub mod fooling;
pub mod association;
pub mod social;
pub mod view;
