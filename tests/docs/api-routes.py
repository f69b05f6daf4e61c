#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Every route of every daemon is in docs/api, and every route there is in the code.

The routes are read from the daemons' C source:

  - each `struct http_route NAME[] = { ... };` table: entries
    `{ "METHOD", "/path", need_client_cert, handler }` and macros such as
    SERVICES_ROUTES whose #define holds such entries;
  - a route ending in "/*" hands everything below a prefix to its handler,
    which picks the sub-path itself. Such a handler lists what it serves in
    the comment right above it, one `@route METHOD /path[ client-cert]` line
    each (`client-cert`: the handler itself requires a verified client
    certificate). Those lines are checked against the handler's code: every
    sub-path string it (or a static function or table of its file that it
    reaches) compares must be named by them and the other way round, and
    every method it compares must be one the table routes to it.

A table this script cannot read, a table in a file of no known daemon, or a
wildcard handler without @route lines is an error, not a silent pass.

The documents (docs/api, see its README.md): registrar.yaml, verifier.yaml,
agent.yaml (host and guest agent) and openapi.yaml, which covers them all.
Every path item names its servers; a server names its daemon in
`x-kumquat-daemon` and its port must be the one of the daemon's example
config. Then, per daemon, the (method, path) pairs of the code and of each
document that covers it must be the same, with the same client-certificate
requirement (`x-client-cert`).

Each document is also checked: openapi 3.0.x; every $ref resolves (also into
the other files); every path parameter is declared, and only those; every
operation has an operationId (unique in the document), `x-client-cert` and a
2xx response; every 4xx/5xx response is the JSON `Error` schema. Then the
documents are validated against the official OpenAPI 3.0 JSON Schema
(Debian: openapi-specification, with python3-jsonschema), and by
openapi-spec-validator too when that module is importable.

Usage: api-routes.py [SOURCE_DIR] (default: $KQ_SOURCE, else the tree this
script is in). Exit 0: all good; 1: a mismatch (listed); 77: skipped (what
is missing is said).
"""
import os
import re
import sys
import urllib.parse

SKIP = 77
DEBIAN_PYTHON = '/usr/bin/python3'
OPENAPI_SCHEMA = '/usr/share/openapi-specification/schemas/v3.0/schema.json'


def _reexec_with_debian_python():
    """pyyaml and jsonschema may be Debian's (python3-yaml, python3-jsonschema)
    while `python3` on PATH is another interpreter: use Debian's if it has them."""
    if os.environ.get('KQ_API_ROUTES_REEXEC') or not os.path.exists(DEBIAN_PYTHON):
        return
    if os.path.realpath(sys.executable) == os.path.realpath(DEBIAN_PYTHON):
        return
    import subprocess
    if subprocess.call([DEBIAN_PYTHON, '-c', 'import yaml, jsonschema'],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) != 0:
        return
    os.environ['KQ_API_ROUTES_REEXEC'] = '1'
    os.execv(DEBIAN_PYTHON, [DEBIAN_PYTHON] + sys.argv)


try:
    import yaml
    import jsonschema  # noqa: F401  (only probed here)
except ImportError:
    _reexec_with_debian_python()
try:
    import yaml
except ImportError:
    print('SKIP: api-routes needs PyYAML (Debian: python3-yaml)')
    sys.exit(SKIP)

# daemon -> the files with its route table, its example config, the document of its own
DAEMONS = {
    'registrar': {'table': 'registrar/api.c', 'config': 'registrar/registrar.conf.example',
                  'doc': 'registrar.yaml'},
    'verifier': {'table': 'verifier/api.c', 'config': 'verifier/verifier.conf.example',
                 'doc': 'verifier.yaml'},
    'host-agent': {'table': 'host-agent/evidence.c', 'config': 'host-agent/host-agent.conf.example',
                   'doc': 'agent.yaml'},
    'guest-agent': {'table': 'guest-agent/main.c', 'config': 'guest-agent/guest-agent.conf.example',
                    'doc': 'agent.yaml'},
}
API_DIR = 'docs/api'
INDEX_DOC = 'openapi.yaml'
# folders whose C files are not a daemon's (tests have route tables of their own)
NOT_SOURCE = {'tests', 'docs', 'subprojects', '.git'}
METHODS = ('get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace')
CLIENT_CERT = {True: 'required', False: 'none'}


