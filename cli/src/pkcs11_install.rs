//! `pkcs11 install`: register the PKCS#11 module for the current user, where desktop
//! programs look for it:
//! - the user's NSS shared database (`sql:$HOME/.pki/nssdb`, read by Chromium / Chrome and
//!   other NSS programs), through NSS's own `modutil` (the supported way: it loads the
//!   module and writes `pkcs11.txt` itself);
//! - a p11-kit module file (`$HOME/.config/pkcs11/modules/cie-companion.module`), for the
//!   programs that load modules through p11-kit (GnuTLS, GNOME, p11-kit-proxy).
//!
//! Idempotent: a second install says so and changes nothing; `--uninstall` removes both.
//! `doctor` reads the same two places ([`nss_modules`], [`p11kit_module`]) without NSS tools.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::CliError;

/// The name the module is registered under (NSS) and the p11-kit file's stem.
pub const MODULE_NAME: &str = "cie-companion";
/// The module's file name.
pub const MODULE_FILE: &str = "libcie_companion_pkcs11.so";

/// Where distributions put PKCS#11 modules (Debian's multiarch `pkcs11/` directory, the one
/// p11-kit and OpenSC use), for this build's architecture.
pub const SYSTEM_MODULE_DIR: &str = if cfg!(target_arch = "aarch64") {
    "/usr/lib/aarch64-linux-gnu/pkcs11"
} else {
    "/usr/lib/x86_64-linux-gnu/pkcs11"
};

/// Options of `pkcs11 install`.
#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    /// The module to register (default: libcie_companion_pkcs11.so next to this program,
    /// else in /usr/lib/<arch>-linux-gnu/pkcs11/).
    #[arg(long, value_name = "PATH")]
    pub module: Option<PathBuf>,
    /// The NSS database (default: $HOME/.pki/nssdb, the one Chromium and Chrome read;
    /// a Firefox profile directory works too, with Firefox closed).
    #[arg(long, value_name = "DIR")]
    pub nssdb: Option<PathBuf>,
    /// Where the p11-kit module file goes (default: $HOME/.config/pkcs11/modules).
    #[arg(long, value_name = "DIR")]
    pub p11kit_dir: Option<PathBuf>,
    /// Remove the module from the NSS database and the p11-kit file instead.
    #[arg(long)]
    pub uninstall: bool,
}

fn home() -> Result<PathBuf, CliError> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| CliError::Input {
            reason: "HOME is not set: pass --nssdb and --p11kit-dir".into(),
        })
}

/// The NSS database directory: `--nssdb` (a leading `sql:` is accepted) or `$HOME/.pki/nssdb`.
pub fn nssdb_dir(arg: Option<&Path>) -> Result<PathBuf, CliError> {
    match arg {
        Some(p) => {
            let s = p.to_string_lossy();
            Ok(s.strip_prefix("sql:")
                .map_or_else(|| p.to_path_buf(), PathBuf::from))
        }
        None => Ok(home()?.join(".pki/nssdb")),
    }
}

/// The p11-kit user module directory: `--p11kit-dir` or `$HOME/.config/pkcs11/modules`
/// (p11-kit's fixed user path; it does not follow `$XDG_CONFIG_HOME`).
pub fn p11kit_dir(arg: Option<&Path>) -> Result<PathBuf, CliError> {
    match arg {
        Some(p) => Ok(p.to_path_buf()),
        None => Ok(home()?.join(".config/pkcs11/modules")),
    }
}

/// The p11-kit module file in `dir`.
pub fn p11kit_file(dir: &Path) -> PathBuf {
    dir.join(format!("{MODULE_NAME}.module"))
}

/// Where the module is looked for when `--module` is not given: next to this program (a
/// `cargo build` puts both in `target/<profile>/`, a tarball ships them together), then the
/// distribution directory.
pub fn default_module_candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        out.push(dir.join(MODULE_FILE));
    }
    out.push(Path::new(SYSTEM_MODULE_DIR).join(MODULE_FILE));
    out
}

