//! Per-request batching of backend loads, on the request's own task.
//!
//! [`BatchLoader::load_one`] records a key and waits; the keys of one type requested while the
//! execution runs are loaded together by one `Loader::load` call, started by
//! [`LoaderTasks::drive`] (wrapped around every execution by [`crate::graphql::execute`], the
//! one way the schema runs) only once the execution can make no more progress. So every key of a resolver level is in its batch however busy the machine is, no timer delays a request, and a
//! cancelled request cancels its loads. Results are cached for the rest of the request, shared
//! (`Arc`): a page's memories, files and activities reach their resolvers without a deep copy.
//!
//! This replaces async-graphql's `DataLoader`, whose batches always wait on a `futures-timer`
//! `Delay`, even of zero: a round trip through that crate's global timer thread per resolver
//! level, which under load waits for a core like everything else.

use std::{
    any::{Any, TypeId},
    collections::{HashMap, HashSet},
    future::Future,
    hash::Hash,
    pin::pin,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll, Wake, Waker},
};

use async_graphql::{
    dataloader::Loader,
    futures_util::{Stream, StreamExt as _, future::BoxFuture, stream::FuturesUnordered},
};
use tokio::sync::oneshot;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Loads through `L` in batches, caching results for one request.
pub struct BatchLoader<L> {
    inner: Arc<Inner<L>>,
}

struct Inner<L> {
    loader: L,
    tasks: LoaderTasks,
    /// One [`Batches`] per key type.
    batches: Mutex<HashMap<TypeId, Box<dyn TypeBatches>>>,
}

/// Why a load has no answer of its own: a broken invariant of this module, never a backend's
/// answer, so an internal error (as `Ok(None)` a client would see NOT_FOUND).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BatchBroken {
    /// The batch was dropped before it answered its keys.
    #[error("a batch was dropped before it answered")]
    Dropped,
    /// The batches kept for a key type are of another type.
    #[error("the batches of a key type hold another type")]
    WrongType,
    /// A load was queued on tasks that no [`LoaderTasks::drive`] runs: it would wait forever.
    #[error("a load was queued outside LoaderTasks::drive and would never run")]
    NotDriven,
}

/// Logs `why` and turns it into the loader's error. An undriven load is a bug in the caller
/// that would hang the request: debug builds and tests panic on it.
fn broken<E: From<BatchBroken>>(why: BatchBroken) -> E {
    tracing::error!(%why, "batch loader failed");
    debug_assert!(why != BatchBroken::NotDriven, "{why}");
    E::from(why)
}

type Waiter<V, E> = oneshot::Sender<Result<Option<Arc<V>>, E>>;

/// The cache and the waiting keys of one key type.
struct Batches<K, V, E> {
    cache: HashMap<K, Arc<V>>,
    waiting: Vec<(K, Waiter<V, E>)>,
}

/// The batches of one key type, whatever it is.
trait TypeBatches: Send {
    fn as_any(&mut self) -> &mut dyn Any;
    fn clear_cache(&mut self);
}

impl<K: Send + 'static, V: Send + Sync + 'static, E: Send + 'static> TypeBatches
    for Batches<K, V, E>
{
    fn as_any(&mut self) -> &mut dyn Any {
        self
    }

    fn clear_cache(&mut self) {
        self.cache.clear();
    }
}

impl<K, V, E> Default for Batches<K, V, E> {
    fn default() -> Self {
        Self {
            cache: HashMap::new(),
            waiting: Vec::new(),
        }
    }
}

