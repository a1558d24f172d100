//! `cie-companion`: the desktop program. Lists readers, shows what a card answers, and plugs
//! the virtual CIE into pcscd through vsmartcard's vpcd.

mod demo;
mod doctor;
mod error;
mod mrtd;
mod otp;
mod pkcs11_install;
mod probe;
mod qr;
mod register;
mod secret_file;
mod transport;
mod vpcd;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

use crate::error::{CliError, exit};
use crate::transport::{OpenOptions, ReaderSpec};

const EXIT_CODES: &str = "Exit codes: 0 ok, 2 usage, 3 reader or reader service \
missing, 4 card missing or card/link error, 5 vpcd (virtual reader driver) error, 6 code \
store unreadable (wrong passphrase, damaged), 7 login or registration flow refused or failed (demo, register), 8 `pkcs11 install` could not \
register the module (NSS tools missing or refusing, files not writable), 9 `doctor` found a problem \
(each line marked FAIL says what to do); `qr decode` exits 1 when an image holds no QR code. On a real card, \
`demo` and `register` read the PIN and CAN from $CIE_COMPANION_PIN and $CIE_COMPANION_CAN when set, \
else ask for them without echo. One-time codes are kept in an encrypted file \
($CIE_COMPANION_STORE, default ~/.local/share/cie-companion/secrets.enc) whose passphrase is \
asked for, or read from $CIE_COMPANION_PASSPHRASE.";

/// Log in with the Italian electronic identity card (CIE) from the desktop.
#[derive(Debug, Parser)]
#[command(name = "cie-companion", version, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
    /// Log lines (standard error, or --log-file) as `text` or `json`; what is logged:
    /// RUST_LOG (default `warn`; `cie_companion=trace` adds the APDU trace, PINs and card
    /// data redacted).
    #[arg(long, value_enum, global = true, default_value = "text")]
    log_format: companion_server::observability::logs::LogFormat,
    /// Append the log lines to this file instead of the standard error.
    #[arg(long, global = true, value_name = "FILE")]
    log_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the three login flows end to end: a reference server on loopback (SQLite), the
    /// virtual CIE (or a real card with --reader), and the phone app's own API.
    Demo(demo::DemoArgs),
    /// Register with the CIE at a reference server (`companion-server --csca …`): the chip is
    /// read with the CAN (no PIN), shown, and sent once you confirm.
    Register(register::RegisterArgs),
    /// List PC/SC card readers and libnfc NFC devices.
    Readers,
    /// Work with a card.
    Card {
        #[command(subcommand)]
        command: CardCmd,
    },
    /// The virtual CIE.
    Sim {
        #[command(subcommand)]
        command: SimCmd,
    },
    /// Virtual cards served to real PC/SC software.
    #[command(name = "card-sim")]
    CardSim {
        #[command(subcommand)]
        command: CardSimCmd,
    },
    /// Identity documents' chips (the CIE's travel-document side, e-passports).
    Mrtd {
        #[command(subcommand)]
        command: MrtdCmd,
    },
    /// QR codes: decode images with the app's scanner, draw a code in the terminal.
    Qr {
        #[command(subcommand)]
        command: QrCmd,
    },
    /// Check what desktop logins with the card need (pcscd, readers, the card, the module
    /// registered for browsers, optionally a server's TLS), saying what to do for each problem.
    Doctor(doctor::DoctorArgs),
    /// The PKCS#11 module for browsers.
    Pkcs11 {
        #[command(subcommand)]
        command: Pkcs11Cmd,
    },
    /// One-time codes (TOTP/HOTP) from otpauth:// links.
    Otp {
        /// The encrypted code store (default: $CIE_COMPANION_STORE or
        /// ~/.local/share/cie-companion/secrets.enc).
        #[arg(long, global = true, value_name = "FILE")]
        store: Option<std::path::PathBuf>,
        #[command(subcommand)]
        command: OtpCmd,
    },
}

#[derive(Debug, Subcommand)]
enum Pkcs11Cmd {
    /// Register the module for this user: in the NSS database Chromium and Chrome read
    /// (with NSS's modutil) and as a p11-kit module; idempotent; --uninstall removes both.
    Install(pkcs11_install::InstallArgs),
}

