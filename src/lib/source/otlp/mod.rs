//! The OTLP source of `tapio record`: a receiver for applications' traces and logs.
//!
//! OTLP/gRPC (`TraceService`, `LogsService`, default port 4317) and OTLP/HTTP (`POST /v1/traces`,
//! `POST /v1/logs`, protobuf or JSON, gzip or not, default port 4318), as the OTLP specification
//! defines them, on 127.0.0.1 unless told otherwise. Each request is converted (see [`convert`])
//! and handed to the capture writer whole; when the writer is behind, the request is refused
//! with the specification's retryable answer (HTTP 503 with `Retry-After`, gRPC `UNAVAILABLE`),
//! so the exporter retries and nothing is dropped silently. Records that cannot be kept are
//! reported back as partial success; malformed requests get 400 / `INVALID_ARGUMENT` with a
//! message; requests over the size limit get 413 / `RESOURCE_EXHAUSTED`. The receiver keeps
//! serving through all of it.
//!
//! tokio lives here only: one current-thread runtime on the source's own thread.

pub mod convert;

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use crossbeam_channel::{Sender, TrySendError};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tonic::codec::CompressionEncoding;
use tonic::service::interceptor::InterceptedService;

use crate::event::{Event, Name};

#[derive(Clone, Debug)]
pub struct Options {
    /// The address to listen on (127.0.0.1 unless asked: OTLP has no authentication here).
    pub listen: IpAddr,
    pub grpc_port: u16,
    pub http_port: u16,
    /// The largest request accepted, after decompression.
    pub max_request_bytes: usize,
    /// The node name of records whose resource names none.
    pub node: Name,
    /// Serve both ports over TLS with this certificate chain and key (PEM files).
    pub tls: Option<Tls>,
    /// Take only requests that carry `Authorization: Bearer <token>` (gRPC: the same metadata).
    pub token: Option<String>,
    /// Listen on a non-loopback address without TLS or a token (OTLP from other hosts,
    /// unauthenticated): only when the user says so.
    pub insecure: bool,
}

/// The receiver's certificate chain and private key.
#[derive(Clone, Debug)]
pub struct Tls {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            listen: IpAddr::from([127, 0, 0, 1]),
            grpc_port: 4317,
            http_port: 4318,
            max_request_bytes: 16 << 20,
            node: Name::default(),
            tls: None,
            token: None,
            insecure: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen for OTLP/{what} on {addr}: {error} (another collector running? choose other ports with --otlp-grpc-port / --otlp-http-port)")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error("could not start the OTLP receiver: {0}")]
    Runtime(String),
    #[error("OTLP on {0} would take traces and logs from other hosts with no authentication: give --otlp-tls-cert and --otlp-tls-key, or --otlp-token, or say --otlp-insecure")]
    Unprotected(IpAddr),
    #[error("OTLP TLS: {0}")]
    Tls(String),
}

/// What the receiver did, for the closing summary.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counters {
    pub spans: u64,
    pub logs: u64,
    /// Records rejected one by one (reported to the client as partial success).
    pub rejected: u64,
    /// Requests refused because the writer was behind (the client retries them).
    pub refused: u64,
    /// Requests that could not be read at all.
    pub malformed: u64,
}

#[derive(Default)]
struct Count {
    spans: AtomicU64,
    logs: AtomicU64,
    rejected: AtomicU64,
    refused: AtomicU64,
    malformed: AtomicU64,
}

struct Shared {
    tx: Sender<Vec<Event>>,
    node: Name,
    count: Count,
    max: usize,
    /// `Bearer <token>`, when one is required.
    token: Option<String>,
}

/// Why a request was not taken.
enum Refusal {
    /// The writer is behind: retry later.
    Busy,
    /// The recording is ending.
    Closing,
}

impl Shared {
    /// Whether the writer is behind now: a request is then refused (and counted so) before its
    /// body is decoded — under a flood most are, and decoding each only to drop it would take
    /// the CPU the writer needs to catch up.
    fn behind(&self) -> bool {
        let full = self.tx.is_full();
        if full {
            self.count.refused.fetch_add(1, Ordering::Relaxed);
        }
        full
    }

