//! emolens: batch normalisation with the batch's statistics (training) and its gradients, each in
//! two passes over the data.
//!
//! burn-backend's generic versions build these out of tensor operations: every statistic swaps
//! the batch and channel axes (a full copy) and every formula step is its own pass, about twenty
//! passes for the forward and backward together. Here the statistics are summed per channel
//! straight from the NCHW data (channels in parallel, in f64), then one pass writes the output
//! (planes in parallel). f32 and f64 run in their own type, f16 and bf16 through f32.

use alloc::vec::Vec;
use burn_backend::DType;
use burn_std::{Bytes, Shape, bf16, f16};
use num_traits::{Float, ToPrimitive};

use crate::ops::module::{cast_from_f32, cast_to_f32};
use crate::{FlexTensor, Layout};

/// Output of [`batch_norm_train`]: the normalised input and the batch's mean and biased
/// variance per channel.
pub struct Normalised {
    pub output: FlexTensor,
    pub mean: FlexTensor,
    pub variance: FlexTensor,
}

/// Gradients of [`batch_norm_train`] with respect to its input, `gamma` and `beta`.
pub struct NormalisedGradients {
    pub x_grad: FlexTensor,
    pub gamma_grad: FlexTensor,
    pub beta_grad: FlexTensor,
}

/// Normalises `x` (`[batch, channels, ...]`) with each channel's mean and biased variance over
/// the batch, then scales by `gamma` and shifts by `beta` (`[channels]`).
pub fn batch_norm_train(
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    epsilon: f64,
) -> Normalised {
    match x.dtype() {
        DType::F32 => forward::<f32>(&x, &gamma, &beta, epsilon),
        DType::F64 => forward::<f64>(&x, &gamma, &beta, epsilon),
        DType::F16 => {
            let widened = |t: &FlexTensor| cast_to_f32(t.clone(), f16::to_f32);
            let result = forward::<f32>(&widened(&x), &widened(&gamma), &widened(&beta), epsilon);
            narrowed(result, f16::from_f32)
        }
        DType::BF16 => {
            let widened = |t: &FlexTensor| cast_to_f32(t.clone(), bf16::to_f32);
            let result = forward::<f32>(&widened(&x), &widened(&gamma), &widened(&beta), epsilon);
            narrowed(result, bf16::from_f32)
        }
        dtype => panic!("batch_norm_train: unsupported dtype {dtype:?}"),
    }
}

/// Gradients of [`batch_norm_train`] given the gradient of its output; `mean` and `variance` are
/// the statistics it returned.
pub fn batch_norm_train_backward(
    x: FlexTensor,
    gamma: FlexTensor,
    mean: FlexTensor,
    variance: FlexTensor,
    epsilon: f64,
    output_grad: FlexTensor,
) -> NormalisedGradients {
    let inputs = [x, gamma, mean, variance, output_grad];
    match inputs[0].dtype() {
        DType::F32 => backward::<f32>(&inputs, epsilon),
        DType::F64 => backward::<f64>(&inputs, epsilon),
        DType::F16 => {
            let widened = inputs.map(|t| cast_to_f32(t, f16::to_f32));
            narrowed_gradients(backward::<f32>(&widened, epsilon), f16::from_f32)
        }
        DType::BF16 => {
            let widened = inputs.map(|t| cast_to_f32(t, bf16::to_f32));
            narrowed_gradients(backward::<f32>(&widened, epsilon), bf16::from_f32)
        }
        dtype => panic!("batch_norm_train_backward: unsupported dtype {dtype:?}"),
    }
}

/// Float types normalised in their own type.
trait NormElement: Float + bytemuck::Pod + burn_backend::Element + Send + Sync {}
impl NormElement for f32 {}
impl NormElement for f64 {}

fn narrowed<E: burn_backend::Element + bytemuck::Pod>(
    result: Normalised,
    from_f32: fn(f32) -> E,
) -> Normalised {
    Normalised {
        output: cast_from_f32(result.output, from_f32),
        mean: cast_from_f32(result.mean, from_f32),
        variance: cast_from_f32(result.variance, from_f32),
    }
}

fn narrowed_gradients<E: burn_backend::Element + bytemuck::Pod>(
    gradients: NormalisedGradients,
    from_f32: fn(f32) -> E,
) -> NormalisedGradients {
    NormalisedGradients {
        x_grad: cast_from_f32(gradients.x_grad, from_f32),
        gamma_grad: cast_from_f32(gradients.gamma_grad, from_f32),
        beta_grad: cast_from_f32(gradients.beta_grad, from_f32),
    }
}

