//! emolens: 2D convolution and both of its gradients as one im2col + gemm per image.
//!
//! The published crate runs conv2d as a 3D convolution over NHWC copies (single-threaded
//! transposes, a zeroed buffer and a scattered write per 512-pixel tile), its input gradient as a
//! transposed convolution, and its weight gradient as a convolution whose kernel is the whole
//! output gradient (gemms only 9 columns wide after two transposes). Here every image is one
//! gemm on NCHW data:
//!
//! - forward: `y[b] = W · col(x[b])`
//! - input gradient: `dx[b] = col⁻¹(Wᵀ · dy[b])` (col⁻¹ adds each patch value back to its pixel)
//! - weight gradient: `dW = Σ_b dy[b] · col(x[b])ᵀ`
//!
//! where `col(x[b])` is the `[channels·kh·kw, out_h·out_w]` patch matrix of one image. Images run
//! in parallel (one patch buffer per worker, reused); a batch smaller than the thread pool runs
//! its images in turn with gemm itself parallel. Groups, stride, dilation and asymmetric padding
//! are handled natively; f32, f64 and f16 run in their own type, bf16 through f32.

use alloc::vec;
use alloc::vec::Vec;
use burn_backend::DType;
use burn_backend::ops::ConvOptions;
use burn_backend::ops::conv::calculate_conv_output_size_asymmetric;
use burn_std::{Bytes, Shape, f16};
use num_traits::{One, Zero};

use super::conv_common::{convert_bf16_to_f32, convert_f32_to_bf16};
use crate::{FlexTensor, Layout};

/// Element types gemm multiplies natively.
trait GemmElement: bytemuck::Pod + burn_backend::Element + Zero + One + Send + Sync {}
impl GemmElement for f32 {}
impl GemmElement for f64 {}
impl GemmElement for f16 {}

/// Output `[batch, channels_out, out_h, out_w]` of the convolution of `x` `[batch, channels_in,
/// height, width]` with `weight` `[channels_out, channels_in / groups, kernel_h, kernel_w]`.
pub fn conv2d(
    x: FlexTensor,
    weight: FlexTensor,
    bias: Option<FlexTensor>,
    options: &ConvOptions<2>,
) -> FlexTensor {
    let (x_shape, w_shape) = (x.layout().shape(), weight.layout().shape());
    let out_size = |axis: usize| {
        calculate_conv_output_size_asymmetric(
            w_shape[axis + 2],
            options.stride[axis],
            options.padding[axis],
            options.dilation[axis],
            x_shape[axis + 2],
        )
    };
    let geometry = Geometry::new(x_shape, w_shape, [out_size(0), out_size(1)], options);
    match x.dtype() {
        DType::F32 => forward::<f32>(&geometry, x, weight, bias),
        DType::F64 => forward::<f64>(&geometry, x, weight, bias),
        DType::F16 => forward::<f16>(&geometry, x, weight, bias),
        DType::BF16 => convert_f32_to_bf16(&forward::<f32>(
            &geometry,
            convert_bf16_to_f32(&x),
            convert_bf16_to_f32(&weight),
            bias.map(|bias| convert_bf16_to_f32(&bias)),
        )),
        dtype => panic!("conv2d: unsupported dtype {dtype:?}"),
    }
}

/// Gradient of the convolution's output with respect to its input `x`.
pub fn conv2d_x_backward(
    x: FlexTensor,
    weight: FlexTensor,
    output_grad: FlexTensor,
    options: &ConvOptions<2>,
) -> FlexTensor {
    let geometry = Geometry::of_gradient(&x, &weight, &output_grad, options);
    match x.dtype() {
        DType::F32 => input_gradient::<f32>(&geometry, weight, output_grad),
        DType::F64 => input_gradient::<f64>(&geometry, weight, output_grad),
        DType::F16 => input_gradient::<f16>(&geometry, weight, output_grad),
        DType::BF16 => convert_f32_to_bf16(&input_gradient::<f32>(
            &geometry,
            convert_bf16_to_f32(&weight),
            convert_bf16_to_f32(&output_grad),
        )),
        dtype => panic!("conv2d_x_backward: unsupported dtype {dtype:?}"),
    }
}