#[derive(Debug, Subcommand)]
enum MrtdCmd {
    /// Read the chip with the CAN (or the MRZ data), show the holder's data, save the
    /// photo, and check the data against the issuing State's signature.
    Read(mrtd::ReadArgs),
}

#[derive(Debug, Subcommand)]
enum OtpCmd {
    /// Save a token from an otpauth:// link or from a QR code image (PNG or JPEG).
    Add {
        /// The otpauth:// link (quote it: it contains '&').
        #[arg(required_unless_present = "qr", conflicts_with = "qr")]
        uri: Option<String>,
        /// An image of the QR code instead of the link.
        #[arg(long, value_name = "IMAGE")]
        qr: Option<std::path::PathBuf>,
    },
    /// List saved tokens (names and parameters; never secrets).
    List,
    /// Print the current code of a saved token, or of a link without saving it.
    Code {
        /// The token's name (service:account, or just the service or account if unique).
        #[arg(required_unless_present = "uri", conflicts_with = "uri")]
        name: Option<String>,
        /// Compute for this otpauth:// link without saving it; exit status 2 if refused.
        #[arg(long)]
        uri: Option<String>,
        /// Compute at this Unix time instead of now.
        #[arg(long, value_name = "UNIX_SECONDS")]
        at: Option<u64>,
    },
    /// Forget a saved token and its secret.
    Remove {
        /// The token's name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum QrCmd {
    /// Print the text of the QR code in each image (PNG or JPEG), one line per image, or
    /// `no QR found`. Exit status 0 when every image decoded, 1 otherwise.
    Decode {
        /// The images.
        #[arg(required = true)]
        images: Vec<std::path::PathBuf>,
    },
    /// Draw TEXT as a QR code in the terminal.
    Show {
        /// The text to encode.
        text: String,
    },
}

#[derive(Debug, Subcommand)]
enum CardCmd {
    /// Show the link (ATR/ATS, limits) and which known applications the card answers.
    Info {
        /// `sim` (virtual CIE), `pcsc`, `pcsc:NAME`, `nfc` or `nfc:CONNSTRING`.
        #[arg(long, default_value = "sim")]
        reader: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// PC/SC only: force extended-length APDUs on or off (default: ask the reader).
        #[arg(long, value_name = "on|off", value_parser = parse_on_off)]
        extended_length: Option<bool>,
    },
}

#[derive(Debug, Subcommand)]
enum SimCmd {
    /// Insert the virtual CIE into pcscd's "Virtual PCD" reader (vsmartcard-vpcd); runs
    /// until vpcd closes the connection (pcscd stops) or Ctrl+C.
    Vpcd {
        /// Host where pcscd with vpcd runs.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// vpcd port (35963 is slot 0, "Virtual PCD 00 00").
        #[arg(long, default_value_t = vpcd::DEFAULT_PORT)]
        port: u16,
        /// Keep trying to connect for this many seconds while vpcd is not listening yet.
        #[arg(long, default_value_t = 10)]
        wait: u64,
        /// Which virtual card: `cie` (IAS + eMRTD with PACE), `cns` (TS-CNS, STIncard
        /// family) or `passport` (eMRTD, BAC).
        #[arg(long, default_value = "cie", value_parser = ["cie", "cns", "passport"])]
        card: String,
    },
}

#[derive(Debug, Subcommand)]
enum CardSimCmd {
    /// Serve a virtual card to pcscd through vsmartcard's vpcd, so every PC/SC program on
    /// the machine sees it in the "Virtual PCD" reader; runs until pcscd stops or Ctrl+C.
    Serve {
        /// Which virtual card: `cie` (IAS + eMRTD with PACE), `cns` (TS-CNS, STIncard
        /// family) or `passport` (eMRTD, BAC).
        #[arg(long, default_value = "cie", value_parser = ["cie", "cns", "passport"])]
        card: String,
        /// Where vpcd listens (35963 is slot 0, "Virtual PCD 00 00").
        #[arg(long, default_value = "127.0.0.1:35963", value_parser = parse_host_port)]
        vpcd: (String, u16),
        /// Keep trying to connect for this many seconds while vpcd is not listening yet.
        #[arg(long, default_value_t = 10)]
        wait: u64,
    },
}

fn parse_host_port(s: &str) -> Result<(String, u16), String> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| "use HOST:PORT, e.g. 127.0.0.1:35963".to_string())?;
    let port = port
        .parse()
        .map_err(|_| format!("'{port}' is not a port number"))?;
    if host.is_empty() {
        return Err("use HOST:PORT, e.g. 127.0.0.1:35963".into());
    }
    Ok((host.to_string(), port))
}

