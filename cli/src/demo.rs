//! `cie-companion demo`: the three login flows end to end on this machine, through the same
//! public API the phone app uses (`CompanionClient`), against the reference server started
//! in this process on loopback (real TLS, pinned key, SQLite file), with the virtual CIE
//! (or a real card on a desktop reader), then the PIN login of residents abroad (issue 11).
//! It prints what each screen would show.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use cie_core::ffi::{
    CompanionClient, FlowError, Language, ProgressListener, flow_error_message, scan_qr_frame,
};
use cie_core::flows::device_key::DeviceSigner;
use cie_core::flows::login::LoginStep;
use cie_core::flows::pairing::{Protection, SecretStore, StoreError};
use cie_core::flows::wire::{
    ApprovalCreate, ApprovalCreated, ApprovalStatus, CodeRequest, Decision, LoginContext,
    RendezvousCreated, RendezvousStatus,
};
use cie_core::transport::SharedTransport;
use companion_server::{Config, RunningServer};
use p256::ecdsa::signature::Signer;
use zeroize::Zeroizing;

use crate::error::CliError;
use crate::transport::{OpenOptions, ReaderSpec};

/// `demo` options.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// The card: `sim` (virtual CIE), `pcsc`, `pcsc:NAME`, `nfc` or `nfc:CONNSTRING`.
    #[arg(long, default_value = "sim")]
    pub reader: String,
    /// Database of the embedded server: `sqlite:PATH` or `postgres://…` (default: a SQLite
    /// file in a fresh temporary folder).
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
    /// CA that issued a real card's certificate (PEM or DER; the Ministry's CIE CA). The
    /// virtual CIE's test CA is always trusted.
    #[arg(long, value_name = "FILE")]
    pub card_ca: Vec<PathBuf>,
    /// CSCA for registration with a real card (DER, PEM, ICAO master list or ZIP; Italy's
    /// `IT_MasterListCSCA.zip`); the CAN is then asked. The virtual CIE's test CSCA is
    /// always trusted; without `--csca` a real card skips the registration step.
    #[arg(long, value_name = "FILE")]
    pub csca: Vec<PathBuf>,
    /// PC/SC only: force extended-length APDUs on or off (default: ask the reader).
    #[arg(long, value_name = "on|off", value_parser = crate::parse_on_off)]
    pub extended_length: Option<bool>,
}

/// Where the card PIN comes from on a real reader when set (scripts; a prompt otherwise).
pub const PIN_ENV: &str = "CIE_COMPANION_PIN";

/// The virtual CIE's PIN: with `--reader sim` it is typed for the user.
const SIM_PIN: &str = "12345678";

pub fn run(args: DemoArgs) -> Result<(), CliError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::Input {
            reason: format!("cannot start the async runtime: {e}"),
        })?;
    rt.block_on(demo(args))
}

pub(crate) fn flow(e: FlowError) -> CliError {
    // `CliError::message_en` ends the English message with its own full stop.
    let message = flow_error_message(e.clone(), Language::En);
    CliError::Flow {
        message: message.trim_end_matches('.').to_owned(),
        message_it: flow_error_message(e, Language::It),
    }
}

pub(crate) fn input(reason: impl Into<String>) -> CliError {
    CliError::Input {
        reason: reason.into(),
    }
}

