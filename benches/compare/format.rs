//! How figures are written in the report: units, thousands separators, labels.

#[derive(Clone, Copy)]
pub(crate) enum Unit {
    Ms,
    Rate,
    MBps,
    MB,
}

pub(crate) fn thousands(v: f64) -> String {
    let s = format!("{:.0}", v.round());
    let (sign, digits) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    format!("{sign}{out}")
}

pub(crate) fn fmt(v: f64, unit: Unit) -> String {
    match unit {
        Unit::Ms if v >= 10_000.0 => format!("{:.1} s", v / 1e3),
        Unit::Ms if v >= 100.0 => format!("{v:.0} ms"),
        Unit::Ms if v >= 10.0 => format!("{v:.1} ms"),
        Unit::Ms if v >= 1.0 => format!("{v:.2} ms"),
        Unit::Ms => format!("{v:.3} ms"),
        Unit::Rate if v >= 100.0 => thousands(v),
        Unit::Rate if v >= 1.0 => format!("{v:.1}"),
        Unit::Rate => format!("{v:.2}"),
        Unit::MBps => format!("{v:.1} MB/s"),
        Unit::MB => format!("{v:.1} MB"),
    }
}

/// The label of weft on ClickHouse in the report.
pub(crate) const CH_LABEL: &str = "weft on ClickHouse (ClickHouse 26.9's own server, from chdb-core)";
