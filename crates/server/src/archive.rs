//! The archive: the data directory opened as one service (key ring, index, blobs, signer),
//! shared by the HTTP server, the CLI and (later) the DIMSE listener.

use crate::config::Config;
use crate::sms::SmsSender;
use anyhow::Context;
use cloudfilm_audit::{Action, AuditEvent, Outcome};
use cloudfilm_core::{AeTitle, Clock, OrgCode, OrgSwitches, SystemClock};
use cloudfilm_crypto::KeyRing;
use cloudfilm_crypto::keyring::KeySource;
use cloudfilm_crypto::signing::ArchiveSigner;
use cloudfilm_store::blobs::{Blobs, BlobsLocation};
use cloudfilm_store::sealed::Sealer;
use cloudfilm_store::{HeadsOutside, Index, Org, StoreError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct Archive {
    pub config: Config,
    /// The index: typed writes by area, and every read.
    pub repo: Index,
    pub blobs: Blobs,
    /// Where the signed audit heads are kept outside the index.
    pub heads: HeadsOutside,
    pub sealer: Arc<Sealer>,
    pub signer: Arc<ArchiveSigner>,
    /// Bounds concurrent frame decoding.
    pub render_permits: tokio::sync::Semaphore,
    /// The time every patient rule is decided at (a manual clock in tests).
    pub clock: Arc<dyn Clock>,
    /// Where one-time codes and notices go.
    pub sms: Arc<dyn SmsSender>,
    /// Refusals of clients without a credential, counted per address and window.
    pub refusals: std::sync::Mutex<cloudfilm_core::refusals::RefusalLedger>,
    /// Set when the server starts to stop: `/readyz` answers 503 from then on.
    pub stopping: std::sync::atomic::AtomicBool,
}

/// Where things live inside the data directory (the key ring and the blobs by default only:
/// `--keys` and `--blobs` may put them elsewhere).
pub struct DataLayout {
    pub keyring: PathBuf,
    pub blobs: PathBuf,
    pub audit_heads: PathBuf,
}

impl DataLayout {
    pub fn of(data: &Path) -> DataLayout {
        DataLayout {
            keyring: data.join("keyring.json"),
            blobs: data.join("blobs"),
            audit_heads: data.join("audit-heads.jsonl"),
        }
    }
}

/// A freshly created API key: shown once.
pub struct NewApiKey {
    pub key_id: String,
    pub key: String,
}

impl Archive {
    /// Waits (on a blocking thread) for one of the decoder's permits: conversions of whole
    /// instances share the renderer's bound, so memory for decoding stays bounded too.
    pub fn blocking_decode_permit(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        futures::executor::block_on(self.render_permits.acquire()).ok()
    }

    /// Opens the data directory, creating it (and the key ring) on first start, and, when no
    /// other process has it open, finishes the writes a crash interrupted.
    pub async fn open(config: Config) -> anyhow::Result<Archive> {
        Archive::open_with_clock(config, Arc::new(SystemClock)).await
    }

    /// [`Archive::open`] with another clock (tests stand at the boundaries of time limits).
    pub async fn open_with_clock(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Archive> {
        let data = config.data.clone();
        std::fs::create_dir_all(&data)
            .with_context(|| format!("cannot create the data directory {}", data.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700));
        }
        let layout = DataLayout::of(&data);
        let keys = config.keys_path();
        let (ring, source) = KeyRing::load_or_create(&keys).context("cannot load the master key ring")?;
        match source {
            KeySource::Created(path) => {
                tracing::info!(%path, "created a new master key ring (mode 0600): back it up")
            }
            KeySource::File(path) => tracing::info!(%path, "master key ring loaded"),
            KeySource::Environment => tracing::info!("master key taken from the environment"),
        }
        let ring = Arc::new(ring);
        let sealer = Arc::new(Sealer::new(&ring)?);
        let signer = Arc::new(ArchiveSigner::new(&ring));
        let location = BlobsLocation::parse(&config.blobs_url())?;
        let (blobs, alone) = location.open(&data, ring.clone()).await?;
        let heads = HeadsOutside::for_index(&config.database_url(), layout.audit_heads.clone(), blobs.store().clone());
        let backend =
            cloudfilm_store::open::open_index(&config.database_url(), sealer.clone(), signer.clone(), heads.clone())
                .await?;
        let webhook_secret = match config.patients.sms_webhook_secret.as_str() {
            "" => ring.derive_stable("sms-webhook").to_vec(),
            secret => secret.as_bytes().to_vec(),
        };
        let sms = crate::sms::provider(&config.patients.sms, webhook_secret)?;
        let archive = Archive {
            clock,
            sms,
            refusals: crate::refusals::ledger(),
            stopping: Default::default(),
            render_permits: tokio::sync::Semaphore::new(config.limits.max_concurrent_renders.max(1)),
            config,
            repo: Index::new(backend, sealer.clone()),
            blobs,
            heads,
            sealer,
            signer,
        };
        if alone && archive.blobs.store().recovery_grace().is_zero() {
            archive.recover().await?;
        } else if alone {
            // A shared bucket: listed in the background, not delaying the start.
            let (blobs, repo) = (archive.blobs.clone(), archive.repo.clone());
            tokio::spawn(async move {
                if let Err(e) = recover_blobs(&blobs, &repo).await {
                    tracing::warn!(error = %e, "blob recovery stopped; the next start retries it");
                }
            });
        }
        archive.blobs.share()?;
        Ok(archive)
    }

    /// Finishes blobs whose index rows committed before a crash, removes the rest.
    async fn recover(&self) -> anyhow::Result<()> {
        recover_blobs(&self.blobs, &self.repo).await
    }

    pub async fn create_org(
        &self,
        code: &OrgCode,
        name: &str,
        switches: OrgSwitches,
        actor: &str,
    ) -> Result<Org, StoreError> {
        let event = AuditEvent::new(Action::SecurityAttributesChanged, actor, format!("org:{code}"), Outcome::Success)
            .with_detail(format!(
                "organization created; cloud film {}, download {}",
                on_off(switches.cloud_film_enabled),
                on_off(switches.download_enabled)
            ));
        self.repo.create_org(code.clone(), name.to_owned(), switches, vec![event]).await
    }

    pub async fn set_org_switches(
        &self,
        code: &OrgCode,
        cloud_film: Option<bool>,
        download: Option<bool>,
        actor: &str,
    ) -> Result<Org, StoreError> {
        let mut changes = Vec::new();
        if let Some(v) = cloud_film {
            changes.push(format!("cloud film {}", on_off(v)));
        }
        if let Some(v) = download {
            changes.push(format!("download {}", on_off(v)));
        }
        let event = AuditEvent::new(Action::SecurityAttributesChanged, actor, format!("org:{code}"), Outcome::Success)
            .with_detail(format!("switches set: {}", changes.join(", ")));
        self.repo.set_org_switches(code.clone(), cloud_film, download, vec![event]).await
    }

    /// Creates an API key (≥ 256 bits of secret) for an organization; only its keyed hash is kept.
    pub async fn create_api_key(
        &self,
        org: &Org,
        allow: Vec<ipnet::IpNet>,
        actor: &str,
    ) -> Result<NewApiKey, StoreError> {
        let key_id = format!("cfk{}", &cloudfilm_crypto::random::hex_id()[..16]);
        let key = format!("{key_id}.{}", cloudfilm_crypto::random::token::<32>());
        let allow: Vec<String> = allow.iter().map(|n| n.to_string()).collect();
        let event = AuditEvent::new(
            Action::SecurityAttributesChanged,
            actor,
            format!("org:{}/key:{key_id}", org.code),
            Outcome::Success,
        )
        .with_detail(if allow.is_empty() {
            "API key created, usable from anywhere".into()
        } else {
            format!("API key created, allowed from {}", allow.join(", "))
        });
        self.repo.create_api_key(org.id, key_id.clone(), self.sealer.secret_hash(&key), allow, vec![event]).await?;
        Ok(NewApiKey { key_id, key })
    }

    pub async fn revoke_api_key(&self, key_id: &str, actor: &str) -> Result<(), StoreError> {
        let event =
            AuditEvent::new(Action::SecurityAttributesChanged, actor, format!("key:{key_id}"), Outcome::Success)
                .with_detail("API key revoked");
        self.repo.revoke_api_key(key_id.to_owned(), vec![event]).await
    }

    /// Registers a DICOM node to an organization (calling AE allowlist, C-MOVE destination).
    pub async fn add_ae(
        &self,
        org: &Org,
        title: &AeTitle,
        host: Option<String>,
        port: Option<u16>,
        certificate: Option<String>,
        actor: &str,
    ) -> Result<(), StoreError> {
        let mut place = match (&host, port) {
            (Some(h), Some(p)) => format!(" at {h}:{p}"),
            (Some(h), None) => format!(" from {h}"),
            (None, Some(p)) => format!(" on port {p}"),
            (None, None) => String::new(),
        };
        if let Some(pin) = &certificate {
            place.push_str(&format!(", bound to TLS client certificate {pin}"));
        }
        let event = AuditEvent::new(
            Action::SecurityAttributesChanged,
            actor,
            format!("org:{}/ae:{title}", org.code),
            Outcome::Success,
        )
        .with_detail(format!("DICOM node registered{place}"));
        self.repo.add_ae(org.id, title.clone(), host, port, certificate, vec![event]).await
    }

    pub async fn remove_ae(&self, title: &AeTitle, actor: &str) -> Result<(), StoreError> {
        let event = AuditEvent::new(Action::SecurityAttributesChanged, actor, format!("ae:{title}"), Outcome::Success)
            .with_detail("DICOM node removed");
        self.repo.remove_ae(title.clone(), vec![event]).await
    }

    /// Signs a last audit head and stops the writer.
    pub async fn close(&self) {
        self.flush_refusals(true).await;
        self.repo.close().await;
    }
}

/// Settles the blobs the index references, deletes unreferenced ones older than the store's
/// grace period (another node may be between its PUT and its commit).
async fn recover_blobs(blobs: &Blobs, repo: &Index) -> anyhow::Result<()> {
    let report = blobs.recover(|ids| async move { repo.blobs_referenced(&ids).await }).await?;
    if report.settled + report.deleted > 0 {
        tracing::warn!(
            settled = report.settled,
            deleted = report.deleted,
            young = report.young,
            "finished writes interrupted by a crash"
        );
    }
    Ok(())
}

fn on_off(v: bool) -> &'static str {
    if v { "on" } else { "off" }
}
