//! The service config's `maxRequestMessageBytes` and `maxResponseMessageBytes`,
//! checked on the wire: the 5-byte prefix of each gRPC message (compressed flag,
//! 32-bit length) is read as the bytes pass, so a message above the limit fails the
//! call with RESOURCE_EXHAUSTED before any of it is buffered — whatever the
//! generated client's own `max_*_message_size` says.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tonic::Status;

/// Follows message boundaries through a byte stream cut anywhere.
#[derive(Debug, Default)]
pub(crate) struct MessageScanner {
    prefix: [u8; 5],
    have: usize,
    /// Bytes of the current message still to come.
    left: u64,
    /// Bytes of messages seen so far, their 5-byte prefixes left out.
    payload: u64,
}

impl MessageScanner {
    /// Takes the next bytes; the length of the first message above `limit`, if any.
    pub(crate) fn scan(&mut self, mut data: &[u8], limit: usize) -> Result<(), u64> {
        while !data.is_empty() {
            if self.left > 0 {
                let take = data
                    .len()
                    .min(usize::try_from(self.left).unwrap_or(usize::MAX));
                self.left -= take as u64;
                self.payload += take as u64;
                data = &data[take..];
                continue;
            }
            let take = (5 - self.have).min(data.len());
            self.prefix[self.have..self.have + take].copy_from_slice(&data[..take]);
            self.have += take;
            data = &data[take..];
            if self.have == 5 {
                self.have = 0;
                let len = u32::from_be_bytes([
                    self.prefix[1],
                    self.prefix[2],
                    self.prefix[3],
                    self.prefix[4],
                ]);
                if len as u64 > limit as u64 {
                    return Err(len.into());
                }
                self.left = len.into();
            }
        }
        Ok(())
    }

    /// Takes the next bytes, whatever the messages' sizes.
    pub(crate) fn count(&mut self, data: &[u8]) {
        let _ = self.scan(data, usize::MAX);
    }

    /// The messages' bytes so far (A66's message size: compressed, without gRPC's
    /// framing).
    pub(crate) fn payload(&self) -> u64 {
        self.payload
    }
}

/// A request body whose messages may be at most `limit` bytes.
pub(crate) struct LimitedRequest {
    inner: tonic::body::Body,
    scanner: MessageScanner,
    limit: usize,
    failed: bool,
}

impl LimitedRequest {
    pub(crate) fn new(inner: tonic::body::Body, limit: usize) -> Self {
        Self {
            inner,
            scanner: MessageScanner::default(),
            limit,
            failed: false,
        }
    }
}

pub(crate) fn too_large(side: &str, len: u64, limit: usize, field: &str) -> Status {
    Status::resource_exhausted(format!(
        "{side} message of {len} bytes is larger than the method's {field} ({limit} bytes, \
         from the service config)"
    ))
}

impl Body for LimitedRequest {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        if this.failed {
            return Poll::Ready(None);
        }
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                if let Err(len) = this.scanner.scan(data, this.limit) {
                    this.failed = true;
                    return Poll::Ready(Some(Err(too_large(
                        "the request",
                        len,
                        this.limit,
                        "maxRequestMessageBytes",
                    ))));
                }
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(len: u32) -> Vec<u8> {
        let mut m = vec![0];
        m.extend_from_slice(&len.to_be_bytes());
        m.extend(std::iter::repeat_n(7u8, len as usize));
        m
    }

    #[test]
    fn finds_the_first_message_over_the_limit_wherever_the_bytes_are_cut() {
        let mut stream = message(3);
        stream.extend(message(10));
        stream.extend(message(11));
        for cut in 1..stream.len() {
            let mut scanner = MessageScanner::default();
            let mut result = Ok(());
            for chunk in stream.chunks(cut) {
                result = scanner.scan(chunk, 10);
                if result.is_err() {
                    break;
                }
            }
            assert_eq!(result, Err(11), "chunks of {cut}");
        }
        let mut scanner = MessageScanner::default();
        assert_eq!(scanner.scan(&stream[..stream.len() - 12], 10), Ok(()));
    }

    #[test]
    fn counts_the_messages_bytes_without_their_prefixes_wherever_cut() {
        let mut stream = message(3);
        stream.extend(message(0));
        stream.extend(message(1000));
        for cut in 1..stream.len() {
            let mut scanner = MessageScanner::default();
            for chunk in stream.chunks(cut) {
                scanner.count(chunk);
            }
            assert_eq!(scanner.payload(), 1003, "chunks of {cut}");
        }
    }
}
