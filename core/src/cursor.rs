//! Positions in the notification backplane: `{unix ms}-{sequence}`, the shape of a Redis stream
//! entry id. Every notification a hub pushes carries one, and a client that reconnects with the
//! last one it saw (`?after=`) is sent what it missed.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Cursor {
    pub millis: u64,
    pub sequence: u64,
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error("a cursor is `{{milliseconds}}-{{sequence}}`, e.g. 1733100000000-0")]
pub struct CursorError;

impl Cursor {
    /// The position after `last` at wall-clock time `now_ms`: time-ordered, and still increasing
    /// when the clock steps back (as Redis assigns stream ids).
    pub fn next_after(last: Cursor, now_ms: u64) -> Cursor {
        if now_ms > last.millis {
            Cursor {
                millis: now_ms,
                sequence: 0,
            }
        } else {
            Cursor {
                millis: last.millis,
                sequence: last.sequence + 1,
            }
        }
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.millis, self.sequence)
    }
}

impl FromStr for Cursor {
    type Err = CursorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (millis, sequence) = s.split_once('-').ok_or(CursorError)?;
        let number = |part: &str| {
            (!part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
                .then(|| part.parse().ok())
                .flatten()
                .ok_or(CursorError)
        };
        Ok(Cursor {
            millis: number(millis)?,
            sequence: number(sequence)?,
        })
    }
}

impl Serialize for Cursor {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cursor {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_redis_stream_ids() {
        let cursor: Cursor = "1733100000000-7".parse().unwrap();
        assert_eq!(
            cursor,
            Cursor {
                millis: 1_733_100_000_000,
                sequence: 7
            }
        );
        assert_eq!(cursor.to_string(), "1733100000000-7");
        for bad in [
            "",
            "1",
            "1-",
            "-1",
            "a-1",
            "1-1-1",
            "+1-1",
            "1 -1",
            "99999999999999999999-0",
        ] {
            assert_eq!(bad.parse::<Cursor>(), Err(CursorError), "{bad:?}");
        }
    }

    #[test]
    fn orders_by_time_then_sequence() {
        let a: Cursor = "5-9".parse().unwrap();
        let b: Cursor = "6-0".parse().unwrap();
        assert!(a < b);
        assert!(
            "10-0".parse::<Cursor>().unwrap() > b,
            "numeric, not textual"
        );
    }

    #[test]
    fn the_next_cursor_always_increases() {
        let last: Cursor = "100-3".parse().unwrap();
        assert_eq!(Cursor::next_after(last, 101).to_string(), "101-0");
        assert_eq!(Cursor::next_after(last, 100).to_string(), "100-4");
        // The clock stepped back: keep counting from the last position.
        assert_eq!(Cursor::next_after(last, 50).to_string(), "100-4");
    }

    #[test]
    fn is_a_json_string() {
        let cursor: Cursor = "12-3".parse().unwrap();
        assert_eq!(serde_json::to_string(&cursor).unwrap(), "\"12-3\"");
        assert_eq!(serde_json::from_str::<Cursor>("\"12-3\"").unwrap(), cursor);
        assert!(serde_json::from_str::<Cursor>("\"12\"").is_err());
    }
}
