//! A minimal reader of the ONNX protobuf encoding, for just what `emolens inspect` needs: the
//! model's IR version, producer and opset, and its graph's nodes, inputs and initializers.
//! The wire format is small enough that a generated parser (and a new crate) is not worth it;
//! everything else in the file is skipped. Field numbers are those of `onnx/onnx.proto`.

use serde::Serialize;

#[cfg(test)]
use crate::protobuf::WIRE_FIXED32;
use crate::protobuf::{ProtoError, Reader, Value};

/// `TensorProto.DataType.FLOAT`.
pub const DATA_TYPE_FLOAT: i32 = 1;
/// `TensorProto.DataType.UINT8`.
pub const DATA_TYPE_UINT8: i32 = 2;
/// `TensorProto.DataType.INT8`.
pub const DATA_TYPE_INT8: i32 = 3;

/// A tensor's values cannot be read as numbers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TensorDataError {
    /// The tensor holds another element type.
    #[error("`{name}` holds {element_type} values, not float32, int8 or uint8")]
    ElementType {
        /// Tensor name.
        name: String,
        /// Its element type.
        element_type: String,
    },
    /// The dimensions are negative or their product overflows.
    #[error("`{name}` has invalid dimensions {dims:?}")]
    Dims {
        /// Tensor name.
        name: String,
        /// Its dimensions.
        dims: Vec<i64>,
    },
    /// The raw data is not a whole number of values.
    #[error("`{name}` holds {bytes} bytes of raw data, not a whole number of values")]
    Ragged {
        /// Tensor name.
        name: String,
        /// Its raw data length.
        bytes: usize,
    },
    /// The value count does not match the dimensions (external data is not read).
    #[error("`{name}` holds {found} values for dimensions {dims:?}, which need {expected} (weights stored in an external file are not read)")]
    Length {
        /// Tensor name.
        name: String,
        /// Its dimensions.
        dims: Vec<i64>,
        /// Values the dimensions need.
        expected: usize,
        /// Values found in the file.
        found: usize,
    },
}

/// One dimension of a graph input's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Dim {
    /// A fixed size.
    Fixed(i64),
    /// A symbolic size such as `batch`.
    Named(String),
    /// Neither (serialised as `null`).
    Unknown,
}

impl std::fmt::Display for Dim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Fixed(size) => write!(f, "{size}"),
            Self::Named(name) => f.write_str(name),
            Self::Unknown => f.write_str("?"),
        }
    }
}

/// `ModelProto`: the parts `inspect` reads.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Model<'a> {
    /// `ir_version` (1).
    pub ir_version: i64,
    /// `producer_name` (2) and `producer_version` (3), joined by a space.
    pub producer: String,
    /// `opset_import` (8): `(domain, version)`; the default domain is `""`.
    pub opsets: Vec<(String, i64)>,
    /// `graph` (7).
    pub graph: Graph<'a>,
}

/// `GraphProto`: the parts `inspect` reads.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Graph<'a> {
    /// `node` (1), in graph order.
    pub nodes: Vec<Node>,
    /// `initializer` (5): the stored weights.
    pub initializers: Vec<Tensor<'a>>,
    /// `input` (11); with IR < 4 this may list initializers too.
    pub inputs: Vec<ValueInfo>,
}

/// `NodeProto`: one operator.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Node {
    /// `input` (1): the names of the values it reads, in order.
    pub inputs: Vec<String>,
    /// `output` (2): the names of the values it makes, in order.
    pub outputs: Vec<String>,
    /// `op_type` (4), e.g. `Conv`.
    pub op_type: String,
}

/// `ValueInfoProto` of a tensor: name, element type and shape.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ValueInfo {
    /// `name` (1).
    pub name: String,
    /// `TypeProto.tensor_type.elem_type`, a `TensorProto.DataType` code (0 when absent).
    pub element_type: i32,
    /// `TypeProto.tensor_type.shape.dim`.
    pub shape: Vec<Dim>,
}