async fn demo(args: DemoArgs) -> Result<(), CliError> {
    let spec: ReaderSpec = args.reader.parse()?;
    let is_sim = spec == ReaderSpec::Sim;
    let (transport, reader_name) = crate::transport::open(
        &spec,
        OpenOptions {
            extended_length: args.extended_length,
        },
    )?;

    // ---- the server ------------------------------------------------------------------
    let tmp = tempfile::tempdir().map_err(|e| input(format!("temporary folder: {e}")))?;
    let database = args
        .database
        .clone()
        .unwrap_or_else(|| format!("sqlite:{}", tmp.path().join("companion.sqlite").display()));
    let mut config = Config::new(database.clone());
    config.service_name = "Comune di Prova (demo)".into();
    config
        .card_cas
        .push(card_sim::ias::pki::TEST_CA_CERT_DER.to_vec());
    for path in &args.card_ca {
        config.card_cas.extend(read_certs(path)?);
    }
    let register = is_sim || !args.csca.is_empty();
    let mut trust = companion_server::registration::RegistrationTrust::new();
    trust
        .add_csca_der(card_sim::emrtd::CSCA_CERT_DER)
        .map_err(|e| input(format!("test CSCA: {e}")))?;
    for path in &args.csca {
        let bytes = std::fs::read(path).map_err(|e| input(format!("{}: {e}", path.display())))?;
        trust
            .add_csca_file(&bytes)
            .map_err(|e| input(format!("{}: {e}", path.display())))?;
    }
    config.registration = Some(Arc::new(trust));
    // The OTP second factor of residents abroad (step 4): a fresh sealing key each run.
    let mut otp_key = Zeroizing::new([0u8; 32]);
    getrandom::fill(otp_key.as_mut()).map_err(|e| input(format!("randomness: {e}")))?;
    config.otp_key = companion_server::api::OtpKey::from_bytes(otp_key.as_ref());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| input(format!("cannot listen on loopback: {e}")))?;
    let server = companion_server::serve(config, listener)
        .await
        .map_err(|e| input(format!("the server did not start: {e}")))?;
    let origin = server.origin().as_string();
    println!("== Server di riferimento / reference server");
    println!("   {origin}  (database {})", redact_db(&database));
    println!(
        "   chiave pinnata nell'app / key pinned in the app: sha256/{}",
        server.spki_pin()
    );
    println!("   carta / card: {reader_name}");

    let store: Arc<dyn SecretStore> = Arc::new(MemoryStore::default());
    let client = CompanionClient::new(
        vec![origin.clone()],
        vec![server.spki_pin().to_string()],
        Some(store),
    )
    .map_err(flow)?;
    let pin = if is_sim {
        Zeroizing::new(SIM_PIN.to_string())
    } else {
        crate::register::secret(PIN_ENV, "PIN della CIE (8 cifre) / CIE PIN (8 digits): ")?
    };

    // ---- 0. registration ---------------------------------------------------------------
    if register {
        println!("\n== 0. Registrazione con la CIE / registration with the CIE (CAN, no PIN)");
        let can = if is_sim {
            Zeroizing::new(card_sim::emrtd::TEST_CAN.to_string())
        } else {
            crate::register::secret(crate::register::CAN_ENV, crate::register::CAN_PROMPT)?
        };
        let outcome =
            crate::register::registration(&client, &origin, transport.clone(), &can, |_| {
                println!("[telefono] Confermi? sì (demo)");
                Ok(true)
            })
            .await?;
        // A database that kept an earlier demo run knows the card: the demo goes on.
        if let crate::register::Outcome::Declined = outcome {
            return Err(input("registration declined"));
        }
    }

    // ---- 1. phone-tap login ----------------------------------------------------------
    println!("\n== 1. Accesso con CIE sul telefono / phone-tap CIE login");
    let login = client
        .start_card_login(origin.clone())
        .await
        .map_err(flow)?;
    println!(
        "[telefono] sfida ricevuta dal server prima del tocco / challenge fetched before the tap"
    );
    println!("[telefono] Avvicina la CIE al telefono e tienila ferma / hold the card to the phone");
    let result = login
        .tap(transport.clone(), Some(pin.to_string()), Some(progress()))
        .await
        .map_err(flow)?;
    println!(
        "[telefono] Accesso effettuato: {} {} ({}), livello {}{}",
        result.identity.given_name,
        result.identity.surname,
        result.identity.codice_fiscale,
        result.level,
        if result.paired_now {
            " — carta abbinata: la prossima volta bastano le ultime 4 cifre del PIN"
        } else {
            ""
        }
    );

    // ---- 2. desktop QR ---------------------------------------------------------------
    println!("\n== 2. Accesso dal computer con il QR / desktop QR authorisation");
    let last4 = Zeroizing::new(pin[pin.len().saturating_sub(4)..].to_string());
    desktop_qr(
        &client,
        &server,
        Approver::Card {
            transport: transport.clone(),
            last4: last4.clone(),
        },
    )
    .await?;

    // ---- 3. app approval -------------------------------------------------------------
    println!("\n== 3. Approvazione con l'app / app approval (device key, number matching)");
    let signer = Arc::new(SoftwareDeviceKey::generate());
    let enrol = client
        .start_device_enrollment(origin.clone(), signer.clone(), "cie-companion demo".into())
        .await
        .map_err(flow)?;
    println!("[telefono] registro questo dispositivo: ultime 4 cifre del PIN e tocco della carta");
    let device = enrol
        .tap(transport.clone(), Some(last4.to_string()), Some(progress()))
        .await
        .map_err(flow)?;
    println!(
        "[telefono] dispositivo registrato per {} {} (id {})",
        device.identity.given_name, device.identity.surname, device.device_id
    );

    println!(
        "[computer] \"Entra con l'app\": codice fiscale {}",
        device.identity.codice_fiscale
    );
    let browser = Browser::new(&server)?;
    let asked: ApprovalCreated = browser
        .post(
            "/api/v1/approvals",
            &ApprovalCreate {
                codice_fiscale: device.identity.codice_fiscale.clone(),
            },
        )
        .await?;
    let me = approve_on_phone(
        &client,
        &origin,
        &browser,
        &device.device_id,
        &signer,
        &asked,
    )
    .await?;
    println!("[computer] Accesso effettuato / logged in: {}", who(&me));

    println!(
        "\n== 3b. QR dal computer approvato con la chiave del telefono, senza carta / desktop QR approved with the device key"
    );
    desktop_qr(
        &client,
        &server,
        Approver::Device {
            device_id: device.device_id.clone(),
            signer,
        },
    )
    .await?;

    abroad(&server, &client).await?;

    println!(
        "\nDemo completata: i tre flussi e l'accesso dei residenti all'estero (PIN + app, PIN + OTP) sono riusciti / demo complete: the three flows and the residents-abroad login (PIN + app, PIN + OTP) succeeded."
    );
    server.shutdown().await;
    Ok(())
}

