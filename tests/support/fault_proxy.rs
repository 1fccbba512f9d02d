//! A fault-injecting HTTP/1.1 proxy on loopback, between the component and a real S3 server.
//!
//! The reliability tests need failures that real servers do not produce on demand: resets at
//! every stage, throttling, stalls, truncated or corrupted bodies, answers that are not S3 (or
//! not HTTP at all). The proxy serves exactly one request per client connection, which is all
//! the component's wasi:http client uses (a new connection per request), and keeps the framing
//! trivial: buffer the request, forward it with `Connection: close`, read the answer to EOF,
//! then damage those bytes as the fault says.
//!
//! It owns its tokio runtime on a thread of its own so that plain `#[test]` threads can start
//! and drop it; a failure on one connection only ends that connection.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use socket2::SockRef;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::time::timeout;

/// Larger heads are not from our client: refuse them rather than buffer without bound.
const MAX_HEAD: usize = 64 * 1024;
/// Same for a declared request body.
const MAX_REQUEST_BODY: u64 = 1 << 30;
const OVERSIZED_LEN: usize = 2 * 1024 * 1024;
/// Bounds on waiting, so that a stuck peer cannot pin a task for the life of the proxy.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(120);
/// After our FIN, how long to keep reading what the client still sends: closing a socket with
/// unread data makes the kernel send a RST, which would turn a clean answer into a reset.
const DRAIN_AFTER_CLOSE: Duration = Duration::from_secs(2);
/// A RST discards whatever is still in our send buffer; give the bytes of a partial response
/// this long to reach the client first.
const RST_GRACE: Duration = Duration::from_millis(20);
/// How long a stalled or silent connection is held at most, waiting for the client to give up.
const HOLD_LIMIT: Duration = Duration::from_secs(120);

/// What to do to one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Accept, then close at once with a TCP RST (SO_LINGER 0) before reading anything.
    Refuse,
    /// Read the request head (and up to half of the body), then RST.
    ResetMidRequest,
    /// Forward; send the response head and about half of the body, then RST.
    ResetMidResponse,
    /// 503 with an S3 `SlowDown` error body; upstream is not contacted.
    SlowDown,
    /// 500 with an S3 `InternalError` error body; upstream is not contacted.
    InternalError,
    /// Forward, then wait this long before answering (to exceed the client's first-byte timeout).
    Delay(Duration),
    /// Forward; send the head and the first `after` bytes of the body, then nothing for
    /// `stall`, then the rest: a server (or network) that stops part-way through a body.
    StallBody { after: usize, stall: Duration },
    /// Forward; drop every `x-amz-checksum-*` header from the answer, as a server that does
    /// not know S3's flexible checksums answers; with `corrupt`, flip one bit of the body too.
    HideChecksums { corrupt: bool },
    /// Forward; send the head unchanged (Content-Length intact) and at most half of the body,
    /// then close normally (FIN).
    TruncateBody,
    /// Forward; flip one bit in the middle of a non-empty body (same length).
    CorruptBody,
    /// Flip one bit in the middle of a non-empty request body (same length), then forward:
    /// the damage a request can take on the way to the server.
    CorruptRequestBody,
    /// 502 with a short HTML page, as a load balancer would send; upstream is not contacted.
    HtmlError,
    /// 500 with a 2 MiB body of non-XML garbage; upstream is not contacted.
    OversizedError,
    /// Answer with bytes that are not HTTP at all, then close; upstream is not contacted.
    NotHttp,
    /// Forward; send the response head and the first this many bytes of the body, then nothing
    /// more: the connection stays open until the client closes it (see [`Stats::held`]).
    StallBodyUntilClosed(usize),
    /// Read the request and never answer: a server that accepted and went silent. The
    /// connection stays open until the client closes it; upstream is not contacted.
    Silent,
}

impl Fault {
    /// The name under which [`Stats::by_kind`] counts this fault.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Refuse => "Refuse",
            Fault::ResetMidRequest => "ResetMidRequest",
            Fault::ResetMidResponse => "ResetMidResponse",
            Fault::SlowDown => "SlowDown",
            Fault::InternalError => "InternalError",
            Fault::Delay(_) => "Delay",
            Fault::StallBody { .. } => "StallBody",
            Fault::HideChecksums { .. } => "HideChecksums",
            Fault::TruncateBody => "TruncateBody",
            Fault::CorruptBody => "CorruptBody",
            Fault::CorruptRequestBody => "CorruptRequestBody",
            Fault::HtmlError => "HtmlError",
            Fault::OversizedError => "OversizedError",
            Fault::NotHttp => "NotHttp",
            Fault::StallBodyUntilClosed(_) => "StallBodyUntilClosed",
            Fault::Silent => "Silent",
        }
    }
}

/// What the proxy decided so far. Each accepted connection is one request and is counted once,
/// when it arrives, so the numbers are final as soon as the client has its answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests (connections) seen.
    pub requests: u64,
    /// Requests given no fault (forwarded as they are).
    pub passed: u64,
    /// Requests given a fault.
    pub faults: u64,
    /// Faults by [`Fault::kind`].
    pub by_kind: BTreeMap<&'static str, u64>,
    /// Each request that was read, in arrival order: what the client really sent.
    pub seen: Vec<Seen>,
    /// The connections held open by [`Fault::StallBodyUntilClosed`] and [`Fault::Silent`] that
    /// have ended,
    /// in the order they ended: how long after its arrival the client closed each (or
    /// [`HOLD_LIMIT`], when it never did). Where a client gives up, seen from the server.
    pub held: Vec<Held>,
}