class Failure(Exception):
    pass


errors = []
# daemon -> [(method, prefix, handler)] of its "/*" routes, for hints
wildcards = {}


def error(msg):
    if msg not in errors:
        errors.append(msg)


def norm(path):
    """/v1/agents/{id} and /v1/agents/{name} are the same route."""
    return re.sub(r'\{[^}/]*\}', '{}', path)


# ---------------------------------------------------------------- C source

def blank_comments(src):
    """src with comments turned into spaces (newlines kept), offsets unchanged.
    Also returns the comments as (start, end) spans."""
    out, spans, i, n = [], [], 0, len(src)
    while i < n:
        c = src[i]
        if c == '/' and src.startswith('/*', i):
            j = src.find('*/', i + 2)
            j = n if j < 0 else j + 2
            spans.append((i, j))
            out.append(re.sub(r'[^\n]', ' ', src[i:j]))
            i = j
        elif c == '/' and src.startswith('//', i):
            j = src.find('\n', i)
            j = n if j < 0 else j
            spans.append((i, j))
            out.append(' ' * (j - i))
            i = j
        elif c in '"\'':
            j = skip_literal(src, i)
            out.append(src[i:j])
            i = j
        else:
            out.append(c)
            i += 1
    return ''.join(out), spans


def skip_literal(s, i):
    """Index just past the string or character literal starting at s[i]."""
    q, j = s[i], i + 1
    while j < len(s):
        if s[j] == '\\':
            j += 2
            continue
        if s[j] == q or s[j] == '\n':
            return j + 1
        j += 1
    return j


def blank_preprocessor(code):
    """Preprocessor lines (with their continuations) turned into spaces."""
    lines = code.split('\n')
    out, cont = [], False
    for line in lines:
        if cont or line.lstrip().startswith('#'):
            cont = line.endswith('\\')
            out.append(' ' * len(line))
        else:
            out.append(line)
    return '\n'.join(out)


def matching(code, i, open_c, close_c):
    """Index of the bracket closing the one at code[i]."""
    depth, j = 0, i
    while j < len(code):
        c = code[j]
        if c in '"\'':
            j = skip_literal(code, j)
            continue
        if c == open_c:
            depth += 1
        elif c == close_c:
            depth -= 1
            if depth == 0:
                return j
        j += 1
    raise Failure(f'unbalanced {open_c}{close_c}')


def split_top(text):
    """Splits an initializer's inside at top-level commas."""
    items, depth, start, j = [], 0, 0, 0
    while j < len(text):
        c = text[j]
        if c in '"\'':
            j = skip_literal(text, j)
            continue
        if c in '({[':
            depth += 1
        elif c in ')}]':
            depth -= 1
        elif c == ',' and depth == 0:
            items.append(text[start:j].strip())
            start = j + 1
        j += 1
    items.append(text[start:].strip())
    return [x for x in items if x]


def string_literals(code):
    """The string literals of code, as written (escapes are not path characters anyway)."""
    return [m.group(1) for m in re.finditer(r'"((?:[^"\\\n]|\\.)*)"', code)]


