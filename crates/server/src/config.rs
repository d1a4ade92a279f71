//! Configuration: built-in defaults, then an optional TOML file, then environment variables
//! `CLOUDFILM_<SECTION>__<KEY>` (e.g. `CLOUDFILM_LIMITS__MAX_INSTANCE_BYTES=1073741824`), then
//! command-line flags.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The data directory: key ring, index database, blobs, audit heads (this node's local
    /// state; the S3 spool).
    pub data: PathBuf,
    /// The index: `sqlite://PATH` or `postgres://[user@]host[:port]/dbname` (also `--database`,
    /// `CLOUDFILM_DATABASE`); empty means `sqlite://DATA/index.db`.
    pub database: String,
    /// Where the encrypted blobs are: `file://PATH` or `s3://BUCKET?endpoint=URL&region=R`
    /// (credentials from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`); `file://DATA/blobs`
    /// when empty (also `--blobs`, `CLOUDFILM_BLOBS`).
    pub blobs: String,
    /// The key ring file; `DATA/keyring.json` when empty (also `--keys`, `CLOUDFILM_KEYS`).
    pub keys: PathBuf,
    pub http: HttpConfig,
    pub dimse: DimseConfig,
    pub limits: Limits,
    pub patients: PatientConfig,
}

/// The patient portal: text messages, one-time codes, sessions.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PatientConfig {
    /// Where text messages go: `none` (default: patient sign-in unavailable), `log` (kind and
    /// masked phone only), `file:PATH` or `webhook:URL` (also `--sms`).
    pub sms: String,
    /// Secret that signs webhook bodies (HMAC-SHA-256); derived from the master key when empty.
    pub sms_webhook_secret: String,
    /// Mark cookies `Secure` (set it when the portal is served over TLS).
    pub secure_cookies: bool,
    /// Manual match attempts per account (and per client address) per hour.
    pub match_attempts_per_hour: u32,
    pub otp: cloudfilm_core::otp::OtpPolicy,
    pub session: cloudfilm_core::session::SessionPolicy,
    /// Shares behind a password: validity, password length, wrong-password limits.
    pub share: cloudfilm_core::share::SharePolicy,
    /// Download links behind a security code: lifetime, wrong-code limits.
    pub download: cloudfilm_core::download::DownloadPolicy,
    /// Working days for the due dates of data-subject requests (public holidays, worked
    /// weekend days).
    pub calendar: cloudfilm_core::rights::WorkCalendar,
}

