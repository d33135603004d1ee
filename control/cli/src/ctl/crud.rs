//! The resource verbs: `create`, `replace`, `apply`, `delete`, `get`, `patch`, `label`, with
//! calicoctl's semantics and its exact success and failure messages.
//!
//! Messages (calicoctl's `commands/` package): `Successfully created 1 'IPPool' resource(s)`;
//! `Failed to create 'IPPool' resource: [resource already exists: IPPool(p)]` (create and apply
//! go on after a failing resource and list every error in Go's `[e1 e2]` form); replace stops
//! at the first failure; `Failed to get resources: ...`; `Successfully patched 1 'IPPool'
//! resource`; `Successfully set label k on ippool p`. A manifest that does not parse or
//! validate fails as a whole: `Failed to execute command: document[0]: IPPool(p): error with
//! field spec.cidr = '...' (...)`.

use std::io::Read;

use resources::{Kind, Resource};
use serde_json::Value;

use super::store::{self, Identity, ResourceError};
use super::{CtlError, Session};

/// Where manifests come from: a file, or stdin for `-`.
pub fn read_manifest(file: &str) -> Result<String, CtlError> {
    let limit = resources::parse::MAX_INPUT_BYTES as u64 + 1;
    let mut text = String::new();
    let result = if file == "-" {
        std::io::stdin().take(limit).read_to_string(&mut text)
    } else {
        std::fs::File::open(file).and_then(|f| f.take(limit).read_to_string(&mut text))
    };
    result.map_err(|e| {
        CtlError::new(format!(
            "Failed to execute command: cannot read {file}: {e}"
        ))
    })?;
    Ok(text)
}

/// What `-f` names: a file, `-`, or a directory (its subdirectories too with `-R`).
#[derive(Clone, Copy)]
pub struct Files<'a> {
    pub path: &'a str,
    pub recursive: bool,
    /// `--skip-empty`: a directory's files without resources are skipped, not an error.
    pub skip_empty: bool,
}

/// Runs `load` on each manifest of `files` and concatenates what it returns. A file of a
/// directory that holds no resource, or a directory without manifests, fails as in
/// calicoctl; errors of a directory's file name the file.
fn each_file<T>(
    files: Files<'_>,
    mut load: impl FnMut(&str, &str) -> Result<Vec<T>, CtlError>,
) -> Result<Vec<T>, CtlError> {
    let (paths, is_dir) = super::manifest_files::expand(files.path, files.recursive)?;
    let mut all = Vec::new();
    for path in &paths {
        let loaded = load(&read_manifest(path)?, path).map_err(|e| {
            if !is_dir {
                return e;
            }
            match e.0.strip_prefix("Failed to execute command: ") {
                Some(rest) if !rest.starts_with("cannot read") => {
                    CtlError::new(format!("Failed to execute command: {path}: {rest}"))
                }
                _ => e,
            }
        })?;
        if is_dir && loaded.is_empty() && !files.skip_empty {
            return Err(CtlError::new(format!(
                "no resources specified in file {path}"
            )));
        }
        all.extend(loaded);
    }
    if is_dir && all.is_empty() && !files.skip_empty {
        return Err(CtlError::new(format!(
            "no resources specified in directory {}",
            files.path
        )));
    }
    Ok(all)
}

/// Parses, namespaces, defaults and validates every resource in `text` (all or nothing).
/// `namespace` (`-n`) applies to namespaced resources that name none; one that names another
/// is refused.
/// `file` names the manifest in the hint given for a v1 one.
pub fn load_manifest(
    text: &str,
    file: &str,
    namespace: Option<&str>,
) -> Result<Vec<Resource>, CtlError> {
    let invalid = |e: String| CtlError::new(format!("Failed to execute command: {e}"));
    // First pass: Calico's defaults and validation, with the document index in errors.
    resources::load_documents(text).map_err(|e| invalid(manifest_error(e, file)))?;
    // Second pass on the resources as written, so that `-n` is applied before defaulting
    // (which fills in `default`).
    let mut out = resources::parse_documents(text).map_err(|e| invalid(e.to_string()))?;
    for r in &mut out {
        set_namespace(r, namespace).map_err(invalid)?;
        r.apply_defaults();
        r.validate().map_err(|e| invalid(e.to_string()))?;
    }
    Ok(out)
}