class CFile:
    """One C file: its comment-free code, top-level definitions and #defines."""

    def __init__(self, root, rel):
        self.rel = rel
        with open(os.path.join(root, rel), encoding='utf-8') as f:
            self.src = f.read()
        self.code, self.comment_spans = blank_comments(self.src)
        self.defines = {}
        for m in re.finditer(r'^[ \t]*#[ \t]*define[ \t]+(\w+)\b(?!\()((?:[^\n]*\\\n)*[^\n]*)', self.code, re.M):
            self.defines[m.group(1)] = m.group(2).replace('\\\n', ' ')
        self.defs = self._definitions(blank_preprocessor(self.code))

    @staticmethod
    def _definitions(code):
        """name -> body text of top-level functions and initialised variables."""
        defs, i, seg = {}, 0, 0
        while i < len(code):
            c = code[i]
            if c in '"\'':
                i = skip_literal(code, i)
                continue
            if c == ';':
                seg = i + 1
            elif c == '{':
                end = matching(code, i, '{', '}')
                head = code[seg:i].strip()
                name, function = None, False
                m = re.search(r'(\w+)\s*(?:\[[^\]]*\]\s*)*=\s*$', head)
                if m:
                    name = m.group(1)
                elif head.endswith(')'):
                    # the identifier before the parameter list (whose parameters may hold parentheses)
                    depth, k = 0, len(head) - 1
                    while k >= 0:
                        depth += {')': 1, '(': -1}.get(head[k], 0)
                        if depth == 0:
                            break
                        k -= 1
                    m = re.search(r'(\w+)\s*$', head[:k])
                    name, function = (m.group(1) if m else None), True
                if name:
                    defs[name] = code[i:end + 1]
                i = end + 1
                if function:
                    seg = i
                continue
            i += 1
        return defs

    def in_comment(self, pos):
        return any(a <= pos < b for a, b in self.comment_spans)

    def comment_before(self, pos):
        """The /* */ comment that ends right before pos (only blanks between), or ''."""
        k = pos
        while k > 0 and self.src[k - 1] in ' \t\r\n':
            k -= 1
        for a, b in self.comment_spans:
            if b == k:
                return self.src[a:b]
        return ''

    def function_pos(self, name):
        for m in re.finditer(r'^[^\n;{}]*\b' + re.escape(name) + r'\s*\(', self.src, re.M):
            op = m.end() - 1
            if self.in_comment(op):
                continue
            # a definition: its parameter list is followed by a body
            close = matching(self.code, op, '(', ')')
            if re.match(r'\s*\{', self.code[close + 1:]):
                return m.start()
        return None

    def reach(self, name):
        """The bodies of name and of every definition or #define of this file it uses."""
        seen, todo, bodies = set(), [name], []
        while todo:
            n = todo.pop()
            if n in seen:
                continue
            seen.add(n)
            body = self.defs.get(n, self.defines.get(n))
            if body is None:
                continue
            bodies.append(body)
            no_strings = re.sub(r'"(?:[^"\\\n]|\\.)*"', '""', body)
            for ident in set(re.findall(r'\b[A-Za-z_]\w*\b', no_strings)):
                if ident in self.defs or ident in self.defines:
                    todo.append(ident)
        return bodies


def source_files(root, ext):
    for d, subdirs, files in os.walk(root):
        rel = os.path.relpath(d, root)
        top = rel.split(os.sep)[0]
        if top in NOT_SOURCE or top.startswith('build') or (rel != '.' and top.startswith('.')):
            subdirs[:] = []
            continue
        for f in sorted(files):
            if f.endswith(ext):
                yield os.path.normpath(os.path.join(rel, f))


