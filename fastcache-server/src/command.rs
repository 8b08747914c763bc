//! COMMAND: what the server can run, as Redis 7.0 describes it (COMMAND,
//! COUNT, INFO, DOCS, LIST, GETKEYS, GETKEYSANDFLAGS, HELP), and the
//! subcommand checks the container commands (CLIENT, CONFIG, COMMAND)
//! share.
//!
//! The descriptions come from [`TABLE`], a plain-text copy of Redis
//! 7.0.15's COMMAND INFO and COMMAND DOCS for the commands FastCache runs
//! (summaries, flags, ACL categories, key specs; argument trees and
//! history are left out). Arity and key positions there must agree with the
//! engine's own [`fastcache_core::CommandSpec`], which a unit test checks;
//! an engine command missing from the table is still listed, described
//! from its `CommandSpec`.

use std::collections::HashMap;
use std::sync::OnceLock;

use fastcache_core::util::{glob_match, parse_i64};
use fastcache_core::{errors, flags, CommandSpec, Engine, LockSet, Reply};

use crate::connection::Conn;

/// Where a key spec starts looking (Redis' `begin_search`).
#[derive(Debug, Clone, PartialEq)]
enum Begin {
    Index(i64),
    Keyword(&'static str, i64),
    Unknown,
}

/// How a key spec finds its keys from there (Redis' `find_keys`).
#[derive(Debug, Clone, PartialEq)]
enum Find {
    Range { lastkey: i64, keystep: i64, limit: i64 },
    Keynum { keynumidx: i64, firstkey: i64, keystep: i64 },
    Unknown,
}

/// One Redis 7 key specification.
#[derive(Debug, Clone)]
struct KeySpec {
    notes: Option<&'static str>,
    flags: Vec<&'static str>,
    begin: Begin,
    find: Find,
}

/// One command or subcommand, as COMMAND INFO and COMMAND DOCS show it.
#[derive(Debug, Clone)]
pub struct Meta {
    /// Full name: `get`, or `client|list` for a subcommand.
    name: &'static str,
    arity: i64,
    first: i64,
    last: i64,
    step: i64,
    flags: Vec<&'static str>,
    acl: Vec<&'static str>,
    tips: Vec<&'static str>,
    keys: Vec<KeySpec>,
    group: &'static str,
    since: &'static str,
    complexity: &'static str,
    summary: &'static str,
    doc_flags: Vec<&'static str>,
    deprecated_since: Option<&'static str>,
    replaced_by: Option<&'static str>,
    subcommands: Vec<Meta>,
}

impl Meta {
    fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i64;
        if self.arity >= 0 {
            argc == self.arity
        } else {
            argc >= -self.arity
        }
    }

    fn sub(&self, name: &[u8]) -> Option<&Meta> {
        let sub = |m: &&Meta| m.name.split_once('|').is_some_and(|(_, s)| s.as_bytes().eq_ignore_ascii_case(name));
        self.subcommands.iter().find(sub)
    }

    /// The subcommand part of the name (`list` of `client|list`).
    fn short(&self) -> &'static str {
        self.name.split_once('|').map_or(self.name, |(_, s)| s)
    }
}

struct Table {
    /// Top-level commands by name.
    commands: Vec<Meta>,
    by_name: HashMap<&'static str, usize>,
}

fn words(field: &'static str) -> Vec<&'static str> {
    if field == "-" {
        Vec::new()
    } else {
        field.split(' ').collect()
    }
}

fn num(s: &str) -> i64 {
    s.parse().unwrap_or(0)
}

fn parse_key_line(rest: &'static str) -> Option<KeySpec> {
    let mut f = rest.splitn(4, " | ");
    let flags = f.next()?.split(',').collect();
    let begin: Vec<&str> = f.next()?.split(' ').collect();
    let find: Vec<&str> = f.next()?.split(' ').collect();
    let notes = f.next();
    let begin = match begin.as_slice() {
        ["index", i] => Begin::Index(num(i)),
        ["keyword", k, from] => Begin::Keyword(k, num(from)),
        _ => Begin::Unknown,
    };
    let find = match find.as_slice() {
        ["range", l, s, lim] => Find::Range { lastkey: num(l), keystep: num(s), limit: num(lim) },
        ["keynum", i, f, s] => Find::Keynum { keynumidx: num(i), firstkey: num(f), keystep: num(s) },
        _ => Find::Unknown,
    };
    Some(KeySpec { notes, flags, begin, find })
}

fn parse_command_line(line: &'static str) -> Option<Meta> {
    let f: Vec<&'static str> = line.split(" | ").collect();
    let [name, arity, range, flags, acl, tips, group, since, complexity, summary] = f.as_slice() else {
        return None;
    };
    let range: Vec<i64> = range.split(' ').map(num).collect();
    let [first, last, step] = range.as_slice() else {
        return None;
    };
    Some(Meta {
        name,
        arity: num(arity),
        first: *first,
        last: *last,
        step: *step,
        flags: words(flags),
        acl: words(acl),
        tips: words(tips),
        keys: Vec::new(),
        group,
        since,
        complexity,
        summary,
        doc_flags: Vec::new(),
        deprecated_since: None,
        replaced_by: None,
        subcommands: Vec::new(),
    })
}

/// Parses [`TABLE`]. A malformed line is a bug in the table that the unit
/// tests catch; at run time it is skipped rather than stopping the server.
fn parse_table() -> Vec<Meta> {
    let mut out: Vec<Meta> = Vec::new();
    let mut current: Option<Meta> = None;
    fn attach(out: &mut Vec<Meta>, m: Meta) {
        match m.name.split_once('|') {
            Some((parent, _)) => {
                if let Some(p) = out.iter_mut().rev().find(|p| p.name == parent) {
                    p.subcommands.push(m);
                }
            }
            None => out.push(m),
        }
    }
    for line in TABLE.lines() {
        if let Some(rest) = line.strip_prefix("  key ") {
            if let (Some(m), Some(k)) = (current.as_mut(), parse_key_line(rest)) {
                m.keys.push(k);
            }
        } else if let Some(rest) = line.strip_prefix("  doc ") {
            let mut f = rest.splitn(3, " | ");
            if let Some(m) = current.as_mut() {
                m.doc_flags = f.next().map(words).unwrap_or_default();
                m.deprecated_since = f.next().filter(|s| *s != "-");
                m.replaced_by = f.next().filter(|s| *s != "-");
            }
        } else if !line.trim().is_empty() {
            if let Some(m) = current.take() {
                attach(&mut out, m);
            }
            current = parse_command_line(line);
        }
    }
    if let Some(m) = current.take() {
        attach(&mut out, m);
    }
    out
}

/// Describes an engine command the table does not know, from its spec.
fn derived(spec: &'static CommandSpec) -> Meta {
    let bit = |b: u32, s: &'static str| (spec.flags & b != 0).then_some(s);
    let flags: Vec<&'static str> = [
        bit(flags::WRITE, "write"),
        bit(flags::READONLY, "readonly"),
        bit(flags::DENYOOM, "denyoom"),
        bit(flags::ADMIN, "admin"),
        bit(flags::FAST, "fast"),
        bit(flags::MOVABLE_KEYS, "movablekeys"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let group_cat = match spec.group {
        "string" => Some("@string"),
        "list" => Some("@list"),
        "hash" => Some("@hash"),
        "set" => Some("@set"),
        "sorted-set" => Some("@sortedset"),
        "generic" => Some("@keyspace"),
        _ => None,
    };
    let acl = [
        bit(flags::WRITE, "@write"),
        bit(flags::READONLY, "@read"),
        group_cat,
        Some(if spec.flags & flags::FAST != 0 { "@fast" } else { "@slow" }),
    ]
    .into_iter()
    .flatten()
    .collect();
    let keys = if spec.first_key > 0 {
        let lastkey =
            if spec.last_key < 0 { i64::from(spec.last_key) } else { i64::from(spec.last_key - spec.first_key) };
        vec![KeySpec {
            notes: None,
            flags: if spec.is_write() { vec!["RW"] } else { vec!["RO"] },
            begin: Begin::Index(i64::from(spec.first_key)),
            find: Find::Range { lastkey, keystep: i64::from(spec.step.max(1)), limit: 0 },
        }]
    } else {
        Vec::new()
    };
    Meta {
        name: spec.name,
        arity: i64::from(spec.arity),
        first: i64::from(spec.first_key),
        last: i64::from(spec.last_key),
        step: i64::from(spec.step),
        flags,
        acl,
        tips: Vec::new(),
        keys,
        group: spec.group,
        since: "1.0.0",
        complexity: "",
        summary: "",
        doc_flags: Vec::new(),
        deprecated_since: None,
        replaced_by: None,
        subcommands: Vec::new(),
    }
}

fn table(engine: &Engine) -> &'static Table {
    static TABLE_CELL: OnceLock<Table> = OnceLock::new();
    TABLE_CELL.get_or_init(|| {
        let mut commands = parse_table();
        for spec in engine.commands() {
            if !commands.iter().any(|m| m.name == spec.name) {
                commands.push(derived(spec));
            }
        }
        commands.sort_by(|a, b| a.name.cmp(b.name));
        let by_name = commands.iter().enumerate().map(|(i, m)| (m.name, i)).collect();
        Table { commands, by_name }
    })
}

/// The command `name` (case-insensitive; `parent|sub` for a subcommand).
fn lookup<'t>(t: &'t Table, name: &[u8]) -> Option<&'t Meta> {
    let lower = String::from_utf8_lossy(name).to_ascii_lowercase();
    match lower.split_once('|') {
        Some((parent, sub)) => t.by_name.get(parent).and_then(|&i| t.commands[i].sub(sub.as_bytes())),
        None => t.by_name.get(lower.as_str()).map(|&i| &t.commands[i]),
    }
}

