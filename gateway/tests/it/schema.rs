//! The committed SDL is current, and the schema keeps every promise of the public contract.

use std::{collections::HashMap, path::PathBuf};

use async_graphql::parser::{
    parse_schema,
    types::{InputValueDefinition, TypeKind, TypeSystemDefinition},
};

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the gateway sits in the workspace")
        .to_owned()
}

#[test]
fn committed_schema_is_up_to_date() {
    let path = workspace_root().join("schema/schema.graphql");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == gateway::graphql::sdl(),
        "{} is stale: run `cargo xtask schema` and commit the result",
        path.display()
    );
}

/// Everything a type promises, as comparable strings: `field -> type`, `field(arg) -> type`,
/// enum values and implemented interfaces.
fn promises(sdl: &str) -> HashMap<String, HashMap<String, String>> {
    let document = parse_schema(sdl).expect("valid SDL");
    let mut types = HashMap::new();
    let arguments = |owner: &str, values: &[async_graphql::Positioned<InputValueDefinition>]| {
        values
            .iter()
            .map(|value| {
                (
                    format!("{owner}({})", value.node.name.node),
                    value.node.ty.node.to_string(),
                )
            })
            .collect::<Vec<_>>()
    };
    for definition in document.definitions {
        let TypeSystemDefinition::Type(definition) = definition else {
            continue;
        };
        let definition = definition.node;
        let mut members = HashMap::new();
        members.insert("<kind>".to_owned(), kind_name(&definition.kind).to_owned());
        match definition.kind {
            TypeKind::Object(object) => {
                for interface in object.implements {
                    members.insert(format!("implements {}", interface.node), String::new());
                }
                for field in object.fields {
                    let name = field.node.name.node.to_string();
                    members.extend(arguments(&name, &field.node.arguments));
                    members.insert(name, field.node.ty.node.to_string());
                }
            }
            TypeKind::Interface(interface) => {
                for field in interface.fields {
                    let name = field.node.name.node.to_string();
                    members.extend(arguments(&name, &field.node.arguments));
                    members.insert(name, field.node.ty.node.to_string());
                }
            }
            TypeKind::InputObject(input) => {
                members.extend(arguments("", &input.fields));
            }
            TypeKind::Enum(enumeration) => {
                for value in enumeration.values {
                    members.insert(format!("value {}", value.node.value.node), String::new());
                }
            }
            TypeKind::Union(union) => {
                for member in union.members {
                    members.insert(format!("member {}", member.node), String::new());
                }
            }
            TypeKind::Scalar => {}
        }
        types.insert(definition.name.node.to_string(), members);
    }
    types
}

fn kind_name(kind: &TypeKind) -> &'static str {
    match kind {
        TypeKind::Scalar => "scalar",
        TypeKind::Object(_) => "type",
        TypeKind::Interface(_) => "interface",
        TypeKind::Union(_) => "union",
        TypeKind::Enum(_) => "enum",
        TypeKind::InputObject(_) => "input",
    }
}

/// The problems of `schema` against `contract`: anything missing or changed, and new
/// required arguments or input fields (which would break existing clients).
fn breaking_changes(contract: &str, schema: &str) -> Vec<String> {
    let contract = promises(contract);
    let schema = promises(schema);
    let mut problems = Vec::new();
    for (type_name, members) in &contract {
        let Some(ours) = schema.get(type_name) else {
            problems.push(format!("type {type_name} is missing"));
            continue;
        };
        for (member, expected) in members {
            match ours.get(member) {
                None => problems.push(format!("{type_name}.{member} is missing")),
                Some(found) if found != expected => problems.push(format!(
                    "{type_name}.{member} is {found}, the contract says {expected}"
                )),
                Some(_) => {}
            }
        }
        for (member, found) in ours {
            // A required argument breaks clients only on a field they already call (an input
            // object's fields are `(name)`, of the type itself).
            let on_known_field = member
                .split_once('(')
                .is_some_and(|(field, _)| field.is_empty() || members.contains_key(field));
            if on_known_field && !members.contains_key(member) && found.ends_with('!') {
                problems.push(format!(
                    "{type_name}.{member} is new and required ({found}), which breaks clients"
                ));
            }
        }
    }
    problems.sort();
    problems
}

/// A contract file: `../shared/contract/<shared>` beside the checkout when present, else the
/// copy committed at `schema/<copy>` (which must then equal it).
fn contract_file(shared: &str, copy: &str) -> String {
    let original = workspace_root().join("../shared/contract").join(shared);
    let committed_path = workspace_root().join("schema").join(copy);
    let committed = std::fs::read_to_string(&committed_path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", committed_path.display()));
    if let Ok(original) = std::fs::read_to_string(&original) {
        assert_eq!(
            original, committed,
            "schema/{copy} differs from ../shared/contract/{shared}: copy it over"
        );
    }
    committed
}

/// The public contract, version 1.
fn contract() -> String {
    contract_file("schema.graphql", "contract.graphql")
}

#[test]
fn schema_keeps_the_public_contract() {
    let contract = contract();
    let problems = breaking_changes(&contract, &gateway::graphql::sdl());
    assert!(
        problems.is_empty(),
        "the schema breaks the contract:\n{}",
        problems.join("\n")
    );
}

/// Version 2 of the contract.
fn contract_v2() -> String {
    contract_file("v2.graphql", "contract-v2.graphql")
}

/// The parts of version 2 not built yet, as `Type` (the whole type) or `Type.member`. Each
/// issue that builds a part removes its lines; the test below fails for a line that names
/// nothing in the contract. Every part is built now.
const V2_NOT_BUILT: &[&str] = &[];

#[test]
fn schema_keeps_the_built_parts_of_contract_version_2() {
    let contract = contract_v2();
    let known = promises(&contract);
    for entry in V2_NOT_BUILT {
        let exists = match entry.split_once('.') {
            None => known.contains_key(*entry),
            Some((type_name, member)) => known
                .get(type_name)
                .is_some_and(|members| members.contains_key(member)),
        };
        assert!(
            exists,
            "V2_NOT_BUILT names {entry}, which version 2 does not have"
        );
    }
    let problems: Vec<String> = breaking_changes(&contract, &gateway::graphql::sdl())
        .into_iter()
        .filter(|problem| {
            !V2_NOT_BUILT.iter().any(|entry| {
                problem == &format!("type {entry} is missing")
                    || problem.starts_with(&format!("{entry} "))
            })
        })
        .collect();
    assert!(
        problems.is_empty(),
        "the schema breaks the built parts of contract version 2:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_contract_check_notices_breaking_changes() {
    let contract = "type Query { a(x: Int): String! b: [ID!]! }\nenum E { ONE TWO }";
    assert!(breaking_changes(contract, contract).is_empty());
    let changed = "type Query { a(x: Int, y: Int!): String b: [ID!]! }\nenum E { ONE }";
    assert_eq!(
        breaking_changes(contract, changed),
        vec![
            "E.value TWO is missing".to_owned(),
            "Query.a is String, the contract says String!".to_owned(),
            "Query.a(y) is new and required (Int!), which breaks clients".to_owned(),
        ]
    );
}
