//! The first convolution layer's learned filters drawn as an image grid: one square per output
//! channel, its kernel averaged over the input channels, blue for negative weights, white for
//! zero and red for positive ones, each filter scaled by its own largest absolute weight.

use std::io::Write;
use std::path::{Path, PathBuf};

use opencv::core::{Mat, Rect, Scalar, Vector, CV_8UC3};
use opencv::{imgcodecs, imgproc};
use serde::Serialize;

use super::onnx_proto::{Graph, Tensor, TensorDataError};
use super::InspectError;

/// Pixels of the image per kernel weight, drawn nearest-neighbour (3x3 -> 24x24).
pub const PIXELS_PER_WEIGHT: usize = 8;
/// Gap between the filters and around the grid, in pixels.
pub const GAP: usize = 2;
/// Filters per row of the grid.
pub const COLUMNS: usize = 8;
/// BGR colour of the gaps.
const BACKGROUND: [f64; 3] = [64.0, 64.0, 64.0];
/// BGR colour of a weight of zero.
const ZERO: [f64; 3] = [255.0, 255.0, 255.0];
/// BGR colour of a filter's most negative weight (when it is the largest in magnitude).
const NEGATIVE: [f64; 3] = [192.0, 76.0, 59.0];
/// BGR colour of a filter's most positive weight (when it is the largest in magnitude).
const POSITIVE: [f64; 3] = [38.0, 4.0, 180.0];

/// Why the first-layer filters cannot be drawn.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    /// The graph has no convolution.
    #[error("the graph has no Conv node, so it has no convolution filters to draw")]
    NoConv,
    /// The weights are computed or fed in rather than stored (plain or quantized).
    #[error("the first Conv node's weights `{0}` are not stored in the file as an initializer (or as a quantized one behind a DequantizeLinear node)")]
    NotStored(String),
    /// Not a 2-D convolution's `[out, in, height, width]` weights.
    #[error("the first Conv node's weights `{name}` have shape {dims:?}; only 2-D convolutions ([out, in, height, width]) can be drawn")]
    Shape {
        /// Initializer name.
        name: String,
        /// Its dimensions.
        dims: Vec<i64>,
    },
    /// The stored values cannot be read.
    #[error("the first Conv node's weights cannot be read: {0}")]
    Data(TensorDataError),
}

// By hand rather than `#[from]`: the message already holds the cause (told once in the chain).
impl From<TensorDataError> for FilterError {
    fn from(error: TensorDataError) -> Self {
        Self::Data(error)
    }
}

/// The first convolution layer's kernels, averaged over their input channels.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterBank {
    /// Name of the weight initializer.
    pub name: String,
    /// Number of filters (output channels).
    pub filters: usize,
    /// Input channels each filter spans (averaged in the drawing).
    pub in_channels: usize,
    /// Kernel `[height, width]`.
    pub kernel: [usize; 2],
    /// `[filters, height, width]`, row-major.
    pub weights: Vec<f32>,
}

/// What `--filters` wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FilterGrid {
    /// The PNG file.
    pub file: PathBuf,
    /// Name of the weight initializer drawn.
    pub weights: String,
    /// Number of filters drawn.
    pub filters: usize,
    /// Input channels each filter spans (averaged in the drawing).
    pub in_channels: usize,
    /// Kernel `[height, width]`.
    pub kernel: [usize; 2],
    /// Image `[width, height]` in pixels.
    pub image: [usize; 2],
}

/// Finds the first `Conv` node in graph order and reads its weights: a float initializer, or
/// (in a QDQ int8 model) the initializer its `DequantizeLinear` node turns back into floats.
///
/// # Errors
/// [`FilterError`] when there is no Conv node or its weights are not a stored 4-D tensor.
pub fn first_conv(graph: &Graph<'_>) -> Result<FilterBank, FilterError> {
    let conv = graph
        .nodes
        .iter()
        .find(|node| node.op_type == "Conv")
        .ok_or(FilterError::NoConv)?;
    // Conv inputs: X, W, optional B.
    let name = conv.inputs.get(1).cloned().unwrap_or_default();
    let (tensor, values) = stored_weights(graph, &name)?;
    let shape: Option<[usize; 4]> = match tensor.dims[..] {
        [out, inputs, height, width] => [out, inputs, height, width]
            .iter()
            .map(|&d| usize::try_from(d).ok().filter(|&d| d > 0))
            .collect::<Option<Vec<usize>>>()
            .and_then(|dims| dims.try_into().ok()),
        _ => None,
    };
    let [filters, in_channels, height, width] = shape.ok_or_else(|| FilterError::Shape {
        name: name.clone(),
        dims: tensor.dims.clone(),
    })?;
    let plane = height * width;
    let mut weights = vec![0.0f32; filters * plane];
    for (filter, out) in values
        .chunks_exact(in_channels * plane)
        .zip(weights.chunks_exact_mut(plane))
    {
        for channel in filter.chunks_exact(plane) {
            for (sum, w) in out.iter_mut().zip(channel) {
                *sum += w;
            }
        }
        for sum in out.iter_mut() {
            *sum /= in_channels as f32;
        }
    }
    Ok(FilterBank {
        name,
        filters,
        in_channels,
        kernel: [height, width],
        weights,
    })
}