/// Whether `name` (lower case) may run while the dataset is loading:
/// Redis' `loading` command flag.
pub fn allowed_while_loading(engine: &Engine, name: &str) -> bool {
    lookup(table(engine), name.as_bytes()).is_some_and(|m| m.flags.contains(&"loading"))
}

/// Redis' reply to an unknown subcommand of a container command.
pub fn unknown_subcommand(container: &str, sub: &[u8]) -> Reply {
    let shown: String = String::from_utf8_lossy(sub).chars().take(128).collect();
    Reply::error(format!("ERR unknown subcommand '{shown}'. Try {} HELP.", container.to_ascii_uppercase()))
}

/// Resolves `argv[1]` as a subcommand of `container` and checks its
/// arity, as Redis does before running it. Returns the subcommand's
/// lower-case name, or the error to reply. It also records the full name
/// (`client|list`) as the client's last command, which CLIENT LIST shows.
pub fn subcommand(conn: &Conn, container: &str, argv: &[&[u8]]) -> Result<&'static str, Reply> {
    let Some(&sub) = argv.get(1) else {
        return Err(errors::wrong_args(container));
    };
    let t = table(&conn.shared.engine);
    let meta = t.by_name.get(container).and_then(|&i| t.commands[i].sub(sub));
    let Some(meta) = meta else {
        return Err(unknown_subcommand(container, sub));
    };
    if let Some(mut last) = conn.info.last_cmd.try_lock() {
        last.clear();
        last.push_str(meta.name);
    }
    if !meta.arity_ok(argv.len()) {
        return Err(errors::wrong_args(meta.name));
    }
    Ok(meta.short())
}

