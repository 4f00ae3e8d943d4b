import { createHash } from "node:crypto";
import { html, raw } from "hono/html";
import type { HtmlEscapedString } from "hono/utils/html";

export type Lang = "tr" | "en";

export const langOf = (v: string | undefined): Lang => (v === "en" ? "en" : "tr");

const CSS = `
*{box-sizing:border-box}
body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f4f5f7;color:#1b1f24;line-height:1.5}
main{max-width:32rem;margin:3rem auto;padding:2rem;background:#fff;border-radius:.75rem;box-shadow:0 1px 3px rgba(0,0,0,.12)}
h1{font-size:1.4rem;margin:0 0 1rem}
p{margin:0 0 1rem}
.addr{font-family:ui-monospace,monospace;background:#f0f1f3;padding:.1rem .35rem;border-radius:.25rem}
button{font:inherit;font-weight:600;color:#fff;background:#b3261e;border:0;border-radius:.5rem;padding:.8rem 1.4rem;cursor:pointer}
button:focus-visible,a:focus-visible{outline:3px solid #1a5fb4;outline-offset:2px}
nav{margin-top:2rem;font-size:.9rem}
a{color:#1a5fb4}
`.trim();

/** The page's only style, allowed by hash: the CSP needs no 'unsafe-inline'. */
const CSS_HASH = `sha256-${createHash("sha256").update(CSS).digest("base64")}`;

/** Headers of every /r answer (pages, 404, 429, the empty RFC 8058 answer). */
export const PAGE_HEADERS: Record<string, string> = {
  "Cache-Control": "no-store",
  "Referrer-Policy": "no-referrer",
  "Content-Security-Policy": `default-src 'none'; style-src '${CSS_HASH}'; img-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
  "X-Robots-Tag": "noindex, nofollow",
  "X-Content-Type-Options": "nosniff",
  "X-Frame-Options": "DENY",
};

function layout(lang: Lang, title: string, body: HtmlEscapedString | Promise<HtmlEscapedString>, toggle: boolean) {
  const other: Lang = lang === "tr" ? "en" : "tr";
  return html`<!doctype html>
<html lang="${lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<meta name="referrer" content="no-referrer">
<title>${title}</title>
<style>${raw(CSS)}</style>
</head>
<body>
<main>
${body}
${toggle ? html`<nav><a href="?lang=${other}" hreflang="${other}" lang="${other}">${other === "en" ? "English" : "Türkçe"}</a></nav>` : ""}
</main>
</body>
</html>`;
}

const text = {
  tr: {
    confirmTitle: (brand: string) => `${brand}: e-posta iletilerini reddet`,
    confirmLead: (brand: string) => `${brand} markasından ticari elektronik ileti (e-posta) almak istemiyorsanız aşağıdaki düğmeye basın.`,
    address: "Adres",
    button: "E-posta iletilerini reddet",
    note: "Ret kaydı ücretsizdir; bu sayfayı açmak tek başına hiçbir şeyi değiştirmez.",
    doneTitle: "Kaydedildi",
    doneLead: (brand: string) => `${brand} markasından e-posta ile ticari ileti almayı reddettiğiniz kaydedildi.`,
    doneNote: "Gönderim derhal durdurulur. Markanın İleti Yönetim Sistemi'nde (İYS) kayıtlı bir izni varsa ret talebiniz yasal süre (3 iş günü) içinde İYS'ye bildirilir.",
  },
  en: {
    confirmTitle: (brand: string) => `${brand}: refuse e-mail messages`,
    confirmLead: (brand: string) => `If you no longer want commercial e-mail from ${brand}, press the button below.`,
    address: "Address",
    button: "Refuse e-mail messages",
    note: "Refusing is free; opening this page alone changes nothing.",
    doneTitle: "Recorded",
    doneLead: (brand: string) => `Your refusal of commercial e-mail from ${brand} has been recorded.`,
    doneNote: "Sending stops at once. Where the brand holds a consent of yours in the national registry (İYS), your refusal is reported there within the legal 3 business days.",
  },
};

export function confirmPage(lang: Lang, brand: string, maskedAddress: string) {
  const t = text[lang];
  return layout(
    lang,
    t.confirmTitle(brand),
    html`<h1>${t.confirmTitle(brand)}</h1>
<p>${t.confirmLead(brand)}</p>
<p>${t.address}: <span class="addr">${maskedAddress}</span></p>
<form method="post">
<input type="hidden" name="action" value="RET">
<input type="hidden" name="lang" value="${lang}">
<button type="submit">${t.button}</button>
</form>
<p><small>${t.note}</small></p>`,
    true,
  );
}

export function donePage(lang: Lang, brand: string) {
  const t = text[lang];
  return layout(
    lang,
    t.doneTitle,
    html`<h1>${t.doneTitle}</h1>
<p>${t.doneLead(brand)}</p>
<p>${t.doneNote}</p>`,
    false,
  );
}

/** Bilingual and without detail: nothing tells a prober why a token failed. */
export function problemPage(kind: "not_found" | "expired" | "rate_limited" | "bad_request" | "unavailable") {
  const messages = {
    not_found: ["Bağlantı bulunamadı", "Link not found"],
    expired: ["Bu bağlantının süresi dolmuş", "This link has expired"],
    rate_limited: ["Çok fazla istek; lütfen biraz sonra yeniden deneyin", "Too many requests; please try again shortly"],
    bad_request: ["İstek anlaşılamadı", "The request was not understood"],
    unavailable: ["Şu anda kaydedemiyoruz; lütfen biraz sonra yeniden deneyin", "We cannot record this right now; please try again shortly"],
  } as const;
  const [tr, en] = messages[kind];
  // A link that no longer works must not leave the recipient without a way to refuse.
  const elsewhere =
    kind === "expired" || kind === "not_found"
      ? html`<p>Ticari iletileri almamak için İleti Yönetim Sistemi'nden (<a href="https://iys.org.tr">iys.org.tr</a>, e-Devlet ya da İYS mobil uygulaması) ret bildirebilirsiniz.</p><p lang="en">You can still refuse commercial messages through İYS (iys.org.tr, e-Devlet or the İYS app).</p>`
      : "";
  return layout("tr", tr, html`<h1>${tr}</h1><p lang="en">${en}</p>${elsewhere}`, false);
}
