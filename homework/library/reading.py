"""Reading a pack's files safely (size limits, no links, YAML without anchors or aliases)
and splitting an assignment's body into its sections: shared by assignment files and
their translations."""

import re
import stat
from pathlib import Path
from typing import Any

import yaml

from .model import (
    _MD_FIND_HTML,
    _YAML_LOADER,
    MAX_FILE_BYTES,
    MAX_YAML_BYTES,
    REQUIRED_SECTIONS,
    SECTIONS,
    Problem,
)


def read_text(
    path: Path, problems: list[Problem], root: Path | None, limit: int = MAX_FILE_BYTES
) -> str | None:
    name = str(path)
    try:
        if root is not None and not path.resolve().is_relative_to(root):
            problems.append(Problem(name, "file", "is a link to a file outside the pack; refused"))
            return None
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a FIFO or device would block or never end
            problems.append(Problem(name, "file", "is not a regular file; refused"))
            return None
        if info.st_size > limit:
            problems.append(Problem(name, "file", too_big(info.st_size, limit)))
            return None
        with path.open("rb") as fh:
            data = fh.read(limit + 1)  # the file may have grown since stat()
        if len(data) > limit:
            problems.append(Problem(name, "file", too_big(len(data), limit)))
            return None
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.append(
            Problem(name, "file", f"is not UTF-8 text (byte {exc.start}); save it as UTF-8")
        )
    except OSError as exc:
        problems.append(Problem(name, "file", f"cannot be read: {exc.strerror or exc}"))
    return None


def too_big(size: int, limit: int) -> str:
    if limit >= 1_000_000:
        return f"is {size / 1e6:.1f} MB; the limit is {limit // 1_000_000} MB"
    return f"is larger than the limit of {limit // 1000} kB"


def read_yaml_file(path: Path, problems: list[Problem]) -> dict | None:
    text = read_text(path, problems, root=path.parent.resolve(), limit=MAX_YAML_BYTES)
    if text is None:
        return None
    return parse_yaml(text, str(path), "pack", problems)


def parse_yaml(text: str, name: str, what: str, problems: list[Problem]) -> dict | None:
    if len(text.encode("utf-8")) > MAX_YAML_BYTES:
        problems.append(
            Problem(name, what, f"is larger than the limit of {MAX_YAML_BYTES // 1000} kB")
        )
        return None
    try:
        # Anchors and aliases are refused before anything is built: a few hundred bytes
        # of nested aliases ("billion laughs") expand to gigabytes when walked.
        for event in yaml.parse(text, Loader=_YAML_LOADER):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                mark = event.start_mark
                problems.append(
                    Problem(
                        name,
                        what,
                        f"uses a YAML anchor or alias (line {mark.line + 1}); they are not "
                        "allowed here: write each value out in full",
                    )
                )
                return None
        data = yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        problems.append(Problem(name, what, f"invalid YAML{where}: {problem}"))
        return None
    if not isinstance(data, dict):
        problems.append(Problem(name, what, "must be a YAML mapping of keys to values"))
        return None
    return data


def _walk(tokens):
    for token in tokens:
        yield token
        if token.children:
            yield from _walk(token.children)


def raw_html(body: str) -> str | None:
    """The start of the first raw HTML in a Markdown body, or None when it has none."""
    # Raw HTML needs a "<"; most bodies have none, and parsing is the costly part of a load.
    for token in _walk(_MD_FIND_HTML.parse(body) if "<" in body else []):
        if token.type in ("html_block", "html_inline"):
            return token.content.strip().splitlines()[0][:60] if token.content.strip() else ""
    return None


def parse_sections(body: str) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Split a body into its named sections; steps and prompts become lists of lines."""
    problems: list[tuple[str, str]] = []
    raw: dict[str, list[str]] = {}
    current = None
    for line in body.splitlines():
        heading = re.match(r"^##\s+(.+?)\s*#*\s*$", line)
        if heading:
            title = heading.group(1)
            key = SECTIONS.get(title)
            if key is None:
                problems.append(
                    ("body", f"unknown section '## {title}'; use: {', '.join(SECTIONS)}")
                )
                current = None
                continue
            if key in raw:
                problems.append(("body", f"section '## {title}' appears twice"))
            current = key
            raw[key] = []
        elif current is not None:
            raw[current].append(line)
        elif line.strip():
            problems.append(("body", "text before the first '## ' section heading"))
    order = [SECTIONS[t] for t in SECTIONS]
    present = [k for k in order if k in raw]
    if present != [k for k in raw if k in order]:
        problems.append(("body", f"sections must come in this order: {', '.join(SECTIONS)}"))
    for key in REQUIRED_SECTIONS:
        if key not in raw:
            title = next(t for t, k in SECTIONS.items() if k == key)
            problems.append(("body", f"missing section '## {title}'"))
    sections: dict[str, Any] = {}
    for key, lines in raw.items():
        text = "\n".join(lines).strip()
        if key in ("steps", "prompts"):
            items = _list_items(text, ordered=key == "steps")
            if not items:
                kind = "a numbered list (1. 2. 3.)" if key == "steps" else "a bullet list (- )"
                problems.append(("body", f"section '{key}' must be {kind}"))
            sections[key] = tuple(items)
        else:
            if not text:
                problems.append(("body", f"section '{key}' is empty"))
            sections[key] = text
    return sections, problems


def _list_items(text: str, ordered: bool) -> list[str]:
    marker = r"^\s*\d+[.)]\s+" if ordered else r"^\s*[-*+]\s+"
    items: list[str] = []
    for line in text.splitlines():
        if re.match(marker, line):
            items.append(re.sub(marker, "", line).strip())
        elif line.strip() and items:
            items[-1] += " " + line.strip()  # a wrapped continuation line
        elif line.strip():
            return []
    return items
