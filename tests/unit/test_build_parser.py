"""The classic builder's Dockerfile parser (servin.build.dockerfile): what dockerd's parser makes of a
Dockerfile (cases from the behaviour buildkit's parser testfiles and instruction tests document), and
its error messages."""

from __future__ import annotations

import pytest

from servin.build import instructions as ins
from servin.build.dockerfile import Dockerfile, needed_stages, parse_dockerfile, parse_trigger, resolve_base
from servin.build.syntax import parse
from servin.errors import InvalidArgument

pytestmark = pytest.mark.unit


def one(text: str) -> ins.Instruction:
    """The single instruction after `FROM x`."""
    (command,) = parse_dockerfile("FROM x\n" + text).stages[0].commands
    return command


def error(text: str) -> str:
    with pytest.raises(InvalidArgument) as err:
        parse_dockerfile(text)
    return err.value.message


def args(text: str) -> list[tuple[str, ...]]:
    """The raw arguments of each instruction, as the parser splits them."""
    return [n.args for n in parse(text).nodes]


# -- lines, continuations, comments


def test_continuations_join_lines_without_adding_spaces() -> None:
    text = (
        "FROM ubuntu:14.04\n"
        "RUN echo hello\\\n  world\\\n  goodnight  \\\n  moon\\\n  light\\\nning\n"
        "RUN echo hello  \\\n  world\n"
        "RUN echo hello \\\ngoodbye\\\nfrog\n"
        "RUN echo hello  \\  \nworld\n"
        "RUN echo hi \\\n \\\n world \\\n\\\n good\\\n\\\nnight\n"
    )
    assert args(text)[1:] == [
        ("echo hello  world  goodnight    moon  lightning",),
        ("echo hello    world",),
        ("echo hello goodbyefrog",),
        ("echo hello  world",),
        ("echo hi   world  goodnight",),
    ]


def test_comments_and_empty_lines_inside_a_continuation_are_skipped_with_a_warning() -> None:
    text = "FROM x\nRUN echo hello \\\n# this is a comment\n\n   # indented comment\nthis is more\n"
    dockerfile = parse_dockerfile(text)
    (run,) = dockerfile.stages[0].commands
    assert isinstance(run, ins.Run) and run.cmd == ("echo hello this is more",)
    assert run.text == "RUN echo hello this is more"
    assert (run.line, dockerfile.stages[0].line) == (2, 1)
    assert dockerfile.warnings == ("Empty continuation line found in: RUN echo hello this is more",)
    assert dockerfile.warning_lines() == [
        "[WARNING]: Empty continuation line found in: RUN echo hello this is more\n",
        "[WARNING]: Empty continuation lines will become errors in a future release.\n",
    ]


def test_no_warning_without_empty_continuation_lines() -> None:
    assert parse_dockerfile("FROM x\nRUN a \\\n b\n").warning_lines() == []


def test_escaped_escape_does_not_continue() -> None:
    text = (
        "FROM x\nENV A path\nENV B another\\\\path\nENV C trailing\\\\backslash\\\\\nENV D not appended to C\n"
        "ENV E hello\\\n\\\nworld\nENV F hello\\\n \\\nworld\n"
    )
    assert args(text)[1:] == [
        ("A", "path", ""),
        ("B", "another\\\\path", ""),
        ("C", "trailing\\\\backslash\\\\", ""),
        ("D", "not appended to C", ""),
        ("E", "helloworld", ""),
        ("F", "hello world", ""),
    ]


def test_continuation_at_end_of_file() -> None:
    assert args("FROM alpine:3.5\n\nRUN something \\")[1] == ("something",)


def test_line_numbers_count_directives_comments_and_continuations() -> None:
    text = (
        "# ESCAPE=\\\n\n\n\nFROM brimstone/ubuntu:14.04\n\n\n# comment\n\n\nENV GOPATH \\\n/go\n\n\n\n# c\n"
        "RUN apt-get update \\\n\t&& x \\\n\n\n    && y \\\n\t&& z\n\n"
    )
    nodes = parse(text).nodes
    assert [(n.line, n.end_line) for n in nodes] == [(5, 5), (11, 12), (17, 22)]