impl Default for PatientConfig {
    fn default() -> Self {
        PatientConfig {
            sms: "none".into(),
            sms_webhook_secret: String::new(),
            secure_cookies: false,
            match_attempts_per_hour: 10,
            otp: Default::default(),
            session: Default::default(),
            share: Default::default(),
            download: Default::default(),
            calendar: Default::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DimseConfig {
    /// Whether the DIMSE listener runs.
    pub enabled: bool,
    /// Address the DIMSE listener listens on.
    pub listen: String,
    /// The archive's AE title (the called AE title peers must use).
    pub ae_title: String,
    /// Associations served at once; more wait for a free place.
    pub max_associations: usize,
    /// Largest PDU the archive accepts (announced in the association).
    pub max_pdu_length: u32,
    /// Seconds a new connection has to request an association (ARTIM).
    pub artim_timeout_secs: u64,
    /// Seconds to wait for the next message of an association, or a response.
    pub dimse_timeout_secs: u64,
    /// Seconds for one network read or write, and for connecting to a C-MOVE destination.
    pub network_timeout_secs: u64,
    /// Address of a second DIMSE listener speaking TLS (PS3.15 B.1/B.9; the registered port
    /// is 2762); empty: none (also `--dimse-tls`).
    pub tls_listen: String,
    /// Its PEM certificate chain and key; the HTTP ones when empty (also `--dimse-tls-cert`,
    /// `--dimse-tls-key`).
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Address the HTTP server listens on.
    pub listen: String,
    /// The public base URL used in RetrieveURL values; derived from the Host header when empty.
    pub public_url: String,
    /// Origins (`https://viewer.example.org`, exact) whose pages may call DICOMweb from the
    /// browser (CORS, credentials included). Empty: no CORS headers at all. Environment:
    /// comma-separated.
    pub cors_origins: Vec<String>,
    /// Whether those origins' pages may send the user's credentials (HTTP authentication,
    /// cookies) with their calls (`Access-Control-Allow-Credentials`).
    pub cors_credentials: bool,
    /// A built OHIF viewer (`dist/` of the npm package `@ohif/app`) to serve under `/ohif/`,
    /// configured for this archive's DICOMweb (also `--ohif`). Empty: not served.
    pub ohif_dir: PathBuf,
    /// Seconds a connection may take to send a request's headers, counted from when it opens
    /// or its previous response ended: also how long an idle keep-alive connection stays.
    pub header_timeout_secs: u64,
    /// Seconds any request body may take; more for every `body_min_bytes_per_sec` received.
    pub body_grace_secs: u64,
    /// The slowest a body may come once its grace has passed (bytes per second, on average).
    pub body_min_bytes_per_sec: u64,
    /// Seconds a response may wait for the client to read any of it before the connection closes.
    pub write_timeout_secs: u64,
    /// HTTP connections at once, in all (lowered to what the open-file limit allows).
    pub max_connections: usize,
    /// HTTP connections at once from one client address.
    pub max_connections_per_address: usize,
    /// Address of the Prometheus listener (`GET /metrics`); empty: no metrics (also `--metrics`).
    pub metrics_listen: String,
    /// Reverse proxies (CIDR, or one address) whose `Forwarded` / `X-Forwarded-For` /
    /// `X-Forwarded-Proto` headers are believed (also `--trusted-proxy`). Empty: none, the
    /// client is the socket's peer. Environment: comma-separated.
    pub trusted_proxies: Vec<String>,
    /// PEM certificate chain (leaf first) for HTTPS on `listen` (also `--tls-cert`); with
    /// `tls_key`, plain HTTP is no longer served there. Reloaded on SIGHUP.
    pub tls_cert: PathBuf,
    /// PEM private key of `tls_cert` (also `--tls-key`).
    pub tls_key: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest STOW-RS request body.
    pub max_request_bytes: u64,
    /// Largest single instance.
    pub max_instance_bytes: u64,
    /// Most parts in one STOW-RS request.
    pub max_parts: usize,
    /// Bytes at the start of each instance kept in memory for parsing its header; anything
    /// beyond is read back from its encrypted spool.
    pub inline_parse_bytes: usize,
    /// Frames decoded at once for rendering (bounds memory).
    pub max_concurrent_renders: usize,
    /// Largest decoded frame (rows × columns × samples × bytes) the renderer accepts.
    pub max_render_pixels: u64,
    /// Largest data set a deflated instance may inflate to (checked while inflating).
    pub max_inflated_bytes: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data: PathBuf::from("./data"),
            database: String::new(),
            blobs: String::new(),
            keys: PathBuf::new(),
            http: HttpConfig::default(),
            dimse: DimseConfig::default(),
            limits: Limits::default(),
            patients: PatientConfig::default(),
        }
    }
}

impl HttpConfig {
    /// The trusted proxies as networks (a bare address is its own /32 or /128).
    pub fn trusted_proxy_networks(&self) -> Result<Vec<ipnet::IpNet>, String> {
        self.trusted_proxies
            .iter()
            .map(|entry| {
                let entry = entry.trim();
                entry
                    .parse::<ipnet::IpNet>()
                    .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| format!("http.trusted_proxies: {entry:?} is not an address or a CIDR network"))
            })
            .collect()
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:8080".into(),
            public_url: String::new(),
            cors_origins: Vec::new(),
            cors_credentials: true,
            ohif_dir: PathBuf::new(),
            header_timeout_secs: 30,
            body_grace_secs: 30,
            body_min_bytes_per_sec: 1024,
            write_timeout_secs: 60,
            max_connections: 1024,
            max_connections_per_address: 128,
            metrics_listen: String::new(),
            trusted_proxies: Vec::new(),
            tls_cert: PathBuf::new(),
            tls_key: PathBuf::new(),
        }
    }
}

impl Default for DimseConfig {
    fn default() -> Self {
        DimseConfig {
            enabled: true,
            listen: "127.0.0.1:11112".into(),
            ae_title: "CLOUDFILM".into(),
            max_associations: 64,
            max_pdu_length: 256 * 1024,
            artim_timeout_secs: 30,
            dimse_timeout_secs: 120,
            network_timeout_secs: 60,
            tls_listen: String::new(),
            tls_cert: PathBuf::new(),
            tls_key: PathBuf::new(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_bytes: 8 << 30,
            max_instance_bytes: 2 << 30,
            max_parts: 20_000,
            inline_parse_bytes: 1 << 20,
            max_concurrent_renders: 4,
            max_render_pixels: 100_000_000,
            max_inflated_bytes: cloudfilm_dicom::inspect::DEFAULT_MAX_INFLATED,
        }
    }
}

impl Config {
    /// Defaults, then the file (if any), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Config, config::ConfigError> {
        let mut builder = config::Config::builder().add_source(config::Config::try_from(&Config::default())?);
        if let Some(path) = file {
            builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
        }
        // Only `CLOUDFILM_<SECTION>__<KEY>` variables are configuration; others such as
        // CLOUDFILM_DATA or CLOUDFILM_MASTER_KEY are read where they belong.
        let sectioned: std::collections::HashMap<String, String> =
            std::env::vars().filter(|(k, _)| k.starts_with("CLOUDFILM_") && k.contains("__")).collect();
        builder
            .add_source(
                config::Environment::with_prefix("CLOUDFILM")
                    .prefix_separator("_")
                    .separator("__")
                    .try_parsing(true)
                    .list_separator(",")
                    .with_list_parse_key("http.cors_origins")
                    .with_list_parse_key("http.trusted_proxies")
                    .source(Some(sectioned)),
            )
            .build()?
            .try_deserialize::<Config>()
            .and_then(|c| c.checked())
    }

