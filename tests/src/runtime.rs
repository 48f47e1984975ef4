//! A small host for the Lambda Runtime API, so a built function binary runs exactly as
//! it does in Lambda: it polls `GET /2018-06-01/runtime/invocation/next` and posts a
//! response or an error for each invocation.
//!
//! See <https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html>.

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot, Notify};

use crate::moto::{ACCOUNT, REGION};

/// What an invocation returned through the Runtime API.
#[derive(Clone, Debug, PartialEq)]
pub enum Invocation {
    Ok(Value),
    Err {
        error_type: String,
        error_message: String,
    },
}

impl Invocation {
    pub fn ok(self) -> Value {
        match self {
            Invocation::Ok(v) => v,
            Invocation::Err {
                error_type,
                error_message,
            } => {
                panic!("invocation failed: {error_type}: {error_message}")
            }
        }
    }

    pub fn err(self) -> (String, String) {
        match self {
            Invocation::Err {
                error_type,
                error_message,
            } => (error_type, error_message),
            Invocation::Ok(v) => panic!("invocation succeeded but an error was expected: {v}"),
        }
    }
}

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Invocation>>>>;

struct Queued {
    id: String,
    event: Value,
}

/// The Runtime API endpoint one function process talks to.
struct Host {
    addr: String,
    queue: mpsc::UnboundedSender<Queued>,
    pending: Pending,
    init_error: Arc<Mutex<Option<String>>>,
    first_next: FirstNext,
    task: tokio::task::JoinHandle<()>,
}

/// When the function's first `GET /invocation/next` reached the host (for `make
/// bench`'s cold start: the function has finished its init when it asks for work).
#[derive(Clone, Default)]
struct FirstNext {
    at: Arc<std::sync::OnceLock<Instant>>,
    notify: Arc<Notify>,
}

impl FirstNext {
    fn record(&self) {
        if self.at.set(Instant::now()).is_ok() {
            self.notify.notify_one();
        }
    }
}

impl Host {
    async fn start(function_arn: String) -> Host {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind runtime API");
        let addr = listener.local_addr().unwrap().to_string();
        let (tx, rx) = mpsc::unbounded_channel::<Queued>();
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let pending: Pending = Arc::default();
        let init_error: Arc<Mutex<Option<String>>> = Arc::default();
        let first_next = FirstNext::default();
        let (p, ie, fnx) = (pending.clone(), init_error.clone(), first_next.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (rx, pending, init_error, arn, first_next) = (
                    rx.clone(),
                    p.clone(),
                    ie.clone(),
                    function_arn.clone(),
                    fnx.clone(),
                );
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        route(
                            req,
                            rx.clone(),
                            pending.clone(),
                            init_error.clone(),
                            arn.clone(),
                            first_next.clone(),
                        )
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Host {
            addr,
            queue: tx,
            pending,
            init_error,
            first_next,
            task,
        }
    }
}

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(body.into()))
        .unwrap()
}

async fn route(
    req: Request<Incoming>,
    rx: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Queued>>>,
    pending: Pending,
    init_error: Arc<Mutex<Option<String>>>,
    function_arn: String,
    first_next: FirstNext,
) -> Result<Response<Full<Bytes>>, Infallible> {
    const PREFIX: &str = "/2018-06-01/runtime";
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    if method == hyper::Method::GET && path == "/2018-06-01/runtime/invocation/next" {
        first_next.record();
    }
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return Ok(reply(StatusCode::NOT_FOUND, "{}"));
    };
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    match (method.as_str(), rest) {
        ("GET", "/invocation/next") => {
            let next = rx.lock().await.recv().await;
            let Some(q) = next else {
                return Ok(reply(StatusCode::GONE, "{}"));
            };
            let deadline =
                SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_secs(60);
            Ok(Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .header("lambda-runtime-aws-request-id", &q.id)
                .header(
                    "lambda-runtime-deadline-ms",
                    deadline.as_millis().to_string(),
                )
                .header("lambda-runtime-invoked-function-arn", function_arn)
                .header(
                    "lambda-runtime-trace-id",
                    format!("Root=1-00000000-{}", q.id.replace('-', "")),
                )
                .body(Full::new(Bytes::from(q.event.to_string())))
                .unwrap())
        }
        ("POST", "/init/error") => {
            *init_error.lock().unwrap() = Some(String::from_utf8_lossy(&body).into_owned());
            Ok(reply(StatusCode::ACCEPTED, "{\"status\":\"OK\"}"))
        }
        ("POST", r) if r.starts_with("/invocation/") => {
            let parts: Vec<&str> = r.trim_start_matches("/invocation/").split('/').collect();
            let [id, kind] = parts[..] else {
                return Ok(reply(StatusCode::NOT_FOUND, "{}"));
            };
            let result = match kind {
                "response" => Invocation::Ok(serde_json::from_slice(&body).unwrap_or(Value::Null)),
                "error" => {
                    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    Invocation::Err {
                        error_type: v["errorType"].as_str().unwrap_or_default().to_owned(),
                        error_message: v["errorMessage"].as_str().unwrap_or_default().to_owned(),
                    }
                }
                _ => return Ok(reply(StatusCode::NOT_FOUND, "{}")),
            };
            match pending.lock().unwrap().remove(id) {
                Some(tx) => {
                    let _ = tx.send(result);
                    Ok(reply(StatusCode::ACCEPTED, "{\"status\":\"OK\"}"))
                }
                None => Ok(reply(
                    StatusCode::BAD_REQUEST,
                    "{\"errorMessage\":\"unknown request id\"}",
                )),
            }
        }
        _ => Ok(reply(StatusCode::NOT_FOUND, "{}")),
    }
}