fn set_of_simple(items: &[&'static str]) -> Reply {
    Reply::Set(items.iter().map(|s| Reply::Simple((*s).into())).collect())
}

fn bulk(s: &str) -> Reply {
    Reply::Bulk(s.as_bytes().to_vec())
}

fn key_spec_reply(k: &KeySpec) -> Reply {
    let mut m = Vec::with_capacity(4);
    if let Some(n) = k.notes {
        m.push((bulk("notes"), bulk(n)));
    }
    m.push((bulk("flags"), set_of_simple(&k.flags)));
    let begin = match &k.begin {
        Begin::Index(i) => (bulk("index"), Reply::Map(vec![(bulk("index"), Reply::Int(*i))])),
        Begin::Keyword(kw, from) => {
            (bulk("keyword"), Reply::Map(vec![(bulk("keyword"), bulk(kw)), (bulk("startfrom"), Reply::Int(*from))]))
        }
        Begin::Unknown => (bulk("unknown"), Reply::Map(Vec::new())),
    };
    m.push((bulk("begin_search"), Reply::Map(vec![(bulk("type"), begin.0), (bulk("spec"), begin.1)])));
    let find = match &k.find {
        Find::Range { lastkey, keystep, limit } => (
            bulk("range"),
            Reply::Map(vec![
                (bulk("lastkey"), Reply::Int(*lastkey)),
                (bulk("keystep"), Reply::Int(*keystep)),
                (bulk("limit"), Reply::Int(*limit)),
            ]),
        ),
        Find::Keynum { keynumidx, firstkey, keystep } => (
            bulk("keynum"),
            Reply::Map(vec![
                (bulk("keynumidx"), Reply::Int(*keynumidx)),
                (bulk("firstkey"), Reply::Int(*firstkey)),
                (bulk("keystep"), Reply::Int(*keystep)),
            ]),
        ),
        Find::Unknown => (bulk("unknown"), Reply::Map(Vec::new())),
    };
    m.push((bulk("find_keys"), Reply::Map(vec![(bulk("type"), find.0), (bulk("spec"), find.1)])));
    Reply::Map(m)
}

/// Redis 7's ten-element COMMAND INFO entry.
fn info_reply(m: &Meta) -> Reply {
    let subs = if m.subcommands.is_empty() {
        Reply::Set(Vec::new())
    } else {
        Reply::Array(m.subcommands.iter().map(info_reply).collect())
    };
    Reply::Array(vec![
        bulk(m.name),
        Reply::Int(m.arity),
        set_of_simple(&m.flags),
        Reply::Int(m.first),
        Reply::Int(m.last),
        Reply::Int(m.step),
        set_of_simple(&m.acl),
        Reply::Set(m.tips.iter().map(|t| bulk(t)).collect()),
        Reply::Set(m.keys.iter().map(key_spec_reply).collect()),
        subs,
    ])
}

/// A COMMAND DOCS entry: summary, since, group, complexity, and the
/// deprecation details and subcommands where there are any.
fn docs_reply(m: &Meta) -> Reply {
    let mut d = vec![
        (bulk("summary"), bulk(m.summary)),
        (bulk("since"), bulk(m.since)),
        (bulk("group"), bulk(m.group)),
        (bulk("complexity"), bulk(m.complexity)),
    ];
    if !m.doc_flags.is_empty() {
        d.push((bulk("doc_flags"), set_of_simple(&m.doc_flags)));
    }
    if let Some(s) = m.deprecated_since {
        d.push((bulk("deprecated_since"), bulk(s)));
    }
    if let Some(s) = m.replaced_by {
        d.push((bulk("replaced_by"), bulk(s)));
    }
    if !m.subcommands.is_empty() {
        d.push((
            bulk("subcommands"),
            Reply::Map(m.subcommands.iter().map(|s| (bulk(s.name), docs_reply(s))).collect()),
        ));
    }
    Reply::Map(d)
}

const COMMAND_HELP: &[&str] = &[
    "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "GETKEYS <full-command>",
    "    Return the keys from a full Redis command.",
    "GETKEYSANDFLAGS <full-command>",
    "    Return the keys and the access flags from a full Redis command.",
    "HELP",
    "    Prints this help.",
];

/// COMMAND [COUNT | INFO | DOCS | LIST | GETKEYS | GETKEYSANDFLAGS | HELP].
pub fn command_command(conn: &mut Conn, argv: &[&[u8]]) -> Reply {
    let t = table(&conn.shared.engine);
    if argv.len() == 1 {
        return Reply::Array(t.commands.iter().map(info_reply).collect());
    }
    let sub = match subcommand(conn, "command", argv) {
        Ok(s) => s,
        Err(e) => return e,
    };
    match sub {
        "count" => Reply::Int(t.commands.len() as i64),
        "info" if argv.len() == 2 => Reply::Array(t.commands.iter().map(info_reply).collect()),
        "info" => Reply::Array(argv[2..].iter().map(|n| lookup(t, n).map_or(Reply::Nil, info_reply)).collect()),
        "docs" if argv.len() == 2 => Reply::Map(t.commands.iter().map(|m| (bulk(m.name), docs_reply(m))).collect()),
        "docs" => {
            Reply::Map(argv[2..].iter().filter_map(|n| lookup(t, n)).map(|m| (bulk(m.name), docs_reply(m))).collect())
        }
        "list" => list(t, argv),
        "getkeys" | "getkeysandflags" => getkeys(conn, t, &argv[2..], sub == "getkeysandflags"),
        _ => Reply::Array(COMMAND_HELP.iter().map(|l| Reply::Simple((*l).into())).collect()),
    }
}

/// COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN glob]:
/// every command and subcommand name.
fn list(t: &Table, argv: &[&[u8]]) -> Reply {
    let all = t.commands.iter().flat_map(|m| std::iter::once(m).chain(m.subcommands.iter()));
    let keep: Box<dyn Fn(&Meta) -> bool> = match argv.len() {
        2 => Box::new(|_| true),
        5 if argv[2].eq_ignore_ascii_case(b"filterby") => {
            let value = argv[4].to_vec();
            let kind = argv[3].to_ascii_lowercase();
            match kind.as_slice() {
                // FastCache loads no modules.
                b"module" => Box::new(|_| false),
                b"aclcat" => {
                    let cat = format!("@{}", String::from_utf8_lossy(&value).to_ascii_lowercase());
                    Box::new(move |m| m.acl.contains(&cat.as_str()))
                }
                b"pattern" => Box::new(move |m| glob_match(&value, m.name.as_bytes(), true)),
                _ => return errors::SYNTAX,
            }
        }
        _ => return errors::SYNTAX,
    };
    Reply::Array(all.filter(|m| keep(m)).map(|m| bulk(m.name)).collect())
}

/// The key positions a key spec yields for `argv`, as Redis'
/// `getKeysUsingKeySpecs`; `None` when the spec cannot be applied (unknown
/// kind, or the arguments do not fit it).
fn spec_positions(k: &KeySpec, argv: &[&[u8]]) -> Option<Vec<usize>> {
    let argc = argv.len() as i64;
    let mut first = match k.begin {
        Begin::Index(i) => i,
        Begin::Keyword(kw, from) => {
            let start = if from > 0 { from } else { argc + from };
            let end = if from > 0 { argc - 1 } else { 0 };
            let mut i = start;
            let mut found = None;
            while (0..argc).contains(&i) {
                if argv[i as usize].eq_ignore_ascii_case(kw.as_bytes()) {
                    found = Some(i + 1);
                    break;
                }
                if i == end {
                    break;
                }
                i += if start <= end { 1 } else { -1 };
            }
            // A keyword that is absent yields no keys, which is not an error.
            match found {
                Some(f) => f,
                None => return Some(Vec::new()),
            }
        }
        Begin::Unknown => return None,
    };
    let (last, step) = match k.find {
        Find::Range { lastkey, keystep, limit } => {
            let last = if lastkey >= 0 {
                first + lastkey
            } else if limit == 0 {
                argc + lastkey
            } else {
                first + ((argc - first) / limit + lastkey)
            };
            (last, keystep)
        }
        Find::Keynum { keynumidx, firstkey, keystep } => {
            if keynumidx >= argc - first {
                return None;
            }
            let n = parse_i64(argv[(first + keynumidx) as usize]).filter(|&n| n >= 0)?;
            first += firstkey;
            (first + n - 1, keystep)
        }
        Find::Unknown => return None,
    };
    if last >= argc || last < first || first >= argc {
        return None;
    }
    Some((first..=last).step_by(step.max(1) as usize).map(|i| i as usize).collect())
}

/// COMMAND GETKEYS / GETKEYSANDFLAGS `full-command`.
fn getkeys(conn: &Conn, t: &Table, cmd: &[&[u8]], with_flags: bool) -> Reply {
    let Some(mut meta) = lookup(t, cmd[0]) else {
        return Reply::err("ERR Invalid command specified");
    };
    if !meta.subcommands.is_empty() {
        // A container's keys are its subcommand's.
        match cmd.get(1).and_then(|s| meta.sub(s)) {
            Some(s) => meta = s,
            None if cmd.len() > 1 => return Reply::err("ERR Invalid command specified"),
            None => {}
        }
    }
    if !meta.keys.iter().any(|k| !k.flags.contains(&"not_key")) {
        return Reply::err("ERR The command has no key arguments");
    }
    if !meta.arity_ok(cmd.len()) {
        return Reply::err("ERR Invalid number of arguments specified for command");
    }
    let mut found: Vec<(usize, &KeySpec)> = Vec::new();
    let mut complete = true;
    for k in &meta.keys {
        match spec_positions(k, cmd) {
            Some(p) => found.extend(p.into_iter().map(|i| (i, k))),
            None => {
                complete = false;
                break;
            }
        }
    }
    if !complete {
        found.clear();
        // Where the specs cannot tell (SORT's BY/GET/STORE), the engine's
        // own key finder decides: it is what FastCache locks.
        let unknown = meta.keys.iter().any(|k| k.begin == Begin::Unknown);
        if let (true, Some(spec)) = (unknown, conn.shared.engine.command(cmd[0])) {
            if let LockSet::Args(pos) = spec.lock_set(cmd) {
                let last = meta.keys.last();
                for p in pos {
                    let covered = meta.keys.iter().find(|k| spec_positions(k, cmd).is_some_and(|v| v.contains(&p)));
                    if let Some(k) = covered.or(last) {
                        found.push((p, k));
                    }
                }
            }
        }
    }
    if found.is_empty() {
        return Reply::err("ERR Invalid arguments specified for command");
    }
    Reply::Array(
        found
            .into_iter()
            .filter_map(|(p, k)| {
                let key = Reply::bulk(cmd.get(p)?);
                Some(if with_flags { Reply::Array(vec![key, set_of_simple(key_flags(meta, k, cmd))]) } else { key })
            })
            .collect(),
    )
}

/// A key's flags for GETKEYSANDFLAGS. A spec marked `variable_flags`
/// (SET) depends on the arguments, as Redis' `setGetKeys` decides: with
/// GET the old value is read, without it the key is only overwritten.
fn key_flags<'m>(meta: &'m Meta, k: &'m KeySpec, cmd: &[&[u8]]) -> &'m [&'static str] {
    if meta.name == "set" && k.flags.contains(&"variable_flags") {
        if cmd.iter().skip(3).any(|a| a.eq_ignore_ascii_case(b"get")) {
            return &["RW", "access", "update"];
        }
        return &["OW", "update"];
    }
    &k.flags
}

/// Redis 7.0.15's description of every command FastCache runs. One line a
/// command: `name | arity | first last step | flags | ACL categories |
/// tips | group | since | complexity | summary` (`-` for an empty list);
/// indented `key` lines are its key specs (`flags | begin_search |
/// find_keys [| notes]`) and a `doc` line its deprecation (`doc_flags |
/// deprecated_since | replaced_by`). Subcommands (`client|list`) follow
/// their container.
const TABLE: &str = r#"
append | 3 | 1 1 1 | write denyoom fast | @write @string @fast | - | string | 2.0.0 | O(1). The amortized time complexity is O(1) assuming the appended value is small and the already present value is of any size, since the dynamic string library used by Redis will double the free space available on every reallocation. | Append a value to a key
  key RW,insert | index 1 | range 0 1 0
auth | -2 | 0 0 0 | noscript loading stale fast no_auth allow_busy | @fast @connection | - | connection | 1.0.0 | O(N) where N is the number of passwords defined for the user | Authenticate to the server
blmove | 6 | 1 2 1 | write denyoom noscript blocking | @write @list @slow @blocking | - | list | 6.2.0 | O(1) | Pop an element from a list, push it to another list and return it; or block until one is available
  key RW,access,delete | index 1 | range 0 1 0
  key RW,insert | index 2 | range 0 1 0
blpop | -3 | 1 -2 1 | write noscript blocking | @write @list @slow @blocking | - | list | 2.0.0 | O(N) where N is the number of provided keys. | Remove and get the first element in a list, or block until one is available
  key RW,access,delete | index 1 | range -2 1 0
brpop | -3 | 1 -2 1 | write noscript blocking | @write @list @slow @blocking | - | list | 2.0.0 | O(N) where N is the number of provided keys. | Remove and get the last element in a list, or block until one is available
  key RW,access,delete | index 1 | range -2 1 0
brpoplpush | 4 | 1 2 1 | write denyoom noscript blocking | @write @list @slow @blocking | - | list | 2.2.0 | O(1) | Pop an element from a list, push it to another list and return it; or block until one is available
  key RW,access,delete | index 1 | range 0 1 0
  key RW,insert | index 2 | range 0 1 0
  doc deprecated | 6.2.0 | `BLMOVE` with the `RIGHT` and `LEFT` arguments
bzpopmax | -3 | 1 -2 1 | write noscript blocking fast | @write @sortedset @fast @blocking | - | sorted-set | 5.0.0 | O(log(N)) with N being the number of elements in the sorted set. | Remove and return the member with the highest score from one or more sorted sets, or block until one is available
  key RW,access,delete | index 1 | range -2 1 0
bzpopmin | -3 | 1 -2 1 | write noscript blocking fast | @write @sortedset @fast @blocking | - | sorted-set | 5.0.0 | O(log(N)) with N being the number of elements in the sorted set. | Remove and return the member with the lowest score from one or more sorted sets, or block until one is available
  key RW,access,delete | index 1 | range -2 1 0
client | -2 | 0 0 0 | - | @slow | - | connection | 2.4.0 | Depends on subcommand. | A container for client connection commands
client|getname | 2 | 0 0 0 | noscript loading stale | @slow @connection | - | connection | 2.6.9 | O(1) | Get the current connection name
client|help | 2 | 0 0 0 | loading stale | @slow @connection | - | connection | 5.0.0 | O(1) | Show helpful text about the different subcommands
client|id | 2 | 0 0 0 | noscript loading stale | @slow @connection | - | connection | 5.0.0 | O(1) | Returns the client ID for the current connection
client|info | 2 | 0 0 0 | noscript loading stale | @slow @connection | nondeterministic_output | connection | 6.2.0 | O(1) | Returns information about the current client connection.
client|kill | -3 | 0 0 0 | admin noscript loading stale | @admin @slow @dangerous @connection | - | connection | 2.4.0 | O(N) where N is the number of client connections | Kill the connection of a client
client|list | -2 | 0 0 0 | admin noscript loading stale | @admin @slow @dangerous @connection | nondeterministic_output | connection | 2.4.0 | O(N) where N is the number of client connections | Get the list of client connections
client|no-evict | 3 | 0 0 0 | admin noscript loading stale | @admin @slow @dangerous @connection | - | connection | 7.0.0 | O(1) | Set client eviction mode for the current connection
client|reply | 3 | 0 0 0 | noscript loading stale | @slow @connection | - | connection | 3.2.0 | O(1) | Instruct the server whether to reply to commands
client|setinfo | 4 | 0 0 0 | noscript loading stale | @slow @connection | request_policy:all_nodes response_policy:all_succeeded | connection | 7.2.0 | O(1) | Set client or connection specific info
client|setname | 3 | 0 0 0 | noscript loading stale | @slow @connection | - | connection | 2.6.9 | O(1) | Set the current connection name
client|unblock | -3 | 0 0 0 | admin noscript loading stale | @admin @slow @dangerous @connection | - | connection | 5.0.0 | O(log N) where N is the number of client connections | Unblock a client blocked in a blocking command from a different connection
command | -1 | 0 0 0 | loading stale | @slow @connection | nondeterministic_output_order | server | 2.8.13 | O(N) where N is the total number of Redis commands | Get array of Redis command details
command|count | 2 | 0 0 0 | loading stale | @slow @connection | - | server | 2.8.13 | O(1) | Get total number of Redis commands
command|docs | -2 | 0 0 0 | loading stale | @slow @connection | nondeterministic_output_order | server | 7.0.0 | O(N) where N is the number of commands to look up | Get array of specific Redis command documentation
command|getkeys | -4 | 0 0 0 | loading stale | @slow @connection | - | server | 2.8.13 | O(N) where N is the number of arguments to the command | Extract keys given a full Redis command
command|getkeysandflags | -4 | 0 0 0 | loading stale | @slow @connection | - | server | 7.0.0 | O(N) where N is the number of arguments to the command | Extract keys and access flags given a full Redis command
command|help | 2 | 0 0 0 | loading stale | @slow @connection | - | server | 5.0.0 | O(1) | Show helpful text about the different subcommands
command|info | -2 | 0 0 0 | loading stale | @slow @connection | nondeterministic_output_order | server | 2.8.13 | O(N) where N is the number of commands to look up | Get array of specific Redis command details, or all when no argument is given.
command|list | -2 | 0 0 0 | loading stale | @slow @connection | nondeterministic_output_order | server | 7.0.0 | O(N) where N is the total number of Redis commands | Get an array of Redis command names
config | -2 | 0 0 0 | - | @slow | - | server | 2.0.0 | Depends on subcommand. | A container for server configuration commands
config|get | -3 | 0 0 0 | admin noscript loading stale | @admin @slow @dangerous | - | server | 2.0.0 | O(N) when N is the number of configuration parameters provided | Get the values of configuration parameters
config|help | 2 | 0 0 0 | loading stale | @slow | - | server | 5.0.0 | O(1) | Show helpful text about the different subcommands
config|resetstat | 2 | 0 0 0 | admin noscript loading stale | @admin @slow @dangerous | - | server | 2.0.0 | O(1) | Reset the stats returned by INFO
config|rewrite | 2 | 0 0 0 | admin noscript loading stale | @admin @slow @dangerous | - | server | 2.8.0 | O(1) | Rewrite the configuration file with the in memory configuration
config|set | -4 | 0 0 0 | admin noscript loading stale | @admin @slow @dangerous | request_policy:all_nodes response_policy:all_succeeded | server | 2.0.0 | O(N) when N is the number of configuration parameters provided | Set configuration parameters to the given values
copy | -3 | 1 2 1 | write denyoom | @keyspace @write @slow | - | generic | 6.2.0 | O(N) worst case for collections, where N is the number of nested items. O(1) for string values. | Copy a key
  key RO,access | index 1 | range 0 1 0
  key OW,update | index 2 | range 0 1 0
dbsize | 1 | 0 0 0 | readonly fast | @keyspace @read @fast | request_policy:all_shards response_policy:agg_sum | server | 1.0.0 | O(1) | Return the number of keys in the selected database
debug | -2 | 0 0 0 | admin noscript loading stale | @admin @slow @dangerous | - | server | 1.0.0 | Depends on subcommand. | A container for debugging commands
  doc syscmd | - | -
decr | 2 | 1 1 1 | write denyoom fast | @write @string @fast | - | string | 1.0.0 | O(1) | Decrement the integer value of a key by one
  key RW,access,update | index 1 | range 0 1 0
decrby | 3 | 1 1 1 | write denyoom fast | @write @string @fast | - | string | 1.0.0 | O(1) | Decrement the integer value of a key by the given number
  key RW,access,update | index 1 | range 0 1 0
del | -2 | 1 -1 1 | write | @keyspace @write @slow | request_policy:multi_shard response_policy:agg_sum | generic | 1.0.0 | O(N) where N is the number of keys that will be removed. When a key to remove holds a value other than a string, the individual complexity for this key is O(M) where M is the number of elements in the list, set, sorted set or hash. Removing a single key that holds a string value is O(1). | Delete a key
  key RM,delete | index 1 | range -1 1 0
discard | 1 | 0 0 0 | noscript loading stale fast allow_busy | @fast @transaction | - | transactions | 2.0.0 | O(N), when N is the number of queued commands | Discard all commands issued after MULTI
dump | 2 | 1 1 1 | readonly | @keyspace @read @slow | nondeterministic_output | generic | 2.6.0 | O(1) to access the key and additional O(N*M) to serialize it, where N is the number of Redis objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1). | Return a serialized version of the value stored at the specified key.
  key RO,access | index 1 | range 0 1 0