    fn accept(&self, events: Vec<Event>) -> Result<(), Refusal> {
        if events.is_empty() {
            return Ok(());
        }
        match self.tx.try_send(events) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                self.count.refused.fetch_add(1, Ordering::Relaxed);
                Err(Refusal::Busy)
            }
            Err(TrySendError::Disconnected(_)) => Err(Refusal::Closing),
        }
    }

    /// Converts and hands over a traces request; the partial success to answer with.
    fn traces(&self, req: ExportTraceServiceRequest) -> Result<Option<(i64, String)>, Refusal> {
        self.hand_over(convert::traces(req, &self.node), &self.count.spans)
    }

    fn logs(&self, req: ExportLogsServiceRequest) -> Result<Option<(i64, String)>, Refusal> {
        self.hand_over(convert::logs(req, &self.node), &self.count.logs)
    }

    /// Gives a converted request to the writer and counts it; the partial success to answer with.
    fn hand_over(
        &self,
        c: convert::Converted,
        received: &AtomicU64,
    ) -> Result<Option<(i64, String)>, Refusal> {
        let n = c.events.len() as u64;
        self.accept(c.events)?;
        received.fetch_add(n, Ordering::Relaxed);
        self.count
            .rejected
            .fetch_add(c.rejected as u64, Ordering::Relaxed);
        Ok((c.rejected > 0).then_some((c.rejected, c.first_error)))
    }

    /// Whether a request's `Authorization` value is the one required (in constant time).
    fn authorized(&self, value: Option<&[u8]>) -> bool {
        let Some(expected) = &self.token else {
            return true;
        };
        let got = value.unwrap_or_default();
        let want = expected.as_bytes();
        got.len() == want.len() && got.iter().zip(want).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }

    fn counters(&self) -> Counters {
        let c = &self.count;
        Counters {
            spans: c.spans.load(Ordering::Relaxed),
            logs: c.logs.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            malformed: c.malformed.load(Ordering::Relaxed),
        }
    }
}

/// The receiver with its ports bound, ready to serve.
pub struct Receiver {
    rt: tokio::runtime::Runtime,
    grpc: std::net::TcpListener,
    http: std::net::TcpListener,
    opts: Options,
    /// TLS for each port (gRPC offers h2, HTTP http/1.1).
    tls: Option<(tokio_rustls::TlsAcceptor, tokio_rustls::TlsAcceptor)>,
}

/// Reads the certificate chain and key, for both ports.
fn tls_acceptors(
    tls: &Tls,
) -> Result<(tokio_rustls::TlsAcceptor, tokio_rustls::TlsAcceptor), Error> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| Error::Tls(format!("{}: {e}", tls.cert.display())))?;
    if certs.is_empty() {
        return Err(Error::Tls(format!(
            "{}: no certificate in the file",
            tls.cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key)
        .map_err(|e| Error::Tls(format!("{}: {e}", tls.key.display())))?;
    let config = |alpn: &[u8]| -> Result<tokio_rustls::TlsAcceptor, Error> {
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut c = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs.clone(), key.clone_key())
            .map_err(|e| {
                Error::Tls(format!(
                    "{} and {}: {e}",
                    tls.cert.display(),
                    tls.key.display()
                ))
            })?;
        c.alpn_protocols = vec![alpn.to_vec()];
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(c)))
    };
    Ok((config(b"h2")?, config(b"http/1.1")?))
}

/// Binds both ports now, so that a port in use is an error before the recording starts.
pub fn bind(opts: Options) -> Result<Receiver, Error> {
    if !opts.listen.is_loopback() && opts.tls.is_none() && opts.token.is_none() && !opts.insecure {
        return Err(Error::Unprotected(opts.listen));
    }
    let tls = opts.tls.as_ref().map(tls_acceptors).transpose()?;
    let listen = |what, port| {
        let addr = SocketAddr::new(opts.listen, port);
        let l =
            std::net::TcpListener::bind(addr).map_err(|error| Error::Bind { what, addr, error })?;
        l.set_nonblocking(true)
            .map_err(|error| Error::Bind { what, addr, error })?;
        Ok(l)
    };
    let grpc = listen("gRPC", opts.grpc_port)?;
    let http = listen("HTTP", opts.http_port)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Runtime(e.to_string()))?;
    Ok(Receiver {
        rt,
        grpc,
        http,
        opts,
        tls,
    })
}