/// The PIN they choose at the forced change (policy: docs/abroad-pin.md).
const ABROAD_NEW_PIN: &str = "K7W9X2QZ";

/// `POST /api/v1/abroad/login` and `/pin` bodies (borrowed: no extra copy of a PIN).
#[derive(serde::Serialize)]
struct PinLogin<'a> {
    codice_fiscale: &'a str,
    pin: &'a str,
}

#[derive(serde::Serialize)]
struct PinChange<'a> {
    codice_fiscale: &'a str,
    old_pin: &'a str,
    new_pin: &'a str,
}

/// A codice fiscale for the demo's resident abroad, MARIO ROSSI born in January 1980: the
/// day and place digits random (a kept database gets a new account each run, without the phone of an
/// earlier run on it), the check letter the one that validates.
fn abroad_cf() -> Result<String, CliError> {
    let mut r = [0u8; 3];
    getrandom::fill(&mut r).map_err(|e| input(format!("randomness: {e}")))?;
    let day = 1 + r[0] % 28;
    let place = u16::from_le_bytes([r[1], r[2]]) % 1000;
    (b'A'..=b'Z')
        .map(|c| format!("RSSMRA80A{day:02}H{place:03}{}", char::from(c)))
        .find(|cf| companion_server::abroad::validate_cf(cf).is_ok())
        .ok_or_else(|| input("no check letter"))
}

