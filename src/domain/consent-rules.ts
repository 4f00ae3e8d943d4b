import type { BusinessCalendar } from "./calendar";
import type { ConsentSource, ConsentStatus, ConsentType, EventEffect, RecipientType } from "./consent";
import { isIysSourceName, isProviderSource } from "./consent";

/** 2015-05-01 00:00:00 Turkish time: no consent may be older, and HS_2015 consents carry exactly this date. */
export const IYS_EPOCH = Date.UTC(2015, 3, 30, 21, 0, 0);

/** Beyond this many calendar days, a date is past 3 business days whatever the holidays (longest closure is 9 days). */
const CERTAINLY_LATE_DAYS = 21;

export interface ConsentCandidate {
  recipientKind: "phone" | "email";
  /** For phones: mobile numbers may receive MESAJ; fixed lines only ARAMA. */
  phoneKind?: "mobile" | "fixed" | "other";
  recipientType: RecipientType;
  type: ConsentType;
  status: ConsentStatus;
  source: ConsentSource | null;
  consentDate: Date | null;
}

export interface CurrentConsent {
  status: ConsentStatus;
  consentDate: Date | null;
  /** True once a reportable movement exists for the key (İYS has a record). */
  inIys: boolean;
  /**
   * When the hub recorded it. An undated refusal (a TACIR first record) is ordered by it: a consent
   * dated before the refusal reached the hub came before it, and is refused as older (H178).
   */
  receivedAt?: Date;
}

export type RuleCode =
  | "H112"
  | "H113"
  | "H120"
  | "H121"
  | "H155"
  | "H156"
  | "H162"
  | "H174"
  | "H178"
  | "H408"
  | "H459"
  | "H462"
  | "H463"
  | "H464"
  | "H467"
  | "H486";

export type RuleVerdict =
  | { ok: true; effect: EventEffect }
  | { ok: false; code: RuleCode; message: string; /** H174: the same status again — a no-op for channels. */ noop?: true };

export interface RuleContext {
  now: Date;
  calendar: Pick<BusinessCalendar, "isWithinBusinessDays">;
  /**
   * Providers write HS_* sources only; `iys` is the hub replaying what İYS itself recorded;
   * `registered` is the provider's record İYS already holds (a bulk import of its existing base, for
   * keys the hub holds nothing of): HS_* sources, no 3-business-day window (H467: it is no new
   * movement). A RET stays a local suppression: a file's word does not make it İYS's (another hub's
   * export holds its suppressions too), and the address is refused all the same.
   */
  writer: "provider" | "iys" | "registered";
}

const messages: Record<RuleCode, string> = {
  H112: "İzin tarihi (consentDate) bulunamadı.",
  H113: "İzin kaynağı (source) bulunamadı.",
  H120: "Alıcı (recipient) kabul edilemedi. Geçerli bir eposta adresi giriniz.",
  H121: "Alıcı (recipient) için E164 uluslararası([+][country code][area code][local phone number]) formatına uygun bir telefon numarası girilmelidir. (örn. +905992000000)",
  H155: "İzin kaynağı “1 Mayıs 2015 öncesi” olan izinler için, izin tarihi sadece 2015-05-01 00:00:00 olabilir.",
  H156: "İzinler için 1 Mayıs 2015’den önceki tarihler kabul edilmemektedir.",
  H162: "Mevcut tarih ve saatten ileri bir tarih ve saat girilmemelidir.",
  H174: "İzin durumu (status) güncellemesi için farklı bir durum girilmelidir. İzin durumu: ONAY / RET",
  H178: "Sistemdeki iznin tarihinden önceki tarihli izinlerle güncelleme yapılamaz.",
  H408: "HS_KARAR kaynağından iletilen izinler için durum bilgisi RET olmalıdır.",
  H459: "Alıcı (recipient) için beklenen izin tipi (type) değerleri MESAJ, ARAMA olmalıdır",
  H462: "TACIR izinleri güncellenirken izin tarihi (consentDate) verilmelidir",
  H463: "TACIR izinleri güncellenirken izin kaynağı (source) verilmelidir.",
  H464: "İzin tipi (type) MESAJ için, alıcı (recipient) telefon formatında olmalıdır.",
  H467: "Üç iş günü öncesinde alınan izinler kaydedilemez.",
  // The specification's H486 text, word for word (its list has no HS_KARAR).
  H486: "İzin kaynağı (source) kabul edilemedi. İzin verilen değerler: HS_FIZIKSEL_ORTAM, HS_ISLAK_IMZA, HS_WEB, HS_CAGRI_MERKEZI, HS_SOSYAL_MEDYA, HS_EPOSTA, HS_MESAJ, HS_MOBIL, HS_EORTAM, HS_ETKINLIK, HS_2015, HS_ATM",
};

