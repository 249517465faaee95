//! `openapi`: the HTTP interface's OpenAPI 3.1 document, as `docs/openapi.json` holds it.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

/// Prints the document (pretty, keys in a stable order, a final newline).
pub(crate) fn openapi() -> anyhow::Result<ExitCode> {
    let text = crate::http::openapi::pretty_json().context("cannot render the document")?;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .context("cannot write to standard output")?;
    Ok(ExitCode::SUCCESS)
}