/// Residents abroad (issue 11): the operator issues a PIN (in process, the store API), the
/// delivery hook reads one half from each outbox, the desktop does the first login, the
/// forced change and a login with the new PIN (level 1); there the page offers to enrol
/// the phone with a one-time code, and the next PIN login needs the phone's approval
/// (level 2). Should a kept database have the account, its PIN is reset instead.
async fn abroad(server: &RunningServer, client: &CompanionClient) -> Result<(), CliError> {
    use companion_server::abroad::{IssueRequest, OperatorError, issue_pin};
    use companion_server::store::{AbroadStore, AuditEntry, Channel};
    let cf = abroad_cf()?;
    let cf = cf.as_str();

    println!(
        "\n== 4. Residenti all'estero: codice fiscale + PIN / residents abroad: tax code + PIN"
    );
    // The server's own store: codici fiscali are looked up under its key (derived from the
    // run's OTP key), as the operator's commands would with the same --otp-key-file.
    let store = server.store();
    let store = store.as_ref();
    let mut req = IssueRequest {
        codice_fiscale: cf.into(),
        email: Some("mario.rossi@example.org".into()),
        address: Some("Calle Florida 100, Buenos Aires".into()),
        given_name: "MARIO".into(),
        surname: "ROSSI".into(),
    };
    let issued = match issue_pin(store, &req, false, "demo", now()).await {
        Err(OperatorError::Exists) => {
            println!(
                "[operatore] account già presente: ripristino del PIN / account exists: PIN reset"
            );
            req.email = None;
            req.address = None;
            issue_pin(store, &req, true, "demo", now()).await
        }
        other => other,
    };
    issued.map_err(|e| input(format!("PIN issue: {e}")))?;
    println!("[operatore] PIN di 16 caratteri emesso / 16-character PIN issued for {cf}");
    let mut initial = Zeroizing::new(String::new());
    for (channel, it, en) in [
        (Channel::Digital, "prime 8 per e-mail", "first 8 by e-mail"),
        (Channel::Postal, "ultime 8 per posta", "last 8 by post"),
    ] {
        let item = store
            .abroad_outbox(channel)
            .await
            .map_err(|e| input(format!("outbox: {e}")))?
            .into_iter()
            .filter(|i| i.codice_fiscale == cf)
            .max_by_key(|i| i.id)
            .ok_or_else(|| input("no PIN half in the outbox"))?;
        initial.push_str(item.half.expose());
        let audit = AuditEntry::new(
            "abroad_outbox_ack",
            &format!("{} {}", channel.as_str(), item.id),
            "ok",
            "demo",
        );
        store
            .abroad_ack(channel, item.id, &audit, now())
            .await
            .map_err(|e| input(format!("outbox: {e}")))?;
        println!(
            "[consegna] {it} a {} / {en}: ******** (consegnata, cancellata / delivered, erased)",
            item.recipient
        );
    }

    let browser = Browser::new(server)?;
    println!("[computer] codice fiscale {cf} + PIN di 16 caratteri (primo accesso / first login)");
    let first: serde_json::Value = browser.pin_login(cf, &initial).await?;
    if first["pin_change_required"] != serde_json::Value::Bool(true) {
        return Err(input("the initial PIN did not lead to the forced change"));
    }
    println!(
        "[computer] primo accesso: scegli un PIN di 8 caratteri / first login: choose an 8-character PIN"
    );
    let _: serde_json::Value = browser
        .post(
            "/api/v1/abroad/pin",
            &PinChange {
                codice_fiscale: cf,
                old_pin: &initial,
                new_pin: ABROAD_NEW_PIN,
            },
        )
        .await?;
    println!("[computer] PIN cambiato / PIN changed: ********");
    let _: serde_json::Value = browser.pin_login(cf, ABROAD_NEW_PIN).await?;
    let me: serde_json::Value = browser.get("/api/v1/session").await?;
    println!(
        "[computer] Accesso effettuato con il PIN / logged in with the PIN: {}",
        who(&me)
    );
    // A second factor is added from a level-2 session once there is one: the rest of the
    // step goes on in the PIN + OTP login's browser.
    let browser = abroad_otp(server, &browser, cf).await?;

    println!("[computer] \"Registra il telefono\": codice monouso / one-time enrolment code");
    let enrol: serde_json::Value = browser.post("/api/v1/abroad/enrol", &()).await?;
    let code = enrol["code"]
        .as_str()
        .ok_or_else(|| input("no enrolment code"))?;
    print_qr(code)?;
    println!("[computer]   {code}");
    let signer = Arc::new(SoftwareDeviceKey::generate());
    let device = client
        .enroll_device_with_code(
            server.origin().as_string(),
            scan_like_a_camera(code)?,
            signer.clone(),
            "cie-companion demo (estero)".into(),
        )
        .await
        .map_err(flow)?;
    println!(
        "[telefono] dispositivo registrato con il codice, senza carta / enrolled with the code, no card: {} {} (id {})",
        device.identity.given_name, device.identity.surname, device.device_id
    );

    println!(
        "[computer] di nuovo codice fiscale + PIN: ora serve anche il telefono / PIN again: now the phone too"
    );
    let browser = Browser::new(server)?;
    let again: serde_json::Value = browser.pin_login(cf, ABROAD_NEW_PIN).await?;
    let asked: ApprovalCreated = serde_json::from_value(again["approval"].clone())
        .map_err(|_| input("the PIN login did not ask the enrolled phone"))?;
    let origin = server.origin().as_string();
    let me = approve_on_phone(
        client,
        &origin,
        &browser,
        &device.device_id,
        &signer,
        &asked,
    )
    .await?;
    println!(
        "[computer] Accesso effettuato con PIN + app / logged in with PIN + app: {}",
        who(&me)
    );
    Ok(())
}