/** The request field each rule's refusal is about (the API names it in `error.field`). */
export const RULE_FIELDS: Readonly<Record<RuleCode, string>> = {
  H112: "consentDate",
  H113: "source",
  H120: "recipient",
  H121: "recipient",
  H155: "consentDate",
  H156: "consentDate",
  H162: "consentDate",
  H174: "status",
  H178: "consentDate",
  H408: "status",
  H459: "type",
  H462: "consentDate",
  H463: "source",
  H464: "recipient",
  H467: "consentDate",
  H486: "source",
};

function reject(code: RuleCode, message = messages[code]): RuleVerdict {
  return code === "H174" ? { ok: false, code, message, noop: true } : { ok: false, code, message };
}

export function ruleMessage(code: RuleCode): string {
  return messages[code];
}

const SUPPRESSED_TACIR = {
  source:
    "Bu alıcının hub'da bir reddi var (İYS'de kaydı yok): TACIR onayının bu retten sonra verildiği görülebilmesi için izin kaynağı (source) ve izin tarihi (consentDate) verilmelidir.",
  consentDate:
    "Bu alıcının hub'da bir reddi var (İYS'de kaydı yok): TACIR onayının bu retten sonra verildiği görülebilmesi için izin tarihi (consentDate) verilmelidir.",
} as const;

const FIXED_LINE_MESSAGE = "İzin tipi (type) MESAJ için, alıcı (recipient) bir cep telefonu numarası olmalıdır; sabit hatlar yalnızca ARAMA alabilir.";

/** İYS's text of H464 for a phone number given with EPOSTA (the specification's example; its table has the MESAJ one). */
export const EPOSTA_NOT_EMAIL_MESSAGE = "İzin tipi (type) EPOSTA için, alıcı (recipient) e-posta formatında olmalıdır.";

/**
 * Whether an address may carry a consent of `type` at all, as İYS answers it: an e-mail address for
 * EPOSTA (H464 for a phone number, as the specification's example answers; H120 is an e-mail address
 * İYS cannot take), a mobile number for MESAJ (H464; fixed lines only take calls), a number for ARAMA (H121).
 */
export function addressUnfit(type: ConsentCandidate["type"], kind: "phone" | "email", phoneKind?: "mobile" | "fixed" | "other"): "H120" | "H121" | "H464" | null {
  if (type === "EPOSTA") return kind === "email" ? null : "H464";
  if (type === "MESAJ") return kind === "phone" && phoneKind !== "fixed" ? null : "H464";
  return kind === "phone" ? null : "H121";
}

/**
 * The İYS consent rules for one movement of a (brand, recipient, recipientType, type) key, with the
 * İYS error codes. A RET for a key İYS has no record of (H175), or one collected too long ago for
 * İYS to take (H467), is accepted as a local `suppression`.
 */
