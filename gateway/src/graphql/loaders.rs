//! What the per-request batch loader loads: one [`BackendLoader`] per request, bound to the
//! caller's identity, never shared between requests or users, with one `Loader` impl per key
//! type. Each key type batches into one backend call per resolver level (see
//! [`super::batch`]), which is what keeps a page of hangouts with owners, activities, memories
//! and download URLs at a fixed number of calls.

use std::{collections::HashMap, future::Future, sync::Arc};

use async_graphql::{Lookahead, dataloader::Loader};
use proto::{file::v1 as file_pb, hangout::v1 as pb};
use tracing::Instrument as _;

use crate::{
    backend::{BackendError, Backends, CallContext},
    graphql::{
        activity::Activity,
        connection::{OrderDirection, PageArgs},
        error::ApiResult,
        hangout::{self, Hangout, HangoutConnection},
        membership::{
            self, HangoutMemberConnection, Invitation, InvitationConnection, RsvpCounts, RsvpStatus,
        },
        memory::{
            self, FileUrls, FilesUnavailable, Memory, MemoryConnection, MemoryOrder, MemoryStatus,
            PageFiles,
        },
        user::User,
    },
};

/// A user by id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UserKey(pub String);
/// A user by an id a client chose (`node`): found only when the caller may look them up.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct VisibleUserKey(pub String);
/// A hangout by id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HangoutKey(pub String);
/// An invitation by id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct InvitationKey(pub String);
/// The RSVP counts of a hangout.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RsvpCountsKey(pub String);

/// One page of a hangout's members.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MembersPageKey {
    hangout_id: String,
    page: PageArgs,
    /// Sorted, each once: the same filter written twice is one key.
    rsvp: Vec<RsvpStatus>,
}

impl MembersPageKey {
    /// The key of the `members` field with these arguments: the one way the key is made.
    ///
    /// # Errors
    /// BAD_USER_INPUT for a `first` out of range.
    pub fn new(
        hangout_id: String,
        first: Option<i32>,
        after: Option<String>,
        rsvp: Option<Vec<RsvpStatus>>,
    ) -> ApiResult<Self> {
        let mut rsvp = rsvp.unwrap_or_default();
        rsvp.sort_unstable();
        rsvp.dedup();
        Ok(Self {
            hangout_id,
            page: PageArgs::new(first, after)?,
            rsvp,
        })
    }
}

/// One page of a hangout's open invitations.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct InvitationsPageKey {
    hangout_id: String,
    page: PageArgs,
}

impl InvitationsPageKey {
    /// The key of the `invitations` field with these arguments.
    ///
    /// # Errors
    /// BAD_USER_INPUT for a `first` out of range.
    pub fn new(hangout_id: String, first: Option<i32>, after: Option<String>) -> ApiResult<Self> {
        Ok(Self {
            hangout_id,
            page: PageArgs::new(first, after)?,
        })
    }
}
/// An activity by id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ActivityKey(pub String);
/// A memory by id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MemoryKey(pub String);
/// The activities of a hangout.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ActivitiesOfHangoutKey {
    hangout_id: String,
    /// Also count each activity's hangouts: only when the selection shows `hangoutCount`,
    /// since the count costs hangout-core more than reading the activities.
    hangout_counts: bool,
}

impl ActivitiesOfHangoutKey {
    /// The key of the `activities` field of hangout `hangout_id` whose selection is
    /// `selection`: the one way the key is made (see [`MemoriesPageKey::new`]).
    #[must_use]
    pub fn new(hangout_id: String, selection: &Lookahead<'_>) -> Self {
        Self {
            hangout_id,
            hangout_counts: selection.field("hangoutCount").exists(),
        }
    }

    /// The same key for another hangout: what a key made with an empty hangout id (a
    /// template) becomes for each hangout of a page.
    #[must_use]
    pub fn for_hangout(&self, hangout_id: String) -> Self {
        Self {
            hangout_id,
            ..self.clone()
        }
    }

