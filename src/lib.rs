//! emolens: finds faces in video, recognises their facial expressions with a neural network, and
//! writes annotated video, data and reports. This crate holds the logic; `main.rs` is a thin CLI.

pub mod annotate;
pub mod au_metrics;
pub mod augment;
pub mod batch;
pub mod chart;
pub mod classifier;
pub mod cli;
pub mod dataset;
pub mod device;
pub mod draw;
pub mod evaluate;
pub mod faces;
#[cfg(test)]
mod fuzzing;
pub mod inspect;
pub mod live;
pub mod metrics;
pub mod model_meta;
pub mod ort_runtime;
pub mod output;
pub mod palette;
pub mod protobuf;
pub mod records;
pub mod report;
pub mod train;
pub mod util;
pub mod video;