/// Why a file is not a module we will register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModuleProblem {
    /// No such file.
    Missing,
    /// A directory or another non-file.
    NotAFile,
    /// The dynamic loader refused it (not a shared library, wrong architecture, a missing
    /// dependency).
    NotLoadable(String),
    /// A shared library without `C_GetFunctionList`: not a PKCS#11 module.
    NoFunctionList,
}

impl ModuleProblem {
    fn en(&self) -> String {
        match self {
            Self::Missing => "no such file".into(),
            Self::NotAFile => "not a regular file".into(),
            Self::NotLoadable(why) => format!("it cannot be loaded ({why})"),
            Self::NoFunctionList => {
                "it does not export C_GetFunctionList, so it is not a PKCS#11 module".into()
            }
        }
    }

    fn it(&self) -> &'static str {
        match self {
            Self::Missing => "il file non esiste",
            Self::NotAFile => "non è un file",
            Self::NotLoadable(_) => "non si riesce a caricarlo",
            Self::NoFunctionList => "non esporta C_GetFunctionList, quindi non è un modulo PKCS#11",
        }
    }

    /// The error for the module at `path`.
    pub fn into_error(self, path: &Path) -> CliError {
        CliError::NotAModule {
            path: path.display().to_string(),
            reason_en: self.en(),
            reason_it: self.it().into(),
        }
    }
}

/// Check that `path` is a loadable PKCS#11 module, the way NSS and p11-kit will load it:
/// `dlopen`, then look up `C_GetFunctionList` (not called). Returns the absolute path.
pub fn check_module(path: &Path) -> Result<PathBuf, ModuleProblem> {
    let meta = std::fs::metadata(path).map_err(|_| ModuleProblem::Missing)?;
    if !meta.is_file() {
        return Err(ModuleProblem::NotAFile);
    }
    // Absolute, symlinks kept: a distribution's `libfoo.so` link survives upgrades of the
    // file it points to.
    let abs = std::path::absolute(path).map_err(|_| ModuleProblem::Missing)?;
    has_function_list(&abs)?;
    Ok(abs)
}

#[allow(unsafe_code)]
fn has_function_list(path: &Path) -> Result<(), ModuleProblem> {
    type GetFunctionList = unsafe extern "C" fn(*mut *mut std::ffi::c_void) -> std::ffi::c_ulong;
    // SAFETY: loading a shared library runs its initialisers. The user names this file to
    // have every browser load it; we load it once, the same way, before registering it, and
    // only look the symbol up (never call it).
    let lib = unsafe { libloading::Library::new(path) }
        .map_err(|e| ModuleProblem::NotLoadable(e.to_string()))?;
    // SAFETY: the symbol is only looked up, with the type the PKCS#11 standard gives it.
    let found = unsafe { lib.get::<GetFunctionList>(b"C_GetFunctionList\0") }.is_ok();
    drop(lib);
    if found {
        Ok(())
    } else {
        Err(ModuleProblem::NoFunctionList)
    }
}

/// The module to register: `--module`, checked, or the first candidate that is a module.
fn resolve_module(arg: Option<&Path>) -> Result<PathBuf, CliError> {
    if let Some(p) = arg {
        return check_module(p).map_err(|e| e.into_error(p));
    }
    let candidates = default_module_candidates();
    for c in &candidates {
        if let Ok(abs) = check_module(c) {
            return Ok(abs);
        }
    }
    let places = candidates
        .iter()
        .map(|c| c.display().to_string())
        .collect::<Vec<_>>()
        .join(" or ");
    Err(setup_error(
        format!(
            "{MODULE_FILE} not found in {places}: build it (`cargo build --release -p cie-companion-pkcs11`) \
             and pass --module PATH"
        ),
        format!(
            "{MODULE_FILE} non trovato in {places}: compilalo (`cargo build --release -p cie-companion-pkcs11`) \
             e indicalo con --module PERCORSO"
        ),
    ))
}