echo | 2 | 0 0 0 | loading stale fast | @fast @connection | - | connection | 1.0.0 | O(1) | Echo the given string
exec | 1 | 0 0 0 | noscript loading stale skip_slowlog | @slow @transaction | - | transactions | 1.2.0 | Depends on commands in the transaction | Execute all commands issued after MULTI
exists | -2 | 1 -1 1 | readonly fast | @keyspace @read @fast | request_policy:multi_shard response_policy:agg_sum | generic | 1.0.0 | O(N) where N is the number of keys to check. | Determine if a key exists
  key RO | index 1 | range -1 1 0
expire | -3 | 1 1 1 | write fast | @keyspace @write @fast | - | generic | 1.0.0 | O(1) | Set a key's time to live in seconds
  key RW,update | index 1 | range 0 1 0
expireat | -3 | 1 1 1 | write fast | @keyspace @write @fast | - | generic | 1.2.0 | O(1) | Set the expiration for a key as a UNIX timestamp
  key RW,update | index 1 | range 0 1 0
expiretime | 2 | 1 1 1 | readonly fast | @keyspace @read @fast | - | generic | 7.0.0 | O(1) | Get the expiration Unix timestamp for a key
  key RO,access | index 1 | range 0 1 0
flushall | -1 | 0 0 0 | write | @keyspace @write @slow @dangerous | request_policy:all_shards response_policy:all_succeeded | server | 1.0.0 | O(N) where N is the total number of keys in all databases | Remove all keys from all databases
flushdb | -1 | 0 0 0 | write | @keyspace @write @slow @dangerous | request_policy:all_shards response_policy:all_succeeded | server | 1.0.0 | O(N) where N is the number of keys in the selected database | Remove all keys from the current database
get | 2 | 1 1 1 | readonly fast | @read @string @fast | - | string | 1.0.0 | O(1) | Get the value of a key
  key RO,access | index 1 | range 0 1 0
getdel | 2 | 1 1 1 | write fast | @write @string @fast | - | string | 6.2.0 | O(1) | Get the value of a key and delete the key
  key RW,access,delete | index 1 | range 0 1 0
getex | -2 | 1 1 1 | write fast | @write @string @fast | - | string | 6.2.0 | O(1) | Get the value of a key and optionally set its expiration
  key RW,access,update | index 1 | range 0 1 0 | RW and UPDATE because it changes the TTL
getrange | 4 | 1 1 1 | readonly | @read @string @slow | - | string | 2.4.0 | O(N) where N is the length of the returned string. The complexity is ultimately determined by the returned length, but because creating a substring from an existing string is very cheap, it can be considered O(1) for small strings. | Get a substring of the string stored at a key
  key RO,access | index 1 | range 0 1 0
getset | 3 | 1 1 1 | write denyoom fast | @write @string @fast | - | string | 1.0.0 | O(1) | Set the string value of a key and return its old value
  key RW,access,update | index 1 | range 0 1 0
  doc deprecated | 6.2.0 | `SET` with the `!GET` argument
hdel | -3 | 1 1 1 | write fast | @write @hash @fast | - | hash | 2.0.0 | O(N) where N is the number of fields to be removed. | Delete one or more hash fields
  key RW,delete | index 1 | range 0 1 0
hello | -1 | 0 0 0 | noscript loading stale fast no_auth allow_busy | @fast @connection | - | connection | 6.0.0 | O(1) | Handshake with Redis
hexists | 3 | 1 1 1 | readonly fast | @read @hash @fast | - | hash | 2.0.0 | O(1) | Determine if a hash field exists
  key RO | index 1 | range 0 1 0
hget | 3 | 1 1 1 | readonly fast | @read @hash @fast | - | hash | 2.0.0 | O(1) | Get the value of a hash field
  key RO,access | index 1 | range 0 1 0
hgetall | 2 | 1 1 1 | readonly | @read @hash @slow | nondeterministic_output_order | hash | 2.0.0 | O(N) where N is the size of the hash. | Get all the fields and values in a hash
  key RO,access | index 1 | range 0 1 0
hincrby | 4 | 1 1 1 | write denyoom fast | @write @hash @fast | - | hash | 2.0.0 | O(1) | Increment the integer value of a hash field by the given number
  key RW,access,update | index 1 | range 0 1 0
hincrbyfloat | 4 | 1 1 1 | write denyoom fast | @write @hash @fast | - | hash | 2.6.0 | O(1) | Increment the float value of a hash field by the given amount
  key RW,access,update | index 1 | range 0 1 0
hkeys | 2 | 1 1 1 | readonly | @read @hash @slow | nondeterministic_output_order | hash | 2.0.0 | O(N) where N is the size of the hash. | Get all the fields in a hash
  key RO,access | index 1 | range 0 1 0
hlen | 2 | 1 1 1 | readonly fast | @read @hash @fast | - | hash | 2.0.0 | O(1) | Get the number of fields in a hash
  key RO | index 1 | range 0 1 0
hmget | -3 | 1 1 1 | readonly fast | @read @hash @fast | - | hash | 2.0.0 | O(N) where N is the number of fields being requested. | Get the values of all the given hash fields
  key RO,access | index 1 | range 0 1 0
hmset | -4 | 1 1 1 | write denyoom fast | @write @hash @fast | - | hash | 2.0.0 | O(N) where N is the number of fields being set. | Set multiple hash fields to multiple values
  key RW,update | index 1 | range 0 1 0
  doc deprecated | 4.0.0 | `HSET` with multiple field-value pairs
hrandfield | -2 | 1 1 1 | readonly | @read @hash @slow | nondeterministic_output | hash | 6.2.0 | O(N) where N is the number of fields returned | Get one or multiple random fields from a hash
  key RO,access | index 1 | range 0 1 0
hscan | -3 | 1 1 1 | readonly | @read @hash @slow | nondeterministic_output | hash | 2.8.0 | O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection.. | Incrementally iterate hash fields and associated values
  key RO,access | index 1 | range 0 1 0
hset | -4 | 1 1 1 | write denyoom fast | @write @hash @fast | - | hash | 2.0.0 | O(1) for each field/value pair added, so O(N) to add N field/value pairs when the command is called with multiple field/value pairs. | Set the string value of a hash field
  key RW,update | index 1 | range 0 1 0