impl<L: Send + Sync + 'static> BatchLoader<L> {
    /// A loader whose batches run through `tasks`.
    pub fn new(loader: L, tasks: LoaderTasks) -> Self {
        Self {
            inner: Arc::new(Inner {
                loader,
                tasks,
                batches: Mutex::default(),
            }),
        }
    }

    /// The value of `key`, `None` when the loader found none.
    ///
    /// # Errors
    /// The batch's error, or a [`BatchBroken`] one.
    pub async fn load_one<K>(&self, key: K) -> Result<Option<Arc<L::Value>>, L::Error>
    where
        K: Send + Sync + Hash + Eq + Clone + 'static,
        L: Loader<K>,
        L::Error: From<BatchBroken>,
    {
        let receiver = {
            let mut types = lock(&self.inner.batches);
            let Some(batches) = batches_of::<K, L>(&mut types) else {
                return Err(broken(BatchBroken::WrongType));
            };
            if let Some(value) = batches.cache.get(&key) {
                return Ok(Some(Arc::clone(value)));
            }
            if !self.inner.tasks.is_driven() {
                return Err(broken(BatchBroken::NotDriven));
            }
            let (sender, receiver) = oneshot::channel();
            let first = batches.waiting.is_empty();
            batches.waiting.push((key, sender));
            if first {
                self.inner
                    .tasks
                    .spawn(Box::pin(Inner::load_batch::<K>(Arc::clone(&self.inner))));
            }
            receiver
        };
        // The batch and this receiver live in the same execution and are dropped together.
        receiver
            .await
            .unwrap_or_else(|_| Err(broken(BatchBroken::Dropped)))
    }

    /// Forgets every cached value, for a subscription between two events: each event
    /// resolves with what the backends hold then. Keys still waiting keep their batch.
    pub fn clear_cache(&self) {
        for batches in lock(&self.inner.batches).values_mut() {
            batches.clear_cache();
        }
    }

    /// Caches `value` as the value of `key` for the rest of the request, as if a batch had
    /// loaded it: for a backend call that answers keys before their resolvers ask. A key
    /// already cached keeps its value.
    pub fn prime<K>(&self, key: K, value: L::Value)
    where
        K: Send + Sync + Hash + Eq + Clone + 'static,
        L: Loader<K>,
    {
        let mut types = lock(&self.inner.batches);
        if let Some(batches) = batches_of::<K, L>(&mut types) {
            batches.cache.entry(key).or_insert_with(|| Arc::new(value));
        }
    }
}

/// The batches of key type `K`, created on first use.
fn batches_of<K, L>(
    types: &mut HashMap<TypeId, Box<dyn TypeBatches>>,
) -> Option<&mut Batches<K, L::Value, L::Error>>
where
    K: Send + Sync + Hash + Eq + Clone + 'static,
    L: Loader<K>,
{
    types
        .entry(TypeId::of::<K>())
        .or_insert_with(|| Box::new(Batches::<K, L::Value, L::Error>::default()))
        .as_any()
        // Always `Some`: the entry of a type id holds that type's batches.
        .downcast_mut::<Batches<K, L::Value, L::Error>>()
}

impl<L: Send + Sync + 'static> Inner<L> {
    /// Loads every key of type `K` waiting when it first runs, in one call.
    async fn load_batch<K>(self: Arc<Self>)
    where
        K: Send + Sync + Hash + Eq + Clone + 'static,
        L: Loader<K>,
    {
        let waiting = self.with_batches::<K, _>(|batches| std::mem::take(&mut batches.waiting));
        let mut seen = HashSet::with_capacity(waiting.len());
        let keys: Vec<K> = waiting
            .iter()
            .filter(|(key, _)| seen.insert(key.clone()))
            .map(|(key, _)| key.clone())
            .collect();
        match self.loader.load(&keys).await {
            Ok(values) => {
                let values: HashMap<K, Arc<L::Value>> = values
                    .into_iter()
                    .map(|(key, value)| (key, Arc::new(value)))
                    .collect();
                for (key, waiter) in waiting {
                    let _ = waiter.send(Ok(values.get(&key).cloned()));
                }
                self.with_batches::<K, _>(|batches| batches.cache.extend(values));
            }
            Err(error) => {
                for (_, waiter) in waiting {
                    let _ = waiter.send(Err(error.clone()));
                }
            }
        }
    }

    fn with_batches<K, T>(&self, work: impl FnOnce(&mut Batches<K, L::Value, L::Error>) -> T) -> T
    where
        K: Send + Sync + Hash + Eq + Clone + 'static,
        L: Loader<K>,
        T: Default,
    {
        let mut types = lock(&self.batches);
        types
            .get_mut(&TypeId::of::<K>())
            .and_then(|entry| {
                entry
                    .as_any()
                    .downcast_mut::<Batches<K, L::Value, L::Error>>()
            })
            .map(work)
            .unwrap_or_default()
    }
}

