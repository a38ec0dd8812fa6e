//! A file as a response body, read in chunks only when the connection asks for more.
//!
//! The driver polls a body only while its stream has flow-control room and little is
//! queued, so a client that stops reading (no WINDOW_UPDATE) stops the reads too: a
//! stalled download holds at most one chunk, never the file. Chunks start small and
//! double while the client keeps taking them: each read is a trip to the blocking
//! pool (two context switches), which at 32 KiB cost more CPU than the bytes.

use std::fs::File;
use std::future::Future;
use std::io::{self, Read};
use std::path::Path;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::task::JoinHandle;

/// Bytes read from the file for the first poll…
pub(crate) const CHUNK: usize = 32 << 10;
/// …doubling with each further poll, up to this.
pub(crate) const MAX_CHUNK: usize = 256 << 10;
/// Buffers of `MAX_CHUNK` bytes kept for reuse once every slice of their chunk has
/// been written and dropped, at most (4 MiB): fresh memory of that size comes from
/// the kernel page by page, at a cost close to that of reading the file.
const SPARE_KEEP: usize = 16;

static SPARE: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// A chunk's memory; a `MAX_CHUNK` buffer goes back to `SPARE` when the last `Bytes`
/// pointing into it is dropped.
struct Chunk(Vec<u8>);

impl AsRef<[u8]> for Chunk {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        if self.0.capacity() != MAX_CHUNK {
            return;
        }
        if let Ok(mut spare) = SPARE.lock() {
            if spare.len() < SPARE_KEEP {
                let mut buf = std::mem::take(&mut self.0);
                buf.clear();
                spare.push(buf);
            }
        }
    }
}

/// A file streamed as a body of exactly the length it had when opened.
#[derive(Debug)]
pub(crate) struct FileBody {
    state: State,
    /// Bytes still to be sent.
    remaining: u64,
    /// The size of the next read.
    chunk: usize,
}

#[derive(Debug)]
enum State {
    /// Between reads: the file, ready for the next one.
    Idle(Option<File>),
    /// A read runs on the blocking pool; it gives the file back with the chunk.
    Reading(JoinHandle<io::Result<(File, Bytes)>>),
}

impl FileBody {
    /// Opens `path` as a body; `None` if it is not a regular file that can be read.
    pub(crate) async fn open(path: &Path) -> Option<Self> {
        let path = path.to_owned();
        let opened = tokio::task::spawn_blocking(move || {
            let file = File::open(&path)?;
            let meta = file.metadata()?;
            if !meta.is_file() {
                return Err(io::Error::other("not a regular file"));
            }
            Ok((file, meta.len()))
        })
        .await;
        match opened {
            Ok(Ok((file, len))) => Some(Self {
                state: State::Idle(Some(file)),
                remaining: len,
                chunk: CHUNK,
            }),
            _ => None,
        }
    }

    /// The body's length in bytes.
    pub(crate) fn len(&self) -> u64 {
        self.remaining
    }
}

fn read_chunk(mut file: File, max: usize) -> io::Result<(File, Bytes)> {
    let spare = (max == MAX_CHUNK)
        .then(|| SPARE.lock().ok()?.pop())
        .flatten();
    let mut buf = spare.unwrap_or_else(|| Vec::with_capacity(max));
    // `read_to_end` reads into the spare capacity without zeroing it first, and stops
    // at `max` without growing the buffer.
    (&mut file).take(max as u64).read_to_end(&mut buf)?;
    Ok((file, Bytes::from_owner(Chunk(buf))))
}

impl Body for FileBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        loop {
            match &mut this.state {
                State::Idle(file) => {
                    if this.remaining == 0 {
                        return Poll::Ready(None);
                    }
                    let Some(file) = file.take() else {
                        return Poll::Ready(None); // a read failed earlier
                    };
                    let max =
                        usize::try_from(this.remaining).map_or(this.chunk, |r| r.min(this.chunk));
                    this.chunk = (this.chunk * 2).min(MAX_CHUNK);
                    this.state =
                        State::Reading(tokio::task::spawn_blocking(move || read_chunk(file, max)));
                }
                State::Reading(task) => {
                    let result = ready!(Pin::new(task).poll(cx));
                    this.state = State::Idle(None);
                    let (file, chunk) = match result {
                        Ok(Ok(read)) => read,
                        Ok(Err(e)) => return Poll::Ready(Some(Err(e))),
                        Err(e) => return Poll::Ready(Some(Err(io::Error::other(e)))),
                    };
                    if chunk.is_empty() {
                        // The file shrank since it was opened: the promised length
                        // cannot be sent.
                        return Poll::Ready(Some(Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "file shorter than its content-length",
                        ))));
                    }
                    this.remaining = this.remaining.saturating_sub(chunk.len() as u64);
                    this.state = State::Idle(Some(file));
                    return Poll::Ready(Some(Ok(Frame::data(chunk))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn streams_a_file_in_chunks_that_double_up_to_max_chunk() {
        let dir = std::env::temp_dir().join(format!("steadfast-filebody-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f.bin");
        let data: Vec<u8> = (0..CHUNK * 15 + MAX_CHUNK * 2 + 123)
            .map(|i| i as u8)
            .collect();
        std::fs::write(&path, &data).unwrap();

        let mut body = FileBody::open(&path).await.unwrap();
        assert_eq!(body.len(), data.len() as u64);
        let mut got = Vec::new();
        let mut sizes = Vec::new();
        while let Some(frame) = body.frame().await {
            let chunk = frame.unwrap().into_data().unwrap();
            sizes.push(chunk.len());
            got.extend_from_slice(&chunk);
        }
        assert_eq!(got, data);
        assert_eq!(
            sizes,
            [
                CHUNK,
                CHUNK * 2,
                CHUNK * 4,
                MAX_CHUNK,
                MAX_CHUNK,
                MAX_CHUNK,
                123
            ]
        );
        assert!(body.is_end_stream());

        assert!(
            FileBody::open(&dir).await.is_none(),
            "a directory is no file"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
