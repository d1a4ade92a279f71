//! `cloudfilm serve` and `cloudfilm demo`.

use crate::{Global, cli_actor};
use anyhow::Context;
use clap::Args;
use cloudfilm_core::{AeTitle, OrgCode, OrgSwitches};
use cloudfilm_server::{Archive, ingest};
use cloudfilm_store::ImportContext;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Args)]
#[command(after_long_help = CONFIG_HELP)]
pub struct ServeArgs {
    /// Address to listen on for HTTP (overrides `http.listen`).
    #[arg(long)]
    http: Option<String>,
    /// Address of the DIMSE listener (overrides `dimse.listen`).
    #[arg(long)]
    dimse: Option<String>,
    /// Address of a separate listener with Prometheus metrics at `/metrics` (off unless given;
    /// keep it on loopback or a private network; overrides `http.metrics_listen`).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
    /// Text message provider: `file:PATH` or `webhook:URL`; `log` (kind and masked phone
    /// only) and `none` [default] deliver no codes (overrides `patients.sms`).
    #[arg(long)]
    sms: Option<String>,
    /// A built OHIF viewer (the `dist/` directory of npm `@ohif/app`) to serve under `/ohif/`,
    /// set up for this archive's DICOMweb (overrides `http.ohif_dir`).
    #[arg(long, value_name = "DIR")]
    ohif: Option<std::path::PathBuf>,
    /// A reverse proxy (address or CIDR network) whose `Forwarded` / `X-Forwarded-*` headers
    /// are believed; repeatable (replaces `http.trusted_proxies`).
    #[arg(long = "trusted-proxy", value_name = "CIDR")]
    trusted_proxies: Vec<String>,
    #[command(flatten)]
    tls: TlsArgs,
}

/// TLS for the listeners (both files PEM; reloaded on SIGHUP).
#[derive(Args)]
pub struct TlsArgs {
    /// Certificate chain (leaf first) for HTTPS on the HTTP address; plain HTTP is then not
    /// served there (overrides `http.tls_cert`).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// Private key of `--tls-cert` (overrides `http.tls_key`).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// Address of a DIMSE listener speaking TLS (the registered port is 2762; overrides
    /// `dimse.tls_listen`).
    #[arg(long, value_name = "ADDR")]
    dimse_tls: Option<String>,
    /// Its certificate chain, if not the HTTPS one (overrides `dimse.tls_cert`).
    #[arg(long, value_name = "FILE", requires = "dimse_tls_key")]
    dimse_tls_cert: Option<std::path::PathBuf>,
    /// Its private key (overrides `dimse.tls_key`).
    #[arg(long, value_name = "FILE", requires = "dimse_tls_cert")]
    dimse_tls_key: Option<std::path::PathBuf>,
}

impl TlsArgs {
    fn apply(self, config: &mut cloudfilm_server::Config) -> anyhow::Result<()> {
        if let (Some(cert), Some(key)) = (self.tls_cert, self.tls_key) {
            (config.http.tls_cert, config.http.tls_key) = (cert, key);
        }
        if let Some(addr) = self.dimse_tls {
            config.dimse.tls_listen = addr;
        }
        if let (Some(cert), Some(key)) = (self.dimse_tls_cert, self.dimse_tls_key) {
            (config.dimse.tls_cert, config.dimse.tls_key) = (cert, key);
        }
        config.check_tls().map_err(anyhow::Error::msg)
    }
}