/// One held connection: its fault's kind, and the time from its arrival to the client closing it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    pub kind: &'static str,
    pub for_: Duration,
    /// False when the client still had it open at [`HOLD_LIMIT`].
    pub closed_by_client: bool,
}

/// A request as the proxy read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    /// Names in lower case, with their values.
    pub headers: Vec<(String, String)>,
}

impl Seen {
    /// The value of `name` (lower case), if the request had it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Stats {
    /// How many faults of this kind were injected.
    pub fn count(&self, kind: &str) -> u64 {
        self.by_kind.get(kind).copied().unwrap_or(0)
    }
}

struct RandomFaults {
    /// ChaCha8 rather than `StdRng`: its output is fixed across rand versions, so a seed in a
    /// test reproduces the same schedule forever.
    rng: ChaCha8Rng,
    per_mille: u32,
    faults: Vec<Fault>,
}

#[derive(Default)]
struct Schedule {
    queue: VecDeque<Fault>,
    random: Option<RandomFaults>,
    stats: Stats,
}

impl Schedule {
    /// Decides the fault of the request that just arrived, and counts it.
    fn next(&mut self) -> Option<Fault> {
        let fault = match self.queue.pop_front() {
            Some(fault) => Some(fault),
            None => self.random.as_mut().and_then(|random| {
                let hit = random.rng.random_range(0..1000) < random.per_mille;
                if !hit || random.faults.is_empty() {
                    return None;
                }
                let pick = random.rng.random_range(0..random.faults.len());
                Some(random.faults[pick].clone())
            }),
        };
        self.stats.requests += 1;
        match &fault {
            Some(fault) => {
                self.stats.faults += 1;
                *self.stats.by_kind.entry(fault.kind()).or_default() += 1;
            }
            None => self.stats.passed += 1,
        }
        fault
    }
}