/// Batch loads waiting to run on the request's task.
#[derive(Clone, Default)]
pub struct LoaderTasks(Arc<Queue>);

#[derive(Default)]
struct Queue {
    waiting: Mutex<Vec<BoxFuture<'static, ()>>>,
    /// Whether a [`Driver`] runs what is queued.
    driven: AtomicBool,
}

impl LoaderTasks {
    /// Queues a batch for [`LoaderTasks::drive`].
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        lock(&self.0.waiting).push(task);
    }

    fn take(&self) -> Vec<BoxFuture<'static, ()>> {
        std::mem::take(&mut *lock(&self.0.waiting))
    }

    fn is_driven(&self) -> bool {
        self.0.driven.load(Ordering::Relaxed)
    }

    /// Runs `execution` with the batch loads it queues, on the current task: the execution is
    /// polled first, and the loads only when it cannot progress further.
    ///
    /// "Cannot progress" means pending without having woken itself: `FuturesUnordered` (which
    /// async-graphql's lists of more than 30 items run on) returns `Pending` after waking
    /// itself when two children yield, to be fair to other tasks. Starting the batches then
    /// would split one resolver level into several backend calls, so such a poll is repeated
    /// first (at most [`MAX_SELF_WAKES`] times in a row).
    pub(super) async fn drive<F: Future>(&self, execution: F) -> F::Output {
        let mut execution = pin!(execution);
        let mut driver = Driver::new(self.clone());
        std::future::poll_fn(|context| {
            driver.poll(context, |context| execution.as_mut().poll(context))
        })
        .await
    }

    /// [`LoaderTasks::drive`] for a subscription: each item of `execution` (one event's
    /// response) is produced with the batch loads it queues.
    pub(super) fn drive_stream<S>(
        &self,
        execution: S,
    ) -> impl Stream<Item = S::Item> + Send + use<S>
    where
        S: Stream + Send + Unpin,
    {
        let mut execution = execution;
        let mut driver = Driver::new(self.clone());
        async_graphql::futures_util::stream::poll_fn(move |context| {
            driver.poll(context, |context| execution.poll_next_unpin(context))
        })
    }
}

/// The batches an execution queued, run when it can make no more progress.
struct Driver {
    tasks: LoaderTasks,
    running: FuturesUnordered<BoxFuture<'static, ()>>,
    woken: Arc<SelfWake>,
}

impl Driver {
    fn new(tasks: LoaderTasks) -> Self {
        tasks.0.driven.store(true, Ordering::Relaxed);
        Self {
            tasks,
            running: FuturesUnordered::new(),
            woken: Arc::new(SelfWake::default()),
        }
    }

