//! Row types: the shape of each table as read back, converted into domain values here so
//! nothing of the database leaves `store`. Each row reads its columns in the order listed in
//! its `impl_from_row!`, which is the order of its select list.

use sql_pools::{Columns, DbError, FromRow, Statement, impl_from_row};

use crate::{
    domain::{
        activity::Activity,
        hangout::{Hangout, HangoutStatus},
        ids::{ActivityId, FileId, HangoutId, MemoryId, SessionFamilyId, SessionId, UserId},
        membership::{Member, Membership, Role, Rsvp},
        memory::{Memory, MemoryStatus},
        session::SessionRecord,
        store::StoreError,
        time::Timestamp,
        user::{Email, User},
    },
    store::{corrupt, count},
};

fn id<T>(text: &str, parse: fn(&str) -> Option<T>, what: &str) -> Result<T, StoreError> {
    parse(text).ok_or_else(|| corrupt(what))
}

pub(super) struct UserRow {
    pub id: String,
    pub name: String,
    pub email: String,
    pub created_at: i64,
}

impl_from_row!(UserRow {
    id,
    name,
    email,
    created_at
});

impl TryFrom<UserRow> for User {
    type Error = StoreError;

    fn try_from(row: UserRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: id(&row.id, UserId::parse, "users.id")?,
            name: row.name,
            email: Email::from_stored(row.email),
            created_at: Timestamp::from_millis(row.created_at),
        })
    }
}

pub(super) struct SessionRow {
    pub id: String,
    pub family_id: String,
    pub user_id: String,
    pub token_hash: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub rotated_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl_from_row!(SessionRow {
    id,
    family_id,
    user_id,
    token_hash,
    created_at,
    expires_at,
    rotated_at,
    revoked_at
});

impl TryFrom<SessionRow> for SessionRecord {
    type Error = StoreError;

    fn try_from(row: SessionRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: id(&row.id, SessionId::parse, "sessions.id")?,
            family: id(&row.family_id, SessionFamilyId::parse, "sessions.family_id")?,
            user: id(&row.user_id, UserId::parse, "sessions.user_id")?,
            token_hash: row.token_hash,
            created_at: Timestamp::from_millis(row.created_at),
            expires_at: Timestamp::from_millis(row.expires_at),
            rotated_at: row.rotated_at.map(Timestamp::from_millis),
            revoked_at: row.revoked_at.map(Timestamp::from_millis),
        })
    }
}

/// The columns of [`HangoutRow`], qualified for joins: a hangout `h` and the reader's
/// membership `hm` (see [`super::hangouts::push_hangouts_of`]).
pub(super) const HANGOUT_COLUMNS: &str = "h.id, h.owner_id, h.title, h.description, \
     h.hangout_date, h.status, h.created_at, h.updated_at, hm.role, hm.rsvp";

pub(super) struct HangoutRow {
    pub id: String,
    pub owner_id: String,
    pub title: String,
    pub description: Option<String>,
    pub hangout_date: i64,
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub role: String,
    pub rsvp: String,
}

impl_from_row!(HangoutRow {
    id,
    owner_id,
    title,
    description,
    hangout_date,
    status,
    created_at,
    updated_at,
    role,
    rsvp
});

impl TryFrom<HangoutRow> for Hangout {
    type Error = StoreError;

    fn try_from(row: HangoutRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: id(&row.id, HangoutId::parse, "hangouts.id")?,
            owner: id(&row.owner_id, UserId::parse, "hangouts.owner_id")?,
            viewer: Membership {
                role: Role::from_stored(&row.role)
                    .ok_or_else(|| corrupt("hangout_members.role"))?,
                rsvp: Rsvp::from_stored(&row.rsvp)
                    .ok_or_else(|| corrupt("hangout_members.rsvp"))?,
            },
            title: row.title,
            description: row.description,
            date: Timestamp::from_millis(row.hangout_date),
            status: HangoutStatus::from_stored(&row.status)
                .ok_or_else(|| corrupt("hangouts.status"))?,
            created_at: Timestamp::from_millis(row.created_at),
            updated_at: Timestamp::from_millis(row.updated_at),
        })
    }
}

/// The columns of [`ActivityFieldsRow`], qualified for joins.
pub(super) const ACTIVITY_FIELDS: &str = "a.id, a.owner_id, a.name, a.name_key, a.created_at";

/// Appends the columns of [`ActivityRow`]: [`ACTIVITY_FIELDS`] and the count of the hangouts
/// carrying it that `caller` is a member of.
pub(super) fn push_activity_columns(query: &mut Statement, caller: UserId) {
    query
        .push(ACTIVITY_FIELDS)
        .push(
            ", (select count(*) from hangout_activities c join hangout_members cm \
             on cm.hangout_id = c.hangout_id and cm.user_id = ",
        )
        .push_bind(caller.to_string())
        .push(" where c.activity_id = a.id) as hangout_count");
}