/// A manifest's error; a Calico v1 resource (`apiVersion: v1`, from the documents of Calico
/// 2.x) gets the command that converts it.
fn manifest_error(e: resources::ParseError, file: &str) -> String {
    match &e {
        resources::ParseError::ApiVersion { document, found, .. } if found == "v1" => format!(
            "document[{document}]: apiVersion 'v1' is a Calico v1 resource, which brindle no longer accepts: convert it to {} with `brindlectl convert -f {file}` and create or apply the output",
            resources::API_VERSION,
        ),
        _ => e.to_string(),
    }
}

fn set_namespace(r: &mut Resource, namespace: Option<&str>) -> Result<(), String> {
    if !r.kind().namespaced() {
        return Ok(());
    }
    let kind = r.kind();
    let meta = r.metadata_mut();
    // calicoctl's handleNamespace: an empty namespace is no namespace.
    if meta.namespace.as_deref() == Some("") {
        meta.namespace = None;
    }
    match (&meta.namespace, namespace) {
        (Some(own), Some(flag)) if own != flag => Err(format!(
            "{kind}({own}/{}): metadata.namespace '{own}' does not match the namespace given with --namespace ('{flag}')",
            meta.name
        )),
        (Some(_), _) => Ok(()),
        (None, flag) => {
            meta.namespace = Some(flag.unwrap_or(resources::DEFAULT_NAMESPACE).to_string());
            Ok(())
        }
    }
}

/// The kind every resource has, if they share one (calicoctl's `SingleKind`).
fn single_kind(items: &[Resource]) -> Option<Kind> {
    let first = items.first()?.kind();
    items.iter().all(|r| r.kind() == first).then_some(first)
}

/// Go's `%v` of a `[]error`: `[e1 e2]`.
fn go_list(errors: &[ResourceError]) -> String {
    format!(
        "[{}]",
        errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    )
}

/// Which of create/apply runs (they share calicoctl's reporting).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Write {
    Create { skip_exists: bool },
    Apply,
}

/// `create -f` / `apply -f`: every resource is tried; errors are collected.
pub fn create_or_apply(
    session: &Session,
    files: Files<'_>,
    namespace: Option<&str>,
    mode: Write,
    out: &mut String,
) -> Result<(), CtlError> {
    let (action, past) = match mode {
        Write::Create { .. } => ("create", "created"),
        Write::Apply => ("apply", "applied"),
    };
    let items = each_file(files, |text, file| load_manifest(text, file, namespace))?;
    if items.is_empty() {
        out.push_str("No resources specified\n");
        return Ok(());
    }
    let ds = session.store()?;
    super::initialize::ensure_initialized(ds);
    let mut handled = 0;
    let mut errors = Vec::new();
    for r in &items {
        let result = match mode {
            Write::Create { skip_exists } => match store::create(ds, r) {
                Err(ResourceError::AlreadyExists(_)) if skip_exists => Ok(()),
                other => other.map(drop),
            },
            Write::Apply => apply_one(ds, r),
        };
        match result {
            Ok(()) => handled += 1,
            Err(e) => errors.push(e),
        }
    }
    report_collected(action, past, &items, handled, &errors, out)
}

/// calicoctl's apply: create; if it exists, update at the resourceVersion given in the
/// manifest (if any), else at the current one.
fn apply_one(ds: &dyn datastore::Datastore, r: &Resource) -> Result<(), ResourceError> {
    let mut fresh = r.clone();
    fresh.metadata_mut().resource_version = None;
    match store::create(ds, &fresh) {
        Err(ResourceError::AlreadyExists(_)) => store::update(ds, r).map(drop),
        other => other.map(drop),
    }
}

fn report_collected(
    action: &str,
    past: &str,
    items: &[Resource],
    handled: usize,
    errors: &[ResourceError],
    out: &mut String,
) -> Result<(), CtlError> {
    let kind = single_kind(items);
    if handled == 0 {
        return Err(CtlError::new(match (items.len(), kind) {
            (1, Some(k)) => format!("Failed to {action} '{k}' resource: {}", go_list(errors)),
            (_, Some(k)) => format!(
                "Failed to {action} any '{k}' resources: {}",
                go_list(errors)
            ),
            _ => format!("Failed to {action} any resources: {}", go_list(errors)),
        }));
    }
    if errors.is_empty() {
        out.push_str(&match kind {
            Some(k) => format!("Successfully {past} {handled} '{k}' resource(s)\n"),
            None => format!("Successfully {past} {handled} resource(s)\n"),
        });
        return Ok(());
    }
    out.push_str(&match kind {
        Some(k) => format!(
            "Partial success: {past} the first {handled} out of {} '{k}' resources:\n",
            items.len()
        ),
        None => format!(
            "Partial success: {past} the first {handled} out of {} resources:\n",
            items.len()
        ),
    });
    Err(CtlError::new(format!("Hit error: {}", go_list(errors))))
}

