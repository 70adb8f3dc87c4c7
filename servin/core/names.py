"""Names: which names of containers, volumes and networks dockerd accepts (with its wording), and
Docker-style random container names (adjective_surname)."""

from __future__ import annotations

import random
import re

from servin import errors
from servin.network.names import check_network_name  # noqa: F401 - the API checks it early too

# moby daemon/names/names.go (the same in v20.10.24 and v28.2.2):
#   RestrictedNameChars   = `[a-zA-Z0-9][a-zA-Z0-9_.-]`
#   RestrictedNamePattern = regexp.MustCompile(`^` + RestrictedNameChars + `+$`)
# Go's `$` (no m flag) matches at the end of the text only; Python's also matches before a final
# "\n", so the pattern is applied with fullmatch: "abc\n" is not a name.
RESTRICTED_NAME_CHARS = "[a-zA-Z0-9][a-zA-Z0-9_.-]"
_RESTRICTED_NAME = re.compile(RESTRICTED_NAME_CHARS + "+")


def is_restricted_name(name: str) -> bool:
    return _RESTRICTED_NAME.fullmatch(name) is not None


def check_container_name(name: str) -> str:
    """A container name as `docker create --name`/`rename` give it, without its one optional
    leading "/"; dockerd's reserveName (daemon/names.go) refuses the rest, naming it as given."""
    bare = name[1:] if name.startswith("/") else name
    if not is_restricted_name(bare):
        raise errors.InvalidArgument(
            f"Invalid container name ({name}), only {RESTRICTED_NAME_CHARS} are allowed")
    return bare


def check_volume_name(name: str, *, op: str = "create") -> None:
    """moby volume/local/local.go (Root.validateName), after the volume service's "<op> <name>: "
    (volume/service/errors.go OpErr); the length is Go's, in bytes."""
    if len(name.encode(errors="surrogateescape")) == 1:
        problem = "volume name is too short, names should be at least two alphanumeric characters"
    elif not is_restricted_name(name):
        problem = (f"{go_quote(name)} includes invalid characters for a local volume name, only "
                   f"{go_quote(RESTRICTED_NAME_CHARS)} are allowed. If you intended to pass a host directory, "
                   "use absolute path")
    else:
        return
    raise errors.InvalidArgument(f"{op} {name}: {problem}")


def go_quote(s: str) -> str:
    """Go's strconv.Quote (what `%q` prints): printable runes as they are, the rest escaped."""
    out = ['"']
    for ch in s:
        c = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch.isprintable():  # Go's unicode.IsPrint: letters, marks, numbers, punctuation, symbols, " "
            out.append(ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif 0xDC80 <= c <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
            out.append(f"\\x{c - 0xDC00:02x}")
        elif c < 0x20 or c == 0x7F:
            out.append(f"\\x{c:02x}")
        elif c < 0x10000:
            out.append(f"\\u{c:04x}")
        else:
            out.append(f"\\U{c:08x}")
    out.append('"')
    return "".join(out)


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}

ADJECTIVES = (
    "admiring", "affectionate", "agitated", "amazing", "angry", "awesome", "blissful", "bold",
    "brave", "charming", "clever", "cool", "compassionate", "competent", "confident", "crazy",
    "dazzling", "determined", "eager", "ecstatic", "elastic", "elated", "elegant", "epic",
    "festive", "focused", "friendly", "funny", "gallant", "gifted", "goofy", "gracious", "happy",
    "hardcore", "heuristic", "hopeful", "hungry", "infallible", "inspiring", "jolly", "jovial",
    "keen", "kind", "laughing", "loving", "lucid", "magical", "modest", "musing", "naughty",
    "nervous", "nice", "nifty", "nostalgic", "objective", "optimistic", "peaceful", "pedantic",
    "pensive", "practical", "priceless", "quirky", "quizzical", "relaxed", "reverent", "romantic",
    "sad", "serene", "sharp", "silly", "sleepy", "stoic", "strange", "stupefied", "suspicious",
    "sweet", "tender", "thirsty", "trusting", "upbeat", "vibrant", "vigilant", "vigorous",
    "wizardly", "wonderful", "xenodochial", "youthful", "zealous", "zen",
)

SURNAMES = (
    "albattani", "allen", "almeida", "archimedes", "ardinghelli", "aryabhata", "austin", "babbage",
    "banach", "bardeen", "bartik", "bassi", "bell", "bhabha", "blackburn", "blackwell", "bohr",
    "booth", "borg", "bose", "boyd", "brahmagupta", "brattain", "brown", "carson", "cerf",
    "chandrasekhar", "clarke", "colden", "cori", "cray", "curie", "darwin", "davinci", "dijkstra",
    "dubinsky", "easley", "edison", "einstein", "elion", "engelbart", "euclid", "euler", "fermat",
    "fermi", "feynman", "franklin", "galileo", "gates", "goldberg", "goldstine", "goldwasser",
    "golick", "goodall", "hamilton", "hawking", "heisenberg", "hermann", "hodgkin", "hoover",
    "hopper", "hugle", "hypatia", "jang", "jennings", "jepsen", "joliot", "jones", "kalam",
    "kapitsa", "keller", "kepler", "khorana", "kilby", "kirch", "knuth", "kowalevski", "lalande",
    "lamarr", "lamport", "leakey", "leavitt", "lewin", "lichterman", "liskov", "lovelace",
    "lumiere", "mahavira", "mayer", "mccarthy", "mcclintock", "mclean", "mcnulty", "meitner",
    "meninsky", "mestorf", "minsky", "mirzakhani", "morse", "murdock", "napier", "nash",
    "neumann", "newton", "nightingale", "nobel", "noether", "northcutt", "noyce", "panini", "pare",
    "pasteur", "payne", "perlman", "pike", "poincare", "poitras", "ptolemy", "raman", "ramanujan",
    "ride", "ritchie", "roentgen", "rosalind", "saha", "sammet", "shaw", "shirley", "shockley",
    "sinoussi", "snyder", "spence", "stallman", "stonebraker", "swanson", "swartz", "swirles",
    "tesla", "thompson", "torvalds", "turing", "varahamihira", "visvesvaraya", "volhard",
    "wescoff", "williams", "wilson", "wing", "wozniak", "wright", "yalow", "yonath",
)


def generate(taken: set[str]) -> str:
    for attempt in range(100):
        name = f"{random.choice(ADJECTIVES)}_{random.choice(SURNAMES)}"
        if attempt > 10:
            name += str(random.randint(0, 9))
        if name not in taken and name != "boring_wozniak":
            return name
    raise RuntimeError("could not generate a unique name")


GO_INT = re.compile(r"[+-]?[0-9]+")  # what strconv.Atoi parses
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


def go_atoi(s: str) -> int | None:
    """Go's strconv.Atoi on a 64-bit host: an optional sign and ASCII digits within int64, else None."""
    if not GO_INT.fullmatch(s):
        return None
    v = int(s)
    return v if INT64_MIN <= v <= INT64_MAX else None