fn parse_on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" | "true" | "yes" => Ok(true),
        "off" | "false" | "no" => Ok(false),
        _ => Err("use on or off".into()),
    }
}

/// Whether a panic payload is `println!` failing because the reader of our standard output
/// went away (`cie-companion … | head`).
fn is_broken_pipe(payload: &(dyn std::any::Any + Send)) -> bool {
    let text = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or_default();
    text.contains("failed printing to stdout") && text.contains("Broken pipe")
}

fn main() -> ExitCode {
    // A closed output pipe is the reader saying "enough", not an error: stop quietly with
    // status 0, as ripgrep and coreutils-style tools do, instead of a panic trace.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !is_broken_pipe(info.payload()) {
            default_hook(info);
        }
    }));
    match std::panic::catch_unwind(run) {
        Ok(code) => code,
        Err(payload) if is_broken_pipe(&*payload) => ExitCode::SUCCESS,
        Err(payload) => std::panic::resume_unwind(payload),
    }
}

fn run() -> ExitCode {
    let cli = Cli::parse();
    // Logs never on standard output: that is the screen text and the data commands print.
    let _logs = match companion_server::observability::logs::init(
        cli.log_format,
        "warn",
        cli.log_file.as_deref(),
        companion_server::observability::logs::Stream::Stderr,
    ) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("Error: --log-file: {e} | Errore: --log-file: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Cmd::Demo(args) => demo::run(args),
        Cmd::Register(args) => register::run(args),
        Cmd::Readers => readers(),
        Cmd::Doctor(args) => doctor::run(args),
        Cmd::Pkcs11 {
            command: Pkcs11Cmd::Install(args),
        } => pkcs11_install::run(args),
        Cmd::Card {
            command:
                CardCmd::Info {
                    reader,
                    json,
                    extended_length,
                },
        } => card_info(&reader, json, OpenOptions { extended_length }),
        Cmd::Sim {
            command:
                SimCmd::Vpcd {
                    host,
                    port,
                    wait,
                    card,
                },
        } => sim_vpcd(&host, port, Duration::from_secs(wait), &card),
        Cmd::CardSim {
            command:
                CardSimCmd::Serve {
                    card,
                    vpcd: (host, port),
                    wait,
                },
        } => sim_vpcd(&host, port, Duration::from_secs(wait), &card),
        Cmd::Mrtd {
            command: MrtdCmd::Read(args),
        } => mrtd::read(args),
        Cmd::Qr {
            command: QrCmd::Decode { images },
        } => match qr::decode(&images) {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::from(1),
            Err(e) => Err(e),
        },
        Cmd::Qr {
            command: QrCmd::Show { text },
        } => qr::show(&text, ""),
        Cmd::Otp { store, command } => match command {
            OtpCmd::Add { uri, qr } => otp::add(uri, qr, store),
            OtpCmd::List => otp::list(store),
            OtpCmd::Code { name, uri, at } => otp::code(name, uri, at, store),
            OtpCmd::Remove { name } => otp::remove(name, store),
        },
    };
    match result {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) if e.one_line() => {
            eprintln!("Error: {} | Errore: {}", e.message_en(), e.message_it());
            ExitCode::from(e.exit_code())
        }
        Err(e) => {
            eprintln!("Error: {}\nErrore: {}", e.message_en(), e.message_it());
            ExitCode::from(e.exit_code())
        }
    }
}

