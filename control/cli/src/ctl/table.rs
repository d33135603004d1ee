//! The boxed tables calicoctl prints for `ipam show` (Go's olekukonko/tablewriter with its
//! defaults): `+---+` borders, headers centred, cells that are numbers aligned right and
//! other cells left, one space of padding each side.

/// Renders `headers` and `rows` as tablewriter does by default.
pub fn boxed(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let rule: String = widths.iter().fold(String::from("+"), |mut s, w| {
        s.push_str(&"-".repeat(w + 2));
        s.push('+');
        s
    });
    let line = |cells: Vec<String>| -> String {
        let mut s = String::from("|");
        for c in cells {
            s.push(' ');
            s.push_str(&c);
            s.push_str(" |");
        }
        s
    };
    let mut out = vec![rule.clone()];
    out.push(line(
        headers
            .iter()
            .zip(&widths)
            .map(|(h, w)| centre(h, *w))
            .collect(),
    ));
    out.push(rule.clone());
    for row in rows {
        out.push(line(
            widths
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    let cell = row.get(i).map(String::as_str).unwrap_or("");
                    if is_number(cell) {
                        format!("{cell:>w$}")
                    } else {
                        format!("{cell:<w$}")
                    }
                })
                .collect(),
        ));
    }
    out.push(rule);
    out.join("\n") + "\n"
}

/// The table of Go's jedib0t/go-pretty in its default style (calicoctl's `ipam show
/// --show-configuration`): the same `+---+` rules, but headers and string cells left-aligned.
pub fn pretty(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let rule = widths
        .iter()
        .fold(String::from("+"), |s, w| s + &"-".repeat(w + 2) + "+");
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        widths.iter().fold(String::from("|"), |s, w| {
            let c = cells.next().unwrap_or("");
            s + &format!(" {c:<w$} |")
        })
    };
    let mut out = vec![
        rule.clone(),
        line(&mut headers.iter().copied()),
        rule.clone(),
    ];
    for row in rows {
        out.push(line(&mut row.iter().map(String::as_str)));
    }
    out.push(rule);
    out.join("\n") + "\n"
}

/// tablewriter's `Pad`: the extra space split with the smaller half on the left.
fn centre(s: &str, width: usize) -> String {
    let gap = width.saturating_sub(s.chars().count());
    let left = gap / 2;
    format!("{}{s}{}", " ".repeat(left), " ".repeat(gap - left))
}

/// tablewriter right-aligns cells that parse as a decimal number.
fn is_number(s: &str) -> bool {
    let t = s.strip_prefix('-').unwrap_or(s);
    !t.is_empty() && t.parse::<f64>().is_ok() && t.chars().all(|c| c.is_ascii_digit() || c == '.')
}

/// Go's `%.5g` of a count: plain digits up to 5 significant digits, exponent form above
/// (`16777216` -> `1.6777e+07`), as calicoctl prints pool sizes.
pub fn go_g5(value: u64) -> String {
    if value < 100_000 {
        return value.to_string();
    }
    let formatted = format!("{:.4e}", value as f64); // e.g. "1.6777e7"
    let (mantissa, exponent) = formatted.split_once('e').unwrap_or((&formatted, "0"));
    let mantissa = if mantissa.contains('.') {
        mantissa.trim_end_matches('0').trim_end_matches('.')
    } else {
        mantissa
    };
    let exponent: i32 = exponent.parse().unwrap_or(0);
    format!(
        "{mantissa}e{}{:02}",
        if exponent < 0 { '-' } else { '+' },
        exponent.abs()
    )
}

/// `%.5g (%.f%%)`: a count and its share of `total`, rounded to a whole percent.
pub fn count_and_percent(count: u64, total: u64) -> String {
    let percent = if total == 0 {
        0.0
    } else {
        100.0 * count as f64 / total as f64
    };
    format!("{} ({percent:.0}%)", go_g5(count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_tablewriter() {
        let t = boxed(
            &["GROUPING", "CIDR", "IPS TOTAL", "IPS IN USE", "IPS FREE"],
            &[vec![
                "IP Pool".into(),
                "192.168.0.0/16".into(),
                "65536".into(),
                "5 (0%)".into(),
                "65531 (100%)".into(),
            ]],
        );
        assert_eq!(
            t,
            "+----------+----------------+-----------+------------+--------------+\n\
             | GROUPING |      CIDR      | IPS TOTAL | IPS IN USE |   IPS FREE   |\n\
             +----------+----------------+-----------+------------+--------------+\n\
             | IP Pool  | 192.168.0.0/16 |     65536 | 5 (0%)     | 65531 (100%) |\n\
             +----------+----------------+-----------+------------+--------------+\n"
        );
    }

    #[test]
    fn renders_like_go_pretty() {
        let t = pretty(
            &["PROPERTY", "VALUE"],
            &[vec!["StrictAffinity".into(), "false".into()]],
        );
        assert_eq!(
            t,
            "+----------------+-------+\n\
             | PROPERTY       | VALUE |\n\
             +----------------+-------+\n\
             | StrictAffinity | false |\n\
             +----------------+-------+\n"
        );
    }

    #[test]
    fn counts_are_formatted_as_go_does() {
        assert_eq!(go_g5(64), "64");
        assert_eq!(go_g5(65536), "65536");
        assert_eq!(go_g5(16_777_216), "1.6777e+07");
        assert_eq!(go_g5(1_000_000), "1e+06");
        assert_eq!(count_and_percent(5, 64), "5 (8%)");
        assert_eq!(count_and_percent(59, 64), "59 (92%)");
        assert_eq!(count_and_percent(0, 0), "0 (0%)");
    }
}
