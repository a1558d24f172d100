//! The store on both backends: transitions are compare-and-set, so racing tasks (as two
//! server instances would) never both win.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use cie_core::flows::wire::{ChallengePurpose, RendezvousState};
use common::*;
use companion_server::card::VerifiedCard;
use companion_server::store::{
    AuditEntry, ChallengeRecord, Claim, IssuedCode, NewRendezvous, NewSession, SqlStore, Store,
};

const NOW: u64 = 1_800_000_000;
const RACERS: usize = 16;

fn card() -> VerifiedCard {
    VerifiedCard {
        codice_fiscale: TEST_CF.into(),
        given_name: "MARIA".into(),
        surname: "TESTER".into(),
        issuer: "CN=test".into(),
        serial: "1003".into(),
    }
}

fn audit(kind: &'static str, subject: &str) -> AuditEntry {
    AuditEntry::new(kind, subject, "ok", "127.0.0.1")
}

fn rendezvous(rid: &str) -> NewRendezvous {
    NewRendezvous {
        rid: rid.into(),
        secret: [1; 16],
        bind_hash: [2; 32],
        context_json: "{}".into(),
        context_hash: "h".into(),
        created: NOW,
        expires: NOW + 120,
        client: "127.0.0.1".into(),
    }
}

fn session(n: u8) -> NewSession {
    NewSession {
        token_hash: [n; 32],
        level: 3,
        kind: "app",
        expires: NOW + 3600,
    }
}

async fn stores() -> Vec<(&'static str, Arc<SqlStore>, TestDb)> {
    let mut v = Vec::new();
    for db in backends().await {
        let store = Arc::new(SqlStore::connect(&db.url).await.unwrap());
        v.push((db.name, store, db));
    }
    v
}

#[tokio::test]
async fn racing_claims_have_one_winner() {
    for (name, store, _db) in stores().await {
        store
            .create_rendezvous(&rendezvous("r1"), 100, &audit("create", "r1"))
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..RACERS {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let claim = Claim {
                    claim_token_hash: [i as u8; 32],
                    device_name: format!("phone {i}"),
                    device_id: None,
                    claim_expires: NOW + 90,
                };
                store
                    .claim("r1", &claim, &audit("claim", "r1"), NOW)
                    .await
                    .unwrap()
            }));
        }
        let mut wins = 0;
        for t in tasks {
            wins += usize::from(t.await.unwrap());
        }
        assert_eq!(wins, 1, "{name}");
        let r = store.rendezvous("r1", NOW).await.unwrap().unwrap();
        assert_eq!(r.state, RendezvousState::Claimed);
        // Every attempt is in the audit trail: one ok, the rest refused.
        let log = store.audit_log().await.unwrap();
        let claims: Vec<_> = log.iter().filter(|e| e.0 == "claim").collect();
        assert_eq!(claims.len(), RACERS, "{name}");
        assert_eq!(claims.iter().filter(|e| e.2 == "ok").count(), 1, "{name}");
    }
}

#[tokio::test]
async fn racing_logins_consume_a_challenge_once() {
    for (name, store, _db) in stores().await {
        let c = ChallengeRecord {
            id: "c1".into(),
            purpose: ChallengePurpose::Login,
            challenge: "x".into(),
            rid: None,
            expires: NOW + 120,
            used: false,
        };
        store
            .insert_challenge(&c, &audit("challenge", "c1"), NOW)
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..RACERS {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .card_login("c1", &card(), &session(i as u8), &audit("login", "c1"), NOW)
                    .await
                    .unwrap()
                    .is_some()
            }));
        }
        let mut wins = 0;
        for t in tasks {
            wins += usize::from(t.await.unwrap());
        }
        assert_eq!(wins, 1, "{name}");
        assert!(store.challenge("c1").await.unwrap().unwrap().used);
    }
}

#[tokio::test]
async fn racing_code_guesses_spend_one_try_each() {
    for (name, store, _db) in stores().await {
        store
            .create_rendezvous(&rendezvous("r2"), 100, &audit("create", "r2"))
            .await
            .unwrap();
        let claim = Claim {
            claim_token_hash: [9; 32],
            device_name: "p".into(),
            device_id: None,
            claim_expires: NOW + 90,
        };
        assert!(
            store
                .claim("r2", &claim, &audit("claim", "r2"), NOW)
                .await
                .unwrap()
        );
        let c = ChallengeRecord {
            id: "c2".into(),
            purpose: ChallengePurpose::DesktopApprove,
            challenge: "y".into(),
            rid: Some("r2".into()),
            expires: NOW + 120,
            used: false,
        };
        store
            .insert_challenge(&c, &audit("challenge", "c2"), NOW)
            .await
            .unwrap();
        let code = IssuedCode {
            code_hash: [5; 32],
            expires: NOW + 120,
            tries: 3,
        };
        // A wrong claim token changes nothing.
        assert!(
            store
                .approve_with_card(
                    "r2",
                    &[8; 32],
                    "c2",
                    &card(),
                    &code,
                    &audit("approve", "r2"),
                    NOW
                )
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            !store.challenge("c2").await.unwrap().unwrap().used,
            "{name}: rolled back"
        );
        assert!(
            store
                .approve_with_card(
                    "r2",
                    &[9; 32],
                    "c2",
                    &card(),
                    &code,
                    &audit("approve", "r2"),
                    NOW
                )
                .await
                .unwrap()
                .is_some()
        );
        // Everyone read 3 tries left: exactly one guess may spend that try.
        let mut tasks = Vec::new();
        for _ in 0..RACERS {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .wrong_code("r2", 3, &audit("code", "r2"), NOW)
                    .await
                    .unwrap()
            }));
        }
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        assert_eq!(
            results.iter().filter(|r| **r == Some(2)).count(),
            1,
            "{name}"
        );
        assert_eq!(results.iter().filter(|r| r.is_none()).count(), RACERS - 1);
        // Two more wrong guesses abort; the right code is then refused.
        assert_eq!(
            store
                .wrong_code("r2", 2, &audit("code", "r2"), NOW)
                .await
                .unwrap(),
            Some(1)
        );
        assert_eq!(
            store
                .wrong_code("r2", 1, &audit("code", "r2"), NOW)
                .await
                .unwrap(),
            Some(0)
        );
        let r = store.rendezvous("r2", NOW).await.unwrap().unwrap();
        assert_eq!(
            (r.state, r.abort_reason.as_deref()),
            (RendezvousState::Aborted, Some("too_many_codes"))
        );
        assert!(
            store
                .consume_with_code("r2", 0, &session(1), &audit("code", "r2"), NOW)
                .await
                .unwrap()
                .is_none()
        );
    }
}

#[tokio::test]
async fn time_expires_a_rendezvous_on_read() {
    for (name, store, _db) in stores().await {
        store
            .create_rendezvous(&rendezvous("r3"), 100, &audit("create", "r3"))
            .await
            .unwrap();
        let r = store.rendezvous("r3", NOW + 119).await.unwrap().unwrap();
        assert_eq!(r.state, RendezvousState::Created, "{name}");
        let r = store.rendezvous("r3", NOW + 120).await.unwrap().unwrap();
        assert_eq!(r.state, RendezvousState::Expired, "{name}");
    }
}
