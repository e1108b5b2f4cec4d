//! The emotion CNN trained by `emolens train`: four VGG-style blocks (two 3x3 convolutions with
//! BatchNorm and ReLU, then 2x2 max pooling) of W/2W/4W/8W channels (W = `--width`, 32 for the
//! shipped models: 32/64/128/256), then a dropout-regularised two-layer classifier. 48x48 input
//! gives a 3x3x8W feature map. With action units, a second output layer on the same hidden layer
//! gives one logit per unit (multi-task learning).

mod narrow;

use std::path::Path;

use anyhow::{Context, Result};
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d,
};
use burn::store::ModuleRecord;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

/// Channels of the first convolution block of the shipped models.
pub const DEFAULT_WIDTH: usize = 32;
/// Convolution blocks; each doubles the channels.
const BLOCKS: usize = 4;
/// Width of the hidden fully connected layer.
const HIDDEN_UNITS: usize = 256;
/// Each block halves the image side.
const DOWNSCALE: usize = 1 << BLOCKS;

/// Channels of the convolution blocks of a network `width` wide: `[W, 2W, 4W, 8W]`.
fn block_channels(width: usize) -> [usize; BLOCKS] {
    std::array::from_fn(|block| width << block)
}

/// Name written into the model's provenance, e.g. `vgg4-32-64-128-256`.
pub fn architecture(width: usize) -> String {
    let channels = block_channels(width).map(|c| c.to_string());
    format!("vgg{BLOCKS}-{}", channels.join("-"))
}

/// Shape of the network.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetConfig {
    /// Input channels (1 = gray).
    pub channels: usize,
    /// Input side in pixels; a multiple of 16.
    pub size: usize,
    /// Channels of the first convolution block (the others double it).
    pub width: usize,
    /// Number of classes.
    pub classes: usize,
    /// Number of action units of the second head (0: none).
    pub action_units: usize,
    /// Dropout probability before each fully connected layer.
    pub dropout: f64,
}

/// Two 3x3 convolutions with BatchNorm and ReLU, then 2x2 max pooling.
#[derive(Module, Debug)]
pub struct ConvBlock {
    conv1: Conv2d,
    norm1: BatchNorm,
    conv2: Conv2d,
    norm2: BatchNorm,
    pool: MaxPool2d,
}

/// A convolution block in either form: [`ConvBlock`] (training) or [`FusedBlock`] (export).
trait Block {
    fn forward(&self, x: Tensor<4>) -> Tensor<4>;
}

/// The convolution blocks' features of `images`, flattened: `[batch, features]`.
fn features<B: Block>(blocks: &[B], images: Tensor<4>) -> Tensor<2> {
    let mut x = images;
    for block in blocks {
        x = block.forward(x);
    }
    let [batch, channels, height, width] = x.dims();
    x.reshape([batch, channels * height * width])
}

impl ConvBlock {
    fn new(input: usize, output: usize, device: &Device) -> Self {
        let conv = |i, o| {
            Conv2dConfig::new([i, o], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_bias(false)
                .init(device)
        };
        Self {
            conv1: conv(input, output),
            norm1: BatchNormConfig::new(output).init(device),
            conv2: conv(output, output),
            norm2: BatchNormConfig::new(output).init(device),
            pool: MaxPool2dConfig::new([2, 2]).init(),
        }
    }
}

impl Block for ConvBlock {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = relu(self.norm1.forward(self.conv1.forward(x)));
        let x = relu(self.norm2.forward(self.conv2.forward(x)));
        self.pool.forward(x)
    }
}

/// The emotion classifier; `forward` returns logits.
#[derive(Module, Debug)]
pub struct EmotionNet {
    blocks: Vec<ConvBlock>,
    dropout: Dropout,
    hidden: Linear,
    output: Linear,
    action_units: Option<Linear>,
}

