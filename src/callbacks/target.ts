import { lookup } from "node:dns/promises";
import { BlockList, isIP } from "node:net";

/** Addresses a callback may never reach unless CALLBACK_ALLOW_PRIVATE: private, loopback, link-local, reserved. */
const blocked = new BlockList();
for (const [net, bits] of [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.0.2.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["198.51.100.0", 24],
  ["203.0.113.0", 24],
  ["224.0.0.0", 4],
  ["240.0.0.0", 4],
] as const) blocked.addSubnet(net, bits, "ipv4");
for (const [net, bits] of [
  ["::", 128],
  ["::1", 128],
  ["fc00::", 7],
  ["fe80::", 10],
  ["fec0::", 10],
  ["ff00::", 8],
  ["2001:db8::", 32],
  ["64:ff9b::", 96],
  ["100::", 64],
] as const) blocked.addSubnet(net, bits, "ipv6");

/** True for an address a callback must not reach (IPv4-mapped IPv6 is judged as the IPv4 it maps). */
export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return blocked.check(address, "ipv4");
  if (family !== 6) return true;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return blocked.check(mapped[1]!, "ipv4");
  const hexMapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(address);
  if (hexMapped) {
    const hi = parseInt(hexMapped[1]!, 16);
    const lo = parseInt(hexMapped[2]!, 16);
    return blocked.check(`${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`, "ipv4");
  }
  return blocked.check(address, "ipv6");
}

export type TargetCheck = { ok: true; url: URL } | { ok: false; reason: string };

/** Deliveries carry recipients' phone numbers and e-mail addresses: never in clear text on a public network. */
export const HTTPS_ONLY = "only https URLs are allowed: deliveries carry recipients' addresses (CALLBACK_ALLOW_PRIVATE=true, for development and closed networks, also allows http)";

/** The URL's shape: http(s) only, no credentials, a host. */
export function checkUrlShape(raw: string): TargetCheck {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, reason: "not a valid URL" };
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return { ok: false, reason: "only http and https URLs are allowed" };
  if (url.username || url.password) return { ok: false, reason: "credentials in the URL are not allowed" };
  if (!url.hostname) return { ok: false, reason: "the URL has no host" };
  return { ok: true, url };
}

const hostOf = (url: URL) => url.hostname.replace(/^\[|\]$/g, "");

/**
 * Checks a callback URL: its shape, then (unless private targets are allowed) https and every
 * address its host resolves to. Run at creation and again at delivery (where the connection's own lookup also
 * checks the address it connects to, so a DNS answer cannot change in between).
 */
export async function checkTarget(raw: string, allowPrivate: boolean): Promise<TargetCheck> {
  const shape = checkUrlShape(raw);
  if (!shape.ok || allowPrivate) return shape;
  if (shape.url.protocol !== "https:") return { ok: false, reason: HTTPS_ONLY };
  const host = hostOf(shape.url);
  if (isIP(host)) return isPrivateAddress(host) ? { ok: false, reason: `${host} is a private, loopback or link-local address` } : shape;
  if (host === "localhost" || host.endsWith(".localhost")) return { ok: false, reason: "localhost is not allowed" };
  let addresses: { address: string }[];
  try {
    addresses = await lookup(host, { all: true });
  } catch {
    return { ok: false, reason: `${host} does not resolve` };
  }
  const bad = addresses.find((a) => isPrivateAddress(a.address));
  if (bad) return { ok: false, reason: `${host} resolves to a private, loopback or link-local address` };
  return shape;
}
