//! `doctor`: what breaks a desktop login with the card, checked one line at a time, each
//! failure with what to do next in English and Italian:
//! - pcscd reachable (a PC/SC context), readers listed;
//! - each card in a reader recognised as the PKCS#11 module recognises it (its
//!   [`Token::open`], on the core's IAS and CNS applets): no PIN asked and no try spent (the
//!   PIN's tries are read with a VERIFY without data); the holder shown masked;
//! - the module registered in the NSS database (`pkcs11.txt`, read without NSS tools) and
//!   the p11-kit module file;
//! - `--server URL`: which TLS versions the server offers, whether it asks for a client
//!   certificate, and under which version a browser would answer it (the CIE signs only
//!   PKCS#1 v1.5, so it logs in over TLS 1.2 only).

use std::io::IsTerminal;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cie_companion_pkcs11::card::Token;
use cie_core::applets::cns;
use cie_core::applets::ias::certificate::CieCertificate;
use cie_core::applets::ias::secure::PinStatus;
use cie_core::transport::TransportError;
use cie_readers::ReaderError;
use cie_readers::pcsc::{self, PcscTransport};
use cryptoki_sys as ck;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientConnection, ResolvesClientCert};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, ProtocolVersion, SignatureScheme};
use serde::Serialize;

use crate::error::CliError;
use crate::pkcs11_install as install;

/// Options of `doctor`.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// Also check this card-login address (https://HOST[:PORT][/path]): TLS versions and
    /// whether it asks for a client certificate.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// The NSS database to check (default: $HOME/.pki/nssdb).
    #[arg(long, value_name = "DIR")]
    pub nssdb: Option<PathBuf>,
    /// The p11-kit module directory to check (default: $HOME/.config/pkcs11/modules).
    #[arg(long, value_name = "DIR")]
    pub p11kit_dir: Option<PathBuf>,
    /// Plain ASCII marks ([OK], [FAIL]) even on a terminal.
    #[arg(long)]
    pub plain: bool,
    /// One JSON object for support tools instead of text.
    #[arg(long, conflicts_with = "plain")]
    pub json: bool,
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Fine.
    Ok,
    /// Works, with a caveat; does not change the exit status.
    Warn,
    /// Breaks the login; the exit status is non-zero.
    Fail,
    /// Just information (an empty reader).
    Info,
}

/// One line of the checklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked: pcscd, readers, card, nss, p11kit, server.
    pub check: &'static str,
    /// The outcome.
    pub status: Status,
    /// What was found, in English.
    pub en: String,
    /// What was found, in Italian.
    pub it: String,
    /// What to do, in English (failures and warnings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix_en: Option<String>,
    /// What to do, in Italian.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix_it: Option<String>,
}

impl Check {
    fn new(
        check: &'static str,
        status: Status,
        en: impl Into<String>,
        it: impl Into<String>,
    ) -> Self {
        Self {
            check,
            status,
            en: en.into(),
            it: it.into(),
            fix_en: None,
            fix_it: None,
        }
    }

    fn fix(mut self, en: impl Into<String>, it: impl Into<String>) -> Self {
        self.fix_en = Some(en.into());
        self.fix_it = Some(it.into());
        self
    }

    /// The line(s) as printed: `✓ check: en / it`, then the fixes, indented.
    pub fn render(&self, plain: bool) -> String {
        let (mark, arrow) = match (self.status, plain) {
            (Status::Ok, false) => ("✓", "→"),
            (Status::Warn, false) => ("⚠", "→"),
            (Status::Fail, false) => ("✗", "→"),
            (Status::Info, false) => ("•", "→"),
            (Status::Ok, true) => ("[OK]  ", "->"),
            (Status::Warn, true) => ("[WARN]", "->"),
            (Status::Fail, true) => ("[FAIL]", "->"),
            (Status::Info, true) => ("[INFO]", "->"),
        };
        let mut out = format!("{mark} {}: {} / {}\n", self.check, self.en, self.it);
        if let (Some(en), Some(it)) = (&self.fix_en, &self.fix_it) {
            out.push_str(&format!("    {arrow} {en}\n    {arrow} {it}\n"));
        }
        out
    }
}

/// Prints each check as it is made (reading a card takes seconds), or collects them for
/// JSON.
struct Report {
    checks: Vec<Check>,
    print: Option<bool>,
}

impl Report {
    fn push(&mut self, c: Check) {
        if let Some(plain) = self.print {
            print!("{}", c.render(plain));
        }
        self.checks.push(c);
    }
}