    /// Whether the activities' hangout counts are asked for.
    #[must_use]
    pub fn counts_hangouts(&self) -> bool {
        self.hangout_counts
    }
}
/// A file-core file by id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FileKey(pub String);

/// One page of a hangout's memories.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MemoriesPageKey {
    hangout_id: String,
    page: PageArgs,
    status: MemoryStatus,
    direction: OrderDirection,
    /// Also fetch the memories' files (download URLs, processing, renditions) in the same batch. Doing it here rather
    /// than per memory keeps the number of calls fixed: per-memory loads would start one level
    /// deeper, after the pages arrive, where a batch window can split under load.
    with_files: bool,
}

impl MemoriesPageKey {
    /// The key of the `memories` field of hangout `hangout_id` with these arguments, whose
    /// selection is `selection`: the one way the key is made, so that a page loaded ahead of
    /// the resolver (see [`super::page_includes`]) is found under the key the resolver asks for.
    ///
    /// # Errors
    /// BAD_USER_INPUT for a `first` out of range.
    pub fn new(
        hangout_id: String,
        first: Option<i32>,
        after: Option<String>,
        status: Option<MemoryStatus>,
        order_by: Option<MemoryOrder>,
        selection: &Lookahead<'_>,
    ) -> ApiResult<Self> {
        let wants_file = |memory: Lookahead<'_>| {
            memory::FILE_FIELDS
                .iter()
                .any(|field| memory.field(field).exists())
        };
        Ok(Self {
            hangout_id,
            page: PageArgs::new(first, after)?,
            status: status.unwrap_or(MemoryStatus::Uploaded),
            direction: order_by.map_or(OrderDirection::Desc, |order| order.direction),
            with_files: wants_file(selection.field("nodes"))
                || wants_file(selection.field("edges").field("node")),
        })
    }

    /// The same key for another hangout (see [`ActivitiesOfHangoutKey::for_hangout`]).
    #[must_use]
    pub fn for_hangout(&self, hangout_id: String) -> Self {
        Self {
            hangout_id,
            ..self.clone()
        }
    }

    /// Whether the memories' files are fetched with the page.
    #[must_use]
    pub fn with_files(&self) -> bool {
        self.with_files
    }

    /// Whether it asks for a first page (no cursor).
    #[must_use]
    pub fn is_first_page(&self) -> bool {
        self.page.after.is_empty()
    }

    /// Whether `other` asks for pages of the same shape: size, status and order.
    #[must_use]
    pub fn same_shape(&self, other: &Self) -> bool {
        self.page == other.page && self.status == other.status && self.direction == other.direction
    }

    /// The page's shape, as `ListHangouts`' include asks for it.
    pub(super) fn page_options(&self) -> pb::MemoriesPageOptions {
        pb::MemoriesPageOptions {
            page: Some(self.page.to_proto()),
            status: self.status.to_proto() as i32,
            direction: self.direction.to_proto() as i32,
        }
    }
}

/// One page of an activity's hangouts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HangoutsOfActivityKey {
    activity_id: String,
    page: PageArgs,
}

impl HangoutsOfActivityKey {
    /// The key of the `hangouts` field of activity `activity_id` with these arguments.
    ///
    /// # Errors
    /// BAD_USER_INPUT for a `first` out of range.
    pub fn new(activity_id: String, first: Option<i32>, after: Option<String>) -> ApiResult<Self> {
        Ok(Self {
            activity_id,
            page: PageArgs::new(first, after)?,
        })
    }
}

/// Loads through the backends on behalf of one caller.
pub struct BackendLoader {
    backends: Backends,
    call: CallContext,
    /// The renditions every file load signs (the operation's `imageUrl` sizes).
    file_urls: FileUrls,
    /// Noted when a page of memories is answered without its files.
    files_unavailable: FilesUnavailable,
}

impl BackendLoader {
    #[must_use]
    pub fn new(
        backends: Backends,
        call: CallContext,
        file_urls: FileUrls,
        files_unavailable: FilesUnavailable,
    ) -> Self {
        Self {
            backends,
            call,
            file_urls,
            files_unavailable,
        }
    }

