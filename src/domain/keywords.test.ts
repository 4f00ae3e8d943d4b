import { describe, expect, it } from "vitest";
import { brandNameProblem, defaultKeywordWords, effectiveNumberWords, foldedWords, parseKeyword, type BrandNames, type KeywordParse } from "./keywords";

const MIGROS: BrandNames = { code: "MIGROS", names: ["MİGROS", "MIGROS", "123456"] };
const KOTON: BrandNames = { code: "KOTON", names: ["KOTON", "KTN"] };
const KOTON_KIDS: BrandNames = { code: "KOTONKIDS", names: ["KOTON KIDS", "KOTONKIDS", "654321"] };
const SOK: BrandNames = { code: "SOK", names: ["ŞOK", "ŞOK MARKET", "777777"] };

const oneBrand = [MIGROS];
const threeBrands = [MIGROS, KOTON, KOTON_KIDS];

const refuse = (brandRef: string, brands: string[], types: string[] = ["MESAJ"]): KeywordParse =>
  ({ kind: "action", status: "RET", types, brandRef, brands, bare: false, rest: expect.any(Array) }) as KeywordParse;

describe("parseKeyword: refusal of a named brand", () => {
  it.each([
    "RET MIGROS",
    "ret migros",
    "RET MİGROS",
    "Ret Mıgros",
    "rEt migros",
    "RET  migros",
    "RET\u00a0MIGROS",
    "  RET MIGROS  ",
    "RET\tMIGROS\n",
    "RET MIGROS.",
    "RET, MIGROS!",
    "ＲＥＴ ＭＩＧＲＯＳ",
    "RET,MIGROS",
    "Ret-Migros",
    "RET MİGROS'TAN",
    "ret migros’a",
  ])("reads %j as a refusal of MIGROS messages", (text) => {
    expect(parseKeyword(text, threeBrands)).toEqual(refuse("migros", ["MIGROS"]));
  });

  it("matches a short name with an apostrophe or a symbol whichever apostrophe the phone typed", () => {
    const brands: BrandNames[] = [{ code: "MCD", names: ["McDonald's"] }, { code: "HM", names: ["H&M"] }];
    expect(parseKeyword("RET McDonald’s", brands)).toEqual(refuse("mcdonald", ["MCD"]));
    expect(parseKeyword("ret mcdonald's", brands)).toEqual(refuse("mcdonald", ["MCD"]));
    expect(parseKeyword("RET H&M", brands)).toEqual(refuse("h m", ["HM"]));
    expect(parseKeyword("RET H & M", brands)).toEqual(refuse("h m", ["HM"]));
  });

  it("matches a short name typed without its apostrophe or symbol: MCDONALDS, LOREAL, HM", () => {
    const brands: BrandNames[] = [{ code: "MCD", names: ["McDonald's"] }, { code: "HM", names: ["H&M"] }, { code: "LOR", names: ["L'Oréal Paris"] }];
    expect(parseKeyword("RET MCDONALDS", brands)).toEqual(refuse("mcdonald", ["MCD"]));
    expect(parseKeyword("ret hm arama", brands)).toEqual(refuse("h m", ["HM"], ["ARAMA"]));
    expect(parseKeyword("RET LOREAL PARIS", brands)).toEqual(refuse("l oreal paris", ["LOR"]));
    expect(parseKeyword("RET L OREAL PARIS", brands)).toEqual(refuse("l oreal paris", ["LOR"]));
    expect(parseKeyword("RET HMM", brands)).toMatchObject({ kind: "unknown", reason: "unknown_brand" });
    // A name that, so typed, is a scope word would take RET SMS from the number's brands.
    expect(brandNameProblem("S.M.S")).toMatch(/is a scope word/);
    // One that ends in a scope word would take the scope from a shorter name: RET KOTON TÜMÜ.
    expect(brandNameProblem("Koton Tümü")).toMatch(/"Koton Tümü" ends in the scope word "tumu": "RET Koton Tümü" must keep meaning the calls and messages of the brand named before it/);
    expect(brandNameProblem("H&M-ARAMA")).toMatch(/ends in the scope word "arama"/);
    expect(brandNameProblem("Arama Market")).toBeNull();
    expect(brandNameProblem("Koton Kids")).toBeNull();
  });

  it("ignores trailing words after the brand", () => {
    expect(parseKeyword("RET MIGROS lütfen artık yazmayın", threeBrands)).toEqual(refuse("migros", ["MIGROS"]));
    // Given back (a consent with a "no" among them is not taken: channels/sms/interpret.ts).
    expect(parseKeyword("ONAY MIGROS ARAMA değil", threeBrands)).toMatchObject({ status: "ONAY", types: ["ARAMA"], rest: ["degil"] });
    expect(parseKeyword("ONAY ARAMA MIGROS istemiyorum", threeBrands)).toMatchObject({ status: "ONAY", brands: ["MIGROS"], rest: ["istemiyorum"] });
    expect(parseKeyword("ONAY ARAMA hayır", oneBrand)).toMatchObject({ status: "ONAY", bare: true, rest: ["hayir"] });
    expect(parseKeyword("RET", oneBrand)).toMatchObject({ bare: true, rest: [] });
  });

  it("an apostrophe right after the keyword is a word break, not a suffix taking the brand with it (RET'KOTON)", () => {
    for (const text of ["RET'KOTON", "RET’KOTON", "ret`koton", "RET´KOTON", "İPTAL'KOTON", "  RET'KOTON"]) {
      expect(parseKeyword(text, threeBrands), text).toEqual(refuse("koton", ["KOTON"]));
    }
    // After a brand name it is still the suffix: ´ and ′ typed for it as well.
    expect(parseKeyword("RET MIGROS´TAN ARAMA", threeBrands)).toEqual(refuse("migros", ["MIGROS"], ["ARAMA"]));
    expect(parseKeyword("RET MIGROS′TAN ARAMA", threeBrands)).toEqual(refuse("migros", ["MIGROS"], ["ARAMA"]));
    // A word that is no keyword keeps its suffix rule: nothing parses.
    expect(parseKeyword("RETT'KOTON", threeBrands)).toMatchObject({ kind: "unknown", reason: "no_keyword" });
  });

  it("several scope words name both channels; plural and object forms of a scope word are that scope", () => {
    for (const text of ["RET MIGROS ARAMA VE SMS", "RET MIGROS SMS ARAMA", "ret migros mesaj ve çağrı", "RET MIGROS ARAMA, SMS"]) {
      expect(parseKeyword(text, threeBrands), text).toEqual(refuse("migros", ["MIGROS"], ["MESAJ", "ARAMA"]));
    }
    expect(parseKeyword("RET ARAMA VE SMS MIGROS", threeBrands)).toEqual(refuse("migros", ["MIGROS"], ["MESAJ", "ARAMA"]));
    // A joiner before the brand too: MIGROS alone, not every brand of the number.
    expect(parseKeyword("RET ARAMA VE MIGROS", threeBrands)).toEqual(refuse("migros", ["MIGROS"], ["ARAMA"]));
    expect(parseKeyword("RET ARAMA VE SMS ve Migros", threeBrands)).toEqual(refuse("migros", ["MIGROS"], ["MESAJ", "ARAMA"]));
    expect(parseKeyword("RET ARAMA VE lütfen", threeBrands)).toMatchObject({ bare: true, types: ["ARAMA"], rest: ["ve", "lutfen"] });
    expect(parseKeyword("RET MIGROS ARAMA VE ARAMALAR", threeBrands)).toEqual(refuse("migros", ["MIGROS"], ["ARAMA"]));
    // A channel named further on is refused too (read narrower, SMS stayed on).
    expect(parseKeyword("RET MIGROS ARAMA ve lütfen SMS", threeBrands)).toMatchObject({ types: ["MESAJ", "ARAMA"], rest: ["ve", "lutfen", "sms"] });
    for (const text of ["RET MIGROS ARAMALARI", "RET MIGROS ÇAĞRILAR", "RET MIGROS cagrilari"]) {
      expect(parseKeyword(text, threeBrands), text).toEqual(refuse("migros", ["MIGROS"], ["ARAMA"]));
    }
    for (const text of ["RET MIGROS MESAJLARI", "RET MIGROS SMSLERİ", "RET MIGROS iletiler"]) {
      expect(parseKeyword(text, threeBrands), text).toEqual(refuse("migros", ["MIGROS"], ["MESAJ"]));
    }
  });

  it("matches the İYS brand number", () => {
    expect(parseKeyword("RET 123456", threeBrands)).toEqual(refuse("123456", ["MIGROS"]));
  });

  it("matches a brand code given as a name", () => {
    expect(parseKeyword("RET kotonkids", threeBrands)).toEqual(refuse("kotonkids", ["KOTONKIDS"]));
  });

  it("matches a name written with Turkish letters against any spelling", () => {
    for (const text of ["RET ŞOK", "RET SOK", "ret şok", "RET Şok."]) {
      expect(parseKeyword(text, [SOK])).toEqual(refuse("sok", ["SOK"]));
    }
  });

  it("matches whatever the case of the configured names", () => {
    const lower: BrandNames = { code: "MIGROS", names: ["mıgros"] };
    expect(parseKeyword("RET MİGROS", [lower])).toEqual(refuse("migros", ["MIGROS"]));
  });

  it.each(["IPTAL migros", "İPTAL MIGROS", "iptal Migros", "DUR MIGROS", "STOP MIGROS"])(
    "reads %j as a refusal with another refusal word",
    (text) => {
      expect(parseKeyword(text, threeBrands)).toEqual(refuse("migros", ["MIGROS"]));
    },
  );
});

