//! The index's schema migrations, embedded in the binary: each backend's `.sql` files in
//! `migrations/`, applied in version order and recorded with sqlx's checksum, exactly as
//! `sqlx::migrate!` records them (its proc-macro is not built: with both drivers it compiled
//! SQLite and the drivers a second time in every cold build).

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AssertSqlSafe, SqlSafeStr};
use std::borrow::Cow;

/// A migration from its file name (`0001_some_name.sql`: version 1, "some name") and text.
fn embedded((file, sql): (&str, &'static str)) -> Migration {
    let (version, name) = file.split_once('_').expect("a migration is named VERSION_NAME.sql");
    let version = version.parse().expect("a migration's name starts with its version");
    let description = name.trim_end_matches(".sql").replace('_', " ");
    let no_tx = sql.starts_with("-- no-transaction");
    Migration::new(version, Cow::Owned(description), MigrationType::Simple, AssertSqlSafe(sql).into_sql_str(), no_tx)
}

macro_rules! files {
    ($dir:literal: $($file:literal),+ $(,)?) => {
        [$(($file, include_str!(concat!("../migrations/", $dir, "/", $file)))),+]
    };
}

/// The embedded (SQLite) index.
pub fn sqlite() -> Migrator {
    Migrator::with_migrations(
        files!("sqlite":
            "0001_archive.sql",
            "0002_application_entities.sql",
            "0003_patients.sql",
            "0004_study_tokens_in_date_order.sql",
            "0005_shares_downloads.sql",
            "0006_data_requests.sql",
            "0007_audit_heads.sql",
            "0008_member_consent.sql",
            "0009_ae_certificates.sql",
        )
        .into_iter()
        .map(embedded)
        .collect(),
    )
}

/// The cluster's (PostgreSQL) index.
pub fn postgres() -> Migrator {
    Migrator::with_migrations(
        files!("postgres": "0001_schema.sql", "0002_ae_certificates.sql").into_iter().map(embedded).collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// What sqlx reads from the folder (as its macro did at build time) is what is embedded:
    /// every file listed, the same versions, descriptions and checksums, so archives created
    /// before keep validating.
    async fn same_as_the_folder(embedded: Migrator, dir: &str) {
        let folder = Migrator::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(dir)).await.unwrap();
        let summary = |m: &Migrator| -> Vec<(i64, String, Vec<u8>, bool)> {
            m.iter().map(|m| (m.version, m.description.to_string(), m.checksum.to_vec(), m.no_tx)).collect()
        };
        assert_eq!(summary(&embedded), summary(&folder), "migrations/{dir}");
    }

    #[tokio::test]
    async fn every_migration_file_is_embedded_as_sqlx_reads_it() {
        same_as_the_folder(sqlite(), "sqlite").await;
        same_as_the_folder(postgres(), "postgres").await;
    }
}