/// The resident abroad, logged in, adds an authenticator app (the seed shown as a QR, the
/// first code confirms it); a new PIN login then takes the PIN and the next code (level 2).
/// That login's browser.
async fn abroad_otp(
    server: &RunningServer,
    browser: &Browser,
    cf: &str,
) -> Result<Browser, CliError> {
    println!("[computer] \"Attiva un'app di autenticazione\" / add an authenticator app (OTP)");
    let setup: serde_json::Value = browser.post("/api/v1/abroad/otp/enrol", &()).await?;
    let uri = Zeroizing::new(
        setup["uri"]
            .as_str()
            .ok_or_else(|| input("no OTP seed"))?
            .to_owned(),
    );
    print_qr(&uri)?;
    // The page shows the seed as text too, for apps without a camera.
    let secret = setup["secret"].as_str().unwrap_or_default();
    println!("[computer]   chiave / key: {secret}");
    let at = now();
    let code = otp_code(&uri, at)?;
    println!("[autenticatore] codice / code: {}", *code);
    let _: serde_json::Value = browser
        .post(
            "/api/v1/abroad/otp/confirm",
            &serde_json::json!({ "code": *code }),
        )
        .await?;
    println!("[computer] codice OTP attivo / OTP code active");

    let browser = Browser::new(server)?;
    println!("[computer] codice fiscale + PIN, poi il codice OTP / PIN, then the OTP code");
    let first: serde_json::Value = browser.pin_login(cf, ABROAD_NEW_PIN).await?;
    if first["otp_required"] != serde_json::Value::Bool(true) {
        return Err(input("the PIN login did not ask for the OTP code"));
    }
    // The next period's code: the one just used to confirm is spent.
    let code = otp_code(&uri, at + 30)?;
    println!("[autenticatore] codice / code: {}", *code);
    let _: serde_json::Value = browser
        .post(
            companion_server::api::ABROAD_LOGIN_OTP_PATH,
            &serde_json::json!({ "code": *code }),
        )
        .await?;
    let me: serde_json::Value = browser.get("/api/v1/session").await?;
    println!(
        "[computer] Accesso effettuato con PIN + OTP / logged in with PIN + OTP: {}",
        who(&me)
    );
    Ok(browser)
}

/// What the authenticator app shows at `unix` for an `otpauth://` link.
fn otp_code(uri: &str, unix: u64) -> Result<Zeroizing<String>, CliError> {
    cie_core::otp::otp_code_for_uri(uri.to_owned(), unix)
        .map(|c| Zeroizing::new(c.code))
        .map_err(|e| input(format!("OTP: {e}")))
}