describe("parseKeyword: scope", () => {
  it("refuses calls with ARAMA after the brand", () => {
    expect(parseKeyword("RET MIGROS ARAMA", threeBrands)).toEqual(refuse("migros", ["MIGROS"], ["ARAMA"]));
  });

  it("refuses calls with ÇAĞRI and ARAMALAR too", () => {
    expect(parseKeyword("RET MIGROS ÇAĞRI", threeBrands)).toEqual(refuse("migros", ["MIGROS"], ["ARAMA"]));
    expect(parseKeyword("RET MIGROS cagri", threeBrands)).toEqual(refuse("migros", ["MIGROS"], ["ARAMA"]));
    expect(parseKeyword("RET MIGROS aramalar", threeBrands)).toEqual(refuse("migros", ["MIGROS"], ["ARAMA"]));
  });

  it("refuses messages with MESAJ, SMS or İLETİ after the brand", () => {
    for (const scope of ["MESAJ", "SMS", "İLETİ", "ileti"]) {
      expect(parseKeyword(`RET MIGROS ${scope}`, threeBrands)).toEqual(refuse("migros", ["MIGROS"], ["MESAJ"]));
    }
  });

  it.each(["TÜMÜ", "TUMU", "tümü", "HEPSİ", "HEPSI", "hepsi"])("refuses both phone channels with %j", (scope) => {
    expect(parseKeyword(`RET MIGROS ${scope}`, threeBrands)).toEqual(refuse("migros", ["MIGROS"], ["MESAJ", "ARAMA"]));
  });

  it("keeps the default scope when the word after the brand is not a scope word, and adds a channel a refusal names further on", () => {
    expect(parseKeyword("RET MIGROS lütfen", threeBrands)).toEqual(refuse("migros", ["MIGROS"]));
    expect(parseKeyword("RET MIGROS lütfen ARAMA", threeBrands)).toMatchObject({ brands: ["MIGROS"], types: ["MESAJ", "ARAMA"] });
    // A consent is not widened: the words after the brand are not its scope (the interpreter doubts it).
    expect(parseKeyword("ONAY MIGROS lütfen ARAMA", threeBrands)).toMatchObject({ status: "ONAY", types: ["MESAJ"], rest: ["lutfen", "arama"] });
  });

  it("ignores words after the scope", () => {
    expect(parseKeyword("RET MIGROS ARAMA artık aramayın", threeBrands)).toEqual(refuse("migros", ["MIGROS"], ["ARAMA"]));
  });

  it("returns a fresh types array on every call", () => {
    const first = parseKeyword("RET MIGROS", oneBrand);
    if (first.kind !== "action") throw new Error("expected an action");
    first.types.push("ARAMA");
    expect(parseKeyword("RET MIGROS", oneBrand)).toEqual(refuse("migros", ["MIGROS"]));
  });
});