impl super::Source for Receiver {
    fn name(&self) -> &'static str {
        "otlp"
    }

    fn describe(&self) -> String {
        let (grpc, http) = self.addrs();
        let (scheme, auth) = (
            if self.tls.is_some() { "https" } else { "http" },
            if self.opts.token.is_some() {
                ", bearer token required"
            } else {
                ""
            },
        );
        format!("OTLP on {grpc} (gRPC) and {scheme}://{http} (HTTP){auth}")
    }

    fn run(self: Box<Self>, out: &super::Outlet) -> super::Counters {
        super::Counters::Otlp((*self).run(&out.events, &out.warnings, &out.halt))
    }
}

impl Receiver {
    /// The gRPC and HTTP addresses (with the ports the system chose for port 0).
    pub fn addrs(&self) -> (SocketAddr, SocketAddr) {
        let a = |l: &std::net::TcpListener| l.local_addr().expect("a bound socket has an address");
        (a(&self.grpc), a(&self.http))
    }

    /// Serves until `halt`, then finishes the requests in flight.
    pub fn run(
        self,
        tx: &Sender<Vec<Event>>,
        warn: &Sender<String>,
        halt: &AtomicBool,
    ) -> Counters {
        let Receiver {
            rt,
            grpc,
            http,
            opts,
            tls,
        } = self;
        let shared = Arc::new(Shared {
            tx: tx.clone(),
            node: opts.node.clone(),
            count: Count::default(),
            max: opts.max_request_bytes,
            token: opts.token.as_ref().map(|t| format!("Bearer {t}")),
        });
        let result = rt.block_on(serve(Arc::clone(&shared), grpc, http, tls, halt));
        if let Err(e) = result {
            let _ = warn.send(format!("otlp: the receiver stopped: {e}"));
        }
        shared.counters()
    }
}

async fn serve(
    shared: Arc<Shared>,
    grpc: std::net::TcpListener,
    http: std::net::TcpListener,
    tls: Option<(tokio_rustls::TlsAcceptor, tokio_rustls::TlsAcceptor)>,
    halt: &AtomicBool,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };

    let grpc_listener = tokio::net::TcpListener::from_std(grpc)?;
    let http_listener = tokio::net::TcpListener::from_std(http)?;
    let (grpc_tls, http_tls) = match tls {
        Some((g, h)) => (Some(g), Some(h)),
        None => (None, None),
    };
    let grpc_task = match grpc_tls {
        None => tokio::spawn(serve_grpc(
            Arc::clone(&shared),
            tcp_incoming(grpc_listener),
            stopped(stop_rx.clone()),
        )),
        Some(acceptor) => tokio::spawn(serve_grpc(
            Arc::clone(&shared),
            tls_incoming(grpc_listener, acceptor, stopped(stop_rx.clone())),
            stopped(stop_rx.clone()),
        )),
    };
    let http_task = tokio::spawn(serve_http(
        http_listener,
        http_router(&shared),
        http_tls,
        stopped(stop_rx.clone()),
    ));
    while !halt.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), grpc_task).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), http_task).await;
    Ok(())
}

/// How long a client may take over a TLS handshake or a request's headers before its connection is
/// closed: slow clients cannot hold connections open (slowloris).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// HTTP connections served at once; past it, new ones are closed at once.
const MAX_HTTP_CONNECTIONS: usize = 1024;

/// OTLP/gRPC over the connections `incoming` yields, until `stop`.
async fn serve_grpc<S, IO>(
    shared: Arc<Shared>,
    incoming: S,
    stop: impl std::future::Future<Output = ()>,
) where
    S: futures_util::Stream<Item = std::io::Result<IO>>,
    IO: tonic::transport::server::Connected
        + tokio::io::AsyncRead
        + tokio::io::AsyncWrite
        + Send
        + Unpin
        + 'static,
{
    let result = tonic::transport::Server::builder()
        .layer(tower::util::MapResponseLayer::new(otlp_status_codes))
        .add_service(trace_service(&shared))
        .add_service(logs_service(&shared))
        .serve_with_incoming_shutdown(incoming, stop)
        .await;
    drop(result);
}

/// OTLP/HTTP: one hyper connection per client, headers within [`HEADER_TIMEOUT`], TLS when
/// configured; on `stop`, the requests in flight finish (for up to 5 s).
async fn serve_http(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stop: impl std::future::Future<Output = ()>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let open = Arc::new(tokio::sync::Semaphore::new(MAX_HTTP_CONNECTIONS));
    tokio::pin!(stop);
    while let Some(tcp) = next_connection(&listener, &mut stop).await {
        let Ok(permit) = Arc::clone(&open).try_acquire_owned() else {
            continue;
        };
        let svc = hyper_util::service::TowerToHyperService::new(router.clone());
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT);
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => {
                    let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(tcp), svc);
                    let _ = watcher.watch(conn).await;
                }
                Some(acceptor) => {
                    if let Ok(Ok(stream)) =
                        tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(tcp)).await
                    {
                        let conn =
                            builder.serve_connection(hyper_util::rt::TokioIo::new(stream), svc);
                        let _ = watcher.watch(conn).await;
                    }
                }
            }
            drop(permit);
        });
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
}

