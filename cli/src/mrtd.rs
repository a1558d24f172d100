//! `cie-companion mrtd read`: read an identity document's chip (the CIE, any e-passport)
//! with the CAN or the MRZ data, show the holder's data, save the photo, and say plainly
//! whether the chip's data is what the issuing State signed.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use cie_core::apdu::CardChannel;
use cie_core::applets::emrtd::lds::File;
use cie_core::applets::emrtd::lds::dg2::ImageFormat;
use cie_core::applets::emrtd::passive::{HashCheck, PassiveReport, TrustStore};
use cie_core::applets::emrtd::{Can, EmrtdError, Mrz, OsRandomness, PacePassword};
use cie_core::flows::document::{CloneCheck, Document, DocumentProgress, DocumentRead};

use crate::error::CliError;
use crate::transport::{self, OpenOptions, ReaderSpec};

/// What `mrtd read` was asked.
#[derive(Debug, clap::Args)]
pub struct ReadArgs {
    /// `sim` (virtual CIE), `sim:passport` (virtual passport, BAC), `pcsc`, `pcsc:NAME`,
    /// `nfc` or `nfc:CONNSTRING`.
    #[arg(long, default_value = "sim")]
    pub reader: String,
    /// The card access number: the 6 digits printed on the front of the CIE.
    #[arg(long, conflicts_with = "mrz")]
    pub can: Option<String>,
    /// The MRZ data instead: DOCUMENT_NUMBER,BIRTH_YYMMDD,EXPIRY_YYMMDD.
    #[arg(long)]
    pub mrz: Option<String>,
    /// Save the photo here (.png converts; any other extension keeps the chip's JPEG or
    /// JPEG 2000 bytes).
    #[arg(long, value_name = "FILE")]
    pub photo: Option<PathBuf>,
    /// Trusted Country Signing CA certificates (DER or PEM) or ICAO master lists (.ml);
    /// repeatable.
    #[arg(long, value_name = "FILE")]
    pub csca: Vec<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// PC/SC only: force extended-length APDUs on or off (default: ask the reader).
    #[arg(long, value_name = "on|off", value_parser = crate::parse_on_off)]
    pub extended_length: Option<bool>,
}

fn password(args: &ReadArgs) -> Result<PacePassword, CliError> {
    let input = |e: EmrtdError| CliError::Input {
        reason: e.to_string(),
    };
    match (&args.can, &args.mrz) {
        (Some(can), None) => Ok(PacePassword::Can(Can::new(can).map_err(input)?)),
        (None, Some(mrz)) => {
            let parts: Vec<&str> = mrz.split(',').map(str::trim).collect();
            let [doc, birth, expiry] = parts.as_slice() else {
                return Err(CliError::Input {
                    reason: "--mrz takes DOCUMENT_NUMBER,BIRTH_YYMMDD,EXPIRY_YYMMDD".into(),
                });
            };
            Ok(PacePassword::Mrz(
                Mrz::new(doc, birth, expiry).map_err(input)?,
            ))
        }
        _ => Err(CliError::Input {
            reason: "give --can (6 digits printed on the card) or --mrz DOCUMENT,BIRTH,EXPIRY"
                .into(),
        }),
    }
}

/// A progress bar for the photo (the only file big enough to wait for).
struct Bar(Mutex<Option<indicatif::ProgressBar>>);

impl DocumentProgress for Bar {
    fn on_file(&self, file: File, done: usize, total: Option<usize>) {
        let Ok(mut bar) = self.0.lock() else { return };
        if file != File::Dg(2) {
            return;
        }
        let b = bar.get_or_insert_with(|| {
            let b = indicatif::ProgressBar::new(total.unwrap_or(0) as u64);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "Photo / foto  {bar:32} {bytes}/{total_bytes}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            b
        });
        b.set_position(done as u64);
        if total.is_some_and(|t| done >= t) {
            b.finish_and_clear();
        }
    }
}

