#!/usr/bin/env python3
"""check-schema.py: checks every configuration example against doc/weir.schema.json.

Checked: every etc/**/*.yaml (and .yml), and every ```yaml block of README.md and
doc/*.md. A block is a complete configuration that can be pasted as it is, or is
marked as a fragment by the line `<!-- fragment -->` just before its fence (blank
lines between are allowed); an unmarked block that is not a complete
configuration (a map of global, defaults, stick_tables, frontends, backends, with frontends) is
a problem. A fragment whose first key is a top-level key is checked like a whole
file except that frontends may be missing; one whose keys all belong to a backend
or a frontend (such as the list of `balance:` alternatives) has each of its
entries checked on its own against that block's schema; other fragments (not
weir configurations) are skipped, and the reason is printed.

With --weir BINARY, every complete configuration (etc/ and the unmarked blocks)
is also given to `BINARY -c`, in a temporary directory where its absolute paths
under /etc, /var, /run, /srv, /opt, /tmp and /home are moved and the files it
names are created: certificates and keys (openssl), CA files, the ticket secret,
error pages, the map and list files of conditions, and the directories of log
files, sockets, the pid file and the state file. What weir -c says is reported
at the example's line. CTest runs this (DocExamples.WeirAcceptsEveryCompleteExample).

The YAML is read the way weir and editors read it (YAML 1.2 core schema): only
true/false (True, TRUE, ...) are booleans, so `yes`/`on` are strings, as weir
refuses them; 0600 is a decimal integer; duplicate keys are errors.

Before that, a self-test: a few deliberately wrong snippets (unknown key, bad
enum value, wrong type, ...) must fail validation and a few right ones must pass,
so that the check cannot pass vacuously. --self-test runs only that. And with
--weir, the loader's tables of keys and values (`BINARY --dump-config-keys`: the
keys of every map, the words of every enumerated value, from
common/config/load/*.cpp) must be the schema's, so that a key added to the loader
cannot be missing from the schema; its self-test adds a key to a dumped table and
must see the difference.

Prints `file:line: message` for each problem; exit status 1 on any.
Needs python3-yaml and python3-jsonschema (Debian), listed in scripts/deps.sh.
"""
import argparse
import copy
import decimal
import difflib
import glob
import json
import numbers
import os
import re
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMA_PATH = os.path.join(ROOT, "doc", "weir.schema.json")
TOP_KEYS = ("global", "defaults", "peers", "stick_tables", "frontends", "backends")

try:
    import jsonschema
    import yaml
except ImportError as missing:
    # The Debian packages install into the system python; a python3 found first on the
    # PATH (pyenv, a venv) may not see them.
    if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != \
            os.path.realpath("/usr/bin/python3") and not os.environ.get("CHECK_SCHEMA_REEXEC"):
        os.environ["CHECK_SCHEMA_REEXEC"] = "1"
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    sys.exit(f"check-schema: {missing}: install python3-yaml and python3-jsonschema "
             "(bash scripts/deps.sh test)")


