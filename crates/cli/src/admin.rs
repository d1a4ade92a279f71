//! `cloudfilm org ...` and `cloudfilm apikey ...`.

use crate::{Global, cli_actor};
use anyhow::{Context, bail};
use clap::Subcommand;
use cloudfilm_core::org::parse_switch;
use cloudfilm_core::{AeTitle, OrgCode, OrgSwitches};
use cloudfilm_server::Archive;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum OrgCommand {
    /// Create an organization (both switches on unless told otherwise).
    Create {
        #[arg(long, value_parser = parse_code)]
        code: OrgCode,
        #[arg(long)]
        name: String,
        /// Whether patients see this organization's exams.
        #[arg(long = "cloud-film", value_parser = parse_switch, default_value = "on", action = clap::ArgAction::Set)]
        cloud_film: bool,
        /// Whether patients may download original DICOM.
        #[arg(long, value_parser = parse_switch, default_value = "on", action = clap::ArgAction::Set)]
        download: bool,
    },
    /// Flip an organization's switches.
    Set {
        #[arg(value_parser = parse_code)]
        code: OrgCode,
        #[arg(long = "cloud-film", value_parser = parse_switch)]
        cloud_film: Option<bool>,
        #[arg(long, value_parser = parse_switch)]
        download: Option<bool>,
    },
    /// List organizations.
    List,
    /// DICOM nodes of an organization.
    #[command(subcommand)]
    Ae(AeCommand),
}

#[derive(Subcommand)]
pub enum AeCommand {
    /// Register a DICOM node: it may then call the DIMSE listener (from --host only, when
    /// given) and receive C-MOVE (at --host and --port).
    Add {
        #[arg(value_parser = parse_code)]
        code: OrgCode,
        #[arg(value_parser = parse_ae)]
        title: AeTitle,
        #[arg(long, value_parser = parse_host)]
        host: Option<String>,
        #[arg(long)]
        port: Option<u16>,
        /// Bind the node to its TLS client certificate (PEM; the first certificate is the
        /// node's): it is then accepted only over DIMSE TLS, presenting that certificate.
        #[arg(long, value_name = "FILE")]
        certificate: Option<std::path::PathBuf>,
    },
    /// List an organization's nodes.
    List {
        #[arg(value_parser = parse_code)]
        code: OrgCode,
    },
    /// Remove a node.
    Remove {
        #[arg(value_parser = parse_ae)]
        title: AeTitle,
    },
}

#[derive(Subcommand)]
pub enum ApiKeyCommand {
    /// Create a key; it is printed once, alone on the last line of stdout.
    Create {
        #[arg(long, value_parser = parse_code)]
        org: OrgCode,
        /// Networks the key may be used from (repeatable); anywhere when absent.
        #[arg(long = "allow")]
        allow: Vec<ipnet::IpNet>,
    },
    /// Revoke a key by its id (the part before the first '.').
    Revoke { key_id: String },
}

fn parse_ae(raw: &str) -> Result<AeTitle, String> {
    AeTitle::parse(raw).map_err(|e| e.to_string())
}

/// An IP address or a host name (letters, digits, dots and hyphens).
fn parse_host(raw: &str) -> Result<String, String> {
    let ok = raw.parse::<std::net::IpAddr>().is_ok()
        || (!raw.is_empty()
            && raw.len() <= 253
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'));
    if ok { Ok(raw.to_owned()) } else { Err(format!("{raw:?} is not an IP address or host name")) }
}

fn parse_code(raw: &str) -> Result<OrgCode, String> {
    OrgCode::parse(raw).map_err(|e| e.to_string())
}

fn print_org(org: &cloudfilm_store::Org) {
    let on = |v: bool| if v { "on" } else { "off" };
    println!(
        "{}\t{}\tcloud-film {}\tdownload {}",
        org.code,
        org.name,
        on(org.switches.cloud_film_enabled),
        on(org.switches.download_enabled)
    );
}

pub async fn org(global: &Global, cmd: OrgCommand) -> anyhow::Result<ExitCode> {
    let archive = Archive::open(global.config()?).await?;
    let result = match cmd {
        OrgCommand::Create { code, name, cloud_film, download } => {
            let switches = OrgSwitches { cloud_film_enabled: cloud_film, download_enabled: download };
            archive.create_org(&code, &name, switches, &cli_actor()).await.map(|org| print_org(&org))
        }
        OrgCommand::Set { code, cloud_film, download } => {
            if cloud_film.is_none() && download.is_none() {
                archive.close().await;
                bail!("nothing to set: give --cloud-film and/or --download");
            }
            archive.set_org_switches(&code, cloud_film, download, &cli_actor()).await.map(|org| print_org(&org))
        }
        OrgCommand::List => archive.repo.list_orgs().await.map(|orgs| orgs.iter().for_each(print_org)),
        OrgCommand::Ae(cmd) => {
            let result = ae(&archive, cmd).await;
            archive.close().await;
            return result.map(|_| ExitCode::SUCCESS);
        }
    };
    archive.close().await;
    result.map_err(|e| match e {
        cloudfilm_store::StoreError::NotFound => anyhow::anyhow!("no such organization"),
        other => other.into(),
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn ae(archive: &Archive, cmd: AeCommand) -> anyhow::Result<()> {
    match cmd {
        AeCommand::Add { code, title, host, port, certificate } => {
            let org = archive.repo.org_by_code(&code).await?.with_context(|| format!("no organization {code}"))?;
            let pin = certificate.as_deref().map(cloudfilm_server::tls::certificate_sha256).transpose()?;
            archive.add_ae(&org, &title, host, port, pin.clone(), &cli_actor()).await?;
            match pin {
                Some(pin) => println!("{title}\t{code}\tTLS client certificate SHA-256 {pin}"),
                None => println!("{title}\t{code}"),
            }
        }
        AeCommand::List { code } => {
            let org = archive.repo.org_by_code(&code).await?.with_context(|| format!("no organization {code}"))?;
            for ae in archive.repo.application_entities(org.id).await? {
                let host = ae.host.as_deref().unwrap_or("any host");
                let port = ae.port.map(|p| p.to_string()).unwrap_or_else(|| "-".into());
                let pin = ae.certificate.as_deref().unwrap_or("any client");
                println!("{}\t{host}\t{port}\t{pin}", ae.title);
            }
        }
        AeCommand::Remove { title } => {
            archive.remove_ae(&title, &cli_actor()).await.map_err(|_| anyhow::anyhow!("no AE title {title}"))?;
            println!("removed {title}");
        }
    }
    Ok(())
}

pub async fn apikey(global: &Global, cmd: ApiKeyCommand) -> anyhow::Result<ExitCode> {
    let archive = Archive::open(global.config()?).await?;
    let result = match cmd {
        ApiKeyCommand::Create { org, allow } => create_key(&archive, &org, allow).await,
        ApiKeyCommand::Revoke { key_id } => archive
            .revoke_api_key(&key_id, &cli_actor())
            .await
            .map(|_| println!("revoked {key_id}"))
            .map_err(|_| anyhow::anyhow!("no active key {key_id}")),
    };
    archive.close().await;
    result.map(|_| ExitCode::SUCCESS)
}

async fn create_key(archive: &Archive, code: &OrgCode, allow: Vec<ipnet::IpNet>) -> anyhow::Result<()> {
    let org = archive.repo.org_by_code(code).await?.with_context(|| format!("no organization {code}"))?;
    let key = archive.create_api_key(&org, allow, &cli_actor()).await?;
    eprintln!("API key {} for {} (shown once; only its hash is kept):", key.key_id, org.code);
    println!("{}", key.key);
    Ok(())
}
