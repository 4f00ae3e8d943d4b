import { negates, REFUSAL_WORDS } from "./negation";
import { foldTurkish, foldTurkishJoined } from "./turkish";

export type KeywordStatus = "RET" | "ONAY";
export type PhoneChannel = "MESAJ" | "ARAMA";

/** Words of the SMS keyword grammar, stored folded (see `foldTurkish`). */
export interface KeywordWords {
  refuse: string[];
  consent: string[];
  help: string[];
  /** After the brand: refuse or grant `ARAMA`. */
  scopeCalls: string[];
  /** After the brand: refuse or grant `MESAJ` (also the default). */
  scopeSms: string[];
  /** After the brand: refuse or grant both phone channels. */
  scopeAll: string[];
}

/**
 * The names by which a recipient may refer to a brand: its short names (up to 3), its code and its
 * İYS brand number as digits. A name may be several words ("KOTON KIDS"); it is given as entered
 * and texted folded or without its punctuation (`spellings`).
 */
export interface BrandNames {
  code: string;
  names: string[];
}

export type KeywordParse =
  | {
      kind: "action";
      status: KeywordStatus;
      types: PhoneChannel[];
      /** The folded brand name as matched. */
      brandRef: string;
      /** Codes of the brands answering to that name: one, unless brands share a name by mistake. */
      brands: string[];
      bare: false;
      /** The folded words after the brand and scope (ignored by the grammar; a consent with a "no" among them is not taken). */
      rest: string[];
    }
  | {
      kind: "action";
      status: KeywordStatus;
      types: PhoneChannel[];
      brandRef: null;
      /** Every brand the number serves, in the given order. */
      brands: string[];
      bare: true;
      rest: string[];
    }
  | { kind: "help" }
  | {
      kind: "unknown";
      /** `negated`: a refusal word said with a no on the cancelling itself ("İPTAL ETMEK İSTEMİYORUM": don't cancel). */
      reason: "empty" | "no_keyword" | "unknown_brand" | "negated";
      /** The folded word that did not parse (absent when the text is empty). */
      word?: string;
    };

type WordCategory = keyof KeywordWords;

const KEYWORD_CATEGORIES = ["refuse", "consent", "help"] as const satisfies readonly WordCategory[];
const SCOPE_CATEGORIES = ["scopeCalls", "scopeSms", "scopeAll"] as const satisfies readonly WordCategory[];

const RAW_DEFAULT_WORDS: Readonly<Record<WordCategory, readonly string[]>> = {
  // RED and HAYIR besides İYS's words: how many write a refusal (domain.md lists RET, İPTAL, DUR, STOP).
  refuse: ["RET", "RED", "HAYIR", "IPTAL", "İPTAL", "DUR", "STOP"],
  consent: ["ONAY", "EVET", "START"],
  help: ["YARDIM", "BILGI", "BİLGİ", "HELP"],
  scopeCalls: ["ARAMA", "ARAMALAR", "ARAMALARI", "CAGRI", "ÇAĞRI", "ÇAĞRILAR", "ÇAĞRILARI"],
  scopeSms: ["MESAJ", "MESAJLAR", "MESAJLARI", "SMS", "SMSLER", "SMSLERİ", "ILETI", "İLETİ", "İLETİLER", "İLETİLERİ"],
  scopeAll: ["TUMU", "TÜMÜ", "HEPSI", "HEPSİ"],
};

function foldList(category: WordCategory, list: readonly string[]): string[] {
  const out: string[] = [];
  for (const raw of list) {
    const folded = foldTurkish(raw);
    if (folded === "" || folded.includes(" ")) {
      throw new RangeError(`keyword word ${JSON.stringify(raw)} in ${category} must fold to exactly one word`);
    }
    if (!out.includes(folded)) out.push(folded);
  }
  return out;
}