class Code:
    def __init__(self, root):
        self.root = root
        self.files = {}

    def file(self, rel):
        if rel not in self.files:
            self.files[rel] = CFile(self.root, rel)
        return self.files[rel]

    def macro(self, name, near):
        """The body of #define name, looked for in near's folder, then in lib/."""
        for rel in self.candidates(near, ('.h', '.c')):
            f = self.file(rel)
            if name in f.defines:
                return f.defines[name], rel
        raise Failure(f'{near}: route table entry {name}: no #define {name} found')

    def candidates(self, near, exts):
        folder = os.path.dirname(near)
        first = [near] + sorted(os.path.join(folder, f) for f in os.listdir(os.path.join(self.root, folder))
                                if f.endswith(exts))
        rest = [r for ext in exts for r in source_files(os.path.join(self.root, 'lib'), ext)]
        return list(dict.fromkeys(first + [os.path.join('lib', r) for r in rest]))

    def handler_file(self, name, near):
        for rel in self.candidates(near, ('.c',)):
            if self.file(rel).function_pos(name) is not None:
                return self.file(rel)
        raise Failure(f'{near}: handler {name}: its definition is nowhere in {os.path.dirname(near)}/ or lib/')

    def route_entries(self, text, where):
        out = []
        for item in split_top(text):
            if item.startswith('{'):
                inner = split_top(item[1:matching(item, 0, '{', '}')])
                lits = [re.fullmatch(r'"((?:[^"\\]|\\.)*)"', x) for x in inner[:2]]
                if (len(inner) != 4 or not all(lits) or inner[2] not in ('true', 'false')
                        or not re.fullmatch(r'[A-Za-z_]\w*', inner[3])):
                    raise Failure(f'{where}: cannot read route table entry {item!r} '
                                  '(expected { "METHOD", "/path", true|false, handler })')
                method, path = lits[0].group(1), lits[1].group(1)
                if not re.fullmatch(r'[A-Z]+', method) or not path.startswith('/'):
                    raise Failure(f'{where}: route table entry {item!r}: bad method or path')
                out.append((method, path, inner[2] == 'true', inner[3]))
            elif re.fullmatch(r'[A-Z_][A-Z0-9_]*', item):
                body, rel = self.macro(item, where)
                out += self.route_entries(body, rel)
            else:
                raise Failure(f'{where}: cannot read route table entry {item!r}')
        return out

    def tables(self):
        """file -> [(method, path, need_client_cert, handler)] for every route table of the tree."""
        found = {}
        for rel in source_files(self.root, '.c'):
            f = self.file(rel)
            for m in re.finditer(r'\bstruct\s+http_route\s+(\w+)\s*\[\s*\]\s*=\s*\{', f.code):
                if f.in_comment(m.start()):
                    continue
                op = m.end() - 1
                body = f.code[op + 1:matching(f.code, op, '{', '}')]
                if rel in found:
                    raise Failure(f'{rel}: more than one route table')
                found[rel] = self.route_entries(body, rel)
                if not found[rel]:
                    raise Failure(f'{rel}: route table {m.group(1)} is empty')
        return found


ROUTE_LINE = re.compile(r'@route\s+([A-Z]+)\s+(/\S*)(\s+client-cert)?\s*$')
PATH_LITERAL = re.compile(r'(/[A-Za-z0-9][A-Za-z0-9._~-]*)+')
METHOD_CMP = re.compile(r'strcmp\s*\(\s*(?:\w+\s*->\s*)?method\s*,\s*"([A-Z]+)"\s*\)'
                        r'|strcmp\s*\(\s*"([A-Z]+)"\s*,\s*(?:\w+\s*->\s*)?method\s*\)')


def sub_routes(code, rel, entries, handler):
    """The @route lines above a wildcard handler, checked against its code.
    entries: the wildcard table entries (method, prefix, need_cert) routed to it."""
    hf = code.handler_file(handler, rel)
    comment = hf.comment_before(hf.function_pos(handler))
    routes = []
    for line in comment.split('\n'):
        if '@route' not in line:
            continue
        m = ROUTE_LINE.search(line)
        if not m:
            raise Failure(f'{hf.rel}: {handler}: cannot read {line.strip()!r} '
                          '(expected "@route METHOD /path" or "@route METHOD /path client-cert")')
        routes.append((m.group(1), m.group(2), bool(m.group(3))))
    where = f'{hf.rel}: {handler}'
    if not routes:
        raise Failure(f'{where} serves {", ".join(m + " " + p + "*" for m, p, _ in entries)} but has no '
                      '"@route METHOD /path" lines in the comment right above it saying what it serves')

    bodies = hf.reach(handler)
    out, ann_segments = [], set()
    for method, path, cert in routes:
        match = [(p, need) for m, p, need in entries if m == method and path.startswith(p)]
        if not match:
            error(f'{where}: "@route {method} {path}": the route table sends it no {method} under '
                  + ', '.join(sorted({p + "*" for _, p, _ in entries})))
            continue
        prefix, need = match[0]
        rest = path[len(prefix):].split('/')
        if not re.fullmatch(r'\{\w+\}', rest[0]):
            error(f'{where}: "@route {method} {path}": expected a {{parameter}} right after {prefix}')
        ann_segments |= {s for s in rest[1:] if not s.startswith('{')}
        if cert and not any('client_verified' in b for b in bodies):
            error(f'{where}: "@route {method} {path} client-cert", but it never checks client_verified')
        out.append((method, path, need or cert))
    for m, p, _ in entries:
        if not any(r[0] == m and r[1].startswith(p) for r in routes):
            error(f'{where}: the route table sends it {m} {p}* but no @route line names a {m} route there')

    # the sub-paths and methods the code compares
    prefixes = {p for _, p, _ in entries}
    code_segments, methods = set(), set()
    for body in bodies:
        for lit in string_literals(body):
            if not PATH_LITERAL.fullmatch(lit):
                continue
            if any(p.startswith(lit + '/') or p == lit for p in prefixes):
                continue  # the prefix itself, or a part of it
            code_segments |= set(lit.strip('/').split('/'))
        for m in METHOD_CMP.finditer(body):
            methods.add(m.group(1) or m.group(2))
    for s in sorted(code_segments - ann_segments):
        error(f'{where}: the code compares the sub-path "/{s}", which no @route line names')
    for s in sorted(ann_segments - code_segments):
        error(f'{where}: an @route line names "/{s}", which the code never compares')
    routed = {m for m, _, _ in entries}
    for m in sorted(methods - routed):
        error(f'{where}: the code compares the method {m}, which the route table never sends it')
    return out


