"""Variable substitution and word splitting of the Dockerfile builder (servin.build.expand), with the
results buildkit's shell lexer gives (its envVarTest and wordsTest tables), and the build-arg rules."""

from __future__ import annotations

import pytest

from servin.build import instructions as ins
from servin.build.buildargs import PROXY_ARGS, BuildArgs, declare_meta_args
from servin.build.dockerfile import parse_dockerfile
from servin.build.expand import env_from_list, expand_word, expand_words, go_quote
from servin.errors import InvalidArgument

pytestmark = pytest.mark.unit

ENV = {"PWD": "/home", "SHELL": "bash", "KOREAN": "한국어", "NULL": ""}


@pytest.mark.parametrize(
    "word, expected",
    [
        ("hello", "hello"),
        ("he'll'o", "hello"),
        ("he\\'llo", "he'llo"),
        ("abc\\tdef", "abctdef"),
        ('"abc\\tdef"', "abc\\tdef"),
        ('"abc\\\\tdef"', "abc\\tdef"),
        ("'abc\\tdef'", "abc\\tdef"),
        ("hello\\", "hello"),
        ("hello\\\\", "hello\\"),
        ('"hel\'lo"', "hel'lo"),
        ("'hello\\'", "hello\\"),
        ("'hello\\\\there'", "hello\\\\there"),
        ('"\'\'"', "''"),
        ("$.", "$."),
        ("he$1x", "hex"),
        ("he$.x", "he$.x"),
        ("he$pwd.", "he."),
        ("he$PWD", "he/home"),
        ("he\\$PWD", "he$PWD"),
        ("he\\\\$PWD", "he\\/home"),
        ('"he\\$PWD"', "he$PWD"),
        ('"he\\\\$PWD"', "he\\/home"),
        ("\\${}", "${}"),
        ("he\\${}xx", "he${}xx"),
        ("he${hi}xx", "hexx"),
        ("he${PWD}", "he/home"),
        ("he${XXX:-000}xx", "he000xx"),
        ("he${PWD:-000}xx", "he/homexx"),
        ("he${XXX:-$PWD}xx", "he/homexx"),
        ("he${XXX:-${PWD:-yyy}}xx", "he/homexx"),
        ("he${XXX:-${YYY:-yyy}}xx", "heyyyxx"),
        ("he${PWD?}", "he/home"),
        ("he${NULL?}", "he"),
        ("he${XXX:+${PWD}}xx", "hexx"),
        ("he${PWD:+${XXX}}xx", "hexx"),
        ("he${PWD:+${SHELL}}xx", "hebashxx"),
        ("he${XXX:+000}xx", "hexx"),
        ("he${PWD:+000}xx", "he000xx"),
        ("'he${XX}'", "he${XX}"),
        ('"he${PWD}"', "he/home"),
        ('"he\'$PWD\'"', "he'/home'"),
        ("'$PWD'", "$PWD"),
        ("'\\$PWD'", "\\$PWD"),
        ("he${PWD:+${PWD}:}xx", "he/home:xx"),
        ("he${XXX:-\\$PWD:}xx", "he$PWD:xx"),
        ("he${XXX:-\\${PWD}z}xx", "he${PWDz}xx"),
        ("안'녕'하세요", "안녕하세요"),
        ("안녕$KOREAN", "안녕한국어"),
        ("${aaa}}", "}"),
        ("${aaa:-bbb}}", "bbb}"),
        ("${aaa:-bbb {foo}", "bbb {foo"),
        ("$1", ""),
        ("${999:-bbb}aaa", "bbbaaa"),
        ("$001aaa", "aaa"),
        ("$@@@", "@@"),
        ("${@:-bbb}", "bbb"),
        ("$$", ""),
        ("${0:+bbb}", ""),
        # ${NULL-x} keeps a set-but-empty value, ${NULL:-x} does not
        ("${NULL-x}", ""),
        ("${NULL:-x}", "x"),
        ("${NULL+x}", "x"),
        ("${NULL:+x}", ""),
    ],
)
def test_expand_word_like_the_builder(word: str, expected: str) -> None:
    assert expand_word(word, ENV) == expected