/// §3 on both sides: the desktop shows `asked.number`, the phone lists its pending
/// requests, shows the context, picks the number and approves; the desktop's poll then
/// consumes the request. The session the desktop got.
async fn approve_on_phone(
    client: &CompanionClient,
    origin: &str,
    browser: &Browser,
    device_id: &str,
    signer: &Arc<SoftwareDeviceKey>,
    asked: &ApprovalCreated,
) -> Result<serde_json::Value, CliError> {
    let (origin, device_id, signer) = (origin.to_owned(), device_id.to_owned(), signer.clone());
    println!(
        "[computer] apri l'app e scegli questo numero / pick this number in the app: {:02}",
        asked.number
    );
    let pending = client
        .pending_approvals(origin.clone(), device_id.clone(), signer.clone())
        .await
        .map_err(flow)?;
    let approval = pending
        .into_iter()
        .find(|p| p.request_id == asked.request_id)
        .ok_or_else(|| input("the approval request did not reach the phone"))?;
    show_context(&approval.context);
    let choices: Vec<String> = approval.choices.iter().map(|c| format!("{c:02}")).collect();
    println!(
        "[telefono] quale numero vedi sul computer? / which number does the computer show? {}",
        choices.join("   ")
    );
    // The user reads the number off the desktop screen.
    let picked = asked.number;
    println!("[telefono] scelto {picked:02}, conferma con impronta o PIN del telefono → Autorizza");
    client
        .decide_approval(
            approval,
            device_id.clone(),
            signer.clone(),
            Decision::Approve,
            Some(picked),
        )
        .await
        .map_err(flow)?;
    let status: ApprovalStatus = browser
        .get(&format!(
            "/api/v1/approvals/{}?after=pending",
            asked.request_id
        ))
        .await?;
    println!("[computer] stato / state: {}", status.state);
    browser.get("/api/v1/session").await
}

/// How the phone approves a desktop QR.
enum Approver {
    /// Last 4 PIN digits and a card tap (level 3).
    Card {
        transport: SharedTransport,
        last4: Zeroizing<String>,
    },
    /// The enrolled device key (level 2).
    Device {
        device_id: String,
        signer: Arc<SoftwareDeviceKey>,
    },
}

/// One desktop QR login: the page's QR, the phone's scan, claim, context, approval, the code
/// typed on the desktop.
async fn desktop_qr(
    client: &CompanionClient,
    server: &RunningServer,
    approver: Approver,
) -> Result<(), CliError> {
    let browser = Browser::new(server)?;
    let created: RendezvousCreated = browser.post("/api/v1/desktop/rendezvous", &()).await?;
    println!(
        "[computer] la pagina {}/ mostra / the page shows:",
        server.origin()
    );
    print_qr(&created.qr)?;
    let scanned = scan_like_a_camera(&created.qr)?;
    println!("[telefono] QR inquadrato / QR scanned");
    let session = client
        .claim_desktop_qr(scanned, "cie-companion demo".into(), None)
        .await
        .map_err(flow)?;
    show_context(&session.context().map_err(flow)?);
    println!("[telefono] [ Autorizza ]   [ Nega / non sono stato io ]   → Autorizza");
    let code = match approver {
        Approver::Card { transport, last4 } => {
            println!("[telefono] ultime 4 cifre del PIN: ****; avvicina la carta / last 4 PIN digits, tap the card");
            session
                .approve_with_card(transport, Some(last4.to_string()), Some(progress()))
                .await
        }
        Approver::Device { device_id, signer } => {
            println!("[telefono] conferma con impronta o PIN del telefono / confirm with the phone's biometrics");
            session.approve_with_device(device_id, signer).await
        }
    }
    .map_err(flow)?;
    println!(
        "[telefono] Codice da digitare sul computer / code to type on the computer: {}",
        code.code
    );
    let status: RendezvousStatus = browser
        .get(&format!("/api/v1/desktop/rendezvous/{}", created.rid))
        .await?;
    println!(
        "[computer] stato / state: {:?}; digito il codice / typing the code",
        status.state
    );
    browser
        .post::<serde_json::Value, _>(
            &format!("/api/v1/desktop/rendezvous/{}/code", created.rid),
            &CodeRequest {
                code: code.code.clone(),
            },
        )
        .await?;
    let me: serde_json::Value = browser.get("/api/v1/session").await?;
    println!("[computer] Accesso effettuato / logged in: {}", who(&me));
    Ok(())
}

