//! The lost/duplicated check: after the server stopped, its database must hold exactly
//! what the clients saw — every completed login one consumed rendezvous, one audited right
//! code and one session (the very token the browser got), nothing more, and no rendezvous
//! left half-way except those of logins that failed.

use std::collections::{BTreeMap, HashMap, HashSet};

use sqlx::{Connection, Row};

use super::Res;

/// The verdict, with the counts it rests on.
#[derive(Debug, Default)]
pub struct Check {
    /// Logins the clients completed (code accepted, session confirmed).
    pub completed: usize,
    /// Rendezvous the clients created.
    pub created: u64,
    /// Rows in the database.
    pub db_rendezvous: usize,
    pub db_consumed: usize,
    pub db_sessions: usize,
    pub db_code_audits: usize,
    /// Completed logins missing their consumed rendezvous, session or audit row.
    pub lost: usize,
    /// Extra or repeated rendezvous, sessions or audit rows.
    pub duplicated: usize,
    /// Rendezvous in `created`/`claimed`/`approved` not explained by a failed login.
    pub stuck: usize,
    /// What went wrong, for the report.
    pub problems: Vec<String>,
}

impl Check {
    /// Nothing lost, duplicated or stuck.
    pub fn passed(&self) -> bool {
        self.lost == 0 && self.duplicated == 0 && self.stuck == 0 && self.problems.is_empty()
    }
}

/// Compare the clients' record with the database at `url` (`desktop` sessions only: the
/// device enrolments open none).
pub async fn check(
    url: &str,
    created: u64,
    completed: &[(String, [u8; 32])],
    failed_rids: &[String],
) -> Res<Check> {
    let mut conn = sqlx::AnyConnection::connect(url)
        .await
        .map_err(|e| format!("check: {e}"))?;
    let q = |e: sqlx::Error| format!("check: {e}");
    let states: HashMap<String, String> = sqlx::query("SELECT rid, state FROM rendezvous")
        .fetch_all(&mut conn)
        .await
        .map_err(q)?
        .iter()
        .map(|r| Ok((r.try_get("rid")?, r.try_get("state")?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(q)?;
    let sessions: Vec<Vec<u8>> =
        sqlx::query("SELECT token_hash FROM sessions WHERE kind = 'desktop'")
            .fetch_all(&mut conn)
            .await
            .map_err(q)?
            .iter()
            .map(|r| r.try_get("token_hash"))
            .collect::<Result<_, _>>()
            .map_err(q)?;
    // The right code's audit row names "rid identity".
    let audits: Vec<String> =
        sqlx::query("SELECT subject FROM audit WHERE kind = 'rendezvous_code' AND outcome = 'ok'")
            .fetch_all(&mut conn)
            .await
            .map_err(q)?
            .iter()
            .map(|r| r.try_get("subject"))
            .collect::<Result<_, _>>()
            .map_err(q)?;
    let _ = conn.close().await;

    let mut c = Check {
        completed: completed.len(),
        created,
        db_rendezvous: states.len(),
        db_consumed: states.values().filter(|s| *s == "consumed").count(),
        db_sessions: sessions.len(),
        db_code_audits: audits.len(),
        ..Check::default()
    };
    let mut session_count: HashMap<&[u8], usize> = HashMap::new();
    for s in &sessions {
        *session_count.entry(s.as_slice()).or_default() += 1;
    }
    let mut audit_count: HashMap<&str, usize> = HashMap::new();
    for a in &audits {
        let rid = a.split(' ').next().unwrap_or("");
        *audit_count.entry(rid).or_default() += 1;
    }
    let mut seen_rids = HashSet::new();
    let mut seen_tokens = HashSet::new();
    for (rid, token) in completed {
        if !seen_rids.insert(rid.as_str()) || !seen_tokens.insert(token) {
            c.duplicated += 1;
            c.problems
                .push(format!("{rid}: completed twice by the clients"));
            continue;
        }
        let consumed = states.get(rid).is_some_and(|s| s == "consumed");
        let sessions = session_count.get(token.as_slice()).copied().unwrap_or(0);
        let audited = audit_count.get(rid.as_str()).copied().unwrap_or(0);
        if !consumed || sessions == 0 || audited == 0 {
            c.lost += 1;
            c.problems.push(format!(
                "{rid}: state {:?}, {sessions} session(s), {audited} audit row(s)",
                states.get(rid)
            ));
        } else if sessions > 1 || audited > 1 {
            c.duplicated += 1;
            c.problems.push(format!(
                "{rid}: {sessions} session(s), {audited} audit row(s)"
            ));
        }
    }
    // Whatever the database has beyond the completed logins is duplicated (or phantom).
    let extra = |db: usize| db.saturating_sub(completed.len());
    c.duplicated += extra(c.db_consumed)
        .max(extra(c.db_sessions))
        .max(extra(c.db_code_audits));
    if c.db_rendezvous as u64 != created {
        c.problems.push(format!(
            "{} rendezvous in the database, {created} created by the clients",
            c.db_rendezvous
        ));
    }
    let failed: HashSet<&str> = failed_rids.iter().map(String::as_str).collect();
    let mut stuck_states = BTreeMap::<&str, usize>::new();
    for (rid, state) in &states {
        let live = matches!(state.as_str(), "created" | "claimed" | "approved");
        if live && !failed.contains(rid.as_str()) {
            *stuck_states.entry(state.as_str()).or_default() += 1;
            c.stuck += 1;
        }
    }
    if c.stuck > 0 {
        c.problems
            .push(format!("rendezvous left half-way: {stuck_states:?}"));
    }
    Ok(c)
}