def test_crlf_and_byte_order_mark() -> None:
    dockerfile = parse_dockerfile(b"\xef\xbb\xbfFROM busybox\r\nRUN echo a \\\r\n  b\r\n")
    assert dockerfile.stages[0].text == "FROM busybox"
    (run,) = dockerfile.stages[0].commands
    assert isinstance(run, ins.Run) and run.cmd == ("echo a   b",)


def test_step_text_is_the_instruction_as_written() -> None:
    dockerfile = parse_dockerfile("  from   busybox  AS  Base  \n\trun\techo  'a  b'   \\\n   c   \n")
    stage = dockerfile.stages[0]
    assert str(stage) == "from   busybox  AS  Base"
    assert (stage.base, stage.name) == ("busybox", "base")
    (run,) = stage.commands
    assert str(run) == "run\techo  'a  b'      c"
    assert run.name == "RUN"


def test_instruction_names_are_case_insensitive() -> None:
    stage = parse_dockerfile("From x\nrun a\nCmD b\nworkDIR /w\n").stages[0]
    assert [type(c) for c in stage.commands] == [ins.Run, ins.Cmd, ins.Workdir]


def test_file_with_no_instructions_and_empty_file() -> None:
    assert error("# Hello\n# These are just comments\n\n") == "failed to parse Dockerfile: file with no instructions"
    assert error("\n\n") == "failed to parse Dockerfile: file with no instructions"
    assert error("") == "the Dockerfile (Dockerfile) cannot be empty"
    with pytest.raises(InvalidArgument, match=r"^failed to parse sub/Dockerfile.dev: "):
        parse_dockerfile("#\n", name="sub/Dockerfile.dev")


def test_too_long_line() -> None:
    assert error("FROM x\nRUN " + "a" * 70000 + "\n") == (
        "failed to parse Dockerfile: dockerfile line greater than max allowed size of 65535"
    )


# -- directives


def test_escape_directive_backtick() -> None:
    dockerfile = parse_dockerfile("#escape = `\n\nFROM image\nLABEL maintainer foo@bar.com\nENV GOPATH `\n\\go")
    assert dockerfile.escape == "`"
    assert args("#escape = `\n\nFROM image\nENV GOPATH `\n\\go") == [("image",), ("GOPATH", "\\go", "")]
    # the backslash is an ordinary character then: Windows paths stay as written
    copy = parse_dockerfile("# escape=`\nFROM x\nCOPY c:\\src\\ c:\\dst\\\n").stages[0].commands[0]
    assert isinstance(copy, ins.Copy) and copy.sources == ("c:\\src\\",) and copy.dest == "c:\\dst\\"


def test_escape_directive_after_a_comment_or_blank_line_is_a_comment() -> None:
    after_comment = "# Comment here.\n# escape = `\n\nFROM image\nENV GOPATH \\\n\\go"
    assert parse_dockerfile(after_comment).escape == "\\"
    assert args(after_comment)[1] == ("GOPATH", "\\go", "")
    assert parse_dockerfile("\n# escape=`\nFROM x\n").escape == "\\"


def test_syntax_directive_is_recorded() -> None:
    dockerfile = parse_dockerfile("# syntax = docker/dockerfile:1\n# escape = `\n\nFROM `\n    image\n")
    assert dockerfile.syntax == "docker/dockerfile:1"
    assert dockerfile.escape == "`"
    assert dockerfile.stages[0].base == "image"
    assert parse_dockerfile("FROM x\n# syntax=late\n").syntax is None


def test_directive_errors() -> None:
    assert error("# escape=`\n# escape=\\\nFROM x\n") == (
        "failed to parse Dockerfile: only one escape parser directive can be used"
    )
    assert error("# escape=x\nFROM x\n") == (
        "failed to parse Dockerfile: invalid escape token 'x' does not match ` or \\"
    )


# -- stages and FROM


