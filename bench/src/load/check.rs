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
    /// Logins acknowledged to the clients (code accepted, session cookie received).
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
    /// A login the clients completed twice, a rendezvous with more than one right-code
    /// audit row, or more desktop sessions than consumed rendezvous.
    pub duplicated: usize,
    /// Logins the server completed (consumed rendezvous) whose answer never reached the
    /// client: possible only when an instance stops mid-request.
    pub unacknowledged: usize,
    /// Rendezvous in the database the clients never heard of (the creation's answer lost).
    pub unacknowledged_created: usize,
    /// Rendezvous in `created`/`claimed`/`approved` not explained by a failed login.
    pub stuck: usize,
    /// What went wrong, for the report.
    pub problems: Vec<String>,
}

impl Check {
    /// Nothing lost, duplicated, stuck or unaccounted for (the bench: no instance stops).
    pub fn passed(&self) -> bool {
        self.soak_passed()
            && self.unacknowledged == 0
            && self.unacknowledged_created == 0
            && self.stuck == 0
            && self.problems.is_empty()
    }

    /// Nothing acknowledged then lost, nothing duplicated (the soak: an instance restarts,
    /// so a request in flight may be done by the server without the client knowing).
    pub fn soak_passed(&self) -> bool {
        self.lost == 0 && self.duplicated == 0
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
        }
        // Repeated audit rows are counted below, over every rendezvous; a session token is
        // the table's key, so it cannot repeat.
    }
    // A rendezvous audited twice, or more sessions than consumed rendezvous: one login
    // produced two sessions.
    let twice: usize = audit_count.values().map(|n| n.saturating_sub(1)).sum();
    let extra_sessions = c.db_sessions.saturating_sub(c.db_consumed);
    if twice > 0 || extra_sessions > 0 {
        c.problems.push(format!(
            "{twice} right-code audit row(s) repeated, {extra_sessions} session(s) beyond the consumed rendezvous"
        ));
    }
    c.duplicated += twice + extra_sessions;
    // Consumed by the server, never acknowledged to a client.
    c.unacknowledged = states
        .iter()
        .filter(|(rid, s)| *s == "consumed" && !seen_rids.contains(rid.as_str()))
        .count();
    c.unacknowledged_created = c.db_rendezvous.saturating_sub(created as usize);
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