#[derive(Args)]
pub struct DemoArgs {
    /// Address to listen on for HTTP.
    #[arg(long)]
    http: Option<String>,
    /// Address of the DIMSE listener.
    #[arg(long)]
    dimse: Option<String>,
    /// Address of a separate listener with Prometheus metrics at `/metrics` (off unless given).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
    /// Text message provider: `log`, `file:PATH` or `webhook:URL` [file:DATA/sms-outbox.jsonl].
    #[arg(long)]
    sms: Option<String>,
    /// Size of the generated studies relative to the default (60 CT slices, 2×24 MR, 1 CR).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// A built OHIF viewer (the `dist/` directory of npm `@ohif/app`) to serve under `/ohif/`,
    /// set up for this archive's DICOMweb (overrides `http.ohif_dir`).
    #[arg(long, value_name = "DIR")]
    ohif: Option<std::path::PathBuf>,
    /// Serve HTTPS (and DIMSE over TLS on `--dimse-tls`, if given) with a self-signed
    /// certificate for localhost, made once in DATA/tls/ (its SHA-256 fingerprint is printed).
    #[arg(long)]
    tls: bool,
    /// Address of a DIMSE listener speaking TLS (with `--tls`).
    #[arg(long, value_name = "ADDR", requires = "tls")]
    dimse_tls: Option<String>,
}

/// The calling AE title the demo registers, so that DCMTK's tools work at once.
const DEMO_SCU: &str = "DEMO_SCU";

const CONFIG_HELP: &str = "\
Configuration (file given by --config, then environment CLOUDFILM_<SECTION>__<KEY>):
  data                          data directory (also --data, CLOUDFILM_DATA)      [./data]
  blobs                         blob store: file://PATH or s3://BUCKET?endpoint=URL&region=R
                                (also --blobs, CLOUDFILM_BLOBS)                   [file://DATA/blobs]
  keys                          key ring file (also --keys, CLOUDFILM_KEYS)       [DATA/keyring.json]
  [http] listen                 HTTP listen address (also --http)                 [127.0.0.1:8080]
  [http] public_url             base URL for RetrieveURL values; from Host when empty
  [http] cors_origins           origins whose pages may call DICOMweb (CORS)      [none]
  [http] cors_credentials       ... with the user's credentials                   [true]
  [http] ohif_dir               a built OHIF (dist/) served at /ohif/ (--ohif)    [none]
  [http] header_timeout_secs    seconds for a request's headers; idle keep-alive  [30]
  [http] body_grace_secs        seconds any request body may take ...             [30]
  [http] body_min_bytes_per_sec ... plus one second per this many bytes received  [1024]
  [http] write_timeout_secs     seconds a response may wait for the client        [60]
  [http] max_connections        HTTP connections at once (open-file limit too)    [1024]
  [http] max_connections_per_address  from one client address                     [128]
  [http] metrics_listen         Prometheus listener (GET /metrics; also --metrics)  [off]
  [http] trusted_proxies        proxies whose X-Forwarded-For etc. are believed
                                (also --trusted-proxy, repeatable)                [none]
  [http] tls_cert, tls_key      PEM files: HTTPS only on listen (--tls-cert/--tls-key;
                                reloaded on SIGHUP)                               [none]
  [dimse] enabled               run the DIMSE listener                            [true]
  [dimse] listen                DIMSE listen address (also --dimse)               [127.0.0.1:11112]
  [dimse] ae_title              the archive's AE title                            [CLOUDFILM]
  [dimse] max_associations      associations at once                              [64]
  [dimse] max_pdu_length        largest PDU accepted                              [262144]
  [dimse] artim_timeout_secs    seconds to request an association                 [30]
  [dimse] dimse_timeout_secs    seconds to wait for a message or response         [120]
  [dimse] network_timeout_secs  seconds per network read/write or connect         [60]
  [dimse] tls_listen            DIMSE over TLS listen address (--dimse-tls)       [none]
  [dimse] tls_cert, tls_key     its PEM files; the HTTP ones when empty
  [limits] max_request_bytes    largest STOW-RS request                           [8 GiB]
  [limits] max_instance_bytes   largest instance                                  [2 GiB]
  [limits] max_inflated_bytes   largest inflated deflate data set                 [1 GiB]
  [limits] max_parts            most instances in one STOW-RS request             [20000]
  [limits] inline_parse_bytes   bytes of an instance kept in memory to parse it   [1 MiB]
  [limits] max_concurrent_renders  frames decoded at once                         [4]
  [limits] max_render_pixels    largest frame the renderer decodes                [100000000]
  [patients] sms                text messages: file:PATH, webhook:URL; log, none
                                deliver no codes (--sms)                          [none]
  [patients] sms_webhook_secret HMAC key of webhook bodies; derived when empty
  [patients] secure_cookies     mark session cookies Secure (behind TLS)          [false]
  [patients] match_attempts_per_hour  manual matches per account and address     [10]
  [patients.otp] ttl_secs, max_attempts, resend_secs, sends_per_phone_hour,
                 sends_per_ip_hour, failures_per_ip_hour                [300, 5, 60, 5, 20, 30]
  [patients.session] idle_minutes, absolute_hours, step_up_minutes, touch_every_secs
                                                                      [30, 12, 5, 60]
Keys: CLOUDFILM_MASTER_KEY (base64 256-bit key) or CLOUDFILM_KEYRING_FILE (path); otherwise
the --keys file (DATA/keyring.json) is created on first start (mode 0600).
S3 blobs: credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (never printed); the
ciphertext is spooled under DATA/spool and PUT before the index commit.
`cloudfilm config` prints the effective values.";

/// Registers for SIGTERM and SIGINT at once (before the banner is printed, so a signal sent
/// as soon as the server announces itself is not lost) and resolves on the first.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    })
}