    /// The span of one batch load, after recording its size.
    fn batch(&self, loader: &'static str, keys: usize) -> tracing::Span {
        self.backends.metrics().batch_loaded(loader, keys);
        tracing::info_span!(
            "dataloader.load",
            otel.name = %format_args!("load {loader}"),
            loader,
            keys,
        )
    }
}

fn ids<'a>(keys: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    keys.into_iter().cloned().collect()
}

impl From<super::batch::BatchBroken> for BackendError {
    /// A broken batch is the gateway's own fault, already logged by `batch`.
    fn from(_: super::batch::BatchBroken) -> Self {
        Self::Internal
    }
}

/// The loader of values by id: one `Get…` call for the batch, each value keyed by its own id
/// (a value the backend leaves out, unknown or not visible, is not found).
macro_rules! by_id_loader {
    ($key:ident => $value:ident, $batch:literal,
     $rpc:ident($request:ident { $($field:ident: $field_value:expr),* }) . $list:ident) => {
        impl Loader<$key> for BackendLoader {
            type Value = $value;
            type Error = BackendError;

            fn load(
                &self,
                keys: &[$key],
            ) -> impl Future<Output = Result<HashMap<$key, $value>, BackendError>> + Send {
                let span = self.batch($batch, keys.len());
                async move {
                    let request = pb::$request {
                        ids: ids(keys.iter().map(|key| &key.0)),
                        $($field: $field_value,)*
                    };
                    let response = self.backends.hangout.$rpc(&self.call, request).await?;
                    Ok(response
                        .$list
                        .into_iter()
                        .map(|item| ($key(item.id.clone()), $value::from(item)))
                        .collect())
                }
                .instrument(span)
            }
        }
    };
}

by_id_loader!(UserKey => User, "users", get_users(GetUsersRequest { visible_only: false }).users);
by_id_loader!(
    VisibleUserKey => User, "visible_users",
    get_users(GetUsersRequest { visible_only: true }).users
);
by_id_loader!(HangoutKey => Hangout, "hangouts", get_hangouts(GetHangoutsRequest {}).hangouts);
by_id_loader!(
    ActivityKey => Activity, "activities",
    get_activities(GetActivitiesRequest {}).activities
);
by_id_loader!(MemoryKey => Memory, "memories", get_memories(GetMemoriesRequest {}).memories);
by_id_loader!(
    InvitationKey => Invitation, "invitations",
    get_invitations(GetInvitationsRequest {}).invitations
);

impl Loader<RsvpCountsKey> for BackendLoader {
    type Value = RsvpCounts;
    type Error = BackendError;

    fn load(
        &self,
        keys: &[RsvpCountsKey],
    ) -> impl Future<Output = Result<HashMap<RsvpCountsKey, RsvpCounts>, BackendError>> + Send {
        let span = self.batch("rsvp_counts", keys.len());
        async move {
            let request = pb::GetRsvpCountsRequest {
                hangout_ids: ids(keys.iter().map(|key| &key.0)),
            };
            let response = self
                .backends
                .hangout
                .get_rsvp_counts(&self.call, request)
                .await?;
            Ok(response
                .counts
                .iter()
                .map(|counts| (RsvpCountsKey(counts.hangout_id.clone()), counts.into()))
                .collect())
        }
        .instrument(span)
    }
}

/// A key for one page of one hangout's list (members, invitations).
trait HangoutPageKey: Clone + Eq + std::hash::Hash {
    fn hangout_id(&self) -> &str;
    fn page(&self) -> &PageArgs;
}

impl HangoutPageKey for MembersPageKey {
    fn hangout_id(&self) -> &str {
        &self.hangout_id
    }

    fn page(&self) -> &PageArgs {
        &self.page
    }
}

impl HangoutPageKey for InvitationsPageKey {
    fn hangout_id(&self) -> &str {
        &self.hangout_id
    }

