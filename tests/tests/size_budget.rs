//! Size budgets of the deployable `bootstrap`s.
//!
//! A release build of the three functions from a clean clone takes 3 minutes on this
//! 2-core machine when it is quiet and 8 while others build (x86_64; arm64 as much
//! again, after installing cargo-lambda and zig), and 1.5 to 4 minutes after a change
//! to `shared/` (fat LTO of each binary is most of it): more than `make test` can
//! add. `make test` checks instead, in under a second, what decides the size and the
//! start-up cost of those binaries and what goes wrong by accident (the list):
//!
//! - the functions' dependency graph (`cargo tree`, no build): one TLS stack (rustls
//!   0.23 on ring), no aws-lc (the SDK's default HTTPS client), no legacy rustls 0.21 /
//!   hyper 0.14 / h2 0.3 / http 0.2, no OpenSSL; none of what the functions' start-up
//!   no longer builds: aws-config and its credential providers (STS, SSO, the process
//!   provider), the runtime's EnvFilter and the full regex engine (the smithy HTTP
//!   client still links the system certificate loader; shared::sdk never enables it,
//!   and its unit tests check the trust store);
//! - every function's `main` starts a current-thread tokio runtime;
//! - the release profile: optimised for size, fat LTO, one codegen unit, panics abort,
//!   stripped, no debug information.
//!
//! The bytes themselves are checked by the two ignored tests below, which need the
//! release builds: `make bench` runs them after building (alone: `make build-lambda`,
//! `cargo build --release`, then `cargo test -p menotime-e2e --test size_budget --
//! --ignored`).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use menotime_e2e::workspace_root;

const FUNCTIONS: [&str; 3] = ["scan-gate", "deploy-notifier", "offhours-scaler"];

/// Byte budgets of each `bootstrap`: what was measured when they were set, plus about
/// 5% for growth, and never above the 5 MiB that each deployable arm64 bootstrap must
/// stay under. A change that crosses one should say why in the README's Performance
/// section, next to the new figure.
///
/// Measured 2026-11-26, after the cold-start work and the post-deployment watch
/// (arm64 4,723,744 / 4,496,408 / 4,857,976 bytes; x86_64 5,393,296 / 5,113,264 /
/// 5,471,480).
const ARM64_BUDGET: [(&str, u64); 3] = [
    ("scan-gate", 4_960_000),
    ("deploy-notifier", 4_700_000),
    ("offhours-scaler", 5_100_000),
];
/// The target for every deployable arm64 bootstrap: 5 MiB.
const ARM64_CEILING: u64 = 5 * 1024 * 1024;
const X86_64_BUDGET: [(&str, u64); 3] = [
    ("scan-gate", 5_660_000),
    ("deploy-notifier", 5_350_000),
    ("offhours-scaler", 5_740_000),
];

#[test]
fn arm64_budgets_are_within_the_5_mib_target() {
    for (function, budget) in ARM64_BUDGET {
        assert!(
            budget <= ARM64_CEILING,
            "{function}: budget {budget} is above 5 MiB ({ARM64_CEILING})"
        );
    }
}

/// `cargo tree` over the three functions (normal dependencies, as built for Lambda).
fn cargo_tree(extra: &[&str]) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut args = vec!["tree", "--locked", "--prefix", "none"];
    for f in FUNCTIONS {
        args.extend(["-p", f]);
    }
    args.extend(extra);
    let out = Command::new(cargo)
        .current_dir(workspace_root())
        .args(&args)
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `(name, version)` of every package the functions are built from.
fn packages() -> BTreeSet<(String, String)> {
    cargo_tree(&["-e", "normal,build", "--format", "{p}"])
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let name = words.next()?.to_owned();
            let version = words.next()?.trim_start_matches('v').to_owned();
            Some((name, version))
        })
        .collect()
}

fn versions(pkgs: &BTreeSet<(String, String)>, name: &str) -> Vec<String> {
    pkgs.iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
        .collect()
}

#[test]
fn one_tls_stack_and_no_legacy_http_client() {
    let pkgs = packages();
    assert!(pkgs.len() > 50, "cargo tree listed too little: {pkgs:?}");
    let legacy: Vec<String> = pkgs
        .iter()
        .filter(|(n, v)| {
            (n == "rustls" && !v.starts_with("0.23"))
                || (n == "hyper" && v.starts_with("0."))
                || (n == "h2" && v.starts_with("0.3"))
                || (n == "http" && v.starts_with("0."))
                || (n == "hyper-rustls" && !v.starts_with("0.27"))
                || [
                    "openssl",
                    "openssl-sys",
                    "native-tls",
                    "aws-lc-rs",
                    "aws-lc-sys",
                    "aws-lc-fips-sys",
                    "s2n-tls",
                ]
                .contains(&n.as_str())
        })
        .map(|(n, v)| format!("{n} {v}"))
        .collect();
    assert!(
        legacy.is_empty(),
        "a second TLS stack or a legacy HTTP client is back (an SDK crate's default \
         features, or default-https-client?): {legacy:?}; `cargo tree -i <crate>` says who"
    );
    assert_eq!(versions(&pkgs, "rustls").len(), 1, "one rustls");
    assert_eq!(versions(&pkgs, "hyper").len(), 1, "one hyper");
    assert_eq!(
        versions(&pkgs, "ring").len(),
        1,
        "one crypto provider, ring"
    );
}