/// The certificates in a PEM bundle or a DER file (the server's own reader).
fn read_certs(path: &PathBuf) -> Result<Vec<Vec<u8>>, CliError> {
    let bytes = std::fs::read(path).map_err(|e| input(format!("{}: {e}", path.display())))?;
    companion_server::card::parse_certificates(&bytes)
        .map_err(|e| input(format!("{}: {e}", path.display())))
}

/// `YYYYMMDD` or `YYMMDD` (as the chip has them) as `DD/MM/YYYY` or `DD/MM/YY`; anything
/// else as it is.
pub(crate) fn date_it(d: &str) -> String {
    let digits = d.bytes().all(|b| b.is_ascii_digit());
    match d.len() {
        8 if digits => format!("{}/{}/{}", &d[6..8], &d[4..6], &d[..4]),
        6 if digits => format!("{}/{}/{}", &d[4..6], &d[2..4], &d[..2]),
        _ => d.to_string(),
    }
}

/// A database URL without its password.
fn redact_db(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://…@{}", &url[..s], &url[at + 1..]),
        _ => url.to_string(),
    }
}

fn who(me: &serde_json::Value) -> String {
    let id = &me["identity"];
    format!(
        "{} {} ({}), livello {}",
        id["given_name"].as_str().unwrap_or("?"),
        id["surname"].as_str().unwrap_or("?"),
        id["codice_fiscale"].as_str().unwrap_or("?"),
        me["level"]
    )
}

fn show_context(c: &LoginContext) {
    println!("[telefono] ┌ Richiesta di accesso / login request");
    println!("[telefono] │ servizio: {} (livello {})", c.service, c.level);
    println!(
        "[telefono] │ computer: {} su {}, {} ({})",
        c.browser, c.os, c.place, c.ip
    );
    let ago = now().saturating_sub(c.created_at);
    println!("[telefono] └ richiesta avviata {ago} s fa");
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Draw the QR in the terminal (two rows per character).
fn print_qr(text: &str) -> Result<(), CliError> {
    crate::qr::show(text, "   ")
}

/// What the phone's camera does: the QR as grey pixels, in a frame wider than the code with
/// padded rows, decoded by the core's frame scanner.
fn scan_like_a_camera(text: &str) -> Result<String, CliError> {
    let code = qrcode::QrCode::new(text.as_bytes()).map_err(|e| input(format!("QR: {e}")))?;
    let image = code
        .render::<image::Luma<u8>>()
        .module_dimensions(4, 4)
        .build();
    let (w, h) = (image.width() + 64, image.height() + 48);
    let stride = w + 16;
    let mut plane = vec![255u8; (stride * h) as usize];
    for (x, y, px) in image.enumerate_pixels() {
        plane[((y + 24) * stride + x + 32) as usize] = px.0[0];
    }
    scan_qr_frame(w, h, stride, &plane)
        .map_err(|e| input(format!("camera frame: {e}")))?
        .ok_or_else(|| input("the phone could not read the QR"))
}

fn progress() -> Arc<dyn ProgressListener> {
    Arc::new(PrintProgress)
}

struct PrintProgress;

impl ProgressListener for PrintProgress {
    fn on_step(&self, step: LoginStep, done: u32, total: u32) {
        let what = match step {
            LoginStep::Connecting => "collegamento alla carta",
            LoginStep::ReadingIdentity => "lettura identificativo",
            LoginStep::CheckingCard => "verifica autenticità",
            LoginStep::SecureChannel => "canale sicuro",
            LoginStep::VerifyingPin => "verifica PIN",
            LoginStep::Signing => "firma",
            LoginStep::ReadingCertificate => "lettura certificato",
            LoginStep::Done => "fatto: puoi allontanare la carta",
        };
        println!("[telefono]   {done}/{total} {what}");
    }

    fn on_bytes(&self, _: LoginStep, done: u32, total: u32) {
        // One line at the end of the read; a terminal sees the percentage move.
        let percent = u64::from(done) * 100 / u64::from(total.max(1));
        let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
        let back = if terminal { "\r" } else { "" };
        if done >= total {
            println!("{back}[telefono]        lettura certificato {percent}% ({total} byte)");
        } else if terminal {
            print!("\r[telefono]        lettura certificato {percent}%");
            let _ = std::io::Write::flush(&mut std::io::stdout());
        }
    }
}

/// The desktop browser: keeps its cookies, trusts the demo server's certificate.
struct Browser {
    http: reqwest::Client,
    origin: String,
}

impl Browser {
    fn new(server: &RunningServer) -> Result<Self, CliError> {
        let cert = reqwest::Certificate::from_der(server.certificate_der())
            .map_err(|e| input(format!("server certificate: {e}")))?;
        let http = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(cert)
            .cookie_store(true)
            .user_agent("Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0")
            .timeout(Duration::from_secs(40))
            .build()
            .map_err(|e| input(format!("browser: {e}")))?;
        Ok(Self {
            http,
            origin: server.origin().as_string(),
        })
    }

    /// `POST /api/v1/abroad/login`: codice fiscale and PIN.
    async fn pin_login(
        &self,
        codice_fiscale: &str,
        pin: &str,
    ) -> Result<serde_json::Value, CliError> {
        self.post(
            "/api/v1/abroad/login",
            &PinLogin {
                codice_fiscale,
                pin,
            },
        )
        .await
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        let resp = self.http.get(format!("{}{path}", self.origin)).send().await;
        Self::answer(path, resp).await
    }

    async fn post<T: serde::de::DeserializeOwned, B: serde::Serialize>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, CliError> {
        let resp = self
            .http
            .post(format!("{}{path}", self.origin))
            .json(body)
            .send()
            .await;
        Self::answer(path, resp).await
    }

    async fn answer<T: serde::de::DeserializeOwned>(
        path: &str,
        resp: reqwest::Result<reqwest::Response>,
    ) -> Result<T, CliError> {
        let resp = resp.map_err(|e| input(format!("{path}: {e}")))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| input(format!("{path}: {e}")))?;
        if !status.is_success() {
            return Err(input(format!("{path}: HTTP {status}: {text}")));
        }
        serde_json::from_str(if text.is_empty() { "null" } else { &text })
            .map_err(|e| input(format!("{path}: {e}")))
    }
}