    fn page(&self) -> &PageArgs {
        &self.page
    }
}

/// Pairs each key with its page and converts it: the backend answers in the order asked, one
/// page per visible hangout, so the pages of one hangout are matched to its keys in order.
fn match_pages<K: HangoutPageKey, P, V>(
    keys: &[K],
    pages: Vec<P>,
    hangout_of_page: impl Fn(&P) -> &str,
    convert: impl Fn(P, bool) -> V,
) -> HashMap<K, V> {
    let mut by_hangout: HashMap<String, std::collections::VecDeque<P>> = HashMap::new();
    for page in pages {
        by_hangout
            .entry(hangout_of_page(&page).to_owned())
            .or_default()
            .push_back(page);
    }
    keys.iter()
        .filter_map(|key| {
            let page = by_hangout.get_mut(key.hangout_id())?.pop_front()?;
            let had_after = !key.page().after.is_empty();
            Some((key.clone(), convert(page, had_after)))
        })
        .collect()
}

impl Loader<MembersPageKey> for BackendLoader {
    type Value = HangoutMemberConnection;
    type Error = BackendError;

    fn load(
        &self,
        keys: &[MembersPageKey],
    ) -> impl Future<Output = Result<HashMap<MembersPageKey, HangoutMemberConnection>, BackendError>>
    + Send {
        let span = self.batch("member_pages", keys.len());
        async move {
            let request = pb::ListMembersOfHangoutsRequest {
                pages: keys
                    .iter()
                    .map(|key| pb::MembersPageRequest {
                        hangout_id: key.hangout_id.clone(),
                        page: Some(key.page.to_proto()),
                        rsvp_in: key.rsvp.iter().map(|rsvp| rsvp.to_proto()).collect(),
                    })
                    .collect(),
            };
            let response = self
                .backends
                .hangout
                .list_members_of_hangouts(&self.call, request)
                .await?;
            Ok(match_pages(
                keys,
                response.pages,
                |page| &page.hangout_id,
                membership::member_connection,
            ))
        }
        .instrument(span)
    }
}

impl Loader<InvitationsPageKey> for BackendLoader {
    type Value = InvitationConnection;
    type Error = BackendError;

    fn load(
        &self,
        keys: &[InvitationsPageKey],
    ) -> impl Future<
        Output = Result<HashMap<InvitationsPageKey, InvitationConnection>, BackendError>,
    > + Send {
        let span = self.batch("invitation_pages", keys.len());
        async move {
            let request = pb::ListInvitationsOfHangoutsRequest {
                pages: keys
                    .iter()
                    .map(|key| pb::InvitationsPageRequest {
                        hangout_id: key.hangout_id.clone(),
                        page: Some(key.page.to_proto()),
                    })
                    .collect(),
            };
            let response = self
                .backends
                .hangout
                .list_invitations_of_hangouts(&self.call, request)
                .await?;
            Ok(match_pages(
                keys,
                response.pages,
                |page| &page.hangout_id,
                membership::invitation_connection,
            ))
        }
        .instrument(span)
    }
}

impl Loader<ActivitiesOfHangoutKey> for BackendLoader {
    type Value = Vec<Activity>;
    type Error = BackendError;

