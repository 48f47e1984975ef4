//! A loopback proxy between the functions and moto: it counts every AWS call by
//! service and operation, and can answer instead of moto with the faults AWS
//! produces (throttling, 500s, dropped connections, slow answers), at a configurable
//! rate or on chosen calls.
//!
//! The function under test gets `AWS_ENDPOINT_URL` = the proxy. Faults carry the
//! error shape of each protocol (JSON `__type` for ECS, ECR and Application Auto
//! Scaling; query XML for SNS), so the SDK classifies them as AWS would.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

/// One AWS call as the proxy saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// `ecs`, `sns`, `ecr`, `application-autoscaling`, ... (from the SigV4 scope).
    pub service: String,
    /// `DescribeServices`, `Publish`, ...
    pub operation: String,
    /// What the proxy did with it.
    pub fault: Option<Fault>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 400 with the protocol's throttling error.
    Throttle,
    /// 500 with an internal error.
    ServerError,
    /// The connection is closed without an answer.
    Drop,
    /// The answer is delayed (then forwarded).
    Slow(Duration),
}

/// Which calls get a fault.
#[derive(Clone, Debug, Default)]
pub struct FaultPlan {
    /// Faults to inject, in turn, at `rate` (0.0 to 1.0) of the calls that `only`
    /// admits. A deterministic generator seeded by `seed` decides, so a run can be
    /// reproduced.
    pub kinds: Vec<Fault>,
    pub rate: f64,
    pub seed: u64,
    /// Only these operations (empty: every operation).
    pub only: Vec<String>,
    /// Exact faults for the n-th call (0-based, counting every call) regardless of rate.
    pub scripted: BTreeMap<usize, Fault>,
    /// The first `n` calls of an operation fail with the fault (e.g. 3: every attempt
    /// the SDK makes in one invocation), before `rate` applies.
    pub fail_first: Vec<(String, usize, Fault)>,
}

struct State {
    plan: FaultPlan,
    calls: Vec<Call>,
    rng: fastrand::Rng,
    turn: usize,
    /// A rollout state the service's PRIMARY deployment shows in DescribeServices
    /// answers instead of moto's (which never changes one).
    rollout: Option<String>,
}

impl State {
    fn decide(&mut self, operation: &str) -> Option<Fault> {
        let n = self.calls.len();
        if let Some(f) = self.plan.scripted.get(&n) {
            return Some(*f);
        }
        for (op, left, fault) in self.plan.fail_first.iter_mut() {
            if op == operation && *left > 0 {
                *left -= 1;
                return Some(*fault);
            }
        }
        if self.plan.kinds.is_empty() || self.plan.rate <= 0.0 {
            return None;
        }
        if !self.plan.only.is_empty() && !self.plan.only.iter().any(|o| o == operation) {
            return None;
        }
        if self.rng.f64() < self.plan.rate {
            let f = self.plan.kinds[self.turn % self.plan.kinds.len()];
            self.turn += 1;
            Some(f)
        } else {
            None
        }
    }
}

pub struct Proxy {
    pub url: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Starts a proxy to `upstream` (`http://127.0.0.1:PORT`), counting and forwarding.
    pub async fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let state = Arc::new(Mutex::new(State {
            plan: FaultPlan::default(),
            calls: Vec::new(),
            rng: fastrand::Rng::with_seed(0x9E37_79B9_7F4A_7C15),
            turn: 0,
            rollout: None,
        }));
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (st, upstream) = (st.clone(), upstream.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(req, st.clone(), upstream.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(false)
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Proxy { url, state, task }
    }

    pub fn set_plan(&self, plan: FaultPlan) {
        let mut s = self.state.lock().unwrap();
        s.rng = fastrand::Rng::with_seed(plan.seed);
        s.turn = 0;
        s.plan = plan;
    }

    /// From now on DescribeServices answers show the PRIMARY deployment in `state`
    /// (`Some("IN_PROGRESS")`: a rollout under way), or as moto has it (`None`, i.e.
    /// COMPLETED: the rollout is over). moto never changes a rollout state by itself.
    pub fn set_rollout(&self, state: Option<&str>) {
        self.state.lock().unwrap().rollout = state.map(str::to_owned);
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    /// Takes the calls so far (and starts counting afresh).
    pub fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut self.state.lock().unwrap().calls)
    }

