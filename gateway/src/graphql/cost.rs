//! Cost analysis before execution, in the manner of Apollo Router's demand control and the IBM
//! GraphQL Cost Directive specification: every object in the response costs 1, a field that
//! makes the backends do work of its own (a count, a URL, rendering) adds its weight, a root
//! mutation field costs [`MUTATION_WEIGHT`], and a list multiplies the cost of its selection by
//! its size: a connection's `edges` and `nodes` by the `first` of the field that returned it
//! (the default page size when omitted), `nodes(ids:)` by the number of ids, and every plain
//! list by its enforced maximum.
//!
//! The model is read from the schema's own SDL ([`super::sdl`]), so field types cannot drift
//! from what executes; what it adds by hand is the table of list sizes ([`list_size`]) and of
//! weights ([`field_weight`]). A test walks every list field of the schema and fails when one
//! has no size, so a new list cannot be added unbounded.
//!
//! Introspection does no backend work and is bounded by the schema itself, so it costs
//! nothing, except that nesting its lists more than [`MAX_INTROSPECTION_LISTS`] deep (the
//! "circular introspection" attack: `types { fields { type { fields { … } } } }`) is refused.
//!
//! The walk also notes which URLs the operation's `Memory` fields ask for (the download URL,
//! the `imageUrl` sizes: [`Estimate::file_urls`]), so the request's file loads sign exactly
//! those.
//!
//! Fragments are walked where they are spread. The walk visits at most [`MAX_VISITS`]
//! selections, so a document that spreads fragments into each other exponentially is refused
//! rather than walked.

use std::collections::HashMap;

use async_graphql::{
    Name, Variables,
    parser::types::{
        BaseType, DocumentOperations, ExecutableDocument, OperationDefinition, Selection,
        SelectionSet, Type, TypeKind, TypeSystemDefinition,
    },
};
use async_graphql_value::{ConstValue, Value};

use crate::graphql::{
    connection::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE},
    memory::{FileUrls, ImageSize},
};

/// The default most expensive document accepted. A page of 100 hangouts with their owners,
/// activities and first page of 20 memories with URLs costs about 9,500; three list fields
/// chained at the default page sizes (`activities { nodes { hangouts { nodes { activities
/// ... } } } }`) cost about 20,000.
pub const DEFAULT_MAX_COST: u64 = 12_000;

/// Weight of each root mutation field: a write and usually several backend calls.
pub const MUTATION_WEIGHT: u64 = 10;

/// Most activities one hangout carries (hangout-core enforces it).
pub const MAX_ACTIVITIES_PER_HANGOUT: u64 = 50;

/// Most ids one `nodes` call takes (the resolver enforces it).
pub const MAX_NODE_IDS: u64 = 100;

/// Most files in one upload batch (hangout-core enforces it), and so the most items of the
/// upload payloads' lists.
pub const MAX_UPLOAD_BATCH: u64 = 10;

/// Most headers a presigned upload asks for (content type, length, MD5, encryption).
const MAX_UPLOAD_HEADERS: u64 = 5;

/// Introspection lists nested deeper than this are refused. GraphiQL's introspection query
/// nests three (`types { fields { args } }`).
pub const MAX_INTROSPECTION_LISTS: usize = 3;

/// Selections walked at most for one document.
pub const MAX_VISITS: usize = 20_000;

/// How a list field's size is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ListSize {
    /// A fixed enforced maximum.
    Max(u64),
    /// The number of items of this argument, at most the given maximum.
    ArgumentLength(&'static str, u64),
    /// `edges` or `nodes` of a connection: the `first` of the field that returned it.
    PageOfParent,
}