/// One module of an NSS database (`pkcs11.txt`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NssModule {
    /// `name=`.
    pub name: String,
    /// `library=` (empty for NSS's internal module).
    pub library: String,
}

impl NssModule {
    /// Whether this entry is ours: registered under our name, or our file under any name
    /// (e.g. added by hand in a browser's settings).
    pub fn is_ours(&self) -> bool {
        self.name == MODULE_NAME
            || Path::new(&self.library)
                .file_name()
                .is_some_and(|f| f == MODULE_FILE)
    }
}

/// The modules listed in an NSS `pkcs11.txt`: blank-line-separated entries of `key=value`
/// lines; `library=` and `name=` are read, the rest ignored.
pub fn parse_pkcs11_txt(text: &str) -> Vec<NssModule> {
    let mut out = Vec::new();
    let mut cur: Option<NssModule> = None;
    for line in text.lines().map(str::trim_end) {
        if line.trim().is_empty() {
            out.extend(cur.take());
            continue;
        }
        let entry = cur.get_or_insert_with(|| NssModule {
            name: String::new(),
            library: String::new(),
        });
        if let Some(v) = line.strip_prefix("library=") {
            entry.library = v.to_string();
        } else if let Some(v) = line.strip_prefix("name=") {
            entry.name = v.to_string();
        }
    }
    out.extend(cur);
    out
}

/// The modules of the NSS database in `dir`; `None` when there is no database there.
pub fn nss_modules(dir: &Path) -> Result<Option<Vec<NssModule>>, std::io::Error> {
    match std::fs::read_to_string(dir.join("pkcs11.txt")) {
        Ok(text) => Ok(Some(parse_pkcs11_txt(&text))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The p11-kit module file we write.
pub fn p11kit_text(module: &Path) -> String {
    format!(
        "# Written by `cie-companion pkcs11 install`; remove with `cie-companion pkcs11 install --uninstall`.\n\
         module: {}\n\
         # A missing card or reader must not stop programs that load every p11-kit module.\n\
         critical: no\n",
        module.display()
    )
}

/// The `module:` value of a p11-kit module file.
pub fn parse_p11kit_module(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == "module").then(|| v.trim().to_string())
    })
}

/// The module the p11-kit file in `dir` names; `None` when there is no file.
pub fn p11kit_module(dir: &Path) -> Result<Option<String>, std::io::Error> {
    match std::fs::read_to_string(p11kit_file(dir)) {
        Ok(text) => Ok(Some(parse_p11kit_module(&text).unwrap_or_default())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn setup_error(en: String, it: impl Into<String>) -> CliError {
    CliError::Setup {
        message_en: en,
        message_it: it.into(),
    }
}

const NSS_TOOLS_MISSING_EN: &str = "NSS's modutil is not installed: install the NSS tools \
(Debian/Ubuntu: `sudo apt install libnss3-tools`; Fedora: `sudo dnf install nss-tools`) and run this again";
const NSS_TOOLS_MISSING_IT: &str = "manca modutil, degli strumenti NSS: installali \
(Debian/Ubuntu: `sudo apt install libnss3-tools`; Fedora: `sudo dnf install nss-tools`) e riprova";

/// Run `modutil ARGS -dbdir sql:DIR -force`; its output on failure.
fn modutil(db: &Path, args: &[&std::ffi::OsStr]) -> Result<(), CliError> {
    let mut dbdir = std::ffi::OsString::from("sql:");
    dbdir.push(db);
    let out = Command::new("modutil")
        .args(args)
        .arg("-dbdir")
        .arg(&dbdir)
        .arg("-force")
        .output()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                setup_error(NSS_TOOLS_MISSING_EN.into(), NSS_TOOLS_MISSING_IT)
            } else {
                setup_error(format!("modutil could not run: {e}"), "modutil non parte")
            }
        })?;
    if out.status.success() {
        return Ok(());
    }
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    Err(setup_error(
        format!(
            "NSS's modutil refused to change {} ({}): close the browsers that use it and try again",
            db.display(),
            said.trim().replace('\n', " ")
        ),
        format!(
            "modutil non ha potuto modificare {}: chiudi i browser che lo usano e riprova",
            db.display()
        ),
    ))
}

