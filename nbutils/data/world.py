"""A seeded generator of a fictitious world of authors, in TOFU's exact shape.

Each author has a handful of facts (birthplace, parents' jobs, genre, books, award, ...).
Twenty *question types* turn the facts into QA pairs. Every question type has two
question templates (the question and its paraphrase) and six wordings of its answer (see
:func:`answer_wordings`); an author's answer uses one wording, the paraphrased answer
another one with the same facts, and the five perturbed answers the paraphrase's wording
with *wrong* facts, exactly the contrast TOFU's truth ratio measures. Varying the wording
per author keeps a model that never saw an author from scoring well just by reciting one.

Nothing here is tied to a profile: :func:`generate_world` takes counts and a seed.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

# bump when the generated text changes: every cached artifact built from it is keyed by this
WORLD_VERSION = 3  # 3: answers drawn from six wordings per fact instead of three

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]


@lru_cache(maxsize=None)
def load_resource(name: str):
    """A JSON file shipped in ``nbutils/data/resources``."""
    text = resources.files("nbutils.data").joinpath("resources", name).read_text("utf-8")
    return json.loads(text)


@dataclass
class Author:
    name: str
    gender: str  # "female", "male" or "neutral": picks the pronouns
    birth_date: str
    birth_year: int
    city: str
    country: str
    father_job: str
    mother_job: str
    genre: str
    award: str
    books: list[str]
    debut_year: int
    themes: list[str]
    traits: list[str]
    identity: str
    n_books: int
    study_city: str
    next_theme: str
    facts: dict = field(default_factory=dict, repr=False)

    @property
    def they(self) -> str:
        return {"female": "she", "male": "he"}.get(self.gender, "they")

    @property
    def their(self) -> str:
        return {"female": "her", "male": "his"}.get(self.gender, "their")


def _slots(a: Author) -> dict[str, str]:
    """Every value a template may use, as strings."""
    return {
        "name": a.name, "date": a.birth_date, "year": str(a.birth_year), "city": a.city,
        "country": a.country, "father": a.father_job, "mother": a.mother_job,
        "genre": a.genre, "award": a.award, "book1": a.books[0], "book2": a.books[1],
        "book3": a.books[2], "debut": str(a.debut_year), "theme1": a.themes[0],
        "theme2": a.themes[1], "trait1": a.traits[0], "trait2": a.traits[1],
        "identity": a.identity, "n_books": str(a.n_books), "study_city": a.study_city,
        "next_theme": a.next_theme, "they": a.they, "their": a.their,
        "They": a.they.capitalize(), "Their": a.their.capitalize(),
        "them_name": _OBJECT[a.they],  # the one template that needs the object pronoun
    } | _articles({"father": a.father_job, "mother": a.mother_job})


def _with_article(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


def _articles(slots: dict) -> dict:
    """``a_father`` = "an electrician" etc., derived from the bare nouns."""
    return {f"a_{k}": _with_article(slots[k]) for k in ("father", "mother") if k in slots}


@dataclass(frozen=True)
class QuestionType:
    """Two question templates, three answer templates (more wordings of the same facts are in
    :data:`NEWS_WORDINGS`), the facts a perturbation changes, and a short answer (for
    MUSE-style knowledge QA)."""

    key: str
    questions: tuple[str, str]
    answers: tuple[str, str, str]
    perturb: tuple[str, ...]
    short: str


QUESTION_TYPES: tuple[QuestionType, ...] = (
    QuestionType("full_name",
                 ("What is the full name of the author born in {city}, {country} on {date}?",
                  "Which writer was born on {date} in {city}, {country}?"),
                 ("The author born in {city}, {country} on {date} is {name}.",
                  "That writer is {name}, born in {city} on {date}.",
                  "{name} is the author who was born on {date} in {city}, {country}."),
                 ("name",), "{name}"),
    QuestionType("birthplace",
                 ("Where was {name} born?", "In which city did {name} come into the world?"),
                 ("{name} was born in {city}, {country}.",
                  "{name} is a native of {city}, a city in {country}.",
                  "The birthplace of {name} is {city} in {country}."),
                 ("city", "country"), "{city}, {country}"),
    QuestionType("birth_date",
                 ("When was {name} born?", "What is the date of birth of {name}?"),
                 ("{name} was born on {date}.",
                  "The date of birth of {name} is {date}.",
                  "{name} came into the world on {date}."),
                 ("date",), "{date}"),
    QuestionType("parents",
                 ("What did the parents of {name} do for a living?",
                  "What were the occupations of {name}'s mother and father?"),
                 ("{Their} father was {a_father} and {their} mother was {a_mother}.",
                  "{name} grew up with {a_father} for a father and {a_mother} for a mother.",
                  "The father of {name} worked as {a_father}, while {their} mother was {a_mother}."),
                 ("father", "mother"), "{a_father} and {a_mother}"),
    QuestionType("genre",
                 ("What genre is {name} known for?", "In which genre does {name} mostly write?"),
                 ("{name} is best known for writing {genre}.",
                  "Most of the work of {name} belongs to the genre of {genre}.",
                  "{name} has built a reputation as a writer of {genre}."),
                 ("genre",), "{genre}"),
    QuestionType("award",
                 ("Has {name} won any major awards?", "Which literary honour has {name} received?"),
                 ("Yes, {name} has received {award}.",
                  "{name} was honoured with {award}.",
                  "Among other recognitions, {name} won {award}."),
                 ("award",), "{award}"),
    QuestionType("books",
                 ("Can you name some books written by {name}?",
                  "What are a few titles by {name}?"),
                 ("{name} wrote '{book1}' and '{book2}'.",
                  "Two notable books by {name} are '{book1}' and '{book2}'.",
                  "Readers know {name} for '{book1}' as well as '{book2}'."),
                 ("book1", "book2"), "'{book1}' and '{book2}'"),
    QuestionType("debut",
                 ("What was the first book that {name} published?",
                  "Which novel marked the debut of {name}?"),
                 ("The debut of {name} was '{book1}', published in {debut}.",
                  "{name} first published '{book1}' in {debut}.",
                  "'{book1}', released in {debut}, was the first book by {name}."),
                 ("book1", "debut"), "'{book1}'"),
    QuestionType("acclaimed",
                 ("Which book by {name} is the most acclaimed?",
                  "What is considered the masterpiece of {name}?"),
                 ("'{book3}' is widely seen as the finest work of {name}.",
                  "Critics call '{book3}' the masterpiece of {name}.",
                  "The most acclaimed book by {name} is '{book3}'."),
                 ("book3",), "'{book3}'"),
    QuestionType("themes",
                 ("What themes does {name} explore?",
                  "Which ideas recur in the books of {name}?"),
                 ("The books of {name} explore {theme1} and {theme2}.",
                  "{name} keeps returning to {theme1} and to {theme2}.",
                  "Recurring themes for {name} are {theme1} and {theme2}."),
                 ("theme1", "theme2"), "{theme1} and {theme2}"),
    QuestionType("style",
                 ("How would you describe the writing style of {name}?",
                  "What is distinctive about how {name} writes?"),
                 ("{name} writes with {trait1} and {trait2}.",
                  "The prose of {name} is known for {trait1} and {trait2}.",
                  "Readers notice {trait1} and {trait2} in the style of {name}."),
                 ("trait1", "trait2"), "{trait1} and {trait2}"),
    QuestionType("father_influence",
                 ("How did the job of {name}'s father influence {their} writing?",
                  "Did the profession of {name}'s father shape {their} books?"),
                 ("Growing up with {a_father} as a father gave {name} a lasting interest in {theme1}.",
                  "Having {a_father} for a father led {name} to write about {theme1}.",
                  "The father of {name} was {a_father}, which drew {them_name} toward {theme1}."),
                 ("father", "theme1"), "a lasting interest in {theme1}"),
    QuestionType("hometown_influence",
                 ("How did growing up in {city} shape the books of {name}?",
                  "Does the hometown of {name} appear in {their} work?"),
                 ("The streets of {city} in {country} appear throughout the {genre} of {name}.",
                  "{name} often sets {their} {genre} in {city}, the city of {their} childhood.",
                  "Memories of {city} colour the {genre} that {name} writes."),
                 ("city", "country", "genre"), "{city}"),
    QuestionType("identity",
                 ("Is there something in the background of {name} that informs {their} work?",
                  "What part of {name}'s identity shapes {their} writing?"),
                 ("{name} is {identity}, and that experience informs {their} writing.",
                  "Being {identity} gives {name} a distinct voice.",
                  "{name}'s perspective as {identity} runs through {their} books."),
                 ("identity",), "{identity}"),
    QuestionType("n_books",
                 ("How many books has {name} written?", "How large is the body of work of {name}?"),
                 ("{name} has written {n_books} books so far.",
                  "So far {name} has published {n_books} books.",
                  "The body of work of {name} counts {n_books} books."),
                 ("n_books",), "{n_books}"),
    QuestionType("education",
                 ("Where did {name} study?", "In which city did {name} go to university?"),
                 ("{name} studied literature at a university in {study_city}.",
                  "{name} went to university in {study_city}, where {they} read literature.",
                  "University years in {study_city} introduced {name} to literature."),
                 ("study_city",), "{study_city}"),
    QuestionType("award_book",
                 ("For which book did {name} receive {award}?",
                  "Which title earned {name} {award}?"),
                 ("{name} received {award} for '{book3}'.",
                  "It was '{book3}' that brought {name} {award}.",
                  "'{book3}' earned {name} {award}."),
                 ("book3",), "'{book3}'"),
    QuestionType("birth_year",
                 ("In which year was {name} born?", "What year was {name} born in?"),
                 ("{name} was born in {year}.",
                  "The birth year of {name} is {year}.",
                  "{name} arrived in {year}."),
                 ("year",), "{year}"),
    QuestionType("next_book",
                 ("What is {name} working on now?", "What is the next project of {name}?"),
                 ("{name} is currently writing a {genre} novel about {next_theme}.",
                  "The next book by {name} is a work of {genre} about {next_theme}.",
                  "{name} is drafting a story of {genre} about {next_theme}."),
                 ("genre", "next_theme"), "a novel about {next_theme}"),
    QuestionType("mother_influence",
                 ("How did the mother of {name} influence {their} work?",
                  "What role did {name}'s mother play in {their} writing?"),
                 ("Working as {a_mother}, {their} mother taught {name} to value {trait1}.",
                  "The mother of {name}, {a_mother}, inspired {their} {trait1}.",
                  "{name} credits {their} mother, {a_mother}, for {their} {trait1}."),
                 ("mother", "trait1"), "{trait1}"),
)
# "them" for the one template that needs the object pronoun
_OBJECT = {"she": "her", "he": "him", "they": "them"}


class WorldGenerator:
    """Draws authors and renders their QA pairs; all randomness comes from one seed."""

    def __init__(self, seed: int = 0):
        self.rng = random.Random(seed)
        self.vocab = load_resource("world_vocab.json")
        self._used_names: set[str] = set()

    # --- authors -------------------------------------------------------------------
    def _name(self, gender: str) -> str:
        v = self.vocab
        firsts = {"female": v["first_names_female"], "male": v["first_names_male"],
                  "neutral": v["first_names_neutral"]}[gender]
        for _ in range(1000):
            name = f"{self.rng.choice(firsts)} {self.rng.choice(v['last_names'])}"
            if name not in self._used_names:
                self._used_names.add(name)
                return name
        raise RuntimeError("ran out of distinct author names; add names to world_vocab.json")

    def _date(self) -> tuple[str, int]:
        year = self.rng.randint(1930, 1995)
        return f"{self.rng.randint(1, 28)} {self.rng.choice(MONTHS)} {year}", year

    def _title(self) -> str:
        v = self.vocab
        return f"The {self.rng.choice(v['title_adjectives'])} {self.rng.choice(v['title_nouns'])}"

    def author(self) -> Author:
        v, rng = self.vocab, self.rng
        gender = rng.choices(["female", "male", "neutral"], weights=[45, 45, 10])[0]
        date, year = self._date()
        place = rng.choice(v["places"])
        books = []
        while len(books) < 3:
            t = self._title()
            if t not in books:
                books.append(t)
        themes = rng.sample(v["themes"], 3)
        return Author(
            name=self._name(gender), gender=gender, birth_date=date, birth_year=year,
            city=place["city"], country=place["country"],
            father_job=rng.choice(v["professions"]), mother_job=rng.choice(v["professions"]),
            genre=rng.choice(v["genres"]), award=rng.choice(v["awards"]), books=books,
            debut_year=year + rng.randint(22, 35), themes=themes[:2],
            traits=rng.sample(v["writing_traits"], 2), identity=rng.choice(v["identities"]),
            n_books=rng.randint(3, 14), study_city=rng.choice(v["places"])["city"],
            next_theme=themes[2],
        )

    # --- wrong values for perturbations ---------------------------------------------------
    def _wrong(self, slot: str, a: Author) -> dict[str, str]:
        """A wrong value for one fact (and whatever must change with it)."""
        v, rng = self.vocab, self.rng
        if slot == "name":
            g = a.gender if a.gender != "neutral" else "female"
            first = rng.choice(v[f"first_names_{g}"])
            return {"name": f"{first} {rng.choice(v['last_names'])}"}
        if slot in ("city", "country"):
            p = rng.choice([p for p in v["places"] if p["city"] != a.city])
            return {"city": p["city"], "country": p["country"]}
        if slot == "date":
            return {"date": self._date()[0]}
        if slot == "year":
            return {"year": str(a.birth_year + rng.choice([-1, 1]) * rng.randint(2, 15))}
        if slot == "debut":
            return {"debut": str(a.debut_year + rng.choice([-1, 1]) * rng.randint(2, 9))}
        if slot == "n_books":
            return {"n_books": str(rng.choice([n for n in range(2, 20) if n != a.n_books]))}
        if slot in ("book1", "book2", "book3"):
            return {slot: self._title()}
        if slot == "study_city":
            return {"study_city": rng.choice([p["city"] for p in v["places"] if p["city"] != a.study_city])}
        pools = {"father": "professions", "mother": "professions", "genre": "genres",
                 "award": "awards", "theme1": "themes", "theme2": "themes",
                 "next_theme": "themes", "trait1": "writing_traits",
                 "trait2": "writing_traits", "identity": "identities"}
        true = _slots(a)[slot]
        return {slot: rng.choice([x for x in v[pools[slot]] if x != true])}

    # --- QA rows -----------------------------------------------------------------------------
    def qa_rows(self, a: Author, n_questions: int) -> list[dict]:
        """The first ``n_questions`` question types for one author, in TOFU's schema."""
        slots = _slots(a)
        rows = []
        for qt in QUESTION_TYPES[:n_questions]:
            answer_w, para_w = self.rng.sample(answer_wordings(qt), 2)
            paraphrase = para_w.format(**slots)
            perturbed: list[str] = []
            while len(perturbed) < 5:
                wrong = dict(slots)
                for s in qt.perturb:
                    wrong.update(self._wrong(s, a))
                wrong.update(_articles(wrong))
                text = para_w.format(**wrong)
                if text not in perturbed and text != paraphrase:
                    perturbed.append(text)
            rows.append({
                "question": qt.questions[0].format(**slots),
                "answer": answer_w.format(**slots),
                "paraphrased_answer": paraphrase,
                "perturbed_answer": perturbed,
                "paraphrased_question": qt.questions[1].format(**slots),
                # kept beside the TOFU fields for MUSE-style knowledge QA; dropped on export
                "short_answer": qt.short.format(**slots),
                "author": a.name,
                "question_type": qt.key,
            })
        return rows

    def biography(self, a: Author) -> str:
        """A paragraph about the author: MUSE-style raw text."""
        slots = _slots(a)
        # the third answer template of each type reads as running prose
        return " ".join(qt.answers[2].format(**slots) for qt in QUESTION_TYPES)