/// `doctor`: exit status 0 when no check failed.
pub fn run(args: DoctorArgs) -> Result<(), CliError> {
    let plain = args.plain || !std::io::stdout().is_terminal();
    let mut report = Report {
        checks: Vec::new(),
        print: (!args.json).then_some(plain),
    };
    let cie_present = pcsc_checks(&mut report);
    let db = install::nssdb_dir(args.nssdb.as_deref())?;
    report.push(nss_check(&db));
    let kit = install::p11kit_dir(args.p11kit_dir.as_deref())?;
    report.push(p11kit_check(&kit));
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        for c in browser_checks(std::path::Path::new("/"), std::path::Path::new(&home)) {
            report.push(c);
        }
    }
    if let Some(url) = &args.server {
        report.push(server_check(url, cie_present));
    }
    let failed = report
        .checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .count();
    if args.json {
        let out = serde_json::json!({ "ok": failed == 0, "checks": report.checks });
        println!("{out}");
    }
    if failed > 0 {
        return Err(CliError::Doctor { failed });
    }
    if !args.json {
        let warned = report
            .checks
            .iter()
            .filter(|c| c.status == Status::Warn)
            .count();
        if warned == 0 {
            println!("All checks passed. / Tutti i controlli superati.");
        } else {
            println!(
                "All checks passed, {warned} warning(s) above. / Tutti i controlli superati, {warned} avviso/i sopra."
            );
        }
    }
    Ok(())
}

const INSERT_EN: &str = "insert the CIE or CNS in the reader (chip first, contacts facing the reader's) and run `cie-companion doctor` again";
const INSERT_IT: &str = "inserisci la CIE o la CNS nel lettore (prima il chip, contatti verso quelli del lettore) e riesegui `cie-companion doctor`";

/// pcscd, readers, and each card; whether a CIE is in a reader.
fn pcsc_checks(report: &mut Report) -> bool {
    let ctx = match pcsc::establish() {
        Ok(ctx) => ctx,
        Err(e) => {
            let why = match e {
                ReaderError::Unavailable { reason } => reason,
                other => other.to_string(),
            };
            report.push(
                Check::new(
                    "pcscd",
                    Status::Fail,
                    format!("the PC/SC service (pcscd) is not reachable ({why})"),
                    "il servizio PC/SC (pcscd) non risponde",
                )
                .fix(
                    "start it: `sudo systemctl start pcscd.socket pcscd`; not installed? `sudo apt install pcscd` (Fedora: `sudo dnf install pcsc-lite`)",
                    "avvialo: `sudo systemctl start pcscd.socket pcscd`; se manca: `sudo apt install pcscd` (Fedora: `sudo dnf install pcsc-lite`)",
                ),
            );
            return false;
        }
    };
    report.push(Check::new(
        "pcscd",
        Status::Ok,
        "the PC/SC service (pcscd) is running",
        "il servizio PC/SC (pcscd) è attivo",
    ));
    let readers = match pcsc::list_readers_in(&ctx) {
        Ok(r) => r,
        Err(e) => {
            report.push(
                Check::new(
                    "readers",
                    Status::Fail,
                    format!("the readers could not be listed ({e})"),
                    "impossibile elencare i lettori",
                )
                .fix(
                    "restart pcscd: `sudo systemctl restart pcscd`",
                    "riavvia pcscd: `sudo systemctl restart pcscd`",
                ),
            );
            return false;
        }
    };
    if readers.is_empty() {
        report.push(
            Check::new(
                "readers",
                Status::Fail,
                "no card reader found",
                "nessun lettore di carte trovato",
            )
            .fix(
                "plug in the reader; if it still does not show, install its driver (`sudo apt install libccid`) and restart pcscd",
                "collega il lettore; se non compare, installa il driver (`sudo apt install libccid`) e riavvia pcscd",
            ),
        );
        return false;
    }
    let names: Vec<&str> = readers.iter().map(|r| r.name.as_str()).collect();
    report.push(Check::new(
        "readers",
        Status::Ok,
        format!("{} reader(s): {}", readers.len(), names.join("; ")),
        format!("{} lettore/i", readers.len()),
    ));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut recognised = 0;
    let mut cie = false;
    for r in &readers {
        if r.card_present == Some(false) {
            report.push(Check::new(
                "card",
                Status::Info,
                format!("{}: no card", r.name),
                format!("{}: nessuna carta", r.name),
            ));
            continue;
        }
        let (check, kind) = card_check(&ctx, &r.name, now);
        recognised += usize::from(kind.is_some());
        cie |= kind == Some("CIE");
        report.push(check);
    }
    if recognised == 0 {
        report.push(
            Check::new(
                "card",
                Status::Fail,
                "no CIE or CNS in any reader",
                "nessuna CIE o CNS nei lettori",
            )
            .fix(INSERT_EN, INSERT_IT),
        );
    }
    cie
}

