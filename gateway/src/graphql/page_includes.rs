//! Loading ahead for the hangouts page.
//!
//! `hangouts` knows from its look-ahead whether the query selects each hangout's owner, its
//! activities and a page of its memories. It asks hangout-core for them in the same
//! `ListHangouts` call, then caches them in the request's loader under the keys their
//! resolvers will ask for. A page with owners, activities, memories and download URLs is then
//! two dependent calls (hangout-core, then file-core) instead of three rounds of five calls.
//!
//! A cached value is built from its own key, by the conversion the loader uses, so it is what
//! the loader would have returned; a resolver whose key was not cached (other arguments, a
//! later page, a part hangout-core could not read and left empty) loads as before, and reports
//! a failure on its own field as before.

use async_graphql::{InputType, Lookahead, SelectionField};
use proto::hangout::v1 as pb;

use crate::{
    backend::Backends,
    graphql::{
        RequestContext,
        activity::Activity,
        loaders::{self, ActivitiesOfHangoutKey, MemoriesPageKey, UserKey},
        memory::{self, MemoryOrder, MemoryStatus, PageFiles},
        user::User,
    },
};

/// What a hangouts page's query selects under its hangouts.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct PageIncludes {
    owners: bool,
    /// The keys of the selected `activities` fields, with an empty hangout id: none, or one
    /// or both of with and without hangout counts. The call asks for counts when any does.
    activities: Vec<ActivitiesOfHangoutKey>,
    /// The keys of the selected first pages of memories, with an empty hangout id. They share
    /// one page shape (size, status, order), the one the call carries; they may differ in
    /// whether download URLs are selected.
    memories: Vec<MemoriesPageKey>,
}

impl PageIncludes {
    /// What `selection`, the selection of a hangout connection, asks of its hangouts.
    pub(super) fn of(selection: &Lookahead<'_>) -> Self {
        let hangouts = [
            selection.field("nodes"),
            selection.field("edges").field("node"),
        ];
        let selected = |name: &str| hangouts.iter().any(|hangout| hangout.field(name).exists());
        let mut activities: Vec<ActivitiesOfHangoutKey> = Vec::new();
        let fields = hangouts
            .iter()
            .flat_map(|hangout| hangout.field("activities").selection_fields());
        for field in fields {
            let key = ActivitiesOfHangoutKey::new(String::new(), &Lookahead::from(field));
            if !activities.contains(&key) {
                activities.push(key);
            }
        }
        let mut memories: Vec<MemoriesPageKey> = Vec::new();
        let fields = hangouts
            .iter()
            .flat_map(|hangout| hangout.field("memories").selection_fields());
        for key in fields.filter_map(first_memories_page) {
            let same_shape = memories.first().is_none_or(|first| first.same_shape(&key));
            if same_shape && !memories.contains(&key) {
                memories.push(key);
            }
        }
        Self {
            owners: selected("owner"),
            activities,
            memories,
        }
    }

    /// The request's `include`; `None` when nothing is selected.
    pub(super) fn to_proto(&self) -> Option<pb::HangoutPageIncludes> {
        if *self == Self::default() {
            return None;
        }
        Some(pb::HangoutPageIncludes {
            owners: self.owners,
            activities: !self.activities.is_empty(),
            activities_without_hangout_counts: !self
                .activities
                .iter()
                .any(ActivitiesOfHangoutKey::counts_hangouts),
            memories: self.memories.first().map(MemoriesPageKey::page_options),
        })
    }

    /// Caches what `page` carries beside its hangouts in the request's loader, after fetching
    /// the memories' files when a key asks for download URLs.
    pub(super) async fn prime(
        self,
        backends: &Backends,
        request: &RequestContext,
        page: &mut pb::HangoutPage,
    ) {
        let loader = &request.loader;
        for user in page.owners.drain(..) {
            loader.prime(UserKey(user.id.clone()), User::from(user));
        }
        // The lists are counted when any selected key asks (`to_proto`), so they answer
        // every selected key, as a loader batch does.
        if let Some((last, others)) = self.activities.split_last() {
            for entry in page.activities.drain(..) {
                let activities: Vec<Activity> =
                    entry.activities.into_iter().map(Activity::from).collect();
                for template in others {
                    loader.prime(
                        template.for_hangout(entry.hangout_id.clone()),
                        activities.clone(),
                    );
                }
                loader.prime(last.for_hangout(entry.hangout_id), activities);
            }
        }
        let mut pages = std::mem::take(&mut page.memory_pages);
        if pages.is_empty() {
            return;
        }
        // `Some(None)`: file-core unavailable, so the pages go without their files.
        let files = if self.memories.iter().any(MemoriesPageKey::with_files) {
            let files =
                loaders::files_of_pages(backends, &request.call, request.file_urls, &pages).await;
            match loaders::degrade_unavailable(files, &request.files_unavailable) {
                Ok(files) => Some(files),
                Err(error) => {
                    // Not cached, so the memories fields load again and report it in place.
                    tracing::debug!(
                        error = %telemetry::ErrorChain(&error),
                        "files of the page's memories not loaded ahead"
                    );
                    None
                }
            }
        } else {
            None
        };
        let templates = self.memories.len();
        for (index, template) in self.memories.into_iter().enumerate() {
            let files = match (template.with_files(), &files) {
                (false, _) => PageFiles::NotFetched,
                (true, Some(fetched)) => PageFiles::of(true, fetched.as_ref()),
                (true, None) => continue,
            };
            // Usually there is one template: it takes the pages rather than a copy.
            let pages = if index + 1 == templates {
                std::mem::take(&mut pages)
            } else {
                pages.clone()
            };
            for memories in pages {
                let key = template.for_hangout(memories.hangout_id.clone());
                // The key's `after` is empty (see `first_memories_page`).
                loader.prime(key, memory::memory_connection(memories, false, &files));
            }
        }
    }
}

/// The key, with an empty hangout id, of a `memories` field asking for a first page, parsed
/// as the resolver parses its arguments; `None` for a later page (its cursor belongs to one
/// hangout) or arguments the resolver will refuse, which it reports itself.
fn first_memories_page(field: SelectionField<'_>) -> Option<MemoriesPageKey> {
    let arguments = field.arguments().ok()?;
    let argument = |name: &str| {
        arguments
            .iter()
            .find(|(argument, _)| argument.as_str() == name)
            .map(|(_, value)| value.clone())
    };
    let key = MemoriesPageKey::new(
        String::new(),
        <Option<i32>>::parse(argument("first")).ok()?,
        <Option<String>>::parse(argument("after")).ok()?,
        <Option<MemoryStatus>>::parse(argument("status")).ok()?,
        <Option<MemoryOrder>>::parse(argument("orderBy")).ok()?,
        &Lookahead::from(field),
    )
    .ok()?;
    key.is_first_page().then_some(key)
}