fn modutil_available() -> bool {
    Command::new("modutil").arg("--help").output().is_ok()
}

fn io_error(what: &Path, e: &std::io::Error) -> CliError {
    setup_error(
        format!("cannot write {}: {e}", what.display()),
        format!(
            "impossibile scrivere {}: controlla i permessi",
            what.display()
        ),
    )
}

/// `pkcs11 install`.
pub fn run(args: InstallArgs) -> Result<(), CliError> {
    let db = nssdb_dir(args.nssdb.as_deref())?;
    let kit_dir = p11kit_dir(args.p11kit_dir.as_deref())?;
    // Nothing is changed unless every step can run.
    if !modutil_available() {
        return Err(setup_error(
            NSS_TOOLS_MISSING_EN.into(),
            NSS_TOOLS_MISSING_IT,
        ));
    }
    if args.uninstall {
        return uninstall(&db, &kit_dir);
    }
    let module = resolve_module(args.module.as_deref())?;
    println!("Module / Modulo: {}", module.display());
    install_nss(&db, &module)?;
    install_p11kit(&kit_dir, &module)?;
    println!(
        "Restart the browser to use the card. / Riavvia il browser per usare la carta.\n\
         Check with / Verifica con: cie-companion doctor"
    );
    Ok(())
}

fn install_nss(db: &Path, module: &Path) -> Result<(), CliError> {
    let existing = nss_modules(db).map_err(|e| io_error(db, &e))?;
    let modules = match existing {
        Some(m) => m,
        None => {
            std::fs::create_dir_all(db).map_err(|e| io_error(db, &e))?;
            modutil(db, &["-create".as_ref()])?;
            println!(
                "NSS database created / database NSS creato: sql:{}",
                db.display()
            );
            Vec::new()
        }
    };
    let lib = module.to_string_lossy();
    let mine = modules.iter().find(|m| m.name == MODULE_NAME);
    match mine {
        Some(m) if m.library == lib => {
            println!(
                "NSS (sql:{}): already installed / già installato",
                db.display()
            );
            return Ok(());
        }
        Some(m) => {
            println!(
                "NSS (sql:{}): replacing / sostituisco {}",
                db.display(),
                m.library
            );
            modutil(db, &["-delete".as_ref(), MODULE_NAME.as_ref()])?;
        }
        None => {}
    }
    if let Some(other) = modules
        .iter()
        .find(|m| m.is_ours() && m.name != MODULE_NAME)
    {
        println!(
            "NSS: note: the module is also registered as \"{}\" ({}); remove that entry in the \
             browser's Security Devices if the card shows twice. / nota: il modulo è registrato \
             anche come \"{}\": se la carta compare due volte, rimuovilo dai dispositivi di sicurezza.",
            other.name, other.library, other.name
        );
    }
    modutil(
        db,
        &[
            "-add".as_ref(),
            MODULE_NAME.as_ref(),
            "-libfile".as_ref(),
            module.as_os_str(),
        ],
    )?;
    println!("NSS (sql:{}): installed / installato", db.display());
    Ok(())
}

fn install_p11kit(dir: &Path, module: &Path) -> Result<(), CliError> {
    let file = p11kit_file(dir);
    let text = p11kit_text(module);
    match std::fs::read_to_string(&file) {
        Ok(old) if old == text => {
            println!(
                "p11-kit ({}): already installed / già installato",
                file.display()
            );
            return Ok(());
        }
        _ => {}
    }
    std::fs::create_dir_all(dir).map_err(|e| io_error(dir, &e))?;
    std::fs::write(&file, text).map_err(|e| io_error(&file, &e))?;
    println!("p11-kit ({}): installed / installato", file.display());
    Ok(())
}