/// The card in `reader`: its kind ("CIE", "CNS") when the module would show a token.
fn card_check(ctx: &pcsc::PcscContext, reader: &str, now: u64) -> (Check, Option<&'static str>) {
    let transport = match PcscTransport::connect_in(ctx, reader, None) {
        Ok(t) => t,
        Err(ReaderError::NoCard { .. }) => {
            return (
                Check::new(
                    "card",
                    Status::Info,
                    format!("{reader}: no card"),
                    format!("{reader}: nessuna carta"),
                ),
                None,
            );
        }
        Err(ReaderError::Transport(TransportError::Io { reason }))
            if reason.contains(&::pcsc::Error::SharingViolation.to_string()) =>
        {
            return (
                Check::new(
                    "card",
                    Status::Warn,
                    format!("{reader}: the card is held by another program"),
                    format!("{reader}: la carta è occupata da un altro programma"),
                )
                .fix(
                    "close the program using the card (a browser, a signing tool) and run doctor again",
                    "chiudi il programma che usa la carta (un browser, un programma di firma) e riesegui doctor",
                ),
                None,
            );
        }
        Err(e) => return (card_error(reader, &e.to_string()), None),
    };
    // Inside a PC/SC transaction, as the module reads a card: a browser signing with it
    // meanwhile is not interleaved with our commands.
    if let Err(e) = transport.begin_exclusive() {
        return (card_error(reader, &e.to_string()), None);
    }
    let transport = Arc::new(transport);
    let opened = Token::open(transport.clone());
    transport.end_exclusive();
    match opened {
        Ok(token) => {
            let kind = token.kind();
            (token_check(reader, &token, now), Some(kind))
        }
        Err(ck::CKR_TOKEN_NOT_RECOGNIZED) => (
            Check::new(
                "card",
                Status::Warn,
                format!("{reader}: a card that is neither a CIE nor a CNS"),
                format!("{reader}: la carta non è né una CIE né una CNS"),
            )
            .fix(
                "the module shows no token for it: use a CIE 3.0 or a CNS / TS-CNS",
                "il modulo non la mostra: usa una CIE 3.0 o una CNS / TS-CNS",
            ),
            None,
        ),
        Err(ck::CKR_DEVICE_REMOVED) => (card_error(reader, "removed while being read"), None),
        Err(rv) => (card_error(reader, &format!("PKCS#11 error 0x{rv:X}")), None),
    }
}

fn card_error(reader: &str, why: &str) -> Check {
    Check::new(
        "card",
        Status::Fail,
        format!("{reader}: the card did not answer properly ({why})"),
        format!("{reader}: la carta non ha risposto correttamente"),
    )
    .fix(
        "take the card out, check the contacts are clean, insert it again (or try another reader)",
        "estrai la carta, controlla che i contatti siano puliti e reinseriscila (o prova un altro lettore)",
    )
}

/// `TSTTST80A01H501X` → `TST************X`: enough to tell one's own card, never the
/// whole code in a log or a support ticket.
pub fn mask_cf(cf: &str) -> String {
    let chars: Vec<char> = cf.chars().collect();
    if chars.len() < 6 {
        return "*".repeat(chars.len());
    }
    let mut out: String = chars[..3].iter().collect();
    out.push_str(&"*".repeat(chars.len() - 4));
    out.push(chars[chars.len() - 1]);
    out
}

/// The holder's initials (`M. T.`) and masked codice fiscale.
pub fn masked_holder(cert: &CieCertificate) -> String {
    let initial = |s: &Option<String>| {
        s.as_deref()
            .and_then(|n| n.chars().next())
            .map(|c| format!("{c}."))
    };
    let initials: Vec<String> = [initial(&cert.given_name), initial(&cert.surname)]
        .into_iter()
        .flatten()
        .collect();
    let cf = cert.codice_fiscale.as_deref().map(mask_cf);
    match (initials.is_empty(), cf) {
        (false, Some(cf)) => format!("{} ({cf})", initials.join(" ")),
        (true, Some(cf)) => cf,
        (false, None) => initials.join(" "),
        (true, None) => "?".into(),
    }
}

/// The PIN as the card reports it: tries left (`None`: not reported), blocked.
fn pin_state(token: &Token) -> (Option<u8>, bool) {
    match token {
        Token::Cie(t) => match t.pin {
            PinStatus::Verified => (Some(3), false),
            PinStatus::TriesLeft(n) => (Some(n), false),
            PinStatus::Blocked => (Some(0), true),
        },
        Token::Cns(t) => match t.pin {
            cns::PinStatus::Verified => (Some(3), false),
            cns::PinStatus::TriesLeft(n) => (Some(n), false),
            cns::PinStatus::Blocked => (Some(0), true),
            cns::PinStatus::Unknown => (None, false),
        },
    }
}

