//! Taking what may be secret out of URLs before they reach a log line or a message.

/// A URL with its user info (`user:password@`) replaced by `mask`.
pub fn mask_user_info(url: &str, mask: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://{mask}@{}", &url[..scheme_end], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// Database URLs may carry a password; logs get the scheme and location only.
pub fn redact_url(url: &str) -> String {
    mask_user_info(url, "***")
}

/// A URL as an operator may see it anywhere: without credentials, query and fragment.
/// Forwarding destinations are known by it.
pub fn url_label(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_info_is_masked_and_the_rest_kept() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/hooks"),
            "postgres://***@db:5432/hooks"
        );
        assert_eq!(redact_url("sqlite://data/x.db"), "sqlite://data/x.db");
        assert_eq!(mask_user_info("no scheme@host", "…"), "no scheme@host");
    }

    #[test]
    fn a_label_has_no_credentials_query_or_fragment() {
        let url = reqwest::Url::parse("https://u:p@app.example:8443/hooks/sinch?k=v#f").unwrap();
        assert_eq!(url_label(&url), "https://app.example:8443/hooks/sinch");
    }
}
