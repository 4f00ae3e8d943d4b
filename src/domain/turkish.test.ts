import { describe, expect, it } from "vitest";
import { foldTurkish } from "./turkish";

describe("foldTurkish: Turkish letters", () => {
  it("folds dotted and dotless I in both cases to i", () => {
    expect(foldTurkish("İ I ı i")).toBe("i i i i");
  });

  it("folds İ to a single code point, without the combining dot that toLowerCase leaves", () => {
    const folded = foldTurkish("İPTAL");
    expect(folded).toBe("iptal");
    expect(folded).toHaveLength(5);
    expect(folded).not.toContain("\u0307");
  });

  it("strips a combining dot above left after an i", () => {
    expect(foldTurkish("i\u0307ptal")).toBe("iptal");
  });

  it("treats I followed by a combining dot above like İ", () => {
    expect(foldTurkish("I\u0307PTAL")).toBe("iptal");
  });

  it("folds ç ğ ö ş ü and their capitals to c g o s u", () => {
    expect(foldTurkish("Ç ç Ğ ğ Ö ö Ş ş Ü ü")).toBe("c c g g o o s s u u");
  });

  it("folds the decomposed forms of Turkish letters the same as the precomposed ones", () => {
    const decomposed = "C\u0327G\u0306O\u0308S\u0327U\u0308";
    expect(foldTurkish(decomposed)).toBe("cgosu");
    expect(foldTurkish(decomposed)).toBe(foldTurkish("ÇĞÖŞÜ"));
  });

  it("removes circumflexes and other accents", () => {
    expect(foldTurkish("Kâr îmâ ümît Hûlya café")).toBe("kar ima umit hulya cafe");
  });

  it("lower-cases ASCII letters", () => {
    expect(foldTurkish("rEt MiGrOs")).toBe("ret migros");
  });

  it("lower-cases non-Turkish letters and strips their accents", () => {
    expect(foldTurkish("ΣΩ ÆØÅ")).toBe("σω æøa");
  });

  it("gives the same result for every spelling of a brand name", () => {
    const spellings = ["MİGROS", "MIGROS", "Mıgros", "migros", "Migros", "mİgros", "MIGROS."];
    for (const s of spellings) expect(foldTurkish(s)).toBe("migros");
  });

  it("folds whole Turkish sentences", () => {
    expect(foldTurkish("İSTANBUL ŞİMDİ ÇOK GÜZEL ĞÜŞİÖÇ")).toBe("istanbul simdi cok guzel gusioc");
    expect(foldTurkish("Iğdır ılık")).toBe("igdir ilik");
  });
});

describe("foldTurkish: Unicode normalisation", () => {
  it("applies NFKC to full-width letters, ligatures and superscripts", () => {
    expect(foldTurkish("ＲＥＴ ＭＩＧＲＯＳ")).toBe("ret migros");
    expect(foldTurkish("ﬁle")).toBe("file");
    expect(foldTurkish("x²")).toBe("x2");
  });

  it("keeps digits, including full-width ones as ASCII", () => {
    expect(foldTurkish("123456")).toBe("123456");
    expect(foldTurkish("１２３")).toBe("123");
  });
});

describe("foldTurkish: whitespace", () => {
  it("trims leading and trailing whitespace", () => {
    expect(foldTurkish("  RET MIGROS  ")).toBe("ret migros");
  });

  it("collapses runs of spaces to one", () => {
    expect(foldTurkish("RET    MIGROS")).toBe("ret migros");
  });

  it.each([
    ["no-break space", "\u00a0"],
    ["narrow no-break space", "\u202f"],
    ["tab", "\t"],
    ["line feed", "\n"],
    ["carriage return and line feed", "\r\n"],
    ["zero-width space", "\u200b"],
    ["byte order mark", "\ufeff"],
    ["word joiner", "\u2060"],
    ["ideographic space", "\u3000"],
    ["em space", "\u2003"],
    ["line separator", "\u2028"],
    ["next line", "\u0085"],
  ])("treats a %s as a space between words", (_name, space) => {
    expect(foldTurkish(`RET${space}MIGROS`)).toBe("ret migros");
    expect(foldTurkish(`${space}RET${space}${space}MIGROS${space}`)).toBe("ret migros");
  });

  it("removes invisible format characters inside a word", () => {
    expect(foldTurkish("MIG\u00adROS")).toBe("migros");
    expect(foldTurkish("\u200eRET\u200f MIGROS")).toBe("ret migros");
  });

  it("returns an empty string for empty or whitespace-only input", () => {
    expect(foldTurkish("")).toBe("");
    expect(foldTurkish("   ")).toBe("");
    expect(foldTurkish("\u00a0\t\n\u200b\ufeff")).toBe("");
  });
});

