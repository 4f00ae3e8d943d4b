/**
 * Words that say "no" in what recipients text and callers say, folded (foldTurkish): consent must be
 * explicit, so a consent said together with one of them is not taken (the IVR's menu and
 * confirmation, an SMS's ONAY).
 */

/** Refusing words, Turkish and English: "istemiyorum", "aramayın", "gelmesin", "stop"… */
export const REFUSAL_WORDS: ReadonlySet<string> = new Set([
  "ret", "red", "reddet", "reddediyorum", "hayir", "iptal", "istemiyorum", "istemiyoruz", "istemem", "istemiyom",
  "gelmesin", "gondermeyin", "gondermeyiniz", "aramayin", "aramayiniz", "aramasin", "aramasinlar", "aranmasin", "atmayin", "atmayiniz", "yapmayin",
  "dur", "durdur", "durdurun", "durdurunuz", "refuse", "no", "stop", "unsubscribe",
]);

const NEGATION_WORDS: ReadonlySet<string> = new Set(["degil", "yok", "asla", "hic", "olmaz", "not", "dont", "never", "nope"]);

/** A negative Turkish verb: "vermiyorum", "onaylamadım", "istemeyeceğim", "göndermeyecek". */
const NEGATIVE_VERB = /m[iu]yor|m[ae]d[iu]m?$|m[ae]yacag|m[ae]yecek/;

/** A word that negates what is said ("değil", "not", a negative verb). */
export function negates(word: string): boolean {
  return NEGATION_WORDS.has(word) || NEGATIVE_VERB.test(word);
}
