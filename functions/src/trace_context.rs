//! W3C trace context (`traceparent`), carried in message properties so one order's journey is
//! one trace across the queue hops: `00-<trace-id>-<parent-id>-<flags>`.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: String,
    pub parent_id: String,
    pub flags: String,
}

/// A random trace id: 16 bytes as 32 lowercase hex digits.
fn random_trace_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// A random span (parent) id: 8 bytes as 16 lowercase hex digits.
fn random_span_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

impl TraceParent {
    /// Parses a `traceparent` value; `None` for anything malformed or all-zero, as the spec says.
    pub fn parse(raw: &str) -> Option<Self> {
        let mut parts = raw.trim().split('-');
        let (version, trace_id, parent_id, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let is_hex = |s: &str, len: usize| {
            s.len() == len
                && s.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        };
        let valid = version == "00"
            && parts.next().is_none()
            && is_hex(trace_id, 32)
            && is_hex(parent_id, 16)
            && is_hex(flags, 2)
            && trace_id.bytes().any(|b| b != b'0')
            && parent_id.bytes().any(|b| b != b'0');
        valid.then(|| TraceParent {
            trace_id: trace_id.into(),
            parent_id: parent_id.into(),
            flags: flags.into(),
        })
    }

    /// A new trace (sampled).
    pub fn new_root() -> Self {
        TraceParent {
            trace_id: random_trace_id(),
            parent_id: random_span_id(),
            flags: "01".into(),
        }
    }

    /// Continues `incoming` if it is valid, otherwise starts a new trace.
    pub fn continue_or_start(incoming: Option<&str>) -> Self {
        incoming
            .and_then(Self::parse)
            .map(|p| p.child())
            .unwrap_or_else(Self::new_root)
    }

    /// The same trace with a new span id: what this hop passes on.
    pub fn child(&self) -> Self {
        TraceParent {
            trace_id: self.trace_id.clone(),
            parent_id: random_span_id(),
            flags: self.flags.clone(),
        }
    }
}

impl std::fmt::Display for TraceParent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "00-{}-{}-{}", self.trace_id, self.parent_id, self.flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_valid_and_refuses_malformed_values() {
        let tp =
            TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(tp.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        ] {
            assert!(TraceParent::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn children_keep_the_trace_and_round_trip() {
        let root = TraceParent::new_root();
        let child = root.child();
        assert_eq!(child.trace_id, root.trace_id);
        assert_ne!(child.parent_id, root.parent_id);
        assert_eq!(TraceParent::parse(&child.to_string()), Some(child));
        let continued = TraceParent::continue_or_start(Some(&root.to_string()));
        assert_eq!(continued.trace_id, root.trace_id);
        assert_ne!(
            TraceParent::continue_or_start(Some("junk")).trace_id,
            root.trace_id
        );
    }
}