/// `validate -f`: Calico's defaults and checks on every resource, offline (no datastore is
/// opened); each invalid resource is reported as create reports a failed one.
pub fn validate(
    files: Files<'_>,
    namespace: Option<&str>,
    out: &mut String,
) -> Result<(), CtlError> {
    let invalid = |e: String| CtlError::new(format!("Failed to execute command: {e}"));
    let mut items = each_file(files, |text, file| {
        resources::parse_documents(text).map_err(|e| invalid(manifest_error(e, file)))
    })?;
    if items.is_empty() {
        out.push_str("No resources specified\n");
        return Ok(());
    }
    let mut handled = 0;
    let mut errors = Vec::new();
    for r in &mut items {
        set_namespace(r, namespace).map_err(invalid)?;
        r.apply_defaults();
        match r.validate() {
            Ok(()) => handled += 1,
            Err(e) => errors.push(ResourceError::Invalid(e)),
        }
    }
    report_collected("validate", "validated", &items, handled, &errors, out)
}

/// `replace -f`: update each resource; stops at the first failure.
pub fn replace(
    session: &Session,
    files: Files<'_>,
    namespace: Option<&str>,
    out: &mut String,
) -> Result<(), CtlError> {
    let items = each_file(files, |text, file| load_manifest(text, file, namespace))?;
    if items.is_empty() {
        out.push_str("No resources specified\n");
        return Ok(());
    }
    let ds = session.store()?;
    super::initialize::ensure_initialized(ds);
    let kind = single_kind(&items);
    let mut handled = 0;
    for r in &items {
        if let Err(e) = store::update(ds, r) {
            if handled == 0 {
                return Err(CtlError::new(match (items.len(), kind) {
                    (1, Some(k)) => format!("Failed to replace '{k}' resource: {e}"),
                    (_, Some(k)) => format!("Failed to replace any '{k}' resources: {e}"),
                    _ => format!("Failed to replace any resources: {e}"),
                }));
            }
            out.push_str(&match kind {
                Some(k) => format!(
                    "Partial success: replaced the first {handled} out of {} '{k}' resources:\n",
                    items.len()
                ),
                None => format!(
                    "Partial success: replaced the first {handled} out of {} resources:\n",
                    items.len()
                ),
            });
            return Err(CtlError::new(format!("Hit error: {e}")));
        }
        handled += 1;
    }
    out.push_str(&match kind {
        Some(k) => format!("Successfully replaced {handled} '{k}' resource(s)\n"),
        None => format!("Successfully replaced {handled} resource(s)\n"),
    });
    Ok(())
}

/// What `delete` and `get` act on: the resources of a file, or `KIND [NAME...]`.
pub enum Target<'a> {
    File(Files<'a>),
    Named { kind: &'a str, names: &'a [String] },
}

/// The kind shared by the targets (if one is), and each target with its manifest's
/// resourceVersion.
type Identities = (Option<Kind>, Vec<(Identity, Option<String>)>);

/// Identities (with the manifest's resourceVersion) of a file's resources, or of
/// `KIND NAME...`. A file's resources are only parsed: delete and get need no defaults.
fn identities(target: &Target<'_>, namespace: Option<&str>) -> Result<Identities, CtlError> {
    let invalid = |e: String| CtlError::new(format!("Failed to execute command: {e}"));
    match target {
        Target::File(files) => {
            let mut items = each_file(*files, |text, file| {
                resources::parse_documents(text).map_err(|e| invalid(manifest_error(e, file)))
            })?;
            for r in &mut items {
                set_namespace(r, namespace).map_err(invalid)?;
            }
            let ids = items
                .iter()
                .map(|r| (Identity::of(r), r.metadata().resource_version.clone()))
                .collect();
            Ok((single_kind(&items), ids))
        }
        Target::Named { kind, names } => {
            let kind: Kind = kind
                .parse()
                .map_err(|e: resources::UnknownKind| invalid(e.to_string()))?;
            refuse_namespace(kind, namespace.is_some())?;
            Ok((
                Some(kind),
                names
                    .iter()
                    .map(|n| Ok((named(kind, namespace, n)?, None)))
                    .collect::<Result<_, CtlError>>()?,
            ))
        }
    }
}