impl EmotionNet {
    /// A freshly initialised network on `device`.
    pub fn new(config: &NetConfig, device: &Device) -> Self {
        let mut blocks = Vec::with_capacity(BLOCKS);
        let mut input = config.channels;
        for output in block_channels(config.width) {
            blocks.push(ConvBlock::new(input, output, device));
            input = output;
        }
        let side = config.size / DOWNSCALE;
        Self {
            blocks,
            dropout: DropoutConfig::new(config.dropout).init(),
            hidden: LinearConfig::new(input * side * side, HIDDEN_UNITS).init(device),
            output: LinearConfig::new(HIDDEN_UNITS, config.classes).init(device),
            action_units: (config.action_units > 0)
                .then(|| LinearConfig::new(HIDDEN_UNITS, config.action_units).init(device)),
        }
    }

    /// Logits `[batch, classes]` of images `[batch, channels, size, size]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.output.forward(self.hidden_layer(images))
    }

    /// Emotion logits `[batch, classes]` and, with an action-unit head, unit logits
    /// `[batch, units]`.
    pub fn forward_heads(&self, images: Tensor<4>) -> (Tensor<2>, Option<Tensor<2>>) {
        let hidden = self.hidden_layer(images);
        let units = self
            .action_units
            .as_ref()
            .map(|head| head.forward(hidden.clone()));
        (self.output.forward(hidden), units)
    }

    /// Whether the network has an action-unit head.
    pub fn has_units(&self) -> bool {
        self.action_units.is_some()
    }

    /// The network with its convolution blocks and hidden layer (the trunk) taken from the
    /// weights file of another training (`MODEL.ckpt/best.bpk`), e.g. the FER2013 network's,
    /// and its own freshly initialised heads: transfer learning for small datasets. The file's
    /// heads are left out, so its classes may differ. A file of a wider network (larger
    /// `--width`) is narrowed to this one's width, keeping each layer's strongest channels.
    ///
    /// # Errors
    /// When the file cannot be read or its trunk does not have this network's shape.
    pub fn with_trunk_from(self, weights: &Path) -> Result<Self> {
        let unreadable = || {
            format!(
                "cannot read {} as network weights; give a .bpk weights file of `emolens train` (an .onnx model cannot serve)",
                weights.display()
            )
        };
        let record = ModuleRecord::load(weights).with_context(unreadable)?;
        let file_width = width_of(weights).with_context(unreadable)?;
        let Self {
            blocks,
            dropout,
            hidden,
            output,
            action_units,
        } = self;
        let width = blocks[0].norm1.gamma.dims()[0];
        let narrowing = file_width > width;
        let trunk = if narrowing {
            // A network of the file's width for the same images: input channels, and the side
            // of the last block's output, whose positions times channels feed the hidden layer.
            let [_, channels, _, _] = blocks[0].conv1.weight.dims();
            let positions = hidden.weight.dims()[0] / (width << (BLOCKS - 1));
            let side = (positions as f64).sqrt().round() as usize;
            let wide = EmotionNet::new(
                &NetConfig {
                    channels,
                    size: side * DOWNSCALE,
                    width: file_width,
                    classes: 1,
                    action_units: 0,
                    dropout: 0.0,
                },
                &hidden.weight.device(),
            );
            Trunk {
                blocks: wide.blocks,
                hidden: wide.hidden,
            }
        } else {
            Trunk { blocks, hidden }
        };
        let trunk = trunk
            .try_load_record(record.allow_unused(true))
            .map_err(|e| {
                // burn lists every mismatched tensor; the first says enough, on one line.
                let all = e.to_string();
                let first = all.split('"').nth(1).unwrap_or(&all).to_owned();
                anyhow::anyhow!(
                    "{} does not hold this network's layers (an `emolens train` weights file of the same image size and at least this --width is needed): {first}",
                    weights.display()
                )
            })?;
        let trunk = if narrowing {
            eprintln!(
                "narrowing the layers of {} from width {file_width} to {width}: each convolution keeps its strongest channels",
                weights.display()
            );
            trunk.narrowed(width)?
        } else {
            trunk
        };
        Ok(Self {
            blocks: trunk.blocks,
            dropout,
            hidden: trunk.hidden,
            output,
            action_units,
        })
    }

    /// The hidden layer after ReLU and dropout, shared by the heads.
    fn hidden_layer(&self, images: Tensor<4>) -> Tensor<2> {
        let x = features(&self.blocks, images);
        let x = relu(self.hidden.forward(self.dropout.forward(x)));
        self.dropout.forward(x)
    }
}

