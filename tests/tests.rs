//! Integration tests: the CLI and the training/export path on the real data in ../shared/data.
//! They fail (never skip) when that data or the ONNX Runtime library is missing.

mod annotate;
mod bad_input;
mod batch;
mod evaluate;
mod faces;
mod inspect;
mod live;
mod report;
mod slowmo;
mod train_export;
mod util;