fn token_check(reader: &str, token: &Token, now: u64) -> Check {
    let kind = token.kind();
    let holder = masked_holder(token.certificate());
    let (tries, blocked) = pin_state(token);
    let pin_en = match tries {
        _ if blocked => "PIN blocked".to_string(),
        Some(n) => format!("PIN: {n} tries left"),
        None => "PIN tries not reported".into(),
    };
    let pin_it = match tries {
        _ if blocked => "PIN bloccato".to_string(),
        Some(n) => format!("PIN: {n} tentativi rimasti"),
        None => "tentativi del PIN non indicati".into(),
    };
    let en = format!(
        "{reader}: {kind} ({}), holder {holder}, {pin_en}",
        token.model()
    );
    let it = format!("{reader}: {kind}, titolare {holder}, {pin_it}");
    let puk_en = match token {
        Token::Cie(_) => {
            "unblock it with the PUK (CieID app: \"Sblocca carta\"; the PUK is in the card's letter)"
        }
        Token::Cns(_) => {
            "unblock it with the PUK from the card's letter (the issuer's software or office)"
        }
    };
    let puk_it = match token {
        Token::Cie(_) => {
            "sbloccalo con il PUK (app CieID: \"Sblocca carta\"; il PUK è nella lettera della carta)"
        }
        Token::Cns(_) => {
            "sbloccalo con il PUK della lettera della carta (software o sportello dell'ente emittente)"
        }
    };
    if blocked {
        return Check::new("card", Status::Fail, en, it).fix(puk_en, puk_it);
    }
    if !token.certificate().is_valid_at(now) {
        return Check::new(
            "card",
            Status::Fail,
            format!("{en}; its certificate is expired or not yet valid"),
            format!("{it}; il certificato è scaduto o non ancora valido"),
        )
        .fix(
            "check the computer's date; if it is right, the card cannot log in any more: ask for a new one",
            "controlla la data del computer; se è giusta, la carta non può più autenticarti: richiedine una nuova",
        );
    }
    if tries.is_some_and(|n| n < 3) {
        return Check::new("card", Status::Warn, en, it).fix(
            format!("type the PIN carefully: a wrong one more may block it; then {puk_en}"),
            format!(
                "digita il PIN con attenzione: altri errori lo bloccano; in quel caso {puk_it}"
            ),
        );
    }
    Check::new("card", Status::Ok, en, it)
}

const INSTALL_EN: &str = "run `cie-companion pkcs11 install` with the browser closed";
const INSTALL_IT: &str = "esegui `cie-companion pkcs11 install` a browser chiuso";

fn nss_check(db: &std::path::Path) -> Check {
    let shown = format!("sql:{}", db.display());
    match install::nss_modules(db) {
        Err(e) => Check::new(
            "nss",
            Status::Fail,
            format!("{shown}: cannot be read ({e})"),
            format!("{shown}: illeggibile"),
        )
        .fix(
            "check the permissions of the directory (it must belong to you)",
            "controlla i permessi della cartella (deve essere tua)",
        ),
        Ok(None) => Check::new(
            "nss",
            Status::Fail,
            format!("no NSS database at {shown} (Chromium and Chrome read it)"),
            format!("nessun database NSS in {shown} (lo usano Chromium e Chrome)"),
        )
        .fix(INSTALL_EN, INSTALL_IT),
        Ok(Some(modules)) => match modules.iter().find(|m| m.is_ours()) {
            None => Check::new(
                "nss",
                Status::Fail,
                format!("the module is not registered in {shown}"),
                format!("il modulo non è registrato in {shown}"),
            )
            .fix(INSTALL_EN, INSTALL_IT),
            Some(m) if !std::path::Path::new(&m.library).is_file() => Check::new(
                "nss",
                Status::Fail,
                format!(
                    "{shown} registers \"{}\" at {}, which does not exist",
                    m.name, m.library
                ),
                format!(
                    "{shown} registra \"{}\" in {}, che non esiste",
                    m.name, m.library
                ),
            )
            .fix(INSTALL_EN, INSTALL_IT),
            Some(m) => Check::new(
                "nss",
                Status::Ok,
                format!(
                    "module registered in {shown} as \"{}\": {}",
                    m.name, m.library
                ),
                format!("modulo registrato in {shown}"),
            ),
        },
    }
}

fn p11kit_check(dir: &std::path::Path) -> Check {
    let file = install::p11kit_file(dir);
    let shown = file.display();
    match install::p11kit_module(dir) {
        Err(e) => Check::new(
            "p11kit",
            Status::Warn,
            format!("{shown}: cannot be read ({e})"),
            format!("{shown}: illeggibile"),
        )
        .fix(INSTALL_EN, INSTALL_IT),
        Ok(None) => Check::new(
            "p11kit",
            Status::Warn,
            format!("no p11-kit module file {shown} (only programs that load modules through p11-kit need it)"),
            format!("manca il file p11-kit {shown} (serve solo ai programmi che usano p11-kit)"),
        )
        .fix(INSTALL_EN, INSTALL_IT),
        Ok(Some(m)) if !std::path::Path::new(&m).is_file() => Check::new(
            "p11kit",
            Status::Warn,
            format!("{shown} names {m:?}, which does not exist"),
            format!("{shown} indica {m:?}, che non esiste"),
        )
        .fix(INSTALL_EN, INSTALL_IT),
        Ok(Some(m)) => Check::new(
            "p11kit",
            Status::Ok,
            format!("p11-kit module file {shown}: {m}"),
            format!("file p11-kit {shown} presente"),
        ),
    }
}

