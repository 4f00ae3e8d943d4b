import { describe, expect, it } from "vitest";
import { parseBrand, parseConfirm, parseMenu, type BrandOption } from "./menu";

const brands = (n: number): BrandOption[] =>
  Array.from({ length: n }, (_, i) => ({ id: 100 + i, names: [`marka${i + 1}`], brandCode: String(700000 + i), spokenName: `MARKA${i + 1}` }));

describe("IVR brand menu", () => {
  it("with ten or more brands on a number, two keyed digits choose the 10th and after", () => {
    const twelve = brands(12);
    expect(parseBrand({ digits: "10", speech: "" }, twelve)).toEqual({ kind: "brand", id: 109 });
    expect(parseBrand({ digits: "12#", speech: "" }, twelve)).toEqual({ kind: "brand", id: 111 });
    expect(parseBrand({ digits: "3", speech: "" }, twelve)).toEqual({ kind: "brand", id: 102 });
    expect(parseBrand({ digits: "13", speech: "" }, twelve)).toEqual({ kind: "invalid" });
    expect(parseBrand({ digits: "00", speech: "" }, twelve)).toEqual({ kind: "invalid" });
    // The İYS brand number still names a brand.
    expect(parseBrand({ digits: "700011#", speech: "" }, twelve)).toEqual({ kind: "brand", id: 111 });
  });

  it("a brand name said with a suffix or an apostrophe is the brand, as in an SMS", () => {
    const options: BrandOption[] = [
      { id: 1, names: ["mcdonald"], brandCode: null, spokenName: "McDonald's" },
      { id: 2, names: ["migros"], brandCode: null, spokenName: "Migros" },
    ];
    expect(parseBrand({ digits: "", speech: "McDonald's" }, options)).toEqual({ kind: "brand", id: 1 });
    expect(parseBrand({ digits: "", speech: "Migros'u arıyorum" }, options)).toEqual({ kind: "brand", id: 2 });
  });

  it("with fewer than nine, 9 switches language and two digits name nothing", () => {
    const two = brands(2);
    expect(parseBrand({ digits: "9", speech: "" }, two)).toEqual({ kind: "language" });
    expect(parseBrand({ digits: "12", speech: "" }, two)).toEqual({ kind: "invalid" });
  });

  it.each([
    ["SMS istemiyoruz", "refuse-sms"],
    ["mesaj gelmesin", "refuse-sms"],
    ["beni aramayın", "refuse-calls"],
    ["istemem", "refuse-both"],
    ["hiçbir şey göndermeyin", "refuse-both"],
    ["SMS'leri istemiyorum", "refuse-sms"],
    ["SMS gönderme", "refuse-sms"],
    ["arama yapma", "refuse-calls"],
    ["dur", "refuse-both"],
    ["Bir dakika, aramayın", "refuse-calls"],
  ])("%j refuses (%s)", (speech, choice) => {
    expect(parseMenu({ digits: "", speech })).toEqual({ kind: "choice", choice });
  });

  it.each(["bir dakika dur", "dur bir dakika", "bir saniye", "bekle", "wait a moment", "hold on"])("%j asks for a moment: the menu again, no refusal", (speech) => {
    expect(parseMenu({ digits: "", speech })).toEqual({ kind: "repeat" });
  });

  it("a Turkish suffix after an apostrophe is no word of its own: \"no'lu\" is not \"no\"", () => {
    expect(parseMenu({ digits: "", speech: "dört no'lu" }).kind).not.toBe("choice");
    expect(parseMenu({ digits: "", speech: "no'lu seçeneği onaylıyorum" })).toEqual({ kind: "choice", choice: "consent-both" });
    expect(parseConfirm({ digits: "", speech: "1 no'lu" }, "refusal").kind).not.toBe("no");
  });

  it("speech joins apostrophes: \"I don't consent\" is a negation, not a consent", () => {
    expect(parseMenu({ digits: "", speech: "I don't consent" }).kind).not.toBe("choice");
  });

  it.each([
    ["I don't want calls", "refuse-calls"],
    ["I do not want text messages", "refuse-sms"],
    ["please don't call me", "refuse-calls"],
    ["I don't want anything", "refuse-both"],
  ])("a negated want or way of reaching the caller refuses: %j (%s)", (speech, choice) => {
    expect(parseMenu({ digits: "", speech })).toEqual({ kind: "choice", choice });
  });

  it.each(["evet istemiyorum", "evet ama aramayın", "tamam ama mesaj göndermeyin", "evet, gelmesin", "onay, istemem", "evet değil"])(
    "confirming a consent, a yes said with a refusing word or a negation cancels: %j",
    (speech) => {
      expect(parseConfirm({ digits: "", speech }, "consent").kind).not.toBe("yes");
    },
  );

  it("confirming a refusal, a yes with a refusing word agrees; a plain yes confirms either", () => {
    expect(parseConfirm({ digits: "", speech: "evet, istemiyorum" }, "refusal")).toEqual({ kind: "yes" });
    expect(parseConfirm({ digits: "", speech: "evet onaylıyorum" }, "consent")).toEqual({ kind: "yes" });
    expect(parseConfirm({ digits: "", speech: "evet onaylıyorum" }, "refusal")).toEqual({ kind: "yes" });
    expect(parseConfirm({ digits: "", speech: "istemiyorum" }, "consent")).toEqual({ kind: "invalid" });
  });

  it("a negated refusal or a negation alone is not understood, and never consents", () => {
    expect(parseMenu({ digits: "", speech: "don't stop" })).toEqual({ kind: "invalid" });
    expect(parseMenu({ digits: "", speech: "I do not refuse" })).toEqual({ kind: "invalid" });
    expect(parseMenu({ digits: "", speech: "not sure" })).toEqual({ kind: "invalid" });
    expect(parseMenu({ digits: "", speech: "onay vermiyorum" })).toEqual({ kind: "invalid" });
  });
});