/// `TensorProto`: a stored tensor, its data borrowed from the file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tensor<'a> {
    /// `name` (8).
    pub name: String,
    /// `dims` (1).
    pub dims: Vec<i64>,
    /// `data_type` (2), a `TensorProto.DataType` code.
    pub data_type: i32,
    /// `float_data` (4).
    float_data: Vec<f32>,
    /// `int32_data` (5): also holds int8 and uint8 values when they are not raw.
    int32_data: Vec<i32>,
    /// `raw_data` (9): little-endian values.
    raw_data: &'a [u8],
}

impl Tensor<'_> {
    /// Number of elements its dimensions describe; `None` for negative or overflowing dims.
    pub fn element_count(&self) -> Option<usize> {
        self.dims.iter().try_fold(1usize, |count, &dim| {
            usize::try_from(dim)
                .ok()
                .and_then(|dim| count.checked_mul(dim))
        })
    }

    /// The values as float32, in row-major order: float32 tensors as they are, int8 and uint8
    /// ones (quantized weights, their zero points) converted.
    ///
    /// # Errors
    /// [`TensorDataError`] for other element types or data that does not fill the dims.
    pub fn values(&self) -> Result<Vec<f32>, TensorDataError> {
        let values: Vec<f32> = match self.data_type {
            DATA_TYPE_FLOAT if self.raw_data.is_empty() => self.float_data.clone(),
            DATA_TYPE_FLOAT => {
                if !self.raw_data.len().is_multiple_of(4) {
                    return Err(TensorDataError::Ragged {
                        name: self.name.clone(),
                        bytes: self.raw_data.len(),
                    });
                }
                self.raw_data
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect()
            }
            DATA_TYPE_INT8 | DATA_TYPE_UINT8 if self.raw_data.is_empty() => {
                self.int32_data.iter().map(|&v| v as f32).collect()
            }
            DATA_TYPE_INT8 => self
                .raw_data
                .iter()
                .map(|&b| f32::from(i8::from_le_bytes([b])))
                .collect(),
            DATA_TYPE_UINT8 => self.raw_data.iter().map(|&b| f32::from(b)).collect(),
            other => {
                return Err(TensorDataError::ElementType {
                    name: self.name.clone(),
                    element_type: element_type_name(other),
                })
            }
        };
        let expected = self.element_count().ok_or_else(|| TensorDataError::Dims {
            name: self.name.clone(),
            dims: self.dims.clone(),
        })?;
        if values.len() != expected {
            return Err(TensorDataError::Length {
                name: self.name.clone(),
                dims: self.dims.clone(),
                expected,
                found: values.len(),
            });
        }
        Ok(values)
    }
}

/// The name of a `TensorProto.DataType` code, e.g. `float32`.
pub fn element_type_name(code: i32) -> String {
    match code {
        1 => "float32".into(),
        2 => "uint8".into(),
        3 => "int8".into(),
        6 => "int32".into(),
        7 => "int64".into(),
        9 => "bool".into(),
        10 => "float16".into(),
        11 => "float64".into(),
        16 => "bfloat16".into(),
        other => format!("data type {other}"),
    }
}

/// Parses a serialized `ModelProto`.
///
/// # Errors
/// [`ProtoError`] when the bytes are not protobuf, or hold no graph (so not an ONNX model).
pub fn parse_model(bytes: &[u8]) -> Result<Model<'_>, ProtoError> {
    let mut model = Model::default();
    let mut has_graph = false;
    for field in Reader::new(bytes, 0) {
        let field = field?;
        match field.number {
            1 => model.ir_version = field.varint()? as i64,
            2 => {
                let name = field.string()?;
                model.producer = join_words(&name, &model.producer);
            }
            3 => {
                let version = field.string()?;
                model.producer = join_words(&model.producer, &version);
            }
            7 => {
                // Protobuf merges repeated occurrences of an embedded message.
                parse_graph(field.message()?, &mut model.graph)?;
                has_graph = true;
            }
            8 => {
                let (mut domain, mut version) = (String::new(), 0);
                for entry in field.message()? {
                    let entry = entry?;
                    match entry.number {
                        1 => domain = entry.string()?,
                        2 => version = entry.varint()? as i64,
                        _ => {}
                    }
                }
                model.opsets.push((domain, version));
            }
            _ => {}
        }
    }
    if !has_graph {
        return Err(ProtoError {
            offset: bytes.len(),
            what: "no graph (ModelProto field 7)",
        });
    }
    Ok(model)
}

