//! The protobuf wire format, as far as emolens writes it (ONNX metadata at export, test
//! fixtures) and reads it (`inspect`): wire types, varints and fields, and a reader of a
//! message's fields that names the byte offset of anything malformed.

/// Wire type of varint fields.
pub const WIRE_VARINT: u64 = 0;
/// Wire type of 64-bit fields.
pub const WIRE_FIXED64: u64 = 1;
/// Wire type of length-delimited fields (strings, bytes, embedded messages, packed arrays).
pub const WIRE_LEN: u64 = 2;
/// Wire type of 32-bit fields.
pub const WIRE_FIXED32: u64 = 5;

/// Appends `value` as a base-128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends field `number` holding the varint `value`.
pub fn put_varint_field(out: &mut Vec<u8>, number: u64, value: u64) {
    put_varint(out, (number << 3) | WIRE_VARINT);
    put_varint(out, value);
}

/// Appends field `number` holding `bytes` (a string, bytes or an embedded message).
pub fn put_bytes_field(out: &mut Vec<u8>, number: u64, bytes: &[u8]) {
    put_varint(out, (number << 3) | WIRE_LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// The bytes are not a well-formed protobuf message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed protobuf at byte {offset}: {what}")]
pub struct ProtoError {
    /// Offset from the start of the file.
    pub offset: usize,
    /// What was wrong there.
    pub what: &'static str,
}

/// A field's payload.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value<'a> {
    Varint(u64),
    Fixed64,
    Bytes(&'a [u8]),
    Fixed32([u8; 4]),
}

/// One field of a message: its number, payload and where the payload starts in the file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field<'a> {
    pub(crate) number: u64,
    pub(crate) value: Value<'a>,
    pub(crate) offset: usize,
}

impl<'a> Field<'a> {
    /// An error at this field's payload.
    pub(crate) fn error(&self, what: &'static str) -> ProtoError {
        ProtoError {
            offset: self.offset,
            what,
        }
    }

    pub(crate) fn varint(&self) -> Result<u64, ProtoError> {
        match self.value {
            Value::Varint(value) => Ok(value),
            _ => Err(self.error("expected a varint")),
        }
    }

    pub(crate) fn bytes(&self) -> Result<&'a [u8], ProtoError> {
        match self.value {
            Value::Bytes(bytes) => Ok(bytes),
            _ => Err(self.error("expected a length-delimited field")),
        }
    }

    pub(crate) fn string(&self) -> Result<String, ProtoError> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| self.error("invalid UTF-8 text"))
    }

    pub(crate) fn message(&self) -> Result<Reader<'a>, ProtoError> {
        Ok(Reader::new(self.bytes()?, self.offset))
    }
}

/// Iterates over the fields of one message; stops after the first error.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Offset of `bytes` in the file, for error messages.
    base: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], base: usize) -> Self {
        Self {
            bytes,
            pos: 0,
            base,
        }
    }

    fn error(&self, what: &'static str) -> ProtoError {
        ProtoError {
            offset: self.base + self.pos,
            what,
        }
    }

    fn varint(&mut self) -> Result<u64, ProtoError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .bytes
                .get(self.pos)
                .ok_or_else(|| self.error("truncated varint"))?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.error("varint longer than 10 bytes"))
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], ProtoError> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| self.error("field runs past the end of its message"))?;
        let bytes = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn field(&mut self) -> Result<Field<'a>, ProtoError> {
        let key = self.varint()?;
        let number = key >> 3;
        if number == 0 {
            return Err(self.error("field number 0"));
        }
        let offset = self.base + self.pos;
        let value = match key & 7 {
            WIRE_VARINT => Value::Varint(self.varint()?),
            WIRE_FIXED64 => {
                self.take(8)?;
                Value::Fixed64
            }
            WIRE_LEN => {
                let len = usize::try_from(self.varint()?)
                    .map_err(|_| self.error("length does not fit in memory"))?;
                let start = self.base + self.pos;
                let bytes = self.take(len)?;
                return Ok(Field {
                    number,
                    value: Value::Bytes(bytes),
                    offset: start,
                });
            }
            WIRE_FIXED32 => {
                let b = self.take(4)?;
                Value::Fixed32([b[0], b[1], b[2], b[3]])
            }
            _ => return Err(self.error("unsupported wire type (groups are not used by ONNX)")),
        };
        Ok(Field {
            number,
            value,
            offset,
        })
    }

    /// The payload read as packed varints.
    pub(crate) fn varints(mut self) -> impl Iterator<Item = Result<u64, ProtoError>> + 'a {
        std::iter::from_fn(move || {
            if self.pos >= self.bytes.len() {
                return None;
            }
            let value = self.varint();
            if value.is_err() {
                self.pos = self.bytes.len();
            }
            Some(value)
        })
    }
}

impl<'a> Iterator for Reader<'a> {
    type Item = Result<Field<'a>, ProtoError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.bytes.len() {
            return None;
        }
        let field = self.field();
        if field.is_err() {
            self.pos = self.bytes.len();
        }
        Some(field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_fields_match_the_protobuf_encoding() {
        let mut out = Vec::new();
        put_varint(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
        let mut field = Vec::new();
        put_varint_field(&mut field, 1, 150);
        put_bytes_field(&mut field, 2, b"ab");
        assert_eq!(field, [0x08, 0x96, 0x01, 0x12, 2, b'a', b'b']);
    }
}
