//! The storage port: what the domain needs from a database, declared here so the dependency
//! points into the domain. `crate::store` implements it for MySQL and SQLite.
//!
//! Contract for every implementation:
//! - Each method that changes more than one row is one transaction: after an error nothing of it
//!   is visible.
//! - Methods taking an `owner` only ever see that user's rows; another user's row is treated
//!   exactly like a missing one.
//! - Uniqueness violations are reported as [`StoreError::Conflict`], never as `Backend`.

use std::future::Future;

use crate::domain::{
    activity::{Activity, HangoutCounts},
    hangout::{Hangout, HangoutListQuery, HangoutPatch},
    ids::{ActivityId, FileId, HangoutId, MemoryId, SessionFamilyId, SessionId, UserId},
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
    /// The database could not be reached (down, or no connection free in time).
    #[error("database unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The database failed or returned something unreadable.
    #[error("database error")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
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
pub trait Store: UserStore + SessionStore + HangoutStore + ActivityStore + MemoryStore {}

impl<T> Store for T where T: UserStore + SessionStore + HangoutStore + ActivityStore + MemoryStore {}

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

    /// Revokes every token of the session family.
    fn revoke_session_family(
        &self,
        family: SessionFamilyId,
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<()>> + Send;
}

/// Hangouts and their activity links.
pub trait HangoutStore: Send + Sync + 'static {
    /// Inserts a hangout with links to `activities`. `NotFound` when an activity is not the
    /// owner's.
    fn insert_hangout(
        &self,
        hangout: &Hangout,
        activities: &[ActivityId],
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Applies `patch`. `NotFound` when the hangout or an activity is not the owner's.
    fn update_hangout(
        &self,
        owner: UserId,
        id: HangoutId,
        patch: &HangoutPatch,
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<Hangout>> + Send;

    /// Deletes the hangout with its links and memory records; returns the memories' file ids.
    /// `NotFound` when the hangout is not the owner's.
    fn delete_hangout(
        &self,
        owner: UserId,
        id: HangoutId,
    ) -> impl Future<Output = StoreResult<Vec<FileId>>> + Send;

    fn hangouts_by_ids(
        &self,
        owner: UserId,
        ids: &[HangoutId],
    ) -> impl Future<Output = StoreResult<Vec<Hangout>>> + Send;

    fn list_hangouts(
        &self,
        owner: UserId,
        query: &HangoutListQuery,
    ) -> impl Future<Output = StoreResult<PageRows<Hangout>>> + Send;
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

    fn activities_by_ids(
        &self,
        owner: UserId,
        ids: &[ActivityId],
    ) -> impl Future<Output = StoreResult<Vec<Activity>>> + Send;

    /// Ordered by name key, then id.
    fn list_activities(
        &self,
        owner: UserId,
        query: &KeysetQuery<String>,
    ) -> impl Future<Output = StoreResult<PageRows<Activity>>> + Send;

    /// For each of the owner's hangouts among `hangouts`, its activities ordered by name key,
    /// each with its hangout count only when `counts` is [`HangoutCounts::Counted`].
    fn activities_of_hangouts(
        &self,
        owner: UserId,
        hangouts: &[HangoutId],
        counts: HangoutCounts,
    ) -> impl Future<Output = StoreResult<Vec<(HangoutId, Vec<Activity>)>>> + Send;

    /// The owner's hangouts carrying `activity`, newest first. `NotFound` when the activity is
    /// not the owner's.
    fn hangouts_of_activity(
        &self,
        owner: UserId,
        activity: ActivityId,
        query: &KeysetQuery<i64>,
    ) -> impl Future<Output = StoreResult<PageRows<Hangout>>> + Send;
}

/// Memory records.
pub trait MemoryStore: Send + Sync + 'static {
    /// Inserts PENDING memories of one hangout. `NotFound` when the hangout is not the owner's,
    /// `Conflict` when a file name is in use among the hangout's memories.
    fn insert_memories(
        &self,
        owner: UserId,
        memories: &[Memory],
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Records file ids. `NotFound` (and no change) when a memory is not the owner's.
    fn attach_memory_files(
        &self,
        owner: UserId,
        links: &[(MemoryId, FileId)],
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Marks the owner's memories among `ids` UPLOADED and returns them.
    fn mark_memories_uploaded(
        &self,
        owner: UserId,
        ids: &[MemoryId],
    ) -> impl Future<Output = StoreResult<Vec<Memory>>> + Send;

    fn memories_by_ids(
        &self,
        owner: UserId,
        ids: &[MemoryId],
    ) -> impl Future<Output = StoreResult<Vec<Memory>>> + Send;

    /// One page of a hangout's memories. `NotFound` when the hangout is not the owner's.
    fn list_memories(
        &self,
        owner: UserId,
        hangout: HangoutId,
        query: &MemoryListQuery,
    ) -> impl Future<Output = StoreResult<PageRows<Memory>>> + Send;

    /// The first page (no cursor) of each of the owner's hangouts among `hangouts`, all with the
    /// same query, in one round of statements. Hangouts that are not the owner's are left out.
    fn first_memories_of_hangouts(
        &self,
        owner: UserId,
        hangouts: &[HangoutId],
        query: &MemoryListQuery,
    ) -> impl Future<Output = StoreResult<Vec<(HangoutId, PageRows<Memory>)>>> + Send;

    /// Deletes the owner's memories among `ids`; returns them with their file ids.
    fn delete_memories(
        &self,
        owner: UserId,
        ids: &[MemoryId],
    ) -> impl Future<Output = StoreResult<Vec<(MemoryId, Option<FileId>)>>> + Send;

    /// Deletes PENDING memories whose upload window ended before `before`; returns how many.
    fn delete_expired_pending_memories(
        &self,
        before: Timestamp,
    ) -> impl Future<Output = StoreResult<u64>> + Send;
}
