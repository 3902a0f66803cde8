//! Which bytes of a string JSON text must escape (a quote, a backslash, a control
//! character: serde_json escapes those and no others), found eight bytes at a time;
//! a string without any is written between quotes as it is.

/// The first quote, backslash or control character of `b`: eight bytes at a time, as
/// words (most strings of a chat event are a few words long, where a vector search's
/// set-up costs more than it saves).
pub(crate) fn first_special(b: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let special = |c: &u8| matches!(c, b'"' | b'\\' | 0..0x20);
    let mut chunks = b.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        // A byte is flagged when it is zero after the xor (a quote, a backslash) or
        // below 0x20; the lowest flagged byte is exact (borrows only run upwards).
        let zero = |y: u64| y.wrapping_sub(ONES) & !y;
        let flags = (zero(x ^ (ONES * u64::from(b'"')))
            | zero(x ^ (ONES * u64::from(b'\\')))
            | (x.wrapping_sub(ONES * 0x20) & !x))
            & HIGH;
        if flags != 0 {
            return Some(at + (flags.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks.remainder().iter().position(special).map(|n| at + n)
}

/// A JSON string, escaped as serde_json escapes it.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    if first_special(s.as_bytes()).is_none() {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // Serialising a string into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// The length of `s` written as a JSON string, quotes included.
pub(crate) fn json_len(s: &str) -> usize {
    if first_special(s.as_bytes()).is_none() {
        return s.len() + 2;
    }
    let mut text = Vec::with_capacity(s.len() + 8);
    write_str(&mut text, s);
    text.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn first_special_is_the_first_special_byte(b in prop::collection::vec(any::<u8>(), 0..40)) {
            let slow = b.iter().position(|c| matches!(c, b'"' | b'\\' | 0..0x20));
            prop_assert_eq!(first_special(&b), slow);
        }


        #[test]
        fn strings_are_written_as_serde_json_writes_them(s in any::<String>()) {
            let mut out = Vec::new();
            write_str(&mut out, &s);
            prop_assert_eq!(json_len(&s), out.len());
            prop_assert_eq!(out, serde_json::to_vec(&s).unwrap_or_default());
        }
    }
}