/// The next connection (no delay on it), or `None` once `stop` is done. An accept that fails (out
/// of file descriptors and the like) waits a moment and goes on serving.
async fn next_connection(
    listener: &tokio::net::TcpListener,
    stop: &mut (impl std::future::Future<Output = ()> + Unpin),
) -> Option<tokio::net::TcpStream> {
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((tcp, _)) => {
                    let _ = tcp.set_nodelay(true);
                    return Some(tcp);
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            _ = &mut *stop => return None,
        }
    }
}

/// TLS connections, each handshake in its own task (within [`HEADER_TIMEOUT`]), so a slow client
/// holds up no other.
fn tls_incoming(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> impl futures_util::Stream<Item = std::io::Result<TlsConn>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<TlsConn>>(64);
    tokio::spawn(async move {
        tokio::pin!(stop);
        while let Some(tcp) = next_connection(&listener, &mut stop).await {
            let (tx, acceptor) = (tx.clone(), acceptor.clone());
            tokio::spawn(async move {
                if let Ok(Ok(s)) = tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(tcp)).await
                {
                    let _ = tx.send(Ok(TlsConn(s))).await;
                }
            });
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) })
}

/// A TLS connection, as tonic serves it.
struct TlsConn(tokio_rustls::server::TlsStream<tokio::net::TcpStream>);

impl tonic::transport::server::Connected for TlsConn {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl tokio::io::AsyncRead for TlsConn {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for TlsConn {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// OTLP/gRPC's trace service, as served.
fn trace_service(shared: &Arc<Shared>) -> InterceptedService<TraceServiceServer<Svc>, WhenBusy> {
    let server = TraceServiceServer::new(Svc(Arc::clone(shared)))
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(shared.max);
    InterceptedService::new(server, WhenBusy(Arc::clone(shared)))
}

/// OTLP/gRPC's logs service, as served.
fn logs_service(shared: &Arc<Shared>) -> InterceptedService<LogsServiceServer<Svc>, WhenBusy> {
    let server = LogsServiceServer::new(Svc(Arc::clone(shared)))
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(shared.max);
    InterceptedService::new(server, WhenBusy(Arc::clone(shared)))
}

/// While the writer is behind, a gRPC call is refused (`UNAVAILABLE`) before its message is
/// decoded, as an OTLP/HTTP request is ([`refused_early`]). A call without the token required
/// goes on, to be refused as unauthenticated.
#[derive(Clone)]
struct WhenBusy(Arc<Shared>);

impl tonic::service::Interceptor for WhenBusy {
    fn call(&mut self, req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let given = req.metadata().get("authorization").map(|v| v.as_bytes());
        if self.0.authorized(given) && self.0.behind() {
            return Err(refusal_status(Refusal::Busy));
        }
        Ok(req)
    }
}

/// OTLP/HTTP's routes, as served.
fn http_router(shared: &Arc<Shared>) -> axum::Router {
    axum::Router::new()
        .route("/v1/traces", post(http_traces))
        .route("/v1/logs", post(http_logs))
        .layer(DefaultBodyLimit::max(shared.max))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(shared),
            declared_size,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(shared),
            authorize,
        ))
        .with_state(Arc::clone(shared))
}

/// Runs one request through the receiver's own HTTP or gRPC stack, in process (the fuzz targets
/// `otlp_http` and `otlp_grpc`): `data`'s first byte chooses the path and headers, the rest is
/// the body. Returns the response's status and the events the request gave.
#[doc(hidden)]
pub fn fuzz_request(grpc: bool, data: &[u8]) -> (u16, usize) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    let rt = RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime")
    });
    let (tx, rx) = crossbeam_channel::unbounded();
    let shared = Arc::new(Shared {
        tx,
        node: Name::from("fuzz"),
        count: Count::default(),
        max: 1 << 20,
        token: None,
    });
    let (sel, body) = data.split_first().map_or((0, &[][..]), |(s, b)| (*s, b));
    let logs = sel & 1 == 1;
    let gzip = sel & 2 == 2;
    let mut req = http::Request::builder().method("POST");
    let status = if grpc {
        let path = if logs {
            "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
        } else {
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
        };
        req = req
            .uri(path)
            .header("content-type", "application/grpc")
            .header("te", "trailers");
        if gzip {
            req = req.header("grpc-encoding", "gzip");
        }
        let req = req
            .body(http_body_util::Full::new(Bytes::copy_from_slice(body)))
            .expect("a valid request");
        rt.block_on(async {
            let resp = if logs {
                logs_service(&shared).oneshot(req).await
            } else {
                trace_service(&shared).oneshot(req).await
            };
            let resp = resp.expect("tonic's services do not fail");
            let status = resp.status().as_u16();
            let _ = resp.into_body().collect().await;
            status
        })
    } else {
        let ct = match (sel >> 2) & 3 {
            0 => "application/x-protobuf",
            1 => "application/json",
            2 => "application/protobuf; charset=utf-8",
            _ => "text/plain",
        };
        req = req
            .uri(if logs { "/v1/logs" } else { "/v1/traces" })
            .header("content-type", ct)
            .header("content-length", body.len());
        if gzip {
            req = req.header("content-encoding", "gzip");
        }
        let req = req
            .body(axum::body::Body::from(body.to_vec()))
            .expect("a valid request");
        rt.block_on(async {
            let resp = http_router(&shared)
                .oneshot(req)
                .await
                .expect("axum's router does not fail");
            let status = resp.status().as_u16();
            let _ = resp.into_body().collect().await;
            status
        })
    };
    (status, rx.try_iter().map(|b| b.len()).sum())
}