/// Gradient of the convolution's output with respect to its `weight`.
pub fn conv2d_weight_backward(
    x: FlexTensor,
    weight: FlexTensor,
    output_grad: FlexTensor,
    options: &ConvOptions<2>,
) -> FlexTensor {
    let geometry = Geometry::of_gradient(&x, &weight, &output_grad, options);
    match x.dtype() {
        DType::F32 => weight_gradient::<f32>(&geometry, x, output_grad),
        DType::F64 => weight_gradient::<f64>(&geometry, x, output_grad),
        DType::F16 => weight_gradient::<f16>(&geometry, x, output_grad),
        DType::BF16 => convert_f32_to_bf16(&weight_gradient::<f32>(
            &geometry,
            convert_bf16_to_f32(&x),
            convert_bf16_to_f32(&output_grad),
        )),
        dtype => panic!("conv2d_weight_backward: unsupported dtype {dtype:?}"),
    }
}

/// Sizes of one convolution.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    batch: usize,
    groups: usize,
    in_channels: usize,
    out_channels: usize,
    in_size: [usize; 2],
    kernel: [usize; 2],
    out_size: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
    /// Padding before the first row and column.
    pad_begin: [usize; 2],
}

impl Geometry {
    fn new(
        x_shape: &Shape,
        w_shape: &Shape,
        out_size: [usize; 2],
        options: &ConvOptions<2>,
    ) -> Self {
        Self {
            batch: x_shape[0],
            groups: options.groups,
            in_channels: x_shape[1],
            out_channels: w_shape[0],
            in_size: [x_shape[2], x_shape[3]],
            kernel: [w_shape[2], w_shape[3]],
            out_size,
            stride: options.stride,
            dilation: options.dilation,
            pad_begin: [options.padding[0].0, options.padding[1].0],
        }
    }

    /// The geometry of a backward pass: the output size is the gradient's.
    fn of_gradient(
        x: &FlexTensor,
        weight: &FlexTensor,
        output_grad: &FlexTensor,
        options: &ConvOptions<2>,
    ) -> Self {
        let grad_shape = output_grad.layout().shape();
        let out_size = [grad_shape[2], grad_shape[3]];
        Self::new(
            x.layout().shape(),
            weight.layout().shape(),
            out_size,
            options,
        )
    }

    fn in_channels_per_group(&self) -> usize {
        self.in_channels / self.groups
    }

    fn out_channels_per_group(&self) -> usize {
        self.out_channels / self.groups
    }

    fn in_pixels(&self) -> usize {
        self.in_size[0] * self.in_size[1]
    }

    fn out_pixels(&self) -> usize {
        self.out_size[0] * self.out_size[1]
    }

    /// Rows of one group's patch matrix: its input channels times the kernel's taps.
    fn patch_rows(&self) -> usize {
        self.in_channels_per_group() * self.kernel[0] * self.kernel[1]
    }

    /// Elements of one group's patch matrix.
    fn patch_len(&self) -> usize {
        self.patch_rows() * self.out_pixels()
    }

    /// The range of output positions along `axis` whose tap `tap` falls inside the input, and
    /// the input offset of output position 0 for that tap (input = output·stride + offset).
    fn valid_outputs(&self, axis: usize, tap: usize) -> (core::ops::Range<usize>, isize) {
        let offset = (tap * self.dilation[axis]) as isize - self.pad_begin[axis] as isize;
        let stride = self.stride[axis] as isize;
        let first = if offset >= 0 {
            0
        } else {
            (-offset + stride - 1) / stride
        };
        let last_input = self.in_size[axis] as isize - 1 - offset;
        let end = if last_input < 0 {
            0
        } else {
            (last_input / stride + 1).min(self.out_size[axis] as isize)
        };
        let first = (first as usize).min(end as usize);
        (first..end as usize, offset)
    }
}

