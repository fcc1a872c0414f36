//! The transactional outbox: events recorded in the transaction of the change that caused them
//! (see `domain::event`), and read back in `seq` order by the relays.
//!
//! Numbers come from the one row of `event_sequence`, updated in the recording transaction:
//! on MySQL its row lock is held to commit, so a later transaction gets a higher number only
//! after the earlier one committed or rolled back (and a rollback returns its numbers), and on
//! SQLite the one writer does the same. So a reader that has seen `seq` n has seen every event
//! up to n: no gap is ever filled later. The lock is taken last in each change, after every
//! check that could refuse it, so it is held for the commit alone.

use sql_pools::{Connection, Statement, impl_from_row};

use crate::{
    domain::{
        event::{Event, EventBatch, EventKind, EventStore, RemovalReason, StoredEvent},
        ids::{HangoutId, UserId},
        store::StoreResult,
        time::Timestamp,
    },
    store::{SqlStore, corrupt, store_error},
};

/// Records `events` with the next numbers.
pub(super) async fn record(connection: &mut Connection, events: &[Event]) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let count = i64::try_from(events.len()).unwrap_or(i64::MAX);
    let take = Statement::new("update event_sequence set last_seq = last_seq + ? where id = 1")
        .bind(count);
    connection.execute(&take).await.map_err(store_error)?;
    let (last,): (i64,) = connection
        .fetch_one(&Statement::new(
            "select last_seq from event_sequence where id = 1",
        ))
        .await
        .map_err(store_error)?;
    let first = last - count + 1;
    let mut insert = Statement::new(
        "insert into events (seq, hangout_id, viewer_id, kind, subject_id, reason, occurred_at) ",
    );
    insert.push_values(events.iter().zip(first..), |row, (event, seq)| {
        row.push_bind(seq)
            .push_bind(event.hangout.map(|hangout| hangout.to_string()))
            .push_bind(event.viewer.map(|viewer| viewer.to_string()))
            .push_bind(event.kind.as_str())
            .push_bind(event.subject.clone())
            .push_bind(event.reason.map(RemovalReason::as_str))
            .push_bind(event.at.as_millis());
    });
    connection.execute(&insert).await.map_err(store_error)?;
    Ok(())
}

/// The members of `hangout`, to address them each an event (the hangout's deletion).
pub(super) async fn members(
    connection: &mut Connection,
    hangout: HangoutId,
) -> StoreResult<Vec<UserId>> {
    let query = Statement::new("select user_id from hangout_members where hangout_id = ?")
        .bind(hangout.to_string());
    let rows: Vec<(String,)> = connection.fetch_all(&query).await.map_err(store_error)?;
    rows.into_iter()
        .map(|(user,)| UserId::parse(&user).ok_or_else(|| corrupt("hangout_members.user_id")))
        .collect()
}

struct EventRow {
    seq: i64,
    hangout_id: Option<String>,
    viewer_id: Option<String>,
    kind: String,
    subject_id: Option<String>,
    reason: Option<String>,
    occurred_at: i64,
}

impl_from_row!(EventRow {
    seq,
    hangout_id,
    viewer_id,
    kind,
    subject_id,
    reason,
    occurred_at
});

impl TryFrom<EventRow> for StoredEvent {
    type Error = crate::domain::store::StoreError;

    fn try_from(row: EventRow) -> Result<Self, Self::Error> {
        let viewer = row
            .viewer_id
            .map(|viewer| UserId::parse(&viewer).ok_or_else(|| corrupt("events.viewer_id")))
            .transpose()?;
        let reason = row
            .reason
            .map(|reason| RemovalReason::parse(&reason).ok_or_else(|| corrupt("events.reason")))
            .transpose()?;
        Ok(Self {
            seq: u64::try_from(row.seq).map_err(|_| corrupt("events.seq"))?,
            event: Event {
                hangout: row
                    .hangout_id
                    .map(|hangout| {
                        HangoutId::parse(&hangout).ok_or_else(|| corrupt("events.hangout_id"))
                    })
                    .transpose()?,
                viewer,
                kind: EventKind::parse(&row.kind).ok_or_else(|| corrupt("events.kind"))?,
                subject: row.subject_id,
                reason,
                at: Timestamp::from_millis(row.occurred_at),
            },
        })
    }
}

