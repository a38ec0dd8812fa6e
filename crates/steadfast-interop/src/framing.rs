//! gRPC's message framing seen from outside tonic, for the compression cases.
//!
//! Every message on the wire is a 5-byte prefix — a compressed flag and a big-endian
//! `u32` length — and then its bytes (grpc `doc/PROTOCOL-HTTP2.md`, "Length-Prefixed
//! Message"). tonic hides the flag of the messages it receives, and it compresses all
//! or none of the messages of a stream. The interop cases need both per message: a
//! server checks `expect_compressed` against the flag of each request message, a
//! client checks the flag of each response message, and either sends one message of
//! a compressed stream uncompressed. So:
//! - [`TapBody`] records the flag of every message of a body into [`MessageFlags`],
//!   passing the bytes on unchanged;
//! - [`PlannedBody`] sends the messages of a body that tonic compressed as a
//!   [`CompressionPlan`] says: a message the plan wants uncompressed is decompressed
//!   and its flag cleared, as grpc's `NO_COMPRESS` write flag would have sent it.
//!
//! [`PlannedBody`] only rewrites this process's own output (tonic's encoder): it never
//! decompresses what a peer sent.

use std::collections::VecDeque;
use std::io::Read;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use tonic::Status;

/// The length of a message's prefix: the compressed flag and the length.
const PREFIX_LEN: usize = 5;

/// The compressed flag of each message of a body, in order, as they pass. Cheap to
/// clone (clones share the record).
#[derive(Clone, Debug, Default)]
pub struct MessageFlags(Arc<Mutex<Vec<bool>>>);

impl MessageFlags {
    /// Whether the `index`-th message (from 0) was compressed; `None` before it passed.
    pub fn get(&self, index: usize) -> Option<bool> {
        lock(&self.0).get(index).copied()
    }

    /// Every flag seen so far.
    pub fn seen(&self) -> Vec<bool> {
        lock(&self.0).clone()
    }

    fn push(&self, compressed: bool) {
        lock(&self.0).push(compressed);
    }
}

/// Whether each message of a body is to go compressed, in order: `false` sends that
/// message uncompressed even though the stream is compressed; messages without an
/// entry go as tonic encoded them. Entries may be added while the body is being sent
/// (before the message they are for). Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct CompressionPlan(Arc<Mutex<VecDeque<bool>>>);

impl CompressionPlan {
    /// A plan with these entries.
    pub fn new(compressed: impl IntoIterator<Item = bool>) -> Self {
        Self(Arc::new(Mutex::new(compressed.into_iter().collect())))
    }

    /// Adds the entry of the next message.
    pub fn push(&self, compressed: bool) {
        lock(&self.0).push_back(compressed);
    }

    fn next(&self) -> Option<bool> {
        lock(&self.0).pop_front()
    }
}

/// The data of these locks is a list that every operation leaves whole, so a
/// panic elsewhere while it was held does not make it wrong.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Splits bytes into length-prefixed messages; partial input waits for the rest.
#[derive(Debug, Default)]
struct Deframer {
    buf: BytesMut,
}

/// One message: its compressed flag and its bytes (without the prefix).
struct Message {
    compressed: bool,
    bytes: Bytes,
}

impl Deframer {
    fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    fn next(&mut self) -> Option<Message> {
        if self.buf.len() < PREFIX_LEN {
            return None;
        }
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]);
        let len = usize::try_from(len).ok()?;
        if self.buf.len() - PREFIX_LEN < len {
            return None;
        }
        // Any flag but 0 counts as compressed, as the receiver would read it.
        let compressed = self.buf[0] != 0;
        self.buf.advance(PREFIX_LEN);
        let bytes = self.buf.split_to(len).freeze();
        Some(Message { compressed, bytes })
    }

    /// What is left of an incomplete message.
    fn rest(&mut self) -> Bytes {
        self.buf.split().freeze()
    }
}

fn frame(compressed: bool, message: &[u8]) -> Result<Bytes, Status> {
    let len = u32::try_from(message.len())
        .map_err(|_| Status::internal("a message above 4 GiB cannot be framed"))?;
    let mut out = BytesMut::with_capacity(PREFIX_LEN + message.len());
    out.put_u8(u8::from(compressed));
    out.put_u32(len);
    out.put_slice(message);
    Ok(out.freeze())
}

/// A body whose messages' compressed flags are recorded as they pass.
#[derive(Debug)]
pub struct TapBody<B> {
    inner: B,
    deframer: Deframer,
    flags: MessageFlags,
}

impl<B> TapBody<B> {
    /// `inner`, recording into `flags`.
    pub fn new(inner: B, flags: MessageFlags) -> Self {
        Self {
            inner,
            deframer: Deframer::default(),
            flags,
        }
    }
}

impl<B> Body for TapBody<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                this.deframer.push(data);
                while let Some(message) = this.deframer.next() {
                    this.flags.push(message.compressed);
                }
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A body of tonic's encoder whose messages are sent as a [`CompressionPlan`] says.
/// Messages pass whole (a message is held until its last byte arrived).
#[derive(Debug)]
pub struct PlannedBody<B> {
    inner: B,
    deframer: Deframer,
    plan: CompressionPlan,
    /// Trailers held back until the messages before them have been sent.
    trailers: Option<http::HeaderMap>,
    done: bool,
}