/// The identity of `KIND NAME` from the command line. A name or namespace becomes a segment
/// of a datastore key (`.../<plural>/[<namespace>/]<name>`): one with a '/', empty, `.`, `..`
/// or with whitespace or control characters could name a key no resource has (issue 14, item
/// 7), and is refused with the value named. The kind's own rules apply when a resource is
/// written.
fn named(kind: Kind, namespace: Option<&str>, name: &str) -> Result<Identity, CtlError> {
    let segment = |what: &str, value: &str| {
        let bad = value.is_empty()
            || value == "."
            || value == ".."
            || value
                .chars()
                .any(|c| c == '/' || c.is_whitespace() || c.is_control());
        if bad {
            Err(CtlError::new(format!(
                "Failed to execute command: invalid {what} {value:?}: a name may not be empty, \
                 '.' or '..', nor contain '/', whitespace or control characters"
            )))
        } else {
            Ok(())
        }
    };
    segment("name", name)?;
    if let Some(ns) = namespace {
        segment("namespace", ns)?;
    }
    Ok(Identity::new(kind, namespace, name))
}

/// A namespace (`-n`, `-A`) given for a cluster-scoped kind is an error, worded as calicoctl
/// words it.
fn refuse_namespace(kind: Kind, given: bool) -> Result<(), CtlError> {
    if given && !kind.namespaced() {
        return Err(CtlError::new(format!("{kind} is not namespaced")));
    }
    Ok(())
}

/// `delete -f FILE` / `delete KIND NAME...`.
pub fn delete(
    session: &Session,
    target: Target<'_>,
    namespace: Option<&str>,
    skip_not_exists: bool,
    out: &mut String,
) -> Result<(), CtlError> {
    let (kind, ids) = identities(&target, namespace)?;
    if ids.is_empty() {
        if matches!(target, Target::Named { .. }) {
            return Err(CtlError::new(
                "Failed to execute command: a resource name is required",
            ));
        }
        out.push_str("No resources specified\n");
        return Ok(());
    }
    let ds = session.store()?;
    let mut handled = 0;
    let mut errors = Vec::new();
    for (id, rv) in &ids {
        match store::delete(ds, id, rv.as_deref()) {
            Ok(()) => handled += 1,
            Err(ResourceError::DoesNotExist(_)) if skip_not_exists => handled += 1,
            Err(e) => errors.push(e),
        }
    }
    if handled > 0 {
        out.push_str(&match kind {
            Some(k) => format!("Successfully deleted {handled} '{k}' resource(s)\n"),
            None => format!("Successfully deleted {handled} resource(s)\n"),
        });
    }
    if errors.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = errors
        .iter()
        .map(|e| match kind {
            Some(k) => format!("Failed to delete '{k}' resource: {e}"),
            None => format!("Failed to delete resource: {e}"),
        })
        .collect();
    Err(CtlError::new(lines.join("\n")))
}

/// `get -o`: calicoctl's output formats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Ps,
    Wide,
    Yaml,
    Json,
    /// `custom-columns=NAME,CIDR`: those of the kind's table columns.
    CustomColumns(Vec<String>),
    /// `go-template=TEXT`: a Go template over the fetched objects (see `gotemplate`).
    GoTemplate(String),
    /// `go-template-file=FILE`: the same, read from a file.
    GoTemplateFile(String),
}

impl std::str::FromStr for Output {
    type Err = String;

    fn from_str(s: &str) -> Result<Output, String> {
        match s {
            "ps" => Ok(Output::Ps),
            "wide" => Ok(Output::Wide),
            "yaml" | "yml" => Ok(Output::Yaml),
            "json" => Ok(Output::Json),
            "custom-columns" | "custom-columns=" => {
                Err("need to specify at least one column".to_string())
            }
            // calicoctl splits KEY=VALUE at the first '='; an empty VALUE is refused.
            "go-template" | "go-template=" => Err("need to specify a template".to_string()),
            "go-template-file" | "go-template-file=" => {
                Err("need to specify a template file".to_string())
            }
            other => {
                if let Some(columns) = other.strip_prefix("custom-columns=") {
                    Ok(Output::CustomColumns(
                        columns.split(',').map(str::to_string).collect(),
                    ))
                } else if let Some(text) = other.strip_prefix("go-template=") {
                    Ok(Output::GoTemplate(text.to_string()))
                } else if let Some(file) = other.strip_prefix("go-template-file=") {
                    Ok(Output::GoTemplateFile(file.to_string()))
                } else {
                    Err(format!("unrecognized output format '{other}'"))
                }
            }
        }
    }
}

