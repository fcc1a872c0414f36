//! Objects resolved without a future per field.
//!
//! async-graphql resolves every field of an object as a boxed future polled through a
//! `FuturesUnordered`, which is most of the gateway's CPU on a page of plain fields (a page of
//! 20 hangouts has about 700 of them). Most fields of a `Memory`, an `Activity` or a `User` are
//! already in memory when the object is resolved, so [`Ready`] and [`ReadyList`] build the
//! object's value in one synchronous pass when every selected field is one of those, and hand
//! the object to async-graphql's own resolver otherwise. The schema is unchanged: the wrappers
//! register and name the type they wrap.
//!
//! Only what async-graphql itself would produce is produced: a selection this pass does not
//! understand (a field that needs loading, a custom directive, a fragment on a union) sends the
//! whole object the ordinary way, so errors, paths and fragments keep async-graphql's
//! semantics. `@skip` and `@include` are applied by async-graphql before execution.
//!
//! The pass resolves no field through async-graphql's extensions; the schema has none (see
//! `AppSchema`'s builder), and one added later would not see the fields answered here.

use std::{borrow::Cow, ops::Deref, sync::Arc};

use async_graphql::{
    ContextSelectionSet, Name, OutputType, Positioned, ScalarType, ServerResult, Value,
    indexmap::IndexMap,
    parser::types::{Field, Selection, SelectionSet},
    registry::Registry,
};

/// An object type with fields that can be answered from memory.
pub trait ReadyFields: OutputType {
    /// The value of `field` (a field of this type, neither `__typename` nor aliased away) when
    /// it needs nothing awaited: what the object's async resolver would return for it. `None`
    /// sends the whole object through that resolver. A field with a guard (`#[graphql(guard)]`)
    /// or any check of the caller must answer `None`: this pass runs no guard.
    fn ready_field(&self, field: &Field) -> Option<Value>;
}

/// A scalar's value, as async-graphql writes it.
pub fn scalar<T: ScalarType>(value: &T) -> Value {
    value.to_value()
}

/// A nullable scalar's value: `null` when absent.
pub fn optional<T: ScalarType>(value: Option<&T>) -> Value {
    value.map_or(Value::Null, ScalarType::to_value)
}

/// One object, resolved in one pass when it can be.
pub struct Ready<P>(pub P);

/// A list of objects, resolved in one pass when every one of them can be.
pub struct ReadyList<P>(pub Vec<P>);

impl<T> ReadyList<Shared<T>> {
    /// The items of a list shared with a loader's cache, without copying them.
    pub fn shared(list: &Arc<Vec<T>>) -> Self {
        Self(
            (0..list.len())
                .map(|index| Shared {
                    list: Arc::clone(list),
                    index,
                })
                .collect(),
        )
    }
}

/// One item of a shared list.
pub struct Shared<T> {
    list: Arc<Vec<T>>,
    index: usize,
}

impl<T> Deref for Shared<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.list[self.index]
    }
}

impl<P> OutputType for Ready<P>
where
    P: Deref + Send + Sync,
    P::Target: ReadyFields,
{
    fn type_name() -> Cow<'static, str> {
        <P::Target as OutputType>::type_name()
    }

    fn qualified_type_name() -> String {
        <P::Target as OutputType>::qualified_type_name()
    }

    fn introspection_type_name(&self) -> Cow<'static, str> {
        self.0.introspection_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        <P::Target as OutputType>::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        match object_value(&*self.0, ctx) {
            Some(value) => Ok(value),
            None => self.0.resolve(ctx, field).await,
        }
    }
}

impl<P> OutputType for ReadyList<P>
where
    P: Deref + Send + Sync,
    P::Target: ReadyFields,
{
    fn type_name() -> Cow<'static, str> {
        <Vec<Ready<P>> as OutputType>::type_name()
    }

    fn qualified_type_name() -> String {
        <Vec<Ready<P>> as OutputType>::qualified_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        <Vec<Ready<P>> as OutputType>::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        let values: Option<Vec<Value>> = self
            .0
            .iter()
            .map(|item| object_value(&**item, ctx))
            .collect();
        match values {
            Some(values) => Ok(Value::List(values)),
            None => {
                let items: Vec<Ready<&P::Target>> =
                    self.0.iter().map(|item| Ready(&**item)).collect();
                items.resolve(ctx, field).await
            }
        }
    }
}

