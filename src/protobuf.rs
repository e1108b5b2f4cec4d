//! The protobuf wire format, as far as emolens writes it (ONNX metadata at export, test
//! fixtures) and reads it (`inspect`): wire types, varints and fields.

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
