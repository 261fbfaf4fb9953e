//! Stateful reconnect (ASP.NET Core SignalR 8+, the official clients' `withStatefulReconnect()`):
//! both sides number their invocation messages 1, 2, … (Invocation, StreamItem, Completion,
//! StreamInvocation, CancelInvocation; never Ping, Close, Ack, Sequence or the handshake), keep
//! what the peer has not acknowledged, and after a dropped socket send a Sequence message and
//! those messages again on the new one. The receiver skips the ids it already had.
//!
//! Pinned against `@microsoft/signalr` 10.0.11 `src/MessageBuffer.ts` (`_resend`,
//! `_shouldProcessMessage`, `_isInvocationMessage`) and dotnet/aspnetcore
//! `src/SignalR/common/Shared/MessageBuffer.cs` @ 1e0bf1c78ade1e23400977d1e3315af6acb51838
//! (`WriteAsyncCore`, `ResendAsync`, `ShouldProcessMessage`). Where HubProtocol.md says a
//! Sequence carries the next new id, both implementations send the first unacknowledged one;
//! this follows them.

use crate::protocol::{Frame, ProtocolError};
use std::collections::VecDeque;

/// What this side sent and the client has not acknowledged.
#[derive(Debug)]
pub struct Replay {
    sent: u64,
    unacked: VecDeque<(u64, Frame)>,
    bytes: usize,
    limit: usize,
}

impl Replay {
    pub fn new(limit: usize) -> Self {
        Replay {
            sent: 0,
            unacked: VecDeque::new(),
            bytes: 0,
            limit,
        }
    }

    /// Numbers and keeps the next invocation message; `false` once the unacknowledged bytes
    /// exceed the limit (the client stopped acknowledging: it is treated as a slow client).
    pub fn push(&mut self, frame: &Frame) -> bool {
        self.sent += 1;
        self.bytes += frame.as_bytes().len();
        self.unacked.push_back((self.sent, frame.clone()));
        self.bytes <= self.limit
    }

    /// The client has every message up to `id`.
    pub fn ack(&mut self, id: u64) {
        while let Some((first, frame)) = self.unacked.front() {
            if *first > id {
                break;
            }
            self.bytes -= frame.as_bytes().len();
            self.unacked.pop_front();
        }
    }

    /// What a resumed socket carries first: the Sequence id, then the unacknowledged frames.
    pub fn resend(&self) -> (u64, Vec<Frame>) {
        let first = self.unacked.front().map_or(self.sent + 1, |(id, _)| *id);
        (first, self.unacked.iter().map(|(_, f)| f.clone()).collect())
    }
}

/// The client's numbering of what it sends, to skip what a resend repeats.
#[derive(Debug)]
pub struct Received {
    next: u64,
    latest: u64,
    acked: u64,
}

impl Default for Received {
    fn default() -> Self {
        Received {
            next: 1,
            latest: 0,
            acked: 0,
        }
    }
}

impl Received {
    /// A Sequence message: the next invocation message has id `id`.
    pub fn sequence(&mut self, id: u64) -> Result<(), ProtocolError> {
        if id > self.next {
            return Err(ProtocolError::Invalid(
                "Sequence ID greater than amount of messages we've received.".into(),
            ));
        }
        self.next = id;
        Ok(())
    }

    /// An invocation message arrived: `true` to process it, `false` for a repeat.
    pub fn accept(&mut self) -> bool {
        let id = self.next;
        self.next += 1;
        if id <= self.latest {
            return false;
        }
        self.latest = id;
        true
    }

    /// The id to acknowledge, when something new arrived since the last Ack.
    pub fn ack_due(&mut self) -> Option<u64> {
        (self.latest > self.acked).then(|| {
            self.acked = self.latest;
            self.latest
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(text: &str) -> Frame {
        Frame::Text(text.to_owned().into())
    }

    #[test]
    fn resends_what_was_not_acknowledged_from_its_first_id() {
        let mut replay = Replay::new(1_000);
        assert_eq!(replay.resend(), (1, vec![]), "nothing sent: the next id");
        for text in ["a", "b", "c"] {
            assert!(replay.push(&frame(text)));
        }
        replay.ack(1);
        assert_eq!(replay.resend(), (2, vec![frame("b"), frame("c")]));
        replay.ack(3);
        assert_eq!(replay.resend(), (4, vec![]));
    }

    #[test]
    fn refuses_more_unacknowledged_bytes_than_the_limit() {
        let mut replay = Replay::new(4);
        assert!(replay.push(&frame("ab")));
        assert!(replay.push(&frame("cd")));
        assert!(!replay.push(&frame("e")));
        replay.ack(3);
        assert!(replay.push(&frame("fghi")));
    }

    #[test]
    fn skips_what_a_resend_repeats_and_acks_the_latest() {
        let mut received = Received::default();
        assert!(received.accept() && received.accept());
        assert_eq!(received.ack_due(), Some(2));
        assert_eq!(received.ack_due(), None, "nothing new");
        // The client resends from 2 after a reconnect: 2 is a repeat, 3 is new.
        received.sequence(2).unwrap();
        assert!(!received.accept());
        assert!(received.accept());
        assert_eq!(received.ack_due(), Some(3));
        assert!(received.sequence(9).is_err(), "ids the server never saw");
    }
}
