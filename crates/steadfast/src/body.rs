//! Bodies: [`RecvBody`] for what arrives, and the boxed body type used for what is
//! sent.

mod queue;

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::BodyExt;
use steadfast_proto::StreamId;
use tokio::sync::mpsc;

pub(crate) use self::queue::{channel as recv_channel, Sender as RecvSender};
use crate::driver::Command;
use crate::error::{BoxError, Error};

/// A body to send, boxed.
pub type BoxBody = UnsyncBoxBody<Bytes, BoxError>;

/// Boxes any body whose error converts to [`BoxError`].
pub fn boxed<B>(body: B) -> BoxBody
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed_unsync()
}

/// An empty body.
pub fn empty() -> BoxBody {
    boxed(http_body_util::Empty::new())
}

/// A body of one chunk.
pub fn full(data: impl Into<Bytes>) -> BoxBody {
    boxed(http_body_util::Full::new(data.into()))
}

/// What the driver hands a receiving body. Small (trailers are boxed, errors are one
/// `Arc`), since one sits in each queued slot.
#[derive(Debug)]
pub(crate) enum RecvItem {
    Data(Bytes),
    Trailers(Box<HeaderMap>),
    Error(Error),
}

/// What [`RecvBody::inspect_data`] is given.
type Inspector = Box<dyn FnMut(&[u8]) + Send + Sync>;

/// The body of a received request or response, with trailers.
///
/// Data is delivered as the peer sends it; each chunk handed out is released to the
/// connection's flow control, so the peer may send more. Dropping the body before its
/// end tells the peer to stop (RST_STREAM CANCEL from a client; from a server, once its
/// response is complete, RST_STREAM NO_ERROR).
pub struct RecvBody {
    id: StreamId,
    rx: Option<queue::Receiver>,
    commands: Option<mpsc::UnboundedSender<Command>>,
    content_length: Option<u64>,
    received: u64,
    /// Shown each chunk of data as the reader takes it (metrics).
    inspect: Option<Inspector>,
}

impl std::fmt::Debug for RecvBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBody")
            .field("id", &self.id)
            .field("open", &self.rx.is_some())
            .field("content_length", &self.content_length)
            .field("received", &self.received)
            .field("inspected", &self.inspect.is_some())
            .finish()
    }
}

impl RecvBody {
    pub(crate) fn new(
        id: StreamId,
        rx: Option<queue::Receiver>,
        commands: mpsc::UnboundedSender<Command>,
        content_length: Option<u64>,
    ) -> Self {
        Self {
            id,
            rx,
            commands: Some(commands),
            content_length,
            received: 0,
            inspect: None,
        }
    }

    /// Shows `inspect` every chunk of data as the reader takes it (after any given
    /// to an earlier inspector): how a metrics layer sizes a request it hands on.
    pub fn inspect_data(&mut self, mut inspect: impl FnMut(&[u8]) + Send + Sync + 'static) {
        self.inspect = Some(match self.inspect.take() {
            None => Box::new(inspect),
            Some(mut earlier) => Box::new(move |data: &[u8]| {
                earlier(data);
                inspect(data);
            }),
        });
    }

    /// The HTTP/2 stream this body arrives on.
    pub fn stream_id(&self) -> StreamId {
        self.id
    }

    fn finish(&mut self) {
        self.rx = None;
        self.commands = None;
    }
}

impl Body for RecvBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let Some(rx) = self.rx.as_mut() else {
            return Poll::Ready(None);
        };
        let item = match rx.poll_recv(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(item) => item,
        };
        match item {
            Some(RecvItem::Data(data)) => {
                if let Some(commands) = &self.commands {
                    let _ = commands.send(Command::Release {
                        id: self.id,
                        len: data.len(),
                    });
                }
                self.received += data.len() as u64;
                if let Some(inspect) = &mut self.inspect {
                    inspect(&data);
                }
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            Some(RecvItem::Trailers(trailers)) => {
                self.finish();
                Poll::Ready(Some(Ok(Frame::trailers(*trailers))))
            }
            Some(RecvItem::Error(e)) => {
                self.finish();
                Poll::Ready(Some(Err(e)))
            }
            None => {
                self.finish();
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.rx.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match self.content_length {
            Some(n) => SizeHint::with_exact(n.saturating_sub(self.received)),
            None => SizeHint::default(),
        }
    }
}

impl Drop for RecvBody {
    fn drop(&mut self) {
        if self.rx.is_some() {
            if let Some(commands) = &self.commands {
                let _ = commands.send(Command::BodyDropped { id: self.id });
            }
        }
    }
}