    /// Refuses values that deserialize but cannot work (a CORS origin with a path or `*`).
    fn checked(self) -> Result<Config, config::ConfigError> {
        crate::cors::Cors::new(&self.http.cors_origins, self.http.cors_credentials)
            .map_err(|e| config::ConfigError::Message(e.to_string()))?;
        self.check_blobs().map_err(|e| config::ConfigError::Message(e.to_string()))?;
        self.http.trusted_proxy_networks().map_err(config::ConfigError::Message)?;
        self.check_tls().map_err(config::ConfigError::Message)?;
        Ok(self)
    }

    /// A certificate needs its key and the other way round.
    pub fn check_tls(&self) -> Result<(), String> {
        let given = |p: &Path| !p.as_os_str().is_empty();
        if given(&self.http.tls_cert) != given(&self.http.tls_key) {
            return Err("http.tls_cert and http.tls_key go together".into());
        }
        if given(&self.dimse.tls_cert) != given(&self.dimse.tls_key) {
            return Err("dimse.tls_cert and dimse.tls_key go together".into());
        }
        if !self.dimse.tls_listen.is_empty() && self.dimse_tls_files().is_none() {
            return Err("dimse.tls_listen needs a certificate (dimse.tls_cert/tls_key or http.tls_cert/tls_key)".into());
        }
        Ok(())
    }

    /// Whether the HTTP listener speaks TLS.
    pub fn https(&self) -> bool {
        !self.http.tls_cert.as_os_str().is_empty()
    }

    /// Cookies are `Secure` (and `__Host-` named) when served over TLS, here or at a proxy.
    pub fn secure_cookies(&self) -> bool {
        self.patients.secure_cookies || self.https()
    }

    /// The certificate and key files of the DIMSE TLS listener: its own, else the HTTP ones.
    pub fn dimse_tls_files(&self) -> Option<(PathBuf, PathBuf)> {
        let own = (self.dimse.tls_cert.clone(), self.dimse.tls_key.clone());
        let http = (self.http.tls_cert.clone(), self.http.tls_key.clone());
        [own, http].into_iter().find(|(cert, _)| !cert.as_os_str().is_empty())
    }

    /// Refuses a blob store URL that cannot be parsed (scheme, bucket name, parameters).
    pub fn check_blobs(&self) -> Result<(), cloudfilm_store::blobs::LocationError> {
        cloudfilm_store::BlobsLocation::parse(&self.blobs_url()).map(|_| ())
    }

    /// The blob store URL in effect.
    pub fn blobs_url(&self) -> String {
        if self.blobs.is_empty() { cloudfilm_store::BlobsLocation::default_url(&self.data) } else { self.blobs.clone() }
    }

    /// The key ring file in effect.
    pub fn keys_path(&self) -> PathBuf {
        if self.keys.as_os_str().is_empty() { self.data.join("keyring.json") } else { self.keys.clone() }
    }

    /// The configuration as TOML, for `--help`-style reference output.
    pub fn to_toml(&self) -> String {
        let mut shown = self.clone();
        shown.database = redact_password(&shown.database);
        toml::to_string_pretty(&shown).expect("the configuration serializes")
    }

    /// The index's URL, with the default filled in.
    pub fn database_url(&self) -> String {
        if self.database.is_empty() {
            format!("sqlite://{}", self.data.join("index.db").display())
        } else {
            self.database.clone()
        }
    }
}

/// A URL with its password (if any) replaced, for printing.
pub fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let Some((credentials, host)) = rest.split_once('@') else { return url.to_owned() };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod redaction_tests {
    #[test]
    fn passwords_never_print() {
        assert_eq!(super::redact_password("postgres://cf:s3cret@db:5432/cf"), "postgres://cf:***@db:5432/cf");
        assert_eq!(super::redact_password("postgres://cf@db/cf"), "postgres://cf@db/cf");
        assert_eq!(super::redact_password("sqlite:///data/index.db"), "sqlite:///data/index.db");
    }
}

#[cfg(test)]
mod proxy_tests {
    #[test]
    fn trusted_proxies_are_networks_or_single_addresses() {
        let mut http = super::HttpConfig {
            trusted_proxies: vec!["10.0.0.0/8".into(), " 192.0.2.7 ".into()],
            ..Default::default()
        };
        let nets = http.trusted_proxy_networks().unwrap();
        assert_eq!(nets[1].to_string(), "192.0.2.7/32");
        http.trusted_proxies.push("proxy.example.org".into());
        assert!(http.trusted_proxy_networks().unwrap_err().contains("proxy.example.org"));
    }
}
