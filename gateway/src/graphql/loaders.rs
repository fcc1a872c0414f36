//! The per-request batch loader: one [`BackendLoader`] per request, bound to the caller's
//! identity, never shared between requests or users. Each key type batches into one backend
//! call per resolver level, which is what keeps a page of hangouts with owners, activities,
//! memories and download URLs at a fixed number of calls.
//!
//! The batches run on the request's own task ([`LoaderTasks::drive`], applied to every
//! execution by the [`DriveLoaders`] schema extension), not as spawned tasks: a batch then
//! starts only once the execution has made all the progress it can, so every key of one
//! resolver level is in it however busy the machine is, and a cancelled request cancels its
//! loads.

use std::{
    collections::HashMap,
    future::Future,
    pin::pin,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll, Wake, Waker},
    time::Duration,
};

use async_graphql::{
    dataloader::Loader,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute},
    futures_util::{StreamExt as _, future::BoxFuture, stream::FuturesUnordered},
};
use proto::{file::v1 as file_pb, hangout::v1 as pb};
use tracing::Instrument as _;

use crate::{
    backend::{BackendError, Backends, CallContext},
    graphql::{
        activity::Activity,
        connection::{OrderDirection, PageArgs},
        hangout::{self, Hangout, HangoutConnection},
        memory::{self, Memory, MemoryConnection, MemoryStatus},
        user::User,
    },
};

/// How long a loader waits to collect keys before calling the backend: not at all, because
/// batches only start once the execution can make no progress (see [`LoaderTasks::drive`]).
/// A timer here made every request pay it per resolver level.
pub const BATCH_DELAY: Duration = Duration::ZERO;

/// Batch loads waiting to run on the request's task.
#[derive(Clone, Default)]
pub struct LoaderTasks(Arc<Mutex<Vec<BoxFuture<'static, ()>>>>);

impl LoaderTasks {
    /// The dataloader's spawner: queues the batch for [`LoaderTasks::drive`].
    pub(super) fn spawn(&self, task: BoxFuture<'static, ()>) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(task);
    }

    fn take(&self) -> Vec<BoxFuture<'static, ()>> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Runs `execution` with the batch loads it queues, on the current task: the execution is
    /// polled first, and the loads only when it cannot progress further.
    ///
    /// "Cannot progress" means pending without having woken itself: `FuturesUnordered` (which
    /// async-graphql's lists of more than 30 items run on) returns `Pending` after waking
    /// itself when two children yield, to be fair to other tasks. Starting the batches then
    /// would split one resolver level into several backend calls, so such a poll is repeated
    /// first (at most [`MAX_SELF_WAKES`] times in a row).
    pub async fn drive<F: Future>(&self, execution: F) -> F::Output {
        let mut execution = pin!(execution);
        let mut running = FuturesUnordered::new();
        let woken = Arc::new(SelfWake::default());
        std::future::poll_fn(|context| {
            let waker = woken.waker_for(context.waker());
            let mut execution_context = Context::from_waker(&waker);
            let mut self_wakes = 0;
            loop {
                woken.flag.store(false, Ordering::Relaxed);
                if let Poll::Ready(output) = execution.as_mut().poll(&mut execution_context) {
                    return Poll::Ready(output);
                }
                if woken.flag.load(Ordering::Relaxed) && self_wakes < MAX_SELF_WAKES {
                    self_wakes += 1;
                    continue;
                }
                running.extend(self.take());
                match running.poll_next_unpin(context) {
                    // A batch finished: its results may let resolvers go on.
                    Poll::Ready(Some(())) => {}
                    Poll::Ready(None) | Poll::Pending => return Poll::Pending,
                }
            }
        })
        .await
    }
}

/// How many times in a row a self-woken execution is polled again before the batches start.
const MAX_SELF_WAKES: usize = 1_000;

/// A waker that records being woken, then wakes the request's task.
#[derive(Default)]
struct SelfWake {
    flag: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl SelfWake {
    /// A waker for the execution that forwards to `task` (remembered for later wakes).
    fn waker_for(self: &Arc<Self>, task: &Waker) -> Waker {
        let mut current = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        if !current.as_ref().is_some_and(|known| known.will_wake(task)) {
            *current = Some(task.clone());
        }
        Waker::from(Arc::clone(self))
    }
}

impl Wake for SelfWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.flag.store(true, Ordering::Relaxed);
        if let Some(task) = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            task.wake_by_ref();
        }
    }
}