/// Locks even a poisoned mutex: the schedule stays consistent whatever a panicking holder did.
fn lock(schedule: &Mutex<Schedule>) -> MutexGuard<'_, Schedule> {
    schedule
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The proxy. Dropping it closes the listener and ends every connection in flight.
pub struct FaultProxy {
    addr: SocketAddr,
    schedule: Arc<Mutex<Schedule>>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Listens on 127.0.0.1 (a free port) and forwards to `upstream`.
    pub fn start(upstream: SocketAddr) -> FaultProxy {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fault-proxy-worker")
            .enable_io()
            .enable_time()
            .build()
            .expect("fault proxy: cannot build its tokio runtime");
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("fault proxy: cannot bind 127.0.0.1:0");
        std_listener
            .set_nonblocking(true)
            .expect("fault proxy: cannot make the listener non-blocking");
        let addr = std_listener
            .local_addr()
            .expect("fault proxy: no local address");
        let listener = {
            let _context = runtime.enter();
            TcpListener::from_std(std_listener).expect("fault proxy: cannot register the listener")
        };
        let schedule = Arc::new(Mutex::new(Schedule::default()));
        let (shutdown, shutdown_rx) = oneshot::channel();
        let loop_schedule = Arc::clone(&schedule);
        let thread = std::thread::Builder::new()
            .name("fault-proxy".into())
            .spawn(move || {
                runtime.block_on(accept_loop(listener, upstream, loop_schedule, shutdown_rx));
                // Cancels the connection tasks; the timeout only bounds blocking work (none).
                runtime.shutdown_timeout(Duration::from_millis(500));
            })
            .expect("fault proxy: cannot spawn its thread");
        FaultProxy {
            addr,
            schedule,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// The URL to give the client instead of the server's.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The next request to arrive gets `fault` (queued faults go first, in order, before the
    /// random schedule is consulted).
    pub fn push(&self, fault: Fault) {
        lock(&self.schedule).queue.push_back(fault);
    }

    /// Queues `fault` for the next `n` requests.
    pub fn push_n(&self, fault: Fault, n: usize) {
        let mut schedule = lock(&self.schedule);
        schedule.queue.extend(std::iter::repeat_n(fault, n));
    }

    /// From now on each request not served from the queue gets, with probability
    /// `per_mille`/1000, a fault picked uniformly from `faults`. Seeded, so a run repeats.
    pub fn set_random(&self, seed: u64, per_mille: u32, faults: Vec<Fault>) {
        lock(&self.schedule).random = Some(RandomFaults {
            rng: ChaCha8Rng::seed_from_u64(seed),
            per_mille: per_mille.min(1000),
            faults,
        });
    }

    /// Empties the queue and stops the random schedule (the stats stay).
    pub fn clear(&self) {
        let mut schedule = lock(&self.schedule);
        schedule.queue.clear();
        schedule.random = None;
    }

    /// A snapshot; counts are final once each client has its answer.
    pub fn stats(&self) -> Stats {
        lock(&self.schedule).stats.clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            // Never panic in drop, even if the proxy's thread did.
            let _ = thread.join();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    schedule: Arc<Mutex<Schedule>>,
    mut shutdown: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    // Decided here, in arrival order, so queue order and seeds mean the same
                    // thing however the tasks are scheduled.
                    let fault = lock(&schedule).next();
                    let schedule = Arc::clone(&schedule);
                    tokio::spawn(async move {
                        let _ = serve(client, upstream, fault, &schedule).await;
                    });
                }
                // Out of descriptors and the like: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
}

async fn serve(
    mut client: TcpStream,
    upstream: SocketAddr,
    fault: Option<Fault>,
    schedule: &Mutex<Schedule>,
) -> io::Result<()> {
    let arrived = Instant::now();
    let _ = client.set_nodelay(true);
    if fault == Some(Fault::Refuse) {
        return reset(client);
    }
    let (buf, head_end) = within(CLIENT_TIMEOUT, read_head(&mut client)).await?;
    if fault == Some(Fault::ResetMidRequest) {
        let half = parse_request(&buf[..head_end]).map_or(0, |r| r.content_length / 2);
        let mut have = (buf.len() - head_end) as u64;
        let _ = timeout(Duration::from_millis(500), async {
            let mut chunk = [0u8; 8192];
            while have < half {
                match client.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => have += n as u64,
                }
            }
        })
        .await;
        return reset(client);
    }
    let request = match parse_request(&buf[..head_end]) {
        Ok(request) => {
            lock(schedule).stats.seen.push(seen(&buf[..head_end]));
            request
        }
        Err(error) => {
            let _ = send_and_close(client, &simple(400, "Bad Request", false)).await;
            return Err(error);
        }
    };
    if request.chunked {
        let answer = simple(501, "Not Implemented (fault proxy: chunked request)", false);
        return send_and_close(client, &answer).await;
    }
    if request.expects_continue {
        client.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
    }
    let body = within(
        CLIENT_TIMEOUT,
        read_body(
            &mut client,
            buf[head_end..].to_vec(),
            request.content_length,
        ),
    )
    .await?;
    if let Some(answer) = fault.as_ref().and_then(|f| canned(f, request.is_head)) {
        return send_and_close(client, &answer).await;
    }
    if fault == Some(Fault::Silent) {
        hold(client, "Silent", arrived, schedule).await;
        return Ok(());
    }

    let mut body = body;
    if fault == Some(Fault::CorruptRequestBody) && !body.is_empty() {
        let middle = body.len() / 2;
        body[middle] ^= 0x01;
    }
    let mut message = connection_close(&buf[..head_end]);
    message.extend_from_slice(&body);
    let response = match forward(upstream, &message).await {
        Ok(response) => final_response(response),
        Err(_) => {
            let answer = simple(
                502,
                "Bad Gateway (fault proxy: upstream failed)",
                request.is_head,
            );
            return send_and_close(client, &answer).await;
        }
    };
    let body_start = find_head_end(&response).unwrap_or(response.len());
    let body_len = response.len() - body_start;
    match fault {
        Some(Fault::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            send_and_close(client, &response).await
        }
        Some(Fault::StallBody { after, stall }) => {
            let split = body_start + after.min(body_len);
            client.write_all(&response[..split]).await?;
            client.flush().await?;
            tokio::time::sleep(stall).await;
            send_and_close(client, &response[split..]).await
        }
        Some(Fault::TruncateBody) => {
            send_and_close(client, &response[..body_start + body_len / 2]).await
        }
        Some(Fault::HideChecksums { corrupt }) => {
            let mut answer = without_headers(&response[..body_start], b"x-amz-checksum-");
            let body_at = answer.len();
            answer.extend_from_slice(&response[body_start..]);
            if corrupt && body_len > 0 {
                answer[body_at + body_len / 2] ^= 0x01;
            }
            send_and_close(client, &answer).await
        }
        Some(Fault::CorruptBody) => {
            let mut response = response;
            if body_len > 0 {
                // One bit: the damage most likely to stay plausible (still text, same length).
                response[body_start + body_len / 2] ^= 0x01;
            }
            send_and_close(client, &response).await
        }
        Some(Fault::StallBodyUntilClosed(after)) => {
            client
                .write_all(&response[..body_start + after.min(body_len)])
                .await?;
            client.flush().await?;
            hold(client, "StallBodyUntilClosed", arrived, schedule).await;
            Ok(())
        }
        Some(Fault::ResetMidResponse) => {
            client
                .write_all(&response[..body_start + body_len / 2])
                .await?;
            client.flush().await?;
            tokio::time::sleep(RST_GRACE).await;
            reset(client)
        }
        _ => send_and_close(client, &response).await,
    }
}

/// The answer for the faults that do not involve upstream. HEAD responses keep their
/// Content-Length but carry no body, as HTTP says.
fn canned(fault: &Fault, is_head: bool) -> Option<Vec<u8>> {
    let answer = match fault {
        Fault::SlowDown => response(
            "503 Slow Down",
            "application/xml",
            &s3_error("SlowDown", "Please reduce your request rate."),
            is_head,
        ),
        Fault::InternalError => response(
            "500 Internal Server Error",
            "application/xml",
            &s3_error(
                "InternalError",
                "We encountered an internal error. Please try again.",
            ),
            is_head,
        ),
        Fault::HtmlError => response(
            "502 Bad Gateway",
            "text/html",
            b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n\
              <body><center><h1>502 Bad Gateway</h1></center></body>\r\n</html>\r\n",
            is_head,
        ),
        Fault::OversizedError => {
            let garbage: Vec<u8> = b"#not-xml-garbage# "
                .iter()
                .cycle()
                .take(OVERSIZED_LEN)
                .copied()
                .collect();
            response(
                "500 Internal Server Error",
                "application/octet-stream",
                &garbage,
                is_head,
            )
        }
        // Looks like the start of a TLS handshake, then noise: nothing an HTTP parser accepts.
        Fault::NotHttp => b"\x16\x03\x01\x00\xa5this is not HTTP\x00\xff\xfe\r\n\r\n".to_vec(),
        _ => return None,
    };
    Some(answer)
}

fn s3_error(code: &str, message: &str) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
         <Message>{message}</Message><RequestId>fault-proxy</RequestId></Error>"
    )
    .into_bytes()
}

