"""Text -> index terms.

Words are NFKC-normalised, casefolded and Snowball-stemmed; Chinese runs become
overlapping character bigrams after folding Traditional to Simplified, so either
script finds both. Every token keeps its character span in the original text, which
is what highlighting uses. A glossary adds canonical terms where an ASR alias occurs
("foamy paradox" also indexes "fermi"), so quotes stay verbatim and become findable.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import Stemmer

from retrieval.text import CJK, CJK_RANGES, CJK_RUN

# (possessive runs: a run of word characters never needs giving back, since what may follow it
# is never a word character; the same matches without backtracking)
_TOKEN = re.compile(rf"[{CJK_RANGES}]++|[^\W_{CJK_RANGES}]++(?:['’][^\W_{CJK_RANGES}]++)*+")
# (the look-behind only skips hopeless starts inside a word: same matches, linear time)
_COMPOUND = re.compile(rf"(?<![^\W_{CJK_RANGES}])[^\W_{CJK_RANGES}]++(?:-[^\W_{CJK_RANGES}]++)+")
_CJK, _CJK_RUN = CJK, CJK_RUN
_TOKEN_SPLIT = re.compile(f"({_TOKEN.pattern})")
# _TOKEN_SPLIT for ASCII text, where ``[^\W_]`` is ``[A-Za-z0-9]``: explicit ranges match faster.
_ASCII_TOKEN_SPLIT = re.compile(r"([A-Za-z0-9]++(?:'[A-Za-z0-9]++)*+)")

# Function words: frequent, carry no topic. Kept short on purpose: "why", "how", numbers
# and negations stay searchable.
STOPWORDS = frozenset(
    """a an the and or but if then so as of at by for with about against between into through during before after above
    below to from up down in out on off over under again further once here there when where all any both each few
    more most other some such only own same than too very s t can will just don should now is are was were be been
    being have has had having do does did doing i me my myself we our ours ourselves you your yours yourself
    yourselves he him his himself she her hers herself it its itself they them their theirs themselves what which
    who whom this that these those am would could might must shall may uh um like yeah oh ah hmm okay ok really
    actually basically gonna wanna doesn didn isn wasn aren weren hasn haven hadn wouldn couldn shouldn ain""".split()
)

# Words that frame a question rather than name its topic ("what did he say about ...").
QUESTION_WORDS = frozenset(
    """what whats what's which who whom whose when where why how does did do is are was were say says said saying think
    thinks thought talk talks talked talking mention mentions mentioned tell tells opinion view views according per
    explain explains describe describes believe believes feel feels claim claims quote quotes quoted he she they him
    her his them their someone somebody anyone""".split()
)

# Chinese question scaffolding (Simplified): what / why / how / which / where / when / whether.
# Cut out of a query's CJK runs before bigramming, so no bigram straddles them either.
CJK_QUESTION_WORDS = ("为什么 什么时候 什么样 什么 怎么样 怎么看 怎么 如何 哪些 哪个 哪里 是否 多少 吗 呢 "
                      "认为 觉得 看法 观点 提到 谈到 说过").split()

# Function-word bigrams (pronouns, demonstratives, conjunctions), and any bigram holding the
# particle 的, which mostly straddles two words ("意义的个人" -> "义的"): the CJK side of
# STOPWORDS, dropped from questions only, so the index is the same with or without them.
CJK_FUNCTION_BIGRAMS = frozenset(
    "他们 她们 我们 你们 它们 他的 她的 我的 你的 那么 这么 这个 那个 这些 那些 这样 那样 "
    "一个 一些 没有 就是 还是 但是 因为 所以 如果 可以 已经 自己".split())

_EN_CONTRACTION = re.compile(r"['’](s|re|ve|ll|d|t|m)$")


@dataclass(frozen=True, slots=True)
class Token:
    term: str
    start: int
    end: int


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


@lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


@lru_cache(maxsize=200_000)
def _word_term(word: str) -> str:
    w = unicodedata.normalize("NFKC", word).casefold().replace("’", "'")
    if w.isascii() and "'" in w:
        w = _EN_CONTRACTION.sub("", w).replace("'", "")
    return _stemmer().stemWord(w) if w.isalpha() else w


@lru_cache(maxsize=100_000)
def fold_chinese(run: str) -> str:
    """Traditional -> Simplified, one character for one (so spans stay valid)."""
    run = unicodedata.normalize("NFKC", run)
    out = _t2s().convert(run)
    return out if len(out) == len(run) else "".join(_t2s().convert(c)[:1] or c for c in run)


def _cjk_tokens(run: str, offset: int) -> list[Token]:
    folded = fold_chinese(run)
    if len(folded) == 1:
        return [Token(folded, offset, offset + 1)]
    return [Token(folded[i : i + 2], offset + i, offset + i + 2) for i in range(len(folded) - 1)]


class TermTable:
    """A growing vocabulary for bulk analysis: term -> id, and surface word -> id.

    ``surface_id[word]`` is the term id of a word as the tokenizer matched it, -1 when its
    term is empty, and -2 for a CJK run (expanded into bigrams by the caller). Each
    distinct word is normalised and stemmed once.
    """

    def __init__(self, vocab: dict[str, int] | None = None) -> None:
        self.vocab: dict[str, int] = dict(vocab or {})
        self.terms: list[str] = [""] * len(self.vocab)  # by id
        self.stop: list[bool] = [False] * len(self.vocab)
        for term, i in self.vocab.items():
            self.terms[i] = term
            self.stop[i] = term in STOP_TERMS
        self.surface_id = _SurfaceIds(self)
        self.gram_id = _GramIds(self)
        self.gram_key: dict[int, int] = {}  # a CJK gram's code-point key (``_gram_ids``) -> term id

    def term_id(self, term: str) -> int:
        i = self.vocab.get(term)
        if i is None:
            i = self.vocab[term] = len(self.vocab)
            self.terms.append(term)
            self.stop.append(term in STOP_TERMS)
        return i

    def stop_mask(self) -> np.ndarray:
        """``mask[id]`` is True for stopword terms."""
        return np.asarray(self.stop, dtype=bool)


class _SurfaceIds(dict):
    def __init__(self, table: TermTable) -> None:
        super().__init__()
        self._table = table

    def __missing__(self, word: str) -> int:
        if _CJK.match(word):
            i = -2
        else:
            term = _word_term(word)
            i = self._table.term_id(term) if term else -1
        self[word] = i
        return i


class _GramIds(dict):
    def __init__(self, table: TermTable) -> None:
        super().__init__()
        self._table = table

    def __missing__(self, gram: str) -> int:
        i = self[gram] = self._table.term_id(gram)
        return i


@dataclass(frozen=True, slots=True)
class TokenArrays:
    """A text's document tokens as arrays, in ``Analyzer.document_tokens`` order.

    ``anchor`` is the start of the word each token was made from (a compound's last part,
    an alias's first word): it never decreases, so the tokens of a span are one slice.
    """

    ids: np.ndarray  # TermTable ids
    start: np.ndarray
    end: np.ndarray
    anchor: np.ndarray


def _gram_ids(runs: list[str], n_per: np.ndarray, local: np.ndarray, table: TermTable) -> np.ndarray:
    """Term ids of every run's bigrams in order (a one-character run is its own gram).

    Grams are told apart by their characters' code points, so each distinct gram is made a
    string and looked up once; new ones are numbered in order of first use, as one lookup
    per gram would number them.
    """
    lengths = np.fromiter(map(len, runs), np.int64, len(runs))
    codes = np.frombuffer("".join(runs).encode("utf-32-le", "surrogatepass"), np.uint32).astype(np.int64)
    first = np.repeat(np.cumsum(lengths) - lengths, n_per) + local  # each gram's first character
    pair = np.repeat(lengths > 1, n_per)
    # (code of the second character + 1, or 0 for a one-character gram) below the first's code
    key = (codes[first] << 22) | np.where(pair, codes[np.minimum(first + 1, len(codes) - 1)] + 1, 0)
    uniq, seen, inverse = np.unique(key, return_index=True, return_inverse=True)
    keys = uniq.tolist()
    known = table.gram_key  # grams met in earlier texts, by key: most grams of a corpus recur
    ids = np.fromiter(map(known.get, keys, itertools.repeat(-1)), np.int64, len(keys))
    low = (1 << 22) - 1
    new = np.flatnonzero(ids < 0)
    for u in new[np.argsort(seen[new], kind="stable")].tolist():
        k = keys[u]
        ids[u] = known[k] = table.gram_id[chr(k >> 22) + (chr((k & low) - 1) if k & low else "")]
    return ids[inverse.reshape(-1)]


def _compound_matches(text: str, words: list[str], w_start: np.ndarray, w_end: np.ndarray) -> list[re.Match]:
    """``list(_COMPOUND.finditer(text))``, given the text's ``_TOKEN`` words and their spans.

    A compound's first hyphen lies between a word that ends there and one that starts right
    after it; the compound starts at that word's last apostrophe-free part. So the regex only
    runs at those few places instead of over the whole text.
    """
    hyphens = np.asarray([m.start() for m in re.finditer("-", text)], np.int64)
    if not len(hyphens) or len(w_end) < 2:
        return []
    left = np.searchsorted(w_end, hyphens)
    ok = left + 1 < len(w_end)
    left, hyphens = left[ok], hyphens[ok]
    left = left[(w_end[left] == hyphens) & (w_start[left + 1] == hyphens + 1)].tolist()
    found: list[re.Match] = []
    done = 0
    for k in left:
        word = words[k]
        at = int(w_end[k]) - len(word) + max(word.rfind("'"), word.rfind("’")) + 1
        if at < done:
            continue  # inside the compound found last
        m = _COMPOUND.match(text, at)
        if m is not None:
            found.append(m)
            done = m.end()
    return found


def _insert_after(base: TokenArrays, after: np.ndarray, ids: np.ndarray, start: np.ndarray,
                  end: np.ndarray) -> TokenArrays:
    """``base`` with extra tokens placed right after token ``after[i]`` (stable among equals)."""
    order = np.argsort(np.concatenate([np.arange(len(base.ids)) * 2, after * 2 + 1]), kind="stable")
    anchor = np.concatenate([base.anchor, base.anchor[after]])
    return TokenArrays(np.concatenate([base.ids, ids])[order], np.concatenate([base.start, start])[order],
                       np.concatenate([base.end, end])[order], anchor[order])


class Analyzer:
    """Turns text into terms; one instance per corpus (it holds the glossary)."""

    def __init__(self, glossary: Mapping[str, Iterable[str]] | None = None, speakers: Iterable[str] = ()) -> None:
        # alias word sequence (analysed) -> canonical terms to add
        self._aliases: dict[tuple[str, ...], tuple[str, ...]] = {}
        for canonical, aliases in (glossary or {}).items():
            canon_terms = tuple(t.term for t in self.tokens(canonical))
            for alias in aliases:
                key = tuple(t.term for t in self.tokens(alias))
                if key and canon_terms and key != canon_terms:
                    self._aliases[key] = tuple(dict.fromkeys(self._aliases.get(key, ()) + canon_terms))
        self._max_alias = max((len(k) for k in self._aliases), default=0)
        speakers = list(speakers)
        self.speaker_terms = frozenset(t.term for s in speakers for t in self.tokens(s) if not _CJK.match(s[t.start]))
        cjk_names = [fold_chinese(run) for s in speakers for run in _CJK_RUN.findall(s)]
        cut = sorted(set(CJK_QUESTION_WORDS + cjk_names), key=len, reverse=True)
        self._cjk_cut = re.compile("|".join(map(re.escape, cut)))

    @staticmethod
    def tokens(text: str) -> list[Token]:
        """Every word (stemmed) and CJK bigram with its span; no stopword removal.

        A hyphenated compound also yields its joined form ("un-regretted" -> "unregret"),
        so it matches either spelling.
        """
        out: list[Token] = []
        compounds = {m.end(): m for m in _COMPOUND.finditer(text)} if "-" in text else {}
        for m in _TOKEN.finditer(text):
            s = m.group(0)
            if _CJK.match(s):
                out.extend(_cjk_tokens(s, m.start()))
                continue
            term = _word_term(s)
            if term:
                out.append(Token(term, m.start(), m.end()))
            whole = compounds.get(m.end())
            if whole is not None:
                out.append(Token(_word_term(whole.group(0).replace("-", "")), whole.start(), whole.end()))
        return out

    def document_tokens(self, text: str) -> list[Token]:
        """Tokens for indexing: the text's own plus glossary terms at each alias."""
        toks = self.tokens(text)
        if not self._aliases:
            return toks
        out: list[Token] = []
        terms = [t.term for t in toks]
        for i, tok in enumerate(toks):
            out.append(tok)
            for n in range(1, min(self._max_alias, len(toks) - i) + 1):
                added = self._aliases.get(tuple(terms[i : i + n]))
                if added:
                    span_end = toks[i + n - 1].end
                    out.extend(Token(a, tok.start, span_end) for a in added)
        return out

    def text_tokens(self, text: str, table: TermTable) -> TokenArrays:
        """``document_tokens(text)`` for a whole text at once, as arrays of ``table`` ids.

        The same tokens in the same order, made with a handful of regex and array passes
        instead of per-token Python: each distinct word is analysed once per table.
        """
        parts = (_ASCII_TOKEN_SPLIT if text.isascii() else _TOKEN_SPLIT).split(text)  # gap, word, ..., gap
        lens = np.fromiter(map(len, parts), np.int64, len(parts))
        w_end = np.cumsum(lens)[1::2]
        w_start = w_end - lens[1::2]
        words = parts[1::2]
        ids = np.fromiter(map(table.surface_id.__getitem__, words), np.int64, len(words))
        counts = (ids != -1).astype(np.int64)
        cjk = np.flatnonzero(ids == -2)
        runs = [fold_chinese(words[i]) for i in cjk]
        if len(cjk):
            counts[cjk] = [max(1, len(r) - 1) for r in runs]
        match = np.repeat(np.arange(len(words)), counts)
        out = TokenArrays(ids[match], w_start[match], w_end[match], w_start[match])
        if len(cjk):
            n_per = counts[cjk]
            local = np.arange(int(n_per.sum())) - np.repeat(np.cumsum(n_per) - n_per, n_per)
            at = np.repeat((np.cumsum(counts) - counts)[cjk], n_per) + local
            out.ids[at] = _gram_ids(runs, n_per, local, table)
            out.start[at] = np.repeat(w_start[cjk], n_per) + local
            widths = np.minimum(2, np.fromiter(map(len, runs), np.int64, len(runs)))
            out.end[at] = out.start[at] + np.repeat(widths, n_per)
        if "-" in text:
            out = self._compounds(text, out, table, match, words, w_start, w_end)
        if self._aliases and len(out.ids):
            out = self._alias_tokens(out, table)
        return out

    @staticmethod
    def _compounds(text: str, toks: TokenArrays, table: TermTable, match: np.ndarray, words: list[str],
                   w_start: np.ndarray, w_end: np.ndarray) -> TokenArrays:
        found = _compound_matches(text, words, w_start, w_end)
        if not found:
            return toks
        ends = np.asarray([m.end() for m in found], np.int64)
        word = np.searchsorted(w_end, ends)  # the word each compound ends with
        # placed after every token made from that word and the words before it
        before = np.searchsorted(match, word, side="right")
        ids = np.asarray([table.term_id(_word_term(m.group(0).replace("-", ""))) for m in found], np.int64)
        starts = np.asarray([m.start() for m in found], np.int64)
        order = np.argsort(np.concatenate([np.arange(len(toks.ids)) * 2, before * 2 - 1]), kind="stable")
        return TokenArrays(np.concatenate([toks.ids, ids])[order], np.concatenate([toks.start, starts])[order],
                           np.concatenate([toks.end, ends])[order],
                           np.concatenate([toks.anchor, w_start[word]])[order])

    def _alias_tokens(self, toks: TokenArrays, table: TermTable) -> TokenArrays:
        seq = toks.ids
        wanted = []
        for key, canon in self._aliases.items():
            key_ids = [table.vocab.get(t, -9) for t in key]
            if -9 not in key_ids and len(key) <= len(seq):  # else a word of it never occurs in these texts
                wanted.append((canon, key_ids))
        if not wanted:
            return toks
        heads = np.asarray([key_ids[0] for _, key_ids in wanted], np.int64)
        opens = np.zeros(len(table.vocab), bool)
        opens[heads] = True
        maybe = np.flatnonzero(opens[seq])  # tokens that may start an alias
        # ... grouped by term, each group in text order
        by_term = np.argsort(seq[maybe], kind="stable")
        maybe = maybe[by_term]
        lo = np.searchsorted(seq[maybe], heads, side="left").tolist()
        hi = np.searchsorted(seq[maybe], heads, side="right").tolist()
        at, size, add = [], [], []
        for (canon, key_ids), a, b in zip(wanted, lo, hi, strict=True):
            hits = maybe[a:b]
            hits = hits[hits <= len(seq) - len(key_ids)]
            for j, k in enumerate(key_ids[1:], 1):
                hits = hits[seq[hits + j] == k]
            if len(hits):
                canon_ids = [table.term_id(c) for c in canon]
                at.append(np.repeat(hits, len(canon_ids)))
                size.append(np.full(len(hits) * len(canon_ids), len(key_ids), np.int64))
                add.append(np.asarray(canon_ids * len(hits), np.int64))
        if not add:
            return toks
        pos, size, ids = np.concatenate(at), np.concatenate(size), np.concatenate(add)
        order = np.lexsort((size, pos))  # by token, then alias length (stable)
        pos, size, ids = pos[order], size[order], ids[order]
        return _insert_after(toks, pos, ids, toks.start[pos], toks.end[pos + size - 1])

    def query_terms(self, query: str) -> list[str]:
        """Content terms of a question: scaffolding, speaker names and stopwords dropped.

        Falls back to the plain terms when nothing would be left, so "what did he say"
        still searches for something.
        """
        folded = _CJK_RUN.sub(lambda m: self._cjk_cut.sub(" ", fold_chinese(m.group(0))), query)
        keep = [t.term for t in self.tokens(folded) if not self._is_noise(t.term)]
        if keep:
            return keep
        toks = self.tokens(query)
        keep = [t.term for t in toks if t.term not in STOP_TERMS]
        return keep or [t.term for t in toks]

    def _is_noise(self, term: str) -> bool:
        return (term in STOP_TERMS or term in QUESTION_TERMS or term in self.speaker_terms
                or term in CJK_FUNCTION_BIGRAMS or ("的" in term and bool(_CJK.match(term))))

    @staticmethod
    def is_stopword(term: str) -> bool:
        return term in STOP_TERMS

    def is_keyword_query(self, query: str) -> bool:
        """Whether ``query`` is a list of content words (two or more, no stopword or question
        word among them): a keyword search rather than a question."""
        toks = self.tokens(query)
        return len(toks) >= 2 and not any(t.term in STOP_TERMS or t.term in QUESTION_TERMS for t in toks)


STOP_TERMS = frozenset(_word_term(w) for w in STOPWORDS)
QUESTION_TERMS = frozenset(_word_term(w) for w in QUESTION_WORDS) - {""}