export function checkConsent(c: ConsentCandidate, current: CurrentConsent | null, ctx: RuleContext): RuleVerdict {
  if (c.source !== null) {
    const allowed = ctx.writer === "iys" ? isIysSourceName(c.source) || isProviderSource(c.source) : isProviderSource(c.source);
    if (!allowed) return reject("H486");
  }

  const unfit = addressUnfit(c.type, c.recipientKind, c.phoneKind);
  if (unfit) return reject(unfit, unfit !== "H464" ? messages[unfit] : c.type === "EPOSTA" ? EPOSTA_NOT_EMAIL_MESSAGE : c.phoneKind === "fixed" ? FIXED_LINE_MESSAGE : messages[unfit]);

  const isTacir = c.recipientType === "TACIR";
  // İYS lists a TACIR line closure (IYS_AHS_HAT_KAPATMA) of a record first kept without a date with none.
  const fromIys = ctx.writer === "iys";
  // A TACIR record İYS does not hold (a refusal the hub keeps as a local suppression) would be a first
  // record for İYS, which takes one undated; but an undated consent cannot be told to come after the
  // refusal, so it is refused all the same, saying so (İYS's own words speak of an update).
  if (c.source === null) {
    if (!isTacir) return reject("H113");
    if (current && !fromIys) return reject("H463", current.inIys ? messages.H463 : SUPPRESSED_TACIR.source);
  }
  if (c.consentDate === null) {
    if (!isTacir) return reject("H112");
    if (current && !fromIys) return reject("H462", current.inIys ? messages.H462 : SUPPRESSED_TACIR.consentDate);
  }

  const date = c.consentDate?.getTime();
  if (date !== undefined) {
    if (date < IYS_EPOCH) return reject("H156");
    if (c.source === "HS_2015" && date !== IYS_EPOCH) return reject("H155");
    if (date > ctx.now.getTime()) return reject("H162");
  }

  // HS_KARAR (the provider's own decision to stop) is a refusal only. As a first record İYS refuses
  // it (H408: "ilk izin ekleme işleminde HS_KARAR kaynak değerini kullanamamaktadır"), but a refusal
  // is never thrown away: without an İYS record it is kept as a local suppression below, like any
  // first RET; one İYS itself lists (its pull) is İYS's record already.
  if (c.source === "HS_KARAR" && c.status !== "RET") return reject("H408");

  if (current) {
    const storedDate = current.consentDate?.getTime() ?? (current.status === "RET" ? current.receivedAt?.getTime() : undefined);
    // What İYS itself recorded may carry the stored date (a line closure, IYS_AHS_HAT_KAPATMA, comes
    // dated with the consent's current date; same-second movements share it): only an older one is refused.
    const older = date !== undefined && storedDate !== undefined && (fromIys ? date < storedDate : date <= storedDate);
    if (current.status === c.status) {
      // A refusal the hub kept as a local suppression (İYS had no record) that the recipient then
      // also made on İYS: İYS holds it now, a movement of İYS's own (in its daily file). Not an older
      // one: the state would take its date, and a consent dated between the two would pass.
      if (fromIys && !current.inIys && !older) return { ok: true, effect: "movement" };
      // İYS's message names the status it holds ("İzin durumu: RET"); its table's template says "ONAY / RET".
      return reject("H174", messages.H174.replace("ONAY / RET", current.status));
    }
    if (older) {
      // İYS's words say "before"; a movement in the stored one's very second is refused as well (İYS
      // orders movements by their date): said, or a file with an ONAY and a RET in one second puzzles.
      return date === storedDate
        ? reject("H178", `${messages.H178} (Bu hareket kayıtlı iznin tarihiyle aynı saniyeyi taşıyor: İYS aynı tarihli bir güncellemeyi de kabul etmez; sonraki bir tarih verin.)`)
        : reject("H178");
    }
  }

  if (date !== undefined && c.source !== "HS_2015" && ctx.writer === "provider" && isLate(new Date(date), ctx)) {
    // İYS takes no movement collected more than 3 business days ago (H467). A refusal is still a
    // refusal: kept as a local suppression (never reported), so the address is not messaged.
    if (c.status === "RET") return { ok: true, effect: "suppression" };
    return reject("H467");
  }

  // A refusal İYS itself recorded (the recipient refused on İYS) is in İYS: a movement, never reported back.
  if (c.status === "RET" && !current?.inIys && ctx.writer !== "iys") return { ok: true, effect: "suppression" };
  return { ok: true, effect: "movement" };
}

/** A movement collected more than 3 business days before `ctx.now`: İYS no longer takes it (H467). */
export function isLate(consentDate: Date, ctx: Pick<RuleContext, "now" | "calendar">): boolean {
  const ageDays = (ctx.now.getTime() - consentDate.getTime()) / 86_400_000;
  if (ageDays > CERTAINLY_LATE_DAYS) return true;
  return !ctx.calendar.isWithinBusinessDays(consentDate, ctx.now, 3);
}
