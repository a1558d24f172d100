//! The little Markdown the report needs: numbered `## N.` sections and pipe tables, read
//! back from the benchmarks' own output (so the summary quotes exactly what the sections
//! print) and from the BENCHMARKS.md a partial run keeps.

/// A `## N. Title` section: its number and its whole text, heading included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub number: u32,
    pub text: String,
}

/// The number of a `## N.` heading line.
fn heading_number(line: &str) -> Option<u32> {
    let rest = line.strip_prefix("## ")?;
    let (n, _) = rest.split_once('.')?;
    n.trim().parse().ok()
}

/// Split Markdown into its numbered sections (text before the first one is dropped; a
/// `## ` heading without a number belongs to the section before it).
pub fn sections(md: &str) -> Vec<Section> {
    let mut out: Vec<Section> = Vec::new();
    for line in md.lines() {
        if let Some(number) = heading_number(line) {
            out.push(Section {
                number,
                text: String::new(),
            });
        }
        if let Some(s) = out.last_mut() {
            s.text.push_str(line);
            s.text.push('\n');
        }
    }
    for s in &mut out {
        let trimmed = s.text.trim_end().len();
        s.text.truncate(trimmed);
        s.text.push('\n');
    }
    out
}

/// A pipe table: header cells and rows of cells (bold marks removed).
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// Index of the first column whose header contains `name`.
    pub fn col(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h.contains(name))
    }

    /// The first row whose cells at the given columns equal the given values.
    pub fn row(&self, keys: &[(usize, &str)]) -> Option<&[String]> {
        self.rows
            .iter()
            .find(|r| keys.iter().all(|(c, v)| r.get(*c).is_some_and(|x| x == v)))
            .map(Vec::as_slice)
    }
}

fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    inner
        .split('|')
        .map(|c| c.trim().replace("**", ""))
        .collect()
}

/// Every pipe table in `md`, in order.
pub fn tables(md: &str) -> Vec<Table> {
    let mut out = Vec::new();
    let mut current: Option<Table> = None;
    for line in md.lines() {
        let is_row = line.trim_start().starts_with('|');
        match (&mut current, is_row) {
            (None, true) => {
                current = Some(Table {
                    header: cells(line),
                    rows: Vec::new(),
                })
            }
            (Some(t), true) => {
                let c = cells(line);
                let separator = c
                    .iter()
                    .all(|x| !x.is_empty() && x.chars().all(|ch| matches!(ch, '-' | ':')));
                if !separator {
                    t.rows.push(c);
                }
            }
            (Some(_), false) => out.extend(current.take()),
            (None, false) => {}
        }
    }
    out.extend(current);
    out
}

/// The numbers in a cell, in order: `"4 / 53"` → 4, 53; `"35 (8)"` → 35, 8;
/// `"4,332,264 B"` → 4332264; `"3/3, 3.19"` → 3, 3, 3.19.
pub fn numbers(cell: &str) -> Vec<f64> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = cell.chars().collect();
    for (i, &ch) in chars.iter().enumerate() {
        let thousands = ch == ','
            && !cur.is_empty()
            && chars.get(i + 1).is_some_and(char::is_ascii_digit)
            && chars.get(i + 4).is_none_or(|c| !c.is_ascii_digit())
            && chars[i + 1..].iter().take(3).all(char::is_ascii_digit);
        if ch.is_ascii_digit() || (ch == '.' && !cur.is_empty()) {
            cur.push(ch);
        } else if thousands {
            continue;
        } else if !cur.is_empty() {
            out.extend(cur.parse::<f64>().ok());
            cur.clear();
        }
    }
    out.extend(cur.parse::<f64>().ok());
    out
}

/// The first number in a cell.
pub fn number(cell: &str) -> Option<f64> {
    numbers(cell).first().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "# Title\n\nintro\n\n## 1. One\n\ntext\n\n| A | B |\n|---|---:|\n| x | **4 / 53** |\n| y | 2 |\n\n### Sub\n\n## 12. Twelve\nbody\n";

    #[test]
    fn splits_numbered_sections_with_their_subheadings() {
        let s = sections(DOC);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].number, 1);
        assert!(s[0].text.starts_with("## 1. One\n"));
        assert!(s[0].text.contains("### Sub"));
        assert_eq!(s[1].number, 12);
        assert_eq!(s[1].text, "## 12. Twelve\nbody\n");
    }

    #[test]
    fn reads_tables_without_separator_or_bold() {
        let t = tables(DOC);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].header, ["A", "B"]);
        assert_eq!(t[0].rows.len(), 2);
        let b = t[0].col("B").expect("column");
        let row = t[0].row(&[(0, "x")]).expect("row");
        assert_eq!(numbers(&row[b]), [4.0, 53.0]);
        assert!(t[0].row(&[(0, "z")]).is_none());
    }

    #[test]
    fn parses_numbers_with_thousands_and_fractions() {
        assert_eq!(numbers("4,332,264 B (4.13 MiB)"), [4_332_264.0, 4.13]);
        assert_eq!(numbers("35 (8)"), [35.0, 8.0]);
        assert_eq!(numbers("3/3, 3.19"), [3.0, 3.0, 3.19]);
        assert_eq!(numbers("0.64×"), [0.64]);
        assert_eq!(number("–"), None);
    }
}