def code_routes(root):
    """daemon -> {(METHOD, normalised path): (path, need_client_cert, where)}."""
    code = Code(root)
    tables = code.tables()
    known = {d['table']: name for name, d in DAEMONS.items()}
    for rel in tables:
        if rel not in known:
            raise Failure(f'{rel} has a route table but belongs to no daemon this test knows '
                          '(add it to DAEMONS in tests/docs/api-routes.py)')
    out = {}
    for name, d in DAEMONS.items():
        if d['table'] not in tables:
            raise Failure(f'{d["table"]}: no route table (struct http_route NAME[] = {{...}}) found for {name}')
        routes = {}

        def add(method, path, need, where):
            key = (method, norm(path))
            if key in routes and routes[key][1] != need:
                error(f'{name}: {method} {path} is served twice with different client-certificate needs')
            routes[key] = (path, need, where)

        wild = {}
        for method, path, need, handler in tables[d['table']]:
            if path.endswith('/*'):
                wild.setdefault(handler, []).append((method, path[:-1], need))
                wildcards.setdefault(name, []).append((method, path[:-1], handler))
            elif '*' in path:
                raise Failure(f'{d["table"]}: route {method} {path}: "*" is only allowed as a last "/*"')
            else:
                add(method, path, need, d['table'])
        for handler, entries in wild.items():
            for method, path, need in sub_routes(code, d['table'], entries, handler):
                add(method, path, need, f'{handler} @route')
        out[name] = routes
    return out


# ---------------------------------------------------------------- OpenAPI documents