fn trust_store(args: &ReadArgs, spec: &ReaderSpec) -> Result<(TrustStore, Vec<String>), CliError> {
    let mut trust = TrustStore::new();
    let mut names = Vec::new();
    for path in &args.csca {
        let bytes = std::fs::read(path).map_err(|e| CliError::Input {
            reason: format!("cannot read {}: {e}", path.display()),
        })?;
        let mut label = path.display().to_string();
        let ders =
            companion_server::card::parse_certificates(&bytes).map_err(|e| CliError::Input {
                reason: format!("{}: {e}", path.display()),
            })?;
        for der in ders {
            let list = trust
                .add_certificate_or_master_list(&der)
                .map_err(|e| CliError::Input {
                    reason: format!(
                        "{}: neither a certificate nor a master list ({e})",
                        path.display()
                    ),
                })?;
            if let Some(info) = list {
                let signature = if info.signature.is_ok() {
                    "valid"
                } else {
                    "NOT valid"
                };
                label = format!(
                    "{} (master list: {} CSCAs, signature {signature})",
                    path.display(),
                    info.added
                );
            }
        }
        names.push(label);
    }
    if matches!(spec, ReaderSpec::Sim | ReaderSpec::SimPassport) && args.csca.is_empty() {
        // The virtual card is signed by card-sim's test CSCA: trust it for the demo only.
        trust
            .add_der(card_sim::emrtd::CSCA_CERT_DER)
            .map_err(|e| CliError::Input {
                reason: e.to_string(),
            })?;
        names.push("card-sim test CSCA (virtual card only)".into());
    }
    Ok((trust, names))
}

fn save_photo(doc: &Document, path: &Path) -> Result<String, CliError> {
    let faces = doc
        .faces()
        .ok_or_else(|| CliError::Card {
            reason: "the chip has no photo (DG2)".into(),
        })?
        .map_err(|e| CliError::Card {
            reason: e.to_string(),
        })?;
    let face = faces.first().ok_or_else(|| CliError::Card {
        reason: "DG2 holds no image".into(),
    })?;
    let png = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    let write_err = |e: &dyn std::fmt::Display| CliError::Input {
        reason: format!("{}: {e}", path.display()),
    };
    if png {
        let rgb = face.decode().map_err(|e| CliError::Card {
            reason: e.to_string(),
        })?;
        let img =
            image::RgbImage::from_raw(rgb.width, rgb.height, rgb.pixels).ok_or_else(|| {
                CliError::Card {
                    reason: "decoded photo has the wrong size".into(),
                }
            })?;
        img.save(path).map_err(|e| write_err(&e))?;
        Ok(format!("{}×{} PNG", img.width(), img.height()))
    } else {
        std::fs::write(path, &face.data).map_err(|e| write_err(&e))?;
        Ok(match face.format {
            ImageFormat::Jpeg => "JPEG as stored".into(),
            ImageFormat::Jpeg2000 => "JPEG 2000 as stored".into(),
        })
    }
}

fn verdict(report: &PassiveReport) -> (&'static str, &'static str) {
    if report.is_valid() {
        (
            "GENUINE: the data is what the issuing State signed",
            "AUTENTICO: i dati sono quelli firmati dallo Stato emittente",
        )
    } else if report
        .data_groups
        .iter()
        .any(|(_, c)| *c == HashCheck::Mismatch)
    {
        (
            "ALTERED: some data differs from what the State signed",
            "ALTERATO: alcuni dati differiscono da quelli firmati dallo Stato",
        )
    } else if report.signature.is_err() {
        (
            "NOT GENUINE: the security object's signature is invalid",
            "NON AUTENTICO: la firma dell'oggetto di sicurezza non è valida",
        )
    } else {
        (
            "NOT VERIFIED: the signer is not in the trusted CSCA list",
            "NON VERIFICATO: il firmatario non è tra le CSCA fidate",
        )
    }
}