fn seq_value(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

impl EventStore for SqlStore {
    async fn events_after(&self, after: u64, limit: u32) -> StoreResult<EventBatch> {
        let query = Statement::new(
            "select seq, hangout_id, viewer_id, kind, subject_id, reason, occurred_at \
             from events where seq > ? order by seq limit ?",
        )
        .bind(seq_value(after))
        .bind(i64::from(limit));
        let rows: Vec<EventRow> = self.database.fetch_all(&query).await.map_err(store_error)?;
        let mut batch = EventBatch {
            events: Vec::with_capacity(rows.len()),
            last_read: None,
        };
        for row in rows {
            let seq = u64::try_from(row.seq).map_err(|_| corrupt("events.seq"))?;
            batch.last_read = Some(seq);
            // One unreadable row must not stop every relay behind it: it is logged and passed.
            match StoredEvent::try_from(row) {
                Ok(event) => batch.events.push(event),
                Err(error) => tracing::error!(
                    seq,
                    error = %telemetry::ErrorChain(&error),
                    "an event row cannot be read; it is skipped"
                ),
            }
        }
        Ok(batch)
    }

    async fn last_event_seq(&self) -> StoreResult<u64> {
        let rows: Vec<(i64,)> = self
            .database
            .fetch_all(&Statement::new(
                "select last_seq from event_sequence where id = 1",
            ))
            .await
            .map_err(store_error)?;
        let last = rows.first().map_or(0, |(last,)| *last);
        u64::try_from(last).map_err(|_| corrupt("event_sequence.last_seq"))
    }

    async fn first_event_seq(&self) -> StoreResult<Option<u64>> {
        let (first,): (Option<i64>,) = self
            .database
            .read()
            .await
            .map_err(store_error)?
            .fetch_one(&Statement::new("select min(seq) from events"))
            .await
            .map_err(store_error)?;
        first
            .map(|first| u64::try_from(first).map_err(|_| corrupt("events.seq")))
            .transpose()
    }

    fn recorded(&self, poll: std::time::Duration) -> impl Future<Output = ()> + Send {
        // Subscribed now, so a commit after this call and before the wait still wakes it.
        let mut recorded = self.recorded.subscribe();
        async move {
            let _ = tokio::time::timeout(poll, recorded.changed()).await;
        }
    }

    async fn relay_position(&self, name: &str, start: u64) -> StoreResult<u64> {
        let mut connection = self.database.write().await.map_err(store_error)?;
        let known: Option<(i64,)> = connection
            .fetch_optional(
                &Statement::new("select last_seq from event_relays where name = ?").bind(name),
            )
            .await
            .map_err(store_error)?;
        if let Some((last,)) = known {
            return u64::try_from(last).map_err(|_| corrupt("event_relays.last_seq"));
        }
        let insert = Statement::new("insert into event_relays (name, last_seq) values (?, ?)")
            .bind(name)
            .bind(seq_value(start));
        connection.execute(&insert).await.map_err(store_error)?;
        Ok(start)
    }

    async fn save_relay_position(&self, name: &str, seq: u64) -> StoreResult<()> {
        let update = Statement::new("update event_relays set last_seq = ? where name = ?")
            .bind(seq_value(seq))
            .bind(name);
        self.database.execute(&update).await.map_err(store_error)?;
        Ok(())
    }

    async fn delete_events_before(&self, before: Timestamp) -> StoreResult<u64> {
        let delete =
            Statement::new("delete from events where occurred_at < ?").bind(before.as_millis());
        self.database.execute(&delete).await.map_err(store_error)
    }
}