/// The object's value for the selection set of `ctx`, or `None` when some selection needs
/// async-graphql's resolver.
fn object_value<T: ReadyFields + ?Sized>(
    object: &T,
    ctx: &ContextSelectionSet<'_>,
) -> Option<Value> {
    let mut fields = IndexMap::with_capacity(ctx.item.node.items.len());
    collect(object, ctx, &ctx.item.node, &mut fields)?;
    // async-graphql answers an object with no field at all as null; leave that case to it.
    (!fields.is_empty()).then_some(Value::Object(fields))
}

fn collect<T: ReadyFields + ?Sized>(
    object: &T,
    ctx: &ContextSelectionSet<'_>,
    selection_set: &SelectionSet,
    fields: &mut IndexMap<Name, Value>,
) -> Option<()> {
    for selection in &selection_set.items {
        match &selection.node {
            Selection::Field(field) => {
                let field = &field.node;
                if !field.directives.is_empty() {
                    return None;
                }
                let value = if field.name.node == "__typename" {
                    Value::String(object.introspection_type_name().into_owned())
                } else {
                    object.ready_field(field)?
                };
                // A key selected twice keeps its first place and its first value, as
                // async-graphql's merge does (validation lets `v: name ... on User { v: email }`
                // through, since the two are under different type conditions).
                fields
                    .entry(field.response_key().node.clone())
                    .or_insert(value);
            }
            Selection::FragmentSpread(spread) => {
                if !spread.node.directives.is_empty() {
                    return None;
                }
                let fragment = ctx
                    .query_env
                    .fragments
                    .get(&spread.node.fragment_name.node)?;
                if !applies::<T>(ctx, &fragment.node.type_condition.node.on.node) {
                    return None;
                }
                collect(object, ctx, &fragment.node.selection_set.node, fields)?;
            }
            Selection::InlineFragment(fragment) => {
                if !fragment.node.directives.is_empty() {
                    return None;
                }
                if let Some(condition) = &fragment.node.type_condition
                    && !applies::<T>(ctx, &condition.node.on.node)
                {
                    return None;
                }
                collect(object, ctx, &fragment.node.selection_set.node, fields)?;
            }
        }
    }
    Some(())
}

