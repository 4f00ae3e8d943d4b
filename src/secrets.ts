import { hash, hkdfSync, randomBytes } from "node:crypto";
import { closeSync, existsSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

export interface Secrets {
  /** A 32-byte key for one purpose ("rate-limit", "ivr-state", …), derived from the hub secret with HKDF. */
  derive(purpose: string): Buffer;
  /** Keyed hash of a personal value (a phone number) for use in Redis keys and logs: not reversible without the secret. */
  pseudonym(purpose: string, value: string): string;
}

interface Logger {
  info(obj: object, msg: string): void;
}

/**
 * The hub secret from `HUB_SECRET`, or from the file at `path`, generated (0600) on first start so
 * `npm start` works on a fresh machine. Every other key is derived from it per purpose.
 */
export function loadSecrets(fromEnv: string | undefined, path: string, log?: Logger): Secrets {
  const prepared = prepareSecrets(fromEnv, path, log);
  prepared.keep();
  return prepared.secrets;
}

/** What linkSync fails with where the file system has no hard links. */
const LINK_UNSUPPORTED = new Set(["EPERM", "ENOTSUP", "EOPNOTSUPP", "ENOSYS"]);

/**
 * As loadSecrets, but a secret made anew (no HUB_SECRET, no file at `path`) is only written to
 * `path` by `keep()`: a start that stops before it (another hub's Redis prefix, the wrong Redis
 * database) leaves no secret file behind, which a later start would take as the hub's. Should the file
 * have appeared meanwhile (another process of the hub starting at the same moment), `keep()` takes
 * that one's secret instead of replacing it: both processes then hold the same.
 */
export function prepareSecrets(fromEnv: string | undefined, path: string, log?: Logger): { secrets: Secrets; keep(): void } {
  let master: Buffer;
  let fresh = false;
  if (fromEnv) master = Buffer.from(fromEnv, "utf8");
  else if (existsSync(path)) master = readSecretFile(path);
  else {
    master = randomBytes(32);
    fresh = true;
  }
  const keep = () => {
    if (!fresh) return;
    fresh = false;
    mkdirSync(dirname(path), { recursive: true });
    // Whole or not at all: a crash mid-write left an empty file, taken as an empty secret.
    const partial = `${path}.${process.pid}.tmp`;
    const fd = openSync(partial, "w", 0o600);
    try {
      writeFileSync(fd, `${master.toString("base64url")}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    try {
      // Linked, not renamed: a file another process put there first is kept, not replaced.
      try {
        linkSync(partial, path);
      } catch (err) {
        // A file system without hard links (some network and container mounts): renamed, as before.
        if (!LINK_UNSUPPORTED.has((err as NodeJS.ErrnoException).code ?? "")) throw err;
        renameSync(partial, path);
      }
      log?.info({ path }, "generated a new hub secret (HUB_SECRET unset and HUB_SECRET_PATH did not exist)");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      master = readSecretFile(path);
      cache.clear();
      prefixes.clear();
    } finally {
      rmSync(partial, { force: true });
    }
  };
  const cache = new Map<string, Buffer>();
  const derive = (purpose: string) => {
    let k = cache.get(purpose);
    if (!k) {
      k = Buffer.from(hkdfSync("sha256", master, Buffer.alloc(0), `iys-hub:${purpose}`, 32));
      cache.set(purpose, k);
    }
    return k;
  };
  const prefixes = new Map<string, string>();
  const secrets: Secrets = {
    derive,
    // SHA-256 over the purpose's derived key (fixed length, as text) and the value: as irreversible
    // without the secret as an HMAC, at a third of its cost (every inbound SMS takes one), since a
    // pseudonym is only ever recomputed and compared, never verified as a MAC.
    pseudonym: (purpose, value) => {
      let prefix = prefixes.get(purpose);
      if (prefix === undefined) {
        prefix = `${derive(purpose).toString("base64url")}\u0000`;
        prefixes.set(purpose, prefix);
      }
      return hash("sha256", prefix + value, "base64url").slice(0, 22);
    },
  };
  return { secrets, keep };
}

/**
 * The hub secret kept in a file: 32 bytes as base64url, as the hub writes it. An empty, cut or
 * edited file is refused (an empty one made every derived key from zero bytes, the same on every
 * hub), not taken as some other secret.
 */
function readSecretFile(path: string): Buffer {
  let text: string;
  try {
    text = readFileSync(path, "utf8").trim();
  } catch (err) {
    throw new Error(`HUB_SECRET_PATH ${path} cannot be read: ${(err as Error).message}`);
  }
  const master = Buffer.from(text, "base64url");
  if (master.length < 32 || master.toString("base64url") !== text) {
    throw new Error(
      `HUB_SECRET_PATH ${path} does not hold a hub secret (32 bytes or more as base64url, as the hub writes it; it holds ${text.length} characters): restore it from your backup (links and callback secrets depend on it), or remove it to have a new one made`,
    );
  }
  return master;
}
