//! One self-contained HTML report per run: no network, no scripts from elsewhere, opens from a
//! file or a shared drive. Charts are SVG drawn here; case tables filter as you type (a few
//! lines of inline JavaScript).

use std::fmt::Write as _;

use arrow::array::RecordBatch;

use super::xlsx::cell_text;

/// Everything the page shows, already computed.
#[derive(Debug, Default)]
pub struct Page {
    /// Pipeline name.
    pub pipeline: String,
    /// Registry version.
    pub version: String,
    /// Reference date.
    pub reference_date: String,
    /// Whether identifiers are masked.
    pub masked: bool,
    /// Headline figures: (label, value).
    pub figures: Vec<(String, String)>,
    /// Program codes, in order, and the families holding each pair (a, b) -> n.
    pub overlap: (Vec<String>, Vec<(String, String, u64)>),
    /// Top program combinations: (combination, families).
    pub combinations: Vec<(String, u64)>,
    /// Coverage per program and regency: (program, regency, recipients, eligible, covered).
    pub coverage: Vec<(String, String, u64, u64, u64)>,
    /// Inclusion errors: (category, program, cases).
    pub inclusion: Vec<(String, String, u64)>,
    /// Exclusion errors: (program, cases, of which receiving nothing).
    pub exclusion: Vec<(String, u64, u64)>,
    /// Tables: (title, note, rows).
    pub tables: Vec<(String, String, RecordBatch)>,
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const PALETTE: [&str; 8] = [
    "#1f6f8b", "#e07a24", "#4c9a2a", "#b23a48", "#7a5195", "#c9a227", "#3d5a80", "#8d6e63",
];

/// A horizontal bar chart.
fn bars(title: &str, items: &[(String, f64, String)], color: &str) -> String {
    let width = 900.0;
    let label_width = 230.0;
    let row = 22.0;
    let height = row * items.len() as f64 + 30.0;
    let max = items.iter().map(|i| i.1).fold(0.0f64, f64::max).max(1e-9);
    let mut svg = format!(
        "<figure><figcaption>{}</figcaption><svg viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\">",
        escape(title)
    );
    for (i, (label, value, text)) in items.iter().enumerate() {
        let y = 10.0 + row * i as f64;
        // Room on the right for the value text.
        let w = (width - label_width - 260.0) * value / max;
        let _ = write!(
            svg,
            "<text x=\"{x}\" y=\"{ty}\" text-anchor=\"end\" class=\"l\">{label}</text>\
             <rect x=\"{label_width}\" y=\"{y}\" width=\"{w:.1}\" height=\"{h}\" fill=\"{color}\"><title>{label}: {text}</title></rect>\
             <text x=\"{vx:.1}\" y=\"{ty}\" class=\"v\">{text}</text>",
            x = label_width - 6.0,
            ty = y + 14.0,
            h = row - 6.0,
            label = escape(label),
            text = escape(text),
            vx = label_width + w + 4.0,
        );
    }
    svg.push_str("</svg></figure>");
    svg
}

/// The program x program heat map.
fn heat_map(programs: &[String], cells: &[(String, String, u64)]) -> String {
    let n = programs.len();
    if n == 0 {
        return "<p>No program recipients.</p>".into();
    }
    let cell = 84.0;
    let left = 120.0;
    let top = 40.0;
    let size = left + cell * n as f64 + 10.0;
    let value = |a: &str, b: &str| -> u64 {
        let (a, b) = if a <= b { (a, b) } else { (b, a) };
        cells
            .iter()
            .find(|(x, y, _)| x == a && y == b)
            .map_or(0, |c| c.2)
    };
    let max = cells.iter().map(|c| c.2).max().unwrap_or(1).max(1) as f64;
    let mut svg = format!(
        "<figure><figcaption>Families receiving both programs (the diagonal: each program's families)</figcaption>\
         <svg viewBox=\"0 0 {size} {h}\" width=\"{size}\" height=\"{h}\" role=\"img\">",
        h = top + cell * n as f64 + 10.0
    );
    for (i, p) in programs.iter().enumerate() {
        let _ = write!(
            svg,
            "<text x=\"{x}\" y=\"{y}\" text-anchor=\"middle\" class=\"l\">{p}</text>\
             <text x=\"{lx}\" y=\"{ly}\" text-anchor=\"end\" class=\"l\">{p}</text>",
            x = left + cell * (i as f64 + 0.5),
            y = top - 10.0,
            lx = left - 8.0,
            ly = top + cell * (i as f64 + 0.5) + 4.0,
            p = escape(p)
        );
    }
    for (i, a) in programs.iter().enumerate() {
        for (j, b) in programs.iter().enumerate() {
            let v = value(a, b);
            // Square-root scale so small overlaps still show.
            let t = (v as f64 / max).sqrt();
            let light = 96.0 - 60.0 * t;
            let _ = write!(
                svg,
                "<rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{w}\" fill=\"hsl(200,60%,{light:.0}%)\" stroke=\"#fff\"><title>{a} + {b}: {v}</title></rect>\
                 <text x=\"{tx}\" y=\"{ty}\" text-anchor=\"middle\" class=\"{class}\">{v}</text>",
                x = left + cell * j as f64,
                y = top + cell * i as f64,
                w = cell,
                tx = left + cell * (j as f64 + 0.5),
                ty = top + cell * (i as f64 + 0.5) + 5.0,
                class = if light < 60.0 { "n w" } else { "n" },
                a = escape(a),
                b = escape(b),
            );
        }
    }
    svg.push_str("</svg></figure>");
    svg
}

fn table(id: usize, title: &str, note: &str, batch: &RecordBatch) -> String {
    let mut html = format!(
        "<section><h2>{title}</h2><p class=\"note\">{note}</p>\
         <input class=\"filter\" data-table=\"t{id}\" placeholder=\"Filter rows: type a name, id, region or program\">\
         <div class=\"scroll\"><table id=\"t{id}\"><thead><tr>",
        title = escape(title),
        note = escape(note)
    );
    for field in batch.schema().fields() {
        let _ = write!(html, "<th>{}</th>", escape(field.name()));
    }
    html.push_str("</tr></thead><tbody>");
    for row in 0..batch.num_rows() {
        html.push_str("<tr>");
        for column in batch.columns() {
            let _ = write!(html, "<td>{}</td>", escape(&cell_text(column, row)));
        }
        html.push_str("</tr>");
    }
    html.push_str("</tbody></table></div></section>");
    html
}

/// Renders the page.
pub fn render(page: &Page) -> String {
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>terpadu report: {pipeline}</title><style>{STYLE}</style></head><body>\
         <header><h1>terpadu: {pipeline}</h1><p>Registry version {version} &middot; reference date {date} &middot; \
         identifiers {masked}</p></header><main>",
        pipeline = escape(&page.pipeline),
        version = escape(&page.version),
        date = escape(&page.reference_date),
        masked = if page.masked {
            "masked"
        } else {
            "<b>UNMASKED</b>"
        },
    );
    html.push_str("<section class=\"figures\">");
    for (label, value) in &page.figures {
        let _ = write!(
            html,
            "<div class=\"figure\"><div class=\"value\">{}</div><div class=\"label\">{}</div></div>",
            escape(value),
            escape(label)
        );
    }
    html.push_str("</section><section class=\"charts\"><h2>Overlap between programs</h2>");
    html.push_str(&heat_map(&page.overlap.0, &page.overlap.1));
    let combinations: Vec<(String, f64, String)> = page
        .combinations
        .iter()
        .map(|(c, n)| (c.clone(), *n as f64, n.to_string()))
        .collect();
    html.push_str(&bars(
        "Top program combinations (families)",
        &combinations,
        PALETTE[0],
    ));
    html.push_str("</section><section class=\"charts\"><h2>Errors the reports name</h2>");
    let inclusion: Vec<(String, f64, String)> = page
        .inclusion
        .iter()
        .map(|(category, program, n)| {
            (
                format!("{program}: {}", category.replace('_', " ")),
                *n as f64,
                n.to_string(),
            )
        })
        .collect();
    html.push_str(&bars(
        "Inclusion errors by program and category (program rows)",
        &inclusion,
        PALETTE[3],
    ));
    let exclusion: Vec<(String, f64, String)> = page
        .exclusion
        .iter()
        .map(|(program, n, nothing)| {
            (
                format!("{program}: eligible, not receiving"),
                *n as f64,
                format!("{n} ({nothing} receive nothing)"),
            )
        })
        .collect();
    html.push_str(&bars(
        "Exclusion errors by program (units)",
        &exclusion,
        PALETTE[1],
    ));
    html.push_str("</section><section class=\"charts\"><h2>Coverage by regency</h2>");
    let mut programs: Vec<&String> = page.coverage.iter().map(|c| &c.0).collect();
    programs.dedup();
    for (k, program) in programs.iter().enumerate() {
        let items: Vec<(String, f64, String)> = page
            .coverage
            .iter()
            .filter(|c| &&c.0 == program)
            .map(|(_, regency, recipients, eligible, covered)| {
                let rate = if *eligible > 0 {
                    *covered as f64 / *eligible as f64
                } else {
                    0.0
                };
                (
                    regency.clone(),
                    rate,
                    format!(
                        "{:.0}% of {eligible} eligible ({recipients} recipients)",
                        100.0 * rate
                    ),
                )
            })
            .collect();
        html.push_str(&bars(
            &format!("{program}: share of eligible units covered"),
            &items,
            PALETTE[(k + 2) % PALETTE.len()],
        ));
    }
    html.push_str("</section>");
    for (i, (title, note, batch)) in page.tables.iter().enumerate() {
        html.push_str(&table(i, title, note, batch));
    }
    let _ = write!(
        html,
        "</main><footer>Written by terpadu. NIK, KK, names and birth dates are personal data \
         (UU 27/2022): share this file only with those who need it.</footer><script>{SCRIPT}</script></body></html>"
    );
    html
}