/// Whether a fragment on `condition` applies to `T`: the type itself or an interface it
/// implements. Anything else (a union) is left to async-graphql.
fn applies<T: OutputType + ?Sized>(ctx: &ContextSelectionSet<'_>, condition: &str) -> bool {
    let name = T::type_name();
    name == condition
        || ctx
            .schema_env
            .registry
            .implements
            .get(name.as_ref())
            .is_some_and(|interfaces| interfaces.contains(condition))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};

    use super::*;
    use crate::graphql::{
        activity::Activity,
        hangout::{Hangout, HangoutStatus},
        memory::{Memory, MemoryStatus, PrefetchedFile},
        node::Node,
        scalars::DateTime,
        user::User,
    };

    fn when() -> DateTime {
        DateTime(time::OffsetDateTime::from_unix_timestamp(1_795_000_000).expect("instant"))
    }

    fn file() -> proto::file::v1::File {
        use proto::file::v1 as file_pb;
        file_pb::File {
            id: "f1".into(),
            download_url: "https://s3.test/bucket/f1?X-Amz-Signature=abc".into(),
            download_url_expires_at: Some(prost_types::Timestamp {
                seconds: 1_790_000_000,
                nanos: 0,
            }),
            processing: file_pb::Processing::Ready as i32,
            width: 4000,
            height: 3000,
            taken_at: Some(prost_types::Timestamp {
                seconds: 1_720_000_000,
                nanos: 0,
            }),
            images: [file_pb::ImageSize::Thumbnail, file_pb::ImageSize::Full]
                .into_iter()
                .map(|size| file_pb::Image {
                    size: size as i32,
                    url: format!("https://s3.test/bucket/f1/{}", size as i32),
                    expires_at: None,
                })
                .collect(),
            ..Default::default()
        }
    }

    fn memory(prefetched: PrefetchedFile) -> Memory {
        Memory {
            id: "0190c4c1-0000-7000-8000-000000000001".into(),
            hangout_id: "0190c4c1-0000-7000-8000-000000000002".into(),
            uploaded_by: "0190c4c1-0000-7000-8000-000000000003".into(),
            file_name: "beach \"day\".jpg".into(),
            content_type: "image/jpeg".into(),
            size: 123_456,
            status: MemoryStatus::Uploaded,
            file_id: "f1".into(),
            created_at: when(),
            prefetched_file: prefetched,
        }
    }

    /// Answers `which` differently by path, to show which path answered.
    struct Probe;

    #[Object]
    impl Probe {
        async fn which(&self) -> &str {
            "resolver"
        }
        async fn slow(&self) -> i32 {
            1
        }
    }

    impl ReadyFields for Probe {
        fn ready_field(&self, field: &Field) -> Option<Value> {
            (field.name.node == "which").then(|| Value::String("ready".into()))
        }
    }

    struct Root {
        memories: Vec<Memory>,
        activities: Arc<Vec<Activity>>,
        user: Arc<User>,
        hangout: Hangout,
    }

    /// Each type twice: through async-graphql's resolver, and through the ready pass.
    #[Object]
    impl Root {
        async fn plain_memories(&self) -> Vec<&Memory> {
            self.memories.iter().collect()
        }
        async fn ready_memories(&self) -> ReadyList<&Memory> {
            ReadyList(self.memories.iter().collect())
        }
        async fn plain_memory(&self) -> &Memory {
            &self.memories[0]
        }
        async fn ready_memory(&self) -> Ready<&Memory> {
            Ready(&self.memories[0])
        }
        async fn plain_activities(&self) -> &[Activity] {
            &self.activities
        }
        async fn ready_activities(&self) -> ReadyList<Shared<Activity>> {
            ReadyList::shared(&self.activities)
        }
        async fn plain_user(&self) -> Arc<User> {
            Arc::clone(&self.user)
        }
        async fn ready_user(&self) -> Ready<Arc<User>> {
            Ready(Arc::clone(&self.user))
        }
        async fn plain_hangout(&self) -> &Hangout {
            &self.hangout
        }
        async fn ready_hangout(&self) -> Ready<&Hangout> {
            Ready(&self.hangout)
        }
        async fn node(&self) -> Option<Node> {
            None
        }
        async fn probe(&self) -> Ready<Box<Probe>> {
            Ready(Box::new(Probe))
        }
        async fn probes(&self) -> ReadyList<Box<Probe>> {
            ReadyList(vec![Box::new(Probe), Box::new(Probe)])
        }
    }

    fn schema(memories: Vec<Memory>) -> Schema<Root, EmptyMutation, EmptySubscription> {
        let root = Root {
            memories,
            activities: Arc::new(vec![
                Activity {
                    id: "0190c4c1-0000-7000-8000-000000000010".into(),
                    name: "Hiking".into(),
                    hangout_count: Some(3),
                    created_at: when(),
                },
                Activity {
                    id: "0190c4c1-0000-7000-8000-000000000011".into(),
                    name: "Board games".into(),
                    hangout_count: Some(0),
                    created_at: when(),
                },
            ]),
            user: Arc::new(User {
                id: "0190c4c1-0000-7000-8000-000000000003".into(),
                name: "Ada".into(),
                email: "ada@example.com".into(),
                created_at: when(),
            }),
            hangout: Hangout {
                id: "0190c4c1-0000-7000-8000-000000000002".into(),
                owner_id: "0190c4c1-0000-7000-8000-000000000003".into(),
                title: "Beach".into(),
                description: None,
                date: when(),
                status: HangoutStatus::Confirmed,
                created_at: when(),
                updated_at: when(),
                viewer_role: crate::graphql::membership::HangoutRole::CoHost,
                viewer_rsvp: crate::graphql::membership::RsvpStatus::Maybe,
            },
        };
        Schema::new(root, EmptyMutation, EmptySubscription)
    }

    /// Runs `{ plain<field> <selection> ready<field> <selection> }` and returns both answers
    /// (data and errors, as JSON) for comparison.
    async fn both(
        schema: &Schema<Root, EmptyMutation, EmptySubscription>,
        field: &str,
        selection: &str,
        fragments: &str,
    ) -> (serde_json::Value, serde_json::Value) {
        let run = |prefix: &str| {
            let query = format!("{{ x: {prefix}{field} {selection} }} {fragments}");
            async move {
                let response = schema.execute(query).await;
                let errors: Vec<String> = response
                    .errors
                    .iter()
                    .map(|error| format!("{} {:?}", error.message, error.path))
                    .collect();
                serde_json::json!({
                    "data": serde_json::to_string(&response.data).expect("json"),
                    "errors": errors,
                })
            }
        };
        (run("plain").await, run("ready").await)
    }

    const MEMORY_FIELDS: &str = "{ __typename id fileName contentType size status createdAt \
        downloadUrl downloadUrlExpiresAt name: fileName id ... on Node { id } ...M \
        ... { size } processing width height takenAt imageUrl t: imageUrl(size: THUMBNAIL) \
        f: imageUrl(size: FULL) }";
    const MEMORY_FRAGMENT: &str = "fragment M on Memory { contentType alias: status }";

    /// The fields of `type_name` that take no required argument, read from the schema's own
    /// introspection so that a field added to a wrapped type is compared without editing this
    /// test: its leaves (scalars and enums) as they are, and its other fields with
    /// `{ __typename }`.
    async fn every_field(
        schema: &Schema<Root, EmptyMutation, EmptySubscription>,
        type_name: &str,
    ) -> (String, String) {
        let query = format!(
            "{{ __type(name: \"{type_name}\") {{ fields {{ name args {{ defaultValue type {{ kind }} }} \
             type {{ kind ofType {{ kind ofType {{ kind ofType {{ kind }} }} }} }} }} }} }}"
        );
        let response = schema.execute(query).await;
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        let data = response.data.into_json().expect("json");
        let fields = data["__type"]["fields"].as_array().expect("fields").clone();
        assert!(!fields.is_empty(), "{type_name} has no fields");
        let (mut leaves, mut objects) = (Vec::new(), Vec::new());
        for field in fields {
            let optional_args = field["args"]
                .as_array()
                .expect("args")
                .iter()
                .all(|arg| arg["type"]["kind"] != "NON_NULL" || !arg["defaultValue"].is_null());
            if !optional_args {
                continue;
            }
            let mut ty = &field["type"];
            while ty["kind"] == "NON_NULL" || ty["kind"] == "LIST" {
                ty = &ty["ofType"];
            }
            let name = field["name"].as_str().expect("name").to_owned();
            match ty["kind"].as_str() {
                Some("SCALAR" | "ENUM") => leaves.push(name),
                _ => objects.push(format!("{name} {{ __typename }}")),
            }
        }
        (
            format!("{{ {} }}", leaves.join(" ")),
            format!("{{ id {} }}", objects.join(" ")),
        )
    }

    /// The fields of the real schema's `Ready`-wrapped types: each root pair of [`Root`]
    /// (`plain<field>` and `ready<field>`) and the type it answers.
    const WRAPPED: [(&str, &str); 5] = [
        ("Memories", "Memory"),
        ("Memory", "Memory"),
        ("Activities", "Activity"),
        ("User", "User"),
        ("Hangout", "Hangout"),
    ];

    #[tokio::test]
    async fn every_field_of_a_wrapped_type_answers_as_its_resolver() {
        let schema = schema(vec![
            memory(PrefetchedFile::Fetched(Some(Arc::new(file())))),
            memory(PrefetchedFile::Fetched(None)),
            memory(PrefetchedFile::Unavailable),
            memory(PrefetchedFile::NotFetched),
        ]);
        for (field, type_name) in WRAPPED {
            let (leaves, objects) = every_field(&schema, type_name).await;
            for selection in [leaves, objects] {
                let (plain, ready) = both(&schema, field, &selection, "").await;
                assert_eq!(plain, ready, "{field} {selection}");
            }
        }
    }

    #[tokio::test]
    async fn ready_objects_answer_exactly_as_their_resolvers() {
        let prefetched = PrefetchedFile::Fetched(Some(Arc::new(file())));
        let schema = schema(vec![
            memory(prefetched),
            memory(PrefetchedFile::Fetched(None)),
            memory(PrefetchedFile::Unavailable),
        ]);
        for (field, selection, fragments) in [
            ("Memories", MEMORY_FIELDS, MEMORY_FRAGMENT),
            ("Memory", MEMORY_FIELDS, MEMORY_FRAGMENT),
            (
                "Activities",
                "{ id name hangoutCount createdAt __typename ... on Node { id } }",
                "",
            ),
            ("User", "{ id name email createdAt n: name }", ""),
            // One key under two type conditions: the first value stays.
            (
                "User",
                "{ v: name ... on User { v: email } id ... on Node { v: id } }",
                "",
            ),
            (
                "Hangout",
                "{ id title description date status createdAt updatedAt viewerRole viewerRsvp __typename }",
                "",
            ),
        ] {
            let (plain, ready) = both(&schema, field, selection, fragments).await;
            assert_eq!(plain, ready, "{field}");
            assert!(
                plain["errors"].as_array().is_some_and(Vec::is_empty),
                "{plain}"
            );
        }
    }

    #[tokio::test]
    async fn plain_fields_take_the_ready_pass_and_others_the_resolver() {
        let schema = schema(Vec::new());
        let answer = |query: &'static str| {
            let schema = schema.clone();
            async move {
                let response = schema.execute(query).await;
                assert!(response.errors.is_empty(), "{:?}", response.errors);
                serde_json::to_value(&response.data).expect("json")
            }
        };
        assert_eq!(
            answer("{ probe { which w: which ... on Probe { which } ...P } } fragment P on Probe { __typename }").await,
            serde_json::json!({ "probe": { "which": "ready", "w": "ready", "__typename": "Probe" } })
        );
        assert_eq!(
            answer("{ probes { which } }").await,
            serde_json::json!({ "probes": [{ "which": "ready" }, { "which": "ready" }] })
        );
        assert_eq!(
            answer("{ probe { which slow } probes { which ... { slow } } }").await,
            serde_json::json!({
                "probe": { "which": "resolver", "slow": 1 },
                "probes": [{ "which": "resolver", "slow": 1 }, { "which": "resolver", "slow": 1 }],
            })
        );
    }

    #[tokio::test]
    async fn a_field_that_must_be_loaded_sends_the_object_the_ordinary_way() {
        // Not prefetched: the URL would be loaded through the request's loader, which this
        // schema lacks, so both answers are the same error at the same path.
        let schema = schema(vec![
            memory(PrefetchedFile::Fetched(None)),
            memory(PrefetchedFile::NotFetched),
        ]);
        for (field, selection) in [
            ("Memories", "{ id downloadUrl }"),
            ("Memory", "{ id hangout { id } }"),
            ("Hangout", "{ id owner { id } }"),
        ] {
            let (plain, ready) = both(&schema, field, selection, "").await;
            assert_eq!(plain, ready, "{field}");
            assert!(
                plain["errors"]
                    .as_array()
                    .is_some_and(|errors| !errors.is_empty()),
                "{plain}"
            );
        }
    }
}