    /// The operation names of `calls`, in order.
    pub fn operations(calls: &[Call]) -> Vec<String> {
        calls.iter().map(|c| c.operation.clone()).collect()
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

/// (service, operation) of a request: the service from the SigV4 credential scope,
/// the operation from `X-Amz-Target` (JSON protocols) or `Action=` (query protocol).
fn identify(headers: &hyper::HeaderMap, body: &[u8]) -> (String, String) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let service = header("authorization")
        .split("Credential=")
        .nth(1)
        .and_then(|c| c.split('/').nth(3))
        .unwrap_or("unknown")
        .to_owned();
    let target = header("x-amz-target");
    let operation = match target.rsplit_once('.') {
        Some((_, op)) => op.to_owned(),
        None => String::from_utf8_lossy(body)
            .split('&')
            .find_map(|kv| kv.strip_prefix("Action="))
            .unwrap_or("unknown")
            .to_owned(),
    };
    (service, operation)
}

fn fault_response(service: &str, fault: Fault) -> Response<Full<Bytes>> {
    let (status, code) = match fault {
        Fault::Throttle => (400, "ThrottlingException"),
        _ => (500, "InternalFailure"),
    };
    let (content_type, body) = if service == "sns" {
        let code = if code == "ThrottlingException" {
            "Throttling"
        } else {
            code
        };
        (
            "text/xml",
            format!(
                "<ErrorResponse><Error><Type>{}</Type><Code>{code}</Code><Message>injected by the fault proxy</Message></Error><RequestId>fault</RequestId></ErrorResponse>",
                if status == 400 { "Sender" } else { "Receiver" }
            ),
        )
    } else {
        (
            "application/x-amz-json-1.1",
            format!(r#"{{"__type":"{code}","message":"injected by the fault proxy"}}"#),
        )
    };
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", content_type)
        .header("x-amzn-errortype", code)
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<Mutex<State>>,
    upstream: String,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let (service, operation) = identify(&parts.headers, &body);
    let (fault, rollout) = {
        let mut s = state.lock().unwrap();
        let fault = s.decide(&operation);
        s.calls.push(Call {
            service: service.clone(),
            operation: operation.clone(),
            fault,
        });
        (fault, s.rollout.clone())
    };
    match fault {
        Some(Fault::Drop) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "dropped by the fault proxy",
            ))
        }
        Some(Fault::Slow(d)) => tokio::time::sleep(d).await,
        Some(f) => return Ok(fault_response(&service, f)),
        None => {}
    }
    let (mut parts, body) = forward(parts, body, &upstream).await?;
    let body = match rollout {
        Some(state) if operation == "DescribeServices" => {
            parts.headers.remove(hyper::header::CONTENT_LENGTH);
            with_rollout(&body, &state)
        }
        _ => body,
    };
    Ok(Response::from_parts(parts, Full::new(body)))
}

/// A DescribeServices answer whose services' PRIMARY deployments show `state`.
fn with_rollout(body: &Bytes, state: &str) -> Bytes {
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return body.clone();
    };
    if let Some(services) = v["services"].as_array_mut() {
        for svc in services {
            if let Some(deployments) = svc["deployments"].as_array_mut() {
                for d in deployments.iter_mut().filter(|d| d["status"] == "PRIMARY") {
                    d["rolloutState"] = serde_json::Value::String(state.to_owned());
                }
            }
        }
    }
    Bytes::from(v.to_string())
}

async fn forward(
    parts: hyper::http::request::Parts,
    body: Bytes,
    upstream: &str,
) -> Result<(hyper::http::response::Parts, Bytes), std::io::Error> {
    let stream = TcpStream::connect(upstream).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(conn);
    let req = Request::from_parts(parts, Full::new(body));
    let resp = sender
        .send_request(req)
        .await
        .map_err(std::io::Error::other)?;
    let (parts, body) = resp.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .map_err(std::io::Error::other)?;
    Ok((parts, body))
}