/// How `[batch, channels, ...]` data splits into planes: one `plane`-long run of one channel of
/// one image each.
#[derive(Clone, Copy)]
struct Planes {
    channels: usize,
    plane: usize,
}

impl Planes {
    fn of(x: &FlexTensor) -> Self {
        let shape = x.layout().shape();
        let channels = shape[1];
        let plane = shape.iter().skip(2).product();
        Self { channels, plane }
    }

    /// Values per channel over the batch.
    fn per_channel(&self, len: usize) -> usize {
        len / self.channels.max(1)
    }

    /// The planes of `channel` in `data`.
    fn of_channel<'a, T>(&self, data: &'a [T], channel: usize) -> impl Iterator<Item = &'a [T]> {
        data.chunks_exact(self.plane.max(1))
            .skip(channel)
            .step_by(self.channels.max(1))
    }
}

/// `f(channel)` for every channel, in parallel when there is enough data.
fn per_channel<R: Send>(
    channels: usize,
    len: usize,
    f: impl Fn(usize) -> R + Send + Sync,
) -> Vec<R> {
    #[cfg(feature = "rayon")]
    if len >= super::PARALLEL_THRESHOLD {
        use rayon::prelude::*;
        return (0..channels).into_par_iter().map(f).collect();
    }
    let _ = len;
    (0..channels).map(f).collect()
}

/// Runs `f(plane index, plane)` for every plane of `out`, in parallel when there is enough data;
/// plane `i` is channel `i % channels` of image `i / channels`.
fn for_each_plane<T: Send>(
    planes: Planes,
    out: &mut [T],
    f: impl Fn(usize, &mut [T]) + Send + Sync,
) {
    if out.is_empty() {
        return;
    }
    let plane = planes.plane.max(1);
    #[cfg(feature = "rayon")]
    if out.len() >= super::PARALLEL_THRESHOLD {
        use rayon::prelude::*;
        out.par_chunks_mut(plane)
            .enumerate()
            .for_each(|(index, chunk)| f(index, chunk));
        return;
    }
    for (index, chunk) in out.chunks_mut(plane).enumerate() {
        f(index, chunk);
    }
}

fn values<T: NormElement>(tensor: &FlexTensor) -> Vec<T> {
    tensor.to_contiguous().storage::<T>().to_vec()
}

fn tensor<T: NormElement>(data: Vec<T>, shape: Shape) -> FlexTensor {
    FlexTensor::new(
        Bytes::from_elems(data),
        Layout::contiguous(shape),
        T::dtype(),
    )
}

fn cast<T: NormElement>(value: f64) -> T {
    T::from(value).expect("a float converts to every float type")
}

fn wide<T: NormElement>(value: T) -> f64 {
    ToPrimitive::to_f64(&value).expect("every float converts to f64")
}

fn forward<T: NormElement>(
    x: &FlexTensor,
    gamma: &FlexTensor,
    beta: &FlexTensor,
    epsilon: f64,
) -> Normalised {
    let planes = Planes::of(x);
    let x_contiguous = x.to_contiguous();
    let data = x_contiguous.storage::<T>();
    let count = planes.per_channel(data.len()).max(1) as f64;
    let statistics = per_channel(planes.channels, data.len(), |channel| {
        let sum: f64 = planes
            .of_channel(data, channel)
            .flatten()
            .map(|&v| wide(v))
            .sum();
        let mean = sum / count;
        let squares: f64 = planes
            .of_channel(data, channel)
            .flatten()
            .map(|&v| (wide(v) - mean).powi(2))
            .sum();
        (mean, squares / count)
    });
    let (gamma, beta) = (values::<T>(gamma), values::<T>(beta));
    // y = (x - mean) * scale + beta, per channel.
    let affine: Vec<(T, T, T)> = statistics
        .iter()
        .enumerate()
        .map(|(c, &(mean, variance))| {
            let scale = wide(gamma[c]) / (variance + epsilon).sqrt();
            (cast(mean), cast(scale), beta[c])
        })
        .collect();
    let mut output = data.to_vec();
    for_each_plane(planes, &mut output, |index, plane| {
        let (mean, scale, beta) = affine[index % planes.channels];
        for v in plane {
            *v = (*v - mean) * scale + beta;
        }
    });
    let channels = Shape::from(alloc::vec![planes.channels]);
    Normalised {
        output: tensor(output, x.layout().shape().clone()),
        mean: tensor(
            statistics.iter().map(|&(m, _)| cast::<T>(m)).collect(),
            channels.clone(),
        ),
        variance: tensor(
            statistics.iter().map(|&(_, v)| cast::<T>(v)).collect(),
            channels,
        ),
    }
}