# ---- YAML as weir reads it ---------------------------------------------------------------
class WeirLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema scalars, raw-text keys and duplicate-key errors."""


WeirLoader.yaml_implicit_resolvers = {}
for tag, pattern, first in [
        ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
        ("tag:yaml.org,2002:int", r"^-?[0-9]+$", "-0123456789"),  # weir refuses +1
        ("tag:yaml.org,2002:float",
         r"^(?:-?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
         r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$", "-+0123456789."),
        ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""])]:
    WeirLoader.add_implicit_resolver(tag, re.compile(pattern), list(first))


def _construct_int(loader, node):
    return int(loader.construct_scalar(node), 10)  # decimal: 0600 is 600, not octal


def _construct_float(loader, node):
    # A Decimal is a number but never an integer, as weir refuses 2.0 where it wants one.
    text = loader.construct_scalar(node)
    try:
        return decimal.Decimal(text)
    except decimal.InvalidOperation:
        return float(text.replace(".", "").lower())  # .inf, -.inf, .nan


def _construct_mapping(loader, node, deep=False):
    loader.flatten_mapping(node)
    out = {}
    first_line = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise yaml.constructor.ConstructorError(
                None, None, "keys must be plain strings", key_node.start_mark)
        key = key_node.value  # the key's text, as weir sees it (503, not the integer 503)
        if key in out:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key '{key}' (first defined "
                f"{key_node.start_mark.line - first_line[key]} lines above)", key_node.start_mark)
        first_line[key] = key_node.start_mark.line
        out[key] = loader.construct_object(value_node, deep=True)
    return out


WeirLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
WeirLoader.add_constructor("tag:yaml.org,2002:float", _construct_float)
WeirLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


class Problem(Exception):
    def __init__(self, line, message):
        super().__init__(message)
        self.line = line  # 0-based, within the text
        self.message = message


def compose(text):
    """The node tree of the single YAML document in text (None when empty)."""
    loader = WeirLoader(text)
    try:
        return loader.get_single_node()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise Problem(mark.line if mark else 0, f"YAML: {e.problem or e.context}") from None
    finally:
        loader.dispose()


def construct(node):
    loader = WeirLoader("")
    try:
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise Problem(mark.line if mark else 0, f"YAML: {e.problem}") from None
    finally:
        loader.dispose()


def node_at(node, path):
    """The node at a JSON path (keys and indexes), as deep as it goes."""
    for step in path:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(step):
                    node = value_node
                    break
            else:
                return node
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) \
                and step < len(node.value):
            node = node.value[step]
        else:
            return node
    return node


def key_node_at(node, path, key):
    parent = node_at(node, path)
    if isinstance(parent, yaml.MappingNode):
        for key_node, _ in parent.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
                return key_node
    return parent


# ---- messages --------------------------------------------------------------------------
def where(path):
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out or "top level"


def type_name(value):
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, numbers.Number):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "a map"


PREFERRED = ("additionalProperties", "required", "enum", "const", "minimum", "maximum",
             "minItems", "minProperties", "maxProperties", "oneOf", "not", "pattern", "type")


def rank(error):
    validator = error.validator if error.validator in PREFERRED else "pattern"
    return (-len(error.absolute_path), PREFERRED.index(validator))


DEFINITIONS = {}  # the schema's definitions, for $ref
# Readable names of the schema's value patterns.
PATTERNS = {
    "^-?[0-9]+$": "an integer",
    "^[0-9]+(ms|s|m|h|d)?$": "a duration (whole number and ms, s, m, h or d, such as 5s)",
    "^[0-9]+[kKmMgG]?$": "a size (whole number and k, m or g, such as 16k)",
    "^(true|True|TRUE|false|False|FALSE)$": "true or false",
}


def resolve(schema):
    while isinstance(schema, dict) and "$ref" in schema:
        schema = DEFINITIONS[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


JSON_TYPES = {"null": lambda v: v is None, "boolean": lambda v: isinstance(v, bool),
              "string": lambda v: isinstance(v, str), "array": lambda v: isinstance(v, list),
              "object": lambda v: isinstance(v, dict),
              "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
              "number": lambda v: isinstance(v, numbers.Number) and not isinstance(v, bool)}


def accepts_type(schema, value):
    """Whether a schema takes values of the type of value (whatever else it asks)."""
    schema = resolve(schema)
    if not isinstance(schema, dict):
        return bool(schema)
    if "type" in schema:
        types = [schema["type"]] if isinstance(schema["type"], str) else schema["type"]
        if not any(JSON_TYPES[t](value) for t in types):
            return False
    if "const" in schema and type_name(schema["const"]) != type_name(value):
        return False
    if "enum" in schema and type_name(value) not in {type_name(e) for e in schema["enum"]}:
        return False
    for key in ("anyOf", "oneOf"):
        if key in schema and not any(accepts_type(s, value) for s in schema[key]):
            return False
    return all(accepts_type(s, value) for s in schema.get("allOf", []))


def branch_types(schema):
    """The JSON types a schema takes, in words."""
    schema = resolve(schema)
    if not isinstance(schema, dict):
        return []
    if "type" in schema:
        types = [schema["type"]] if isinstance(schema["type"], str) else schema["type"]
        return ["a map" if t == "object" else "a list" if t == "array" else
                "nothing" if t == "null" else "an integer" if t == "integer" else
                f"a {t}" for t in types]
    for key in ("const", "enum"):
        if key in schema:
            values = [schema[key]] if key == "const" else schema[key]
            return [json.dumps(v) for v in values]
    out = []
    for key in ("anyOf", "oneOf"):
        for sub in schema.get(key, []):
            out += [t for t in branch_types(sub) if t not in out]
    return out


def explain(error, what=None):
    """(error, key or None, message) for the most telling part of a validation error (the
    error itself or one of its branches); what: the description of the value expected,
    from an enclosing schema."""
    if error.validator == "oneOf" and all(
            isinstance(s, dict) and set(s) == {"required"} for s in error.validator_value):
        names = [s["required"][0] for s in error.validator_value]
        found = [n for n in names if isinstance(error.instance, dict) and n in error.instance]
        if len(found) > 1:
            return error, None, f"one action per rule (found {', '.join(found)}); " \
                               "write a rule for each"
        return error, None, f"needs one of: {', '.join(names)}"
    if error.validator in ("anyOf", "oneOf") and error.context:
        fitting = [i for i, s in enumerate(error.validator_value)
                   if accepts_type(s, error.instance)]
        if not fitting:
            types = []
            for branch in error.validator_value:
                for t in branch_types(branch):
                    if t not in types:
                        types.append(t)
            got = repr(error.instance) if isinstance(error.instance, str) else \
                str(error.instance) if isinstance(error.instance, numbers.Number) else \
                type_name(error.instance)
            description = resolve(error.schema).get("description") or what
            return error, None, f"expected {' or '.join(types)} (got {got})" + \
                (f": {description}" if description else "")
        best = min((e for e in error.context if e.relative_schema_path[0] in fitting), key=rank,
                   default=None)
        if best is None:  # a fitting branch rejected the value only through a sub-branch
            best = min(error.context, key=rank)
        return explain(best, resolve(error.schema).get("description") or what)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = list(error.schema.get("properties", {}))
        extra = [k for k in error.instance if k not in known]
        if extra:
            key = extra[0]
            close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else \
                f" (known here: {', '.join(known)})" if len(known) <= 12 else ""
            return error, key, f"unknown key '{key}'{hint}"
    if error.validator == "not":
        if error.validator_value == {"required": ["if", "unless"]}:
            return error, None, "give if or unless, not both"
        return error, None, error.schema.get("description") or "not allowed here"
    if error.validator == "propertyNames":
        return error, None, f"invalid name {error.instance!r}"
    if error.validator == "pattern" and error.validator_value in PATTERNS:
        return error, None, f"{error.instance!r} is not {PATTERNS[error.validator_value]}"
    what = error.schema.get("description") if isinstance(error.schema, dict) and \
        error.schema.get("description") else what
    if error.validator == "pattern" and what:
        return error, None, f"{error.instance!r} is not valid here: {what}"
    if error.validator == "type":
        expected = " or ".join(branch_types({"type": error.validator_value}))
        return error, None, f"expected {expected} (got {type_name(error.instance)})"
    return error, None, error.message


def validate(validator, data, root_node, base_line):
    """[(line, message)] for every schema error in data (line: 1-based in the file)."""
    problems = []
    for error in validator.iter_errors(data):
        leaf, key, message = explain(error)
        path = list(leaf.absolute_path)
        node = key_node_at(root_node, path, key) if key is not None else node_at(root_node, path)
        if leaf.validator == "not" and leaf.validator_value == {} and path:
            node = key_node_at(root_node, path[:-1], path[-1])  # the key, not its value
        shown = path + ([key] if key is not None else [])
        problems.append((base_line + node.start_mark.line + 1, f"{where(shown)}: {message}"))
    return sorted(set(problems))


# ---- what is checked -------------------------------------------------------------------
class Checker:
    def __init__(self, schema):
        jsonschema.Draft7Validator.check_schema(schema)
        DEFINITIONS.update(schema["definitions"])
        self.schema = schema
        self.whole = jsonschema.Draft7Validator(schema)
        fragment = copy.deepcopy(schema)
        fragment.pop("required", None)  # a fragment may leave frontends out,
        fragment.pop("allOf", None)  # and its blocks' mode may come from defaults elsewhere
        self.fragment = jsonschema.Draft7Validator(fragment)
        self.blocks = {}
        for name in ("backend", "frontend"):
            sub = {"allOf": [{"$ref": f"#/definitions/{name}"}],
                   "definitions": schema["definitions"]}
            self.blocks[name] = (jsonschema.Draft7Validator(sub),
                                 set(schema["definitions"][name]["properties"]))

    def check_text(self, text, base_line=0, whole_file=False):
        """(kind, problems): kind says what was checked, or starts with "skip:" and says why."""
        try:
            node = compose(text)
        except Problem as p:
            return "unreadable YAML", [(base_line + p.line + 1, p.message)]
        if node is None:
            return ("whole file", [(base_line + 1, "empty: no frontends defined")]) \
                if whole_file else ("skip: empty", [])
        keys = [k.value for k, _ in node.value if isinstance(k, yaml.ScalarNode)] \
            if isinstance(node, yaml.MappingNode) else []
        if whole_file or (keys and keys[0] in TOP_KEYS):
            validator = self.whole
            kind = "whole configuration"
            if not whole_file and "frontends" not in keys:
                validator = self.fragment
                kind = "fragment (" + ", ".join(k for k in keys if k in TOP_KEYS) + ")"
            try:
                data = construct(node)
            except Problem as p:
                return kind, [(base_line + p.line + 1, p.message)]
            return kind, validate(validator, data, node, base_line)
        if not keys:
            return "skip: not a map of settings", []
        for name, (validator, known) in self.blocks.items():
            if set(keys) <= known:
                problems = []
                for pair in node.value:
                    one = yaml.MappingNode("tag:yaml.org,2002:map", [pair])
                    try:
                        data = construct(one)
                    except Problem as p:
                        problems.append((base_line + p.line + 1, p.message))
                        continue
                    problems += validate(validator, data, one, base_line)
                return (f"{name} settings ({', '.join(dict.fromkeys(keys))}), each entry on "
                        "its own", problems)
        return f"skip: not a weir configuration (keys: {', '.join(keys[:4])})", []


FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([A-Za-z0-9_+-]*)")


FRAGMENT_MARK = "<!-- fragment -->"


def markdown_blocks(text):
    """(language, line of the opening fence (1-based), content, fragment) for each fenced
    block; fragment: the last non-blank line before the fence is FRAGMENT_MARK."""
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = m.group(1), m.group(2), m.group(3).lower()
        start = i
        before = i - 1
        while before >= 0 and not lines[before].strip():
            before -= 1
        fragment = before >= 0 and lines[before].strip() == FRAGMENT_MARK
        body = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence[0] * len(fence)):
            line = lines[i]
            body.append(line[len(indent):] if line.startswith(indent) else line.lstrip())
            i += 1
        yield lang, start + 1, "\n".join(body) + "\n", fragment
        i += 1


# ---- the loader's own tables -------------------------------------------------------------
# `weir --dump-config-keys` prints the loader's key tables (common/config/load/*.cpp) as
# {"keys": {table: [key, ...]}, "values": {table: [word, ...]}}; each table must say what
# the schema says at the places TABLES names, so that a key added to the loader cannot be
# missing from the schema (or the other way round).
def object_branch(schema):
    """The map form of a schema that also has short forms."""
    schema = resolve(schema)
    if "properties" in schema:
        return schema
    for branch in schema.get("anyOf", []):
        branch = resolve(branch)
        if isinstance(branch, dict) and "properties" in branch:
            return branch
        if isinstance(branch, dict) and "allOf" in branch:
            return object_branch(branch["allOf"][0])
    raise KeyError("no map form")


def keys_of(schema):
    return set(object_branch(schema)["properties"])


def enum_of(schema):
    schema = resolve(schema)
    if "enum" in schema:
        return {str(v) for v in schema["enum"]}
    return set().union(*(enum_of(b) for b in schema.get("anyOf", [])
                         if isinstance(resolve(b), dict)))


def loader_tables(schema):
    """{(kind, table): [(where in the schema, what it says)]}: every table of the loader
    with the schema's keys or values it must equal (a table that several places of the
    schema share must equal each)."""
    d = schema["definitions"]
    glob_ = d["global"]["properties"]
    log = object_branch(d["log_target"])["properties"]
    stats = object_branch(d["stats"])["properties"]
    check = d["check_map"]["properties"]
    requests = {"frontend": d["frontend_http_request_rule"]["properties"],
                "backend": d["backend_http_request_rule"]["properties"]}
    responses = d["http_response_rule"]["properties"]
    # The stick-table actions of tcp_request rules, the same in connection and content rules
    # of frontends and backends (use_backend: frontends' content rules only).
    tcp_stick = d["tcp_stick_action"]["properties"]
    tcp_content = object_branch(d["frontend_tcp_request_rule"]["properties"]["content"])

    def action(*names, rules=(requests["frontend"], responses)):
        """The options of actions: the union of their map forms wherever they exist."""
        out = set()
        for name in names:
            for props in rules:
                if name in props:
                    try:
                        out |= keys_of(props[name])
                    except KeyError:
                        pass
        return out

    keys = {
        "top": [("properties", set(schema["properties"]))],
        "global": [("global", keys_of(d["global"]))],
        "global.tune": [("global.tune", keys_of(glob_["tune"]))],
        "global.log": [("log_target", keys_of(d["log_target"]))],
        "global.runtime_api": [("runtime_api_endpoint", keys_of(d["runtime_api_endpoint"]))],
        "global.timeouts": [("global.timeouts", keys_of(glob_["timeouts"]))],
        "defaults": [("defaults", keys_of(d["defaults"]))],
        "defaults.timeouts": [("defaults_timeouts", keys_of(d["defaults_timeouts"]))],
        "frontend": [("frontend", keys_of(d["frontend"]))],
        "frontend.timeouts": [("frontend_timeouts", keys_of(d["frontend_timeouts"]))],
        "frontend.bind": [("bind", keys_of(d["bind"]))],
        "frontend.bind.tls": [("tls_bind", keys_of(d["tls_bind"]))],
        "frontend.bind.accept_proxy": [("accept_proxy", keys_of(d["accept_proxy"]))],
        "send_proxy": [("send_proxy", keys_of(d["send_proxy"]))],
        "frontend.stats": [("stats", set(stats))],
        "frontend.stats.auth": [("stats.auth", keys_of(stats["auth"]))],
        "frontend.metrics": [("metrics", keys_of(d["metrics"]))],
        "frontend.http_request": [("frontend_http_request_rule", set(requests["frontend"]))],
        "backend.http_request": [("backend_http_request_rule", set(requests["backend"]))],
        "http_response": [("http_response_rule", set(responses))],
        "rule.deny": [("deny, return, tarpit", action("deny", "return", "tarpit"))],
        "rule.redirect": [("redirect", action("redirect"))],
        "rule.set_header": [("set_header, add_header", action("set_header", "add_header"))],
        "rule.del_header": [("del_header", action("del_header"))],
        "rule.replace_header": [("replace_header, replace_value",
                                 action("replace_header", "replace_value"))],
        "rule.set_var": [("set_var", action("set_var"))],
        "rule.capture": [("capture", action("capture"))],
        "rule.set_status": [("set_status", action("set_status"))],
        **{f"rule.{a}": [(a, action(a)), (f"tcp_stick_action.{a}", keys_of(tcp_stick[a])),
                         (f"frontend_tcp_request_rule.content.{a}",
                          keys_of(tcp_content["properties"][a]))]
           for a in ("track", "sc_inc_gpc", "sc_clr_gpc", "sc_set_gpt")},
        "tcp_request": [(f"{w}_tcp_request_rule", keys_of(d[f"{w}_tcp_request_rule"]))
                        for w in ("frontend", "backend")],
        "tcp_request.content": [("frontend_tcp_request_rule.content", set(tcp_content["properties"])),
                                ("tcp_stick_action and use_backend",
                                 set(tcp_stick) | {"use_backend"})],
        "peers": [("peers", keys_of(d["peers"]))],
        "peers.nodes.node": [("peer_node", keys_of(d["peer_node"]))],
        "stick_tables.table": [("stick_table", keys_of(d["stick_table"]))],
        "backend": [("backend", keys_of(d["backend"]))],
        "backend.timeouts": [("backend_timeouts", keys_of(d["backend_timeouts"]))],
        "backend.balance": [("balance", keys_of(d["balance"]))],
        "backend.stick": [("stick_rule", keys_of(d["stick_rule"]))],
        "backend.cookie": [("persistence_cookie", keys_of(d["persistence_cookie"]))],
        "server": [("server", keys_of(d["server"]))],
        "server.tls": [("tls_server", keys_of(d["tls_server"]))],
        "check": [("check_map", keys_of(d["check_map"]))],
        "check.expect_http": [("check_expect_http", keys_of(d["check_expect_http"]))],
        "check.expect_tcp": [("check_expect_tcp", keys_of(d["check_expect_tcp"]))],
        "check.sequence_step": [("check_map.sequence", set(
            check["sequence"]["items"]["properties"]))],
        "agent": [("agent_map", keys_of(d["agent_map"]))],
    }
    values = {
        "mode": [(f"{w}.mode", enum_of(d[w]["properties"]["mode"]))
                 for w in ("defaults", "frontend", "backend")],
        "http_reuse": [(f"{w}.http_reuse", enum_of(d[w]["properties"]["http_reuse"]))
                       for w in ("defaults", "backend")],
        "global.log.target": [("log_target.target", enum_of(log["target"]))],
        "global.log.format": [("log_target.format", enum_of(log["format"]))],
        "global.log.framing": [("log_target.framing", enum_of(log["framing"]))],
        "global.log.facility": [("log_target.facility", enum_of(log["facility"]))],
        "global.runtime_api.level": [("runtime_api_endpoint.level", enum_of(
            object_branch(d["runtime_api_endpoint"])["properties"]["level"]))],
        "backend.balance.algorithm": [("balance.algorithm", enum_of(
            object_branch(d["balance"])["properties"]["algorithm"]))],
        "backend.balance.hash_type": [("balance.hash_type", enum_of(
            object_branch(d["balance"])["properties"]["hash_type"]))],
        "backend.cookie.mode": [("persistence_cookie.mode", enum_of(
            object_branch(d["persistence_cookie"])["properties"]["mode"]))],
        "check.type": [("check_map.type", enum_of(check["type"]))],
        "check.on_marked_down": [("check_map.on_marked_down", enum_of(check["on_marked_down"]))],
        "check.on_marked_up": [("check_map.on_marked_up", enum_of(check["on_marked_up"]))],
        "check.observe": [("check_map.observe", enum_of(check["observe"]))],
        "check.on_error": [("check_map.on_error", enum_of(check["on_error"]))],
        "errorfiles": [("errorfiles", {str(v) for v in d["errorfiles"]["propertyNames"]["enum"]})],
        "frontend.bind.tls.verify": [("tls_bind.verify", enum_of(
            object_branch(d["tls_bind"])["properties"]["verify"]))],
        "server.tls.verify": [("tls_server.verify", enum_of(
            object_branch(d["tls_server"])["properties"]["verify"]))],
        "stick_tables.table.type": [("stick_table.type", enum_of(
            d["stick_table"]["properties"]["type"]))],
        "tcp_request.action": [(f"{w}_tcp_request_rule.connection", enum_of(
            d[f"{w}_tcp_request_rule"]["properties"]["connection"]))
            for w in ("frontend", "backend")],
        "tls_version": [("tls_version", enum_of(d["tls_version"]))],
        "send_proxy.version": [("send_proxy", enum_of(d["send_proxy"])), ("send_proxy.version", enum_of(
            object_branch(d["send_proxy"])["properties"]["version"]))],
        "send_proxy.tlvs": [("send_proxy.tlvs", enum_of(
            object_branch(d["send_proxy"])["properties"]["tlvs"]["items"]))],
    }
    return {**{("keys", k): v for k, v in keys.items()},
            **{("values", k): v for k, v in values.items()}}


def dump_tables(weir):
    """The loader's tables, from `weir --dump-config-keys`."""
    import subprocess
    run = subprocess.run([weir, "--dump-config-keys"], capture_output=True, text=True,
                         timeout=60)
    if run.returncode != 0:
        raise RuntimeError(f"{weir} --dump-config-keys exited with {run.returncode}: "
                           f"{run.stderr.strip()}")
    return json.loads(run.stdout)