/// What the functions' start-up no longer builds must not come back.
#[test]
fn the_start_up_builds_only_what_lambda_uses() {
    let pkgs = packages();
    let regrown: Vec<&(String, String)> = pkgs
        .iter()
        .filter(|(n, _)| {
            [
                // aws-config and its credential providers: the functions read Lambda's
                // environment (shared::sdk).
                "aws-config",
                "aws-sdk-sts",
                "aws-sdk-sso",
                "aws-sdk-ssooidc",
                "aws-sdk-signin",
                // The runtime's own subscriber set-up (EnvFilter and its regexes), and
                // the full regex engine (DEPLOY_TAG_PATTERN uses regex-lite).
                "matchers",
                "regex-automata",
                "regex",
            ]
            .contains(&n.as_str())
        })
        .collect();
    assert!(
        regrown.is_empty(),
        "the functions' dependency tree regrew what cold start left behind: {regrown:?}; \
         `cargo tree -p <function> -i <crate>` says who"
    );
}

/// Lambda sends one invocation at a time: a current-thread runtime starts faster and
/// needs less memory than tokio's multi-thread scheduler with a worker per core.
#[test]
fn every_function_starts_a_current_thread_runtime() {
    for f in FUNCTIONS {
        let path = workspace_root().join(format!("functions/{f}/src/main.rs"));
        let main = std::fs::read_to_string(&path).unwrap();
        assert!(
            main.contains("#[tokio::main(flavor = \"current_thread\")]"),
            "{}: main must start a current-thread runtime",
            path.display()
        );
    }
}

/// `cargo lambda build --bin <function>` and `sam build` run cargo without `-p`, so
/// features are resolved over the workspace's default members. The operator CLI turns
/// on aws-config's SSO and credential-process providers; as a default member it would
/// put them into every Lambda binary. It stays out (`cargo build -p menotime-ops`).
#[test]
fn the_operator_cli_is_not_built_with_the_functions() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(workspace_root())
        .args(["metadata", "--format-version", "1", "--no-deps", "--locked"])
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids = |key: &str| -> Vec<String> {
        meta[key]
            .as_array()
            .unwrap_or_else(|| panic!("cargo metadata has no {key}"))
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    let named = |ids: &[String], name: &str| {
        ids.iter()
            .any(|id| id.contains(&format!("#{name}@")) || id.contains(&format!("/{name}#")))
    };
    let (members, defaults) = (ids("workspace_members"), ids("workspace_default_members"));
    assert!(
        named(&members, "menotime-ops"),
        "the CLI is a member: {members:?}"
    );
    assert!(
        !named(&defaults, "menotime-ops"),
        "the CLI must not be a default member: {defaults:?}"
    );
    for f in FUNCTIONS {
        assert!(named(&defaults, f), "{f} is a default member: {defaults:?}");
    }
}

/// The `[profile.release]` keys of the workspace manifest.
fn release_profile() -> Vec<(String, String)> {
    let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
    let mut in_section = false;
    let mut keys = Vec::new();
    for line in manifest.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.starts_with('[') {
            in_section = line == "[profile.release]";
            continue;
        }
        if let (true, Some((k, v))) = (in_section, line.split_once('=')) {
            keys.push((k.trim().to_owned(), v.trim().trim_matches('"').to_owned()));
        }
    }
    keys
}

#[test]
fn the_release_profile_is_tuned_for_size() {
    let profile = release_profile();
    let get = |key: &str| {
        profile
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    assert!(
        matches!(get("opt-level"), Some("s" | "z")),
        "opt-level: {profile:?}"
    );
    assert!(
        matches!(get("lto"), Some("fat" | "true")),
        "lto: {profile:?}"
    );
    assert_eq!(get("codegen-units"), Some("1"), "{profile:?}");
    // What `cargo lambda build` applies anyway when the profile does not say: the host
    // build make bench measures is then the one Lambda runs.
    assert_eq!(get("panic"), Some("abort"), "{profile:?}");
    assert!(
        matches!(get("strip"), Some("symbols" | "true")),
        "strip: {profile:?}"
    );
    assert!(
        matches!(get("debug"), None | Some("false" | "0" | "none")),
        "debug: {profile:?}"
    );
}

/// The size of `path` if it is an ELF executable for `machine` (62 x86_64, 183 aarch64).
fn elf_size(path: &Path, machine: u16) -> Result<u64, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let ok = bytes.len() > 20
        && bytes[..4] == *b"\x7fELF"
        && u16::from_le_bytes([bytes[18], bytes[19]]) == machine;
    if ok {
        Ok(bytes.len() as u64)
    } else {
        Err(format!(
            "{}: not an ELF executable for machine {machine}",
            path.display()
        ))
    }
}

/// Checks each binary under `dir` (`{}` = the function) against its budget.
fn check_sizes(budgets: [(&str, u64); 3], machine: u16, dir: &str) {
    let root = workspace_root();
    let mut over = Vec::new();
    for (function, budget) in budgets {
        let path = root.join(dir.replace("{}", function));
        match elf_size(&path, machine) {
            Ok(size) => {
                println!("{}: {size} bytes (budget {budget})", path.display());
                if size > budget {
                    over.push(format!("{}: {size} bytes, budget {budget}", path.display()));
                }
            }
            Err(e) => over.push(e),
        }
    }
    assert!(over.is_empty(), "over budget or missing: {over:#?}");
}

/// The deployable packages, from `make build-lambda` (`make bench` builds them first).
#[test]
#[ignore = "needs `make build-lambda`; make bench runs it"]
fn arm64_bootstraps_stay_within_budget() {
    check_sizes(ARM64_BUDGET, 183, "target/lambda/{}/bootstrap");
}

/// The host release binaries, from `cargo build --release` (`make bench` builds them).
#[test]
#[ignore = "needs `cargo build --release`; make bench runs it"]
fn x86_64_release_binaries_stay_within_budget() {
    check_sizes(X86_64_BUDGET, 62, "target/release/{}");
}
