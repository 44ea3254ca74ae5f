//! The four-eyes review of a payout change: the moves, who may make them, and [`decide`], the one rule book the
//! storage and API layers apply.

use std::fmt;

use super::status::PayoutStatus;
use crate::policy::{Denial, Scope};

/// Something done to a payout change request: an edge of the review diagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayoutMove {
    /// SUBMITTED → IN_REVIEW.
    StartReview,
    /// IN_REVIEW → DOCUMENTS_REQUESTED.
    RequestDocuments,
    /// DOCUMENTS_REQUESTED → IN_REVIEW.
    ResumeReview,
    /// IN_REVIEW → APPROVED.
    Approve,
    /// IN_REVIEW → REJECTED.
    Reject,
    /// Any open status → CANCELLED; by the submitter only.
    Cancel,
}

impl PayoutMove {
    /// Every move.
    pub const ALL: [Self; 6] =
        [Self::StartReview, Self::RequestDocuments, Self::ResumeReview, Self::Approve, Self::Reject, Self::Cancel];

    /// The stable name used in audit action names, e.g. `start_review`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StartReview => "start_review",
            Self::RequestDocuments => "request_documents",
            Self::ResumeReview => "resume_review",
            Self::Approve => "approve",
            Self::Reject => "reject",
            Self::Cancel => "cancel",
        }
    }

    /// The move with that stable name.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == raw)
    }

    /// The status the move leads to.
    pub fn target(self) -> PayoutStatus {
        match self {
            Self::StartReview | Self::ResumeReview => PayoutStatus::InReview,
            Self::RequestDocuments => PayoutStatus::DocumentsRequested,
            Self::Approve => PayoutStatus::Approved,
            Self::Reject => PayoutStatus::Rejected,
            Self::Cancel => PayoutStatus::Cancelled,
        }
    }

    /// Whether the diagram has this move leaving `from`.
    pub fn is_allowed_from(self, from: PayoutStatus) -> bool {
        use PayoutStatus::{DocumentsRequested, InReview, Submitted};
        match self {
            Self::StartReview => from == Submitted,
            Self::RequestDocuments | Self::Approve | Self::Reject => from == InReview,
            Self::ResumeReview => from == DocumentsRequested,
            Self::Cancel => from.is_open(),
        }
    }

    /// The scope a caller needs for the move: reviewers' moves need `kyc:review`, cancelling needs `kyc:submit`.
    pub fn scope(self) -> Scope {
        match self {
            Self::Cancel => Scope::KycSubmit,
            _ => Scope::KycReview,
        }
    }
}

impl fmt::Display for PayoutMove {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why [`decide`] refused a move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WorkflowError {
    /// The caller acted on a version that is no longer the current one (someone else moved first): a conflict.
    #[error("the request changed since it was read (it is now at version {current}); reload it and try again")]
    Stale {
        /// The request's current version.
        current: i32,
    },
    /// The diagram has no such move from the current status: bad input, naming the current status.
    #[error("the request is {from}; {mv} is not possible from there")]
    Illegal {
        /// The request's current status.
        from: PayoutStatus,
        /// The refused move.
        mv: PayoutMove,
    },
    /// Four eyes: whoever submitted a change cannot review it. Forbidden.
    #[error("the subject that submitted a payout change cannot review it")]
    SubmitterCannotReview,
    /// Only the submitter may withdraw a change. Forbidden.
    #[error("only the subject that submitted a payout change can cancel it")]
    OnlySubmitterCancels,
}

impl WorkflowError {
    /// The policy denial this error is, for the refusals that are about who the caller is.
    pub fn denial(self) -> Option<Denial> {
        match self {
            Self::SubmitterCannotReview => Some(Denial::SubmitterCannotReview),
            Self::OnlySubmitterCancels => Some(Denial::NotSubmitter),
            Self::Stale { .. } | Self::Illegal { .. } => None,
        }
    }
}

/// A request as the rules see it: where it stands and who submitted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Review<'a> {
    pub status: PayoutStatus,
    /// The request's current version.
    pub version: i32,
    /// The subject that submitted the change.
    pub submitted_by: &'a str,
}

/// A move someone asks for: which one, by whom, and the version of the request they read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MoveRequest<'a> {
    pub mv: PayoutMove,
    /// The subject asking.
    pub actor: &'a str,
    /// The version the actor believes the request is at.
    pub expected_version: i32,
}

