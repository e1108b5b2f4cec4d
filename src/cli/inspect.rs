//! `emolens inspect`: print a model's metadata, heads, views, provenance and graph size, and
//! optionally draw its first convolution layer's filters.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::Args;

use crate::inspect;

/// `emolens inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The model (default: the shipped models/emolens-ferplus.int8.onnx).
    #[arg(value_name = "MODEL.onnx")]
    pub model: Option<PathBuf>,
    /// Print the description as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Draw the first convolution layer's learned filters as a PNG grid, 8 a row: each filter's
    /// kernel averaged over its input channels, 8x8 pixels a weight, on a diverging colour map
    /// (blue negative, white zero, red positive) scaled by the filter's largest absolute weight.
    #[arg(long, value_name = "FILE.png")]
    pub filters: Option<PathBuf>,
}

/// Runs `emolens inspect`.
///
/// # Errors
/// A missing or unreadable file, a file that is not an emolens ONNX model, filters that cannot
/// be found, or an unwritable image; each names the file and the fix.
pub fn run(args: &InspectArgs, ort_lib: Option<&Path>) -> Result<()> {
    if let Some(png) = &args.filters {
        let is_png = png
            .extension()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("png"));
        if !is_png {
            bail!(
                "--filters {}: the image is a PNG; give a file name ending in .png",
                png.display()
            );
        }
        super::check_writable_output(png, "png")?;
    }
    let path = args
        .model
        .clone()
        .unwrap_or_else(crate::util::default_model_path);
    let bytes = inspect::read_model(&path)?;
    let model = inspect::parse(&path, &bytes)?;
    let env = crate::ort_runtime::environment(ort_lib)?;
    let mut inspection = inspect::inspect(&path, &bytes, &model, &env)?;
    if let Some(png) = &args.filters {
        inspection.filters = Some(inspect::filters::write_grid(&path, &model.graph, png)?);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&inspection)?);
    } else {
        println!("{inspection}");
    }
    Ok(())
}