describe("parseKeyword: bare keywords", () => {
  it("applies a bare RET to the only brand of a one-brand number", () => {
    expect(parseKeyword("RET", oneBrand)).toEqual({
      kind: "action",
      status: "RET",
      types: ["MESAJ"],
      brandRef: null,
      brands: ["MIGROS"],
      bare: true,
      rest: [],
    });
  });

  it("applies a bare RET to every brand of a shared number, in the given order", () => {
    expect(parseKeyword("RET", threeBrands)).toEqual({
      kind: "action",
      status: "RET",
      types: ["MESAJ"],
      brandRef: null,
      brands: ["MIGROS", "KOTON", "KOTONKIDS"],
      bare: true,
      rest: [],
    });
  });

  it.each(["İPTAL", "iptal", "IPTAL", "DUR", "STOP", "ret."])("reads %j as a bare refusal", (text) => {
    expect(parseKeyword(text, oneBrand)).toMatchObject({ kind: "action", status: "RET", bare: true, brands: ["MIGROS"] });
  });

  it("reads a scope word directly after the keyword as a bare action with that scope", () => {
    expect(parseKeyword("RET ARAMA", threeBrands)).toEqual({
      kind: "action",
      status: "RET",
      types: ["ARAMA"],
      brandRef: null,
      brands: ["MIGROS", "KOTON", "KOTONKIDS"],
      bare: true,
      rest: [],
    });
    expect(parseKeyword("RET TÜMÜ", oneBrand)).toMatchObject({ bare: true, types: ["MESAJ", "ARAMA"] });
  });

  it("ignores trailing words after a bare scope that are not a brand name", () => {
    expect(parseKeyword("RET ARAMA lütfen", threeBrands)).toMatchObject({
      bare: true,
      rest: ["lutfen"],
      types: ["ARAMA"],
      brands: ["MIGROS", "KOTON", "KOTONKIDS"],
    });
  });

  it("narrows a scope-first refusal to the brand named after the scope", () => {
    expect(parseKeyword("RET ARAMA MIGROS", threeBrands)).toEqual(refuse("migros", ["MIGROS"], ["ARAMA"]));
  });

  it("returns no brands for a bare keyword on a number that serves none", () => {
    expect(parseKeyword("RET", [])).toMatchObject({ kind: "action", bare: true, brands: [] });
  });
});

