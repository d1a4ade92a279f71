//! Copies an embedded index (SQLite) into PostgreSQL, table by table in the order of their
//! references, each row as it is (ids, sealed values, audit chain and heads unchanged). Every
//! batch is one transaction and every row `ON CONFLICT DO NOTHING`, so a copy killed halfway
//! is resumed by running it again. Rate-limit events (an hour's worth of counters) are not
//! copied.

use crate::error::{Result, StoreError};
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use sqlx::{AssertSqlSafe, QueryBuilder, Row};

/// The tables, parents before children.
pub const TABLES: &[&str] = &[
    "organizations",
    "api_keys",
    "application_entities",
    "studies",
    "study_tokens",
    "series",
    "instances",
    "accounts",
    "otp_codes",
    "sessions",
    "consent_events",
    "members",
    "reports",
    "shares",
    "share_sessions",
    "downloads",
    "transfer_log",
    "access_log",
    "data_requests",
    "audit_log",
    "audit_heads",
];

const BATCH: i64 = 500;

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Bool,
    Int,
    Text,
    Bytes,
}

struct Column {
    name: String,
    kind: Kind,
}

/// The target's columns of a table, with the type each value is read and bound as.
async fn columns(target: &PgPool, table: &str) -> Result<Vec<Column>> {
    let rows = sqlx::query(
        "SELECT column_name, data_type FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(target)
    .await?;
    rows.iter()
        .map(|r| {
            let name: String = r.try_get("column_name")?;
            let kind = match r.try_get::<String, _>("data_type")?.as_str() {
                "boolean" => Kind::Bool,
                "bigint" | "integer" => Kind::Int,
                "text" => Kind::Text,
                "bytea" => Kind::Bytes,
                other => return Err(StoreError::Database(format!("{table}.{name}: no copy for type {other}"))),
            };
            Ok(Column { name, kind })
        })
        .collect()
}

/// The key a table's rows are read in order by.
fn order_by(table: &str) -> &'static str {
    match table {
        "study_tokens" => "kind, token, org_id, study_date, study_time, study_pk",
        "sessions" | "share_sessions" => "token_hash",
        "audit_log" => "seq",
        "audit_heads" => "tree_size",
        _ => "rowid",
    }
}

/// Rows of a table in the source, and copied so far to the target.
pub async fn counts(source: &SqlitePool, target: &PgPool, table: &str) -> Result<(i64, i64)> {
    let sql = format!("SELECT count(*) FROM {table}");
    let from: i64 = sqlx::query_scalar(AssertSqlSafe(sql.clone())).fetch_one(source).await?;
    let to: i64 = sqlx::query_scalar(AssertSqlSafe(sql)).fetch_one(target).await?;
    Ok((from, to))
}

/// Copies one table; `progress` hears how many rows went over so far.
pub async fn copy_table(
    source: &SqlitePool,
    target: &PgPool,
    table: &str,
    mut progress: impl FnMut(u64),
) -> Result<u64> {
    let columns = columns(target, table).await?;
    let list = columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ");
    let mut offset = 0i64;
    let mut copied = 0u64;
    loop {
        let select = format!("SELECT {list} FROM {table} ORDER BY {} LIMIT $1 OFFSET $2", order_by(table));
        let rows = sqlx::query(AssertSqlSafe(select)).bind(BATCH).bind(offset).fetch_all(source).await?;
        if rows.is_empty() {
            break;
        }
        let mut insert = QueryBuilder::<sqlx::Postgres>::new(format!("INSERT INTO {table} ({list}) "));
        let mut failed = None;
        insert.push_values(&rows, |mut values, row| {
            for (i, column) in columns.iter().enumerate() {
                let bound = match column.kind {
                    Kind::Bool => row.try_get::<Option<bool>, _>(i).map(|v| {
                        values.push_bind(v);
                    }),
                    Kind::Int => row.try_get::<Option<i64>, _>(i).map(|v| {
                        values.push_bind(v);
                    }),
                    Kind::Text => row.try_get::<Option<String>, _>(i).map(|v| {
                        values.push_bind(v);
                    }),
                    Kind::Bytes => row.try_get::<Option<Vec<u8>>, _>(i).map(|v| {
                        values.push_bind(v);
                    }),
                };
                if let Err(e) = bound {
                    failed.get_or_insert(e);
                }
            }
        });
        if let Some(e) = failed {
            return Err(e.into());
        }
        insert.push(" ON CONFLICT DO NOTHING");
        insert.build().execute(target).await?;
        offset += rows.len() as i64;
        copied += rows.len() as u64;
        progress(copied);
    }
    // Serial columns continue after the copied ids.
    for column in columns.iter().filter(|c| c.kind == Kind::Int) {
        let sequence: Option<String> = sqlx::query_scalar("SELECT pg_get_serial_sequence($1, $2)")
            .bind(table)
            .bind(&column.name)
            .fetch_one(target)
            .await?;
        if let Some(sequence) = sequence {
            let reset =
                format!("SELECT setval($1, GREATEST((SELECT COALESCE(MAX({}), 0) FROM {table}), 1))", column.name);
            sqlx::query(AssertSqlSafe(reset)).bind(sequence).execute(target).await?;
        }
    }
    Ok(copied)
}

/// Copies one object's ciphertext as it is (the key ring travels with `--keys`), unless the
/// target has it already (a resumed copy); true when it was copied now.
pub async fn copy_blob(from: &dyn crate::blobs::BlobStore, to: &dyn crate::blobs::BlobStore, id: &str) -> Result<bool> {
    if to.read(id, 0..1).await.is_ok() {
        return Ok(false);
    }
    let whole = from.read(id, 0..u64::MAX).await?;
    let staged = to.staging().path(id);
    let bytes = whole.bytes.to_vec();
    tokio::task::spawn_blocking(move || -> Result<()> {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).open(&staged)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        Ok(())
    })
    .await
    .map_err(|e| StoreError::Database(e.to_string()))??;
    to.put(&[id.to_owned()]).await?;
    to.settle(id).await?;
    Ok(true)
}

/// The embedded index to copy from, opened read-only.
pub async fn open_source(path: &str) -> Result<SqlitePool> {
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path).read_only(true);
    Ok(SqlitePool::connect_with(options).await?)
}

/// The PostgreSQL index to copy into (its schema made by opening it as a repository first).
pub async fn open_target(url: &str) -> Result<PgPool> {
    PgPool::connect_with(crate::postgres::options(url)?).await.map_err(|e| StoreError::Unavailable(e.to_string()))
}

/// Every stored instance's blob id and content hash.
pub async fn blobs_of(source: &SqlitePool) -> Result<Vec<(String, String)>> {
    Ok(sqlx::query_as("SELECT blob_id, sha256 FROM instances ORDER BY pk").fetch_all(source).await?)
}

/// The signed audit heads the embedded index keeps.
pub async fn kept_heads(source: &SqlitePool) -> Result<Vec<cloudfilm_audit::SignedHead>> {
    let rows: Vec<String> =
        sqlx::query_scalar("SELECT head FROM audit_heads ORDER BY tree_size").fetch_all(source).await?;
    rows.iter().map(|r| serde_json::from_str(r).map_err(|_| StoreError::Integrity)).collect()
}