describe("parseMenu: negations as callers say them", () => {
  it.each(["Kabul etmem", "Onay vermem", "Kabul etmeyeceğim", "Onaylamam", "kabul etmeyiz", "onay vermez", "I won't consent", "I can't accept", "I didn't agree"])(
    "a consent said with a negative verb is none: %j",
    (speech) => {
      expect(parseMenu({ digits: "", speech })).toEqual({ kind: "invalid" });
      expect(parseConfirm({ digits: "", speech }, "consent").kind).not.toBe("yes");
    },
  );

  it.each([
    ["Bir daha asla aramayın", "refuse-calls"],
    ["Hiç istemiyorum!", "refuse-both"],
    ["Yok, istemiyorum", "refuse-both"],
    ["asla mesaj göndermeyin", "refuse-sms"],
    ["No, I don't want calls", "refuse-calls"],
    ["Hayır, mesaj istemiyorum", "refuse-sms"],
    ["Beni rahatsız etmeyin", "refuse-both"],
    ["never call me again", "refuse-calls"],
  ])("a refusal stressed by a negation, or a bare no before what is not wanted, refuses: %j (%s)", (speech, choice) => {
    expect(parseMenu({ digits: "", speech })).toEqual({ kind: "choice", choice });
  });

  it.each(["don't stop", "I do not refuse", "never stop", "asla durdurmayın", "iptal etmeyin"])("a negated refusal stays not understood: %j", (speech) => {
    expect(parseMenu({ digits: "", speech })).toEqual({ kind: "invalid" });
  });

  it.each([
    ["Evet, mesaj gelsin", "consent-sms"],
    ["aramalara onay veriyorum", "consent-calls"],
    ["SMS'lere onay", "consent-sms"],
    ["evet", "consent-both"],
    ["arama ve mesaja onay", "consent-both"],
  ])("a consent naming one channel is a consent to that channel: %j (%s)", (speech, choice) => {
    expect(parseMenu({ digits: "", speech })).toEqual({ kind: "choice", choice });
  });
});

describe("parseMenu: a refusal and a consent in one sentence", () => {
  it.each(["Aramalara izin veriyorum ama SMS istemiyorum", "Mesajları istemiyorum, aramalar olabilir", "aramalar gelsin, mesaj gelmesin"])(
    "%j is asked again (refusing both refused what was wanted)",
    (speech) => {
      expect(parseMenu({ digits: "", speech })).toEqual({ kind: "invalid" });
    },
  );
  it.each([
    ["Artık mesaj gönderilmesin", "refuse-sms"],
    ["Mesaj atmasınlar", "refuse-sms"],
    ["arama yapmasınlar", "refuse-calls"],
    ["evet, istemiyorum", "refuse-both"],
  ])("%j refuses (%s)", (speech, choice) => {
    expect(parseMenu({ digits: "", speech })).toEqual({ kind: "choice", choice });
  });
});

describe("names and mixed sentences (a review of the negation change)", () => {
  it.each([
    ["Aramalara izin veriyorum ama SMS asla istemiyorum", "invalid"],
    ["Aramalar olur ama mesaj hiç istemem", "invalid"],
    ["I agree to calls but don't text me", "invalid"],
    ["Onayımı iptal etmek istiyorum", "refuse-both"],
    ["Mesaj gelsin istemiyorum", "refuse-sms"],
    ["Ben Ahmet Yılmaz, kabul ediyorum", "consent-both"],
    ["Korkmaz, onaylıyorum", "consent-both"],
  ])("%j → %s", (speech, want) => {
    expect(parseMenu({ digits: "", speech })).toEqual(want === "invalid" ? { kind: "invalid" } : { kind: "choice", choice: want });
  });
  it.each(["Evet, rahatsız etmeyin", "Yes, don't call me", "Evet, Korkmaz"])("confirming a refusal, %j agrees", (speech) => {
    expect(parseConfirm({ digits: "", speech }, "refusal")).toEqual({ kind: "yes" });
  });
});

describe("parseConfirm: confirming a refusal", () => {
  it.each(["Reddediyorum", "hiç istemiyorum", "istemiyorum", "Evet, iptal edin", "evet", "1", "evet, istemiyorum", "aramayın"])("%j agrees", (speech) => {
    expect(parseConfirm({ digits: "", speech }, "refusal")).toEqual({ kind: "yes" });
  });
  it.each(["hayır", "vazgeç", "iptal", "hayır, evet değil", "tamam değil", "evet yanlış", "no"])("%j cancels", (speech) => {
    expect(parseConfirm({ digits: "", speech }, "refusal")).toEqual({ kind: "no" });
  });
  it.each(["bilmiyorum", "iptal etmeyin", "ne"])("%j is asked again", (speech) => {
    expect(parseConfirm({ digits: "", speech }, "refusal")).toEqual({ kind: "invalid" });
  });
});

describe("parseMenu: refusals as callers say them", () => {
  it.each([
    ["bana mesaj atmayın", "refuse-sms"],
    ["arama yapmayın", "refuse-calls"],
    ["mesajları durdurun", "refuse-sms"],
    ["dur", "refuse-both"],
    ["durdur", "refuse-both"],
    ["telefonla aranmak istemiyorum", "refuse-calls"],
  ])("%j is %s (read back by the confirmation step)", (speech, choice) => {
    expect(parseMenu({ digits: "", speech })).toEqual({ kind: "choice", choice });
  });
});