def test_stages_and_meta_args() -> None:
    dockerfile = parse_dockerfile(
        "ARG BASE=busybox\nARG TAG\nFROM ${BASE}:${TAG:-latest} AS Build\nRUN make\n"
        "FROM --platform=linux/arm64 alpine\nCOPY --from=build /out /out\n"
    )
    assert [a.pairs for a in dockerfile.meta_args] == [(("BASE", "busybox"),), (("TAG", None),)]
    build, final = dockerfile.stages
    assert (build.base, build.name, build.platform) == ("${BASE}:${TAG:-latest}", "build", "")
    assert (final.base, final.name, final.platform) == ("alpine", "", "linux/arm64")
    assert dockerfile.step_count(dockerfile.stages) == 6
    assert resolve_base(build, {"BASE": "busybox"}) == ("busybox:latest", "")
    assert resolve_base(final, {}) == ("alpine", "linux/arm64")


def test_blank_base_after_expansion() -> None:
    stage = parse_dockerfile("FROM $NOPE\n").stages[0]
    with pytest.raises(InvalidArgument, match=r"^base name \(\$NOPE\) should not be blank$"):
        resolve_base(stage, {})


def test_target_selects_stages_up_to_it() -> None:
    dockerfile = parse_dockerfile("FROM a AS one\nFROM b AS Two\nRUN x\nFROM c\n")
    assert [s.name for s in dockerfile.up_to("two")] == ["one", "two"]
    assert [s.name for s in dockerfile.up_to("TWO")] == ["one", "two"]
    assert dockerfile.up_to("") == dockerfile.stages
    assert dockerfile.step_count(dockerfile.up_to("one"), extra=2) == 3
    with pytest.raises(InvalidArgument, match='^target stage "nope" could not be found$'):
        dockerfile.up_to("nope")


@pytest.mark.parametrize(
    "text, message",
    [
        ("FROM\n", "FROM requires either one or three arguments"),
        ("FROM a b\n", "FROM requires either one or three arguments"),
        ("FROM a AS b c\n", "FROM requires either one or three arguments"),
        ("FROM a AS 1st\n", 'invalid name for build stage: "1st", name can\'t start with a number or contain symbols'),
        ("FROM a AS b$c\n", 'invalid name for build stage: "b$c", name can\'t start with a number or contain symbols'),
        ("FROM --platfrom=x a\n", "unknown flag: --platfrom (did you mean platform?)"),
        ("FROM --plat=x a\n", "unknown flag: --plat"),
        ("FROM --platform a\n", "missing a value on flag: --platform"),
    ],
)
def test_from_errors(text: str, message: str) -> None:
    assert error(text) == f"dockerfile parse error line 1: {message}"


def test_stage_names_allow_dots_dashes_underscores() -> None:
    assert parse_dockerfile("FROM a as my-stage_1.x\n").stages[0].name == "my-stage_1.x"


def test_instruction_before_from() -> None:
    assert error("RUN echo\nFROM x\n") == "no build stage in current context"
    assert error("# c\nARG A\nENV B=1\nFROM x\n") == "no build stage in current context"


def test_only_meta_args_parse() -> None:
    dockerfile = parse_dockerfile("ARG A=1\n")
    assert dockerfile.stages == () and len(dockerfile.meta_args) == 1


# -- unknown instructions and flags


@pytest.mark.parametrize(
    "line, message",
    [
        ("FOO bar", "unknown instruction: FOO"),
        ("RUNN x", "unknown instruction: RUNN"),
        ("runn x", "unknown instruction: RUNN"),
        ("Copyy a b", "unknown instruction: COPYY"),
        ("XYZZY a", "unknown instruction: XYZZY"),
        ("MAINTAINER --boo joe@example.com", "unknown flag: --boo"),
        ("COPY --chwon=1 a b", "unknown flag: --chwon (did you mean chown?)"),
        ("COPY --from a b", "missing a value on flag: --from"),
        ("COPY --chown=a --chown=b a b", "duplicate flag specified: --chown"),
        ("COPY --parents=maybe a b", "expecting boolean value for flag --parents, not: maybe"),
        ("COPY --link= a b", "missing a value on flag: --link"),
        ("ARG --x=1 A", "unknown flag: --x"),
        ("STOPSIGNAL --x=1 TERM", "unknown flag: --x"),
        ("ENV --x=1 A=1", "unknown flag: --x"),
        ("RUN --network=bridge true", 'invalid network mode "bridge"'),
        ("RUN --security=yes true", 'security "yes" is not valid'),
    ],
)
def test_instruction_errors_on_line(line: str, message: str) -> None:
    assert error(f"FROM x\n\n{line}\n") == f"dockerfile parse error line 3: {message}"


