//! Where a delivery is in the room history: `<epoch>-<seq>` (the epoch names which
//! history, the sequence number increases across every room). The bus carries it so
//! that every instance hands it to the clients that recover by it.

use std::fmt;
use std::sync::Arc;

/// Where a kept fact is in the history: `<epoch>-<seq>` on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Offset {
    /// Which history (a new one after Redis lost its data, or after a restart with the
    /// local bus).
    pub epoch: Arc<str>,
    /// Position, increasing across every room.
    pub seq: u64,
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.epoch, self.seq)
    }
}

impl Offset {
    /// Reads `<epoch>-<seq>`; `None` for anything else (an offset this gateway did not
    /// give).
    pub fn parse(text: &str) -> Option<Offset> {
        let (epoch, seq) = text.rsplit_once('-')?;
        if epoch.is_empty() || epoch.len() > 32 || !epoch.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        Some(Offset {
            epoch: Arc::from(epoch),
            seq: seq.parse().ok()?,
        })
    }
}

impl serde::Serialize for Offset {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Offset {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Offset, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Offset::parse(&text).ok_or_else(|| serde::de::Error::custom("not an offset"))
    }
}

/// A new random epoch: 8 hex digits (a history mistaken for another once in four
/// billion restarts; every event a recovering client is sent carries it, so it is short).
pub fn new_epoch() -> String {
    format!("{:08x}", fastrand::u32(..))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_read_back_and_refuse_strangers() {
        let o = Offset {
            epoch: Arc::from("00ff"),
            seq: 42,
        };
        assert_eq!(Offset::parse(&o.to_string()), Some(o));
        for bad in ["", "42", "-1", "zz-1", "00ff-", "00ff-x", "00ff--1"] {
            assert_eq!(Offset::parse(bad), None, "{bad}");
        }
    }

    proptest::proptest! {
        /// A client's `offset` is whatever it sends: never a panic, and what reads
        /// back writes back the same.
        #[test]
        fn any_text_reads_or_is_refused(text in "\\PC{0,40}", bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..40)) {
            if let Some(o) = Offset::parse(&text) {
                proptest::prop_assert_eq!(Offset::parse(&o.to_string()), Some(o));
            }
            let lossy = String::from_utf8_lossy(&bytes);
            let _ = Offset::parse(&lossy);
            let _ = serde_json::from_slice::<Offset>(&bytes);
        }
    }
}