impl<B> PlannedBody<B> {
    /// `inner`, rewritten as `plan` says.
    pub fn new(inner: B, plan: CompressionPlan) -> Self {
        Self {
            inner,
            deframer: Deframer::default(),
            plan,
            trailers: None,
            done: false,
        }
    }

    /// The complete messages received so far, as the plan wants them.
    fn planned(&mut self) -> Result<Option<Bytes>, Status> {
        let mut out = BytesMut::new();
        while let Some(message) = self.deframer.next() {
            let uncompress = message.compressed && self.plan.next() == Some(false);
            if uncompress {
                // gzip is the only encoding the interop binaries ask tonic for.
                let mut plain = Vec::new();
                flate2::read::GzDecoder::new(&message.bytes[..])
                    .read_to_end(&mut plain)
                    .map_err(|e| Status::internal(format!("gunzip of our own message: {e}")))?;
                out.extend_from_slice(&frame(false, &plain)?);
            } else {
                out.extend_from_slice(&frame(message.compressed, &message.bytes)?);
            }
        }
        Ok((!out.is_empty()).then(|| out.freeze()))
    }
}

impl<B> Body for PlannedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Status>,
{
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))));
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        this.deframer.push(&data);
                        match this.planned() {
                            Ok(Some(out)) => return Poll::Ready(Some(Ok(Frame::data(out)))),
                            Ok(None) => continue,
                            Err(status) => return Poll::Ready(Some(Err(status))),
                        }
                    }
                    Err(frame) => {
                        this.done = true;
                        this.trailers = frame.into_trailers().ok();
                    }
                },
                Poll::Ready(None) => this.done = true,
            }
            // The end: what is left of an incomplete message goes as it came.
            let rest = this.deframer.rest();
            if !rest.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(rest))));
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzEncoder::new(data, flate2::Compression::default())
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    type TestBody =
        StreamBody<tokio_stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Status>>>>;

    /// A body of these chunks, then trailers.
    fn body(chunks: Vec<Bytes>) -> TestBody {
        let mut frames: Vec<_> = chunks.into_iter().map(|c| Ok(Frame::data(c))).collect();
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
        frames.push(Ok(Frame::trailers(trailers)));
        StreamBody::new(tokio_stream::iter(frames))
    }

    /// Two messages, the first compressed, cut into chunks across their prefixes.
    fn two_messages() -> (Bytes, Vec<Bytes>) {
        let mut wire = frame(true, &gzip(b"first")).unwrap().to_vec();
        wire.extend_from_slice(&frame(true, &gzip(b"second")).unwrap());
        let wire = Bytes::from(wire);
        let chunks = vec![wire.slice(..3), wire.slice(3..30), wire.slice(30..)];
        (wire, chunks)
    }

    #[tokio::test]
    async fn the_tap_records_each_flag_across_chunk_boundaries() {
        let mut wire = frame(true, b"abc").unwrap().to_vec();
        wire.extend_from_slice(&frame(false, b"").unwrap());
        wire.extend_from_slice(&frame(false, b"defgh").unwrap());
        let wire = Bytes::from(wire);
        let chunks = (0..wire.len()).map(|i| wire.slice(i..i + 1)).collect();
        let flags = MessageFlags::default();
        let collected = TapBody::new(body(chunks), flags.clone())
            .collect()
            .await
            .unwrap();
        assert_eq!(flags.seen(), [true, false, false]);
        assert_eq!(collected.trailers().unwrap()["grpc-status"], "0");
        assert_eq!(collected.to_bytes(), wire, "the bytes pass unchanged");
    }

    #[tokio::test]
    async fn a_plan_sends_chosen_messages_uncompressed() {
        let (_, chunks) = two_messages();
        let planned = PlannedBody::new(body(chunks), CompressionPlan::new([true, false]));
        let collected = planned.collect().await.unwrap();
        assert_eq!(collected.trailers().unwrap()["grpc-status"], "0");
        let mut deframer = Deframer::default();
        deframer.push(&collected.to_bytes());
        let first = deframer.next().unwrap();
        assert!(first.compressed);
        assert_eq!(first.bytes[..], gzip(b"first")[..]);
        let second = deframer.next().unwrap();
        assert!(!second.compressed);
        assert_eq!(&second.bytes[..], b"second");
        assert!(deframer.next().is_none());
    }

    #[tokio::test]
    async fn without_a_plan_entry_or_at_a_cut_the_bytes_pass_as_they_came() {
        let (wire, chunks) = two_messages();
        let collected = PlannedBody::new(body(chunks), CompressionPlan::default())
            .collect()
            .await
            .unwrap();
        assert_eq!(collected.to_bytes(), wire);

        // A message cut off by the end of the body is passed on, for the peer to see.
        let cut = vec![wire.slice(..wire.len() - 2)];
        let collected = PlannedBody::new(body(cut), CompressionPlan::new([false, false]))
            .collect()
            .await
            .unwrap()
            .to_bytes();
        let mut deframer = Deframer::default();
        deframer.push(&collected);
        assert!(
            !deframer.next().unwrap().compressed,
            "planned: uncompressed"
        );
        let first_len = frame(true, &gzip(b"first")).unwrap().len();
        assert_eq!(deframer.rest(), wire.slice(first_len..wire.len() - 2));
    }
}
