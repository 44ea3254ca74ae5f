//! The database of one test: created fresh, shared with further replicas, removed when dropped.

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

use crate::Engine;

/// A database of one test, removed when dropped.
pub struct TestDb {
    pub engine: Engine,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    /// The PostgreSQL admin URL and database name, to drop it.
    pg: Option<PostgresDb>,
}

struct PostgresDb {
    admin_url: String,
    name: String,
}

impl TestDb {
    pub async fn create(engine: Engine) -> Self {
        match engine {
            Engine::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("cdvault.db").display());
                Self { engine, url, _dir: Some(dir), pg: None }
            }
            Engine::Postgres => {
                let admin_url = Engine::postgres_admin_url().expect("CDVAULT_TEST_DATABASE_URL");
                let name = format!("cdvault_test_{}", uuid::Uuid::now_v7().simple());
                let conn = sea_orm::Database::connect(admin_url.as_str()).await.unwrap();
                conn.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await.unwrap();
                conn.close().await.unwrap();
                let url = replace_db_name(&admin_url, &name);
                Self { engine, url, _dir: None, pg: Some(PostgresDb { admin_url, name }) }
            }
        }
    }

    /// Another handle on the same database that does not remove it when dropped (for a second replica).
    pub fn share(&self) -> Self {
        Self { engine: self.engine, url: self.url.clone(), _dir: None, pg: None }
    }

    /// A handle on the PostgreSQL database at `url`, made and removed by someone else (a private cluster).
    pub fn postgres_at(url: &str) -> Self {
        Self { engine: Engine::Postgres, url: url.to_owned(), _dir: None, pg: None }
    }

    /// A handle on nothing: what a stopped [`crate::TestApp`] keeps once its database was handed back.
    pub(crate) fn detached(engine: Engine) -> Self {
        Self { engine, url: String::new(), _dir: None, pg: None }
    }

    /// A plain connection for reading and editing raw rows.
    pub async fn raw(&self) -> DatabaseConnection {
        sea_orm::Database::connect(self.url.as_str()).await.unwrap()
    }

    /// A statement with `?` placeholders for this test's engine (`cdvault_storage::statement`).
    pub fn statement(&self, sql: &str, values: Vec<sea_orm::Value>) -> Statement {
        let backend = match self.engine {
            Engine::Sqlite => sea_orm::DbBackend::Sqlite,
            Engine::Postgres => sea_orm::DbBackend::Postgres,
        };
        cdvault_storage::statement(backend, sql, values)
    }
}

fn replace_db_name(admin_url: &str, name: &str) -> String {
    let (base, query) = admin_url.split_once('?').map_or((admin_url, None), |(b, q)| (b, Some(q)));
    let cut = base.rfind('/').filter(|&i| i > "postgres://".len()).unwrap_or(base.len());
    let mut url = format!("{}/{name}", &base[..cut]);
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(PostgresDb { admin_url, name }) = self.pg.take() {
            // Drop cannot be async: drop the database from a thread of its own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                rt.block_on(async {
                    if let Ok(conn) = sea_orm::Database::connect(admin_url.as_str()).await {
                        let _ =
                            conn.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await;
                        let _ = conn.close().await;
                    }
                });
            })
            .join();
        }
    }
}

/// A handle on the database at `url` with the audit MAC key opened by `root_key` (base64), as the CLI opens it.
pub async fn keyed_db(url: &str, root_key: &str) -> cdvault_storage::Database {
    let db = cdvault_storage::Database::connect(url).await.expect("the test database opens");
    let root = cdvault_domain::crypto::RootKey::from_base64(root_key).expect("the test root key parses");
    let key = cdvault_storage::audit::open_key(&db, &root).await.expect("the audit MAC key opens");
    db.with_audit_key(key)
}