/// gRPC answers an unparsable message with INTERNAL and an oversized one with OUT_OF_RANGE; OTLP
/// asks for INVALID_ARGUMENT (the client must not retry) and RESOURCE_EXHAUSTED.
fn otlp_status_codes(
    mut r: http::Response<tonic::body::Body>,
) -> http::Response<tonic::body::Body> {
    let h = r.headers();
    let message = h
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let code = match h.get("grpc-status").and_then(|v| v.to_str().ok()) {
        Some("13") if message.contains("decode") => Some("3"),
        Some("11") if message.contains("too%20large") || message.contains("too large") => Some("8"),
        _ => None,
    };
    if let Some(code) = code {
        r.headers_mut()
            .insert("grpc-status", http::HeaderValue::from_static(code));
    }
    r
}

fn tcp_incoming(
    l: tokio::net::TcpListener,
) -> impl futures_util::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures_util::stream::unfold(l, |l| async move {
        let conn = l.accept().await.map(|(s, _)| {
            let _ = s.set_nodelay(true);
            s
        });
        Some((conn, l))
    })
}

#[derive(Clone)]
struct Svc(Arc<Shared>);

impl Svc {
    /// With a token required, a call without it is `UNAUTHENTICATED`.
    fn authorize<T>(&self, req: &tonic::Request<T>) -> Result<(), tonic::Status> {
        let given = req.metadata().get("authorization").map(|v| v.as_bytes());
        if self.0.authorized(given) {
            return Ok(());
        }
        self.0.count.malformed.fetch_add(1, Ordering::Relaxed);
        Err(tonic::Status::unauthenticated(
            "this receiver takes only calls with its bearer token (authorization: Bearer …)",
        ))
    }
}

fn refusal_status(r: Refusal) -> tonic::Status {
    match r {
        Refusal::Busy => {
            tonic::Status::unavailable("tapio's capture writer is behind; retry with backoff")
        }
        Refusal::Closing => tonic::Status::unavailable("tapio is closing its capture"),
    }
}

#[tonic::async_trait]
impl TraceService for Svc {
    async fn export(
        &self,
        req: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.authorize(&req)?;
        let partial = self.0.traces(req.into_inner()).map_err(refusal_status)?;
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: partial.map(|(n, msg)| ExportTracePartialSuccess {
                rejected_spans: n,
                error_message: msg,
            }),
        }))
    }
}

#[tonic::async_trait]
impl LogsService for Svc {
    async fn export(
        &self,
        req: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        self.authorize(&req)?;
        let partial = self.0.logs(req.into_inner()).map_err(refusal_status)?;
        Ok(tonic::Response::new(ExportLogsServiceResponse {
            partial_success: partial.map(|(n, msg)| ExportLogsPartialSuccess {
                rejected_log_records: n,
                error_message: msg,
            }),
        }))
    }
}

