import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from "node:crypto";
import type { Config } from "../config";
import type { Secrets } from "../secrets";

/** The key that encrypts endpoint secrets: CALLBACK_SECRETS_KEY when set, else derived from the hub secret. */
export function callbackSecretsKey(config: Pick<Config, "CALLBACK_SECRETS_KEY">, secrets: Pick<Secrets, "derive">): Buffer {
  const configured = config.CALLBACK_SECRETS_KEY;
  if (!configured) return secrets.derive("callback-secrets");
  const raw = Buffer.from(configured, "base64");
  // A 32-byte base64 key is used as it is; anything else is a passphrase, hashed to 32 bytes.
  return raw.length === 32 && raw.toString("base64").replace(/=+$/, "") === configured.replace(/=+$/, "") ? raw : createHash("sha256").update(configured).digest();
}

/** AES-256-GCM: `v1.<iv>.<tag>.<ciphertext>` (base64url); a dump of the database alone reveals nothing. */
export function encryptSecret(key: Buffer, plain: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  const ct = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()]);
  return ["v1", iv.toString("base64url"), cipher.getAuthTag().toString("base64url"), ct.toString("base64url")].join(".");
}

export function decryptSecret(key: Buffer, enc: string): string {
  const [v, iv, tag, ct] = enc.split(".");
  if (v !== "v1" || !iv || !tag || ct === undefined) throw new Error("unknown secret encoding");
  const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(iv, "base64url"));
  decipher.setAuthTag(Buffer.from(tag, "base64url"));
  return Buffer.concat([decipher.update(Buffer.from(ct, "base64url")), decipher.final()]).toString("utf8");
}

/** A Standard Webhooks signing secret: `whsec_` + base64 of 24 random bytes. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(24).toString("base64")}`;
}

/** A partner's API key; only its SHA-256 is stored. */
export function newApiKey(): string {
  return `pk_${randomBytes(24).toString("base64url")}`;
}

export const apiKeyHash = (key: string) => createHash("sha256").update(key).digest("hex");

/** `v1,<base64 HMAC-SHA256(secret, "id.timestamp.body")>` (Standard Webhooks). */
export function signWebhook(secret: string, id: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.startsWith("whsec_") ? secret.slice(6) : secret, "base64");
  return `v1,${createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest("base64")}`;
}
