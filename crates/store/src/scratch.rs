//! A PostgreSQL database made for one test and dropped after it, on the server named by
//! `CLOUDFILM_TEST_POSTGRES` (default: the local server, trust auth). For tests only.

use sqlx::{ConnectOptions, Executor, PgConnection};

/// The server tests create their databases on.
pub fn server_url() -> String {
    std::env::var("CLOUDFILM_TEST_POSTGRES").unwrap_or_else(|_| "postgres://127.0.0.1:5432/postgres".into())
}

/// A database that exists for as long as this value does.
pub struct ScratchDatabase {
    pub url: String,
    name: String,
}

impl ScratchDatabase {
    pub async fn create() -> ScratchDatabase {
        let name = format!("cloudfilm_test_{}", &cloudfilm_crypto::random::hex_id()[..16]);
        let mut conn = connect().await.expect("the test PostgreSQL server answers");
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .expect("a test database can be created");
        // The server URL names a database (`.../postgres`): the scratch one replaces it.
        let base = server_url();
        let url = format!("{}/{name}", &base[..base.rfind('/').expect("a URL with a database")]);
        ScratchDatabase { url, name }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Dropped from async tests: on a thread of its own, with its own runtime.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            runtime.block_on(async {
                if let Ok(mut conn) = connect().await {
                    let _ =
                        conn.execute(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).await;
                }
            });
        })
        .join();
    }
}

async fn connect() -> Result<PgConnection, sqlx::Error> {
    let options =
        crate::postgres::options(&server_url()).map_err(|e| sqlx::Error::Configuration(e.to_string().into()))?;
    options.connect().await
}
