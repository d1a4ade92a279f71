//! The rules of the patient side's writes, whatever the database: code limits, wrong tries,
//! uniqueness of members, consent, each with the audit entries it owes. Every decision locks
//! the keys it is taken on first, then reads what is committed, decides with `core`, writes.

use crate::error::Result;
use crate::patients::*;
use crate::sealed::Sealer;
use crate::tx::Tx;
use chrono::{DateTime, Duration, Utc};
use cloudfilm_audit::{Action, AuditEvent, Outcome};
use cloudfilm_core::member::Relation;
use cloudfilm_core::otp::{CodeVerdict, IssuedCode, OtpPolicy, OtpPurpose, SendHistory};
use cloudfilm_core::{AccountId, MemberId};
use cloudfilm_crypto::blind::constant_time_eq;

/// What a write answers, with the audit entries it owes.
pub type Decided<T> = (T, Vec<AuditEvent>);

/// Records a code within the limits (per phone and per address); a refusal is a security alert.
pub async fn issue_code(tx: &mut dyn Tx, op: &IssueCode) -> Result<Decided<CodeIssued>> {
    tx.lock(&mut [op.phone_token.clone(), op.ip_bucket.clone()]).await?;
    let hour_ago = op.now - Duration::hours(1);
    let history = SendHistory {
        last_sent_to_phone: tx.last_code_sent(&op.phone_token).await?,
        sent_to_phone_last_hour: tx.codes_sent_since(&op.phone_token, hour_ago).await?,
        requested_from_ip_last_hour: tx.events_since(&op.ip_bucket, hour_ago).await?,
    };
    tx.count_event(&op.ip_bucket, op.now).await?;
    match op.policy.may_send(&history, op.now) {
        Ok(()) => {
            tx.insert_code(&op.phone_token, op.purpose.as_str(), &op.code_hash, op.now).await?;
            Ok((Ok(()), Vec::new()))
        }
        Err(refused) => {
            let event = AuditEvent::new(
                Action::SecurityAlert,
                phone_actor(&op.phone_token),
                "auth/otp",
                Outcome::Failure("one-time code requested above the rate limit".into()),
            )
            .from_client(op.ctx.client_ip.clone(), op.ctx.request_id.clone());
            Ok((Err(refused.retry_after_secs), vec![event]))
        }
    }
}