def check_loader(schema, dump):
    """[message]: where the loader's tables and the schema differ."""
    expected = loader_tables(schema)
    problems = []
    for kind in ("keys", "values"):
        for table, names in sorted(dump.get(kind, {}).items()):
            if (kind, table) not in expected:
                problems.append(f"{kind} of '{table}': not compared with the schema; say where "
                                "the schema has them (loader_tables in scripts/check-schema.py)")
                continue
            for where, wanted in expected[(kind, table)]:
                have = set(names)
                for name in sorted(have - wanted):
                    problems.append(f"{kind} of '{table}': the loader has '{name}', which "
                                    f"doc/weir.schema.json lacks ({where})")
                for name in sorted(wanted - have):
                    problems.append(f"{kind} of '{table}': doc/weir.schema.json has '{name}' "
                                    f"({where}), which the loader lacks")
    for kind, table in sorted(expected):
        if table not in dump.get(kind, {}):
            problems.append(f"{kind} of '{table}': not among the loader's tables (renamed or "
                            "removed? update loader_tables in scripts/check-schema.py)")
    return problems


# ---- weir -c on complete examples ------------------------------------------------------
MOVED = re.compile(r"(?<![\w.:/-])(/(?:etc|var|run|srv|opt|tmp|home)/[^\s\"',\]}){)#]*)")
CERT_KEYS = ("certificates", "default_certificate", "cert")
CONDITION_FILE = re.compile(r"(?:-f\s+|map\w*\()([^\s),]+)")