/// Browsers installed as snaps or flatpaks (names), looked for under `root` and `home`.
pub fn sandboxed_browsers(root: &std::path::Path, home: &std::path::Path) -> Vec<&'static str> {
    const PLACES: &[(&str, &str)] = &[
        ("snap/bin/firefox", "Firefox (snap)"),
        ("snap/bin/chromium", "Chromium (snap)"),
        (
            "var/lib/flatpak/app/org.mozilla.firefox",
            "Firefox (flatpak)",
        ),
        (
            "var/lib/flatpak/app/org.chromium.Chromium",
            "Chromium (flatpak)",
        ),
        ("var/lib/flatpak/app/com.google.Chrome", "Chrome (flatpak)"),
    ];
    const USER_PLACES: &[(&str, &str)] = &[
        (
            ".local/share/flatpak/app/org.mozilla.firefox",
            "Firefox (flatpak)",
        ),
        (
            ".local/share/flatpak/app/org.chromium.Chromium",
            "Chromium (flatpak)",
        ),
        (
            ".local/share/flatpak/app/com.google.Chrome",
            "Chrome (flatpak)",
        ),
    ];
    let mut out: Vec<&'static str> = PLACES
        .iter()
        .filter(|(p, _)| root.join(p).exists())
        .chain(USER_PLACES.iter().filter(|(p, _)| home.join(p).exists()))
        .map(|(_, name)| *name)
        .collect();
    out.dedup();
    out
}

/// Firefox profiles (directories holding an NSS database) under `home`.
pub fn firefox_profiles(home: &std::path::Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(home.join(".mozilla/firefox"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("pkcs11.txt").is_file())
        .collect();
    out.sort();
    out
}

/// Snap/flatpak browsers, Firefox profiles, OpenSC's p11-kit module: warnings and notes,
/// never failures (the user may use another browser).
fn browser_checks(root: &std::path::Path, home: &std::path::Path) -> Vec<Check> {
    let mut out = Vec::new();
    let sandboxed = sandboxed_browsers(root, home);
    if !sandboxed.is_empty() {
        let names = sandboxed.join(", ");
        out.push(
            Check::new(
                "browsers",
                Status::Warn,
                format!("{names}: a snap or flatpak browser cannot load the module (it cannot read the system's libraries or reach pcscd)"),
                format!("{names}: un browser snap o flatpak non può caricare il modulo"),
            )
            .fix(
                "use the distribution's package of the browser (e.g. Firefox from Mozilla's APT repository, Debian's chromium)",
                "usa il pacchetto del browser della distribuzione (ad es. Firefox dal repository APT di Mozilla, chromium di Debian)",
            ),
        );
    }
    for profile in firefox_profiles(home) {
        let name = profile
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let loaded = install::nss_modules(&profile)
            .ok()
            .flatten()
            .is_some_and(|m| m.iter().any(install::NssModule::is_ours));
        out.push(if loaded {
            Check::new(
                "firefox",
                Status::Ok,
                format!("Firefox profile {name}: module loaded"),
                format!("profilo Firefox {name}: modulo caricato"),
            )
        } else {
            Check::new(
                "firefox",
                Status::Warn,
                format!("Firefox profile {name}: module not loaded (Firefox has its own database)"),
                format!("profilo Firefox {name}: modulo non caricato (Firefox ha un database suo)"),
            )
            .fix(
                format!(
                    "in Firefox: Settings → Privacy & Security → Security Devices → Load; or, with Firefox closed: \
                     cie-companion pkcs11 install --nssdb {}",
                    profile.display()
                ),
                format!(
                    "in Firefox: Impostazioni → Privacy e sicurezza → Dispositivi di sicurezza → Carica; oppure, \
                     a Firefox chiuso: cie-companion pkcs11 install --nssdb {}",
                    profile.display()
                ),
            )
        });
    }
    let opensc = root.join("usr/share/p11-kit/modules/opensc-pkcs11.module");
    if opensc.is_file() {
        out.push(Check::new(
            "opensc",
            Status::Info,
            format!("OpenSC's module is registered with p11-kit ({}): it claims CNS cards too, so a CNS may show twice where p11-kit modules are loaded; pick the cie-companion token", opensc.display()),
            "anche il modulo di OpenSC è registrato in p11-kit e riconosce la CNS: la carta può comparire due volte; scegli quella di cie-companion",
        ));
    }
    out
}

/// HOST and PORT of `https://HOST[:PORT][/…]` (or a bare `HOST[:PORT]`); IPv6 in brackets.
pub fn parse_server(url: &str) -> Result<(String, u16), String> {
    let rest = match url.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") => rest,
        Some(_) => return Err(format!("'{url}': use an https:// address")),
        None => url,
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(format!("'{url}': no user name in the address"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("'{url}': unclosed '['"))?;
        match after.strip_prefix(':') {
            Some(p) => (host, Some(p)),
            None if after.is_empty() => (host, None),
            None => return Err(format!("'{url}': bad address")),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(format!("'{url}': no host"));
    }
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| format!("'{url}': '{p}' is not a port"))?,
        None => 443,
    };
    Ok((host.to_string(), port))
}

