//! `cie-companion register`: registration with the CIE (issue 12) at a running
//! `companion-server` (one started with `--csca`), through the same public API the phone
//! app uses. The card is read with the CAN only; what the chip holds is shown, and nothing
//! is sent until the citizen confirms (or `--yes`). The demo's step 0 uses [`registration`].

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;

use cie_core::ffi::{CompanionClient, FlowError, RegistrationPreview};
use cie_core::flows::wire::ErrorCode;
use cie_core::transport::CardTransport;
use zeroize::Zeroizing;

use crate::demo::{date_it, flow, input};
use crate::error::CliError;
use crate::transport::{OpenOptions, ReaderSpec};

/// Where the CAN comes from when `--can` is not given (scripts; a prompt otherwise).
pub const CAN_ENV: &str = "CIE_COMPANION_CAN";

/// `register` options.
#[derive(Debug, clap::Args)]
pub struct RegisterArgs {
    /// The server, e.g. `https://login.example.it` (what `companion-server` listens on).
    #[arg(long, value_name = "URL")]
    pub server: String,
    /// The server's TLS key pin, `sha256/BASE64` (what `companion-server --pin-file`
    /// writes). The app trusts this key only, not the system's CAs.
    #[arg(long, value_name = "PIN")]
    pub server_key: String,
    /// The card: `sim` (virtual CIE), `pcsc`, `pcsc:NAME`, `nfc` or `nfc:CONNSTRING`.
    #[arg(long, default_value = "sim")]
    pub reader: String,
    /// The card access number (6 digits on the front of the CIE). Default: $CIE_COMPANION_CAN,
    /// else asked without echo (an argument is visible to other users of this computer).
    #[arg(long)]
    pub can: Option<String>,
    /// Send what the chip holds without asking for confirmation.
    #[arg(long)]
    pub yes: bool,
    /// PC/SC only: force extended-length APDUs on or off (default: ask the reader).
    #[arg(long, value_name = "on|off", value_parser = crate::parse_on_off)]
    pub extended_length: Option<bool>,
}

/// How a registration ended.
pub enum Outcome {
    /// The server created (or linked) the identity.
    Registered,
    /// The server knew this card already: nothing changed.
    AlreadyRegistered { message: String, message_it: String },
    /// The citizen did not confirm: nothing was sent.
    Declined,
}

/// A secret from `env` when set (non-interactive use), else asked without echo.
pub fn secret(env: &str, prompt: &str) -> Result<Zeroizing<String>, CliError> {
    if let Ok(v) = std::env::var(env)
        && !v.is_empty()
    {
        return Ok(Zeroizing::new(v));
    }
    rpassword::prompt_password(prompt)
        .map(Zeroizing::new)
        .map_err(|e| input(format!("cannot read it ({e}); or set ${env}")))
}

/// The CAN prompt, in both languages.
pub const CAN_PROMPT: &str =
    "CAN della CIE (6 cifre sul fronte) / card access number (6 digits on the front): ";

pub fn run(args: RegisterArgs) -> Result<(), CliError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| input(format!("cannot start the async runtime: {e}")))?;
    rt.block_on(register(args))
}

async fn register(args: RegisterArgs) -> Result<(), CliError> {
    let spec: ReaderSpec = args.reader.parse()?;
    // Ask before touching the reader: a script without a terminal fails here, not mid-way.
    if !args.yes && !std::io::stdin().is_terminal() {
        return Err(input(
            "standard input is not a terminal: pass --yes to send what the chip holds without \
             asking",
        ));
    }
    let can = match &args.can {
        Some(c) => Zeroizing::new(c.clone()),
        None => secret(CAN_ENV, CAN_PROMPT)?,
    };
    let (transport, reader_name) = crate::transport::open(
        &spec,
        OpenOptions {
            extended_length: args.extended_length,
        },
    )?;
    let client = CompanionClient::new(vec![args.server.clone()], vec![args.server_key], None)
        .map_err(flow)?;
    println!("== Registrazione con la CIE / registration with the CIE");
    println!("   server: {}", args.server);
    println!("   carta / card: {reader_name}");
    let yes = args.yes;
    let outcome = registration(&client, &args.server, transport, &can, move |_| {
        if yes {
            println!("[telefono] Confermi? sì (--yes)");
            return Ok(true);
        }
        print!("[telefono] Inviare questi dati? / send this data? [s/N] ");
        std::io::stdout().flush().ok();
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| input(format!("cannot read the answer: {e}")))?;
        Ok(matches!(
            line.trim().to_lowercase().as_str(),
            "s" | "si" | "sì" | "y" | "yes"
        ))
    })
    .await?;
    match outcome {
        Outcome::Registered => Ok(()),
        Outcome::Declined => {
            println!("Nulla è stato inviato. / Nothing was sent.");
            Ok(())
        }
        Outcome::AlreadyRegistered {
            message,
            message_it,
        } => Err(CliError::Flow {
            message,
            message_it,
        }),
    }
}

/// Registration: challenge, one CAN tap, the preview the citizen confirms (`confirm`), the
/// post. Prints what each screen would show.
pub async fn registration(
    client: &CompanionClient,
    origin: &str,
    transport: Arc<dyn CardTransport>,
    can: &str,
    confirm: impl FnOnce(&RegistrationPreview) -> Result<bool, CliError>,
) -> Result<Outcome, CliError> {
    let session = client
        .start_registration(origin.to_string(), can.to_string())
        .await
        .map_err(flow)?;
    println!("[telefono] sfida ricevuta; avvicina la CIE (serve solo il CAN, non il PIN)");
    let preview = session.tap(transport, None).await.map_err(flow)?;
    show(&preview);
    if !confirm(&preview)? {
        return Ok(Outcome::Declined);
    }
    let done = match session.submit().await {
        Ok(done) => done,
        Err(FlowError::Server {
            code: ErrorCode::AlreadyRegistered,
            message_en: message,
            message_it,
            ..
        }) => {
            println!("[server]   carta già registrata: {message_it}");
            return Ok(Outcome::AlreadyRegistered {
                message,
                message_it,
            });
        }
        Err(e) => return Err(flow(e)),
    };
    println!(
        "[server]   chip verificato (firme dello Stato, hash dei dati, carta presente): identità {}",
        if done.linked_to_existing {
            "esistente, collegata"
        } else {
            "nuova"
        }
    );
    println!(
        "[telefono] Registrazione completata: {} {} ({}), livello {}",
        done.identity.given_name, done.identity.surname, done.identity.codice_fiscale, done.level
    );
    Ok(Outcome::Registered)
}

fn show(preview: &RegistrationPreview) {
    let a = &preview.attributes;
    println!(
        "[telefono] Dati letti dal chip, da confermare prima dell'invio / read from the chip:"
    );
    println!("             {} {}", a.given_names, a.surname);
    println!(
        "             codice fiscale {}",
        a.codice_fiscale.as_deref().unwrap_or("—")
    );
    println!(
        "             nato/a il {} a {}",
        date_it(&a.date_of_birth),
        a.place_of_birth.as_deref().unwrap_or("—")
    );
    println!(
        "             documento {} valido fino al {}{}",
        a.document_number,
        date_it(&a.date_of_expiry),
        if preview.portrait.is_some() {
            ", con foto"
        } else {
            ""
        }
    );
    println!(
        "             sarà inviato / will be sent: {}",
        preview.sent_items_it.join(", ")
    );
}