/// The stored tensor behind the value `name` and its float values: an initializer, or the
/// quantized initializer of the `DequantizeLinear` node that makes `name` (per-tensor or
/// per-output-channel scale and zero point).
fn stored_weights<'g, 'a>(
    graph: &'g Graph<'a>,
    name: &str,
) -> Result<(&'g Tensor<'a>, Vec<f32>), FilterError> {
    let stored = |name: &str| graph.initializers.iter().find(|t| t.name == name);
    if let Some(tensor) = stored(name) {
        return Ok((tensor, tensor.values()?));
    }
    let not_stored = || FilterError::NotStored(name.to_owned());
    // DequantizeLinear inputs: x, x_scale, optional x_zero_point.
    let dequantizer = graph
        .nodes
        .iter()
        .find(|n| n.op_type == "DequantizeLinear" && n.outputs.iter().any(|o| o == name))
        .ok_or_else(not_stored)?;
    let input = |i: usize| dequantizer.inputs.get(i).and_then(|n| stored(n));
    let (tensor, scale) = input(0).zip(input(1)).ok_or_else(not_stored)?;
    let scale = scale.values()?;
    let zero = match input(2) {
        Some(zero) => zero.values()?,
        None => vec![0.0; scale.len()],
    };
    let dequantized =
        dequantize(&tensor.values()?, &scale, &zero).ok_or_else(|| FilterError::Shape {
            name: name.to_owned(),
            dims: tensor.dims.clone(),
        })?;
    Ok((tensor, dequantized))
}

/// `(value - zero) * scale`, with one scale and zero point for all `values` or one per equal
/// leading block (output channel); `None` when the counts do not fit.
fn dequantize(values: &[f32], scale: &[f32], zero: &[f32]) -> Option<Vec<f32>> {
    if scale.is_empty() || zero.len() != scale.len() || !values.len().is_multiple_of(scale.len()) {
        return None;
    }
    let block = values.len() / scale.len();
    Some(
        values
            .chunks(block.max(1))
            .zip(scale.iter().zip(zero))
            .flat_map(|(channel, (scale, zero))| channel.iter().map(move |q| (q - zero) * scale))
            .collect(),
    )
}

/// `[width, height]` in pixels of the grid image of `filters` kernels of `[height, width]`.
pub fn grid_size(filters: usize, kernel: [usize; 2]) -> [usize; 2] {
    let columns = filters.clamp(1, COLUMNS);
    let rows = filters.div_ceil(COLUMNS).max(1);
    [
        columns * (kernel[1] * PIXELS_PER_WEIGHT + GAP) + GAP,
        rows * (kernel[0] * PIXELS_PER_WEIGHT + GAP) + GAP,
    ]
}

/// Colour of weight `t` in -1..=1: white at 0, towards [`NEGATIVE`] or [`POSITIVE`].
fn diverging(t: f32) -> Scalar {
    let (end, amount) = if t < 0.0 {
        (NEGATIVE, f64::from(-t))
    } else {
        (POSITIVE, f64::from(t))
    };
    let mix = |channel: usize| ZERO[channel] + (end[channel] - ZERO[channel]) * amount.min(1.0);
    Scalar::new(mix(0), mix(1), mix(2), 0.0)
}

fn to_i32(value: usize) -> opencv::Result<i32> {
    i32::try_from(value).map_err(|_| {
        opencv::Error::new(
            opencv::core::StsOutOfRange,
            format!("{value} pixels is too large for an image"),
        )
    })
}