describe("foldTurkish: punctuation", () => {
  it("strips punctuation at the end of a word", () => {
    expect(foldTurkish("RET MIGROS.")).toBe("ret migros");
    expect(foldTurkish("RET, MIGROS!")).toBe("ret migros");
    expect(foldTurkish("RET MIGROS?!;:")).toBe("ret migros");
  });

  it("strips quotes and brackets around words", () => {
    expect(foldTurkish("\"RET\" 'MIGROS'")).toBe("ret migros");
    expect(foldTurkish("«RET» (MIGROS)")).toBe("ret migros");
  });

  it("drops a word made only of punctuation", () => {
    expect(foldTurkish("RET - MIGROS")).toBe("ret migros");
    expect(foldTurkish("...")).toBe("");
  });

  it("breaks words at punctuation inside them", () => {
    expect(foldTurkish("H&M")).toBe("h m");
    expect(foldTurkish("RET,MIGROS")).toBe("ret migros");
    expect(foldTurkish("Ret-Migros")).toBe("ret migros");
    expect(foldTurkish("no:12345")).toBe("no 12345");
  });

  it("drops an apostrophe and the Turkish suffix after it, whichever apostrophe the phone typed", () => {
    expect(foldTurkish("RET MİGROS'TAN")).toBe("ret migros");
    expect(foldTurkish("ret migros’a")).toBe("ret migros");
    expect(foldTurkish("McDonald’s")).toBe(foldTurkish("McDonald's"));
    expect(foldTurkish("RET 123456'ya")).toBe("ret 123456");
    expect(foldTurkish("'MIGROS'")).toBe("migros");
    // After a single letter it is part of the name: L'Oréal and L'Occitane stay apart.
    expect(foldTurkish("L'Oréal")).toBe("l oreal");
    expect(foldTurkish("L’Occitane'den")).toBe("l occitane");
    expect(foldTurkish("O'Neill")).toBe("o neill");
  });

  it("strips emoji stuck to a word", () => {
    expect(foldTurkish("RET🙏 MIGROS👍🏽")).toBe("ret migros");
  });

  it("keeps digits next to stripped punctuation", () => {
    expect(foldTurkish("RET 123456.")).toBe("ret 123456");
    expect(foldTurkish("(123456)")).toBe("123456");
  });
});

describe("foldTurkish: stability", () => {
  it("is idempotent on a varied sample", () => {
    const samples = [
      "RET MİGROS",
      "  Ret\u00a0Mıgros. ",
      "İ\u0307",
      "ＲＥＴ　ﬁ",
      "«İLETİ» — ÇAĞRI!",
      "H&M 123",
      "e\u0301 a\u0300 Å",
      "🙏RET🙏",
      "ß ẞ Σ ς",
      "- . -",
    ];
    for (const s of samples) {
      const once = foldTurkish(s);
      expect(foldTurkish(once)).toBe(once);
    }
  });

  it("is idempotent on random strings drawn from tricky characters", () => {
    const pool = Array.from("aAİIıiÇçĞğÖöŞşÜüâÂ .,!?'\"-\u00a0\u200b\u0307\u0301\tﬁ１ＲΣß🙏&");
    let seed = 12345;
    const next = (): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed;
    };
    for (let n = 0; n < 500; n++) {
      let s = "";
      const len = next() % 20;
      for (let k = 0; k < len; k++) s += pool[next() % pool.length] ?? "";
      const once = foldTurkish(s);
      expect(foldTurkish(once), JSON.stringify(s)).toBe(once);
      expect(once).toBe(once.trim());
      expect(once).not.toMatch(/ {2}/);
      expect(once).not.toMatch(/[A-ZİIıçğöşü\u0307]/);
    }
  });
});