/// Where the server listens, for the banner.
struct Listening {
    url: String,
    /// `AE <title> at <addr>`.
    dimse: Option<String>,
    dimse_tls: Option<String>,
    metrics: Option<String>,
    /// SHA-256 of the HTTPS certificate.
    fingerprint: Option<String>,
}

/// Binds HTTP (and DIMSE when enabled), prints where, serves until a signal, then stops
/// both, lets associations in progress finish, and closes the archive (last signed head).
async fn run_server(archive: Arc<Archive>, banner: impl FnOnce(&Listening)) -> anyhow::Result<ExitCode> {
    use cloudfilm_server::tls::ReloadableCertificate;
    let config = &archive.config;
    let bind = |addr: String, what: &'static str| async move {
        tokio::net::TcpListener::bind(&addr).await.with_context(|| format!("cannot listen for {what} on {addr}"))
    };
    let listener = bind(config.http.listen.clone(), "HTTP").await?;
    let dimse = match config.dimse.enabled {
        true => Some(bind(config.dimse.listen.clone(), "DIMSE").await?),
        false => None,
    };
    let dimse_tls = match config.dimse.tls_listen.as_str() {
        "" => None,
        addr => Some(bind(addr.to_owned(), "DIMSE over TLS").await?),
    };
    let metrics = match config.http.metrics_listen.as_str() {
        "" => None,
        addr => Some(bind(addr.to_owned(), "metrics").await?),
    };
    let https = match config.https() {
        true => Some(ReloadableCertificate::load(&config.http.tls_cert, &config.http.tls_key)?),
        false => None,
    };
    let dimse_certificate = match (&dimse_tls, config.dimse_tls_files()) {
        (Some(_), Some((cert, _))) if cert == config.http.tls_cert => https.clone(),
        (Some(_), Some((cert, key))) => Some(ReloadableCertificate::load(&cert, &key)?),
        _ => None,
    };
    cloudfilm_server::tls::reload_on_hangup(https.iter().chain(&dimse_certificate).cloned().collect())?;
    let scheme = if https.is_some() { "https" } else { "http" };
    let ae = |listener: &tokio::net::TcpListener| -> std::io::Result<String> {
        Ok(format!("AE {} at {}", config.dimse.ae_title, listener.local_addr()?))
    };
    let mut listening = Listening {
        url: format!("{scheme}://{}", listener.local_addr()?),
        dimse: dimse.as_ref().map(ae).transpose()?,
        dimse_tls: dimse_tls.as_ref().map(ae).transpose()?,
        metrics: None,
        fingerprint: https.as_ref().map(|c| c.fingerprint()),
    };
    let signal = shutdown_signal()?;
    if let Some(listener) = metrics {
        listening.metrics = Some(format!("{scheme}://{}/metrics", listener.local_addr()?));
        tokio::spawn(cloudfilm_server::metrics::serve(
            archive.clone(),
            listener,
            cloudfilm_server::metrics::install()?,
            https.clone(),
        ));
    }
    banner(&listening);
    std::io::stdout().flush()?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let stopping = archive.clone();
    tokio::spawn(async move {
        signal.await;
        stopping.stopping.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = stop.send(true);
    });
    let wait = |mut rx: tokio::sync::watch::Receiver<bool>| -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            let _ = rx.wait_for(|stop| *stop).await;
        })
    };
    cloudfilm_server::refusals::flush_periodically(archive.clone());
    let dimse_tasks: Vec<_> = [(dimse, None), (dimse_tls, dimse_certificate)]
        .into_iter()
        .filter_map(|(listener, tls)| Some((listener?, tls)))
        .map(|(listener, tls)| {
            tokio::spawn(cloudfilm_server::dimse::listen(archive.clone(), listener, tls, wait(stopped.clone())))
        })
        .collect();
    cloudfilm_server::http_server::serve(archive.clone(), listener, https, wait(stopped)).await?;
    for task in dimse_tasks {
        let _ = task.await;
    }
    tracing::info!("shutting down");
    archive.close().await;
    Ok(ExitCode::SUCCESS)
}