@pytest.mark.parametrize(
    "word, reason",
    [
        ("he'llo", "unexpected end of statement while looking for matching single-quote"),
        ("he\\\\'llo", "unexpected end of statement while looking for matching single-quote"),
        ('"hello', "unexpected end of statement while looking for matching double-quote"),
        ('"hello\\"', "unexpected end of statement while looking for matching double-quote"),
        ("${}", "syntax error: bad substitution"),
        ("he${}xx", "syntax error: bad substitution"),
        ("${:-bbb}", "syntax error: bad substitution"),
        ("${{aaa}", "syntax error: bad substitution"),
        ("he${.}", "unsupported modifier (.) in substitution"),
        ("he${XXX:YYY}", "unsupported modifier (:Y) in substitution"),
        ("he${PWD:=000}xx", "unsupported modifier (:=) in substitution"),
        ("he${XXX?}", "XXX: is not allowed to be unset"),
        ("he${XXX:?}", "XXX: is not allowed to be unset"),
        ("he${NULL:?}", "NULL: is not allowed to be empty"),
        ("${XXX?custom message}", "XXX: custom message"),
        ("he${PWD", "syntax error: missing '}'"),
        ("${aaa:-bbb", "syntax error: missing '}'"),
        ("${aaa:-bbb ${foo}", "syntax error: missing '}'"),
        ("${PWD:#x}", "unsupported modifier (:#) in substitution"),
    ],
)
def test_expand_word_errors_read_as_dockerd(word: str, reason: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        expand_word(word, ENV)
    assert err.value.message == f"failed to process {go_quote(word)}: {reason}"


@pytest.mark.parametrize(
    "word, expected",
    [
        ("${PWD#/}", "home"),
        ("${PWD#*o}", "me"),
        ("${PWD##*o}", "me"),
        ("${SHELL%h}", "bas"),
        ("${SHELL%%a*}", "b"),
        ("${SHELL%a*}", "b"),
        ("${SHELL/a/A}", "bAsh"),
        ("${KOREAN/국/X}", "한X어"),
        ("${SHELL//[ab]/_}", "bash"),  # no bracket expressions: [ab] is literal
        ("${XXX/a/b}", ""),
    ],
)
def test_trim_and_replace_modifiers(word: str, expected: str) -> None:
    env = {**ENV, "PATHS": "a/b/a/b"}
    assert expand_word(word, env) == expected


def test_replace_all_and_longest_suffix() -> None:
    env = {"V": "a.b.c"}
    assert expand_word("${V//./-}", env) == "a-b-c"
    assert expand_word("${V%.*}", env) == "a.b"
    assert expand_word("${V%%.*}", env) == "a"
    assert expand_word("${V#*.}", env) == "b.c"
    assert expand_word("${V##*.}", env) == "c"


WORDS_ENV = {"hi": "hi", "space": "abc  def", "leading": "  ab c", "trailing": "ab c   "}


@pytest.mark.parametrize(
    "word, expected",
    [
        ("hello", ["hello"]),
        ("hello${hi}bye", ["hellohibye"]),
        ("hello${space}bye", ["helloabc", "defbye"]),
        ('hello"${space}"bye', ["helloabc  defbye"]),
        ('hello "${space}"bye', ["hello", "abc  defbye"]),
        ("hello${leading}def", ["hello", "ab", "cdef"]),
        ('hello"${leading}" def', ["hello  ab c", "def"]),
        ('hello"${leading}"', ["hello  ab c"]),
        ("hello${leading}", ["hello", "ab", "c"]),
        ("hello${trailing}", ["helloab", "c"]),
        ("hello${trailing}d", ["helloab", "c", "d"]),
        ('hello"${trailing}"d', ["helloab c   d"]),
        ('hel"lo${trailing}"', ["helloab c   "]),
        ('hello" there  "', ["hello there  "]),
        ("hello there     ", ["hello", "there"]),
        ("hello\\ there", ["hello there"]),
        ('hello\\" there', ['hello"', "there"]),
        ('hello"\\\\there"', ["hello\\there"]),
        ('hello"\\there"', ["hello\\there"]),
        ("hello'\\\\there'", ["hello\\\\there"]),
        ("hello'$there'", ["hello$there"]),
        ('""', []),  # an empty quoted word is no word
        ('a "" b', ["a", "b"]),
        ('a""b', ["ab"]),
    ],
)
def test_expand_words_splits_after_substitution(word: str, expected: list[str]) -> None:
    assert expand_words(word, WORDS_ENV) == expected


def test_expand_words_reports_an_open_quote() -> None:
    with pytest.raises(InvalidArgument, match="matching double-quote"):
        expand_words('hello" there', WORDS_ENV)


def test_backtick_escape_leaves_backslashes_alone() -> None:
    assert expand_word("c:\\foo\\$PWD", ENV, escape="`") == "c:\\foo\\/home"
    assert expand_word("a`$PWD", ENV, escape="`") == "a$PWD"
    assert expand_word('"a`"b"', ENV, escape="`") == 'a"b'


def test_env_from_list_later_key_wins() -> None:
    assert env_from_list(["A=1", "B=x=y", "A=2", "C"]) == {"A": "2", "B": "x=y", "C": ""}


def test_go_quote() -> None:
    assert go_quote('a"b\\c\n\t\x00é') == '"a\\"b\\\\c\\n\\t\\x00é"'


# -- which instructions expand, at dispatch


def _stage_commands(text: str) -> tuple[ins.Instruction, ...]:
    return parse_dockerfile(text).stages[0].commands


def test_expand_applies_to_the_instructions_dockerd_expands() -> None:
    cmds = _stage_commands(
        "FROM x\n"
        'ENV A="$B c" D=${B:-z}\n'
        "LABEL ${B}=$B\n"
        "COPY --chown=$U:$U $B /dst/$B\n"
        "ADD --chown=$U $B /dst/\n"
        "WORKDIR /w/$B\n"
        "USER $U\n"
        "VOLUME $B /v\n"
        "STOPSIGNAL SIG$S\n"
        "ARG N=$B\n"
        "EXPOSE $PORTS 22\n"
        "RUN echo $B\n"
        "CMD echo $B\n"
        "ENTRYPOINT echo $B\n"
        "ONBUILD RUN echo $B\n"
        "MAINTAINER $B\n"
        "HEALTHCHECK CMD echo $B\n"
        'SHELL ["/bin/$B"]\n'
        "COPY --from=$B a /b\n"
    )
    env = {"B": "bee", "U": "1000", "S": "TERM", "PORTS": "80 443/udp"}
    out = [ins.expand(c, env) for c in cmds]
    assert isinstance(out[0], ins.Env) and out[0].pairs == (("A", "bee c"), ("D", "bee"))
    assert isinstance(out[1], ins.Label) and out[1].pairs == (("bee", "bee"),)
    assert isinstance(out[2], ins.Copy) and (out[2].chown, out[2].sources, out[2].dest) == (
        "1000:1000",
        ("bee",),
        "/dst/bee",
    )
    assert isinstance(out[3], ins.Add) and (out[3].chown, out[3].sources) == ("1000", ("bee",))
    assert isinstance(out[4], ins.Workdir) and out[4].path == "/w/bee"
    assert isinstance(out[5], ins.User) and out[5].user == "1000"
    assert isinstance(out[6], ins.Volume) and out[6].paths == ("bee", "/v")
    assert isinstance(out[7], ins.Stopsignal) and out[7].signal == "SIGTERM"
    assert isinstance(out[8], ins.Arg) and out[8].pairs == (("N", "bee"),)
    # EXPOSE splits the expanded words; the ports were sorted as written ("$PORTS" < "22")
    assert isinstance(out[9], ins.Expose) and out[9].ports == ("80", "443/udp", "22")
    # not expanded by the builder: RUN, CMD, ENTRYPOINT (the shell does it), ONBUILD, MAINTAINER,
    # HEALTHCHECK, SHELL, COPY --from
    for original, expanded in zip(cmds[10:], out[10:], strict=True):
        assert original == expanded
    assert "$B" in str(out[10]) and out[-1].text == "COPY --from=$B a /b"


def test_expand_keeps_option_labels_literal() -> None:
    label = ins.label_option("a", "$HOME")
    assert ins.expand(label, {"HOME": "/root"}) == label
    assert label.text == "LABEL a=$HOME"


def test_expand_error_is_dockerds() -> None:
    (env,) = _stage_commands('FROM x\nENV A="open\n')
    with pytest.raises(InvalidArgument, match=r'^failed to process "\\"open": unexpected end of statement'):
        ins.expand(env, {})


# -- build args


def test_proxy_args_are_predefined() -> None:
    assert PROXY_ARGS == {
        "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
        "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy",
    }  # fmt: skip
    args = BuildArgs({"HTTP_PROXY": "http://p:3128", "FOO": "1"}).for_stage()
    # a proxy arg reaches RUN without an ARG; FOO does not
    assert args.allowed() == {"HTTP_PROXY": "http://p:3128"}
    assert args.run_env(["PATH=/bin"]) == ["HTTP_PROXY=http://p:3128"]
    # and stays out of the history unless declared
    assert args.history_cmd(["HTTP_PROXY=http://p:3128"], ["/bin/sh", "-c", "x"]) == ["|0", "/bin/sh", "-c", "x"]
    args.declare("HTTP_PROXY", None)
    assert args.history_cmd(["HTTP_PROXY=http://p:3128"], ["sh"]) == ["|1", "HTTP_PROXY=http://p:3128", "sh"]


def test_build_arg_overrides_default_only_when_declared() -> None:
    top = BuildArgs({"A": "from-cli", "B": None})
    stage = top.for_stage()
    assert stage.allowed() == {}
    stage.declare("A", "default")
    stage.declare("B", "bdefault")
    stage.declare("C", None)
    # B given without a value keeps the default; C has no value at all
    assert stage.allowed() == {"A": "from-cli", "B": "bdefault"}
    assert stage.run_env(["A=set-by-env"]) == ["B=bdefault"]
    assert stage.history_cmd(["B=bdefault", "A=from-cli"], ["sh"]) == ["|2", "A=from-cli", "B=bdefault", "sh"]


def test_meta_args_usable_in_from_and_redeclared_in_stage() -> None:
    top = BuildArgs({"VERSION": "1.36"})
    declare_meta_args(top, (("VERSION", "latest"), ("BASE", "busybox"), ("TAG", "${BASE}:x")))
    # values are expanded with the args declared by earlier ARG lines, not the same line
    assert top.meta() == {"VERSION": "1.36", "BASE": "busybox", "TAG": ":x"}
    stage = top.for_stage()
    assert stage.allowed() == {}  # not visible without re-declaring
    stage.declare("BASE", None)  # `ARG BASE` takes the meta value
    assert stage.allowed() == {"BASE": "busybox"}


def test_unused_build_args_warning() -> None:
    top = BuildArgs({"foo": "1", "bar": "2", "used": "3", "HTTPS_PROXY": "x"})
    stage = top.for_stage()
    stage.declare("used", None)
    assert top.unused() == ["bar", "foo", "used"]
    top.merge_referenced(stage)
    assert top.unused() == ["bar", "foo"]
    assert top.unused_warning() == "[Warning] One or more build-args [bar foo] were not consumed\n"
    assert BuildArgs({}).unused_warning() is None


def test_meta_declared_arg_counts_as_consumed() -> None:
    top = BuildArgs({"V": "2"})
    declare_meta_args(top, (("V", None),))
    assert top.unused() == []
