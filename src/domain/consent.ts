/** İYS vocabulary (see ../shared/design/domain.md). Names are the İYS enumerations, used as-is in the API and the ledger. */
export const consentTypes = ["ARAMA", "MESAJ", "EPOSTA"] as const;
export type ConsentType = (typeof consentTypes)[number];

export const consentStatuses = ["ONAY", "RET"] as const;
export type ConsentStatus = (typeof consentStatuses)[number];

export const recipientTypes = ["BIREYSEL", "TACIR"] as const;
export type RecipientType = (typeof recipientTypes)[number];

/** Sources a provider (HS) may write. */
export const providerSources = [
  "HS_2015",
  "HS_KARAR",
  "HS_FIZIKSEL_ORTAM",
  "HS_ISLAK_IMZA",
  "HS_ETKINLIK",
  "HS_ATM",
  "HS_EORTAM",
  "HS_WEB",
  "HS_MOBIL",
  "HS_MESAJ",
  "HS_EPOSTA",
  "HS_CAGRI_MERKEZI",
  "HS_SOSYAL_MEDYA",
] as const;
export type ProviderSource = (typeof providerSources)[number];

/** Sources only İYS writes: they arrive from İYS and are never sent to it. */
export const iysSources = [
  "IYS_KISAMESAJ",
  "IYS_CM",
  "IYS_WEB",
  "IYS_WEB_YENI",
  "IYS_MOBIL",
  "IYS_EPOSTA",
  "IYS_AHS_HAT_KAPATMA",
  "IYS_FRAME_EPOSTA",
  "IYS_FRAME_SMS",
  "IYS_3338",
  "IYS_KISA_LINK",
] as const;
export type IysSource = (typeof iysSources)[number];

export const consentSources = [...providerSources, ...iysSources] as const;
export type ConsentSource = (typeof consentSources)[number];

/**
 * Where an action entered the hub. `registered`: a bulk import of records İYS already holds (the
 * provider's consents registered before the hub, another hub's state export) — never reported.
 */
export const origins = ["api", "sms", "ivr", "link", "partner", "import", "registered", "iys"] as const;
export type Origin = (typeof origins)[number];
/** Where the recipient acts on the hub's own channels (an SMS, a call, a link). */
export const channelOrigins: ReadonlySet<string> = new Set<Origin>(["sms", "ivr", "link"]);

/**
 * What a recorded event did: a `movement` is a change İYS knows about (reportable);
 * a `suppression` is a RET for an address that never had consent — kept by the hub so the address is
 * never messaged, but not an İYS movement (İYS would answer H175).
 */
export const eventEffects = ["movement", "suppression"] as const;
export type EventEffect = (typeof eventEffects)[number];

export function isProviderSource(s: string): s is ProviderSource {
  return (providerSources as readonly string[]).includes(s);
}

export function isIysSource(s: string): s is IysSource {
  return (iysSources as readonly string[]).includes(s);
}

/**
 * İYS names sources of its own now and then (IYS_AHS_HAT_KAPATMA came with its API 2.2.4): a
 * movement İYS lists under a name the hub does not know yet is still İYS's record — a recipient's
 * refusal on İYS must not be dropped for its source's name.
 */
const IYS_SOURCE_NAME = /^IYS_[A-Z0-9_]{1,40}$/;

export function isIysSourceName(s: string): boolean {
  return isIysSource(s) || IYS_SOURCE_NAME.test(s);
}