def is_complete(text):
    """Whether text is a whole configuration: a map of top-level keys with frontends."""
    try:
        node = compose(text)
    except Problem:
        return True  # the schema check reports the YAML error
    if not isinstance(node, yaml.MappingNode):
        return False
    keys = [k.value for k, _ in node.value if isinstance(k, yaml.ScalarNode)]
    return bool(keys) and all(k in TOP_KEYS for k in keys) and "frontends" in keys


class Sandbox:
    """A temporary root in which an example's absolute paths exist."""

    def __init__(self, root):
        self.root = root
        self.pem_cache = {}

    def move(self, text):
        return MOVED.sub(lambda m: self.root + m.group(1), text)

    def certificate(self, path):
        name = os.path.basename(path.rstrip("/"))
        name = name[:-4] if name.endswith((".pem", ".crt")) else name
        cn = name if "." in name else "example.com"
        if cn not in self.pem_cache:
            import subprocess
            key, crt = path + ".key.tmp", path + ".crt.tmp"
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "30",
                            "-subj", f"/CN={cn}", "-addext", f"subjectAltName=DNS:{cn}",
                            "-keyout", key, "-out", crt], check=True, capture_output=True)
            with open(crt, encoding="ascii") as c, open(key, encoding="ascii") as k:
                self.pem_cache[cn] = c.read() + k.read()
            os.remove(key)
            os.remove(crt)
        return self.pem_cache[cn]

    def create(self, key, path, parents):
        if key in CERT_KEYS:
            if path.endswith("/"):
                os.makedirs(path, exist_ok=True)
                path += "example.com.pem"
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if not os.path.exists(path):
                with open(path, "w", encoding="ascii") as f:
                    f.write(self.certificate(path))
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if key == "ca_file":
            with open(path, "w", encoding="ascii") as f:
                f.write(self.certificate(path))
        elif key == "tls_ticket_secret_file":
            with open(path, "wb") as f:
                f.write(os.urandom(48))
        elif "errorfiles" in parents:
            with open(path, "w", encoding="ascii") as f:
                f.write("<html><body>Sorry, try again later.</body></html>\n")
        elif key == "condition file":
            # One entry that suits a list of addresses or of words, and a map.
            with open(path, "w", encoding="ascii") as f:
                f.write("192.0.2.1 app\n" if path.endswith(".map") else "192.0.2.1\n")
        # Anything else (log files, sockets, pid and state files): its directory.

    def populate(self, data, parents=()):
        if isinstance(data, dict):
            for k, v in data.items():
                self.populate(v, parents + (str(k),))
        elif isinstance(data, list):
            for v in data:
                self.populate(v, parents)
        elif isinstance(data, str) and self.root in data:
            key = parents[-1] if parents else ""
            if data.startswith(self.root):
                self.create(key, data, parents)
            for m in CONDITION_FILE.finditer(data):
                if m.group(1).startswith(self.root):
                    self.create("condition file", m.group(1), parents)


