//! The query API's bearer token. Without `API_TOKEN` the API does not exist (404), so a
//! receiver deployed without one exposes nothing but the webhook.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use super::{ApiError, AppState};

pub async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(expected) = &state.api_token else {
        return Err(ApiError::ApiDisabled);
    };
    let given = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    match given {
        Some(token) if tokens_match(token, expected.expose_secret()) => Ok(next.run(request).await),
        Some(_) => Err(ApiError::BadToken),
        None => Err(ApiError::MissingToken),
    }
}

/// The API's actions (replay, send, redrive) answer 403 when `API_ACTIONS=false`.
pub async fn require_actions(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if state.api_actions {
        Ok(next.run(request).await)
    } else {
        Err(ApiError::ActionsDisabled)
    }
}

/// Compares digests rather than the tokens, so neither the content nor the length of the
/// expected token leaks through timing.
fn tokens_match(given: &str, expected: &str) -> bool {
    let given = Sha256::digest(given.as_bytes());
    let expected = Sha256::digest(expected.as_bytes());
    given
        .iter()
        .zip(expected.iter())
        .fold(0u8, |diff, (a, b)| diff | (a ^ b))
        == 0
}

#[cfg(test)]
mod tests {
    use super::tokens_match;

    #[test]
    fn only_the_exact_token_matches() {
        assert!(tokens_match("s3cret-token", "s3cret-token"));
        assert!(!tokens_match("s3cret-token ", "s3cret-token"));
        assert!(!tokens_match("s3cret-toke", "s3cret-token"));
        assert!(!tokens_match("", "s3cret-token"));
    }
}
