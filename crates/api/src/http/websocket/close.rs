//! Every way `/graphql/ws` closes a socket, with its close code and reason: the codes of graphql-transport-ws where
//! it has one, the WebSocket ones (RFC 6455) otherwise. `docs/websocket.md` tells front-ends what to do on each.

/// Longest close reason a close frame carries (125 bytes of payload, 2 of them the code).
const MAX_REASON_BYTES: usize = 123;

/// Why the server closes a socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Close {
    /// 1001: the server is shutting down.
    GoingAway,
    /// 1009: a message larger than the HTTP body limit.
    TooBig,
    /// 1013: the token's issuer keys could not be fetched yet.
    TryAgainLater,
    /// 4400: a message the protocol does not have, or that does not parse.
    BadRequest(String),
    /// 4401: a message other than `connection_init` before the connection was acknowledged.
    Unauthorized,
    /// 4401: the session's token expired.
    TokenExpired,
    /// 4403: the token of `connection_init` was refused (missing, malformed, invalid or expired).
    Forbidden(String),
    /// 4403: the session's token is revoked.
    TokenRevoked,
    /// 4403: the grants the session was opened under no longer give it access.
    AccessLost,
    /// 4408: no `connection_init` within the initialisation timeout.
    InitTimeout,
    /// 4409: a `subscribe` with the id of a running subscription.
    DuplicateId(String),
    /// 4429: a second `connection_init`.
    TooManyInits,
    /// 4429: one subscription more than a socket may run at once.
    TooManySubscriptions,
    /// 4429: one socket more than an identity may hold open on this replica.
    TooManySockets,
    /// 4429: a `subscribe` over the identity's rate limit.
    RateLimited,
    /// A close decided by async-graphql that has no meaning of ours (its keep-alive timeout: 3008).
    Other(u16, String),
}

impl Close {
    /// The close code sent.
    pub(super) fn code(&self) -> u16 {
        match self {
            Self::GoingAway => 1001,
            Self::TooBig => 1009,
            Self::TryAgainLater => 1013,
            Self::BadRequest(_) => 4400,
            Self::Unauthorized | Self::TokenExpired => 4401,
            Self::Forbidden(_) | Self::TokenRevoked | Self::AccessLost => 4403,
            Self::InitTimeout => 4408,
            Self::DuplicateId(_) => 4409,
            Self::TooManyInits | Self::TooManySubscriptions | Self::TooManySockets | Self::RateLimited => 4429,
            Self::Other(code, _) => *code,
        }
    }

    /// The close reason sent: fixed words a client may match on, then detail for the 4400 and 4403 refusals; cut
    /// to fit a close frame.
    pub(super) fn reason(&self) -> String {
        let reason = match self {
            Self::GoingAway => "Going away".to_owned(),
            Self::TooBig => "Message too big".to_owned(),
            Self::TryAgainLater => "Try again later".to_owned(),
            Self::BadRequest(detail) => format!("Bad request: {detail}"),
            Self::Unauthorized => "Unauthorized".to_owned(),
            Self::TokenExpired => "Token expired".to_owned(),
            Self::Forbidden(detail) => format!("Forbidden: {detail}"),
            Self::TokenRevoked => "Token revoked".to_owned(),
            Self::AccessLost => "Forbidden".to_owned(),
            Self::InitTimeout => "Connection initialisation timeout".to_owned(),
            Self::DuplicateId(id) => format!("Subscriber for {id} already exists"),
            Self::TooManyInits => "Too many initialisation requests".to_owned(),
            Self::TooManySubscriptions => "Too many subscriptions".to_owned(),
            Self::TooManySockets => "Too many sockets".to_owned(),
            Self::RateLimited => "Rate limited".to_owned(),
            Self::Other(_, reason) => reason.clone(),
        };
        truncate(reason)
    }
}

/// `reason` cut to [`MAX_REASON_BYTES`] on a character boundary.
fn truncate(mut reason: String) -> String {
    if reason.len() > MAX_REASON_BYTES {
        let mut end = MAX_REASON_BYTES;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_reason_is_cut_to_fit_a_close_frame_on_a_character_boundary() {
        let long = Close::Forbidden("é".repeat(100));
        let reason = long.reason();
        assert!(reason.len() <= MAX_REASON_BYTES);
        assert!(reason.starts_with("Forbidden: é"));
        assert_eq!(Close::DuplicateId("1".into()).reason(), "Subscriber for 1 already exists");
    }

    #[test]
    fn each_limit_has_its_code() {
        assert_eq!(Close::TooBig.code(), 1009);
        assert_eq!(Close::InitTimeout.code(), 4408);
        assert_eq!(Close::Unauthorized.code(), 4401);
        assert_eq!(Close::TokenExpired.code(), 4401);
        assert_eq!(Close::TokenRevoked.code(), 4403);
        assert_eq!(Close::TooManySockets.code(), 4429);
        assert_eq!(Close::GoingAway.code(), 1001);
    }
}