describe("parseKeyword: consent", () => {
  it("reads ONAY with a brand as a consent for that brand", () => {
    expect(parseKeyword("ONAY MIGROS", threeBrands)).toEqual({
      kind: "action",
      status: "ONAY",
      types: ["MESAJ"],
      brandRef: "migros",
      brands: ["MIGROS"],
      bare: false,
      rest: [],
    });
  });

  it("reads a bare EVET as a consent for every brand of the number", () => {
    expect(parseKeyword("EVET", threeBrands)).toMatchObject({
      kind: "action",
      status: "ONAY",
      bare: true,
      rest: [],
      brands: ["MIGROS", "KOTON", "KOTONKIDS"],
    });
  });

  it("reads START with a scope as a consent for that channel", () => {
    expect(parseKeyword("start koton arama", threeBrands)).toMatchObject({ status: "ONAY", brands: ["KOTON"], types: ["ARAMA"] });
  });
});

describe("parseKeyword: help", () => {
  it.each(["YARDIM", "yardım", "Yardim", "BİLGİ", "bilgi", "BILGI", "HELP", "help?"])("reads %j as a help request", (text) => {
    expect(parseKeyword(text, threeBrands)).toEqual({ kind: "help" });
  });

  it("reads a help word followed by anything as a help request", () => {
    expect(parseKeyword("YARDIM MIGROS", threeBrands)).toEqual({ kind: "help" });
  });
});

describe("parseKeyword: longest brand name", () => {
  it("prefers the two-word brand over a one-word brand sharing its first word", () => {
    expect(parseKeyword("RET KOTON KIDS", threeBrands)).toEqual(refuse("koton kids", ["KOTONKIDS"]));
  });

  it("matches the one-word brand when the second word is absent", () => {
    expect(parseKeyword("RET KOTON", threeBrands)).toEqual(refuse("koton", ["KOTON"]));
  });

  it("matches the one-word brand when the second word is something else", () => {
    expect(parseKeyword("RET KOTON ARAMA", threeBrands)).toEqual(refuse("koton", ["KOTON"], ["ARAMA"]));
    expect(parseKeyword("RET KOTON KID", threeBrands)).toEqual(refuse("koton", ["KOTON"]));
  });

  it("does not depend on the order of brands or names", () => {
    expect(parseKeyword("RET KOTON KIDS", [KOTON_KIDS, KOTON, MIGROS])).toEqual(refuse("koton kids", ["KOTONKIDS"]));
    const kidsFirst: BrandNames = { code: "KOTONKIDS", names: ["KOTONKIDS", "KOTON KIDS"] };
    expect(parseKeyword("RET KOTON KIDS ARAMA", [kidsFirst, KOTON])).toEqual(refuse("koton kids", ["KOTONKIDS"], ["ARAMA"]));
  });

  it("matches a multi-word name typed with extra spaces and Turkish letters", () => {
    expect(parseKeyword("ret  şok\u00a0market tümü", [SOK])).toEqual(refuse("sok market", ["SOK"], ["MESAJ", "ARAMA"]));
  });

  it("matches brand names as whole words only", () => {
    expect(parseKeyword("RET MIGROSX", oneBrand)).toEqual({ kind: "unknown", reason: "unknown_brand", word: "migrosx" });
    expect(parseKeyword("RET KOTONKIDSX", threeBrands)).toEqual({ kind: "unknown", reason: "unknown_brand", word: "kotonkidsx" });
  });
});

describe("parseKeyword: misconfigured shared names", () => {
  it("returns every brand answering to the same name", () => {
    const a: BrandNames = { code: "A", names: ["ORTAK"] };
    const b: BrandNames = { code: "B", names: ["Ortak", "BEE"] };
    expect(parseKeyword("RET ORTAK", [a, b])).toEqual(refuse("ortak", ["A", "B"]));
  });

  it("lists a brand once when two of its names fold to the same word", () => {
    expect(parseKeyword("RET MIGROS", [MIGROS])).toEqual(refuse("migros", ["MIGROS"]));
  });
});