function assertDisjoint(words: KeywordWords, categories: readonly WordCategory[]): void {
  const owner = new Map<string, WordCategory>();
  for (const category of categories) {
    for (const word of words[category]) {
      const previous = owner.get(word);
      if (previous !== undefined && previous !== category) {
        throw new RangeError(`keyword word "${word}" is in both ${previous} and ${category}`);
      }
      owner.set(word, category);
    }
  }
}

/**
 * Builds a per-number word list: given categories replace the defaults, missing ones keep them.
 * Words are folded once here; a word that folds to nothing or to several words, or that would make
 * the grammar ambiguous (one word in two keyword or two scope categories, or a refusal word that is
 * also a scope word), is a configuration error.
 */
export function foldedWords(words: Partial<KeywordWords>): KeywordWords {
  const result: KeywordWords = {
    refuse: foldList("refuse", words.refuse ?? RAW_DEFAULT_WORDS.refuse),
    consent: foldList("consent", words.consent ?? RAW_DEFAULT_WORDS.consent),
    help: foldList("help", words.help ?? RAW_DEFAULT_WORDS.help),
    scopeCalls: foldList("scopeCalls", words.scopeCalls ?? RAW_DEFAULT_WORDS.scopeCalls),
    scopeSms: foldList("scopeSms", words.scopeSms ?? RAW_DEFAULT_WORDS.scopeSms),
    scopeAll: foldList("scopeAll", words.scopeAll ?? RAW_DEFAULT_WORDS.scopeAll),
  };
  assertDisjoint(result, KEYWORD_CATEGORIES);
  assertDisjoint(result, SCOPE_CATEGORIES);
  // A refusal word may not be a scope word either: "ONAY MIGROS RET" would read RET as a scope, and
  // a consent would be recorded past the "no" (channels/sms/interpret.ts looks after the scope).
  // A help word may (texted alone it is help, after a brand a scope).
  assertDisjoint(result, ["refuse", ...SCOPE_CATEGORIES]);
  return result;
}

export const defaultKeywordWords: KeywordWords = foldedWords({});

/** Every category of words, keywords then scopes. */
export const KEYWORD_WORD_CATEGORIES = [...KEYWORD_CATEGORIES, ...SCOPE_CATEGORIES] as const;

/**
 * The words a number's SMS are read with: its own and the defaults, or the defaults alone when what
 * is stored no longer makes a valid list (a hand edit, folding rules changed since): never an error
 * in the middle of a webhook's job or a brand's change. Validated when stored (numberKeywordWords).
 */
export function effectiveNumberWords(extra: ExtraKeywordWords | null | undefined): KeywordWords {
  try {
    return numberKeywordWords(extra);
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
  }
  // A word stored before a default took it in another category (RED, HAYIR became refusal words):
  // the number keeps its other words, without that one.
  try {
    const defaults = KEYWORD_WORD_CATEGORIES.map((c) => [c, defaultKeywordWords[c]] as const);
    const clash = (c: WordCategory, word: string) => defaults.some(([d, list]) => d !== c && list.includes(foldTurkish(word)));
    return numberKeywordWords(Object.fromEntries(KEYWORD_WORD_CATEGORIES.map((c) => [c, (extra?.[c] ?? []).filter((w) => !clash(c, w))])));
  } catch (err) {
    if (err instanceof RangeError) return defaultKeywordWords;
    throw err;
  }
}

/** Words a number takes besides the defaults, by category, as entered (numbers.keywords). */
export type ExtraKeywordWords = Partial<Record<WordCategory, string[]>>;

const numberWordsCache = new Map<string, KeywordWords>();

/**
 * The grammar's words on a number: the defaults and the number's own additions (domain.md: "Lists are
 * configurable per number"). Added, never replacing: the replies and the help text name RET, ARAMA
 * and TUMU, which every number must keep understanding. Throws RangeError as foldedWords does (a
 * word that folds to nothing or to two words, or one in two categories).
 */
