//! The writer's half of the patient side: every decision that must not race (code limits,
//! wrong tries, uniqueness of members) is taken inside the single writer's transaction.

use crate::error::Result;
use crate::model::WriteResult;
use crate::patients::*;
use crate::sealed::Sealer;
use chrono::{DateTime, Duration, Utc};
use cloudfilm_audit::{Action, AuditEvent, Outcome};
use cloudfilm_core::clock::{parse_stamp, stamp};
use cloudfilm_core::member::Relation;
use cloudfilm_core::otp::{CodeVerdict, IssuedCode, OtpPolicy, OtpPurpose, SendHistory};
use cloudfilm_crypto::blind::constant_time_eq;
use sqlx::{Row, SqliteConnection};

pub async fn apply(
    conn: &mut SqliteConnection,
    sealer: &Sealer,
    op: &PatientOp,
) -> Result<(WriteResult, Vec<AuditEvent>)> {
    let (result, events) = match op {
        PatientOp::IssueCode { phone_token, purpose, code_hash, ip_bucket, policy, now, ctx } => {
            issue_code(conn, phone_token, *purpose, code_hash, ip_bucket, policy, *now, ctx).await?
        }
        PatientOp::Login { phone_token, phone, code_hash, ip_bucket, new_account_id, session, policy, now, ctx } => {
            let outcome = check_code(conn, phone_token, OtpPurpose::Login, code_hash, ip_bucket, policy, *now).await?;
            let outcome = match outcome {
                Some(CodeVerdict::Accepted) => {
                    let (account_id, created) =
                        account_for(conn, sealer, phone_token, phone, new_account_id, *now).await?;
                    insert_session(conn, &account_id, session, *now, None).await?;
                    CodeOutcome::Accepted { account_id, created }
                }
                other => failed(other),
            };
            let actor = actor_of(&outcome, phone_token);
            let event = code_event(Action::Login, actor, &outcome, "login", ctx);
            (PatientResult::Code(outcome), vec![event])
        }
        PatientOp::StepUp {
            account_id,
            phone_token,
            code_hash,
            ip_bucket,
            old_token_hash,
            session,
            policy,
            now,
            ctx,
        } => {
            let verdict = check_code(conn, phone_token, OtpPurpose::StepUp, code_hash, ip_bucket, policy, *now).await?;
            let outcome = match verdict {
                Some(CodeVerdict::Accepted) => {
                    revoke_session(conn, old_token_hash, *now).await?;
                    insert_session(conn, account_id, session, *now, Some(*now)).await?;
                    CodeOutcome::Accepted { account_id: account_id.clone(), created: false }
                }
                other => failed(other),
            };
            let event = code_event(Action::Login, format!("account:{account_id}"), &outcome, "step-up", ctx);
            (PatientResult::Code(outcome), vec![event])
        }
        PatientOp::TouchSession { token_hash, now } => {
            sqlx::query("UPDATE sessions SET last_seen_at = ? WHERE token_hash = ? AND revoked_at IS NULL")
                .bind(stamp(*now))
                .bind(token_hash)
                .execute(&mut *conn)
                .await?;
            (PatientResult::Done, Vec::new())
        }
        PatientOp::RevokeSession { token_hash, now } => {
            revoke_session(conn, token_hash, *now).await?;
            (PatientResult::Done, Vec::new())
        }
        PatientOp::Consent { account_id, kind, policy_version, granted, now } => {
            sqlx::query(
                "INSERT INTO consent_events (account_id, kind, policy_version, granted, at) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(account_id)
            .bind(kind)
            .bind(policy_version)
            .bind(granted)
            .bind(stamp(*now))
            .execute(&mut *conn)
            .await?;
            (PatientResult::Done, Vec::new())
        }
        PatientOp::AddMember { account_id, member, now } => {
            (add_member(conn, sealer, account_id, member, *now).await?, Vec::new())
        }
        PatientOp::RemoveMember { account_id, member_id } => {
            let done = sqlx::query("DELETE FROM members WHERE id = ? AND account_id = ?")
                .bind(member_id)
                .bind(account_id)
                .execute(&mut *conn)
                .await?;
            let result = if done.rows_affected() == 0 {
                PatientResult::Refused(MemberConflict::NotFound)
            } else {
                PatientResult::Done
            };
            (result, Vec::new())
        }
        PatientOp::MarkMatched { member_id, study_pk, now } => {
            sqlx::query(
                "UPDATE members SET matched_at = coalesce(matched_at, ?), \
                 matched_study_pk = coalesce(matched_study_pk, ?) WHERE id = ?",
            )
            .bind(stamp(*now))
            .bind(study_pk)
            .bind(member_id)
            .execute(&mut *conn)
            .await?;
            (PatientResult::Done, Vec::new())
        }
        PatientOp::RequestMemberConsent {
            account_id,
            member_id,
            code_token,
            code_hash,
            ip_bucket,
            phone_bucket,
            policy,
            now,
            ctx,
            access,
        } => {
            let (result, mut events) =
                issue_code(conn, code_token, OtpPurpose::MemberConsent, code_hash, ip_bucket, policy, *now, ctx)
                    .await?;
            if result == PatientResult::CodeIssued(Ok(())) {
                let stamped =
                    sqlx::query("UPDATE members SET consent_requested_at = ? WHERE id = ? AND account_id = ?")
                        .bind(stamp(*now))
                        .bind(member_id)
                        .bind(account_id)
                        .execute(&mut *conn)
                        .await?;
                if stamped.rows_affected() == 0 {
                    return Ok((WriteResult::Patient(PatientResult::Refused(MemberConflict::NotFound)), Vec::new()));
                }
                count_event(conn, phone_bucket, *now).await?;
                for line in access {
                    super::sharing::insert_access(conn, line).await?;
                }
                events.push(
                    AuditEvent::new(
                        Action::PatientRecord,
                        format!("account:{account_id}"),
                        format!("member:{member_id}"),
                        Outcome::Success,
                    )
                    .with_detail("member consent requested: code sent to the phone on the hospital's record")
                    .from_client(ctx.client_ip.clone(), ctx.request_id.clone()),
                );
            }
            (result, events)
        }
        PatientOp::ConfirmMemberConsent {
            account_id,
            member_id,
            code_token,
            code_hash,
            ip_bucket,
            policy,
            now,
            ctx,
            access,
        } => {
            let verdict =
                check_code(conn, code_token, OtpPurpose::MemberConsent, code_hash, ip_bucket, policy, *now).await?;
            let outcome = match verdict {
                Some(CodeVerdict::Accepted) => {
                    let done = sqlx::query(
                        "UPDATE members SET consented_at = ?, consent_via = 'code', consent_ended_at = NULL \
                         WHERE id = ? AND account_id = ? AND relation != 'self'",
                    )
                    .bind(stamp(*now))
                    .bind(member_id)
                    .bind(account_id)
                    .execute(&mut *conn)
                    .await?;
                    if done.rows_affected() == 0 {
                        CodeOutcome::NoCode
                    } else {
                        for line in access {
                            super::sharing::insert_access(conn, line).await?;
                        }
                        CodeOutcome::Accepted { account_id: account_id.clone(), created: false }
                    }
                }
                other => failed(other),
            };
            let result = match &outcome {
                CodeOutcome::Accepted { .. } => Outcome::Success,
                refused => Outcome::Failure(format!("member consent code refused ({refused:?})").to_lowercase()),
            };
            let event = AuditEvent::new(
                Action::PatientRecord,
                format!("account:{account_id}"),
                format!("member:{member_id}"),
                result,
            )
            .with_detail("member consent by the code sent to the phone on the hospital's record")
            .from_client(ctx.client_ip.clone(), ctx.request_id.clone());
            (PatientResult::Code(outcome), vec![event])
        }
        PatientOp::SetHolding { self_account_id, holder_member_id, grant, now, access } => {
            let sql = if *grant {
                "UPDATE members SET consented_at = ?1, consent_via = 'account', consent_ended_at = NULL \
                 WHERE id = ?2 AND relation != 'self' AND account_id != ?3 AND id_token = \
                 (SELECT id_token FROM members WHERE account_id = ?3 AND relation = 'self' AND matched_at IS NOT NULL)"
            } else {
                "UPDATE members SET consented_at = NULL, consent_via = NULL, consent_ended_at = ?1 \
                 WHERE id = ?2 AND relation != 'self' AND account_id != ?3 AND id_token = \
                 (SELECT id_token FROM members WHERE account_id = ?3 AND relation = 'self' AND matched_at IS NOT NULL)"
            };
            let done = sqlx::query(sql)
                .bind(stamp(*now))
                .bind(holder_member_id)
                .bind(self_account_id)
                .execute(&mut *conn)
                .await?;
            if done.rows_affected() == 0 {
                (PatientResult::Refused(MemberConflict::NotFound), Vec::new())
            } else {
                for line in access {
                    super::sharing::insert_access(conn, line).await?;
                }
                (PatientResult::Done, Vec::new())
            }
        }
        PatientOp::CountEvents { buckets, now } => {
            for bucket in buckets {
                count_event(conn, bucket, *now).await?;
            }
            (PatientResult::Done, Vec::new())
        }
        PatientOp::FileRequest { request } => {
            sqlx::query(
                "INSERT INTO data_requests (id, account_id, kind, detail, created_at, due_date, status) \
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&request.id)
            .bind(&request.account_id)
            .bind(&request.kind)
            .bind(sealer.seal("request_detail", &Some(request.detail.clone())))
            .bind(stamp(request.created_at))
            .bind(request.due_date.to_string())
            .bind(&request.status)
            .execute(&mut *conn)
            .await?;
            (PatientResult::Done, Vec::new())
        }
        PatientOp::AddReport { study_pk, body, now } => {
            sqlx::query("INSERT INTO reports (study_pk, body, created_at) VALUES (?, ?, ?)")
                .bind(study_pk)
                .bind(sealer.seal("report_body", &Some(body.clone())))
                .bind(stamp(*now))
                .execute(&mut *conn)
                .await?;
            (PatientResult::Done, Vec::new())
        }
    };
    Ok((WriteResult::Patient(result), events))
}

#[allow(clippy::too_many_arguments)]
async fn issue_code(
    conn: &mut SqliteConnection,
    phone_token: &[u8],
    purpose: OtpPurpose,
    code_hash: &[u8],
    ip_bucket: &[u8],
    policy: &OtpPolicy,
    now: DateTime<Utc>,
    ctx: &AuditContext,
) -> Result<(PatientResult, Vec<AuditEvent>)> {
    let hour_ago = stamp(now - Duration::hours(1));
    let last: Option<String> = sqlx::query_scalar("SELECT max(sent_at) FROM otp_codes WHERE phone_token = ?")
        .bind(phone_token)
        .fetch_one(&mut *conn)
        .await?;
    let to_phone: i64 = sqlx::query_scalar("SELECT count(*) FROM otp_codes WHERE phone_token = ? AND sent_at > ?")
        .bind(phone_token)
        .bind(&hour_ago)
        .fetch_one(&mut *conn)
        .await?;
    let from_ip = events_since(conn, ip_bucket, &hour_ago).await?;
    let history = SendHistory {
        last_sent_to_phone: last.as_deref().and_then(parse_stamp),
        sent_to_phone_last_hour: to_phone as u32,
        requested_from_ip_last_hour: from_ip,
    };
    count_event(conn, ip_bucket, now).await?;
    match policy.may_send(&history, now) {
        Ok(()) => {
            sqlx::query("INSERT INTO otp_codes (phone_token, purpose, code_hash, sent_at) VALUES (?, ?, ?, ?)")
                .bind(phone_token)
                .bind(purpose.as_str())
                .bind(code_hash)
                .bind(stamp(now))
                .execute(&mut *conn)
                .await?;
            Ok((PatientResult::CodeIssued(Ok(())), Vec::new()))
        }
        Err(refused) => {
            let event = AuditEvent::new(
                Action::SecurityAlert,
                format!("phone:{}", hex::encode(&phone_token[..6])),
                "auth/otp",
                Outcome::Failure("one-time code requested above the rate limit".into()),
            )
            .from_client(ctx.client_ip.clone(), ctx.request_id.clone());
            Ok((PatientResult::CodeIssued(Err(refused.retry_after_secs)), vec![event]))
        }
    }
}

/// Checks the latest code of this phone and purpose, counting a wrong try against it and any
/// failure against the client address. `None`: too many failures from this address already.
async fn check_code(
    conn: &mut SqliteConnection,
    phone_token: &[u8],
    purpose: OtpPurpose,
    code_hash: &[u8],
    ip_bucket: &[u8],
    policy: &OtpPolicy,
    now: DateTime<Utc>,
) -> Result<Option<CodeVerdict>> {
    let failures = events_since(conn, ip_bucket, &stamp(now - Duration::hours(1))).await?;
    if failures >= policy.failures_per_ip_hour {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT id, code_hash, sent_at, wrong_attempts, used_at FROM otp_codes \
         WHERE phone_token = ? AND purpose = ? ORDER BY sent_at DESC, id DESC LIMIT 1",
    )
    .bind(phone_token)
    .bind(purpose.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let (id, verdict) = match row {
        None => (None, policy.check(None, false, now)),
        Some(r) => {
            let stored: Vec<u8> = r.try_get("code_hash")?;
            let issued = IssuedCode {
                sent_at: parse_stamp(&r.try_get::<String, _>("sent_at")?).unwrap_or(now),
                wrong_attempts: r.try_get::<i64, _>("wrong_attempts")? as u32,
                used: r.try_get::<Option<String>, _>("used_at")?.is_some(),
            };
            let id: i64 = r.try_get("id")?;
            (Some(id), policy.check(Some(&issued), constant_time_eq(&stored, code_hash), now))
        }
    };
    match (verdict, id) {
        (CodeVerdict::Accepted, Some(id)) => {
            sqlx::query("UPDATE otp_codes SET used_at = ? WHERE id = ?")
                .bind(stamp(now))
                .bind(id)
                .execute(&mut *conn)
                .await?;
        }
        (CodeVerdict::Wrong, Some(id)) => {
            sqlx::query("UPDATE otp_codes SET wrong_attempts = wrong_attempts + 1 WHERE id = ?")
                .bind(id)
                .execute(&mut *conn)
                .await?;
            count_event(conn, ip_bucket, now).await?;
        }
        _ => count_event(conn, ip_bucket, now).await?,
    }
    Ok(Some(verdict))
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

fn actor_of(outcome: &CodeOutcome, phone_token: &[u8]) -> String {
    match outcome {
        CodeOutcome::Accepted { account_id, .. } => format!("account:{account_id}"),
        _ => format!("phone:{}", hex::encode(&phone_token[..6])),
    }
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

async fn account_for(
    conn: &mut SqliteConnection,
    sealer: &Sealer,
    phone_token: &[u8],
    phone: &str,
    new_id: &str,
    now: DateTime<Utc>,
) -> Result<(String, bool)> {
    let found: Option<String> = sqlx::query_scalar("SELECT id FROM accounts WHERE phone_token = ?")
        .bind(phone_token)
        .fetch_optional(&mut *conn)
        .await?;
    if let Some(id) = found {
        return Ok((id, false));
    }
    sqlx::query("INSERT INTO accounts (id, phone_token, phone, created_at) VALUES (?, ?, ?, ?)")
        .bind(new_id)
        .bind(phone_token)
        .bind(sealer.seal("account_phone", &Some(phone.to_owned())))
        .bind(stamp(now))
        .execute(&mut *conn)
        .await?;
    Ok((new_id.to_owned(), true))
}

async fn insert_session(
    conn: &mut SqliteConnection,
    account_id: &str,
    session: &NewSession,
    now: DateTime<Utc>,
    step_up_at: Option<DateTime<Utc>>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO sessions (token_hash, account_id, csrf_hash, created_at, last_seen_at, step_up_at) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(&session.token_hash)
    .bind(account_id)
    .bind(&session.csrf_hash)
    .bind(stamp(now))
    .bind(stamp(now))
    .bind(step_up_at.map(stamp))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn revoke_session(conn: &mut SqliteConnection, token_hash: &[u8], now: DateTime<Utc>) -> Result<()> {
    sqlx::query("UPDATE sessions SET revoked_at = coalesce(revoked_at, ?) WHERE token_hash = ?")
        .bind(stamp(now))
        .bind(token_hash)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn add_member(
    conn: &mut SqliteConnection,
    sealer: &Sealer,
    account_id: &str,
    member: &NewMember,
    now: DateTime<Utc>,
) -> Result<PatientResult> {
    let exists = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql);
    if exists("SELECT count(*) FROM members WHERE account_id = ? AND id_token = ?")
        .bind(account_id)
        .bind(&member.id_token)
        .fetch_one(&mut *conn)
        .await?
        > 0
    {
        return Ok(PatientResult::Refused(MemberConflict::Duplicate));
    }
    if member.relation == Relation::Myself {
        if exists("SELECT count(*) FROM members WHERE account_id = ? AND relation = 'self'")
            .bind(account_id)
            .fetch_one(&mut *conn)
            .await?
            > 0
        {
            return Ok(PatientResult::Refused(MemberConflict::SecondSelf));
        }
        if exists("SELECT count(*) FROM members WHERE id_token = ? AND relation = 'self'")
            .bind(&member.id_token)
            .fetch_one(&mut *conn)
            .await?
            > 0
        {
            return Ok(PatientResult::Refused(MemberConflict::SelfElsewhere));
        }
    }
    sqlx::query(
        "INSERT INTO members (id, account_id, relation, name, id_number, id_token, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&member.id)
    .bind(account_id)
    .bind(member.relation.as_str())
    .bind(sealer.seal("member_name", &Some(member.name.clone())))
    .bind(sealer.seal("member_id_number", &Some(member.id_number.clone())))
    .bind(&member.id_token)
    .bind(stamp(now))
    .execute(&mut *conn)
    .await?;
    Ok(PatientResult::Done)
}

pub(super) async fn count_event(conn: &mut SqliteConnection, bucket: &[u8], now: DateTime<Utc>) -> Result<()> {
    sqlx::query("INSERT INTO rate_events (bucket, at) VALUES (?, ?)")
        .bind(bucket)
        .bind(stamp(now))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub(super) async fn events_since(conn: &mut SqliteConnection, bucket: &[u8], since: &str) -> Result<u32> {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM rate_events WHERE bucket = ? AND at > ?")
        .bind(bucket)
        .bind(since)
        .fetch_one(&mut *conn)
        .await?;
    Ok(n as u32)
}
