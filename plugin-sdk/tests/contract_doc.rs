//! `docs/contract.md` is the contract (`plugin-sdk/wit/*.wit`) rendered for
//! people: every interface, function and type with its doc comment, and what
//! each becomes in Rust (wit-bindgen), Python (componentize-py) and
//! JavaScript (ComponentizeJS). The page is generated here from the WIT, so
//! it cannot drift: this test fails when the page is not what the WIT gives,
//! and `TRIBUTARY_BLESS=1` rewrites it.

use std::fmt::Write as _;
use std::path::Path;

use heck::{ToLowerCamelCase, ToShoutySnakeCase, ToSnakeCase, ToUpperCamelCase};
use wit_parser::{Docs, Function, Interface, Resolve, Type, TypeDef, TypeDefKind, WorldItem};

const REGENERATE: &str = "TRIBUTARY_BLESS=1 cargo test -p plugin-sdk --test contract_doc";

#[test]
fn docs_contract_md_is_the_wit_rendered() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let page = render(&root.join("plugin-sdk/wit"));
    let path = root.join("docs/contract.md");
    if std::env::var_os("TRIBUTARY_BLESS").is_some() {
        std::fs::write(&path, &page).expect("write docs/contract.md");
        return;
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        current == page,
        "docs/contract.md is not the rendering of plugin-sdk/wit (the WIT or the renderer changed, or the page was edited by hand); regenerate it with `{REGENERATE}` and commit it"
    );
}

/// The whole page.
fn render(wit: &Path) -> String {
    let mut resolve = Resolve::default();
    let (package, _) = resolve.push_path(wit).expect("the contract's WIT parses");
    let pkg = &resolve.packages[package];
    let mut out = String::new();
    let w = &mut out;
    writeln!(
        w,
        "<!-- Generated from plugin-sdk/wit by plugin-sdk/tests/contract_doc.rs: do not edit.\n     After a change to the WIT: {REGENERATE} -->\n"
    )
    .unwrap();
    writeln!(w, "# The connector contract: `{}`\n", pkg.name).unwrap();
    para(w, &pkg.docs);
    writeln!(
        w,
        "The source is [`plugin-sdk/wit/connector.wit`](../plugin-sdk/wit/connector.wit). \
         Every name below is given as the WIT spells it, then as a plugin sees it in Rust \
         (`plugin-sdk`, wit-bindgen), Python (`plugin-sdk-python`, componentize-py) and \
         JavaScript (`plugin-sdk-js`, ComponentizeJS). The rules behind those names, how errors \
         are classified, how ids are streamed and what the host grants are in \
         [contract-guide.md](contract-guide.md).\n"
    )
    .unwrap();
    for world in pkg.worlds.values().map(|&id| &resolve.worlds[id]) {
        writeln!(w, "## World `{}`\n", world.name).unwrap();
        para(w, &world.docs);
        for (what, items) in [("imports", &world.imports), ("exports", &world.exports)] {
            let names: Vec<String> = items
                .iter()
                .map(|(key, item)| match item {
                    WorldItem::Interface { .. } => format!("`{}`", resolve.name_world_key(key)),
                    other => panic!("the world {what} a {other:?}: render it in {}", file!()),
                })
                .collect();
            writeln!(w, "- {what} {}", names.join(", ")).unwrap();
        }
        writeln!(w).unwrap();
    }
    for &id in pkg.interfaces.values() {
        interface(w, &resolve, &resolve.interfaces[id]);
    }
    out
}

fn interface(w: &mut String, resolve: &Resolve, iface: &Interface) {
    let name = iface.name.as_deref().expect("named interfaces only");
    writeln!(w, "## Interface `{name}`\n").unwrap();
    para(w, &iface.docs);
    // `use`d names are rendered where they are declared.
    for def in iface
        .types
        .values()
        .map(|&id| &resolve.types[id])
        .filter(|def| !matches!(def.kind, TypeDefKind::Type(_)))
    {
        type_def(w, resolve, def);
    }
    for func in iface.functions.values() {
        function(w, resolve, name, func);
    }
}