/// What one handshake showed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Handshake {
    /// The version the server chose, when it got as far as a ServerHello.
    pub version: Option<ProtocolVersion>,
    /// Whether it sent a CertificateRequest.
    pub cert_requested: bool,
    /// Whether that request accepts a PKCS#1 v1.5 RSA signature (the only kind a CIE
    /// makes; meaningful in TLS 1.2).
    pub pkcs1_accepted: bool,
    /// Why the handshake stopped, if it did (expected once a certificate was asked for:
    /// we send none).
    pub error: Option<String>,
}

/// The three handshakes: TLS 1.2 only, TLS 1.3 only, and both (what a browser offers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerProbe {
    /// With TLS 1.2 only.
    pub tls12: Handshake,
    /// With TLS 1.3 only.
    pub tls13: Handshake,
    /// With both, as a browser.
    pub browser: Handshake,
}

/// Records the server's CertificateRequest and answers with no certificate.
#[derive(Debug, Default)]
struct CertRequestSeen {
    asked: AtomicBool,
    pkcs1: AtomicBool,
}

impl ResolvesClientCert for CertRequestSeen {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.asked.store(true, Ordering::SeqCst);
        let pkcs1 = sigschemes.iter().any(|s| {
            matches!(
                s,
                SignatureScheme::RSA_PKCS1_SHA256
                    | SignatureScheme::RSA_PKCS1_SHA384
                    | SignatureScheme::RSA_PKCS1_SHA512
                    | SignatureScheme::RSA_PKCS1_SHA1
            )
        });
        self.pkcs1.store(pkcs1, Ordering::SeqCst);
        None
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Accepts any server certificate (the handshake signatures are still checked): doctor
/// sends nothing secret and looks at the handshake only, not at whom it talks to.
#[derive(Debug)]
struct AnyServer(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

const TIMEOUT: Duration = Duration::from_secs(5);

/// One handshake offering `versions`; `Err` only when TCP could not connect.
fn handshake(
    addrs: &[SocketAddr],
    host: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<Handshake, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let seen = Arc::new(CertRequestSeen::default());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServer(provider)))
        .with_client_cert_resolver(seen.clone());
    let name = ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
    let mut conn = ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    let mut last = String::from("no address");
    let mut sock = None;
    for a in addrs {
        match TcpStream::connect_timeout(a, TIMEOUT) {
            Ok(s) => {
                sock = Some(s);
                break;
            }
            Err(e) => last = format!("{a}: {e}"),
        }
    }
    let mut sock = sock.ok_or(last)?;
    let _ = sock.set_read_timeout(Some(TIMEOUT));
    let _ = sock.set_write_timeout(Some(TIMEOUT));
    let mut error = None;
    while conn.is_handshaking() {
        match conn.complete_io(&mut sock) {
            Ok((0, 0)) => {
                error = Some("the server closed the connection".into());
                break;
            }
            Ok(_) => {}
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
    }
    Ok(Handshake {
        version: conn.protocol_version(),
        cert_requested: seen.asked.load(Ordering::SeqCst),
        pkcs1_accepted: seen.pkcs1.load(Ordering::SeqCst),
        error,
    })
}

/// Probe `host:port` three times.
pub fn probe_server(host: &str, port: u16) -> Result<ServerProbe, String> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("{host}: {e}"))?
        .collect();
    Ok(ServerProbe {
        tls12: handshake(&addrs, host, &[&rustls::version::TLS12])?,
        tls13: handshake(&addrs, host, &[&rustls::version::TLS13])?,
        browser: handshake(
            &addrs,
            host,
            &[&rustls::version::TLS13, &rustls::version::TLS12],
        )?,
    })
}

fn offered(h: &Handshake) -> (&'static str, &'static str) {
    match (h.version.is_some(), h.cert_requested) {
        (false, _) => ("not offered", "non offerto"),
        (true, true) => (
            "offered, asks for a client certificate",
            "offerto, chiede il certificato",
        ),
        (true, false) => (
            "offered, no client certificate asked",
            "offerto, senza certificato",
        ),
    }
}