/// The size rule of the list field `ty.field`; `None` for a list with none (a test forbids it).
fn list_size(ty: &str, field: &str) -> Option<ListSize> {
    Some(match (ty, field) {
        (_, "edges" | "nodes") if ty.ends_with("Connection") => ListSize::PageOfParent,
        ("Query", "nodes") => ListSize::ArgumentLength("ids", MAX_NODE_IDS),
        ("Hangout", "activities") => ListSize::Max(MAX_ACTIVITIES_PER_HANGOUT),
        ("CreateMemoryUploadsPayload", "uploads")
        | ("ConfirmMemoryUploadsPayload", "memories" | "failures") => {
            ListSize::Max(MAX_UPLOAD_BATCH)
        }
        ("MemoryUpload", "headers") => ListSize::Max(MAX_UPLOAD_HEADERS),
        _ => return None,
    })
}

/// Extra weight of fields whose value costs backend work beyond the object they sit on.
fn field_weight(ty: &str, field: &str) -> u64 {
    match (ty, field) {
        ("Mutation", _) => MUTATION_WEIGHT,
        (_, "totalCount")
        | ("Activity", "hangoutCount")
        | ("Memory", "downloadUrl" | "downloadUrlExpiresAt" | "imageUrl")
        | ("Hangout", "descriptionHtml") => 1,
        _ => 0,
    }
}

/// One field of the schema, as the walk needs it.
#[derive(Debug)]
struct FieldShape {
    /// The named type under any list and non-null wrappers.
    named: Name,
    /// Whether the field returns a list (of any depth; the schema has only one level).
    list: Option<ListSize>,
    /// Whether the named type is an object or interface (costs 1 per instance).
    composite: bool,
    /// A connection field sliced by `first`.
    paged: bool,
    weight: u64,
}

/// Why a document is refused before it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CostError {
    /// The estimate is over the limit.
    TooExpensive {
        estimated: u64,
        limit: u64,
        uses_variables: bool,
    },
    /// Introspection lists nested deeper than [`MAX_INTROSPECTION_LISTS`].
    CircularIntrospection,
    /// More than [`MAX_VISITS`] selections to walk (fragments spread into each other).
    TooLarge,
}

/// An estimate, with whether it depends on the request's variables (when it does not, it can
/// be cached with the document).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Estimate {
    pub cost: u64,
    pub uses_variables: bool,
    pub file_urls: FileUrls,
}

/// The schema's shape for costing, and the limit.
#[derive(Debug)]
pub struct CostModel {
    types: HashMap<Name, HashMap<Name, FieldShape>>,
    limit: u64,
}

impl CostModel {
    /// The model of the schema whose SDL is `sdl`, refusing documents above `limit`.
    ///
    /// # Panics
    /// When `sdl` does not parse: it is the schema's own export, so that is a bug.
    #[must_use]
    pub fn from_sdl(sdl: &str, limit: u64) -> Self {
        let document = async_graphql::parser::parse_schema(sdl).expect("the exported SDL parses");
        let mut composite = std::collections::HashSet::new();
        let mut defined = Vec::new();
        for definition in &document.definitions {
            let TypeSystemDefinition::Type(ty) = definition else {
                continue;
            };
            let ty = &ty.node;
            let fields = match &ty.kind {
                TypeKind::Object(object) => &object.fields,
                TypeKind::Interface(interface) => &interface.fields,
                TypeKind::Union(_) => {
                    composite.insert(ty.name.node.clone());
                    continue;
                }
                _ => continue,
            };
            composite.insert(ty.name.node.clone());
            defined.push((ty.name.node.clone(), fields));
        }
        let types = defined
            .into_iter()
            .map(|(type_name, fields)| {
                let shapes = fields
                    .iter()
                    .map(|field| {
                        let field = &field.node;
                        let (named, is_list) = unwrap_type(&field.ty.node);
                        let paged = named.ends_with("Connection")
                            && field
                                .arguments
                                .iter()
                                .any(|arg| arg.node.name.node == "first");
                        let shape = FieldShape {
                            composite: composite.contains(named),
                            named: named.clone(),
                            list: if is_list {
                                // An unsized list counts as one page at most; the test below
                                // keeps this from ever being used.
                                Some(
                                    list_size(&type_name, &field.name.node)
                                        .unwrap_or(ListSize::Max(u64::from(MAX_PAGE_SIZE))),
                                )
                            } else {
                                None
                            },
                            paged,
                            weight: field_weight(&type_name, &field.name.node),
                        };
                        (field.name.node.clone(), shape)
                    })
                    .collect();
                (type_name, shapes)
            })
            .collect();
        Self { types, limit }
    }

