use thiserror::Error;

#[derive(Debug, Error)]
pub enum AuthError {
    #[error("a bearer token is required")]
    Missing,
    /// The token is not acceptable; the reason is safe to show the client.
    #[error("invalid token: {0}")]
    Invalid(&'static str),
    /// Valid token, but it names no usable subject.
    #[error("the token has no valid subject (sub) claim")]
    NoSubject,
    /// The issuer's signing keys could not be fetched.
    #[error("signing keys are unavailable: {0}")]
    KeysUnavailable(String),
}

impl From<jsonwebtoken::errors::Error> for AuthError {
    fn from(err: jsonwebtoken::errors::Error) -> Self {
        use jsonwebtoken::errors::ErrorKind::*;
        AuthError::Invalid(match err.kind() {
            ExpiredSignature => "token has expired",
            ImmatureSignature => "token is not valid yet (nbf)",
            InvalidIssuer => "wrong issuer",
            InvalidAudience => "wrong audience",
            InvalidSignature => "bad signature",
            InvalidAlgorithm | MissingAlgorithm | InvalidAlgorithmName => "algorithm not allowed",
            MissingRequiredClaim(_) => "a required claim (exp, iss, aud) is missing",
            InvalidClaimFormat(_) => "a claim has the wrong type",
            _ => "malformed token",
        })
    }
}