class Docs:
    def __init__(self, api_dir):
        self.dir = api_dir
        self.cache = {}

    def load(self, name):
        name = os.path.normpath(name)
        if name not in self.cache:
            path = os.path.join(self.dir, name)
            try:
                with open(path, encoding='utf-8') as f:
                    self.cache[name] = yaml.safe_load(f)
            except FileNotFoundError:
                raise Failure(f'{API_DIR}/{name} is missing')
            except yaml.YAMLError as e:
                raise Failure(f'{API_DIR}/{name}: not valid YAML: {e}')
            if not isinstance(self.cache[name], dict):
                raise Failure(f'{API_DIR}/{name}: not a YAML mapping')
        return self.cache[name]

    def ref(self, doc, ref):
        """(document name, node) a $ref found in doc points at; Failure if it does not resolve."""
        target, _, frag = ref.partition('#')
        name = os.path.normpath(os.path.join(os.path.dirname(doc), target)) if target else doc
        node = self.load(name)
        if frag:
            if not frag.startswith('/'):
                raise Failure(f'{API_DIR}/{doc}: $ref {ref!r}: only JSON pointers are supported')
            for part in frag[1:].split('/'):
                part = urllib.parse.unquote(part).replace('~1', '/').replace('~0', '~')
                if isinstance(node, dict) and part in node:
                    node = node[part]
                elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                    node = node[int(part)]
                else:
                    raise Failure(f'{API_DIR}/{doc}: $ref {ref!r} does not resolve')
        return name, node

    def deref(self, doc, node):
        seen = set()
        while isinstance(node, dict) and '$ref' in node:
            if (doc, node['$ref']) in seen:
                raise Failure(f'{API_DIR}/{doc}: $ref loop at {node["$ref"]!r}')
            seen.add((doc, node['$ref']))
            doc, node = self.ref(doc, node['$ref'])
        return doc, node

    def check_refs(self, doc, node, where='#'):
        if isinstance(node, dict):
            if isinstance(node.get('$ref'), str):
                try:
                    self.deref(doc, node)
                except Failure as e:
                    error(f'{e} (at {where})')
            for k, v in node.items():
                self.check_refs(doc, v, f'{where}/{k}')
        elif isinstance(node, list):
            for i, v in enumerate(node):
                self.check_refs(doc, v, f'{where}/{i}')


def is_error_schema(docs, doc, schema):
    """Whether schema is (a $ref chain to) a schema named Error."""
    while isinstance(schema, dict) and '$ref' in schema:
        if schema['$ref'].endswith('/components/schemas/Error'):
            return True
        doc, schema = docs.ref(doc, schema['$ref'])
    return False


def server_daemon(server, where):
    d = server.get('x-kumquat-daemon') if isinstance(server, dict) else None
    if d not in DAEMONS:
        error(f'{where}: a server without a known x-kumquat-daemon ({", ".join(DAEMONS)})')
        return None
    return d


def config_port(root, rel):
    section = None
    with open(os.path.join(root, rel), encoding='utf-8') as f:
        for line in f:
            m = re.match(r'\s*\[([^\]]+)\]', line)
            if m:
                section = m.group(1).strip()
            m = re.match(r'\s*port\s*=\s*(\d+)', line)
            if m and section == 'server':
                return m.group(1)
    raise Failure(f'{rel}: no [server] port')


def check_servers(root, name, servers, where):
    for i, s in enumerate(servers or []):
        d = server_daemon(s, f'{where} servers[{i}]')
        if not d:
            continue
        port = (s.get('variables') or {}).get('port', {}).get('default')
        if port is None:
            m = re.search(r':(\d+)(/|$)', s.get('url', ''))
            port = m.group(1) if m else None
        want = config_port(root, DAEMONS[d]['config'])
        if str(port) != want:
            error(f'{API_DIR}/{name}: a server of {d} has port {port}, but {DAEMONS[d]["config"]} says {want}')


