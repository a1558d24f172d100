//! The summary table at the top of the report: one line per headline figure, read back
//! from the sections' own tables (so it can never disagree with them). A figure whose
//! section was not run, or whose table changed shape, is left out with a note rather than
//! guessed.

use std::fmt::Write as _;

use crate::md::{Section, Table, number, numbers, tables};

/// One line of the summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    pub what: String,
    pub ours: String,
    pub peer: String,
    pub ratio: String,
    pub target: String,
    /// `None`: information only, no target.
    pub met: Option<bool>,
}

fn fig(
    what: &str,
    ours: String,
    peer: String,
    ratio: String,
    target: &str,
    met: Option<bool>,
) -> Figure {
    Figure {
        what: what.to_owned(),
        ours,
        peer,
        ratio,
        target: target.to_owned(),
        met,
    }
}

fn x(a: f64, b: f64) -> String {
    if b == 0.0 {
        "–".into()
    } else {
        format!("{:.2}×", a / b)
    }
}

fn n(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// Every figure found in `sections`, and the sections whose figures could not be read.
pub fn figures(sections: &[Section]) -> (Vec<Figure>, Vec<u32>) {
    let mut out = Vec::new();
    let mut unread = Vec::new();
    for s in sections {
        let t = tables(&s.text);
        let found = match s.number {
            1 => tap(&t),
            2 => reads(&t),
            3 => emrtd(&t),
            4 => load(&t),
            5 => qr(&t),
            6 => pkcs11(&t),
            7 => size(&t),
            8 => fuzz(&t),
            9 => soak(&t),
            _ => Some(Vec::new()),
        };
        match found {
            Some(f) => out.extend(f),
            None => unread.push(s.number),
        }
    }
    (out, unread)
}

/// The summary table's Markdown.
pub fn render(sections: &[Section]) -> String {
    let (figs, unread) = figures(sections);
    let mut md = String::new();
    let _ = writeln!(md, "## Summary\n");
    let _ = writeln!(
        md,
        "One line per headline figure, read from the sections below (their tables have the \
         details and the peers' conditions). Ratio = peer / ours for counts and times (above \
         1× ours is better), ours / peer where the section states it so.\n"
    );
    let _ = writeln!(md, "| Figure | Ours | Peer | Ratio | Target | Met? |");
    let _ = writeln!(md, "|---|---:|---:|---:|---|---|");
    for f in &figs {
        let met = match f.met {
            Some(true) => "**yes**",
            Some(false) => "**no**",
            None => "(info)",
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {met} |",
            f.what, f.ours, f.peer, f.ratio, f.target
        );
    }
    for u in unread {
        let _ = writeln!(
            md,
            "\nSection {u}: its figures could not be read for this table (its layout changed?): see the section."
        );
    }
    md.push('\n');
    md
}

/// Section 1: the full tap at 106 kbit/s against the official SDK's sequence.
fn tap(t: &[Table]) -> Option<Vec<Figure>> {
    let t = t.first()?;
    let (flow, rate) = (t.col("Flow")?, t.col("Bit rate")?);
    let (apdus, time) = (t.col("APDUs")?, t.col("Link time")?);
    let ours = t.row(&[(flow, "ours: full tap"), (rate, "106")])?;
    let peer = t.row(&[(flow, "official SDK sequence (peer)"), (rate, "106")])?;
    let (oa, pa) = (number(&ours[apdus])?, number(&peer[apdus])?);
    let (ot, pt) = (number(&ours[time])?, number(&peer[time])?);
    Some(vec![
        fig(
            "CIE login tap: APDUs (full tap)",
            n(oa),
            format!("{} (official SDK)", n(pa)),
            x(pa, oa),
            "fewer than the official SDK",
            Some(oa < pa),
        ),
        fig(
            "CIE login tap: link time at 106 kbit/s (ms)",
            n(ot),
            n(pt),
            x(pt, ot),
            "< 1000 ms",
            Some(ot < 1000.0),
        ),
    ])
}

/// Section 2: the largest file on short APDUs at 106 kbit/s against the fixed 0x80 reader.
fn reads(t: &[Table]) -> Option<Vec<Figure>> {
    let t = t.first()?;
    let (link, rate) = (t.col("Link")?, t.col("Bit rate")?);
    let (ours, peer) = (t.col("APDUs ours")?, t.col("APDUs 0x80")?);
    let row = t.rows.iter().rfind(|r| {
        r.get(link).is_some_and(|l| l.starts_with("short"))
            && r.get(rate).is_some_and(|r| r == "106")
    })?;
    let (o, p) = (number(&row[ours])?, number(&row[peer])?);
    Some(vec![fig(
        &format!("File read {}, short APDUs: APDUs", row[0]),
        n(o),
        format!("{} (fixed 0x80)", n(p)),
        x(p, o),
        "–",
        None,
    )])
}

/// Section 3: the eMRTD read at 106 kbit/s, per chip, against JMRTD's 223-byte reads.
fn emrtd(t: &[Table]) -> Option<Vec<Figure>> {
    let t = t.first()?;
    let (chip, rate, reader, apdus) = (
        t.col("Chip")?,
        t.col("Bit rate")?,
        t.col("Reader")?,
        t.col("APDUs (PACE)")?,
    );
    let mut chips: Vec<&str> = Vec::new();
    for r in &t.rows {
        if let Some(c) = r.get(chip)
            && !chips.contains(&c.as_str())
        {
            chips.push(c);
        }
    }
    let mut out = Vec::new();
    for c in chips {
        let o = number(&t.row(&[(chip, c), (rate, "106"), (reader, "ours")])?[apdus])?;
        let p223 =
            number(&t.row(&[(chip, c), (rate, "106"), (reader, "223-byte chunks")])?[apdus])?;
        let p160 =
            number(&t.row(&[(chip, c), (rate, "106"), (reader, "160-byte chunks")])?[apdus])?;
        let extended = c.starts_with("extended");
        let never_more = o <= p223 && o <= p160;
        out.push(fig(
            &format!("eMRTD read (PACE + SOD + DG1 + DG2), {c}: APDUs"),
            n(o),
            format!("{} (223-byte reads)", n(p223)),
            format!("{:.2}× (ours / peer)", o / p223),
            if extended {
                "≤ 0.5× the 223-byte reader, never more than either peer"
            } else {
                "never more than either peer"
            },
            Some(never_more && (!extended || o <= 0.5 * p223)),
        ));
    }
    Some(out)
}

/// Section 4: the main SQLite run (first row), its PostgreSQL peer, lost/duplicated.
fn load(t: &[Table]) -> Option<Vec<Figure>> {
    let main = t.first()?;
    let (run, rate, p99) = (main.col("Run")?, main.col("Logins/s")?, main.col("p99")?);
    let first = main.rows.first()?;
    let (r, p) = (number(&first[rate])?, number(&first[p99])?);
    let pg = main
        .rows
        .iter()
        .find(|row| row.get(run).is_some_and(|v| v.starts_with("PostgreSQL")));
    let (peer, ratio) = match pg.and_then(|row| number(&row[rate])) {
        Some(v) => (format!("{} (PostgreSQL)", n(v)), x(r, v)),
        None => ("–".into(), "–".into()),
    };
    let mut out = vec![
        fig(
            &format!("Desktop QR logins/s ({})", first[run]),
            n(r.round()),
            peer,
            ratio,
            "≥ 1000/s",
            Some(r >= 1000.0),
        ),
        fig(
            &format!("Desktop QR login p99, ms ({})", first[run]),
            n(p),
            "–".into(),
            "–".into(),
            "≤ 50 ms",
            Some(p <= 50.0),
        ),
    ];
    if let Some(check) = t
        .iter()
        .find(|t| t.col("Lost").is_some() && t.col("Duplicated").is_some())
    {
        let (l, d) = (check.col("Lost")?, check.col("Duplicated")?);
        let sum = |c: usize| -> f64 { check.rows.iter().filter_map(|r| number(&r[c])).sum() };
        let (lost, dup) = (sum(l), sum(d));
        out.push(fig(
            "Load runs: sessions lost / duplicated (every run)",
            format!("{} / {}", n(lost), n(dup)),
            "–".into(),
            "–".into(),
            "0 / 0",
            Some(lost == 0.0 && dup == 0.0),
        ));
    }
    Some(out)
}

/// Section 5: QR against zxing-cpp (issue 7's bar).
fn qr(t: &[Table]) -> Option<Vec<Figure>> {
    let t = t.iter().find(|t| t.col("zxing-cpp median").is_some())?;
    let set = t.col("frames")?;
    let (om, zm) = (t.col("ours median")?, t.col("zxing-cpp median")?);
    let (od, zd) = (t.col("ours decoded")?, t.col("zxing-cpp decoded")?);
    let mut out = Vec::new();
    for (name, target) in [
        ("screen frames", "≤ zxing-cpp"),
        ("mild frames", "≤ zxing-cpp"),
    ] {
        let r = t.row(&[(set, name)])?;
        let (o, z) = (number(&r[om])?, number(&r[zm])?);
        out.push(fig(
            &format!("QR decode median, {name} (ms)"),
            format!("{o:.2}"),
            format!("{z:.2} (zxing-cpp)"),
            x(z, o),
            target,
            Some(o <= z),
        ));
    }
    let r = t.row(&[(set, "no code (give up)")])?;
    let (o, z) = (number(&r[om])?, number(&r[zm])?);
    out.push(fig(
        "QR give-up on a frame without a code (ms)",
        format!("{o:.2}"),
        format!("{z:.2} (zxing-cpp)"),
        x(z, o),
        "≤ 2 ms",
        Some(o <= 2.0),
    ));
    let (mut ours, mut peer, mut every) = (0.0, 0.0, true);
    for r in &t.rows {
        if let (Some(o), Some(z)) = (number(&r[od]), number(&r[zd])) {
            ours += o;
            peer += z;
            every &= o >= z;
        }
    }
    out.push(fig(
        "QR frames decoded, all sets",
        n(ours),
        format!("{} (zxing-cpp)", n(peer)),
        x(ours, peer) + " (ours / peer)",
        "≥ zxing-cpp on every set",
        Some(every),
    ));
    Some(out)
}

/// Section 6: the first card variant's C_Login + C_Sign and further C_Sign.
fn pkcs11(t: &[Table]) -> Option<Vec<Figure>> {
    let t = t.first()?;
    let row = t.rows.first()?;
    let ls = numbers(&row[t.col("C_Login + C_Sign APDUs")?]);
    let fs = numbers(&row[t.col("Further C_Sign APDUs")?]);
    let (o, p) = (*ls.first()?, *ls.get(1)?);
    let (fo, fp) = (*fs.first()?, *fs.get(1)?);
    Some(vec![
        fig(
            "PKCS#11 C_Login + C_Sign: APDUs",
            n(o),
            format!("{} (official module's sequence)", n(p)),
            x(p, o),
            "≤ 20",
            Some(o <= 20.0),
        ),
        fig(
            "PKCS#11 further C_Sign: APDUs",
            n(fo),
            n(fp),
            x(fp, fo),
            "≤ 3",
            Some(fo <= 3.0),
        ),
    ])
}

/// Section 7: every measured ABI against 3 MB.
fn size(t: &[Table]) -> Option<Vec<Figure>> {
    let t = t.first()?;
    let (abi, how, bytes) = (t.col("ABI")?, t.col("Build")?, t.col("Stripped (B)")?);
    let mut out = Vec::new();
    for r in &t.rows {
        let Some(b) = number(&r[bytes]) else { continue };
        let relr = r[how].contains("pack");
        out.push(fig(
            &format!(
                "Core library, stripped, {}{} (MB)",
                r[abi],
                if relr { ", packed relocations" } else { "" }
            ),
            format!("{:.2}", b / 1e6),
            "–".into(),
            "–".into(),
            "≤ 3 MB",
            Some(b <= 3e6),
        ));
    }
    Some(out)
}

/// Section 8 (scripts/fuzz.sh --markdown): a table with executions and crashes per target.
fn fuzz(t: &[Table]) -> Option<Vec<Figure>> {
    let Some(t) = t
        .iter()
        .find(|t| t.col("xec").is_some() && t.col("rash").is_some())
    else {
        // A section without such a table (e.g. the script is missing): nothing to sum.
        return Some(Vec::new());
    };
    let (e, c) = (t.col("xec")?, t.col("rash")?);
    let execs: Vec<f64> = t.rows.iter().filter_map(|r| count(&r[e])).collect();
    let crashes: f64 = t.rows.iter().filter_map(|r| number(&r[c])).sum();
    let least = execs.iter().copied().fold(f64::INFINITY, f64::min);
    if execs.is_empty() {
        return None;
    }
    Some(vec![
        fig(
            &format!("Fuzzing: fewest executions of the {} targets", execs.len()),
            crate::size::thousands(least as u64),
            "–".into(),
            "–".into(),
            "≥ 10,000,000 per target",
            Some(least >= 1e7),
        ),
        fig(
            "Fuzzing: open crashes",
            n(crashes),
            "–".into(),
            "–".into(),
            "0",
            Some(crashes == 0.0),
        ),
    ])
}

/// A count as a table may print it: `10,000,000`, `10.0 M`, `12k`.
fn count(cell: &str) -> Option<f64> {
    let v = number(cell)?;
    let unit = cell
        .trim_start_matches(|c: char| c.is_ascii_digit() || matches!(c, '.' | ',' | ' '))
        .chars()
        .next();
    Some(match unit {
        Some('k' | 'K') => v * 1e3,
        Some('M') => v * 1e6,
        Some('G') => v * 1e9,
        _ => v,
    })
}

/// Section 9: each soak run's rate, p99 and lost/duplicated.
fn soak(t: &[Table]) -> Option<Vec<Figure>> {
    let Some(t) = t.iter().find(|t| t.col("Lost").is_some()) else {
        return Some(Vec::new());
    };
    let (run, rate, p99) = (t.col("Run")?, t.col("Logins/s")?, t.col("p99")?);
    let (l, d) = (t.col("Lost")?, t.col("Duplicated")?);
    let mut out = Vec::new();
    for r in &t.rows {
        let (lost, dup) = (number(&r[l])?, number(&r[d])?);
        out.push(fig(
            &format!(
                "Soak, {}, restart midway: logins/s, p99 ms, lost / duplicated",
                r[run]
            ),
            format!("{}/s, {} ms, {} / {}", r[rate], r[p99], n(lost), n(dup)),
            "–".into(),
            "–".into(),
            "0 lost / 0 duplicated",
            Some(lost == 0.0 && dup == 0.0),
        ));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::md::sections;

    #[test]
    fn reads_the_committed_report() {
        let md = include_str!("../../BENCHMARKS.md");
        let (figs, unread) = figures(&sections(md));
        assert!(unread.is_empty(), "unread sections {unread:?}");
        let tap = figs
            .iter()
            .find(|f| f.what == "CIE login tap: APDUs (full tap)")
            .expect("tap figure");
        assert!(tap.ours.parse::<u32>().is_ok(), "{tap:?}");
        assert!(tap.met.is_some());
        let p11 = figs
            .iter()
            .find(|f| f.what == "PKCS#11 C_Login + C_Sign: APDUs")
            .expect("pkcs11 figure");
        assert!(
            p11.ours.parse::<u32>().is_ok() && p11.met.is_some(),
            "{p11:?}"
        );
        assert!(figs.iter().any(|f| f.what.starts_with("QR give-up")));
        assert!(
            figs.iter()
                .any(|f| f.what.starts_with("Desktop QR logins/s"))
        );
    }

    #[test]
    fn a_missed_target_is_reported_as_missed() {
        let md = "## 7. Size\n\n| ABI | Build | Stripped (B) |\n|---|---|---:|\n| x86_64 | dist | 4,332,264 |\n";
        let (figs, _) = figures(&sections(md));
        assert_eq!(figs.len(), 1);
        assert_eq!(figs[0].ours, "4.33");
        assert_eq!(figs[0].met, Some(false));
    }

    #[test]
    fn fuzz_table_needs_ten_million_executions_and_no_crash() {
        let md = "## 8. Fuzz\n\n| Target | Execs | Coverage | Crashes |\n|---|---:|---:|---:|\n| apdu | 10.2 M | 812 | 0 |\n| tlv | 12,000,000 | 400 | 0 |\n";
        let (figs, _) = figures(&sections(md));
        assert_eq!(figs[0].ours, "10,200,000");
        assert_eq!(figs[0].met, Some(true));
        assert_eq!((figs[1].ours.as_str(), figs[1].met), ("0", Some(true)));
        let short = md
            .replace("10.2 M", "9.9 M")
            .replace("| 400 | 0 |", "| 400 | 1 |");
        let (figs, _) = figures(&sections(&short));
        assert_eq!(figs[0].met, Some(false));
        assert_eq!(figs[1].met, Some(false));
    }

    #[test]
    fn soak_counts_fail_when_a_login_is_lost() {
        let md = "## 9. Soak\n\n| Run | Logins/s | p99 (ms) | Lost | Duplicated |\n|---|---:|---:|---:|---:|\n| SQLite, 1 instance | 900 | 40.0 | 1 | 0 |\n";
        let (figs, _) = figures(&sections(md));
        assert_eq!(figs[0].met, Some(false));
        assert!(figs[0].ours.ends_with("1 / 0"));
    }
}