describe("parseKeyword: what does not parse", () => {
  it("reports an unknown brand with the word", () => {
    expect(parseKeyword("RET XYZ", threeBrands)).toEqual({ kind: "unknown", reason: "unknown_brand", word: "xyz" });
  });

  it("reports an unknown brand even on a one-brand number", () => {
    expect(parseKeyword("RET MİGRSO", oneBrand)).toEqual({ kind: "unknown", reason: "unknown_brand", word: "migrso" });
  });

  it("reports a text without a keyword", () => {
    expect(parseKeyword("MERHABA", threeBrands)).toEqual({ kind: "unknown", reason: "no_keyword", word: "merhaba" });
    expect(parseKeyword("MIGROS ONAY", threeBrands)).toEqual({ kind: "unknown", reason: "no_keyword", word: "migros" });
    expect(parseKeyword("merhaba RET", threeBrands)).toEqual({ kind: "unknown", reason: "no_keyword", word: "merhaba" });
  });

  it("does not take a keyword glued to the brand", () => {
    expect(parseKeyword("RETMIGROS", threeBrands)).toEqual({ kind: "unknown", reason: "no_keyword", word: "retmigros" });
  });

  it.each(["", "   ", "\u00a0\n\t", "...", "\u200b"])("reports %j as empty", (text) => {
    expect(parseKeyword(text, threeBrands)).toEqual({ kind: "unknown", reason: "empty" });
  });
});

describe("foldedWords and custom lists", () => {
  it("stores the default words folded and without duplicates", () => {
    expect(defaultKeywordWords).toEqual({
      refuse: ["ret", "red", "hayir", "iptal", "dur", "stop"],
      consent: ["onay", "evet", "start"],
      help: ["yardim", "bilgi", "help"],
      scopeCalls: ["arama", "aramalar", "aramalari", "cagri", "cagrilar", "cagrilari"],
      scopeSms: ["mesaj", "mesajlar", "mesajlari", "sms", "smsler", "smsleri", "ileti", "iletiler", "iletileri"],
      scopeAll: ["tumu", "hepsi"],
    });
  });

  it("folds custom words and keeps the defaults for categories not given", () => {
    const words = foldedWords({ refuse: ["İSTEMİYORUM", "Çık"] });
    expect(words.refuse).toEqual(["istemiyorum", "cik"]);
    expect(words.consent).toEqual(defaultKeywordWords.consent);
    expect(words.scopeAll).toEqual(defaultKeywordWords.scopeAll);
  });

  it("parses with a custom refusal word and no longer accepts the replaced ones", () => {
    const words = foldedWords({ refuse: ["İSTEMİYORUM"] });
    expect(parseKeyword("istemiyorum migros", oneBrand, words)).toEqual(refuse("migros", ["MIGROS"]));
    expect(parseKeyword("RET MIGROS", oneBrand, words)).toEqual({ kind: "unknown", reason: "no_keyword", word: "ret" });
  });

  it("parses with custom scope and help words", () => {
    const words = foldedWords({ scopeCalls: ["TELEFON"], help: ["NE"] });
    expect(parseKeyword("RET MIGROS telefon", oneBrand, words)).toEqual(refuse("migros", ["MIGROS"], ["ARAMA"]));
    // The channel words' stems are read whatever the lists (ARAMA, ARAMAYI, ÇAĞRILARINI…).
    expect(parseKeyword("RET MIGROS ARAMA", oneBrand, words)).toEqual(refuse("migros", ["MIGROS"], ["ARAMA"]));
    expect(parseKeyword("ne?", oneBrand, words)).toEqual({ kind: "help" });
  });

  it("rejects a keyword that folds to nothing or to several words", () => {
    expect(() => foldedWords({ refuse: ["..."] })).toThrow(RangeError);
    expect(() => foldedWords({ consent: ["BANA YAZ"] })).toThrow(/exactly one word/);
  });

  it("rejects a word in two keyword categories", () => {
    expect(() => foldedWords({ consent: ["ONAY", "STOP"] })).toThrow(/stop.*refuse.*consent/);
  });

  it("rejects a word in two scope categories", () => {
    expect(() => foldedWords({ scopeSms: ["MESAJ", "ARAMA"] })).toThrow(/arama/);
  });

  it("accepts the same word as a help word and as a scope word, never as a refusal word and a scope word", () => {
    const words = foldedWords({ help: ["SMS"] });
    expect(parseKeyword("SMS", oneBrand, words)).toEqual({ kind: "help" });
    expect(parseKeyword("RET MIGROS SMS", oneBrand, words)).toEqual(refuse("migros", ["MIGROS"]));
    // Not a refusal word: "ONAY MIGROS RET" would read RET as a scope, the consent recorded past the "no".
    expect(() => foldedWords({ scopeCalls: ["RET"] })).toThrow(/"ret" is in both refuse and scopeCalls/);
  });
});

