//! Section 7: the mobile core's size per ABI — the `cdylib` alone from the `dist` profile
//! (as android/core/build.gradle.kts builds it), stripped (`strip --strip-all`, what an APK
//! ships after bindgen), and gzip -9 (about what a download costs). docs/mobile.md explains
//! the levers behind these figures.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::run::{Ctx, Res, capture, run_ok, which};

/// Issue target: at most 3 MB stripped per ABI.
pub const TARGET_BYTES: u64 = 3_000_000;

/// The mobile library alone (with the rlib and staticlib in one rustc run it comes out
/// larger: docs/mobile.md), with the features the apps use: not the core's own HTTPS client
/// (`rustls-https`: the apps send requests through the platform).
const DIST_CDYLIB: [&str; 11] = [
    "rustc",
    "-p",
    "cie-core",
    "--profile",
    "dist",
    "--no-default-features",
    "--features",
    "net",
    "--lib",
    "--crate-type",
    "cdylib",
];

/// One measured library.
struct Row {
    abi: String,
    how: String,
    stripped: Option<(u64, u64)>,
    note: String,
}

/// Build and measure; Markdown of the section.
pub fn section(ctx: &Ctx) -> Res<String> {
    let mut rows = Vec::new();
    let host = host_triple()?;
    // The host build stands in for arm64 Android when no NDK is here: same code, same profile.
    rows.push(host_row(ctx, &host, None)?);
    // The saving Android's packing gets, measured in glibc's format (one more LTO link).
    if !ctx.quick {
        rows.push(host_row(ctx, &host, Some("-Wl,-z,pack-relative-relocs"))?);
    }
    rows.push(arm64_linux_row(ctx)?);
    rows.extend(android_rows(ctx)?);
    rows.push(Row {
        abi: "aarch64-apple-ios".into(),
        how: "`cargo rustc --target aarch64-apple-ios --profile dist --lib --crate-type staticlib` (ios/build-xcframework.sh)".into(),
        stripped: None,
        note: if cfg!(target_os = "macos") {
            "not measured: a static library is dead-stripped into the app by Apple's linker; its share of the app is the figure, not the `.a`".into()
        } else {
            "not measured: needs Xcode's linker (macOS)".into()
        },
    });

    let mut md = String::new();
    writeln!(md, "## 7. Mobile core size per ABI")?;
    writeln!(md)?;
    writeln!(
        md,
        "`cargo rustc -p cie-core --profile dist --no-default-features --features net --lib \
         --crate-type cdylib` (the cdylib alone, every feature the apps use — all but the core's \
         own HTTPS client and the mutual-TLS login it carries, `rustls-https`: the apps send \
         requests through the platform — as the Android build runs it), then `strip --strip-all` (what an APK \
         ships: AGP strips after bindgen has read the `UNIFFI_META_*` symbols); gzip -9 \
         approximates the download. Where the bytes go and the levers tried: docs/mobile.md. \
         Target: ≤ {} MB stripped per ABI.",
        TARGET_BYTES / 1_000_000
    )?;
    writeln!(md)?;
    writeln!(
        md,
        "| ABI | Build | Stripped (B) | Stripped (MiB) | gzip -9 (B) | Target ≤ {} MB |",
        TARGET_BYTES / 1_000_000
    )?;
    writeln!(md, "|---|---|---:|---:|---:|---|")?;
    for r in &rows {
        match r.stripped {
            Some((bytes, gz)) => writeln!(
                md,
                "| {} | {} | {} | {:.2} | {} | {} |",
                r.abi,
                r.how,
                thousands(bytes),
                bytes as f64 / 1_048_576.0,
                thousands(gz),
                if bytes <= TARGET_BYTES {
                    "met"
                } else {
                    "not met"
                }
            )?,
            None => writeln!(md, "| {} | {} | – | – | – | {} |", r.abi, r.how, r.note)?,
        }
    }
    writeln!(md)?;
    Ok(md)
}

fn host_triple() -> Res<String> {
    let v = capture(Command::new("rustc").arg("-vV"))?;
    v.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .ok_or_else(|| "rustc -vV: no host line".into())
}

fn host_row(ctx: &Ctx, host: &str, link_arg: Option<&str>) -> Res<Row> {
    let mut cmd = ctx.cargo();
    cmd.args(DIST_CDYLIB);
    if let Some(arg) = link_arg {
        cmd.args(["--", "-C", &format!("link-arg={arg}")]);
    }
    run_ok(&mut cmd)?;
    let lib = ctx.target_dir().join("dist").join(lib_name(host));
    let how = match link_arg {
        None => "`dist` as committed".to_owned(),
        Some(a) => format!(
            "`dist` + packed relative relocations (`-C link-arg={a}`: RELR, as Android packs them with `--pack-dyn-relocs=android`)"
        ),
    };
    Ok(Row {
        abi: host.to_owned(),
        how,
        stripped: Some(measure(&lib, "strip")?),
        note: String::new(),
    })
}

fn lib_name(triple: &str) -> &'static str {
    if triple.contains("apple") {
        "libcie_core.dylib"
    } else if triple.contains("windows") {
        "cie_core.dll"
    } else {
        "libcie_core.so"
    }
}

