//! What the pool needs to know of an HTTP/2 connection that hyper does not
//! tell: the server's `SETTINGS_MAX_CONCURRENT_STREAMS` and its GOAWAY.
//!
//! [`FrameWatch`] reads the frame headers of the bytes the server sends
//! (RFC 9113 §4.1), and the entries of SETTINGS frames (§6.5.1); every
//! other payload is skipped without a look. It never changes the bytes.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use super::orders::Orders;

const FRAME_HEADER_LEN: usize = 9;
const SETTINGS_ENTRY_LEN: usize = 6;
const TYPE_SETTINGS: u8 = 0x4;
const TYPE_GOAWAY: u8 = 0x7;
const FLAG_ACK: u8 = 0x1;
const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;

/// What the watch saw, for the connection's task to hand to the pool.
#[derive(Debug)]
pub(crate) struct H2Signals {
    /// The server's stream limit; unlimited until a SETTINGS says.
    max_streams: AtomicU32,
    /// The server's first SETTINGS has been read.
    settled: AtomicBool,
    goaway: AtomicBool,
    /// Where a change goes to the connection's task.
    orders: Arc<Orders>,
}

impl H2Signals {
    pub(crate) fn new(orders: Arc<Orders>) -> Self {
        H2Signals {
            max_streams: AtomicU32::new(u32::MAX),
            settled: AtomicBool::new(false),
            goaway: AtomicBool::new(false),
            orders,
        }
    }

    /// The server's SETTINGS so far, once its first one was read: its
    /// stream limit (`u32::MAX` when it set none).
    pub(crate) fn max_streams(&self) -> Option<u32> {
        self.settled
            .load(Ordering::Acquire)
            .then(|| self.max_streams.load(Ordering::Acquire))
    }

    pub(crate) fn goaway(&self) -> bool {
        self.goaway.load(Ordering::Acquire)
    }

    fn notify(&self) {
        self.orders.frames_seen();
    }
}

/// Where the watch is in the server's byte stream.
#[derive(Debug, Default)]
pub(crate) struct FrameWatch {
    header: [u8; FRAME_HEADER_LEN],
    header_len: usize,
    /// Payload bytes of the current frame still to come.
    remaining: usize,
    /// The current frame is a SETTINGS whose entries are read.
    in_settings: bool,
    entry: [u8; SETTINGS_ENTRY_LEN],
    entry_len: usize,
}

impl FrameWatch {
    /// Looks at the next `bytes` the server sent.
    pub(crate) fn observe(&mut self, mut bytes: &[u8], signals: &H2Signals) {
        while !bytes.is_empty() {
            if self.header_len < FRAME_HEADER_LEN {
                // Most frame headers arrive whole: read them where they lie.
                if let (0, Some((header, rest))) = (self.header_len, bytes.split_first_chunk()) {
                    self.header_len = FRAME_HEADER_LEN;
                    bytes = rest;
                    self.start_frame(*header, signals);
                    continue;
                }
                let take = (FRAME_HEADER_LEN - self.header_len).min(bytes.len());
                self.header[self.header_len..self.header_len + take]
                    .copy_from_slice(&bytes[..take]);
                self.header_len += take;
                bytes = &bytes[take..];
                if self.header_len == FRAME_HEADER_LEN {
                    self.start_frame(self.header, signals);
                }
                continue;
            }
            let take = self.remaining.min(bytes.len());
            if self.in_settings {
                self.read_settings(&bytes[..take], signals);
            }
            self.remaining -= take;
            bytes = &bytes[take..];
            if self.remaining == 0 {
                self.end_frame(signals);
            }
        }
    }

    fn start_frame(&mut self, header: [u8; FRAME_HEADER_LEN], signals: &H2Signals) {
        let [l0, l1, l2, kind, flags, ..] = header;
        self.remaining = usize::from(l0) << 16 | usize::from(l1) << 8 | usize::from(l2);
        self.in_settings = kind == TYPE_SETTINGS && flags & FLAG_ACK == 0;
        self.entry_len = 0;
        if kind == TYPE_GOAWAY && !signals.goaway.swap(true, Ordering::AcqRel) {
            signals.notify();
        }
        if self.remaining == 0 {
            self.end_frame(signals);
        }
    }

    fn read_settings(&mut self, mut payload: &[u8], signals: &H2Signals) {
        while !payload.is_empty() {
            let take = (SETTINGS_ENTRY_LEN - self.entry_len).min(payload.len());
            self.entry[self.entry_len..self.entry_len + take].copy_from_slice(&payload[..take]);
            self.entry_len += take;
            payload = &payload[take..];
            if self.entry_len == SETTINGS_ENTRY_LEN {
                self.entry_len = 0;
                let [i0, i1, v0, v1, v2, v3] = self.entry;
                if u16::from_be_bytes([i0, i1]) == SETTINGS_MAX_CONCURRENT_STREAMS {
                    let max = u32::from_be_bytes([v0, v1, v2, v3]);
                    signals.max_streams.store(max, Ordering::Release);
                }
            }
        }
    }

    fn end_frame(&mut self, signals: &H2Signals) {
        if self.in_settings {
            signals.settled.store(true, Ordering::Release);
            signals.notify();
        }
        self.header_len = 0;
        self.in_settings = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
        let len = payload.len();
        let mut bytes = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
        bytes.extend_from_slice(&[0, 0, 0, 0]);
        bytes.extend_from_slice(payload);
        bytes
    }

    fn setting(id: u16, value: u32) -> Vec<u8> {
        let mut entry = id.to_be_bytes().to_vec();
        entry.extend_from_slice(&value.to_be_bytes());
        entry
    }

    #[test]
    fn settings_read_one_byte_at_a_time_give_the_stream_limit() {
        let mut payload = setting(0x4, 65_535);
        payload.extend(setting(SETTINGS_MAX_CONCURRENT_STREAMS, 5));
        let mut bytes = frame(0x0, 0, b"data before");
        bytes.extend(frame(TYPE_SETTINGS, 0, &payload));
        let signals = H2Signals::new(Arc::default());
        let mut watch = FrameWatch::default();
        assert_eq!(signals.max_streams(), None);
        for byte in &bytes {
            watch.observe(std::slice::from_ref(byte), &signals);
        }
        assert_eq!(signals.max_streams(), Some(5));
        assert!(!signals.goaway());
    }

    #[test]
    fn settings_without_a_limit_settle_as_unlimited_and_acks_are_ignored() {
        let signals = H2Signals::new(Arc::default());
        let mut watch = FrameWatch::default();
        watch.observe(&frame(TYPE_SETTINGS, FLAG_ACK, &[]), &signals);
        assert_eq!(signals.max_streams(), None);
        watch.observe(&frame(TYPE_SETTINGS, 0, &[]), &signals);
        assert_eq!(signals.max_streams(), Some(u32::MAX));
    }

    #[test]
    fn a_goaway_after_other_frames_is_seen() {
        let mut bytes = frame(
            TYPE_SETTINGS,
            0,
            &setting(SETTINGS_MAX_CONCURRENT_STREAMS, 100),
        );
        bytes.extend(frame(0x1, 0x4, &[0x88; 40]));
        bytes.extend(frame(TYPE_GOAWAY, 0, &[0, 0, 0, 1, 0, 0, 0, 0]));
        let signals = H2Signals::new(Arc::default());
        let mut watch = FrameWatch::default();
        let (first, rest) = bytes.split_at(13);
        watch.observe(first, &signals);
        watch.observe(rest, &signals);
        assert_eq!(signals.max_streams(), Some(100));
        assert!(signals.goaway());
    }
}