/// Counts one event in each bucket unless one already holds `limit` after `since`.
pub async fn take_attempt(
    tx: &mut dyn Tx,
    mut buckets: Vec<Vec<u8>>,
    limit: u32,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool> {
    tx.lock(&mut buckets).await?;
    for bucket in &buckets {
        if tx.events_since(bucket, since).await? >= limit {
            return Ok(false);
        }
    }
    for bucket in &buckets {
        tx.count_event(bucket, now).await?;
    }
    Ok(true)
}

/// Checks the latest code of this phone and purpose, counting a wrong try against it and any
/// failure against the client address. `None`: too many failures from this address already.
async fn check_code(
    tx: &mut dyn Tx,
    phone_token: &[u8],
    purpose: OtpPurpose,
    code_hash: &[u8],
    ip_bucket: &[u8],
    policy: &OtpPolicy,
    now: DateTime<Utc>,
) -> Result<Option<CodeVerdict>> {
    tx.lock(&mut [phone_token.to_vec(), ip_bucket.to_vec()]).await?;
    if tx.events_since(ip_bucket, now - Duration::hours(1)).await? >= policy.failures_per_ip_hour {
        return Ok(None);
    }
    let row = tx.latest_code(phone_token, purpose.as_str()).await?;
    let verdict = match &row {
        None => policy.check(None, false, now),
        Some(r) => {
            let issued = IssuedCode { sent_at: r.sent_at, wrong_attempts: r.wrong_attempts, used: r.used };
            policy.check(Some(&issued), constant_time_eq(&r.code_hash, code_hash), now)
        }
    };
    match (verdict, row.map(|r| r.id)) {
        (CodeVerdict::Accepted, Some(id)) => tx.mark_code_used(id, now).await?,
        (CodeVerdict::Wrong, Some(id)) => {
            tx.count_wrong_code(id).await?;
            tx.count_event(ip_bucket, now).await?;
        }
        _ => tx.count_event(ip_bucket, now).await?,
    }
    Ok(Some(verdict))
}

pub async fn login(tx: &mut dyn Tx, sealer: &Sealer, op: &Login) -> Result<Decided<CodeOutcome>> {
    let verdict =
        check_code(tx, &op.phone_token, OtpPurpose::Login, &op.code_hash, &op.ip_bucket, &op.policy, op.now).await?;
    let outcome = match verdict {
        Some(CodeVerdict::Accepted) => {
            let (account_id, created) = match tx.account_by_phone(&op.phone_token).await? {
                Some(id) => (id, false),
                None => {
                    let phone = sealer.seal("account_phone", &Some(op.phone.clone())).unwrap_or_default();
                    tx.insert_account(&op.new_account_id, &op.phone_token, &phone, op.now).await?;
                    (op.new_account_id.clone(), true)
                }
            };
            tx.insert_session(&account_id, &op.session, op.now, None).await?;
            CodeOutcome::Accepted { account_id, created }
        }
        other => failed(other),
    };
    let actor = match &outcome {
        CodeOutcome::Accepted { account_id, .. } => format!("account:{account_id}"),
        _ => phone_actor(&op.phone_token),
    };
    let event = code_event(Action::Login, actor, &outcome, "login", &op.ctx);
    Ok((outcome, vec![event]))
}

pub async fn step_up(tx: &mut dyn Tx, op: &StepUp) -> Result<Decided<CodeOutcome>> {
    let verdict =
        check_code(tx, &op.phone_token, OtpPurpose::StepUp, &op.code_hash, &op.ip_bucket, &op.policy, op.now).await?;
    let outcome = match verdict {
        Some(CodeVerdict::Accepted) => {
            tx.revoke_session(&op.old_token_hash, op.now).await?;
            tx.insert_session(&op.account_id, &op.session, op.now, Some(op.now)).await?;
            CodeOutcome::Accepted { account_id: op.account_id.clone(), created: false }
        }
        other => failed(other),
    };
    let event = code_event(Action::Login, format!("account:{}", op.account_id), &outcome, "step-up", &op.ctx);
    Ok((outcome, vec![event]))
}

/// Adds a member unless its resident ID is already one of the account's, or a second "self",
/// or the "self" of another account.
pub async fn add_member(
    tx: &mut dyn Tx,
    sealer: &Sealer,
    account_id: &AccountId,
    member: &NewMember,
    now: DateTime<Utc>,
) -> Result<Result<(), MemberConflict>> {
    tx.lock(&mut [account_id.as_str().as_bytes().to_vec(), member.id_token.clone()]).await?;
    if tx.has_member(account_id, &member.id_token).await? {
        return Ok(Err(MemberConflict::Duplicate));
    }
    if member.relation == Relation::Myself {
        if tx.has_self_member(account_id).await? {
            return Ok(Err(MemberConflict::SecondSelf));
        }
        if tx.is_self_anywhere(&member.id_token).await? {
            return Ok(Err(MemberConflict::SelfElsewhere));
        }
    }
    let name = sealer.seal("member_name", &Some(member.name.clone())).unwrap_or_default();
    let id_number = sealer.seal("member_id_number", &Some(member.id_number.clone())).unwrap_or_default();
    tx.insert_member(account_id, member, &name, &id_number, now).await?;
    Ok(Ok(()))
}

/// Sends nothing itself: records the member's consent code within the code limits.
pub async fn request_member_consent(
    tx: &mut dyn Tx,
    op: &RequestMemberConsent,
) -> Result<Decided<Result<CodeIssued, MemberConflict>>> {
    let issue = IssueCode {
        phone_token: op.code_token.clone(),
        purpose: OtpPurpose::MemberConsent,
        code_hash: op.code_hash.clone(),
        ip_bucket: op.ip_bucket.clone(),
        policy: op.policy.clone(),
        now: op.now,
        ctx: op.ctx.clone(),
    };
    let (issued, mut events) = issue_code(tx, &issue).await?;
    if issued.is_ok() {
        if !tx.stamp_consent_request(&op.account_id, &op.member_id, op.now).await? {
            return Ok((Err(MemberConflict::NotFound), Vec::new()));
        }
        tx.count_event(&op.phone_bucket, op.now).await?;
        for line in &op.access {
            tx.insert_access(line).await?;
        }
        events.push(
            member_event(&op.account_id, &op.member_id, Outcome::Success)
                .with_detail("member consent requested: code sent to the phone on the hospital's record")
                .from_client(op.ctx.client_ip.clone(), op.ctx.request_id.clone()),
        );
    }
    Ok((Ok(issued), events))
}

pub async fn confirm_member_consent(tx: &mut dyn Tx, op: &ConfirmMemberConsent) -> Result<Decided<CodeOutcome>> {
    let purpose = OtpPurpose::MemberConsent;
    let verdict = check_code(tx, &op.code_token, purpose, &op.code_hash, &op.ip_bucket, &op.policy, op.now).await?;
    let outcome = match verdict {
        Some(CodeVerdict::Accepted) => {
            if tx.consent_by_code(&op.account_id, &op.member_id, op.now).await? {
                for line in &op.access {
                    tx.insert_access(line).await?;
                }
                CodeOutcome::Accepted { account_id: op.account_id.clone(), created: false }
            } else {
                CodeOutcome::NoCode
            }
        }
        other => failed(other),
    };
    let result = match &outcome {
        CodeOutcome::Accepted { .. } => Outcome::Success,
        refused => Outcome::Failure(format!("member consent code refused ({refused:?})").to_lowercase()),
    };
    let event = member_event(&op.account_id, &op.member_id, result)
        .with_detail("member consent by the code sent to the phone on the hospital's record")
        .from_client(op.ctx.client_ip.clone(), op.ctx.request_id.clone());
    Ok((outcome, vec![event]))
}

pub async fn set_holding(tx: &mut dyn Tx, op: &SetHolding) -> Result<Result<(), MemberConflict>> {
    if !tx.set_holding(&op.self_account_id, &op.holder_member_id, op.grant, op.now).await? {
        return Ok(Err(MemberConflict::NotFound));
    }
    for line in &op.access {
        tx.insert_access(line).await?;
    }
    Ok(Ok(()))
}

fn member_event(account_id: &AccountId, member_id: &MemberId, outcome: Outcome) -> AuditEvent {
    AuditEvent::new(Action::PatientRecord, format!("account:{account_id}"), format!("member:{member_id}"), outcome)
}

fn failed(verdict: Option<CodeVerdict>) -> CodeOutcome {
    match verdict {
        None => CodeOutcome::Throttled,
        Some(CodeVerdict::Wrong) => CodeOutcome::Wrong,
        Some(CodeVerdict::Expired) => CodeOutcome::Expired,
        Some(CodeVerdict::Exhausted) => CodeOutcome::Exhausted,
        Some(CodeVerdict::NoCode | CodeVerdict::Accepted) => CodeOutcome::NoCode,
    }
}

/// A phone named in the audit by the first bytes of its keyed token only.
fn phone_actor(phone_token: &[u8]) -> String {
    format!("phone:{}", hex::encode(&phone_token[..6.min(phone_token.len())]))
}

fn code_event(action: Action, actor: String, outcome: &CodeOutcome, what: &str, ctx: &AuditContext) -> AuditEvent {
    let result = match outcome {
        CodeOutcome::Accepted { .. } => Outcome::Success,
        CodeOutcome::Wrong => Outcome::Failure("wrong one-time code".into()),
        CodeOutcome::Expired => Outcome::Failure("expired one-time code".into()),
        CodeOutcome::Exhausted => Outcome::Failure("one-time code failed too many times".into()),
        CodeOutcome::NoCode => Outcome::Failure("no valid one-time code".into()),
        CodeOutcome::Throttled => Outcome::Failure("too many failures from this address".into()),
    };
    let detail = match outcome {
        CodeOutcome::Accepted { created: true, .. } => format!("{what}; account registered"),
        _ => what.to_owned(),
    };
    AuditEvent::new(action, actor, "patient-portal", result)
        .with_detail(detail)
        .from_client(ctx.client_ip.clone(), ctx.request_id.clone())
}