fn simple(code: u16, reason: &str, is_head: bool) -> Vec<u8> {
    let body = format!("{reason}\n");
    response(
        &format!("{code} {reason}"),
        "text/plain",
        body.as_bytes(),
        is_head,
    )
}

fn response(status: &str, content_type: &str, body: &[u8], is_head: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !is_head {
        out.extend_from_slice(body);
    }
    out
}

/// Closes with a RST: SO_LINGER 0 makes close() abort instead of shutting down.
fn reset(stream: TcpStream) -> io::Result<()> {
    SockRef::from(&stream).set_linger(Some(Duration::ZERO))?;
    drop(stream);
    Ok(())
}

/// Sends `bytes`, then a FIN, then waits briefly for the client to close (see
/// [`DRAIN_AFTER_CLOSE`]).
async fn send_and_close(mut client: TcpStream, bytes: &[u8]) -> io::Result<()> {
    client.write_all(bytes).await?;
    client.flush().await?;
    client.shutdown().await?;
    let _ = timeout(DRAIN_AFTER_CLOSE, async {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = client.read(&mut chunk).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
    Ok(())
}

/// Keeps the connection open, sending nothing, until the client closes it or [`HOLD_LIMIT`]
/// passes, and records which in [`Stats::held`]. Whatever the client still sends is dropped.
async fn hold(
    mut client: TcpStream,
    kind: &'static str,
    arrived: Instant,
    schedule: &Mutex<Schedule>,
) {
    let closed_by_client = timeout(HOLD_LIMIT, async {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = client.read(&mut chunk).await {
            if n == 0 {
                break;
            }
        }
    })
    .await
    .is_ok();
    lock(schedule).stats.held.push(Held {
        kind,
        for_: arrived.elapsed(),
        closed_by_client,
    });
}

async fn within<T>(limit: Duration, work: impl Future<Output = io::Result<T>>) -> io::Result<T> {
    timeout(limit, work).await.unwrap_or_else(|_| {
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "fault proxy: timed out",
        ))
    })
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("fault proxy: {what}"))
}