fn readers() -> Result<(), CliError> {
    let mut found = 0;
    match transport::pcsc::list_readers() {
        Ok(list) if list.is_empty() => println!("PC/SC readers: none"),
        Ok(list) => {
            println!("PC/SC readers (use --reader \"pcsc:NAME\"):");
            for r in &list {
                let state = match r.card_present {
                    Some(true) => "card present",
                    Some(false) => "no card",
                    None => "card state unknown",
                };
                println!("  {}  ({state})", r.name);
            }
            found += list.len();
        }
        Err(e) => println!(
            "PC/SC readers: the PC/SC service is not available ({}). Start pcscd to use contact readers.",
            match &e {
                cie_readers::ReaderError::Unavailable { reason } => reason.as_str(),
                _ => "unknown error",
            }
        ),
    }
    match transport::nfc::list_devices() {
        Ok(list) if list.is_empty() => println!("NFC devices (libnfc): none"),
        Ok(list) => {
            println!("NFC devices (libnfc; use --reader \"nfc:CONNSTRING\"):");
            for d in &list {
                println!("  {d}");
            }
            found += list.len();
        }
        Err(e) => println!("NFC devices (libnfc): could not be listed ({e})"),
    }
    if found == 0 {
        println!(
            "\nNo card readers found. / Nessun lettore di carte trovato.\n\
             Plug in a PC/SC or NFC reader, or try the virtual card: cie-companion card info --reader sim"
        );
    }
    Ok(())
}

fn card_info(reader: &str, json: bool, opts: OpenOptions) -> Result<(), CliError> {
    let spec: ReaderSpec = reader.parse()?;
    let (link, shown) = transport::open(&spec, opts)?;
    let report = pollster::block_on(probe::probe(link))?;
    if json {
        println!("{}", report.to_json(&shown));
    } else {
        print!("{}", report.render(&shown));
        if !probe::any_present(&report) {
            println!(
                "\nNone of the known applications answered: this does not look like a CIE. \
                 / Nessuna applicazione nota ha risposto: non sembra una CIE."
            );
        }
    }
    Ok(())
}

fn sim_vpcd(host: &str, port: u16, wait: Duration, card: &str) -> Result<(), CliError> {
    let deadline = Instant::now() + wait;
    let mut stream = loop {
        match vpcd::connect(host, port) {
            Ok(s) => break s,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => {
                return Err(CliError::Vpcd {
                    reason: format!("cannot connect to {host}:{port}: {e}"),
                });
            }
        }
    };
    // vpcd slot N listens on 35963 + N and pcsc-lite names it "Virtual PCD 00 0N".
    let reader = match port.checked_sub(vpcd::DEFAULT_PORT) {
        Some(slot) if slot < 10 => format!("pcsc:Virtual PCD 00 0{slot}"),
        _ => "pcsc:<the Virtual PCD reader listed by `cie-companion readers`>".into(),
    };
    let what = match card {
        "passport" => "Virtual passport",
        "cns" => "Virtual CNS",
        _ => "Virtual CIE",
    };
    println!(
        "{what} inserted into vpcd at {host}:{port}. Use it with --reader \"{reader}\"; \
         stop with Ctrl+C."
    );
    // One card for the whole connection: a reset power-cycles it (session, selection and
    // verified PIN dropped) but keeps its files and PIN/PUK counters, as a real card does,
    // so a wrong PIN stays spent from one PC/SC program to the next.
    let virtual_card = Arc::new(match card {
        "passport" => card_sim::emrtd::virtual_passport_bac(card_sim::CardConfig::default()),
        "cns" => card_sim::cns::virtual_cns(),
        _ => transport::virtual_cie(),
    });
    let stats = vpcd::serve(&mut stream, || {
        virtual_card.power_cycle();
        virtual_card.clone()
    })
    .map_err(|e| CliError::Vpcd {
        reason: e.to_string(),
    })?;
    println!(
        "vpcd closed the connection: virtual card removed ({} APDUs, {} resets).",
        stats.apdus, stats.resets
    );
    Ok(())
}