/// The layers of [`EmotionNet`] below its heads, under the same names, so that a weights file
/// of a whole network loads into it.
#[derive(Module, Debug)]
struct Trunk {
    blocks: Vec<ConvBlock>,
    hidden: Linear,
}

/// The network for inference, with each BatchNorm folded into the convolution before it:
/// `w' = w * gamma / sqrt(var + eps)`, `b' = beta - mean * gamma / sqrt(var + eps)`. Same outputs
/// as [`EmotionNet`] in validation mode, fewer operations, and no running statistics, which
/// burn-onnx cannot capture twice for a dynamic batch axis.
#[derive(Module, Debug)]
pub struct FusedNet {
    blocks: Vec<FusedBlock>,
    hidden: Linear,
    output: Linear,
    action_units: Option<Linear>,
}

/// A [`ConvBlock`] with its BatchNorms folded in.
#[derive(Module, Debug)]
pub struct FusedBlock {
    conv1: Conv2d,
    conv2: Conv2d,
    pool: MaxPool2d,
}

impl Block for FusedBlock {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = relu(self.conv1.forward(x));
        self.pool.forward(relu(self.conv2.forward(x)))
    }
}

/// A convolution without bias followed by `norm`, as one convolution with bias.
fn fold(conv: &Conv2d, norm: &BatchNorm) -> Conv2d {
    let scale = norm
        .gamma
        .val()
        .div(norm.running_var.value().add_scalar(norm.epsilon).sqrt());
    let [out_channels] = scale.dims();
    let weight = conv
        .weight
        .val()
        .mul(scale.clone().reshape([out_channels, 1, 1, 1]));
    let bias = norm.beta.val().sub(norm.running_mean.value().mul(scale));
    Conv2d {
        weight: Param::from_tensor(weight),
        bias: Some(Param::from_tensor(bias)),
        stride: conv.stride,
        kernel_size: conv.kernel_size,
        dilation: conv.dilation,
        groups: conv.groups,
        padding: conv.padding.clone(),
    }
}

impl EmotionNet {
    /// The same network with BatchNorm folded into the convolutions, for export. Call it on a
    /// network in validation mode.
    pub fn fuse(&self) -> FusedNet {
        FusedNet {
            blocks: self
                .blocks
                .iter()
                .map(|b| FusedBlock {
                    conv1: fold(&b.conv1, &b.norm1),
                    conv2: fold(&b.conv2, &b.norm2),
                    pool: b.pool.clone(),
                })
                .collect(),
            hidden: self.hidden.clone(),
            output: self.output.clone(),
            action_units: self.action_units.clone(),
        }
    }
}

impl FusedNet {
    /// Logits `[batch, classes]` of images `[batch, channels, size, size]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.output.forward(self.hidden_layer(images))
    }

    /// Emotion logits and action-unit logits (`[batch, 0]` without a unit head), as two
    /// graph outputs.
    pub fn forward_with_units(&self, images: Tensor<4>) -> (Tensor<2>, Tensor<2>) {
        let hidden = self.hidden_layer(images);
        let units = match &self.action_units {
            Some(head) => head.forward(hidden.clone()),
            None => Tensor::<2>::zeros([hidden.dims()[0], 0], &hidden.device()),
        };
        (self.output.forward(hidden), units)
    }

    /// Whether the network has an action-unit head.
    pub fn has_units(&self) -> bool {
        self.action_units.is_some()
    }

    fn hidden_layer(&self, images: Tensor<4>) -> Tensor<2> {
        relu(self.hidden.forward(features(&self.blocks, images)))
    }
}