    fn load(
        &self,
        keys: &[ActivitiesOfHangoutKey],
    ) -> impl Future<Output = Result<HashMap<ActivitiesOfHangoutKey, Vec<Activity>>, BackendError>> + Send
    {
        let span = self.batch("activities_of_hangouts", keys.len());
        async move {
            // One call for the batch, counted when any key asks for counts: a counted list
            // also answers a key without them.
            let mut hangout_ids = ids(keys.iter().map(|key| &key.hangout_id));
            hangout_ids.sort_unstable();
            hangout_ids.dedup();
            let request = pb::ListActivitiesOfHangoutsRequest {
                hangout_ids,
                without_hangout_counts: !keys.iter().any(|key| key.hangout_counts),
            };
            let response = self
                .backends
                .hangout
                .list_activities_of_hangouts(&self.call, request)
                .await?;
            let mut lists: HashMap<String, Vec<Activity>> = response
                .hangouts
                .into_iter()
                .map(|entry| {
                    let activities = entry.activities.into_iter().map(Activity::from).collect();
                    (entry.hangout_id, activities)
                })
                .collect();
            let mut loaded = HashMap::with_capacity(keys.len());
            for (index, key) in keys.iter().enumerate() {
                let later = &keys[index + 1..];
                let list = if later.iter().any(|other| other.hangout_id == key.hangout_id) {
                    lists.get(&key.hangout_id).cloned()
                } else {
                    lists.remove(&key.hangout_id)
                };
                if let Some(list) = list {
                    loaded.insert(key.clone(), list);
                }
            }
            Ok(loaded)
        }
        .instrument(span)
    }
}

impl Loader<FileKey> for BackendLoader {
    type Value = file_pb::File;
    type Error = BackendError;

    fn load(
        &self,
        keys: &[FileKey],
    ) -> impl Future<Output = Result<HashMap<FileKey, file_pb::File>, BackendError>> + Send {
        let span = self.batch("files", keys.len());
        async move {
            let files = self
                .backends
                .file
                .get_files_by_ids(
                    &self.call,
                    ids(keys.iter().map(|key| &key.0)),
                    self.file_urls,
                )
                .await?;
            Ok(files
                .into_iter()
                .map(|file| (FileKey(file.id.clone()), file))
                .collect())
        }
        .instrument(span)
    }
}

impl Loader<MemoriesPageKey> for BackendLoader {
    type Value = MemoryConnection;
    type Error = BackendError;

    fn load(
        &self,
        keys: &[MemoriesPageKey],
    ) -> impl Future<Output = Result<HashMap<MemoriesPageKey, MemoryConnection>, BackendError>> + Send
    {
        let span = self.batch("memory_pages", keys.len());
        async move {
            // Keys that differ only in `with_files` ask for the same page, and are asked for it
            // once: the backend answers each hangout once when all pages have one shape.
            let mut shapes: Vec<&MemoriesPageKey> = Vec::new();
            let mut shape_index = HashMap::new();
            let shape_of: Vec<usize> = keys
                .iter()
                .map(|key| {
                    let page = (&key.hangout_id, &key.page, key.status, key.direction);
                    *shape_index.entry(page).or_insert_with(|| {
                        shapes.push(key);
                        shapes.len() - 1
                    })
                })
                .collect();
            let request = pb::ListMemoriesOfHangoutsRequest {
                pages: shapes
                    .iter()
                    .map(|key| pb::HangoutMemoriesPageRequest {
                        hangout_id: key.hangout_id.clone(),
                        page: Some(key.page.to_proto()),
                        status: key.status.to_proto() as i32,
                        direction: key.direction.to_proto() as i32,
                    })
                    .collect(),
            };
            let response = self
                .backends
                .hangout
                .list_memories_of_hangouts(&self.call, request)
                .await?;
            // Several pages may be of the same hangout; answers come back in request order, one
            // per visible hangout, so match them up by hangout id in order.
            let mut pages: HashMap<String, Vec<pb::HangoutMemoriesPage>> = HashMap::new();
            for page in response.pages.into_iter().rev() {
                pages.entry(page.hangout_id.clone()).or_default().push(page);
            }
            let mut answers: Vec<Option<pb::HangoutMemoriesPage>> = shapes
                .iter()
                .map(|shape| pages.get_mut(&shape.hangout_id).and_then(Vec::pop))
                .collect();
            let mut wants_files = vec![false; shapes.len()];
            let mut uses = vec![0_usize; shapes.len()];
            for (key, &shape) in keys.iter().zip(&shape_of) {
                wants_files[shape] |= key.with_files;
                uses[shape] += 1;
            }
            let files = files_of_pages(
                &self.backends,
                &self.call,
                self.file_urls,
                answers
                    .iter()
                    .zip(&wants_files)
                    .filter(|(_, wants)| **wants)
                    .filter_map(|(page, _)| page.as_ref()),
            )
            .await;
            let files = degrade_unavailable(files, &self.files_unavailable)?;
            let mut connections = HashMap::with_capacity(keys.len());
            for (key, &shape) in keys.iter().zip(&shape_of) {
                uses[shape] -= 1;
                let page = if uses[shape] == 0 {
                    answers[shape].take()
                } else {
                    answers[shape].clone()
                };
                if let Some(page) = page {
                    let had_after = !key.page.after.is_empty();
                    let files = PageFiles::of(key.with_files, files.as_ref());
                    connections.insert(
                        key.clone(),
                        memory::memory_connection(page, had_after, &files),
                    );
                }
            }
            Ok(connections)
        }
        .instrument(span)
    }
}