    /// The configured limit.
    #[must_use]
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The estimated cost of the operation of `document` that runs (by `operation_name`), given
    /// `variables`; `Ok(None)` when no operation is selected (validation reports that).
    ///
    /// # Errors
    /// [`CostError`] when the document must be refused.
    pub fn estimate(
        &self,
        document: &ExecutableDocument,
        operation_name: Option<&str>,
        variables: &Variables,
    ) -> Result<Option<Estimate>, CostError> {
        let operation = match (&document.operations, operation_name) {
            (DocumentOperations::Single(operation), _) => &operation.node,
            (DocumentOperations::Multiple(operations), Some(name)) => match operations.get(name) {
                Some(operation) => &operation.node,
                None => return Ok(None),
            },
            (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
                match operations.values().next() {
                    Some(operation) => &operation.node,
                    None => return Ok(None),
                }
            }
            (DocumentOperations::Multiple(_), None) => return Ok(None),
        };
        let root = match operation.ty {
            async_graphql::parser::types::OperationType::Query => "Query",
            async_graphql::parser::types::OperationType::Mutation => "Mutation",
            async_graphql::parser::types::OperationType::Subscription => "Subscription",
        };
        let mut walk = Walk {
            model: self,
            document,
            operation,
            variables,
            visits: 0,
            uses_variables: false,
            file_urls: FileUrls::NONE,
        };
        let cost = walk.set(root, &operation.selection_set.node, None, 0)?;
        if cost > self.limit {
            return Err(CostError::TooExpensive {
                estimated: cost,
                limit: self.limit,
                uses_variables: walk.uses_variables,
            });
        }
        Ok(Some(Estimate {
            cost,
            uses_variables: walk.uses_variables,
            file_urls: walk.file_urls,
        }))
    }
}

/// The named type under the wrappers of `ty`, and whether a list wraps it.
fn unwrap_type(ty: &Type) -> (&Name, bool) {
    match &ty.base {
        BaseType::Named(name) => (name, false),
        BaseType::List(inner) => (unwrap_type(inner).0, true),
    }
}

/// One walk over one operation.
struct Walk<'a> {
    model: &'a CostModel,
    document: &'a ExecutableDocument,
    operation: &'a OperationDefinition,
    variables: &'a Variables,
    visits: usize,
    uses_variables: bool,
    file_urls: FileUrls,
}