# -- argument counts


@pytest.mark.parametrize("command", ["MAINTAINER", "WORKDIR", "USER", "STOPSIGNAL"])
def test_exactly_one_argument(command: str) -> None:
    assert error(f"FROM x\n{command}\n") == f"dockerfile parse error line 2: {command} requires exactly one argument"


@pytest.mark.parametrize("command", ["ENV", "LABEL", "ONBUILD", "HEALTHCHECK", "EXPOSE", "VOLUME", "ARG", "SHELL"])
def test_at_least_one_argument(command: str) -> None:
    message = f"dockerfile parse error line 2: {command} requires at least one argument"
    assert error(f"FROM x\n{command}\n") == message


@pytest.mark.parametrize("command", ["ADD", "COPY"])
def test_no_destination(command: str) -> None:
    assert error(f"FROM x\n{command} arg1\n") == (
        f"dockerfile parse error line 2: {command} requires at least two arguments, but only one was provided."
        " Destination could not be determined"
    )
    assert "requires at least two arguments" in error(f"FROM x\n{command}\t\n\t\tquux \\\n      \n")


def test_single_string_instructions_take_the_rest_of_the_line() -> None:
    user = one("USER app group")
    assert isinstance(user, ins.User) and user.user == "app group"
    workdir = one("WORKDIR /a b")
    assert isinstance(workdir, ins.Workdir) and workdir.path == "/a b"
    maintainer = one('MAINTAINER James Turnbull "james@example.com"')
    assert isinstance(maintainer, ins.Maintainer) and maintainer.maintainer == 'James Turnbull "james@example.com"'
    signal = one("STOPSIGNAL SIGKILL")
    assert isinstance(signal, ins.Stopsignal) and signal.signal == "SIGKILL"


# -- ENV, LABEL, ARG


def test_env_forms() -> None:
    text = (
        "FROM ubuntu\nENV name value\nENV name=value\nENV name=value name2=value2\nENV name=\"value value1\"\n"
        "ENV name=value\\ value2\nENV name=\"value'quote space'value2\"\nENV name='value\"double quote\"value2'\n"
        "ENV name=value\\ value2 name2=value2\\ value3\nENV name=\"a\\\"b\"\nENV name='a\\'b'\nENV name=\"''\"\n"
        "ENV name=value \\\n    name1=value1 \\\n    name2=\"value2a \\\n           value2b\" \\\n"
        '    name3="value3a\\n\\"value3b\\"" \\\n'
    )
    assert args(text)[1:] == [
        ("name", "value", ""),
        ("name", "value", "="),
        ("name", "value", "=", "name2", "value2", "="),
        ("name", '"value value1"', "="),
        ("name", "value\\ value2", "="),
        ("name", "\"value'quote space'value2\"", "="),
        ("name", "'value\"double quote\"value2'", "="),
        ("name", "value\\ value2", "=", "name2", "value2\\ value3", "="),
        ("name", '"a\\"b"', "="),
        ("name", "'a\\'b'", "="),
        ("name", "\"''\"", "="),
        ("name", "value", "=", "name1", "value1", "=", "name2", '"value2a            value2b"', "=")
        + ("name3", '"value3a\\n\\"value3b\\""', "="),
    ]
    env = one("ENV A b  c d")
    assert isinstance(env, ins.Env) and env.pairs == (("A", "b  c d"),)
    env = one('ENV A=1 B="x y"')
    assert isinstance(env, ins.Env) and env.pairs == (("A", "1"), ("B", '"x y"'))


