"""Docker-style random container names: adjective_surname."""

from __future__ import annotations

import random

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