/// `inputs`: x, gamma, mean, variance, output gradient.
fn backward<T: NormElement>(inputs: &[FlexTensor; 5], epsilon: f64) -> NormalisedGradients {
    let [x, gamma, mean, variance, output_grad] = inputs;
    let planes = Planes::of(x);
    let (x_contiguous, grad_contiguous) = (x.to_contiguous(), output_grad.to_contiguous());
    let (data, grad) = (x_contiguous.storage::<T>(), grad_contiguous.storage::<T>());
    let count = planes.per_channel(data.len()).max(1) as f64;
    let (gamma, mean, variance) = (values::<T>(gamma), values::<T>(mean), values::<T>(variance));
    let inv_std: Vec<f64> = variance
        .iter()
        .map(|&v| 1.0 / (wide(v) + epsilon).sqrt())
        .collect();
    // Per channel: the sum of the output gradient (beta's gradient) and of the output gradient
    // times the normalised input (gamma's gradient).
    let sums = per_channel(planes.channels, data.len(), |channel| {
        let (m, s) = (wide(mean[channel]), inv_std[channel]);
        planes
            .of_channel(data, channel)
            .zip(planes.of_channel(grad, channel))
            .flat_map(|(xs, gs)| xs.iter().zip(gs))
            .fold((0.0, 0.0), |(sum, weighted), (&x, &g)| {
                let g = wide(g);
                (sum + g, weighted + g * (wide(x) - m) * s)
            })
    });
    // dx = gamma / std * (dy - mean(dy) - x̂ * mean(dy * x̂)), written per channel as
    // dy * a + (x - mean) * b + c.
    let coefficients: Vec<[T; 4]> = sums
        .iter()
        .enumerate()
        .map(|(c, &(sum, weighted))| {
            let (s, scale) = (inv_std[c], wide(gamma[c]) * inv_std[c]);
            let centred_factor = -scale * s * weighted / count;
            [
                mean[c],
                cast(scale),
                cast(centred_factor),
                cast(-scale * sum / count),
            ]
        })
        .collect();
    let mut x_grad = grad.to_vec();
    for_each_plane(planes, &mut x_grad, |index, plane| {
        let [mean, a, b, c] = coefficients[index % planes.channels];
        let xs = &data[index * plane.len()..][..plane.len()];
        for (g, &x) in plane.iter_mut().zip(xs) {
            *g = *g * a + (x - mean) * b + c;
        }
    });
    let channels = Shape::from(alloc::vec![planes.channels]);
    NormalisedGradients {
        x_grad: tensor(x_grad, x.layout().shape().clone()),
        gamma_grad: tensor(
            sums.iter().map(|&(_, w)| cast::<T>(w)).collect(),
            channels.clone(),
        ),
        beta_grad: tensor(sums.iter().map(|&(s, _)| cast::<T>(s)).collect(), channels),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values in -1..1 plus `offset`.
    fn values_from(len: usize, seed: u64, offset: f64) -> Vec<f64> {
        let mut state = seed;
        (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0 + offset
            })
            .collect()
    }

    fn f64_tensor(data: &[f64], shape: &[usize]) -> FlexTensor {
        tensor(data.to_vec(), Shape::from(shape.to_vec()))
    }

    const SHAPE: [usize; 4] = [3, 2, 4, 5];
    const EPSILON: f64 = 1e-5;

    /// Σ y·weights of the normalised `x`: a scalar whose gradients the backward pass gives.
    fn loss(x: &[f64], gamma: &[f64], beta: &[f64], weights: &[f64]) -> f64 {
        let result = batch_norm_train(
            f64_tensor(x, &SHAPE),
            f64_tensor(gamma, &[2]),
            f64_tensor(beta, &[2]),
            EPSILON,
        );
        let y = result.output.storage::<f64>();
        y.iter().zip(weights).map(|(y, w)| y * w).sum()
    }

    #[test]
    fn normalises_each_channel_over_the_batch() {
        check_normalised(SHAPE);
        // Large enough for the channels and planes to run in parallel.
        check_normalised([5, 2, 180, 160]);
    }

    fn check_normalised(shape: [usize; 4]) {
        let len: usize = shape.iter().product();
        let x = values_from(len, 1, 3.0);
        let result = batch_norm_train(
            f64_tensor(&x, &shape),
            f64_tensor(&[2.0, 0.5], &[2]),
            f64_tensor(&[1.0, -1.0], &[2]),
            EPSILON,
        );
        let plane = shape[2] * shape[3];
        for channel in 0..2 {
            let own: Vec<usize> = (0..len).filter(|i| (i / plane) % 2 == channel).collect();
            let n = own.len() as f64;
            let mean = own.iter().map(|&i| x[i]).sum::<f64>() / n;
            let variance = own.iter().map(|&i| (x[i] - mean).powi(2)).sum::<f64>() / n;
            assert!((result.mean.storage::<f64>()[channel] - mean).abs() < 1e-9);
            assert!((result.variance.storage::<f64>()[channel] - variance).abs() < 1e-9);
            let (gamma, beta) = ([2.0, 0.5][channel], [1.0, -1.0][channel]);
            for &i in &own {
                let want = (x[i] - mean) / (variance + EPSILON).sqrt() * gamma + beta;
                assert!((result.output.storage::<f64>()[i] - want).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let len: usize = SHAPE.iter().product();
        let (x, weights) = (values_from(len, 2, 0.5), values_from(len, 3, 0.0));
        let (gamma, beta) = (vec![1.5, -0.7], vec![0.2, 0.3]);
        let statistics = batch_norm_train(
            f64_tensor(&x, &SHAPE),
            f64_tensor(&gamma, &[2]),
            f64_tensor(&beta, &[2]),
            EPSILON,
        );
        let gradients = batch_norm_train_backward(
            f64_tensor(&x, &SHAPE),
            f64_tensor(&gamma, &[2]),
            statistics.mean,
            statistics.variance,
            EPSILON,
            f64_tensor(&weights, &SHAPE),
        );
        let step = 1e-6;
        let numeric = |which: usize, index: usize| {
            let mut inputs = [x.clone(), gamma.clone(), beta.clone()];
            inputs[which][index] += step;
            let up = loss(&inputs[0], &inputs[1], &inputs[2], &weights);
            inputs[which][index] -= 2.0 * step;
            let down = loss(&inputs[0], &inputs[1], &inputs[2], &weights);
            (up - down) / (2.0 * step)
        };
        let analytic = [
            gradients.x_grad.storage::<f64>().to_vec(),
            gradients.gamma_grad.storage::<f64>().to_vec(),
            gradients.beta_grad.storage::<f64>().to_vec(),
        ];
        for (which, analytic) in analytic.iter().enumerate() {
            for (index, &a) in analytic.iter().enumerate() {
                let n = numeric(which, index);
                assert!(
                    (a - n).abs() < 1e-6,
                    "input {which}[{index}]: {a} against {n}"
                );
            }
        }
    }

    #[test]
    fn half_precision_runs_through_f32() {
        let x: Vec<f16> = values_from(24, 4, 0.0)
            .iter()
            .map(|&v| f16::from_f64(v))
            .collect();
        let half = |data: Vec<f16>, shape: &[usize]| {
            FlexTensor::new(
                Bytes::from_elems(data),
                Layout::contiguous(Shape::from(shape.to_vec())),
                DType::F16,
            )
        };
        let one = || half(vec![f16::ONE; 2], &[2]);
        let zero = || half(vec![f16::ZERO; 2], &[2]);
        let result = batch_norm_train(half(x, &[3, 2, 2, 2]), one(), zero(), EPSILON);
        assert_eq!(result.output.dtype(), DType::F16);
        let output = result.output.storage::<f16>();
        // Every channel comes out with mean 0 and variance 1.
        let plane = 4;
        for channel in 0..2 {
            let own: Vec<f64> = (0..24)
                .filter(|i| (i / plane) % 2 == channel)
                .map(|i| output[i].to_f64())
                .collect();
            let mean = own.iter().sum::<f64>() / own.len() as f64;
            let variance = own.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / own.len() as f64;
            assert!(
                mean.abs() < 1e-2 && (variance - 1.0).abs() < 1e-2,
                "{mean} {variance}"
            );
        }
    }
}