fn clone_line(c: &CloneCheck) -> String {
    match c {
        CloneCheck::Verified => "passed: the chip holds its key (not a copy) / superata: il chip possiede la sua chiave (non è una copia)".into(),
        CloneCheck::NotOffered => "not offered by this chip / non offerta da questo chip".into(),
        CloneCheck::NotRun => "not run / non eseguita".into(),
        CloneCheck::Failed(e) => format!("FAILED: possible cloned chip / FALLITA: possibile chip clonato ({e})"),
    }
}

fn clone_json(c: &CloneCheck) -> &'static str {
    match c {
        CloneCheck::Verified => "\"verified\"",
        CloneCheck::NotOffered => "\"not_offered\"",
        CloneCheck::NotRun => "\"not_run\"",
        CloneCheck::Failed(_) => "\"failed\"",
    }
}

fn json_str(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// `mrtd read`.
pub fn read(args: ReadArgs) -> Result<(), CliError> {
    let pw = password(&args)?;
    let spec: ReaderSpec = args.reader.parse()?;
    let (trust, trust_names) = trust_store(&args, &spec)?;
    let (link, shown) = transport::open(
        &spec,
        OpenOptions {
            extended_length: args.extended_length,
        },
    )?;
    let ch = CardChannel::new(link);
    let bar = Bar(Mutex::new(None));
    let mut read = DocumentRead::new(pw);
    let doc = pollster::block_on(read.tap(&ch, &OsRandomness, &bar)).map_err(|e| match e {
        EmrtdError::Apdu(cie_core::apdu::ApduError::Transport(t)) => CliError::Transport(t),
        other => CliError::Document(other),
    })?;
    let mrz = doc.mrz().transpose().map_err(|e| CliError::Card {
        reason: e.to_string(),
    })?;
    let personal = doc
        .personal_details()
        .transpose()
        .map_err(|e| CliError::Card {
            reason: e.to_string(),
        })?;
    let document = doc
        .document_details()
        .transpose()
        .map_err(|e| CliError::Card {
            reason: e.to_string(),
        })?;
    let photo = match &args.photo {
        Some(p) => Some((p, save_photo(&doc, p)?)),
        None => None,
    };
    let pa = doc.passive(&trust).map_err(|e| CliError::Card {
        reason: e.to_string(),
    })?;
    let cloned = matches!(doc.chip_authentication, CloneCheck::Failed(_))
        || matches!(doc.active_authentication, CloneCheck::Failed(_));
    let (en, it) = if cloned {
        (
            "NOT GENUINE: the chip failed the clone check",
            "NON AUTENTICO: il chip non ha superato il controllo anti-clonazione",
        )
    } else {
        verdict(&pa)
    };

    if args.json {
        let mut fields = vec![format!("\"reader\":{}", json_str(&shown))];
        if let Some(m) = &mrz {
            fields.push(format!(
                "\"mrz\":{{\"document_code\":{},\"issuing_state\":{},\"document_number\":{},\"surname\":{},\"given_names\":{},\"nationality\":{},\"date_of_birth\":{},\"sex\":{},\"date_of_expiry\":{}}}",
                json_str(&m.document_code), json_str(&m.issuing_state), json_str(&m.document_number),
                json_str(&m.primary_identifier), json_str(&m.secondary_identifier), json_str(&m.nationality),
                json_str(&m.date_of_birth), json_str(&m.sex.to_string()), json_str(&m.date_of_expiry)
            ));
        }
        if let Some(p) = &personal {
            let opt = |v: &Option<String>| v.as_deref().map_or("null".into(), json_str);
            fields.push(format!(
                "\"personal\":{{\"personal_number\":{},\"full_date_of_birth\":{},\"place_of_birth\":{},\"address\":{}}}",
                opt(&p.personal_number), opt(&p.full_date_of_birth), opt(&p.place_of_birth), opt(&p.address)
            ));
        }
        let dgs: Vec<String> = pa
            .data_groups
            .iter()
            .map(|(f, c)| {
                format!(
                    "{}:{}",
                    json_str(&f.to_string()),
                    json_str(&format!("{c:?}").to_lowercase())
                )
            })
            .collect();
        fields.push(format!(
            "\"passive_authentication\":{{\"valid\":{},\"signature\":{},\"chain\":{},\"data_groups\":{{{}}}}}",
            pa.is_valid(),
            json_str(&pa.signature.as_ref().map_or_else(|e| e.to_string(), |()| "valid".into())),
            json_str(&pa.chain.as_ref().map_or_else(|e| e.to_string(), |c| format!("valid: {c}"))),
            dgs.join(",")
        ));
        fields.push(format!(
            "\"chip_authentication\":{},\"active_authentication\":{}",
            clone_json(&doc.chip_authentication),
            clone_json(&doc.active_authentication)
        ));
        println!("{{{}}}", fields.join(","));
        return Ok(());
    }

    println!("Reader / lettore: {shown}");
    println!("Access / accesso: {:?}", doc.access);
    if let Some(m) = &mrz {
        println!("\nHolder / titolare");
        println!("  Surname / cognome:          {}", m.primary_identifier);
        println!("  Given names / nome:         {}", m.secondary_identifier);
        println!(
            "  Document / documento:       {} {} ({})",
            m.document_code, m.document_number, m.issuing_state
        );
        println!("  Nationality / cittadinanza: {}", m.nationality);
        println!(
            "  Born / nato il (YYMMDD):    {}   Sex / sesso: {}",
            m.date_of_birth, m.sex
        );
        println!("  Expires / scade (YYMMDD):   {}", m.date_of_expiry);
    }
    if let Some(p) = &personal {
        let show = |label: &str, v: &Option<String>| {
            if let Some(v) = v {
                println!("  {label:<28}{v}");
            }
        };
        show("Codice fiscale:", &p.personal_number);
        show("Place of birth / nato a:", &p.place_of_birth);
        show("Address / residenza:", &p.address);
    }
    if let Some(d) = &document {
        if let Some(a) = &d.issuing_authority {
            println!("  {:<28}{a}", "Issued by / rilasciato da:");
        }
        if let Some(a) = &d.date_of_issue {
            println!("  {:<28}{a}", "Issued on / rilasciato il:");
        }
    }
    if let Some((p, how)) = &photo {
        println!("  Photo / foto:               {} ({how})", p.display());
    }
    println!("\nVerification / verifica");
    println!("  {en}\n  {it}");
    println!(
        "  SOD signature / firma SOD:  {}",
        pa.signature.as_ref().map_or_else(
            |e| format!("INVALID / NON VALIDA ({e})"),
            |()| "valid / valida".into()
        )
    );
    println!(
        "  Signer chain / catena:      {}",
        pa.chain.as_ref().map_or_else(
            |e| format!("NOT TRUSTED / NON FIDATA ({e})"),
            |c| format!("trusted / fidata ({c})")
        )
    );
    println!(
        "  Trusted CSCAs / CSCA fidate: {}",
        if trust_names.is_empty() {
            "none (use --csca)".into()
        } else {
            trust_names.join("; ")
        }
    );
    for (f, c) in &pa.data_groups {
        let s = match c {
            HashCheck::Match => "matches / corrisponde",
            HashCheck::Mismatch => "ALTERED / ALTERATO",
            HashCheck::NotInSod => "not covered by the SOD / non coperto dal SOD",
        };
        println!("  {f:<6} {s}");
    }
    println!(
        "  Chip authentication / autenticazione del chip: {}",
        clone_line(&doc.chip_authentication)
    );
    println!(
        "  Active authentication / autenticazione attiva: {}",
        clone_line(&doc.active_authentication)
    );
    Ok(())
}