/// `get KIND [NAME...]` / `get -f FILE`. `export` (`--export`) strips what is specific to
/// this cluster from resources fetched by name, as calicoctl does (it leaves listings and
/// `-f` alone).
pub fn get(
    session: &Session,
    target: Target<'_>,
    namespace: Option<&str>,
    all_namespaces: bool,
    export: bool,
    output: Output,
    out: &mut String,
) -> Result<(), CtlError> {
    let failed = |e: &dyn std::fmt::Display| CtlError::new(format!("Failed to get resources: {e}"));
    // A template is read and parsed before the datastore is: a bad one fails first.
    let template = match &output {
        Output::GoTemplate(text) => Some(text.clone()),
        Output::GoTemplateFile(file) => Some(std::fs::read_to_string(file).map_err(|e| {
            CtlError::new(format!(
                "Failed to execute command: cannot read go-template-file '{file}': {e}"
            ))
        })?),
        _ => None,
    };
    if let Some(text) = &template {
        super::gotemplate::check(text).map_err(|e| CtlError::new(e.to_string()))?;
    }
    if let Target::Named { kind, .. } = &target {
        if let Ok(kind) = kind.parse::<Kind>() {
            refuse_namespace(kind, namespace.is_some() || all_namespaces)?;
        }
    }
    let (kind, ids) = match identities(&target, namespace) {
        Ok(v) => v,
        Err(e) if matches!(target, Target::Named { .. }) => {
            // An unknown kind is reported as calicoctl's get does.
            let message =
                e.0.strip_prefix("Failed to execute command: ")
                    .unwrap_or(&e.0)
                    .to_string();
            return Err(failed(&message));
        }
        Err(e) => return Err(e),
    };
    let ds = session.store()?;
    let listing = matches!(target, Target::Named { names, .. } if names.is_empty());
    let by_name = matches!(target, Target::Named { names, .. } if !names.is_empty());
    let (mut items, revision) = if listing {
        let kind = kind.ok_or_else(|| failed(&"no resource type given"))?;
        let ns = if all_namespaces {
            None
        } else {
            Some(namespace.unwrap_or(resources::DEFAULT_NAMESPACE))
        };
        let (items, rev) = store::list(ds, kind, ns).map_err(|e| failed(&e))?;
        (items, Some(rev))
    } else {
        let mut items = Vec::with_capacity(ids.len());
        for (id, _) in &ids {
            items.push(store::get_existing(ds, id).map_err(|e| failed(&e))?);
        }
        (items, None)
    };
    if export && by_name {
        items.iter_mut().for_each(strip_cluster_metadata);
    }
    let all_namespaces = all_namespaces && listing;
    match output {
        Output::GoTemplate(_) | Output::GoTemplateFile(_) => {
            // calicoctl executes the template over the slice of fetched objects: one
            // `<Kind>List` for a listing, else the resources.
            let data = match (listing, kind) {
                (true, Some(k)) => serde_json::from_str(&resources::list_to_json(
                    k,
                    &items,
                    revision.map(|r| r.to_string()).as_deref(),
                ))
                .map(|list| Value::Array(vec![list])),
                _ => serde_json::to_value(&items),
            }
            .map_err(|e| failed(&e))?;
            let text = template.unwrap_or_default();
            let rendered = super::gotemplate::render(&text, &data, &AsNumber(ds))
                .map_err(|e| CtlError::new(e.to_string()))?;
            out.push_str(&rendered);
        }
        // A file may mix kinds: one table per kind, in the order they first appear.
        Output::CustomColumns(columns) => {
            let tables = per_kind_tables(&items, kind.filter(|_| listing), |k, of_kind| {
                resources::render_custom_table(k, of_kind, &columns, all_namespaces)
                    .map_err(|e| failed(&e))
            })?;
            out.push_str(&tables);
        }
        Output::Ps | Output::Wide => {
            let wide = output == Output::Wide;
            let tables = per_kind_tables(&items, kind.filter(|_| listing), |k, of_kind| {
                Ok(resources::render_table(k, of_kind, wide, all_namespaces))
            })?;
            out.push_str(&tables);
        }
        Output::Yaml => out.push_str(&match (listing, kind) {
            (true, Some(k)) => {
                resources::list_to_yaml(k, &items, revision.map(|r| r.to_string()).as_deref())
            }
            _ => resources::to_yaml(&items),
        }),
        Output::Json => {
            out.push_str(&match (listing, kind) {
                (true, Some(k)) => {
                    resources::list_to_json(k, &items, revision.map(|r| r.to_string()).as_deref())
                }
                _ => resources::to_json(&items),
            });
            out.push('\n');
        }
    }
    Ok(())
}