/// `google.rpc.Status`, the body of OTLP/HTTP error responses.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

fn reply(
    enc: Encoding,
    status: StatusCode,
    body: Vec<u8>,
    extra: Option<(header::HeaderName, &'static str)>,
) -> Response {
    let ct = match enc {
        Encoding::Protobuf => "application/x-protobuf",
        Encoding::Json => "application/json",
    };
    let mut r = (status, [(header::CONTENT_TYPE, ct)], body).into_response();
    if let Some((k, v)) = extra {
        r.headers_mut()
            .insert(k, header::HeaderValue::from_static(v));
    }
    r
}

fn error(enc: Encoding, status: StatusCode, grpc_code: i32, message: String) -> Response {
    let body = match enc {
        Encoding::Protobuf => RpcStatus {
            code: grpc_code,
            message,
        }
        .encode_to_vec(),
        Encoding::Json => serde_json::json!({"code": grpc_code, "message": message})
            .to_string()
            .into_bytes(),
    };
    let retry = (status == StatusCode::SERVICE_UNAVAILABLE).then_some((header::RETRY_AFTER, "1"));
    reply(enc, status, body, retry)
}

const INVALID_ARGUMENT: i32 = 3;
const RESOURCE_EXHAUSTED: i32 = 8;
const UNAVAILABLE: i32 = 14;
const UNAUTHENTICATED: i32 = 16;

/// Why an OTLP/HTTP request could not be read: the error response to give.
struct Rejection {
    enc: Encoding,
    status: StatusCode,
    code: i32,
    message: String,
}

impl Rejection {
    fn response(self) -> Response {
        error(self.enc, self.status, self.code, self.message)
    }
}

/// The body of an OTLP/HTTP request, decompressed and decoded.
fn decode<T: Message + Default + serde::de::DeserializeOwned>(
    shared: &Shared,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(Encoding, T), Rejection> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let enc = if ct.starts_with("application/x-protobuf") || ct.starts_with("application/protobuf")
    {
        Encoding::Protobuf
    } else if ct.starts_with("application/json") {
        Encoding::Json
    } else {
        shared.count.malformed.fetch_add(1, Ordering::Relaxed);
        return Err(Rejection {
            enc: Encoding::Json,
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: INVALID_ARGUMENT,
            message: format!("unsupported content type {ct:?}: OTLP/HTTP takes application/x-protobuf or application/json"),
        });
    };
    let bad = |status, code, message: String| {
        shared.count.malformed.fetch_add(1, Ordering::Relaxed);
        Err(Rejection {
            enc,
            status,
            code,
            message,
        })
    };
    let gz = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    let raw: std::borrow::Cow<[u8]> = match gz.as_deref() {
        None | Some("identity") | Some("") => std::borrow::Cow::Borrowed(&body[..]),
        Some("gzip") => {
            let mut out = Vec::new();
            let limit = shared.max as u64 + 1;
            match flate2::read::GzDecoder::new(&body[..])
                .take(limit)
                .read_to_end(&mut out)
            {
                Ok(_) if out.len() > shared.max => {
                    return bad(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        RESOURCE_EXHAUSTED,
                        format!(
                            "the request is larger than {} bytes once decompressed",
                            shared.max
                        ),
                    )
                }
                Ok(_) => std::borrow::Cow::Owned(out),
                Err(e) => {
                    return bad(
                        StatusCode::BAD_REQUEST,
                        INVALID_ARGUMENT,
                        format!("the gzip body could not be decompressed: {e}"),
                    )
                }
            }
        }
        Some(other) => {
            return bad(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                INVALID_ARGUMENT,
                format!("unsupported content encoding {other:?} (gzip or none)"),
            )
        }
    };
    let decoded = match enc {
        Encoding::Protobuf => T::decode(&raw[..]).map_err(|e| e.to_string()),
        Encoding::Json => serde_json::from_slice(&raw).map_err(|e| e.to_string()),
    };
    match decoded {
        Ok(req) => Ok((enc, req)),
        Err(e) => bad(
            StatusCode::BAD_REQUEST,
            INVALID_ARGUMENT,
            format!(
                "the request is not a valid OTLP {} message: {e}",
                if enc == Encoding::Json {
                    "JSON"
                } else {
                    "protobuf"
                }
            ),
        ),
    }
}

fn refused(enc: Encoding, r: Refusal) -> Response {
    let msg = match r {
        Refusal::Busy => "tapio's capture writer is behind; retry after the delay",
        Refusal::Closing => "tapio is closing its capture",
    };
    error(
        enc,
        StatusCode::SERVICE_UNAVAILABLE,
        UNAVAILABLE,
        msg.to_string(),
    )
}

fn encode<T: Message + serde::Serialize>(enc: Encoding, resp: &T) -> Vec<u8> {
    match enc {
        Encoding::Protobuf => resp.encode_to_vec(),
        Encoding::Json => serde_json::to_vec(resp).unwrap_or_else(|_| b"{}".to_vec()),
    }
}

/// With a token required, a request without it is refused before its body is read (401,
/// `UNAUTHENTICATED`).
async fn authorize(
    State(shared): State<Arc<Shared>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    if shared.authorized(given) {
        return next.run(req).await;
    }
    shared.count.malformed.fetch_add(1, Ordering::Relaxed);
    let mut resp = error(
        declared_encoding(req.headers()),
        StatusCode::UNAUTHORIZED,
        UNAUTHENTICATED,
        "this receiver takes only requests with its bearer token (Authorization: Bearer …)"
            .to_string(),
    );
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    resp
}

/// A request that declares a body above the limit is refused at once, before its body is read
/// (a client that declares a terabyte does not hold a connection while it sends it).
async fn declared_size(
    State(shared): State<Arc<Shared>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(n) = declared.filter(|n| *n > shared.max as u64) {
        shared.count.malformed.fetch_add(1, Ordering::Relaxed);
        let mut resp = error(
            declared_encoding(req.headers()),
            StatusCode::PAYLOAD_TOO_LARGE,
            RESOURCE_EXHAUSTED,
            format!(
                "the request declares {n} bytes; this receiver takes at most {}",
                shared.max
            ),
        );
        // The body is not read: the connection cannot be used again.
        resp.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
        return resp;
    }
    next.run(req).await
}

/// The encoding a request's content type names, for an answer given before its body is read.
fn declared_encoding(headers: &HeaderMap) -> Encoding {
    let protobuf = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("protobuf"));
    if protobuf {
        Encoding::Protobuf
    } else {
        Encoding::Json
    }
}