/// The schema extension that runs each execution inside its request's
/// [`LoaderTasks::drive`], whichever HTTP handler started it.
pub struct DriveLoaders;

impl ExtensionFactory for DriveLoaders {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(DriveLoaders)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for DriveLoaders {
    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> async_graphql::Response {
        let tasks = ctx
            .data_opt::<super::RequestContext>()
            .map(|request| &request.tasks)
            .or_else(|| ctx.data_opt::<LoaderTasks>())
            .cloned();
        match tasks {
            Some(tasks) => tasks.drive(next.run(ctx, operation_name)).await,
            None => next.run(ctx, operation_name).await,
        }
    }
}

/// A user by id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UserKey(pub String);
/// A hangout by id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HangoutKey(pub String);
/// An activity by id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ActivityKey(pub String);
/// A memory by id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MemoryKey(pub String);
/// The activities of a hangout.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ActivitiesOfHangoutKey(pub String);
/// A file-core file by id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FileKey(pub String);

/// One page of a hangout's memories.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MemoriesPageKey {
    pub hangout_id: String,
    pub page: PageArgs,
    pub status: MemoryStatus,
    pub direction: OrderDirection,
    /// Also fetch the memories' files (download URLs) in the same batch. Doing it here rather
    /// than per memory keeps the number of calls fixed: per-memory loads would start one level
    /// deeper, after the pages arrive, where a batch window can split under load.
    pub with_files: bool,
}

/// One page of an activity's hangouts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HangoutsOfActivityKey {
    pub activity_id: String,
    pub page: PageArgs,
}

/// Loads through the backends on behalf of one caller.
pub struct BackendLoader {
    backends: Backends,
    call: CallContext,
}

