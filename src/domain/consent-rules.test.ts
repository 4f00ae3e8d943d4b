import { describe, expect, it } from "vitest";
import { BusinessCalendar } from "./calendar";
import { checkConsent, IYS_EPOCH, type ConsentCandidate, type CurrentConsent, type RuleContext } from "./consent-rules";

const calendar = new BusinessCalendar();
// Wednesday 2026-11-25 12:00 Istanbul.
const now = new Date("2026-11-25T09:00:00Z");
const ctx: RuleContext = { now, calendar, writer: "provider" };
const hoursAgo = (h: number) => new Date(now.getTime() - h * 3_600_000);

const onay = (over: Partial<ConsentCandidate> = {}): ConsentCandidate => ({
  recipientKind: "phone",
  phoneKind: "mobile",
  recipientType: "BIREYSEL",
  type: "MESAJ",
  status: "ONAY",
  source: "HS_WEB",
  consentDate: hoursAgo(1),
  ...over,
});
const ret = (over: Partial<ConsentCandidate> = {}) => onay({ status: "RET", ...over });
const stored = (over: Partial<CurrentConsent> = {}): CurrentConsent => ({
  status: "ONAY",
  consentDate: hoursAgo(48),
  inIys: true,
  ...over,
});

function code(c: ConsentCandidate, cur: CurrentConsent | null = null, context = ctx) {
  const v = checkConsent(c, cur, context);
  return v.ok ? v.effect : v.code;
}