/// Reads until the end of the head; returns everything read and where the head ends.
async fn read_head(client: &mut TcpStream) -> io::Result<(Vec<u8>, usize)> {
    let mut buf = Vec::with_capacity(8192);
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = find_head_end(&buf) {
            if end > MAX_HEAD {
                return Err(invalid("request head too large"));
            }
            return Ok((buf, end));
        }
        if buf.len() > MAX_HEAD {
            return Err(invalid("request head too large"));
        }
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Completes a body of `len` bytes, of which `body` already arrived with the head.
async fn read_body(client: &mut TcpStream, mut body: Vec<u8>, len: u64) -> io::Result<Vec<u8>> {
    // Anything past the declared length (a pipelined request) is not forwarded.
    body.truncate(usize::try_from(len).unwrap_or(usize::MAX));
    let missing = len - body.len() as u64;
    body.reserve(usize::try_from(missing.min(64 << 20)).unwrap_or(0));
    client.take(missing).read_to_end(&mut body).await?;
    if (body.len() as u64) < len {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(body)
}

/// Sends the whole request on a fresh connection and reads the answer to EOF. Reading and
/// writing run together so that a server answering before the whole body is in (an early
/// 403, say) is still heard.
async fn forward(upstream: SocketAddr, message: &[u8]) -> io::Result<Vec<u8>> {
    let mut server = within(UPSTREAM_CONNECT_TIMEOUT, TcpStream::connect(upstream)).await?;
    let _ = server.set_nodelay(true);
    within(UPSTREAM_TIMEOUT, async {
        let (mut from_server, mut to_server) = server.split();
        let send = to_server.write_all(message);
        let mut response = Vec::new();
        let receive = from_server.read_to_end(&mut response);
        let (sent, received) = tokio::join!(send, receive);
        if response.is_empty() {
            received?;
            sent?;
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(response)
    })
    .await
}

/// Drops interim (1xx) answers, which only matter to the hop that asked for them, and makes
/// the final head say `Connection: close`, which is what the proxy does.
fn final_response(mut response: Vec<u8>) -> Vec<u8> {
    loop {
        let Some(end) = find_head_end(&response) else {
            return response;
        };
        if status_code(&response[..end])
            .is_some_and(|code| (100..200).contains(&code) && code != 101)
        {
            response.drain(..end);
            continue;
        }
        let mut out = connection_close(&response[..end]);
        out.extend_from_slice(&response[end..]);
        return out;
    }
}

fn find_head_end(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| at + 4)
}

fn lines(head: &[u8]) -> impl Iterator<Item = &[u8]> {
    let head = head.strip_suffix(b"\r\n\r\n").unwrap_or(head);
    head.split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
}

fn header(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = line.iter().position(|&b| b == b':')?;
    Some((line[..colon].trim_ascii(), line[colon + 1..].trim_ascii()))
}

fn status_code(head: &[u8]) -> Option<u16> {
    let status_line = lines(head).next()?;
    let mut parts = status_line.split(|&b| b == b' ');
    if !parts.next()?.starts_with(b"HTTP/") {
        return None;
    }
    std::str::from_utf8(parts.next()?).ok()?.parse().ok()
}

/// Rewrites a head (request or response) to end the connection after this message, leaving it
/// byte for byte as it was when it already says exactly that.
fn connection_close(head: &[u8]) -> Vec<u8> {
    let is_hop = |line: &&[u8]| {
        header(line).is_some_and(|(name, _)| {
            [&b"connection"[..], b"keep-alive", b"proxy-connection"]
                .iter()
                .any(|hop| name.eq_ignore_ascii_case(hop))
        })
    };
    let mut all = lines(head);
    let first = all.next().unwrap_or_default();
    let rest: Vec<&[u8]> = all.filter(|line| !line.is_empty()).collect();
    let hops: Vec<&[u8]> = rest.iter().copied().filter(is_hop).collect();
    let already = matches!(hops.as_slice(), [line] if header(line)
        .is_some_and(|(name, value)| name.eq_ignore_ascii_case(b"connection") && value.eq_ignore_ascii_case(b"close")));
    if already && head.ends_with(b"\r\n\r\n") {
        return head.to_vec();
    }
    let mut out = Vec::with_capacity(head.len() + 32);
    out.extend_from_slice(first);
    out.extend_from_slice(b"\r\n");
    for line in rest.into_iter().filter(|line| !is_hop(line)) {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out
}

/// `head` without the header lines whose names start with `prefix` (lower case).
fn without_headers(head: &[u8], prefix: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(head.len());
    for line in lines(head) {
        let hidden = header(line).is_some_and(|(name, _)| {
            name.len() >= prefix.len() && name[..prefix.len()].eq_ignore_ascii_case(prefix)
        });
        if !hidden {
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn seen(head: &[u8]) -> Seen {
    let mut all = lines(head);
    let request_line = all.next().unwrap_or_default();
    let method = request_line
        .split(|&b| b == b' ')
        .next()
        .unwrap_or_default();
    Seen {
        method: String::from_utf8_lossy(method).into_owned(),
        headers: all
            .filter_map(header)
            .map(|(name, value)| {
                (
                    String::from_utf8_lossy(name).to_ascii_lowercase(),
                    String::from_utf8_lossy(value).into_owned(),
                )
            })
            .collect(),
    }
}

struct Request {
    is_head: bool,
    content_length: u64,
    chunked: bool,
    expects_continue: bool,
}

fn parse_request(head: &[u8]) -> io::Result<Request> {
    let mut all = lines(head);
    let request_line = all.next().unwrap_or_default();
    let method = request_line
        .split(|&b| b == b' ')
        .next()
        .unwrap_or_default();
    if method.is_empty() || !method.iter().all(u8::is_ascii_uppercase) {
        return Err(invalid("not an HTTP request"));
    }
    let mut request = Request {
        is_head: method == b"HEAD",
        content_length: 0,
        chunked: false,
        expects_continue: false,
    };
    let mut content_length = None;
    for line in all.filter(|line| !line.is_empty()) {
        let (name, value) = header(line).ok_or_else(|| invalid("malformed header line"))?;
        if name.eq_ignore_ascii_case(b"content-length") {
            let len: u64 = std::str::from_utf8(value)
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| invalid("bad Content-Length"))?;
            if content_length.is_some_and(|seen| seen != len) {
                return Err(invalid("conflicting Content-Length"));
            }
            content_length = Some(len);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            request.chunked |= value
                .to_ascii_lowercase()
                .windows(7)
                .any(|w| w == b"chunked");
        } else if name.eq_ignore_ascii_case(b"expect") {
            request.expects_continue = value.eq_ignore_ascii_case(b"100-continue");
        }
    }
    request.content_length = content_length.unwrap_or(0);
    if request.content_length > MAX_REQUEST_BODY {
        return Err(invalid("request body too large"));
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{ErrorKind, Read, Write};
    use std::net::TcpStream as StdStream;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    fn upstream_body() -> Vec<u8> {
        (0..4096u32).map(|i| b'a' + (i % 26) as u8).collect()
    }

    fn upstream_response() -> Vec<u8> {
        let body = upstream_body();
        let mut out = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
             x-amz-request-id: upstream\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(&body);
        out
    }

    /// A one-connection-at-a-time server answering anything with 200 and a fixed body; it
    /// records what it received.
    struct Upstream {
        addr: SocketAddr,
        hits: Arc<AtomicUsize>,
        received: Arc<Mutex<Vec<Vec<u8>>>>,
    }

    impl Upstream {
        fn start() -> Upstream {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let hits = Arc::new(AtomicUsize::new(0));
            let received = Arc::new(Mutex::new(Vec::new()));
            let (thread_hits, thread_received) = (Arc::clone(&hits), Arc::clone(&received));
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(mut stream) = stream else { continue };
                    thread_hits.fetch_add(1, Ordering::SeqCst);
                    if let Ok(request) = Self::answer(&mut stream) {
                        thread_received.lock().unwrap().push(request);
                    }
                }
            });
            Upstream {
                addr,
                hits,
                received,
            }
        }

        fn answer(stream: &mut StdStream) -> io::Result<Vec<u8>> {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            let end = loop {
                if let Some(end) = find_head_end(&buf) {
                    break end;
                }
                let n = stream.read(&mut chunk)?;
                if n == 0 {
                    return Err(ErrorKind::UnexpectedEof.into());
                }
                buf.extend_from_slice(&chunk[..n]);
            };
            let len = parse_request(&buf[..end])?.content_length as usize;
            while buf.len() < end + len {
                let n = stream.read(&mut chunk)?;
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            stream.write_all(&upstream_response())?;
            Ok(buf)
        }

        fn hits(&self) -> usize {
            self.hits.load(Ordering::SeqCst)
        }
    }

    /// What a client saw: the bytes, and the first error (from writing or reading).
    struct Seen {
        bytes: Vec<u8>,
        error: Option<ErrorKind>,
    }

    impl Seen {
        fn status(&self) -> Option<u16> {
            status_code(&self.bytes[..find_head_end(&self.bytes)?])
        }

        fn body(&self) -> &[u8] {
            &self.bytes[find_head_end(&self.bytes).unwrap_or(self.bytes.len())..]
        }

        fn content_length(&self) -> Option<usize> {
            let end = find_head_end(&self.bytes)?;
            lines(&self.bytes[..end]).find_map(|line| {
                let (name, value) = header(line)?;
                name.eq_ignore_ascii_case(b"content-length")
                    .then(|| std::str::from_utf8(value).ok()?.parse().ok())?
            })
        }

        fn was_reset(&self) -> bool {
            matches!(
                self.error,
                Some(
                    ErrorKind::ConnectionReset
                        | ErrorKind::ConnectionAborted
                        | ErrorKind::BrokenPipe
                )
            )
        }
    }

    fn send(proxy: &FaultProxy, request: &[u8]) -> Seen {
        exchange(proxy, request, false)
    }

    /// Sends `request` and then a FIN, so that the proxy sees incomplete input end at once.
    fn send_and_end(proxy: &FaultProxy, request: &[u8]) -> Seen {
        exchange(proxy, request, true)
    }

    fn exchange(proxy: &FaultProxy, request: &[u8], end: bool) -> Seen {
        let mut stream = StdStream::connect(proxy.addr()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut error = stream.write_all(request).err().map(|e| e.kind());
        if end {
            let _ = stream.shutdown(std::net::Shutdown::Write);
        }
        let mut bytes = Vec::new();
        let mut chunk = [0u8; 65536];
        loop {
            match stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => bytes.extend_from_slice(&chunk[..n]),
                Err(e) => {
                    error.get_or_insert(e.kind());
                    break;
                }
            }
        }
        Seen { bytes, error }
    }

    fn get(proxy: &FaultProxy) -> Seen {
        send(
            proxy,
            b"GET /bucket/key HTTP/1.1\r\nHost: 127.0.0.1\r\nx-amz-date: 20240101T000000Z\r\n\r\n",
        )
    }

    fn put(proxy: &FaultProxy, len: usize) -> Seen {
        let mut request =
            format!("PUT /bucket/key HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len}\r\n\r\n")
                .into_bytes();
        request.extend(std::iter::repeat_n(b'x', len));
        send(proxy, &request)
    }

    #[test]
    fn passes_requests_and_responses_through_unchanged() {
        let upstream = Upstream::start();
        let proxy = FaultProxy::start(upstream.addr);
        assert!(proxy.endpoint().starts_with("http://127.0.0.1:"));

        let seen = get(&proxy);
        assert_eq!(seen.error, None);
        assert_eq!(seen.bytes, upstream_response());

        let seen = put(&proxy, 100_000);
        assert_eq!(seen.bytes, upstream_response());

        let received = upstream.received.lock().unwrap().clone();
        let get_head = String::from_utf8(received[0].clone()).unwrap();
        assert_eq!(
            get_head,
            "GET /bucket/key HTTP/1.1\r\nHost: 127.0.0.1\r\nx-amz-date: 20240101T000000Z\r\n\
             Connection: close\r\n\r\n"
        );
        let put_request = &received[1];
        let end = find_head_end(put_request).unwrap();
        assert_eq!(put_request.len() - end, 100_000);
        assert!(put_request[end..].iter().all(|&b| b == b'x'));

        let stats = proxy.stats();
        assert_eq!((stats.requests, stats.passed, stats.faults), (2, 2, 0));
    }

    #[test]
    fn refuse_resets_before_reading() {
        let upstream = Upstream::start();
        let proxy = FaultProxy::start(upstream.addr);
        proxy.push(Fault::Refuse);
        let seen = get(&proxy);
        assert!(seen.was_reset(), "{:?}", seen.error);
        assert!(seen.bytes.is_empty());
        assert_eq!(upstream.hits(), 0);
    }

    #[test]
    fn reset_mid_request_never_reaches_upstream() {
        let upstream = Upstream::start();
        let proxy = FaultProxy::start(upstream.addr);
        proxy.push(Fault::ResetMidRequest);
        let seen = put(&proxy, 200_000);
        assert!(seen.was_reset(), "{:?}", seen.error);
        assert!(seen.bytes.is_empty());
        assert_eq!(upstream.hits(), 0);
    }

    #[test]
    fn reset_mid_response_sends_part_then_resets() {
        let upstream = Upstream::start();
        let proxy = FaultProxy::start(upstream.addr);
        proxy.push(Fault::ResetMidResponse);
        let seen = get(&proxy);
        assert!(seen.was_reset(), "{:?}", seen.error);
        assert_eq!(seen.status(), Some(200));
        assert!(!seen.body().is_empty());
        assert!(seen.body().len() < upstream_body().len());
        assert_eq!(upstream.hits(), 1);
    }

    #[test]
    fn s3_errors_do_not_contact_upstream() {
        let upstream = Upstream::start();
        let proxy = FaultProxy::start(upstream.addr);
        for (fault, status, code) in [
            (Fault::SlowDown, 503, "SlowDown"),
            (Fault::InternalError, 500, "InternalError"),
        ] {
            proxy.push(fault);
            let seen = get(&proxy);
            assert_eq!(seen.error, None);
            assert_eq!(seen.status(), Some(status));
            assert_eq!(seen.content_length(), Some(seen.body().len()));
            let body = String::from_utf8(seen.body().to_vec()).unwrap();
            assert!(body.contains(&format!("<Error><Code>{code}</Code><Message>")));
            assert!(body.ends_with("<RequestId>fault-proxy</RequestId></Error>"));
        }
        // A body-less HEAD answer, and the request body consumed without a reset.
        proxy.push(Fault::SlowDown);
        let seen = send(&proxy, b"HEAD /bucket/key HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(seen.status(), Some(503));
        assert!(seen.body().is_empty());
        proxy.push(Fault::SlowDown);
        let seen = put(&proxy, 300_000);
        assert_eq!((seen.status(), seen.error), (Some(503), None));
        assert_eq!(upstream.hits(), 0);
    }

    #[test]
    fn non_s3_answers() {
        let upstream = Upstream::start();
        let proxy = FaultProxy::start(upstream.addr);

        proxy.push(Fault::HtmlError);
        let seen = get(&proxy);
        assert_eq!(seen.status(), Some(502));
        let body = String::from_utf8(seen.body().to_vec()).unwrap();
        assert!(body.starts_with("<html>") && !body.contains("<Error>"));

        proxy.push(Fault::OversizedError);
        let seen = get(&proxy);
        assert_eq!(seen.status(), Some(500));
        assert!(seen.body().len() >= 2 * 1024 * 1024);
        assert_eq!(seen.content_length(), Some(seen.body().len()));
        assert!(!seen.body().starts_with(b"<"));

        proxy.push(Fault::NotHttp);
        let seen = get(&proxy);
        assert!(!seen.bytes.is_empty() && !seen.bytes.starts_with(b"HTTP/"));
        assert_eq!(seen.status(), None);

        assert_eq!(upstream.hits(), 0);
    }

    #[test]
    fn truncate_body_closes_early_with_length_intact() {
        let upstream = Upstream::start();
        let proxy = FaultProxy::start(upstream.addr);
        proxy.push(Fault::TruncateBody);
        let seen = get(&proxy);
        assert_eq!(seen.error, None, "a clean close, not a reset");
        assert_eq!(seen.status(), Some(200));
        assert_eq!(seen.content_length(), Some(upstream_body().len()));
        assert!(seen.body().len() < upstream_body().len());
        assert!(upstream_body().starts_with(seen.body()));
    }

    #[test]
    fn corrupt_body_flips_one_byte() {
        let upstream = Upstream::start();
        let proxy = FaultProxy::start(upstream.addr);
        proxy.push(Fault::CorruptBody);
        let seen = get(&proxy);
        assert_eq!(seen.status(), Some(200));
        let expected = upstream_body();
        assert_eq!(seen.body().len(), expected.len());
        let differing = seen
            .body()
            .iter()
            .zip(&expected)
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(differing, 1);
    }

    #[test]
    fn delay_holds_the_response() {
        let upstream = Upstream::start();
        let proxy = FaultProxy::start(upstream.addr);
        proxy.push(Fault::Delay(Duration::from_millis(300)));
        let started = Instant::now();
        let seen = get(&proxy);
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!(seen.bytes, upstream_response());
        assert_eq!(upstream.hits(), 1);
    }

    /// Sends a GET, then reads until `want` bytes are in and then until nothing more comes for
    /// a moment; returns what came. The connection is then closed by dropping it.
    fn read_until_quiet(proxy: &FaultProxy, want: usize) -> Vec<u8> {
        let mut stream = StdStream::connect(proxy.addr()).unwrap();
        stream
            .write_all(b"GET /bucket/key HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut bytes = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            match stream.read(&mut chunk) {
                Ok(0) => panic!("the proxy closed a held connection"),
                Ok(n) => bytes.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if bytes.len() >= want {
                        return bytes;
                    }
                }
                Err(e) => panic!("{e}"),
            }
        }
    }

    /// The proxy's record of held connections, once it has `n` of them.
    fn held_once(proxy: &FaultProxy, n: usize) -> Vec<Held> {
        for _ in 0..200 {
            let held = proxy.stats().held;
            if held.len() >= n {
                return held;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("{:?}", proxy.stats());
    }

    #[test]
    fn stall_body_sends_the_head_and_some_bytes_then_holds_until_the_client_closes() {
        let upstream = Upstream::start();
        let proxy = FaultProxy::start(upstream.addr);
        proxy.push(Fault::StallBodyUntilClosed(100));
        let head_len = find_head_end(&upstream_response()).unwrap();
        let seen = read_until_quiet(&proxy, head_len + 100);
        assert_eq!(seen.len(), head_len + 100, "nothing past the 100th byte");
        assert_eq!(seen[..], upstream_response()[..head_len + 100]);
        let held = held_once(&proxy, 1);
        assert_eq!(held[0].kind, "StallBodyUntilClosed");
        assert!(held[0].closed_by_client);
        assert_eq!(upstream.hits(), 1);
        // Past the body's end, the whole answer and still no close.
        proxy.push(Fault::StallBodyUntilClosed(1 << 20));
        let seen = read_until_quiet(&proxy, upstream_response().len());
        assert_eq!(seen, upstream_response());
        assert_eq!(held_once(&proxy, 2).len(), 2);
    }

    #[test]
    fn silent_reads_the_request_and_never_answers() {
        let upstream = Upstream::start();
        let proxy = FaultProxy::start(upstream.addr);
        proxy.push(Fault::Silent);
        assert!(read_until_quiet(&proxy, 0).is_empty());
        let held = held_once(&proxy, 1);
        assert_eq!(held[0].kind, "Silent");
        assert!(held[0].closed_by_client);
        assert_eq!(upstream.hits(), 0);
        assert_eq!(proxy.stats().count("Silent"), 1);
    }

    #[test]
    fn queue_is_fifo_and_counted() {
        let upstream = Upstream::start();
        let proxy = FaultProxy::start(upstream.addr);
        proxy.push(Fault::SlowDown);
        proxy.push(Fault::InternalError);
        proxy.push_n(Fault::HtmlError, 2);
        let statuses: Vec<_> = (0..5).map(|_| get(&proxy).status()).collect();
        assert_eq!(statuses, [503, 500, 502, 502, 200].map(Some));

        proxy.push_n(Fault::SlowDown, 3);
        proxy.clear();
        assert_eq!(get(&proxy).status(), Some(200));

        let stats = proxy.stats();
        assert_eq!((stats.requests, stats.passed, stats.faults), (6, 2, 4));
        assert_eq!(stats.count("SlowDown"), 1);
        assert_eq!(stats.count("InternalError"), 1);
        assert_eq!(stats.count("HtmlError"), 2);
        assert_eq!(stats.count("Refuse"), 0);
        assert_eq!(stats.by_kind.values().sum::<u64>(), stats.faults);
    }

    #[test]
    fn random_schedule_is_reproducible() {
        let upstream = Upstream::start();
        let proxy = FaultProxy::start(upstream.addr);
        let faults = vec![Fault::SlowDown, Fault::InternalError, Fault::HtmlError];
        let run = |seed| {
            proxy.set_random(seed, 250, faults.clone());
            (0..200)
                .map(|_| get(&proxy).status().unwrap())
                .collect::<Vec<u16>>()
        };
        let first = run(7);
        assert_eq!(first, run(7));
        assert_ne!(first, run(8));

        let injected = first.iter().filter(|&&s| s != 200).count();
        assert!((25..=75).contains(&injected), "{injected} of 200 at 25%");
        for status in [503, 500, 502] {
            assert!(first.contains(&status));
        }

        // The queue goes first and does not consume the random sequence.
        proxy.set_random(7, 250, faults.clone());
        proxy.push(Fault::NotHttp);
        assert_eq!(get(&proxy).status(), None);
        let again: Vec<u16> = (0..200).map(|_| get(&proxy).status().unwrap()).collect();
        assert_eq!(first, again);

        proxy.set_random(1, 0, faults.clone());
        assert!((0..20).all(|_| get(&proxy).status() == Some(200)));
        proxy.set_random(1, 1000, faults);
        assert!((0..20).all(|_| get(&proxy).status() != Some(200)));

        let stats = proxy.stats();
        assert_eq!(stats.requests, 200 * 4 + 1 + 40);
        assert_eq!(stats.passed + stats.faults, stats.requests);
        assert_eq!(stats.count("NotHttp"), 1);
    }

    #[test]
    fn odd_input_does_not_hurt_the_proxy() {
        let upstream = Upstream::start();
        let proxy = FaultProxy::start(upstream.addr);
        let _ = send_and_end(&proxy, b"");
        let _ = send_and_end(&proxy, b"\x00\xff garbage without end");
        let _ = send(&proxy, &vec![b'a'; 70 * 1024]);
        let seen = send(&proxy, b"GET / HTTP/1.1\r\nContent-Length: lots\r\n\r\n");
        assert_eq!(seen.status(), Some(400));
        let seen = send(&proxy, b"get / HTTP/1.1\r\n\r\n");
        assert_eq!(seen.status(), Some(400));
        let seen = send_and_end(&proxy, b"PUT / HTTP/1.1\r\nContent-Length: 10\r\n\r\nshort");
        assert_eq!(seen.status(), None);
        let seen = send(
            &proxy,
            b"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        );
        assert_eq!(seen.status(), Some(501));
        assert_eq!(get(&proxy).bytes, upstream_response());
    }

    #[test]
    fn upstream_down_is_a_502() {
        let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = unused.local_addr().unwrap();
        drop(unused);
        let proxy = FaultProxy::start(addr);
        assert_eq!(get(&proxy).status(), Some(502));
    }

    #[test]
    fn drop_is_prompt_and_closes_everything() {
        let upstream = Upstream::start();
        let proxy = FaultProxy::start(upstream.addr);
        let addr = proxy.addr();
        proxy.push(Fault::Delay(Duration::from_secs(60)));
        let mut stream = StdStream::connect(addr).unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));

        let started = Instant::now();
        drop(proxy);
        assert!(started.elapsed() < Duration::from_secs(2));
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut buf = Vec::new();
        let ended = stream.read_to_end(&mut buf);
        assert!(buf.is_empty());
        assert!(ended.is_ok() || ended.is_err_and(|e| e.kind() != ErrorKind::WouldBlock));
        assert!(StdStream::connect(addr).is_err());
    }
}