    /// Polls the execution through `poll_execution`, then the batches, as long as a batch
    /// finishing may let it go on.
    fn poll<T>(
        &mut self,
        context: &mut Context<'_>,
        mut poll_execution: impl FnMut(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        let waker = self.woken.waker_for(context.waker());
        let mut execution_context = Context::from_waker(&waker);
        let mut self_wakes = 0;
        loop {
            self.woken.flag.store(false, Ordering::Relaxed);
            if let Poll::Ready(output) = poll_execution(&mut execution_context) {
                return Poll::Ready(output);
            }
            if self.woken.flag.load(Ordering::Relaxed) && self_wakes < MAX_SELF_WAKES {
                self_wakes += 1;
                continue;
            }
            self.running.extend(self.tasks.take());
            match self.running.poll_next_unpin(context) {
                // A batch finished: its results may let resolvers go on.
                Poll::Ready(Some(())) => {}
                Poll::Ready(None) | Poll::Pending => return Poll::Pending,
            }
        }
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
        let mut current = lock(&self.task);
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
        if let Some(task) = lock(&self.task).as_ref() {
            task.wake_by_ref();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_graphql::{Context, EmptyMutation, EmptySubscription, Object, Schema};

    use super::*;

    struct Echo(Arc<AtomicUsize>);

    impl Loader<u32> for Echo {
        type Value = u32;
        type Error = BatchBroken;

        async fn load(&self, keys: &[u32]) -> Result<HashMap<u32, u32>, BatchBroken> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(keys.iter().map(|key| (*key, key * 10)).collect())
        }
    }

    struct Query;

    #[Object]
    impl Query {
        async fn echo(&self, ctx: &Context<'_>, values: Vec<u32>) -> Vec<u32> {
            let loader = ctx.data_unchecked::<BatchLoader<Echo>>();
            let loads = values.into_iter().map(|value| loader.load_one(value));
            async_graphql::futures_util::future::join_all(loads)
                .await
                .into_iter()
                .map(|value| value.ok().flatten().map_or(0, |value| *value))
                .collect()
        }
    }

    #[tokio::test]
    async fn batches_run_on_the_request_task_in_one_call() {
        let calls = Arc::new(AtomicUsize::new(0));
        let tasks = LoaderTasks::default();
        let loader = BatchLoader::new(Echo(Arc::clone(&calls)), tasks.clone());
        let schema = Schema::build(Query, EmptyMutation, EmptySubscription).finish();
        let request =
            async_graphql::Request::new("{ echo(values: [1, 2, 3, 2]) again: echo(values: [3]) }")
                .data(loader);
        let response = tasks.drive(schema.execute(request)).await;
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        assert_eq!(
            response.data.into_json().expect("json"),
            serde_json::json!({ "echo": [10, 20, 30, 20], "again": [30] })
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1, "one batch for both fields");
        let tasks = LoaderTasks::default();
        let again = tasks
            .drive(
                schema.execute(
                    async_graphql::Request::new("{ echo(values: [4]) }")
                        .data(BatchLoader::new(Echo(Arc::clone(&calls)), tasks.clone())),
                ),
            )
            .await;
        assert!(again.errors.is_empty(), "{:?}", again.errors);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn primed_keys_answer_without_a_load() {
        let calls = Arc::new(AtomicUsize::new(0));
        let tasks = LoaderTasks::default();
        let loader = BatchLoader::new(Echo(Arc::clone(&calls)), tasks.clone());
        loader.prime(1, 7);
        loader.prime(1, 8);
        let schema = Schema::build(Query, EmptyMutation, EmptySubscription).finish();
        let request = async_graphql::Request::new("{ echo(values: [1]) }").data(loader);
        let response = tasks.drive(schema.execute(request)).await;
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        assert_eq!(
            response.data.into_json().expect("json"),
            serde_json::json!({ "echo": [7] }),
            "the first primed value, not a load"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }

    /// Without a driver the load would wait forever; it must fail at once and loudly.
    #[cfg(debug_assertions)]
    #[tokio::test]
    #[should_panic(expected = "outside LoaderTasks::drive")]
    async fn a_load_nobody_drives_panics_in_debug_builds() {
        let calls = Arc::new(AtomicUsize::new(0));
        let loader = BatchLoader::new(Echo(calls), LoaderTasks::default());
        let schema = Schema::build(Query, EmptyMutation, EmptySubscription).finish();
        let _ = schema
            .execute(async_graphql::Request::new("{ echo(values: [1]) }").data(loader))
            .await;
    }
}