fn join_words(first: &str, second: &str) -> String {
    match (first.is_empty(), second.is_empty()) {
        (true, _) => second.to_owned(),
        (_, true) => first.to_owned(),
        _ => format!("{first} {second}"),
    }
}

fn parse_graph<'a>(reader: Reader<'a>, graph: &mut Graph<'a>) -> Result<(), ProtoError> {
    for field in reader {
        let field = field?;
        match field.number {
            1 => graph.nodes.push(parse_node(field.message()?)?),
            5 => graph.initializers.push(parse_tensor(field.message()?)?),
            11 => graph.inputs.push(parse_value_info(field.message()?)?),
            _ => {}
        }
    }
    Ok(())
}

fn parse_node(reader: Reader<'_>) -> Result<Node, ProtoError> {
    let mut node = Node::default();
    for field in reader {
        let field = field?;
        match field.number {
            1 => node.inputs.push(field.string()?),
            2 => node.outputs.push(field.string()?),
            4 => node.op_type = field.string()?,
            _ => {}
        }
    }
    Ok(node)
}

fn parse_tensor(reader: Reader<'_>) -> Result<Tensor<'_>, ProtoError> {
    let mut tensor = Tensor::default();
    for field in reader {
        let field = field?;
        match field.number {
            1 => match field.value {
                Value::Bytes(packed) => {
                    for dim in Reader::new(packed, field.offset).varints() {
                        tensor.dims.push(dim? as i64);
                    }
                }
                _ => tensor.dims.push(field.varint()? as i64),
            },
            2 => tensor.data_type = field.varint()? as i32,
            4 => match field.value {
                Value::Bytes(packed) if packed.len().is_multiple_of(4) => tensor.float_data.extend(
                    packed
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                ),
                Value::Fixed32(bits) => tensor.float_data.push(f32::from_le_bytes(bits)),
                _ => return Err(field.error("float_data is neither 4-byte values nor packed")),
            },
            5 => match field.value {
                Value::Bytes(packed) => {
                    for value in Reader::new(packed, field.offset).varints() {
                        tensor.int32_data.push(value? as i32);
                    }
                }
                _ => tensor.int32_data.push(field.varint()? as i32),
            },
            8 => tensor.name = field.string()?,
            9 => tensor.raw_data = field.bytes()?,
            _ => {}
        }
    }
    Ok(tensor)
}

fn parse_value_info(reader: Reader<'_>) -> Result<ValueInfo, ProtoError> {
    let mut info = ValueInfo::default();
    for field in reader {
        let field = field?;
        match field.number {
            1 => info.name = field.string()?,
            // TypeProto.tensor_type (1): elem_type (1), shape (2).
            2 => {
                for kind in field.message()? {
                    let kind = kind?;
                    if kind.number != 1 {
                        continue;
                    }
                    for part in kind.message()? {
                        let part = part?;
                        match part.number {
                            1 => info.element_type = part.varint()? as i32,
                            2 => info.shape = parse_shape(part.message()?)?,
                            _ => {}
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(info)
}

/// `TensorShapeProto.dim` (1): `Dimension { dim_value (1) | dim_param (2) }`.
fn parse_shape(reader: Reader<'_>) -> Result<Vec<Dim>, ProtoError> {
    let mut shape = Vec::new();
    for field in reader {
        let field = field?;
        if field.number != 1 {
            continue;
        }
        let mut dim = Dim::Unknown;
        for part in field.message()? {
            let part = part?;
            match part.number {
                1 => dim = Dim::Fixed(part.varint()? as i64),
                2 => dim = Dim::Named(part.string()?),
                _ => {}
            }
        }
        shape.push(dim);
    }
    Ok(shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::protobuf::{
        put_bytes_field as len_field, put_varint as varint, put_varint_field as int_field,
    };

    fn floats_le(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    /// A graph with an input `x: float[batch, 1, 2, 2]`, a Conv reading initializer `w` (raw
    /// data, dims unpacked) and a Relu, and a second initializer `b` with packed `float_data`.
    fn sample_model() -> Vec<u8> {
        let mut conv = Vec::new();
        for input in ["x", "w", "b"] {
            len_field(&mut conv, 1, input.as_bytes());
        }
        len_field(&mut conv, 2, b"y");
        len_field(&mut conv, 4, b"Conv");
        let mut relu = Vec::new();
        len_field(&mut relu, 1, b"y");
        len_field(&mut relu, 4, b"Relu");

        let mut weight = Vec::new();
        for dim in [2, 1, 1, 2] {
            int_field(&mut weight, 1, dim);
        }
        int_field(&mut weight, 2, DATA_TYPE_FLOAT as u64);
        len_field(&mut weight, 8, b"w");
        len_field(&mut weight, 9, &floats_le(&[1.0, -2.0, 0.5, 4.0]));
        let mut bias = Vec::new();
        let mut packed_dims = Vec::new();
        varint(&mut packed_dims, 2);
        len_field(&mut bias, 1, &packed_dims);
        int_field(&mut bias, 2, DATA_TYPE_FLOAT as u64);
        len_field(&mut bias, 4, &floats_le(&[0.25, -0.75]));
        len_field(&mut bias, 8, b"b");

        let mut shape = Vec::new();
        let mut batch = Vec::new();
        len_field(&mut batch, 2, b"batch");
        len_field(&mut shape, 1, &batch);
        for size in [1, 2, 2] {
            let mut dim = Vec::new();
            int_field(&mut dim, 1, size);
            len_field(&mut shape, 1, &dim);
        }
        let mut tensor_type = Vec::new();
        int_field(&mut tensor_type, 1, DATA_TYPE_FLOAT as u64);
        len_field(&mut tensor_type, 2, &shape);
        let mut type_proto = Vec::new();
        len_field(&mut type_proto, 1, &tensor_type);
        let mut input = Vec::new();
        len_field(&mut input, 1, b"x");
        len_field(&mut input, 2, &type_proto);

        let mut graph = Vec::new();
        len_field(&mut graph, 1, &conv);
        len_field(&mut graph, 1, &relu);
        len_field(&mut graph, 2, b"g");
        len_field(&mut graph, 5, &weight);
        len_field(&mut graph, 5, &bias);
        len_field(&mut graph, 11, &input);

        let mut opset = Vec::new();
        len_field(&mut opset, 1, b"");
        int_field(&mut opset, 2, 17);
        let mut model = Vec::new();
        int_field(&mut model, 1, 8);
        len_field(&mut model, 2, b"test");
        len_field(&mut model, 3, b"1.0");
        len_field(&mut model, 7, &graph);
        len_field(&mut model, 8, &opset);
        // A field the reader skips: metadata_props.
        len_field(&mut model, 14, b"\x0a\x01k\x12\x01v");
        model
    }

    #[test]
    fn reads_the_graph_of_a_hand_built_model() -> Result<(), Box<dyn std::error::Error>> {
        let bytes = sample_model();
        let model = parse_model(&bytes)?;
        assert_eq!(model.ir_version, 8);
        assert_eq!(model.producer, "test 1.0");
        assert_eq!(model.opsets, [(String::new(), 17)]);
        let graph = &model.graph;
        let ops: Vec<&str> = graph.nodes.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(ops, ["Conv", "Relu"]);
        assert_eq!(graph.nodes[0].inputs, ["x", "w", "b"]);
        assert_eq!(graph.nodes[0].outputs, ["y"]);
        assert_eq!(graph.inputs.len(), 1);
        assert_eq!(graph.inputs[0].name, "x");
        assert_eq!(graph.inputs[0].element_type, DATA_TYPE_FLOAT);
        assert_eq!(
            graph.inputs[0].shape,
            [
                Dim::Named("batch".into()),
                Dim::Fixed(1),
                Dim::Fixed(2),
                Dim::Fixed(2)
            ]
        );
        let weight = &graph.initializers[0];
        assert_eq!(
            (weight.name.as_str(), weight.dims.as_slice()),
            ("w", &[2, 1, 1, 2][..])
        );
        assert_eq!(weight.element_count(), Some(4));
        assert_eq!(weight.values()?, [1.0, -2.0, 0.5, 4.0]);
        let bias = &graph.initializers[1];
        assert_eq!((bias.name.as_str(), bias.dims.as_slice()), ("b", &[2][..]));
        assert_eq!(bias.values()?, [0.25, -0.75]);
        Ok(())
    }

    #[test]
    fn unpacked_float_data_is_read() -> Result<(), Box<dyn std::error::Error>> {
        let mut tensor = Vec::new();
        int_field(&mut tensor, 1, 2);
        int_field(&mut tensor, 2, DATA_TYPE_FLOAT as u64);
        for value in [3.0f32, -1.5] {
            varint(&mut tensor, 4 << 3 | WIRE_FIXED32);
            tensor.extend_from_slice(&value.to_le_bytes());
        }
        let tensor = parse_tensor(Reader::new(&tensor, 0))?;
        assert_eq!(tensor.values()?, [3.0, -1.5]);
        Ok(())
    }

    #[test]
    fn int8_and_uint8_data_are_read_as_numbers() -> Result<(), Box<dyn std::error::Error>> {
        for (data_type, expected) in [
            (DATA_TYPE_INT8, [-1.0, 127.0, -128.0]),
            (DATA_TYPE_UINT8, [255.0, 127.0, 128.0]),
        ] {
            let mut tensor = Vec::new();
            int_field(&mut tensor, 1, 3);
            int_field(&mut tensor, 2, data_type as u64);
            len_field(&mut tensor, 9, &[0xff, 0x7f, 0x80]);
            assert_eq!(parse_tensor(Reader::new(&tensor, 0))?.values()?, expected);
        }
        // Not raw: int32_data, packed.
        let mut packed = Vec::new();
        for value in [5u64, 0, 3] {
            varint(&mut packed, value);
        }
        let mut tensor = Vec::new();
        int_field(&mut tensor, 1, 3);
        int_field(&mut tensor, 2, DATA_TYPE_UINT8 as u64);
        len_field(&mut tensor, 5, &packed);
        assert_eq!(
            parse_tensor(Reader::new(&tensor, 0))?.values()?,
            [5.0, 0.0, 3.0]
        );
        Ok(())
    }

    #[test]
    fn data_that_does_not_fill_the_dims_is_an_error() -> Result<(), Box<dyn std::error::Error>> {
        let mut tensor = Vec::new();
        int_field(&mut tensor, 1, 3);
        int_field(&mut tensor, 2, DATA_TYPE_FLOAT as u64);
        len_field(&mut tensor, 8, b"t");
        len_field(&mut tensor, 9, &floats_le(&[1.0, 2.0]));
        let err = parse_tensor(Reader::new(&tensor, 0))?.values().unwrap_err();
        assert!(
            matches!(
                err,
                TensorDataError::Length {
                    expected: 3,
                    found: 2,
                    ..
                }
            ),
            "{err}"
        );

        let mut ints = Vec::new();
        int_field(&mut ints, 2, 7);
        let err = parse_tensor(Reader::new(&ints, 0))?.values().unwrap_err();
        assert!(err.to_string().contains("int64"), "{err}");
        Ok(())
    }

    #[test]
    fn truncated_and_foreign_bytes_are_errors() {
        let bytes = sample_model();
        let err = parse_model(&bytes[..bytes.len() - 3]).unwrap_err();
        assert!(err.what.contains("past the end"), "{err}");
        // Plain text: 'h' is field 13 as a varint, then 'l' asks for a group.
        assert!(parse_model(b"hello, world").is_err());
        let err = parse_model(&[]).unwrap_err();
        assert!(err.what.contains("no graph"), "{err}");
        let err = parse_model(&[0x08, 0xff]).unwrap_err();
        assert_eq!((err.offset, err.what), (2, "truncated varint"));
    }
}