hsetnx | 4 | 1 1 1 | write denyoom fast | @write @hash @fast | - | hash | 2.0.0 | O(1) | Set the value of a hash field, only if the field does not exist
  key RW,insert | index 1 | range 0 1 0
hstrlen | 3 | 1 1 1 | readonly fast | @read @hash @fast | - | hash | 3.2.0 | O(1) | Get the length of the value of a hash field
  key RO | index 1 | range 0 1 0
hvals | 2 | 1 1 1 | readonly | @read @hash @slow | nondeterministic_output_order | hash | 2.0.0 | O(N) where N is the size of the hash. | Get all the values in a hash
  key RO,access | index 1 | range 0 1 0
incr | 2 | 1 1 1 | write denyoom fast | @write @string @fast | - | string | 1.0.0 | O(1) | Increment the integer value of a key by one
  key RW,access,update | index 1 | range 0 1 0
incrby | 3 | 1 1 1 | write denyoom fast | @write @string @fast | - | string | 1.0.0 | O(1) | Increment the integer value of a key by the given amount
  key RW,access,update | index 1 | range 0 1 0
incrbyfloat | 3 | 1 1 1 | write denyoom fast | @write @string @fast | - | string | 2.6.0 | O(1) | Increment the float value of a key by the given amount
  key RW,access,update | index 1 | range 0 1 0
info | -1 | 0 0 0 | loading stale | @slow @dangerous | nondeterministic_output request_policy:all_shards response_policy:special | server | 1.0.0 | O(1) | Get information and statistics about the server
keys | 2 | 0 0 0 | readonly | @keyspace @read @slow @dangerous | request_policy:all_shards nondeterministic_output_order | generic | 1.0.0 | O(N) with N being the number of keys in the database, under the assumption that the key names in the database and the given pattern have limited length. | Find all keys matching the given pattern
lastsave | 1 | 0 0 0 | loading stale fast | @admin @fast @dangerous | nondeterministic_output | server | 1.0.0 | O(1) | Get the UNIX time stamp of the last successful save to disk
lindex | 3 | 1 1 1 | readonly | @read @list @slow | - | list | 1.0.0 | O(N) where N is the number of elements to traverse to get to the element at index. This makes asking for the first or the last element of the list O(1). | Get an element from a list by its index
  key RO,access | index 1 | range 0 1 0
linsert | 5 | 1 1 1 | write denyoom | @write @list @slow | - | list | 2.2.0 | O(N) where N is the number of elements to traverse before seeing the value pivot. This means that inserting somewhere on the left end on the list (head) can be considered O(1) and inserting somewhere on the right end (tail) is O(N). | Insert an element before or after another element in a list
  key RW,insert | index 1 | range 0 1 0
llen | 2 | 1 1 1 | readonly fast | @read @list @fast | - | list | 1.0.0 | O(1) | Get the length of a list
  key RO | index 1 | range 0 1 0
lmove | 5 | 1 2 1 | write denyoom | @write @list @slow | - | list | 6.2.0 | O(1) | Pop an element from a list, push it to another list and return it
  key RW,access,delete | index 1 | range 0 1 0
  key RW,insert | index 2 | range 0 1 0
lpop | -2 | 1 1 1 | write fast | @write @list @fast | - | list | 1.0.0 | O(N) where N is the number of elements returned | Remove and get the first elements in a list
  key RW,access,delete | index 1 | range 0 1 0
lpos | -3 | 1 1 1 | readonly | @read @list @slow | - | list | 6.0.6 | O(N) where N is the number of elements in the list, for the average case. When searching for elements near the head or the tail of the list, or when the MAXLEN option is provided, the command may run in constant time. | Return the index of matching elements on a list
  key RO,access | index 1 | range 0 1 0
lpush | -3 | 1 1 1 | write denyoom fast | @write @list @fast | - | list | 1.0.0 | O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments. | Prepend one or multiple elements to a list
  key RW,insert | index 1 | range 0 1 0
lpushx | -3 | 1 1 1 | write denyoom fast | @write @list @fast | - | list | 2.2.0 | O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments. | Prepend an element to a list, only if the list exists
  key RW,insert | index 1 | range 0 1 0
lrange | 4 | 1 1 1 | readonly | @read @list @slow | - | list | 1.0.0 | O(S+N) where S is the distance of start offset from HEAD for small lists, from nearest end (HEAD or TAIL) for large lists; and N is the number of elements in the specified range. | Get a range of elements from a list
  key RO,access | index 1 | range 0 1 0
lrem | 4 | 1 1 1 | write | @write @list @slow | - | list | 1.0.0 | O(N+M) where N is the length of the list and M is the number of elements removed. | Remove elements from a list
  key RW,delete | index 1 | range 0 1 0
lset | 4 | 1 1 1 | write denyoom | @write @list @slow | - | list | 1.0.0 | O(N) where N is the length of the list. Setting either the first or the last element of the list is O(1). | Set the value of an element in a list by its index
  key RW,update | index 1 | range 0 1 0
ltrim | 4 | 1 1 1 | write | @write @list @slow | - | list | 1.0.0 | O(N) where N is the number of elements to be removed by the operation. | Trim a list to the specified range
  key RW,delete | index 1 | range 0 1 0
memory | -2 | 0 0 0 | - | @slow | - | server | 4.0.0 | Depends on subcommand. | A container for memory diagnostics commands
memory|help | 2 | 0 0 0 | loading stale | @slow | - | server | 4.0.0 | O(1) | Show helpful text about the different subcommands
memory|malloc-stats | 2 | 0 0 0 | - | @slow | nondeterministic_output request_policy:all_shards response_policy:special | server | 4.0.0 | Depends on how much memory is allocated, could be slow | Show allocator internal stats
memory|purge | 2 | 0 0 0 | - | @slow | request_policy:all_shards response_policy:all_succeeded | server | 4.0.0 | Depends on how much memory is allocated, could be slow | Ask the allocator to release memory
memory|usage | -3 | 2 2 1 | readonly | @read @slow | - | server | 4.0.0 | O(N) where N is the number of samples. | Estimate the memory usage of a key
  key RO | index 2 | range 0 1 0
mget | -2 | 1 -1 1 | readonly fast | @read @string @fast | request_policy:multi_shard | string | 1.0.0 | O(N) where N is the number of keys to retrieve. | Get the values of all the given keys
  key RO,access | index 1 | range -1 1 0
move | 3 | 1 1 1 | write fast | @keyspace @write @fast | - | generic | 1.0.0 | O(1) | Move a key to another database
  key RW,access,update | index 1 | range 0 1 0
mset | -3 | 1 -1 2 | write denyoom | @write @string @slow | request_policy:multi_shard response_policy:all_succeeded | string | 1.0.1 | O(N) where N is the number of keys to set. | Set multiple keys to multiple values
  key OW,update | index 1 | range -1 2 0
msetnx | -3 | 1 -1 2 | write denyoom | @write @string @slow | request_policy:multi_shard response_policy:agg_min | string | 1.0.1 | O(N) where N is the number of keys to set. | Set multiple keys to multiple values, only if none of the keys exist
  key OW,insert | index 1 | range -1 2 0
multi | 1 | 0 0 0 | noscript loading stale fast allow_busy | @fast @transaction | - | transactions | 1.2.0 | O(1) | Mark the start of a transaction block
object | -2 | 0 0 0 | - | @slow | - | generic | 2.2.3 | Depends on subcommand. | A container for object introspection commands
object|encoding | 3 | 2 2 1 | readonly | @keyspace @read @slow | nondeterministic_output | generic | 2.2.3 | O(1) | Inspect the internal encoding of a Redis object
  key RO | index 2 | range 0 1 0
object|freq | 3 | 2 2 1 | readonly | @keyspace @read @slow | nondeterministic_output | generic | 4.0.0 | O(1) | Get the logarithmic access frequency counter of a Redis object
  key RO | index 2 | range 0 1 0
object|help | 2 | 0 0 0 | loading stale | @keyspace @slow | - | generic | 6.2.0 | O(1) | Show helpful text about the different subcommands
object|idletime | 3 | 2 2 1 | readonly | @keyspace @read @slow | nondeterministic_output | generic | 2.2.3 | O(1) | Get the time since a Redis object was last accessed
  key RO | index 2 | range 0 1 0
object|refcount | 3 | 2 2 1 | readonly | @keyspace @read @slow | nondeterministic_output | generic | 2.2.3 | O(1) | Get the number of references to the value of the key
  key RO | index 2 | range 0 1 0
persist | 2 | 1 1 1 | write fast | @keyspace @write @fast | - | generic | 2.2.0 | O(1) | Remove the expiration from a key
  key RW,update | index 1 | range 0 1 0
pexpire | -3 | 1 1 1 | write fast | @keyspace @write @fast | - | generic | 2.6.0 | O(1) | Set a key's time to live in milliseconds
  key RW,update | index 1 | range 0 1 0
pexpireat | -3 | 1 1 1 | write fast | @keyspace @write @fast | - | generic | 2.6.0 | O(1) | Set the expiration for a key as a UNIX timestamp specified in milliseconds
  key RW,update | index 1 | range 0 1 0
pexpiretime | 2 | 1 1 1 | readonly fast | @keyspace @read @fast | - | generic | 7.0.0 | O(1) | Get the expiration Unix timestamp for a key in milliseconds
  key RO,access | index 1 | range 0 1 0
ping | -1 | 0 0 0 | fast | @fast @connection | request_policy:all_shards response_policy:all_succeeded | connection | 1.0.0 | O(1) | Ping the server
psetex | 4 | 1 1 1 | write denyoom | @write @string @slow | - | string | 2.6.0 | O(1) | Set the value and expiration in milliseconds of a key
  key OW,update | index 1 | range 0 1 0