def doc_routes(root, docs, name):
    """{(daemon, METHOD, normalised path): (path, client-cert)} of one document, checked on the way."""
    d = docs.load(name)
    where = f'{API_DIR}/{name}'
    if not re.fullmatch(r'3\.0\.\d+', str(d.get('openapi', ''))):
        error(f'{where}: openapi must be 3.0.x, not {d.get("openapi")!r}')
    if not isinstance(d.get('info'), dict) or not d['info'].get('title') or not d['info'].get('version'):
        error(f'{where}: info needs title and version')
    docs.check_refs(name, d)
    check_servers(root, name, d.get('servers'), 'root')
    routes, op_ids = {}, {}
    paths = d.get('paths')
    if not isinstance(paths, dict) or not paths:
        raise Failure(f'{where}: no paths')
    for path, item in paths.items():
        pw = f'{where}: {path}'
        if not path.startswith('/'):
            error(f'{pw}: a path must start with /')
        try:
            idoc, item = docs.deref(name, item)
        except Failure:
            continue  # check_refs has said so
        if not isinstance(item, dict):
            error(f'{pw}: not a path item')
            continue
        if not item.get('servers'):
            error(f'{pw}: the path item lists no servers (each names the daemons that serve it)')
        check_servers(root, name, item.get('servers'), path)
        template = set(re.findall(r'\{([^}/]+)\}', path))

        def params(node, pdoc):
            out = {}
            for p in node.get('parameters') or []:
                _, p = docs.deref(pdoc, p)
                if isinstance(p, dict) and p.get('in') == 'path':
                    out[p.get('name')] = p
            return out
        item_params = params(item, idoc)
        ops = [m for m in METHODS if m in item]
        if not ops:
            error(f'{pw}: no operation')
        for method in ops:
            op = item[method]
            ow = f'{pw} {method.upper()}'
            declared = dict(item_params, **params(op, idoc))
            for p in sorted(template - set(declared)):
                error(f'{ow}: path parameter {{{p}}} is not declared')
            for p in sorted(set(declared) - template):
                error(f'{ow}: parameter {p} is declared "in: path" but the path has no {{{p}}}')
            for p, spec in declared.items():
                if spec.get('required') is not True:
                    error(f'{ow}: path parameter {p} must say required: true')
            oid = op.get('operationId')
            if not oid:
                error(f'{ow}: no operationId')
            elif oid in op_ids:
                error(f'{ow}: operationId {oid} is also used by {op_ids[oid]}')
            else:
                op_ids[oid] = ow
            responses = op.get('responses') or {}
            if not any(re.fullmatch(r'2\d\d', str(c)) for c in responses):
                error(f'{ow}: no 2xx response')
            for code_, resp in responses.items():
                rw = f'{ow} {code_}'
                if not re.fullmatch(r'[1-5]\d\d|[1-5]XX|default', str(code_)):
                    error(f'{rw}: not an HTTP status')
                rdoc, resp = docs.deref(idoc, resp)
                if not isinstance(resp, dict) or not resp.get('description'):
                    error(f'{rw}: a response needs a description')
                    continue
                if str(code_)[0] in '45':
                    schema = ((resp.get('content') or {}).get('application/json') or {}).get('schema')
                    if not is_error_schema(docs, rdoc, schema):
                        error(f'{rw}: an error response must be application/json with the Error schema')
            if op.get('servers'):
                check_servers(root, name, op['servers'], f'{path} {method.upper()}')
            servers = op.get('servers') or item.get('servers') or []
            daemons = [server_daemon(s, ow) for s in servers]
            cert = op.get('x-client-cert')
            for daemon in filter(None, daemons):
                c = cert.get(daemon) if isinstance(cert, dict) else cert
                if c not in ('required', 'none'):
                    error(f'{ow}: x-client-cert must be "required" or "none"'
                          f'{" for " + daemon if isinstance(cert, dict) else ""}, not {c!r}')
                key = (daemon, method.upper(), norm(path))
                if key in routes:
                    error(f'{ow}: documented twice for {daemon}')
                routes[key] = (path, c)
            if isinstance(cert, dict):
                for extra in sorted(set(cert) - set(filter(None, daemons))):
                    error(f'{ow}: x-client-cert names {extra}, which is not one of its servers')
    return routes


def compare(doc_name, doc, code, daemons):
    """Lists what the code has and the document lacks, and the other way round."""
    want = {(dm, m, p): v for dm in daemons for (m, p), v in code[dm].items()}
    for key in doc:
        if key[0] not in daemons:
            error(f'{API_DIR}/{doc_name} documents {key[1]} {doc[key][0]} on {key[0]}, '
                  f'which this document is not about ({", ".join(daemons)})')
    missing = sorted(set(want) - set(doc))
    extra = sorted(k for k in set(doc) - set(want) if k[0] in daemons)
    if missing:
        error(f'routes in the code missing from {API_DIR}/{doc_name}:\n'
              + '\n'.join(f'    {m} {want[(dm, m, p)][0]}  ({dm}, {want[(dm, m, p)][2]})' for dm, m, p in missing))
    def hint(dm, m, path):
        hs = [h for wm, prefix, h in wildcards.get(dm, []) if wm == m and path.startswith(prefix)]
        return f'; {hs[0]} serves {m} below there: if it serves this, an @route line above it says so' if hs else ''
    if extra:
        error(f'routes in {API_DIR}/{doc_name} that the code does not serve:\n'
              + '\n'.join(f'    {m} {doc[(dm, m, p)][0]}  ({dm}{hint(dm, m, doc[(dm, m, p)][0])})'
                          for dm, m, p in extra))
    for key in sorted(set(want) & set(doc)):
        need = CLIENT_CERT[want[key][1]]
        if doc[key][1] != need:
            error(f'{API_DIR}/{doc_name}: {key[1]} {doc[key][0]} on {key[0]}: x-client-cert is '
                  f'{doc[key][1]!r}, the code says {need!r}')