/// The `--width` of the network whose weights `file` holds: the output channels of its first
/// convolution.
fn width_of(file: &Path) -> Result<usize> {
    let first = "blocks.0.conv1.weight";
    burn_pack::Reader::from_file_exact(file)?
        .into_tensors()?
        .into_iter()
        .find(|t| t.name == first)
        .and_then(|t| t.shape.first().copied())
        .with_context(|| format!("no {first} tensor"))
}

/// Whether `size` fits the network (the blocks halve it four times).
pub fn supports_size(size: usize) -> bool {
    size >= DOWNSCALE && size.is_multiple_of(DOWNSCALE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(classes: usize, action_units: usize) -> NetConfig {
        NetConfig {
            channels: 1,
            size: 48,
            width: DEFAULT_WIDTH,
            classes,
            action_units,
            dropout: 0.0,
        }
    }

    fn first_filter(net: &EmotionNet) -> Vec<f32> {
        net.blocks[0]
            .conv1
            .weight
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap_or_default()
    }

    #[test]
    fn trunk_comes_from_the_file_and_heads_stay_fresh() -> Result<()> {
        let device = Device::flex();
        let dir = tempfile::tempdir()?;
        let weights = dir.path().join("fer.bpk");
        let source = EmotionNet::new(&config(7, 0), &device);
        let source_filter = first_filter(&source);
        source.save_file(&weights)?;

        let fresh = EmotionNet::new(&config(8, 23), &device);
        let fresh_filter = first_filter(&fresh);
        let started = fresh.with_trunk_from(&weights)?;
        assert_eq!(first_filter(&started), source_filter);
        assert_ne!(first_filter(&started), fresh_filter);
        assert!(started.has_units());
        let (logits, units) = started.forward_heads(Tensor::zeros([2, 1, 48, 48], &device));
        assert_eq!(logits.dims(), [2, 8], "its own emotion head");
        assert_eq!(units.map(|u| u.dims()), Some([2, 23]), "its own unit head");
        Ok(())
    }

    #[test]
    fn weights_of_another_shape_are_refused() -> Result<()> {
        let device = Device::flex();
        let dir = tempfile::tempdir()?;
        let weights = dir.path().join("small.bpk");
        EmotionNet::new(
            &NetConfig {
                size: 32,
                ..config(7, 0)
            },
            &device,
        )
        .save_file(&weights)?;
        let err = EmotionNet::new(&config(7, 0), &device)
            .with_trunk_from(&weights)
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(err.contains("does not hold this network's layers"), "{err}");
        let narrow = dir.path().join("narrow.bpk");
        EmotionNet::new(&config(7, 0), &device).save_file(&narrow)?;
        let wider = NetConfig {
            width: DEFAULT_WIDTH * 2,
            ..config(7, 0)
        };
        let err = EmotionNet::new(&wider, &device)
            .with_trunk_from(&narrow)
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(err.contains("--width"), "{err}");
        assert!(err.contains("shape mismatch") && err.len() < 400, "{err}");
        let missing = EmotionNet::new(&config(7, 0), &device)
            .with_trunk_from(&dir.path().join("none.bpk"))
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(missing.contains("as network weights"), "{missing}");
        Ok(())
    }

    #[test]
    fn width_sets_every_block_and_the_name() {
        assert_eq!(architecture(DEFAULT_WIDTH), "vgg4-32-64-128-256");
        assert_eq!(architecture(48), "vgg4-48-96-192-384");
        let device = Device::flex();
        let net = EmotionNet::new(
            &NetConfig {
                width: 48,
                ..config(7, 0)
            },
            &device,
        );
        let widths: Vec<usize> = net.blocks.iter().map(|b| b.norm2.gamma.dims()[0]).collect();
        assert_eq!(widths, [48, 96, 192, 384]);
        let logits = net.forward(Tensor::zeros([2, 1, 48, 48], &device));
        assert_eq!(logits.dims(), [2, 7]);
    }
}