psubscribe | -2 | 0 0 0 | pubsub noscript loading stale | @pubsub @slow | - | pubsub | 2.0.0 | O(N) where N is the number of patterns the client is already subscribed to. | Listen for messages published to channels matching the given patterns
pttl | 2 | 1 1 1 | readonly fast | @keyspace @read @fast | nondeterministic_output | generic | 2.6.0 | O(1) | Get the time to live for a key in milliseconds
  key RO,access | index 1 | range 0 1 0
publish | 3 | 0 0 0 | pubsub loading stale fast | @pubsub @fast | - | pubsub | 2.0.0 | O(N+M) where N is the number of clients subscribed to the receiving channel and M is the total number of subscribed patterns (by any client). | Post a message to a channel
pubsub | -2 | 0 0 0 | - | @slow | - | pubsub | 2.8.0 | Depends on subcommand. | A container for Pub/Sub commands
pubsub|channels | -2 | 0 0 0 | pubsub loading stale | @pubsub @slow | - | pubsub | 2.8.0 | O(N) where N is the number of active channels, and assuming constant time pattern matching (relatively short channels and patterns) | List active channels
pubsub|help | 2 | 0 0 0 | loading stale | @slow | - | pubsub | 6.2.0 | O(1) | Show helpful text about the different subcommands
pubsub|numpat | 2 | 0 0 0 | pubsub loading stale | @pubsub @slow | - | pubsub | 2.8.0 | O(1) | Get the count of unique patterns pattern subscriptions
pubsub|numsub | -2 | 0 0 0 | pubsub loading stale | @pubsub @slow | - | pubsub | 2.8.0 | O(N) for the NUMSUB subcommand, where N is the number of requested channels | Get the count of subscribers for channels
punsubscribe | -1 | 0 0 0 | pubsub noscript loading stale | @pubsub @slow | - | pubsub | 2.0.0 | O(N+M) where N is the number of patterns the client is already subscribed and M is the number of total patterns subscribed in the system (by any client). | Stop listening for messages posted to channels matching the given patterns
save | 1 | 0 0 0 | admin noscript no_async_loading no_multi | @admin @slow @dangerous | - | server | 1.0.0 | O(N) where N is the total number of keys in all databases | Synchronously save the dataset to disk
bgsave | -1 | 0 0 0 | admin noscript no_async_loading | @admin @slow @dangerous | - | server | 1.0.0 | O(1) | Asynchronously save the dataset to disk
bgrewriteaof | 1 | 0 0 0 | admin noscript no_async_loading | @admin @slow @dangerous | - | server | 1.0.0 | O(1) | Asynchronously rewrite the append-only file
quit | -1 | 0 0 0 | noscript loading stale fast no_auth allow_busy | @fast @connection | - | connection | 1.0.0 | O(1) | Close the connection
randomkey | 1 | 0 0 0 | readonly | @keyspace @read @slow | request_policy:all_shards nondeterministic_output | generic | 1.0.0 | O(1) | Return a random key from the keyspace
rename | 3 | 1 2 1 | write | @keyspace @write @slow | - | generic | 1.0.0 | O(1) | Rename a key
  key RW,access,delete | index 1 | range 0 1 0
  key OW,update | index 2 | range 0 1 0
renamenx | 3 | 1 2 1 | write fast | @keyspace @write @fast | - | generic | 1.0.0 | O(1) | Rename a key, only if the new key does not exist
  key RW,access,delete | index 1 | range 0 1 0
  key OW,insert | index 2 | range 0 1 0
reset | 1 | 0 0 0 | noscript loading stale fast no_auth allow_busy | @fast @connection | - | connection | 6.2.0 | O(1) | Reset the connection
restore | -4 | 1 1 1 | write denyoom | @keyspace @write @slow @dangerous | - | generic | 2.6.0 | O(1) to create the new key and additional O(N*M) to reconstruct the serialized value, where N is the number of Redis objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1). However for sorted set values the complexity is O(N*M*log(N)) because inserting values into sorted sets is O(log(N)). | Create a key using the provided serialized value, previously obtained using DUMP.
  key OW,update | index 1 | range 0 1 0
rpop | -2 | 1 1 1 | write fast | @write @list @fast | - | list | 1.0.0 | O(N) where N is the number of elements returned | Remove and get the last elements in a list
  key RW,access,delete | index 1 | range 0 1 0
rpoplpush | 3 | 1 2 1 | write denyoom | @write @list @slow | - | list | 1.2.0 | O(1) | Remove the last element in a list, prepend it to another list and return it
  key RW,access,delete | index 1 | range 0 1 0
  key RW,insert | index 2 | range 0 1 0
  doc deprecated | 6.2.0 | `LMOVE` with the `RIGHT` and `LEFT` arguments
rpush | -3 | 1 1 1 | write denyoom fast | @write @list @fast | - | list | 1.0.0 | O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments. | Append one or multiple elements to a list
  key RW,insert | index 1 | range 0 1 0
rpushx | -3 | 1 1 1 | write denyoom fast | @write @list @fast | - | list | 2.2.0 | O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments. | Append an element to a list, only if the list exists
  key RW,insert | index 1 | range 0 1 0
sadd | -3 | 1 1 1 | write denyoom fast | @write @set @fast | - | set | 1.0.0 | O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments. | Add one or more members to a set
  key RW,insert | index 1 | range 0 1 0
scan | -2 | 0 0 0 | readonly | @keyspace @read @slow | nondeterministic_output request_policy:special | generic | 2.8.0 | O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection. | Incrementally iterate the keys space
scard | 2 | 1 1 1 | readonly fast | @read @set @fast | - | set | 1.0.0 | O(1) | Get the number of members in a set
  key RO | index 1 | range 0 1 0
sdiff | -2 | 1 -1 1 | readonly | @read @set @slow | nondeterministic_output_order | set | 1.0.0 | O(N) where N is the total number of elements in all given sets. | Subtract multiple sets
  key RO,access | index 1 | range -1 1 0
sdiffstore | -3 | 1 -1 1 | write denyoom | @write @set @slow | - | set | 1.0.0 | O(N) where N is the total number of elements in all given sets. | Subtract multiple sets and store the resulting set in a key
  key OW,update | index 1 | range 0 1 0
  key RO,access | index 2 | range -1 1 0
select | 2 | 0 0 0 | loading stale fast | @fast @connection | - | connection | 1.0.0 | O(1) | Change the selected database for the current connection
set | -3 | 1 1 1 | write denyoom | @write @string @slow | - | string | 1.0.0 | O(1) | Set the string value of a key
  key RW,access,update,variable_flags | index 1 | range 0 1 0 | RW and ACCESS due to the optional `GET` argument
setex | 4 | 1 1 1 | write denyoom | @write @string @slow | - | string | 2.0.0 | O(1) | Set the value and expiration of a key
  key OW,update | index 1 | range 0 1 0
setnx | 3 | 1 1 1 | write denyoom fast | @write @string @fast | - | string | 1.0.0 | O(1) | Set the value of a key, only if the key does not exist
  key OW,insert | index 1 | range 0 1 0
setrange | 4 | 1 1 1 | write denyoom | @write @string @slow | - | string | 2.2.0 | O(1), not counting the time taken to copy the new string in place. Usually, this string is very small so the amortized complexity is O(1). Otherwise, complexity is O(M) with M being the length of the value argument. | Overwrite part of a string at key starting at the specified offset
  key RW,update | index 1 | range 0 1 0
shutdown | -1 | 0 0 0 | admin noscript loading stale no_multi allow_busy | @admin @slow @dangerous | - | server | 1.0.0 | O(N) when saving, where N is the total number of keys in all databases when saving data, otherwise O(1) | Synchronously save the dataset to disk and then shut down the server
sinter | -2 | 1 -1 1 | readonly | @read @set @slow | nondeterministic_output_order | set | 1.0.0 | O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets. | Intersect multiple sets
  key RO,access | index 1 | range -1 1 0
sintercard | -3 | 0 0 0 | readonly movablekeys | @read @set @slow | - | set | 7.0.0 | O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets. | Intersect multiple sets and return the cardinality of the result
  key RO,access | index 1 | keynum 0 1 1
sinterstore | -3 | 1 -1 1 | write denyoom | @write @set @slow | - | set | 1.0.0 | O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets. | Intersect multiple sets and store the resulting set in a key
  key RW,update | index 1 | range 0 1 0
  key RO,access | index 2 | range -1 1 0
sismember | 3 | 1 1 1 | readonly fast | @read @set @fast | - | set | 1.0.0 | O(1) | Determine if a given value is a member of a set
  key RO | index 1 | range 0 1 0
smembers | 2 | 1 1 1 | readonly | @read @set @slow | nondeterministic_output_order | set | 1.0.0 | O(N) where N is the set cardinality. | Get all the members in a set
  key RO,access | index 1 | range 0 1 0
smismember | -3 | 1 1 1 | readonly fast | @read @set @fast | - | set | 6.2.0 | O(N) where N is the number of elements being checked for membership | Returns the membership associated with the given elements for a set
  key RO,access | index 1 | range 0 1 0
smove | 4 | 1 2 1 | write fast | @write @set @fast | - | set | 1.0.0 | O(1) | Move a member from one set to another
  key RW,access,delete | index 1 | range 0 1 0
  key RW,insert | index 2 | range 0 1 0
sort | -2 | 1 1 1 | write denyoom movablekeys | @write @set @sortedset @list @slow @dangerous | - | generic | 1.0.0 | O(N+M*log(M)) where N is the number of elements in the list or set to sort, and M the number of returned elements. When the elements are not sorted, complexity is O(N). | Sort the elements in a list, set or sorted set
  key RO,access | index 1 | range 0 1 0
  key RO,access | unknown | unknown | For the optional BY/GET keyword. It is marked 'unknown' because the key names derive from the content of the key we sort
  key OW,update | unknown | unknown | For the optional STORE keyword. It is marked 'unknown' because the keyword can appear anywhere in the argument array
