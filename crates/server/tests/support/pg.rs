//! A private PostgreSQL database per test, on the server `CDVAULT_TEST_DATABASE_URL` names (created here, dropped
//! when the value is dropped), and the settings that point the binary at it.

use sea_orm::ConnectionTrait;

/// Runs `sql` (one or more statements) on the database at `url`.
pub fn execute(url: &str, sql: &str) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let conn = sea_orm::Database::connect(url).await.unwrap();
        conn.execute_unprepared(sql).await.unwrap();
        conn.close().await.unwrap();
    });
}

/// A database of its own on the test PostgreSQL server.
pub struct PgDatabase {
    admin: String,
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    /// `None` when `CDVAULT_TEST_DATABASE_URL` is not set (a failure under `CI=true`, like the other tests).
    pub fn create(prefix: &str) -> Option<Self> {
        let Ok(admin) = std::env::var("CDVAULT_TEST_DATABASE_URL") else {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "CI must run the PostgreSQL variant");
            return None;
        };
        if admin.is_empty() {
            return None;
        }
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let name = format!("{prefix}_{}_{nanos}", std::process::id());
        execute(&admin, &format!("CREATE DATABASE \"{name}\""));
        let url = Self::url_of(&admin, &name);
        Some(Self { admin, name, url })
    }

    /// The URL of database `name` on the server of `admin`.
    pub fn url_of(admin: &str, name: &str) -> String {
        let (base, query) = admin.split_once('?').map_or((admin, None), |(b, q)| (b, Some(q)));
        let cut = base.rfind('/').filter(|&i| i > "postgres://".len()).unwrap_or(base.len());
        format!("{}/{name}{}", &base[..cut], query.map(|q| format!("?{q}")).unwrap_or_default())
    }

    /// The admin URL (to create and drop other databases).
    pub fn admin(&self) -> &str {
        &self.admin
    }

    /// What `cdvault` needs to run on this database: its URL, a fixed test root key, an HS256 issuer.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        settings_for(&self.url)
    }
}

/// The settings of a production-like set-up on the database at `url` (a fixed test root key and JWT secret).
pub fn settings_for(url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("CDVAULT_DATABASE_URL", url.to_owned()),
        ("CDVAULT_ROOT_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".to_owned()),
        ("CDVAULT_JWT_HS256_SECRET", "archive-test-secret-of-at-least-32-bytes".to_owned()),
        ("CDVAULT_JWT_ISSUER", "cdvault-archive-test".to_owned()),
        ("CDVAULT_JWT_AUDIENCE", "cdvault".to_owned()),
    ]
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        execute(&self.admin, &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name));
    }
}