/// Fills `patches` (`[patch_rows, out_pixels]`) with the patches of `image` (one group's
/// channels, `[channels, height, width]`); taps in the padding are zero.
fn im2col<T: GemmElement>(geometry: &Geometry, image: &[T], patches: &mut [T]) {
    let out_w = geometry.out_size[1];
    let in_w = geometry.in_size[1];
    let mut rows = patches.chunks_exact_mut(geometry.out_pixels());
    for plane in image.chunks_exact(geometry.in_pixels()) {
        for kh in 0..geometry.kernel[0] {
            let (valid_h, offset_h) = geometry.valid_outputs(0, kh);
            for kw in 0..geometry.kernel[1] {
                let (valid_w, offset_w) = geometry.valid_outputs(1, kw);
                let row = rows.next().expect("patch rows match the kernel taps");
                if valid_h.is_empty() || valid_w.is_empty() {
                    // emolens: the tap falls in the padding for every output pixel (before,
                    // an empty column range panicked on a negative input index).
                    row.fill(T::zero());
                    continue;
                }
                for (oh, out_row) in row.chunks_exact_mut(out_w).enumerate() {
                    if !valid_h.contains(&oh) {
                        out_row.fill(T::zero());
                        continue;
                    }
                    let ih = (oh * geometry.stride[0]) as isize + offset_h;
                    let in_row = &plane[ih as usize * in_w..][..in_w];
                    out_row[..valid_w.start].fill(T::zero());
                    out_row[valid_w.end..].fill(T::zero());
                    let first_input = (valid_w.start * geometry.stride[1]) as isize + offset_w;
                    let first_input = first_input as usize;
                    if geometry.stride[1] == 1 {
                        out_row[valid_w.clone()]
                            .copy_from_slice(&in_row[first_input..][..valid_w.len()]);
                    } else {
                        let inputs = in_row[first_input..].iter().step_by(geometry.stride[1]);
                        for (out, &input) in out_row[valid_w.clone()].iter_mut().zip(inputs) {
                            *out = input;
                        }
                    }
                }
            }
        }
    }
}

/// Adds every value of `patches` (`[patch_rows, out_pixels]`) to the pixel of `image` (one
/// group's channels, `[channels, height, width]`) it was taken from: the transpose of [`im2col`].
fn col2im<T: GemmElement>(geometry: &Geometry, patches: &[T], image: &mut [T]) {
    let out_w = geometry.out_size[1];
    let in_w = geometry.in_size[1];
    let mut rows = patches.chunks_exact(geometry.out_pixels());
    for plane in image.chunks_exact_mut(geometry.in_pixels()) {
        for kh in 0..geometry.kernel[0] {
            let (valid_h, offset_h) = geometry.valid_outputs(0, kh);
            for kw in 0..geometry.kernel[1] {
                let (valid_w, offset_w) = geometry.valid_outputs(1, kw);
                let row = rows.next().expect("patch rows match the kernel taps");
                if valid_w.is_empty() {
                    // emolens: as in `im2col`, nothing of this tap lies in the image.
                    continue;
                }
                for oh in valid_h.clone() {
                    let ih = ((oh * geometry.stride[0]) as isize + offset_h) as usize;
                    let in_row = &mut plane[ih * in_w..][..in_w];
                    let out_row = &row[oh * out_w..][..out_w];
                    let first_input =
                        ((valid_w.start * geometry.stride[1]) as isize + offset_w) as usize;
                    let values = &out_row[valid_w.clone()];
                    if geometry.stride[1] == 1 {
                        let inputs = &mut in_row[first_input..][..values.len()];
                        for (input, &value) in inputs.iter_mut().zip(values) {
                            *input = *input + value;
                        }
                    } else {
                        let inputs = in_row[first_input..].iter_mut().step_by(geometry.stride[1]);
                        for (input, &value) in inputs.zip(values) {
                            *input = *input + value;
                        }
                    }
                }
            }
        }
    }
}

