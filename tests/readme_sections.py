"""The README's Python examples, by section."""

import re


def python_blocks(text):
    """The contents of the ```python blocks of `text`, in order."""
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def section(text, heading):
    """The part of `text` under the line `heading` (e.g. "## keras-hub").

    It ends before the next heading of the same level or higher; lines in
    code blocks (Python comments) are not headings.

    Returns:
        The section, its heading line included, or None if there is none.
    """
    level = len(heading) - len(heading.lstrip("#"))
    lines = text.splitlines(keepends=True)
    start, fenced = None, False
    for index, line in enumerate(lines):
        if line.startswith("```"):
            fenced = not fenced
        if fenced or not line.startswith("#"):
            continue
        if start is None and line.rstrip() == heading:
            start = index
        elif start is not None and len(line) - len(line.lstrip("#")) <= level:
            return "".join(lines[start:index])
    return None if start is None else "".join(lines[start:])
