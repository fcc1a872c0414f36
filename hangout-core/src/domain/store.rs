//! The storage port: what the domain needs from a database, declared here so the dependency
//! points into the domain. `crate::store` implements it for MySQL and SQLite.
//!
//! Contract for every implementation:
//! - Each method that changes more than one row is one transaction: after an error nothing of it
//!   is visible.
//! - Methods taking an `owner` only ever see that user's rows, and methods taking a `caller`
//!   only the hangouts (and their members, memories, activities and invitations) the caller is
//!   a member of; anything else is treated exactly like a missing row. Methods without either
//!   act on what the domain has already authorized (see `domain::policy`).
//! - Uniqueness violations are reported as [`StoreError::Conflict`], never as `Backend`.
//! - Each change records, in its own transaction, the live-update events that
//!   `domain::event` lists for it, and only when it succeeds.

use std::future::Future;

use crate::domain::{
    activity::{Activity, HangoutCounts},
    event::EventStore,
    file_deletion::FileDeletionStore,
    hangout::{Hangout, HangoutListQuery, HangoutPatch},
    ids::{
        ActivityId, FileId, HangoutId, InvitationId, MemoryId, SessionFamilyId, SessionId, UserId,
    },
    invitation::{Invitation, InvitationState, NewInvitationLimits},
    membership::{Member, MemberListQuery, Role, Rsvp, RsvpCounts},
    memory::{Memory, MemoryListQuery},
    page::Cursor,
    session::SessionRecord,
    time::Timestamp,
    user::{Email, User, UserCredentials},
};

/// A storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A referenced row does not exist or belongs to another owner.
    #[error("row not found")]
    NotFound,
    /// A uniqueness rule was broken; the message names what was taken.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A [`Guard`] no longer held: the caller's role changed since the domain checked it.
    #[error("the caller's role changed")]
    Stale,
    /// A bound checked in the same transaction would be passed.
    #[error("limit reached: {0:?}")]
    Limit(Limit),
    /// The database could not be reached (down, or no connection free in time).
    #[error("database unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The database failed or returned something unreadable.
    #[error("database error")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A role check repeated inside a change's own transaction: the change is made only while
/// `user` still has one of `roles` in the hangout, else it fails with [`StoreError::Stale`].
/// The domain checks first (and words the refusal); this closes the window between its check
/// and the change, when a concurrent removal or demotion commits in between.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Guard {
    pub user: UserId,
    pub roles: Vec<Role>,
}

/// A bound the store checks atomically with the change it bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// Open invitations of one hangout.
    OpenInvitations,
    /// Invitations created by one user lately; the oldest of them counted was made at
    /// `oldest`, so one more is allowed once it leaves the window.
    RecentInvitations { oldest: Timestamp },
    /// Members of one hangout.
    Members,
}

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;

/// Rows fetched for one page: up to `size + 1` rows (the extra one tells that more follow) and
/// the count of the whole filtered list.
#[derive(Debug)]
pub struct PageRows<T> {
    pub rows: Vec<T>,
    pub total_count: u64,
}

/// A page request as the store sees it: position and how many rows to fetch (size + 1).
#[derive(Clone, Debug)]
pub struct KeysetQuery<K> {
    pub after: Option<Cursor<K>>,
    pub fetch: u32,
}

/// Persistence for hangout-core: one port per aggregate, implemented together.
pub trait Store:
    EventStore
    + FileDeletionStore
    + UserStore
    + SessionStore
    + HangoutStore
    + MemberStore
    + InvitationStore
    + ActivityStore
    + MemoryStore
{
}

impl<T> Store for T where
    T: EventStore
        + FileDeletionStore
        + UserStore
        + SessionStore
        + HangoutStore
        + MemberStore
        + InvitationStore
        + ActivityStore
        + MemoryStore
{
}