const STYLE: &str = "body{font-family:'DejaVu Sans',Arial,sans-serif;margin:0;color:#222;background:#f6f7f9}\
header{background:#1f3b57;color:#fff;padding:16px 24px}header h1{margin:0 0 4px;font-size:22px}\
header p{margin:0;opacity:.85}main{padding:8px 24px}h2{font-size:18px;margin:20px 0 8px}\
.figures{display:flex;flex-wrap:wrap;gap:10px;margin-top:12px}.figure{background:#fff;border:1px solid #dde;\
border-radius:6px;padding:10px 14px;min-width:140px}.figure .value{font-size:22px;font-weight:bold;color:#1f3b57}\
.figure .label{font-size:12px;color:#555}.charts{background:#fff;border:1px solid #dde;border-radius:6px;\
padding:4px 16px 12px;margin-top:14px}figure{margin:8px 0}figcaption{font-size:13px;color:#444;margin-bottom:4px}\
svg .l{font-size:12px;fill:#333}svg .v{font-size:11px;fill:#333}svg .n{font-size:13px;fill:#123}svg .w{fill:#fff}\
section{margin-bottom:10px}.note{font-size:12px;color:#555}.filter{width:360px;padding:5px;margin:4px 0}\
.scroll{max-height:340px;overflow:auto;border:1px solid #dde;background:#fff}table{border-collapse:collapse;\
font-size:12px;width:100%}th{position:sticky;top:0;background:#e8eef4;text-align:left}th,td{padding:3px 6px;\
border-bottom:1px solid #eee;white-space:nowrap}footer{font-size:11px;color:#666;padding:16px 24px}";