sort_ro | -2 | 1 1 1 | readonly movablekeys | @read @set @sortedset @list @slow @dangerous | - | generic | 7.0.0 | O(N+M*log(M)) where N is the number of elements in the list or set to sort, and M the number of returned elements. When the elements are not sorted, complexity is O(N). | Sort the elements in a list, set or sorted set. Read-only variant of SORT.
  key RO,access | index 1 | range 0 1 0
  key RO,access | unknown | unknown | For the optional BY/GET keyword. It is marked 'unknown' because the key names derive from the content of the key we sort
spop | -2 | 1 1 1 | write fast | @write @set @fast | nondeterministic_output | set | 1.0.0 | Without the count argument O(1), otherwise O(N) where N is the value of the passed count. | Remove and return one or multiple random members from a set
  key RW,access,delete | index 1 | range 0 1 0
srandmember | -2 | 1 1 1 | readonly | @read @set @slow | nondeterministic_output | set | 1.0.0 | Without the count argument O(1), otherwise O(N) where N is the absolute value of the passed count. | Get one or multiple random members from a set
  key RO,access | index 1 | range 0 1 0
srem | -3 | 1 1 1 | write fast | @write @set @fast | - | set | 1.0.0 | O(N) where N is the number of members to be removed. | Remove one or more members from a set
  key RW,delete | index 1 | range 0 1 0
sscan | -3 | 1 1 1 | readonly | @read @set @slow | nondeterministic_output | set | 2.8.0 | O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection.. | Incrementally iterate Set elements
  key RO,access | index 1 | range 0 1 0
strlen | 2 | 1 1 1 | readonly fast | @read @string @fast | - | string | 2.2.0 | O(1) | Get the length of the value stored in a key
  key RO | index 1 | range 0 1 0
subscribe | -2 | 0 0 0 | pubsub noscript loading stale | @pubsub @slow | - | pubsub | 2.0.0 | O(N) where N is the number of channels to subscribe to. | Listen for messages published to the given channels
substr | 4 | 1 1 1 | readonly | @read @string @slow | - | string | 1.0.0 | O(N) where N is the length of the returned string. The complexity is ultimately determined by the returned length, but because creating a substring from an existing string is very cheap, it can be considered O(1) for small strings. | Get a substring of the string stored at a key
  key RO,access | index 1 | range 0 1 0
  doc deprecated | 2.0.0 | `GETRANGE`
sunion | -2 | 1 -1 1 | readonly | @read @set @slow | nondeterministic_output_order | set | 1.0.0 | O(N) where N is the total number of elements in all given sets. | Add multiple sets
  key RO,access | index 1 | range -1 1 0
sunionstore | -3 | 1 -1 1 | write denyoom | @write @set @slow | - | set | 1.0.0 | O(N) where N is the total number of elements in all given sets. | Add multiple sets and store the resulting set in a key
  key OW,update | index 1 | range 0 1 0
  key RO,access | index 2 | range -1 1 0
swapdb | 3 | 0 0 0 | write fast | @keyspace @write @fast @dangerous | - | server | 4.0.0 | O(N) where N is the count of clients watching or blocking on keys from both databases. | Swaps two Redis databases
time | 1 | 0 0 0 | loading stale fast | @fast | nondeterministic_output | server | 2.6.0 | O(1) | Return the current server time
touch | -2 | 1 -1 1 | readonly fast | @keyspace @read @fast | request_policy:multi_shard response_policy:agg_sum | generic | 3.2.1 | O(N) where N is the number of keys that will be touched. | Alters the last access time of a key(s). Returns the number of existing keys specified.
  key RO | index 1 | range -1 1 0
ttl | 2 | 1 1 1 | readonly fast | @keyspace @read @fast | nondeterministic_output | generic | 1.0.0 | O(1) | Get the time to live for a key in seconds
  key RO,access | index 1 | range 0 1 0
type | 2 | 1 1 1 | readonly fast | @keyspace @read @fast | - | generic | 1.0.0 | O(1) | Determine the type stored at key
  key RO | index 1 | range 0 1 0
unlink | -2 | 1 -1 1 | write fast | @keyspace @write @fast | request_policy:multi_shard response_policy:agg_sum | generic | 4.0.0 | O(1) for each key removed regardless of its size. Then the command does O(N) work in a different thread in order to reclaim memory, where N is the number of allocations the deleted objects where composed of. | Delete a key asynchronously in another thread. Otherwise it is just as DEL, but non blocking.
  key RM,delete | index 1 | range -1 1 0
unsubscribe | -1 | 0 0 0 | pubsub noscript loading stale | @pubsub @slow | - | pubsub | 2.0.0 | O(N) where N is the number of clients already subscribed to a channel. | Stop listening for messages posted to the given channels
unwatch | 1 | 0 0 0 | noscript loading stale fast allow_busy | @fast @transaction | - | transactions | 2.2.0 | O(1) | Forget about all watched keys
watch | -2 | 1 -1 1 | noscript loading stale fast allow_busy | @fast @transaction | - | transactions | 2.2.0 | O(1) for every key. | Watch the given keys to determine execution of the MULTI/EXEC block
  key RO | index 1 | range -1 1 0
zadd | -4 | 1 1 1 | write denyoom fast | @write @sortedset @fast | - | sorted-set | 1.2.0 | O(log(N)) for each item added, where N is the number of elements in the sorted set. | Add one or more members to a sorted set, or update its score if it already exists
  key RW,update | index 1 | range 0 1 0
zcard | 2 | 1 1 1 | readonly fast | @read @sortedset @fast | - | sorted-set | 1.2.0 | O(1) | Get the number of members in a sorted set
  key RO | index 1 | range 0 1 0
zcount | 4 | 1 1 1 | readonly fast | @read @sortedset @fast | - | sorted-set | 2.0.0 | O(log(N)) with N being the number of elements in the sorted set. | Count the members in a sorted set with scores within the given values
  key RO,access | index 1 | range 0 1 0
zdiff | -3 | 0 0 0 | readonly movablekeys | @read @sortedset @slow | - | sorted-set | 6.2.0 | O(L + (N-K)log(N)) worst case where L is the total number of elements in all the sets, N is the size of the first set, and K is the size of the result set. | Subtract multiple sorted sets
  key RO,access | index 1 | keynum 0 1 1
zdiffstore | -4 | 1 1 1 | write denyoom movablekeys | @write @sortedset @slow | - | sorted-set | 6.2.0 | O(L + (N-K)log(N)) worst case where L is the total number of elements in all the sets, N is the size of the first set, and K is the size of the result set. | Subtract multiple sorted sets and store the resulting sorted set in a new key
  key OW,update | index 1 | range 0 1 0
  key RO,access | index 2 | keynum 0 1 1
zincrby | 4 | 1 1 1 | write denyoom fast | @write @sortedset @fast | - | sorted-set | 1.2.0 | O(log(N)) where N is the number of elements in the sorted set. | Increment the score of a member in a sorted set
  key RW,access,update | index 1 | range 0 1 0
zinter | -3 | 0 0 0 | readonly movablekeys | @read @sortedset @slow | - | sorted-set | 6.2.0 | O(N*K)+O(M*log(M)) worst case with N being the smallest input sorted set, K being the number of input sorted sets and M being the number of elements in the resulting sorted set. | Intersect multiple sorted sets
  key RO,access | index 1 | keynum 0 1 1
zinterstore | -4 | 1 1 1 | write denyoom movablekeys | @write @sortedset @slow | - | sorted-set | 2.0.0 | O(N*K)+O(M*log(M)) worst case with N being the smallest input sorted set, K being the number of input sorted sets and M being the number of elements in the resulting sorted set. | Intersect multiple sorted sets and store the resulting sorted set in a new key
  key OW,update | index 1 | range 0 1 0
  key RO,access | index 2 | keynum 0 1 1
zlexcount | 4 | 1 1 1 | readonly fast | @read @sortedset @fast | - | sorted-set | 2.8.9 | O(log(N)) with N being the number of elements in the sorted set. | Count the number of members in a sorted set between a given lexicographical range
  key RO,access | index 1 | range 0 1 0
zmscore | -3 | 1 1 1 | readonly fast | @read @sortedset @fast | - | sorted-set | 6.2.0 | O(N) where N is the number of members being requested. | Get the score associated with the given members in a sorted set
  key RO,access | index 1 | range 0 1 0
zpopmax | -2 | 1 1 1 | write fast | @write @sortedset @fast | - | sorted-set | 5.0.0 | O(log(N)*M) with N being the number of elements in the sorted set, and M being the number of elements popped. | Remove and return members with the highest scores in a sorted set
  key RW,access,delete | index 1 | range 0 1 0
zpopmin | -2 | 1 1 1 | write fast | @write @sortedset @fast | - | sorted-set | 5.0.0 | O(log(N)*M) with N being the number of elements in the sorted set, and M being the number of elements popped. | Remove and return members with the lowest scores in a sorted set
  key RW,access,delete | index 1 | range 0 1 0
zrandmember | -2 | 1 1 1 | readonly | @read @sortedset @slow | nondeterministic_output | sorted-set | 6.2.0 | O(N) where N is the number of elements returned | Get one or multiple random elements from a sorted set
  key RO,access | index 1 | range 0 1 0
zrange | -4 | 1 1 1 | readonly | @read @sortedset @slow | - | sorted-set | 1.2.0 | O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements returned. | Return a range of members in a sorted set
  key RO,access | index 1 | range 0 1 0
