//! TLS handshakes over loopback with certificates made at test time.
#![allow(clippy::unwrap_used)] // a panic is how a test fails

use hydra_test_support::Pki;
use hydra_tls::{ClientTls, ServerTls, client_config, server_config, server_name};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Serves one connection: TLS accept, then echo 5 bytes. Returns the
/// client's result.
async fn exchange(server: &ServerTls, client: &ClientTls, host: &str) -> Result<Vec<u8>, String> {
    let acceptor = server_config(server).map_err(|e| e.to_string())?;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        if let Ok(mut tls) = acceptor.accept(tcp).await {
            let mut buf = [0u8; 5];
            if tls.read_exact(&mut buf).await.is_ok() {
                let _ = tls.write_all(&buf).await;
            }
        }
    });
    let connector = client_config(client).map_err(|e| e.to_string())?;
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut tls = connector
        .connect(server_name(client, host).map_err(|e| e.to_string())?, tcp)
        .await
        .map_err(|e| e.to_string())?;
    tls.write_all(b"hello").await.map_err(|e| e.to_string())?;
    let mut back = [0u8; 5];
    tls.read_exact(&mut back).await.map_err(|e| e.to_string())?;
    Ok(back.to_vec())
}

#[tokio::test]
async fn trusted_mismatched_rogue_insecure_and_mutual() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let server = ServerTls {
        cert: pki.server_cert.clone(),
        key: pki.server_key.clone(),
        client_ca: None,
    };
    let trusting = ClientTls {
        ca: Some(pki.ca.clone()),
        ..ClientTls::default()
    };
    assert_eq!(
        exchange(&server, &trusting, "localhost").await.unwrap(),
        b"hello"
    );
    assert_eq!(
        exchange(&server, &trusting, "127.0.0.1").await.unwrap(),
        b"hello"
    );
    // A name the certificate does not cover.
    let err = exchange(&server, &trusting, "agg.example")
        .await
        .unwrap_err();
    assert!(
        err.contains("certificate") || err.contains("Certificate"),
        "{err}"
    );
    // The name override fixes it.
    let renamed = ClientTls {
        server_name: Some("localhost".into()),
        ..trusting.clone()
    };
    assert!(exchange(&server, &renamed, "agg.example").await.is_ok());
    // A certificate from another CA.
    let rogue = ServerTls {
        cert: pki.rogue_cert.clone(),
        key: pki.rogue_key.clone(),
        client_ca: None,
    };
    assert!(exchange(&rogue, &trusting, "localhost").await.is_err());
    // insecure accepts it.
    let insecure = ClientTls {
        insecure: true,
        ..ClientTls::default()
    };
    assert!(exchange(&rogue, &insecure, "localhost").await.is_ok());
    // Client certificates required: without one, refused; with one, fine.
    let mutual = ServerTls {
        client_ca: Some(pki.ca.clone()),
        ..server.clone()
    };
    assert!(exchange(&mutual, &trusting, "localhost").await.is_err());
    let with_cert = ClientTls {
        cert: Some(pki.client_cert.clone()),
        key: Some(pki.client_key.clone()),
        ..trusting
    };
    assert_eq!(
        exchange(&mutual, &with_cert, "localhost").await.unwrap(),
        b"hello"
    );
}

#[test]
fn bad_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate").unwrap();
    let err = server_config(&ServerTls {
        cert: empty.clone(),
        key: empty,
        client_ca: None,
    })
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("empty.pem"), "{err}");
    let missing = dir.path().join("missing.pem");
    let err = client_config(&ClientTls {
        ca: Some(missing),
        ..ClientTls::default()
    })
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("missing.pem"), "{err}");
}