/// A matrix view for gemm: its elements and their row and column strides.
struct Matrix<'a, T> {
    data: &'a [T],
    row_stride: usize,
    col_stride: usize,
}

impl<'a, T> Matrix<'a, T> {
    /// A matrix stored row after row, `cols` elements a row.
    fn rows(data: &'a [T], cols: usize) -> Self {
        Self {
            data,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose of a matrix stored row after row, `stored_cols` elements a row.
    fn transposed(data: &'a [T], stored_cols: usize) -> Self {
        Self {
            data,
            row_stride: 1,
            col_stride: stored_cols,
        }
    }

    /// Panics unless a `rows x cols` matrix with these strides lies inside the data.
    fn check_fits(&self, rows: usize, cols: usize) {
        let last = (rows.max(1) - 1) * self.row_stride + (cols.max(1) - 1) * self.col_stride;
        assert!(
            rows == 0 || cols == 0 || last < self.data.len(),
            "matmul: operand too small"
        );
    }
}

/// `dst` (`m x n`, row-major) = `lhs · rhs` (`m x k` times `k x n`), added to what `dst` holds
/// when `accumulate`.
fn matmul<T: GemmElement>(
    dst: &mut [T],
    [m, k, n]: [usize; 3],
    lhs: Matrix<T>,
    rhs: Matrix<T>,
    accumulate: bool,
    parallel: bool,
) {
    assert!(dst.len() >= m * n, "matmul: destination too small");
    lhs.check_fits(m, k);
    rhs.check_fits(k, n);
    let parallelism = if parallel {
        gemm_parallelism(m * k * n)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: checked above: `dst` holds m x n elements and `lhs` and `rhs` reach no element
    // outside their slices.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            T::one(),
            T::one(),
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// gemm's own threads for a product of `work` multiply-adds run alone (a small batch).
fn gemm_parallelism(work: usize) -> gemm::Parallelism {
    #[cfg(feature = "rayon")]
    if work >= 192 * 192 * 192 {
        return gemm::Parallelism::Rayon(0);
    }
    let _ = work;
    gemm::Parallelism::None
}

/// Whether the batch's images run in parallel (each gemm on one thread) rather than in turn
/// (each gemm on every thread).
fn images_in_parallel(batch: usize) -> bool {
    #[cfg(feature = "rayon")]
    return batch > 1 && batch >= rayon::current_num_threads();
    #[cfg(not(feature = "rayon"))]
    {
        let _ = batch;
        false
    }
}

/// Runs `per_image(image index, that image's chunk of `output`, patch buffer)` for every image,
/// in parallel when the batch is large enough, with one patch buffer per worker.
fn for_each_image<T: GemmElement>(
    geometry: &Geometry,
    output: &mut [T],
    per_image: impl Fn(usize, &mut [T], &mut [T], bool) + Send + Sync,
) {
    if output.is_empty() {
        return;
    }
    let image_len = output.len() / geometry.batch;
    let patch_len = geometry.patch_len();
    if images_in_parallel(geometry.batch) {
        #[cfg(feature = "rayon")]
        {
            use rayon::prelude::*;
            output.par_chunks_mut(image_len).enumerate().for_each_init(
                || vec![T::zero(); patch_len],
                |patches, (b, image)| per_image(b, image, patches, false),
            );
            return;
        }
    }
    let mut patches = vec![T::zero(); patch_len];
    for (b, image) in output.chunks_mut(image_len).enumerate() {
        per_image(b, image, &mut patches, true);
    }
}

/// `tensor` with its elements in row-major order.
fn contiguous<T: GemmElement>(tensor: &FlexTensor) -> FlexTensor {
    let tensor = tensor.to_contiguous();
    debug_assert_eq!(tensor.dtype(), T::dtype());
    tensor
}

/// A tensor of `shape` holding `data` in row-major order.
fn tensor<T: GemmElement>(data: Vec<T>, shape: [usize; 4]) -> FlexTensor {
    FlexTensor::new(
        Bytes::from_elems(data),
        Layout::contiguous(Shape::from(shape.to_vec())),
        T::dtype(),
    )
}

fn forward<T: GemmElement>(
    geometry: &Geometry,
    x: FlexTensor,
    weight: FlexTensor,
    bias: Option<FlexTensor>,
) -> FlexTensor {
    let (x, weight) = (contiguous::<T>(&x), contiguous::<T>(&weight));
    let bias = bias.map(|bias| contiguous::<T>(&bias));
    let (x, weight_data) = (x.storage::<T>(), weight.storage::<T>());
    let bias: Option<&[T]> = bias.as_ref().map(|bias| bias.storage::<T>());
    let g = geometry;
    let (out_per_group, rows, pixels) =
        (g.out_channels_per_group(), g.patch_rows(), g.out_pixels());
    let in_group_len = g.in_channels_per_group() * g.in_pixels();
    let mut output = vec![T::zero(); g.batch * g.out_channels * pixels];
    for_each_image(g, &mut output, |b, out_image, patches, parallel| {
        let image = &x[b * g.in_channels * g.in_pixels()..];
        if let Some(bias) = bias {
            for (channel, &value) in out_image.chunks_exact_mut(pixels).zip(bias) {
                channel.fill(value);
            }
        }
        for group in 0..g.groups {
            im2col(g, &image[group * in_group_len..][..in_group_len], patches);
            let weights = &weight_data[group * out_per_group * rows..][..out_per_group * rows];
            matmul(
                &mut out_image[group * out_per_group * pixels..],
                [out_per_group, rows, pixels],
                Matrix::rows(weights, rows),
                Matrix::rows(patches, pixels),
                bias.is_some(),
                parallel,
            );
        }
    });
    tensor(
        output,
        [g.batch, g.out_channels, g.out_size[0], g.out_size[1]],
    )
}

fn input_gradient<T: GemmElement>(
    geometry: &Geometry,
    weight: FlexTensor,
    output_grad: FlexTensor,
) -> FlexTensor {
    let (weight, output_grad) = (contiguous::<T>(&weight), contiguous::<T>(&output_grad));
    let (weight_data, grad) = (weight.storage::<T>(), output_grad.storage::<T>());
    let g = geometry;
    let (out_per_group, rows, pixels) =
        (g.out_channels_per_group(), g.patch_rows(), g.out_pixels());
    let in_group_len = g.in_channels_per_group() * g.in_pixels();
    let mut x_grad = vec![T::zero(); g.batch * g.in_channels * g.in_pixels()];
    for_each_image(g, &mut x_grad, |b, x_image, patches, parallel| {
        let grad_image = &grad[b * g.out_channels * pixels..];
        for group in 0..g.groups {
            let weights = &weight_data[group * out_per_group * rows..][..out_per_group * rows];
            let grad_group =
                &grad_image[group * out_per_group * pixels..][..out_per_group * pixels];
            matmul(
                patches,
                [rows, out_per_group, pixels],
                Matrix::transposed(weights, rows),
                Matrix::rows(grad_group, pixels),
                false,
                parallel,
            );
            col2im(
                g,
                patches,
                &mut x_image[group * in_group_len..][..in_group_len],
            );
        }
    });
    tensor(x_grad, [g.batch, g.in_channels, g.in_size[0], g.in_size[1]])
}

fn weight_gradient<T: GemmElement>(
    geometry: &Geometry,
    x: FlexTensor,
    output_grad: FlexTensor,
) -> FlexTensor {
    let (x, output_grad) = (contiguous::<T>(&x), contiguous::<T>(&output_grad));
    let (x, grad) = (x.storage::<T>(), output_grad.storage::<T>());
    let g = geometry;
    let (out_per_group, rows, pixels) =
        (g.out_channels_per_group(), g.patch_rows(), g.out_pixels());
    let in_group_len = g.in_channels_per_group() * g.in_pixels();
    let weight_len = g.out_channels * rows;
    // Adds image `b`'s share of the gradient to `weight_grad`.
    let add_image = |b: usize, weight_grad: &mut [T], patches: &mut [T], parallel: bool| {
        let image = &x[b * g.in_channels * g.in_pixels()..];
        let grad_image = &grad[b * g.out_channels * pixels..];
        for group in 0..g.groups {
            im2col(g, &image[group * in_group_len..][..in_group_len], patches);
            let grad_group =
                &grad_image[group * out_per_group * pixels..][..out_per_group * pixels];
            matmul(
                &mut weight_grad[group * out_per_group * rows..],
                [out_per_group, pixels, rows],
                Matrix::rows(grad_group, pixels),
                Matrix::transposed(patches, pixels),
                true,
                parallel,
            );
        }
    };
    let weight_grad = if images_in_parallel(g.batch) {
        parallel_sum(g, weight_len, add_image)
    } else {
        let mut weight_grad = vec![T::zero(); weight_len];
        let mut patches = vec![T::zero(); g.patch_len()];
        for b in 0..g.batch {
            add_image(b, &mut weight_grad, &mut patches, true);
        }
        weight_grad
    };
    tensor(
        weight_grad,
        [
            g.out_channels,
            g.in_channels_per_group(),
            g.kernel[0],
            g.kernel[1],
        ],
    )
}

/// The sum over the batch of what `add_image` adds, each worker summing a run of images into its
/// own buffer.
#[cfg(feature = "rayon")]
fn parallel_sum<T: GemmElement>(
    geometry: &Geometry,
    len: usize,
    add_image: impl Fn(usize, &mut [T], &mut [T], bool) + Send + Sync,
) -> Vec<T> {
    use rayon::prelude::*;
    let runs = 2 * rayon::current_num_threads();
    (0..geometry.batch)
        .into_par_iter()
        .with_min_len(geometry.batch.div_ceil(runs))
        .fold(
            || (vec![T::zero(); len], vec![T::zero(); geometry.patch_len()]),
            |(mut sum, mut patches), b| {
                add_image(b, &mut sum, &mut patches, false);
                (sum, patches)
            },
        )
        .map(|(sum, _)| sum)
        .reduce_with(|mut total, part| {
            for (t, p) in total.iter_mut().zip(part) {
                *t = *t + p;
            }
            total
        })
        .unwrap_or_else(|| vec![T::zero(); len])
}

#[cfg(not(feature = "rayon"))]
fn parallel_sum<T: GemmElement>(
    _geometry: &Geometry,
    _len: usize,
    _add_image: impl Fn(usize, &mut [T], &mut [T], bool) + Send + Sync,
) -> Vec<T> {
    unreachable!("images run in parallel only with rayon")
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn_std::bf16;

    /// Deterministic values in -1..1.
    fn values(len: usize, seed: u64) -> Vec<f64> {
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
            })
            .collect()
    }

    fn f32_tensor(data: &[f64], shape: [usize; 4]) -> FlexTensor {
        tensor(data.iter().map(|&v| v as f32).collect::<Vec<f32>>(), shape)
    }

    fn as_f64(tensor: &FlexTensor) -> Vec<f64> {
        let tensor = tensor.to_contiguous();
        match tensor.dtype() {
            DType::F32 => tensor.storage::<f32>().iter().map(|&v| v as f64).collect(),
            DType::F64 => tensor.storage::<f64>().to_vec(),
            DType::BF16 => tensor
                .storage::<bf16>()
                .iter()
                .map(|&v| v.to_f64())
                .collect(),
            dtype => panic!("unexpected {dtype:?}"),
        }
    }

    /// One case: shapes and options.
    struct Case {
        x_shape: [usize; 4],
        w_shape: [usize; 4],
        options: ConvOptions<2>,
    }

    impl Case {
        fn geometry(&self) -> Geometry {
            let out = |axis: usize| {
                calculate_conv_output_size_asymmetric(
                    self.w_shape[axis + 2],
                    self.options.stride[axis],
                    self.options.padding[axis],
                    self.options.dilation[axis],
                    self.x_shape[axis + 2],
                )
            };
            Geometry::new(
                &Shape::from(self.x_shape.to_vec()),
                &Shape::from(self.w_shape.to_vec()),
                [out(0), out(1)],
                &self.options,
            )
        }

        /// Every (output index, input index, weight index) triple the convolution multiplies,
        /// straight from its definition.
        fn products(&self) -> Vec<(usize, usize, usize)> {
            let g = self.geometry();
            let (cin_g, cout_g) = (g.in_channels_per_group(), g.out_channels_per_group());
            let mut products = Vec::new();
            for b in 0..g.batch {
                for co in 0..g.out_channels {
                    let group = co / cout_g;
                    for oh in 0..g.out_size[0] {
                        for ow in 0..g.out_size[1] {
                            let out = ((b * g.out_channels + co) * g.out_size[0] + oh)
                                * g.out_size[1]
                                + ow;
                            for ci in 0..cin_g {
                                for kh in 0..g.kernel[0] {
                                    for kw in 0..g.kernel[1] {
                                        let ih = (oh * g.stride[0] + kh * g.dilation[0]) as isize
                                            - g.pad_begin[0] as isize;
                                        let iw = (ow * g.stride[1] + kw * g.dilation[1]) as isize
                                            - g.pad_begin[1] as isize;
                                        if ih < 0
                                            || iw < 0
                                            || ih >= g.in_size[0] as isize
                                            || iw >= g.in_size[1] as isize
                                        {
                                            continue;
                                        }
                                        let c = group * cin_g + ci;
                                        let input = ((b * g.in_channels + c) * g.in_size[0]
                                            + ih as usize)
                                            * g.in_size[1]
                                            + iw as usize;
                                        let weight = ((co * cin_g + ci) * g.kernel[0] + kh)
                                            * g.kernel[1]
                                            + kw;
                                        products.push((out, input, weight));
                                    }
                                }
                            }
                        }
                    }
                }
            }
            products
        }

        fn check(&self) {
            let g = self.geometry();
            let out_shape = [g.batch, g.out_channels, g.out_size[0], g.out_size[1]];
            let x = values(self.x_shape.iter().product(), 1);
            let w = values(self.w_shape.iter().product(), 2);
            let bias = values(g.out_channels, 3);
            let dy = values(out_shape.iter().product(), 4);
            let (mut y, mut dx, mut dw) =
                (vec![0.0; dy.len()], vec![0.0; x.len()], vec![0.0; w.len()]);
            for (b, row) in y.chunks_mut(g.out_pixels()).enumerate() {
                row.fill(bias[b % g.out_channels]);
            }
            for (out, input, weight) in self.products() {
                y[out] += x[input] * w[weight];
                dx[input] += dy[out] * w[weight];
                dw[weight] += dy[out] * x[input];
            }
            let bias_shape = [1, 1, 1, g.out_channels];
            let bias_tensor =
                f32_tensor(&bias, bias_shape).reshape(Shape::from(vec![g.out_channels]));
            let got_y = conv2d(
                f32_tensor(&x, self.x_shape),
                f32_tensor(&w, self.w_shape),
                Some(bias_tensor),
                &self.options,
            );
            assert_eq!(got_y.layout().shape().to_vec(), out_shape.to_vec());
            let got_dx = conv2d_x_backward(
                f32_tensor(&x, self.x_shape),
                f32_tensor(&w, self.w_shape),
                f32_tensor(&dy, out_shape),
                &self.options,
            );
            let got_dw = conv2d_weight_backward(
                f32_tensor(&x, self.x_shape),
                f32_tensor(&w, self.w_shape),
                f32_tensor(&dy, out_shape),
                &self.options,
            );
            for (name, want, got) in [("y", y, got_y), ("dx", dx, got_dx), ("dw", dw, got_dw)] {
                let got = as_f64(&got);
                assert_eq!(got.len(), want.len(), "{name} length");
                for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                    assert!((a - b).abs() < 1e-4, "{name}[{i}]: {a} against {b}");
                }
            }
        }
    }

    #[test]
    fn matches_the_definition_for_the_training_network_shape() {
        // 3x3, padding 1, stride 1, as every convolution of emolens's network; a batch larger
        // than the thread pool runs its images in parallel.
        Case {
            x_shape: [9, 3, 7, 6],
            w_shape: [5, 3, 3, 3],
            options: ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
        }
        .check();
    }

    #[test]
    fn matches_the_definition_with_stride_dilation_and_asymmetric_padding() {
        Case {
            x_shape: [3, 2, 9, 8],
            w_shape: [4, 2, 3, 2],
            options: ConvOptions::new_with_padding([2, 3], [(2, 0), (1, 3)], [2, 1], 1),
        }
        .check();
    }

    #[test]
    fn matches_the_definition_with_groups_and_a_single_image() {
        Case {
            x_shape: [1, 4, 5, 5],
            w_shape: [6, 2, 2, 3],
            options: ConvOptions::new([1, 2], [0, 1], [1, 1], 2),
        }
        .check();
    }

    #[test]
    fn matches_the_definition_when_whole_taps_fall_in_the_padding() {
        // emolens: on a one-pixel-wide image, four of the five kernel columns only ever see
        // padding (this panicked before).
        Case {
            x_shape: [2, 1, 4, 1],
            w_shape: [2, 1, 3, 5],
            options: ConvOptions::new_with_padding([1, 1], [(1, 1), (2, 2)], [1, 1], 1),
        }
        .check();
    }

    #[test]
    fn kernel_as_large_as_the_padded_image_gives_one_pixel() {
        let x = f32_tensor(&values(2 * 3 * 3, 5), [2, 1, 3, 3]);
        let w = f32_tensor(&values(5 * 5, 6), [1, 1, 5, 5]);
        let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
        let y = conv2d(x, w, None, &options);
        assert_eq!(y.layout().shape().to_vec(), vec![2, 1, 1, 1]);
    }

    #[test]
    fn every_float_type_gives_the_f32_result() {
        let case = Case {
            x_shape: [2, 2, 5, 4],
            w_shape: [3, 2, 3, 3],
            options: ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
        };
        let x = values(case.x_shape.iter().product(), 7);
        let w = values(case.w_shape.iter().product(), 8);
        let want = as_f64(&conv2d(
            f32_tensor(&x, case.x_shape),
            f32_tensor(&w, case.w_shape),
            None,
            &case.options,
        ));
        let f64_result = conv2d(
            tensor(x.clone(), case.x_shape),
            tensor(w.clone(), case.w_shape),
            None,
            &case.options,
        );
        let to_bf16 = |data: &[f64], shape: [usize; 4]| {
            FlexTensor::new(
                Bytes::from_elems(data.iter().map(|&v| bf16::from_f64(v)).collect::<Vec<_>>()),
                Layout::contiguous(Shape::from(shape.to_vec())),
                DType::BF16,
            )
        };
        let bf16_result = conv2d(
            to_bf16(&x, case.x_shape),
            to_bf16(&w, case.w_shape),
            None,
            &case.options,
        );
        for (got, tolerance) in [(f64_result, 1e-5), (bf16_result, 0.1)] {
            for (a, b) in as_f64(&got).iter().zip(&want) {
                assert!((a - b).abs() < tolerance, "{a} against {b}");
            }
        }
    }
}