describe("parseKeyword: refusals and consents as people text them", () => {
  it.each([
    ["RET MİGROS ARAMALARINI", ["ARAMA"]],
    ["RET MIGROS ÇAĞRILARINIZI", ["ARAMA"]],
    ["RET MIGROS SMSLERİNİ", ["MESAJ"]],
    ["RET MIGROS HEPSİNİ", ["MESAJ", "ARAMA"]],
    ["RET MIGROS TÜMÜNÜ", ["MESAJ", "ARAMA"]],
    ["RET MIGROS HER İKİSİ", ["MESAJ", "ARAMA"]],
    ["RET MIGROS İKİSİ DE", ["MESAJ", "ARAMA"]],
    ["RET MIGROS SESLİ ARAMA", ["ARAMA"]],
  ])("%j: a channel word with a Turkish ending is that channel", (text, types) => {
    expect(parseKeyword(text, threeBrands)).toMatchObject({ status: "RET", brands: ["MIGROS"], types });
  });

  it("a consent's channel word with an ending is that channel, never SMS by default; one said with a no is no scope", () => {
    expect(parseKeyword("ONAY MİGROS ARAMAYI", threeBrands)).toMatchObject({ status: "ONAY", brands: ["MIGROS"], types: ["ARAMA"], rest: [] });
    expect(parseKeyword("EVET MIGROS ÇAĞRILAR VE MESAJLAR", threeBrands)).toMatchObject({ status: "ONAY", types: ["MESAJ", "ARAMA"], rest: [] });
    expect(parseKeyword("ONAY MIGROS aramayın", threeBrands)).toMatchObject({ status: "ONAY", types: ["MESAJ"], rest: ["aramayin"] });
  });

  it.each([
    ["Ret lütfen", ["MESAJ"]],
    ["İptal etmek istiyorum", ["MESAJ"]],
    ["DUR ARTIK", ["MESAJ"]],
    ["IPTAL ET", ["MESAJ"]],
    ["STOP ALL", ["MESAJ", "ARAMA"]],
    ["RET HEPSİNİ", ["MESAJ", "ARAMA"]],
    ["RET lütfen aramayın", ["MESAJ", "ARAMA"]],
  ])("%j: a refusal said with words around it refuses (bare, on the number's brands)", (text, types) => {
    expect(parseKeyword(text, oneBrand)).toMatchObject({ kind: "action", status: "RET", bare: true, brands: ["MIGROS"], types });
    expect(parseKeyword(text, threeBrands)).toMatchObject({ kind: "action", status: "RET", bare: true, brands: ["MIGROS", "KOTON", "KOTONKIDS"], types });
  });

  it("a refusal names its brands wherever they are, each of them, with a case ending or not", () => {
    expect(parseKeyword("İptal etmek istiyorum MİGROS", threeBrands)).toMatchObject({ bare: false, brands: ["MIGROS"], types: ["MESAJ"] });
    expect(parseKeyword("RET MIGROSTAN", oneBrand)).toMatchObject({ bare: false, brands: ["MIGROS"], brandRef: "migros" });
    expect(parseKeyword("RET KOTONA ARAMA", threeBrands)).toMatchObject({ brands: ["KOTON"], types: ["ARAMA"] });
    expect(parseKeyword("RET ŞOK KOTON", [KOTON, SOK])).toMatchObject({ brands: ["SOK", "KOTON"], types: ["MESAJ"] });
    expect(parseKeyword("RET KOTON VE ŞOK", [KOTON, SOK])).toMatchObject({ brands: ["KOTON", "SOK"], types: ["MESAJ"] });
    expect(parseKeyword("RET KOTON, ŞOK ARAMA", [KOTON, SOK])).toMatchObject({ brands: ["KOTON", "SOK"], types: ["MESAJ", "ARAMA"] });
    expect(parseKeyword("RET ARAMA KOTON VE ŞOK", [KOTON, SOK])).toMatchObject({ brands: ["KOTON", "SOK"], types: ["ARAMA"] });
    expect(parseKeyword("RET ARAMA lütfen ŞOK", [KOTON, SOK])).toMatchObject({ bare: false, brands: ["SOK"], types: ["ARAMA"] });
    // A brand whose name starts like a channel word stays a brand.
    const HB: BrandNames = { code: "HB", names: ["HEPSİBURADA"] };
    const SB: BrandNames = { code: "SB", names: ["SMSBANK"] };
    expect(parseKeyword("RET KOTON HEPSİBURADA", [KOTON, HB])).toMatchObject({ brands: ["KOTON", "HB"], types: ["MESAJ"] });
    expect(parseKeyword("RET ARAMA HEPSİBURADA", [KOTON, HB])).toMatchObject({ bare: false, brands: ["HB"], types: ["ARAMA"] });
    expect(parseKeyword("RET ARAMA SMSBANK", [KOTON, SB])).toMatchObject({ bare: false, brands: ["SB"], types: ["ARAMA"] });
    // The exact name wins over a longer word that only starts with it; an ending is no brand of 2 letters.
    expect(parseKeyword("RET KOTONKIDSX", threeBrands)).toMatchObject({ kind: "unknown" });
    expect(parseKeyword("RET HMA", [{ code: "HM", names: ["HM"] }])).toMatchObject({ kind: "unknown", reason: "unknown_brand" });
  });

  it("a word that may be a brand the number does not serve, or a typo of one, still gets the help reply (no brand refused that was not named)", () => {
    expect(parseKeyword("RET BIM", oneBrand)).toEqual({ kind: "unknown", reason: "unknown_brand", word: "bim" });
    expect(parseKeyword("RET lütfen BIM", threeBrands)).toEqual({ kind: "unknown", reason: "unknown_brand", word: "bim" });
    // Consents are never read from around unknown words.
    expect(parseKeyword("ONAY lütfen", oneBrand)).toMatchObject({ kind: "unknown", reason: "unknown_brand" });
  });
});