pub async fn serve(global: &Global, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = global.config()?;
    if let Some(http) = args.http {
        config.http.listen = http;
    }
    if let Some(dimse) = args.dimse {
        config.dimse.listen = dimse;
    }
    if let Some(metrics) = args.metrics {
        config.http.metrics_listen = metrics;
    }
    if let Some(sms) = args.sms {
        config.patients.sms = sms;
    }
    if !args.trusted_proxies.is_empty() {
        config.http.trusted_proxies = args.trusted_proxies;
        config.http.trusted_proxy_networks().map_err(anyhow::Error::msg)?;
    }
    args.tls.apply(&mut config)?;
    let ohif = ohif_dir(&mut config, args.ohif)?;
    let archive = Arc::new(Archive::open(config).await?);
    let sign_in = sign_in_notice(&archive);
    run_server(archive, |at| {
        let url = &at.url;
        println!("cloudfilm listening on {url}");
        println!("DICOMweb: {url}/dicom-web");
        if let Some(fingerprint) = &at.fingerprint {
            println!("TLS certificate SHA-256: {fingerprint}");
        }
        if let Some(metrics) = &at.metrics {
            println!("Metrics: {metrics}");
        }
        if ohif {
            println!("OHIF: {url}/ohif/");
        }
        // (TLS first: the line of the plain listener ends what scripts wait for.)
        if let Some(dimse) = &at.dimse_tls {
            println!("DIMSE TLS: {dimse}");
        }
        if let Some(dimse) = &at.dimse {
            println!("DIMSE: {dimse}");
        }
        if let Some(notice) = sign_in {
            println!("{notice}");
        }
    })
    .await
}

/// Applies `--ohif DIR` and checks the directory in effect: whether OHIF is served.
fn ohif_dir(config: &mut cloudfilm_server::Config, flag: Option<std::path::PathBuf>) -> anyhow::Result<bool> {
    if let Some(dir) = flag {
        config.http.ohif_dir = dir;
    }
    if config.http.ohif_dir.as_os_str().is_empty() {
        return Ok(false);
    }
    cloudfilm_server::ohif::check(&config.http.ohif_dir)?;
    Ok(true)
}