const SCRIPT: &str = "document.querySelectorAll('.filter').forEach(function(input){\
input.addEventListener('input',function(){var q=input.value.toLowerCase();\
document.querySelectorAll('#'+input.dataset.table+' tbody tr').forEach(function(tr){\
tr.style.display=tr.textContent.toLowerCase().indexOf(q)>=0?'':'none';});});});";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_escapes_text_and_draws_charts() {
        let page = Page {
            pipeline: "sample <test>".into(),
            version: "v1".into(),
            reference_date: "2025-10-31".into(),
            masked: true,
            figures: vec![("persons".into(), "10".into())],
            overlap: (
                vec!["BPNT".into(), "PKH".into()],
                vec![
                    ("BPNT".into(), "BPNT".into(), 5),
                    ("BPNT".into(), "PKH".into(), 2),
                    ("PKH".into(), "PKH".into(), 3),
                ],
            ),
            combinations: vec![("BPNT + PKH".into(), 2)],
            ..Page::default()
        };
        let html = render(&page);
        assert!(html.contains("sample &lt;test&gt;"));
        assert!(!html.contains("<test>"));
        assert!(html.contains("<svg"), "charts are drawn");
        assert!(html.contains("<title>BPNT + PKH: 2</title>"), "{html}");
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "no network"
        );
    }
}