def check_with_weir(weir, text, base_line):
    """[(line, message)]: what `weir -c` says about text, its files created aside."""
    import subprocess
    import tempfile
    with tempfile.TemporaryDirectory(prefix="weir-example-") as root:
        sandbox = Sandbox(root)
        moved = sandbox.move(text)
        try:
            data = yaml.load(moved, Loader=WeirLoader)
        except yaml.YAMLError:
            return []  # reported by the schema check
        sandbox.populate(data)
        path = os.path.join(root, "weir.yaml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(moved)
        run = subprocess.run([weir, "-c", "-f", path], capture_output=True, text=True,
                             timeout=60)
        if run.returncode == 0:
            return []
        problems = []
        for line in run.stderr.splitlines():
            m = re.match(re.escape(path) + r":(\d+):(\d+): (.*)", line)
            if m:
                problems.append((base_line + int(m.group(1)),
                                 "weir -c: " + m.group(3).replace(root, "")))
            elif not line.startswith("Configuration file is not valid"):
                problems.append((base_line + 1, "weir -c: " + line.replace(root, "")))
        return problems or [(base_line + 1, f"weir -c exited with {run.returncode}")]


# ---- self-test -------------------------------------------------------------------------
MINIMAL = """\
frontends:
  web: {bind: ["127.0.0.1:8080"], default_backend: app}
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
"""

MUST_FAIL = [
    ("unknown top-level key", MINIMAL + "frontend: {}\n", "unknown key 'frontend'"),
    ("unknown key in a frontend (did you mean)", MINIMAL.replace(
        "default_backend: app}", "default_backend: app, maxconns: 10}"), "maxconns"),
    ("unknown key in a server", MINIMAL.replace(
        '"127.0.0.1:9001"', '{address: "127.0.0.1:9001", wieght: 2}'), "wieght"),
    ("bad mode", "defaults: {mode: htttp}\n" + MINIMAL, "htttp"),
    ("bad balance algorithm", MINIMAL.replace("app: {", "app: {balance: leastconns, "), ""),
    ("bad hash_type", MINIMAL.replace(
        "app: {", "app: {balance: {algorithm: source, hash_type: ring}, "), "ring"),
    ("bad log format", "global: {log: [{target: stdout, format: xml}]}\n" + MINIMAL, ""),
    ("syslog-only key on stdout", "global: {log: [{target: stdout, facility: local0}]}\n"
     + MINIMAL, "facility"),
    ("bad on_error", MINIMAL.replace(
        "app: {", "app: {check: {observe: layer7, on_error: panic}, "), "panic"),
    ("wrong type: threads is a word", "global: {threads: four}\n" + MINIMAL, ""),
    ("wrong type: bind is a number", MINIMAL.replace('["127.0.0.1:8080"]', "8080"), ""),
    ("wrong type: servers is a list", MINIMAL.replace(
        '{servers: {s1: "127.0.0.1:9001"}}', '{servers: ["127.0.0.1:9001"]}'), ""),
    ("out of range: threads 65", "global: {threads: 65}\n" + MINIMAL, ""),
    ("fractional duration", "defaults: {timeouts: {client: 1.5s}}\n" + MINIMAL, ""),
    ("yes is not a boolean", MINIMAL.replace("default_backend: app}",
                                             "default_backend: app, forwardfor: yes}"), ""),
    ("timeout in the wrong block", MINIMAL.replace(
        "default_backend: app}", "default_backend: app, timeouts: {connect: 5s}}"), "connect"),
    ("server without address", MINIMAL.replace(
        '"127.0.0.1:9001"', '{weight: 2}'), "address"),
    ("frontend without default_backend", MINIMAL.replace(", default_backend: app", ""),
     "default_backend"),
    ("rule with two actions", MINIMAL.replace(
        "default_backend: app}",
        "default_backend: app, http_request: [{deny: true, allow: true}]}"), "one action"),
    ("unknown rule action", MINIMAL.replace(
        "default_backend: app}", "default_backend: app, http_request: [{denyy: true}]}"),
     "denyy"),
    ("use_backend in a response rule", MINIMAL.replace(
        "default_backend: app}",
        "default_backend: app, http_response: [{use_backend: app}]}"), "use_backend"),
    ("bad tcp_request action", MINIMAL.replace(
        "default_backend: app}",
        "default_backend: app, tcp_request: [{connection: drop}]}"), "drop"),
    ("errorfiles for a status weir never sends", MINIMAL.replace(
        "default_backend: app}",
        "default_backend: app, errorfiles: {418: /tmp/teapot.html}}"), "418"),
    ("duplicate key", MINIMAL + "backends:\n  other: {}\n", "duplicate key"),
    ("merge key", MINIMAL.replace("  web: {", "  web: {<<: {mode: http}, "), "'<<'"),
    ("unknown stick table type", "stick_tables: {t: {type: ipv4, size: 1k}}\n" + MINIMAL, "ipv4"),
    ("stick table without size", "stick_tables: {t: {type: ip}}\n" + MINIMAL, "size"),
    ("key_size of an ip table", "stick_tables: {t: {type: ip, size: 1k, key_size: 8}}\n"
     + MINIMAL, "key_size"),
    ("unknown stored datum", "stick_tables: {t: {size: 1k, store: [conn_curr]}}\n" + MINIMAL,
     "conn_curr"),
    ("track in a response rule", "stick_tables: {t: {size: 1k}}\n" + MINIMAL.replace(
        "default_backend: app}", "default_backend: app, http_response: [{track: t}]}"), "track"),
    ("sc_set_gpt without a value", MINIMAL.replace(
        "default_backend: app}", "default_backend: app, http_request: [{sc_set_gpt: {index: 1}}]}"),
     "value"),
    ("tracking counter 3", MINIMAL.replace(
        "default_backend: app}", "default_backend: app, http_request: [{sc_inc_gpc: {counter: 3}}]}"),
     "counter"),
    ("two actions in a tcp_request map", MINIMAL.replace(
        "default_backend: app}",
        "default_backend: app, tcp_request: [{connection: {track: t, sc_inc_gpc: ~}}]}"),
     "one action"),
]

MUST_PASS = [
    ("minimal", MINIMAL),
    ("stick tables", """\
stick_tables:
  per_ip: {type: ip, size: 100k, expire: 30s, store: [conn_cur, "http_req_rate(10s)", "gpc(2)"]}
  per_key:
    type: string
    key_size: 64
    size: 1m
    store: [http_req_cnt, gpc0, "gpc0_rate(1m)", gpt0, "bytes_in_rate(1s)"]
  rated: {type: integer, size: 10, store: ["gpc_rate(2, 10s)", "gpt(3)", server_key]}
frontends:
  web:
    bind: ":8080"
    default_backend: app
    tcp_request:
      - connection: {track: {table: per_ip, key: src, counter: 0}}
      - connection: reject
        if: "{ sc0_conn_cur gt 10 }"
      - connection: {sc_inc_gpc: ~}
    http_request:
      - track: {table: per_key, key: "hdr(x-api-key)", counter: 1}
      - deny: {status: 429}
        if: "{ sc1_http_req_rate gt 100 }"
      - sc_inc_gpc: {index: 1, counter: 0}
      - sc_clr_gpc:
      - sc_set_gpt: {index: 0, counter: 1, value: sc0_http_err_cnt}
    http_response:
      - sc_set_gpt: {value: 7}
backends:
  app:
    http_request: [{track: per_ip}]
    servers: {s1: "127.0.0.1:9001"}
  db:
    mode: tcp
    tcp_request: [{content: {track: {table: rated, key: dst_port, counter: 2}}}]
    servers: {s1: "127.0.0.1:5432"}
"""),
    ("short forms", """\
global:
  log: stdout
  runtime_api: 9999
frontends:
  web: {bind: ":8080", default_backend: app, metrics: /metrics, stats: /stats}
backends:
  app:
    balance: hdr(X-Tenant)
    check: true
    servers: {s1: "127.0.0.1:9001", s2: {address: "127.0.0.1:9002", check: false}}
"""),
    ("environment references", """\
global:
  threads: "${THREADS:-2}"
  maxconn: ${MAXCONN:-1000}
defaults: {mode: "${MODE:-http}", timeouts: {client: "${CLIENT_TIMEOUT:-30s}"}}
frontends:
  web: {bind: ["0.0.0.0:${PORT:-8080}"], default_backend: app, forwardfor: "${XFF:-false}"}
backends:
  app: {servers: {s1: "${APP1:-127.0.0.1:9001}"}}
"""),
]


MARKDOWN = """\
```yaml
global: {threads: 2}
```

<!-- fragment -->

```yaml
global: {threads: 2}
```
"""

# Complete configurations for weir -c, with the paths their files are created at.
WEIR_MUST_PASS = MINIMAL.replace('"127.0.0.1:8080"]', '"127.0.0.1:8080", {address: "127.0.0.1:8443", '
                                 'tls: {certificates: [/etc/weir/certs/], ca_file: '
                                 '/etc/weir/ca.pem, verify: optional}}]') + """\
global:
  log: [/var/log/weir/access.log]
  runtime_api: /run/weir/admin.sock
  tls_ticket_secret_file: /etc/weir/ticket.secret
"""
WEIR_MUST_FAIL = MINIMAL.replace("default_backend: app", "default_backend: nope")


def self_test(checker, weir=None):
    failures = []
    blocks = [(fragment, is_complete(body)) for _, _, body, fragment in markdown_blocks(MARKDOWN)]
    if blocks != [(False, False), (True, False)]:
        failures.append(f"self-test: fragment marks and completeness read as {blocks}")
    if weir:
        found = check_with_weir(weir, WEIR_MUST_PASS, 0)
        if found:
            failures.append(f"self-test: weir -c refused a configuration whose files were created: "
                            f"{found}")
        if not check_with_weir(weir, WEIR_MUST_FAIL, 0):
            failures.append("self-test: weir -c accepted a default_backend that does not exist")
        # The comparison of the loader's tables with the schema must see a key that only
        # the loader has, and a table it was never told about.
        dump = dump_tables(weir)
        if "frontend" not in dump["keys"]:
            failures.append("self-test: weir --dump-config-keys has no table 'frontend'")
        else:
            dump["keys"]["frontend"].append("self_test_key")
            dump["values"]["self_test_table"] = ["a"]
            found = check_loader(checker.schema, dump)
            for needle in ("'self_test_key'", "'self_test_table'"):
                if not any(needle in message for message in found):
                    failures.append(f"self-test: the loader comparison missed {needle} "
                                    f"(got: {'; '.join(found)})")
    for name, text, expected in MUST_FAIL:
        _, problems = checker.check_text(text, whole_file=True)
        if not problems:
            failures.append(f"self-test '{name}': the schema accepted it")
        elif expected and not any(expected in message for _, message in problems):
            failures.append(f"self-test '{name}': no message mentions '{expected}' "
                            f"(got: {'; '.join(m for _, m in problems)})")
    for name, text in MUST_PASS:
        _, problems = checker.check_text(text, whole_file=True)
        for line, message in problems:
            failures.append(f"self-test '{name}': line {line}: {message}")
    return failures


# ---- main ------------------------------------------------------------------------------
def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--self-test", action="store_true", help="run only the self-test")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="print only problems and the summary")
    parser.add_argument("--weir", metavar="BINARY",
                        help="also run BINARY -c on every complete configuration")
    args = parser.parse_args()
    started = time.monotonic()
    with open(SCHEMA_PATH, encoding="utf-8") as f:
        schema = json.load(f)
    try:
        checker = Checker(schema)
    except jsonschema.SchemaError as e:
        print(f"doc/weir.schema.json: not a valid draft-07 schema: {e.message}")
        return 1
    failures = self_test(checker, args.weir)
    for failure in failures:
        print(f"scripts/check-schema.py: {failure}")
    print(f"self-test: {len(MUST_FAIL)} wrong snippets rejected, {len(MUST_PASS)} right ones "
          f"accepted" + ("; weir -c and the loader comparison catch planted mistakes"
                         if args.weir else "")
          if not failures else f"self-test: {len(failures)} failures")
    if args.self_test:
        return 1 if failures else 0

    mismatches = []
    if args.weir:
        dump = dump_tables(args.weir)
        mismatches = check_loader(schema, dump)
        for message in mismatches:
            print(f"weir --dump-config-keys: {message}")
        if not args.quiet or mismatches:
            print(f"weir --dump-config-keys: {len(dump['keys'])} key tables and "
                  f"{len(dump['values'])} value tables compared with the schema"
                  f"{': ' + str(len(mismatches)) + ' differences' if mismatches else ''}")
    elif not args.quiet:
        print("weir --dump-config-keys: the loader's tables are compared with the schema only "
              "with --weir BINARY (CTest runs that)")

    checked = 0
    problems = 0
    files = sorted(set(glob.glob(os.path.join(ROOT, "etc", "**", "*.yaml"), recursive=True)
                       + glob.glob(os.path.join(ROOT, "etc", "**", "*.yml"), recursive=True)))
    by_weir = 0
    for path in files:
        rel = os.path.relpath(path, ROOT)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        kind, found = checker.check_text(text, whole_file=True)
        if args.weir:
            found += check_with_weir(args.weir, text, 0)
            by_weir += 1
        checked += 1
        problems += len(found)
        for line, message in found:
            print(f"{rel}:{line}: {message}")
        if not args.quiet:
            print(f"{rel}: checked ({kind}){': ' + str(len(found)) + ' problems' if found else ''}")
    docs = [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "doc", "*.md")))
    for path in docs:
        rel = os.path.relpath(path, ROOT)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        in_file = skipped = other = 0
        for lang, line, body, fragment in markdown_blocks(text):
            if lang not in ("yaml", "yml"):
                other += 1
                continue
            if fragment:
                kind, found = checker.check_text(body, base_line=line)
            elif not is_complete(body):
                kind, found = "not complete", [(line, (
                    "not a complete configuration (a map of global, defaults, stick_tables, "
                    "frontends and "
                    "backends, with frontends): complete it so that it can be pasted as it is, "
                    f"or mark it as a fragment with {FRAGMENT_MARK} on the line before the "
                    "fence (doc/testing.md)"))]
            else:
                kind, found = checker.check_text(body, base_line=line, whole_file=True)
                if args.weir:
                    found += check_with_weir(args.weir, body, line)
                    by_weir += 1
                    kind += ", weir -c"
            if kind.startswith("skip:"):
                skipped += 1
                if not args.quiet:
                    print(f"{rel}:{line}: skipped ({kind[5:].strip()})")
                continue
            in_file += 1
            problems += len(found)
            for at, message in found:
                print(f"{rel}:{at}: {message}")
            if not args.quiet:
                print(f"{rel}:{line}: checked ({kind})"
                      f"{': ' + str(len(found)) + ' problems' if found else ''}")
        checked += in_file
        if not args.quiet or in_file or skipped:
            print(f"{rel}: {in_file} yaml blocks checked, {skipped} skipped, "
                  f"{other} other code blocks ignored")
    elapsed = time.monotonic() - started
    print(f"check-schema: {checked} examples checked"
          f"{f' ({by_weir} complete ones also by weir -c)' if args.weir else ''}, "
          f"{problems} problems, "
          f"{str(len(mismatches)) + ' differences from the loader' if args.weir else 'loader not compared'}, "
          f"{len(failures)} self-test failures ({elapsed:.2f} s)")
    return 1 if problems or failures or mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
