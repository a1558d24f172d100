//! `cie-companion pkcs11 install` against a throwaway HOME: NSS's own modutil creates the
//! database and registers the real module, a second install changes nothing, `doctor`
//! sees the registration, `--uninstall` removes it; refusals of what is not a module and of
//! a machine without NSS tools. Needs NSS's modutil (libnss3-tools, scripts/deps.sh).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_cie-companion")
}

/// The module built with this binary: next to it after `cargo build -p
/// cie-companion-pkcs11`, in `deps/` when it was built as the CLI's dependency.
fn module() -> PathBuf {
    let dir = Path::new(bin()).parent().expect("binary directory");
    [
        dir.join("libcie_companion_pkcs11.so"),
        dir.join("deps/libcie_companion_pkcs11.so"),
    ]
    .into_iter()
    .find(|p| p.is_file())
    .expect("libcie_companion_pkcs11.so is built with the CLI (a dependency)")
    .canonicalize()
    .expect("absolute module path")
}

fn run(home: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env("HOME", home)
        // Never the machine's pcscd: doctor's card checks are not what is tested here.
        .env("PCSCLITE_CSOCK_NAME", home.join("no-pcscd.sock"))
        .output()
        .expect("run cie-companion")
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

fn require_modutil() {
    assert!(
        Command::new("modutil").arg("--help").output().is_ok(),
        "NSS's modutil is needed: apt-get install libnss3-tools (bash scripts/deps.sh)"
    );
}

#[test]
fn install_is_idempotent_and_uninstall_removes_both() {
    require_modutil();
    let home = tempfile::tempdir().expect("tempdir");
    let h = home.path();
    let m = module();
    let m_arg = m.to_str().expect("utf-8 path");

    let first = run(h, &["pkcs11", "install", "--module", m_arg]);
    let out = text(&first);
    assert!(first.status.success(), "{out}");
    assert!(out.contains("NSS database created"), "{out}");
    assert!(out.contains("installed / installato"), "{out}");
    let db = h.join(".pki/nssdb");
    assert!(db.join("cert9.db").is_file(), "no NSS database created");
    let pkcs11_txt = std::fs::read_to_string(db.join("pkcs11.txt")).expect("pkcs11.txt");
    assert!(
        pkcs11_txt.contains(&format!("library={m_arg}\nname=cie-companion")),
        "{pkcs11_txt}"
    );
    // What NSS itself lists (modutil loads the module to list it).
    let listed = Command::new("modutil")
        .args(["-list", "-dbdir"])
        .arg(format!("sql:{}", db.display()))
        .output()
        .expect("modutil -list");
    let listed = text(&listed);
    assert!(
        listed.contains("cie-companion") && listed.contains(m_arg),
        "{listed}"
    );
    let kit = h.join(".config/pkcs11/modules/cie-companion.module");
    let kit_text = std::fs::read_to_string(&kit).expect("p11-kit module file");
    assert!(
        kit_text.contains(&format!("module: {m_arg}\n")),
        "{kit_text}"
    );
    assert!(kit_text.contains("critical: no"), "{kit_text}");

    let second = run(h, &["pkcs11", "install", "--module", m_arg]);
    let out = text(&second);
    assert!(second.status.success(), "{out}");
    assert_eq!(
        out.matches("already installed / già installato").count(),
        2,
        "{out}"
    );
    assert!(!out.contains("created"), "{out}");
    assert_eq!(
        std::fs::read_to_string(db.join("pkcs11.txt")).expect("pkcs11.txt"),
        pkcs11_txt,
        "a second install changed the NSS database"
    );

    // doctor sees both registrations (and fails only for pcscd, absent here).
    let doctor = run(h, &["doctor", "--plain"]);
    let out = text(&doctor);
    assert_eq!(doctor.status.code(), Some(9), "{out}");
    assert!(out.contains("[FAIL] pcscd:"), "{out}");
    assert!(out.contains("[OK]   nss: module registered"), "{out}");
    assert!(out.contains("[OK]   p11kit:"), "{out}");

    let removed = run(h, &["pkcs11", "install", "--uninstall"]);
    let out = text(&removed);
    assert!(removed.status.success(), "{out}");
    assert_eq!(out.matches("removed / rimosso").count(), 2, "{out}");
    assert!(!kit.exists(), "p11-kit file left behind");
    let after = std::fs::read_to_string(db.join("pkcs11.txt")).expect("pkcs11.txt");
    assert!(!after.contains("cie-companion"), "{after}");
    let again = run(h, &["pkcs11", "install", "--uninstall"]);
    let out = text(&again);
    assert!(again.status.success(), "{out}");
    assert_eq!(
        out.matches("not installed / non installato").count(),
        2,
        "{out}"
    );

    let doctor = run(h, &["doctor", "--plain"]);
    let out = text(&doctor);
    assert!(
        out.contains("[FAIL] nss: the module is not registered"),
        "{out}"
    );
    assert!(out.contains("cie-companion pkcs11 install"), "{out}");
    assert!(
        out.contains("[WARN] p11kit: no p11-kit module file"),
        "{out}"
    );
}

#[test]
fn a_moved_module_is_replaced_and_explicit_dirs_are_used() {
    require_modutil();
    let home = tempfile::tempdir().expect("tempdir");
    let h = home.path();
    // A copy of the module stands for an older install at another path.
    let old = h.join("old/libcie_companion_pkcs11.so");
    std::fs::create_dir_all(old.parent().expect("parent")).expect("mkdir");
    std::fs::copy(module(), &old).expect("copy module");
    let db = h.join("db");
    let kit = h.join("kit");
    let args = |m: &Path| {
        vec![
            "pkcs11".to_string(),
            "install".into(),
            "--module".into(),
            m.display().to_string(),
            "--nssdb".into(),
            format!("sql:{}", db.display()),
            "--p11kit-dir".into(),
            kit.display().to_string(),
        ]
    };
    let a = args(&old);
    let o = run(h, &a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", text(&o));
    // The old module goes away: doctor says the registration points nowhere.
    std::fs::remove_file(&old).expect("rm");
    let o = run(
        h,
        &[
            "doctor",
            "--plain",
            "--nssdb",
            db.to_str().expect("utf-8"),
            "--p11kit-dir",
            kit.to_str().expect("utf-8"),
        ],
    );
    let out = text(&o);
    assert!(
        out.contains("[FAIL] nss:") && out.contains("which does not exist"),
        "{out}"
    );
    assert!(
        out.contains("[WARN] p11kit:") && out.contains("which does not exist"),
        "{out}"
    );
    // Installing the current module replaces the stale entry.
    let new = module();
    let a = args(&new);
    let o = run(h, &a.iter().map(String::as_str).collect::<Vec<_>>());
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("replacing / sostituisco"), "{out}");
    let txt = std::fs::read_to_string(db.join("pkcs11.txt")).expect("pkcs11.txt");
    assert!(txt.contains(&format!("library={}", new.display())), "{txt}");
    assert_eq!(txt.matches("name=cie-companion").count(), 1, "{txt}");
    let kit_text = std::fs::read_to_string(kit.join("cie-companion.module")).expect("kit");
    assert!(kit_text.contains(&new.display().to_string()), "{kit_text}");
    // Nothing in the default places.
    assert!(!h.join(".pki").exists() && !h.join(".config").exists());
}

#[test]
fn refuses_files_that_are_not_modules() {
    let home = tempfile::tempdir().expect("tempdir");
    let h = home.path();
    let not_lib = h.join("notes.so");
    std::fs::write(&not_lib, "not a library").expect("write");
    for (path, why) in [
        (not_lib.clone(), "cannot be loaded"),
        (h.join("missing.so"), "no such file"),
        (h.to_path_buf(), "not a regular file"),
    ] {
        let o = run(
            h,
            &[
                "pkcs11",
                "install",
                "--module",
                path.to_str().expect("utf-8"),
            ],
        );
        let out = text(&o);
        assert_eq!(o.status.code(), Some(2), "{out}");
        assert!(
            out.contains("is not a PKCS#11 module") && out.contains(why),
            "{out}"
        );
        assert!(out.contains("non è un modulo PKCS#11"), "{out}");
    }
    // A real shared library without C_GetFunctionList (the C library every program loads).
    let libc = [
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/lib/aarch64-linux-gnu/libc.so.6",
        "/lib64/libc.so.6",
    ]
    .into_iter()
    .find(|p| Path::new(p).is_file())
    .expect("the C library");
    let o = run(h, &["pkcs11", "install", "--module", libc]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(out.contains("does not export C_GetFunctionList"), "{out}");
    // Nothing was written.
    assert!(!h.join(".pki").exists() && !h.join(".config").exists());
}

#[test]
fn without_nss_tools_says_how_to_get_them_and_changes_nothing() {
    let home = tempfile::tempdir().expect("tempdir");
    let h = home.path();
    let empty = h.join("empty-path");
    std::fs::create_dir(&empty).expect("mkdir");
    let m = module();
    let o = Command::new(bin())
        .args(["pkcs11", "install", "--module"])
        .arg(&m)
        .env("HOME", h)
        .env("PATH", &empty)
        .output()
        .expect("run");
    let out = text(&o);
    assert_eq!(o.status.code(), Some(8), "{out}");
    assert!(out.contains("apt install libnss3-tools"), "{out}");
    assert!(!h.join(".pki").exists() && !h.join(".config").exists());
}

#[test]
fn a_symlinked_module_is_registered_by_its_link() {
    require_modutil();
    let home = tempfile::tempdir().expect("tempdir");
    let h = home.path();
    let link = h.join("lib/libcie_companion_pkcs11.so");
    std::fs::create_dir_all(link.parent().expect("parent")).expect("mkdir");
    std::os::unix::fs::symlink(module(), &link).expect("symlink");
    // Given relative to the working directory, registered absolute, link kept.
    let o = Command::new(bin())
        .args([
            "pkcs11",
            "install",
            "--module",
            "lib/libcie_companion_pkcs11.so",
        ])
        .current_dir(h)
        .env("HOME", h)
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", text(&o));
    let txt = std::fs::read_to_string(h.join(".pki/nssdb/pkcs11.txt")).expect("pkcs11.txt");
    assert!(
        txt.contains(&format!("library={}\n", link.display())),
        "{txt}"
    );
    let kit = std::fs::read_to_string(h.join(".config/pkcs11/modules/cie-companion.module"))
        .expect("kit");
    assert!(
        kit.contains(&format!("module: {}\n", link.display())),
        "{kit}"
    );
}