export function numberKeywordWords(extra: ExtraKeywordWords | null | undefined): KeywordWords {
  if (!extra || KEYWORD_WORD_CATEGORIES.every((c) => !extra[c]?.length)) return defaultKeywordWords;
  const key = JSON.stringify(KEYWORD_WORD_CATEGORIES.map((c) => extra[c] ?? []));
  let words = numberWordsCache.get(key);
  if (!words) {
    words = foldedWords(Object.fromEntries(KEYWORD_WORD_CATEGORIES.map((c) => [c, [...RAW_DEFAULT_WORDS[c], ...(extra[c] ?? [])]])));
    if (numberWordsCache.size >= 1000) numberWordsCache.clear();
    numberWordsCache.set(key, words);
  }
  return words;
}

const SCOPE_MEANING: Readonly<Record<(typeof SCOPE_CATEGORIES)[number], string>> = {
  scopeCalls: "calls",
  scopeSms: "messages",
  scopeAll: "calls and messages",
};

/**
 * Why a recipient could not text `name` for a brand (a short name or the code), or null. A name that
 * folds to nothing is never matched; one that folds to a scope word would be matched before the scope
 * (parseKeyword: a brand name wins), so `RET ARAMA` on the number would stop meaning calls; one that
 * ends in a scope word would take it from a shorter name (`RET KOTON TÜMÜ`).
 */
export function brandNameProblem(name: string, words: KeywordWords = defaultKeywordWords): string | null {
  const texted = spellings(name);
  if (texted.length === 0) return `${JSON.stringify(name)} has no letter or digit a recipient could text`;
  for (const c of SCOPE_CATEGORIES) {
    if (texted.some((folded) => words[c].includes(folded))) return `${JSON.stringify(name)} is a scope word: "RET ${name}" must keep meaning the ${SCOPE_MEANING[c]} of every brand on the number`;
  }
  // "KOTON TÜMÜ" would swallow the scope of "RET KOTON TÜMÜ" (the longest name wins): the refusal of
  // KOTON's calls and messages would be one of the other brand's messages.
  for (const c of SCOPE_CATEGORIES) {
    const last = texted.map((folded) => folded.slice(folded.lastIndexOf(" ") + 1)).find((word) => words[c].includes(word));
    if (last !== undefined) return `${JSON.stringify(name)} ends in the scope word "${last}": "RET ${name}" must keep meaning the ${SCOPE_MEANING[c]} of the brand named before it`;
  }
  // The channel words known by their stem and ending (TÜM, ALL, ARAMAYI, SMSLERİ): "STOP ALL" must keep meaning both channels.
  const stemmed = texted.find((folded) => stemScope(folded) !== null);
  if (stemmed !== undefined) return `${JSON.stringify(name)} is a channel word ("${stemmed}"): "RET ${name}" must keep meaning a channel of every brand on the number`;
  const lastStemmed = texted.map((folded) => folded.slice(folded.lastIndexOf(" ") + 1)).find((word) => stemScope(word) !== null);
  if (lastStemmed !== undefined) return `${JSON.stringify(name)} ends in the channel word "${lastStemmed}": "RET ${name}" must keep meaning the channel of the brand named before it`;
  return null;
}