/// The one rule book: whether `request` may be applied to the request under `review`; on success, the status it
/// moves to.
///
/// The version is checked first, so of two racing reviewers the loser always gets [`WorkflowError::Stale`], then
/// the diagram, then who may do it.
pub fn decide(review: Review<'_>, request: MoveRequest<'_>) -> Result<PayoutStatus, WorkflowError> {
    let MoveRequest { mv, actor, expected_version } = request;
    if expected_version != review.version {
        return Err(WorkflowError::Stale { current: review.version });
    }
    if !mv.is_allowed_from(review.status) {
        return Err(WorkflowError::Illegal { from: review.status, mv });
    }
    let by_submitter = actor == review.submitted_by;
    match (mv, by_submitter) {
        (PayoutMove::Cancel, false) => Err(WorkflowError::OnlySubmitterCancels),
        (PayoutMove::Cancel, true) => Ok(mv.target()),
        (_, true) => Err(WorkflowError::SubmitterCannotReview),
        (_, false) => Ok(mv.target()),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::payout::status::KycDocument;

    use PayoutMove::{Approve, Cancel, Reject, RequestDocuments, ResumeReview, StartReview};
    use PayoutStatus::{Approved, Cancelled, DocumentsRequested, InReview, Rejected, Submitted};

    /// The diagram, written out independently of the implementation.
    const EDGES: [(PayoutStatus, PayoutMove, PayoutStatus); 8] = [
        (Submitted, StartReview, InReview),
        (InReview, RequestDocuments, DocumentsRequested),
        (DocumentsRequested, ResumeReview, InReview),
        (InReview, Approve, Approved),
        (InReview, Reject, Rejected),
        (Submitted, Cancel, Cancelled),
        (InReview, Cancel, Cancelled),
        (DocumentsRequested, Cancel, Cancelled),
    ];

    const SUBMITTER: &str = "submitter";
    const ACTORS: [&str; 3] = [SUBMITTER, "reviewer1", "reviewer2"];

    /// A request submitted by [`SUBMITTER`], now in `status` at `version`.
    fn submitted(status: PayoutStatus, version: i32) -> Review<'static> {
        Review { status, version, submitted_by: SUBMITTER }
    }

    /// `actor` asking for `mv` on the request as they read it, at `read_version`.
    fn asks(actor: &str, mv: PayoutMove, read_version: i32) -> MoveRequest<'_> {
        MoveRequest { mv, actor, expected_version: read_version }
    }

    fn edge(from: PayoutStatus, mv: PayoutMove) -> Option<PayoutStatus> {
        EDGES.iter().find(|(f, m, _)| *f == from && *m == mv).map(|(_, _, to)| *to)
    }

    #[test]
    fn statuses_documents_and_moves_round_trip_through_their_names() {
        for s in PayoutStatus::ALL {
            assert_eq!(PayoutStatus::parse(s.as_str()), Some(s));
        }
        for d in KycDocument::ALL {
            assert_eq!(KycDocument::parse(d.as_str()), Some(d));
        }
        for m in PayoutMove::ALL {
            assert_eq!(PayoutMove::parse(m.as_str()), Some(m));
        }
        assert_eq!(PayoutStatus::parse("approved"), None);
    }

    #[test]
    fn only_submitted_in_review_and_documents_requested_are_open() {
        let open: Vec<_> = PayoutStatus::ALL.into_iter().filter(|s| s.is_open()).collect();
        assert_eq!(open, [Submitted, InReview, DocumentsRequested]);
    }

    #[test]
    fn cancelling_needs_the_submit_scope_and_every_other_move_the_review_scope() {
        for m in PayoutMove::ALL {
            assert_eq!(m.scope(), if m == Cancel { Scope::KycSubmit } else { Scope::KycReview });
        }
    }

    #[test]
    fn every_edge_of_the_diagram_is_allowed_to_the_right_actor() {
        for (from, mv, to) in EDGES {
            let actor = if mv == Cancel { SUBMITTER } else { "reviewer1" };
            assert_eq!(decide(submitted(from, 3), asks(actor, mv, 3)), Ok(to), "{from} -{mv}->");
        }
    }

    #[test]
    fn every_move_outside_the_diagram_is_illegal() {
        for from in PayoutStatus::ALL {
            for mv in PayoutMove::ALL {
                if edge(from, mv).is_none() {
                    for actor in ACTORS {
                        assert_eq!(
                            decide(submitted(from, 3), asks(actor, mv, 3)),
                            Err(WorkflowError::Illegal { from, mv }),
                            "{from} -{mv}-> by {actor}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn nothing_leaves_a_decided_request() {
        for from in [Approved, Rejected, Cancelled] {
            assert!(PayoutMove::ALL.into_iter().all(|mv| !mv.is_allowed_from(from)));
        }
    }

    #[test]
    fn the_submitter_cannot_review_their_own_change() {
        for (from, mv, _) in EDGES.into_iter().filter(|(_, mv, _)| *mv != Cancel) {
            assert_eq!(decide(submitted(from, 1), asks(SUBMITTER, mv, 1)), Err(WorkflowError::SubmitterCannotReview));
        }
    }

    #[test]
    fn only_the_submitter_can_cancel() {
        for from in [Submitted, InReview, DocumentsRequested] {
            assert_eq!(
                decide(submitted(from, 1), asks("reviewer1", Cancel, 1)),
                Err(WorkflowError::OnlySubmitterCancels)
            );
        }
    }

    #[test]
    fn a_stale_version_loses_before_anything_else_is_checked() {
        assert_eq!(
            decide(submitted(InReview, 4), asks("reviewer2", Approve, 3)),
            Err(WorkflowError::Stale { current: 4 })
        );
        // Even an illegal move by the wrong actor is reported as stale, so a racing loser learns to reload.
        assert_eq!(
            decide(submitted(Approved, 4), asks(SUBMITTER, Approve, 3)),
            Err(WorkflowError::Stale { current: 4 })
        );
    }

    #[test]
    fn workflow_errors_read_as_sentences_and_map_to_denials() {
        let illegal = WorkflowError::Illegal { from: Approved, mv: Approve };
        assert_eq!(illegal.to_string(), "the request is APPROVED; approve is not possible from there");
        assert_eq!(illegal.denial(), None);
        assert_eq!(WorkflowError::SubmitterCannotReview.denial(), Some(Denial::SubmitterCannotReview));
        assert_eq!(WorkflowError::OnlySubmitterCancels.denial(), Some(Denial::NotSubmitter));
        assert_eq!(WorkflowError::SubmitterCannotReview.to_string(), Denial::SubmitterCannotReview.message());
    }

    /// One attempt: a move, an actor, and how far the caller's version is from the current one (0 = fresh).
    fn attempt() -> impl Strategy<Value = (PayoutMove, &'static str, i32)> {
        (
            prop::sample::select(PayoutMove::ALL.to_vec()),
            prop::sample::select(ACTORS.to_vec()),
            prop_oneof![4 => Just(0), 1 => Just(-1), 1 => Just(-3), 1 => Just(1)],
        )
    }

    proptest! {
        #[test]
        fn random_review_sequences_only_ever_follow_the_diagram(attempts in prop::collection::vec(attempt(), 0..40)) {
            let mut status = Submitted;
            let mut version = 1;
            let mut active_account = "old";
            let mut decisions = 0;
            for (mv, actor, offset) in attempts {
                let (before_status, before_version, before_account) = (status, version, active_account);
                let result = decide(submitted(status, version), asks(actor, mv, version + offset));
                match result {
                    Ok(next) => {
                        prop_assert_eq!(offset, 0, "a stale version never succeeds");
                        prop_assert_eq!(edge(status, mv), Some(next), "every success is an edge of the diagram");
                        prop_assert_eq!(decisions, 0, "nothing succeeds after a decision");
                        prop_assert!(actor != SUBMITTER || mv == Cancel, "the submitter never reviews");
                        status = next;
                        version += 1;
                        if next == Approved {
                            active_account = "new";
                        }
                        if !next.is_open() {
                            decisions += 1;
                        }
                    }
                    Err(err) => {
                        // And every refusal is the right one: nothing the diagram allows is refused.
                        let expected = if offset != 0 {
                            WorkflowError::Stale { current: version }
                        } else if edge(status, mv).is_none() {
                            WorkflowError::Illegal { from: status, mv }
                        } else if mv == Cancel {
                            WorkflowError::OnlySubmitterCancels
                        } else {
                            WorkflowError::SubmitterCannotReview
                        };
                        prop_assert_eq!(err, expected);
                        prop_assert!(offset != 0 || edge(status, mv).is_none() || (actor == SUBMITTER) != (mv == Cancel));
                    }
                }
                prop_assert!(PayoutStatus::ALL.contains(&status));
                prop_assert_eq!(version - before_version, i32::from(result.is_ok()));
                if active_account != before_account {
                    prop_assert_eq!((before_status, mv), (InReview, Approve));
                }
                prop_assert!(decisions <= 1);
            }
        }
    }
}
