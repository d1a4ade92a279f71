//! `cloudfilm`: the archive's one binary. Its commands live in this library so that they
//! compile while the server crate is still being optimized; `main.rs` only calls [`run`].

mod admin;
mod audit;
mod backup;
mod import;
mod migrate;
mod self_signed;
mod serve;
mod verify;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "cloudfilm",
    version,
    about = "A privacy-first archive of medical images that patients reach from their phone"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
pub struct Global {
    /// The data directory (key ring, index, encrypted blobs, audit heads).
    #[arg(long, global = true, env = "CLOUDFILM_DATA")]
    data: Option<PathBuf>,
    /// The index: `sqlite://PATH` (default `sqlite://DATA/index.db`) or
    /// `postgres://[user@]host[:port]/dbname`, shared by the nodes of one archive.
    #[arg(long, global = true, env = "CLOUDFILM_DATABASE")]
    database: Option<String>,
    /// Where the encrypted blobs are: `file://PATH` or
    /// `s3://BUCKET?endpoint=http://127.0.0.1:3900&region=garage` (credentials from
    /// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) [default: file://DATA/blobs].
    #[arg(long, global = true, env = "CLOUDFILM_BLOBS", value_name = "URL")]
    blobs: Option<String>,
    /// The key ring (master keys, blind-index and signing keys); every node of one archive is
    /// given the same one [default: DATA/keyring.json].
    #[arg(long, global = true, env = "CLOUDFILM_KEYS", value_name = "PATH")]
    keys: Option<PathBuf>,
    /// A TOML configuration file (see `cloudfilm config`).
    #[arg(long, global = true, env = "CLOUDFILM_CONFIG")]
    config: Option<PathBuf>,
    /// How the log on standard error is written: `text` for people, `json` (one object a
    /// line, with the request id of what is being served) for log collectors.
    #[arg(long, global = true, env = "CLOUDFILM_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// The log on standard error, never personal data in either form. `CLOUDFILM_LOG` sets the
/// levels (`info,cloudfilm_server=debug`: a level, then targets with theirs).
fn init_log(format: LogFormat) {
    use tracing_subscriber::prelude::*;
    const DEFAULT: &str = "info,sqlx=warn,object_store=warn";
    let levels: tracing_subscriber::filter::Targets = std::env::var("CLOUDFILM_LOG")
        .ok()
        .and_then(|spec| spec.parse().ok())
        .unwrap_or_else(|| DEFAULT.parse().expect("the default levels parse"));
    let log = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    match format {
        LogFormat::Text => tracing_subscriber::registry().with(log.with_filter(levels)).init(),
        LogFormat::Json => tracing_subscriber::registry()
            .with(log.json().with_current_span(true).with_span_list(false).with_filter(levels))
            .init(),
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(serve::ServeArgs),
    /// Run the server with a demo organization, API key and generated sample studies.
    Demo(serve::DemoArgs),
    /// Manage organizations.
    #[command(subcommand)]
    Org(admin::OrgCommand),
    /// Manage organization API keys.
    #[command(subcommand)]
    Apikey(admin::ApiKeyCommand),
    /// Import every DICOM file under a directory for an organization.
    Import(import::ImportArgs),
    /// The audit chain.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Back up the archive while it runs (`--to DIR`), or check a backup (`verify DIR`).
    Backup(backup::BackupArgs),
    /// Restore a backup into an empty data directory.
    Restore(backup::RestoreArgs),
    /// Copy an embedded archive (SQLite + blob directory) to PostgreSQL and an object store.
    Migrate(migrate::MigrateArgs),
    /// Print the effective configuration (defaults, file, environment) as TOML.
    Config,
    /// Check a downloaded exam package: its manifest's signature and every file's SHA-256.
    VerifyManifest(verify::VerifyArgs),
}

impl Global {
    /// The configuration: defaults, then the file, then the environment, then `--data`,
    /// `--blobs` and `--keys`; the blob store and key ring locations resolved.
    pub fn config(&self) -> anyhow::Result<cloudfilm_server::Config> {
        let mut config = cloudfilm_server::Config::load(self.config.as_deref())?;
        if let Some(data) = &self.data {
            config.data = data.clone();
        }
        if let Some(database) = &self.database {
            config.database = database.clone();
        }
        if let Some(blobs) = &self.blobs {
            config.blobs = blobs.clone();
        }
        if let Some(keys) = &self.keys {
            config.keys = keys.clone();
        }
        config.check_blobs()?;
        config.blobs = config.blobs_url();
        config.keys = config.keys_path();
        Ok(config)
    }
}

/// Who runs a CLI command, for the audit chain.
pub fn cli_actor() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "operator".into());
    let user: String = user.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').take(32).collect();
    format!("cli:{user}")
}

/// Parses the command line and runs the command.
pub fn run() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_log(cli.global.log_format);
    cloudfilm_store::tls::install_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::serve(&cli.global, args).await,
            Command::Demo(args) => serve::demo(&cli.global, args).await,
            Command::Org(cmd) => admin::org(&cli.global, cmd).await,
            Command::Apikey(cmd) => admin::apikey(&cli.global, cmd).await,
            Command::Import(args) => import::run(&cli.global, args).await,
            Command::Audit(cmd) => audit::run(&cli.global, cmd).await,
            Command::Backup(args) => backup::backup(&cli.global, args).await,
            Command::Restore(args) => backup::restore(&cli.global, args).await,
            Command::Migrate(args) => migrate::run(&cli.global, args).await,
            Command::VerifyManifest(args) => verify::run(args),
            Command::Config => {
                print!("{}", cli.global.config()?.to_toml());
                Ok(std::process::ExitCode::SUCCESS)
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
