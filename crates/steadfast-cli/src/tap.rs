//! A transport wrapper that decodes every HTTP/2 frame that crosses it, for `probe`:
//! with `-v` it prints each with a timestamp; always, it keeps a short transcript, so
//! a probe that times out or is interrupted can say what was sent and what arrived.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::BytesMut;
use steadfast_proto::frame::{self, Frame, SettingsFrame};
use steadfast_proto::PREFACE;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Decodes (and, verbose, prints) frames in both directions.
pub(crate) struct Tap<IO> {
    inner: IO,
    sent: FrameLog,
    received: FrameLog,
}

/// What crossed the transport so far, in short.
#[derive(Debug, Default)]
pub(crate) struct Transcript {
    /// The last lines (frames, in both directions, in order).
    pub(crate) lines: Vec<String>,
    /// A request's HEADERS were written to the socket.
    pub(crate) request_sent: bool,
    /// HEADERS arrived on a stream (a response head).
    pub(crate) response_head: bool,
}

/// Lines a transcript keeps.
const TRANSCRIPT_LINES: usize = 24;

impl<IO> Tap<IO> {
    pub(crate) fn new(inner: IO, start: Instant, verbose: bool) -> Self {
        let transcript = Arc::new(Mutex::new(Transcript::default()));
        Self {
            inner,
            sent: FrameLog::new("send", PREFACE.len(), start, verbose, transcript.clone()),
            received: FrameLog::new("recv", 0, start, verbose, transcript),
        }
    }

    /// The transcript, shared: it keeps filling while the connection runs.
    pub(crate) fn transcript(&self) -> Arc<Mutex<Transcript>> {
        self.sent.transcript.clone()
    }
}

struct FrameLog {
    direction: &'static str,
    start: Instant,
    verbose: bool,
    transcript: Arc<Mutex<Transcript>>,
    /// (recv) No frame decoded yet: the first must be a server preface (SETTINGS).
    first: bool,
    skip: usize,
    buf: BytesMut,
    decoder: steadfast_hpack::Decoder,
    /// A field block spread over HEADERS and CONTINUATION frames.
    block: Vec<u8>,
    broken: bool,
}

impl FrameLog {
    fn new(
        direction: &'static str,
        skip: usize,
        start: Instant,
        verbose: bool,
        transcript: Arc<Mutex<Transcript>>,
    ) -> Self {
        Self {
            direction,
            start,
            verbose,
            transcript,
            first: direction == "recv",
            skip,
            buf: BytesMut::new(),
            decoder: steadfast_hpack::Decoder::new(4096),
            block: Vec::new(),
            broken: false,
        }
    }

    fn feed(&mut self, mut data: &[u8]) {
        if self.broken {
            return;
        }
        if self.skip > 0 {
            let n = self.skip.min(data.len());
            self.skip -= n;
            data = &data[n..];
            if self.skip == 0 {
                self.line("connection preface");
            }
        }
        self.buf.extend_from_slice(data);
        if self.first && self.buf.len() >= frame::HEADER_LEN {
            self.first = false;
            // A server's first frame is SETTINGS; anything else is likely not HTTP/2
            // at all (an HTML page, a banner): show the bytes rather than misread them.
            if self.buf[3] != 0x4 {
                self.not_frames();
                return;
            }
        }
        loop {
            match frame::decode(&mut self.buf, frame::MAX_MAX_FRAME_SIZE) {
                Ok(Some(frame)) => self.print(&frame),
                Ok(None) => break,
                Err(e) => {
                    let e = e.to_string();
                    self.line(&format!("undecodable bytes ({e}); no more frames shown"));
                    self.not_frames();
                    break;
                }
            }
        }
    }

    /// Shows the bytes that could not be read as frames, escaped, and stops decoding.
    fn not_frames(&mut self) {
        let shown: Vec<u8> = self.buf.iter().take(64).copied().collect();
        let more = if self.buf.len() > shown.len() {
            "..."
        } else {
            ""
        };
        self.line(&format!(
            "{} bytes that are not HTTP/2 frames: \"{}\"{more}",
            self.buf.len(),
            shown.escape_ascii()
        ));
        self.broken = true;
    }

    pub(crate) fn line(&self, text: &str) {
        let t = self.start.elapsed().as_secs_f64();
        let line = format!("[{t:9.6}] {} {text}", self.direction);
        if self.verbose {
            eprintln!("{line}");
        }
        if let Ok(mut transcript) = self.transcript.lock() {
            if transcript.lines.len() == TRANSCRIPT_LINES {
                transcript.lines.remove(0);
            }
            transcript.lines.push(line);
        }
    }

