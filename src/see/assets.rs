//! The dashboard's files, embedded in the binary (it must work offline, with
//! no build step): our page, script and style, and uPlot 1.6.32 (MIT,
//! `assets/vendor/uplot/`, from the npm registry's `uplot` package; see
//! `assets/README.md`).

use axum::response::Html;

pub const INDEX: &str = include_str!("../../assets/index.html");
pub const APP_JS: &str = include_str!("../../assets/app.js");
pub const APP_CSS: &str = include_str!("../../assets/app.css");
pub const UPLOT_JS: &str = include_str!("../../assets/vendor/uplot/uPlot.iife.min.js");
pub const UPLOT_CSS: &str = include_str!("../../assets/vendor/uplot/uPlot.min.css");

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// The one HTML page; the script draws each view into it.
pub fn page() -> Html<&'static str> {
    Html(INDEX)
}

/// An embedded file by its URL name, with its content type.
pub fn by_name(name: &str) -> Option<(&'static str, &'static str)> {
    match name {
        "app.js" => Some((JS, APP_JS)),
        "app.css" => Some((CSS, APP_CSS)),
        "uPlot.iife.min.js" => Some((JS, UPLOT_JS)),
        "uPlot.min.css" => Some((CSS, UPLOT_CSS)),
        _ => None,
    }
}