@pytest.mark.parametrize("command", ["ENV", "LABEL"])
def test_name_value_errors(command: str) -> None:
    message = f"failed to parse Dockerfile: {command} must have two arguments"
    assert error(f"FROM busybox\n\n{command} PATH\n") == message
    assert error(f"FROM x\n{command} a=1 b\n") == (
        'failed to parse Dockerfile: Syntax error - can\'t find = in "b". Must be of the form: name=value'
    )
    assert error(f"FROM x\n{command} =x\n") == f"dockerfile parse error line 2: {command} names can not be blank"


def test_label_pairs() -> None:
    label = one('LABEL maintainer Erik \\\\Hollensbe <erik@hollensbe.org>\\"')
    assert isinstance(label, ins.Label)
    assert label.pairs == (("maintainer", 'Erik \\\\Hollensbe <erik@hollensbe.org>\\"'),)
    label = one('LABEL "com.example.vendor"="ACME" version=1.0')
    assert isinstance(label, ins.Label) and label.pairs == (('"com.example.vendor"', '"ACME"'), ("version", "1.0"))


def test_arg_forms() -> None:
    assert args("ARG foo bar=baz\nFROM ubuntu\nARG abc=\"123 456\" def\n") == [
        ("foo", "bar=baz"),
        ("ubuntu",),
        ('abc="123 456"', "def"),
    ]
    arg = one('ARG abc="123 456" def EMPTY=')
    assert isinstance(arg, ins.Arg) and arg.pairs == (("abc", '"123 456"'), ("def", None), ("EMPTY", ""))
    assert error("FROM x\nARG =x\n") == "dockerfile parse error line 2: ARG names can not be blank"


# -- JSON and shell forms


def test_json_form() -> None:
    assert args(
        'CMD []\nCMD [""]\nCMD ["a"]\nCMD ["a","b"]\nCMD [ "a", "b" ]\nCMD [\t"a",\t"b"\t]\nCMD\t[\t"a",\t"b"\t]\t\n'
        'CMD ["abc 123", "♥", "☃", "\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u0000"]\n'
    ) == [(), ("",), ("a",)] + [("a", "b")] * 4 + [("abc 123", "♥", "☃", '" \\ / \b \f \n \r \t \x00')]


@pytest.mark.parametrize(
    "text",
    [
        "CMD ['echo','single quotes are invalid JSON']",
        'CMD ["echo", "Please, close the brackets when you\'re done"',
        'CMD ["echo", "unterminated string]',
        'CMD [ "echo", "a" ] trailing',
        "CMD [NaN]",
    ],
)
def test_invalid_json_is_shell_form(text: str) -> None:
    cmd = one(text)
    assert isinstance(cmd, ins.Cmd) and not cmd.json and cmd.cmd == (text[4:],)


def test_json_of_non_strings_is_an_error() -> None:
    assert error('FROM x\nCMD [ "echo", [ "nested json" ] ]\n') == (
        "failed to parse Dockerfile: when using JSON array syntax, arrays must be comprised of strings only"
    )
    assert "comprised of strings only" in error("FROM x\nRUN [1]\n")


def test_run_cmd_entrypoint_shell() -> None:
    run = one('RUN ["echo", "hi"]')
    assert isinstance(run, ins.Run) and run.json and run.cmd == ("echo", "hi") and run.requires_buildkit is None
    run = one("RUN echo $HOME && true")
    assert isinstance(run, ins.Run) and not run.json and run.cmd == ("echo $HOME && true",)
    entrypoint = one("ENTRYPOINT [ \"/usr/bin/redis-server\" ]")
    assert isinstance(entrypoint, ins.Entrypoint) and entrypoint.json and entrypoint.cmd == ("/usr/bin/redis-server",)
    cmd = one("CMD")
    assert isinstance(cmd, ins.Cmd) and cmd.cmd == () and not cmd.json
    shell = one('SHELL ["/bin/bash", "-o", "pipefail", "-c"]')
    assert isinstance(shell, ins.Shell) and shell.shell == ("/bin/bash", "-o", "pipefail", "-c")
    assert error("FROM x\nSHELL /bin/bash -c\n") == (
        "dockerfile parse error line 2: SHELL requires the arguments to be in JSON form"
    )
    assert error("FROM x\nSHELL []\n") == "dockerfile parse error line 2: SHELL requires at least one argument"


