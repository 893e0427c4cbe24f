//! The human report of a detection: one line a sequence, with how far
//! chance explains it and the verdict of the proposal rule.

use super::Detection;

/// What the report's verdicts mean.
const VERDICT_LEGEND: &str = "verdict: proposed = worth a new_pipeline proposal; weak = not common enough beyond chance to be a pipeline; chance = chance may explain it (q above the rate); in triple = part of a proposed triple, nothing significant beyond it";

/// The human report.
pub fn render_text(detection: &Detection) -> String {
    if detection.sequences.is_empty() {
        return format!(
            "no sequence reaches support {} (sessions) with gaps up to {}s\n",
            detection.min_support, detection.max_gap_s
        );
    }
    let mut table = comfy_table::Table::new();
    table
        .load_preset(comfy_table::presets::NOTHING)
        .set_header([
            "support",
            "occurrences",
            "expected",
            "lift",
            "q",
            "verdict",
            "sequence",
        ]);
    for s in &detection.sequences {
        table.add_row([
            s.support.to_string(),
            s.occurrences.to_string(),
            format!("{:.1}", s.expected),
            format!("{:.1}", s.lift),
            format!("{:.2e}", s.q),
            s.verdict.label().to_string(),
            s.functions.join(" → "),
        ]);
    }
    let proposed = detection.sequences.iter().filter(|s| s.proposed).count();
    format!(
        "{} sequence(s) with support >= {} (max gap {}s) in {} sessions, {proposed} worth a pipeline (q <= {}, lift >= {} or an excess of {} % of the sessions):\n{table}\n{VERDICT_LEGEND}\n",
        detection.sequences.len(),
        detection.min_support,
        detection.max_gap_s,
        detection.sessions,
        detection.fdr,
        detection.min_lift,
        detection.min_excess * 100.0,
    )
}
