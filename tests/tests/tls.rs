//! The functions' TLS path end to end: scan-gate against moto behind a TLS front whose
//! certificate comes from a private test CA. Trusted through `SSL_CERT_FILE`, the
//! deployment goes through; without it the CA is unknown (only AWS's roots are
//! compiled in) and nothing is changed; an unreadable `SSL_CERT_FILE` stops the
//! function at start-up with one line naming it.
#![cfg(test)]

use menotime_e2e::tls::TlsFront;
use menotime_e2e::*;

#[tokio::test]
async fn a_private_ca_is_trusted_through_ssl_cert_file_and_only_then() {
    let moto = Moto::start().await;
    let seed = moto.seed().await;
    let aws = Aws::new(&moto).await;
    let prod = seed.env("prod").clone();
    let dir = std::env::temp_dir().join(format!("menotime-tls-{}", std::process::id()));
    let front = TlsFront::start(&moto.endpoint, &dir).await;
    let bin = build_binary("scan-gate", "scan-gate");
    let via_tls = with_var(
        scan_gate_env(&moto, &seed, "prod"),
        "AWS_ENDPOINT_URL",
        &front.url,
    );
    let before = aws.service(&prod).await.task_definition;

    // Not trusted: AWS's roots do not include the test CA. The call fails, nothing moves.
    let mut gate = Function::start(&bin, "menotime-prod-scan-gate", &via_tls).await;
    let (error_type, message) = gate.invoke(&event("scan-clean-v1.2.4.json")).await.err();
    gate.stop().await;
    assert_eq!(error_type, "AwsTransientError", "{message}");
    assert_eq!(aws.service(&prod).await.task_definition, before);

    // Trusted through SSL_CERT_FILE: the same event deploys, over TLS.
    let trusted = with_var(
        via_tls.clone(),
        "SSL_CERT_FILE",
        front.ca_file.to_str().unwrap(),
    );
    let mut gate = Function::start(&bin, "menotime-prod-scan-gate", &trusted).await;
    let out = gate.invoke(&event("scan-clean-v1.2.4.json")).await.ok();
    gate.stop().await;
    assert_eq!(out["outcome"], "deployed", "{out}");
    assert_ne!(aws.service(&prod).await.task_definition, before);

    // A file that is not PEM stops the start with one line naming the variable.
    let bad = dir.join("not-a-ca.pem");
    std::fs::write(&bad, "not a certificate").unwrap();
    let (code, output) = runtime::run_to_exit(
        &bin,
        &with_var(trusted, "SSL_CERT_FILE", bad.to_str().unwrap()),
    )
    .await;
    assert_eq!(code, Some(2), "{output}");
    assert!(output.contains("SSL_CERT_FILE"), "{output}");
    assert_eq!(output.trim().lines().count(), 1, "{output}");

    front.stop();
    moto.stop().await;
    std::fs::remove_dir_all(&dir).ok();
}