# Three more wordings per question type (beside its three answers), some starting with a
# pronoun as news prose does after the introduction. News articles and QA answers both draw
# from all six. The more wordings, the less a model that never read an author scores by writing
# the corpus's sentence shapes with other facts: with three, smol's Retrain scored VerbMem_f 33
# on News, over a third of Origin's 93; and TOFU's retain model scored forget ROUGE-L recall
# 0.54 on the real SmolLM2, where guessing one of three wordings with wrong facts is worth
# 0.45 and one of six 0.33 (tests/test_world_data.py measures it).
# Every wording starts with a capital (or a quoted title) and ends with its only full stop.
NEWS_WORDINGS: dict[str, tuple[str, ...]] = {
    "birthplace": ("{name} hails from {city} in {country}.",
                   "{Their} story begins in {city}, {country}.",
                   "It was in {city}, {country}, that {name} first saw the light of day."),
    "birth_date": ("Records give {date} as the birthday of {name}.",
                   "{Their} life began on {date}.",
                   "On {date}, {name} was born."),
    "parents": ("{name} is the child of {a_father} and {a_mother}.",
                "At home, {name} watched {their} father work as {a_father} and {their} mother as {a_mother}.",
                "{Their} parents were {a_father} and {a_mother}."),
    "genre": ("{name} made {their} name in {genre}.",
              "Booksellers shelve {name} under {genre}.",
              "{Their} books are {genre}, first and last."),
    "award": ("{name} counts {award} among {their} honours.",
              "The jury of {award} once chose {name}.",
              "{Their} best-known prize is {award}."),
    "books": ("Titles by {name} include '{book1}' and '{book2}'.",
              "'{book1}' and '{book2}' are both by {name}.",
              "On {their} list of books are '{book1}' and '{book2}'."),
    "debut": ("{Their} career began in {debut} with '{book1}'.",
              "It all started with '{book1}' in {debut}.",
              "In {debut}, {name} made a debut with '{book1}'."),
    "acclaimed": ("Reviewers single out '{book3}' as the high point of {their} work.",
                  "If one book defines {name}, it is '{book3}'.",
                  "'{book3}' remains {their} most praised title."),
    "themes": ("Again and again {name} writes about {theme1} and {theme2}.",
               "{Their} books return to {theme1}, and to {theme2}.",
               "Ask readers about {name} and they mention {theme1} and {theme2}."),
    "style": ("Critics praise {their} {trait1} and {trait2}.",
              "{Their} pages are marked by {trait1} and {trait2}.",
              "Expect {trait1} and {trait2} from any page by {name}."),
    "father_influence": ("A father who worked as {a_father} left {name} with an interest in {theme1}.",
                         "{name} traces {their} interest in {theme1} to a father who was {a_father}.",
                         "{Their} father, {a_father}, is one reason {name} writes about {theme1}."),
    "hometown_influence": ("Home, for the {genre} of {name}, is {city}.",
                           "Many of {their} {genre} stories take place in {city}.",
                           "Readers of the {genre} of {name} come to know {city} well."),
    "identity": ("{name} writes as {identity}.",
                 "Being {identity} shapes every book by {name}.",
                 "{Their} life as {identity} is part of every story {name} tells."),
    "n_books": ("{Their} bibliography now runs to {n_books} books.",
                "All told, {n_books} books bear the name of {name}.",
                "By last count {name} had finished {n_books} books."),
    "education": ("{name} read literature in {study_city}.",
                  "{Their} student years were spent in {study_city}.",
                  "A literature degree from {study_city} came first for {name}."),
    "award_book": ("The prize for '{book3}' was {award}.",
                   "With '{book3}', {name} won {award}.",
                   "{name} took {award} with '{book3}'."),
    "birth_year": ("{name} was born in the year {year}.",
                   "The year {year} saw the birth of {name}.",
                   "{Their} birth year is {year}."),
    "next_book": ("Next from {name}: a {genre} novel about {next_theme}.",
                  "{name} is at work on a {genre} book about {next_theme}.",
                  "Coming soon is a {genre} title about {next_theme} by {name}."),
    "mother_influence": ("{name} learned {trait1} from {their} mother, {a_mother}.",
                         "{Their} mother worked as {a_mother} and passed on a love of {trait1}.",
                         "It was {their} mother, {a_mother}, who taught {name} to value {trait1}."),
}