/// Users and their password hashes.
pub trait UserStore: Send + Sync + 'static {
    /// Inserts a user. `Conflict` when the email is taken.
    fn insert_user(
        &self,
        user: &User,
        password_hash: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// The user with this (normalised) email and their password hash.
    fn user_credentials(
        &self,
        email: &Email,
    ) -> impl Future<Output = StoreResult<Option<UserCredentials>>> + Send;

    fn set_password_hash(
        &self,
        user: UserId,
        password_hash: &str,
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    fn users_by_ids(&self, ids: &[UserId]) -> impl Future<Output = StoreResult<Vec<User>>> + Send;

    /// The users among `ids` who are `caller` or share a hangout with them.
    fn users_visible_to(
        &self,
        caller: UserId,
        ids: &[UserId],
    ) -> impl Future<Output = StoreResult<Vec<User>>> + Send;

    /// The user's email, `None` for an unknown user.
    fn email_of(&self, user: UserId) -> impl Future<Output = StoreResult<Option<Email>>> + Send;
}

/// Refresh-token records.
pub trait SessionStore: Send + Sync + 'static {
    fn insert_session(
        &self,
        session: &SessionRecord,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    fn session_by_token_hash(
        &self,
        token_hash: &str,
    ) -> impl Future<Output = StoreResult<Option<SessionRecord>>> + Send;

    /// Marks `old` rotated and inserts `new`, atomically. `false` (and no change) when `old` was
    /// already rotated or revoked, for instance by a concurrent rotation.
    fn rotate_session(
        &self,
        old: SessionId,
        new: &SessionRecord,
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Revokes every token of the session family and, when some were still live, records
    /// `SessionRevoked` for its user.
    fn revoke_session_family(
        &self,
        family: SessionFamilyId,
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<()>> + Send;
}

/// Hangouts and their activity links.
pub trait HangoutStore: Send + Sync + 'static {
    /// Inserts a hangout, its owner as its OWNER member and links to `activities`.
    /// `NotFound` when an activity is not the owner's.
    fn insert_hangout(
        &self,
        hangout: &Hangout,
        activities: &[ActivityId],
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Applies `patch`, returning the hangout as `caller` sees it. `NotFound` when the hangout
    /// is missing or an activity is not the hangout owner's.
    fn update_hangout(
        &self,
        caller: UserId,
        id: HangoutId,
        patch: &HangoutPatch,
        now: Timestamp,
        guard: &Guard,
    ) -> impl Future<Output = StoreResult<Hangout>> + Send;

    /// Deletes the hangout with its links, members, invitations and memory records; returns
    /// the memories' file ids. `NotFound` when the hangout is missing.
    fn delete_hangout(
        &self,
        id: HangoutId,
        guard: &Guard,
    ) -> impl Future<Output = StoreResult<Vec<FileId>>> + Send;

    fn hangouts_by_ids(
        &self,
        caller: UserId,
        ids: &[HangoutId],
    ) -> impl Future<Output = StoreResult<Vec<Hangout>>> + Send;

    fn list_hangouts(
        &self,
        caller: UserId,
        query: &HangoutListQuery,
    ) -> impl Future<Output = StoreResult<PageRows<Hangout>>> + Send;
}

/// Members of hangouts.
pub trait MemberStore: Send + Sync + 'static {
    /// `user`'s role in `hangout`; `None` when not a member (or no such hangout).
    fn role_of(
        &self,
        hangout: HangoutId,
        user: UserId,
    ) -> impl Future<Output = StoreResult<Option<Role>>> + Send;

    /// `user`'s role in each of `hangouts` they are a member of.
    fn roles_of(
        &self,
        hangouts: &[HangoutId],
        user: UserId,
    ) -> impl Future<Output = StoreResult<Vec<(HangoutId, Role)>>> + Send;

    /// One page per query, for the queries' hangouts the caller is a member of, by the index
    /// of the query, in the order asked.
    fn members_of_hangouts(
        &self,
        caller: UserId,
        queries: &[(HangoutId, MemberListQuery)],
    ) -> impl Future<Output = StoreResult<Vec<(usize, PageRows<Member>)>>> + Send;

    fn rsvp_counts(
        &self,
        caller: UserId,
        hangouts: &[HangoutId],
    ) -> impl Future<Output = StoreResult<Vec<(HangoutId, RsvpCounts)>>> + Send;

    /// The members among `users` of `hangout`, when the caller is a member; none otherwise.
    fn members_by_ids(
        &self,
        caller: UserId,
        hangout: HangoutId,
        users: &[UserId],
    ) -> impl Future<Output = StoreResult<Vec<Member>>> + Send;

    /// `NotFound` unless `user` is a member.
    fn set_rsvp(
        &self,
        hangout: HangoutId,
        user: UserId,
        rsvp: Rsvp,
    ) -> impl Future<Output = StoreResult<Member>> + Send;

    /// `NotFound` unless `user` is a member other than the OWNER. A member made a GUEST loses
    /// the open invitations they made.
    fn set_member_role(
        &self,
        hangout: HangoutId,
        user: UserId,
        role: Role,
        guard: &Guard,
    ) -> impl Future<Output = StoreResult<Member>> + Send;

    /// Removes `user` if they still have `role`, `NotFound` otherwise (a concurrent change),
    /// and revokes the open invitations they made. `removed`: they were removed rather than
    /// left, so no invitation made before now lets them back in.
    fn remove_member(
        &self,
        hangout: HangoutId,
        user: UserId,
        role: Role,
        removed: Option<Timestamp>,
        guard: &Guard,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Makes `to` the OWNER and `from` a CO_HOST, atomically, only while `from` is the OWNER
    /// and `to` a member (`NotFound` otherwise); returns the hangout as `from` sees it.
    fn transfer_ownership(
        &self,
        hangout: HangoutId,
        from: UserId,
        to: UserId,
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<Hangout>> + Send;
}

/// Invitations to hangouts.
pub trait InvitationStore: Send + Sync + 'static {
    /// Inserts an invitation unless a limit would be passed: `LimitReached` naming it.
    fn insert_invitation(
        &self,
        invitation: &Invitation,
        code_hash: Option<&str>,
        limits: &NewInvitationLimits,
        guard: &Guard,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    fn invitations_by_ids(
        &self,
        ids: &[InvitationId],
    ) -> impl Future<Output = StoreResult<Vec<Invitation>>> + Send;

    fn invitation_by_code_hash(
        &self,
        code_hash: &str,
    ) -> impl Future<Output = StoreResult<Option<Invitation>>> + Send;

    /// The open invitations of each hangout, newest first, by the index of the query.
    fn open_invitations_of_hangouts(
        &self,
        queries: &[(HangoutId, KeysetQuery<i64>)],
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<Vec<(usize, PageRows<Invitation>)>>> + Send;

    /// The open invitations addressed to `email`, newest first, but for hangouts `reader`
    /// already belongs to.
    fn open_invitations_for_email(
        &self,
        reader: UserId,
        email: &Email,
        query: &KeysetQuery<i64>,
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<PageRows<Invitation>>> + Send;

    /// Takes one use of the invitation if it is still open at `now` and adds `user` as a
    /// member with its role, atomically. `Ok(false)` (and no change) when it is no longer
    /// open, or `user` was removed from the hangout after it was made; `Conflict` when `user`
    /// is already a member; `Limit` when the hangout is full.
    fn accept_invitation(
        &self,
        invitation: &Invitation,
        user: UserId,
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Moves a PENDING invitation to `state`; `false` when it was no longer PENDING.
    fn close_invitation(
        &self,
        id: InvitationId,
        state: InvitationState,
        guard: Option<&Guard>,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
}

/// Activities.
pub trait ActivityStore: Send + Sync + 'static {
    /// `Conflict` when the owner has an activity with the same name key.
    fn insert_activity(&self, activity: &Activity) -> impl Future<Output = StoreResult<()>> + Send;

    /// `NotFound` when not the owner's, `Conflict` when the name is taken.
    fn rename_activity(
        &self,
        owner: UserId,
        id: ActivityId,
        name: &str,
        name_key: &str,
    ) -> impl Future<Output = StoreResult<Activity>> + Send;

    /// Deletes the activity and its hangout links. `NotFound` when not the owner's.
    fn delete_activity(
        &self,
        owner: UserId,
        id: ActivityId,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// The activities among `ids` the caller owns or sees on a hangout they are a member of,
    /// each counted over the hangouts the caller can see.
    fn activities_by_ids(
        &self,
        caller: UserId,
        ids: &[ActivityId],
    ) -> impl Future<Output = StoreResult<Vec<Activity>>> + Send;

    /// Ordered by name key, then id.
    fn list_activities(
        &self,
        owner: UserId,
        query: &KeysetQuery<String>,
    ) -> impl Future<Output = StoreResult<PageRows<Activity>>> + Send;

    /// For each of `hangouts` the caller is a member of, its activities ordered by name key,
    /// each with its count of hangouts the caller can see only when `counts` is
    /// [`HangoutCounts::Counted`].
    fn activities_of_hangouts(
        &self,
        caller: UserId,
        hangouts: &[HangoutId],
        counts: HangoutCounts,
    ) -> impl Future<Output = StoreResult<Vec<(HangoutId, Vec<Activity>)>>> + Send;

    /// The hangouts the caller can see carrying `activity`, newest first. `NotFound` when the
    /// caller can see the activity neither as its owner nor on a hangout.
    fn hangouts_of_activity(
        &self,
        caller: UserId,
        activity: ActivityId,
        query: &KeysetQuery<i64>,
    ) -> impl Future<Output = StoreResult<PageRows<Hangout>>> + Send;
}

/// Memory records. `caller`: a member of the memories' hangouts.
pub trait MemoryStore: Send + Sync + 'static {
    /// Inserts PENDING memories of one hangout. `NotFound` unless the caller is a member,
    /// `Conflict` when a file name is in use among the hangout's memories.
    fn insert_memories(
        &self,
        caller: UserId,
        memories: &[Memory],
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Records file ids. `NotFound` (and no change) unless every memory is one the caller
    /// uploaded to a hangout they are a member of.
    fn attach_memory_files(
        &self,
        caller: UserId,
        links: &[(MemoryId, FileId)],
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Marks the memories among `ids` that the caller uploaded UPLOADED and returns them.
    fn mark_memories_uploaded(
        &self,
        caller: UserId,
        ids: &[MemoryId],
    ) -> impl Future<Output = StoreResult<Vec<Memory>>> + Send;

    fn memories_by_ids(
        &self,
        caller: UserId,
        ids: &[MemoryId],
    ) -> impl Future<Output = StoreResult<Vec<Memory>>> + Send;

    /// One page of a hangout's memories. `NotFound` unless the caller is a member.
    fn list_memories(
        &self,
        caller: UserId,
        hangout: HangoutId,
        query: &MemoryListQuery,
    ) -> impl Future<Output = StoreResult<PageRows<Memory>>> + Send;

    /// The first page (no cursor) of each of `hangouts` the caller is a member of, all with the
    /// same query, in one round of statements; the others are left out.
    fn first_memories_of_hangouts(
        &self,
        caller: UserId,
        hangouts: &[HangoutId],
        query: &MemoryListQuery,
    ) -> impl Future<Output = StoreResult<Vec<(HangoutId, PageRows<Memory>)>>> + Send;

    /// Deletes the memories among `ids` (already authorized); returns the deleted ones with
    /// their file ids.
    fn delete_memories(
        &self,
        ids: &[MemoryId],
    ) -> impl Future<Output = StoreResult<Vec<(MemoryId, Option<FileId>)>>> + Send;

    /// Records `MemoryUpdated` for each memory among `files` that is UPLOADED and holds the file
    /// named with it (file-core's report that its processing ended); returns how many.
    fn record_memories_processed(
        &self,
        files: &[(MemoryId, FileId)],
    ) -> impl Future<Output = StoreResult<u32>> + Send;

    /// Deletes PENDING memories whose upload window ended before `before`, a bounded batch
    /// at a time; returns how many.
    fn delete_expired_pending_memories(
        &self,
        before: Timestamp,
    ) -> impl Future<Output = StoreResult<u64>> + Send;
}