/// Without a provider that delivers codes nobody can sign in to the portal: said at start,
/// instead of codes ever reaching a log.
fn sign_in_notice(archive: &Archive) -> Option<String> {
    if archive.sms.delivers() {
        return None;
    }
    let why = if archive.sms.configured() {
        "the log provider writes no codes"
    } else {
        "no text message provider is configured"
    };
    tracing::warn!("patient sign-in is unavailable: {why}");
    Some(format!("Patient sign-in: unavailable ({why}; use --sms file:PATH or --sms webhook:URL)"))
}

pub async fn demo(global: &Global, args: DemoArgs) -> anyhow::Result<ExitCode> {
    let mut config = global.config()?;
    if let Some(http) = args.http {
        config.http.listen = http;
    }
    if let Some(dimse) = args.dimse {
        config.dimse.listen = dimse;
    }
    if let Some(metrics) = args.metrics {
        config.http.metrics_listen = metrics;
    }
    let ohif = ohif_dir(&mut config, args.ohif)?;
    let at_cert = config.data.join("tls").join("cert.pem");
    if args.tls {
        let (cert, key) = crate::self_signed::for_localhost(&config.data.join("tls"))?;
        (config.http.tls_cert, config.http.tls_key) = (cert, key);
        if let Some(addr) = args.dimse_tls {
            config.dimse.tls_listen = addr;
        }
    }
    let outbox = config.data.join("sms-outbox.jsonl");
    config.patients.sms = args.sms.unwrap_or_else(|| format!("file:{}", outbox.display()));
    let sms = config.patients.sms.clone();
    let archive = Arc::new(Archive::open(config).await?);
    let code = OrgCode::parse("DEMO").expect("a valid code");
    let org = match archive.repo.org_by_code(&code).await? {
        Some(org) => org,
        None => archive.create_org(&code, "Cloudfilm Demo Hospital", OrgSwitches::default(), &cli_actor()).await?,
    };
    let key = archive.create_api_key(&org, Vec::new(), &cli_actor()).await?;
    let scu = AeTitle::parse(DEMO_SCU).expect("a valid AE title");
    if archive.repo.application_entity(&scu).await?.is_none() {
        archive.add_ae(&org, &scu, None, None, None, &cli_actor()).await?;
    }
    let (mut stored, mut total) = (0, 0);
    for spec in cloudfilm_dicom::synth::demo_studies(args.scale) {
        let mut received = Vec::new();
        for bytes in cloudfilm_dicom::synth::demo_files(&spec) {
            received.push(ingest::receive_bytes(&archive, &bytes).await);
        }
        let context = ImportContext { actor: cli_actor(), interface: "demo".into(), ..Default::default() };
        let results = ingest::commit(&archive, org.id, received, None, context).await?;
        total += results.len();
        stored += results.iter().filter(|r| r.disposition == ingest::Disposition::Stored).count();
    }
    let patient = cloudfilm_dicom::synth::demo_patient();
    run_server(archive, |at| {
        let url = &at.url;
        println!("cloudfilm demo is running");
        println!("URL:                {url}/");
        println!("DICOMweb:           {url}/dicom-web");
        if let Some(fingerprint) = &at.fingerprint {
            println!("TLS certificate:    {} (self-signed; SHA-256 {fingerprint})", at_cert.display());
        }
        if let Some(metrics) = &at.metrics {
            println!("Metrics:            {metrics}");
        }
        if ohif {
            println!(
                "OHIF viewer:        {url}/ohif/ (user name: the API key's id, before its first '.'; password: the key)"
            );
        }
        if let Some(dimse) = &at.dimse {
            println!("DIMSE:              {dimse} (calling AE {DEMO_SCU} is registered)");
        }
        if let Some(dimse) = &at.dimse_tls {
            println!("DIMSE over TLS:     {dimse}");
        }
        println!("API key:            {}", key.key);
        println!("Demo patient phone: {} (one-time codes: {sms})", patient.phone);
        println!("Sample studies:     {total} instances ({stored} new): CT, MR and CR of the demo patient");
    })
    .await
}
