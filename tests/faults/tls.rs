//! The database connection over TLS with `sslmode=verify-full`: a private cluster serving a certificate of a CA made
//! here (with the openssl CLI), which cdvault trusts through `sslrootcert`, and a CA it must not trust.

use std::path::{Path, PathBuf};
use std::process::Command;

use cdvault_tests::pg_cluster::{PgCluster, ServerTls};
use cdvault_tests::{ALL_SCOPES, TestApp, TestDb};
use sea_orm::ConnectionTrait;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").current_dir(dir).args(args).output().expect("openssl runs");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A self-signed CA named `name` in `dir`: its certificate (returned) and key (`<name>.key`).
fn make_ca(dir: &Path, name: &str) -> PathBuf {
    let (key, cert) = (format!("{name}.key"), format!("{name}.pem"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &cert,
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    dir.join(cert)
}

/// A server certificate for 127.0.0.1 and localhost, signed by the CA `ca` made by [`make_ca`].
fn server_cert(dir: &Path, ca: &str) -> ServerTls {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    );
    ServerTls { cert: dir.join("server.crt"), key: dir.join("server.key") }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdvault_connects_with_sslmode_verify_full_and_refuses_a_database_whose_certificate_its_ca_did_not_sign() {
    let test = "cdvault_connects_with_sslmode_verify_full_and_refuses_a_database_whose_certificate_its_ca_did_not_sign";
    let dir = tempfile::tempdir().unwrap();
    let ca = make_ca(dir.path(), "vault-ca");
    let stranger = make_ca(dir.path(), "stranger-ca");
    let tls = server_cert(dir.path(), "vault-ca");
    let Some(cluster) = PgCluster::start_with(test, Some(&tls)) else { return };
    let url = cluster.create_database("cdvault").await;

    let verified = format!("{url}?sslmode=verify-full&sslrootcert={}", ca.display());
    let app = TestApp::builder_on(TestDb::postgres_at(&verified))
        .seller_with_password("tlsshop", "Tls-Passw0rd!")
        .spawn()
        .await;
    let issued = app.issue_password(&app.token(ALL_SCOPES, &["*"]), "tlsshop").await;
    assert_eq!(issued.data()["issueApiCredential"]["password"], "Tls-Passw0rd!");
    // Every connection to the vault's database is encrypted, the server's included.
    let conn = sea_orm::Database::connect(verified.as_str()).await.unwrap();
    let plain = conn
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT count(*) FILTER (WHERE NOT s.ssl) AS plain, count(*) AS total FROM pg_stat_ssl s \
             JOIN pg_stat_activity a USING (pid) WHERE a.datname = 'cdvault'",
        ))
        .await
        .unwrap()
        .unwrap();
    let (plain, total): (i64, i64) = (plain.try_get("", "plain").unwrap(), plain.try_get("", "total").unwrap());
    assert_eq!(plain, 0, "a connection without TLS");
    assert!(total >= 2, "the server's connections and this one: {total}");
    conn.close().await.unwrap();

    // The same server, but cdvault trusts another CA: it refuses to start rather than talk to an unproven database.
    let untrusted = format!("{url}?sslmode=verify-full&sslrootcert={}", stranger.display());
    let refused = TestApp::builder_on(TestDb::postgres_at(&untrusted)).try_spawn().await;
    let error = format!("{:#}", refused.err().expect("cdvault does not start on a database it cannot verify"));
    assert!(error.to_lowercase().contains("certificate"), "{error}");
}