fn uninstall(db: &Path, kit_dir: &Path) -> Result<(), CliError> {
    let modules = nss_modules(db).map_err(|e| io_error(db, &e))?;
    if modules
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|m| m.name == MODULE_NAME)
    {
        modutil(db, &["-delete".as_ref(), MODULE_NAME.as_ref()])?;
        println!("NSS (sql:{}): removed / rimosso", db.display());
    } else {
        println!("NSS (sql:{}): not installed / non installato", db.display());
    }
    let file = p11kit_file(kit_dir);
    match std::fs::remove_file(&file) {
        Ok(()) => println!("p11-kit ({}): removed / rimosso", file.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => println!(
            "p11-kit ({}): not installed / non installato",
            file.display()
        ),
        Err(e) => return Err(io_error(&file, &e)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PKCS11_TXT: &str = "library=\nname=NSS Internal PKCS #11 Module\n\
parameters=configdir='sql:/tmp/x' certPrefix='' keyPrefix=''\n\
NSS=Flags=internal,critical trustOrder=75\n\
\n\
library=/opt/cie/libcie_companion_pkcs11.so\n\
name=cie-companion\n\
\n\
library=/usr/lib/x86_64-linux-gnu/pkcs11/opensc-pkcs11.so\n\
name=OpenSC\n";

    #[test]
    fn reads_the_modules_of_pkcs11_txt() {
        let m = parse_pkcs11_txt(PKCS11_TXT);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].name, "NSS Internal PKCS #11 Module");
        assert_eq!(m[0].library, "");
        assert_eq!(
            m[1],
            NssModule {
                name: "cie-companion".into(),
                library: "/opt/cie/libcie_companion_pkcs11.so".into()
            }
        );
        assert!(m[1].is_ours());
        assert!(!m[0].is_ours() && !m[2].is_ours());
        // Added by hand under another name: still ours.
        let by_file = NssModule {
            name: "CIE".into(),
            library: "/x/libcie_companion_pkcs11.so".into(),
        };
        assert!(by_file.is_ours());
        // No trailing blank line, CRLF line ends.
        let m = parse_pkcs11_txt("library=/a.so\r\nname=A\r\n\r\nlibrary=/b.so\r\nname=B");
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].library, "/b.so");
        assert!(parse_pkcs11_txt("").is_empty());
    }

    #[test]
    fn p11kit_file_round_trip() {
        let text = p11kit_text(Path::new("/opt/cie/libcie_companion_pkcs11.so"));
        assert!(text.contains("\ncritical: no\n"));
        assert_eq!(
            parse_p11kit_module(&text).as_deref(),
            Some("/opt/cie/libcie_companion_pkcs11.so")
        );
        assert_eq!(parse_p11kit_module("critical: no\n"), None);
        assert_eq!(
            parse_p11kit_module("module:/a.so\n").as_deref(),
            Some("/a.so")
        );
    }

    #[test]
    fn paths() {
        assert_eq!(
            nssdb_dir(Some(Path::new("sql:/tmp/db"))).ok(),
            Some(PathBuf::from("/tmp/db"))
        );
        assert_eq!(
            nssdb_dir(Some(Path::new("/tmp/db"))).ok(),
            Some(PathBuf::from("/tmp/db"))
        );
        assert_eq!(
            p11kit_file(Path::new("/h/.config/pkcs11/modules")),
            PathBuf::from("/h/.config/pkcs11/modules/cie-companion.module")
        );
        let c = default_module_candidates();
        assert!(c.last().is_some_and(|p| p.starts_with(SYSTEM_MODULE_DIR)));
        assert!(c.iter().all(|p| p.ends_with(MODULE_FILE)));
    }

    #[test]
    fn refuses_what_is_not_a_module() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            check_module(&dir.path().join("none.so")),
            Err(ModuleProblem::Missing)
        );
        assert_eq!(check_module(dir.path()), Err(ModuleProblem::NotAFile));
        let text = dir.path().join("text.so");
        std::fs::write(&text, "not a library").expect("write");
        assert!(matches!(
            check_module(&text),
            Err(ModuleProblem::NotLoadable(_))
        ));
    }
}
