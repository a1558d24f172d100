"""The server's SQLite database after the schemathesis run (tests/api/schemathesis.sh), the
server stopped: nothing left half-changed. Each check is a property of the schema
(server/src/store*.rs) that every transaction of the store must keep, whatever requests
came in; a request refused half-way must have changed nothing, or everything.

    python3 tests/api/store_invariants.py DB STARTED FINISHED [--logged-in]
        # STARTED, FINISHED: Unix seconds of the run; --logged-in: a run also fuzzed as the
        # PIN holder (tests/api/pin_session.py) and must have got past the login

Prints what it checked and how many rows; exits 1 on any broken invariant."""

import sqlite3
import sys

# The codes of ErrorCode (core/src/flows/wire.rs), as the audit stores a refusal's outcome.
ERROR_CODES = {
    "bad_request", "not_found", "expired", "replayed", "already_claimed", "wrong_state",
    "bad_signature", "untrusted_certificate", "certificate_expired", "certificate_revoked",
    "unknown_identity", "wrong_code", "too_many_attempts", "wrong_device", "context_mismatch",
    "wrong_number", "not_this_browser", "rate_limited", "internal", "already_registered",
}
RENDEZVOUS_STATES = {"created", "claimed", "approved", "denied", "consumed", "aborted", "expired"}
APPROVAL_STATES = {"pending", "approved", "denied", "expired", "consumed", "aborted"}
CODE_TRIES = 3  # server/src/api.rs CODE_TRIES


def main():
    db, started, finished = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    broken = checks(db, started, finished)
    if "--logged-in" in sys.argv[4:]:
        broken += logged_in(db)
    if broken:
        print(f"{len(broken)} invariants broken")
        sys.exit(1)
    print("store invariants: all hold")
    self_test(db, started, finished)


