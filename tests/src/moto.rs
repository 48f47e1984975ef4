//! moto's server as the local AWS: started on a free loopback port, seeded with the
//! three environments, stopped when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::process::{Child, Command};

use crate::workspace_root;

pub const REGION: &str = "us-west-1";
pub const ACCOUNT: &str = "123456789012";

/// A running `moto_server` process.
pub struct Moto {
    child: Child,
    pub endpoint: String,
    log: PathBuf,
}

fn venv_bin(name: &str) -> PathBuf {
    workspace_root().join(".venv/bin").join(name)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

impl Moto {
    /// Starts moto on a free loopback port and waits until it answers. Every ECS
    /// service it creates reports its desired count running (`MOTO_ECS_SERVICE_RUNNING`),
    /// so deployments are COMPLETED unless a test makes one busy.
    pub async fn start() -> Moto {
        Self::start_with_running(2).await
    }

    /// Like [`Moto::start`], with `running` tasks reported per service: a service whose
    /// desired count is higher keeps its deployment IN_PROGRESS.
    pub async fn start_with_running(running: u32) -> Moto {
        let server = venv_bin("moto_server");
        assert!(
            server.exists(),
            "{} is missing: run `make venv` (make test does it) to install moto's server",
            server.display()
        );
        let mut last_err = String::new();
        for _ in 0..5 {
            let port = free_port();
            let log = std::env::temp_dir().join(format!("menotime-moto-{port}.log"));
            let log_file = std::fs::File::create(&log).expect("moto log file");
            let child = Command::new(&server)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("MOTO_ECS_SERVICE_RUNNING", running.to_string())
                .env("AWS_DEFAULT_REGION", REGION)
                .stdin(Stdio::null())
                .stdout(Stdio::from(log_file.try_clone().unwrap()))
                .stderr(Stdio::from(log_file))
                .kill_on_drop(true)
                .spawn()
                .expect("start moto_server");
            let mut moto = Moto {
                child,
                endpoint: format!("http://127.0.0.1:{port}"),
                log,
            };
            match moto.wait_ready(Duration::from_secs(30)).await {
                Ok(()) => return moto,
                Err(e) => last_err = e,
            }
        }
        panic!("moto_server did not start: {last_err}");
    }

    async fn wait_ready(&mut self, limit: Duration) -> Result<(), String> {
        let start = Instant::now();
        let addr = self.endpoint.trim_start_matches("http://").to_owned();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exited with {status}; see {}", self.log.display()));
            }
            if let Ok(resp) = crate::http::request(&addr, "GET", "/moto-api/data.json", "").await {
                if resp.0 == 200 {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!(
            "no answer within {limit:?}; see {}",
            self.log.display()
        ))
    }

    /// `AWS_*` variables that point an SDK (or a function) at this server.
    pub fn aws_env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_REGION", REGION),
            ("AWS_DEFAULT_REGION", REGION),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_SESSION_TOKEN", "testing"),
            // Never read a developer's real profile or IMDS.
            ("AWS_CONFIG_FILE", "/dev/null"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// An SDK configuration for this server.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(menotime_shared::sdk::http_client(None).expect("the HTTP client"))
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new(REGION))
            .credentials_provider(aws_sdk_ecs::config::Credentials::new(
                "testing", "testing", None, None, "moto",
            ))
            .load()
            .await
    }

    /// Seeds the three environments with `scripts/seed_moto.py`.
    pub async fn seed(&self) -> Seed {
        let root = workspace_root();
        let out = Command::new(venv_bin("python"))
            .arg(root.join("scripts/seed_moto.py"))
            .args(["--endpoint", &self.endpoint])
            .output()
            .await
            .expect("run scripts/seed_moto.py");
        assert!(
            out.status.success(),
            "seeding moto failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("seed output is JSON")
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
        let _ = std::fs::remove_file(&self.log);
    }
}

/// What `scripts/seed_moto.py` created.
#[derive(Clone, Debug, Deserialize)]
pub struct Seed {
    pub region: String,
    pub account: String,
    pub repository: String,
    pub images: std::collections::BTreeMap<String, SeedImage>,
    pub environments: std::collections::BTreeMap<String, SeedEnv>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct SeedImage {
    pub digest: String,
    pub tags: Vec<String>,
    pub counts: serde_json::Value,
}

#[derive(Clone, Debug, Deserialize)]
pub struct SeedEnv {
    pub cluster: String,
    pub service: String,
    pub service_arn: String,
    pub task_definition: String,
    pub family: String,
    pub container: String,
    pub notify_topic_arn: String,
    pub notify_queue_url: String,
    pub oncall_topic_arn: String,
    pub oncall_queue_url: String,
}

impl Seed {
    pub fn env(&self, name: &str) -> &SeedEnv {
        &self.environments[name]
    }

    pub fn digest(&self, image: &str) -> &str {
        &self.images[image].digest
    }
}