/// `--export`: calicoctl clears the namespace, uid, resourceVersion and creation timestamp.
fn strip_cluster_metadata(r: &mut Resource) {
    let meta = r.metadata_mut();
    meta.namespace = None;
    meta.uid = None;
    meta.resource_version = None;
    meta.creation_timestamp = None;
}

/// `{{config "asnumber"}}`: the AS number of BGPConfiguration `default`, 64512 when it sets
/// none, `unknown` when it cannot be read (calicoctl's answers).
struct AsNumber<'a>(&'a dyn datastore::Datastore);

impl super::gotemplate::ConfigSource for AsNumber<'_> {
    fn as_number(&self) -> String {
        let id = Identity::new(Kind::BgpConfiguration, None, "default");
        let config = match store::get(self.0, &id) {
            Ok(Some(r)) => serde_json::to_value(&r).unwrap_or(Value::Null),
            Ok(None) => return "64512".to_string(),
            Err(_) => return "unknown".to_string(),
        };
        match config.pointer("/spec/asNumber") {
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(s)) => s.clone(),
            _ => "64512".to_string(),
        }
    }
}

/// One table per kind of `items`, `first` leading, then in the order kinds first appear,
/// separated by a blank line.
fn per_kind_tables(
    items: &[Resource],
    first: Option<Kind>,
    mut table: impl FnMut(Kind, &[Resource]) -> Result<String, CtlError>,
) -> Result<String, CtlError> {
    let mut kinds: Vec<Kind> = first.into_iter().collect();
    for r in items {
        if !kinds.contains(&r.kind()) {
            kinds.push(r.kind());
        }
    }
    let mut out = String::new();
    for (i, k) in kinds.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let of_kind: Vec<Resource> = items.iter().filter(|r| r.kind() == *k).cloned().collect();
        out.push_str(&table(*k, &of_kind)?);
    }
    Ok(out)
}

/// `patch KIND NAME -p '{...}'`: a JSON merge patch (RFC 7386) of the stored resource,
/// written back at the revision it was read at.
pub fn patch(
    session: &Session,
    kind: &str,
    name: &str,
    patch: &str,
    namespace: Option<&str>,
    out: &mut String,
) -> Result<(), CtlError> {
    let kind: Kind = kind.parse().map_err(|e: resources::UnknownKind| {
        CtlError::new(format!("Failed to execute command: {e}"))
    })?;
    let patch: Value = serde_json::from_str(patch).map_err(|e| {
        CtlError::new(format!(
            "Failed to execute command: the patch is not valid JSON: {e}"
        ))
    })?;
    let failed = |e: &dyn std::fmt::Display| {
        CtlError::new(format!("Failed to patch '{kind}' resource: {e}"))
    };
    let ds = session.store()?;
    let id = named(kind, namespace, name)?;
    let current = store::get_existing(ds, &id).map_err(|e| failed(&e))?;
    let mut value = serde_json::to_value(&current).map_err(|e| failed(&e))?;
    resources::patch::merge_patch(&mut value, &patch);
    let mut patched = resources::parse_documents(&value.to_string()).map_err(|e| failed(&e))?;
    let mut r = match patched.pop() {
        Some(r) if patched.is_empty() => r,
        _ => return Err(failed(&"the patch must leave exactly one resource")),
    };
    r.apply_defaults();
    r.validate().map_err(|e| failed(&e))?;
    store::update(ds, &r).map_err(|e| failed(&e))?;
    out.push_str(&format!("Successfully patched 1 '{kind}' resource\n"));
    Ok(())
}

/// The arguments of `label`: `KIND NAME key=value [--overwrite]` or `KIND NAME key --remove`.
pub struct LabelArgs<'a> {
    /// As the user typed it (calicoctl's messages repeat it).
    pub kind: &'a str,
    pub name: &'a str,
    pub label: &'a str,
    pub overwrite: bool,
    pub remove: bool,
}