describe("İYS consent rules", () => {
  it("a first ONAY is a reportable movement", () => {
    expect(code(onay())).toBe("movement");
  });

  it("a first RET is kept as a local suppression, not an İYS movement (H175 at İYS)", () => {
    expect(code(ret())).toBe("suppression");
  });

  it("RET after ONAY is a movement", () => {
    expect(code(ret(), stored())).toBe("movement");
  });

  it("ONAY after a bare suppression becomes the first İYS record", () => {
    expect(code(onay(), stored({ status: "RET", inIys: false, consentDate: hoursAgo(5) }))).toBe("movement");
  });

  it("RET after a bare suppression is a no-op H174", () => {
    const v = checkConsent(ret(), stored({ status: "RET", inIys: false, consentDate: hoursAgo(5) }), ctx);
    expect(v).toMatchObject({ ok: false, code: "H174", noop: true });
  });

  it("a RET İYS recorded for a bare suppression is İYS's movement when it is as new or newer; an older one is a no-op (the suppression's later date stands)", () => {
    const iys = { ...ctx, writer: "iys" as const };
    const suppression = stored({ status: "RET", inIys: false, consentDate: hoursAgo(5) });
    expect(code(ret({ source: "IYS_WEB", consentDate: hoursAgo(2) }), suppression, iys)).toBe("movement");
    expect(code(ret({ source: "IYS_WEB", consentDate: hoursAgo(5) }), suppression, iys)).toBe("movement");
    expect(code(ret({ source: "IYS_WEB", consentDate: hoursAgo(8) }), suppression, iys)).toBe("H174");
    // Once İYS holds it, the same status again is nothing new.
    expect(code(ret({ source: "IYS_WEB", consentDate: hoursAgo(2) }), stored({ status: "RET", inIys: true, consentDate: hoursAgo(5) }), iys)).toBe("H174");
  });

  it("the same status twice is rejected with H174 and marked as a no-op, naming the status held as İYS does", () => {
    expect(checkConsent(onay(), stored(), ctx)).toMatchObject({
      ok: false,
      code: "H174",
      noop: true,
      message: "İzin durumu (status) güncellemesi için farklı bir durum girilmelidir. İzin durumu: ONAY",
    });
    expect(checkConsent(ret(), stored({ status: "RET" }), ctx)).toMatchObject({ code: "H174", message: expect.stringMatching(/İzin durumu: RET$/) });
  });

  it("a change dated before the stored consentDate is rejected with H178", () => {
    expect(code(ret({ consentDate: hoursAgo(50) }), stored())).toBe("H178");
  });

  it("a change dated exactly at the stored consentDate is rejected with H178, saying it is the same second (İYS's words say before)", () => {
    const at = hoursAgo(10);
    expect(code(ret({ consentDate: at }), stored({ consentDate: at }))).toBe("H178");
    expect(checkConsent(ret({ consentDate: at }), stored({ consentDate: at }), ctx)).toMatchObject({ message: expect.stringMatching(/önceki tarihli.*aynı saniyeyi taşıyor/) });
    expect(checkConsent(ret({ consentDate: hoursAgo(50) }), stored(), ctx)).toMatchObject({ message: "Sistemdeki iznin tarihinden önceki tarihli izinlerle güncelleme yapılamaz." });
  });

  it("a consentDate in the future is rejected with H162", () => {
    expect(code(onay({ consentDate: new Date(now.getTime() + 1000) }))).toBe("H162");
  });

  it("a consentDate before 2015-05-01 00:00:00 Turkish time is rejected with H156", () => {
    expect(code(onay({ source: "HS_2015", consentDate: new Date(IYS_EPOCH - 1000) }))).toBe("H156");
  });

  it("HS_2015 is accepted only with exactly 2015-05-01 00:00:00", () => {
    expect(code(onay({ source: "HS_2015", consentDate: new Date(IYS_EPOCH) }))).toBe("movement");
    expect(code(onay({ source: "HS_2015", consentDate: new Date(IYS_EPOCH + 1000) }))).toBe("H155");
  });

  it("HS_KARAR is accepted for a RET over an existing İYS record", () => {
    expect(code(ret({ source: "HS_KARAR" }), stored())).toBe("movement");
  });

  it("HS_KARAR with ONAY is rejected with H408", () => {
    expect(code(onay({ source: "HS_KARAR" }), stored({ status: "RET" }))).toBe("H408");
  });

  it("an HS_KARAR refusal İYS holds no record for (H408 there) is kept as a local suppression, and one İYS lists is İYS's movement", () => {
    expect(code(ret({ source: "HS_KARAR" }))).toBe("suppression");
    expect(code(ret({ source: "HS_KARAR" }), stored({ inIys: false }))).toBe("suppression");
    expect(code(ret({ source: "HS_KARAR", recipientType: "TACIR" }), null, { ...ctx, writer: "registered" })).toBe("suppression");
    expect(code(ret({ source: "HS_KARAR", recipientType: "TACIR" }), null, { ...ctx, writer: "iys" })).toBe("movement");
    expect(code(ret({ source: "HS_KARAR", recipientType: "TACIR" }), stored({ status: "RET", inIys: false }), { ...ctx, writer: "iys" })).toBe("movement");
    expect(code(onay({ source: "HS_KARAR" }), null, { ...ctx, writer: "iys" })).toBe("H408");
  });

  it("a consent collected more than 3 business days ago is rejected with H467", () => {
    // Wed 25 Nov 2026: collected Thu 19 Nov → deadline Tue 24 Nov.
    expect(code(onay({ consentDate: new Date("2026-11-19T09:00:00Z") }))).toBe("H467");
  });

  it("a RET collected more than 3 business days ago is kept as a suppression, over a record İYS holds or none", () => {
    const late = { consentDate: new Date("2026-11-19T09:00:00Z") };
    expect(code(ret(late), stored({ status: "ONAY", consentDate: new Date("2026-11-10T09:00:00Z") }))).toBe("suppression");
    expect(code(ret(late))).toBe("suppression");
    // Older than the stored consent it is still refused (H178): the later consent stands.
    expect(code(ret(late), stored({ status: "ONAY", consentDate: new Date("2026-11-19T10:00:00Z") }))).toBe("H178");
  });

  it("a consent collected exactly 3 business days ago is accepted", () => {
    // Collected Fri 20 Nov → deadline Wed 25 Nov end of day.
    expect(code(onay({ consentDate: new Date("2026-11-20T09:00:00Z") }))).toBe("movement");
  });

  it("a record İYS already holds (a registered import) has no 3-business-day window and stays under the other rules", () => {
    const registered: RuleContext = { ...ctx, writer: "registered" };
    expect(code(onay({ consentDate: new Date("2019-06-01T09:00:00Z") }), null, registered)).toBe("movement");
    // A refusal stays the hub's own (a suppression): the file's word does not make it İYS's.
    expect(code(ret({ consentDate: new Date("2019-06-01T09:00:00Z") }), null, registered)).toBe("suppression");
    expect(code(onay({ source: "IYS_WEB" }), null, registered)).toBe("H486");
    expect(code(ret({ consentDate: hoursAgo(72) }), stored(), registered)).toBe("H178");
    expect(code(onay({ consentDate: new Date(now.getTime() + 60_000) }), null, registered)).toBe("H162");
  });

  it("a consent collected years ago is rejected with H467 without consulting unknown holiday years", () => {
    expect(code(onay({ consentDate: new Date("2019-06-01T09:00:00Z") }))).toBe("H467");
  });

  it("İYS's own records are not held to the 3-business-day window", () => {
    expect(code(onay({ source: "IYS_WEB", consentDate: new Date("2020-06-01T09:00:00Z") }), null, { ...ctx, writer: "iys" })).toBe(
      "movement",
    );
  });

  it("a first RET İYS itself recorded (a recipient refusing on İYS) is an İYS movement, not a local suppression", () => {
    expect(code(ret({ source: "IYS_WEB" }), null, { ...ctx, writer: "iys" })).toBe("movement");
  });

  it("a provider may not write an IYS_* source (H486)", () => {
    expect(code(onay({ source: "IYS_KISAMESAJ" }))).toBe("H486");
  });

  it("MESAJ for an e-mail address is rejected with H464", () => {
    expect(code(onay({ recipientKind: "email", phoneKind: undefined }))).toBe("H464");
  });

  it("MESAJ for a fixed line is rejected with H464", () => {
    expect(code(onay({ phoneKind: "fixed" }))).toBe("H464");
  });

  it("ARAMA for a fixed line is accepted", () => {
    expect(code(onay({ type: "ARAMA", phoneKind: "fixed" }))).toBe("movement");
  });

  it("EPOSTA for a phone number is rejected with H464 and İYS's text for it (the specification's example)", () => {
    expect(code(onay({ type: "EPOSTA" }))).toBe("H464");
    expect(checkConsent(onay({ type: "EPOSTA" }), null, ctx)).toMatchObject({ message: "İzin tipi (type) EPOSTA için, alıcı (recipient) e-posta formatında olmalıdır." });
  });

  it("ARAMA for an e-mail address is rejected with H121", () => {
    expect(code(onay({ type: "ARAMA", recipientKind: "email" }))).toBe("H121");
  });

  it("BIREYSEL without a source is rejected with H113 and without a date with H112", () => {
    expect(code(onay({ source: null }))).toBe("H113");
    expect(code(onay({ consentDate: null }))).toBe("H112");
  });

  it("a first TACIR record may omit source and consentDate", () => {
    expect(code(onay({ recipientType: "TACIR", source: null, consentDate: null }))).toBe("movement");
  });

  it("a TACIR update without consentDate is rejected with H462 and without source with H463", () => {
    expect(code(ret({ recipientType: "TACIR", consentDate: null }), stored())).toBe("H462");
    expect(code(ret({ recipientType: "TACIR", source: null }), stored())).toBe("H463");
    expect(checkConsent(ret({ recipientType: "TACIR", source: null }), stored(), ctx)).toMatchObject({ message: "TACIR izinleri güncellenirken izin kaynağı (source) verilmelidir." });
  });

  it("an undated TACIR consent over a refusal the hub keeps to itself is refused, saying it cannot be ordered after the refusal", () => {
    const suppressed = stored({ status: "RET", inIys: false });
    expect(checkConsent(onay({ recipientType: "TACIR", source: null, consentDate: null }), suppressed, ctx)).toMatchObject({ ok: false, code: "H463", message: expect.stringMatching(/^Bu alıcının hub'da bir reddi var \(İYS'de kaydı yok\)/) });
    expect(checkConsent(onay({ recipientType: "TACIR", consentDate: null }), suppressed, ctx)).toMatchObject({ ok: false, code: "H462", message: expect.stringMatching(/retten sonra verildiği görülebilmesi için izin tarihi \(consentDate\) verilmelidir\.$/) });
    expect(code(onay({ recipientType: "TACIR" }), suppressed)).toBe("movement");
  });

  it("an undated TACIR refusal is ordered by when the hub received it: a consent dated before that is older (H178), one after it stands", () => {
    const undated = stored({ status: "RET", consentDate: null, inIys: false, receivedAt: hoursAgo(1) });
    expect(code(onay({ recipientType: "TACIR", consentDate: hoursAgo(2) }), undated)).toBe("H178");
    expect(code(onay({ recipientType: "TACIR", consentDate: hoursAgo(0.5) }), undated)).toBe("movement");
    // An undated consent is not ordered so: a refusal dated before its receipt still refuses.
    expect(code(ret({ recipientType: "TACIR", consentDate: hoursAgo(2) }), stored({ consentDate: null, inIys: false, receivedAt: hoursAgo(1) }))).toBe("suppression");
  });
});
