//! Charts drawn on the server as inline SVG: bars with confidence whiskers, score
//! distributions, and a baseline-versus-candidate scatter. Colours are CSS classes (`s0`..`s7`,
//! light and dark in the stylesheet); no inline style, no script.

use maud::{Markup, html};

use super::layout::number;

/// Series colours available.
pub const SERIES: usize = 8;

fn series_class(i: usize) -> String {
    format!("s{}", i % SERIES)
}

/// One bar: a run's value of a metric, with an optional 95% interval.
#[derive(Debug, Clone)]
pub struct Bar {
    /// The run's label.
    pub label: String,
    /// The value.
    pub value: f64,
    /// The interval around it, if known.
    pub interval: Option<(f64, f64)>,
}

/// The range `[lo, hi]` covering `values` and zero, padded a little; never empty.
fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (0.0f64, 0.0f64);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if hi - lo < 1e-12 {
        hi = lo + 1.0;
    }
    let pad = (hi - lo) * 0.05;
    (if lo < 0.0 { lo - pad } else { lo }, hi + pad)
}

/// Horizontal bars, one per run, with whiskers for their intervals.
pub fn bars(title: &str, bars: &[Bar]) -> Markup {
    let (label_w, plot_w, row_h, top) = (150.0, 320.0, 26.0, 24.0);
    let height = top + row_h * bars.len() as f64 + 22.0;
    let width = label_w + plot_w + 70.0;
    let all = bars.iter().flat_map(|b| {
        let (l, h) = b.interval.unwrap_or((b.value, b.value));
        [b.value, l, h]
    });
    let (lo, hi) = range(all);
    let x = |v: f64| label_w + (v.clamp(lo, hi) - lo) / (hi - lo) * plot_w;
    html! {
        svg.chart xmlns="http://www.w3.org/2000/svg" role="img" width=(width) height=(height)
            viewBox={ "0 0 " (width) " " (height) } {
            title { (title) }
            text x="0" y="14" { (title) }
            line.axis x1=(x(0.0)) y1=(top - 4.0) x2=(x(0.0)) y2=(height - 18.0) {}
            @for (i, b) in bars.iter().enumerate() {
                @let y = top + row_h * i as f64;
                @let (x0, x1) = (x(0.0).min(x(b.value)), x(0.0).max(x(b.value)));
                text x="0" y=(y + 15.0) { (short(&b.label, 22)) }
                rect class=(series_class(i)) x=(x0) y=(y + 4.0) width=((x1 - x0).max(1.0)) height=(row_h - 10.0) {
                    title { (b.label) ": " (number(b.value)) }
                }
                @if let Some((l, h)) = b.interval {
                    line.whisker x1=(x(l)) y1=(y + row_h / 2.0 - 2.0) x2=(x(h)) y2=(y + row_h / 2.0 - 2.0) {}
                    line.whisker x1=(x(l)) y1=(y + 6.0) x2=(x(l)) y2=(y + row_h - 10.0) {}
                    line.whisker x1=(x(h)) y1=(y + 6.0) x2=(x(h)) y2=(y + row_h - 10.0) {}
                }
                text x=(label_w + plot_w + 6.0) y=(y + 15.0) { (number(b.value)) }
            }
            text x=(label_w) y=(height - 4.0) { (number(lo)) }
            text x=(label_w + plot_w) y=(height - 4.0) text-anchor="end" { (number(hi)) }
        }
    }
}

/// Distributions of a metric, one outlined histogram per run over shared bins.
pub fn histogram(title: &str, series: &[(String, Vec<f64>)], bins: usize) -> Markup {
    let bins = bins.clamp(1, 50);
    let (plot_w, plot_h, left, top) = (360.0, 140.0, 40.0, 24.0);
    let (width, height) = (left + plot_w + 10.0, top + plot_h + 40.0 + 16.0 * series.len() as f64);
    let values = || series.iter().flat_map(|(_, v)| v.iter().copied()).filter(|v| v.is_finite());
    let lo = values().fold(f64::INFINITY, f64::min);
    let hi = values().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) =
        if lo.is_finite() { (lo, if hi - lo < 1e-12 { lo + 1.0 } else { hi }) } else { (0.0, 1.0) };
    let counts: Vec<Vec<usize>> = series
        .iter()
        .map(|(_, v)| {
            let mut c = vec![0usize; bins];
            for x in v.iter().filter(|x| x.is_finite()) {
                let i = (((x - lo) / (hi - lo)) * bins as f64) as usize;
                c[i.min(bins - 1)] += 1;
            }
            c
        })
        .collect();
    let peak = counts.iter().flatten().copied().max().unwrap_or(1).max(1) as f64;
    let bw = plot_w / bins as f64;
    html! {
        svg.chart xmlns="http://www.w3.org/2000/svg" role="img" width=(width) height=(height)
            viewBox={ "0 0 " (width) " " (height) } {
            title { (title) }
            text x="0" y="14" { (title) }
            line.axis x1=(left) y1=(top + plot_h) x2=(left + plot_w) y2=(top + plot_h) {}
            @for (s, c) in counts.iter().enumerate() {
                @let points = c.iter().enumerate().map(|(i, n)| {
                    let y = top + plot_h - (*n as f64 / peak) * plot_h;
                    format!("{:.1},{:.1} {:.1},{:.1}", left + bw * i as f64, y, left + bw * (i + 1) as f64, y)
                }).collect::<Vec<_>>().join(" ");
                polyline class=(series_class(s)) stroke-width="2" fill-opacity="0.12"
                    points={ (format!("{left:.1},{:.1} ", top + plot_h)) (points) (format!(" {:.1},{:.1}", left + plot_w, top + plot_h)) } {}
            }
            text x=(left) y=(top + plot_h + 14.0) { (number(lo)) }
            text x=(left + plot_w) y=(top + plot_h + 14.0) text-anchor="end" { (number(hi)) }
            text x="0" y=(top + 10.0) { (peak as u64) }
            @for (s, (label, v)) in series.iter().enumerate() {
                @let y = top + plot_h + 30.0 + 16.0 * s as f64;
                rect class=(series_class(s)) x=(left) y=(y - 9.0) width="10" height="10" {}
                text x=(left + 16.0) y=(y) { (short(label, 40)) " (n=" (v.len()) ")" }
            }
        }
    }
}

