"""The documentation stays in step with the code it describes: plain file reading, no database."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV_EXAMPLE = ROOT / ".env.example"
CONFIGURATION = ROOT / "docs" / "configuration.md"
README = ROOT / "README.md"

# `NAME=value`, or commented out as `# NAME=value`.
ENV_LINE = re.compile(r"^#?\s*([A-Z][A-Z0-9_]+)=", re.MULTILINE)
BACKTICKED_NAME = re.compile(r"`([A-Z][A-Z0-9_]+)`")
# A relative link into docs/, without its #fragment.
DOCS_LINK = re.compile(r"\]\((docs/[^)#\s]*)(?:#[^)]*)?\)")


def env_example_names() -> set[str]:
    return set(ENV_LINE.findall(ENV_EXAMPLE.read_text()))


def configuration_table_names() -> set[str]:
    """The backticked ALL_CAPS names in the first column of configuration.md's tables."""
    names = set()
    for line in CONFIGURATION.read_text().splitlines():
        if not line.startswith("|"):
            continue
        first_cell = line.split("|")[1]
        names.update(BACKTICKED_NAME.findall(first_cell))
    return names


def test_configuration_lists_every_variable_of_env_example():
    text = CONFIGURATION.read_text()
    names = env_example_names()
    assert names, ".env.example lists no variable"
    missing = sorted(name for name in names if f"`{name}`" not in text)
    assert not missing, f"docs/configuration.md does not describe {missing}"


def test_every_configuration_variable_is_in_env_example():
    names = configuration_table_names()
    assert names, "docs/configuration.md has no variable table"
    unknown = sorted(names - env_example_names())
    assert not unknown, f".env.example does not list {unknown}"


def test_readme_is_a_front_page():
    text = README.read_text()
    lines = len(text.splitlines())
    assert lines <= 220, f"README.md has {lines} lines; move detail into docs/"
    assert "make run" in text
    assert "make test" in text
    links = DOCS_LINK.findall(text)
    assert links, "README.md links into no docs/ page"
    broken = sorted(link for link in links if not (ROOT / link).is_file())
    assert not broken, f"README.md links to missing files {broken}"