describe("parseKeyword: refusal words besides the first", () => {
  it("RED and HAYIR refuse; a refusal word after the brand or the channel refuses too", () => {
    expect(parseKeyword("HAYIR", oneBrand)).toMatchObject({ status: "RET", bare: true, brands: ["MIGROS"], types: ["MESAJ"] });
    expect(parseKeyword("RED MIGROS", threeBrands)).toMatchObject({ status: "RET", bare: false, brands: ["MIGROS"] });
    expect(parseKeyword("Hayır Migros", threeBrands)).toMatchObject({ status: "RET", brands: ["MIGROS"] });
    expect(parseKeyword("MIGROS RET", threeBrands)).toMatchObject({ status: "RET", bare: false, brands: ["MIGROS"], types: ["MESAJ"] });
    expect(parseKeyword("MİGROS ARAMA İPTAL", threeBrands)).toMatchObject({ status: "RET", brands: ["MIGROS"], types: ["MESAJ", "ARAMA"] });
    expect(parseKeyword("SMS İPTAL", threeBrands)).toMatchObject({ status: "RET", bare: true, brands: ["MIGROS", "KOTON", "KOTONKIDS"], types: ["MESAJ"] });
    expect(parseKeyword("ABONELİK İPTAL", oneBrand)).toMatchObject({ status: "RET", bare: true, brands: ["MIGROS"] });
  });
});

