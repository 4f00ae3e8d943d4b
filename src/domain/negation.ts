/**
 * Words that say "no" in what recipients text and callers say, folded (foldTurkish): consent must be
 * explicit, so a consent said together with one of them is not taken (the IVR's menu and
 * confirmation, an SMS's ONAY).
 */

/** Refusing words, Turkish and English: "istemiyorum", "aramayın", "gelmesin", "stop"… */
export const REFUSAL_WORDS: ReadonlySet<string> = new Set([
  "ret", "red", "reddet", "reddediyorum", "hayir", "iptal", "istemiyorum", "istemiyoruz", "istemem", "istemiyom",
  // "gönderme", "yapma": the singular imperatives ("SMS gönderme", "arama yapma"), as "göndermeyin" is the plural.
  "gelmesin", "gonderme", "gondermeyin", "gondermeyiniz", "yapma", "aramayin", "aramayiniz", "aramasin", "aramasinlar", "aranmasin", "atmayin", "atmayiniz", "yapmayin",
  "dur", "durdur", "durdurun", "durdurunuz", "refuse", "no", "stop", "unsubscribe",
  // Said of the brand: "mesaj gönderilmesin", "mesaj atmasınlar", "arama yapmasınlar", "gelmesinler".
  "gonderilmesin", "gondermesin", "gondermesinler", "atmasin", "atmasinlar", "yapmasin", "yapmasinlar", "gelmesinler", "aranmayayim",
]);

const NEGATION_WORDS: ReadonlySet<string> = new Set([
  "degil", "yok", "asla", "hic", "olmaz", "not", "dont", "never", "nope",
  "wont", "cant", "cannot", "didnt", "doesnt", "wouldnt", "shouldnt", "isnt", "arent", "nor",
  // Negative imperatives that are also nouns ("onaylama": approving): a no is the safe reading.
  "etme", "verme", "onaylama",
]);

/**
 * A negative Turkish verb, folded: the progressive "vermiyorum", the past "onaylamadım", the future
 * "istemeyeceğim", "göndermeyecek", "etmeyecek", the imperative "etmeyin", "yapmayınız"; the aorist
 * ("etmem", "vermem", "onaylamam", "edemem", "etmez", "kabul etmeyiz") only of the verbs a consent or
 * refusal is said with: "-maz"/"-mez" ends many names (Korkmaz, Yılmaz, Sönmez), which must stay
 * unknown words (a possible brand: the help reply), not a "no".
 */
const NEGATIVE_VERB = /m[iu]yor|m[ae]d[iu]m?$|m[ae]y[ae]c[ae][gk]|m[ae]y[iu]n(?:[iu]z)?$/;
const NEGATIVE_AORIST = /^(?:et|ed|ver|iste|onayla|gel|gonder|ara|aran|at|yap|bil|ol)[ae]?m[ae](?:m|z|y[iu]z|zs[iu]n|zs[iu]n[iu]z|zl[ae]r)$/;

/** A word that negates what is said ("değil", "not", "won't", a negative verb). */
export function negates(word: string): boolean {
  return NEGATION_WORDS.has(word) || NEGATIVE_VERB.test(word) || NEGATIVE_AORIST.test(word);
}