# ---------------------------------------------------------------- schema validation

def deepest(e):
    """For "not valid under any of the given schemas": the error deepest in the document."""
    best = e
    for c in e.context or []:
        c = deepest(c)
        if len(c.absolute_path) > len(best.absolute_path):
            best = c
    return best


def schema_validate(docs, names):
    """Validates each document against the OpenAPI 3.0 JSON Schema; returns a skip reason or None."""
    import json
    try:
        import jsonschema
    except ImportError:
        return 'python3-jsonschema is not installed'
    schema_path = os.environ.get('KQ_OPENAPI_SCHEMA', OPENAPI_SCHEMA)
    if not os.path.exists(schema_path):
        return f'{schema_path} is missing (Debian: openapi-specification)'
    with open(schema_path, encoding='utf-8') as f:
        schema = json.load(f)
    validator = jsonschema.Draft4Validator(schema)
    for name in names:
        for e in sorted(validator.iter_errors(docs.load(name)), key=lambda e: list(e.absolute_path)):
            e = deepest(e)
            at = '/'.join(str(p) for p in e.absolute_path)
            error(f'{API_DIR}/{name}: not valid OpenAPI 3.0 at {at or "/"}: {e.message[:200]}')
    try:
        from openapi_spec_validator import validate
        from openapi_spec_validator.readers import read_from_filename
    except ImportError:
        return None
    for name in names:
        try:
            spec, url = read_from_filename(os.path.join(docs.dir, name))
            validate(spec, base_uri=url)
        except Exception as e:  # noqa: BLE001  (its errors have no common base across versions)
            error(f'{API_DIR}/{name}: openapi-spec-validator: {str(e).splitlines()[0][:200]}')
    return None


def main():
    root = (sys.argv[1] if len(sys.argv) > 1 else
            os.environ.get('KQ_SOURCE') or os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
    root = os.path.abspath(root)
    docs = Docs(os.path.join(root, API_DIR))
    try:
        code = code_routes(root)
        per_doc = {}
        for name, d in DAEMONS.items():
            per_doc.setdefault(d['doc'], []).append(name)
        for doc_name, daemons in per_doc.items():
            compare(doc_name, doc_routes(root, docs, doc_name), code, daemons)
        compare(INDEX_DOC, doc_routes(root, docs, INDEX_DOC), code, list(DAEMONS))
        skipped = schema_validate(docs, sorted(docs.cache))
    except Failure as e:
        error(str(e))
    if errors:
        print(f'api-routes: {len(errors)} problem(s) between the code and {API_DIR}:', file=sys.stderr)
        for e in errors:
            print(f'  - {e}', file=sys.stderr)
        return 1
    n = sum(len(r) for r in code.values())
    print(f'api-routes: {n} routes of {len(code)} daemons, each in its document and in {API_DIR}/{INDEX_DOC}, '
          f'and none there that the code does not serve')
    for name, routes in code.items():
        print(f'  {name}: ' + ', '.join(f'{m} {v[0]}' for (m, _), v in sorted(routes.items(), key=lambda x: x[1][0])))
    if skipped:
        print(f'SKIP: the documents were not checked against the OpenAPI 3.0 schema: {skipped}')
        return SKIP
    print(f'api-routes: {", ".join(sorted(docs.cache))} are valid OpenAPI 3.0')
    return 0


if __name__ == '__main__':
    sys.exit(main())