describe("parseKeyword: what must not be read into a text (review cases)", () => {
  it("a channel said with a no is never a consent's channel", () => {
    expect(parseKeyword("ONAY MİGROS SMS ARANMASIN", threeBrands)).toMatchObject({ status: "ONAY", types: ["MESAJ"], rest: ["aranmasin"] });
    expect(parseKeyword("EVET MİGROS ARAMASINLAR", threeBrands)).toMatchObject({ status: "ONAY", types: ["MESAJ"], rest: ["aramasinlar"] });
    expect(parseKeyword("ONAY ARANMASIN", oneBrand)).toMatchObject({ kind: "unknown", reason: "unknown_brand" });
    // "sesli mesaj" (a voice message) names no channel the grammar knows: left to the interpreter's doubt.
    expect(parseKeyword("ONAY MİGROS SESLİ MESAJ", threeBrands)).toMatchObject({ status: "ONAY", types: ["MESAJ"], rest: ["sesli", "mesaj"] });
  });

  it.each([
    "İPTAL ETMEK İSTEMİYORUM",
    "İPTAL ETMEYİN MİGROS",
    "RET ETMİYORUM",
    "MİGROS İPTAL ETMEK İSTEMİYORUM",
    "SMS İPTAL DEĞİL",
    "İPTAL MİGROS ETMEK İSTEMİYORUM",
    "RET MİGROS ETMİYORUM",
    "İPTAL ETMEK İSTEMİYORUM ARAMA",
    "RET ARAMA ETMİYORUM",
  ])(
    "%j (don't cancel) is no refusal: the help reply",
    (text) => {
      expect(parseKeyword(text, threeBrands)).toMatchObject({ kind: "unknown" });
    },
  );

  it.each(["RET MİGROS rahatsız etmeyin", "RET ARAMA rahatsız etmeyin", "İPTAL ET MESAJ İSTEMİYORUM", "RET MİGROS iptal etmenizi istiyorum", "RET MİGROS şikayet etmeden önce son uyarı"])(
    "%j (a courtesy or a request with etmek) is still a refusal",
    (text) => {
      expect(parseKeyword(text, threeBrands)).toMatchObject({ kind: "action", status: "RET" });
    },
  );

  it.each(["RET, istemiyorum", "RET istemiyorum artık", "İPTAL istemiyorum", "HAYIR istemiyorum", "İstemiyorum RET", "Ret lütfen beni listeden çıkarın istemiyorum", "RET asla", "STOP dont", "Ret, mesaj istemiyorum"])(
    "%j (a no on the messages) is a refusal",
    (text) => {
      expect(parseKeyword(text, oneBrand)).toMatchObject({ kind: "action", status: "RET", brands: ["MIGROS"] });
    },
  );

  it("a name ending like a negative verb (KORKMAZ, YILMAZ, SÖNMEZ) is an unknown word, not a no: the help reply, no bare refusal of every brand", () => {
    for (const text of ["RET KORKMAZ", "RET YILMAZ", "KORKMAZ RET", "RET SÖNMEZ", "RET FİRMAYIZ"]) {
      expect(parseKeyword(text, threeBrands)).toMatchObject({ kind: "unknown" });
    }
    expect(parseKeyword("RET, istemem", threeBrands)).toMatchObject({ kind: "action", status: "RET", bare: true });
  });

  it("a brand past the first word is named exactly, or with its case ending after another brand, a joiner, or before the refusal word", () => {
    expect(parseKeyword("RET MİGROS ÇOK ŞOKA UĞRADIM", [MIGROS, SOK])).toMatchObject({ brands: ["MIGROS"] });
    expect(parseKeyword("RET MİGROS VE ŞOK", [MIGROS, SOK])).toMatchObject({ brands: ["MIGROS", "SOK"] });
    expect(parseKeyword("RET MİGROS VE ŞOKU", [MIGROS, SOK])).toMatchObject({ brands: ["MIGROS", "SOK"] });
    expect(parseKeyword("RET MİGROS ŞOKU da", [MIGROS, SOK])).toMatchObject({ brands: ["MIGROS", "SOK"] });
    // After a channel word, as after a brand.
    expect(parseKeyword("RET MİGROS SMS ŞOKU", [MIGROS, SOK])).toMatchObject({ brands: ["MIGROS", "SOK"], types: ["MESAJ"] });
    expect(parseKeyword("RET MİGROS ARAMA VE ŞOKU", [MIGROS, SOK])).toMatchObject({ brands: ["MIGROS", "SOK"], types: ["ARAMA"] });
    expect(parseKeyword("RET SMS MİGROSU ŞOKU", [MIGROS, SOK])).toMatchObject({ brands: ["MIGROS", "SOK"], types: ["MESAJ"] });
    expect(parseKeyword("RET MİGROS ARAMA ÇOK ŞOKA UĞRADIM", [MIGROS, SOK])).toMatchObject({ brands: ["MIGROS"] });
    expect(parseKeyword("KOTONU İPTAL", threeBrands)).toMatchObject({ status: "RET", brands: ["KOTON"] });
    expect(parseKeyword("MİGROS istemiyorum RET", threeBrands)).toMatchObject({ status: "RET", brands: ["MIGROS"] });
    expect(parseKeyword("RET istemiyorum KOTON", threeBrands)).toMatchObject({ status: "RET", brands: ["KOTON"] });
  });

  it("a brand name that is a channel word by its stem is refused (STOP ALL keeps meaning both channels)", () => {
    expect(brandNameProblem("ALL")).toMatch(/is a channel word/);
    expect(brandNameProblem("Tüm")).toMatch(/is a channel word/);
    expect(brandNameProblem("Koton Aramalarını")).toMatch(/ends in the channel word "aramalarini"/);
    expect(brandNameProblem("Hepsiburada")).toBeNull();
  });

  it("reads a refusal's first 40 words: a longer text around a refusal word is no command (the help reply)", () => {
    expect(parseKeyword(`RET ${"lütfen ".repeat(30)}KOTON`, threeBrands)).toMatchObject({ kind: "action", brands: ["KOTON"] });
    expect(parseKeyword(`RET ${"lütfen ".repeat(45)}KOTON`, threeBrands)).toMatchObject({ kind: "unknown" });
    // The grammar's own order still reads as before whatever follows.
    expect(parseKeyword(`RET KOTON ${"lütfen ".repeat(10_000)}`, threeBrands)).toMatchObject({ kind: "action", brands: ["KOTON"] });
  });
});

describe("effectiveNumberWords: words stored before the defaults grew", () => {
  it("a stored word a default now holds in another category is dropped, the number's other words kept", () => {
    const words = effectiveNumberWords({ consent: ["RED", "TAMAM"], scopeCalls: ["TELEFON"] });
    expect(words.refuse).toContain("red");
    expect(words.consent).toContain("tamam");
    expect(words.consent).not.toContain("red");
    expect(words.scopeCalls).toContain("telefon");
  });
});