fn type_def(w: &mut String, resolve: &Resolve, def: &TypeDef) {
    let wit_name = def.name.as_deref().expect("named types only");
    let rust = wit_name.to_upper_camel_case();
    let (keyword, header, rows): (&str, &str, Vec<String>) = match &def.kind {
        TypeDefKind::Record(r) => (
            "record",
            "| field | WIT | Rust | Python | JavaScript | meaning |",
            r.fields
                .iter()
                .map(|f| {
                    format!(
                        "| `{}` | {} | {} | {} | {} | {} |",
                        f.name,
                        code(&wit_type(resolve, &f.ty)),
                        code(&format!(
                            "{}: {}",
                            f.name.to_snake_case(),
                            rust_type(resolve, &f.ty)
                        )),
                        code(&format!(
                            "{}: {}",
                            py_name(&f.name),
                            py_type(resolve, &f.ty)
                        )),
                        code(&format!(
                            "{}: {}",
                            f.name.to_lower_camel_case(),
                            js_type(resolve, &f.ty)
                        )),
                        cell(&f.docs)
                    )
                })
                .collect(),
        ),
        TypeDefKind::Enum(e) => (
            "enum",
            "| case | Rust | Python | JavaScript | meaning |",
            named_rows(e.cases.iter().map(|c| (&c.name, &c.docs)), |n| {
                [
                    format!("{rust}::{}", n.to_upper_camel_case()),
                    format!("{rust}.{}", n.to_shouty_snake_case()),
                    format!("'{n}'"),
                ]
            }),
        ),
        TypeDefKind::Flags(f) => (
            "flags",
            "| flag | Rust | Python | JavaScript | meaning |",
            named_rows(f.flags.iter().map(|c| (&c.name, &c.docs)), |n| {
                let flag = n.to_shouty_snake_case();
                [
                    format!("{rust}::{flag}"),
                    format!("{rust}.{flag}"),
                    format!("{{ {}: true }}", n.to_lower_camel_case()),
                ]
            }),
        ),
        TypeDefKind::Variant(v) => (
            "variant",
            "| case | payload | Rust | Python | JavaScript | meaning |",
            v.cases
                .iter()
                .map(|c| {
                    let case = c.name.to_upper_camel_case();
                    let (payload, rs, py, js) = match &c.ty {
                        Some(ty) => (
                            code(&wit_type(resolve, ty)),
                            format!("{rust}::{case}({})", rust_type(resolve, ty)),
                            format!("{rust}_{case}(value: {})", py_type(resolve, ty)),
                            format!("{{ tag: '{}', val: {} }}", c.name, js_type(resolve, ty)),
                        ),
                        None => (
                            String::new(),
                            format!("{rust}::{case}"),
                            format!("{rust}_{case}()"),
                            format!("{{ tag: '{}' }}", c.name),
                        ),
                    };
                    format!(
                        "| `{}` | {payload} | {} | {} | {} | {} |",
                        c.name,
                        code(&rs),
                        code(&py),
                        code(&js),
                        cell(&c.docs)
                    )
                })
                .collect(),
        ),
        other => panic!(
            "the contract declares a {other:?}, which this page does not render yet: add it to {}",
            file!()
        ),
    };
    writeln!(w, "### {keyword} `{wit_name}`\n").unwrap();
    para(w, &def.docs);
    let js = match keyword {
        "record" => "an object",
        "enum" => "a string",
        "flags" => "an object of booleans",
        _ => "an object `{ tag, val }`",
    };
    writeln!(
        w,
        "Rust `plugin_sdk::{rust}`, Python `tributary_connector_types.{rust}`, JavaScript {js}.\n\n{header}\n{}",
        header_rule(header)
    )
    .unwrap();
    for row in rows {
        writeln!(w, "{row}").unwrap();
    }
    writeln!(w).unwrap();
}

/// Where each language finds the functions of `iface`: the exports are
/// methods the plugin implements, the imports functions it calls.
fn function_homes(iface: &str) -> [String; 3] {
    if iface == "plugin" {
        [
            "methods of the `Guest` trait (the SDK's `Connector` wraps them)".into(),
            "methods of a subclass of `wit_world.exports.Plugin`".into(),
            "methods of the exported object `plugin`".into(),
        ]
    } else {
        [
            format!("functions of `tributary::connector::{iface}`"),
            format!("functions of the module `wit_world.imports.{iface}`"),
            format!("functions imported from `'tributary:connector/{iface}@1.0.0'`"),
        ]
    }
}