/** The first word and an apostrophe right after it (what apostrophes fold as, ´ and ′ included). */
const KEYWORD_APOSTROPHE = /^[\s\p{Cf}]*([^\s'’‘ʼ`´′]+)['’‘ʼ`´′]/u;

const isKeyword = (word: string, words: KeywordWords) => words.refuse.includes(word) || words.consent.includes(word) || words.help.includes(word);

const SMS_ONLY: readonly PhoneChannel[] = ["MESAJ"];
const CALLS_ONLY: readonly PhoneChannel[] = ["ARAMA"];
const BOTH_CHANNELS: readonly PhoneChannel[] = ["MESAJ", "ARAMA"];

/**
 * Channel words known by their stem, whatever suffix Turkish gives them (ARAMAYI, ARAMALARINI,
 * ÇAĞRILARINIZI, SMSLERİNİ, TÜMÜNÜ, HEPSİNİ, İKİSİ): read as nothing, "ONAY MİGROS ARAMAYI" was a
 * consent to SMS nobody gave and "RET MİGROS ARAMALARINI" left the calls on. After the number's own
 * lists, which come first. Folded (`foldTurkish`).
 */
/** Case and possessive endings after a channel word's (plural) stem: ARAMA-YI, ARAMA-LAR-INIZI, SMS-LER-İNİ. */
const ENDINGS = "(?:i|yi|ni|in|ini|niz|nizi|iniz|inizi|a|ya|e|ye|dan|den)?";
/**
 * Whole words only, a stem and its endings: a brand whose name starts like one (HEPSİBURADA,
 * SMSBANK) stays a brand ("RET KOTON HEPSİBURADA" is two brands, not KOTON's calls and messages).
 */
const SCOPE_STEMS: readonly (readonly [RegExp, readonly PhoneChannel[]])[] = [
  [new RegExp(`^(?:(?:arama|cagri)(?:lar)?${ENDINGS}|aranma(?:k|yi)?)$`), CALLS_ONLY],
  [new RegExp(`^(?:(?:mesaj)(?:lar)?|(?:sms|ileti)(?:ler)?)${ENDINGS}$`), SMS_ONLY],
  [/^(?:tum|tumu|tumunu|hepsi|hepsini|ikisi|ikisini|all)$/, BOTH_CHANNELS],
];

function scopeOf(word: string | undefined, words: KeywordWords): readonly PhoneChannel[] | null {
  if (word === undefined) return null;
  if (words.scopeCalls.includes(word)) return CALLS_ONLY;
  if (words.scopeSms.includes(word)) return SMS_ONLY;
  if (words.scopeAll.includes(word)) return BOTH_CHANNELS;
  // Whole words of the stems only: "aramayın", "aranmasın" (don't call) are no scope of a consent.
  for (const [stem, types] of SCOPE_STEMS) if (stem.test(word)) return types;
  return null;
}

/** The channels a word names by its stem, said with a "no" or not ("aramayın" names calls: what a refusal refuses). */
function stemScope(word: string): readonly PhoneChannel[] | null {
  for (const [stem, types] of SCOPE_STEMS) if (stem.test(word)) return types;
  return NEGATED_CALLS.test(word) ? CALLS_ONLY : null;
}

/** "aramayın", "aramayınız", "aramasın", "aranmasın": don't call (me): a refusal's channel, never a consent's. */
const NEGATED_CALLS = /^(?:arama(?:yin|yiniz|sin|sinlar)|aranmasin|aranmasinlar)$/;

/** Words that join two scopes: "ARAMA VE SMS", "SMS VEYA ARAMA", "calls and sms". */
const SCOPE_JOINERS: readonly string[] = ["ve", "veya", "ile", "and", "or"];

/**
 * Words a refusal is said with that name neither a brand nor a channel ("Ret lütfen", "İptal etmek
 * istiyorum", "DUR ARTIK"), folded. A refusal word followed only by these (and channel words) is a
 * bare refusal; an unknown word may be a brand the number does not serve ("RET LCW" on FLO's
 * number) or a typo of one, and gets the help reply instead of refusing a brand not named.
 */
const REFUSAL_FILLERS: ReadonlySet<string> = new Set([
  "lutfen", "artik", "etmek", "et", "edin", "ediniz", "edilsin", "ediyorum", "ederim", "istiyorum", "istiyoruz", "beni", "bana", "bunu", "bu",
  "numara", "numarami", "numaradan", "listeden", "listenizden", "cikar", "cikarin", "cikarir", "sil", "silin", "uyelik", "abonelik", "her", "de", "da",
  "tesekkurler", "tesekkur", "please", "me", "now",
]);

/** A refusal's words are read from its first few; a longer text is no command the grammar reads (and costs nothing to parse). */
const SCAN_WORDS = 40;

/**
 * What a refusal names from `at` on: each brand of the number (named exactly, or with a case ending
 * after another brand, a channel word or a joiner: "ÇOK ŞOKA UĞRADIM" refuses no ŞOK), each channel word, and the
 * words that are neither nor a courtesy word or a "no" ("istemiyorum", "aramayın").
 */
function scanRefusal(
  tokens: readonly string[],
  at: number,
  brands: readonly BrandNames[],
  words: KeywordWords,
  opts: { afterBrand?: boolean; endings?: boolean } = {},
): { ref: string | null; codes: string[]; types: Set<PhoneChannel>; unknown: string[] } {
  const found = { ref: null as string | null, codes: [] as string[], types: new Set<PhoneChannel>(), unknown: [] as string[] };
  const end = Math.min(tokens.length, at + SCAN_WORDS);
  // A name with its case ending right after another brand or a joiner ("RET MİGROS VE ŞOKU"), or
  // anywhere when asked (`endings`: the words before a refusal word, "KOTONU İPTAL").
  let follows = opts.afterBrand === true;
  for (let i = at; i < end; ) {
    const word = tokens[i]!;
    const brand = matchBrandBy(tokens, i, brands, startsWithAt) ?? (follows || opts.endings ? matchBrandBy(tokens, i, brands, startsWithSuffixedAt) : null);
    if (brand !== null) {
      found.ref ??= brand.ref;
      for (const code of brand.codes) if (!found.codes.includes(code)) found.codes.push(code);
      i += brand.length;
      follows = true;
      continue;
    }
    const scope = scopeOf(word, words) ?? stemScope(word);
    // After a channel word too: "RET MİGROS SMS ŞOKU" refuses ŞOK as well.
    follows = SCOPE_JOINERS.includes(word) || scope !== null;
    if (scope !== null) for (const t of scope) found.types.add(t);
    else if (!SCOPE_JOINERS.includes(word) && !REFUSAL_FILLERS.has(word) && !REFUSAL_WORDS.has(word) && !words.refuse.includes(word) && !negates(word)) found.unknown.push(word);
    i++;
  }
  // Past the words read: not understood (a long text is no command).
  if (tokens.length > end) found.unknown.push(tokens[end]!);
  return found;
}

/** The negative forms of "etmek" that negate a cancelling ("İPTAL ETMEYİN", "RET ETMİYORUM"). */
const NEGATED_ET: ReadonlySet<string> = new Set(["etme", "etmeyin", "etmeyiniz", "etmiyorum", "etmiyoruz", "etmem", "etmeyiz", "etmedim", "etmeyecegim"]);
/** A want said with a no right after "etmek": "İPTAL ETMEK İSTEMİYORUM". */
const NEGATED_WANT: ReadonlySet<string> = new Set(["istemiyorum", "istemiyoruz", "istemem", "istemeyiz"]);

/**
 * A refusal word said with a no on the cancelling itself: "İPTAL ETMEK İSTEMİYORUM", "RET ETMİYORUM",
 * "İPTAL MİGROS ETMEYİN", "SMS İPTAL DEĞİL" (don't cancel). Whatever else the text names, it is no
 * refusal: the help reply. The "etmek" must follow the refusal word, a brand or a channel: "rahatsız
 * etmeyin" (don't disturb) is a refusal's courtesy, and a no on the messages ("RET, istemiyorum",
 * "İPTAL ET MESAJ İSTEMİYORUM", "RET asla") is a refusal.
 */
function saysDontCancel(tokens: readonly string[], brands: readonly BrandNames[], words: KeywordWords): string | null {
  // The brands' words, made only for a text that has an "etmek" at all.
  let brandWords: Set<string> | null = null;
  const isBrandWord = (w: string) => (brandWords ??= new Set(brands.flatMap((b) => b.names.flatMap((n) => spellings(n).flatMap((sp) => sp.split(" ")))))).has(w);
  const onCancel = (prev: string | undefined) => prev !== undefined && (words.refuse.includes(prev) || scopeOf(prev, words) !== null || isBrandWord(prev));
  for (let i = 0; i < tokens.length && i < SCAN_WORDS; i++) {
    const t = tokens[i]!;
    if (NEGATED_ET.has(t) && onCancel(tokens[i - 1])) return t;
    if ((t === "etmek" || t === "et") && onCancel(tokens[i - 1]) && NEGATED_WANT.has(tokens[i + 1] ?? "")) return tokens[i + 1]!;
    if (words.refuse.includes(t) && (tokens[i + 1] === "degil" || tokens[i + 1] === "not")) return tokens[i + 1]!;
  }
  return null;
}

/** The brands named first, then those named further on not among them. */
const withMore = (codes: readonly string[], more: readonly string[]) => [...codes, ...more.filter((c) => !codes.includes(c))];

/** A refusal of the brands a scan named, or, naming none, a bare one of every brand on the number. */
function scannedRefusal(said: { ref: string | null; codes: string[] }, types: PhoneChannel[], brands: readonly BrandNames[], rest: string[]): KeywordParse {
  return said.codes.length > 0
    ? { kind: "action", status: "RET", types, brandRef: said.ref!, brands: said.codes, bare: false, rest }
    : { kind: "action", status: "RET", types, brandRef: null, brands: brands.map((b) => b.code), bare: true, rest };
}

/**
 * The channels of a refusal: those named right after the keyword or brand (else MESAJ, the channel
 * it came on), and every channel named further on ("RET MİGROS lütfen ARAMA": both). A refusal read
 * wider than said is safe; one read narrower leaves a channel on that the recipient refused.
 */
function refusalTypes(first: readonly PhoneChannel[] | undefined, further: ReadonlySet<PhoneChannel>): PhoneChannel[] {
  const types = new Set<PhoneChannel>(first ?? SMS_ONLY);
  for (const t of further) types.add(t);
  return BOTH_CHANNELS.filter((t) => types.has(t));
}

/**
 * The scope words from `at` on, joined or not ("ARAMA VE SMS", "SMS ARAMA", "HER İKİSİ"): both
 * channels when they name both (the second scope was dropped: "RET MIGROS ARAMA VE SMS" refused
 * calls only), with the number of words they take; null when `at` holds no scope word.
 */
function scopeRun(tokens: readonly string[], at: number, words: KeywordWords): { types: readonly PhoneChannel[]; length: number } | null {
  // "her ikisi" (both of them), "sesli arama" (voice calls): the first word is part of the scope.
  const next = scopeOf(tokens[at + 1], words);
  const lead = (tokens[at] === "her" && next !== null) || (tokens[at] === "sesli" && next === CALLS_ONLY) ? 1 : 0;
  const first = scopeOf(tokens[at + lead], words);
  if (first === null) return null;
  const types = new Set(first);
  let end = at + lead + 1;
  for (;;) {
    const skip = SCOPE_JOINERS.includes(tokens[end] ?? "") ? 1 : 0;
    const next = scopeOf(tokens[end + skip], words);
    if (next === null) break;
    for (const t of next) types.add(t);
    end += skip + 1;
  }
  return { types: types.size === 2 ? BOTH_CHANNELS : first, length: end - at };
}

interface BrandMatch {
  ref: string;
  length: number;
  codes: string[];
}

function startsWithAt(tokens: readonly string[], at: number, name: readonly string[]): boolean {
  if (at + name.length > tokens.length) return false;
  for (let i = 0; i < name.length; i++) {
    if (tokens[at + i] !== name[i]) return false;
  }
  return true;
}

/**
 * How a name may be texted: folded (McDonald's → mcdonald, H&M → h m) or without its punctuation
 * (mcdonalds, hm: what people type who leave the apostrophe or the symbol out).
 */
export function spellings(rawName: string): string[] {
  const name = foldTurkish(rawName);
  if (name === "") return [];
  const joined = foldTurkishJoined(rawName);
  return joined === "" || joined === name ? [name] : [name, joined];
}

/**
 * Turkish case endings a name may be texted with, without the apostrophe (MİGROSTAN, KOTONA,
 * ŞOKU), folded. With an apostrophe the suffix is dropped when folding.
 */
const CASE_SUFFIXES: ReadonlySet<string> = new Set([
  "a", "e", "ya", "ye", "i", "u", "yi", "yu", "da", "de", "ta", "te", "dan", "den", "tan", "ten", "ndan", "nden",
  "in", "un", "nin", "nun", "la", "le", "yla", "yle",
]);

/** Whether `token` is `name` with a case ending (a name of 3 letters or more: "a" + "ya" is no brand). */
function withCaseSuffix(token: string, name: string): boolean {
  return name.length >= 3 && token.length > name.length && token.startsWith(name) && CASE_SUFFIXES.has(token.slice(name.length));
}

/** The longest brand name starting at `at`, with every brand answering to it (`ref`: the name folded); a name with a case ending only when none is texted bare. */
function matchBrand(tokens: readonly string[], at: number, brands: readonly BrandNames[]): BrandMatch | null {
  return matchBrandBy(tokens, at, brands, startsWithAt) ?? matchBrandBy(tokens, at, brands, startsWithSuffixedAt);
}

function startsWithSuffixedAt(tokens: readonly string[], at: number, name: readonly string[]): boolean {
  const last = name.length - 1;
  return startsWithAt(tokens, at, name.slice(0, last)) && tokens[at + last] !== undefined && withCaseSuffix(tokens[at + last]!, name[last]!);
}

function matchBrandBy(
  tokens: readonly string[],
  at: number,
  brands: readonly BrandNames[],
  matches: (tokens: readonly string[], at: number, name: readonly string[]) => boolean,
): BrandMatch | null {
  let best: BrandMatch | null = null;
  for (const brand of brands) {
    for (const rawName of brand.names) {
      const texted = spellings(rawName);
      for (const spelling of texted) {
        const nameTokens = spelling.split(" ");
        if (!matches(tokens, at, nameTokens)) continue;
        if (best === null || nameTokens.length > best.length) {
          best = { ref: texted[0]!, length: nameTokens.length, codes: [brand.code] };
        } else if (nameTokens.length === best.length && !best.codes.includes(brand.code)) {
          best.codes.push(brand.code);
        }
      }
    }
  }
  return best;
}

/**
 * Parses an inbound SMS: `<keyword> [<brand name>] [<scope>] [anything]`.
 *
 * The keyword is the first word (refusal, consent or help word). A brand name is matched as whole
 * words, the longest name of any brand winning; a brand name takes precedence over a scope word in
 * that position. The scope defaults to `MESAJ`, the channel the SMS came on. Without a brand name
 * the action is bare and applies to every brand the number serves. A scope word directly after the
 * keyword may still be followed by a brand name (`RET ARAMA MIGROS`), which then narrows the action
 * to that brand. Several scope words, joined by "ve"/"veya"/"ile" or not ("ARAMA VE SMS"), name what
 * they name together. Words after the brand and scope are ignored (given back as `rest`).
 */
export function parseKeyword(
  text: string,
  brands: readonly BrandNames[],
  words: KeywordWords = defaultKeywordWords,
): KeywordParse {
  // An apostrophe straight after the keyword is a word break, not a Turkish suffix: RET'KOTON is
  // "RET KOTON" (folded as a suffix it was a bare RET: every brand on a shared number refused).
  const lead = KEYWORD_APOSTROPHE.exec(text);
  const folded = foldTurkish(lead && isKeyword(foldTurkish(lead[1]!), words) ? `${lead[1]} ${text.slice(lead[0].length)}` : text);
  if (folded === "") return { kind: "unknown", reason: "empty" };
  const tokens = folded.split(" ");
  const keyword = tokens[0] ?? "";

  // "İPTAL ETMEK İSTEMİYORUM": a refusal word with a no on the cancelling is none, wherever the brand or channel is.
  const dontCancel = tokens.some((t) => words.refuse.includes(t)) ? saysDontCancel(tokens, brands, words) : null;
  if (dontCancel !== null) return { kind: "unknown", reason: "negated", word: dontCancel };

  let status: KeywordStatus;
  if (words.refuse.includes(keyword)) status = "RET";
  else if (words.consent.includes(keyword)) status = "ONAY";
  else if (words.help.includes(keyword)) return { kind: "help" };
  else {
    // "MİGROS RET", "SMS İPTAL", "ABONELİK İPTAL": a refusal word after the brands, channels and
    // courtesy words it is said with (never a consent: that one is written as the grammar says).
    const at = tokens.findIndex((t, i) => i > 0 && i <= 3 && words.refuse.includes(t));
    if (at > 0) {
      const others = [...tokens.slice(0, at), ...tokens.slice(at + 1)];
      const said = scanRefusal(others, 0, brands, words, { endings: true });
      if (said.unknown.length === 0) return scannedRefusal(said, refusalTypes(undefined, said.types), brands, others);
    }
    return { kind: "unknown", reason: "no_keyword", word: keyword };
  }

  const brand = matchBrand(tokens, 1, brands);
  if (brand !== null) {
    const scope = scopeRun(tokens, 1 + brand.length, words);
    const rest = tokens.slice(1 + brand.length + (scope?.length ?? 0));
    if (status === "RET") {
      // More brands and channels named after the first ("RET KOTON VE ŞOK", "RET MİGROS ARAMA ve
      // lütfen SMS"): each brand named is refused, on every channel named.
      const more = scanRefusal(rest, 0, brands, words, { afterBrand: true });
      return { kind: "action", status, types: refusalTypes(scope?.types, more.types), brandRef: brand.ref, brands: withMore(brand.codes, more.codes), bare: false, rest };
    }
    return { kind: "action", status, types: [...(scope?.types ?? SMS_ONLY)], brandRef: brand.ref, brands: brand.codes, bare: false, rest };
  }

  const second = tokens[1];
  if (second === undefined) {
    return { kind: "action", status, types: [...SMS_ONLY], brandRef: null, brands: brands.map((b) => b.code), bare: true, rest: [] };
  }
  const scope = scopeRun(tokens, 1, words);
  if (scope === null) {
    // "Ret lütfen", "İptal etmek istiyorum", "DUR ARTIK", "İPTAL ETMEK İSTİYORUM MİGROS": a refusal
    // said with words around it is a refusal of the brands it names, else a bare one. A word that
    // is none of those may be a brand the number does not serve, or a typo of one: the help reply.
    let unknown = second;
    if (status === "RET") {
      const said = scanRefusal(tokens, 1, brands, words);
      unknown = said.unknown[0] ?? second;
      if (said.unknown.length === 0) return scannedRefusal(said, refusalTypes(undefined, said.types), brands, tokens.slice(1));
    }
    return { kind: "unknown", reason: "unknown_brand", word: unknown };
  }

  // "RET ARAMA VE MIGROS": a joiner between the scope and the brand (read as a bare refusal of every
  // brand's calls on a shared number, it refused more than was asked).
  const after = 1 + scope.length + (SCOPE_JOINERS.includes(tokens[1 + scope.length] ?? "") && matchBrand(tokens, 2 + scope.length, brands) ? 1 : 0);
  const brandAfterScope = matchBrand(tokens, after, brands);
  if (brandAfterScope !== null) {
    const rest = tokens.slice(after + brandAfterScope.length);
    const more = status === "RET" ? scanRefusal(rest, 0, brands, words, { afterBrand: true }) : null;
    return {
      kind: "action",
      status,
      types: more ? refusalTypes(scope.types, more.types) : [...scope.types],
      brandRef: brandAfterScope.ref,
      brands: more ? withMore(brandAfterScope.codes, more.codes) : brandAfterScope.codes,
      bare: false,
      rest,
    };
  }
  const rest = tokens.slice(after);
  // "RET ARAMA lütfen MİGROS": the brand named further on narrows the refusal to it.
  if (status === "RET") {
    const more = scanRefusal(rest, 0, brands, words);
    return scannedRefusal(more, refusalTypes(scope.types, more.types), brands, rest);
  }
  return { kind: "action", status, types: [...scope.types], brandRef: null, brands: brands.map((b) => b.code), bare: true, rest };
}
