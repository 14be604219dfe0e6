#!/usr/bin/env python3
"""md2man.py SOURCE.md VERSION > PAGE: turns one of doc/man's Markdown pages
into a roff man page.

The pages use a small part of Markdown, and this knows only that part:
  - the first line, "# NAME(SECTION) -- what it is", gives .TH and NAME;
  - "## HEADING" starts a section (.SH), "### heading" a subsection (.SS);
  - a paragraph is lines that follow each other;
  - "- item" is a bulleted item, and lines indented under it continue it;
  - "`term`" alone on a line followed by ": text" lines is a tagged paragraph
    (.TP), for options, commands and keys;
  - ``` fences keep their lines as they are (.nf);
  - **bold** and `code` are bold, *text* is italic.
Anything else is an error, so that a page never renders half-right."""

import datetime
import os
import re
import sys


def escape(text):
    text = text.replace("\\", "\\e")
    # A line starting with a dot or a quote would be read as a request.
    return text


def inline(text):
    out = []
    # Code spans first, so that a * inside one stays a *.
    for k, part in enumerate(re.split(r"`([^`]+)`", text)):
        part = escape(part)
        if k % 2:
            out.append("\\fB" + part.replace("-", "\\-") + "\\fR")
            continue
        part = part.replace("-", "\\-")
        part = re.sub(r"\*\*(.+?)\*\*", r"\\fB\1\\fR", part)
        part = re.sub(r"(?<![\w*])\*([^*\s][^*]*?)\*(?![\w*])", r"\\fI\1\\fR", part)
        out.append(part)
    return "".join(out)


def start_line(text):
    return "\\&" + text if text.startswith((".", "'")) else text


def convert(lines, version, date):
    out = []
    m = re.match(r"^# ([\w.-]+)\((\d)\) -- (.+)$", lines[0]) if lines else None
    if not m:
        raise ValueError("line 1: expected '# name(section) -- what it is'")
    name, section, what = m.groups()
    manual = {"5": "File Formats", "8": "System Administration"}.get(section, "weir")
    out.append(f'.TH "{name.upper()}" "{section}" "{date}" "weir {version}" "{manual}"')
    out.append(".SH NAME")
    out.append(f"{inline(name)} \\- {inline(what)}")
    i = 1
    para = []

    def flush():
        if para:
            out.append(".PP")
            out.extend(start_line(inline(p)) for p in para)
            para.clear()

    while i < len(lines):
        line = lines[i]
        if not line.strip():
            flush()
            i += 1
            continue
        if line.startswith("```"):
            flush()
            out.append(".PP")
            out.append(".RS 4")
            out.append(".nf")
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                out.append(start_line(escape(lines[i]).replace("-", "\\-")))
                i += 1
            if i == len(lines):
                raise ValueError("a ``` block is not closed")
            out.append(".fi")
            out.append(".RE")
            i += 1
            continue
        if line.startswith("## "):
            flush()
            out.append(".SH " + inline(line[3:].upper()))
            i += 1
            continue
        if line.startswith("### "):
            flush()
            out.append(".SS " + inline(line[4:]))
            i += 1
            continue
        if line.startswith("#"):
            raise ValueError(f"line {i + 1}: only ## and ### headings are known")
        if line.startswith("- "):
            flush()
            item = [line[2:]]
            i += 1
            while i < len(lines) and lines[i].startswith("  ") and lines[i].strip():
                item.append(lines[i].strip())
                i += 1
            out.append(".IP \\(bu 2")
            out.extend(start_line(inline(p)) for p in item)
            continue
        if i + 1 < len(lines) and lines[i + 1].startswith(": "):
            flush()
            out.append(".TP")
            out.append(start_line(inline(line)))
            i += 1
            body = []
            while i < len(lines) and (lines[i].startswith(": ") or lines[i].startswith("  ")):
                body.append(lines[i][2:].strip())
                i += 1
            out.extend(start_line(inline(p)) for p in body)
            continue
        if line.startswith("|") or line.startswith(">"):
            raise ValueError(f"line {i + 1}: tables and quotes are not known here")
        para.append(line.strip())
        i += 1
    flush()
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: md2man.py SOURCE.md VERSION")
    path, version = sys.argv[1], sys.argv[2]
    # SOURCE_DATE_EPOCH (set by dpkg-buildpackage) keeps the page reproducible.
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0")) or int(os.path.getmtime(path))
    date = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%d")
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    try:
        sys.stdout.write(convert(lines, version, date))
    except ValueError as e:
        sys.exit(f"{path}: {e}")


if __name__ == "__main__":
    main()
