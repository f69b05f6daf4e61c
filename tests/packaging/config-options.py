#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Every config option of every daemon is in its example config and its doc.

The options are read from the daemons' C source: each `struct conf_option
NAME[] = { ... };` table in a daemon's folder (entries `{ "section", "key",
... }`, wrapper macros such as `O("section", "key", ...)`, and macros like
SERVICES_OPTIONS(...) whose #define holds such entries). Then, per daemon:

  example config (DAEMON/DAEMON.conf.example)
    - every option is there, set (`key = value`) or commented out
      (`#key = value`), under its own [section], once;
    - a comment explains it: a prose comment line above it in the same
      paragraph (options in one paragraph may share one comment);
    - nothing else is there: no option the code does not know.

  doc (docs/*.md)
    - a `## Configuration` section names the example file and has a table
      with one row per option, the first cell `[section] key` in backquotes;
    - no row for an option the code does not know.

A table entry this script cannot read, or a daemon folder with no table, is
an error rather than a silent pass. Usage: config-options.py [SOURCE_DIR]
(default: $KQ_SOURCE, else the tree this script is in).
"""
import os
import re
import sys

# daemon folder -> (doc that documents its configuration)
DAEMONS = {
    'registrar': 'docs/registrar.md',
    'verifier': 'docs/verifier.md',
    'host-agent': 'docs/host-agent.md',
    'guest-agent': 'docs/guest-agent.md',
    'vtpm-mgr': 'docs/vtpm.md',
}
# folders that are not daemons (no config of their own)
NOT_DAEMONS = {'lib', 'tests', 'docs', 'tenant', 'man', 'subprojects'}

KEY = r'[A-Za-z0-9_.-]+'
OPTION_LINE = re.compile(r'^\s*(?P<c>[#;]\s*)?(?P<key>' + KEY + r')\s*=(?P<value>.*)$')
SECTION_LINE = re.compile(r'^\s*\[(?P<name>[^\]]*)\]\s*$')
DOC_ROW = re.compile(r'^\|\s*`\[(?P<sect>[^\]]*)\]\s+(?P<key>' + KEY + r')`\s*\|')

errors = []


def error(msg):
    errors.append(msg)


def strip_c_comments(text):
    # string literals kept intact; comments become a space
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == '\\' else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif text.startswith('/*', i):
            j = text.find('*/', i + 2)
            i = n if j < 0 else j + 2
            out.append(' ')
        elif text.startswith('//', i):
            j = text.find('\n', i)
            i = n if j < 0 else j
        else:
            out.append(c)
            i += 1
    return ''.join(out)


def split_top(body):
    """Splits at commas outside (), {} and string literals."""
    parts, depth, cur, i = [], 0, [], 0
    while i < len(body):
        c = body[i]
        if c == '"':
            j = i + 1
            while j < len(body) and body[j] != '"':
                j += 2 if body[j] == '\\' else 1
            cur.append(body[i:j + 1])
            i = j + 1
            continue
        if c in '({':
            depth += 1
        elif c in ')}':
            depth -= 1
        if c == ',' and depth == 0:
            parts.append(''.join(cur).strip())
            cur = []
        else:
            cur.append(c)
        i += 1
    if ''.join(cur).strip():
        parts.append(''.join(cur).strip())
    return parts


def matching(text, open_at):
    """Index of the bracket closing the one at open_at."""
    pairs = {'{': '}', '(': ')'}
    o, c = text[open_at], pairs[text[open_at]]
    depth, i = 0, open_at
    while i < len(text):
        if text[i] == '"':
            i += 1
            while i < len(text) and text[i] != '"':
                i += 2 if text[i] == '\\' else 1
        elif text[i] == o:
            depth += 1
        elif text[i] == c:
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ValueError('unbalanced brackets')


PAIR = re.compile(r'^\s*(?:\{\s*)?(?:(?P<m>[A-Za-z_]\w*)\s*\(\s*)?(?:NULL|"(?P<sect>[^"]*)")\s*,\s*"(?P<key>[^"]*)"')
MACRO_CALL = re.compile(r'^\s*(?P<m>[A-Z_][A-Z0-9_]*)\s*\((?P<args>.*)\)\s*$', re.S)


def find_define(src, name, search_dirs):
    pat = re.compile(r'^[ \t]*#[ \t]*define[ \t]+' + re.escape(name) + r'\b(?:[^\n\\]|\\[^\n]|\\\n)*', re.M)
    for d in search_dirs:
        for root, _, files in os.walk(os.path.join(src, d)):
            for f in sorted(files):
                if not f.endswith(('.h', '.c')):
                    continue
                with open(os.path.join(root, f), encoding='utf-8') as fh:
                    m = pat.search(fh.read())
                if m:
                    return strip_c_comments(m.group(0).replace('\\\n', '\n'))
    return None


def entries(src, where, body, search_dirs, depth=0):
    """(section, key) of each entry of a conf_option initializer list."""
    out = []
    for part in split_top(body):
        if re.fullmatch(r'\{\s*0?\s*\}', part):
            continue  # the terminator
        m = PAIR.match(part)
        if m:
            out.append((m.group('sect') or '', m.group('key')))
            continue
        m = MACRO_CALL.match(part)
        define = find_define(src, m.group('m'), search_dirs) if m else None
        if define is None or depth > 3:
            error(f'{where}: cannot read the conf_option entry {part!r}')
            continue
        # the macro's body: everything after its parameter list
        params_open = define.index('(')
        macro_body = define[matching(define, params_open) + 1:]
        got = entries(src, f'{where} ({m.group("m")})', macro_body, search_dirs, depth + 1)
        if not got:
            error(f'{where}: the macro {m.group("m")} holds no conf_option entries')
        out.extend(got)
    return out


TABLE = re.compile(r'struct\s+conf_option\s+(?P<name>\w+)\s*\[\s*\]\s*=\s*\{')


def code_options(src, folder):
    """{(section, key)} from every conf_option table of folder's C files."""
    found, opts = False, []
    d = os.path.join(src, folder)
    for f in sorted(os.listdir(d)):
        if not f.endswith('.c'):
            continue
        with open(os.path.join(d, f), encoding='utf-8') as fh:
            text = strip_c_comments(fh.read())
        for m in TABLE.finditer(text):
            found = True
            brace = m.end() - 1
            body = text[brace + 1:matching(text, brace)]
            where = f'{folder}/{f}: {m.group("name")}[]'
            got = entries(src, where, body, ['lib', folder])
            seen = set()
            for o in got:
                if o in seen:
                    error(f'{where}: [{o[0]}] {o[1]} twice')
                seen.add(o)
            opts.extend(got)
    return found, set(opts)


def check_example(path, rel, opts):
    with open(path, encoding='utf-8') as fh:
        lines = fh.read().split('\n')
    section = ''
    seen = {}
    for i, line in enumerate(lines):
        s = SECTION_LINE.match(line)
        if s:
            section = s.group('name').strip()
            continue
        m = OPTION_LINE.match(line)
        if not m:
            continue
        opt = (section, m.group('key'))
        where = f'{rel}:{i + 1}'
        if opt not in opts:
            known = sorted(f'[{s}]' for s, k in opts if k == opt[1])
            hint = f' (the code has it in {", ".join(known)})' if known else ''
            error(f'{where}: [{opt[0]}] {opt[1]} is not an option of the daemon{hint}')
            continue
        if opt in seen:
            error(f'{where}: [{opt[0]}] {opt[1]} again (first on line {seen[opt]})')
            continue
        seen[opt] = i + 1
        # a prose comment above, in the same paragraph
        explained = False
        for j in range(i - 1, -1, -1):
            above = lines[j]
            if not above.strip() or SECTION_LINE.match(above):
                break
            if OPTION_LINE.match(above):
                continue
            if above.lstrip().startswith(('#', ';')):
                explained = True
                break
        if not explained:
            error(f'{where}: [{opt[0]}] {opt[1]} has no comment above it explaining it')
    for opt in sorted(opts - set(seen)):
        error(f'{rel}: [{opt[0]}] {opt[1]} is missing (set it, or show it commented out, with a comment)')


def check_doc(path, rel, example_name, opts):
    with open(path, encoding='utf-8') as fh:
        lines = fh.read().split('\n')
    start = next((i for i, l in enumerate(lines) if re.fullmatch(r'##\s+Configuration\s*', l)), None)
    if start is None:
        error(f'{rel}: no "## Configuration" section')
        return
    end = next((i for i in range(start + 1, len(lines)) if re.match(r'##\s', lines[i])), len(lines))
    section = lines[start:end]
    if not any(example_name in l for l in section):
        error(f'{rel}:{start + 1}: the Configuration section does not name {example_name}')
    seen = {}
    for i, line in enumerate(section, start + 1):
        m = DOC_ROW.match(line)
        if not m:
            continue
        opt = (m.group('sect').strip(), m.group('key'))
        if opt not in opts:
            error(f'{rel}:{i}: [{opt[0]}] {opt[1]} is not an option of the daemon')
        elif opt in seen:
            error(f'{rel}:{i}: [{opt[0]}] {opt[1]} again (first on line {seen[opt]})')
        else:
            seen[opt] = i
    for opt in sorted(opts - set(seen)):
        error(f'{rel}: the Configuration table has no row for `[{opt[0]}] {opt[1]}`')


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else os.environ.get(
        'KQ_SOURCE', os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
    total = 0
    for folder, doc in DAEMONS.items():
        found, opts = code_options(src, folder)
        if not found or not opts:
            error(f'{folder}: no struct conf_option table found in {folder}/*.c')
            continue
        total += len(opts)
        example = f'{folder}/{folder}.conf.example'
        check_example(os.path.join(src, example), example, opts)
        check_doc(os.path.join(src, doc), doc, f'{folder}.conf.example', opts)
    # a new daemon (a folder with a conf_option table) must be added above
    for d in sorted(os.listdir(src)):
        if d in DAEMONS or d in NOT_DAEMONS or d.startswith(('.', 'build')):
            continue
        if os.path.isdir(os.path.join(src, d)):
            found, _ = code_options(src, d)
            if found:
                error(f'{d}: has a conf_option table but is not in DAEMONS of {sys.argv[0]}')
    for e in errors:
        print(e)
    if errors:
        print(f'{len(errors)} problem(s)')
        return 1
    print(f'{total} options of {len(DAEMONS)} daemons: all in the example configs and the docs')
    return 0


if __name__ == '__main__':
    sys.exit(main())