zrangebylex | -4 | 1 1 1 | readonly | @read @sortedset @slow | - | sorted-set | 2.8.9 | O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)). | Return a range of members in a sorted set, by lexicographical range
  key RO,access | index 1 | range 0 1 0
  doc deprecated | 6.2.0 | `ZRANGE` with the `BYLEX` argument
zrangebyscore | -4 | 1 1 1 | readonly | @read @sortedset @slow | - | sorted-set | 1.0.5 | O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)). | Return a range of members in a sorted set, by score
  key RO,access | index 1 | range 0 1 0
  doc deprecated | 6.2.0 | `ZRANGE` with the `BYSCORE` argument
zrangestore | -5 | 1 2 1 | write denyoom | @write @sortedset @slow | - | sorted-set | 6.2.0 | O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements stored into the destination key. | Store a range of members from sorted set into another key
  key OW,update | index 1 | range 0 1 0
  key RO,access | index 2 | range 0 1 0
zrank | 3 | 1 1 1 | readonly fast | @read @sortedset @fast | - | sorted-set | 2.0.0 | O(log(N)) | Determine the index of a member in a sorted set
  key RO,access | index 1 | range 0 1 0
zrem | -3 | 1 1 1 | write fast | @write @sortedset @fast | - | sorted-set | 1.2.0 | O(M*log(N)) with N being the number of elements in the sorted set and M the number of elements to be removed. | Remove one or more members from a sorted set
  key RW,delete | index 1 | range 0 1 0
zremrangebylex | 4 | 1 1 1 | write | @write @sortedset @slow | - | sorted-set | 2.8.9 | O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation. | Remove all members in a sorted set between the given lexicographical range
  key RW,delete | index 1 | range 0 1 0
zremrangebyrank | 4 | 1 1 1 | write | @write @sortedset @slow | - | sorted-set | 2.0.0 | O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation. | Remove all members in a sorted set within the given indexes
  key RW,delete | index 1 | range 0 1 0
zremrangebyscore | 4 | 1 1 1 | write | @write @sortedset @slow | - | sorted-set | 1.2.0 | O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation. | Remove all members in a sorted set within the given scores
  key RW,delete | index 1 | range 0 1 0
zrevrange | -4 | 1 1 1 | readonly | @read @sortedset @slow | - | sorted-set | 1.2.0 | O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements returned. | Return a range of members in a sorted set, by index, with scores ordered from high to low
  key RO,access | index 1 | range 0 1 0
  doc deprecated | 6.2.0 | `ZRANGE` with the `REV` argument
zrevrangebylex | -4 | 1 1 1 | readonly | @read @sortedset @slow | - | sorted-set | 2.8.9 | O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)). | Return a range of members in a sorted set, by lexicographical range, ordered from higher to lower strings.
  key RO,access | index 1 | range 0 1 0
  doc deprecated | 6.2.0 | `ZRANGE` with the `REV` and `BYLEX` arguments
zrevrangebyscore | -4 | 1 1 1 | readonly | @read @sortedset @slow | - | sorted-set | 2.2.0 | O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)). | Return a range of members in a sorted set, by score, with scores ordered from high to low
  key RO,access | index 1 | range 0 1 0
  doc deprecated | 6.2.0 | `ZRANGE` with the `REV` and `BYSCORE` arguments
zrevrank | 3 | 1 1 1 | readonly fast | @read @sortedset @fast | - | sorted-set | 2.0.0 | O(log(N)) | Determine the index of a member in a sorted set, with scores ordered from high to low
  key RO,access | index 1 | range 0 1 0
zscan | -3 | 1 1 1 | readonly | @read @sortedset @slow | nondeterministic_output | sorted-set | 2.8.0 | O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection.. | Incrementally iterate sorted sets elements and associated scores
  key RO,access | index 1 | range 0 1 0
zscore | 3 | 1 1 1 | readonly fast | @read @sortedset @fast | - | sorted-set | 1.2.0 | O(1) | Get the score associated with the given member in a sorted set
  key RO,access | index 1 | range 0 1 0
zunion | -3 | 0 0 0 | readonly movablekeys | @read @sortedset @slow | - | sorted-set | 6.2.0 | O(N)+O(M*log(M)) with N being the sum of the sizes of the input sorted sets, and M being the number of elements in the resulting sorted set. | Add multiple sorted sets
  key RO,access | index 1 | keynum 0 1 1
zunionstore | -4 | 1 1 1 | write denyoom movablekeys | @write @sortedset @slow | - | sorted-set | 2.0.0 | O(N)+O(M log(M)) with N being the sum of the sizes of the input sorted sets, and M being the number of elements in the resulting sorted set. | Add multiple sorted sets and store the resulting sorted set in a new key
  key OW,update | index 1 | range 0 1 0
  key RO,access | index 2 | keynum 0 1 1
replicaof | 3 | 0 0 0 | admin noscript stale no_async_loading | @admin @slow @dangerous | - | server | 5.0.0 | O(1) | Make the server a replica of another instance, or promote it as master.
slaveof | 3 | 0 0 0 | admin noscript stale no_async_loading | @admin @slow @dangerous | - | server | 1.0.0 | O(1) | Make the server a replica of another instance, or promote it as master.
role | 1 | 0 0 0 | noscript loading stale fast | @admin @fast @dangerous | - | server | 2.8.12 | O(1) | Return the role of the instance in the context of replication
wait | 3 | 0 0 0 | noscript | @slow @connection | request_policy:all_shards response_policy:agg_min | generic | 3.0.0 | O(1) | Wait for the synchronous replication of all the write commands sent in the context of the current connection
waitaof | 4 | 0 0 0 | noscript | @slow @connection | request_policy:all_shards response_policy:agg_min | generic | 7.2.0 | O(1) | Wait for all write commands sent by the client to be fsynced to the AOF in the local host and/or replicas
replconf | -1 | 0 0 0 | admin noscript loading stale allow_busy | @admin @slow @dangerous | - | server | 3.0.0 | O(1) | An internal command for configuring the replication stream
psync | -3 | 0 0 0 | admin noscript no_async_loading no_multi | @admin @slow @dangerous | - | server | 2.8.0 | O(1) | An internal command used in replication
sync | 1 | 0 0 0 | admin noscript no_async_loading no_multi | @admin @slow @dangerous | - | server | 1.0.0 | O(1) | An internal command used in replication
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        Engine::default()
    }

    #[test]
    fn table_parses_completely() {
        let lines = TABLE.lines().filter(|l| !l.starts_with("  ") && !l.trim().is_empty()).count();
        let parsed = parse_table();
        let count: usize = parsed.iter().map(|m| 1 + m.subcommands.len()).sum();
        assert_eq!(count, lines, "every command line parses");
        let keys = TABLE.lines().filter(|l| l.starts_with("  key ")).count();
        let parsed_keys: usize =
            parsed.iter().flat_map(|m| std::iter::once(m).chain(m.subcommands.iter())).map(|m| m.keys.len()).sum();
        assert_eq!(parsed_keys, keys, "every key spec parses");
        for m in &parsed {
            assert!(!m.summary.is_empty() && !m.group.is_empty() && !m.since.is_empty(), "{}", m.name);
        }
    }

    #[test]
    fn every_engine_command_is_described_and_agrees() {
        let e = engine();
        let parsed = parse_table();
        for spec in e.commands() {
            let Some(m) = parsed.iter().find(|m| m.name == spec.name) else {
                panic!("engine command {} is missing from the COMMAND table", spec.name);
            };
            assert_eq!(m.arity, i64::from(spec.arity), "arity of {}", spec.name);
            if m.subcommands.is_empty() {
                let range = (m.first, m.last, m.step);
                let engine_range = (i64::from(spec.first_key), i64::from(spec.last_key), i64::from(spec.step));
                assert_eq!(range, engine_range, "key range of {}", spec.name);
                assert_eq!(m.flags.contains(&"write"), spec.is_write(), "write flag of {}", spec.name);
                assert_eq!(m.flags.contains(&"denyoom"), spec.denies_oom(), "denyoom flag of {}", spec.name);
            }
        }
    }

    #[test]
    fn server_commands_are_described() {
        let t = table(&engine());
        for name in [
            "ping",
            "echo",
            "auth",
            "hello",
            "client",
            "info",
            "config",
            "command",
            "subscribe",
            "unsubscribe",
            "psubscribe",
            "punsubscribe",
            "publish",
            "pubsub",
            "quit",
            "reset",
            "time",
            "lastsave",
            "shutdown",
            "debug",
        ] {
            assert!(lookup(t, name.as_bytes()).is_some(), "{name}");
        }
        assert_eq!(lookup(t, b"CLIENT|List").map(|m| m.name), Some("client|list"));
        assert!(lookup(t, b"client|nope").is_none());
    }

    #[test]
    fn key_specs_find_keys() {
        let t = table(&engine());
        let pos = |cmd: &[&[u8]]| -> Option<Vec<usize>> {
            let m = lookup(t, cmd[0])?;
            let mut out = Vec::new();
            for k in &m.keys {
                out.extend(spec_positions(k, cmd)?);
            }
            Some(out)
        };
        assert_eq!(pos(&[b"mset", b"a", b"1", b"b", b"2"]), Some(vec![1, 3]));
        assert_eq!(pos(&[b"zunionstore", b"d", b"2", b"a", b"b"]), Some(vec![1, 3, 4]));
        assert_eq!(pos(&[b"zunionstore", b"d", b"5", b"a", b"b"]), None);
        assert_eq!(pos(&[b"blpop", b"a", b"b", b"0"]), Some(vec![1, 2]));
        assert_eq!(pos(&[b"sintercard", b"2", b"a", b"b", b"LIMIT", b"1"]), Some(vec![2, 3]));
    }
}