/// `label KIND NAME key=value [--overwrite]` / `label KIND NAME key --remove`.
pub fn label(
    session: &Session,
    args: LabelArgs<'_>,
    namespace: Option<&str>,
    out: &mut String,
) -> Result<(), CtlError> {
    let LabelArgs {
        kind: kind_arg,
        name,
        label,
        overwrite,
        remove,
    } = args;
    let kind: Kind = kind_arg.parse().map_err(|e: resources::UnknownKind| {
        CtlError::new(format!("Failed to execute command: {e}"))
    })?;
    let (key, value) = if remove {
        (label.to_string(), None)
    } else {
        match label.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => {
                return Err(CtlError::new(format!(
                    "Failed to execute command: invalid label '{label}': expected key=value (or key with --remove)"
                )))
            }
        }
    };
    let ds = session.store()?;
    let id = named(kind, namespace, name)?;
    let mut r = store::get_existing(ds, &id)
        .map_err(|e| CtlError::new(format!("failed to get {kind_arg} {name}, error {e}")))?;
    let labels = &mut r.metadata_mut().labels;
    let mut overwritten = false;
    match value {
        None => {
            if labels.remove(&key).is_none() {
                return Err(CtlError::new(format!(
                    "can not remove label of {kind_arg} {name}, key {key} does not exist"
                )));
            }
        }
        Some(value) => {
            if let Some(old) = labels.get(&key) {
                if !overwrite && *old != value {
                    return Err(CtlError::new(format!(
                        "failed to update label of {kind_arg} {name}, key {key} is already present. please use '--overwrite' to set a new value."
                    )));
                }
                overwritten = true;
            }
            labels.insert(key.clone(), value);
        }
    }
    r.validate().map_err(|e| {
        CtlError::new(format!(
            "failed to update {kind_arg} {name}, label not changed: {e}"
        ))
    })?;
    store::update(ds, &r).map_err(|e| {
        CtlError::new(format!(
            "failed to update {kind_arg} {name}, label not changed: {e}"
        ))
    })?;
    out.push_str(&if remove {
        format!("Successfully removed label {key} from {kind_arg} {name}\n")
    } else if overwritten {
        format!("Successfully updated label {key} on {kind_arg} {name}\n")
    } else {
        format!("Successfully set label {key} on {kind_arg} {name}\n")
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_are_namespaced_defaulted_and_validated() {
        let wep_policy = "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata:\n  name: p\nspec:\n  selector: all()\n";
        let items = load_manifest(wep_policy, "-", Some("ns1")).unwrap();
        assert_eq!(items[0].metadata().namespace.as_deref(), Some("ns1"));
        let items = load_manifest(wep_policy, "-", None).unwrap();
        assert_eq!(items[0].metadata().namespace.as_deref(), Some("default"));
        let in_ns2 = wep_policy.replace("name: p\n", "name: p\n  namespace: ns2\n");
        let e = load_manifest(&in_ns2, "-", Some("ns1"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("ns2") && e.contains("ns1"), "{e}");
        let bad = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: p\nspec:\n  cidr: 10.0.0.0/33\n";
        let e = load_manifest(bad, "-", None).unwrap_err().to_string();
        assert!(
            e.starts_with("Failed to execute command: ")
                && e.contains("spec.cidr")
                && e.contains("10.0.0.0/33"),
            "{e}"
        );
    }

    #[test]
    fn output_formats_parse() {
        assert_eq!("wide".parse::<Output>(), Ok(Output::Wide));
        assert_eq!(
            "go-template".parse::<Output>(),
            Err("need to specify a template".into())
        );
        assert_eq!(
            "go-template-file=".parse::<Output>(),
            Err("need to specify a template file".into())
        );
        assert_eq!(
            "go-template={{.a=b}}".parse::<Output>(),
            Ok(Output::GoTemplate("{{.a=b}}".into()))
        );
        assert_eq!("yml".parse::<Output>(), Ok(Output::Yaml));
        assert_eq!(
            "custom-columns=NAME,CIDR".parse::<Output>(),
            Ok(Output::CustomColumns(vec!["NAME".into(), "CIDR".into()]))
        );
        assert_eq!(
            "custom-columns=".parse::<Output>(),
            Err("need to specify at least one column".into())
        );
    }
}
