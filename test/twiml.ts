import { XMLParser, XMLValidator } from "fast-xml-parser";

/** One TwiML element as parsed: name, attributes, child elements, and its own text. */
export interface El {
  name: string;
  attrs: Record<string, string>;
  children: El[];
  text: string;
}

const parser = new XMLParser({ preserveOrder: true, ignoreAttributes: false, attributeNamePrefix: "", parseTagValue: false, parseAttributeValue: false, trimValues: false });

type Raw = Record<string, unknown> & { ":@"?: Record<string, string> };

function toEl(node: Raw): El | null {
  const name = Object.keys(node).find((k) => k !== ":@");
  if (!name || name === "#text" || name.startsWith("?")) return null;
  const kids = (node[name] as Raw[]) ?? [];
  return {
    name,
    attrs: { ...(node[":@"] ?? {}) },
    children: kids.map(toEl).filter((e): e is El => e !== null),
    text: kids.filter((k) => "#text" in k).map((k) => String(k["#text"])).join(""),
  };
}

/** Parses a TwiML document (throws when it is not well-formed XML) and returns its <Response>. */
export function parseTwiml(xml: string): El {
  const valid = XMLValidator.validate(xml);
  if (valid !== true) throw new Error(`not well-formed XML: ${valid.err.msg}`);
  const roots = (parser.parse(xml) as Raw[]).map(toEl).filter((e): e is El => e !== null);
  if (roots.length !== 1 || roots[0]!.name !== "Response") throw new Error(`the root is not one <Response>: ${roots.map((r) => r.name).join(",")}`);
  return roots[0]!;
}

export function all(el: El, name: string): El[] {
  return [...(el.name === name ? [el] : []), ...el.children.flatMap((c) => all(c, name))];
}

/** Every <Say> text in document order. */
export const sayTexts = (el: El) => all(el, "Say").map((s) => s.text);

/**
 * What Twilio accepts in the voice TwiML the hub emits: the verbs and nouns used, each with its
 * documented attributes (twilio.com/docs/voice/twiml), Gather holding only Say/Play/Pause, a
 * language/voice pair Twilio offers (Amazon Polly), and absolute action URLs under `base`.
 * Returns the problems found (empty when valid).
 */
export function twimlProblems(root: El, base: string): string[] {
  const problems: string[] = [];
  const allowed: Record<string, Set<string>> = {
    Response: new Set(),
    Say: new Set(["voice", "language", "loop"]),
    Gather: new Set(["input", "action", "method", "timeout", "speechTimeout", "maxSpeechTime", "profanityFilter", "finishOnKey", "numDigits", "partialResultCallback", "partialResultCallbackMethod", "language", "hints", "bargeIn", "debug", "actionOnEmptyResult", "speechModel", "enhanced"]),
    Hangup: new Set(),
    Pause: new Set(["length"]),
    Redirect: new Set(["method"]),
  };
  const voices: Record<string, Set<string>> = { "tr-TR": new Set(["Polly.Filiz", "Polly.Burcu-Neural", "Google.tr-TR-Standard-A"]), "en-US": new Set(["Polly.Joanna", "Polly.Matthew", "Polly.Joanna-Neural"]) };
  const gatherLanguages = new Set(["tr-TR", "en-US"]);
  const visit = (el: El, parent: El | null) => {
    const attrs = allowed[el.name];
    if (!attrs) problems.push(`unknown element <${el.name}>`);
    else for (const a of Object.keys(el.attrs)) if (!attrs.has(a)) problems.push(`<${el.name}> has no attribute ${a}`);
    if (parent && parent.name === "Gather" && !["Say", "Play", "Pause"].includes(el.name)) problems.push(`<Gather> may not contain <${el.name}>`);
    if (parent && parent.name !== "Response" && parent.name !== "Gather") problems.push(`<${parent.name}> may not contain <${el.name}>`);
    if (el.name === "Say") {
      const { language, voice } = el.attrs;
      if (!language || !voices[language]) problems.push(`<Say> language ${language} is not one Twilio offers here`);
      else if (!voice || !voices[language]!.has(voice)) problems.push(`<Say> voice ${voice} does not speak ${language}`);
      if (!el.text.trim()) problems.push("<Say> is empty");
      if (el.text.length > 4096) problems.push("<Say> is longer than 4096 characters");
    }
    if (el.name === "Gather") {
      const a = el.attrs;
      if (!["dtmf", "speech", "dtmf speech", "speech dtmf"].includes(a.input ?? "dtmf")) problems.push(`<Gather> input ${a.input}`);
      if (a.input?.includes("speech") && !gatherLanguages.has(a.language ?? "")) problems.push(`<Gather> speech language ${a.language}`);
      if (a.numDigits !== undefined && !/^[1-9]\d*$/.test(a.numDigits)) problems.push(`<Gather> numDigits ${a.numDigits}`);
      if (a.timeout !== undefined && !/^[1-9]\d*$/.test(a.timeout)) problems.push(`<Gather> timeout ${a.timeout}`);
      if (a.speechTimeout !== undefined && !/^(auto|\d+)$/.test(a.speechTimeout)) problems.push(`<Gather> speechTimeout ${a.speechTimeout}`);
      if (a.finishOnKey !== undefined && !/^[0-9#*]?$/.test(a.finishOnKey)) problems.push(`<Gather> finishOnKey ${a.finishOnKey}`);
      if (a.method !== undefined && !["GET", "POST"].includes(a.method)) problems.push(`<Gather> method ${a.method}`);
      if (a.actionOnEmptyResult !== undefined && !["true", "false"].includes(a.actionOnEmptyResult)) problems.push(`<Gather> actionOnEmptyResult ${a.actionOnEmptyResult}`);
      if (!a.action) problems.push("<Gather> without an action");
      else {
        let url: URL | null = null;
        try {
          url = new URL(a.action);
        } catch {
          problems.push(`<Gather> action ${a.action} is not an absolute URL`);
        }
        if (url && !a.action.startsWith(`${base}/voice/twilio/`)) problems.push(`<Gather> action ${a.action} is not under ${base}/voice/twilio/`);
      }
      if (el.children.length === 0) problems.push("<Gather> says nothing");
    }
    for (const c of el.children) visit(c, el);
  };
  visit(root, null);
  return problems;
}
