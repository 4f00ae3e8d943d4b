import { smsE2e } from "./sms";
console.log(await smsE2e.run());
process.exit(0);