fn function(w: &mut String, resolve: &Resolve, iface: &str, func: &Function) {
    let export = iface == "plugin";
    let params = |spell: &dyn Fn(&Type) -> String, case: fn(&str) -> String| {
        func.params
            .iter()
            .map(|p| format!("{}: {}", case(&p.name), spell(&p.ty)))
            .collect::<Vec<_>>()
    };
    let (ok, err) = match func.result {
        Some(t) => ok_and_err(resolve, &t),
        None => (None, None),
    };
    let returns = |spell: &dyn Fn(&Type) -> String, none: &str| {
        ok.as_ref().map_or_else(|| none.to_owned(), spell)
    };
    let err = err.map(|e| {
        [
            format!("returns `Err({})`", rust_type(resolve, &e)),
            format!("raises `Err({})`", py_type(resolve, &e)),
            format!("throws the `{}` object", js_type(resolve, &e)),
        ]
    });

    // Rust: imports borrow their strings and lists.
    let rust_param = |t: &Type| match (t, named_or_kind(resolve, t)) {
        (Type::String, _) if !export => "&str".to_owned(),
        (_, Some(TypeDefKind::List(item))) if !export => format!("&[{}]", rust_type(resolve, item)),
        _ => rust_type(resolve, t),
    };
    let rust_result = func
        .result
        .map(|t| format!(" -> {}", rust_type(resolve, &t)))
        .unwrap_or_default();
    let rust = format!(
        "fn {}({}){rust_result}",
        func.name.to_snake_case(),
        params(&rust_param, |n| n.to_snake_case()).join(", ")
    );
    let mut py_params = params(&|t| py_type(resolve, t), py_name);
    if export {
        py_params.insert(0, "self".into());
    }
    let py = format!(
        "def {}({}) -> {}",
        func.name.to_snake_case(),
        py_params.join(", "),
        returns(&|t| py_type(resolve, t), "None")
    );
    let js = format!(
        "{}({}): {}",
        func.name.to_lower_camel_case(),
        params(&|t| js_type(resolve, t), |n| n.to_lower_camel_case()).join(", "),
        returns(&|t| js_type(resolve, t), "void")
    );

    writeln!(w, "### `{}`\n", func.name).unwrap();
    para(w, &func.docs);
    let wit_params = params(&|t| wit_type(resolve, t), str::to_owned).join(", ");
    let wit_result = func
        .result
        .map(|t| format!(" -> {}", wit_type(resolve, &t)))
        .unwrap_or_default();
    writeln!(
        w,
        "```wit\n{}: func({wit_params}){wit_result};\n```\n",
        func.name
    )
    .unwrap();
    let homes = function_homes(iface);
    match &err {
        Some(_) => writeln!(w, "| | signature | on error |\n| --- | --- | --- |").unwrap(),
        None => writeln!(w, "| | signature |\n| --- | --- |").unwrap(),
    }
    for (i, (language, signature)) in [("Rust", rust), ("Python", py), ("JavaScript", js)]
        .into_iter()
        .enumerate()
    {
        let on_error = err
            .as_ref()
            .map(|e| format!(" {} |", e[i]))
            .unwrap_or_default();
        writeln!(
            w,
            "| {language}, {} | {} |{on_error}",
            homes[i],
            code(&signature)
        )
        .unwrap();
    }
    writeln!(w).unwrap();
}

/// The `ok` and `err` of a `result`, or the type itself as `ok`.
fn ok_and_err(resolve: &Resolve, ty: &Type) -> (Option<Type>, Option<Type>) {
    match named_or_kind(resolve, ty) {
        Some(TypeDefKind::Result(r)) => (r.ok, r.err),
        _ => (Some(*ty), None),
    }
}

/// The structure of an anonymous type (`option<T>`, `list<T>`...), or None
/// for a primitive or a named type (rendered by its name).
fn named_or_kind<'a>(resolve: &'a Resolve, ty: &Type) -> Option<&'a TypeDefKind> {
    match ty {
        Type::Id(id) => {
            let def = &resolve.types[*id];
            match &def.kind {
                // A `use`d name: the type it stands for.
                TypeDefKind::Type(inner) => named_or_kind(resolve, inner),
                kind if def.name.is_none() => Some(kind),
                _ => None,
            }
        }
        _ => None,
    }
}

fn name_of(resolve: &Resolve, ty: &Type) -> String {
    match ty {
        Type::Id(id) => match &resolve.types[*id].kind {
            TypeDefKind::Type(inner) => name_of(resolve, inner),
            _ => resolve.types[*id].name.clone().expect("a named type"),
        },
        other => panic!("{other:?} has no name"),
    }
}

// How each language spells the contract's types: the columns of these
// tables and of [`primitive`] are WIT, Rust, Python and JavaScript.
const WIT: usize = 0;
const RUST: usize = 1;
const PYTHON: usize = 2;
const JS: usize = 3;