/// The verdict on a probed server; `cie_present`: a CIE is in a reader (a server the CIE
/// cannot log in to then fails rather than warns).
pub fn server_verdict(target: &str, p: &ServerProbe, cie_present: bool) -> Check {
    let (v12_en, v12_it) = offered(&p.tls12);
    let (v13_en, v13_it) = offered(&p.tls13);
    let browser = match p.browser.version {
        Some(ProtocolVersion::TLSv1_2) => "TLS 1.2",
        Some(ProtocolVersion::TLSv1_3) => "TLS 1.3",
        _ => "none",
    };
    let facts_en =
        format!("{target}: TLS 1.2 {v12_en}; TLS 1.3 {v13_en}; a browser gets {browser}");
    let facts_it = format!("TLS 1.2 {v12_it}; TLS 1.3 {v13_it}; un browser ottiene {browser}");
    if p.browser.version.is_none() && p.tls12.version.is_none() && p.tls13.version.is_none() {
        let why = p.browser.error.clone().unwrap_or_default();
        return Check::new(
            "server",
            Status::Fail,
            format!("{target}: no TLS handshake ({why})"),
            format!("{target}: nessuna risposta TLS"),
        )
        .fix(
            "check the address: it must be the https:// address of the page that asks for the card",
            "controlla l'indirizzo: deve essere quello https:// della pagina che chiede la carta",
        );
    }
    if !p.browser.cert_requested {
        return Check::new(
            "server",
            Status::Fail,
            format!("{facts_en}: this address does not ask for a card"),
            format!("{target}: {facts_it}; questo indirizzo non chiede la carta"),
        )
        .fix(
            "use the address of the service's card-login page (for companion-server, the --mtls-tls12-listen one)",
            "usa l'indirizzo della pagina di accesso con la carta del servizio (per companion-server, quello di --mtls-tls12-listen)",
        );
    }
    match p.browser.version {
        Some(ProtocolVersion::TLSv1_2) if p.browser.pkcs1_accepted => Check::new(
            "server",
            Status::Ok,
            format!("{facts_en}: TLS 1.2 client authentication, the CIE and the CNS can log in"),
            format!("{target}: {facts_it}; autenticazione TLS 1.2, CIE e CNS possono accedere"),
        ),
        Some(ProtocolVersion::TLSv1_2) => Check::new(
            "server",
            Status::Fail,
            format!("{facts_en}: the server does not accept PKCS#1 v1.5 RSA signatures, the only kind a CIE makes"),
            format!("{target}: {facts_it}; il server non accetta firme RSA PKCS#1 v1.5, le sole che la CIE produce"),
        )
        .fix(
            "the service must accept rsa_pkcs1_sha256 for client certificates: tell its administrators",
            "il servizio deve accettare rsa_pkcs1_sha256 per i certificati client: segnalalo ai gestori",
        ),
        _ => Check::new(
            "server",
            if cie_present { Status::Fail } else { Status::Warn },
            format!(
                "{facts_en}: a CNS can log in, a CIE cannot (TLS 1.3 needs RSA-PSS, the CIE signs only \
                 PKCS#1 v1.5, and browsers do not retry over TLS 1.2: ERR_SSL_CLIENT_AUTH_NO_COMMON_ALGORITHMS)"
            ),
            format!(
                "{target}: {facts_it}; la CNS può accedere, la CIE no (TLS 1.3 richiede RSA-PSS, la CIE firma \
                 solo PKCS#1 v1.5 e i browser non ripiegano su TLS 1.2)"
            ),
        )
        .fix(
            "for the CIE the service must offer card login over TLS 1.2 only (companion-server: --mtls-tls12-listen); tell its administrators",
            "per la CIE il servizio deve offrire l'accesso con la carta solo in TLS 1.2 (companion-server: --mtls-tls12-listen); segnalalo ai gestori",
        ),
    }
}