    fn print(&mut self, frame: &Frame) {
        let flags = |items: &[(bool, &str)]| -> String {
            items
                .iter()
                .filter(|(on, _)| *on)
                .map(|(_, name)| format!(" {name}"))
                .collect()
        };
        let text = match frame {
            Frame::Data(d) => format!(
                "DATA stream={} len={}{}",
                d.stream_id,
                d.flow_controlled_len,
                flags(&[(d.end_stream, "END_STREAM")])
            ),
            Frame::Headers(h) => {
                if let Ok(mut transcript) = self.transcript.lock() {
                    if self.direction == "send" {
                        transcript.request_sent = true;
                    } else {
                        transcript.response_head = true;
                    }
                }
                self.block.extend_from_slice(&h.fragment);
                let text = format!(
                    "HEADERS stream={} len={}{}",
                    h.stream_id,
                    h.fragment.len(),
                    flags(&[(h.end_stream, "END_STREAM"), (h.end_headers, "END_HEADERS")])
                );
                self.line(&text);
                if h.end_headers {
                    self.print_block();
                }
                return;
            }
            Frame::Continuation(c) => {
                self.block.extend_from_slice(&c.fragment);
                let text = format!(
                    "CONTINUATION stream={} len={}{}",
                    c.stream_id,
                    c.fragment.len(),
                    flags(&[(c.end_headers, "END_HEADERS")])
                );
                self.line(&text);
                if c.end_headers {
                    self.print_block();
                }
                return;
            }
            Frame::Priority(p) => format!("PRIORITY stream={}", p.stream_id),
            Frame::RstStream(r) => format!(
                "RST_STREAM stream={} code={} ({})",
                r.stream_id,
                r.code,
                r.code.description()
            ),
            Frame::Settings(SettingsFrame::Ack) => "SETTINGS ACK".to_owned(),
            Frame::Settings(SettingsFrame::Values(s)) => format!("SETTINGS {}", settings_text(s)),
            Frame::PushPromise(p) => format!(
                "PUSH_PROMISE stream={} promised={}",
                p.stream_id, p.promised_id
            ),
            Frame::Ping(p) => format!(
                "PING{} payload={:02x?}",
                if p.ack { " ACK" } else { "" },
                p.payload
            ),
            Frame::GoAway(g) => format!(
                "GOAWAY last_stream_id={} code={} ({}) debug_data={:?}",
                g.0.last_stream_id,
                g.0.code,
                g.0.code.description(),
                String::from_utf8_lossy(&g.0.debug_data)
            ),
            Frame::WindowUpdate(w) => format!(
                "WINDOW_UPDATE stream={} increment={}",
                w.stream_id, w.increment
            ),
            Frame::Unknown(h) => format!(
                "unknown frame type={:#x} stream={} len={}",
                h.kind, h.stream_id, h.length
            ),
        };
        self.line(&text);
    }

    fn print_block(&mut self) {
        let block = std::mem::take(&mut self.block);
        match self.decoder.decode(&block, 1 << 20) {
            Ok(decoded) if self.verbose => {
                for f in decoded.fields {
                    eprintln!(
                        "{:12}     {}: {}",
                        "",
                        String::from_utf8_lossy(&f.name),
                        String::from_utf8_lossy(&f.value)
                    );
                }
            }
            Ok(_) => {}
            Err(e) => self.line(&format!("(HPACK: {e})")),
        }
    }
}

fn settings_text(s: &steadfast_proto::Settings) -> String {
    let mut parts = Vec::new();
    let mut add = |name: &str, v: Option<u32>| {
        if let Some(v) = v {
            parts.push(format!("{name}={v}"));
        }
    };
    add("HEADER_TABLE_SIZE", s.header_table_size);
    add("ENABLE_PUSH", s.enable_push.map(u32::from));
    add("MAX_CONCURRENT_STREAMS", s.max_concurrent_streams);
    add("INITIAL_WINDOW_SIZE", s.initial_window_size);
    add("MAX_FRAME_SIZE", s.max_frame_size);
    add("MAX_HEADER_LIST_SIZE", s.max_header_list_size);
    add(
        "ENABLE_CONNECT_PROTOCOL",
        s.enable_connect_protocol.map(u32::from),
    );
    if parts.is_empty() {
        "(empty)".to_owned()
    } else {
        parts.join(" ")
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Tap<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        match &result {
            Poll::Ready(Ok(())) => {
                let new = &buf.filled()[before..];
                if new.is_empty() {
                    self.received
                        .line("end of stream (the peer closed the connection)");
                } else {
                    self.received.feed(new);
                }
            }
            Poll::Ready(Err(e)) => self.received.line(&format!("read failed: {e}")),
            Poll::Pending => {}
        }
        result
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Tap<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &result {
            self.sent.feed(&buf[..*n]);
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