/// Before and after the item of an `option<T>`.
const OPTION: [[&str; 2]; 4] = [
    ["option<", ">"],
    ["Option<", ">"],
    ["Optional[", "]"],
    ["", " | undefined"],
];
/// Before and after the item of a `list<T>`.
const LIST: [[&str; 2]; 4] = [
    ["list<", ">"],
    ["Vec<", ">"],
    ["List[", "]"],
    ["Array<", ">"],
];
/// Before and after the items of a tuple.
const TUPLE: [[&str; 2]; 4] = [["tuple<", ">"], ["(", ")"], ["Tuple[", "]"], ["[", "]"]];
/// Before `ok`, between `ok` and `err`, after `err`, and what stands for a
/// missing one.
const RESULT: [[&str; 4]; 4] = [
    ["result<", ", ", ">", "_"],
    ["Result<", ", ", ">", "()"],
    ["Result[", ", ", "]", "None"],
    ["", " (throws ", ")", "void"],
];

/// A primitive type in WIT, Rust, Python and JavaScript: those the contract
/// uses (add a row when it uses another).
fn primitive(ty: &Type) -> [&'static str; 4] {
    match ty {
        Type::U32 => ["u32", "u32", "int", "number"],
        Type::U64 => ["u64", "u64", "int", "bigint"],
        Type::S64 => ["s64", "i64", "int", "bigint"],
        Type::String => ["string", "String", "str", "string"],
        other => panic!("{other:?} is not rendered yet: add it to {}", file!()),
    }
}

fn spell(lang: usize, resolve: &Resolve, ty: &Type) -> String {
    let each = |t: &Type| spell(lang, resolve, t);
    let wrap = |[before, after]: [&str; 2], inner: String| format!("{before}{inner}{after}");
    match named_or_kind(resolve, ty) {
        Some(TypeDefKind::Option(t)) => wrap(OPTION[lang], each(t)),
        Some(TypeDefKind::List(t)) => wrap(LIST[lang], each(t)),
        Some(TypeDefKind::Tuple(t)) => {
            let items: Vec<String> = t.types.iter().map(each).collect();
            wrap(TUPLE[lang], items.join(", "))
        }
        Some(TypeDefKind::Result(r)) => {
            let [open, between, close, blank] = RESULT[lang];
            let part = |t: &Option<Type>| t.as_ref().map_or_else(|| blank.to_owned(), each);
            format!("{open}{}{between}{}{close}", part(&r.ok), part(&r.err))
        }
        Some(other) => panic!(
            "the contract uses a {other:?}, which this page does not render yet: add it to {}",
            file!()
        ),
        None => match ty {
            Type::Id(_) if lang == WIT => name_of(resolve, ty),
            Type::Id(_) => name_of(resolve, ty).to_upper_camel_case(),
            primitive_type => primitive(primitive_type)[lang].to_owned(),
        },
    }
}

fn wit_type(resolve: &Resolve, ty: &Type) -> String {
    spell(WIT, resolve, ty)
}

fn rust_type(resolve: &Resolve, ty: &Type) -> String {
    spell(RUST, resolve, ty)
}

fn py_type(resolve: &Resolve, ty: &Type) -> String {
    spell(PYTHON, resolve, ty)
}

fn js_type(resolve: &Resolve, ty: &Type) -> String {
    spell(JS, resolve, ty)
}

/// Doc comments as a paragraph, when there are any.
fn para(w: &mut String, docs: &Docs) {
    if let Some(text) = &docs.contents {
        writeln!(w, "{}\n", text.trim()).unwrap();
    }
}

/// Table rows of names (enum cases, flags), each with its spelling in Rust,
/// Python and JavaScript and its doc comment.
fn named_rows<'a>(
    names: impl Iterator<Item = (&'a String, &'a Docs)>,
    spell: impl Fn(&str) -> [String; 3],
) -> Vec<String> {
    names
        .map(|(name, docs)| {
            let [rs, py, js] = spell(name).map(|s| code(&s));
            format!("| `{name}` | {rs} | {py} | {js} | {} |", cell(docs))
        })
        .collect()
}

/// `text` as code in a table cell.
fn code(text: &str) -> String {
    format!("`{}`", text.replace('|', "\\|"))
}

/// A name as componentize-py spells it: snake case, keywords with a `_`.
fn py_name(wit: &str) -> String {
    const KEYWORDS: &[&str] = &[
        "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del",
        "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is",
        "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while", "with",
        "yield", "None", "True", "False",
    ];
    let name = wit.to_snake_case();
    if KEYWORDS.contains(&name.as_str()) {
        name + "_"
    } else {
        name
    }
}

/// Doc comments on one table line.
fn cell(docs: &Docs) -> String {
    docs.contents
        .as_deref()
        .map(|d| {
            d.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .replace('|', "\\|")
        })
        .unwrap_or_default()
}

fn header_rule(header: &str) -> String {
    let columns = header.matches('|').count() - 1;
    format!("|{}", " --- |".repeat(columns))
}
