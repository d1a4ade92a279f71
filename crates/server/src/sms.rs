//! Sending text messages (one-time codes, notices) through a provider chosen by configuration:
//! `none` (the default: nothing can be sent, so patient sign-in is unavailable), `log` (the
//! server log gets the masked phone and the kind of message, never its text: a code is a
//! credential), `file:PATH` (JSON lines `{"to", "text", "at"}` for development and tests) or
//! `webhook:URL` (an HTTP POST of the same JSON, signed with HMAC-SHA-256 so the gateway can
//! check it came from this archive).

use async_trait::async_trait;
use cloudfilm_core::PhoneNumber;
use cloudfilm_core::masking::mask_phone;
use hmac::{KeyInit, Mac};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    #[error("the SMS provider failed: {0}")]
    Provider(String),
    #[error("invalid SMS provider {0:?}: use none, log, file:PATH or webhook:URL")]
    Spec(String),
    #[error("no text message provider is configured")]
    Unconfigured,
}

/// What a text message is for: the only thing about it the `log` provider writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsKind {
    LoginCode,
    StepUpCode,
    DownloadCode,
    MemberConsentCode,
    ShareOpened,
    LinkNotice,
}

impl SmsKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SmsKind::LoginCode => "sign-in code",
            SmsKind::StepUpCode => "step-up code",
            SmsKind::DownloadCode => "download security code",
            SmsKind::MemberConsentCode => "member consent code",
            SmsKind::ShareOpened => "share opened notice",
            SmsKind::LinkNotice => "family link notice",
        }
    }

    /// The kind as a metrics label.
    pub fn label(self) -> &'static str {
        match self {
            SmsKind::LoginCode => "login_code",
            SmsKind::StepUpCode => "step_up_code",
            SmsKind::DownloadCode => "download_code",
            SmsKind::MemberConsentCode => "member_consent_code",
            SmsKind::ShareOpened => "share_opened",
            SmsKind::LinkNotice => "link_notice",
        }
    }
}

#[async_trait]
pub trait SmsSender: Send + Sync {
    async fn send(&self, to: &PhoneNumber, kind: SmsKind, text: &str) -> Result<(), SmsError>;

    /// Whether a provider is configured at all (not so for `none`: every message fails).
    fn configured(&self) -> bool {
        true
    }

    /// Whether messages reach the person (not so for `none` and `log`): without it nobody can
    /// sign in with a code.
    fn delivers(&self) -> bool {
        true
    }
}

/// Builds the provider a spec names (each message counted in the metrics); `secret` signs
/// webhook bodies.
pub fn provider(spec: &str, secret: Vec<u8>) -> Result<Arc<dyn SmsSender>, SmsError> {
    Ok(Arc::new(Counted(named_provider(spec, secret)?)))
}

/// A provider whose messages are counted, sent or failed, by kind.
struct Counted(Box<dyn SmsSender>);

#[async_trait]
impl SmsSender for Counted {
    async fn send(&self, to: &PhoneNumber, kind: SmsKind, text: &str) -> Result<(), SmsError> {
        let result = self.0.send(to, kind, text).await;
        crate::metrics::sms(kind, result.is_ok());
        result
    }

    fn configured(&self) -> bool {
        self.0.configured()
    }

    fn delivers(&self) -> bool {
        self.0.delivers()
    }
}

fn named_provider(spec: &str, secret: Vec<u8>) -> Result<Box<dyn SmsSender>, SmsError> {
    if spec.is_empty() || spec == "none" {
        return Ok(Box::new(NoSms));
    }
    if spec == "log" {
        return Ok(Box::new(LogSms));
    }
    if let Some(path) = spec.strip_prefix("file:").filter(|p| !p.is_empty()) {
        return Ok(Box::new(FileSms { path: PathBuf::from(path), lock: Mutex::new(()) }));
    }
    if let Some(url) = spec.strip_prefix("webhook:") {
        if !url.starts_with("http://") {
            return Err(SmsError::Spec(format!("{url} (this build sends webhooks over http:// to a local gateway)")));
        }
        cloudfilm_store::tls::install_provider();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| SmsError::Provider(e.to_string()))?;
        return Ok(Box::new(WebhookSms { url: url.to_owned(), secret, client }));
    }
    Err(SmsError::Spec(spec.to_owned()))
}

fn message_json(to: &PhoneNumber, text: &str) -> String {
    let at = cloudfilm_core::clock::stamp(chrono::Utc::now());
    serde_json::json!({ "to": to.as_str(), "text": text, "at": at }).to_string()
}

/// No provider: every message fails (the API answers 503 `sms_unavailable`).
struct NoSms;

#[async_trait]
impl SmsSender for NoSms {
    async fn send(&self, _to: &PhoneNumber, _kind: SmsKind, _text: &str) -> Result<(), SmsError> {
        Err(SmsError::Unconfigured)
    }

    fn configured(&self) -> bool {
        false
    }

    fn delivers(&self) -> bool {
        false
    }
}

/// Development: the server log notes that a message of this kind went to this masked phone;
/// the text stays out of the log, since codes in it are credentials.
struct LogSms;

#[async_trait]
impl SmsSender for LogSms {
    async fn send(&self, to: &PhoneNumber, kind: SmsKind, _text: &str) -> Result<(), SmsError> {
        tracing::info!(to = %mask_phone(to.as_str()), kind = kind.as_str(), "SMS (log provider, text not shown)");
        Ok(())
    }

    fn delivers(&self) -> bool {
        false
    }
}

/// Development and tests: one JSON line per message, appended to a file.
struct FileSms {
    path: PathBuf,
    lock: Mutex<()>,
}

#[async_trait]
impl SmsSender for FileSms {
    async fn send(&self, to: &PhoneNumber, _kind: SmsKind, text: &str) -> Result<(), SmsError> {
        let line = message_json(to, text);
        let _guard = self.lock.lock().map_err(|_| SmsError::Provider("outbox lock".into()))?;
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&self.path).map_err(|e| SmsError::Provider(e.to_string()))?;
        writeln!(file, "{line}").map_err(|e| SmsError::Provider(e.to_string()))
    }
}

/// Real use: POST to a gateway, with `X-Cloudfilm-Timestamp` and `X-Cloudfilm-Signature:
/// sha256=<hex HMAC-SHA-256 of "<timestamp>.<body>">`.
struct WebhookSms {
    url: String,
    secret: Vec<u8>,
    client: reqwest::Client,
}

/// The signature a gateway recomputes to check a webhook body.
pub fn webhook_signature(secret: &[u8], timestamp: &str, body: &str) -> String {
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret).expect("any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[async_trait]
impl SmsSender for WebhookSms {
    async fn send(&self, to: &PhoneNumber, _kind: SmsKind, text: &str) -> Result<(), SmsError> {
        let body = message_json(to, text);
        let timestamp = chrono::Utc::now().timestamp().to_string();
        let signature = webhook_signature(&self.secret, &timestamp, &body);
        let response = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("x-cloudfilm-timestamp", &timestamp)
            .header("x-cloudfilm-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|e| SmsError::Provider(e.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(SmsError::Provider(format!("the gateway answered {}", response.status())));
        }
        Ok(())
    }
}