def test_flags_before_arguments() -> None:
    assert [n.flags for n in parse(
        "FROM scratch\nCOPY foo /tmp/\nCOPY --user=me foo /tmp/\nCOPY --doit=true -- foo /tmp/\nCOPY -- foo /tmp/\n"
        'CMD --doit [ "a", "b" ]\nCOPY --a="x y" --b=\'\' c d\n'
    ).nodes] == [(), (), ("--user=me",), ("--doit=true",), (), ("--doit",), ("--a=x y", "--b=")]
    copy = one("COPY -- --weird /x")
    assert isinstance(copy, ins.Copy) and copy.sources == ("--weird",) and copy.flags == ()


# -- ADD and COPY


def test_add_copy_sources_dest_and_flags() -> None:
    copy = one("COPY --from=build --chown=app:app a b* /dst/")
    assert isinstance(copy, ins.Copy)
    assert (copy.sources, copy.dest, copy.from_, copy.chown) == (("a", "b*"), "/dst/", "build", "app:app")
    assert copy.requires_buildkit is None
    add = one('ADD\t\t[ "test file", "/tmp/test file" ]')
    assert isinstance(add, ins.Add) and (add.sources, add.dest) == (("test file",), "/tmp/test file")
    add = one("ADD --chown=1:1 http://x/y.tgz /")
    assert isinstance(add, ins.Add) and add.chown == "1:1" and add.requires_buildkit is None
    # shell form splits on white space only: quotes stay
    copy = one('COPY "a b" /c')
    assert isinstance(copy, ins.Copy) and copy.sources == ('"a', 'b"') and copy.dest == "/c"


@pytest.mark.parametrize(
    "line, flag",
    [
        ("COPY --chmod=755 a /b", "chmod"),
        ("COPY --link a /b", "link"),
        ("COPY --parents a /b", "parents"),
        ("COPY --exclude=*.md . /b", "exclude"),
        ("ADD --chmod=755 a /b", "chmod"),
        ("ADD --checksum=sha256:00 http://x/y /b", "checksum"),
        ("ADD --keep-git-dir=true https://github.com/x/y.git /b", "keep-git-dir"),
        ("ADD --unpack=false a.tar /b", "unpack"),
        ("ADD --chown=1 --link a /b", "link"),
        ("RUN --mount=type=cache,target=/root/.cache true", "mount"),
        ("RUN --network=none true", "network"),
        ("RUN --security=insecure true", "security"),
        ("RUN --device=/dev/fuse true", "device"),
    ],
)
def test_buildkit_only_options_are_refused_at_dispatch(line: str, flag: str) -> None:
    assert one(line).requires_buildkit == (
        f"the --{flag} option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ to learn how to"
        " build images with BuildKit enabled"
    )


# -- heredocs: read (so their lines are no instructions), then refused


def test_heredocs_are_read_and_refused() -> None:
    dockerfile = parse_dockerfile(
        "FROM x\nRUN <<EOF\necho hello\nFROM not-a-stage\nEOF\nCOPY <<-EOT /etc/motd\n\thi\n\tEOT\n"
        'RUN cat <<"A" > /x\n$HOME\nA\nUSER app\n'
    )
    run, copy, run2, user = dockerfile.stages[0].commands
    assert len(dockerfile.stages) == 1
    assert isinstance(run, ins.Run) and run.heredocs[0].content == "echo hello\nFROM not-a-stage\n"
    assert run.requires_buildkit == ins.HEREDOC_REFUSAL
    assert run.text == "RUN <<EOF"
    assert isinstance(copy, ins.Copy) and copy.sources == () and copy.heredocs[0].chomp
    assert copy.requires_buildkit == ins.HEREDOC_REFUSAL
    assert isinstance(run2, ins.Run) and run2.heredocs[0].name == "A" and not run2.heredocs[0].expand
    assert isinstance(user, ins.User) and user.line == 12
    assert ins.HEREDOC_REFUSAL.startswith("heredocs require BuildKit.")


