""".dockerignore reading and matching (servin.build.ignore) with Docker's rules (moby/patternmatcher and the
CLI's context walk), and which of the Dockerfile and .dockerignore are sent and kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from servin.build.ignore import IgnoreMatcher, clean_path, read_patterns, removed_by_daemon, sent_patterns
from servin.errors import InvalidArgument

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "path, cleaned",
    [
        ("", "."),
        (".", "."),
        ("a/b/", "a/b"),
        ("./a//b/./c", "a/b/c"),
        ("a/../..", ".."),
        ("a/../../b", "../b"),
        ("/../a", "/a"),
        ("//a", "/a"),
        ("/", "/"),
    ],
)
def test_clean_path_is_gos(path: str, cleaned: str) -> None:
    assert clean_path(path) == cleaned


def test_read_patterns() -> None:
    content = (
        "\ufeff# comment\n"
        "   \n"
        "  *.log  \n"
        " # not a comment when indented\n"
        "/abs/path\n"
        "./rel/../dir/\n"
        "! keep.log\n"
        "!/abs/keep\n"
        "/\n"
        "!\n"
        "a//b\n"
    )
    assert read_patterns(content) == [
        "*.log",
        "# not a comment when indented",
        "abs/path",
        "dir",
        "!keep.log",
        "!abs/keep",
        "/",
        "!",
        "a/b",
    ]
    assert read_patterns(b"\xef\xbb\xbfnode_modules\r\n.git\r\n") == ["node_modules", ".git"]
    assert read_patterns("a\x1cb\n") == ["a\x1cb"]  # only \n ends a line


@pytest.mark.parametrize(
    "pattern, path, excluded",
    [
        ("**", "file", True),
        ("**/", "file", True),
        ("**", "dir/file", True),
        ("**/**", "dir/file", True),
        ("dir/**", "dir/file", True),
        ("dir/**", "dir/dir2/file", True),
        ("**/dir", "dir", True),
        ("**/dir", "dir/file", True),
        ("**/dir2/*", "dir/dir2/file", True),
        ("**/dir2/**", "dir/dir2/dir3/file", True),
        ("**file", "file", True),
        ("**file", "dir/file", True),
        ("**/file", "dir/dir/file", True),
        ("**/file*", "dir/dir/file.txt", True),
        ("**/file*txt", "dir/dir/file.txt", True),
        ("**/**/*.txt", "dir/dir/file.txt", True),
        ("**/**/*.txt2", "dir/dir/file.txt", False),
        ("**/*.txt", "file.txt", True),
        ("a**/*.txt", "a/dir/dir/file.txt", True),
        ("a/*.txt", "a/dir/file.txt", False),
        ("a/*.txt", "a/file.txt", True),
        ("a/*.txt**", "a/file.txt", True),
        ("a[b-d]e", "ae", False),
        ("a[b-d]e", "ace", True),
        ("a[b-d]e", "aae", False),
        ("a[^b-d]e", "aze", True),
        (".*", ".foo", True),
        (".*", "foo", False),
        ("abc.def", "abcdef", False),
        ("abc.def", "abc.def", True),
        ("abc?def", "abcZdef", True),
        ("abc?def", "abcdef", False),
        ("a\\\\", "a\\", True),
        ("a\\*b", "a*b", True),
        ("a\\*b", "axb", False),
        ("**/foo/bar", "foo/bar", True),
        ("**/foo/bar", "dir/dir2/foo/bar", True),
        ("abc/**", "abc", False),
        ("abc/**", "abc/def/ghi", True),
        ("**/.foo", ".foo", True),
        ("**/.foo", "bar.foo", False),
        ("a(b)c/def", "a(b)c/def", True),
        ("a(b)c/def", "a(b)c/xyz", False),
        ("a.|)$(}+{bc", "a.|)$(}+{bc", True),
        ("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", True),
        # a pattern excludes what is under a matching directory
        ("node_modules", "node_modules/a/b.js", True),
        ("*/temp*", "somedir/temporary.txt", True),
        ("*/temp*", "somedir/temp/x", True),
        ("*/temp*", "temp", False),
        ("*/*/temp*", "somedir/subdir/temporary.txt", True),
        ("temp?", "tempa", True),
        ("temp?", "temp", False),
        ("*.md", "docs/readme.md", False),  # * does not cross a slash
        ("**/*.md", "docs/readme.md", True),
        ("docs", "docs2/x", False),
        ("/docs", "docs/x", True),
        ("a?c", "a\nc", True),
        ("a*", "a\nb", True),
    ],
)
def test_single_pattern(pattern: str, path: str, excluded: bool) -> None:
    assert IgnoreMatcher(read_patterns(pattern) or [pattern]).excluded(path) is excluded


@pytest.mark.parametrize(
    "patterns, path, excluded",
    [
        (["**", "!util/docker/web"], "util/docker/web/foo", False),
        (["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo", True),
        (["**", "!dist/*.whl"], "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", False),
        (["*.md", "!README.md"], "README.md", False),
        (["*.md", "!README.md"], "CHANGES.md", True),
        (["*.md", "!README*.md", "README-secret.md"], "README-secret.md", True),
        (["*.md", "!README*.md", "README-secret.md"], "README-public.md", False),
        (["docs", "!docs/keep.md"], "docs/keep.md", False),
        (["docs", "!docs/keep.md"], "docs/other.md", True),
        (["docs", "!docs/keep.md"], "docs", True),
        (["!x"], "x", False),
        # the last matching pattern wins
        (["a", "!a", "a"], "a", True),
    ],
)
def test_exceptions(patterns: list[str], path: str, excluded: bool) -> None:
    assert IgnoreMatcher(patterns).excluded(path) is excluded


def test_context_root_is_never_excluded() -> None:
    matcher = IgnoreMatcher(["**"])
    assert not matcher.excluded(".")
    assert not matcher.excluded("")
    assert matcher.excluded("./a/../b")


@pytest.mark.parametrize("pattern", ["[", "a[", "[]a]", "[-a]", "[z-a]", "a\\", "[a-"])
def test_bad_patterns(pattern: str) -> None:
    with pytest.raises(InvalidArgument, match="^syntax error in pattern$"):
        IgnoreMatcher([pattern])


def test_lone_exclamation_mark() -> None:
    with pytest.raises(InvalidArgument, match='^illegal exclusion pattern: "!"$'):
        IgnoreMatcher(read_patterns("a\n!\n"))


def _tree(root: Path, *files: str) -> None:
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)


def test_walk_skips_excluded_directories_without_exceptions(tmp_path: Path) -> None:
    _tree(tmp_path, "Dockerfile", "src/a.py", "node_modules/x/y.js", "build/out.o", "README.md")
    matcher = IgnoreMatcher(read_patterns("node_modules\nbuild/\n*.md\n"))
    assert list(matcher.walk(str(tmp_path))) == ["Dockerfile", "src", "src/a.py"]


def test_walk_enters_an_excluded_directory_an_exception_reaches_into(tmp_path: Path) -> None:
    _tree(tmp_path, "Dockerfile", "vendor/keep/a.go", "vendor/drop/b.go", "vendor/c.go", "other/d.txt")
    matcher = IgnoreMatcher(read_patterns("vendor\nother\n!vendor/keep\n"))
    # vendor itself is not sent, but what the exception takes back is; other/ is skipped whole
    assert list(matcher.walk(str(tmp_path))) == ["Dockerfile", "vendor/keep", "vendor/keep/a.go"]


def test_walk_only_looks_into_directories_an_exception_names(tmp_path: Path) -> None:
    _tree(tmp_path, "a/keep.txt", "b/x.txt")
    # the exception's text must start with the directory: a wildcard exception does not open it
    matcher = IgnoreMatcher(["a", "!*/keep.txt"])
    assert list(matcher.walk(str(tmp_path))) == ["b", "b/x.txt"]


def test_walk_uses_parent_results(tmp_path: Path) -> None:
    _tree(tmp_path, "docs/a.md", "docs/sub/b.md", "docs/sub/c.txt")
    matcher = IgnoreMatcher(["docs/sub", "!docs/sub/*.md"])
    assert list(matcher.walk(str(tmp_path))) == ["docs", "docs/a.md", "docs/sub/b.md"]


def test_dockerfile_and_dockerignore_are_sent_and_then_removed_by_the_daemon(tmp_path: Path) -> None:
    patterns = read_patterns("*\n!src\n")
    sent = sent_patterns(patterns, "Dockerfile")
    assert sent == ["*", "!src", "!.dockerignore", "!Dockerfile"]
    _tree(tmp_path, "Dockerfile", ".dockerignore", "src/main.c", "secret.txt")
    assert list(IgnoreMatcher(sent).walk(str(tmp_path))) == [".dockerignore", "Dockerfile", "src", "src/main.c"]
    # the daemon takes them out of the context again, so COPY . does not copy them
    assert removed_by_daemon(patterns, "Dockerfile") == [".dockerignore", "Dockerfile"]


def test_dockerfile_in_an_excluded_directory(tmp_path: Path) -> None:
    patterns = ["build", "*.md"]
    sent = sent_patterns(patterns, "build/Dockerfile.dev")
    assert sent == ["build", "*.md", "!build/Dockerfile.dev"]
    _tree(tmp_path, "build/Dockerfile.dev", "build/junk", "x.md", "app.py")
    assert list(IgnoreMatcher(sent).walk(str(tmp_path))) == ["app.py", "build/Dockerfile.dev"]
    assert removed_by_daemon(patterns, "build/Dockerfile.dev") == ["build/Dockerfile.dev"]


def test_nothing_added_or_removed_when_not_ignored() -> None:
    assert sent_patterns(["*.log"], "Dockerfile") == ["*.log"]
    assert removed_by_daemon(["*.log"], "Dockerfile") == []
    assert removed_by_daemon(["["], "Dockerfile") == []  # dockerd ignores the bad pattern here