/// While the writer is behind ([`Shared::behind`]), a request is refused before its body is
/// decoded. (One that arrives as the writer frees a slot is decoded, then taken or refused by
/// [`Shared::accept`].)
fn refused_early(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    shared
        .behind()
        .then(|| refused(declared_encoding(headers), Refusal::Busy))
}

async fn http_traces(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(busy) = refused_early(&shared, &headers) {
        return busy;
    }
    let (enc, req) = match decode::<ExportTraceServiceRequest>(&shared, &headers, &body) {
        Ok(x) => x,
        Err(r) => return r.response(),
    };
    match shared.traces(req) {
        Ok(partial) => {
            let resp = ExportTraceServiceResponse {
                partial_success: partial.map(|(n, msg)| ExportTracePartialSuccess {
                    rejected_spans: n,
                    error_message: msg,
                }),
            };
            reply(enc, StatusCode::OK, encode(enc, &resp), None)
        }
        Err(r) => refused(enc, r),
    }
}

async fn http_logs(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(busy) = refused_early(&shared, &headers) {
        return busy;
    }
    let (enc, req) = match decode::<ExportLogsServiceRequest>(&shared, &headers, &body) {
        Ok(x) => x,
        Err(r) => return r.response(),
    };
    match shared.logs(req) {
        Ok(partial) => {
            let resp = ExportLogsServiceResponse {
                partial_success: partial.map(|(n, msg)| ExportLogsPartialSuccess {
                    rejected_log_records: n,
                    error_message: msg,
                }),
            };
            reply(enc, StatusCode::OK, encode(enc, &resp), None)
        }
        Err(r) => refused(enc, r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    fn one_span() -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span {
                        trace_id: vec![1; 16],
                        span_id: vec![2; 8],
                        start_time_unix_nano: 1_700_000_000_000_000_000,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn with_a_token_only_requests_that_carry_it_are_taken() {
        use tower::ServiceExt;
        let (tx, rx) = crossbeam_channel::unbounded();
        let shared = Arc::new(Shared {
            tx,
            node: Name::from("node-1"),
            count: Count::default(),
            max: 1 << 20,
            token: Some("Bearer s3cret".into()),
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let body = one_span().encode_to_vec();
        let call = |auth: Option<&str>| {
            let mut req = http::Request::builder()
                .method("POST")
                .uri("/v1/traces")
                .header("content-type", "application/x-protobuf");
            if let Some(a) = auth {
                req = req.header("authorization", a);
            }
            let req = req.body(axum::body::Body::from(body.clone())).unwrap();
            rt.block_on(http_router(&shared).oneshot(req))
                .unwrap()
                .status()
                .as_u16()
        };
        assert_eq!(call(None), 401);
        assert_eq!(call(Some("Bearer wrong!")), 401);
        assert_eq!(call(Some("Bearer s3cre")), 401);
        assert_eq!(rx.try_iter().count(), 0, "nothing refused was kept");
        assert_eq!(call(Some("Bearer s3cret")), 200);
        assert_eq!(rx.try_iter().count(), 1);
        // gRPC: the same check on the call's metadata.
        let svc = Svc(Arc::clone(&shared));
        let mut req = tonic::Request::new(());
        assert_eq!(
            svc.authorize(&req).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        req.metadata_mut()
            .insert("authorization", "Bearer s3cret".parse().unwrap());
        assert!(svc.authorize(&req).is_ok());
    }

    #[test]
    fn a_non_loopback_address_needs_tls_a_token_or_insecure() {
        let opts = |tls: bool, token: bool, insecure: bool| Options {
            listen: IpAddr::from([0, 0, 0, 0]),
            grpc_port: 0,
            http_port: 0,
            tls: tls.then(|| Tls {
                cert: "/nonexistent/cert.pem".into(),
                key: "/nonexistent/key.pem".into(),
            }),
            token: token.then(|| "t".to_string()),
            insecure,
            ..Options::default()
        };
        assert!(matches!(
            bind(opts(false, false, false)),
            Err(Error::Unprotected(_))
        ));
        let tls = bind(opts(true, false, false)).err().unwrap().to_string();
        assert!(tls.contains("/nonexistent/cert.pem"), "{tls}");
        assert!(bind(opts(false, true, false)).is_ok());
        assert!(bind(opts(false, false, true)).is_ok());
        let loopback = Options {
            grpc_port: 0,
            http_port: 0,
            ..Options::default()
        };
        assert!(bind(loopback).is_ok());
    }

    #[test]
    fn a_writer_that_is_behind_gets_the_client_to_retry_not_a_silent_drop() {
        let (tx, rx) = crossbeam_channel::bounded(1);
        tx.send(Vec::new()).unwrap(); // the writer has not taken the last batch yet
        let shared = Arc::new(Shared {
            tx,
            node: Name::from("node-1"),
            count: Count::default(),
            max: 1 << 20,
            token: None,
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            "application/x-protobuf".parse().unwrap(),
        );
        let body = Bytes::from(one_span().encode_to_vec());
        let resp = rt.block_on(http_traces(
            State(Arc::clone(&shared)),
            headers.clone(),
            body.clone(),
        ));
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "1");
        let svc = Svc(Arc::clone(&shared));
        let grpc = rt.block_on(TraceService::export(&svc, tonic::Request::new(one_span())));
        assert_eq!(grpc.unwrap_err().code(), tonic::Code::Unavailable);
        // Refused before its body is decoded: not even a malformed one costs a decode.
        let garbage = rt.block_on(http_traces(
            State(Arc::clone(&shared)),
            headers.clone(),
            Bytes::from_static(b"\xff\xff not protobuf"),
        ));
        assert_eq!(garbage.status(), StatusCode::SERVICE_UNAVAILABLE);
        // And over gRPC.
        let call = http::Request::builder()
            .method("POST")
            .uri("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(http_body_util::Full::new(Bytes::from_static(
                b"\x00\x00\x00\x00\x05garbage",
            )))
            .unwrap();
        let resp = rt
            .block_on(tower::ServiceExt::oneshot(trace_service(&shared), call))
            .unwrap();
        assert_eq!(resp.headers()["grpc-status"], "14");
        assert_eq!(shared.counters().refused, 4);
        assert_eq!(shared.counters().malformed, 0);
        assert_eq!(shared.counters().spans, 0, "nothing counted as received");
        // Once the writer catches up, the retry goes through.
        rx.recv().unwrap();
        let resp = rt.block_on(http_traces(State(Arc::clone(&shared)), headers, body));
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(rx.recv().unwrap().len(), 1);
    }
}
