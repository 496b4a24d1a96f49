//! Charts drawn on the server as SVG (no script, no library): labelled
//! horizontal bars for counts and error kinds, and a line over days for
//! freshness lag and volume. Every chart carries its figures as text too
//! (labels on the bars, an `aria-label` for screen readers).

use maud::{Markup, html};

use super::layout;

const WIDTH: f64 = 360.0;
const LABEL: f64 = 110.0;
const ROW: f64 = 26.0;

/// One bar per `(label, value)`, scaled to the largest; a missing value is
/// drawn as none and labelled "–".
pub fn hbars(title: &str, rows: &[(String, Option<f64>)]) -> Markup {
    let max = rows.iter().filter_map(|r| r.1).fold(0.0_f64, f64::max);
    let span = WIDTH - LABEL - 70.0;
    let height = ROW * rows.len().max(1) as f64;
    let text =
        |v: Option<f64>| layout::count(&v.map_or(serde_json::Value::Null, serde_json::Value::from));
    let summary: Vec<String> = rows
        .iter()
        .map(|(l, v)| format!("{l} {}", text(*v)))
        .collect();
    html! {
        figure.chart {
            figcaption { (title) }
            svg.chart viewBox=(format!("0 0 {WIDTH} {height}")) role="img"
                aria-label=(format!("{title}: {}", summary.join(", "))) {
                @for (i, (label, value)) in rows.iter().enumerate() {
                    @let y = i as f64 * ROW;
                    @let w = match value { Some(v) if max > 0.0 => v / max * span, _ => 0.0 };
                    text x="0" y=(y + 17.0) { (label) }
                    rect x=(LABEL) y=(y + 5.0) width=(w.max(1.0)) height="16" fill="#54aeff" {}
                    text x=(LABEL + w + 6.0) y=(y + 17.0) { (text(*value)) }
                }
            }
        }
    }
}

/// A line over days (`(day label, value)`, oldest first); gaps where a day
/// has no value. `unit` formats the figures named in the caption.
pub fn line(title: &str, points: &[(String, Option<f64>)], unit: impl Fn(f64) -> String) -> Markup {
    let (w, h, pad) = (WIDTH, 120.0, 16.0);
    let max = points.iter().filter_map(|p| p.1).fold(0.0_f64, f64::max);
    let step = if points.len() > 1 {
        (w - 2.0 * pad) / (points.len() - 1) as f64
    } else {
        0.0
    };
    // Each run of days with a value is a line; each value also a dot, so
    // a day alone between gaps shows.
    let mut segments: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for (i, (_, v)) in points.iter().enumerate() {
        match v {
            Some(v) => {
                let y = h
                    - pad
                    - if max > 0.0 {
                        v / max * (h - 2.0 * pad)
                    } else {
                        0.0
                    };
                segments
                    .last_mut()
                    .expect("one at least")
                    .push((pad + i as f64 * step, y));
            }
            None => segments.push(Vec::new()),
        }
    }
    let latest = points.iter().rev().find_map(|p| p.1);
    let caption = format!(
        "{title}: latest {}, highest {}",
        latest.map_or("–".to_owned(), &unit),
        if max > 0.0 {
            unit(max)
        } else {
            "–".to_owned()
        }
    );
    let first = points.first().map(|p| p.0.as_str()).unwrap_or_default();
    let last = points.last().map(|p| p.0.as_str()).unwrap_or_default();
    html! {
        figure.chart {
            figcaption { (caption) }
            svg.chart viewBox=(format!("0 0 {w} {h}")) role="img" aria-label=(caption) {
                line x1=(pad) y1=(h - pad) x2=(w - pad) y2=(h - pad) stroke="#6e7781" {}
                @for s in segments.iter().filter(|s| !s.is_empty()) {
                    @let points: Vec<String> = s.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
                    polyline points=(points.join(" ")) fill="none" stroke="#0969da" stroke-width="2" {}
                    @for (x, y) in s { circle cx=(format!("{x:.1}")) cy=(format!("{y:.1}")) r="3" fill="#0969da" {} }
                }
                text x=(pad) y=(h - 2.0) { (first) }
                text x=(w - pad) y=(h - 2.0) text-anchor="end" { (last) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_carry_their_figures_as_text() {
        let bars = hbars(
            "Counts",
            &[("expected".into(), Some(100.0)), ("missing".into(), None)],
        )
        .into_string();
        assert!(bars.contains("Counts: expected 100, missing –"), "{bars}");
        let l = line(
            "Lag",
            &[
                ("d1".into(), Some(60.0)),
                ("d2".into(), None),
                ("d3".into(), Some(30.0)),
            ],
            layout::age,
        )
        .into_string();
        assert!(l.contains("latest 30s, highest 1m"), "{l}");
        assert_eq!(
            l.matches("<polyline").count(),
            2,
            "a gap splits the line: {l}"
        );
    }

    #[test]
    fn hostile_labels_are_escaped() {
        let bars = hbars("<b>", &[("<script>x</script>".into(), Some(1.0))]).into_string();
        assert!(!bars.contains("<script>"), "{bars}");
    }
}