def logged_in(db):
    """The run with the holder's session and the relying party's key reached the steps behind
    them: a PIN session was opened (pin_session.py) and the fuzzer's requests with it were
    served, not refused with "log in first" (an OTP seed shown; a one-time code for the
    phone); the client assertions (client_auth.py) were accepted."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    q = lambda sql: con.execute(sql).fetchone()[0]
    broken = []
    for what, n in [
        ("a PIN login opened a session", q("SELECT COUNT(*) FROM audit WHERE kind = 'abroad_login' AND outcome = 'ok'")),
        ("an OTP seed was shown to the session", q("SELECT COUNT(*) FROM audit WHERE kind = 'abroad_otp_enrol' AND outcome = 'ok'")),
        ("a phone enrolment code was shown to the session", q("SELECT COUNT(*) FROM audit WHERE kind = 'abroad_enrol_code' AND outcome = 'ok'")),
        # The relying party (client_auth.py): its assertions verified, each jti kept once.
        ("the client's assertions were accepted", q("SELECT COUNT(*) FROM oidc_used WHERE scope = 'assertion'")),
        ("an introspection got past client authentication", q("SELECT COUNT(*) FROM audit WHERE kind = 'oidc_introspection' AND outcome IN ('active', 'inactive')")),
    ]:
        print(f"{'ok ' if n else 'BROKEN'} logged-in run: {what} ({n} rows)")
        if not n:
            broken.append(f"logged-in run: {what}")
    # At most one live code and one pending seed per identity (the tables' rule: a new one
    # replaces the old, in the same transaction).
    rows = con.execute("""SELECT identity_id, COUNT(*) FROM abroad_enrol_codes
                          GROUP BY identity_id HAVING COUNT(*) > 1""").fetchall()
    print(f"{'ok ' if not rows else 'BROKEN'} one enrolment code per identity")
    if rows:
        broken.append("one enrolment code per identity")
    con.close()
    return broken


def self_test(db, started, finished):
    """The checks must catch what they are about: a copy of the database with a claimed
    rendezvous stripped of its claim record, an approval decided without a device and a
    session of an identity that does not exist."""
    import shutil
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        copy = f"{d}/tampered.sqlite"
        shutil.copy(db, copy)
        con = sqlite3.connect(copy)
        con.execute("UPDATE rendezvous SET state = 'claimed' WHERE rid = (SELECT MIN(rid) FROM rendezvous)")
        con.execute("UPDATE approvals SET state = 'approved', decided = 1 WHERE id = (SELECT MIN(id) FROM approvals)")
        con.execute("INSERT INTO sessions (token_hash, identity_id, level, kind, created, expires) "
                    "VALUES (x'00', 'nobody', 3, 'card', 1, 2)")
        con.commit()
        con.close()
        print("self-test on a tampered copy:")
        broken = checks(copy, started, finished)
    expected = {"foreign keys (PRAGMA foreign_key_check)",
                "a claimed (or later) rendezvous has its claim record (token, phone, deadline)",
                "a decided approval names when and which device"}
    if not expected <= set(broken):
        print(f"self-test: the checks missed {sorted(expected - set(broken))}")
        sys.exit(1)
    print("self-test: the tampered copy was caught")


def checks(db, started, finished):
    """The names of the broken invariants (printed as they are checked)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    q = lambda sql, *a: con.execute(sql, a).fetchall()
    tables = {r["name"] for r in q("SELECT name FROM sqlite_master WHERE type = 'table'")}
    broken = []

    def check(what, rows):
        rows = list(rows)
        print(f"{'ok ' if not rows else 'BROKEN'} {what}" + (f": {len(rows)} rows" if rows else ""))
        for r in rows[:5]:
            print("    ", dict(r) if isinstance(r, sqlite3.Row) else r)
        if rows:
            broken.append(what)

    # The file itself, and every declared REFERENCES (identities above all): no session,
    # device, card, approval, token or PIN account whose identity is gone or never was.
    check("SQLite integrity_check", [r for r in q("PRAGMA integrity_check") if r[0] != "ok"])
    check("foreign keys (PRAGMA foreign_key_check)", q("PRAGMA foreign_key_check"))

    # Rendezvous: each state carries exactly what reaching it wrote, in one transaction.
    check("rendezvous states are known",
          [r for r in q("SELECT rid, state FROM rendezvous") if r["state"] not in RENDEZVOUS_STATES])
    check("a created rendezvous has no claim, identity or code",
          q("""SELECT rid FROM rendezvous WHERE state = 'created' AND (claim_token_hash IS NOT NULL
               OR device_name IS NOT NULL OR identity_id IS NOT NULL OR code_hash IS NOT NULL)"""))
    check("a claimed (or later) rendezvous has its claim record (token, phone, deadline)",
          q("""SELECT rid, state FROM rendezvous WHERE state IN ('claimed', 'approved', 'denied',
               'consumed') AND (claim_token_hash IS NULL OR device_name IS NULL
               OR claim_expires IS NULL)"""))
    check("an approved or consumed rendezvous has its identity, level and code",
          q("""SELECT rid, state FROM rendezvous WHERE state IN ('approved', 'consumed')
               AND (identity_id IS NULL OR level IS NULL OR code_hash IS NULL
               OR code_expires IS NULL)"""))
    check("code tries stay within 0..CODE_TRIES",
          q("SELECT rid, code_tries FROM rendezvous WHERE code_tries < 0 OR code_tries > ?",
            CODE_TRIES))
    check("a rendezvous expires after it was created",
          q("SELECT rid FROM rendezvous WHERE expires <= created"))

    # Approvals (§3): decided once, by a device, only for an identity that exists.
    check("approval states are known",
          [r for r in q("SELECT id, state FROM approvals") if r["state"] not in APPROVAL_STATES])
    check("a pending approval is undecided (no decision time, no device)",
          q("""SELECT id FROM approvals WHERE state = 'pending'
               AND (decided IS NOT NULL OR device_id IS NOT NULL)"""))
    check("a decided approval names when and which device",
          q("""SELECT id, state FROM approvals WHERE state IN ('approved', 'denied', 'consumed')
               AND (decided IS NULL OR device_id IS NULL)"""))
    check("a request for an unknown codice fiscale is never approved, denied or consumed",
          q("""SELECT id, state FROM approvals WHERE identity_id IS NULL
               AND state IN ('approved', 'denied', 'consumed')"""))
    check("the number shown is one of the choices offered",
          [r for r in q("SELECT id, number, choices FROM approvals")
           if str(r["number"]) not in r["choices"].replace("[", "").replace("]", "").split(",")])

    # Sessions: each opened with its identity (foreign keys above) and, when the method is
    # recorded apart, with its session.
    check("a session lives after it was created",
          q("SELECT identity_id FROM sessions WHERE expires <= created"))
    if "session_methods" in tables:
        check("a live session method belongs to a session",
              q("""SELECT m.method FROM session_methods m LEFT JOIN sessions s
                   ON s.token_hash = m.token_hash WHERE s.token_hash IS NULL
                   AND m.expires > ?""", finished))

    # Challenges: single use, one purpose each.
    check("challenge purposes are known",
          q("""SELECT id, purpose FROM challenges WHERE purpose NOT IN
               ('login', 'desktop_approve', 'device_enroll', 'register')"""))
    check("a desktop-approval challenge names its rendezvous",
          q("SELECT id FROM challenges WHERE purpose = 'desktop_approve' AND rid IS NULL"))

    # The audit trail: every refusal the API audits is written with the request, by the
    # server's own clock during the run, from the address that sent it (loopback here).
    audit = q("SELECT at, kind, subject, outcome, client FROM audit")
    check("audit rows were written during the run",
          [r for r in audit if not started - 5 <= r["at"] <= finished + 5])
    check("audit rows name the loopback client",
          [r for r in audit if r["client"] not in ("127.0.0.1", "::1")
           and not r["client"].startswith("operator")])
    check("audit rows have a kind and an outcome",
          [r for r in audit if not r["kind"] or not r["outcome"]])
    refusals = [r for r in audit if r["outcome"] in ERROR_CODES]
    # The kinds audited through AppState::refuse (server/src/api.rs) record the ErrorCode the
    # client got, or ok when the step succeeded: never a half-written outcome.
    refused_kinds = {"approval_decision", "approval_poll", "card_login", "challenge",
                     "device_enroll", "registration", "rendezvous_approve", "rendezvous_claim",
                     "rendezvous_code", "rendezvous_deny", "rendezvous_poll"}
    check("refusals are audited with the error code the client got, or ok",
          [r for r in audit if r["kind"] in refused_kinds
           and r["outcome"] not in ERROR_CODES | {"ok"}])
    # Each rendezvous created was audited once, and each audited creation is in the table
    # (within a run shorter than a rendezvous' life nothing is pruned).
    if finished - started < 120:
        created = sum(1 for r in audit if r["kind"] == "rendezvous_create" and r["outcome"] == "ok")
        rows = q("SELECT COUNT(*) FROM rendezvous")[0][0]
        check("one audited creation per rendezvous row",
              [] if created == rows else [f"{created} audited, {rows} rows"])

    counts = {t: q(f"SELECT COUNT(*) FROM {t}")[0][0] for t in
              ("rendezvous", "approvals", "challenges", "audit", "identities", "sessions")}
    print("rows:", ", ".join(f"{t} {n}" for t, n in counts.items()),
          f"(refusals audited: {len(refusals)})")
    # The run must have reached the store, or the checks above proved nothing.
    for t in ("rendezvous", "approvals", "challenges", "audit"):
        if counts[t] == 0:
            broken.append(f"no {t} row: the run did not exercise the store")
            print(f"BROKEN no {t} row: the run did not exercise the store")
    con.close()
    return broken


if __name__ == "__main__":
    main()