/// The files of pages when file-core answered, `None` when it is unavailable (noted in
/// `unavailable`: the pages are answered without their files and the response says so once).
///
/// # Errors
/// Any other failure of the call.
pub(super) fn degrade_unavailable<T>(
    files: Result<T, BackendError>,
    unavailable: &FilesUnavailable,
) -> Result<Option<T>, BackendError> {
    match files {
        Ok(files) => Ok(Some(files)),
        Err(BackendError::Unavailable { service }) => {
            tracing::warn!(service, "answering pages of memories without their files");
            unavailable.note();
            Ok(None)
        }
        Err(error) => Err(error),
    }
}

/// The files of the uploaded memories on `pages`, in one call to file-core.
///
/// # Errors
/// The call's.
pub(super) async fn files_of_pages<'a>(
    backends: &Backends,
    call: &CallContext,
    file_urls: FileUrls,
    pages: impl IntoIterator<Item = &'a pb::HangoutMemoriesPage>,
) -> Result<HashMap<String, Arc<file_pb::File>>, BackendError> {
    let file_ids: Vec<String> = pages
        .into_iter()
        .flat_map(|page| &page.edges)
        .filter_map(|edge| edge.memory.as_ref())
        .filter(|memory| {
            memory.status == pb::MemoryStatus::Uploaded as i32 && !memory.file_id.is_empty()
        })
        .map(|memory| memory.file_id.clone())
        .collect();
    if file_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let files = backends
        .file
        .get_files_by_ids(call, file_ids, file_urls)
        .await?;
    Ok(files
        .into_iter()
        .map(|file| (file.id.clone(), Arc::new(file)))
        .collect())
}

impl Loader<HangoutsOfActivityKey> for BackendLoader {
    type Value = HangoutConnection;
    type Error = BackendError;

    fn load(
        &self,
        keys: &[HangoutsOfActivityKey],
    ) -> impl Future<
        Output = Result<HashMap<HangoutsOfActivityKey, HangoutConnection>, BackendError>,
    > + Send {
        let span = self.batch("hangouts_of_activities", keys.len());
        async move {
            let request = pb::ListHangoutsOfActivitiesRequest {
                pages: keys
                    .iter()
                    .map(|key| pb::ActivityHangoutsPageRequest {
                        activity_id: key.activity_id.clone(),
                        page: Some(key.page.to_proto()),
                    })
                    .collect(),
            };
            let response = self
                .backends
                .hangout
                .list_hangouts_of_activities(&self.call, request)
                .await?;
            let mut pages: HashMap<String, Vec<pb::HangoutPage>> = HashMap::new();
            for entry in response.pages.into_iter().rev() {
                if let Some(page) = entry.page {
                    pages.entry(entry.activity_id).or_default().push(page);
                }
            }
            let mut result = HashMap::new();
            for key in keys {
                if let Some(page) = pages.get_mut(&key.activity_id).and_then(Vec::pop) {
                    let had_after = !key.page.after.is_empty();
                    result.insert(key.clone(), hangout::hangout_connection(page, had_after));
                }
            }
            Ok(result)
        }
        .instrument(span)
    }
}