impl BackendLoader {
    #[must_use]
    pub fn new(backends: Backends, call: CallContext) -> Self {
        Self { backends, call }
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

impl Loader<UserKey> for BackendLoader {
    type Value = User;
    type Error = BackendError;

    fn load(
        &self,
        keys: &[UserKey],
    ) -> impl Future<Output = Result<HashMap<UserKey, User>, BackendError>> + Send {
        let span = self.batch("users", keys.len());
        async move {
            let request = pb::GetUsersRequest {
                ids: ids(keys.iter().map(|key| &key.0)),
            };
            let response = self.backends.hangout.get_users(&self.call, request).await?;
            Ok(response
                .users
                .into_iter()
                .map(|user| (UserKey(user.id.clone()), User::from(user)))
                .collect())
        }
        .instrument(span)
    }
}

impl Loader<HangoutKey> for BackendLoader {
    type Value = Hangout;
    type Error = BackendError;

    fn load(
        &self,
        keys: &[HangoutKey],
    ) -> impl Future<Output = Result<HashMap<HangoutKey, Hangout>, BackendError>> + Send {
        let span = self.batch("hangouts", keys.len());
        async move {
            let request = pb::GetHangoutsRequest {
                ids: ids(keys.iter().map(|key| &key.0)),
            };
            let response = self
                .backends
                .hangout
                .get_hangouts(&self.call, request)
                .await?;
            Ok(response
                .hangouts
                .into_iter()
                .map(|hangout| (HangoutKey(hangout.id.clone()), Hangout::from(hangout)))
                .collect())
        }
        .instrument(span)
    }
}

impl Loader<ActivityKey> for BackendLoader {
    type Value = Activity;
    type Error = BackendError;

    fn load(
        &self,
        keys: &[ActivityKey],
    ) -> impl Future<Output = Result<HashMap<ActivityKey, Activity>, BackendError>> + Send {
        let span = self.batch("activities", keys.len());
        async move {
            let request = pb::GetActivitiesRequest {
                ids: ids(keys.iter().map(|key| &key.0)),
            };
            let response = self
                .backends
                .hangout
                .get_activities(&self.call, request)
                .await?;
            Ok(response
                .activities
                .into_iter()
                .map(|activity| (ActivityKey(activity.id.clone()), Activity::from(activity)))
                .collect())
        }
        .instrument(span)
    }
}

impl Loader<MemoryKey> for BackendLoader {
    type Value = Memory;
    type Error = BackendError;

    fn load(
        &self,
        keys: &[MemoryKey],
    ) -> impl Future<Output = Result<HashMap<MemoryKey, Memory>, BackendError>> + Send {
        let span = self.batch("memories", keys.len());
        async move {
            let request = pb::GetMemoriesRequest {
                ids: ids(keys.iter().map(|key| &key.0)),
            };
            let response = self
                .backends
                .hangout
                .get_memories(&self.call, request)
                .await?;
            Ok(response
                .memories
                .into_iter()
                .map(|memory| (MemoryKey(memory.id.clone()), Memory::from(memory)))
                .collect())
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
            let request = pb::ListActivitiesOfHangoutsRequest {
                hangout_ids: ids(keys.iter().map(|key| &key.0)),
            };
            let response = self
                .backends
                .hangout
                .list_activities_of_hangouts(&self.call, request)
                .await?;
            Ok(response
                .hangouts
                .into_iter()
                .map(|entry| {
                    let activities = entry.activities.into_iter().map(Activity::from).collect();
                    (ActivitiesOfHangoutKey(entry.hangout_id), activities)
                })
                .collect())
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
                .get_files_by_ids(&self.call, ids(keys.iter().map(|key| &key.0)))
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
            let request = pb::ListMemoriesOfHangoutsRequest {
                pages: keys
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
            // Several keys may name the same hangout with different pages; answers come back in
            // request order, one per visible hangout, so match them up by hangout id in order.
            let mut pages: HashMap<String, Vec<pb::HangoutMemoriesPage>> = HashMap::new();
            for page in response.pages.into_iter().rev() {
                pages.entry(page.hangout_id.clone()).or_default().push(page);
            }
            let mut answered = Vec::with_capacity(keys.len());
            for key in keys {
                if let Some(page) = pages.get_mut(&key.hangout_id).and_then(Vec::pop) {
                    answered.push((key, page));
                }
            }
            let files = self.files_of_pages(&answered).await?;
            Ok(answered
                .into_iter()
                .map(|(key, page)| {
                    let had_after = !key.page.after.is_empty();
                    let files = key.with_files.then_some(&files);
                    (
                        key.clone(),
                        memory::memory_connection(page, had_after, files),
                    )
                })
                .collect())
        }
        .instrument(span)
    }
}

impl BackendLoader {
    /// The files of the uploaded memories on pages whose key asks for them, in one call.
    async fn files_of_pages(
        &self,
        pages: &[(&MemoriesPageKey, pb::HangoutMemoriesPage)],
    ) -> Result<HashMap<String, file_pb::File>, BackendError> {
        let file_ids: Vec<String> = pages
            .iter()
            .filter(|(key, _)| key.with_files)
            .flat_map(|(_, page)| &page.edges)
            .filter_map(|edge| edge.memory.as_ref())
            .filter(|memory| {
                memory.status == pb::MemoryStatus::Uploaded as i32 && !memory.file_id.is_empty()
            })
            .map(|memory| memory.file_id.clone())
            .collect();
        if file_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let files = self
            .backends
            .file
            .get_files_by_ids(&self.call, file_ids)
            .await?;
        Ok(files
            .into_iter()
            .map(|file| (file.id.clone(), file))
            .collect())
    }
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_graphql::{
        Context, EmptyMutation, EmptySubscription, Object, Schema, dataloader::DataLoader,
    };

    use super::*;

    struct Echo(Arc<AtomicUsize>);

    impl Loader<u32> for Echo {
        type Value = u32;
        type Error = String;

        async fn load(&self, keys: &[u32]) -> Result<HashMap<u32, u32>, String> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(keys.iter().map(|key| (*key, key * 10)).collect())
        }
    }

    struct Query;

    #[Object]
    impl Query {
        async fn echo(&self, ctx: &Context<'_>, values: Vec<u32>) -> Vec<u32> {
            let loader = ctx.data_unchecked::<DataLoader<Echo>>();
            let loads = values.into_iter().map(|value| loader.load_one(value));
            async_graphql::futures_util::future::join_all(loads)
                .await
                .into_iter()
                .map(|value| value.ok().flatten().unwrap_or_default())
                .collect()
        }
    }

    #[tokio::test]
    async fn batches_run_on_the_request_task_in_one_call() {
        let calls = Arc::new(AtomicUsize::new(0));
        let tasks = LoaderTasks::default();
        let spawner = tasks.clone();
        let loader = DataLoader::new(Echo(Arc::clone(&calls)), move |task| spawner.spawn(task));
        let schema = Schema::build(Query, EmptyMutation, EmptySubscription)
            .extension(DriveLoaders)
            .finish();
        let request = async_graphql::Request::new("{ echo(values: [1, 2, 3, 2]) }")
            .data(loader)
            .data(tasks);
        let response = schema.execute(request).await;
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        assert_eq!(
            response.data.into_json().expect("json"),
            serde_json::json!({ "echo": [10, 20, 30, 20] })
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
