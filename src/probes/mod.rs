//! Probes from the CLIP literature that reproduce a known finding on the
//! visitor's own images or on the embedded world. Plain math on embeddings, so
//! the web page and the CLI (`cliplens probe ...`) share it.

pub mod gap;
