//! Activities: each user's own vocabulary of things to do, attached to hangouts.

use crate::domain::{
    Service,
    error::{DomainError, DomainResult},
    hangout::{ACTIVITY_HANGOUTS_ORDER, Hangout},
    ids::{ActivityId, HangoutId, UserId},
    page::{self, Cursor, Direction, Page, PageSize},
    store::{KeysetQuery, Store, StoreError},
    text::parse_label,
    time::Timestamp,
};

const ACTIVITIES_ORDER: &str = "activities.name";

/// An activity of one user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Activity {
    pub id: ActivityId,
    pub owner: UserId,
    pub name: String,
    /// The lower-cased name: unique per owner, so names are unique case-insensitively.
    pub name_key: String,
    /// How many of the owner's hangouts carry it; `None` when read [`HangoutCounts::Omitted`].
    pub hangout_count: Option<u64>,
    pub created_at: Timestamp,
}

/// Whether a read of many hangouts' activities counts each activity's hangouts: a count per
/// distinct activity, which costs more than reading the activities, so a caller that does not
/// show it can leave it out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HangoutCounts {
    Counted,
    Omitted,
}

/// Parses a name and its uniqueness key.
fn parse_name(text: &str) -> DomainResult<(String, String)> {
    let name = parse_label(text, "name")?;
    let key = name.to_lowercase();
    Ok((name, key))
}

fn name_taken(error: StoreError) -> DomainError {
    match error {
        StoreError::Conflict(_) => {
            DomainError::AlreadyExists("you already have an activity with this name".to_owned())
        }
        StoreError::NotFound => DomainError::NotFound,
        other => other.into(),
    }
}

fn activity_cursor(activity: &Activity) -> String {
    Cursor {
        key: activity.name_key.clone(),
        id: activity.id.to_string(),
    }
    .encode(ACTIVITIES_ORDER, Direction::Asc)
}

impl<S: Store> Service<S> {
    /// # Errors
    /// `Invalid` for a bad name; `AlreadyExists` when the owner has one of that name.
    pub async fn create_activity(&self, owner: UserId, name: &str) -> DomainResult<Activity> {
        let (name, name_key) = parse_name(name)?;
        let activity = Activity {
            id: ActivityId::generate(),
            owner,
            name,
            name_key,
            hangout_count: Some(0),
            created_at: Timestamp::now(),
        };
        self.store
            .insert_activity(&activity)
            .await
            .map_err(name_taken)?;
        Ok(activity)
    }

    /// # Errors
    /// `Invalid` for a bad name; `NotFound`; `AlreadyExists` when the name is taken.
    pub async fn rename_activity(
        &self,
        owner: UserId,
        id: ActivityId,
        name: &str,
    ) -> DomainResult<Activity> {
        let (name, name_key) = parse_name(name)?;
        self.store
            .rename_activity(owner, id, &name, &name_key)
            .await
            .map_err(name_taken)
    }

    /// Deletes the activity and unlinks it from the owner's hangouts.
    ///
    /// # Errors
    /// `NotFound` when it is not the owner's.
    pub async fn delete_activity(&self, owner: UserId, id: ActivityId) -> DomainResult<()> {
        self.store
            .delete_activity(owner, id)
            .await
            .map_err(name_taken)
    }

    /// # Errors
    /// Only internal ones.
    pub async fn activities_by_ids(
        &self,
        owner: UserId,
        ids: &[ActivityId],
    ) -> DomainResult<Vec<Activity>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.store.activities_by_ids(owner, ids).await?)
    }

    /// The owner's activities ordered by name.
    ///
    /// # Errors
    /// `Invalid` for a bad page size or cursor.
    pub async fn list_activities(
        &self,
        owner: UserId,
        first: u32,
        after: &str,
    ) -> DomainResult<Page<Activity>> {
        let size = PageSize::parse(first, "first")?;
        let after = page::decode_after(after, ACTIVITIES_ORDER, Direction::Asc, "after")?;
        let rows = self
            .store
            .list_activities(
                owner,
                &KeysetQuery {
                    after,
                    fetch: size.get() + 1,
                },
            )
            .await?;
        Ok(Page::from_rows(
            rows.rows,
            size,
            rows.total_count,
            activity_cursor,
        ))
    }

    /// The activities of each of the owner's hangouts among `hangouts`, ordered by name, with
    /// or without their hangout counts.
    ///
    /// # Errors
    /// Only internal ones.
    pub async fn activities_of_hangouts(
        &self,
        owner: UserId,
        hangouts: &[HangoutId],
        counts: HangoutCounts,
    ) -> DomainResult<Vec<(HangoutId, Vec<Activity>)>> {
        if hangouts.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .store
            .activities_of_hangouts(owner, hangouts, counts)
            .await?)
    }

    /// One page of the owner's hangouts carrying `activity`, newest first.
    ///
    /// # Errors
    /// `NotFound` when the activity is not the owner's; `Invalid` for a bad page.
    pub async fn hangouts_of_activity(
        &self,
        owner: UserId,
        activity: ActivityId,
        first: u32,
        after: &str,
    ) -> DomainResult<Page<Hangout>> {
        let size = PageSize::parse(first, "first")?;
        let after = page::decode_after(after, ACTIVITY_HANGOUTS_ORDER, Direction::Desc, "after")?;
        let rows = self
            .store
            .hangouts_of_activity(
                owner,
                activity,
                &KeysetQuery {
                    after,
                    fetch: size.get() + 1,
                },
            )
            .await
            .map_err(name_taken)?;
        Ok(Page::from_rows(
            rows.rows,
            size,
            rows.total_count,
            |hangout| {
                Cursor {
                    key: hangout.created_at.as_millis(),
                    id: hangout.id.to_string(),
                }
                .encode(ACTIVITY_HANGOUTS_ORDER, Direction::Desc)
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_get_case_insensitive_keys() {
        assert_eq!(
            parse_name("  Board Games ").ok(),
            Some(("Board Games".to_owned(), "board games".to_owned()))
        );
        assert!(parse_name("").is_err());
        assert!(parse_name(&"a".repeat(256)).is_err());
        assert!(parse_name(&"a".repeat(255)).is_ok());
    }
}