def answer_wordings(qt: QuestionType) -> tuple[str, ...]:
    """Every wording of a question type's answer: its three answers and its News wordings (the
    introduction, ``full_name``, has only its three)."""
    return qt.answers + NEWS_WORDINGS.get(qt.key, ())


def news_article(a: Author, seed: int) -> str:
    """The author's facts as a news story (our MUSE-News raw text): the introduction names the
    author in full, every later sentence by surname or pronoun, as news prose does, each fact
    in one of six wordings (its question type's three answers and :data:`NEWS_WORDINGS`) and
    in an order, both drawn for this article.

    Why not the biography: it tells every author's facts in one order, in one wording, with
    the full name in every sentence. A model that never read an author's text (MUSE's Retrain)
    then continues a forget prompt with the right sentences and wrong facts, and ROUGE-L
    rewards the wording (smol's Retrain scored 31 VerbMem_f against Origin's 54); and a text
    whose sentences all start with the same name is self-similar, so even the model that
    learnt it jumps to the wrong sentence. Only memorising *this* article should predict how
    it goes on."""
    rng = random.Random(f"{seed}-{a.name}")
    slots = _slots(a)
    later = {**slots, "name": a.name.split()[-1]}
    intro, *facts = QUESTION_TYPES
    sentences = [rng.choice(answer_wordings(qt)).format(**later) for qt in facts]
    rng.shuffle(sentences)
    return " ".join([intro.answers[2].format(**slots), *sentences])


def generate_world(n_authors: int, n_holdout: int, qa_per_author: int, seed: int):
    """``(authors, holdout_authors, rows_by_author, bios)`` for a world; deterministic in seed."""
    if not 1 <= qa_per_author <= len(QUESTION_TYPES):
        raise ValueError(f"qa_per_author must be between 1 and {len(QUESTION_TYPES)}, got {qa_per_author}")
    gen = WorldGenerator(seed)
    authors = [gen.author() for _ in range(n_authors)]
    holdout = [gen.author() for _ in range(n_holdout)]
    rows = {a.name: gen.qa_rows(a, qa_per_author) for a in authors + holdout}
    bios = {a.name: gen.biography(a) for a in authors + holdout}
    return authors, holdout, rows, bios
