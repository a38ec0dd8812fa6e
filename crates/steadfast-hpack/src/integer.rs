//! HPACK prefix-coded integers (RFC 7541 §5.1).

use bytes::BufMut;

use crate::DecoderError;

/// Largest integer the decoder accepts (RFC 7541 §5.1 lets implementations limit integers; nothing in HPACK
/// legitimately needs more than 32 bits).
pub(crate) const MAX_INTEGER: u64 = u32::MAX as u64;

/// At most this many continuation octets follow the prefix (5 × 7 bits covers any value up to `MAX_INTEGER`).
const MAX_CONTINUATION_OCTETS: usize = 5;

/// Encodes `value` with an N-bit prefix (`prefix_bits` in 1..=8). `flags` supplies the bits of the first octet
/// above the prefix (e.g. `0x80` for an indexed header field); bits inside the prefix must be zero in `flags`.
pub(crate) fn encode<B: BufMut>(value: usize, prefix_bits: u8, flags: u8, dst: &mut B) {
    debug_assert!((1..=8).contains(&prefix_bits));
    let max_prefix: usize = (1usize << prefix_bits) - 1;
    if value < max_prefix {
        // Fits in the prefix; the cast cannot truncate since value < 2^prefix_bits <= 256.
        dst.put_u8(flags | value as u8);
        return;
    }
    dst.put_u8(flags | max_prefix as u8);
    let mut rest = value - max_prefix;
    while rest >= 128 {
        dst.put_u8((rest & 0x7f) as u8 | 0x80);
        rest >>= 7;
    }
    dst.put_u8(rest as u8);
}

/// Decodes an integer with an N-bit prefix starting at `buf[*pos]`, advancing `*pos` past it.
///
/// The bits of the first octet above the prefix are ignored (the caller has already looked at them).
/// Values above [`MAX_INTEGER`] or encodings with more than five continuation octets are rejected with
/// [`DecoderError::IntegerOverflow`]; running out of input gives [`DecoderError::Truncated`].
pub(crate) fn decode(buf: &[u8], pos: &mut usize, prefix_bits: u8) -> Result<usize, DecoderError> {
    debug_assert!((1..=8).contains(&prefix_bits));
    let mut i = *pos;
    let first = *buf.get(i).ok_or(DecoderError::Truncated)?;
    i += 1;
    let max_prefix: u8 = ((1u16 << prefix_bits) - 1) as u8;
    let mut value = u64::from(first & max_prefix);
    if value < u64::from(max_prefix) {
        *pos = i;
        return to_usize(value);
    }
    let mut shift = 0u32;
    for _ in 0..MAX_CONTINUATION_OCTETS {
        let b = *buf.get(i).ok_or(DecoderError::Truncated)?;
        i += 1;
        // shift <= 28 and the payload is 7 bits, so this stays below 2^35 + 2^8: no u64 overflow.
        value += u64::from(b & 0x7f) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            if value > MAX_INTEGER {
                return Err(DecoderError::IntegerOverflow);
            }
            *pos = i;
            return to_usize(value);
        }
    }
    // A sixth continuation octet would be needed: either the value is too large or the encoding is padded with
    // zero-valued continuation octets beyond any sensible length (RFC 7541 §5.1 allows rejecting both).
    Err(DecoderError::IntegerOverflow)
}

fn to_usize(v: u64) -> Result<usize, DecoderError> {
    usize::try_from(v).map_err(|_| DecoderError::IntegerOverflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(value: usize, prefix: u8, flags: u8) -> Vec<u8> {
        let mut v = Vec::new();
        encode(value, prefix, flags, &mut v);
        v
    }

    fn dec(buf: &[u8], prefix: u8) -> Result<(usize, usize), DecoderError> {
        let mut pos = 0;
        decode(buf, &mut pos, prefix).map(|v| (v, pos))
    }

    /// RFC 7541 C.1.1: encoding 10 using a 5-bit prefix.
    #[test]
    fn rfc_c_1_1() {
        assert_eq!(enc(10, 5, 0), [0b0000_1010]);
        // The three high bits are unrelated to the integer and must be ignored / preserved.
        assert_eq!(enc(10, 5, 0b1110_0000), [0b1110_1010]);
        assert_eq!(dec(&[0b1110_1010], 5), Ok((10, 1)));
    }

    /// RFC 7541 C.1.2: encoding 1337 using a 5-bit prefix.
    #[test]
    fn rfc_c_1_2() {
        assert_eq!(enc(1337, 5, 0), [0b0001_1111, 0b1001_1010, 0b0000_1010]);
        assert_eq!(
            dec(&[0b0001_1111, 0b1001_1010, 0b0000_1010], 5),
            Ok((1337, 3))
        );
    }

    /// RFC 7541 C.1.3: encoding 42 starting at an octet boundary (8-bit prefix).
    #[test]
    fn rfc_c_1_3() {
        assert_eq!(enc(42, 8, 0), [0b0010_1010]);
        assert_eq!(dec(&[0b0010_1010], 8), Ok((42, 1)));
    }

    #[test]
    fn boundaries_round_trip() {
        for prefix in 1..=8u8 {
            let max_prefix = (1usize << prefix) - 1;
            for v in [
                0,
                1,
                max_prefix.saturating_sub(1),
                max_prefix,
                max_prefix + 1,
                max_prefix + 127,
                max_prefix + 128,
                16_383,
                1 << 20,
                u32::MAX as usize - 1,
                u32::MAX as usize,
            ] {
                let bytes = enc(v, prefix, 0);
                assert_eq!(
                    dec(&bytes, prefix),
                    Ok((v, bytes.len())),
                    "v={v} prefix={prefix}"
                );
                // Every strict prefix of the encoding is truncated.
                for cut in 0..bytes.len() {
                    assert_eq!(dec(&bytes[..cut], prefix), Err(DecoderError::Truncated));
                }
            }
        }
    }

    #[test]
    fn decode_starts_at_pos() {
        let buf = [0xff, 0x1f, 0x9a, 0x0a, 0x05];
        let mut pos = 1;
        assert_eq!(decode(&buf, &mut pos, 5), Ok(1337));
        assert_eq!(pos, 4);
        assert_eq!(decode(&buf, &mut pos, 7), Ok(5));
        assert_eq!(pos, 5);
        assert_eq!(decode(&buf, &mut pos, 7), Err(DecoderError::Truncated));
    }

    #[test]
    fn overflow_rejected() {
        // u32::MAX + 1 with a 5-bit prefix.
        let bytes = enc(u32::MAX as usize + 1, 5, 0);
        assert_eq!(dec(&bytes, 5), Err(DecoderError::IntegerOverflow));
        // Maximal 5-continuation-octet value (~2^35).
        assert_eq!(
            dec(&[0x1f, 0xff, 0xff, 0xff, 0xff, 0x7f], 5),
            Err(DecoderError::IntegerOverflow)
        );
        // Six continuation octets, even if they encode a small value.
        assert_eq!(
            dec(&[0x1f, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00], 5),
            Err(DecoderError::IntegerOverflow)
        );
        // Endless continuation.
        assert_eq!(dec(&[0xff; 64], 7), Err(DecoderError::IntegerOverflow));
        // Zero-padded but within five continuation octets is accepted.
        assert_eq!(dec(&[0x1f, 0x80, 0x80, 0x00], 5), Ok((31, 4)));
    }
}