impl Walk<'_> {
    /// The cost of `set` selected on `ty`; `page` is the size of the connection `ty` is, if any;
    /// `introspection_lists` counts the introspection lists around it.
    fn set(
        &mut self,
        ty: &str,
        set: &SelectionSet,
        page: Option<u64>,
        introspection_lists: usize,
    ) -> Result<u64, CostError> {
        let mut total = 0_u64;
        for item in &set.items {
            self.visits += 1;
            if self.visits > MAX_VISITS {
                return Err(CostError::TooLarge);
            }
            let cost = match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    let name = field.name.node.as_str();
                    if name.starts_with("__") || ty.starts_with("__") {
                        self.introspection(name, &field.selection_set.node, introspection_lists)?
                    } else {
                        self.field(ty, field, page)?
                    }
                }
                Selection::InlineFragment(fragment) => {
                    let fragment = &fragment.node;
                    let on = fragment
                        .type_condition
                        .as_ref()
                        .map_or(ty, |condition| condition.node.on.node.as_str());
                    self.set(on, &fragment.selection_set.node, page, introspection_lists)?
                }
                Selection::FragmentSpread(spread) => {
                    // An unknown fragment is a validation error, reported after this.
                    match self.document.fragments.get(&spread.node.fragment_name.node) {
                        Some(fragment) => {
                            let fragment = &fragment.node;
                            let on = fragment.type_condition.node.on.node.as_str();
                            self.set(on, &fragment.selection_set.node, page, introspection_lists)?
                        }
                        None => 0,
                    }
                }
            };
            total = total.saturating_add(cost);
        }
        Ok(total)
    }

    fn field(
        &mut self,
        ty: &str,
        field: &async_graphql::parser::types::Field,
        page: Option<u64>,
    ) -> Result<u64, CostError> {
        // An unknown type or field is a validation error, reported after this.
        let model = self.model;
        let Some(shape) = model
            .types
            .get(ty)
            .and_then(|fields| fields.get(field.name.node.as_str()))
        else {
            return Ok(0);
        };
        if ty == "Memory" && field.name.node == "imageUrl" {
            self.file_urls = match self.image_size(field) {
                Some(size) => self.file_urls.with(size),
                None => self.file_urls.with_all_sizes(),
            };
        }
        if ty == "Memory"
            && matches!(
                field.name.node.as_str(),
                "downloadUrl" | "downloadUrlExpiresAt"
            )
        {
            self.file_urls = self.file_urls.with_downloads();
        }
        let own_page = shape.paged.then(|| self.first(field));
        let selection = if shape.composite {
            1_u64.saturating_add(self.set(&shape.named, &field.selection_set.node, own_page, 0)?)
        } else {
            0
        };
        let items = match shape.list {
            None => 1,
            Some(ListSize::Max(max)) => max,
            Some(ListSize::PageOfParent) => page.unwrap_or(u64::from(DEFAULT_PAGE_SIZE)),
            Some(ListSize::ArgumentLength(argument, max)) => {
                self.argument_length(field, argument).min(max)
            }
        };
        Ok(shape.weight.saturating_add(items.saturating_mul(selection)))
    }

    /// Introspection: free, but its lists may not nest too deep.
    fn introspection(
        &mut self,
        name: &str,
        set: &SelectionSet,
        lists: usize,
    ) -> Result<u64, CostError> {
        let is_list = matches!(
            name,
            "types"
                | "fields"
                | "args"
                | "inputFields"
                | "enumValues"
                | "interfaces"
                | "possibleTypes"
                | "directives"
                | "locations"
        );
        let lists = lists + usize::from(is_list);
        if lists > MAX_INTROSPECTION_LISTS {
            return Err(CostError::CircularIntrospection);
        }
        // Inside introspection every type is an introspection type; "__" marks it.
        self.set("__", set, None, lists)
    }

    /// The page size a connection field asks for: `first`, clamped to the maximum (a larger
    /// one is refused by the resolver), or the default.
    fn first(&mut self, field: &async_graphql::parser::types::Field) -> u64 {
        let first = field
            .get_argument("first")
            .and_then(|value| self.resolve(&value.node))
            .and_then(|value| match value {
                ConstValue::Number(number) => number.as_u64(),
                _ => None,
            });
        first.map_or(u64::from(DEFAULT_PAGE_SIZE), |first| {
            first.clamp(1, u64::from(MAX_PAGE_SIZE))
        })
    }

    /// The `size` an `imageUrl` field asks for: its default when omitted (also through an
    /// omitted variable), `None` when the value names no size (validation refuses that later).
    fn image_size(&mut self, field: &async_graphql::parser::types::Field) -> Option<ImageSize> {
        let Some(value) = field.get_argument("size") else {
            return Some(ImageSize::Preview);
        };
        match self.resolve(&value.node) {
            None => Some(ImageSize::Preview),
            Some(ConstValue::Enum(name)) => ImageSize::from_name(name.as_str()),
            Some(ConstValue::String(name)) => ImageSize::from_name(&name),
            Some(_) => None,
        }
    }

    /// How many items the list argument `name` holds (a single value counts as one).
    fn argument_length(&mut self, field: &async_graphql::parser::types::Field, name: &str) -> u64 {
        match field.get_argument(name).map(|value| &value.node) {
            None => 0,
            Some(Value::List(items)) => u64::try_from(items.len()).unwrap_or(u64::MAX),
            Some(value) => match self.resolve(value) {
                Some(ConstValue::List(items)) => u64::try_from(items.len()).unwrap_or(u64::MAX),
                Some(ConstValue::Null) | None => 0,
                Some(_) => 1,
            },
        }
    }

    /// An argument's value with its variable (or the variable's default) substituted.
    fn resolve(&mut self, value: &Value) -> Option<ConstValue> {
        match value {
            Value::Variable(name) => {
                self.uses_variables = true;
                self.variables.get(name).cloned().or_else(|| {
                    self.operation
                        .variable_definitions
                        .iter()
                        .find(|definition| definition.node.name.node == *name)
                        .and_then(|definition| definition.node.default_value.as_ref())
                        .map(|value| value.node.clone())
                })
            }
            other => other.clone().into_const(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> CostModel {
        CostModel::from_sdl(&crate::graphql::sdl(), DEFAULT_MAX_COST)
    }

    fn estimate(query: &str) -> Result<Option<Estimate>, CostError> {
        let document = async_graphql::parser::parse_query(query).expect("parses");
        model().estimate(&document, None, &Variables::default())
    }

    fn cost(query: &str) -> u64 {
        estimate(query)
            .expect("within the limit")
            .expect("one operation")
            .cost
    }

    #[test]
    fn every_list_of_the_schema_has_a_size() {
        let document = async_graphql::parser::parse_schema(crate::graphql::sdl()).expect("SDL");
        let mut unsized_lists = Vec::new();
        for definition in &document.definitions {
            let TypeSystemDefinition::Type(ty) = definition else {
                continue;
            };
            let (TypeKind::Object(async_graphql::parser::types::ObjectType { fields, .. })
            | TypeKind::Interface(async_graphql::parser::types::InterfaceType {
                fields, ..
            })) = &ty.node.kind
            else {
                continue;
            };
            for field in fields {
                let (_, is_list) = unwrap_type(&field.node.ty.node);
                if is_list && list_size(&ty.node.name.node, &field.node.name.node).is_none() {
                    unsized_lists.push(format!("{}.{}", ty.node.name.node, field.node.name.node));
                }
            }
        }
        assert!(
            unsized_lists.is_empty(),
            "lists without a size: {unsized_lists:?}"
        );
    }

    #[test]
    fn objects_cost_one_and_lists_multiply() {
        assert_eq!(cost("{ __typename }"), 0);
        assert_eq!(cost("{ me { id name } }"), 1);
        // The connection, then 20 activities by default.
        assert_eq!(cost("{ activities { nodes { id } } }"), 1 + 20);
        assert_eq!(
            cost("{ activities(first: 5) { totalCount edges { node { id } } } }"),
            1 + 1 + 5 * 2
        );
        assert_eq!(
            cost("{ hangouts(first: 100) { nodes { activities { id } } } }"),
            1 + 100 * (1 + MAX_ACTIVITIES_PER_HANGOUT)
        );
        assert_eq!(cost(r#"{ nodes(ids: ["a", "b", "c"]) { id } }"#), 3);
        assert_eq!(
            cost("mutation { signOut(input: {refreshToken: \"x\"}) { success } }"),
            11
        );
    }

    #[test]
    fn fragments_and_variables_are_followed() {
        let document = async_graphql::parser::parse_query(
            "query($n: Int, $ids: [ID!]!) { hangouts(first: $n) { ...H } nodes(ids: $ids) { id } } \
             fragment H on HangoutConnection { nodes { ... on Hangout { owner { id } } } }",
        )
        .expect("parses");
        let variables = Variables::from_json(serde_json::json!({ "n": 3, "ids": ["a", "b"] }));
        let estimate = model()
            .estimate(&document, None, &variables)
            .expect("allowed")
            .expect("an operation");
        assert_eq!(estimate.cost, 1 + 3 * 2 + 2);
        assert!(estimate.uses_variables);
        assert!(!estimate_of("{ me { id } }").uses_variables);
    }

    fn estimate_of(query: &str) -> Estimate {
        estimate(query).expect("allowed").expect("an operation")
    }

    #[test]
    fn realistic_pages_fit_and_chains_of_three_lists_do_not() {
        // The benchmark's page and detail, at the largest page.
        cost(
            "{ hangouts(first: 100) { totalCount pageInfo { hasNextPage endCursor } nodes { id \
             title date status owner { id name } activities { id name } memories(first: 20) { \
             totalCount nodes { id fileName contentType size downloadUrl } } } } }",
        );
        cost(
            "{ hangout(id: \"x\") { id title description date status memories(first: 24) { \
             totalCount nodes { id fileName contentType size downloadUrl downloadUrlExpiresAt } } } }",
        );
        for chain in [
            "{ activities { nodes { hangouts { nodes { activities { id } } } } } }",
            "{ activities { nodes { hangouts { nodes { activities { hangouts { nodes { id } } } } } } } }",
            "{ activities { nodes { hangouts { nodes { activities { hangouts { nodes { activities \
             { hangouts { nodes { activities { id } } } } } } } } } } } }",
        ] {
            assert!(
                matches!(estimate(chain), Err(CostError::TooExpensive { .. })),
                "{chain}"
            );
        }
    }

    #[test]
    fn graphiql_introspection_fits_and_circular_introspection_does_not() {
        let introspection = "{ __schema { queryType { name } types { kind name fields(includeDeprecated: true) \
             { name args { name type { kind name ofType { kind name } } } type { kind name } } \
             inputFields { name } enumValues { name } interfaces { name } possibleTypes { name } } \
             directives { name locations args { name } } } }";
        assert_eq!(cost(introspection), 0);
        assert_eq!(
            estimate(
                "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }"
            ),
            Err(CostError::CircularIntrospection)
        );
    }

    #[test]
    fn fragment_explosions_are_refused_without_walking_them() {
        let mut query = String::from("{ me { ...F0 } } fragment F0 on User { ...F1 ...F1 }");
        for level in 1..40 {
            let next = level + 1;
            query.push_str(&format!(
                " fragment F{level} on User {{ ...F{next} ...F{next} }}"
            ));
        }
        query.push_str(" fragment F40 on User { id }");
        assert_eq!(estimate(&query), Err(CostError::TooLarge));
    }

    #[test]
    fn the_walk_finds_the_urls_memories_ask_for() {
        use crate::graphql::memory::{FileUrls, ImageSize};
        let urls = |query: &str| {
            estimate(query)
                .expect("within the limit")
                .expect("one")
                .file_urls
        };
        let page = |memory: &str| {
            format!("{{ hangouts {{ nodes {{ memories {{ nodes {{ {memory} }} }} }} }} }}")
        };
        assert_eq!(urls(&page("id fileName")), FileUrls::NONE);
        assert_eq!(urls(&page("downloadUrl")), FileUrls::NONE.with_downloads());
        assert_eq!(
            urls(&page("imageUrl(size: THUMBNAIL) b: imageUrl")),
            FileUrls::NONE
                .with(ImageSize::Thumbnail)
                .with(ImageSize::Preview)
        );
        // Behind a fragment on Memory; an omitted variable leaves the argument's default.
        assert_eq!(
            urls(
                "query($s: ImageSize!) { node(id: \"x\") { ... on Memory { imageUrl(size: $s) downloadUrlExpiresAt } } }"
            ),
            FileUrls::NONE.with(ImageSize::Preview).with_downloads()
        );
    }
}
