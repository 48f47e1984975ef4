//! HTTP on loopback for the harness, on hyper: a client for moto's control endpoints
//! (`/moto-api/...`) and an endpoint SNS delivers to.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

/// Sends one request to `addr` (`127.0.0.1:PORT`) and returns (status, body). hyper
/// reads the body whatever its framing (length or chunked).
pub async fn request(
    addr: &str,
    method: &str,
    path: &str,
    body: &str,
) -> std::io::Result<(u16, String)> {
    let io = |e: hyper::Error| std::io::Error::other(e.to_string());
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(io)?;
    let driver = tokio::spawn(conn);
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, addr)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let resp = sender.send_request(req).await.map_err(io)?;
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.map_err(io)?.to_bytes();
    driver.abort();
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}

/// An HTTP endpoint SNS can deliver to (protocol `http`): records each request's body.
/// With `MessageStructure=json` an `http` subscriber receives the `default` key, the
/// text a person reads (the same as `email`).
pub struct Receiver {
    pub url: String,
    bodies: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> std::io::Result<Receiver> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/sns", listener.local_addr()?);
        let bodies: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = bodies.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let sink = sink.clone();
                let service = service_fn(move |req: Request<Incoming>| {
                    let sink = sink.clone();
                    async move {
                        if let Ok(body) = req.into_body().collect().await {
                            let text = String::from_utf8_lossy(&body.to_bytes()).into_owned();
                            sink.lock().unwrap().push(text);
                        }
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
                    }
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Receiver { url, bodies, task })
    }

    /// Takes the bodies received so far.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.bodies.lock().unwrap())
    }

    pub fn stop(self) {
        self.task.abort();
    }
}
