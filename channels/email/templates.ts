/**
 * The confirmation of an e-mail refusal: Turkish first (English below), names the brand, and carries
 * nothing else — no offer, no link back to marketing, no List-Unsubscribe (it is not a commercial
 * message, and must not become one).
 */
export function refusalConfirmation(brandName: string, ref: string): { subject: string; text: string } {
  return {
    subject: `${brandName}: e-posta ret talebiniz kaydedildi`,
    text: [
      "Merhaba,",
      "",
      `${brandName} markasından e-posta ile ticari elektronik ileti almayı reddettiğiniz (RET) kaydedildi.`,
      "Bu adrese gönderim derhal durdurulur. Markanın İleti Yönetim Sistemi'nde (İYS) kayıtlı bir izni varsa ret talebiniz yasal süre (3 iş günü) içinde İYS'ye bildirilir.",
      "",
      "Bu e-posta yalnızca bilgilendirme amaçlıdır ve ticari ileti içermez; yanıtlamanıza gerek yoktur.",
      `Referans: ${ref}`,
      "",
      "—",
      `Your refusal of commercial e-mail from ${brandName} has been recorded. Sending stops at once; where the brand holds a consent of yours in İYS, the refusal is reported there within 3 business days. This is a notice only, not a commercial message.`,
      "",
    ].join("\n"),
  };
}

export const emailReceiptRef = (receiptId: number) => `E${receiptId}`;
