//! Why something was refused or failed, as the stable code a client branches on (`extensions.reason` of a GraphQL
//! error) and the audit trail records (an event's `reason`, a rewrap failure's `reason`). The strings never change:
//! clients match on them and the audit chain's hashes cover them.

use crate::codes::stable_codes;

stable_codes! {
    /// A stable reason code. Validation reasons come with the input field they are about (`ValidationError`);
    /// refusals and failures are recorded on audit events.
    pub enum Reason {
        // A value given by a caller.
        /// A required value is empty (or only spaces).
        Empty = "EMPTY",
        /// Longer than the field allows.
        TooLong = "TOO_LONG",
        /// Contains a control character (a line break, a tab, ...).
        ControlCharacter = "CONTROL_CHARACTER",
        /// Contains characters the field does not allow.
        InvalidCharacters = "INVALID_CHARACTERS",
        /// A seller login shorter or longer than logins are.
        InvalidLength = "INVALID_LENGTH",
        /// An IBAN or BIC whose length is not the one its country or format has.
        WrongLength = "WRONG_LENGTH",
        /// An IBAN or BIC without the structure of one.
        InvalidFormat = "INVALID_FORMAT",
        /// An IBAN whose check digits do not match.
        BadChecksum = "BAD_CHECKSUM",
        /// An IBAN of a country that has no IBAN.
        UnknownCountry = "UNKNOWN_COUNTRY",
        /// A BIC of another country than the IBAN's.
        CountryMismatch = "COUNTRY_MISMATCH",
        /// A seller login given with the marketplace's `-api` suffix (the API login, not the seller's).
        ApiLoginGiven = "API_LOGIN_GIVEN",
        /// A number outside the range the field allows.
        OutOfRange = "OUT_OF_RANGE",
        /// A page cursor that is not one of this list.
        InvalidCursor = "INVALID_CURSOR",
        /// Not a valid id.
        InvalidId = "INVALID_ID",
        /// A payout move the review diagram does not have from the request's current status.
        InvalidTransition = "INVALID_TRANSITION",
        /// The marketplace rejected a credential (given, or stored and needed).
        MarketplaceRejected = "MARKETPLACE_REJECTED",
        /// Not an absolute URL of the kind the field takes (a webhook endpoint: `https://host/path`, no user info).
        InvalidUrl = "INVALID_URL",
        /// A plain `http://` webhook endpoint while only `https://` is allowed.
        NotHttps = "NOT_HTTPS",
        /// A webhook endpoint at an address that is refused (loopback, private, link-local, ...) unless allowed.
        AddressNotAllowed = "ADDRESS_NOT_ALLOWED",

        // Who the caller is and what it may do.
        /// No bearer token was given.
        MissingToken = "MISSING_TOKEN",
        /// The bearer token was refused (signature, issuer, audience, algorithm or lifetime).
        InvalidToken = "INVALID_TOKEN",
        /// The token's issuer publishes its keys (JWKS, discovery) and none could be fetched yet: try again later.
        IssuerKeysUnavailable = "ISSUER_KEYS_UNAVAILABLE",
        /// The token lacks the scope the act needs.
        MissingScope = "MISSING_SCOPE",
        /// The token does not reach that seller.
        SellerNotAllowed = "SELLER_NOT_ALLOWED",
        /// The seller account is deactivated: nothing is issued for it.
        SellerInactive = "SELLER_INACTIVE",
        /// Four eyes: the subject that submitted a payout change tried to review it.
        FourEyes = "FOUR_EYES",
        /// Someone other than the submitter tried to cancel a payout change.
        NotSubmitter = "NOT_SUBMITTER",
        /// An access grant that would match its creator's own identity (no self-escalation).
        SelfGrant = "SELF_GRANT",
        /// The token is revoked: its `jti`, or every token of its identity issued before a time (a token without
        /// `iat` while such a revocation applies).
        TokenRevoked = "TOKEN_REVOKED",
        /// The vault is frozen: no secret is handed out until it is unfrozen.
        Frozen = "FROZEN",
        /// Too many requests from the caller's identity or source address: refused before the token's signature or
        /// the query was looked at.
        RateLimited = "RATE_LIMITED",

        // An act that could not be done.
        /// A seller account with that login exists already.
        LoginTaken = "LOGIN_TAKEN",
        /// A ciphertext could not be opened (wrong key or altered data).
        DecryptFailed = "DECRYPT_FAILED",
        /// The marketplace could not be reached or answered with an error.
        UpstreamUnavailable = "UPSTREAM_UNAVAILABLE",
        /// The stored credential version was rejected by the marketplace before: it is not tried again. (Beside the
        /// marketplace client's own codes, in the upstream reason of a token request.)
        RejectedEarlier = "REJECTED_EARLIER",
        /// Another request's token fetch for the same seller did not finish in time. (An upstream reason too.)
        TokenFetchPending = "TOKEN_FETCH_PENDING",
        /// The seller has an open payout change request already.
        AlreadyOpen = "ALREADY_OPEN",
        /// A payout move on a version of the request that is no longer the current one.
        StaleVersion = "STALE_VERSION",

        // Keys and their rotation.
        /// A rotation job is running.
        JobRunning = "JOB_RUNNING",
        /// A keyring version still has ciphertexts under it.
        KeyInUse = "KEY_IN_USE",
        /// The active keyring version cannot be retired.
        KeyActive = "KEY_ACTIVE",
        /// The keyring version is retired already.
        AlreadyRetired = "ALREADY_RETIRED",
        /// A rewrap job ended with rows it could not rewrap.
        RowsFailed = "ROWS_FAILED",
        /// A row a rewrap job could not read.
        UnreadableRow = "UNREADABLE_ROW",
        /// A ciphertext under a keyring version the keyring does not have.
        UnknownKeyVersion = "UNKNOWN_KEY_VERSION",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_reason_has_its_own_string() {
        let strings: HashSet<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(strings.len(), Reason::ALL.len());
    }

    #[test]
    fn every_reason_reads_back_from_its_string() {
        for &reason in Reason::ALL {
            assert_eq!(reason.as_str().parse::<Reason>(), Ok(reason));
            assert_eq!(reason.to_string(), reason.as_str());
        }
    }

    #[test]
    fn reason_strings_are_shouty_snake_case() {
        for reason in Reason::ALL {
            let s = reason.as_str();
            assert!(s.chars().all(|c| c.is_ascii_uppercase() || c == '_'), "{s}");
        }
    }

    #[test]
    fn an_unknown_string_is_no_reason_and_the_error_does_not_repeat_it() {
        let err = "NOT_A_REASON".parse::<Reason>().unwrap_err();
        assert!(!err.to_string().contains("NOT_A_REASON"));
        assert_eq!("empty".parse::<Reason>().map_err(|e| e.kind), Err("Reason"));
    }
}