def test_heredoc_edge_cases() -> None:
    assert error("FROM x\nRUN <<EOF\necho\n") == "failed to parse Dockerfile: unterminated heredoc"
    # exec form and other instructions have no heredocs; `a<<b` is no heredoc word
    assert one('RUN ["cat", "<<EOF"]').requires_buildkit is None
    assert one("RUN echo a<<b").requires_buildkit is None
    assert isinstance(one("ENV A <<EOF"), ins.Env)
    assert error("FROM x\nCOPY a <<EOF\nx\nEOF\n") == (
        "dockerfile parse error line 2: COPY cannot accept a heredoc as a destination"
    )
    onbuild = one("ONBUILD RUN <<EOF\nhi\nEOF")
    assert isinstance(onbuild, ins.Onbuild) and onbuild.requires_buildkit == ins.HEREDOC_REFUSAL
    assert onbuild.expression == "RUN <<EOF\nhi\nEOF"


# -- the other instructions


def test_expose_volume() -> None:
    expose = one("EXPOSE 8080 443 80/udp")
    assert isinstance(expose, ins.Expose) and expose.ports == ("443", "80/udp", "8080")
    assert expose.text == "EXPOSE 8080 443 80/udp"
    volume = one("VOLUME /opt/nagios/var /opt/nagios/etc /var/log/apache2")
    assert isinstance(volume, ins.Volume) and volume.paths == ("/opt/nagios/var", "/opt/nagios/etc", "/var/log/apache2")
    volume = one('VOLUME ["/data", "/logs"]')
    assert isinstance(volume, ins.Volume) and volume.paths == ("/data", "/logs")
    assert error('FROM x\nVOLUME ["/a", " "]\n') == (
        "dockerfile parse error line 2: VOLUME specified can not be an empty string"
    )


def test_onbuild() -> None:
    onbuild = one("ONBUILD   run echo hi")
    assert isinstance(onbuild, ins.Onbuild)
    assert (onbuild.expression, onbuild.trigger, onbuild.text) == ("run echo hi", "RUN", "ONBUILD   run echo hi")
    # the trigger is parsed when a build starts FROM the image, not before
    assert isinstance(one("ONBUILD FOOBAR x"), ins.Onbuild)
    assert error("FROM x\nONBUILD ONBUILD RUN touch foobar\n") == (
        "dockerfile parse error line 2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"
    )
    assert error("FROM x\nONBUILD FROM scratch\n") == (
        "dockerfile parse error line 2: FROM isn't allowed as an ONBUILD trigger"
    )
    assert error("FROM x\nONBUILD maintainer me\n") == (
        "dockerfile parse error line 2: MAINTAINER isn't allowed as an ONBUILD trigger"
    )


def test_parse_trigger() -> None:
    run = parse_trigger("RUN echo hi")
    assert isinstance(run, ins.Run) and run.cmd == ("echo hi",)
    with pytest.raises(InvalidArgument, match="^unknown instruction: FOOBAR$"):
        parse_trigger("FOOBAR x")
    with pytest.raises(InvalidArgument, match="^onbuild trigger should be a single expression$"):
        parse_trigger("RUN a\nRUN b")
    with pytest.raises(InvalidArgument, match="^FROM isn't allowed as an ONBUILD trigger$"):
        parse_trigger("FROM x")


def test_healthcheck() -> None:
    health = one("HEALTHCHECK --interval=5s --timeout=3s --retries=3 \\\n  CMD /app/check.sh --quiet")
    assert isinstance(health, ins.Healthcheck)
    assert health.test == ("CMD-SHELL", "/app/check.sh --quiet")
    assert (health.interval, health.timeout, health.retries) == (5 * 10**9, 3 * 10**9, 3)
    health = one('HEALTHCHECK --start-period=1m30s --start-interval=1.5s CMD ["foo", "bar"]')
    assert isinstance(health, ins.Healthcheck) and health.test == ("CMD", "foo", "bar")
    assert (health.start_period, health.start_interval, health.interval) == (90 * 10**9, 1_500_000_000, 0)
    health = one("HEALTHCHECK   cmd   a b")
    assert isinstance(health, ins.Healthcheck) and health.test == ("CMD-SHELL", "a b")
    health = one("HEALTHCHECK --interval=0s --retries=0 CMD true")
    assert isinstance(health, ins.Healthcheck) and (health.interval, health.retries) == (0, 0)
    health = one("HEALTHCHECK none")
    assert isinstance(health, ins.Healthcheck) and health.test == ("NONE",)