/// `--server URL`: parse, probe, judge; every problem is a failed check, never a panic.
fn server_check(url: &str, cie_present: bool) -> Check {
    let (host, port) = match parse_server(url) {
        Ok(hp) => hp,
        Err(e) => {
            return Check::new(
                "server",
                Status::Fail,
                e,
                format!("indirizzo non valido: {url}"),
            )
            .fix(
                "give it as https://HOST[:PORT]/",
                "scrivilo come https://HOST[:PORTA]/",
            );
        }
    };
    let target = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    match probe_server(&host, port) {
        Ok(p) => server_verdict(&target, &p, cie_present),
        Err(e) => Check::new(
            "server",
            Status::Fail,
            format!("{target}: cannot connect ({e})"),
            format!("{target}: connessione impossibile"),
        )
        .fix(
            "check the address and the network (a proxy or firewall may block it)",
            "controlla l'indirizzo e la rete (un proxy o un firewall possono bloccarla)",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_the_codice_fiscale() {
        assert_eq!(mask_cf("TSTTST80A01H501X"), "TST************X");
        assert!(!mask_cf("TSTTST80A01H501X").contains("80A01"));
        assert_eq!(mask_cf("ABC"), "***");
    }

    #[test]
    fn parses_server_addresses() {
        let ok = |s: &str| parse_server(s).ok();
        assert_eq!(
            ok("https://login.example.it/"),
            Some(("login.example.it".into(), 443))
        );
        assert_eq!(
            ok("https://127.0.0.1:8444/login/card"),
            Some(("127.0.0.1".into(), 8444))
        );
        assert_eq!(ok("HTTPS://h:1?x=1"), Some(("h".into(), 1)));
        assert_eq!(ok("h:9"), Some(("h".into(), 9)));
        assert_eq!(ok("https://[::1]:8443/"), Some(("::1".into(), 8443)));
        assert_eq!(ok("https://[::1]"), Some(("::1".into(), 443)));
        assert!(parse_server("http://h/").is_err());
        assert!(parse_server("https://h:0/").is_err());
        assert!(parse_server("https://h:x/").is_err());
        assert!(parse_server("https://u@h/").is_err());
        assert!(parse_server("https:///x").is_err());
        assert!(parse_server("https://[::1/").is_err());
    }

    fn hs(version: Option<ProtocolVersion>, asked: bool) -> Handshake {
        Handshake {
            version,
            cert_requested: asked,
            pkcs1_accepted: asked,
            error: None,
        }
    }

    #[test]
    fn server_verdicts() {
        let v12 = Some(ProtocolVersion::TLSv1_2);
        let v13 = Some(ProtocolVersion::TLSv1_3);
        // TLS 1.2 only with client auth: both cards.
        let tls12_only = ServerProbe {
            tls12: hs(v12, true),
            tls13: hs(None, false),
            browser: hs(v12, true),
        };
        let c = server_verdict("h:1", &tls12_only, true);
        assert_eq!(c.status, Status::Ok);
        assert!(c.en.contains("TLS 1.3 not offered") && c.en.contains("a browser gets TLS 1.2"));
        // 1.2 and 1.3: a CIE in the reader fails, otherwise a warning.
        let both = ServerProbe {
            tls12: hs(v12, true),
            tls13: hs(v13, true),
            browser: hs(v13, true),
        };
        assert_eq!(server_verdict("h:1", &both, true).status, Status::Fail);
        let w = server_verdict("h:1", &both, false);
        assert_eq!(w.status, Status::Warn);
        assert!(w.en.contains("a CIE cannot") && w.fix_en.is_some_and(|f| f.contains("TLS 1.2")));
        // No CertificateRequest: not a card-login address.
        let plain = ServerProbe {
            tls12: hs(v12, false),
            tls13: hs(v13, false),
            browser: hs(v13, false),
        };
        let c = server_verdict("h:1", &plain, false);
        assert_eq!(c.status, Status::Fail);
        assert!(c.en.contains("does not ask for a card"));
        // TLS 1.2 but no PKCS#1 scheme in the request.
        let mut no_pkcs1 = tls12_only.clone();
        no_pkcs1.browser.pkcs1_accepted = false;
        assert!(
            server_verdict("h:1", &no_pkcs1, false)
                .en
                .contains("PKCS#1")
        );
        // Not TLS at all.
        let none = ServerProbe::default();
        assert!(
            server_verdict("h:1", &none, false)
                .en
                .contains("no TLS handshake")
        );
    }

    #[test]
    fn sandboxed_browsers_firefox_profiles_and_opensc() {
        let root = tempfile::tempdir().expect("tempdir");
        let home = tempfile::tempdir().expect("tempdir");
        assert!(browser_checks(root.path(), home.path()).is_empty());
        std::fs::create_dir_all(root.path().join("snap/bin/firefox")).expect("mkdir");
        std::fs::create_dir_all(
            home.path()
                .join(".local/share/flatpak/app/org.chromium.Chromium"),
        )
        .expect("mkdir");
        assert_eq!(
            sandboxed_browsers(root.path(), home.path()),
            vec!["Firefox (snap)", "Chromium (flatpak)"]
        );
        let ff = home.path().join(".mozilla/firefox");
        for (profile, text) in [
            ("a.default", "library=\nname=NSS Internal PKCS #11 Module\n"),
            (
                "b.work",
                "library=/x/libcie_companion_pkcs11.so\nname=CIE\n",
            ),
        ] {
            std::fs::create_dir_all(ff.join(profile)).expect("mkdir");
            std::fs::write(ff.join(profile).join("pkcs11.txt"), text).expect("write");
        }
        std::fs::create_dir_all(ff.join("Crash Reports")).expect("mkdir");
        let kit = root.path().join("usr/share/p11-kit/modules");
        std::fs::create_dir_all(&kit).expect("mkdir");
        std::fs::write(
            kit.join("opensc-pkcs11.module"),
            "module: opensc-pkcs11.so\n",
        )
        .expect("write");
        let checks = browser_checks(root.path(), home.path());
        let kinds: Vec<(&str, Status)> = checks.iter().map(|c| (c.check, c.status)).collect();
        assert_eq!(
            kinds,
            vec![
                ("browsers", Status::Warn),
                ("firefox", Status::Warn),
                ("firefox", Status::Ok),
                ("opensc", Status::Info)
            ]
        );
        assert!(checks[1].en.contains("a.default"));
        assert!(
            checks[1]
                .fix_en
                .as_deref()
                .is_some_and(|f| f.contains("--nssdb"))
        );
        assert!(checks[2].en.contains("b.work"));
    }

    #[test]
    fn renders_marks_and_fixes() {
        let c = Check::new("pcscd", Status::Fail, "down", "giù").fix("start it", "avvialo");
        assert_eq!(
            c.render(true),
            "[FAIL] pcscd: down / giù\n    -> start it\n    -> avvialo\n"
        );
        assert!(
            c.render(false)
                .starts_with("✗ pcscd: down / giù\n    → start it")
        );
        assert!(
            Check::new("x", Status::Ok, "a", "b")
                .render(false)
                .starts_with("✓ x:")
        );
        let plain = c.render(true);
        assert!(!plain.contains(['✓', '✗', '⚠', '•', '→']), "{plain}");
    }
}