/// The phone's keystore, in memory for the demo (the shells use Android Keystore / iOS
/// Keychain).
#[derive(Default)]
struct MemoryStore(Mutex<std::collections::HashMap<String, Vec<u8>>>);

impl SecretStore for MemoryStore {
    fn load(&self, name: String) -> Result<Option<Vec<u8>>, StoreError> {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(map.get(&name).cloned())
    }
    fn save(&self, name: String, value: Vec<u8>, _: Protection) -> Result<(), StoreError> {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.insert(name, value);
        Ok(())
    }
    fn remove(&self, name: String) -> Result<(), StoreError> {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.remove(&name);
        Ok(())
    }
}

/// A device key in memory (the phone keeps it in the secure hardware). Signs DER, as the
/// platform keystores do, so the core's DER → raw conversion runs.
struct SoftwareDeviceKey(p256::ecdsa::SigningKey);

impl SoftwareDeviceKey {
    fn generate() -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        loop {
            if getrandom::fill(seed.as_mut()).is_err() {
                continue;
            }
            if let Ok(k) = p256::ecdsa::SigningKey::from_slice(seed.as_ref()) {
                return Self(k);
            }
        }
    }
}

#[async_trait::async_trait]
impl DeviceSigner for SoftwareDeviceKey {
    fn public_key(&self) -> Result<Vec<u8>, StoreError> {
        Ok(self
            .0
            .verifying_key()
            .to_sec1_point(false)
            .as_bytes()
            .to_vec())
    }
    async fn sign(&self, message: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        let sig: p256::ecdsa::Signature = self.0.sign(&message);
        Ok(sig.to_der().as_bytes().to_vec())
    }
}