/// An activity's own columns, without its hangout count.
pub(super) struct ActivityFieldsRow {
    pub id: String,
    pub owner_id: String,
    pub name: String,
    pub name_key: String,
    pub created_at: i64,
}

impl_from_row!(ActivityFieldsRow {
    id,
    owner_id,
    name,
    name_key,
    created_at
});

impl ActivityFieldsRow {
    /// The activity, with the hangout count counted apart (or not at all).
    pub(super) fn into_activity(self, hangout_count: Option<u64>) -> Result<Activity, StoreError> {
        Ok(Activity {
            id: id(&self.id, ActivityId::parse, "activities.id")?,
            owner: id(&self.owner_id, UserId::parse, "activities.owner_id")?,
            name: self.name,
            name_key: self.name_key,
            hangout_count,
            created_at: Timestamp::from_millis(self.created_at),
        })
    }
}

/// An activity with its hangout count.
pub(super) struct ActivityRow {
    fields: ActivityFieldsRow,
    hangout_count: i64,
}

impl FromRow for ActivityRow {
    fn from_row(columns: &mut Columns<'_, '_>) -> Result<Self, DbError> {
        Ok(Self {
            fields: ActivityFieldsRow::from_row(columns)?,
            hangout_count: columns.read()?,
        })
    }
}

impl TryFrom<ActivityRow> for Activity {
    type Error = StoreError;

    fn try_from(row: ActivityRow) -> Result<Self, StoreError> {
        row.fields.into_activity(Some(count(row.hangout_count)))
    }
}

/// The columns of [`MemoryRow`], qualified for joins.
pub(super) const MEMORY_COLUMNS: &str = "m.id, m.hangout_id, m.uploaded_by, m.file_name, \
     m.content_type, m.size, m.status, m.file_id, m.created_at, m.upload_expires_at";

pub(super) struct MemoryRow {
    pub id: String,
    pub hangout_id: String,
    pub uploaded_by: String,
    pub file_name: String,
    pub content_type: String,
    pub size: i64,
    pub status: String,
    pub file_id: Option<String>,
    pub created_at: i64,
    pub upload_expires_at: i64,
}

impl_from_row!(MemoryRow {
    id,
    hangout_id,
    uploaded_by,
    file_name,
    content_type,
    size,
    status,
    file_id,
    created_at,
    upload_expires_at
});

impl TryFrom<MemoryRow> for Memory {
    type Error = StoreError;

    fn try_from(row: MemoryRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: id(&row.id, MemoryId::parse, "memories.id")?,
            hangout: id(&row.hangout_id, HangoutId::parse, "memories.hangout_id")?,
            uploaded_by: id(&row.uploaded_by, UserId::parse, "memories.uploaded_by")?,
            file_name: row.file_name,
            content_type: row.content_type,
            size: count(row.size),
            status: MemoryStatus::from_stored(&row.status)
                .ok_or_else(|| corrupt("memories.status"))?,
            file: row
                .file_id
                .as_deref()
                .map(|file| id(file, FileId::parse, "memories.file_id"))
                .transpose()?,
            created_at: Timestamp::from_millis(row.created_at),
            upload_expires_at: Timestamp::from_millis(row.upload_expires_at),
        })
    }
}

/// The columns of [`MemberRow`], of a member `hm`.
pub(super) const MEMBER_COLUMNS: &str = "hm.hangout_id, hm.user_id, hm.role, hm.rsvp, hm.joined_at";

pub(super) struct MemberRow {
    pub hangout_id: String,
    pub user_id: String,
    pub role: String,
    pub rsvp: String,
    pub joined_at: i64,
}

impl_from_row!(MemberRow {
    hangout_id,
    user_id,
    role,
    rsvp,
    joined_at
});

impl TryFrom<MemberRow> for Member {
    type Error = StoreError;

    fn try_from(row: MemberRow) -> Result<Self, StoreError> {
        Ok(Self {
            hangout: id(
                &row.hangout_id,
                HangoutId::parse,
                "hangout_members.hangout_id",
            )?,
            user: id(&row.user_id, UserId::parse, "hangout_members.user_id")?,
            role: Role::from_stored(&row.role).ok_or_else(|| corrupt("hangout_members.role"))?,
            rsvp: Rsvp::from_stored(&row.rsvp).ok_or_else(|| corrupt("hangout_members.rsvp"))?,
            joined_at: Timestamp::from_millis(row.joined_at),
        })
    }
}

/// Converts every row, failing on the first corrupt one.
pub(super) fn convert<R, T>(rows: Vec<R>) -> Result<Vec<T>, StoreError>
where
    T: TryFrom<R, Error = StoreError>,
{
    rows.into_iter().map(T::try_from).collect()
}
