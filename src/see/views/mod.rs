//! The read models behind every page and `/api/` answer: one function per
//! view, each a few indexed queries over the rollups (never a scan of
//! `calls` or `tool_uses` as a whole), run on a read-only connection.
//!
//! A view takes a [`Filter`]; which of its fields a view honours is said
//! on the view (the day series come from per-day rollups, which have no
//! host or cwd; the session figures honour all of them).

mod activity;
mod functions;
mod overview;
mod sequences;
mod sessions;

use serde::{Deserialize, Serialize};

pub use super::table::Table;

pub use activity::{
    patterns, proposals, quarantine, tools, violations, Proposals, Quarantine, Tools, Violations,
};
pub use functions::{function_detail, functions, FunctionDetail, Functions};
pub use overview::{overview, pipeline, Overview, Pipeline, PipelineSources};
pub use sequences::{Mined, SEQUENCES_SHOWN};
pub use sessions::{
    session_detail, sessions, SessionDetail, Sessions, SESSION_LIMIT, TIMELINE_LIMIT,
};

/// Query-string filters shared by the views: `from` and `to` are UTC days
/// (`YYYY-MM-DD`, inclusive), `host` and `cwd` match sessions exactly.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Filter {
    pub from: Option<String>,
    pub to: Option<String>,
    pub host: Option<String>,
    pub cwd: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{field}` must be a day like 2026-12-04, not {value:?}")]
pub struct FilterError {
    pub field: &'static str,
    pub value: String,
}

impl Filter {
    /// Checks the days' shape (they are compared as text with the
    /// database's timestamps, so a malformed one would silently match
    /// nothing); empty strings mean "not set", as an HTML form sends them.
    pub fn validated(mut self) -> Result<Self, FilterError> {
        for (field, value) in [("from", &mut self.from), ("to", &mut self.to)] {
            if value.as_deref() == Some("") {
                *value = None;
            }
            if let Some(day) = value.as_deref() {
                if chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").is_err() || day.len() != 10 {
                    return Err(FilterError {
                        field,
                        value: day.to_string(),
                    });
                }
            }
        }
        for value in [&mut self.host, &mut self.cwd] {
            if value.as_deref() == Some("") {
                *value = None;
            }
        }
        Ok(self)
    }

    /// The first day, or the earliest possible.
    fn first_day(&self) -> &str {
        self.from.as_deref().unwrap_or("0000-00-00")
    }

    /// The last day, or the latest possible.
    fn last_day(&self) -> &str {
        self.to.as_deref().unwrap_or("9999-99-99")
    }

    /// The first instant of `from`, comparable with stored timestamps.
    fn start_ts(&self) -> String {
        format!("{}T", self.first_day())
    }

    /// Just after the last instant of `to`.
    fn end_ts(&self) -> String {
        format!("{}U", self.last_day())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_checked_and_empty_fields_unset() {
        let filter = Filter {
            from: Some("2026-12-01".into()),
            to: Some(String::new()),
            host: Some(String::new()),
            cwd: Some("/w".into()),
        }
        .validated()
        .unwrap();
        assert_eq!(filter.to, None);
        assert_eq!(filter.host, None);
        assert!(filter.start_ts().as_str() < "2026-12-01T00:00:00.000Z");
        assert!(filter.end_ts().as_str() > "9999-99-99T23:59:59.999Z");
        for bad in ["2026-13-01", "yesterday", "2026-12-01' OR 1=1", "2026-1-1"] {
            let err = Filter {
                from: Some(bad.into()),
                ..Filter::default()
            }
            .validated()
            .unwrap_err();
            assert_eq!(err.field, "from");
        }
    }
}