/// A function binary running as a Lambda custom runtime under [`Host`].
pub struct Function {
    host: Host,
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
    next_id: u64,
    name: String,
    spawned_at: Instant,
}

impl Function {
    /// Starts `binary` with `env` (plus the variables Lambda itself sets).
    pub async fn start(binary: &Path, name: &str, env: &[(String, String)]) -> Function {
        let arn = format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}");
        let host = Host::start(arn).await;
        let mut cmd = Command::new(binary);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", &host.addr)
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let spawned_at = Instant::now();
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        let logs: Arc<Mutex<Vec<String>>> = Arc::default();
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let logs = logs.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if std::env::var_os("MENOTIME_SHOW_LOGS").is_some() {
                        eprintln!("  | {line}");
                    }
                    logs.lock().unwrap().push(line);
                }
            });
        }
        Function {
            host,
            child,
            logs,
            next_id: 0,
            name: name.to_owned(),
            spawned_at,
        }
    }

    /// The cold start as `make bench` measures it: from just before the process was
    /// spawned to its first `GET /invocation/next` (its init is over when it asks for
    /// work). Waits up to `limit` for that request; `None` if it did not come.
    pub async fn first_next(&self, limit: Duration) -> Option<Duration> {
        let first = &self.host.first_next;
        let wait = async {
            loop {
                if let Some(at) = first.at.get() {
                    return *at;
                }
                first.notify.notified().await;
            }
        };
        let at = tokio::time::timeout(limit, wait).await.ok()?;
        Some(at.saturating_duration_since(self.spawned_at))
    }

    /// The process's peak resident memory so far (`VmHWM` in `/proc/<pid>/status`, in
    /// KiB); `None` once it has exited or where `/proc` is not available.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Invokes the function with `event` and waits for its response or error.
    pub async fn invoke(&mut self, event: &Value) -> Invocation {
        let id = self.next_request_id();
        self.invoke_as(&id, event).await
    }

    /// A fresh request id, as Lambda gives every new invocation.
    pub fn next_request_id(&mut self) -> String {
        self.next_id += 1;
        format!(
            "{:08x}-0000-4000-8000-{:012x}",
            std::process::id(),
            self.next_id
        )
    }

    /// Invokes with a given request id: what Lambda does when it retries a failed
    /// asynchronous invocation (same event, same request id).
    pub async fn invoke_as(&mut self, request_id: &str, event: &Value) -> Invocation {
        let id = request_id.to_owned();
        let (tx, rx) = oneshot::channel();
        self.host.pending.lock().unwrap().insert(id.clone(), tx);
        self.host
            .queue
            .send(Queued {
                id: id.clone(),
                event: event.clone(),
            })
            .expect("runtime host is running");
        let wait = tokio::time::timeout(Duration::from_secs(90), rx);
        tokio::select! {
            r = wait => match r {
                Ok(Ok(inv)) => inv,
                Ok(Err(_)) => panic!("{}: invocation {id} was dropped", self.name),
                Err(_) => panic!("{}: no answer to invocation {id} within 90 s; logs:\n{}", self.name, self.logs().join("\n")),
            },
            status = self.child.wait() => panic!(
                "{} exited ({:?}) during invocation {id}; init error: {:?}; logs:\n{}",
                self.name, status, self.host.init_error.lock().unwrap(), self.logs().join("\n")
            ),
        }
    }

    /// Everything the function printed so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
        self.host.task.abort();
    }
}

/// Runs `binary` with `env` but no Runtime API traffic, until it exits; returns its exit
/// code and output. For start-up failures (missing configuration).
pub async fn run_to_exit(binary: &Path, env: &[(String, String)]) -> (Option<i32>, String) {
    let out = Command::new(binary)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .env("AWS_LAMBDA_FUNCTION_NAME", "startup-check")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), out)
        .await
        .expect("binary exits on bad configuration")
        .expect("run binary");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// Builds a binary of the workspace (a no-op when up to date) and returns its path.
pub fn build_binary(package: &str, bin: &str) -> PathBuf {
    static BUILT: Mutex<Vec<(String, PathBuf)>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap();
    if let Some((_, p)) = built.iter().find(|(b, _)| b == bin) {
        return p.clone();
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut args = vec![
        "build",
        "--quiet",
        "-p",
        package,
        "--bin",
        bin,
        "--message-format=json",
    ];
    if cfg!(not(debug_assertions)) {
        args.push("--release");
    }
    let out = std::process::Command::new(cargo)
        .current_dir(crate::workspace_root())
        .args(&args)
        .stderr(Stdio::inherit())
        .output()
        .expect("run cargo build");
    assert!(
        out.status.success(),
        "cargo build -p {package} --bin {bin} failed"
    );
    let path = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["reason"] == "compiler-artifact" && v["target"]["name"] == bin)
        .filter_map(|v| v["executable"].as_str().map(PathBuf::from))
        .next_back()
        .unwrap_or_else(|| panic!("cargo did not report the {bin} executable"));
    built.push((bin.to_owned(), path.clone()));
    path
}
