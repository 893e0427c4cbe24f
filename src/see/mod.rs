//! See: what the database holds, shown to a person — the dashboard
//! (`call_monitor serve`) and the same views as one self-contained HTML
//! file (`call_monitor report --html`).
//!
//! - [`views`]: the read models, one per page and `/api/` answer, built
//!   from the rollups so each answers in milliseconds at millions of calls.
//! - [`serve`]: the HTTP server (axum over a pool of read-only
//!   connections), its access rules (`guard`: loopback by default, `Host`
//!   checked, a token anywhere else) and live updates (`live`).
//! - [`write_report`]: every view rendered once into one HTML file.
//!
//! Nothing here writes to any database. The pages draw with DOM text
//! nodes only (every value is escaped by construction) and the database
//! holds no raw text to show.

mod assets;
mod guard;
mod live;
mod report;
mod server;
mod table;
pub mod views;

pub use guard::{ListenError, TOKEN_COOKIE};
pub use report::{write_report, ReportError, Reported};
pub use server::{serve, ServeConfig, ServeError};
pub use table::Table;