/// Draws the filters in a grid of [`COLUMNS`] per row, [`GAP`] pixels apart.
///
/// # Errors
/// OpenCV's error when the image cannot be made.
pub fn draw(bank: &FilterBank) -> opencv::Result<Mat> {
    let [width, height] = grid_size(bank.filters, bank.kernel);
    let background = Scalar::new(BACKGROUND[0], BACKGROUND[1], BACKGROUND[2], 0.0);
    let mut img =
        Mat::new_rows_cols_with_default(to_i32(height)?, to_i32(width)?, CV_8UC3, background)?;
    let [kernel_h, kernel_w] = bank.kernel;
    let cell = [
        kernel_w * PIXELS_PER_WEIGHT + GAP,
        kernel_h * PIXELS_PER_WEIGHT + GAP,
    ];
    let side = to_i32(PIXELS_PER_WEIGHT)?;
    for (index, filter) in bank.weights.chunks_exact(kernel_h * kernel_w).enumerate() {
        let left = GAP + index % COLUMNS * cell[0];
        let top = GAP + index / COLUMNS * cell[1];
        let largest = filter.iter().fold(0.0f32, |m, w| m.max(w.abs()));
        for (at, weight) in filter.iter().enumerate() {
            let t = if largest > 0.0 { weight / largest } else { 0.0 };
            let x = left + at % kernel_w * PIXELS_PER_WEIGHT;
            let y = top + at / kernel_w * PIXELS_PER_WEIGHT;
            imgproc::rectangle(
                &mut img,
                Rect::new(to_i32(x)?, to_i32(y)?, side, side),
                diverging(t),
                imgproc::FILLED,
                imgproc::LINE_8,
                0,
            )?;
        }
    }
    Ok(img)
}

/// Draws the first convolution layer of `graph` (read from `model`) and writes it to `png`
/// under a temporary name, renamed when complete.
///
/// # Errors
/// [`InspectError::Filters`] naming the model when the filters cannot be found,
/// [`InspectError::Draw`] or [`InspectError::Write`] naming the PNG.
pub fn write_grid(model: &Path, graph: &Graph<'_>, png: &Path) -> Result<FilterGrid, InspectError> {
    let bank = first_conv(graph).map_err(|cause| InspectError::Filters {
        path: model.to_owned(),
        cause,
    })?;
    let drawn = |cause| InspectError::Draw {
        path: png.to_owned(),
        cause,
    };
    let img = draw(&bank).map_err(drawn)?;
    let mut encoded = Vector::<u8>::new();
    if !imgcodecs::imencode(".png", &img, &mut encoded, &Vector::new()).map_err(drawn)? {
        return Err(drawn(opencv::Error::new(
            opencv::core::StsError,
            "OpenCV could not encode the PNG".to_owned(),
        )));
    }
    crate::output::write_atomically(png, |out| out.write_all(encoded.as_slice())).map_err(
        |cause| InspectError::Write {
            path: png.to_owned(),
            cause,
        },
    )?;
    Ok(FilterGrid {
        file: png.to_owned(),
        weights: bank.name,
        filters: bank.filters,
        in_channels: bank.in_channels,
        kernel: bank.kernel,
        image: grid_size(bank.filters, bank.kernel),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use opencv::prelude::*;

    fn bank() -> FilterBank {
        FilterBank {
            name: "w".into(),
            filters: 10,
            in_channels: 1,
            kernel: [3, 3],
            weights: (0..90).map(|i| i as f32 - 45.0).collect(),
        }
    }

    #[test]
    fn quantized_weights_come_back_per_channel() {
        let values = [2.0, -4.0, 10.0, 12.0];
        assert_eq!(
            dequantize(&values, &[0.5, 0.25], &[0.0, 10.0]),
            Some(vec![1.0, -2.0, 0.0, 0.5])
        );
        assert_eq!(
            dequantize(&values, &[2.0], &[0.0]),
            Some(vec![4.0, -8.0, 20.0, 24.0])
        );
        assert_eq!(dequantize(&values, &[1.0; 3], &[0.0; 3]), None);
        assert_eq!(dequantize(&values, &[1.0; 2], &[0.0]), None);
    }

    #[test]
    fn grid_holds_eight_filters_a_row() {
        // 3x3 kernels are 24-pixel squares with 2-pixel gaps.
        assert_eq!(grid_size(32, [3, 3]), [8 * 26 + 2, 4 * 26 + 2]);
        assert_eq!(grid_size(3, [5, 7]), [3 * 58 + 2, 42 + 2]);
    }

    #[test]
    fn drawing_matches_the_grid_and_colours_signs() -> Result<(), Box<dyn std::error::Error>> {
        let img = draw(&bank())?;
        let [width, height] = grid_size(10, [3, 3]);
        assert_eq!((img.cols() as usize, img.rows() as usize), (width, height));
        // Filter 0 is all negative: its most negative (first) weight is full blue.
        let first = *img.at_2d::<opencv::core::Vec3b>(GAP as i32, GAP as i32)?;
        assert_eq!(first.0, [192, 76, 59]);
        let gap = *img.at_2d::<opencv::core::Vec3b>(0, 0)?;
        assert_eq!(gap.0, [64, 64, 64]);
        Ok(())
    }
}