/// arm64 Linux, the proxy for arm64 Android where no NDK is (the issue's "arm64 Linux as a
/// proxy"): the same code generator as the phone, glibc's linker. Needs the rustup target
/// and Debian's gcc-aarch64-linux-gnu, binutils-aarch64-linux-gnu, libc6-dev-arm64-cross.
fn arm64_linux_row(ctx: &Ctx) -> Res<Row> {
    const TRIPLE: &str = "aarch64-unknown-linux-gnu";
    const LINKER: &str = "aarch64-linux-gnu-gcc";
    const STRIP: &str = "aarch64-linux-gnu-strip";
    let how = format!("`dist`, `--target {TRIPLE}`, linked by `{LINKER}` (arm64 proxy)");
    let installed = capture(Command::new("rustup").args(["target", "list", "--installed"]))
        .is_ok_and(|t| t.lines().any(|l| l.trim() == TRIPLE));
    if !installed || which(LINKER).is_none() || which(STRIP).is_none() {
        return Ok(Row {
            abi: TRIPLE.into(),
            how,
            stripped: None,
            note: format!(
                "not measured: needs `rustup target add {TRIPLE}` and Debian's gcc-aarch64-linux-gnu, binutils-aarch64-linux-gnu, libc6-dev-arm64-cross"
            ),
        });
    }
    let mut cmd = ctx.cargo();
    cmd.args(DIST_CDYLIB)
        .args(["--target", TRIPLE])
        .env("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER", LINKER);
    run_ok(&mut cmd)?;
    let lib = ctx
        .target_dir()
        .join(TRIPLE)
        .join("dist")
        .join(lib_name(TRIPLE));
    Ok(Row {
        abi: TRIPLE.into(),
        how,
        stripped: Some(measure(&lib, STRIP)?),
        note: String::new(),
    })
}

/// Android ABIs through cargo-ndk when it and an NDK are here, as the app's build does.
fn android_rows(ctx: &Ctx) -> Res<Vec<Row>> {
    let abis = [
        ("arm64-v8a", "aarch64-linux-android"),
        ("armeabi-v7a", "armv7-linux-androideabi"),
        ("x86_64", "x86_64-linux-android"),
    ];
    let ndk = std::env::var_os("ANDROID_NDK_HOME")
        .or_else(|| std::env::var_os("ANDROID_NDK_ROOT"))
        .map(PathBuf::from);
    let cargo_ndk = ctx.cargo().args(["ndk", "--version"]).output();
    let strip = ndk
        .as_ref()
        .map(|n| n.join("toolchains/llvm/prebuilt/linux-x86_64/bin/llvm-strip"));
    let ready =
        cargo_ndk.is_ok_and(|o| o.status.success()) && strip.as_ref().is_some_and(|s| s.exists());
    let (Some(strip), true) = (strip, ready) else {
        return Ok(abis
            .iter()
            .map(|(abi, triple)| Row {
                abi: format!("{triple} ({abi})"),
                how:
                    "`cargo ndk -t ABI rustc -p cie-core --profile dist --no-default-features --features net --lib --crate-type cdylib`"
                        .into(),
                stripped: None,
                note: "not measured: no Android NDK here (cargo-ndk and ANDROID_NDK_HOME)".into(),
            })
            .collect());
    };
    let out = ctx.target_dir().join("xtask-ndk");
    let mut cmd = ctx.cargo();
    cmd.arg("ndk");
    for (abi, triple) in abis {
        cmd.args(["-t", abi]);
        let var = format!(
            "CARGO_TARGET_{}_RUSTFLAGS",
            triple.to_uppercase().replace('-', "_")
        );
        cmd.env(var, "-C link-arg=-Wl,--pack-dyn-relocs=android");
    }
    cmd.arg("-o").arg(&out).args(DIST_CDYLIB);
    run_ok(&mut cmd)?;
    let strip = strip.to_string_lossy().into_owned();
    abis.iter()
        .map(|(abi, triple)| {
            Ok(Row {
                abi: format!("{triple} ({abi})"),
                how:
                    "cargo-ndk, `dist`, `--pack-dyn-relocs=android` (android/core/build.gradle.kts)"
                        .into(),
                stripped: Some(measure(&out.join(abi).join("libcie_core.so"), &strip)?),
                note: String::new(),
            })
        })
        .collect()
}

/// Stripped size and its gzip -9 size, from a stripped copy beside the library.
fn measure(lib: &Path, strip: &str) -> Res<(u64, u64)> {
    if which(strip).is_none() && !Path::new(strip).exists() {
        return Err(format!("{strip} not found: install binutils").into());
    }
    let copy = lib.with_extension("stripped");
    run_ok(
        Command::new(strip)
            .arg("--strip-all")
            .arg("-o")
            .arg(&copy)
            .arg(lib),
    )?;
    let bytes = std::fs::metadata(&copy)
        .map_err(|e| format!("{}: {e}", copy.display()))?
        .len();
    let gz = Command::new("gzip")
        .args(["-9", "-c"])
        .arg(&copy)
        .output()
        .map_err(|e| format!("gzip: {e}"))?;
    if !gz.status.success() {
        return Err("gzip -9 failed".into());
    }
    Ok((bytes, gz.stdout.len() as u64))
}

/// `4332264` → `4,332,264`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn groups_thousands() {
        assert_eq!(thousands(4_332_264), "4,332,264");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
    }
}