/// Per-example points (baseline value, candidate value), with the diagonal y = x: points
/// above it improved (for a metric where higher is better).
pub fn scatter(title: &str, x_label: &str, y_label: &str, points: &[(f64, f64)]) -> Markup {
    let (size, left, top) = (260.0, 44.0, 24.0);
    let (width, height) = (left + size + 20.0, top + size + 40.0);
    let (lo, hi) = {
        let all = points.iter().flat_map(|(a, b)| [*a, *b]).filter(|v| v.is_finite());
        let lo = all.clone().fold(f64::INFINITY, f64::min);
        let hi = all.fold(f64::NEG_INFINITY, f64::max);
        if lo.is_finite() { (lo, if hi - lo < 1e-12 { lo + 1.0 } else { hi }) } else { (0.0, 1.0) }
    };
    let px = |v: f64| left + (v - lo) / (hi - lo) * size;
    let py = |v: f64| top + size - (v - lo) / (hi - lo) * size;
    // Many points at one place (boolean scores) are drawn once, sized by their count.
    let mut cells: std::collections::BTreeMap<(i64, i64), usize> = std::collections::BTreeMap::new();
    for (a, b) in points.iter().filter(|(a, b)| a.is_finite() && b.is_finite()) {
        *cells.entry(((px(*a) * 2.0) as i64, (py(*b) * 2.0) as i64)).or_default() += 1;
    }
    html! {
        svg.chart xmlns="http://www.w3.org/2000/svg" role="img" width=(width) height=(height)
            viewBox={ "0 0 " (width) " " (height) } {
            title { (title) }
            text x="0" y="14" { (title) }
            rect.grid x=(left) y=(top) width=(size) height=(size) fill="none" {}
            line.grid x1=(px(lo)) y1=(py(lo)) x2=(px(hi)) y2=(py(hi)) {}
            @for ((cx, cy), n) in &cells {
                circle.s0 cx=(*cx as f64 / 2.0) cy=(*cy as f64 / 2.0) r=(2.5 + (*n as f64).sqrt().min(10.0)) fill-opacity="0.5" {
                    title { (n) " example(s)" }
                }
            }
            text x=(left) y=(top + size + 14.0) { (number(lo)) }
            text x=(left + size) y=(top + size + 14.0) text-anchor="end" { (number(hi)) }
            text x=(left + size / 2.0) y=(top + size + 30.0) text-anchor="middle" { (short(x_label, 40)) " →" }
            text x="0" y=(top + 10.0) { "↑ " (short(y_label, 14)) }
        }
    }
}

fn short(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_escape_labels_and_draw_every_series() {
        let b = bars(
            "accuracy",
            &[
                Bar { label: "<script>x</script>".into(), value: 0.5, interval: Some((0.4, 0.6)) },
                Bar { label: "b".into(), value: -0.2, interval: None },
            ],
        )
        .into_string();
        assert!(!b.contains("<script>") && b.contains("&lt;script&gt;"));
        assert_eq!(b.matches("<rect").count(), 2);
        assert_eq!(b.matches("class=\"whisker\"").count(), 3);
        let h = histogram("d", &[("a".into(), vec![0.0, 1.0, 1.0]), ("b".into(), vec![])], 10).into_string();
        assert_eq!(h.matches("<polyline").count(), 2);
        assert!(h.contains("(n=3)") && h.contains("(n=0)"));
        let s = scatter("s", "base", "cand", &[(0.0, 1.0), (0.0, 1.0), (1.0, 1.0)]).into_string();
        assert_eq!(s.matches("<circle").count(), 2, "equal points are drawn once");
        assert!(!s.contains("NaN"));
    }
}
