/**
 * Turkish-aware folding for matching what people type into an SMS: case-, accent- and
 * whitespace-insensitive, and independent of the server's locale.
 */

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

// Only İ and ı need this: ı has no decomposition, and "İ".toLowerCase() yields "i" + U+0307.
// The rest are listed so that the intended mapping is stated, not left to NFD.
const TURKISH_LETTERS = /[İIıÇçĞğÖöŞşÜü]/g;
const TURKISH_FOLD: Readonly<Record<string, string>> = {
  İ: "i",
  I: "i",
  ı: "i",
  Ç: "c",
  ç: "c",
  Ğ: "g",
  ğ: "g",
  Ö: "o",
  ö: "o",
  Ş: "s",
  ş: "s",
  Ü: "u",
  ü: "u",
};

const MARKS = /\p{M}+/gu;
// U+200B, U+2060, U+180E and U+FEFF are format characters, not \s, yet phones and copy-paste
// use them between words.
const SPACES = /[\s\p{Cc}\u200b\u2060\u180e\ufeff]+/gu;
// Remaining format characters (soft hyphen, ZWJ/ZWNJ, bidi marks) sit inside words.
const INVISIBLE = /\p{Cf}+/gu;
// An apostrophe after a name starts a Turkish case suffix (MİGROS'TAN, MIGROS'a, 123456'ya): the
// suffix goes with it. Not after a single letter (L'Oréal, O'Neill, D'S: the name itself goes on),
// where it is a word break like other punctuation. ’ and ʼ are what phones type for ' (´ and ′ too,
// made ' first). After an SMS's keyword it is a word break too (parseKeyword: RET'KOTON).
const APOSTROPHE_SUFFIX = /(?<=[\p{L}\p{N}]{2})['’‘ʼ`]\p{L}*/gu;
// Any other punctuation or symbol is a word break, inside a word too (RET,MIGROS; Ret-Migros;
// H&M is "h m" on both sides of a match).
const PUNCTUATION = /[\p{P}\p{S}]+/gu;
const SPACE_RUNS = / {2,}/g;
// Typed for an apostrophe (MIGROS´TAN, MIGROS′TAN): NFKC would make ´ a space and an accent.
const APOSTROPHE_LOOKALIKES = /[\u00b4\u2032]/g;

function foldTurkishLetter(c: string): string {
  return TURKISH_FOLD[c] ?? c;
}

function foldLetters(s: string): string {
  return s
    .replace(APOSTROPHE_LOOKALIKES, "'")
    .normalize("NFKC")
    .replace(TURKISH_LETTERS, foldTurkishLetter)
    // toLowerCase applies the locale-independent Unicode default mapping (unlike toLocaleLowerCase).
    .toLowerCase()
    .normalize("NFD")
    .replace(MARKS, "")
    .normalize("NFC");
}

function foldSpacing(s: string): string {
  return s
    .replace(SPACES, " ")
    .replace(INVISIBLE, "")
    .replace(APOSTROPHE_SUFFIX, "")
    .replace(PUNCTUATION, " ")
    .replace(SPACE_RUNS, " ")
    .trim();
}

/** Letters folded: plain lower-casing for printable ASCII, foldLetters otherwise. */
const folded = (s: string) => (PRINTABLE_ASCII.test(s) ? s.toLowerCase() : foldLetters(s));

/**
 * A name as people type it without its punctuation (McDonald's → mcdonalds, L'Oréal → loreal,
 * H&M → hm): foldTurkish with apostrophes, other punctuation and symbols dropped instead of
 * breaking words. A second spelling of a brand's name to match (keywords.ts), never text to parse.
 */
export function foldTurkishJoined(s: string): string {
  if (s.length === 0) return "";
  return folded(s).replace(SPACES, " ").replace(INVISIBLE, "").replace(PUNCTUATION, "").replace(SPACE_RUNS, " ").trim();
}

/**
 * Folds text for Turkish matching: NFKC, `İ I ı i → i`, `ç ğ ö ş ü → c g o s u`, other letters
 * lower-cased and stripped of accents, every kind of whitespace collapsed to one space, an
 * apostrophe and the suffix after it dropped, other punctuation and symbols a word break (digits
 * kept), trimmed.
 * Idempotent: folding a folded string changes nothing.
 */
export function foldTurkish(s: string): string {
  if (s.length === 0) return "";
  return foldSpacing(folded(s));
}