@pytest.mark.parametrize(
    "line, message",
    [
        ("HEALTHCHECK CONNECT TCP 7000", 'Unknown type "CONNECT" in HEALTHCHECK (try CMD)'),
        ("HEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD"),
        ("HEALTHCHECK CMD []", "Missing command after HEALTHCHECK CMD"),
        ("HEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
        ("HEALTHCHECK --interval=5s NONE", "HEALTHCHECK NONE takes no arguments"),
        ("HEALTHCHECK --interval=50ns CMD true", 'Interval "interval" cannot be less than 1ms'),
        ("HEALTHCHECK --timeout=-1s CMD true", 'Interval "timeout" cannot be less than 1ms'),
        ("HEALTHCHECK --interval=5 CMD true", 'time: missing unit in duration "5"'),
        ("HEALTHCHECK --interval=5x CMD true", 'time: unknown unit "x" in duration "5x"'),
        ("HEALTHCHECK --interval=x CMD true", 'time: invalid duration "x"'),
        ("HEALTHCHECK --retries=-1 CMD true", "--retries cannot be negative (-1)"),
        ("HEALTHCHECK --retries=x CMD true", 'strconv.ParseInt: parsing "x": invalid syntax'),
        ("HEALTHCHECK --retries=9999999999 CMD true", 'strconv.ParseInt: parsing "9999999999": value out of range'),
        ("HEALTHCHECK --intervall=5s CMD true", "unknown flag: --intervall (did you mean interval?)"),
    ],
)
def test_healthcheck_errors(line: str, message: str) -> None:
    assert error(f"FROM x\n{line}\n") == f"dockerfile parse error line 2: {message}"


def test_label_option_for_the_last_stage() -> None:
    label = ins.label_option("com.example", "v 1")
    assert (label.text, label.pairs, label.expand) == ("LABEL com.example=v 1", (("com.example", "v 1"),), False)


def test_result_is_frozen() -> None:
    dockerfile = parse_dockerfile("FROM x\nRUN true\n")
    assert isinstance(dockerfile, Dockerfile)
    with pytest.raises(AttributeError):
        dockerfile.stages[0].commands[0].line = 3  # type: ignore[misc]


def test_needed_stages_for_a_target() -> None:
    dockerfile = parse_dockerfile(
        "ARG BASE=deps\n"
        "FROM busybox AS deps\n"  # 0
        "FROM busybox AS unused\n"  # 1
        "FROM alpine AS tools\n"  # 2
        "FROM ${BASE} AS build\n"  # 3: FROM an earlier stage through a meta arg
        "COPY --from=2 /t /t\n"  # by index
        "COPY --from=TOOLS /u /u\n"  # by name, any case
        "COPY --from=nginx:latest /etc/nginx /n\n"  # an image
        "FROM scratch AS final\n"  # 4
        "COPY --from=build /out /\n"
    )
    assert needed_stages(dockerfile.stages, {"BASE": "deps"}) == (0, 2, 3, 4)
    assert needed_stages(dockerfile.up_to("tools"), {}) == (2,)
    assert needed_stages((), {}) == ()


def test_needed_stages_ignores_later_and_unknown_stages() -> None:
    dockerfile = parse_dockerfile("FROM a AS one\nCOPY --from=two /x /x\nCOPY --from=5 /y /y\nFROM b AS two\n")
    assert needed_stages(dockerfile.up_to("one"), {}) == (0,)
    assert needed_stages(parse_dockerfile("FROM ${X:?unset}\n").stages, {}) == (0,)
